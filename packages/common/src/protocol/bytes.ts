/**
 * Orders byte strings as left-justified unsigned octet strings, a prefix first (the order of
 * RFC 4034 §6.1 for labels and §6.3 for canonical RDATA). Returns a negative number, zero or a
 * positive number.
 */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
