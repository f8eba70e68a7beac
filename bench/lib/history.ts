import type { MachineFacts } from './proc.js';
import { TARGETS, targetFigures, type RunResults, type TargetFigures } from './targets.js';

/**
 * `bench/results/history.json`: one entry per run of `npm run bench` (date, machine, commit, every
 * target's figures), oldest first, so that `docs/benchmarks.md` shows the trend and not only the
 * last run. Pure: reading and writing the file is the caller's.
 */

/** Runs kept in the history: the oldest go first, so the file stays small enough to read. */
export const HISTORY_MAX_RUNS = 200;

/** The version of the file's format, checked on reading. */
export const HISTORY_VERSION = 1;

export interface HistoryEntry {
  /** When the run ended: an ISO 8601 timestamp, or the day alone for a run converted later. */
  date: string;
  /** `git rev-parse HEAD` of the tree that ran, `null` when unknown. */
  commit: string | null;
  scale: string;
  quick: boolean;
  machine: MachineFacts;
  /** The results file the figures come from, relative to the repository. */
  results: string;
  targets: TargetFigures[];
}

export interface History {
  version: number;
  runs: HistoryEntry[];
}

/**
 * How a run is named in tables and charts: its day, and the time of day (UTC, to the minute) when
 * the history has it, so that two runs of one day stay apart.
 */
export function runLabel(date: string): string {
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(date);
  return match === null ? date.slice(0, 10) : `${match[1]} ${match[2]} UTC`;
}

export const emptyHistory = (): History => ({ version: HISTORY_VERSION, runs: [] });

/** The history entry of a run's results. */
export function historyEntry(
  r: RunResults,
  facts: { date: string; commit: string | null; results: string },
): HistoryEntry {
  return {
    date: facts.date,
    commit: facts.commit,
    scale: r.scale,
    quick: r.quick,
    machine: r.machine,
    results: facts.results,
    targets: targetFigures(r),
  };
}

/**
 * `history` with `entry` appended and only the last `max` runs kept. Throws, changing nothing,
 * when a run of the same date is already there (the same results added twice) or when `entry`
 * is older than the last run (the history stays in order).
 */
export function appendRun(
  history: History,
  entry: HistoryEntry,
  max: number = HISTORY_MAX_RUNS,
): History {
  if (!Number.isInteger(max) || max < 1) throw new Error(`history bound ${max} is not ≥ 1`);
  if (history.runs.some((run) => run.date === entry.date))
    throw new Error(`the history already holds a run of ${entry.date}`);
  const last = history.runs.at(-1);
  if (last !== undefined && entry.date < last.date)
    throw new Error(
      `run of ${entry.date} is older than the last one in the history (${last.date})`,
    );
  return { version: history.version, runs: [...history.runs, entry].slice(-max) };
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isFigure = (v: unknown): v is number | null => v === null || typeof v === 'number';

function checkTargets(value: unknown, where: string): TargetFigures[] {
  if (!Array.isArray(value)) throw new Error(`${where}: targets is not a list`);
  return value.map((t: unknown, i) => {
    const at = `${where}, target ${i + 1}`;
    if (!isObject(t) || typeof t.id !== 'string') throw new Error(`${at}: no id`);
    for (const key of ['median', 'cpuRatio', 'min', 'max', 'rounds'] as const)
      if (!isFigure(t[key]))
        throw new Error(`${at} (${t.id}): ${key} is neither a number nor null`);
    if (!(t.met === null || typeof t.met === 'boolean'))
      throw new Error(`${at} (${t.id}): met is neither true, false nor null`);
    const goal = t.goal;
    if (!(
      goal === null ||
      (isObject(goal) &&
        (goal.direction === 'at-least' || goal.direction === 'at-most') &&
        typeof goal.value === 'number')
    ))
      throw new Error(`${at} (${t.id}): goal is malformed`);
    return t as unknown as TargetFigures;
  });
}

/** The history in `text` (the file's content), checked; a clear error on anything malformed. */
export function parseHistory(text: string): History {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`history is not JSON: ${(error as Error).message}`);
  }
  if (!isObject(value) || value.version !== HISTORY_VERSION || !Array.isArray(value.runs))
    throw new Error(`history is not of version ${HISTORY_VERSION} with a list of runs`);
  const runs = value.runs.map((run: unknown, i): HistoryEntry => {
    const where = `history run ${i + 1}`;
    if (!isObject(run) || typeof run.date !== 'string') throw new Error(`${where}: no date`);
    if (!(run.commit === null || typeof run.commit === 'string'))
      throw new Error(`${where}: commit is neither text nor null`);
    if (typeof run.scale !== 'string' || typeof run.quick !== 'boolean')
      throw new Error(`${where}: no scale or quick`);
    if (!isObject(run.machine)) throw new Error(`${where}: no machine facts`);
    if (typeof run.results !== 'string') throw new Error(`${where}: no results file`);
    return {
      date: run.date,
      commit: run.commit,
      scale: run.scale,
      quick: run.quick,
      machine: run.machine as unknown as MachineFacts,
      results: run.results,
      targets: checkTargets(run.targets, where),
    };
  });
  return { version: HISTORY_VERSION, runs };
}

/** The file's content: stable, one run after another. */
export function serializeHistory(history: History): string {
  return `${JSON.stringify(history, null, 2)}\n`;
}

/** Each run's figures of target `id` (`undefined` for a run that predates the target). */
export function seriesOf(
  history: History,
  id: string,
): { entry: HistoryEntry; figures: TargetFigures | undefined }[] {
  if (!TARGETS.some((t) => t.id === id)) throw new Error(`no target ${id}`);
  return history.runs.map((entry) => ({
    entry,
    figures: entry.targets.find((t) => t.id === id),
  }));
}
