import type { ConnectionStats, MetricsSnapshot } from '@mimi-discovery/common';
import type { DpConfig } from '../config.js';

/**
 * The IPC messages between a DP's writer and its answer workers (`answer-workers.ts`,
 * `answer-worker-main.ts`): plain data, as `node:cluster` carries it.
 */

/** What the writer sends a worker. */
export type ToAnswerWorker =
  /** First message: the config (its per-client limits already this worker's share). */
  | { readonly kind: 'start'; readonly config: DpConfig; readonly index: number }
  /** A write committed: renew the read snapshot, then confirm `seq`. */
  | { readonly kind: 'renew'; readonly seq: number }
  /** Send this process's metrics (`metrics` reply with the same `id`). */
  | { readonly kind: 'metrics'; readonly id: number }
  /** Stop listening, close the store, exit. */
  | { readonly kind: 'close' };

/** What a worker counts and reports to the writer. */
export interface AnswerWorkerStats {
  /** DNS queries this worker answered (UDP and TCP). */
  readonly queries: number;
  /** Its TCP listener's connections; undefined without TCP. */
  readonly tcp: ConnectionStats | undefined;
}

/** What a worker sends the writer. */
export type FromAnswerWorker =
  /** The worker listens for messages (one sent before would be lost): send `start`. */
  | { readonly kind: 'hello' }
  /** The listeners are bound (the ports are the bound ones, also for a configured 0). */
  | {
      readonly kind: 'ready';
      readonly udp: number | undefined;
      readonly tcp: number | undefined;
      readonly stats: AnswerWorkerStats;
    }
  /** The start failed: the worker exits after this. */
  | { readonly kind: 'failed'; readonly message: string }
  /** The read snapshot was renewed after every write up to `seq`. */
  | { readonly kind: 'renewed'; readonly seq: number; readonly stats: AnswerWorkerStats }
  | { readonly kind: 'metrics'; readonly id: number; readonly metrics: MetricsSnapshot }
  | { readonly kind: 'stats'; readonly stats: AnswerWorkerStats };
