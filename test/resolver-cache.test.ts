import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csiToName, keyPairFromSeed, type Csi, type Ed25519KeyPair } from '@mimi-discovery/common';
import {
  MAX_RESOLUTION_MS,
  STALE_ANSWER_TTL_SECONDS,
  createResolver,
  type DiscoveryResult,
  type Resolver,
} from '@mimi-discovery/resolver';
import { createFakeClock, type FakeClock } from './helpers/clock.js';
import { MAP_TTL_SECONDS, buildHierarchy, type Hierarchy } from './helpers/hierarchy.js';

// Design §6 cache: positive and negative answers kept for their TTL on the injected clock,
// identical concurrent questions sharing one upstream query, and stale answers served when
// every server of a zone fails (RFC 8767), marked stale.

const key = (seed: number): Ed25519KeyPair => keyPairFromSeed(new Uint8Array(32).fill(seed));
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
const ALICE = key(0x51);
const BOB = key(0x52);

const CACHED = 'tel:+442079460030';
const CONCURRENT = 'tel:+442079460031';
const EXPIRING = 'tel:+442079460032';
const STALE = 'tel:+442079460033';
const SNOOPED = 'tel:+442079460035';
const UNKNOWN = 'tel:+442079460039';

let h: Hierarchy;
const resolvers: Resolver[] = [];

function newResolver(): { resolver: Resolver; clock: FakeClock } {
  const clock = createFakeClock();
  const resolver = createResolver(h.resolverConfig(), { now: clock.seconds });
  resolvers.push(resolver);
  return { resolver, clock };
}

/** Upstream queries `work` causes. */
async function upstreamCost<T>(
  resolver: Resolver,
  work: () => Promise<T>,
): Promise<{ value: T; queries: number }> {
  const before = resolver.stats().upstreamQueries;
  const value = await work();
  return { value, queries: resolver.stats().upstreamQueries - before };
}

/** A result with its TTL zeroed, to compare two answers given at different times. */
const withoutTtl = (result: DiscoveryResult): DiscoveryResult => ({ ...result, ttl: 0 });

beforeAll(async () => {
  h = await buildHierarchy();
  for (const csi of [CACHED, CONCURRENT, EXPIRING, STALE, SNOOPED]) await h.publish(csi, ALICE);
});

afterAll(async () => {
  await Promise.allSettled(resolvers.map((r) => r.close()));
  await h?.close();
});

describe('answers from the cache', () => {
  it('answers a second identical lookup without any upstream query', async () => {
    const { resolver } = newResolver();
    const cold = await upstreamCost(resolver, () => resolver.discover(CACHED));
    expect(cold.value.status).toBe('found');
    expect(cold.queries).toBeGreaterThan(0);
    const hitsBefore = resolver.stats().cacheHits;
    const served = h.phone.queries();
    const warm = await upstreamCost(resolver, () => resolver.discover(CACHED));
    expect(warm.queries).toBe(0);
    expect(h.phone.queries()).toBe(served);
    expect(resolver.stats().cacheHits).toBeGreaterThan(hitsBefore);
    expect(withoutTtl(warm.value)).toEqual(withoutTtl(cold.value));
  });

  it('answers a second lookup of an unknown CSI from the negative cache (RFC 2308)', async () => {
    const { resolver } = newResolver();
    const cold = await upstreamCost(resolver, () => resolver.discover(UNKNOWN));
    expect(cold.value.status).toBe('none');
    const warm = await upstreamCost(resolver, () => resolver.discover(UNKNOWN));
    expect(warm.value.status).toBe('none');
    expect(warm.queries).toBe(0);
  });

  it('sends one set of upstream queries for 1,000 concurrent identical lookups', async () => {
    // The cost of one cold lookup, measured on a resolver of its own.
    const single = newResolver().resolver;
    const one = await upstreamCost(single, () => single.discover(CONCURRENT));
    expect(one.value.status).toBe('found');

    const { resolver } = newResolver();
    const servedBefore = h.phone.queries() + h.root.queries();
    const many = await upstreamCost(resolver, () =>
      Promise.all(Array.from({ length: 1000 }, () => resolver.discover(CONCURRENT))),
    );
    expect(many.queries).toBe(one.queries);
    expect(h.phone.queries() + h.root.queries() - servedBefore).toBe(one.queries);
    expect(new Set(many.value.map((r) => r.status))).toEqual(new Set(['found']));
    expect(many.value.every((r) => r.mappings[0]?.key === b64(ALICE.publicKey))).toBe(true);
  });
});

describe('expiry on the fake clock', () => {
  it('serves the cached answer with the TTL it first gave until that runs out, and asks upstream just after', async () => {
    const { resolver, clock } = newResolver();
    const cold = await upstreamCost(resolver, () => resolver.discover(EXPIRING));
    const ttl = cold.value.ttl;
    expect(ttl).toBeGreaterThan(1);

    clock.advance(ttl - 1);
    const cached = await upstreamCost(resolver, () => resolver.discover(EXPIRING));
    expect(cached.queries).toBe(0);
    expect(cached.value.status).toBe('found');
    // The TTL as first given, not counted down (client-ttl.ts).
    expect(cached.value.ttl).toBe(ttl);

    clock.advance(2);
    const fresh = await upstreamCost(resolver, () => resolver.discover(EXPIRING));
    expect(fresh.value.status).toBe('found');
    expect(fresh.queries).toBeGreaterThan(0);
    // Delegations and DNSKEYs (TTL 3600) are still cached: only the expired answers are asked.
    expect(fresh.queries).toBeLessThan(cold.queries);
    expect(fresh.value.ttl).toBeGreaterThan(1);
  });
});

