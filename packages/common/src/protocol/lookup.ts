import { canonicalName, isSubdomain, namesEqual } from './names.js';
import { compactDenialForName, compactDenialForType } from './nsec.js';
import type { Question, RecordOf, ResourceRecord, RRType } from './records.js';
import { descendZone, type ZoneNode, type ZoneView } from './zone.js';

/**
 * Zone lookup as a pure function: a zone, a question and options in; the records of the answer
 * out, as one of four outcomes (or a refusal for a question the zone is not authoritative for).
 * No I/O and no clock: online signing of denials goes through the `sign` callback, which the
 * caller binds to its key and validity window.
 *
 * Worked example, zone `4.4.e164.mimi.arpa` with a delegation at `7.4.4.e164.mimi.arpa`:
 * - `…8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa MAP` with a MAP RRset there → `answer` (MAP + RRSIG);
 * - `…5.7.4.4.e164.mimi.arpa MAP` → `referral` (NS of the child in authority, DS + RRSIG, glue);
 * - the same MAP name with only MAPREF there → `nodata` (SOA, and an NSEC listing MAPREF);
 * - an absent number → `nxdomain` (SOA, and an NSEC with the NXNAME type; RFC 9824).
 */

/** Which sections of a response a lookup fills; the server adds the header and the question. */
export interface LookupSections {
  readonly answers: ResourceRecord[];
  readonly authorities: ResourceRecord[];
  readonly additionals: ResourceRecord[];
}

/**
 * The outcome of a lookup (as CoreDNS's `Success | NameError | Delegation | NoData`):
 * - `answer`: the RRset asked for, authoritative;
 * - `referral`: the name is at or below a zone cut; authority holds the child's NS (not
 *   authoritative), its DS (or the signed proof there is none), and glue in additionals;
 * - `nodata`: the name exists without the type asked for;
 * - `nxdomain`: the name does not exist;
 * - `refused`: the question is not for this zone (wrong class, or a name outside it).
 */
export type LookupOutcome =
  | ({ kind: 'answer' } & LookupSections)
  | ({ kind: 'referral'; cut: string } & LookupSections)
  | ({ kind: 'nodata' } & LookupSections)
  | ({ kind: 'nxdomain' } & LookupSections)
  | { kind: 'refused'; reason: 'out-of-zone' | 'class' };

/** Signs one RRset (same owner, type and class) online, returning its RRSIG. */
export type RRsetSigner = (rrset: readonly ResourceRecord[]) => RecordOf<'RRSIG'>;

/** Options of {@link lookupZone}. */
export interface LookupOptions {
  /** The query's DO bit (RFC 3225): include RRSIGs and denial records only when set. */
  readonly dnssecOk: boolean;
  /**
   * Signs compact-denial NSEC records online (RFC 9824). Without it, negative answers carry no
   * NSEC even when `dnssecOk` is set (a zone served unsigned, or by a server without the key).
   */
  readonly sign?: RRsetSigner;
}

/**
 * Looks a question up in one zone. Wildcards and CNAME are not part of the discovery namespace
 * (design §3) and get no special treatment: `*` is an ordinary label and CNAME an ordinary type.
 */
export function lookupZone(
  zone: ZoneView,
  question: Question,
  options: LookupOptions,
): LookupOutcome {
  if (question.class !== 'IN' && question.class !== 'ANY')
    return { kind: 'refused', reason: 'class' };
  const qname = canonicalName(question.name);
  if (!isSubdomain(qname, zone.origin)) return { kind: 'refused', reason: 'out-of-zone' };

  // RFC 1034 §4.3.2 step 3b: a zone cut on the way down turns the answer into a referral. The
  // parent side is authoritative for DS at the cut itself (RFC 4035 §3.1.4.1).
  const { cut, node } = descendZone(zone, qname);
  if (cut !== undefined && !(cut.name === qname && question.type === 'DS')) {
    return referral(zone, cut.name, cut.node, options);
  }

  if (node) {
    if (question.type === 'ANY') {
      // RFC 8482 allows a minimal answer; the zone is small per name, so give every RRset.
      const answers = [...node.rrsets.keys()].flatMap((type) =>
        withSignatures(node, type, options),
      );
      return { kind: 'answer', answers, authorities: [], additionals: [] };
    }
    const type = question.type as RRType;
    if (node.rrsets.has(type)) {
      return {
        kind: 'answer',
        answers: withSignatures(node, type, options),
        authorities: [],
        additionals: [],
      };
    }
    return negative(zone, 'nodata', qname, [...node.rrsets.keys()], options);
  }
  if (zone.hasDescendants(qname)) return negative(zone, 'nodata', qname, [], options);
  return negative(zone, 'nxdomain', qname, 'nxname', options);
}

