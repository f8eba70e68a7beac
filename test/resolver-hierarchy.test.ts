import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csiToName, keyPairFromSeed, parseCsi, type Ed25519KeyPair } from '@mimi-discovery/common';
import {
  createResolver,
  type DiscoveryResult,
  type Resolver,
  type VerifiedMapping,
} from '@mimi-discovery/resolver';
import { createFakeClock, type FakeClock } from './helpers/clock.js';
import { MSP_ZONE, SUB_ZONE, buildHierarchy, type Hierarchy } from './helpers/hierarchy.js';
import { EMAIL_ZONE, PHONE_ZONE } from './helpers/network.js';
import { apiOf, removeMapping, revoke } from './helpers/registration.js';

// Design §6 end to end: a real resolver walks the hierarchy from the root hints over DoH,
// validates from the trust anchor, and aggregates verified mappings (R3, R5), with a fake clock
// for every TTL and expiry.

const key = (seed: number): Ed25519KeyPair => keyPairFromSeed(new Uint8Array(32).fill(seed));
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
const ALICE = key(0x31);
const BOB = key(0x32);
const CAROL = key(0x33);
const MALLORY = key(0x34);

const CSI = {
  unknown: 'tel:+442079460999',
  empty: 'tel:+442079460001',
  oneMsp: 'tel:+442079460018',
  manyMsps: 'tel:+442079460002',
  twoKeys: 'tel:+442079460003',
  aggregated: 'tel:+442079460004',
  onlyMapref: 'tel:+442079460011',
  newBit: 'tel:+442079460005',
  seq: 'tel:+442079460006',
  revoked: 'tel:+442079460007',
  expiring: 'tel:+442079460008',
  halfExpiring: 'tel:+442079460009',
  removed: 'tel:+442079460010',
  sub: 'tel:+447700900123',
  subUnknown: 'tel:+447700900999',
  subWrongProver: 'tel:+447700900456',
  email: 'mailto:alice@example.com',
} as const;

/** The name in the MSP's zone where more mappings of `csi` are published. */
const mspTarget = (csi: string): string =>
  `${csiToName(parseCsi(csi)).replace(`.${PHONE_ZONE}`, '')}.e164.${MSP_ZONE}`;

let h: Hierarchy;
const resolvers: Resolver[] = [];

/** A fresh resolver (empty cache) on its own fake clock, closed after the file. */
function newResolver(): { resolver: Resolver; clock: FakeClock } {
  const clock = createFakeClock();
  const resolver = createResolver(h.resolverConfig(), { now: clock.seconds });
  resolvers.push(resolver);
  return { resolver, clock };
}

const keysOf = (result: DiscoveryResult): string[] => result.mappings.map((m) => m.key).sort();
const byKey = (result: DiscoveryResult, k: Ed25519KeyPair): VerifiedMapping | undefined =>
  result.mappings.find((m) => m.key === b64(k.publicKey));

