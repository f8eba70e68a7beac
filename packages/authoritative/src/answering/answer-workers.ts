/**
 * A DP's answer workers (config `answerWorkers`): processes that answer DNS over UDP and TCP
 * beside the one that runs `startDp`, which stays the only writer.
 *
 * ```
 *  writer (startDp)                          answer workers (node:cluster, answer-worker-main.ts)
 *  store writes, registration API, admin,    same LMDB store, read only; same answer path;
 *  DoH, roller, CDS, re-signing, NOTIFY      UDP and TCP on the configured ports
 *        │  a write committed ──renew(seq)──▶ renew the read snapshot
 *        │  the write resolves ◀─renewed(seq)─ (every live worker, within answerWorkerAckMs)
 * ```
 *
 * The writer is the cluster's primary: it holds the listening sockets and every worker binds the
 * same address and port (`shared` listeners), the kernel spreading datagrams over the workers
 * and the primary handing out TCP connections in turn. A worker is forked with a dedicated entry
 * file (`cluster.setupPrimary({ exec })`), never the writer's own main module.
 *
 * A write is served before it is acknowledged: the writer's store is wrapped
 * ({@link storeWithAnswerWorkers}) so that each write that changed what readers see resolves only
 * once every worker that answers has renewed its read snapshot, or has been killed for not
 * confirming within `answerWorkerAckMs` (a new worker, forked in its place, opens the store
 * after the write). A worker that dies, or that a restart leaves starting past
 * `ANSWER_WORKER_START_MS`, is forked again, at most `ANSWER_WORKER_RESTARTS_PER_WINDOW` times a
 * window (or once per worker, when there are more workers).
 *
 * Per-client limits are divided ({@link workerShare}): a client's datagrams and connections
 * spread over the workers, so each worker allows its share of every per-client budget and the
 * client's total stays what the config says — except a budget smaller than the number of
 * workers, which becomes 1 per worker (up to one per worker in total).
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CONNECTION_CLOSE_REASONS,
  CONNECTION_REFUSALS,
  ConfigError,
  cumulativeSnapshot,
  type ConnectionCloseReason,
  type ConnectionRefusal,
  type ConnectionStats,
  type Logger,
  type MetricsSnapshot,
} from '@mimi-discovery/common';
import type { DpConfig } from '../config.js';
import type { AuthoritativeMetrics } from '../metrics.js';
import type { DiscoveryStore } from '../store/store.js';
import {
  ANSWER_WORKER_CLOSE_MS,
  ANSWER_WORKER_RESTARTS_PER_WINDOW,
  ANSWER_WORKER_RESTART_WINDOW_MS,
  ANSWER_WORKER_START_MS,
  MAX_ANSWER_WORKERS,
} from './answer-worker-limits.js';
import type {
  AnswerWorkerStats,
  FromAnswerWorker,
  ToAnswerWorker,
} from './answer-worker-messages.js';

/**
 * The number of answer workers of `answerWorkers`: `"auto"` is one per core, at most
 * `MAX_ANSWER_WORKERS`.
 */
export function answerWorkerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? Math.min(availableParallelism(), MAX_ANSWER_WORKERS) : setting;
}

/** `value` divided among `workers`, at least 1 unless it is 0 (a limit that is off stays off). */
function shareOf(value: number, workers: number): number {
  return value === 0 ? 0 : Math.max(1, Math.floor(value / workers));
}

/**
 * The config one of `workers` answer workers runs with: each per-client and per-listener budget
 * of the listeners it serves divided among the workers (RRL rates and table size, TCP
 * connections, transfers), so that the totals stay the configured ones. A budget smaller than
 * the number of workers becomes 1 per worker. DoH and the registration API stay on the writer,
 * with their whole budgets.
 */
