/**
 * The one HTTP server scaffold: DNS over HTTPS (`doh-server.ts`), the admin endpoint
 * (`admin.ts`), the resolver's JSON API and a DP's registration API are each their routes and
 * handlers on top of it. What they share lives here, once:
 *
 * - **Listening** on a host and port: plain HTTP/1.1, or TLS (1.2 at least) with HTTP/1.1, or
 *   TLS with HTTP/2 and HTTP/1.1 on one port by ALPN (`h2`, `http/1.1`).
 * - **Connections**: the gate of `connection-limits.ts` runs before node's TLS and HTTP layers
 *   (a refused connection costs no handshake and no parser): a cap per client (IPv4 address,
 *   IPv6 /64) and per listener, eviction of the oldest idle connection of the heaviest client,
 *   an idle deadline that bytes cannot push back. A request (HTTP/1.1, or HTTP/2 through node's
 *   compatibility API) or an HTTP/2 stream keeps its connection busy until its response is done.
 * - **Node's deadlines**, each fixed when it starts: the TLS handshake from the accept
 *   (`handshakeTimeout`), an HTTP/1.1 request's headers and the whole request from its first
 *   octet (`headersTimeout`, `requestTimeout`), checked every quarter of the shorter of the two,
 *   between {@link MIN_DEADLINE_CHECK_MS} and {@link MAX_DEADLINE_CHECK_MS}.
 * - **JSON bodies** ({@link readJsonBody}): the content type `application/json` (a charset
 *   only if utf-8), the size (refused on `content-length` before any of it is read, else while
 *   reading), a deadline from the start of reading, UTF-8, JSON — each refusal a stable code of
 *   {@link JSON_BODY_ERRORS}, made into the server's own error class.
 * - **JSON responses** ({@link sendJson}) and the one error shape
 *   `{"error": {"code", "message", "detail"?}}` ({@link jsonErrorBody}). A response sent before
 *   the request body was read ends the exchange instead of reading the rest (HTTP/1.1:
 *   `Connection: close`; HTTP/2: RST_STREAM NO_ERROR once the response is out, RFC 9113 §8.1),
 *   and a client that does not take its response within a deadline has the exchange cut, so it
 *   cannot keep its connection busy for ever.
 * - **Raw errors** ({@link RawErrorAnswers}), for HTTP/1.1 JSON servers that want them: a
 *   request node cannot parse, headers too large or too slow are answered in the JSON error
 *   shape rather than node's bare status line, and the first request's headers have a deadline
 *   on the injected clock.
 * - **An orderly close**: stop listening, destroy every connection, resolve once closed.
 *
 * Worked example, the resolver's JSON API: `startHttpServer({ listener: 'api', tls, http2:
 * { maxConcurrentStreams: 100 }, connections, deadlines, … }, { kind: 'request', request })`;
 * its POST handler calls `readJsonBody(req, body)` and answers with `sendJson(req, res,
 * response, options)`.
 *
 * DoH keeps its hot path: its HTTP/2 streams reach its handler through node's stream API
 * (`kind: 'stream'`; the compatibility API costs about 1.8× the CPU per request), and the
 * listeners in between are made once per server, so a request costs no closure here beyond the
 * gate's bookkeeping.
 *
 * Logs name the listener, never the client address (design §10).
 */
