import { describe, expect, it } from 'vitest';
import {
  DNSKEY_FLAG_REVOKE,
  computeDs,
  computeKeyTag,
  verifyRRset,
  type RecordOf,
  type ResourceRecord,
  type RRType,
} from '@mimi-discovery/common';
import type { DiscoveryStore } from '../src/index.js';
import type { FakeClock, StoreFactoryOptions, StoreHarness } from './store-battery.js';
import {
  CHILD,
  NUMBER,
  ORIGIN,
  delegation,
  expectStoreError,
  putMap,
  zoneInit,
} from './store-battery.js';

/**
 * The part of the shared store battery about keys apart from data (design §5, §9): the store
 * publishes and signs with what the key directory's timings say at its last `refreshKeys`, and
 * re-signs the whole zone after a key switch.
 */

type Setup = (
  options?: Partial<StoreFactoryOptions>,
) => Promise<StoreHarness & { clock: FakeClock }>;

const DAY = 86_400;
const KEY_TYPES: ReadonlySet<RRType> = new Set<RRType>(['DNSKEY', 'CDS', 'CDNSKEY']);

/** The key tags of the RRSIGs over each RRset of the zone, by `name type`. */
function signersByRRset(zone: readonly ResourceRecord[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const rr of zone) {
    if (rr.type !== 'RRSIG') continue;
    const id = `${rr.name} ${rr.data.typeCovered}`;
    out.set(
      id,
      [...(out.get(id) ?? []), rr.data.keyTag].sort((a, b) => a - b),
    );
  }
  return out;
}

/** Every RRset of the zone verifies with its apex DNSKEY RRset, by every RRSIG over it. */
function expectZoneVerifies(store: DiscoveryStore, now: number): void {
  const zone = store.readZone(ORIGIN);
  const dnskeys = zone.filter(
    (rr): rr is RecordOf<'DNSKEY'> => rr.type === 'DNSKEY' && rr.name === ORIGIN,
  );
  for (const rrsig of zone.filter((rr): rr is RecordOf<'RRSIG'> => rr.type === 'RRSIG')) {
    const rrset = zone.filter((rr) => rr.name === rrsig.name && rr.type === rrsig.data.typeCovered);
    expect(
      verifyRRset(rrset, rrsig, dnskeys, now).kind,
      `${rrsig.name} ${rrsig.data.typeCovered} by ${rrsig.data.keyTag}`,
    ).toBe('verified');
  }
}

