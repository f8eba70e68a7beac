import { DISCOVERY_BATCH_CONCURRENCY, OBLIVIOUS_BATCH_CONCURRENCY } from '@mimi-discovery/resolver';
import { median } from './method.js';

/**
 * The relay benchmark's results (`relay-bench.ts` measures them), the per-round figures its
 * targets take (`targets.ts`) and its section of `docs/benchmarks.md`. Pure: no processes,
 * files or clocks, so that the arithmetic is tested (`test/relay-bench.test.ts`).
 */

/** How a lookup reaches the resolver: its JSON API, or its gateway through the relay. */
export type RelayPath = 'direct' | 'relay';

export const RELAY_PATHS: readonly RelayPath[] = ['direct', 'relay'];

/** CPU seconds (user + system, `/proc/<pid>/stat`) of each process during one run. */
export interface RelayCpuSeconds {
  resolver: number;
  /** Zero on the direct path, which the relay and the issuer do not see. */
  relay: number;
  issuer: number;
  /** The bench's own process: the client (and, through the relay, its HPKE and token blinding). */
  client: number;
}

/** Lookups of one CSI each (`discover`), `concurrency` in flight, for a fixed time. */
export interface RelayLookupRun {
  lookups: number;
  /** Lookups that threw, or whose result was not `found` (every CSI asked exists). */
  failed: number;
  seconds: number;
  /** Successful lookups ÷ seconds. */
  lookupsPerSecond: number;
  cpu: RelayCpuSeconds;
}

/** Lookups one after another: each one's time, from the call to its result. */
export interface RelayLatencyRun {
  lookups: number;
  failed: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
}

/** One contact sync: every CSI of the sync, through the client's batch verb. */
export interface RelaySyncRun {
  csis: number;
  seconds: number;
  csisPerSecond: number;
  /** Results by discovery status. */
  statuses: Record<string, number>;
  cpu: RelayCpuSeconds;
}

/** One path in one round. */
export interface RelayRound {
  round: number;
  path: RelayPath;
  throughput: RelayLookupRun;
  latency: RelayLatencyRun;
  sync: RelaySyncRun;
}

/** The figures one round gives, relay ÷ direct (or relay − direct for latency). */
export interface RelayRoundFigures {
  round: number;
  /** Lookups/s through the relay ÷ direct. */
  lookups: number;
  /** p50 of a lookup through the relay − direct, ms. */
  addedP50Ms: number;
  /** CSIs/s of the sync through the relay ÷ direct. */
  sync: number;
}

/** Medians over the rounds of one path. */
export interface RelayPathMedians {
  lookupsPerSecond: number;
  /** The servers' CPU (resolver, relay, issuer) per successful lookup, µs. */
  serverCpuMicrosecondsPerLookup: number;
  /** The client's CPU per successful lookup, µs. */
  clientCpuMicrosecondsPerLookup: number;
  p50Ms: number;
  p99Ms: number;
  syncMs: number;
  /** The servers' CPU per CSI of the sync, µs. */
  serverCpuMicrosecondsPerSyncCsi: number;
}

/** What `runRelayBench` returns. */
export interface RelayBenchResult {
  /** Why the benchmark did not run; then nothing else is set. */
  skipped?: string;
  rounds: RelayRound[];
  ratios: RelayRoundFigures[];
  medians: Partial<Record<RelayPath, RelayPathMedians>>;
  /** Distinct existing CSIs the lookups cycle through (all in the resolver's cache). */
  lookupCsis: number;
  concurrency: number;
  seconds: number;
  latencyLookups: number;
  syncCsis: number;
  /** CSIs one token covers at the gateway (a lookup spends a token; a sync one per chunk). */
  csisPerToken: number;
  tokensPerFetch: number;
  /** Whether the first relayed sync gave the statuses and mapping counts of the direct one. */
  sameResults: boolean;
  /** Per process, the command line. */
  commands: Record<string, string>;
}

/** The servers' CPU seconds of a run: the resolver's, and the relay's and the issuer's. */
export function serverCpuSeconds(cpu: RelayCpuSeconds): number {
  return cpu.resolver + cpu.relay + cpu.issuer;
}

/**
 * Each round's figures, for the rounds in which both paths ran; a figure whose denominator is
 * not positive is NaN, which the method leaves out (`spreadOf`), never counts as zero.
 */
export function relayRoundFigures(rounds: readonly RelayRound[]): RelayRoundFigures[] {
  const numbers = [...new Set(rounds.map((r) => r.round))].sort((a, b) => a - b);
  return numbers.flatMap((round) => {
    const of = (path: RelayPath): RelayRound | undefined =>
      rounds.find((r) => r.round === round && r.path === path);
    const direct = of('direct');
    const relay = of('relay');
    if (direct === undefined || relay === undefined) return [];
    const ratio = (a: number, b: number): number => (b > 0 ? a / b : NaN);
    return [
      {
        round,
        lookups: ratio(relay.throughput.lookupsPerSecond, direct.throughput.lookupsPerSecond),
        addedP50Ms: relay.latency.p50Ms - direct.latency.p50Ms,
        sync: ratio(relay.sync.csisPerSecond, direct.sync.csisPerSecond),
      },
    ];
  });
}

