import {
  KeyObject,
  constants,
  createHash,
  createPublicKey,
  privateDecrypt,
  publicEncrypt,
  timingSafeEqual,
  verify,
  webcrypto,
} from 'node:crypto';
import {
  AuthenticatorInput,
  AuthorizationHeader,
  Token,
  TokenChallenge,
  TOKEN_TYPES,
  WWWAuthenticateHeader,
  publicVerif,
  util,
} from '@cloudflare/privacypass-ts';
import {
  nativeBlindRsa,
  type BlindRsa,
  type BlindRsaKey,
  type RandomOctets,
} from './blind-rsa-native.js';
import { MimiError } from './errors.js';

/**
 * Privacy Pass tokens of type 2, publicly verifiable blind RSA (RFC 9578 §6,
 * RSABSSA-SHA384-PSS-Deterministic with 2048-bit keys), redeemed with the `PrivateToken` HTTP
 * authentication scheme (RFC 9577). The blind signatures, the token structures and the header
 * syntax are those of `@cloudflare/privacypass-ts`; this module puts bounds and checks around
 * them, names the errors, and gives the three parties one small API:
 *
 * - the **origin** (the resolver's gateway) makes a challenge (`tokenChallenge`), sends it
 *   (`challengeHeader`), reads the token back (`parseAuthorizationHeader`) and checks it
 *   (`verifyToken`), which also gives the token's spent id for double-spend detection;
 * - the **client** reads the challenge (`parseChallengeHeader`), asks the issuer
 *   (`createTokenRequest`), turns the issuer's response into a token (`finalize`) and sends it
 *   (`authorizationHeader`);
 * - the **issuer** makes keys (`generateIssuerKey`, `importIssuerKey`) and signs blinded
 *   requests (`issueToken`), never seeing the token it signs.
 *
 * Worked example (RFC 9578 Appendix A.2, vector 1): the token key is the SPKI `pkS` (RSASSA-PSS
 * OID with SHA-384 parameters); its key id is SHA-256(pkS) = `ca572f…2708`, so a token request
 * for it starts `0002 08`: token type 2, truncated key id 0x08 (the id's last octet).
 *
 * Everything here is pure (no sockets, timers or files); the time of `verifyToken` is given.
 */

/** Token type 2: blind RSA (2048-bit), RFC 9578 §6. */
export const TOKEN_TYPE_BLIND_RSA = 2;
/**
 * The EDNS(0) option that carries a token inside an Oblivious DoH query: a code of the local /
 * experimental range (65001–65534, RFC 6891 §9); its data is the raw token.
 */
export const PRIVATE_TOKEN_EDNS_OPTION = 65001;
/** Octets of a token key id, SHA-256 of the SPKI (RFC 9578 §6.5: Nid). */
export const TOKEN_KEY_ID_OCTETS = 32;
/** Octets of an authenticator, a blind signature and a blinded message (RFC 9578 §6: Nk). */
export const TOKEN_AUTHENTICATOR_OCTETS = 256;
/** Octets of a token of type 2 (RFC 9577 §2.2): type, nonce, challenge digest, key id, Nk. */
export const TOKEN_OCTETS = 2 + 32 + 32 + TOKEN_KEY_ID_OCTETS + TOKEN_AUTHENTICATOR_OCTETS;
/** Octets of a TokenRequest of type 2 (RFC 9578 §6.1): type, truncated key id, Nk. */
export const TOKEN_REQUEST_OCTETS = 2 + 1 + TOKEN_AUTHENTICATOR_OCTETS;
/** Octets of a TokenResponse of type 2 (RFC 9578 §6.2): the blind signature. */
export const TOKEN_RESPONSE_OCTETS = TOKEN_AUTHENTICATOR_OCTETS;
/** Modulus length of token keys, in bits (RFC 9578 §6: 2048-bit keys). */
export const TOKEN_KEY_MODULUS_BITS = 2048;
/**
 * Largest token key SPKI accepted. A 2048-bit RSASSA-PSS SPKI is 342 octets; the cap leaves
 * room for a different but valid DER spelling and refuses anything much larger unread.
 */
export const MAX_TOKEN_KEY_SPKI_OCTETS = 512;
/**
 * Largest TokenChallenge accepted or made: a host:port issuer name and one origin name need a
 * few hundred octets; the structure's own limits (2^16 − 1 per field) are far above any use.
 */
export const MAX_TOKEN_CHALLENGE_OCTETS = 1024;
/**
 * Longest `Authorization` header value parsed: one token is 472 characters of base64url, plus
 * the scheme and the parameter's name and quotes.
 */
export const MAX_AUTHORIZATION_HEADER_OCTETS = 2048;
/**
 * Longest `WWW-Authenticate` header value parsed: room for {@link MAX_TOKEN_CHALLENGES}
 * challenges, each a challenge and a token key (about 600 characters together).
 */
