/**
 * DNS over HTTPS (RFC 8484) over HTTP/2 and HTTP/1.1 on one TLS port (ALPN `h2`, `http/1.1`).
 *
 * - `GET <path>?dns=<base64url>` and `POST <path>` with `content-type: application/dns-message`;
 *   the answer is `200` with `content-type: application/dns-message` and a `cache-control:
 *   max-age` no longer than the answer's TTLs (RFC 8484 §5.1, {@link dohCacheMaxAge}).
 * - Every other request gets a status code with a one-line text body: another path `404`;
 *   another method `405`; a POST of another media type `415`; a missing or undecodable `dns`
 *   parameter, an empty body, bytes that are not a DNS query, or an HTTP/1.1 request without
 *   Host `400`; a body or `dns` parameter over `maxBodyOctets` `413` (refused on
 *   `content-length` before any of it is read); a request not received within
 *   `requestTimeoutMs` `408`.
 *
 * HTTP/2 is served through the `stream` API of `node:http2`, HTTP/1.1 through its `request`
 * event (the compatibility API is not used for HTTP/2: it costs about 1.8× the CPU per request).
 *
 * Slow clients, each deadline counted from a fixed point so that dripping bytes cannot push it
 * back: a TLS handshake and the headers of an HTTP/1.1 request must arrive within
 * `requestTimeoutMs` of the connection's accept and of the request's first octet (node's
 * `handshakeTimeout`, `headersTimeout`); the body of either version within `requestTimeoutMs`
 * of the request's start, or the request gets `408`; a client still sending, or not reading its
 * response, `requestTimeoutMs` after the response started is cut. A connection with no request
 * in progress (HTTP/1.1: between requests; HTTP/2: no open stream, whatever frames — PING,
 * SETTINGS, part of a header block — arrive) is closed `idleTimeoutMs` after its last response,
 * or after its accept (`connection-limits.ts`). An HTTP/2 session has at most
 * {@link DOH_MAX_CONCURRENT_STREAMS} streams open at once.
 *
 * A query the gate refuses (a server's per-client limits, `QueryGate` of `respond.ts`) gets
 * `429` with `Retry-After` (RFC 6585 §4, RFC 9110 §10.2.3) and `cache-control: no-store`, rather
 * than a DNS response in a `200`: the limit is the HTTP client's, and HTTP clients and
 * intermediaries know what a 429 means.
 *
 * Connections: at most `maxConnections`, and `connectionsPerClient` per client (IPv4 address,
 * IPv6 /64); a connection past its client's share is closed at accept, before its TLS
 * handshake; a full listener evicts the oldest idle connection of the client holding the most
 * (`connection-limits.ts`). None of these holds up other connections.
 *
 * Listening, TLS with ALPN, the connection gate, node's deadlines and the close are those of the
 * HTTP server scaffold (`http-server.ts`); this module holds the DoH routes and exchanges.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  constants as http2Constants,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Readable } from 'node:stream';
import {
  CONNECTIONS_PER_CLIENT_SHARE,
  connectionLimitsFor,
  type ConnectionStats,
} from './connection-limits.js';
import { DNS_MESSAGE_MEDIA_TYPE, TransportError } from './dns-client.js';
import { readBody, startHttpServer } from './http-server.js';
import type { Logger } from './log.js';
import { answerQuery, dohCacheMaxAge, type QueryContext, type QueryHandler } from './respond.js';
import type { AnswerCache } from './answer-cache.js';
import type { QueryLog } from './query-log.js';
import { RESPONSE_PADDING_BLOCK_OCTETS, padMessage } from '../protocol/padding.js';
import type { ListenerLimits } from './query-gate.js';

/** Default request path (RFC 8484 §4.1 example, RFC 9461 default `dohpath`). */
export const DEFAULT_DOH_PATH = '/dns-query';
/** Default largest query: the largest DNS message (RFC 8484 §6, 16-bit length of DNS over TCP). */
export const DEFAULT_DOH_MAX_BODY_OCTETS = 65535;
/** Default time for a client to deliver a whole request (TLS handshake, headers, body). */
export const DEFAULT_DOH_REQUEST_TIMEOUT_MS = 10_000;
/** Default time a connection may go without a request in progress before it is closed. */
export const DEFAULT_DOH_IDLE_TIMEOUT_MS = 30_000;
/** Default most TLS connections at once; past it, the oldest idle connection is evicted or the new one refused. */
export const DEFAULT_DOH_MAX_CONNECTIONS = 1024;
/**
 * Default most connections at once of one client (IPv4 address, IPv6 /64): an eighth of the
 * cap. A resolver needs one HTTP/2 connection per DP; the rest is room for NAT.
 */
