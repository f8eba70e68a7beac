/**
 * Sending one DNS query and receiving its response, over UDP, TCP or DoH: what the resolver, the
 * CLI and the tests use to talk to servers. A response is accepted only when it answers the
 * query sent: same id, QR set, same question (RFC 5452 §9.1; names compared without case), so
 * a response with no question never answers a query of one question.
 * Failures are {@link TransportError}s with a stable `code`.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect as connectTcp, isIP, isIPv6, type Socket } from 'node:net';
import {
  checkServerIdentity,
  connect as connectTls,
  createSecureContext,
  type PeerCertificate,
  type SecureContext,
} from 'node:tls';
import { Agent, type buildConnector, type Dispatcher } from 'undici';
import { MimiError } from '../protocol/errors.js';
import { namesEqual } from '../protocol/names.js';
import type { Message, Question } from '../protocol/records.js';
import { EDNS_UDP_PAYLOAD_OCTETS } from './respond.js';
import { QUERY_PADDING_BLOCK_OCTETS, padMessage } from '../protocol/padding.js';
import {
  HEADER_OCTETS,
  MAX_MESSAGE_OCTETS,
  decodeMessage,
  encodeMessage,
} from '../protocol/wire.js';

/** The media type of DNS messages over HTTP (RFC 8484 §6). */
export const DNS_MESSAGE_MEDIA_TYPE = 'application/dns-message';
/** Default time for one query, from sending it to having its response. */
export const DEFAULT_CLIENT_TIMEOUT_MS = 5000;
/** Default most connections per DoH origin (HTTP/2 multiplexes many queries on each). */
export const DEFAULT_DOH_CLIENT_CONNECTIONS = 8;
/** Most queries in flight on one DoH connection: HTTP/2's usual SETTINGS_MAX_CONCURRENT_STREAMS. */
export const DOH_CLIENT_STREAMS_PER_CONNECTION = 100;
/** Most lanes (connection pools per origin, {@link DohClientOptions.lanes}) a DoH client keeps. */
export const MAX_DOH_CLIENT_LANES = 16;
/**
 * Times a DoH query is sent again, on a new connection, when its connection turns out to be
 * dead (reset, or closed by the server: a server restarted while the client kept connections to
 * it, or one that closed an idle connection as the query went out). A DNS query is idempotent
 * (RFC 8484 §4.1), so repeating it is safe; the query's one deadline covers every attempt.
 */
export const DOH_RETRIES_ON_DEAD_CONNECTION = 1;
/**
 * Longest a DoH connection may take to be made (TCP and the TLS handshake) before it is given
 * up, as undici's own connector does by default: a query gives up sooner by its own timeout,
 * but the half-made connection would otherwise stay until the server dropped it.
 */
export const DOH_CONNECT_TIMEOUT_MS = 10_000;
/** Delay before TCP keep-alive probes start on an idle DoH connection (undici's default). */
const DOH_KEEPALIVE_INITIAL_DELAY_MS = 60_000;
/**
 * Default most servers (name, address and port) whose TLS sessions a DoH client keeps for
 * resumption ({@link DohClientOptions.tlsSessionServers}); the least recently used go first.
 */
export const DEFAULT_DOH_TLS_SESSION_SERVERS = 256;
/**
 * Most TLS session tickets kept per server: a TLS 1.3 server sends two after each handshake
 * (OpenSSL's default), and each is used once (RFC 8446 §C.4), so a few cover the connections a
 * client opens to one server at once.
 */
export const DOH_TLS_TICKETS_PER_SERVER = 4;

/**
 * Errors of a connection that died under a request: undici's (`UND_ERR_SOCKET` for HTTP/1.1,
 * `UND_ERR_INFO` for an HTTP/2 session closed or gone away under its stream) and the socket's.
 */
const DEAD_CONNECTION_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_SOCKET',
  'UND_ERR_INFO',
  'ECONNRESET',
  'EPIPE',
]);

function deadConnection(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && DEAD_CONNECTION_CODES.has(code);
}

const LENGTH_OCTETS = 2;
/** How much of an HTTP error body goes into the error message. */
const HTTP_ERROR_EXCERPT_OCTETS = 200;

