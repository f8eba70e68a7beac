import {
  JSON_CONTENT_TYPE,
  MimiError,
  connectionLimitsFor,
  createClientExemptions,
  createClientRateLimiter,
  createLogger,
  jsonErrorBody,
  readBody,
  sendBody,
  startAdminServer,
  startHttpServer,
  type AdminServer,
  type BodyResponse,
  type Clock,
  type ConnectionStats,
  type ConnectionStatsSource,
  type HttpRequest,
  type HttpResponse,
  type LogLevel,
  type Logger,
} from '@mimi-discovery/common';
import {
  checkRelayForwarding,
  resolveRelayLimits,
  type RelayLimits,
  type RelayLimitsInput,
} from './config.js';
import { createForwarder, type ForwardOutcome, type ForwardRequest } from './forward.js';
import { createForwardSlots } from './forward-slots.js';
import {
  DEFAULT_RELAY_CONNECTIONS_PER_CLIENT,
  RELAY_BUSY_RETRY_AFTER_SECONDS,
  RELAY_MAX_CONCURRENT_STREAMS,
  RELAY_MAX_HEADER_OCTETS,
} from './limits.js';
import { createRelayMetrics, type RelayMetrics, type RelayRoute } from './metrics.js';
import { openRelayQueryLog, type RelayQueryLog } from './query-log.js';
import {
  ODOH_CONFIGS_PATH,
  ODOH_PROXY_PATH,
  OHTTP_RELAY_PATH_PREFIX,
  createRelayRoutes,
  routeRequest,
  type RelayTarget,
} from './routes.js';

/**
 * The oblivious relay (design §7, R6): an Oblivious HTTP relay resource (RFC 9458 §2, §4) per
 * configured gateway and an Oblivious DoH proxy (RFC 9230 §4.1), over HTTPS (HTTP/2 and
 * HTTP/1.1 by ALPN). The relay sees the client's address and an encrypted message; the gateway
 * sees the relay's address and the message. Routes are those of `routes.ts`.
 *
 * What is forwarded, and nothing else (RFC 9458 §4: a relay does not add information that
 * identifies the client): the method, the body octets as received, and headers the relay
 * writes itself — `content-type` and `accept` of the protocol (`message/ohttp-req` and
 * `message/ohttp-res`; `application/ohttp-keys` for a key fetch; `application/oblivious-dns-
 * message` both ways for ODoH). No header of the client (cookies, authorization, user agent,
 * `forwarded`, `x-forwarded-for`, …) reaches the gateway, and the relay adds none that names the
 * client. The relay never parses what it forwards beyond its length and content type. The
 * gateway's status, body octets, `content-type` and `cache-control` (the lifetime of its key
 * configs, RFC 9540 §4) come back unchanged.
 *
 * Refusals are JSON `{"error": {"code", "message", "detail"?}}` ({@link RELAY_ERRORS}), checked
 * in this order: the client's token bucket (429 `ERR_RATE_LIMITED`, `Retry-After`, detail
 * `requests`); the route (404 `ERR_NOT_FOUND`; 400 `ERR_BAD_REQUEST` for a proxy request without
 * one `targethost` and one `targetpath`; 403 `ERR_TARGET_NOT_ALLOWED` for a target not in
 * `odohTargets`, or a GET through the proxy for anything but `/.well-known/odohconfigs`); the
 * method (405, with `Allow`); the content type of a POST (415); its size (413, on
 * `content-length` before reading, else while reading); its arrival within `requestTimeoutMs`
 * (408 `ERR_TIMEOUT`); the concurrency caps (429 `ERR_RATE_LIMITED` detail `client-forwards`,
 * 503 `ERR_RELAY_BUSY`, each with `Retry-After`). A forward that fails is 504
 * `ERR_GATEWAY_TIMEOUT` (no whole response within `forwardTimeoutMs`), 502
 * `ERR_GATEWAY_UNREACHABLE`, or 502 `ERR_GATEWAY_RESPONSE_TOO_LARGE` (over `maxResponseOctets`).
 *
 * Slow clients and connections are bounded as on every HTTPS listener of the project (the
 * connection gate and deadlines of `http-server.ts` in `@mimi-discovery/common`): handshake,
 * headers and body each within `requestTimeoutMs` of their start, a response taken within the
 * same, idle connections closed after `idleTimeoutMs`, `maxConnections` and
 * `connectionsPerClient`.
 *
 * Privacy (design §10): logs hold the route, the status, octet counts and times, never the
 * client's address and never a body; metrics are labelled by route kind and status only. The
 * query log (off by default, `query-log.ts`) holds the client's address with each request's
 * route, octets and status — never a body.
 */

