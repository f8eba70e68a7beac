import type { DohBenchResult } from './doh-bench.js';
import { cpuRatio, spreadOf, targetMet, type Goal, type Spread, type Unit } from './method.js';
import type { PgBenchResult } from './pg-bench.js';
import type { RelayBenchResult } from './relay-report.js';
import type { Results } from './report.js';
import type { ResolverBenchResult } from './resolver-bench.js';
import type { TransferBenchResult } from './transfer-bench.js';

/**
 * The targets of issue 18, each computed from a run's results (`bench/results/<date>.json`) by
 * {@link targetFigures}: the median of its per-round figures, their spread, the CPU ratio where
 * the benchmark measures CPU, and whether it is met ({@link targetMet}). Pure.
 */

export interface TargetDefinition {
  /** Stable: the key in `bench/results/history.json` and the chart's file name. */
  id: string;
  title: string;
  unit: Unit;
  goal: Goal | null;
  /** Whether the benchmark measures CPU for this target (then "met" needs the CPU ratio too). */
  cpuMeasured: boolean;
  /** What one per-round figure is. */
  figure: string;
  /**
   * Whether a run's results can hold this target at all; default yes. A run that predates the
   * benchmark of a newer target (its results lack the part it is measured from) has no figure
   * for it, so the history's older entries stay as they were recorded.
   */
  inRun?: (r: MeasuredParts) => boolean;
}

/** Runs before the servers on every core (`Results['udp'].workers`) lack the `-all` targets. */
const withAllCores = (r: MeasuredParts): boolean =>
  r.udp === undefined || r.udp.workers !== undefined;

