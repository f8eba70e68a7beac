import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildQuery,
  createTrustAnchor,
  createZoneKey,
  formatTrustAnchor,
  issueServerCertificate,
  queryUdp,
  type ServerAddress,
} from '@mimi-discovery/common';
import { DEFAULT_STARTUP_CHECK_ATTEMPTS, type DiscoveryResult } from '@mimi-discovery/resolver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outboxCode } from '../../../test/helpers/registration.js';
import { freePort } from '../../../test/helpers/ports.js';
import { createCliFixture, serve, serveCommand, type Serving } from './fixture.js';

// The whole network built with the command line on 127.0.0.1 — root directory, a DP for +44,
// the delegation, a recipient's published mapping — and then the real resolver in front of it:
// `lookup` resolving in-process from the hints and the trust anchor, and `resolver serve` with
// `lookup` through its JSON API and `dig`-style queries through its UDP front end.

const cli = createCliFixture('resolver');
const ZONE = '4.4.e164.mimi.arpa';
const ALICE = 'tel:+442079460018';
const ALICE_NAME = `8.1.0.0.6.4.9.7.0.2.${ZONE}`;
const NOBODY = 'tel:+442079460019';
const BOB = 'tel:+442079460017';

const servers: Serving[] = [];
let dpDns = 0;

/** The code the DP last wrote to its outbox for `csi`. */
function lastCode(csi: string): Promise<string> {
  return outboxCode(join(cli.dir, 'dp', 'outbox.jsonl'), csi);
}

