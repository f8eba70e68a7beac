import { MimiError } from './errors.js';

/**
 * Binary HTTP messages (RFC 9292): the plaintext that Oblivious HTTP (RFC 9458) encrypts. The
 * gateway and the client exchange one request and one response per encapsulated message, so this
 * module works on whole messages in memory, never on streams.
 *
 * - Encoding always produces the known-length form (framing indicator 0 for a request, 1 for a
 *   response; RFC 9292 §3.1) with an empty trailer section; {@link padBhttp} adds zero-valued
 *   padding (§3.8) so that message sizes show only a size class.
 * - Decoding accepts the known-length and the indeterminate-length forms (framing 2 and 3,
 *   RFC 9292 §3.2), truncation where §3.1/§3.2 allow it, and zero-valued padding (§3.8). A
 *   response's informational (1xx) responses are read and skipped (§3.5.1); trailers are read,
 *   checked and dropped, since nothing here has a use for them.
 * - Field lines follow RFC 9113 §8.2.1 (the rule RFC 9292 §3.6 points to): names are lowercase
 *   tokens, values have no NUL, CR or LF and no leading or trailing space or tab. Pseudo-fields
 *   (names starting with `:`) are refused: the control data carries what they would (§6).
 * - Field values are Latin-1 strings, byte for byte (the convention of Node's HTTP stack), so
 *   obs-text octets survive a round trip; control data is visible ASCII.
 * - Every loop is bounded: the input by {@link MAX_BHTTP_MESSAGE_OCTETS}, each field section by
 *   {@link MAX_BHTTP_FIELDS}, informational responses by {@link MAX_BHTTP_INFORMATIONAL}.
 *   Anything else is a {@link BhttpError}.
 *
 * Integers are QUIC variable-length integers (RFC 9000 §16): the two high bits of the first octet
 * give the length (1, 2, 4 or 8 octets). Worked example (RFC 9458 Appendix A): the request
 * `GET https://example.com/` is `00 03 474554 05 6874747073 0b 6578616d706c652e636f6d 01 2f`
 * (framing 0, then four length-prefixed strings, the empty sections truncated), and the response
 * `200` is `01 40c8` (framing 1, then 200 as the two-octet varint `0x40c8`).
 */

/**
 * Inner requests through the gateway are padded to a multiple of this many octets (RFC 9292
 * §3.8, applied by the client): a request of up to one token's 100 CSIs (phone numbers) with
 * its token fits one block, so the relay and an observer cannot tell a lookup of one CSI from a
 * batch by its size.
 */
export const BHTTP_REQUEST_PADDING_BLOCK = 4096;
/**
 * Inner responses are padded to a multiple of this many octets (applied by the gateway): the
 * results of a batch show in steps of 16 KiB, not octet by octet (how many were found, how many
 * mappings each has).
 */
export const BHTTP_RESPONSE_PADDING_BLOCK = 16 * 1024;

/**
 * Largest Binary HTTP message this module encodes or decodes, in octets. An inner response
 * carries at most one token's worth of discovery results (`gateway.csisPerToken`, default 100,
 * at up to 64 KiB a result) plus headers, so 8 MiB leaves room and still bounds the memory one
 * hostile message can claim.
 */
export const MAX_BHTTP_MESSAGE_OCTETS = 8 * 1024 * 1024;

/**
 * Most field lines in one header or trailer section. Requests through the gateway carry a
 * handful (content-type, accept, authorization); a peer sending more is refused rather than
 * costing a map entry per line.
 */
export const MAX_BHTTP_FIELDS = 128;

/**
 * Most informational (1xx) responses before the final one (RFC 9292 §3.5.1 allows any number;
 * real servers send one or two, e.g. 103 Early Hints).
 */
export const MAX_BHTTP_INFORMATIONAL = 16;

/** Every code a {@link BhttpError} can carry. */
export const BHTTP_ERROR_CODES = Object.freeze([
  'ERR_BHTTP_TRUNCATED',
  'ERR_BHTTP_TOO_LARGE',
  'ERR_BHTTP_TOO_MANY_FIELDS',
  'ERR_BHTTP_FRAMING',
  'ERR_BHTTP_CONTROL_DATA',
  'ERR_BHTTP_STATUS',
  'ERR_BHTTP_FIELD',
  'ERR_BHTTP_PADDING',
] as const);

