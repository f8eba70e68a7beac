import { compareBytes } from './bytes.js';
import { createHash } from 'node:crypto';
import { encodeBase32Hex } from './base32hex.js';
import { DnssecError } from './errors.js';
import { canonicalName, compareNames, isSubdomain, joinLabels, nameLabels } from './names.js';
import { sortTypes } from './nsec.js';
import type { Nsec3Data, RecordOf, ResourceRecord, RRType } from './records.js';
import { encodeName } from './wire.js';

/**
 * A full NSEC3 chain (RFC 5155) for a zone exported to stock secondaries, which cannot sign
 * denials online (design §5). Parameters follow RFC 9276 §3.1: hash algorithm 1 (SHA-1), no
 * additional iterations, empty salt, opt-out clear, so every delegation is covered.
 *
 * Worked example, zone `example` holding the apex, `a.b.example` and a delegation `sub.example`
 * with glue `ns.sub.example`: the chain covers `example`, `b.example` (an empty non-terminal),
 * `a.b.example` and `sub.example`, but not the glue (RFC 5155 §7.1). Each name's owner is
 * `base32hex(H(name)).example`; sorted by hash, each points to the next, the last to the first.
 *
 * Hashes of phone numbers are cheap to reverse: an exported chain makes the zone enumerable to
 * whoever can query the secondaries serving it.
 */

/** NSEC3 hash algorithm 1, SHA-1 (RFC 5155 §11). */
export const NSEC3_HASH_SHA1 = 1;
/** NSEC3 flag: Opt-Out (RFC 5155 §3.1.2.1). Never set by this project. */
export const NSEC3_FLAG_OPT_OUT = 0x01;

/** The NSEC3 parameters of RFC 9276 §3.1 that every chain built here uses. */
export const NSEC3_PARAMETERS: Readonly<{
  hashAlgorithm: number;
  flags: number;
  iterations: number;
  salt: Uint8Array;
}> = Object.freeze({
  hashAlgorithm: NSEC3_HASH_SHA1,
  flags: 0,
  iterations: 0,
  salt: new Uint8Array(0),
});

/**
 * The NSEC3 hash of a name (RFC 5155 §5): IH(salt, x, 0) = H(x | salt) and
 * IH(salt, x, k) = H(IH(salt, x, k - 1) | salt), with x the canonical wire form of the name and
 * H SHA-1; `iterations` counts the additional rounds.
 */
export function nsec3Hash(name: string, salt: Uint8Array, iterations: number): Uint8Array {
  if (!Number.isInteger(iterations) || iterations < 0 || iterations > 0xffff) {
    throw new DnssecError(
      'ERR_NSEC3_PARAMETERS',
      `NSEC3 iterations must be 0..65535, got ${iterations}`,
    );
  }
  if (salt.length > 255)
    throw new DnssecError('ERR_NSEC3_PARAMETERS', 'NSEC3 salt over 255 octets');
  let digest: Uint8Array = encodeName(name, { canonical: true });
  for (let k = 0; k <= iterations; k++) {
    digest = new Uint8Array(createHash('sha1').update(digest).update(salt).digest());
  }
  return digest;
}

/**
 * The NSEC3 records of a zone and its NSEC3PARAM, all with `ttl` (which should be
 * min(SOA TTL, SOA MINIMUM), RFC 9077), in hash order with the NSEC3PARAM last.
 *
 * Covered names (RFC 5155 §7.1): every owner at or below `origin` that is not below a zone cut,
 * every delegation point, and every empty non-terminal between them and the origin. Bitmaps hold
 * the types present plus RRSIG, since every authoritative RRset is signed; the apex adds
 * NSEC3PARAM; a delegation lists only NS and DS (and RRSIG if DS is present: glue and the child's
 * data are not the parent's); an empty non-terminal has an empty bitmap. Records of types RRSIG,
 * NSEC, NSEC3 and NSEC3PARAM in `records` are ignored: the chain is rebuilt from the data.
 * Throws `DnssecError` (`ERR_NSEC3_COLLISION`) if two names hash alike.
 */
