import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  createZoneDigester,
  createZoneKey,
  decodeMessage,
  decodeRdata,
  encodeMessage,
  encodeRdata,
  formatRecord,
  formatZone,
  isSubdomain,
  parseZoneFile,
  record,
  responseFlags,
  signRRset,
  signZone,
  verifyZonemd,
  WireError,
  ZONEMD_HASH_SHA384,
  ZONEMD_HASH_SHA512,
  zoneDigest,
  ZoneError,
  zonemdPlaceholder,
  zonemdRecord,
  type RecordOf,
  type ResourceRecord,
} from '../src/index.js';

/**
 * RFC 8976 Appendix A, examples A.1–A.3, as corrected by the RFC's errata; the files name the
 * example they hold and how they differ in writing (generic RDATA for MX and PTR).
 */
const vector = (file: string): ResourceRecord[] =>
  parseZoneFile(readFileSync(join(import.meta.dirname, 'vectors', file), 'utf8'));

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

function apexZonemd(records: readonly ResourceRecord[], hashAlgorithm: number): string {
  const found = records.find(
    (rr): rr is RecordOf<'ZONEMD'> =>
      rr.type === 'ZONEMD' &&
      rr.name.toLowerCase().replace(/\.$/, '') === 'example' &&
      rr.data.scheme === 1 &&
      rr.data.hashAlgorithm === hashAlgorithm,
  );
  if (found === undefined) throw new Error('the vector has no such ZONEMD');
  return hex(found.data.digest);
}

describe('zoneDigest (RFC 8976 §3, Appendix A)', () => {
  it.each([
    ['rfc8976-a1.zone', ZONEMD_HASH_SHA384],
    ['rfc8976-a2.zone', ZONEMD_HASH_SHA384],
    ['rfc8976-a3.zone', ZONEMD_HASH_SHA384],
    ['rfc8976-a3.zone', ZONEMD_HASH_SHA512],
  ])('computes the digest %s states (hash algorithm %i)', (file, algorithm) => {
    const records = vector(file);
    expect(hex(zoneDigest('example', records, algorithm))).toBe(apexZonemd(records, algorithm));
  });

  it.each(['rfc8976-a1.zone', 'rfc8976-a2.zone', 'rfc8976-a3.zone'])(
    'verifies %s against its ZONEMD',
    (file) => {
      expect(verifyZonemd('example', vector(file)).kind).toBe('verified');
    },
  );

  it('does not depend on the order of the records', () => {
    const records = vector('rfc8976-a2.zone');
    const shuffled = [...records].reverse();
    expect(zoneDigest('example', shuffled)).toEqual(zoneDigest('example', records));
  });

  it('builds the apex ZONEMD record from the SOA serial and TTL', () => {
    const records = vector('rfc8976-a1.zone');
    const zonemd = zonemdRecord('example.', records);
    expect(zonemd.name).toBe('example');
    expect(zonemd.ttl).toBe(86400);
    expect(zonemd.data.serial).toBe(2018031900);
    expect(hex(zonemd.data.digest)).toBe(apexZonemd(records, ZONEMD_HASH_SHA384));
  });

  it('refuses a scheme or hash algorithm it cannot compute', () => {
    const records = vector('rfc8976-a1.zone');
    expect(() => zoneDigest('example', records, 240)).toThrow(ZoneError);
    expect(() => zoneDigest('example', records, ZONEMD_HASH_SHA384, 2)).toThrow(
      /scheme 2 with hash algorithm 1 is not supported/,
    );
  });
});

