import { describe, expect, it } from 'vitest';
import {
  compactDenialForName,
  compactDenialForType,
  computeDs,
  createZoneKey,
  dnskeyRecord,
  record,
  signRRset,
  type RecordOf,
  type ResourceRecord,
} from '@mimi-discovery/common';
import {
  LIMIT_REASONS,
  MAX_KEYS_PER_SIGNATURE,
  MAX_SAME_TAG_KEYS,
  MAX_SIGNATURES_PER_RRSET,
  MAX_VERIFICATIONS_PER_RESOLUTION,
  VERIFICATIONS_PER_SLICE,
  createBudget,
  validateDelegationDs,
  validateDenial,
  validateDnskeys,
  validateRRset,
  type SignatureMemo,
  type VerifiedSignature,
} from '../src/index.js';
import { forgedRrsigs, sameTagKeys } from '../../../test/helpers/keytrap.js';

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
  it('trusts a DNSKEY RRset whose key matches the DS and signs it', async () => {
    const answers = signed([dnskeyRecord(key, 3600)]);
    const result = await validateDnskeys(
      ZONE,
      answers,
      [computeDs(ZONE, key.dnskey)],
      NOW,
      createBudget(),
    );
    expect(result.kind).toBe('secure');
  });

  it('rejects a DNSKEY RRset that no DS matches', async () => {
    const other = createZoneKey(ZONE, { seed: new Uint8Array(32).fill(8) });
    const answers = signed([dnskeyRecord(key, 3600)]);
    const result = await validateDnskeys(
      ZONE,
      answers,
      [computeDs(ZONE, other.dnskey)],
      NOW,
      createBudget(),
    );
    expect(result).toEqual({ kind: 'bogus', reason: 'no-ds-match' });
  });

  it('caps an answer TTL at the signature expiration', async () => {
    const rrset = [record(`a.${ZONE}`, 'MAPREF', 'b.test', 86_400)];
    const result = await validateRRset(
      rrset,
      signed(rrset),
      ZONE,
      [key.dnskey],
      NOW + 3000,
      createBudget(),
    );
    expect(result.kind === 'secure' && result.value.ttl).toBe(600);
  });

  it('treats a signed delegation without DS as bogus (design §5)', async () => {
    const nsec = compactDenialForType(`child.${ZONE}`, ['NS'], 3600);
    const authorities = [
      record(`child.${ZONE}`, 'NS', 'ns1.child.z.test', 3600),
      ...signed([nsec]),
    ];
    const result = await validateDelegationDs(
      `child.${ZONE}`,
      authorities,
      ZONE,
      [key.dnskey],
      NOW,
      createBudget(),
    );
    expect(result).toEqual({ kind: 'bogus', reason: 'unsigned-delegation' });
  });

  it('reads NXNAME as nxdomain and a bitmap without the type as nodata', async () => {
    const name = `x.${ZONE}`;
    const nx = await validateDenial(
      name,
      'MAP',
      [...signed([soa]), ...signed([compactDenialForName(name, 120)])],
      ZONE,
      [key.dnskey],
      NOW,
      createBudget(),
    );
    expect(nx.kind === 'secure' && nx.value.kind).toBe('nxdomain');
    expect(nx.kind === 'secure' && nx.value.ttl).toBe(120);
    const nodata = await validateDenial(
      name,
      'MAP',
      [...signed([soa]), ...signed([compactDenialForType(name, ['AUTHKEY'], 120)])],
      ZONE,
      [key.dnskey],
      NOW,
      createBudget(),
    );
    expect(nodata.kind === 'secure' && nodata.value.kind).toBe('nodata');
  });

  it('rejects a denial whose bitmap holds the asked type', async () => {
    const name = `x.${ZONE}`;
    const result = await validateDenial(
      name,
      'MAP',
      [...signed([soa]), ...signed([compactDenialForType(name, ['MAP'], 120)])],
      ZONE,
      [key.dnskey],
      NOW,
      createBudget(),
    );
    expect(result).toEqual({ kind: 'bogus', reason: 'denial-contradicts-type' });
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

    it('verifies the zone SOA of many denials once, and each NSEC every time', async () => {
      const memo = memoOver();
      const budget = createBudget();
      const start = budget.remaining;
      for (const label of ['a', 'b', 'c']) {
        const name = `${label}.${ZONE}`;
        const result = await validateDenial(
          name,
          'MAP',
          denial(name),
          ZONE,
          [key.dnskey],
          NOW,
          budget,
          memo,
        );
        expect(result.kind === 'secure' && result.value.kind).toBe('nxdomain');
      }
      expect(start - budget.remaining).toBe(1 + 3);
      expect(memo.ttls).toEqual([3600]);
    });

    it('verifies again an SOA that differs from the one remembered under its signature', async () => {
      const memo = memoOver();
      const name = `a.${ZONE}`;
      const first = denial(name);
      expect(
        (await validateDenial(name, 'MAP', first, ZONE, [key.dnskey], NOW, createBudget(), memo))
          .kind,
      ).toBe('secure');
      // The same RRSIG over an SOA whose serial was changed afterwards.
      const forged = first.map((rr) =>
        rr.type === 'SOA' ? { ...rr, data: { ...rr.data, serial: 2 } } : rr,
      );
      const budget = createBudget();
      const result = await validateDenial(
        name,
        'MAP',
        forged,
        ZONE,
        [key.dnskey],
        NOW,
        budget,
        memo,
      );
      expect(result).toEqual({ kind: 'bogus', reason: 'bogus-signature' });
      expect(budget.remaining).toBe(createBudget().remaining - 1);
    });

    it('verifies again when the key that verified is no longer trusted', async () => {
      const memo = memoOver();
      const name = `a.${ZONE}`;
      expect(
        (
          await validateDenial(
            name,
            'MAP',
            denial(name),
            ZONE,
            [key.dnskey],
            NOW,
            createBudget(),
            memo,
          )
        ).kind,
      ).toBe('secure');
      const other = createZoneKey(ZONE, { seed: new Uint8Array(32).fill(9) });
      const result = await validateDenial(
        name,
        'MAP',
        denial(name),
        ZONE,
        [other.dnskey],
        NOW,
        createBudget(),
        memo,
      );
      expect(result.kind).toBe('bogus');
    });

    it('does not remember answers of other types (MAP, NSEC)', async () => {
      const memo = memoOver();
      const rrset = [record(`a.${ZONE}`, 'MAPREF', 'b.test', 300)];
      const budget = createBudget();
      for (let i = 0; i < 2; i++) {
        expect(
          (await validateRRset(rrset, signed(rrset), ZONE, [key.dnskey], NOW, budget, memo)).kind,
        ).toBe('secure');
      }
      expect(budget.remaining).toBe(createBudget().remaining - 2);
      expect(memo.ttls).toEqual([]);
    });
  });

  it('stops verifying once the budget is spent', async () => {
    const rrset = [record(`a.${ZONE}`, 'MAPREF', 'b.test', 300)];
    const budget = createBudget();
    budget.remaining = 0;
    const result = await validateRRset(rrset, signed(rrset), ZONE, [key.dnskey], NOW, budget);
    expect(result).toEqual({ kind: 'bogus', reason: 'limit-verifications' });
  });

  describe('KeyTrap limits (CVE-2023-50387)', () => {
    const rrset = [record(`a.${ZONE}`, 'MAPREF', 'b.test', 300)];
    const genuine = signRRset(rrset, key, validity);
    /** A budget that counts the verifications it pays for, in `log` as `v`. */
    const counting = (
      log: string[] = [],
    ): { budget: ReturnType<typeof createBudget>; log: string[] } => ({
      budget: createBudget({ onVerify: () => log.push('v') }),
      log,
    });
    const dnskeys = (keys: readonly RecordOf<'DNSKEY'>['data'][]): ResourceRecord[] =>
      keys.map((data) => record(ZONE, 'DNSKEY', data, 3600));

    it('tries at most MAX_KEYS_PER_SIGNATURE keys of one key tag: past them, bogus', async () => {
      const colliding = sameTagKeys(key.dnskey, 999);
      const { budget, log } = counting();
      const last = await validateRRset(
        rrset,
        [...rrset, genuine],
        ZONE,
        [...colliding, key.dnskey],
        NOW,
        budget,
      );
      expect(last).toEqual({ kind: 'bogus', reason: LIMIT_REASONS.keysPerSignature });
      expect(log).toHaveLength(MAX_KEYS_PER_SIGNATURE);
    });

    it('verifies with the genuine key among the first MAX_KEYS_PER_SIGNATURE of its tag', async () => {
      const colliding = sameTagKeys(key.dnskey, MAX_KEYS_PER_SIGNATURE - 1);
      const { budget, log } = counting();
      const result = await validateRRset(
        rrset,
        [...rrset, genuine],
        ZONE,
        [...colliding, key.dnskey],
        NOW,
        budget,
      );
      expect(result.kind).toBe('secure');
      expect(log).toHaveLength(MAX_KEYS_PER_SIGNATURE);
      const wrongOnly = await validateRRset(
        rrset,
        [...rrset, genuine],
        ZONE,
        colliding,
        NOW,
        createBudget(),
      );
      expect(wrongOnly).toEqual({ kind: 'bogus', reason: 'bogus-signature' });
    });

    it('rejects a DNSKEY RRset with more than MAX_SAME_TAG_KEYS keys of one tag before verifying', async () => {
      const keys = [key.dnskey, ...sameTagKeys(key.dnskey, MAX_SAME_TAG_KEYS)];
      const rrs = dnskeys(keys);
      const { budget, log } = counting();
      const result = await validateDnskeys(
        ZONE,
        [...rrs, signRRset(rrs, key, validity)],
        [computeDs(ZONE, key.dnskey)],
        NOW,
        budget,
      );
      expect(result).toEqual({ kind: 'bogus', reason: LIMIT_REASONS.sameTagKeys });
      expect(log).toEqual([]);
    });

    it('accepts a DNSKEY RRset with MAX_SAME_TAG_KEYS keys of one tag', async () => {
      const keys = [key.dnskey, ...sameTagKeys(key.dnskey, MAX_SAME_TAG_KEYS - 1)];
      const rrs = dnskeys(keys);
      const result = await validateDnskeys(
        ZONE,
        [...rrs, signRRset(rrs, key, validity)],
        [computeDs(ZONE, key.dnskey)],
        NOW,
        createBudget(),
      );
      expect(result.kind === 'secure' && result.value.keys).toHaveLength(MAX_SAME_TAG_KEYS);
    });

    it('tries at most MAX_SIGNATURES_PER_RRSET RRSIGs: past them, bogus', async () => {
      const { budget, log } = counting();
      const many = forgedRrsigs(genuine, 63, true);
      const result = await validateRRset(
        rrset,
        [...rrset, ...many],
        ZONE,
        [key.dnskey],
        NOW,
        budget,
      );
      expect(result).toEqual({ kind: 'bogus', reason: LIMIT_REASONS.signaturesPerRrset });
      expect(log).toHaveLength(MAX_SIGNATURES_PER_RRSET);
      const enough = forgedRrsigs(genuine, MAX_SIGNATURES_PER_RRSET - 1, true);
      const verified = await validateRRset(
        rrset,
        [...rrset, ...enough],
        ZONE,
        [key.dnskey],
        NOW,
        createBudget(),
      );
      expect(verified.kind).toBe('secure');
    });

    it('spends at most MAX_VERIFICATIONS_PER_RESOLUTION across the RRsets of a resolution', async () => {
      const { budget, log } = counting();
      const colliding = [...sameTagKeys(key.dnskey, MAX_KEYS_PER_SIGNATURE - 1), key.dnskey];
      const section = [...rrset, ...forgedRrsigs(genuine, MAX_SIGNATURES_PER_RRSET)];
      const reasons: string[] = [];
      for (let i = 0; i < 10; i++) {
        const result = await validateRRset(rrset, section, ZONE, colliding, NOW, budget);
        if (result.kind === 'bogus') reasons.push(result.reason);
      }
      expect(log).toHaveLength(MAX_VERIFICATIONS_PER_RESOLUTION);
      expect(reasons.at(-1)).toBe(LIMIT_REASONS.verifications);
      // Once spent, even the genuine signature is not verified.
      const after = await validateRRset(
        rrset,
        [...rrset, genuine],
        ZONE,
        [key.dnskey],
        NOW,
        budget,
      );
      expect(after).toEqual({ kind: 'bogus', reason: LIMIT_REASONS.verifications });
    });

    it('yields to the event loop every VERIFICATIONS_PER_SLICE verifications', async () => {
      const events: string[] = [];
      const budget = createBudget({ onVerify: () => events.push('v') });
      let running = true;
      // Other work: one turn of the event loop at a time, for as long as validation runs.
      const other = (): void => {
        events.push('other');
        if (running) setImmediate(other);
      };
      setImmediate(other);
      const colliding = [...sameTagKeys(key.dnskey, MAX_KEYS_PER_SIGNATURE - 1), key.dnskey];
      const section = [...rrset, ...forgedRrsigs(genuine, MAX_SIGNATURES_PER_RRSET)];
      const result = await validateRRset(rrset, section, ZONE, colliding, NOW, budget);
      running = false;
      expect(result).toEqual({ kind: 'bogus', reason: 'bogus-signature' });
      const verifications = events.filter((e) => e === 'v').length;
      expect(verifications).toBe(MAX_SIGNATURES_PER_RRSET * MAX_KEYS_PER_SIGNATURE);
      const runs = events
        .join(' ')
        .split('other')
        .map((run) => run.trim().split(' ').filter(Boolean).length);
      expect(Math.max(...runs)).toBeLessThanOrEqual(VERIFICATIONS_PER_SLICE);
      expect(runs.filter((n) => n > 0).length).toBeGreaterThanOrEqual(
        verifications / VERIFICATIONS_PER_SLICE,
      );
    });

    it('verifies nothing more once the deadline has passed', async () => {
      let verified = 0;
      const budget = createBudget({ expired: () => verified >= 3, onVerify: () => verified++ });
      const section = [...rrset, ...forgedRrsigs(genuine, MAX_SIGNATURES_PER_RRSET)];
      const result = await validateRRset(rrset, section, ZONE, [key.dnskey], NOW, budget);
      expect(result).toEqual({ kind: 'bogus', reason: 'deadline' });
      expect(verified).toBe(3);
    });
  });
});
