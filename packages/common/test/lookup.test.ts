import { describe, expect, it } from 'vitest';
import {
  createMemoryZone,
  createZoneKey,
  lookupZone,
  signRRset,
  signZone,
  verifyRRset,
  type LookupOutcome,
  type Question,
  type RecordOf,
  type ResourceRecord,
  type RRType,
  record,
} from '../src/index.js';

// A `+44` range zone with a signed sub-delegation (+447), an unsigned one (+443), a MAP, a
// MAPREF and the DoH endpoint of the child's nameserver as `_dns` SVCB glue.
const ORIGIN = '4.4.e164.mimi.arpa';
const MAP_NAME = '8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa';
const MAPREF_NAME = '9.9.9.9.6.4.9.7.0.2.4.4.e164.mimi.arpa';
const CHILD = '7.4.4.e164.mimi.arpa';
const CHILD_NS = 'ns1.7.4.4.e164.mimi.arpa';
const UNSIGNED_CHILD = '3.4.4.e164.mimi.arpa';
const INCEPTION = 1_700_000_000;
const EXPIRATION = INCEPTION + 14 * 86_400;
const NOW = INCEPTION + 3600;

const key = createZoneKey(ORIGIN, { seed: new Uint8Array(32).fill(7) });
const childKey = createZoneKey(CHILD, { seed: new Uint8Array(32).fill(8) });

const rr = <T extends ResourceRecord['type']>(
  name: string,
  type: T,
  data: RecordOf<T>['data'],
  ttl = 3600,
): ResourceRecord => record(name, type, data, ttl);

const unsigned: ResourceRecord[] = [
  rr(ORIGIN, 'SOA', {
    mname: 'ns1.dp.example',
    rname: 'hostmaster.dp.example',
    serial: 1,
    refresh: 3600,
    retry: 600,
    expire: 604800,
    minimum: 300,
  }),
  rr(ORIGIN, 'NS', 'ns1.dp.example'),
  rr(MAP_NAME, 'MAP', new Uint8Array([0xa1, 0x61, 0x76, 0x01])),
  rr(MAPREF_NAME, 'MAPREF', 'msp-dp.example'),
  rr(CHILD, 'NS', CHILD_NS),
  rr(CHILD, 'DS', {
    keyTag: childKey.keyTag,
    algorithm: 15,
    digestType: 2,
    digest: new Uint8Array(32).fill(1),
  }),
  rr(CHILD_NS, 'A', '127.0.0.2'),
  rr(`_dns.${CHILD_NS}`, 'SVCB', {
    priority: 1,
    target: CHILD_NS,
    params: { alpn: ['h2'], port: 8443, dohpath: '/dns-query{?dns}' },
  }),
  rr(UNSIGNED_CHILD, 'NS', 'ns.elsewhere.example'),
];
const zone = createMemoryZone(
  ORIGIN,
  signZone(ORIGIN, unsigned, key, { inception: INCEPTION, expiration: EXPIRATION }),
);
const sign = (rrset: readonly ResourceRecord[]): RecordOf<'RRSIG'> =>
  signRRset([...rrset], key, { inception: INCEPTION, expiration: EXPIRATION });

function ask(name: string, type: Question['type'], dnssecOk = true): LookupOutcome {
  return lookupZone(zone, { name, type, class: 'IN' }, { dnssecOk, sign });
}

function types(records: readonly ResourceRecord[]): string[] {
  return records.map((r) => r.type);
}

function nsecOf(records: readonly ResourceRecord[]): RecordOf<'NSEC'> {
  const nsec = records.find((r): r is RecordOf<'NSEC'> => r.type === 'NSEC');
  if (!nsec) throw new Error('no NSEC in the response');
  return nsec;
}

function expectVerified(records: readonly ResourceRecord[], type: RRType): void {
  const rrset = records.filter((r) => r.type === type);
  const sig = records.find(
    (r): r is RecordOf<'RRSIG'> => r.type === 'RRSIG' && r.data.typeCovered === type,
  );
  expect(sig, `RRSIG over ${type}`).toBeDefined();
  expect(verifyRRset(rrset, sig as RecordOf<'RRSIG'>, [key.dnskey], NOW)).toEqual({
    kind: 'verified',
  });
}