export const MAX_CHALLENGE_HEADER_OCTETS = 16 * 1024;
/** Most `PrivateToken` challenges taken from one `WWW-Authenticate` header value. */
export const MAX_TOKEN_CHALLENGES = 16;
/**
 * Token keys a client keeps parsed for blinding (the oldest is dropped past this): parsing an
 * SPKI into OpenSSL costs about a fifth of a native blinding, and a client fetches tokens under
 * the few keys of the few issuers it uses.
 */
export const MAX_CACHED_BLINDING_KEYS = 16;

/** Every code a {@link TokenError} can carry. */
export const TOKEN_ERROR_CODES = Object.freeze([
  /** Bytes or a header that are not what they claim: length, type, syntax, a bad key. */
  'ERR_TOKEN_MALFORMED',
  /** A token or request for a key id that no given key has. */
  'ERR_TOKEN_KEY_UNKNOWN',
  /** A token whose key is known but not valid now (expired, or not yet valid). */
  'ERR_TOKEN_KEY_EXPIRED',
  /** A token made for another challenge (its digest is not SHA-256 of the expected one). */
  'ERR_TOKEN_CHALLENGE',
  /** A token whose signature does not verify; or an issuer response that does not. */
  'ERR_TOKEN_INVALID',
] as const);

/** A code from {@link TOKEN_ERROR_CODES}. */
export type TokenErrorCode = (typeof TOKEN_ERROR_CODES)[number];

/** A token, challenge, request or response that cannot be used; `code` says why. */
export class TokenError extends MimiError<TokenErrorCode> {}

/** A token key of an issuer as origins and clients know it: the public half, with its validity. */
export interface TokenKey {
  /** SHA-256 of `spki` (RFC 9578 §6.5: token_key_id). */
  readonly id: Uint8Array;
  /** DER SubjectPublicKeyInfo with the RSASSA-PSS OID and SHA-384 parameters (RFC 9578 §6.5). */
  readonly spki: Uint8Array;
  /** Unix seconds from which tokens of the key are accepted. */
  readonly notBefore: number;
  /** Unix seconds from which they are no longer accepted. */
  readonly notAfter: number;
}

/** A token key pair of an issuer. The private key is extractable: the issuer stores it. */
export interface IssuerKey {
  /** SHA-256 of `spki`. */
  readonly id: Uint8Array;
  /** The public key as published (RFC 9578 §6.5). */
  readonly spki: Uint8Array;
  readonly privateKey: webcrypto.CryptoKey;
  readonly publicKey: webcrypto.CryptoKey;
}

/** A `PrivateToken` challenge read from a `WWW-Authenticate` header (RFC 9577 §2.1). */
export interface ParsedChallenge {
  /** The TokenChallenge, as its octets: what a token's challenge digest is computed over. */
  readonly challenge: Uint8Array;
  readonly issuerName: string;
  /** The origin names of the challenge; empty when it names none. */
  readonly originInfo: readonly string[];
  /** The token key the challenge names, as sent (checked for size only). */
  readonly tokenKey: Uint8Array;
}

/** A token request in progress, on the client. */
export interface PendingTokenRequest {
  /** The TokenRequest to POST to the issuer (`application/private-token-request`). */
  readonly request: Uint8Array;
  /**
   * Unblinds the issuer's TokenResponse into a token, checking its signature under the key the
   * request was made for. Once only.
   */
  finalize(response: Uint8Array): Promise<Uint8Array>;
}

/** What a verified token gives its origin. */
export interface VerifiedToken {
  /** The id of the key that signed it. */
  readonly keyId: Uint8Array;
  /** SHA-256 of the token's octets: what a double-spend store records. */
  readonly spentId: Uint8Array;
}

const { BlindRSAMode, Client, Issuer, TokenRequest, TokenResponse, getPublicKeyBytes } =
  publicVerif;
/** RSABSSA-SHA384-PSS-Deterministic (sLen 48), the variant RFC 9578 §6 names first. */
const MODE = BlindRSAMode.PSS;
const BLIND_RSA = TOKEN_TYPES.BLIND_RSA;
const subtle = webcrypto.subtle;

// ---------------------------------------------------------------------------------------------
// Keys

/**
 * The token key of an issuer's SPKI: checked to be a 2048-bit RSASSA-PSS key with SHA-384, MGF1
 * SHA-384 and a 48-octet salt (RFC 9578 §6.5), its id computed. Throws {@link TokenError}
 * `ERR_TOKEN_MALFORMED` for anything else, and for a validity that is not a whole-second range.
 */