beforeAll(async () => {
  const [rootDns, rootDoh, dpDoh] = [await freePort(), await freePort(), await freePort()];
  dpDns = await freePort();
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
  await cli.ok(['recipient', 'prove', ...api, '--csi', '+44 20 7946 0018']);
  await cli.ok([
    'recipient',
    'confirm',
    ...api,
    '--csi',
    ALICE,
    '--code',
    await lastCode(ALICE),
    '--key',
    'alice.key',
  ]);
  await cli.ok([
    'recipient',
    'publish',
    ...api,
    '--key',
    'alice.key',
    '--msp',
    'chat.example:primary,work',
  ]);

  // The resolver's own TLS certificate, from the network's local CA.
  const ca = {
    certPem: readFileSync(join(cli.dir, 'ca', 'ca.pem'), 'utf8'),
    keyPem: readFileSync(join(cli.dir, 'ca', 'ca-key.pem'), 'utf8'),
  };
  const leaf = await issueServerCertificate(ca, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  writeFileSync(join(cli.dir, 'resolver-cert.pem'), leaf.certPem);
  writeFileSync(join(cli.dir, 'resolver-key.pem'), leaf.keyPem);
  writeFileSync(
    join(cli.dir, 'resolver.json'),
    JSON.stringify({
      rootHints: 'root-hints.json',
      trustAnchor: 'root.key',
      ca: 'ca/ca.pem',
      listen: { udp: 0, tcp: 0, api: 0, admin: 0 },
      tls: { cert: 'resolver-cert.pem', key: 'resolver-key.pem' },
      log: { level: 'silent' },
    }),
  );
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  cli.cleanup();
});

/** `resolver serve --json` running in-process until the test stops it. */
function serveResolver(config: string, flags: readonly string[] = []): Promise<Serving> {
  return serveCommand(cli, ['resolver', 'serve'], ['--config', config, ...flags]);
}

function expectAliceFound(result: DiscoveryResult | undefined): void {
  expect(result).toMatchObject({ csi: ALICE, status: 'found' });
  expect(result?.mappings).toHaveLength(1);
  expect(result?.mappings[0]).toMatchObject({
    msps: [{ provider: 'chat.example', tags: ['primary', 'work'] }],
    zone: ZONE,
  });
  expect(result?.ttl).toBeGreaterThan(0);
}

describe('lookup, resolving in-process from the hints and the trust anchor', () => {
  const direct = ['--hints', 'root-hints.json', '--trust-anchor', 'root.key', '--ca', 'ca/ca.pem'];

  it('finds the published mapping over DoH, and authenticated denial for a number without one', async () => {
    const { results } = await cli.json<{ results: DiscoveryResult[] }>([
      'lookup',
      '+44 20 7946 0018',
      NOBODY,
      ...direct,
    ]);
    expectAliceFound(results[0]);
    expect(results[1]).toMatchObject({ csi: NOBODY, status: 'none', mappings: [] });
  });

  it('finds it over plain DNS too', async () => {
    const result = await cli.json<DiscoveryResult>([
      'lookup',
      ALICE,
      ...direct,
      '--transport',
      'dns',
      '--dns-port',
      String(dpDns),
    ]);
    expectAliceFound(result);
    expect(result.mappings[0]?.server).toContain(String(dpDns));
  });

  it('prints the mapping for people', async () => {
    const text = await cli.ok(['lookup', ALICE, ...direct]);
    expect(text).toMatch(
      /^tel:\+442079460018 {2}found {2}ttl \d+s\n {2}1\. chat\.example {2}contexts: any {2}tags: primary, work {2}from: zone 4\.4\.e164\.mimi\.arpa\n {2}verified: recipient key [\w-]{43} seq \d+, expires \S+, attested by prover [\w-]{43}\n {4}from: zone 4\.4\.e164\.mimi\.arpa, server https:\/\/127\.0\.0\.1:\d+\/dns-query\n$/,
    );
  });

  it('opens, in-process, the box sealed to a given audience key, and keeps entries of other contexts out', async () => {
    const api = ['--api', servers[1]?.listener('api').url ?? '', '--ca', 'ca/ca.pem'];
    await cli.ok(['recipient', 'keygen', '--out', 'bob.key']);
    await cli.ok(['recipient', 'prove', ...api, '--csi', BOB]);
    await cli.ok([
      'recipient',
      'confirm',
      ...api,
      '--csi',
      BOB,
      '--code',
      await lastCode(BOB),
      '--key',
      'bob.key',
    ]);
    await cli.ok(['recipient', 'audience-key', '--out', 'work.audience']);
    await cli.ok([
      'recipient',
      'publish',
      ...api,
      '--key',
      'bob.key',
      '--msp',
      'chat.example:personal',
      '--seal',
      'work.audience=wire.example:business',
    ]);
    const holder = await cli.json<DiscoveryResult>([
      'lookup',
      BOB,
      ...direct,
      '--context',
      'business',
      '--audience-key',
      'work.audience',
    ]);
    expect(holder.msps.map((m) => m.provider)).toEqual(['wire.example']);
    expect(holder.msps[0]?.audience).toMatch(/^[\w-]{11}$/);
    const stranger = await cli.ok(['lookup', BOB, ...direct, '--context', 'business']);
    expect(stranger).toContain(
      '  no MSP for this sender: the recipient listed its MSPs for other contexts, other MSPs, or sealed them\n  1 sealed box not opened: no audience key for it\n',
    );
    expect(stranger).not.toContain('chat.example');
  });

  it('ends in error, exit 2, when the trust anchor is not the root key', async () => {
    const stranger = createZoneKey('mimi.arpa', { seed: new Uint8Array(32).fill(1) });
    writeFileSync(
      join(cli.dir, 'wrong.key'),
      formatTrustAnchor(createTrustAnchor('mimi.arpa', [stranger.dnskey])),
    );
    const result = await cli.run([
      'lookup',
      ALICE,
      '--hints',
      'root-hints.json',
      '--trust-anchor',
      'wrong.key',
      '--ca',
      'ca/ca.pem',
      '--json',
    ]);
    expect(result.exitCode).toBe(2);
    expect(JSON.parse(result.stdout)).toMatchObject({ csi: ALICE, status: 'error' });
    expect(result.stderr).toMatch(
      /1 of 1 lookups ended in error \(\w+\) \(ERR_CLI_LOOKUP_FAILED\)\n$/,
    );
  });
});

describe('resolver serve', () => {
  it('serves the JSON API, DNS and metrics until stopped, then exits 0', async () => {
    const running = await serveResolver('resolver.json');
    try {
      expect(running.listeners.map((l) => l.listener)).toEqual(['udp', 'tcp', 'api', 'admin']);
      const api = running.listener('api').url ?? '';
      expect(api).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

      const { results } = await cli.json<{ results: DiscoveryResult[] }>([
        'lookup',
        ALICE,
        NOBODY,
        '--resolver',
        api,
        '--ca',
        'ca/ca.pem',
      ]);
      expectAliceFound(results[0]);
      expect(results[1]?.status).toBe('none');

      const udp: ServerAddress = running.listener('udp');
      const response = await queryUdp(
        udp,
        buildQuery(ALICE_NAME, 'MAP', { dnssecOk: true, recursionDesired: true }),
      );
      expect(response.rcode).toBe('NOERROR');
      expect(response.flags.ad).toBe(true);
      expect(response.flags.ra).toBe(true);
      expect(response.answers.map((rr) => rr.type).sort()).toEqual(['MAP', 'RRSIG']);
      const outside = await queryUdp(
        udp,
        buildQuery('example.com', 'A', { recursionDesired: true }),
      );
      expect(outside.rcode).toBe('REFUSED');

      const metrics = await (await fetch(`${running.listener('admin').url}/metrics`)).text();
      expect(metrics).toMatch(/^resolver_upstream_queries_total [1-9]\d*$/m);
      expect(metrics).toMatch(/^resolver_discoveries_total\{status="found"\} 1$/m);
    } finally {
      const result = await running.stop();
      expect(result.exitCode).toBe(0);
      expect(result.stderr).toBe('');
    }
  });

  it('keeps a query log with --query-log, and the API lookups in it with --query-log-api', async () => {
    const running = await serveResolver('resolver.json', [
      '--query-log',
      'resolver-queries.jsonl',
      '--query-log-api',
    ]);
    try {
      await cli.json([
        'lookup',
        ALICE,
        '--resolver',
        running.listener('api').url ?? '',
        '--ca',
        'ca/ca.pem',
      ]);
      const udp: ServerAddress = running.listener('udp');
      await queryUdp(udp, buildQuery(ALICE_NAME, 'MAP', { recursionDesired: true }));
    } finally {
      expect((await running.stop()).exitCode).toBe(0);
    }
    const lines = readFileSync(join(cli.dir, 'resolver-queries.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      expect.objectContaining({ name: ALICE_NAME, type: 'MAP', transport: 'api', status: 'found' }),
      expect.objectContaining({
        name: ALICE_NAME,
        type: 'MAP',
        transport: 'udp',
        rcode: 'NOERROR',
      }),
    ]);
    expect(lines.every((l) => !('peer' in l))).toBe(true);
  });

  it('prints one line per listener without --json', async () => {
    const stop = new AbortController();
    const running = cli.run(['resolver', 'serve', '--config', 'resolver.json'], {
      signal: stop.signal,
      stdout: () => stop.abort(),
    });
    const result = await running;
    expect(result.exitCode).toBe(0);
    expect(result.stdout.split('\n')[0]).toMatch(/^udp {3}127\.0\.0\.1:\d+$/);
    expect(result.stdout).toMatch(/^api {3}https:\/\/127\.0\.0\.1:\d+$/m);
    expect(result.stdout).toMatch(/^admin http:\/\/127\.0\.0\.1:\d+$/m);
  });

  it.each<[string, string[], string | undefined, RegExp]>([
    [
      'no config',
      ['resolver', 'serve'],
      undefined,
      /--config FILE is required \(or set MIMI_DISCOVERY_CONFIG\) \(ERR_USAGE\)/,
    ],
    [
      'a missing config',
      ['resolver', 'serve', '--config', 'nope.json'],
      undefined,
      /nope\.json: cannot read the config file: ENOENT.*\(ERR_CONFIG_READ\)/,
    ],
    [
      'a DP config',
      ['resolver', 'serve', '--config', 'dp/config.json'],
      undefined,
      /unknown keys? .*"role".*\(ERR_CONFIG_INVALID\)/,
    ],
    [
      'a config without listeners',
      ['resolver', 'serve', '--config', 'bare.json'],
      '{"rootHints":"root-hints.json","trustAnchor":"root.key"}',
      /bare\.json: listen: set at least one of udp, tcp, doh and api.*\(ERR_CONFIG_INVALID\)/,
    ],
    [
      '--query-log-api without a query log',
      ['resolver', 'serve', '--config', 'resolver.json', '--query-log-api'],
      undefined,
      /--query-log-api needs a query log: --query-log FILE or queryLog in the config \(ERR_USAGE\)/,
    ],
    [
      'a missing subcommand',
      ['resolver'],
      undefined,
      /resolver needs a command: serve \(see 'mimi-discovery resolver --help'\) \(ERR_USAGE\)/,
    ],
  ])('refuses %s (exit 1)', async (_what, argv, file, message) => {
    if (file !== undefined) writeFileSync(join(cli.dir, 'bare.json'), file);
    const result = await cli.run(argv);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/^mimi-discovery: [^\n]+\n$/);
  });

  it.each([[['resolver']], [['resolver', 'serve']]])('%j has help with examples', async (path) => {
    const result = await cli.run([...path, '--help']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`Usage: mimi-discovery ${path.join(' ')} [options]`);
    expect(result.stdout).toContain('Examples:\n  $ mimi-discovery ');
  });
});

