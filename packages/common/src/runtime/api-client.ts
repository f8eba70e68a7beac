import { Agent, request } from 'undici';
import { MimiError } from '../protocol/errors.js';
import { isUndiciTimeout, readBoundedBody, retryAfterOf } from './http-response.js';

/**
 * The transport shared by the clients of the project's JSON APIs (the registration API of a DP,
 * the discovery API of a resolver): one request to a route, the response read within a size
 * bound and a deadline, its JSON parsed, and the API's refusal (`{"error": {"code", "message",
 * "detail"?}}` with a 4xx or 5xx status) turned into an error that carries the API's stable
 * code. Each API's own client (`createRegistrationClient` in @mimi-discovery/authoritative,
 * `createDiscoveryClient` in @mimi-discovery/resolver) checks what a success holds.
 *
 * Deadlines, each fixed when it starts so that a server sending one octet at a time cannot push
 * it back: the connection (TCP and TLS) within `connectTimeoutMs`; the response headers within
 * `timeoutMs` of the call, connecting included; the whole body within `timeoutMs` of the
 * headers. Error messages name the route (origin and path), never the query, which may hold a
 * CSI (design §10).
 *
 * Example: `await client.send({ method: 'POST', path: '/v1/prove', body: { csi } })` resolves
 * with `{ status: 202, value: { csi, expiresAt, channel }, … }`; a 429 rejects with an
 * {@link ApiClientError} whose `code` is `ERR_RATE_LIMITED` and `retryAfter` the seconds of
 * `Retry-After`.
 */

/** Codes of the faults on the client's side, which no API answers itself. */
export const API_CLIENT_FAULT_CODES = Object.freeze([
  /** No response: the connection was refused or reset, or TLS failed (an untrusted certificate). */
  'ERR_API_UNREACHABLE',
  /** No whole response within the deadlines of the module comment. */
  'ERR_API_TIMEOUT',
  /**
   * A response that is not the API's: larger than the bound, not JSON, not the shape of the
   * route's result, a refusal with a code the API does not have.
   */
  'ERR_API_RESPONSE',
] as const);

/** A code of {@link API_CLIENT_FAULT_CODES}. */
export type ApiClientFaultCode = (typeof API_CLIENT_FAULT_CODES)[number];

/** The facts of an {@link ApiClientError} besides its code and message. */
export interface ApiClientErrorInit {
  /** The route asked, `https://host:port/v1/prove`: origin and path, never the query. */
  readonly url: string;
  /** The HTTP status, when a response arrived. */
  readonly status?: number;
  /** The API's machine-readable refinement (a field name, a verification reason). */
  readonly detail?: string;
  /** Seconds after which a rate-limited request may succeed (`Retry-After`, RFC 9110 §10.2.3). */
  readonly retryAfter?: number;
  readonly cause?: unknown;
}

/**
 * A request a JSON API refused, with the API's stable code, or a fault of the exchange
 * ({@link API_CLIENT_FAULT_CODES}). `Code` is the API's own codes; each API's client has a
 * subclass that names them.
 */
export class ApiClientError<Code extends string = string> extends MimiError<
  Code | ApiClientFaultCode
> {
  readonly url: string;
  readonly status: number | undefined;
  readonly detail: string | undefined;
  readonly retryAfter: number | undefined;

  constructor(code: Code | ApiClientFaultCode, message: string, init: ApiClientErrorInit) {
    super(code, message, init.cause === undefined ? undefined : { cause: init.cause });
    this.url = init.url;
    this.status = init.status;
    this.detail = init.detail;
    this.retryAfter = init.retryAfter;
  }
}

/**
 * How an API's client makes its errors: its subclass of {@link ApiClientError}, called with a
 * fault code or with one of the API's codes (checked against {@link ApiClientOptions.codes}).
 */
export type ApiClientErrorClass<E extends ApiClientError> = new (
  code: E['code'],
  message: string,
  init: ApiClientErrorInit,
) => E;

/**
 * What a user of an API's client says about the endpoint (the registration client, the discovery
 * client): where it is, whom to trust, and overrides of the client's own limits.
 */
export interface ApiEndpointOptions {
  /** The API's base URL (`https://dp.example:8445`, or with a path prefix). */
  readonly url: string;
  /** PEM CA certificates trusted instead of the system's roots (a local CA). */
  readonly ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array>;
  /** Time for the response headers, and then again for the body; default the client's own. */
  readonly timeoutMs?: number;
  /** Largest response body read; default the client's own. */
  readonly maxResponseOctets?: number;
  /** Most connections open to the API at once; default the client's own. */
  readonly connections?: number;
  /** Called with every response once its body is read (logs, measurements). */
  readonly onResponse?: (response: ApiResponseInfo) => void;
}

