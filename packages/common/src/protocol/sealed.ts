import { HkdfSha256, X25519 } from '@hpke/dhkem-x25519';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromBase64url, toBase64url } from './bytes.js';
import { ED25519_PUBLIC_KEY_OCTETS } from './ed25519.js';
import { MimiError, SignedObjectError } from './errors.js';
import {
  X25519_KEY_OCTETS,
  concatBytes,
  generateX25519,
  hpkeRecipient,
  hpkeSender,
} from './ohttp.js';
import {
  AUDIENCE_KEY_ID_OCTETS,
  MAX_CSI_OCTETS,
  MAX_SEALED_CIPHERTEXT_OCTETS,
  SEALED_TAG_OCTETS,
  decodeMspEntries,
  encodeMspEntries,
  parseSealedBox,
  type MspEntry,
  type SealedBox,
} from './signed.js';

/**
 * Sealed mappings (design §4; docs/protocol.md §4, "Sealed mappings"): MSP entries encrypted
 * with HPKE (RFC 9180) to an audience key that a recipient shares out of band (a contact card,
 * a QR code, a group invite), carried in a Mapping's `sealed` boxes beside its public `msps`.
 * The recipient's signature covers the boxes as octets, so a DP or a resolver verifies and
 * serves a sealed mapping without reading it; a sender holding the audience key opens it.
 *
 * - Suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, mode base (RFC 9180 §5.1.1),
 *   through `@hpke/core` as ohttp.ts uses it.
 * - `info` = `"MIMI-Discovery-v1/sealed"`; `aad` = `"MIMI-Discovery-v1/sealed" 00 || csi || 00
 *   || key`, with the mapping's recipient key (32 octets): a box opens only for the CSI and the
 *   key it was sealed for, so a box copied into another CSI's or another key's mapping does not
 *   open (the signature would not cover it there either, but a sender may open boxes before
 *   or without trusting the signature's key).
 * - Plaintext: a 2-octet big-endian length L, L octets of the deterministic CBOR of the entries
 *   array (entries as in a mapping's `msps`), then zero octets to the next multiple of
 *   {@link SEALED_PADDING_BLOCK}. Padding hides how many entries and tags a box holds, to the
 *   block; the number of boxes and their key ids stay visible.
 * - Audience key: an X25519 secret (RFC 7748); its id (`kid`) is the first
 *   {@link AUDIENCE_KEY_ID_OCTETS} octets of SHA-256(`"MIMI-Discovery-v1/audience" 00 ||
 *   public key`), so a sender finds the box its key opens without trying each one.
 *
 * Worked example: two entries `[{provider: "wire.example", tags: ["business", "pref:1"]},
 * {provider: "chat.example", tags: ["ctx:soccer"]}]` encode as 86 octets of CBOR; with the
 * length prefix that is 88 octets, padded to 128; the box's `ct` is those 128 octets sealed,
 * and the 16-octet tag: 144 octets. docs/protocol.md §7.2 gives the octets from fixed keys.
 *
 * Pure: no sockets, timers or files; randomness comes from the HPKE library (the ephemeral
 * key) unless a test vector fixes it.
 */

/** Re-exported: the octets of an audience key id (defined beside the box in signed.ts). */
export { AUDIENCE_KEY_ID_OCTETS };

/** The HPKE `info` of every sealed box, and the opening of its `aad`. */
export const SEALED_INFO = 'MIMI-Discovery-v1/sealed';
/** The padding block of a box's plaintext: its length is a whole number of blocks. */
export const SEALED_PADDING_BLOCK = 64;
/**
 * Longest padded plaintext of a box: {@link MAX_SEALED_CIPHERTEXT_OCTETS} less the AEAD tag
 * (2048). Entries whose encoding does not fit are refused when sealing.
 */
