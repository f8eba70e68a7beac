import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildNsec3Chain,
  buildQuery,
  createLogger,
  denialTtl,
  formatRecord,
  verifyZonemd,
  type RecordOf,
  type ResourceRecord,
} from '@mimi-discovery/common';
import {
  KEY_SET_RETRY_SECONDS,
  STREAM_MAX_OPEN,
  STREAM_MAX_SECONDS,
  backupLmdbStore,
  createAnswerer,
  openKeyDirectory,
  type KeyDirectory,
  keepZoneDigest,
  LMDB_MAX_READERS,
  openLmdbStore,
  type DiscoveryStore,
} from '../src/index.js';
import { PHONE, RECIPIENT, attest, mappingBytes, removalBytes } from './registration-fixture.js';
import {
  CHILD,
  delegation,
  expectStoreError,
  fakeClock,
  NUMBER,
  ORIGIN,
  PROVER_SEED,
  ZONE_SEED,
  putMap,
  storeBattery,
  zoneInit,
} from './store-battery.js';

const root = mkdtempSync(join(tmpdir(), 'mimi-lmdb-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshDir = (): string => join(root, `store-${++counter}`);

/** Expects the NSEC3 chain in `zone` to be the one `buildNsec3Chain` builds from its data. */
function expectExactChain(zone: readonly ResourceRecord[]): void {
  const soa = zone.find((rr): rr is RecordOf<'SOA'> => rr.type === 'SOA');
  if (soa === undefined) throw new Error('no SOA');
  const data = zone.filter((rr) => !['NSEC3', 'NSEC3PARAM', 'RRSIG'].includes(rr.type));
  const text = (rrs: readonly ResourceRecord[]): string[] =>
    rrs.map((rr) => formatRecord(rr).toLowerCase()).sort();
  expect(text(zone.filter((rr) => rr.type === 'NSEC3' || rr.type === 'NSEC3PARAM'))).toEqual(
    text(buildNsec3Chain(ORIGIN, data, denialTtl(soa))),
  );
}

storeBattery('LMDB store', async (options) => {
  const dataDir = freshDir();
  // The key directory lives apart from the data (design §9), as a server's `keys.dir` does.
  const keys = `${dataDir}-keys`;
  const store = await openLmdbStore({ dataDir, keys, ...options });
  return {
    store,
    reopen: async (): Promise<DiscoveryStore> => {
      await store.close();
      return openLmdbStore({ dataDir, keys, ...options });
    },
    // docs/operations.md §6: stop the server, copy data.mdb, restore it into an empty directory
    // beside the same key directory.
    restoreCopy: async (current): Promise<DiscoveryStore> => {
      await current.close();
      const restored = freshDir();
      mkdirSync(restored, { mode: 0o700 });
      copyFileSync(join(dataDir, 'data.mdb'), join(restored, 'data.mdb'));
      return openLmdbStore({ dataDir: restored, keys, ...options });
    },
  };
});

describe('LMDB store', () => {
  it('keeps its data directory private to its owner', async () => {
    const dataDir = freshDir();
    const store = await openLmdbStore({ dataDir });
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dataDir, 'data.mdb')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'lock.mdb')).mode & 0o777).toBe(0o600);
    await store.close();
  });

  it('brings keys up to date when opened, and writes nothing when opened with refreshKeys false', async () => {
    const dataDir = freshDir();
    const keys = `${dataDir}-keys`;
    const clock = fakeClock();
    const writer = await openLmdbStore({ dataDir, keys, now: clock.now });
    await writer.addZone(zoneInit());
    // A second key, published from now: the next refresh adds it to the DNSKEY RRset.
    await writer.keys.addZoneKey(ORIGIN, {
      created: clock.now(),
      publish: clock.now(),
      active: clock.now() + 86_400,
    });
    const serial = writer.zoneInfo(ORIGIN)?.serial;
    const generation = writer.generation();
    expect(writer.readRRset(ORIGIN, ORIGIN, 'DNSKEY')).toHaveLength(1);
    await writer.close();
    // A reader beside the writer (an answer worker) opens the directory without writing.
    const reader = await openLmdbStore({ dataDir, keys, now: clock.now, refreshKeys: false });
    expect(reader.readRRset(ORIGIN, ORIGIN, 'DNSKEY')).toHaveLength(1);
    expect(reader.zoneInfo(ORIGIN)?.serial).toBe(serial);
    expect(reader.generation()).toBe(generation);
    await reader.close();
    const reopened = await openLmdbStore({ dataDir, keys, now: clock.now });
    expect(reopened.readRRset(ORIGIN, ORIGIN, 'DNSKEY')).toHaveLength(2);
    await reopened.close();
  });

  it(`sizes its lock file for ${LMDB_MAX_READERS} readers, more than LMDB's default 126`, async () => {
    const dataDir = freshDir();
    const store = await openLmdbStore({ dataDir });
    // One 64-octet slot per reader after the lock file's header.
    expect(statSync(join(dataDir, 'lock.mdb')).size).toBeGreaterThanOrEqual(LMDB_MAX_READERS * 64);
    await store.close();
  });

  it('refuses to open a data directory with a different prover seed', async () => {
    const dataDir = freshDir();
    await (await openLmdbStore({ dataDir, proverSeed: PROVER_SEED })).close();
    await expectStoreError(
      openLmdbStore({ dataDir, proverSeed: new Uint8Array(32).fill(5) }),
      'ERR_STORE_PROVER_KEY',
    );
    const store = await openLmdbStore({ dataDir });
    expect(Buffer.from(store.proverKey().secretKey)).toEqual(Buffer.from(PROVER_SEED));
    await store.close();
  });

  it('re-signs a zone larger than one re-signing batch in full', async () => {
    const clock = fakeClock();
    const store = await openLmdbStore({ dataDir: freshDir(), now: clock.now });
    await store.addZone(zoneInit());
    const names = Array.from(
      { length: 600 },
      (_, i) => `${i % 10}.${Math.floor(i / 10) % 10}.${Math.floor(i / 100)}.${ORIGIN}`,
    );
    await store.apply(
      ORIGIN,
      names.map((n) => putMap(n)),
    );
    clock.advance(8 * 86400);
    // 600 MAPs and the four apex RRsets.
    expect(await store.resign()).toBe(604);
    const expiring = store
      .readZone(ORIGIN)
      .filter((rr) => rr.type === 'RRSIG' && rr.data.expiration < clock.now() + 7 * 86400);
    expect(expiring).toEqual([]);
    await store.close();
  });

  describe('zone streams', () => {
    /** A store whose zone takes several stream batches. */
    const populated = async (
      dataDir = freshDir(),
    ): Promise<{ store: DiscoveryStore; clock: ReturnType<typeof fakeClock> }> => {
      const clock = fakeClock();
      const store = await openLmdbStore({ dataDir, now: clock.now, proverSeed: PROVER_SEED });
      await store.addZone(zoneInit());
      await store.apply(
        ORIGIN,
        Array.from({ length: 600 }, (_, i) => putMap(`${i % 10}.${Math.floor(i / 10)}.${ORIGIN}`)),
      );
      return { store, clock };
    };

    it(`runs at most ${STREAM_MAX_OPEN} streams at once, each holding a read transaction`, async () => {
      const { store } = await populated();
      const running = Array.from({ length: STREAM_MAX_OPEN }, () =>
        store.streamZone(ORIGIN)[Symbol.asyncIterator](),
      );
      for (const iterator of running) expect((await iterator.next()).done).toBe(false);
      const extra = store.streamZone(ORIGIN)[Symbol.asyncIterator]();
      await expectStoreError(extra.next(), 'ERR_STORE_BUSY');
      // One that ends makes room for the next.
      await running[0]?.return?.();
      const next = store.streamZone(ORIGIN)[Symbol.asyncIterator]();
      expect((await next.next()).done).toBe(false);
      // Closing the store ends them all, without waiting for their readers.
      await store.close();
      await expectStoreError(next.next(), 'ERR_STORE_CLOSED');
      await expectStoreError(running[1]?.next() ?? Promise.resolve(), 'ERR_STORE_CLOSED');
    });

    it(`fails a stream that runs past ${STREAM_MAX_SECONDS} seconds, releasing its transaction`, async () => {
      const { store, clock } = await populated();
      const slow = store.streamZone(ORIGIN)[Symbol.asyncIterator]();
      expect((await slow.next()).done).toBe(false);
      clock.advance(STREAM_MAX_SECONDS + 1);
      await expectStoreError(slow.next(), 'ERR_STORE_BUSY');
      const all = Array.from({ length: STREAM_MAX_OPEN }, () =>
        store.streamZone(ORIGIN)[Symbol.asyncIterator](),
      );
      for (const iterator of all) expect((await iterator.next()).done).toBe(false);
      for (const iterator of all) await iterator.return?.();
      await store.close();
    });

    it('survives a restart in the middle of a stream: the reopened store has the zone, its journal and its chain', async () => {
      const dataDir = freshDir();
      const { store, clock } = await populated(dataDir);
      await store.setNsec3(ORIGIN, true);
      const iterator = store.streamZone(ORIGIN)[Symbol.asyncIterator]();
      await iterator.next();
      const writing = store.apply(ORIGIN, delegation(CHILD));
      await store.close();
      // The write queued before close completed and is durable.
      expect((await writing).serial).toBe(4);
      await expectStoreError(iterator.next(), 'ERR_STORE_CLOSED');
      const again = await openLmdbStore({ dataDir, now: clock.now, proverSeed: PROVER_SEED });
      const entries = (await again.journalSince(ORIGIN, 1)) ?? [];
      expect(entries.map((e) => [e.from, e.to])).toEqual([
        [1, 2],
        [2, 3],
        [3, 4],
      ]);
      const batches: unknown[] = [];
      for await (const batch of again.streamZone(ORIGIN)) batches.push(...batch);
      expect(batches).toEqual(again.readZone(ORIGIN));
      expect(again.zoneInfo(ORIGIN)?.nsec3).toBe(true);
      expectExactChain(again.readZone(ORIGIN));
      await again.close();
    });
  });

  describe('layout versions', () => {
    /** Rewrites the `meta` format of a closed data directory, optionally dropping a table. */
    const rewrite = async (dataDir: string, format: number, drop?: string): Promise<void> => {
      const env = open({ path: dataDir, noSubdir: false, maxDbs: 8 });
      if (drop !== undefined) {
        await env
          .openDB<Buffer, Buffer>({ name: drop, encoding: 'binary', keyEncoding: 'binary' })
          .drop();
      }
      await env
        .openDB<Buffer, string>({ name: 'meta', encoding: 'binary' })
        .put('format', Buffer.of(format));
      await env.close();
    };
    const formatOf = async (dataDir: string): Promise<number | undefined> => {
      const env = open({ path: dataDir, noSubdir: false, maxDbs: 8, readOnly: true });
      const value = env.openDB<Buffer, string>({ name: 'meta', encoding: 'binary' }).get('format');
      await env.close();
      return value?.[0];
    };

    it('upgrades a directory of layout 1 (before anti-replay records) in place, keeping its zones', async () => {
      const clock = fakeClock();
      const dataDir = freshDir();
      const options = { dataDir, now: clock.now, proverSeed: PROVER_SEED };
      const first = await openLmdbStore(options);
      await first.addZone(zoneInit());
      const att = attest(PHONE, RECIPIENT, PROVER_SEED, clock.now());
      const mapping = mappingBytes({ att, iat: clock.now() });
      const publish = {
        kind: 'publish-mapping' as const,
        name: NUMBER,
        csi: PHONE,
        mapping,
        now: clock.now(),
        authorize: true,
      };
      expect((await first.applyOperation(ORIGIN, publish)).kind).toBe('applied');
      const records = first.readZone(ORIGIN);
      await first.close();
      expect(await formatOf(dataDir)).toBe(5);
      await rewrite(dataDir, 1, 'replay');

      const upgraded = await openLmdbStore(options);
      expect(await formatOf(dataDir)).toBe(5);
      expect(upgraded.readZone(ORIGIN)).toEqual(records);
      expect(upgraded.replayRecords()).toEqual([]);
      const removal = {
        kind: 'remove-mapping' as const,
        name: NUMBER,
        removal: removalBytes(PHONE, RECIPIENT, 1, clock.now()),
        now: clock.now(),
      };
      expect((await upgraded.applyOperation(ORIGIN, removal)).kind).toBe('applied');
      expect(upgraded.replayRecords().map((r) => r.kind)).toEqual(['removal']);
      expect(await upgraded.applyOperation(ORIGIN, publish)).toMatchObject({
        kind: 'refused',
        reason: 'stale-seq',
      });
      await upgraded.close();
    });

    it('upgrades a directory of layout 2 in place, moving the NSEC3 chain out of the answering view', async () => {
      const clock = fakeClock();
      const dataDir = freshDir();
      const options = { dataDir, now: clock.now, proverSeed: PROVER_SEED };
      const first = await openLmdbStore(options);
      await first.addZone(zoneInit());
      await first.apply(ORIGIN, [putMap(NUMBER)]);
      await keepZoneDigest(first, ORIGIN);
      const records = first.readZone(ORIGIN);
      const owners = records.filter((rr) => rr.type === 'NSEC3').map((rr) => rr.name);
      expect(owners.length).toBeGreaterThan(0);
      await first.close();
      // Layout 2 kept the chain in `nodes` and had neither `nsec3` nor `journal`.
      const env = open({ path: dataDir, noSubdir: false, maxDbs: 8 });
      const binary = { encoding: 'binary', keyEncoding: 'binary' } as const;
      const nodes = env.openDB<Buffer, Buffer>({ name: 'nodes', ...binary });
      const chain = env.openDB<Buffer, Buffer>({ name: 'nsec3', ...binary });
      for (const { key, value } of chain.getRange())
        await nodes.put(Buffer.from(key), Buffer.from(value));
      await chain.drop();
      await env.openDB<Buffer, Buffer>({ name: 'journal', ...binary }).drop();
      await env
        .openDB<Buffer, string>({ name: 'meta', encoding: 'binary' })
        .put('format', Buffer.of(2));
      await env.close();

      const upgraded = await openLmdbStore(options);
      expect(await formatOf(dataDir)).toBe(5);
      expect(upgraded.readZone(ORIGIN)).toEqual(records);
      const view = upgraded.zoneView(ORIGIN);
      for (const owner of owners) expect(view?.node(owner)).toBeUndefined();
      await upgraded.apply(ORIGIN, delegation(CHILD));
      const zone = upgraded.readZone(ORIGIN);
      expect(verifyZonemd(ORIGIN, zone).kind).toBe('verified');
      expectExactChain(zone);
      await upgraded.close();
    });

    it('upgrades a directory of layout 2 in place, moving the NSEC3 chain out of the answering view', async () => {
      const clock = fakeClock();
      const dataDir = freshDir();
      const options = { dataDir, now: clock.now, proverSeed: PROVER_SEED };
      const first = await openLmdbStore(options);
      await first.addZone(zoneInit());
      await first.apply(ORIGIN, [putMap(NUMBER)]);
      await keepZoneDigest(first, ORIGIN);
      const records = first.readZone(ORIGIN);
      const owners = records.filter((rr) => rr.type === 'NSEC3').map((rr) => rr.name);
      expect(owners.length).toBeGreaterThan(0);
      await first.close();
      // Layout 2 kept the chain in `nodes` and had neither `nsec3` nor `journal`.
      const env = open({ path: dataDir, noSubdir: false, maxDbs: 8 });
      const binary = { encoding: 'binary', keyEncoding: 'binary' } as const;
      const nodes = env.openDB<Buffer, Buffer>({ name: 'nodes', ...binary });
      const chain = env.openDB<Buffer, Buffer>({ name: 'nsec3', ...binary });
      for (const { key, value } of chain.getRange())
        await nodes.put(Buffer.from(key), Buffer.from(value));
      await chain.drop();
      await env.openDB<Buffer, Buffer>({ name: 'journal', ...binary }).drop();
      await env
        .openDB<Buffer, string>({ name: 'meta', encoding: 'binary' })
        .put('format', Buffer.of(2));
      await env.close();

      const upgraded = await openLmdbStore(options);
      expect(await formatOf(dataDir)).toBe(5);
      expect(upgraded.readZone(ORIGIN)).toEqual(records);
      const view = upgraded.zoneView(ORIGIN);
      for (const owner of owners) expect(view?.node(owner)).toBeUndefined();
      await upgraded.apply(ORIGIN, delegation(CHILD));
      const zone = upgraded.readZone(ORIGIN);
      expect(verifyZonemd(ORIGIN, zone).kind).toBe('verified');
      const soa = zone.find((rr): rr is RecordOf<'SOA'> => rr.type === 'SOA');
      const data = zone.filter((rr) => !['NSEC3', 'NSEC3PARAM', 'RRSIG'].includes(rr.type));
      const chainOf = (rrs: readonly unknown[]): string =>
        JSON.stringify(rrs, (_k, v: unknown) =>
          v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
        );
      expect(
        chainOf(
          zone
            .filter((rr) => rr.type === 'NSEC3' || rr.type === 'NSEC3PARAM')
            .sort((a, b) => a.name.localeCompare(b.name)),
        ),
      ).toBe(
        chainOf(
          buildNsec3Chain(ORIGIN, data, soa === undefined ? 0 : denialTtl(soa)).sort((a, b) =>
            a.name.localeCompare(b.name),
          ),
        ),
      );
      await upgraded.close();
    });

    it('refuses a directory written in a newer layout, changing nothing', async () => {
      const dataDir = freshDir();
      await (await openLmdbStore({ dataDir })).close();
      await rewrite(dataDir, 6);
      await expectStoreError(openLmdbStore({ dataDir }), 'ERR_STORE_NEWER_FORMAT');
      expect(await formatOf(dataDir)).toBe(6);
    });

    it('moves the seeds of a layout-3 directory into the key directory once, then erases them from the data', async () => {
      const clock = fakeClock();
      const dataDir = freshDir();
      const first = await openLmdbStore({ dataDir, now: clock.now, proverSeed: PROVER_SEED });
      await first.addZone(zoneInit(ORIGIN, { keySeed: ZONE_SEED }));
      await first.apply(ORIGIN, [putMap(NUMBER)]);
      const records = first.readZone(ORIGIN);
      const info = first.zoneInfo(ORIGIN);
      await first.close();
      // Layout 3 kept the zone key's seed in `zones` and the prover key's in `meta`, and had no
      // key directory.
      rmSync(join(dataDir, 'keys'), { recursive: true });
      const env = open({ path: dataDir, noSubdir: false, maxDbs: 8 });
      await env
        .openDB<Buffer, string>({ name: 'zones', encoding: 'binary' })
        .put(ORIGIN, Buffer.from(ZONE_SEED));
      const meta = env.openDB<Buffer, string>({ name: 'meta', encoding: 'binary' });
      await meta.put('prover', Buffer.from(PROVER_SEED));
      await meta.put('format', Buffer.of(3));
      await env.close();

      const keys = `${dataDir}-moved-keys`;
      const lines: string[] = [];
      const log = createLogger('authoritative', { write: (line) => lines.push(line) });
      const upgraded = await openLmdbStore({ dataDir, keys, now: clock.now, log });
      expect(await formatOf(dataDir)).toBe(5);
      expect(lines.filter((l) => l.includes('keys-moved-to-key-directory'))).toHaveLength(1);
      expect(upgraded.readZone(ORIGIN)).toEqual(records);
      expect(upgraded.zoneInfo(ORIGIN)).toEqual(info);
      expect(Buffer.from(upgraded.proverKey().secretKey)).toEqual(Buffer.from(PROVER_SEED));
      expect(upgraded.keys.zoneKeys(ORIGIN).map((k) => k.keyTag)).toEqual([info?.keyTag]);
      expect(readdirSync(keys)).toContain('prover.key');
      // It still signs with the moved key, and the data holds neither seed any more.
      await upgraded.apply(ORIGIN, delegation(CHILD));
      await upgraded.close();
      // LMDB does not wipe the pages it frees: a compacting backup leaves them out.
      const out = `${dataDir}-backup`;
      await backupLmdbStore(dataDir, out);
      const bytes = readFileSync(join(out, 'data.mdb'));
      expect(bytes.includes(Buffer.from(ZONE_SEED))).toBe(false);
      expect(bytes.includes(Buffer.from(PROVER_SEED))).toBe(false);
      const again = await openLmdbStore({ dataDir, keys, now: clock.now, log });
      expect(lines.filter((l) => l.includes('keys-moved-to-key-directory'))).toHaveLength(1);
      expect(again.zoneInfo(ORIGIN)?.keyTag).toBe(info?.keyTag);
      await again.close();
    });
  });
});

