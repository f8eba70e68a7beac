import { isIP } from 'node:net';
import {
  canonicalName,
  isSubdomain,
  MimiError,
  record,
  unexpiredKeys,
  type KeyconfData,
  type SvcParams,
} from '@mimi-discovery/common';
import type { DiscoveryStore } from '../store/store.js';
import type { RRsetChange } from '../store/store-types.js';

/**
 * The keys of an oblivious-path service published in the tree (design §4, private type KEYCONF):
 * a gateway's OHTTP and ODoH key configs, or a token issuer's keys, as one signed RRset at the
 * service's name in its operator's zone. A client checks that the key a gateway gave it is in
 * this RRset, validated from the root: the same key everyone sees (key consistency, which
 * RFC 9458 §7 leaves to the deployment). With a DoH URL, the service's DoH endpoint is described
 * too, per RFC 9540 §4, as `_dns.<service>` SVCB with the `ohttp` SvcParam.
 *
 * Example: publishing the gateway keys of `resolver.chat.example.email.mimi.arpa` with the DoH
 * URL `https://resolver.chat.example:8447/dns-query` writes
 * `resolver.chat.example.email.mimi.arpa KEYCONF …` (one record per unexpired key) and
 * `_dns.resolver.chat.example.email.mimi.arpa SVCB 1 resolver.chat.example. alpn=h2,http/1.1
 * port=8447 dohpath=/dns-query{?dns} ohttp`, both signed by the zone's key, in one apply.
 */

/**
 * TTL of a KEYCONF RRset (and its SVCB) unless given: short, because a client refuses a key
 * its resolver does not yet see in the RRset; a service publishes a key before using it, and a
 * rotation reaches every cache within this many seconds.
 */
export const DEFAULT_KEYCONF_TTL = 300;

/** The codes of a {@link KeyconfError}. */
export type KeyconfErrorCode =
  | 'ERR_KEYCONF_NO_ZONE'
  | 'ERR_KEYCONF_BELOW_CUT'
  | 'ERR_KEYCONF_NO_KEYS'
  | 'ERR_KEYCONF_DOH_URL'
  | 'ERR_KEYCONF_NAMESERVER';

/** Keys that cannot be published where asked; `code` says why. */
export class KeyconfError extends MimiError<KeyconfErrorCode> {}

/** What {@link publishKeys} is told besides the keys. */
export interface PublishKeysOptions {
  /** Seconds since the epoch: keys whose `notAfter` is not later are left out. */
  now: number;
  /** RRset TTL; default {@link DEFAULT_KEYCONF_TTL}. */
  ttl?: number;
  /** The service's DoH URL: also publish `_dns.<owner>` SVCB with `ohttp` (RFC 9540 §4). */
  doh?: string;
}

/** What {@link publishKeys} wrote. */
export interface PublishedKeys {
  /** The zone the RRsets went into. */
  origin: string;
  /** The owner, canonical. */
  name: string;
  /** The zone's serial after the write. */
  serial: number;
  /** The keys now in the RRset. */
  keys: KeyconfData[];
  /** The SVCB parameters written at `_dns.<name>`, when a DoH URL was given. */
  svcb?: { target: string; params: SvcParams };
}

/** What is published at an owner ({@link listKeys}). */
export interface KeysAt {
  origin: string;
  name: string;
  ttl: number | undefined;
  keys: KeyconfData[];
  svcb: { target: string; params: SvcParams } | undefined;
}

/**
 * The RRset changes that publish `keys` at `name`: a put of the KEYCONF RRset
 * of the keys unexpired at `options.now` (it replaces the previous one whole), and with
 * `options.doh` a put of `_dns.<name>` SVCB. Throws {@link KeyconfError} when no key is
 * unexpired or the DoH URL cannot be described; the records' own checks are the store's.
 */
export function keyconfChanges(
  name: string,
  keys: readonly KeyconfData[],
  options: PublishKeysOptions,
): RRsetChange[] {
  const owner = canonicalName(name);
  const ttl = options.ttl ?? DEFAULT_KEYCONF_TTL;
  const current = unexpiredKeys(keys, options.now);
  if (current.length === 0) {
    throw new KeyconfError(
      'ERR_KEYCONF_NO_KEYS',
      keys.length === 0
        ? 'no key to publish: the key list is empty'
        : `no key to publish: all ${keys.length} have expired (notAfter ≤ ${options.now})`,
    );
  }
  const changes: RRsetChange[] = [
    {
      op: 'put',
      name: owner,
      type: 'KEYCONF',
      records: current.map((key) => record(owner, 'KEYCONF', key, ttl)),
    },
  ];
  if (options.doh !== undefined) {
    const svcb = dohSvcb(owner, options.doh);
    const at = `_dns.${owner}`;
    changes.push({
      op: 'put',
      name: at,
      type: 'SVCB',
      records: [record(at, 'SVCB', { priority: 1, ...svcb }, ttl)],
    });
  }
  return changes;
}