import {
  STATUS_CODES,
  createServer as createPlainServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import {
  constants as http2Constants,
  createSecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Stream,
} from 'node:http2';
import { createServer as createTlsServer } from 'node:https';
import type { Server, Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import { MimiError } from '../protocol/errors.js';
import {
  createConnectionGate,
  guardConnections,
  listenGuarded,
  scheduleUnref,
  type ConnectionGate,
  type ConnectionLimits,
  type ConnectionScheduler,
  type ConnectionStats,
  type GuardedListener,
  type SocketAddresses,
} from './connection-limits.js';
import { TransportError } from './dns-client.js';
import { silentLogger, type Logger } from './log.js';

/** The content type of every JSON response. */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
/** Node checks its HTTP/1.1 deadlines at least this often, so that none is late by more. */
export const MAX_DEADLINE_CHECK_MS = 1_000;
/** Node checks its HTTP/1.1 deadlines at most this often (the checks walk every connection). */
export const MIN_DEADLINE_CHECK_MS = 10;

/** A request, HTTP/1.1 or HTTP/2 (node's compatibility API). */
export type HttpRequest = IncomingMessage | Http2ServerRequest;
/** The response to an {@link HttpRequest}. */
export type HttpResponse = ServerResponse | Http2ServerResponse;

/** What a server does with its requests: its routes and handlers. */
export type HttpHandlers =
  /** Every request through node's request API (for HTTP/2: its compatibility API). */
  | {
      readonly kind: 'request';
      readonly request: (req: HttpRequest, res: HttpResponse) => void;
    }
  /**
   * HTTP/1.1 requests through the request API, HTTP/2 streams through the stream API (the
   * compatibility API costs about 1.8× the CPU per request). Needs `http2`.
   */
  | {
      readonly kind: 'stream';
      readonly http1: (req: IncomingMessage, res: ServerResponse) => void;
      readonly http2: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;
    };

/** A certificate chain and its private key, PEM. */
export interface HttpTls {
  readonly cert: string | Uint8Array;
  readonly key: string | Uint8Array;
}

/** Node's own deadlines of a server, in milliseconds, each fixed when it starts. */
export interface HttpDeadlines {
  /** The TLS handshake within this long of the accept (with `tls`). */
  readonly handshakeMs?: number;
  /** An HTTP/1.1 request's headers within this long of its first octet. */
  readonly headersMs: number;
  /** A whole HTTP/1.1 request within this long of its first octet; at least `headersMs`. */
  readonly requestMs: number;
  /** An HTTP/1.1 connection is closed this long after its last response; default node's (5 s). */
  readonly keepAliveMs?: number;
  /** A socket that carries no octet for this long is destroyed (reset by any octet). */
  readonly inactivityMs?: number;
}

/** A request node's HTTP/1.1 parser gave up on, by why. */
export type RawErrorKind = 'timeout' | 'headers-too-large' | 'bad-request';

/** An error as a JSON server answers it: status, stable code, message, optional detail. */
export interface HttpJsonError {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  /** A machine-readable refinement: a field name, a parser's code. */
  readonly detail?: string | undefined;
}

/**
 * JSON answers for connections that have no request object (HTTP/1.1 only): a request node
 * cannot parse (`bad-request`), headers over `maxHeaderOctets` (`headers-too-large`), node's
 * request deadline (`timeout`), and a deadline for the headers of the connection's first
 * request, from the connection (after its TLS handshake), on the components' scheduler.
 * Each is answered with `errorFor(kind)` in the JSON error shape, and the connection closed.
 */
export interface RawErrorAnswers {
  readonly headersTimeoutMs: number;
  readonly errorFor: (kind: RawErrorKind) => HttpJsonError;
  /** Headers of these responses besides content type, length and `Connection: close`. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Where and how a server listens. */
export interface HttpServerConfig {
  /** The listener's name in logs, metrics and config errors: `doh`, `api`, `admin`. */
  readonly listener: string;
  /** The server in a listen error's message: `JSON API cannot listen on …`. */
  readonly label: string;
  /** The error thrown when it cannot listen: its code says which listener failed. */
  readonly listenError: (message: string, cause: unknown) => MimiError;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** HTTPS; absent: plain HTTP/1.1. */
  readonly tls?: HttpTls | undefined;
  /** HTTP/2 besides HTTP/1.1 by ALPN, with at most this many streams per connection. Needs `tls`. */
  readonly http2?: { readonly maxConcurrentStreams: number } | undefined;
  readonly connections: ConnectionLimits;
  readonly deadlines: HttpDeadlines;
  /** Largest HTTP/1.1 header section; default node's (16 KiB). */
  readonly maxHeaderOctets?: number;
  /** JSON answers without a request object; HTTP/1.1 servers only. */
  readonly rawErrors?: RawErrorAnswers;
  /** Appended to the server's URL: `/dns-query`. */
  readonly urlPath?: string;
}

/** What a server uses besides its config. */
export interface HttpServerComponents {
  /** Default {@link silentLogger}. */
  readonly log?: Logger;
  /** Timers of the raw-error headers deadline; default `setTimeout`, unreferenced. */
  readonly schedule?: ConnectionScheduler;
}

/** A listening server. */
export interface HttpServer {
  readonly host: string;
  readonly port: number;
  /** `https://127.0.0.1:<port>` (`http://` without TLS), with the config's `urlPath`. */
  readonly url: string;
  /** Connections open now, refused and closed by reason since the start. */
  connectionStats(): ConnectionStats;
  /**
   * Serves new TLS handshakes with this certificate and key (a renewed certificate), through
   * node's `tls.Server#setSecureContext`; connections already open keep theirs, so no exchange
   * is cut. Throws `TransportError` `ERR_TRANSPORT_CONFIG`, changing nothing, for a server
   * without TLS or a certificate and key that cannot be used together.
   */
  setTls(tls: HttpTls): void;
  /** Stops listening and closes every connection; resolves when closed. Idempotent. */
  close(): Promise<void>;
}

/** The HTTP/1.1 settings node reads from a server object (untyped on the HTTP/2 server). */
interface Http1Settings {
  headersTimeout: number;
  requestTimeout: number;
  connectionsCheckingInterval: number;
  keepAliveTimeout: number;
  timeout: number;
}

/** The codes of a {@link ListenError}. */
export type ListenErrorCode = 'ERR_ADMIN_LISTEN' | 'ERR_API_LISTEN';

/** An HTTP API (admin, JSON API, registration API) that cannot listen: port in use, bad address. */
export class ListenError extends MimiError<ListenErrorCode> {}

/**
 * Creates the server, puts the connection gate in front of it and listens. Throws
 * `TransportError` `ERR_TRANSPORT_CONFIG` for limits out of range or a certificate or key that
 * cannot be used, and `config.listenError(…)` when it cannot listen.
 */
export async function startHttpServer(
  config: HttpServerConfig,
  handlers: HttpHandlers,
  components: HttpServerComponents = {},
): Promise<HttpServer> {
  const log = components.log ?? silentLogger;
  checkShape(config, handlers);
  const gate = createConnectionGate(config.connections, { listener: config.listener, log });
  const server = createNodeServer(config);
  // No inactivity timeout unless asked for: it would close a connection whose request is still
  // being answered, and bytes reset it. An idle connection is closed by the gate; a busy one is
  // bounded by the request deadlines, the handler's own, and the delivery deadline (sendBody).
  applyDeadlines(server, config.deadlines);

  // Raw errors first: a request cancels its connection's headers deadline before its handler.
  if (config.rawErrors !== undefined) {
    answerRawErrors(server, config, config.rawErrors, components.schedule ?? scheduleUnref);
  }
  attachHandlers(server, config, handlers, gate, log);
  if (config.tls !== undefined) {
    server.on('tlsClientError', (error: Error) =>
      log.debug('tls-error', { listener: config.listener, error }),
    );
  }
  // Last, so that the gate runs before every `connection` listener: node's TLS layer, its HTTP
  // parser, the raw-error headers deadline.
  guardConnections(server, gate);

  let bound: GuardedListener;
  try {
    bound = await listenGuarded(server, gate, config);
  } catch (error) {
    const cause = error instanceof Error ? error.message : String(error);
    throw config.listenError(
      `${config.label} cannot listen on ${config.host}:${config.port}: ${cause}`,
      error,
    );
  }
  server.on('error', (error: Error) =>
    log.error('server-error', { listener: config.listener, error }),
  );
  const scheme = config.tls === undefined ? 'http' : 'https';
  const authority = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `${scheme}://${authority}:${bound.port}${config.urlPath ?? ''}`;
  log.info('listening', { listener: config.listener, url });
  return {
    host: config.host,
    port: bound.port,
    url,
    connectionStats: bound.connectionStats,
    setTls: (tls) => replaceTls(server, config, tls),
    close: bound.close,
  };
}

/**
 * Checks `tls` by making a context of it first, so that a bad pair throws before anything
 * changes; then swaps the server's (https and http2 servers are `tls.Server`s).
 */
function replaceTls(server: Server, config: HttpServerConfig, tls: HttpTls): void {
  if (config.tls === undefined) throw configError(`${config.listener}: not a TLS server`);
  const secure = { cert: toPem(tls.cert), key: toPem(tls.key), minVersion: 'TLSv1.2' as const };
  try {
    createSecureContext(secure);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new TransportError(
      'ERR_TRANSPORT_CONFIG',
      `${config.listener}.cert or ${config.listener}.key: ${message}`,
      { cause: error },
    );
  }
  (server as unknown as TlsServer).setSecureContext(secure);
}

function configError(message: string): TransportError {
  return new TransportError('ERR_TRANSPORT_CONFIG', message);
}

/**
 * The combinations node cannot serve (HTTP/2 without TLS, stream handlers without HTTP/2, raw
 * errors on HTTP/2) and a headers deadline past the whole-request one, which node would never
 * reach.
 */
function checkShape(config: HttpServerConfig, handlers: HttpHandlers): void {
  const { headersMs, requestMs } = config.deadlines;
  if (headersMs > requestMs)
    throw configError(
      `${config.listener}: the headers deadline (${headersMs} ms) exceeds the request deadline (${requestMs} ms)`,
    );
  if (config.http2 !== undefined && config.tls === undefined)
    throw configError(`${config.listener}: HTTP/2 is served over TLS only`);
  if (handlers.kind === 'stream' && config.http2 === undefined)
    throw configError(`${config.listener}: stream handlers need HTTP/2`);
  if (config.rawErrors !== undefined && config.http2 !== undefined)
    throw configError(`${config.listener}: raw errors are for HTTP/1.1 servers`);
}

function toPem(value: string | Uint8Array): string | Buffer {
  return typeof value === 'string' ? value : Buffer.from(value);
}

/** A node:http, node:https or node:http2 server, as the config asks. */
function createNodeServer(config: HttpServerConfig): Server {
  const { tls, http2 } = config;
  const headers =
    config.maxHeaderOctets === undefined ? {} : { maxHeaderSize: config.maxHeaderOctets };
  if (tls === undefined) return createPlainServer(headers);
  const handshake = config.deadlines.handshakeMs;
  const secure = {
    cert: toPem(tls.cert),
    key: toPem(tls.key),
    minVersion: 'TLSv1.2' as const,
    ...(handshake === undefined ? {} : { handshakeTimeout: handshake }),
    ...headers,
  };
  try {
    return http2 === undefined
      ? createTlsServer(secure)
      : createSecureServer({
          ...secure,
          allowHTTP1: true,
          settings: { maxConcurrentStreams: http2.maxConcurrentStreams },
        });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new TransportError(
      'ERR_TRANSPORT_CONFIG',
      `${config.listener}.cert or ${config.listener}.key: ${message}`,
      { cause: error },
    );
  }
}

/**
 * How often node checks its HTTP/1.1 deadlines: a quarter of the shorter, so none is late by
 * more than that, within {@link MIN_DEADLINE_CHECK_MS}..{@link MAX_DEADLINE_CHECK_MS}.
 */
export function deadlineCheckIntervalMs(deadlines: HttpDeadlines): number {
  const shortest = Math.min(deadlines.headersMs, deadlines.requestMs);
  return Math.max(MIN_DEADLINE_CHECK_MS, Math.min(MAX_DEADLINE_CHECK_MS, Math.floor(shortest / 4)));
}

/** Sets node's HTTP/1.1 deadlines; they take effect when the server starts listening. */
function applyDeadlines(server: Server, deadlines: HttpDeadlines): void {
  const http1 = server as unknown as Http1Settings;
  http1.headersTimeout = deadlines.headersMs;
  http1.requestTimeout = deadlines.requestMs;
  http1.connectionsCheckingInterval = deadlineCheckIntervalMs(deadlines);
  if (deadlines.keepAliveMs !== undefined) http1.keepAliveTimeout = deadlines.keepAliveMs;
  if (deadlines.inactivityMs !== undefined) http1.timeout = deadlines.inactivityMs;
}

/** The socket whose connection an exchange keeps busy: an HTTP/2 request's session socket. */
function connectionSocketOf(req: HttpRequest): SocketAddresses | undefined {
  return req.httpVersionMajor === 2
    ? (req as Http2ServerRequest).stream.session?.socket
    : req.socket;
}

/**
 * Hands every request (or HTTP/2 stream) to its handler, marking its connection busy until the
 * response is done. The listeners are made here, once per server: nothing per request but the
 * gate's bookkeeping.
 */
function attachHandlers(
  server: Server,
  config: HttpServerConfig,
  handlers: HttpHandlers,
  gate: ConnectionGate,
  log: Logger,
): void {
  const listener = config.listener;
  const onRequestError = (error: Error): void => log.debug('request-error', { listener, error });
  if (config.http2 !== undefined) {
    server.on('sessionError', (error: Error) => log.debug('session-error', { listener, error }));
  }
  if (handlers.kind === 'request') {
    const request = handlers.request;
    server.on('request', (req: HttpRequest, res: HttpResponse) => {
      req.on('error', onRequestError);
      gate.track(connectionSocketOf(req), res);
      request(req, res);
    });
    return;
  }
  const { http1, http2 } = handlers;
  // Adding a `request` listener makes node:http2 install its compatibility layer as a `stream`
  // listener (setupCompat in lib/internal/http2/core.js), which would also take every HTTP/2
  // stream and read its body. HTTP/2 is served by the `stream` listener below, so that one is
  // removed again; the version check guards against a node that wires the compatibility layer
  // differently.
  const before = new Set(server.listeners('stream'));
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.httpVersionMajor !== 1) return;
    req.on('error', onRequestError);
    gate.track(req.socket, res);
    http1(req, res);
  });
  for (const added of server.listeners('stream')) {
    if (!before.has(added)) server.removeListener('stream', added as (...args: unknown[]) => void);
  }
  const onStreamError = (error: Error): void => log.debug('stream-error', { listener, error });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on('error', onStreamError);
    // An HTTP/2 connection is busy while it has a stream open.
    gate.track(stream.session?.socket, stream);
    http2(stream, headers);
  });
}

