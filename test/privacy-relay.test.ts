import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  csiToName,
  issueServerCertificate,
  parseCsi,
  silentLogger,
  type Csi,
} from '@mimi-discovery/common';
import { startRelay, type RelayExchange, type RunningRelay } from '@mimi-discovery/relay';
import {
  DiscoveryClientError,
  createDiscoveryClient,
  createResolver,
  readResolverFiles,
  type DiscoveryClient,
  type DiscoveryResult,
} from '@mimi-discovery/resolver';
import { freePortBlock } from './helpers/ports.js';
import {
  DEMO_PORTS,
  DEMO_READY_MS,
  startDemo,
  stopDemo,
  waitReady,
  type Demo,
  type NetworkFile,
} from './helpers/demo.js';

// R6 and R8 on the oblivious path (docs/privacy.md): the demo network with its query logs on,
// the resolver's log writing peers, and a relay of the test's own — the relay package's server,
// leaving from 127.0.0.3 — whose observer hears every exchange as the relay sees it after TLS.
//
// - A contact sync of 1,000 CSIs through the relay, with tokens of the demo's issuer and the
//   gateway's key checked against its KEYCONF in the tree: the resolver's log holds the relay's
//   address and no other; no CSI, in any form the tree or a person would write it, is in the
//   octets the relay handled; the results equal those of the resolver's JSON API asked directly.
// - A client enumerating 10,000 distinct CSIs is stopped when its tokens run out (the issuer's
//   cap per user and period), while another client with tokens is still served.

/** The sync of the Done-when. */
const SYNC_SIZE = 1000;
/** The enumeration of the Done-when. */
const ENUMERATION_SIZE = 10_000;
/** Where the relay's connections to the gateway leave from: the address the resolver may see. */
const RELAY_SOURCE = '127.0.0.3';

/** The parts of network.json this test reads beyond the demo helper's shape. */
interface ObliviousNetwork {
  gateway: { url: string; keyName: string };
  issuer: { users: Array<{ id: string; credential: string }>; tokensPerPeriod: number };
  relay: { ohttp: string };
}

/** CSIs as people type them, deterministic, of every kind of range the demo has. */
function family(count: number, make: (i: number) => string): string[] {
  return Array.from({ length: count }, (_, i) => make(i));
}

function syncCsis(net: NetworkFile): string[] {
  const taken = new Set(net.examples.map((e) => e.canonical));
  const generated = [
    ...family(300, (i) => `+44 20 7946 ${String(1000 + i).padStart(4, '0')}`),
    ...family(150, (i) => `+1 415 555 ${String(1000 + i).padStart(4, '0')}`),
    ...family(150, (i) => `+1 202 555 ${String(1000 + i).padStart(4, '0')}`),
    ...family(100, (i) => `+33 1 42 68 ${String(1000 + i).padStart(4, '0')}`),
    ...family(150, (i) => `person${i}@example.com`),
    ...family(50, (i) => `member${i}@chat.example`),
    ...family(100, (i) => `someone${i}@example.org`),
  ].filter((csi) => !taken.has(parseCsi(csi)));
  return [...net.examples.map((e) => e.csi), ...generated].slice(0, SYNC_SIZE);
}

/** 10,000 distinct CSIs no sync of this test asks, spread over the demo's ranges. */
function enumerationCsis(): string[] {
  return [
    ...family(3000, (i) => `+44 20 8${String(i).padStart(7, '0')}`),
    ...family(2000, (i) => `+1 415 4${String(i).padStart(6, '0')}`),
    ...family(2000, (i) => `+1 202 4${String(i).padStart(6, '0')}`),
    ...family(1500, (i) => `enum${i}@example.com`),
    ...family(1500, (i) => `+33 6 ${String(i).padStart(8, '0')}`),
  ];
}

/** What a sender acts on, without times. */
function summary(d: DiscoveryResult): unknown {
  return {
    csi: d.csi,
    status: d.status,
    error: d.error?.reason,
    mappings: d.mappings
      .map((m) => ({ zone: m.zone, msps: m.msps, key: m.key, seq: m.seq }))
      .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
  };
}

/**
 * The forms in which a CSI could show in octets: as typed, canonical, its digits, its name in
 * the tree (reversed digits; an email's hashed local part), and its local part.
 */
function needles(input: string): string[] {
  const csi = parseCsi(input);
  const name = csiToName(csi, 'mimi.arpa');
  if (csi.startsWith('tel:')) {
    const digits = csi.slice('tel:+'.length);
    // The name's labels down to the country code: a run of reversed digits, dotted.
    return [input, csi, digits, name.split('.').slice(0, digits.length).join('.')];
  }
  const [local = ''] = csi.slice('mailto:'.length).split('@');
  return [input, csi, name.split('.')[0] as string, `${local}@`];
}