describe('init resolver', () => {
  it('writes a config and a certificate that resolver serve starts from', async () => {
    await cli.ok([
      'init',
      'resolver',
      '--dir',
      'made',
      '--hints',
      'root-hints.json',
      '--trust-anchor',
      'root.key',
      '--ca-dir',
      'ca',
      '--udp',
      '0',
      '--api',
      '0',
      '--name',
      'resolver.example',
    ]);
    const config = JSON.parse(readFileSync(join(cli.dir, 'made', 'config.json'), 'utf8')) as {
      ca: string;
      tls: { cert: string };
    };
    expect(config.ca).toBe(join(cli.dir, 'ca', 'ca.pem'));
    const san = new X509Certificate(readFileSync(config.tls.cert)).subjectAltName ?? '';
    expect(san).toContain('DNS:resolver.example');
    expect(san).toContain('IP Address:127.0.0.1');
    const running = await serveResolver('made/config.json');
    try {
      const result = await cli.json<DiscoveryResult>([
        'lookup',
        ALICE,
        '--resolver',
        running.listener('api').url ?? '',
        '--ca',
        'ca/ca.pem',
      ]);
      expectAliceFound(result);
    } finally {
      expect((await running.stop()).exitCode).toBe(0);
    }
  });

  it('refuses hints it cannot start from, and writes nothing', async () => {
    writeFileSync(join(cli.dir, 'not-hints.json'), '{"apex": "mimi.arpa", "servers": []}');
    const result = await cli.run([
      'init',
      'resolver',
      '--dir',
      'unmade',
      '--hints',
      'not-hints.json',
      '--trust-anchor',
      'root.key',
      '--ca-dir',
      'ca',
      '--udp',
      '0',
    ]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/not-hints\.json.*\(ERR_CONFIG_INVALID\)\n$/);
    expect(existsSync(join(cli.dir, 'unmade'))).toBe(false);
  });
});