/** What {@link createApiClient} needs. */
export interface ApiClientOptions<E extends ApiClientError> {
  /** The API's base URL (`https://dp.example:8445`, or with a path prefix); http or https. */
  readonly url: string;
  /**
   * PEM CA certificates trusted for the API's certificate instead of the system's roots (a local
   * CA, as `init --ca-dir` makes one); default the system's roots.
   */
  readonly ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array>;
  /** Time for the TCP connection and the TLS handshake. */
  readonly connectTimeoutMs: number;
  /** Time for the response headers, and then again for the whole body. */
  readonly timeoutMs: number;
  /** Largest response body read; a larger one is an `ERR_API_RESPONSE`. */
  readonly maxResponseOctets: number;
  /** Offer HTTP/2 in TLS (ALPN `h2`); default false (HTTP/1.1). */
  readonly allowH2?: boolean;
  /** Most connections open to the API at once; further requests wait for one. */
  readonly connections: number;
  /** The API's own error codes: a refusal with another code is an `ERR_API_RESPONSE`. */
  readonly codes: ReadonlySet<string>;
  /** The API's subclass of {@link ApiClientError}. */
  readonly error: ApiClientErrorClass<E>;
  /** Called with every response once its body is read, before it is parsed. */
  readonly onResponse?: (response: ApiResponseInfo) => void;
}

/** A response as {@link ApiClientOptions.onResponse} sees it: for logs and measurements. */
export interface ApiResponseInfo {
  readonly method: 'GET' | 'POST';
  /** The route, `/v1/prove`, without the base URL's prefix or the query. */
  readonly path: string;
  readonly status: number;
  /** Octets of the body. */
  readonly octets: number;
}

/** One request to an API. */
export interface ApiRequest {
  readonly method: 'GET' | 'POST';
  /** The route, `/v1/prove`, under the base URL. */
  readonly path: string;
  /** Query parameters (form-encoded). */
  readonly query?: Readonly<Record<string, string>>;
  /** For POST: sent as `application/json`. */
  readonly body?: unknown;
  /** Overrides {@link ApiClientOptions.maxResponseOctets} for this request. */
  readonly maxResponseOctets?: number;
}

/** A response that is not a refusal: a 2xx, or anything without the API's error shape. */
export interface ApiAnswer {
  /** Origin and path of the request, for messages: `https://host:port/v1/prove`. */
  readonly url: string;
  readonly status: number;
  /** The parsed JSON; undefined when the body is not JSON. */
  readonly value: unknown;
}

/** A connection pool to one API. */
export interface ApiClient {
  /** The base URL, as given. */
  readonly url: string;
  /**
   * Sends `request`. Resolves with the response unless it is the API's refusal; rejects with
   * the API's error for a refusal, and with a fault code when no whole response came.
   */
  send(request: ApiRequest): Promise<ApiAnswer>;
  /** Closes the connections; requests under way fail. */
  close(): Promise<void>;
}

/** The body of a refusal (design §7, §8): `{"error": {"code", "message", "detail"?}}`. */
interface Refusal {
  readonly code: string;
  readonly message: string;
  readonly detail: string | undefined;
}

/**
 * A client of the API at `options.url`. Throws a `TypeError` for a URL that is not http or
 * https: a mistake of the caller, not a fault of the API.
 */
