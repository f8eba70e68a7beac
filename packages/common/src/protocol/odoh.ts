import { MimiError } from './errors.js';
import {
  HPKE_AEAD_AES_128_GCM,
  HPKE_KDF_HKDF_SHA256,
  HPKE_KEM_X25519_SHA256,
  X25519_KEY_OCTETS,
  aeadOpen,
  aeadSeal,
  concatBytes,
  generateX25519,
  hkdfExpand,
  hkdfExtract,
  hpkeRecipient,
  hpkeSender,
  randomOctets,
  uint16,
  x25519PublicKey,
} from './ohttp.js';
import { QUERY_PADDING_BLOCK_OCTETS, RESPONSE_PADDING_BLOCK_OCTETS } from './padding.js';

/**
 * Oblivious DNS over HTTPS (RFC 9230): the target's configurations (§6.1), its key id (§6.2),
 * and the protection of one query and its response (§6.3–§6.5). Same HPKE suite and library as
 * `ohttp.ts`: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.
 *
 * Message layout (§6.3): `message_type (1) ‖ key_id<0..2^16-1> ‖ encrypted_message<1..2^16-1>`;
 * a query's key_id is the target key's id, a response's "key_id" field carries the response
 * nonce. Plaintexts (§6.2) are `dns_message<1..2^16-1> ‖ padding<0..2^16-1>`; the padding is
 * zeros and is checked on decryption.
 *
 * Query (§6.4): `enc, ctx = SetupBaseS(pkR, "odoh query")`, AAD = `0x01 ‖ len(key_id) ‖ key_id`,
 * encrypted_message = `enc ‖ ctx.Seal(aad, Q_plain)`. Response (§6.5): `secret =
 * ctx.Export("odoh response", Nk)`, `salt = Q_plain ‖ len(nonce) ‖ nonce`, `prk =
 * Extract(salt, secret)`, key = `Expand(prk, "odoh key", Nk)`, nonce = `Expand(prk, "odoh
 * nonce", Nn)`, AAD = `0x02 ‖ len(nonce) ‖ nonce`.
 *
 * Padding: by default a query plaintext is padded to a multiple of
 * {@link QUERY_PADDING_BLOCK_OCTETS} and a response plaintext to a multiple of
 * {@link RESPONSE_PADDING_BLOCK_OCTETS} (RFC 8467 §4.1, the block policy of `padding.ts`), so the
 * ciphertext length says little about the name or the answer. Worked example: a 45-octet query
 * becomes a plaintext of 2 + 45 + 2 + 79 = 128 octets.
 */

/** Media type of ODoH queries and responses (RFC 9230 §5, §9.1). */
export const ODOH_CONTENT_TYPE = 'application/oblivious-dns-message';
/** The one ObliviousDoHConfig version of RFC 9230 §6.1. */
export const ODOH_VERSION = 0x0001;
/** Message type of a query (RFC 9230 §6.3). */
export const ODOH_MESSAGE_QUERY = 0x01;
/** Message type of a response (RFC 9230 §6.3). */
export const ODOH_MESSAGE_RESPONSE = 0x02;
/** Octets of a key id: Nh of HKDF-SHA256 (RFC 9230 §6.2). */
export const ODOH_KEY_ID_OCTETS = 32;
/** Most configurations decoded from one ObliviousDoHConfigs, whatever their version. */
export const MAX_ODOH_CONFIGS = 16;
/**
 * Largest ODoH message: type, two 2-octet length prefixes and their 2^16 − 1 octet fields
 * (RFC 9230 §6.3). Bigger input is refused before it is parsed.
 */
export const MAX_ODOH_MESSAGE_OCTETS = 1 + 2 + 0xffff + 2 + 0xffff;

const AEAD_NK = 16;
const AEAD_NN = 12;
const AEAD_NT = 16;
/** RFC 9230 §6.5: the response nonce is max(Nn, Nk) octets. */
const RESPONSE_NONCE_OCTETS = Math.max(AEAD_NN, AEAD_NK);

