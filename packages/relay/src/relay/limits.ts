import { CONNECTIONS_PER_CLIENT_SHARE } from '@mimi-discovery/common';

/**
 * The bounds of the oblivious relay, each a default that the config's `limits` section can
 * change (`config.ts`). The relay holds no state worth protecting, only its capacity: every
 * client request costs one forward to a gateway, so each bound caps what one client, or all of
 * them, can make the relay do.
 *
 * Sizes, for scale: an OHTTP request (RFC 9458 §4.3) is the Binary HTTP request (RFC 9292)
 * plus 38 octets of HPKE encapsulation and AEAD tag; a `POST /v1/discover` of 100 CSIs is about
 * 6 KiB, an ODoH query (RFC 9230 §6.2) a padded DNS message of at most a few hundred octets.
 * The answer to 100 CSIs, with their mappings and provenance, is tens of KiB.
 */

/** Default largest request body the relay accepts and forwards: 64 KiB (ten 100-CSI batches). */
export const DEFAULT_RELAY_MAX_REQUEST_OCTETS = 64 * 1024;
/**
 * Default largest response body taken from a gateway: 1 MiB. A gateway that answers more is cut
 * off and the client gets 502, so a broken or hostile gateway cannot make the relay hold an
 * unbounded body per forward (at most `maxForwards` × this in memory).
 */
export const DEFAULT_RELAY_MAX_RESPONSE_OCTETS = 1024 * 1024;
/**
 * Default time for one forward: from sending the request to the gateway to its whole response,
 * connecting included. Fixed when the forward starts, so a gateway that drips its answer cannot
 * push it back.
 */
export const DEFAULT_RELAY_FORWARD_TIMEOUT_MS = 10_000;
/** Default time for the TCP connection and TLS handshake to a gateway (within the forward's). */
export const DEFAULT_RELAY_CONNECT_TIMEOUT_MS = 5_000;
/** Default most forwards in progress at once, over every client; past it: 503 `ERR_RELAY_BUSY`. */
export const DEFAULT_RELAY_MAX_FORWARDS = 256;
/**
 * Default most forwards in progress at once for one client (IPv4 address, IPv6 /64); past it:
 * 429 `ERR_RATE_LIMITED`. An app has a request or two in flight; a contact sync a few batches.
 */
export const DEFAULT_RELAY_FORWARDS_PER_CLIENT = 16;
/** Default requests a client earns per second (its token bucket's rate). */
export const DEFAULT_RELAY_REQUESTS_PER_SECOND = 20;
/**
 * Default most requests a client may make at once (its token bucket's size): a contact sync of
 * 10,000 CSIs is 100 batches of 100 plus a key fetch.
 */
export const DEFAULT_RELAY_REQUEST_BURST = 200;
/**
 * Default time for a client to deliver its request: the TLS handshake, the headers, and the
 * body, each within this long of its start (a client dripping octets gets 408 `ERR_TIMEOUT`).
 */
export const DEFAULT_RELAY_REQUEST_TIMEOUT_MS = 10_000;
/** Default time a connection may go without a request in progress before it is closed. */
export const DEFAULT_RELAY_IDLE_TIMEOUT_MS = 30_000;
/** Default most client connections at once. */
export const DEFAULT_RELAY_MAX_CONNECTIONS = 1024;
/** Default most connections of one client at once: an eighth of the cap, as every listener. */
export const DEFAULT_RELAY_CONNECTIONS_PER_CLIENT =
  DEFAULT_RELAY_MAX_CONNECTIONS / CONNECTIONS_PER_CLIENT_SHARE;
/**
 * Default most connections the relay keeps open to one gateway (an undici pool per origin);
 * forwards past it wait for a connection, within their own timeout.
 */
export const DEFAULT_RELAY_GATEWAY_CONNECTIONS = 64;
/** Most concurrent HTTP/2 streams per client connection (RFC 9113 §6.5.2). */
export const RELAY_MAX_CONCURRENT_STREAMS = 100;
/** Largest request header section a client may send: the relay forwards none of it. */
export const RELAY_MAX_HEADER_OCTETS = 16 * 1024;
/** `Retry-After` (seconds) of a 503 `ERR_RELAY_BUSY`: forwards end within their timeout. */
export const RELAY_BUSY_RETRY_AFTER_SECONDS = 1;
/** Longest `targetpath` of an ODoH proxy request (RFC 9230 §4.1). */
export const RELAY_MAX_TARGET_PATH_LENGTH = 1024;
