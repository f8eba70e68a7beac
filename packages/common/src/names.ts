/**
 * Domain-name helpers on presentation-form names (no trailing dot, root is `.`), as used by the
 * record model. Labels here are plain strings of LDH, digits, `_` and hex; the project never
 * needs escaped presentation (`\.`, `\DDD`) because every name it makes is built from such
 * labels. Names from the wire that need escapes are rejected by the codec before reaching here.
 */

/** Maximum octets in a label (RFC 1035 §2.3.4). */
export const MAX_LABEL_OCTETS = 63;
/** Maximum octets of a name in wire form, including the root label (RFC 1035 §2.3.4). */
export const MAX_NAME_OCTETS = 255;

/** Labels of a name, leftmost first; the root has none. `'a.b'` → `['a', 'b']`. */
export function nameLabels(name: string): string[] {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  return trimmed === '' ? [] : trimmed.split('.');
}

/** Builds a name from labels, leftmost first; no labels gives the root `.`. */
export function joinLabels(labels: readonly string[]): string {
  return labels.length === 0 ? '.' : labels.join('.');
}

/**
 * The canonical form of a name for comparison and DNSSEC (RFC 4034 §6.2): ASCII lowercase,
 * no trailing dot, root as `.`.
 */
export function canonicalName(name: string): string {
  const trimmed = name.endsWith('.') && name !== '.' ? name.slice(0, -1) : name;
  return trimmed === '' ? '.' : trimmed.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** Whether two names are equal ignoring ASCII case (RFC 4343). */
export function namesEqual(a: string, b: string): boolean {
  return canonicalName(a) === canonicalName(b);
}

/** Number of labels, not counting the root (`'a.b'` → 2, `'.'` → 0). */
export function labelCount(name: string): number {
  return nameLabels(name).length;
}

/** Whether `name` is `ancestor` or below it (case-insensitive). The root is everyone's ancestor. */
export function isSubdomain(name: string, ancestor: string): boolean {
  const n = canonicalName(name);
  const a = canonicalName(ancestor);
  if (a === '.') return true;
  return n === a || n.endsWith(`.${a}`);
}

/** The parent of a name (`'a.b'` → `'b'`, `'b'` → `'.'`); the root has no parent. */
export function parentName(name: string): string | undefined {
  const labels = nameLabels(name);
  if (labels.length === 0) return undefined;
  return joinLabels(labels.slice(1));
}

/** Octets of a name in uncompressed wire form, including the terminating root label. */
export function nameWireLength(name: string): number {
  const labels = nameLabels(name);
  return labels.reduce((n, l) => n + 1 + Buffer.byteLength(l, 'latin1'), 1);
}

/**
 * Orders names canonically (RFC 4034 §6.1): compare label by label from the rightmost, each as
 * lowercase octet strings, a shorter name sorting first when it is a suffix of the other.
 * Example: `a.example` < `yljkjljk.a.example` < `Z.a.example` < `zABC.a.EXAMPLE` < `z.example`.
 * Returns a negative number, zero or a positive number.
 */
export function compareNames(a: string, b: string): number {
  const la = nameLabels(canonicalName(a));
  const lb = nameLabels(canonicalName(b));
  let i = la.length - 1;
  let j = lb.length - 1;
  while (i >= 0 && j >= 0) {
    const c = compareOctets(la[i] as string, lb[j] as string);
    if (c !== 0) return c;
    i--;
    j--;
  }
  return la.length - lb.length;
}

function compareOctets(x: string, y: string): number {
  const n = Math.min(x.length, y.length);
  for (let k = 0; k < n; k++) {
    const d = x.charCodeAt(k) - y.charCodeAt(k);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}
