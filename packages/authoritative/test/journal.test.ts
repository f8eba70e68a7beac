import {
  NSEC3_PARAMETERS,
  createZoneKey,
  record,
  type RecordOf,
  type ResourceRecord,
  type RRType,
} from '@mimi-discovery/common';
import { describe, expect, it } from 'vitest';
import {
  JOURNAL_MAX_ENTRIES,
  JOURNAL_MAX_OCTETS,
  decodeJournalEntry,
  encodeJournalEntry,
  journalEntry,
  journalLimits,
  type JournalEntry,
} from '../src/index.js';
import type { StoredNode, StoredRRset, ZoneReader } from '../src/zone/zone-signer.js';
import { zoneSigner, DEFAULT_SIGNATURE_VALIDITY } from '../src/zone/zone-signer.js';
import { expectStoreError } from './store-battery.js';

// The journal's entries (`zone/journal.ts`): what one write changed, as IXFR sends it
// (RFC 1995 §4), and their encoding for tables.

const ORIGIN = 'example';
const T0 = 1767225600;
const sign = zoneSigner(
  createZoneKey(ORIGIN, { seed: new Uint8Array(32).fill(7) }),
  T0,
  DEFAULT_SIGNATURE_VALIDITY,
);

function soa(serial: number): RecordOf<'SOA'> {
  return record(
    ORIGIN,
    'SOA',
    {
      mname: 'ns.example',
      rname: 'h.example',
      serial,
      refresh: 1,
      retry: 2,
      expire: 3,
      minimum: 4,
    },
    60,
  );
}

/** A node of signed RRsets (or unsigned ones, `signed: false`). */
function node(rrsets: ResourceRecord[][], signed = true): StoredNode {
  return new Map(
    rrsets.map((rrset): [RRType, StoredRRset] => [
      (rrset[0] as ResourceRecord).type,
      { records: rrset, signatures: signed ? sign(rrset) : [] },
    ]),
  );
}

function reader(nodes: Record<string, StoredNode>): ZoneReader {
  return {
    origin: ORIGIN,
    node: (name) => nodes[name],
    namesBelow: () => [],
    nsec3: {
      first: () => undefined,
      last: () => undefined,
      lower: () => undefined,
      higher: () => undefined,
    },
  };
}

const label = (rr: ResourceRecord): string =>
  `${rr.name} ${rr.type === 'RRSIG' ? `RRSIG(${rr.data.typeCovered})` : rr.type} ${rr.ttl}`;