export const DEFAULT_DOH_CONNECTIONS_PER_CLIENT =
  DEFAULT_DOH_MAX_CONNECTIONS / CONNECTIONS_PER_CLIENT_SHARE;
/** Most concurrent HTTP/2 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
export const DOH_MAX_CONCURRENT_STREAMS = 100;

/** The DoH listener's configuration. */
export interface DohListenerConfig {
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** Certificate chain, PEM. */
  cert: string | Uint8Array;
  /** Private key, PEM. */
  key: string | Uint8Array;
  /** Default {@link DEFAULT_DOH_PATH}. */
  path?: string;
  /** Default {@link DEFAULT_DOH_MAX_BODY_OCTETS}. */
  maxBodyOctets?: number;
  /** Default {@link DEFAULT_DOH_REQUEST_TIMEOUT_MS}. */
  requestTimeoutMs?: number;
  /** Default {@link DEFAULT_DOH_IDLE_TIMEOUT_MS}. */
  idleTimeoutMs?: number;
  /** Default {@link DEFAULT_DOH_MAX_CONNECTIONS}. */
  maxConnections?: number;
  /**
   * Default {@link DEFAULT_DOH_CONNECTIONS_PER_CLIENT}, or `maxConnections` when that is
   * smaller.
   */
  connectionsPerClient?: number;
}

/** A bound DoH listener. */
export interface DohListener {
  readonly host: string;
  readonly port: number;
  /** `https://<host>:<port><path>`. */
  readonly url: string;
  /** Connections open now, refused and closed by reason since the start. */
  connectionStats(): ConnectionStats;
  /** New handshakes use this certificate and key (`HttpServer.setTls`); open connections keep theirs. */
  setTls(tls: { cert: string | Uint8Array; key: string | Uint8Array }): void;
  /** Stops listening and closes every connection; resolves when all are closed. */
  close(): Promise<void>;
}

interface DohSettings {
  readonly path: string;
  /** Whether `path` is its own URL path (no dot segments, escapes or query to resolve). */
  readonly plainPath: boolean;
  readonly maxBodyOctets: number;
  readonly requestTimeoutMs: number;
}

/** One request, whichever HTTP version carries it. */
interface Exchange {
  readonly context: QueryContext;
  readonly method: string;
  readonly target: string;
  readonly contentType: string | undefined;
  readonly contentLength: string | undefined;
  /** An HTTP/1.1 request without a Host header, which RFC 9112 §3.2 answers with 400. */
  readonly hostMissing: boolean;
  readonly body: Readable;
  /** Whether a response has been started. */
  readonly responded: boolean;
  /** Sends a whole response; `bodyUnread` when the request body was not read to its end. */
  respond(
    status: number,
    headers: Record<string, string>,
    body: Uint8Array,
    bodyUnread: boolean,
  ): void;
  /** Cuts the exchange (HTTP/2: RST_STREAM; HTTP/1.1: closes the connection). */
  abort(): void;
  onClose(listener: () => void): void;
}

