import {
  Aes128Gcm,
  CipherSuite,
  DhkemX25519HkdfSha256 as WebCryptoX25519,
  HkdfSha256,
} from '@hpke/core';
import { DhkemX25519HkdfSha256 as PortableX25519 } from '@hpke/dhkem-x25519';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type * as NodeCrypto from 'node:crypto';
import { nodeCrypto } from './node-builtins.js';
import { MAX_BHTTP_MESSAGE_OCTETS } from './bhttp.js';
import { MimiError } from './errors.js';

/**
 * Oblivious HTTP (RFC 9458): key configurations (§3), the `application/ohttp-keys` list
 * (RFC 9540 §3), and the encapsulation of one request and its response (§4.3–§4.4). The
 * plaintexts are Binary HTTP messages (RFC 9292, `bhttp.ts`); this module only seals and opens
 * octets, so a caller encodes with `encodeBhttpRequest` and decodes what it opens.
 *
 * One HPKE suite (RFC 9180) is implemented, the one every gateway of the network offers:
 * DHKEM(X25519, HKDF-SHA256) 0x0020, HKDF-SHA256 0x0001, AES-128-GCM 0x0001. HPKE itself is
 * `@hpke/core`, its X25519 from WebCrypto where the runtime has it (Node, recent browsers) and
 * from `@hpke/dhkem-x25519` (pure JavaScript) elsewhere; this module only builds the OHTTP
 * framing around it.
 *
 * Worked example (RFC 9458 Appendix A): the key config `01 0020 31e1…8155 0008 0001 0001 0001
 * 0003` (key id 1, X25519, two suites); a client seals the 25-octet request with the HPKE info
 * `"message/bhttp request" 00 01 0020 0001 0001` and sends `01 0020 0001 0001 ‖ enc ‖ ct`; the
 * gateway answers with `response_nonce ‖ ct`, its AEAD key and nonce derived from a secret that
 * both sides export from the HPKE context (`"message/bhttp response"`), salted with enc and the
 * nonce. test/ohttp.test.ts reproduces that example octet for octet.
 */

/** Media type of an Encapsulated Request (RFC 9458 §4.1, §9.2). */
export const OHTTP_REQUEST_TYPE = 'message/ohttp-req';
/** Media type of an Encapsulated Response (RFC 9458 §4.2, §9.3). */
export const OHTTP_RESPONSE_TYPE = 'message/ohttp-res';
/** Media type of a list of key configurations (RFC 9458 §3.2, RFC 9540 §3). */
export const OHTTP_KEYS_TYPE = 'application/ohttp-keys';

/** HPKE KEM id of DHKEM(X25519, HKDF-SHA256) (RFC 9180 §7.1). */
export const HPKE_KEM_X25519_SHA256 = 0x0020;
/** HPKE KDF id of HKDF-SHA256 (RFC 9180 §7.2). */
export const HPKE_KDF_HKDF_SHA256 = 0x0001;
/** HPKE AEAD id of AES-128-GCM (RFC 9180 §7.3). */
export const HPKE_AEAD_AES_128_GCM = 0x0001;
/** Octets of an X25519 public or private key, and of the KEM's `enc` (Npk = Nsk = Nenc). */
export const X25519_KEY_OCTETS = 32;

/** Most key configurations one `application/ohttp-keys` body may list. */
export const MAX_OHTTP_KEY_CONFIGS = 16;
/**
 * Most symmetric algorithm pairs one key configuration may list (the encoding allows 16383;
 * RFC 9180 registers fewer than a dozen combinations).
 */
export const MAX_OHTTP_SUITES = 64;
/**
 * Largest Encapsulated Request or Response accepted or produced: a Binary HTTP message of
 * {@link MAX_BHTTP_MESSAGE_OCTETS} plus the header, `enc` and the AEAD tag (7 + 32 + 16).
 */
export const MAX_OHTTP_MESSAGE_OCTETS = MAX_BHTTP_MESSAGE_OCTETS + 55;

