import type { DnsperfResult, LatencyPercentiles } from './dnsperf.js';
import type { MachineFacts } from './proc.js';
import type { ProfileSummary } from './profile.js';
import type { VerifyRates } from './verify-rate.js';
import type { ScaleResult } from './scale.js';
import { scaleMarkdown } from './scale-report.js';
import type { DohBenchResult } from './doh-bench.js';
import type { ResolverBenchResult } from './resolver-bench.js';
import { resolverMarkdown } from './resolver-report.js';
import { targetsTable } from './history-report.js';
import { MIN_ROUNDS } from './method.js';
import { targetFigures, type RunResults } from './targets.js';
import type { TransferBenchResult } from './transfer-bench.js';
import { transferMarkdown, transferTargetRow } from './transfer-report.js';
import { relayMarkdown } from './relay-report.js';

/**
 * The servers of the UDP comparison: each on one core (`ours`: one answering process, NSD
 * `server-count: 1`, Knot `udp-workers: 1`) and on every core (`-all`: `answerWorkers` =
 * `server-count` = `udp-workers` = the host's cores, `Results['udp'].workers`). Runs before the
 * `-all` servers have only the first three.
 */
export type ServerName = 'ours' | 'nsd' | 'knot' | 'ours-all' | 'nsd-all' | 'knot-all';

export interface Round {
  round: number;
  server: ServerName;
  result: DnsperfResult;
  /** At a fixed rate, right after `result`. */
  latency: LatencyPercentiles;
}

export interface Results {
  date: string;
  scale: string;
  quick: boolean;
  machine: MachineFacts;
  commands: Record<string, string>;
  dataSet: {
    origin: string;
    csis: number;
    mappings: number;
    requestedCsis: number;
    signSeconds: number;
    applySeconds: number;
    exportSeconds: number;
    zoneFileBytes: number;
    note: string;
  };
  udp: {
    queryFile: { existing: number; absent: number };
    latencyQps: number;
    /** The warm-up: every question once, the first time the server is asked it. */
    firstPass: Partial<Record<ServerName, DnsperfResult>>;
    rounds: Round[];
    skipped: string[];
    /** Processes (ours), server processes (NSD), UDP and TCP workers (Knot) of the `-all` servers. */
    workers?: number;
    ratios: {
      round: number;
      oursToNsd?: number;
      oursToKnot?: number;
      /** `ours-all` ÷ `nsd-all`. */
      allToNsdAll?: number;
      /** `ours-all` ÷ `knot-all`. */
      allToKnotAll?: number;
    }[];
    medians: Partial<
      Record<
        ServerName,
        {
          queriesPerSecond: number;
          averageLatencyMs: number;
          cpuMicrosecondsPerQuery: number;
          p50LatencyMs: number;
          p90LatencyMs: number;
          p99LatencyMs: number;
        }
      >
    >;
    medianRatioOursToNsd?: number;
    medianRatioOursToKnot?: number;
    medianRatioAllToNsdAll?: number;
    medianRatioAllToKnotAll?: number;
  };
  /** CPU profiles of our DP, each from a run of its own. */
  profiles: (ProfileSummary & { queriesPerSecond: number })[];
  /** Ed25519 verifications per second on one core, by backend. */
  verification: VerifyRates;
  doh?: DohBenchResult;
  resolver?: ResolverBenchResult;
  /** Zone transfers to NSD as a secondary (`transfer-bench.ts`). */
  transfer?: TransferBenchResult;

  registration: {
    /** The DP's answer workers during the registration rounds (absent: one process). */
    answerWorkers?: number;
    concurrency: number;
    publishes: number;
    seconds: number;
    publishesPerSecond: number;
    /** The queries during the round of the median rate (whose figures the fields above are). */
    queriesMeanwhile: DnsperfResult;
    /** Every round: publishes/s and the query p99 meanwhile. Absent from runs before rounds. */
    rounds?: {
      round: number;
      publishes: number;
      seconds: number;
      publishesPerSecond: number;
      p99Ms: number;
    }[];
  };
  wallSeconds: number;
}

/** Nearest-rank percentile of ascending `sorted` values (`fraction` in 0..1); NaN when empty. */
export function percentile(sorted: ArrayLike<number>, fraction: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))]!;
}