export function tokenKeyFromSpki(spki: Uint8Array, notBefore: number, notAfter: number): TokenKey {
  checkSpki(spki);
  if (
    !Number.isSafeInteger(notBefore) ||
    !Number.isSafeInteger(notAfter) ||
    notBefore >= notAfter
  ) {
    throw new TokenError(
      'ERR_TOKEN_MALFORMED',
      `a token key's validity must be whole seconds with notBefore < notAfter (got ${notBefore}..${notAfter})`,
    );
  }
  const copy = Uint8Array.from(spki);
  return Object.freeze({ id: sha256(copy), spki: copy, notBefore, notAfter });
}

/** Throws unless `spki` is a token key of type 2 (see {@link tokenKeyFromSpki}). */
function checkSpki(spki: Uint8Array): void {
  if (spki.length === 0 || spki.length > MAX_TOKEN_KEY_SPKI_OCTETS) {
    throw new TokenError(
      'ERR_TOKEN_MALFORMED',
      `a token key is 1..${MAX_TOKEN_KEY_SPKI_OCTETS} octets, not ${spki.length}`,
    );
  }
  let details: ReturnType<typeof createPublicKey>['asymmetricKeyDetails'];
  let type: string | undefined;
  try {
    const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    type = key.asymmetricKeyType;
    details = key.asymmetricKeyDetails;
  } catch (cause) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'a token key is not a DER SubjectPublicKeyInfo', {
      cause,
    });
  }
  // RFC 9578 §6.5: the RSASSA-PSS OID (RFC 5756) with its parameters, not rsaEncryption.
  if (
    type !== 'rsa-pss' ||
    details?.modulusLength !== TOKEN_KEY_MODULUS_BITS ||
    details.hashAlgorithm !== 'sha384' ||
    details.mgf1HashAlgorithm !== 'sha384' ||
    details.saltLength !== 48
  ) {
    throw new TokenError(
      'ERR_TOKEN_MALFORMED',
      'a token key of type 2 is a 2048-bit RSASSA-PSS key with SHA-384, MGF1 SHA-384 and a 48-octet salt',
    );
  }
}

/**
 * A new token key pair (RSA-PSS 2048, SHA-384, exponent 65537), extractable so that the issuer
 * can store it ({@link exportIssuerKey}).
 */
export async function generateIssuerKey(): Promise<IssuerKey> {
  const pair = await Issuer.generateKey(MODE, {
    modulusLength: TOKEN_KEY_MODULUS_BITS,
    publicExponent: Uint8Array.of(1, 0, 1),
  });
  return issuerKeyOf(pair.privateKey as webcrypto.CryptoKey, pair.publicKey as webcrypto.CryptoKey);
}

/** The private key of an issuer key as PKCS#8 DER, for its key file. */
export async function exportIssuerKey(key: IssuerKey): Promise<Uint8Array> {
  return new Uint8Array(await subtle.exportKey('pkcs8', key.privateKey));
}

/**
 * An issuer key from its PKCS#8 DER private key (as {@link exportIssuerKey} writes it, or the
 * `skS` of RFC 9578's vectors once unwrapped from PEM). Throws {@link TokenError}
 * `ERR_TOKEN_MALFORMED` for anything but a 2048-bit RSA key with exponent 65537.
 */
export async function importIssuerKey(pkcs8: Uint8Array): Promise<IssuerKey> {
  const params = { name: 'RSA-PSS', hash: 'SHA-384' };
  let privateKey: webcrypto.CryptoKey;
  let publicKey: webcrypto.CryptoKey;
  try {
    privateKey = await subtle.importKey('pkcs8', Uint8Array.from(pkcs8), params, true, ['sign']);
    const jwk = await subtle.exportKey('jwk', privateKey);
    const { n, e } = jwk;
    if (n === undefined || e === undefined) throw new Error('the key has no modulus or exponent');
    publicKey = await subtle.importKey('jwk', { kty: 'RSA', n, e }, params, true, ['verify']);
  } catch (cause) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'not a PKCS#8 RSA private key', { cause });
  }
  const algorithm = privateKey.algorithm as webcrypto.RsaHashedKeyAlgorithm;
  const exponent = Buffer.from(algorithm.publicExponent).toString('hex').replace(/^0+/, '');
  if (algorithm.modulusLength !== TOKEN_KEY_MODULUS_BITS || exponent !== '10001') {
    throw new TokenError(
      'ERR_TOKEN_MALFORMED',
      `an issuer key is RSA ${TOKEN_KEY_MODULUS_BITS} with exponent 65537`,
    );
  }
  return issuerKeyOf(privateKey, publicKey);
}

async function issuerKeyOf(
  privateKey: webcrypto.CryptoKey,
  publicKey: webcrypto.CryptoKey,
): Promise<IssuerKey> {
  // RFC 9578 §6.5: the key is published (and its id computed) as an SPKI with the RSASSA-PSS
  // OID; WebCrypto exports rsaEncryption, which the library re-encodes.
  const spki = await getPublicKeyBytes(publicKey);
  return Object.freeze({ id: sha256(spki), spki, privateKey, publicKey });
}

