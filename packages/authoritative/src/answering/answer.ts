import {
  canonicalName,
  descendZone,
  lookupZone,
  parentName,
  respondError,
  signRRset,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type Message,
  type QueryContext,
  type RecordOf,
  type ResourceRecord,
  type SignatureValidity,
  type ZoneKey,
  type ZoneNode,
  type ZoneView,
} from '@mimi-discovery/common';
import { currentMappings, MappingExpiries } from './map-expiry.js';
import type { DiscoveryStore } from '../store/store.js';
import { mappingExpiryHint } from '../store/mapping-expiry-hint.js';
import { ownerOrUndefined } from '../zone/owner-name.js';
import { INCEPTION_BACKDATE_SECONDS } from '../zone/zone-signer.js';

/**
 * The answering path of a Discovery Provider: a query in, the authoritative response out, from
 * whichever zone of the store is the most specific for the query name.
 *
 * Worked example, a store holding `4.4.e164.mimi.arpa`:
 * - `…8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa MAP` (a published number) → NOERROR, AA, the MAP
 *   RRset (and its RRSIG with DO);
 * - an unpublished number → NOERROR, AA, SOA and (with DO) an NSEC at the query name with the
 *   NXNAME type, signed online (RFC 9824); NXDOMAIN instead when the query sets CO;
 * - a name under a delegation → NOERROR without AA, the child's NS, DS and glue (a referral);
 * - `example.com A` → REFUSED: the store holds no zone for it.
 *
 * Expired mappings are never served (R9). The MAP RRset at the query name is answered as it
 * stands at the answerer's clock (`map-expiry.ts`): a record whose mapping has expired
 * (min(`exp`, `att.exp`) ≤ now) is left out, and the rest is signed online, since the stored
 * RRSIG covers the whole RRset (RFC 4034 §3.1.8.1). A name left without records answers as a
 * name that does not exist (the compact denial's bitmap then lists no MAP). The TTL of the MAP
 * RRset and its RRSIG is capped at the seconds left until the earliest remaining expiry (RFC
 * 2181 §8: how long a record may be cached), and {@link Answerer.expiresAt} tells an answer
 * cache when the answer must be gone. Example: MAP records A (expires at 1000) and B (2000),
 * stored TTL 300, asked at 1100 → B alone, TTL 300, under a new RRSIG; at 1900 → B, TTL 100;
 * at 2000 → NOERROR, no answer, the NXNAME denial.
 */

/** Options of {@link createAnswerer}. */
export interface AnswererOptions {
  /** Clock in whole seconds since the epoch; default `systemClock`. */
  now?: Clock;
  /** Where faults are logged; default silent. */
  log?: Logger;
}

/**
 * Lifetime of an online signature (a compact denial, or a MAP RRset without its expired
 * records): a day is plenty, since each is signed when it is asked for and resolvers keep it at
 * most its TTL (the SOA minimum for a denial, at most 300 s for MAP).
 */
export const ONLINE_SIGNATURE_VALIDITY_SECONDS = 86400;
/**
 * Default longest reuse of an answer in a DP's answer cache (config `answerCacheMaxAgeSeconds`):
 * an hour. A write drops the answers it changed at once and a mapping's expiry bounds the answers
 * holding it, so the age bound only limits how old an online signature (kept by the answerer
 * while at least half its day of validity remains) or the SOA serial of a kept negative answer
 * can be when sent. NSD and Knot keep their compiled answers until the zone changes; an hour
 * keeps a DP's cache warm through quiet spells without sending a signature near its expiration.
 */
export const DP_ANSWER_CACHE_MAX_AGE_SECONDS = 3600;
/**
 * The largest `answerCacheMaxAgeSeconds`: a quarter of an online signature's validity, so a
 * signature reused from the answerer's own cache (half its validity left at most) and then from
 * the answer cache still has a quarter of it left when sent.
 */
export const MAX_ANSWER_CACHE_MAX_AGE_SECONDS = ONLINE_SIGNATURE_VALIDITY_SECONDS / 4;
/** Signed denials kept for reuse per zone key (a small LRU). */
export const DENIAL_CACHE_ENTRIES = 1024;
/**
 * MAP RRsets re-signed without their expired records, kept for reuse per zone key (a small
 * LRU): each is signed once per change of the stored RRset and per mapping that expires in it.
 */
export const CURRENT_MAP_CACHE_ENTRIES = 1024;

