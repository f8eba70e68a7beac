import { describe, expect, it } from 'vitest';
import {
  createZoneKey,
  DnssecError,
  dnskeyRecord,
  signZone,
  verifyRRset,
  ZoneError,
  type RecordOf,
  type ResourceRecord,
  record,
} from '../src/index.js';

const rr = <T extends ResourceRecord['type']>(
  name: string,
  type: T,
  data: RecordOf<T>['data'],
  ttl = 3600,
): ResourceRecord => record(name, type, data, ttl);

const key = createZoneKey('example', { seed: new Uint8Array(32).fill(12) });
const WINDOW = { inception: 1_700_000_000, expiration: 1_700_000_000 + 14 * 86_400 };
const NOW = WINDOW.inception + 60;
const soa = {
  mname: 'ns1.example',
  rname: 'hostmaster.example',
  serial: 7,
  refresh: 7200,
  retry: 900,
  expire: 1209600,
  minimum: 300,
};
const ds = { keyTag: 1, algorithm: 15, digestType: 2, digest: new Uint8Array(32) };
const zone: ResourceRecord[] = [
  rr('www.example', 'A', '192.0.2.80', 600),
  rr('www.example', 'A', '192.0.2.81', 300),
  rr('www.example', 'A', '192.0.2.80', 600),
  rr('example', 'SOA', soa),
  rr('example', 'NS', 'ns1.example'),
  rr('ns1.example', 'A', '192.0.2.1'),
  rr('sub.example', 'NS', 'ns.sub.example'),
  rr('sub.example', 'DS', ds),
  rr('ns.sub.example', 'A', '192.0.2.2'),
];

function rrsets(records: readonly ResourceRecord[]): Map<string, ResourceRecord[]> {
  const out = new Map<string, ResourceRecord[]>();
  for (const r of records) {
    if (r.type === 'RRSIG') continue;
    const id = `${r.name} ${r.type}`;
    out.set(id, [...(out.get(id) ?? []), r]);
  }
  return out;
}

function signatures(records: readonly ResourceRecord[]): Map<string, RecordOf<'RRSIG'>> {
  const out = new Map<string, RecordOf<'RRSIG'>>();
  for (const r of records) if (r.type === 'RRSIG') out.set(`${r.name} ${r.data.typeCovered}`, r);
  return out;
}

describe('signZone', () => {
  const signed = signZone('example', zone, key, WINDOW);
  const sets = rrsets(signed);
  const sigs = signatures(signed);

  it('adds the DNSKEY at the apex with the SOA TTL', () => {
    expect(sets.get('example DNSKEY')).toEqual([dnskeyRecord(key, 3600)]);
  });

  it('signs every authoritative RRset, the delegation DS included, and nothing else', () => {
    expect([...sigs.keys()].sort()).toEqual(
      [
        'example SOA',
        'example NS',
        'example DNSKEY',
        'ns1.example A',
        'sub.example DS',
        'www.example A',
      ].sort(),
    );
    for (const [id, sig] of sigs) {
      expect(verifyRRset(sets.get(id) ?? [], sig, [key.dnskey], NOW)).toEqual({ kind: 'verified' });
    }
  });

  it('drops duplicates and gives an RRset one TTL, its lowest', () => {
    expect(sets.get('www.example A')?.map((r) => [r.ttl, r.data])).toEqual([
      [300, '192.0.2.80'],
      [300, '192.0.2.81'],
    ]);
  });

  it('orders records canonically, each RRset followed by its RRSIG', () => {
    const order = signed.map(
      (r) => `${r.name} ${r.type === 'RRSIG' ? `RRSIG(${r.data.typeCovered})` : r.type}`,
    );
    expect(order).toEqual([
      'example NS',
      'example RRSIG(NS)',
      'example SOA',
      'example RRSIG(SOA)',
      'example DNSKEY',
      'example RRSIG(DNSKEY)',
      'ns1.example A',
      'ns1.example RRSIG(A)',
      'sub.example NS',
      'sub.example DS',
      'sub.example RRSIG(DS)',
      'ns.sub.example A',
      'www.example A',
      'www.example A',
      'www.example RRSIG(A)',
    ]);
  });

  it('with nsec3, adds the chain and NSEC3PARAM at the denial TTL, signed', () => {
    const withChain = signZone('example', zone, key, { ...WINDOW, nsec3: true, ttl: 60 });
    const nsec3 = withChain.filter((r) => r.type === 'NSEC3');
    expect(nsec3).toHaveLength(4); // example, ns1, sub, www
    expect(nsec3.every((r) => r.ttl === 300)).toBe(true);
    const chainSets = rrsets(withChain);
    const chainSigs = signatures(withChain);
    for (const r of [...nsec3, ...withChain.filter((x) => x.type === 'NSEC3PARAM')]) {
      const sig = chainSigs.get(`${r.name} ${r.type}`);
      expect(sig).toBeDefined();
      expect(
        verifyRRset(
          chainSets.get(`${r.name} ${r.type}`) ?? [],
          sig as RecordOf<'RRSIG'>,
          [key.dnskey],
          NOW,
        ),
      ).toEqual({
        kind: 'verified',
      });
    }
    expect(chainSets.get('example DNSKEY')?.[0]?.ttl).toBe(60);
  });

  it('replaces old signatures and denial records, and keeps an existing DNSKEY', () => {
    const again = signZone(
      'example',
      signZone('example', zone, key, { ...WINDOW, nsec3: true }),
      key,
      WINDOW,
    );
    expect(again).toEqual(signed);
  });

  it('refuses a zone without SOA, out-of-zone records and another zone’s key', () => {
    expect(() => signZone('example', zone.slice(4), key, WINDOW)).toThrow(ZoneError);
    expect(() =>
      signZone('example', [...zone, rr('example.net', 'A', '192.0.2.9')], key, WINDOW),
    ).toThrow(ZoneError);
    expect(() => signZone('sub.example', zone, key, WINDOW)).toThrow(DnssecError);
  });
});
