import { decode, encode, rfc8949EncodeOptions, Token, Tokenizer, Type } from 'cborg';
import type { DecodeOptions, DecodeTokenizer } from 'cborg/interface';
import { skipDeterministicItem, tooLarge } from './cbor-walk.js';
import { SignedObjectError } from './errors.js';

/**
 * Deterministic CBOR (RFC 8949 §4.2.1, "core deterministic encoding") for the signed objects of
 * design §4, over `cborg`. Signatures cover these bytes, so there is exactly one encoding of each
 * value, and decoding accepts that encoding only.
 *
 * The data model is the subset the protocol uses: unsigned and negative integers within
 * ±(2^53 - 1), byte strings, text strings, arrays, maps with text keys, `true`, `false` and
 * `null`. Floats, tags, `undefined` and other simple values are not part of it: the protocol has
 * no use for them, and each would add encodings to keep deterministic.
 *
 * Worked example: `{ v: 1, csi: "tel:+1" }` encodes as `a2 61 76 01 63 63 73 69 66 74 65 6c 3a
 * 2b 31`: map of 2, then the keys in bytewise order of their encodings (`61 76` "v" before
 * `63 63 73 69` "csi"), each followed by its value in the shortest form (`01`).
 *
 * {@link decodeCbor} rejects, with `ERR_CBOR_MALFORMED`: non-shortest integers and lengths,
 * indefinite lengths, unsorted or duplicate map keys, non-text map keys, floats, tags, simple
 * values other than true/false/null, invalid UTF-8, trailing bytes, nesting deeper than
 * {@link MAX_CBOR_DEPTH} and input over {@link MAX_SIGNED_OBJECT_OCTETS}. The encoding is checked
 * on the octets, before anything is decoded, by a bounded walk (cbor-walk.ts): every head in its
 * shortest form, every map's keys in strictly increasing bytewise order of their encodings. What
 * it leaves (UTF-8, the range of integers) the decoder checks, so that an accepted input is
 * exactly the encoding {@link encodeCbor} gives its value (the property tests of cbor.test.ts
 * check this on generated and mutated inputs) without encoding it again: the signed content of a
 * received object can then be cut from its octets (signed.ts).
 */

/**
 * Largest encoded signed object. The same bound as `MAX_MAP_RDATA_OCTETS` in wire.ts, since a
 * mapping travels as one MAP RDATA: every object this project creates can be published.
 */
export const MAX_SIGNED_OBJECT_OCTETS = 8192;
/**
 * Deepest nesting of arrays and maps. A mapping needs 4 (mapping → msps → entry → tags); the
 * bound keeps the decoder's recursion short whatever the input.
 */
export const MAX_CBOR_DEPTH = 16;

/** A value of the CBOR data model used by the protocol (see the module comment). */
export type CborValue = null | boolean | number | string | Uint8Array | CborArray | CborMap;
/** A CBOR array. */
export type CborArray = readonly CborValue[];
/** A CBOR map with text keys. */
export interface CborMap {
  readonly [key: string]: CborValue;
}

/** Encoder options: RFC 8949 §4.2.1 bytewise order of the encoded map keys. */
const ENCODE_OPTIONS = rfc8949EncodeOptions;

/** Decoder options: every strictness cborg offers; the rest is checked around it. */
const DECODE_OPTIONS: Readonly<DecodeOptions> = Object.freeze({
  strict: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowInfinity: false,
  allowNaN: false,
  allowBigInt: false,
  rejectDuplicateMapKeys: true,
  // Maps decode as `Map` so that no key, not even `__proto__`, is treated specially; they become
  // plain objects in `fromDecoded`.
  useMaps: true,
  // Keeps each text string's octets, so the tokenizer can decode them strictly.
  retainStringBytes: true,
});

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Encodes `value` deterministically. Throws {@link SignedObjectError} with `ERR_CBOR_UNSUPPORTED`
 * for a value outside the data model (a float, an unsafe integer, `undefined`, a class instance,
 * nesting over {@link MAX_CBOR_DEPTH}) and `ERR_CBOR_TOO_LARGE` for an encoding over
 * {@link MAX_SIGNED_OBJECT_OCTETS}.
 */
export function encodeCbor(value: CborValue): Uint8Array {
  checkEncodable(value, 'value', 0);
  // On Node, cborg returns a Buffer, possibly from the shared pool and with a `slice` that does
  // not copy; callers get a plain Uint8Array of their own.
  const bytes = new Uint8Array(encode(value, ENCODE_OPTIONS));
  if (bytes.length > MAX_SIGNED_OBJECT_OCTETS)
    throw tooLarge(bytes.length, MAX_SIGNED_OBJECT_OCTETS);
  return bytes;
}

/**
 * Decodes one deterministically encoded value that fills `bytes` exactly. Throws
 * {@link SignedObjectError} with `ERR_CBOR_MALFORMED` for anything else (see the module comment).
 */
