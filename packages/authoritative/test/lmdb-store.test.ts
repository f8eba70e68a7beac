import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { afterAll, describe, expect, it } from 'vitest';
import { openLmdbStore, type DiscoveryStore } from '../src/index.js';
import { PHONE, RECIPIENT, attest, mappingBytes, removalBytes } from './registration-fixture.js';
import {
  expectStoreError,
  fakeClock,
  NUMBER,
  ORIGIN,
  PROVER_SEED,
  putMap,
  storeBattery,
  zoneInit,
} from './store-battery.js';

const root = mkdtempSync(join(tmpdir(), 'mimi-lmdb-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshDir = (): string => join(root, `store-${++counter}`);

storeBattery('LMDB store', async (options) => {
  const dataDir = freshDir();
  const store = await openLmdbStore({ dataDir, ...options });
  return {
    store,
    reopen: async (): Promise<DiscoveryStore> => {
      await store.close();
      return openLmdbStore({ dataDir, ...options });
    },
    // docs/operations.md §6: stop the server, copy data.mdb, restore it into an empty directory.
    restoreCopy: async (current): Promise<DiscoveryStore> => {
      await current.close();
      const restored = freshDir();
      mkdirSync(restored, { mode: 0o700 });
      copyFileSync(join(dataDir, 'data.mdb'), join(restored, 'data.mdb'));
      return openLmdbStore({ dataDir: restored, ...options });
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
      expect(await formatOf(dataDir)).toBe(3);
      await rewrite(dataDir, 1, 'replay');

      const upgraded = await openLmdbStore(options);
      expect(await formatOf(dataDir)).toBe(3);
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

    it('refuses a directory written in a newer layout, changing nothing', async () => {
      const dataDir = freshDir();
      await (await openLmdbStore({ dataDir })).close();
      await rewrite(dataDir, 4);
      await expectStoreError(openLmdbStore({ dataDir }), 'ERR_STORE_NEWER_FORMAT');
      expect(await formatOf(dataDir)).toBe(4);
    });
  });
});