/** Every code a {@link TransportError} can carry. */
export const TRANSPORT_ERROR_CODES = Object.freeze([
  /** No matching response within the timeout. */
  'ERR_TRANSPORT_TIMEOUT',
  /** The connection could not be made, failed, or closed before the response. */
  'ERR_TRANSPORT_CONNECTION',
  /** A DoH server answered with an HTTP status other than 200 (`status` holds it). */
  'ERR_TRANSPORT_HTTP_STATUS',
  /** A response that is not a DNS message answering the query, or of the wrong media type. */
  'ERR_TRANSPORT_BAD_RESPONSE',
  /** A server configuration value out of range. */
  'ERR_TRANSPORT_CONFIG',
  /** A server listener could not bind its address. */
  'ERR_TRANSPORT_LISTEN',
  /**
   * A TLS server's certificate was refused: not valid for the name asked for (nor, where that is
   * accepted, for the address connected to), not from a trusted CA, expired or not yet valid.
   */
  'ERR_TRANSPORT_CERTIFICATE',
] as const);

/** A code from {@link TRANSPORT_ERROR_CODES}. */
export type TransportErrorCode = (typeof TRANSPORT_ERROR_CODES)[number];

/** A fault of a DNS transport, client or server side. */
export class TransportError extends MimiError<TransportErrorCode> {
  /** The HTTP status, for `ERR_TRANSPORT_HTTP_STATUS`. */
  readonly status: number | undefined;

  constructor(
    code: TransportErrorCode,
    message: string,
    options?: { cause?: unknown; status?: number },
  ) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = options?.status;
  }
}

/** Options of every query function. */
export interface ClientOptions {
  /** Default {@link DEFAULT_CLIENT_TIMEOUT_MS}; over UDP with a TCP retry, for both together. */
  timeoutMs?: number;
}

/** Options of {@link queryUdp}. */
export interface UdpQueryOptions extends ClientOptions {
  /** Retry over TCP when the UDP response is truncated (TC=1); default true. */
  tcpFallback?: boolean;
}

/** Options of {@link DohClient.query}. */
export interface DohQueryOptions extends ClientOptions {
  /** Default `POST`. */
  method?: 'GET' | 'POST';
  /**
   * The server's host name: sent as SNI (RFC 6066 §3) and the name its certificate must be
   * valid for (RFC 6125), while the connection goes to the URL's host, typically the glue
   * address of a nameserver called by name (RFC 8484 §10: the DoH server is authenticated as
   * TLS authenticates any HTTPS server). Absent, or an IP address: the URL's host is both.
   * A connection is made for one name: queries to one address under two names do not share it.
   */
  serverName?: string;
}

/** A DNS server's address for UDP and TCP. */
export interface ServerAddress {
  host: string;
  port: number;
}

/**
 * Whether `response` answers `query` (RFC 5452 §9.1): QR set, the same id, and the same
 * question section. A response without a question does not answer a query of one question,
 * whatever its rcode: a REFUSED or FORMERR with the right id and no question is what an
 * off-path attacker who guessed the id would send to make a lookup fail, and it says nothing
 * about the question asked. Over UDP it is ignored (the real answer may still come); over TCP
 * and DoH it fails the query as a bad response, so the caller tries another server. The one
 * exception is a query of more or fewer than one question (only diagnostics send one), which a
 * server refuses with FORMERR and no question (RFC 9619).
 */
function answers(query: Message, response: Message): boolean {
  if (!response.flags.qr || response.id !== query.id) return false;
  if (response.questions.length === 0 && query.questions.length !== 1) {
    return response.rcode === 'FORMERR';
  }
  if (response.questions.length !== query.questions.length) return false;
  return query.questions.every((q, i) => {
    const r = response.questions[i] as Question;
    return namesEqual(q.name, r.name) && q.type === r.type && q.class === r.class;
  });
}

function timeoutError(timeoutMs: number, what: string): TransportError {
  return new TransportError('ERR_TRANSPORT_TIMEOUT', `no response ${what} within ${timeoutMs} ms`);
}

/**
 * Sends `query` over UDP and resolves with the first datagram that answers it; datagrams that
 * do not decode or answer another query are ignored (RFC 5452 §9.1). A truncated response is
 * retried over TCP within what is left of the timeout, unless `tcpFallback` is false.
 */