describe('createZoneDigester (one pass, RFC 8976 §3.3)', () => {
  /** The zone's records in canonical order of owners, as a store reads them. */
  const canonical = (records: readonly ResourceRecord[]): ResourceRecord[] =>
    parseZoneFile(
      formatZone(
        'example',
        records.filter((rr) => isSubdomain(rr.name, 'example')),
      ),
    );

  /** The digest of `records` fed to a digester `size` records at a time. */
  function inPieces(records: readonly ResourceRecord[], size: number, algorithm: number): string {
    const digester = createZoneDigester('example', algorithm);
    for (let i = 0; i < records.length; i += size) digester.update(records.slice(i, i + size));
    return hex(digester.digest());
  }

  it.each([
    ['rfc8976-a1.zone', ZONEMD_HASH_SHA384],
    ['rfc8976-a2.zone', ZONEMD_HASH_SHA384],
    ['rfc8976-a3.zone', ZONEMD_HASH_SHA512],
  ])('computes the digest %s states, fed in pieces of any size', (file, algorithm) => {
    const records = canonical(vector(file));
    for (const size of [1, 2, 3, 7, records.length]) {
      expect(inPieces(records, size, algorithm), `pieces of ${size}`).toBe(
        apexZonemd(records, algorithm),
      );
    }
  });

  it('orders the records of one owner itself, across pieces, duplicates once', () => {
    const records = canonical(vector('rfc8976-a1.zone'));
    const apex = records.filter((rr) => rr.name === 'example');
    const rest = records.filter((rr) => rr.name !== 'example');
    const digester = createZoneDigester('example');
    digester.update([...apex].reverse().slice(0, 2));
    digester.update([...apex].reverse().slice(2));
    digester.update([apex[1] as ResourceRecord, ...rest]);
    expect(hex(digester.digest())).toBe(apexZonemd(records, ZONEMD_HASH_SHA384));
  });

  it('refuses an owner that comes out of canonical order', () => {
    const digester = createZoneDigester('example');
    digester.update([record('b.example', 'A', '192.0.2.2', 60)]);
    expect(() => digester.update([record('a.example', 'A', '192.0.2.1', 60)])).toThrow(
      expect.objectContaining({ code: 'ERR_ZONE_ZONEMD' }),
    );
  });

  it('refuses a hash algorithm it cannot compute', () => {
    expect(() => createZoneDigester('example', 240)).toThrow(
      expect.objectContaining({ code: 'ERR_ZONE_ZONEMD' }),
    );
  });
});

describe('verifyZonemd (RFC 8976 §4)', () => {
  const simple = vector('rfc8976-a1.zone');

  it('fails a zone whose glue address was changed', () => {
    const tampered = simple.map((rr) =>
      rr.type === 'A' ? record(rr.name, 'A', '203.0.113.64', rr.ttl) : rr,
    );
    expect(verifyZonemd('example', tampered)).toEqual({
      kind: 'failed',
      reason: 'digest-mismatch',
    });
  });

  it('fails a zone with a record added, even out of the way', () => {
    const added = [...simple, record('zz.example', 'NS', 'ns.attacker.test', 3600)];
    expect(verifyZonemd('example', added)).toMatchObject({ reason: 'digest-mismatch' });
  });

  it('fails a zone with a record dropped', () => {
    expect(
      verifyZonemd(
        'example',
        simple.filter((rr) => rr.type !== 'AAAA'),
      ),
    ).toMatchObject({ reason: 'digest-mismatch' });
  });

  it('fails a zone whose TTL changed (the TTL is digested)', () => {
    const changed = simple.map((rr) => (rr.type === 'A' ? { ...rr, ttl: 60 } : rr));
    expect(verifyZonemd('example', changed)).toMatchObject({ reason: 'digest-mismatch' });
  });

  it('ignores duplicates, case and out-of-zone records', () => {
    const noisy = [
      ...simple,
      ...simple.filter((rr) => rr.type === 'NS'),
      record('ns1.EXAMPLE', 'A', '203.0.113.63', 3600),
      record('other.test', 'A', '192.0.2.1', 60),
    ];
    expect(verifyZonemd('example', noisy).kind).toBe('verified');
  });

  it('needs a ZONEMD of the SOA serial', () => {
    const bumped = simple.map((rr) =>
      rr.type === 'SOA' ? { ...rr, data: { ...rr.data, serial: rr.data.serial + 1 } } : rr,
    );
    expect(verifyZonemd('example', bumped)).toEqual({ kind: 'failed', reason: 'serial-mismatch' });
  });

  it('needs a ZONEMD, one SOA, and one ZONEMD per scheme and hash algorithm', () => {
    expect(
      verifyZonemd(
        'example',
        simple.filter((rr) => rr.type !== 'ZONEMD'),
      ),
    ).toMatchObject({ reason: 'no-zonemd' });
    expect(
      verifyZonemd(
        'example',
        simple.filter((rr) => rr.type !== 'SOA'),
      ),
    ).toMatchObject({ reason: 'no-soa' });
    const zonemd = simple.find((rr) => rr.type === 'ZONEMD') as RecordOf<'ZONEMD'>;
    const twice = [...simple, { ...zonemd, data: { ...zonemd.data, digest: new Uint8Array(48) } }];
    expect(verifyZonemd('example', twice)).toMatchObject({ reason: 'duplicate-zonemd' });
  });

  it('does not verify with a ZONEMD of an unknown scheme or hash algorithm alone', () => {
    const unknown = vector('rfc8976-a3.zone').filter(
      (rr) => rr.type !== 'ZONEMD' || rr.data.hashAlgorithm === 240 || rr.data.scheme === 241,
    );
    expect(verifyZonemd('example', unknown)).toEqual({ kind: 'failed', reason: 'unsupported' });
  });
});