/**
 * The query handler of a DP (a `QueryHandler`, answering synchronously), and what an answer
 * cache needs to know about its answers. Like every `QueryHandler` it is given only queries that
 * `answerQuery` (common's `respond.ts`, run by the UDP, TCP and DoH listeners alike) let through:
 * opcode QUERY, one question, no EDNS or EDNS version 0. Those checks are made there, once.
 */
export interface Answerer {
  (query: Message, context?: QueryContext): Message;
  /**
   * For a response this answerer returned: the second (the answerer's clock) at which the
   * earliest mapping in it expires, after which it must no longer be sent; undefined when it
   * holds no mapping with an expiry (it is then correct until the store changes).
   */
  expiresAt(response: Message): number | undefined;
}

/** What one answer needs besides the store: the time, and signing and decoding with memory. */
interface AnswerContext {
  /** The answerer's clock, whole seconds. */
  readonly at: number;
  readonly expiries: MappingExpiries;
  /** Signs `rrset` with `key` at `at`, reusing a fresh signature kept under `id` (`signOnline`). */
  readonly sign: (
    key: ZoneKey,
    cache: keyof OnlineSignatures,
    id: string | undefined,
    rrset: readonly ResourceRecord[],
  ) => RecordOf<'RRSIG'>;
}

/**
 * Creates the query handler of a DP over `store`. It never throws for a well-formed query: a
 * fault inside is logged and answered with SERVFAIL.
 */
export function createAnswerer(store: DiscoveryStore, options: AnswererOptions = {}): Answerer {
  const now = options.now ?? systemClock;
  const log = options.log ?? silentLogger;
  const caches = new WeakMap<ZoneKey, OnlineSignatures>();
  const expiries = new MappingExpiries();
  const deadlines = new WeakMap<Message, number>();

  const handler = (query: Message): Message => {
    try {
      const at = Math.floor(now());
      const { response, expiresAt } = answer(store, query, {
        at,
        expiries,
        sign: (key, kind, id, rrset) => signOnline(caches, key, kind, id, rrset, at),
      });
      if (expiresAt !== undefined) deadlines.set(response, expiresAt);
      return response;
    } catch (error) {
      // Design §10: the query type and the fault only, never the client or the name.
      log.error('answer-failed', { type: query.questions[0]?.type, error });
      return respondError(query, 'SERVFAIL');
    }
  };
  return Object.assign(handler, {
    expiresAt: (response: Message): number | undefined => deadlines.get(response),
  });
}

/** Online signatures kept per zone key: compact denials, and MAP RRsets without expired records. */
interface OnlineSignatures {
  readonly denials: Map<string, RecordOf<'RRSIG'>>;
  readonly maps: Map<string, RecordOf<'RRSIG'>>;
}

/**
 * The RRSIG over `rrset` by `key`, made at `at` with {@link ONLINE_SIGNATURE_VALIDITY_SECONDS};
 * with an `id`, the one kept under it in the LRU `kind` of the key when at least half its
 * lifetime remains (so a signature sent is never near its expiration), else a new one kept there.
 */
function signOnline(
  caches: WeakMap<ZoneKey, OnlineSignatures>,
  key: ZoneKey,
  kind: keyof OnlineSignatures,
  id: string | undefined,
  rrset: readonly ResourceRecord[],
  at: number,
): RecordOf<'RRSIG'> {
  let cache = caches.get(key);
  if (cache === undefined) {
    cache = { denials: new Map(), maps: new Map() };
    caches.set(key, cache);
  }
  const entries = cache[kind];
  const cached = id === undefined ? undefined : entries.get(id);
  if (
    id !== undefined &&
    cached !== undefined &&
    cached.data.expiration - at >= ONLINE_SIGNATURE_VALIDITY_SECONDS / 2
  ) {
    entries.delete(id);
    entries.set(id, cached);
    return cached;
  }
  const validity: SignatureValidity = {
    inception: Math.max(0, at - INCEPTION_BACKDATE_SECONDS),
    expiration: at + ONLINE_SIGNATURE_VALIDITY_SECONDS,
  };
  const rrsig = signRRset(rrset, key, validity);
  if (id === undefined) return rrsig;
  entries.delete(id);
  entries.set(id, rrsig);
  if (entries.size > (kind === 'denials' ? DENIAL_CACHE_ENTRIES : CURRENT_MAP_CACHE_ENTRIES)) {
    const oldest = entries.keys().next();
    if (oldest.done !== true) entries.delete(oldest.value);
  }
  return rrsig;
}

