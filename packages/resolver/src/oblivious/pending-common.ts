import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { Aes128Gcm, CipherSuite, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import { TokenChallenge, publicVerif } from '@cloudflare/privacypass-ts';
import { MimiError, decodeCbor, type RRType } from '@mimi-discovery/common';

/**
 * The protocol pieces of the oblivious path that the client needs from `@mimi-discovery/common`
 * (the issue 13 contract: `protocol/bhttp.ts`, `ohttp.ts`, `private-token.ts` and the KEYCONF
 * record type), under the contract's names and signatures. This module stands in for them until
 * those modules land; then it is deleted and its importers import the same names from
 * `@mimi-discovery/common`. Nothing here opens a socket or reads a clock.
 *
 * - Binary HTTP (RFC 9292): known-length encoding, decoding of known- and indeterminate-length
 *   messages, informational responses skipped.
 * - Oblivious HTTP (RFC 9458): key configurations (§3, RFC 9540 §3 for the list), request and
 *   response encapsulation (§4.3, §4.4) with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
 *   AES-128-GCM.
 * - Privacy Pass (RFC 9577, RFC 9578 token type 2): the challenge, the headers, and a client's
 *   token request and its finalization, over `@cloudflare/privacypass-ts`.
 * - KEYCONF (private type 65403): its RDATA as data.
 */

// ---------------------------------------------------------------------------------------------
// QUIC variable-length integers (RFC 9000 §16), used throughout Binary HTTP

function varintLength(value: number): number {
  if (value < 0x40) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x40000000) return 4;
  return 8;
}

