import { createHash } from 'node:crypto';
import { ZoneError } from './errors.js';
import { canonicalName, isSubdomain, nameWireLength, parseLabels } from './names.js';
import { record, type RecordOf, type ResourceRecord, type ZonemdData } from './records.js';
import { encodeRecord, typeToCode } from './wire.js';

/**
 * The message digest of a whole zone (RFC 8976, ZONEMD): what lets a copy of a zone that came by
 * transfer be checked as a whole, the unsigned delegation NS and glue included, which no RRSIG
 * covers (RFC 4035 §2.2). Pure functions of the zone's records.
 *
 * The SIMPLE scheme (RFC 8976 §3.3): every record of the zone, in canonical form (RFC 4034 §6.2:
 * owner and the names in NS, SOA and RRSIG RDATA lowercased, the TTL as in the zone) and in
 * canonical order (RFC 4034 §6.3: owner, then type code, then RDATA as octet strings), once
 * each, is fed to the hash, except (§3.3.1) the apex ZONEMD RRset itself and the RRSIGs that
 * cover it, and anything outside the zone. Occluded data and glue are included; a ZONEMD below
 * the apex is data like any other.
 *
 * Worked example (RFC 8976 Appendix A.1): the zone `example` with SOA (serial 2018031900), two
 * NS, `ns1` A and `ns2` AAAA digests with SHA-384 to `c68090d9…e730044c`; the apex ZONEMD
 * `2018031900 1 1 c68090d9…` states it, and a copy in which one octet of any record differs
 * digests to something else.
 */

/** ZONEMD scheme SIMPLE (RFC 8976 §5.2): the whole zone, digested in one pass. */
export const ZONEMD_SCHEME_SIMPLE = 1;
/** ZONEMD hash algorithm SHA-384 (RFC 8976 §5.3): the one this project publishes. */
export const ZONEMD_HASH_SHA384 = 1;
/** ZONEMD hash algorithm SHA-512 (RFC 8976 §5.3): verified when a zone carries it. */
export const ZONEMD_HASH_SHA512 = 2;

/** The node:crypto names of the hash algorithms this module computes. */
const HASHES: ReadonlyMap<number, string> = new Map([
  [ZONEMD_HASH_SHA384, 'sha384'],
  [ZONEMD_HASH_SHA512, 'sha512'],
]);

/** Whether {@link zoneDigest} computes digests of this scheme and hash algorithm. */
export function zonemdSupported(scheme: number, hashAlgorithm: number): boolean {
  return scheme === ZONEMD_SCHEME_SIMPLE && HASHES.has(hashAlgorithm);
}

/**
 * The digest of the zone `origin` (RFC 8976 §3.3, scheme SIMPLE) over `records`, in any order
 * and with duplicates: they are ordered and deduplicated here. Records outside the zone, the
 * apex ZONEMD RRset and its RRSIGs are left out (§3.3.1). Throws `ZoneError` `ERR_ZONE_ZONEMD`
 * for a scheme or hash algorithm this module does not compute (see {@link zonemdSupported}).
 */
export function zoneDigest(
  origin: string,
  records: readonly ResourceRecord[],
  hashAlgorithm: number = ZONEMD_HASH_SHA384,
  scheme: number = ZONEMD_SCHEME_SIMPLE,
): Uint8Array {
  const hash = createHash(hashName(hashAlgorithm, scheme));
  const apex = canonicalName(origin);
  for (const wire of canonicalZone(apex, records)) hash.update(wire);
  return new Uint8Array(hash.digest());
}

/**
 * The digest of {@link zoneDigest}, computed in one pass over a zone given piece by piece,
 * owner after owner in canonical order (RFC 4034 §6.1: the order a store reads a zone in), so
 * that a zone too large to hold is digested as it streams by. The records of one owner may come
 * in any order and over several calls: they are held until the next owner starts, then ordered
 * and deduplicated as {@link zoneDigest} orders them, so memory holds one owner's records.
 *
 * Worked example: `update([soa, ns])`, `update([nsRrsig, wwwA])`, `digest()` over the zone
 * `example` gives `zoneDigest('example', [soa, ns, nsRrsig, wwwA])`; an `update` with an owner
 * that sorts before `www.example` after it fails.
 */
export interface ZoneDigester {
  /**
   * Adds records; records outside the zone, the apex ZONEMD RRset and its RRSIGs are left out
   * (RFC 8976 §3.3.1). Throws `ZoneError` `ERR_ZONE_ZONEMD` for an owner that sorts before one
   * given earlier.
   */
  update(records: readonly ResourceRecord[]): void;
  /** The digest of everything given; the digester cannot be used after. */
  digest(): Uint8Array;
}