/** The needles of `csis` found in `haystack` (latin1: one character per octet). */
function found(haystack: string, csis: readonly string[]): string[] {
  return csis.flatMap((csi) => needles(csi).filter((n) => haystack.includes(n)));
}

/** Every octet the relay handled — targets, header values, bodies both ways — as latin1. */
function relayOctets(exchanges: readonly RelayExchange[]): string {
  return exchanges
    .map((e) =>
      [
        e.target,
        JSON.stringify(e.headers),
        Buffer.from(e.requestBody).toString('latin1'),
        Buffer.from(e.responseBody).toString('latin1'),
      ].join('\n'),
    )
    .join('\n');
}

let dir: string;
let demo: Demo | undefined;
let net: NetworkFile & ObliviousNetwork;
let relay: RunningRelay | undefined;
const exchanges: RelayExchange[] = [];
let ca: string;
let direct: DiscoveryClient;
const clients: DiscoveryClient[] = [];

function credential(id: string): string {
  const user = net.issuer.users.find((u) => u.id === id);
  if (user === undefined) throw new Error(`the demo's issuer has no user ${id}`);
  return readFileSync(user.credential, 'utf8').trim();
}

/** A client of `user` through the test's relay, checking the gateway's key in the tree. */
function throughRelay(user: string): DiscoveryClient {
  if (relay === undefined) throw new Error('no relay');
  const client = createDiscoveryClient({
    relay: {
      relay: `${relay.url}/ohttp/resolver`,
      ca,
      credential: credential(user),
      keyCheck: {
        resolver: createResolver(resolverFiles, { log: silentLogger }),
        keyName: net.gateway.keyName,
      },
    },
  });
  clients.push(client);
  return client;
}

/** Root hints, trust anchor and CA of the demo: the key check's own resolver walks from them. */
let resolverFiles: Awaited<ReturnType<typeof readResolverFiles>>;

/** The resolver's query log lines. */
function resolverLog(): Array<{ name: string; transport: string; peer?: string }> {
  const resolver = net.servers.find((s) => s.role === 'resolver');
  if (typeof resolver?.queryLog !== 'string') throw new Error('the resolver keeps no query log');
  return readFileSync(resolver.queryLog, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as { name: string; transport: string; peer?: string });
}

beforeAll(
  async () => {
    dir = mkdtempSync(join(tmpdir(), 'mimi-relay-'));
    const portBase = await freePortBlock(DEMO_PORTS);
    const args = ['--dir', dir, '--port-base', String(portBase), '--query-log'];
    demo = startDemo(args);
    await waitReady(demo);
    // The resolver's query log writes peers only when its config says so: say it, and restart.
    await stopDemo(demo);
    demo = undefined;
    const first = JSON.parse(readFileSync(join(dir, 'network.json'), 'utf8')) as NetworkFile;
    const resolverServer = first.servers.find((s) => s.role === 'resolver');
    if (resolverServer === undefined || typeof resolverServer.queryLog !== 'string') {
      throw new Error('the demo has no resolver with a query log');
    }
    const config = JSON.parse(readFileSync(resolverServer.config, 'utf8')) as Record<
      string,
      unknown
    >;
    config['queryLog'] = { path: resolverServer.queryLog, api: true, peer: true };
    writeFileSync(resolverServer.config, `${JSON.stringify(config, null, 2)}\n`);
    demo = startDemo(args);
    await waitReady(demo);
    net = JSON.parse(readFileSync(join(dir, 'network.json'), 'utf8')) as NetworkFile &
      ObliviousNetwork;
    ca = readFileSync(net.ca, 'utf8');
    resolverFiles = await readResolverFiles({
      rootHints: net.hints,
      trustAnchor: net.trustAnchor.ds,
      ca: net.ca,
    });

    const caDir = join(dir, 'ca');
    const leaf = await issueServerCertificate(
      {
        certPem: readFileSync(join(caDir, 'ca.pem'), 'utf8'),
        keyPem: readFileSync(join(caDir, 'ca-key.pem'), 'utf8'),
      },
      { hostnames: ['localhost'], ipAddresses: ['127.0.0.1'] },
    );
    relay = await startRelay(
      {
        listen: { relay: 0 },
        tls: { cert: leaf.certPem, key: leaf.keyPem },
        ca,
        gateways: { resolver: net.gateway.url },
        sourceAddress: RELAY_SOURCE,
      },
      { log: silentLogger, observe: (exchange) => exchanges.push(exchange) },
    );
    direct = createDiscoveryClient({ url: net.resolver.api, ca });
  },
  2 * DEMO_READY_MS + 60_000,
);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await direct?.close();
  await relay?.close();
  await stopDemo(demo);
  rmSync(dir, { recursive: true, force: true });
});

