import {
  CsiError,
  DNSSEC_ALGORITHM_ED25519,
  ED25519_PUBLIC_KEY_OCTETS,
  MAX_CLOCK_SKEW_SECONDS,
  SignedObjectError,
  decodeMapping,
  decodeMaprefRequest,
  decodeRemoval,
  decodeRevocation,
  encodeRdata,
  isSubdomain,
  parseCsi,
  namesEqual,
  record,
  type Attestation,
  type AuthkeyData,
  type AuthkeyRole,
  type Mapping,
  type MaprefRequest,
  type RecordOf,
  type Removal,
  type ResourceRecord,
  type Revocation,
} from '@mimi-discovery/common';
import { mappingExpiryHint } from './mapping-expiry-hint.js';
import { StoreError } from './store-error.js';
import { ownerName } from '../zone/owner-name.js';
import { changedNames, type ChangedNames, type NormalizedChange } from '../zone/zone-changes.js';
import {
  DEFAULT_APEX_TTL,
  planChanges,
  type StoredNode,
  type ZoneReader,
  type ZoneWrites,
  type ZoneSigner,
} from '../zone/zone-signer.js';

/**
 * Operations on a CSI's MAP and MAPREF RRsets and on a zone's AUTHKEY RRset whose outcome
 * depends on what is stored (design §8: "the store applies operations (add this mapping, remove
 * this key's mappings up to this `seq`, revoke before this time), never a whole RRset a caller
 * read earlier"). A caller (the registrar, `zone import`) hands the store one
 * {@link StoreOperation}; the store reads the RRsets and the anti-replay records inside its
 * write transaction, asks {@link runOperation} what to do, and commits the result in that same
 * transaction — on whichever thread or process holds the write. Two concurrent publishes for one
 * CSI therefore each see the other's mapping, and a removal and its tombstone commit together.
 *
 * Everything here is pure: the rules below read through a {@link ZoneReader} and a
 * {@link ReplayReader} and return the changes; the stores (`memory-store.ts`, `lmdb-store.ts`)
 * supply the readers and write what comes back. Signatures are not verified here: the registrar
 * verifies them (and attestation times) before it submits an operation, and an operator's
 * `zone import` vouches for its own file.
 *
 * Rules for a CSI's MAP RRset (one MAP record per recipient key):
 * - a key's new mapping replaces its stored one only with a higher `seq` (else `stale-seq`); the
 *   very same bytes again succeed without a change, so a client may retry;
 * - a mapping with the "new" bit de-lists, i.e. deletes, the mappings of other keys whose
 *   attestation is older (`att.nbf` smaller); conversely a mapping whose attestation is older
 *   than that of another key's stored "new" mapping is refused (`superseded`), since resolvers
 *   would drop it (design §6);
 * - a removal of the key up to a `seq` at least the mapping's (`stale-seq`), or a revocation of
 *   attestations older than the mapping's (`revoked`), refuses it for as long as the anti-replay
 *   record lasts;
 * - mappings that have expired (own or attestation `exp`) are dropped whenever the RRset is
 *   rewritten;
 * - at most {@link MAX_MAPPINGS_PER_CSI} records and {@link MAX_MAP_RRSET_OCTETS} octets;
 * - the RRset's TTL is the smallest over its records of min({@link MAX_MAP_TTL_SECONDS},
 *   expiry − now), so no cache keeps a mapping past its expiry.
 *
 * Rules for the MAPREF RRset: a MAPREF belongs to the CSI, not to one key (its RDATA is only a
 * domain name). A MapRef request from a current holder (attested by a prover of the range, not
 * de-listed by a "new" mapping, not revoked) adds its `target`, or with `target` null withdraws
 * the whole RRset; each request is taken once. A removal that leaves no MAP at the CSI deletes
 * the MAPREF RRset too (the last holder has left, so nothing vouches for the pointers); a
 * revocation always deletes it, since the pointers may have been set by the revoked holder.
 *
 * Rules for the apex AUTHKEY RRset (design §4: the keys authorized for the range): keys are
 * added (`add-authkeys`), removed (`remove-authkeys`) and renewed (`renew-authkey`, a new
 * `notAfter`) one operation at a time, each decided against the RRset as the transaction reads
 * it, so an addition and a removal that race both take effect.
 *
 * Worked example, CSI name N holding Alice's mapping (seq 3): Bob's publish (seq 1, no "new"
 * bit) plans `put MAP N {Alice#3, Bob#1}`; Alice's removal up to seq 5 then plans
 * `put MAP N {Bob#1}` and the record "removal of (N's CSI, Alice's key) up to seq 5"; a replay
 * of Alice#3 afterwards is refused `stale-seq` from that record, across restarts and restores.
 */

/** Longest TTL of a MAP RRset, in seconds; shorter when a mapping expires sooner. */
export const MAX_MAP_TTL_SECONDS = 300;
/** TTL of a MAPREF RRset, in seconds. */
export const MAPREF_TTL_SECONDS = 300;
/** Most MAP records (recipient keys) at one CSI. */
export const MAX_MAPPINGS_PER_CSI = 16;
/**
 * Most RDATA octets of one MAP RRset, so an answer with its RRSIG fits a DNS message (65,535
 * octets) with room to spare.
 */
export const MAX_MAP_RRSET_OCTETS = 32 * 1024;
/** Most MAPREF records at one CSI (a resolver follows only a few: design §6 fan-out limit). */
export const MAX_MAPREFS_PER_CSI = 8;
/**
 * Longest validity (`exp − nbf`) of an attestation that a DP stores a mapping or MapRef request
 * with: 2 years, twice the default validity of the attestations a DP issues itself. It is what
 * bounds how long an anti-replay record must be kept (see {@link removalRecordUntil} and
 * {@link revocationRecordUntil}): without a bound, an old mapping could outlive any record.
 */
export const MAX_ATTESTATION_LIFETIME_SECONDS = 2 * 365 * 86_400;
/** Anti-replay records deleted per transaction when expired ones are pruned. */
export const REPLAY_PRUNE_BATCH = 256;

