import { Buffer } from 'node:buffer';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { MimiError } from './errors.js';
import { canonicalName, formatLabels, MAX_LABEL_OCTETS, MAX_NAME_OCTETS } from './names.js';
import { HEADER_OCTETS, MAX_MESSAGE_OCTETS, decodeName, encodeName } from './wire.js';

/**
 * Transaction signatures (TSIG, RFC 8945): a shared secret between two servers, and an HMAC over
 * each message that one sends the other, carried as the last record of the message. What zone
 * transfers to secondaries (RFC 5936 §6), their SOA queries and NOTIFY (RFC 1996) are
 * authorised by. Pure: bytes in, bytes out; the clock is the caller's.
 *
 * A message is signed on the wire, not in the record model: the MAC covers the message exactly
 * as sent, so signing appends the TSIG record to encoded bytes (ARCOUNT + 1), and verifying
 * takes it off again (ARCOUNT − 1, the original id put back) before computing the MAC over what
 * remains (RFC 8945 §4.3).
 *
 * What the MAC covers (RFC 8945 §4.3, §5.3, §5.3.1), with `len` the MAC's length in two octets:
 *
 * | message | digest input |
 * |---|---|
 * | a request | message + TSIG variables |
 * | a response, or the first message of a transfer | `len` + request MAC + message + variables |
 * | a later message of a transfer | `len` + prior MAC + unsigned messages since + message + timers |
 *
 * The variables are the key name and algorithm name in canonical wire form, class ANY, TTL 0,
 * time signed (48 bits), fudge, error and other data; the timers are time signed and fudge.
 *
 * Checks of a request, in the order of RFC 8945 §5.2: the TSIG must be the last record and the
 * only one (else FORMERR, §5.1); key name and algorithm known (else BADKEY, §5.2.1); the MAC
 * (BADSIG, or FORMERR for a length outside §5.2.2.1's bounds; a correct MAC shorter than the
 * whole HMAC is BADTRUNC: this project takes no truncated MACs); then the time (BADTIME, §5.2.3).
 * The time window is the request's fudge but at most {@link TSIG_FUDGE_SECONDS}: a client
 * cannot widen the window a captured request can be replayed in by asking for a large fudge.
 *
 * Worked example: `dig -y hmac-sha256:xfr-key:<secret> @dp example AXFR` sends a query whose
 * last record is `xfr-key. 0 ANY TSIG hmac-sha256. <time> 300 32 <mac> <id> NOERROR 0`;
 * {@link verifyRequest} takes it off, recomputes the HMAC-SHA256 of the 40-odd octets before it
 * plus the variables, and returns `verified` with the key; each message of the answer is then
 * signed with {@link signMessage}, the first over the request's MAC, each later one over the
 * MAC of the one before.
 */

/** The HMAC algorithms this project signs and verifies with (RFC 8945 §6, both mandatory). */
export const TSIG_ALGORITHMS = Object.freeze(['hmac-sha256', 'hmac-sha512'] as const);

/** A name from {@link TSIG_ALGORITHMS}, as written on the wire and in key files. */
export type TsigAlgorithm = (typeof TSIG_ALGORITHMS)[number];

/** The hash of each algorithm and the octets of its HMAC. */
const HASHES: Readonly<Record<TsigAlgorithm, { hash: 'sha256' | 'sha512'; octets: number }>> =
  Object.freeze({
    'hmac-sha256': { hash: 'sha256', octets: 32 },
    'hmac-sha512': { hash: 'sha512', octets: 64 },
  });

/**
 * The fudge this project signs with and the widest time window it accepts: 300 s, as RFC 8945
 * §10 recommends (and BIND, NSD and Knot send).
 */
export const TSIG_FUDGE_SECONDS = 300;

/** The TSIG RR type (RFC 8945 §4.2). */
export const RR_TYPE_TSIG = 250;

/** TSIG error codes (RFC 8945 §4.2, §5.2), carried in the TSIG record of a NOTAUTH response. */
export const TSIG_ERRORS = Object.freeze({
  BADSIG: 16,
  BADKEY: 17,
  BADTIME: 18,
  BADTRUNC: 22,
} as const);

/** A name of {@link TSIG_ERRORS}. */
export type TsigErrorName = keyof typeof TSIG_ERRORS;

