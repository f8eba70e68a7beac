import type { Clock } from '@mimi-discovery/common';
import { LRUCache } from 'lru-cache';

/**
 * Rate limits of the registration API (design §8.1: "attempts and sends are rate-limited per
 * CSI and per client"), as token buckets over an injected clock.
 *
 * A bucket holds at most `capacity` tokens and refills continuously at `capacity` tokens per
 * `windowSeconds`; each request takes one. Worked example, 5 sends per CSI per hour: five codes
 * can be sent at once, the sixth is refused with `retryAfter` 720 s (one token every
 * 3600 / 5 s), and after a quiet hour the bucket is full again.
 *
 * Tables are bounded: least recently used keys are dropped when a table is full. A dropped key
 * starts again with a full bucket, so an attacker who fills a table with fresh keys can reset
 * a victim's bucket; the table sizes below keep that expensive (many client addresses) while
 * capping memory.
 */

/** Codes sent to one CSI per hour (design §8.1). */
export const SENDS_PER_CSI_PER_HOUR = 5;
/** Requests of one client (address, or IPv6 /64) per minute, over every route. */
export const REQUESTS_PER_CLIENT_PER_MINUTE = 60;
/**
 * Wrong codes tried against one pending code before it is discarded. With the defaults a CSI
 * sees at most SENDS_PER_CSI_PER_HOUR × MAX_ATTEMPTS_PER_CODE = 25 guesses an hour, against
 * 10^6 codes of 6 digits.
 */
export const MAX_ATTEMPTS_PER_CODE = 5;
/** Most keys (CSIs, clients) one rate-limit table tracks. */
export const MAX_RATE_LIMIT_KEYS = 100_000;

/** The outcome of taking a token: `taken`, or `limited` with the seconds until one is available. */
export type TakeResult =
  { readonly kind: 'taken' } | { readonly kind: 'limited'; readonly retryAfter: number };

/** Token buckets by key. */
export interface TokenBuckets {
  /** Takes one token from `key`'s bucket, or says how many seconds until one is available. */
  take(key: string): TakeResult;
  /** Tokens left in `key`'s bucket now (for tests and metrics). */
  available(key: string): number;
  /** Number of keys tracked. */
  readonly size: number;
}

/** Settings of {@link createTokenBuckets}. */
export interface TokenBucketOptions {
  /** Tokens in a full bucket, and tokens added per window. */
  readonly capacity: number;
  readonly windowSeconds: number;
  /** Most keys tracked; default {@link MAX_RATE_LIMIT_KEYS}. */
  readonly maxKeys?: number;
  /**
   * The clock, whole seconds since the epoch (the server's one clock); the buckets refill
   * correctly from a clock with fractions too.
   */
  readonly now: Clock;
}

interface Bucket {
  tokens: number;
  updated: number;
}

/** Creates a table of token buckets, one per key, each created full on first use. */
export function createTokenBuckets(options: TokenBucketOptions): TokenBuckets {
  const { capacity, windowSeconds, now } = options;
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new RangeError('capacity must be a positive integer');
  }
  if (!(windowSeconds > 0)) throw new RangeError('windowSeconds must be positive');
  const rate = capacity / windowSeconds;
  const table = new LRUCache<string, Bucket>({ max: options.maxKeys ?? MAX_RATE_LIMIT_KEYS });

  const refill = (key: string): Bucket => {
    const t = now();
    const bucket = table.get(key) ?? { tokens: capacity, updated: t };
    // A clock that steps back adds nothing and takes nothing.
    const elapsed = Math.max(0, t - bucket.updated);
    bucket.tokens = Math.min(capacity, bucket.tokens + elapsed * rate);
    bucket.updated = Math.max(bucket.updated, t);
    return bucket;
  };

  return {
    take(key) {
      const bucket = refill(key);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        table.set(key, bucket);
        return { kind: 'taken' };
      }
      table.set(key, bucket);
      return { kind: 'limited', retryAfter: Math.max(1, Math.ceil((1 - bucket.tokens) / rate)) };
    },
    available(key) {
      return table.has(key) ? Math.floor(refill(key).tokens) : capacity;
    },
    get size() {
      return table.size;
    },
  };
}