export function workerShare(config: DpConfig, workers: number): DpConfig {
  const { rrl, tcp } = config.limits;
  return {
    ...config,
    limits: {
      ...config.limits,
      rrl: {
        ...rrl,
        responsesPerSecond: shareOf(rrl.responsesPerSecond, workers),
        denialsPerSecond: shareOf(rrl.denialsPerSecond, workers),
        errorsPerSecond: shareOf(rrl.errorsPerSecond, workers),
        maxEntries: shareOf(rrl.maxEntries, workers),
      },
      tcp: {
        ...tcp,
        maxConnections: shareOf(tcp.maxConnections, workers),
        connectionsPerClient: shareOf(tcp.connectionsPerClient, workers),
      },
    },
    ...(config.transfer === undefined
      ? {}
      : {
          transfer: {
            ...config.transfer,
            transfersPerClient: shareOf(config.transfer.transfersPerClient, workers),
            maxTransfers: shareOf(config.transfer.maxTransfers, workers),
          },
        }),
  };
}

/** A DP's running answer workers, as its writer sees them. */
export interface AnswerWorkers {
  /** How many workers the config asks for. */
  readonly count: number;
  /** The UDP port the workers listen on (the bound one for a configured 0). */
  readonly udp: number | undefined;
  /** The TCP port the workers listen on. */
  readonly tcp: number | undefined;
  /** Workers answering now. */
  live(): number;
  /** Process ids of the workers forked and not yet exited. */
  pids(): number[];
  /** Queries each answering worker has answered, as it last reported (every second, at each renew). */
  queries(): number[];
  /** The TCP connection counts of every worker, added up, as last reported. */
  tcpStats(): ConnectionStats;
  /**
   * Makes every answering worker renew its read snapshot; resolves once each has confirmed, or
   * has been killed for not confirming within `answerWorkerAckMs`.
   */
  renew(): Promise<void>;
  /** The answer-path metrics of every answering worker (those that reply within the bound). */
  metrics(): Promise<MetricsSnapshot[]>;
  /** Stops every worker: asks, then kills those still running after `ANSWER_WORKER_CLOSE_MS`. */
  close(): Promise<void>;
}

/** One worker slot: the process now in it and what it confirmed. */
interface Slot {
  readonly index: number;
  worker: Worker;
  state: 'starting' | 'ready' | 'gone';
  confirmed: number;
  waiters: Set<{ readonly seq: number; resolve(): void }>;
  stats: AnswerWorkerStats;
  /** The metrics the process now in the slot last reported (undefined until it has). */
  metrics: MetricsSnapshot | undefined;
  exited: Promise<void>;
}

const NO_STATS: AnswerWorkerStats = Object.freeze({ queries: 0, tcp: undefined });

/** The compiled worker entry, also when this module runs from its TypeScript source (tests). */
function workerScript(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.ts')
    ? join(dirname(here), '..', '..', 'dist', 'answering', 'answer-worker-main.js')
    : join(dirname(here), 'answer-worker-main.js');
}

/**
 * The node options a worker runs with: this process's, less export conditions that select
 * TypeScript sources (as a test runner sets): the compiled worker imports compiled packages.
 */
function workerExecArgv(): string[] {
  return process.execArgv.filter(
    (arg, i, all) =>
      !arg.startsWith('--conditions') &&
      !arg.startsWith('-C') &&
      !(all[i - 1] === '--conditions' || all[i - 1] === '-C'),
  );
}

/** Resolves when `promise` does or after `ms`, whichever is first (true: it settled). */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `stats` added up, reason by reason. */
function addStats(stats: readonly ConnectionStats[]): ConnectionStats {
  const total = (pick: (s: ConnectionStats) => number): number =>
    stats.reduce((sum, s) => sum + pick(s), 0);
  return {
    admitted: total((s) => s.admitted),
    open: total((s) => s.open),
    clients: total((s) => s.clients),
    refused: Object.fromEntries(
      CONNECTION_REFUSALS.map((reason) => [reason, total((s) => s.refused[reason])]),
    ) as Record<ConnectionRefusal, number>,
    closed: Object.fromEntries(
      CONNECTION_CLOSE_REASONS.map((reason) => [reason, total((s) => s.closed[reason])]),
    ) as Record<ConnectionCloseReason, number>,
  };
}

/**
 * Forks `count` answer workers for `config` (the config as the writer runs it) and resolves once
 * every one answers. Rejects with `ConfigError` `ERR_CONFIG_INVALID` when a worker cannot start
 * (its reason in the message), after stopping the others.
 */