beforeAll(async () => {
  h = await buildHierarchy();
  const now = Math.floor(Date.now() / 1000);
  await h.publish(CSI.empty, ALICE, { msps: [] });
  await h.publish(CSI.oneMsp, ALICE, {
    msps: [{ provider: 'chat.example', tags: ['primary'] }],
  });
  await h.publish(CSI.manyMsps, ALICE, {
    msps: [
      { provider: 'chat.example', tags: ['primary', 'mls'] },
      { provider: 'msg.example', tags: [], uri: 'im:alice@msg.example' },
      { provider: 'talk.example', tags: ['work'] },
    ],
  });
  await h.publish(CSI.twoKeys, ALICE);
  await h.publish(CSI.twoKeys, BOB, { msps: [{ provider: 'msg.example', tags: ['tablet'] }] });

  // R3: a MAP at the +44 DP and, through a MAPREF, a MAP in the MSP's zone attested by the +44
  // prover (valid) and one attested by the MSP zone's own prover (not a prover of +44: dropped).
  await h.publish(CSI.aggregated, ALICE);
  await h.publishMapref(CSI.aggregated, [mspTarget(CSI.aggregated)]);
  await h.publish(CSI.aggregated, BOB, {
    msps: [{ provider: 'chat.example', tags: ['msp-published'] }],
    at: mspTarget(CSI.aggregated),
  });
  await h.publish(CSI.aggregated, MALLORY, {
    prover: h.msp.store.proverKey(),
    at: mspTarget(CSI.aggregated),
  });
  await h.publishMapref(CSI.onlyMapref, [mspTarget(CSI.onlyMapref)]);
  await h.publish(CSI.onlyMapref, BOB, { at: mspTarget(CSI.onlyMapref) });

  // The "new" bit: CAROL's new mapping de-lists ALICE (attested earlier), not BOB (later).
  await h.publish(CSI.newBit, ALICE, { nbf: now - 300 });
  await h.publish(CSI.newBit, CAROL, { nbf: now - 200, new: true });
  await h.publish(CSI.newBit, BOB, { nbf: now - 100 });
  // Two mappings of one key: the higher seq wins.
  await h.publish(CSI.seq, ALICE, { seq: 1, msps: [{ provider: 'old.example', tags: [] }] });
  await h.publish(CSI.seq, ALICE, { seq: 2, msps: [{ provider: 'new.example', tags: [] }] });

  await h.publish(CSI.revoked, ALICE, { nbf: now - 600 });
  await h.publish(CSI.removed, ALICE, { seq: 1 });
  // The RRset TTL (300 s) outlives the mapping (100 s): the resolver must cap it.
  await h.publish(CSI.expiring, ALICE, { exp: now + 100, ttl: 300 });
  await h.publish(CSI.halfExpiring, ALICE, { exp: now + 100, ttl: 300 });
  await h.publish(CSI.halfExpiring, BOB);

  await h.publish(CSI.sub, ALICE);
  await h.publish(CSI.subWrongProver, ALICE, { prover: h.phone.store.proverKey() });
  await h.publish(CSI.email, ALICE);
});

afterAll(async () => {
  await Promise.allSettled(resolvers.map((r) => r.close()));
  await h?.close();
});

describe('R5: zero, empty, one and many mappings', () => {
  it('answers none for a CSI nobody published, from an authenticated denial', async () => {
    const { resolver } = newResolver();
    const result = await resolver.discover(CSI.unknown);
    expect(result).toMatchObject({ csi: CSI.unknown, status: 'none', mappings: [] });
    expect(result.error).toBeUndefined();
    expect(result.ttl).toBeGreaterThan(0);
  });

  it('answers empty for a mapping that lists no MSP', async () => {
    const { resolver } = newResolver();
    const result = await resolver.discover(CSI.empty);
    expect(result.status).toBe('empty');
    expect(result.mappings).toHaveLength(1);
    expect(result.mappings[0]?.msps).toEqual([]);
    expect(result.mappings[0]?.key).toBe(b64(ALICE.publicKey));
  });

  it('answers found with the one MSP of a mapping, its tags and its provenance', async () => {
    const { resolver } = newResolver();
    const result = await resolver.discover(CSI.oneMsp);
    expect(result.status, JSON.stringify(result.error)).toBe('found');
    expect(result.mappings).toEqual([
      {
        msps: [{ provider: 'chat.example', tags: ['primary'] }],
        key: b64(ALICE.publicKey),
        seq: 1,
        iat: expect.any(Number),
        exp: expect.any(Number),
        new: false,
        prover: b64(h.phone.store.proverKey().publicKey),
        zone: PHONE_ZONE,
        server: h.phone.dohUrl,
      },
    ]);
    expect(result.ttl).toBeGreaterThan(0);
    expect(result.ttl).toBeLessThanOrEqual(300);
  });

  it('accepts the number as people type it and answers for the canonical CSI', async () => {
    const { resolver } = newResolver();
    const result = await resolver.discover('+44 (0)20 7946 0018');
    expect(result.csi).toBe(CSI.oneMsp);
    expect(result.status).toBe('found');
  });

  it('keeps every MSP of a mapping in order, with tags and URIs', async () => {
    const { resolver } = newResolver();
    const result = await resolver.discover(CSI.manyMsps);
    expect(result.status).toBe('found');
    expect(result.mappings).toHaveLength(1);
    expect(result.mappings[0]?.msps).toEqual([
      { provider: 'chat.example', tags: ['primary', 'mls'] },
      { provider: 'msg.example', tags: [], uri: 'im:alice@msg.example' },
      { provider: 'talk.example', tags: ['work'] },
    ]);
  });

  it('returns the mappings of both keys that published for one CSI', async () => {
    const { resolver } = newResolver();
    const result = await resolver.discover(CSI.twoKeys);
    expect(result.status).toBe('found');
    expect(keysOf(result)).toEqual([b64(ALICE.publicKey), b64(BOB.publicKey)].sort());
    expect(byKey(result, BOB)?.msps).toEqual([{ provider: 'msg.example', tags: ['tablet'] }]);
  });

  it('finds an email CSI typed in mixed case in the @example.com range', async () => {
    const { resolver } = newResolver();
    const result = await resolver.discover('Alice@Example.COM');
    expect(result.csi).toBe(CSI.email);
    expect(result.status).toBe('found');
    expect(result.mappings[0]?.zone).toBe(EMAIL_ZONE);
    expect(result.mappings[0]?.prover).toBe(b64(h.email.store.proverKey().publicKey));
  });
});

