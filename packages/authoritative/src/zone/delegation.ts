import { isIP } from 'node:net';
import {
  canonicalName,
  isSubdomain,
  MimiError,
  record,
  type DsData,
  type ResourceRecord,
  type SvcParams,
} from '@mimi-discovery/common';
import type { DiscoveryStore } from '../store/store.js';
import type { RRsetChange } from '../store/store-types.js';

/**
 * Delegations of ranges from a zone to child Discovery Providers (the root delegating `+44`, or
 * a DP sub-delegating `+447`): NS and DS at the cut, address glue for nameservers inside the
 * parent zone, and each nameserver's DoH endpoint as `_dns.<nameserver>` SVCB (RFC 9461), which
 * referrals carry with the glue (design §7).
 *
 * Example: delegating `4.4.e164.mimi.arpa` from `mimi.arpa` to `ns1.4.4.e164.mimi.arpa` at
 * 127.0.0.1 with DoH on port 8443 writes
 * `4.4.e164.mimi.arpa NS ns1.4.4.e164.mimi.arpa`, `4.4.e164.mimi.arpa DS …`,
 * `ns1.4.4.e164.mimi.arpa A 127.0.0.1` and
 * `_dns.ns1.4.4.e164.mimi.arpa SVCB 1 ns1.4.4.e164.mimi.arpa alpn=h2,http/1.1 port=8443 dohpath=/dns-query{?dns}`.
 *
 * A delegation lists up to {@link MAX_NAMESERVERS_PER_DELEGATION} nameservers, each with any
 * number of IPv4 and IPv6 addresses; every one of them gets its glue and `_dns` SVCB when its
 * name is inside the parent zone, so a resolver can use them all (RFC 1034 §4.2.1: a name
 * outside the parent zone gets no glue from it). Glue belongs to a name, not to a delegation:
 * two delegations that list the same in-zone nameserver share its A/AAAA and SVCB, and
 * replacing or removing one of them keeps what the other still lists.
 */

/** A nameserver of a delegated zone. */
export interface NameserverSpec {
  name: string;
  /**
   * IPv4 and IPv6 addresses; required for a nameserver inside the parent zone (glue), not
   * published for one outside it.
   */
  addresses: string[];
  /** Its DoH endpoint (RFC 9461); omitted: port 443, `/dns-query` (design §7). */
  doh?: { port: number; path?: string; alpn?: string[] };
}

/** A delegation of one child zone. */
export interface DelegationSpec {
  zone: string;
  nameservers: NameserverSpec[];
  /** DS of the child's key; design §5: a delegation without DS is refused. */
  ds: DsData[];
}

/** TTL of delegation records (NS, DS, glue, SVCB) unless given. */
export const DELEGATION_TTL = 3600;
/**
 * Most nameservers one delegation may list: the 13 of the DNS root, which RFC 1035's 512-octet
 * responses fitted; our referrals travel over DoH or TCP, but a resolver tries at most a few
 * servers per zone anyway.
 */
export const MAX_NAMESERVERS_PER_DELEGATION = 13;
/** The DoH path RFC 8484 examples use and design §7 assumes when none is published. */
export const DEFAULT_DOH_PATH_TEMPLATE = '/dns-query{?dns}';

/** The codes of a {@link DelegationError}. */
export type DelegationErrorCode =
  | 'ERR_DELEGATION_GLUE'
  | 'ERR_DELEGATION_NAMESERVERS'
  | 'ERR_DELEGATION_NOT_CHILD'
  | 'ERR_DELEGATION_NOT_FOUND'
  | 'ERR_DELEGATION_NO_DS';

/** A delegation that cannot be made, undone or found; `code` says which. */
export class DelegationError extends MimiError<DelegationErrorCode> {}

/**
 * The RRset changes that add (or replace) a delegation of `spec.zone` from the zone `parent`.
 * Throws `DelegationError` for a child outside the parent, no nameservers, no DS, or an in-zone
 * nameserver without addresses.
 */
