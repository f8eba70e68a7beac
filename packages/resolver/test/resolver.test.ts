import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, csiToName, NXNAME_TYPE, parseCsi } from '@mimi-discovery/common';
import {
  createResolver,
  failureBackoffSeconds,
  FAILURE_CACHE_MAX_SECONDS,
  FAILURE_CACHE_MIN_SECONDS,
  MAX_MAPREF_FANOUT,
  STALE_ANSWER_TTL_SECONDS,
  UPSTREAM_DOH_LANES,
  resultJson,
  type Resolver,
} from '../src/index.js';
import {
  ALICE,
  BOB,
  CAROL,
  CSIS,
  MAP_TTL_SECONDS,
  MAPREF_TARGET,
  MSP_ZONE,
  answerServfail,
  buildHierarchy,
  corruptMapAt,
  publishCases,
  type Hierarchy,
} from '../../../test/helpers/hierarchy.js';
import { APEX, PHONE_ZONE } from '../../../test/helpers/network.js';

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

let net: Hierarchy;
const opened: Resolver[] = [];

/** A resolver over the fixture with a fake clock (seconds) the test moves. */
function resolverWithClock(extra: Parameters<Hierarchy['resolverConfig']>[0] = {}) {
  const clock = { now: Date.now() / 1000 };
  const resolver = createResolver(net.resolverConfig(extra), { now: () => clock.now });
  opened.push(resolver);
  return { resolver, clock };
}

beforeAll(async () => {
  net = await buildHierarchy();
  await publishCases(net);
});

afterAll(async () => {
  await Promise.allSettled(opened.map((r) => r.close()));
  await net?.close();
});

