import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildQuery, createDohClient, encodeMessage } from '@mimi-discovery/common';
import { csiOf, nameOf } from './dataset.js';
import { h2loadArgs, h2loadVersion, runH2load, type H2loadResult } from './h2load.js';
import type { BenchHierarchy } from './hierarchy.js';
import { median } from './report.js';
import { installed } from './stock.js';

/**
 * DoH (RFC 8484) POST throughput and latency of our DP, our resolver (answering from its cache)
 * and Unbound's DoH (answering the same question from its cache), in one run: all three up at
 * once, h2load rotating through them in short rounds. Each request is the same query: MAP of one
 * existing CSI, DO set, RD set, id 0 (RFC 8484 §4.1).
 *
 * Modes: HTTP/2 over TLS with 10 connections × 10 streams and with 1 × 1, and HTTP/1.1
 * keep-alive over TLS with 10 connections (h2load sends one request at a time per HTTP/1.1
 * connection when it posts a body). Unbound 1.17 serves DoH over HTTP/2 only, so it has no
 * HTTP/1.1 figure.
 */

export type DohServerName = 'dp' | 'resolver' | 'unbound';
export type DohModeName = 'h2-10x10' | 'h2-1x1' | 'h1-10';

export interface DohMode {
  name: DohModeName;
  clients: number;
  streams: number;
  h1: boolean;
}

export const DOH_MODES: readonly DohMode[] = Object.freeze([
  { name: 'h2-10x10', clients: 10, streams: 10, h1: false },
  { name: 'h2-1x1', clients: 1, streams: 1, h1: false },
  { name: 'h1-10', clients: 10, streams: 1, h1: true },
]);

export interface DohBenchOptions {
  /** Interleaved rounds (`MIN_ROUNDS` of `method.ts`: the medians need them). */
  rounds: number;
  /** Measured seconds per run. */
  seconds: number;
  /** Unmeasured seconds before each run; default 1 with `quick`, else 2. */
  warmUpSeconds?: number;
  quick: boolean;
  /** A directory for the body and log files. */
  workDir: string;
  /** The data set index of the CSI asked; default 1 (a CSI with two mappings). */
  csiIndex?: number;
}

/** What one server answered to the benchmark's query before the load (a sanity check). */
export interface DohCheck {
  rcode: string;
  /** MAP records in the answer. */
  maps: number;
  /** The AD flag. */
  authenticated: boolean;
}

export interface DohRun {
  round: number;
  mode: DohModeName;
  server: DohServerName;
  result: H2loadResult;
}

export interface DohMedians {
  requestsPerSecond: number;
  p50LatencyMs: number;
  meanLatencyMs: number;
  cpuMicrosecondsPerRequest: number;
}

export interface DohRatio {
  round: number;
  dpToUnbound?: number;
  resolverToUnbound?: number;
}

export interface DohBenchResult {
  question: { csi: string; name: string; type: 'MAP'; bodyOctets: number };
  checks: Partial<Record<DohServerName, DohCheck>>;
  modes: DohMode[];
  rounds: number;
  seconds: number;
  warmUpSeconds: number;
  runs: DohRun[];
  /** Per mode and server, medians over the rounds. */
  medians: Partial<Record<DohModeName, Partial<Record<DohServerName, DohMedians>>>>;
  /** Per mode, the per-round ratios of requests/s. */
  ratios: Partial<Record<DohModeName, DohRatio[]>>;
  /** Per mode, the medians of those ratios. */
  medianRatios: Partial<Record<DohModeName, { dpToUnbound?: number; resolverToUnbound?: number }>>;
  skipped: string[];
  /** The h2load command line of the first mode, port left to each server. */
  command: string;
  /** `h2load --version`. */
  h2load: string;
}

