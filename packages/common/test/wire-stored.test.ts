import { describe, expect, it } from 'vitest';
import { record, responseFlags } from '../src/protocol/records.js';
import type { Message, ResourceRecord } from '../src/protocol/records.js';
import {
  decodeMessage,
  decodeRdata,
  encodeMessage,
  encodeRdata,
  encodeRecord,
  keepStoredRdata,
} from '../src/protocol/wire.js';

// Records read from a store's wire form go into responses as their stored octets, and a
// message repeats an owner name as one pointer: both must give exactly the octets the encoder
// gave before, and the stored octets must be used only where they are those octets.

const OWNER = '8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa';
const ZONE = '4.4.e164.mimi.arpa';

function response(answers: ResourceRecord[], authorities: ResourceRecord[] = []): Message {
  return {
    id: 7,
    flags: { ...responseFlags(), aa: true },
    rcode: 'NOERROR',
    questions: [{ name: OWNER, type: 'MAP', class: 'IN' }],
    answers,
    authorities,
    additionals: [],
    edns: { udpPayloadSize: 1232, extendedRcode: 0, version: 0, dnssecOk: true, options: [] },
  };
}

/** `rr` as a store gives it back: decoded from its RDATA octets, which it keeps. */
function stored(rr: ResourceRecord): ResourceRecord {
  const rdata = encodeRdata(rr);
  return keepStoredRdata({ ...rr, data: decodeRdata(rr.type, rdata) } as ResourceRecord, rdata);
}

const RECORDS: ResourceRecord[] = [
  record(OWNER, 'MAP', Uint8Array.of(0xa1, 0x61, 0x76, 1), 300),
  record(OWNER, 'MAP', Uint8Array.of(0xa1, 0x61, 0x76, 2), 300),
  record(
    OWNER,
    'RRSIG',
    {
      typeCovered: 'MAP',
      algorithm: 15,
      labels: 12,
      originalTtl: 300,
      expiration: 1_900_000_000,
      inception: 1_800_000_000,
      keyTag: 4242,
      signerName: '4.4.E164.mimi.arpa',
      signature: new Uint8Array(64).fill(3),
    },
    300,
  ),
];
const SOA = record(
  ZONE,
  'SOA',
  {
    mname: `ns1.${ZONE}`,
    rname: `hostmaster.${ZONE}`,
    serial: 5,
    refresh: 3600,
    retry: 600,
    expire: 86400,
    minimum: 300,
  },
  3600,
);
const NS = record(ZONE, 'NS', `ns1.${ZONE}`, 3600);

describe('records kept in wire form', () => {
  it('encode to the same octets as records built from their data', () => {
    const plain = encodeMessage(response(RECORDS, [SOA, NS]));
    const kept = encodeMessage(response(RECORDS.map(stored), [SOA, NS].map(stored)));
    expect(Buffer.from(kept).toString('hex')).toBe(Buffer.from(plain).toString('hex'));
    expect(decodeMessage(kept).answers).toEqual(RECORDS);
  });

  it('are copied as kept, where the encoding would be the same octets', () => {
    // A record whose kept octets differ from its data shows which of the two was written.
    const map = record(OWNER, 'MAP', Uint8Array.of(0xa1, 0x61, 0x76, 1), 300);
    const marked = keepStoredRdata({ ...map }, Uint8Array.of(0xa1, 0x61, 0x76, 9));
    expect(decodeMessage(encodeMessage(response([marked]))).answers[0]?.data).toEqual(
      Uint8Array.of(0xa1, 0x61, 0x76, 9),
    );
    // A copy with other fields carries none, and is encoded from its data.
    expect(decodeMessage(encodeMessage(response([{ ...marked, ttl: 5 }]))).answers[0]).toEqual({
      ...map,
      ttl: 5,
    });
  });

  it('are encoded from their data where the octets would differ', () => {
    // The canonical form (RFC 4034 §6.2) lowercases the RRSIG signer; the kept octets do not.
    const rrsig = RECORDS[2] as ResourceRecord;
    expect(encodeRecord(stored(rrsig), { canonical: true })).toEqual(
      encodeRecord(rrsig, { canonical: true }),
    );
    // The names in NS and SOA RDATA are compressed in a message (RFC 1035 §4.1.4).
    const ns = keepStoredRdata({ ...NS }, encodeRdata(record(ZONE, 'NS', `ns9.${ZONE}`, 3600)));
    const soa = keepStoredRdata(
      { ...SOA },
      encodeRdata({ ...SOA, data: { ...SOA.data, serial: 9 } }),
    );
    const decoded = decodeMessage(encodeMessage(response([], [soa, ns])));
    expect(decoded.authorities).toEqual([SOA, NS]);
  });
});

