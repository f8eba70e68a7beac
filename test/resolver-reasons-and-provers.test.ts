import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EDE_CACHED_ERROR,
  EDE_DNSSEC_BOGUS,
  EDE_NETWORK_ERROR,
  EDE_NO_REACHABLE_AUTHORITY,
  csiToName,
  keyPairFromSeed,
  parseCsi,
  type Ed25519KeyPair,
  type RecordOf,
  type ResourceRecord,
} from '@mimi-discovery/common';
import {
  AUTHKEY_REFETCH_MIN_INTERVAL_SECONDS,
  createResolver,
  resultJson,
  type Resolver,
} from '@mimi-discovery/resolver';
import { createFakeClock, type FakeClock } from './helpers/clock.js';
import {
  ALICE,
  CSIS,
  answerServfail,
  buildHierarchy,
  corruptMapAt,
  publishCases,
  type Hierarchy,
} from './helpers/hierarchy.js';
import { PHONE_ZONE } from './helpers/network.js';

/**
 * Through a real resolver and the hierarchy's servers: every failure reaches the client with its
 * reason as an Extended DNS Error (RFC 8914), in DNS answers and in discovery results; and an
 * AUTHKEY RRset that lacks the prover of a verified attestation is asked again, at most once per
 * zone per interval, however many such mappings clients look up.
 */

let h: Hierarchy;
const opened: Resolver[] = [];

beforeAll(async () => {
  h = await buildHierarchy();
  await publishCases(h);
});

afterAll(async () => {
  await Promise.allSettled(opened.map((r) => r.close()));
  await h?.close();
});

function newResolver(clock: FakeClock = createFakeClock()): Resolver {
  const resolver = createResolver(h.resolverConfig(), { now: () => clock.now() / 1000 });
  opened.push(resolver);
  return resolver;
}

describe('Extended DNS Errors from the resolver (RFC 8914)', () => {
  it('a bogus MAP RRset: 6 DNSSEC Bogus, with the reason, in the answer and the result', async () => {
    const resolver = newResolver();
    const name = csiToName(CSIS.bogus);
    h.phone.tamper = corruptMapAt(name);
    try {
      const answer = await resolver.resolve(name, 'MAP');
      expect(answer.rcode).toBe('SERVFAIL');
      expect(answer.ede?.[0]).toMatchObject({ infoCode: EDE_DNSSEC_BOGUS });
      expect(answer.ede?.[0]?.text).toMatch(/^bogus-signature: /);
      const result = await resolver.discoverCsi(CSIS.bogus);
      expect(result.error?.reason).toBe('bogus');
      expect(result.error?.ede?.infoCode).toBe(EDE_DNSSEC_BOGUS);
      // The JSON API writes it as it is.
      expect(resultJson(result)).toMatchObject({
        error: { reason: 'bogus', ede: { infoCode: EDE_DNSSEC_BOGUS } },
      });
    } finally {
      h.phone.tamper = undefined;
    }
  });

  it('a server answering SERVFAIL for a name: 23 Network Error, then 13 Cached Error beside it', async () => {
    const resolver = newResolver();
    // The zone's keys come; the name's question fails.
    h.phone.tamper = (query, honest, context) =>
      query.questions[0]?.type === 'MAP' ? answerServfail(query, honest, context) : honest;
    try {
      const name = csiToName(CSIS.found);
      const first = await resolver.resolve(name, 'MAP');
      expect(first.rcode).toBe('SERVFAIL');
      expect(first.ede?.map((e) => e.infoCode)).toEqual([EDE_NETWORK_ERROR]);
      const again = await resolver.resolve(name, 'MAP');
      expect(again.ede?.map((e) => e.infoCode)).toEqual([EDE_NETWORK_ERROR, EDE_CACHED_ERROR]);
    } finally {
      h.phone.tamper = undefined;
    }
  });

  it('a zone whose servers fail every query: 22 No Reachable Authority', async () => {
    const resolver = newResolver();
    h.phone.tamper = answerServfail;
    try {
      const answer = await resolver.resolve(csiToName(CSIS.mapref), 'MAP');
      expect(answer.ede?.[0]?.infoCode).toBe(EDE_NO_REACHABLE_AUTHORITY);
    } finally {
      h.phone.tamper = undefined;
    }
  });

  it('a zone whose servers are down: 22 No Reachable Authority', async () => {
    const resolver = newResolver();
    await h.phone.stop();
    try {
      const answer = await resolver.resolve(csiToName(CSIS.empty), 'MAP');
      expect(answer.rcode).toBe('SERVFAIL');
      expect(answer.ede?.[0]?.infoCode).toBe(EDE_NO_REACHABLE_AUTHORITY);
      const result = await resolver.discoverCsi(CSIS.empty);
      expect(result.error?.ede?.infoCode).toBe(EDE_NO_REACHABLE_AUTHORITY);
    } finally {
      await h.phone.start();
    }
  });
});