// ---------------------------------------------------------------------------------------------
// Challenges

/**
 * A TokenChallenge (RFC 9577 §2.1) for token type 2 from `issuerName` (the issuer's URL
 * authority, `host:port`) for the origin `originName`, with an empty redemption context, so every
 * token of the issuer for that origin redeems it (cross-origin tokens are refused, and no
 * per-request context ties a token to a connection). Throws {@link TokenError}
 * `ERR_TOKEN_MALFORMED` for an empty name, a comma in the origin name (origin_info is a
 * comma-separated list) or a challenge over {@link MAX_TOKEN_CHALLENGE_OCTETS}.
 */
export function tokenChallenge(issuerName: string, originName: string): Uint8Array {
  checkChallengeName(issuerName, 'issuer name');
  checkChallengeName(originName, 'origin name');
  if (originName.includes(',')) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'an origin name must not contain a comma');
  }
  const bytes = new TokenChallenge(TOKEN_TYPE_BLIND_RSA, issuerName, new Uint8Array(0), [
    originName,
  ]).serialize();
  if (bytes.length > MAX_TOKEN_CHALLENGE_OCTETS) {
    throw new TokenError(
      'ERR_TOKEN_MALFORMED',
      `a token challenge is at most ${MAX_TOKEN_CHALLENGE_OCTETS} octets`,
    );
  }
  return bytes;
}

function checkChallengeName(name: string, what: string): void {
  // Printable ASCII: names are host:port authorities, and the library encodes them as UTF-8.
  if (!/^[\x21-\x7e]+$/.test(name)) {
    throw new TokenError('ERR_TOKEN_MALFORMED', `the ${what} must be printable ASCII, not empty`);
  }
}

/**
 * The fields of a TokenChallenge, read with bounds (the library's reader trusts its input):
 * `struct { uint16 token_type; opaque issuer_name<1..2^16-1>; opaque redemption_context<0..32>;
 * opaque origin_info<0..2^16-1>; }` (RFC 9577 §2.1), all of it and nothing after it.
 */
function decodeChallenge(bytes: Uint8Array): {
  tokenType: number;
  issuerName: string;
  redemptionContext: Uint8Array;
  originInfo: string[];
} {
  const malformed = (why: string): TokenError =>
    new TokenError('ERR_TOKEN_MALFORMED', `malformed token challenge: ${why}`);
  if (bytes.length > MAX_TOKEN_CHALLENGE_OCTETS) throw malformed('too long');
  let at = 0;
  const take = (n: number): Uint8Array => {
    if (at + n > bytes.length) throw malformed('truncated');
    const out = bytes.subarray(at, at + n);
    at += n;
    return out;
  };
  const u16 = (): number => {
    const b = take(2);
    return ((b[0] as number) << 8) | (b[1] as number);
  };
  const tokenType = u16();
  const issuerName = take(u16());
  const context = take(take(1)[0] as number);
  const origins = take(u16());
  if (at !== bytes.length) throw malformed('octets after its end');
  if (issuerName.length === 0) throw malformed('empty issuer name');
  if (context.length !== 0 && context.length !== 32) throw malformed('redemption context size');
  const text = (b: Uint8Array): string => {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(b);
    } catch {
      throw malformed('a name is not UTF-8');
    }
  };
  return {
    tokenType,
    issuerName: text(issuerName),
    redemptionContext: Uint8Array.from(context),
    originInfo: origins.length === 0 ? [] : text(origins).split(','),
  };
}

/**
 * The `WWW-Authenticate` value of one challenge for one token key (RFC 9577 §2.1):
 * `PrivateToken challenge="<base64url>",token-key="<base64url>"`. An origin sends one per key
 * it accepts.
 */
export function challengeHeader(challenge: Uint8Array, key: TokenKey): string {
  return new WWWAuthenticateHeader(libraryChallenge(challenge), Uint8Array.from(key.spki)).toString(
    true,
  );
}

/**
 * The library's TokenChallenge of `bytes`, read with bounds ({@link decodeChallenge}) and checked
 * to encode back to `bytes` exactly: what the library digests is what the origin sent.
 */
function libraryChallenge(bytes: Uint8Array): TokenChallenge {
  const parsed = decodeChallenge(bytes);
  const challenge = new TokenChallenge(
    parsed.tokenType,
    parsed.issuerName,
    parsed.redemptionContext,
    parsed.originInfo.length === 0 ? undefined : parsed.originInfo,
  );
  if (!bytesEqual(challenge.serialize(), bytes)) {
    throw new TokenError(
      'ERR_TOKEN_MALFORMED',
      'the token challenge does not encode back to itself',
    );
  }
  return challenge;
}