/** AEAD key length Nk, nonce length Nn and tag length Nt of AES-128-GCM (RFC 9180 §7.3). */
const AEAD_NK = 16;
const AEAD_NN = 12;
const AEAD_NT = 16;
/** RFC 9458 §4.2: the response nonce, and the exported secret, are max(Nn, Nk) octets. */
const RESPONSE_NONCE_OCTETS = Math.max(AEAD_NN, AEAD_NK);
/** Key Identifier (8) ‖ KEM (16) ‖ KDF (16) ‖ AEAD (16): RFC 9458 §4.1. */
const REQUEST_HEADER_OCTETS = 7;

const REQUEST_LABEL = 'message/bhttp request';
const RESPONSE_LABEL = 'message/bhttp response';

/** Every code an {@link OhttpError} can carry. */
export const OHTTP_ERROR_CODES = Object.freeze([
  /** The request names a key id, KEM or suite the gateway does not hold (RFC 9458 §5.3). */
  'ERR_OHTTP_KEY_UNKNOWN',
  /** Octets that are not a key configuration, list or encapsulated message. */
  'ERR_OHTTP_MALFORMED',
  /** Authentication failed: a tampered message, a wrong key or a wrong context. */
  'ERR_OHTTP_DECRYPT',
  /** A key configuration with no KEM or suite this implementation speaks. */
  'ERR_OHTTP_UNSUPPORTED',
  /** Over {@link MAX_OHTTP_MESSAGE_OCTETS} or another named limit. */
  'ERR_OHTTP_TOO_LARGE',
] as const);

/** A code from {@link OHTTP_ERROR_CODES}. */
export type OhttpErrorCode = (typeof OHTTP_ERROR_CODES)[number];

/** A key configuration or encapsulated message that cannot be used (see {@link OHTTP_ERROR_CODES}). */
export class OhttpError extends MimiError<OhttpErrorCode> {}

/** One HPKE symmetric algorithm pair of a key configuration (RFC 9458 §3.1). */
export interface OhttpSuite {
  readonly kdfId: number;
  readonly aeadId: number;
}

/** A gateway's key configuration (RFC 9458 §3.1). */
export interface OhttpKeyConfig {
  /** Key Identifier, 0–255. */
  readonly keyId: number;
  /** HPKE KEM id; this implementation speaks {@link HPKE_KEM_X25519_SHA256}. */
  readonly kemId: number;
  /** The KEM public key, Npk octets. */
  readonly publicKey: Uint8Array;
  /** The KDF/AEAD pairs the gateway accepts with this key, at least one. */
  readonly suites: readonly OhttpSuite[];
}

/** A gateway key: its published configuration and the raw 32-octet X25519 private key. */
export interface OhttpKeyPair {
  readonly config: OhttpKeyConfig;
  readonly privateKey: Uint8Array;
}

/**
 * What a response is sealed and opened with (RFC 9458 §4.4): the request's `enc` and the secret
 * both sides export from their HPKE context. Holds key material: keep it in memory for the one
 * exchange only.
 */
export interface OhttpContext {
  readonly enc: Uint8Array;
  readonly secret: Uint8Array;
}

/** Fixed randomness for {@link encapsulateRequest}: for published test vectors only. */
export interface OhttpRequestFixed {
  /** The client's ephemeral X25519 private key (32 octets) instead of a fresh one. */
  readonly ephemeralPrivateKey: Uint8Array;
}

