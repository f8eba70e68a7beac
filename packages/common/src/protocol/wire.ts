/**
 * The DNS message codec: the one place where the record model of `records.ts` becomes bytes and
 * bytes become the model, and the only module of the project that imports `dns-packet`.
 *
 * Decoding is strict: a message decodes only if it is exactly well formed (RFC 1035 §4, RFC 3597,
 * RFC 4034, RFC 5155, RFC 6891, RFC 9460, RFC 9461 and the private types of design §4). Every
 * other input throws a {@link WireError} whose `code` is one of:
 *
 * | code | meaning |
 * |---|---|
 * | `ERR_WIRE_TRUNCATED` | the message ends inside a header, question, record or name, or its counts claim more than it holds |
 * | `ERR_WIRE_TRAILING_BYTES` | bytes left after the last record the counts announce |
 * | `ERR_WIRE_TOO_LARGE` | over {@link MAX_MESSAGE_OCTETS}, a RDATA over 65535 octets, a MAP over {@link MAX_MAP_RDATA_OCTETS}, a KEYCONF config over `MAX_KEYCONF_CONFIG_OCTETS` |
 * | `ERR_WIRE_TOO_MANY_RECORDS` | more than {@link MAX_RECORDS_PER_MESSAGE} questions and records, or a section over 65535 |
 * | `ERR_WIRE_BAD_POINTER` | a compression pointer that is not strictly backwards, points into the header, chains more than {@link MAX_COMPRESSION_POINTERS} times, or appears where RFC 3597 §4 forbids compression |
 * | `ERR_WIRE_BAD_LABEL` | label type 0x40 or 0x80 (RFC 6891 §5), or a label that cannot be encoded |
 * | `ERR_WIRE_NAME_TOO_LONG` | a name over 255 octets in wire form (RFC 1035 §2.3.4) |
 * | `ERR_WIRE_RDLENGTH` | RDATA shorter than its fields need, or not consumed exactly |
 * | `ERR_WIRE_BAD_RDATA` | a field value the type forbids (empty TXT or digest, AUTHKEY role, zero NSEC3 hash length, a KEYCONF that is not its exact CBOR map, …) |
 * | `ERR_WIRE_BAD_BITMAP` | an NSEC/NSEC3 type bitmap against RFC 4034 §4.1.2 |
 * | `ERR_WIRE_BAD_SVCB` | SVCB parameters against RFC 9460 §2.2, §7, §8 or RFC 9461 |
 * | `ERR_WIRE_BAD_OPT` | OPT outside the additional section, more than one, owner not the root, bad option framing, extended RCODE not matching |
 * | `ERR_WIRE_BAD_TYPE` | an RR type or class that cannot appear where it is (type 0, a query-only type or OPT as a record, an unknown mnemonic, the generic form of a type or class that has a mnemonic) |
 * | `ERR_WIRE_BAD_VALUE` | a value given to this module that it cannot take: a model value out of range or of the wrong shape (TTL, port, opcode, address text, …), an input that is not a `Uint8Array` |
 * | `ERR_WIRE_INTERNAL` | a fault in this module; never expected, reported instead of letting another error escape |
 *
 * Encoding validates the model the same way and throws the same codes, so that everything this
 * module encodes decodes again: `decodeMessage(encodeMessage(m))` deep-equals `m` up to the
 * normalisation below, and `encodeMessage(decodeMessage(b))` equals `b` byte for byte for every
 * `b` that `encodeMessage` produced.
 *
 * Normalisation (what a decode gives back differently from what was encoded):
 * - names come back in presentation form as `formatLabels` writes them: no trailing dot, case
 *   as on the wire, escapes normalised (`\065` → `A`);
 * - IPv4 addresses as dotted decimal, IPv6 addresses in the compressed lowercase form;
 * - NSEC/NSEC3 `types`, SVCB `mandatory` and SVCB `unknown` sorted by code (the encoder sorts);
 * - `TYPE<n>`/`CLASS<n>`/`RCODE<n>` are used only for codes without a mnemonic; the encoder
 *   rejects the generic form of a code that has one, except inside NSEC bitmaps and RRSIG
 *   `typeCovered`, which come back as the mnemonic;
 * - the OPT record is always written last in the additional section; the EDNS flag bits other
 *   than DO and CO (RFC 9824 §5) are ignored on decode and written as zero (RFC 6891 §6.1.4);
 * - RRSIG expiration and inception are written as `t mod 2^32` (RFC 4034 §3.1.5 serial
 *   arithmetic) and decoded as that u32 value: times past 2106-02-07 come back reduced; the
 *   validator applies serial arithmetic against its clock.
 *
 * Why not dns-packet alone (v5.6.1, read in full): it decodes labels as UTF-8 without escapes
 * (lossy for any octet outside ASCII and for `.` inside a label) and encodes names by splitting on
 * `.` with no length checks; it never compares RDLENGTH with what a RDATA decoder consumed (A,
 * AAAA, NS, CNAME, SOA, MX, SRV, RRSIG and NSEC read past or short of it); it ignores trailing
 * bytes and counts that exceed the data (throwing a bare `RangeError`), and allocates arrays
 * sized by the counts; it follows compression pointers in every RDATA type, with no check that
 * the pointer is outside the header; it accepts any number of OPT records, in any section,
 * reads option lengths past RDLENGTH and keeps only the 4-bit header RCODE; its type bitmaps
 * accept unsorted, empty, oversized and zero-padded windows; it rejects DNSKEY protocol ≠ 3
 * (a validator's decision, RFC 4034 §2.1.2); it has no SVCB codec and does not compress on
 * encode; it folds the top bit of a record class into an mDNS cache-flush flag; its decoded
 * byte strings alias the input buffer. This module therefore does its own
 * framing, names, compression and RDATA, and uses dns-packet where it is right: the A/AAAA
 * address codecs (after validating the text) and the header and EDNS flag constants.
 */
import { Buffer } from 'node:buffer';
import { isIPv4, isIPv6 } from 'node:net';
import dnsPacket from 'dns-packet';
import { decodeCbor, encodeCbor, type CborValue } from './cbor.js';
import { NameError, WireError, type WireErrorCode } from './errors.js';
import { formatLabels, MAX_LABEL_OCTETS, MAX_NAME_OCTETS, parseLabels } from './names.js';
import {
  DNSSEC_ALGORITHM_ED25519,
  KEYCONF_KINDS,
  MAX_KEYCONF_CONFIG_OCTETS,
  RR_TYPE_AUTHKEY,
  RR_TYPE_KEYCONF,
  RR_TYPE_MAP,
  RR_TYPE_MAPREF,
} from './records.js';
import type {
  AuthkeyData,
  DnskeyData,
  DsData,
  Edns,
  EdnsOption,
  KeyconfData,
  KnownRRType,
  Message,
  MessageFlags,
  Nsec3Data,
  Nsec3ParamData,
  NsecData,
  Question,
  Rcode,
  ResourceRecord,
  RRClass,
  RRType,
  RrsigData,
  SoaData,
  SvcbData,
  SvcParams,
  ZonemdData,
} from './records.js';

/** Octets of the message header (RFC 1035 §4.1.1). */
export const HEADER_OCTETS = 12;
/** Largest message: the 16-bit length of DNS over TCP and DoH (RFC 1035 §4.2.2, RFC 8484 §6). */
export const MAX_MESSAGE_OCTETS = 65535;
/**
 * Most questions plus records (OPT included) a message may hold, encoded or decoded. A 64 KiB
 * message can carry at most ~5,900 minimal records; no response of this project comes close
 * to this bound, which keeps the work per message small whatever the header counts say.
 */
export const MAX_RECORDS_PER_MESSAGE = 4096;
/**
 * Most compression pointers followed while decoding one name. Pointers must also be strictly
 * backwards, so loops are impossible; the bound keeps the cost of one name small.
 */
export const MAX_COMPRESSION_POINTERS = 32;
/**
 * Largest MAP RDATA (one signed mapping in CBOR): room for a few dozen MSP entries with URIs,
 * while several mappings with their RRSIGs still fit one 64 KiB response.
 */
export const MAX_MAP_RDATA_OCTETS = 8192;
/** Largest RDATA: RDLENGTH is 16 bits (RFC 1035 §4.1.3). */
export const MAX_RDATA_OCTETS = 65535;

function fail(code: WireErrorCode, message: string, offset?: number, cause?: unknown): never {
  throw new WireError(code, message, offset, cause === undefined ? undefined : { cause });
}

// ---------------------------------------------------------------------------------------------
// Types, classes, response codes

const TYPE_CODES: Readonly<Record<KnownRRType, number>> = Object.freeze({
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  TXT: 16,
  AAAA: 28,
  OPT: 41,
  DS: 43,
  RRSIG: 46,
  NSEC: 47,
  DNSKEY: 48,
  NSEC3: 50,
  NSEC3PARAM: 51,
  CDS: 59,
  CDNSKEY: 60,
  SVCB: 64,
  ZONEMD: 63,
  MAP: RR_TYPE_MAP,
  MAPREF: RR_TYPE_MAPREF,
  AUTHKEY: RR_TYPE_AUTHKEY,
  KEYCONF: RR_TYPE_KEYCONF,
});

/** Query-only types (RFC 1035 §3.2.3, RFC 1995), valid in questions but never as records. */
const QUERY_TYPE_CODES: Readonly<Record<'ANY' | 'AXFR' | 'IXFR', number>> = Object.freeze({
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
});

const TYPES_BY_CODE: ReadonlyMap<number, KnownRRType> = new Map(
  Object.entries(TYPE_CODES).map(([type, code]) => [code, type as KnownRRType]),
);

const TYPE_OPT = 41;

const CLASS_CODES: Readonly<Record<'IN' | 'CH' | 'HS' | 'ANY', number>> = Object.freeze({
  IN: 1,
  CH: 3,
  HS: 4,
  ANY: 255,
});
const CLASSES_BY_CODE: ReadonlyMap<number, RRClass> = new Map(
  Object.entries(CLASS_CODES).map(([name, code]) => [code, name as RRClass]),
);

const RCODE_CODES: Readonly<Record<Exclude<Rcode, `RCODE${number}`>, number>> = Object.freeze({
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  NOTAUTH: 9,
  BADVERS: 16,
});
const RCODES_BY_CODE: ReadonlyMap<number, Rcode> = new Map(
  Object.entries(RCODE_CODES).map(([name, code]) => [code, name as Rcode]),
);

/** Parses `<prefix><decimal>` with no leading zeros and a value ≤ `max`, else `undefined`. */
function genericCode(text: string, prefix: string, max: number): number | undefined {
  if (!text.startsWith(prefix)) return undefined;
  const digits = text.slice(prefix.length);
  if (!/^(0|[1-9][0-9]{0,4})$/.test(digits)) return undefined;
  const n = Number(digits);
  return n <= max ? n : undefined;
}

