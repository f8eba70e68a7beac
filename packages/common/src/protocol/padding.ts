/**
 * EDNS(0) padding (RFC 7830) with the block-length policy of RFC 8467 §4.1: a query is padded to
 * a multiple of {@link QUERY_PADDING_BLOCK_OCTETS}, a response to a multiple of
 * {@link RESPONSE_PADDING_BLOCK_OCTETS}, so that the length of an encrypted DNS message (DoH,
 * design §7) says little about the name asked or the records answered.
 *
 * Padding works on encoded messages: the Padding option (code 12) is put into the OPT record's
 * RDATA, RDLENGTH is corrected, and nothing else moves. A response from the answer cache is padded
 * the same way on its way out, and the cache itself keeps unpadded octets shared by every
 * transport. The OPT record is not covered by any RRSIG (RFC 6891 §6.1.1: it is not data), so
 * padding never disturbs DNSSEC.
 *
 * A message without an OPT record is returned unchanged: a response may carry OPT only when its
 * query did (RFC 6891 §7), and a query without EDNS asked for no EDNS in its answer. A Padding
 * option already in the message is replaced (RFC 7830 §3: at most one per message). When the
 * next multiple of the block would exceed the largest DNS message, the message is padded up to
 * {@link MAX_MESSAGE_OCTETS} only; when not even the option's 4-octet header fits, it is left as
 * it is.
 *
 * Worked example: a 52-octet query with an empty OPT gets a Padding option of 4 + 72 octets: 52
 * + 76 = 128. A 530-octet response gets 4 + 402: 936 = 2 × 468.
 */
import { recordSpans } from './record-spans.js';
import { MAX_MESSAGE_OCTETS } from './wire.js';

/** The EDNS option code of Padding (RFC 7830 §4). */
export const PADDING_OPTION_CODE = 12;

/** RFC 8467 §4.1: clients pad queries to a multiple of 128 octets. */
export const QUERY_PADDING_BLOCK_OCTETS = 128;

/** RFC 8467 §4.1: servers pad responses to a multiple of 468 octets. */
export const RESPONSE_PADDING_BLOCK_OCTETS = 468;

const TYPE_OPT = 41;
/** An EDNS option's code and length fields (RFC 6891 §6.1.2). */
const OPTION_HEADER_OCTETS = 4;

/** Where the OPT record's RDATA lies in an encoded message. */
interface OptRdata {
  /** Offset of the RDLENGTH field. */
  readonly lengthAt: number;
  readonly start: number;
  readonly end: number;
}

/**
 * The OPT RDATA of `wire`, or undefined when the message has no OPT record or does not parse.
 * Bounded: every step moves forward through a finite message.
 */
function findOpt(wire: Uint8Array): OptRdata | undefined {
  const spans = recordSpans(wire);
  if (spans === undefined) return undefined;
  let found: OptRdata | undefined;
  for (const span of spans) {
    if (span.type !== TYPE_OPT) continue;
    // RFC 6891 §6.1.1: a message with more than one OPT record is malformed.
    if (found !== undefined) return undefined;
    found = { lengthAt: span.at + 8, start: span.rdataStart, end: span.rdataEnd };
  }
  return found;
}

/**
 * `wire` with its OPT record padded to a multiple of `block` octets (see the module comment), or
 * `wire` itself when it has no OPT record, does not parse, or cannot be padded. The result is a
 * new array; `wire` is never changed.
 */
export function padMessage(wire: Uint8Array, block: number): Uint8Array {
  if (!Number.isSafeInteger(block) || block < 1) {
    throw new RangeError(`block must be a positive integer, got ${String(block)}`);
  }
  const opt = findOpt(wire);
  if (opt === undefined) return wire;
  // The options to keep: every one but an earlier Padding option.
  const kept: Array<[number, number]> = [];
  let keptOctets = 0;
  for (let at = opt.start; at < opt.end;) {
    if (at + OPTION_HEADER_OCTETS > opt.end) return wire;
    const code = ((wire[at] as number) << 8) | (wire[at + 1] as number);
    const next =
      at + OPTION_HEADER_OCTETS + (((wire[at + 2] as number) << 8) | (wire[at + 3] as number));
    if (next > opt.end) return wire;
    if (code !== PADDING_OPTION_CODE) {
      kept.push([at, next]);
      keptOctets += next - at;
    }
    at = next;
  }
  const unpadded = wire.length - (opt.end - opt.start) + keptOctets + OPTION_HEADER_OCTETS;
  let fill = (block - (unpadded % block)) % block;
  if (unpadded + fill > MAX_MESSAGE_OCTETS) fill = MAX_MESSAGE_OCTETS - unpadded;
  if (fill < 0) return wire;
  const out = new Uint8Array(unpadded + fill);
  out.set(wire.subarray(0, opt.start), 0);
  let to = opt.start;
  for (const [from, until] of kept) {
    out.set(wire.subarray(from, until), to);
    to += until - from;
  }
  out[to] = PADDING_OPTION_CODE >>> 8;
  out[to + 1] = PADDING_OPTION_CODE & 0xff;
  out[to + 2] = fill >>> 8;
  out[to + 3] = fill & 0xff;
  // RFC 7830 §3: the padding octets are 0x00 (a new Uint8Array is zeroed).
  to += OPTION_HEADER_OCTETS + fill;
  out.set(wire.subarray(opt.end), to);
  const rdlength = to - opt.start;
  out[opt.lengthAt] = rdlength >>> 8;
  out[opt.lengthAt + 1] = rdlength & 0xff;
  return out;
}
