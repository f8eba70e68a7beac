import {
  CONNECTIONS_PER_CLIENT_SHARE,
  connectionLimitsFor,
  type ConnectionStats,
} from './connection-limits.js';
import {
  jsonErrorBody,
  sendBody,
  sendJson,
  startHttpServer,
  ListenError,
  type HttpRequest,
  type HttpResponse,
  type JsonResponse,
  type ResponseOptions,
} from './http-server.js';
import type { Logger } from './log.js';
import {
  CONTROL_MAX_REQUEST_OCTETS,
  controlKeyMatches,
  controlReplyStatus,
  type ControlDispatcher,
} from './control.js';
import {
  METRICS_CONTENT_TYPE,
  metricsText,
  type MetricsRegistry,
  type Registry,
} from './metrics.js';

/**
 * The admin endpoint of every server (design §10), plain HTTP on its own port, for a private
 * network or loopback only:
 *
 * - `GET /healthz` → 200 `{"status":"ok"}` or 503 `{"status":"unhealthy"}`, with the health
 *   check's `detail` when it gives one (`{"status":"ok","detail":{"zones":3}}`); a check that
 *   throws or takes longer than `healthTimeoutMs` is unhealthy;
 * - `GET /metrics` → the Prometheus text format (`text/plain; version=0.0.4`);
 * - another method on those paths → 405, any other path → 404, each with a JSON error.
 *
 * - `POST /control` → a control request (`control.ts`): the body one JSON request of at most
 *   `CONTROL_MAX_REQUEST_OCTETS`, `Authorization: Bearer <key in hex>`; 403 `ERR_CONTROL_DISABLED`
 *   without a configured key, 401 `ERR_CONTROL_UNAUTHORIZED` for a missing or wrong key (checked
 *   before the body is read), else the control reply.
 *
 * `HEAD` is answered as `GET` without the body. Every request must arrive whole within
 * `timeoutMs`, and an idle keep-alive connection is closed after at most the same, so a slow
 * or silent client cannot hold a connection (Node answers 408 and closes it).
 *
 * Connections: at most {@link ADMIN_MAX_CONNECTIONS}, and {@link ADMIN_CONNECTIONS_PER_CLIENT}
 * per client (IPv4 address, IPv6 /64), through the connection gate of the HTTP server scaffold
 * (`http-server.ts`, `connection-limits.ts`): a connection past its client's share is closed at
 * accept, so a local script that opens connections and never closes them cannot take the file
 * descriptors of the server. A connection with no request in progress is closed twice
 * `timeoutMs` after its accept or its last response, whatever it sends.
 */

/** Default bound on receiving one request, and on an idle connection. */
export const ADMIN_TIMEOUT_MS = 10_000;
/** Default bound on one health check. */
export const ADMIN_HEALTH_TIMEOUT_MS = 5_000;
/**
 * Default most connections at once. A scraper keeps one, a health checker one per probe, an
 * operator a few: 64 is ample, and small beside the DNS listeners' caps, so that a flood of the
 * admin port cannot take file descriptors the listeners need.
 */
export const ADMIN_MAX_CONNECTIONS = 64;
/**
 * Default most connections at once of one client (IPv4 address, IPv6 /64): an eighth of the cap,
 * as for every listener. On loopback every local client is one client, and 8 connections at once
 * still leave room for a scraper, probes and an operator.
 */
export const ADMIN_CONNECTIONS_PER_CLIENT = ADMIN_MAX_CONNECTIONS / CONNECTIONS_PER_CLIENT_SHARE;
/** Largest request header section: the admin endpoint takes a path and a few headers. */
const ADMIN_MAX_HEADER_OCTETS = 8_192;
/** What every admin response carries: health and metrics are never cached. */
const ADMIN_RESPONSES: ResponseOptions = Object.freeze({
  headers: Object.freeze({ 'cache-control': 'no-store' }),
});

