import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  buildQuery,
  createTsigKey,
  formatTsigKeyFile,
  queryUdp,
  transferZone,
  type TsigKey,
} from '@mimi-discovery/common';
import { freePort } from '../../test/helpers/ports.js';
import { startNsd, type RunningSecondary } from '../../test/helpers/secondaries.js';
import { ORIGIN } from './dataset.js';
import { startDp, type DpProcess } from './dp-process.js';
import { runDnsperf, type DnsperfOptions, type DnsperfResult } from './dnsperf.js';
import { MIN_ROUNDS } from './method.js';
import { median, percentile } from './report.js';
import { installed } from './stock.js';

/**
 * Zone transfers to a stock secondary (issue 14, docs/operations.md "A hidden primary"): our DP
 * over the bench's store as the primary, with TSIG and NOTIFY, and NSD as its secondary.
 *
 * 1. The DP starts with `transfer` in its config: it turns the zone's NSEC3 chain on (a write
 *    that builds and signs the chain over the whole zone: timed, as start-up).
 * 2. **AXFR**: our transfer client (`transferZone` of common, signed) takes the whole zone,
 *    keeping none of it (`onRecord`): time, records, messages, octets.
 * 3. **NSD bootstraps** from the DP (its own AXFR, then loading): the time from starting NSD to
 *    its answering the DP's serial.
 * 4. **Publish to secondary**: mappings published one at a time through the DP's store (as the
 *    registration API does), each only after the one before reached NSD; for each, the time
 *    from the durable publish to NSD answering the new serial (NOTIFY, NSD's IXFR, its apply),
 *    polled every {@link POLL_MS}. p50, p99, and how the DP answered NSD (its transfer metrics:
 *    incremental or whole zone).
 * 5. **NSD serving the transferred zone next to our DP**: dnsperf rounds over the bench's query
 *    file, interleaved, as for the main comparison.
 */

/** How often NSD is asked for its serial while a publish propagates. */
export const POLL_MS = 2;
/** Longest wait for one publish to reach NSD before the run gives up. */
export const PROPAGATION_TIMEOUT_MS = 30_000;
/** Longest wait for NSD's first transfer of the zone. */
export const BOOTSTRAP_TIMEOUT_MS = 300_000;

/** What the transfer benchmark measured, or why it did not run. */
export interface TransferBenchResult {
  readonly skipped?: string;
  readonly csis: number;
  /** Start of the DP with transfers on, the NSEC3 chain built over the zone. */
  readonly dpStartSeconds?: number;
  readonly axfr?: {
    readonly seconds: number;
    readonly records: number;
    readonly messages: number;
    readonly octets: number;
  };
  /** NSD started → NSD answers the DP's serial. */
  readonly nsdBootstrapSeconds?: number;
  readonly propagation?: {
    readonly publishes: number;
    readonly p50Ms: number;
    readonly p99Ms: number;
    readonly maxMs: number;
    /** Transfers the DP answered meanwhile, by type (`ixfr`, `ixfr-full`, `axfr`, …). */
    readonly transfers: Record<string, number>;
  };
  readonly udp?: {
    readonly rounds: number;
    readonly seconds: number;
    readonly ours: number;
    readonly nsdSecondary: number;
    /** Per round, our queries/s ÷ NSD's (absent from runs before they were recorded). */
    readonly ratios?: readonly number[];
    /** Medians of the rounds' CPU µs per query (absent from runs before they were recorded). */
    readonly cpuMicrosecondsPerQuery?: { readonly ours: number; readonly nsdSecondary: number };
  };
  readonly commands?: Record<string, string>;
}

/** What {@link runTransferBench} needs. */
export interface TransferBenchOptions {
  /** The bench's LMDB store (`store` directory), closed by its owner. */
  readonly dataDir: string;
  /** A directory of its own for keys and NSD. */
  readonly workDir: string;
  readonly csis: number;
  /** The bench's query file (MAP questions), for the UDP rounds. */
  readonly queryFile: string;
  /** First index of the CSIs this benchmark publishes (outside the data set). */
  readonly firstNewCsi: number;
  readonly quick: boolean;
  readonly log: (message: string) => void;
}