describe('R3: aggregation across DPs through MAPREF', () => {
  it('unites the MAP at the +44 DP with the MAP at the MSP DP, each with its provenance', async () => {
    const { resolver } = newResolver();
    const result = await resolver.discover(CSI.aggregated);
    expect(result.status, JSON.stringify(result.error)).toBe('found');
    expect(keysOf(result)).toEqual([b64(ALICE.publicKey), b64(BOB.publicKey)].sort());
    expect(byKey(result, ALICE)).toMatchObject({ zone: PHONE_ZONE, server: h.phone.dohUrl });
    expect(byKey(result, BOB)).toMatchObject({
      zone: MSP_ZONE,
      server: h.msp.dohUrl,
      msps: [{ provider: 'chat.example', tags: ['msp-published'] }],
      // The aggregation rule: the prover of the range authoritative for the CSI.
      prover: b64(h.phone.store.proverKey().publicKey),
    });
  });

  it('drops a mapping at the MAPREF target attested by the MSP zone’s own prover', async () => {
    const { resolver } = newResolver();
    const result = await resolver.discover(CSI.aggregated);
    expect(byKey(result, MALLORY)).toBeUndefined();
    const failures = Object.keys(resolver.stats().validationFailures);
    expect(
      failures.some((f) => /prover/.test(f)),
      failures.join(),
    ).toBe(true);
  });

  it('follows a MAPREF from a CSI name that holds no MAP itself', async () => {
    const { resolver } = newResolver();
    const result = await resolver.discover(CSI.onlyMapref);
    expect(result.status, JSON.stringify(result.error)).toBe('found');
    expect(result.mappings).toHaveLength(1);
    expect(byKey(result, BOB)).toMatchObject({ zone: MSP_ZONE });
  });
});

describe('a CSI under the sub-delegated +447 DP', () => {
  it('is found at the DP the +44 DP delegated to, attested by that DP', async () => {
    const { resolver } = newResolver();
    const result = await resolver.discover(CSI.sub);
    expect(result.status, JSON.stringify(result.error)).toBe('found');
    expect(result.mappings).toHaveLength(1);
    expect(result.mappings[0]).toMatchObject({
      zone: SUB_ZONE,
      server: h.sub.dohUrl,
      prover: b64(h.sub.store.proverKey().publicKey),
    });
  });

  it('is none when nobody published it, denied by the +447 DP', async () => {
    const { resolver } = newResolver();
    expect((await resolver.discover(CSI.subUnknown)).status).toBe('none');
  });

  it('is not vouched for by the +44 prover once +447 is delegated away', async () => {
    const { resolver } = newResolver();
    const result = await resolver.discover(CSI.subWrongProver);
    expect(result.status).toBe('error');
    expect(result.error?.reason).toBe('bogus');
  });
});