/** Runs the DoH benchmark on the running hierarchy; see the module comment. */
export async function runDohBench(
  h: BenchHierarchy,
  options: DohBenchOptions,
): Promise<DohBenchResult> {
  const skipped: string[] = [];
  const warmUpSeconds = options.warmUpSeconds ?? (options.quick ? 1 : 2);
  const index = options.csiIndex ?? 1;
  const name = nameOf(index);
  const query = buildQuery(name, 'MAP', { id: 0, dnssecOk: true, recursionDesired: true });
  const body = encodeMessage(query);
  const bodyFile = join(options.workDir, 'doh-query.bin');
  writeFileSync(bodyFile, body);
  const logFile = join(options.workDir, 'h2load.log');
  const result: DohBenchResult = {
    question: { csi: csiOf(index), name, type: 'MAP', bodyOctets: body.length },
    checks: {},
    modes: [...DOH_MODES],
    rounds: options.rounds,
    seconds: options.seconds,
    warmUpSeconds,
    runs: [],
    medians: {},
    ratios: {},
    medianRatios: {},
    skipped,
    command: `h2load ${h2loadArgs({
      url: 'https://127.0.0.1:<port>/dns-query',
      bodyFile,
      clients: 10,
      streams: 10,
      h1: false,
      seconds: options.seconds,
      warmUpSeconds,
      logFile,
    })
      .map((a) => (a.includes(' ') ? `'${a}'` : a))
      .join(' ')}`,
    h2load: installed('h2load') ? h2loadVersion() : 'not installed',
  };
  if (!installed('h2load')) {
    skipped.push('DoH: h2load is not installed (apt-get install nghttp2-client)');
    return result;
  }

  const servers: { name: DohServerName; url: string; pid: number }[] = [
    { name: 'dp', url: h.dp.dohUrl, pid: h.dp.pid },
    { name: 'resolver', url: h.resolver.dohUrl, pid: h.resolver.pid },
  ];
  if (h.unbound === undefined) skipped.push(`DoH of Unbound: ${h.unboundMissing ?? 'did not run'}`);
  else servers.push({ name: 'unbound', url: h.unbound.dohUrl, pid: h.unbound.pid });

  // Each server answers the query once before the load: this checks the answer and fills the
  // resolvers' caches, so that what is measured is answering from the cache.
  const client = createDohClient({ ca: h.caPem });
  try {
    for (const server of [...servers]) {
      try {
        const response = await client.query(server.url, query, { timeoutMs: 10_000 });
        const check: DohCheck = {
          rcode: response.rcode,
          maps: response.answers.filter((rr) => rr.type === 'MAP').length,
          authenticated: response.flags.ad,
        };
        result.checks[server.name] = check;
        if (check.rcode !== 'NOERROR' || check.maps === 0) {
          throw new Error(`answered ${check.rcode} with ${check.maps} MAP records`);
        }
      } catch (error) {
        skipped.push(`DoH of ${server.name}: ${(error as Error).message}`);
        servers.splice(servers.indexOf(server), 1);
      }
    }
  } finally {
    await client.close();
  }

  // Pairs that failed once (e.g. Unbound over HTTP/1.1) are not tried again.
  const failed = new Set<string>();
  for (let round = 1; round <= options.rounds; round++) {
    for (const mode of DOH_MODES) {
      // Rotate the order so that no server always runs first.
      const order = servers.map((_, i) => servers[(i + round - 1) % servers.length]!);
      for (const server of order) {
        const key = `${mode.name}/${server.name}`;
        if (failed.has(key)) continue;
        try {
          const run = await runH2load(
            {
              url: server.url,
              bodyFile,
              clients: mode.clients,
              streams: mode.streams,
              h1: mode.h1,
              seconds: options.seconds,
              warmUpSeconds,
              logFile,
            },
            server.pid,
          );
          result.runs.push({ round, mode: mode.name, server: server.name, result: run });
        } catch (error) {
          failed.add(key);
          const why =
            server.name === 'unbound' && mode.h1
              ? 'Unbound serves DoH over HTTP/2 only'
              : (error as Error).message.split('\n')[0];
          skipped.push(`${mode.name} against ${server.name}: ${why}`);
        }
      }
    }
  }

  for (const mode of DOH_MODES) {
    const runsOf = (server: DohServerName): DohRun[] =>
      result.runs.filter((r) => r.mode === mode.name && r.server === server);
    const medians: Partial<Record<DohServerName, DohMedians>> = {};
    for (const server of servers) {
      const runs = runsOf(server.name);
      if (runs.length === 0) continue;
      const of = (pick: (r: H2loadResult) => number): number =>
        median(runs.map((r) => pick(r.result)));
      medians[server.name] = {
        requestsPerSecond: of((r) => r.requestsPerSecond),
        p50LatencyMs: of((r) => r.p50LatencyMs),
        meanLatencyMs: of((r) => r.meanLatencyMs),
        cpuMicrosecondsPerRequest: of((r) => r.cpuMicrosecondsPerRequest),
      };
    }
    result.medians[mode.name] = medians;
    const rps = (round: number, server: DohServerName): number | undefined =>
      runsOf(server).find((r) => r.round === round)?.result.requestsPerSecond;
    const ratios: DohRatio[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      const unbound = rps(round, 'unbound');
      if (unbound === undefined) continue;
      const dp = rps(round, 'dp');
      const resolver = rps(round, 'resolver');
      ratios.push({
        round,
        ...(dp === undefined ? {} : { dpToUnbound: dp / unbound }),
        ...(resolver === undefined ? {} : { resolverToUnbound: resolver / unbound }),
      });
    }
    result.ratios[mode.name] = ratios;
    const ratioMedian = (key: 'dpToUnbound' | 'resolverToUnbound'): number | undefined => {
      const values = ratios.flatMap((r) => (r[key] === undefined ? [] : [r[key]]));
      return values.length === 0 ? undefined : median(values);
    };
    const dpToUnbound = ratioMedian('dpToUnbound');
    const resolverToUnbound = ratioMedian('resolverToUnbound');
    result.medianRatios[mode.name] = {
      ...(dpToUnbound === undefined ? {} : { dpToUnbound }),
      ...(resolverToUnbound === undefined ? {} : { resolverToUnbound }),
    };
  }
  return result;
}