export async function queryUdp(
  server: ServerAddress,
  query: Message,
  options: UdpQueryOptions = {},
): Promise<Message> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS;
  const started = performance.now();
  const wire = encodeMessage(query);
  const response = await new Promise<Message>((resolve, reject) => {
    const socket = createSocket(isIPv6(server.host) ? 'udp6' : 'udp4');
    let settled = false;
    const finish = (result: Message | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(
      () => finish(timeoutError(timeoutMs, `from ${server.host}:${server.port} over UDP`)),
      timeoutMs,
    );
    socket.on('message', (datagram) => {
      let decoded: Message;
      try {
        decoded = decodeMessage(datagram);
      } catch {
        return;
      }
      if (answers(query, decoded)) finish(decoded);
    });
    socket.on('error', (error) =>
      finish(
        new TransportError(
          'ERR_TRANSPORT_CONNECTION',
          `UDP query to ${server.host}:${server.port} failed: ${error.message}`,
          { cause: error },
        ),
      ),
    );
    // A connected socket only receives datagrams from the server's address and port.
    socket.connect(server.port, server.host, () => {
      if (!settled) socket.send(wire);
    });
  });
  if (!response.flags.tc || options.tcpFallback === false) return response;
  const left = Math.max(1, Math.round(timeoutMs - (performance.now() - started)));
  return queryTcp(server, query, { timeoutMs: left });
}

/**
 * Opens a TCP connection to `server` and, once it is up, sends `wire` as one length-prefixed
 * message (RFC 1035 §4.2.2, RFC 7766 §8). What comes back is the caller's to read, with a
 * {@link TcpMessageReader}; the caller also destroys the socket.
 */
export function connectAndSend(server: ServerAddress, wire: Uint8Array): Socket {
  const socket = connectTcp({ host: server.host, port: server.port, noDelay: true });
  socket.on('connect', () => {
    const frame = Buffer.allocUnsafe(LENGTH_OCTETS + wire.length);
    frame.writeUInt16BE(wire.length, 0);
    frame.set(wire, LENGTH_OCTETS);
    socket.write(frame);
  });
  return socket;
}

/**
 * Cuts the octets of a TCP stream into its length-prefixed messages (RFC 1035 §4.2.2), however
 * the stream splits them into chunks.
 */
export class TcpMessageReader {
  #pending: Buffer = Buffer.alloc(0);

  /** Adds the next chunk received. */
  push(chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
  }

  /**
   * The next whole message, undefined while it has not all arrived, or, as soon as its length
   * field is read, that length when it is too short for a DNS header: the stream is then not
   * one of DNS messages, and the caller stops reading it.
   */
  next(): Uint8Array | number | undefined {
    if (this.#pending.length < LENGTH_OCTETS) return undefined;
    const length = this.#pending.readUInt16BE(0);
    if (length < HEADER_OCTETS) return length;
    if (this.#pending.length < LENGTH_OCTETS + length) return undefined;
    const bytes = this.#pending.subarray(LENGTH_OCTETS, LENGTH_OCTETS + length);
    this.#pending = this.#pending.subarray(LENGTH_OCTETS + length);
    return bytes;
  }
}

/**
 * Sends `query` over a new TCP connection (RFC 7766, length-prefixed) and resolves with the
 * response. A response that does not decode or does not answer the query fails with
 * `ERR_TRANSPORT_BAD_RESPONSE`: on TCP it cannot be a stray datagram.
 */
export function queryTcp(
  server: ServerAddress,
  query: Message,
  options: ClientOptions = {},
): Promise<Message> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS;
  const wire = encodeMessage(query);
  const where = `${server.host}:${server.port}`;
  return new Promise<Message>((resolve, reject) => {
    const socket = connectAndSend(server, wire);
    const reader = new TcpMessageReader();
    let settled = false;
    const finish = (result: Message | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(
      () => finish(timeoutError(timeoutMs, `from ${where} over TCP`)),
      timeoutMs,
    );
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      const bytes = reader.next();
      if (bytes === undefined) return;
      const bad = (why: string, cause?: unknown): TransportError =>
        new TransportError('ERR_TRANSPORT_BAD_RESPONSE', `TCP response from ${where} ${why}`, {
          cause,
        });
      if (typeof bytes === 'number') return finish(bad(`of ${bytes} octets`));
      let response: Message;
      try {
        response = decodeMessage(bytes);
      } catch (error) {
        return finish(bad('does not decode', error));
      }
      finish(answers(query, response) ? response : bad('does not answer the query'));
    });
    socket.on('error', (error) =>
      finish(
        new TransportError(
          'ERR_TRANSPORT_CONNECTION',
          `TCP query to ${where} failed: ${error.message}`,
          {
            cause: error,
          },
        ),
      ),
    );
    socket.on('close', () =>
      finish(
        new TransportError(
          'ERR_TRANSPORT_CONNECTION',
          `${where} closed the connection before the response`,
        ),
      ),
    );
  });
}

