/**
 * The protocol pieces of the oblivious path that `@mimi-discovery/common` exports under these
 * names (Binary HTTP, Oblivious HTTP, Oblivious DoH, Privacy Pass tokens, the KEYCONF data and
 * the public-key file), held here until they are in common: every name and signature below is
 * the one common exports, so the gateway's imports point there unchanged once it does, and this
 * file goes.
 *
 * - Binary HTTP, RFC 9292: known-length (framing 0/1) and indeterminate-length (2/3) messages;
 *   encoders write known-length; informational (1xx) responses are skipped.
 * - Oblivious HTTP, RFC 9458 §4: HPKE DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.
 * - Oblivious DoH, RFC 9230 §6–7, with the same HPKE suite.
 * - Privacy Pass token type 2 (RFC 9577 §2, RFC 9578 §6): RSABSSA-SHA384-PSS-Deterministic.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  timingSafeEqual,
  verify as verifySignature,
  constants as cryptoConstants,
} from 'node:crypto';
import { Aes128Gcm, CipherSuite, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import { MimiError } from '@mimi-discovery/common';

// ---------------------------------------------------------------------------------------------
// Shared byte helpers

function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

function u16(value: number): Uint8Array {
  return Uint8Array.of(value >>> 8, value & 0xff);
}

function readU16(bytes: Uint8Array, at: number): number {
  return ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0);
}

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

function fromB64url(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text)) return undefined;
  return Uint8Array.from(Buffer.from(text, 'base64url'));
}

function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return Uint8Array.from(createHmac('sha256', salt).update(ikm).digest());
}

/** HKDF-Expand (RFC 5869 §2.3) for at most one SHA-256 block, all this file needs. */
function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const t = createHmac('sha256', prk).update(info).update(Uint8Array.of(1)).digest();
  return Uint8Array.from(t.subarray(0, length));
}

function aesGcmSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array) {
  const cipher = createCipheriv('aes-128-gcm', key, nonce);
  cipher.setAAD(aad);
  return concat(cipher.update(pt), cipher.final(), cipher.getAuthTag());
}

function aesGcmOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  ct: Uint8Array,
): Uint8Array | undefined {
  if (ct.length < AEAD_TAG_OCTETS) return undefined;
  try {
    const decipher = createDecipheriv('aes-128-gcm', key, nonce);
    decipher.setAAD(aad);
    decipher.setAuthTag(ct.subarray(ct.length - AEAD_TAG_OCTETS));
    return concat(decipher.update(ct.subarray(0, ct.length - AEAD_TAG_OCTETS)), decipher.final());
  } catch {
    return undefined;
  }
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/**
 * A copy of `bytes` in an ArrayBuffer of its own: a Node Buffer is a view into a shared pool,
 * whose `.buffer` (and whose `slice`, a view too) would hand HPKE the wrong octets.
 */
function arrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return new Uint8Array(bytes).buffer;
}

// ---------------------------------------------------------------------------------------------
// Binary HTTP (RFC 9292)

/** A request as Binary HTTP carries it (RFC 9292 §3.2). */
export interface BhttpRequest {
  method: string;
  scheme: string;
  authority: string;
  path: string;
  headers: [string, string][];
  body: Uint8Array;
}

/** A final response as Binary HTTP carries it (RFC 9292 §3.3); informational ones are skipped. */
export interface BhttpResponse {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
}

/** Bytes that are not a Binary HTTP message, or one over a limit. */
export class BhttpError extends MimiError<'ERR_BHTTP_MALFORMED' | 'ERR_BHTTP_TOO_LARGE'> {}

/** Most field lines in one field section (headers or trailers). */
export const MAX_BHTTP_FIELDS = 128;
/** Largest Binary HTTP message, encoded. */
export const MAX_BHTTP_MESSAGE_OCTETS = 1024 * 1024;

function varint(value: number): Uint8Array {
  if (value < 0x40) return Uint8Array.of(value);
  if (value < 0x4000) return Uint8Array.of(0x40 | (value >>> 8), value & 0xff);
  if (value < 0x40000000) {
    return Uint8Array.of(
      0x80 | (value >>> 24),
      (value >>> 16) & 0xff,
      (value >>> 8) & 0xff,
      value & 0xff,
    );
  }
  throw new BhttpError('ERR_BHTTP_TOO_LARGE', `${value} is too large for this encoder`);
}

function lengthPrefixed(bytes: Uint8Array): Uint8Array {
  return concat(varint(bytes.length), bytes);
}

function fieldSection(fields: readonly [string, string][]): Uint8Array {
  const lines = fields.map(([name, value]) =>
    concat(lengthPrefixed(text(name.toLowerCase())), lengthPrefixed(text(value))),
  );
  return lengthPrefixed(concat(...lines));
}

/** Encodes a known-length request (framing indicator 0). */
export function encodeBhttpRequest(request: BhttpRequest): Uint8Array {
  return concat(
    varint(0),
    lengthPrefixed(text(request.method)),
    lengthPrefixed(text(request.scheme)),
    lengthPrefixed(text(request.authority)),
    lengthPrefixed(text(request.path)),
    fieldSection(request.headers),
    lengthPrefixed(request.body),
    varint(0),
  );
}

