import { MAX_CLOCK_SKEW_SECONDS } from '@mimi-discovery/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_ATTESTATION_LIFETIME_SECONDS,
  isActive,
  removalRecordUntil,
  requestRecordUntil,
  revocationRecordUntil,
} from '../src/store/mapping-ops.js';

// The bounds of the anti-replay records (mapping-ops.ts): a record may go only once nothing it
// stops can verify. The rules they rest on: a stored attestation is valid for at most
// MAX_ATTESTATION_LIFETIME_SECONDS; an attestation issued by time T has nbf ≤ T + skew; a
// mapping verifies only while now < att.exp; a MapRef request only while now ≤ iat + skew.

const time = fc.integer({ min: 1_700_000_000, max: 2_000_000_000 });
const lifetime = fc.integer({ min: 0, max: MAX_ATTESTATION_LIFETIME_SECONDS });

describe('anti-replay record lifetimes', () => {
  it('keeps a removal until every attestation issued by the removal has expired', () => {
    fc.assert(
      fc.property(
        time,
        fc.integer({ min: 0, max: 10 * 365 * 86_400 }),
        lifetime,
        (t, age, life) => {
          // An attestation issued by the removal at t (nbf up to the skew ahead of t).
          const nbf = t + MAX_CLOCK_SKEW_SECONDS - age;
          const exp = nbf + life;
          const until = removalRecordUntil(t);
          // Whenever it still verifies (now < exp), the record is active (now <= until).
          return exp - 1 <= until && isActive({ until }, exp - 1);
        },
      ),
    );
  });

  it('keeps a revocation until every attestation it covers has expired', () => {
    fc.assert(
      fc.property(
        time,
        fc.integer({ min: 1, max: 10 * 365 * 86_400 }),
        lifetime,
        (before, age, life) => {
          const nbf = before - age; // covered: nbf < before
          const exp = nbf + life;
          return isActive({ until: revocationRecordUntil(before) }, exp - 1);
        },
      ),
    );
  });

  it('keeps a MapRef request for as long as it verifies, and no longer', () => {
    const iat = 1_767_225_600;
    const until = requestRecordUntil(iat);
    expect(isActive({ until }, iat + MAX_CLOCK_SKEW_SECONDS)).toBe(true);
    expect(isActive({ until }, iat + MAX_CLOCK_SKEW_SECONDS + 1)).toBe(false);
  });

  it('lets a removal go 2 years and 5 minutes after it was made', () => {
    expect(removalRecordUntil(1_767_225_600)).toBe(1_767_225_600 + 300 + 2 * 365 * 86_400);
  });
});