/** Where the admin server listens, and its bounds. */
export interface AdminServerOptions {
  /** Default `127.0.0.1`. */
  host?: string;
  /** 0 for an ephemeral port. */
  port: number;
  /** Default {@link ADMIN_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Default {@link ADMIN_HEALTH_TIMEOUT_MS}. */
  healthTimeoutMs?: number;
  /** Default {@link ADMIN_MAX_CONNECTIONS}. */
  maxConnections?: number;
  /** Default {@link ADMIN_CONNECTIONS_PER_CLIENT}, or `maxConnections` when that is smaller. */
  connectionsPerClient?: number;
}

/** What a health check reports. `detail` is sent as is: no CSI, no client address in it. */
export interface HealthReport {
  ok: boolean;
  detail?: Record<string, unknown>;
}

/** What the admin server serves. */
export interface AdminServerComponents {
  /** The server's metrics, from `createMetricsRegistry`. */
  registry: Registry | MetricsRegistry;
  health: () => Promise<HealthReport> | HealthReport;
  log?: Logger;
  /**
   * The control channel (`POST /control`): its dispatcher, and the key a request must carry;
   * without a key (or without `control`) the admin port refuses control.
   */
  control?: { readonly dispatcher: ControlDispatcher; readonly key: Uint8Array | undefined };
}

/** A running admin server. */
export interface AdminServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Connections open now, refused and closed by reason since the start. */
  connectionStats(): ConnectionStats;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/**
 * Starts the admin server and resolves once it listens. Throws `ListenError`
 * `ERR_ADMIN_LISTEN` when it cannot listen (port in use, bad address), `TransportError`
 * `ERR_TRANSPORT_CONFIG` for connection limits out of range.
 */
export async function startAdminServer(
  options: AdminServerOptions,
  components: AdminServerComponents,
): Promise<AdminServer> {
  const host = options.host ?? '127.0.0.1';
  const timeoutMs = options.timeoutMs ?? ADMIN_TIMEOUT_MS;
  const healthTimeoutMs = options.healthTimeoutMs ?? ADMIN_HEALTH_TIMEOUT_MS;
  const log = components.log;

  async function handle(request: HttpRequest, response: HttpResponse): Promise<void> {
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/control') {
      await handleControl(request, response, components.control);
      return;
    }
    if (path !== '/healthz' && path !== '/metrics') {
      sendJson(
        request,
        response,
        adminError(404, 'ERR_NOT_FOUND', `no endpoint ${path}`),
        ADMIN_RESPONSES,
      );
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      sendJson(
        request,
        response,
        adminError(405, 'ERR_METHOD_NOT_ALLOWED', `${path} takes GET`, { allow: 'GET, HEAD' }),
        ADMIN_RESPONSES,
      );
      return;
    }
    if (path === '/metrics') {
      const text = await metricsText(components.registry);
      sendBody(
        request,
        response,
        { status: 200, contentType: METRICS_CONTENT_TYPE, body: text },
        ADMIN_RESPONSES,
      );
      return;
    }
    const report = await checkHealth(components.health, healthTimeoutMs);
    if (report.error !== undefined) log?.warn('health-check-failed', { error: report.error });
    const body: Record<string, unknown> = { status: report.ok ? 'ok' : 'unhealthy' };
    if (report.detail !== undefined) body.detail = report.detail;
    if (report.error !== undefined) body.error = report.error;
    sendJson(
      request,
      response,
      { status: report.ok ? 200 : 503, body: { value: body } },
      ADMIN_RESPONSES,
    );
  }

  const server = await startHttpServer(
    {
      listener: 'admin',
      label: 'admin server',
      listenError: (message, cause) => new ListenError('ERR_ADMIN_LISTEN', message, { cause }),
      host,
      port: options.port,
      connections: connectionLimitsFor(options, {
        maxConnections: ADMIN_MAX_CONNECTIONS,
        connectionsPerClient: ADMIN_CONNECTIONS_PER_CLIENT,
        // Later than node's request deadline, so that a slow request gets its 408 first.
        idleTimeoutMs: 2 * timeoutMs,
      }),
      deadlines: {
        headersMs: timeoutMs,
        requestMs: timeoutMs,
        keepAliveMs: Math.min(5_000, timeoutMs),
        // A silent socket is dropped too; later than the request bound, so that a slow request
        // gets its 408 first.
        inactivityMs: 2 * timeoutMs,
      },
      maxHeaderOctets: ADMIN_MAX_HEADER_OCTETS,
    },
    {
      kind: 'request',
      request: (request, response) => {
        handle(request, response).catch((error: unknown) => {
          log?.error('admin-request-failed', { error });
          if (!response.headersSent) {
            sendJson(
              request,
              response,
              adminError(500, 'ERR_INTERNAL', 'internal error'),
              ADMIN_RESPONSES,
            );
          } else response.destroy();
        });
      },
    },
    log === undefined ? {} : { log },
  );
  return {
    url: server.url,
    port: server.port,
    connectionStats: server.connectionStats,
    close: server.close,
  };
}