export function delegationChanges(
  parent: string,
  spec: DelegationSpec,
  ttl = DELEGATION_TTL,
): RRsetChange[] {
  const zone = canonicalName(spec.zone);
  const origin = canonicalName(parent);
  if (zone === origin || !isSubdomain(zone, origin)) {
    throw new DelegationError('ERR_DELEGATION_NOT_CHILD', `${spec.zone} is not below ${parent}`);
  }
  if (spec.nameservers.length === 0 || spec.nameservers.length > MAX_NAMESERVERS_PER_DELEGATION) {
    throw new DelegationError(
      'ERR_DELEGATION_NAMESERVERS',
      `a delegation needs 1 to ${MAX_NAMESERVERS_PER_DELEGATION} nameservers`,
    );
  }
  const names = new Set<string>();
  for (const ns of spec.nameservers) {
    const host = canonicalName(ns.name);
    if (names.has(host)) {
      throw new DelegationError(
        'ERR_DELEGATION_NAMESERVERS',
        `nameserver ${host} is listed twice (give each name once, with all its addresses)`,
      );
    }
    names.add(host);
    const bad = ns.addresses.find((a) => isIP(a) === 0);
    if (bad !== undefined) {
      throw new DelegationError(
        'ERR_DELEGATION_GLUE',
        `address ${JSON.stringify(bad)} of nameserver ${host} is not an IPv4 or IPv6 address`,
      );
    }
  }
  if (spec.ds.length === 0) {
    throw new DelegationError(
      'ERR_DELEGATION_NO_DS',
      `delegation of ${spec.zone} has no DS: every delegation is signed (design §5)`,
    );
  }
  const changes: RRsetChange[] = [
    {
      op: 'put',
      name: zone,
      type: 'NS',
      records: spec.nameservers.map((ns) => record(zone, 'NS', canonicalName(ns.name), ttl)),
    },
    {
      op: 'put',
      name: zone,
      type: 'DS',
      records: spec.ds.map((ds) => record(zone, 'DS', ds, ttl)),
    },
  ];
  for (const ns of spec.nameservers) {
    const host = canonicalName(ns.name);
    // Only names inside the parent zone can be served from it as glue (RFC 1034 §4.2.1).
    if (!isSubdomain(host, origin)) continue;
    const v4 = [...new Set(ns.addresses.filter((a) => isIP(a) === 4))];
    const v6 = [...new Set(ns.addresses.filter((a) => isIP(a) === 6))];
    if (v4.length + v6.length === 0) {
      throw new DelegationError(
        'ERR_DELEGATION_GLUE',
        `nameserver ${ns.name} is inside ${parent} and needs an address (glue)`,
      );
    }
    if (v4.length) changes.push(putAll(host, 'A', v4, ttl));
    if (v6.length) changes.push(putAll(host, 'AAAA', v6, ttl));
    // Without an SVCB a resolver assumes port 443 and /dns-query (design §7): publish only news.
    if (ns.doh === undefined) continue;
    const params: SvcParams = {
      alpn: ns.doh.alpn ?? ['h2', 'http/1.1'],
      port: ns.doh.port,
      dohpath: ns.doh.path ?? DEFAULT_DOH_PATH_TEMPLATE,
    };
    changes.push({
      op: 'put',
      name: `_dns.${host}`,
      type: 'SVCB',
      records: [record(`_dns.${host}`, 'SVCB', { priority: 1, target: host, params }, ttl)],
    });
  }
  return changes;
}

function putAll(name: string, type: 'A' | 'AAAA', addresses: string[], ttl: number): RRsetChange {
  return { op: 'put', name, type, records: addresses.map((a) => record(name, type, a, ttl)) };
}

/** Adds or replaces the delegation of `spec.zone` in the store's zone `parent`; durable on return. */
export async function delegate(
  store: DiscoveryStore,
  parent: string,
  spec: DelegationSpec,
  ttl = DELEGATION_TTL,
): Promise<{ serial: number }> {
  const zone = canonicalName(spec.zone);
  const all = listDelegations(store, parent);
  const current = all.find((d) => d.zone === zone);
  const changes = delegationChanges(parent, spec, ttl);
  // Replacing a delegation: drop glue of nameservers that are no longer listed, unless another
  // delegation of the zone still lists them.
  const kept = new Set(changes.map((c) => `${c.name}/${c.type}`));
  const stale = current
    ? removalChanges(parent, current, sharedNameservers(all, zone)).filter(
        (c) => !kept.has(`${c.name}/${c.type}`),
      )
    : [];
  return store.apply(canonicalName(parent), [...stale, ...changes]);
}