/** Encodes a known-length final response (framing indicator 1). */
export function encodeBhttpResponse(response: BhttpResponse): Uint8Array {
  return concat(
    varint(1),
    varint(response.status),
    fieldSection(response.headers),
    lengthPrefixed(response.body),
    varint(0),
  );
}

/** A cursor over a message; running out of bytes where more are needed is malformed. */
class Reader {
  at = 0;
  constructor(readonly bytes: Uint8Array) {}
  get done(): boolean {
    return this.at >= this.bytes.length;
  }
  varint(): number {
    const first = this.bytes[this.at];
    if (first === undefined) throw truncated();
    const size = 1 << (first >>> 6);
    if (this.at + size > this.bytes.length) throw truncated();
    let value = first & 0x3f;
    for (let i = 1; i < size; i++) value = value * 256 + (this.bytes[this.at + i] as number);
    this.at += size;
    if (!Number.isSafeInteger(value)) throw malformed('a length is too large');
    return value;
  }
  take(length: number): Uint8Array {
    if (this.at + length > this.bytes.length) throw truncated();
    const out = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    return out;
  }
  prefixed(): Uint8Array {
    return this.take(this.varint());
  }
}

const truncated = (): BhttpError =>
  new BhttpError('ERR_BHTTP_MALFORMED', 'the Binary HTTP message is truncated');
const malformed = (why: string): BhttpError =>
  new BhttpError('ERR_BHTTP_MALFORMED', `malformed Binary HTTP message: ${why}`);

function decodeText(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw malformed('a field is not UTF-8');
  }
}

function readFieldLine(reader: Reader): [string, string] {
  return [decodeText(reader.prefixed()).toLowerCase(), decodeText(reader.prefixed())];
}

/** A field section: known-length (a length, then lines) or indeterminate (lines, then 0). */
function readFields(reader: Reader, known: boolean): [string, string][] {
  const fields: [string, string][] = [];
  const add = (line: [string, string]): void => {
    if (fields.length >= MAX_BHTTP_FIELDS) {
      throw new BhttpError('ERR_BHTTP_TOO_LARGE', `more than ${MAX_BHTTP_FIELDS} fields`);
    }
    fields.push(line);
  };
  if (known) {
    const section = new Reader(reader.prefixed());
    while (!section.done) add(readFieldLine(section));
    return fields;
  }
  for (;;) {
    const nameLength = reader.varint();
    if (nameLength === 0) return fields;
    add([decodeText(reader.take(nameLength)).toLowerCase(), decodeText(reader.prefixed())]);
  }
}

/** Content: known-length (one length) or indeterminate (chunks, then a 0). */
function readContent(reader: Reader, known: boolean): Uint8Array {
  if (known) return reader.prefixed();
  const chunks: Uint8Array[] = [];
  for (;;) {
    const length = reader.varint();
    if (length === 0) return concat(...chunks);
    chunks.push(reader.take(length));
  }
}

/** RFC 9292 §3.8: trailing sections may be cut off; what remains after them is zero padding. */
function readTail(reader: Reader, known: boolean): { body: Uint8Array } {
  if (reader.done) return { body: new Uint8Array() };
  const body = readContent(reader, known);
  if (!reader.done) readFields(reader, known);
  for (const octet of reader.bytes.subarray(reader.at)) {
    if (octet !== 0) throw malformed('octets after the message are not padding');
  }
  return { body };
}

function checkSize(bytes: Uint8Array): void {
  if (bytes.length > MAX_BHTTP_MESSAGE_OCTETS) {
    throw new BhttpError(
      'ERR_BHTTP_TOO_LARGE',
      `the message has ${bytes.length} octets; at most ${MAX_BHTTP_MESSAGE_OCTETS}`,
    );
  }
}

/** Decodes a request, known-length (0) or indeterminate-length (2). */
export function decodeBhttpRequest(bytes: Uint8Array): BhttpRequest {
  checkSize(bytes);
  const reader = new Reader(bytes);
  const framing = reader.varint();
  if (framing !== 0 && framing !== 2) throw malformed(`framing indicator ${framing}`);
  const known = framing === 0;
  const method = decodeText(reader.prefixed());
  const scheme = decodeText(reader.prefixed());
  const authority = decodeText(reader.prefixed());
  const path = decodeText(reader.prefixed());
  const headers = reader.done ? [] : readFields(reader, known);
  return { method, scheme, authority, path, headers, ...readTail(reader, known) };
}

/** Decodes a response, known-length (1) or indeterminate-length (3), skipping 1xx responses. */
export function decodeBhttpResponse(bytes: Uint8Array): BhttpResponse {
  checkSize(bytes);
  const reader = new Reader(bytes);
  const framing = reader.varint();
  if (framing !== 1 && framing !== 3) throw malformed(`framing indicator ${framing}`);
  const known = framing === 1;
  for (;;) {
    const status = reader.varint();
    if (status < 100 || status > 599) throw malformed(`status ${status}`);
    const headers = readFields(reader, known);
    if (status >= 200) return { status, headers, ...readTail(reader, known) };
  }
}

// ---------------------------------------------------------------------------------------------
// HPKE, the one suite of the oblivious path