/**
 * `POST /control`: the key first (constant time, before the body is read), then a body of at
 * most {@link CONTROL_MAX_REQUEST_OCTETS}, then the dispatcher's reply.
 */
async function handleControl(
  request: HttpRequest,
  response: HttpResponse,
  control: AdminServerComponents['control'],
): Promise<void> {
  if (request.method !== 'POST') {
    sendJson(
      request,
      response,
      adminError(405, 'ERR_METHOD_NOT_ALLOWED', '/control takes POST', { allow: 'POST' }),
      ADMIN_RESPONSES,
    );
    return;
  }
  if (control?.key === undefined) {
    sendJson(
      request,
      response,
      adminError(
        403,
        'ERR_CONTROL_DISABLED',
        'control over the admin port needs control.keyFile; use the control socket',
      ),
      ADMIN_RESPONSES,
    );
    return;
  }
  const authorization = request.headers.authorization;
  if (!controlKeyMatches(authorization, control.key)) {
    sendJson(
      request,
      response,
      adminError(401, 'ERR_CONTROL_UNAUTHORIZED', 'a missing or wrong control key', {
        'www-authenticate': 'Bearer',
      }),
      ADMIN_RESPONSES,
    );
    return;
  }
  const body = await readBounded(request, CONTROL_MAX_REQUEST_OCTETS);
  if (body === undefined) {
    sendJson(
      request,
      response,
      adminError(
        413,
        'ERR_CONTROL_TOO_LARGE',
        `a control request is at most ${CONTROL_MAX_REQUEST_OCTETS} octets`,
      ),
      { headers: { ...ADMIN_RESPONSES.headers, connection: 'close' } },
    );
    return;
  }
  const reply = await control.dispatcher.dispatch(body);
  sendJson(
    request,
    response,
    { status: controlReplyStatus(reply), body: { value: reply } },
    ADMIN_RESPONSES,
  );
}

/** The request body as text, or undefined when it is longer than `max` octets. */
async function readBounded(request: HttpRequest, max: number): Promise<string | undefined> {
  const declared = Number(request.headers['content-length'] ?? '0');
  if (declared > max) return undefined;
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** An admin error response in the one JSON error shape. */
function adminError(
  status: number,
  code: string,
  message: string,
  headers?: Readonly<Record<string, string>>,
): JsonResponse {
  return {
    status,
    body: { value: jsonErrorBody({ code, message }) },
    ...(headers === undefined ? {} : { headers }),
  };
}

/** A health report with the failure of the check itself, if it failed. */
interface CheckedHealth extends HealthReport {
  error?: string;
}

/** Runs the health check, bounded in time; a throw or a timeout is unhealthy. */
async function checkHealth(
  health: AdminServerComponents['health'],
  timeoutMs: number,
): Promise<CheckedHealth> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckedHealth>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, error: `health check took longer than ${timeoutMs} ms` }),
      timeoutMs,
    );
  });
  try {
    const report = await Promise.race([Promise.resolve().then(health), timeout]);
    return report.ok === true ? report : { ...report, ok: false };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}