function has<K extends string>(table: Readonly<Record<K, number>>, key: string): key is K {
  return Object.hasOwn(table, key);
}

/**
 * The numeric code of an RR type: a mnemonic of the model, a query-only type, or the generic
 * `TYPE<n>` of RFC 3597 §5. Example: `'MAP'` → 65400, `'ANY'` → 255, `'TYPE1234'` → 1234.
 * Throws `WireError` `ERR_WIRE_BAD_TYPE` for anything else.
 */
export function typeToCode(type: RRType | 'ANY' | 'AXFR' | 'IXFR'): number {
  if (typeof type !== 'string') fail('ERR_WIRE_BAD_TYPE', 'RR type must be a string');
  if (has(TYPE_CODES, type)) return TYPE_CODES[type];
  if (has(QUERY_TYPE_CODES, type)) return QUERY_TYPE_CODES[type];
  const n = genericCode(type, 'TYPE', 0xffff);
  if (n === undefined) fail('ERR_WIRE_BAD_TYPE', `unknown RR type ${JSON.stringify(type)}`);
  return n;
}

/**
 * The RR type of a numeric code: the model's mnemonic when it has one, else `TYPE<code>`
 * (RFC 3597 §5). Example: 65401 → `'MAPREF'`, 15 → `'TYPE15'` (MX is not in the model).
 */
export function codeToType(code: number): RRType {
  if (!Number.isInteger(code) || code < 0 || code > 0xffff) {
    fail('ERR_WIRE_BAD_VALUE', `RR type code ${code} is not a 16-bit unsigned integer`);
  }
  return TYPES_BY_CODE.get(code) ?? `TYPE${code}`;
}

function questionTypeOf(code: number): Question['type'] {
  if (code === QUERY_TYPE_CODES.ANY) return 'ANY';
  if (code === QUERY_TYPE_CODES.AXFR) return 'AXFR';
  if (code === QUERY_TYPE_CODES.IXFR) return 'IXFR';
  return codeToType(code);
}

/**
 * Whether a code may be the type of a record: not the reserved 0 (RFC 6895 §3.1), not a
 * query-only type 251–255, and not OPT, which the codec carries in `Message.edns`.
 */
function isRecordTypeCode(code: number): boolean {
  return code !== 0 && code !== TYPE_OPT && !(code >= 251 && code <= 255);
}

/** The code of a record's type, refusing generic names of types that have a mnemonic. */
function recordTypeCode(type: string): number {
  const code = typeToCode(type as RRType);
  if (!isRecordTypeCode(code)) fail('ERR_WIRE_BAD_TYPE', `${type} cannot be the type of a record`);
  if (codeToType(code) !== type) {
    fail('ERR_WIRE_BAD_TYPE', `write ${codeToType(code)} rather than ${type}`);
  }
  return code;
}

function classToCode(klass: RRClass): number {
  if (typeof klass === 'string') {
    if (has(CLASS_CODES, klass)) return CLASS_CODES[klass];
    const n = genericCode(klass, 'CLASS', 0xffff);
    if (n !== undefined && !CLASSES_BY_CODE.has(n)) return n;
  }
  return fail('ERR_WIRE_BAD_TYPE', `bad class ${JSON.stringify(klass)}`);
}

function codeToClass(code: number): RRClass {
  return CLASSES_BY_CODE.get(code) ?? `CLASS${code}`;
}

/** The 12-bit value of a response code; throws `WireError` `ERR_WIRE_BAD_VALUE` for a bad one. */
export function rcodeToCode(rcode: Rcode): number {
  if (typeof rcode === 'string') {
    if (has(RCODE_CODES, rcode)) return RCODE_CODES[rcode];
    const n = genericCode(rcode, 'RCODE', 0xfff);
    if (n !== undefined && !RCODES_BY_CODE.has(n)) return n;
  }
  return fail('ERR_WIRE_BAD_VALUE', `bad rcode ${JSON.stringify(rcode)}`);
}

function codeToRcode(code: number): Rcode {
  return RCODES_BY_CODE.get(code) ?? `RCODE${code}`;
}

// ---------------------------------------------------------------------------------------------
// Model value checks (encoding)

function uint(value: number, bits: 8 | 16 | 32, what: string): number {
  const max = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    fail('ERR_WIRE_BAD_VALUE', `${what} must be an integer in 0..${max}, got ${String(value)}`);
  }
  return value;
}

function octets(value: Uint8Array, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) fail('ERR_WIRE_BAD_VALUE', `${what} must be a Uint8Array`);
  return value;
}

/** RFC 4034 §3.1.5: RRSIG times are 32-bit serial numbers; `t mod 2^32` of epoch seconds. */
function serialTime(value: number, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    fail('ERR_WIRE_BAD_VALUE', `${what} must be an integer number of seconds`);
  }
  const m = value % 2 ** 32;
  return m < 0 ? m + 2 ** 32 : m;
}

// ---------------------------------------------------------------------------------------------
// Output buffer with name compression

interface Output {
  buf: Uint8Array;
  length: number;
  /** Largest size allowed; exceeding it throws `ERR_WIRE_TOO_LARGE`. */
  readonly limit: number;
  /** Compression table (exact label octets of a name suffix → offset), when compressing. */
  readonly names: Map<string, number> | undefined;
  /**
   * The last owner or question name written whole where a pointer can reach it, as given, and
   * the offset of its octets: the next record of the same RRset points there at once instead of
   * parsing the same name and matching its suffixes again (`putOwner`).
   */
  lastName: string | undefined;
  lastNameAt: number;
}

function newOutput(limit: number, compress: boolean): Output {
  return {
    buf: new Uint8Array(512),
    length: 0,
    limit,
    names: compress ? new Map() : undefined,
    lastName: undefined,
    lastNameAt: 0,
  };
}

function reserve(out: Output, n: number): number {
  const at = out.length;
  const need = at + n;
  if (need > out.limit) fail('ERR_WIRE_TOO_LARGE', `encoding exceeds ${out.limit} octets`);
  if (need > out.buf.length) {
    const grown = new Uint8Array(Math.min(Math.max(need, out.buf.length * 2), out.limit));
    grown.set(out.buf.subarray(0, out.length));
    out.buf = grown;
  }
  out.length = need;
  return at;
}

// Each writer reserves before it reads `out.buf`: reserving may replace the buffer.
function putU8(out: Output, v: number): void {
  const at = reserve(out, 1);
  out.buf[at] = v;
}

function putU16(out: Output, v: number): void {
  const at = reserve(out, 2);
  out.buf[at] = v >>> 8;
  out.buf[at + 1] = v & 0xff;
}

function putU32(out: Output, v: number): void {
  const at = reserve(out, 4);
  out.buf[at] = v >>> 24;
  out.buf[at + 1] = (v >>> 16) & 0xff;
  out.buf[at + 2] = (v >>> 8) & 0xff;
  out.buf[at + 3] = v & 0xff;
}

function putBytes(out: Output, bytes: Uint8Array): void {
  const at = reserve(out, bytes.length);
  out.buf.set(bytes, at);
}

function patchU16(out: Output, at: number, v: number): void {
  out.buf[at] = v >>> 8;
  out.buf[at + 1] = v & 0xff;
}

function finish(out: Output): Uint8Array {
  return out.buf.slice(0, out.length);
}

/** Writes a length-prefixed block whose 16-bit length is patched after `body` wrote it. */
function putLengthPrefixed(out: Output, what: string, body: () => void): void {
  const at = reserve(out, 2);
  body();
  const length = out.length - at - 2;
  if (length > MAX_RDATA_OCTETS)
    fail('ERR_WIRE_TOO_LARGE', `${what} over ${MAX_RDATA_OCTETS} octets`);
  patchU16(out, at, length);
}

const ASCII_UPPER_A = 0x41;
const ASCII_UPPER_Z = 0x5a;

function lowercase(label: Uint8Array): Uint8Array {
  return label.map((b) => (b >= ASCII_UPPER_A && b <= ASCII_UPPER_Z ? b + 0x20 : b));
}

/** Labels of a model name, as `WireError` on a bad name; `canonical` lowercases ASCII. */
function labelsOf(name: string, canonical: boolean): Uint8Array[] {
  if (typeof name !== 'string') fail('ERR_WIRE_BAD_VALUE', 'a domain name must be a string');
  const plain = plainLabels(name);
  if (plain !== undefined) return canonical ? plain.map(lowercase) : plain;
  let labels: Uint8Array[];
  try {
    labels = parseLabels(name);
  } catch (e) {
    if (e instanceof NameError) {
      fail(
        e.code === 'ERR_NAME_TOO_LONG' ? 'ERR_WIRE_NAME_TOO_LONG' : 'ERR_WIRE_BAD_LABEL',
        e.message,
        undefined,
        e,
      );
    }
    throw e;
  }
  return canonical ? labels.map(lowercase) : labels;
}

/** Names made of letters, digits, `-`, `_` and `*` only: their labels are their characters. */
const PLAIN_NAME = /^[0-9A-Za-z_*-]+(?:\.[0-9A-Za-z_*-]+)*\.?$/;

/**
 * The labels of a name without escapes, as `parseLabels` gives them, or undefined when the name
 * needs the full parser (escapes, other characters, the root, or a length error to report).
 */
function plainLabels(name: string): Uint8Array[] | undefined {
  if (name.length > MAX_NAME_OCTETS || !PLAIN_NAME.test(name)) return undefined;
  const end = name.endsWith('.') ? name.length - 1 : name.length;
  const labels: Uint8Array[] = [];
  let start = 0;
  while (start < end) {
    let stop = name.indexOf('.', start);
    if (stop < 0 || stop > end) stop = end;
    if (stop - start > MAX_LABEL_OCTETS) return undefined;
    const label = new Uint8Array(stop - start);
    for (let i = 0; i < label.length; i++) label[i] = name.charCodeAt(start + i);
    labels.push(label);
    start = stop + 1;
  }
  // Wire length: one length octet per label, the label octets, the root octet.
  return end + 2 > MAX_NAME_OCTETS ? undefined : labels;
}

/**
 * Writes a name. With compression (RFC 1035 §4.1.4), the longest suffix already written in a
 * compressible place becomes a pointer; suffixes are matched on exact octets so that a pointer
 * never changes the case of what it replaces. Example: after `ns1.example.com` at offset 12,
 * `www.example.com` is written as `3www` + pointer to offset 16.
 */
function putName(out: Output, labels: readonly Uint8Array[], compress: boolean): void {
  const table = compress ? out.names : undefined;
  const keys = table === undefined ? [] : suffixKeys(labels);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i] as Uint8Array;
    if (table !== undefined) {
      const key = keys[i] as string;
      const target = table.get(key);
      if (target !== undefined) {
        putU16(out, 0xc000 | target);
        return;
      }
      // Only offsets that fit the 14 bits of a pointer can be targets.
      if (out.length < 0x4000) table.set(key, out.length);
    }
    putU8(out, label.length);
    putBytes(out, label);
  }
  putU8(out, 0);
}

