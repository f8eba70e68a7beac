import type { RootCopyStatus } from './root-copy.js';
import type {
  AutoTrustSettings,
  ProbeOutcome,
  TrackedKey,
  TrustAnchorKeyState,
} from './auto-trust.js';
import type { UpstreamObserver } from './upstream.js';
import type { AuthkeyRefetchSettings } from './authkey-refetch.js';
import type {
  AudienceKey,
  Csi,
  ExtendedDnsError,
  Logger,
  MspEntry,
  RankedMsp,
  Rcode,
  ResourceRecord,
  RRType,
  TrustAnchor,
  VerifyPool,
} from '@mimi-discovery/common';

/**
 * The resolver's public contract (design §6): what `createResolver` returns and what its front
 * ends (DoH, UDP/TCP, the JSON API) and embedding back ends call.
 */

/** DNSSEC validation status of an answer (RFC 4035 §4.3). */
export type ValidationStatus = 'secure' | 'insecure' | 'bogus' | 'indeterminate';

/** Discovery result per CSI (design §6, R5). */
export type DiscoveryStatus = 'none' | 'empty' | 'found' | 'error';

/** Why a resolution failed; never reported as `none` (design §6). */
export type DiscoveryErrorReason = 'bogus' | 'timeout' | 'limit' | 'invalid-csi' | 'servfail';

/** A sealed box of a mapping (docs/protocol.md §4, `sealed.ts` in common), its byte strings base64url. */
export interface SealedJson {
  /** The audience key id (`AUDIENCE_KEY_ID_OCTETS` octets). */
  kid: string;
  /** The HPKE encapsulated key (RFC 9180). */
  enc: string;
  /** The ciphertext: the padded entries and the AEAD tag. */
  ct: string;
}

/** The entries of one sealed box, opened by a sender holding its audience key. */
export interface OpenedBox {
  /** The audience key id of the box, base64url. */
  audience: string;
  /** The box's entries the sender may use (filtered as the public ones are). */
  msps: MspEntry[];
}

/** One verified mapping, with where it came from. */
export interface VerifiedMapping {
  /**
   * The MSPs the recipient listed publicly, with their tags (R2), less those the sender may not
   * use (the filter of {@link DiscoveryResult.msps}).
   */
  msps: MspEntry[];
  /**
   * The mapping's sealed boxes not opened, as served (absent when none): the resolver reads
   * none of them; a client holding a box's audience key opens it (`open-sealed.ts`), and the box
   * moves to {@link opened}.
   */
  sealed?: SealedJson[];
  /** The boxes opened by the client, each with its audience key id (absent when none). */
  opened?: OpenedBox[];
  /** The recipient key, base64url. */
  key: string;
  seq: number;
  iat: number;
  exp: number;
  new: boolean;
  /** The prover that attested the key, base64url. */
  prover: string;
  /** Provenance: the zone and the server (URL or address) that served the MAP record. */
  zone: string;
  server: string;
}

/** The result of discovering one CSI. */
export interface DiscoveryResult {
  /** The canonical CSI, or the input as given when it is not a CSI. */
  csi: string;
  status: DiscoveryStatus;
  /**
   * Every MSP of the standing mappings the sender may use — public entries, and entries of the
   * boxes the client opened — filtered (context, the resolver's `msp` identity) and ranked in the
   * recipient's order (`rankMsps`): the sender takes the first it can use. Empty unless `found`;
   * `found` with none means the recipient is reachable, but not by this sender.
   */
  msps: RankedMsp[];
  /**
   * Verified mappings (empty unless `found`; for `empty`, the mappings that list no MSP), in
   * rank order: by the best `pref` among their entries (unranked last), then the newest `iat`,
   * then the key.
   */
  mappings: VerifiedMapping[];
  /** Seconds this result may be cached. */
  ttl: number;
  /** Served from stale cache because every server of a zone failed (RFC 8767). */
  stale?: boolean;
  /**
   * For `error`: the reason and a human-readable detail, and for a failed resolution the
   * Extended DNS Error a DNS client would get with its SERVFAIL (RFC 8914, `ede.ts`).
   */
  error?: { reason: DiscoveryErrorReason; detail: string; ede?: ExtendedDnsError };
  /**
   * Boxes whose `kid` matched an audience key the client holds but that did not open (a key of
   * the same id that is not the one, a box made for another CSI or key, a malformed plaintext):
   * left in `sealed`. Set only by a client that opened boxes (`openResult`), and only when not 0.
   */
  unopened?: number;
}