export const MAX_SEALED_PLAINTEXT_OCTETS = MAX_SEALED_CIPHERTEXT_OCTETS - SEALED_TAG_OCTETS;
/** Octets of the big-endian length that opens a box's plaintext. */
export const SEALED_LENGTH_OCTETS = 2;
/** The prefix of an audience key's one-line text form, which fits a QR code or a contact card. */
export const AUDIENCE_KEY_PREFIX = 'mimi-audience:';
/** The domain-separation string hashed before the public key to make a key id. */
export const AUDIENCE_KEY_ID_CONTEXT = 'MIMI-Discovery-v1/audience';
/** Octets of an audience key's secret and public key (X25519, RFC 7748 §6.1). */
export const AUDIENCE_KEY_OCTETS = X25519_KEY_OCTETS;
/**
 * Longest text {@link parseAudienceKey} reads: the key line (57 characters) and a few `#`
 * comment lines. A longer input is not an audience key file.
 */
export const MAX_AUDIENCE_KEY_FILE_OCTETS = 4096;

/** Every code a {@link SealedError} can carry. */
export const SEALED_ERROR_CODES = Object.freeze([
  /** The box's `kid` is not the id of the audience key given: another audience's box. */
  'ERR_SEALED_KID',
  /** HPKE authentication failed: a tampered box, another CSI or key, or the wrong secret. */
  'ERR_SEALED_OPEN',
  /** A box of the wrong shape, or a plaintext whose length, padding or entries are wrong. */
  'ERR_SEALED_MALFORMED',
  /** Entries whose padded encoding exceeds {@link MAX_SEALED_PLAINTEXT_OCTETS}. */
  'ERR_SEALED_TOO_LARGE',
  /** A CSI, recipient key or ephemeral secret passed by the caller that is not of its shape. */
  'ERR_SEALED_ARGUMENT',
  /** An audience key, or its text form, that is not a 32-octet X25519 key. */
  'ERR_AUDIENCE_KEY',
] as const);

/** A code from {@link SEALED_ERROR_CODES}. */
export type SealedErrorCode = (typeof SEALED_ERROR_CODES)[number];

/** A box that cannot be sealed or opened, or an audience key that cannot be read. */
export class SealedError extends MimiError<SealedErrorCode> {}

/** An audience key: the X25519 key pair a recipient shares with an audience, and its id. */
export interface AudienceKey {
  /** The X25519 secret, {@link AUDIENCE_KEY_OCTETS} octets: whoever holds it opens the boxes. */
  readonly secretKey: Uint8Array;
  /** The X25519 public key, {@link AUDIENCE_KEY_OCTETS} octets: what a box is sealed to. */
  readonly publicKey: Uint8Array;
  /** {@link audienceKeyId} of the public key, {@link AUDIENCE_KEY_ID_OCTETS} octets. */
  readonly kid: Uint8Array;
}

/** Options of {@link sealMsps}. */
export interface SealOptions {
  /**
   * The sender's ephemeral X25519 secret instead of a fresh one: for published test vectors
   * only. Reusing one for two boxes to the same audience key reuses the AEAD key and nonce.
   */
  readonly ephemeralSecret?: Uint8Array;
}

const utf8 = new TextEncoder();
/** The u-coordinate 9 of the X25519 base point, little-endian (RFC 7748 §4.1). */
const X25519_BASE_POINT = Uint8Array.from({ length: X25519_KEY_OCTETS }, (_, i) =>
  i === 0 ? 9 : 0,
);
const X25519_PRIMITIVES = new X25519(new HkdfSha256());
const INFO = utf8.encode(SEALED_INFO);
const KID_CONTEXT = utf8.encode(`${AUDIENCE_KEY_ID_CONTEXT}\0`);
/** 43 characters of unpadded base64url: 32 octets (RFC 4648 §5). */
const BASE64URL_KEY = /^[A-Za-z0-9_-]{43}$/;

// ---------------------------------------------------------------------------------------------
// Audience keys

/**
 * The id of an audience public key: the first {@link AUDIENCE_KEY_ID_OCTETS} octets of
 * SHA-256(`"MIMI-Discovery-v1/audience" 00 || publicKey`). Throws {@link SealedError}
 * `ERR_AUDIENCE_KEY` for a key that is not {@link AUDIENCE_KEY_OCTETS} octets.
 */