// ---------------------------------------------------------------------------------------------
// Operations and outcomes

/**
 * One operation on a zone. `name` is the owner of the RRsets (a CSI's name, or an MSP zone's
 * MAPREF target); `now` is the caller's clock in seconds, against which expiry, AUTHKEY
 * `notAfter` and anti-replay records are judged. With `authorize`, the key that vouches for the
 * object (the attestation's prover, the revocation's CSIP) must be an unexpired AUTHKEY of that
 * role at the zone's apex, checked inside the transaction: a prover removed concurrently cannot
 * slip through. `zone import` passes `authorize: false`: the operator vouches for its file.
 */
export type StoreOperation =
  | {
      /** Add the encoded Mapping (its signatures already verified for `csi`). */
      readonly kind: 'publish-mapping';
      readonly name: string;
      /**
       * The canonical CSI the mapping is for. A Mapping does not carry it (docs/protocol.md §4),
       * and removals and revocations are recorded by CSI.
       */
      readonly csi: string;
      readonly mapping: Uint8Array;
      readonly now: number;
      readonly authorize: boolean;
    }
  | {
      /** Apply the encoded Removal (verified): delete the key's mapping, record a tombstone. */
      readonly kind: 'remove-mapping';
      readonly name: string;
      readonly removal: Uint8Array;
      readonly now: number;
    }
  | {
      /** Apply the encoded Revocation (verified): delete what it covers, record it. */
      readonly kind: 'revoke';
      readonly name: string;
      readonly revocation: Uint8Array;
      readonly now: number;
      readonly authorize: boolean;
    }
  | {
      /** Apply the encoded MapRef request (verified): add or withdraw a target, once. */
      readonly kind: 'mapref';
      readonly name: string;
      readonly request: Uint8Array;
      readonly now: number;
      readonly authorize: boolean;
    }
  | {
      /** Add MAPREF targets to those at `name` (an operator's import). */
      readonly kind: 'add-maprefs';
      readonly name: string;
      readonly targets: readonly string[];
      /** Default {@link MAPREF_TTL_SECONDS}. */
      readonly ttl?: number;
    }
  | {
      /** Add keys to the apex AUTHKEY RRset; a key already listed (same role) stays as it is. */
      readonly kind: 'add-authkeys';
      readonly keys: readonly AuthkeyData[];
      /** Default: the TTL of the zone's AUTHKEY RRset. */
      readonly ttl?: number;
    }
  | {
      /**
       * Delete keys from the apex AUTHKEY RRset, each named by role and public key; refused
       * `not-found` (nothing deleted) when one of them is not listed. Deleting the last key
       * deletes the RRset.
       */
      readonly kind: 'remove-authkeys';
      readonly keys: readonly AuthkeyRef[];
      /** The RRset's TTL after the write; default: unchanged. */
      readonly ttl?: number;
    }
  | {
      /**
       * Give a listed AUTHKEY (by role and public key) a new `notAfter` (a renewal); refused
       * `not-found` when it is not listed. `notAfter` must lie after `now`.
       */
      readonly kind: 'renew-authkey';
      readonly key: AuthkeyRef;
      readonly notAfter: number;
      readonly now: number;
      /** The RRset's TTL after the write; default: unchanged. */
      readonly ttl?: number;
    };

/** An AUTHKEY named by what identifies it in the RRset: its role and its public key. */
export interface AuthkeyRef {
  readonly role: AuthkeyRole;
  /** Ed25519 public key, 32 octets. */
  readonly publicKey: Uint8Array;
}

/** Why an operation was refused; a refused operation changes nothing. */
export type RefusalReason =
  /** The mapping (or its attestation) has expired. */
  | 'expired'
  /** The attestation is valid for longer than {@link MAX_ATTESTATION_LIFETIME_SECONDS}. */
  | 'attestation-lifetime'
  /** A revocation whose `before` lies in the future. */
  | 'not-yet-valid'
  /** The attestation's prover is no unexpired AUTHKEY `prover` at the apex. */
  | 'prover-not-authorized'
  /** The revocation's key is no unexpired AUTHKEY `csip` at the apex. */
  | 'csip-not-authorized'
  /** The key has a stored mapping (or a removal) with this or a higher `seq`. */
  | 'stale-seq'
  /** Another key's stored "new" mapping is attested later. */
  | 'superseded'
  /** A revocation covers the attestation. */
  | 'revoked'
  /** A removal for a key without a stored mapping; an AUTHKEY to remove or renew not listed. */
  | 'not-found'
  /** A MapRef request that was already applied. */
  | 'replayed'
  | 'too-many-mappings'
  | 'too-many-maprefs';

/** What an operation did. */
export type OperationOutcome =
  | {
      readonly kind: 'applied';
      /**
       * The zone's SOA serial once the operation is committed: the serial of its group commit,
       * stepped once for every write in it (unchanged when nothing in the group changed).
       */
      readonly serial: number;
      /** Whether the zone's records changed (a retry of the same publish changes nothing). */
      readonly changed: boolean;
      /**
       * MAP records deleted: those a revocation covered; for the other operations every record
       * that went (de-listed, removed, or dropped as expired), a replaced own mapping aside.
       */
      readonly removed: number;
    }
  | { readonly kind: 'refused'; readonly reason: RefusalReason; readonly message: string };

// ---------------------------------------------------------------------------------------------
// Anti-replay records

/**
 * A recipient's removal (design §8, R9): the key's mappings of the CSI up to `seq` are refused.
 * Kept while `now <= until`, as are the other records.
 */
export interface RemovalRecord {
  readonly kind: 'removal';
  readonly csi: string;
  readonly key: Uint8Array;
  readonly seq: number;
  readonly until: number;
}

/** A CSIP's revocation (R10): objects of the CSI attested before `before` are refused. */
export interface RevocationRecord {
  readonly kind: 'revocation';
  readonly csi: string;
  readonly before: number;
  readonly until: number;
}

