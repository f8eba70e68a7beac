import { createHash } from 'node:crypto';
import {
  DNSKEY_FLAG_REVOKE,
  DNSSEC_ALGORITHM_ED25519,
  ED25519_PUBLIC_KEY_OCTETS,
  DS_DIGEST_SHA256,
  canonicalName,
  computeDs,
  createZoneKey,
  encodeRdata,
  isSubdomain,
  parentName,
  record,
  refreshZonemd,
  signRRset,
  typeToCode,
  type DnskeyData,
  type RecordOf,
  type ResourceRecord,
  type RRType,
  type SignatureValidity,
  type ZoneKey,
  type ZoneNode,
} from '@mimi-discovery/common';
import {
  buildNsec3ChainInto,
  chainLabel,
  chainLabels,
  chainOwner,
  dropNsec3Chain,
  updateNsec3Chain,
  type ChainEdit,
} from './nsec3-chain.js';
import { zoneOrigin } from './owner-name.js';
import type { NormalizedChange } from './zone-changes.js';
import type {
  Nsec3Index,
  StoredNode,
  StoredRRset,
  ZoneReader,
  ZoneSigner,
  ZoneWrites,
} from './zone-nodes.js';
import { StoreError } from '../store/store-error.js';
import type { AuthkeyEntry, ZoneInit } from '../store/store-types.js';

/**
 * The signer shared by every store: how a zone's nodes are created, changed and re-signed. A
 * store supplies read access to its nodes (a {@link ZoneReader}); the functions here compute the
 * nodes to write, signatures included, without writing anything, so a store can check
 * everything first and then commit the whole result in one transaction.
 *
 * Signing rules (RFC 4035 §2.2): every RRset is signed except the NS RRset of a delegation and
 * everything below a delegation (glue); the DS at a delegation is signed. Signatures run from an
 * hour before now (clock skew, RFC 6781 §4.4.2) to `validitySeconds` after it, less a jitter of
 * the RRset's owner and type ({@link signatureJitter}), so that the RRsets signed in one write —
 * a bulk import, a zone's first signing — come due for renewal over days, not all in the same
 * re-signing pass; and a re-signing write renews at most {@link RESIGN_MAX_RRSETS_PER_WRITE}
 * RRsets, so that no incremental transfer (IXFR) carries the whole zone at once.
 *
 * Every write that bumps the serial also keeps what the zone carries for transfer: its NSEC3
 * chain when it keeps one (`nsec3-chain.ts`), then its ZONEMD when it has one (RFC 8976).
 *
 * Worked example, zone `4.4.e164.mimi.arpa` at serial 7: an apply that puts NS and DS at
 * `7.4.4.e164.mimi.arpa` and A at `ns1.7.4.4.e164.mimi.arpa` writes three nodes — the cut (NS
 * unsigned, DS signed), the glue (unsigned) and the apex (SOA serial 8, re-signed).
 */

/** How long signatures live, and when they are renewed. */
export interface SignatureValidityPolicy {
  /** Seconds from now to the expiration of a new signature. */
  validitySeconds: number;
  /** A signature is renewed once fewer than this many seconds remain. */
  refreshBeforeSeconds: number;
}

/** 14 days of validity, renewed in the second week (as common signer defaults). */
export const DEFAULT_SIGNATURE_VALIDITY: Readonly<SignatureValidityPolicy> = Object.freeze({
  validitySeconds: 14 * 86400,
  refreshBeforeSeconds: 7 * 86400,
});

/** Inception is set this far in the past so validators with a slow clock accept new signatures. */
export const INCEPTION_BACKDATE_SECONDS = 3600;

/** Default lifetime of this DP's prover key in the AUTHKEY records of a new zone: 10 years. */
export const DEFAULT_PROVER_KEY_LIFETIME_SECONDS = 10 * 365 * 86400;

/** SOA timers of a new zone when `ZoneInit` leaves them out (RFC 1912 §2.2 ranges). */
export const DEFAULT_SOA_TIMERS: Readonly<{
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}> = Object.freeze({ refresh: 3600, retry: 600, expire: 1209600, minimum: 300 });

/** TTL of the apex records of a new zone when `ZoneInit.ttl` is left out. */
export const DEFAULT_APEX_TTL = 3600;

/**
 * TTL of the apex AUTHKEY RRset of a new zone when `ZoneInit.authkeyTtl` is left out (config
 * `authkeyTtl`): short, so that a prover added or removed reaches resolvers within minutes
 * rather than the hour of the other apex records.
 */
export const DEFAULT_AUTHKEY_TTL_SECONDS = 300;

export type { StoredNode, StoredRRset, ZoneReader, ZoneSigner, ZoneWrites } from './zone-nodes.js';