/** A DoH client with a pool of connections per server, reused across queries. */
export interface DohClient {
  /**
   * Sends `query` to the DoH endpoint `url` (RFC 8484: `https://host[:port]/path`, no URI
   * template) by POST or by GET with `?dns=`. Callers that want HTTP caches to share GET
   * responses send id 0 (RFC 8484 §4.1).
   */
  query(url: string, query: Message, options?: DohQueryOptions): Promise<Message>;
  /** Closes every connection; queries still running fail. */
  close(): Promise<void>;
}

/** Options of {@link createDohClient}. */
export interface DohClientOptions {
  /** Certificate authorities to trust instead of the system's, PEM. */
  ca?: string | Uint8Array | Array<string | Uint8Array>;
  /** Offer HTTP/2 by ALPN (else HTTP/1.1 only); default true. */
  allowH2?: boolean;
  /** Most connections per origin; default {@link DEFAULT_DOH_CLIENT_CONNECTIONS}. */
  connections?: number;
  /**
   * Lanes per origin, 1–{@link MAX_DOH_CLIENT_LANES}; default 1. Each lane is a connection pool
   * of its own (`connections` shared out among them), and each query takes a lane at random:
   * with HTTP/2 one connection would otherwise carry every query, in order, so the queries of
   * one batch (a contact sync) are spread over several connections instead.
   */
  lanes?: number;
  /**
   * With {@link DohQueryOptions.serverName}, a certificate that is not valid for that name is
   * still accepted when it is valid for the address connected to (certificates issued for a
   * nameserver's IP address, as networks set up before names were checked have); default false.
   */
  acceptAddressCertificates?: boolean;
  /**
   * Longest a connection may take to be made, TLS handshake included; default
   * {@link DOH_CONNECT_TIMEOUT_MS}.
   */
  connectTimeoutMs?: number;
  /**
   * Most servers whose TLS sessions are kept, so that a new connection to one resumes a session
   * (RFC 8446 §2.2) instead of a full handshake; 0 turns resumption off. Default
   * {@link DEFAULT_DOH_TLS_SESSION_SERVERS}.
   */
  tlsSessionServers?: number;
}

/**
 * The TLS session tickets of a DoH client, by server (name sent as SNI, address, port), each
 * given out once (RFC 8446 §C.4: a ticket sent again would let an observer link the two
 * connections), at most {@link DOH_TLS_TICKETS_PER_SERVER} per server and `maxServers` servers,
 * the least recently used dropped first.
 */
class TlsTickets {
  readonly #byServer = new Map<string, Buffer[]>();

  constructor(readonly maxServers: number) {}

  /** A ticket for `server`, taken out of the store; undefined when none is kept. */
  take(server: string): Buffer | undefined {
    const tickets = this.#byServer.get(server);
    const ticket = tickets?.pop();
    if (tickets !== undefined && tickets.length === 0) this.#byServer.delete(server);
    return ticket;
  }

  /** Keeps a ticket `server` sent. */
  keep(server: string, ticket: Buffer): void {
    if (this.maxServers <= 0) return;
    const tickets = this.#byServer.get(server) ?? [];
    // Moved to the end: the map's order is the order of last use.
    this.#byServer.delete(server);
    tickets.push(ticket);
    if (tickets.length > DOH_TLS_TICKETS_PER_SERVER) tickets.shift();
    this.#byServer.set(server, tickets);
    if (this.#byServer.size > this.maxServers) {
      const oldest = this.#byServer.keys().next().value;
      if (oldest !== undefined) this.#byServer.delete(oldest);
    }
  }
}

/**
 * The codes Node's TLS gives a refused certificate: OpenSSL's X.509 verification results
 * (`X509_verify_cert_error_string`, as `tls.TLSSocket.authorizationError` names them) and the
 * name check of `tls.checkServerIdentity`. A failure with one of them is a
 * `ERR_TRANSPORT_CERTIFICATE`, not a connection that could not be made.
 */
const CERTIFICATE_ERROR_CODES: ReadonlySet<string> = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

/**
 * Whether the peer's certificate is valid for `name` (a host name, or undefined for none) or,
 * with `acceptAddress` or without a name, for `address`: undefined when it is, else why not.
 */
