import { decode as laxDecode } from 'cborg';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeCbor,
  encodeCbor,
  MAX_CBOR_DEPTH,
  MAX_SIGNED_OBJECT_OCTETS,
  SignedObjectError,
  type CborValue,
} from '../src/index.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function malformedError(bytes: Uint8Array): unknown {
  try {
    decodeCbor(bytes);
  } catch (error) {
    return error;
  }
  return undefined;
}

// RFC 8949 Appendix A examples that are in the protocol's data model, all in deterministic form.
const RFC8949_EXAMPLES: [string, CborValue][] = [
  ['00', 0],
  ['17', 23],
  ['1818', 24],
  ['1864', 100],
  ['1903e8', 1000],
  ['1a000f4240', 1000000],
  ['20', -1],
  ['3863', -100],
  ['3903e7', -1000],
  ['f4', false],
  ['f5', true],
  ['f6', null],
  ['40', new Uint8Array(0)],
  ['4401020304', new Uint8Array([1, 2, 3, 4])],
  ['60', ''],
  ['6449455446', 'IETF'],
  ['62c3bc', '\u00fc'],
  ['80', []],
  ['8301820203820405', [1, [2, 3], [4, 5]]],
  ['a0', {}],
  ['a26161016162820203', { a: 1, b: [2, 3] }],
  ['826161a161626163', ['a', { b: 'c' }]],
];

// Each of these is refused; the label says why.
const REJECTED: [string, string][] = [
  ['23 encoded in 2 bytes (RFC 8949 §4.2.1: shortest form)', '1817'],
  ['23 encoded in 3 bytes', '190017'],
  ['23 encoded in 5 bytes', '1a00000017'],
  ['23 encoded in 9 bytes', '1b0000000000000017'],
  ['-24 encoded in 2 bytes', '3817'],
  ['a byte string length in 2 bytes', '5801ff'],
  ['a text string length in 2 bytes', '780161'],
  ['an array length in 2 bytes', '980101'],
  ['a map length in 2 bytes', 'b8016161 01'],
  ['an indefinite-length array', '9f01ff'],
  ['an indefinite-length byte string', '5f4101ff'],
  ['an indefinite-length text string', '7f6161ff'],
  ['an indefinite-length map', 'bf616101ff'],
  ['a lone break', 'ff'],
  ['map keys out of order', 'a2616201616101'],
  ['map keys out of bytewise order by length', 'a2626161016162 02'],
  ['a duplicate map key', 'a2616101616102'],
  ['a non-text map key', 'a10102'],
  ['trailing bytes after the value', '0100'],
  ['a map followed by a byte', 'a000'],
  ['a half-precision float', 'f93c00'],
  ['a single-precision float', 'fa3f800000'],
  ['a double-precision float', 'fb3ff8000000000000'],
  ['NaN', 'f97e00'],
  ['infinity', 'f97c00'],
  ['a tag (epoch time)', 'c11a514b67b0'],
  ['a tag (bignum)', 'c249010000000000000000'],
  ['undefined', 'f7'],
  ['a simple value', 'f0'],
  ['a one-byte simple value', 'f820'],
  ['an integer above 2^53 - 1', '1b0020000000000000'],
  ['an integer below -(2^53 - 1)', '3b0020000000000000'],
  ['invalid UTF-8 in a text string', '62c328'],
  ['a UTF-8 encoded surrogate in a text string', '63eda080'],
  ['a truncated text string', '6261'],
  ['a truncated array', '8201'],
  ['empty input', ''],
];

