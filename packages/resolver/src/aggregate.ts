import {
  canonicalName,
  csiToName,
  verifyMapping,
  verifyMappingBatched,
  type Csi,
  type Mapping,
  type RecordOf,
  type RRType,
  type ExtendedDnsError,
  type SignatureCheck,
} from '@mimi-discovery/common';
import { MAX_MAPREF_DEPTH, MAX_MAPREF_FANOUT } from './limits.js';
import { failureEde } from './ede.js';
import type { Resolved } from './questions.js';
import { senderView } from './sender-view.js';
import type { DiscoveryErrorReason, DiscoveryResult, VerifiedMapping } from './types.js';

/**
 * The aggregation stage (design §6, R3, R5): the union of every valid mapping of a CSI, at its
 * name and at every MAPREF target, each checked end to end.
 *
 * Worked example, `tel:+442079460018`: MAP and MAPREF are resolved at
 * `8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa` (zone `4.4.e164.mimi.arpa`); a MAPREF points to
 * `x.msp.mimi.arpa`, where MAP is resolved too. The AUTHKEY RRset at `4.4.e164.mimi.arpa` —
 * the zone authoritative for the CSI name, never a zone a MAPREF points into — lists the
 * provers. Every MAP record is decoded and verified for the queried CSI (a MAP record does not
 * carry it, docs/protocol.md §4: both signatures cover it, so a mapping copied from another
 * CSI's name, by a hostile DP or at a MAPREF target, fails as `bad-signature`; then times), its
 * prover must be listed, then per key the highest `seq` wins and a mapping with the `new` bit
 * de-lists other keys attested earlier.
 *
 * Decisions:
 * - `none` only when MAP is denied (authenticated denial) at the name and at every MAPREF target.
 * - MAP records exist but none verifies → `error` reason `bogus`, never `none`.
 * - Any failed resolution (bogus, timeout, limit, server failure) makes the whole result `error`:
 *   a partial union would silently drop mappings (R3).
 * - MAPREF targets are followed to depth {@link MAX_MAPREF_DEPTH}; MAPREF is not asked at the
 *   last level. More than {@link MAX_MAPREF_FANOUT} distinct targets → `error` reason `limit`.
 * - A target outside the apex, or one already visited, is skipped.
 * - `empty` when no standing mapping lists an MSP publicly nor carries a sealed box, else
 *   `found`, whatever the filter then leaves: a sealed-only mapping is `found` with `msps: []`.
 * - The result is the view of the resolver's identity (`sender-view.ts`): `same-msp` entries of
 *   other MSPs (all of them without an identity) are left out of `msps` and of every mapping,
 *   entries are ranked (`rankMsps`) and mappings ordered; sealed boxes are passed through
 *   unread, base64url.
 */

/** What aggregation needs from the resolver. */
export interface AggregateInit {
  readonly apex: string;
  /** Resolves and validates one question (the question stage's `askQuestion`). */
  readonly resolve: (name: string, type: RRType) => Promise<Resolved>;
  /** The zone questions for a name will go to, as far as known (the iterator's `zoneFor`). */
  readonly zoneFor: (name: string) => Promise<string>;
  /** Seconds since the epoch. */
  readonly now: () => number;
  /** Called once per MAP record dropped, with why. */
  readonly onInvalidMapping: (reason: string) => void;
  /**
   * Asks `zone`'s AUTHKEY RRset again past the cache, when a verified attestation names a prover
   * the cached RRset lacks; undefined when the bounds of `authkey-refetch.ts` refuse it.
   */
  readonly refetchAuthkey?: (zone: string) => Promise<Resolved> | undefined;
  /** The resolver's own MSP identity (`ResolverConfig.msp`); absent: none. */
  readonly msp?: string;
  /**
   * Verifies the signatures of a mapping and its attestation as one batch (the resolver's
   * verification pool); absent: the synchronous `verifyMapping` on the calling thread.
   */
  readonly verifyBatch?: (checks: readonly SignatureCheck[]) => Promise<readonly boolean[]>;
}

