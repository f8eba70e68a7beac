/**
 * DNS over TCP (RFC 1035 §4.2.2, RFC 7766): each message is preceded by its length in two
 * octets; a connection carries many queries. Queries are answered concurrently, each as soon as
 * it is ready, so answers may come out of order (RFC 7766 §6.2.1.1); clients match them by id.
 *
 * Limits, each a named default below: queries in flight per connection (reading stops at the
 * limit and resumes when one is answered), unsent response octets per connection (reading stops
 * when a client does not read its answers), connections at once and per client
 * (`connection-limits.ts`: a client past its share is closed at accept; a full listener evicts
 * the oldest idle connection of the client holding the most), and two deadlines that bytes
 * cannot reset:
 *
 * - idle: a connection with no query in flight is closed `idleTimeoutMs` after its last query
 *   was answered (or after it was accepted), also when it has sent part of a message since
 *   (RFC 7766 §6.2.3);
 * - message: a message must arrive whole within `messageTimeoutMs` of its first octet (as
 *   Knot DNS's `tcp-io-timeout`), so a client that sends a query one octet at a time is closed
 *   even while it has other queries in flight. The clock does not run while the server itself
 *   has stopped reading (in-flight or unsent-octets limit).
 *
 * With limits, each query first passes the gate (`respond.ts`); TCP answers are not subject
 * to Response Rate Limiting (as in BIND: a connection proves the client's address).
 *
 * Framing: a length below the 12-octet header cannot frame a DNS message — the peer does not
 * speak DNS over TCP, or the framing is lost — so the connection is closed. A framed message of
 * 12 octets or more that does not decode gets FORMERR and the connection stays open, since its
 * length still delimits it from the next one.
 */
import { createServer, type Server, type Socket } from 'node:net';
import {
  CONNECTIONS_PER_CLIENT_SHARE,
  connectionLimitsFor,
  createConnectionGate,
  listenGuarded,
  type ConnectionStats,
  type TrackedConnection,
} from './connection-limits.js';
import type { Logger } from './log.js';
import { HEADER_OCTETS } from '../protocol/wire.js';
import { answerQueryOrTransfer, type QueryHandler, type TransferHandler } from './respond.js';
import type { AnswerCache } from './answer-cache.js';
import type { QueryLog } from './query-log.js';
import type { ListenerLimits } from './query-gate.js';

/** Default idle timeout: RFC 7766 §6.2.3 suggests some seconds; 10 s as Unbound and Knot use. */
export const DEFAULT_TCP_IDLE_TIMEOUT_MS = 10_000;
/**
 * Default time for one message to arrive whole from its first octet. Knot DNS allows 500 ms
 * (`tcp-io-timeout`); 2 s leaves room for a slow mobile link, and is still far below the idle
 * timeout that a drip-feeding client would otherwise hold a connection for.
 */
export const DEFAULT_TCP_MESSAGE_TIMEOUT_MS = 2_000;
/** Default most connections at once; past it, the oldest idle connection is evicted or the new one refused. */
export const DEFAULT_TCP_MAX_CONNECTIONS = 256;
/** Default most connections at once of one client (IPv4 address, IPv6 /64): an eighth of the cap. */
export const DEFAULT_TCP_CONNECTIONS_PER_CLIENT =
  DEFAULT_TCP_MAX_CONNECTIONS / CONNECTIONS_PER_CLIENT_SHARE;
/** Default most queries in flight per connection (RFC 7766 §6.2.1.1 pipelining). */
export const DEFAULT_TCP_MAX_IN_FLIGHT = 16;
/**
 * Unsent response octets per connection above which the server stops reading from it: a client
 * that sends queries without reading the answers cannot make the server buffer without bound.
 */
export const TCP_MAX_UNSENT_OCTETS = 256 * 1024;

const LENGTH_OCTETS = 2;

