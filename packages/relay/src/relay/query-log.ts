import { open, type FileHandle } from 'node:fs/promises';
import {
  QUERY_LOG_BUFFER_OCTETS,
  QUERY_LOG_RETRY_MS,
  silentLogger,
  type Logger,
  type QueryLogStats,
} from '@mimi-discovery/common';

/**
 * The relay's query log (design §10): off unless configured, one JSON object per request,
 * appended to a file (mode 0600: it records who used the relay, and when):
 *
 * ```
 * {"t":"2026-01-01T12:00:00.000Z","client":"192.0.2.7","method":"POST","route":"/ohttp/resolver","in":6212,"out":18933,"status":200}
 * {"t":"2026-01-01T12:00:00.350Z","client":"192.0.2.7","method":"POST","route":"/proxy","target":"resolver.example:443","in":310,"out":0,"status":403}
 * ```
 *
 * `t` (ISO 8601, UTC, milliseconds), `client` (the address the request came from), `method`,
 * `route` (`/ohttp/<gateway>`, `/proxy`, or `other` for a path the relay does not serve),
 * `target` (an ODoH proxy request's `host:port`), `in` and `out` (octets of the request body
 * read and of the response body sent), `status` (the HTTP status the client got). Never a body
 * or a header: what the relay forwards is encrypted for the gateway, and the relay keeps none
 * of it. The relay knows the client and never a CSI (R6), so a line may hold the address.
 *
 * The same discipline as the servers' DNS query log (`query-log.ts` of `@mimi-discovery/common`,
 * whose line format is for DNS queries): answering never waits for the log; at most
 * `bufferBytes` of lines wait for the disk and the rest are dropped and counted; a failed write
 * drops its lines, is logged once, and the next is tried `QUERY_LOG_RETRY_MS` later.
 */

/** One request as the relay's query log records it. */
export interface RelayLogEntry {
  readonly client: string;
  readonly method: string;
  readonly route: string;
  /** `host:port` of an ODoH proxy request. */
  readonly target?: string | undefined;
  /** Octets of request body read. */
  readonly octetsIn: number;
  /** Octets of response body sent. */
  readonly octetsOut: number;
  readonly status: number;
}

/** Where the log goes, and how much may wait for the disk. */
export interface RelayQueryLogSettings {
  readonly path: string;
  /** Default `QUERY_LOG_BUFFER_OCTETS`. */
  readonly bufferBytes?: number;
}

/** What the log uses besides its settings. */
export interface RelayQueryLogComponents {
  /** Milliseconds since the epoch, for `t`; default `Date.now`. */
  readonly now?: () => number;
  readonly log?: Logger;
  /** Wait after a failure; default `QUERY_LOG_RETRY_MS`. */
  readonly retryMs?: number;
}

/** An open relay query log. */
export interface RelayQueryLog {
  readonly path: string;
  /** Buffers one line; never blocks, never throws. */
  record(entry: RelayLogEntry): void;
  stats(): QueryLogStats;
  /** Resolves once every line recorded before the call is written or dropped. */
  flush(): Promise<void>;
  /** Flushes, then closes the file; lines recorded afterwards are dropped. */
  close(): Promise<void>;
}

/** The line of one entry, with its newline; keys in the order of the module comment. */
export function relayLogLine(entry: RelayLogEntry, time: number): string {
  return `${JSON.stringify({
    t: new Date(time).toISOString(),
    client: entry.client,
    method: entry.method,
    route: entry.route,
    ...(entry.target === undefined ? {} : { target: entry.target }),
    in: entry.octetsIn,
    out: entry.octetsOut,
    status: entry.status,
  })}\n`;
}

/** Opens (creates) the log at `settings.path`; the file is opened with the first write. */
export function openRelayQueryLog(
  settings: RelayQueryLogSettings,
  components: RelayQueryLogComponents = {},
): RelayQueryLog {
  const { path } = settings;
  const limit = settings.bufferBytes ?? QUERY_LOG_BUFFER_OCTETS;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(`bufferBytes must be a positive integer, got ${String(limit)}`);
  }
  const now = components.now ?? Date.now;
  const log = components.log ?? silentLogger;
  const retryMs = components.retryMs ?? QUERY_LOG_RETRY_MS;
  let pending: string[] = [];
  let pendingOctets = 0;
  let written = 0;
  let dropped = 0;
  let file: FileHandle | undefined;
  let failing = false;
  let closed = false;
  /** The drain in progress: one writer at a time, so lines keep their order. */
  let draining: Promise<void> | undefined;

  const writeBatch = async (): Promise<void> => {
    const batch = pending;
    pending = [];
    pendingOctets = 0;
    try {
      file ??= await open(path, 'a', 0o600);
      await file.write(batch.join(''));
      written += batch.length;
      if (failing) {
        failing = false;
        log.info('query-log-recovered', { path, dropped });
      }
    } catch (error) {
      dropped += batch.length;
      if (!failing) {
        failing = true;
        log.error('query-log-failed', { path, error });
      }
      const broken = file;
      file = undefined;
      await broken?.close().catch(() => undefined);
      if (!closed) await new Promise((resolve) => setTimeout(resolve, retryMs).unref());
    }
  };

  const drain = (): Promise<void> => {
    draining ??= (async () => {
      // Lines recorded in the same event turn go out in one write.
      await new Promise((resolve) => setImmediate(resolve));
      while (pending.length > 0) await writeBatch();
    })().finally(() => {
      draining = undefined;
    });
    return draining;
  };

  return {
    path,
    record(entry) {
      const line = relayLogLine(entry, now());
      if (closed || pendingOctets + line.length > limit) {
        dropped++;
        return;
      }
      pending.push(line);
      pendingOctets += line.length;
      void drain();
    },
    stats: () => ({ written, dropped }),
    async flush() {
      while (draining !== undefined || pending.length > 0) await drain();
    },
    async close() {
      if (closed) return;
      closed = true;
      while (draining !== undefined || pending.length > 0) await drain();
      await file?.close().catch(() => undefined);
      file = undefined;
    },
  };
}
