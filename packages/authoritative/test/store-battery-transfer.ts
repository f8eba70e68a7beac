import {
  buildNsec3Chain,
  canonicalName,
  denialTtl,
  encodeRdata,
  lookupZone,
  record,
  verifyRRset,
  type RecordOf,
  type ResourceRecord,
} from '@mimi-discovery/common';
import { describe, expect, it } from 'vitest';
import {
  RESIGN_MAX_RRSETS_PER_WRITE,
  STREAM_BATCH_RECORDS,
  dropZoneDigest,
  keepZoneDigest,
  type DiscoveryStore,
  type JournalEntry,
  type RRsetChange,
} from '../src/index.js';
import { mapRecords, putMappings } from './expiring-mappings.js';
import { PHONE, RECIPIENT, attest, mappingBytes } from './registration-fixture.js';
import type { FakeClock, StoreFactoryOptions, StoreHarness } from './store-battery.js';
import {
  CHILD,
  NUMBER,
  ORIGIN,
  PROVER_SEED,
  T0,
  delegation,
  expectStoreError,
  mapRecord,
  putMap,
  zoneInit,
} from './store-battery.js';

/**
 * The part of the shared store battery about what zone transfers need from a store (design §9):
 * the journal of signed changes (IXFR), the NSEC3 chain kept for stock secondaries, spread
 * signature refreshes, streamed reads, and expired mappings removed by re-signing (R9). Every
 * store must pass it; what a persistent store adds (a restart) runs when the harness can reopen.
 */

type Setup = (
  options?: Partial<StoreFactoryOptions>,
) => Promise<StoreHarness & { clock: FakeClock }>;

const DAY = 86_400;

/** A record as comparable text: owner, type, TTL and canonical RDATA. */
function recordKey(rr: ResourceRecord): string {
  const rdata = Buffer.from(encodeRdata(rr, { canonical: true })).toString('hex');
  return `${canonicalName(rr.name)} ${rr.type} ${rr.ttl} ${rdata}`;
}

/** The records of a zone as a set of {@link recordKey}s. */
function recordSet(records: readonly ResourceRecord[]): Set<string> {
  return new Set(records.map(recordKey));
}

/**
 * The zone `records` with the journal `entries` applied, as a secondary applies an IXFR
 * (RFC 1995 §4): every deleted record must be there, every added one must not.
 */
function replay(records: readonly ResourceRecord[], entries: readonly JournalEntry[]): Set<string> {
  const zone = recordSet(records);
  for (const entry of entries) {
    for (const rr of entry.deleted) {
      expect(zone.has(recordKey(rr)), `${entry.from}→${entry.to} deletes ${recordKey(rr)}`).toBe(
        true,
      );
      zone.delete(recordKey(rr));
    }
    for (const rr of entry.added) {
      expect(zone.has(recordKey(rr)), `${entry.from}→${entry.to} adds ${recordKey(rr)}`).toBe(
        false,
      );
      zone.add(recordKey(rr));
    }
  }
  return zone;
}

/** Expects entries that chain from serial `from` to `to`, each bumping the serial by one. */
function expectChained(entries: readonly JournalEntry[], from: number, to: number): void {
  expect(entries[0]?.from).toBe(from);
  expect(entries.at(-1)?.to).toBe(to);
  entries.forEach((entry, i) => {
    if (i > 0) expect(entry.from).toBe(entries[i - 1]?.to);
    expect(entry.to).toBe((entry.from + 1) % 2 ** 32);
    expect(entry.deleted[0]).toMatchObject({ type: 'SOA', data: { serial: entry.from } });
    expect(entry.added[0]).toMatchObject({ type: 'SOA', data: { serial: entry.to } });
  });
}

function serialOf(store: DiscoveryStore): number {
  return store.zoneInfo(ORIGIN)?.serial ?? -1;
}

const isChain = (rr: ResourceRecord): boolean =>
  rr.type === 'NSEC3' ||
  rr.type === 'NSEC3PARAM' ||
  (rr.type === 'RRSIG' &&
    (rr.data.typeCovered === 'NSEC3' || rr.data.typeCovered === 'NSEC3PARAM'));

/**
 * Expects the stored chain to be exactly the one `buildNsec3Chain` builds from the zone's data,
 * every NSEC3 RRset signed by the zone key at `now`.
 */