/** The TCP listener's configuration. */
export interface TcpListenerConfig {
  /** Port to bind; 0 picks a free one. */
  port: number;
  /**
   * A connection with no query in flight is closed this long after its last answer (or its
   * accept), also when it has sent part of a message since; default
   * {@link DEFAULT_TCP_IDLE_TIMEOUT_MS}.
   */
  idleTimeoutMs?: number;
  /** Time for one message to arrive whole; default {@link DEFAULT_TCP_MESSAGE_TIMEOUT_MS}. */
  messageTimeoutMs?: number;
  /** Default {@link DEFAULT_TCP_MAX_CONNECTIONS}. */
  maxConnections?: number;
  /**
   * Default {@link DEFAULT_TCP_CONNECTIONS_PER_CLIENT}, or `maxConnections` when that is
   * smaller.
   */
  connectionsPerClient?: number;
  /** Default {@link DEFAULT_TCP_MAX_IN_FLIGHT}. */
  maxInFlightPerConnection?: number;
  /**
   * Answers AXFR and IXFR with a stream of messages (RFC 5936, RFC 1995; `respond.ts`); without
   * it they go to the query handler like any question.
   */
  transfer?: TransferHandler;
  /**
   * Listens without `exclusive`: in a `node:cluster` worker the primary then holds the
   * listening socket and hands each connection to one of the workers listening on the same
   * address and port. Default false.
   */
  shared?: boolean;
}

/** A bound TCP listener. */
export interface TcpListener {
  readonly host: string;
  readonly port: number;
  /** Connections open now, refused and closed by reason since the start. */
  connectionStats(): ConnectionStats;
  /** Stops listening and closes every connection; resolves when all are closed. */
  close(): Promise<void>;
}

interface ConnectionSettings {
  readonly messageTimeoutMs: number;
  readonly maxInFlight: number;
  readonly transfer: TransferHandler | undefined;
}

/** Listens on `host` and answers the queries of each connection through `handler`. */
export async function startTcpListener(
  host: string,
  config: TcpListenerConfig,
  handler: QueryHandler,
  log: Logger,
  cache?: AnswerCache,
  limits: ListenerLimits = {},
  queryLog?: QueryLog,
): Promise<TcpListener> {
  const settings: ConnectionSettings = {
    messageTimeoutMs: config.messageTimeoutMs ?? DEFAULT_TCP_MESSAGE_TIMEOUT_MS,
    maxInFlight: config.maxInFlightPerConnection ?? DEFAULT_TCP_MAX_IN_FLIGHT,
    transfer: config.transfer,
  };
  const gate = createConnectionGate(
    connectionLimitsFor(config, {
      maxConnections: DEFAULT_TCP_MAX_CONNECTIONS,
      connectionsPerClient: DEFAULT_TCP_CONNECTIONS_PER_CLIENT,
      idleTimeoutMs: DEFAULT_TCP_IDLE_TIMEOUT_MS,
    }),
    { listener: 'tcp', log },
  );
  // allowHalfOpen: a client may shut down its sending side after its last query and still
  // expect the answers (RFC 7766 §6.2.1); the connection closes once they are written.
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    // Past its client's share, or with the listener full of busy connections: closed before a
    // single octet is read.
    const connection = gate.admit(socket);
    if (connection === undefined) return;
    log.debug('connection', { transport: 'tcp', remoteAddress: socket.remoteAddress });
    serveConnection(socket, connection, settings, handler, log, cache, limits, queryLog);
  });

  const listener = await listenGuarded(server, gate, {
    host,
    port: config.port,
    ...(config.shared === true ? { shared: true } : {}),
  });
  server.on('error', (error) => log.error('tcp-server-error', { error }));
  log.info('listening', { transport: 'tcp', host, port: listener.port });
  return { host, ...listener };
}

