import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  DNSKEY_FLAG_REVOKE,
  DNSSEC_ALGORITHM_ED25519,
  NXNAME_TYPE,
  canonicalName,
  checkRrsig,
  computeKeyTag,
  dsMatchesDnskey,
  immediateSuccessor,
  namesEqual,
  rrsigSignedData,
  typeToCode,
  verifyRrsigWith,
  type DnskeyData,
  type DsData,
  type RecordOf,
  type ResourceRecord,
  type RRType,
  type Verifier,
} from '@mimi-discovery/common';
import {
  MAX_KEYS_PER_SIGNATURE,
  MAX_SAME_TAG_KEYS,
  MAX_SIGNATURES_PER_RRSET,
  MAX_VERIFICATIONS_PER_RESOLUTION,
  VERIFICATIONS_PER_SLICE,
} from './limits.js';

/**
 * The validator stage: the chain of trust of RFC 4035 §5, as pure functions of records, keys and
 * the time. The iterator hands it what a server said; it answers with the trusted data or the
 * reason it is bogus. Only Ed25519 (algorithm 15, RFC 8080) is accepted, as design §5 fixes.
 *
 * The chain, from the trust anchor down:
 * 1. the apex DNSKEY RRset holds a key whose DS is in the trust anchor and is signed by it
 *    ({@link validateDnskeys});
 * 2. each referral's DS RRset verifies with the parent's trusted keys ({@link validateDelegationDs});
 *    a referral without DS (an NSEC at the cut without DS) is an unsigned delegation, bogus by
 *    design §5;
 * 3. the child's DNSKEY RRset holds a key matching one of those DS and is signed by it (1 again);
 * 4. every answer RRset ({@link validateRRset}) and every denial ({@link validateDenial})
 *    verifies with the keys of the zone that served it.
 *
 * The work is bounded as trusted resolvers bound it since KeyTrap (CVE-2023-50387, `limits.ts`):
 * at most {@link MAX_KEYS_PER_SIGNATURE} keys per RRSIG, {@link MAX_SIGNATURES_PER_RRSET} RRSIGs
 * per RRset, {@link MAX_SAME_TAG_KEYS} keys of one key tag in a DNSKEY RRset, and a
 * {@link VerificationBudget} per resolution; past a bound the data is bogus with a reason that
 * names it ({@link LIMIT_REASONS}). The functions are asynchronous to yield to the event loop
 * every {@link VERIFICATIONS_PER_SLICE} verifications and to stop at the resolution's deadline
 * (a hostile zone's validation never holds up other resolutions), and to verify on the
 * resolver's verification pool when the budget carries one (`verifier`): the checks before the
 * signature (`checkRrsig`) and the budget stay here, only the signature goes to a thread.
 *
 * Denials are compact (RFC 9824): worked example, `x.z MAP` in zone `z` answered with
 * `x.z NSEC \000.x.z RRSIG NSEC NXNAME` proves that `x.z` does not exist, and
 * `x.z NSEC \000.x.z AUTHKEY RRSIG NSEC` that it exists without MAP. Denials by NSEC records
 * that cover the name from elsewhere (classic NSEC chains) are not accepted: our servers never
 * send them.
 */

/** The result of a validation step: the trusted value, or why the data is bogus (RFC 4035 §4.3). */
export type Validation<T> =
  | { readonly kind: 'secure'; readonly value: T }
  | { readonly kind: 'bogus'; readonly reason: string };

/**
 * The validation work one resolution may still do, shared (and spent) by every step of it: see
 * {@link createBudget}.
 */
export interface VerificationBudget {
  /** Signature verifications left. */
  remaining: number;
  /** Verifications since the last yield to the event loop. */
  sinceYield: number;
  /** Whether the resolution's deadline has passed: no verification starts after it. */
  readonly expired: () => boolean;
  /** Called once per signature verification (one RRSIG with one key), e.g. to count them. */
  readonly onVerify: () => void;
  /**
   * Where signatures are verified: a verification pool's (`verifyThreads`), or absent for the
   * calling thread's synchronous `verify`.
   */
  readonly verifier?: Verifier;
}

/** What {@link createBudget} takes. */
export interface BudgetOptions {
  /** Whether the resolution's deadline has passed; default never. */
  readonly expired?: () => boolean;
  /** Called once per signature verification. */
  readonly onVerify?: () => void;
  /** Where signatures are verified; default the calling thread. */
  readonly verifier?: Verifier;
}

