import { describe, expect, it } from 'vitest';
import {
  DNSKEY_FLAG_REVOKE,
  computeKeyTag,
  createZoneKey,
  type ZoneKey,
} from '@mimi-discovery/common';
import {
  keySetAt,
  keyStateAt,
  nextKeyEvent,
  type KeyTiming,
  type StoredZoneKey,
} from '../src/index.js';

const ZONE = 'example';

function key(seedByte: number, timing: KeyTiming): { stored: StoredZoneKey; secret: ZoneKey } {
  const secret = createZoneKey(ZONE, { seed: new Uint8Array(32).fill(seedByte) });
  return { stored: { zone: ZONE, keyTag: secret.keyTag, dnskey: secret.dnskey, timing }, secret };
}

// The worked example of key-set.ts: a CSK rollover from A to B.
const A = key(1, {
  created: 0,
  publish: 0,
  active: 0,
  inactive: 5000,
  remove: 9000,
  syncPublish: 0,
  syncDelete: 5000,
});
const B = key(2, { created: 1000, publish: 1000, active: 5000, syncPublish: 2000 });
const all = [A, B];
const privateOf = (k: StoredZoneKey): ZoneKey | undefined =>
  all.find((x) => x.stored.keyTag === k.keyTag)?.secret;
const tags = (keys: readonly ZoneKey[]): number[] => keys.map((k) => k.keyTag);

describe('keyStateAt', () => {
  it.each([
    [500, 'active', 'generated'],
    [1000, 'active', 'published'],
    [5000, 'retired', 'active'],
    [9000, 'removed', 'active'],
  ] as const)('at %i, A is %s and B is %s', (now, a, b) => {
    expect(keyStateAt(A.stored, now)).toBe(a);
    expect(keyStateAt(B.stored, now)).toBe(b);
  });

  it('counts a revoked key as revoked even inside its active window, and removed after remove', () => {
    const k = key(3, { created: 0, publish: 0, active: 0, revoke: 100, remove: 200 }).stored;
    expect(keyStateAt(k, 99)).toBe('active');
    expect(keyStateAt(k, 100)).toBe('revoked');
    expect(keyStateAt(k, 200)).toBe('removed');
  });

  it('never makes a key without active a signer', () => {
    const k = key(4, { created: 0, publish: 0 }).stored;
    expect(keyStateAt(k, 10 ** 9)).toBe('published');
  });
});

describe('keySetAt', () => {
  it('publishes the new key beside the old one before the switch, the old one signing', () => {
    const set = keySetAt(
      all.map((k) => k.stored),
      privateOf,
      3000,
    );
    expect(set.dnskeys).toEqual([A.stored.dnskey, B.stored.dnskey]);
    expect(tags(set.signers)).toEqual([A.stored.keyTag]);
    expect(tags(set.dnskeySigners)).toEqual([A.stored.keyTag, B.stored.keyTag]);
    expect(set.cds).toEqual([A.stored.dnskey, B.stored.dnskey]);
  });

  it('signs with the new key after the switch while the old one stays published, CDS only the new', () => {
    const set = keySetAt(
      all.map((k) => k.stored),
      privateOf,
      6000,
    );
    expect(set.dnskeys).toHaveLength(2);
    expect(tags(set.signers)).toEqual([B.stored.keyTag]);
    expect(set.cds).toEqual([B.stored.dnskey]);
  });

  it('drops the removed key from every list', () => {
    const set = keySetAt(
      all.map((k) => k.stored),
      privateOf,
      9000,
    );
    expect(set.dnskeys).toEqual([B.stored.dnskey]);
    expect(tags(set.dnskeySigners)).toEqual([B.stored.keyTag]);
  });

  it('publishes a revoked key with the REVOKE bit, signing only the DNSKEY RRset (RFC 5011 §2.1)', () => {
    const R = key(5, {
      created: 0,
      publish: 0,
      active: 0,
      inactive: 50,
      revoke: 100,
      syncPublish: 0,
    });
    const set = keySetAt([R.stored], () => R.secret, 150);
    const revoked = set.dnskeys[0];
    expect(revoked?.flags).toBe(R.stored.dnskey.flags | DNSKEY_FLAG_REVOKE);
    expect(set.signers).toEqual([]);
    expect(set.dnskeySigners[0]?.dnskey).toEqual(revoked);
    expect(set.dnskeySigners[0]?.keyTag).toBe(computeKeyTag(revoked!));
    expect(set.dnskeySigners[0]?.keyTag).not.toBe(R.stored.keyTag);
    expect(set.cds).toEqual([]);
  });

  it('publishes a key whose private half is missing but never signs with it', () => {
    const set = keySetAt([A.stored], () => undefined, 100);
    expect(set.dnskeys).toHaveLength(1);
    expect(set.signers).toEqual([]);
    expect(set.dnskeySigners).toEqual([]);
  });

  it('names the next timing event', () => {
    const stored = all.map((k) => k.stored);
    expect(nextKeyEvent(stored, 0)).toBe(1000);
    expect(nextKeyEvent(stored, 1000)).toBe(2000);
    expect(nextKeyEvent(stored, 5000)).toBe(9000);
    expect(nextKeyEvent(stored, 9000)).toBeUndefined();
  });
});