/**
 * Most unsigned messages in a row a multi-message response may hold between two signed ones
 * (RFC 8945 §5.3.1); a response with more fails verification. This project signs every one.
 */
export const TSIG_MAX_UNSIGNED_MESSAGES = 99;

/**
 * Shortest secret accepted: 16 octets (128 bits). RFC 8945 §6 asks for keys as long as the
 * HMAC's output; `mimi-discovery keys tsig` makes them so (32 or 64 octets), as `tsig-keygen`.
 */
export const MIN_TSIG_SECRET_OCTETS = 16;

/** Longest secret accepted: the HMAC block size of SHA-512 (longer keys are hashed anyway). */
export const MAX_TSIG_SECRET_OCTETS = 128;

/** The codes of a {@link TsigError}. */
export type TsigErrorCode =
  /** A key that cannot be used: bad name, unknown algorithm, secret too short or too long. */
  | 'ERR_TSIG_BAD_KEY'
  /** The same key name twice in one keyring. */
  | 'ERR_TSIG_DUPLICATE_KEY'
  /** A key file that is not one `key` clause as `tsig-keygen` writes it. */
  | 'ERR_TSIG_KEY_FILE'
  /** A message that cannot be signed: not a message, or too large once signed. */
  | 'ERR_TSIG_MESSAGE';

/** A TSIG key or message that cannot be used; the message says which rule it broke. */
export class TsigError extends MimiError<TsigErrorCode> {}

/** A shared secret: its name (canonical), its algorithm and the secret octets. */
export interface TsigKey {
  readonly name: string;
  readonly algorithm: TsigAlgorithm;
  readonly secret: Uint8Array;
}

/** Keys by canonical name, as {@link createTsigKeyring} builds them. */
export type TsigKeyring = ReadonlyMap<string, TsigKey>;

/** The fields of a TSIG record (RFC 8945 §4.2). */
export interface TsigRecord {
  /** The key name, canonical. */
  readonly keyName: string;
  /** The algorithm name, canonical (`hmac-sha256`); may be one this project does not know. */
  readonly algorithm: string;
  /** Seconds since the epoch (48 bits). */
  readonly timeSigned: number;
  readonly fudge: number;
  readonly mac: Uint8Array;
  readonly originalId: number;
  readonly error: number;
  readonly otherData: Uint8Array;
}

/**
 * Checks and builds a key. Throws {@link TsigError} `ERR_TSIG_BAD_KEY` for a name that is not a
 * domain name, an algorithm outside {@link TSIG_ALGORITHMS}, or a secret of fewer than
 * {@link MIN_TSIG_SECRET_OCTETS} or more than {@link MAX_TSIG_SECRET_OCTETS} octets.
 */
export function createTsigKey(name: string, algorithmName: string, secret: Uint8Array): TsigKey {
  const algorithm = algorithmName.toLowerCase().replace(/\.$/, '');
  if (!isTsigAlgorithm(algorithm)) {
    throw new TsigError(
      'ERR_TSIG_BAD_KEY',
      `algorithm ${JSON.stringify(algorithmName)} is not one of ${TSIG_ALGORITHMS.join(', ')}`,
    );
  }
  let canonical: string;
  try {
    canonical = canonicalName(name);
    encodeName(canonical);
  } catch (error) {
    throw new TsigError(
      'ERR_TSIG_BAD_KEY',
      `key name ${JSON.stringify(name)} is not a domain name`,
      {
        cause: error,
      },
    );
  }
  if (canonical === '.') throw new TsigError('ERR_TSIG_BAD_KEY', 'a key name cannot be the root');
  if (secret.length < MIN_TSIG_SECRET_OCTETS || secret.length > MAX_TSIG_SECRET_OCTETS) {
    throw new TsigError(
      'ERR_TSIG_BAD_KEY',
      `the secret of key ${canonical} has ${secret.length} octets, not ${MIN_TSIG_SECRET_OCTETS}–${MAX_TSIG_SECRET_OCTETS}`,
    );
  }
  return Object.freeze({ name: canonical, algorithm, secret: Uint8Array.from(secret) });
}

/** Whether `name` is one of {@link TSIG_ALGORITHMS}, as written there. */
export function isTsigAlgorithm(name: string): name is TsigAlgorithm {
  return (TSIG_ALGORITHMS as readonly string[]).includes(name);
}