/**
 * A {@link ZoneDigester} for the zone `origin`. Throws `ZoneError` `ERR_ZONE_ZONEMD` for a
 * scheme or hash algorithm this module does not compute (see {@link zonemdSupported}).
 */
export function createZoneDigester(
  origin: string,
  hashAlgorithm: number = ZONEMD_HASH_SHA384,
  scheme: number = ZONEMD_SCHEME_SIMPLE,
): ZoneDigester {
  const hash = createHash(hashName(hashAlgorithm, scheme));
  const apex = canonicalName(origin);
  let owner: string | undefined;
  let ownerKey: Buffer | undefined;
  let held: ResourceRecord[] = [];
  const flush = (): void => {
    for (const wire of canonicalZone(apex, held)) hash.update(wire);
    held = [];
  };
  return {
    update(records) {
      for (const rr of records) {
        if (!isSubdomain(rr.name, apex)) continue;
        const name = canonicalName(rr.name);
        if (name !== owner) {
          const key = orderKey(name);
          if (ownerKey !== undefined && Buffer.compare(key, ownerKey) <= 0) {
            throw new ZoneError(
              'ERR_ZONE_ZONEMD',
              `${name} comes after ${owner}: a one-pass digest needs owners in canonical order`,
            );
          }
          flush();
          owner = name;
          ownerKey = key;
        }
        held.push(rr);
      }
    },
    digest() {
      flush();
      return new Uint8Array(hash.digest());
    },
  };
}

/** The node:crypto name of a supported hash; throws `ERR_ZONE_ZONEMD` otherwise. */
function hashName(hashAlgorithm: number, scheme: number): string {
  const name = HASHES.get(hashAlgorithm);
  if (scheme !== ZONEMD_SCHEME_SIMPLE || name === undefined) {
    throw new ZoneError(
      'ERR_ZONE_ZONEMD',
      `ZONEMD scheme ${scheme} with hash algorithm ${hashAlgorithm} is not supported`,
    );
  }
  return name;
}

/** One record ready to be ordered: its canonical wire form and where its RDATA starts. */
interface Entry {
  readonly owner: Buffer;
  readonly type: number;
  readonly wire: Uint8Array;
  readonly rdataAt: number;
}

/**
 * The zone's records in canonical wire form and canonical order, duplicates once, the apex
 * ZONEMD RRset and its RRSIGs and out-of-zone records left out (RFC 8976 §3.3.1).
 */
function canonicalZone(apex: string, records: readonly ResourceRecord[]): Uint8Array[] {
  const keys = new Map<string, Buffer>();
  const entries: Entry[] = [];
  for (const rr of records) {
    if (!isSubdomain(rr.name, apex)) continue;
    const owner = canonicalName(rr.name);
    if (owner === apex && isApexZonemd(rr)) continue;
    let key = keys.get(owner);
    if (key === undefined) {
      key = orderKey(owner);
      keys.set(owner, key);
    }
    const wire = encodeRecord(rr, { canonical: true });
    entries.push({
      owner: key,
      type: typeToCode(rr.type),
      wire,
      rdataAt: nameWireLength(owner) + 10,
    });
  }
  entries.sort(
    (a, b) =>
      Buffer.compare(a.owner, b.owner) ||
      a.type - b.type ||
      Buffer.compare(a.wire.subarray(a.rdataAt), b.wire.subarray(b.rdataAt)),
  );
  const out: Uint8Array[] = [];
  let previous: Entry | undefined;
  for (const entry of entries) {
    // RFC 8976 §3.3.1.1: an RR equal in owner, class, type and RDATA to the one before is a
    // duplicate (class sits between type and TTL: compared with the RDATA below).
    if (previous !== undefined && sameRecord(previous, entry)) continue;
    out.push(entry.wire);
    previous = entry;
  }
  return out;
}

function sameRecord(a: Entry, b: Entry): boolean {
  if (a.type !== b.type || !a.owner.equals(b.owner)) return false;
  const classOf = (e: Entry): number =>
    ((e.wire[e.rdataAt - 8] as number) << 8) | (e.wire[e.rdataAt - 7] as number);
  return (
    classOf(a) === classOf(b) &&
    Buffer.from(a.wire.subarray(a.rdataAt)).equals(Buffer.from(b.wire.subarray(b.rdataAt)))
  );
}

/** The apex ZONEMD RRset, or an RRSIG over it (RFC 8976 §3.3.1: both left out). */
function isApexZonemd(rr: ResourceRecord): boolean {
  return rr.type === 'ZONEMD' || (rr.type === 'RRSIG' && rr.data.typeCovered === 'ZONEMD');
}

/**
 * A key whose octet order is the canonical order of names (RFC 4034 §6.1): labels from the
 * root down, each octet lowercased and written as two octets (value + 1), each label closed by
 * two zero octets, so a label sorts before every longer label it starts.
 */