/** Checks a validity policy, filling in defaults. Throws `StoreError` (`ERR_STORE_BAD_ZONE`). */
export function signatureValidityPolicy(
  policy: Partial<SignatureValidityPolicy> | undefined,
): SignatureValidityPolicy {
  const validitySeconds = policy?.validitySeconds ?? DEFAULT_SIGNATURE_VALIDITY.validitySeconds;
  const refreshBeforeSeconds =
    policy?.refreshBeforeSeconds ?? DEFAULT_SIGNATURE_VALIDITY.refreshBeforeSeconds;
  if (
    !Number.isSafeInteger(validitySeconds) ||
    !Number.isSafeInteger(refreshBeforeSeconds) ||
    validitySeconds <= 0 ||
    validitySeconds >= 2 ** 31 - INCEPTION_BACKDATE_SECONDS ||
    refreshBeforeSeconds < 0 ||
    refreshBeforeSeconds >= validitySeconds
  ) {
    throw new StoreError(
      'ERR_STORE_BAD_ZONE',
      `signature validity ${validitySeconds}s with refresh ${refreshBeforeSeconds}s before expiry: ` +
        'both must be whole seconds, refresh shorter than validity',
    );
  }
  return { validitySeconds, refreshBeforeSeconds };
}

/** The window of signatures made at `now` (seconds). */
export function validityAt(now: number, policy: SignatureValidityPolicy): SignatureValidity {
  const at = Math.floor(now);
  return {
    inception: Math.max(0, at - INCEPTION_BACKDATE_SECONDS),
    expiration: at + policy.validitySeconds,
  };
}

/**
 * How many seconds before `now + validitySeconds` a new signature over the RRset `type` at
 * `owner` expires: a number in [0, window) derived from a hash of the owner and the type, the
 * window being half the refresh margin, and never as much as the time between renewal and
 * expiry (`validitySeconds - refreshBeforeSeconds`), so a fresh signature is never due at once.
 * Deterministic, so every store and every replay of a write signs alike.
 *
 * Worked example, the defaults (14 days, renewed 7 days before expiry): the window is 3.5 days;
 * 100,000 MAP RRsets imported at once expire over 3.5 days, and each 15-minute re-signing pass
 * renews about 300 of them instead of all at once.
 */
export function signatureJitter(
  owner: string,
  type: RRType,
  policy: SignatureValidityPolicy,
): number {
  const window = Math.min(
    Math.floor(policy.refreshBeforeSeconds / 2),
    policy.validitySeconds - policy.refreshBeforeSeconds,
  );
  if (window <= 1) return 0;
  const digest = createHash('sha256').update(`${owner}\u0000${type}`).digest();
  return digest.readUIntBE(0, 6) % window;
}

/**
 * The keys a zone signs with (`keys/key-set.ts`): `signers` sign every RRset but DNSKEY, CDS and
 * CDNSKEY, which `dnskeySigners` sign (every published key, RFC 6781 §4.1.2 and RFC 5011 §2.1).
 */
export interface SigningKeys {
  readonly signers: readonly ZoneKey[];
  readonly dnskeySigners: readonly ZoneKey[];
}

/** The types signed by every published key of the zone rather than by its active keys. */
export const KEY_RRSET_TYPES: ReadonlySet<RRType> = new Set<RRType>(['DNSKEY', 'CDS', 'CDNSKEY']);

/**
 * A signer bound to the zone's keys (or one key, which then signs everything) and the validity
 * of signatures made at `now`, each expiring early by its {@link signatureJitter}: one RRSIG per
 * key that signs the RRset's type.
 */
export function zoneSigner(
  keys: ZoneKey | SigningKeys,
  now: number,
  policy: SignatureValidityPolicy,
): ZoneSigner {
  const set: SigningKeys = 'keyPair' in keys ? { signers: [keys], dnskeySigners: [keys] } : keys;
  const validity = validityAt(now, policy);
  // RFC 5011 §2.1: a revoked key signs the DNSKEY RRset it is revoked in and nothing else (a
  // validator may use it for nothing else), so CDS and CDNSKEY are signed by the others.
  const unrevoked = set.dnskeySigners.filter((k) => (k.dnskey.flags & DNSKEY_FLAG_REVOKE) === 0);
  const forType = (type: RRType): readonly ZoneKey[] =>
    type === 'DNSKEY' ? set.dnskeySigners : KEY_RRSET_TYPES.has(type) ? unrevoked : set.signers;
  const tagsOf = (type: RRType): string =>
    forType(type)
      .map((k) => k.keyTag)
      .sort((a, b) => a - b)
      .join(',');
  const wanted = new Map<string, string>();
  const sign = (rrset: readonly ResourceRecord[]): RecordOf<'RRSIG'>[] => {
    const first = rrset[0];
    if (first === undefined) return [];
    const jitter = signatureJitter(first.name, first.type, policy);
    return forType(first.type).map((key) =>
      signRRset(rrset, key, {
        inception: validity.inception,
        expiration: validity.expiration - jitter,
      }),
    );
  };
  return Object.assign(sign, {
    isCurrent(type: RRType, signatures: readonly RecordOf<'RRSIG'>[]): boolean {
      const group = type === 'DNSKEY' ? 'DNSKEY' : KEY_RRSET_TYPES.has(type) ? 'CDS' : 'data';
      let expected = wanted.get(group);
      if (expected === undefined) {
        expected = tagsOf(type);
        wanted.set(group, expected);
      }
      const have = signatures
        .map((s) => s.data.keyTag)
        .sort((a, b) => a - b)
        .join(',');
      return have === expected;
    },
    signerTags: set.signers.map((k) => k.keyTag),
  });
}