/** The octets of an algorithm's whole MAC (32 for `hmac-sha256`, 64 for `hmac-sha512`). */
export function tsigMacOctets(algorithm: TsigAlgorithm): number {
  return HASHES[algorithm].octets;
}

/** Keys by name. Throws {@link TsigError} `ERR_TSIG_DUPLICATE_KEY` for a name given twice. */
export function createTsigKeyring(keys: readonly TsigKey[]): TsigKeyring {
  const ring = new Map<string, TsigKey>();
  for (const key of keys) {
    if (ring.has(key.name)) {
      throw new TsigError('ERR_TSIG_DUPLICATE_KEY', `key ${key.name} is listed twice`);
    }
    ring.set(key.name, key);
  }
  return ring;
}

// ---------------------------------------------------------------------------------------------
// Finding the TSIG record of a message

/** A message taken apart at its TSIG record. */
export type TsigSplit =
  | { readonly kind: 'unsigned' }
  | {
      readonly kind: 'signed';
      readonly tsig: TsigRecord;
      /**
       * The message as it was before signing: the octets before the TSIG record, ARCOUNT one
       * less and the id put back to the original id (RFC 8945 §4.3.1). This is also what to
       * decode: the record model has no place for TSIG.
       */
      readonly unsigned: Uint8Array;
    }
  | { readonly kind: 'malformed'; readonly reason: string };

/**
 * Finds the TSIG record of `wire`: none (`unsigned`), the last record of the additional
 * section (`signed`), or one anywhere else, more than one, or one whose RDATA does not parse
 * (`malformed`, RFC 8945 §5.1: FORMERR). Walks only the record framing; the rest of the message
 * is the codec's to check (`decodeMessage`). Bytes that are not a message framed by their
 * counts are `malformed` too.
 */
export function splitTsig(wire: Uint8Array): TsigSplit {
  const frame = recordFrame(wire);
  if (typeof frame === 'string') return { kind: 'malformed', reason: frame };
  const { records, additionals } = frame;
  const tsigs = records.filter((r) => r.type === RR_TYPE_TSIG);
  if (tsigs.length === 0) return { kind: 'unsigned' };
  const last = records[records.length - 1];
  if (tsigs.length > 1 || last?.type !== RR_TYPE_TSIG || additionals === 0) {
    return { kind: 'malformed', reason: 'a TSIG record that is not the last one (RFC 8945 §5.1)' };
  }
  const tsig = parseTsigRecord(wire, last);
  if (typeof tsig === 'string') return { kind: 'malformed', reason: tsig };
  // A copy (a Buffer's `slice` would share the octets): the id and ARCOUNT are rewritten.
  const unsigned = Uint8Array.from(wire.subarray(0, last.start));
  writeU16(unsigned, 0, tsig.originalId);
  writeU16(unsigned, 10, additionals - 1);
  return { kind: 'signed', tsig, unsigned };
}

interface RecordSpan {
  readonly start: number;
  readonly type: number;
  readonly rdataStart: number;
  readonly rdataEnd: number;
}

/** The spans of every record of `wire`, or why its framing is broken. */
function recordFrame(wire: Uint8Array): { records: RecordSpan[]; additionals: number } | string {
  if (!(wire instanceof Uint8Array)) return 'not a message';
  if (wire.length < HEADER_OCTETS) return 'shorter than a header';
  if (wire.length > MAX_MESSAGE_OCTETS) return 'longer than a message';
  const questions = readU16(wire, 4);
  const total = readU16(wire, 6) + readU16(wire, 8) + readU16(wire, 10);
  let pos = HEADER_OCTETS;
  for (let i = 0; i < questions; i++) {
    pos = skipName(wire, pos) + 4;
    if (pos > wire.length) return 'a question runs past the end';
  }
  const records: RecordSpan[] = [];
  for (let i = 0; i < total; i++) {
    const start = pos;
    pos = skipName(wire, pos);
    if (pos + 10 > wire.length) return 'a record runs past the end';
    const type = readU16(wire, pos);
    const rdataStart = pos + 10;
    const rdataEnd = rdataStart + readU16(wire, pos + 8);
    if (rdataEnd > wire.length) return 'a record runs past the end';
    records.push({ start, type, rdataStart, rdataEnd });
    pos = rdataEnd;
  }
  if (pos !== wire.length) return 'bytes after the last record';
  return { records, additionals: readU16(wire, 10) };
}

