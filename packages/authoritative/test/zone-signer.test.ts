import { createZoneKey, record, type RecordOf } from '@mimi-discovery/common';
import { describe, expect, it } from 'vitest';
import { normalizeChanges } from '../src/zone/zone-changes.js';
import {
  countingSigner,
  isAuthoritative,
  planApply,
  planChanges,
  planResign,
  planSerial,
  zoneOverlay,
  zoneSigner,
  DEFAULT_SIGNATURE_VALIDITY,
  type StoredNode,
  type ZoneReader,
} from '../src/zone/zone-signer.js';

const ORIGIN = 'example';
const T0 = 1767225600;
const key = createZoneKey(ORIGIN, { seed: new Uint8Array(32).fill(7) });
const sign = zoneSigner(key, T0, DEFAULT_SIGNATURE_VALIDITY);

function zone(serial: number, extra: Record<string, StoredNode> = {}): ZoneReader {
  const soa = record(
    ORIGIN,
    'SOA',
    {
      mname: 'ns.example',
      rname: 'h.example',
      serial,
      refresh: 1,
      retry: 1,
      expire: 1,
      minimum: 1,
    },
    60,
  );
  const nodes = new Map<string, StoredNode>([
    [
      ORIGIN,
      new Map([
        ['SOA', { records: [soa], signatures: [] }],
        ['NS', { records: [record(ORIGIN, 'NS', 'ns.example', 60)], signatures: [] }],
      ]),
    ],
    ...Object.entries(extra),
  ]);
  return {
    origin: ORIGIN,
    node: (name) => nodes.get(name),
    namesBelow: (name) => [...nodes.keys()].filter((n) => n !== name && n.endsWith(`.${name}`)),
    nsec3: NO_CHAIN,
  };
}

/** The chain index of a zone without an NSEC3 chain. */
const NO_CHAIN = {
  first: () => undefined,
  last: () => undefined,
  lower: () => undefined,
  higher: () => undefined,
};

const soaSerial = (node: StoredNode | undefined): number =>
  (node?.get('SOA')?.records[0] as RecordOf<'SOA'>).data.serial;

describe('the zone signer', () => {
  it('increases the serial by one, wrapping from 2^32 - 1 to 0 (RFC 1982 §3.1)', () => {
    const change = normalizeChanges(ORIGIN, [
      {
        op: 'put',
        name: 'a.example',
        type: 'TXT',
        records: [record('a.example', 'TXT', [Uint8Array.of(0x61)], 60)],
      },
    ]);
    expect(planApply(zone(41), change, sign).serial).toBe(42);
    const wrapped = planApply(zone(2 ** 32 - 1), change, sign);
    expect(wrapped.serial).toBe(0);
    expect(soaSerial(wrapped.writes.get(ORIGIN))).toBe(0);
  });

  it('plans a group of applies over each other and completes them with one serial step and one SOA signature', () => {
    const put = (name: string, text: string) =>
      normalizeChanges(ORIGIN, [
        {
          op: 'put',
          name,
          type: 'TXT',
          records: [record(name, 'TXT', [Buffer.from(text)], 60)],
        },
      ]);
    const counts = { soaSignatures: 0 };
    const counted = countingSigner(sign, counts);
    const base = zone(41);
    const overlay = zoneOverlay(base);
    overlay.merge(planChanges(overlay, put('a.example', 'one'), counted));
    overlay.merge(planChanges(overlay, put('b.example', 'two'), counted));
    // The second apply of the same name sees the first: it replaces it.
    overlay.merge(planChanges(overlay, put('a.example', 'three'), counted));
    expect(counts.soaSignatures).toBe(0);
    expect(base.node('a.example')).toBeUndefined();
    const { writes, serial } = planSerial(base, overlay.writes, counted);
    expect(serial).toBe(42);
    expect(counts.soaSignatures).toBe(1);
    expect(soaSerial(writes.get(ORIGIN))).toBe(42);
    const text = (name: string): string =>
      Buffer.from(
        (writes.get(name)?.get('TXT')?.records[0] as RecordOf<'TXT'>).data[0] as Uint8Array,
      ).toString();
    expect([text('a.example'), text('b.example')]).toEqual(['three', 'two']);
    // The same as one apply of both changes.
    const once = planApply(base, [...put('a.example', 'three'), ...put('b.example', 'two')], sign);
    expect([...writes.keys()].sort()).toEqual([...once.writes.keys()].sort());
  });

  it('treats the NS and everything below a delegation as not authoritative, but its DS as authoritative', () => {
    const cut: StoredNode = new Map([
      ['NS', { records: [record('sub.example', 'NS', 'ns.sub.example', 60)], signatures: [] }],
    ]);
    const reader = zone(1, { 'sub.example': cut });
    expect(isAuthoritative(reader, 'sub.example', 'NS')).toBe(false);
    expect(isAuthoritative(reader, 'sub.example', 'DS')).toBe(true);
    expect(isAuthoritative(reader, 'ns.sub.example', 'A')).toBe(false);
    expect(isAuthoritative(reader, 'deep.ns.sub.example', 'DS')).toBe(false);
    expect(isAuthoritative(reader, ORIGIN, 'NS')).toBe(true);
    expect(isAuthoritative(reader, 'other.example', 'MAP')).toBe(true);
  });

  it('signs an authoritative RRset found unsigned, and changes nothing when no signature is due', () => {
    const signed = planApply(zone(5), [], sign);
    const apex = signed.writes.get(ORIGIN) as StoredNode;
    const reader: ZoneReader = { ...zone(6), node: (name) => (name === ORIGIN ? apex : undefined) };
    const plan = planResign(reader, [ORIGIN], T0, sign);
    // The NS was never signed in this hand-made zone: found and signed; the SOA is fresh.
    expect(plan.count).toBe(1);
    expect(plan.serial).toBe(7);
    const none = planResign(
      { ...reader, node: (name) => plan.writes.get(name) },
      [ORIGIN],
      T0,
      sign,
    );
    expect(none).toEqual({ writes: new Map(), count: 0, serial: undefined, done: 1 });
  });
});