/** A code from {@link BHTTP_ERROR_CODES}. */
export type BhttpErrorCode = (typeof BHTTP_ERROR_CODES)[number];

/** Bytes that are not a valid Binary HTTP message (RFC 9292 §4), or a message that cannot be encoded. */
export class BhttpError extends MimiError<BhttpErrorCode> {
  /** Octet offset where decoding failed, when known. */
  readonly offset: number | undefined;

  constructor(code: BhttpErrorCode, message: string, offset?: number) {
    super(code, offset === undefined ? message : `${message} (at octet ${offset})`);
    this.offset = offset;
  }
}

/** An HTTP request as Binary HTTP carries it (RFC 9292 §3.4: the control data of HTTP/2). */
export interface BhttpRequest {
  /** The method, e.g. `GET`. */
  method: string;
  /** The scheme, e.g. `https`. */
  scheme: string;
  /** The authority, `host[:port]`; empty when absent (RFC 9292 §3.4). */
  authority: string;
  /** The path with its query, e.g. `/v1/discover?csi=…`. */
  path: string;
  /** Header fields in order, names lowercase; a name may repeat. */
  headers: [string, string][];
  /** The content; empty when there is none. */
  body: Uint8Array;
}

/** An HTTP response as Binary HTTP carries it: the final status, headers and content. */
export interface BhttpResponse {
  /** The final status code, 200–599 (RFC 9292 §3.5). */
  status: number;
  /** Header fields in order, names lowercase; a name may repeat. */
  headers: [string, string][];
  /** The content; empty when there is none. */
  body: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Variable-length integers (RFC 9000 §16)

/** Octets needed for `value` in the shortest form. */
function varintLength(value: number): 1 | 2 | 4 | 8 {
  if (value < 0x40) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x40000000) return 4;
  return 8;
}

/** Appends growing octet arrays without a copy per field. */
class Writer {
  private readonly parts: Uint8Array[] = [];
  private length = 0;

  varint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`varint out of range: ${String(value)}`);
    }
    const n = varintLength(value);
    const out = new Uint8Array(n);
    if (n === 8) {
      const big = BigInt(value);
      for (let i = 7; i >= 0; i -= 1) out[7 - i] = Number((big >> BigInt(8 * i)) & 0xffn);
      out[0] = (out[0] as number) | 0xc0;
    } else {
      let v = value;
      for (let i = n - 1; i >= 0; i -= 1) {
        out[i] = v & 0xff;
        v = Math.floor(v / 256);
      }
      out[0] = (out[0] as number) | (n === 1 ? 0x00 : n === 2 ? 0x40 : 0x80);
    }
    this.bytes(out);
  }

  bytes(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.length;
    if (this.length > MAX_BHTTP_MESSAGE_OCTETS) {
      throw new BhttpError(
        'ERR_BHTTP_TOO_LARGE',
        `message exceeds ${MAX_BHTTP_MESSAGE_OCTETS} octets`,
      );
    }
  }

  lengthPrefixed(b: Uint8Array): void {
    this.varint(b.length);
    this.bytes(b);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const part of this.parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }
}

/** A cursor over the input; every read checks the bound and moves forward. */
class Reader {
  at = 0;
  constructor(private readonly input: Uint8Array) {}

  get done(): boolean {
    return this.at >= this.input.length;
  }

  varint(what: string): number {
    const first = this.input[this.at];
    if (first === undefined) throw this.truncated(what);
    const n = 1 << (first >> 6);
    if (this.at + n > this.input.length) throw this.truncated(what);
    let value = BigInt(first & 0x3f);
    for (let i = 1; i < n; i += 1)
      value = (value << 8n) | BigInt(this.input[this.at + i] as number);
    // RFC 9000 §16: a value need not use the shortest encoding. Six bits plus seven octets
    // cannot exceed 2^62 − 1; a value beyond 2^53 loses precision here, which is harmless, as
    // every length that large runs past the end of a message of at most 8 MiB.
    this.at += n;
    return Number(value);
  }

  bytes(length: number, what: string): Uint8Array {
    if (length > this.input.length - this.at) {
      throw new BhttpError(
        'ERR_BHTTP_TRUNCATED',
        `${what} of ${length} octets runs past the end of the message`,
        this.at,
      );
    }
    const out = this.input.subarray(this.at, this.at + length);
    this.at += length;
    return out;
  }