/** The offset after the name at `pos` (labels, then a zero or a pointer); past the end if bad. */
function skipName(wire: Uint8Array, pos: number): number {
  for (let hops = 0; pos < wire.length && hops <= MAX_NAME_OCTETS; hops++) {
    const length = wire[pos] as number;
    if (length === 0) return pos + 1;
    if ((length & 0xc0) === 0xc0) return pos + 2;
    if ((length & 0xc0) !== 0) return wire.length + 1;
    pos += 1 + length;
  }
  return wire.length + 1;
}

function parseTsigRecord(wire: Uint8Array, span: RecordSpan): TsigRecord | string {
  let keyName: string;
  try {
    keyName = canonicalName(decodeName(wire, span.start).name);
  } catch {
    return 'the TSIG owner is not a name';
  }
  const classCode = readU16(wire, span.rdataStart - 8);
  const ttl = readU32(wire, span.rdataStart - 6);
  if (classCode !== CLASS_ANY || ttl !== 0) return 'a TSIG record not of class ANY and TTL 0';
  const rdata = wire.subarray(span.rdataStart, span.rdataEnd);
  const algorithm = readPlainName(rdata, 0);
  if (algorithm === undefined) return 'the TSIG algorithm is not an uncompressed name';
  let pos = algorithm.end;
  if (pos + 10 > rdata.length) return 'the TSIG RDATA is truncated';
  const timeSigned = readU16(rdata, pos) * 2 ** 32 + readU32(rdata, pos + 2);
  const fudge = readU16(rdata, pos + 6);
  const macOctets = readU16(rdata, pos + 8);
  pos += 10;
  if (pos + macOctets + 6 > rdata.length) return 'the TSIG MAC is truncated';
  const mac = Uint8Array.from(rdata.subarray(pos, pos + macOctets));
  pos += macOctets;
  const originalId = readU16(rdata, pos);
  const error = readU16(rdata, pos + 2);
  const otherOctets = readU16(rdata, pos + 4);
  pos += 6;
  if (pos + otherOctets !== rdata.length) return 'the TSIG other data does not fill the RDATA';
  const otherData = Uint8Array.from(rdata.subarray(pos, pos + otherOctets));
  return {
    keyName,
    algorithm: canonicalName(algorithm.name),
    timeSigned,
    fudge,
    mac,
    originalId,
    error,
    otherData,
  };
}

