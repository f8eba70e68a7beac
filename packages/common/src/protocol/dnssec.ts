import { compareBytes } from './bytes.js';
import { createHash } from 'node:crypto';
import { generateKeyPair, keyPairFromSeed, sign, verify, type Ed25519KeyPair } from './ed25519.js';
import { DnssecError } from './errors.js';
import { canonicalName, isSubdomain, joinLabels, nameLabels, namesEqual } from './names.js';
import {
  DNSSEC_ALGORITHM_ED25519,
  DS_DIGEST_SHA256,
  type DnskeyData,
  type DsData,
  type RecordOf,
  type ResourceRecord,
  type RRClass,
  type RrsigData,
} from './records.js';
import { encodeName, encodeRdata, typeToCode } from './wire.js';

/**
 * DNSSEC with Ed25519 (RFC 8080): zone keys, key tags, DS digests, and signing and verifying
 * RRsets in the canonical form of RFC 4034 §3.1.8.1 and §6.
 *
 * Times are seconds since the epoch, as in the record model. An RRSIG carries them as 32-bit
 * serial numbers (RFC 4034 §3.1.5), so verification compares them with `now` using RFC 1982
 * serial arithmetic on their values modulo 2^32: a signature made in 2105 for 2107 still
 * verifies in 2106, when the wire values have wrapped.
 *
 * Worked example (RFC 8080 §6.1): the seed `82260384628080122645190204142262` gives the DNSKEY
 * `257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=`, key tag 3613; signing
 * `example.com. 3600 IN MX 10 mail.example.com.` signs the RRSIG RDATA without its signature
 * (type MX, algorithm 15, labels 2, TTL 3600, times, tag 3613, signer `example.com`) followed by
 * the record in canonical wire form.
 */

/** DNSKEY flag: Zone Key (RFC 4034 §2.1.1); only zone keys verify RRSIGs. */
export const DNSKEY_FLAG_ZONE = 0x0100;
/** DNSKEY flag: Secure Entry Point (RFC 4034 §2.1.1, RFC 3757). */
export const DNSKEY_FLAG_SEP = 0x0001;
/** DNSKEY flag: REVOKE (RFC 5011 §2.1). */
export const DNSKEY_FLAG_REVOKE = 0x0080;
/** The only valid DNSKEY protocol value (RFC 4034 §2.1.2). */
export const DNSKEY_PROTOCOL = 3;
/** Flags of a zone's one combined signing key: Zone Key + SEP (design §5). */
export const ZONE_KEY_FLAGS = DNSKEY_FLAG_ZONE | DNSKEY_FLAG_SEP;

/** A zone's signing key: the key pair and the DNSKEY RDATA published at the zone apex. */
export interface ZoneKey {
  /** The zone (canonical form); it is the signer name of every RRSIG made with this key. */
  zone: string;
  keyPair: Ed25519KeyPair;
  dnskey: DnskeyData;
  keyTag: number;
}

/** Options of {@link createZoneKey}. */
export interface CreateZoneKeyOptions {
  /** A 32-octet Ed25519 seed, for a key restored from storage or a fixed test key. */
  seed?: Uint8Array;
  /** A source of random bytes for a new key (ignored when `seed` is given). */
  randomBytes?: Parameters<typeof generateKeyPair>[0];
}

/**
 * Creates the combined signing key of a zone (flags 257, protocol 3, algorithm 15): from `seed`
 * when given, otherwise a fresh key.
 */
export function createZoneKey(zone: string, options: CreateZoneKeyOptions = {}): ZoneKey {
  const keyPair =
    options.seed !== undefined
      ? keyPairFromSeed(options.seed)
      : generateKeyPair(options.randomBytes);
  const dnskey: DnskeyData = {
    flags: ZONE_KEY_FLAGS,
    protocol: DNSKEY_PROTOCOL,
    algorithm: DNSSEC_ALGORITHM_ED25519,
    publicKey: keyPair.publicKey,
  };
  return { zone: canonicalName(zone), keyPair, dnskey, keyTag: computeKeyTag(dnskey) };
}