describe('discover', () => {
  it('finds a verified mapping through the root and the +44 DP over DoH', async () => {
    const { resolver } = resolverWithClock();
    const result = await resolver.discover('+44 (0)20 7946 0018');
    expect(result.status, JSON.stringify(result.error)).toBe('found');
    expect(result.csi).toBe('tel:+442079460018');
    expect(result.mappings).toHaveLength(1);
    const [mapping] = result.mappings;
    expect(mapping?.key).toBe(b64(ALICE.publicKey));
    expect(mapping?.msps).toEqual([{ provider: 'chat.example', tags: ['mls'] }]);
    expect(mapping?.zone).toBe(PHONE_ZONE);
    expect(mapping?.server).toBe(net.phone.dohUrl);
    expect(mapping?.prover).toBe(b64(net.phone.store.proverKey().publicKey));
    expect(result.ttl).toBeGreaterThan(0);
    expect(result.ttl).toBeLessThanOrEqual(MAP_TTL_SECONDS);
  });

  it('reports none for a number with an authenticated denial', async () => {
    const { resolver } = resolverWithClock();
    const result = await resolver.discover(CSIS.none);
    expect(result).toMatchObject({ status: 'none', mappings: [] });
    expect(result.ttl).toBeGreaterThan(0);
  });

  it('reports empty for a mapping that lists no MSP', async () => {
    const { resolver } = resolverWithClock();
    const result = await resolver.discover(CSIS.empty);
    expect(result.status).toBe('empty');
    expect(result.mappings.map((m) => m.msps)).toEqual([[]]);
  });

  it('reports error bogus, not none, when a signature does not verify', async () => {
    const { resolver } = resolverWithClock();
    net.phone.tamper = corruptMapAt(csiToName(CSIS.bogus));
    try {
      const result = await resolver.discover(CSIS.bogus);
      expect(result.status).toBe('error');
      expect(result.error?.reason).toBe('bogus');
      expect(resolver.stats().validationFailures['bogus-signature']).toBe(1);
    } finally {
      net.phone.tamper = undefined;
    }
  });

  it('reports error bogus when MAP records exist but none is for the CSI', async () => {
    const { resolver } = resolverWithClock();
    const result = await resolver.discover(CSIS.wrongCsi);
    expect(result.status).toBe('error');
    expect(result.error?.reason).toBe('bogus');
    // The record carries no CSI: its signatures cover another one than the CSI asked.
    expect(resolver.stats().validationFailures['mapping-bad-signature']).toBe(1);
  });

  it('discovers a CSI parsed by the caller as discover does the input it parses', async () => {
    const { resolver } = resolverWithClock();
    const parsed = await resolver.discoverCsi(CSIS.found);
    expect(parsed.status, JSON.stringify(parsed.error)).toBe('found');
    const sent = resolver.stats().upstreamQueries;
    // The same discovery: the second way of asking is answered from its cache.
    expect(await resolver.discover('+44 (0)20 7946 0018')).toEqual(parsed);
    expect(resolver.stats().upstreamQueries).toBe(sent);
  });

  it('rejects input that is not a CSI without asking any server', async () => {
    const { resolver } = resolverWithClock();
    const result = await resolver.discover('not a number');
    expect(result).toMatchObject({ csi: 'not a number', status: 'error', mappings: [] });
    expect(result.error?.reason).toBe('invalid-csi');
    expect(resolver.stats().upstreamQueries).toBe(0);
  });

  it('follows a MAPREF and accepts only mappings attested by a prover of the CSI range', async () => {
    const { resolver } = resolverWithClock();
    const result = await resolver.discover(CSIS.mapref);
    expect(result.status, JSON.stringify(result.error)).toBe('found');
    const byKey = new Map(result.mappings.map((m) => [m.key, m]));
    expect([...byKey.keys()].sort()).toEqual([b64(ALICE.publicKey), b64(BOB.publicKey)].sort());
    expect(byKey.get(b64(BOB.publicKey))?.zone).toBe(MSP_ZONE);
    expect(byKey.get(b64(BOB.publicKey))?.server).toBe(net.msp.dohUrl);
    // Carol's mapping is attested by the MSP zone's own prover, which +44 does not list.
    expect(byKey.has(b64(CAROL.publicKey))).toBe(false);
    expect(resolver.stats().validationFailures['mapping-unknown-prover']).toBe(1);
    expect(net.msp.seen).toContain(`${MAPREF_TARGET}/MAP`);
    expect(MAX_MAPREF_FANOUT).toBe(8);
  });

  it('keeps the highest seq per key and lets a new key de-list keys attested earlier', async () => {
    const { resolver } = resolverWithClock();
    const result = await resolver.discover(CSIS.rotated);
    expect(result.status).toBe('found');
    const keys = result.mappings.map((m) => [m.key, m.seq]);
    expect(keys).toContainEqual([b64(ALICE.publicKey), 2]);
    expect(keys).toContainEqual([b64(CAROL.publicKey), 1]);
    expect(keys.map(([k]) => k)).not.toContain(b64(BOB.publicKey));
    expect(result.mappings).toHaveLength(2);
  });

  it('answers a second lookup from the cache without upstream queries', async () => {
    const { resolver } = resolverWithClock();
    await resolver.discover(CSIS.found);
    const before = resolver.stats();
    expect(before.upstreamQueries).toBeGreaterThan(0);
    const again = await resolver.discover(CSIS.found);
    expect(again.status).toBe('found');
    const after = resolver.stats();
    expect(after.upstreamQueries).toBe(before.upstreamQueries);
    expect(after.cacheHits).toBe(before.cacheHits + 1);
    expect(after.cacheBytes).toBeGreaterThan(0);
  });

  it('reuses cached delegations and keys: a second number of the range costs MAP and MAPREF only', async () => {
    const { resolver } = resolverWithClock();
    await resolver.discover(CSIS.found);
    const before = resolver.stats().upstreamQueries;
    await resolver.discover(CSIS.empty);
    expect(resolver.stats().upstreamQueries - before).toBe(2);
  });

  it('shares one upstream query set among 100 concurrent identical lookups', async () => {
    const single = resolverWithClock().resolver;
    await single.discover(CSIS.found);
    const alone = single.stats().upstreamQueries;
    const { resolver } = resolverWithClock();
    const results = await Promise.all(
      Array.from({ length: 100 }, () => resolver.discover(CSIS.found)),
    );
    expect(new Set(results.map((r) => r.status))).toEqual(new Set(['found']));
    expect(resolver.stats().upstreamQueries).toBe(alone);
  });

  it('asks again once the TTL has run out on the fake clock', async () => {
    const { resolver, clock } = resolverWithClock();
    const first = await resolver.discover(CSIS.found);
    const before = resolver.stats().upstreamQueries;
    clock.now += first.ttl - 1;
    await resolver.discover(CSIS.found);
    expect(resolver.stats().upstreamQueries).toBe(before);
    clock.now += 2;
    const again = await resolver.discover(CSIS.found);
    expect(again.status).toBe('found');
    expect(resolver.stats().upstreamQueries).toBeGreaterThan(before);
  });

  it('serves a stale answer, marked stale, when every server of the zone fails', async () => {
    const { resolver, clock } = resolverWithClock();
    const first = await resolver.discover(CSIS.found);
    clock.now += first.ttl + 60;
    net.phone.tamper = answerServfail;
    try {
      const result = await resolver.discover(CSIS.found);
      expect(result.status).toBe('found');
      expect(result.stale).toBe(true);
      expect(result.ttl).toBe(STALE_ANSWER_TTL_SECONDS);
      // Nothing cached for this number: a failure is an error, never none.
      const unknown = await resolver.discover(CSIS.empty);
      expect(unknown.status).toBe('error');
      expect(unknown.error?.reason).toBe('servfail');
    } finally {
      net.phone.tamper = undefined;
    }
  });

  it('discoverMany returns results in input order', async () => {
    const { resolver } = resolverWithClock({ batchConcurrency: 2 });
    const inputs = [CSIS.found, 'nonsense', CSIS.none, CSIS.empty, CSIS.found];
    const results = await resolver.discoverMany(inputs);
    expect(results.map((r) => r.status)).toEqual(['found', 'error', 'none', 'empty', 'found']);
    expect(results[1]?.csi).toBe('nonsense');
  });

  it('writes each result of a batch as JSON, a cached one with the TTL it was first given', async () => {
    const { resolver, clock } = resolverWithClock();
    const inputs = [CSIS.found, 'nonsense', CSIS.none, CSIS.found];
    const cold = await resolver.discoverManyJson(inputs);
    expect(cold.results.map((r) => r.status)).toEqual(['found', 'error', 'none', 'found']);
    expect(cold.json).toEqual(cold.results.map((r) => JSON.stringify(resultJson(r))));
    clock.now += 7;
    const warm = await resolver.discoverManyJson(inputs);
    expect(warm.json).toEqual(warm.results.map((r) => JSON.stringify(resultJson(r))));
    // Not counted down (client-ttl.ts): the TTL does not tell when the result was cached.
    for (const i of [0, 2]) {
      expect(warm.results[i]?.ttl).toBe(cold.results[i]?.ttl);
      expect(warm.json[i]).toBe(cold.json[i]);
    }
    expect(await resolver.discoverMany(inputs)).toEqual(warm.results);
  });

  it('does not show the root the full name of an email-sized query (QNAME minimisation)', async () => {
    const { resolver } = resolverWithClock();
    net.root.seen.length = 0;
    const answer = await resolver.resolve(MAPREF_TARGET, 'MAP');
    expect(answer.rcode).toBe('NOERROR');
    expect(net.root.seen.some((q) => q.startsWith(MAPREF_TARGET))).toBe(false);
    expect(net.root.seen).toContain(`${MSP_ZONE}/NS`);
  });
});