/** A name without compression (RFC 8945 §4.2: the algorithm name is never compressed). */
function readPlainName(bytes: Uint8Array, pos: number): { name: string; end: number } | undefined {
  const labels: Uint8Array[] = [];
  let octets = 1;
  while (pos < bytes.length) {
    const length = bytes[pos] as number;
    if (length === 0) return { name: formatLabels(labels), end: pos + 1 };
    if (length > MAX_LABEL_OCTETS || pos + 1 + length > bytes.length) return undefined;
    octets += 1 + length;
    if (octets > MAX_NAME_OCTETS) return undefined;
    labels.push(Uint8Array.from(bytes.subarray(pos + 1, pos + 1 + length)));
    pos += 1 + length;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Signing

const CLASS_ANY = 255;

/** Options of {@link signMessage}. */
export interface TsigSignOptions {
  /** The signer's clock, whole seconds since the epoch: the time signed. */
  readonly now: number;
  /**
   * For a response, or the first message of a multi-message one: the MAC of the request
   * (RFC 8945 §5.3). The digest then covers it and the whole TSIG variables.
   */
  readonly requestMac?: Uint8Array;
  /**
   * For a later message of a multi-message response: the MAC of the message signed before it
   * (RFC 8945 §5.3.1). The digest then covers it and the timers only.
   */
  readonly priorMac?: Uint8Array;
  /** Default {@link TSIG_FUDGE_SECONDS}. */
  readonly fudge?: number;
  /** A TSIG error for a signed error response (BADTIME, BADTRUNC); default none. */
  readonly error?: TsigErrorName;
  /** Time signed when it is not `now`: a BADTIME response repeats the request's (§5.2.3). */
  readonly timeSigned?: number;
  /** Other data: the server's time in a BADTIME response (§5.2.3). */
  readonly otherData?: Uint8Array;
}

/** A signed message and its MAC (what the next message of a response is chained to). */
export interface SignedMessage {
  readonly wire: Uint8Array;
  readonly mac: Uint8Array;
}

/**
 * Signs the encoded message `wire` (which holds no TSIG record) with `key`: appends the TSIG
 * record (its original id is the message's id) and adds one to ARCOUNT. Throws
 * {@link TsigError} `ERR_TSIG_MESSAGE` for bytes shorter than a header, both `requestMac` and
 * `priorMac`, or a result over 65,535 octets.
 */
export function signMessage(
  wire: Uint8Array,
  key: TsigKey,
  options: TsigSignOptions,
): SignedMessage {
  checkMessage(wire);
  if (options.requestMac !== undefined && options.priorMac !== undefined) {
    throw new TsigError(
      'ERR_TSIG_MESSAGE',
      'a message is signed over a request MAC or a prior MAC, not both',
    );
  }
  const fields = {
    keyName: key.name,
    algorithm: key.algorithm,
    timeSigned: options.timeSigned ?? Math.floor(options.now),
    fudge: options.fudge ?? TSIG_FUDGE_SECONDS,
    originalId: readU16(wire, 0),
    error: options.error === undefined ? 0 : TSIG_ERRORS[options.error],
    otherData: options.otherData ?? new Uint8Array(0),
  };
  const chained = options.requestMac ?? options.priorMac;
  const mac = computeMac(key, [
    ...(chained === undefined ? [] : [macPrefix(chained)]),
    wire,
    options.priorMac === undefined ? variables(fields) : timers(fields),
  ]);
  return { wire: appendTsig(wire, { ...fields, mac }), mac };
}

/**
 * Appends an unsigned TSIG record to `wire` (MAC empty), as the error response to a request
 * whose key is unknown (BADKEY) or whose MAC is wrong (BADSIG) carries it: RFC 8945 §5.3.2
 * forbids signing those. The key name, algorithm and time are the request's.
 */
export function appendUnsignedTsig(
  wire: Uint8Array,
  request: TsigRecord,
  error: 'BADKEY' | 'BADSIG',
): Uint8Array {
  checkMessage(wire);
  return appendTsig(wire, {
    keyName: request.keyName,
    algorithm: request.algorithm,
    timeSigned: request.timeSigned,
    fudge: request.fudge,
    mac: new Uint8Array(0),
    originalId: readU16(wire, 0),
    error: TSIG_ERRORS[error],
    otherData: new Uint8Array(0),
  });
}

/** Octets the TSIG record of `key` adds to a message (with `otherOctets` of other data). */
export function tsigRecordOctets(key: TsigKey, otherOctets = 0): number {
  return (
    encodeName(key.name).length +
    10 +
    encodeName(key.algorithm).length +
    16 +
    HASHES[key.algorithm].octets +
    otherOctets
  );
}

function checkMessage(wire: Uint8Array): void {
  if (!(wire instanceof Uint8Array) || wire.length < HEADER_OCTETS) {
    throw new TsigError('ERR_TSIG_MESSAGE', 'not a DNS message');
  }
}

function appendTsig(wire: Uint8Array, record: TsigRecord): Uint8Array {
  const owner = encodeName(record.keyName, { canonical: true });
  const algorithm = encodeName(record.algorithm, { canonical: true });
  const rdataOctets = algorithm.length + 16 + record.mac.length + record.otherData.length;
  const out = new Uint8Array(wire.length + owner.length + 10 + rdataOctets);
  if (out.length > MAX_MESSAGE_OCTETS) {
    throw new TsigError('ERR_TSIG_MESSAGE', `a message of ${out.length} octets once signed`);
  }
  out.set(wire, 0);
  writeU16(out, 10, readU16(wire, 10) + 1);
  let pos = wire.length;
  out.set(owner, pos);
  pos += owner.length;
  writeU16(out, pos, RR_TYPE_TSIG);
  writeU16(out, pos + 2, CLASS_ANY);
  writeU32(out, pos + 4, 0);
  writeU16(out, pos + 8, rdataOctets);
  pos += 10;
  out.set(algorithm, pos);
  pos += algorithm.length;
  writeU48(out, pos, record.timeSigned);
  writeU16(out, pos + 6, record.fudge);
  writeU16(out, pos + 8, record.mac.length);
  pos += 10;
  out.set(record.mac, pos);
  pos += record.mac.length;
  writeU16(out, pos, record.originalId);
  writeU16(out, pos + 2, record.error);
  writeU16(out, pos + 4, record.otherData.length);
  out.set(record.otherData, pos + 6);
  return out;
}

/** The TSIG variables of RFC 8945 §4.3.3, names in canonical wire form. */
function variables(r: Omit<TsigRecord, 'mac'>): Uint8Array {
  const name = encodeName(r.keyName, { canonical: true });
  const algorithm = encodeName(r.algorithm, { canonical: true });
  const out = new Uint8Array(name.length + 6 + algorithm.length + 12 + r.otherData.length);
  out.set(name, 0);
  let pos = name.length;
  writeU16(out, pos, CLASS_ANY);
  writeU32(out, pos + 2, 0);
  pos += 6;
  out.set(algorithm, pos);
  pos += algorithm.length;
  writeU48(out, pos, r.timeSigned);
  writeU16(out, pos + 6, r.fudge);
  writeU16(out, pos + 8, r.error);
  writeU16(out, pos + 10, r.otherData.length);
  out.set(r.otherData, pos + 12);
  return out;
}

/** The TSIG timers of RFC 8945 §5.3.1: time signed and fudge. */
function timers(r: Pick<TsigRecord, 'timeSigned' | 'fudge'>): Uint8Array {
  const out = new Uint8Array(8);
  writeU48(out, 0, r.timeSigned);
  writeU16(out, 6, r.fudge);
  return out;
}

function macPrefix(mac: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + mac.length);
  writeU16(out, 0, mac.length);
  out.set(mac, 2);
  return out;
}

function computeMac(key: TsigKey, parts: readonly Uint8Array[]): Uint8Array {
  const hmac = createHmac(HASHES[key.algorithm].hash, key.secret);
  for (const part of parts) hmac.update(part);
  return new Uint8Array(hmac.digest());
}

/** Whether `received` is the MAC `expected`, or its leading octets, compared in constant time. */
function macMatches(expected: Uint8Array, received: Uint8Array): boolean {
  if (received.length === 0 || received.length > expected.length) return false;
  return timingSafeEqual(expected.subarray(0, received.length), received);
}

/** Whether a MAC of `octets` is allowed at all (RFC 8945 §5.2.2.1): else FORMERR. */
function macLengthAllowed(algorithm: TsigAlgorithm, octets: number): boolean {
  const full = HASHES[algorithm].octets;
  return octets <= full && octets >= Math.max(10, full / 2);
}

// ---------------------------------------------------------------------------------------------
// Verifying

/** The outcome of {@link verifyRequest}. */
export type TsigVerification =
  /** No TSIG record: the request is unsigned. */
  | { readonly kind: 'unsigned' }
  /** Signed with `key`, the MAC right and the time within the window. */
  | {
      readonly kind: 'verified';
      readonly key: TsigKey;
      readonly tsig: TsigRecord;
      /** The request without its TSIG record (see {@link TsigSplit}). */
      readonly unsigned: Uint8Array;
    }
  /**
   * Signed, but refused: answer NOTAUTH with this TSIG error (RFC 8945 §5.2). With `key`
   * (BADTIME, BADTRUNC: the MAC was right) the error response is signed; without (BADKEY,
   * BADSIG) it carries an unsigned TSIG ({@link appendUnsignedTsig}).
   */
  | {
      readonly kind: 'failed';
      readonly error: TsigErrorName;
      readonly tsig: TsigRecord;
      readonly unsigned: Uint8Array;
      readonly key?: TsigKey;
    }
  /** A TSIG record out of place or unreadable: FORMERR (RFC 8945 §5.1). */
  | { readonly kind: 'malformed'; readonly reason: string };

/**
 * Verifies the TSIG of a request against `keys` at `now` (whole seconds), with the checks of the
 * module comment in their order.
 */
export function verifyRequest(wire: Uint8Array, keys: TsigKeyring, now: number): TsigVerification {
  const split = splitTsig(wire);
  if (split.kind !== 'signed') return split;
  const { tsig, unsigned } = split;
  const failed = (error: TsigErrorName, key?: TsigKey): TsigVerification => ({
    kind: 'failed',
    error,
    tsig,
    unsigned,
    ...(key === undefined ? {} : { key }),
  });
  const key = keys.get(tsig.keyName);
  // RFC 8945 §5.2.1: an unknown key, or a known one with another algorithm.
  if (key === undefined || key.algorithm !== tsig.algorithm) return failed('BADKEY');
  if (!macLengthAllowed(key.algorithm, tsig.mac.length)) {
    return { kind: 'malformed', reason: `a MAC of ${tsig.mac.length} octets (RFC 8945 §5.2.2.1)` };
  }
  const expected = computeMac(key, [unsigned, variables(tsig)]);
  if (!macMatches(expected, tsig.mac)) return failed('BADSIG');
  if (tsig.mac.length < expected.length) return failed('BADTRUNC', key);
  if (!withinWindow(tsig, now)) return failed('BADTIME', key);
  return { kind: 'verified', key, tsig, unsigned };
}

/** RFC 8945 §5.2.3, with the window capped at {@link TSIG_FUDGE_SECONDS}. */
function withinWindow(tsig: Pick<TsigRecord, 'timeSigned' | 'fudge'>, now: number): boolean {
  const fudge = Math.min(tsig.fudge, TSIG_FUDGE_SECONDS);
  return Math.abs(Math.floor(now) - tsig.timeSigned) <= fudge;
}

/** The other data of a BADTIME response: the server's time in 48 bits (RFC 8945 §5.2.3). */
export function badTimeOtherData(now: number): Uint8Array {
  const out = new Uint8Array(6);
  writeU48(out, 0, Math.floor(now));
  return out;
}

/** The outcome of {@link TsigResponseVerifier.verify} for one message. */
export type TsigResponseCheck =
  | {
      readonly kind: 'verified';
      /** The message without its TSIG record, to decode. */
      readonly unsigned: Uint8Array;
    }
  /** A later message without TSIG (RFC 8945 §5.3.1 allows up to 99 in a row). */
  | { readonly kind: 'unsigned'; readonly unsigned: Uint8Array }
  | { readonly kind: 'failed'; readonly reason: string };

/** Verifies the messages of one response, in order (see {@link createTsigResponseVerifier}). */
export interface TsigResponseVerifier {
  verify(wire: Uint8Array, now: number): TsigResponseCheck;
}

/**
 * The verifier of the response (one message, or the many of a transfer) to a request signed
 * with `key` whose MAC was `requestMac`: the first message must be signed over the request MAC
 * and the whole variables, each later one either signed over the MAC before it and the timers,
 * or unsigned (then covered by the next signed one; at most {@link TSIG_MAX_UNSIGNED_MESSAGES}
 * in a row). A TSIG error in the response, another key, a wrong or short MAC, or a time outside
 * the window fails it. The caller also checks that the last message was signed (`verified`).
 */
export function createTsigResponseVerifier(
  key: TsigKey,
  requestMac: Uint8Array,
): TsigResponseVerifier {
  let prior = requestMac;
  let first = true;
  let pending: Uint8Array[] = [];
  return {
    verify(wire, now) {
      const split = splitTsig(wire);
      if (split.kind === 'malformed') return { kind: 'failed', reason: split.reason };
      if (split.kind === 'unsigned') {
        if (first) return { kind: 'failed', reason: 'the response is not signed' };
        if (pending.length >= TSIG_MAX_UNSIGNED_MESSAGES) {
          return {
            kind: 'failed',
            reason: `more than ${TSIG_MAX_UNSIGNED_MESSAGES} unsigned messages in a row`,
          };
        }
        pending.push(Uint8Array.from(wire));
        return { kind: 'unsigned', unsigned: wire };
      }
      const { tsig, unsigned } = split;
      if (tsig.keyName !== key.name || tsig.algorithm !== key.algorithm) {
        return { kind: 'failed', reason: `signed with key ${tsig.keyName}, not ${key.name}` };
      }
      if (tsig.error !== 0) {
        const name = Object.entries(TSIG_ERRORS).find(([, code]) => code === tsig.error)?.[0];
        return { kind: 'failed', reason: `the server answered TSIG error ${name ?? tsig.error}` };
      }
      if (tsig.mac.length !== HASHES[key.algorithm].octets) {
        return { kind: 'failed', reason: `a MAC of ${tsig.mac.length} octets` };
      }
      const expected = computeMac(key, [
        macPrefix(prior),
        ...pending,
        unsigned,
        first ? variables(tsig) : timers(tsig),
      ]);
      if (!macMatches(expected, tsig.mac)) return { kind: 'failed', reason: 'a wrong MAC' };
      if (!withinWindow(tsig, now))
        return { kind: 'failed', reason: 'signed outside the time window' };
      prior = tsig.mac;
      first = false;
      pending = [];
      return { kind: 'verified', unsigned };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Key files

/**
 * The text of a key file as `tsig-keygen` (BIND 9) writes it, which `dig -k`, `nsupdate -k` and
 * BIND's `include` read, and {@link parseTsigKeyFile} reads back:
 *
 * ```
 * key "xfr.example" {
 * 	algorithm hmac-sha256;
 * 	secret "3q2+7w…=";
 * };
 * ```
 */
export function formatTsigKeyFile(key: TsigKey): string {
  return [
    `key "${key.name}" {`,
    `\talgorithm ${key.algorithm};`,
    `\tsecret "${Buffer.from(key.secret).toString('base64')}";`,
    '};',
    '',
  ].join('\n');
}

/** Longest key file read: one key clause with comments. */
export const MAX_TSIG_KEY_FILE_OCTETS = 4096;

/**
 * Reads a key file of one `key` clause ({@link formatTsigKeyFile}; comments `#`, `//` and
 * `/* … *\/` allowed, as BIND's parser allows them). Throws {@link TsigError}
 * `ERR_TSIG_KEY_FILE` for anything else, and `ERR_TSIG_BAD_KEY` for a key
 * {@link createTsigKey} refuses.
 */
export function parseTsigKeyFile(text: string): TsigKey {
  if (text.length > MAX_TSIG_KEY_FILE_OCTETS) {
    throw new TsigError('ERR_TSIG_KEY_FILE', `a key file over ${MAX_TSIG_KEY_FILE_OCTETS} octets`);
  }
  // Comments end outside quoted strings only: a base64 secret may hold "//".
  const plain = text
    .replace(
      /("[^"\n]*")|\/\*[\s\S]*?\*\/|(?:#|\/\/)[^\n]*/g,
      (_, quoted?: string) => quoted ?? ' ',
    )
    .trim();
  const match =
    /^key\s+"?([^"\s{]+)"?\s*\{\s*(algorithm\s+[^;\s]+\s*;\s*secret\s+"[^"]*"\s*;|secret\s+"[^"]*"\s*;\s*algorithm\s+[^;\s]+\s*;)\s*\}\s*;$/.exec(
      plain,
    );
  if (match === null) {
    throw new TsigError(
      'ERR_TSIG_KEY_FILE',
      'expected one clause: key "<name>" { algorithm <hmac-sha256|hmac-sha512>; secret "<base64>"; };',
    );
  }
  const body = match[2] as string;
  const algorithm = (/algorithm\s+([^;\s]+)/.exec(body)?.[1] ?? '').toLowerCase();
  const secret = /secret\s+"([^"]*)"/.exec(body)?.[1] ?? '';
  return createTsigKey(match[1] as string, algorithm, decodeSecret(secret));
}