export async function startAnswerWorkers(
  config: DpConfig,
  components: {
    readonly count: number;
    readonly log: Logger;
    readonly metrics: AuthoritativeMetrics;
  },
): Promise<AnswerWorkers> {
  const { count, log, metrics } = components;
  const share = workerShare(config, count);
  const slots: Slot[] = [];
  let closing = false;
  let started = false;
  let nextSeq = 0;
  let nextId = 1;
  const restartTimes: number[] = [];
  /**
   * The counters and histograms of the workers that exited, as each last reported them, summed:
   * added to every scrape so that the sums never go down. One chain, so a scrape waits for every
   * exit before it.
   */
  let retired: Promise<MetricsSnapshot | undefined> = Promise.resolve(undefined);
  // Every worker may be replaced once a window, however many there are (a stalled writer can
  // take out all of them at once); a worker that dies at once each time is still bounded.
  const restartsPerWindow = Math.max(ANSWER_WORKER_RESTARTS_PER_WINDOW, count);
  const pendingMetrics = new Map<number, (metrics: MetricsSnapshot) => void>();
  let ports: { udp: number | undefined; tcp: number | undefined } | undefined;
  let startFailure: ((error: Error) => void) | undefined;
  const readyWaiters = new Set<() => void>();

  const send = (slot: Slot, message: ToAnswerWorker): void => {
    try {
      slot.worker.send(message);
    } catch {
      // The channel closed: the worker is exiting, and its exit handler takes care of it.
    }
  };

  const settle = (slot: Slot): void => {
    for (const waiter of slot.waiters) {
      if (slot.state === 'gone' || slot.confirmed >= waiter.seq) {
        slot.waiters.delete(waiter);
        waiter.resolve();
      }
    }
  };

  const fork = (index: number, slot?: Slot): Slot => {
    cluster.setupPrimary({ exec: workerScript(), execArgv: workerExecArgv() });
    const worker = cluster.fork();
    let markExited: () => void = () => undefined;
    const exited = new Promise<void>((resolve) => {
      markExited = resolve;
    });
    const current: Slot = slot ?? {
      index,
      worker,
      state: 'starting',
      confirmed: 0,
      waiters: new Set(),
      stats: NO_STATS,
      metrics: undefined,
      exited,
    };
    current.worker = worker;
    current.state = 'starting';
    current.stats = NO_STATS;
    current.exited = exited;
    // A new worker opens the store after every write acknowledged so far.
    current.confirmed = nextSeq;
    worker.on('message', (message: FromAnswerWorker) => {
      if (current.worker !== worker) return;
      switch (message.kind) {
        case 'hello':
          send(current, { kind: 'start', config: share, index });
          return;
        case 'ready':
          current.state = 'ready';
          current.stats = message.stats;
          ports ??= { udp: message.udp, tcp: message.tcp };
          log.info('answer-worker-ready', { worker: index, pid: worker.process.pid });
          if (started && slots.every((s) => s.state === 'ready')) {
            log.info('answer-workers-all-ready', { workers: count });
          }
          readyWaiters.forEach((resolve) => resolve());
          return;
        case 'failed':
          log.error('answer-worker-failed', { worker: index, reason: message.message });
          startFailure?.(new Error(message.message));
          return;
        case 'renewed':
          current.confirmed = Math.max(current.confirmed, message.seq);
          current.stats = message.stats;
          settle(current);
          return;
        case 'stats':
          current.stats = message.stats;
          return;
        case 'metrics':
          pendingMetrics.get(message.id)?.(message.metrics);
          return;
      }
    });
    worker.on('exit', (code, signal) => {
      if (current.worker === worker) {
        current.state = 'gone';
        settle(current);
        // What the process counted stays counted: its successor starts again from 0.
        const last = current.metrics;
        current.metrics = undefined;
        if (last !== undefined) {
          // A sum that fails keeps the one before (a scrape never fails for it).
          retired = retired.then((before) =>
            cumulativeSnapshot(before === undefined ? [last] : [before, last]).catch(() => before),
          );
        }
      }
      markExited();
      if (closing) return;
      if (!started) {
        startFailure?.(
          new Error(`answer worker ${index} exited during its start (${signal ?? code})`),
        );
        return;
      }
      if (current.worker !== worker) return;
      log.warn('answer-worker-exited', { worker: index, code, signal });
      restart(current);
    });
    worker.on('error', (error) =>
      log.debug('answer-worker-channel-error', { worker: index, error }),
    );
    if (started) {
      // A restarted worker that hangs while it opens the store or binds would hold its slot for
      // ever, unnoticed: past the start bound it is killed, and forked again (bounded).
      const deadline = setTimeout(() => {
        if (closing || current.worker !== worker || current.state !== 'starting') return;
        log.error('answer-worker-killed', {
          worker: index,
          pid: worker.process.pid,
          reason: `not answering within ${ANSWER_WORKER_START_MS} ms of its start`,
        });
        worker.process.kill('SIGKILL');
      }, ANSWER_WORKER_START_MS);
      deadline.unref();
      void exited.then(() => clearTimeout(deadline));
    }
    return current;
  };

  const restart = (slot: Slot): void => {
    // A monotonic reading: the restart window is an interval, never a date.
    const now = performance.now();
    while (
      restartTimes.length > 0 &&
      (restartTimes[0] ?? 0) <= now - ANSWER_WORKER_RESTART_WINDOW_MS
    ) {
      restartTimes.shift();
    }
    if (restartTimes.length >= restartsPerWindow) {
      const wait = (restartTimes[0] ?? now) + ANSWER_WORKER_RESTART_WINDOW_MS - now;
      log.error('answer-worker-restarts-bounded', { worker: slot.index, retryInMs: wait });
      setTimeout(() => {
        if (!closing && slot.state === 'gone') restart(slot);
      }, wait).unref();
      return;
    }
    restartTimes.push(now);
    metrics.recordAnswerWorkerRestart();
    fork(slot.index, slot);
    log.info('answer-worker-restarted', { worker: slot.index, pid: slot.worker.process.pid });
  };

  const stopAll = async (): Promise<void> => {
    closing = true;
    for (const slot of slots) if (slot.state !== 'gone') send(slot, { kind: 'close' });
    await Promise.all(
      slots.map(async (slot) => {
        if (await within(slot.exited, ANSWER_WORKER_CLOSE_MS)) return;
        log.warn('answer-worker-killed', { worker: slot.index, reason: 'close' });
        slot.worker.process.kill('SIGKILL');
        await within(slot.exited, ANSWER_WORKER_CLOSE_MS);
      }),
    );
  };

  try {
    await new Promise<void>((resolve, reject) => {
      startFailure = reject;
      const check = (): void => {
        if (slots.length === count && slots.every((s) => s.state === 'ready')) resolve();
      };
      readyWaiters.add(check);
      for (let i = 0; i < count; i++) slots.push(fork(i));
      setTimeout(
        () => reject(new Error(`answer workers did not start within ${ANSWER_WORKER_START_MS} ms`)),
        ANSWER_WORKER_START_MS,
      ).unref();
    });
  } catch (error) {
    await stopAll();
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `answerWorkers: ${error instanceof Error ? error.message : String(error)}`,
      undefined,
    );
  }
  startFailure = undefined;
  readyWaiters.clear();
  started = true;

  /** Waits for `slot` to confirm `seq`; past the bound, kills it (it is forked again). */
  const confirmOrKill = async (slot: Slot, seq: number): Promise<void> => {
    const confirmed = new Promise<void>((resolve) => {
      slot.waiters.add({ seq, resolve });
      settle(slot);
    });
    if (await within(confirmed, config.answerWorkerAckMs)) return;
    // Timers run before the messages that came in meanwhile are read: a writer whose event loop
    // was blocked past the bound would kill workers whose confirmation waits to be read. One more
    // turn reads them.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (slot.confirmed >= seq || slot.state === 'gone' || slot.worker.isDead()) return;
    log.error('answer-worker-killed', {
      worker: slot.index,
      pid: slot.worker.process.pid,
      reason: `no confirmation of a write within ${config.answerWorkerAckMs} ms`,
    });
    slot.worker.process.kill('SIGKILL');
    await within(slot.exited, ANSWER_WORKER_CLOSE_MS);
  };

  /** Renews every worker's snapshot once, after every write that asked so far. */
  const renewNow = async (): Promise<void> => {
    const seq = ++nextSeq;
    const live = slots.filter((s) => s.state !== 'gone');
    for (const slot of live) send(slot, { kind: 'renew', seq });
    // A starting worker renews at the end of its start; only answering ones are waited for.
    await Promise.all(live.filter((s) => s.state === 'ready').map((s) => confirmOrKill(s, seq)));
  };
  /**
   * The writes of one group commit resolve in one event turn: they share one renewal, sent at
   * the next turn (every one of them committed before it is sent), not one message each.
   */
  let batch: Promise<void> | undefined;

  let stopping: Promise<void> | undefined;
  return {
    count,
    udp: ports?.udp,
    tcp: ports?.tcp,
    live: () => slots.filter((s) => s.state === 'ready').length,
    pids: () =>
      slots.flatMap((s) =>
        s.state === 'gone' || s.worker.process.pid === undefined ? [] : [s.worker.process.pid],
      ),
    queries: () => slots.filter((s) => s.state === 'ready').map((s) => s.stats.queries),
    tcpStats: () =>
      addStats(slots.flatMap((s) => (s.stats.tcp === undefined ? [] : [s.stats.tcp]))),
    renew: () =>
      (batch ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        batch = undefined;
        return renewNow();
      })),
    async metrics() {
      const ready = slots.filter((s) => s.state === 'ready');
      const replies = await Promise.all(
        ready.map(async (slot) => {
          const { worker } = slot;
          const id = nextId++;
          let reply: MetricsSnapshot | undefined;
          const got = new Promise<void>((resolve) => {
            pendingMetrics.set(id, (m) => {
              reply = m;
              resolve();
            });
          });
          send(slot, { kind: 'metrics', id });
          await within(got, config.answerWorkerAckMs);
          pendingMetrics.delete(id);
          // A worker that does not reply in time counts what it reported last, not 0.
          if (reply !== undefined && slot.worker === worker) slot.metrics = reply;
          return reply ?? slot.metrics;
        }),
      );
      const before = await retired;
      return [...(before === undefined ? [] : [before]), ...replies].filter((r) => r !== undefined);
    },
    close: () => (stopping ??= stopAll()),
  };
}

