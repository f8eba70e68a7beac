import { LRUCache } from 'lru-cache';
import { MAX_CACHE_TTL_SECONDS, MAX_STALE_AGE_SECONDS } from './limits.js';

/**
 * The resolver's cache: one LRU bounded by bytes (each entry sized by {@link estimateSize}, close
 * to its encoded size) shared by every kind of entry — zone cuts, validated answers and denials
 * (RFC 2308, a zone's DNSKEY RRset among them), verified signatures, failures, discovery results.
 * Each kind is a typed {@link CacheSlot}, so a key of one kind never reads as another.
 *
 * Time comes from the injected clock. An entry is fresh until its TTL runs out; it then stays
 * readable as stale for {@link MAX_STALE_AGE_SECONDS} (RFC 8767 §5), for the resolver to serve
 * when every server of a zone fails. The TTL a caller passes is already capped by whatever
 * bounds the data (RRSIG expiration, mapping `exp`); the cache caps it further at
 * {@link MAX_CACHE_TTL_SECONDS}.
 *
 * Worked example: an answer cached at t=0 with TTL 300 is a hit until t=300 s, a miss after;
 * until t=300 s + 1 day `getStale` still returns it; then it is gone.
 */

/** A kind of cached value: a key prefix tied to the value's type. */
export interface CacheSlot<T> {
  readonly prefix: string;
  /** Phantom field tying the slot to `T`; never set. */
  readonly type?: T;
}

/** Declares a slot; `prefix` must be unique per cache. */
export function cacheSlot<T>(prefix: string): CacheSlot<T> {
  return Object.freeze({ prefix });
}

/** A fresh cached value, the seconds it has left, and the seconds it was stored for. */
export interface CacheHit<T> {
  readonly value: T;
  readonly ttl: number;
  /** The TTL the entry was stored with, capped as {@link ResolverCache.set} caps it. */
  readonly lifetime: number;
}

interface Entry {
  readonly value: unknown;
  /** Seconds since the epoch, on the injected clock. */
  readonly expiresAt: number;
  readonly lifetime: number;
  readonly size: number;
}

/** Fixed per-entry overhead in the byte estimate (key, timestamps, LRU links). */
const ENTRY_OVERHEAD_OCTETS = 64;
/** Deepest nesting {@link estimateSize} walks; deeper values count as this overhead. */
const MAX_SIZE_DEPTH = 12;

/**
 * An estimate of a value's encoded size in octets: bytes count their length, strings their
 * UTF-16 length, numbers and booleans 8, plus a small overhead per object.
 */
export function estimateSize(value: unknown, depth = 0): number {
  if (value instanceof Uint8Array) return value.length;
  if (typeof value === 'string') return value.length;
  if (typeof value !== 'object' || value === null) return 8;
  if (depth >= MAX_SIZE_DEPTH) return 16;
  let total = 16;
  if (Array.isArray(value)) {
    for (const item of value) total += estimateSize(item, depth + 1);
    return total;
  }
  // for…in rather than Object.entries: no array per object, and every answer cached is sized.
  for (const key in value) {
    if (Object.hasOwn(value, key)) {
      total += key.length + estimateSize((value as Record<string, unknown>)[key], depth + 1);
    }
  }
  return total;
}

/** The TTL an entry stored for `ttlSeconds` gets: whole seconds, at most {@link MAX_CACHE_TTL_SECONDS}. */
export function cachedTtl(ttlSeconds: number): number {
  return Math.min(Math.floor(ttlSeconds), MAX_CACHE_TTL_SECONDS);
}

/** The byte-bounded TTL cache; see the module comment. */
export class ResolverCache {
  readonly #lru: LRUCache<string, Entry>;
  readonly #now: () => number;

