import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLmdbStore } from '../src/index.js';
import {
  NUMBER,
  ORIGIN,
  PROVER_SEED,
  expectStoreError,
  mapRecord,
  putMap,
  zoneInit,
} from './store-battery.js';

// The LMDB store with its writes on a writer thread (`writer: 'thread'`): the same contract as
// the inline store, with the reads on this thread seeing each write once it is acknowledged.

const root = mkdtempSync(join(tmpdir(), 'mimi-writer-thread-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const fresh = (): string => join(root, `store-${counter++}`);

describe('an LMDB store with a writer thread', () => {
  it('reads each write as soon as it is acknowledged, with the same errors as inline', async () => {
    const dataDir = fresh();
    const store = await openLmdbStore({ dataDir, proverSeed: PROVER_SEED, writer: 'thread' });
    const info = await store.addZone(zoneInit());
    expect(info.serial).toBe(1);
    expect(store.findZone(NUMBER)).toBe(ORIGIN);
    const before = store.generation();
    const { serial } = await store.apply(ORIGIN, [putMap(NUMBER, 5)]);
    expect(serial).toBe(2);
    expect(store.readRRset(ORIGIN, NUMBER, 'MAP')).toEqual([mapRecord(NUMBER, 5)]);
    expect(store.generation()).not.toBe(before);
    expect([...(store.changesSince(before).names as string[])].sort()).toEqual(
      [NUMBER, ORIGIN].sort(),
    );
    await expectStoreError(
      store.apply('example.com', [putMap('a.example.com')]),
      'ERR_STORE_NO_ZONE',
    );
    await expectStoreError(store.apply(ORIGIN, [putMap('example.com')]), 'ERR_STORE_OUT_OF_ZONE');
    await expectStoreError(store.addZone(zoneInit()), 'ERR_STORE_ZONE_EXISTS');
    expect(await store.resign()).toBe(0);

    // Concurrent writes share commits on the writer thread; each is durable when it resolves.
    const names = Array.from({ length: 300 }, (_, i) => `${i % 10}.${i}.${ORIGIN}`);
    await Promise.all(names.map((name) => store.apply(ORIGIN, [putMap(name, 7)])));
    await store.close();
    await expectStoreError(store.apply(ORIGIN, [putMap(NUMBER)]), 'ERR_STORE_CLOSED');

    const reopened = await openLmdbStore({ dataDir });
    expect(reopened.zoneInfo(ORIGIN)?.serial).toBe(2 + names.length);
    for (const name of names) expect(reopened.readRRset(ORIGIN, name, 'MAP')).toHaveLength(1);
    await reopened.close();
  });

  it('refuses a clock of its own, and reports a store it cannot open', async () => {
    await expect(
      openLmdbStore({ dataDir: fresh(), writer: 'thread', now: () => 0 }),
    ).rejects.toThrow(TypeError);
    const dataDir = fresh();
    const first = await openLmdbStore({ dataDir, proverSeed: PROVER_SEED });
    await first.close();
    await expectStoreError(
      openLmdbStore({ dataDir, proverSeed: new Uint8Array(32).fill(9), writer: 'thread' }),
      'ERR_STORE_PROVER_KEY',
    );
  });
});