/**
 * The key tag of a DNSKEY (RFC 4034 Appendix B): the RDATA summed as 16-bit words with the carry
 * folded back in. Algorithm 1 (RSA/MD5) has its own rule (Appendix B.1) and is kept for
 * completeness.
 */
export function computeKeyTag(dnskey: DnskeyData): number {
  const rdata = dnskeyRdata(dnskey);
  if (dnskey.algorithm === 1) {
    // RFC 4034 Appendix B.1: the most significant 16 of the least significant 24 bits of the
    // modulus, which ends the public key field.
    const n = rdata.length;
    return n < 7 ? 0 : (((rdata[n - 3] as number) << 8) | (rdata[n - 2] as number)) & 0xffff;
  }
  let ac = 0;
  rdata.forEach((b, i) => {
    ac += i & 1 ? b : b << 8;
  });
  ac += (ac >>> 16) & 0xffff;
  return ac & 0xffff;
}

/** A DNSKEY record for a zone key, owned by the zone apex. */
export function dnskeyRecord(key: ZoneKey, ttl: number): RecordOf<'DNSKEY'> {
  return { name: key.zone, type: 'DNSKEY', class: 'IN', ttl, data: key.dnskey };
}

const DS_DIGESTS: ReadonlyMap<number, string> = new Map([
  [1, 'sha1'], // RFC 4034 §5.1.4; validators still accept it (RFC 8624 §3.3), signers must not use it
  [2, 'sha256'], // RFC 4509
  [4, 'sha384'], // RFC 6605
]);

/**
 * The DS RDATA of a DNSKEY owned by `owner` (RFC 4034 §5.1.4): digest = H(canonical owner name
 * in wire form | DNSKEY RDATA). Digest type 2 (SHA-256) by default; 1 and 4 are computed so that
 * DS records published with them can be checked. Throws `DnssecError`
 * (`ERR_DS_DIGEST_UNSUPPORTED`) for any other digest type.
 */
export function computeDs(
  owner: string,
  dnskey: DnskeyData,
  digestType: number = DS_DIGEST_SHA256,
): DsData {
  const hash = DS_DIGESTS.get(digestType);
  if (hash === undefined) {
    throw new DnssecError('ERR_DS_DIGEST_UNSUPPORTED', `unsupported DS digest type ${digestType}`);
  }
  const digest = createHash(hash)
    .update(encodeName(owner, { canonical: true }))
    .update(dnskeyRdata(dnskey))
    .digest();
  return {
    keyTag: computeKeyTag(dnskey),
    algorithm: dnskey.algorithm,
    digestType,
    digest: new Uint8Array(digest),
  };
}

/** The DS record that the parent of `key.zone` publishes for it. */
export function dsRecord(
  key: ZoneKey,
  ttl: number,
  digestType: number = DS_DIGEST_SHA256,
): RecordOf<'DS'> {
  return {
    name: key.zone,
    type: 'DS',
    class: 'IN',
    ttl,
    data: computeDs(key.zone, key.dnskey, digestType),
  };
}

/**
 * Whether a DS record (RDATA `ds`, owned by `owner`) refers to `dnskey` (RFC 4035 §5.2): same key
 * tag and algorithm, and the digest recomputes. A DS with an unsupported digest type matches
 * nothing.
 */
export function dsMatchesDnskey(owner: string, ds: DsData, dnskey: DnskeyData): boolean {
  if (!DS_DIGESTS.has(ds.digestType)) return false;
  const expected = computeDs(owner, dnskey, ds.digestType);
  return (
    expected.keyTag === ds.keyTag &&
    expected.algorithm === ds.algorithm &&
    bytesEqual(expected.digest, ds.digest)
  );
}

/** Validity window of a signature, seconds since the epoch. */
export interface SignatureValidity {
  inception: number;
  expiration: number;
}

/**
 * Signs one RRset (RFC 4034 §3.1.8.1) with a zone key. All records must share owner, type and
 * class; the owner must be at or below the key's zone, which becomes the signer name. Original
 * TTL is the RRset's TTL (the lowest, if they differ: RFC 2181 §5.2). Record order, duplicates
 * and the case of names do not change the signature. Throws `DnssecError` on input that cannot
 * be signed.
 */