function writeVarint(out: number[], value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new BhttpError('not a length: ' + value);
  const length = varintLength(value);
  const prefix = { 1: 0, 2: 1, 4: 2, 8: 3 }[length] as number;
  let v = BigInt(value);
  const bytes: number[] = [];
  for (let i = 0; i < length; i++) {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  bytes[0] = ((bytes[0] as number) & 0x3f) | (prefix << 6);
  out.push(...bytes);
}

/** A cursor over bytes that refuses to read past the end. */
class Reader {
  offset = 0;
  constructor(readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.offset >= this.bytes.length;
  }

  varint(): number {
    const first = this.byte();
    const length = 1 << (first >> 6);
    let value = BigInt(first & 0x3f);
    for (let i = 1; i < length; i++) value = (value << 8n) | BigInt(this.byte());
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new BhttpError('a length is too large');
    return Number(value);
  }

  byte(): number {
    const b = this.bytes[this.offset];
    if (b === undefined) throw new BhttpError('the message is truncated');
    this.offset += 1;
    return b;
  }

  take(length: number): Uint8Array {
    if (this.offset + length > this.bytes.length) {
      throw new BhttpError('the message is truncated');
    }
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Binary HTTP (RFC 9292)

/** Most field lines in one field section (headers or trailers) that a decoder accepts. */
export const MAX_BHTTP_FIELDS = 128;
/** Largest Binary HTTP message encoded or decoded, in octets. */
export const MAX_BHTTP_MESSAGE_OCTETS = 16 * 1024 * 1024;

/** A Binary HTTP message that does not decode, or a value that cannot be encoded. */
export class BhttpError extends MimiError<'ERR_BHTTP_MALFORMED'> {
  constructor(message: string) {
    super('ERR_BHTTP_MALFORMED', message);
  }
}

/** An HTTP request as Binary HTTP carries it (RFC 9292 §3.4 request control data). */
export interface BhttpRequest {
  method: string;
  scheme: string;
  authority: string;
  path: string;
  /** Field lines in order, names lowercase. */
  headers: [string, string][];
  body: Uint8Array;
}

/** A final HTTP response as Binary HTTP carries it; informational responses are skipped. */
export interface BhttpResponse {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
}

const utf8 = new TextEncoder();
const text = new TextDecoder('utf-8', { fatal: true });

function writeBytes(out: number[], bytes: Uint8Array): void {
  writeVarint(out, bytes.length);
  for (const b of bytes) out.push(b);
}

function writeFields(out: number[], fields: readonly [string, string][]): void {
  const section: number[] = [];
  for (const [name, value] of fields) {
    writeBytes(section, utf8.encode(name.toLowerCase()));
    writeBytes(section, utf8.encode(value));
  }
  writeVarint(out, section.length);
  for (const b of section) out.push(b);
}

function finish(out: number[]): Uint8Array {
  if (out.length > MAX_BHTTP_MESSAGE_OCTETS) {
    throw new BhttpError(`the message is over ${MAX_BHTTP_MESSAGE_OCTETS} octets`);
  }
  return Uint8Array.from(out);
}

/** A request as a known-length Binary HTTP message (RFC 9292 §3.1, framing indicator 0). */
export function encodeBhttpRequest(request: BhttpRequest): Uint8Array {
  const out: number[] = [];
  writeVarint(out, 0);
  for (const part of [request.method, request.scheme, request.authority, request.path]) {
    writeBytes(out, utf8.encode(part));
  }
  writeFields(out, request.headers);
  writeBytes(out, request.body);
  writeVarint(out, 0); // no trailers
  return finish(out);
}

/** A response as a known-length Binary HTTP message (RFC 9292 §3.1, framing indicator 1). */
export function encodeBhttpResponse(response: BhttpResponse): Uint8Array {
  if (!Number.isInteger(response.status) || response.status < 200 || response.status > 599) {
    throw new BhttpError(`not a final status: ${response.status}`);
  }
  const out: number[] = [];
  writeVarint(out, 1);
  writeVarint(out, response.status);
  writeFields(out, response.headers);
  writeBytes(out, response.body);
  writeVarint(out, 0);
  return finish(out);
}

function readString(reader: Reader): string {
  try {
    return text.decode(reader.take(reader.varint()));
  } catch (error) {
    if (error instanceof BhttpError) throw error;
    throw new BhttpError('a string is not UTF-8');
  }
}

/**
 * A field section: known-length (a length, then field lines) or indeterminate-length (field
 * lines up to a name of length 0). A section that the message ends before is empty (§3.8).
 */
function readFields(reader: Reader, indeterminate: boolean): [string, string][] {
  if (reader.done) return [];
  const fields: [string, string][] = [];
  const line = (r: Reader): boolean => {
    const nameLength = r.varint();
    if (nameLength === 0) return false;
    const name = text.decode(r.take(nameLength));
    const value = readString(r);
    if (fields.length >= MAX_BHTTP_FIELDS) {
      throw new BhttpError(`more than ${MAX_BHTTP_FIELDS} field lines`);
    }
    fields.push([name.toLowerCase(), value]);
    return true;
  };
  if (indeterminate) {
    while (line(reader));
    return fields;
  }
  const section = new Reader(reader.take(reader.varint()));
  while (!section.done) {
    if (!line(section)) throw new BhttpError('a field name is empty');
  }
  return fields;
}

function readContent(reader: Reader, indeterminate: boolean): Uint8Array {
  if (reader.done) return new Uint8Array(0);
  if (!indeterminate) return Uint8Array.from(reader.take(reader.varint()));
  const chunks: Uint8Array[] = [];
  for (;;) {
    const length = reader.varint();
    if (length === 0) break;
    chunks.push(reader.take(length));
  }
  return Uint8Array.from(Buffer.concat(chunks));
}

/** The rest must be padding: zeros only (RFC 9292 §3.8). */
function readPadding(reader: Reader): void {
  while (!reader.done) {
    if (reader.byte() !== 0) throw new BhttpError('trailing octets after the message');
  }
}

function framing(reader: Reader, request: boolean): boolean {
  const indicator = reader.varint();
  if (indicator === (request ? 0 : 1)) return false;
  if (indicator === (request ? 2 : 3)) return true;
  throw new BhttpError(
    `framing indicator ${indicator} is not a ${request ? 'request' : 'response'}`,
  );
}

function checkSize(message: Uint8Array): void {
  if (message.length > MAX_BHTTP_MESSAGE_OCTETS) {
    throw new BhttpError(`the message is over ${MAX_BHTTP_MESSAGE_OCTETS} octets`);
  }
}

/** A request from Binary HTTP, known- or indeterminate-length. */
export function decodeBhttpRequest(message: Uint8Array): BhttpRequest {
  checkSize(message);
  const reader = new Reader(message);
  const indeterminate = framing(reader, true);
  const method = readString(reader);
  const scheme = readString(reader);
  const authority = readString(reader);
  const path = readString(reader);
  const headers = readFields(reader, indeterminate);
  const body = readContent(reader, indeterminate);
  readFields(reader, indeterminate);
  readPadding(reader);
  return { method, scheme, authority, path, headers, body };
}

/** The final response of a Binary HTTP response message; 1xx responses before it are skipped. */
export function decodeBhttpResponse(message: Uint8Array): BhttpResponse {
  checkSize(message);
  const reader = new Reader(message);
  const indeterminate = framing(reader, false);
  let status = reader.varint();
  let informational = 0;
  while (status >= 100 && status <= 199) {
    // RFC 9292 §3.5.1: informational responses carry a field section and no content.
    readFields(reader, indeterminate);
    if (++informational > MAX_BHTTP_FIELDS) throw new BhttpError('too many 1xx responses');
    status = reader.varint();
  }
  if (status < 200 || status > 599) throw new BhttpError(`status ${status} is not final`);
  const headers = readFields(reader, indeterminate);
  const body = readContent(reader, indeterminate);
  readFields(reader, indeterminate);
  readPadding(reader);
  return { status, headers, body };
}

// ---------------------------------------------------------------------------------------------
// Oblivious HTTP (RFC 9458, RFC 9540)

/** Media type of an encapsulated request (RFC 9458 §9.1). */
export const OHTTP_REQUEST_TYPE = 'message/ohttp-req';
/** Media type of an encapsulated response (RFC 9458 §9.2). */
export const OHTTP_RESPONSE_TYPE = 'message/ohttp-res';
/** Media type of a list of key configurations (RFC 9540 §3). */
export const OHTTP_KEYS_TYPE = 'application/ohttp-keys';

const KEM_X25519 = 0x0020;
const KDF_HKDF_SHA256 = 0x0001;
const AEAD_AES_128_GCM = 0x0001;
const NPK_X25519 = 32;
/** AES-128-GCM: Nk 16, Nn 12; the response nonce is max(Nn, Nk) octets (RFC 9458 §4.4). */
const NK = 16;
const NN = 12;
const TAG = 16;

/** A fault of encapsulation; the code says which. */
export class OhttpError extends MimiError<
  'ERR_OHTTP_KEY_UNKNOWN' | 'ERR_OHTTP_MALFORMED' | 'ERR_OHTTP_DECRYPT'
> {}

/** One key configuration (RFC 9458 §3). */
export interface OhttpKeyConfig {
  keyId: number;
  kemId: number;
  publicKey: Uint8Array;
  suites: { kdfId: number; aeadId: number }[];
}

/** A gateway's key configuration with its private key. */
export interface OhttpKeyPair {
  config: OhttpKeyConfig;
  privateKey: Uint8Array;
}

/** What the client keeps to open the response to its request. */
export interface OhttpClientContext {
  readonly enc: Uint8Array;
  readonly secret: Uint8Array;
}

/** What the gateway keeps to encapsulate its response. */
export type OhttpServerContext = OhttpClientContext;

function suite(): CipherSuite {
  return new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Aes128Gcm(),
  });
}

/** A key configuration's wire form (RFC 9458 §3.1). */
export function encodeKeyConfig(config: OhttpKeyConfig): Uint8Array {
  const out = Buffer.alloc(1 + 2 + config.publicKey.length + 2 + 4 * config.suites.length);
  let at = out.writeUInt8(config.keyId, 0);
  at = out.writeUInt16BE(config.kemId, at);
  out.set(config.publicKey, at);
  at += config.publicKey.length;
  at = out.writeUInt16BE(4 * config.suites.length, at);
  for (const s of config.suites) {
    at = out.writeUInt16BE(s.kdfId, at);
    at = out.writeUInt16BE(s.aeadId, at);
  }
  return new Uint8Array(out);
}

/**
 * One key configuration from its wire form, exactly (no octet left over). Only the KEM of the
 * contract (X25519) is known, since the public key's length depends on the KEM.
 */
export function decodeKeyConfig(bytes: Uint8Array): OhttpKeyConfig {
  const malformed = (why: string): OhttpError =>
    new OhttpError('ERR_OHTTP_MALFORMED', `key configuration: ${why}`);
  if (bytes.length < 3) throw malformed('truncated');
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const keyId = view.readUInt8(0);
  const kemId = view.readUInt16BE(1);
  if (kemId !== KEM_X25519) throw malformed(`KEM 0x${kemId.toString(16)} is not supported`);
  if (bytes.length < 3 + NPK_X25519 + 2) throw malformed('truncated');
  const publicKey = Uint8Array.from(bytes.subarray(3, 3 + NPK_X25519));
  const length = view.readUInt16BE(3 + NPK_X25519);
  const start = 5 + NPK_X25519;
  if (length === 0 || length % 4 !== 0 || start + length !== bytes.length) {
    throw malformed('bad list of symmetric algorithms');
  }
  const suites: { kdfId: number; aeadId: number }[] = [];
  for (let at = start; at < bytes.length; at += 4) {
    suites.push({ kdfId: view.readUInt16BE(at), aeadId: view.readUInt16BE(at + 2) });
  }
  return { keyId, kemId, publicKey, suites };
}

/** A list of key configurations, each after its 2-octet length (RFC 9540 §3). */
export function encodeKeyConfigs(configs: readonly OhttpKeyConfig[]): Uint8Array {
  const parts: Buffer[] = [];
  for (const config of configs) {
    const bytes = encodeKeyConfig(config);
    const length = Buffer.alloc(2);
    length.writeUInt16BE(bytes.length);
    parts.push(length, Buffer.from(bytes));
  }
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * The key configurations of an `application/ohttp-keys` body. A configuration with a KEM this
 * code does not know is skipped (RFC 9540 §3 lets a client ignore what it cannot use); a list
 * that does not frame is malformed.
 */
export function decodeKeyConfigs(bytes: Uint8Array): OhttpKeyConfig[] {
  const configs: OhttpKeyConfig[] = [];
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at < bytes.length) {
    if (at + 2 > bytes.length) {
      throw new OhttpError('ERR_OHTTP_MALFORMED', 'key configurations: truncated length');
    }
    const length = view.readUInt16BE(at);
    if (at + 2 + length > bytes.length) {
      throw new OhttpError('ERR_OHTTP_MALFORMED', 'key configurations: truncated entry');
    }
    const entry = bytes.subarray(at + 2, at + 2 + length);
    at += 2 + length;
    if (entry.length >= 3 && view.readUInt16BE(at - length + 1) !== KEM_X25519) continue;
    configs.push(decodeKeyConfig(entry));
  }
  return configs;
}

/** A new key pair for `keyId`, with the contract's one suite. */
export async function generateOhttpKeyPair(keyId: number): Promise<OhttpKeyPair> {
  const s = suite();
  const pair = await s.kem.generateKeyPair();
  const publicKey = new Uint8Array(await s.kem.serializePublicKey(pair.publicKey));
  const privateKey = new Uint8Array(await s.kem.serializePrivateKey(pair.privateKey));
  return {
    config: {
      keyId,
      kemId: KEM_X25519,
      publicKey,
      suites: [{ kdfId: KDF_HKDF_SHA256, aeadId: AEAD_AES_128_GCM }],
    },
    privateKey,
  };
}

/** The 7-octet header of an encapsulated request (RFC 9458 §4.3). */
function requestHeader(keyId: number): Buffer {
  const hdr = Buffer.alloc(7);
  hdr.writeUInt8(keyId, 0);
  hdr.writeUInt16BE(KEM_X25519, 1);
  hdr.writeUInt16BE(KDF_HKDF_SHA256, 3);
  hdr.writeUInt16BE(AEAD_AES_128_GCM, 5);
  return hdr;
}

const REQUEST_LABEL = Buffer.from('message/bhttp request');
const RESPONSE_LABEL = Buffer.from('message/bhttp response');

function requestInfo(hdr: Buffer): Buffer {
  return Buffer.concat([REQUEST_LABEL, Buffer.from([0]), hdr]);
}

/**
 * Encapsulates `request` (Binary HTTP) to `config` (RFC 9458 §4.3): `hdr || enc || ct`.
 * `fixed.ikmE` fixes the ephemeral key (test vectors only).
 */
export async function encapsulateRequest(
  config: OhttpKeyConfig,
  request: Uint8Array,
  fixed?: { ikmE?: Uint8Array },
): Promise<{ message: Uint8Array; context: OhttpClientContext }> {
  if (
    config.kemId !== KEM_X25519 ||
    !config.suites.some((s) => s.kdfId === KDF_HKDF_SHA256 && s.aeadId === AEAD_AES_128_GCM)
  ) {
    throw new OhttpError('ERR_OHTTP_MALFORMED', 'the key configuration lacks the suite');
  }
  const s = suite();
  const hdr = requestHeader(config.keyId);
  const sender = await s.createSenderContext({
    recipientPublicKey: await s.kem.deserializePublicKey(config.publicKey),
    info: requestInfo(hdr),
    ...(fixed?.ikmE === undefined ? {} : { ekm: fixed.ikmE }),
  });
  const ct = new Uint8Array(await sender.seal(request));
  const enc = new Uint8Array(sender.enc);
  const secret = new Uint8Array(await sender.export(RESPONSE_LABEL, NK));
  return {
    message: new Uint8Array(Buffer.concat([hdr, enc, ct])),
    context: { enc, secret },
  };
}

/** Decapsulates a request with whichever of `keys` its key id names (RFC 9458 §4.3). */
export async function decapsulateRequest(
  keys: readonly OhttpKeyPair[],
  message: Uint8Array,
): Promise<{ request: Uint8Array; context: OhttpServerContext }> {
  if (message.length < 7 + NPK_X25519 + TAG) {
    throw new OhttpError('ERR_OHTTP_MALFORMED', 'the encapsulated request is truncated');
  }
  const view = Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  const keyId = view.readUInt8(0);
  const key = keys.find((k) => k.config.keyId === keyId);
  if (key === undefined) {
    throw new OhttpError('ERR_OHTTP_KEY_UNKNOWN', `no key configuration has id ${keyId}`);
  }
  if (
    view.readUInt16BE(1) !== key.config.kemId ||
    view.readUInt16BE(3) !== KDF_HKDF_SHA256 ||
    view.readUInt16BE(5) !== AEAD_AES_128_GCM
  ) {
    throw new OhttpError('ERR_OHTTP_MALFORMED', 'the request names another suite');
  }
  const s = suite();
  const enc = Uint8Array.from(message.subarray(7, 7 + NPK_X25519));
  try {
    const recipient = await s.createRecipientContext({
      recipientKey: await s.kem.deserializePrivateKey(key.privateKey),
      enc,
      info: requestInfo(requestHeader(keyId)),
    });
    const request = new Uint8Array(await recipient.open(message.subarray(7 + NPK_X25519)));
    const secret = new Uint8Array(await recipient.export(RESPONSE_LABEL, NK));
    return { request, context: { enc, secret } };
  } catch (error) {
    throw new OhttpError('ERR_OHTTP_DECRYPT', 'the request does not decrypt', { cause: error });
  }
}

/** AEAD key and nonce of a response (RFC 9458 §4.4). */
function responseKeys(context: OhttpClientContext, nonce: Uint8Array): { key: Buffer; iv: Buffer } {
  const salt = Buffer.concat([context.enc, nonce]);
  return {
    key: Buffer.from(hkdfSync('sha256', context.secret, salt, 'key', NK)),
    iv: Buffer.from(hkdfSync('sha256', context.secret, salt, 'nonce', NN)),
  };
}

/** Encapsulates a response (RFC 9458 §4.4): `response_nonce || ct`. */
export function encapsulateResponse(
  context: OhttpServerContext,
  response: Uint8Array,
  fixed?: { nonce?: Uint8Array },
): Uint8Array {
  const nonce = fixed?.nonce ?? new Uint8Array(randomBytes(NK));
  const { key, iv } = responseKeys(context, nonce);
  const cipher = createCipheriv('aes-128-gcm', key, iv);
  const ct = Buffer.concat([cipher.update(response), cipher.final(), cipher.getAuthTag()]);
  return new Uint8Array(Buffer.concat([nonce, ct]));
}

/** Opens the response to the request `context` came from (RFC 9458 §4.4). */
export function decapsulateResponse(context: OhttpClientContext, message: Uint8Array): Uint8Array {
  if (message.length < NK + TAG) {
    throw new OhttpError('ERR_OHTTP_MALFORMED', 'the encapsulated response is truncated');
  }
  const nonce = message.subarray(0, NK);
  const { key, iv } = responseKeys(context, nonce);
  try {
    const decipher = createDecipheriv('aes-128-gcm', key, iv);
    decipher.setAuthTag(message.subarray(message.length - TAG));
    const body = message.subarray(NK, message.length - TAG);
    return new Uint8Array(Buffer.concat([decipher.update(body), decipher.final()]));
  } catch (error) {
    throw new OhttpError('ERR_OHTTP_DECRYPT', 'the response does not decrypt', { cause: error });
  }
}

// ---------------------------------------------------------------------------------------------
// Privacy Pass (RFC 9577, RFC 9578 token type 2)

/** Token type Blind RSA (2048-bit), RSABSSA-SHA384-PSS-Deterministic (RFC 9578 §8.2.1). */
export const TOKEN_TYPE_BLIND_RSA = 2;

/** A fault of a token or a challenge; the code says which. */
export class TokenError extends MimiError<
  | 'ERR_TOKEN_MALFORMED'
  | 'ERR_TOKEN_KEY_UNKNOWN'
  | 'ERR_TOKEN_KEY_EXPIRED'
  | 'ERR_TOKEN_CHALLENGE'
  | 'ERR_TOKEN_INVALID'
> {}

/** One `PrivateToken` challenge of a `www-authenticate` header (RFC 9577 §2.1). */
export interface ParsedChallenge {
  /** The TokenChallenge as sent (its digest is bound into the token). */
  challenge: Uint8Array;
  issuerName: string;
  originInfo: string[];
  /** The issuer's token key, the SPKI of RFC 9578 §6.5. */
  tokenKey: Uint8Array;
}

/** The TokenChallenge structure (RFC 9577 §2.1.1): token type 2, empty redemption context. */
export function tokenChallenge(issuerName: string, originName: string): Uint8Array {
  const issuer = utf8.encode(issuerName);
  const origin = utf8.encode(originName);
  const out = Buffer.alloc(2 + 2 + issuer.length + 1 + 2 + origin.length);
  let at = out.writeUInt16BE(TOKEN_TYPE_BLIND_RSA, 0);
  at = out.writeUInt16BE(issuer.length, at);
  out.set(issuer, at);
  at += issuer.length;
  at = out.writeUInt8(0, at);
  at = out.writeUInt16BE(origin.length, at);
  out.set(origin, at);
  return new Uint8Array(out);
}

/** The fields of a TokenChallenge, exactly, or a `TokenError`. */
function decodeChallenge(bytes: Uint8Array): Omit<ParsedChallenge, 'tokenKey' | 'challenge'> {
  const bad = (why: string): TokenError =>
    new TokenError('ERR_TOKEN_CHALLENGE', `challenge: ${why}`);
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    if (view.readUInt16BE(0) !== TOKEN_TYPE_BLIND_RSA) throw bad('not token type 2');
    const issuerLength = view.readUInt16BE(2);
    const issuerName = text.decode(bytes.subarray(4, 4 + issuerLength));
    let at = 4 + issuerLength;
    const contextLength = view.readUInt8(at);
    if (contextLength !== 0 && contextLength !== 32) throw bad('bad redemption context');
    at += 1 + contextLength;
    const originLength = view.readUInt16BE(at);
    at += 2;
    if (at + originLength !== bytes.length || issuerLength === 0) throw bad('does not frame');
    const origin = text.decode(bytes.subarray(at, at + originLength));
    return { issuerName, originInfo: origin === '' ? [] : origin.split(',') };
  } catch (error) {
    if (error instanceof TokenError) throw error;
    throw bad('truncated or not UTF-8');
  }
}

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

