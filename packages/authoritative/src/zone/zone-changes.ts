import {
  encodeRdata,
  isSubdomain,
  typeToCode,
  type ResourceRecord,
  type RRType,
} from '@mimi-discovery/common';
import { ownerName as storedName } from './owner-name.js';
import { StoreError } from '../store/store-error.js';
import type { RRsetChange } from '../store/store-types.js';

/**
 * Checks on the changes given to `DiscoveryStore.apply`, before anything is read or written:
 * owners in the zone, allowed types, records that match their RRset and encode. The result is
 * the normalized form every store applies: canonical owner names, duplicate records dropped and
 * one TTL per RRset (the lowest, RFC 2181 §5.2).
 *
 * Worked example, zone `4.4.e164.mimi.arpa`: a put of MAP at `8.1…4.4.e164.mimi.arpa.` with two
 * records of TTL 300 and 600 becomes one RRset of TTL 300 owned by `8.1…4.4.e164.mimi.arpa`; a
 * put of SOA, a delete of RRSIG, or a MAP owned by `example.com` are refused with
 * `ERR_STORE_BAD_CHANGE` or `ERR_STORE_OUT_OF_ZONE`.
 */

/** Changes one `apply` may carry; one transaction should stay short. */
export const MAX_CHANGES_PER_APPLY = 1024;
/** Records one RRset may hold. */
export const MAX_RECORDS_PER_RRSET = 256;
/** Largest TTL (RFC 2181 §8: a TTL is at most 2^31 - 1). */
const MAX_TTL = 2 ** 31 - 1;

/**
 * Types a change may put or delete. SOA, DNSKEY and every DNSSEC record are the store's own;
 * ZONEMD only at the apex, where putting one (a placeholder, RFC 8976 §3.1) has the store keep
 * the zone's digest and NSEC3 chain from then on (`zone-signer.ts`), and deleting it stops that;
 * CNAME has no role in the discovery namespace (design §6) and would break the answers at its
 * owner, so it is not accepted either. KEYCONF (the keys of an oblivious gateway or a token
 * issuer) goes at any owner in the zone: it belongs at the service's name, not at the apex.
 */
export const CHANGEABLE_TYPES: ReadonlySet<RRType> = new Set<RRType>([
  'NS',
  'DS',
  'A',
  'AAAA',
  'TXT',
  'SVCB',
  'MAP',
  'MAPREF',
  'AUTHKEY',
  'KEYCONF',
  'ZONEMD',
]);

/** One change after {@link normalizeChanges}: canonical owner, records ready to store. */
export type NormalizedChange =
  | { op: 'put'; name: string; type: RRType; records: ResourceRecord[] }
  | { op: 'delete'; name: string; type: RRType };

/**
 * Validates and normalizes the changes for zone `origin` (canonical). Throws `StoreError`
 * (`ERR_STORE_BAD_CHANGE`, `ERR_STORE_OUT_OF_ZONE`) on the first bad change.
 */
export function normalizeChanges(
  origin: string,
  changes: readonly RRsetChange[],
): NormalizedChange[] {
  if (!Array.isArray(changes)) throw bad('changes must be an array');
  if (changes.length > MAX_CHANGES_PER_APPLY) {
    throw bad(`${changes.length} changes in one apply, over ${MAX_CHANGES_PER_APPLY}`);
  }
  const seen = new Set<string>();
  return changes.map((change, index) => {
    const normalized = normalizeChange(origin, change, index);
    const id = `${normalized.name} ${normalized.type}`;
    if (seen.has(id)) throw bad(`change ${index}: ${id} is changed twice in one apply`);
    seen.add(id);
    return normalized;
  });
}

function normalizeChange(origin: string, change: RRsetChange, index: number): NormalizedChange {
  if (typeof change !== 'object' || change === null) throw bad(`change ${index} is not an object`);
  if (change.op !== 'put' && change.op !== 'delete') {
    throw bad(`change ${index}: op must be 'put' or 'delete'`);
  }
  const name = ownerName(change.name, index);
  if (!isSubdomain(name, origin)) {
    throw new StoreError(
      'ERR_STORE_OUT_OF_ZONE',
      `change ${index}: ${name} is not in zone ${origin}`,
    );
  }
  const type = change.type;
  let known = false;
  try {
    known = typeof type === 'string' && typeToCode(type) >= 0;
  } catch {
    known = false;
  }
  if (!known || !CHANGEABLE_TYPES.has(type)) {
    throw bad(`change ${index}: type ${String(type)} cannot be changed through apply`);
  }
  if ((type === 'AUTHKEY' || type === 'ZONEMD') && name !== origin) {
    throw bad(`change ${index}: ${type} belongs at the zone apex ${origin}, not ${name}`);
  }
  if (type === 'DS' && name === origin) {
    throw bad(`change ${index}: the DS of ${origin} belongs in its parent zone`);
  }
  if (change.op === 'delete') return { op: 'delete', name, type };
  return { op: 'put', name, type, records: normalizeRecords(change.records, name, type, index) };
}

function ownerName(name: unknown, index: number): string {
  if (typeof name !== 'string') throw bad(`change ${index}: name must be a string`);
  try {
    return storedName(name);
  } catch (cause) {
    throw bad(`change ${index}: ${JSON.stringify(name)} is not a domain name`, cause);
  }
}

