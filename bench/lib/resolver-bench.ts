import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildQuery, queryUdp, type Message } from '@mimi-discovery/common';
import {
  DEFAULT_MAX_BATCH,
  DiscoveryClientError,
  createDiscoveryClient,
  type DiscoveryClient,
} from '@mimi-discovery/resolver';
import { csiOf, nameOf } from './dataset.js';
import { dnsperfArgs, runDnsperf, type DnsperfOptions, type DnsperfResult } from './dnsperf.js';
import type { BenchHierarchy } from './hierarchy.js';
import { treeCpuSeconds } from './proc.js';
import { MIN_ROUNDS } from './method.js';
import { median } from './report.js';
import { installed } from './stock.js';
import { poolVerifyRate } from './verify-rate.js';
import type { ProfileSummary } from './profile.js';

/**
 * The resolver benchmarks, on the running hierarchy:
 *
 * 1. **Cache hits over UDP**: dnsperf against our resolver and Unbound with the same query file
 *    of existing CSIs (MAP, DO set), after every question was asked of each once (so both
 *    caches hold every answer), in interleaved rounds; each round also reads how many questions
 *    each resolver answered from its cache.
 * 2. **Cold resolution**: one CSI through the whole hierarchy with nothing cached — no answer,
 *    no DNSKEY, no delegation, no server RTT, no upstream connection — timed from sending the
 *    question to the answer. Ours gets a new resolver and new front ends (`fresh`: their answer
 *    cache too) in the same process, on the same ports;
 *    Unbound is flushed through unbound-control. The queries the root and the DP answered
 *    meanwhile are counted, to show that each sample walked from the root. Variants, rotated
 *    within each sample, each on a CSI of its own (so that no variant finds the DP's answer
 *    cache warm): Unbound's MAP question over UDP; ours, the same question over UDP with DoH
 *    upstream (the default) and with plain DNS upstream (Unbound's transport); and ours through
 *    the JSON API (`GET /v1/discover`), which also resolves MAPREF and AUTHKEY and verifies the
 *    mappings: the whole of design §6. Ours runs without its local copy of the root's zone
 *    (`rootCopy: false`: every lookup walks from the root, minimised), and, in the `-root-copy`
 *    variants, with it (loaded by AXFR before the sample, as a resolver that has run a while
 *    holds it; Unbound's copy of a zone is kept by its flush too): then the root is asked
 *    nothing, which the root's query count shows.
 * 3. **Contact sync**: N distinct existing CSIs through `POST /v1/discover` in batches of the
 *    API's limit, one batch after another over one HTTP/2 connection, first with a fresh
 *    resolver (cold) and right after again (warm), in `MIN_ROUNDS` rounds, each with a new
 *    resolver; the figures are the medians of the rounds. The verification bound is the time the
 *    Ed25519 verifications the cold sync needs take on all cores: at the rate of the resolver's
 *    verification pool (`verifyThreads`, `createVerifyPool`) with one worker per core, measured
 *    in the same run. The one-core bound (the rate of `verify` in the resolver's own process, on
 *    the thread that runs its JavaScript) is reported beside it. The resolver's CPU seconds are
 *    its process's from /proc, which count every thread of it, the pool's workers included.
 */

export interface ResolverBenchOptions {
  /** Interleaved rounds of the cache-hit benchmark (`MIN_ROUNDS` of `method.ts`). */
  rounds: number;
  /** Seconds per dnsperf run. */
  seconds: number;
  quick: boolean;
  /** A directory for the query file. */
  workDir: string;
  /** CSIs in the data set (index 0 … csis - 1). */
  csis: number;
  /** Existing CSIs in the query file of the cache-hit benchmark; default min(csis, 10,000). */
  udpNames?: number;
  /** Cold samples per variant (≥ 7); default 7 with `quick`, else 15. */
  coldSamples?: number;
  /** CSIs of the contact sync; default min(csis, 10,000). */
  syncCsis?: number;
  /** Which benchmarks run; default all three (for development and profiling). */
  parts?: readonly ResolverBenchPart[];
}

export type ResolverBenchPart = 'udp' | 'cold' | 'sync';

export type ResolverName = 'ours' | 'unbound';