/** A MapRef request that was applied, by its signature: the same request is refused. */
export interface MaprefRequestRecord {
  readonly kind: 'mapref-request';
  readonly id: Uint8Array;
  readonly until: number;
}

/**
 * The anti-replay records of a store: written in the transaction of the deletion (or MAPREF
 * change) they record, kept until nothing they stop could verify any more, then pruned.
 */
export type ReplayRecord = RemovalRecord | RevocationRecord | MaprefRequestRecord;

/** Read access to a store's anti-replay records (inside its write transaction). */
export interface ReplayReader {
  removal(csi: string, key: Uint8Array): RemovalRecord | undefined;
  revocation(csi: string): RevocationRecord | undefined;
  request(id: Uint8Array): MaprefRequestRecord | undefined;
}

/**
 * How long a removal record at `now` is kept. It stops replays of the key's mappings up to its
 * `seq`, and such a mapping verifies only while its attestation does: exp ≤ nbf +
 * {@link MAX_ATTESTATION_LIFETIME_SECONDS}. Every mapping that existed at the removal carries an
 * attestation issued by then, whose `nbf` (the prover's clock at issuance) is at most
 * now + {@link MAX_CLOCK_SKEW_SECONDS}; so after now + skew + lifetime every one of them has
 * expired, and what verifies later carries an attestation issued after the removal: signed by
 * the key holder since, not a replay.
 */
export function removalRecordUntil(now: number): number {
  return now + MAX_CLOCK_SKEW_SECONDS + MAX_ATTESTATION_LIFETIME_SECONDS;
}

/**
 * How long a revocation record is kept. It stops objects whose attestation has nbf < `before`;
 * such an attestation expires by nbf + {@link MAX_ATTESTATION_LIFETIME_SECONDS} < before +
 * lifetime, and nothing it attests verifies after that (no clock assumption needed).
 */
export function revocationRecordUntil(before: number): number {
  return before + MAX_ATTESTATION_LIFETIME_SECONDS;
}

/**
 * How long a MapRef request record is kept: `verifyMaprefRequest` takes a request only while
 * now ≤ iat + {@link MAX_CLOCK_SKEW_SECONDS}, so afterwards it is refused as expired anyway.
 */
export function requestRecordUntil(iat: number): number {
  return iat + MAX_CLOCK_SKEW_SECONDS;
}

/** Whether an anti-replay record still counts at `now`. */
export function isActive(record: { readonly until: number }, now: number): boolean {
  return now <= record.until;
}

// ---------------------------------------------------------------------------------------------
// Checks shared with the registrar

/** Whether `key` is an unexpired Ed25519 AUTHKEY of `role` among `authkeys` at `now`. */
export function isAuthorizedKey(
  authkeys: readonly ResourceRecord[],
  role: AuthkeyRole,
  key: Uint8Array,
  now: number,
): boolean {
  return authkeys.some(
    (rr) =>
      rr.type === 'AUTHKEY' &&
      rr.data.role === role &&
      rr.data.algorithm === DNSSEC_ALGORITHM_ED25519 &&
      rr.data.notAfter > now &&
      equalBytes(rr.data.publicKey, key),
  );
}

/** Whether a mapping and its attestation are both unexpired at `now`. */
export function isCurrent(m: Mapping, now: number): boolean {
  return now < m.exp && now < m.att.exp;
}

/** min(MAX_MAP_TTL_SECONDS, seconds until the mapping or its attestation expires), at least 1. */
export function mapTtl(m: Mapping | undefined, now: number): number {
  if (m === undefined) return MAX_MAP_TTL_SECONDS;
  return Math.max(1, Math.min(MAX_MAP_TTL_SECONDS, Math.min(m.exp, m.att.exp) - now));
}

// ---------------------------------------------------------------------------------------------
// Checks before the transaction

/** An operation after {@link prepareOperation}: names canonical, signed objects decoded. */
export type PreparedOperation =
  | {
      readonly kind: 'publish-mapping';
      readonly name: string;
      readonly csi: string;
      readonly bytes: Uint8Array;
      readonly mapping: Mapping;
      readonly now: number;
      readonly authorize: boolean;
    }
  | {
      readonly kind: 'remove-mapping';
      readonly name: string;
      readonly removal: Removal;
      readonly now: number;
    }
  | {
      readonly kind: 'revoke';
      readonly name: string;
      readonly revocation: Revocation;
      readonly now: number;
      readonly authorize: boolean;
    }
  | {
      readonly kind: 'mapref';
      readonly name: string;
      readonly request: MaprefRequest;
      readonly now: number;
      readonly authorize: boolean;
    }
  | {
      readonly kind: 'add-maprefs';
      readonly name: string;
      readonly targets: readonly string[];
      readonly ttl: number;
    }
  | {
      readonly kind: 'add-authkeys';
      readonly name: string;
      readonly keys: readonly AuthkeyData[];
      readonly ttl: number | undefined;
    }
  | {
      readonly kind: 'remove-authkeys';
      readonly name: string;
      readonly keys: readonly AuthkeyRef[];
      readonly ttl: number | undefined;
    }
  | {
      readonly kind: 'renew-authkey';
      readonly name: string;
      readonly key: AuthkeyRef;
      readonly notAfter: number;
      readonly now: number;
      readonly ttl: number | undefined;
    };

/** Largest TTL (RFC 2181 §8). */
const MAX_TTL = 2 ** 31 - 1;

/**
 * Checks an operation for zone `origin` (canonical) before anything is read or written, and
 * decodes its signed object. Throws `StoreError`: `ERR_STORE_OUT_OF_ZONE` for a name outside
 * the zone, `ERR_STORE_BAD_CHANGE` for anything else malformed.
 */