export function signRRset(
  rrset: readonly ResourceRecord[],
  key: ZoneKey,
  validity: SignatureValidity,
): RecordOf<'RRSIG'> {
  const first = rrset[0];
  if (first === undefined) throw new DnssecError('ERR_RRSET_INVALID', 'cannot sign an empty RRset');
  if (!isHomogeneous(rrset)) {
    throw new DnssecError(
      'ERR_RRSET_INVALID',
      `records of one RRset must share owner, type and class (${first.name} ${first.type})`,
    );
  }
  if (first.type === 'RRSIG') {
    // RFC 4035 §2.2: RRSIG RRsets are never signed.
    throw new DnssecError('ERR_RRSET_INVALID', `RRSIG RRsets are not signed (${first.name})`);
  }
  if (!isSubdomain(first.name, key.zone)) {
    throw new DnssecError(
      'ERR_RRSET_INVALID',
      `${first.name} is not in zone ${key.zone} and cannot be signed with its key`,
    );
  }
  checkValidity(validity);
  const originalTtl = Math.min(...rrset.map((rr) => rr.ttl));
  const data: RrsigData = {
    typeCovered: first.type,
    algorithm: key.dnskey.algorithm,
    labels: rrsigLabels(first.name),
    originalTtl,
    expiration: validity.expiration,
    inception: validity.inception,
    keyTag: key.keyTag,
    signerName: key.zone,
    signature: new Uint8Array(0),
  };
  const signature = sign(rrsigSignedData(rrset, data), key.keyPair.secretKey);
  return {
    name: first.name,
    type: 'RRSIG',
    class: first.class,
    ttl: originalTtl,
    data: { ...data, signature },
  };
}

/** Why an RRset does not verify; see {@link verifyRRset}. */
export type RrsetVerificationFailure =
  'no-key' | 'bad-signature' | 'expired' | 'not-yet-valid' | 'mismatch' | 'unsupported-algorithm';

/** Outcome of {@link verifyRRset}. */
export type RrsetVerification =
  { kind: 'verified' } | { kind: 'failed'; reason: RrsetVerificationFailure };

/**
 * Verifies one RRSIG over an RRset (RFC 4035 §5.3), checking in this order:
 * - `mismatch`: the RRset is empty or mixed, or the RRSIG is not for it (owner, class, type
 *   covered), its owner is not at or below the signer name, its Labels field exceeds the owner's
 *   label count, or a DNSKEY RRset is signed by a name other than its owner;
 * - `unsupported-algorithm`: not Ed25519;
 * - `not-yet-valid` / `expired`: `now` (seconds since the epoch) is before inception or after
 *   expiration, in serial arithmetic (RFC 4034 §3.1.5, RFC 1982);
 * - `no-key`: no DNSKEY has the RRSIG's key tag and algorithm, protocol 3 and the Zone Key flag
 *   (a REVOKEd key only for the DNSKEY RRset, RFC 5011 §2.1). When DNSKEY records are given,
 *   only those owned by the signer name count; bare RDATA is taken to be the signer's;
 * - `bad-signature`: no candidate key verifies the signature.
 *
 * A wildcard expansion (Labels below the owner's label count) is verified against the wildcard
 * name, as RFC 4035 §5.3.2 requires. Choosing which zone's keys to pass (the signer must be the
 * zone the RRset was found in) is the caller's part.
 */
export function verifyRRset(
  rrset: readonly ResourceRecord[],
  rrsig: RecordOf<'RRSIG'>,
  dnskeys: readonly DnskeyData[] | readonly ResourceRecord[],
  now: number,
): RrsetVerification {
  const checked = checkRrsig(rrset, rrsig, dnskeys, now);
  if (checked.kind === 'failed') return checked;
  return checked.keys.some((k) => verifyRrsigWith(checked.signed, rrsig.data, k))
    ? { kind: 'verified' }
    : { kind: 'failed', reason: 'bad-signature' };
}