  lengthPrefixed(what: string): Uint8Array {
    const start = this.at;
    const length = this.varint(`${what} length`);
    if (length > this.input.length - this.at) {
      throw new BhttpError(
        'ERR_BHTTP_TRUNCATED',
        `${what} of ${length} octets runs past the end of the message`,
        start,
      );
    }
    return this.bytes(length, what);
  }

  truncated(what: string): BhttpError {
    return new BhttpError('ERR_BHTTP_TRUNCATED', `message ends inside ${what}`, this.at);
  }

  /** RFC 9292 §3.8: what follows the message is zero-valued padding, or the message is invalid. */
  padding(): void {
    for (let i = this.at; i < this.input.length; i += 1) {
      if (this.input[i] !== 0) {
        throw new BhttpError('ERR_BHTTP_PADDING', 'non-zero octet after the end of the message', i);
      }
    }
    this.at = this.input.length;
  }
}

// ---------------------------------------------------------------------------------------------
// Text

/** Control data: visible ASCII (RFC 9113 §8.3.1 pseudo-header values carry no spaces). */
function controlBytes(value: string, what: string, allowEmpty: boolean): Uint8Array {
  if (!allowEmpty && value.length === 0) {
    throw new BhttpError('ERR_BHTTP_CONTROL_DATA', `${what} is empty`);
  }
  const out = new Uint8Array(value.length);
  for (let i = 0; i < value.length; i += 1) {
    const c = value.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) {
      throw new BhttpError(
        'ERR_BHTTP_CONTROL_DATA',
        `${what} has a character outside visible ASCII`,
      );
    }
    out[i] = c;
  }
  return out;
}

function controlText(bytes: Uint8Array, what: string, allowEmpty: boolean, at: number): string {
  if (!allowEmpty && bytes.length === 0) {
    throw new BhttpError('ERR_BHTTP_CONTROL_DATA', `${what} is empty`, at);
  }
  for (const b of bytes) {
    if (b < 0x21 || b > 0x7e) {
      throw new BhttpError(
        'ERR_BHTTP_CONTROL_DATA',
        `${what} has an octet outside visible ASCII`,
        at,
      );
    }
  }
  return latin1(bytes);
}

function latin1(bytes: Uint8Array): string {
  let out = '';
  // Chunked so that String.fromCharCode never receives more arguments than the engine allows.
  for (let i = 0; i < bytes.length; i += 4096) {
    out += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return out;
}

/** RFC 9110 §5.6.2 tchar, lowercase only (RFC 9113 §8.2.1: uppercase names are malformed). */
function isNameOctet(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x30 && c <= 0x39) ||
    "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c))
  );
}