/** The earliest expiration among `signatures`, undefined when there are none. */
export function earliestExpiration(signatures: readonly RecordOf<'RRSIG'>[]): number | undefined {
  let earliest: number | undefined;
  for (const s of signatures) {
    if (earliest === undefined || s.data.expiration < earliest) earliest = s.data.expiration;
  }
  return earliest;
}

/**
 * The signing key of a new zone: from `seed` (32 octets) when given, else random. Throws
 * `StoreError` (`ERR_STORE_BAD_ZONE`) for a seed of the wrong shape.
 */
export function newZoneKey(origin: string, seed: unknown): ZoneKey {
  if (seed === undefined) return createZoneKey(origin);
  if (!(seed instanceof Uint8Array) || seed.length !== 32) {
    throw badZone('keySeed must be 32 octets');
  }
  return createZoneKey(origin, { seed });
}

/** Checks a configured prover seed: 32 octets. Throws `StoreError` (`ERR_STORE_PROVER_KEY`). */
export function checkProverSeed(seed: unknown): void {
  if (seed !== undefined && !(seed instanceof Uint8Array && seed.length === 32)) {
    throw new StoreError('ERR_STORE_PROVER_KEY', 'proverSeed must be 32 octets (an Ed25519 seed)');
  }
}

/** What {@link initialZone} needs besides the `ZoneInit`. */
export interface InitialZoneContext {
  /** The zone's published keys (its first key) for the apex DNSKEY RRset. */
  dnskeys: readonly DnskeyData[];
  /** This DP's prover public key, listed first in the apex AUTHKEY RRset. */
  proverPublicKey: Uint8Array;
  proverNotAfter: number;
  sign: ZoneSigner;
}

/**
 * The apex node of a new zone: SOA (serial 1), NS, DNSKEY and AUTHKEY, each signed. Throws
 * `StoreError` (`ERR_STORE_BAD_ZONE`) for invalid settings.
 */
export function initialZone(init: ZoneInit, context: InitialZoneContext): StoredNode {
  const origin = zoneOrigin(init.origin, 'ERR_STORE_BAD_ZONE');
  const ttl = u32(init.ttl ?? DEFAULT_APEX_TTL, 'ttl', 2 ** 31 - 1);
  if (!Array.isArray(init.nameservers) || init.nameservers.length === 0) {
    throw badZone('a zone needs at least one nameserver');
  }
  const soa = record(
    origin,
    'SOA',
    {
      mname: validName(init.mname, 'mname'),
      rname: validName(init.rname, 'rname'),
      serial: 1,
      refresh: u32(init.refresh ?? DEFAULT_SOA_TIMERS.refresh, 'refresh'),
      retry: u32(init.retry ?? DEFAULT_SOA_TIMERS.retry, 'retry'),
      expire: u32(init.expire ?? DEFAULT_SOA_TIMERS.expire, 'expire'),
      minimum: u32(init.minimum ?? DEFAULT_SOA_TIMERS.minimum, 'minimum'),
    },
    ttl,
  );
  const ns = unique(
    init.nameservers.map((n) => record(origin, 'NS', validName(n, 'nameserver'), ttl)),
  );
  const own: AuthkeyEntry = {
    role: 'prover',
    publicKey: context.proverPublicKey,
    notAfter: context.proverNotAfter,
  };
  const authkeyTtl = u32(init.authkeyTtl ?? DEFAULT_AUTHKEY_TTL_SECONDS, 'authkeyTtl', 2 ** 31 - 1);
  const authkeys = unique(
    [own, ...(init.authkeys ?? [])].map((entry) =>
      record(origin, 'AUTHKEY', authkey(entry), authkeyTtl),
    ),
  );
  const dnskeys = context.dnskeys.map((data) => record(origin, 'DNSKEY', data, ttl));
  const node = new Map<RRType, StoredRRset>();
  for (const rrset of [[soa], ns, dnskeys, authkeys]) {
    const first = rrset[0] as ResourceRecord;
    node.set(first.type, { records: rrset, signatures: context.sign(rrset) });
  }
  return node;
}