export interface UdpRound {
  round: number;
  server: ResolverName;
  result: DnsperfResult;
  /** Share of the questions of the round answered from the cache. */
  cacheHitRatio: number;
}

/** How a warm-up (or a check) went: every name asked once. */
export interface AskAllResult {
  asked: number;
  /** NOERROR with at least one MAP record. */
  answered: number;
  /** Of those, with the AD flag. */
  authenticated: number;
  failed: number;
  seconds: number;
}

export type ColdVariant =
  | 'unbound'
  | 'ours-udp'
  | 'ours-udp-dns-upstream'
  | 'ours-discover'
  | 'ours-udp-flushed'
  | 'ours-discover-flushed'
  | 'ours-udp-flushed-root-copy'
  | 'ours-discover-flushed-root-copy';

/** Variants whose resolver keeps a copy of the root's zone, and so asks the root nothing. */
const ROOT_COPY_VARIANTS: ReadonlySet<ColdVariant> = new Set([
  'ours-udp-flushed-root-copy',
  'ours-discover-flushed-root-copy',
]);

export interface ColdSample {
  sample: number;
  variant: ColdVariant;
  csi: string;
  ms: number;
  ok: boolean;
  /** What came back: rcode and MAP count, or the discovery status and mapping count. */
  outcome: string;
  /** Queries the root and the DP answered during the sample. */
  rootQueries: number;
  dpQueries: number;
}

export interface SyncRun {
  seconds: number;
  csisPerSecond: number;
  /**
   * Octets of the response bodies, and the CPU time of the client (the bench's process: reading
   * the JSON, parsing and checking each result) during the sync.
   */
  responseOctets: number;
  clientCpuMs: number;
  /** Results by discovery status. */
  statuses: Record<string, number>;
  /** CPU seconds of our resolver's and the DP's process trees during the run. */
  resolverCpuSeconds: number;
  dpCpuSeconds: number;
}

/** Cache hits over UDP. */
export interface UdpBenchResult {
  names: number;
  command: string;
  warmUp: Partial<Record<ResolverName, AskAllResult>>;
  rounds: UdpRound[];
  ratios: { round: number; oursToUnbound: number }[];
  medians: Partial<
    Record<
      ResolverName,
      {
        queriesPerSecond: number;
        averageLatencyMs: number;
        cpuMicrosecondsPerQuery: number;
        cacheHitRatio: number;
      }
    >
  >;
  medianRatioOursToUnbound?: number;
}

/** Cold resolution. */
export interface ColdBenchResult {
  samples: ColdSample[];
  /** Per variant: p50 and the samples' range, over the samples that succeeded. */
  summary: Partial<
    Record<ColdVariant, { p50Ms: number; minMs: number; maxMs: number; ok: number }>
  >;
  /**
   * Fewest queries the root and the DP answered in any sample of a variant without the root
   * copy (the DP: of any variant).
   */
  fewestRootQueries: number;
  fewestDpQueries: number;
  /** Most queries the root answered in a sample of a variant with the root copy (expected 0). */
  mostRootQueriesWithCopy?: number;
  /**
   * Whether every sample without the root copy asked the root at least twice (its DNSKEY, and
   * the referral or the DS), and every sample the DP at least twice (its DNSKEY, and the
   * question): nothing was left in a cache.
   */
  everySampleCold: boolean;
  /**
   * p50 of `ours-discover-flushed` ÷ p50 of `unbound` (the target: both with their caches
   * emptied, process and connections kept), and of the other variants.
   */
  discoverFlushedToUnbound?: number;
  udpFlushedToUnbound?: number;
  /** The same two with the root copy. */
  discoverFlushedRootCopyToUnbound?: number;
  udpFlushedRootCopyToUnbound?: number;
  discoverToUnbound?: number;
  udpToUnbound?: number;
  udpDnsUpstreamToUnbound?: number;
}

