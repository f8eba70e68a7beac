import { monotonicMs } from './deadline.js';
import {
  CONNECTIONS_PER_CLIENT_SHARE,
  CsiError,
  MimiError,
  connectionLimitsFor,
  jsonErrorBody,
  parseCsi,
  readJsonBody,
  sendJson,
  silentLogger,
  startHttpServer,
  ListenError,
  isContext,
  type ConnectionStats,
  type HttpRequest,
  type HttpResponse,
  type JsonBodyLimits,
  type JsonResponse,
  type Csi,
  type Logger,
  type ResponseOptions,
  type StaticSite,
} from '@mimi-discovery/common';
import {
  createClientLimits,
  type LimitOutcome,
  type ResolverClientLimits,
} from './front-end-limits.js';
import type { ResolverMetrics } from './metrics.js';
import { resultJsonText } from './result-json.js';
import { CsiMemo } from './csi-memo.js';
import { PARSED_CSI_CACHE_OCTETS } from './limits.js';
import type { DiscoverOptions, DiscoveryResult, DiscoveryResultsJson, Resolver } from './types.js';

/**
 * The resolver's JSON API for MSP back ends (design §7): the verified discovery results of
 * design §6 over HTTPS, HTTP/2 or HTTP/1.1 on one TLS port (ALPN `h2`, `http/1.1`).
 *
 * | request                                          | success                                   |
 * | ------------------------------------------------ | ----------------------------------------- |
 * | `GET /v1/discover?csi=<as typed>[&context=<c>]`  | 200 one `DiscoveryResult`                 |
 * | `POST /v1/discover` `{"csis": [...], "context"?}` | 200 `{"results": [...]}`, one per CSI, in order |
 *
 * A result is `{ csi, status, msps, mappings, ttl, stale?, error? }` (`types.ts`,
 * `result-json.ts`), with status `none`, `empty`, `found` or `error`: a resolution that failed
 * (bogus, timeout, limit) is a 200 with an `error` result, since the request itself was fine.
 * `msps` ranks every entry the sender may use in the recipient's order; mappings come in the
 * same order, with their sealed boxes (`sealed`, base64url) as served, unread. Every 200 carries
 * `cache-control: max-age=<ttl>`, the smallest TTL of its results (0 for an empty batch).
 *
 * The sender: `context` (`personal`, `business` or `ctx:<name>`, at most once) keeps the entries
 * for that context and those for every context; the resolver's own MSP identity (config `msp`)
 * keeps the `same-msp` entries of that MSP and drops the others' (all of them without an
 * identity). Filters never change a status: `found` with `msps: []` is "reachable, but not by
 * this sender". An audience key is never sent: a client opens boxes itself (`open-sealed.ts`).
 *
 * Request errors are 4xx `{"error": {"code", "message", "detail"?}}` with `cache-control:
 * no-store`, checked in this order: the client's request rate (429 `ERR_RATE_LIMITED`, below),
 * route (404 `ERR_NOT_FOUND`), method (405 `ERR_METHOD_NOT_ALLOWED`, with `Allow: GET, POST`);
 * for GET the query string (400 `ERR_BAD_REQUEST`: `csi` missing or given twice, `context`
 * given twice, another parameter, bad percent-encoding; then a `context` that is not one,
 * `detail` `context`) and the CSI (400 `ERR_CSI_INVALID`, `detail` the parser's code such as
 * `ERR_CSI_PHONE_INVALID`); for POST the content type `application/json` (415
 * `ERR_UNSUPPORTED_MEDIA_TYPE`), the size (413 `ERR_BODY_TOO_LARGE`, from `content-length`
 * before reading, else while reading), JSON (400 `ERR_BAD_JSON`), the fields (400
 * `ERR_BAD_REQUEST`: not an object, an unknown field, `csis` missing or not a list of strings),
 * the batch size (413 `ERR_BATCH_TOO_LARGE` beyond `maxBatch`) and `context` (400
 * `ERR_BAD_REQUEST`, `detail` `context`: not a string that is a context); then, for both, the
 * client's new-names budget (429 `ERR_RATE_LIMITED`). A body not received within
 * `requestTimeoutMs` gets 408 `ERR_TIMEOUT`; a fault of the resolver 500 `ERR_INTERNAL`.
 *
 * A single CSI that is not a CSI is the request's fault, so GET answers 400; in a batch it is
 * one CSI among many (a contact list holds typos), so it gets a per-item result `{ csi: <as
 * given>, status: "error", error: { reason: "invalid-csi", … } }` and the others are resolved.
 *
 * In the query string, `+` means a space (form encoding, as HTTP clients write it:
 * `csi=%2B44+20+7946+0018`), except a `+` at the very start of the value, which is kept as a
 * plus sign: a leading space means nothing in a CSI, and people type `?csi=+442079460018`.
 *
 * Slow clients, each deadline fixed when it starts so that bytes sent one at a time cannot push
 * it back: the TLS handshake within `requestTimeoutMs` of the accept (node's
 * `handshakeTimeout`); an HTTP/1.1 request's headers within `requestTimeoutMs` of its first
 * octet and the whole request within twice that (node's `headersTimeout`, `requestTimeout`); a POST body
 * within `requestTimeoutMs` of the request (408 `ERR_TIMEOUT`, both versions); the whole
 * response taken by the client within `requestTimeoutMs` of its start, or the exchange is cut.
 * A connection with no request in progress (HTTP/1.1: between requests; HTTP/2: no open stream, whatever frames
 * arrive) is closed `idleTimeoutMs` after its accept or its last response. An HTTP/2 session has
 * at most {@link API_MAX_CONCURRENT_STREAMS} streams open at once.
 *
 * Connections: at most `maxConnections`, and `connectionsPerClient` per client (IPv4 address,
 * IPv6 /64); a connection past its client's share is closed at accept, before its TLS
 * handshake, and a full API evicts the oldest idle connection of the client holding the most
 * (`connection-limits.ts` in `@mimi-discovery/common`).
 *
 * Per-client limits (R8, `front-end-limits.ts`; a client is an IPv4 address or an IPv6 /64):
 * every request takes a token of its client's request rate, checked first, before the route; the
 * CSIs of a GET or a POST are charged to the client's new-names budget before anything is
 * resolved, one token per CSI the client has not asked for in the last day (a CSI that is not a
 * CSI costs nothing). Over either limit the request gets 429 `ERR_RATE_LIMITED` with
 * `Retry-After` (seconds) and `detail` `requests` or `new-csis`; a batch whose new CSIs do not
 * all fit is refused whole and charges nothing, so the client can retry it, or a smaller one,
 * later. Clients in the limits' `exempt` ranges (trusted back ends) are never limited.
 *
 * The oblivious gateway (`gateway/gateway.ts`), when the server mounts it, serves its routes on
 * this port (`/.well-known/ohttp-gateway`, `/.well-known/odohconfigs`, `/dns-query`): each outer
 * request takes a token of its client's request rate (the relay's), like any request; its inner
 * discoveries go through the same {@link DiscoverRoute} as `/v1/discover`, their CSIs charged to
 * the request's Privacy Pass token instead of an address.
 *
 * The lookup page (`lookup-page.ts`), when the server mounts it, is served on this port under
 * `/lookup/` (GET and HEAD; the files of the built page, from memory): each request for one of
 * its files takes a token of its client's request rate, like any request, and the page's own
 * lookups are plain `GET /v1/discover` requests, limited like every other.
 *
 * Privacy (design §10, R6): request logs hold the route, the status, the number of CSIs and the
 * time taken; never a CSI, and never the client address.
 *
 * Listening, TLS with ALPN, the connection gate, the deadlines, JSON bodies, the error shape and
 * the sending of responses are those of the HTTP server scaffold (`http-server.ts` in
 * `@mimi-discovery/common`); this module holds the route and its handler.
 */