/** Strict base64url (RFC 4648 §5), padding allowed; undefined for anything else. */
function fromBase64url(value: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(value)) return undefined;
  return new Uint8Array(Buffer.from(value.replace(/=+$/, ''), 'base64url'));
}

/** A `www-authenticate` value for one challenge and key (RFC 9577 §2.1). */
export function challengeHeader(challenge: Uint8Array, key: Uint8Array): string {
  return `PrivateToken challenge="${base64url(challenge)}", token-key="${base64url(key)}"`;
}

/**
 * Splits an authentication header into challenges: `[{ scheme, params }]` (RFC 9110 §11.6.1:
 * `scheme param=value, param="quoted", scheme2 …`). Throws on anything that does not parse.
 */
function authChallenges(value: string): { scheme: string; params: Map<string, string> }[] {
  const out: { scheme: string; params: Map<string, string> }[] = [];
  const token = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
  let at = 0;
  const skip = (): void => {
    while (at < value.length && /[ \t,]/.test(value[at] as string)) at++;
  };
  const readToken = (): string | undefined => {
    token.lastIndex = at;
    const m = token.exec(value);
    if (m === null) return undefined;
    at = token.lastIndex;
    return m[0];
  };
  skip();
  while (at < value.length) {
    const scheme = readToken();
    if (scheme === undefined) throw new TokenError('ERR_TOKEN_CHALLENGE', 'bad header');
    const params = new Map<string, string>();
    out.push({ scheme, params });
    for (;;) {
      skip();
      const start = at;
      const name = readToken();
      if (name === undefined) break;
      while (value[at] === ' ' || value[at] === '\t') at++;
      if (value[at] !== '=') {
        at = start; // a new scheme
        break;
      }
      at++;
      while (value[at] === ' ' || value[at] === '\t') at++;
      let v: string | undefined;
      if (value[at] === '"') {
        let s = '';
        at++;
        while (at < value.length && value[at] !== '"') {
          if (value[at] === '\\') at++;
          s += value[at] ?? '';
          at++;
        }
        if (value[at] !== '"') throw new TokenError('ERR_TOKEN_CHALLENGE', 'unterminated string');
        at++;
        v = s;
      } else {
        // A token68-like value may end in '=' (base64 padding), which tokens do not allow.
        const m = /[!#$%&'*+\-.^_`|~0-9A-Za-z/]+=*/y;
        m.lastIndex = at;
        const r = m.exec(value);
        if (r === null) throw new TokenError('ERR_TOKEN_CHALLENGE', 'bad parameter value');
        at = m.lastIndex;
        v = r[0];
      }
      params.set(name.toLowerCase(), v);
    }
    skip();
  }
  return out;
}

/**
 * The `PrivateToken` challenges of a `www-authenticate` value (RFC 9577 §2.1), in order; other
 * schemes are ignored. A PrivateToken challenge that does not decode throws a `TokenError`.
 */
export function parseChallengeHeader(value: string): ParsedChallenge[] {
  const out: ParsedChallenge[] = [];
  for (const { scheme, params } of authChallenges(value)) {
    if (scheme.toLowerCase() !== 'privatetoken') continue;
    const challenge = fromBase64url(params.get('challenge') ?? '');
    const tokenKey = fromBase64url(params.get('token-key') ?? '');
    if (challenge === undefined || tokenKey === undefined || challenge.length === 0) {
      throw new TokenError('ERR_TOKEN_CHALLENGE', 'a challenge or token-key is missing or bad');
    }
    if (tokenKey.length === 0) throw new TokenError('ERR_TOKEN_CHALLENGE', 'empty token-key');
    out.push({ challenge, tokenKey, ...decodeChallenge(challenge) });
  }
  return out;
}

/** The `authorization` value that redeems `token` (RFC 9577 §2.2). */
export function authorizationHeader(token: Uint8Array): string {
  return `PrivateToken token="${base64url(token)}"`;
}

/** The token of a `PrivateToken` `authorization` value, or a `TokenError`. */
export function parseAuthorizationHeader(value: string): Uint8Array {
  const found = authChallenges(value).find((c) => c.scheme.toLowerCase() === 'privatetoken');
  const token = fromBase64url(found?.params.get('token') ?? '');
  if (token === undefined || token.length === 0) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'no PrivateToken token');
  }
  return token;
}

