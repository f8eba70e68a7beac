import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PADDING_OPTION_CODE,
  RESPONSE_PADDING_BLOCK_OCTETS,
  buildQuery,
  createAttestation,
  createMapping,
  csiToName,
  decodeMessage,
  encodeMapping,
  encodeMessage,
  keyPairFromSeed,
  parseCsi,
  record,
  silentLogger,
  type Csi,
  type Message,
} from '@mimi-discovery/common';
import { delegate, type RunningDp } from '@mimi-discovery/authoritative';
import {
  UPSTREAM_DOH_LANES,
  createDiscoveryClient,
  createResolver,
  startResolverServer,
  type Resolver,
  type RunningResolverServer,
} from '@mimi-discovery/resolver';
import {
  APEX,
  createLoopbackDir,
  delegationTo,
  initServer,
  resolverConfigFor,
  serveServer,
  type LoopbackDir,
} from '../examples/loopback-network.js';
import { TWICE_OVER_EACH, askTwiceOverEach, dohPost, readQueryLog } from './helpers/query-log.js';

// Query logs (design §10) on a network of real servers — a root and a +44 DP started as
// `mimi-discovery serve` starts them, a resolver behind its DNS, DoH and JSON API front ends —
// and what the logs show of a contact sync: the DP receives the book in an order of the
// resolver's own, over several connections (issue: batches that do not give the book away).

const ZONE = '4.4.e164.mimi.arpa';
/** CSIs of the contact book: enough that a random order equals the input with probability 1/64!. */
const BOOK = Array.from({ length: 64 }, (_, i) => `+44 20 7946 ${String(1000 + i)}`);
/** CSIs of the book the DNS tests ask before the sync. */
const ASKED_BEFORE = 3;
const RECIPIENT = keyPairFromSeed(new Uint8Array(32).fill(0x61));

let files: LoopbackDir;
let root: RunningDp;
let dp: RunningDp;
let resolver: Resolver;
let server: RunningResolverServer;
const logs = { root: '', dp: '', resolver: '' };

/** Publishes a mapping of `csi` into the DP's store, attested by the DP's prover. */
async function publish(csi: string): Promise<void> {
  const canonical = parseCsi(csi);
  const now = Math.floor(Date.now() / 1000);
  const att = createAttestation(
    { csi: canonical, key: RECIPIENT.publicKey, nbf: now - 60, exp: now + 86_400 },
    dp.store.proverKey().secretKey,
  );
  const mapping = createMapping(
    {
      csi: canonical,
      msps: [{ provider: 'chat.example', tags: [] }],
      seq: 1,
      iat: now,
      exp: now + 86_400,
      new: false,
      att,
    },
    RECIPIENT.secretKey,
  );
  const name = csiToName(canonical, APEX);
  await dp.store.apply(ZONE, [
    { op: 'put', name, type: 'MAP', records: [record(name, 'MAP', encodeMapping(mapping), 300)] },
  ]);
}

beforeAll(async () => {
  files = await createLoopbackDir('mimi-query-log-network');
  logs.root = join(files.dir, 'root.queries.jsonl');
  logs.dp = join(files.dir, 'dp.queries.jsonl');
  logs.resolver = join(files.dir, 'resolver.queries.jsonl');
  const rootDir = join(files.dir, 'root');
  const dpDir = join(files.dir, 'dp');
  await initServer(rootDir, [APEX]);
  const ds = await initServer(dpDir, [ZONE]);
  root = await serveServer('root', rootDir, files.tls, { queryLog: { path: logs.root } });
  dp = await serveServer('dp', dpDir, files.tls, { queryLog: { path: logs.dp } });
  const zoneDs = ds.get(ZONE) ?? expect.unreachable();
  await delegate(root.store, APEX, delegationTo(ZONE, dp, zoneDs));
  for (const csi of BOOK) await publish(csi);
  // One discovery at a time: the order the DP sees is the order the resolver chose, not one
  // that concurrent walks happen to interleave.
  resolver = createResolver({ ...resolverConfigFor(root, files.caPem), batchConcurrency: 1 });
  server = await startResolverServer(
    {
      apex: APEX,
      listen: { udp: 0, tcp: 0, doh: 0, api: 0 },
      tls: { cert: readFileSync(files.tls.cert), key: readFileSync(files.tls.key) },
      // The resolver's own clients' addresses, as an operator may ask: never on API lines.
      queryLog: { path: logs.resolver, peer: true, api: true },
    },
    resolver,
    { log: silentLogger },
  );
});