/** Fixed randomness for {@link encapsulateResponse}: for published test vectors only. */
export interface OhttpResponseFixed {
  /** The response nonce (max(Nn, Nk) = 16 octets) instead of a fresh one. */
  readonly responseNonce: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// HPKE and the primitives shared with odoh.ts (not part of the package's public surface)

const suiteOf = (kem: WebCryptoX25519 | PortableX25519): CipherSuite =>
  new CipherSuite({ kem, kdf: new HkdfSha256(), aead: new Aes128Gcm() });

/**
 * The HPKE suite, its KEM chosen once: `@hpke/core`'s X25519 on WebCrypto when a key pair can
 * be made with it (OpenSSL under Node: about half the CPU of a sender context and two thirds of
 * a recipient's, measured against the pure-JavaScript X25519), else `@hpke/dhkem-x25519`. Both
 * compute the same function (RFC 7748), so the octets on the wire do not depend on the choice.
 */
const hpkeSuite: Promise<CipherSuite> = (async () => {
  const native = suiteOf(new WebCryptoX25519());
  try {
    await native.kem.generateKeyPair();
    return native;
  } catch {
    return suiteOf(new PortableX25519());
  }
})();

/** The AEAD of the suite, for the OHTTP and ODoH responses (it does not depend on the KEM). */
const aead = new Aes128Gcm();

type HpkeKeyPair = Awaited<ReturnType<CipherSuite['kem']['generateKeyPair']>>;
type HpkeSenderContext = Awaited<ReturnType<CipherSuite['createSenderContext']>>;
type HpkeRecipientContext = Awaited<ReturnType<CipherSuite['createRecipientContext']>>;

/** PKCS #8 header of an X25519 private key (RFC 8410 §7): the raw key follows. */
const PKCS8_X25519_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);

/** Octets of `parts` one after the other. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A 16-bit big-endian integer. */
export function uint16(value: number): Uint8Array {
  return Uint8Array.of(value >>> 8, value & 0xff);
}

/**
 * `node:crypto` (`node-builtins.ts`: no static import, so this module also loads in a browser
 * page that bundles it for its HPKE, sealed.ts in the DP's recipient page); there,
 * {@link x25519PublicKey} is not available.
 */
function requireNodeCrypto(): typeof NodeCrypto {
  const crypto = nodeCrypto();
  if (crypto === undefined) throw new Error('x25519PublicKey needs node:crypto');
  return crypto;
}

/** The X25519 public key of a raw private key (RFC 7748 §6.1), computed by node:crypto. */
export function x25519PublicKey(privateKey: Uint8Array): Uint8Array {
  const { createPrivateKey, createPublicKey } = requireNodeCrypto();
  const key = createPrivateKey({
    key: Buffer.from(concatBytes(PKCS8_X25519_PREFIX, privateKey)),
    format: 'der',
    type: 'pkcs8',
  });
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(spki.length - X25519_KEY_OCTETS));
}

/** A fresh X25519 key pair from the HPKE library: the raw private and public keys. */
export async function generateX25519(): Promise<{ privateKey: Uint8Array; publicKey: Uint8Array }> {
  const hpke = await hpkeSuite;
  const pair = await hpke.kem.generateKeyPair();
  return {
    privateKey: new Uint8Array(await hpke.kem.serializePrivateKey(pair.privateKey)),
    publicKey: new Uint8Array(await hpke.kem.serializePublicKey(pair.publicKey)),
  };
}

/** An HPKE key pair of the library's type from raw keys. */
async function hpkeKeyPair(privateKey: Uint8Array, publicKey: Uint8Array): Promise<HpkeKeyPair> {
  const hpke = await hpkeSuite;
  return {
    privateKey: await hpke.kem.deserializePrivateKey(privateKey),
    publicKey: await hpke.kem.deserializePublicKey(publicKey),
  };
}

/**
 * Recipient key pairs imported into the suite, by the raw private key's array: a gateway opens
 * every request with one of a few long-lived keys, and importing one costs about as much as the
 * rest of the recipient's setup. An entry holds the public key it was made with and is made
 * again when another is given; it goes when its key array does.
 */
const recipientKeys = new WeakMap<
  Uint8Array,
  { publicKey: Uint8Array; pair: Promise<HpkeKeyPair> }
>();

function recipientKeyPair(privateKey: Uint8Array, publicKey: Uint8Array): Promise<HpkeKeyPair> {
  const cached = recipientKeys.get(privateKey);
  if (cached !== undefined && equalOctets(cached.publicKey, publicKey)) return cached.pair;
  const pair = hpkeKeyPair(privateKey, publicKey);
  // A key that does not import is not kept: the next request tries (and fails) again.
  void pair.catch(() => recipientKeys.delete(privateKey));
  recipientKeys.set(privateKey, { publicKey: Uint8Array.from(publicKey), pair });
  return pair;
}