/** The provers an AUTHKEY answer lists, valid at `now`, base64url. */
function proversOf(authkey: Resolved, now: number): Set<string> {
  const provers = new Set<string>();
  if (authkey.kind !== 'answer') return provers;
  for (const rr of authkey.rrset) {
    if (rr.type === 'AUTHKEY' && rr.data.role === 'prover' && rr.data.notAfter > now) {
      provers.add(b64(rr.data.publicKey));
    }
  }
  return provers;
}

interface MapSource {
  readonly records: ReadonlyArray<RecordOf<'MAP'>>;
  readonly zone: string;
  readonly server: string;
}

interface Candidate {
  readonly mapping: Mapping;
  readonly zone: string;
  readonly server: string;
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

/** A result of status `error`. */
export function errorResult(
  csi: string,
  reason: DiscoveryErrorReason,
  detail: string,
  ede?: ExtendedDnsError,
): DiscoveryResult {
  return {
    csi,
    status: 'error',
    msps: [],
    mappings: [],
    ttl: 0,
    error: ede === undefined ? { reason, detail } : { reason, detail, ede },
  };
}

/** A failed question as the result, with the Extended DNS Error a DNS client gets (`ede.ts`). */
function failureOf(csi: string, r: Resolved): DiscoveryResult | undefined {
  if (r.kind === 'bogus') {
    return errorResult(csi, 'bogus', `${r.reason}: ${r.detail}`, failureEde(r));
  }
  if (r.kind === 'error') {
    const reason: DiscoveryErrorReason =
      r.reason === 'timeout' || r.reason === 'limit' ? r.reason : 'servfail';
    return errorResult(csi, reason, r.detail, failureEde(r));
  }
  return undefined;
}

/**
 * Selects the mappings that stand (design §6): per key the highest `seq` (ties: the first
 * seen); then a mapping with `new` de-lists the winners of other keys whose attestation `nbf`
 * is earlier than its own.
 */
export function selectMappings(candidates: readonly Candidate[]): Candidate[] {
  const best = new Map<string, Candidate>();
  for (const c of candidates) {
    const key = b64(c.mapping.key);
    const current = best.get(key);
    if (current === undefined || c.mapping.seq > current.mapping.seq) best.set(key, c);
  }
  const winners = [...best.values()];
  return winners.filter(
    (c) =>
      !winners.some(
        (other) =>
          other !== c &&
          other.mapping.new &&
          b64(other.mapping.key) !== b64(c.mapping.key) &&
          c.mapping.att.nbf < other.mapping.att.nbf,
      ),
  );
}

/** Discovers one canonical CSI; see the module comment. */
export async function aggregate(csi: Csi, init: AggregateInit): Promise<DiscoveryResult> {
  const name = canonicalName(csiToName(csi, init.apex));
  const apex = canonicalName(init.apex);
  // AUTHKEY questions of this discovery, by zone, each asked once. A fault (an exception, not a
  // failed resolution) is marked handled here so that an AUTHKEY asked early and then not needed
  // does not go unhandled; whoever uses the answer awaits the promise and gets the fault.
  const authkeys = new Map<string, Promise<Resolved>>();
  const authkeyAt = (zone: string): Promise<Resolved> => {
    let pending = authkeys.get(zone);
    if (pending === undefined) {
      pending = init.resolve(zone, 'AUTHKEY');
      pending.catch(() => undefined);
      authkeys.set(zone, pending);
    }
    return pending;
  };
  const mapPending = init.resolve(name, 'MAP');
  const maprefPending = init.resolve(name, 'MAPREF');
  // The provers are at the apex of the zone that answers for the name; that zone is known once
  // the referral toward it is in, so AUTHKEY goes out with MAP and MAPREF there instead of one
  // round trip after them. Not at the apex itself (the root directory holds no range), and
  // asked again below if the answers come from another zone. Not when MAP or MAPREF has
  // already failed (a failure answered from the cache is known by then): the discovery ends
  // without the provers, and a repeat of a failed discovery sends nothing (RFC 9520).
  let failedEarly = false;
  const watch = (r: Resolved): void => {
    if (r.kind === 'bogus' || r.kind === 'error') failedEarly = true;
  };
  mapPending.then(watch, () => undefined);
  maprefPending.then(watch, () => undefined);
  void init.zoneFor(name).then((zone) => {
    if (zone !== apex && !failedEarly) authkeyAt(zone);
  });
  const [map, mapref] = await Promise.all([mapPending, maprefPending]);
  const failed = failureOf(csi, map) ?? failureOf(csi, mapref);
  if (failed !== undefined) return failed;
  if (map.kind === 'bogus' || map.kind === 'error')
    return errorResult(csi, 'servfail', 'unreachable');
  const zone = map.zone;
  let ttl = Math.min(map.ttl, mapref.kind === 'bogus' || mapref.kind === 'error' ? 0 : mapref.ttl);
  let stale = map.stale === true || mapref.stale === true;
  const sources: MapSource[] = [];
  const mapsOf = (r: Resolved): Array<RecordOf<'MAP'>> =>
    r.kind === 'answer' ? r.rrset.filter((rr): rr is RecordOf<'MAP'> => rr.type === 'MAP') : [];
  const targetsOf = (r: Resolved): string[] =>
    r.kind === 'answer'
      ? r.rrset.flatMap((rr) => (rr.type === 'MAPREF' ? [canonicalName(rr.data)] : []))
      : [];
  if (map.kind === 'answer') sources.push({ records: mapsOf(map), zone, server: map.server });

  // Breadth first over MAPREF targets, one level at a time, with a visited set (no loops).
  const visited = new Set<string>([name]);
  let level = targetsOf(mapref);
  let followed = 0;
  for (let depth = 1; depth <= MAX_MAPREF_DEPTH && level.length > 0; depth++) {
    const fresh = [...new Set(level)].filter((t) => !visited.has(t) && isBelowApex(t, init.apex));
    for (const t of fresh) visited.add(t);
    followed += fresh.length;
    if (followed > MAX_MAPREF_FANOUT) {
      return errorResult(csi, 'limit', `more than ${MAX_MAPREF_FANOUT} MAPREF targets`);
    }
    const askRef = depth < MAX_MAPREF_DEPTH;
    const results = await Promise.all(
      fresh.map(async (target) => {
        const [targetMap, ref] = await Promise.all([
          init.resolve(target, 'MAP'),
          askRef ? init.resolve(target, 'MAPREF') : undefined,
        ]);
        return { target, map: targetMap, ref };
      }),
    );
    const next: string[] = [];
    for (const r of results) {
      const bad =
        failureOf(csi, r.map) ?? (r.ref === undefined ? undefined : failureOf(csi, r.ref));
      if (bad !== undefined) return bad;
      for (const x of [r.map, r.ref]) {
        if (x === undefined || x.kind === 'bogus' || x.kind === 'error') continue;
        ttl = Math.min(ttl, x.ttl);
        stale ||= x.stale === true;
      }
      if (r.map.kind === 'answer') {
        sources.push({ records: mapsOf(r.map), zone: r.map.zone, server: r.map.server });
      }
      if (r.ref !== undefined) next.push(...targetsOf(r.ref));
    }
    level = next;
  }

  const total = sources.reduce((n, s) => n + s.records.length, 0);
  const staleMark = stale ? { stale: true } : {};
  if (total === 0) return { csi, status: 'none', msps: [], mappings: [], ttl, ...staleMark };

  // Provers of the range authoritative for the CSI name, at that zone's apex.
  let authkey = await authkeyAt(canonicalName(zone));
  const authFailure = failureOf(csi, authkey);
  if (authFailure !== undefined) return authFailure;
  const now = init.now();
  let provers = proversOf(authkey, now);

  const candidates: Candidate[] = [];
  const unknownProver: Candidate[] = [];
  let lapsed = 0;
  // Every MAP record at once: with a verification pool, their signatures go out together.
  const { verifyBatch } = init;
  const checked = await Promise.all(
    sources.flatMap((source) =>
      source.records.map(async (rr) => {
        // The queried canonical CSI is what the signatures must cover.
        const verified =
          verifyBatch === undefined
            ? verifyMapping(rr.data, { csi, now })
            : await verifyMappingBatched(rr.data, { csi, now }, verifyBatch);
        return { source, verified };
      }),
    ),
  );
  for (const { source, verified } of checked) {
    if (verified.kind === 'failed') {
      // A lapsed mapping (or one not valid yet) is the recipient's choice of times, not an
      // attack: it is dropped quietly. Anything else is counted as a verification failure.
      if (verified.reason === 'expired' || verified.reason === 'not-yet-valid') {
        lapsed++;
        continue;
      }
      init.onInvalidMapping(`mapping-${verified.reason}`);
      continue;
    }
    const candidate = { mapping: verified.value, zone: source.zone, server: source.server };
    if (provers.has(b64(verified.value.att.prover))) candidates.push(candidate);
    else unknownProver.push(candidate);
  }
  // A prover the cached AUTHKEY RRset lacks may have been added since: asked again once, within
  // the bounds of `authkey-refetch.ts`.
  if (unknownProver.length > 0 && authkey.fromCache === true) {
    const again = init.refetchAuthkey?.(canonicalName(zone));
    const refetched = again === undefined ? undefined : await again;
    if (refetched !== undefined && refetched.kind === 'answer') {
      authkey = refetched;
      provers = proversOf(refetched, now);
    }
  }
  for (const candidate of unknownProver) {
    if (provers.has(b64(candidate.mapping.att.prover))) candidates.push(candidate);
    else init.onInvalidMapping('mapping-unknown-prover');
  }
  if (authkey.kind === 'answer') {
    ttl = Math.min(ttl, authkey.ttl);
    stale ||= authkey.stale === true;
  }
  if (candidates.length === 0 && lapsed === total) {
    return { csi, status: 'none', msps: [], mappings: [], ttl, ...staleMark };
  }
  if (candidates.length === 0) {
    return {
      ...errorResult(csi, 'bogus', `${total} MAP record(s), none verified`),
      ...staleMark,
    };
  }
  const standing = selectMappings(candidates);
  const mappings: VerifiedMapping[] = standing.map(({ mapping: m, zone: z, server }) => ({
    msps: m.msps.map((e) => ({ ...e, tags: [...e.tags] })),
    ...(m.sealed === undefined
      ? {}
      : {
          sealed: m.sealed.map((box) => ({
            kid: b64(box.kid),
            enc: b64(box.enc),
            ct: b64(box.ct),
          })),
        }),
    key: b64(m.key),
    seq: m.seq,
    iat: m.iat,
    exp: m.exp,
    new: m.new,
    prover: b64(m.att.prover),
    zone: z,
    server,
  }));
  ttl = Math.max(0, Math.min(ttl, ...mappings.map((m) => m.exp - now)));
  // Before any filter: what a sender may not use still makes the recipient reachable.
  const status = mappings.some((m) => m.msps.length > 0 || m.sealed !== undefined)
    ? 'found'
    : 'empty';
  const result: DiscoveryResult = { csi, status, msps: [], mappings, ttl, ...staleMark };
  return senderView(result, init.msp === undefined ? {} : { msp: init.msp });
}

function isBelowApex(name: string, apex: string): boolean {
  const n = canonicalName(name);
  const a = canonicalName(apex);
  return n !== a && n.endsWith(`.${a}`);
}