/** What node's HTTP/1.1 parser reports, as a {@link RawErrorKind}. */
function rawErrorKindOf(error: NodeJS.ErrnoException): RawErrorKind {
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'timeout';
  if (error.code === 'HPE_HEADER_OVERFLOW') return 'headers-too-large';
  return 'bad-request';
}

/** Installs the headers deadline and the JSON `clientError` answers of {@link RawErrorAnswers}. */
function answerRawErrors(
  server: Server,
  config: HttpServerConfig,
  raw: RawErrorAnswers,
  schedule: ConnectionScheduler,
): void {
  /** Cancels the headers deadline of each connection that has not sent a request yet. */
  const waiting = new WeakMap<Socket, () => void>();
  server.on(config.tls === undefined ? 'connection' : 'secureConnection', (socket: Socket) => {
    const cancel = schedule(raw.headersTimeoutMs, () =>
      answerRaw(socket, raw.errorFor('timeout'), raw.headers),
    );
    waiting.set(socket, cancel);
    socket.once('close', cancel);
  });
  server.on('request', (req: IncomingMessage) => waiting.get(req.socket)?.());
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    const cancel = waiting.get(socket);
    cancel?.();
    // A reset, or a TLS handshake that failed or ran out of time (no `secureConnection` yet, so
    // not in `waiting`): there is no HTTP to answer with, and a response written to a socket
    // without a session would never be flushed, keeping the connection open.
    if (error.code === 'ECONNRESET' || cancel === undefined) {
      socket.destroy();
      return;
    }
    answerRaw(socket, raw.errorFor(rawErrorKindOf(error)), raw.headers);
  });
}

