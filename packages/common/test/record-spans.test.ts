import { describe, expect, it } from 'vitest';
import { recordSpans } from '../src/protocol/record-spans.js';

// RFC 1035 §4.1: header, questions, then records of owner name, type, class, TTL, RDLENGTH, RDATA.

/** The module's worked example: one question `a. A`, one answer `a. 300 IN A 192.0.2.1`. */
const RESPONSE = Uint8Array.of(
  ...[0x12, 0x34, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0],
  ...[1, 0x61, 0, 0, 1, 0, 1],
  ...[1, 0x61, 0, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 192, 0, 2, 1],
);

describe('recordSpans', () => {
  it('finds each record after its owner name', () => {
    expect(recordSpans(RESPONSE)).toEqual([{ at: 22, type: 1, rdataStart: 32, rdataEnd: 36 }]);
  });

  it('ends a name at a compression pointer', () => {
    const pointed = Uint8Array.of(...RESPONSE.subarray(0, 19), 0xc0, 12, ...RESPONSE.subarray(22));
    expect(recordSpans(pointed)).toEqual([{ at: 21, type: 1, rdataStart: 31, rdataEnd: 35 }]);
  });

  it('refuses octets that are not exactly the counted records', () => {
    expect(recordSpans(RESPONSE.subarray(0, RESPONSE.length - 1))).toBeUndefined();
    expect(recordSpans(Uint8Array.of(...RESPONSE, 0))).toBeUndefined();
    expect(recordSpans(new Uint8Array(5))).toBeUndefined();
    const badLabel = RESPONSE.slice();
    badLabel[19] = 0x80;
    expect(recordSpans(badLabel)).toBeUndefined();
  });
});
