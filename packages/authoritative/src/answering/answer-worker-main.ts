/**
 * The entry of a DP's answer worker (`answer-workers.ts`): a `node:cluster` worker forked with
 * this file as its `exec`, so that it never runs its writer's main module. It waits for its
 * config, opens the same LMDB store for reading, builds the same answer path as the writer
 * (`answer-path.ts`), and answers DNS over UDP and TCP on the configured ports, sharing the
 * sockets the cluster's primary (the writer) holds. It writes nothing but what opening the
 * store checks (each zone's keys, already current when the writer opened it first).
 */
import { createLogger, startDnsServer, systemClock, type DnsServer } from '@mimi-discovery/common';
import { openConfiguredStore } from '../store/store-factory.js';
import type { DiscoveryStore } from '../store/store.js';
import { ANSWER_WORKER_METRICS, createAuthoritativeMetrics } from '../metrics.js';
import { createAnswerPath, type AnswerPath } from './answer-path.js';
import { setUpTransfers } from './transfer-setup.js';
import { ANSWER_WORKER_STATS_MS } from './answer-worker-limits.js';
import type {
  AnswerWorkerStats,
  FromAnswerWorker,
  ToAnswerWorker,
} from './answer-worker-messages.js';

/** The parts of a running worker. */
interface Running {
  readonly store: DiscoveryStore;
  readonly path: AnswerPath;
  readonly dns: DnsServer;
  readonly metrics: ReturnType<typeof createAuthoritativeMetrics>;
}

function send(message: FromAnswerWorker): void {
  process.send?.(message);
}

/**
 * Renews the read snapshot of the store (lmdb-js renews it by itself only after its own
 * commits, and at the next timers phase): the next read sees every commit made so far.
 */
function renewReads(store: DiscoveryStore): void {
  if ('renewReads' in store && typeof store.renewReads === 'function') store.renewReads();
}

function statsOf(running: Running): AnswerWorkerStats {
  return { queries: running.path.queries(), tcp: running.dns.tcp?.connectionStats() };
}

async function start(message: Extract<ToAnswerWorker, { kind: 'start' }>): Promise<Running> {
  const { config } = message;
  const log = createLogger('authoritative', { level: config.log.level }).child(
    `worker-${message.index}`,
  );
  // Read only: the writer alone brings keys up to date (opening the store would otherwise, at
  // this worker's clock, beside the writer's roller and renewals).
  const store = await openConfiguredStore(config, { log: log.child('store'), refreshKeys: false });
  try {
    const metrics = createAuthoritativeMetrics(store);
    const now = systemClock;
    const path = createAnswerPath(config, store, { now, log, metrics });
    // Transfers read the store only; NOTIFY is sent by the writer.
    const transfers = await setUpTransfers(config, store, { now, log, metrics });
    const transfer = transfers?.handler;
    const { host, udp, tcp } = config.listen;
    const dns = await startDnsServer(
      {
        host,
        ...(udp !== null
          ? { udp: { port: udp, shared: true, ...(transfer === undefined ? {} : { transfer }) } }
          : {}),
        ...(tcp !== null
          ? {
              tcp: {
                port: tcp,
                shared: true,
                ...config.limits.tcp,
                ...(transfer === undefined ? {} : { transfer }),
              },
            }
          : {}),
      },
      path.handler,
      {
        log: log.child('dns'),
        cache: path.cache,
        gate: path.limits.gate,
        ...(path.limits.rrl === undefined ? {} : { rrl: path.limits.rrl }),
        ...(transfers === undefined ? {} : { tsig: transfers.tsig }),
      },
    );
    if (dns.tcp) metrics.watchConnections('tcp', dns.tcp);
    // A write committed while the listeners were being bound is seen from the first answer.
    renewReads(store);
    return { store, path, dns, metrics };
  } catch (error) {
    await store.close();
    throw error;
  }
}

function main(): void {
  let running: Promise<Running> | undefined;
  let statsTimer: NodeJS.Timeout | undefined;
  let closing = false;
  const close = async (): Promise<void> => {
    if (closing) return;
    closing = true;
    clearInterval(statsTimer);
    const parts = await running?.catch(() => undefined);
    if (parts !== undefined) {
      await parts.dns.close();
      await parts.store.close();
    }
    process.exit(0);
  };
  process.on('message', (message: ToAnswerWorker) => {
    switch (message.kind) {
      case 'start': {
        if (running !== undefined) return;
        running = start(message);
        running.then(
          (parts) => {
            send({
              kind: 'ready',
              udp: parts.dns.udp?.port,
              tcp: parts.dns.tcp?.port,
              stats: statsOf(parts),
            });
            statsTimer = setInterval(
              () => send({ kind: 'stats', stats: statsOf(parts) }),
              ANSWER_WORKER_STATS_MS,
            );
            statsTimer.unref();
          },
          (error: unknown) => {
            send({
              kind: 'failed',
              message: error instanceof Error ? error.message : String(error),
            });
            process.exit(1);
          },
        );
        return;
      }
      case 'renew': {
        // Before the start ends, the store is opened after the write or renewed at the end of
        // the start: the confirmation waits for that.
        void running?.then((parts) => {
          renewReads(parts.store);
          send({ kind: 'renewed', seq: message.seq, stats: statsOf(parts) });
        });
        return;
      }
      case 'metrics': {
        void running?.then(async (parts) => {
          const all = await parts.metrics.registry.registry.getMetricsAsJSON();
          send({
            kind: 'metrics',
            id: message.id,
            metrics: all.filter((m) => ANSWER_WORKER_METRICS.includes(m.name)),
          });
        });
        return;
      }
      case 'close':
        void close();
        return;
    }
  });
  // The writer is gone (killed, crashed): a worker never outlives it.
  process.on('disconnect', () => void close());
  send({ kind: 'hello' });
}

main();