/** What a request asks for, decided from its method, target and headers alone. */
type Route =
  { kind: 'error'; status: number } | { kind: 'query'; wire: Uint8Array } | { kind: 'body' };

const STATUS_TEXT: Readonly<Record<number, string>> = Object.freeze({
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
});

/** base64url (RFC 4648 §5); RFC 8484 §6 sends it unpadded, padding is tolerated. */
const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

function isPlainPath(path: string): boolean {
  try {
    return new URL(path, 'https://doh.invalid').pathname === path;
  } catch {
    return false;
  }
}

function route(exchange: Exchange, settings: DohSettings): Route {
  // A POST's target is the path itself (no query): the URL parser (4% of a DoH request's CPU in
  // the bench's profile) is not needed to say so.
  let url: URL | undefined;
  if (!settings.plainPath || exchange.target !== settings.path) {
    try {
      url = new URL(exchange.target, 'https://doh.invalid');
    } catch {
      return { kind: 'error', status: 400 };
    }
  }
  if (exchange.hostMissing) return { kind: 'error', status: 400 };
  if (url !== undefined && url.pathname !== settings.path) return { kind: 'error', status: 404 };
  if (exchange.method === 'POST') {
    const mediaType = exchange.contentType?.split(';')[0]?.trim().toLowerCase();
    if (mediaType !== DNS_MESSAGE_MEDIA_TYPE) return { kind: 'error', status: 415 };
    const declared = Number(exchange.contentLength);
    if (exchange.contentLength !== undefined && declared > settings.maxBodyOctets)
      return { kind: 'error', status: 413 };
    return { kind: 'body' };
  }
  if (exchange.method !== 'GET') return { kind: 'error', status: 405 };
  const params = url?.searchParams.getAll('dns') ?? [];
  const encoded = params[0];
  if (params.length !== 1 || encoded === undefined || !BASE64URL.test(encoded))
    return { kind: 'error', status: 400 };
  const unpadded = encoded.replace(/=+$/, '');
  if (unpadded.length === 0 || unpadded.length % 4 === 1) return { kind: 'error', status: 400 };
  if (Math.floor((unpadded.length * 3) / 4) > settings.maxBodyOctets)
    return { kind: 'error', status: 413 };
  return { kind: 'query', wire: Buffer.from(unpadded, 'base64url') };
}

function respondStatus(exchange: Exchange, status: number, bodyUnread: boolean): void {
  const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
  if (status === 405) headers['allow'] = 'GET, POST';
  const text = `${status} ${STATUS_TEXT[status] ?? 'Error'}\n`;
  exchange.respond(status, headers, Buffer.from(text, 'utf8'), bodyUnread);
}

/** `429` with `Retry-After`: a query the gate refused (see the module comment). */
function respondLimited(exchange: Exchange, retryAfter: number): void {
  const headers: Record<string, string> = {
    'content-type': 'text/plain; charset=utf-8',
    'cache-control': 'no-store',
    'retry-after': String(retryAfter),
  };
  exchange.respond(429, headers, Buffer.from(`429 ${STATUS_TEXT[429]}\n`, 'utf8'), false);
}