/** Every error code of the relay, with its HTTP status. */
export const RELAY_ERRORS = Object.freeze({
  ERR_NOT_FOUND: 404,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_BODY_TOO_LARGE: 413,
  ERR_BAD_REQUEST: 400,
  ERR_TIMEOUT: 408,
  ERR_TARGET_NOT_ALLOWED: 403,
  ERR_RATE_LIMITED: 429,
  ERR_RELAY_BUSY: 503,
  ERR_GATEWAY_TIMEOUT: 504,
  ERR_GATEWAY_UNREACHABLE: 502,
  ERR_GATEWAY_RESPONSE_TOO_LARGE: 502,
  ERR_INTERNAL: 500,
} as const);

/** A code of {@link RELAY_ERRORS}. */
export type RelayErrorCode = keyof typeof RELAY_ERRORS;

/** A request the relay refuses, or a forward that failed; `status` is that of its code. */
export class RelayError extends MimiError<RelayErrorCode> {
  readonly status: number;
  /** A machine-readable detail: which limit, which field. */
  readonly detail: string | undefined;
  /** Whole seconds until the request may pass (`Retry-After`). */
  readonly retryAfter: number | undefined;
  /** The methods of the resource, for a 405 (`Allow`). */
  readonly allow: string | undefined;

  constructor(
    code: RelayErrorCode,
    message: string,
    options: { detail?: string; retryAfter?: number; allow?: string } = {},
  ) {
    super(code, message);
    this.status = RELAY_ERRORS[code];
    this.detail = options.detail;
    this.retryAfter = options.retryAfter;
    this.allow = options.allow;
  }
}

/** A relay listener that cannot listen: port in use, bad address. */
export class RelayListenError extends MimiError<'ERR_RELAY_LISTEN'> {}

/** The OHTTP media types (RFC 9458 §9, RFC 9540 §3) and ODoH's (RFC 9230 §8). */
const MEDIA = Object.freeze({
  ohttpRequest: 'message/ohttp-req',
  ohttpResponse: 'message/ohttp-res',
  ohttpKeys: 'application/ohttp-keys',
  odoh: 'application/oblivious-dns-message',
});

/** What {@link startRelay} takes: a loaded config file (`loadRelayConfig`) or the same in code. */
export interface RelaySettings {
  readonly listen: {
    /** Default `127.0.0.1`. */
    readonly host?: string;
    /** The relay's HTTPS port; 0 picks a free one. */
    readonly relay: number;
    /** The admin port (health, metrics); absent or null: none. */
    readonly admin?: number | null;
  };
  /** The relay's certificate chain and key, PEM. */
  readonly tls: { readonly cert: string | Uint8Array; readonly key: string | Uint8Array };
  /** PEM CA certificates trusted for the gateways' certificates instead of the system's. */
  readonly ca?: string | Uint8Array;
  /** Relay resource name → gateway URL (`https://…/.well-known/ohttp-gateway`). */
  readonly gateways?: Readonly<Record<string, string>>;
  /** ODoH targets the proxy forwards to, `host:port`. */
  readonly odohTargets?: readonly string[];
  /** The local address connections to gateways and targets leave from; absent: the system's. */
  readonly sourceAddress?: string;
  /** Any of the bounds of `limits.ts`; the rest default. */
  readonly limits?: RelayLimitsInput;
  /** The query log; absent: none. */
  readonly queryLog?: { readonly path: string; readonly bufferBytes?: number };
  /** Level of the default logger. */
  readonly log?: { readonly level: LogLevel };
}

/** What a relay uses besides its settings. */
export interface RelayComponents {
  /** Default: JSON lines on stderr at `settings.log.level`. */
  readonly log?: Logger;
  /** The clock of the token buckets; default `systemClock`. */
  readonly now?: Clock;
  /**
   * Hears every exchange the relay forwarded, as the relay sees it after TLS: the request's
   * target and body, the response's status and body. For audits of what a relay can learn
   * (the privacy tests use it); the relay itself keeps none of it.
   */
  readonly observe?: (exchange: RelayExchange) => void;
}