export function prepareOperation(origin: string, operation: StoreOperation): PreparedOperation {
  if (typeof operation !== 'object' || operation === null) throw bad('not an operation');
  const op: StoreOperation = operation;
  const now = (): number => {
    if (!('now' in op) || !Number.isSafeInteger(op.now) || op.now < 0) {
      throw bad('now must be whole seconds since the epoch');
    }
    return op.now;
  };
  const authorize = (): boolean => {
    if (!('authorize' in op) || typeof op.authorize !== 'boolean') {
      throw bad('authorize must be true or false');
    }
    return op.authorize;
  };
  switch (op.kind) {
    case 'publish-mapping': {
      const bytes = bytesOf(op.mapping, 'mapping');
      return {
        kind: op.kind,
        name: nameIn(origin, op.name),
        csi: canonicalCsi(op.csi),
        bytes,
        mapping: decoded(() => decodeMapping(bytes), 'mapping'),
        now: now(),
        authorize: authorize(),
      };
    }
    case 'remove-mapping': {
      const bytes = bytesOf(op.removal, 'removal');
      return {
        kind: op.kind,
        name: nameIn(origin, op.name),
        removal: decoded(() => decodeRemoval(bytes), 'removal'),
        now: now(),
      };
    }
    case 'revoke': {
      const bytes = bytesOf(op.revocation, 'revocation');
      return {
        kind: op.kind,
        name: nameIn(origin, op.name),
        revocation: decoded(() => decodeRevocation(bytes), 'revocation'),
        now: now(),
        authorize: authorize(),
      };
    }
    case 'mapref': {
      const bytes = bytesOf(op.request, 'request');
      const request = decoded(() => decodeMaprefRequest(bytes), 'MapRef request');
      const name = nameIn(origin, op.name);
      if (request.target !== null) maprefTarget(name, request.target);
      return { kind: op.kind, name, request, now: now(), authorize: authorize() };
    }
    case 'add-maprefs': {
      const name = nameIn(origin, op.name);
      if (!Array.isArray(op.targets) || op.targets.length === 0) {
        throw bad('add-maprefs needs at least one target');
      }
      return {
        kind: op.kind,
        name,
        targets: op.targets.map((t: unknown) => maprefTarget(name, t)),
        ttl: ttlOf(op.ttl ?? MAPREF_TTL_SECONDS),
      };
    }
    case 'add-authkeys': {
      if (!Array.isArray(op.keys) || op.keys.length === 0) {
        throw bad('add-authkeys needs at least one key');
      }
      return {
        kind: op.kind,
        name: origin,
        keys: op.keys.map(authkeyOf),
        ttl: op.ttl === undefined ? undefined : ttlOf(op.ttl),
      };
    }
    case 'remove-authkeys': {
      if (!Array.isArray(op.keys) || op.keys.length === 0) {
        throw bad('remove-authkeys needs at least one key');
      }
      return {
        kind: op.kind,
        name: origin,
        keys: op.keys.map(authkeyRefOf),
        ttl: op.ttl === undefined ? undefined : ttlOf(op.ttl),
      };
    }
    case 'renew-authkey': {
      const at = now();
      const notAfter: unknown = op.notAfter;
      if (typeof notAfter !== 'number' || !Number.isInteger(notAfter) || notAfter > 2 ** 32 - 1) {
        throw bad('notAfter must be whole seconds since the epoch, below 2^32');
      }
      // A renewal that ends before now would withdraw the key: that is remove-authkeys.
      if (notAfter <= at) throw bad('notAfter must lie after now');
      return {
        kind: op.kind,
        name: origin,
        key: authkeyRefOf(op.key),
        notAfter,
        now: at,
        ttl: op.ttl === undefined ? undefined : ttlOf(op.ttl),
      };
    }
    default:
      throw bad(`unknown operation ${JSON.stringify((op as { kind?: unknown }).kind)}`);
  }
}

function nameIn(origin: string, name: unknown): string {
  if (typeof name !== 'string') throw bad('name must be a string');
  let owner: string;
  try {
    owner = ownerName(name);
  } catch (cause) {
    throw bad(`${JSON.stringify(name)} is not a domain name`, cause);
  }
  if (!isSubdomain(owner, origin)) {
    throw new StoreError('ERR_STORE_OUT_OF_ZONE', `${owner} is not in zone ${origin}`);
  }
  return owner;
}

/** A CSI in its canonical form: the one a mapping's signatures cover. */
function canonicalCsi(csi: unknown): string {
  if (typeof csi !== 'string') throw bad('csi must be a canonical CSI');
  let canonical: string;
  try {
    canonical = parseCsi(csi);
  } catch (cause) {
    if (!(cause instanceof CsiError)) throw cause;
    throw bad(`${JSON.stringify(csi)} is not a CSI`, cause);
  }
  if (canonical !== csi) throw bad(`csi ${JSON.stringify(csi)} is not in canonical form`);
  return csi;
}

function bytesOf(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw bad(`${what} must be bytes`);
  return Uint8Array.from(value);
}

function decoded<T>(decode: () => T, what: string): T {
  try {
    return decode();
  } catch (cause) {
    if (cause instanceof SignedObjectError) throw bad(`the ${what} does not decode`, cause);
    throw cause;
  }
}

/** A MAPREF target: a domain name that encodes, not the owner itself. */
function maprefTarget(owner: string, target: unknown): string {
  if (typeof target !== 'string') throw bad('a MAPREF target must be a domain name');
  try {
    encodeRdata(record(owner, 'MAPREF', target, 0), { canonical: true });
  } catch (cause) {
    throw bad(`MAPREF target ${JSON.stringify(target)} is not a domain name`, cause);
  }
  if (namesEqual(target, owner)) throw bad('a MAPREF cannot point at its own name');
  return target;
}

function ttlOf(ttl: unknown): number {
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 0 || ttl > MAX_TTL) {
    throw bad(`TTL ${String(ttl)} is not an integer in 0..${MAX_TTL}`);
  }
  return ttl;
}