function equalOctets(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * HPKE SetupBaseS (RFC 9180 §5.1.1) to `publicKey` with `info`; `ephemeralPrivateKey` replaces
 * the fresh ephemeral key (test vectors only).
 */
export async function hpkeSender(
  publicKey: Uint8Array,
  info: Uint8Array,
  ephemeralPrivateKey: Uint8Array | undefined,
): Promise<HpkeSenderContext> {
  const hpke = await hpkeSuite;
  const recipientPublicKey = await hpke.kem.deserializePublicKey(publicKey);
  if (ephemeralPrivateKey === undefined) {
    return await hpke.createSenderContext({ recipientPublicKey, info });
  }
  if (ephemeralPrivateKey.length !== X25519_KEY_OCTETS) {
    throw new RangeError(`an ephemeral key is ${X25519_KEY_OCTETS} octets`);
  }
  const ekm = await hpkeKeyPair(ephemeralPrivateKey, x25519PublicKey(ephemeralPrivateKey));
  return await hpke.createSenderContext({ recipientPublicKey, info, ekm });
}

/** HPKE SetupBaseR (RFC 9180 §5.1.1) with a raw key pair, `enc` and `info`. */
export async function hpkeRecipient(
  privateKey: Uint8Array,
  publicKey: Uint8Array,
  enc: Uint8Array,
  info: Uint8Array,
): Promise<HpkeRecipientContext> {
  const hpke = await hpkeSuite;
  return await hpke.createRecipientContext({
    recipientKey: await recipientKeyPair(privateKey, publicKey),
    enc,
    info,
  });
}

/** HKDF-Extract with SHA-256 (RFC 5869 §2.2). */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return extract(sha256, ikm, salt);
}

/** HKDF-Expand with SHA-256 (RFC 5869 §2.3). */
export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  return expand(sha256, prk, info, length);
}

/** AES-128-GCM seal through the HPKE library's AEAD. */
export async function aeadSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
): Promise<Uint8Array> {
  return new Uint8Array(await aead.createEncryptionContext(key).seal(nonce, plaintext, aad));
}

/** AES-128-GCM open; rejects (with the library's error) when the tag does not verify. */
export async function aeadOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  ciphertext: Uint8Array,
): Promise<Uint8Array> {
  return new Uint8Array(await aead.createEncryptionContext(key).open(nonce, ciphertext, aad));
}

/** Fresh random octets from the platform's CSPRNG. */
export function randomOctets(length: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(length));
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

// ---------------------------------------------------------------------------------------------
// Key configurations (RFC 9458 §3)

function isSupported(kemId: number, suite: OhttpSuite): boolean {
  return (
    kemId === HPKE_KEM_X25519_SHA256 &&
    suite.kdfId === HPKE_KDF_HKDF_SHA256 &&
    suite.aeadId === HPKE_AEAD_AES_128_GCM
  );
}

function isUint(value: number, bits: 8 | 16): boolean {
  return Number.isInteger(value) && value >= 0 && value < 2 ** bits;
}

/** The encoding of one key configuration (RFC 9458 §3.1). Throws {@link OhttpError} on bad fields. */
export function encodeKeyConfig(config: OhttpKeyConfig): Uint8Array {
  if (!isUint(config.keyId, 8)) {
    throw new OhttpError('ERR_OHTTP_MALFORMED', `key id ${config.keyId} is not 0–255`);
  }
  if (config.kemId !== HPKE_KEM_X25519_SHA256) {
    throw new OhttpError('ERR_OHTTP_UNSUPPORTED', `KEM ${config.kemId} is not supported`);
  }
  if (config.publicKey.length !== X25519_KEY_OCTETS) {
    throw new OhttpError(
      'ERR_OHTTP_MALFORMED',
      `an X25519 public key is ${X25519_KEY_OCTETS} octets`,
    );
  }
  if (config.suites.length === 0 || config.suites.length > MAX_OHTTP_SUITES) {
    throw new OhttpError('ERR_OHTTP_MALFORMED', `a key config lists 1–${MAX_OHTTP_SUITES} suites`);
  }
  const suites = config.suites.map((s) => {
    if (!isUint(s.kdfId, 16) || !isUint(s.aeadId, 16)) {
      throw new OhttpError('ERR_OHTTP_MALFORMED', 'a KDF or AEAD id is not a 16-bit integer');
    }
    return concatBytes(uint16(s.kdfId), uint16(s.aeadId));
  });
  return concatBytes(
    Uint8Array.of(config.keyId),
    uint16(config.kemId),
    config.publicKey,
    uint16(4 * suites.length),
    ...suites,
  );
}

