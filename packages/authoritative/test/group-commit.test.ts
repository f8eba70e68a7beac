import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPairFromSeed, type ResourceRecord } from '@mimi-discovery/common';
import {
  createMemoryStore,
  openLmdbStore,
  openPgStore,
  type DiscoveryStore,
  type StoreOperation,
} from '../src/index.js';
import { GROUP_MAX_WRITES } from '../src/store/mapping-ops.js';
import { PHONE, attest, mappingBytes, seed } from './registration-fixture.js';
import {
  NUMBER,
  ORIGIN,
  PROVER_SEED,
  T0,
  delegation,
  expectStoreError,
  fakeClock,
  mapRecord,
  putMap,
  verifiesAt,
  zoneInit,
} from './store-battery.js';
import {
  postgresMissing,
  startPostgres,
  type TestPostgres,
} from '../../../test/helpers/postgres.js';

/**
 * Group commit (issue 18, "publishing without hurting queries"): the applies and operations that
 * share a commit step their zone's SOA serial once and sign its SOA once, on every store, and a
 * secondary following the journal still reaches the same zone. The SOA signatures are counted
 * by the store (`writeCounts`), not timed.
 */

const missing = postgresMissing();
if (missing !== undefined) console.warn(`${missing}: skipping the PostgreSQL group commits`);

let cluster: TestPostgres | undefined;
const work = mkdtempSync(join(tmpdir(), 'mimi-group-commit-'));
beforeAll(async () => {
  if (missing === undefined) cluster = await startPostgres();
}, 120_000);
afterAll(async () => {
  await cluster?.stop();
  rmSync(work, { recursive: true, force: true });
});

interface Opened {
  store: DiscoveryStore;
  /** Closes the store and opens it again on the same data; undefined for the memory store. */
  reopen: (() => Promise<DiscoveryStore>) | undefined;
}

let dirs = 0;
const clock = fakeClock();
const stores: Array<[string, () => Promise<Opened>]> = [
  [
    'memory',
    async () => ({
      store: createMemoryStore({ proverSeed: PROVER_SEED, now: clock.now }),
      reopen: undefined,
    }),
  ],
  [
    'LMDB',
    async () => {
      const dataDir = join(work, `lmdb-${++dirs}`);
      const open = (): Promise<DiscoveryStore> =>
        openLmdbStore({ dataDir, proverSeed: PROVER_SEED, now: clock.now });
      const store = await open();
      return {
        store,
        reopen: async () => {
          await store.close();
          return open();
        },
      };
    },
  ],
  [
    'PostgreSQL',
    async () => {
      if (cluster === undefined) throw new Error('no PostgreSQL cluster');
      const url = await cluster.createDatabase();
      const keys = join(work, `keys-${++dirs}`);
      const open = (): Promise<DiscoveryStore> =>
        openPgStore({ url, keys, proverSeed: PROVER_SEED, now: clock.now });
      const store = await open();
      return {
        store,
        reopen: async () => {
          await store.close();
          return open();
        },
      };
    },
  ],
];

/** `count` distinct names in the zone. */
function names(count: number, tag = 0): string[] {
  return Array.from(
    { length: count },
    (_, i) => `${i % 10}.${Math.floor(i / 10) % 10}.${Math.floor(i / 100)}.${tag}.${ORIGIN}`,
  );
}

const soaSignatures = (store: DiscoveryStore): number => {
  const counts = store.writeCounts?.();
  if (counts === undefined) throw new Error('the store does not count its SOA signatures');
  return counts.soaSignatures;
};

const serialOf = (store: DiscoveryStore): number => store.zoneInfo(ORIGIN)?.serial ?? 0;

const key = (rr: ResourceRecord): string =>
  JSON.stringify(rr, (_k, v: unknown) =>
    v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
  );

/** The zone a secondary holding `before` reaches by applying `store`'s journal from `from`. */
async function followJournal(
  store: DiscoveryStore,
  before: readonly ResourceRecord[],
  from: number,
): Promise<string[]> {
  const entries = await store.journalSince(ORIGIN, from);
  if (entries === undefined) throw new Error(`the journal does not reach back to ${from}`);
  const zone = new Set(before.map(key));
  for (const entry of entries) {
    for (const rr of entry.deleted) expect(zone.delete(key(rr))).toBe(true);
    for (const rr of entry.added) zone.add(key(rr));
  }
  return [...zone].sort();
}

