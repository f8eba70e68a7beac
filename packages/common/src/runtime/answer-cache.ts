/**
 * Encoded responses kept for reuse, keyed by the bytes of the query after its id: a server that
 * has answered a question once sends the same octets again with the new id patched in, without
 * decoding the query, looking anything up or encoding. This is what authoritative servers such
 * as NSD and Knot do with answers compiled at load time; here the first query of a question
 * compiles it.
 *
 * Two queries with the same octets after the id (flags, question, EDNS payload size, DO, CO and
 * options) get the same response, which is why the key is those octets, and whether the query
 * came over UDP (whose answers are cut to the sender's payload size). The cache is correct
 * only while its owner's data is unchanged: `generation()` returns a number that changes
 * whenever the data may have (a store's write counter). On a change, `changes(since)` (when
 * given) says which owner names changed: the entries for those names and for their ancestors
 * (which may start or stop being empty non-terminals) are dropped, the rest stay; without it,
 * or when it answers `'all'`, every entry is dropped. Entries also age out after
 * `maxAgeSeconds`, which bounds how long an online signature in a cached answer is reused, and
 * how old the SOA in a kept negative answer can be (each write bumps the zone's serial).
 *
 * With `decrementTtls` (RFC 1035 §7.3: TTLs count down while cached), the
 * TTL of every record is lowered by the whole seconds since the entry was stored, and an entry
 * lives no longer than the smallest TTL of the response (of the whole response, also when what
 * was sent over UDP is its truncated form, which holds no records).
 *
 * Data can also stop being valid at a set time without a write: a DP's mapping at its `exp`.
 * `expiresAt(response)` (when given) says when; an entry is then kept no later than that time
 * minus the largest TTL the response carries (without `decrementTtls`), so whoever receives it,
 * even in its last second in the cache, and keeps it for its TTL (RFC 2181 §8) has dropped it
 * by then too. A response whose TTLs already reach that time is not kept at all. Example:
 * expiry at t = 1000 s, a response at t = 500 with TTL 300 is kept until 700; at 750, with its
 * TTL now capped to 250, it is not kept.
 *
 * Worked example: the query `12 34 01 00 00 01 …` (id 0x1234) fills an entry under the key
 * `01 00 00 01 …`; the next query `ab cd 01 00 00 01 …` gets the stored response with its first
 * two octets set to `ab cd`.
 */
import { systemClock, type Clock } from './clock.js';
import type { MetricsRegistry } from './metrics.js';
import { LRUCache } from 'lru-cache';
import { canonicalName, parentName } from '../protocol/names.js';
import type { Message, Rcode } from '../protocol/records.js';
import { recordSpans } from '../protocol/record-spans.js';
import { HEADER_OCTETS } from '../protocol/wire.js';

/** Default octets of responses (and their keys) a cache holds: 64 MiB. */
export const ANSWER_CACHE_OCTETS = 64 * 2 ** 20;
/** Default longest time an entry is reused, in seconds. */
export const ANSWER_CACHE_MAX_AGE_SECONDS = 300;
/** Accounting overhead charged per entry besides its octets (object, list links, map slot). */
const ENTRY_OVERHEAD_OCTETS = 96;
/** OPT pseudo-records carry no TTL (RFC 6891 §6.1.3): their TTL field is flags. */
const TYPE_OPT = 41;
/** Response codes whose answers depend only on the data: everything else is answered anew. */
const CACHEABLE_RCODES: ReadonlySet<Rcode> = new Set<Rcode>(['NOERROR', 'NXDOMAIN', 'REFUSED']);

/** Settings of a {@link AnswerCache}. */
export interface AnswerCacheOptions {
  /** Octets held at most; default {@link ANSWER_CACHE_OCTETS}. */
  maxOctets?: number;
  /** Longest reuse of an entry; default {@link ANSWER_CACHE_MAX_AGE_SECONDS}. */
  maxAgeSeconds?: number;
  /** Changes whenever the answers may have; default: never changes. */
  generation?: () => number;
  /**
   * What changed since a generation: canonical owner names, or `'all'`. Without it every change
   * of generation empties the cache.
   */
  changes?: (since: number) => { generation: number; names: readonly string[] | 'all' };
  /**
   * Count TTLs down while cached; default false (an authoritative server, and the resolver's
   * front ends, whose TTLs do not count down: `expiresAt` bounds their entries instead).
   */
  decrementTtls?: boolean;
  /**
   * When the data in `response` stops being valid (seconds since the epoch, the cache's clock),
   * or undefined when only a change of generation ends it. See the module comment.
   */
  expiresAt?: (response: Message) => number | undefined;
  /**
   * The server's clock, seconds since the epoch; default {@link systemClock}. A clock with
   * fractional seconds is counted as finely as it reads.
   */
  now?: Clock;
}