function orderKey(name: string): Buffer {
  const labels = name === '.' ? [] : parseLabels(name);
  let size = 0;
  for (const label of labels) size += label.length * 2 + 2;
  const key = Buffer.alloc(size);
  let at = 0;
  for (let i = labels.length - 1; i >= 0; i--) {
    for (const octet of labels[i] as Uint8Array) {
      const lower = octet >= 0x41 && octet <= 0x5a ? octet + 0x20 : octet;
      key.writeUInt16BE(lower + 1, at);
      at += 2;
    }
    at += 2;
  }
  return key;
}

/** Options of {@link zonemdRecord}. */
export interface ZonemdRecordOptions {
  /** Default {@link ZONEMD_HASH_SHA384}. */
  readonly hashAlgorithm?: number;
  /** Default the SOA's TTL, as RFC 8976 §2 advises. */
  readonly ttl?: number;
}

/**
 * The apex ZONEMD record of `records` (a zone holding its SOA): the SOA's serial, scheme
 * SIMPLE, the digest of the zone as given (RFC 8976 §3: computed once every other record,
 * RRSIGs included, is final). Throws `ZoneError` `ERR_ZONE_NO_SOA` without an SOA at the origin.
 */
export function zonemdRecord(
  origin: string,
  records: readonly ResourceRecord[],
  options: ZonemdRecordOptions = {},
): RecordOf<'ZONEMD'> {
  const apex = canonicalName(origin);
  const soa = apexSoa(apex, records);
  if (soa === undefined) {
    throw new ZoneError('ERR_ZONE_NO_SOA', `zone ${origin} has no SOA record at its origin`);
  }
  const hashAlgorithm = options.hashAlgorithm ?? ZONEMD_HASH_SHA384;
  const data: ZonemdData = {
    serial: soa.data.serial,
    scheme: ZONEMD_SCHEME_SIMPLE,
    hashAlgorithm,
    digest: zoneDigest(apex, records, hashAlgorithm),
  };
  return record(apex, 'ZONEMD', data, options.ttl ?? soa.ttl);
}

/**
 * `records` (a whole zone) with its apex ZONEMD RRset computed anew and signed by `sign`, in
 * place of the one it had, when it has one (a placeholder, RFC 8976 §3.1, or a stale digest);
 * unchanged otherwise. One record per supported hash algorithm the RRset listed (SHA-384 when
 * it listed none), at the RRset's TTL. Everything else must be final, RRSIGs included: the
 * ZONEMD is the last record of a zone to be computed (RFC 8976 §3).
 */
export function refreshZonemd(
  origin: string,
  records: readonly ResourceRecord[],
  sign: (rrset: readonly ResourceRecord[]) => RecordOf<'RRSIG'>,
): ResourceRecord[] {
  const apex = canonicalName(origin);
  const old = records.filter(
    (rr): rr is RecordOf<'ZONEMD'> => rr.type === 'ZONEMD' && canonicalName(rr.name) === apex,
  );
  const first = old[0];
  if (first === undefined) return [...records];
  const soa = apexSoa(apex, records);
  if (soa === undefined) {
    throw new ZoneError('ERR_ZONE_NO_SOA', `zone ${origin} has no SOA record at its origin`);
  }
  const fresh = zonemdRRset(apex, old, soa.data.serial, (hashAlgorithm) =>
    zoneDigest(apex, records, hashAlgorithm),
  );
  const out: ResourceRecord[] = [];
  for (const rr of records) {
    const apexZonemd = canonicalName(rr.name) === apex && isApexZonemd(rr);
    if (rr === first) out.push(...fresh, sign(fresh));
    if (!apexZonemd) out.push(rr);
  }
  return out;
}

/**
 * The hash algorithms a zone's ZONEMD RRset `old` is computed again with: each supported one it
 * lists, SHA-384 when it lists none (RFC 8976 §2: a zone states the digests it carries).
 */
export function zonemdAlgorithms(old: readonly RecordOf<'ZONEMD'>[]): number[] {
  const algorithms = [
    ...new Set(
      old
        .filter((rr) => zonemdSupported(rr.data.scheme, rr.data.hashAlgorithm))
        .map((rr) => rr.data.hashAlgorithm),
    ),
  ];
  return algorithms.length > 0 ? algorithms : [ZONEMD_HASH_SHA384];
}

/**
 * The ZONEMD RRset that takes the place of `old` (a zone's apex ZONEMD RRset, not empty) once
 * the zone at SOA serial `serial` has changed: one SIMPLE record per algorithm of
 * {@link zonemdAlgorithms}, with the digest `digestOf` gives for it, at `old`'s lowest TTL. What
 * {@link refreshZonemd} puts in, for a caller that digests the zone itself (in one pass,
 * {@link createZoneDigester}).
 */