describe('resolver serve: the start-up check (startupCheck)', () => {
  /** `init resolver` into `dir` with `extra` flags; returns the config path. */
  async function initResolver(dir: string, extra: readonly string[]): Promise<string> {
    await cli.ok([
      'init',
      'resolver',
      '--dir',
      dir,
      '--hints',
      'root-hints.json',
      '--udp',
      '0',
      ...extra,
    ]);
    return `${dir}/config.json`;
  }

  it('refuses to start, in one line naming the certificate, when the upstream CA is not the root’s', async () => {
    const config = await initResolver('other-ca', [
      '--trust-anchor',
      'root.key',
      '--ca-dir',
      'other-ca-dir',
    ]);
    const result = await cli.run(['resolver', 'serve', '--config', config]);
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^mimi-discovery: [^\n]+\(ERR_CLI_RESOLVER_STARTUP\)\n$/);
    expect(result.stderr).toContain(`after ${DEFAULT_STARTUP_CHECK_ATTEMPTS} attempts`);
    expect(result.stderr).toContain('certificate of ns1.mimi.arpa at 127.0.0.1:');
  });

  it('refuses to start when the root’s keys do not match the trust anchor', async () => {
    const stranger = createZoneKey('mimi.arpa', { seed: new Uint8Array(32).fill(2) });
    writeFileSync(
      join(cli.dir, 'stranger.key'),
      formatTrustAnchor(createTrustAnchor('mimi.arpa', [stranger.dnskey])),
    );
    const config = await initResolver('stranger', [
      '--trust-anchor',
      'stranger.key',
      '--ca-dir',
      'ca',
    ]);
    const result = await cli.run(['resolver', 'serve', '--config', config]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(
      /no DNSKEY matches the trust anchor \(ERR_CLI_RESOLVER_STARTUP\)\n$/,
    );
  });

  it('starts without the check when it is turned off', async () => {
    const config = await initResolver('unchecked', [
      '--trust-anchor',
      'root.key',
      '--ca-dir',
      'other-ca-dir',
    ]);
    const path = join(cli.dir, config);
    const raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    writeFileSync(path, JSON.stringify({ ...raw, startupCheck: { enabled: false } }));
    const running = await serveResolver(config);
    expect((await running.stop()).exitCode).toBe(0);
  });
});