describe('AUTHKEY asked again for an unknown prover', () => {
  const seeded = (byte: number): Ed25519KeyPair => keyPairFromSeed(new Uint8Array(32).fill(byte));
  const authkeyQueries = (): number =>
    h.phone.seen.filter((q) => q === `${PHONE_ZONE}/AUTHKEY`).length;

  /** Adds `prover` to the +44 AUTHKEY RRset, as `keys add-prover` does. */
  async function addProver(prover: Ed25519KeyPair): Promise<void> {
    const rrset = h.phone.store.readRRset(PHONE_ZONE, PHONE_ZONE, 'AUTHKEY');
    const first = rrset[0] as RecordOf<'AUTHKEY'>;
    const added: ResourceRecord = {
      ...first,
      data: { ...first.data, role: 'prover', publicKey: prover.publicKey },
    };
    await h.phone.store.apply(PHONE_ZONE, [
      { op: 'put', name: PHONE_ZONE, type: 'AUTHKEY', records: [...rrset, added] },
    ]);
  }

  it('finds a mapping by a prover added after the RRset was cached', async () => {
    const clock = createFakeClock();
    const resolver = newResolver(clock);
    expect((await resolver.discoverCsi(CSIS.found)).status).toBe('found');
    const prover = seeded(0x91);
    const csi = parseCsi('+44 20 7946 0301');
    await addProver(prover);
    await h.publish(csi, ALICE, { prover });
    // Not before the interval from the RRset's own fetch: it would not have changed.
    expect((await resolver.discoverCsi(csi)).status).toBe('error');
    expect(resolver.stats().authkeyRefetches).toEqual({ allowed: 0, refused: 1 });
    clock.advance(AUTHKEY_REFETCH_MIN_INTERVAL_SECONDS);
    const before = authkeyQueries();
    const result = await resolver.discoverCsi(csi);
    expect(result.status).toBe('found');
    expect(authkeyQueries()).toBe(before + 1);
    expect(resolver.stats().authkeyRefetches).toEqual({ allowed: 1, refused: 1 });
  });

  it('hostile: mappings naming random provers cause one fetch per interval, not one each', async () => {
    const clock = createFakeClock();
    const resolver = newResolver(clock);
    expect((await resolver.discoverCsi(CSIS.found)).status).toBe('found');
    clock.advance(AUTHKEY_REFETCH_MIN_INTERVAL_SECONDS);
    const csis = Array.from({ length: 12 }, (_, i) =>
      parseCsi(`+44 20 7946 04${String(i).padStart(2, '0')}`),
    );
    for (const [i, csi] of csis.entries()) {
      await h.publish(csi, ALICE, { prover: seeded(0xa0 + i) });
    }
    const before = authkeyQueries();
    // One after another: concurrent ones would share one question anyway.
    const results = [];
    for (const csi of csis) results.push(await resolver.discoverCsi(csi));
    // Each mapping's prover is unknown: dropped, never accepted.
    expect(results.every((r) => r.status === 'error' && r.error?.reason === 'bogus')).toBe(true);
    expect(authkeyQueries() - before).toBe(1);
    const { allowed, refused } = resolver.stats().authkeyRefetches;
    expect(allowed).toBe(1);
    expect(refused).toBeGreaterThan(0);
    // Past the interval, one more.
    clock.advance(AUTHKEY_REFETCH_MIN_INTERVAL_SECONDS);
    const later = authkeyQueries();
    for (const csi of csis) await resolver.discoverCsi(csi);
    expect(authkeyQueries() - later).toBeLessThanOrEqual(1);
  });
});