async function serveExchange(
  exchange: Exchange,
  settings: DohSettings,
  handler: QueryHandler,
  log: Logger,
  cache: AnswerCache | undefined,
  limits: ListenerLimits,
  queryLog: QueryLog | undefined,
): Promise<void> {
  // Until the request is in: past the deadline the client gets 408; if it is still sending a
  // whole timeout later (or after an early error response), the exchange is cut.
  let deadline: NodeJS.Timeout | undefined;
  const onDeadline = (): void => {
    if (exchange.responded) {
      exchange.abort();
      return;
    }
    log.debug('request-timeout', { transport: 'doh' });
    respondStatus(exchange, 408, true);
    deadline = setTimeout(onDeadline, settings.requestTimeoutMs);
  };
  const received = (): void => clearTimeout(deadline);
  deadline = setTimeout(onDeadline, settings.requestTimeoutMs);
  let closed = false;
  exchange.onClose(() => {
    closed = true;
    received();
  });

  const decided = route(exchange, settings);
  let wire: Uint8Array;
  if (decided.kind === 'error') {
    const bodyUnread = exchange.method === 'POST';
    respondStatus(exchange, decided.status, bodyUnread);
    // HTTP/2: let the client finish its upload (the deadline cuts one that does not).
    if (bodyUnread) exchange.body.resume();
    return;
  } else if (decided.kind === 'query') {
    received();
    wire = decided.wire;
  } else {
    const body = await readBody(exchange.body, settings.maxBodyOctets);
    if (body === 'aborted') return received();
    if (body === 'too-large') {
      // Drain whatever else the client sends; the deadline cuts a client that keeps sending.
      exchange.body.resume();
      respondStatus(exchange, 413, true);
      return;
    }
    received();
    if (exchange.responded) return;
    if (body.length === 0) return respondStatus(exchange, 400, false);
    wire = body;
  }
  const result = await answerQuery(wire, {
    handler,
    context: exchange.context,
    log,
    ...(cache === undefined ? {} : { cache }),
    queryLog,
    gate: limits.gate,
    tsig: limits.tsig,
  });
  if (result.kind === 'drop') return respondStatus(exchange, 400, false);
  if (result.limited !== undefined) {
    respondLimited(exchange, result.limited.retryAfter);
    if (!closed) deadline = setTimeout(onDeadline, settings.requestTimeoutMs);
    return;
  }
  const maxAge =
    result.maxAge ?? (result.response === undefined ? 0 : dohCacheMaxAge(result.response));
  exchange.respond(
    200,
    { 'content-type': DNS_MESSAGE_MEDIA_TYPE, 'cache-control': `max-age=${maxAge}` },
    // RFC 8467 §4.1: every response with EDNS padded to a multiple of 468 octets (one without
    // answers a query without EDNS, RFC 6891 §7, and stays as it is).
    padMessage(result.wire, RESPONSE_PADDING_BLOCK_OCTETS),
    false,
  );
  // A client that does not take its answer (an HTTP/2 flow-control window held at zero, an
  // HTTP/1.1 reader of one octet at a time) would keep the exchange — and its connection —
  // busy for ever: it gets `requestTimeoutMs`, then the exchange is cut.
  // (`close` comes in a later turn than the response, so it finds and clears this timer.)
  if (!closed) deadline = setTimeout(onDeadline, settings.requestTimeoutMs);
}