/**
 * A TCP relay on 127.0.0.1 to `port` that counts the connections made through it: a stand-in for
 * the root's DoH endpoint, to see whether the resolver opens new connections.
 */
async function countingRelay(
  port: number,
): Promise<{ url: string; connections: () => number; close(): Promise<void> }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    connections++;
    const upstream = connect({ host: '127.0.0.1', port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const local = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `https://127.0.0.1:${local}/dns-query`,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('certificates of servers called by name', () => {
  // The fixture's certificates hold `localhost` and 127.0.0.1, not the nameservers' names.
  it('accepts a certificate for the address by default (upstream.acceptAddressCertificates)', async () => {
    const { resolver } = resolverWithClock();
    expect((await resolver.discover(CSIS.none)).status).toBe('none');
  });

  it('refuses it when address certificates are not accepted, saying why at info', async () => {
    const logs: string[] = [];
    const resolver = createResolver(
      net.resolverConfig({ upstream: { acceptAddressCertificates: false } }),
      { log: createLogger('resolver', { level: 'info', write: (line) => logs.push(line) }) },
    );
    opened.push(resolver);
    const result = await resolver.discover(CSIS.none);
    expect(result.status).toBe('error');
    const unusable = logs
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line['event'] === 'upstream-unusable');
    // One line per server as it starts failing (questions already in flight may add theirs).
    expect(unusable.length).toBeGreaterThanOrEqual(1);
    expect(new Set(unusable.map((line) => line['server']))).toEqual(new Set([net.root.dohUrl]));
    expect(unusable[0]).toMatchObject({ level: 'info', code: 'ERR_TRANSPORT_CERTIFICATE' });
    expect(String(unusable[0]?.['reason'])).toContain('certificate');
    expect(String(unusable[0]?.['reason'])).toContain(net.root.nameserver);
  });
});

describe('cold resolution', () => {
  it('walks the root one label at a time: it sees the range, no digit below it, each name once', async () => {
    const { resolver } = resolverWithClock();
    net.root.seen.length = 0;
    const result = await resolver.discover(CSIS.empty);
    expect(result.status, JSON.stringify(result.error)).toBe('empty');
    // MAP and MAPREF share each probe of the walk: e164, 4.e164, then the referral at +44.
    expect([...net.root.seen].sort()).toEqual(
      [`${APEX}/DNSKEY`, `e164.${APEX}/NS`, `4.e164.${APEX}/NS`, `${PHONE_ZONE}/NS`].sort(),
    );
  });

  it('walks the first labels below a range one at a time, then asks the full name', async () => {
    const { resolver } = resolverWithClock();
    net.phone.seen.length = 0;
    expect((await resolver.discover(CSIS.found)).status).toBe('found');
    const name = csiToName(CSIS.found);
    const labels = name.split('.');
    const zoneLabels = PHONE_ZONE.split('.').length;
    const below = (n: number): string => labels.slice(labels.length - (zoneLabels + n)).join('.');
    const probes = [1, 2, 3, 4].map((n) => `${below(n)}/NS`);
    expect(net.phone.seen.filter((q) => q.endsWith('/NS'))).toEqual(probes);
    expect(net.phone.seen).toContain(`${name}/MAP`);
  });

  it('stops at a name the root denies (RFC 8020): a country code with no DP shows the root one digit', async () => {
    const { resolver } = resolverWithClock();
    net.root.seen.length = 0;
    const result = await resolver.discover(parseCsi('+33 1 23 45 67 89'));
    expect(result.status, JSON.stringify(result.error)).toBe('none');
    const deepest = Math.max(
      ...net.root.seen.map((q) => (q.split('/')[0] ?? '').split('.').length),
    );
    expect(deepest).toBe(`3.e164.${APEX}`.split('.').length);
    // The denial is cached: the next number under +33 asks nothing.
    const before = resolver.stats().upstreamQueries;
    expect((await resolver.discover(parseCsi('+33 6 12 34 56 78'))).status).toBe('none');
    expect(resolver.stats().upstreamQueries).toBe(before);
  });

  it('asks MAP and MAPREF at the DP itself, and the range AUTHKEY once', async () => {
    const { resolver } = resolverWithClock();
    net.phone.seen.length = 0;
    await resolver.discover(CSIS.found);
    const name = csiToName(CSIS.found);
    expect(net.phone.seen).toContain(`${name}/MAP`);
    expect(net.phone.seen).toContain(`${name}/MAPREF`);
    expect(net.phone.seen.filter((q) => q === `${PHONE_ZONE}/AUTHKEY`)).toHaveLength(1);
  });

  it('reports none for a number without mappings, then asks the next number of the range without walking again', async () => {
    const { resolver } = resolverWithClock();
    const result = await resolver.discover(CSIS.none);
    expect(result.status).toBe('none');
    // Asked together with MAP and MAPREF, the range's AUTHKEY is cached for the next number.
    const before = resolver.stats().upstreamQueries;
    net.phone.seen.length = 0;
    expect((await resolver.discover(CSIS.found)).status).toBe('found');
    // The walk of the shared digits is cached: MAP, MAPREF and the range's AUTHKEY (sent with
    // them, the range's cut being known), nothing else.
    const name = csiToName(CSIS.found);
    expect([...net.phone.seen].sort()).toEqual(
      [`${name}/MAP`, `${name}/MAPREF`, `${PHONE_ZONE}/AUTHKEY`].sort(),
    );
    expect(resolver.stats().upstreamQueries - before).toBe(3);
  });
});

describe('concurrent callers', () => {
  it('sends each question once when many callers discover and resolve CSIs that share questions', async () => {
    const { resolver } = resolverWithClock();
    const servers = { root: net.root, phone: net.phone, msp: net.msp };
    for (const server of Object.values(servers)) server.seen.length = 0;
    // Four CSIs of one range share the root's keys, the range's keys and AUTHKEY; the MAPREF
    // target's MAP and MAPREF probe the same name at the root. Every CSI is asked many times
    // over, by discover, by discoverMany and, for MAP, by the DNS path.
    const csis = [CSIS.found, CSIS.empty, CSIS.none, CSIS.mapref];
    const calls = Array.from({ length: 10 }, () => [
      ...csis.map((csi) => resolver.discover(csi)),
      resolver.discoverMany(csis),
      resolver.resolve(csiToName(CSIS.found), 'MAP'),
    ]).flat();
    await Promise.all(calls);
    expect((await resolver.discoverMany(csis)).map((r) => r.status)).toEqual([
      'found',
      'empty',
      'none',
      'found',
    ]);
    const seen = Object.entries(servers).flatMap(([at, server]) =>
      server.seen.map((q) => `${at} ${q}`),
    );
    expect(seen).toContain(`phone ${PHONE_ZONE}/DNSKEY`);
    expect(seen).toContain(`root ${MSP_ZONE}/NS`);
    // No server was asked any question twice, and nothing else was sent.
    expect(seen.filter((q, i) => seen.indexOf(q) !== i)).toEqual([]);
    expect(resolver.stats().upstreamQueries).toBe(seen.length);
  });
});

describe('flushCache', () => {
  it('empties every cache: the next lookup walks from the root again', async () => {
    const { resolver } = resolverWithClock();
    const first = await resolver.discover(CSIS.found);
    const cold = resolver.stats().upstreamQueries;
    expect(resolver.stats().cacheBytes).toBeGreaterThan(0);
    resolver.flushCache();
    expect(resolver.stats().cacheBytes).toBe(0);
    net.root.seen.length = 0;
    const again = await resolver.discover(CSIS.found);
    expect(again.status).toBe(first.status);
    expect(again.mappings).toEqual(first.mappings);
    expect(resolver.stats().upstreamQueries).toBe(2 * cold);
    expect(net.root.seen).toContain(`${APEX}/DNSKEY`);
  });

  it('drops stale copies too: with every server down, a flushed answer is not served stale', async () => {
    const { resolver, clock } = resolverWithClock();
    const first = await resolver.discover(CSIS.found);
    clock.now += first.ttl + 60;
    resolver.flushCache();
    net.phone.tamper = answerServfail;
    try {
      const result = await resolver.discover(CSIS.found);
      expect(result.status).toBe('error');
      expect(result.stale).toBeUndefined();
    } finally {
      net.phone.tamper = undefined;
    }
  });

  it('keeps the upstream connections open', async () => {
    const relay = await countingRelay(Number(new URL(net.root.dohUrl).port));
    try {
      const { resolver } = resolverWithClock({
        rootServers: [{ name: 'ns1.mimi.arpa', addresses: ['127.0.0.1'], doh: relay.url }],
      });
      await resolver.discover(CSIS.found);
      // Questions take one of the lanes at random: ask until each has its connection (the
      // chance that 100 questions leave a lane unused is 4 × (3/4)^100).
      for (let i = 0; i < 100 && relay.connections() < UPSTREAM_DOH_LANES; i++) {
        await resolver.resolve(`lane${i}.${APEX}`, 'TXT');
      }
      expect(relay.connections()).toBe(UPSTREAM_DOH_LANES);
      resolver.flushCache();
      net.root.seen.length = 0;
      expect((await resolver.discover(CSIS.empty)).status).toBe('empty');
      expect(net.root.seen).toContain(`${APEX}/DNSKEY`);
      expect(relay.connections()).toBe(UPSTREAM_DOH_LANES);
    } finally {
      await relay.close();
    }
  });
});

describe('failure caching (RFC 9520)', () => {
  /** What a resolver has sent and verified so far. */
  const work = (resolver: Resolver): { queries: number; verifications: number } => ({
    queries: resolver.stats().upstreamQueries,
    verifications: resolver.stats().signatureVerifications,
  });

  it('keeps a failure 5 s, doubling on each repeat up to 300 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 100].map(failureBackoffSeconds)).toEqual([
      5, 10, 20, 40, 80, 160, 300, 300, 300,
    ]);
    expect(failureBackoffSeconds(1)).toBe(FAILURE_CACHE_MIN_SECONDS);
    expect(failureBackoffSeconds(1000)).toBe(FAILURE_CACHE_MAX_SECONDS);
  });

  it('answers every name of a bogus zone from the cache: no query, no verification', async () => {
    const { resolver } = resolverWithClock();
    const first = await resolver.resolve('x.bad.mimi.arpa', 'MAP');
    expect(first).toMatchObject({ rcode: 'SERVFAIL', status: 'bogus' });
    const before = work(resolver);
    expect(before.queries).toBeGreaterThan(0);
    // Another name and another type under the same zone: its DNSKEY RRset is what failed.
    const other = await resolver.resolve('y.bad.mimi.arpa', 'MAPREF');
    expect(other).toMatchObject({ rcode: 'SERVFAIL', status: 'bogus' });
    const apex = await resolver.resolve('bad.mimi.arpa', 'AUTHKEY');
    expect(apex).toMatchObject({ rcode: 'SERVFAIL', status: 'bogus' });
    expect(work(resolver)).toEqual(before);
    expect(resolver.stats().failureCacheHits).toBe(2);
    expect(resolver.stats().validationFailures['no-ds-match']).toBe(1);
  });

  it('asks again once the failure expires, and keeps a repeat twice as long', async () => {
    const { resolver, clock } = resolverWithClock();
    await resolver.resolve('x.bad.mimi.arpa', 'MAP');
    const first = work(resolver).queries;
    clock.now += FAILURE_CACHE_MIN_SECONDS - 1;
    await resolver.resolve('x.bad.mimi.arpa', 'MAP');
    expect(work(resolver).queries).toBe(first);
    clock.now += 2;
    expect((await resolver.resolve('x.bad.mimi.arpa', 'MAP')).status).toBe('bogus');
    const second = work(resolver).queries;
    expect(second).toBeGreaterThan(first);
    // The repeat is kept 10 s: still answered from the cache 6 s later, asked again after 11 s.
    clock.now += 6;
    await resolver.resolve('x.bad.mimi.arpa', 'MAP');
    expect(work(resolver).queries).toBe(second);
    clock.now += 5;
    await resolver.resolve('x.bad.mimi.arpa', 'MAP');
    expect(work(resolver).queries).toBeGreaterThan(second);
  });

  it('keeps a bogus answer to the question: other names of the zone still resolve', async () => {
    const { resolver } = resolverWithClock();
    net.phone.tamper = corruptMapAt(csiToName(CSIS.bogus));
    try {
      expect((await resolver.discover(CSIS.bogus)).error?.reason).toBe('bogus');
    } finally {
      net.phone.tamper = undefined;
    }
    const before = work(resolver);
    const repeat = await resolver.discover(CSIS.bogus);
    expect(repeat.status).toBe('error');
    expect(repeat.error?.reason).toBe('bogus');
    expect(work(resolver)).toEqual(before);
    expect((await resolver.discover(CSIS.found)).status).toBe('found');
  });

  it('keeps an error a server answered to the question, not to the zone', async () => {
    const { resolver } = resolverWithClock();
    expect((await resolver.discover(CSIS.found)).status).toBe('found');
    net.phone.tamper = answerServfail;
    try {
      expect((await resolver.discover(CSIS.empty)).error?.reason).toBe('servfail');
    } finally {
      net.phone.tamper = undefined;
    }
    expect((await resolver.discover(CSIS.none)).status).toBe('none');
    const before = work(resolver).queries;
    expect((await resolver.discover(CSIS.empty)).error?.reason).toBe('servfail');
    expect(work(resolver).queries).toBe(before);
  });

  it('is emptied by flushCache', async () => {
    const { resolver } = resolverWithClock();
    await resolver.resolve('x.bad.mimi.arpa', 'MAP');
    const before = work(resolver).queries;
    resolver.flushCache();
    expect((await resolver.resolve('x.bad.mimi.arpa', 'MAP')).status).toBe('bogus');
    expect(work(resolver).queries).toBeGreaterThan(before);
    expect(resolver.stats().failureCacheHits).toBe(0);
  });
});

