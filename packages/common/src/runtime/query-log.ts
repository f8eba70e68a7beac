/**
 * The query log of a server (design §10): off unless configured, one JSON object per line,
 * appended to a file. A line is written for every query with one question that a DNS listener
 * answers (UDP, TCP or DoH, answers from the answer cache included) and, on a resolver that asks
 * for it, for every CSI its JSON API looks up:
 *
 * ```
 * {"t":"2026-01-01T12:00:00.000Z","name":"8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa","type":"MAP","transport":"doh","rcode":"NOERROR"}
 * {"t":"2026-01-01T12:00:00.004Z","name":"4.4.e164.mimi.arpa","type":"DNSKEY","transport":"udp","rcode":"NOERROR","cached":true}
 * {"t":"2026-01-01T12:00:01.250Z","name":"8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa","type":"MAP","transport":"api","status":"found"}
 * ```
 *
 * The format is stable: `t` (ISO 8601, UTC, milliseconds), `name` (canonical: lowercase, no
 * trailing dot; `.` for the root), `type` (the mnemonic, `TYPE<n>` for a type without one),
 * `transport` (`udp`, `tcp`, `doh`, `api` for a JSON API lookup, `ohttp` or `odoh` for
 * a request through a resolver's gateway), then `rcode` (DNS) or
 * `status` (`none`, `empty`, `found`, `error`: API), `cached: true` for an answer from the answer
 * cache, and `peer` (the client's IP address) only when the log is configured with `peer: true`.
 * Keys come in that order; new keys may be added after them, never renamed.
 *
 * Answering never waits for the log: a line goes into a buffer of at most `bufferBytes`
 * ({@link QUERY_LOG_BUFFER_OCTETS}) and is written with the others in one asynchronous append.
 * A line that does not fit (the disk is slower than the queries) is dropped and counted; a
 * write that fails (a full disk, a path that cannot be opened) drops the lines it held, counts
 * them, logs the failure once, and the next write is tried {@link QUERY_LOG_RETRY_MS} later, so
 * a broken log never stops or crashes the server. A line cut short by a full disk is ended with
 * a newline before the next one is written, so every other line still reads as JSON. The file
 * is created with mode 0600: it records what clients asked.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { silentLogger, type Logger } from './log.js';
import type { MetricsRegistry } from './metrics.js';

/** Default most octets of lines waiting for the disk (1 MiB, about 8,000 lines); more are dropped. */
export const QUERY_LOG_BUFFER_OCTETS = 2 ** 20;

/** Time after a failed open or write before the log tries again. */
export const QUERY_LOG_RETRY_MS = 1000;

/**
 * Where a logged query came in: a DNS listener, the JSON API, or a resolver's gateway on the
 * oblivious path (`ohttp`: inside Oblivious HTTP, RFC 9458; `odoh`: Oblivious DoH, RFC 9230).
 */
export type QueryLogTransport = 'udp' | 'tcp' | 'doh' | 'api' | 'ohttp' | 'odoh';

/** One query as the log records it. */
export interface QueryLogEntry {
  /** The query name, canonical. */
  readonly name: string;
  readonly type: string;
  readonly transport: QueryLogTransport;
  /** The response code of a DNS answer. */
  readonly rcode?: string;
  /** The discovery status of an API lookup. */
  readonly status?: string;
  /** Answered from the answer cache. */
  readonly cached?: boolean;
  /** The client's address: written only when the log is configured with `peer`. */
  readonly peer?: string;
}

/** A query log's settings (the `queryLog` section of a server's config). */
export interface QueryLogSettings extends LineLogSettings {
  /** Write the client's address in each line; default false. */
  readonly peer?: boolean;
}

/** What a query log uses besides its settings. */
export interface QueryLogComponents {
  /** Milliseconds since the epoch, for `t`; default `Date.now`. */
  readonly now?: () => number;
  /** Where failures to write are reported; default silent. */
  readonly log?: Logger;
  /** Wait after a failure; default {@link QUERY_LOG_RETRY_MS} (tests shorten it). */
  readonly retryMs?: number;
}

/** Lines written and dropped since the log was opened. */
export interface QueryLogStats {
  readonly written: number;
  readonly dropped: number;
}

/**
 * An open log of JSON lines, whatever their format: the buffered writer of the module comment
 * (the query log, and the relay's request log, share it).
 */
export interface LineLog<E> {
  readonly path: string;
  /** Buffers one line; never blocks, never throws. */
  record(entry: E): void;
  /** Counts since the log was opened. */
  stats(): QueryLogStats;
  /** Resolves once every line recorded before the call is written or dropped. */
  flush(): Promise<void>;
  /** Flushes, then closes the file; lines recorded afterwards are dropped. */
  close(): Promise<void>;
}

/** Where a {@link LineLog} goes, and how much may wait for the disk. */
export interface LineLogSettings {
  /** The file lines are appended to (created when missing). */
  readonly path: string;
  /** Octets of lines held while the disk is busy; default {@link QUERY_LOG_BUFFER_OCTETS}. */
  readonly bufferBytes?: number;
}

/** An open query log; see the module comment. */
export interface QueryLog extends LineLog<QueryLogEntry> {
  /** Whether lines carry the client's address. */
  readonly peer: boolean;
}

