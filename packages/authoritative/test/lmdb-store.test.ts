import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLmdbStore, type DiscoveryStore } from '../src/index.js';
import {
  expectStoreError,
  fakeClock,
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
});