export const TARGETS: readonly TargetDefinition[] = [
  {
    id: 'dp-udp-nsd',
    title: 'DP over UDP, 1 worker vs NSD server-count 1',
    unit: 'ratio',
    goal: { direction: 'at-least', value: 0.6 },
    cpuMeasured: true,
    figure: 'queries/s ours ÷ NSD’s in one round; CPU: NSD’s ÷ our CPU per query',
  },
  {
    id: 'dp-udp-nsd-all',
    title: 'DP over UDP, all cores vs NSD all cores',
    unit: 'ratio',
    goal: { direction: 'at-least', value: 0.6 },
    cpuMeasured: true,
    figure:
      'queries/s ours (answerWorkers = cores) ÷ NSD’s (server-count = cores) in one round; CPU: NSD’s ÷ our CPU per query',
    inRun: withAllCores,
  },
  {
    id: 'dp-udp-knot',
    title: 'DP over UDP, 1 worker vs Knot 1 UDP worker',
    unit: 'ratio',
    goal: null,
    cpuMeasured: true,
    figure: 'queries/s ours ÷ Knot’s in one round; CPU: Knot’s ÷ our CPU per query',
  },
  {
    id: 'dp-udp-knot-all',
    title: 'DP over UDP, all cores vs Knot all cores',
    unit: 'ratio',
    goal: null,
    cpuMeasured: true,
    figure:
      'queries/s ours (answerWorkers = cores) ÷ Knot’s (udp-workers = cores) in one round; CPU: Knot’s ÷ our CPU per query',
    inRun: withAllCores,
  },
  {
    id: 'resolver-udp-unbound',
    title: 'Resolver cache hits over UDP vs Unbound',
    unit: 'ratio',
    goal: { direction: 'at-least', value: 0.75 },
    cpuMeasured: true,
    figure: 'queries/s ours ÷ Unbound’s in one round; CPU: Unbound’s ÷ our CPU per query',
  },
  {
    id: 'doh-resolver-unbound',
    title: 'Resolver DoH, HTTP/2 + TLS 10×10, vs Unbound’s DoH',
    unit: 'ratio',
    goal: { direction: 'at-least', value: 0.6 },
    cpuMeasured: true,
    figure: 'requests/s ours ÷ Unbound’s in one round; CPU: Unbound’s ÷ our CPU per request',
  },
  {
    id: 'doh-dp-unbound',
    title: 'DP DoH, HTTP/2 + TLS 10×10, vs Unbound’s DoH',
    unit: 'ratio',
    goal: { direction: 'at-least', value: 0.6 },
    cpuMeasured: true,
    figure: 'requests/s ours ÷ Unbound’s in one round; CPU: Unbound’s ÷ our CPU per request',
  },
  {
    id: 'cold-resolution',
    title: 'Cold resolution of one CSI vs Unbound',
    unit: 'ratio',
    goal: { direction: 'at-most', value: 1.2 },
    cpuMeasured: false,
    figure:
      'time ours (`/v1/discover`, caches flushed, connections kept) ÷ Unbound’s in one sample',
  },
  {
    id: 'sync-cold',
    title: 'Contact sync of 10,000 CSIs, cold, vs the verification bound on all cores',
    unit: 'ratio',
    goal: { direction: 'at-least', value: 0.7 },
    cpuMeasured: true,
    figure:
      'CSIs/s ÷ the bound’s CSIs/s in one round (the bound: the resolver’s verification pool, one worker per core; runs before 2026-12-07 used one core); CPU: the verifications’ CPU ÷ the resolver’s CPU, every thread',
  },
  {
    id: 'sync-warm',
    title: 'Contact sync of 10,000 CSIs, warm',
    unit: 'ms',
    goal: { direction: 'at-most', value: 100 },
    cpuMeasured: false,
    figure: 'wall time of the warm sync of one round',
  },
  {
    id: 'registration-publishes',
    title: 'Durable publishes/s while serving 5,000 q/s',
    unit: 'per-second',
    goal: { direction: 'at-least', value: 3000 },
    cpuMeasured: false,
    figure: 'publishes/s of one round',
  },
  {
    id: 'registration-p99',
    title: 'Query p99 while publishing vs without',
    unit: 'ratio',
    goal: { direction: 'at-most', value: 2 },
    cpuMeasured: false,
    figure: 'query p99 while publishing in one round ÷ the median p99 of the UDP rounds without',
  },
  {
    id: 'transfer-udp-nsd',
    title: 'DP over UDP vs NSD serving the zone it transferred from the DP',
    unit: 'ratio',
    goal: null,
    cpuMeasured: true,
    figure: 'queries/s ours ÷ NSD’s in one round; CPU: NSD’s ÷ our CPU per query',
  },
  {
    id: 'pg-miss-lmdb',
    title: 'DP over PostgreSQL vs over LMDB, answer-cache misses',
    unit: 'ratio',
    goal: { direction: 'at-least', value: 0.5 },
    cpuMeasured: true,
    figure: 'queries/s PostgreSQL ÷ LMDB in one round; CPU: LMDB’s ÷ PostgreSQL’s CPU per miss',
  },
  {
    id: 'relay-lookups',
    title: 'Lookups through the oblivious relay vs direct, warm resolver',
    unit: 'ratio',
    goal: { direction: 'at-least', value: 0.5 },
    cpuMeasured: true,
    figure:
      'lookups/s through the relay ÷ direct in one round; CPU: direct ÷ relayed server CPU (resolver, relay, issuer) per lookup',
  },
  {
    id: 'relay-added-p50',
    title: 'Latency the oblivious relay adds to a lookup on loopback, p50',
    unit: 'ms',
    goal: { direction: 'at-most', value: 1 },
    cpuMeasured: false,
    figure: 'p50 of lookups one after another through the relay − direct, in one round',
  },
  {
    id: 'relay-sync',
    title: 'Contact sync through the oblivious relay vs direct, warm resolver',
    unit: 'ratio',
    goal: null,
    cpuMeasured: true,
    figure:
      'CSIs/s of the sync through the relay ÷ direct in one round; CPU: direct ÷ relayed server CPU per CSI',
  },
];

/** One target's figures in one run; `null` where the run did not measure a figure. */
export interface TargetFigures {
  id: string;
  median: number | null;
  cpuRatio: number | null;
  min: number | null;
  max: number | null;
  rounds: number | null;
  goal: Goal | null;
  met: boolean | null;
}

/** The results a run writes, with the parts only `bench/run.ts` adds. */
export type RunResults = Results & { postgres?: PgBenchResult; relay?: RelayBenchResult };

/**
 * The parts of a run's results the targets are computed from; a part that is absent (a run of
 * `bench/resolver-run.ts` has no DP comparison) leaves its targets not measured.
 */