/**
 * Applies normalized changes to a zone: the nodes to write, with changed RRsets signed (or left
 * unsigned where RFC 4035 §2.2 says so), signatures added or dropped below a delegation that
 * appeared or went away, and the SOA serial increased by one (RFC 1982 §3.1) and re-signed.
 * Throws `StoreError` (`ERR_STORE_BAD_CHANGE`) when the result breaks the zone's structure: a DS
 * without NS at its owner, or an apex without NS. {@link planChanges} then {@link planSerial}.
 */
export function planApply(
  reader: ZoneReader,
  changes: readonly NormalizedChange[],
  sign: ZoneSigner,
): { writes: ZoneWrites; serial: number } {
  return planSerial(reader, planChanges(reader, changes, sign), sign);
}

/**
 * The nodes that normalized changes write, signed as {@link planApply} signs them, without the
 * serial bump: what one apply of a group commit contributes. Several such plans, each made over
 * a {@link zoneOverlay} holding the ones before it, become one write with one serial step and
 * one SOA signature ({@link planSerial}), however many applies the group holds. Throws as
 * {@link planApply} does, having changed nothing.
 */
export function planChanges(
  reader: ZoneReader,
  changes: readonly NormalizedChange[],
  sign: ZoneSigner,
): ZoneWrites {
  const zone = new Overlay(reader);
  const cuts = new Set<string>();
  for (const change of changes) {
    if (chainLabel(zone.origin, change.name) !== undefined) {
      throw new StoreError(
        'ERR_STORE_BAD_CHANGE',
        `${change.name} has the shape of an NSEC3 owner name of ${zone.origin} (one label of 32 ` +
          'base32hex digits below the apex), where the zone keeps its NSEC3 chain',
      );
    }
    const before = zone.node(change.name);
    const next = new Map(before ?? []);
    if (change.op === 'put') next.set(change.type, { records: change.records, signatures: [] });
    else next.delete(change.type);
    zone.set(change.name, next);
    if (
      change.type === 'NS' &&
      change.name !== zone.origin &&
      (before?.has('NS') ?? false) !== next.has('NS')
    ) {
      cuts.add(change.name);
    }
  }
  for (const change of changes) {
    const node = zone.node(change.name);
    if (node?.has('DS') === true && !node.has('NS')) {
      throw new StoreError(
        'ERR_STORE_BAD_CHANGE',
        `DS at ${change.name} needs NS there: a DS belongs only at a delegation (RFC 4035 §2.4)`,
      );
    }
  }
  if (zone.node(zone.origin)?.has('NS') !== true) {
    throw new StoreError(
      'ERR_STORE_BAD_CHANGE',
      `the apex of ${zone.origin} must keep its NS RRset`,
    );
  }
  for (const change of changes) {
    if (change.op === 'put') signRRsetAt(zone, change.name, change.type, sign, true);
  }
  // A delegation that appeared or went away changes what is authoritative at and below it.
  for (const cut of cuts) {
    for (const name of [cut, ...zone.namesBelow(cut)]) {
      for (const type of zone.node(name)?.keys() ?? []) signRRsetAt(zone, name, type, sign, false);
    }
  }
  return zone.writes;
}

/**
 * Completes one write of a zone: over `writes` (the nodes it changes, as {@link planChanges}
 * made them), the SOA serial increased by one (RFC 1982 §3.1) and signed once, then the NSEC3
 * chain and the ZONEMD brought up to date when the zone keeps them. The result holds `writes`
 * and those nodes: what the store commits, with one journal entry derived from `reader` (the
 * zone as committed before) and it.
 *
 * Example: 200 applies grouped in one commit of zone `4.4.e164.mimi.arpa` at serial 7 write
 * their 200 MAP nodes and the apex once, with SOA serial 8 and one SOA RRSIG per signer.
 */
export function planSerial(
  reader: ZoneReader,
  writes: ZoneWrites,
  sign: ZoneSigner,
): { writes: ZoneWrites; serial: number } {
  const zone = new Overlay(reader);
  for (const [name, node] of writes) zone.writes.set(name, node);
  const serial = bumpSerial(zone, sign);
  return { writes: zone.writes, serial };
}

/**
 * A zone as committed (`base`) with the writes of a group commit planned so far over it: the
 * reader that each apply of the group plans against (so it sees the applies before it), and the
 * writes that {@link planSerial} completes. `merge` adds one apply's writes, once it planned
 * without error: an apply that fails leaves the overlay as it was.
 */
