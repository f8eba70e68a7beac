import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MimiError } from '../protocol/errors.js';
import type { Logger } from './log.js';
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
 * `HEAD` is answered as `GET` without the body. Every request must arrive whole within
 * `timeoutMs`, and an idle keep-alive connection is closed after at most the same, so a slow
 * or silent client cannot hold a connection (Node answers 408 and closes it).
 */

/** Default bound on receiving one request, and on an idle connection. */
export const ADMIN_TIMEOUT_MS = 10_000;
/** Default bound on one health check. */
export const ADMIN_HEALTH_TIMEOUT_MS = 5_000;

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
}

/** A running admin server. */
export interface AdminServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/**
 * Starts the admin server and resolves once it listens. Throws `MimiError`
 * `ERR_ADMIN_LISTEN` when it cannot listen (port in use, bad address).
 */
export async function startAdminServer(
  options: AdminServerOptions,
  components: AdminServerComponents,
): Promise<AdminServer> {
  const host = options.host ?? '127.0.0.1';
  const timeoutMs = options.timeoutMs ?? ADMIN_TIMEOUT_MS;
  const healthTimeoutMs = options.healthTimeoutMs ?? ADMIN_HEALTH_TIMEOUT_MS;
  const log = components.log;

  const server = createServer(
    {
      requestTimeout: timeoutMs,
      headersTimeout: timeoutMs,
      // Timeouts are enforced when connections are checked; check often enough for the bound.
      connectionsCheckingInterval: Math.max(10, Math.min(1_000, Math.floor(timeoutMs / 4))),
      maxHeaderSize: 8_192,
    },
    (request, response) => {
      handle(request, response).catch((error: unknown) => {
        log?.error('admin_request_failed', { error });
        if (!response.headersSent)
          sendJson(response, 500, errorBody('ERR_INTERNAL', 'internal error'));
        else response.destroy();
      });
    },
  );
  server.keepAliveTimeout = Math.min(5_000, timeoutMs);
  // A silent socket is dropped too; later than the request bound, so that a slow request gets
  // its 408 first.
  server.timeout = 2 * timeoutMs;

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/healthz' && path !== '/metrics') {
      sendJson(response, 404, errorBody('ERR_NOT_FOUND', `no endpoint ${path}`));
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD');
      sendJson(response, 405, errorBody('ERR_METHOD_NOT_ALLOWED', `${path} takes GET`));
      return;
    }
    if (path === '/metrics') {
      const text = await metricsText(components.registry);
      send(response, 200, METRICS_CONTENT_TYPE, text);
      return;
    }
    const report = await checkHealth(components.health, healthTimeoutMs);
    if (report.error !== undefined) log?.warn('health_check_failed', { error: report.error });
    const body: Record<string, unknown> = { status: report.ok ? 'ok' : 'unhealthy' };
    if (report.detail !== undefined) body.detail = report.detail;
    if (report.error !== undefined) body.error = report.error;
    sendJson(response, report.ok ? 200 : 503, body);
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (cause: Error): void => {
      reject(
        new MimiError(
          'ERR_ADMIN_LISTEN',
          `admin server cannot listen on ${host}:${options.port}: ${cause.message}`,
          { cause },
        ),
      );
    };
    server.once('error', onError);
    server.listen(options.port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log?.info('admin_listening', { url });

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeAllConnections();
      });
      return closing;
    },
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

function errorBody(code: string, message: string): Record<string, unknown> {
  return { error: { code, message } };
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  send(response, status, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`);
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  response.end(body);
}
