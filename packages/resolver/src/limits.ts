import { MAX_MESSAGE_OCTETS } from '@mimi-discovery/common';

/**
 * Every bound the resolver puts on work done for one question, as trusted resolvers set them
 * (Unbound's `max-referrals`-like caps, RFC 9156 §2.3, RFC 8767, design §6). Each limit that is
 * hit ends the resolution with `error` reason `limit` (or `timeout`), never a silent `none`.
 */

/** Referrals followed in one resolution; a longer chain is a delegation loop or an attack. */
export const MAX_REFERRALS_PER_RESOLUTION = 16;

/** Upstream queries sent for one resolution (minimisation steps, DNSKEYs, retries included). */
export const MAX_QUERIES_PER_RESOLUTION = 48;

/** MAPREF targets followed for one CSI, across every level (design §6: fan-out bounded). */
export const MAX_MAPREF_FANOUT = 8;

/** MAPREF levels followed: the CSI name is level 0, its targets level 1, theirs level 2. */
export const MAX_MAPREF_DEPTH = 2;

/** Servers of one zone tried for one query before the zone counts as unreachable. */
export const MAX_SERVERS_PER_ZONE = 4;

/** Time one server has to answer one query before the next server is tried. */
export const SERVER_TIMEOUT_MS = 2000;

/** Signature verifications (RRSIG checks) in one resolution (KeyTrap-style CPU bound). */
export const MAX_VERIFICATIONS_PER_RESOLUTION = 64;

/** Wall time of one resolution (one `resolve`, or one `discover` with its MAPREF targets). */
export const MAX_RESOLUTION_MS = 10_000;

/** Largest DNS response accepted from a server, in octets (the codec's own bound). */
export const MAX_RESPONSE_OCTETS = MAX_MESSAGE_OCTETS;

/** EDNS UDP payload size offered upstream (DNS flag day 2020). */
export const UPSTREAM_EDNS_PAYLOAD_OCTETS = 1232;

/** Upstream queries in flight at once, across every resolution; more wait their turn. */
export const MAX_UPSTREAM_IN_FLIGHT = 256;

/**
 * QNAME minimisation (RFC 9156): below a zone cut, when more than this many labels remain
 * between the cut and the query name, the full name is asked at once (the idea of
 * MAX_MINIMISE_COUNT in RFC 9156 §2.3): a 15-digit phone name then costs one query per zone
 * instead of one per digit, while short names (email ranges) are still walked label by label.
 */
export const MAX_MINIMISE_LABELS = 4;

/** Serve-stale (RFC 8767 §4): TTL of an answer served from a stale entry. */
export const STALE_ANSWER_TTL_SECONDS = 30;

/** Serve-stale (RFC 8767 §5): how long after expiry an entry may still be served. */
export const MAX_STALE_AGE_SECONDS = 86_400;

/** Longest time anything is cached (RFC 8767 §4 suggests a cap of about a week). */
export const MAX_CACHE_TTL_SECONDS = 86_400;

/** Default cache bound in bytes (`ResolverConfig.cacheBytes`). */
export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;

/** Default concurrency of `discoverMany` (`ResolverConfig.batchConcurrency`). */
export const DEFAULT_BATCH_CONCURRENCY = 32;

/**
 * Octets of the resolver's memo of parsed CSIs (input as given → canonical CSI or the parse
 * error): about 30,000 typical phone numbers, far fewer inputs of the longest accepted length.
 * A contact sync sends the same inputs again; parsing one costs more than answering it from the
 * cache.
 */
export const PARSED_CSI_CACHE_OCTETS = 4 * 1024 * 1024;

/** Octets counted per entry of that memo besides its strings (keys, LRU links). */
export const PARSED_CSI_ENTRY_OVERHEAD_OCTETS = 64;