function withSignatures(node: ZoneNode, type: RRType, options: LookupOptions): ResourceRecord[] {
  const rrset = [...(node.rrsets.get(type) ?? [])];
  if (!options.dnssecOk) return rrset;
  return [...rrset, ...(node.signatures.get(type) ?? [])];
}

function referral(
  zone: ZoneView,
  cut: string,
  node: ZoneNode,
  options: LookupOptions,
): LookupOutcome {
  const ns = node.rrsets.get('NS') ?? [];
  const authorities: ResourceRecord[] = [...ns];
  if (!options.dnssecOk) {
    // RFC 4035 §3.1.4: DS and its proofs go only to queries with the DO bit.
  } else if (node.rrsets.has('DS')) {
    authorities.push(...withSignatures(node, 'DS', options));
  } else if (options.sign) {
    // RFC 4035 §3.1.4: prove the absence of DS so the resolver knows the child is unsigned.
    authorities.push(...signedDenial(cut, [...node.rrsets.keys()], minimumTtl(zone), options.sign));
  }
  const additionals: ResourceRecord[] = [];
  for (const rr of ns) {
    if (rr.type !== 'NS') continue;
    const target = canonicalName(rr.data);
    if (!isSubdomain(target, zone.origin)) continue;
    const host = zone.node(target);
    additionals.push(...(host?.rrsets.get('A') ?? []), ...(host?.rrsets.get('AAAA') ?? []));
    // Design §7: a nameserver's DoH endpoint travels with the glue as `_dns.<nameserver>` SVCB.
    const svcb = zone.node(`_dns.${target}`)?.rrsets.get('SVCB') ?? [];
    additionals.push(...svcb);
  }
  return { kind: 'referral', cut, answers: [], authorities, additionals };
}

function negative(
  zone: ZoneView,
  kind: 'nodata' | 'nxdomain',
  qname: string,
  types: RRType[] | 'nxname',
  options: LookupOptions,
): LookupOutcome {
  const apex = zone.node(zone.origin);
  const soaTtl = minimumTtl(zone);
  const soa = (apex?.rrsets.get('SOA') ?? []).map((rr) => ({ ...rr, ttl: soaTtl }));
  const authorities: ResourceRecord[] = [...soa];
  if (options.dnssecOk && apex) {
    // RFC 4035 §2.2: an RRSIG's TTL equals the TTL of the RRset it covers.
    authorities.push(...(apex.signatures.get('SOA') ?? []).map((rr) => ({ ...rr, ttl: soaTtl })));
    if (options.sign) authorities.push(...signedDenial(qname, types, soaTtl, options.sign));
  }
  return { kind, answers: [], authorities, additionals: [] };
}

function signedDenial(
  owner: string,
  types: RRType[] | 'nxname',
  ttl: number,
  sign: RRsetSigner,
): ResourceRecord[] {
  const nsec =
    types === 'nxname' ? compactDenialForName(owner, ttl) : compactDenialForType(owner, types, ttl);
  return [nsec, sign([nsec])];
}

/** RFC 2308 §5 and RFC 4035 §2.3: negative TTL is min(SOA TTL, SOA MINIMUM). */
function minimumTtl(zone: ZoneView): number {
  const soa = zone.node(zone.origin)?.rrsets.get('SOA')?.[0];
  if (!soa || soa.type !== 'SOA') return 0;
  return Math.min(soa.ttl, soa.data.minimum);
}

/** Whether two records have the same owner, type and class (belong to one RRset). */
export function sameRRset(a: ResourceRecord, b: ResourceRecord): boolean {
  return a.type === b.type && a.class === b.class && namesEqual(a.name, b.name);
}
