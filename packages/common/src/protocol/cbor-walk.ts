import { SignedObjectError } from './errors.js';

/**
 * A bounded walker over CBOR octets (RFC 8949 §3) that reads heads and skips data items
 * without building values. cbor.ts uses it to check the deterministic encoding (RFC 8949
 * §4.2.1) of an input before decoding it; signed.ts uses it to cut the signed content of a
 * received Mapping or Attestation from the octets it received instead of encoding it again.
 *
 * Every offset and length is checked against the end of the input before it is used, so a
 * declared length larger than the input fails at once; nesting is bounded by the caller's
 * depth limit, so the recursion of {@link skipDeterministicItem} is too.
 */

/** CBOR major types (RFC 8949 §3.1). */
const MAJOR_UNSIGNED = 0;
const MAJOR_NEGATIVE = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;
const MAJOR_SIMPLE = 7;

/** Simple values the data model uses (RFC 8949 §3.3): false, true and null. */
const SIMPLE_FALSE = 20;
const SIMPLE_NULL = 22;

/** A data item's head (RFC 8949 §3): its major type, its argument and where its content starts. */
export interface CborHead {
  readonly major: number;
  /** The argument: a value, a length or a count; at most 2^53 - 1. */
  readonly argument: number;
  /** Offset just after the head. */
  readonly next: number;
}

function malformed(detail: string): never {
  throw new SignedObjectError('ERR_CBOR_MALFORMED', `malformed CBOR: ${detail}`);
}

/**
 * Reads the head at `pos`, refusing what deterministic encoding (RFC 8949 §4.2.1) excludes
 * from every head: an argument longer than its shortest form, an indefinite length (additional
 * information 31) and the reserved values 28 to 30 (§3). An argument over 2^53 - 1 is refused
 * too: no value of the data model (cbor.ts) has one, and a length that large exceeds any input.
 */
export function readHead(bytes: Uint8Array, pos: number, end: number): CborHead {
  if (pos >= end) malformed('input ends inside a data item');
  const initial = bytes[pos] as number;
  const major = initial >> 5;
  const info = initial & 0x1f;
  if (info < 24) return { major, argument: info, next: pos + 1 };
  if (info === 31) malformed('indefinite lengths are not used');
  if (info > 27) malformed(`reserved additional information ${info}`);
  const octets = 1 << (info - 24);
  if (end - pos - 1 < octets) malformed('input ends inside a head');
  let argument = 0;
  for (let i = 1; i <= octets; i++) argument = argument * 256 + (bytes[pos + i] as number);
  // Major type 7 with 25 to 27 is a float: its octets are not an argument, and cbor.ts refuses
  // every float whatever its value, so a "shortest form" has no meaning here.
  if (major !== MAJOR_SIMPLE) {
    const shortest = octets === 1 ? 24 : octets === 2 ? 0x100 : octets === 4 ? 0x10000 : 2 ** 32;
    if (argument < shortest) malformed('integer or length not in its shortest form');
    if (argument > Number.MAX_SAFE_INTEGER) malformed('integer or length over 2^53 - 1');
  }
  return { major, argument, next: pos + 1 + octets };
}

/**
 * Checks the data item at `pos`, at nesting `depth` (the number of arrays and maps around it),
 * against deterministic encoding in the data model of cbor.ts, and returns the offset just after
 * it. Refuses: the heads {@link readHead} refuses; a string, array or map longer than what is
 * left of the input; tags; floats and simple values other than false, true and null; map keys
 * that are not text strings, or not in strictly increasing bytewise order of their encodings
 * (which also refuses duplicates); an array or map at nesting deeper than `maxDepth`. Leaves
 * the UTF-8 of text strings and the range of negative integers to the decoder.
 */
export function skipDeterministicItem(
  bytes: Uint8Array,
  pos: number,
  end: number,
  depth: number,
  maxDepth: number,
): number {
  const head = readHead(bytes, pos, end);
  const { major, argument, next } = head;
  let at: number;
  switch (major) {
    case MAJOR_UNSIGNED:
    case MAJOR_NEGATIVE:
      return next;
    case MAJOR_BYTES:
    case MAJOR_TEXT:
      if (argument > end - next) malformed('string longer than the input');
      return next + argument;
    case MAJOR_ARRAY:
      if (depth + 1 > maxDepth) malformed(`nesting deeper than ${maxDepth}`);
      // Every item takes at least one octet: a larger count cannot fit what is left.
      if (argument > end - next) malformed('more items than the input holds');
      at = next;
      for (let i = 0; i < argument; i++) {
        at = skipDeterministicItem(bytes, at, end, depth + 1, maxDepth);
      }
      return at;
    case MAJOR_MAP:
      return walkMap(bytes, head, end, depth, maxDepth);
    case MAJOR_TAG:
      return malformed('tags are not used');
    default:
      // Major type 7: only false, true and null, each in its one-octet form (additional
      // information 20 to 22); 25 to 27 are floats, 24 a simple value in one more octet.
      if (next !== pos + 1 || argument < SIMPLE_FALSE || argument > SIMPLE_NULL) {
        const info = (bytes[pos] as number) & 0x1f;
        malformed(info >= 25 ? 'floats are not used' : 'unsupported simple value');
      }
      return next;
  }
}

