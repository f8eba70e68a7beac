import { MAX_MESSAGE_OCTETS } from '@mimi-discovery/common';

/**
 * Every bound the resolver puts on work done for one question, as trusted resolvers set them
 * (Unbound's `max-referrals`-like caps, RFC 9156 §2.3, RFC 8767, RFC 9520, design §6). Each
 * limit that is hit ends the resolution with `error` reason `limit` or `timeout`, or, for the
 * validation limits, as bogus with a reason that names the limit: never a silent `none`.
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

/**
 * KeyTrap (CVE-2023-50387). RFC 4035 §5.3.1 has a validator try every DNSKEY whose key tag and
 * algorithm match an RRSIG, and every RRSIG of an RRset, until one verifies; a zone that
 * publishes 1,000 keys sharing one key tag and 64 RRSIGs per RRset then costs 64,000 signature
 * verifications for one RRset, seconds of CPU. Trusted resolvers bound this work (Unbound 1.19.1:
 * `MAX_VALIDATE_RRSIGS` 8, `MAX_VALIDATE_AT_ONCE` 8; BIND: a bounded number of validations and
 * of validation failures per fetch) and fail the RRset as bogus past the bound, as these do.
 * Design §5 gives a zone one signing key (two during a roll), so none of them is reached by an
 * honest zone. A verification is one public-key operation: one RRSIG tried with one key.
 */

/**
 * Keys tried for one RRSIG: of the keys that share its key tag and algorithm, only the first
 * four are tried. When more shared it and none of the four verified, the RRset is bogus
 * (`limit-keys-per-signature`), not merely unverified.
 */
export const MAX_KEYS_PER_SIGNATURE = 4;

/**
 * Keys of one DNSKEY RRset that may share a key tag and algorithm. An RRset with more is bogus
 * (`limit-same-tag-keys`) before any signature of it is verified: a key tag collision between
 * honest keys is a 1-in-65,536 event, and five colliding keys are an attack.
 */
export const MAX_SAME_TAG_KEYS = 4;

/**
 * RRSIGs of one RRset tried (each with at most {@link MAX_KEYS_PER_SIGNATURE} keys): Unbound's
 * `MAX_VALIDATE_RRSIGS`. When more RRSIGs were there and none of the eight verified, the RRset is
 * bogus (`limit-signatures-per-rrset`).
 */
export const MAX_SIGNATURES_PER_RRSET = 8;

/**
 * Signature verifications (one RRSIG with one key) in one resolution, every RRset of it
 * together: the keys of each zone on the way, the DS of each delegation, the answer or the
 * denial. A cold resolution of a CSI needs about six. Past it the resolution is bogus
 * (`limit-verifications`).
 */
export const MAX_VERIFICATIONS_PER_RESOLUTION = 64;

/**
 * Verifications one resolution runs back to back before it yields to the event loop
 * (`setImmediate`), so that the validation of one hostile zone never holds up other resolutions
 * for more than a few verifications (about 0.1 ms each): Unbound suspends validation the same
 * way after `MAX_VALIDATE_AT_ONCE`.
 */
export const VERIFICATIONS_PER_SLICE = 4;

/**
 * Failure caching (RFC 9520 §3.2): a resolution that failed (bogus data, unreachable servers, a
 * delegation without a usable server, a limit, a timeout) is remembered, with the zone it is
 * about when the failure is the zone's (its keys, its delegation, its servers), so that the same
 * question, or any question for a name under that zone, is answered from the cache without an
 * upstream query or a signature verification. The first failure is kept this long.
 */
export const FAILURE_CACHE_MIN_SECONDS = 5;

/**
 * The longest a failure is kept: the time doubles on each repeat (5, 10, 20, … s) up to this.
 * RFC 9520 §3.2, consistent with RFC 2308 §7: resolution failures are not cached for longer
 * than five minutes.
 */
export const FAILURE_CACHE_MAX_SECONDS = 300;

/**
 * Wall time of one resolution: the deadline of a question (shared by all its callers, and by the
 * question for a zone's keys it starts: `questions.ts`), and of a discovery with every MAPREF
 * level of it (`resolver.ts`). Past it the resolution is `error` reason `timeout`.
 */
export const MAX_RESOLUTION_MS = 10_000;

/** Largest DNS response accepted from a server, in octets (the codec's own bound). */
export const MAX_RESPONSE_OCTETS = MAX_MESSAGE_OCTETS;

/** EDNS UDP payload size offered upstream (DNS flag day 2020). */
export const UPSTREAM_EDNS_PAYLOAD_OCTETS = 1232;

/**
 * DoH connections per server that the resolver's questions are spread over, each question on
 * one of them at random (`DohClientOptions.lanes`): with HTTP/2 a single connection would carry
 * every question of a contact sync to a DP, one stream after another.
 */
export const UPSTREAM_DOH_LANES = 4;

/** Upstream queries in flight at once, across every resolution; more wait their turn. */
export const MAX_UPSTREAM_IN_FLIGHT = 256;

/**
 * QNAME minimisation (RFC 9156 §2.3, as Unbound's `MINIMISE_ONE_LAB`): below a zone cut other
 * than the apex, the first this many labels are walked one at a time with NS questions, so that
 * a parent zone that delegates within that depth (a country code, a carrier block: `+1` →
 * `+1202`) sees no name more than one label below a name it holds. Past them the full name is
 * asked: the zone then holds the CSI itself (or delegates deeper than any range of the demo
 * namespace), and walking a 15-digit number one digit at a time would cost a query per digit.
 * At the apex the walk is never cut short: the root directory holds only delegations (design
 * §2), so every name below it ends at a referral or at a denial one label below a name it holds.
 */
export const MINIMISE_ONE_LABEL_STEPS = 4;

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
