import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BHTTP_REQUEST_PADDING_BLOCK,
  BHTTP_RESPONSE_PADDING_BLOCK,
  BhttpError,
  MAX_BHTTP_FIELDS,
  MAX_BHTTP_INFORMATIONAL,
  MAX_BHTTP_MESSAGE_OCTETS,
  decodeBhttpRequest,
  decodeBhttpResponse,
  encodeBhttpRequest,
  encodeBhttpResponse,
  padBhttp,
  type BhttpErrorCode,
  type BhttpRequest,
  type BhttpResponse,
} from '../src/index.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

// RFC 9292 §5 examples (source cited in the file).
interface Rfc9292Examples {
  requestKnownLength: {
    method: string;
    scheme: string;
    authority: string;
    path: string;
    headers: [string, string][];
    hex: string;
  };
  requestIndeterminateLength: { hex: string };
  responseWithInterim: { status: number; headers: [string, string][]; body: string; hex: string };
  responseKnownLengthWithTrailer: { status: number; body: string; hex: string };
}
const EXAMPLES = JSON.parse(
  readFileSync(new URL('./vectors/rfc9292-examples.json', import.meta.url), 'utf8'),
) as Rfc9292Examples;

/** The BhttpError code `f` throws; fails the test on any other outcome. */
function codeOf(f: () => unknown): BhttpErrorCode {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(BhttpError);
    return (e as BhttpError).code;
  }
  throw new Error('expected a BhttpError');
}