/**
 * The `PrivateToken` challenges of a `WWW-Authenticate` header value (RFC 9577 §2.1), in order,
 * of token type 2 only (other schemes and types are skipped, as RFC 9110 §11.6.1 lets a client
 * skip challenges it does not support). Throws {@link TokenError} `ERR_TOKEN_MALFORMED` for a
 * value over {@link MAX_CHALLENGE_HEADER_OCTETS}, more than {@link MAX_TOKEN_CHALLENGES}
 * challenges, a syntax error, or a challenge or token key that cannot be decoded.
 */
export function parseChallengeHeader(value: string): ParsedChallenge[] {
  if (value.length > MAX_CHALLENGE_HEADER_OCTETS) {
    throw new TokenError(
      'ERR_TOKEN_MALFORMED',
      `a WWW-Authenticate value is at most ${MAX_CHALLENGE_HEADER_OCTETS} characters`,
    );
  }
  let headers: WWWAuthenticateHeader[];
  try {
    headers = WWWAuthenticateHeader.parse(value);
  } catch (cause) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'malformed PrivateToken challenge', { cause });
  }
  if (headers.length > MAX_TOKEN_CHALLENGES) {
    throw new TokenError(
      'ERR_TOKEN_MALFORMED',
      `at most ${MAX_TOKEN_CHALLENGES} PrivateToken challenges are read`,
    );
  }
  const out: ParsedChallenge[] = [];
  for (const header of headers) {
    // Re-encoded by the library, then read again with bounds: what the client digests is what
    // the structure holds, whatever the library skipped while parsing.
    const challenge = header.challenge.serialize();
    const parsed = decodeChallenge(challenge);
    if (parsed.tokenType !== TOKEN_TYPE_BLIND_RSA) continue;
    if (header.tokenKey.length === 0 || header.tokenKey.length > MAX_TOKEN_KEY_SPKI_OCTETS) {
      throw new TokenError('ERR_TOKEN_MALFORMED', 'a challenge names a token key of a bad size');
    }
    out.push(
      Object.freeze({
        challenge,
        issuerName: parsed.issuerName,
        originInfo: Object.freeze(parsed.originInfo),
        tokenKey: Uint8Array.from(header.tokenKey),
      }),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tokens

/** The `Authorization` value that redeems `token` (RFC 9577 §2.2): `PrivateToken token="…"`. */
export function authorizationHeader(token: Uint8Array): string {
  return new AuthorizationHeader(decodeToken(token)).toString(true);
}

/**
 * The token of an `Authorization: PrivateToken token="…"` value (RFC 9577 §2.2), as its
 * canonical octets ({@link TOKEN_OCTETS}): exactly one token, of type 2. Throws
 * {@link TokenError} `ERR_TOKEN_MALFORMED` for anything else, and for a value over
 * {@link MAX_AUTHORIZATION_HEADER_OCTETS}.
 */
export function parseAuthorizationHeader(value: string): Uint8Array {
  if (value.length > MAX_AUTHORIZATION_HEADER_OCTETS) {
    throw new TokenError(
      'ERR_TOKEN_MALFORMED',
      `a PrivateToken authorization is at most ${MAX_AUTHORIZATION_HEADER_OCTETS} characters`,
    );
  }
  let headers: AuthorizationHeader[];
  try {
    headers = AuthorizationHeader.parse(BLIND_RSA, value);
  } catch (cause) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'malformed PrivateToken authorization', { cause });
  }
  const [only] = headers;
  if (only === undefined || headers.length !== 1) {
    throw new TokenError(
      'ERR_TOKEN_MALFORMED',
      'the authorization must carry exactly one PrivateToken token',
    );
  }
  // Re-serialized: the canonical octets, so that a token spelled two ways has one spent id.
  return only.token.serialize();
}

/**
 * The library's Token of `bytes`: exactly {@link TOKEN_OCTETS} octets of type 2. (Its reader
 * ignores trailing octets and reads a subarray's whole buffer; a fresh copy of the exact length
 * avoids both.)
 */
function decodeToken(bytes: Uint8Array): Token {
  if (bytes.length !== TOKEN_OCTETS) {
    throw new TokenError(
      'ERR_TOKEN_MALFORMED',
      `a token of type 2 is ${TOKEN_OCTETS} octets, not ${bytes.length}`,
    );
  }
  if ((((bytes[0] as number) << 8) | (bytes[1] as number)) !== TOKEN_TYPE_BLIND_RSA) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'not a token of type 2');
  }
  try {
    return Token.deserialize(BLIND_RSA, Uint8Array.from(bytes));
  } catch (cause) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'malformed token', { cause });
  }
}

