import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { issueServerCertificate } from '@mimi-discovery/common';
import type { DiscoveryResult } from '@mimi-discovery/resolver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outboxCode } from '../../../test/helpers/registration.js';
import { freePort } from '../../../test/helpers/ports.js';
import type { Hangups } from '../src/index.js';
import { createCliFixture, serve, type Serving } from './fixture.js';

// `ctl` against a running resolver, built as an operator builds one with the command line —
// root directory, a DP for +44 with a published mapping, `resolver serve` — to flush its cache
// whole, by name and by CSI, and reload a renewed certificate on SIGHUP.

const cli = createCliFixture('ctl');
const ZONE = '4.4.e164.mimi.arpa';
const ALICE = 'tel:+442079460018';
const ALICE_NAME = `8.1.0.0.6.4.9.7.0.2.${ZONE}`;

const servers: Serving[] = [];
let stopResolver: () => Promise<unknown> = async () => undefined;
let apiUrl = '';
let apiPort = 0;
const hangupListeners = new Set<() => void>();
/** SIGHUP as the bin delivers it, to the resolver running in this process. */
const hangups: Hangups = {
  subscribe(listener) {
    hangupListeners.add(listener);
    return () => hangupListeners.delete(listener);
  },
};

beforeAll(async () => {
  const [rootDns, rootDoh, dpDns, dpDoh] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const dns = (port: number): string[] => ['--udp', String(port), '--tcp', String(port)];
  await cli.ok([
    'init',
    'root',
    '--dir',
    'root',
    ...dns(rootDns),
    '--doh',
    String(rootDoh),
    '--ca-dir',
    'ca',
  ]);
  await cli.ok([
    'init',
    'dp',
    '--dir',
    'dp',
    '--range',
    '+44',
    ...dns(dpDns),
    '--doh',
    String(dpDoh),
    '--api',
    '0',
    '--ca-dir',
    'ca',
  ]);
  await cli.ok([
    'delegate',
    '--config',
    'root/config.json',
    '--range',
    '+44',
    '--ns-from',
    'dp/config.json',
    '--ds-from',
    'dp/config.json',
  ]);
  await cli.ok(['trust-anchor', '--config', 'root/config.json', '--out', 'root.key']);
  await cli.ok(['hints', '--config', 'root/config.json', '--out', 'root-hints.json']);
  servers.push(await serve(cli, 'root/config.json'), await serve(cli, 'dp/config.json'));
  const api = ['--api', servers[1]?.listener('api').url ?? '', '--ca', 'ca/ca.pem'];
  await cli.ok(['recipient', 'keygen', '--out', 'alice.key']);
  await cli.ok(['recipient', 'prove', ...api, '--csi', ALICE]);
  const code = await outboxCode(join(cli.dir, 'dp', 'outbox.jsonl'), ALICE);
  await cli.ok([
    'recipient',
    'confirm',
    ...api,
    '--csi',
    ALICE,
    '--code',
    code,
    '--key',
    'alice.key',
  ]);
  await cli.ok(['recipient', 'publish', ...api, '--key', 'alice.key', '--msp', 'chat.example']);

  await writeResolverCertificate();
  writeFileSync(
    join(cli.dir, 'resolver.json'),
    JSON.stringify({
      rootHints: 'root-hints.json',
      trustAnchor: 'root.key',
      ca: 'ca/ca.pem',
      listen: { udp: 0, api: 0 },
      tls: { cert: 'resolver-cert.pem', key: 'resolver-key.pem' },
      log: { level: 'silent' },
    }),
  );
  // `resolver serve` in-process, with SIGHUP delivered through `hangups`.
  const stop = new AbortController();
  let stdout = '';
  let printed: () => void = () => undefined;
  const listening = new Promise<void>((resolve) => (printed = resolve));
  const running = cli.run(['resolver', 'serve', '--config', 'resolver.json', '--json'], {
    signal: stop.signal,
    hangups,
    stdout: (text) => {
      stdout += text;
      printed();
    },
  });
  const early = await Promise.race([listening, running]);
  if (early !== undefined) throw new Error(`resolver serve exited: ${early.stderr}`);
  await new Promise((resolve) => setImmediate(resolve));
  const api2 = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { listener: string; url?: string; port: number })
    .find((l) => l.listener === 'api');
  apiUrl = api2?.url ?? '';
  apiPort = api2?.port ?? 0;
  stopResolver = async () => {
    stop.abort();
    return running;
  };
}, 120_000);

afterAll(async () => {
  await stopResolver();
  await Promise.all(servers.map((s) => s.stop()));
  cli.cleanup();
});