describe('encodeCbor', () => {
  it.each(RFC8949_EXAMPLES)('encodes RFC 8949 Appendix A example %s', (encoded, value) => {
    expect(toHex(encodeCbor(value))).toBe(encoded);
  });

  it('encodes the worked example of the module comment', () => {
    expect(toHex(encodeCbor({ csi: 'tel:+1', v: 1 }))).toBe('a2617601636373696674656c3a2b31');
  });

  it('orders map keys bytewise by their encoding (RFC 8949 §4.2.1)', () => {
    // "b" (61 62) < "c" (61 63) < "aa" (62 61 61): shorter keys first, then bytewise.
    expect(toHex(encodeCbor({ aa: 1, c: 3, b: 2 }))).toBe('a361620261630362616101');
  });

  it('returns a plain Uint8Array, not a Buffer', () => {
    expect(Object.getPrototypeOf(encodeCbor({ a: [1, 'b'] }))).toBe(Uint8Array.prototype);
  });

  it('encodes the largest and smallest safe integers in 9 bytes', () => {
    expect(toHex(encodeCbor(Number.MAX_SAFE_INTEGER))).toBe('1b001fffffffffffff');
    expect(toHex(encodeCbor(Number.MIN_SAFE_INTEGER))).toBe('3b001ffffffffffffe');
  });

  it.each([
    ['a float', 1.5],
    ['NaN', NaN],
    ['infinity', Infinity],
    ['an unsafe integer', 2 ** 53],
    ['undefined', undefined],
    ['a bigint', 1n],
    ['a Date', new Date(0)],
    ['a Map', new Map()],
    ['undefined inside an object', { a: undefined }],
    ['a function', () => 0],
    ['a string with a lone surrogate', 'a\ud800'],
  ])('refuses %s with ERR_CBOR_UNSUPPORTED', (_, value) => {
    expect(() => encodeCbor(value as unknown as CborValue)).toThrow(
      expect.objectContaining({ name: 'SignedObjectError', code: 'ERR_CBOR_UNSUPPORTED' }),
    );
  });

  it(`refuses nesting deeper than ${MAX_CBOR_DEPTH}`, () => {
    let value: CborValue = 0;
    for (let i = 0; i < MAX_CBOR_DEPTH; i++) value = [value];
    expect(() => encodeCbor(value)).not.toThrow();
    expect(() => encodeCbor([value])).toThrow(
      expect.objectContaining({ code: 'ERR_CBOR_UNSUPPORTED' }),
    );
  });

  it(`refuses an encoding over ${MAX_SIGNED_OBJECT_OCTETS} octets with ERR_CBOR_TOO_LARGE`, () => {
    // A byte string of n octets with n >= 256 has a 3-octet header.
    expect(encodeCbor(new Uint8Array(MAX_SIGNED_OBJECT_OCTETS - 3))).toHaveLength(
      MAX_SIGNED_OBJECT_OCTETS,
    );
    expect(() => encodeCbor(new Uint8Array(MAX_SIGNED_OBJECT_OCTETS - 2))).toThrow(
      expect.objectContaining({ code: 'ERR_CBOR_TOO_LARGE' }),
    );
  });
});

