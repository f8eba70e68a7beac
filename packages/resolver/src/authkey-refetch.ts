import { canonicalName } from '@mimi-discovery/common';

/**
 * How often the resolver asks a zone's AUTHKEY RRset again before its cached copy expires: when a
 * MAP record's attestation verifies but names a prover the cached RRset lacks, the DP may have
 * added that prover since (a new prover key, `keys add-prover`), so the RRset is fetched again
 * once rather than the mapping dropped for up to the RRset's TTL. The prover named is the MAP
 * record's, which a DP or whoever publishes mappings chooses: without a bound, mappings naming
 * random provers would turn every discovery into an AUTHKEY query. So a zone is asked again at
 * most once per {@link AUTHKEY_REFETCH_MIN_INTERVAL_SECONDS} (counted from its last fetch of
 * any kind: an RRset fetched a moment ago has not changed), and all zones together at most
 * {@link AUTHKEY_REFETCHES_PER_MINUTE} times a minute (a token bucket), whatever the clients ask;
 * past either bound the cached RRset stands and the mapping is dropped as `mapping-unknown-prover`.
 */

/** The least time between two re-fetches of one zone's AUTHKEY RRset, in seconds. */
export const AUTHKEY_REFETCH_MIN_INTERVAL_SECONDS = 60;
/** Re-fetches of AUTHKEY RRsets of all zones together, at most, per minute (and as a burst). */
export const AUTHKEY_REFETCHES_PER_MINUTE = 60;
/**
 * Zones whose last re-fetch time is remembered; when full, entries older than the interval are
 * dropped, and if none is, no new zone is re-fetched until one ages out.
 */
export const AUTHKEY_REFETCH_MAX_ZONES = 10_000;

/** Decides whether an AUTHKEY RRset may be fetched again now. */
export interface AuthkeyRefetchLimiter {
  /** True (and counted) when `zone`'s AUTHKEY RRset may be fetched again at `now` (seconds). */
  allow(zone: string, now: number): boolean;
  /**
   * Notes that `zone`'s AUTHKEY RRset was fetched at `now` (not from the cache): an RRset that
   * fresh is not asked again before the interval has passed either.
   */
  fetched(zone: string, now: number): void;
  /** Re-fetches allowed since start. */
  allowed(): number;
  /** Re-fetches refused by a bound since start. */
  refused(): number;
}

/** Settings of {@link createAuthkeyRefetchLimiter}; each defaults to its constant. */
export interface AuthkeyRefetchSettings {
  readonly minIntervalSeconds?: number;
  readonly perMinute?: number;
  readonly maxZones?: number;
}

/** A limiter with the bounds of the module comment. */
export function createAuthkeyRefetchLimiter(
  settings: AuthkeyRefetchSettings = {},
): AuthkeyRefetchLimiter {
  const interval = settings.minIntervalSeconds ?? AUTHKEY_REFETCH_MIN_INTERVAL_SECONDS;
  const perMinute = settings.perMinute ?? AUTHKEY_REFETCHES_PER_MINUTE;
  const maxZones = settings.maxZones ?? AUTHKEY_REFETCH_MAX_ZONES;
  const last = new Map<string, number>();
  let tokens = perMinute;
  let filledAt: number | undefined;
  let allowed = 0;
  let refused = 0;
  const refuse = (): boolean => {
    refused++;
    return false;
  };
  return {
    allow(zone, now) {
      const key = canonicalName(zone);
      const before = last.get(key);
      if (before !== undefined && now - before < interval) return refuse();
      tokens = Math.min(perMinute, tokens + ((now - (filledAt ?? now)) * perMinute) / 60);
      filledAt = now;
      if (tokens < 1) return refuse();
      if (before === undefined && last.size >= maxZones) {
        for (const [z, at] of last) if (now - at >= interval) last.delete(z);
        if (last.size >= maxZones) return refuse();
      }
      tokens -= 1;
      last.delete(key);
      last.set(key, now);
      allowed++;
      return true;
    },
    fetched(zone, now) {
      const key = canonicalName(zone);
      if (!last.has(key) && last.size >= maxZones) {
        for (const [z, at] of last) if (now - at >= interval) last.delete(z);
        if (last.size >= maxZones) return;
      }
      last.delete(key);
      last.set(key, now);
    },
    allowed: () => allowed,
    refused: () => refused,
  };
}