/** Contact sync. */
export interface SyncBenchResult {
  /** A CPU profile of the resolver during a further cold sync (not one of the measured runs). */
  profile: ProfileSummary;
  csis: number;
  batchSize: number;
  batches: number;
  cold: SyncRun;
  warm: SyncRun;
  /** Verified mappings in the cold results. */
  mappings: number;
  /**
   * Ed25519 verifications the cold sync needs: per CSI the MAP RRSIG and the NSEC RRSIG of the
   * MAPREF denial, and per mapping its signature and its attestation's; once, the DNSKEY RRSIGs
   * of the root and the DP, the DS of the delegation and the AUTHKEY RRSIG (the SOA RRSIG of a
   * denial is the same signature for every CSI: the resolver checks it once per cache fill).
   */
  verifications: number;
  /**
   * Verification rate on all cores: the verification pool with {@link cores} workers (one per
   * core; runs before the pool's own existed measured one core here, with `cores: 1`).
   */
  verificationsPerSecond: number;
  cores: number;
  boundSeconds: number;
  boundCsisPerSecond: number;
  /** Cold throughput ÷ the bound's on all cores (target ≥ 0.7). */
  coldToBound: number;
  /**
   * The same in CPU time, which another load on the machine disturbs less: the CPU seconds
   * the verifications take at the rate per CPU second, ÷ the resolver's CPU seconds in the
   * cold sync.
   */
  verificationsPerCpuSecond: number;
  coldCpuToBound: number;
  /**
   * The same bound on one core: the rate of `verify` in the resolver's process, on the thread
   * that runs its JavaScript (what {@link coldToBound} was before verification had threads).
   */
  oneCore?: {
    verificationsPerSecond: number;
    verificationsPerCpuSecond: number;
    boundSeconds: number;
    boundCsisPerSecond: number;
    coldToBound: number;
    coldCpuToBound: number;
  };
  warmMs: number;
  /**
   * Per round (a new resolver, a cold sync, then a warm one): the figures whose medians are
   * `coldToBound`, `coldCpuToBound` and `warmMs`. Absent from runs before syncs ran in rounds.
   */
  rounds?: {
    round: number;
    coldToBound: number;
    coldCpuToBound: number;
    /** Against the one-core bound; absent from runs before the bound was on all cores. */
    coldToOneCoreBound?: number;
    warmMs: number;
  }[];
}

/** What {@link runResolverBench} returns; a part that was not asked for is absent. */
export interface ResolverBenchResult {
  skipped: string[];
  /** Unbound's version (`unbound -V`), or why it did not run. */
  unbound: string;
  udp?: UdpBenchResult;
  cold?: ColdBenchResult;
  sync?: SyncBenchResult;
}

/** Outstanding questions of the warm-up: enough to keep both resolvers busy, not a load test. */
const WARM_UP_CONCURRENCY = 50;
/** Per-question timeout of the warm-up and of cold samples (the resolver's own bound is 10 s). */
const QUESTION_TIMEOUT_MS = 12_000;
/** Time the warm-up of one resolver may take in all. */
const WARM_UP_DEADLINE_MS = 180_000;

const rd = { dnssecOk: true, recursionDesired: true } as const;

/** Asks every name (MAP) once over UDP, {@link WARM_UP_CONCURRENCY} at a time, within the deadline. */
async function askAll(port: number, names: readonly string[]): Promise<AskAllResult> {
  const started = performance.now();
  const deadline = started + WARM_UP_DEADLINE_MS;
  const result: AskAllResult = { asked: 0, answered: 0, authenticated: 0, failed: 0, seconds: 0 };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length && performance.now() < deadline) {
      const name = names[next++]!;
      result.asked++;
      try {
        const response = await queryUdp({ host: '127.0.0.1', port }, buildQuery(name, 'MAP', rd), {
          timeoutMs: QUESTION_TIMEOUT_MS,
        });
        if (response.rcode === 'NOERROR' && response.answers.some((rr) => rr.type === 'MAP')) {
          result.answered++;
          if (response.flags.ad) result.authenticated++;
        } else result.failed++;
      } catch {
        result.failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: WARM_UP_CONCURRENCY }, worker));
  result.seconds = (performance.now() - started) / 1000;
  return result;
}

function maps(response: Message): number {
  return response.answers.filter((rr) => rr.type === 'MAP').length;
}

/**
 * The JSON API's client (`createDiscoveryClient`), and what its last response weighed: its
 * octets, and when its body had been read, so that the rest of a call is the client's parsing.
 */
