/**
 * A quick read of when a mapping expires, for `resign`'s walk over every node of a zone: decoding
 * a mapping strictly (`decodeMapping`) costs tens of microseconds, which over millions of MAP
 * records would make each walk take minutes, while finding two unsigned integers in its CBOR
 * (RFC 8949) takes about one. The hint only picks the candidates: a record it says has expired
 * (or cannot read) is then decoded strictly before anything is deleted (`mapping-ops.ts`), so a
 * wrong hint can cost time, never a record.
 *
 * Worked example: a mapping `{v: 1, …, exp: 1800000000, …, att: {…, exp: 1790000000, …}, …}`
 * gives 1790000000, min(`exp`, `att.exp`).
 */

/** Deepest nesting the walk follows (as `MAX_CBOR_DEPTH` of the decoder). */
const MAX_DEPTH = 16;

/**
 * min(`exp`, `att.exp`) of the mapping in MAP RDATA `rdata`, read without checking anything
 * else, or undefined when the octets are not a CBOR map holding both as unsigned integers.
 */
export function mappingExpiryHint(rdata: Uint8Array): number | undefined {
  try {
    const top = readExp(rdata, 0, true);
    if (top === undefined || top.exp === undefined || top.attExp === undefined) return undefined;
    return Math.min(top.exp, top.attExp);
  } catch (error) {
    if (error instanceof RangeError) return undefined;
    throw error;
  }
}

/** An item's header: major type, argument, and where its content starts. */
interface Head {
  major: number;
  value: number;
  end: number;
}

function head(bytes: Uint8Array, pos: number): Head {
  const first = bytes[pos];
  if (first === undefined) throw new RangeError('truncated');
  const major = first >> 5;
  const info = first & 0x1f;
  if (info < 24) return { major, value: info, end: pos + 1 };
  const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
  if (size === 0) throw new RangeError('indefinite or reserved length');
  if (pos + 1 + size > bytes.length) throw new RangeError('truncated');
  let value = 0;
  for (let i = 1; i <= size; i++) value = value * 256 + (bytes[pos + i] as number);
  return { major, value, end: pos + 1 + size };
}

/** The position after the item at `pos`. */
function skip(bytes: Uint8Array, pos: number, depth: number): number {
  if (depth > MAX_DEPTH) throw new RangeError('too deep');
  const h = head(bytes, pos);
  switch (h.major) {
    case 0:
    case 1:
    case 7:
      return h.end;
    case 2:
    case 3:
      if (h.end + h.value > bytes.length) throw new RangeError('truncated');
      return h.end + h.value;
    case 4: {
      let at = h.end;
      for (let i = 0; i < h.value; i++) at = skip(bytes, at, depth + 1);
      return at;
    }
    case 5: {
      let at = h.end;
      for (let i = 0; i < 2 * h.value; i++) at = skip(bytes, at, depth + 1);
      return at;
    }
    default:
      // A tag: its item follows.
      return skip(bytes, h.end, depth + 1);
  }
}

/**
 * Reads the map at `pos`: its `exp` and (at the top) the `exp` of its `att` map. Undefined when
 * the item is not a map.
 */
function readExp(
  bytes: Uint8Array,
  pos: number,
  top: boolean,
): { exp: number | undefined; attExp: number | undefined; end: number } | undefined {
  const h = head(bytes, pos);
  if (h.major !== 5) return undefined;
  let exp: number | undefined;
  let attExp: number | undefined;
  let at = h.end;
  for (let i = 0; i < h.value; i++) {
    const key = head(bytes, at);
    if (key.major !== 3 || key.end + key.value > bytes.length) return undefined;
    const name = Buffer.from(bytes.buffer, bytes.byteOffset + key.end, key.value).toString(
      'latin1',
    );
    at = key.end + key.value;
    const value = head(bytes, at);
    if (name === 'exp' && value.major === 0) exp = value.value;
    if (top && name === 'att' && value.major === 5) {
      attExp = readExp(bytes, at, false)?.exp;
    }
    at = skip(bytes, at, 1);
  }
  return { exp, attExp, end: at };
}