/**
 * Verifies a token for the origin (RFC 9578 §6.4) against the challenge it expects and the
 * keys it accepts, at `nowS` (unix seconds), checking in this order, each with its own
 * {@link TokenError} code:
 *
 * 1. `ERR_TOKEN_MALFORMED`: the token is {@link TOKEN_OCTETS} octets of type 2;
 * 2. `ERR_TOKEN_CHALLENGE`: its challenge digest is SHA-256(`challenge`);
 * 3. `ERR_TOKEN_KEY_UNKNOWN`: its key id is the id of one of `keys`;
 * 4. `ERR_TOKEN_KEY_EXPIRED`: that key is valid at `nowS` (notBefore ≤ nowS < notAfter);
 * 5. `ERR_TOKEN_INVALID`: the signature verifies under the key.
 *
 * A key whose SPKI does not import is the verifier's fault, not the token's: `ERR_TOKEN_MALFORMED`.
 *
 * Returns the key id and the spent id (SHA-256 of the token) the caller records so that the
 * token is redeemed once.
 */
export async function verifyToken(
  token: Uint8Array,
  challenge: Uint8Array,
  keys: readonly TokenKey[],
  nowS: number,
): Promise<VerifiedToken> {
  const parsed = decodeToken(token);
  const { challengeDigest, tokenKeyId } = parsed.authInput;
  if (!bytesEqual(challengeDigest, sha256(challenge))) {
    throw new TokenError('ERR_TOKEN_CHALLENGE', 'the token was made for another challenge');
  }
  const known = keys.filter((k) => bytesEqual(k.id, tokenKeyId));
  if (known.length === 0) {
    throw new TokenError('ERR_TOKEN_KEY_UNKNOWN', 'the token key is not one of the accepted keys');
  }
  const key = known.find((k) => k.notBefore <= nowS && nowS < k.notAfter);
  if (key === undefined) {
    throw new TokenError('ERR_TOKEN_KEY_EXPIRED', 'the token key is not valid now');
  }
  // RSASSA-PSS-VERIFY (RFC 8017 §8.1.2) of the token input, as the library's Origin does it
  // through WebCrypto, but synchronously in OpenSSL: no promise and key job per token.
  // Outside the `try`: a key that does not import is not the token's fault (see above).
  const publicKey = verifyingKey(key);
  let valid: boolean;
  try {
    valid = verify(
      'sha384',
      parsed.authInput.serialize(),
      { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 },
      parsed.authenticator,
    );
  } catch {
    valid = false;
  }
  if (!valid) throw new TokenError('ERR_TOKEN_INVALID', 'the token signature does not verify');
  return Object.freeze({ keyId: Uint8Array.from(key.id), spentId: sha256(token) });
}

// ---------------------------------------------------------------------------------------------
// Issuance

/**
 * Starts the issuance of one token for `challenge` under the token key `spki` (RFC 9578 §6.1):
 * a fresh nonce, the challenge digest and the key id, blinded. The blinding and the finalizing
 * run on `node:crypto` where the runtime has it (about 1 ms of CPU a token, against about 50 ms
 * in the library's JavaScript bignums), with the library otherwise. Throws {@link TokenError}
 * `ERR_TOKEN_MALFORMED` for a challenge that does not decode or is not of type 2, or a key
 * that is not a token key of type 2.
 */
export async function createTokenRequest(
  challenge: Uint8Array,
  spki: Uint8Array,
): Promise<PendingTokenRequest> {
  const tokenChallenge = libraryChallenge(challenge);
  if (tokenChallenge.tokenType !== TOKEN_TYPE_BLIND_RSA) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'the challenge is not for token type 2');
  }
  if (nativeBlindRsa === undefined) {
    checkSpki(spki);
    return libraryTokenRequest(tokenChallenge, spki);
  }
  return nativeTokenRequest(nativeBlindRsa, challenge, spki);
}

/** Random octets from WebCrypto, looked up at each call (the vector tests replay them). */
const randomOctets: RandomOctets = (octets) => webcrypto.getRandomValues(new Uint8Array(octets));

/**
 * {@link createTokenRequest} with the blinding and the finalizing on `node:crypto`
 * (`blind-rsa-native.ts`) and the token structures of the library: the same steps as the
 * library's client (RFC 9578 §6.1 and §6.3), drawing the nonce, the salt and the blind in the
 * same order, so both give the same octets for the same random octets.
 */
