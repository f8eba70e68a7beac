import { compareBytes } from './bytes.js';
import { NameError } from './errors.js';

/**
 * Domain-name helpers on presentation-form names, as used by the record model:
 * - no trailing dot (one is accepted on input); the root is `.`;
 * - RFC 1035 §5.1 escapes inside labels: `\.` and `\\` for a literal dot or backslash, `\DDD`
 *   (three decimal digits) for any octet. The codec writes printable ASCII other than `.`, `\`
 *   and the master-file specials `"();@$` as is, and every other octet as `\DDD`. Compact
 *   denial (RFC 9824) needs this: the successor of `a.example` is `\000.a.example`.
 */

/** Maximum octets in a label (RFC 1035 §2.3.4). */
export const MAX_LABEL_OCTETS = 63;
/** Maximum octets of a name in wire form, including the root label (RFC 1035 §2.3.4). */
export const MAX_NAME_OCTETS = 255;

const BACKSLASH = 0x5c;
const DOT = 0x2e;

/**
 * Labels of a name as octets, leftmost first; the root has none. Throws `NameError` on a bad
 * escape, an empty label, a label over 63 octets or a name over 255 octets in wire form.
 * Example: `'a\\.b.c'` → `[ 'a.b', 'c' ]` (as bytes).
 */
export function parseLabels(name: string): Uint8Array[] {
  if (name === '.' || name === '') return [];
  const labels: Uint8Array[] = [];
  let current: number[] = [];
  let wire = 1;
  const end = name.endsWith('.') && !name.endsWith('\\.') ? name.length - 1 : name.length;
  for (let i = 0; i < end; i++) {
    const c = name.charCodeAt(i);
    if (c === DOT) {
      pushLabel();
      continue;
    }
    if (c === BACKSLASH) {
      const next = name.charCodeAt(i + 1);
      if (Number.isNaN(next)) throw new NameError('ERR_NAME_SYNTAX', `dangling escape in ${name}`);
      if (next >= 0x30 && next <= 0x39) {
        const digits = name.slice(i + 1, i + 4);
        if (!/^[0-9]{3}$/.test(digits) || Number(digits) > 255) {
          throw new NameError('ERR_NAME_SYNTAX', `bad \\DDD escape in ${name}`);
        }
        current.push(Number(digits));
        i += 3;
      } else {
        current.push(next);
        i += 1;
      }
      continue;
    }
    if (c > 0xff) {
      throw new NameError('ERR_NAME_SYNTAX', `non-ASCII character in name ${name} (use A-labels)`);
    }
    current.push(c);
  }
  pushLabel();
  return labels;

  function pushLabel(): void {
    if (current.length === 0) throw new NameError('ERR_NAME_SYNTAX', `empty label in ${name}`);
    if (current.length > MAX_LABEL_OCTETS) {
      throw new NameError(
        'ERR_NAME_LABEL_TOO_LONG',
        `label over ${MAX_LABEL_OCTETS} octets in ${name}`,
      );
    }
    wire += current.length + 1;
    if (wire > MAX_NAME_OCTETS) {
      throw new NameError('ERR_NAME_TOO_LONG', `name over ${MAX_NAME_OCTETS} octets: ${name}`);
    }
    labels.push(Uint8Array.from(current));
    current = [];
  }
}

const SPECIALS = new Set([0x22, 0x28, 0x29, 0x3b, 0x40, 0x24, DOT, BACKSLASH]);

/** One label in presentation form with RFC 1035 §5.1 escapes. */
export function formatLabel(label: Uint8Array): string {
  let out = '';
  for (const b of label) {
    if (b > 0x20 && b < 0x7f && !SPECIALS.has(b)) out += String.fromCharCode(b);
    else if (SPECIALS.has(b)) out += `\\${String.fromCharCode(b)}`;
    else out += `\\${b.toString().padStart(3, '0')}`;
  }
  return out;
}

/** A name from octet labels, leftmost first; no labels gives the root `.`. */
export function formatLabels(labels: readonly Uint8Array[]): string {
  return labels.length === 0 ? '.' : labels.map(formatLabel).join('.');
}

/** Labels of a name in presentation form (escapes kept), leftmost first; the root has none. */
export function nameLabels(name: string): string[] {
  if (!name.includes('\\')) {
    const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
    return trimmed === '' ? [] : trimmed.split('.');
  }
  return parseLabels(name).map(formatLabel);
}

/** Builds a name from presentation-form labels, leftmost first; no labels gives the root `.`. */
export function joinLabels(labels: readonly string[]): string {
  return labels.length === 0 ? '.' : labels.join('.');
}

/**
 * The canonical form of a name for comparison and DNSSEC (RFC 4034 §6.2): ASCII lowercase,
 * no trailing dot, root as `.`, escapes normalized.
 */
export function canonicalName(name: string): string {
  if (!name.includes('\\')) {
    const trimmed = name.endsWith('.') && name !== '.' ? name.slice(0, -1) : name;
    return trimmed === '' ? '.' : trimmed.replace(/[A-Z]/g, (c) => c.toLowerCase());
  }
  return formatLabels(parseLabels(name).map(lowercaseLabel));
}

function lowercaseLabel(label: Uint8Array): Uint8Array {
  return label.map((b) => (b >= 0x41 && b <= 0x5a ? b + 0x20 : b));
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
  // A suffix match must start at a label boundary that is not an escaped dot.
  return n === a || (n.endsWith(`.${a}`) && !n.endsWith(`\\.${a}`));
}

/** The parent of a name (`'a.b'` → `'b'`, `'b'` → `'.'`); the root has no parent. */
export function parentName(name: string): string | undefined {
  const labels = nameLabels(name);
  if (labels.length === 0) return undefined;
  return joinLabels(labels.slice(1));
}

/** Octets of a name in uncompressed wire form, including the terminating root label. */
export function nameWireLength(name: string): number {
  return parseLabels(name).reduce((n, l) => n + 1 + l.length, 1);
}

/**
 * Orders names canonically (RFC 4034 §6.1): compare label by label from the rightmost, each as
 * lowercase octet strings, a shorter name sorting first when it is a suffix of the other.
 * Example: `a.example` < `yljkjljk.a.example` < `Z.a.example` < `zABC.a.EXAMPLE` < `z.example`
 * < `\001.z.example` < `*.z.example` < `\200.z.example`.
 * Returns a negative number, zero or a positive number.
 */
export function compareNames(a: string, b: string): number {
  const la = parseLabels(a).map(lowercaseLabel);
  const lb = parseLabels(b).map(lowercaseLabel);
  let i = la.length - 1;
  let j = lb.length - 1;
  while (i >= 0 && j >= 0) {
    const c = compareBytes(la[i] as Uint8Array, lb[j] as Uint8Array);
    if (c !== 0) return c;
    i--;
    j--;
  }
  return la.length - lb.length;
}
