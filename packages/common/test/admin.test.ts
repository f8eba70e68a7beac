import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createLogger,
  createMetricsRegistry,
  MimiError,
  startAdminServer,
  type AdminServer,
  type HealthReport,
} from '../src/index.js';

const servers: AdminServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(
  health: () => Promise<HealthReport> | HealthReport,
  options: { timeoutMs?: number; healthTimeoutMs?: number } = {},
): Promise<AdminServer> {
  const metrics = createMetricsRegistry('authoritative');
  metrics.counter('queries_total', { help: 'Queries answered' }).inc(7);
  const server = await startAdminServer(
    { host: '127.0.0.1', port: 0, ...options },
    { registry: metrics, health, log: createLogger('admin', { level: 'silent' }) },
  );
  servers.push(server);
  return server;
}

describe('startAdminServer', () => {
  it('listens on an ephemeral port of 127.0.0.1', async () => {
    const server = await start(() => ({ ok: true }));
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
  });

  it('answers /healthz with 200 and the detail when healthy', async () => {
    const server = await start(async () => ({ ok: true, detail: { zones: 3 } }));
    const response = await fetch(`${server.url}/healthz`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({ status: 'ok', detail: { zones: 3 } });
  });

  it.each<[string, () => Promise<HealthReport> | HealthReport, Record<string, unknown>]>([
    [
      'reports not ok',
      () => ({ ok: false, detail: { store: 'closed' } }),
      { detail: { store: 'closed' } },
    ],
    [
      'throws',
      () => {
        throw new Error('store unreachable');
      },
      { error: 'store unreachable' },
    ],
    [
      'never answers',
      () => new Promise<HealthReport>(() => undefined),
      { error: 'health check took longer than 50 ms' },
    ],
  ])('answers /healthz with 503 when the check %s', async (_what, health, extra) => {
    const server = await start(health, { healthTimeoutMs: 50 });
    const response = await fetch(`${server.url}/healthz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ status: 'unhealthy', ...extra });
  });

  it('serves the registry at /metrics in the Prometheus text format', async () => {
    const server = await start(() => ({ ok: true }));
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await response.text()).toContain('authoritative_queries_total 7\n');
  });

  it('answers HEAD without a body', async () => {
    const server = await start(() => ({ ok: true }));
    const response = await fetch(`${server.url}/metrics`, { method: 'HEAD' });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('');
  });

  it.each([
    ['GET', '/', 404],
    ['GET', '/metrics/extra', 404],
    ['GET', '/healthz?verbose=1', 200],
    ['POST', '/metrics', 405],
    ['DELETE', '/healthz', 405],
  ])('answers %s %s with %i', async (method, path, status) => {
    const server = await start(() => ({ ok: true }));
    const response = await fetch(`${server.url}${path}`, { method });
    expect(response.status).toBe(status);
    if (status !== 200) {
      expect(((await response.json()) as { error: { code: string } }).error.code).toMatch(/^ERR_/);
    }
  });

  it('closes a connection that sends its request too slowly', async () => {
    const server = await start(() => ({ ok: true }), { timeoutMs: 200 });
    const socket = connect(server.port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    // One header byte every 20 ms: never idle, never a whole request.
    const request = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' + 'a'.repeat(1000);
    let sent = 0;
    const drip = setInterval(() => {
      if (sent < request.length && !socket.destroyed) socket.write(request[sent++] as string);
    }, 20);
    const started = Date.now();
    await closed;
    clearInterval(drip);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(sent).toBeLessThan(request.length);
    expect(Buffer.concat(received).toString('latin1')).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('stops listening on close', async () => {
    const server = await start(() => ({ ok: true }));
    await server.close();
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });

  it('refuses a port in use with ERR_ADMIN_LISTEN', async () => {
    const first = await start(() => ({ ok: true }));
    const error = await startAdminServer(
      { port: first.port },
      { registry: createMetricsRegistry('dp'), health: () => ({ ok: true }) },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MimiError);
    expect((error as MimiError).code).toBe('ERR_ADMIN_LISTEN');
  });
});