/**
 * Checks and skips the entries of the map whose head is `head`, at nesting `depth`: keys text
 * strings in strictly increasing bytewise order of their encodings (RFC 8949 §4.2.1; equal keys
 * are repeats), keys and values deterministic. Calls `onEntry` with each entry's offsets.
 * Returns the offset just after the map.
 */
function walkMap(
  bytes: Uint8Array,
  head: CborHead,
  end: number,
  depth: number,
  maxDepth: number,
  onEntry?: (entry: MapEntrySpan) => void,
): number {
  if (depth + 1 > maxDepth) malformed(`nesting deeper than ${maxDepth}`);
  // Every key and every value takes at least one octet.
  if (head.argument * 2 > end - head.next) malformed('more items than the input holds');
  let at = head.next;
  let previousKey = -1;
  let previousKeyEnd = -1;
  for (let i = 0; i < head.argument; i++) {
    if (at >= end || (bytes[at] as number) >> 5 !== MAJOR_TEXT) {
      malformed('map key that is not a text string');
    }
    const keyEnd = skipDeterministicItem(bytes, at, end, depth + 1, maxDepth);
    if (previousKey >= 0 && compareSpans(bytes, previousKey, previousKeyEnd, at, keyEnd) >= 0) {
      malformed(
        'not in deterministic encoding (RFC 8949 §4.2.1): map keys out of order or repeated',
      );
    }
    previousKey = at;
    previousKeyEnd = keyEnd;
    const valueEnd = skipDeterministicItem(bytes, keyEnd, end, depth + 1, maxDepth);
    onEntry?.({ keyStart: at, valueStart: keyEnd, valueEnd });
    at = valueEnd;
  }
  return at;
}

/**
 * Bytewise comparison of `bytes[aStart, aEnd)` and `bytes[bStart, bEnd)` (RFC 8949 §4.2.1: a
 * shorter encoding that is a prefix of a longer one sorts first).
 */
export function compareSpans(
  bytes: Uint8Array,
  aStart: number,
  aEnd: number,
  bStart: number,
  bEnd: number,
): number {
  const n = Math.min(aEnd - aStart, bEnd - bStart);
  for (let i = 0; i < n; i++) {
    const d = (bytes[aStart + i] as number) - (bytes[bStart + i] as number);
    if (d !== 0) return d;
  }
  return aEnd - aStart - (bEnd - bStart);
}

/**
 * The error of an encoding over `maxOctets` (`ERR_CBOR_TOO_LARGE`), the same whether the
 * octets were encoded (cbor.ts) or cut from received ones ({@link spliceMapEntry}).
 */
export function tooLarge(octets: number, maxOctets: number): SignedObjectError {
  return new SignedObjectError(
    'ERR_CBOR_TOO_LARGE',
    `encoding is ${octets} octets, over the ${maxOctets}-octet bound`,
  );
}

/** The head of a data item of `major` with `argument`, in its shortest form (RFC 8949 §4.2.1). */
export function encodeHead(major: number, argument: number): Uint8Array {
  const initial = major << 5;
  if (argument < 24) return Uint8Array.of(initial | argument);
  if (argument < 0x100) return Uint8Array.of(initial | 24, argument);
  if (argument < 0x10000) return Uint8Array.of(initial | 25, argument >> 8, argument & 0xff);
  if (argument < 2 ** 32) {
    const out = new Uint8Array(5);
    out[0] = initial | 26;
    new DataView(out.buffer).setUint32(1, argument);
    return out;
  }
  const out = new Uint8Array(9);
  out[0] = initial | 27;
  new DataView(out.buffer).setBigUint64(1, BigInt(argument));
  return out;
}

const utf8 = new TextEncoder();

/** The deterministic encoding of the text string `text` (RFC 8949 §3.1, major type 3). */
export function encodeText(text: string): Uint8Array {
  const octets = utf8.encode(text);
  const head = encodeHead(MAJOR_TEXT, octets.length);
  const out = new Uint8Array(head.length + octets.length);
  out.set(head, 0);
  out.set(octets, head.length);
  return out;
}

/** Where one entry of an encoded map lies: its key at `[keyStart, valueStart)`, its value after. */
export interface MapEntrySpan {
  readonly keyStart: number;
  readonly valueStart: number;
  readonly valueEnd: number;
}

