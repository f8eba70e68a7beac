import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { generateCredential, hashCredential } from '@mimi-discovery/relay';
import {
  DEFAULT_CSIS_PER_TOKEN,
  MAX_TOKENS_PER_FETCH,
  createDiscoveryClient,
  type DiscoveryClient,
  type DiscoveryResult,
} from '@mimi-discovery/resolver';
import { csiOf } from './dataset.js';
import {
  benchScriptArgs,
  spawnJsonLines,
  type BenchHierarchy,
  type JsonLineChild,
} from './hierarchy.js';
import { treeCpuSeconds } from './proc.js';
import {
  RELAY_PATHS,
  relayMedians,
  relayRoundFigures,
  type RelayBenchResult,
  type RelayCpuSeconds,
  type RelayLatencyRun,
  type RelayLookupRun,
  type RelayPath,
  type RelayRound,
  type RelaySyncRun,
} from './relay-report.js';
import { percentile } from './report.js';
import type { IssuerSpec, RelaySpec } from './relay-server.js';

/**
 * The relay's cost (issue 18, "The relay's cost measured"): lookups and contact syncs through
 * the oblivious relay next to the same ones asked directly, on the running hierarchy.
 *
 * 1. A token issuer (`startIssuer`) with one user, allowed {@link RELAY_BENCH_TOKENS} tokens a
 *    day, and a relay (`startRelay`) with one resource, `/ohttp/resolver`, each in a process of
 *    its own (`relay-server.ts`); our resolver's front ends start again with the gateway on the
 *    JSON API's port, accepting that issuer's tokens (its public-key file: the bench tree has no
 *    KEYCONF, so the client's key check is not made: it is a DNS lookup per key fetch, not per
 *    request).
 * 2. Two clients in the bench process: direct (`createDiscoveryClient({ url })`, HTTP/2) and
 *    through the relay (`createDiscoveryClient({ relay })`, fetching tokens
 *    `MAX_TOKENS_PER_FETCH` at a time). Every CSI either asks is resolved once beforehand,
 *    directly, so both paths are answered from the same warm cache; one relayed lookup then
 *    fetches the gateway's keys and the first tokens.
 * 3. `rounds` interleaved rounds, the order of the paths rotated each round; each path gets a
 *    throughput run (lookups of one CSI each, {@link RELAY_BENCH_CONCURRENCY} in flight for
 *    `seconds`), a latency run (lookups one after another) and a contact sync (`discoverMany`:
 *    direct in batches of the API's limit, 4 at a time, through the relay in chunks of one
 *    token's CSIs, as each client sends them), with each process's CPU time read meanwhile.
 */

export interface RelayBenchOptions {
  /** Interleaved rounds (`MIN_ROUNDS` of `method.ts`). */
  rounds: number;
  /** Seconds of each throughput run. */
  seconds: number;
  quick: boolean;
  /** A directory for the issuer's, the relay's and the gateway's files. */
  workDir: string;
  /** CSIs in the data set (index 0 … csis - 1). */
  csis: number;
}

/**
 * Tokens the bench user may fetch a day: more than any run spends (one per relayed lookup, one
 * per chunk of a sync), so that the issuer's quota never stops a round.
 */
export const RELAY_BENCH_TOKENS = 1_000_000;
/**
 * Lookups in flight in a throughput run, on either path: within the relay's default forwards per
 * client (`DEFAULT_RELAY_FORWARDS_PER_CLIENT`, 16), which the bench does not raise.
 */
export const RELAY_BENCH_CONCURRENCY = 16;
/** Distinct CSIs the lookups cycle through (fewer when the data set is smaller). */
export const RELAY_BENCH_LOOKUP_CSIS = 2_000;
/** Lookups of a latency run: with `--quick`, and otherwise. */
export const RELAY_BENCH_LATENCY_LOOKUPS = { quick: 200, full: 500 } as const;
/** CSIs of the contact sync: with `--quick`, and otherwise (fewer when the data set is smaller). */
export const RELAY_BENCH_SYNC_CSIS = { quick: 2_000, full: 10_000 } as const;
/** Time the issuer and the relay have to start. */
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

interface Pids {
  resolver: number;
  relay: number;
  issuer: number;
}

