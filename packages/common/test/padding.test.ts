import { describe, expect, it } from 'vitest';
import {
  MAX_MESSAGE_OCTETS,
  PADDING_OPTION_CODE,
  QUERY_PADDING_BLOCK_OCTETS,
  RESPONSE_PADDING_BLOCK_OCTETS,
  buildQuery,
  decodeMessage,
  encodeMessage,
  encodeRecord,
  padMessage,
  record,
  respondError,
  type Message,
} from '../src/index.js';

// RFC 7830 (the Padding option, code 12) with the block-length policy of RFC 8467 §4.1.

const NAME = '8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa';
const text = (value: string): Uint8Array => new TextEncoder().encode(value);

/** The Padding options of an encoded message. */
function paddingOf(wire: Uint8Array): Uint8Array[] {
  return (decodeMessage(wire).edns?.options ?? [])
    .filter((o) => o.code === PADDING_OPTION_CODE)
    .map((o) => o.data);
}

/** A response to a query for NAME with `count` TXT records. */
function response(count: number, edns = true): Message {
  const query: Message = buildQuery(NAME, 'TXT', { dnssecOk: true });
  if (!edns) delete query.edns;
  const base = respondError(query, 'NOERROR');
  base.answers = Array.from({ length: count }, (_, i) =>
    record(NAME, 'TXT', [text(`record number ${i} of the answer`)], 300),
  );
  return base;
}

describe('padMessage', () => {
  it.each([0, 1, 5, 12, 40])(
    'pads a response of %i records to a multiple of 468 octets, records unchanged',
    (count) => {
      const message = response(count);
      const wire = encodeMessage(message);
      const padded = padMessage(wire, RESPONSE_PADDING_BLOCK_OCTETS);
      expect(padded.length % RESPONSE_PADDING_BLOCK_OCTETS).toBe(0);
      expect(padded.length - wire.length).toBeGreaterThanOrEqual(4);
      expect(padded.length - wire.length).toBeLessThan(RESPONSE_PADDING_BLOCK_OCTETS + 4);
      const decoded = decodeMessage(padded);
      expect(decoded.answers).toEqual(decodeMessage(wire).answers);
      expect(decoded.questions).toEqual(message.questions);
      expect(decoded.edns?.dnssecOk).toBe(true);
      const [padding] = paddingOf(padded);
      expect(padding?.every((octet) => octet === 0)).toBe(true);
      // Everything before the OPT record is the same octets: RRSIGs over records are untouched.
      const optAt = wire.length - 11;
      expect(padded.subarray(0, optAt)).toEqual(wire.subarray(0, optAt));
    },
  );

  it('pads a query to a multiple of 128 octets', () => {
    const wire = encodeMessage(buildQuery(NAME, 'MAP'));
    const padded = padMessage(wire, QUERY_PADDING_BLOCK_OCTETS);
    expect(padded.length).toBe(QUERY_PADDING_BLOCK_OCTETS);
    expect(paddingOf(padded)[0]).toHaveLength(QUERY_PADDING_BLOCK_OCTETS - wire.length - 4);
  });

  it('keeps the other EDNS options and replaces an earlier Padding option', () => {
    const message = response(2);
    const ede = { code: 15, data: Uint8Array.of(0, 3) };
    message.edns = {
      ...(message.edns ?? expect.unreachable()),
      options: [{ code: PADDING_OPTION_CODE, data: new Uint8Array(7) }, ede],
    };
    const padded = padMessage(encodeMessage(message), RESPONSE_PADDING_BLOCK_OCTETS);
    expect(padded.length % RESPONSE_PADDING_BLOCK_OCTETS).toBe(0);
    const options = decodeMessage(padded).edns?.options ?? [];
    expect(options.map((o) => o.code)).toEqual([15, PADDING_OPTION_CODE]);
    expect(options[0]).toEqual(ede);
    // Padding twice gives the same octets.
    expect(padMessage(padded, RESPONSE_PADDING_BLOCK_OCTETS)).toEqual(padded);
  });

  it('pads an OPT record that is not the last record, moving nothing else', () => {
    // Header, question, then the additional section: OPT first, an A record after it.
    const query = encodeMessage(buildQuery(NAME, 'A'));
    const opt = query.subarray(query.length - 11);
    const glue = encodeRecord(record('ns1.mimi.arpa', 'A', '192.0.2.1', 3600));
    const wire = new Uint8Array(query.length + glue.length);
    wire.set(query, 0);
    wire.set(glue, query.length);
    wire[11] = 2; // ARCOUNT: OPT and A
    expect(wire.subarray(query.length - 11, query.length)).toEqual(opt);
    const padded = padMessage(wire, QUERY_PADDING_BLOCK_OCTETS);
    expect(padded.length % QUERY_PADDING_BLOCK_OCTETS).toBe(0);
    const decoded = decodeMessage(padded);
    expect(decoded.additionals).toEqual([record('ns1.mimi.arpa', 'A', '192.0.2.1', 3600)]);
    expect(paddingOf(padded)).toHaveLength(1);
    expect(padded.subarray(padded.length - glue.length)).toEqual(glue);
  });

  it('leaves a message without EDNS as it is: a response has OPT only if its query had', () => {
    const wire = encodeMessage(response(3, false));
    expect(padMessage(wire, RESPONSE_PADDING_BLOCK_OCTETS)).toBe(wire);
  });

  it.each([
    ['a header alone', new Uint8Array(5)],
    ['counts past the end', Uint8Array.of(0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 3, 0x61)],
    ['trailing octets', Uint8Array.from([...encodeMessage(buildQuery(NAME, 'MAP')), 0])],
  ])('leaves octets that do not parse (%s) as they are', (_, wire) => {
    expect(padMessage(wire, QUERY_PADDING_BLOCK_OCTETS)).toBe(wire);
  });

  it('pads no further than the largest DNS message', () => {
    const message = response(0);
    const edns = message.edns ?? expect.unreachable();
    /** The response with one option of `octets` data, encoded. */
    const sized = (octets: number): Uint8Array =>
      encodeMessage({
        ...message,
        edns: { ...edns, options: [{ code: 65001, data: new Uint8Array(octets) }] },
      });
    const overhead = sized(0).length;
    // 65,525 octets: the next multiple of 468 (65,988) is past the largest message.
    const wire = sized(65_525 - overhead);
    const padded = padMessage(wire, RESPONSE_PADDING_BLOCK_OCTETS);
    expect(padded.length).toBe(MAX_MESSAGE_OCTETS);
    expect(paddingOf(padded)[0]).toHaveLength(MAX_MESSAGE_OCTETS - 65_525 - 4);
    // No room for the option's own four octets: left as it is.
    const full = sized(MAX_MESSAGE_OCTETS - 3 - overhead);
    expect(full.length).toBe(MAX_MESSAGE_OCTETS - 3);
    expect(padMessage(full, RESPONSE_PADDING_BLOCK_OCTETS)).toBe(full);
  });

  it('refuses a block that is not a positive integer', () => {
    const wire = encodeMessage(buildQuery(NAME, 'MAP'));
    expect(() => padMessage(wire, 0)).toThrow(RangeError);
    expect(() => padMessage(wire, 1.5)).toThrow(RangeError);
  });
});