function answer(
  store: DiscoveryStore,
  query: Message,
  context: AnswerContext,
): { response: Message; expiresAt?: number } {
  // Opcode, question count and EDNS version were checked once, by `answerQuery` (common's
  // `respond.ts`), which every listener runs before its handler: this sees a query that passed.
  const question = query.questions[0];
  if (question === undefined) throw new TypeError('a query reaches the answerer with its question');
  const refuse = (rcode: 'REFUSED') => ({
    response: withCompact(query, respondError(query, rcode)),
  });
  // RFC 1035 §4.1.1: a server that serves only IN refuses other classes; zone transfers do not
  // run over this path.
  if (question.class !== 'IN' || question.type === 'AXFR' || question.type === 'IXFR') {
    return refuse('REFUSED');
  }
  const origin = answeringZone(store, question.name, question.type);
  const stored = origin === undefined ? undefined : store.zoneView(origin);
  if (origin === undefined || stored === undefined) return refuse('REFUSED');
  // Every current signer signs what is signed online: during a key switch (`keys/key-set.ts`)
  // a resolver may still hold either key's DS or DNSKEY RRset, so an RRSIG by each keeps both
  // validating (RFC 6781 §4.1.2).
  const keys = store.zoneSigners(origin);
  const dnssecOk = query.edns?.dnssecOk ?? false;
  // Only a MAP or ANY answer with DO carries the MAP RRSIG, so only those sign it online.
  const signMaps = dnssecOk && (question.type === 'MAP' || question.type === 'ANY');
  const current = currentView(stored, canonicalName(question.name), {
    ...context,
    ...(keys.length > 0 && signMaps ? { keys } : {}),
  });
  // `lookupZone` takes one RRSIG per denial: the first signer's; the others go right after it.
  const others = new Map<ResourceRecord, RecordOf<'RRSIG'>[]>();
  const signDenial = (rrset: readonly ResourceRecord[]): RecordOf<'RRSIG'> => {
    const [first, ...rest] = keys.map((key) =>
      context.sign(key, 'denials', denialId(rrset), rrset),
    );
    if (first === undefined) throw new Error('the zone has no signing key');
    if (rest.length > 0) others.set(first, rest);
    return first;
  };
  const outcome = lookupZone(
    current.zone,
    question,
    keys.length === 0 ? { dnssecOk } : { dnssecOk, sign: signDenial },
  );
  if (outcome.kind === 'refused') return refuse('REFUSED');
  const response = withCompact(query, respondError(query, 'NOERROR'));
  response.answers = outcome.answers;
  response.authorities =
    others.size === 0
      ? outcome.authorities
      : outcome.authorities.flatMap((rr) => [rr, ...(others.get(rr) ?? [])]);
  response.additionals = outcome.additionals;
  // A referral is not authoritative (RFC 1034 §4.3.2 step 3b); every other outcome is.
  response.flags.aa = outcome.kind !== 'referral';
  // RFC 9824 §5: NXDOMAIN only for a client that signalled it understands compact answers.
  if (outcome.kind === 'nxdomain' && query.edns?.compactOk === true) response.rcode = 'NXDOMAIN';
  const expiresAt = current.earliest();
  const carriesMappings = outcome.answers.some((rr) => rr.type === 'MAP');
  return carriesMappings && expiresAt !== undefined ? { response, expiresAt } : { response };
}

/**
 * `zone` with the MAP RRset at `qname` as it stands at `context.at` (see the module comment);
 * every other node as stored. `earliest()` is then the earliest expiry among the mappings kept
 * at `qname`, if lookup read that node and any of them has one.
 */
function currentView(
  zone: ZoneView,
  qname: string,
  context: AnswerContext & { readonly keys?: readonly ZoneKey[] },
): { zone: ZoneView; earliest(): number | undefined } {
  let earliest: number | undefined;
  const current = (node: ZoneNode | undefined, name: string): ZoneNode | undefined => {
    if (node === undefined || !node.rrsets.has('MAP') || name !== qname) return node;
    const now = currentNode(node, context);
    earliest = now.earliest;
    return now.node;
  };
  const view: ZoneView = {
    origin: zone.origin,
    hasDescendants: (name) => zone.hasDescendants(name),
    node: (name) => current(zone.node(name), canonicalName(name)),
    // One search down to the name (`descendZone`): the cut and the node, the latter as it
    // stands now; a cut at the name itself is the same node, seen the same way.
    descend: (name) => {
      const { cut, node } = descendZone(zone, name);
      const at = current(node, name);
      if (cut === undefined) return at === undefined ? {} : { node: at };
      const cutNode = cut.name === name ? at : cut.node;
      if (cutNode === undefined) return at === undefined ? {} : { node: at };
      const found = { cut: { name: cut.name, node: cutNode } };
      return at === undefined ? found : { ...found, node: at };
    },
  };
  return { zone: view, earliest: () => earliest };
}