/** Re-exported from `method.ts` for the benchmarks that take it from here. */
export { median } from './method.js';

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const fixed = (n: number, digits: number): string => n.toFixed(digits);

export function markdown(
  r: RunResults,
  resultsPath: string,
  scale?: { small: ScaleResult; large: ScaleResult },
): string {
  const u = r.udp;
  const ours = u.medians.ours;
  const met = (ok: boolean): string => (ok ? 'met' : 'not met');
  const v = r.verification;
  const verifyRow = `| Ed25519: the native path where the runtime has one, the portable one elsewhere, both passing Wycheproof; each object verified once per cache fill | native **${v.native === undefined ? 'absent' : int(v.native)}**, portable **${int(v.portable)}** verifications/s on one core; the resolver uses ${v.native === undefined ? 'the portable' : 'the native'} path; both paths pass all Wycheproof vectors (\`packages/common/test/ed25519.test.ts\`); the resolver caches only verified results and answers a repeated lookup from them with no upstream query, so with no verification (\`test/resolver-cache.test.ts\`) | ${met(v.native !== undefined)} |`;
  const reg = r.registration;
  const regP99 = reg.queriesMeanwhile.percentilesMs?.p99 ?? NaN;
  const quietP99 = ours?.p99LatencyMs ?? NaN;
  const lines = [
    '# Benchmarks',
    '',
    'How the servers of this repository compare with stock DNS software on the same machine.',
    '`npm run bench` produces the figures below and a JSON file with every raw figure in',
    '`bench/results/`; `bench/README.md` describes the method. Performance is measured here, never',
    'asserted in tests.',
    '',
    `Run of ${r.date}: \`npm run bench -- --scale ${r.scale}${r.quick ? ' --quick' : ''}\`` +
      `${r.quick ? ' (quick: fewer and shorter rounds than the default)' : ''}, ${int(r.wallSeconds)} s wall time;`,
    `raw figures in \`${resultsPath}\`.`,
    '',
    '## Machine',
    '',
    `- CPU: ${r.machine.cpuModel}, ${r.machine.cores} cores; memory ${r.machine.memoryGiB} GiB; ${r.machine.kernel}`,
    `- Node.js ${r.machine.node}; ${r.machine.nsd}; ${r.machine.knot}; dnsperf ${r.machine.dnsperf}`,
    '',
    '## Targets',
    '',
    `Each figure is the median of the per-round ratios (at least ${MIN_ROUNDS} interleaved rounds; one run where the benchmark has no rounds), ` +
      'with their spread; the CPU ratio is theirs ÷ ours CPU per query (medians), in the direction of the throughput ratio. ' +
      'A target is met only when the median and, where CPU is measured, the CPU ratio both meet its goal (`bench/README.md`).',
    '',
    ...targetsTable(targetFigures(r)),
    '',
    '| other measure | measured | status |',
    '| ------------- | -------- | ------ |',
    verifyRow,
    `| Registration: durable publishes while serving queries | **${int(reg.publishesPerSecond)}** publishes/s (${int(reg.publishes)} publishes, ${reg.concurrency} concurrent writers); query p99 at ${int(u.latencyQps)} q/s **${fixed(regP99, 3)} ms** while publishing against ${fixed(quietP99, 3)} ms without (×${fixed(regP99 / quietP99, 2)}) | targets above |`,
    scaleRow(scale),
    transferTargetRow(r.transfer),
    `| CPU profile of the slowest path | ${r.profiles.length === 0 ? 'not taken' : `DP: ${r.profiles.map((p) => p.phase).join('; ')} (below)`}${r.resolver?.sync === undefined ? '' : '; resolver: cold contact sync (below)'} | ${r.profiles.length === 0 ? '—' : 'kept below'} |`,
    '',
    '## Data set',
    '',
    `Zone \`${r.dataSet.origin}\` in an LMDB store: ${int(r.dataSet.csis)} CSIs with 1–3 signed mappings each ` +
      `(${int(r.dataSet.mappings)} mappings), written with \`store.apply\` in batches of 1,000 changes. ` +
      `Creating the signed mappings took ${fixed(r.dataSet.signSeconds, 1)} s, applying them ${fixed(r.dataSet.applySeconds, 1)} s; ` +
      `the NSEC3 export for NSD and Knot (${int(r.dataSet.zoneFileBytes / 2 ** 20)} MiB) took ${fixed(r.dataSet.exportSeconds, 1)} s.`,
    ...(r.dataSet.note === '' ? [] : ['', r.dataSet.note]),
    '',
    '## Authoritative DP over UDP',
    '',
    `${u.rounds.length / Math.max(1, new Set(u.rounds.map((x) => x.server)).size)} interleaved rounds per server; ` +
      `the query file holds ${int(u.queryFile.existing)} MAP questions for existing CSIs and ${int(u.queryFile.absent)} for absent ones, DO set. ` +
      'Before the rounds, each server is sent the whole query file once (the first pass): NSD and Knot compiled every answer when they loaded the zone, ' +
      'our DP compiles each answer into its answer cache the first time it is asked, so the first pass shows that cost. ' +
      `Each round is a full-load run (queries/s, CPU per query: the server’s user + system time from \`/proc/<pid>/stat\` over the run, divided by the completed queries) ` +
      `followed by a run at a fixed ${int(u.latencyQps)} queries/s whose per-response latencies (dnsperf \`-v\`) give the percentiles: at full load, latency would only measure the queue.` +
      (u.workers === undefined
        ? ''
        : ` \`ours\`, \`nsd\` and \`knot\` answer on one core (one process; \`server-count: 1\`; \`udp-workers: 1\`), ` +
          `\`ours-all\`, \`nsd-all\` and \`knot-all\` on ${u.workers} (\`answerWorkers\`, \`server-count\`, \`udp-workers\` and \`tcp-workers\`), all up at once in the same rounds; ` +
          'CPU per query counts the whole process tree (our answer workers, NSD’s server processes).'),
    '',
    '| server | first pass queries/s | first pass CPU µs/query |',
    '| ------ | -------------------- | ----------------------- |',
    ...(Object.entries(u.firstPass) as [ServerName, DnsperfResult][]).map(
      ([name, x]) =>
        `| ${name} | ${int(x.queriesPerSecond)} | ${fixed(x.cpuMicrosecondsPerQuery, 1)} |`,
    ),
    '',
    '| round | server | queries/s | lost | CPU µs/query | p50 (ms) | p90 (ms) | p99 (ms) |',
    '| ----- | ------ | --------- | ---- | ------------ | -------- | -------- | -------- |',
    ...u.rounds.map(
      (x) =>
        `| ${x.round} | ${x.server} | ${int(x.result.queriesPerSecond)} | ${x.result.queriesLost} | ${fixed(x.result.cpuMicrosecondsPerQuery, 1)} | ${fixed(x.latency.p50, 3)} | ${fixed(x.latency.p90, 3)} | ${fixed(x.latency.p99, 3)} |`,
    ),
    '',
    '| server | median queries/s | median CPU µs/query | median p50 (ms) | median p90 (ms) | median p99 (ms) |',
    '| ------ | ---------------- | ------------------- | --------------- | --------------- | --------------- |',
    ...(
      Object.entries(u.medians) as [ServerName, NonNullable<Results['udp']['medians']['ours']>][]
    ).map(
      ([name, m]) =>
        `| ${name} | ${int(m.queriesPerSecond)} | ${fixed(m.cpuMicrosecondsPerQuery, 1)} | ${fixed(m.p50LatencyMs, 3)} | ${fixed(m.p90LatencyMs, 3)} | ${fixed(m.p99LatencyMs, 3)} |`,
    ),
    '',
    ...(u.skipped.length === 0 ? [] : ['Skipped: ' + u.skipped.join('; ') + '.', '']),
    ...profileSections([
      ...r.profiles,
      ...(r.resolver?.sync === undefined ? [] : [r.resolver.sync.profile]),
    ]),
    resolverMarkdown(r.resolver, r.doh),
    ...transferMarkdown(r.transfer),
    ...relayMarkdown(r.relay),
    ...(scale === undefined
      ? []
      : [
          '## Scale: 100,000 and 10,000,000 CSIs',
          '',
          `From \`npm run bench -- --scale large\` (${scale.large.date}): our DP alone over each data set (NSD and Knot would load a zone file of tens of GB), with the page cache ${scale.large.startup.cache === 'cold' ? 'dropped before each start-up' : 'warm'}. Latency at a fixed rate over names spread across the whole data set, existing and absent.`,
          '',
          scaleMarkdown(scale.small, scale.large),
          '',
        ]),
    '## Registration',
    '',
    `${int(reg.publishes)} durable publishes (one signed MAP each, new CSIs) through \`store.apply\`, ` +
      `${reg.concurrency} at a time (group commit), inside the DP process while dnsperf sent it queries ` +
      (reg.answerWorkers === undefined || reg.answerWorkers <= 1
        ? ''
        : `(the DP with ${reg.answerWorkers} answer workers: the process that publishes is the writer, each publish resolved once every worker serves it) `) +
      `(\`-Q\` capped): ${int(reg.publishesPerSecond)} publishes/s over ${fixed(reg.seconds, 2)} s; ` +
      `meanwhile ${int(reg.queriesMeanwhile.queriesPerSecond)} queries/s answered, ${reg.queriesMeanwhile.queriesLost} lost` +
      (reg.rounds === undefined
        ? '.'
        : ` (the round of the median rate, of ${reg.rounds.length}, each publishing for new CSIs).`),
    '',
    ...(reg.rounds === undefined
      ? []
      : [
          '| round | publishes | seconds | publishes/s | query p99 meanwhile (ms) |',
          '| ----- | --------- | ------- | ----------- | ------------------------ |',
          ...reg.rounds.map(
            (x) =>
              `| ${x.round} | ${int(x.publishes)} | ${fixed(x.seconds, 2)} | ${int(x.publishesPerSecond)} | ${fixed(x.p99Ms, 3)} |`,
          ),
          '',
        ]),
  ];
  return lines.join('\n');
}