/** The line of one entry, with its newline. Exported for tests of the format. */
export function queryLogLine(entry: QueryLogEntry, time: number, peer: boolean): string {
  const line: Record<string, unknown> = {
    t: new Date(time).toISOString(),
    name: entry.name,
    type: entry.type,
    transport: entry.transport,
  };
  if (entry.rcode !== undefined) line['rcode'] = entry.rcode;
  if (entry.status !== undefined) line['status'] = entry.status;
  if (entry.cached === true) line['cached'] = true;
  if (peer && entry.peer !== undefined) line['peer'] = entry.peer;
  return `${JSON.stringify(line)}\n`;
}

const NEWLINE = 0x0a;

/**
 * Opens the query log at `settings.path`: the file is opened (created) at once, in the
 * background; a failure is reported on `components.log` and retried with the next lines.
 */
export function openQueryLog(
  settings: QueryLogSettings,
  components: QueryLogComponents = {},
): QueryLog {
  const peer = settings.peer === true;
  const lines = openLineLog<QueryLogEntry>(
    settings,
    (entry, time) => queryLogLine(entry, time, peer),
    components,
  );
  return { ...lines, peer };
}

/**
 * Opens a log of one line per entry at `settings.path`, each line `format(entry, time)` (JSON
 * ending in a newline), written as the module comment says: buffered, never waited for, the
 * file (mode 0600) opened at once in the background, a failure reported on `components.log`
 * and retried with the next lines.
 */
export function openLineLog<E>(
  settings: LineLogSettings,
  format: (entry: E, time: number) => string,
  components: QueryLogComponents = {},
): LineLog<E> {
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
  /** The next write starts with a newline: the file ends inside a line. */
  let endLine = false;
  let failing = false;
  let closed = false;
  let closing: Promise<void> | undefined;
  /** The write in progress, or the wait before the next try. */
  let busy: Promise<void> | undefined;
  let scheduled = false;
  /** Ends the wait after a failure early (on close). */
  let wake: (() => void) | undefined;

  const openFile = async (): Promise<FileHandle> => {
    // `a+`: appends, and the last octet can be read to see whether a line was cut short.
    const handle = await open(path, 'a+', 0o600);
    try {
      const { size } = await handle.stat();
      if (size > 0) {
        const last = Buffer.alloc(1);
        await handle.read(last, 0, 1, size - 1);
        endLine = last[0] !== NEWLINE;
      }
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
    return handle;
  };

  const write = async (): Promise<void> => {
    const batch = pending;
    pending = [];
    pendingOctets = 0;
    try {
      file ??= await openFile();
      if (batch.length > 0) {
        await file.write(`${endLine ? '\n' : ''}${batch.join('')}`);
        endLine = false;
        written += batch.length;
      }
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
      // The next try opens the file again; a write cut short by a full disk may have left part
      // of a line, which the reopening finds.
      const broken = file;
      file = undefined;
      await broken?.close().catch(() => undefined);
      if (!closed) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, retryMs);
          timer.unref();
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    }
  };

  /** Runs writes one after another while lines are pending. */
  const drain = async (): Promise<void> => {
    do await write();
    while (pending.length > 0 && !closed);
  };

  const start = (): void => {
    scheduled = false;
    if (busy !== undefined || closed) return;
    busy = drain().finally(() => {
      busy = undefined;
      if (pending.length > 0 && !closed) schedule();
    });
  };

  const schedule = (): void => {
    if (scheduled || busy !== undefined) return;
    scheduled = true;
    // Lines recorded in the same event turn go out in one write.
    setImmediate(start);
  };

  schedule();

  const flush = async (): Promise<void> => {
    // Each round writes what was pending when it started; lines recorded meanwhile are in the
    // next. Bounded: a round takes every pending line.
    while (!closed && (busy !== undefined || pending.length > 0 || scheduled)) {
      if (busy === undefined) start();
      await busy;
    }
    await closing;
  };

  const close = async (): Promise<void> => {
    // One last round for what is pending, without the wait of a failed try.
    wake?.();
    if (busy !== undefined) await busy;
    if (pending.length > 0) await write();
    await file?.close().catch(() => undefined);
    file = undefined;
  };

  return {
    path,
    record(entry) {
      if (closed) {
        dropped++;
        return;
      }
      const line = format(entry, now());
      if (pendingOctets + line.length > limit) {
        dropped++;
        return;
      }
      pending.push(line);
      pendingOctets += line.length;
      schedule();
    },
    stats: () => ({ written, dropped }),
    flush,
    close() {
      closed = true;
      closing ??= close();
      return closing;
    },
  };
}

/**
 * Declares a server's query log metrics in its registry: `<pkg>_query_log_lines_total` (lines
 * written) and `<pkg>_query_log_dropped_lines_total` (lines lost to a full buffer or a failed
 * write), read from `source()` when scraped (zero while the server keeps no log).
 */
export function declareQueryLogMetrics(
  metrics: MetricsRegistry,
  source: () => Pick<QueryLog, 'stats'> | undefined,
): void {
  metrics.counter('query_log_lines_total', {
    help: 'Lines written to the query log',
    collect() {
      this.reset();
      this.inc(source()?.stats().written ?? 0);
    },
  });
  metrics.counter('query_log_dropped_lines_total', {
    help: 'Query log lines dropped: the buffer was full or the write failed',
    collect() {
      this.reset();
      this.inc(source()?.stats().dropped ?? 0);
    },
  });
}