/**
 * Decodes exactly one key configuration (RFC 9458 §3.1). A KEM other than X25519 is
 * `ERR_OHTTP_UNSUPPORTED` (its key length is unknown); bad lengths, trailing octets or too many
 * suites are `ERR_OHTTP_MALFORMED`. Suites this module does not speak are kept: the choice is
 * {@link encapsulateRequest}'s.
 */
export function decodeKeyConfig(input: Uint8Array): OhttpKeyConfig {
  if (input.length < 3) throw new OhttpError('ERR_OHTTP_MALFORMED', 'key config is truncated');
  const keyId = input[0] as number;
  const kemId = ((input[1] as number) << 8) | (input[2] as number);
  if (kemId !== HPKE_KEM_X25519_SHA256) {
    throw new OhttpError('ERR_OHTTP_UNSUPPORTED', `KEM ${kemId} is not supported`);
  }
  let at = 3;
  if (input.length < at + X25519_KEY_OCTETS + 2) {
    throw new OhttpError('ERR_OHTTP_MALFORMED', 'key config is truncated');
  }
  const publicKey = input.slice(at, at + X25519_KEY_OCTETS);
  at += X25519_KEY_OCTETS;
  const suitesLength = ((input[at] as number) << 8) | (input[at + 1] as number);
  at += 2;
  if (suitesLength < 4 || suitesLength % 4 !== 0) {
    throw new OhttpError(
      'ERR_OHTTP_MALFORMED',
      `symmetric algorithms length ${suitesLength} is not a positive multiple of 4`,
    );
  }
  if (suitesLength / 4 > MAX_OHTTP_SUITES) {
    throw new OhttpError(
      'ERR_OHTTP_TOO_LARGE',
      `a key config lists more than ${MAX_OHTTP_SUITES} suites`,
    );
  }
  if (at + suitesLength !== input.length) {
    throw new OhttpError(
      'ERR_OHTTP_MALFORMED',
      at + suitesLength > input.length
        ? 'key config is truncated'
        : 'trailing octets after the key config',
    );
  }
  const suites: OhttpSuite[] = [];
  for (; at < input.length; at += 4) {
    suites.push({
      kdfId: ((input[at] as number) << 8) | (input[at + 1] as number),
      aeadId: ((input[at + 2] as number) << 8) | (input[at + 3] as number),
    });
  }
  return { keyId, kemId, publicKey, suites };
}

/** An `application/ohttp-keys` body (RFC 9540 §3): each config prefixed by its 2-octet length. */
export function encodeKeyConfigs(configs: readonly OhttpKeyConfig[]): Uint8Array {
  if (configs.length === 0 || configs.length > MAX_OHTTP_KEY_CONFIGS) {
    throw new OhttpError(
      'ERR_OHTTP_MALFORMED',
      `a key list holds 1–${MAX_OHTTP_KEY_CONFIGS} configs`,
    );
  }
  return concatBytes(
    ...configs.flatMap((config) => {
      const encoded = encodeKeyConfig(config);
      return [uint16(encoded.length), encoded];
    }),
  );
}

/**
 * Decodes an `application/ohttp-keys` body (RFC 9540 §3, RFC 9458 §3.2). Configurations with a
 * KEM other than X25519 are skipped (their length prefix says where they end); any encoding
 * error discards the whole list, as RFC 9458 §3.2 requires (`ERR_OHTTP_MALFORMED`), and so does
 * a list of more than {@link MAX_OHTTP_KEY_CONFIGS} (`ERR_OHTTP_TOO_LARGE`). The result may be
 * empty when no configuration is usable.
 */
