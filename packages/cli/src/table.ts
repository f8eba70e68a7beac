/**
 * Plain-text tables for people: columns padded to their widest cell, two spaces apart, no
 * trailing blanks.
 *
 * ```
 * ZONE                NAMESERVER
 * 4.4.e164.mimi.arpa  ns1.4.4.e164.mimi.arpa
 * ```
 */

/** `rows` (the first is the header) as lines, each ending in a newline. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map(
      (row) =>
        `${row
          .map((cell, i) => cell.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}
