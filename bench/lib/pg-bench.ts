import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { copyStoreToPg, openLmdbStore, PG_POOL_SIZE } from '@mimi-discovery/authoritative';
import { postgresMissing, startPostgres } from '../../test/helpers/postgres.js';
import { nameOf } from './dataset.js';
import { runDnsperf, type DnsperfResult } from './dnsperf.js';
import { startDp, type DpProcess } from './dp-process.js';
import { median } from './report.js';

/**
 * Our DP over PostgreSQL next to our DP over LMDB (design §9 (b)): both up at once, each the
 * server `mimi-discovery serve` runs (`bench/lib/dp-server.ts`) in a process of its own, the
 * PostgreSQL one over a copy of the LMDB data set (`copyStoreToPg`, what `mimi-discovery db copy`
 * runs) in a cluster of its own (`test/helpers/postgres.ts`: initdb in a temporary directory,
 * `fsync` and `synchronous_commit` on). In interleaved rounds (the order rotated each round):
 *
 * - **Answer-cache misses**: one pass of dnsperf over questions neither DP was asked before (a
 *   query file per round: existing CSIs, and absent ones that need an online-signed denial), so
 *   every answer is computed from the store — LMDB's memory map, or PostgreSQL's in-memory
 *   replica.
 * - **Durable publishes**: signed MAPs for new CSIs through `store.apply`, 200 in flight, each
 *   resolved once durable (LMDB: flushed; PostgreSQL: `COMMIT` with `synchronous_commit = on`).
 *
 * Reported: the medians of the per-round ratios PostgreSQL/LMDB, each DP's medians, the time of
 * the copy, and each DP's resident memory after the rounds (what the replica costs).
 */

/** Questions in one round's file: existing CSIs (and a third as many absent ones). */
const MISS_EXISTING = { quick: 5_000, full: 15_000 };
/** Publishes per server per round. */
const PUBLISHES = { quick: 1_000, full: 5_000 };
/** Publishes in flight, as in the registration benchmark. */
const PUBLISH_CONCURRENCY = 200;
/** Where the CSIs published here start: past every other benchmark's new CSIs. */
const FIRST_NEW_CSI = 20_000_000;

/** Options of {@link runPgBench}. */
export interface PgBenchOptions {
  /** The LMDB store of the data set (not open elsewhere meanwhile). */
  storeDir: string;
  /** CSIs in the data set (`nameOf(0 … csis - 1)`). */
  csis: number;
  rounds: number;
  quick: boolean;
  workDir: string;
  log(message: string): void;
}

/** One round of one server. */
export interface PgBenchRound {
  round: number;
  store: 'lmdb' | 'postgres';
  miss: Pick<
    DnsperfResult,
    'queriesPerSecond' | 'queriesCompleted' | 'queriesLost' | 'cpuMicrosecondsPerQuery'
  >;
  publishesPerSecond: number;
}

/** What {@link runPgBench} measured, or why it did not run. */
export type PgBenchResult =
  | { skipped: string }
  | {
      copySeconds: number;
      poolSize: number;
      missQuestions: number;
      publishesPerRound: number;
      rounds: PgBenchRound[];
      ratios: { round: number; missQps: number; publishesPerSecond: number }[];
      medians: {
        lmdb: { missQps: number; publishesPerSecond: number; cpuMicrosecondsPerMiss: number };
        postgres: { missQps: number; publishesPerSecond: number; cpuMicrosecondsPerMiss: number };
        ratioMissQps: number;
        ratioPublishesPerSecond: number;
      };
      /** Resident memory (VmRSS) of each DP process after the rounds. */
      rssBytes: { lmdb: number; postgres: number };
    };

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  return kib === undefined ? NaN : Number(kib) * 1024;
}