export function decodeKeyConfigs(input: Uint8Array): OhttpKeyConfig[] {
  if (input.length === 0) throw new OhttpError('ERR_OHTTP_MALFORMED', 'key list is empty');
  const configs: OhttpKeyConfig[] = [];
  let count = 0;
  // Each iteration consumes at least the 2-octet prefix, and the count is bounded.
  for (let at = 0; at < input.length;) {
    count += 1;
    if (count > MAX_OHTTP_KEY_CONFIGS) {
      throw new OhttpError(
        'ERR_OHTTP_TOO_LARGE',
        `key list holds more than ${MAX_OHTTP_KEY_CONFIGS} configs`,
      );
    }
    if (at + 2 > input.length) throw new OhttpError('ERR_OHTTP_MALFORMED', 'key list is truncated');
    const length = ((input[at] as number) << 8) | (input[at + 1] as number);
    at += 2;
    if (at + length > input.length)
      throw new OhttpError('ERR_OHTTP_MALFORMED', 'key list is truncated');
    const entry = input.subarray(at, at + length);
    at += length;
    try {
      configs.push(decodeKeyConfig(entry));
    } catch (e) {
      if (e instanceof OhttpError && e.code === 'ERR_OHTTP_UNSUPPORTED') continue;
      throw e;
    }
  }
  return configs;
}

// ---------------------------------------------------------------------------------------------
// Keys

function keyPairOf(keyId: number, privateKey: Uint8Array, publicKey: Uint8Array): OhttpKeyPair {
  const config: OhttpKeyConfig = {
    keyId,
    kemId: HPKE_KEM_X25519_SHA256,
    publicKey,
    suites: [{ kdfId: HPKE_KDF_HKDF_SHA256, aeadId: HPKE_AEAD_AES_128_GCM }],
  };
  encodeKeyConfig(config); // checks the key id
  return { config, privateKey };
}

/** A fresh gateway key with id `keyId` (0–255), offering the one suite of this module. */
export async function generateOhttpKeyPair(keyId: number): Promise<OhttpKeyPair> {
  const { privateKey, publicKey } = await generateX25519();
  return keyPairOf(keyId, privateKey, publicKey);
}

/** The gateway key with id `keyId` whose raw X25519 private key is `privateKey` (32 octets). */
export async function ohttpKeyPairFromPrivate(
  keyId: number,
  privateKey: Uint8Array,
): Promise<OhttpKeyPair> {
  if (privateKey.length !== X25519_KEY_OCTETS) {
    throw new OhttpError(
      'ERR_OHTTP_MALFORMED',
      `an X25519 private key is ${X25519_KEY_OCTETS} octets`,
    );
  }
  return Promise.resolve(keyPairOf(keyId, privateKey.slice(), x25519PublicKey(privateKey)));
}

// ---------------------------------------------------------------------------------------------
// Encapsulation (RFC 9458 §4.3, §4.4)

/** `hdr` of RFC 9458 §4.3: key_id (8) ‖ kem_id (16) ‖ kdf_id (16) ‖ aead_id (16). */
function requestHeader(keyId: number, kemId: number, suite: OhttpSuite): Uint8Array {
  return concatBytes(
    Uint8Array.of(keyId),
    uint16(kemId),
    uint16(suite.kdfId),
    uint16(suite.aeadId),
  );
}

/** info = "message/bhttp request" ‖ 0x00 ‖ hdr (RFC 9458 §4.3 step 2). */
function requestInfo(header: Uint8Array): Uint8Array {
  return concatBytes(text(REQUEST_LABEL), Uint8Array.of(0), header);
}

async function exportSecret(
  context: HpkeSenderContext | HpkeRecipientContext,
): Promise<Uint8Array> {
  return new Uint8Array(await context.export(text(RESPONSE_LABEL), RESPONSE_NONCE_OCTETS));
}

/**
 * Seals the Binary HTTP `request` to the gateway of `config` (RFC 9458 §4.3). Returns the
 * Encapsulated Request and the context that opens its response. Throws `ERR_OHTTP_UNSUPPORTED`
 * when the config offers no suite this module speaks, `ERR_OHTTP_TOO_LARGE` over the limit.
 * `fixed` is for published test vectors only.
 */
