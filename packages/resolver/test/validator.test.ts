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
  type SignatureMemo,
  type VerifiedSignature,
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

  describe('with a memo of verified signatures', () => {
    /** A memo over a Map, with the TTL each entry was given. */
    const memoOver = (): SignatureMemo & { ttls: number[] } => {
      const entries = new Map<string, VerifiedSignature>();
      const ttls: number[] = [];
      return {
        ttls,
        get: (id) => entries.get(id),
        set: (id, value, ttl) => {
          entries.set(id, value);
          ttls.push(ttl);
        },
      };
    };
    const denial = (name: string): ResourceRecord[] => [
      ...signed([soa]),
      ...signed([compactDenialForName(name, 120)]),
    ];

    it('verifies the zone SOA of many denials once, and each NSEC every time', () => {
      const memo = memoOver();
      const budget = createBudget();
      const start = budget.remaining;
      for (const label of ['a', 'b', 'c']) {
        const name = `${label}.${ZONE}`;
        const result = validateDenial(
          name,
          'MAP',
          denial(name),
          ZONE,
          [key.dnskey],
          NOW,
          budget,
          memo,
        );
        expect(result.ok && result.value.kind).toBe('nxdomain');
      }
      expect(start - budget.remaining).toBe(1 + 3);
      expect(memo.ttls).toEqual([3600]);
    });

    it('verifies again an SOA that differs from the one remembered under its signature', () => {
      const memo = memoOver();
      const name = `a.${ZONE}`;
      const first = denial(name);
      expect(
        validateDenial(name, 'MAP', first, ZONE, [key.dnskey], NOW, createBudget(), memo).ok,
      ).toBe(true);
      // The same RRSIG over an SOA whose serial was changed afterwards.
      const forged = first.map((rr) =>
        rr.type === 'SOA' ? { ...rr, data: { ...rr.data, serial: 2 } } : rr,
      );
      const budget = createBudget();
      const result = validateDenial(name, 'MAP', forged, ZONE, [key.dnskey], NOW, budget, memo);
      expect(result).toEqual({ ok: false, reason: 'bogus-signature' });
      expect(budget.remaining).toBe(createBudget().remaining - 1);
    });

    it('verifies again when the key that verified is no longer trusted', () => {
      const memo = memoOver();
      const name = `a.${ZONE}`;
      expect(
        validateDenial(name, 'MAP', denial(name), ZONE, [key.dnskey], NOW, createBudget(), memo).ok,
      ).toBe(true);
      const other = createZoneKey(ZONE, { seed: new Uint8Array(32).fill(9) });
      const result = validateDenial(
        name,
        'MAP',
        denial(name),
        ZONE,
        [other.dnskey],
        NOW,
        createBudget(),
        memo,
      );
      expect(result.ok).toBe(false);
    });

    it('does not remember answers of other types (MAP, NSEC)', () => {
      const memo = memoOver();
      const rrset = [record(`a.${ZONE}`, 'MAPREF', 'b.test', 300)];
      const budget = createBudget();
      for (let i = 0; i < 2; i++) {
        expect(validateRRset(rrset, signed(rrset), ZONE, [key.dnskey], NOW, budget, memo).ok).toBe(
          true,
        );
      }
      expect(budget.remaining).toBe(createBudget().remaining - 2);
      expect(memo.ttls).toEqual([]);
    });
  });

  it('stops verifying once the budget is spent', () => {
    const rrset = [record(`a.${ZONE}`, 'MAPREF', 'b.test', 300)];
    const result = validateRRset(rrset, signed(rrset), ZONE, [key.dnskey], NOW, { remaining: 0 });
    expect(result).toEqual({ ok: false, reason: 'verification-limit' });
  });
});
