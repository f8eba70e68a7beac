import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { openLmdbStore, startProvider } from '@mimi-discovery/authoritative';
import { dpConfigSchema, keyPairFromSeed, record } from '@mimi-discovery/common';
import { ORIGIN, PROVER_SEED, nameOf, signedMapping } from './dataset.js';
import { Profiler, summarizeProfile } from './profile.js';

/**
 * The DP under test, in a process of its own so that its CPU time can be read from /proc:
 * the LMDB store in argv[2], answered over UDP on 127.0.0.1 (a free port). It writes one JSON
 * line `{"event":"ready","port":…}` and then obeys JSON lines on stdin:
 *
 *   {"cmd":"register","first":N,"count":C,"concurrency":K}  durable publishes, K at a time
 *   {"cmd":"profile-start"}                                  starts a CPU profile
 *   {"cmd":"profile-stop","phase":"…"}                       stops it, answers its summary
 *   {"cmd":"stop"}
 */

interface RegisterCommand {
  cmd: 'register';
  first: number;
  count: number;
  concurrency: number;
}

function reply(value: object): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

async function register(
  store: Awaited<ReturnType<typeof openLmdbStore>>,
  command: RegisterCommand,
): Promise<void> {
  const key = keyPairFromSeed(new Uint8Array(32).fill(0x55));
  const now = Math.floor(Date.now() / 1000);
  // The recipient signs before it publishes: mappings are made before the clock starts.
  const rdata = Array.from({ length: command.count }, (_, i) =>
    signedMapping(command.first + i, key, 'msp.example', now),
  );
  const publish = (i: number): Promise<unknown> => {
    const name = nameOf(command.first + i);
    return store.apply(ORIGIN, [
      { op: 'put', name, type: 'MAP', records: [record(name, 'MAP', rdata[i]!, 300)] },
    ]);
  };
  const start = performance.now();
  let next = 0;
  while (next < command.count) {
    const burst = Math.min(command.concurrency, command.count - next);
    await Promise.all(Array.from({ length: burst }, () => publish(next++)));
  }
  const seconds = (performance.now() - start) / 1000;
  reply({
    event: 'registered',
    publishes: command.count,
    seconds,
    publishesPerSecond: command.count / seconds,
  });
}

async function main(dataDir: string): Promise<void> {
  const store = await openLmdbStore({ dataDir, proverSeed: PROVER_SEED });
  // The server a DP operator runs (metrics, answer cache and all), over the bench's store.
  const config = dpConfigSchema.parse({
    role: 'dp',
    dataDir,
    listen: { host: '127.0.0.1', udp: 0 },
    log: { level: 'error' },
  });
  const server = await startProvider(config, { store });
  reply({ event: 'ready', port: server.dns?.udp?.port, pid: process.pid });
  const lines = createInterface({ input: process.stdin });
  const profiler = new Profiler();
  for await (const line of lines) {
    const command = JSON.parse(line) as
      | RegisterCommand
      | { cmd: 'profile-start' }
      | { cmd: 'profile-stop'; phase: string }
      | { cmd: 'stop' };
    if (command.cmd === 'register') {
      await register(store, command);
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
  await store.close();
  reply({ event: 'stopped' });
}

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error('usage: dp-server.ts DATA_DIR');
await main(dataDir);