/**
 * Writes an owner or question name, compressed: when it is the very string written last in that
 * place (the records of one RRset share their owner), a pointer to those octets, whose exact
 * octets are the same name's (RFC 1035 §4.1.4); else as {@link putName} does.
 */
function putOwner(out: Output, name: string, canonical: boolean): void {
  if (out.names === undefined) {
    putName(out, labelsOf(name, canonical), false);
    return;
  }
  if (out.lastName !== undefined && name === out.lastName) {
    putU16(out, 0xc000 | out.lastNameAt);
    return;
  }
  const at = out.length;
  putName(out, labelsOf(name, canonical), true);
  // The root (one octet) is shorter than a pointer to it.
  if (at >= 0x4000 || out.length - at < 2) return;
  out.lastName = name;
  // A name written as one pointer is reached through its target, not through a second pointer.
  const first = out.buf[at] as number;
  out.lastNameAt =
    (first & 0xc0) === 0xc0 ? ((first & 0x3f) << 8) | (out.buf[at + 1] as number) : at;
}

function suffixKeys(labels: readonly Uint8Array[]): string[] {
  const keys: string[] = new Array<string>(labels.length);
  let key = '';
  for (let i = labels.length - 1; i >= 0; i--) {
    const label = labels[i] as Uint8Array;
    key = String.fromCharCode(label.length, ...label) + key;
    keys[i] = key;
  }
  return keys;
}

/**
 * A name in uncompressed wire form (RFC 1035 §3.1). `canonical` lowercases ASCII letters, as
 * RFC 4034 §6.2 requires for owner names and the listed RDATA names.
 * Example: `'Example.COM'` → `07 45 78 61 6d 70 6c 65 03 43 4f 4d 00`.
 */
export function encodeName(name: string, options?: { canonical?: boolean }): Uint8Array {
  return guardEncode(() => {
    const out = newOutput(MAX_NAME_OCTETS, false);
    putName(out, labelsOf(name, options?.canonical === true), false);
    return finish(out);
  });
}

// ---------------------------------------------------------------------------------------------
// Input cursor

interface Cursor {
  readonly bytes: Uint8Array;
  pos: number;
  /** End of the region being read (the message, or one RDATA). */
  readonly end: number;
  /** Code for running out of the region: truncated message, or RDATA shorter than its fields. */
  readonly short: WireErrorCode;
}

function need(c: Cursor, n: number, what: string): void {
  if (c.end - c.pos < n) fail(c.short, `${what} runs past the end of the ${regionName(c)}`, c.pos);
}

function regionName(c: Cursor): string {
  return c.short === 'ERR_WIRE_RDLENGTH' ? 'RDATA' : 'message';
}

function getU8(c: Cursor, what: string): number {
  need(c, 1, what);
  return c.bytes[c.pos++] as number;
}

function getU16(c: Cursor, what: string): number {
  need(c, 2, what);
  const v = ((c.bytes[c.pos] as number) << 8) | (c.bytes[c.pos + 1] as number);
  c.pos += 2;
  return v;
}