/**
 * The octets of a secret in base64 (RFC 4648 §4), strictly: padding as required, no other
 * characters. Throws {@link TsigError} `ERR_TSIG_BAD_KEY`.
 */
export function decodeSecret(base64: string): Uint8Array {
  const bytes = Buffer.from(base64, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || bytes.toString('base64') !== base64) {
    throw new TsigError('ERR_TSIG_BAD_KEY', 'the secret is not base64');
  }
  return new Uint8Array(bytes);
}

// ---------------------------------------------------------------------------------------------
// Octets

function readU16(bytes: Uint8Array, pos: number): number {
  return ((bytes[pos] as number) << 8) | (bytes[pos + 1] as number);
}

function readU32(bytes: Uint8Array, pos: number): number {
  return readU16(bytes, pos) * 0x10000 + readU16(bytes, pos + 2);
}

function writeU16(bytes: Uint8Array, pos: number, value: number): void {
  bytes[pos] = (value >>> 8) & 0xff;
  bytes[pos + 1] = value & 0xff;
}

function writeU32(bytes: Uint8Array, pos: number, value: number): void {
  writeU16(bytes, pos, Math.floor(value / 0x10000));
  writeU16(bytes, pos + 2, value % 0x10000);
}

function writeU48(bytes: Uint8Array, pos: number, value: number): void {
  writeU16(bytes, pos, Math.floor(value / 2 ** 32));
  writeU32(bytes, pos + 2, value % 2 ** 32);
}