/**
 * How one sender asks (design §4 "Preferences", "Sealed mappings"): `context` filters the entries
 * (those for that context and those for every context); each box whose `kid` matches one of
 * `audienceKeys` is opened locally — the keys never leave the caller — and its entries ranked with
 * the public ones.
 */
export interface DiscoverOptions {
  /** `personal`, `business` or `ctx:<name>` (`isContext`); absent: every entry. */
  readonly context?: string;
  readonly audienceKeys?: readonly AudienceKey[];
}

/** Results of a batch, and each as the JSON text the JSON API writes for it (design §7). */
export interface DiscoveryResultsJson {
  readonly results: DiscoveryResult[];
  /** `json[i]` is the JSON of `results[i]`, with its TTL as it is now. */
  readonly json: string[];
}

/** A validated answer to one DNS question, for the DNS front ends. */
export interface ResolvedAnswer {
  rcode: Rcode;
  status: ValidationStatus;
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  /** Served from stale cache (RFC 8767). */
  stale?: boolean;
  /** Why it failed (`bogus`, or SERVFAIL): the Extended DNS Errors of the response (RFC 8914). */
  ede?: ExtendedDnsError[];
  /**
   * Seconds from now during which this answer may be given again as it is, TTLs unchanged
   * (`client-ttl.ts`); absent or 0: not again.
   */
  usable?: number;
}

/** Counters the resolver keeps for its metrics. */
export interface ResolverStats {
  /** Lookups answered from the cache since start, every cache together ({@link cacheHitsBy}). */
  cacheHits: number;
  cacheMisses: number;
  /**
   * The same by cache: `answer` (validated answers and denials of questions), `discovery`
   * (discovery results), for `resolver_cache_hits_total{cache}` and `…_misses_total{cache}`.
   */
  cacheHitsBy: Record<CacheName, number>;
  cacheMissesBy: Record<CacheName, number>;
  /** Signature verifications (one RRSIG tried with one key) since start. */
  signatureVerifications: number;
  /** Questions answered from the failure cache (RFC 9520) since start. */
  failureCacheHits: number;
  upstreamQueries: number;
  /** Validation failures by reason (`bogus-signature`, `no-ds-match`, …). */
  validationFailures: Record<string, number>;
  cacheBytes: number;
  /** The local root copy (`root-copy.ts`): its state, serial, age and transfer counts. */
  rootCopy: RootCopyStatus;
  /** Keys of the apex's trust point by RFC 5011 state (`auto-trust.ts`). */
  trustAnchorKeys: Record<TrustAnchorKeyState, number>;
  /** AUTHKEY RRsets asked again for an unknown prover, and those the bounds refused. */
  authkeyRefetches: { allowed: number; refused: number };
}

/** The caches whose hits and misses are counted apart. */
export type CacheName = 'answer' | 'discovery';