/** The nameservers listed by the delegations of `all` other than `zone`'s. */
function sharedNameservers(all: readonly DelegationSpec[], zone: string): ReadonlySet<string> {
  return new Set(
    all.filter((d) => d.zone !== zone).flatMap((d) => d.nameservers.map((ns) => ns.name)),
  );
}

/** Removes the delegation of `zone` from the store's zone `parent`; durable on return. */
export async function undelegate(
  store: DiscoveryStore,
  parent: string,
  zone: string,
): Promise<{ serial: number }> {
  const all = listDelegations(store, parent);
  const current = all.find((d) => d.zone === canonicalName(zone));
  if (!current) {
    throw new DelegationError(
      'ERR_DELEGATION_NOT_FOUND',
      `${zone} is not delegated from ${parent}`,
    );
  }
  return store.apply(
    canonicalName(parent),
    removalChanges(parent, current, sharedNameservers(all, current.zone)),
  );
}

/**
 * The changes that remove `spec`'s NS, DS and the glue and SVCB of its nameservers, except those
 * of the nameservers in `shared` (listed by another delegation, which still needs them).
 */
function removalChanges(
  parent: string,
  spec: DelegationSpec,
  shared: ReadonlySet<string>,
): RRsetChange[] {
  const changes: RRsetChange[] = [
    { op: 'delete', name: spec.zone, type: 'NS' },
    { op: 'delete', name: spec.zone, type: 'DS' },
  ];
  for (const ns of spec.nameservers) {
    // Glue exists only for nameservers inside the parent zone.
    if (!isSubdomain(ns.name, parent) || shared.has(ns.name)) continue;
    changes.push({ op: 'delete', name: ns.name, type: 'A' });
    changes.push({ op: 'delete', name: ns.name, type: 'AAAA' });
    changes.push({ op: 'delete', name: `_dns.${ns.name}`, type: 'SVCB' });
  }
  return changes;
}

/** Every delegation in the store's zone `parent`, read back from its records. */
export function listDelegations(store: DiscoveryStore, parent: string): DelegationSpec[] {
  const origin = canonicalName(parent);
  const records = store.readZone(origin);
  const byName = new Map<string, ResourceRecord[]>();
  for (const rr of records) {
    const owner = canonicalName(rr.name);
    const list = byName.get(owner) ?? [];
    list.push(rr);
    byName.set(owner, list);
  }
  const out: DelegationSpec[] = [];
  for (const [owner, list] of byName) {
    if (owner === origin) continue;
    const ns = list.filter((r): r is Extract<ResourceRecord, { type: 'NS' }> => r.type === 'NS');
    if (ns.length === 0) continue;
    const ds = list.flatMap((r) => (r.type === 'DS' ? [r.data] : []));
    const nameservers = ns.map((r): NameserverSpec => {
      const host = canonicalName(r.data);
      const glue = byName.get(host) ?? [];
      const addresses = glue.flatMap((g) => (g.type === 'A' || g.type === 'AAAA' ? [g.data] : []));
      const svcb = (byName.get(`_dns.${host}`) ?? []).find((g) => g.type === 'SVCB');
      const params = svcb?.type === 'SVCB' ? svcb.data.params : undefined;
      return {
        name: host,
        addresses,
        ...(params?.port !== undefined
          ? {
              doh: {
                port: params.port,
                ...(params.dohpath !== undefined ? { path: params.dohpath } : {}),
                ...(params.alpn !== undefined ? { alpn: params.alpn } : {}),
              },
            }
          : {}),
      };
    });
    out.push({ zone: owner, nameservers, ds });
  }
  return out.sort((a, b) => (a.zone < b.zone ? -1 : a.zone > b.zone ? 1 : 0));
}