export function buildNsec3Chain(
  origin: string,
  records: readonly ResourceRecord[],
  ttl: number,
): ResourceRecord[] {
  const apex = canonicalName(origin);
  const params = NSEC3_PARAMETERS;
  const types = authoritativeTypes(apex, records);
  types.get(apex)?.add('NSEC3PARAM');

  const hashed = [...types.entries()]
    .map(([name, present]) => ({
      name,
      present,
      hash: nsec3Hash(name, params.salt, params.iterations),
    }))
    .sort((a, b) => compareBytes(a.hash, b.hash));

  const out: ResourceRecord[] = [];
  hashed.forEach((entry, i) => {
    const previous = hashed[i - 1];
    if (previous !== undefined && compareBytes(previous.hash, entry.hash) === 0) {
      throw new DnssecError(
        'ERR_NSEC3_COLLISION',
        `NSEC3 hash collision between ${previous.name} and ${entry.name}`,
      );
    }
    const next = (hashed[i + 1] ?? hashed[0]) as (typeof hashed)[number];
    const data: Nsec3Data = {
      hashAlgorithm: params.hashAlgorithm,
      flags: params.flags,
      iterations: params.iterations,
      salt: params.salt,
      nextHashedOwner: next.hash,
      types: sortTypes(entry.present),
    };
    out.push({
      name: joinLabels([encodeBase32Hex(entry.hash), ...nameLabels(apex)]),
      type: 'NSEC3',
      class: 'IN',
      ttl,
      data,
    });
  });
  const nsec3param: RecordOf<'NSEC3PARAM'> = {
    name: apex,
    type: 'NSEC3PARAM',
    class: 'IN',
    ttl,
    data: { ...params },
  };
  out.push(nsec3param);
  return out;
}

/** Types that are themselves DNSSEC denial or signature data, left out of a chain's view. */
const DENIAL_TYPES: ReadonlySet<RRType> = new Set(['RRSIG', 'NSEC', 'NSEC3', 'NSEC3PARAM']);

/**
 * Every name the zone is authoritative for (plus its delegation points and empty non-terminals),
 * with the types its NSEC3 bitmap lists, before NSEC3PARAM.
 */
function authoritativeTypes(
  apex: string,
  records: readonly ResourceRecord[],
): Map<string, Set<RRType>> {
  const cuts = zoneCuts(apex, records);
  const types = new Map<string, Set<RRType>>();
  for (const rr of records) {
    if (DENIAL_TYPES.has(rr.type)) continue;
    const owner = canonicalName(rr.name);
    if (!isSubdomain(owner, apex)) {
      throw new DnssecError(
        'ERR_NSEC3_OUT_OF_ZONE',
        `record owner ${rr.name} is not in zone ${apex}`,
      );
    }
    if (isBelowCut(owner, cuts)) continue;
    if (cuts.has(owner) && rr.type !== 'NS' && rr.type !== 'DS') continue;
    let set = types.get(owner);
    if (set === undefined) {
      set = new Set();
      types.set(owner, set);
    }
    set.add(rr.type);
    // A delegation point's NS RRset is not signed; its DS RRset is (RFC 4035 §2.2).
    if (!cuts.has(owner) || rr.type === 'DS') set.add('RRSIG');
  }
  const depth = nameLabels(apex).length;
  for (const name of [...types.keys()]) {
    const labels = nameLabels(name);
    for (let n = labels.length - 1; n > depth; n--) {
      const ancestor = joinLabels(labels.slice(labels.length - n));
      if (!types.has(ancestor)) types.set(ancestor, new Set());
    }
  }
  return types;
}

/**
 * Zone cuts below the apex: owners of an NS RRset other than the apex (RFC 1034 §4.2.1). A cut
 * below another cut belongs to the child zone and is not one of ours.
 */
export function zoneCuts(origin: string, records: readonly ResourceRecord[]): Set<string> {
  const apex = canonicalName(origin);
  const candidates = new Set<string>();
  for (const rr of records) {
    const owner = canonicalName(rr.name);
    if (rr.type === 'NS' && owner !== apex && isSubdomain(owner, apex)) candidates.add(owner);
  }
  const ordered = [...candidates].sort(compareNames);
  const cuts = new Set<string>();
  for (const name of ordered) if (!isBelowCut(name, cuts)) cuts.add(name);
  return cuts;
}

/** Whether `name` (canonical) lies strictly below one of `cuts`. */
export function isBelowCut(name: string, cuts: ReadonlySet<string>): boolean {
  for (const cut of cuts) if (name !== cut && isSubdomain(name, cut)) return true;
  return false;
}