function expectExactChain(store: DiscoveryStore, now: number): void {
  const records = store.readZone(ORIGIN);
  const soa = records.find((rr): rr is RecordOf<'SOA'> => rr.type === 'SOA');
  if (soa === undefined) throw new Error('no SOA');
  const data = records.filter((rr) => !isChain(rr) && rr.type !== 'RRSIG');
  const wanted = buildNsec3Chain(ORIGIN, data, denialTtl(soa)).map(recordKey).sort();
  const stored = records.filter((rr) => rr.type === 'NSEC3' || rr.type === 'NSEC3PARAM');
  expect(stored.map(recordKey).sort()).toEqual(wanted);
  const dnskeys = store.readRRset(ORIGIN, ORIGIN, 'DNSKEY');
  for (const rr of stored) {
    const rrsig = records.find(
      (sig): sig is RecordOf<'RRSIG'> =>
        sig.type === 'RRSIG' && sig.name === rr.name && sig.data.typeCovered === rr.type,
    );
    expect(rrsig, `RRSIG over ${rr.name} ${rr.type}`).toBeDefined();
    if (rrsig !== undefined) {
      expect(verifyRRset([rr], rrsig, dnskeys, now).kind, `${rr.name} ${rr.type}`).toBe('verified');
    }
  }
}

/** A deterministic pseudo-random source (mulberry32), so that a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Every batch of a zone stream, in order. */
async function streamed(store: DiscoveryStore): Promise<(readonly ResourceRecord[])[]> {
  const batches: (readonly ResourceRecord[])[] = [];
  for await (const batch of store.streamZone(ORIGIN)) batches.push(batch);
  return batches;
}

/** `count` distinct MAP owners below ORIGIN, two labels deep. */
function names(count: number, offset = 0): string[] {
  return Array.from({ length: count }, (_, j) => {
    const i = j + offset;
    return `${i % 10}.${Math.floor(i / 10) % 10}.${Math.floor(i / 100)}.${ORIGIN}`;
  });
}

