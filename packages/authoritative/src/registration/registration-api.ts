import { REGISTRATION_ROUTES } from './routes.js';
import {
  CONNECTIONS_PER_CLIENT_SHARE,
  clientKeyOf,
  connectionLimitsFor,
  jsonErrorBody,
  readJsonBody,
  sendJson,
  silentLogger,
  startHttpServer,
  ListenError,
  type ConnectionScheduler,
  type ConnectionStats,
  type HttpRequest,
  type HttpResponse,
  type JsonBodyLimits,
  type JsonResponse,
  type Logger,
  type RawErrorKind,
  type ResponseOptions,
  type StaticSite,
} from '@mimi-discovery/common';
import { servePage } from './recipient-page.js';
import { RegistrationError, type RegistrationErrorCode } from './registration-error.js';
import type { Registrar } from './registration.js';

/**
 * The registration API of a Discovery Provider over HTTPS (design §8): JSON in, JSON out, byte
 * strings as base64url without padding.
 *
 * | route                  | body                        | success                                     |
 * | ---------------------- | --------------------------- | ------------------------------------------- |
 * | `POST /v1/prove`       | `{csi}` (as typed)          | 202 `{csi, expiresAt, channel}`             |
 * | `POST /v1/confirm`     | `{csi, code, key}`          | 200 `{attestation, prover, nbf, exp}`       |
 * | `POST /v1/mappings`    | `{csi, mapping}` (Mapping)  | 201 `{zone, name, serial}`                  |
 * | `POST /v1/maprefs`     | `{request}` (MapRef req.)   | 201 `{zone, name, serial}`                  |
 * | `POST /v1/removals`    | `{removal}`                 | 200 `{zone, name, serial}`                  |
 * | `POST /v1/revocations` | `{revocation}`              | 200 `{zone, name, serial, removed}`         |
 * | `POST /v1/credentials` | `{csi, request}` (Cred.req.) | 200 `{format, credential, issuer?}`         |
 *
 * Errors: `{"error": {"code": "ERR_…", "message": "…", "detail"?: "…"}}` with the status of
 * the code (registration-error.ts); a 429 carries `Retry-After`, a 405 `Allow`.
 *
 * The recipient page (`recipient-page.ts`), when the DP serves it: a GET or HEAD of
 * `/recipient/…` gets the page's file (its own security headers: no inline script, no framing),
 * `/` redirects there; these are answered before the route lookup, and everything else goes on
 * to the routes.
 *
 * The request is checked in this order: route (404), method (405), content type
 * `application/json` (415), size (413, from `Content-Length` before reading, else while
 * reading), JSON (400 `ERR_BAD_JSON`), fields (400 `ERR_BAD_REQUEST` naming the unknown,
 * missing or ill-typed field), then the registrar.
 *
 * Slow clients: a connection must complete its TLS handshake within `headersTimeoutMs` of its
 * accept, deliver its request headers within `headersTimeoutMs` of the handshake, and then its
 * body within `bodyTimeoutMs`, or it gets a 408 and is closed; each deadline is fixed when it
 * starts, so bytes sent one at a time do not push it back. Each connection carries one request
 * (`Connection: close`): registrations are rare, and one request per connection keeps these
 * bounds simple. A connection with no request in progress is closed {@link API_IDLE_TIMEOUT_MS}
 * after its accept or its response, whatever it sends.
 *
 * Connections: at most `maxConnections`, and `connectionsPerClient` per client (IPv4 address,
 * IPv6 /64); a connection past its client's share is closed at accept, before its TLS
 * handshake, and a full API evicts the oldest idle connection of the client holding the most
 * (`connection-limits.ts` in `@mimi-discovery/common`).
 *
 * TLS: with `tls`, the API speaks HTTPS. Without it, plain HTTP, meant for local development
 * or behind a TLS-terminating proxy on the same host (design R7: everything is encrypted in
 * transit). Behind a proxy, every request seems to come from the proxy's address, so the
 * per-client rate limit counts the proxy as one client.
 *
 * The client, for rate limiting, is the socket's remote address (IPv6 by /64). Logs never put
 * the client address and a CSI on one line (design §10): request lines carry the route and
 * the outcome only.
 *
 * Listening, TLS, the connection gate, the deadlines, JSON bodies, the error shape (also for a
 * request node cannot parse, with no request object) and the sending of responses are those of
 * the HTTP server scaffold (`http-server.ts` in `@mimi-discovery/common`); this module holds the
 * routes and their handlers.
 */