export function audienceKeyId(publicKey: Uint8Array): Uint8Array {
  checkKeyOctets(publicKey, 'an audience public key');
  return sha256(concatBytes(KID_CONTEXT, publicKey)).slice(0, AUDIENCE_KEY_ID_OCTETS);
}

/**
 * The audience key of an X25519 secret (RFC 7748 §5: every string of 32 octets is a secret; the scalar is
 * clamped when used). Throws {@link SealedError} `ERR_AUDIENCE_KEY` for another length.
 */
export async function audienceKeyFromSecret(secret: Uint8Array): Promise<AudienceKey> {
  // Through the HPKE library's X25519, not node:crypto, so a browser page derives it too (the
  // DP's recipient page seals boxes); a bad secret rejects the promise rather than throwing.
  checkKeyOctets(secret, 'an audience secret');
  // RFC 7748 §6.1: the public key is X25519(secret, 9).
  const publicKey = new Uint8Array(await X25519_PRIMITIVES.derive(secret, X25519_BASE_POINT));
  return { secretKey: Uint8Array.from(secret), publicKey, kid: audienceKeyId(publicKey) };
}

/** A fresh audience key from the platform's CSPRNG (through the HPKE library). */
export async function generateAudienceKey(): Promise<AudienceKey> {
  const { privateKey } = await generateX25519();
  return await audienceKeyFromSecret(privateKey);
}

/**
 * The one-line text form of an audience key: {@link AUDIENCE_KEY_PREFIX} and the unpadded
 * base64url (RFC 4648 §5) of the secret, e.g. `mimi-audience:BQUF…BQU` (57 characters). It is
 * the secret: share it only with the audience.
 */
export function formatAudienceKey(key: AudienceKey): string {
  checkKeyOctets(key.secretKey, 'an audience secret');
  return `${AUDIENCE_KEY_PREFIX}${toBase64url(key.secretKey)}`;
}

/**
 * Reads an audience key from its line (`mimi-audience:…`) or from a file's text: that line,
 * with `#` comment lines and blank lines around it, CRLF or LF line ends. Exactly one key line;
 * its base64url must be canonical and unpadded. Throws {@link SealedError} `ERR_AUDIENCE_KEY`
 * with a message that never quotes the secret.
 */
export async function parseAudienceKey(text: string): Promise<AudienceKey> {
  if (typeof text !== 'string') bad('must be text');
  if (utf8.encode(text).length > MAX_AUDIENCE_KEY_FILE_OCTETS) {
    bad(`is longer than ${MAX_AUDIENCE_KEY_FILE_OCTETS} octets`);
  }
  const lines = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (lines.length !== 1) {
    bad(
      `must hold exactly one "${AUDIENCE_KEY_PREFIX}" line beside comments, ` +
        `found ${lines.length} lines that are not comments`,
    );
  }
  const line = lines[0] ?? '';
  if (!line.startsWith(AUDIENCE_KEY_PREFIX)) bad(`must start with "${AUDIENCE_KEY_PREFIX}"`);
  const encoded = line.slice(AUDIENCE_KEY_PREFIX.length);
  // 43 characters carry 258 bits; a canonical encoding has the last 2 bits zero, which the
  // round trip checks, so one key has one spelling.
  const secret = BASE64URL_KEY.test(encoded) ? fromBase64url(encoded) : undefined;
  if (secret === undefined) {
    bad(`must be followed by the unpadded base64url of ${AUDIENCE_KEY_OCTETS} octets`);
  }
  return await audienceKeyFromSecret(secret);
}

function bad(problem: string): never {
  throw new SealedError('ERR_AUDIENCE_KEY', `an audience key ${problem}`);
}

function checkKeyOctets(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== AUDIENCE_KEY_OCTETS) {
    throw new SealedError('ERR_AUDIENCE_KEY', `${what} must be ${AUDIENCE_KEY_OCTETS} octets`);
  }
}

// ---------------------------------------------------------------------------------------------
// Seal and open

/**
 * The HPKE `aad` of a box for `csi` in a mapping of recipient key `key`:
 * `"MIMI-Discovery-v1/sealed" 00 || csi || 00 || key`. Throws {@link SealedError}
 * `ERR_SEALED_ARGUMENT` when `csi` is not shaped as a CSI or `key` is not 32 octets.
 */