/** Answers a connection that has no request object with a JSON error, then closes it. */
function answerRaw(
  socket: Socket,
  error: HttpJsonError,
  headers: Readonly<Record<string, string>> | undefined,
): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(rawJsonResponse(error, headers), () => socket.destroy());
}

/** A whole HTTP/1.1 response carrying `error` in the JSON error shape. */
function rawJsonResponse(
  error: HttpJsonError,
  headers: Readonly<Record<string, string>> | undefined,
): string {
  const body = `${JSON.stringify(jsonErrorBody(error))}\n`;
  const fields = {
    'content-type': JSON_CONTENT_TYPE,
    'x-content-type-options': 'nosniff',
    ...headers,
    connection: 'close',
    'content-length': String(Buffer.byteLength(body)),
  };
  const lines = Object.entries(fields).map(([name, value]) => `${name}: ${value}\r\n`);
  return `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\n${lines.join('')}\r\n${body}`;
}

// ---------------------------------------------------------------------------------------------
// Bodies

/** What reading a body gave: its octets, or why not. */
export type BodyRead = Uint8Array | 'too-large' | 'aborted' | 'timeout';

/** A deadline for a whole body, from the start of reading. */
export interface BodyDeadline {
  readonly timeoutMs: number;
  /** Default `setTimeout`, unreferenced. */
  readonly schedule?: ConnectionScheduler;
}

