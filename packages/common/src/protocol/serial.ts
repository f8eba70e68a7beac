/**
 * Serial number arithmetic (RFC 1982) with SERIAL_BITS = 32, as SOA serials use it: a serial
 * is greater than another when it is less than 2^31 ahead of it, modulo 2^32. Two serials
 * exactly 2^31 apart are not comparable (RFC 1982 §3.2).
 *
 * Worked example: 5 > 4294967290 (5 is 11 ahead, across the wrap); 2147483653 vs 5 is
 * undefined (2^31 apart).
 */

/** The comparison of serials `a` and `b`: −1 (`a` before `b`), 0, 1, or undefined (§3.2). */
export function compareSerials(a: number, b: number): -1 | 0 | 1 | undefined {
  const x = a >>> 0;
  const y = b >>> 0;
  if (x === y) return 0;
  const ahead = (x - y + 2 ** 32) % 2 ** 32;
  if (ahead === 2 ** 31) return undefined;
  return ahead < 2 ** 31 ? 1 : -1;
}