/** Default most CSIs in one POST (contact sync). */
export const DEFAULT_MAX_BATCH = 1000;
/** Octets of body allowed per CSI of the batch bound (a CSI is at most 320 characters). */
export const BODY_OCTETS_PER_CSI = 512;
/** Smallest body bound, whatever the batch bound. */
export const MIN_MAX_BODY_OCTETS = 64 * 1024;
/** Default time for a client to deliver a whole request (TLS handshake, headers, body). */
export const DEFAULT_API_REQUEST_TIMEOUT_MS = 10_000;
/** Default time a connection may go without a request in progress before it is closed. */
export const DEFAULT_API_IDLE_TIMEOUT_MS = 30_000;
/**
 * Default most TLS connections at once; past it the oldest idle connection of the client
 * holding the most is evicted, or the new one refused.
 */
export const DEFAULT_API_MAX_CONNECTIONS = 1024;
/**
 * Default most connections of one client (IPv4 address, IPv6 /64) at once: an eighth of the
 * cap. An MSP back end needs a few (HTTP/2 multiplexes its requests on one).
 */
export const DEFAULT_API_CONNECTIONS_PER_CLIENT =
  DEFAULT_API_MAX_CONNECTIONS / CONNECTIONS_PER_CLIENT_SHARE;
/** Most concurrent HTTP/2 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS, RFC 9113 §6.5.2). */
export const API_MAX_CONCURRENT_STREAMS = 100;
/** The route of both requests. */
export const DISCOVER_PATH = '/v1/discover';