describe('TTLs that do not tell when the cache was filled (cache snooping)', () => {
  /**
   * Asks `ask` every 7 s for twice the MAP TTL, and checks what each client is given: every
   * client served from one fill gets the same TTL, whatever second it asks in, and none is told
   * to keep the data past that fill plus the TTL the DP gave (the bound of a resolver that
   * counts TTLs down, RFC 1035 §7.3, which removals rely on, R9). Returns the TTLs by fill.
   */
  async function clientsOverTime(
    resolver: Resolver,
    clock: { advance(seconds: number): void },
    ask: () => Promise<number[]>,
  ): Promise<Map<number, Set<number>>> {
    const byFill = new Map<number, Set<number>>();
    let filledAt = 0;
    for (let t = 0; t <= 2 * MAP_TTL_SECONDS; t += 7) {
      const { value: ttls, queries } = await upstreamCost(resolver, ask);
      if (queries > 0) filledAt = t;
      for (const ttl of ttls) {
        expect(t + ttl, `asked at ${t} s, filled at ${filledAt} s`).toBeLessThanOrEqual(
          filledAt + MAP_TTL_SECONDS,
        );
      }
      let seen = byFill.get(filledAt);
      if (seen === undefined) byFill.set(filledAt, (seen = new Set()));
      for (const ttl of ttls) seen.add(ttl);
      clock.advance(7);
    }
    return byFill;
  }

  it('gives DNS clients one TTL per fill, never one counted down from another client’s fill', async () => {
    const { resolver, clock } = newResolver();
    const name = csiToName(SNOOPED as Csi, h.apex);
    const byFill = await clientsOverTime(resolver, clock, async () => {
      const answer = await resolver.resolve(name, 'MAP');
      expect(answer.rcode).toBe('NOERROR');
      return answer.answers.map((rr) => rr.ttl);
    });
    // Fetched again for clients after half the TTL: more than one fill in twice the TTL.
    expect(byFill.size).toBeGreaterThan(2);
    for (const ttls of byFill.values()) expect([...ttls]).toEqual([MAP_TTL_SECONDS / 2]);
  });

  it('gives JSON API clients one TTL per fill too', async () => {
    const { resolver, clock } = newResolver();
    const byFill = await clientsOverTime(resolver, clock, async () => {
      const result = await resolver.discover(SNOOPED);
      expect(result.status).toBe('found');
      return [result.ttl];
    });
    expect(byFill.size).toBeGreaterThan(2);
    for (const ttls of byFill.values()) expect(ttls.size).toBe(1);
  });
});

describe('serve-stale (RFC 8767)', () => {
  it('serves the old mappings marked stale while the DP is down, and fresh ones once it is back', async () => {
    const { resolver, clock } = newResolver();
    const before = await resolver.discover(STALE);
    expect(before.status).toBe('found');

    await h.phone.stop();
    try {
      clock.advance(before.ttl + 1);
      const started = performance.now();
      const stale = await resolver.discover(STALE);
      expect(performance.now() - started).toBeLessThan(MAX_RESOLUTION_MS);
      expect(stale.status, JSON.stringify(stale.error)).toBe('found');
      expect(stale.stale).toBe(true);
      expect(stale.mappings).toEqual(before.mappings);
      expect(stale.ttl).toBeLessThanOrEqual(STALE_ANSWER_TTL_SECONDS);
      // A mapping published meanwhile cannot be seen while the DP is down.
      await h.publish(STALE, BOB);
    } finally {
      await h.phone.start();
    }

    clock.advance(STALE_ANSWER_TTL_SECONDS + 1);
    const fresh = await resolver.discover(STALE);
    expect(fresh.status, JSON.stringify(fresh.error)).toBe('found');
    expect(fresh.stale).toBeUndefined();
    expect(fresh.mappings.map((m) => m.key).sort()).toEqual(
      [b64(ALICE.publicKey), b64(BOB.publicKey)].sort(),
    );
  });

  it('does not serve an answer that went stale more than a day ago', async () => {
    const { resolver, clock } = newResolver();
    const csi = 'tel:+442079460034';
    await h.publish(csi, ALICE);
    expect((await resolver.discover(csi)).status).toBe('found');
    await h.phone.stop();
    try {
      clock.advance(2 * 86_400);
      const result = await resolver.discover(csi);
      expect(result.status).toBe('error');
      // Bogus too: two days ahead of the servers' clocks, the resolver finds the root's online
      // denial of an empty non-terminal on the walk (one day of validity) expired.
      expect(['servfail', 'timeout', 'bogus']).toContain(result.error?.reason);
      expect(result.stale).toBeUndefined();
    } finally {
      await h.phone.start();
    }
  });
});