interface ApiProbe {
  readonly client: DiscoveryClient;
  /** Octets of the response bodies read since the count was last set to 0. */
  readonly received: { octets: number };
}

function createProbe(h: BenchHierarchy): ApiProbe {
  const received = { octets: 0 };
  const client = createDiscoveryClient({
    url: h.resolver.apiUrl,
    ca: h.caPem,
    onResponse: ({ octets }) => {
      received.octets += octets;
    },
  });
  return { client, received };
}

/**
 * Opens the client's connection to the JSON API with a request that resolves nothing (an input
 * that is not a CSI, refused before the resolver is asked), so that the TLS handshake is not
 * timed. After `fresh` the old connection is gone: the first try may meet it closing.
 */
async function connectApi(api: ApiProbe): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await api.client.discover('not a CSI');
      throw new Error('the JSON API resolved an input that is not a CSI');
    } catch (error) {
      if (error instanceof DiscoveryClientError && error.code === 'ERR_CSI_INVALID') return;
      if (attempt >= 3) throw error;
    }
  }
}

/** Runs the three resolver benchmarks; see the module comment. */
export async function runResolverBench(
  h: BenchHierarchy,
  options: ResolverBenchOptions,
): Promise<ResolverBenchResult> {
  const skipped: string[] = [];
  const parts = options.parts ?? ['udp', 'cold', 'sync'];
  const api = createProbe(h);
  try {
    // In this order: the cold runs and the sync replace our resolver, emptying its cache.
    const udp = parts.includes('udp') ? await cacheHits(h, options, skipped) : undefined;
    const cold = parts.includes('cold')
      ? await coldResolution(h, options, api, skipped)
      : undefined;
    const sync = parts.includes('sync') ? await contactSync(h, options, api) : undefined;
    return {
      skipped,
      unbound: h.unbound?.version ?? 'did not run',
      ...(udp === undefined ? {} : { udp }),
      ...(cold === undefined ? {} : { cold }),
      ...(sync === undefined ? {} : { sync }),
    };
  } finally {
    await api.client.close();
  }
}

async function cacheHits(
  h: BenchHierarchy,
  options: ResolverBenchOptions,
  skipped: string[],
): Promise<UdpBenchResult> {
  const count = Math.min(options.csis, options.udpNames ?? 10_000);
  const step = options.csis / count;
  const names = Array.from({ length: count }, (_, i) => nameOf(Math.floor(i * step)));
  const queryFile = join(options.workDir, 'resolver-queries.txt');
  writeFileSync(queryFile, names.map((n) => `${n} TYPE65400\n`).join(''));
  const perf = (port: number): DnsperfOptions => ({
    port,
    queryFile,
    seconds: options.seconds,
    clients: 4,
    outstanding: 100,
  });
  const result: UdpBenchResult = {
    names: count,
    command: `dnsperf ${dnsperfArgs(perf(0)).join(' ')} (port per resolver)`,
    warmUp: {},
    rounds: [],
    ratios: [],
    medians: {},
  };
  if (!installed('dnsperf')) {
    skipped.push('cache hits over UDP: dnsperf is not installed (apt-get install dnsperf)');
    return result;
  }
  const targets: {
    name: ResolverName;
    port: number;
    pid: number;
    cache: () => Promise<{ hits: number; misses: number }>;
  }[] = [
    {
      name: 'ours',
      port: h.resolver.port,
      pid: h.resolver.pid,
      cache: async () => {
        const stats = await h.resolver.stats();
        return { hits: stats.cacheHits, misses: stats.cacheMisses };
      },
    },
  ];
  const unbound = h.unbound;
  if (unbound === undefined)
    skipped.push(`cache hits of Unbound: ${h.unboundMissing ?? 'did not run'}`);
  else
    targets.push({
      name: 'unbound',
      port: unbound.port,
      pid: unbound.pid,
      cache: () => unbound.cacheStats(),
    });

  // Every question once, so that each cache holds every answer before the rounds.
  for (const t of targets) {
    result.warmUp[t.name] = await askAll(t.port, names);
  }
  for (let round = 1; round <= options.rounds; round++) {
    const order = targets.map((_, i) => targets[(i + round - 1) % targets.length]!);
    for (const t of order) {
      const before = await t.cache();
      const run = await runDnsperf(perf(t.port), t.pid);
      const after = await t.cache();
      const hits = after.hits - before.hits;
      const misses = after.misses - before.misses;
      result.rounds.push({
        round,
        server: t.name,
        result: run,
        cacheHitRatio: hits + misses > 0 ? hits / (hits + misses) : NaN,
      });
    }
  }
  const qps = (round: number, server: ResolverName): number | undefined =>
    result.rounds.find((r) => r.round === round && r.server === server)?.result.queriesPerSecond;
  for (let round = 1; round <= options.rounds; round++) {
    const ours = qps(round, 'ours');
    const theirs = qps(round, 'unbound');
    if (ours !== undefined && theirs !== undefined) {
      result.ratios.push({ round, oursToUnbound: ours / theirs });
    }
  }
  for (const t of targets) {
    const rounds = result.rounds.filter((r) => r.server === t.name);
    const of = (pick: (r: UdpRound) => number): number => median(rounds.map(pick));
    result.medians[t.name] = {
      queriesPerSecond: of((r) => r.result.queriesPerSecond),
      averageLatencyMs: of((r) => r.result.averageLatencyMs),
      cpuMicrosecondsPerQuery: of((r) => r.result.cpuMicrosecondsPerQuery),
      cacheHitRatio: of((r) => r.cacheHitRatio),
    };
  }
  if (result.ratios.length > 0) {
    result.medianRatioOursToUnbound = median(result.ratios.map((r) => r.oursToUnbound));
  }
  return result;
}