afterAll(async () => {
  await server?.close();
  await resolver?.close();
  await Promise.allSettled([dp?.close(), root?.close()]);
  files?.remove();
});

describe('the query log of a resolver', () => {
  it('has a line for each query to its DNS front ends, answers from its cache included', async () => {
    const name = csiToName(parseCsi(BOOK[0] ?? ''), APEX);
    const ask = (): Message => buildQuery(name, 'MAP', { recursionDesired: true, dnssecOk: true });
    const dns = server.dns ?? expect.unreachable();
    const at = { host: '127.0.0.1', port: dns.udp?.port ?? 0 };
    const front = { udp: at, tcp: { ...at, port: dns.tcp?.port ?? 0 }, dohUrl: dns.doh?.url ?? '' };
    for (const response of await askTwiceOverEach(front, files.caPem, ask)) {
      expect(response.rcode).toBe('NOERROR');
      expect(response.flags.ad).toBe(true);
    }
    await server.queryLog?.flush();
    const lines = readQueryLog(logs.resolver).filter((l) => l['name'] === name);
    expect(lines.map((l) => [l['transport'], l['cached'] ?? false])).toEqual([...TWICE_OVER_EACH]);
    for (const line of lines) {
      expect(line).toMatchObject({ type: 'MAP', rcode: 'NOERROR', peer: '127.0.0.1' });
    }
  });

  it('pads its DoH answers to a multiple of 468 octets', async () => {
    const url = server.dns?.doh?.url ?? expect.unreachable();
    for (const csi of BOOK.slice(0, ASKED_BEFORE)) {
      const name = csiToName(parseCsi(csi), APEX);
      const query = buildQuery(name, 'MAP', { recursionDesired: true, dnssecOk: true });
      const body = await dohPost(url, encodeMessage(query), files.caPem);
      expect(body.length % RESPONSE_PADDING_BLOCK_OCTETS).toBe(0);
      const response = decodeMessage(body);
      expect(response.answers.map((rr) => rr.type)).toContain('MAP');
      expect(response.edns?.options.map((o) => o.code)).toContain(PADDING_OPTION_CODE);
    }
  });
});

describe('a contact sync through the JSON API', () => {
  it('reaches the DP in an order of the resolver’s own, over several connections, and comes back in input order', async () => {
    const client = createDiscoveryClient({ url: server.api?.url ?? '', ca: files.caPem });
    let results;
    try {
      results = await client.discoverMany(BOOK);
    } finally {
      await client.close();
    }
    const canonical = BOOK.map((csi) => parseCsi(csi));
    expect(results.map((r) => r.csi)).toEqual(canonical);
    expect(results.map((r) => r.status)).toEqual(BOOK.map(() => 'found'));

    await Promise.all([dp.queryLog?.flush(), server.queryLog?.flush()]);
    const names = canonical.map((csi) => csiToName(csi as Csi, APEX));
    const wanted = new Set(names);
    const arrived: string[] = [];
    for (const line of readQueryLog(logs.dp)) {
      const name = String(line['name']);
      if (line['type'] === 'MAP' && wanted.has(name) && !arrived.includes(name)) arrived.push(name);
    }
    // Every CSI of the book reached the DP…
    expect([...arrived].sort()).toEqual([...names].sort());
    // … but not in the order of the book: the resolver shuffles a batch's questions. (The
    // first few were asked through DNS by the tests above, in order, and come first.)
    const early = new Set(names.slice(0, ASKED_BEFORE));
    const batch = arrived.filter((n) => !early.has(n));
    expect(batch).toHaveLength(BOOK.length - ASKED_BEFORE);
    expect(batch).not.toEqual(names.filter((n) => !early.has(n)));
    // The DP saw them over as many connections as the resolver keeps per server.
    expect(dp.dns?.doh?.connectionStats().open).toBe(UPSTREAM_DOH_LANES);
    // Neither the DP's nor the root's log holds an address: not configured.
    for (const path of [logs.dp, logs.root]) {
      expect(readQueryLog(path).length).toBeGreaterThan(0);
      expect(readQueryLog(path).every((l) => !('peer' in l))).toBe(true);
    }
    // The resolver logged each lookup of the API, flagged `api`, without an address.
    const api = readQueryLog(logs.resolver).filter((l) => l['transport'] === 'api');
    expect(api.map((l) => l['name'])).toEqual(names);
    expect(api.every((l) => l['status'] === 'found' && l['type'] === 'MAP')).toBe(true);
    expect(api.every((l) => !('peer' in l))).toBe(true);
  });
});