function checkIdentity(
  name: string | undefined,
  address: string,
  certificate: PeerCertificate,
  acceptAddress: boolean,
): Error | undefined {
  if (name === undefined) return checkServerIdentity(address, certificate);
  const byName = checkServerIdentity(name, certificate);
  if (byName === undefined) return undefined;
  if (acceptAddress && checkServerIdentity(address, certificate) === undefined) return undefined;
  return byName;
}

/** `error` as a {@link TransportError}: `ERR_TRANSPORT_CERTIFICATE` for a refused certificate. */
function connectError(error: Error, name: string | undefined, where: string): TransportError {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && CERTIFICATE_ERROR_CODES.has(code)) {
    return new TransportError(
      'ERR_TRANSPORT_CERTIFICATE',
      `certificate of ${name ?? where} at ${where} refused: ${error.message} (${code})`,
      { cause: error },
    );
  }
  return new TransportError(
    'ERR_TRANSPORT_CONNECTION',
    `TLS connection to ${name === undefined ? where : `${name} at ${where}`} failed: ${error.message}`,
    { cause: error },
  );
}

/**
 * The connector of a DoH client's connections, in place of undici's: it connects to the URL's
 * host and verifies the certificate against the request's `servername` (sent as SNI), or the
 * host when there is none ({@link checkIdentity}), and fails with a {@link TransportError}
 * that says which. undici passes the `servername` of the request that opens the connection
 * and opens a new connection for a request with another.
 */
function dohConnector(
  secureContext: SecureContext | undefined,
  allowH2: boolean,
  acceptAddress: boolean,
  connectTimeoutMs: number,
  tickets: TlsTickets,
): buildConnector.connector {
  return (options, callback) => {
    const address = options.hostname;
    const port = Number(options.port === '' ? 443 : options.port);
    const given = options.servername ?? undefined;
    const name = given === undefined || given === '' || isIP(given) !== 0 ? undefined : given;
    const where = `${address.includes(':') ? `[${address}]` : address}:${port}`;
    // A session is resumed only with the server, and under the name, it was made with: the
    // certificate checked then (`checkIdentity`) is the one the session carries.
    const server = `${name ?? ''} ${where}`;
    const session = tickets.take(server);
    let done = false;
    const socket = connectTls({
      host: address,
      port,
      ...(name === undefined ? {} : { servername: name }),
      ...(secureContext === undefined ? {} : { secureContext }),
      ...(session === undefined ? {} : { session }),
      ALPNProtocols: allowH2 ? ['h2', 'http/1.1'] : ['http/1.1'],
      checkServerIdentity: (_host, certificate) =>
        checkIdentity(name, address, certificate, acceptAddress),
    });
    if (tickets.maxServers > 0)
      socket.on('session', (ticket: Buffer) => tickets.keep(server, ticket));
    const timer = setTimeout(
      () =>
        socket.destroy(
          new TransportError(
            'ERR_TRANSPORT_TIMEOUT',
            `no TLS connection to ${name ?? where} at ${where} within ${connectTimeoutMs} ms`,
          ),
        ),
      connectTimeoutMs,
    );
    socket.setNoDelay(true);
    socket.setKeepAlive(true, DOH_KEEPALIVE_INITIAL_DELAY_MS);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      if (done) return;
      done = true;
      callback(null, socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      if (done) return;
      done = true;
      callback(error instanceof TransportError ? error : connectError(error, name, where), null);
    });
  };
}

function pemBuffer(value: string | Uint8Array): string | Buffer {
  return typeof value === 'string' ? value : Buffer.from(value);
}

function mediaType(value: string | string[] | undefined): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  return first?.split(';')[0]?.trim().toLowerCase();
}

/** Headers of every DoH request, by method (RFC 8484 §4.1). */
const DOH_HEADERS = Object.freeze({
  GET: Object.freeze({ accept: DNS_MESSAGE_MEDIA_TYPE }),
  POST: Object.freeze({ accept: DNS_MESSAGE_MEDIA_TYPE, 'content-type': DNS_MESSAGE_MEDIA_TYPE }),
});

/** What came back for one DoH request. */
interface DohExchange {
  readonly status: number;
  readonly contentType: string | string[] | undefined;
  /** The body, or its first octets when `over`. */
  readonly body: Buffer;
  /** The body was longer than allowed; the rest was not read. */
  readonly over: boolean;
}

/** `pending`, or the signal's reason once it aborts first. */
function untilAborted<T>(pending: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error as Error);
      },
    );
  });
}

