import {
  DNSKEY_FLAG_REVOKE,
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
  type Verifier,
} from '@mimi-discovery/common';
import { cacheSlot, type ResolverCache } from './cache.js';
import { EXPIRED, type Deadline } from './deadline.js';
import {
  MAX_QUERIES_PER_RESOLUTION,
  MINIMISE_ONE_LABEL_STEPS,
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
 * move the cut down. Zone cuts are kept in the cache, so a later question starts at the deepest
 * cut it already knows. Its functions work over two explicit states, as Unbound's iterator over
 * its `iter_qstate`: the {@link QuestionState} of the one question (its name, type, deadline and
 * budget) and the {@link Iterator} every question shares (what it was given, and the referrals
 * on their way). Caching answers, single-flight and failure caching are the question stage's
 * (`questions.ts`), which runs {@link iterate} once per question.
 *
 * The keys of a cut are the question (cut, DNSKEY), asked through the question stage
 * ({@link IteratorInit.keys}) so that it is single-flighted with every other question; at its
 * own cut that question is answered by fetching the RRset and validating it against the cut's
 * DS ({@link primeKeys}), not by the keys it is the source of.
 *
 * QNAME minimisation (RFC 9156), so that a server above the zone that holds a name sees at most
 * one label below a name it holds: below a cut the name is walked one label at a time with NS
 * questions — at the apex always, below other cuts for the first
 * {@link MINIMISE_ONE_LABEL_STEPS} labels, then the full name is asked. A validated denial that
 * the walked name exists (NXDOMAIN, or a compact denial with NXNAME, RFC 9824) ends the
 * resolution there: nothing exists below a name that does not (RFC 8020). Each validated probe
 * outcome is cached ({@link MINIMISED_NAMES}), so the next name under the same prefix walks it
 * without a query. Worked example, `…8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa MAP` with nothing
 * cached: DNSKEY of `mimi.arpa` with `e164.mimi.arpa NS` (an empty non-terminal: walk on), then
 * `4.e164…`, then `4.4.e164…` → referral; at `4.4.e164.mimi.arpa` its DNSKEY with
 * `2.4.4.e164…`, then three more labels one at a time, then the full name → the MAP answer. The
 * root saw `4.4.e164.mimi.arpa`, no digit of the subscriber number. With the cache warm the next
 * number of the range costs its own probes and question; with a local copy of the root zone
 * (`root-copy.ts`) the root is asked nothing.
 */

/**
 * A zone cut: the zone, its servers, and the DS that authenticates its keys — what the resolver
 * tracks of a delegation once its referral is validated.
 */
export interface ZoneCut {
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
      /** The zone the failure is about (its keys, its zone cut): see {@link Failure}. */
      readonly zone?: string;
    }
  | {
      readonly kind: 'error';
      readonly reason: 'timeout' | 'servfail' | 'limit' | 'refused';
      readonly detail: string;
      /** The zone the failure is about (its servers, its zone cut): see {@link Failure}. */
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

/** Whether a resolution failed. */
export function isFailure(resolution: Resolution): resolution is Failure {
  return resolution.kind === 'bogus' || resolution.kind === 'error';
}

/** What one response is, relative to the question and the cut that was asked (hickory style). */
export type ResponseOutcome =
  | { readonly kind: 'answer' }
  | { readonly kind: 'referral'; readonly child: string }
  | { readonly kind: 'nodata' }
  | { readonly kind: 'nxdomain' }
  | { readonly kind: 'invalid'; readonly detail: string };

/**
 * The work one resolution may still do, spent by every step of it: queries
 * ({@link MAX_QUERIES_PER_RESOLUTION}), referrals ({@link MAX_REFERRALS_PER_RESOLUTION}) and
 * signature verifications (the validator's {@link VerificationBudget}, whose `expired` is the
 * resolution's deadline).
 */
export interface ResolutionBudget {
  readonly verifications: VerificationBudget;
  queries: number;
  referrals: number;
}

/**
 * The state of one question's resolution (Unbound's `iter_qstate`), made once per question by
 * the question stage and shared by every caller of it. The question for a zone's keys that a
 * resolution starts shares its deadline and budget: a hostile DNSKEY RRset is validated once, on
 * the budget of the resolution that needed it first, and never outlives that resolution's
 * deadline.
 */
export interface QuestionState {
  readonly name: string;
  readonly type: RRType;
  /** Past it, nothing more is sent or verified and every wait ends: the resolution is a timeout. */
  readonly deadline: Deadline;
  readonly budget: ResolutionBudget;
  /** The cut to start at instead of the deepest one cached: the cut whose keys are asked. */
  readonly start?: ZoneCut;
}

/**
 * A validated local copy of the apex's zone, as the iterator reads it (`root-copy.ts` keeps it,
 * RFC 8806 spirit).
 */
export interface RootCopyView {
  readonly serial: number;
  /** The cut of a delegation of the copy at `name` (canonical), its DS validated. */
  cut(name: string): ZoneCut | undefined;
  /**
   * How many labels below the apex of `name` are known to exist (the copy holds the name at that
   * depth, or something below it): where a minimised walk from the apex starts. 0 when the name
   * is outside the apex or only the apex is known.
   */
  closestEncloser(name: string): number;
  /** The apex's DNSKEY RRset as the answer to the keys question, TTL counted from `now`. */
  keys(now: number): Resolution;
}

/** Cached zone cuts, by canonical zone. */
export const ZONE_CUTS = cacheSlot<ZoneCut>('zone-cut');

/**
 * What a validated minimisation probe found at a name: an existing name or empty non-terminal
 * with no cut (walk on), or a name that does not exist (the resolution ends: RFC 8020), with the
 * validated denial the resolution answers with.
 */
export type MinimisedName =
  { readonly kind: 'walk' } | { readonly kind: 'denied'; readonly resolution: Denial };

/** A validated denial as a resolution. */
type Denial = Extract<Resolution, { kind: 'nodata' | 'nxdomain' }>;

/**
 * Validated probe outcomes, by `<zone>|<canonical name>`, for the TTL of the denial that proved
 * them: the names a later resolution walks through without a query.
 */
export const MINIMISED_NAMES = cacheSlot<MinimisedName>('minimised');

/** What the iterator is given. */
export interface IteratorInit {
  readonly apex: string;
  /** The apex's servers (root hints) and the trust anchor's DS. */
  readonly root: ZoneCut;
  readonly transport: 'doh' | 'dns';
  /** Port of every non-root server with plain DNS. */
  readonly dnsPort: number;
  readonly upstream: Upstream;
  readonly cache: ResolverCache;
  /** Whole seconds since the epoch (the resolver's clock). */
  readonly now: () => number;
  readonly log: Logger;
  /** Signatures verified before (SOA, DNSKEY, DS), so that each is verified once per cache fill. */
  readonly memo?: SignatureMemo;
  /**
   * The question (cut, DNSKEY) for a resolution that needs the cut's keys: from the cache when
   * there, else single-flighted with every other question, on `state`'s deadline and budget when
   * it starts here (the question stage's `zoneKeys`).
   */
  readonly keys: (state: QuestionState, cut: ZoneCut) => Resolution | Promise<Resolution>;
  /** Called once per validation that found data bogus, with its reason. */
  readonly onBogus: (state: QuestionState, reason: string) => void;
  /**
   * The validated local copy of the apex's zone when there is one now (`root-copy.ts`, RFC
   * 8806): its delegations are starting cuts, its DNSKEY RRset answers the apex's keys, and
   * its names tell where a minimised walk from the apex starts.
   */
  readonly rootCopy?: () => RootCopyView | undefined;
  /**
   * Where the signatures of upstream answers are verified (the resolver's verification pool);
   * absent: on the calling thread.
   */
  readonly verifier?: Verifier;
}

/**
 * The iterator's shared state: what it was given, and the exchanges on their way that questions
 * of other names or types share. Each map holds an entry only while its exchange is in flight,
 * so it is bounded by the questions in flight.
 */
export interface Iterator {
  readonly init: IteratorInit;
  /**
   * Minimisation probes (RFC 9156 NS questions for a name above the one resolved) on their way,
   * by zone and name. A probe is no caller's question: it asks whether a zone cut lies at a name
   * on the way, and every question below that name needs the same response (MAP, MAPREF and
   * AUTHKEY of one email CSI probe the same names at the root), so concurrent questions share
   * one exchange, as Unbound's outside network shares identical outgoing queries. A question's
   * own query and its keys never pass here: they are single-flighted as questions.
   */
  readonly probes: Map<string, Promise<UpstreamOutcome>>;
}

/** Creates the iterator's shared state. */
export function createIterator(init: IteratorInit): Iterator {
  return { init, probes: new Map() };
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
    // The name the server's certificate must hold: the SVCB target (RFC 9460 §2.5.2: "." is
    // the record's owner, a `_dns` name no certificate holds, so the NS name instead).
    const target = svcb === undefined ? '.' : canonicalName(svcb.data.target);
    const serverName = target === '.' || target === '' ? host : target;
    const path = (svcb?.data.params.dohpath ?? DEFAULT_DOH_PATH).replace(/\{\?dns\}$/, '');
    // A nameserver without glue is skipped: looking its name up through the host's resolver
    // would leave the namespace and tell a third party which zones are walked (R6).
    for (const h of addresses) {
      const authority = h.includes(':') ? `[${h}]` : h;
      servers.push({
        name: host,
        endpoint: { kind: 'doh', url: `https://${authority}:${port}${path}`, serverName },
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

/** One turn of the loop of {@link iterate}: finished, moved down a cut, or walked a label. */
type Step =
  | { readonly kind: 'done'; readonly resolution: Resolution }
  | { readonly kind: 'down'; readonly child: ZoneCut }
  | { readonly kind: 'walk'; readonly walked: number };

/** The keys of a cut, or why the resolution cannot have them. */
type Keys =
  | { readonly kind: 'keys'; readonly keys: readonly DnskeyData[] }
  | { readonly kind: 'failed'; readonly failure: Failure };

const done = (resolution: Resolution): Step => ({ kind: 'done', resolution });
const limit = (detail: string): Failure => ({ kind: 'error', reason: 'limit', detail });
const timedOut = (state: QuestionState): Failure => ({
  kind: 'error',
  reason: 'timeout',
  detail: `no result within ${state.deadline.ms} ms`,
});

/**
 * Resolves and validates `state`'s question: from its start cut (or the deepest cut cached) down,
 * one {@link step} at a time, until the answer, a denial or a failure.
 */
export async function iterate(it: Iterator, state: QuestionState): Promise<Resolution> {
  const { apex } = it.init;
  if (!isSubdomain(state.name, apex)) {
    return { kind: 'error', reason: 'refused', detail: `the name is outside ${apex}` };
  }
  let cut = state.start ?? startingCut(it, state.name, state.type);
  // Labels already walked below the current cut by minimised questions; at the apex with a root
  // copy, the labels of the name the copy shows to exist.
  let walked = startingWalk(it, cut, state.name);
  // Bounded: every turn either sends a question (MAX_QUERIES_PER_RESOLUTION), follows a
  // referral (MAX_REFERRALS_PER_RESOLUTION) or ends at the deadline.
  for (;;) {
    const next = await step(it, state, cut, walked);
    if (next.kind === 'done') return next.resolution;
    if (next.kind === 'down') {
      cut = next.child;
      walked = 0;
    } else {
      walked = next.walked;
    }
  }
}

/**
 * The zone whose servers questions for `name` go to: the deepest cut known for it. A guess, for
 * questions worth sending early (the AUTHKEY of the zone that will answer): the zone that does
 * answer may delegate further.
 */
export function zoneFor(it: Iterator, name: string): string {
  return startingCut(it, name, 'MAP').zone;
}

/** One turn at `cut`: a minimisation probe, the keys of the cut when they are the question, or the question itself. */
async function step(
  it: Iterator,
  state: QuestionState,
  cut: ZoneCut,
  walked: number,
): Promise<Step> {
  if (state.deadline.expired()) return done(timedOut(state));
  const qname = nextName(cut, state.name, walked, cut.zone === it.init.root.zone);
  if (!namesEqual(qname, state.name)) return probe(it, state, cut, qname, walked);
  if (state.type === 'DNSKEY' && namesEqual(qname, cut.zone)) {
    return done(await primeKeys(it, state, cut));
  }
  return ask(it, state, cut);
}

/**
 * The deepest cut at or above `name` (for DS, strictly above: DS is the parent's) that the
 * cache holds or the root copy delegates. Walks the name's suffixes from the longest; a name
 * with escapes (never a CSI name), or an apex at the root, is walked label by label.
 */
function startingCut(it: Iterator, name: string, type: RRType): ZoneCut {
  const { apex, cache, root } = it.init;
  const copy = it.init.rootCopy?.();
  const canonical = canonicalName(name);
  if (canonical.includes('\\') || apex === '.') return startingCutByLabels(it, name, type, copy);
  const apexSuffix = `.${apex}`;
  let at: string | undefined = type === 'DS' ? parentOf(canonical) : canonical;
  while (at !== undefined && at.endsWith(apexSuffix)) {
    const hit = cache.get(ZONE_CUTS, at)?.value ?? copy?.cut(at);
    if (hit !== undefined) return hit;
    at = parentOf(at);
  }
  return root;
}

function startingCutByLabels(
  it: Iterator,
  name: string,
  type: RRType,
  copy: RootCopyView | undefined,
): ZoneCut {
  const { apex, cache, root } = it.init;
  let at: string | undefined = type === 'DS' ? parentName(name) : name;
  while (at !== undefined && isSubdomain(at, apex) && !namesEqual(at, apex)) {
    const key = canonicalName(at);
    const hit = cache.get(ZONE_CUTS, key)?.value ?? copy?.cut(key);
    if (hit !== undefined) return hit;
    at = parentName(at);
  }
  return root;
}

/**
 * Labels below `cut` already known to exist on the way to `name`: at the apex, those the root
 * copy holds (its closest encloser of the name), so the apex is asked one label below a name it
 * published; elsewhere none.
 */
function startingWalk(it: Iterator, cut: ZoneCut, name: string): number {
  if (cut.zone !== it.init.root.zone) return 0;
  return it.init.rootCopy?.()?.closestEncloser(name) ?? 0;
}

/**
 * The name to ask next below `cut` (RFC 9156): one more label than the labels walked, or the full
 * name when that is it or, below a cut other than the apex, when
 * {@link MINIMISE_ONE_LABEL_STEPS} labels have been walked.
 */
export function nextName(cut: ZoneCut, name: string, walked: number, apex: boolean): string {
  if (!apex && walked >= MINIMISE_ONE_LABEL_STEPS) return name;
  const labels = nameLabels(name);
  const take = labelCount(cut.zone) + walked + 1;
  if (take >= labels.length) return name;
  return joinLabels(labels.slice(labels.length - take));
}

/**
 * Sends a query to `cut`'s servers for `state`, within its query budget and its deadline: the
 * question's own (`qname`/`qtype`), or a minimisation probe of `qname`, which joins the same
 * probe already on its way.
 */
async function exchange(
  it: Iterator,
  state: QuestionState,
  cut: ZoneCut,
  query: { readonly probe: string } | { readonly name: string; readonly type: RRType },
): Promise<UpstreamOutcome | Failure> {
  if (state.budget.queries >= MAX_QUERIES_PER_RESOLUTION) return limit('too many queries');
  state.budget.queries++;
  const sent =
    'probe' in query
      ? sharedProbe(it, cut, query.probe)
      : it.init.upstream.query(cut.servers, query.name, query.type);
  const outcome = await state.deadline.within(sent);
  return outcome === EXPIRED ? timedOut(state) : outcome;
}

/** The NS probe of `qname` at `cut`: the one on its way, or a new one ({@link Iterator.probes}). */
function sharedProbe(it: Iterator, cut: ZoneCut, qname: string): Promise<UpstreamOutcome> {
  const key = `${cut.zone}|${canonicalName(qname)}`;
  let pending = it.probes.get(key);
  if (pending === undefined) {
    pending = it.init.upstream.query(cut.servers, qname, 'NS');
    it.probes.set(key, pending);
    const sent = pending;
    const forget = (): void => {
      if (it.probes.get(key) === sent) it.probes.delete(key);
    };
    sent.then(forget, forget);
  }
  return pending;
}

/** The keys of `cut`, through the question (cut, DNSKEY) (see {@link IteratorInit.keys}). */
async function keysOf(it: Iterator, state: QuestionState, cut: ZoneCut): Promise<Keys> {
  const pending = it.init.keys(state, cut);
  const answer = pending instanceof Promise ? await state.deadline.within(pending) : pending;
  if (answer === EXPIRED) return { kind: 'failed', failure: timedOut(state) };
  if (isFailure(answer)) return { kind: 'failed', failure: answer };
  if (answer.kind === 'answer') {
    return {
      kind: 'keys',
      // RFC 5011 §2.1: a key published with the REVOKE bit signs nothing but its revocation.
      keys: answer.rrset.flatMap((rr) =>
        rr.type === 'DNSKEY' && (rr.data.flags & DNSKEY_FLAG_REVOKE) === 0 ? [rr.data] : [],
      ),
    };
  }
  return {
    kind: 'failed',
    failure: {
      kind: 'bogus',
      reason: 'missing-dnskey',
      detail: `DNSKEY of ${cut.zone}`,
      zone: cut.zone,
    },
  };
}

/**
 * A failed exchange as the resolution's failure: every server unreachable is the zone's
 * failure; errors they answered are the name's.
 */
function exchangeFailure(
  cut: ZoneCut,
  outcome: Extract<UpstreamOutcome, { kind: 'failed' }>,
): Failure {
  return outcome.unreachable
    ? { kind: 'error', reason: outcome.reason, detail: outcome.detail, zone: cut.zone }
    : { kind: 'error', reason: outcome.reason, detail: outcome.detail };
}

/**
 * A failure of validation: bogus (the zone's when `zone` is given), or a timeout when the
 * deadline passed during it. A resolution that spent its verifications says nothing about the
 * zone it was validating then: that failure is the question's.
 */
function invalid(
  it: Iterator,
  state: QuestionState,
  validation: Extract<Validation<unknown>, { kind: 'bogus' }>,
  detail: string,
  zone?: string,
): Failure {
  if (validation.reason === DEADLINE_REASON) {
    return { kind: 'error', reason: 'timeout', detail: `deadline passed validating ${detail}` };
  }
  it.init.onBogus(state, validation.reason);
  return zone === undefined || validation.reason === LIMIT_REASONS.verifications
    ? { kind: 'bogus', reason: validation.reason, detail }
    : { kind: 'bogus', reason: validation.reason, detail, zone };
}

/**
 * The keys question at its own cut: the DNSKEY RRset fetched from the cut's servers and
 * validated against the cut's DS (the trust anchor at the apex), RFC 4035 §5.2. A zone whose
 * servers cannot give its keys, or whose keys do not validate, serves nothing that validates:
 * the failure is the zone's.
 */
async function primeKeys(it: Iterator, state: QuestionState, cut: ZoneCut): Promise<Resolution> {
  // The apex's keys were validated against the trust anchor with the root copy (`root-copy.ts`).
  const copy = cut.zone === it.init.root.zone ? it.init.rootCopy?.() : undefined;
  if (copy !== undefined) return copy.keys(it.init.now());
  const outcome = await exchange(it, state, cut, { name: cut.zone, type: 'DNSKEY' });
  if (isFailureOutcome(outcome)) return outcome;
  if (outcome.kind === 'failed') {
    return { kind: 'error', reason: outcome.reason, detail: outcome.detail, zone: cut.zone };
  }
  const validated = await validateDnskeys(
    cut.zone,
    outcome.message.answers,
    cut.ds,
    it.init.now(),
    state.budget.verifications,
    it.init.memo,
  );
  if (validated.kind === 'bogus') {
    return invalid(it, state, validated, `DNSKEY of ${cut.zone}`, cut.zone);
  }
  return {
    kind: 'answer',
    zone: cut.zone,
    server: outcome.server,
    rrset: validated.value.rrset,
    rrsigs: validated.value.rrsigs,
    ttl: validated.value.ttl,
  };
}

function isFailureOutcome(outcome: UpstreamOutcome | Failure): outcome is Failure {
  return outcome.kind === 'bogus' || outcome.kind === 'error';
}

/** The step a cached probe outcome gives ({@link MINIMISED_NAMES}); undefined when none is cached. */
function minimised(it: Iterator, key: string, walked: number): Step | undefined {
  const known = it.init.cache.get(MINIMISED_NAMES, key);
  if (known === undefined) return undefined;
  if (known.value.kind === 'walk') return { kind: 'walk', walked: walked + 1 };
  return done({ ...known.value.resolution, ttl: known.ttl });
}

/**
 * A minimisation probe of `qname` at `cut`, sent with the cut's keys (needed when the response is
 * a referral and to validate a denial): a referral moves the cut down; a validated denial that
 * the name exists ends the resolution (RFC 8020); an existing name or empty non-terminal is
 * walked one label further. Both denials are cached ({@link MINIMISED_NAMES}).
 */
async function probe(
  it: Iterator,
  state: QuestionState,
  cut: ZoneCut,
  qname: string,
  walked: number,
): Promise<Step> {
  const key = `${cut.zone}|${canonicalName(qname)}`;
  const known = minimised(it, key, walked);
  if (known !== undefined) return known;
  const [keys, outcome] = await Promise.all([
    keysOf(it, state, cut),
    exchange(it, state, cut, { probe: qname }),
  ]);
  if (keys.kind === 'failed') return done(keys.failure);
  if (isFailureOutcome(outcome)) return done(outcome);
  if (outcome.kind === 'failed') return done(exchangeFailure(cut, outcome));
  // Another question sharing the probe may have validated it meanwhile.
  const settled = minimised(it, key, walked);
  if (settled !== undefined) return settled;
  const classified = classifyResponse(outcome.message, cut.zone, qname, 'NS');
  if (classified.kind === 'invalid') {
    return done({ kind: 'error', reason: 'servfail', detail: classified.detail });
  }
  if (classified.kind === 'referral') {
    return follow(it, state, cut, classified.child, outcome.message, keys.keys);
  }
  if (classified.kind === 'answer') {
    // NS at the probed name from the zone's own servers: a child zone served by the same
    // servers. The full name is asked next; the referral or answer to it settles the cut.
    return { kind: 'walk', walked: labelCount(state.name) };
  }
  const denial = await validateDenial(
    qname,
    'NS',
    outcome.message.authorities,
    cut.zone,
    keys.keys,
    it.init.now(),
    state.budget.verifications,
    it.init.memo,
  );
  if (denial.kind === 'bogus') {
    return done(invalid(it, state, denial, `denial of ${qname} from ${cut.zone}`));
  }
  if (denial.value.kind === 'nodata') {
    it.init.cache.set(MINIMISED_NAMES, key, { kind: 'walk' }, denial.value.ttl);
    return { kind: 'walk', walked: walked + 1 };
  }
  const resolution: Denial = {
    kind: 'nxdomain',
    zone: cut.zone,
    server: outcome.server,
    records: denial.value.records,
    ttl: denial.value.ttl,
  };
  it.init.cache.set(MINIMISED_NAMES, key, { kind: 'denied', resolution }, denial.value.ttl);
  return done(resolution);
}

/**
 * The question at `cut`: its keys and the question go out together (neither depends on the
 * other's response; the response is validated once both are in), then the response is
 * classified and validated.
 */
async function ask(it: Iterator, state: QuestionState, cut: ZoneCut): Promise<Step> {
  const { name, type } = state;
  const [keys, outcome] = await Promise.all([
    keysOf(it, state, cut),
    exchange(it, state, cut, { name, type }),
  ]);
  if (keys.kind === 'failed') return done(keys.failure);
  if (isFailureOutcome(outcome)) return done(outcome);
  if (outcome.kind === 'failed') return done(exchangeFailure(cut, outcome));
  const response = outcome.message;
  const classified = classifyResponse(response, cut.zone, name, type);
  if (classified.kind === 'invalid') {
    return done({ kind: 'error', reason: 'servfail', detail: classified.detail });
  }
  if (classified.kind === 'referral') {
    return follow(it, state, cut, classified.child, response, keys.keys);
  }
  const now = it.init.now();
  if (classified.kind === 'answer') {
    const rrset = recordsOf(response.answers, name, type);
    const verified = await validateRRset(
      rrset,
      response.answers,
      cut.zone,
      keys.keys,
      now,
      state.budget.verifications,
      it.init.memo,
    );
    if (verified.kind === 'bogus') {
      return done(invalid(it, state, verified, `${type} answer from ${cut.zone}`));
    }
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
    state.budget.verifications,
    it.init.memo,
  );
  if (denial.kind === 'bogus') {
    return done(invalid(it, state, denial, `denial of ${type} from ${cut.zone}`));
  }
  return done({
    kind: denial.value.kind,
    zone: cut.zone,
    server: outcome.server,
    records: denial.value.records,
    ttl: denial.value.ttl,
  });
}

/** Follows a referral from `cut`: validates the child's DS, remembers the child's cut. */
async function follow(
  it: Iterator,
  state: QuestionState,
  cut: ZoneCut,
  child: string,
  response: Message,
  keys: readonly DnskeyData[],
): Promise<Step> {
  if (++state.budget.referrals > MAX_REFERRALS_PER_RESOLUTION) {
    return done(limit('too many referrals'));
  }
  const ds = await validateDelegationDs(
    child,
    response.authorities,
    cut.zone,
    keys,
    it.init.now(),
    state.budget.verifications,
    it.init.memo,
  );
  if (ds.kind === 'bogus') return done(invalid(it, state, ds, `delegation of ${child}`, child));
  const servers = referralServers(response, child, cut.zone, it.init.transport, it.init.dnsPort);
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
  const next: ZoneCut = { zone: child, servers, ds: ds.value.ds };
  it.init.cache.set(ZONE_CUTS, next.zone, next, Math.min(ds.value.ttl, ...ns.map((rr) => rr.ttl)));
  it.init.log.debug('referral', { zone: cut.zone, child: next.zone });
  return { kind: 'down', child: next };
}