/**
 * Why validation stopped at a bound (`limits.ts`): the data is then bogus with this reason, which
 * names the limit, never merely unverified.
 */
export const LIMIT_REASONS = Object.freeze({
  /** More than {@link MAX_SAME_TAG_KEYS} keys of a DNSKEY RRset share a key tag and algorithm. */
  sameTagKeys: 'limit-same-tag-keys',
  /** More keys than {@link MAX_KEYS_PER_SIGNATURE} matched an RRSIG and none tried verified. */
  keysPerSignature: 'limit-keys-per-signature',
  /** More RRSIGs than {@link MAX_SIGNATURES_PER_RRSET} and none tried verified. */
  signaturesPerRrset: 'limit-signatures-per-rrset',
  /** The resolution spent its {@link MAX_VERIFICATIONS_PER_RESOLUTION} verifications. */
  verifications: 'limit-verifications',
} as const);

/** The reason a validation gives when the resolution's deadline passed during it. */
export const DEADLINE_REASON = 'deadline';

/**
 * A signature that verified: the octets it signed (RFC 4034 §3.1.8.1) and the zone's keys that
 * had its key tag and algorithm at the time, one of which verified it.
 */
export interface VerifiedSignature {
  readonly signed: Uint8Array;
  readonly keys: readonly DnskeyData[];
}

/**
 * Signatures verified before, kept as long as what they validated may be cached. The RRsets every
 * question of a zone shares (its SOA in each denial, its DNSKEY RRset, the DS of its delegation)
 * are then verified once per cache fill, not once per question (design §6): a contact sync of
 * 10,000 numbers with no MAPREF checks the zone's SOA signature once instead of 10,000 times.
 */
export interface SignatureMemo {
  get(id: string): VerifiedSignature | undefined;
  set(id: string, value: VerifiedSignature, ttlSeconds: number): void;
}

/**
 * The types whose signatures are remembered: those shared by many questions. A MAP RRset or the
 * NSEC of one name is validated once per cache fill of its answer anyway.
 */
export const MEMO_TYPES: ReadonlySet<RRType> = new Set<RRType>(['SOA', 'DNSKEY', 'DS']);

/** A fresh budget of {@link MAX_VERIFICATIONS_PER_RESOLUTION} verifications. */
export function createBudget(options: BudgetOptions = {}): VerificationBudget {
  return {
    remaining: MAX_VERIFICATIONS_PER_RESOLUTION,
    sinceYield: 0,
    expired: options.expired ?? ((): boolean => false),
    onVerify: options.onVerify ?? ((): void => undefined),
    ...(options.verifier === undefined ? {} : { verifier: options.verifier }),
  };
}

/**
 * Takes one verification from `budget`, first yielding to the event loop when
 * {@link VERIFICATIONS_PER_SLICE} ran since the last yield. Fails at the deadline or when the
 * budget is spent.
 */
async function spend(budget: VerificationBudget): Promise<Validation<void>> {
  if (budget.sinceYield >= VERIFICATIONS_PER_SLICE) {
    budget.sinceYield = 0;
    await yieldToEventLoop();
  }
  if (budget.expired()) return fail(DEADLINE_REASON);
  if (budget.remaining <= 0) return fail(LIMIT_REASONS.verifications);
  budget.remaining--;
  budget.sinceYield++;
  budget.onVerify();
  return { kind: 'secure', value: undefined };
}

/** The trusted DNSKEYs of a zone and for how long they may be kept. */
export interface TrustedKeys {
  readonly keys: readonly DnskeyData[];
  readonly ttl: number;
  /** The DNSKEY RRset and the RRSIG that verified it, for an answer to a DNSKEY question. */
  readonly rrset: ReadonlyArray<RecordOf<'DNSKEY'>>;
  readonly rrsigs: ReadonlyArray<RecordOf<'RRSIG'>>;
}

/** What a verified denial proves. */
export interface Denial {
  readonly kind: 'nodata' | 'nxdomain';
  /** RFC 2308 §5 with RFC 9824: min(SOA TTL, SOA MINIMUM, NSEC TTL, RRSIG TTLs), capped by expiry. */
  readonly ttl: number;
  /** The SOA, the NSEC and their RRSIGs, for the authority section of a response. */
  readonly records: readonly ResourceRecord[];
}

/** Every RRSIG failure of `checkRrsig` and of a signature, as the reason counted in stats. */
const FAILURE_REASONS: Readonly<Record<string, string>> = Object.freeze({
  'no-key': 'no-key',
  'bad-signature': 'bogus-signature',
  expired: 'signature-expired',
  'not-yet-valid': 'signature-not-yet-valid',
  mismatch: 'signature-mismatch',
  'unsupported-algorithm': 'unsupported-algorithm',
});