export interface ZoneOverlay extends ZoneReader {
  readonly writes: ZoneWrites;
  merge(writes: ZoneWrites): void;
}

/**
 * An empty {@link ZoneOverlay} over `base`, which must not change while the overlay is used
 * (the group's writes are committed after it): the nodes read from `base` are kept, so that the
 * applies of a group, which look up the same ancestors (is a name below a delegation?), decode
 * each once.
 */
export function zoneOverlay(base: ZoneReader): ZoneOverlay {
  const read = new Map<string, StoredNode | undefined>();
  const kept: ZoneReader = {
    origin: base.origin,
    get nsec3() {
      return base.nsec3;
    },
    node(name) {
      if (read.has(name)) return read.get(name);
      const node = base.node(name);
      read.set(name, node);
      return node;
    },
    namesBelow: (name) => base.namesBelow(name),
  };
  const zone = new Overlay(kept);
  return {
    origin: zone.origin,
    get nsec3() {
      return zone.nsec3;
    },
    writes: zone.writes,
    node: (name) => zone.node(name),
    namesBelow: (name) => zone.namesBelow(name),
    merge(writes) {
      for (const [name, node] of writes) zone.writes.set(name, node);
    },
  };
}

/** The SOA serial of a zone as `zone` reads it (0 when it has none). */
export function zoneSerial(zone: ZoneReader): number {
  const soa = zone.node(zone.origin)?.get('SOA')?.records[0];
  return soa?.type === 'SOA' ? soa.data.serial : 0;
}

/** Signatures made over SOA RRsets (one per signer per serial step): see {@link countingSigner}. */
export interface SigningCounts {
  soaSignatures: number;
}

/**
 * `sign`, counting in `counts` the RRSIGs it makes over SOA RRsets: how a store shows that a
 * group commit signs its zone's SOA once however many applies it holds.
 */
export function countingSigner(sign: ZoneSigner, counts: SigningCounts): ZoneSigner {
  const counted = (rrset: readonly ResourceRecord[]): RecordOf<'RRSIG'>[] => {
    const signatures = sign(rrset);
    if (rrset[0]?.type === 'SOA') counts.soaSignatures += signatures.length;
    return signatures;
  };
  return Object.assign(counted, {
    isCurrent: (type: RRType, signatures: readonly RecordOf<'RRSIG'>[]) =>
      sign.isCurrent(type, signatures),
    signerTags: sign.signerTags,
  });
}

/**
 * RRsets that one re-signing write renews at most (each such write bumps the serial once), so
 * that the incremental transfer (IXFR) of one write never carries the whole zone (design §9).
 */
export const RESIGN_MAX_RRSETS_PER_WRITE = 1000;

/**
 * Whether the RRset `type` of `rrset` is due for signing by a re-signing pass: an authoritative
 * RRset without RRSIG, one whose earliest RRSIG expires before `before`, or one whose RRSIGs are
 * not exactly by the keys that sign its type now (a key switch, `keys/key-set.ts`).
 */
export function isDue(
  rrset: StoredRRset,
  type: RRType,
  before: number,
  sign: ZoneSigner,
  authoritative: () => boolean,
): boolean {
  if (rrset.signatures.length === 0) return authoritative();
  return (
    (earliestExpiration(rrset.signatures) as number) < before ||
    !sign.isCurrent(type, rrset.signatures)
  );
}

/**
 * Re-signs, among the nodes `names` taken in order, every RRset whose RRSIG expires before
 * `before`, whose RRSIGs are not by the current keys (a key switch), and any authoritative RRset
 * found without one, at most `max` of them: it stops
 * before the first node whose due RRsets would pass `max` (unless it is the first node with any);
 * bumps and re-signs the SOA when anything changed. Returns the writes, how many RRsets were
 * re-signed, the new serial (undefined when nothing was due), and how many of `names` it went
 * through (the rest is for the next write).
 */
export function planResign(
  reader: ZoneReader,
  names: readonly string[],
  before: number,
  sign: ZoneSigner,
  max: number = RESIGN_MAX_RRSETS_PER_WRITE,
): { writes: ZoneWrites; count: number; serial: number | undefined; done: number } {
  const zone = new Overlay(reader);
  let count = 0;
  let done = 0;
  for (const name of names) {
    const node = zone.node(name);
    const due: RRType[] = [];
    for (const [type, rrset] of node ?? []) {
      if (isDue(rrset, type, before, sign, () => isAuthoritative(zone, name, type))) {
        due.push(type);
      }
    }
    if (count > 0 && count + due.length > max) break;
    done += 1;
    for (const type of due) {
      count += 1;
      // The serial bump below signs the SOA anyway, and the ZONEMD of a zone that has one.
      if ((type !== 'SOA' && type !== 'ZONEMD') || name !== zone.origin) {
        signRRsetAt(zone, name, type, sign, true);
      }
    }
  }
  if (count === 0) return { writes: zone.writes, count, serial: undefined, done };
  return { writes: zone.writes, count, serial: bumpSerial(zone, sign), done };
}