const KEM_X25519 = 0x0020;
const KDF_HKDF_SHA256 = 0x0001;
const AEAD_AES_128_GCM = 0x0001;
const NENC = 32;
const NK = 16;
const NN = 12;
const AEAD_TAG_OCTETS = 16;

const suite = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Aes128Gcm(),
});

/** PKCS #8 prefix of a raw X25519 private key (RFC 8410 §7). */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

async function publicKeyOf(privateKey: Uint8Array): Promise<Uint8Array> {
  if (privateKey.length !== NENC) throw new RangeError('an X25519 private key has 32 octets');
  const key = createPrivateKey({
    key: Buffer.concat([X25519_PKCS8_PREFIX, privateKey]),
    format: 'der',
    type: 'pkcs8',
  });
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  return Uint8Array.from(Buffer.from(jwk.x ?? '', 'base64url'));
}

async function newPrivateKey(): Promise<Uint8Array> {
  const jwk = generateKeyPairSync('x25519').privateKey.export({ format: 'jwk' });
  return Uint8Array.from(Buffer.from(jwk.d ?? '', 'base64url'));
}

// ---------------------------------------------------------------------------------------------
// Oblivious HTTP (RFC 9458)

/** Media type of an encapsulated request (RFC 9458 §9.2). */
export const OHTTP_REQUEST_TYPE = 'message/ohttp-req';
/** Media type of an encapsulated response (RFC 9458 §9.3). */
export const OHTTP_RESPONSE_TYPE = 'message/ohttp-res';
/** Media type of a list of key configs (RFC 9540 §3). */
export const OHTTP_KEYS_TYPE = 'application/ohttp-keys';

/** One key configuration (RFC 9458 §3.1). */
export interface OhttpKeyConfig {
  keyId: number;
  kemId: number;
  publicKey: Uint8Array;
  suites: { kdfId: number; aeadId: number }[];
}

/** A key config and its private key. */
export interface OhttpKeyPair {
  config: OhttpKeyConfig;
  privateKey: Uint8Array;
}

/** The codes of an {@link OhttpError}. */
export type OhttpErrorCode = 'ERR_OHTTP_KEY_UNKNOWN' | 'ERR_OHTTP_MALFORMED' | 'ERR_OHTTP_DECRYPT';

/** An encapsulated message that cannot be opened, and why. */
export class OhttpError extends MimiError<OhttpErrorCode> {}

/** Encodes one key config (RFC 9458 §3.1). */
export function encodeKeyConfig(config: OhttpKeyConfig): Uint8Array {
  return concat(
    Uint8Array.of(config.keyId),
    u16(config.kemId),
    config.publicKey,
    u16(config.suites.length * 4),
    ...config.suites.map((s) => concat(u16(s.kdfId), u16(s.aeadId))),
  );
}

/** Decodes one key config. */
export function decodeKeyConfig(bytes: Uint8Array): OhttpKeyConfig {
  if (bytes.length < 3 + NENC + 2) throw new OhttpError('ERR_OHTTP_MALFORMED', 'short key config');
  const kemId = readU16(bytes, 1);
  if (kemId !== KEM_X25519) throw new OhttpError('ERR_OHTTP_MALFORMED', `KEM ${kemId}`);
  const length = readU16(bytes, 3 + NENC);
  const list = bytes.subarray(5 + NENC);
  if (length !== list.length || length % 4 !== 0 || length === 0) {
    throw new OhttpError('ERR_OHTTP_MALFORMED', 'bad symmetric algorithm list');
  }
  const suites: { kdfId: number; aeadId: number }[] = [];
  for (let at = 0; at < length; at += 4) {
    suites.push({ kdfId: readU16(list, at), aeadId: readU16(list, at + 2) });
  }
  return {
    keyId: bytes[0] as number,
    kemId,
    publicKey: Uint8Array.from(bytes.subarray(3, 3 + NENC)),
    suites,
  };
}

/** Encodes key configs as `application/ohttp-keys` (RFC 9540 §3: each prefixed by its length). */
export function encodeKeyConfigs(configs: readonly OhttpKeyConfig[]): Uint8Array {
  return concat(
    ...configs.map((c) => {
      const one = encodeKeyConfig(c);
      return concat(u16(one.length), one);
    }),
  );
}

/** Decodes `application/ohttp-keys`. */
export function decodeKeyConfigs(bytes: Uint8Array): OhttpKeyConfig[] {
  const configs: OhttpKeyConfig[] = [];
  for (let at = 0; at < bytes.length;) {
    const length = readU16(bytes, at);
    if (at + 2 + length > bytes.length) throw new OhttpError('ERR_OHTTP_MALFORMED', 'truncated');
    configs.push(decodeKeyConfig(bytes.subarray(at + 2, at + 2 + length)));
    at += 2 + length;
  }
  return configs;
}

function configFor(keyId: number, publicKey: Uint8Array): OhttpKeyConfig {
  return {
    keyId,
    kemId: KEM_X25519,
    publicKey,
    suites: [{ kdfId: KDF_HKDF_SHA256, aeadId: AEAD_AES_128_GCM }],
  };
}

/** A new key pair with key id `keyId` (0–255). */
export async function generateOhttpKeyPair(keyId: number): Promise<OhttpKeyPair> {
  return ohttpKeyPairFromPrivate(keyId, await newPrivateKey());
}