/**
 * Publishes `keys` at `name` in the store's zone holding it, signed, in one apply (durable on
 * return). Refused with {@link KeyconfError}, nothing written: a name in none of the store's
 * zones, a name at or below a delegation in it (the child's zone answers there), `--doh` at a
 * nameserver of the zone (its `_dns` SVCB is the nameserver's own DoH endpoint), no unexpired
 * key, a DoH URL that cannot be described.
 */
export async function publishKeys(
  store: DiscoveryStore,
  name: string,
  keys: readonly KeyconfData[],
  options: PublishKeysOptions,
): Promise<PublishedKeys> {
  const owner = canonicalName(name);
  const origin = zoneHolding(store, owner);
  if (options.doh !== undefined) {
    const nameservers = store
      .readRRset(origin, origin, 'NS')
      .flatMap((rr) => (rr.type === 'NS' ? [canonicalName(rr.data)] : []));
    if (nameservers.includes(owner)) {
      throw new KeyconfError(
        'ERR_KEYCONF_NAMESERVER',
        `${owner} is a nameserver of ${origin}: its _dns SVCB describes the nameserver's DoH, not a resolver's`,
      );
    }
  }
  const changes = keyconfChanges(owner, keys, options);
  const { serial } = await store.apply(origin, changes);
  const svcb = changes[1]?.op === 'put' ? changes[1].records[0] : undefined;
  return {
    origin,
    name: owner,
    serial,
    keys: unexpiredKeys(keys, options.now),
    ...(svcb?.type === 'SVCB'
      ? { svcb: { target: svcb.data.target, params: svcb.data.params } }
      : {}),
  };
}

/** The KEYCONF RRset and `_dns` SVCB at `name`, read from the store's zone holding it. */
export function listKeys(store: DiscoveryStore, name: string): KeysAt {
  const owner = canonicalName(name);
  const origin = zoneHolding(store, owner);
  const rrset = store.readRRset(origin, owner, 'KEYCONF');
  const svcb = store.readRRset(origin, `_dns.${owner}`, 'SVCB')[0];
  return {
    origin,
    name: owner,
    ttl: rrset[0]?.ttl,
    keys: rrset.flatMap((rr) => (rr.type === 'KEYCONF' ? [rr.data] : [])),
    svcb:
      svcb?.type === 'SVCB' ? { target: svcb.data.target, params: svcb.data.params } : undefined,
  };
}

/** The store's zone that answers for `owner`: it holds the name and no delegation in it does. */
function zoneHolding(store: DiscoveryStore, owner: string): string {
  const origin = store.findZone(owner);
  if (origin === undefined) {
    throw new KeyconfError(
      'ERR_KEYCONF_NO_ZONE',
      `${owner} is in none of the zones of this store (${store.listZones().join(', ') || 'none'})`,
    );
  }
  // RFC 1034 §4.2.1: at and below a zone cut the child's servers answer; records put there are
  // never served (and a resolver would look for the key in the child's zone).
  for (let cut = owner; cut !== origin && isSubdomain(cut, origin); cut = parent(cut)) {
    if (store.readRRset(origin, cut, 'NS').length > 0) {
      throw new KeyconfError(
        'ERR_KEYCONF_BELOW_CUT',
        `${owner} is at or below the delegation of ${cut} in ${origin}: publish it in the child's zone`,
      );
    }
  }
  return origin;
}

function parent(name: string): string {
  const dot = name.indexOf('.');
  return dot < 0 ? '.' : name.slice(dot + 1);
}

/**
 * The SVCB of a DoH URL (RFC 9461 §5, RFC 9540 §4): the URL's host as the target, or the
 * service's own name with an address hint when the host is an IP address (a target is a
 * name); the port when not 443; `dohpath` the URL's path with the `{?dns}` variable; ALPN h2
 * and http/1.1 (RFC 8484 §5.2 recommends HTTP/2); and `ohttp`.
 */
function dohSvcb(owner: string, url: string): { target: string; params: SvcParams } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new KeyconfError('ERR_KEYCONF_DOH_URL', `${JSON.stringify(url)} is not a URL`, { cause });
  }
  if (parsed.protocol !== 'https:') {
    throw new KeyconfError('ERR_KEYCONF_DOH_URL', `the DoH URL ${url} is not https (RFC 8484 §5)`);
  }
  if (
    parsed.search !== '' ||
    parsed.hash !== '' ||
    parsed.username !== '' ||
    parsed.password !== ''
  ) {
    throw new KeyconfError(
      'ERR_KEYCONF_DOH_URL',
      `the DoH URL ${url} must be scheme, host, port and path only`,
    );
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const family = isIP(host);
  const path = parsed.pathname === '/' ? '/dns-query' : parsed.pathname;
  const params: SvcParams = {
    alpn: ['h2', 'http/1.1'],
    ...(parsed.port !== '' ? { port: Number(parsed.port) } : {}),
    ...(family === 4 ? { ipv4hint: [host] } : family === 6 ? { ipv6hint: [host] } : {}),
    dohpath: `${path}{?dns}`,
    ohttp: true,
  };
  return { target: family === 0 ? canonicalName(host) : owner, params };
}