function nativeTokenRequest(
  blindRsa: BlindRsa,
  challenge: Uint8Array,
  spki: Uint8Array,
): PendingTokenRequest {
  const { key, keyId } = blindingKey(blindRsa, spki);
  let authInput: AuthenticatorInput;
  let tokenInput: Uint8Array;
  let blinded: ReturnType<BlindRsa['blind']>;
  let request: Uint8Array;
  try {
    const nonce = randomOctets(32);
    authInput = new AuthenticatorInput(BLIND_RSA, BLIND_RSA.value, nonce, sha256(challenge), keyId);
    tokenInput = authInput.serialize();
    blinded = blindRsa.blind(key, tokenInput, randomOctets);
    request = new TokenRequest(
      keyId[TOKEN_KEY_ID_OCTETS - 1] as number,
      blinded.blindedMsg,
      BLIND_RSA,
    ).serialize();
  } catch (cause) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'cannot blind a request for the token key', {
      cause,
    });
  }
  let used = false;
  return Object.freeze({
    request,
    finalize(response: Uint8Array): Promise<Uint8Array> {
      if (used) {
        return Promise.reject(
          new TokenError('ERR_TOKEN_MALFORMED', 'the request was finalized already'),
        );
      }
      if (response.length !== TOKEN_RESPONSE_OCTETS) {
        return Promise.reject(
          new TokenError(
            'ERR_TOKEN_MALFORMED',
            `a token response of type 2 is ${TOKEN_RESPONSE_OCTETS} octets, not ${response.length}`,
          ),
        );
      }
      used = true;
      // RFC 9474 §4.4: finalize verifies the unblinded signature; a bad one is the issuer's.
      const authenticator = blindRsa.finalize(key, tokenInput, response, blinded.inv);
      if (authenticator === undefined) {
        return Promise.reject(
          new TokenError('ERR_TOKEN_INVALID', 'the issuer response does not verify'),
        );
      }
      return Promise.resolve(new Token(BLIND_RSA, authInput, authenticator).serialize());
    },
  });
}

/**
 * A token key checked ({@link checkSpki}) and parsed for blinding, with its id: from the cache
 * when the client used the same SPKI before (keyed by its octets, so a changed array is another
 * key), else parsed and cached, the oldest of {@link MAX_CACHED_BLINDING_KEYS} dropped.
 */
function blindingKey(
  blindRsa: BlindRsa,
  spki: Uint8Array,
): { key: BlindRsaKey; keyId: Uint8Array } {
  const name = Buffer.from(spki).toString('base64');
  const cached = blindingKeys.get(name);
  if (cached !== undefined) return cached;
  checkSpki(spki);
  let key: BlindRsaKey;
  try {
    // OpenSSL's raw RSA takes rsaEncryption SPKIs only (as WebCrypto); the library re-encodes.
    key = blindRsa.importKey(util.convertRSASSAPSSToEnc(Uint8Array.from(spki)));
  } catch (cause) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'cannot blind a request for the token key', {
      cause,
    });
  }
  const entry = Object.freeze({ key, keyId: sha256(spki) });
  if (blindingKeys.size >= MAX_CACHED_BLINDING_KEYS) {
    const oldest = blindingKeys.keys().next();
    if (oldest.done !== true) blindingKeys.delete(oldest.value);
  }
  blindingKeys.set(name, entry);
  return entry;
}

/** {@link createTokenRequest} with the library's client, where `node:crypto` is not there. */
async function libraryTokenRequest(
  tokenChallenge: TokenChallenge,
  spki: Uint8Array,
): Promise<PendingTokenRequest> {
  const client = new Client(MODE);
  let request: Uint8Array;
  try {
    request = (await client.createTokenRequest(tokenChallenge, Uint8Array.from(spki))).serialize();
  } catch (cause) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'cannot blind a request for the token key', {
      cause,
    });
  }
  let used = false;
  return Object.freeze({
    request,
    async finalize(response: Uint8Array): Promise<Uint8Array> {
      if (used) throw new TokenError('ERR_TOKEN_MALFORMED', 'the request was finalized already');
      if (response.length !== TOKEN_RESPONSE_OCTETS) {
        throw new TokenError(
          'ERR_TOKEN_MALFORMED',
          `a token response of type 2 is ${TOKEN_RESPONSE_OCTETS} octets, not ${response.length}`,
        );
      }
      used = true;
      try {
        const token = await client.finalize(new TokenResponse(Uint8Array.from(response)));
        return token.serialize();
      } catch (cause) {
        // RFC 9474 §4.4: finalize verifies the unblinded signature; a bad one is the issuer's.
        throw new TokenError('ERR_TOKEN_INVALID', 'the issuer response does not verify', {
          cause,
        });
      }
    },
  });
}

/**
 * The truncated key id a TokenRequest names (RFC 9578 §6.1: the last octet of the key id),
 * after checking its size and type. Throws {@link TokenError} `ERR_TOKEN_MALFORMED`.
 */
export function tokenRequestKeyId(request: Uint8Array): number {
  if (request.length !== TOKEN_REQUEST_OCTETS) {
    throw new TokenError(
      'ERR_TOKEN_MALFORMED',
      `a token request of type 2 is ${TOKEN_REQUEST_OCTETS} octets, not ${request.length}`,
    );
  }
  if ((((request[0] as number) << 8) | (request[1] as number)) !== TOKEN_TYPE_BLIND_RSA) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'not a token request of type 2');
  }
  return request[2] as number;
}