/** Every error code of the API, with its HTTP status. */
export const JSON_API_ERRORS = Object.freeze({
  ERR_NOT_FOUND: 404,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_BODY_TOO_LARGE: 413,
  ERR_BATCH_TOO_LARGE: 413,
  ERR_BAD_JSON: 400,
  ERR_BAD_REQUEST: 400,
  ERR_CSI_INVALID: 400,
  ERR_TIMEOUT: 408,
  ERR_RATE_LIMITED: 429,
  ERR_INTERNAL: 500,
} as const);

/** A code of {@link JSON_API_ERRORS}. */
export type JsonApiErrorCode = keyof typeof JSON_API_ERRORS;

/** A request the API refuses; `status` is the HTTP status of its code. */
export class JsonApiError extends MimiError<JsonApiErrorCode> {
  readonly status: number;
  /** A machine-readable detail: the field at fault, the CSI parser's code, or the limit. */
  readonly detail: string | undefined;
  /** For `ERR_RATE_LIMITED`: whole seconds until the request may pass (`Retry-After`). */
  readonly retryAfter: number | undefined;

  constructor(
    code: JsonApiErrorCode,
    message: string,
    options: { detail?: string; cause?: unknown; retryAfter?: number } = {},
  ) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = JSON_API_ERRORS[code];
    this.detail = options.detail;
    this.retryAfter = options.retryAfter;
  }
}

/** Where and how the API listens. */
export interface JsonApiOptions {
  /** Default `127.0.0.1`. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Certificate chain and private key, PEM. */
  cert: string | Uint8Array;
  key: string | Uint8Array;
  /** Most CSIs in one POST; default {@link DEFAULT_MAX_BATCH}. */
  maxBatch?: number;
  /** Largest POST body; default max({@link MIN_MAX_BODY_OCTETS}, maxBatch × {@link BODY_OCTETS_PER_CSI}). */
  maxBodyOctets?: number;
  /** Default {@link DEFAULT_API_REQUEST_TIMEOUT_MS}. */
  requestTimeoutMs?: number;
  /** Default {@link DEFAULT_API_IDLE_TIMEOUT_MS}. */
  idleTimeoutMs?: number;
  /** Default {@link DEFAULT_API_MAX_CONNECTIONS}. */
  maxConnections?: number;
  /**
   * Default {@link DEFAULT_API_CONNECTIONS_PER_CLIENT}, or `maxConnections` when that is
   * smaller.
   */
  connectionsPerClient?: number;
}

/** What the API uses besides its options. */
export interface JsonApiComponents {
  log?: Logger;
  /** Records discoveries, durations and request statuses. */
  metrics?: ResolverMetrics;
  /**
   * The per-client limits, shared with the DNS front ends of the same server; default limits of
   * the API's own with every default (`front-end-limits.ts`).
   */
  limits?: ResolverClientLimits;
  /**
   * Records the results of each discovery, and where its request came from (the query log's
   * `api` lines, `server.ts`); default none.
   */
  lookupLog?: LookupLog;
  /**
   * Mounts the oblivious gateway (`gateway/gateway.ts`) on the API's port: its routes are
   * served beside `/v1/discover`, each outer request counted against the client's request rate
   * like any other; absent: no gateway.
   */
  gateway?: (mount: GatewayMount) => GatewayRoutes;
  /**
   * The lookup page (`lookup-page.ts`), served under its mount on the API's port (GET and
   * HEAD); absent: no page.
   */
  page?: StaticSite;
}