/** Per path, the medians over its rounds (a path that did not run is absent). */
export function relayMedians(
  rounds: readonly RelayRound[],
): Partial<Record<RelayPath, RelayPathMedians>> {
  const medians: Partial<Record<RelayPath, RelayPathMedians>> = {};
  const per = (seconds: number, count: number): number =>
    count > 0 ? (seconds * 1e6) / count : NaN;
  for (const path of RELAY_PATHS) {
    const of = rounds.filter((r) => r.path === path);
    if (of.length === 0) continue;
    const m = (pick: (r: RelayRound) => number): number => median(of.map(pick));
    const succeeded = (r: RelayRound): number => r.throughput.lookups - r.throughput.failed;
    medians[path] = {
      lookupsPerSecond: m((r) => r.throughput.lookupsPerSecond),
      serverCpuMicrosecondsPerLookup: m((r) =>
        per(serverCpuSeconds(r.throughput.cpu), succeeded(r)),
      ),
      clientCpuMicrosecondsPerLookup: m((r) => per(r.throughput.cpu.client, succeeded(r))),
      p50Ms: m((r) => r.latency.p50Ms),
      p99Ms: m((r) => r.latency.p99Ms),
      syncMs: m((r) => r.sync.seconds * 1000),
      serverCpuMicrosecondsPerSyncCsi: m((r) => per(serverCpuSeconds(r.sync.cpu), r.sync.csis)),
    };
  }
  return medians;
}

const int = (n: number): string =>
  Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—';
const fixed = (n: number, digits: number): string => (Number.isFinite(n) ? n.toFixed(digits) : '—');

/** The section of `docs/benchmarks.md`; empty when the run has no relay part. */
export function relayMarkdown(r: RelayBenchResult | undefined): string[] {
  if (r === undefined) return [];
  const lines = ['## Lookups and contact syncs through the oblivious relay', ''];
  if (r.skipped !== undefined) return [...lines, `Not measured: ${r.skipped}.`, ''];
  const rounds = new Set(r.rounds.map((x) => x.round)).size;
  lines.push(
    'The same warm resolver asked directly through its JSON API (`createDiscoveryClient({ url })`) and through the oblivious relay and its gateway ' +
      '(`createDiscoveryClient({ relay })`: Oblivious HTTP, RFC 9458, one Privacy Pass token per request, RFC 9578, fetched from the issuer ' +
      `${r.tokensPerFetch} at a time as the client needs them), the relay and the issuer each in a process of its own (\`bench/lib/relay-bench.ts\`). ` +
      `Every CSI asked exists and was resolved once before the rounds, so both paths are answered from the resolver's cache and what differs is the relay path's own cost. ` +
      `In ${rounds} interleaved rounds (the order of the paths rotated each round), each path gets: lookups of one CSI each, ${r.concurrency} in flight for ${r.seconds} s, ` +
      `cycling through ${int(r.lookupCsis)} CSIs; ${int(r.latencyLookups)} lookups one after another, whose times give p50 and p99; and a contact sync of ${int(r.syncCsis)} CSIs ` +
      `(direct: batches of the API's limit, ${DISCOVERY_BATCH_CONCURRENCY} at a time; through the relay: chunks of ${r.csisPerToken} CSIs, one token each, ${OBLIVIOUS_BATCH_CONCURRENCY} at a time, as each client sends them). ` +
      'Server CPU is the resolver’s, the relay’s and the issuer’s user + system time (`/proc/<pid>/stat`); the client’s (the bench process: HPKE, token blinding) is shown apart. ' +
      `The relayed sync ${r.sameResults ? 'gave' : 'did **not** give'} the statuses and mapping counts of the direct one.`,
    '',
    '| round | path | lookups/s | failed | server CPU µs/lookup | client CPU µs/lookup | p50 (ms) | p99 (ms) | sync (ms) |',
    '| ----- | ---- | --------- | ------ | -------------------- | -------------------- | -------- | -------- | --------- |',
    ...r.rounds.map((x) => {
      const ok = x.throughput.lookups - x.throughput.failed;
      const per = (s: number): string => (ok > 0 ? fixed((s * 1e6) / ok, 0) : '—');
      return `| ${x.round} | ${x.path} | ${int(x.throughput.lookupsPerSecond)} | ${x.throughput.failed + x.latency.failed} | ${per(serverCpuSeconds(x.throughput.cpu))} | ${per(x.throughput.cpu.client)} | ${fixed(x.latency.p50Ms, 3)} | ${fixed(x.latency.p99Ms, 3)} | ${int(x.sync.seconds * 1000)} |`;
    }),
    '',
    '| path | median lookups/s | server CPU µs/lookup | client CPU µs/lookup | p50 (ms) | p99 (ms) | sync (ms) | server CPU µs/CSI of the sync |',
    '| ---- | ---------------- | -------------------- | -------------------- | -------- | -------- | --------- | ----------------------------- |',
    ...RELAY_PATHS.flatMap((path) => {
      const m = r.medians[path];
      return m === undefined
        ? []
        : [
            `| ${path} | ${int(m.lookupsPerSecond)} | ${fixed(m.serverCpuMicrosecondsPerLookup, 0)} | ${fixed(m.clientCpuMicrosecondsPerLookup, 0)} | ${fixed(m.p50Ms, 3)} | ${fixed(m.p99Ms, 3)} | ${int(m.syncMs)} | ${fixed(m.serverCpuMicrosecondsPerSyncCsi, 1)} |`,
          ];
    }),
    '',
    '| round | lookups/s relay ÷ direct | added p50 (ms) | sync CSIs/s relay ÷ direct |',
    '| ----- | ------------------------ | -------------- | -------------------------- |',
    ...r.ratios.map(
      (x) =>
        `| ${x.round} | ${fixed(x.lookups, 3)} | ${fixed(x.addedP50Ms, 3)} | ${fixed(x.sync, 3)} |`,
    ),
    '',
  );
  return lines;
}
