import { mkdtempSync, rmSync } from 'node:fs';
import { keyPairFromSeed } from '@mimi-discovery/common';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLmdbStore, type DiscoveryStore, type StoreOperation } from '../src/index.js';
import { PHONE, attest, mappingBytes, removalBytes, seed } from './registration-fixture.js';
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

    // Concurrent writes share commits on the writer thread, and each commit steps the serial
    // once; each is durable when it resolves.
    const names = Array.from({ length: 300 }, (_, i) => `${i % 10}.${i}.${ORIGIN}`);
    const results = await Promise.all(names.map((name) => store.apply(ORIGIN, [putMap(name, 7)])));
    const last = Math.max(...results.map((r) => r.serial));
    expect(store.zoneInfo(ORIGIN)?.serial).toBe(last);
    expect(last).toBeGreaterThan(2);
    expect(last).toBeLessThan(2 + names.length);
    await store.close();
    await expectStoreError(store.apply(ORIGIN, [putMap(NUMBER)]), 'ERR_STORE_CLOSED');

    const reopened = await openLmdbStore({ dataDir });
    expect(reopened.zoneInfo(ORIGIN)?.serial).toBe(last);
    for (const name of names) expect(reopened.readRRset(ORIGIN, name, 'MAP')).toHaveLength(1);
    await reopened.close();
  });

  it('turns the NSEC3 chain on through the writer, and journals and streams what it wrote', async () => {
    const store = await openLmdbStore({
      dataDir: fresh(),
      proverSeed: PROVER_SEED,
      writer: 'thread',
    });
    await store.addZone(zoneInit());
    await store.apply(ORIGIN, [putMap(NUMBER, 1)]);
    expect(await store.setNsec3(ORIGIN, true)).toEqual({ serial: 3 });
    expect(store.zoneInfo(ORIGIN)?.nsec3).toBe(true);
    await store.apply(ORIGIN, [putMap(`5.${ORIGIN}`, 2)]);
    const entries = (await store.journalSince(ORIGIN, 1)) ?? [];
    expect(entries.map((e) => [e.from, e.to])).toEqual([
      [1, 2],
      [2, 3],
      [3, 4],
    ]);
    // The entry of setNsec3 adds the chain: NSEC3PARAM and an NSEC3 per covered name.
    expect(entries[1]?.added.filter((rr) => rr.type === 'NSEC3')).toHaveLength(11);
    const streamed = [];
    for await (const batch of store.streamZone(ORIGIN)) streamed.push(...batch);
    expect(streamed).toEqual(store.readZone(ORIGIN));
    expect(streamed.filter((rr) => rr.type === 'NSEC3')).toHaveLength(12);
    await expectStoreError(store.setNsec3('example.com', true), 'ERR_STORE_NO_ZONE');
    await store.close();
  });

  it('keeps a stream on its snapshot while the writer commits and this thread renews its reads', async () => {
    const store = await openLmdbStore({
      dataDir: fresh(),
      proverSeed: PROVER_SEED,
      writer: 'thread',
    });
    await store.addZone(zoneInit());
    const names = Array.from(
      { length: 800 },
      (_, i) => `${i % 10}.${Math.floor(i / 10)}.${ORIGIN}`,
    );
    await store.apply(
      ORIGIN,
      names.map((name) => putMap(name, 1)),
    );
    const before = store.readZone(ORIGIN);
    const iterator = store.streamZone(ORIGIN)[Symbol.asyncIterator]();
    const got = [...((await iterator.next()).value ?? [])];
    // Each acknowledged write renews this thread's read snapshot (`renewReads`).
    for (let i = 0; i < 5; i++) {
      await store.apply(
        ORIGIN,
        names.slice(i * 100, i * 100 + 100).map((name) => putMap(name, i + 2)),
      );
      expect(store.readRRset(ORIGIN, names[i * 100] as string, 'MAP')).toEqual([
        mapRecord(names[i * 100] as string, i + 2),
      ]);
    }
    for (let step = await iterator.next(); step.done !== true; step = await iterator.next()) {
      got.push(...step.value);
    }
    expect(got).toEqual(before);
    await store.close();
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

  it('shows each acknowledged write to the next read, even while this thread reads all the time', async () => {
    const store = await openLmdbStore({
      dataDir: fresh(),
      proverSeed: PROVER_SEED,
      writer: 'thread',
    });
    await store.addZone(zoneInit());
    // Reads in every event turn keep this thread's read snapshot in use (lmdb-js renews it only
    // at a later turn), so a write acknowledged in between must renew it itself.
    let reading = true;
    const readAll = (): void => {
      store.readRRset(ORIGIN, NUMBER, 'MAP');
      if (reading) setImmediate(readAll);
    };
    readAll();
    const stale: number[] = [];
    try {
      for (let i = 1; i <= 60; i++) {
        const generation = store.generation();
        await store.apply(ORIGIN, [putMap(NUMBER, i)]);
        const [seen] = store.readRRset(ORIGIN, NUMBER, 'MAP');
        const byte = seen?.type === 'MAP' ? seen.data[3] : undefined;
        if (byte !== i || store.generation() === generation) stale.push(i);
      }
    } finally {
      reading = false;
    }
    expect(stale).toEqual([]);
    await store.close();
  });

  it('decides operations on the writer thread: concurrent publishes for one CSI all land, a removal is kept', async () => {
    const store: DiscoveryStore = await openLmdbStore({
      dataDir: fresh(),
      proverSeed: PROVER_SEED,
      writer: 'thread',
    });
    await store.addZone(zoneInit());
    const now = Math.floor(Date.now() / 1000);
    const keys = Array.from({ length: 12 }, (_, i) => keyPairFromSeed(seed(0x70 + i)));
    const mappings = keys.map((recipient) =>
      mappingBytes({ att: attest(PHONE, recipient, PROVER_SEED, now), recipient, iat: now }),
    );
    const outcomes = await Promise.all(
      mappings.map((mapping) =>
        store.applyOperation(ORIGIN, {
          kind: 'publish-mapping',
          name: NUMBER,
          csi: PHONE,
          mapping,
          now,
          authorize: true,
        }),
      ),
    );
    expect(outcomes.map((o) => o.kind)).toEqual(mappings.map(() => 'applied'));
    const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
    expect(
      store
        .readRRset(ORIGIN, NUMBER, 'MAP')
        .map((r) => hex(r.data as Uint8Array))
        .sort(),
    ).toEqual(mappings.map(hex).sort());
    const [first] = keys;
    if (first === undefined) throw new Error('no key');
    const removal: StoreOperation = {
      kind: 'remove-mapping',
      name: NUMBER,
      removal: removalBytes(PHONE, first, 1, now),
      now,
    };
    expect((await store.applyOperation(ORIGIN, removal)).kind).toBe('applied');
    expect(store.readRRset(ORIGIN, NUMBER, 'MAP')).toHaveLength(keys.length - 1);
    expect(store.replayRecords().map((r) => r.kind)).toEqual(['removal']);
    expect(
      await store.applyOperation(ORIGIN, {
        kind: 'publish-mapping',
        name: NUMBER,
        csi: PHONE,
        mapping: mappings[0] ?? new Uint8Array(),
        now,
        authorize: true,
      }),
    ).toMatchObject({ kind: 'refused', reason: 'stale-seq' });
    await store.close();
  });
});