/** One forwarded exchange, as {@link RelayComponents.observe} hears it. */
export interface RelayExchange {
  /** The request target as the client sent it (path and query). */
  readonly target: string;
  readonly method: string;
  /** Every request header of the client. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly requestBody: Uint8Array;
  readonly status: number;
  readonly responseBody: Uint8Array;
}

/** A running relay. */
export interface RunningRelay {
  readonly host: string;
  readonly port: number;
  /** `https://127.0.0.1:<port>`; a gateway's relay resource is `<url>/ohttp/<name>`. */
  readonly url: string;
  readonly admin: AdminServer | undefined;
  readonly metrics: RelayMetrics;
  readonly queryLog: RelayQueryLog | undefined;
  /** The bounds in force, defaults filled in. */
  readonly limits: RelayLimits;
  /** Forwards in progress now. */
  forwardsInFlight(): number;
  /** Connections of the relay listener. */
  connectionStats(): ConnectionStats;
  /** New TLS handshakes use this certificate and key (`HttpServer.setTls`); open connections keep theirs. */
  setTls(tls: { cert: string | Uint8Array; key: string | Uint8Array }): void;
  /** Stops listening, closes every connection, cuts forwards under way, closes the query log. */
  close(): Promise<void>;
}

/**
 * What a request is counted and logged as, known from its target and method before any check:
 * the metrics' route kind, the query log's route (`/ohttp/<name>`, `/proxy`, or `other`: a path
 * the relay does not serve is not written down, whatever a client put in it) and the ODoH
 * target.
 */
interface RequestLabels {
  readonly route: RelayRoute;
  readonly logRoute: string;
  readonly target?: string;
}

/** What one request is forwarded as, once its route, method and content type passed. */
interface ForwardPlan extends RequestLabels {
  readonly request: Omit<ForwardRequest, 'body'>;
}

/**
 * Starts the relay (and its admin port, when asked) and resolves once it listens. Settings a
 * config file could not hold are a `ConfigError` `ERR_CONFIG_INVALID`; a port that cannot be
 * bound a `RelayListenError` (or the admin server's `ListenError`), with nothing left running.
 */
export async function startRelay(
  settings: RelaySettings,
  components: RelayComponents = {},
): Promise<RunningRelay> {
  const log = components.log ?? createLogger('relay', { level: settings.log?.level ?? 'info' });
  const forwarding = checkRelayForwarding(settings);
  const limits = resolveRelayLimits(settings.limits);
  const routes = createRelayRoutes(forwarding.gateways, forwarding.odohTargets);
  const host = settings.listen.host ?? '127.0.0.1';
  const limiter = createClientRateLimiter({
    rate: { perSecond: limits.requestsPerSecond, burst: limits.requestBurst },
    maxClients: limits.maxClients,
    exempt: createClientExemptions(limits.exempt),
    ...(components.now === undefined ? {} : { now: components.now }),
  });
  const slots = createForwardSlots(limits.maxForwards, limits.forwardsPerClient);
  const forwarder = createForwarder({
    ca: settings.ca,
    connectTimeoutMs: limits.connectTimeoutMs,
    timeoutMs: limits.forwardTimeoutMs,
    maxResponseOctets: limits.maxResponseOctets,
    connections: limits.gatewayConnections,
    localAddress: settings.sourceAddress,
  });
  const listeners = new Map<string, ConnectionStatsSource>();
  const queryLog =
    settings.queryLog === undefined
      ? undefined
      : openRelayQueryLog(settings.queryLog, { log: log.child('query-log') });
  const metrics = createRelayMetrics({
    forwardsInFlight: () => slots.inFlight,
    listeners: () => listeners.entries(),
    queryLog: () => queryLog,
  });
  const delivery = { deliveryTimeoutMs: limits.requestTimeoutMs };

  const handle = async (req: HttpRequest, res: HttpResponse): Promise<void> => {
    const started = performance.now();
    // The peer of the connection (for HTTP/2, of its session): the client the limits count.
    const address = req.socket.remoteAddress ?? '';
    const method = req.method ?? '';
    const where = routeRequest(routes, req.url ?? '/');
    const labels = labelsOf(where, method);
    let octetsIn = 0;
    let requestBody: Uint8Array | undefined;
    let response: BodyResponse;
    try {
      const decision = limiter.take(address);
      if (decision.kind === 'limited') {
        metrics.recordLimited('requests');
        throw new RelayError(
          'ERR_RATE_LIMITED',
          `too many requests from this client; retry in ${decision.retryAfter} s`,
          { detail: 'requests', retryAfter: decision.retryAfter },
        );
      }
      const plan = planForward(where, req);
      let body: Uint8Array | undefined;
      if (plan.request.method === 'POST') {
        body = await readRequestBody(req, limits);
        octetsIn = body.length;
        requestBody = body;
      }
      response = await forwardWithSlot(address, plan, body);
    } catch (error) {
      response = errorResponse(error, log);
    }
    sendBody(req, res, response, delivery);
    components.observe?.({
      target: req.url ?? '',
      method,
      headers: { ...req.headers },
      requestBody: requestBody ?? new Uint8Array(0),
      status: response.status,
      responseBody:
        typeof response.body === 'string' ? new TextEncoder().encode(response.body) : response.body,
    });
    const route = labels.route;
    const octetsOut = response.body.length;
    metrics.recordRequest(route, response.status, octetsIn, octetsOut);
    queryLog?.record({
      client: address,
      method,
      route: labels.logRoute,
      target: labels.target,
      octetsIn,
      octetsOut,
      status: response.status,
    });
    log.debug('request', {
      route,
      status: response.status,
      in: octetsIn,
      out: octetsOut,
      ms: Math.round(performance.now() - started),
    });
  };

  /** Takes a forward slot, forwards, frees the slot: the client's answer. */
  const forwardWithSlot = async (
    address: string,
    plan: ForwardPlan,
    body: Uint8Array | undefined,
  ): Promise<BodyResponse> => {
    const slot = slots.take(address);
    if (slot.kind === 'client-busy') {
      metrics.recordLimited('client_forwards');
      throw new RelayError(
        'ERR_RATE_LIMITED',
        `this client has ${limits.forwardsPerClient} requests in progress; retry when one ends`,
        { detail: 'client-forwards', retryAfter: RELAY_BUSY_RETRY_AFTER_SECONDS },
      );
    }
    if (slot.kind === 'busy') {
      metrics.recordLimited('forwards');
      throw new RelayError('ERR_RELAY_BUSY', 'the relay is at its limit of forwards; retry', {
        retryAfter: RELAY_BUSY_RETRY_AFTER_SECONDS,
      });
    }
    const started = performance.now();
    let outcome: ForwardOutcome;
    try {
      outcome = await forwarder.forward(
        body === undefined ? plan.request : { ...plan.request, body },
      );
    } finally {
      slot.release();
    }
    metrics.recordForward(plan.route, (performance.now() - started) / 1000);
    if (outcome.kind === 'response') {
      return {
        status: outcome.status,
        contentType: outcome.contentType ?? 'application/octet-stream',
        body: outcome.body,
        headers:
          outcome.cacheControl === undefined ? {} : { 'cache-control': outcome.cacheControl },
      };
    }
    const reason = outcome.kind === 'too-large' ? 'too_large' : outcome.kind;
    metrics.recordForwardFailure(reason);
    log.warn('forward-failed', {
      route: plan.logRoute,
      ...(plan.target === undefined ? {} : { target: plan.target }),
      reason,
      ...(outcome.kind === 'unreachable' && outcome.code !== undefined
        ? { code: outcome.code }
        : {}),
    });
    throw forwardError(outcome, limits);
  };

  const started: Array<{ close(): Promise<void> }> = [];
  try {
    const server = await startHttpServer(
      {
        listener: 'relay',
        label: 'relay',
        listenError: (message, cause) =>
          new RelayListenError('ERR_RELAY_LISTEN', message, { cause }),
        host,
        port: settings.listen.relay,
        tls: { cert: settings.tls.cert, key: settings.tls.key },
        http2: { maxConcurrentStreams: RELAY_MAX_CONCURRENT_STREAMS },
        connections: connectionLimitsFor(limits, {
          maxConnections: limits.maxConnections,
          connectionsPerClient: DEFAULT_RELAY_CONNECTIONS_PER_CLIENT,
          idleTimeoutMs: limits.idleTimeoutMs,
        }),
        deadlines: {
          handshakeMs: limits.requestTimeoutMs,
          headersMs: limits.requestTimeoutMs,
          // The body deadline (`readRequestBody`) answers first, with the JSON 408; node's
          // whole-request deadline is the backstop. Both absolute: dripped octets extend neither.
          requestMs: 2 * limits.requestTimeoutMs,
        },
        maxHeaderOctets: RELAY_MAX_HEADER_OCTETS,
      },
      {
        kind: 'request',
        request: (req, res) => {
          handle(req, res).catch((error: unknown) => {
            log.error('request-failed', { error });
            res.destroy();
          });
        },
      },
      { log },
    );
    started.push(server);
    listeners.set('relay', server);
    let admin: AdminServer | undefined;
    const adminPort = settings.listen.admin ?? null;
    if (adminPort !== null) {
      admin = await startAdminServer(
        { host, port: adminPort },
        {
          registry: metrics.registry,
          health: () => ({
            ok: true,
            detail: {
              gateways: routes.gateways.size,
              odohTargets: routes.odohTargets.size,
              forwardsInFlight: slots.inFlight,
            },
          }),
          log: log.child('admin'),
        },
      );
      started.push(admin);
      listeners.set('admin', admin);
    }
    log.info('started', {
      relay: server.url,
      gateways: [...routes.gateways.keys()],
      odohTargets: routes.odohTargets.size,
      admin: admin?.url,
    });
    let closing: Promise<void> | undefined;
    return {
      host,
      port: server.port,
      url: server.url,
      admin,
      metrics,
      queryLog,
      limits,
      forwardsInFlight: () => slots.inFlight,
      connectionStats: server.connectionStats,
      setTls: server.setTls,
      close: () => {
        closing ??= (async () => {
          await Promise.allSettled([...started.map((s) => s.close()), forwarder.close()]);
          await queryLog?.close();
        })();
        return closing;
      },
    };
  } catch (error) {
    await Promise.allSettled([...started.map((s) => s.close()), forwarder.close()]);
    await queryLog?.close();
    throw error;
  }
}

/** The media type of a `content-type` value, lowercase, without parameters. */
function mediaType(value: string | undefined): string {
  return (value ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** The labels of a request to `where` with `method` ({@link RequestLabels}). */
function labelsOf(where: RelayTarget, method: string): RequestLabels {
  const kind = (post: RelayRoute, get: RelayRoute): RelayRoute =>
    method === 'POST' ? post : method === 'GET' ? get : 'other';
  switch (where.kind) {
    case 'ohttp':
      return {
        route: kind('ohttp', 'ohttp_keys'),
        logRoute: `${OHTTP_RELAY_PATH_PREFIX}${where.gateway}`,
      };
    case 'odoh':
    case 'not-allowed':
      return {
        route: kind('odoh', 'odoh_configs'),
        logRoute: ODOH_PROXY_PATH,
        target: where.authority,
      };
    case 'bad-request':
      return { route: kind('odoh', 'odoh_configs'), logRoute: ODOH_PROXY_PATH };
    case 'not-found':
      return { route: 'other', logRoute: 'other' };
  }
}

/**
 * How a request to `where` is forwarded (route, method, content type; see the module comment's
 * order), or the refusal. The headers here are the only ones the gateway gets.
 */
function planForward(where: RelayTarget, req: HttpRequest): ForwardPlan {
  const method = req.method;
  switch (where.kind) {
    case 'not-found':
      throw new RelayError(
        'ERR_NOT_FOUND',
        `no route ${where.path}; the relay serves ${OHTTP_RELAY_PATH_PREFIX}<gateway> and ${ODOH_PROXY_PATH}`,
      );
    case 'bad-request':
      throw new RelayError('ERR_BAD_REQUEST', where.reason);
    case 'not-allowed':
      throw new RelayError(
        'ERR_TARGET_NOT_ALLOWED',
        `${where.authority} is not an ODoH target of this relay`,
      );
    case 'ohttp': {
      const logRoute = `${OHTTP_RELAY_PATH_PREFIX}${where.gateway}`;
      if (method === 'POST') {
        requireContentType(req, MEDIA.ohttpRequest);
        return {
          route: 'ohttp',
          logRoute,
          request: {
            url: where.url,
            method: 'POST',
            headers: { 'content-type': MEDIA.ohttpRequest, accept: MEDIA.ohttpResponse },
          },
        };
      }
      if (method === 'GET') {
        // RFC 9540 §4: the key configs of the gateway, fetched through the relay so that the
        // gateway does not see who fetches them.
        return {
          route: 'ohttp_keys',
          logRoute,
          request: { url: where.url, method: 'GET', headers: { accept: MEDIA.ohttpKeys } },
        };
      }
      throw methodNotAllowed(logRoute);
    }
    case 'odoh': {
      const base = { logRoute: ODOH_PROXY_PATH, target: where.authority };
      if (method === 'POST') {
        requireContentType(req, MEDIA.odoh);
        return {
          ...base,
          route: 'odoh',
          request: {
            url: where.url,
            method: 'POST',
            headers: { 'content-type': MEDIA.odoh, accept: MEDIA.odoh },
          },
        };
      }
      if (method === 'GET') {
        if (where.path !== ODOH_CONFIGS_PATH) {
          throw new RelayError(
            'ERR_TARGET_NOT_ALLOWED',
            `a GET through the proxy may ask only for ${ODOH_CONFIGS_PATH}`,
          );
        }
        return {
          ...base,
          route: 'odoh_configs',
          request: { url: where.url, method: 'GET', headers: {} },
        };
      }
      throw methodNotAllowed(ODOH_PROXY_PATH);
    }
  }
}

function methodNotAllowed(path: string): RelayError {
  return new RelayError('ERR_METHOD_NOT_ALLOWED', `${path} takes GET or POST`, {
    allow: 'GET, POST',
  });
}

function requireContentType(req: HttpRequest, type: string): void {
  if (mediaType(req.headers['content-type']) !== type) {
    throw new RelayError('ERR_UNSUPPORTED_MEDIA_TYPE', `the request body must be ${type}`);
  }
}

/** The body of a POST: refused past `maxRequestOctets` or `requestTimeoutMs`, or cut short. */
async function readRequestBody(req: HttpRequest, limits: RelayLimits): Promise<Uint8Array> {
  const max = limits.maxRequestOctets;
  const tooLarge = `the request body is larger than ${max} octets`;
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > max) {
    throw new RelayError('ERR_BODY_TOO_LARGE', tooLarge);
  }
  const read = await readBody(req, max, { timeoutMs: limits.requestTimeoutMs });
  if (read === 'too-large') throw new RelayError('ERR_BODY_TOO_LARGE', tooLarge);
  if (read === 'timeout') {
    throw new RelayError('ERR_TIMEOUT', 'the request body was not received in time');
  }
  if (read === 'aborted') {
    throw new RelayError('ERR_BAD_REQUEST', 'the request body was not received whole');
  }
  return read;
}

/** The client's answer to a forward that failed. */
function forwardError(
  outcome: Exclude<ForwardOutcome, { kind: 'response' }>,
  limits: RelayLimits,
): RelayError {
  switch (outcome.kind) {
    case 'timeout':
      return new RelayError(
        'ERR_GATEWAY_TIMEOUT',
        `the gateway did not answer whole within ${limits.forwardTimeoutMs} ms`,
      );
    case 'too-large':
      return new RelayError(
        'ERR_GATEWAY_RESPONSE_TOO_LARGE',
        `the gateway answered more than ${limits.maxResponseOctets} octets`,
      );
    case 'unreachable':
      return new RelayError('ERR_GATEWAY_UNREACHABLE', 'the gateway cannot be reached');
  }
}

/** A refusal as a JSON response; anything but a {@link RelayError} is a logged 500. */
function errorResponse(error: unknown, log: Logger): BodyResponse {
  let e: RelayError;
  if (error instanceof RelayError) e = error;
  else {
    log.error('request-failed', { error });
    e = new RelayError('ERR_INTERNAL', 'internal error');
  }
  return {
    status: e.status,
    contentType: JSON_CONTENT_TYPE,
    body: Buffer.from(`${JSON.stringify(jsonErrorBody(e))}\n`),
    headers: {
      'cache-control': 'no-store',
      ...(e.allow === undefined ? {} : { allow: e.allow }),
      ...(e.retryAfter === undefined ? {} : { 'retry-after': String(e.retryAfter) }),
    },
  };
}
