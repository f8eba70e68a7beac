import { isIP } from 'node:net';
import { DEFAULT_APEX, csiToName, type Csi } from '../protocol/csi.js';
import { MimiError } from '../protocol/errors.js';
import { canonicalName, isSubdomain, namesEqual } from '../protocol/names.js';
import type { Message, ResourceRecord } from '../protocol/records.js';
import { systemClock, type Clock } from './clock.js';
import {
  TransportError,
  buildQuery,
  createDohClient,
  queryTcp,
  queryUdp,
  type DohClient,
} from './dns-client.js';
import { silentLogger, type Logger } from './log.js';

/**
 * The AUTHKEY RRset of the range authoritative for a CSI, fetched over the wire through a
 * validating resolver. Two users: an MSP-run DP (design §8: it accepts publications for CSIs of
 * any range when the attestation verifies against an AUTHKEY prover of the CSI's own range;
 * docs/protocol.md §9), which serves the MSP zone but not the CSI's range and so cannot read
 * that range's keys from its store; and a verifier of credentials (credential-verify.ts), which
 * holds no zone at all. Both ask, as every other party would:
 *
 * 1. SOA at the CSI's name, with DO and AD set (RFC 4035 §3.2.1, RFC 6840 §5.7). The range's
 *    zone is the owner of the SOA that comes back, in the answer (the name is an apex) or in the
 *    authority section (NODATA, NXDOMAIN: RFC 2308 §3), and must be the name or one of its
 *    ancestors under the namespace apex.
 *    Worked example: SOA `8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa` → NXDOMAIN with the SOA of
 *    `4.4.e164.mimi.arpa` in the authority section → the range's zone is `4.4.e164.mimi.arpa`.
 * 2. AUTHKEY at that zone's apex, again with DO and AD.
 *
 * Only answers with the AD bit count: the resolver validated them from its trust anchor
 * (RFC 4035 §3.2.3). The DP does not validate DNSSEC itself, so it must trust the resolver and
 * the path to it: its own resolver, over DoH with a verified certificate or over loopback
 * (`mspZone.resolver` of the config allows nothing else). Every failure — the resolver down, a
 * timeout, SERVFAIL, an answer without AD, an SOA that is not the name's — is an error made by
 * the caller's `unverifiable` (a DP answers `ERR_PROVER_UNVERIFIABLE`, 503, and stores nothing
 * on an unverified key; by default a {@link RangeAuthkeysError}).
 *
 * The DP never imports the resolver package (test/layout.test.ts): it speaks DNS to one, through
 * common's clients (`createDohClient`, `queryUdp`, `queryTcp`).
 *
 * Bounds: each question within `timeoutMs` ({@link RANGE_AUTHKEY_TIMEOUT_MS}); the AUTHKEY RRset
 * of a zone kept for its TTL as the resolver gives it, at most
 * {@link MAX_RANGE_AUTHKEY_CACHE_SECONDS}, for at most `cacheEntries` zones
 * ({@link RANGE_AUTHKEY_CACHE_ENTRIES}, least recently used dropped first); one AUTHKEY question
 * in flight per zone and one SOA question per name, whatever the number of concurrent
 * publications (a thousand publications for one range ask the resolver once). Failures are not
 * cached: the next request asks again.
 */

/** Default `mspZone.authkeyCacheEntries`: zones whose AUTHKEY RRset is kept. */
export const RANGE_AUTHKEY_CACHE_ENTRIES = 1024;
/** Largest `mspZone.authkeyCacheEntries` (a few hundred octets per zone). */
export const MAX_RANGE_AUTHKEY_CACHE_ENTRIES = 1_000_000;
/**
 * Longest an AUTHKEY RRset is kept, whatever its TTL: a prover removed from a range stops
 * counting here within the hour at worst (design §8, R10).
 */
export const MAX_RANGE_AUTHKEY_CACHE_SECONDS = 3600;
/** Default `mspZone.timeoutMs`: each question to the resolver within this long. */
export const RANGE_AUTHKEY_TIMEOUT_MS = 5000;
/** Largest `mspZone.timeoutMs`: a registration request waits at most two questions of it. */
export const MAX_RANGE_AUTHKEY_TIMEOUT_MS = 60_000;

