import { describe, expect, it } from 'vitest';
import {
  compactDenialForName,
  compactDenialForType,
  computeDs,
  createZoneKey,
  dnskeyRecord,
  record,
  signRRset,
  type ResourceRecord,
} from '@mimi-discovery/common';
import {
  createBudget,
  validateDelegationDs,
  validateDenial,
  validateDnskeys,
  validateRRset,
} from '../src/index.js';

// A zone `z.test` with one key, records signed for an hour from NOW.
const NOW = 1_767_225_600;
const ZONE = 'z.test';
const key = createZoneKey(ZONE, { seed: new Uint8Array(32).fill(7) });
const validity = { inception: NOW - 60, expiration: NOW + 3600 };
const signed = (rrset: ResourceRecord[]): ResourceRecord[] => [
  ...rrset,
  signRRset(rrset, key, validity),
];
const soa = record(
  ZONE,
  'SOA',
  {
    mname: `ns1.${ZONE}`,
    rname: `h.${ZONE}`,
    serial: 1,
    refresh: 1,
    retry: 1,
    expire: 1,
    minimum: 120,
  },
  3600,
);

describe('validator', () => {
  it('trusts a DNSKEY RRset whose key matches the DS and signs it', () => {
    const answers = signed([dnskeyRecord(key, 3600)]);
    const result = validateDnskeys(
      ZONE,
      answers,
      [computeDs(ZONE, key.dnskey)],
      NOW,
      createBudget(),
    );
    expect(result.ok).toBe(true);
  });

  it('rejects a DNSKEY RRset that no DS matches', () => {
    const other = createZoneKey(ZONE, { seed: new Uint8Array(32).fill(8) });
    const answers = signed([dnskeyRecord(key, 3600)]);
    const result = validateDnskeys(
      ZONE,
      answers,
      [computeDs(ZONE, other.dnskey)],
      NOW,
      createBudget(),
    );
    expect(result).toEqual({ ok: false, reason: 'no-ds-match' });
  });

  it('caps an answer TTL at the signature expiration', () => {
    const rrset = [record(`a.${ZONE}`, 'MAPREF', 'b.test', 86_400)];
    const result = validateRRset(
      rrset,
      signed(rrset),
      ZONE,
      [key.dnskey],
      NOW + 3000,
      createBudget(),
    );
    expect(result.ok && result.value.ttl).toBe(600);
  });

  it('treats a signed delegation without DS as bogus (design §5)', () => {
    const nsec = compactDenialForType(`child.${ZONE}`, ['NS'], 3600);
    const authorities = [
      record(`child.${ZONE}`, 'NS', 'ns1.child.z.test', 3600),
      ...signed([nsec]),
    ];
    const result = validateDelegationDs(
      `child.${ZONE}`,
      authorities,
      ZONE,
      [key.dnskey],
      NOW,
      createBudget(),
    );
    expect(result).toEqual({ ok: false, reason: 'unsigned-delegation' });
  });

  it('reads NXNAME as nxdomain and a bitmap without the type as nodata', () => {
    const name = `x.${ZONE}`;
    const nx = validateDenial(
      name,
      'MAP',
      [...signed([soa]), ...signed([compactDenialForName(name, 120)])],
      ZONE,
      [key.dnskey],
      NOW,
      createBudget(),
    );
    expect(nx.ok && nx.value.kind).toBe('nxdomain');
    expect(nx.ok && nx.value.ttl).toBe(120);
    const nodata = validateDenial(
      name,
      'MAP',
      [...signed([soa]), ...signed([compactDenialForType(name, ['AUTHKEY'], 120)])],
      ZONE,
      [key.dnskey],
      NOW,
      createBudget(),
    );
    expect(nodata.ok && nodata.value.kind).toBe('nodata');
  });

  it('rejects a denial whose bitmap holds the asked type', () => {
    const name = `x.${ZONE}`;
    const result = validateDenial(
      name,
      'MAP',
      [...signed([soa]), ...signed([compactDenialForType(name, ['MAP'], 120)])],
      ZONE,
      [key.dnskey],
      NOW,
      createBudget(),
    );
    expect(result).toEqual({ ok: false, reason: 'denial-contradicts-type' });
  });

  it('stops verifying once the budget is spent', () => {
    const rrset = [record(`a.${ZONE}`, 'MAPREF', 'b.test', 300)];
    const result = validateRRset(rrset, signed(rrset), ZONE, [key.dnskey], NOW, { remaining: 0 });
    expect(result).toEqual({ ok: false, reason: 'verification-limit' });
  });
});
