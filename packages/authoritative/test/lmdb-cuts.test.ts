import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { afterAll, describe, expect, it } from 'vitest';
import {
  descendZone,
  lookupZone,
  record,
  type Descent,
  type RecordOf,
  type ZoneView,
} from '@mimi-discovery/common';
import { openLmdbStore, type DiscoveryStore } from '../src/index.js';
import { encodeNode, nodeHolds, nodeKey, nodeName } from '../src/store/node-codec.js';
import type { StoredNode } from '../src/zone/zone-signer.js';
import { CHILD, delegation, fakeClock, NUMBER, ORIGIN, putMap, zoneInit } from './store-battery.js';

// The LMDB store finds a query name's zone cut with one search of its `cuts` table
// (`#descend`): it must find exactly what reading every name on the way down finds, follow
// every write (a delegation added, moved, removed, a zone removed), and be built when a
// directory of the layout before it is opened.

const root = mkdtempSync(join(tmpdir(), 'mimi-lmdb-cuts-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshDir = (): string => join(root, `store-${++counter}`);

/** The same zone without `descend`: searched through `node`, one name at a time. */
function walked(view: ZoneView): ZoneView {
  return {
    origin: view.origin,
    node: (name) => view.node(name),
    hasDescendants: (name) => view.hasDescendants(name),
  };
}

/** What a descent found, as names and the types of the nodes found. */
function summary(descent: Descent): unknown {
  return {
    cut: descent.cut === undefined ? undefined : descent.cut.name,
    cutTypes: descent.cut === undefined ? undefined : [...descent.cut.node.rrsets.keys()].sort(),
    nodeTypes: descent.node === undefined ? undefined : [...descent.node.rrsets.keys()].sort(),
  };
}

/** Names on, above, below and beside every cut below, and the apex. */
const NAMES = [
  ORIGIN,
  `1.${ORIGIN}`,
  `7.${ORIGIN}`,
  `1.7.${ORIGIN}`,
  `ns1.7.${ORIGIN}`,
  `_dns.ns1.7.${ORIGIN}`,
  `2.3.${ORIGIN}`,
  `5.2.3.${ORIGIN}`,
  `9.5.2.3.${ORIGIN}`,
  `4.9.5.2.3.${ORIGIN}`,
  `6.${ORIGIN}`,
  `5.6.${ORIGIN}`,
  `8.5.6.${ORIGIN}`,
  `9.${ORIGIN}`,
  NUMBER,
  `0.${NUMBER}`,
  `7\\000x.${ORIGIN}`,
  `a.7\\000x.${ORIGIN}`,
  `7\\001.${ORIGIN}`,
];

/** The owner names in the `cuts` table of a closed data directory, sorted. */
async function indexedCuts(dataDir: string): Promise<string[]> {
  const env = open({ path: dataDir, noSubdir: false, maxDbs: 16, readOnly: true });
  const cuts = env.openDB<Buffer, Buffer>({
    name: 'cuts',
    encoding: 'binary',
    keyEncoding: 'binary',
  });
  const names = [...cuts.getKeys()].map((key) => nodeName(ORIGIN, key));
  await env.close();
  return names.sort();
}

/** What `lookupZone` answers, as the outcome and the owners and types of its records. */
function outcome(view: ZoneView, name: string, type: 'MAP' | 'DS' | 'NS' | 'A'): unknown {
  const found = lookupZone(view, { name, type, class: 'IN' }, { dnssecOk: true });
  if (found.kind === 'refused') return found;
  const rrs = (list: readonly { name: string; type: string }[]): string[] =>
    list.map((rr) => `${rr.name} ${rr.type}`);
  return {
    kind: found.kind,
    answers: rrs(found.answers),
    authorities: rrs(found.authorities),
    additionals: rrs(found.additionals),
  };
}

async function expectSameDescents(
  store: DiscoveryStore,
  origin = ORIGIN,
  names: readonly string[] = NAMES,
): Promise<void> {
  const view = store.zoneView(origin);
  if (view === undefined) throw new Error('no view');
  expect(view.descend).toBeTypeOf('function');
  for (const name of names) {
    expect({ name, ...(summary(descendZone(view, name)) as object) }).toEqual({
      name,
      ...(summary(descendZone(walked(view), name)) as object),
    });
    for (const type of ['MAP', 'DS', 'NS', 'A'] as const) {
      expect({ name, type, outcome: outcome(view, name, type) }).toEqual({
        name,
        type,
        outcome: outcome(walked(view), name, type),
      });
    }
  }
}

describe('zone cuts in the LMDB store', () => {
  it('finds the cut nearest the origin with one search, as a walk down would', async () => {
    const clock = fakeClock();
    const dataDir = freshDir();
    const store = await openLmdbStore({ dataDir, now: clock.now });
    await store.addZone(zoneInit());
    await store.apply(ORIGIN, [
      ...delegation(CHILD),
      // A cut two labels down, with a deeper (occluded) NS below it, and one beside it.
      ...delegation(`5.2.3.${ORIGIN}`),
      {
        op: 'put',
        name: `4.9.5.2.3.${ORIGIN}`,
        type: 'NS',
        records: [record(`4.9.5.2.3.${ORIGIN}`, 'NS', `ns.example`, 60)],
      },
      {
        op: 'put',
        name: `8.5.6.${ORIGIN}`,
        type: 'NS',
        records: [record(`8.5.6.${ORIGIN}`, 'NS', `ns.example`, 60)],
      },
      // Labels with the octets the key encoding escapes (0x00, 0x01).
      {
        op: 'put',
        name: `7\\000x.${ORIGIN}`,
        type: 'NS',
        records: [record(`7\\000x.${ORIGIN}`, 'NS', `ns.example`, 60)],
      },
      putMap(`7\\001.${ORIGIN}`),
      putMap(NUMBER),
      putMap(`2.3.${ORIGIN}`),
    ]);
    await expectSameDescents(store);
    const view = store.zoneView(ORIGIN);
    expect(view?.descend?.(`4.9.5.2.3.${ORIGIN}`).cut?.name).toBe(`5.2.3.${ORIGIN}`);
    expect(view?.descend?.(`8.5.6.${ORIGIN}`).cut?.name).toBe(`8.5.6.${ORIGIN}`);
    expect(view?.descend?.(`a.7\\000x.${ORIGIN}`).cut?.name).toBe(`7\\000x.${ORIGIN}`);
    expect(view?.descend?.(NUMBER)).toMatchObject({ node: expect.anything() });
    expect(view?.descend?.(NUMBER).cut).toBeUndefined();

    // A cut removed stays removed; one moved is found where it went.
    await store.apply(ORIGIN, [
      { op: 'delete', name: `5.2.3.${ORIGIN}`, type: 'DS' },
      { op: 'delete', name: `5.2.3.${ORIGIN}`, type: 'NS' },
      { op: 'delete', name: `8.5.6.${ORIGIN}`, type: 'NS' },
      {
        op: 'put',
        name: `6.${ORIGIN}`,
        type: 'NS',
        records: [record(`6.${ORIGIN}`, 'NS', `ns.example`, 60)],
      },
    ]);
    await expectSameDescents(store);
    expect(view?.descend?.(`9.5.2.3.${ORIGIN}`).cut).toBeUndefined();
    expect(view?.descend?.(`4.9.5.2.3.${ORIGIN}`).cut?.name).toBe(`4.9.5.2.3.${ORIGIN}`);
    expect(view?.descend?.(`8.5.6.${ORIGIN}`).cut?.name).toBe(`6.${ORIGIN}`);
    await store.close();
    // The index holds the cuts there are now, and nothing of the ones removed.
    expect(await indexedCuts(dataDir)).toEqual(
      [CHILD, `4.9.5.2.3.${ORIGIN}`, `6.${ORIGIN}`, `7\\000x.${ORIGIN}`].sort(),
    );
  });

  it('spells a cut as the question does, so DS at a cut comes from the parent side', async () => {
    const clock = fakeClock();
    const store = await openLmdbStore({ dataDir: freshDir(), now: clock.now });
    await store.addZone(zoneInit());
    // A label the store spells escaped (`a\\@b`), asked for as typed (`a@b`, `A@B`).
    await store.apply(ORIGIN, delegation(`a\\@b.${ORIGIN}`));
    const view = store.zoneView(ORIGIN);
    if (view === undefined) throw new Error('no view');
    for (const name of [`a@b.${ORIGIN}`, `A@B.${ORIGIN}`, `a\\@b.${ORIGIN}`, `x.a@b.${ORIGIN}`]) {
      for (const type of ['DS', 'MAP'] as const) {
        expect({ name, type, outcome: outcome(view, name, type) }).toEqual({
          name,
          type,
          outcome: outcome(walked(view), name, type),
        });
      }
    }
    expect(outcome(view, `a@b.${ORIGIN}`, 'DS')).toMatchObject({ kind: 'answer' });
    expect(outcome(view, `x.a@b.${ORIGIN}`, 'MAP')).toMatchObject({ kind: 'referral' });
    await store.close();
  });

  it('keeps the cuts of a parent zone and its child, held in one store, apart', async () => {
    const clock = fakeClock();
    const store = await openLmdbStore({ dataDir: freshDir(), now: clock.now });
    const parent = 'e164.mimi.arpa';
    await store.addZone(zoneInit(parent));
    await store.addZone(zoneInit());
    // The parent delegates the child (held here too) and a sibling; the child delegates CHILD.
    await store.apply(parent, [...delegation(ORIGIN), ...delegation(`5.${parent}`)]);
    await store.apply(ORIGIN, [...delegation(CHILD), putMap(NUMBER)]);
    const names = [
      parent,
      `4.${parent}`,
      ORIGIN,
      `1.${ORIGIN}`,
      CHILD,
      `1.${CHILD}`,
      NUMBER,
      `5.${parent}`,
      `1.5.${parent}`,
    ];
    await expectSameDescents(store, parent, names);
    await expectSameDescents(
      store,
      ORIGIN,
      names.filter((n) => n.endsWith(ORIGIN)),
    );
    expect(store.zoneView(parent)?.descend?.(`1.${CHILD}`).cut?.name).toBe(ORIGIN);
    expect(store.zoneView(ORIGIN)?.descend?.(`1.${CHILD}`).cut?.name).toBe(CHILD);
    expect(store.zoneView(ORIGIN)?.descend?.(NUMBER).cut).toBeUndefined();
    await store.close();
  });

  it('passes over an entry whose node holds no NS', async () => {
    const clock = fakeClock();
    const dataDir = freshDir();
    const first = await openLmdbStore({ dataDir, now: clock.now });
    await first.addZone(zoneInit());
    await first.apply(ORIGIN, [
      ...delegation(`5.2.3.${ORIGIN}`),
      putMap(`2.3.${ORIGIN}`),
      putMap(NUMBER),
    ]);
    await first.close();
    // Entries no write of this store makes: above the cut (a node without NS) and nowhere.
    const env = open({ path: dataDir, noSubdir: false, maxDbs: 16 });
    const cuts = env.openDB<Buffer, Buffer>({
      name: 'cuts',
      encoding: 'binary',
      keyEncoding: 'binary',
    });
    await cuts.put(nodeKey(ORIGIN, `2.3.${ORIGIN}`), Buffer.of(1));
    await cuts.put(nodeKey(ORIGIN, `3.${ORIGIN}`), Buffer.of(1));
    await env.close();
    const store = await openLmdbStore({ dataDir, now: clock.now });
    await expectSameDescents(store);
    expect(store.zoneView(ORIGIN)?.descend?.(`9.5.2.3.${ORIGIN}`).cut?.name).toBe(
      `5.2.3.${ORIGIN}`,
    );
    await store.close();
  });

  it('forgets the cuts of a zone removed, and a new zone of that name has none', async () => {
    const clock = fakeClock();
    const dataDir = freshDir();
    let store = await openLmdbStore({ dataDir, now: clock.now });
    await store.addZone(zoneInit());
    await store.apply(ORIGIN, delegation(CHILD));
    expect(store.zoneView(ORIGIN)?.descend?.(`1.${CHILD}`).cut?.name).toBe(CHILD);
    await store.removeZone(ORIGIN);
    await store.close();
    expect(await indexedCuts(dataDir)).toEqual([]);
    store = await openLmdbStore({ dataDir, now: clock.now });
    await store.addZone(zoneInit());
    await store.apply(ORIGIN, [putMap(`1.${CHILD}`)]);
    const descent = store.zoneView(ORIGIN)?.descend?.(`1.${CHILD}`);
    expect(descent?.cut).toBeUndefined();
    expect(descent?.node?.rrsets.has('MAP')).toBe(true);
    await store.close();
  });

  it('builds the index when a directory of layout 4 is first opened', async () => {
    const clock = fakeClock();
    const dataDir = freshDir();
    const first = await openLmdbStore({ dataDir, now: clock.now });
    await first.addZone(zoneInit());
    await first.apply(ORIGIN, [...delegation(CHILD), putMap(NUMBER)]);
    await first.close();
    // Layout 4 had no `cuts`.
    const env = open({ path: dataDir, noSubdir: false, maxDbs: 16 });
    await env
      .openDB<Buffer, Buffer>({ name: 'cuts', encoding: 'binary', keyEncoding: 'binary' })
      .drop();
    await env
      .openDB<Buffer, string>({ name: 'meta', encoding: 'binary' })
      .put('format', Buffer.of(4));
    await env.close();

    const upgraded = await openLmdbStore({ dataDir, now: clock.now });
    expect(upgraded.zoneView(ORIGIN)?.descend?.(`1.${CHILD}`).cut?.name).toBe(CHILD);
    await expectSameDescents(upgraded);
    await upgraded.close();
    const check = open({ path: dataDir, noSubdir: false, maxDbs: 16, readOnly: true });
    expect(
      check.openDB<Buffer, string>({ name: 'meta', encoding: 'binary' }).get('format')?.[0],
    ).toBe(5);
    await check.close();
  });
});

describe('nodeHolds', () => {
  it('reads the types of an encoded node without decoding it', () => {
    const node: StoredNode = new Map([
      ['A', { records: [record(CHILD, 'A', '192.0.2.1', 60)], signatures: [] }],
      [
        'NS',
        {
          records: [record(CHILD, 'NS', 'ns.example', 60), record(CHILD, 'NS', 'ns2.example', 60)],
          signatures: [],
        },
      ],
    ]);
    const value = encodeNode(node);
    expect(nodeHolds(value, 1)).toBe(true);
    expect(nodeHolds(value, 2)).toBe(true);
    expect(nodeHolds(value, 43)).toBe(false);
    expect(nodeHolds(value.subarray(0, 5), 2)).toBe(false);
    expect(nodeHolds(new Uint8Array(), 2)).toBe(false);
  });

  it('reads past RRsets with several signatures', () => {
    const rrsig = (tag: number): RecordOf<'RRSIG'> =>
      record(
        CHILD,
        'RRSIG',
        {
          typeCovered: 'A',
          algorithm: 15,
          labels: 6,
          originalTtl: 60,
          expiration: 2_000_000_000,
          inception: 1_900_000_000,
          keyTag: tag,
          signerName: ORIGIN,
          signature: new Uint8Array(64).fill(tag),
        },
        60,
      );
    const node: StoredNode = new Map([
      ['A', { records: [record(CHILD, 'A', '192.0.2.1', 60)], signatures: [rrsig(1), rrsig(2)] }],
      ['NS', { records: [record(CHILD, 'NS', 'ns.example', 60)], signatures: [] }],
    ]);
    const value = encodeNode(node);
    expect(nodeHolds(value, 2)).toBe(true);
    expect(nodeHolds(value, 43)).toBe(false);
    expect(nodeHolds(value.subarray(0, value.length - 3), 2)).toBe(true);
    expect(nodeHolds(value.subarray(0, 40), 2)).toBe(false);
  });
});