/** Largest request body accepted, in octets. */
export const MAX_BODY_OCTETS = 64 * 1024;
/** Time allowed for a connection to deliver its request headers, in milliseconds. */
export const HEADERS_TIMEOUT_MS = 10_000;
/** Time allowed for the request body once the headers are in, in milliseconds. */
export const BODY_TIMEOUT_MS = 10_000;
/** Largest request header section, in octets. */
export const MAX_HEADER_OCTETS = 16 * 1024;
/**
 * Connections held at once; past it the oldest idle connection of the client holding the most
 * is evicted, or the new one refused, so slow clients cannot pile up.
 */
export const MAX_API_CONNECTIONS = 512;
/**
 * Connections one client (IPv4 address, IPv6 /64) holds at once: an eighth of
 * {@link MAX_API_CONNECTIONS}. Apps behind one carrier-grade NAT address share it, but each
 * holds its connection for one request.
 */
export const API_CONNECTIONS_PER_CLIENT = MAX_API_CONNECTIONS / CONNECTIONS_PER_CLIENT_SHARE;
/**
 * A connection with no request in progress is closed this long after its accept or its
 * response: a backstop behind the handshake and headers deadlines (at most 2 ×
 * {@link HEADERS_TIMEOUT_MS} together), for a client that never closes after its response.
 */
export const API_IDLE_TIMEOUT_MS = 30_000;

/** Schedules `fn` after `ms` milliseconds; returns a function that cancels it. */
export type Scheduler = ConnectionScheduler;

/** Where and how the API listens. */
export interface RegistrationApiOptions {
  /** Default `127.0.0.1`. */
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** PEM certificate chain and key: HTTPS. Without it: plain HTTP (see the module comment). */
  readonly tls?: { readonly cert: string | Uint8Array; readonly key: string | Uint8Array };
  readonly headersTimeoutMs?: number;
  readonly bodyTimeoutMs?: number;
  readonly maxBodyOctets?: number;
  /** Default {@link MAX_API_CONNECTIONS}. */
  readonly maxConnections?: number;
  /** Default {@link API_CONNECTIONS_PER_CLIENT}, or `maxConnections` when that is smaller. */
  readonly connectionsPerClient?: number;
}

/** Components of the API. */
export interface RegistrationApiComponents {
  readonly log?: Logger;
  /** Timers for the slow-client bounds; default `setTimeout`. */
  readonly schedule?: Scheduler;
  /**
   * The recipient page (`recipient-page.ts`), served at `/recipient/` with a redirect from `/`:
   * a GET or HEAD of its paths is answered before the route lookup. Without it, the API only.
   */
  readonly page?: StaticSite;
}