/** The key pair of a stored private key. */
export async function ohttpKeyPairFromPrivate(
  keyId: number,
  privateKey: Uint8Array,
): Promise<OhttpKeyPair> {
  return { config: configFor(keyId, await publicKeyOf(privateKey)), privateKey };
}

/** What the gateway keeps of a request to encapsulate its response (RFC 9458 §4.4). */
interface OhttpServerContext {
  readonly enc: Uint8Array;
  readonly secret: Uint8Array;
}

/** What a client keeps of its request to open the response. */
interface OhttpClientContext {
  readonly enc: Uint8Array;
  readonly secret: Uint8Array;
}

function requestHeader(keyId: number): Uint8Array {
  return concat(Uint8Array.of(keyId), u16(KEM_X25519), u16(KDF_HKDF_SHA256), u16(AEAD_AES_128_GCM));
}

const REQUEST_LABEL = text('message/bhttp request');
const RESPONSE_LABEL = text('message/bhttp response');

/** Encapsulates a Binary HTTP request to `config` (RFC 9458 §4.3). */
export async function encapsulateRequest(
  config: OhttpKeyConfig,
  request: Uint8Array,
  fixed?: { ikmE?: Uint8Array },
): Promise<{ message: Uint8Array; context: OhttpClientContext }> {
  const hdr = requestHeader(config.keyId);
  const info = concat(REQUEST_LABEL, Uint8Array.of(0), hdr);
  const recipientPublicKey = await suite.kem.deserializePublicKey(config.publicKey);
  const sender = await suite.createSenderContext({
    recipientPublicKey,
    info,
    ...(fixed?.ikmE === undefined ? {} : { ekm: await suite.kem.deriveKeyPair(fixed.ikmE) }),
  });
  const enc = new Uint8Array(sender.enc);
  const ct = new Uint8Array(await sender.seal(arrayBuffer(request)));
  const secret = new Uint8Array(await sender.export(arrayBuffer(RESPONSE_LABEL), NK));
  return { message: concat(hdr, enc, ct), context: { enc, secret } };
}

/** Opens an encapsulated request with one of `keys`, by its key id (RFC 9458 §4.3). */
export async function decapsulateRequest(
  keys: readonly OhttpKeyPair[],
  message: Uint8Array,
): Promise<{ request: Uint8Array; context: OhttpServerContext }> {
  if (message.length < 7 + NENC + AEAD_TAG_OCTETS) {
    throw new OhttpError('ERR_OHTTP_MALFORMED', 'the encapsulated request is too short');
  }
  const keyId = message[0] as number;
  const key = keys.find((k) => k.config.keyId === keyId);
  if (key === undefined) throw new OhttpError('ERR_OHTTP_KEY_UNKNOWN', `no key with id ${keyId}`);
  const kem = readU16(message, 1);
  const kdf = readU16(message, 3);
  const aead = readU16(message, 5);
  if (
    kem !== key.config.kemId ||
    !key.config.suites.some((s) => s.kdfId === kdf && s.aeadId === aead)
  ) {
    throw new OhttpError('ERR_OHTTP_MALFORMED', 'the request names a suite this key does not have');
  }
  const hdr = message.subarray(0, 7);
  const enc = new Uint8Array(message.subarray(7, 7 + NENC));
  const ct = new Uint8Array(message.subarray(7 + NENC));
  const info = concat(REQUEST_LABEL, Uint8Array.of(0), hdr);
  try {
    const recipient = await suite.createRecipientContext({
      recipientKey: await suite.kem.deserializePrivateKey(arrayBuffer(key.privateKey)),
      enc: enc.buffer,
      info,
    });
    const request = new Uint8Array(await recipient.open(ct.buffer));
    const secret = new Uint8Array(await recipient.export(arrayBuffer(RESPONSE_LABEL), NK));
    return { request, context: { enc, secret } };
  } catch (cause) {
    throw new OhttpError('ERR_OHTTP_DECRYPT', 'the encapsulated request does not open', { cause });
  }
}

function responseKeys(
  secret: Uint8Array,
  salt: Uint8Array,
  keyLabel: string,
  nonceLabel: string,
): { key: Uint8Array; nonce: Uint8Array } {
  const prk = hkdfExtract(salt, secret);
  return { key: hkdfExpand(prk, text(keyLabel), NK), nonce: hkdfExpand(prk, text(nonceLabel), NN) };
}

/** Encapsulates the Binary HTTP response to a request (RFC 9458 §4.4). */
export async function encapsulateResponse(
  context: OhttpServerContext,
  response: Uint8Array,
  fixed?: { responseNonce?: Uint8Array },
): Promise<Uint8Array> {
  const responseNonce = fixed?.responseNonce ?? Uint8Array.from(randomBytes(Math.max(NN, NK)));
  const { key, nonce } = responseKeys(
    context.secret,
    concat(context.enc, responseNonce),
    'key',
    'nonce',
  );
  return concat(responseNonce, aesGcmSeal(key, nonce, new Uint8Array(), response));
}