/**
 * A node with its MAP RRset as it stands at `context.at`: undefined when nothing is left at
 * the name. The remaining records are signed online, by each of `context.keys`, only when
 * those are given (the answer will carry the RRSIGs); a signature is made over the stored TTL
 * (the RRSIG's original TTL) and kept under the stored RRSIG and the number of records left
 * out, which together name the RRset signed.
 */
function currentNode(
  node: ZoneNode,
  context: AnswerContext & { readonly keys?: readonly ZoneKey[] },
): { node: ZoneNode | undefined; earliest: number | undefined } {
  const rrset = node.rrsets.get('MAP') ?? [];
  // The quick read of two integers decides for a mapping it finds current (every mapping a DP
  // stored was decoded strictly when published); one it finds expired, or cannot read, is
  // decoded strictly (memoised) before it is left out, as `resign` does before deleting.
  const { records, removed, earliest } = currentMappings(rrset, context.at, (rdata) => {
    const hint = mappingExpiryHint(rdata);
    return hint !== undefined && hint > context.at ? hint : context.expiries.of(rdata);
  });
  const finite = Number.isFinite(earliest) ? earliest : undefined;
  const storedTtl = Math.min(...rrset.map((rr) => rr.ttl));
  // RFC 2181 §8: a TTL is how long the record may be cached; never past the earliest expiry.
  const ttl = finite === undefined ? storedTtl : Math.min(storedTtl, finite - context.at);
  if (removed === 0 && ttl === storedTtl) return { node, earliest: finite };

  const rrsets = new Map(node.rrsets);
  const signatures = new Map(node.signatures);
  if (records.length === 0) {
    rrsets.delete('MAP');
    signatures.delete('MAP');
    return { node: rrsets.size === 0 ? undefined : { rrsets, signatures }, earliest: undefined };
  }
  const stored = node.signatures.get('MAP')?.[0];
  let rrsigs: readonly RecordOf<'RRSIG'>[] =
    removed === 0 ? (node.signatures.get('MAP') ?? []) : [];
  if (rrsigs.length === 0 && context.keys !== undefined) {
    const id =
      stored === undefined
        ? undefined
        : `${Buffer.from(stored.data.signature).toString('latin1')}\u0000${removed}`;
    rrsigs = context.keys.map((key) => context.sign(key, 'maps', id, records));
  }
  rrsets.set(
    'MAP',
    records.map((rr) => ({ ...rr, ttl })),
  );
  // RFC 4035 §2.2: the RRSIG's TTL is that of the RRset it covers.
  if (rrsigs.length === 0) signatures.delete('MAP');
  else
    signatures.set(
      'MAP',
      rrsigs.map((rrsig) => ({ ...rrsig, ttl })),
    );
  return { node: { rrsets, signatures }, earliest: finite };
}

/**
 * The zone to answer from: the most specific zone holding the name, except that the DS of a
 * zone's apex comes from its parent when the store holds that too (RFC 4035 §3.1.4.1: DS lives
 * on the parent side of the cut).
 */
function answeringZone(store: DiscoveryStore, name: string, type: string): string | undefined {
  const origin = store.findZone(name);
  if (origin === undefined || type !== 'DS' || ownerOrUndefined(name) !== origin) return origin;
  const above = parentName(origin);
  return (above === undefined ? undefined : store.findZone(above)) ?? origin;
}

/** Echoes the query's CO flag (RFC 9824 §5) in a response that carries EDNS. */
function withCompact(query: Message, response: Message): Message {
  if (response.edns !== undefined && query.edns?.compactOk === true) {
    response.edns = { ...response.edns, compactOk: true };
  }
  return response;
}

/** The cache key of a one-record NSEC RRset (what compact denials are), else undefined. */
function denialId(rrset: readonly ResourceRecord[]): string | undefined {
  const nsec = rrset[0];
  if (rrset.length !== 1 || nsec === undefined || nsec.type !== 'NSEC') return undefined;
  return `${nsec.name}\u0000${nsec.ttl}\u0000${nsec.data.nextName}\u0000${nsec.data.types.join(' ')}`;
}