/** Every code an {@link OdohError} can carry. */
export const ODOH_ERROR_CODES = Object.freeze([
  /** Octets that are not a configuration, message or plaintext of RFC 9230 §6. */
  'ERR_ODOH_MALFORMED',
  /** A query for a key id the target does not hold (RFC 9230 §7: answer 401). */
  'ERR_ODOH_KEY_UNKNOWN',
  /** Authentication failed: tampered, another key, or another query's context. */
  'ERR_ODOH_DECRYPT',
  /** Non-zero padding in a decrypted plaintext (RFC 9230 §6.2). */
  'ERR_ODOH_PADDING',
  /** A configuration with a version or HPKE suite this implementation does not speak. */
  'ERR_ODOH_UNSUPPORTED',
  /** Over a named limit ({@link MAX_ODOH_CONFIGS}, {@link MAX_ODOH_MESSAGE_OCTETS}). */
  'ERR_ODOH_TOO_LARGE',
] as const);

/** A code from {@link ODOH_ERROR_CODES}. */
export type OdohErrorCode = (typeof ODOH_ERROR_CODES)[number];

/** An ODoH configuration or message that cannot be used (see {@link ODOH_ERROR_CODES}). */
export class OdohError extends MimiError<OdohErrorCode> {}

/** ObliviousDoHConfigContents (RFC 9230 §6.1) of version {@link ODOH_VERSION}. */
export interface OdohConfig {
  readonly kemId: number;
  readonly kdfId: number;
  readonly aeadId: number;
  /** The target's public key (32 octets for X25519). */
  readonly publicKey: Uint8Array;
}

/** A target key: its configuration, key id and raw 32-octet X25519 private key. */
export interface OdohKeyPair {
  readonly config: OdohConfig;
  /** {@link odohKeyId} of `config`. */
  readonly keyId: Uint8Array;
  readonly privateKey: Uint8Array;
}

/**
 * What a response is sealed and opened with (RFC 9230 §6.5): the query plaintext `Q_plain` as
 * encoded, and the secret exported from the query's HPKE context. Holds key material.
 */
export interface OdohContext {
  readonly queryPlaintext: Uint8Array;
  readonly secret: Uint8Array;
}

/** Fixed values for {@link encryptOdohQuery}. `ephemeralPrivateKey` is for test vectors only. */
export interface OdohQueryFixed {
  /** The client's ephemeral X25519 private key instead of a fresh one (test vectors only). */
  readonly ephemeralPrivateKey?: Uint8Array;
  /** Padding octets instead of the RFC 8467 block policy. */
  readonly paddingLength?: number;
}

