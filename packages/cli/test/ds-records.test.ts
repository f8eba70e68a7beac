import { describe, expect, it } from 'vitest';
import {
  DNSKEY_FLAG_REVOKE,
  computeKeyTag,
  createZoneKey,
  type DnskeyData,
  type ResourceRecord,
} from '@mimi-discovery/common';
import type { DiscoveryStore } from '@mimi-discovery/authoritative';
import { isEntryKey, zoneEntryDs } from '../src/ds-records.js';

/**
 * What `ds` and `trust-anchor` print during a key roll: the DS of every SEP key at the apex that
 * is not revoked (RFC 5011 §2.1), never a revoked key's nor a key without the SEP bit.
 */

const ZONE = 'mimi.arpa';
const seeded = (byte: number): DnskeyData =>
  createZoneKey(ZONE, { seed: new Uint8Array(32).fill(byte) }).dnskey;
const CURRENT = seeded(0x41);
const NEXT = seeded(0x42);
const REVOKED: DnskeyData = { ...seeded(0x43), flags: 257 | DNSKEY_FLAG_REVOKE };
const ZSK: DnskeyData = { ...seeded(0x44), flags: 256 };

/** A store whose apex DNSKEY RRset is `keys`. */
function storeWith(keys: readonly DnskeyData[]): Pick<DiscoveryStore, 'readRRset'> {
  return {
    readRRset: (zone, name, type): ResourceRecord[] =>
      zone === ZONE && name === ZONE && type === 'DNSKEY'
        ? keys.map((data) => ({ name: ZONE, type: 'DNSKEY', class: 'IN', ttl: 3600, data }))
        : [],
  };
}

describe('entry keys of a zone during a roll', () => {
  it('takes SEP keys without the REVOKE bit', () => {
    expect([CURRENT, NEXT, REVOKED, ZSK].map(isEntryKey)).toEqual([true, true, false, false]);
  });

  it('gives the DS of both keys of a roll, and none of the revoked one', () => {
    const ds = zoneEntryDs(storeWith([CURRENT, NEXT, REVOKED, ZSK]), ZONE);
    expect(ds.map((d) => d.keyTag)).toEqual([computeKeyTag(CURRENT), computeKeyTag(NEXT)]);
  });

  it('fails clearly for a zone with no such key', () => {
    expect(() => zoneEntryDs(storeWith([REVOKED]), ZONE)).toThrow(/no SEP DNSKEY/);
  });
});
