import { describe, expect, it } from 'vitest';
import { decodeBase32Hex, DnssecError, encodeBase32Hex } from '../src/index.js';

// RFC 4648 §10 test vectors for base32hex, lowercased and without padding as NSEC3 writes them.
const RFC4648 = [
  ['', ''],
  ['f', 'co'],
  ['fo', 'cpng'],
  ['foo', 'cpnmu'],
  ['foob', 'cpnmuog'],
  ['fooba', 'cpnmuoj1'],
  ['foobar', 'cpnmuoj1e8'],
] as const;

describe('base32hex (RFC 4648 §7)', () => {
  it.each(RFC4648)('encodes %j as %j', (text, encoded) => {
    expect(encodeBase32Hex(new TextEncoder().encode(text))).toBe(encoded);
  });

  it.each(RFC4648)('decodes %j from %j in either case', (text, encoded) => {
    expect(new TextDecoder().decode(decodeBase32Hex(encoded))).toBe(text);
    expect(new TextDecoder().decode(decodeBase32Hex(encoded.toUpperCase()))).toBe(text);
  });

  it('keeps the byte order, so hashed owner names sort in hash order', () => {
    const a = encodeBase32Hex(Uint8Array.of(0x00, 0xff, 0x10));
    const b = encodeBase32Hex(Uint8Array.of(0x01, 0x00, 0x00));
    expect(a < b).toBe(true);
  });

  it.each(['c', 'cpn', 'cpnmuo', 'cw', 'c=', 'cp'])('rejects %j', (text) => {
    expect(() => decodeBase32Hex(text)).toThrow(DnssecError);
  });
});