/** Runs the benchmark of the module comment; never throws for a missing tool or a failed part. */
export async function runTransferBench(
  options: TransferBenchOptions,
): Promise<TransferBenchResult> {
  const { csis, log } = options;
  if (!installed('nsd')) return { csis, skipped: 'nsd is not installed (apt-get install nsd)' };
  const key = createTsigKey(`xfr.${ORIGIN}`, 'hmac-sha256', new Uint8Array(32).fill(0x58));
  const keyFile = join(options.workDir, 'xfr.key');
  writeFileSync(keyFile, formatTsigKeyFile(key), { mode: 0o600 });
  const nsdPort = await freePort();
  let dp: DpProcess | undefined;
  let nsd: RunningSecondary | undefined;
  try {
    const dpStarted = performance.now();
    dp = await startDp(options.dataDir, {
      allow: ['127.0.0.0/8'],
      keys: [{ name: key.name, secretFile: keyFile }],
      notify: [{ address: '127.0.0.1', port: nsdPort, key: key.name }],
      // Our client and NSD both come from 127.0.0.1.
      transfersPerClient: 2,
    });
    const dpStartSeconds = (performance.now() - dpStarted) / 1000;
    const primary = { host: '127.0.0.1', port: dp.tcpPort ?? dp.port };
    log(`transfer: DP with transfers on in ${dpStartSeconds.toFixed(1)} s (NSEC3 chain kept)`);

    const axfr = await measureAxfr(primary, key);
    log(
      `transfer: AXFR of ${axfr.records} records (${(axfr.octets / 2 ** 20).toFixed(1)} MiB, ${axfr.messages} messages) in ${axfr.seconds.toFixed(2)} s`,
    );

    const nsdStarted = performance.now();
    nsd = await startNsd({
      dir: join(options.workDir, 'nsd-secondary'),
      zone: ORIGIN,
      primaryPort: primary.port,
      key,
      port: nsdPort,
    });
    const serial = await serialAt(primary.port);
    await waitForSerial(nsd.port, serial, BOOTSTRAP_TIMEOUT_MS);
    const nsdBootstrapSeconds = (performance.now() - nsdStarted) / 1000;
    log(`transfer: NSD has the zone ${nsdBootstrapSeconds.toFixed(1)} s after its start`);

    const publishes = options.quick ? 20 : 100;
    const before = await transferCounts(dp);
    await dp.request({ cmd: 'prepare', first: options.firstNewCsi, count: publishes });
    const latencies: number[] = [];
    for (let i = 0; i < publishes; i++) {
      const published = await dp.request({ cmd: 'publish', index: i });
      const at = performance.now();
      await waitForSerial(nsd.port, Number(published.serial), PROPAGATION_TIMEOUT_MS);
      latencies.push(performance.now() - at);
    }
    const after = await transferCounts(dp);
    const transfers = Object.fromEntries(
      Object.entries(after).map(([type, n]) => [type, n - (before[type] ?? 0)]),
    );
    latencies.sort((a, b) => a - b);
    const propagation = {
      publishes,
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      maxMs: latencies.at(-1) ?? NaN,
      transfers,
    };
    log(
      `transfer: publish → NSD p50 ${propagation.p50Ms.toFixed(0)} ms, p99 ${propagation.p99Ms.toFixed(0)} ms; DP answered ${JSON.stringify(transfers)}`,
    );

    // As many rounds with --quick (the medians need them, `method.ts`), each shorter.
    const rounds = MIN_ROUNDS;
    const seconds = options.quick ? 3 : 10;
    const perf = (port: number): DnsperfOptions => ({
      port,
      queryFile: options.queryFile,
      seconds,
      clients: 4,
      outstanding: 100,
    });
    // A first pass each: NSD compiled its answers when it loaded the zone, our DP compiles
    // them into its answer cache the first time it is asked.
    await runDnsperf({ ...perf(dp.port), passes: 1 }, dp.pid);
    await runDnsperf({ ...perf(nsd.port), passes: 1 }, nsd.pid);
    const ours: DnsperfResult[] = [];
    const secondary: DnsperfResult[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? ['ours', 'nsd'] : ['nsd', 'ours'];
      for (const which of order) {
        const target = which === 'ours' ? dp : nsd;
        const result = await runDnsperf(perf(target.port), target.pid);
        (which === 'ours' ? ours : secondary).push(result);
      }
    }
    const qps = (runs: DnsperfResult[]): number[] => runs.map((r) => r.queriesPerSecond);
    const cpu = (runs: DnsperfResult[]): number =>
      median(runs.map((r) => r.cpuMicrosecondsPerQuery));
    const udp = {
      rounds,
      seconds,
      ours: median(qps(ours)),
      nsdSecondary: median(qps(secondary)),
      ratios: ours.map((r, i) => r.queriesPerSecond / secondary[i]!.queriesPerSecond),
      cpuMicrosecondsPerQuery: { ours: cpu(ours), nsdSecondary: cpu(secondary) },
    };
    log(
      `transfer: UDP medians ours ${Math.round(udp.ours)} q/s, NSD with the transferred zone ${Math.round(udp.nsdSecondary)} q/s`,
    );
    return {
      csis,
      dpStartSeconds,
      axfr,
      nsdBootstrapSeconds,
      propagation,
      udp,
      commands: { 'transfer.dp': dp.command, 'transfer.nsd': nsd.command },
    };
  } catch (error) {
    const why = error instanceof Error ? error.message.split('\n')[0] : String(error);
    log(`transfer: skipped (${why})`);
    return { csis, skipped: why ?? 'failed' };
  } finally {
    await nsd?.stop();
    await dp?.stop();
  }
}