describe('a zone whose key is missing from the key directory', () => {
  it(`is not looked for again for ${KEY_SET_RETRY_SECONDS} s while answering, however many questions come`, async () => {
    const clock = fakeClock();
    const dataDir = freshDir();
    const keysDir = `${dataDir}-keys`;
    const first = await openLmdbStore({ dataDir, keys: keysDir, now: clock.now });
    await first.addZone(zoneInit());
    await first.apply(ORIGIN, [putMap(NUMBER)]);
    await first.close();
    const directory = openKeyDirectory(keysDir);
    await directory.removeZone(ORIGIN);
    let reloads = 0;
    const counted: KeyDirectory = {
      dir: directory.dir,
      proverKey: () => directory.proverKey(),
      zoneKeys: (origin) => directory.zoneKeys(origin),
      privateKey: (key) => directory.privateKey(key),
      addZoneKey: (...args) => directory.addZoneKey(...args),
      setTiming: (...args) => directory.setTiming(...args),
      deleteZoneKey: (...args) => directory.deleteZoneKey(...args),
      removeZone: (origin) => directory.removeZone(origin),
      reload: () => {
        reloads++;
        return directory.reload();
      },
    };
    const store = await openLmdbStore({
      dataDir,
      keys: counted,
      now: clock.now,
      refreshKeys: false,
    });
    const answerer = createAnswerer(store, { now: clock.now });
    const before = reloads;
    for (let i = 0; i < 200; i++) {
      const response = answerer(buildQuery(`${i}.${NUMBER}`, 'MAP', { id: i, dnssecOk: true }));
      expect(response.rcode).toBe('NOERROR');
      expect(store.zoneSigners(ORIGIN)).toEqual([]);
    }
    expect(reloads - before).toBe(1);
    clock.advance(KEY_SET_RETRY_SECONDS);
    expect(store.zoneSigners(ORIGIN)).toEqual([]);
    expect(reloads - before).toBe(2);
    // A write tries at once, and says why it cannot sign.
    await expectStoreError(store.apply(ORIGIN, [putMap(NUMBER, 2)]), 'ERR_STORE_KEY_MISSING');
    expect(reloads - before).toBe(3);
    await store.close();
  });
});
