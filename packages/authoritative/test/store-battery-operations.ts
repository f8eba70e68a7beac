import { keyPairFromSeed, type Ed25519KeyPair, type RecordOf } from '@mimi-discovery/common';
import { describe, expect, it } from 'vitest';
import {
  MAX_MAPPINGS_PER_CSI,
  MAX_MAPREFS_PER_CSI,
  MAX_MAP_TTL_SECONDS,
  REPLAY_PRUNE_BATCH,
  removalRecordUntil,
  requestRecordUntil,
  revocationRecordUntil,
  type DiscoveryStore,
  type OperationOutcome,
  type ReplayRecord,
  type StoreOperation,
} from '../src/index.js';
import {
  CSIP,
  DAY,
  INDEPENDENT_PROVER,
  OTHER_RECIPIENT,
  PHONE,
  RECIPIENT,
  STRANGER,
  attest,
  mappingBytes,
  maprefBytes,
  removalBytes,
  revocationBytes,
  seed,
  snapshot,
  type MappingSpec,
} from './registration-fixture.js';
import type { FakeClock, StoreFactoryOptions, StoreHarness } from './store-battery.js';
import {
  NUMBER,
  ORIGIN,
  PROVER_SEED,
  T0,
  expectStoreError,
  verifiesAt,
  zoneInit,
} from './store-battery.js';

/**
 * The part of the shared store battery about operations (`mapping-ops.ts`): what the store
 * decides inside its write transaction, and the anti-replay records it keeps. Signed objects are
 * real (fixed keys, the fake clock); the zone lists the store's own prover and a CSIP.
 */

type Setup = (
  options?: Partial<StoreFactoryOptions>,
) => Promise<StoreHarness & { clock: FakeClock }>;

const TARGET = 'msp-dp.example.com.email.mimi.arpa';

/** A zone at ORIGIN listing the store's prover (seed 2) and CSIP as AUTHKEYs. */
async function zoneWithCsip(store: DiscoveryStore): Promise<void> {
  await store.addZone(
    zoneInit(ORIGIN, {
      authkeys: [{ role: 'csip', publicKey: CSIP.publicKey, notAfter: T0 + 3650 * DAY }],
    }),
  );
}

const key = (byte: number): Ed25519KeyPair => keyPairFromSeed(seed(byte));

/** A MAP at NUMBER by `recipient`, attested by the store's prover at `nbf`. */
function mapping(
  clock: FakeClock,
  recipient: Ed25519KeyPair,
  spec: Partial<MappingSpec> & { nbf?: number } = {},
): Uint8Array {
  const att = spec.att ?? attest(PHONE, recipient, PROVER_SEED, spec.nbf ?? T0);
  return mappingBytes({ iat: clock.now(), ...spec, att, recipient });
}

function publish(
  store: DiscoveryStore,
  clock: FakeClock,
  bytes: Uint8Array,
  authorize = true,
): Promise<OperationOutcome> {
  return store.applyOperation(ORIGIN, {
    kind: 'publish-mapping',
    name: NUMBER,
    csi: PHONE,
    mapping: bytes,
    now: clock.now(),
    authorize,
  });
}

const removal = (clock: FakeClock, recipient: Ed25519KeyPair, seq: number): StoreOperation => ({
  kind: 'remove-mapping',
  name: NUMBER,
  removal: removalBytes(PHONE, recipient, seq, clock.now()),
  now: clock.now(),
});

const revocation = (clock: FakeClock, before: number, csip = CSIP): StoreOperation => ({
  kind: 'revoke',
  name: NUMBER,
  revocation: revocationBytes(PHONE, csip, before, clock.now()),
  now: clock.now(),
  authorize: true,
});

const mapref = (clock: FakeClock, request: Uint8Array): StoreOperation => ({
  kind: 'mapref',
  name: NUMBER,
  request,
  now: clock.now(),
  authorize: true,
});

const maps = (store: DiscoveryStore): RecordOf<'MAP'>[] =>
  store.readRRset(ORIGIN, NUMBER, 'MAP') as RecordOf<'MAP'>[];

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const mapHex = (store: DiscoveryStore): string[] =>
  maps(store)
    .map((r) => hex(r.data))
    .sort();