/** Where a discovery came from: the JSON API itself, or a request inside Oblivious HTTP. */
export interface LookupSource {
  readonly transport: 'api' | 'ohttp';
  /** The peer of the outer connection (the relay) for `ohttp`; never set for `api`. */
  readonly peer?: string;
}

/** Receives the results of one discovery request (GET: one result; POST: the batch's). */
export type LookupLog = (results: readonly DiscoveryResult[], source: LookupSource) => void;

/**
 * A discovery request, checked: one CSI (GET) or a batch of inputs (POST), with the sender's
 * context when it named one (`isContext`).
 */
export type DiscoverRequest =
  | {
      readonly kind: 'one';
      readonly input: string;
      readonly csi: Csi;
      readonly context?: string;
    }
  | { readonly kind: 'batch'; readonly csis: readonly string[]; readonly context?: string };

/**
 * The discovery of `/v1/discover`, once for both callers: the API's own route and the gateway's
 * inner requests (`gateway/gateway.ts`) parse, charge and answer through it, so a request gives
 * the same JSON either way.
 */
export interface DiscoverRoute {
  /**
   * The request of `method` with the raw query string `query` and, for a POST, the JSON value
   * `body()` reads; checked as the module comment says, a batch against `maxBatch`. Throws
   * {@link JsonApiError}.
   */
  parse(
    method: string,
    query: string,
    body: () => Promise<unknown>,
    maxBatch: number,
  ): Promise<DiscoverRequest>;
  /** The canonical CSIs of a request, for a budget (an input that is not a CSI costs nothing). */
  csisOf(request: DiscoverRequest): Csi[];
  /** Resolves the request: the 200 of the module comment, or throws {@link JsonApiError}. */
  answer(request: DiscoverRequest, source: LookupSource): Promise<JsonResponse>;
}

/** What the API hands the gateway it mounts. */
export interface GatewayMount {
  readonly discover: DiscoverRoute;
  /** The API's most CSIs in one POST. */
  readonly maxBatch: number;
  /** The API's body deadline: an outer body is read within it. */
  readonly requestTimeoutMs: number;
  /** The deadline for the client to take a response. */
  readonly responses: ResponseOptions;
  /** The API URL's authority, `host:port`; known once the API listens. */
  authority(): string;
}

/** A gateway's routes on the API's port. */
export interface GatewayRoutes {
  /** Whether `path` is one of the gateway's. */
  serves(path: string): boolean;
  /** Answers a request to one of its paths, from the peer `address`; never throws. */
  handle(req: HttpRequest, res: HttpResponse, address: string): Promise<void>;
}