/**
 * Reads a request body of at most `limit` octets: `too-large` as soon as it grows past it,
 * `aborted` when the exchange closes before its end, `timeout` past the `deadline`. On any of
 * these the rest is left unread; the response ends the exchange. Without a deadline no timer is
 * made (the DoH path has its own).
 */
export function readBody(body: Readable, limit: number): Promise<Exclude<BodyRead, 'timeout'>>;
export function readBody(body: Readable, limit: number, deadline: BodyDeadline): Promise<BodyRead>;
export function readBody(
  body: Readable,
  limit: number,
  deadline?: BodyDeadline,
): Promise<BodyRead> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let cancel: (() => void) | undefined;
    const finish = (result: BodyRead): void => {
      cancel?.();
      body.removeListener('data', onData);
      body.removeListener('end', onEnd);
      body.removeListener('close', onAborted);
      body.removeListener('error', onAborted);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) finish('too-large');
      else chunks.push(chunk);
    };
    const onEnd = (): void => finish(Buffer.concat(chunks, size));
    const onAborted = (): void => finish('aborted');
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('close', onAborted);
    body.once('error', onAborted);
    if (deadline !== undefined) {
      cancel = (deadline.schedule ?? scheduleUnref)(deadline.timeoutMs, () => finish('timeout'));
    }
  });
}