/** The anti-replay records as comparable text. */
const recordsText = (records: readonly ReplayRecord[]): string =>
  JSON.stringify(records, (_k, v: unknown) => (v instanceof Uint8Array ? hex(v) : v));

/** Expects `outcome` to be a refusal for `reason`. */
function expectRefused(outcome: OperationOutcome, reason: string): void {
  expect(outcome.kind === 'refused' ? outcome.reason : `applied`).toBe(reason);
}

/** Everything a refused operation must leave as it was. */
function state(store: DiscoveryStore): string {
  return JSON.stringify([
    snapshot(store, ORIGIN),
    store.zoneInfo(ORIGIN)?.serial,
    store.generation(),
    recordsText(store.replayRecords()),
  ]);
}

/** The operations part of the battery, inside `storeBattery`'s describe. */
export function operationsBattery(setup: Setup): void {
  describe('operations', () => {
    it('adds the mappings of several keys to one RRset, signed, its TTL set by the earliest expiry', async () => {
      const { store, clock } = await setup();
      await zoneWithCsip(store);
      const a = mapping(clock, RECIPIENT, { exp: T0 + 100 });
      const b = mapping(clock, OTHER_RECIPIENT);
      expect(await publish(store, clock, a)).toEqual({
        kind: 'applied',
        serial: 2,
        changed: true,
        removed: 0,
      });
      expect(maps(store)[0]?.ttl).toBe(100);
      expect(await publish(store, clock, b)).toMatchObject({ kind: 'applied', serial: 3 });
      expect(mapHex(store)).toEqual([hex(a), hex(b)].sort());
      expect(maps(store).map((r) => r.ttl)).toEqual([100, 100]);
      expect(verifiesAt(store, ORIGIN, NUMBER, 'MAP', T0)).toBe(true);
      await store.close();
    });

    it('takes the very same mapping again without a change, and replaces a mapping only with a higher seq', async () => {
      const { store, clock } = await setup();
      await zoneWithCsip(store);
      const two = mapping(clock, RECIPIENT, { seq: 2 });
      await publish(store, clock, two);
      const generation = store.generation();
      expect(await publish(store, clock, two)).toEqual({
        kind: 'applied',
        serial: 2,
        changed: false,
        removed: 0,
      });
      expect(store.generation()).toBe(generation);
      const before = state(store);
      for (const seq of [1, 2]) {
        const other = mapping(clock, RECIPIENT, { seq, msps: [] });
        expectRefused(await publish(store, clock, other), 'stale-seq');
      }
      expect(state(store)).toBe(before);
      const three = mapping(clock, RECIPIENT, { seq: 3, exp: T0 + DAY });
      expect(await publish(store, clock, three)).toMatchObject({ kind: 'applied', serial: 3 });
      expect(mapHex(store)).toEqual([hex(three)]);
      expect(maps(store)[0]?.ttl).toBe(MAX_MAP_TTL_SECONDS);
      await store.close();
    });

    it('de-lists keys attested before a "new" mapping, and refuses mappings it supersedes', async () => {
      const { store, clock } = await setup();
      await zoneWithCsip(store);
      await publish(store, clock, mapping(clock, RECIPIENT, { nbf: T0 }));
      clock.advance(60);
      const fresh = mapping(clock, OTHER_RECIPIENT, { nbf: T0 + 60, new: true });
      expect(await publish(store, clock, fresh)).toMatchObject({ kind: 'applied', removed: 1 });
      expect(mapHex(store)).toEqual([hex(fresh)]);
      const before = state(store);
      const old = mapping(clock, RECIPIENT, { nbf: T0, seq: 2 });
      expectRefused(await publish(store, clock, old), 'superseded');
      expect(state(store)).toBe(before);
      await store.close();
    });

    it('drops expired mappings when it rewrites the RRset, and refuses an expired one', async () => {
      const { store, clock } = await setup();
      await zoneWithCsip(store);
      await publish(store, clock, mapping(clock, RECIPIENT, { exp: T0 + 100 }));
      clock.advance(200);
      const b = mapping(clock, OTHER_RECIPIENT);
      expect(await publish(store, clock, b)).toMatchObject({ kind: 'applied', removed: 1 });
      expect(mapHex(store)).toEqual([hex(b)]);
      const expired = mapping(clock, key(0x30), { iat: T0, exp: T0 + 100 });
      expectRefused(await publish(store, clock, expired), 'expired');
      await store.close();
    });

    it(`holds at most ${MAX_MAPPINGS_PER_CSI} mappings per CSI`, async () => {
      const { store, clock } = await setup();
      await zoneWithCsip(store);
      for (let i = 0; i < MAX_MAPPINGS_PER_CSI; i++) {
        expect(await publish(store, clock, mapping(clock, key(0x40 + i)))).toMatchObject({
          kind: 'applied',
        });
      }
      const before = state(store);
      expectRefused(
        await publish(store, clock, mapping(clock, key(0x40 + MAX_MAPPINGS_PER_CSI))),
        'too-many-mappings',
      );
      expect(state(store)).toBe(before);
      await store.close();
    });

    it('checks the prover against the apex AUTHKEYs inside the write, and adds AUTHKEYs to those listed', async () => {
      const { store, clock } = await setup();
      await zoneWithCsip(store);
      const att = attest(PHONE, RECIPIENT, INDEPENDENT_PROVER.secretKey, T0);
      const bytes = mapping(clock, RECIPIENT, { att });
      const before = state(store);
      expectRefused(await publish(store, clock, bytes), 'prover-not-authorized');
      expect(state(store)).toBe(before);
      // An operator's import vouches for its own records.
      expect(await publish(store, clock, bytes, false)).toMatchObject({ kind: 'applied' });

      // Two keys added concurrently both land, next to the zone's own.
      const prover = (publicKey: Uint8Array) => ({
        role: 'prover' as const,
        algorithm: 15,
        notAfter: T0 + DAY,
        publicKey,
      });
      const added = await Promise.all(
        [INDEPENDENT_PROVER, STRANGER].map((k) =>
          store.applyOperation(ORIGIN, { kind: 'add-authkeys', keys: [prover(k.publicKey)] }),
        ),
      );
      expect(added.map((o) => o.kind === 'applied' && o.changed)).toEqual([true, true]);
      const listed = (store.readRRset(ORIGIN, ORIGIN, 'AUTHKEY') as RecordOf<'AUTHKEY'>[]).map(
        (rr) => `${rr.data.role}/${hex(rr.data.publicKey)}`,
      );
      expect(listed.sort()).toEqual(
        [
          `prover/${hex(store.proverKey().publicKey)}`,
          `csip/${hex(CSIP.publicKey)}`,
          `prover/${hex(INDEPENDENT_PROVER.publicKey)}`,
          `prover/${hex(STRANGER.publicKey)}`,
        ].sort(),
      );
      expect(verifiesAt(store, ORIGIN, ORIGIN, 'AUTHKEY', T0)).toBe(true);
      // A key listed already changes nothing.
      expect(
        await store.applyOperation(ORIGIN, {
          kind: 'add-authkeys',
          keys: [prover(STRANGER.publicKey)],
        }),
      ).toMatchObject({ kind: 'applied', changed: false });
      const next = mapping(clock, RECIPIENT, { att, seq: 2 });
      expect(await publish(store, clock, next)).toMatchObject({ kind: 'applied', changed: true });
      // The prover's AUTHKEY expires: what it attested is refused from then on.
      clock.advance(DAY);
      const late = mapping(clock, RECIPIENT, { att, seq: 3 });
      expectRefused(await publish(store, clock, late), 'prover-not-authorized');
      await store.close();
    });

    it('lands every one of many concurrent publishes for one CSI', async () => {
      const { store, clock } = await setup();
      await zoneWithCsip(store);
      const keys = Array.from({ length: 8 }, (_, i) => key(0x60 + i));
      const bytes = keys.map((k) => mapping(clock, k));
      // Each key publishes twice (seq 1, then seq 2), all at once, with applies elsewhere.
      const second = keys.map((k) => mapping(clock, k, { seq: 2, msps: [] }));
      const outcomes = await Promise.all([
        ...bytes.map((b) => publish(store, clock, b)),
        ...keys.map((_, i) =>
          store.apply(ORIGIN, [
            {
              op: 'put',
              name: `${i}.9.${ORIGIN}`,
              type: 'TXT',
              records: [
                {
                  name: `${i}.9.${ORIGIN}`,
                  type: 'TXT',
                  class: 'IN',
                  ttl: 60,
                  data: [Buffer.from('x')],
                },
              ],
            },
          ]),
        ),
      ]);
      expect(outcomes.slice(0, 8).map((o) => 'kind' in o && o.kind)).toEqual(
        bytes.map(() => 'applied'),
      );
      expect(mapHex(store)).toEqual(bytes.map(hex).sort());
      const again = await Promise.all(second.map((b) => publish(store, clock, b)));
      expect(again.map((o) => o.kind)).toEqual(second.map(() => 'applied'));
      expect(mapHex(store)).toEqual(second.map(hex).sort());
      expect(verifiesAt(store, ORIGIN, NUMBER, 'MAP', T0)).toBe(true);
      await store.close();
    });

    it('refuses a malformed operation before any write', async () => {
      const { store, clock } = await setup();
      await zoneWithCsip(store);
      const before = state(store);
      const good = mapping(clock, RECIPIENT);
      const cases: Array<[StoreOperation, 'ERR_STORE_BAD_CHANGE' | 'ERR_STORE_OUT_OF_ZONE']> = [
        [
          {
            kind: 'publish-mapping',
            name: NUMBER,
            csi: PHONE,
            mapping: Uint8Array.of(0xa0),
            now: T0,
            authorize: true,
          },
          'ERR_STORE_BAD_CHANGE',
        ],
        [
          {
            kind: 'publish-mapping',
            name: 'example.com',
            csi: PHONE,
            mapping: good,
            now: T0,
            authorize: true,
          },
          'ERR_STORE_OUT_OF_ZONE',
        ],
        [
          {
            kind: 'publish-mapping',
            name: NUMBER,
            csi: PHONE,
            mapping: good,
            now: -1,
            authorize: true,
          },
          'ERR_STORE_BAD_CHANGE',
        ],
        // A mapping does not carry its CSI: the operation must name it, canonical.
        ...['+44 20 7946 0018', 'not a csi', 42, undefined].map(
          (csi): [StoreOperation, 'ERR_STORE_BAD_CHANGE'] => [
            {
              kind: 'publish-mapping',
              name: NUMBER,
              csi: csi as string,
              mapping: good,
              now: T0,
              authorize: true,
            },
            'ERR_STORE_BAD_CHANGE',
          ],
        ),
        [{ kind: 'add-maprefs', name: NUMBER, targets: [NUMBER] }, 'ERR_STORE_BAD_CHANGE'],
        [
          {
            kind: 'add-authkeys',
            keys: [{ role: 'csip', algorithm: 15, notAfter: T0, publicKey: new Uint8Array(31) }],
          },
          'ERR_STORE_BAD_CHANGE',
        ],
      ];
      for (const [operation, code] of cases) {
        await expectStoreError(store.applyOperation(ORIGIN, operation), code);
      }
      await expectStoreError(
        store.applyOperation('example.com', {
          kind: 'publish-mapping',
          name: 'a.example.com',
          csi: PHONE,
          mapping: good,
          now: T0,
          authorize: true,
        }),
        'ERR_STORE_NO_ZONE',
      );
      expect(state(store)).toBe(before);
      await store.close();
    });
  });

  describe('anti-replay records', () => {
    it('a removal deletes the key’s mapping and MAPREF with the last MAP, and refuses the old mapping afterwards', async () => {
      const { store, clock } = await setup();
      await zoneWithCsip(store);
      const att = attest(PHONE, RECIPIENT, PROVER_SEED, T0);
      const four = mapping(clock, RECIPIENT, { att, seq: 4 });
      await publish(store, clock, four);
      await store.applyOperation(ORIGIN, mapref(clock, maprefBytes(att, TARGET, T0)));
      expect(store.readRRset(ORIGIN, NUMBER, 'MAPREF')).toHaveLength(1);

      let before = state(store);
      expectRefused(
        await store.applyOperation(ORIGIN, removal(clock, OTHER_RECIPIENT, 9)),
        'not-found',
      );
      expectRefused(await store.applyOperation(ORIGIN, removal(clock, RECIPIENT, 3)), 'stale-seq');
      expect(state(store)).toBe(before);

      expect(await store.applyOperation(ORIGIN, removal(clock, RECIPIENT, 4))).toMatchObject({
        kind: 'applied',
        changed: true,
        removed: 1,
      });
      expect(maps(store)).toEqual([]);
      expect(store.readRRset(ORIGIN, NUMBER, 'MAPREF')).toEqual([]);
      const records = store.replayRecords().filter((r) => r.kind === 'removal');
      expect(recordsText(records)).toBe(
        recordsText([
          {
            kind: 'removal',
            csi: PHONE,
            key: RECIPIENT.publicKey,
            seq: 4,
            until: removalRecordUntil(T0),
          },
        ]),
      );
      before = state(store);
      expectRefused(await publish(store, clock, four), 'stale-seq');
      expect(state(store)).toBe(before);
      const five = mapping(clock, RECIPIENT, { att, seq: 5 });
      expect(await publish(store, clock, five)).toMatchObject({ kind: 'applied', changed: true });
      await store.close();
    });

    it('a revocation deletes what it covers and the MAPREFs, and refuses covered objects afterwards', async () => {
      const { store, clock } = await setup();
      await zoneWithCsip(store);
      const att = attest(PHONE, RECIPIENT, PROVER_SEED, T0);
      const bytes = mapping(clock, RECIPIENT, { att });
      await publish(store, clock, bytes);
      await store.applyOperation(ORIGIN, mapref(clock, maprefBytes(att, TARGET, T0)));
      clock.advance(60);

      const before = state(store);
      expectRefused(
        await store.applyOperation(ORIGIN, revocation(clock, T0 + 60, STRANGER)),
        'csip-not-authorized',
      );
      expectRefused(
        await store.applyOperation(ORIGIN, revocation(clock, T0 + DAY)),
        'not-yet-valid',
      );
      expect(state(store)).toBe(before);

      expect(await store.applyOperation(ORIGIN, revocation(clock, T0 + 60))).toMatchObject({
        kind: 'applied',
        removed: 1,
      });
      expect(maps(store)).toEqual([]);
      expect(store.readRRset(ORIGIN, NUMBER, 'MAPREF')).toEqual([]);
      expect(recordsText(store.replayRecords().filter((r) => r.kind === 'revocation'))).toBe(
        recordsText([
          {
            kind: 'revocation',
            csi: PHONE,
            before: T0 + 60,
            until: revocationRecordUntil(T0 + 60),
          },
        ]),
      );
      expectRefused(await publish(store, clock, bytes), 'revoked');
      expectRefused(
        await store.applyOperation(ORIGIN, mapref(clock, maprefBytes(att, TARGET, T0 + 60))),
        'revoked',
      );
      // The next holder, attested after the revocation, publishes.
      const next = mapping(clock, OTHER_RECIPIENT, { nbf: T0 + 60 });
      expect(await publish(store, clock, next)).toMatchObject({ kind: 'applied', changed: true });
      await store.close();
    });

    it('takes each MapRef request once, and holds a bounded number of targets', async () => {
      const { store, clock } = await setup();
      await zoneWithCsip(store);
      const att = attest(PHONE, RECIPIENT, PROVER_SEED, T0);
      await publish(store, clock, mapping(clock, RECIPIENT, { att }));
      const request = maprefBytes(att, TARGET, T0);
      expect(await store.applyOperation(ORIGIN, mapref(clock, request))).toMatchObject({
        kind: 'applied',
        changed: true,
      });
      const before = state(store);
      expectRefused(await store.applyOperation(ORIGIN, mapref(clock, request)), 'replayed');
      expect(state(store)).toBe(before);
      // The same target in a new request changes no record, and the request is remembered.
      const again = maprefBytes(att, TARGET, T0 + 1);
      expect(await store.applyOperation(ORIGIN, mapref(clock, again))).toMatchObject({
        kind: 'applied',
        changed: false,
      });
      expectRefused(await store.applyOperation(ORIGIN, mapref(clock, again)), 'replayed');
      for (let i = 1; i < MAX_MAPREFS_PER_CSI; i++) {
        const more = maprefBytes(att, `t${i}.example`, T0 + 1 + i);
        expect(await store.applyOperation(ORIGIN, mapref(clock, more))).toMatchObject({
          kind: 'applied',
        });
      }
      expectRefused(
        await store.applyOperation(
          ORIGIN,
          mapref(clock, maprefBytes(att, 'one-more.example', T0 + 50)),
        ),
        'too-many-maprefs',
      );
      await store.applyOperation(ORIGIN, mapref(clock, maprefBytes(att, null, T0 + 51)));
      expect(store.readRRset(ORIGIN, NUMBER, 'MAPREF')).toEqual([]);
      expect(
        store
          .replayRecords()
          .filter((r) => r.kind === 'mapref-request')
          .map((r) => r.until)
          .sort((x, y) => x - y)
          .at(-1),
      ).toBe(requestRecordUntil(T0 + 51));
      await store.close();
    });

    it('keeps them across a reopen and in a restored copy of its data, when it persists', async (context) => {
      const { store, clock, reopen, restoreCopy } = await setup();
      if (reopen === undefined || restoreCopy === undefined) {
        context.skip();
        return;
      }
      await zoneWithCsip(store);
      const att = attest(PHONE, RECIPIENT, PROVER_SEED, T0);
      const removed = mapping(clock, RECIPIENT, { att });
      await publish(store, clock, removed);
      const request = maprefBytes(att, TARGET, T0);
      await store.applyOperation(ORIGIN, mapref(clock, request));
      await store.applyOperation(ORIGIN, removal(clock, RECIPIENT, 1));
      const other = attest(PHONE, OTHER_RECIPIENT, PROVER_SEED, T0);
      const revoked = mapping(clock, OTHER_RECIPIENT, { att: other });
      await publish(store, clock, revoked);
      clock.advance(10);
      await store.applyOperation(ORIGIN, revocation(clock, T0 + 10));
      const records = recordsText(store.replayRecords());
      expect(
        store
          .replayRecords()
          .map((r) => r.kind)
          .sort(),
      ).toEqual(['mapref-request', 'removal', 'revocation'].sort());

      const check = async (again: DiscoveryStore): Promise<void> => {
        expect(recordsText(again.replayRecords())).toBe(records);
        expectRefused(await publish(again, clock, removed), 'stale-seq');
        expectRefused(await publish(again, clock, revoked), 'revoked');
        expectRefused(await again.applyOperation(ORIGIN, mapref(clock, request)), 'replayed');
        expect(again.readRRset(ORIGIN, NUMBER, 'MAP')).toEqual([]);
      };
      const reopened = await reopen();
      await check(reopened);
      const restored = await restoreCopy(reopened);
      await check(restored);
      await restored.close();
    });

    it('prunes each record once nothing it stops can verify, and not before', async () => {
      const { store, clock } = await setup();
      await zoneWithCsip(store);
      const att = attest(PHONE, RECIPIENT, PROVER_SEED, T0);
      await publish(store, clock, mapping(clock, RECIPIENT, { att }));
      // More MapRef requests than one pruning transaction takes.
      const requests = Array.from({ length: REPLAY_PRUNE_BATCH + 10 }, (_, i) =>
        maprefBytes(att, i % 2 === 0 ? TARGET : null, T0 - i),
      );
      const outcomes = await Promise.all(
        requests.map((r) => store.applyOperation(ORIGIN, mapref(clock, r))),
      );
      expect(outcomes.every((o) => o.kind === 'applied')).toBe(true);
      await store.applyOperation(ORIGIN, removal(clock, RECIPIENT, 1));
      expect(store.replayRecords()).toHaveLength(requests.length + 1);

      // A request is stale 300 s after its iat: then its record goes, without a visible write.
      clock.advance(requestRecordUntil(T0) - T0);
      const generation = store.generation();
      expect(await store.resign()).toBe(0);
      // Left: the request made at T0 (until T0 + 300, now) and the removal.
      expect(
        store
          .replayRecords()
          .map((r) => r.kind)
          .sort(),
      ).toEqual(['mapref-request', 'removal']);
      expect(store.generation()).toBe(generation);
      clock.advance(1);
      await store.resign();
      expect(store.replayRecords().map((r) => r.kind)).toEqual(['removal']);

      // The removal stays until every mapping it stops has expired, then goes too.
      clock.advance(removalRecordUntil(T0) - clock.now());
      await store.resign();
      expect(store.replayRecords()).toHaveLength(1);
      clock.advance(1);
      await store.resign();
      expect(store.replayRecords()).toEqual([]);
      await store.close();
    });
  });
}