/** A running registration API. */
export interface RegistrationApi {
  /** `http://127.0.0.1:<port>` or `https://…`. */
  readonly url: string;
  readonly port: number;
  /** Connections open now, refused and closed by reason since the start. */
  connectionStats(): ConnectionStats;
  /** New TLS handshakes use this certificate and key (`HttpServer.setTls`); open connections keep theirs. */
  setTls(tls: { cert: string | Uint8Array; key: string | Uint8Array }): void;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

type FieldKind = 'string' | 'bytes';
type Body = Readonly<Record<string, string | Uint8Array>>;

interface Route {
  readonly fields: Readonly<Record<string, FieldKind>>;
  readonly status: number;
  readonly handle: (body: Body, client: string) => Promise<Readonly<Record<string, unknown>>>;
}

/**
 * What every response carries, also one to a request node cannot parse: one request per
 * connection, nothing cached.
 */
const RESPONSE_HEADERS = Object.freeze({ 'cache-control': 'no-store', connection: 'close' });
/** The options of every response: its headers. */
const RESPONSES: ResponseOptions = Object.freeze({ headers: RESPONSE_HEADERS });

/** The code a request node cannot parse is answered with, by why. */
const RAW_ERROR_CODES: Readonly<Record<RawErrorKind, RegistrationErrorCode>> = Object.freeze({
  timeout: 'ERR_TIMEOUT',
  'headers-too-large': 'ERR_HEADERS_TOO_LARGE',
  'bad-request': 'ERR_BAD_REQUEST',
});

/** Starts the registration API; resolves once it listens. */
export async function startRegistrationApi(
  options: RegistrationApiOptions,
  registrar: Registrar,
  components: RegistrationApiComponents = {},
): Promise<RegistrationApi> {
  const log = components.log ?? silentLogger;
  const schedule = components.schedule === undefined ? {} : { schedule: components.schedule };
  const headersTimeout = options.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
  const bodyTimeout = options.bodyTimeoutMs ?? BODY_TIMEOUT_MS;
  const routes = createRoutes(registrar);
  const bodyLimits: JsonBodyLimits = {
    maxBodyOctets: options.maxBodyOctets ?? MAX_BODY_OCTETS,
    timeoutMs: bodyTimeout,
    ...schedule,
    refuse: (code, message, cause) => new RegistrationError(code, message, { cause }),
  };

  const handle = async (req: HttpRequest, res: HttpResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const started = performance.now();
    let outcome: { status: number; code?: string };
    // The page's files first: its paths are not routes, and a POST route is never a page path.
    if (components.page !== undefined && servePage(components.page, req, res, RESPONSES)) {
      log.debug('page', { path: pagePathForLog(path), status: res.statusCode });
      return;
    }
    try {
      const route = routes.get(path);
      if (route === undefined) throw new RegistrationError('ERR_ROUTE_NOT_FOUND');
      if (req.method !== 'POST') {
        throw new RegistrationError('ERR_METHOD_NOT_ALLOWED', `${path} accepts POST only`);
      }
      const body = parseFields(await readJsonBody(req, bodyLimits), route.fields);
      const client = clientKeyOf(req.socket.remoteAddress ?? 'unknown');
      const result = await route.handle(body, client);
      sendJson(req, res, { status: route.status, body: { value: result } }, RESPONSES);
      outcome = { status: route.status };
    } catch (error) {
      const response = errorResponse(error);
      if (response.status >= 500) log.error('request-failed', { route: path, error });
      sendJson(req, res, response, RESPONSES);
      outcome = { status: response.status, code: response.code };
    }
    log.info('request', {
      route: path,
      ...outcome,
      ms: Math.round(performance.now() - started),
    });
  };

  const server = await startHttpServer(
    {
      listener: 'api',
      label: 'registration API',
      listenError: (message, cause) => new ListenError('ERR_API_LISTEN', message, { cause }),
      host: options.host ?? '127.0.0.1',
      port: options.port,
      tls: options.tls,
      connections: connectionLimitsFor(options, {
        maxConnections: MAX_API_CONNECTIONS,
        connectionsPerClient: API_CONNECTIONS_PER_CLIENT,
        idleTimeoutMs: API_IDLE_TIMEOUT_MS,
      }),
      deadlines: {
        handshakeMs: headersTimeout,
        // Node's own bounds stay as a backstop behind the headers and body deadlines.
        headersMs: headersTimeout + 1000,
        requestMs: headersTimeout + bodyTimeout + 5000,
      },
      maxHeaderOctets: MAX_HEADER_OCTETS,
      rawErrors: {
        headersTimeoutMs: headersTimeout,
        errorFor: (kind) => new RegistrationError(RAW_ERROR_CODES[kind]),
        headers: RESPONSE_HEADERS,
      },
    },
    { kind: 'request', request: (req, res) => void handle(req, res) },
    { log, ...schedule },
  );
  return {
    url: server.url,
    port: server.port,
    connectionStats: server.connectionStats,
    setTls: server.setTls,
    close: server.close,
  };
}

/**
 * A page path as logged: a file name of the page, or `other` for a path of no file (a client
 * may put anything in a URL; the log keeps no free text from it).
 */
function pagePathForLog(path: string): string {
  return /^\/(recipient\/?([A-Za-z0-9._-]{1,64})?)?$/.test(path) ? path : 'other';
}

/** The routes, each with its fields and the registrar call. */
function createRoutes(registrar: Registrar): ReadonlyMap<string, Route> {
  const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
  const bytes = (body: Body, field: string): Uint8Array => body[field] as Uint8Array;
  const text = (body: Body, field: string): string => body[field] as string;
  return new Map<string, Route>([
    [
      REGISTRATION_ROUTES.prove.path,
      {
        fields: { csi: 'string' },
        status: REGISTRATION_ROUTES.prove.status,
        handle: async (body, client) => {
          const r = await registrar.prove({ csi: text(body, 'csi') }, client);
          return { csi: r.csi, expiresAt: r.expiresAt, channel: r.channel };
        },
      },
    ],
    [
      REGISTRATION_ROUTES.confirm.path,
      {
        fields: { csi: 'string', code: 'string', key: 'bytes' },
        status: REGISTRATION_ROUTES.confirm.status,
        handle: async (body, client) => {
          const r = await registrar.confirm(
            { csi: text(body, 'csi'), code: text(body, 'code'), key: bytes(body, 'key') },
            client,
          );
          return { attestation: b64(r.encoded), prover: b64(r.prover), nbf: r.nbf, exp: r.exp };
        },
      },
    ],
    [
      REGISTRATION_ROUTES.mappings.path,
      {
        fields: { csi: 'string', mapping: 'bytes' },
        status: REGISTRATION_ROUTES.mappings.status,
        handle: async (body, client) => ({
          ...(await registrar.publishMapping(
            { csi: text(body, 'csi'), mapping: bytes(body, 'mapping') },
            client,
          )),
        }),
      },
    ],
    [
      REGISTRATION_ROUTES.maprefs.path,
      {
        fields: { request: 'bytes' },
        status: REGISTRATION_ROUTES.maprefs.status,
        handle: async (body, client) => ({
          ...(await registrar.publishMapref(bytes(body, 'request'), client)),
        }),
      },
    ],
    [
      REGISTRATION_ROUTES.removals.path,
      {
        fields: { removal: 'bytes' },
        status: REGISTRATION_ROUTES.removals.status,
        handle: async (body, client) => ({
          ...(await registrar.remove(bytes(body, 'removal'), client)),
        }),
      },
    ],
    [
      REGISTRATION_ROUTES.revocations.path,
      {
        fields: { revocation: 'bytes' },
        status: REGISTRATION_ROUTES.revocations.status,
        handle: async (body, client) => ({
          ...(await registrar.revoke(bytes(body, 'revocation'), client)),
        }),
      },
    ],
    [
      REGISTRATION_ROUTES.credentials.path,
      {
        fields: { csi: 'string', request: 'bytes' },
        status: REGISTRATION_ROUTES.credentials.status,
        handle: async (body, client) => ({
          ...(await registrar.credential(
            { csi: text(body, 'csi'), request: bytes(body, 'request') },
            client,
          )),
        }),
      },
    ],
  ]);
}

/** The route's fields of a parsed JSON body: exactly those, each of its kind. */
function parseFields(value: unknown, fields: Readonly<Record<string, FieldKind>>): Body {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RegistrationError('ERR_BAD_REQUEST', 'the body must be a JSON object');
  }
  const input = value as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (!Object.hasOwn(fields, key)) {
      throw new RegistrationError('ERR_BAD_REQUEST', `unknown field "${key}"`, { detail: key });
    }
  }
  const body: Record<string, string | Uint8Array> = {};
  for (const [key, kind] of Object.entries(fields)) {
    if (!Object.hasOwn(input, key)) {
      throw new RegistrationError('ERR_BAD_REQUEST', `missing field "${key}"`, { detail: key });
    }
    const field = input[key];
    if (typeof field !== 'string') {
      throw new RegistrationError('ERR_BAD_REQUEST', `field "${key}" must be a string`, {
        detail: key,
      });
    }
    body[key] = kind === 'bytes' ? decodeBase64url(field, key) : field;
  }
  return body;
}

/** Strict base64url (RFC 4648 §5) without padding, non-empty, in its one canonical spelling. */
function decodeBase64url(value: string, field: string): Uint8Array {
  const bytes = /^[A-Za-z0-9_-]+$/.test(value) ? Buffer.from(value, 'base64url') : undefined;
  if (bytes === undefined || bytes.length === 0 || bytes.toString('base64url') !== value) {
    throw new RegistrationError(
      'ERR_BAD_REQUEST',
      `field "${field}" must be base64url without padding`,
      { detail: field },
    );
  }
  return new Uint8Array(bytes);
}

/** The JSON error response for anything thrown while handling a request. */
function errorResponse(error: unknown): JsonResponse & { readonly code: string } {
  const e = error instanceof RegistrationError ? error : new RegistrationError('ERR_INTERNAL');
  const headers: Record<string, string> = {};
  if (e.retryAfter !== undefined) headers['retry-after'] = String(e.retryAfter);
  if (e.code === 'ERR_METHOD_NOT_ALLOWED') headers['allow'] = 'POST';
  return { status: e.status, code: e.code, body: { value: jsonErrorBody(e) }, headers };
}
