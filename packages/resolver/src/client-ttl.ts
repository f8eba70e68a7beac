/**
 * The TTL the resolver gives its clients (the DNS front ends and the JSON API) for a cached
 * answer, chosen so that an answer does not tell one client when another filled the cache.
 *
 * A resolver that counts TTLs down (RFC 1035 §7.3) answers a name cached 200 s ago with TTL
 * 100 of 300, and whoever asks learns that someone asked 200 s before (cache snooping). Here an
 * entry stored for T seconds is given to clients with the fixed TTL ⌊T/2⌋ during its first
 * T − ⌊T/2⌋ seconds; a client asking later has the resolver fetch the answer again (the
 * resolution itself, which tells no client anything, keeps using the entry until T):
 *
 * - every client served from one fill gets the same TTL, whenever it asks: the TTL says how
 *   long the source lets the data be kept, not when someone asked;
 * - no client keeps the data past the fill + T, the time up to which a counting-down resolver
 *   lets it be kept: the last client served from the fill, at fill + T − ⌊T/2⌋ − 1, keeps it
 *   ⌊T/2⌋ seconds. A removed mapping is gone from every cache within its TTL (R9), as before,
 *   and nothing is kept past an RRSIG expiration or a mapping's `exp`, which cap T.
 *
 * What it costs: clients keep an answer half as long as the source allows, and the resolver
 * asks the source again after half the TTL for names its clients keep asking (at most twice
 * the upstream queries for those). What it does not hide: that the answer was cached at all
 * (a hit comes back faster than a walk to the DP), and, in the last TTL before an expiry, when
 * the source itself gives a TTL that shrinks with time, the fill time that shrinking TTL shows.
 *
 * Worked example: a MAP RRset with TTL 300 fetched at t = 0: clients get TTL 150 until
 * t = 150; a client asking at t = 151 has it fetched again, and it and later clients get TTL
 * 150 from that fill until t = 301.
 */

/** What a client is given from a cache entry: its TTL, and for how long it may be given. */
export interface ClientTtl {
  /** The TTL of the answer given to a client. */
  readonly ttl: number;
  /** Seconds from now during which the answer may be given with that TTL. */
  readonly usable: number;
}

/**
 * The TTL a client gets from an entry stored for `lifetime` seconds with `left` seconds left,
 * or undefined once the entry is past its first part (see the module comment): the answer is
 * then fetched again for the client.
 */
export function clientTtl(lifetime: number, left: number): ClientTtl | undefined {
  const ttl = Math.floor(lifetime / 2);
  const usable = left - ttl;
  return usable > 0 ? { ttl, usable } : undefined;
}

/** What a client gets from an answer fetched just now that is cached for `lifetime` seconds. */
export function freshClientTtl(lifetime: number): ClientTtl {
  return clientTtl(lifetime, lifetime) ?? { ttl: 0, usable: 0 };
}
