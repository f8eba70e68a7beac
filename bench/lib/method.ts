/**
 * The method of `npm run bench`, in one place: how per-round figures become a target's figures,
 * and when a target is met. Pure: no processes, files or clocks, so that the rule is tested
 * (`test/bench-method.test.ts`) and every row of `docs/benchmarks.md` uses the same one.
 */

/**
 * Fewest interleaved rounds behind a throughput ratio, `--quick` included: with 5 rounds the
 * median drops the two highest and the two lowest, so one disturbed round moves it little.
 */
export const MIN_ROUNDS = 5;

/** Whether a figure meets its goal from above (`at-least`: throughput) or below (`at-most`: time). */
export type Direction = 'at-least' | 'at-most';

export interface Goal {
  direction: Direction;
  value: number;
}

/** The median and the spread of per-round figures. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** How many finite figures the median is of. */
  rounds: number;
}

/**
 * Median of the finite `values` (an even count: the mean of the two middle ones); NaN when there
 * are none.
 */
export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The median and min–max of per-round ratios; `undefined` when no round gave a finite figure (a
 * server that answered nothing gives a round no ratio, not a zero).
 */
export function spreadOf(values: readonly number[]): Spread | undefined {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return undefined;
  return {
    median: median(finite),
    min: Math.min(...finite),
    max: Math.max(...finite),
    rounds: finite.length,
  };
}

/**
 * The CPU ratio of a comparison, in the direction of its throughput ratio: theirs ÷ ours CPU per
 * query (medians), so that 0.5 means that ours spends twice the CPU on a query and ≥ the goal is
 * good in both. `undefined` when either is missing or not positive.
 */
export function cpuRatio(
  oursCpuPerQuery: number | undefined,
  theirsCpuPerQuery: number | undefined,
): number | undefined {
  if (oursCpuPerQuery === undefined || theirsCpuPerQuery === undefined) return undefined;
  if (!(oursCpuPerQuery > 0) || !(theirsCpuPerQuery > 0)) return undefined;
  return theirsCpuPerQuery / oursCpuPerQuery;
}

/** Whether `value` meets `goal`. */
export function meets(goal: Goal, value: number): boolean {
  if (!Number.isFinite(value)) return false;
  return goal.direction === 'at-least' ? value >= goal.value : value <= goal.value;
}

/**
 * The rule for every target: met only when the median of the per-round ratios meets the goal
 * and, where the benchmark measures CPU for the target, the CPU ratio meets it too; a CPU figure
 * that is missing where CPU is measured leaves the target not met (unproven). `null` when there
 * is nothing to judge: no median (not measured) or no goal (reported beside another target).
 */
export function targetMet(
  goal: Goal | null,
  medianRatio: number | null,
  cpu: { measured: boolean; ratio: number | null },
): boolean | null {
  if (medianRatio === null || goal === null) return null;
  if (!meets(goal, medianRatio)) return false;
  if (!cpu.measured) return true;
  return cpu.ratio !== null && meets(goal, cpu.ratio);
}

/** `≥ 0.6×`, `≤ 100 ms`: a goal as a reader sees it. */
export function goalText(goal: Goal | null, unit: Unit): string {
  if (goal === null) return 'no goal of its own';
  return `${goal.direction === 'at-least' ? '≥' : '≤'} ${formatFigure(goal.value, unit, true)}`;
}

/** What a target's figures count. */
export type Unit = 'ratio' | 'ms' | 'per-second';

/**
 * A figure with its unit: `0.640×`, `142 ms`, `0.42 ms`, `2,577/s`; `trim` drops a ratio's (or a
 * small time's) trailing zeros,
 * for round numbers such as goals and axis ticks (`0.6×`).
 */
export function formatFigure(value: number, unit: Unit, trim = false): string {
  if (!Number.isFinite(value)) return '—';
  switch (unit) {
    case 'ratio': {
      const text = value.toFixed(value >= 10 ? 1 : 3);
      return `${trim ? text.replace(/\.?0+$/, '') : text}×`;
    }
    case 'ms': {
      // Below 10 ms (the latency the relay adds), whole milliseconds would hide the figure.
      if (Math.abs(value) >= 10) return `${Math.round(value).toLocaleString('en-US')} ms`;
      const text = value.toFixed(2);
      return `${trim ? text.replace(/\.?0+$/, '') : text} ms`;
    }
    case 'per-second':
      return `${Math.round(value).toLocaleString('en-US')}/s`;
  }
}