/** An AXFR by our client, signed, its records counted and dropped as they come. */
async function measureAxfr(
  primary: { host: string; port: number },
  key: TsigKey,
): Promise<NonNullable<TransferBenchResult['axfr']>> {
  let records = 0;
  const started = performance.now();
  const result = await transferZone(primary, ORIGIN, {
    tsig: key,
    timeoutMs: 600_000,
    maxRecords: Number.MAX_SAFE_INTEGER,
    maxOctets: Number.MAX_SAFE_INTEGER,
    onRecord: () => records++,
  });
  return {
    seconds: (performance.now() - started) / 1000,
    records,
    messages: result.messages,
    octets: result.octets,
  };
}

async function serialAt(port: number): Promise<number | undefined> {
  try {
    const answer = await queryUdp({ host: '127.0.0.1', port }, buildQuery(ORIGIN, 'SOA'), {
      timeoutMs: 1000,
    });
    const soa = answer.answers.find((rr) => rr.type === 'SOA');
    return soa?.type === 'SOA' ? soa.data.serial : undefined;
  } catch {
    return undefined;
  }
}

/** Polls `port` every {@link POLL_MS} until it answers `serial` (or later); throws after `ms`. */
async function waitForSerial(port: number, serial: number | undefined, ms: number): Promise<void> {
  if (serial === undefined) throw new Error('the DP did not answer its SOA');
  const deadline = performance.now() + ms;
  for (;;) {
    const now = await serialAt(port);
    if (now !== undefined && (now - serial) >>> 0 < 2 ** 31) return;
    if (performance.now() > deadline) {
      throw new Error(`serial ${serial} did not reach 127.0.0.1:${port} within ${ms} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** `authoritative_transfers_total{type,outcome="ok"}` of the DP, by type. */
async function transferCounts(dp: DpProcess): Promise<Record<string, number>> {
  if (dp.adminUrl === undefined) return {};
  const text = await (await fetch(`${dp.adminUrl}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(
    /^authoritative_transfers_total\{type="([^"]+)",outcome="ok"\} (\d+)/gm,
  )) {
    counts[m[1] as string] = Number(m[2]);
  }
  return counts;
}