describe('ZONEMD in a signed zone (RFC 8976 §3.3.1)', () => {
  const key = createZoneKey('example', { seed: new Uint8Array(32).fill(7) });
  const validity = { inception: 1_700_000_000, expiration: 1_800_000_000 };
  const base = vector('rfc8976-a1.zone').filter((rr) => rr.type !== 'ZONEMD');

  it('leaves the apex ZONEMD and its RRSIG out of the digest, and every other RRSIG in', () => {
    const signed = signZone(
      'example',
      [...base, zonemdPlaceholder('example', 86400)],
      key,
      validity,
    );
    const digest = zoneDigest('example', signed);
    const zonemd = signed.find((rr) => rr.type === 'ZONEMD') as RecordOf<'ZONEMD'>;
    const resigned = signed.map((rr) =>
      rr.type === 'RRSIG' && rr.data.typeCovered === 'ZONEMD'
        ? signRRset([zonemd], key, { ...validity, inception: validity.inception + 1 })
        : rr,
    );
    expect(zoneDigest('example', resigned)).toEqual(digest);
    const soaResigned = signed.map((rr) =>
      rr.type === 'RRSIG' && rr.data.typeCovered === 'SOA'
        ? signRRset(
            signed.filter((r) => r.type === 'SOA'),
            key,
            { ...validity, inception: validity.inception + 1 },
          )
        : rr,
    );
    expect(zoneDigest('example', soaResigned)).not.toEqual(digest);
  });

  it('signZone fills in the ZONEMD of a zone that has one, after signing everything else', () => {
    const signed = signZone(
      'example',
      [...base, zonemdPlaceholder('example', 86400)],
      key,
      validity,
    );
    expect(verifyZonemd('example', signed).kind).toBe('verified');
    const zonemd = signed.find((rr) => rr.type === 'ZONEMD') as RecordOf<'ZONEMD'>;
    expect(zonemd.data.serial).toBe(2018031900);
    expect(signed.some((rr) => rr.type === 'RRSIG' && rr.data.typeCovered === 'ZONEMD')).toBe(true);
    // A zone without one gets none.
    expect(signZone('example', base, key, validity).some((rr) => rr.type === 'ZONEMD')).toBe(false);
  });
});

describe('ZONEMD RDATA (RFC 8976 §2)', () => {
  const zonemd = record(
    'example',
    'ZONEMD',
    { serial: 7, scheme: 1, hashAlgorithm: 1, digest: new Uint8Array(48).fill(0xab) },
    300,
  );

  it('encodes as serial, scheme, hash algorithm and digest, and decodes back', () => {
    const rdata = encodeRdata(zonemd);
    expect(hex(rdata)).toBe(`00000007${'01'}${'01'}${'ab'.repeat(48)}`);
    expect(decodeRdata('ZONEMD', rdata)).toEqual(zonemd.data);
    const message = {
      id: 1,
      flags: responseFlags({ aa: true }),
      rcode: 'NOERROR' as const,
      questions: [{ name: 'example', type: 'ZONEMD' as const, class: 'IN' as const }],
      answers: [zonemd],
      authorities: [],
      additionals: [],
    };
    expect(decodeMessage(encodeMessage(message)).answers).toEqual([zonemd]);
  });

  it('writes and reads the presentation form of RFC 8976 §2.3', () => {
    const line = formatRecord(zonemd);
    expect(line).toBe(`example. 300 IN ZONEMD 7 1 1 ${'ab'.repeat(48)}`);
    expect(parseZoneFile(line)).toEqual([zonemd]);
  });

  it('refuses a digest shorter than 12 octets or not of the hash length', () => {
    const short = {
      ...zonemd,
      data: { ...zonemd.data, hashAlgorithm: 99, digest: new Uint8Array(11) },
    };
    expect(() => encodeRdata(short)).toThrow(WireError);
    expect(() =>
      decodeRdata('ZONEMD', Uint8Array.of(0, 0, 0, 7, 1, 1, ...new Uint8Array(47))),
    ).toThrow(/must be 48 octets, not 47/);
    expect(() => parseZoneFile('example. 300 IN ZONEMD 7 1 2 abcdabcdabcdabcdabcdabcd')).toThrow(
      /must be 64 octets/,
    );
  });
});
