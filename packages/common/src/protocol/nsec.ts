import { DnssecError } from './errors.js';
import {
  canonicalName,
  formatLabels,
  MAX_LABEL_OCTETS,
  MAX_NAME_OCTETS,
  nameWireLength,
  parseLabels,
} from './names.js';
import type { RecordOf, RRType } from './records.js';
import { codeToType, typeToCode } from './wire.js';

/**
 * Compact denial of existence (RFC 9824, formerly the "black lies" draft), signed online: every
 * denial is one NSEC owned by the query name whose next name is the query name's immediate
 * successor (RFC 4471 §3.1.2, the epsilon function of RFC 4470), so the NSEC covers no other
 * name and the zone cannot be walked (design §5, R8).
 *
 * Worked example, query `x.example` A:
 * - `x.example` does not exist → `x.example NSEC \000.x.example RRSIG NSEC NXNAME`;
 * - `x.example` holds only MAP → `x.example NSEC \000.x.example RRSIG NSEC TYPE65400`;
 * - `x.example` is an empty non-terminal → `x.example NSEC \000.x.example RRSIG NSEC`.
 *
 * The records are returned unsigned; the caller signs each with `signRRset`. The caller also
 * passes the TTL, which must be min(SOA TTL, SOA MINIMUM) of the zone (RFC 9824, RFC 9077,
 * RFC 2308 §5); {@link denialTtl} computes it. The response carrying such an NSEC has RCODE
 * NOERROR even for a name that does not exist (RFC 9824): under NXDOMAIN the NSEC at the query
 * name contradicts the RCODE, and validators (BIND 9.18 `delv`, for one) reject the answer.
 */

/**
 * NXNAME, the meta-type that marks a name as non-existent in a compact denial (RFC 9824).
 * It appears only in NSEC type bitmaps.
 */
export const NXNAME_TYPE = 128;

/** The NSEC that denies the existence of `qname` (RFC 9824: bitmap RRSIG, NSEC, NXNAME). */
export function compactDenialForName(qname: string, ttl: number): RecordOf<'NSEC'> {
  return compactNsec(qname, ['RRSIG', 'NSEC', codeToType(NXNAME_TYPE)], ttl);
}

/**
 * The NSEC that denies a type at a name that exists (RFC 9824, NODATA): the bitmap holds
 * `presentTypes` plus RRSIG and NSEC. For an empty non-terminal, pass no types: the bitmap is
 * then RRSIG and NSEC only.
 */
export function compactDenialForType(
  qname: string,
  presentTypes: readonly RRType[],
  ttl: number,
): RecordOf<'NSEC'> {
  return compactNsec(qname, [...presentTypes, 'RRSIG', 'NSEC'], ttl);
}

/**
 * TTL of a denial: min(SOA TTL, SOA MINIMUM) (RFC 9077 for NSEC, RFC 2308 §5 for the
 * negative answer it belongs to).
 */
export function denialTtl(soa: RecordOf<'SOA'>): number {
  return Math.min(soa.ttl, soa.data.minimum);
}

/**
 * The immediate successor of a name in canonical order (RFC 4471 §3.1.2, absolute method),
 * lowercase. Usually a `\000` label prepended (`a.example` → `\000.a.example`). A name too long
 * for that gets `\000` appended to its first label; when even that does not fit, the last
 * octet of its first label is incremented, skipping uppercase letters, which sort as lowercase
 * (trailing 0xff octets are dropped first; a label of only 0xff is dropped and the successor is
 * then the parent's next sibling). Throws `DnssecError` (`ERR_NO_SUCCESSOR`) when no successor exists.
 */
export function immediateSuccessor(name: string): string {
  const labels = parseLabels(canonicalName(name));
  const length = nameWireLength(name);
  if (length + 2 <= MAX_NAME_OCTETS) return formatLabels([Uint8Array.of(0), ...labels]);
  const head = labels[0];
  if (head !== undefined && head.length < MAX_LABEL_OCTETS && length + 1 <= MAX_NAME_OCTETS) {
    return formatLabels([Uint8Array.of(...head, 0), ...labels.slice(1)]);
  }
  for (let i = 0; i < labels.length; i++) {
    const label = [...(labels[i] as Uint8Array)];
    const tail = labels.slice(i + 1);
    // Past the first label we stand at an ancestor, after all of its descendants: its next
    // sibling is the label with \000 appended, which always fits once a label has been dropped.
    if (i > 0 && label.length < MAX_LABEL_OCTETS) {
      return formatLabels([Uint8Array.of(...label, 0), ...tail]);
    }
    while (label.length > 0) {
      const last = label.pop() as number;
      if (last < 0xff) {
        // RFC 4471 §4.2: uppercase letters sort as lowercase, so 0x40 steps to 0x5b.
        label.push(last + 1 === 0x41 ? 0x5b : last + 1);
        return formatLabels([Uint8Array.from(label), ...tail]);
      }
    }
  }
  throw new DnssecError('ERR_NO_SUCCESSOR', `no name follows ${name} in canonical order`);
}

function compactNsec(qname: string, types: readonly RRType[], ttl: number): RecordOf<'NSEC'> {
  return {
    name: qname,
    type: 'NSEC',
    class: 'IN',
    ttl,
    data: { nextName: immediateSuccessor(qname), types: sortTypes(types) },
  };
}

/** Types in ascending code order without duplicates, as NSEC bitmaps list them (RFC 4034 §4.1.2). */
export function sortTypes(types: Iterable<RRType>): RRType[] {
  const codes = [...new Set([...types].map((t) => typeToCode(t)))].sort((a, b) => a - b);
  return codes.map((code) => codeToType(code));
}