/** Outcome of {@link checkRrsig}: the keys worth a verification and the octets they verify. */
export type RrsigCheck =
  | { kind: 'checked'; keys: DnskeyData[]; signed: Uint8Array }
  | { kind: 'failed'; reason: Exclude<RrsetVerificationFailure, 'bad-signature'> };

/**
 * Every check of {@link verifyRRset} but the signature itself, in the same order: the cheap part
 * of RFC 4035 §5.3, no public-key operation. Returns the candidate keys (the RRSIG's key tag and
 * algorithm, protocol 3, Zone Key flag) and the signed octets, so that a validator can decide
 * how many of them to try and when (KeyTrap, CVE-2023-50387: a signature whose key tag 1,000
 * keys share costs 1,000 verifications when every candidate is tried) and verify each with
 * {@link verifyRrsigWith}.
 */
export function checkRrsig(
  rrset: readonly ResourceRecord[],
  rrsig: RecordOf<'RRSIG'>,
  dnskeys: readonly DnskeyData[] | readonly ResourceRecord[],
  now: number,
): RrsigCheck {
  const sig = rrsig.data;
  const first = rrset[0];
  if (
    first === undefined ||
    !isHomogeneous(rrset) ||
    !namesEqual(rrsig.name, first.name) ||
    rrsig.class !== first.class ||
    sig.typeCovered !== first.type ||
    !isSubdomain(first.name, sig.signerName) ||
    sig.labels > nameLabels(first.name).length ||
    (first.type === 'DNSKEY' && !namesEqual(sig.signerName, first.name))
  ) {
    return { kind: 'failed', reason: 'mismatch' };
  }
  if (sig.algorithm !== DNSSEC_ALGORITHM_ED25519)
    return { kind: 'failed', reason: 'unsupported-algorithm' };
  if (serialLessThan(now, sig.inception)) return { kind: 'failed', reason: 'not-yet-valid' };
  if (serialLessThan(sig.expiration, now)) return { kind: 'failed', reason: 'expired' };

  const keys = keyData(dnskeys, sig.signerName).filter(
    (k) =>
      k.algorithm === sig.algorithm &&
      k.protocol === DNSKEY_PROTOCOL &&
      (k.flags & DNSKEY_FLAG_ZONE) !== 0 &&
      ((k.flags & DNSKEY_FLAG_REVOKE) === 0 || first.type === 'DNSKEY') &&
      computeKeyTag(k) === sig.keyTag,
  );
  if (keys.length === 0) return { kind: 'failed', reason: 'no-key' };
  return { kind: 'checked', keys, signed: rrsigSignedData(rrset, sig) };
}

/**
 * The one public-key operation of RRSIG verification: whether `key` made the signature of
 * `rrsig` over `signed` (the octets {@link checkRrsig} returned for it).
 */
export function verifyRrsigWith(signed: Uint8Array, rrsig: RrsigData, key: DnskeyData): boolean {
  return verify(rrsig.signature, signed, key.publicKey);
}

/**
 * The octets an RRSIG signs (RFC 4034 §3.1.8.1): the RRSIG RDATA without the signature, in
 * canonical form, then every record of the RRset in canonical form (§6.2: owner lowercased and
 * replaced by the wildcard name when Labels is below its label count, TTL = Original TTL, names
 * in RDATA lowercased), ordered by RDATA as left-justified octet strings with duplicates removed
 * (§6.3). Exposed for tests and diagnostics; {@link signRRset} and {@link verifyRRset} use it.
 */