/** A cached response, ready to send. */
export interface CachedResponse {
  /** The response octets with the query's id (a fresh copy: the caller may keep it). */
  readonly wire: Uint8Array;
  /** The DoH `max-age` (RFC 8484 §5.1), already lowered by the time spent in the cache. */
  readonly maxAge: number;
  /** The question answered, canonical name and type (for the query log). */
  readonly name: string;
  readonly type: string;
  /** The response code of the response. */
  readonly rcode: Rcode;
}

/** Counters for metrics. */
export interface AnswerCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly entries: number;
  readonly octets: number;
}

interface Entry {
  /** The canonical query name, for invalidation by name. */
  readonly name: string;
  readonly type: string;
  readonly rcode: Rcode;
  readonly wire: Uint8Array;
  readonly storedAt: number;
  readonly expiresAt: number;
  readonly maxAge: number;
  /** Offsets and stored values of the TTL fields, when TTLs count down. */
  readonly ttls: readonly number[] | undefined;
}

/** See the module comment. */
export class AnswerCache {
  readonly #entries: LRUCache<string, Entry>;
  readonly #maxAge: number;
  readonly #generation: () => number;
  readonly #changes: AnswerCacheOptions['changes'];
  /** Keys of the entries by query name. */
  readonly #byName = new Map<string, Set<string>>();
  readonly #decrement: boolean;
  readonly #expiresAt: AnswerCacheOptions['expiresAt'];
  readonly #now: Clock;
  #seen: number;
  #hits = 0;
  #misses = 0;

  constructor(options: AnswerCacheOptions = {}) {
    const maxOctets = options.maxOctets ?? ANSWER_CACHE_OCTETS;
    const maxAge = options.maxAgeSeconds ?? ANSWER_CACHE_MAX_AGE_SECONDS;
    if (!Number.isSafeInteger(maxOctets) || maxOctets < 1)
      throw new RangeError(`maxOctets must be a positive integer, got ${String(maxOctets)}`);
    if (!Number.isSafeInteger(maxAge) || maxAge < 1)
      throw new RangeError(`maxAgeSeconds must be a positive integer, got ${String(maxAge)}`);
    this.#entries = new LRUCache<string, Entry>({
      maxSize: maxOctets,
      sizeCalculation: (entry, key) =>
        entry.wire.length + key.length + (entry.ttls?.length ?? 0) * 8 + ENTRY_OVERHEAD_OCTETS,
      // Whichever way an entry leaves (eviction, expiry, replacement, invalidation), its key
      // leaves the name index.
      dispose: (entry, key) => {
        const keys = this.#byName.get(entry.name);
        keys?.delete(key);
        if (keys?.size === 0) this.#byName.delete(entry.name);
      },
    });
    this.#changes = options.changes;
    this.#maxAge = maxAge;
    this.#generation = options.generation ?? (() => 0);
    this.#decrement = options.decrementTtls ?? false;
    this.#expiresAt = options.expiresAt;
    this.#now = options.now ?? systemClock;
    this.#seen = this.#generation();
  }

  /** The generation now; pass it to {@link set} for a response computed from data read after. */
  generation(): number {
    const current = this.#generation();
    if (current !== this.#seen) {
      const changed = this.#changes?.(this.#seen).names ?? 'all';
      this.#seen = current;
      if (changed === 'all') this.#entries.clear();
      else for (const name of changed) this.#forget(name);
    }
    return current;
  }

  /** Drops the entries for `name` and for each of its ancestors. */
  #forget(name: string): void {
    // Bounded: a name has at most 127 labels.
    for (let at: string | undefined = canonicalName(name); at !== undefined; at = parentName(at)) {
      const keys = this.#byName.get(at);
      if (keys !== undefined) for (const key of [...keys]) this.#entries.delete(key);
    }
  }

  /** The stored response to `query` (the query's octets) with its id, or undefined. */
  get(query: Uint8Array, udp: boolean): CachedResponse | undefined {
    this.generation();
    if (query.length <= HEADER_OCTETS) return this.#miss();
    const key = keyOf(query, udp);
    const entry = this.#entries.get(key);
    if (entry === undefined) return this.#miss();
    const now = this.#now();
    if (now >= entry.expiresAt) {
      this.#entries.delete(key);
      return this.#miss();
    }
    const wire = Buffer.allocUnsafe(entry.wire.length);
    wire.set(entry.wire);
    wire[0] = query[0] as number;
    wire[1] = query[1] as number;
    let maxAge = entry.maxAge;
    if (entry.ttls !== undefined) {
      const elapsed = Math.floor(now - entry.storedAt);
      maxAge = Math.max(0, maxAge - elapsed);
      if (elapsed > 0) {
        for (let i = 0; i < entry.ttls.length; i += 2) {
          wire.writeUInt32BE(Math.max(0, (entry.ttls[i + 1] as number) - elapsed), entry.ttls[i]);
        }
      }
    }
    this.#hits++;
    return { wire, maxAge, name: entry.name, type: entry.type, rcode: entry.rcode };
  }

  /**
   * Stores `wire`, what was sent for `response` (over UDP perhaps its truncated form) to the
   * query whose octets are `bytes`, unless the data changed since `generation` was read, or the
   * response is not one to reuse (an error other than NXDOMAIN or REFUSED).
   */
  set(
    bytes: Uint8Array,
    udp: boolean,
    response: Message,
    wire: Uint8Array,
    generation: number,
    maxAge: number,
  ): void {
    if (generation !== this.generation()) return;
    if (!CACHEABLE_RCODES.has(response.rcode)) return;
    if (bytes.length <= HEADER_OCTETS || wire.length <= HEADER_OCTETS) return;
    const now = this.#now();
    let ttls: number[] | undefined;
    let lifetime = this.#maxAge;
    const expiresAt = this.#expiresAt?.(response);
    if (expiresAt !== undefined) {
      // Counted-down TTLs never reach past the expiry; fixed ones must be sent early enough.
      const slack = this.#decrement ? 0 : largestTtl(response);
      lifetime = Math.min(lifetime, expiresAt - now - slack);
      if (lifetime <= 0) return;
    }
    if (this.#decrement) {
      ttls = ttlFields(wire);
      if (ttls === undefined) return;
      let records = 0;
      for (const section of [response.answers, response.authorities, response.additionals]) {
        for (const rr of section) {
          records++;
          lifetime = Math.min(lifetime, rr.ttl);
        }
      }
      // Without a TTL, only a refusal (which depends on the name alone) is known to last.
      if ((records === 0 && response.rcode !== 'REFUSED') || lifetime <= 0) return;
    }
    const question = response.questions[0];
    if (question === undefined) return;
    const name = canonicalName(question.name);
    const key = keyOf(bytes, udp);
    this.#entries.set(key, {
      name,
      type: question.type,
      rcode: response.rcode,
      wire: Uint8Array.from(wire),
      storedAt: now,
      expiresAt: now + lifetime,
      maxAge,
      ttls,
    });
    if (!this.#entries.has(key)) return;
    let keys = this.#byName.get(name);
    if (keys === undefined) this.#byName.set(name, (keys = new Set()));
    keys.add(key);
  }

  /** Drops every entry. */
  clear(): void {
    this.#entries.clear();
  }

  get stats(): AnswerCacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      entries: this.#entries.size,
      octets: this.#entries.calculatedSize,
    };
  }

  #miss(): undefined {
    this.#misses++;
    return undefined;
  }
}