/** Runs the comparison; skipped (with the reason) when PostgreSQL is not installed. */
export async function runPgBench(options: PgBenchOptions): Promise<PgBenchResult> {
  const missing = postgresMissing();
  if (missing !== undefined) return { skipped: missing };
  const { log, rounds } = options;
  const size = options.quick ? 'quick' : 'full';
  const cluster = await startPostgres();
  const servers: { store: 'lmdb' | 'postgres'; dp: DpProcess }[] = [];
  try {
    const url = await cluster.createDatabase();
    const copyStart = performance.now();
    const source = await openLmdbStore({ dataDir: options.storeDir });
    // The PostgreSQL DP signs from the key directory the data set was made with.
    const keysDir = source.keys.dir;
    try {
      await copyStoreToPg(source, url);
    } finally {
      await source.close();
    }
    const copySeconds = (performance.now() - copyStart) / 1000;
    log(`postgres: data set copied into PostgreSQL in ${copySeconds.toFixed(1)} s`);
    servers.push({ store: 'lmdb', dp: await startDp(options.storeDir) });
    servers.push({ store: 'postgres', dp: await startDp(url, undefined, keysDir) });

    // Fresh questions for each round, the same for both servers: none is in an answer cache.
    const existing = Math.min(MISS_EXISTING[size], Math.floor(options.csis / rounds));
    const absent = Math.round(existing / 3);
    const files = Array.from({ length: rounds }, (_, r) => {
      const names = [
        ...Array.from({ length: existing }, (_, i) => nameOf(i * rounds + r)),
        ...Array.from({ length: absent }, (_, i) =>
          nameOf(options.csis + 10_000_000 + r * absent + i),
        ),
      ];
      const file = join(options.workDir, `pg-misses-${r + 1}.txt`);
      writeFileSync(file, names.map((n) => `${n} TYPE65400\n`).join(''));
      return file;
    });

    const measured: PgBenchRound[] = [];
    let nextCsi = FIRST_NEW_CSI;
    for (let round = 1; round <= rounds; round++) {
      const order = servers.map((_, i) => servers[(i + round - 1) % servers.length]!);
      for (const { store, dp } of order) {
        const miss = await runDnsperf(
          {
            port: dp.port,
            queryFile: files[round - 1]!,
            passes: 1,
            clients: 4,
            outstanding: 100,
          },
          dp.pid,
        );
        await dp.request({ cmd: 'prepare', first: nextCsi, count: PUBLISHES[size] });
        nextCsi += PUBLISHES[size];
        const registered = await dp.request({ cmd: 'register', concurrency: PUBLISH_CONCURRENCY });
        const publishesPerSecond = Number(registered.publishesPerSecond);
        measured.push({
          round,
          store,
          miss: {
            queriesPerSecond: miss.queriesPerSecond,
            queriesCompleted: miss.queriesCompleted,
            queriesLost: miss.queriesLost,
            cpuMicrosecondsPerQuery: miss.cpuMicrosecondsPerQuery,
          },
          publishesPerSecond,
        });
        log(
          `postgres round ${round} ${store}: ${Math.round(miss.queriesPerSecond)} q/s on misses ` +
            `(${miss.cpuMicrosecondsPerQuery.toFixed(1)} µs CPU/query), ` +
            `${Math.round(publishesPerSecond)} durable publishes/s`,
        );
      }
    }
    const rssBytes = {
      lmdb: rssOf(servers[0]!.dp.pid),
      postgres: rssOf(servers[1]!.dp.pid),
    };
    const of = (round: number, store: 'lmdb' | 'postgres'): PgBenchRound =>
      measured.find((m) => m.round === round && m.store === store)!;
    const ratios = Array.from({ length: rounds }, (_, i) => ({
      round: i + 1,
      missQps:
        of(i + 1, 'postgres').miss.queriesPerSecond / of(i + 1, 'lmdb').miss.queriesPerSecond,
      publishesPerSecond:
        of(i + 1, 'postgres').publishesPerSecond / of(i + 1, 'lmdb').publishesPerSecond,
    }));
    const medianOf = (store: 'lmdb' | 'postgres') => {
      const mine = measured.filter((m) => m.store === store);
      return {
        missQps: median(mine.map((m) => m.miss.queriesPerSecond)),
        publishesPerSecond: median(mine.map((m) => m.publishesPerSecond)),
        cpuMicrosecondsPerMiss: median(mine.map((m) => m.miss.cpuMicrosecondsPerQuery)),
      };
    };
    return {
      copySeconds,
      poolSize: PG_POOL_SIZE,
      missQuestions: existing + absent,
      publishesPerRound: PUBLISHES[size],
      rounds: measured,
      ratios,
      medians: {
        lmdb: medianOf('lmdb'),
        postgres: medianOf('postgres'),
        ratioMissQps: median(ratios.map((r) => r.missQps)),
        ratioPublishesPerSecond: median(ratios.map((r) => r.publishesPerSecond)),
      },
      rssBytes,
    };
  } finally {
    for (const { dp } of servers) await dp.stop().catch(() => undefined);
    await cluster.stop();
  }
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');

/** The section of `docs/benchmarks.md` for {@link runPgBench}'s result. */
export function pgBenchMarkdown(result: PgBenchResult | undefined): string {
  if (result === undefined) return '';
  const lines = ['', '## The DP over PostgreSQL next to the DP over LMDB', ''];
  if ('skipped' in result) return [...lines, `Not measured: ${result.skipped}.`, ''].join('\n');
  const m = result.medians;
  const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);
  lines.push(
    'Both DPs up at once, in interleaved rounds (`bench/lib/pg-bench.ts`); the PostgreSQL one over',
    `a copy of the data set (copied in ${result.copySeconds.toFixed(1)} s), ${result.poolSize} connections.`,
    `Answer-cache misses: one dnsperf pass over ${int(result.missQuestions)} questions neither DP was`,
    `asked before, per round. Durable publishes: ${int(result.publishesPerRound)} per round, ` +
      `${PUBLISH_CONCURRENCY} in flight.`,
    '',
    '| | LMDB | PostgreSQL | median per-round ratio PostgreSQL/LMDB |',
    '| --- | --- | --- | --- |',
    `| queries/s on answer-cache misses | ${int(m.lmdb.missQps)} | ${int(m.postgres.missQps)} | **${m.ratioMissQps.toFixed(3)}** |`,
    `| CPU per miss (µs) | ${m.lmdb.cpuMicrosecondsPerMiss.toFixed(1)} | ${m.postgres.cpuMicrosecondsPerMiss.toFixed(1)} | — |`,
    `| durable publishes/s | ${int(m.lmdb.publishesPerSecond)} | ${int(m.postgres.publishesPerSecond)} | **${m.ratioPublishesPerSecond.toFixed(3)}** |`,
    `| DP resident memory after the rounds (MiB) | ${mib(result.rssBytes.lmdb)} | ${mib(result.rssBytes.postgres)} | — |`,
    '',
    'The PostgreSQL DP answers from its in-memory replica of the database, so its misses cost no',
    'storage read; its memory holds the whole zone (LMDB maps it from the page cache instead).',
    'The database server runs on the same two cores and its CPU is not counted in the DP’s.',
    '',
  );
  return lines.join('\n');
}