/** A QUIC varint (RFC 9000 §16) in its shortest form, for hand-built hostile messages. */
function varint(n: number): Uint8Array {
  if (n < 0x40) return Uint8Array.of(n);
  if (n < 0x4000) return Uint8Array.of(0x40 | (n >> 8), n & 0xff);
  return Uint8Array.of(0x80 | (n >>> 24), (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}
const vec = (b: Uint8Array): Uint8Array => concat(varint(b.length), b);
const field = (name: string, value: string): Uint8Array =>
  concat(vec(bytes(name)), vec(bytes(value)));
const control = concat(
  vec(bytes('GET')),
  vec(bytes('https')),
  vec(bytes('a.example')),
  vec(bytes('/')),
);

describe('Binary HTTP, RFC 9292 §5 examples', () => {
  const known = EXAMPLES.requestKnownLength;
  const request: BhttpRequest = {
    method: known.method,
    scheme: known.scheme,
    authority: known.authority,
    path: known.path,
    headers: known.headers,
    body: new Uint8Array(0),
  };

  it('decodes the known-length request of §5.1', () => {
    expect(decodeBhttpRequest(hex(known.hex))).toEqual(request);
  });

  it('encodes that request to the known-length octets of §5.1, byte for byte', () => {
    expect(toHex(encodeBhttpRequest(request))).toBe(known.hex);
  });

  it('decodes the indeterminate-length, padded request of §5.1 to the same request', () => {
    expect(decodeBhttpRequest(hex(EXAMPLES.requestIndeterminateLength.hex))).toEqual(request);
  });

  it('accepts the known-length request truncated by its two empty sections (§3.1)', () => {
    const full = hex(known.hex);
    expect(decodeBhttpRequest(full.subarray(0, full.length - 1))).toEqual(request);
    expect(decodeBhttpRequest(full.subarray(0, full.length - 2))).toEqual(request);
  });

  it('skips the 102 and 103 informational responses of §5.2 and keeps the final 200', () => {
    const r = EXAMPLES.responseWithInterim;
    expect(decodeBhttpResponse(hex(r.hex))).toEqual({
      status: r.status,
      headers: r.headers,
      body: bytes(r.body),
    });
  });

  it('reads the known-length response of §5.2 and drops its trailer', () => {
    const r = EXAMPLES.responseKnownLengthWithTrailer;
    expect(decodeBhttpResponse(hex(r.hex))).toEqual({
      status: r.status,
      headers: [],
      body: bytes(r.body),
    });
  });

  it('encodes the 200 response of RFC 9458 Appendix A as 01 40c8 followed by empty sections', () => {
    expect(toHex(encodeBhttpResponse({ status: 200, headers: [], body: new Uint8Array(0) }))).toBe(
      '0140c8000000',
    );
    expect(decodeBhttpResponse(hex('0140c8'))).toEqual({
      status: 200,
      headers: [],
      body: new Uint8Array(0),
    });
  });
});

describe('Binary HTTP, padding (RFC 9292 §3.8)', () => {
  const request: BhttpRequest = {
    method: 'POST',
    scheme: 'https',
    authority: '',
    path: '/v1/discover',
    headers: [['content-type', 'application/json']],
    body: new TextEncoder().encode('{"csis":["+442079460018"]}'),
  };

  it('pads a request to the next multiple of the block with zeros, and decodes it unchanged', () => {
    const plain = encodeBhttpRequest(request);
    const padded = padBhttp(plain, BHTTP_REQUEST_PADDING_BLOCK);
    expect(padded.length).toBe(BHTTP_REQUEST_PADDING_BLOCK);
    expect(padded.subarray(0, plain.length)).toEqual(plain);
    expect(padded.subarray(plain.length).every((b) => b === 0)).toBe(true);
    expect(decodeBhttpRequest(padded)).toEqual(request);
  });

  it('pads a response the same way, and leaves a message already a multiple as it is', () => {
    const response: BhttpResponse = { status: 200, headers: [], body: new Uint8Array(100) };
    const padded = padBhttp(encodeBhttpResponse(response), BHTTP_RESPONSE_PADDING_BLOCK);
    expect(padded.length).toBe(BHTTP_RESPONSE_PADDING_BLOCK);
    expect(decodeBhttpResponse(padded)).toEqual(response);
    expect(padBhttp(padded, BHTTP_RESPONSE_PADDING_BLOCK)).toBe(padded);
  });

  it('gives two requests of different sizes within one block the same size', () => {
    const many = { ...request, body: new Uint8Array(2000) };
    expect(padBhttp(encodeBhttpRequest(many), BHTTP_REQUEST_PADDING_BLOCK).length).toBe(
      padBhttp(encodeBhttpRequest(request), BHTTP_REQUEST_PADDING_BLOCK).length,
    );
  });

  it('refuses a block that is not a whole number of octets', () => {
    expect(() => padBhttp(new Uint8Array(3), 0)).toThrow(RangeError);
    expect(() => padBhttp(new Uint8Array(3), 1.5)).toThrow(RangeError);
  });

  it('refuses padding that is not zero', () => {
    const padded = padBhttp(encodeBhttpRequest(request), 256);
    padded[padded.length - 1] = 1;
    expect(() => decodeBhttpRequest(padded)).toThrow(BhttpError);
  });
});

describe('Binary HTTP, round trips', () => {
  const token = fc.stringMatching(/^[a-z0-9!#$%&'*+.^_`|~-]{1,20}$/);
  const value = fc
    .stringMatching(/^[\x21-\x7e\x80-\xff]([\x20-\x7e\x80-\xff]{0,40}[\x21-\x7e\x80-\xff])?$/)
    .filter((s) => !s.includes('\0'));
  const headers = fc.array(
    fc.tuple(
      token.filter((n) => !n.startsWith(':')),
      value,
    ),
    { maxLength: 12 },
  );
  const visible = fc.stringMatching(/^[\x21-\x7e]{0,30}$/);
  const body = fc.uint8Array({ maxLength: 300 });

  it('decodes every encoded request to itself', () => {
    fc.assert(
      fc.property(
        token,
        visible,
        visible,
        visible,
        headers,
        body,
        (method, scheme, authority, path, h, b) => {
          const request: BhttpRequest = {
            method: method.toUpperCase(),
            scheme,
            authority,
            path,
            headers: h,
            body: b,
          };
          expect(decodeBhttpRequest(encodeBhttpRequest(request))).toEqual(request);
        },
      ),
    );
  });

  it('decodes every encoded response to itself', () => {
    fc.assert(
      fc.property(fc.integer({ min: 200, max: 599 }), headers, body, (status, h, b) => {
        const response: BhttpResponse = { status, headers: h, body: b };
        expect(decodeBhttpResponse(encodeBhttpResponse(response))).toEqual(response);
      }),
    );
  });

  it('keeps obs-text octets of a field value byte for byte', () => {
    const request: BhttpRequest = {
      method: 'GET',
      scheme: 'https',
      authority: '',
      path: '/',
      headers: [['x-latin', 'caf\u00e9 \u00ff']],
      body: new Uint8Array(0),
    };
    const wire = encodeBhttpRequest(request);
    expect(toHex(wire)).toContain('636166e920ff');
    expect(decodeBhttpRequest(wire)).toEqual(request);
  });
});

describe('Binary HTTP, hostile input', () => {
  const known = hex(EXAMPLES.requestKnownLength.hex);
  const interim = hex(EXAMPLES.responseWithInterim.hex);

  it('refuses empty input and a message cut inside a field', () => {
    expect(codeOf(() => decodeBhttpRequest(new Uint8Array(0)))).toBe('ERR_BHTTP_TRUNCATED');
    expect(codeOf(() => decodeBhttpRequest(known.subarray(0, 40)))).toBe('ERR_BHTTP_TRUNCATED');
    expect(codeOf(() => decodeBhttpResponse(interim.subarray(0, 100)))).toBe('ERR_BHTTP_TRUNCATED');
  });

  it('gives a BhttpError or a message for every prefix and every one-octet change, never another fault', () => {
    for (const sample of [known, interim, hex(EXAMPLES.requestIndeterminateLength.hex)]) {
      const decode = sample[0] === 0 || sample[0] === 2 ? decodeBhttpRequest : decodeBhttpResponse;
      for (let n = 0; n <= sample.length; n += 1) {
        try {
          decode(sample.subarray(0, n));
        } catch (e) {
          expect(e).toBeInstanceOf(BhttpError);
        }
      }
      for (let i = 0; i < sample.length; i += 1) {
        for (const flip of [0x01, 0x40, 0x80, 0xff]) {
          const changed = sample.slice();
          changed[i] = (changed[i] as number) ^ flip;
          try {
            decode(changed);
          } catch (e) {
            expect(e).toBeInstanceOf(BhttpError);
          }
        }
      }
    }
  });

  it('refuses non-zero octets after the message (§3.8) but accepts zero padding', () => {
    expect(codeOf(() => decodeBhttpRequest(concat(known, Uint8Array.of(0, 0, 1))))).toBe(
      'ERR_BHTTP_PADDING',
    );
    expect(decodeBhttpRequest(concat(known, new Uint8Array(100))).path).toBe('/hello.txt');
  });

  it('refuses a response given as a request, a request given as a response, and unknown framing', () => {
    expect(codeOf(() => decodeBhttpRequest(interim))).toBe('ERR_BHTTP_FRAMING');
    expect(codeOf(() => decodeBhttpResponse(known))).toBe('ERR_BHTTP_FRAMING');
    expect(codeOf(() => decodeBhttpRequest(Uint8Array.of(4)))).toBe('ERR_BHTTP_FRAMING');
    expect(codeOf(() => decodeBhttpRequest(hex('c000000000000005')))).toBe('ERR_BHTTP_FRAMING');
  });

  it('refuses a length of 2^62 − 1 at once instead of reading on', () => {
    const huge = hex('ffffffffffffffff');
    expect(codeOf(() => decodeBhttpRequest(concat(Uint8Array.of(0), huge)))).toBe(
      'ERR_BHTTP_TRUNCATED',
    );
    expect(codeOf(() => decodeBhttpRequest(concat(Uint8Array.of(2), control, huge)))).toBe(
      'ERR_BHTTP_TRUNCATED',
    );
  });

  it(`refuses more than MAX_BHTTP_FIELDS (${MAX_BHTTP_FIELDS}) field lines, known and indeterminate`, () => {
    const lines = (n: number): Uint8Array =>
      concat(...Array.from({ length: n }, () => field('a', 'b')));
    const knownWith = (n: number): Uint8Array => concat(Uint8Array.of(0), control, vec(lines(n)));
    const indeterminateWith = (n: number): Uint8Array =>
      concat(Uint8Array.of(2), control, lines(n), Uint8Array.of(0));
    expect(decodeBhttpRequest(knownWith(MAX_BHTTP_FIELDS)).headers).toHaveLength(MAX_BHTTP_FIELDS);
    expect(decodeBhttpRequest(indeterminateWith(MAX_BHTTP_FIELDS)).headers).toHaveLength(
      MAX_BHTTP_FIELDS,
    );
    expect(codeOf(() => decodeBhttpRequest(knownWith(MAX_BHTTP_FIELDS + 1)))).toBe(
      'ERR_BHTTP_TOO_MANY_FIELDS',
    );
    expect(codeOf(() => decodeBhttpRequest(indeterminateWith(MAX_BHTTP_FIELDS + 1)))).toBe(
      'ERR_BHTTP_TOO_MANY_FIELDS',
    );
    const many = Array.from({ length: MAX_BHTTP_FIELDS + 1 }, (): [string, string] => ['a', 'b']);
    expect(
      codeOf(() =>
        encodeBhttpRequest({
          method: 'GET',
          scheme: 'https',
          authority: '',
          path: '/',
          headers: many,
          body: new Uint8Array(0),
        }),
      ),
    ).toBe('ERR_BHTTP_TOO_MANY_FIELDS');
  });

  it(`skips at most MAX_BHTTP_INFORMATIONAL (${MAX_BHTTP_INFORMATIONAL}) informational responses`, () => {
    const interims = (n: number): Uint8Array =>
      concat(...Array.from({ length: n }, () => concat(varint(103), Uint8Array.of(0))));
    const response = (n: number): Uint8Array => concat(Uint8Array.of(1), interims(n), varint(204));
    expect(decodeBhttpResponse(response(MAX_BHTTP_INFORMATIONAL)).status).toBe(204);
    expect(codeOf(() => decodeBhttpResponse(response(MAX_BHTTP_INFORMATIONAL + 1)))).toBe(
      'ERR_BHTTP_STATUS',
    );
  });

  it('refuses a status outside 100–599, in decoding and in encoding', () => {
    expect(codeOf(() => decodeBhttpResponse(concat(Uint8Array.of(1), varint(99))))).toBe(
      'ERR_BHTTP_STATUS',
    );
    expect(codeOf(() => decodeBhttpResponse(concat(Uint8Array.of(1), varint(600))))).toBe(
      'ERR_BHTTP_STATUS',
    );
    expect(
      codeOf(() => encodeBhttpResponse({ status: 103, headers: [], body: new Uint8Array(0) })),
    ).toBe('ERR_BHTTP_STATUS');
  });

  it.each([
    ['an uppercase name', 'Host', 'x'],
    ['a pseudo-field', ':path', '/'],
    ['an empty name', '', 'x'],
    ['a CR in a value', 'x', 'a\rb'],
    ['a NUL in a value', 'x', 'a\0b'],
    ['a value with leading space', 'x', ' a'],
  ])('refuses a field line with %s (RFC 9113 §8.2.1)', (_what, name, value) => {
    const wire = concat(Uint8Array.of(0), control, vec(field(name, value)));
    expect(codeOf(() => decodeBhttpRequest(wire))).toBe('ERR_BHTTP_FIELD');
    const request: BhttpRequest = {
      method: 'GET',
      scheme: 'https',
      authority: '',
      path: '/',
      headers: [[name, value]],
      body: new Uint8Array(0),
    };
    expect(codeOf(() => encodeBhttpRequest(request))).toBe('ERR_BHTTP_FIELD');
  });

  it('refuses control data outside visible ASCII and an empty method', () => {
    const bad = concat(
      Uint8Array.of(0),
      vec(bytes('GET')),
      vec(bytes('https')),
      vec(bytes('a b')),
      vec(bytes('/')),
    );
    expect(codeOf(() => decodeBhttpRequest(bad))).toBe('ERR_BHTTP_CONTROL_DATA');
    const empty = concat(Uint8Array.of(0), vec(new Uint8Array(0)));
    expect(codeOf(() => decodeBhttpRequest(empty))).toBe('ERR_BHTTP_CONTROL_DATA');
    expect(
      codeOf(() =>
        encodeBhttpRequest({
          method: 'G T',
          scheme: 'https',
          authority: '',
          path: '/',
          headers: [],
          body: new Uint8Array(0),
        }),
      ),
    ).toBe('ERR_BHTTP_CONTROL_DATA');
  });

  it(`refuses input and output over MAX_BHTTP_MESSAGE_OCTETS (${MAX_BHTTP_MESSAGE_OCTETS})`, () => {
    expect(codeOf(() => decodeBhttpRequest(new Uint8Array(MAX_BHTTP_MESSAGE_OCTETS + 1)))).toBe(
      'ERR_BHTTP_TOO_LARGE',
    );
    const body = new Uint8Array(MAX_BHTTP_MESSAGE_OCTETS);
    expect(codeOf(() => encodeBhttpResponse({ status: 200, headers: [], body }))).toBe(
      'ERR_BHTTP_TOO_LARGE',
    );
  });
});