export function sealedAad(csi: string, key: Uint8Array): Uint8Array {
  const csiOctets = typeof csi === 'string' ? utf8.encode(csi) : undefined;
  const shaped =
    typeof csi === 'string' &&
    ((csi.startsWith('tel:+') && csi.length > 5) || (csi.startsWith('mailto:') && csi.length > 7));
  if (csiOctets === undefined || !shaped || csiOctets.length > MAX_CSI_OCTETS) {
    throw new SealedError(
      'ERR_SEALED_ARGUMENT',
      `the CSI must be a tel:+… or mailto:… CSI of at most ${MAX_CSI_OCTETS} octets`,
    );
  }
  if (!(key instanceof Uint8Array) || key.length !== ED25519_PUBLIC_KEY_OCTETS) {
    throw new SealedError(
      'ERR_SEALED_ARGUMENT',
      `the mapping key must be ${ED25519_PUBLIC_KEY_OCTETS} octets (an Ed25519 public key)`,
    );
  }
  return concatBytes(INFO, Uint8Array.of(0), csiOctets, Uint8Array.of(0), key);
}

/**
 * The padded plaintext of a box: length, entries, zeros to a whole number of blocks.
 * Example: 86 octets of entries → `00 56`, the entries, 40 zero octets: 128 octets.
 */
function padEntries(entries: Uint8Array): Uint8Array {
  const used = SEALED_LENGTH_OCTETS + entries.length;
  const padded = Math.ceil(used / SEALED_PADDING_BLOCK) * SEALED_PADDING_BLOCK;
  if (padded > MAX_SEALED_PLAINTEXT_OCTETS) {
    throw new SealedError(
      'ERR_SEALED_TOO_LARGE',
      `the entries encode to ${entries.length} octets; padded, ${padded} is over the ` +
        `${MAX_SEALED_PLAINTEXT_OCTETS}-octet bound of a box`,
    );
  }
  const out = new Uint8Array(padded);
  out[0] = entries.length >>> 8;
  out[1] = entries.length & 0xff;
  out.set(entries, SEALED_LENGTH_OCTETS);
  return out;
}

/**
 * The entries of a padded plaintext. The plaintext must be exactly what {@link padEntries}
 * makes of them: a whole number of blocks, no more than needed, zero padding, and entries
 * that decode strictly; any other plaintext is `ERR_SEALED_MALFORMED` (its sealer did not
 * follow docs/protocol.md §4, "Sealed mappings").
 */
function unpadEntries(plaintext: Uint8Array): MspEntry[] {
  if (plaintext.length === 0 || plaintext.length % SEALED_PADDING_BLOCK !== 0) {
    malformed(`its plaintext is ${plaintext.length} octets, not a multiple of the padding block`);
  }
  const length = ((plaintext[0] ?? 0) << 8) | (plaintext[1] ?? 0);
  const used = SEALED_LENGTH_OCTETS + length;
  if (used > plaintext.length) {
    malformed(`its length ${length} runs past the ${plaintext.length}-octet plaintext`);
  }
  if (plaintext.length - used >= SEALED_PADDING_BLOCK) {
    malformed(`its plaintext has a whole block of padding beyond its ${length} octets`);
  }
  for (let i = used; i < plaintext.length; i++) {
    if (plaintext[i] !== 0) malformed('its padding is not all zero');
  }
  try {
    return decodeMspEntries(plaintext.subarray(SEALED_LENGTH_OCTETS, used));
  } catch (error) {
    if (error instanceof SignedObjectError) {
      malformed(`its entries are not well formed: ${error.message}`, error);
    }
    throw error;
  }
}