/**
 * Puts the zone's key RRsets at its apex as the key set says (`keys/key-set.ts`): DNSKEY (the
 * published keys), and CDS (digest type 2, SHA-256) and CDNSKEY (RFC 7344 §3, RFC 8078) for the
 * keys in `cds`, or no CDS/CDNSKEY RRsets when `cds` is empty; all with the TTL of the apex
 * DNSKEY RRset, signed by `sign` (whose DNSKEY/CDS/CDNSKEY signers are every published key), and
 * the serial bumped. `serial` is undefined when the three RRsets already say exactly that (their
 * RRSIGs are a re-signing pass's business). Throws `StoreError` (`ERR_STORE_KEY_MISSING`) when
 * the set publishes no key.
 *
 * Example: zone `example` publishing keys A and B with CDS for both writes DNSKEY {A, B}, CDS
 * {DS(A), DS(B)} and CDNSKEY {A, B}, each signed by A and B.
 */
export function planKeys(
  reader: ZoneReader,
  keys: { readonly dnskeys: readonly DnskeyData[]; readonly cds: readonly DnskeyData[] },
  sign: ZoneSigner,
): { writes: ZoneWrites; serial: number | undefined } {
  const zone = new Overlay(reader);
  const origin = zone.origin;
  const apex = zone.node(origin);
  if (apex === undefined) {
    throw new StoreError('ERR_STORE_CORRUPT', `zone ${origin} has no apex`);
  }
  if (keys.dnskeys.length === 0) {
    throw new StoreError(
      'ERR_STORE_KEY_MISSING',
      `zone ${origin} would publish no DNSKEY: its key directory has no published key for it`,
    );
  }
  const ttl = apex.get('DNSKEY')?.records[0]?.ttl ?? apex.get('SOA')?.records[0]?.ttl ?? 3600;
  const wanted: Array<[RRType, ResourceRecord[]]> = [
    ['DNSKEY', keys.dnskeys.map((data) => record(origin, 'DNSKEY', data, ttl))],
    [
      'CDS',
      keys.cds.map((data) => record(origin, 'CDS', computeDs(origin, data, DS_DIGEST_SHA256), ttl)),
    ],
    ['CDNSKEY', keys.cds.map((data) => record(origin, 'CDNSKEY', data, ttl))],
  ];
  const next = new Map(apex);
  let changed = false;
  for (const [type, records] of wanted) {
    const stored = apex.get(type)?.records ?? [];
    if (sameRecords(stored, records)) continue;
    changed = true;
    if (records.length === 0) next.delete(type);
    else next.set(type, { records, signatures: sign(records) });
  }
  if (!changed) return { writes: zone.writes, serial: undefined };
  zone.set(origin, next);
  return { writes: zone.writes, serial: bumpSerial(zone, sign) };
}

/** Whether two RRsets hold the same records (TTL and canonical RDATA), in any order. */
function sameRecords(a: readonly ResourceRecord[], b: readonly ResourceRecord[]): boolean {
  const id = (rr: ResourceRecord): string =>
    `${rr.ttl}:${Buffer.from(encodeRdata(rr, { canonical: true })).toString('hex')}`;
  const x = a.map(id).sort();
  const y = b.map(id).sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * Turns the zone's NSEC3 chain on (`enabled`: NSEC3PARAM at the apex and the whole chain,
 * signed) or off (both deleted), and bumps the serial; `serial` is undefined when the zone is
 * already so. A zone with a ZONEMD keeps its chain: turning it off is refused with `StoreError`
 * (`ERR_STORE_BAD_CHANGE`) until the ZONEMD goes.
 */
export function planNsec3(
  reader: ZoneReader,
  enabled: boolean,
  sign: ZoneSigner,
): { writes: ZoneWrites; serial: number | undefined } {
  const zone = new Overlay(reader);
  const apex = zone.node(zone.origin);
  const kept = apex?.has('NSEC3PARAM') === true;
  if (kept === enabled) return { writes: zone.writes, serial: undefined };
  if (!enabled && apex?.has('ZONEMD') === true) {
    throw new StoreError(
      'ERR_STORE_BAD_CHANGE',
      `zone ${zone.origin} keeps a ZONEMD, whose transfer needs its NSEC3 chain: ` +
        'delete the ZONEMD first',
    );
  }
  if (enabled) buildNsec3ChainInto(zone, sign);
  else dropNsec3Chain(zone);
  return { writes: zone.writes, serial: bumpSerial(zone, sign) };
}