describe('lookupZone', () => {
  it('answers an existing RRset with its RRSIG when the DO bit is set', () => {
    const out = ask(MAP_NAME, 'MAP');
    expect(out.kind).toBe('answer');
    if (out.kind !== 'answer') return;
    expect(types(out.answers)).toEqual(['MAP', 'RRSIG']);
    expectVerified(out.answers, 'MAP');
  });

  it('leaves RRSIGs out when the DO bit is clear (RFC 4035 §3.1)', () => {
    const out = ask(MAP_NAME.toUpperCase(), 'MAP', false);
    expect(out.kind === 'answer' && types(out.answers)).toEqual(['MAP']);
  });

  it('refers a name below a zone cut to the child with NS, signed DS, glue and _dns SVCB', () => {
    const out = ask(`1.2.3.4.5.6.${CHILD}`, 'MAP');
    expect(out.kind).toBe('referral');
    if (out.kind !== 'referral') return;
    expect(out.cut).toBe(CHILD);
    expect(out.answers).toEqual([]);
    expect(types(out.authorities)).toEqual(['NS', 'DS', 'RRSIG']);
    expectVerified(out.authorities, 'DS');
    expect(types(out.additionals).sort()).toEqual(['A', 'SVCB']);
  });

  it('refers a query for the cut itself, but answers DS there from the parent side', () => {
    expect(ask(CHILD, 'NS').kind).toBe('referral');
    const ds = ask(CHILD, 'DS');
    expect(ds.kind).toBe('answer');
  });

  it('proves there is no DS at an unsigned delegation', () => {
    const out = ask(`5.${UNSIGNED_CHILD}`, 'MAP');
    expect(out.kind).toBe('referral');
    if (out.kind !== 'referral') return;
    const nsec = nsecOf(out.authorities);
    expect(nsec.name).toBe(UNSIGNED_CHILD);
    expect(nsec.data.types).toEqual(['NS', 'RRSIG', 'NSEC']);
    expectVerified(out.authorities, 'NSEC');
  });

  it('gives nodata with a compact NSEC listing the types present', () => {
    const out = ask(MAPREF_NAME, 'MAP');
    expect(out.kind).toBe('nodata');
    if (out.kind !== 'nodata') return;
    expect(types(out.authorities)).toEqual(['SOA', 'RRSIG', 'NSEC', 'RRSIG']);
    const nsec = nsecOf(out.authorities);
    expect(nsec.name).toBe(MAPREF_NAME);
    expect(nsec.data.nextName).toBe(`\\000.${MAPREF_NAME}`);
    expect(nsec.data.types).toEqual(['RRSIG', 'NSEC', 'MAPREF']);
    expectVerified(out.authorities, 'NSEC');
    expectVerified(out.authorities, 'SOA');
  });

  it('gives nodata for an empty non-terminal, with only NSEC and RRSIG in the bitmap', () => {
    const out = ask('2.4.4.e164.mimi.arpa', 'MAP');
    expect(out.kind).toBe('nodata');
    expect(out.kind === 'nodata' && nsecOf(out.authorities).data.types).toEqual(['RRSIG', 'NSEC']);
  });

  it('gives nxdomain with an NSEC whose bitmap carries NXNAME (RFC 9824)', () => {
    const name = '1.1.1.1.6.4.9.7.0.2.4.4.e164.mimi.arpa';
    const out = ask(name, 'MAP');
    expect(out.kind).toBe('nxdomain');
    if (out.kind !== 'nxdomain') return;
    const nsec = nsecOf(out.authorities);
    expect(nsec.name).toBe(name);
    expect(nsec.data.nextName).toBe(`\\000.${name}`);
    expect(nsec.data.types).toEqual(['RRSIG', 'NSEC', 'TYPE128']);
    expectVerified(out.authorities, 'NSEC');
  });

  it('sets the TTL of SOA, NSEC and their RRSIGs in negative answers to min(SOA TTL, MINIMUM)', () => {
    const out = ask('1.1.1.1.1.4.4.e164.mimi.arpa', 'MAP');
    expect(out.kind).toBe('nxdomain');
    if (out.kind !== 'nxdomain') return;
    for (const r of out.authorities) {
      expect(r.ttl).toBe(300);
    }
  });

  it('carries no denial records when the DO bit is clear', () => {
    const out = ask('1.1.1.1.1.4.4.e164.mimi.arpa', 'MAP', false);
    expect(out.kind !== 'refused' && types(out.authorities)).toEqual(['SOA']);
  });

  it('refuses names outside the zone and classes other than IN', () => {
    expect(ask('example.com', 'A')).toEqual({ kind: 'refused', reason: 'out-of-zone' });
    expect(
      lookupZone(zone, { name: MAP_NAME, type: 'MAP', class: 'CH' }, { dnssecOk: true }),
    ).toEqual({
      kind: 'refused',
      reason: 'class',
    });
  });

  it('rejects a zone without an SOA at its origin or with a record outside it', () => {
    expect(() => createMemoryZone(ORIGIN, [rr(MAP_NAME, 'MAP', new Uint8Array([1]))])).toThrow(
      /no SOA/,
    );
    expect(() =>
      createMemoryZone(ORIGIN, [...unsigned, rr('example.com', 'A', '127.0.0.1')]),
    ).toThrow(/not in zone/);
  });
});