export function transferBattery(setup: Setup): void {
  describe('journal', () => {
    it('journals every write, apply, operation, delegation and resign alike, each entry the exact change', async () => {
      const { store, clock } = await setup();
      await store.addZone(zoneInit());
      const start = store.readZone(ORIGIN);
      expect(await store.journalSince(ORIGIN, 1)).toEqual([]);

      await store.apply(ORIGIN, [putMap(NUMBER, 1)]);
      const att = attest(PHONE, RECIPIENT, PROVER_SEED, clock.now());
      const published = await store.applyOperation(ORIGIN, {
        kind: 'publish-mapping',
        name: NUMBER,
        csi: PHONE,
        mapping: mappingBytes({ att, iat: clock.now(), recipient: RECIPIENT }),
        now: clock.now(),
        authorize: true,
      });
      expect(published).toMatchObject({ kind: 'applied', changed: true });
      await store.applyOperation(ORIGIN, {
        kind: 'add-maprefs',
        name: `5.${ORIGIN}`,
        targets: ['x.msp.example'],
      });
      await store.apply(ORIGIN, delegation(CHILD));
      await store.apply(ORIGIN, [
        { op: 'delete', name: CHILD, type: 'DS' },
        { op: 'delete', name: CHILD, type: 'NS' },
      ]);
      clock.advance(8 * DAY);
      expect(await store.resign()).toBeGreaterThan(0);
      await store.setNsec3(ORIGIN, true);
      // A write that changes nothing stored bumps no serial and journals nothing.
      expect((await store.setNsec3(ORIGIN, true)).serial).toBe(serialOf(store));

      const current = serialOf(store);
      const entries = await store.journalSince(ORIGIN, 1);
      if (entries === undefined) throw new Error('the journal does not reach serial 1');
      expect(entries).toHaveLength(current - 1);
      expectChained(entries, 1, current);
      // A secondary at serial 1 that applies every entry holds the zone as it is now.
      expect(replay(start, entries)).toEqual(recordSet(store.readZone(ORIGIN)));
      // The entry of the publish carries what it changed and nothing else: the new MAP record
      // (the one stored before stays as it was), the MAP RRset's and the SOA's RRSIGs.
      const publish = entries[1] as JournalEntry;
      const types = (records: readonly ResourceRecord[]): string[] =>
        records.map((rr) => (rr.type === 'RRSIG' ? `RRSIG ${rr.data.typeCovered}` : rr.type));
      expect(types(publish.deleted)).toEqual(['SOA', 'RRSIG SOA', 'RRSIG MAP']);
      expect(types(publish.added)).toEqual(['SOA', 'RRSIG SOA', 'MAP', 'RRSIG MAP']);
      // From a serial in the middle: the entries from there on.
      const tail = await store.journalSince(ORIGIN, 4);
      expect(tail).toEqual(entries.slice(3));
      await store.close();
    });

    it('answers [] for the current serial and nothing for a serial the zone never had', async () => {
      const { store } = await setup();
      await store.addZone(zoneInit());
      await store.apply(ORIGIN, [putMap(NUMBER)]);
      expect(await store.journalSince(ORIGIN, 2)).toEqual([]);
      expect(await store.journalSince(ORIGIN, 0)).toBeUndefined();
      expect(await store.journalSince(ORIGIN, 3)).toBeUndefined();
      expect(await store.journalSince(ORIGIN, 2 ** 32 - 1)).toBeUndefined();
      expect(await store.journalSince(ORIGIN, -1)).toBeUndefined();
      expect(await store.journalSince(ORIGIN, 1.5)).toBeUndefined();
      await expectStoreError(store.journalSince('example.com', 1), 'ERR_STORE_NO_ZONE');
      // A zone removed and created again starts a new journal.
      await store.removeZone(ORIGIN);
      await store.addZone(zoneInit());
      expect(await store.journalSince(ORIGIN, 1)).toEqual([]);
      await store.apply(ORIGIN, [putMap(NUMBER)]);
      expect(await store.journalSince(ORIGIN, 1)).toHaveLength(1);
      await store.close();
    });

    it('drops the oldest entries of a full journal, and keeps the rest chained', async () => {
      const { store } = await setup({ journal: { maxEntries: 8 } });
      await store.addZone(zoneInit());
      // Bursts of concurrent writes, as publishes sharing commits: a serial step (and a journal
      // entry) per commit, at least one per burst.
      const all = names(30);
      for (let burst = 0; burst < 10; burst++) {
        await Promise.all(
          all
            .slice(burst * 3, burst * 3 + 3)
            .map((name, i) => store.apply(ORIGIN, [putMap(name, burst * 3 + i + 1)])),
        );
      }
      const current = serialOf(store);
      expect(current).toBeGreaterThanOrEqual(11);
      const kept = await store.journalSince(ORIGIN, current - 8);
      if (kept === undefined) throw new Error('the last 8 entries are gone');
      expectChained(kept, current - 8, current);
      expect(await store.journalSince(ORIGIN, current - 9)).toBeUndefined();
      expect(await store.journalSince(ORIGIN, 1)).toBeUndefined();
      await store.close();
    });

    it('keeps no more octets than its bound, and nothing when one entry is larger', async () => {
      const { store } = await setup({ journal: { maxOctets: 4096 } });
      await store.addZone(zoneInit());
      await store.apply(ORIGIN, [putMap(NUMBER, 1)]);
      await store.apply(ORIGIN, [putMap(NUMBER, 2)]);
      const small = await store.journalSince(ORIGIN, 1);
      expect(small).toHaveLength(2);
      // One write of 40 RRsets: an entry of some 7 KiB, over the bound.
      await store.apply(
        ORIGIN,
        names(40).map((name) => putMap(name)),
      );
      expect(await store.journalSince(ORIGIN, 3)).toBeUndefined();
      expect(await store.journalSince(ORIGIN, 4)).toEqual([]);
      // The journal starts again with the next write.
      await store.apply(ORIGIN, [putMap(NUMBER, 3)]);
      expect(await store.journalSince(ORIGIN, 4)).toHaveLength(1);
      await store.close();
    });

    it('keeps no journal when its bound is 0 entries: every transfer is a whole zone', async () => {
      const { store } = await setup({ journal: { maxEntries: 0 } });
      await store.addZone(zoneInit());
      await store.apply(ORIGIN, [putMap(NUMBER, 1)]);
      await store.apply(ORIGIN, [putMap(NUMBER, 2)]);
      expect(await store.journalSince(ORIGIN, 1)).toBeUndefined();
      expect(await store.journalSince(ORIGIN, 2)).toBeUndefined();
      expect(await store.journalSince(ORIGIN, 3)).toEqual([]);
      await store.close();
    });

    it('keeps the journal and the chain across a reopen when it persists', async (context) => {
      const { store, reopen, clock } = await setup();
      if (reopen === undefined) {
        context.skip();
        return;
      }
      await store.addZone(zoneInit());
      await store.setNsec3(ORIGIN, true);
      await store.apply(ORIGIN, [putMap(NUMBER), ...delegation(CHILD)]);
      const start = (await store.journalSince(ORIGIN, 1)) ?? [];
      expect(start).toHaveLength(2);
      const again = await reopen();
      expect(await again.journalSince(ORIGIN, 1)).toEqual(start);
      expect(again.zoneInfo(ORIGIN)?.nsec3).toBe(true);
      await again.apply(ORIGIN, [{ op: 'delete', name: NUMBER, type: 'MAP' }]);
      const entries = (await again.journalSince(ORIGIN, 1)) ?? [];
      expectChained(entries, 1, 4);
      expectExactChain(again, clock.now());
      await again.close();
    });
  });

  describe('NSEC3 chain', () => {
    it('turns the chain on and off in one journaled write each', async () => {
      const { store, clock } = await setup();
      await store.addZone(zoneInit());
      await store.apply(ORIGIN, [putMap(NUMBER), ...delegation(CHILD)]);
      expect(store.zoneInfo(ORIGIN)?.nsec3).toBe(false);
      expect(store.readZone(ORIGIN).some(isChain)).toBe(false);
      const before = store.readZone(ORIGIN);

      expect(await store.setNsec3(ORIGIN, true)).toEqual({ serial: 3 });
      expect(store.zoneInfo(ORIGIN)?.nsec3).toBe(true);
      expectExactChain(store, clock.now());
      expect(await store.setNsec3(ORIGIN, true)).toEqual({ serial: 3 });
      const on = store.readZone(ORIGIN);
      expect(replay(before, (await store.journalSince(ORIGIN, 2)) ?? [])).toEqual(recordSet(on));

      expect(await store.setNsec3(`${ORIGIN.toUpperCase()}.`, false)).toEqual({ serial: 4 });
      expect(store.zoneInfo(ORIGIN)?.nsec3).toBe(false);
      const off = store.readZone(ORIGIN);
      expect(off.some(isChain)).toBe(false);
      expect(replay(on, (await store.journalSince(ORIGIN, 3)) ?? [])).toEqual(recordSet(off));
      expect(await store.setNsec3(ORIGIN, false)).toEqual({ serial: 4 });
      await expectStoreError(store.setNsec3('example.com', true), 'ERR_STORE_NO_ZONE');
      // A ZONEMD needs the chain: putting one turns it on, and it stays while the ZONEMD does.
      await keepZoneDigest(store, ORIGIN);
      expect(store.zoneInfo(ORIGIN)?.nsec3).toBe(true);
      expectExactChain(store, clock.now());
      await expectStoreError(store.setNsec3(ORIGIN, false), 'ERR_STORE_BAD_CHANGE');
      expect(serialOf(store)).toBe(5);
      await dropZoneDigest(store, ORIGIN);
      expect(store.zoneInfo(ORIGIN)?.nsec3).toBe(false);
      await store.close();
    });

    it('keeps the chain exact through random publishes, removals, delegations, glue, operations and re-signing', async () => {
      const { store, clock } = await setup();
      await store.addZone(zoneInit());
      await store.setNsec3(ORIGIN, true);
      const start = store.readZone(ORIGIN);
      const startSerial = serialOf(store);
      const next = random(14);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
      const digit = (): string => String(Math.floor(next() * 4));
      const owner = (): string =>
        pick([
          `${digit()}.${ORIGIN}`,
          `${digit()}.${digit()}.${ORIGIN}`,
          `${digit()}.${digit()}.${digit()}.${ORIGIN}`,
        ]);
      const cut = (): string => pick([`${digit()}.${ORIGIN}`, `${digit()}.${digit()}.${ORIGIN}`]);
      for (let step = 0; step < 45; step++) {
        const roll = next();
        if (roll < 0.3) {
          await store.apply(ORIGIN, [putMap(owner(), step + 1)]);
        } else if (roll < 0.45) {
          await store.apply(ORIGIN, [{ op: 'delete', name: owner(), type: 'MAP' }]);
        } else if (roll < 0.6) {
          const [ns, ds, glue] = delegation(cut()) as [RRsetChange, RRsetChange, RRsetChange];
          await store.apply(ORIGIN, next() < 0.5 ? [ns, ds, glue] : [ns]);
        } else if (roll < 0.72) {
          const name = cut();
          await store.apply(ORIGIN, [
            { op: 'delete', name, type: 'DS' },
            { op: 'delete', name, type: 'NS' },
            ...(next() < 0.5
              ? [{ op: 'delete' as const, name: `ns1.${name}`, type: 'A' as const }]
              : []),
          ]);
        } else if (roll < 0.8) {
          const name = `ns1.${cut()}`;
          await store.apply(ORIGIN, [
            { op: 'put', name, type: 'A', records: [record(name, 'A', '192.0.2.9', 3600)] },
          ]);
        } else if (roll < 0.9) {
          await store.applyOperation(ORIGIN, {
            kind: 'add-maprefs',
            name: owner(),
            targets: [`t${step}.msp.example`],
          });
        } else {
          clock.advance(Math.floor(next() * 9 * DAY));
          await store.resign();
        }
        expectExactChain(store, clock.now());
      }
      const entries = (await store.journalSince(ORIGIN, startSerial)) ?? [];
      expectChained(entries, startSerial, serialOf(store));
      expect(replay(start, entries)).toEqual(recordSet(store.readZone(ORIGIN)));
      await store.close();
    });

    it('hides the chain from answering and from readRRset, and refuses changes where it lives', async () => {
      const { store } = await setup();
      await store.addZone(zoneInit());
      await store.setNsec3(ORIGIN, true);
      // Only the apex and its chain: the apex has nothing below it that answering could see.
      const view = store.zoneView(ORIGIN);
      expect(view?.hasDescendants(ORIGIN)).toBe(false);
      await store.apply(ORIGIN, [putMap(NUMBER)]);
      const owners = store
        .readZone(ORIGIN)
        .filter((rr) => rr.type === 'NSEC3')
        .map((rr) => rr.name);
      // The apex, the MAP owner and the 9 empty non-terminals between them.
      expect(owners).toHaveLength(11);
      for (const name of owners) {
        expect(view?.node(name)).toBeUndefined();
        expect(store.readRRset(ORIGIN, name, 'NSEC3')).toEqual([]);
        expect(view?.hasDescendants(name)).toBe(false);
        const outcome = lookupZone(
          view ?? { origin: ORIGIN, node: () => undefined, hasDescendants: () => false },
          { name, type: 'NSEC3', class: 'IN' },
          { dnssecOk: true },
        );
        expect(outcome.kind).toBe('nxdomain');
      }
      const chainOwner = owners[0] as string;
      const serial = serialOf(store);
      await expectStoreError(
        store.apply(ORIGIN, [
          {
            op: 'put',
            name: chainOwner,
            type: 'TXT',
            records: [record(chainOwner, 'TXT', [Uint8Array.of(0x78)], 60)],
          },
        ]),
        'ERR_STORE_BAD_CHANGE',
      );
      await expectStoreError(
        store.apply(ORIGIN, [{ op: 'delete', name: chainOwner, type: 'NSEC3' }]),
        'ERR_STORE_BAD_CHANGE',
      );
      await expectStoreError(
        store.apply(ORIGIN, [{ op: 'delete', name: ORIGIN, type: 'NSEC3PARAM' }]),
        'ERR_STORE_BAD_CHANGE',
      );
      expect(serialOf(store)).toBe(serial);
      expectExactChain(store, T0);
      await store.close();
    });

    it('renews the signatures of the chain when they are due', async () => {
      const { store, clock } = await setup();
      await store.addZone(zoneInit());
      await store.apply(ORIGIN, [putMap(NUMBER)]);
      await store.setNsec3(ORIGIN, true);
      clock.advance(8 * DAY);
      // 4 apex RRsets, NSEC3PARAM, the MAP and 11 NSEC3.
      expect(await store.resign()).toBe(17);
      const soon = clock.now() + 7 * DAY;
      expect(
        store.readZone(ORIGIN).filter((rr) => rr.type === 'RRSIG' && rr.data.expiration < soon),
      ).toEqual([]);
      expectExactChain(store, clock.now());
      await store.close();
    });
  });

  describe('spread re-signing', () => {
    it(`renews at most ${RESIGN_MAX_RRSETS_PER_WRITE} RRsets per write, each its own journaled serial`, async () => {
      const { store, clock } = await setup();
      await store.addZone(zoneInit());
      const all = names(1500);
      await store.apply(
        ORIGIN,
        all.slice(0, 750).map((name) => putMap(name)),
      );
      await store.apply(
        ORIGIN,
        all.slice(750).map((name) => putMap(name)),
      );
      const serial = serialOf(store);
      clock.advance(8 * DAY);
      expect(await store.resign()).toBe(1504);
      const entries = (await store.journalSince(ORIGIN, serial)) ?? [];
      expect(entries.length).toBeGreaterThanOrEqual(2);
      for (const entry of entries) {
        const renewed = entry.added.filter(
          (rr) => rr.type === 'RRSIG' && rr.data.typeCovered !== 'SOA',
        );
        expect(renewed.length).toBeLessThanOrEqual(RESIGN_MAX_RRSETS_PER_WRITE);
      }
      expect(
        entries
          .flatMap((e) => e.added)
          .filter((rr) => rr.type === 'RRSIG' && rr.data.typeCovered === 'MAP'),
      ).toHaveLength(1500);
      await store.close();
    });

    it('spreads the expirations of the signatures made in one write over days', async () => {
      const { store, clock } = await setup();
      await store.addZone(zoneInit());
      const all = names(200);
      await store.apply(
        ORIGIN,
        all.map((name) => putMap(name)),
      );
      const expirations = all.map(
        (name) =>
          store.zoneView(ORIGIN)?.node(name)?.signatures.get('MAP')?.[0]?.data.expiration ?? 0,
      );
      expect(Math.max(...expirations)).toBeLessThanOrEqual(T0 + 14 * DAY);
      expect(Math.min(...expirations)).toBeGreaterThan(T0 + 10.5 * DAY);
      expect(Math.max(...expirations) - Math.min(...expirations)).toBeGreaterThan(2 * DAY);
      expect(new Set(expirations).size).toBeGreaterThan(190);
      // Half-way through the window, about half of them are due.
      const due = expirations.filter((e) => e < T0 + 12.25 * DAY).length;
      expect(due).toBeGreaterThan(40);
      expect(due).toBeLessThan(160);
      clock.advance(5.25 * DAY);
      // The apex RRsets have their own jitter: count only the MAPs.
      await store.resign(T0 + 12.25 * DAY);
      const renewed = all.filter(
        (name) =>
          (store.zoneView(ORIGIN)?.node(name)?.signatures.get('MAP')?.[0]?.data.inception ?? 0) >
          T0,
      );
      expect(renewed).toHaveLength(due);
      await store.close();
    });
  });

  describe('streamZone', () => {
    it('streams the zone as readZone lists it, in bounded batches', async () => {
      const { store } = await setup();
      await store.addZone(zoneInit());
      await store.apply(ORIGIN, [...names(600).map((name) => putMap(name)), ...delegation(CHILD)]);
      await store.setNsec3(ORIGIN, true);
      const batches = await streamed(store);
      expect(batches.length).toBeGreaterThan(2);
      for (const batch of batches) {
        expect(batch.length).toBeGreaterThan(0);
        expect(batch.length).toBeLessThan(STREAM_BATCH_RECORDS + 32);
      }
      expect(batches.flat()).toEqual(store.readZone(ORIGIN));
      // The apex comes first: its SOA is in the first batch.
      expect(batches[0]?.filter((rr) => rr.type === 'SOA')).toHaveLength(1);
      expect(() => store.streamZone('example.com')).toThrow(/holds no zone/);
      await store.close();
    });

    it('reads one snapshot while writes land during the stream', async () => {
      const { store } = await setup();
      await store.addZone(zoneInit());
      await store.apply(
        ORIGIN,
        names(600).map((name) => putMap(name)),
      );
      await store.setNsec3(ORIGIN, true);
      const before = store.readZone(ORIGIN);
      const iterator = store.streamZone(ORIGIN)[Symbol.asyncIterator]();
      const first = await iterator.next();
      const got = [...(first.value ?? [])];
      // Concurrent writers: new names, deletions, a delegation; each bumps the serial.
      await Promise.all([
        store.apply(
          ORIGIN,
          names(100, 600).map((name) => putMap(name)),
        ),
        store.apply(
          ORIGIN,
          names(100).map((name) => ({ op: 'delete' as const, name, type: 'MAP' as const })),
        ),
        store.apply(ORIGIN, delegation(CHILD)),
      ]);
      for (let step = await iterator.next(); step.done !== true; step = await iterator.next()) {
        got.push(...step.value);
      }
      expect(got).toEqual(before);
      expect(store.readZone(ORIGIN)).not.toEqual(before);
      await store.close();
    });

    it('stops a stream that is ended early, and fails one of a closed store', async () => {
      const { store } = await setup();
      await store.addZone(zoneInit());
      await store.apply(
        ORIGIN,
        names(600).map((name) => putMap(name)),
      );
      for await (const batch of store.streamZone(ORIGIN)) {
        expect(batch.length).toBeGreaterThan(0);
        break;
      }
      // Ending early released it: many more streams can run, one after another.
      for (let i = 0; i < 40; i++) {
        const iterator = store.streamZone(ORIGIN)[Symbol.asyncIterator]();
        await iterator.next();
        await iterator.return?.();
      }
      const iterator = store.streamZone(ORIGIN)[Symbol.asyncIterator]();
      await iterator.next();
      await store.close();
      await expectStoreError(iterator.next(), 'ERR_STORE_CLOSED');
    });
  });

  describe('expired mappings', () => {
    it('deletes expired mappings as a journaled write when re-signing, keeping the rest', async () => {
      const { store, clock } = await setup();
      await store.addZone(zoneInit());
      await store.setNsec3(ORIGIN, true);
      const other = `7.7.${ORIGIN}`;
      const odd = `6.6.${ORIGIN}`;
      const lasting = { key: 2, exp: T0 + 100 * DAY };
      await store.apply(ORIGIN, [
        putMappings([{ key: 1, exp: T0 + 1000 }, lasting]),
        putMappings([{ key: 3, exp: T0 + 50 * DAY, attExp: T0 + 500 }], other),
        // Not a mapping: served as stored, never judged expired.
        { op: 'put', name: odd, type: 'MAP', records: [mapRecord(odd, 1)] },
      ]);
      expect(await store.resign()).toBe(0);
      const serial = serialOf(store);
      clock.advance(1000);
      expect(await store.resign()).toBe(0);
      expect(serialOf(store)).toBe(serial + 1);
      expect(store.readRRset(ORIGIN, NUMBER, 'MAP')).toEqual(mapRecords([lasting]));
      expect(store.readRRset(ORIGIN, other, 'MAP')).toEqual([]);
      expect(store.zoneView(ORIGIN)?.node(other)).toBeUndefined();
      expect(store.readRRset(ORIGIN, odd, 'MAP')).toHaveLength(1);
      // One entry: the expired records go, the lasting one stays as it was (same TTL).
      const [entry] = (await store.journalSince(ORIGIN, serial)) ?? [];
      expect(entry?.deleted.filter((rr) => rr.type === 'MAP').map((rr) => rr.name)).toEqual([
        NUMBER,
        other,
      ]);
      expect(entry?.added.filter((rr) => rr.type === 'MAP')).toEqual([]);
      const rrsig = store.zoneView(ORIGIN)?.node(NUMBER)?.signatures.get('MAP')?.[0];
      expect(rrsig).toBeDefined();
      if (rrsig !== undefined) {
        const dnskeys = store.readRRset(ORIGIN, ORIGIN, 'DNSKEY');
        const verified = verifyRRset(mapRecords([lasting]), rrsig, dnskeys, clock.now());
        expect(verified.kind).toBe('verified');
      }
      expectExactChain(store, clock.now());
      // Nothing more has expired: no further write.
      expect(await store.resign()).toBe(0);
      expect(serialOf(store)).toBe(serial + 1);
      await store.close();
    });
  });
}