function getU32(c: Cursor, what: string): number {
  need(c, 4, what);
  const b = c.bytes;
  const p = c.pos;
  c.pos += 4;
  return (
    (b[p] as number) * 0x1000000 +
    (((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number))
  );
}

/** `n` octets as a fresh copy (decoded values never alias the input). */
function getBytes(c: Cursor, n: number, what: string): Uint8Array {
  need(c, n, what);
  const v = c.bytes.slice(c.pos, c.pos + n);
  c.pos += n;
  return v;
}

function getRest(c: Cursor): Uint8Array {
  return getBytes(c, c.end - c.pos, 'value');
}

/** Where compression pointers may appear and point. */
interface PointerRule {
  readonly allowed: boolean;
  /** Lowest valid target: 12 in a message (never into the header), 0 for a bare name. */
  readonly min: number;
}

const NO_POINTERS: PointerRule = Object.freeze({ allowed: false, min: 0 });
const MESSAGE_POINTERS: PointerRule = Object.freeze({ allowed: true, min: HEADER_OCTETS });

/**
 * Reads a name at `c.pos`. Labels inline at the name's start must lie within `c.end`; a pointer
 * must target an offset strictly before the start of the labels being read (so every hop goes
 * backwards and no loop is possible, as RFC 1035 §4.1.4 "prior occurrence" intends), at or above
 * `rule.min`, at most {@link MAX_COMPRESSION_POINTERS} times.
 */
function getName(c: Cursor, rule: PointerRule): string {
  const bytes = c.bytes;
  const labels: Uint8Array[] = [];
  let pos = c.pos;
  let end = c.end;
  let floor = c.pos;
  let jumped = false;
  let hops = 0;
  let wire = 1;
  for (;;) {
    if (pos >= end) fail(jumped ? 'ERR_WIRE_TRUNCATED' : c.short, 'name runs past the end', pos);
    const len = bytes[pos] as number;
    if (len === 0) {
      pos += 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0) {
      wire += len + 1;
      if (wire > MAX_NAME_OCTETS)
        fail('ERR_WIRE_NAME_TOO_LONG', `name over ${MAX_NAME_OCTETS} octets`, pos);
      if (pos + 1 + len > end)
        fail(jumped ? 'ERR_WIRE_TRUNCATED' : c.short, 'label runs past the end', pos);
      labels.push(bytes.slice(pos + 1, pos + 1 + len));
      pos += 1 + len;
      continue;
    }
    if (kind !== 0xc0) {
      // 0x40 is the extended label type RFC 6891 §5 retired; 0x80 is reserved.
      fail('ERR_WIRE_BAD_LABEL', `label type 0x${kind.toString(16)} is not supported`, pos);
    }
    if (pos + 2 > end)
      fail(jumped ? 'ERR_WIRE_TRUNCATED' : c.short, 'pointer runs past the end', pos);
    if (!rule.allowed)
      fail('ERR_WIRE_BAD_POINTER', 'compression pointer where RFC 3597 §4 forbids one', pos);
    const target = ((len & 0x3f) << 8) | (bytes[pos + 1] as number);
    if (target >= floor)
      fail('ERR_WIRE_BAD_POINTER', `pointer to ${target} does not point backwards`, pos);
    if (target < rule.min)
      fail('ERR_WIRE_BAD_POINTER', `pointer to ${target} points into the header`, pos);
    hops += 1;
    if (hops > MAX_COMPRESSION_POINTERS) {
      fail(
        'ERR_WIRE_BAD_POINTER',
        `more than ${MAX_COMPRESSION_POINTERS} compression pointers`,
        pos,
      );
    }
    if (!jumped) c.pos = pos + 2;
    jumped = true;
    floor = target;
    pos = target;
    end = bytes.length;
  }
  if (!jumped) c.pos = pos;
  return formatLabels(labels);
}

/**
 * Decodes one name from `bytes` at `offset`, following compression pointers (strictly
 * backwards, anywhere in `bytes`). Returns the name in presentation form and the offset just
 * after it. Throws `WireError` for any malformed name.
 * Example: in `01 61 00 01 62 c0 00`, the name at offset 3 is `b.a`, ending at offset 7.
 */
export function decodeName(bytes: Uint8Array, offset = 0): { name: string; end: number } {
  return guard(() => {
    const input = plain(bytes);
    if (!Number.isInteger(offset) || offset < 0 || offset > input.length) {
      fail('ERR_WIRE_BAD_VALUE', `offset ${offset} outside the input`);
    }
    const c: Cursor = { bytes: input, pos: offset, end: input.length, short: 'ERR_WIRE_TRUNCATED' };
    const name = getName(c, { allowed: true, min: 0 });
    return { name, end: c.pos };
  });
}

/** A plain `Uint8Array` view of the input, so decoded slices are never `Buffer`s. */
function plain(bytes: Uint8Array): Uint8Array {
  if (!(bytes instanceof Uint8Array)) fail('ERR_WIRE_BAD_VALUE', 'input must be a Uint8Array');
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Runs a decoder so that nothing but `WireError` can escape it. */
function guard<T>(decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    if (e instanceof WireError) throw e;
    throw new WireError('ERR_WIRE_INTERNAL', 'unexpected fault while decoding', undefined, {
      cause: e,
    });
  }
}

/**
 * Runs an encoder so that nothing but `WireError` can escape it: a value of the wrong shape
 * (possible only by bypassing the types, e.g. from parsed JSON) becomes `ERR_WIRE_BAD_VALUE`.
 */
function guardEncode<T>(encode: () => T): T {
  try {
    return encode();
  } catch (e) {
    if (e instanceof WireError) throw e;
    throw new WireError('ERR_WIRE_BAD_VALUE', 'value does not fit the record model', undefined, {
      cause: e,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Addresses (dns-packet's codecs, after our own validation of the text)

interface AddressCodec {
  encode(host: string, buf: Buffer, offset: number): Buffer;
  decode(buf: Buffer, offset: number): string;
}

/** dns-packet's A and AAAA RDATA codecs; `@types/dns-packet` does not declare them. */
const addressCodecs = dnsPacket as unknown as { a: AddressCodec; aaaa: AddressCodec };

/** Address text → octets. dns-packet's codec writes garbage for bad text, so check first. */
function addressToBytes(text: string, family: 4 | 6, what: string): Uint8Array {
  const valid =
    typeof text === 'string' && (family === 4 ? isIPv4(text) : isIPv6(text) && !text.includes('%'));
  if (!valid)
    fail('ERR_WIRE_BAD_VALUE', `${what}: ${JSON.stringify(text)} is not an IPv${family} address`);
  const size = family === 4 ? 4 : 16;
  const buf = Buffer.alloc(2 + size);
  try {
    (family === 4 ? addressCodecs.a : addressCodecs.aaaa).encode(text, buf, 0);
  } catch (e) {
    fail('ERR_WIRE_BAD_VALUE', `${what}: cannot encode ${text}`, undefined, e);
  }
  return new Uint8Array(buf.subarray(2));
}

/** Octets (exactly 4 or 16) → address text via dns-packet. */
function bytesToAddress(bytes: Uint8Array, offset: number): string {
  const family = bytes.length === 4 ? 4 : 16;
  const buf = Buffer.alloc(2 + family);
  buf.set(bytes, 2);
  try {
    return (family === 4 ? addressCodecs.a : addressCodecs.aaaa).decode(buf, 0);
  } catch (e) {
    return fail('ERR_WIRE_BAD_RDATA', 'cannot decode address', offset, e);
  }
}

// ---------------------------------------------------------------------------------------------
// Type bitmaps (RFC 4034 §4.1.2, RFC 5155 §3.2.1)

/**
 * Writes the type bitmap of NSEC/NSEC3, sorting the types; duplicates are rejected.
 * Example: `['A', 'RRSIG', 'NSEC']` → window 0, 6 octets `40 00 00 00 00 03`.
 */
function putBitmap(out: Output, types: readonly RRType[]): void {
  if (!Array.isArray(types)) fail('ERR_WIRE_BAD_VALUE', 'types must be an array');
  const codes = types.map((t) => typeToCode(t)).sort((a, b) => a - b);
  for (let i = 1; i < codes.length; i++) {
    if (codes[i] === codes[i - 1])
      fail('ERR_WIRE_BAD_BITMAP', `type ${codeToType(codes[i] as number)} listed twice`);
  }
  let i = 0;
  while (i < codes.length) {
    const window = (codes[i] as number) >> 8;
    const block = new Uint8Array(32);
    let used = 0;
    for (; i < codes.length && (codes[i] as number) >> 8 === window; i++) {
      const low = (codes[i] as number) & 0xff;
      block[low >> 3] = (block[low >> 3] as number) | (0x80 >> (low & 7));
      used = (low >> 3) + 1;
    }
    putU8(out, window);
    putU8(out, used);
    putBytes(out, block.subarray(0, used));
  }
}

/** Reads a type bitmap filling the rest of the RDATA, rejecting every non-canonical form. */
function getBitmap(c: Cursor): RRType[] {
  const types: RRType[] = [];
  let previous = -1;
  while (c.pos < c.end) {
    const at = c.pos;
    if (c.end - c.pos < 2) fail('ERR_WIRE_BAD_BITMAP', 'truncated window header', at);
    const window = c.bytes[c.pos] as number;
    const length = c.bytes[c.pos + 1] as number;
    c.pos += 2;
    if (window <= previous)
      fail('ERR_WIRE_BAD_BITMAP', `window ${window} out of order or repeated`, at);
    if (length < 1 || length > 32)
      fail('ERR_WIRE_BAD_BITMAP', `window length ${length} not in 1..32`, at);
    if (c.end - c.pos < length) fail('ERR_WIRE_BAD_BITMAP', 'window runs past the RDATA', at);
    if (c.bytes[c.pos + length - 1] === 0)
      fail('ERR_WIRE_BAD_BITMAP', 'window ends in a zero octet', at);
    for (let i = 0; i < length; i++) {
      const octet = c.bytes[c.pos + i] as number;
      for (let bit = 0; bit < 8; bit++) {
        if (octet & (0x80 >> bit)) types.push(codeToType((window << 8) | (i << 3) | bit));
      }
    }
    c.pos += length;
    previous = window;
  }
  return types;
}

// ---------------------------------------------------------------------------------------------
// SVCB parameters (RFC 9460 §2.2, §7, §8; RFC 9461 §5)

/** SvcParamKey mnemonics by key number (RFC 9460 §14.3.2, RFC 9461 §5, RFC 9540 §4). */
export const SVC_KEY_NAMES = Object.freeze([
  'mandatory',
  'alpn',
  'no-default-alpn',
  'port',
  'ipv4hint',
  'ech',
  'ipv6hint',
  'dohpath',
  'ohttp',
] as const);
const SVC_KEY_MANDATORY = 0;
const SVC_KEY_ALPN = 1;
const SVC_KEY_NO_DEFAULT_ALPN = 2;
const SVC_KEY_PORT = 3;
const SVC_KEY_IPV4HINT = 4;
const SVC_KEY_ECH = 5;
const SVC_KEY_IPV6HINT = 6;
const SVC_KEY_DOHPATH = 7;
const SVC_KEY_OHTTP = 8;
/** RFC 9460 §14.3.2: key 65535 is reserved as the "invalid key". */
const SVC_KEY_INVALID = 65535;

function svcKeyName(key: number): string {
  return SVC_KEY_NAMES[key] ?? `key${key}`;
}

function svcKeyCode(name: string): number {
  const index = (SVC_KEY_NAMES as readonly string[]).indexOf(name);
  if (index >= 0) return index;
  const n = typeof name === 'string' ? genericCode(name, 'key', 0xfffe) : undefined;
  if (n === undefined || n < SVC_KEY_NAMES.length) {
    fail('ERR_WIRE_BAD_SVCB', `bad SvcParamKey ${JSON.stringify(name)}`);
  }
  return n;
}

const utf8 = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF as a character, so that it round-trips.
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Latin-1 text ↔ octets: lossless for any octet string (ALPN ids are octet strings). */
function latin1ToBytes(text: string, what: string): Uint8Array {
  if (typeof text !== 'string') fail('ERR_WIRE_BAD_SVCB', `${what} must be a string`);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) fail('ERR_WIRE_BAD_SVCB', `${what} has a character above U+00FF`);
    bytes[i] = c;
  }
  return bytes;
}

function bytesToLatin1(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

/** The SvcParams of the model as (key, value) pairs in wire order, checked. */
function svcParamsToWire(
  params: SvcParams,
  priority: number,
): Array<{ key: number; value: Uint8Array }> {
  if (typeof params !== 'object' || params === null)
    fail('ERR_WIRE_BAD_SVCB', 'params must be an object');
  const entries: Array<{ key: number; value: Uint8Array }> = [];
  const add = (key: number, value: Uint8Array): void => {
    entries.push({ key, value });
  };
  if (params.alpn !== undefined) {
    if (!Array.isArray(params.alpn) || params.alpn.length === 0)
      fail('ERR_WIRE_BAD_SVCB', 'alpn must list at least one id');
    const out = newOutput(MAX_RDATA_OCTETS, false);
    for (const id of params.alpn) {
      const bytes = latin1ToBytes(id, 'alpn id');
      if (bytes.length < 1 || bytes.length > 255)
        fail('ERR_WIRE_BAD_SVCB', 'alpn id must be 1..255 octets');
      putU8(out, bytes.length);
      putBytes(out, bytes);
    }
    add(SVC_KEY_ALPN, finish(out));
  }
  if (params.noDefaultAlpn !== undefined) {
    if (params.noDefaultAlpn !== true)
      fail('ERR_WIRE_BAD_SVCB', 'noDefaultAlpn is either true or absent');
    add(SVC_KEY_NO_DEFAULT_ALPN, new Uint8Array(0));
  }
  if (params.port !== undefined) {
    const port = uint(params.port, 16, 'port');
    add(SVC_KEY_PORT, Uint8Array.of(port >>> 8, port & 0xff));
  }
  if (params.ipv4hint !== undefined) {
    if (!Array.isArray(params.ipv4hint) || params.ipv4hint.length === 0)
      fail('ERR_WIRE_BAD_SVCB', 'ipv4hint must list an address');
    add(SVC_KEY_IPV4HINT, concat(params.ipv4hint.map((a) => addressToBytes(a, 4, 'ipv4hint'))));
  }
  if (params.ech !== undefined) {
    if (octets(params.ech, 'ech').length === 0) fail('ERR_WIRE_BAD_SVCB', 'ech must not be empty');
    add(SVC_KEY_ECH, params.ech.slice());
  }
  if (params.ipv6hint !== undefined) {
    if (!Array.isArray(params.ipv6hint) || params.ipv6hint.length === 0)
      fail('ERR_WIRE_BAD_SVCB', 'ipv6hint must list an address');
    add(SVC_KEY_IPV6HINT, concat(params.ipv6hint.map((a) => addressToBytes(a, 6, 'ipv6hint'))));
  }
  if (params.dohpath !== undefined) {
    const text = params.dohpath;
    if (typeof text !== 'string') fail('ERR_WIRE_BAD_SVCB', 'dohpath must be a string');
    const bytes = utf8.encode(text);
    // A lone surrogate would be replaced by U+FFFD and not come back as written.
    if (utf8Strict.decode(bytes) !== text)
      fail('ERR_WIRE_BAD_SVCB', 'dohpath is not well-formed Unicode');
    add(SVC_KEY_DOHPATH, bytes);
  }
  if (params.ohttp !== undefined) {
    if (params.ohttp !== true) fail('ERR_WIRE_BAD_SVCB', 'ohttp is either true or absent');
    // RFC 9540 §4: the value is empty; the key configs come from the gateway itself.
    add(SVC_KEY_OHTTP, new Uint8Array(0));
  }
  for (const { key, value } of params.unknown ?? []) {
    if (
      typeof key !== 'number' ||
      !Number.isInteger(key) ||
      key < SVC_KEY_NAMES.length ||
      key >= SVC_KEY_INVALID
    ) {
      fail(
        'ERR_WIRE_BAD_SVCB',
        `unknown SvcParamKey ${String(key)} must be in ${SVC_KEY_NAMES.length}..65534`,
      );
    }
    add(key, octets(value, `key${key}`).slice());
  }
  if (params.mandatory !== undefined) {
    if (!Array.isArray(params.mandatory) || params.mandatory.length === 0)
      fail('ERR_WIRE_BAD_SVCB', 'mandatory must list a key');
    const keys = params.mandatory.map(svcKeyCode).sort((a, b) => a - b);
    const value = new Uint8Array(keys.length * 2);
    keys.forEach((k, i) => {
      if (i > 0 && keys[i - 1] === k)
        fail('ERR_WIRE_BAD_SVCB', `mandatory lists ${svcKeyName(k)} twice`);
      value[2 * i] = k >>> 8;
      value[2 * i + 1] = k & 0xff;
    });
    add(SVC_KEY_MANDATORY, value);
  }
  entries.sort((a, b) => a.key - b.key);
  checkSvcParams(entries, priority, undefined);
  return entries;
}

/** Rules that hold across parameters (RFC 9460 §2.2, §2.4.2, §8), shared by encode and decode. */
function checkSvcParams(
  entries: ReadonlyArray<{ key: number; value: Uint8Array }>,
  priority: number,
  offset: number | undefined,
): void {
  for (let i = 1; i < entries.length; i++) {
    if ((entries[i] as { key: number }).key <= (entries[i - 1] as { key: number }).key) {
      fail(
        'ERR_WIRE_BAD_SVCB',
        `SvcParamKey ${svcKeyName((entries[i] as { key: number }).key)} out of order or repeated`,
        offset,
      );
    }
  }
  if (priority === 0 && entries.length > 0)
    fail('ERR_WIRE_BAD_SVCB', 'AliasMode (priority 0) with SvcParams', offset);
  const mandatory = entries.find((e) => e.key === SVC_KEY_MANDATORY);
  if (mandatory === undefined) return;
  const present = new Set(entries.map((e) => e.key));
  const v = mandatory.value;
  for (let i = 0; i + 1 < v.length; i += 2) {
    const key = ((v[i] as number) << 8) | (v[i + 1] as number);
    if (key === SVC_KEY_MANDATORY) fail('ERR_WIRE_BAD_SVCB', 'mandatory lists itself', offset);
    if (!present.has(key))
      fail('ERR_WIRE_BAD_SVCB', `mandatory lists ${svcKeyName(key)}, which is absent`, offset);
  }
}

/** Reads SvcParams filling the rest of the RDATA. */
function getSvcParams(c: Cursor, priority: number): SvcParams {
  const start = c.pos;
  const entries: Array<{ key: number; value: Uint8Array }> = [];
  while (c.pos < c.end) {
    const at = c.pos;
    if (c.end - c.pos < 4) fail('ERR_WIRE_BAD_SVCB', 'truncated SvcParam', at);
    const key = ((c.bytes[at] as number) << 8) | (c.bytes[at + 1] as number);
    const length = ((c.bytes[at + 2] as number) << 8) | (c.bytes[at + 3] as number);
    c.pos += 4;
    if (c.end - c.pos < length)
      fail('ERR_WIRE_BAD_SVCB', `value of ${svcKeyName(key)} runs past the RDATA`, at);
    const last = entries[entries.length - 1];
    if (last !== undefined && key <= last.key)
      fail('ERR_WIRE_BAD_SVCB', `SvcParamKey ${svcKeyName(key)} out of order or repeated`, at);
    entries.push({ key, value: c.bytes.slice(c.pos, c.pos + length) });
    c.pos += length;
  }
  checkSvcParams(entries, priority, start);
  const params: SvcParams = {};
  const unknown: Array<{ key: number; value: Uint8Array }> = [];
  for (const { key, value } of entries) {
    const bad = (why: string): never =>
      fail('ERR_WIRE_BAD_SVCB', `${svcKeyName(key)}: ${why}`, start);
    switch (key) {
      case SVC_KEY_MANDATORY: {
        if (value.length === 0 || value.length % 2 !== 0)
          bad('length must be a non-zero multiple of 2');
        const keys: number[] = [];
        for (let i = 0; i < value.length; i += 2)
          keys.push(((value[i] as number) << 8) | (value[i + 1] as number));
        if (keys.some((k, i) => i > 0 && k <= (keys[i - 1] as number)))
          bad('keys must be strictly increasing');
        params.mandatory = keys.map(svcKeyName);
        break;
      }
      case SVC_KEY_ALPN: {
        if (value.length === 0) bad('must list at least one id');
        const ids: string[] = [];
        for (let i = 0; i < value.length;) {
          const n = value[i] as number;
          if (n === 0) bad('empty alpn id');
          if (i + 1 + n > value.length) bad('alpn id runs past the value');
          ids.push(bytesToLatin1(value.subarray(i + 1, i + 1 + n)));
          i += 1 + n;
        }
        params.alpn = ids;
        break;
      }
      case SVC_KEY_NO_DEFAULT_ALPN:
        if (value.length !== 0) bad('value must be empty');
        params.noDefaultAlpn = true;
        break;
      case SVC_KEY_PORT:
        if (value.length !== 2) bad('value must be exactly 2 octets');
        params.port = ((value[0] as number) << 8) | (value[1] as number);
        break;
      case SVC_KEY_IPV4HINT:
        if (value.length === 0 || value.length % 4 !== 0)
          bad('length must be a non-zero multiple of 4');
        params.ipv4hint = chunks(value, 4).map((a) => bytesToAddress(a, start));
        break;
      case SVC_KEY_ECH:
        if (value.length === 0) bad('value must not be empty');
        params.ech = value;
        break;
      case SVC_KEY_IPV6HINT:
        if (value.length === 0 || value.length % 16 !== 0)
          bad('length must be a non-zero multiple of 16');
        params.ipv6hint = chunks(value, 16).map((a) => bytesToAddress(a, start));
        break;
      case SVC_KEY_DOHPATH:
        try {
          params.dohpath = utf8Strict.decode(value);
        } catch (e) {
          fail('ERR_WIRE_BAD_SVCB', 'dohpath is not UTF-8 (RFC 9461 §5)', start, e);
        }
        break;
      case SVC_KEY_OHTTP:
        if (value.length !== 0) bad('value must be empty (RFC 9540 §4)');
        params.ohttp = true;
        break;
      case SVC_KEY_INVALID:
        bad('key 65535 is reserved as invalid (RFC 9460 §14.3.2)');
        break;
      default:
        unknown.push({ key, value });
    }
  }
  if (unknown.length > 0) params.unknown = unknown;
  return params;
}

function chunks(bytes: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// RDATA

/** Types whose RDATA names may be compressed (RFC 3597 §4: only the RFC 1035 types). */
function compressibleRdata(type: RRType): boolean {
  return type === 'NS' || type === 'CNAME' || type === 'SOA';
}

const AUTHKEY_ROLE_CODES = Object.freeze({ prover: 1, csip: 2 } as const);
const ED25519_PUBLIC_KEY_OCTETS = 32;

/**
 * Writes the RDATA of `rr`. `compress` applies only to NS, CNAME and SOA; `canonical` lowercases
 * the names RFC 4034 §6.2 lists, as updated by RFC 6840 §5.1 (of the model's types: NS, CNAME,
 * SOA and the RRSIG signer; not the NSEC next name, the SVCB target or MAPREF).
 */
function putRdata(out: Output, rr: ResourceRecord, compress: boolean, canonical: boolean): void {
  const squash = compress && compressibleRdata(rr.type);
  const name = (n: string, lower: boolean): void =>
    putName(out, labelsOf(n, canonical && lower), squash);
  switch (rr.type) {
    case 'A':
      putBytes(out, addressToBytes(rr.data, 4, 'A'));
      return;
    case 'AAAA':
      putBytes(out, addressToBytes(rr.data, 6, 'AAAA'));
      return;
    case 'NS':
    case 'CNAME':
      name(rr.data, true);
      return;
    case 'TXT':
      putTxt(out, rr.data);
      return;
    case 'SOA':
      putSoa(out, rr.data, name);
      return;
    case 'DS':
    case 'CDS':
      putDs(out, rr.data);
      return;
    case 'DNSKEY':
    case 'CDNSKEY':
      putDnskey(out, rr.data);
      return;
    case 'RRSIG':
      putRrsig(out, rr.data, name);
      return;
    case 'NSEC':
      name(rr.data.nextName, false);
      putBitmap(out, rr.data.types);
      return;
    case 'NSEC3':
      putNsec3(out, rr.data);
      return;
    case 'NSEC3PARAM':
      putNsec3Param(out, rr.data);
      return;
    case 'SVCB':
      putSvcb(out, rr.data, name);
      return;
    case 'ZONEMD':
      putZonemd(out, rr.data);
      return;
    case 'MAP': {
      const data = octets(rr.data, 'MAP');
      if (data.length === 0) fail('ERR_WIRE_BAD_RDATA', 'MAP RDATA must not be empty');
      if (data.length > MAX_MAP_RDATA_OCTETS)
        fail('ERR_WIRE_TOO_LARGE', `MAP RDATA over ${MAX_MAP_RDATA_OCTETS} octets`);
      putBytes(out, data);
      return;
    }
    case 'MAPREF':
      name(rr.data, false);
      return;
    case 'AUTHKEY':
      putAuthkey(out, rr.data);
      return;
    case 'KEYCONF':
      putBytes(out, encodeKeyconf(rr.data));
      return;
    default:
      putBytes(out, octets(rr.data, rr.type));
  }
}

function putTxt(out: Output, strings: Uint8Array[]): void {
  if (!Array.isArray(strings) || strings.length === 0)
    fail('ERR_WIRE_BAD_RDATA', 'TXT needs at least one string (RFC 1035 §3.3.14)');
  for (const s of strings) {
    if (octets(s, 'TXT string').length > 255)
      fail('ERR_WIRE_BAD_RDATA', 'TXT string over 255 octets');
    putU8(out, s.length);
    putBytes(out, s);
  }
}

function putSoa(out: Output, d: SoaData, name: (n: string, lower: boolean) => void): void {
  name(d.mname, true);
  name(d.rname, true);
  putU32(out, uint(d.serial, 32, 'SOA serial'));
  putU32(out, uint(d.refresh, 32, 'SOA refresh'));
  putU32(out, uint(d.retry, 32, 'SOA retry'));
  putU32(out, uint(d.expire, 32, 'SOA expire'));
  putU32(out, uint(d.minimum, 32, 'SOA minimum'));
}

function putDs(out: Output, d: DsData): void {
  putU16(out, uint(d.keyTag, 16, 'DS key tag'));
  putU8(out, uint(d.algorithm, 8, 'DS algorithm'));
  putU8(out, uint(d.digestType, 8, 'DS digest type'));
  if (octets(d.digest, 'DS digest').length === 0)
    fail('ERR_WIRE_BAD_RDATA', 'DS digest must not be empty');
  putBytes(out, d.digest);
}

function putDnskey(out: Output, d: DnskeyData): void {
  putU16(out, uint(d.flags, 16, 'DNSKEY flags'));
  putU8(out, uint(d.protocol, 8, 'DNSKEY protocol'));
  putU8(out, uint(d.algorithm, 8, 'DNSKEY algorithm'));
  if (octets(d.publicKey, 'DNSKEY public key').length === 0)
    fail('ERR_WIRE_BAD_RDATA', 'DNSKEY public key must not be empty');
  putBytes(out, d.publicKey);
}

function putRrsig(out: Output, d: RrsigData, name: (n: string, lower: boolean) => void): void {
  putU16(out, typeToCode(d.typeCovered));
  putU8(out, uint(d.algorithm, 8, 'RRSIG algorithm'));
  putU8(out, uint(d.labels, 8, 'RRSIG labels'));
  putU32(out, uint(d.originalTtl, 32, 'RRSIG original TTL'));
  putU32(out, serialTime(d.expiration, 'RRSIG expiration'));
  putU32(out, serialTime(d.inception, 'RRSIG inception'));
  putU16(out, uint(d.keyTag, 16, 'RRSIG key tag'));
  name(d.signerName, true);
  // An empty signature is allowed: RFC 4034 §3.1.8.1 signs RRSIG_RDATA without it.
  putBytes(out, octets(d.signature, 'RRSIG signature'));
}

function putSalt(out: Output, salt: Uint8Array): void {
  if (octets(salt, 'NSEC3 salt').length > 255) fail('ERR_WIRE_BAD_RDATA', 'salt over 255 octets');
  putU8(out, salt.length);
  putBytes(out, salt);
}

function putNsec3(out: Output, d: Nsec3Data): void {
  putU8(out, uint(d.hashAlgorithm, 8, 'NSEC3 hash algorithm'));
  putU8(out, uint(d.flags, 8, 'NSEC3 flags'));
  putU16(out, uint(d.iterations, 16, 'NSEC3 iterations'));
  putSalt(out, d.salt);
  const hash = octets(d.nextHashedOwner, 'NSEC3 next hashed owner');
  if (hash.length < 1 || hash.length > 255)
    fail('ERR_WIRE_BAD_RDATA', 'NSEC3 hash must be 1..255 octets');
  putU8(out, hash.length);
  putBytes(out, hash);
  putBitmap(out, d.types);
}

function putNsec3Param(out: Output, d: Nsec3ParamData): void {
  putU8(out, uint(d.hashAlgorithm, 8, 'NSEC3PARAM hash algorithm'));
  putU8(out, uint(d.flags, 8, 'NSEC3PARAM flags'));
  putU16(out, uint(d.iterations, 16, 'NSEC3PARAM iterations'));
  putSalt(out, d.salt);
}

function putSvcb(out: Output, d: SvcbData, name: (n: string, lower: boolean) => void): void {
  const priority = uint(d.priority, 16, 'SVCB priority');
  const entries = svcParamsToWire(d.params, priority);
  putU16(out, priority);
  name(d.target, false);
  for (const { key, value } of entries) {
    putU16(out, key);
    if (value.length > 0xffff)
      fail('ERR_WIRE_TOO_LARGE', `value of ${svcKeyName(key)} over 65535 octets`);
    putU16(out, value.length);
    putBytes(out, value);
  }
}

/**
 * RFC 8976 §2.2.4: a digest is at least 12 octets; for the hash algorithms RFC 8976 §5.3
 * defines it is exactly their output (SHA-384: 48, SHA-512: 64), so a truncated one is refused
 * where it enters rather than left for a verifier to trip over.
 */
const ZONEMD_MIN_DIGEST_OCTETS = 12;
const ZONEMD_DIGEST_OCTETS: ReadonlyMap<number, number> = new Map([
  [1, 48],
  [2, 64],
]);

function zonemdDigestProblem(hashAlgorithm: number, length: number): string | undefined {
  if (length < ZONEMD_MIN_DIGEST_OCTETS) {
    return `ZONEMD digest of ${length} octets, under ${ZONEMD_MIN_DIGEST_OCTETS} (RFC 8976 §2.2.4)`;
  }
  const expected = ZONEMD_DIGEST_OCTETS.get(hashAlgorithm);
  if (expected !== undefined && length !== expected) {
    return `ZONEMD digest of hash algorithm ${hashAlgorithm} must be ${expected} octets, not ${length}`;
  }
  return undefined;
}

function putZonemd(out: Output, d: ZonemdData): void {
  putU32(out, uint(d.serial, 32, 'ZONEMD serial'));
  putU8(out, uint(d.scheme, 8, 'ZONEMD scheme'));
  putU8(out, uint(d.hashAlgorithm, 8, 'ZONEMD hash algorithm'));
  const digest = octets(d.digest, 'ZONEMD digest');
  const problem = zonemdDigestProblem(d.hashAlgorithm, digest.length);
  if (problem !== undefined) fail('ERR_WIRE_BAD_RDATA', problem);
  putBytes(out, digest);
}

function putAuthkey(out: Output, d: AuthkeyData): void {
  if (!Object.hasOwn(AUTHKEY_ROLE_CODES, d.role))
    fail('ERR_WIRE_BAD_RDATA', `AUTHKEY role ${JSON.stringify(d.role)}`);
  if (d.algorithm !== DNSSEC_ALGORITHM_ED25519)
    fail('ERR_WIRE_BAD_RDATA', `AUTHKEY algorithm ${String(d.algorithm)} is not 15`);
  if (octets(d.publicKey, 'AUTHKEY public key').length !== ED25519_PUBLIC_KEY_OCTETS) {
    fail('ERR_WIRE_BAD_RDATA', 'AUTHKEY Ed25519 key must be 32 octets');
  }
  putU8(out, AUTHKEY_ROLE_CODES[d.role]);
  putU8(out, d.algorithm);
  putU32(out, uint(d.notAfter, 32, 'AUTHKEY notAfter'));
  putBytes(out, d.publicKey);
}

/** The version of the KEYCONF RDATA map this codec reads and writes. */
const KEYCONF_VERSION = 1;
/** The keys of the KEYCONF RDATA map, all required. */
const KEYCONF_KEYS: ReadonlySet<string> = new Set(['v', 'kind', 'cfg', 'nbf', 'exp']);

/**
 * The checks a KEYCONF passes both ways: a known kind, a config of 1 to
 * {@link MAX_KEYCONF_CONFIG_OCTETS} octets, times that are non-negative integers with
 * `notBefore` < `notAfter` (a key valid for no second is a mistake, not a key).
 */
function checkKeyconf(d: KeyconfData, offset: number | undefined): void {
  if (typeof d !== 'object' || d === null)
    fail('ERR_WIRE_BAD_RDATA', 'KEYCONF data must be an object', offset);
  if (!(KEYCONF_KINDS as readonly unknown[]).includes(d.kind)) {
    fail(
      'ERR_WIRE_BAD_RDATA',
      `KEYCONF kind ${JSON.stringify(d.kind)} is none of ${KEYCONF_KINDS.join(', ')}`,
      offset,
    );
  }
  if (!(d.config instanceof Uint8Array) || d.config.length === 0)
    fail('ERR_WIRE_BAD_RDATA', 'KEYCONF config must be a non-empty byte string', offset);
  if (d.config.length > MAX_KEYCONF_CONFIG_OCTETS) {
    fail(
      'ERR_WIRE_TOO_LARGE',
      `KEYCONF config of ${d.config.length} octets, over ${MAX_KEYCONF_CONFIG_OCTETS}`,
      offset,
    );
  }
  for (const [field, value] of [
    ['notBefore', d.notBefore],
    ['notAfter', d.notAfter],
  ] as const) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
      fail('ERR_WIRE_BAD_RDATA', `KEYCONF ${field} must be an unsigned integer`, offset);
  }
  if (d.notBefore >= d.notAfter) {
    fail(
      'ERR_WIRE_BAD_RDATA',
      `KEYCONF notBefore ${d.notBefore} is not before notAfter ${d.notAfter}`,
      offset,
    );
  }
}

/** KEYCONF RDATA: the deterministic CBOR map `{ v: 1, kind, cfg, nbf, exp }` (records.ts). */
function encodeKeyconf(d: KeyconfData): Uint8Array {
  checkKeyconf(d, undefined);
  return encodeCbor({
    v: KEYCONF_VERSION,
    kind: d.kind,
    cfg: d.config.slice(),
    nbf: d.notBefore,
    exp: d.notAfter,
  });
}

/**
 * Reads KEYCONF RDATA strictly: exactly the deterministic encoding of a map of the five keys,
 * version 1, and the checks of {@link checkKeyconf}; anything else is `ERR_WIRE_BAD_RDATA` (or
 * `ERR_WIRE_TOO_LARGE` for the config's size), never a partial value.
 */
function decodeKeyconf(rdata: Uint8Array, offset: number): KeyconfData {
  let value: CborValue;
  try {
    value = decodeCbor(rdata);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    return fail('ERR_WIRE_BAD_RDATA', `KEYCONF RDATA: ${why}`, offset, cause);
  }
  if (
    typeof value !== 'object' ||
    value === null ||
    Array.isArray(value) ||
    value instanceof Uint8Array
  )
    return fail('ERR_WIRE_BAD_RDATA', 'KEYCONF RDATA is not a CBOR map', offset);
  const map = value as Readonly<Record<string, CborValue>>;
  for (const key of Object.keys(map)) {
    if (!KEYCONF_KEYS.has(key))
      fail('ERR_WIRE_BAD_RDATA', `KEYCONF RDATA has an unknown key ${JSON.stringify(key)}`, offset);
  }
  for (const key of KEYCONF_KEYS) {
    if (!Object.hasOwn(map, key))
      fail('ERR_WIRE_BAD_RDATA', `KEYCONF RDATA lacks the key ${JSON.stringify(key)}`, offset);
  }
  if (map.v !== KEYCONF_VERSION)
    fail(
      'ERR_WIRE_BAD_RDATA',
      `KEYCONF version ${JSON.stringify(map.v)} is not ${KEYCONF_VERSION}`,
      offset,
    );
  if (!(map.cfg instanceof Uint8Array))
    fail('ERR_WIRE_BAD_RDATA', 'KEYCONF cfg is not a byte string', offset);
  const data = {
    kind: map.kind,
    config: map.cfg,
    notBefore: map.nbf,
    notAfter: map.exp,
  } as KeyconfData;
  checkKeyconf(data, offset);
  return data;
}

/**
 * Reads RDATA of `type` filling exactly `c.pos`..`c.end`; names inside NS/CNAME/SOA follow
 * `rule`, every other name must be uncompressed.
 */
function getRdata(type: RRType, c: Cursor, rule: PointerRule): ResourceRecord['data'] {
  const start = c.pos;
  const inner = compressibleRdata(type) ? rule : NO_POINTERS;
  const data = getRdataFields(type, c, inner);
  if (c.pos !== c.end)
    fail('ERR_WIRE_RDLENGTH', `${c.end - c.pos} octets left over in ${type} RDATA`, start);
  return data;
}

function exactLength(c: Cursor, n: number, type: string): void {
  if (c.end - c.pos !== n)
    fail('ERR_WIRE_RDLENGTH', `${type} RDATA must be ${n} octets, not ${c.end - c.pos}`, c.pos);
}

function getRdataFields(type: RRType, c: Cursor, rule: PointerRule): ResourceRecord['data'] {
  const start = c.pos;
  switch (type) {
    case 'A':
      exactLength(c, 4, type);
      return bytesToAddress(getRest(c), start);
    case 'AAAA':
      exactLength(c, 16, type);
      return bytesToAddress(getRest(c), start);
    case 'NS':
    case 'CNAME':
    case 'MAPREF':
      return getName(c, rule);
    case 'TXT': {
      if (c.pos === c.end)
        fail('ERR_WIRE_BAD_RDATA', 'TXT needs at least one string (RFC 1035 §3.3.14)', start);
      const strings: Uint8Array[] = [];
      while (c.pos < c.end) strings.push(getBytes(c, getU8(c, 'TXT length'), 'TXT string'));
      return strings;
    }
    case 'SOA':
      return {
        mname: getName(c, rule),
        rname: getName(c, rule),
        serial: getU32(c, 'SOA serial'),
        refresh: getU32(c, 'SOA refresh'),
        retry: getU32(c, 'SOA retry'),
        expire: getU32(c, 'SOA expire'),
        minimum: getU32(c, 'SOA minimum'),
      } satisfies SoaData;
    case 'DS':
    case 'CDS': {
      const d: DsData = {
        keyTag: getU16(c, 'DS key tag'),
        algorithm: getU8(c, 'DS algorithm'),
        digestType: getU8(c, 'DS digest type'),
        digest: getRest(c),
      };
      if (d.digest.length === 0) fail('ERR_WIRE_BAD_RDATA', 'DS digest is empty', start);
      return d;
    }
    case 'DNSKEY':
    case 'CDNSKEY': {
      const d: DnskeyData = {
        flags: getU16(c, 'DNSKEY flags'),
        protocol: getU8(c, 'DNSKEY protocol'),
        algorithm: getU8(c, 'DNSKEY algorithm'),
        publicKey: getRest(c),
      };
      if (d.publicKey.length === 0) fail('ERR_WIRE_BAD_RDATA', 'DNSKEY public key is empty', start);
      return d;
    }
    case 'RRSIG':
      return {
        typeCovered: codeToType(getU16(c, 'RRSIG type covered')),
        algorithm: getU8(c, 'RRSIG algorithm'),
        labels: getU8(c, 'RRSIG labels'),
        originalTtl: getU32(c, 'RRSIG original TTL'),
        expiration: getU32(c, 'RRSIG expiration'),
        inception: getU32(c, 'RRSIG inception'),
        keyTag: getU16(c, 'RRSIG key tag'),
        signerName: getName(c, rule),
        signature: getRest(c),
      } satisfies RrsigData;
    case 'NSEC':
      return { nextName: getName(c, rule), types: getBitmap(c) } satisfies NsecData;
    case 'NSEC3': {
      const hashAlgorithm = getU8(c, 'NSEC3 hash algorithm');
      const flags = getU8(c, 'NSEC3 flags');
      const iterations = getU16(c, 'NSEC3 iterations');
      const salt = getBytes(c, getU8(c, 'NSEC3 salt length'), 'NSEC3 salt');
      const hashLength = getU8(c, 'NSEC3 hash length');
      if (hashLength === 0) fail('ERR_WIRE_BAD_RDATA', 'NSEC3 hash length is 0', c.pos - 1);
      const nextHashedOwner = getBytes(c, hashLength, 'NSEC3 next hashed owner');
      return {
        hashAlgorithm,
        flags,
        iterations,
        salt,
        nextHashedOwner,
        types: getBitmap(c),
      } satisfies Nsec3Data;
    }
    case 'NSEC3PARAM': {
      const hashAlgorithm = getU8(c, 'NSEC3PARAM hash algorithm');
      const flags = getU8(c, 'NSEC3PARAM flags');
      const iterations = getU16(c, 'NSEC3PARAM iterations');
      const salt = getBytes(c, getU8(c, 'NSEC3PARAM salt length'), 'NSEC3PARAM salt');
      return { hashAlgorithm, flags, iterations, salt } satisfies Nsec3ParamData;
    }
    case 'SVCB': {
      const priority = getU16(c, 'SVCB priority');
      const target = getName(c, rule);
      return { priority, target, params: getSvcParams(c, priority) } satisfies SvcbData;
    }
    case 'ZONEMD': {
      const d: ZonemdData = {
        serial: getU32(c, 'ZONEMD serial'),
        scheme: getU8(c, 'ZONEMD scheme'),
        hashAlgorithm: getU8(c, 'ZONEMD hash algorithm'),
        digest: getRest(c),
      };
      const problem = zonemdDigestProblem(d.hashAlgorithm, d.digest.length);
      if (problem !== undefined) fail('ERR_WIRE_BAD_RDATA', problem, start);
      return d;
    }
    case 'MAP': {
      const n = c.end - c.pos;
      if (n === 0) fail('ERR_WIRE_BAD_RDATA', 'MAP RDATA is empty', start);
      if (n > MAX_MAP_RDATA_OCTETS)
        fail('ERR_WIRE_TOO_LARGE', `MAP RDATA over ${MAX_MAP_RDATA_OCTETS} octets`, start);
      return getRest(c);
    }
    case 'AUTHKEY': {
      const roleCode = getU8(c, 'AUTHKEY role');
      const role =
        roleCode === 1
          ? 'prover'
          : roleCode === 2
            ? 'csip'
            : fail('ERR_WIRE_BAD_RDATA', `AUTHKEY role ${roleCode}`, start);
      const algorithm = getU8(c, 'AUTHKEY algorithm');
      if (algorithm !== DNSSEC_ALGORITHM_ED25519)
        fail('ERR_WIRE_BAD_RDATA', `AUTHKEY algorithm ${algorithm} is not 15`, start + 1);
      const notAfter = getU32(c, 'AUTHKEY notAfter');
      const publicKey = getRest(c);
      if (publicKey.length !== ED25519_PUBLIC_KEY_OCTETS)
        fail('ERR_WIRE_BAD_RDATA', 'AUTHKEY Ed25519 key must be 32 octets', start + 6);
      return { role, algorithm, notAfter, publicKey } satisfies AuthkeyData;
    }
    case 'KEYCONF':
      return decodeKeyconf(getRest(c), start);
    case 'OPT':
      return fail('ERR_WIRE_BAD_TYPE', 'OPT is carried in Message.edns, not as a record', start);
    default:
      return getRest(c);
  }
}

/**
 * The RDATA of a record in uncompressed wire form. With `canonical`, the form RFC 4034 §6.2
 * prescribes for signing, as updated by RFC 6840 §5.1: ASCII lowercased in the NS and CNAME
 * target, both SOA names and the RRSIG signer; never in the NSEC next name, the SVCB target or
 * MAPREF. Throws `WireError` for a model value that cannot be encoded.
 */
export function encodeRdata(rr: ResourceRecord, options?: { canonical?: boolean }): Uint8Array {
  return guardEncode(() => {
    recordTypeCode(rr.type);
    const out = newOutput(MAX_RDATA_OCTETS, false);
    putRdata(out, rr, false, options?.canonical === true);
    return finish(out);
  });
}

/**
 * Decodes uncompressed RDATA of `type`, strictly: the fields must fill `rdata` exactly and no
 * name may be compressed. Returns the `data` of the model's record. Throws only `WireError`.
 */
export function decodeRdata(type: RRType, rdata: Uint8Array): ResourceRecord['data'] {
  return guard(() => {
    const bytes = plain(rdata);
    const code = typeToCode(type);
    if (!isRecordTypeCode(code))
      fail('ERR_WIRE_BAD_TYPE', `${type} cannot be the type of a record`);
    if (bytes.length > MAX_RDATA_OCTETS)
      fail('ERR_WIRE_TOO_LARGE', `RDATA over ${MAX_RDATA_OCTETS} octets`);
    const c: Cursor = { bytes, pos: 0, end: bytes.length, short: 'ERR_WIRE_RDLENGTH' };
    return getRdata(codeToType(code), c, NO_POINTERS);
  });
}

// ---------------------------------------------------------------------------------------------
// Records and messages

/**
 * Where a record read from stored wire form keeps its RDATA octets (uncompressed, as
 * {@link encodeRdata} wrote them): see {@link keepStoredRdata}.
 */
const STORED_RDATA = Symbol('storedRdata');

/** A record that may carry its stored RDATA octets. */
type MaybeStored = ResourceRecord & { readonly [STORED_RDATA]?: Uint8Array };

/**
 * Attaches to `rr`, just decoded from `rdata` (its RDATA in uncompressed wire form, as
 * {@link encodeRdata} writes it), those octets, so that a message holding the record copies
 * them instead of encoding `data` again: a store's RRsets go into responses in the wire form
 * they are kept in. The encoder copies them wherever the encoding would be the same octets:
 * not in the canonical form (RFC 4034 §6.2 lowercases some names), and not for the types whose
 * RDATA names a message compresses (NS, CNAME, SOA). The property is not enumerable, so a copy
 * made with other fields (`{ ...rr, ttl }`) carries none and is encoded from `data`. The record
 * and its octets must not be changed afterwards (records from a store never are). Returns `rr`.
 */
export function keepStoredRdata<R extends ResourceRecord>(rr: R, rdata: Uint8Array): R {
  Object.defineProperty(rr, STORED_RDATA, { value: rdata, configurable: true });
  return rr;
}

function putRecord(out: Output, rr: ResourceRecord, canonical: boolean): void {
  if (typeof rr !== 'object' || rr === null)
    fail('ERR_WIRE_BAD_VALUE', 'a record must be an object');
  const code = recordTypeCode(rr.type);
  const compress = out.names !== undefined;
  putOwner(out, rr.name, canonical);
  putU16(out, code);
  putU16(out, classToCode(rr.class));
  putU32(out, uint(rr.ttl, 32, 'TTL'));
  const stored = (rr as MaybeStored)[STORED_RDATA];
  if (stored !== undefined && !canonical && !(compress && compressibleRdata(rr.type))) {
    putU16(out, stored.length);
    putBytes(out, stored);
    return;
  }
  putLengthPrefixed(out, `${rr.type} RDATA`, () => putRdata(out, rr, compress, canonical));
}

/**
 * One resource record in uncompressed wire form (owner, type, class, TTL, RDLENGTH, RDATA).
 * With `canonical`, the owner and the RDATA are in the RFC 4034 §6.2 form (see
 * {@link encodeRdata}); the TTL is written as given (a signer passes the original TTL).
 */
export function encodeRecord(rr: ResourceRecord, options?: { canonical?: boolean }): Uint8Array {
  return guardEncode(() => {
    const out = newOutput(MAX_NAME_OCTETS + 10 + MAX_RDATA_OCTETS, false);
    putRecord(out, rr, options?.canonical === true);
    return finish(out);
  });
}

const FLAG_QR = 0x8000;
const FLAG_Z = 0x0040;
const FLAG_AA = dnsPacket.AUTHORITATIVE_ANSWER;
const FLAG_TC = dnsPacket.TRUNCATED_RESPONSE;
const FLAG_RD = dnsPacket.RECURSION_DESIRED;
const FLAG_RA = dnsPacket.RECURSION_AVAILABLE;
const FLAG_AD = dnsPacket.AUTHENTIC_DATA;
const FLAG_CD = dnsPacket.CHECKING_DISABLED;
/** DO in the flags half of the OPT TTL (RFC 3225 §3). */
const EDNS_FLAG_DO = dnsPacket.DNSSEC_OK;
/** CO, Compact Answers OK, the next bit of the OPT flags (RFC 9824 §5). */
const EDNS_FLAG_CO = 0x4000;

function flagsToWord(f: MessageFlags, rcodeLow: number): number {
  if (typeof f !== 'object' || f === null) fail('ERR_WIRE_BAD_VALUE', 'flags must be an object');
  const opcode = uint(f.opcode, 8, 'opcode');
  if (opcode > 15) fail('ERR_WIRE_BAD_VALUE', `opcode ${opcode} over 15`);
  return (
    (f.qr ? FLAG_QR : 0) |
    (opcode << 11) |
    (f.aa ? FLAG_AA : 0) |
    (f.tc ? FLAG_TC : 0) |
    (f.rd ? FLAG_RD : 0) |
    (f.ra ? FLAG_RA : 0) |
    (f.z ? FLAG_Z : 0) |
    (f.ad ? FLAG_AD : 0) |
    (f.cd ? FLAG_CD : 0) |
    rcodeLow
  );
}

function wordToFlags(w: number): MessageFlags {
  return {
    qr: (w & FLAG_QR) !== 0,
    opcode: (w >>> 11) & 0xf,
    aa: (w & FLAG_AA) !== 0,
    tc: (w & FLAG_TC) !== 0,
    rd: (w & FLAG_RD) !== 0,
    ra: (w & FLAG_RA) !== 0,
    z: (w & FLAG_Z) !== 0,
    ad: (w & FLAG_AD) !== 0,
    cd: (w & FLAG_CD) !== 0,
  };
}

function putOpt(out: Output, edns: Edns): void {
  if (typeof edns !== 'object' || edns === null) fail('ERR_WIRE_BAD_OPT', 'edns must be an object');
  putU8(out, 0); // owner: the root (RFC 6891 §6.1.2)
  putU16(out, TYPE_OPT);
  putU16(out, uint(edns.udpPayloadSize, 16, 'EDNS UDP payload size'));
  putU8(out, uint(edns.extendedRcode, 8, 'EDNS extended RCODE'));
  putU8(out, uint(edns.version, 8, 'EDNS version'));
  putU16(out, (edns.dnssecOk ? EDNS_FLAG_DO : 0) | (edns.compactOk === true ? EDNS_FLAG_CO : 0));
  if (!Array.isArray(edns.options)) fail('ERR_WIRE_BAD_OPT', 'edns.options must be an array');
  putLengthPrefixed(out, 'OPT RDATA', () => {
    for (const option of edns.options) {
      putU16(out, uint(option.code, 16, 'EDNS option code'));
      const data = octets(option.data, 'EDNS option data');
      if (data.length > 0xffff) fail('ERR_WIRE_TOO_LARGE', 'EDNS option over 65535 octets');
      putU16(out, data.length);
      putBytes(out, data);
    }
  });
}

/**
 * Encodes a whole message (RFC 1035 §4.1) with name compression for question names, owner names
 * and the names inside NS, CNAME and SOA RDATA (RFC 1035 §4.1.4; RFC 3597 §4 forbids it
 * elsewhere). `edns` becomes one OPT record after the other additionals; `rcode` is split
 * between the header and the OPT extended RCODE (RFC 6891 §6.1.3), so with EDNS
 * `edns.extendedRcode` must equal `rcode >> 4`, and without it `rcode` must fit 4 bits.
 * Throws `WireError` for a value that cannot be encoded or a message over
 * {@link MAX_MESSAGE_OCTETS}.
 */
export function encodeMessage(message: Message): Uint8Array {
  return guardEncode(() => encodeMessageChecked(message));
}

function encodeMessageChecked(message: Message): Uint8Array {
  if (typeof message !== 'object' || message === null)
    fail('ERR_WIRE_BAD_VALUE', 'message must be an object');
  const { questions, answers, authorities, additionals, edns } = message;
  for (const [section, list] of Object.entries({ questions, answers, authorities, additionals })) {
    if (!Array.isArray(list)) fail('ERR_WIRE_BAD_VALUE', `${section} must be an array`);
  }
  const rcode = rcodeToCode(message.rcode);
  if (edns === undefined) {
    if (rcode > 0xf)
      fail('ERR_WIRE_BAD_VALUE', `rcode ${message.rcode} needs EDNS (RFC 6891 §6.1.3)`);
  } else if (edns.extendedRcode !== rcode >>> 4) {
    fail(
      'ERR_WIRE_BAD_OPT',
      `edns.extendedRcode ${String(edns.extendedRcode)} does not match rcode ${message.rcode}`,
    );
  }
  const counts = [
    questions.length,
    answers.length,
    authorities.length,
    additionals.length + (edns === undefined ? 0 : 1),
  ];
  const total = counts.reduce((a, b) => a + b, 0);
  if (counts.some((n) => n > 0xffff) || total > MAX_RECORDS_PER_MESSAGE) {
    fail(
      'ERR_WIRE_TOO_MANY_RECORDS',
      `${total} questions and records, over ${MAX_RECORDS_PER_MESSAGE}`,
    );
  }
  const out = newOutput(MAX_MESSAGE_OCTETS, true);
  putU16(out, uint(message.id, 16, 'message id'));
  putU16(out, flagsToWord(message.flags, rcode & 0xf));
  for (const n of counts) putU16(out, n);
  for (const q of questions) {
    putOwner(out, q.name, false);
    putU16(out, typeToCode(q.type));
    putU16(out, classToCode(q.class));
  }
  for (const rr of answers) putRecord(out, rr, false);
  for (const rr of authorities) putRecord(out, rr, false);
  for (const rr of additionals) putRecord(out, rr, false);
  if (edns !== undefined) putOpt(out, edns);
  return finish(out);
}

/** The smallest question (root name, type, class) and record (root owner and 10 octets). */
const MIN_QUESTION_OCTETS = 5;
const MIN_RECORD_OCTETS = 11;

type Section = 'answers' | 'authorities' | 'additionals';

interface Decoded {
  record?: ResourceRecord;
  edns?: Edns;
}

function getOptions(c: Cursor): EdnsOption[] {
  const options: EdnsOption[] = [];
  while (c.pos < c.end) {
    const at = c.pos;
    if (c.end - c.pos < 4) fail('ERR_WIRE_BAD_OPT', 'truncated EDNS option header', at);
    const code = ((c.bytes[at] as number) << 8) | (c.bytes[at + 1] as number);
    const length = ((c.bytes[at + 2] as number) << 8) | (c.bytes[at + 3] as number);
    c.pos += 4;
    if (c.end - c.pos < length)
      fail('ERR_WIRE_BAD_OPT', `EDNS option ${code} runs past the OPT RDATA`, at);
    options.push({ code, data: c.bytes.slice(c.pos, c.pos + length) });
    c.pos += length;
  }
  return options;
}

function getRecord(c: Cursor, section: Section, seenOpt: boolean): Decoded {
  const start = c.pos;
  const name = getName(c, MESSAGE_POINTERS);
  const code = getU16(c, 'record type');
  const klass = getU16(c, 'record class');
  const ttl = getU32(c, 'record TTL');
  const rdlength = getU16(c, 'RDLENGTH');
  need(c, rdlength, 'RDATA');
  const rdata: Cursor = {
    bytes: c.bytes,
    pos: c.pos,
    end: c.pos + rdlength,
    short: 'ERR_WIRE_RDLENGTH',
  };
  c.pos = rdata.end;
  if (code === TYPE_OPT) {
    if (section !== 'additionals')
      fail('ERR_WIRE_BAD_OPT', `OPT in ${section} (RFC 6891 §6.1.1)`, start);
    if (seenOpt) fail('ERR_WIRE_BAD_OPT', 'more than one OPT record (RFC 6891 §6.1.1)', start);
    if (name !== '.')
      fail('ERR_WIRE_BAD_OPT', 'OPT owner is not the root (RFC 6891 §6.1.2)', start);
    return {
      edns: {
        udpPayloadSize: klass,
        extendedRcode: ttl >>> 24,
        version: (ttl >>> 16) & 0xff,
        dnssecOk: (ttl & EDNS_FLAG_DO) !== 0,
        ...((ttl & EDNS_FLAG_CO) !== 0 ? { compactOk: true } : {}),
        options: getOptions(rdata),
      },
    };
  }
  if (!isRecordTypeCode(code))
    fail('ERR_WIRE_BAD_TYPE', `type ${code} cannot be the type of a record`, start);
  const type = codeToType(code);
  const data = getRdata(type, rdata, MESSAGE_POINTERS);
  // The discriminated union cannot follow a runtime `type`; getRdata returns the matching data.
  const record = { name, type, class: codeToClass(klass), ttl, data } as ResourceRecord;
  return { record };
}

/**
 * Decodes a whole message, strictly: the header counts must equal the questions and records
 * present, every RDATA must be consumed exactly, no byte may follow the last record, at most one
 * OPT (in the additional section, owned by the root) becomes `edns`, and the rcode combines the
 * header RCODE with the OPT extended RCODE (RFC 6891 §6.1.3). Compression pointers are followed
 * only backwards, never into the header, at most {@link MAX_COMPRESSION_POINTERS} per name, and
 * only in owner and question names and inside NS, CNAME and SOA RDATA. Decoded byte strings are
 * copies. Throws `WireError` (and nothing else) for any other input.
 */
export function decodeMessage(bytes: Uint8Array): Message {
  return guard(() => decodeMessageStrict(plain(bytes)));
}

function decodeMessageStrict(bytes: Uint8Array): Message {
  if (bytes.length > MAX_MESSAGE_OCTETS)
    fail('ERR_WIRE_TOO_LARGE', `message of ${bytes.length} octets, over ${MAX_MESSAGE_OCTETS}`);
  if (bytes.length < HEADER_OCTETS)
    fail('ERR_WIRE_TRUNCATED', `message of ${bytes.length} octets, shorter than the header`);
  const c: Cursor = { bytes, pos: 0, end: bytes.length, short: 'ERR_WIRE_TRUNCATED' };
  const id = getU16(c, 'id');
  const word = getU16(c, 'flags');
  const qd = getU16(c, 'QDCOUNT');
  const an = getU16(c, 'ANCOUNT');
  const ns = getU16(c, 'NSCOUNT');
  const ar = getU16(c, 'ARCOUNT');
  if (qd + an + ns + ar > MAX_RECORDS_PER_MESSAGE) {
    fail(
      'ERR_WIRE_TOO_MANY_RECORDS',
      `${qd + an + ns + ar} questions and records, over ${MAX_RECORDS_PER_MESSAGE}`,
      4,
    );
  }
  // Reject counts the bytes cannot hold before decoding (and allocating) anything.
  if (
    HEADER_OCTETS + qd * MIN_QUESTION_OCTETS + (an + ns + ar) * MIN_RECORD_OCTETS >
    bytes.length
  ) {
    fail('ERR_WIRE_TRUNCATED', 'the header counts more than the message can hold', 4);
  }
  const questions: Question[] = [];
  for (let i = 0; i < qd; i++) {
    const name = getName(c, MESSAGE_POINTERS);
    const type = questionTypeOf(getU16(c, 'question type'));
    questions.push({ name, type, class: codeToClass(getU16(c, 'question class')) });
  }
  let edns: Edns | undefined;
  const section = (count: number, which: Section): ResourceRecord[] => {
    const records: ResourceRecord[] = [];
    for (let i = 0; i < count; i++) {
      const decoded = getRecord(c, which, edns !== undefined);
      if (decoded.record !== undefined) records.push(decoded.record);
      if (decoded.edns !== undefined) edns = decoded.edns;
    }
    return records;
  };
  const answers = section(an, 'answers');
  const authorities = section(ns, 'authorities');
  const additionals = section(ar, 'additionals');
  if (c.pos !== bytes.length)
    fail('ERR_WIRE_TRAILING_BYTES', `${bytes.length - c.pos} octets after the last record`, c.pos);
  const rcode = codeToRcode(((edns?.extendedRcode ?? 0) << 4) | (word & 0xf));
  const message: Message = {
    id,
    flags: wordToFlags(word),
    rcode,
    questions,
    answers,
    authorities,
    additionals,
  };
  if (edns !== undefined) message.edns = edns;
  return message;
}