export async function encapsulateRequest(
  config: OhttpKeyConfig,
  request: Uint8Array,
  fixed?: OhttpRequestFixed,
): Promise<{ message: Uint8Array; context: OhttpContext }> {
  const suite = config.suites.find((s) => isSupported(config.kemId, s));
  if (suite === undefined) {
    throw new OhttpError('ERR_OHTTP_UNSUPPORTED', 'the key config offers no supported HPKE suite');
  }
  if (config.publicKey.length !== X25519_KEY_OCTETS) {
    throw new OhttpError(
      'ERR_OHTTP_MALFORMED',
      `an X25519 public key is ${X25519_KEY_OCTETS} octets`,
    );
  }
  if (request.length > MAX_BHTTP_MESSAGE_OCTETS) {
    throw new OhttpError(
      'ERR_OHTTP_TOO_LARGE',
      `request exceeds ${MAX_BHTTP_MESSAGE_OCTETS} octets`,
    );
  }
  const header = requestHeader(config.keyId, config.kemId, suite);
  let sender: HpkeSenderContext;
  try {
    sender = await hpkeSender(config.publicKey, requestInfo(header), fixed?.ephemeralPrivateKey);
  } catch (e) {
    // A low-order public key makes the shared secret zero (RFC 9180 §7.1.4): not a usable key.
    throw new OhttpError('ERR_OHTTP_MALFORMED', 'the key config public key cannot be used', {
      cause: e,
    });
  }
  const enc = new Uint8Array(sender.enc);
  const ct = new Uint8Array(await sender.seal(request, new Uint8Array(0)));
  return {
    message: concatBytes(header, enc, ct),
    context: { enc, secret: await exportSecret(sender) },
  };
}

/**
 * Opens an Encapsulated Request with the gateway key its key id names (RFC 9458 §4.3). Throws
 * `ERR_OHTTP_KEY_UNKNOWN` when no key in `keys` has that id with that KEM and suite (the
 * `ohttp-key` problem of §5.3), `ERR_OHTTP_MALFORMED` when too short, `ERR_OHTTP_DECRYPT` when
 * it does not authenticate. Returns the Binary HTTP request and the context for its response.
 */
export async function decapsulateRequest(
  keys: OhttpKeyPair | readonly OhttpKeyPair[],
  message: Uint8Array,
): Promise<{ request: Uint8Array; context: OhttpContext }> {
  if (message.length > MAX_OHTTP_MESSAGE_OCTETS) {
    throw new OhttpError(
      'ERR_OHTTP_TOO_LARGE',
      `request exceeds ${MAX_OHTTP_MESSAGE_OCTETS} octets`,
    );
  }
  if (message.length < REQUEST_HEADER_OCTETS) {
    throw new OhttpError('ERR_OHTTP_MALFORMED', 'encapsulated request is shorter than its header');
  }
  const keyId = message[0] as number;
  const kemId = ((message[1] as number) << 8) | (message[2] as number);
  const suite: OhttpSuite = {
    kdfId: ((message[3] as number) << 8) | (message[4] as number),
    aeadId: ((message[5] as number) << 8) | (message[6] as number),
  };
  const candidates = (
    Array.isArray(keys) ? (keys as readonly OhttpKeyPair[]) : [keys as OhttpKeyPair]
  ).filter(
    (k) =>
      k.config.keyId === keyId &&
      k.config.kemId === kemId &&
      isSupported(kemId, suite) &&
      k.config.suites.some((s) => s.kdfId === suite.kdfId && s.aeadId === suite.aeadId),
  );
  if (candidates.length === 0) {
    throw new OhttpError(
      'ERR_OHTTP_KEY_UNKNOWN',
      `no key with id ${keyId}, KEM ${kemId}, KDF ${suite.kdfId} and AEAD ${suite.aeadId}`,
    );
  }
  if (message.length < REQUEST_HEADER_OCTETS + X25519_KEY_OCTETS + AEAD_NT) {
    throw new OhttpError('ERR_OHTTP_MALFORMED', 'encapsulated request is too short');
  }
  const header = message.subarray(0, REQUEST_HEADER_OCTETS);
  const enc = message.slice(REQUEST_HEADER_OCTETS, REQUEST_HEADER_OCTETS + X25519_KEY_OCTETS);
  const ct = message.subarray(REQUEST_HEADER_OCTETS + X25519_KEY_OCTETS);
  const info = requestInfo(header);
  // Key ids may repeat across a rotation; the key that authenticates the request is the one.
  for (const key of candidates) {
    let recipient: HpkeRecipientContext;
    let request: Uint8Array;
    try {
      recipient = await hpkeRecipient(key.privateKey, key.config.publicKey, enc, info);
      request = new Uint8Array(await recipient.open(ct, new Uint8Array(0)));
    } catch {
      continue;
    }
    return { request, context: { enc, secret: await exportSecret(recipient) } };
  }
  throw new OhttpError('ERR_OHTTP_DECRYPT', 'encapsulated request does not authenticate');
}