/** Where the resolver is: DoH (RFC 8484) or plain DNS over loopback (RFC 1035, RFC 7766). */
export type ResolverEndpoint =
  | { readonly kind: 'doh'; readonly url: string }
  | { readonly kind: 'udp' | 'tcp'; readonly host: string; readonly port: number };

/**
 * Reads `mspZone.resolver`: `https://host[:port]/path` (DoH), or `udp://127.0.0.1:port` /
 * `tcp://[::1]:port` with a loopback address and an explicit port. Plain DNS can be altered on
 * the way and the AD bit with it (RFC 4035 §3.2.3, RFC 6840 §5.8: AD is trusted only over a
 * secure channel), so it is allowed only to a resolver on the same host. Throws an Error whose
 * message says what is wrong.
 */
export function parseResolverEndpoint(value: string): ResolverEndpoint {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error('expected https://host[:port]/path, udp://127.0.0.1:port or tcp://…:port');
  }
  if (url.username !== '' || url.password !== '' || url.hash !== '') {
    throw new Error('a resolver URL has no user, password or fragment');
  }
  if (url.protocol === 'https:') {
    if (url.search !== '') throw new Error('a DoH URL has no query (RFC 8484 §4.1 adds ?dns=)');
    return { kind: 'doh', url: url.href };
  }
  if (url.protocol !== 'udp:' && url.protocol !== 'tcp:') {
    throw new Error(`expected https:, udp: or tcp:, not ${url.protocol}`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!isLoopback(host)) {
    throw new Error(
      `plain DNS to the resolver only over loopback (127.0.0.0/8, ::1), not ${host}: use DoH for a resolver on another host`,
    );
  }
  if (url.port === '' || (url.pathname !== '' && url.pathname !== '/') || url.search !== '') {
    throw new Error(`expected ${url.protocol}//${url.hostname}:port with nothing after the port`);
  }
  return { kind: url.protocol === 'udp:' ? 'udp' : 'tcp', host, port: Number(url.port) };
}

function isLoopback(host: string): boolean {
  if (isIP(host) === 4) return host.startsWith('127.');
  return isIP(host) === 6 && (host === '::1' || host === '0:0:0:0:0:0:0:1');
}

/** The keys of the range authoritative for a CSI, as the resolver validated them. */
export interface RangeKeys {
  /** The range's zone (the SOA owner), presentation form without the trailing dot. */
  readonly zone: string;
  /** The AUTHKEY records at the zone's apex (none when it lists no key). */
  readonly authkeys: readonly ResourceRecord[];
}

/**
 * The default error of a lookup the resolver cannot vouch for: `ERR_RANGE_UNVERIFIABLE`.
 */
export class RangeAuthkeysError extends MimiError<'ERR_RANGE_UNVERIFIABLE'> {}

/** Looks up the AUTHKEY RRset of a CSI's range through the resolver. */
export interface RangeAuthkeyLookup {
  /**
   * The range zone of `csi` and its AUTHKEYs; rejects with the error of the `unverifiable`
   * option when the resolver cannot vouch for them.
   */
  lookup(csi: Csi): Promise<RangeKeys>;
}

/** A {@link RangeAuthkeyLookup} with a cache and connections to close. */
export interface RangeAuthkeys extends RangeAuthkeyLookup {
  /**
   * The AUTHKEYs at the apex of `zone` (a zone of the namespace, under the apex), as the
   * resolver validated them: none when the name is not a zone apex or lists no key. Rejects as
   * {@link RangeAuthkeyLookup.lookup}, and for a zone outside the namespace.
   */
  zoneAuthkeys(zone: string): Promise<RangeKeys>;
  /** Zones whose AUTHKEY RRset is cached now. */
  readonly cachedZones: number;
  /** Closes the DoH client's connections; lookups still running fail. */
  close(): Promise<void>;
}