/** A running JSON API. */
export interface JsonApi {
  readonly host: string;
  readonly port: number;
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  /** Connections open now, refused and closed by reason since the start. */
  connectionStats(): ConnectionStats;
  /** New TLS handshakes use this certificate and key (`HttpServer.setTls`); open connections keep theirs. */
  setTls(tls: { cert: string | Uint8Array; key: string | Uint8Array }): void;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

interface Settings {
  readonly maxBatch: number;
  /** Size, deadline and refusals of a POST body. */
  readonly body: JsonBodyLimits;
  /** The deadline for the client to take its response. */
  readonly responses: ResponseOptions;
}

/**
 * Starts the JSON API in front of `resolver` (discovery through {@link createDiscoverRoute}),
 * with the gateway of `components.gateway` mounted when given; resolves once it listens.
 */
export async function startJsonApi(
  options: JsonApiOptions,
  resolver: Pick<Resolver, 'discover' | 'discoverMany'> &
    Partial<Pick<Resolver, 'discoverCsi' | 'discoverManyJson'>>,
  components: JsonApiComponents = {},
): Promise<JsonApi> {
  const log = components.log ?? silentLogger;
  const metrics = components.metrics;
  const limits = components.limits ?? createClientLimits();
  const discover = createDiscoverRoute(resolver, {
    ...(metrics === undefined ? {} : { metrics }),
    ...(components.lookupLog === undefined ? {} : { lookupLog: components.lookupLog }),
  });
  const page = components.page;
  const host = options.host ?? '127.0.0.1';
  const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_API_REQUEST_TIMEOUT_MS;
  const settings: Settings = {
    maxBatch,
    body: {
      maxBodyOctets:
        options.maxBodyOctets ?? Math.max(MIN_MAX_BODY_OCTETS, maxBatch * BODY_OCTETS_PER_CSI),
      timeoutMs: requestTimeoutMs,
      refuse: (code, message, cause) => new JsonApiError(code, message, { cause }),
    },
    responses: { deliveryTimeoutMs: requestTimeoutMs },
  };

  /** Filled in once the API listens (an ephemeral port is known only then). */
  const listening: { authority?: string } = {};
  const gateway = components.gateway?.({
    discover,
    maxBatch,
    requestTimeoutMs,
    responses: settings.responses,
    authority: () => {
      if (listening.authority === undefined) throw new Error('the JSON API is not listening yet');
      return listening.authority;
    },
  });

  const handle = async (req: HttpRequest, res: HttpResponse): Promise<void> => {
    const started = monotonicMs();
    let response: JsonResponse;
    let count = 0;
    let route = 'other';
    // The peer of the connection (for HTTP/2, of its session): the client the limits count.
    const address = req.socket.remoteAddress ?? '';
    try {
      refuseIfLimited(limits.request(address));
      const url = parseTarget(req.url ?? '/');
      if (gateway?.serves(url.path) === true) {
        // The gateway answers and counts its own requests (`resolver_gateway_requests_total`).
        await gateway.handle(req, res, address);
        return;
      }
      if (page?.handle(req, res, settings.responses) === true) {
        metrics?.recordApiRequest(res.statusCode);
        log.debug('request', { route: page.mount, method: req.method, status: res.statusCode });
        return;
      }
      if (url.path !== DISCOVER_PATH) {
        throw new JsonApiError(
          'ERR_NOT_FOUND',
          `no route ${url.path}; the API serves ${DISCOVER_PATH}${page === undefined ? '' : ` and the page ${page.mount}`}`,
        );
      }
      route = DISCOVER_PATH;
      const method = req.method ?? '';
      const request = await discover.parse(
        method,
        url.query,
        () => readJsonBody(req, settings.body),
        settings.maxBatch,
      );
      count = request.kind === 'one' ? 1 : request.csis.length;
      // A GET's CSI is always charged; a batch's only for a client that is not exempt, so an
      // exempt back end's contact sync costs no parsing for the budget.
      if (request.kind === 'one' || !limits.isExempt(address)) {
        refuseIfLimited(limits.chargeCsis(address, discover.csisOf(request)));
      }
      response = await discover.answer(request, { transport: 'api' });
    } catch (error) {
      response = errorResponse(error);
      if (response.status >= 500) log.error('request-failed', { route, count, ...faultOf(error) });
    }
    metrics?.recordApiRequest(response.status);
    log.debug('request', {
      route,
      method: req.method,
      status: response.status,
      count,
      ms: Math.round(monotonicMs() - started),
    });
    sendJson(req, res, response, settings.responses);
  };

  const server = await startHttpServer(
    {
      listener: 'api',
      label: 'JSON API',
      listenError: (message, cause) => new ListenError('ERR_API_LISTEN', message, { cause }),
      host,
      port: options.port,
      tls: { cert: options.cert, key: options.key },
      http2: { maxConcurrentStreams: API_MAX_CONCURRENT_STREAMS },
      connections: connectionLimitsFor(options, {
        maxConnections: DEFAULT_API_MAX_CONNECTIONS,
        connectionsPerClient: DEFAULT_API_CONNECTIONS_PER_CLIENT,
        idleTimeoutMs: DEFAULT_API_IDLE_TIMEOUT_MS,
      }),
      deadlines: {
        handshakeMs: requestTimeoutMs,
        headersMs: requestTimeoutMs,
        // Node's whole-request deadline is the backstop: the body deadline (`readJsonBody`)
        // answers first, with the JSON 408 `ERR_TIMEOUT`, where node's own would send a bare 408
        // and close. Both are absolute, so bytes dripped in do not extend either.
        requestMs: 2 * requestTimeoutMs,
      },
    },
    {
      kind: 'request',
      request: (req, res) => {
        handle(req, res).catch((error: unknown) => {
          log.error('request-failed', faultOf(error));
          res.destroy();
        });
      },
    },
    { log },
  );
  listening.authority = new URL(server.url).host;
  return {
    host,
    port: server.port,
    url: server.url,
    connectionStats: server.connectionStats,
    setTls: server.setTls,
    close: server.close,
  };
}

/** What {@link createDiscoverRoute} uses besides the resolver. */
export interface DiscoverRouteComponents {
  readonly metrics?: ResolverMetrics;
  readonly lookupLog?: LookupLog;
}

/**
 * The discovery of `/v1/discover` in front of `resolver` ({@link DiscoverRoute}). A GET's CSI
 * is parsed where it enters and handed over parsed (`discoverCsi`). A stand-in resolver without
 * `discoverCsi` gets the input as typed; one without `discoverManyJson` has its results written
 * here, by the same `resultJsonText`.
 */
export function createDiscoverRoute(
  resolver: Pick<Resolver, 'discover' | 'discoverMany'> &
    Partial<Pick<Resolver, 'discoverCsi' | 'discoverManyJson'>>,
  components: DiscoverRouteComponents = {},
): DiscoverRoute {
  const { metrics, lookupLog } = components;
  // Only a context is passed on: the API never sees an audience key. Without one the resolver is
  // called as before, so a warm batch keeps its cached JSON text.
  const optionsOf = (request: DiscoverRequest): [Pick<DiscoverOptions, 'context'>] | [] =>
    request.context === undefined ? [] : [{ context: request.context }];
  const discoverOne = (
    csi: Csi,
    input: string,
    options: [Pick<DiscoverOptions, 'context'>] | [],
  ): Promise<DiscoveryResult> =>
    resolver.discoverCsi !== undefined
      ? resolver.discoverCsi(csi, ...options)
      : resolver.discover(input, ...options);
  const discoverManyJson = (
    csis: readonly string[],
    options: [Pick<DiscoverOptions, 'context'>] | [],
  ): Promise<DiscoveryResultsJson> =>
    resolver.discoverManyJson !== undefined
      ? resolver.discoverManyJson(csis, ...options)
      : resolver
          .discoverMany(csis, ...options)
          .then((results) => ({ results, json: results.map((r) => resultJsonText(r)) }));
  // A contact sync sends the same inputs again and again: each is parsed once for the budget
  // (the resolver keeps its own memo for the lookups).
  const parsed = new CsiMemo(PARSED_CSI_CACHE_OCTETS);
  return {
    async parse(method, query, body, maxBatch) {
      if (method === 'GET') return queryParameters(query);
      if (method === 'POST') return checkBatch(await body(), maxBatch);
      throw new JsonApiError('ERR_METHOD_NOT_ALLOWED', `${DISCOVER_PATH} takes GET or POST`);
    },
    csisOf(request) {
      return request.kind === 'one' ? [request.csi] : parsedCsis(parsed, request.csis);
    },
    async answer(request, source) {
      const started = monotonicMs();
      if (request.kind === 'one') {
        const result = await discoverOne(request.csi, request.input, optionsOf(request));
        metrics?.recordDiscoveries('discover', [result], seconds(started));
        if (result.status === 'error' && result.error?.reason === 'invalid-csi') {
          // The resolver's own check, e.g. a CSI whose name is too long under the apex.
          throw new JsonApiError('ERR_CSI_INVALID', result.error.detail);
        }
        lookupLog?.([result], source);
        return resultsResponse({ text: resultJsonText(result) }, [result]);
      }
      const { csis } = request;
      const { results, json } =
        csis.length === 0
          ? { results: [], json: [] }
          : await discoverManyJson(csis, optionsOf(request));
      if (results.length !== csis.length || json.length !== csis.length) {
        throw new JsonApiError(
          'ERR_INTERNAL',
          `the resolver returned ${results.length} results for ${csis.length} CSIs`,
        );
      }
      metrics?.recordDiscoveries('batch', results, seconds(started));
      lookupLog?.(results, source);
      // The results' JSON as the resolver wrote it (cached results keep theirs), each by
      // `resultJsonText`.
      return resultsResponse({ text: `{"results":[${json.join(',')}]}` }, results);
    },
  };
}

/**
 * A fault for the log: its class and code, not its message, which may quote the CSI being
 * resolved (design §10: the API logs counts, not CSIs).
 */
function faultOf(error: unknown): { fault: string; code?: string } {
  if (!(error instanceof Error)) return { fault: typeof error };
  const code = (error as { code?: unknown }).code;
  return { fault: error.name, ...(typeof code === 'string' ? { code } : {}) };
}

function seconds(started: number): number {
  return (monotonicMs() - started) / 1000;
}

/** The path and raw query string of a request target (`/v1/discover?csi=…`). */
function parseTarget(target: string): { path: string; query: string } {
  const at = target.indexOf('?');
  return at < 0
    ? { path: target, query: '' }
    : { path: target.slice(0, at), query: target.slice(at + 1) };
}

/** The query parameters of a GET, each at most once. */
const QUERY_PARAMETERS: ReadonlySet<string> = new Set(['csi', 'context']);

/**
 * The request of a GET's query string: `csi` as given and parsed, and `context` when given.
 * Form decoding, except a leading `+` of the CSI (see the module comment): `csi=+44%2020…` and
 * `csi=%2B44+20…` both give `+44 20…`. The query string is checked whole (names, repeats,
 * encoding, `csi` present, the context) before the CSI is parsed.
 */
function queryParameters(query: string): DiscoverRequest & { kind: 'one' } {
  const values = new Map<string, string>();
  for (const pair of query === '' ? [] : query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = decodeComponent(eq < 0 ? pair : pair.slice(0, eq), 'a parameter name');
    if (!QUERY_PARAMETERS.has(name)) {
      throw new JsonApiError('ERR_BAD_REQUEST', `unknown query parameter ${JSON.stringify(name)}`, {
        detail: name,
      });
    }
    if (values.has(name)) {
      throw new JsonApiError(
        'ERR_BAD_REQUEST',
        `the query parameter ${JSON.stringify(name)} is given more than once`,
        { detail: name },
      );
    }
    const raw = eq < 0 ? '' : pair.slice(eq + 1);
    const what = `the ${name}`;
    values.set(
      name,
      name === 'csi' && raw.startsWith('+')
        ? `+${decodeComponent(raw.slice(1), what)}`
        : decodeComponent(raw, what),
    );
  }
  const value = values.get('csi');
  if (value === undefined) {
    throw new JsonApiError('ERR_BAD_REQUEST', 'missing query parameter "csi"', { detail: 'csi' });
  }
  const context = values.get('context');
  if (context !== undefined) checkContext(context);
  try {
    const csi = parseCsi(value);
    return context === undefined
      ? { kind: 'one', input: value, csi }
      : { kind: 'one', input: value, csi, context };
  } catch (error) {
    if (!(error instanceof CsiError)) throw error;
    throw new JsonApiError('ERR_CSI_INVALID', error.message, { detail: error.code, cause: error });
  }
}

/** Throws the 400 of a context that is not one (`isContext`), `detail` `context`. */
function checkContext(value: unknown): asserts value is string {
  if (typeof value !== 'string' || !isContext(value)) {
    throw new JsonApiError(
      'ERR_BAD_REQUEST',
      'the context must be personal, business or ctx:<name> (a-z, 0-9 and -, at most 31)',
      { detail: 'context' },
    );
  }
}

function decodeComponent(text: string, what: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    throw new JsonApiError('ERR_BAD_REQUEST', `${what} is not valid percent-encoding`);
  }
}

