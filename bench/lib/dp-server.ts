import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  dpConfigSchema,
  lmdbKeyDirectory,
  openLmdbStore,
  openPgStore,
  startDp,
  type DiscoveryStore,
  type DpConfig,
  type RunningDp,
} from '@mimi-discovery/authoritative';
import { keyPairFromSeed, record } from '@mimi-discovery/common';
import { ORIGIN, PROVER_SEED, nameOf, signedMapping } from './dataset.js';
import { Profiler, summarizeProfile } from './profile.js';

/**
 * The DP under test, in a process of its own so that its CPU time can be read from /proc:
 * the LMDB store in argv[2] (or, for a `postgresql://` URL, the PostgreSQL store there),
 * answered over UDP on 127.0.0.1 (a free port). With argv[3], a JSON `transfer` section of the
 * DP's config (`bench/lib/transfer-bench.ts`), it also listens on TCP (the same port) and its
 * admin port, and offers its zone to secondaries. With `MIMI_BENCH_ANSWER_WORKERS=N` in its
 * environment (LMDB only), the DP runs `answerWorkers: N`: it opens the store from its config
 * (a server directory of its own whose `store` links to argv[2]), this process stays the writer
 * (the publishes below go through it, each resolved once every worker serves it) and N answer
 * workers answer UDP. It writes one JSON line
 * `{"event":"ready","port":…,"admin":…}` and then obeys JSON lines on stdin:
 *
 *   {"cmd":"prepare","first":N,"count":C}                   signs C mappings for new CSIs
 *   {"cmd":"register","concurrency":K}                       publishes them durably, K in flight
 *   {"cmd":"publish","index":I}                              publishes prepared mapping I alone,
 *                                                            answers the zone's serial after it
 *   {"cmd":"profile-start"}                                  starts a CPU profile
 *   {"cmd":"profile-stop","phase":"…"}                       stops it, answers its summary
 *   {"cmd":"stop"}
 */

interface PrepareCommand {
  cmd: 'prepare';
  first: number;
  count: number;
}

interface RegisterCommand {
  cmd: 'register';
  concurrency: number;
  /** Publishes started per second at most (a steady stream); default: as fast as they finish. */
  rate?: number;
}

function reply(value: object): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/**
 * The signed MAP RDATA of `count` new CSIs from `first`, one mapping each. The recipient signs
 * before it publishes, so this happens before the clock starts, and before the query load whose
 * latency the publishes are measured against (signing thousands of mappings would otherwise
 * hold the event loop and show up as query latency).
 */
function prepare(command: PrepareCommand): { name: string; rdata: Uint8Array }[] {
  const key = keyPairFromSeed(new Uint8Array(32).fill(0x55));
  const now = Math.floor(Date.now() / 1000);
  return Array.from({ length: command.count }, (_, i) => ({
    name: nameOf(command.first + i),
    rdata: signedMapping(command.first + i, key, 'msp.example', now),
  }));
}

/** Publishes the prepared mappings, `concurrency` in flight at any time (as API requests). */
async function register(
  store: DiscoveryStore,
  prepared: { name: string; rdata: Uint8Array }[],
  command: RegisterCommand,
): Promise<void> {
  const start = performance.now();
  let next = 0;
  const writer = async (): Promise<void> => {
    // Bounded: each step takes the next of a finite list.
    while (next < prepared.length) {
      const index = next++;
      const { name, rdata } = prepared[index]!;
      if (command.rate !== undefined) {
        // Paced: publish i starts no earlier than i / rate seconds after the first.
        const due = start + (index * 1000) / command.rate - performance.now();
        if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
      }
      await store.apply(ORIGIN, [
        { op: 'put', name, type: 'MAP', records: [record(name, 'MAP', rdata, 300)] },
      ]);
    }
  };
  await Promise.all(Array.from({ length: command.concurrency }, writer));
  const seconds = (performance.now() - start) / 1000;
  reply({
    event: 'registered',
    publishes: prepared.length,
    seconds,
    publishesPerSecond: prepared.length / seconds,
  });
}

/**
 * A server directory for a DP that opens the bench's LMDB store from its config (answer workers
 * open it too): `<tmp>/store` links to the store directory, the key directory stays the
 * store's own (`<dataDir>/keys`, where the data set's keys are).
 */
function serverDirFor(dataDir: string): { dir: string; keys: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mimi-bench-dp-'));
  symlinkSync(resolve(dataDir), join(dir, 'store'));
  return { dir, keys: lmdbKeyDirectory(dataDir) };
}