async function coldResolution(
  h: BenchHierarchy,
  options: ResolverBenchOptions,
  api: ApiProbe,
  skipped: string[],
): Promise<ColdBenchResult> {
  const samples = Math.max(7, options.coldSamples ?? (options.quick ? 7 : 15));
  const variants: ColdVariant[] = [
    'ours-udp',
    'ours-udp-dns-upstream',
    'ours-discover',
    'ours-udp-flushed',
    'ours-discover-flushed',
    'ours-udp-flushed-root-copy',
    'ours-discover-flushed-root-copy',
  ];
  if (h.unbound === undefined)
    skipped.push(`cold resolution of Unbound: ${h.unboundMissing ?? 'did not run'}`);
  else variants.unshift('unbound');
  const measured: ColdSample[] = [];
  const total = samples * variants.length;
  for (let sample = 1; sample <= samples; sample++) {
    const order = variants.map((_, i) => variants[(i + sample - 1) % variants.length]!);
    for (const variant of order) {
      const slot = (sample - 1) * variants.length + variants.indexOf(variant);
      const index = Math.floor(((slot + 0.5) * options.csis) / total);
      const csi = csiOf(index);
      const name = nameOf(index);
      const copy = ROOT_COPY_VARIANTS.has(variant);
      const flushed = variant.includes('-flushed');
      const discover = variant.startsWith('ours-discover');
      if (variant === 'unbound') await h.unbound!.flushCache();
      else await h.resolver.fresh(variant === 'ours-udp-dns-upstream' ? 'dns' : 'doh', copy);
      if (discover) await connectApi(api);
      if (flushed) {
        // As Unbound's flush: the caches emptied, the process and its connections kept. The
        // connections to the root and the DP come from resolving another CSI first.
        await api.client.discover(csiOf((index + 1) % options.csis));
        await h.resolver.flush();
      }
      const rootBefore = await h.root.queriesAnswered();
      const dpBefore = await h.dp.queriesAnswered();
      let ok = false;
      let outcome: string;
      const started = performance.now();
      let ms: number;
      try {
        if (discover) {
          const result = await api.client.discover(csi);
          ms = performance.now() - started;
          outcome = `${result.status} (${result.mappings.length} mappings)`;
          ok = result.status === 'found';
        } else {
          const port = variant === 'unbound' ? h.unbound!.port : h.resolver.port;
          const response = await queryUdp(
            { host: '127.0.0.1', port },
            buildQuery(name, 'MAP', rd),
            { timeoutMs: QUESTION_TIMEOUT_MS },
          );
          ms = performance.now() - started;
          outcome = `${response.rcode}${response.flags.ad ? ' AD' : ''} (${maps(response)} MAP)`;
          ok = response.rcode === 'NOERROR' && response.flags.ad && maps(response) > 0;
        }
      } catch (error) {
        ms = performance.now() - started;
        outcome = (error as Error).message.split('\n')[0] ?? 'failed';
      }
      measured.push({
        sample,
        variant,
        csi,
        ms,
        ok,
        outcome,
        rootQueries: (await h.root.queriesAnswered()) - rootBefore,
        dpQueries: (await h.dp.queriesAnswered()) - dpBefore,
      });
    }
  }
  const summary: ColdBenchResult['summary'] = {};
  for (const variant of variants) {
    const times = measured.filter((s) => s.variant === variant && s.ok).map((s) => s.ms);
    summary[variant] = {
      p50Ms: median(times),
      minMs: times.length === 0 ? NaN : Math.min(...times),
      maxMs: times.length === 0 ? NaN : Math.max(...times),
      ok: times.length,
    };
  }
  const ratio = (variant: ColdVariant): number | undefined => {
    const ours = summary[variant]?.p50Ms;
    const theirs = summary.unbound?.p50Ms;
    return ours === undefined || theirs === undefined ? undefined : ours / theirs;
  };
  const discoverToUnbound = ratio('ours-discover');
  const discoverFlushedToUnbound = ratio('ours-discover-flushed');
  const udpFlushedToUnbound = ratio('ours-udp-flushed');
  const udpToUnbound = ratio('ours-udp');
  const udpDnsUpstreamToUnbound = ratio('ours-udp-dns-upstream');
  const withoutCopy = measured.filter((s) => !ROOT_COPY_VARIANTS.has(s.variant));
  const withCopy = measured.filter((s) => ROOT_COPY_VARIANTS.has(s.variant));
  const fewestRootQueries = Math.min(...withoutCopy.map((s) => s.rootQueries));
  const fewestDpQueries = Math.min(...measured.map((s) => s.dpQueries));
  const discoverFlushedRootCopyToUnbound = ratio('ours-discover-flushed-root-copy');
  const udpFlushedRootCopyToUnbound = ratio('ours-udp-flushed-root-copy');
  return {
    samples: measured,
    summary,
    fewestRootQueries,
    fewestDpQueries,
    everySampleCold: fewestRootQueries >= 2 && fewestDpQueries >= 2,
    ...(withCopy.length === 0
      ? {}
      : { mostRootQueriesWithCopy: Math.max(...withCopy.map((s) => s.rootQueries)) }),
    ...(discoverFlushedRootCopyToUnbound === undefined ? {} : { discoverFlushedRootCopyToUnbound }),
    ...(udpFlushedRootCopyToUnbound === undefined ? {} : { udpFlushedRootCopyToUnbound }),
    ...(discoverToUnbound === undefined ? {} : { discoverToUnbound }),
    ...(discoverFlushedToUnbound === undefined ? {} : { discoverFlushedToUnbound }),
    ...(udpFlushedToUnbound === undefined ? {} : { udpFlushedToUnbound }),
    ...(udpToUnbound === undefined ? {} : { udpToUnbound }),
    ...(udpDnsUpstreamToUnbound === undefined ? {} : { udpDnsUpstreamToUnbound }),
  };
}