/** Throws the 429 of a limited request (see the module comment); a pass returns. */
function refuseIfLimited(outcome: LimitOutcome): void {
  if (outcome.kind === 'pass') return;
  const wait = `; retry in ${outcome.retryAfter} s`;
  if (outcome.limit === 'new_names') {
    const { needed = 0, available = 0 } = outcome;
    throw new JsonApiError(
      'ERR_RATE_LIMITED',
      `this request asks for ${needed} CSIs new to this client, and ${available} are left in its budget${wait}`,
      { detail: 'new-csis', retryAfter: outcome.retryAfter },
    );
  }
  throw new JsonApiError('ERR_RATE_LIMITED', `too many requests from this client${wait}`, {
    detail: 'requests',
    retryAfter: outcome.retryAfter,
  });
}

/**
 * The canonical CSIs among a batch's inputs, for the new-names budget; an input that is not a
 * CSI is left out (its result is `invalid-csi`, and nothing is looked up for it).
 */
function parsedCsis(parsed: CsiMemo, inputs: readonly string[]): Csi[] {
  const csis: Csi[] = [];
  for (const input of inputs) {
    const value = parsed.parse(input);
    if (typeof value === 'string') csis.push(value);
  }
  return csis;
}

/** The fields of a POST's JSON body. */
const BODY_FIELDS: ReadonlySet<string> = new Set(['csis', 'context']);