/** Reads length-prefixed queries from one connection and writes each answer when it is ready. */
function serveConnection(
  socket: Socket,
  connection: TrackedConnection,
  settings: ConnectionSettings,
  handler: QueryHandler,
  log: Logger,
  cache: AnswerCache | undefined,
  limits: ListenerLimits,
  queryLog: QueryLog | undefined,
): void {
  const context = { transport: 'tcp', remoteAddress: socket.remoteAddress ?? '' } as const;
  let pending: Buffer = Buffer.alloc(0);
  let inFlight = 0;
  let ended = false;
  let messageTimer: NodeJS.Timeout | undefined;

  const close = (event: string): void => {
    log.debug(event, { transport: 'tcp', remoteAddress: context.remoteAddress });
    socket.destroy();
  };

  // The message deadline: armed at the first octet of a message, never pushed back by the
  // octets that follow, cleared when the message is whole.
  const armMessageTimer = (): void => {
    if (messageTimer !== undefined || socket.destroyed) return;
    messageTimer = setTimeout(() => {
      messageTimer = undefined;
      connection.close('message_timeout');
    }, settings.messageTimeoutMs);
  };
  const disarmMessageTimer = (): void => {
    if (messageTimer === undefined) return;
    clearTimeout(messageTimer);
    messageTimer = undefined;
  };

  const send = (wire: Uint8Array): void => {
    const frame = Buffer.allocUnsafe(LENGTH_OCTETS + wire.length);
    frame.writeUInt16BE(wire.length, 0);
    frame.set(wire, LENGTH_OCTETS);
    socket.write(frame);
  };

  // A transfer's messages, each written once the client has read enough of the ones before
  // (at most TCP_MAX_UNSENT_OCTETS unsent): a zone is never buffered whole. A client that stops
  // reading for `messageTimeoutMs` is closed, which ends the transfer (RFC 5936 §4.1.1 leaves
  // the handling of stalled connections to the server).
  const stream = async (messages: AsyncIterable<Uint8Array>): Promise<void> => {
    try {
      for await (const wire of messages) {
        if (socket.destroyed) break;
        send(wire);
        if (socket.writableLength > TCP_MAX_UNSENT_OCTETS && !(await drained())) {
          connection.close('message_timeout');
          break;
        }
        // One message per turn of the event loop: a long transfer into a socket whose kernel
        // buffer still takes it must not hold up every other connection of the server.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } catch {
      // Already logged where it failed; the client sees the connection close mid-transfer.
      socket.destroy();
    }
  };
  const drained = (): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        socket.off('drain', onDrain);
        socket.off('close', onClose);
        resolve(ok);
      };
      const onDrain = (): void => done(true);
      const onClose = (): void => done(false);
      const timer = setTimeout(() => done(false), settings.messageTimeoutMs);
      socket.on('drain', onDrain);
      socket.on('close', onClose);
    });

  const answer = async (message: Buffer): Promise<void> => {
    const result = await answerQueryOrTransfer(
      message,
      {
        handler,
        context,
        log,
        ...(cache === undefined ? {} : { cache }),
        queryLog,
        gate: limits.gate,
        tsig: limits.tsig,
      },
      settings.transfer,
    );
    if (result.kind === 'drop' || socket.destroyed) return;
    if (result.kind === 'stream') return stream(result.messages);
    send(result.wire);
  };

  // Takes complete messages off `pending` while the in-flight limit allows, then decides whether
  // to keep reading and whether a message deadline runs. The connection is busy (for the idle
  // timeout and for eviction, `connection-limits.ts`) while a query is in flight.
  const pump = (): void => {
    if (socket.destroyed) return;
    while (inFlight < settings.maxInFlight && pending.length >= LENGTH_OCTETS) {
      const length = pending.readUInt16BE(0);
      if (length < HEADER_OCTETS) return close('framing error');
      if (pending.length < LENGTH_OCTETS + length) break;
      const message = pending.subarray(LENGTH_OCTETS, LENGTH_OCTETS + length);
      pending = pending.subarray(LENGTH_OCTETS + length);
      disarmMessageTimer();
      inFlight++;
      connection.begin();
      answer(message)
        .catch((error: unknown) => log.error('tcp-answer-failed', { error }))
        .finally(() => {
          inFlight--;
          connection.end();
          pump();
        });
    }
    const blocked =
      inFlight >= settings.maxInFlight || socket.writableLength > TCP_MAX_UNSENT_OCTETS;
    if (blocked) socket.pause();
    else if (!ended) socket.resume();
    // Part of a message is in: its deadline runs while the server reads. While the server has
    // stopped reading (blocked), it is the server that holds the message up, not the client.
    if (pending.length > 0 && !blocked && !ended) armMessageTimer();
    else disarmMessageTimer();
    if (inFlight === 0 && ended) socket.end();
  };

  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    pump();
  });
  socket.on('drain', pump);
  socket.on('end', () => {
    ended = true;
    pump();
  });
  socket.on('error', (error) => log.debug('connection-error', { transport: 'tcp', error }));
  socket.on('close', disarmMessageTimer);
}