/** Each process's CPU seconds from now until the returned function is called. */
function cpuMeter(pids: Pids, path: RelayPath): () => RelayCpuSeconds {
  const read = (pid: number): number => (pid > 0 ? treeCpuSeconds(pid) : 0);
  const resolver = read(pids.resolver);
  const relay = read(pids.relay);
  const issuer = read(pids.issuer);
  const client = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(client);
    return {
      resolver: read(pids.resolver) - resolver,
      // The direct path does not go through them: whatever they spend meanwhile is not its cost.
      relay: path === 'relay' ? read(pids.relay) - relay : 0,
      issuer: path === 'relay' ? read(pids.issuer) - issuer : 0,
      client: (used.user + used.system) / 1e6,
    };
  };
}

const found = (r: DiscoveryResult): boolean => r.status === 'found';

async function throughputRun(
  client: DiscoveryClient,
  csis: readonly string[],
  seconds: number,
  meter: () => RelayCpuSeconds,
): Promise<RelayLookupRun> {
  let next = 0;
  let lookups = 0;
  let failed = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const csi = csis[next++ % csis.length]!;
      lookups++;
      try {
        if (!found(await client.discover(csi))) failed++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: RELAY_BENCH_CONCURRENCY }, worker));
  const elapsed = (performance.now() - started) / 1000;
  return {
    lookups,
    failed,
    seconds: elapsed,
    lookupsPerSecond: (lookups - failed) / elapsed,
    cpu: meter(),
  };
}

async function latencyRun(
  client: DiscoveryClient,
  csis: readonly string[],
): Promise<RelayLatencyRun> {
  const times: number[] = [];
  let failed = 0;
  for (const csi of csis) {
    const started = performance.now();
    try {
      const ok = found(await client.discover(csi));
      if (ok) times.push(performance.now() - started);
      else failed++;
    } catch {
      failed++;
    }
  }
  times.sort((a, b) => a - b);
  return {
    lookups: csis.length,
    failed,
    p50Ms: percentile(times, 0.5),
    p90Ms: percentile(times, 0.9),
    p99Ms: percentile(times, 0.99),
  };
}

async function syncRun(
  client: DiscoveryClient,
  csis: readonly string[],
  meter: () => RelayCpuSeconds,
): Promise<{ run: RelaySyncRun; results: DiscoveryResult[] }> {
  const started = performance.now();
  // Either client splits the list as it sends it: direct, batches of the API's limit; through
  // the relay, chunks of one token's CSIs; each a few at once.
  const results = await client.discoverMany(csis);
  const seconds = (performance.now() - started) / 1000;
  const statuses: Record<string, number> = {};
  for (const r of results) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  return {
    run: {
      csis: csis.length,
      seconds,
      csisPerSecond: csis.length / seconds,
      statuses,
      cpu: meter(),
    },
    results,
  };
}

/** What a sender acts on: the status and the mappings' count, per CSI. */
const outline = (results: readonly DiscoveryResult[]): string =>
  JSON.stringify(results.map((r) => [r.csi, r.status, r.mappings.length]));

/** Starts `relay-server.ts` with `spec` and waits for its ready line. */
async function startProcess(
  spec: IssuerSpec | RelaySpec,
  dir: string,
): Promise<{ proc: JsonLineChild; ready: Record<string, unknown> }> {
  const specFile = join(dir, `${spec.role}.json`);
  writeFileSync(specFile, JSON.stringify(spec));
  const proc = spawnJsonLines([...benchScriptArgs('relay-server.ts'), specFile], spec.role);
  try {
    const ready = await proc.next(START_TIMEOUT_MS);
    if (ready.event !== 'ready') throw new Error(`${spec.role}: ${JSON.stringify(ready)}`);
    return { proc, ready };
  } catch (error) {
    await proc.stop();
    throw error;
  }
}