function authkeyOf(key: unknown): AuthkeyData {
  const k = key as Partial<AuthkeyData> | null;
  if (
    typeof k !== 'object' ||
    k === null ||
    (k.role !== 'prover' && k.role !== 'csip') ||
    k.algorithm !== DNSSEC_ALGORITHM_ED25519 ||
    !(k.publicKey instanceof Uint8Array) ||
    k.publicKey.length !== ED25519_PUBLIC_KEY_OCTETS ||
    typeof k.notAfter !== 'number' ||
    !Number.isInteger(k.notAfter) ||
    k.notAfter < 0 ||
    k.notAfter > 2 ** 32 - 1
  ) {
    throw bad('an AUTHKEY is a role (prover or csip), algorithm 15, a 32-octet key and notAfter');
  }
  return {
    role: k.role,
    algorithm: k.algorithm,
    notAfter: k.notAfter,
    publicKey: Uint8Array.from(k.publicKey),
  };
}

function authkeyRefOf(key: unknown): AuthkeyRef {
  const k = key as Partial<AuthkeyRef> | null;
  if (
    typeof k !== 'object' ||
    k === null ||
    (k.role !== 'prover' && k.role !== 'csip') ||
    !(k.publicKey instanceof Uint8Array) ||
    k.publicKey.length !== ED25519_PUBLIC_KEY_OCTETS
  ) {
    throw bad('an AUTHKEY is named by a role (prover or csip) and a 32-octet key');
  }
  return { role: k.role, publicKey: Uint8Array.from(k.publicKey) };
}

function bad(message: string, cause?: unknown): StoreError {
  return new StoreError(
    'ERR_STORE_BAD_CHANGE',
    message,
    cause === undefined ? undefined : { cause },
  );
}

// ---------------------------------------------------------------------------------------------
// Planning inside the transaction

/** What {@link planOperation} decided. */
export type OperationPlan =
  | { readonly kind: 'refused'; readonly reason: RefusalReason; readonly message: string }
  | {
      readonly kind: 'apply';
      /** RRset changes, normalized (may be empty: nothing to change). */
      readonly changes: readonly NormalizedChange[];
      /** Anti-replay records to write, each merged with the one it replaces. */
      readonly records: readonly ReplayRecord[];
      readonly removed: number;
    };

/** A MAP record as stored, decoded when it decodes. */
interface StoredMapping {
  readonly bytes: Uint8Array;
  /** Undefined for a record this version cannot decode: kept as is, never judged. */
  readonly mapping: Mapping | undefined;
}

/** Decides an operation against the zone and the anti-replay records as they are now. */
export function planOperation(
  zone: ZoneReader,
  replay: ReplayReader,
  op: PreparedOperation,
): OperationPlan {
  switch (op.kind) {
    case 'publish-mapping':
      return planPublish(zone, replay, op);
    case 'remove-mapping':
      return planRemoval(zone, replay, op);
    case 'revoke':
      return planRevocation(zone, replay, op);
    case 'mapref':
      return planMapref(zone, replay, op);
    case 'add-maprefs':
      return planAddMaprefs(zone, op);
    case 'add-authkeys':
      return planAddAuthkeys(zone, op);
    case 'remove-authkeys':
      return planRemoveAuthkeys(zone, op);
    case 'renew-authkey':
      return planRenewAuthkey(zone, op);
  }
}

type Op<K extends PreparedOperation['kind']> = Extract<PreparedOperation, { kind: K }>;

function planPublish(zone: ZoneReader, replay: ReplayReader, op: Op<'publish-mapping'>) {
  const { name, csi, mapping: m, now } = op;
  if (!isCurrent(m, now)) return refuse('expired', 'the mapping or its attestation has expired');
  const lifetime = attestationLifetime(m.att);
  if (lifetime !== undefined) return lifetime;
  if (op.authorize && !authorized(zone, 'prover', m.att.prover, now)) {
    return refuse('prover-not-authorized', 'the attestation is not by a prover of the range');
  }
  const removed = replay.removal(csi, m.key);
  if (removed !== undefined && isActive(removed, now) && m.seq <= removed.seq) {
    return refuse('stale-seq', `a removal of this key covers seq ${removed.seq}`);
  }
  const stored = mappingsAt(zone, name);
  const own = stored.find((s) => s.mapping !== undefined && equalBytes(s.mapping.key, m.key));
  if (own?.mapping !== undefined) {
    if (equalBytes(own.bytes, op.bytes)) return unchanged();
    if (own.mapping.seq >= m.seq) {
      return refuse('stale-seq', `the stored mapping of this key has seq ${own.mapping.seq}`);
    }
  }
  const holder = currentHolder(replay, csi, m.key, m.att.nbf, stored, now);
  if (holder !== undefined) return holder;
  const kept = stored.filter(({ mapping: o }) => {
    if (o === undefined) return true;
    if (equalBytes(o.key, m.key)) return false;
    if (!isCurrent(o, now)) return false;
    // Design §4/§6: the "new" bit de-lists other keys attested earlier.
    return !(m.new && o.att.nbf < m.att.nbf);
  });
  const all = [...kept, { bytes: op.bytes, mapping: m }];
  if (all.length > MAX_MAPPINGS_PER_CSI) {
    return refuse('too-many-mappings', `a CSI holds at most ${MAX_MAPPINGS_PER_CSI} mappings`);
  }
  if (all.reduce((n, s) => n + s.bytes.length, 0) > MAX_MAP_RRSET_OCTETS) {
    return refuse(
      'too-many-mappings',
      `the mappings of a CSI take at most ${MAX_MAP_RRSET_OCTETS} octets`,
    );
  }
  return apply([mapChange(name, all, now)], [], stored.length - kept.length - (own ? 1 : 0));
}