describe('a contact sync of 1,000 CSIs through the oblivious relay (R6, docs/privacy.md)', () => {
  let csis: string[];
  let relayed: DiscoveryResult[];
  let before: number;
  /** Lines of the resolver's query log before the sync (the demo's own checks at its starts). */
  let logged: number;

  beforeAll(async () => {
    csis = syncCsis(net);
    expect(csis).toHaveLength(SYNC_SIZE);
    before = exchanges.length;
    logged = resolverLog().length;
    relayed = await throughRelay('sender1').discoverMany(csis);
    // Query logs are written behind the answers: wait until every line is on disk.
    await new Promise((r) => setTimeout(r, 1500));
  }, 180_000);

  it('gets the results the resolver gives when asked directly', async () => {
    const asked = await direct.discoverMany(csis);
    expect(relayed.map(summary)).toEqual(asked.map(summary));
    // And the demo's own expectations for its examples.
    for (const example of net.examples) {
      const result = relayed[csis.indexOf(example.csi)];
      expect(result?.status, example.csi).toBe(example.expect);
    }
  }, 120_000);

  it("shows the resolver the relay's address and no other", () => {
    const lines = resolverLog().slice(logged);
    const oblivious = lines.filter((l) => l.transport === 'ohttp');
    // Every CSI of the sync was looked up through the gateway, each logged with its peer.
    expect(oblivious.length).toBeGreaterThanOrEqual(SYNC_SIZE);
    expect(new Set(oblivious.map((l) => l.peer))).toEqual(new Set([RELAY_SOURCE]));
    // Nothing else in the log carries an address (direct API lines never do).
    const peers = new Set(lines.flatMap((l) => (l.peer === undefined ? [] : [l.peer])));
    expect(peers).toEqual(new Set([RELAY_SOURCE]));
  });

  it('gives the relay no CSI: no number, name or hashed name in the octets it handled', () => {
    const handled = exchanges.slice(before);
    // The key fetch, the token-less probe and one request per 100 CSIs.
    expect(handled.length).toBeGreaterThanOrEqual(SYNC_SIZE / 100);
    expect(handled.every((e) => e.target === '/ohttp/resolver')).toBe(true);
    expect(found(relayOctets(handled), csis)).toEqual([]);
    // Sizes show a size class only (RFC 9292 §3.8 padding): every request of the sync — one CSI
    // or a hundred — is as long as every other.
    const posts = handled.filter((e) => e.method === 'POST');
    expect(new Set(posts.map((e) => e.requestBody.length)).size).toBe(1);
    // The same search does find them in what the resolver's JSON API is sent directly.
    const plain = JSON.stringify({ csis });
    expect(found(plain, csis.slice(0, 50)).length).toBeGreaterThanOrEqual(50);
  });
});

describe('enumeration through the relay stops when the tokens run out (R8)', () => {
  it(`stops a client enumerating ${ENUMERATION_SIZE} CSIs at its tokens, while another client is served`, async () => {
    const csis = enumerationCsis();
    expect(new Set(csis.map((c) => parseCsi(c) as Csi)).size).toBe(ENUMERATION_SIZE);
    const before = resolverLog().filter((l) => l.transport === 'ohttp').length;
    const error = await throughRelay('sender2')
      .discoverMany(csis)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error, String(error)).toBeInstanceOf(DiscoveryClientError);
    const refused = error as DiscoveryClientError;
    expect(refused.code, refused.message).toBe('ERR_TOKENS_EXHAUSTED');
    // The results obtained are those its tokens paid for; the rest are errors, never `none`.
    const results = refused.results ?? [];
    expect(results).toHaveLength(ENUMERATION_SIZE);
    const served = results.filter((r) => r.status !== 'error');
    const cap = net.issuer.tokensPerPeriod * 100;
    expect(served.length).toBeGreaterThan(0);
    expect(served.length).toBeLessThanOrEqual(cap);
    // Requests run a few at a time, so which ones the last tokens paid for is not fixed; the
    // others are refusals for want of tokens.
    const refusedResults = results.filter((r) => r.status === 'error');
    expect(refusedResults.length).toBeGreaterThanOrEqual(ENUMERATION_SIZE - cap);
    expect(new Set(refusedResults.map((r) => r.error?.reason))).toEqual(new Set(['limit']));
    // The gateway looked up no more CSIs than the tokens covered.
    await new Promise((r) => setTimeout(r, 1500));
    const looked = resolverLog().filter((l) => l.transport === 'ohttp').length - before;
    expect(looked).toBeLessThanOrEqual(cap);

    // Another client, with tokens of its own, is still served.
    const other = await throughRelay('sender1').discover(net.examples[0]?.csi as string);
    expect(other.status).toBe('found');
  }, 300_000);
});