/**
 * One HTTP request through undici's `dispatch` with a handler of its own: a DoH response is a
 * few hundred octets, read whole, so the stream, promise and abort-signal wrapping of undici's
 * `request` (most of the client's CPU time per query) is not needed. The body is kept up to
 * `MAX_MESSAGE_OCTETS` for a 200, up to `HTTP_ERROR_EXCERPT_OCTETS` otherwise; past that the
 * request is aborted. When `signal` aborts, the promise rejects with its reason at once and the
 * request is aborted as soon as undici hands it to a connection: a request queued behind a
 * connection that never completes its handshake would otherwise wait for undici's connect
 * timeout (10 s), past the query's own.
 */
function exchange(
  dispatcher: Dispatcher,
  target: URL,
  method: 'GET' | 'POST',
  body: Buffer | undefined,
  serverName: string | undefined,
  signal: AbortSignal,
): Promise<DohExchange> {
  return new Promise<DohExchange>((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined;
    let settled = false;
    let status = 0;
    let contentType: string | string[] | undefined;
    let limit = MAX_MESSAGE_OCTETS;
    let chunks: Buffer[] = [];
    let size = 0;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      return true;
    };
    const fail = (error: unknown): void => {
      if (settle()) reject(error as Error);
    };
    const finish = (over: boolean): void => {
      if (!settle()) return;
      const whole = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      resolve({ status, contentType, body: whole, over });
    };
    const onAbort = (): void => {
      controller?.abort(signal.reason as Error);
      fail(signal.reason);
    };
    if (signal.aborted) {
      fail(signal.reason);
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    const handler: Dispatcher.DispatchHandler = {
      // Called again when undici retries the request (idempotent) on a new connection.
      onRequestStart(c) {
        controller = c;
        chunks = [];
        size = 0;
        if (settled) c.abort(new Error('the query is over'));
      },
      onResponseStart(_c, statusCode, headers) {
        status = statusCode;
        contentType = headers['content-type'];
        limit = statusCode === 200 ? MAX_MESSAGE_OCTETS : HTTP_ERROR_EXCERPT_OCTETS;
      },
      onResponseData(c, chunk) {
        if (settled) return;
        size += chunk.length;
        if (size > limit) {
          finish(true);
          c.abort(new Error('the response body is over the limit'));
          return;
        }
        chunks.push(chunk);
      },
      onResponseEnd() {
        finish(false);
      },
      onResponseError(_c, error) {
        fail(error);
      },
    };
    // undici takes a request's `servername` (absent from its option types) for the TLS
    // connection that carries it, and gives the request a connection made for that name.
    const options: Dispatcher.DispatchOptions & { servername?: string } = {
      origin: target.origin,
      path: `${target.pathname}${target.search}`,
      method,
      headers: DOH_HEADERS[method],
      ...(body === undefined ? {} : { body }),
      ...(serverName === undefined ? {} : { servername: serverName }),
      // A DNS query is safe to repeat (RFC 8484 §4.1 allows GET for it); marked so, a POST
      // may share an HTTP/2 connection with others and be retried on a closed connection.
      idempotent: true,
    };
    try {
      dispatcher.dispatch(options, handler);
    } catch (error) {
      fail(error);
    }
  });
}

/** One connection pool of a DoH client, and whose turn it is to connect to each origin. */
interface Lane {
  readonly agent: Agent;
  /**
   * Whether a query to `origin` may go now (undefined), is the one to make the connection (a
   * function to call once it settles), or waits for the connection another query is making (a
   * promise).
   */
  connectionTurn(origin: string): (() => void) | Promise<void> | undefined;
}

/**
 * Creates a DoH client over undici `Agent`s (keep-alive, HTTP/2 when the server offers it), one
 * per lane. Every query is padded (RFC 8467 §4.1: a multiple of
 * {@link QUERY_PADDING_BLOCK_OCTETS} octets) when it has EDNS, as `buildQuery` gives it.
 */
