import { record, type RecordOf } from '@mimi-discovery/common';
import { describe, expect, it } from 'vitest';
import {
  MAPPING_EXPIRY_MEMO_OCTETS,
  MappingExpiries,
  currentMappings,
  mappingExpiry,
} from '../src/index.js';
import { mapRecords, mappingRdata } from './expiring-mappings.js';
import { NUMBER, T0, mapRecord } from './store-battery.js';

describe('mappingExpiry', () => {
  it('is the mapping’s exp or its attestation’s, whichever comes first', () => {
    expect(mappingExpiry(mappingRdata({ key: 1, exp: T0 + 10, attExp: T0 + 20 }))).toBe(T0 + 10);
    expect(mappingExpiry(mappingRdata({ key: 1, exp: T0 + 30, attExp: T0 + 20 }))).toBe(T0 + 20);
  });

  it('gives octets that are not a mapping no expiry', () => {
    expect(mappingExpiry(Uint8Array.of(0xa1, 0x61, 0x76, 0x01))).toBe(Number.POSITIVE_INFINITY);
    expect(mappingExpiry(new Uint8Array(0))).toBe(Number.POSITIVE_INFINITY);
    // A mapping with one octet changed no longer decodes strictly.
    const bytes = mappingRdata({ key: 1, exp: T0 + 10 });
    expect(mappingExpiry(Uint8Array.of(...bytes, 0))).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('MappingExpiries', () => {
  it('answers as mappingExpiry does, for copies of the same octets too', () => {
    const memo = new MappingExpiries();
    const bytes = mappingRdata({ key: 2, exp: T0 + 50 });
    expect(memo.of(bytes)).toBe(T0 + 50);
    expect(memo.of(Uint8Array.from(bytes))).toBe(T0 + 50);
    // A view into a larger buffer is keyed by its own octets only.
    const framed = new Uint8Array(bytes.length + 8);
    framed.set(bytes, 4);
    expect(memo.of(framed.subarray(4, 4 + bytes.length))).toBe(T0 + 50);
    expect(memo.size).toBe(1);
    expect(memo.of(Uint8Array.of(0xa1, 0x61, 0x76, 0x02))).toBe(Number.POSITIVE_INFINITY);
    expect(memo.size).toBe(2);
  });

  it(`remembers at most its bound in octets (default ${MAPPING_EXPIRY_MEMO_OCTETS}), the most recently used first`, () => {
    const rdata = [1, 2, 3, 4].map((key) => mappingRdata({ key, exp: T0 + key }));
    // Room for three of these mappings (plus overhead), not four.
    const bound = 3 * (rdata[0]!.length + 64) + 10;
    const memo = new MappingExpiries(bound);
    for (const bytes of rdata) memo.of(bytes);
    expect(memo.size).toBe(3);
    expect(memo.octets).toBeLessThanOrEqual(bound);
    expect(rdata.map((bytes) => memo.of(bytes))).toEqual([T0 + 1, T0 + 2, T0 + 3, T0 + 4]);
    expect(memo.size).toBe(3);
    // A large RDATA takes the room of several small ones.
    const large = Uint8Array.from({ length: 3 * rdata[0]!.length }, (_, i) => i & 0xff);
    expect(memo.of(large)).toBe(Number.POSITIVE_INFINITY);
    expect(memo.size).toBe(1);
    expect(memo.octets).toBeLessThanOrEqual(bound);
    expect(MAPPING_EXPIRY_MEMO_OCTETS).toBe(4 * 2 ** 20);
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses a bound of %s', (bound) => {
    expect(() => new MappingExpiries(bound)).toThrow(RangeError);
  });
});

describe('currentMappings', () => {
  // The worked example of map-expiry.ts: A expires at 1000, B at 2000 (by its attestation).
  const rrset = mapRecords([
    { key: 1, exp: 1000 },
    { key: 2, exp: 3000, attExp: 2000 },
  ]);
  const [a, b] = rrset as [RecordOf<'MAP'>, RecordOf<'MAP'>];

  it.each([
    [999, [a, b], 0, 1000],
    [1000, [b], 1, 2000],
    [1999, [b], 1, 2000],
    [2000, [], 2, Number.POSITIVE_INFINITY],
  ])('at %i keeps the current ones', (now, kept, removed, earliest) => {
    const current = currentMappings(rrset, now, mappingExpiry);
    expect(current.records).toEqual(kept);
    expect(current.removed).toBe(removed);
    expect(current.earliest).toBe(earliest);
  });

  it('returns the stored RRset itself while nothing has expired', () => {
    expect(currentMappings(rrset, 0, mappingExpiry).records).toBe(rrset);
  });

  it('keeps records that are not mappings, and records of other types', () => {
    const opaque = mapRecord(NUMBER, 7);
    const other = record(NUMBER, 'TXT', [Uint8Array.of(0x78)], 300);
    const current = currentMappings([opaque, a, other], 1500, mappingExpiry);
    expect(current.records).toEqual([opaque, other]);
    expect(current.earliest).toBe(Number.POSITIVE_INFINITY);
  });
});