/**
 * `store` as the writer of a DP with answer workers uses it: each write that changed what
 * readers see (its generation moved) resolves only after `renew` (every answer worker sees it).
 * Reads go straight to `store`.
 */
export function storeWithAnswerWorkers(
  store: DiscoveryStore,
  renew: () => Promise<void>,
): DiscoveryStore {
  const seen =
    <A extends unknown[], T>(write: (...args: A) => Promise<T>) =>
    async (...args: A): Promise<T> => {
      const before = store.generation();
      const result = await write(...args);
      if (store.generation() !== before) await renew();
      return result;
    };
  return {
    keys: store.keys,
    listZones: () => store.listZones(),
    addZone: seen((init) => store.addZone(init)),
    removeZone: seen((origin) => store.removeZone(origin)),
    zoneInfo: (origin) => store.zoneInfo(origin),
    refreshKeys: seen((origin, now) => store.refreshKeys(origin, now)),
    signatureStatus: (origin) => store.signatureStatus(origin),
    zoneSigners: (origin) => store.zoneSigners(origin),
    findZone: (name) => store.findZone(name),
    zoneView: (origin) => store.zoneView(origin),
    zoneKey: (origin) => store.zoneKey(origin),
    proverKey: () => store.proverKey(),
    generation: () => store.generation(),
    changesSince: (generation) => store.changesSince(generation),
    readRRset: (origin, name, type) => store.readRRset(origin, name, type),
    readZone: (origin) => store.readZone(origin),
    streamZone: (origin) => store.streamZone(origin),
    journalSince: (origin, from) => store.journalSince(origin, from),
    setNsec3: seen((origin, enabled) => store.setNsec3(origin, enabled)),
    apply: seen((origin, changes) => store.apply(origin, changes)),
    applyOperation: seen((origin, operation) => store.applyOperation(origin, operation)),
    replayRecords: (limit) => store.replayRecords(limit),
    resign: seen((before) => store.resign(before)),
    close: () => store.close(),
  };
}