describe('decodeCbor', () => {
  it.each(RFC8949_EXAMPLES)('decodes RFC 8949 Appendix A example %s', (encoded, value) => {
    expect(decodeCbor(hex(encoded))).toEqual(value);
  });

  it.each(REJECTED)('rejects %s with ERR_CBOR_MALFORMED', (_, encoded) => {
    const error = malformedError(hex(encoded));
    expect(error).toBeInstanceOf(SignedObjectError);
    expect(error).toMatchObject({ code: 'ERR_CBOR_MALFORMED' });
  });

  it(`accepts nesting of ${MAX_CBOR_DEPTH} arrays and maps and rejects one more`, () => {
    // containers - 2 arrays, then a map whose value is an empty array.
    const nested = (containers: number): Uint8Array =>
      hex(`${'81'.repeat(containers - 2)}a1616180`);
    expect(() => decodeCbor(nested(MAX_CBOR_DEPTH))).not.toThrow();
    expect(malformedError(nested(MAX_CBOR_DEPTH + 1))).toMatchObject({
      code: 'ERR_CBOR_MALFORMED',
    });
    expect(malformedError(hex(`${'81'.repeat(8000)}00`))).toMatchObject({
      code: 'ERR_CBOR_MALFORMED',
    });
  });

  it(`accepts ${MAX_SIGNED_OBJECT_OCTETS} octets and rejects one more`, () => {
    // A byte string of n >= 256 octets has a 3-octet header: 59 followed by n in 16 bits.
    const byteString = (total: number): Uint8Array => {
      const bytes = new Uint8Array(total);
      bytes.set([0x59, (total - 3) >> 8, (total - 3) & 0xff]);
      return bytes;
    };
    expect(decodeCbor(byteString(MAX_SIGNED_OBJECT_OCTETS))).toHaveLength(
      MAX_SIGNED_OBJECT_OCTETS - 3,
    );
    const error = malformedError(byteString(MAX_SIGNED_OBJECT_OCTETS + 1));
    expect(error).toMatchObject({ code: 'ERR_CBOR_MALFORMED' });
    expect(String(error)).toContain(`${MAX_SIGNED_OBJECT_OCTETS}-octet bound`);
  });

  it('rejects input that is not a Uint8Array', () => {
    expect(malformedError('a0' as unknown as Uint8Array)).toMatchObject({
      code: 'ERR_CBOR_MALFORMED',
    });
  });

  it('keeps a "__proto__" key as an ordinary key', () => {
    const bytes = hex('a1695f5f70726f746f5f5f01');
    const value = decodeCbor(bytes) as Record<string, CborValue>;
    expect(Object.keys(value)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(encodeCbor(value)).toEqual(bytes);
  });

  it('keeps a leading U+FEFF in a text string', () => {
    expect(decodeCbor(hex('63efbbbf'))).toBe('\ufeff');
    expect(encodeCbor('\ufeff')).toEqual(hex('63efbbbf'));
  });

  it('returns byte strings that do not share memory with a Buffer input', () => {
    const input = Buffer.from('4401020304', 'hex');
    const value = decodeCbor(input) as Uint8Array;
    input[1] = 0xff;
    expect(value).toEqual(new Uint8Array([1, 2, 3, 4]));
  });
});

/** Values of the protocol's CBOR data model. */
const cborValue: fc.Arbitrary<CborValue> = fc.letrec<{ value: CborValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.maxSafeInteger(),
    fc.integer({ min: -30, max: 30 }),
    fc.string({ unit: 'grapheme' }),
    fc.uint8Array({ maxLength: 40 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie('value'), { maxKeys: 5 }),
  ),
})).value;