/** The entries of the map encoded at `[start, end)`, which it must fill exactly. */
export interface MapSpans {
  /** How many entries the map's head declares. */
  readonly count: number;
  /** Offset just after the map's head, where the first key starts. */
  readonly entriesStart: number;
  readonly entries: readonly MapEntrySpan[];
}

/**
 * The entries of the deterministically encoded map that fills `bytes[start, end)`: each key
 * and value is checked and skipped as {@link skipDeterministicItem} does (the map at nesting 0,
 * bounded by `maxDepth`), so the walk is as strict as cbor.ts's decoder and never reads past
 * `end`. Throws `ERR_CBOR_MALFORMED` when the octets are not one such map.
 */
export function readMapSpans(
  bytes: Uint8Array,
  start: number,
  end: number,
  maxDepth: number,
): MapSpans {
  if (start < 0 || end > bytes.length || start >= end) malformed('empty or out-of-range map');
  const head = readHead(bytes, start, end);
  if (head.major !== MAJOR_MAP) malformed('not a map');
  const entries: MapEntrySpan[] = [];
  if (walkMap(bytes, head, end, 0, maxDepth, (entry) => entries.push(entry)) !== end) {
    malformed('trailing octets after the map');
  }
  return { count: head.argument, entriesStart: head.next, entries };
}

function spanEquals(bytes: Uint8Array, start: number, end: number, other: Uint8Array): boolean {
  if (end - start !== other.length) return false;
  for (let i = 0; i < other.length; i++) if (bytes[start + i] !== other[i]) return false;
  return true;
}

/**
 * The deterministic encoding of the map that fills `bytes[start, end)` with the entry whose
 * key is `drop` removed and the entry `insertKey: insertText` (a text value) added, cut from
 * the octets instead of decoded and encoded again. Deterministic encoding makes it the only
 * encoding of that map: the remaining entries keep their octets and their order (RFC 8949
 * §4.2.1 orders keys by their encodings alone), the new entry goes where its key's encoding
 * sorts, and the map's head carries the new count in its shortest form.
 *
 * Throws `ERR_CBOR_MALFORMED` when the octets are not such a map, when `drop` is not one of its
 * keys, or when `insertKey` already is; `ERR_CBOR_TOO_LARGE` (as an encoder would) when the
 * result exceeds `maxOctets`.
 */
export function spliceMapEntry(
  bytes: Uint8Array,
  start: number,
  end: number,
  edit: { readonly drop: string; readonly insertKey: string; readonly insertText: string },
  maxDepth: number,
  maxOctets: number,
): Uint8Array {
  const { count, entries } = readMapSpans(bytes, start, end, maxDepth);
  const dropKey = encodeText(edit.drop);
  const insertKey = encodeText(edit.insertKey);
  const insertValue = encodeText(edit.insertText);
  let dropped: MapEntrySpan | undefined;
  // Index of the first entry whose key sorts after the inserted key.
  let insertAt = entries.length;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as MapEntrySpan;
    if (spanEquals(bytes, e.keyStart, e.valueStart, dropKey)) dropped = e;
    const order = compareKey(bytes, e.keyStart, e.valueStart, insertKey);
    if (order === 0) malformed(`the map already has the key "${edit.insertKey}"`);
    if (order > 0 && insertAt === entries.length) insertAt = i;
  }
  if (dropped === undefined) malformed(`the map has no key "${edit.drop}"`);
  const head = encodeHead(MAJOR_MAP, count);
  const dropLength = dropped.valueEnd - dropped.keyStart;
  const entriesLength = (entries.at(-1)?.valueEnd ?? end) - (entries[0]?.keyStart ?? end);
  const total = head.length + entriesLength - dropLength + insertKey.length + insertValue.length;
  if (total > maxOctets) throw tooLarge(total, maxOctets);
  const out = new Uint8Array(total);
  out.set(head, 0);
  let o = head.length;
  for (let i = 0; i <= entries.length; i++) {
    if (i === insertAt) {
      out.set(insertKey, o);
      o += insertKey.length;
      out.set(insertValue, o);
      o += insertValue.length;
    }
    const e = entries[i];
    if (e === undefined || e === dropped) continue;
    out.set(bytes.subarray(e.keyStart, e.valueEnd), o);
    o += e.valueEnd - e.keyStart;
  }
  if (o !== total) malformed('map entries are not contiguous');
  return out;
}

/** Bytewise order of the key at `bytes[start, end)` against the encoded key `key`. */
function compareKey(bytes: Uint8Array, start: number, end: number, key: Uint8Array): number {
  const n = Math.min(end - start, key.length);
  for (let i = 0; i < n; i++) {
    const d = (bytes[start + i] as number) - (key[i] as number);
    if (d !== 0) return d;
  }
  return end - start - key.length;
}