/** A new certificate for the resolver from the network's CA; returns its PEM. */
async function writeResolverCertificate(): Promise<string> {
  const ca = {
    certPem: readFileSync(join(cli.dir, 'ca', 'ca.pem'), 'utf8'),
    keyPem: readFileSync(join(cli.dir, 'ca', 'ca-key.pem'), 'utf8'),
  };
  const leaf = await issueServerCertificate(ca, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  writeFileSync(join(cli.dir, 'resolver-key.pem.new'), leaf.keyPem, { mode: 0o600 });
  writeFileSync(join(cli.dir, 'resolver-cert.pem.new'), leaf.certPem);
  renameSync(join(cli.dir, 'resolver-key.pem.new'), join(cli.dir, 'resolver-key.pem'));
  renameSync(join(cli.dir, 'resolver-cert.pem.new'), join(cli.dir, 'resolver-cert.pem'));
  return leaf.certPem;
}

const ctl = ['ctl', '--config', 'resolver.json'];

async function upstreamQueries(): Promise<number> {
  return (await cli.json<{ upstreamQueries: number }>([...ctl, 'status'])).upstreamQueries;
}

async function lookupAlice(): Promise<void> {
  const result = await cli.json<DiscoveryResult>([
    'lookup',
    ALICE,
    '--resolver',
    apiUrl,
    '--ca',
    'ca/ca.pem',
  ]);
  expect(result.status).toBe('found');
}

describe('flush', () => {
  it('drops one CSI: its next lookup goes upstream, while a cached one does not', async () => {
    await lookupAlice();
    const warm = await upstreamQueries();
    await lookupAlice();
    expect(await upstreamQueries()).toBe(warm);
    const flushed = await cli.json<{ scope: string; flushed: number }>([
      ...ctl,
      'flush',
      '--csi',
      '+44 20 7946 0018',
    ]);
    expect(flushed).toMatchObject({ scope: 'csi', csi: ALICE });
    expect(flushed.flushed).toBeGreaterThanOrEqual(2);
    await lookupAlice();
    expect(await upstreamQueries()).toBeGreaterThan(warm);
  });

  it("drops one owner name's answers", async () => {
    await lookupAlice();
    const flushed = await cli.json<{ flushed: number }>([...ctl, 'flush', '--name', ALICE_NAME]);
    expect(flushed.flushed).toBeGreaterThanOrEqual(1);
    // Nothing of that name is left to drop.
    expect(
      (await cli.json<{ flushed: number }>([...ctl, 'flush', '--name', ALICE_NAME])).flushed,
    ).toBe(0);
  });

  it('empties the whole cache', async () => {
    await lookupAlice();
    const warm = await upstreamQueries();
    expect(await cli.json([...ctl, 'flush'])).toEqual({ scope: 'all' });
    await lookupAlice();
    // From the root down again: more than the one question of a single name.
    expect((await upstreamQueries()) - warm).toBeGreaterThan(1);
  });

  it('refuses what is not a CSI, and two scopes at once', async () => {
    const bad = await cli.run([...ctl, 'flush', '--csi', 'not a csi']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('ERR_CONTROL_BAD_REQUEST');
    const both = await cli.run([...ctl, 'flush', '--csi', ALICE, '--name', ALICE_NAME]);
    expect(both.exitCode).toBe(1);
  });
});

describe('the other commands of a resolver', () => {
  it('gives its status and metrics, and has no zones', async () => {
    const status = await cli.json<{ role: string; listeners: Array<{ listener: string }> }>([
      ...ctl,
      'status',
    ]);
    expect(status.role).toBe('resolver');
    expect(status.listeners.map((l) => l.listener)).toContain('control');
    const stats = await cli.json<Array<{ name: string }>>([...ctl, 'stats']);
    expect(stats.map((m) => m.name)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^resolver_/)]),
    );
    const zones = await cli.run([...ctl, 'zone-status']);
    expect(zones.exitCode).toBe(2);
    expect(zones.stderr).toContain('ERR_CONTROL_UNSUPPORTED');
  });

  it('tells where no server listens', async () => {
    const none = await cli.run(['ctl', '--socket', 'nowhere.sock', 'status']);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain('ERR_CONTROL_UNREACHABLE');
  });
});

describe('reload on SIGHUP', () => {
  function servedFingerprint(): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(
        { host: '127.0.0.1', port: apiPort, rejectUnauthorized: false },
        () => {
          resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
          socket.destroy();
        },
      );
      socket.on('error', reject);
    });
  }

  it('serves the renewed certificate on the JSON API, and lookups keep working', async () => {
    const renewed = await writeResolverCertificate();
    const expected = new X509Certificate(renewed).fingerprint256;
    expect(await servedFingerprint()).not.toBe(expected);
    expect(hangupListeners.size).toBe(1);
    for (const listener of hangupListeners) listener();
    const deadline = Date.now() + 10_000;
    while ((await servedFingerprint()) !== expected) {
      if (Date.now() > deadline) throw new Error('the renewed certificate is not served');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await lookupAlice();
    const status = await cli.json<{ role: string }>([...ctl, 'status']);
    expect(status.role).toBe('resolver');
  });

  it('stops cleanly: exit 0, no longer listening for SIGHUP, the socket removed', async () => {
    const result = (await stopResolver()) as { exitCode: number };
    stopResolver = async () => undefined;
    expect(result.exitCode).toBe(0);
    expect(hangupListeners.size).toBe(0);
    expect(existsSync(join(cli.dir, 'control.sock'))).toBe(false);
  });
});
