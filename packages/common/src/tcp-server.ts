/**
 * DNS over TCP (RFC 1035 §4.2.2, RFC 7766): each message is preceded by its length in two
 * octets; a connection carries many queries. Queries are answered concurrently, each as soon as
 * it is ready, so answers may come out of order (RFC 7766 §6.2.1.1); clients match them by id.
 *
 * Limits, each a named default below: queries in flight per connection (reading stops at the
 * limit and resumes when one is answered), unsent response octets per connection (reading stops
 * when a client does not read its answers), an idle timeout, and connections at once.
 *
 * Framing: a length below the 12-octet header cannot frame a DNS message — the peer does not
 * speak DNS over TCP, or the framing is lost — so the connection is closed. A framed message of
 * 12 octets or more that does not decode gets FORMERR and the connection stays open, since its
 * length still delimits it from the next one.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from './log.js';
import { HEADER_OCTETS } from './wire.js';
import { answerQuery, type QueryHandler } from './respond.js';
import type { ResponseCache } from './response-cache.js';

/** Default idle timeout: RFC 7766 §6.2.3 suggests some seconds; 10 s as Unbound and Knot use. */
export const DEFAULT_TCP_IDLE_TIMEOUT_MS = 10_000;
/** Default most connections at once; beyond, new connections are closed on accept. */
export const DEFAULT_TCP_MAX_CONNECTIONS = 256;
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
   * A connection with no query in flight and no complete message received for this long is
   * closed, also when it has sent part of a message; default {@link DEFAULT_TCP_IDLE_TIMEOUT_MS}.
   */
  idleTimeoutMs?: number;
  /** Default {@link DEFAULT_TCP_MAX_CONNECTIONS}. */
  maxConnections?: number;
  /** Default {@link DEFAULT_TCP_MAX_IN_FLIGHT}. */
  maxInFlightPerConnection?: number;
}

/** A bound TCP listener. */
export interface TcpListener {
  readonly host: string;
  readonly port: number;
  /** Stops listening and closes every connection; resolves when all are closed. */
  close(): Promise<void>;
}

interface ConnectionLimits {
  readonly idleTimeoutMs: number;
  readonly maxInFlight: number;
}

/** Listens on `host` and answers the queries of each connection through `handler`. */
export async function startTcpListener(
  host: string,
  config: TcpListenerConfig,
  handler: QueryHandler,
  log: Logger,
  cache?: ResponseCache,
): Promise<TcpListener> {
  const limits: ConnectionLimits = {
    idleTimeoutMs: config.idleTimeoutMs ?? DEFAULT_TCP_IDLE_TIMEOUT_MS,
    maxInFlight: config.maxInFlightPerConnection ?? DEFAULT_TCP_MAX_IN_FLIGHT,
  };
  const sockets = new Set<Socket>();
  // allowHalfOpen: a client may shut down its sending side after its last query and still
  // expect the answers (RFC 7766 §6.2.1); the connection closes once they are written.
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    log.debug('connection', { transport: 'tcp', remoteAddress: socket.remoteAddress });
    serveConnection(socket, limits, handler, log, cache);
  });
  server.maxConnections = config.maxConnections ?? DEFAULT_TCP_MAX_CONNECTIONS;
  server.on('drop', (data) => {
    log.warn('connection refused: too many connections', {
      transport: 'tcp',
      remoteAddress: data?.remoteAddress,
      maxConnections: server.maxConnections,
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: config.port, host, exclusive: true }, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => log.error('tcp server error', { error }));

  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  log.info('listening', { transport: 'tcp', host, port });
  let closing: Promise<void> | undefined;
  return {
    host,
    port,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

/** Reads length-prefixed queries from one connection and writes each answer when it is ready. */
function serveConnection(
  socket: Socket,
  limits: ConnectionLimits,
  handler: QueryHandler,
  log: Logger,
  cache: ResponseCache | undefined,
): void {
  const context = { transport: 'tcp', remoteAddress: socket.remoteAddress ?? '' } as const;
  let pending: Buffer = Buffer.alloc(0);
  let inFlight = 0;
  let ended = false;
  let idleTimer: NodeJS.Timeout | undefined;

  const close = (event: string): void => {
    log.debug(event, { transport: 'tcp', remoteAddress: context.remoteAddress });
    socket.destroy();
  };

  const armIdleTimer = (): void => {
    if (idleTimer !== undefined || socket.destroyed) return;
    idleTimer = setTimeout(() => close('idle timeout'), limits.idleTimeoutMs);
  };
  const disarmIdleTimer = (): void => {
    if (idleTimer === undefined) return;
    clearTimeout(idleTimer);
    idleTimer = undefined;
  };

  const answer = async (message: Buffer): Promise<void> => {
    const result = await answerQuery(message, {
      handler,
      context,
      log,
      ...(cache === undefined ? {} : { cache }),
    });
    if (result.kind === 'drop' || socket.destroyed) return;
    const frame = Buffer.allocUnsafe(LENGTH_OCTETS + result.wire.length);
    frame.writeUInt16BE(result.wire.length, 0);
    frame.set(result.wire, LENGTH_OCTETS);
    socket.write(frame);
  };

  // Takes complete messages off `pending` while the in-flight limit allows, then decides whether
  // to keep reading and whether the connection is idle.
  const pump = (): void => {
    if (socket.destroyed) return;
    while (inFlight < limits.maxInFlight && pending.length >= LENGTH_OCTETS) {
      const length = pending.readUInt16BE(0);
      if (length < HEADER_OCTETS) return close('framing error');
      if (pending.length < LENGTH_OCTETS + length) break;
      const message = pending.subarray(LENGTH_OCTETS, LENGTH_OCTETS + length);
      pending = pending.subarray(LENGTH_OCTETS + length);
      inFlight++;
      disarmIdleTimer();
      answer(message)
        .catch((error: unknown) => log.error('tcp answer failed', { error }))
        .finally(() => {
          inFlight--;
          pump();
        });
    }
    const blocked = inFlight >= limits.maxInFlight || socket.writableLength > TCP_MAX_UNSENT_OCTETS;
    if (blocked) socket.pause();
    else if (!ended) socket.resume();
    if (inFlight > 0) return;
    if (ended) {
      socket.end();
      return;
    }
    // Idle: nothing in flight. Partial bytes do not count as activity, so a client that stops
    // in the middle of a message is closed as well (RFC 7766 §6.2.3).
    armIdleTimer();
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
  socket.on('error', (error) => log.debug('connection error', { transport: 'tcp', error }));
  socket.on('close', disarmIdleTimer);
  armIdleTimer();
}