export function createApiClient<E extends ApiClientError>(options: ApiClientOptions<E>): ApiClient {
  const base = parseBaseUrl(options.url);
  const ca = options.ca === undefined ? undefined : caList(options.ca);
  const agent = new Agent({
    connectTimeout: options.connectTimeoutMs,
    // Undici's body bound counts from the last octet received; the deadlines of `send` are fixed
    // when they start. Both are kept: undici's fail sooner on a silent connection.
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    allowH2: options.allowH2 === true,
    connections: options.connections,
    ...(ca === undefined ? {} : { connect: { ca } }),
  });
  // Every subclass's codes include the fault codes (`ApiClientError<Code>['code']`).
  const fault = (code: ApiClientFaultCode, message: string, init: ApiClientErrorInit): E =>
    new options.error(code as E['code'], message, init);

  const send = async (req: ApiRequest): Promise<ApiAnswer> => {
    const target = new URL(req.path.replace(/^\//, ''), base);
    for (const [name, value] of Object.entries(req.query ?? {})) {
      target.searchParams.set(name, value);
    }
    const url = `${target.origin}${target.pathname}`;
    const max = req.maxResponseOctets ?? options.maxResponseOctets;
    const deadline = new AbortController();
    const timedOut = new Error(`no whole response within ${options.timeoutMs} ms`);
    let timer = setTimeout(() => deadline.abort(timedOut), options.timeoutMs);
    const failed = (error: unknown): E =>
      deadline.signal.aborted || isUndiciTimeout(error)
        ? fault('ERR_API_TIMEOUT', `${url}: no whole response within ${options.timeoutMs} ms`, {
            url,
            cause: deadline.signal.aborted ? timedOut : error,
          })
        : fault('ERR_API_UNREACHABLE', `cannot reach ${target.origin}: ${messageOf(error)}`, {
            url,
            cause: error,
          });
    try {
      let response: Awaited<ReturnType<typeof request>>;
      try {
        response = await request(target, {
          dispatcher: agent,
          method: req.method,
          signal: deadline.signal,
          headers: {
            accept: 'application/json',
            ...(req.method === 'POST' ? { 'content-type': 'application/json' } : {}),
          },
          ...(req.method === 'POST' ? { body: JSON.stringify(req.body ?? {}) } : {}),
        });
      } catch (error) {
        throw failed(error);
      }
      // The body gets a deadline of its own, fixed now.
      clearTimeout(timer);
      timer = setTimeout(() => deadline.abort(timedOut), options.timeoutMs);
      const status = response.statusCode;
      const text = await readBounded(response, max, url, status, fault, failed);
      options.onResponse?.({
        method: req.method,
        path: `/${req.path.replace(/^\//, '')}`,
        status,
        octets: Buffer.byteLength(text),
      });
      const value = parseJson(text);
      if (status >= 200 && status <= 299) return { url, status, value };
      const refusal = refusalOf(value);
      if (refusal === undefined) return { url, status, value };
      if (!options.codes.has(refusal.code)) {
        throw fault(
          'ERR_API_RESPONSE',
          `${url} answered HTTP ${status} with a code the API does not have: ${refusal.code}`,
          { url, status },
        );
      }
      const retryAfter = retryAfterOf(response.headers);
      // One of the API's codes: checked against `options.codes` just above.
      throw new options.error(refusal.code as E['code'], refusal.message, {
        url,
        status,
        ...(refusal.detail === undefined ? {} : { detail: refusal.detail }),
        ...(retryAfter === undefined ? {} : { retryAfter }),
      });
    } finally {
      clearTimeout(timer);
    }
  };

  return { url: options.url, send, close: () => agent.close() };
}

/** The base URL with a trailing slash, so that routes resolve under its path. */
function parseBaseUrl(url: string): URL {
  let base: URL;
  try {
    base = new URL(url);
  } catch {
    throw new TypeError(`${JSON.stringify(url)} is not a URL`);
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw new TypeError(`${JSON.stringify(url)} is not an http or https URL`);
  }
  base.search = '';
  base.hash = '';
  if (!base.pathname.endsWith('/')) base.pathname = `${base.pathname}/`;
  return base;
}

function caList(ca: NonNullable<ApiClientOptions<ApiClientError>['ca']>): Array<string | Buffer> {
  const one = (pem: string | Uint8Array): string | Buffer =>
    typeof pem === 'string' ? pem : Buffer.from(pem);
  return typeof ca === 'string' || ca instanceof Uint8Array ? [one(ca)] : ca.map(one);
}

/**
 * The body as text, refused once it passes `max` octets ({@link readBoundedBody}); a failure
 * while reading is `failed(error)`.
 */
async function readBounded<E extends ApiClientError>(
  response: Awaited<ReturnType<typeof request>>,
  max: number,
  url: string,
  status: number,
  fault: (code: ApiClientFaultCode, message: string, init: ApiClientErrorInit) => E,
  failed: (error: unknown) => E,
): Promise<string> {
  let body: Buffer | undefined;
  try {
    body = await readBoundedBody(response, max);
  } catch (error) {
    throw failed(error);
  }
  if (body === undefined) {
    throw fault('ERR_API_RESPONSE', `${url} answered more than ${max} octets`, { url, status });
  }
  return body.toString('utf8');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function refusalOf(value: unknown): Refusal | undefined {
  const error = isJsonObject(value) ? value['error'] : undefined;
  if (!isJsonObject(error)) return undefined;
  const { code, message, detail } = error;
  if (typeof code !== 'string' || typeof message !== 'string') return undefined;
  return { code, message, detail: typeof detail === 'string' ? detail : undefined };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A plain JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