/** The token key id: SHA-256 of the SPKI (RFC 9578 §6.5). */
export function tokenKeyId(spki: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(spki).digest());
}

/**
 * A TokenRequest for `challenge` under the issuer key `spki` (RFC 9578 §6.1), blinded; its
 * `finalize` unblinds the issuer's TokenResponse into a Token and checks the signature.
 */
export async function createTokenRequest(
  challenge: Uint8Array,
  spki: Uint8Array,
): Promise<{ request: Uint8Array; finalize(response: Uint8Array): Promise<Uint8Array> }> {
  decodeChallenge(challenge);
  // A copy with its own buffer: the library reads `bytes.buffer` from offset 0.
  const parsed = TokenChallenge.deserialize(Uint8Array.from(challenge));
  if (!Buffer.from(parsed.serialize()).equals(Buffer.from(challenge))) {
    throw new TokenError('ERR_TOKEN_CHALLENGE', 'the challenge does not encode back the same');
  }
  const client = new publicVerif.Client(publicVerif.BlindRSAMode.PSS);
  let request: Uint8Array;
  try {
    request = (await client.createTokenRequest(parsed, Uint8Array.from(spki))).serialize();
  } catch (error) {
    throw new TokenError('ERR_TOKEN_KEY_UNKNOWN', 'the token key is not an RSA-PSS key', {
      cause: error,
    });
  }
  return {
    request,
    async finalize(response) {
      if (response.length !== publicVerif.BLIND_RSA.Nk) {
        throw new TokenError(
          'ERR_TOKEN_MALFORMED',
          `a token response is ${publicVerif.BLIND_RSA.Nk} octets`,
        );
      }
      try {
        return (
          await client.finalize(new publicVerif.TokenResponse(Uint8Array.from(response)))
        ).serialize();
      } catch (error) {
        throw new TokenError('ERR_TOKEN_INVALID', 'the issuer signature does not verify', {
          cause: error,
        });
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// KEYCONF (private type 65403)

/** The KEYCONF record type code. */
export const RR_TYPE_KEYCONF = 65403;
/** The type to ask for until the codec knows KEYCONF by name (RFC 3597 §5). */
export const KEYCONF_QUERY_TYPE: RRType = `TYPE${RR_TYPE_KEYCONF}`;

/** KEYCONF RDATA: one published key and its validity. */
export interface KeyconfData {
  kind: 'ohttp' | 'odoh' | 'private-token';
  config: Uint8Array;
  notBefore: number;
  notAfter: number;
}

/**
 * KEYCONF RDATA from its deterministic CBOR `{ v: 1, kind, cfg, nbf, exp }`, or undefined when
 * it is not one.
 */
export function decodeKeyconf(rdata: Uint8Array): KeyconfData | undefined {
  let value: unknown;
  try {
    value = decodeCbor(rdata);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { v, kind, cfg, nbf, exp } = value as Record<string, unknown>;
  if (v !== 1 || !(cfg instanceof Uint8Array)) return undefined;
  if (kind !== 'ohttp' && kind !== 'odoh' && kind !== 'private-token') return undefined;
  if (!Number.isSafeInteger(nbf) || !Number.isSafeInteger(exp)) return undefined;
  return { kind, config: cfg, notBefore: nbf as number, notAfter: exp as number };
}