async function main(dataDir: string, transfer: unknown): Promise<void> {
  const answerWorkers = Number(process.env['MIMI_BENCH_ANSWER_WORKERS'] ?? '1');
  if (answerWorkers > 1) return mainWithWorkers(dataDir, transfer, answerWorkers);
  const store = /^postgres(ql)?:/.test(dataDir)
    ? await openPgStore({
        url: dataDir,
        proverSeed: PROVER_SEED,
        // The key directory the data set was signed from (`MIMI_BENCH_KEYS`, set by pg-bench.ts).
        ...(process.env['MIMI_BENCH_KEYS'] === undefined
          ? {}
          : { keys: process.env['MIMI_BENCH_KEYS'] }),
      })
    : await openLmdbStore({ dataDir, proverSeed: PROVER_SEED, writer: 'thread' });
  // The server a DP operator runs (metrics, answer cache and all), over the bench's store.
  const config = benchConfig(dataDir, transfer, {});
  const server = await startDp(config, { store });
  await serve(server);
  await store.close();
  reply({ event: 'stopped' });
}

/** The DP's config over the bench's data: what both forms share. */
function benchConfig(dataDir: string, transfer: unknown, extra: object): DpConfig {
  return dpConfigSchema.parse({
    role: 'dp',
    dataDir,
    listen:
      transfer === undefined
        ? { host: '127.0.0.1', udp: 0 }
        : { host: '127.0.0.1', udp: 0, tcp: 0, admin: 0 },
    ...(transfer === undefined ? {} : { transfer }),
    // dnsperf on loopback measures throughput: RRL exempts it, as NSD runs with
    // `rrl-ratelimit: 0` (stock.ts).
    limits: { rrl: { exempt: ['127.0.0.0/8'] } },
    log: { level: 'error' },
    ...extra,
  });
}

/** The DP with `answerWorkers` answer workers, over the LMDB store in `dataDir`. */
async function mainWithWorkers(
  dataDir: string,
  transfer: unknown,
  answerWorkers: number,
): Promise<void> {
  const { dir, keys } = serverDirFor(dataDir);
  try {
    const server = await startDp(
      benchConfig(dir, transfer, { keys: { dir: keys }, answerWorkers }),
    );
    await serve(server);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  reply({ event: 'stopped' });
}

/**
 * Announces the running DP and obeys the commands on stdin until `stop`; publishes go through
 * `server.store`, the store as the server writes it (with answer workers, each write resolves
 * once every worker serves it).
 */
async function serve(server: RunningDp): Promise<void> {
  const store = server.store;
  reply({
    event: 'ready',
    port: server.dns?.udp?.port,
    tcp: server.dns?.tcp?.port,
    admin: server.admin?.url,
    pid: process.pid,
  });
  const lines = createInterface({ input: process.stdin });
  const profiler = new Profiler();
  let prepared: { name: string; rdata: Uint8Array }[] = [];
  for await (const line of lines) {
    const command = JSON.parse(line) as
      | PrepareCommand
      | RegisterCommand
      | { cmd: 'publish'; index: number }
      | { cmd: 'profile-start' }
      | { cmd: 'profile-stop'; phase: string }
      | { cmd: 'stop' };
    if (command.cmd === 'prepare') {
      prepared = prepare(command);
      reply({ event: 'prepared', count: prepared.length });
    } else if (command.cmd === 'register') {
      await register(store, prepared, command);
    } else if (command.cmd === 'publish') {
      const { name, rdata } = prepared[command.index]!;
      const { serial } = await store.apply(ORIGIN, [
        { op: 'put', name, type: 'MAP', records: [record(name, 'MAP', rdata, 300)] },
      ]);
      reply({ event: 'published', serial });
    } else if (command.cmd === 'profile-start') {
      await profiler.start();
      reply({ event: 'profiling' });
    } else if (command.cmd === 'profile-stop') {
      reply({ event: 'profile', summary: summarizeProfile(command.phase, await profiler.stop()) });
    } else {
      break;
    }
  }
  lines.close();
  await server.close();
}

const dataDir = process.argv[2];
if (dataDir === undefined) {
  throw new Error('usage: dp-server.ts DATA_DIR | POSTGRESQL_URL [TRANSFER_JSON]');
}
const transferArg = process.argv[3];
await main(dataDir, transferArg === undefined ? undefined : (JSON.parse(transferArg) as unknown));