/** aead_key and aead_nonce of RFC 9458 §4.4 steps 3–5. */
function responseKeys(
  context: OhttpContext,
  nonce: Uint8Array,
): { key: Uint8Array; iv: Uint8Array } {
  const prk = hkdfExtract(concatBytes(context.enc, nonce), context.secret);
  return {
    key: hkdfExpand(prk, text('key'), AEAD_NK),
    iv: hkdfExpand(prk, text('nonce'), AEAD_NN),
  };
}

/**
 * Seals the Binary HTTP `response` for the client of `context` (RFC 9458 §4.4): a fresh
 * max(Nn, Nk)-octet nonce, then the AEAD-protected response. `fixed` is for test vectors only.
 */
export async function encapsulateResponse(
  context: OhttpContext,
  response: Uint8Array,
  fixed?: OhttpResponseFixed,
): Promise<Uint8Array> {
  if (response.length > MAX_BHTTP_MESSAGE_OCTETS) {
    throw new OhttpError(
      'ERR_OHTTP_TOO_LARGE',
      `response exceeds ${MAX_BHTTP_MESSAGE_OCTETS} octets`,
    );
  }
  const nonce = fixed?.responseNonce ?? randomOctets(RESPONSE_NONCE_OCTETS);
  if (nonce.length !== RESPONSE_NONCE_OCTETS) {
    throw new RangeError(`a response nonce is ${RESPONSE_NONCE_OCTETS} octets`);
  }
  const { key, iv } = responseKeys(context, nonce);
  return concatBytes(nonce, await aeadSeal(key, iv, new Uint8Array(0), response));
}

/**
 * Opens an Encapsulated Response with the context of the request it answers (RFC 9458 §4.4).
 * Throws `ERR_OHTTP_MALFORMED` when too short, `ERR_OHTTP_DECRYPT` when it does not
 * authenticate (tampered, or sealed for another request). Returns the Binary HTTP response.
 */
export async function decapsulateResponse(
  context: OhttpContext,
  message: Uint8Array,
): Promise<Uint8Array> {
  if (message.length > MAX_OHTTP_MESSAGE_OCTETS) {
    throw new OhttpError(
      'ERR_OHTTP_TOO_LARGE',
      `response exceeds ${MAX_OHTTP_MESSAGE_OCTETS} octets`,
    );
  }
  if (message.length < RESPONSE_NONCE_OCTETS + AEAD_NT) {
    throw new OhttpError('ERR_OHTTP_MALFORMED', 'encapsulated response is too short');
  }
  const nonce = message.subarray(0, RESPONSE_NONCE_OCTETS);
  const { key, iv } = responseKeys(context, nonce);
  try {
    return await aeadOpen(key, iv, new Uint8Array(0), message.subarray(RESPONSE_NONCE_OCTETS));
  } catch (e) {
    throw new OhttpError('ERR_OHTTP_DECRYPT', 'encapsulated response does not authenticate', {
      cause: e,
    });
  }
}