const publishOf = (recipientSeed: number): StoreOperation => {
  const recipient = keyPairFromSeed(seed(recipientSeed));
  return {
    kind: 'publish-mapping',
    name: NUMBER,
    csi: PHONE,
    mapping: mappingBytes({ att: attest(PHONE, recipient, PROVER_SEED, T0), iat: T0, recipient }),
    now: T0,
    authorize: true,
  };
};

describe.each(stores)('group commit on the %s store', (kind, open) => {
  const skip = kind === 'PostgreSQL' && missing !== undefined;

  it.skipIf(skip)(
    'steps the serial once and signs the SOA once for 200 concurrent applies, and serves them all',
    async () => {
      const { store } = await open();
      await store.addZone(zoneInit());
      const before = store.readZone(ORIGIN);
      const serial = serialOf(store);
      const signed = soaSignatures(store);
      const generation = store.generation();
      const all = names(200);
      const results = await Promise.all(
        all.map((n, i) => store.apply(ORIGIN, [putMap(n, i % 250)])),
      );
      expect(new Set(results.map((r) => r.serial))).toEqual(new Set([serial + 1]));
      expect(serialOf(store)).toBe(serial + 1);
      expect(soaSignatures(store) - signed).toBe(1);
      const [soa] = store.readRRset(ORIGIN, ORIGIN, 'SOA');
      expect(soa?.type === 'SOA' && soa.data.serial).toBe(serial + 1);
      expect(verifiesAt(store, ORIGIN, ORIGIN, 'SOA', T0)).toBe(true);
      all.forEach((n, i) =>
        expect(store.readRRset(ORIGIN, n, 'MAP')).toEqual([mapRecord(n, i % 250)]),
      );
      expect(all.every((n) => verifiesAt(store, ORIGIN, n, 'MAP', T0))).toBe(true);
      // One change-log entry naming every name, so an answer cache drops only those.
      const changed = store.changesSince(generation).names;
      expect(changed).not.toBe('all');
      expect([...(changed as string[])].sort()).toEqual([...all, ORIGIN].sort());
      // One journal entry, which a secondary applies to reach the same zone.
      const entries = await store.journalSince(ORIGIN, serial);
      expect(entries?.map((e) => [e.from, e.to])).toEqual([[serial, serial + 1]]);
      expect(entries?.[0]?.added.filter((rr) => rr.type === 'MAP')).toHaveLength(all.length);
      expect(await followJournal(store, before, serial)).toEqual(
        store.readZone(ORIGIN).map(key).sort(),
      );
      await store.close();
    },
  );

  it.skipIf(skip)(
    'keeps serials strictly increasing, one step per commit, across many commits and a restart',
    async () => {
      const opened = await open();
      let store = opened.store;
      await store.addZone(zoneInit());
      const before = store.readZone(ORIGIN);
      const seen: number[] = [];
      for (let burst = 0; burst < 6; burst++) {
        const results = await Promise.all(
          names(20, burst).map((n) => store.apply(ORIGIN, [putMap(n, burst + 1)])),
        );
        expect(new Set(results.map((r) => r.serial)).size).toBe(1);
        seen.push(results[0]?.serial ?? 0);
      }
      expect(seen).toEqual([2, 3, 4, 5, 6, 7]);
      if (opened.reopen !== undefined) {
        store = await opened.reopen();
        expect(serialOf(store)).toBe(7);
      }
      const signed = soaSignatures(store);
      const after = await Promise.all(names(20, 9).map((n) => store.apply(ORIGIN, [putMap(n, 9)])));
      expect(new Set(after.map((r) => r.serial))).toEqual(new Set([8]));
      expect(soaSignatures(store) - signed).toBe(1);
      const entries = await store.journalSince(ORIGIN, 1);
      expect(entries?.map((e) => [e.from, e.to])).toEqual(
        Array.from({ length: 7 }, (_, i) => [i + 1, i + 2]),
      );
      expect(await followJournal(store, before, 1)).toEqual(store.readZone(ORIGIN).map(key).sort());
      await store.close();
    },
  );

  it.skipIf(skip)(
    'refuses a bad change set of a group with its own error and commits the others under one serial',
    async () => {
      const { store } = await open();
      await store.addZone(zoneInit());
      const signed = soaSignatures(store);
      const good = names(30);
      const bad = `5.5.5.${ORIGIN}`;
      const settled = await Promise.allSettled([
        ...good.slice(0, 15).map((n) => store.apply(ORIGIN, [putMap(n, 3)])),
        // A DS without NS at its owner: refused inside the group, when it is planned.
        store.apply(ORIGIN, [putMap(bad, 4), ...delegation(bad).filter((c) => c.type === 'DS')]),
        store.applyOperation(ORIGIN, publishOf(0x41)),
        store.applyOperation(ORIGIN, publishOf(0x42)),
        ...good.slice(15).map((n) => store.apply(ORIGIN, [putMap(n, 3)])),
      ]);
      const failed = settled[15];
      expect(failed?.status).toBe('rejected');
      await expectStoreError(
        failed?.status === 'rejected' ? Promise.reject(failed.reason as Error) : Promise.resolve(),
        'ERR_STORE_BAD_CHANGE',
      );
      const others = settled.filter((_, i) => i !== 15);
      const serials = others.map((s) =>
        s.status === 'fulfilled' && 'serial' in s.value ? s.value.serial : -1,
      );
      expect(new Set(serials)).toEqual(new Set([2]));
      expect(serialOf(store)).toBe(2);
      expect(soaSignatures(store) - signed).toBe(1);
      expect(store.readRRset(ORIGIN, bad, 'MAP')).toEqual([]);
      good.forEach((n) => expect(store.readRRset(ORIGIN, n, 'MAP')).toEqual([mapRecord(n, 3)]));
      // Both publications of the same CSI, planned one over the other in the group.
      expect(store.readRRset(ORIGIN, NUMBER, 'MAP')).toHaveLength(2);
      await store.close();
    },
  );

  it.skipIf(skip || kind !== 'LMDB')(
    'finishes every write it accepted when it is closed with groups still queued',
    async () => {
      const opened = await open();
      await opened.store.addZone(zoneInit());
      const all = Array.from({ length: GROUP_MAX_WRITES + 5 }, (_, i) => `${i}.2.${ORIGIN}`);
      const writes = all.map((n) => opened.store.apply(ORIGIN, [putMap(n, 2)]));
      const reopened = opened.reopen === undefined ? undefined : await opened.reopen();
      const results = await Promise.all(writes);
      expect(new Set(results.map((r) => r.serial))).toEqual(new Set([2, 3]));
      if (reopened === undefined) throw new Error('no reopen');
      expect(serialOf(reopened)).toBe(3);
      all.forEach((n) => expect(reopened.readRRset(ORIGIN, n, 'MAP')).toHaveLength(1));
      await expectStoreError(opened.store.apply(ORIGIN, [putMap(NUMBER)]), 'ERR_STORE_CLOSED');
      await reopened.close();
    },
    120_000,
  );

  it.skipIf(skip || kind === 'PostgreSQL')(
    `holds at most ${GROUP_MAX_WRITES} writes in one commit`,
    async () => {
      const { store } = await open();
      await store.addZone(zoneInit());
      const signed = soaSignatures(store);
      const all = Array.from({ length: GROUP_MAX_WRITES + 1 }, (_, i) => `${i}.1.${ORIGIN}`);
      const results = await Promise.all(all.map((n) => store.apply(ORIGIN, [putMap(n, 1)])));
      const serials = results.map((r) => r.serial);
      expect(serials.filter((s) => s === 2)).toHaveLength(GROUP_MAX_WRITES);
      expect(serials.filter((s) => s === 3)).toHaveLength(1);
      expect(soaSignatures(store) - signed).toBe(2);
      await store.close();
    },
    120_000,
  );
});