/** Fixed values for {@link encryptOdohResponse}. `responseNonce` is for test vectors only. */
export interface OdohResponseFixed {
  /** The response nonce (16 octets) instead of a fresh one (test vectors only). */
  readonly responseNonce?: Uint8Array;
  /** Padding octets instead of the RFC 8467 block policy. */
  readonly paddingLength?: number;
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const read16 = (b: Uint8Array, at: number): number =>
  ((b[at] as number) << 8) | (b[at + 1] as number);

/** `<0..2^16-1>` vector encoding: a 2-octet length, then the octets. */
function vector16(b: Uint8Array, what: string): Uint8Array {
  if (b.length > 0xffff) throw new OdohError('ERR_ODOH_TOO_LARGE', `${what} exceeds 65535 octets`);
  return concatBytes(uint16(b.length), b);
}

/** Reads a `<0..2^16-1>` vector at `at`; returns it and the offset after it. */
function readVector16(b: Uint8Array, at: number, what: string): [Uint8Array, number] {
  if (at + 2 > b.length) throw new OdohError('ERR_ODOH_MALFORMED', `${what} length is truncated`);
  const length = read16(b, at);
  if (at + 2 + length > b.length) {
    throw new OdohError('ERR_ODOH_MALFORMED', `${what} of ${length} octets is truncated`);
  }
  return [b.subarray(at + 2, at + 2 + length), at + 2 + length];
}

// ---------------------------------------------------------------------------------------------
// Configurations (RFC 9230 §6.1)

function isSupported(config: OdohConfig): boolean {
  return (
    config.kemId === HPKE_KEM_X25519_SHA256 &&
    config.kdfId === HPKE_KDF_HKDF_SHA256 &&
    config.aeadId === HPKE_AEAD_AES_128_GCM &&
    config.publicKey.length === X25519_KEY_OCTETS
  );
}

/** ObliviousDoHConfigContents: kem_id ‖ kdf_id ‖ aead_id ‖ public_key<1..2^16-1>. */
function encodeContents(config: OdohConfig): Uint8Array {
  if (!isSupported(config)) {
    throw new OdohError(
      'ERR_ODOH_UNSUPPORTED',
      'only X25519, HKDF-SHA256 and AES-128-GCM are supported',
    );
  }
  return concatBytes(
    uint16(config.kemId),
    uint16(config.kdfId),
    uint16(config.aeadId),
    vector16(config.publicKey, 'public key'),
  );
}

function decodeContents(b: Uint8Array): OdohConfig {
  if (b.length < 8) throw new OdohError('ERR_ODOH_MALFORMED', 'config contents are truncated');
  const [publicKey, end] = readVector16(b, 6, 'public key');
  if (end !== b.length)
    throw new OdohError('ERR_ODOH_MALFORMED', 'trailing octets after the config contents');
  const config: OdohConfig = {
    kemId: read16(b, 0),
    kdfId: read16(b, 2),
    aeadId: read16(b, 4),
    publicKey: publicKey.slice(),
  };
  if (!isSupported(config)) {
    throw new OdohError(
      'ERR_ODOH_UNSUPPORTED',
      `suite ${config.kemId}/${config.kdfId}/${config.aeadId} with a ${publicKey.length}-octet key is not supported`,
    );
  }
  return config;
}

/** One ObliviousDoHConfig (RFC 9230 §6.1): version ‖ length ‖ contents. */
export function encodeOdohConfig(config: OdohConfig): Uint8Array {
  return concatBytes(uint16(ODOH_VERSION), vector16(encodeContents(config), 'config'));
}

/**
 * Decodes exactly one ObliviousDoHConfig (RFC 9230 §6.1). Another version or suite is
 * `ERR_ODOH_UNSUPPORTED`; bad lengths or trailing octets are `ERR_ODOH_MALFORMED`.
 */
export function decodeOdohConfig(input: Uint8Array): OdohConfig {
  if (input.length < 4) throw new OdohError('ERR_ODOH_MALFORMED', 'config is truncated');
  const version = read16(input, 0);
  const [contents, end] = readVector16(input, 2, 'config');
  if (end !== input.length)
    throw new OdohError('ERR_ODOH_MALFORMED', 'trailing octets after the config');
  if (version !== ODOH_VERSION) {
    throw new OdohError('ERR_ODOH_UNSUPPORTED', `config version ${version} is not supported`);
  }
  return decodeContents(contents);
}

/** ObliviousDoHConfigs (RFC 9230 §6.1): the configs in order, in one `<1..2^16-1>` vector. */
export function encodeOdohConfigs(configs: readonly OdohConfig[]): Uint8Array {
  if (configs.length === 0 || configs.length > MAX_ODOH_CONFIGS) {
    throw new OdohError('ERR_ODOH_MALFORMED', `a config list holds 1–${MAX_ODOH_CONFIGS} configs`);
  }
  return vector16(concatBytes(...configs.map(encodeOdohConfig)), 'configs');
}

/**
 * Decodes ObliviousDoHConfigs (RFC 9230 §6.1). Configs of another version, or of a suite this
 * module does not speak, are skipped (§6.1: "clients MUST ignore" unknown versions); a broken
 * encoding rejects the whole list, and so do more than {@link MAX_ODOH_CONFIGS} entries. The
 * result may be empty.
 */
export function decodeOdohConfigs(input: Uint8Array): OdohConfig[] {
  const [list, end] = readVector16(input, 0, 'configs');
  if (end !== input.length)
    throw new OdohError('ERR_ODOH_MALFORMED', 'trailing octets after the configs');
  if (list.length === 0) throw new OdohError('ERR_ODOH_MALFORMED', 'config list is empty');
  const configs: OdohConfig[] = [];
  let count = 0;
  // Each entry consumes at least its 4-octet header, and the count is bounded.
  for (let at = 0; at < list.length;) {
    count += 1;
    if (count > MAX_ODOH_CONFIGS) {
      throw new OdohError(
        'ERR_ODOH_TOO_LARGE',
        `config list holds more than ${MAX_ODOH_CONFIGS} configs`,
      );
    }
    if (at + 4 > list.length)
      throw new OdohError('ERR_ODOH_MALFORMED', 'config header is truncated');
    const version = read16(list, at);
    const [contents, next] = readVector16(list, at + 2, 'config');
    at = next;
    if (version !== ODOH_VERSION) continue;
    try {
      configs.push(decodeContents(contents));
    } catch (e) {
      if (e instanceof OdohError && e.code === 'ERR_ODOH_UNSUPPORTED') continue;
      throw e;
    }
  }
  return configs;
}

/**
 * The key id of a config (RFC 9230 §6.2): `Expand(Extract("", contents), "odoh key id", Nh)`
 * with HKDF-SHA256, over the encoded ObliviousDoHConfigContents.
 */
export function odohKeyId(config: OdohConfig): Uint8Array {
  const prk = hkdfExtract(new Uint8Array(0), encodeContents(config));
  return hkdfExpand(prk, text('odoh key id'), ODOH_KEY_ID_OCTETS);
}

// ---------------------------------------------------------------------------------------------
// Keys

function keyPairOf(privateKey: Uint8Array, publicKey: Uint8Array): OdohKeyPair {
  const config: OdohConfig = {
    kemId: HPKE_KEM_X25519_SHA256,
    kdfId: HPKE_KDF_HKDF_SHA256,
    aeadId: HPKE_AEAD_AES_128_GCM,
    publicKey,
  };
  return { config, keyId: odohKeyId(config), privateKey };
}

/** A fresh target key. */
export async function generateOdohKeyPair(): Promise<OdohKeyPair> {
  const { privateKey, publicKey } = await generateX25519();
  return keyPairOf(privateKey, publicKey);
}

/** The target key whose raw X25519 private key is `privateKey` (32 octets). */
export async function odohKeyPairFromPrivate(privateKey: Uint8Array): Promise<OdohKeyPair> {
  if (privateKey.length !== X25519_KEY_OCTETS) {
    throw new OdohError(
      'ERR_ODOH_MALFORMED',
      `an X25519 private key is ${X25519_KEY_OCTETS} octets`,
    );
  }
  return Promise.resolve(keyPairOf(privateKey.slice(), x25519PublicKey(privateKey)));
}

// ---------------------------------------------------------------------------------------------
// Messages (RFC 9230 §6.2–§6.5)

/** Zero padding that brings `2 + length + 2 + padding` to a multiple of `block`. */
function blockPadding(length: number, block: number): number {
  return (block - ((4 + length) % block)) % block;
}

/** ObliviousDoHMessagePlaintext (RFC 9230 §6.2): dns_message ‖ zero padding. */
function encodePlaintext(dns: Uint8Array, padding: number): Uint8Array {
  if (dns.length === 0) throw new OdohError('ERR_ODOH_MALFORMED', 'a DNS message is not empty');
  if (!Number.isInteger(padding) || padding < 0)
    throw new RangeError('padding is a non-negative integer');
  return concatBytes(vector16(dns, 'DNS message'), vector16(new Uint8Array(padding), 'padding'));
}

/** The DNS message of a plaintext; its padding must be all zeros and nothing may follow. */
function decodePlaintext(plain: Uint8Array): Uint8Array {
  const [dns, at] = readVector16(plain, 0, 'DNS message');
  const [padding, end] = readVector16(plain, at, 'padding');
  if (dns.length === 0) throw new OdohError('ERR_ODOH_MALFORMED', 'the DNS message is empty');
  if (end !== plain.length)
    throw new OdohError('ERR_ODOH_MALFORMED', 'trailing octets after the padding');
  // Constant-time over the padding: its length is public, its content must not steer timing.
  let acc = 0;
  for (const b of padding) acc |= b;
  if (acc !== 0)
    throw new OdohError('ERR_ODOH_PADDING', 'padding is not all zeros (RFC 9230 §6.2)');
  return dns.slice();
}

/** ObliviousDoHMessage (RFC 9230 §6.3). */
function encodeMessage(type: number, keyId: Uint8Array, encrypted: Uint8Array): Uint8Array {
  return concatBytes(
    Uint8Array.of(type),
    vector16(keyId, 'key id'),
    vector16(encrypted, 'encrypted message'),
  );
}

function decodeMessage(
  input: Uint8Array,
  expect: number,
): { keyId: Uint8Array; encrypted: Uint8Array } {
  if (input.length > MAX_ODOH_MESSAGE_OCTETS) {
    throw new OdohError('ERR_ODOH_TOO_LARGE', `message exceeds ${MAX_ODOH_MESSAGE_OCTETS} octets`);
  }
  if (input.length < 1) throw new OdohError('ERR_ODOH_MALFORMED', 'message is empty');
  const type = input[0] as number;
  if (type !== expect) {
    throw new OdohError('ERR_ODOH_MALFORMED', `message type ${type} where ${expect} was expected`);
  }
  const [keyId, at] = readVector16(input, 1, 'key id');
  const [encrypted, end] = readVector16(input, at, 'encrypted message');
  if (end !== input.length)
    throw new OdohError('ERR_ODOH_MALFORMED', 'trailing octets after the message');
  return { keyId, encrypted };
}

/** `type ‖ len(id) ‖ id`: the AAD of a query (key id) or a response (nonce), RFC 9230 §6.4–6.5. */
function aad(type: number, id: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(type), vector16(id, 'key id'));
}