/** A caching, validating, aggregating resolver. */
export interface Resolver {
  /**
   * Discovers one CSI given as typed (`+44 20 7946 0018`, `alice@example.com`, `tel:+…`), as the
   * sender of `options` sees it. A `context` that is not one (`isContext`) throws a `TypeError`.
   */
  discover(input: string, options?: DiscoverOptions): Promise<DiscoveryResult>;
  /**
   * Discovers one CSI already parsed (`parseCsi`), for a caller that checked its input where it
   * entered (the JSON API): the same as {@link discover} without parsing it again.
   */
  discoverCsi(csi: Csi, options?: DiscoverOptions): Promise<DiscoveryResult>;
  /** Discovers many CSIs concurrently (bounded), results in input order (contact sync). */
  discoverMany(inputs: readonly string[], options?: DiscoverOptions): Promise<DiscoveryResult[]>;
  /**
   * As {@link discoverMany}, with each result also as JSON text: without a `context`, a cached
   * result keeps its text, so the JSON API writes a warm contact sync without serializing it
   * again; with one, each result is filtered for it and written.
   */
  discoverManyJson(
    inputs: readonly string[],
    options?: Pick<DiscoverOptions, 'context'>,
  ): Promise<DiscoveryResultsJson>;
  /** Resolves and validates one DNS question from the root down. */
  resolve(name: string, type: RRType): Promise<ResolvedAnswer>;
  stats(): ResolverStats;
  /**
   * Empties every cache — answers and denials, zone cuts, DNSKEYs, verified signatures,
   * discovery results, failures (RFC 9520), stale copies — and forgets every server's RTT, but keeps the upstream
   * connections (as `unbound-control flush_zone .` with `flush_infra all`). The next question
   * walks from the root again.
   */
  flushCache(): void;
  /**
   * Drops what the cache holds for one owner name (answers and denials of every type, its zone
   * cut, its failures; `unbound-control flush <name>`), and returns how many entries went.
   */
  flushName(name: string): number;
  /**
   * Drops one CSI's cached discovery result and what {@link flushName} drops for its name under
   * the apex; returns how many entries went.
   */
  flushCsi(csi: Csi): number;
  /**
   * Refreshes the local root copy now (serial check, transfer when it changed, or when there is
   * no copy yet), joining a refresh under way, such as the first one, which starts with the
   * resolver; resolves with the copy's status after it. Never rejects.
   */
  refreshRootCopy(): Promise<RootCopyStatus>;
  /**
   * Probes the apex's DNSKEY RRset now for the trust point (RFC 5011, `auto-trust.ts`), joining
   * a probe under way; never rejects.
   */
  probeTrustAnchor(): Promise<ProbeOutcome>;
  /** The apex's tracked keys and their RFC 5011 states. */
  trustAnchorKeys(): readonly TrackedKey[];
  /** Tells `observer` of every query to a server from now on: its RTT or failure (metrics). */
  observeUpstream(observer: UpstreamObserver): void;
  /** Closes upstream connections and stops the root copy's refreshes and the trust point's probes. */
  close(): Promise<void>;
}