export function keysBattery(setup: Setup): void {
  describe('keys apart from data', () => {
    /** A zone with a few RRsets and its first key; the second key published beside it. */
    const rolling = async () => {
      const harness = await setup();
      const { store, clock } = harness;
      await store.addZone(zoneInit());
      await store.apply(ORIGIN, [putMap(NUMBER), ...delegation(CHILD)]);
      const [old] = store.keys.zoneKeys(ORIGIN);
      if (old === undefined) throw new Error('no first key');
      const now = clock.now();
      const added = await store.keys.addZoneKey(ORIGIN, {
        created: now,
        publish: now,
        active: now + DAY,
        syncPublish: now,
      });
      await store.keys.setTiming(ORIGIN, old.keyTag, { syncPublish: now, inactive: now + DAY });
      return { ...harness, old, added };
    };

    it('creates the first key in the key directory: published and active now, no CDS', async () => {
      const { store, clock } = await setup();
      const info = await store.addZone(zoneInit());
      const keys = store.keys.zoneKeys(ORIGIN);
      expect(keys.map((k) => k.keyTag)).toEqual([info.keyTag]);
      expect(keys[0]?.timing).toEqual({
        created: clock.now(),
        publish: clock.now(),
        active: clock.now(),
      });
      expect(store.readRRset(ORIGIN, ORIGIN, 'CDS')).toEqual([]);
      expect(store.signatureStatus(ORIGIN)).toMatchObject({
        pendingResign: 0,
        signers: [info.keyTag],
      });
      expect(store.zoneSigners(ORIGIN).map((k) => k.keyTag)).toEqual([info.keyTag]);
    });

    it('publishes DNSKEY, CDS and CDNSKEY as the key set says, signed by every published key', async () => {
      const { store, clock, old, added } = await rolling();
      const serial = store.zoneInfo(ORIGIN)?.serial ?? 0;
      const result = await store.refreshKeys(ORIGIN);
      expect(result).toEqual({ serial: serial + 1, changed: true });
      const tags = [old.keyTag, added.keyTag].sort((a, b) => a - b);
      expect(
        store
          .readRRset(ORIGIN, ORIGIN, 'DNSKEY')
          .map((rr) => (rr.type === 'DNSKEY' ? rr.data.publicKey : undefined)),
      ).toEqual(expect.arrayContaining([old.dnskey.publicKey, added.dnskey.publicKey]));
      expect(store.readRRset(ORIGIN, ORIGIN, 'DNSKEY')).toHaveLength(2);
      expect(store.readRRset(ORIGIN, ORIGIN, 'CDS').map((rr) => rr.data)).toEqual(
        expect.arrayContaining([
          computeDs(ORIGIN, old.dnskey, 2),
          computeDs(ORIGIN, added.dnskey, 2),
        ]),
      );
      expect(store.readRRset(ORIGIN, ORIGIN, 'CDNSKEY')).toHaveLength(2);
      const signers = signersByRRset(store.readZone(ORIGIN));
      for (const type of KEY_TYPES) expect(signers.get(`${ORIGIN} ${type}`)).toEqual(tags);
      // The new key is not active yet: everything else is still signed by the old key alone.
      expect(signers.get(`${NUMBER} MAP`)).toEqual([old.keyTag]);
      expect(store.signatureStatus(ORIGIN)).toMatchObject({
        pendingResign: 0,
        signers: [old.keyTag],
      });
      expectZoneVerifies(store, clock.now());
      // Nothing changed since: a second refresh writes nothing.
      expect(await store.refreshKeys(ORIGIN)).toEqual({ serial: serial + 1, changed: false });
      // Journaled, as every serial change.
      const journal = (await store.journalSince(ORIGIN, serial)) ?? [];
      expect(journal.flatMap((e) => e.added).some((rr) => rr.type === 'CDS')).toBe(true);
    });

    it('re-signs every RRset after a key switch, and pendingResign falls to 0', async () => {
      const { store, clock, old, added } = await rolling();
      await store.refreshKeys(ORIGIN);
      clock.advance(DAY);
      await store.refreshKeys(ORIGIN);
      const status = store.signatureStatus(ORIGIN);
      expect(status?.signers).toEqual([added.keyTag]);
      expect(status?.pendingResign).toBeGreaterThan(0);
      expect(store.zoneKey(ORIGIN)?.keyTag).toBe(added.keyTag);
      expect(store.zoneInfo(ORIGIN)?.keyTag).toBe(added.keyTag);
      // Signatures by the old key are still valid until re-signed: nothing waits for expiry.
      const count = await store.resign();
      expect(count).toBeGreaterThanOrEqual(status?.pendingResign ?? 0);
      expect(store.signatureStatus(ORIGIN)?.pendingResign).toBe(0);
      const signers = signersByRRset(store.readZone(ORIGIN));
      for (const [id, tags] of signers) {
        const type = id.split(' ')[1] as RRType;
        expect(tags, id).toEqual(
          KEY_TYPES.has(type) ? [old.keyTag, added.keyTag].sort((a, b) => a - b) : [added.keyTag],
        );
      }
      expect(store.readRRset(ORIGIN, ORIGIN, 'CDS')).toHaveLength(2);
      expectZoneVerifies(store, clock.now());
      // A write after the switch is signed by the new key only.
      await store.apply(ORIGIN, [putMap(`1.${NUMBER}`)]);
      expect(signersByRRset(store.readZone(ORIGIN)).get(`1.${NUMBER} MAP`)).toEqual([added.keyTag]);
      expect(await store.resign()).toBe(0);
    });

    it('publishes a revoked key with the REVOKE bit, self-signed (RFC 5011 §2.1)', async () => {
      const { store, clock, old, added } = await rolling();
      clock.advance(DAY);
      await store.keys.setTiming(ORIGIN, old.keyTag, { revoke: clock.now() });
      await store.refreshKeys(ORIGIN);
      const dnskeys = store
        .readRRset(ORIGIN, ORIGIN, 'DNSKEY')
        .flatMap((rr) => (rr.type === 'DNSKEY' ? [rr.data] : []));
      const revoked = dnskeys.find((d) => (d.flags & DNSKEY_FLAG_REVOKE) !== 0);
      expect(revoked?.publicKey).toEqual(old.dnskey.publicKey);
      expect(store.readRRset(ORIGIN, ORIGIN, 'CDS').map((rr) => rr.data)).toEqual([
        computeDs(ORIGIN, added.dnskey, 2),
      ]);
      await store.resign();
      // The revoked key signs the DNSKEY RRset only; its revoked tag is what its RRSIG carries.
      const signers = signersByRRset(store.readZone(ORIGIN));
      const revokedTag = computeKeyTag(revoked ?? old.dnskey);
      expect(signers.get(`${ORIGIN} DNSKEY`)).toEqual(
        [revokedTag, added.keyTag].sort((a, b) => a - b),
      );
      expect(signers.get(`${ORIGIN} CDS`)).toEqual([added.keyTag]);
      expect(signers.get(`${NUMBER} MAP`)).toEqual([added.keyTag]);
    });

    it('refuses a refresh that would leave no active key or a key it cannot find, changing nothing', async () => {
      const { store, clock } = await setup();
      await store.addZone(zoneInit());
      const [only] = store.keys.zoneKeys(ORIGIN);
      if (only === undefined) throw new Error('no key');
      const before = store.readZone(ORIGIN);
      const status = store.signatureStatus(ORIGIN);
      await store.keys.setTiming(ORIGIN, only.keyTag, { inactive: clock.now() });
      await expectStoreError(store.refreshKeys(ORIGIN), 'ERR_STORE_KEY_MISSING');
      expect(store.readZone(ORIGIN)).toEqual(before);
      expect(store.signatureStatus(ORIGIN)).toEqual(status);
      // The store keeps signing with the set it computed last, not from its clock.
      const { serial } = await store.apply(ORIGIN, [putMap(NUMBER)]);
      expect(serial).toBe(2);
      expect(signersByRRset(store.readZone(ORIGIN)).get(`${NUMBER} MAP`)).toEqual([only.keyTag]);
      await expectStoreError(store.refreshKeys('no.such.zone'), 'ERR_STORE_NO_ZONE');
    });

    it('keeps its keys and the key set it signs with across a restart, when it persists', async (context) => {
      const { store, clock, reopen, added } = await rolling();
      if (reopen === undefined) {
        context.skip();
        return;
      }
      await store.refreshKeys(ORIGIN);
      clock.advance(DAY);
      await store.refreshKeys(ORIGIN);
      const status = store.signatureStatus(ORIGIN);
      const zone = store.readZone(ORIGIN);
      const reopened = await reopen();
      expect(reopened.readZone(ORIGIN)).toEqual(zone);
      expect(reopened.signatureStatus(ORIGIN)?.signers).toEqual([added.keyTag]);
      expect(reopened.signatureStatus(ORIGIN)?.pendingResign).toBe(status?.pendingResign);
      await reopened.resign();
      expect(reopened.signatureStatus(ORIGIN)?.pendingResign).toBe(0);
      expectZoneVerifies(reopened, clock.now());
      await reopened.close();
    });
  });
}