/** Settings of {@link createRangeAuthkeys}. */
export interface RangeAuthkeysOptions {
  /** `mspZone.resolver`, see {@link parseResolverEndpoint}. */
  readonly resolver: string;
  /** PEM of the CAs to trust for a DoH resolver instead of the system's. */
  readonly ca?: string | Uint8Array;
  /** The namespace apex; default `mimi.arpa`. */
  readonly apex?: string;
  /** Default {@link RANGE_AUTHKEY_CACHE_ENTRIES}. */
  readonly cacheEntries?: number;
  /** Default {@link RANGE_AUTHKEY_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
  /** Whole seconds since the epoch; default `systemClock`. */
  readonly now?: Clock;
  readonly log?: Logger;
  /** The error a lookup the resolver cannot vouch for rejects with; default {@link RangeAuthkeysError}. */
  readonly unverifiable?: (message: string, cause?: unknown) => Error;
}

interface CachedKeys {
  readonly authkeys: readonly ResourceRecord[];
  readonly expiresAt: number;
}

/** Creates the lookup (see the module comment): a DP's `mspZone`, a credential verifier's. */
export function createRangeAuthkeys(options: RangeAuthkeysOptions): RangeAuthkeys {
  const endpoint = parseResolverEndpoint(options.resolver);
  const apex = canonicalName(options.apex ?? DEFAULT_APEX);
  const capacity = options.cacheEntries ?? RANGE_AUTHKEY_CACHE_ENTRIES;
  const timeoutMs = options.timeoutMs ?? RANGE_AUTHKEY_TIMEOUT_MS;
  if (
    !Number.isSafeInteger(capacity) ||
    capacity < 1 ||
    capacity > MAX_RANGE_AUTHKEY_CACHE_ENTRIES
  ) {
    throw new RangeError(
      `cacheEntries must be an integer in 1..${MAX_RANGE_AUTHKEY_CACHE_ENTRIES}`,
    );
  }
  if (
    !Number.isSafeInteger(timeoutMs) ||
    timeoutMs < 1 ||
    timeoutMs > MAX_RANGE_AUTHKEY_TIMEOUT_MS
  ) {
    throw new RangeError(`timeoutMs must be an integer in 1..${MAX_RANGE_AUTHKEY_TIMEOUT_MS}`);
  }
  const clock = options.now ?? systemClock;
  const log = options.log ?? silentLogger;
  const doh: DohClient | undefined =
    endpoint.kind === 'doh'
      ? createDohClient(options.ca === undefined ? {} : { ca: options.ca })
      : undefined;
  const where =
    endpoint.kind === 'doh' ? endpoint.url : `${endpoint.kind}://${endpoint.host}:${endpoint.port}`;

  // Insertion order is recency: a hit moves its zone to the end, the first is dropped first.
  const cache = new Map<string, CachedKeys>();
  const authkeysInFlight = new Map<string, Promise<CachedKeys>>();
  const zonesInFlight = new Map<string, Promise<string>>();

  const unverifiable =
    options.unverifiable ??
    ((message: string, cause?: unknown): Error =>
      new RangeAuthkeysError(
        'ERR_RANGE_UNVERIFIABLE',
        message,
        cause === undefined ? undefined : { cause },
      ));

  /** One question, DO and AD set, answered with AD set and NOERROR (or NXDOMAIN if allowed). */
  const ask = async (
    name: string,
    type: 'SOA' | 'AUTHKEY',
    nxdomainAllowed: boolean,
  ): Promise<Message> => {
    const query = buildQuery(name, type, { dnssecOk: true, recursionDesired: true });
    // RFC 6840 §5.7: AD in a query asks for the AD bit of the answer (DO asks for it as well).
    query.flags.ad = true;
    let response: Message;
    try {
      response =
        endpoint.kind === 'doh'
          ? await (doh as DohClient).query(endpoint.url, query, { timeoutMs })
          : endpoint.kind === 'udp'
            ? await queryUdp(endpoint, query, { timeoutMs })
            : await queryTcp(endpoint, query, { timeoutMs });
    } catch (error) {
      if (!(error instanceof TransportError)) throw error;
      log.warn('resolver-failed', { type, resolver: where, error });
      throw unverifiable(`the resolver ${where} did not answer ${type}: ${error.message}`, error);
    }
    const rcodeOk =
      response.rcode === 'NOERROR' || (nxdomainAllowed && response.rcode === 'NXDOMAIN');
    if (!rcodeOk) {
      log.warn('resolver-refused', { type, resolver: where, rcode: response.rcode });
      throw unverifiable(`the resolver ${where} answered ${type} with ${response.rcode}`);
    }
    if (!response.flags.ad) {
      log.warn('resolver-not-validated', { type, resolver: where });
      throw unverifiable(
        `the resolver ${where} did not validate its ${type} answer (no AD bit): it must validate DNSSEC`,
      );
    }
    return response;
  };

  /** The zone authoritative for `name`: the owner of the SOA the resolver gives for it. */
  const zoneOf = async (name: string): Promise<string> => {
    const response = await ask(name, 'SOA', true);
    const owners = [...response.answers, ...response.authorities]
      .filter((rr) => rr.type === 'SOA')
      .map((rr) => canonicalName(rr.name))
      .filter((owner) => isSubdomain(name, owner) && isSubdomain(owner, apex));
    // The closest enclosing zone; several SOAs of one answer are a hostile or broken server.
    const zone = owners.sort((a, b) => b.length - a.length)[0];
    if (zone === undefined || owners.some((o) => o !== zone)) {
      throw unverifiable(
        `the resolver ${where} gave no SOA of a zone enclosing ${name} under ${apex}`,
      );
    }
    return zone;
  };

  const fetchAuthkeys = async (zone: string): Promise<CachedKeys> => {
    const response = await ask(zone, 'AUTHKEY', false);
    const authkeys = response.answers.filter(
      (rr) => rr.type === 'AUTHKEY' && namesEqual(rr.name, zone),
    );
    // NODATA: a zone that lists no key; kept for the SOA's negative TTL (RFC 2308 §5).
    const ttls =
      authkeys.length > 0
        ? authkeys.map((rr) => rr.ttl)
        : response.authorities.flatMap((rr) =>
            rr.type === 'SOA' ? [Math.min(rr.ttl, rr.data.minimum)] : [],
          );
    const ttl = ttls.length === 0 ? 0 : Math.min(MAX_RANGE_AUTHKEY_CACHE_SECONDS, ...ttls);
    log.info('range-authkeys-fetched', { zone, keys: authkeys.length, ttl });
    return { authkeys, expiresAt: clock() + Math.max(0, ttl) };
  };

  const remember = (zone: string, keys: CachedKeys): void => {
    if (keys.expiresAt <= clock()) return;
    cache.delete(zone);
    cache.set(zone, keys);
    while (cache.size > capacity) {
      const oldest = cache.keys().next().value as string;
      cache.delete(oldest);
    }
  };

  /** One question in flight per key: later callers wait for the first one's answer. */
  const shared = <T>(
    inFlight: Map<string, Promise<T>>,
    key: string,
    run: () => Promise<T>,
  ): Promise<T> => {
    const running = inFlight.get(key);
    if (running !== undefined) return running;
    const started = run().finally(() => inFlight.delete(key));
    inFlight.set(key, started);
    return started;
  };

  const authkeysOf = async (zone: string): Promise<readonly ResourceRecord[]> => {
    const cached = cache.get(zone);
    if (cached !== undefined) {
      if (cached.expiresAt > clock()) {
        cache.delete(zone);
        cache.set(zone, cached);
        return cached.authkeys;
      }
      cache.delete(zone);
    }
    const fetched = await shared(authkeysInFlight, zone, async () => {
      const keys = await fetchAuthkeys(zone);
      remember(zone, keys);
      return keys;
    });
    return fetched.authkeys;
  };

  return {
    async lookup(csi) {
      const name = canonicalName(csiToName(csi, apex));
      const zone = await shared(zonesInFlight, name, () => zoneOf(name));
      return { zone, authkeys: await authkeysOf(zone) };
    },
    async zoneAuthkeys(zone) {
      const name = canonicalName(zone);
      if (!isSubdomain(name, apex) || name === apex) {
        throw unverifiable(`${zone} is not a zone under ${apex}`);
      }
      return { zone: name, authkeys: await authkeysOf(name) };
    },
    get cachedZones() {
      return cache.size;
    },
    async close() {
      await doh?.close();
    },
  };
}
