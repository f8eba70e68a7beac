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
  DEADLINE_REASON,
  LIMIT_REASONS,
  recordsOf,
  rrsetOf,
  validateDelegationDs,
  validateDenial,
  validateDnskeys,
  validateRRset,
  type SignatureMemo,
  type Validation,
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
 * cached: DNSKEY of `mimi.arpa` and the full name at the root (13 labels remain), sent together
 * → referral to `4.4.e164.mimi.arpa`; DNSKEY of that zone and the full name there, together →
 * the MAP answer. Four queries in two round trips, and the next number of the same range costs
 * one. MAPREF for the same name asked meanwhile waits for the MAP question's referral at the root
 * instead of asking the root again, then goes to the DP with it.
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
  | {
      readonly kind: 'bogus';
      readonly reason: string;
      readonly detail: string;
      /** The zone the failure is about (its keys, its delegation): see {@link Failure}. */
      readonly zone?: string;
    }
  | {
      readonly kind: 'error';
      readonly reason: 'timeout' | 'servfail' | 'limit' | 'refused';
      readonly detail: string;
      /** The zone the failure is about (its servers, its delegation): see {@link Failure}. */
      readonly zone?: string;
    };

/**
 * A resolution that failed. With `zone`, the failure is the zone's and holds for every name
 * under it (RFC 9520 §3.2, RFC 4697 §2.1 extended to every ancestor by RFC 9520 §3.3): its
 * DNSKEY RRset is bogus or cannot be had, its delegation's DS is bogus, or none of its servers
 * can be reached or used. Without, it is about the one question (a bogus answer or denial, a
 * server's error for that name, a limit, a timeout).
 */
export type Failure = Extract<Resolution, { kind: 'bogus' | 'error' }>;

/** What one response is, relative to the question and the cut that was asked (hickory style). */
export type ResponseOutcome =
  | { readonly kind: 'answer' }
  | { readonly kind: 'referral'; readonly child: string }
  | { readonly kind: 'nodata' }
  | { readonly kind: 'nxdomain' }
  | { readonly kind: 'invalid'; readonly detail: string };

/**
 * Per-resolution counters, shared by every step of one question's resolution. The deadline is
 * the verification budget's (`expired`): a resolution past it sends nothing more, verifies
 * nothing more, and ends as a timeout.
 */
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
  /** Signatures verified before (SOA, DNSKEY, DS), so that each is verified once per cache fill. */
  readonly memo?: SignatureMemo;
}