/**
 * Whether the blinded message of a well-formed TokenRequest is below the key's modulus, as
 * RSASP1 requires (RFC 8017 §5.2.1); both are {@link TOKEN_AUTHENTICATOR_OCTETS} octets
 * big-endian, so octet order is number order. Lets an issuer refuse a request it could not
 * sign before it counts it.
 */
export async function blindedMessageInRange(request: Uint8Array, key: IssuerKey): Promise<boolean> {
  tokenRequestKeyId(request);
  const modulus = await modulusOf(key);
  const blinded = Buffer.from(request.subarray(3));
  return modulus.length === TOKEN_AUTHENTICATOR_OCTETS && Buffer.compare(blinded, modulus) < 0;
}

/**
 * Signs a blinded TokenRequest with an issuer key (RFC 9578 §6.2) and returns the
 * TokenResponse. Throws {@link TokenError} `ERR_TOKEN_MALFORMED` for a request of the wrong
 * size or type or one that cannot be signed (a blinded message not below the modulus), and
 * `ERR_TOKEN_KEY_UNKNOWN` when its truncated key id is not the key's.
 *
 * BlindSign (RFC 9474 §4.3) is RSASP1 on the blinded message, then RSAVP1 of the result, which
 * must give the message back (a fault in the private operation would otherwise leak the key).
 * Both are OpenSSL's raw RSA operations (`RSA_NO_PADDING`, with CRT and blinding): the
 * library's own signer computes the power without CRT in JavaScript, at about 0.4–0.7 s per
 * token on the event loop, against about 1 ms here; the results are the same octets (the RFC
 * 9578 vectors' token_response is reproduced by the tests).
 */
export async function issueToken(request: Uint8Array, issuerKey: IssuerKey): Promise<Uint8Array> {
  const truncated = tokenRequestKeyId(request);
  if (truncated !== issuerKey.id[TOKEN_KEY_ID_OCTETS - 1]) {
    throw new TokenError('ERR_TOKEN_KEY_UNKNOWN', 'the request is for another token key');
  }
  if (!(await blindedMessageInRange(request, issuerKey))) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'the blinded message is not below the modulus');
  }
  const blinded = request.subarray(3);
  try {
    const { privateKey, publicKey } = keyObjectsOf(issuerKey);
    const signature = privateDecrypt(
      { key: privateKey, padding: constants.RSA_NO_PADDING },
      blinded,
    );
    const back = publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, signature);
    if (!bytesEqual(back, blinded)) throw new Error('RSAVP1 does not give the message back');
    return new Uint8Array(signature);
  } catch (cause) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'the token request cannot be signed', { cause });
  }
}

// ---------------------------------------------------------------------------------------------

// Per-key work done once, not per token: a gateway verifies every request's token under one of
// a few keys, and an issuer signs every token with one. Keyed by the key objects themselves
// (frozen, held by their owners), so the caches go with them.

/** The OpenSSL key a {@link TokenKey} verifies with, imported once. */
const verifyingKeys = new WeakMap<TokenKey, KeyObject>();

function verifyingKey(key: TokenKey): KeyObject {
  let imported = verifyingKeys.get(key);
  if (imported === undefined) {
    try {
      // The RSASSA-PSS SPKI as published: OpenSSL holds its parameters (SHA-384, MGF1 SHA-384,
      // salt of at least 48 octets) and refuses a verification outside them.
      imported = createPublicKey({ key: Buffer.from(key.spki), format: 'der', type: 'spki' });
    } catch (cause) {
      throw new TokenError('ERR_TOKEN_MALFORMED', 'the token key cannot be imported', { cause });
    }
    verifyingKeys.set(key, imported);
  }
  return imported;
}

/** Token keys parsed for blinding, by their SPKI in base64 (see {@link blindingKey}). */
const blindingKeys = new Map<string, { key: BlindRsaKey; keyId: Uint8Array }>();

/** An issuer key's modulus, big-endian. */
const moduli = new WeakMap<IssuerKey, Promise<Buffer>>();

function modulusOf(key: IssuerKey): Promise<Buffer> {
  let modulus = moduli.get(key);
  if (modulus === undefined) {
    modulus = subtle
      .exportKey('jwk', key.publicKey)
      .then((jwk) => Buffer.from(jwk.n ?? '', 'base64url'));
    moduli.set(key, modulus);
  }
  return modulus;
}

/** An issuer key as OpenSSL's key objects, for the raw RSA operations of {@link issueToken}. */
const keyObjects = new WeakMap<IssuerKey, { privateKey: KeyObject; publicKey: KeyObject }>();

function keyObjectsOf(key: IssuerKey): { privateKey: KeyObject; publicKey: KeyObject } {
  let objects = keyObjects.get(key);
  if (objects === undefined) {
    objects = {
      privateKey: KeyObject.from(key.privateKey),
      publicKey: KeyObject.from(key.publicKey),
    };
    keyObjects.set(key, objects);
  }
  return objects;
}

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
