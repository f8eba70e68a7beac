import { describe, expect, it } from 'vitest';
import {
  AUTHKEY_REFETCHES_PER_MINUTE,
  AUTHKEY_REFETCH_MIN_INTERVAL_SECONDS,
  createAuthkeyRefetchLimiter,
} from '../src/index.js';

/** The bounds of AUTHKEY re-fetches (`authkey-refetch.ts`): per zone, overall, and zones kept. */

const T0 = 1_800_000_000;

describe('AUTHKEY re-fetch bounds', () => {
  it('allows one re-fetch per zone per interval', () => {
    const limiter = createAuthkeyRefetchLimiter();
    expect(limiter.allow('4.4.e164.mimi.arpa', T0)).toBe(true);
    expect(limiter.allow('4.4.E164.MIMI.ARPA.', T0 + 1)).toBe(false);
    expect(limiter.allow('4.4.e164.mimi.arpa', T0 + AUTHKEY_REFETCH_MIN_INTERVAL_SECONDS - 1)).toBe(
      false,
    );
    expect(limiter.allow('4.4.e164.mimi.arpa', T0 + AUTHKEY_REFETCH_MIN_INTERVAL_SECONDS)).toBe(
      true,
    );
    expect(limiter.allowed()).toBe(2);
    expect(limiter.refused()).toBe(2);
  });

  it('counts the interval from a fetch of any kind', () => {
    const limiter = createAuthkeyRefetchLimiter();
    limiter.fetched('4.4.e164.mimi.arpa', T0);
    expect(limiter.allow('4.4.e164.mimi.arpa', T0 + 1)).toBe(false);
    expect(limiter.allow('4.4.e164.mimi.arpa', T0 + AUTHKEY_REFETCH_MIN_INTERVAL_SECONDS)).toBe(
      true,
    );
  });

  it('hostile: many zones at once get no more than the overall rate', () => {
    const limiter = createAuthkeyRefetchLimiter();
    let allowed = 0;
    for (let i = 0; i < 10 * AUTHKEY_REFETCHES_PER_MINUTE; i++) {
      if (limiter.allow(`z${i}.mimi.arpa`, T0)) allowed++;
    }
    expect(allowed).toBe(AUTHKEY_REFETCHES_PER_MINUTE);
    // The bucket refills at the rate: one more each 60 / rate seconds.
    expect(limiter.allow('late.mimi.arpa', T0 + 60 / AUTHKEY_REFETCHES_PER_MINUTE)).toBe(true);
    expect(limiter.allow('later.mimi.arpa', T0 + 60 / AUTHKEY_REFETCHES_PER_MINUTE)).toBe(false);
  });

  it('hostile: remembers at most maxZones, refusing new zones until old entries age out', () => {
    const limiter = createAuthkeyRefetchLimiter({ maxZones: 3, perMinute: 100 });
    expect(['a', 'b', 'c'].map((z) => limiter.allow(`${z}.mimi.arpa`, T0))).toEqual([
      true,
      true,
      true,
    ]);
    expect(limiter.allow('d.mimi.arpa', T0 + 1)).toBe(false);
    expect(limiter.allow('d.mimi.arpa', T0 + AUTHKEY_REFETCH_MIN_INTERVAL_SECONDS)).toBe(true);
  });
});
