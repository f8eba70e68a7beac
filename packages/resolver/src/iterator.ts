import {
  canonicalName,
  isSubdomain,
  joinLabels,
  labelCount,
  nameLabels,
  namesEqual,
  parentName,
  type DnskeyData,
  type DsData,
  type Logger,
  type Message,
  type ResourceRecord,
  type RRType,
} from '@mimi-discovery/common';
import { cacheSlot, SingleFlight, type ResolverCache } from './cache.js';
import {
  MAX_MINIMISE_LABELS,
  MAX_QUERIES_PER_RESOLUTION,
  MAX_REFERRALS_PER_RESOLUTION,
} from './limits.js';
import type { NameServer, Upstream, UpstreamOutcome } from './upstream.js';
import {
  recordsOf,
  rrsetOf,
  validateDelegationDs,
  validateDenial,
  validateDnskeys,
  validateRRset,
  type TrustedKeys,
  type VerificationBudget,
} from './validator.js';

/**
 * The iterator stage: resolves one question from the apex down (RFC 1034 §5.3.3), as a loop over
 * steps that each carry their zone cut: ask the cut's servers, classify the response as a typed
 * outcome (answer, referral, nodata, nxdomain), hand it to the validator, and either finish or
 * move the cut down. Delegations and trusted DNSKEYs are kept in the cache, so a later question
 * starts at the deepest cut it already knows.
 *
 * QNAME minimisation (RFC 9156), bounded: below a cut, when at most {@link MAX_MINIMISE_LABELS}
 * labels remain, the name is walked one label at a time with NS questions; otherwise the full
 * name is asked. Worked example, `…8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa MAP` with nothing
 * cached: DNSKEY of `mimi.arpa`, then the full name at the root (13 labels remain) → referral to
 * `4.4.e164.mimi.arpa`; DNSKEY of that zone; the full name there → the MAP answer. Four queries,
 * and the next number of the same range costs one.
 */

/** A zone cut: the zone, its servers, and the DS that authenticates its keys. */
export interface Delegation {
  readonly zone: string;
  readonly servers: readonly NameServer[];
  /** The validated DS RRset from the parent (the trust anchor for the apex). */
  readonly ds: readonly DsData[];
}

/** The outcome of resolving one question: validated data, or why there is none. */
export type Resolution =
  | {
      readonly kind: 'answer';
      readonly zone: string;
      readonly server: string;
      /** The RRset, validated. */
      readonly rrset: readonly ResourceRecord[];
      /** The RRSIG that verified it. */
      readonly rrsigs: readonly ResourceRecord[];
      readonly ttl: number;
    }
  | {
      readonly kind: 'nodata' | 'nxdomain';
      readonly zone: string;
      readonly server: string;
      /** SOA, NSEC and their RRSIGs, validated. */
      readonly records: readonly ResourceRecord[];
      readonly ttl: number;
    }
  | { readonly kind: 'bogus'; readonly reason: string; readonly detail: string }
  | {
      readonly kind: 'error';
      readonly reason: 'timeout' | 'servfail' | 'limit' | 'refused';
      readonly detail: string;
    };

/** What one response is, relative to the question and the cut that was asked (hickory style). */
export type ResponseOutcome =
  | { readonly kind: 'answer' }
  | { readonly kind: 'referral'; readonly child: string }
  | { readonly kind: 'nodata' }
  | { readonly kind: 'nxdomain' }
  | { readonly kind: 'invalid'; readonly detail: string };

/** Per-resolution counters, shared by every question of one `discover`. */
export interface ResolutionBudget {
  readonly verifications: VerificationBudget;
  queries: number;
  referrals: number;
}

/** Cached delegations, by canonical zone. */
export const DELEGATIONS = cacheSlot<Delegation>('delegation');
/** Cached trusted DNSKEYs, by canonical zone. */
export const DNSKEYS = cacheSlot<readonly DnskeyData[]>('dnskey');

/** What the iterator needs from the resolver. */
export interface IteratorInit {
  readonly apex: string;
  /** The apex's servers (root hints) and the trust anchor's DS. */
  readonly root: Delegation;
  readonly transport: 'doh' | 'dns';
  /** Port of every non-root server with plain DNS. */
  readonly dnsPort: number;
  readonly upstream: Upstream;
  readonly cache: ResolverCache;
  /** Seconds since the epoch. */
  readonly now: () => number;
  readonly log: Logger;
}

/** The iterator. */
export interface Iterator {
  /** Resolves and validates `name`/`type`, spending from `budget`. */
  resolve(name: string, type: RRType, budget: ResolutionBudget): Promise<Resolution>;
}

/** The DoH path when a nameserver publishes none (design §7). */
const DEFAULT_DOH_PATH = '/dns-query';
const DEFAULT_DOH_PORT = 443;