function normalizeRecords(
  records: unknown,
  name: string,
  type: RRType,
  index: number,
): ResourceRecord[] {
  if (!Array.isArray(records) || records.length === 0) {
    throw bad(`change ${index}: a put needs at least one record (use delete to remove an RRset)`);
  }
  if (records.length > MAX_RECORDS_PER_RRSET) {
    throw bad(`change ${index}: ${records.length} records, over ${MAX_RECORDS_PER_RRSET}`);
  }
  const out: ResourceRecord[] = [];
  const rdatas = new Set<string>();
  let ttl = MAX_TTL;
  for (const rr of records as readonly ResourceRecord[]) {
    if (typeof rr !== 'object' || rr === null)
      throw bad(`change ${index}: a record is not an object`);
    if (rr.type !== type)
      throw bad(`change ${index}: a ${String(rr.type)} record in a ${type} RRset`);
    if (typeof rr.name !== 'string' || ownerName(rr.name, index) !== name) {
      throw bad(`change ${index}: record owner ${String(rr.name)} is not ${name}`);
    }
    if (rr.class !== 'IN') throw bad(`change ${index}: class ${String(rr.class)} is not IN`);
    if (!Number.isInteger(rr.ttl) || rr.ttl < 0 || rr.ttl > MAX_TTL) {
      throw bad(`change ${index}: TTL ${String(rr.ttl)} is not an integer in 0..${MAX_TTL}`);
    }
    let rdata: Uint8Array;
    try {
      rdata = encodeRdata(rr, { canonical: true });
    } catch (cause) {
      throw bad(`change ${index}: a ${type} record of ${name} does not encode`, cause);
    }
    ttl = Math.min(ttl, rr.ttl);
    // RFC 2181 §5: an RRset holds each RDATA once (compared in canonical form, RFC 4034 §6.3).
    const id = Buffer.from(rdata).toString('hex');
    if (rdatas.has(id)) continue;
    rdatas.add(id);
    out.push({ ...rr, name });
  }
  return out.map((rr) => (rr.ttl === ttl ? rr : { ...rr, ttl }));
}

function bad(message: string, cause?: unknown): StoreError {
  return new StoreError(
    'ERR_STORE_BAD_CHANGE',
    message,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * What one write changed, for caches of answers: the owner names whose answers may now differ,
 * or `'all'` when answers at other names may differ too. A delegation's records (NS, DS, and the
 * glue and `_dns` endpoints a referral carries: A, AAAA, SVCB) change the referral of every
 * name below their owner, so a change to any of them is `'all'`; every other type changes the
 * answers at its owner only, and at the owner's ancestors, which may start or stop being empty
 * non-terminals (a cache clears those itself).
 */
export type ChangedNames = readonly string[] | 'all';

/** Types whose change reaches answers below their owner (see {@link ChangedNames}). */
const DELEGATION_TYPES: ReadonlySet<RRType> = new Set<RRType>(['NS', 'DS', 'A', 'AAAA', 'SVCB']);

/** The {@link ChangedNames} of an apply: `writes` holds every node it rewrote (SOA included). */
export function changedNames(
  changes: readonly NormalizedChange[],
  written: Iterable<string>,
): ChangedNames {
  return changes.some((change) => DELEGATION_TYPES.has(change.type)) ? 'all' : [...written];
}

/** The union of what the writes of a group commit changed, gathered one write at a time. */
export interface ChangedUnion {
  /** Adds one write's names (undefined: it changed no record). */
  add(changed: ChangedNames | undefined): void;
  /** The union so far: undefined when no write changed a record, `'all'` when any one is. */
  readonly names: ChangedNames | undefined;
}

/** An empty {@link ChangedUnion}: linear in the names added, whatever the group's size. */
export function changedUnion(): ChangedUnion {
  let all = false;
  let any = false;
  const names = new Set<string>();
  return {
    add(changed) {
      if (changed === undefined) return;
      any = true;
      if (changed === 'all') all = true;
      else if (!all) for (const name of changed) names.add(name);
    },
    get names() {
      if (!any) return undefined;
      return all ? 'all' : [...names];
    },
  };
}

/** Entries of a store's change log: a cache further behind than this starts afresh. */
export const CHANGE_LOG_ENTRIES = 4096;

/** What changed between two generations of a store (`DiscoveryStore.changesSince`). */
export interface StoreChanges {
  /** The generation now. */
  readonly generation: number;
  /** Owner names whose answers may differ since the generation asked about, or `'all'`. */
  readonly names: ChangedNames;
}

/**
 * What changed between generation `since` and `now`, from a change log that returns the entry of
 * one generation (undefined once it fell out of the log). A generation from the future, or one
 * further behind than {@link CHANGE_LOG_ENTRIES}, is `'all'`. Bounded by that many entries.
 */
export function changesBetween(
  since: number,
  now: number,
  entry: (generation: number) => ChangedNames | undefined,
): StoreChanges {
  if (since === now) return { generation: now, names: [] };
  if (since > now || now - since > CHANGE_LOG_ENTRIES) return { generation: now, names: 'all' };
  const names = new Set<string>();
  for (let g = since + 1; g <= now; g++) {
    const changed = entry(g);
    if (changed === undefined || changed === 'all') return { generation: now, names: 'all' };
    for (const name of changed) names.add(name);
  }
  return { generation: now, names: [...names] };
}