export function createDohClient(options: DohClientOptions = {}): DohClient {
  const ca =
    options.ca === undefined
      ? undefined
      : Array.isArray(options.ca)
        ? options.ca.map(pemBuffer)
        : pemBuffer(options.ca);
  const allowH2 = options.allowH2 ?? true;
  const laneCount = options.lanes ?? 1;
  if (!Number.isInteger(laneCount) || laneCount < 1 || laneCount > MAX_DOH_CLIENT_LANES) {
    throw new RangeError(
      `lanes must be an integer in 1..${MAX_DOH_CLIENT_LANES}, got ${String(laneCount)}`,
    );
  }
  const connections = Math.max(
    1,
    Math.ceil((options.connections ?? DEFAULT_DOH_CLIENT_CONNECTIONS) / laneCount),
  );
  // Given `ca`, Node's TLS builds a secure context (parsing every CA certificate into a new
  // store) for each connection; built here once, it is shared by every connection of the client.
  const secureContext = ca === undefined ? undefined : createSecureContext({ ca });
  const connector = dohConnector(
    secureContext,
    allowH2,
    options.acceptAddressCertificates ?? false,
    options.connectTimeoutMs ?? DOH_CONNECT_TIMEOUT_MS,
    new TlsTickets(options.tlsSessionServers ?? DEFAULT_DOH_TLS_SESSION_SERVERS),
  );
  const lanes = Array.from({ length: laneCount }, () =>
    createLane(allowH2, connections, connector),
  );

  const query = async (
    url: string,
    message: Message,
    queryOptions: DohQueryOptions = {},
  ): Promise<Message> => {
    const timeoutMs = queryOptions.timeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS;
    const method = queryOptions.method ?? 'POST';
    const wire = padMessage(encodeMessage(message), QUERY_PADDING_BLOCK_OCTETS);
    const target = new URL(url);
    const serverName =
      queryOptions.serverName === undefined || isIP(queryOptions.serverName) !== 0
        ? undefined
        : queryOptions.serverName.replace(/\.$/, '');
    if (method === 'GET') target.searchParams.set('dns', Buffer.from(wire).toString('base64url'));
    const lane = lanes.length === 1 ? (lanes[0] as Lane) : (lanes[randomInt(lanes.length)] as Lane);
    // The timeout error is made only when the timer fires: an Error captures a stack trace,
    // which every query would otherwise pay for.
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(timeoutError(timeoutMs, `from ${target.origin} over DoH`)),
      timeoutMs,
    );
    const bad = (why: string, cause?: unknown): TransportError =>
      new TransportError(
        'ERR_TRANSPORT_BAD_RESPONSE',
        `DoH response from ${target.origin} ${why}`,
        {
          cause,
        },
      );
    let leader: (() => void) | undefined;
    try {
      const turn = lane.connectionTurn(target.origin);
      if (typeof turn === 'function') leader = turn;
      else if (turn !== undefined) {
        await untilAborted(turn, controller.signal);
      }
      const send = (): ReturnType<typeof exchange> =>
        exchange(
          lane.agent,
          target,
          method,
          method === 'POST' ? Buffer.from(wire) : undefined,
          serverName,
          controller.signal,
        );
      let response: Awaited<ReturnType<typeof exchange>> | undefined;
      for (let attempt = 0; response === undefined; attempt++) {
        try {
          response = await send();
        } catch (error) {
          if (attempt >= DOH_RETRIES_ON_DEAD_CONNECTION || controller.signal.aborted) throw error;
          if (!deadConnection(error)) throw error;
        }
      }
      const { body, over } = response;
      if (response.status !== 200) {
        const excerpt = body.toString('utf8').trim().slice(0, HTTP_ERROR_EXCERPT_OCTETS);
        throw new TransportError(
          'ERR_TRANSPORT_HTTP_STATUS',
          `DoH server ${target.origin} answered HTTP ${response.status}${excerpt === '' ? '' : `: ${excerpt}`}`,
          { status: response.status },
        );
      }
      if (over) throw bad(`is over ${MAX_MESSAGE_OCTETS} octets`);
      const type = mediaType(response.contentType);
      if (type !== DNS_MESSAGE_MEDIA_TYPE) throw bad(`has content-type ${String(type)}`);
      let decoded: Message;
      try {
        decoded = decodeMessage(body);
      } catch (error) {
        throw bad('does not decode', error);
      }
      if (!answers(message, decoded)) throw bad('does not answer the query');
      return decoded;
    } catch (error) {
      if (controller.signal.aborted) throw controller.signal.reason as TransportError;
      if (error instanceof TransportError) throw error;
      const text = error instanceof Error ? error.message : String(error);
      throw new TransportError(
        'ERR_TRANSPORT_CONNECTION',
        `DoH query to ${target.origin} failed: ${text}`,
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
      leader?.();
    }
  };

  return {
    query,
    close: async () => {
      await Promise.all(lanes.map((lane) => lane.agent.close()));
    },
  };
}