/** Runs the relay benchmark; see the module comment. */
export async function runRelayBench(
  h: BenchHierarchy,
  options: RelayBenchOptions,
): Promise<RelayBenchResult> {
  const dir = join(options.workDir, 'relay');
  mkdirSync(dir, { recursive: true });
  const lookupCount = Math.min(options.csis, RELAY_BENCH_LOOKUP_CSIS);
  const syncCount = Math.min(
    options.csis,
    options.quick ? RELAY_BENCH_SYNC_CSIS.quick : RELAY_BENCH_SYNC_CSIS.full,
  );
  const latencyCount = options.quick
    ? RELAY_BENCH_LATENCY_LOOKUPS.quick
    : RELAY_BENCH_LATENCY_LOOKUPS.full;
  const spread = (count: number, offset: number): string[] =>
    Array.from({ length: count }, (_, i) =>
      csiOf((Math.floor((i * options.csis) / count) + offset) % options.csis),
    );
  const lookupCsis = spread(lookupCount, 0);
  // The sync's CSIs lie between the lookups' where the data set allows, all of them warmed.
  const syncCsis = spread(syncCount, options.csis >= 2 * syncCount ? 1 : 0);

  const stops: (() => Promise<void>)[] = [];
  const clients: DiscoveryClient[] = [];
  try {
    const credential = generateCredential();
    const issuer = await startProcess(
      {
        role: 'issuer',
        dir: join(dir, 'issuer'),
        certFile: h.tls.cert,
        keyFile: h.tls.key,
        tokensPerPeriod: RELAY_BENCH_TOKENS,
        user: { id: 'bench', credentialSha256: hashCredential(credential) },
      },
      dir,
    );
    stops.push(() => issuer.proc.stop(() => issuer.proc.request({ cmd: 'stop' }, STOP_TIMEOUT_MS)));
    await h.resolver.gateway({
      keyDir: join(dir, 'gateway-keys'),
      dataDir: join(dir, 'spent-tokens'),
      issuers: [{ name: String(issuer.ready.name), keysFile: String(issuer.ready.keysFile) }],
    });
    const relay = await startProcess(
      {
        role: 'relay',
        certFile: h.tls.cert,
        keyFile: h.tls.key,
        ca: h.caPem,
        gatewayUrl: `${h.resolver.apiUrl}/.well-known/ohttp-gateway`,
      },
      dir,
    );
    stops.push(() => relay.proc.stop(() => relay.proc.request({ cmd: 'stop' }, STOP_TIMEOUT_MS)));
    const pids: Pids = {
      resolver: h.resolver.pid,
      relay: relay.proc.child.pid ?? 0,
      issuer: issuer.proc.child.pid ?? 0,
    };
    const client: Record<RelayPath, DiscoveryClient> = {
      direct: createDiscoveryClient({ url: h.resolver.apiUrl, ca: h.caPem }),
      relay: createDiscoveryClient({
        relay: {
          relay: `${String(relay.ready.url)}/ohttp/resolver`,
          ca: h.caPem,
          credential,
          tokensPerFetch: MAX_TOKENS_PER_FETCH,
        },
      }),
    };
    clients.push(client.direct, client.relay);

    // Every CSI asked later, resolved once: both paths then find the same warm cache.
    const warm = await syncRun(client.direct, [...new Set([...lookupCsis, ...syncCsis])], () => ({
      resolver: 0,
      relay: 0,
      issuer: 0,
      client: 0,
    }));
    const unresolved = warm.results.filter((r) => !found(r)).length;
    if (unresolved > 0) throw new Error(`${unresolved} CSIs of the data set were not found`);
    // The gateway's keys, the probe and the first tokens, before anything is timed.
    const first = await client.relay.discover(lookupCsis[0]!);
    if (!found(first)) throw new Error(`through the relay: ${JSON.stringify(first)}`);

    const rounds: RelayRound[] = [];
    let sameResults = true;
    for (let round = 1; round <= options.rounds; round++) {
      const order = RELAY_PATHS.map((_, i) => RELAY_PATHS[(i + round - 1) % RELAY_PATHS.length]!);
      const runs = new Map<RelayPath, Partial<RelayRound>>();
      for (const path of order) {
        runs.set(path, {
          throughput: await throughputRun(
            client[path],
            lookupCsis,
            options.seconds,
            cpuMeter(pids, path),
          ),
        });
      }
      for (const path of order) {
        runs.get(path)!.latency = await latencyRun(client[path], lookupCsis.slice(0, latencyCount));
      }
      const outlines = new Map<RelayPath, string>();
      for (const path of order) {
        const { run, results } = await syncRun(client[path], syncCsis, cpuMeter(pids, path));
        runs.get(path)!.sync = run;
        outlines.set(path, outline(results));
      }
      if (outlines.get('direct') !== outlines.get('relay')) sameResults = false;
      for (const path of RELAY_PATHS) {
        const r = runs.get(path)!;
        rounds.push({ round, path, throughput: r.throughput!, latency: r.latency!, sync: r.sync! });
      }
    }
    return {
      rounds,
      ratios: relayRoundFigures(rounds),
      medians: relayMedians(rounds),
      lookupCsis: lookupCount,
      concurrency: RELAY_BENCH_CONCURRENCY,
      seconds: options.seconds,
      latencyLookups: latencyCount,
      syncCsis: syncCount,
      csisPerToken: DEFAULT_CSIS_PER_TOKEN,
      tokensPerFetch: MAX_TOKENS_PER_FETCH,
      sameResults,
      commands: { issuer: issuer.proc.command, relay: relay.proc.command },
    };
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}
