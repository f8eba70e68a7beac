import {
  DNSSEC_ALGORITHM_ED25519,
  NXNAME_TYPE,
  dsMatchesDnskey,
  immediateSuccessor,
  namesEqual,
  typeToCode,
  verifyRRset,
  type DnskeyData,
  type DsData,
  type RecordOf,
  type ResourceRecord,
  type RRType,
} from '@mimi-discovery/common';
import { MAX_VERIFICATIONS_PER_RESOLUTION } from './limits.js';

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
 * Denials are compact (RFC 9824): worked example, `x.z MAP` in zone `z` answered with
 * `x.z NSEC \000.x.z RRSIG NSEC NXNAME` proves that `x.z` does not exist, and
 * `x.z NSEC \000.x.z AUTHKEY RRSIG NSEC` that it exists without MAP. Denials by NSEC records
 * that cover the name from elsewhere (classic NSEC chains) are not accepted: our servers never
 * send them.
 */

/** The result of a validation step: the trusted value, or why the data is bogus. */
export type Validation<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** Signature verifications left for one resolution (mutable, shared by every step of it). */
export interface VerificationBudget {
  remaining: number;
}

/** A fresh budget of {@link MAX_VERIFICATIONS_PER_RESOLUTION} verifications. */
export function createBudget(): VerificationBudget {
  return { remaining: MAX_VERIFICATIONS_PER_RESOLUTION };
}

/** The trusted DNSKEYs of a zone and for how long they may be kept. */
export interface TrustedKeys {
  readonly keys: readonly DnskeyData[];
  readonly ttl: number;
}

/** What a verified denial proves. */
export interface Denial {
  readonly kind: 'nodata' | 'nxdomain';
  /** RFC 2308 §5 with RFC 9824: min(SOA TTL, SOA MINIMUM, NSEC TTL, RRSIG TTLs), capped by expiry. */
  readonly ttl: number;
  /** The SOA, the NSEC and their RRSIGs, for the authority section of a response. */
  readonly records: readonly ResourceRecord[];
}

/** Every RRSIG failure of `verifyRRset`, as the reason counted in stats. */
const FAILURE_REASONS: Readonly<Record<string, string>> = Object.freeze({
  'no-key': 'no-key',
  'bad-signature': 'bogus-signature',
  expired: 'signature-expired',
  'not-yet-valid': 'signature-not-yet-valid',
  mismatch: 'signature-mismatch',
  'unsupported-algorithm': 'unsupported-algorithm',
});

const fail = <T>(reason: string): Validation<T> => ({ ok: false, reason });

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

/**
 * Verifies `rrset` with any of its RRSIGs in `section` made by `zone` with `keys`. The TTL is
 * min(record TTLs, RRSIG original TTL, seconds until the RRSIG expires) (RFC 4035 §5.3.3).
 */
export function validateRRset(
  rrset: readonly ResourceRecord[],
  section: readonly ResourceRecord[],
  zone: string,
  keys: readonly DnskeyData[],
  now: number,
  budget: VerificationBudget,
): Validation<{ ttl: number; rrsigs: Array<RecordOf<'RRSIG'>> }> {
  const first = rrset[0];
  if (first === undefined) return fail('empty-rrset');
  const sigs = rrsigsOf(section, first.name, first.type as RRType).filter((sig) =>
    namesEqual(sig.data.signerName, zone),
  );
  if (sigs.length === 0) return fail('missing-signature');
  let reason = 'missing-signature';
  for (const sig of sigs) {
    if (budget.remaining <= 0) return fail('verification-limit');
    budget.remaining--;
    const result = verifyRRset(rrset, sig, keys, now);
    if (result.ok) {
      const ttl = Math.min(
        ...rrset.map((rr) => rr.ttl),
        sig.data.originalTtl,
        Math.max(0, sig.data.expiration - now),
      );
      return { ok: true, value: { ttl, rrsigs: [sig] } };
    }
    reason = FAILURE_REASONS[result.reason] ?? 'bogus-signature';
  }
  return fail(reason);
}

/**
 * Validates the DNSKEY RRset of `zone` from its response's answer section: some Ed25519 key must
 * match one of `ds` (the trust anchor, or the DS the parent signed) and sign the RRset.
 */
export function validateDnskeys(
  zone: string,
  answers: readonly ResourceRecord[],
  ds: readonly DsData[],
  now: number,
  budget: VerificationBudget,
): Validation<TrustedKeys> {
  const rrset = rrsetOf(answers, zone, 'DNSKEY');
  if (rrset.length === 0) return fail('missing-dnskey');
  const entry = rrset.filter(
    (rr) =>
      rr.data.algorithm === DNSSEC_ALGORITHM_ED25519 &&
      ds.some((d) => dsMatchesDnskey(zone, d, rr.data)),
  );
  if (entry.length === 0) return fail('no-ds-match');
  const verified = validateRRset(
    rrset,
    answers,
    zone,
    entry.map((rr) => rr.data),
    now,
    budget,
  );
  if (!verified.ok) return verified;
  return { ok: true, value: { keys: rrset.map((rr) => rr.data), ttl: verified.value.ttl } };
}

/**
 * Validates the DS RRset of a referral from `zone` to `child` with `zone`'s keys. A signed NSEC
 * at the cut without DS proves the delegation unsigned: bogus (`unsigned-delegation`), design §5.
 */
export function validateDelegationDs(
  child: string,
  authorities: readonly ResourceRecord[],
  zone: string,
  keys: readonly DnskeyData[],
  now: number,
  budget: VerificationBudget,
): Validation<{ ds: DsData[]; ttl: number }> {
  const ds = rrsetOf(authorities, child, 'DS');
  if (ds.length > 0) {
    const verified = validateRRset(ds, authorities, zone, keys, now, budget);
    if (!verified.ok) return verified;
    return { ok: true, value: { ds: ds.map((rr) => rr.data), ttl: verified.value.ttl } };
  }
  const nsec = rrsetOf(authorities, child, 'NSEC');
  if (nsec.length === 1) {
    const verified = validateRRset(nsec, authorities, zone, keys, now, budget);
    if (!verified.ok) return verified;
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
export function validateDenial(
  qname: string,
  qtype: RRType,
  authorities: readonly ResourceRecord[],
  zone: string,
  keys: readonly DnskeyData[],
  now: number,
  budget: VerificationBudget,
): Validation<Denial> {
  const soa = rrsetOf(authorities, zone, 'SOA');
  const nsec = rrsetOf(authorities, qname, 'NSEC');
  if (soa.length !== 1 || nsec.length !== 1) return fail('missing-denial');
  const record = nsec[0] as RecordOf<'NSEC'>;
  if (!namesEqual(record.data.nextName, immediateSuccessor(qname))) return fail('missing-denial');
  const soaVerified = validateRRset(soa, authorities, zone, keys, now, budget);
  if (!soaVerified.ok) return soaVerified;
  const nsecVerified = validateRRset(nsec, authorities, zone, keys, now, budget);
  if (!nsecVerified.ok) return nsecVerified;
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
    ok: true,
    value: {
      kind: nxname ? 'nxdomain' : 'nodata',
      ttl,
      records: [...soa, ...soaVerified.value.rrsigs, ...nsec, ...nsecVerified.value.rrsigs],
    },
  };
}