function http2Exchange(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Exchange {
  let responded = false;
  return {
    context: {
      transport: 'doh',
      remoteAddress: stream.session?.socket?.remoteAddress ?? '',
      httpVersion: '2',
    },
    method: headers[':method'] ?? '',
    target: headers[':path'] ?? '',
    contentType: headers['content-type'],
    contentLength: headers['content-length'],
    hostMissing: false,
    body: stream,
    get responded() {
      return responded;
    },
    respond(status, fields, body) {
      if (responded || stream.destroyed || stream.closed) return;
      responded = true;
      try {
        stream.respond({ ':status': status, ...fields, 'content-length': String(body.length) });
        // The body is written first and the stream ended once that write is done, rather than
        // with end(body): the request is in, so the stream closes — and node destroys it — as
        // soon as END_STREAM goes out, before the write of end(body) reports done; a write done
        // on a destroyed stream makes node's Writable (errorBuffer) build an ERR_STREAM_DESTROYED
        // error with its stack trace, whether or not anyone waits for it, for every response.
        // Ending after the write costs an empty DATA frame with END_STREAM, and less CPU than
        // that error (about 5% of a small exchange on the server).
        stream.write(body, (error) => {
          if (error === null || error === undefined) {
            if (!stream.destroyed) stream.end();
          }
        });
      } catch {
        // The connection went away between the check and the response (GOAWAY, reset): the
        // client is gone, there is no one to answer.
        stream.destroy();
      }
    },
    abort() {
      if (!stream.destroyed) stream.close(http2Constants.NGHTTP2_CANCEL);
    },
    onClose(listener) {
      stream.once('close', listener);
    },
  };
}

function http1Exchange(request: IncomingMessage, response: ServerResponse): Exchange {
  const contentType = request.headers['content-type'];
  const contentLength = request.headers['content-length'];
  return {
    context: {
      transport: 'doh',
      remoteAddress: request.socket.remoteAddress ?? '',
      httpVersion: '1.1',
    },
    method: request.method ?? '',
    target: request.url ?? '',
    contentType,
    contentLength,
    hostMissing: request.httpVersionMinor >= 1 && request.headers.host === undefined,
    body: request,
    get responded() {
      return response.headersSent;
    },
    respond(status, fields, body, bodyUnread) {
      if (response.headersSent || response.destroyed) return;
      // A request body left unread would be taken for the next request: close instead.
      const connection: Record<string, string> = bodyUnread ? { connection: 'close' } : {};
      response.writeHead(status, {
        ...fields,
        ...connection,
        'content-length': String(body.length),
      });
      response.end(body);
    },
    abort() {
      request.socket.destroy();
    },
    onClose(listener) {
      response.once('close', listener);
    },
  };
}

/** Listens on `host` with TLS and answers DoH requests through `handler`. */
export async function startDohListener(
  host: string,
  config: DohListenerConfig,
  handler: QueryHandler,
  log: Logger,
  cache?: AnswerCache,
  limits: ListenerLimits = {},
  queryLog?: QueryLog,
): Promise<DohListener> {
  const path = config.path ?? DEFAULT_DOH_PATH;
  const settings: DohSettings = {
    path,
    plainPath: isPlainPath(path),
    maxBodyOctets: config.maxBodyOctets ?? DEFAULT_DOH_MAX_BODY_OCTETS,
    requestTimeoutMs: config.requestTimeoutMs ?? DEFAULT_DOH_REQUEST_TIMEOUT_MS,
  };
  const serve = (exchange: Exchange): void => {
    serveExchange(exchange, settings, handler, log, cache, limits, queryLog).catch(
      (error: unknown) => {
        log.error('doh-exchange-failed', { error });
        exchange.abort();
      },
    );
  };
  // The TLS handshake and an HTTP/1.1 request's headers and whole request each within
  // requestTimeoutMs (node's deadlines); the body and the answer taken by the client are timed
  // by serveExchange, for both versions.
  const server = await startHttpServer(
    {
      listener: 'doh',
      label: 'DoH',
      listenError: (message, cause) =>
        new TransportError('ERR_TRANSPORT_LISTEN', message, { cause }),
      host,
      port: config.port,
      tls: { cert: config.cert, key: config.key },
      http2: { maxConcurrentStreams: DOH_MAX_CONCURRENT_STREAMS },
      connections: connectionLimitsFor(config, {
        maxConnections: DEFAULT_DOH_MAX_CONNECTIONS,
        connectionsPerClient: DEFAULT_DOH_CONNECTIONS_PER_CLIENT,
        idleTimeoutMs: DEFAULT_DOH_IDLE_TIMEOUT_MS,
      }),
      deadlines: {
        handshakeMs: settings.requestTimeoutMs,
        headersMs: settings.requestTimeoutMs,
        requestMs: settings.requestTimeoutMs,
      },
      urlPath: settings.path,
    },
    {
      kind: 'stream',
      http1: (request, response) => serve(http1Exchange(request, response)),
      http2: (stream, headers) => serve(http2Exchange(stream, headers)),
    },
    { log },
  );
  return {
    host,
    port: server.port,
    url: server.url,
    connectionStats: server.connectionStats,
    setTls: server.setTls,
    close: server.close,
  };
}
