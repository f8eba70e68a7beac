import {
  lookupZone,
  parentName,
  respondError,
  signRRset,
  silentLogger,
  type Logger,
  type Message,
  type QueryHandler,
  type RecordOf,
  type ResourceRecord,
  type RRsetSigner,
  type ZoneKey,
} from '@mimi-discovery/common';
import type { DiscoveryStore } from './store.js';
import { INCEPTION_BACKDATE_SECONDS, ownerOrUndefined } from './zone-signer.js';

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
 */

/** Options of {@link createAnswerer}. */
export interface AnswererOptions {
  /** Clock in seconds since the epoch; default the system clock. */
  now?: () => number;
  /** Where faults are logged; default silent. */
  log?: Logger;
}

/**
 * Lifetime of an online signature (a compact denial): a day is plenty, since each denial is
 * signed when it is asked for and resolvers keep it at most the SOA minimum TTL.
 */
export const ONLINE_SIGNATURE_VALIDITY_SECONDS = 86400;
/** Signed denials kept for reuse per zone key (a small LRU). */
export const DENIAL_CACHE_ENTRIES = 1024;

/**
 * Creates the query handler of a DP over `store`. It never throws for a well-formed query: a
 * fault inside is logged and answered with SERVFAIL.
 */
export function createAnswerer(store: DiscoveryStore, options: AnswererOptions = {}): QueryHandler {
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const log = options.log ?? silentLogger;
  const caches = new WeakMap<ZoneKey, Map<string, RecordOf<'RRSIG'>>>();

  const signerFor = (key: ZoneKey): RRsetSigner => {
    const at = Math.floor(now());
    const validity = {
      inception: Math.max(0, at - INCEPTION_BACKDATE_SECONDS),
      expiration: at + ONLINE_SIGNATURE_VALIDITY_SECONDS,
    };
    let cache = caches.get(key);
    if (cache === undefined) {
      cache = new Map();
      caches.set(key, cache);
    }
    const denials = cache;
    return (rrset) => {
      const id = denialId(rrset);
      if (id === undefined) return signRRset(rrset, key, validity);
      const cached = denials.get(id);
      // Reuse while at least half the lifetime remains, so a cached denial is never near expiry.
      if (
        cached !== undefined &&
        cached.data.expiration - at >= ONLINE_SIGNATURE_VALIDITY_SECONDS / 2
      ) {
        denials.delete(id);
        denials.set(id, cached);
        return cached;
      }
      const rrsig = signRRset(rrset, key, validity);
      denials.delete(id);
      denials.set(id, rrsig);
      if (denials.size > DENIAL_CACHE_ENTRIES) {
        const oldest = denials.keys().next();
        if (oldest.done !== true) denials.delete(oldest.value);
      }
      return rrsig;
    };
  };

  return (query) => {
    try {
      return answer(store, query, signerFor);
    } catch (error) {
      // Design §10: the query type and the fault only, never the client or the name.
      log.error('answer failed', { type: query.questions[0]?.type, error });
      return respondError(query, 'SERVFAIL');
    }
  };
}

function answer(
  store: DiscoveryStore,
  query: Message,
  signerFor: (key: ZoneKey) => RRsetSigner,
): Message {
  const question = query.questions[0];
  if (query.flags.opcode !== 0) return withCompact(query, respondError(query, 'NOTIMP'));
  if (question === undefined || query.questions.length !== 1) {
    return withCompact(query, respondError(query, 'FORMERR'));
  }
  if (query.edns !== undefined && query.edns.version > 0) return respondError(query, 'BADVERS');
  // RFC 1035 §4.1.1: a server that serves only IN refuses other classes; zone transfers do not
  // run over this path.
  if (question.class !== 'IN' || question.type === 'AXFR' || question.type === 'IXFR') {
    return withCompact(query, respondError(query, 'REFUSED'));
  }
  const origin = zoneFor(store, question.name, question.type);
  const zone = origin === undefined ? undefined : store.zoneView(origin);
  if (origin === undefined || zone === undefined) {
    return withCompact(query, respondError(query, 'REFUSED'));
  }
  const key = store.zoneKey(origin);
  const dnssecOk = query.edns?.dnssecOk ?? false;
  const outcome = lookupZone(
    zone,
    question,
    key === undefined ? { dnssecOk } : { dnssecOk, sign: signerFor(key) },
  );
  if (outcome.kind === 'refused') return withCompact(query, respondError(query, 'REFUSED'));
  const response = withCompact(query, respondError(query, 'NOERROR'));
  response.answers = outcome.answers;
  response.authorities = outcome.authorities;
  response.additionals = outcome.additionals;
  // A referral is not authoritative (RFC 1034 §4.3.2 step 3b); every other outcome is.
  response.flags.aa = outcome.kind !== 'referral';
  // RFC 9824 §5: NXDOMAIN only for a client that signalled it understands compact answers.
  if (outcome.kind === 'nxdomain' && query.edns?.compactOk === true) response.rcode = 'NXDOMAIN';
  return response;
}

/**
 * The zone to answer from: the most specific zone holding the name, except that the DS of a
 * zone's apex comes from its parent when the store holds that too (RFC 4035 §3.1.4.1: DS lives
 * on the parent side of the cut).
 */
function zoneFor(store: DiscoveryStore, name: string, type: string): string | undefined {
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