/** One lane of {@link createDohClient}: an undici `Agent` and its connection turns. */
function createLane(
  allowH2: boolean,
  connections: number,
  connector: buildConnector.connector,
): Lane {
  const agent = new Agent({
    allowH2,
    connections,
    // undici multiplexes HTTP/2 streams only up to `pipelining` per connection (default 1). With
    // HTTP/2 allowed, a server that only speaks HTTP/1.1 gets pipelined requests instead, which
    // RFC 9112 §9.3.2 requires servers to accept.
    pipelining: allowH2 ? DOH_CLIENT_STREAMS_PER_CONNECTION : 1,
    connect: connector,
  });

  // One connection set-up per origin at a time. undici's pool opens a new connection for each
  // request that arrives while the first connection is still being made (a request waiting for
  // its connection makes the client busy), so a resolver's first questions to a server — its
  // DNSKEY, the question, MAPREF and AUTHKEY, sent together — would cost a TLS handshake each.
  // With HTTP/2 one connection carries them all: later requests wait until the first connection
  // is up (or has failed), then share it. Over HTTP/1.1 parallel connections are the way to
  // concurrency, so there is no waiting.
  const open = new Map<string, number>();
  const connecting = new Map<string, { ready: Promise<void>; release: () => void }>();
  const released = (origin: string): void => {
    connecting.get(origin)?.release();
    connecting.delete(origin);
  };
  const originOf = (value: unknown): string =>
    value instanceof URL ? value.origin : new URL(String(value)).origin;
  agent.on('connect', (origin) => {
    const key = originOf(origin);
    open.set(key, (open.get(key) ?? 0) + 1);
    released(key);
  });
  agent.on('disconnect', (origin) => {
    const key = originOf(origin);
    const left = (open.get(key) ?? 1) - 1;
    if (left > 0) open.set(key, left);
    else open.delete(key);
  });
  agent.on('connectionError', (origin) => released(originOf(origin)));

  /**
   * Whether a query to `origin` may go now (undefined), is the one to make the connection (a
   * function to call once it settles), or waits for the connection another query is making (a
   * promise): the last only when HTTP/2 is allowed and `origin` has no connection yet.
   */
  const connectionTurn = (origin: string): (() => void) | Promise<void> | undefined => {
    if (!allowH2 || (open.get(origin) ?? 0) > 0) return undefined;
    const pending = connecting.get(origin);
    if (pending !== undefined) return pending.ready;
    let release = (): void => undefined;
    const ready = new Promise<void>((resolve) => {
      release = resolve;
    });
    connecting.set(origin, { ready, release });
    return () => {
      if (connecting.get(origin)?.ready === ready) released(origin);
    };
  };

  return { agent, connectionTurn };
}

/** Options of {@link buildQuery}. */
export interface BuildQueryOptions {
  /** Default: random. */
  id?: number;
  /** The DO bit (RFC 3225); default false. */
  dnssecOk?: boolean;
  /** RD; default false, as a resolver asks authoritative servers. */
  recursionDesired?: boolean;
  /** EDNS UDP payload size offered; default {@link EDNS_UDP_PAYLOAD_OCTETS}. */
  udpPayloadSize?: number;
  /** The CO flag (RFC 9824 §5): the client understands NXDOMAIN with compact denial. */
  compactOk?: boolean;
}

/**
 * A query for `name` and `type` in class IN, with EDNS(0) (RFC 6891): opcode QUERY, a random id
 * unless one is given, RD clear unless asked for.
 */
export function buildQuery(
  name: string,
  type: Question['type'],
  options: BuildQueryOptions = {},
): Message {
  return {
    id: options.id ?? randomInt(0, 0x10000),
    flags: {
      qr: false,
      opcode: 0,
      aa: false,
      tc: false,
      rd: options.recursionDesired ?? false,
      ra: false,
      z: false,
      ad: false,
      cd: false,
    },
    rcode: 'NOERROR',
    questions: [{ name, type, class: 'IN' }],
    answers: [],
    authorities: [],
    additionals: [],
    edns: {
      udpPayloadSize: options.udpPayloadSize ?? EDNS_UDP_PAYLOAD_OCTETS,
      extendedRcode: 0,
      version: 0,
      dnssecOk: options.dnssecOk ?? false,
      ...(options.compactOk === true ? { compactOk: true } : {}),
      options: [],
    },
  };
}