/** RFC 9113 §8.2.1: why a field line is malformed, or undefined when it is well formed. */
function fieldProblem(name: Uint8Array | string, value: Uint8Array | string): string | undefined {
  const at = (s: Uint8Array | string, i: number): number =>
    typeof s === 'string' ? s.charCodeAt(i) : (s[i] as number);
  if (name.length === 0) return 'a field name is empty';
  if (at(name, 0) === 0x3a) return 'a pseudo-field is not allowed (RFC 9292 §6)';
  for (let i = 0; i < name.length; i += 1) {
    if (!isNameOctet(at(name, i)))
      return 'a field name has a character that is not a lowercase token';
  }
  for (let i = 0; i < value.length; i += 1) {
    const c = at(value, i);
    if (c === 0x00 || c === 0x0a || c === 0x0d) return 'a field value has NUL, CR or LF';
    if (c > 0xff) return 'a field value has a character outside Latin-1';
  }
  if (value.length > 0) {
    const first = at(value, 0);
    const last = at(value, value.length - 1);
    if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) {
      return 'a field value starts or ends with whitespace';
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Encoding (known length, RFC 9292 §3.1)

function writeFields(w: Writer, fields: readonly (readonly [string, string])[]): void {
  if (fields.length > MAX_BHTTP_FIELDS) {
    throw new BhttpError('ERR_BHTTP_TOO_MANY_FIELDS', `more than ${MAX_BHTTP_FIELDS} field lines`);
  }
  const section = new Writer();
  for (const [name, value] of fields) {
    const problem = fieldProblem(name, value);
    if (problem !== undefined) throw new BhttpError('ERR_BHTTP_FIELD', problem);
    section.lengthPrefixed(Uint8Array.from(name, (ch) => ch.charCodeAt(0)));
    section.lengthPrefixed(Uint8Array.from(value, (ch) => ch.charCodeAt(0)));
  }
  w.lengthPrefixed(section.finish());
}

/**
 * The known-length Binary HTTP encoding of `request` (RFC 9292 §3.1, framing indicator 0), with
 * an empty trailer section. Throws {@link BhttpError} on control data outside visible ASCII, a
 * malformed field line, more than {@link MAX_BHTTP_FIELDS} fields or more than
 * {@link MAX_BHTTP_MESSAGE_OCTETS} octets.
 */
export function encodeBhttpRequest(request: BhttpRequest): Uint8Array {
  const w = new Writer();
  w.varint(0);
  w.lengthPrefixed(controlBytes(request.method, 'the method', false));
  w.lengthPrefixed(controlBytes(request.scheme, 'the scheme', true));
  w.lengthPrefixed(controlBytes(request.authority, 'the authority', true));
  w.lengthPrefixed(controlBytes(request.path, 'the path', true));
  writeFields(w, request.headers);
  w.lengthPrefixed(request.body);
  w.varint(0); // empty trailer section
  return w.finish();
}

/**
 * `message` (a whole known-length Binary HTTP message) followed by zero octets up to the next
 * multiple of `block` (RFC 9292 §3.8: padding after the message, which decoders skip). A
 * message that is already a multiple is left as it is.
 */
export function padBhttp(message: Uint8Array, block: number): Uint8Array {
  if (!Number.isSafeInteger(block) || block < 1) {
    throw new RangeError(`a padding block is a whole number of octets, not ${block}`);
  }
  const padded = Math.ceil(message.length / block) * block;
  if (padded === message.length) return message;
  const out = new Uint8Array(padded);
  out.set(message);
  return out;
}

/**
 * The known-length Binary HTTP encoding of `response` (RFC 9292 §3.1, framing indicator 1): no
 * informational responses, an empty trailer section. Throws {@link BhttpError} on a status
 * outside 200–599, a malformed field line or a message too large.
 */
export function encodeBhttpResponse(response: BhttpResponse): Uint8Array {
  if (!Number.isInteger(response.status) || response.status < 200 || response.status > 599) {
    throw new BhttpError(
      'ERR_BHTTP_STATUS',
      `final status ${String(response.status)} is not 200–599`,
    );
  }
  const w = new Writer();
  w.varint(1);
  w.varint(response.status);
  writeFields(w, response.headers);
  w.lengthPrefixed(response.body);
  w.varint(0);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Decoding (RFC 9292 §3.1 and §3.2)

type Framing = 'known' | 'indeterminate';

function checkSize(input: Uint8Array): void {
  if (input.length > MAX_BHTTP_MESSAGE_OCTETS) {
    throw new BhttpError(
      'ERR_BHTTP_TOO_LARGE',
      `message of ${input.length} octets exceeds ${MAX_BHTTP_MESSAGE_OCTETS}`,
    );
  }
  if (input.length === 0) throw new BhttpError('ERR_BHTTP_TRUNCATED', 'message is empty', 0);
}

/**
 * One field section. Known length: a length-prefixed run of field lines; indeterminate length:
 * field lines up to a zero (the Content Terminator of RFC 9292 §3.2). When `truncatable`, the end
 * of input where the section would start means an empty section (§3.1, §3.2).
 */
function readFields(r: Reader, framing: Framing, truncatable: boolean): [string, string][] {
  const fields: [string, string][] = [];
  if (truncatable && r.done) return fields;
  const addField = (name: Uint8Array, value: Uint8Array, at: number): void => {
    if (fields.length >= MAX_BHTTP_FIELDS) {
      throw new BhttpError(
        'ERR_BHTTP_TOO_MANY_FIELDS',
        `more than ${MAX_BHTTP_FIELDS} field lines in a section`,
        at,
      );
    }
    const problem = fieldProblem(name, value);
    if (problem !== undefined) throw new BhttpError('ERR_BHTTP_FIELD', problem, at);
    fields.push([latin1(name), latin1(value)]);
  };
  if (framing === 'known') {
    const start = r.at;
    const section = new Reader(r.lengthPrefixed('field section'));
    while (!section.done) {
      const at = start + section.at;
      const name = section.lengthPrefixed('field name');
      const value = section.lengthPrefixed('field value');
      addField(name, value, at);
    }
    return fields;
  }
  // Indeterminate: each iteration consumes at least one octet, so the loop ends with the input.
  for (;;) {
    const at = r.at;
    const nameLength = r.varint('field name length');
    if (nameLength === 0) return fields;
    const name = r.bytes(nameLength, 'field name');
    const value = r.lengthPrefixed('field value');
    addField(name, value, at);
  }
}

/** Known-length content (length-prefixed) or indeterminate-length chunks ending in a zero. */
function readContent(r: Reader, framing: Framing): Uint8Array {
  if (r.done) return new Uint8Array(0); // truncated: empty content (RFC 9292 §3.7)
  if (framing === 'known') return r.lengthPrefixed('content').slice();
  const chunks: Uint8Array[] = [];
  let total = 0;
  // Each chunk is at least one octet long, so the loop ends with the input.
  for (;;) {
    const chunk = r.lengthPrefixed('content chunk');
    if (chunk.length === 0) break;
    chunks.push(chunk);
    total += chunk.length;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

function readFraming(r: Reader, expect: 'request' | 'response'): Framing {
  const indicator = r.varint('framing indicator');
  const kinds: Record<number, [Framing, 'request' | 'response']> = {
    0: ['known', 'request'],
    1: ['known', 'response'],
    2: ['indeterminate', 'request'],
    3: ['indeterminate', 'response'],
  };
  const kind = kinds[indicator];
  if (kind === undefined) {
    throw new BhttpError('ERR_BHTTP_FRAMING', `unknown framing indicator ${indicator}`, 0);
  }
  if (kind[1] !== expect) {
    throw new BhttpError(
      'ERR_BHTTP_FRAMING',
      `framing indicator ${indicator} is a ${kind[1]}, not a ${expect}`,
      0,
    );
  }
  return kind[0];
}

/**
 * Decodes a Binary HTTP request (RFC 9292), known- or indeterminate-length, truncated or padded
 * as §3 allows; the trailer section is checked and dropped. Throws {@link BhttpError} on anything
 * else, including a response.
 */
export function decodeBhttpRequest(input: Uint8Array): BhttpRequest {
  checkSize(input);
  const r = new Reader(input);
  const framing = readFraming(r, 'request');
  const control = (what: string, allowEmpty: boolean): string => {
    const at = r.at;
    return controlText(r.lengthPrefixed(what), what, allowEmpty, at);
  };
  const method = control('method', false);
  const scheme = control('scheme', true);
  const authority = control('authority', true);
  const path = control('path', true);
  const headers = readFields(r, framing, true);
  const body = readContent(r, framing);
  readFields(r, framing, true); // trailers: validated, then dropped
  r.padding();
  return { method, scheme, authority, path, headers, body };
}

/**
 * Decodes a Binary HTTP response (RFC 9292), known- or indeterminate-length: informational (1xx)
 * responses are skipped (at most {@link MAX_BHTTP_INFORMATIONAL}), the trailer section is
 * checked and dropped. Throws {@link BhttpError} on anything malformed, including a request.
 */
export function decodeBhttpResponse(input: Uint8Array): BhttpResponse {
  checkSize(input);
  const r = new Reader(input);
  const framing = readFraming(r, 'response');
  let informational = 0;
  for (;;) {
    const at = r.at;
    const status = r.varint('status code');
    if (status >= 100 && status <= 199) {
      informational += 1;
      if (informational > MAX_BHTTP_INFORMATIONAL) {
        throw new BhttpError(
          'ERR_BHTTP_STATUS',
          `more than ${MAX_BHTTP_INFORMATIONAL} informational responses`,
          at,
        );
      }
      // RFC 9292 §3.5.1: an informational response's header section is never truncated.
      readFields(r, framing, false);
      continue;
    }
    if (status < 200 || status > 599) {
      throw new BhttpError('ERR_BHTTP_STATUS', `status ${status} is not 100–599`, at);
    }
    const headers = readFields(r, framing, true);
    const body = readContent(r, framing);
    readFields(r, framing, true);
    r.padding();
    return { status, headers, body };
  }
}