export function rrsigSignedData(rrset: readonly ResourceRecord[], rrsig: RrsigData): Uint8Array {
  const first = rrset[0];
  if (first === undefined)
    throw new DnssecError('ERR_RRSET_INVALID', 'an RRset has at least one record');
  const prefix = encodeRdata(
    {
      name: first.name,
      type: 'RRSIG',
      class: first.class,
      ttl: rrsig.originalTtl,
      data: { ...rrsig, signature: new Uint8Array(0) },
    },
    { canonical: true },
  );
  const owner = encodeName(signedOwner(first.name, rrsig.labels), { canonical: true });
  const header = new Uint8Array(8);
  const view = new DataView(header.buffer);
  view.setUint16(0, typeToCode(first.type));
  view.setUint16(2, classToCode(first.class));
  view.setUint32(4, rrsig.originalTtl >>> 0);

  const rdatas = uniqueSorted(rrset.map((rr) => encodeRdata(rr, { canonical: true })));
  const parts: Uint8Array[] = [prefix];
  for (const rdata of rdatas) {
    if (rdata.length > 0xffff)
      throw new DnssecError('ERR_RRSET_INVALID', 'RDATA over 65535 octets');
    const length = new Uint8Array([rdata.length >> 8, rdata.length & 0xff]);
    parts.push(owner, header, length, rdata);
  }
  return concat(parts);
}

/**
 * RFC 4034 §3.1.3: the Labels field counts the owner's labels without the root and without a
 * leading `*` label (`*.example.com` → 2).
 */
function rrsigLabels(name: string): number {
  const labels = nameLabels(name);
  return labels[0] === '*' ? labels.length - 1 : labels.length;
}

/**
 * RFC 4034 §3.1.8.1 and RFC 4035 §5.3.2: a record synthesized from a wildcard is signed under
 * the wildcard's name, rebuilt from the rightmost `labels` labels of the owner.
 */
function signedOwner(name: string, labels: number): string {
  const all = nameLabels(canonicalName(name));
  const bare = all[0] === '*' ? all.slice(1) : all;
  if (labels >= bare.length) return canonicalName(name);
  return joinLabels(['*', ...bare.slice(bare.length - labels)]);
}

function isHomogeneous(rrset: readonly ResourceRecord[]): boolean {
  const first = rrset[0];
  if (first === undefined) return false;
  const owner = canonicalName(first.name);
  return rrset.every(
    (rr) => rr.type === first.type && rr.class === first.class && canonicalName(rr.name) === owner,
  );
}

function keyData(
  dnskeys: readonly DnskeyData[] | readonly ResourceRecord[],
  signer: string,
): DnskeyData[] {
  const out: DnskeyData[] = [];
  for (const k of dnskeys) {
    if (!('type' in k)) out.push(k);
    else if (k.type === 'DNSKEY' && namesEqual(k.name, signer)) out.push(k.data);
  }
  return out;
}

/**
 * A signing window must be representable in RFC 4034 §3.1.5 serial arithmetic: integer times,
 * expiration after inception and less than 2^31 seconds (68 years) later.
 */
function checkValidity({ inception, expiration }: SignatureValidity): void {
  if (!Number.isSafeInteger(inception) || !Number.isSafeInteger(expiration) || inception < 0) {
    throw new DnssecError(
      'ERR_RRSIG_WINDOW',
      'signature times must be non-negative integer seconds',
    );
  }
  if (expiration <= inception || expiration - inception >= 2 ** 31) {
    throw new DnssecError(
      'ERR_RRSIG_WINDOW',
      `signature window ${inception}..${expiration} is empty or longer than 2^31 seconds`,
    );
  }
}

/** RFC 1982 §3.2 with SERIAL_BITS = 32: whether `a` is before `b`, both taken modulo 2^32. */
function serialLessThan(a: number, b: number): boolean {
  const d = ((b >>> 0) - (a >>> 0) + 2 ** 32) % 2 ** 32;
  return d !== 0 && d < 2 ** 31;
}

function dnskeyRdata(dnskey: DnskeyData): Uint8Array {
  return encodeRdata({ name: '.', type: 'DNSKEY', class: 'IN', ttl: 0, data: dnskey });
}

function classToCode(cls: RRClass): number {
  switch (cls) {
    case 'IN':
      return 1;
    case 'CH':
      return 3;
    case 'HS':
      return 4;
    case 'ANY':
      return 255;
    default:
      return Number(cls.slice('CLASS'.length));
  }
}

function uniqueSorted(items: Uint8Array[]): Uint8Array[] {
  const sorted = [...items].sort(compareBytes);
  return sorted.filter((b, i) => i === 0 || compareBytes(b, sorted[i - 1] as Uint8Array) !== 0);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
