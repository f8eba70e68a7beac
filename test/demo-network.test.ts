import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildQuery,
  createDohClient,
  decodeKeyConfigs,
  encodeKeyConfig,
  queryUdp,
  type DohClient,
} from '@mimi-discovery/common';
import {
  createDiscoveryClient,
  parseDiscoveryResult,
  type DiscoveryClient,
  type DiscoveryResult,
} from '@mimi-discovery/resolver';
import { freePortBlock } from './helpers/ports.js';
import {
  CLI_BIN,
  DEMO_PORTS,
  DEMO_READY_MS,
  startDemo,
  waitFor,
  waitReady,
  type Demo,
  type NetworkFile,
  type NetworkServer,
} from './helpers/demo.js';

// `mimi-discovery demo` as a user runs it: a child process that builds a whole network of child
// processes. Everything the test knows about the network it reads from network.json, as a
// script that has never seen the network would: every server of the tree is asked over DoH and
// UDP, the resolver's JSON API answers every example CSI as expected, and so does the
// oblivious relay with a token of the issuer, with the gateway's key that network.json lists;
// each admin port is healthy. Then a DP dies (SIGKILL), the demo says so, and the resolver
// keeps answering from its cache; the demo stops on SIGTERM leaving no process behind, and
// starts again from its data directory with the same answers and keys, and stops on SIGINT.

const BIN = CLI_BIN;

/** The servers of the tree and the resolver: those that speak DNS. */
function dnsServers(): Array<NetworkServer & { udp: { host: string; port: number }; doh: string }> {
  return net.servers.flatMap((s) =>
    s.udp === null || s.doh === null ? [] : [{ ...s, udp: s.udp, doh: s.doh }],
  );
}
const READY_MS = DEMO_READY_MS;
const PORTS = DEMO_PORTS;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits (bounded) until none of `pids` runs any more; returns those still running. */
async function leftRunning(pids: readonly number[]): Promise<number[]> {
  const deadline = Date.now() + 3000;
  let left = pids.filter(alive);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    left = left.filter(alive);
  }
  return left;
}

let dir: string;
let portBase: number;
let net: NetworkFile;
let resolverApi: DiscoveryClient;
/** The status of the JSON API's last response. */
let apiStatus = 0;
let doh: DohClient;
let demo: Demo;
const extra: ChildProcess[] = [];
/** Every example's answer in the first run: CSI, status, MSPs, recipient keys. */
let firstAnswers: Array<[string, string, string[], string[]]> = [];

async function discover(csi: string): Promise<DiscoveryResult> {
  const result = await resolverApi.discover(csi);
  expect(apiStatus).toBe(200);
  return result;
}

const providersOf = (d: DiscoveryResult): string[] =>
  [...new Set(d.mappings.flatMap((m) => m.msps.map((msp) => msp.provider)))].sort();
const zonesOf = (d: DiscoveryResult): string[] =>
  [...new Set(d.mappings.map((m) => m.zone))].sort();
const answersOf = async (): Promise<Array<[string, string, string[], string[]]>> =>
  Promise.all(
    net.examples.map(async (e) => {
      const d = await discover(e.csi);
      return [e.csi, d.status, providersOf(d), d.mappings.map((m) => m.key).sort()];
    }),
  );

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mimi-demo-'));
  portBase = await freePortBlock(PORTS);
  demo = startDemo(['--dir', dir, '--port-base', String(portBase)]);
  await waitReady(demo);
  net = JSON.parse(readFileSync(join(dir, 'network.json'), 'utf8')) as NetworkFile;
  const ca = readFileSync(net.ca, 'utf8');
  resolverApi = createDiscoveryClient({
    url: net.resolver.api,
    ca,
    onResponse: ({ status }) => (apiStatus = status),
  });
  doh = createDohClient({ ca });
}, READY_MS + 10_000);