/**
 * Classifies a response to `name`/`type` asked of `zone` (RFC 4035 §3.1.4 terms): an RRset at
 * the name is an answer; NS below the zone and above (or at) the name, without SOA, a referral;
 * otherwise NXDOMAIN or NOERROR without data is a denial.
 */
export function classifyResponse(
  response: Message,
  zone: string,
  name: string,
  type: RRType,
): ResponseOutcome {
  if (response.rcode !== 'NOERROR' && response.rcode !== 'NXDOMAIN') {
    return { kind: 'invalid', detail: `rcode ${response.rcode}` };
  }
  if (recordsOf(response.answers, name, type).length > 0) return { kind: 'answer' };
  if (response.answers.some((rr) => rr.type === 'CNAME')) {
    return { kind: 'invalid', detail: 'CNAME has no role in the discovery namespace' };
  }
  const soa = response.authorities.some((rr) => rr.type === 'SOA');
  const ns = response.authorities.find((rr) => rr.type === 'NS');
  if (!soa && ns !== undefined && response.rcode === 'NOERROR') {
    const child = canonicalName(ns.name);
    if (child === canonicalName(zone) || !isSubdomain(child, zone) || !isSubdomain(name, child)) {
      return {
        kind: 'invalid',
        detail: `referral to ${child} is not below ${zone} toward the name`,
      };
    }
    return { kind: 'referral', child };
  }
  return response.rcode === 'NXDOMAIN' ? { kind: 'nxdomain' } : { kind: 'nodata' };
}

/** Builds the servers of a referral from NS, glue and `_dns` SVCB (RFC 9461). */
export function referralServers(
  response: Message,
  child: string,
  parent: string,
  transport: 'doh' | 'dns',
  dnsPort: number,
): NameServer[] {
  const servers: NameServer[] = [];
  for (const ns of rrsetOf(response.authorities, child, 'NS')) {
    const host = canonicalName(ns.data);
    // Glue is only believed for names inside the zone that sent it (RFC 1034 §4.2.1 bailiwick).
    const addresses = isSubdomain(host, parent)
      ? [
          ...rrsetOf(response.additionals, host, 'A').map((rr) => rr.data),
          ...rrsetOf(response.additionals, host, 'AAAA').map((rr) => rr.data),
        ]
      : [];
    if (transport === 'dns') {
      for (const address of addresses) {
        servers.push({ name: host, endpoint: { kind: 'dns', host: address, port: dnsPort } });
      }
      continue;
    }
    const svcb = rrsetOf(response.additionals, `_dns.${host}`, 'SVCB').find(
      (rr) => rr.data.priority > 0,
    );
    const port = svcb?.data.params.port ?? DEFAULT_DOH_PORT;
    const path = (svcb?.data.params.dohpath ?? DEFAULT_DOH_PATH).replace(/\{\?dns\}$/, '');
    // A nameserver without glue is skipped: looking its name up through the host's resolver
    // would leave the namespace and tell a third party which zones are walked (R6).
    for (const h of addresses) {
      const authority = h.includes(':') ? `[${h}]` : h;
      servers.push({
        name: host,
        endpoint: { kind: 'doh', url: `https://${authority}:${port}${path}` },
      });
    }
  }
  return servers;
}