export interface MeasuredParts {
  udp?: Results['udp'] | undefined;
  registration?: Results['registration'] | undefined;
  postgres?: PgBenchResult | undefined;
  doh?: DohBenchResult | undefined;
  resolver?: ResolverBenchResult | undefined;
  transfer?: TransferBenchResult | undefined;
  relay?: RelayBenchResult | undefined;
}

interface Measured {
  spread: Spread | undefined;
  cpu: number | undefined;
}

const defined = (values: readonly (number | undefined)[]): number[] =>
  values.flatMap((v) => (v === undefined ? [] : [v]));

function dohMeasured(doh: DohBenchResult | undefined, server: 'dp' | 'resolver'): Measured {
  const key = server === 'dp' ? 'dpToUnbound' : 'resolverToUnbound';
  const medians = doh?.medians['h2-10x10'];
  return {
    spread: spreadOf(defined((doh?.ratios['h2-10x10'] ?? []).map((r) => r[key]))),
    cpu: cpuRatio(
      medians?.[server]?.cpuMicrosecondsPerRequest,
      medians?.unbound?.cpuMicrosecondsPerRequest,
    ),
  };
}

/** Per sample, our flushed `/v1/discover` time ÷ Unbound's, where both succeeded. */
function coldRatios(r: MeasuredParts): number[] {
  const samples = r.resolver?.cold?.samples ?? [];
  const ok = (variant: string, sample: number): number | undefined =>
    samples.find((s) => s.sample === sample && s.variant === variant && s.ok)?.ms;
  const numbers = [...new Set(samples.map((s) => s.sample))].sort((a, b) => a - b);
  return numbers.flatMap((n) => {
    const ours = ok('ours-discover-flushed', n);
    const unbound = ok('unbound', n);
    return ours === undefined || unbound === undefined || !(unbound > 0) ? [] : [ours / unbound];
  });
}