/** The request of a POST's JSON body, after every check of the module comment on its fields. */
function checkBatch(value: unknown, maxBatch: number): DiscoverRequest & { kind: 'batch' } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new JsonApiError('ERR_BAD_REQUEST', 'the body must be a JSON object {"csis": [...]}');
  }
  const body = value as Record<string, unknown>;
  for (const key of Object.keys(body)) {
    if (!BODY_FIELDS.has(key)) {
      throw new JsonApiError('ERR_BAD_REQUEST', `unknown field ${JSON.stringify(key)}`, {
        detail: key,
      });
    }
  }
  if (!Object.hasOwn(body, 'csis')) {
    throw new JsonApiError('ERR_BAD_REQUEST', 'missing field "csis"', { detail: 'csis' });
  }
  const csis = body['csis'];
  if (!Array.isArray(csis)) {
    throw new JsonApiError('ERR_BAD_REQUEST', 'field "csis" must be a list of strings', {
      detail: 'csis',
    });
  }
  if (csis.length > maxBatch) {
    throw new JsonApiError(
      'ERR_BATCH_TOO_LARGE',
      `${csis.length} CSIs in one request; at most ${maxBatch} are accepted`,
      { detail: 'csis' },
    );
  }
  const bad = csis.findIndex((csi) => typeof csi !== 'string');
  if (bad >= 0) {
    throw new JsonApiError('ERR_BAD_REQUEST', `csis[${bad}] must be a string`, {
      detail: `csis[${bad}]`,
    });
  }
  const context = body['context'];
  if (context === undefined) return { kind: 'batch', csis: csis as string[] };
  checkContext(context);
  return { kind: 'batch', csis: csis as string[], context };
}

/** A 200 whose lifetime is the smallest TTL of its results. */
function resultsResponse(
  body: JsonResponse['body'],
  results: readonly DiscoveryResult[],
): JsonResponse {
  const ttl = results.reduce((min, r) => Math.min(min, Math.max(0, Math.floor(r.ttl))), Infinity);
  return {
    status: 200,
    body,
    headers: { 'cache-control': `max-age=${Number.isFinite(ttl) ? ttl : 0}` },
  };
}

/**
 * The response of a refused request: its status, the JSON error shape, `cache-control:
 * no-store`, and `allow` or `retry-after` where its code has one; anything but a
 * {@link JsonApiError} is a 500 `ERR_INTERNAL` that says nothing of the fault.
 */
export function errorResponse(error: unknown): JsonResponse {
  const e =
    error instanceof JsonApiError ? error : new JsonApiError('ERR_INTERNAL', 'internal error');
  return {
    status: e.status,
    body: { value: jsonErrorBody(e) },
    headers: {
      'cache-control': 'no-store',
      ...(e.code === 'ERR_METHOD_NOT_ALLOWED' ? { allow: 'GET, POST' } : {}),
      ...(e.retryAfter === undefined ? {} : { 'retry-after': String(e.retryAfter) }),
    },
  };
}
