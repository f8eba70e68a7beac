import { DnssecError } from './errors.js';

/**
 * Base 32 with the extended hex alphabet (RFC 4648 §7), as NSEC3 uses it for hashed owner names
 * and the Next Hashed Owner Name field (RFC 5155 §1.3, §3.3): no padding, lowercase on output,
 * either case on input. The alphabet keeps the sort order of the bytes, so NSEC3 owner labels
 * sort in hash order.
 *
 * Example: the 20-octet SHA-1 hash of `example` (RFC 5155 Appendix A, salt `aabbccdd`,
 * 12 iterations) encodes as `0p9mhaveqvm6t7vbl5lop2u3t2rp3tom`; every 5 octets give 8 digits.
 */

const ALPHABET = '0123456789abcdefghijklmnopqrstuv';

/** Encodes bytes as lowercase base32hex without padding. */
export function encodeBase32Hex(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(buffer >> bits) & 0x1f];
    }
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 0x1f];
  return out;
}

/**
 * Decodes base32hex without padding, in either case. Throws `DnssecError`
 * (`ERR_BASE32HEX_SYNTAX`) on a character outside the alphabet, a length no byte string encodes
 * to, or non-zero trailing bits (RFC 4648 §3.5: such text is not canonical).
 */
export function decodeBase32Hex(text: string): Uint8Array {
  // Lengths mod 8 of 1, 3 and 6 digits leave a partial byte that no encoder produces.
  if ([1, 3, 6].includes(text.length % 8)) {
    throw new DnssecError(
      'ERR_BASE32HEX_SYNTAX',
      `base32hex text of impossible length ${text.length}`,
    );
  }
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let buffer = 0;
  let bits = 0;
  let n = 0;
  for (const ch of text.toLowerCase()) {
    const value = ALPHABET.indexOf(ch);
    if (value < 0) {
      throw new DnssecError(
        'ERR_BASE32HEX_SYNTAX',
        `invalid base32hex character ${JSON.stringify(ch)}`,
      );
    }
    buffer = ((buffer << 5) | value) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (buffer >> bits) & 0xff;
    }
  }
  if ((buffer & ((1 << bits) - 1)) !== 0) {
    throw new DnssecError('ERR_BASE32HEX_SYNTAX', 'base32hex text has non-zero trailing bits');
  }
  return out;
}
