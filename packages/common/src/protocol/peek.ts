/**
 * What a server's limits read from a message's octets without decoding it whole: the question
 * of a query (for a per-client budget of names), the kind of a response (for Response Rate
 * Limiting), and a response cut to its header and question (an RRL "slip"). Each reads only the
 * header, the question and, for a response without answers, the owner names and types of its
 * authority section.
 *
 * Worked example: the response `ab cd 84 00 00 01 00 00 00 01 00 00 <q> <SOA of the zone
 * 4.4.e164.mimi.arpa>` (AA, NOERROR, no answer, an SOA in the authority section: a name that
 * does not exist, as compact denial answers it, or a type it does not have) is `{ kind:
 * 'denial', zone: '4.4.e164.mimi.arpa' }`; its slip is the same 12-octet header with TC set and
 * every count but QDCOUNT zero, then `<q>`.
 */
import { canonicalName } from './names.js';
import { HEADER_OCTETS, decodeName } from './wire.js';

/** The question of a message, as read by {@link questionOf}. */
export interface PeekedQuestion {
  /** The query name in canonical form (lowercase, no trailing dot; the root is `.`). */
  readonly name: string;
  /** The query type's code (`MAP` is 65400). */
  readonly type: number;
  /** Offset just after the question in the message. */
  readonly end: number;
}

/**
 * What a response is, for Response Rate Limiting (the classes of BIND's and NSD's RRL):
 *
 * - `positive`: NOERROR with answers (or with nothing to classify by, as a truncated response),
 *   counted per query name and type;
 * - `referral`: NOERROR, no answer, AA clear and an NS RRset in the authority section, counted
 *   per delegation point;
 * - `denial`: NXDOMAIN, or NOERROR with no answer and an SOA in the authority section (NODATA,
 *   and a name that does not exist under compact denial, RFC 9824), counted per zone (the SOA's
 *   owner): a flood of random names under one zone is one stream of responses;
 * - `error`: every other rcode (REFUSED, SERVFAIL, FORMERR, NOTIMP), counted per client alone.
 */
export type ResponseClass =
  | { readonly kind: 'positive'; readonly name: string; readonly type: number }
  | { readonly kind: 'referral'; readonly name: string }
  | { readonly kind: 'denial'; readonly zone: string }
  | { readonly kind: 'error' };

const TYPE_NS = 2;
const TYPE_SOA = 6;
const RCODE_NOERROR = 0;
const RCODE_NXDOMAIN = 3;
const FLAG_AA = 0x04;
const FLAG_TC = 0x02;

function u16(bytes: Uint8Array, at: number): number {
  return ((bytes[at] as number) << 8) | (bytes[at + 1] as number);
}

/**
 * The one question of a message (QDCOUNT 1), or undefined when it has another count or the
 * question does not parse. The name follows compression pointers as {@link decodeName} does.
 */
export function questionOf(bytes: Uint8Array): PeekedQuestion | undefined {
  if (bytes.length < HEADER_OCTETS || u16(bytes, 4) !== 1) return undefined;
  try {
    const { name, end } = decodeName(bytes, HEADER_OCTETS);
    if (end + 4 > bytes.length) return undefined;
    return { name: canonicalName(name), type: u16(bytes, end), end: end + 4 };
  } catch {
    return undefined;
  }
}

/**
 * The class of a response (see {@link ResponseClass}). A response whose octets do not parse as
 * far as needed is an `error`: it is not one this server would send.
 */
export function classifyResponse(wire: Uint8Array): ResponseClass {
  if (wire.length < HEADER_OCTETS) return { kind: 'error' };
  const rcode = (wire[3] as number) & 0x0f;
  if (rcode !== RCODE_NOERROR && rcode !== RCODE_NXDOMAIN) return { kind: 'error' };
  const question = questionOf(wire);
  if (question === undefined) return { kind: 'error' };
  const answers = u16(wire, 6);
  if (rcode === RCODE_NOERROR && answers > 0) {
    return { kind: 'positive', name: question.name, type: question.type };
  }
  try {
    let at = question.end;
    for (let i = 0; i < answers; i++) at = skipRecord(wire, at);
    const authorities = u16(wire, 8);
    const aa = ((wire[2] as number) & FLAG_AA) !== 0;
    for (let i = 0; i < authorities; i++) {
      const { name, end } = decodeName(wire, at);
      if (end + 10 > wire.length) break;
      const type = u16(wire, end);
      if (type === TYPE_SOA) return { kind: 'denial', zone: canonicalName(name) };
      if (type === TYPE_NS && !aa && rcode === RCODE_NOERROR) {
        return { kind: 'referral', name: canonicalName(name) };
      }
      at = end + 10 + u16(wire, end + 8);
    }
  } catch {
    return { kind: 'error' };
  }
  // NXDOMAIN without an SOA (a server that leaves it out): the query name stands for the zone.
  if (rcode === RCODE_NXDOMAIN) return { kind: 'denial', zone: question.name };
  return { kind: 'positive', name: question.name, type: question.type };
}

/** Offset after the resource record at `at`: owner name, type, class, TTL, RDLENGTH, RDATA. */
function skipRecord(wire: Uint8Array, at: number): number {
  const { end } = decodeName(wire, at);
  if (end + 10 > wire.length) throw new RangeError('record header runs past the end');
  return end + 10 + u16(wire, end + 8);
}

/**
 * The "slip" form of a response (RRL): its header with TC set and ANCOUNT, NSCOUNT and ARCOUNT
 * zero, then its question. A client that gets it retries over TCP (RFC 7766 §5), which a
 * spoofed source cannot, so a legitimate client behind a flood still gets its answer while the
 * reflected octets stay at the size of the query.
 */
export function slipResponse(wire: Uint8Array): Uint8Array {
  const question = questionOf(wire);
  const end = question?.end ?? HEADER_OCTETS;
  const out = new Uint8Array(Math.min(end, wire.length));
  out.set(wire.subarray(0, out.length));
  if (out.length < HEADER_OCTETS) return out;
  out[2] = (out[2] as number) | FLAG_TC;
  // QDCOUNT stays 1 when the question was kept, else 0; the other counts are 0.
  out[4] = 0;
  out[5] = question === undefined ? 0 : 1;
  out.fill(0, 6, HEADER_OCTETS);
  return out;
}
