import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildQuery,
  decodeMessage,
  encodeMessage,
  record,
  type Message,
  type Question,
  type RecordOf,
  type ResourceRecord,
} from '@mimi-discovery/common';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CURRENT_MAP_CACHE_ENTRIES,
  createAnswerer,
  createMemoryStore,
  openLmdbStore,
  type Answerer,
  type DiscoveryStore,
} from '../src/index.js';
import {
  mapHex,
  mapRecords,
  putMappings,
  specHex,
  verifyIn,
  type MappingSpec,
} from './expiring-mappings.js';
import {
  NUMBER,
  ORIGIN,
  PROVER_SEED,
  T0,
  fakeClock,
  mapRecord,
  zoneInit,
  type FakeClock,
} from './store-battery.js';
import { mappingExpiryHint } from '../src/store/mapping-expiry-hint.js';

// R9: a DP never serves a mapping past its expiry, min(exp, att.exp), even while the stored RRset
// still holds it (nothing rewrites an RRset when a mapping in it expires).

const root = mkdtempSync(join(tmpdir(), 'mimi-answer-expiry-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

const CONTEXT = { transport: 'udp', remoteAddress: '127.0.0.1' } as const;

/** Expires at T0 + 100. */
const SOON: MappingSpec = { key: 11, exp: T0 + 100 };
/** Expires at T0 + 1000 by its attestation, its own exp being later. */
const LATER: MappingSpec = { key: 12, exp: T0 + 5000, attExp: T0 + 1000 };
/** Expires at T0 + 3000. */
const LAST: MappingSpec = { key: 13, exp: T0 + 3000 };

const stores: Array<[string, (now: () => number) => Promise<DiscoveryStore>]> = [
  ['memory store', async (now) => createMemoryStore({ now, proverSeed: PROVER_SEED })],
  [
    'LMDB store',
    async (now) =>
      openLmdbStore({ dataDir: join(root, `store-${++counter}`), now, proverSeed: PROVER_SEED }),
  ],
];

interface Setup {
  store: DiscoveryStore;
  clock: FakeClock;
  answerer: Answerer;
  /** Answers `name type` (DO unless told otherwise), through the wire and back. */
  ask(
    name: string,
    type: Question['type'],
    options?: { dnssecOk?: boolean; compactOk?: boolean },
  ): Message;
}

const rrsigOver = (records: readonly ResourceRecord[], covered: string): RecordOf<'RRSIG'> => {
  const found = records.find(
    (rr): rr is RecordOf<'RRSIG'> => rr.type === 'RRSIG' && rr.data.typeCovered === covered,
  );
  if (found === undefined) throw new Error(`no RRSIG over ${covered}`);
  return found;
};

describe.each(stores)('answering MAP from the %s as its mappings expire', (_name, openStore) => {
  const setup = async (specs: readonly MappingSpec[]): Promise<Setup> => {
    const clock = fakeClock();
    const store = await openStore(clock.now);
    await store.addZone(zoneInit());
    if (specs.length > 0) await store.apply(ORIGIN, [putMappings(specs)]);
    const answerer = createAnswerer(store, { now: clock.now });
    const ask: Setup['ask'] = (name, type, options = {}) =>
      decodeMessage(
        encodeMessage(
          answerer(
            buildQuery(name, type, {
              id: 7,
              dnssecOk: options.dnssecOk ?? true,
              ...(options.compactOk === true ? { compactOk: true } : {}),
            }),
            CONTEXT,
          ),
        ),
      );
    return { store, clock, answerer, ask };
  };

  it('leaves a mapping out from its exp on and signs the rest online', async () => {
    const { store, clock, ask } = await setup([SOON, LATER]);
    const storedSig = rrsigOver(store.readZone(ORIGIN), 'MAP');

    clock.advance(99);
    const before = ask(NUMBER, 'MAP');
    expect(mapHex(before.answers)).toEqual(specHex([SOON, LATER]));
    expect(rrsigOver(before.answers, 'MAP').data.signature).toEqual(storedSig.data.signature);
    expect(verifyIn(store, before.answers, 'MAP', clock.now())).toEqual({ kind: 'verified' });

    clock.advance(1);
    const after = ask(NUMBER, 'MAP');
    expect(after.rcode).toBe('NOERROR');
    expect(after.flags.aa).toBe(true);
    expect(mapHex(after.answers)).toEqual(specHex([LATER]));
    const rrsig = rrsigOver(after.answers, 'MAP');
    expect(rrsig.data.signature).not.toEqual(storedSig.data.signature);
    expect(rrsig.data.originalTtl).toBe(300);
    expect(verifyIn(store, after.answers, 'MAP', clock.now())).toEqual({ kind: 'verified' });
    // The new signature covers what is left, not the stored RRset.
    const stored = store.readRRset(ORIGIN, NUMBER, 'MAP');
    expect(verifyIn(store, [...stored, rrsig], 'MAP', clock.now())).toMatchObject({
      kind: 'failed',
    });
    await store.close();
  });

  it('takes the attestation’s exp as the mapping’s when it comes first', async () => {
    const { store, clock, ask } = await setup([LATER, LAST]);
    clock.advance(999);
    expect(mapHex(ask(NUMBER, 'MAP').answers)).toEqual(specHex([LATER, LAST]));
    clock.advance(1);
    const after = ask(NUMBER, 'MAP');
    expect(mapHex(after.answers)).toEqual(specHex([LAST]));
    expect(verifyIn(store, after.answers, 'MAP', clock.now())).toEqual({ kind: 'verified' });
    await store.close();
  });

  it('caps the TTL of the MAP RRset and its RRSIG at the seconds left to the earliest expiry', async () => {
    const { store, clock, ask } = await setup([SOON, LAST]);
    const ttls = (m: Message): number[] => m.answers.map((rr) => rr.ttl);
    expect(ttls(ask(NUMBER, 'MAP'))).toEqual([100, 100, 100]);
    clock.advance(60);
    expect(ttls(ask(NUMBER, 'MAP'))).toEqual([40, 40, 40]);
    clock.advance(40);
    expect(ttls(ask(NUMBER, 'MAP'))).toEqual([300, 300]);
    clock.advance(3000 - 100 - 250);
    const late = ask(NUMBER, 'MAP');
    expect(ttls(late)).toEqual([250, 250]);
    // RFC 4035 §5.3.3: a TTL below the original TTL does not change what the RRSIG covers.
    expect(verifyIn(store, late.answers, 'MAP', clock.now())).toEqual({ kind: 'verified' });
    expect(ttls(ask(NUMBER, 'MAP', { dnssecOk: false }))).toEqual([250]);
    await store.close();
  });

  it('answers a name whose mappings have all expired as a name that does not exist', async () => {
    const { store, clock, ask } = await setup([SOON]);
    clock.advance(100);
    const denial = ask(NUMBER, 'MAP');
    expect(denial.rcode).toBe('NOERROR');
    expect(denial.answers).toEqual([]);
    const nsec = denial.authorities.find((rr) => rr.type === 'NSEC');
    expect(nsec?.type === 'NSEC' ? nsec.data.types : undefined).toEqual([
      'RRSIG',
      'NSEC',
      'TYPE128',
    ]);
    expect(verifyIn(store, denial.authorities, 'NSEC', clock.now())).toEqual({ kind: 'verified' });
    expect(ask(NUMBER, 'MAP', { compactOk: true }).rcode).toBe('NXDOMAIN');
    const plain = ask(NUMBER, 'MAP', { dnssecOk: false });
    expect(plain.answers).toEqual([]);
    expect(plain.authorities.map((rr) => rr.type)).toEqual(['SOA']);
    await store.close();
  });

  it('leaves expired mappings out without DNSSEC too, and out of ANY', async () => {
    const { store, clock, ask } = await setup([SOON, LAST]);
    clock.advance(100);
    const plain = ask(NUMBER, 'MAP', { dnssecOk: false });
    expect(mapHex(plain.answers)).toEqual(specHex([LAST]));
    expect(plain.answers.some((rr) => rr.type === 'RRSIG')).toBe(false);
    const any = ask(NUMBER, 'ANY');
    expect(mapHex(any.answers)).toEqual(specHex([LAST]));
    expect(verifyIn(store, any.answers, 'MAP', clock.now())).toEqual({ kind: 'verified' });
    await store.close();
  });

  it('leaves a MAPREF answer as stored, and its NODATA proof stops listing MAP', async () => {
    const { store, clock, ask } = await setup([SOON]);
    await store.apply(ORIGIN, [
      {
        op: 'put',
        name: NUMBER,
        type: 'MAPREF',
        records: [record(NUMBER, 'MAPREF', 'dp.msp.example', 300)],
      },
    ]);
    const mapref = ask(NUMBER, 'MAPREF');
    clock.advance(100);
    expect(ask(NUMBER, 'MAPREF')).toEqual(mapref);
    const nodata = ask(NUMBER, 'MAP');
    expect(nodata.answers).toEqual([]);
    const nsec = nodata.authorities.find((rr) => rr.type === 'NSEC');
    expect(nsec?.type === 'NSEC' ? nsec.data.types : undefined).toEqual([
      'RRSIG',
      'NSEC',
      'MAPREF',
    ]);
    expect(verifyIn(store, nodata.authorities, 'NSEC', clock.now())).toEqual({ kind: 'verified' });
    await store.close();
  });

  it('serves a MAP record that is not a mapping as stored, next to one that expired', async () => {
    const { store, clock, ask } = await setup([]);
    // `{ v: 9 }`: CBOR, but not a mapping; resolvers reject it, the DP has no expiry to apply.
    const records = [mapRecord(NUMBER, 9), ...mapRecords([SOON])];
    await store.apply(ORIGIN, [{ op: 'put', name: NUMBER, type: 'MAP', records }]);
    clock.advance(100);
    const after = ask(NUMBER, 'MAP');
    expect(after.answers.filter((rr) => rr.type === 'MAP')).toHaveLength(1);
    expect(mapHex(after.answers)).toEqual(mapHex(records.slice(0, 1)));
    expect(verifyIn(store, after.answers, 'MAP', clock.now())).toEqual({ kind: 'verified' });
    await store.close();
  });

  it('serves a record whose expiry the quick read finds past, when it is not a mapping', async () => {
    const { store, clock, ask } = await setup([]);
    // `{ att: { exp }, exp }` at T0 + 10: the quick read (two integers) says it expired, the
    // strict decoder says it is no mapping at all, so it has no expiry and is served.
    const exp = [0x1a, ...Buffer.from(Uint32Array.of(T0 + 10).buffer).reverse()];
    const rdata = Uint8Array.from([
      0xa2,
      0x63,
      0x61,
      0x74,
      0x74,
      0xa1,
      0x63,
      0x65,
      0x78,
      0x70,
      ...exp,
      0x63,
      0x65,
      0x78,
      0x70,
      ...exp,
    ]);
    expect(mappingExpiryHint(rdata)).toBe(T0 + 10);
    const records = [record(NUMBER, 'MAP', rdata, 300), ...mapRecords([SOON])];
    await store.apply(ORIGIN, [{ op: 'put', name: NUMBER, type: 'MAP', records }]);
    clock.advance(100);
    const after = ask(NUMBER, 'MAP');
    expect(mapHex(after.answers)).toEqual(mapHex(records.slice(0, 1)));
    expect(verifyIn(store, after.answers, 'MAP', clock.now())).toEqual({ kind: 'verified' });
    await store.close();
  });

  it('signs what is left once, and again when the next mapping expires', async () => {
    const { store, clock, ask } = await setup([SOON, LATER, LAST]);
    clock.advance(100);
    const first = rrsigOver(ask(NUMBER, 'MAP').answers, 'MAP');
    clock.advance(500);
    // Half a signature's lifetime has not passed: the same signature, reused.
    expect(rrsigOver(ask(NUMBER, 'MAP').answers, 'MAP').data).toEqual(first.data);
    expect(rrsigOver(ask(NUMBER, 'ANY').answers, 'MAP').data).toEqual(first.data);
    clock.advance(400);
    const second = ask(NUMBER, 'MAP');
    expect(mapHex(second.answers)).toEqual(specHex([LAST]));
    expect(rrsigOver(second.answers, 'MAP').data.signature).not.toEqual(first.data.signature);
    expect(verifyIn(store, second.answers, 'MAP', clock.now())).toEqual({ kind: 'verified' });
    await store.close();
  });

  it('signs the RRset a later write leaves, not one kept from before it', async () => {
    const { store, clock, ask } = await setup([SOON, LATER]);
    clock.advance(100);
    const before = ask(NUMBER, 'MAP');
    expect(mapHex(before.answers)).toEqual(specHex([LATER]));
    // Another write with the expired mapping still in it: as many records left out as before,
    // but another RRset.
    await store.apply(ORIGIN, [putMappings([SOON, LATER, LAST])]);
    const after = ask(NUMBER, 'MAP');
    expect(mapHex(after.answers)).toEqual(specHex([LATER, LAST]));
    expect(verifyIn(store, after.answers, 'MAP', clock.now())).toEqual({ kind: 'verified' });
    await store.apply(ORIGIN, [putMappings([SOON, LAST])]);
    const last = ask(NUMBER, 'MAP');
    expect(mapHex(last.answers)).toEqual(specHex([LAST]));
    expect(verifyIn(store, last.answers, 'MAP', clock.now())).toEqual({ kind: 'verified' });
    await store.close();
  });

  it(`keeps the signatures of at most ${CURRENT_MAP_CACHE_ENTRIES} RRsets, the least recently used going first`, async () => {
    const { store, clock, ask } = await setup([]);
    // One more name than the bound, each with a mapping that expires and one that stays (the
    // same RDATA at every name: the DP does not check it against the owner).
    const names = Array.from(
      { length: CURRENT_MAP_CACHE_ENTRIES + 1 },
      (_, i) =>
        `${i % 10}.${Math.floor(i / 10) % 10}.${Math.floor(i / 100)}.9.6.4.9.7.0.2.${ORIGIN}`,
    );
    const records = mapRecords([SOON, LAST]);
    const changes = names.map((name) => ({
      op: 'put' as const,
      name,
      type: 'MAP' as const,
      records: records.map((rr) => ({ ...rr, name })),
    }));
    for (let i = 0; i < changes.length; i += 512) {
      await store.apply(ORIGIN, changes.slice(i, i + 512));
    }
    clock.advance(100);
    const signature = (name: string): string =>
      Buffer.from(rrsigOver(ask(name, 'MAP').answers, 'MAP').data.signature).toString('hex');
    const first = signature(names[0]!);
    const second = signature(names[1]!);
    // Signed a second later, a new signature would differ (its inception does).
    clock.advance(1);
    expect(signature(names[0]!)).toBe(first);
    for (const name of names.slice(2)) signature(name);
    // `names[1]` was used least recently and has gone; `names[0]` is still kept.
    expect(signature(names[0]!)).toBe(first);
    expect(signature(names[1]!)).not.toBe(second);
    await store.close();
  });

  it('tells the answer cache when an answer holding mappings must go', async () => {
    const { store, clock, answerer } = await setup([SOON, LAST]);
    await store.apply(ORIGIN, [
      {
        op: 'put',
        name: NUMBER,
        type: 'MAPREF',
        records: [record(NUMBER, 'MAPREF', 'dp.msp.example', 300)],
      },
    ]);
    const expiryOf = (type: Question['type'], dnssecOk = true): number | undefined =>
      answerer.expiresAt(answerer(buildQuery(NUMBER, type, { dnssecOk }), CONTEXT));
    expect(expiryOf('MAP')).toBe(T0 + 100);
    expect(expiryOf('MAP', false)).toBe(T0 + 100);
    expect(expiryOf('ANY')).toBe(T0 + 100);
    expect(expiryOf('MAPREF')).toBeUndefined();
    expect(expiryOf('TXT')).toBeUndefined();
    clock.advance(100);
    expect(expiryOf('MAP')).toBe(T0 + 3000);
    clock.advance(2900);
    expect(expiryOf('MAP')).toBeUndefined();
    // A response this answerer did not make has no expiry it knows of.
    expect(answerer.expiresAt(buildQuery(NUMBER, 'MAP'))).toBeUndefined();
    await store.close();
  });
});

describe('a restarted DP', () => {
  it('does not serve a mapping that expired while it was down', async () => {
    const clock = fakeClock();
    const dataDir = join(root, `restart-${++counter}`);
    const first = await openLmdbStore({ dataDir, now: clock.now, proverSeed: PROVER_SEED });
    await first.addZone(zoneInit());
    await first.apply(ORIGIN, [putMappings([SOON, LAST])]);
    const query = buildQuery(NUMBER, 'MAP', { dnssecOk: true });
    expect(mapHex(createAnswerer(first, { now: clock.now })(query).answers)).toEqual(
      specHex([SOON, LAST]),
    );
    await first.close();
    clock.advance(100);
    const store = await openLmdbStore({ dataDir, now: clock.now, proverSeed: PROVER_SEED });
    const response = createAnswerer(store, { now: clock.now })(query);
    expect(mapHex(response.answers)).toEqual(specHex([LAST]));
    expect(verifyIn(store, response.answers, 'MAP', clock.now())).toEqual({ kind: 'verified' });
    await store.close();
  });
});