function malformed(problem: string, cause?: unknown): never {
  throw new SealedError(
    'ERR_SEALED_MALFORMED',
    `the sealed box is malformed: ${problem}`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Seals `msps` for `csi` and the mapping key `key` to `audience` (its public key suffices): the
 * box to put in the Mapping's `sealed`, which the recipient then signs. Throws
 * {@link SignedObjectError} for an entry out of a mapping's bounds (too many entries, a bad
 * provider, tag or uri), {@link SealedError} `ERR_SEALED_TOO_LARGE` when the padded entries
 * exceed {@link MAX_SEALED_PLAINTEXT_OCTETS}, `ERR_AUDIENCE_KEY` for a public key that is not
 * 32 octets, `ERR_SEALED_ARGUMENT` for a CSI, key or ephemeral secret of the wrong shape.
 */
export async function sealMsps(
  csi: string,
  key: Uint8Array,
  msps: readonly MspEntry[],
  audience: { readonly publicKey: Uint8Array },
  options?: SealOptions,
): Promise<SealedBox> {
  const aad = sealedAad(csi, key);
  const kid = audienceKeyId(audience.publicKey);
  const ephemeral = options?.ephemeralSecret;
  if (
    ephemeral !== undefined &&
    !(ephemeral instanceof Uint8Array && ephemeral.length === X25519_KEY_OCTETS)
  ) {
    throw new SealedError(
      'ERR_SEALED_ARGUMENT',
      `an ephemeral secret must be ${X25519_KEY_OCTETS} octets`,
    );
  }
  const plaintext = padEntries(encodeMspEntries(msps));
  const sender = await hpkeSender(audience.publicKey, INFO, ephemeral);
  const ct = new Uint8Array(await sender.seal(plaintext, aad));
  return { kid, enc: new Uint8Array(sender.enc), ct };
}

/**
 * Opens a box of a mapping for `csi` with recipient key `key`, with the audience key. Checks,
 * in this order: the box's shape (`ERR_SEALED_MALFORMED`); its `kid` is the id of
 * `audience.publicKey` (`ERR_SEALED_KID`: another audience's box, nothing is tried); HPKE opens
 * it with the `aad` of this CSI and key (`ERR_SEALED_OPEN`: tampered, copied from another
 * mapping, or a secret that does not match the public key); the plaintext's length, padding
 * and entries (`ERR_SEALED_MALFORMED`). `ERR_SEALED_ARGUMENT` and `ERR_AUDIENCE_KEY` are the
 * caller's faults, as in {@link sealMsps}.
 *
 * Opening proves only that a holder of the audience public key sealed the entries for this CSI
 * and key; that the recipient published them is the mapping signature's to prove, so open the
 * boxes of a mapping that verified (`verifyMapping`).
 */
export async function openSealed(
  csi: string,
  key: Uint8Array,
  box: SealedBox,
  audience: AudienceKey,
): Promise<MspEntry[]> {
  const aad = sealedAad(csi, key);
  checkKeyOctets(audience.secretKey, 'an audience secret');
  // The id is computed, not read from `audience.kid`, so a key object whose fields disagree
  // cannot claim another audience's boxes.
  const kid = audienceKeyId(audience.publicKey);
  let checked: SealedBox;
  try {
    checked = parseSealedBox(box);
  } catch (error) {
    if (error instanceof SignedObjectError) malformed(error.message, error);
    throw error;
  }
  if (!equalBytes(checked.kid, kid)) {
    throw new SealedError(
      'ERR_SEALED_KID',
      `the sealed box is for audience key ${kidText(checked.kid)}, not ${kidText(kid)}`,
    );
  }
  let plaintext: Uint8Array;
  try {
    const recipient = await hpkeRecipient(
      audience.secretKey,
      audience.publicKey,
      checked.enc,
      INFO,
    );
    plaintext = new Uint8Array(await recipient.open(checked.ct, aad));
  } catch (error) {
    // RFC 9180 §5.2: Open fails on any authentication error; the library also rejects an
    // `enc` that is not a usable X25519 point (§7.1.4). Either way the box does not open.
    throw new SealedError(
      'ERR_SEALED_OPEN',
      `the sealed box for audience key ${kidText(kid)} does not open for this CSI and mapping key`,
      { cause: error },
    );
  }
  return unpadEntries(plaintext);
}

/** A key id as the resolver and the CLI show it: unpadded base64url. */
function kidText(bytes: Uint8Array): string {
  return toBase64url(bytes);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