async function exportSecret(context: {
  export(c: Uint8Array, n: number): Promise<ArrayBuffer>;
}): Promise<Uint8Array> {
  return new Uint8Array(await context.export(text('odoh response'), AEAD_NK));
}

/**
 * Encrypts the DNS message `query` to the target of `config` (RFC 9230 §6.4). Returns the
 * ObliviousDoHMessage and the context that opens its response. The plaintext is padded to the
 * RFC 8467 query block unless `fixed.paddingLength` says otherwise.
 */
export async function encryptOdohQuery(
  config: OdohConfig,
  query: Uint8Array,
  fixed?: OdohQueryFixed,
): Promise<{ message: Uint8Array; context: OdohContext }> {
  const keyId = odohKeyId(config);
  const plaintext = encodePlaintext(
    query,
    fixed?.paddingLength ?? blockPadding(query.length, QUERY_PADDING_BLOCK_OCTETS),
  );
  let sender: Awaited<ReturnType<typeof hpkeSender>>;
  try {
    sender = await hpkeSender(config.publicKey, text('odoh query'), fixed?.ephemeralPrivateKey);
  } catch (e) {
    throw new OdohError('ERR_ODOH_MALFORMED', 'the config public key cannot be used', { cause: e });
  }
  const ct = new Uint8Array(await sender.seal(plaintext, aad(ODOH_MESSAGE_QUERY, keyId)));
  return {
    message: encodeMessage(ODOH_MESSAGE_QUERY, keyId, concatBytes(new Uint8Array(sender.enc), ct)),
    context: { queryPlaintext: plaintext, secret: await exportSecret(sender) },
  };
}

