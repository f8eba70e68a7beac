import {
  lookupZone,
  record,
  verifyRRset,
  type RecordOf,
  type ResourceRecord,
  type RRType,
} from '@mimi-discovery/common';
import { describe, expect, it } from 'vitest';
import {
  CHANGE_LOG_ENTRIES,
  StoreError,
  type DiscoveryStore,
  type JournalLimits,
  type RRsetChange,
  type StoreErrorCode,
  type ZoneInit,
} from '../src/index.js';
import { operationsBattery } from './store-battery-operations.js';
import { keysBattery } from './store-battery-keys.js';
import { transferBattery } from './store-battery-transfer.js';

/**
 * The behaviour every DiscoveryStore implementation shares (style: one shared battery runs
 * against every store implementation). Each implementation's test file calls
 * {@link storeBattery} with a factory; the clock is a fake one the tests move by hand.
 */

/** 2026-01-01T00:00:00Z. */
export const T0 = 1767225600;
export const ORIGIN = '4.4.e164.mimi.arpa';
export const CHILD = `7.${ORIGIN}`;
/** `tel:+442079460018`. */
export const NUMBER = `8.1.0.0.6.4.9.7.0.2.${ORIGIN}`;
export const PROVER_SEED = new Uint8Array(32).fill(2);
export const ZONE_SEED = new Uint8Array(32).fill(7);

/** A fake clock in seconds. */
export interface FakeClock {
  now: () => number;
  advance(seconds: number): void;
}

export function fakeClock(start = T0): FakeClock {
  let t = start;
  return { now: () => t, advance: (s) => (t += s) };
}

/** What the battery needs from one implementation. */
export interface StoreHarness {
  store: DiscoveryStore;
  /** Closes the store and opens it again on the same data (persistent stores only). */
  reopen?: () => Promise<DiscoveryStore>;
  /**
   * Closes `current` (a store over this harness's data), copies its data as an operator's backup
   * would, and opens the copy (persistent stores only).
   */
  restoreCopy?: (current: DiscoveryStore) => Promise<DiscoveryStore>;
}

export interface StoreFactoryOptions {
  now: () => number;
  proverSeed?: Uint8Array;
  /** How much of each zone's journal the store keeps (`journal` store option). */
  journal?: Partial<JournalLimits>;
}

export type StoreFactory = (options: StoreFactoryOptions) => Promise<StoreHarness>;

export function zoneInit(origin = ORIGIN, extra: Partial<ZoneInit> = {}): ZoneInit {
  return {
    origin,
    nameservers: [`ns1.${origin}`, `ns2.${origin}`],
    mname: `ns1.${origin}`,
    rname: `hostmaster.${origin}`,
    keySeed: ZONE_SEED,
    ...extra,
  };
}

export function mapRecord(name: string, byte: number, ttl = 300): RecordOf<'MAP'> {
  return record(name, 'MAP', Uint8Array.of(0xa1, 0x61, 0x76, byte), ttl);
}

export function putMap(name: string, byte = 1): RRsetChange {
  return { op: 'put', name, type: 'MAP', records: [mapRecord(name, byte)] };
}

/** Delegation of `cut` with DS, in-bailiwick glue and the nameserver's DoH endpoint. */
export function delegation(cut: string): RRsetChange[] {
  const ns = `ns1.${cut}`;
  return [
    { op: 'put', name: cut, type: 'NS', records: [record(cut, 'NS', ns, 3600)] },
    {
      op: 'put',
      name: cut,
      type: 'DS',
      records: [
        record(
          cut,
          'DS',
          { keyTag: 1, algorithm: 15, digestType: 2, digest: new Uint8Array(32).fill(9) },
          3600,
        ),
      ],
    },
    { op: 'put', name: ns, type: 'A', records: [record(ns, 'A', '192.0.2.7', 3600)] },
    {
      op: 'put',
      name: `_dns.${ns}`,
      type: 'SVCB',
      records: [
        record(
          `_dns.${ns}`,
          'SVCB',
          {
            priority: 1,
            target: ns,
            params: { alpn: ['h2'], port: 8443, dohpath: '/dns-query{?dns}' },
          },
          3600,
        ),
      ],
    },
  ];
}