describe('resolve', () => {
  it('returns a validated RRset with its RRSIG', async () => {
    const { resolver } = resolverWithClock();
    const answer = await resolver.resolve(csiToName(CSIS.found), 'MAP');
    expect(answer).toMatchObject({ rcode: 'NOERROR', status: 'secure' });
    expect(answer.answers.map((rr) => rr.type).sort()).toEqual(['MAP', 'RRSIG']);
  });

  it('returns NXDOMAIN with the signed compact denial for a name that does not exist', async () => {
    const { resolver } = resolverWithClock();
    const answer = await resolver.resolve(csiToName(CSIS.none), 'MAP');
    expect(answer).toMatchObject({ rcode: 'NXDOMAIN', status: 'secure', answers: [] });
    const nsec = answer.authorities.find((rr) => rr.type === 'NSEC');
    expect(nsec?.type === 'NSEC' && nsec.data.types).toContain(`TYPE${NXNAME_TYPE}`);
    expect(answer.authorities.map((rr) => rr.type)).toContain('SOA');
  });

  it('returns NOERROR without data for a type the name does not have', async () => {
    const { resolver } = resolverWithClock();
    const answer = await resolver.resolve(csiToName(CSIS.found), 'MAPREF');
    expect(answer).toMatchObject({ rcode: 'NOERROR', status: 'secure', answers: [] });
  });

  it('answers SERVFAIL bogus for a zone whose DS matches none of its keys', async () => {
    const { resolver } = resolverWithClock();
    const answer = await resolver.resolve('x.bad.mimi.arpa', 'MAP');
    expect(answer).toMatchObject({ rcode: 'SERVFAIL', status: 'bogus' });
    expect(resolver.stats().validationFailures['no-ds-match']).toBe(1);
  });

  it('refuses a name outside the apex without asking any server', async () => {
    const { resolver } = resolverWithClock();
    const answer = await resolver.resolve('example.com', 'A');
    expect(answer.rcode).toBe('REFUSED');
    expect(resolver.stats().upstreamQueries).toBe(0);
  });

  it('works over plain DNS when configured to', async () => {
    const { resolver } = resolverWithClock({
      transport: 'dns',
      rootServers: [{ name: 'ns1.mimi.arpa', addresses: ['127.0.0.1'], port: net.root.udp.port }],
      dnsPort: net.phone.udp.port,
    });
    const result = await resolver.discover(CSIS.found);
    expect(result.status, JSON.stringify(result.error)).toBe('found');
    expect(result.mappings[0]?.server).toBe(`127.0.0.1:${net.phone.udp.port}`);
  });
});
