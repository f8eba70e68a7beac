/**
 * Where the resource records of an encoded DNS message lie, found by walking its owner names
 * (RFC 1035 §4.1) without decoding them: what the answer cache needs to patch TTLs in place and
 * EDNS padding needs to grow the OPT record, both on octets that are sent as they are.
 *
 * Worked example: a response with one question and one answer `a. 300 IN A 192.0.2.1` has
 * the question at offset 12 (`01 61 00` then type and class), the answer's owner at 19 and one
 * span `{ at: 22, type: 1, rdataStart: 32, rdataEnd: 36 }`: type at 22, TTL at 26, RDLENGTH at
 * 30, RDATA from 32 to the end at 36.
 */
import { HEADER_OCTETS } from './wire.js';

/** Where one resource record's fixed fields and RDATA lie in an encoded message. */
export interface RecordSpan {
  /** Offset of the TYPE field, just after the owner name; CLASS is at +2, TTL at +4, RDLENGTH at +8. */
  readonly at: number;
  /** The record's type code. */
  readonly type: number;
  /** Offset of the first octet of RDATA. */
  readonly rdataStart: number;
  /** Offset just after RDATA. */
  readonly rdataEnd: number;
}

/** The fixed fields after a record's owner name: type, class, TTL, RDLENGTH (RFC 1035 §4.1.3). */
const RECORD_FIXED_OCTETS = 10;

/**
 * The records of `wire` (answer, authority and additional sections in order), or undefined when
 * the octets do not parse as exactly the records the header counts. Owner names are skipped,
 * not followed: a compression pointer ends a name. Bounded: every step moves forward through a
 * finite message.
 */
export function recordSpans(wire: Uint8Array): RecordSpan[] | undefined {
  if (wire.length < HEADER_OCTETS) return undefined;
  const u16 = (at: number): number => ((wire[at] as number) << 8) | (wire[at + 1] as number);
  const questions = u16(4);
  const records = u16(6) + u16(8) + u16(10);
  let at = HEADER_OCTETS;
  const skipName = (): boolean => {
    for (;;) {
      if (at >= wire.length) return false;
      const length = wire[at] as number;
      if (length === 0) {
        at += 1;
        return true;
      }
      if ((length & 0xc0) === 0xc0) {
        at += 2;
        return at <= wire.length;
      }
      if ((length & 0xc0) !== 0) return false;
      at += 1 + length;
    }
  };
  for (let i = 0; i < questions; i++) {
    if (!skipName()) return undefined;
    // QTYPE and QCLASS.
    at += 4;
  }
  const spans: RecordSpan[] = [];
  for (let i = 0; i < records; i++) {
    if (!skipName() || at + RECORD_FIXED_OCTETS > wire.length) return undefined;
    const rdataStart = at + RECORD_FIXED_OCTETS;
    const rdataEnd = rdataStart + u16(at + 8);
    if (rdataEnd > wire.length) return undefined;
    spans.push({ at, type: u16(at), rdataStart, rdataEnd });
    at = rdataEnd;
  }
  return at === wire.length ? spans : undefined;
}