/** The iterator. */
export interface Iterator {
  /** Resolves and validates `name`/`type`, spending from `budget`. */
  resolve(name: string, type: RRType, budget: ResolutionBudget): Promise<Resolution>;
  /**
   * The zone whose servers questions for `name` go to: the deepest delegation known for it, once
   * the referral of a question for `name` already on its way to the apex is in. A guess, for
   * questions worth sending early (the AUTHKEY of the zone that will answer): the zone that does
   * answer may delegate further.
   */
  zoneFor(name: string): Promise<string>;
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

/** The parent of a canonical name without escapes (`a.b` → `b`); undefined for a single label. */
function parentOf(name: string): string | undefined {
  const dot = name.indexOf('.');
  return dot < 0 ? undefined : name.slice(dot + 1);
}

/** A question to the apex on its way, and the delegation its referral gives once validated. */
interface ApexQuestion {
  readonly type: RRType;
  /** The validated child delegation when the response is a referral; else undefined. Never rejects. */
  readonly delegation: Promise<Delegation | undefined>;
}

/** One turn of the loop of {@link Iterator.resolve}: finished, moved down a cut, or walked a label. */
type Step =
  | { readonly kind: 'done'; readonly resolution: Resolution }
  | { readonly kind: 'down'; readonly child: Delegation }
  | { readonly kind: 'walk'; readonly walked: number };

/** Creates the iterator stage. */
export function createIterator(init: IteratorInit): Iterator {
  const { apex, cache, upstream, log, memo } = init;
  const inFlight = new SingleFlight<UpstreamOutcome>();
  // Full-name questions to the apex on their way, by name. The apex is the root directory, whose
  // zone holds only delegations (design §2): a question for a name below a range gets the same
  // referral whatever its type, so MAP and MAPREF for one CSI need one question there, not two.
  // Entries live while their question is in flight, so the map is bounded by the questions in
  // flight.
  const apexQuestions = new Map<string, ApexQuestion>();

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
  const done = (resolution: Resolution): Step => ({ kind: 'done', resolution });

  /**
   * A failure of validation: bogus (the zone's when `zone` is given), or a timeout when the
   * deadline passed during it. A resolution that spent its verifications says nothing about the
   * zone it was validating then: that failure is the question's.
   */
  const invalid = (
    validation: Extract<Validation<unknown>, { ok: false }>,
    detail: string,
    zone?: string,
  ): Resolution => {
    if (validation.reason === DEADLINE_REASON) {
      return { kind: 'error', reason: 'timeout', detail: `deadline passed validating ${detail}` };
    }
    return zone === undefined || validation.reason === LIMIT_REASONS.verifications
      ? bogus(validation.reason, detail)
      : { kind: 'bogus', reason: validation.reason, detail, zone };
  };

  type KeysOutcome = { ok: true; keys: readonly DnskeyData[] } | { ok: false; failure: Resolution };
  // One fetch and one validation of a zone's DNSKEY RRset for every question that needs it at
  // once (MAP, MAPREF and AUTHKEY of one CSI arrive together), charged to the first question's
  // budget: a hostile RRset is validated once, not once per question.
  const keysInFlight = new SingleFlight<KeysOutcome>();

  /** The trusted keys of a cut: cached, or fetched and validated against its DS. */
  const keysOf = (cut: Delegation, budget: ResolutionBudget): Promise<KeysOutcome> => {
    const cached = cache.get(DNSKEYS, cut.zone);
    if (cached !== undefined) return Promise.resolve({ ok: true, keys: cached.value });
    return keysInFlight.run(cut.zone, async (): Promise<KeysOutcome> => {
      const pending = ask(cut, cut.zone, 'DNSKEY', budget);
      if (pending === undefined) return { ok: false, failure: limit('too many queries') };
      const outcome = await pending;
      if (!outcome.ok) {
        // A zone whose servers cannot give its keys serves nothing that validates.
        return {
          ok: false,
          failure: {
            kind: 'error',
            reason: outcome.reason,
            detail: outcome.detail,
            zone: cut.zone,
          },
        };
      }
      const validated = await validateDnskeys(
        cut.zone,
        outcome.message.answers,
        cut.ds,
        init.now(),
        budget.verifications,
        memo,
      );
      if (!validated.ok) {
        return { ok: false, failure: invalid(validated, `DNSKEY of ${cut.zone}`, cut.zone) };
      }
      cache.set(DNSKEYS, cut.zone, validated.value.keys, validated.value.ttl);
      return { ok: true, keys: validated.value.keys };
    });
  };

  const apexSuffix = `.${apex}`;
  /**
   * The deepest cached cut at or above `name` (for DS, strictly above: DS is the parent's).
   * Walks the name's suffixes from the longest; a name with escapes (never a CSI name), or an
   * apex at the root, is walked label by label.
   */
  const startingCut = (name: string, type: RRType): Delegation => {
    const canonical = canonicalName(name);
    if (canonical.includes('\\') || apex === '.') return startingCutByLabels(name, type);
    let at: string | undefined = type === 'DS' ? parentOf(canonical) : canonical;
    while (at !== undefined && at.endsWith(apexSuffix)) {
      const hit = cache.get(DELEGATIONS, at);
      if (hit !== undefined) return hit.value;
      at = parentOf(at);
    }
    return init.root;
  };

  const startingCutByLabels = (name: string, type: RRType): Delegation => {
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

  /** Whether a question of `type` for the full name at `cut` may share its referral (see above). */
  const sharesReferral = (cut: Delegation, type: RRType): boolean =>
    cut.zone === init.root.zone && type !== 'DS';

  /**
   * The delegation the referral of another question for `name` to the apex will give, when one of
   * another type is on its way; undefined otherwise (then this question is asked on its own).
   * Synchronous up to the promise, so that a question asked right after another one finds it.
   */
  const joinedReferral = (
    cut: Delegation,
    name: string,
    type: RRType,
  ): Promise<Delegation | undefined> | undefined => {
    if (!sharesReferral(cut, type)) return undefined;
    const other = apexQuestions.get(canonicalName(name));
    if (other === undefined || other.type === type) return undefined;
    return other.delegation;
  };

  /** Follows a referral from `cut`: validates the child's DS, remembers the delegation. */
  const follow = async (
    cut: Delegation,
    child: string,
    response: Message,
    keys: readonly DnskeyData[],
    budget: ResolutionBudget,
  ): Promise<Step> => {
    if (++budget.referrals > MAX_REFERRALS_PER_RESOLUTION) return done(limit('too many referrals'));
    const ds = await validateDelegationDs(
      child,
      response.authorities,
      cut.zone,
      keys,
      init.now(),
      budget.verifications,
      memo,
    );
    if (!ds.ok) return done(invalid(ds, `delegation of ${child}`, child));
    const servers = referralServers(response, child, cut.zone, init.transport, init.dnsPort);
    if (servers.length === 0) {
      // A delegation loop or a cut to nameservers without glue: nothing under it can be reached.
      return done({
        kind: 'error',
        reason: 'servfail',
        detail: `no usable server for ${child}`,
        zone: child,
      });
    }
    const ns = rrsetOf(response.authorities, child, 'NS');
    const delegation: Delegation = { zone: child, servers, ds: ds.value.ds };
    cache.set(
      DELEGATIONS,
      delegation.zone,
      delegation,
      Math.min(ds.value.ttl, ...ns.map((rr) => rr.ttl)),
    );
    log.debug('referral', { zone: cut.zone, child: delegation.zone });
    return { kind: 'down', child: delegation };
  };

  /**
   * One question at `cut`: the cut's keys and the question go out together (neither depends on
   * the other's response; the response is validated once both are in), then the response is
   * classified and validated.
   */
  const step = async (
    cut: Delegation,
    name: string,
    type: RRType,
    walked: number,
    budget: ResolutionBudget,
  ): Promise<Step> => {
    if (budget.verifications.expired()) {
      return done({ kind: 'error', reason: 'timeout', detail: 'deadline passed' });
    }
    const qname = nextName(cut, name, walked);
    const minimised = !namesEqual(qname, name);
    const qtype: RRType = minimised ? 'NS' : type;

    const joining = minimised ? undefined : joinedReferral(cut, qname, qtype);
    if (joining !== undefined) {
      const joined = await joining;
      if (joined !== undefined) {
        if (++budget.referrals > MAX_REFERRALS_PER_RESOLUTION) {
          return done(limit('too many referrals'));
        }
        return { kind: 'down', child: joined };
      }
    }

    let settle: ((delegation: Delegation | undefined) => void) | undefined;
    const key = canonicalName(qname);
    if (!minimised && sharesReferral(cut, qtype) && !apexQuestions.has(key)) {
      const question: ApexQuestion = {
        type: qtype,
        delegation: new Promise<Delegation | undefined>((resolve) => {
          settle = resolve;
        }),
      };
      apexQuestions.set(key, question);
      void question.delegation.then(() => {
        if (apexQuestions.get(key) === question) apexQuestions.delete(key);
      });
    }
    let child: Delegation | undefined;
    try {
      const keysPending = keysOf(cut, budget);
      const pending = ask(cut, qname, qtype, budget);
      const [keys, outcome] = await Promise.all([keysPending, pending]);
      if (!keys.ok) return done(keys.failure);
      if (outcome === undefined) return done(limit('too many queries'));
      if (!outcome.ok) {
        // Every server unreachable is the zone's failure; errors they answered are the name's.
        return done(
          outcome.unreachable
            ? { kind: 'error', reason: outcome.reason, detail: outcome.detail, zone: cut.zone }
            : { kind: 'error', reason: outcome.reason, detail: outcome.detail },
        );
      }
      const response = outcome.message;
      const classified = classifyResponse(response, cut.zone, qname, qtype);
      const now = init.now();

      if (classified.kind === 'invalid') {
        return done({ kind: 'error', reason: 'servfail', detail: classified.detail });
      }

      if (classified.kind === 'referral') {
        const followed = await follow(cut, classified.child, response, keys.keys, budget);
        if (followed.kind === 'down') child = followed.child;
        return followed;
      }

      if (minimised) {
        // An intermediate name exists (or is an empty non-terminal): walk one label further.
        // A denial of it from a server that mishandles empty non-terminals (RFC 9156 §2.3)
        // would end minimisation: the full name is asked next.
        return {
          kind: 'walk',
          walked: classified.kind === 'nodata' ? walked + 1 : labelCount(name),
        };
      }

      if (classified.kind === 'answer') {
        const rrset = recordsOf(response.answers, name, type);
        const verified = await validateRRset(
          rrset,
          response.answers,
          cut.zone,
          keys.keys,
          now,
          budget.verifications,
          memo,
        );
        if (!verified.ok) return done(invalid(verified, `${type} answer from ${cut.zone}`));
        return done({
          kind: 'answer',
          zone: cut.zone,
          server: outcome.server,
          rrset,
          rrsigs: verified.value.rrsigs,
          ttl: verified.value.ttl,
        });
      }

      const denial = await validateDenial(
        name,
        type,
        response.authorities,
        cut.zone,
        keys.keys,
        now,
        budget.verifications,
        memo,
      );
      if (!denial.ok) return done(invalid(denial, `denial of ${type} from ${cut.zone}`));
      return done({
        kind: denial.value.kind,
        zone: cut.zone,
        server: outcome.server,
        records: denial.value.records,
        ttl: denial.value.ttl,
      });
    } finally {
      settle?.(child);
    }
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
    // Bounded: every turn either sends a question (MAX_QUERIES_PER_RESOLUTION) or follows a
    // referral (MAX_REFERRALS_PER_RESOLUTION).
    for (;;) {
      const next = await step(cut, name, type, walked, budget);
      if (next.kind === 'done') return next.resolution;
      if (next.kind === 'down') {
        cut = next.child;
        walked = 0;
      } else {
        walked = next.walked;
      }
    }
  };

  const zoneFor = async (name: string): Promise<string> => {
    const question = apexQuestions.get(canonicalName(name));
    const child = question === undefined ? undefined : await question.delegation;
    return (child ?? startingCut(name, 'MAP')).zone;
  };

  return { resolve, zoneFor };
}