/** Opens the encapsulated response to a request this client sent. */
export async function decapsulateResponse(
  context: OhttpClientContext,
  message: Uint8Array,
): Promise<Uint8Array> {
  const size = Math.max(NN, NK);
  if (message.length < size + AEAD_TAG_OCTETS) {
    throw new OhttpError('ERR_OHTTP_MALFORMED', 'the encapsulated response is too short');
  }
  const { key, nonce } = responseKeys(
    context.secret,
    concat(context.enc, message.subarray(0, size)),
    'key',
    'nonce',
  );
  const opened = aesGcmOpen(key, nonce, new Uint8Array(), message.subarray(size));
  if (opened === undefined) throw new OhttpError('ERR_OHTTP_DECRYPT', 'the response does not open');
  return opened;
}

// ---------------------------------------------------------------------------------------------
// Oblivious DoH (RFC 9230)

/** Media type of an ODoH message (RFC 9230 §4.1). */
export const ODOH_CONTENT_TYPE = 'application/oblivious-dns-message';

const ODOH_VERSION = 0x0001;
const ODOH_QUERY = 0x01;
const ODOH_RESPONSE = 0x02;
/** RFC 8467 block sizes, as `protocol/padding.ts` of common. */
const ODOH_QUERY_BLOCK = 128;
const ODOH_RESPONSE_BLOCK = 468;

/** The contents of an ObliviousDoHConfig (RFC 9230 §6.1). */
export interface OdohConfig {
  kemId: number;
  kdfId: number;
  aeadId: number;
  publicKey: Uint8Array;
}

/** An ODoH config and its private key. */
export interface OdohKeyPair {
  config: OdohConfig;
  privateKey: Uint8Array;
}

/** The codes of an {@link OdohError}. */
export type OdohErrorCode = 'ERR_ODOH_KEY_UNKNOWN' | 'ERR_ODOH_MALFORMED' | 'ERR_ODOH_DECRYPT';

/** An ODoH message or config that cannot be used, and why. */
export class OdohError extends MimiError<OdohErrorCode> {}

function odohContents(config: OdohConfig): Uint8Array {
  return concat(
    u16(config.kemId),
    u16(config.kdfId),
    u16(config.aeadId),
    u16(config.publicKey.length),
    config.publicKey,
  );
}

/** One ObliviousDoHConfig: version, length, contents. */
export function encodeOdohConfig(config: OdohConfig): Uint8Array {
  const contents = odohContents(config);
  return concat(u16(ODOH_VERSION), u16(contents.length), contents);
}

/** Decodes one ObliviousDoHConfig of version 1. */
export function decodeOdohConfig(bytes: Uint8Array): OdohConfig {
  if (bytes.length < 12 || readU16(bytes, 0) !== ODOH_VERSION) {
    throw new OdohError('ERR_ODOH_MALFORMED', 'not an ObliviousDoHConfig of version 1');
  }
  const contents = bytes.subarray(4);
  if (readU16(bytes, 2) !== contents.length) throw new OdohError('ERR_ODOH_MALFORMED', 'length');
  const keyLength = readU16(contents, 6);
  if (contents.length !== 8 + keyLength) throw new OdohError('ERR_ODOH_MALFORMED', 'key length');
  return {
    kemId: readU16(contents, 0),
    kdfId: readU16(contents, 2),
    aeadId: readU16(contents, 4),
    publicKey: Uint8Array.from(contents.subarray(8)),
  };
}

/** ObliviousDoHConfigs: a length, then each config (RFC 9230 §6.1). */
export function encodeOdohConfigs(configs: readonly OdohConfig[]): Uint8Array {
  const all = concat(...configs.map(encodeOdohConfig));
  return concat(u16(all.length), all);
}

/** Decodes ObliviousDoHConfigs, keeping the configs of version 1. */
export function decodeOdohConfigs(bytes: Uint8Array): OdohConfig[] {
  if (bytes.length < 2 || readU16(bytes, 0) !== bytes.length - 2) {
    throw new OdohError('ERR_ODOH_MALFORMED', 'bad ObliviousDoHConfigs length');
  }
  const out: OdohConfig[] = [];
  for (let at = 2; at < bytes.length;) {
    const length = readU16(bytes, at + 2);
    const one = bytes.subarray(at, at + 4 + length);
    if (readU16(one, 0) === ODOH_VERSION) out.push(decodeOdohConfig(one));
    at += 4 + length;
  }
  return out;
}

/** The key id of a config (RFC 9230 §6.2): Expand(Extract("", contents), "odoh key id", Nh). */
export function odohKeyId(config: OdohConfig): Uint8Array {
  return hkdfExpand(hkdfExtract(new Uint8Array(), odohContents(config)), text('odoh key id'), 32);
}

/** A new ODoH key pair. */
export async function generateOdohKeyPair(): Promise<OdohKeyPair> {
  return odohKeyPairFromPrivate(await newPrivateKey());
}

/** The ODoH key pair of a stored private key. */
export async function odohKeyPairFromPrivate(privateKey: Uint8Array): Promise<OdohKeyPair> {
  return {
    config: {
      kemId: KEM_X25519,
      kdfId: KDF_HKDF_SHA256,
      aeadId: AEAD_AES_128_GCM,
      publicKey: await publicKeyOf(privateKey),
    },
    privateKey,
  };
}