/** One table per profile: the functions with the most self time, as shares of the busy time. */
export function profileSections(
  profiles: (ProfileSummary & { queriesPerSecond?: number })[],
): string[] {
  if (profiles.length === 0) return [];
  return [
    '## Where the time goes',
    '',
    'CPU profiles of our DP and resolver processes (the inspector’s sampling profiler, 100 µs interval), each taken in a run of its own so that no figure above carries the profiler’s cost. ' +
      'Shares are of the time the process was busy (idle excluded), by function, self time.',
    '',
    ...profiles.flatMap((p) => [
      `### ${p.phase}`,
      '',
      `${p.queriesPerSecond === undefined ? '' : `${int(p.queriesPerSecond)} queries/s under the profiler; `}busy ${int(p.busyMs)} ms of ${int(p.sampledMs)} ms sampled; garbage collection ${fixed(p.gcPercent, 1)}%.`,
      '',
      '| function | self time |',
      '| -------- | --------- |',
      ...p.top.map((e) => `| \`${e.function}\` | ${fixed(e.percent, 1)}% |`),
      '',
    ]),
  ];
}

/** The scale row, from the last `--scale large` run. */
function scaleRow(scale: { small: ScaleResult; large: ScaleResult } | undefined): string {
  const target = 'Scale: store size, memory, start-up and query latency at 10M CSIs against 100k';
  if (scale === undefined)
    return `| ${target} | not measured: \`npm run bench -- --scale large\` has not run here | — |`;
  const { small, large } = scale;
  const p50 = (x: ScaleResult): number =>
    x.latency.passes.find((p) => p.pass === 'first')?.p50Ms ?? NaN;
  const gib = (b: number): string => `${(b / 2 ** 30).toFixed(2)} GiB`;
  const mib = (kib: number): string => `${int(kib / 1024)} MiB`;
  return (
    `| ${target} | store ${gib(small.store.dataDiskBytes)} → **${gib(large.store.dataDiskBytes)}**; ` +
    `RSS ${mib(small.memory.afterLoad.vmRssKiB)} → **${mib(large.memory.afterLoad.vmRssKiB)}**; ` +
    `start-up to first answer ${int(small.startup.medianFirstAnswerMs)} → **${int(large.startup.medianFirstAnswerMs)} ms**; ` +
    `p50 of first answers ${fixed(p50(small), 3)} → **${fixed(p50(large), 3)} ms** (scale section) | measured (${large.date}) |`
  );
}