async function contactSync(
  h: BenchHierarchy,
  options: ResolverBenchOptions,
  api: ApiProbe,
): Promise<SyncBenchResult> {
  const count = Math.min(options.csis, options.syncCsis ?? 10_000);
  const step = options.csis / count;
  const csis = Array.from({ length: count }, (_, i) => csiOf(Math.floor(i * step)));
  // The client's default `maxBatch`: the API's default bound.
  const batchSize = DEFAULT_MAX_BATCH;

  const sync = async (): Promise<{ run: SyncRun; mappings: number }> => {
    const statuses: Record<string, number> = {};
    let mappings = 0;
    const resolverCpu = treeCpuSeconds(h.resolver.pid);
    const dpCpu = treeCpuSeconds(h.dp.pid);
    api.received.octets = 0;
    const clientCpu = process.cpuUsage();
    const started = performance.now();
    // One call: the client sends the batches (`batchSize`, the API's limit) a few at once.
    const results = await api.client.discoverMany(csis);
    const seconds = (performance.now() - started) / 1000;
    const { user, system } = process.cpuUsage(clientCpu);
    for (const r of results) {
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      mappings += r.mappings.length;
    }
    return {
      run: {
        seconds,
        csisPerSecond: count / seconds,
        responseOctets: api.received.octets,
        clientCpuMs: (user + system) / 1000,
        statuses,
        resolverCpuSeconds: treeCpuSeconds(h.resolver.pid) - resolverCpu,
        dpCpuSeconds: treeCpuSeconds(h.dp.pid) - dpCpu,
      },
      mappings,
    };
  };

  // The rates first, on an idle resolver, in the same run as the syncs they bound: one core in
  // the resolver's process, and all cores through the verification pool the resolver uses.
  const rate = await h.resolver.verificationRate(options.quick ? 1 : 3);
  const cores = availableParallelism();
  const poolRate = await poolVerifyRate(cores, options.quick ? 1 : 3);
  // Rounds, as every comparison (`method.ts`): each a new resolver, a cold sync, a warm one.
  const measured: {
    cold: Awaited<ReturnType<typeof sync>>;
    warm: Awaited<ReturnType<typeof sync>>;
  }[] = [];
  for (let round = 1; round <= MIN_ROUNDS; round++) {
    await h.resolver.fresh('doh');
    await connectApi(api);
    const cold = await sync();
    const warm = await sync();
    measured.push({ cold, warm });
  }
  // The round of the median cold time gives the runs the section describes.
  const { cold, warm } = [...measured].sort((a, b) => a.cold.run.seconds - b.cold.run.seconds)[
    Math.floor(measured.length / 2)
  ]!;
  // The slowest path, profiled in a cold sync of its own so that the figures above carry no
  // profiler cost.
  await h.resolver.fresh('doh');
  await connectApi(api);
  await h.resolver.profileStart();
  await sync();
  const profile = await h.resolver.profileStop(
    `our resolver: cold contact sync of ${count.toLocaleString('en-US')} CSIs`,
  );
  const verifications = 4 + count * 2 + cold.mappings * 2;
  const boundSeconds = verifications / poolRate.perSecond;
  const boundCpuSeconds = verifications / poolRate.perCpuSecond;
  const oneCoreSeconds = verifications / rate.perSecond;
  const oneCoreCpuSeconds = verifications / rate.perCpuSecond;
  const rounds = measured.map((m, i) => ({
    round: i + 1,
    coldToBound: boundSeconds / m.cold.run.seconds,
    coldCpuToBound: boundCpuSeconds / m.cold.run.resolverCpuSeconds,
    coldToOneCoreBound: oneCoreSeconds / m.cold.run.seconds,
    warmMs: m.warm.run.seconds * 1000,
  }));
  return {
    csis: count,
    batchSize,
    batches: Math.ceil(csis.length / batchSize),
    cold: cold.run,
    warm: warm.run,
    mappings: cold.mappings,
    verifications,
    verificationsPerSecond: poolRate.perSecond,
    cores: poolRate.threads,
    boundSeconds,
    boundCsisPerSecond: count / boundSeconds,
    coldToBound: median(rounds.map((r) => r.coldToBound)),
    verificationsPerCpuSecond: poolRate.perCpuSecond,
    coldCpuToBound: median(rounds.map((r) => r.coldCpuToBound)),
    oneCore: {
      verificationsPerSecond: rate.perSecond,
      verificationsPerCpuSecond: rate.perCpuSecond,
      boundSeconds: oneCoreSeconds,
      boundCsisPerSecond: count / oneCoreSeconds,
      coldToBound: median(rounds.map((r) => r.coldToOneCoreBound)),
      coldCpuToBound: median(
        measured.map((m) => oneCoreCpuSeconds / m.cold.run.resolverCpuSeconds),
      ),
    },
    warmMs: median(rounds.map((r) => r.warmMs)),
    rounds,
    profile,
  };
}