function odohMessage(type: number, keyId: Uint8Array, encrypted: Uint8Array): Uint8Array {
  return concat(Uint8Array.of(type), u16(keyId.length), keyId, u16(encrypted.length), encrypted);
}

function parseOdohMessage(
  bytes: Uint8Array,
  type: number,
): { keyId: Uint8Array; encrypted: Uint8Array } {
  if (bytes.length < 5 || bytes[0] !== type) {
    throw new OdohError('ERR_ODOH_MALFORMED', 'not an ObliviousDoHMessage of the right type');
  }
  const keyLength = readU16(bytes, 1);
  const keyId = bytes.subarray(3, 3 + keyLength);
  const at = 3 + keyLength;
  const length = readU16(bytes, at);
  const encrypted = bytes.subarray(at + 2);
  if (encrypted.length !== length || length === 0) {
    throw new OdohError('ERR_ODOH_MALFORMED', 'bad ObliviousDoHMessage length');
  }
  return { keyId, encrypted };
}

/** dns_message and zero padding to `block` (RFC 9230 §6.3, RFC 8467 block policy). */
function odohPlaintext(dns: Uint8Array, block: number): Uint8Array {
  const size = 4 + dns.length;
  const padding = (block - (size % block)) % block;
  return concat(u16(dns.length), dns, u16(padding), new Uint8Array(padding));
}

function odohDnsMessage(plain: Uint8Array): Uint8Array {
  const length = readU16(plain, 0);
  if (plain.length < 4 + length || length === 0) {
    throw new OdohError('ERR_ODOH_MALFORMED', 'bad plaintext');
  }
  const dns = Uint8Array.from(plain.subarray(2, 2 + length));
  const padLength = readU16(plain, 2 + length);
  const padding = plain.subarray(4 + length);
  if (padding.length !== padLength || padding.some((o) => o !== 0)) {
    throw new OdohError('ERR_ODOH_MALFORMED', 'the padding is not zeros');
  }
  return dns;
}

/** What one side keeps of a query to handle its response. */
interface OdohContext {
  readonly plaintext: Uint8Array;
  readonly secret: Uint8Array;
}

/** Encrypts a DNS query to `config` (RFC 9230 §6.4). */
export async function encryptOdohQuery(
  config: OdohConfig,
  query: Uint8Array,
  fixed?: { ikmE?: Uint8Array },
): Promise<{ message: Uint8Array; context: OdohContext }> {
  const keyId = odohKeyId(config);
  const plaintext = odohPlaintext(query, ODOH_QUERY_BLOCK);
  const aad = concat(Uint8Array.of(ODOH_QUERY), u16(keyId.length), keyId);
  const sender = await suite.createSenderContext({
    recipientPublicKey: await suite.kem.deserializePublicKey(config.publicKey),
    info: text('odoh query'),
    ...(fixed?.ikmE === undefined ? {} : { ekm: await suite.kem.deriveKeyPair(fixed.ikmE) }),
  });
  const ct = new Uint8Array(await sender.seal(arrayBuffer(plaintext), arrayBuffer(aad)));
  const secret = new Uint8Array(await sender.export(arrayBuffer(text('odoh response')), NK));
  return {
    message: odohMessage(ODOH_QUERY, keyId, concat(new Uint8Array(sender.enc), ct)),
    context: { plaintext, secret },
  };
}

/** Decrypts a query with the key its key id names (RFC 9230 §6.5). */
export async function decryptOdohQuery(
  keys: readonly OdohKeyPair[],
  message: Uint8Array,
): Promise<{ query: Uint8Array; context: OdohContext }> {
  const { keyId, encrypted } = parseOdohMessage(message, ODOH_QUERY);
  const key = keys.find((k) => Buffer.from(odohKeyId(k.config)).equals(keyId));
  if (key === undefined) throw new OdohError('ERR_ODOH_KEY_UNKNOWN', 'no key with this key id');
  if (encrypted.length < NENC + AEAD_TAG_OCTETS) {
    throw new OdohError('ERR_ODOH_MALFORMED', 'the encrypted query is too short');
  }
  const aad = concat(Uint8Array.of(ODOH_QUERY), u16(keyId.length), keyId);
  let plaintext: Uint8Array;
  let secret: Uint8Array;
  try {
    const recipient = await suite.createRecipientContext({
      recipientKey: await suite.kem.deserializePrivateKey(arrayBuffer(key.privateKey)),
      enc: arrayBuffer(encrypted.subarray(0, NENC)),
      info: text('odoh query'),
    });
    plaintext = new Uint8Array(
      await recipient.open(arrayBuffer(encrypted.subarray(NENC)), arrayBuffer(aad)),
    );
    secret = new Uint8Array(await recipient.export(arrayBuffer(text('odoh response')), NK));
  } catch (cause) {
    throw new OdohError('ERR_ODOH_DECRYPT', 'the query does not open', { cause });
  }
  return { query: odohDnsMessage(plaintext), context: { plaintext, secret } };
}

function odohResponseKeys(context: OdohContext, responseNonce: Uint8Array) {
  const salt = concat(context.plaintext, u16(responseNonce.length), responseNonce);
  return responseKeys(context.secret, salt, 'odoh key', 'odoh nonce');
}

