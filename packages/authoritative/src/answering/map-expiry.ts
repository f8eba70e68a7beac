import { LRUCache } from 'lru-cache';
import { decodeMapping, SignedObjectError, type ResourceRecord } from '@mimi-discovery/common';

/**
 * When the mappings of a MAP RRset stop being served (R9, design §6: a mapping is valid only
 * while `now < exp` and `now < att.exp`). A mapping expires at min(`exp`, `att.exp`); from that
 * second on a DP neither answers nor exports it, whether or not a write has rewritten its RRset
 * since (a write drops expired mappings too, but nothing makes one happen at the expiry).
 *
 * Decoding a mapping strictly costs tens of microseconds, far more than the rest of an answer,
 * so the expiry of each MAP RDATA is remembered by its octets ({@link MappingExpiries}): a later
 * answer from the same RRset, or from the same records after the store decoded its node again,
 * pays a string key and a map lookup per record.
 *
 * Worked example: a MAP RRset of two mappings, A expiring at 1000 and B at 2000 (its own `exp`
 * 3000, its attestation's 2000). At 999 both are current, the earliest expiry is 1000; at 1000
 * only B is, the earliest expiry 2000; at 2000 none is.
 */

/**
 * Octets of MAP RDATA (the keys) a {@link MappingExpiries} holds at most: 4 MiB, some 8,000
 * typical mappings of about 500 octets, and never more than 4 MiB whatever their size.
 */
export const MAPPING_EXPIRY_MEMO_OCTETS = 4 * 2 ** 20;
/** Accounting overhead charged per remembered RDATA besides its octets. */
const ENTRY_OVERHEAD_OCTETS = 64;

/**
 * The expiry of a record that does not decode as a mapping: never. Such a record (which the
 * registrar never writes, but `apply` accepts) is served as stored; resolvers reject it.
 */
const NEVER = Number.POSITIVE_INFINITY;

/**
 * The second at which the mapping in one MAP RDATA expires: min(`exp`, `att.exp`), or
 * `Infinity` when the octets are not a mapping.
 */
export function mappingExpiry(rdata: Uint8Array): number {
  try {
    const mapping = decodeMapping(rdata);
    return Math.min(mapping.exp, mapping.att.exp);
  } catch (error) {
    if (error instanceof SignedObjectError) return NEVER;
    throw error;
  }
}

/**
 * {@link mappingExpiry}, remembered for the most recently used distinct RDATA up to `maxOctets`
 * of them (an LRU; each entry is charged its octets and a small overhead).
 */
export class MappingExpiries {
  readonly #memo: LRUCache<string, number>;

  constructor(maxOctets: number = MAPPING_EXPIRY_MEMO_OCTETS) {
    if (!Number.isSafeInteger(maxOctets) || maxOctets < 1) {
      throw new RangeError(`maxOctets must be a positive integer, got ${String(maxOctets)}`);
    }
    this.#memo = new LRUCache({
      maxSize: maxOctets,
      sizeCalculation: (_, key) => key.length + ENTRY_OVERHEAD_OCTETS,
    });
  }

  /** See {@link mappingExpiry}. */
  of(rdata: Uint8Array): number {
    const key = Buffer.from(rdata.buffer, rdata.byteOffset, rdata.byteLength).toString('latin1');
    let expiry = this.#memo.get(key);
    if (expiry === undefined) {
      expiry = mappingExpiry(rdata);
      this.#memo.set(key, expiry);
    }
    return expiry;
  }

  /** RDATA remembered now. */
  get size(): number {
    return this.#memo.size;
  }

  /** Octets charged for them (at most the bound given). */
  get octets(): number {
    return this.#memo.calculatedSize;
  }
}

/** A MAP RRset as it stands at one second. */
export interface CurrentMappings {
  /** The records whose mapping has not expired, in the stored order. */
  readonly records: readonly ResourceRecord[];
  /** How many records were left out: 0 when the RRset is served as stored. */
  readonly removed: number;
  /** The earliest expiry among `records` (`Infinity` when none has one, or none is left). */
  readonly earliest: number;
}

/**
 * The records of the MAP RRset `rrset` that are current at `now` (seconds): those whose
 * mapping's expiry is after `now`. `rrset` itself is returned when nothing has expired.
 */
export function currentMappings(
  rrset: readonly ResourceRecord[],
  now: number,
  expiryOf: (rdata: Uint8Array) => number,
): CurrentMappings {
  let earliest = NEVER;
  let removed = 0;
  const expiries = rrset.map((rr) => (rr.type === 'MAP' ? expiryOf(rr.data) : NEVER));
  for (const expiry of expiries) {
    if (expiry <= now) removed++;
    else earliest = Math.min(earliest, expiry);
  }
  if (removed === 0) return { records: rrset, removed, earliest };
  const records = rrset.filter((_, i) => (expiries[i] as number) > now);
  return { records, removed, earliest };
}