/** The largest TTL of the records of `response` (0 without records). */
function largestTtl(response: Message): number {
  let largest = 0;
  for (const section of [response.answers, response.authorities, response.additionals]) {
    for (const rr of section) largest = Math.max(largest, rr.ttl);
  }
  return largest;
}

/** The octets after the id, as a string (a compact, hashable key), marked for UDP. */
function keyOf(query: Uint8Array, udp: boolean): string {
  const buffer = Buffer.isBuffer(query)
    ? query
    : Buffer.from(query.buffer, query.byteOffset, query.byteLength);
  return (udp ? 'u' : 's') + buffer.toString('latin1', 2);
}

/**
 * The TTL fields of an encoded message as pairs (offset, value), OPT excepted; undefined when
 * the octets do not parse. Bounded: every step moves forward through a finite message.
 */
export function ttlFields(wire: Uint8Array): number[] | undefined {
  const spans = recordSpans(wire);
  if (spans === undefined) return undefined;
  const view = new DataView(wire.buffer, wire.byteOffset, wire.byteLength);
  const out: number[] = [];
  for (const { at, type } of spans) {
    if (type !== TYPE_OPT) out.push(at + 4, view.getUint32(at + 4));
  }
  return out;
}

/**
 * Declares the answer cache's metrics in a server's registry: `<pkg>_answer_cache_hits_total`,
 * `_misses_total` (the cache's running counts) and `_bytes`, read from `source()` when scraped
 * (zero while the server has no cache).
 */
export function declareAnswerCacheMetrics(
  metrics: MetricsRegistry,
  source: () => { readonly stats: AnswerCacheStats } | undefined,
): void {
  metrics.counter('answer_cache_hits_total', {
    help: 'Queries answered from the answer cache (not in queries_total)',
    collect() {
      // Counters only go up: this one is set to the cache's running total.
      this.reset();
      this.inc(source()?.stats.hits ?? 0);
    },
  });
  metrics.counter('answer_cache_misses_total', {
    help: 'Queries the answer cache could not answer',
    collect() {
      this.reset();
      this.inc(source()?.stats.misses ?? 0);
    },
  });
  metrics.gauge('answer_cache_bytes', {
    help: 'Octets held by the answer cache',
    collect() {
      this.set(source()?.stats.octets ?? 0);
    },
  });
}