/** Encrypts the response to a query (RFC 9230 §6.6). */
export async function encryptOdohResponse(
  context: OdohContext,
  response: Uint8Array,
  fixed?: { responseNonce?: Uint8Array },
): Promise<Uint8Array> {
  const responseNonce = fixed?.responseNonce ?? Uint8Array.from(randomBytes(Math.max(NN, NK)));
  const { key, nonce } = odohResponseKeys(context, responseNonce);
  const aad = concat(Uint8Array.of(ODOH_RESPONSE), u16(responseNonce.length), responseNonce);
  const ct = aesGcmSeal(key, nonce, aad, odohPlaintext(response, ODOH_RESPONSE_BLOCK));
  return odohMessage(ODOH_RESPONSE, responseNonce, ct);
}

/** Decrypts the response to a query this client sent. */
export async function decryptOdohResponse(
  context: OdohContext,
  message: Uint8Array,
): Promise<Uint8Array> {
  const { keyId: responseNonce, encrypted } = parseOdohMessage(message, ODOH_RESPONSE);
  const { key, nonce } = odohResponseKeys(context, responseNonce);
  const aad = concat(Uint8Array.of(ODOH_RESPONSE), u16(responseNonce.length), responseNonce);
  const plain = aesGcmOpen(key, nonce, aad, encrypted);
  if (plain === undefined) throw new OdohError('ERR_ODOH_DECRYPT', 'the response does not open');
  return odohDnsMessage(plain);
}

// ---------------------------------------------------------------------------------------------
// Privacy Pass tokens (RFC 9577, RFC 9578)

/** Token type 2: publicly verifiable, RSABSSA-SHA384-PSS-Deterministic (RFC 9578 §6). */
export const TOKEN_TYPE_BLIND_RSA = 2;
/** EDNS(0) option code of a token inside an ODoH query (local/experimental range, RFC 6891 §9). */
export const PRIVATE_TOKEN_EDNS_OPTION = 65001;

/** An issuer's token key. */
export interface TokenKey {
  /** SHA-256 of the SPKI: the token_key_id (RFC 9578 §6.5). */
  id: Uint8Array;
  spki: Uint8Array;
  notBefore: number;
  notAfter: number;
}

/** The codes of a {@link TokenError}. */
export type TokenErrorCode =
  | 'ERR_TOKEN_MALFORMED'
  | 'ERR_TOKEN_KEY_UNKNOWN'
  | 'ERR_TOKEN_KEY_EXPIRED'
  | 'ERR_TOKEN_CHALLENGE'
  | 'ERR_TOKEN_INVALID';

/** A token, header or key that does not verify, and why. */
export class TokenError extends MimiError<TokenErrorCode> {}

/** Token length: type 2, nonce 32, challenge digest 32, key id 32, authenticator 256. */
const TOKEN_OCTETS = 2 + 32 + 32 + 32 + 256;

/** A token key from its SPKI. */
export function tokenKeyFromSpki(spki: Uint8Array, notBefore: number, notAfter: number): TokenKey {
  return {
    id: Uint8Array.from(createHash('sha256').update(spki).digest()),
    spki,
    notBefore,
    notAfter,
  };
}

/** A TokenChallenge (RFC 9577 §2.1) for token type 2, empty redemption context. */
export function tokenChallenge(issuerName: string, originName: string): Uint8Array {
  const issuer = text(issuerName);
  const origin = text(originName);
  return concat(
    u16(TOKEN_TYPE_BLIND_RSA),
    u16(issuer.length),
    issuer,
    Uint8Array.of(0),
    u16(origin.length),
    origin,
  );
}

/** One `WWW-Authenticate: PrivateToken` challenge (RFC 9577 §2.1). */
export function challengeHeader(challenge: Uint8Array, key: TokenKey): string {
  return `PrivateToken challenge="${b64url(challenge)}", token-key="${b64url(key.spki)}"`;
}

function authParams(value: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const match of value.matchAll(/([A-Za-z-]+)\s*=\s*(?:"([^"]*)"|([^\s,]+))/g)) {
    params.set((match[1] as string).toLowerCase(), match[2] ?? match[3] ?? '');
  }
  return params;
}

/** The PrivateToken challenges of a `WWW-Authenticate` value. */
export function parseChallengeHeader(
  value: string,
): { challenge: Uint8Array; issuerName: string; originInfo: string[]; tokenKey: Uint8Array }[] {
  const out = [];
  for (const part of value.split(/(?=PrivateToken\s)/i)) {
    if (!/^PrivateToken\s/i.test(part.trim())) continue;
    const params = authParams(part);
    const challenge = fromB64url(params.get('challenge') ?? '');
    const tokenKey = fromB64url(params.get('token-key') ?? '');
    if (challenge === undefined || tokenKey === undefined || challenge.length < 5) {
      throw new TokenError('ERR_TOKEN_CHALLENGE', 'a PrivateToken challenge is malformed');
    }
    const issuerLength = readU16(challenge, 2);
    const issuerName = Buffer.from(challenge.subarray(4, 4 + issuerLength)).toString('utf8');
    let at = 4 + issuerLength;
    at += 1 + (challenge[at] ?? 0);
    const originLength = readU16(challenge, at);
    const origins = Buffer.from(challenge.subarray(at + 2, at + 2 + originLength)).toString('utf8');
    out.push({
      challenge,
      issuerName,
      originInfo: origins === '' ? [] : origins.split(' '),
      tokenKey,
    });
  }
  return out;
}