const fail = <T>(reason: string): Validation<T> => ({ kind: 'bogus', reason });

/** The records of one RRset in a section (owner compared without case). */
export function rrsetOf<T extends ResourceRecord['type']>(
  records: readonly ResourceRecord[],
  name: string,
  type: T,
): Array<RecordOf<T>> {
  return records.filter((rr): rr is RecordOf<T> => rr.type === type && namesEqual(rr.name, name));
}

/** The records of one RRset in a section, for a type known only at run time. */
export function recordsOf(
  records: readonly ResourceRecord[],
  name: string,
  type: RRType,
): ResourceRecord[] {
  return records.filter((rr) => rr.type === type && namesEqual(rr.name, name));
}

/** The RRSIGs in a section that cover `type` at `name`. */
export function rrsigsOf(
  records: readonly ResourceRecord[],
  name: string,
  type: RRType,
): Array<RecordOf<'RRSIG'>> {
  return rrsetOf(records, name, 'RRSIG').filter((sig) => sig.data.typeCovered === type);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

function sameKey(a: DnskeyData, b: DnskeyData): boolean {
  return (
    a.flags === b.flags &&
    a.protocol === b.protocol &&
    a.algorithm === b.algorithm &&
    sameBytes(a.publicKey, b.publicKey)
  );
}

/**
 * Whether `sig` over `rrset` was verified before with keys that are all still trusted. The memo
 * key holds the owner, the type, the signer and the signature; the signed octets hold every other
 * input of {@link verifyRRset} (the RRSIG RDATA, the owner as signed, type, class, each RDATA),
 * so equal octets and the same keys give the same result, except for the checks done here: the
 * RRSIG owner and class, one class in the RRset, and the validity period (the memo entry expires
 * with the signature; the inception is checked again for a clock that went back).
 */
function verifiedBefore(
  known: VerifiedSignature,
  rrset: readonly ResourceRecord[],
  sig: RecordOf<'RRSIG'>,
  keys: readonly DnskeyData[],
  now: number,
): boolean {
  const first = rrset[0] as ResourceRecord;
  return (
    namesEqual(sig.name, first.name) &&
    sig.class === first.class &&
    rrset.every((rr) => rr.class === first.class) &&
    now >= sig.data.inception &&
    known.keys.every((k) => keys.some((trusted) => sameKey(k, trusted))) &&
    sameBytes(known.signed, rrsigSignedData(rrset, sig.data))
  );
}

function memoId(zone: string, owner: string, type: RRType, sig: RecordOf<'RRSIG'>): string {
  const signature = sig.data.signature;
  return `${canonicalName(zone)}|${canonicalName(owner)}|${type}|${Buffer.from(
    signature.buffer,
    signature.byteOffset,
    signature.byteLength,
  ).toString('base64')}`;
}

/**
 * Verifies `sig` over `rrset` with at most {@link MAX_KEYS_PER_SIGNATURE} of the candidate
 * `keys`, spending one verification of `budget` per key tried. `tried` is false when the RRSIG
 * failed the cheap checks (times, names, no candidate key) and cost nothing.
 */
async function verifySignature(
  rrset: readonly ResourceRecord[],
  sig: RecordOf<'RRSIG'>,
  keys: readonly DnskeyData[],
  now: number,
  budget: VerificationBudget,
): Promise<
  | { readonly kind: 'verified'; readonly signed: Uint8Array; readonly keys: readonly DnskeyData[] }
  | { readonly kind: 'failed'; readonly reason: string; readonly tried: boolean }
> {
  const checked = checkRrsig(rrset, sig, keys, now);
  if (checked.kind === 'failed') {
    return {
      kind: 'failed',
      reason: FAILURE_REASONS[checked.reason] ?? checked.reason,
      tried: false,
    };
  }
  const candidates = checked.keys.slice(0, MAX_KEYS_PER_SIGNATURE);
  for (const key of candidates) {
    const spent = await spend(budget);
    if (spent.kind === 'bogus') return { kind: 'failed', reason: spent.reason, tried: true };
    const valid =
      budget.verifier === undefined
        ? verifyRrsigWith(checked.signed, sig.data, key)
        : await budget.verifier.verify(sig.data.signature, checked.signed, key.publicKey);
    if (valid) {
      return { kind: 'verified', signed: checked.signed, keys: checked.keys };
    }
  }
  return {
    kind: 'failed',
    reason:
      checked.keys.length > candidates.length ? LIMIT_REASONS.keysPerSignature : 'bogus-signature',
    tried: true,
  };
}

/**
 * Verifies `rrset` with any of its RRSIGs in `section` made by `zone` with `keys`. The TTL is
 * min(record TTLs, RRSIG original TTL, seconds until the RRSIG expires) (RFC 4035 §5.3.3). With a
 * `memo`, a signature of a {@link MEMO_TYPES} RRset verified before is not verified again and
 * costs no budget; one that verifies now is remembered for that TTL. At most
 * {@link MAX_SIGNATURES_PER_RRSET} RRSIGs are verified; the deadline or a spent budget ends the
 * validation at once.
 */
export async function validateRRset(
  rrset: readonly ResourceRecord[],
  section: readonly ResourceRecord[],
  zone: string,
  keys: readonly DnskeyData[],
  now: number,
  budget: VerificationBudget,
  memo?: SignatureMemo,
): Promise<Validation<{ ttl: number; rrsigs: Array<RecordOf<'RRSIG'>> }>> {
  const first = rrset[0];
  if (first === undefined) return fail('empty-rrset');
  const type = first.type as RRType;
  const sigs = rrsigsOf(section, first.name, type).filter((sig) =>
    namesEqual(sig.data.signerName, zone),
  );
  if (sigs.length === 0) return fail('missing-signature');
  const remembered = memo !== undefined && MEMO_TYPES.has(type) ? memo : undefined;
  const ttlOf = (sig: RecordOf<'RRSIG'>): number =>
    Math.min(
      ...rrset.map((rr) => rr.ttl),
      sig.data.originalTtl,
      Math.max(0, sig.data.expiration - now),
    );
  let reason = 'missing-signature';
  let tried = 0;
  for (const sig of sigs) {
    const id = remembered === undefined ? undefined : memoId(zone, first.name, type, sig);
    const known = id === undefined ? undefined : remembered?.get(id);
    if (known !== undefined && verifiedBefore(known, rrset, sig, keys, now)) {
      return { kind: 'secure', value: { ttl: ttlOf(sig), rrsigs: [sig] } };
    }
    if (tried >= MAX_SIGNATURES_PER_RRSET) return fail(LIMIT_REASONS.signaturesPerRrset);
    const result = await verifySignature(rrset, sig, keys, now, budget);
    if (result.kind === 'verified') {
      const ttl = ttlOf(sig);
      if (id !== undefined) {
        remembered?.set(
          id,
          {
            signed: result.signed,
            keys: result.keys,
          },
          ttl,
        );
      }
      return { kind: 'secure', value: { ttl, rrsigs: [sig] } };
    }
    if (result.reason === DEADLINE_REASON || result.reason === LIMIT_REASONS.verifications) {
      return fail(result.reason);
    }
    if (result.tried) tried++;
    reason = result.reason;
  }
  return fail(reason);
}

/**
 * Whether more than {@link MAX_SAME_TAG_KEYS} keys of `rrset` share one key tag and algorithm.
 * Counted before anything is verified: the count costs one checksum per key.
 */
function tooManySameTagKeys(rrset: ReadonlyArray<RecordOf<'DNSKEY'>>): boolean {
  const counts = new Map<number, number>();
  for (const rr of rrset) {
    const id = rr.data.algorithm * 0x10000 + computeKeyTag(rr.data);
    const count = (counts.get(id) ?? 0) + 1;
    if (count > MAX_SAME_TAG_KEYS) return true;
    counts.set(id, count);
  }
  return false;
}

/**
 * Validates the DNSKEY RRset of `zone` from its response's answer section: some Ed25519 key must
 * match one of `ds` (the trust anchor, or the DS the parent signed) and sign the RRset. An RRset
 * in which more than {@link MAX_SAME_TAG_KEYS} keys share a key tag is bogus at once.
 */
export async function validateDnskeys(
  zone: string,
  answers: readonly ResourceRecord[],
  ds: readonly DsData[],
  now: number,
  budget: VerificationBudget,
  memo?: SignatureMemo,
): Promise<Validation<TrustedKeys>> {
  const rrset = rrsetOf(answers, zone, 'DNSKEY');
  if (rrset.length === 0) return fail('missing-dnskey');
  if (tooManySameTagKeys(rrset)) return fail(LIMIT_REASONS.sameTagKeys);
  // RFC 5011 §2.1: a revoked key (REVOKE bit set) is no entry point, whatever DS names it.
  const entry = rrset.filter(
    (rr) =>
      rr.data.algorithm === DNSSEC_ALGORITHM_ED25519 &&
      (rr.data.flags & DNSKEY_FLAG_REVOKE) === 0 &&
      ds.some((d) => dsMatchesDnskey(zone, d, rr.data)),
  );
  if (entry.length === 0) return fail('no-ds-match');
  const verified = await validateRRset(
    rrset,
    answers,
    zone,
    entry.map((rr) => rr.data),
    now,
    budget,
    memo,
  );
  if (verified.kind === 'bogus') return verified;
  return {
    kind: 'secure',
    value: {
      keys: rrset.map((rr) => rr.data),
      ttl: verified.value.ttl,
      rrset,
      rrsigs: verified.value.rrsigs,
    },
  };
}

/**
 * Validates the DS RRset of a referral from `zone` to `child` with `zone`'s keys. A signed NSEC
 * at the cut without DS proves the delegation unsigned: bogus (`unsigned-delegation`), design §5.
 */
export async function validateDelegationDs(
  child: string,
  authorities: readonly ResourceRecord[],
  zone: string,
  keys: readonly DnskeyData[],
  now: number,
  budget: VerificationBudget,
  memo?: SignatureMemo,
): Promise<Validation<{ ds: DsData[]; ttl: number }>> {
  const ds = rrsetOf(authorities, child, 'DS');
  if (ds.length > 0) {
    const verified = await validateRRset(ds, authorities, zone, keys, now, budget, memo);
    if (verified.kind === 'bogus') return verified;
    return { kind: 'secure', value: { ds: ds.map((rr) => rr.data), ttl: verified.value.ttl } };
  }
  const nsec = rrsetOf(authorities, child, 'NSEC');
  if (nsec.length === 1) {
    const verified = await validateRRset(nsec, authorities, zone, keys, now, budget);
    if (verified.kind === 'bogus') return verified;
    const types = nsec[0]?.data.types ?? [];
    if (types.includes('NS') && !types.includes('DS')) return fail('unsigned-delegation');
  }
  return fail('missing-ds');
}

/**
 * Validates a compact denial (RFC 9824) of `qtype` at `qname` from `zone`: an NSEC owned by
 * `qname` whose next name is its immediate successor, signed by the zone, whose bitmap lacks
 * `qtype` (nodata) or holds NXNAME (nxdomain); and the zone's SOA, signed, for the negative TTL
 * (RFC 2308 §5).
 */
export async function validateDenial(
  qname: string,
  qtype: RRType,
  authorities: readonly ResourceRecord[],
  zone: string,
  keys: readonly DnskeyData[],
  now: number,
  budget: VerificationBudget,
  memo?: SignatureMemo,
): Promise<Validation<Denial>> {
  const soa = rrsetOf(authorities, zone, 'SOA');
  const nsec = rrsetOf(authorities, qname, 'NSEC');
  if (soa.length !== 1 || nsec.length !== 1) return fail('missing-denial');
  const record = nsec[0] as RecordOf<'NSEC'>;
  const successor = immediateSuccessor(qname);
  // Compared as written first: the successor's `\000` label makes the case-blind comparison slow.
  if (record.data.nextName !== successor && !namesEqual(record.data.nextName, successor)) {
    return fail('missing-denial');
  }
  const soaVerified = await validateRRset(soa, authorities, zone, keys, now, budget, memo);
  if (soaVerified.kind === 'bogus') return soaVerified;
  const nsecVerified = await validateRRset(nsec, authorities, zone, keys, now, budget);
  if (nsecVerified.kind === 'bogus') return nsecVerified;
  const types = record.data.types;
  const nxname = types.some((t) => typeToCode(t) === NXNAME_TYPE);
  if (!nxname) {
    if (types.includes(qtype)) return fail('denial-contradicts-type');
    // RFC 6840 §4.4: the parent side of a cut cannot deny types of the child's apex.
    if (types.includes('NS') && !types.includes('SOA') && qtype !== 'DS') {
      return fail('denial-from-parent');
    }
  }
  const minimum = (soa[0] as RecordOf<'SOA'>).data.minimum;
  const ttl = Math.min(soaVerified.value.ttl, minimum, nsecVerified.value.ttl);
  return {
    kind: 'secure',
    value: {
      kind: nxname ? 'nxdomain' : 'nodata',
      ttl,
      records: [...soa, ...soaVerified.value.rrsigs, ...nsec, ...nsecVerified.value.rrsigs],
    },
  };
}