/**
 * Whether the RRset `type` at `name` is authoritative data of the zone and so signed
 * (RFC 4035 §2.2): not below a delegation, and at a delegation only the DS.
 */
export function isAuthoritative(reader: ZoneReader, name: string, type: RRType): boolean {
  if (type === 'RRSIG') return false;
  const origin = reader.origin;
  for (
    let p = parentName(name);
    p !== undefined && p !== origin && isSubdomain(p, origin);
    p = parentName(p)
  ) {
    if (reader.node(p)?.has('NS') === true) return false;
  }
  if (name !== origin && reader.node(name)?.has('NS') === true) return type === 'DS';
  return true;
}

/** A stored node in the shape `lookupZone` reads. */
export function toZoneNode(node: StoredNode): ZoneNode {
  const rrsets = new Map<RRType, readonly ResourceRecord[]>();
  const signatures = new Map<RRType, readonly RecordOf<'RRSIG'>[]>();
  for (const [type, rrset] of node) {
    rrsets.set(type, rrset.records);
    if (rrset.signatures.length > 0) signatures.set(type, rrset.signatures);
  }
  return { rrsets, signatures };
}

/** The records of a node, types in code order, each RRset followed by its RRSIG. */
export function nodeRecords(node: StoredNode): ResourceRecord[] {
  const out: ResourceRecord[] = [];
  const types = [...node.keys()].sort((a, b) => typeToCode(a) - typeToCode(b));
  for (const type of types) {
    const rrset = node.get(type) as StoredRRset;
    out.push(...rrset.records);
    out.push(...rrset.signatures);
  }
  return out;
}

/** A reader that sees pending writes over a base reader. */
class Overlay implements ChainEdit {
  readonly writes: ZoneWrites = new Map();

  constructor(readonly base: ZoneReader) {}

  get origin(): string {
    return this.base.origin;
  }

  get nsec3(): Nsec3Index {
    // The index of the chain as stored; the chain's own code accounts for pending entries.
    return this.base.nsec3;
  }

  node(name: string): StoredNode | undefined {
    return this.writes.has(name) ? this.writes.get(name) : this.base.node(name);
  }

  set(name: string, node: StoredNode): void {
    this.writes.set(name, node.size > 0 ? node : undefined);
  }

  written(): Iterable<string> {
    return [...this.writes.keys()];
  }

  *namesBelow(name: string): Iterable<string> {
    for (const below of this.base.namesBelow(name)) {
      if (!this.writes.has(below)) yield below;
    }
    for (const [below, node] of this.writes) {
      if (
        node !== undefined &&
        below !== name &&
        isSubdomain(below, name) &&
        chainLabel(this.origin, below) === undefined
      ) {
        yield below;
      }
    }
  }
}

/**
 * Sets the signature of one RRset by the authoritative rule. With `force`, an authoritative
 * RRset is signed anew even when it has a signature (its records changed, or it is due).
 */
function signRRsetAt(
  zone: Overlay,
  name: string,
  type: RRType,
  sign: ZoneSigner,
  force: boolean,
): void {
  const node = zone.node(name);
  const rrset = node?.get(type);
  if (node === undefined || rrset === undefined) return;
  const wanted = isAuthoritative(zone, name, type);
  const has = rrset.signatures.length > 0;
  if (wanted === has && !force) return;
  const signatures = wanted ? sign(rrset.records) : [];
  zone.set(name, new Map(node).set(type, { records: rrset.records, signatures }));
}

function bumpSerial(zone: Overlay, sign: ZoneSigner): number {
  const apex = zone.node(zone.origin);
  const soa = apex?.get('SOA')?.records[0];
  if (apex === undefined || soa === undefined || soa.type !== 'SOA') {
    throw new StoreError('ERR_STORE_CORRUPT', `zone ${zone.origin} has no SOA at its apex`);
  }
  // RFC 1982 §3.1: serial + 1 modulo 2^32.
  const serial = (soa.data.serial + 1) % 2 ** 32;
  const records = [{ ...soa, data: { ...soa.data, serial } }];
  zone.set(zone.origin, new Map(apex).set('SOA', { records, signatures: sign(records) }));
  keepForTransfer(zone, sign);
  return serial;
}