/** Every code {@link readJsonBody} refuses a request with, and its HTTP status. */
export const JSON_BODY_ERRORS = Object.freeze({
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_BODY_TOO_LARGE: 413,
  ERR_TIMEOUT: 408,
  ERR_BAD_REQUEST: 400,
  ERR_BAD_JSON: 400,
} as const);

/** A code of {@link JSON_BODY_ERRORS}. */
export type JsonBodyErrorCode = keyof typeof JSON_BODY_ERRORS;

/** How a server reads JSON request bodies. */
export interface JsonBodyLimits {
  /** Largest body, in octets. */
  readonly maxBodyOctets: number;
  /** The whole body within this long of the start of reading. */
  readonly timeoutMs: number;
  /** Timers of the body deadline; default `setTimeout`, unreferenced. */
  readonly schedule?: ConnectionScheduler;
  /**
   * The error a request is refused with, in the server's own error class; its status is
   * that of {@link JSON_BODY_ERRORS}.
   */
  readonly refuse: (code: JsonBodyErrorCode, message: string, cause?: unknown) => Error;
}

/** `application/json`, with no charset or `charset=utf-8` (RFC 8259 §8.1: JSON is UTF-8). */
export function isJsonContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const [type = '', ...params] = contentType.split(';').map((s) => s.trim().toLowerCase());
  if (type !== 'application/json') return false;
  return params.every((p) => !p.startsWith('charset=') || /^charset="?utf-8"?$/.test(p));
}

/**
 * The parsed JSON body of a request, after these checks in this order: content type (415
 * `ERR_UNSUPPORTED_MEDIA_TYPE`), declared size (413 `ERR_BODY_TOO_LARGE`, before reading),
 * size while reading (413), the deadline (408 `ERR_TIMEOUT`), the whole body (400
 * `ERR_BAD_REQUEST` when the exchange closes first), UTF-8 and JSON (400 `ERR_BAD_JSON`).
 * Throws `limits.refuse(code, message)`.
 */
export async function readJsonBody(req: HttpRequest, limits: JsonBodyLimits): Promise<unknown> {
  if (!isJsonContentType(req.headers['content-type'])) {
    throw limits.refuse('ERR_UNSUPPORTED_MEDIA_TYPE', 'the request body must be application/json');
  }
  const tooLarge = `the request body is larger than ${limits.maxBodyOctets} octets`;
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limits.maxBodyOctets) {
    throw limits.refuse('ERR_BODY_TOO_LARGE', tooLarge);
  }
  const read = await readBody(req, limits.maxBodyOctets, {
    timeoutMs: limits.timeoutMs,
    ...(limits.schedule === undefined ? {} : { schedule: limits.schedule }),
  });
  if (read === 'too-large') throw limits.refuse('ERR_BODY_TOO_LARGE', tooLarge);
  if (read === 'timeout') {
    throw limits.refuse('ERR_TIMEOUT', 'the request body was not received in time');
  }
  // Closed before its end: the client went away or broke the framing.
  if (read === 'aborted') {
    throw limits.refuse('ERR_BAD_REQUEST', 'the request body was not received whole');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(read);
  } catch (error) {
    throw limits.refuse('ERR_BAD_JSON', 'the request body is not valid UTF-8', error);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw limits.refuse('ERR_BAD_JSON', 'the request body is not valid JSON', error);
  }
}