describe('choosing among mappings', () => {
  it('de-lists the mappings of keys attested before a mapping with the new bit', async () => {
    const { resolver } = newResolver();
    const result = await resolver.discover(CSI.newBit);
    expect(result.status).toBe('found');
    expect(keysOf(result)).toEqual([b64(BOB.publicKey), b64(CAROL.publicKey)].sort());
    expect(byKey(result, CAROL)?.new).toBe(true);
  });

  it('keeps only the highest seq of one key', async () => {
    const { resolver } = newResolver();
    const result = await resolver.discover(CSI.seq);
    expect(result.mappings).toHaveLength(1);
    expect(result.mappings[0]).toMatchObject({
      seq: 2,
      msps: [{ provider: 'new.example', tags: [] }],
    });
  });
});

describe('removal, revocation and expiry reach senders through TTLs (R9, R10)', () => {
  it('stops returning a mapping revoked by the CSIP once the cached answer expires', async () => {
    const { resolver, clock } = newResolver();
    const before = await resolver.discover(CSI.revoked);
    expect(before.status).toBe('found');
    const revoked = await revoke(
      apiOf(h.phone).client,
      CSI.revoked,
      h.csip,
      Math.floor(Date.now() / 1000),
    );
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    expect((revoked.body as { removed: number }).removed).toBe(1);
    clock.advance(before.ttl - 1);
    expect((await resolver.discover(CSI.revoked)).status).toBe('found');
    clock.advance(2);
    const after = await resolver.discover(CSI.revoked);
    expect(after.status).toBe('none');
    expect(after.mappings).toEqual([]);
  });

  it('returns a removed mapping until its TTL runs out, and not after', async () => {
    const { resolver, clock } = newResolver();
    const first = await resolver.discover(CSI.removed);
    expect(first.status).toBe('found');
    expect(first.ttl).toBeGreaterThan(2);
    const removed = await removeMapping(apiOf(h.phone).client, CSI.removed, ALICE, 1);
    expect(removed.status, JSON.stringify(removed.body)).toBe(200);
    clock.advance(first.ttl - 1);
    const cached = await resolver.discover(CSI.removed);
    expect(cached.status).toBe('found');
    expect(cached.ttl).toBe(first.ttl);
    clock.advance(2);
    const gone = await resolver.discover(CSI.removed);
    expect(gone).toMatchObject({ status: 'none', mappings: [] });
  });

  it('caps the TTL at the mapping’s exp and drops it once the clock passes exp', async () => {
    const { resolver, clock } = newResolver();
    const first = await resolver.discover(CSI.expiring);
    expect(first.status).toBe('found');
    expect(first.ttl).toBeLessThanOrEqual(100);
    clock.advance(101);
    const after = await resolver.discover(CSI.expiring);
    expect(after.mappings).toEqual([]);
    // An expired mapping is one the recipient let lapse, not an attack: nothing to report.
    expect(after.status, JSON.stringify(after.error)).toBe('none');
  });

  it('keeps the other mapping when one of two expires', async () => {
    const { resolver, clock } = newResolver();
    expect(keysOf(await resolver.discover(CSI.halfExpiring))).toHaveLength(2);
    clock.advance(101);
    const after = await resolver.discover(CSI.halfExpiring);
    expect(after.status, JSON.stringify(after.error)).toBe('found');
    expect(keysOf(after)).toEqual([b64(BOB.publicKey)]);
  });
});

describe('discoverMany', () => {
  it('answers a mixed list (found, none, empty, not a CSI, email, +447) in input order', async () => {
    const { resolver } = newResolver();
    const inputs = [
      CSI.oneMsp,
      CSI.unknown,
      CSI.empty,
      'not a phone number',
      'alice@example.com',
      '+44 7700 900123',
      CSI.twoKeys,
      CSI.unknown,
    ];
    const results = await resolver.discoverMany(inputs);
    expect(results.map((r) => [r.csi, r.status])).toEqual([
      [CSI.oneMsp, 'found'],
      [CSI.unknown, 'none'],
      [CSI.empty, 'empty'],
      ['not a phone number', 'error'],
      [CSI.email, 'found'],
      [CSI.sub, 'found'],
      [CSI.twoKeys, 'found'],
      [CSI.unknown, 'none'],
    ]);
    expect(results[3]?.error?.reason).toBe('invalid-csi');
    expect(results[6]?.mappings).toHaveLength(2);
  });
});