/** The RRSIG the store keeps for one RRset, or undefined. */
export function signatureOf(
  store: DiscoveryStore,
  origin: string,
  name: string,
  type: RRType,
): RecordOf<'RRSIG'> | undefined {
  return store.zoneView(origin)?.node(name)?.signatures.get(type)?.[0];
}

/** Whether the RRset's stored RRSIG verifies against the zone's DNSKEY at `now`. */
export function verifiesAt(
  store: DiscoveryStore,
  origin: string,
  name: string,
  type: RRType,
  now: number,
): boolean {
  const rrsig = signatureOf(store, origin, name, type);
  if (rrsig === undefined) return false;
  const dnskeys = store.readRRset(origin, origin, 'DNSKEY');
  return verifyRRset(store.readRRset(origin, name, type), rrsig, dnskeys, now).kind === 'verified';
}

export async function expectStoreError(
  action: Promise<unknown> | (() => unknown),
  code: StoreErrorCode,
): Promise<void> {
  let caught: unknown;
  try {
    await (typeof action === 'function' ? action() : action);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(StoreError);
  expect((caught as StoreError).code).toBe(code);
}

function serialOf(store: DiscoveryStore, origin = ORIGIN): number | undefined {
  return store.zoneInfo(origin)?.serial;
}

function recordsText(records: readonly ResourceRecord[]): string {
  return JSON.stringify(records, (_k, v: unknown) =>
    v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
  );
}

/** Runs the shared battery against one implementation. */
export function storeBattery(name: string, factory: StoreFactory): void {
  describe(`${name} (shared store battery)`, () => {
    const setup = async (
      options: Partial<StoreFactoryOptions> = {},
    ): Promise<StoreHarness & { clock: FakeClock }> => {
      const clock = fakeClock();
      const harness = await factory({ now: clock.now, proverSeed: PROVER_SEED, ...options });
      return { ...harness, clock };
    };

    operationsBattery(setup);
    transferBattery(setup);
    keysBattery(setup);

    describe('zones', () => {
      it('creates a zone whose apex holds SOA, NS, DNSKEY and AUTHKEY, each signed', async () => {
        const { store } = await setup();
        const extra = {
          role: 'csip' as const,
          publicKey: new Uint8Array(32).fill(3),
          notAfter: T0 + 86400,
        };
        const info = await store.addZone(zoneInit(ORIGIN, { authkeys: [extra] }));
        expect(info.serial).toBe(1);
        expect(info.origin).toBe(ORIGIN);

        const soa = store.readRRset(ORIGIN, ORIGIN, 'SOA')[0] as RecordOf<'SOA'>;
        expect(soa.data).toEqual({
          mname: `ns1.${ORIGIN}`,
          rname: `hostmaster.${ORIGIN}`,
          serial: 1,
          refresh: 3600,
          retry: 600,
          expire: 1209600,
          minimum: 300,
        });
        expect(soa.ttl).toBe(3600);
        expect(store.readRRset(ORIGIN, ORIGIN, 'NS').map((rr) => rr.data)).toEqual([
          `ns1.${ORIGIN}`,
          `ns2.${ORIGIN}`,
        ]);
        const dnskey = store.readRRset(ORIGIN, ORIGIN, 'DNSKEY')[0] as RecordOf<'DNSKEY'>;
        expect(dnskey.data.flags).toBe(257);
        expect(dnskey.data.algorithm).toBe(15);
        expect(Buffer.from(dnskey.data.publicKey)).toEqual(Buffer.from(info.publicKey));
        expect(store.zoneKey(ORIGIN)?.keyTag).toBe(info.keyTag);

        const authkeys = store.readRRset(ORIGIN, ORIGIN, 'AUTHKEY') as RecordOf<'AUTHKEY'>[];
        expect(authkeys.map((rr) => rr.data.role)).toEqual(['prover', 'csip']);
        const own = authkeys[0] as RecordOf<'AUTHKEY'>;
        expect(Buffer.from(own.data.publicKey)).toEqual(Buffer.from(store.proverKey().publicKey));
        expect(own.data.notAfter).toBe(T0 + 10 * 365 * 86400);
        expect((authkeys[1] as RecordOf<'AUTHKEY'>).data.notAfter).toBe(T0 + 86400);

        for (const type of ['SOA', 'NS', 'DNSKEY', 'AUTHKEY'] as const) {
          expect(verifiesAt(store, ORIGIN, ORIGIN, type, T0), type).toBe(true);
          const rrsig = signatureOf(store, ORIGIN, ORIGIN, type) as RecordOf<'RRSIG'>;
          expect(rrsig.data.inception).toBe(T0 - 3600);
          // 14 days, less a jitter of under half the 7-day refresh margin (signatureJitter).
          expect(rrsig.data.expiration).toBeLessThanOrEqual(T0 + 14 * 86400);
          expect(rrsig.data.expiration).toBeGreaterThan(T0 + 10.5 * 86400);
        }
        await store.close();
      });

      it('lists zones and finds the most specific zone holding a name', async () => {
        const { store } = await setup();
        await store.addZone(zoneInit(ORIGIN));
        await store.addZone(zoneInit(CHILD, { keySeed: new Uint8Array(32).fill(8) }));
        expect(store.listZones()).toEqual([ORIGIN, CHILD].sort());
        expect(store.findZone(NUMBER)).toBe(ORIGIN);
        expect(store.findZone(`5.${CHILD}`)).toBe(CHILD);
        expect(store.findZone(`5.${CHILD.toUpperCase()}.`)).toBe(CHILD);
        expect(store.findZone(ORIGIN)).toBe(ORIGIN);
        expect(store.findZone('e164.mimi.arpa')).toBeUndefined();
        expect(store.findZone('example.com')).toBeUndefined();
        expect(store.zoneInfo(`${ORIGIN.toUpperCase()}.`)?.origin).toBe(ORIGIN);
        expect(store.zoneInfo('example.com')).toBeUndefined();
        expect(store.zoneView('example.com')).toBeUndefined();
        expect(store.zoneKey('example.com')).toBeUndefined();
        await store.close();
      });

      it('refuses a zone it already holds and zones with bad settings', async () => {
        const { store } = await setup();
        await store.addZone(zoneInit());
        await expectStoreError(store.addZone(zoneInit(`${ORIGIN}.`)), 'ERR_STORE_ZONE_EXISTS');
        await expectStoreError(
          store.addZone(zoneInit('1.e164.mimi.arpa', { nameservers: [] })),
          'ERR_STORE_BAD_ZONE',
        );
        await expectStoreError(
          store.addZone(zoneInit('1.e164.mimi.arpa', { keySeed: new Uint8Array(5) })),
          'ERR_STORE_BAD_ZONE',
        );
        await expectStoreError(
          store.addZone(zoneInit('1.e164.mimi.arpa', { minimum: -1 })),
          'ERR_STORE_BAD_ZONE',
        );
        await expectStoreError(
          store.addZone(
            zoneInit('1.e164.mimi.arpa', {
              authkeys: [{ role: 'csip', publicKey: new Uint8Array(31), notAfter: T0 }],
            }),
          ),
          'ERR_STORE_BAD_ZONE',
        );
        expect(store.listZones()).toEqual([ORIGIN]);
        await store.close();
      });

      it('removes a zone with everything in it', async () => {
        const { store } = await setup();
        await store.addZone(zoneInit());
        await store.apply(ORIGIN, [putMap(NUMBER)]);
        await store.removeZone(ORIGIN);
        expect(store.listZones()).toEqual([]);
        expect(store.findZone(NUMBER)).toBeUndefined();
        expect(store.zoneView(ORIGIN)).toBeUndefined();
        expect(store.zoneKey(ORIGIN)).toBeUndefined();
        await expectStoreError(() => store.readZone(ORIGIN), 'ERR_STORE_NO_ZONE');
        await expectStoreError(store.removeZone(ORIGIN), 'ERR_STORE_NO_ZONE');
        // The same origin can be created again, empty.
        await store.addZone(zoneInit());
        expect(store.readRRset(ORIGIN, NUMBER, 'MAP')).toEqual([]);
        await store.close();
      });
    });

    describe('generation', () => {
      it('changes with every write readers can see, and not for a failed or empty one', async () => {
        const { store, clock } = await setup();
        const seen = [store.generation()];
        const changed = (): boolean => {
          const now = store.generation();
          const differs = !seen.includes(now);
          seen.push(now);
          return differs;
        };
        await store.addZone(zoneInit());
        expect(changed()).toBe(true);
        await store.apply(ORIGIN, [putMap(NUMBER)]);
        expect(changed()).toBe(true);
        await expectStoreError(
          store.apply(ORIGIN, [putMap('example.com')]),
          'ERR_STORE_OUT_OF_ZONE',
        );
        expect(changed()).toBe(false);
        expect(await store.resign()).toBe(0);
        expect(changed()).toBe(false);
        clock.advance(8 * 86400);
        expect(await store.resign()).toBeGreaterThan(0);
        expect(changed()).toBe(true);
        await store.removeZone(ORIGIN);
        expect(changed()).toBe(true);
        await store.close();
      });
    });

    describe('changesSince', () => {
      it('names what each apply changed, and says everything for other writes', async () => {
        const { store, clock } = await setup();
        const start = store.generation();
        await store.addZone(zoneInit());
        expect(store.changesSince(start).names).toBe('all');
        const afterZone = store.generation();
        expect(store.changesSince(afterZone)).toEqual({ generation: afterZone, names: [] });

        await store.apply(ORIGIN, [putMap(NUMBER)]);
        const one = store.changesSince(afterZone);
        expect(one.generation).toBe(store.generation());
        expect([...(one.names as string[])].sort()).toEqual([NUMBER, ORIGIN].sort());
        const other = `9.${NUMBER}`;
        await store.apply(ORIGIN, [putMap(other)]);
        expect([...(store.changesSince(afterZone).names as string[])].sort()).toEqual(
          [NUMBER, ORIGIN, other].sort(),
        );
        // A delegation changes the referral of every name below it.
        const afterMaps = store.generation();
        await store.apply(ORIGIN, delegation(CHILD));
        expect(store.changesSince(afterMaps).names).toBe('all');
        expect(store.changesSince(afterZone).names).toBe('all');
        // Re-signing rewrites signatures everywhere.
        const afterDelegation = store.generation();
        clock.advance(8 * 86400);
        await store.resign();
        expect(store.changesSince(afterDelegation).names).toBe('all');
        // A generation the store never had, or one older than the log, is everything.
        expect(store.changesSince(store.generation() + 5).names).toBe('all');
        await store.close();
      });

      it(`keeps the last ${CHANGE_LOG_ENTRIES} writes`, async () => {
        const { store } = await setup();
        await store.addZone(zoneInit());
        const base = store.generation();
        await store.apply(ORIGIN, [putMap(NUMBER)]);
        expect(store.changesSince(base).names).not.toBe('all');
        // One write after another: each is a commit of its own, and a generation.
        for (let done = 0; done < CHANGE_LOG_ENTRIES; done += 1) {
          await store.apply(ORIGIN, [putMap(NUMBER, (done % 250) + 1)]);
        }
        expect(store.changesSince(base).names).toBe('all');
        expect(store.changesSince(base + 1).names).toEqual(
          expect.arrayContaining([NUMBER, ORIGIN]),
        );
        await store.close();
        // 4096 commits one after another: a durable store flushes each (PostgreSQL takes
        // minutes on a loaded machine).
      }, 300_000);
    });

    describe('apply', () => {
      it('stores a MAP RRset signed, bumps the serial, and serves it through lookupZone', async () => {
        const { store } = await setup();
        await store.addZone(zoneInit());
        const result = await store.apply(ORIGIN, [putMap(NUMBER, 5)]);
        expect(result.serial).toBe(2);
        expect(serialOf(store)).toBe(2);
        expect(store.readRRset(ORIGIN, NUMBER, 'MAP')).toEqual([mapRecord(NUMBER, 5)]);
        expect(verifiesAt(store, ORIGIN, NUMBER, 'MAP', T0)).toBe(true);
        expect(verifiesAt(store, ORIGIN, ORIGIN, 'SOA', T0)).toBe(true);

        const view = store.zoneView(ORIGIN);
        if (view === undefined) throw new Error('no view');
        const outcome = lookupZone(
          view,
          { name: NUMBER.toUpperCase(), type: 'MAP', class: 'IN' },
          { dnssecOk: true },
        );
        expect(outcome.kind).toBe('answer');
        // Every name between the apex and the MAP owner is an empty non-terminal.
        expect(view.hasDescendants(`2.${ORIGIN}`)).toBe(true);
        expect(view.hasDescendants(`0.1.0.0.6.4.9.7.0.2.${ORIGIN}`)).toBe(false);
        expect(view.hasDescendants(`3.${ORIGIN}`)).toBe(false);
        expect(view.hasDescendants(ORIGIN)).toBe(true);
        expect(view.hasDescendants(NUMBER)).toBe(false);
        expect(view.node(`2.${ORIGIN}`)).toBeUndefined();
        expect(
          lookupZone(view, { name: `2.${ORIGIN}`, type: 'MAP', class: 'IN' }, { dnssecOk: false })
            .kind,
        ).toBe('nodata');
        await store.close();
      });

      it('bumps the serial once per apply, however many RRsets change', async () => {
        const { store } = await setup();
        await store.addZone(zoneInit());
        const names = [1, 2, 3].map((d) => `${d}.${ORIGIN}`);
        const result = await store.apply(
          ORIGIN,
          names.map((n) => putMap(n)),
        );
        expect(result.serial).toBe(2);
        expect(
          (await store.apply(ORIGIN, [{ op: 'delete', name: names[0] as string, type: 'MAP' }]))
            .serial,
        ).toBe(3);
        // Deleting an RRset that is not there still counts as a write.
        expect(
          (await store.apply(ORIGIN, [{ op: 'delete', name: names[0] as string, type: 'MAP' }]))
            .serial,
        ).toBe(4);
        await store.close();
      });

      it('keeps names case-insensitively, drops duplicate records and gives an RRset one TTL', async () => {
        const { store } = await setup();
        await store.addZone(zoneInit());
        const upper = NUMBER.toUpperCase();
        await store.apply(ORIGIN, [
          {
            op: 'put',
            name: `${upper}.`,
            type: 'MAP',
            records: [mapRecord(upper, 1, 600), mapRecord(upper, 2, 300), mapRecord(upper, 1, 900)],
          },
        ]);
        const stored = store.readRRset(ORIGIN, NUMBER, 'MAP');
        expect(stored).toEqual([mapRecord(NUMBER, 1, 300), mapRecord(NUMBER, 2, 300)]);
        expect(store.readRRset(ORIGIN, upper, 'MAP')).toEqual(stored);
        expect(verifiesAt(store, ORIGIN, NUMBER, 'MAP', T0)).toBe(true);
        await store.close();
      });

      it('makes a MAP that was put and then deleted disappear, with its empty non-terminals', async () => {
        const { store } = await setup();
        await store.addZone(zoneInit());
        await store.apply(ORIGIN, [putMap(NUMBER)]);
        await store.apply(ORIGIN, [{ op: 'delete', name: NUMBER, type: 'MAP' }]);
        expect(store.readRRset(ORIGIN, NUMBER, 'MAP')).toEqual([]);
        const view = store.zoneView(ORIGIN);
        expect(view?.node(NUMBER)).toBeUndefined();
        expect(view?.hasDescendants(`2.${ORIGIN}`)).toBe(false);
        expect(view?.hasDescendants(ORIGIN)).toBe(false);
        expect(store.readZone(ORIGIN).some((rr) => rr.name === NUMBER)).toBe(false);
        await store.close();
      });

      it('signs a delegation DS but not its NS, glue or nameserver endpoint, and signs them again when the delegation goes', async () => {
        const { store } = await setup();
        await store.addZone(zoneInit());
        // Glue first (authoritative while there is no cut yet), then the cut above it.
        const [ns, ds, glue, svcb] = delegation(CHILD) as [
          RRsetChange,
          RRsetChange,
          RRsetChange,
          RRsetChange,
        ];
        await store.apply(ORIGIN, [glue, svcb]);
        expect(signatureOf(store, ORIGIN, `ns1.${CHILD}`, 'A')).toBeDefined();
        await store.apply(ORIGIN, [ns, ds]);
        expect(signatureOf(store, ORIGIN, CHILD, 'NS')).toBeUndefined();
        expect(verifiesAt(store, ORIGIN, CHILD, 'DS', T0)).toBe(true);
        expect(signatureOf(store, ORIGIN, `ns1.${CHILD}`, 'A')).toBeUndefined();
        expect(signatureOf(store, ORIGIN, `_dns.ns1.${CHILD}`, 'SVCB')).toBeUndefined();

        await store.apply(ORIGIN, [
          { op: 'delete', name: CHILD, type: 'DS' },
          { op: 'delete', name: CHILD, type: 'NS' },
        ]);
        expect(verifiesAt(store, ORIGIN, `ns1.${CHILD}`, 'A', T0)).toBe(true);
        expect(verifiesAt(store, ORIGIN, `_dns.ns1.${CHILD}`, 'SVCB', T0)).toBe(true);
        await store.close();
      });

      it('refuses bad changes and changes nothing', async () => {
        const { store } = await setup();
        await store.addZone(zoneInit());
        await store.apply(ORIGIN, [putMap(NUMBER)]);
        const before = recordsText(store.readZone(ORIGIN));
        const cases: Array<[string, readonly RRsetChange[], StoreErrorCode]> = [
          ['outside the zone', [putMap('example.com')], 'ERR_STORE_OUT_OF_ZONE'],
          ['a parent of the zone', [putMap('e164.mimi.arpa')], 'ERR_STORE_OUT_OF_ZONE'],
          [
            'an SOA',
            [
              {
                op: 'put',
                name: ORIGIN,
                type: 'SOA',
                records: store.readRRset(ORIGIN, ORIGIN, 'SOA'),
              },
            ],
            'ERR_STORE_BAD_CHANGE',
          ],
          [
            'a DNSKEY delete',
            [{ op: 'delete', name: ORIGIN, type: 'DNSKEY' }],
            'ERR_STORE_BAD_CHANGE',
          ],
          [
            'an RRSIG delete',
            [{ op: 'delete', name: NUMBER, type: 'RRSIG' }],
            'ERR_STORE_BAD_CHANGE',
          ],
          [
            'an NSEC delete',
            [{ op: 'delete', name: NUMBER, type: 'NSEC' }],
            'ERR_STORE_BAD_CHANGE',
          ],
          [
            'a record of another type',
            [{ op: 'put', name: NUMBER, type: 'MAPREF', records: [mapRecord(NUMBER, 1)] }],
            'ERR_STORE_BAD_CHANGE',
          ],
          [
            'a record of another owner',
            [{ op: 'put', name: NUMBER, type: 'MAP', records: [mapRecord(`9.${ORIGIN}`, 1)] }],
            'ERR_STORE_BAD_CHANGE',
          ],
          [
            'an empty put',
            [{ op: 'put', name: NUMBER, type: 'MAP', records: [] }],
            'ERR_STORE_BAD_CHANGE',
          ],
          [
            'a record that does not encode',
            [
              {
                op: 'put',
                name: `ns.${ORIGIN}`,
                type: 'A',
                records: [record(`ns.${ORIGIN}`, 'A', '300.1.2.3', 60)],
              },
            ],
            'ERR_STORE_BAD_CHANGE',
          ],
          ['a DS without NS', [delegation(CHILD)[1] as RRsetChange], 'ERR_STORE_BAD_CHANGE'],
          [
            'the apex NS deleted',
            [{ op: 'delete', name: ORIGIN, type: 'NS' }],
            'ERR_STORE_BAD_CHANGE',
          ],
          [
            'AUTHKEY below the apex',
            [
              {
                op: 'put',
                name: NUMBER,
                type: 'AUTHKEY',
                records: [
                  record(
                    NUMBER,
                    'AUTHKEY',
                    { role: 'csip', algorithm: 15, notAfter: T0, publicKey: new Uint8Array(32) },
                    60,
                  ),
                ],
              },
            ],
            'ERR_STORE_BAD_CHANGE',
          ],
          [
            'one RRset changed twice',
            [putMap(NUMBER, 1), putMap(NUMBER, 2)],
            'ERR_STORE_BAD_CHANGE',
          ],
          // A good change does not carry a bad one through.
          [
            'a good change with a bad one',
            [putMap(`9.${ORIGIN}`), putMap('example.com')],
            'ERR_STORE_OUT_OF_ZONE',
          ],
        ];
        for (const [what, changes, code] of cases) {
          await expectStoreError(store.apply(ORIGIN, changes), code).catch((error: unknown) => {
            throw new Error(`${what}: ${String(error)}`);
          });
        }
        await expectStoreError(
          store.apply('example.com', [putMap('example.com')]),
          'ERR_STORE_NO_ZONE',
        );
        expect(recordsText(store.readZone(ORIGIN))).toBe(before);
        expect(serialOf(store)).toBe(2);
        await store.close();
      });

      it('steps the serial once per group commit of concurrent applies and loses none of them', async () => {
        const { store } = await setup();
        await store.addZone(zoneInit());
        const count = 40;
        const names = Array.from(
          { length: count },
          (_, i) => `${i % 10}.${Math.floor(i / 10)}.${ORIGIN}`,
        );
        const results = await Promise.all(names.map((n, i) => store.apply(ORIGIN, [putMap(n, i)])));
        const serials = new Set(results.map((r) => r.serial));
        const last = Math.max(...serials);
        // Each serial is a commit's: the applies that share it share one step.
        expect(serialOf(store)).toBe(last);
        expect(serials.size).toBe(last - 1);
        expect(serials.size).toBeLessThan(count);
        const journal = await store.journalSince(ORIGIN, 1);
        expect(journal?.map((entry) => entry.to)).toEqual([...serials].sort((a, b) => a - b));
        names.forEach((n, i) =>
          expect(store.readRRset(ORIGIN, n, 'MAP')).toEqual([mapRecord(n, i)]),
        );
        await store.close();
      });

      it('lists every record in canonical order with each RRset followed by its RRSIG', async () => {
        const { store } = await setup();
        await store.addZone(zoneInit());
        await store.apply(ORIGIN, [
          putMap(`b.${ORIGIN}`),
          putMap(`a.${ORIGIN}`),
          putMap(`z.a.${ORIGIN}`),
        ]);
        const records = store.readZone(ORIGIN);
        const owners = [...new Set(records.map((rr) => rr.name))];
        expect(owners).toEqual([ORIGIN, `a.${ORIGIN}`, `z.a.${ORIGIN}`, `b.${ORIGIN}`]);
        const apexTypes = records
          .filter((rr) => rr.name === ORIGIN)
          .map((rr) => (rr.type === 'RRSIG' ? `RRSIG(${rr.data.typeCovered})` : rr.type));
        expect(apexTypes).toEqual([
          'NS',
          'NS',
          'RRSIG(NS)',
          'SOA',
          'RRSIG(SOA)',
          'DNSKEY',
          'RRSIG(DNSKEY)',
          'AUTHKEY',
          'RRSIG(AUTHKEY)',
        ]);
        await store.close();
      });
    });

    describe('signatures', () => {
      it('re-signs what is due, bumps the serial, and leaves fresh signatures alone', async () => {
        const { store, clock } = await setup();
        await store.addZone(zoneInit());
        await store.apply(ORIGIN, [putMap(NUMBER)]);
        expect(await store.resign()).toBe(0);
        expect(serialOf(store)).toBe(2);

        clock.advance(8 * 86400);
        const now = clock.now();
        // Apex SOA, NS, DNSKEY, AUTHKEY and the MAP.
        expect(await store.resign()).toBe(5);
        expect(serialOf(store)).toBe(3);
        for (const [name, type] of [
          [ORIGIN, 'SOA'],
          [ORIGIN, 'DNSKEY'],
          [NUMBER, 'MAP'],
        ] as const) {
          const expiration = signatureOf(store, ORIGIN, name, type)?.data.expiration ?? 0;
          expect(expiration).toBeLessThanOrEqual(now + 14 * 86400);
          expect(expiration).toBeGreaterThan(now + 10.5 * 86400);
          expect(verifiesAt(store, ORIGIN, name, type, now)).toBe(true);
        }
        expect(await store.resign()).toBe(0);
        expect(serialOf(store)).toBe(3);
        await store.close();
      });

      it('re-signs only the RRsets whose signatures expire before the given time', async () => {
        const { store, clock } = await setup();
        await store.addZone(zoneInit());
        clock.advance(5 * 86400);
        await store.apply(ORIGIN, [putMap(NUMBER)]);
        // The apex (but the SOA, signed at apply) expires by T0 + 14 d, the MAP after
        // T0 + 15.5 d (5 days later, less a jitter under 3.5 days).
        const map = signatureOf(store, ORIGIN, NUMBER, 'MAP')?.data.expiration ?? 0;
        expect(map).toBeGreaterThan(T0 + 15.5 * 86400);
        expect(await store.resign(T0 + 14 * 86400 + 1)).toBe(3);
        expect(signatureOf(store, ORIGIN, NUMBER, 'MAP')?.data.expiration).toBe(map);
        await store.close();
      });
    });

    describe('keys and lifecycle', () => {
      it('uses the configured prover key', async () => {
        const { store } = await setup();
        const again = await setup();
        expect(Buffer.from(store.proverKey().publicKey)).toEqual(
          Buffer.from(again.store.proverKey().publicKey),
        );
        const other = await setup({ proverSeed: new Uint8Array(32).fill(9) });
        expect(Buffer.from(other.store.proverKey().publicKey)).not.toEqual(
          Buffer.from(store.proverKey().publicKey),
        );
        await Promise.all([store.close(), again.store.close(), other.store.close()]);
      });

      it('fails every call after close', async () => {
        const { store } = await setup();
        await store.addZone(zoneInit());
        await store.close();
        await expectStoreError(() => store.listZones(), 'ERR_STORE_CLOSED');
        await expectStoreError(() => store.findZone(NUMBER), 'ERR_STORE_CLOSED');
        await expectStoreError(store.apply(ORIGIN, [putMap(NUMBER)]), 'ERR_STORE_CLOSED');
        await expectStoreError(store.addZone(zoneInit(CHILD)), 'ERR_STORE_CLOSED');
        await expectStoreError(store.resign(), 'ERR_STORE_CLOSED');
      });

      it('keeps zones, records, serials and keys across a reopen when it persists', async (context) => {
        const { store, reopen } = await setup();
        if (reopen === undefined) {
          context.skip();
          return;
        }
        // A random zone key this time: the reopened store must read it back.
        const init = zoneInit();
        delete init.keySeed;
        const info = await store.addZone(init);
        await store.apply(ORIGIN, [putMap(NUMBER, 3), ...delegation(CHILD)]);
        const records = recordsText(store.readZone(ORIGIN));
        const prover = Buffer.from(store.proverKey().publicKey);
        const again = await reopen();
        expect(again.listZones()).toEqual([ORIGIN]);
        expect(again.zoneInfo(ORIGIN)).toEqual({ ...info, serial: 2 });
        expect(recordsText(again.readZone(ORIGIN))).toBe(records);
        expect(Buffer.from(again.proverKey().publicKey)).toEqual(prover);
        expect(Buffer.from(again.zoneKey(ORIGIN)?.keyPair.publicKey ?? [])).toEqual(
          Buffer.from(info.publicKey),
        );
        expect((await again.apply(ORIGIN, [putMap(`9.${ORIGIN}`)])).serial).toBe(3);
        await again.close();
      });
    });
  });
}