describe('journal entries', () => {
  it('hold exactly the records a write removed and added, each SOA first, the rest in canonical order', () => {
    const apex = node([[soa(7)], [record(ORIGIN, 'NS', 'ns.example', 60)]]);
    const txt = (name: string, text: string, ttl = 60): RecordOf<'TXT'> =>
      record(name, 'TXT', [Buffer.from(text)], ttl);
    const keep = node([[txt('b.example', 'same')]]);
    const before = reader({
      [ORIGIN]: apex,
      'a.example': node([[txt('a.example', 'x'), txt('a.example', 'y')]]),
      'b.example': keep,
      'z.a.example': node([[txt('z.a.example', 'gone')]]),
    });
    const apexAfter = new Map(apex).set('SOA', { records: [soa(8)], signatures: sign([soa(8)]) });
    const writes = new Map<string, StoredNode | undefined>([
      // A new TTL: every record of the RRset is deleted and added again.
      ['b.example', node([[txt('b.example', 'same', 30)]])],
      [ORIGIN, apexAfter],
      // One record replaced, one kept.
      ['a.example', node([[txt('a.example', 'x'), txt('a.example', 'w')]])],
      ['z.a.example', undefined],
    ]);
    const entry = journalEntry(before, writes);
    expect(entry?.from).toBe(7);
    expect(entry?.to).toBe(8);
    expect(entry?.deleted.map(label)).toEqual([
      'example SOA 60',
      'example RRSIG(SOA) 60',
      'a.example TXT 60',
      'a.example RRSIG(TXT) 60',
      'z.a.example TXT 60',
      'z.a.example RRSIG(TXT) 60',
      'b.example TXT 60',
      'b.example RRSIG(TXT) 60',
    ]);
    expect(entry?.deleted[2]).toEqual(txt('a.example', 'y'));
    expect(entry?.added.map(label)).toEqual([
      'example SOA 60',
      'example RRSIG(SOA) 60',
      'a.example TXT 60',
      'a.example RRSIG(TXT) 60',
      'b.example TXT 30',
      'b.example RRSIG(TXT) 30',
    ]);
    expect(entry?.added[2]).toEqual(txt('a.example', 'w'));
  });

  it('carry only the RRSIGs of an RRset that was signed again, and nothing for a write without a new serial', () => {
    const apex = node([[soa(1)]]);
    const records = [record('a.example', 'A', '192.0.2.1', 60)];
    const before = reader({ [ORIGIN]: apex, 'a.example': node([records], false) });
    const resigned = new Map<string, StoredNode | undefined>([
      [ORIGIN, node([[soa(2)]])],
      ['a.example', node([records])],
    ]);
    const entry = journalEntry(before, resigned);
    expect(entry?.deleted.map(label)).toEqual(['example SOA 60', 'example RRSIG(SOA) 60']);
    expect(entry?.added.map(label)).toEqual([
      'example SOA 60',
      'example RRSIG(SOA) 60',
      'a.example RRSIG(A) 60',
    ]);
    expect(journalEntry(before, new Map([['a.example', node([records])]]))).toBeUndefined();
  });

  it('encode and decode every record type the store keeps, names canonical', () => {
    const salt = Uint8Array.from(NSEC3_PARAMETERS.salt);
    const entry: JournalEntry = {
      from: 2 ** 32 - 1,
      to: 0,
      deleted: [soa(2 ** 32 - 1), ...sign([soa(2 ** 32 - 1)])],
      added: [
        soa(0),
        record('a\\.b.example', 'MAP', Uint8Array.of(0xa1, 0x61, 0x76, 1), 300),
        record('x.example', 'AAAA', '2001:db8::1', 60),
        record('x.example', 'NS', 'ns.x.example', 60),
        {
          name: '0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example',
          type: 'NSEC3',
          class: 'IN',
          ttl: 4,
          data: {
            ...NSEC3_PARAMETERS,
            salt,
            nextHashedOwner: new Uint8Array(20).fill(3),
            types: ['A', 'RRSIG'],
          },
        },
        {
          name: ORIGIN,
          type: 'NSEC3PARAM',
          class: 'IN',
          ttl: 4,
          data: { ...NSEC3_PARAMETERS, salt },
        },
      ],
    };
    const decoded = decodeJournalEntry(encodeJournalEntry(entry));
    expect(decoded).toEqual(entry);
  });

  it('refuse octets that are not an entry', async () => {
    const bytes = encodeJournalEntry({
      from: 1,
      to: 2,
      deleted: [soa(1)],
      added: [soa(2), record('a.example', 'A', '192.0.2.1', 60)],
    });
    const cases: Array<[string, Uint8Array]> = [
      ['empty', new Uint8Array()],
      ['another version', Uint8Array.from([2, ...bytes.subarray(1)])],
      ['truncated', bytes.subarray(0, bytes.length - 1)],
      ['trailing', Uint8Array.from([...bytes, 0])],
      ['a count too large', Uint8Array.from([...bytes.subarray(0, 16), 9, ...bytes.subarray(17)])],
    ];
    for (const [what, input] of cases) {
      await expectStoreError(() => decodeJournalEntry(input), 'ERR_STORE_CORRUPT').catch(
        (error: unknown) => {
          throw new Error(`${what}: ${String(error)}`);
        },
      );
    }
    // An entry must start with the SOAs.
    const noSoa = encodeJournalEntry({
      from: 1,
      to: 2,
      deleted: [record('a.example', 'A', '192.0.2.1', 60)],
      added: [soa(2)],
    });
    await expectStoreError(() => decodeJournalEntry(noSoa), 'ERR_STORE_CORRUPT');
  });

  it('are bounded by limits that default to the named constants and refuse nonsense', async () => {
    expect(journalLimits(undefined)).toEqual({
      maxEntries: JOURNAL_MAX_ENTRIES,
      maxOctets: JOURNAL_MAX_OCTETS,
    });
    expect(journalLimits({ maxEntries: 0 })).toEqual({
      maxEntries: 0,
      maxOctets: JOURNAL_MAX_OCTETS,
    });
    for (const bad of [{ maxEntries: -1 }, { maxOctets: 1.5 }, { maxOctets: Number.NaN }]) {
      await expectStoreError(() => journalLimits(bad), 'ERR_STORE_BAD_ZONE');
    }
  });
});