afterAll(async () => {
  for (const c of extra) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (demo.child.exitCode === null && demo.child.signalCode === null) {
    demo.child.kill('SIGTERM');
    await demo.exited;
  }
  await doh?.close();
  await resolverApi?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a network started with mimi-discovery demo', () => {
  it('describes itself in network.json', () => {
    expect(net.portBase).toBe(portBase);
    expect(net.servers.map((s) => s.role).sort()).toEqual([
      'dp',
      'dp',
      'dp',
      'dp',
      'dp',
      'issuer',
      'relay',
      'resolver',
      'root',
    ]);
    // The issuer and the relay speak no DNS; everything else does.
    expect(dnsServers().map((s) => s.role)).not.toContain('relay');
    expect(dnsServers()).toHaveLength(net.servers.length - 2);
    for (const s of net.servers) expect(s.pid).toBeGreaterThan(0);
    // No query log unless asked for (design §10).
    for (const s of net.servers) expect(s.queryLog).toBeNull();
    for (const file of [net.ca, net.trustAnchor.ds, net.trustAnchor.bind, net.hints]) {
      expect(readFileSync(file, 'utf8').length).toBeGreaterThan(0);
    }
    expect(new Set(net.examples.map((e) => e.expect))).toEqual(new Set(['found', 'empty', 'none']));
  });

  it('answers for its zones on every authoritative server, over DoH and UDP', async () => {
    for (const s of dnsServers().filter((x) => x.role === 'root' || x.role === 'dp')) {
      for (const zone of s.zones) {
        const viaDoh = await doh.query(s.doh, buildQuery(zone, 'SOA', { dnssecOk: true }));
        const viaUdp = await queryUdp(s.udp, buildQuery(zone, 'SOA', { dnssecOk: true }));
        for (const response of [viaDoh, viaUdp]) {
          expect(response.rcode, `${s.name} ${zone}`).toBe('NOERROR');
          expect(response.flags.aa).toBe(true);
          expect(response.answers.map((a) => a.type)).toContain('SOA');
          expect(response.answers.map((a) => a.type)).toContain('RRSIG');
        }
      }
    }
  });

  it('resolves through the resolver’s DNS front end, validated', async () => {
    const apex = net.servers.find((s) => s.role === 'root')?.zones[0] ?? 'mimi.arpa';
    const response = await queryUdp(
      net.resolver.udp,
      buildQuery(apex, 'SOA', { recursionDesired: true, dnssecOk: true }),
    );
    expect(response.rcode).toBe('NOERROR');
    expect(response.flags.ad).toBe(true);
  });

  it('gives the expected result for every example CSI through the JSON API', async () => {
    for (const e of net.examples) {
      const d = await discover(e.csi);
      expect(d.csi).toBe(e.canonical);
      expect(d.status, e.csi).toBe(e.expect);
      expect(providersOf(d), e.csi).toEqual(e.providers);
      if (e.expect === 'found') expect(zonesOf(d), e.csi).toEqual(e.zones);
    }
    firstAnswers = await answersOf();
  });

  it('is healthy on every admin port', async () => {
    for (const s of net.servers) {
      const response = await request(`${s.admin}/healthz`);
      expect(response.statusCode, s.name).toBe(200);
      await response.body.dump();
    }
  });

  it('lists the relay, the gateway’s published keys and the issuer, whose users hold credentials', async () => {
    const relay = net.servers.find((s) => s.role === 'relay');
    const issuer = net.servers.find((s) => s.role === 'issuer');
    expect(relay?.api).toBe(net.relay.url);
    expect(issuer?.api).toBe(net.issuer.url);
    expect(net.relay.ohttp).toBe(`${net.relay.url}/ohttp/resolver`);
    expect(net.gateway.url).toBe(`${net.resolver.api}/.well-known/ohttp-gateway`);
    expect(net.issuer.name).toBe(new URL(net.issuer.url).host);
    expect(net.issuer.users.map((u) => u.id)).toEqual(['sender1', 'sender2']);
    for (const u of net.issuer.users) {
      expect(readFileSync(u.credential, 'utf8').trim()).toMatch(/^[A-Za-z0-9_-]{20,}$/);
      expect(statSync(u.credential).mode & 0o777).toBe(0o600);
    }
    // The key configs network.json lists are those the gateway serves (RFC 9540 §4), newest
    // first, and they are in its public-key file, which the demo published in the tree.
    const agent = new Agent({ connect: { ca: readFileSync(net.ca, 'utf8') } });
    try {
      const response = await request(net.gateway.url, { dispatcher: agent });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toBe('application/ohttp-keys');
      const served = decodeKeyConfigs(new Uint8Array(await response.body.arrayBuffer()));
      expect(served.map((c) => Buffer.from(encodeKeyConfig(c)).toString('base64url'))).toEqual(
        net.gateway.keyConfigs,
      );
    } finally {
      await agent.close();
    }
    const published = JSON.parse(readFileSync(net.gateway.publicKeys, 'utf8')) as {
      keys: Array<{ kind: string; config: string }>;
    };
    for (const config of net.gateway.keyConfigs) {
      expect(published.keys).toContainEqual(expect.objectContaining({ kind: 'ohttp', config }));
    }
  });

  it('answers mimi-discovery lookup --relay with a token of the issuer', () => {
    const found = net.examples.find((e) => e.expect === 'found');
    const user = net.issuer.users[1];
    if (found === undefined || user === undefined) throw new Error('no found example or user');
    const result = spawnSync(
      process.execPath,
      [
        BIN,
        'lookup',
        found.csi,
        '--relay',
        net.relay.ohttp,
        '--credential',
        user.credential,
        '--key-name',
        net.gateway.keyName,
        '--hints',
        net.hints,
        '--trust-anchor',
        net.trustAnchor.ds,
        '--ca',
        net.ca,
        '--json',
      ],
      { encoding: 'utf8' },
    );
    expect(result.status, result.stderr).toBe(0);
    const d = parseDiscoveryResult(JSON.parse(result.stdout)) ?? expect.unreachable();
    expect(d.status).toBe('found');
    expect(providersOf(d)).toEqual(found.providers);
  });

  it('answers mimi-discovery lookup --resolver', () => {
    const found = net.examples.find((e) => e.expect === 'found');
    if (found === undefined) throw new Error('no found example');
    const result = spawnSync(
      process.execPath,
      [BIN, 'lookup', '--resolver', net.resolver.api, '--ca', net.ca, found.csi, '--json'],
      { encoding: 'utf8' },
    );
    expect(result.status, result.stderr).toBe(0);
    const d = parseDiscoveryResult(JSON.parse(result.stdout)) ?? expect.unreachable();
    expect(d.status).toBe('found');
    expect(providersOf(d)).toEqual(found.providers);
  });

  it('keeps answering from the resolver’s cache while a DP is down, and again once it is back', async () => {
    const dp = net.servers.find((s) => s.zones.includes('4.4.e164.mimi.arpa'));
    const cached = net.examples.find(
      (e) => e.canonical.startsWith('tel:+44') && e.expect === 'found',
    );
    if (dp?.pid == null || cached === undefined) throw new Error('no +44 DP or example');
    // Never asked before, so the resolver has nothing cached for it.
    const fresh = '+44 20 7946 0555';

    process.kill(dp.pid, 'SIGKILL');
    await waitFor(
      demo.stderr,
      new RegExp(`${dp.name} \\(pid ${dp.pid}\\) exited unexpectedly`),
      5000,
    );
    expect(await leftRunning([dp.pid])).toEqual([]);

    // The MAP TTL (300 s) has not run out: the cached answer is served as it is, not stale.
    const whileDown = await discover(cached.csi);
    expect(whileDown.status).toBe('found');
    expect(providersOf(whileDown)).toEqual(cached.providers);
    // A question the cache cannot answer shows the DP is really gone.
    expect((await discover(fresh)).status).toBe('error');

    // The operator restarts the DP from its data directory.
    const restarted = spawn(process.execPath, [BIN, 'serve', '--config', dp.config], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    extra.push(restarted);
    let out = '';
    restarted.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
    await waitFor(() => out, /^admin /m, 15_000);
    let after = await discover(fresh);
    for (let i = 0; i < 50 && after.status === 'error'; i++) {
      await new Promise((r) => setTimeout(r, 200));
      after = await discover(fresh);
    }
    expect(after.status).toBe('none');
    expect((await discover(cached.csi)).status).toBe('found');

    restarted.kill('SIGTERM');
    await new Promise((r) => restarted.once('exit', r));
  });

  it('stops on SIGTERM with exit 0 and leaves no process behind', async () => {
    demo.child.kill('SIGTERM');
    const { code } = await demo.exited;
    expect(code, demo.stderr()).toBe(0);
    const pids = net.servers.flatMap((s) => (s.pid === null ? [] : [s.pid]));
    expect(await leftRunning(pids)).toEqual([]);
  });

  it('starts again from its data directory with the same answers, and stops on SIGINT', async () => {
    demo = startDemo(['--dir', dir, '--query-log']);
    await waitReady(demo);
    expect(demo.stdout()).toMatch(/^restarting the network/m);
    const first = net;
    net = JSON.parse(readFileSync(join(dir, 'network.json'), 'utf8')) as NetworkFile;
    expect(net.portBase).toBe(first.portBase);
    expect(net.servers.map((s) => [s.name, s.doh, s.api])).toEqual(
      first.servers.map((s) => [s.name, s.doh, s.api]),
    );
    // The very same mappings (recipient keys included), not new registrations; the same
    // gateway keys (none due for rotation), published again, checked through the relay again.
    expect(firstAnswers).toHaveLength(first.examples.length);
    expect(await answersOf()).toEqual(firstAnswers);
    expect(net.gateway.keyConfigs).toEqual(first.gateway.keyConfigs);
    expect(demo.stdout()).toMatch(/^verified lookups through the oblivious relay/m);
    expect(demo.stdout()).not.toMatch(/WRONG/);

    // With --query-log, network.json lists a query log for every server but the issuer,
    // written as they answer.
    const resolverLog = net.servers.find((s) => s.role === 'resolver')?.queryLog ?? '';
    const dp44Log = net.servers.find((s) => s.name === 'dp44')?.queryLog ?? '';
    const linesOf = (path: string): Array<Record<string, unknown>> =>
      readFileSync(path, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const apiLines = (): Array<Record<string, unknown>> =>
      linesOf(resolverLog).filter((l) => l['transport'] === 'api');
    for (let i = 0; i < 50 && apiLines().length < 2 * net.examples.length; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const s of dnsServers()) {
      expect(s.queryLog, s.name).toBe(join(dir, 'logs', `${s.name}.queries.jsonl`));
      // Every line is one JSON object; none holds a client address.
      for (const line of linesOf(s.queryLog ?? '')) {
        expect(Object.keys(line).slice(0, 4)).toEqual(['t', 'name', 'type', 'transport']);
        expect(line).not.toHaveProperty('peer');
      }
    }
    expect(net.servers.find((s) => s.role === 'issuer')?.queryLog).toBeNull();
    // The relay's log holds who asked and how much, never what (docs/operations.md §10): the
    // demo's check at start, a key fetch and requests through the relay resource.
    const relayLog = net.servers.find((s) => s.role === 'relay')?.queryLog ?? '';
    expect(relayLog).toBe(join(dir, 'logs', 'relay.queries.jsonl'));
    const relayLines = linesOf(relayLog);
    expect(relayLines).toContainEqual(
      expect.objectContaining({ method: 'POST', route: '/ohttp/resolver', status: 200 }),
    );
    for (const line of relayLines) {
      expect(Object.keys(line).slice(0, 3)).toEqual(['t', 'client', 'method']);
      expect(line).not.toHaveProperty('name');
    }
    const relayText = readFileSync(relayLog, 'utf8');
    for (const e of net.examples) {
      expect(relayText).not.toContain(e.canonical.replace(/^[a-z]+:/, ''));
    }
    // The resolver saw the check through the relay's gateway as `ohttp`, one line a CSI.
    expect(linesOf(resolverLog).filter((l) => l['transport'] === 'ohttp').length).toBe(
      net.examples.length,
    );
    // The resolver's JSON API lookups (each example, twice: the check at start and the test's).
    expect(apiLines()).toHaveLength(2 * net.examples.length);
    // The +44 DP was asked for the MAP of the +44 example.
    expect(linesOf(dp44Log)).toContainEqual(
      expect.objectContaining({ name: '8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa', type: 'MAP' }),
    );

    demo.child.kill('SIGINT');
    const { code } = await demo.exited;
    expect(code, demo.stderr()).toBe(0);
    const pids = net.servers.flatMap((s) => (s.pid === null ? [] : [s.pid]));
    expect(await leftRunning(pids)).toEqual([]);
  });
});