export function decodeCbor(bytes: Uint8Array): CborValue {
  if (!(bytes instanceof Uint8Array)) malformed(`input is ${typeof bytes}, not a Uint8Array`);
  if (bytes.length === 0) malformed('input is empty');
  if (bytes.length > MAX_SIGNED_OBJECT_OCTETS) {
    malformed(`input is ${bytes.length} octets, over the ${MAX_SIGNED_OBJECT_OCTETS}-octet bound`);
  }
  // A plain Uint8Array view: on a Node Buffer, cborg's `slice` would return views into the
  // input instead of copies.
  const input = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The deterministic encoding, checked on the octets (RFC 8949 §4.2.1); what remains to check
  // (UTF-8, integer range) the tokenizer and `fromDecoded` do.
  if (skipDeterministicItem(input, 0, input.length, 0, MAX_CBOR_DEPTH) !== input.length) {
    malformed('trailing octets after the data item');
  }
  let decoded: unknown;
  try {
    decoded = decode(input, { ...DECODE_OPTIONS, tokenizer: checkingTokenizer(input) });
  } catch (error) {
    if (error instanceof SignedObjectError) throw error;
    malformed(error instanceof Error ? error.message : String(error), error);
  }
  return fromDecoded(decoded);
}

function malformed(detail: string, cause?: unknown): never {
  throw new SignedObjectError(
    'ERR_CBOR_MALFORMED',
    `malformed CBOR: ${detail}`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * cborg's tokenizer, refusing floats, tags and nesting over {@link MAX_CBOR_DEPTH} as tokens
 * arrive, before cborg's recursive decoder builds anything from them. `open` holds, for each
 * enclosing array or map, the number of data items it still expects; when a token arrives,
 * `open.length` is the number of containers around it.
 */
function checkingTokenizer(bytes: Uint8Array): DecodeTokenizer {
  const inner = new Tokenizer(bytes, DECODE_OPTIONS);
  const open: number[] = [];
  const enter = (token: Token): void => {
    const top = open.length - 1;
    if (top >= 0) open[top] = (open[top] as number) - 1;
    const isArray = Type.equals(token.type, Type.array);
    if (isArray || Type.equals(token.type, Type.map)) {
      if (open.length + 1 > MAX_CBOR_DEPTH) malformed(`nesting deeper than ${MAX_CBOR_DEPTH}`);
      const items = (token.value as number) * (isArray ? 1 : 2);
      if (items > 0) open.push(items);
    }
    while (open.length > 0 && open[open.length - 1] === 0) open.pop();
  };
  return {
    done: () => inner.done(),
    pos: () => inner.pos(),
    next(): Token {
      const token = strictText(inner.next());
      if (Type.equals(token.type, Type.float)) malformed('floats are not used');
      if (Type.equals(token.type, Type.tag)) malformed('tags are not used');
      enter(token);
      return token;
    },
  };
}

/**
 * A text token decoded strictly from its retained octets: cborg's own UTF-8 decoding replaces
 * invalid octets with U+FFFD and drops a leading U+FEFF. (The one-octet empty string is a
 * shared token without retained octets, and needs nothing.)
 */
function strictText(token: Token): Token {
  if (!Type.equals(token.type, Type.string) || token.byteValue === undefined) return token;
  try {
    return new Token(Type.string, strictUtf8.decode(token.byteValue), token.encodedLength);
  } catch (error) {
    return malformed('text string that is not valid UTF-8', error);
  }
}

/** Turns cborg's output (maps as `Map`) into {@link CborValue}, refusing non-text map keys. */
function fromDecoded(value: unknown): CborValue {
  if (value instanceof Map) {
    const entries: [string, CborValue][] = [];
    for (const [key, item] of value) {
      if (typeof key !== 'string') malformed(`map key of type ${typeof key}; keys are text`);
      entries.push([key, fromDecoded(item)]);
    }
    // Object.fromEntries defines own properties, so `__proto__` stays an ordinary key.
    return Object.fromEntries(entries);
  }
  if (Array.isArray(value)) return value.map(fromDecoded);
  if (
    value === null ||
    typeof value === 'boolean' ||
    typeof value === 'string' ||
    value instanceof Uint8Array ||
    (typeof value === 'number' && Number.isSafeInteger(value))
  ) {
    return value;
  }
  return malformed(`unsupported value of type ${typeof value}`);
}

function checkEncodable(value: unknown, path: string, depth: number): asserts value is CborValue {
  const unsupported = (what: string): never => {
    throw new SignedObjectError('ERR_CBOR_UNSUPPORTED', `${path}: ${what} is not encodable`);
  };
  if (value === null || typeof value === 'boolean') return;
  if (typeof value === 'string') {
    // A lone surrogate has no UTF-8 form; the encoder would write U+FFFD in its place.
    if (strictUtf8.decode(utf8.encode(value)) !== value)
      unsupported('a string with a lone surrogate');
    return;
  }
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) unsupported(`the number ${value} (only safe integers)`);
    return;
  }
  if (value instanceof Uint8Array) return;
  if (typeof value !== 'object') return unsupported(typeof value);
  if (depth >= MAX_CBOR_DEPTH) unsupported(`nesting deeper than ${MAX_CBOR_DEPTH}`);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) checkEncodable(value[i], `${path}[${i}]`, depth + 1);
    return;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) unsupported('an object that is not plain');
  for (const [key, item] of Object.entries(value)) {
    checkEncodable(item, `${path}.${key}`, depth + 1);
  }
}