describe('CBOR properties', () => {
  it('decodes every encoding back to the value, and encodes that to the same bytes', () => {
    fc.assert(
      fc.property(cborValue, (value) => {
        const bytes = encodeCbor(value);
        const decoded = decodeCbor(bytes);
        expect(decoded).toEqual(value);
        expect(encodeCbor(decoded)).toEqual(bytes);
      }),
      { numRuns: 500 },
    );
  });

  it('throws nothing but SignedObjectError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          encodeCbor(decodeCbor(bytes)); // whatever decodes must encode back
        } catch (error) {
          expect(error).toBeInstanceOf(SignedObjectError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects every single-byte change of a valid encoding, or decodes it to another value', () => {
    fc.assert(
      fc.property(cborValue, fc.nat(), fc.integer({ min: 1, max: 255 }), (value, at, xor) => {
        const bytes = encodeCbor(value);
        const changed = Uint8Array.from(bytes);
        const i = at % changed.length;
        changed[i] = (changed[i] as number) ^ xor;
        let decoded: CborValue;
        try {
          decoded = decodeCbor(changed);
        } catch (error) {
          expect(error).toBeInstanceOf(SignedObjectError);
          return;
        }
        // Deterministic encoding: a different encoding is a different value.
        expect(encodeCbor(decoded)).toEqual(changed);
        expect(decoded).not.toEqual(value);
      }),
      { numRuns: 1000 },
    );
  });

  // decodeCbor checks the encoding on the octets (cbor-walk.ts) instead of encoding the value
  // again; this checks that it accepts exactly the encodings encodeCbor gives, on octets edited
  // the ways a hostile peer would: spans moved, octets dropped or repeated, heads changed.
  it('accepts an edited encoding exactly when it is the encoding of its own value', () => {
    /** A lax reading (no strictness, maps kept apart from objects) encoded again, if it can be. */
    const laxRoundTrip = (bytes: Uint8Array): Uint8Array | undefined => {
      const toValue = (v: unknown): unknown =>
        v instanceof Map
          ? Object.fromEntries([...v].map(([k, item]) => [k, toValue(item)]))
          : Array.isArray(v)
            ? v.map(toValue)
            : v;
      try {
        const value = toValue(laxDecode(bytes, { useMaps: true })) as CborValue;
        return encodeCbor(value);
      } catch {
        return undefined;
      }
    };
    const edit = fc.oneof(
      fc.record({ kind: fc.constant('move' as const), a: fc.nat(), b: fc.nat(), n: fc.nat(12) }),
      fc.record({ kind: fc.constant('drop' as const), a: fc.nat(), b: fc.nat(), n: fc.nat(4) }),
      fc.record({ kind: fc.constant('repeat' as const), a: fc.nat(), b: fc.nat(), n: fc.nat(12) }),
      fc.record({ kind: fc.constant('set' as const), a: fc.nat(), b: fc.nat(255), n: fc.nat() }),
    );
    fc.assert(
      fc.property(cborValue, fc.array(edit, { minLength: 1, maxLength: 3 }), (value, edits) => {
        const bytes = [...encodeCbor(value)];
        for (const e of edits) {
          const at = e.a % (bytes.length + 1);
          if (e.kind === 'set') {
            if (bytes.length > 0) bytes[at % bytes.length] = e.b;
          } else if (e.kind === 'drop') {
            bytes.splice(at, e.n);
          } else {
            const span = bytes.slice(at, at + e.n);
            if (e.kind === 'move') bytes.splice(at, e.n);
            const to = e.b % (bytes.length + 1);
            bytes.splice(to, 0, ...span);
          }
        }
        const edited = Uint8Array.from(bytes);
        let decoded: CborValue | undefined;
        try {
          decoded = decodeCbor(edited);
        } catch (error) {
          expect(error).toBeInstanceOf(SignedObjectError);
        }
        const again = laxRoundTrip(edited);
        const canonical = again !== undefined && toHex(again) === toHex(edited);
        if (decoded !== undefined) expect(toHex(encodeCbor(decoded))).toBe(toHex(edited));
        // Whatever reads laxly as a value that encodes to these very octets is accepted.
        if (canonical) expect(decoded).toBeDefined();
      }),
      { numRuns: 3000 },
    );
  });

  it('accepts a map written in any order of its entries only when that is the sorted order', () => {
    const entry = fc.tuple(fc.string({ maxLength: 4 }), cborValue);
    fc.assert(
      fc.property(
        fc.array(entry, { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (pool, picks) => {
          // Entries picked from the pool by index, so repeats and any order occur.
          const chosen =
            pool.length === 0 ? [] : picks.map((i) => pool[i % pool.length] as [string, CborValue]);
          const parts = chosen.flatMap(([k, v]) => [...encodeCbor(k), ...encodeCbor(v)]);
          const head = chosen.length < 24 ? [0xa0 + chosen.length] : [];
          fc.pre(head.length === 1);
          const bytes = Uint8Array.from([...(head as number[]), ...parts]);
          const keys = chosen.map(([k]) => toHex(encodeCbor(k)));
          const sortedUnique = keys.every(
            (k, i) => i === 0 || compareHex(keys[i - 1] as string, k) < 0,
          );
          let accepted = true;
          try {
            decodeCbor(bytes);
          } catch (error) {
            expect(error).toMatchObject({ code: 'ERR_CBOR_MALFORMED' });
            accepted = false;
          }
          expect(accepted).toBe(sortedUnique);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

/** Bytewise order of two encodings given in hex (RFC 8949 §4.2.1). */
function compareHex(a: string, b: string): number {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return Buffer.compare(x, y);
}