/**
 * Keeps what a zone carries for transfer up to date once its serial was bumped (inside the
 * same write). Its NSEC3 chain, kept while the apex holds NSEC3PARAM: brought up to date with
 * what the write changed (`nsec3-chain.ts`). A ZONEMD at the apex (RFC 8976) needs the chain
 * (the transferred zone must be a standard signed zone that stock secondaries and checkers
 * accept), so putting one turns the chain on and deleting one turns it off. Then the ZONEMD,
 * computed over every record of the zone and signed, last (RFC 8976 §3): that costs a read of
 * the whole zone per write, which is meant for the root's zone of delegations, public and small,
 * not for a DP's zone of mappings. Answers stay compact denials (design §5).
 */
function keepForTransfer(zone: Overlay, sign: ZoneSigner): void {
  const origin = zone.origin;
  const before = zone.base.node(origin);
  const apex = zone.node(origin);
  const hadChain = before?.has('NSEC3PARAM') === true;
  const hasChain = apex?.has('NSEC3PARAM') === true;
  const hasZonemd = apex?.has('ZONEMD') === true;
  if (hasZonemd && !hasChain) buildNsec3ChainInto(zone, sign);
  else if (!hasZonemd && before?.has('ZONEMD') === true && hasChain) dropNsec3Chain(zone);
  else if (hadChain && hasChain) updateNsec3Chain(zone, sign);
  if (hasZonemd) refreshDigest(zone, sign);
}

/** Computes the apex ZONEMD over every record of the zone (its chain included) and signs it. */
function refreshDigest(zone: Overlay, sign: ZoneSigner): void {
  const origin = zone.origin;
  const all: ResourceRecord[] = [];
  for (const name of [origin, ...zone.namesBelow(origin)]) {
    for (const rr of nodeRecords(zone.node(name) ?? new Map())) all.push(rr);
  }
  for (const label of chainLabels(zone)) {
    for (const rr of nodeRecords(zone.node(chainOwner(origin, label)) ?? new Map())) all.push(rr);
  }
  // The RRSIG refreshZonemd makes is dropped (filtered out below): the ZONEMD is signed by every
  // signer after it.
  const one = (rrset: readonly ResourceRecord[]): RecordOf<'RRSIG'> => {
    const first = sign(rrset)[0];
    if (first === undefined) {
      throw new StoreError('ERR_STORE_KEY_MISSING', `zone ${origin} has no key to sign with`);
    }
    return first;
  };
  const fresh = refreshZonemd(origin, all, one).filter(
    (rr) => rr.type === 'ZONEMD' && canonicalName(rr.name) === origin,
  );
  const apex = zone.node(origin) ?? new Map<RRType, StoredRRset>();
  zone.set(origin, new Map(apex).set('ZONEMD', { records: fresh, signatures: sign(fresh) }));
}

function authkey(entry: AuthkeyEntry): RecordOf<'AUTHKEY'>['data'] {
  if (typeof entry !== 'object' || entry === null)
    throw badZone('an AUTHKEY entry is not an object');
  if (entry.role !== 'prover' && entry.role !== 'csip') {
    throw badZone(`AUTHKEY role ${String(entry.role)} is neither prover nor csip`);
  }
  if (
    !(entry.publicKey instanceof Uint8Array) ||
    entry.publicKey.length !== ED25519_PUBLIC_KEY_OCTETS
  ) {
    throw badZone(`an AUTHKEY public key must be ${ED25519_PUBLIC_KEY_OCTETS} octets (Ed25519)`);
  }
  return {
    role: entry.role,
    algorithm: DNSSEC_ALGORITHM_ED25519,
    notAfter: u32(entry.notAfter, 'AUTHKEY notAfter'),
    publicKey: Uint8Array.from(entry.publicKey),
  };
}

/** Records with each RDATA once, checked to encode. */
function unique<T extends ResourceRecord>(records: T[]): T[] {
  const seen = new Set<string>();
  return records.filter((rr) => {
    let rdata: Uint8Array;
    try {
      rdata = encodeRdata(rr, { canonical: true });
    } catch (cause) {
      throw new StoreError(
        'ERR_STORE_BAD_ZONE',
        `a ${rr.type} record of ${rr.name} does not encode`,
        {
          cause,
        },
      );
    }
    const id = Buffer.from(rdata).toString('hex');
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

function validName(name: unknown, what: string): string {
  if (typeof name !== 'string' || name === '') throw badZone(`${what} must be a domain name`);
  try {
    canonicalName(name);
  } catch (cause) {
    throw new StoreError(
      'ERR_STORE_BAD_ZONE',
      `${what} ${JSON.stringify(name)} is not a domain name`,
      {
        cause,
      },
    );
  }
  return name;
}

function u32(value: unknown, what: string, max = 2 ** 32 - 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw badZone(`${what} must be an integer in 0..${max}, got ${String(value)}`);
  }
  return value;
}

function badZone(message: string): StoreError {
  return new StoreError('ERR_STORE_BAD_ZONE', message);
}
