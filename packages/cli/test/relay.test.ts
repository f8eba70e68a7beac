import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createLocalCa, issueServerCertificate } from '@mimi-discovery/common';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RelayListenerJson } from '../src/commands/relay.js';
import { createCliFixture, serveCommand, type Serving } from './fixture.js';

// `relay serve` run in-process from a config file, in front of a test gateway (an HTTPS server
// with a certificate of the test's CA that answers every POST with what it received, reversed).

const cli = createCliFixture('relay');
let gateway: Server;
let gatewayUrl = '';
let agent: Agent;
const seen: Array<{ url: string; cookie: string | undefined }> = [];

beforeAll(async () => {
  const ca = await createLocalCa({ commonName: 'relay CLI test CA' });
  const leaf = await issueServerCertificate(ca, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  writeFileSync(join(cli.dir, 'ca.pem'), ca.certPem);
  writeFileSync(join(cli.dir, 'relay-cert.pem'), leaf.certPem);
  writeFileSync(join(cli.dir, 'relay-key.pem'), leaf.keyPem);
  agent = new Agent({ connect: { ca: ca.certPem } });
  gateway = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.push({ url: req.url ?? '', cookie: req.headers.cookie });
      res.writeHead(200, { 'content-type': 'message/ohttp-res' });
      res.end(Buffer.concat(chunks).reverse());
    });
  });
  await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
  const port = (gateway.address() as AddressInfo).port;
  gatewayUrl = `https://127.0.0.1:${port}/.well-known/ohttp-gateway`;
  writeFileSync(
    join(cli.dir, 'relay.json'),
    JSON.stringify({
      listen: { relay: 0, admin: 0 },
      tls: { cert: 'relay-cert.pem', key: 'relay-key.pem' },
      ca: 'ca.pem',
      gateways: { resolver: gatewayUrl },
      odohTargets: [`127.0.0.1:${port}`],
      log: { level: 'silent' },
    }),
  );
});

afterAll(async () => {
  await agent.close();
  gateway.closeAllConnections();
  await new Promise((resolve) => gateway.close(resolve));
  cli.cleanup();
});

/** `relay serve --json` running in-process until the test stops it. */
function serveRelay(flags: readonly string[]): Promise<Serving<RelayListenerJson>> {
  return serveCommand<RelayListenerJson>(cli, ['relay', 'serve'], flags);
}

describe('relay serve', () => {
  it('prints where it listens, relays to the gateway until stopped, then exits 0', async () => {
    const running = await serveRelay(['--config', 'relay.json', '--query-log', 'relay.jsonl']);
    let stopped = false;
    try {
      expect(running.listeners.map((l) => l.listener)).toEqual(['relay', 'admin', 'ohttp']);
      const resource = running.listeners.find((l) => l.listener === 'ohttp');
      expect(resource?.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/ohttp\/resolver$/);
      expect(resource?.gateway).toBe('resolver');

      const reply = await request(resource?.url ?? '', {
        dispatcher: agent,
        method: 'POST',
        headers: { 'content-type': 'message/ohttp-req', cookie: 'who=alice' },
        body: Buffer.from([1, 2, 3]),
      });
      expect(reply.statusCode).toBe(200);
      expect([...Buffer.from(await reply.body.arrayBuffer())]).toEqual([3, 2, 1]);
      expect(seen).toEqual([{ url: '/.well-known/ohttp-gateway', cookie: undefined }]);

      const admin = running.listeners.find((l) => l.listener === 'admin')?.url ?? '';
      const health = await request(`${admin}/healthz`);
      expect(health.statusCode).toBe(200);
      await health.body.dump();

      const result = await running.stop();
      stopped = true;
      expect(result.exitCode).toBe(0);
      const line = JSON.parse(readFileSync(join(cli.dir, 'relay.jsonl'), 'utf8').trim()) as {
        route: string;
        in: number;
        status: number;
      };
      expect(line).toMatchObject({ route: '/ohttp/resolver', in: 3, out: 3, status: 200 });
    } finally {
      if (!stopped) await running.stop();
    }
  });

  it('prints one line per listener for people', async () => {
    const stop = new AbortController();
    let stdout = '';
    let printed: () => void = () => undefined;
    const first = new Promise<void>((resolve) => (printed = resolve));
    const running = cli.run(['relay', 'serve', '--config', 'relay.json'], {
      signal: stop.signal,
      stdout: (text) => {
        stdout += text;
        printed();
      },
    });
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    stop.abort();
    expect((await running).exitCode).toBe(0);
    expect(stdout).toMatch(
      /^relay https:\/\/127\.0\.0\.1:\d+\nadmin http:\/\/127\.0\.0\.1:\d+\nohttp https:\/\/127\.0\.0\.1:\d+\/ohttp\/resolver\n$/,
    );
  });

  it('ends with one line and exit 1 without a config, or with a config it cannot use', async () => {
    const missing = await cli.run(['relay', 'serve']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/--config FILE is required .*\(ERR_USAGE\)\n$/);

    writeFileSync(
      join(cli.dir, 'bad.json'),
      JSON.stringify({
        listen: { relay: 0 },
        tls: { cert: 'relay-cert.pem', key: 'relay-key.pem' },
        gateways: { resolver: gatewayUrl.replace('https:', 'http:') },
        limits: { maxForward: 3 },
      }),
    );
    const bad = await cli.run(['relay', 'serve', '--config', 'bad.json']);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/^mimi-discovery: [^\n]*bad\.json: [^\n]*\(ERR_CONFIG_INVALID\)\n$/);
    expect(bad.stderr).toContain('gateways.resolver: expected an https URL');
    expect(bad.stderr).toContain('unknown key "maxForward" in limits');
  });

  it.each([{ path: ['relay'] }, { path: ['relay', 'serve'] }])(
    'describes $path with usage and examples',
    async ({ path }) => {
      const result = await cli.run([...path, '--help']);
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toContain(`Usage: ${['mimi-discovery', ...path].join(' ')} [options]`);
      expect(result.stdout).toContain('Examples:\n  $ mimi-discovery relay serve');
    },
  );
});
