import { describe, expect, it } from 'vitest';
import {
  buildNsec3Chain,
  DnssecError,
  encodeBase32Hex,
  NSEC3_PARAMETERS,
  nsec3Hash,
  type RecordOf,
  type ResourceRecord,
  record,
} from '../src/index.js';

const SALT = Uint8Array.of(0xaa, 0xbb, 0xcc, 0xdd);

// RFC 5155 Appendix A: salt aabbccdd, 12 additional iterations (confirmed with ldns-nsec3-hash).
const RFC5155_HASHES = [
  ['example', '0p9mhaveqvm6t7vbl5lop2u3t2rp3tom'],
  ['a.example', '35mthgpgcu1qg68fab165klnsnk3dpvl'],
  ['ai.example', 'gjeqe526plbf1g8mklp59enfd789njgi'],
  ['ns1.example', '2t7b4g4vsa5smi47k61mv5bv1a22bojr'],
  ['ns2.example', 'q04jkcevqvmu85r014c7dkba38o0ji5r'],
  ['w.example', 'k8udemvp1j2f7eg6jebps17vp3n8i58h'],
  ['*.w.example', 'r53bq7cc2uvmubfu5ocmm6pers9tk9en'],
  ['x.w.example', 'b4um86eghhds6nea196smvmlo4ors995'],
  ['y.w.example', 'ji6neoaepv8b5o6k4ev33abha8ht9fgc'],
  ['x.y.w.example', '2vptu5timamqttgl4luu9kg21e0aor3s'],
  ['xx.example', 't644ebqk9bibcna874givr6joj62mlhv'],
] as const;

describe('nsec3Hash (RFC 5155 §5)', () => {
  it.each(RFC5155_HASHES)('hashes %s as in RFC 5155 Appendix A', (name, hash) => {
    expect(encodeBase32Hex(nsec3Hash(name, SALT, 12))).toBe(hash);
  });

  it('hashes the canonical (lowercase) name', () => {
    expect(nsec3Hash('X.W.Example.', SALT, 12)).toEqual(nsec3Hash('x.w.example', SALT, 12));
  });

  it('uses the RFC 9276 parameters: SHA-1, no extra iterations, empty salt', () => {
    expect(NSEC3_PARAMETERS).toEqual({
      hashAlgorithm: 1,
      flags: 0,
      iterations: 0,
      salt: new Uint8Array(0),
    });
    // `ldns-nsec3-hash -t 0 example.` (ldns 1.8.3)
    const hash = nsec3Hash('example', NSEC3_PARAMETERS.salt, NSEC3_PARAMETERS.iterations);
    expect(encodeBase32Hex(hash)).toBe('3msev9usmd4br9s97v51r2tdvmr9iqo1');
  });

  it('refuses iterations outside 0..65535', () => {
    expect(() => nsec3Hash('example', SALT, -1)).toThrow(DnssecError);
    expect(() => nsec3Hash('example', SALT, 65536)).toThrow(DnssecError);
  });
});

function rr<T extends ResourceRecord['type']>(
  name: string,
  type: T,
  data: RecordOf<T>['data'],
): ResourceRecord {
  return record(name, type, data, 3600);
}

describe('buildNsec3Chain', () => {
  const soa = {
    mname: 'ns1.example',
    rname: 'hostmaster.example',
    serial: 1,
    refresh: 7200,
    retry: 900,
    expire: 1209600,
    minimum: 300,
  };
  const ds = { keyTag: 1, algorithm: 15, digestType: 2, digest: new Uint8Array(32) };
  const records: ResourceRecord[] = [
    rr('example', 'SOA', soa),
    rr('example', 'NS', 'ns1.example'),
    rr('ns1.example', 'A', '192.0.2.1'),
    rr('a.b.example', 'MAP', Uint8Array.of(1, 2, 3)),
    rr('sub.example', 'NS', 'ns.sub.example'),
    rr('sub.example', 'DS', ds),
    rr('ns.sub.example', 'A', '192.0.2.2'),
    rr('deep.ns.sub.example', 'A', '192.0.2.3'),
    rr('x.y.unsigned.example', 'NS', 'ns.elsewhere'),
    rr('example', 'RRSIG', {
      typeCovered: 'SOA',
      algorithm: 15,
      labels: 1,
      originalTtl: 3600,
      expiration: 2,
      inception: 1,
      keyTag: 1,
      signerName: 'example',
      signature: new Uint8Array(64),
    }),
  ];
  const chain = buildNsec3Chain('Example.', records, 300);
  const nsec3 = chain.filter((r): r is RecordOf<'NSEC3'> => r.type === 'NSEC3');
  const byName = new Map(nsec3.map((r) => [r.name, r.data.types] as const));
  const typesOf = (name: string) =>
    byName.get(`${encodeBase32Hex(nsec3Hash(name, new Uint8Array(0), 0))}.example`);

  it('covers authoritative names, delegations and empty non-terminals, not glue', () => {
    expect(nsec3).toHaveLength(8);
    expect(typesOf('example')).toEqual(['NS', 'SOA', 'RRSIG', 'NSEC3PARAM']);
    expect(typesOf('ns1.example')).toEqual(['A', 'RRSIG']);
    expect(typesOf('b.example')).toEqual([]);
    expect(typesOf('a.b.example')).toEqual(['RRSIG', 'MAP']);
    expect(typesOf('sub.example')).toEqual(['NS', 'DS', 'RRSIG']);
    expect(typesOf('x.y.unsigned.example')).toEqual(['NS']);
    expect(typesOf('y.unsigned.example')).toEqual([]);
    expect(typesOf('unsigned.example')).toEqual([]);
    expect(typesOf('ns.sub.example')).toBeUndefined();
    expect(typesOf('deep.ns.sub.example')).toBeUndefined();
  });

  it('links the records in hash order into a cycle', () => {
    const owners = nsec3.map((r) => r.name.split('.')[0] as string);
    expect([...owners].sort()).toEqual(owners);
    nsec3.forEach((r, i) => {
      const next = nsec3[(i + 1) % nsec3.length] as RecordOf<'NSEC3'>;
      expect(encodeBase32Hex(r.data.nextHashedOwner)).toBe(next.name.split('.')[0]);
      expect(r).toMatchObject({ class: 'IN', ttl: 300 });
      expect(r.data).toMatchObject({ hashAlgorithm: 1, flags: 0, iterations: 0 });
      expect(r.data.salt).toHaveLength(0);
    });
  });

  it('ends with the NSEC3PARAM at the apex', () => {
    expect(chain.at(-1)).toEqual({
      name: 'example',
      type: 'NSEC3PARAM',
      class: 'IN',
      ttl: 300,
      data: { hashAlgorithm: 1, flags: 0, iterations: 0, salt: new Uint8Array(0) },
    });
  });

  it('refuses records outside the zone', () => {
    expect(() => buildNsec3Chain('example', [rr('example.net', 'A', '192.0.2.1')], 300)).toThrow(
      DnssecError,
    );
  });
});