/**
 * Decrypts an ODoH query with the target key its key id names (RFC 9230 §6.4, §7). Throws
 * `ERR_ODOH_KEY_UNKNOWN` for a key id no key in `keys` has, `ERR_ODOH_DECRYPT` when it does not
 * authenticate, `ERR_ODOH_PADDING` for non-zero padding, `ERR_ODOH_MALFORMED` otherwise.
 */
export async function decryptOdohQuery(
  keys: OdohKeyPair | readonly OdohKeyPair[],
  message: Uint8Array,
): Promise<{ query: Uint8Array; context: OdohContext }> {
  const { keyId, encrypted } = decodeMessage(message, ODOH_MESSAGE_QUERY);
  const list: readonly OdohKeyPair[] = Array.isArray(keys) ? keys : [keys as OdohKeyPair];
  const key = list.find(
    (k) => k.keyId.length === keyId.length && k.keyId.every((b, i) => b === keyId[i]),
  );
  if (key === undefined)
    throw new OdohError('ERR_ODOH_KEY_UNKNOWN', 'no target key has this key id');
  if (encrypted.length < X25519_KEY_OCTETS + AEAD_NT) {
    throw new OdohError('ERR_ODOH_MALFORMED', 'encrypted query is too short');
  }
  const enc = encrypted.subarray(0, X25519_KEY_OCTETS);
  let plaintext: Uint8Array;
  let secret: Uint8Array;
  try {
    const recipient = await hpkeRecipient(
      key.privateKey,
      key.config.publicKey,
      enc,
      text('odoh query'),
    );
    plaintext = new Uint8Array(
      await recipient.open(encrypted.subarray(X25519_KEY_OCTETS), aad(ODOH_MESSAGE_QUERY, keyId)),
    );
    secret = await exportSecret(recipient);
  } catch (e) {
    throw new OdohError('ERR_ODOH_DECRYPT', 'query does not authenticate', { cause: e });
  }
  return { query: decodePlaintext(plaintext), context: { queryPlaintext: plaintext, secret } };
}