export function zonemdRRset(
  origin: string,
  old: readonly RecordOf<'ZONEMD'>[],
  serial: number,
  digestOf: (hashAlgorithm: number) => Uint8Array,
): RecordOf<'ZONEMD'>[] {
  const ttl = Math.min(...old.map((rr) => rr.ttl));
  return zonemdAlgorithms(old).map((hashAlgorithm) =>
    record(
      canonicalName(origin),
      'ZONEMD',
      { serial, scheme: ZONEMD_SCHEME_SIMPLE, hashAlgorithm, digest: digestOf(hashAlgorithm) },
      ttl,
    ),
  );
}

/**
 * A placeholder ZONEMD (RFC 8976 §3.1): what a zone is given to say that it carries a digest,
 * before the digest is computed. Serial 0 and a digest of zeros of SHA-384's length.
 */
export function zonemdPlaceholder(origin: string, ttl: number): RecordOf<'ZONEMD'> {
  return record(
    canonicalName(origin),
    'ZONEMD',
    {
      serial: 0,
      scheme: ZONEMD_SCHEME_SIMPLE,
      hashAlgorithm: ZONEMD_HASH_SHA384,
      digest: new Uint8Array(48),
    },
    ttl,
  );
}

/** Why a zone did not verify against its ZONEMD (RFC 8976 §4). */
export type ZonemdFailure =
  /** No SOA at the apex, or more than one. */
  | 'no-soa'
  /** No ZONEMD at the apex. */
  | 'no-zonemd'
  /** Two apex ZONEMD records of one scheme and hash algorithm (RFC 8976 §4 step 5). */
  | 'duplicate-zonemd'
  /** No apex ZONEMD has the SOA's serial (RFC 8976 §4 step 4). */
  | 'serial-mismatch'
  /** No apex ZONEMD of a scheme and hash algorithm this module computes. */
  | 'unsupported'
  /** A supported ZONEMD of the right serial whose digest differs from the zone's. */
  | 'digest-mismatch';

/** The outcome of {@link verifyZonemd}. */
export type ZonemdVerification =
  | { readonly kind: 'verified'; readonly zonemd: RecordOf<'ZONEMD'> }
  | { readonly kind: 'failed'; readonly reason: ZonemdFailure };

/**
 * Checks `records` (the whole zone `origin`) against its apex ZONEMD RRset, as RFC 8976 §4 has
 * a recipient do once the ZONEMD RRset itself is trusted (its DNSSEC validation is the
 * caller's): the zone verifies when one apex ZONEMD of the SOA's serial, of a supported scheme
 * and hash algorithm, states the zone's digest.
 */
export function verifyZonemd(
  origin: string,
  records: readonly ResourceRecord[],
): ZonemdVerification {
  const apex = canonicalName(origin);
  const soas = records.filter((rr) => rr.type === 'SOA' && canonicalName(rr.name) === apex);
  const soa = soas[0];
  if (soas.length !== 1 || soa === undefined || soa.type !== 'SOA') {
    return { kind: 'failed', reason: 'no-soa' };
  }
  const zonemds = records.filter(
    (rr): rr is RecordOf<'ZONEMD'> => rr.type === 'ZONEMD' && canonicalName(rr.name) === apex,
  );
  if (zonemds.length === 0) return { kind: 'failed', reason: 'no-zonemd' };
  const kinds = new Set(zonemds.map((rr) => `${rr.data.scheme}/${rr.data.hashAlgorithm}`));
  if (kinds.size !== zonemds.length) return { kind: 'failed', reason: 'duplicate-zonemd' };
  const current = zonemds.filter((rr) => rr.data.serial === soa.data.serial);
  if (current.length === 0) return { kind: 'failed', reason: 'serial-mismatch' };
  const usable = current.filter((rr) => zonemdSupported(rr.data.scheme, rr.data.hashAlgorithm));
  if (usable.length === 0) return { kind: 'failed', reason: 'unsupported' };
  for (const zonemd of usable) {
    const digest = zoneDigest(apex, records, zonemd.data.hashAlgorithm, zonemd.data.scheme);
    if (Buffer.from(digest).equals(Buffer.from(zonemd.data.digest))) {
      return { kind: 'verified', zonemd };
    }
  }
  return { kind: 'failed', reason: 'digest-mismatch' };
}

function apexSoa(apex: string, records: readonly ResourceRecord[]): RecordOf<'SOA'> | undefined {
  return records.find(
    (rr): rr is RecordOf<'SOA'> => rr.type === 'SOA' && canonicalName(rr.name) === apex,
  );
}