/** Where the resolver finds the root directory, and how it reaches DPs. */
export interface ResolverConfig {
  /**
   * Root servers: name, addresses, plain-DNS port and/or DoH URL (from root hints); at least one
   * reachable over `transport` (`readResolverFiles` checks it).
   */
  rootServers: Array<{ name: string; addresses: string[]; port?: number; doh?: string }>;
  /**
   * The trust anchor, parsed (`parseTrustAnchor` of the file `trust-anchor` writes, or
   * `createTrustAnchor`): DS records and DNSKEYs of the apex. Its zone is the namespace apex
   * the resolver serves.
   */
  trustAnchor: TrustAnchor;
  /** PEM CA certificates trusted for DoH to servers (local CAs); default the system store. */
  ca?: string | string[];
  /**
   * `doh` (default, design §7 R7) or `dns` (plain UDP/TCP to each server's address; diagnostics,
   * and networks whose servers publish no DoH). With `dns`, `dnsPort` is the port used for every
   * server other than the roots (default 53).
   */
  transport?: 'doh' | 'dns';
  dnsPort?: number;
  /** Cache size bound in bytes. */
  cacheBytes?: number;
  /** Concurrency bound of `discoverMany`. */
  batchConcurrency?: number;
  /**
   * Threads that verify Ed25519 signatures beside the event loop (`verify-pool.ts` of
   * `@mimi-discovery/common`): `"auto"` (default) one fewer than the cores, at least 1; `0`
   * verifies on the event loop's thread; at most `MAX_VERIFY_THREADS`.
   */
  verifyThreads?: number | 'auto';
  /**
   * The resolver's own MSP identity, a provider domain (`chat.example`): the MSP whose senders
   * it serves. A `same-msp` entry of another provider is dropped from every result; without it,
   * every `same-msp` entry is (nobody vouches for the sender's MSP).
   */
  msp?: string;
  /**
   * The local copy of the root's zone (`root-copy.ts`, RFC 8806 spirit), transferred by AXFR
   * over TCP from the root servers that list a `port`: on by default; `false` or
   * `{ enabled: false }` turns it off. `refreshSeconds`: between serial checks (default the
   * SOA's refresh); `maxRecords`, `maxOctets`, `transferTimeoutMs`: the bounds of one transfer
   * (defaults `ROOT_COPY_MAX_RECORDS`, `ROOT_COPY_MAX_OCTETS`, `ROOT_COPY_TRANSFER_TIMEOUT_MS`).
   */
  rootCopy?: false | RootCopyConfig;
  /**
   * Queries to servers and the choice among a zone's servers (`upstream.ts`, `infra-cache.ts`);
   * absent keys take their defaults.
   */
  upstream?: UpstreamConfig;
  /**
   * RFC 5011 updates of the trust anchor (`auto-trust.ts`): on unless `enabled` is false;
   * `file` is where the state is kept (the trust anchor file, as Unbound's
   * `auto-trust-anchor-file`); without it, in memory only.
   */
  autoTrustAnchor?: AutoTrustSettings;
  /**
   * Bounds of AUTHKEY re-fetches for an unknown prover (`authkey-refetch.ts`); absent keys take
   * their constants.
   */
  authkeyRefetch?: AuthkeyRefetchSettings;
}

/** `ResolverConfig.upstream`; each key's default is the named constant. */
export interface UpstreamConfig {
  /** Time one server has to answer one query (`SERVER_TIMEOUT_MS`). */
  timeoutMs?: number;
  /** Servers whose RTO is within this of the lowest are chosen among at random (`RTT_BAND_MS`). */
  rttBandMs?: number;
  /** The longest a server that timed out is held back (`MAX_BACKOFF_MS`). */
  maxBackoffMs?: number;
  /** Lifetime of what is known of a server after its last answer or failure (`INFRA_HOST_TTL_SECONDS`). */
  hostTtlSeconds?: number;
  /** Server addresses remembered (`MAX_INFRA_HOSTS`). */
  maxHosts?: number;
  /**
   * Accept a DoH server's certificate that is valid for the address connected to but not for
   * the server's name (its `_dns` SVCB target, else its NS name, sent as SNI); default true.
   */
  acceptAddressCertificates?: boolean;
}

/** `ResolverConfig.rootCopy` when not `false`. */
export interface RootCopyConfig {
  /** Default true. */
  enabled?: boolean;
  refreshSeconds?: number;
  maxRecords?: number;
  maxOctets?: number;
  transferTimeoutMs?: number;
}

/** What a resolver uses besides its config. */
export interface ResolverComponents {
  /**
   * The clock, in seconds since the epoch (fractions allowed), for every TTL, cache expiry and
   * validity period; default the system clock (tests use a fake clock). Deadlines run on
   * monotonic time instead.
   */
  now?: () => number;
  log?: Logger;
  /**
   * Whether the trust point's probes run on a timer (default true); tests that drive them with
   * `probeTrustAnchor` and a fake clock turn it off.
   */
  autoTrustSchedule?: boolean;
  /**
   * The verification pool to use instead of one of `verifyThreads` threads of its own, e.g. one
   * pool shared by several resolvers in a process; the resolver does not close a pool it is given.
   */
  verifyPool?: VerifyPool;
}