function measure(id: string, r: MeasuredParts): Measured {
  const u = r.udp;
  const none: Measured = { spread: undefined, cpu: undefined };
  switch (id) {
    case 'dp-udp-nsd':
      if (u === undefined) return none;
      return {
        spread: spreadOf(defined(u.ratios.map((x) => x.oursToNsd))),
        cpu: cpuRatio(
          u.medians.ours?.cpuMicrosecondsPerQuery,
          u.medians.nsd?.cpuMicrosecondsPerQuery,
        ),
      };
    case 'dp-udp-nsd-all':
      if (u === undefined) return none;
      return {
        spread: spreadOf(defined(u.ratios.map((x) => x.allToNsdAll))),
        cpu: cpuRatio(
          u.medians['ours-all']?.cpuMicrosecondsPerQuery,
          u.medians['nsd-all']?.cpuMicrosecondsPerQuery,
        ),
      };
    case 'dp-udp-knot-all':
      if (u === undefined) return none;
      return {
        spread: spreadOf(defined(u.ratios.map((x) => x.allToKnotAll))),
        cpu: cpuRatio(
          u.medians['ours-all']?.cpuMicrosecondsPerQuery,
          u.medians['knot-all']?.cpuMicrosecondsPerQuery,
        ),
      };
    case 'dp-udp-knot':
      if (u === undefined) return none;
      return {
        spread: spreadOf(defined(u.ratios.map((x) => x.oursToKnot))),
        cpu: cpuRatio(
          u.medians.ours?.cpuMicrosecondsPerQuery,
          u.medians.knot?.cpuMicrosecondsPerQuery,
        ),
      };
    case 'resolver-udp-unbound': {
      const udp = r.resolver?.udp;
      if (udp === undefined) return none;
      return {
        spread: spreadOf(udp.ratios.map((x) => x.oursToUnbound)),
        cpu: cpuRatio(
          udp.medians.ours?.cpuMicrosecondsPerQuery,
          udp.medians.unbound?.cpuMicrosecondsPerQuery,
        ),
      };
    }
    case 'doh-resolver-unbound':
      return dohMeasured(r.doh, 'resolver');
    case 'doh-dp-unbound':
      return dohMeasured(r.doh, 'dp');
    case 'cold-resolution':
      return { spread: spreadOf(coldRatios(r)), cpu: undefined };
    case 'sync-cold': {
      const sync = r.resolver?.sync;
      if (sync === undefined) return none;
      return {
        spread: spreadOf(sync.rounds?.map((x) => x.coldToBound) ?? [sync.coldToBound]),
        cpu: Number.isFinite(sync.coldCpuToBound) ? sync.coldCpuToBound : undefined,
      };
    }
    case 'sync-warm': {
      const sync = r.resolver?.sync;
      return {
        spread:
          sync === undefined
            ? undefined
            : spreadOf(sync.rounds?.map((x) => x.warmMs) ?? [sync.warmMs]),
        cpu: undefined,
      };
    }
    case 'registration-publishes': {
      const reg = r.registration;
      if (reg === undefined) return none;
      return {
        spread: spreadOf(reg.rounds?.map((x) => x.publishesPerSecond) ?? [reg.publishesPerSecond]),
        cpu: undefined,
      };
    }
    case 'registration-p99': {
      const reg = r.registration;
      // The same DP without writes: the one with answer workers when the publishes ran there.
      const quiet =
        reg?.answerWorkers !== undefined && reg.answerWorkers > 1
          ? u?.medians['ours-all']?.p99LatencyMs
          : u?.medians.ours?.p99LatencyMs;
      const during =
        reg?.rounds?.map((x) => x.p99Ms) ??
        (reg?.queriesMeanwhile.percentilesMs === undefined
          ? []
          : [reg.queriesMeanwhile.percentilesMs.p99]);
      return {
        spread:
          quiet === undefined || !(quiet > 0) ? undefined : spreadOf(during.map((p) => p / quiet)),
        cpu: undefined,
      };
    }
    case 'transfer-udp-nsd': {
      const udp = r.transfer?.udp;
      if (udp?.ratios === undefined) return none;
      return {
        spread: spreadOf(udp.ratios),
        cpu: cpuRatio(udp.cpuMicrosecondsPerQuery?.ours, udp.cpuMicrosecondsPerQuery?.nsdSecondary),
      };
    }
    case 'pg-miss-lmdb': {
      const pg = r.postgres;
      if (pg === undefined || 'skipped' in pg) return none;
      return {
        spread: spreadOf(pg.ratios.map((x) => x.missQps)),
        cpu: cpuRatio(
          pg.medians.postgres.cpuMicrosecondsPerMiss,
          pg.medians.lmdb.cpuMicrosecondsPerMiss,
        ),
      };
    }
    case 'relay-lookups':
    case 'relay-sync': {
      const relay = r.relay;
      if (relay === undefined || relay.skipped !== undefined) return none;
      const lookups = id === 'relay-lookups';
      const cpu = (path: 'direct' | 'relay'): number | undefined =>
        lookups
          ? relay.medians[path]?.serverCpuMicrosecondsPerLookup
          : relay.medians[path]?.serverCpuMicrosecondsPerSyncCsi;
      return {
        spread: spreadOf(relay.ratios.map((x) => (lookups ? x.lookups : x.sync))),
        cpu: cpuRatio(cpu('relay'), cpu('direct')),
      };
    }
    case 'relay-added-p50': {
      const relay = r.relay;
      if (relay === undefined || relay.skipped !== undefined) return none;
      return { spread: spreadOf(relay.ratios.map((x) => x.addedP50Ms)), cpu: undefined };
    }
    default:
      throw new Error(`no measure for target ${id}`);
  }
}

/** Every target's figures in the run `r`, in the order of {@link TARGETS}. */
export function targetFigures(r: MeasuredParts): TargetFigures[] {
  return TARGETS.filter((t) => t.inRun?.(r) ?? true).map((t) => {
    const { spread, cpu } = measure(t.id, r);
    const medianRatio = spread?.median ?? null;
    const cpuFigure = t.cpuMeasured ? (cpu ?? null) : null;
    return {
      id: t.id,
      median: medianRatio,
      cpuRatio: cpuFigure,
      min: spread?.min ?? null,
      max: spread?.max ?? null,
      rounds: spread?.rounds ?? null,
      goal: t.goal,
      met: targetMet(t.goal, medianRatio, { measured: t.cpuMeasured, ratio: cpuFigure }),
    };
  });
}