function planRemoval(zone: ZoneReader, replay: ReplayReader, op: Op<'remove-mapping'>) {
  const { name, removal: r, now } = op;
  const stored = mappingsAt(zone, name);
  const own = stored.find((s) => s.mapping !== undefined && equalBytes(s.mapping.key, r.key));
  // R10: only the key that published a mapping can remove it.
  if (own?.mapping === undefined) return refuse('not-found', 'no mapping of this key at the CSI');
  if (own.mapping.seq > r.seq) {
    return refuse(
      'stale-seq',
      `the stored mapping has seq ${own.mapping.seq}, above the removal's ${r.seq}`,
    );
  }
  const kept = stored.filter(
    (s) => s !== own && (s.mapping === undefined || isCurrent(s.mapping, now)),
  );
  const changes = [mapChange(name, kept, now)];
  if (kept.length === 0 && rrsetAt(zone, name, 'MAPREF').length > 0) {
    changes.push({ op: 'delete', name, type: 'MAPREF' });
  }
  const previous = active(replay.removal(r.csi, r.key), now);
  const record: RemovalRecord = {
    kind: 'removal',
    csi: r.csi,
    key: r.key,
    seq: Math.max(r.seq, previous?.seq ?? 0),
    until: Math.max(removalRecordUntil(now), previous?.until ?? 0),
  };
  return apply(changes, [record], stored.length - kept.length);
}

function planRevocation(zone: ZoneReader, replay: ReplayReader, op: Op<'revoke'>) {
  const { name, revocation: v, now } = op;
  if (op.authorize && !authorized(zone, 'csip', v.csip, now)) {
    return refuse('csip-not-authorized', 'the key is not a CSIP of the range');
  }
  // A revocation covers the past; a `before` in the future would also revoke the next holder's
  // attestations.
  if (v.before > now + MAX_CLOCK_SKEW_SECONDS) {
    return refuse('not-yet-valid', 'revocation.before lies in the future');
  }
  const stored = mappingsAt(zone, name);
  const covered = (m: Mapping | undefined): boolean => m !== undefined && m.att.nbf < v.before;
  const kept = stored.filter(
    (s) => !covered(s.mapping) && (s.mapping === undefined || isCurrent(s.mapping, now)),
  );
  const changes: NormalizedChange[] = [];
  if (kept.length !== stored.length) changes.push(mapChange(name, kept, now));
  if (rrsetAt(zone, name, 'MAPREF').length > 0)
    changes.push({ op: 'delete', name, type: 'MAPREF' });
  const previous = active(replay.revocation(v.csi), now);
  const before = Math.max(v.before, previous?.before ?? 0);
  const record: RevocationRecord = {
    kind: 'revocation',
    csi: v.csi,
    before,
    until: Math.max(revocationRecordUntil(before), previous?.until ?? 0),
  };
  return apply(changes, [record], stored.filter((s) => covered(s.mapping)).length);
}

function planMapref(zone: ZoneReader, replay: ReplayReader, op: Op<'mapref'>) {
  const { name, request: r, now } = op;
  const lifetime = attestationLifetime(r.att);
  if (lifetime !== undefined) return lifetime;
  if (op.authorize && !authorized(zone, 'prover', r.att.prover, now)) {
    return refuse('prover-not-authorized', 'the attestation is not by a prover of the range');
  }
  const seen = replay.request(r.sig);
  if (seen !== undefined && isActive(seen, now)) {
    return refuse('replayed', 'this request was already applied');
  }
  const holder = currentHolder(replay, r.csi, r.key, r.att.nbf, mappingsAt(zone, name), now);
  if (holder !== undefined) return holder;
  const targets = rrsetAt(zone, name, 'MAPREF').flatMap((rr) =>
    rr.type === 'MAPREF' ? [rr.data] : [],
  );
  const changes: NormalizedChange[] = [];
  if (r.target === null) {
    if (targets.length > 0) changes.push({ op: 'delete', name, type: 'MAPREF' });
  } else if (!targets.some((t) => namesEqual(t, r.target as string))) {
    if (targets.length >= MAX_MAPREFS_PER_CSI) {
      return refuse(
        'too-many-maprefs',
        `a CSI holds at most ${MAX_MAPREFS_PER_CSI} MAPREF records`,
      );
    }
    changes.push(maprefChange(name, [...targets, r.target], MAPREF_TTL_SECONDS));
  }
  const record: MaprefRequestRecord = {
    kind: 'mapref-request',
    id: r.sig,
    until: requestRecordUntil(r.iat),
  };
  return apply(changes, [record], 0);
}

function planAddMaprefs(zone: ZoneReader, op: Op<'add-maprefs'>) {
  const targets = rrsetAt(zone, op.name, 'MAPREF').flatMap((rr) =>
    rr.type === 'MAPREF' ? [rr.data] : [],
  );
  const added = op.targets.filter(
    (t, i) =>
      !targets.some((s) => namesEqual(s, t)) && op.targets.findIndex((u) => namesEqual(u, t)) === i,
  );
  if (added.length === 0) return unchanged();
  if (targets.length + added.length > MAX_MAPREFS_PER_CSI) {
    return refuse('too-many-maprefs', `a CSI holds at most ${MAX_MAPREFS_PER_CSI} MAPREF records`);
  }
  return apply([maprefChange(op.name, [...targets, ...added], op.ttl)], [], 0);
}

function planAddAuthkeys(zone: ZoneReader, op: Op<'add-authkeys'>) {
  const existing = rrsetAt(zone, op.name, 'AUTHKEY');
  const id = (k: AuthkeyData): string =>
    `${k.role}/${k.algorithm}/${Buffer.from(k.publicKey).toString('hex')}`;
  const listed = new Set(existing.flatMap((rr) => (rr.type === 'AUTHKEY' ? [id(rr.data)] : [])));
  const added: AuthkeyData[] = [];
  for (const key of op.keys) {
    if (listed.has(id(key))) continue;
    listed.add(id(key));
    added.push(key);
  }
  if (added.length === 0) return unchanged();
  // One TTL per RRset (RFC 2181 §5.2): the lowest of the zone's and the one asked for.
  const ttl = Math.min(op.ttl ?? MAX_TTL, existing[0]?.ttl ?? op.ttl ?? DEFAULT_APEX_TTL);
  const records = [
    ...existing.map((rr) => ({ ...rr, ttl })),
    ...added.map((k) => record(op.name, 'AUTHKEY', k, ttl)),
  ];
  return apply([{ op: 'put', name: op.name, type: 'AUTHKEY', records }], [], 0);
}