// ---------------------------------------------------------------------------------------------
// Responses

/** The one JSON error shape: `{"error": {"code", "message", "detail"?}}`. */
export function jsonErrorBody(error: Pick<HttpJsonError, 'code' | 'message' | 'detail'>): {
  readonly error: { readonly code: string; readonly message: string; readonly detail?: string };
} {
  return {
    error: {
      code: error.code,
      message: error.message,
      ...(error.detail === undefined ? {} : { detail: error.detail }),
    },
  };
}

/** A JSON response. */
export interface JsonResponse {
  readonly status: number;
  /** A value to serialize, or JSON text already written (sent as is). */
  readonly body: { readonly value: unknown } | { readonly text: string };
  /** Headers of this response, over the server's. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A response of any content type. */
export interface BodyResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: string | Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
}

/** What a server adds to each of its responses. */
export interface ResponseOptions {
  /** Headers of every response, under the response's own. */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * A client that has not taken the whole response this long after it started (an HTTP/2
   * window held shut, a reader of one octet at a time) has the exchange cut: HTTP/1.1 closes
   * the connection, HTTP/2 resets the stream (CANCEL). Absent: no deadline.
   */
  readonly deliveryTimeoutMs?: number;
  /** Timers of the delivery deadline; default `setTimeout`, unreferenced. */
  readonly schedule?: ConnectionScheduler;
}

/**
 * Sends `response` as JSON text and a newline, unless a response was sent already or the
 * exchange is gone ({@link sendBody}).
 */
export function sendJson(
  req: HttpRequest,
  res: HttpResponse,
  response: JsonResponse,
  options: ResponseOptions = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const json = 'text' in response.body ? response.body.text : JSON.stringify(response.body.value);
  sendBody(
    req,
    res,
    {
      status: response.status,
      contentType: JSON_CONTENT_TYPE,
      body: `${json}\n`,
      ...(response.headers === undefined ? {} : { headers: response.headers }),
    },
    options,
  );
}

/**
 * Sends a whole response with its length, unless a response was sent already or the exchange
 * is gone. When the request body was left unread (a refusal), the exchange ends with the
 * response rather than waiting for the rest: HTTP/1.1 closes the connection, HTTP/2 resets the
 * stream with NO_ERROR once the response is out (RFC 9113 §8.1).
 */
export function sendBody(
  req: HttpRequest,
  res: HttpResponse,
  response: BodyResponse,
  options: ResponseOptions = {},
): void {
  if (res.headersSent || res.destroyed) return;
  // Encoded once: its length is the content-length, and the octets are what is written.
  const body = typeof response.body === 'string' ? Buffer.from(response.body) : response.body;
  const unread = !req.complete;
  const http1 = req.httpVersionMajor === 1;
  const headers: OutgoingHttpHeaders = {
    'content-type': response.contentType,
    'content-length': String(body.length),
    'x-content-type-options': 'nosniff',
    ...options.headers,
    ...response.headers,
    ...(unread && http1 ? { connection: 'close' } : {}),
  };
  if (http1) {
    const reply = res as ServerResponse;
    reply.writeHead(response.status, headers);
    watchDelivery(reply, () => req.socket.destroy(), options);
    reply.end(body);
    return;
  }
  const reply = res as Http2ServerResponse;
  reply.writeHead(response.status, headers);
  // The stream's own `finish` (END_STREAM sent): the compatibility response emits its `finish`
  // only once the stream has closed, which an unread request body would hold off.
  if (unread) {
    const stream = reply.stream;
    stream.once('finish', () => stream.close(http2Constants.NGHTTP2_NO_ERROR));
  }
  watchDelivery(reply, () => reply.stream.close(http2Constants.NGHTTP2_CANCEL), options);
  reply.end(body);
}

/** Arms the delivery deadline of {@link ResponseOptions}, cleared when the response closes. */
function watchDelivery(
  res: { once(event: 'close', listener: () => void): unknown },
  cut: () => void,
  options: ResponseOptions,
): void {
  if (options.deliveryTimeoutMs === undefined) return;
  const cancel = (options.schedule ?? scheduleUnref)(options.deliveryTimeoutMs, cut);
  res.once('close', cancel);
}