/** Creates the iterator stage. */
export function createIterator(init: IteratorInit): Iterator {
  const { apex, cache, upstream, log } = init;
  const inFlight = new SingleFlight<UpstreamOutcome>();

  const ask = (
    cut: Delegation,
    name: string,
    type: RRType,
    budget: ResolutionBudget,
  ): Promise<UpstreamOutcome> | undefined => {
    if (budget.queries >= MAX_QUERIES_PER_RESOLUTION) return undefined;
    budget.queries++;
    // Identical concurrent questions to one zone share one upstream query.
    const key = `${cut.zone}|${canonicalName(name)}|${type}`;
    return inFlight.run(key, () => upstream.query(cut.servers, name, type));
  };

  const limit = (detail: string): Resolution => ({ kind: 'error', reason: 'limit', detail });
  const bogus = (reason: string, detail: string): Resolution => ({ kind: 'bogus', reason, detail });

  /** The trusted keys of a cut: cached, or fetched and validated against its DS. */
  const keysOf = async (
    cut: Delegation,
    budget: ResolutionBudget,
  ): Promise<{ ok: true; keys: readonly DnskeyData[] } | { ok: false; failure: Resolution }> => {
    const cached = cache.get(DNSKEYS, cut.zone);
    if (cached !== undefined) return { ok: true, keys: cached.value };
    const pending = ask(cut, cut.zone, 'DNSKEY', budget);
    if (pending === undefined) return { ok: false, failure: limit('too many queries') };
    const outcome = await pending;
    if (!outcome.ok) {
      return {
        ok: false,
        failure: { kind: 'error', reason: outcome.reason, detail: outcome.detail },
      };
    }
    const validated: { ok: true; value: TrustedKeys } | { ok: false; reason: string } =
      validateDnskeys(cut.zone, outcome.message.answers, cut.ds, init.now(), budget.verifications);
    if (!validated.ok) {
      return { ok: false, failure: bogus(validated.reason, `DNSKEY of ${cut.zone}`) };
    }
    cache.set(DNSKEYS, cut.zone, validated.value.keys, validated.value.ttl);
    return { ok: true, keys: validated.value.keys };
  };

  /** The deepest cached cut at or above `name` (for DS, strictly above: DS is the parent's). */
  const startingCut = (name: string, type: RRType): Delegation => {
    let at: string | undefined = type === 'DS' ? parentName(name) : name;
    while (at !== undefined && isSubdomain(at, apex) && !namesEqual(at, apex)) {
      const hit = cache.get(DELEGATIONS, canonicalName(at));
      if (hit !== undefined) return hit.value;
      at = parentName(at);
    }
    return init.root;
  };

  /**
   * The name to ask next below `cut` (RFC 9156): one more label than the cut, or the full name
   * when it is that name or when too many labels remain.
   */
  const nextName = (cut: Delegation, name: string, asked: number): string => {
    const labels = nameLabels(name);
    const below = labels.length - labelCount(cut.zone);
    if (below > MAX_MINIMISE_LABELS) return name;
    const take = Math.min(labels.length, labelCount(cut.zone) + asked + 1);
    return joinLabels(labels.slice(labels.length - take));
  };

  const resolve = async (
    name: string,
    type: RRType,
    budget: ResolutionBudget,
  ): Promise<Resolution> => {
    if (!isSubdomain(name, apex)) {
      return { kind: 'error', reason: 'refused', detail: `the name is outside ${apex}` };
    }
    let cut = startingCut(name, type);
    // Labels already walked below the current cut by minimised questions.
    let walked = 0;
    for (;;) {
      const keys = await keysOf(cut, budget);
      if (!keys.ok) return keys.failure;
      const qname = nextName(cut, name, walked);
      const minimised = !namesEqual(qname, name);
      const qtype: RRType = minimised ? 'NS' : type;
      const pending = ask(cut, qname, qtype, budget);
      if (pending === undefined) return limit('too many queries');
      const outcome = await pending;
      if (!outcome.ok) return { kind: 'error', reason: outcome.reason, detail: outcome.detail };
      const response = outcome.message;
      const classified = classifyResponse(response, cut.zone, qname, qtype);
      const now = init.now();

      if (classified.kind === 'invalid') {
        return { kind: 'error', reason: 'servfail', detail: classified.detail };
      }

      if (classified.kind === 'referral') {
        if (++budget.referrals > MAX_REFERRALS_PER_RESOLUTION) return limit('too many referrals');
        const ds = validateDelegationDs(
          classified.child,
          response.authorities,
          cut.zone,
          keys.keys,
          now,
          budget.verifications,
        );
        if (!ds.ok) return bogus(ds.reason, `delegation of ${classified.child}`);
        const servers = referralServers(
          response,
          classified.child,
          cut.zone,
          init.transport,
          init.dnsPort,
        );
        if (servers.length === 0) {
          return {
            kind: 'error',
            reason: 'servfail',
            detail: `no usable server for ${classified.child}`,
          };
        }
        const ns = rrsetOf(response.authorities, classified.child, 'NS');
        const child: Delegation = { zone: classified.child, servers, ds: ds.value.ds };
        cache.set(
          DELEGATIONS,
          child.zone,
          child,
          Math.min(ds.value.ttl, ...ns.map((rr) => rr.ttl)),
        );
        log.debug('referral', { zone: cut.zone, child: child.zone });
        cut = child;
        walked = 0;
        continue;
      }

      if (minimised) {
        // An intermediate name exists (or is an empty non-terminal): walk one label further.
        // A denial of it from a server that mishandles empty non-terminals (RFC 9156 §2.3)
        // would end minimisation: the full name is asked next.
        walked = classified.kind === 'nodata' ? walked + 1 : labelCount(name);
        continue;
      }

      if (classified.kind === 'answer') {
        const rrset = recordsOf(response.answers, name, type);
        const verified = validateRRset(
          rrset,
          response.answers,
          cut.zone,
          keys.keys,
          now,
          budget.verifications,
        );
        if (!verified.ok) return bogus(verified.reason, `${type} answer from ${cut.zone}`);
        return {
          kind: 'answer',
          zone: cut.zone,
          server: outcome.server,
          rrset,
          rrsigs: verified.value.rrsigs,
          ttl: verified.value.ttl,
        };
      }

      const denial = validateDenial(
        name,
        type,
        response.authorities,
        cut.zone,
        keys.keys,
        now,
        budget.verifications,
      );
      if (!denial.ok) return bogus(denial.reason, `denial of ${type} from ${cut.zone}`);
      return {
        kind: denial.value.kind,
        zone: cut.zone,
        server: outcome.server,
        records: denial.value.records,
        ttl: denial.value.ttl,
      };
    }
  };

  return { resolve };
}