/**
 * Deletes the named keys from the apex AUTHKEY RRset. Decided here, inside the transaction, from
 * the RRset as it is now: a key added concurrently (another `add-authkeys`) stays, and a key
 * already removed by another writer makes this removal `not-found` rather than a silent no-op,
 * so the operator learns the RRset was not as expected. Attestations of a removed prover stop
 * verifying at resolvers once their copy of the RRset expires (its TTL: `authkeyTtl`), and the
 * registrar refuses them at once (`prover-not-authorized`, checked in the transaction).
 */
function planRemoveAuthkeys(zone: ZoneReader, op: Op<'remove-authkeys'>) {
  const existing = authkeysAt(zone, op.name);
  const missing = op.keys.find((ref) => !existing.some((rr) => isRef(rr.data, ref)));
  if (missing !== undefined) {
    return refuse(
      'not-found',
      `no AUTHKEY ${missing.role} ${Buffer.from(missing.publicKey).toString('base64')} at ${op.name}`,
    );
  }
  const kept = existing.filter((rr) => !op.keys.some((ref) => isRef(rr.data, ref)));
  if (kept.length === 0) {
    return apply([{ op: 'delete', name: op.name, type: 'AUTHKEY' }], [], 0);
  }
  const ttl = op.ttl ?? kept[0]?.ttl ?? DEFAULT_APEX_TTL;
  const records = kept.map((rr) => ({ ...rr, ttl }));
  return apply([{ op: 'put', name: op.name, type: 'AUTHKEY', records }], [], 0);
}

/**
 * Sets the `notAfter` of one listed AUTHKEY. The same `notAfter` (and TTL) again changes
 * nothing, so a renewal retried after a crash is harmless.
 */
function planRenewAuthkey(zone: ZoneReader, op: Op<'renew-authkey'>) {
  const existing = authkeysAt(zone, op.name);
  const listed = existing.find((rr) => isRef(rr.data, op.key));
  if (listed === undefined) {
    return refuse(
      'not-found',
      `no AUTHKEY ${op.key.role} ${Buffer.from(op.key.publicKey).toString('base64')} at ${op.name}`,
    );
  }
  const ttl = op.ttl ?? listed.ttl;
  if (listed.data.notAfter === op.notAfter && listed.ttl === ttl) return unchanged();
  const records = existing.map((rr) =>
    rr === listed ? { ...rr, ttl, data: { ...rr.data, notAfter: op.notAfter } } : { ...rr, ttl },
  );
  return apply([{ op: 'put', name: op.name, type: 'AUTHKEY', records }], [], 0);
}

function authkeysAt(zone: ZoneReader, name: string): Array<RecordOf<'AUTHKEY'>> {
  return rrsetAt(zone, name, 'AUTHKEY').flatMap((rr) => (rr.type === 'AUTHKEY' ? [rr] : []));
}

function isRef(key: AuthkeyData, ref: AuthkeyRef): boolean {
  return key.role === ref.role && equalBytes(key.publicKey, ref.publicKey);
}

/**
 * Refuses an object of `key` attested at `nbf` that a revocation or another key's "new" mapping
 * covers; undefined when the key may act.
 */
function currentHolder(
  replay: ReplayReader,
  csi: string,
  key: Uint8Array,
  nbf: number,
  stored: readonly StoredMapping[],
  now: number,
): OperationPlan | undefined {
  const revoked = replay.revocation(csi);
  if (revoked !== undefined && isActive(revoked, now) && nbf < revoked.before) {
    return refuse('revoked', 'the CSIP revoked attestations of this age');
  }
  const newer = stored.some(
    ({ mapping: o }) =>
      o !== undefined && isCurrent(o, now) && o.new && !equalBytes(o.key, key) && o.att.nbf > nbf,
  );
  if (newer) {
    return refuse(
      'superseded',
      'a newer holder of the CSI set the "new" bit; this key is de-listed',
    );
  }
  return undefined;
}

function attestationLifetime(att: Attestation): OperationPlan | undefined {
  if (att.exp - att.nbf <= MAX_ATTESTATION_LIFETIME_SECONDS) return undefined;
  return refuse(
    'attestation-lifetime',
    `the attestation is valid for more than ${MAX_ATTESTATION_LIFETIME_SECONDS} seconds`,
  );
}

function authorized(zone: ZoneReader, role: AuthkeyRole, key: Uint8Array, now: number): boolean {
  return isAuthorizedKey(rrsetAt(zone, zone.origin, 'AUTHKEY'), role, key, now);
}

function rrsetAt(
  zone: ZoneReader,
  name: string,
  type: 'MAP' | 'MAPREF' | 'AUTHKEY',
): readonly ResourceRecord[] {
  return zone.node(name)?.get(type)?.records ?? [];
}

function mappingsAt(zone: ZoneReader, name: string): StoredMapping[] {
  return rrsetAt(zone, name, 'MAP').flatMap((r) =>
    r.type === 'MAP' ? [{ bytes: r.data, mapping: tryDecode(r.data) }] : [],
  );
}

/** The MAP RRset change that leaves exactly `kept` at `name`. */
function mapChange(name: string, kept: readonly StoredMapping[], now: number): NormalizedChange {
  if (kept.length === 0) return { op: 'delete', name, type: 'MAP' };
  const ttl = Math.min(...kept.map((k) => mapTtl(k.mapping, now)));
  return {
    op: 'put',
    name,
    type: 'MAP',
    records: kept.map((k) => record(name, 'MAP', k.bytes, ttl)),
  };
}

function maprefChange(name: string, targets: readonly string[], ttl: number): NormalizedChange {
  return {
    op: 'put',
    name,
    type: 'MAPREF',
    records: targets.map((t) => record(name, 'MAPREF', t, ttl)),
  };
}

function active<T extends ReplayRecord>(record: T | undefined, now: number): T | undefined {
  return record !== undefined && isActive(record, now) ? record : undefined;
}