/** An `Authorization: PrivateToken token="…"` value (RFC 9577 §2.2). */
export function authorizationHeader(token: Uint8Array): string {
  return `PrivateToken token="${b64url(token)}"`;
}

/** The token of an `Authorization` value; throws `ERR_TOKEN_MALFORMED`. */
export function parseAuthorizationHeader(value: string): Uint8Array {
  if (!/^PrivateToken\s/i.test(value.trim())) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'the authorization scheme is not PrivateToken');
  }
  const token = fromB64url(authParams(value).get('token') ?? '');
  if (token === undefined || token.length === 0) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'no token in the authorization header');
  }
  return token;
}

/**
 * Verifies a type-2 token against `challenge` and `keys` at `nowS` (RFC 9578 §6.4): its
 * challenge digest, a key with this key id whose not-before ≤ now < not-after, and its
 * RSASSA-PSS signature (SHA-384, salt 48) over the first 98 octets.
 */
export async function verifyToken(
  token: Uint8Array,
  challenge: Uint8Array,
  keys: readonly TokenKey[],
  nowS: number,
): Promise<{ keyId: Uint8Array; spentId: Uint8Array }> {
  if (token.length !== TOKEN_OCTETS || readU16(token, 0) !== TOKEN_TYPE_BLIND_RSA) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'not a token of type 2');
  }
  const digest = createHash('sha256').update(challenge).digest();
  if (!timingSafeEqual(digest, token.subarray(34, 66))) {
    throw new TokenError('ERR_TOKEN_CHALLENGE', 'the token is for another challenge');
  }
  const keyId = Uint8Array.from(token.subarray(66, 98));
  const key = keys.find((k) => Buffer.from(k.id).equals(keyId));
  if (key === undefined) throw new TokenError('ERR_TOKEN_KEY_UNKNOWN', 'no key with this id');
  if (nowS < key.notBefore || nowS >= key.notAfter) {
    throw new TokenError('ERR_TOKEN_KEY_EXPIRED', 'the token key is not valid now');
  }
  let ok: boolean;
  try {
    ok = verifySignature(
      'sha384',
      token.subarray(0, 98),
      {
        key: createPublicKey({ key: Buffer.from(key.spki), format: 'der', type: 'spki' }),
        padding: cryptoConstants.RSA_PKCS1_PSS_PADDING,
        saltLength: 48,
      },
      token.subarray(98),
    );
  } catch (cause) {
    throw new TokenError('ERR_TOKEN_INVALID', 'the token does not verify', { cause });
  }
  if (!ok) throw new TokenError('ERR_TOKEN_INVALID', 'the token signature does not verify');
  return { keyId, spentId: Uint8Array.from(createHash('sha256').update(token).digest()) };
}

// ---------------------------------------------------------------------------------------------
// KEYCONF and the public-key file (design §4 of the contract)

/** Private-use type KEYCONF: a key config published in the tree. */
export const RR_TYPE_KEYCONF = 65403;

/** The data of a KEYCONF record: one key of a service, with its validity. */
export interface KeyconfData {
  kind: 'ohttp' | 'odoh' | 'private-token';
  /** ohttp: an RFC 9458 key config; odoh: an ObliviousDoHConfig; private-token: an SPKI. */
  config: Uint8Array;
  notBefore: number;
  notAfter: number;
}

const KINDS: readonly KeyconfData['kind'][] = ['ohttp', 'odoh', 'private-token'];

/** The public-key file: `{ "version": 1, "keys": [ … ] }`, configs in base64url. */
export function encodePublicKeyFile(keys: readonly KeyconfData[]): string {
  return `${JSON.stringify(
    {
      version: 1,
      keys: keys.map((k) => ({
        kind: k.kind,
        config: b64url(k.config),
        notBefore: k.notBefore,
        notAfter: k.notAfter,
      })),
    },
    null,
    2,
  )}\n`;
}

/** Parses a public-key file; throws `Error` naming what is wrong. */
export function parsePublicKeyFile(content: string): KeyconfData[] {
  const value = JSON.parse(content) as unknown;
  if (typeof value !== 'object' || value === null) throw new Error('not a JSON object');
  const file = value as { version?: unknown; keys?: unknown };
  if (file.version !== 1 || !Array.isArray(file.keys)) {
    throw new Error('expected {"version": 1, "keys": [...]}');
  }
  return file.keys.map((entry: unknown, i) => {
    const k = (entry ?? {}) as Record<string, unknown>;
    const config = typeof k['config'] === 'string' ? fromB64url(k['config']) : undefined;
    const { notBefore, notAfter } = k;
    if (
      !KINDS.includes(k['kind'] as KeyconfData['kind']) ||
      config === undefined ||
      !Number.isSafeInteger(notBefore) ||
      !Number.isSafeInteger(notAfter)
    ) {
      throw new Error(`keys[${i}] is not {kind, config, notBefore, notAfter}`);
    }
    return {
      kind: k['kind'] as KeyconfData['kind'],
      config,
      notBefore: notBefore as number,
      notAfter: notAfter as number,
    };
  });
}
