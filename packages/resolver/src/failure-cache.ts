import {
  canonicalName,
  isSubdomain,
  namesEqual,
  parentName,
  type RRType,
} from '@mimi-discovery/common';
import { cacheSlot, type ResolverCache } from './cache.js';
import type { Failure } from './iterator.js';
import { FAILURE_CACHE_MAX_SECONDS, FAILURE_CACHE_MIN_SECONDS } from './limits.js';

/**
 * Failure caching (RFC 9520): a resolution that failed is remembered, so that asking again is
 * answered from the cache — no upstream query, no signature verification — until the entry
 * expires. Two scopes:
 *
 * - the **zone** (RFC 9520 §3.2 and §3.3): the failure is the zone's (its DNSKEY RRset is bogus or
 *   cannot be had, its delegation's DS is bogus, none of its servers can be reached or used), so
 *   it holds for every question of a name at or under the zone: every CSI of the range;
 * - the **question** (name and type): a bogus answer or denial, an error a server answered for
 *   that name, a limit or a timeout of that one resolution.
 *
 * The first failure of a scope is kept {@link FAILURE_CACHE_MIN_SECONDS}; a failure of the same
 * scope within {@link FAILURE_CACHE_MAX_SECONDS} of the previous one's expiry is a repeat, kept
 * twice as long as the previous, up to {@link FAILURE_CACHE_MAX_SECONDS} (RFC 9520 §3.2:
 * exponential backoff, never longer than five minutes). A success of the question forgets its
 * entry, so the next failure starts at the minimum again.
 *
 * Worked example: the DNSKEY RRset of `x.test.email.mimi.arpa` is bogus at t=0: the zone is
 * cached failed until t=5 s, and a discovery of any CSI `…@x.test` until then gets `error`
 * (bogus) at once. At t=6 s it is resolved again and fails again: cached until t=16 s; then
 * until t=36 s, t=76 s, … and never more than 300 s at a time.
 *
 * Entries live in the resolver's cache (bounded by bytes with everything else, emptied by
 * `flushCache`), each keeping the failure, its count of repeats and its expiry.
 */

/** A failure as remembered. */
export interface CachedFailure {
  readonly failure: Failure;
  /** Failures of this scope in a row (1 for the first). */
  readonly repeats: number;
  /** When the entry stops being served, in seconds since the epoch. */
  readonly until: number;
}

/** A failure found in the cache, and the seconds it has left. */
export interface FailureHit {
  readonly failure: Failure;
  readonly ttl: number;
}

/** Cached failures, by `z:<zone>` or `q:<name>/<type>`. */
const FAILURES = cacheSlot<CachedFailure>('failure');

/** Seconds a failure is kept the `repeats`-th time in a row: 5, 10, 20, … up to 300. */
export function failureBackoffSeconds(repeats: number): number {
  const doublings = Math.max(0, Math.min(Math.floor(repeats) - 1, 16));
  return Math.min(FAILURE_CACHE_MIN_SECONDS * 2 ** doublings, FAILURE_CACHE_MAX_SECONDS);
}

const zoneKey = (zone: string): string => `z:${canonicalName(zone)}`;
const questionKey = (name: string, type: RRType): string => `q:${canonicalName(name)}/${type}`;

/** The failure cache over `cache`; `now` is the resolver's clock, in seconds since the epoch. */
export class FailureCache {
  readonly #cache: ResolverCache;
  readonly #now: () => number;
  readonly #apex: string;

  /** Failures of names under `apex` (the zones walked for a name stop there). */
  constructor(cache: ResolverCache, apex: string, now: () => number) {
    this.#cache = cache;
    this.#apex = canonicalName(apex);
    this.#now = now;
  }

  /**
   * The failure that answers `name`/`type`: the question's own, else that of the zone at or
   * above the name closest to it that failed (for DS, from the parent: DS is the parent's data).
   */
  find(name: string, type: RRType): FailureHit | undefined {
    const own = this.#cache.get(FAILURES, questionKey(name, type));
    if (own !== undefined) return { failure: own.value.failure, ttl: own.ttl };
    if (!isSubdomain(name, this.#apex)) return undefined;
    let at: string | undefined =
      type === 'DS' && !namesEqual(name, this.#apex) ? parentName(name) : name;
    while (at !== undefined) {
      const hit = this.#cache.get(FAILURES, zoneKey(at));
      if (hit !== undefined) return { failure: hit.value.failure, ttl: hit.ttl };
      if (namesEqual(at, this.#apex)) return undefined;
      at = parentName(at);
    }
    return undefined;
  }

  /**
   * Remembers that `name`/`type` failed with `failure`: for its zone when it names one, else for
   * the question. Returns the entry, with its backoff. The very failure already kept under the
   * same key is one failure, not a repeat: the failure of a zone's keys reaches every question
   * that needed them, and each records what it ended with.
   */
  record(name: string, type: RRType, failure: Failure): CachedFailure {
    const key = failure.zone === undefined ? questionKey(name, type) : zoneKey(failure.zone);
    const now = this.#now();
    const previous = this.#cache.getStale(FAILURES, key);
    if (previous !== undefined && previous.failure === failure && now < previous.until) {
      return previous;
    }
    const repeat = previous !== undefined && now - previous.until < FAILURE_CACHE_MAX_SECONDS;
    const repeats = repeat ? previous.repeats + 1 : 1;
    const seconds = failureBackoffSeconds(repeats);
    const entry: CachedFailure = { failure, repeats, until: now + seconds };
    this.#cache.set(FAILURES, key, entry, seconds);
    return entry;
  }

  /** Forgets the question's own failure after it resolved. */
  forget(name: string, type: RRType): void {
    this.#cache.delete(FAILURES, questionKey(name, type));
  }
}
