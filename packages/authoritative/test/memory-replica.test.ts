import { describe, expect, it } from 'vitest';
import { createMemoryReplica, type MemoryCommit } from '../src/store/memory-store.js';
import type { StoreOperation, ZoneKeySet } from '../src/index.js';
import { PHONE, RECIPIENT, attest, mappingBytes, removalBytes } from './registration-fixture.js';
import { NUMBER, ORIGIN, PROVER_SEED, fakeClock, putMap, zoneInit } from './store-battery.js';

// The hooks the PostgreSQL store's replica uses (`createMemoryReplica`): each write reported
// with what it replaced, so that it can be put back, and data loaded as it is stored elsewhere.

const zoneText = (records: unknown): string =>
  JSON.stringify(records, (_k, v: unknown) =>
    v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
  );

async function replica() {
  const clock = fakeClock();
  const events: MemoryCommit[] = [];
  const store = createMemoryReplica({
    now: clock.now,
    proverSeed: PROVER_SEED,
    onCommit: (change) => events.push(change),
  });
  await store.addZone(zoneInit());
  return { store, events, clock };
}

describe('memory replica', () => {
  it('reports a new zone with its apex and no key material, the key in its key directory', async () => {
    const { store, events } = await replica();
    expect(events).toHaveLength(1);
    const added = events[0];
    expect(added?.kind).toBe('zone-added');
    if (added?.kind !== 'zone-added') return;
    expect(Object.keys(added)).not.toContain('keySeed');
    expect([...added.writes.keys()]).toEqual([ORIGIN]);
    expect(store.keys.zoneKeys(ORIGIN).map((k) => k.keyTag)).toEqual([
      store.zoneKey(ORIGIN)?.keyTag,
    ]);
  });

  it('reports each write with the nodes it replaced, and putting them back restores the zone', async () => {
    const { store, events } = await replica();
    const before = zoneText(store.readZone(ORIGIN));
    await store.apply(ORIGIN, [putMap(NUMBER)]);
    const write = events.at(-1);
    expect(write?.kind).toBe('write');
    if (write?.kind !== 'write') return;
    expect([...write.writes.keys()].sort()).toEqual([NUMBER, ORIGIN].sort());
    expect(write.before.get(NUMBER)).toBeUndefined();
    expect(write.before.get(ORIGIN)).toBeDefined();
    expect(write.changed).toEqual(expect.arrayContaining([NUMBER, ORIGIN]));
    const generation = store.generation();
    store.loadNodes(ORIGIN, write.before);
    expect(zoneText(store.readZone(ORIGIN))).toBe(before);
    expect(store.zoneInfo(ORIGIN)?.serial).toBe(1);
    // Loaded data is a change readers must see, of the names loaded.
    expect(store.generation()).toBeGreaterThan(generation);
    expect([...(store.changesSince(generation).names as string[])].sort()).toEqual(
      [NUMBER, ORIGIN].sort(),
    );
  });

  it('reports the anti-replay records of an operation with the ones they replaced', async () => {
    const { store, events, clock } = await replica();
    const att = attest(PHONE, RECIPIENT, PROVER_SEED, clock.now());
    await store.applyOperation(ORIGIN, {
      kind: 'publish-mapping',
      name: NUMBER,
      csi: PHONE,
      mapping: mappingBytes({ att, iat: clock.now() }),
      now: clock.now(),
      authorize: true,
    });
    const removal = (seq: number): StoreOperation => ({
      kind: 'remove-mapping',
      name: NUMBER,
      removal: removalBytes(PHONE, RECIPIENT, seq, clock.now()),
      now: clock.now(),
    });
    await store.applyOperation(ORIGIN, removal(1));
    const first = events.at(-1);
    if (first?.kind !== 'write') throw new Error('no write');
    expect(first.replay.map((r) => r.kind)).toEqual(['removal']);
    expect(first.replayBefore).toEqual([undefined]);
    // Undone: the record goes; a removal refused changes nothing and reports nothing.
    store.dropReplay(first.replay);
    expect(store.replayRecords()).toEqual([]);
    store.loadReplay(first.replay);
    const count = events.length;
    expect((await store.applyOperation(ORIGIN, removal(1))).kind).toBe('refused');
    expect(events).toHaveLength(count);
    // Past its time, a record is forgotten.
    store.pruneReplay(first.replay[0]?.until ?? 0);
    expect(store.replayRecords()).toHaveLength(1);
    store.pruneReplay((first.replay[0]?.until ?? 0) + 1);
    expect(store.replayRecords()).toEqual([]);
  });

  it('loads a zone as it is stored elsewhere, and drops it', async () => {
    const { store, events } = await replica();
    await store.apply(ORIGIN, [putMap(NUMBER, 4)]);
    const records = zoneText(store.readZone(ORIGIN));
    const nodes = new Map([...events].flatMap((e) => (e.kind === 'write' ? [...e.writes] : [])));
    const added = events[0];
    if (added?.kind !== 'zone-added') throw new Error('no zone');
    const copy = createMemoryReplica({ keys: store.keys, onCommit: () => undefined });
    copy.loadZone(
      ORIGIN,
      store.keySetOf(ORIGIN) as ZoneKeySet,
      new Map([...added.writes, ...nodes]),
    );
    expect(zoneText(copy.readZone(ORIGIN))).toBe(records);
    expect(copy.zoneInfo(ORIGIN)).toEqual(store.zoneInfo(ORIGIN));
    copy.dropZone(ORIGIN);
    expect(copy.listZones()).toEqual([]);
  });
});