describe('owner names repeated in a message', () => {
  it('refuse a name that is missing, as every name does', () => {
    const missing = { ...RECORDS[0], name: undefined } as unknown as ResourceRecord;
    expect(() => encodeMessage(response([missing]))).toThrow(/domain name must be a string/);
    const question = {
      ...response([]),
      questions: [{ name: undefined, type: 'MAP', class: 'IN' }],
    };
    expect(() => encodeMessage(question as unknown as Message)).toThrow(
      /domain name must be a string/,
    );
  });

  it('point at where a name was written whole, when it was last written as a pointer', () => {
    // A, B, then A again (a pointer found through the suffix table), then A once more: a pointer
    // to A's own octets, not to the pointer before it.
    const a = `a.${ZONE}`;
    const b = 'b.example';
    const rrs: ResourceRecord[] = [a, b, a, a].map((name, i) =>
      record(name, 'MAP', Uint8Array.of(i), 60),
    );
    const octets = encodeMessage(response(rrs));
    expect(decodeMessage(octets).answers).toEqual(rrs);
    const first = 12 + OWNER.length + 2 + 4;
    // `a.` then a pointer to the zone's name inside the question's: 4 octets.
    const second = first + 4 + 11;
    const third = second + b.length + 2 + 11;
    const fourth = third + 2 + 11;
    expect(octets[first]).toBe(1);
    expect([octets[third], octets[third + 1]]).toEqual([0xc0, first]);
    expect([octets[fourth], octets[fourth + 1]]).toEqual([0xc0, first]);
  });

  it('are written whole again past the reach of a pointer (offset 0x3fff)', () => {
    // Records of 1,000 octets of RDATA push the next owners past 16 KiB.
    const big = Array.from({ length: 17 }, (_, i) =>
      record(`n${i}.example`, 'MAP', new Uint8Array(1000).fill(i + 1), 60),
    );
    const late = 'late.test';
    const rrs = [
      ...big,
      record(late, 'MAP', Uint8Array.of(1), 60),
      record(late, 'MAP', Uint8Array.of(2), 60),
    ];
    const octets = encodeMessage(response(rrs));
    expect(decodeMessage(octets).answers).toEqual(rrs);
    // `late.test` is written whole twice: no pointer can reach the first.
    const whole = Buffer.from([4, ...Buffer.from('late'), 4, ...Buffer.from('test'), 0]);
    expect(Buffer.from(octets).indexOf(whole)).toBeGreaterThan(0x3fff);
    const firstAt = Buffer.from(octets).indexOf(whole);
    expect(Buffer.from(octets).indexOf(whole, firstAt + 1)).toBeGreaterThan(firstAt);
  });

  it('are written once, then as a pointer to the first', () => {
    const octets = encodeMessage(response(RECORDS));
    // The question's name at offset 12; every answer's owner is a pointer to it (0xc00c).
    let at = 12 + OWNER.length + 2 + 4;
    for (const rr of RECORDS) {
      expect([octets[at], octets[at + 1]]).toEqual([0xc0, 12]);
      at += 2 + 10 + encodeRdata(rr).length;
    }
    expect(at).toBe(octets.length - 11);
    expect(decodeMessage(octets).answers).toEqual(RECORDS);
  });

  it('point at the name itself, not at a pointer, and never replace the root', () => {
    const other = 'x.example';
    const rrs: ResourceRecord[] = [
      record(OWNER, 'MAP', Uint8Array.of(1), 60),
      record(other, 'MAP', Uint8Array.of(2), 60),
      record(other, 'MAP', Uint8Array.of(3), 60),
      record('.', 'MAP', Uint8Array.of(4), 60),
      record('.', 'MAP', Uint8Array.of(5), 60),
    ];
    const octets = encodeMessage(response(rrs));
    expect(decodeMessage(octets).answers).toEqual(rrs);
    // The question's name, then: a pointer to it (13 octets with type, class, TTL and one octet
    // of RDATA); `x.example` written whole (11 + 11); a pointer to it, not to a pointer
    // (2 + 11); the root as its one octet, twice.
    const question = 12;
    const second = question + OWNER.length + 2 + 4 + 13;
    const third = second + 11 + 11;
    expect([
      octets[question + OWNER.length + 2 + 4],
      octets[question + OWNER.length + 2 + 5],
    ]).toEqual([0xc0, 12]);
    expect(octets[second]).toBe(1);
    expect([octets[third], octets[third + 1]]).toEqual([0xc0, second]);
    expect(octets[third + 13]).toBe(0);
    expect(octets[third + 13 + 12]).toBe(0);
    expect(octets.length).toBe(third + 13 + 12 + 12 + 11);
  });
});
