import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fromBase64url, toBase64url } from '../src/protocol/bytes.js';

describe('base64url without Buffer (bytes.ts)', () => {
  it('encodes and decodes as Buffer does, for every length up to 70', () => {
    for (let n = 0; n <= 70; n++) {
      const bytes = new Uint8Array(randomBytes(n));
      const text = Buffer.from(bytes).toString('base64url');
      expect(toBase64url(bytes)).toBe(text);
      expect(fromBase64url(text)).toEqual(bytes);
    }
  });

  it('refuses every text that is not the one canonical spelling', () => {
    expect(fromBase64url('AAA=')).toBeUndefined(); // padding
    expect(fromBase64url('AA+/')).toBeUndefined(); // base64, not base64url
    expect(fromBase64url('A')).toBeUndefined(); // 6 bits: no octet
    expect(fromBase64url('AB')).toBeUndefined(); // low bits set: "AA" is the spelling of 00
    expect(fromBase64url('AAB')).toBeUndefined();
    expect(fromBase64url('AA')).toEqual(Uint8Array.of(0));
    expect(fromBase64url('')).toEqual(new Uint8Array(0));
  });
});