function refuse(reason: RefusalReason, message: string): OperationPlan {
  return { kind: 'refused', reason, message };
}

function unchanged(): OperationPlan {
  return { kind: 'apply', changes: [], records: [], removed: 0 };
}

function apply(
  changes: readonly NormalizedChange[],
  records: readonly ReplayRecord[],
  removed: number,
): OperationPlan {
  return { kind: 'apply', changes, records, removed };
}

function tryDecode(bytes: Uint8Array): Mapping | undefined {
  try {
    return decodeMapping(bytes);
  } catch (error) {
    if (error instanceof SignedObjectError) return undefined;
    throw error;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Expired mappings (R9), for `resign`

/**
 * Whether the MAP RRset of `node` may hold a mapping that has expired at `now`, by a quick read
 * of each record's expiry (`mapping-expiry-hint.ts`): what `resign` walks every node with. A
 * record whose expiry cannot be read is not a mapping (answering serves it as stored), so it
 * never counts.
 */
export function mayHoldExpiredMappings(node: StoredNode, now: number): boolean {
  for (const rr of node.get('MAP')?.records ?? []) {
    if (rr.type !== 'MAP') continue;
    const expiry = mappingExpiryHint(rr.data);
    if (expiry !== undefined && expiry <= now) return true;
  }
  return false;
}

/**
 * The change that deletes from the MAP RRset at `name` the mappings that have expired at `now`
 * (min(`exp`, `att.exp`) ≤ now, design §6), decoded strictly: a put of the others, its TTL
 * computed again, or a delete when none is left; undefined when none has expired. Records that
 * do not decode as mappings stay. The MAPREF RRset is left alone: it belongs to the CSI, and
 * the next publish may need it.
 */
export function expiredMappingsChange(
  zone: ZoneReader,
  name: string,
  now: number,
): NormalizedChange | undefined {
  const stored = mappingsAt(zone, name);
  const kept = stored.filter((s) => s.mapping === undefined || isCurrent(s.mapping, now));
  return kept.length === stored.length ? undefined : mapChange(name, kept, now);
}

// ---------------------------------------------------------------------------------------------
// Running an operation in a store's transaction

/** What a store commits for one operation (nothing when it was refused). */
export interface OperationRun {
  /**
   * The operation's outcome once its write is committed at `serial`: the zone's serial after
   * that commit (a group commit, `zone-signer.ts` `planSerial`, steps it once for every write it
   * holds; a commit that changed nothing leaves it as it was).
   */
  outcome(serial: number): OperationOutcome;
  /** Nodes to write (signed, the SOA not yet bumped: `planSerial` does); empty when nothing changed. */
  readonly writes: ZoneWrites;
  readonly records: readonly ReplayRecord[];
  /** What readers may see change, for the change log; undefined when no record changed. */
  readonly changed: ChangedNames | undefined;
}

/**
 * Applies and operations one group commit holds at most (the LMDB and memory stores; the
 * PostgreSQL store has `PG_GROUP_MAX_WRITES`): bounds the work of one commit, so one never holds
 * a zone long; the writes queued beyond it go to the next group.
 */
export const GROUP_MAX_WRITES = 1024;

/**
 * What one `apply` or `applyOperation` contributes to a group commit, planned over its zone as
 * the group's writes before it left it, and its result once the group's serial is known.
 */
export interface GroupedWritePlan {
  readonly writes: ZoneWrites;
  readonly records: readonly ReplayRecord[];
  readonly changed: ChangedNames | undefined;
  result(serial: number): unknown;
}

/** An `apply` or `applyOperation` waiting for its group commit. */
export interface GroupedWrite {
  readonly apex: string;
  /** Plans the write (see {@link GroupedWritePlan}); throws to refuse it, adding nothing. */
  plan(zone: ZoneReader, replay: ReplayReader, sign: () => ZoneSigner): GroupedWritePlan;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** The {@link GroupedWrite} plan of an apply of `changes` (normalized). */
export function applyPlan(changes: readonly NormalizedChange[]): GroupedWrite['plan'] {
  return (zone, _replay, sign) => {
    const writes = planChanges(zone, changes, sign());
    return {
      writes,
      records: [],
      changed: changedNames(changes, writes.keys()),
      result: (serial) => ({ serial }),
    };
  };
}

/** The {@link GroupedWrite} plan of an operation (see {@link runOperation}). */
export function operationPlan(prepared: PreparedOperation): GroupedWrite['plan'] {
  return (zone, replay, sign) => {
    const run = runOperation(zone, replay, prepared, sign);
    return {
      writes: run.writes,
      records: run.records,
      changed: run.changed,
      result: (serial) => run.outcome(serial),
    };
  };
}

/**
 * Plans `op` against `zone` and `replay` (both read inside the store's write transaction) and,
 * when records change, signs them (`planChanges`); the store then steps the serial once for
 * its whole group commit (`planSerial`) and commits `writes` and `records` in the same
 * transaction, or nothing when the outcome is a refusal. `sign` is called only when something
 * is to be signed.
 */
export function runOperation(
  zone: ZoneReader,
  replay: ReplayReader,
  op: PreparedOperation,
  sign: () => ZoneSigner,
): OperationRun {
  const plan = planOperation(zone, replay, op);
  if (plan.kind === 'refused') {
    const { reason, message } = plan;
    return {
      outcome: () => ({ kind: 'refused', reason, message }),
      writes: new Map(),
      records: [],
      changed: undefined,
    };
  }
  const removed = plan.removed;
  if (plan.changes.length === 0) {
    return {
      outcome: (serial) => ({ kind: 'applied', serial, changed: false, removed }),
      writes: new Map(),
      records: plan.records,
      changed: undefined,
    };
  }
  const writes = planChanges(zone, plan.changes, sign());
  return {
    outcome: (serial) => ({ kind: 'applied', serial, changed: true, removed }),
    writes,
    records: plan.records,
    changed: changedNames(plan.changes, writes.keys()),
  };
}