/** AEAD key and nonce of a response (RFC 9230 §6.5). */
function responseKeys(
  context: OdohContext,
  nonce: Uint8Array,
): { key: Uint8Array; iv: Uint8Array } {
  const prk = hkdfExtract(
    concatBytes(context.queryPlaintext, vector16(nonce, 'nonce')),
    context.secret,
  );
  return {
    key: hkdfExpand(prk, text('odoh key'), AEAD_NK),
    iv: hkdfExpand(prk, text('odoh nonce'), AEAD_NN),
  };
}

/**
 * Encrypts the DNS message `response` for the client of `context` (RFC 9230 §6.5). The plaintext
 * is padded to the RFC 8467 response block unless `fixed.paddingLength` says otherwise.
 */
export async function encryptOdohResponse(
  context: OdohContext,
  response: Uint8Array,
  fixed?: OdohResponseFixed,
): Promise<Uint8Array> {
  const nonce = fixed?.responseNonce ?? randomOctets(RESPONSE_NONCE_OCTETS);
  if (nonce.length !== RESPONSE_NONCE_OCTETS) {
    throw new RangeError(`a response nonce is ${RESPONSE_NONCE_OCTETS} octets`);
  }
  const plaintext = encodePlaintext(
    response,
    fixed?.paddingLength ?? blockPadding(response.length, RESPONSE_PADDING_BLOCK_OCTETS),
  );
  const { key, iv } = responseKeys(context, nonce);
  const ct = await aeadSeal(key, iv, aad(ODOH_MESSAGE_RESPONSE, nonce), plaintext);
  return encodeMessage(ODOH_MESSAGE_RESPONSE, nonce, ct);
}

/**
 * Decrypts an ODoH response with the context of its query (RFC 9230 §6.5, §6.3). Throws
 * `ERR_ODOH_DECRYPT` when it does not authenticate (tampered, or for another query),
 * `ERR_ODOH_PADDING` for non-zero padding, `ERR_ODOH_MALFORMED` otherwise.
 */
export async function decryptOdohResponse(
  context: OdohContext,
  message: Uint8Array,
): Promise<Uint8Array> {
  const { keyId: nonce, encrypted } = decodeMessage(message, ODOH_MESSAGE_RESPONSE);
  if (nonce.length !== RESPONSE_NONCE_OCTETS) {
    throw new OdohError(
      'ERR_ODOH_MALFORMED',
      `response nonce is ${nonce.length} octets, not ${RESPONSE_NONCE_OCTETS}`,
    );
  }
  if (encrypted.length < AEAD_NT)
    throw new OdohError('ERR_ODOH_MALFORMED', 'encrypted response is too short');
  const { key, iv } = responseKeys(context, nonce);
  let plaintext: Uint8Array;
  try {
    plaintext = await aeadOpen(key, iv, aad(ODOH_MESSAGE_RESPONSE, nonce), encrypted);
  } catch (e) {
    throw new OdohError('ERR_ODOH_DECRYPT', 'response does not authenticate', { cause: e });
  }
  return decodePlaintext(plaintext);
}