  /**
   * `maxBytes` bounds the estimated size of every entry together; `now` is the resolver's clock,
   * in seconds since the epoch (fractions allowed).
   */
  constructor(maxBytes: number, now: () => number) {
    this.#lru = new LRUCache<string, Entry>({
      maxSize: Math.max(1, Math.floor(maxBytes)),
      sizeCalculation: (entry) => Math.max(1, entry.size),
    });
    this.#now = now;
  }

  /** A fresh value; undefined when absent or expired. */
  get<T>(slot: CacheSlot<T>, key: string): CacheHit<T> | undefined {
    const entry = this.#entry(slot, key);
    const now = this.#now();
    if (entry === undefined || entry.expiresAt <= now) return undefined;
    // The slot's prefix fixes the type written under this key.
    return {
      value: entry.value as T,
      ttl: Math.max(0, Math.floor(entry.expiresAt - now)),
      lifetime: entry.lifetime,
    };
  }

  /** A value whose TTL ran out less than {@link MAX_STALE_AGE_SECONDS} ago (RFC 8767). */
  getStale<T>(slot: CacheSlot<T>, key: string): T | undefined {
    const entry = this.#entry(slot, key);
    return entry === undefined ? undefined : (entry.value as T);
  }

  /** Stores a value for `ttlSeconds` (capped at {@link MAX_CACHE_TTL_SECONDS}); 0 stores nothing. */
  set<T>(slot: CacheSlot<T>, key: string, value: T, ttlSeconds: number): void {
    const ttl = cachedTtl(ttlSeconds);
    if (!(ttl > 0)) return;
    const id = `${slot.prefix}:${key}`;
    this.#lru.set(id, {
      value,
      expiresAt: this.#now() + ttl,
      lifetime: ttl,
      size: ENTRY_OVERHEAD_OCTETS + id.length + estimateSize(value),
    });
  }

  /** Drops one entry, fresh or stale. */
  delete<T>(slot: CacheSlot<T>, key: string): void {
    this.#lru.delete(`${slot.prefix}:${key}`);
  }

  /**
   * Drops every entry of one owner name, fresh and stale, whatever its kind: the keys
   * `<owner>` (a zone cut, a failure of the zone) and `<owner>/<type>` (answers, denials,
   * failures of one question). As `unbound-control flush <name>`: what is below the name stays.
   * Returns how many entries went.
   */
  deleteOwner(owner: string): number {
    let dropped = 0;
    for (const id of [...this.#lru.keys()]) {
      const key = id.slice(id.indexOf(':') + 1);
      if (key === owner || key.startsWith(`${owner}/`)) {
        this.#lru.delete(id);
        dropped++;
      }
    }
    return dropped;
  }

  /** Drops every entry, fresh and stale. */
  clear(): void {
    this.#lru.clear();
  }

  /** Estimated octets held. */
  get bytes(): number {
    return this.#lru.calculatedSize;
  }

  #entry(slot: CacheSlot<unknown>, key: string): Entry | undefined {
    const id = `${slot.prefix}:${key}`;
    const entry = this.#lru.get(id);
    if (entry === undefined) return undefined;
    if (entry.expiresAt + MAX_STALE_AGE_SECONDS <= this.#now()) {
      this.#lru.delete(id);
      return undefined;
    }
    return entry;
  }
}

/**
 * Single-flight: concurrent calls with the same key share one run of `work` (one resolution for
 * 100 identical questions); the key is free again once the run settles. The resolver keeps two:
 * questions (`questions.ts`) and discoveries (`resolver.ts`), each a unit of work of its own.
 */
export class SingleFlight<T> {
  readonly #running = new Map<string, Promise<T>>();

  /** Runs `work` for `key`, or joins the run already in flight. */
  run(key: string, work: () => Promise<T>): Promise<T> {
    const running = this.#running.get(key);
    if (running !== undefined) return running;
    const started = work().finally(() => this.#running.delete(key));
    this.#running.set(key, started);
    return started;
  }

  /** Keys in flight. */
  get size(): number {
    return this.#running.size;
  }
}
