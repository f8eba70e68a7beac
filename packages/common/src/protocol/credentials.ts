import type * as X509 from '@peculiar/x509';
import type { SDJwtInstance } from '@sd-jwt/core';
import { sha256 } from '@noble/hashes/sha2.js';
import { compareBytes, fromBase64url as decodeBase64url, toBase64url } from './bytes.js';
import { parseCsi } from './csi.js';
import { ED25519_PUBLIC_KEY_OCTETS, ED25519_SECRET_KEY_OCTETS, sign, verify } from './ed25519.js';
import { MimiError } from './errors.js';
import { canonicalName } from './names.js';
import type { AuthkeyData } from './records.js';
import { DNSSEC_ALGORITHM_ED25519 } from './records.js';
import type { Attestation, CredentialFormat } from './signed.js';

/**
 * Credentials from the prover (docs/protocol.md, "Credentials"): the binding an Attestation
 * makes — this CSI is controlled by the holder of this Ed25519 key — in the two forms MLS
 * credentials take (RFC 9420 §5.3: X.509 certificates; the MIMI working group's SD-JWT
 * credentials), issued by a DP's prover with its prover key and checked by anyone against the
 * range's AUTHKEY RRset, with no certificate authority beyond DNSSEC.
 *
 * X.509 (RFC 5280), Ed25519 (RFC 8410):
 * - the prover certificate is derivable from the AUTHKEY: subject = issuer = `CN=<zone>`,
 *   serial from SHA-256 of the key, notBefore 1970-01-01T00:00:00Z, notAfter the AUTHKEY's
 *   notAfter, CA with pathLen 0, keyCertSign, SKI the first 20 octets of SHA-256 of the key,
 *   self-signed. Its to-be-signed part depends on (zone, AUTHKEY) only, so a verifier rebuilds it
 *   from DNS and compares ({@link proverCertificateMatches}); its trust is the DNSSEC-validated
 *   AUTHKEY, not its self-signature. It exists so that stock X.509 software (`openssl verify
 *   -CAfile prover.pem leaf.pem`) can check the credential.
 * - the credential (leaf): issuer `CN=<zone>`, empty subject, a critical subjectAltName with
 *   one URI, the CSI (RFC 5280 §4.2.1.6: a subject that is only in the SAN leaves the subject
 *   empty and marks the SAN critical), the recipient's key, validity = the attestation's
 *   nbf to exp − 1 (X.509's notAfter is inclusive), CA:FALSE, digitalSignature, AKI = the prover's SKI, serial from SHA-256 of the
 *   attestation. Ed25519 signatures are deterministic (RFC 8032 §5.1.6) and so is everything
 *   else: the same attestation gives the same octets.
 *
 * SD-JWT (RFC 9901) with `typ: dc+sd-jwt`: `iss` `dns:<zone>` (RFC 4501), `vct`
 * {@link CREDENTIAL_VCT}, `iat`/`nbf` the attestation's `nbf`, `exp` its `exp`, `cnf.jwk` the
 * recipient key (RFC 7800 §3.2, RFC 8037 §2), and the CSI as the one selectively disclosable
 * claim `csi` (RFC 9901 §4.2.1), hashed with SHA-256. Its salts are random (RFC 9901 §9.3), so an
 * SD-JWT is not reproducible; the caller supplies the randomness.
 *
 * Verification here is pure: the caller gives the range's zone and its AUTHKEY records (as a
 * validating resolver gave them: runtime/credential-verify.ts) and the time. A credential counts
 * only under an unexpired AUTHKEY `prover` of that zone: a certificate or JWT signed by any other
 * key, however well formed, is {@link CredentialError} `ERR_CREDENTIAL_PROVER_NOT_AUTHORIZED`.
 */

/** The SD-JWT `vct` of a CSI binding (RFC 9901 §3.2.2.1.1: a collision-resistant name). */
export const CREDENTIAL_VCT = 'urn:mimi-discovery:credential:csi-binding:1';
/** The SD-JWT `typ` header (RFC 9901 §3.2.1). */
export const SD_JWT_TYP = 'dc+sd-jwt';
/** The JWS algorithm of every credential JWT: Ed25519 (RFC 8037 §3.1). */
export const SD_JWT_ALG = 'EdDSA';
/** Octets of each SD-JWT disclosure salt: 128 bits, as RFC 9901 §9.3 recommends. */
export const SD_JWT_SALT_OCTETS = 16;
/**
 * Longest credential a verifier reads, in octets (the text of a PEM file or an SD-JWT): about
 * ten times an honest one, so a hostile input cannot make a verifier parse megabytes.
 */
export const MAX_CREDENTIAL_OCTETS = 16 * 1024;
/**
 * The notAfter of a prover certificate whose AUTHKEY never expires (RFC 5280 §4.1.2.5:
 * 99991231235959Z means "no well-defined expiration date"): an AUTHKEY notAfter of 2^32 − 1.
 */
export const NO_WELL_DEFINED_EXPIRATION = Date.UTC(9999, 11, 31, 23, 59, 59) / 1000;
/** The AUTHKEY notAfter that means "no expiry": the largest u32. */
export const AUTHKEY_NO_EXPIRY = 0xffffffff;
/** Octets of a certificate serial taken from SHA-256 (RFC 5280 §4.1.2.2 allows up to 20). */
export const CERTIFICATE_SERIAL_OCTETS = 16;
/** Octets of a key identifier: the first 20 of SHA-256 of the key (RFC 7093 §2, method 1). */
export const KEY_IDENTIFIER_OCTETS = 20;

/** The stable codes of a {@link CredentialError}. */
export const CREDENTIAL_ERROR_CODES = Object.freeze([
  'ERR_CREDENTIAL_MALFORMED',
  'ERR_CREDENTIAL_BAD_SIGNATURE',
  'ERR_CREDENTIAL_PROVER_NOT_AUTHORIZED',
  'ERR_CREDENTIAL_EXPIRED',
  'ERR_CREDENTIAL_NOT_YET_VALID',
  'ERR_CREDENTIAL_RANGE_MISMATCH',
  'ERR_CREDENTIAL_UNVERIFIABLE',
] as const);
/** A code of {@link CREDENTIAL_ERROR_CODES}. */
export type CredentialErrorCode = (typeof CREDENTIAL_ERROR_CODES)[number];

/**
 * A credential that does not verify: `ERR_CREDENTIAL_MALFORMED` (not a credential of a profile),
 * `_BAD_SIGNATURE` (the signature or a disclosure does not check), `_PROVER_NOT_AUTHORIZED`
 * (not signed by an unexpired AUTHKEY prover of the range), `_EXPIRED`, `_NOT_YET_VALID`,
 * `_RANGE_MISMATCH` (the CSI is not of the issuer's range), `_UNVERIFIABLE` (DNS could not vouch
 * for the range's keys).
 */
export class CredentialError extends MimiError<CredentialErrorCode> {}

/** An AUTHKEY `prover` as a prover certificate needs it. */
export interface ProverAuthkey {
  /** The Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** Seconds since the epoch; {@link AUTHKEY_NO_EXPIRY} for none. */
  readonly notAfter: number;
}

/** What a prover issues a credential from: a verified attestation and its own key. */
export interface CredentialIssue {
  /** The range's zone (the issuer), with or without the final dot. */
  readonly zone: string;
  /** The canonical CSI the attestation binds. */
  readonly csi: string;
  /** The attestation, verified by the caller for `csi`; its prover is `prover`'s key. */
  readonly attestation: Attestation;
  /** The prover's 32-octet secret key (seed) and its AUTHKEY's notAfter. */
  readonly prover: { readonly secretKey: Uint8Array; readonly notAfter: number };
}

/** An issued X.509 credential, PEM. */
export interface X509Credential {
  /** The leaf certificate. */
  readonly credential: string;
  /** The prover certificate, derivable from the AUTHKEY. */
  readonly issuer: string;
}

/** A credential that verified. */
export interface VerifiedCredential {
  readonly format: CredentialFormat;
  /** The CSI; absent for an SD-JWT that does not disclose it. */
  readonly csi?: string;
  /** The recipient's Ed25519 public key. */
  readonly key: Uint8Array;
  /** The prover's public key: an AUTHKEY prover of `zone`. */
  readonly prover: Uint8Array;
  /** The range's zone, without the final dot. */
  readonly zone: string;
  readonly nbf: number;
  readonly exp: number;
}

/** What a verifier must look up in DNS before checking a credential. */
export type CredentialSubject =
  | { readonly format: 'x509'; readonly csi: string; readonly zone: string }
  | { readonly format: 'sd-jwt'; readonly zone: string; readonly csi?: string };

// ---------------------------------------------------------------------------------------------
// Shared pieces

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** RFC 8410 §3: the AlgorithmIdentifier of Ed25519, id-Ed25519 (1.3.101.112), no parameters. */
const ED25519_ALGORITHM_DER = Uint8Array.of(0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70);
/** RFC 8410 §4: SubjectPublicKeyInfo of an Ed25519 key up to the 32 key octets. */
const ED25519_SPKI_PREFIX = Uint8Array.of(
  0x30,
  0x2a,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x03,
  0x21,
  0x00,
);
/** RFC 8410 §7: OneAsymmetricKey of an Ed25519 seed up to the 32 seed octets. */
const ED25519_PKCS8_PREFIX = Uint8Array.of(
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x04,
  0x22,
  0x04,
  0x20,
);
/**
 * A fixed key that "signs" the prover certificate a verifier rebuilds: only its to-be-signed
 * part is compared, and that does not depend on the signing key.
 */
const TBS_ONLY_SEED = new Uint8Array(ED25519_SECRET_KEY_OCTETS).fill(1);
const OID_SUBJECT_ALT_NAME = '2.5.29.17';
/**
 * The extensions of a credential, each once: subjectAltName, basicConstraints, keyUsage,
 * authorityKeyIdentifier. Any other is refused: RFC 5280 §4.2 has a verifier reject a critical
 * extension it does not know, and the profile has no use for a non-critical one.
 */
const LEAF_EXTENSIONS = Object.freeze([
  OID_SUBJECT_ALT_NAME,
  '2.5.29.19',
  '2.5.29.15',
  '2.5.29.35',
]);

/**
 * The X.509 library, loaded on first use: it and its ASN.1 schemas take a few hundred
 * milliseconds to load, which every process importing common (servers, each CLI command) would
 * otherwise pay. It resolves its services through tsyringe, which needs the Reflect metadata
 * polyfill loaded first. The module loader keeps both once loaded.
 */
async function loadX509(): Promise<typeof X509> {
  await import('reflect-metadata');
  return import('@peculiar/x509');
}

/** The SD-JWT library's issuer and verifier class, loaded on first use as {@link loadX509}. */
async function loadSdJwt(): Promise<typeof SDJwtInstance> {
  return (await import('@sd-jwt/core')).SDJwtInstance;
}
const ED25519 = { name: 'Ed25519' } as const;
/** A WebCrypto key, named without the DOM library. */
type WebCryptoKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return compareBytes(a, b) === 0;
}

/** Canonical unpadded base64url (bytes.ts) to bytes; anything else is malformed. */
function fromBase64url(text: string, what: string): Uint8Array {
  return decodeBase64url(text) ?? malformed(`${what} is not in canonical unpadded base64url`);
}

function malformed(message: string, cause?: unknown): never {
  throw new CredentialError(
    'ERR_CREDENTIAL_MALFORMED',
    message,
    cause === undefined ? undefined : { cause },
  );
}

/** The zone in presentation form without the final dot, as `CN=` and `dns:` carry it. */
function zoneText(zone: string): string {
  const name = canonicalName(zone);
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/** A zone named by a credential, in the form {@link zoneText} gives; malformed if not a name. */
function checkedZone(zone: string, what: string): string {
  try {
    return zoneText(zone);
  } catch (error) {
    malformed(`${what} is not a domain name`, error);
  }
}

/** The key identifier of a key (RFC 7093 §2 method 1 with SHA-256): 20 octets. */
export function keyIdentifier(publicKey: Uint8Array): Uint8Array {
  return sha256(publicKey).slice(0, KEY_IDENTIFIER_OCTETS);
}

/** A serial from SHA-256 of `input`: 16 octets, top bit clear (RFC 5280 §4.1.2.2: positive). */
function serialOf(input: Uint8Array): string {
  const serial = sha256(input).slice(0, CERTIFICATE_SERIAL_OCTETS);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  return hex(serial);
}

function checkKey(key: Uint8Array, what: string): void {
  if (!(key instanceof Uint8Array) || key.length !== ED25519_PUBLIC_KEY_OCTETS) {
    throw new RangeError(`${what} must be a 32-octet Ed25519 public key`);
  }
}

async function importSecretKey(seed: Uint8Array): Promise<WebCryptoKey> {
  if (!(seed instanceof Uint8Array) || seed.length !== ED25519_SECRET_KEY_OCTETS) {
    throw new RangeError('a secret key is a 32-octet Ed25519 seed');
  }
  return crypto.subtle.importKey('pkcs8', concat(ED25519_PKCS8_PREFIX, seed), ED25519, false, [
    'sign',
  ]);
}

async function importPublicKey(key: Uint8Array): Promise<WebCryptoKey> {
  return crypto.subtle.importKey('raw', key, ED25519, true, ['verify']);
}

function dateOf(seconds: number): Date {
  return new Date(seconds * 1000);
}

function notAfterOf(authkeyNotAfter: number): Date {
  return dateOf(
    authkeyNotAfter >= AUTHKEY_NO_EXPIRY ? NO_WELL_DEFINED_EXPIRATION : authkeyNotAfter,
  );
}

// ---------------------------------------------------------------------------------------------
// DER: the three parts of a Certificate (RFC 5280 §4.1)

interface DerElement {
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
}

function readDer(bytes: Uint8Array, at: number, limit: number): DerElement {
  const lengthOctet = bytes[at + 1];
  if (at + 2 > limit || lengthOctet === undefined) malformed('truncated DER');
  let length = lengthOctet;
  let contentStart = at + 2;
  if (lengthOctet & 0x80) {
    const count = lengthOctet & 0x7f;
    if (count === 0 || count > 3) malformed('unsupported DER length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (bytes[contentStart + i] ?? 0);
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > limit) malformed('truncated DER');
  return { start: at, contentStart, end };
}

/** The to-be-signed octets, the signature algorithm and the signature of a certificate. */
function certificateParts(der: Uint8Array): {
  readonly tbs: Uint8Array;
  readonly algorithm: Uint8Array;
  readonly signature: Uint8Array;
} {
  const outer = readDer(der, 0, der.length);
  if (der[0] !== 0x30 || outer.end !== der.length) malformed('not a DER certificate');
  const tbs = readDer(der, outer.contentStart, outer.end);
  const algorithm = readDer(der, tbs.end, outer.end);
  const signature = readDer(der, algorithm.end, outer.end);
  if (signature.end !== outer.end || der[signature.start] !== 0x03) {
    malformed('not a DER certificate');
  }
  // A BIT STRING's first content octet counts its unused bits: 0 for a signature.
  if (der[signature.contentStart] !== 0) malformed('the signature has unused bits');
  return {
    tbs: der.slice(tbs.start, tbs.end),
    algorithm: der.slice(algorithm.start, algorithm.end),
    signature: der.slice(signature.contentStart + 1, signature.end),
  };
}

// ---------------------------------------------------------------------------------------------
// X.509

async function buildProverCertificate(
  x509: typeof X509,
  zone: string,
  authkey: ProverAuthkey,
  signingSeed: Uint8Array,
): Promise<X509.X509Certificate> {
  checkKey(authkey.publicKey, 'the AUTHKEY');
  const name = `CN=${zoneText(zone)}`;
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: serialOf(authkey.publicKey),
      subject: name,
      issuer: name,
      notBefore: dateOf(0),
      notAfter: notAfterOf(authkey.notAfter),
      signingAlgorithm: ED25519,
      publicKey: await importPublicKey(authkey.publicKey),
      signingKey: await importSecretKey(signingSeed),
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
        new x509.SubjectKeyIdentifierExtension(hex(keyIdentifier(authkey.publicKey))),
      ],
    },
    crypto,
  );
}

/**
 * The prover certificate of an AUTHKEY, PEM, signed with the prover's secret key (see the
 * module comment). Same inputs, same octets.
 */
export async function proverCertificate(
  zone: string,
  authkey: ProverAuthkey,
  secretKey: Uint8Array,
): Promise<string> {
  const x509 = await loadX509();
  return (await buildProverCertificate(x509, zone, authkey, secretKey)).toString('pem');
}

/**
 * Whether `pem` is the prover certificate of this AUTHKEY of `zone`: its to-be-signed part
 * equals the one rebuilt from the zone and the AUTHKEY, and its self-signature verifies.
 */
export async function proverCertificateMatches(
  pem: string,
  zone: string,
  authkey: ProverAuthkey,
): Promise<boolean> {
  const x509 = await loadX509();
  const presented = certificateParts(readPemCertificates(pem)[0] as Uint8Array);
  const rebuilt = certificateParts(
    new Uint8Array((await buildProverCertificate(x509, zone, authkey, TBS_ONLY_SEED)).rawData),
  );
  return (
    equalBytes(presented.tbs, rebuilt.tbs) &&
    equalBytes(presented.algorithm, ED25519_ALGORITHM_DER) &&
    verify(presented.signature, presented.tbs, authkey.publicKey)
  );
}

/**
 * Issues the X.509 credential of an attestation: the leaf (see the module comment) and the
 * prover certificate, both PEM. The caller has verified the attestation for `csi` and checked
 * that its prover is the key of `prover.secretKey` and an AUTHKEY of the zone.
 */
export async function issueX509Credential(input: CredentialIssue): Promise<X509Credential> {
  const { attestation: att } = input;
  checkKey(att.key, 'the attestation key');
  const x509 = await loadX509();
  const proverKeys = await importSecretKey(input.prover.secretKey);
  const issuer = await buildProverCertificate(
    x509,
    input.zone,
    { publicKey: att.prover, notAfter: input.prover.notAfter },
    input.prover.secretKey,
  );
  const leaf = await x509.X509CertificateGenerator.create(
    {
      // The attestation's prover signature covers the CSI (signed.ts), so distinct bindings
      // have distinct serials.
      serialNumber: serialOf(concat(att.sig, utf8.encode(input.csi))),
      subject: '',
      issuer: issuer.subject,
      notBefore: dateOf(att.nbf),
      // RFC 5280 §4.1.2.5: notAfter is inclusive, an attestation's exp is not (valid while
      // now < exp): the last second of the attestation is exp − 1, never a second longer.
      notAfter: dateOf(att.exp - 1),
      signingAlgorithm: ED25519,
      publicKey: await importPublicKey(att.key),
      signingKey: proverKeys,
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: input.csi }], true),
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.AuthorityKeyIdentifierExtension(hex(keyIdentifier(att.prover))),
      ],
    },
    crypto,
  );
  return { credential: leaf.toString('pem'), issuer: issuer.toString('pem') };
}

const PEM_BLOCK =
  /-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END CERTIFICATE-----/g;

/** The DER of each CERTIFICATE block of a PEM text (RFC 7468 §5), in order; at least one. */
function readPemCertificates(text: string): Uint8Array[] {
  const blocks = [...text.matchAll(PEM_BLOCK)].map((m) => {
    const body = (m[1] ?? '').replace(/[\r\n]/g, '');
    let binary: string;
    try {
      binary = atob(body);
    } catch (error) {
      malformed('a CERTIFICATE block is not base64', error);
    }
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  });
  if (blocks.length === 0) malformed('no PEM CERTIFICATE block');
  return blocks;
}

interface ParsedLeaf {
  readonly der: Uint8Array;
  readonly cert: X509.X509Certificate;
  readonly csi: string;
  readonly zone: string;
  readonly key: Uint8Array;
  readonly aki: Uint8Array;
}

function parseLeaf(x509: typeof X509, der: Uint8Array): ParsedLeaf {
  let cert: X509.X509Certificate;
  try {
    cert = new x509.X509Certificate(der);
  } catch (error) {
    malformed('not an X.509 certificate', error);
  }
  const spki = new Uint8Array(cert.publicKey.rawData);
  if (
    spki.length !== ED25519_SPKI_PREFIX.length + ED25519_PUBLIC_KEY_OCTETS ||
    !equalBytes(spki.slice(0, ED25519_SPKI_PREFIX.length), ED25519_SPKI_PREFIX)
  ) {
    malformed('the subject key is not an Ed25519 key');
  }
  const types = cert.extensions.map((e) => e.type);
  if (
    types.length !== LEAF_EXTENSIONS.length ||
    !LEAF_EXTENSIONS.every((oid) => types.includes(oid))
  ) {
    malformed(`the extensions must be exactly ${LEAF_EXTENSIONS.join(', ')}, each once`);
  }
  const san = cert.extensions.find((e) => e.type === OID_SUBJECT_ALT_NAME);
  if (!(san instanceof x509.SubjectAlternativeNameExtension) || !san.critical) {
    malformed('no critical subjectAltName');
  }
  const names = san.names.items;
  const uri = names[0];
  if (names.length !== 1 || uri === undefined || uri.type !== 'url') {
    malformed('the subjectAltName must hold exactly one URI, the CSI');
  }
  let csi: string;
  try {
    csi = parseCsi(uri.value);
  } catch (error) {
    malformed(`the subjectAltName URI ${JSON.stringify(uri.value)} is not a CSI`, error);
  }
  if (csi !== uri.value) malformed('the subjectAltName URI is not a canonical CSI');
  if (cert.subject !== '') malformed('the subject must be empty (the CSI is in the SAN)');
  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  if (basic === null || basic.ca || !basic.critical) {
    malformed('basicConstraints must be critical and CA:FALSE');
  }
  const usage = cert.getExtension(x509.KeyUsagesExtension);
  if (usage === null || !usage.critical || usage.usages !== x509.KeyUsageFlags.digitalSignature) {
    malformed('keyUsage must be critical and digitalSignature only');
  }
  const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
  if (aki === null || aki.keyId === undefined) malformed('no authorityKeyIdentifier keyId');
  const issuer = cert.issuerName.getField('CN');
  const zone = issuer[0];
  if (issuer.length !== 1 || zone === undefined || cert.issuer !== `CN=${zone}`) {
    malformed('the issuer must be CN=<the range zone>');
  }
  return {
    der,
    cert,
    csi,
    zone: checkedZone(zone, 'the issuer CN'),
    key: spki.slice(ED25519_SPKI_PREFIX.length),
    aki: Uint8Array.from(aki.keyId.match(/../g) ?? [], (h) => parseInt(h, 16)),
  };
}

/** The unexpired Ed25519 `prover` keys of an AUTHKEY RRset's data. */
function currentProvers(authkeys: readonly AuthkeyData[], now: number): AuthkeyData[] {
  return authkeys.filter(
    (k) =>
      k.role === 'prover' &&
      k.algorithm === DNSSEC_ALGORITHM_ED25519 &&
      k.publicKey.length === ED25519_PUBLIC_KEY_OCTETS &&
      k.notAfter > now,
  );
}

function checkWindow(nbf: number, exp: number, now: number): void {
  if (now < nbf) {
    throw new CredentialError('ERR_CREDENTIAL_NOT_YET_VALID', `valid from ${nbf}, now is ${now}`);
  }
  // As an attestation, valid while now < exp.
  if (now >= exp) {
    throw new CredentialError('ERR_CREDENTIAL_EXPIRED', `expired at ${exp}, now is ${now}`);
  }
}

// ---------------------------------------------------------------------------------------------
// SD-JWT

interface ParsedSdJwt {
  readonly jwt: string;
  readonly disclosures: readonly string[];
  readonly header: Readonly<Record<string, unknown>>;
  readonly payload: Readonly<Record<string, unknown>>;
}

function decodeJsonPart(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(utf8Decoder.decode(fromBase64url(part, what)));
  } catch (error) {
    if (error instanceof CredentialError) throw error;
    malformed(`${what} is not JSON`, error);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    malformed(`${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** An SD-JWT without key binding (RFC 9901 §4: `<JWT>~<disclosure>~…~`). */
function parseSdJwt(text: string): ParsedSdJwt {
  const parts = text.split('~');
  if (parts.length < 2 || parts[parts.length - 1] !== '') {
    malformed('an SD-JWT is <JWT>~<disclosures>~ and ends with "~" (no key binding here)');
  }
  const jwt = parts[0] ?? '';
  const disclosures = parts.slice(1, -1);
  const segments = jwt.split('.');
  if (segments.length !== 3) malformed('the JWT is not header.payload.signature');
  const header = decodeJsonPart(segments[0] ?? '', 'the JWT header');
  const payload = decodeJsonPart(segments[1] ?? '', 'the JWT payload');
  return { jwt, disclosures, header, payload };
}

function numberClaim(payload: Readonly<Record<string, unknown>>, claim: string): number {
  const value = payload[claim];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    malformed(`the claim ${claim} must be whole seconds`);
  }
  return value;
}

/** The zone of an `iss` of the form `dns:<zone>` (RFC 4501 §3, without an authority). */
function zoneOfIssuer(iss: unknown): string {
  if (typeof iss !== 'string' || !iss.startsWith('dns:') || iss.startsWith('dns://')) {
    malformed('iss must be dns:<the range zone>');
  }
  const zone = iss.slice(4);
  if (zone === '' || checkedZone(zone, 'iss') !== zone) {
    malformed('iss must name the zone in lowercase, without the final dot');
  }
  return zone;
}

const sdJwtHasher = (data: string | ArrayBuffer): Uint8Array =>
  sha256(typeof data === 'string' ? utf8.encode(data) : new Uint8Array(data));

/**
 * Issues the SD-JWT credential of an attestation (see the module comment); `randomBytes` gives
 * the disclosure salt. Same checks of the caller as {@link issueX509Credential}.
 */
export async function issueSdJwtCredential(
  input: CredentialIssue,
  randomBytes: (octets: number) => Uint8Array,
): Promise<string> {
  const { attestation: att } = input;
  checkKey(att.key, 'the attestation key');
  const secretKey = input.prover.secretKey;
  const SdJwt = await loadSdJwt();
  const issuer = new SdJwt<Record<string, unknown>>({
    signAlg: SD_JWT_ALG,
    signer: (data) => toBase64url(sign(utf8.encode(data), secretKey)),
    hasher: sdJwtHasher,
    hashAlg: 'sha-256',
    // The profile's salt length, whatever length the library asks for.
    saltGenerator: () => toBase64url(randomBytes(SD_JWT_SALT_OCTETS)),
  });
  return issuer.issue(
    {
      iss: `dns:${zoneText(input.zone)}`,
      vct: CREDENTIAL_VCT,
      iat: att.nbf,
      nbf: att.nbf,
      exp: att.exp,
      cnf: { jwk: { kty: 'OKP', crv: 'Ed25519', x: toBase64url(att.key) } },
      csi: input.csi,
    },
    { _sd: ['csi'] },
    { header: { typ: SD_JWT_TYP } },
  );
}

// ---------------------------------------------------------------------------------------------
// Reading and verifying

/**
 * The format of a credential text and what must be looked up to verify it: for X.509 the CSI
 * and the issuer's zone (the verifier checks that the CSI's range is that zone), for an SD-JWT
 * the zone of `iss` and the CSI when disclosed. Checks shape only; throws
 * {@link CredentialError} `ERR_CREDENTIAL_MALFORMED`.
 */
export async function readCredential(text: string): Promise<CredentialSubject> {
  if (typeof text !== 'string') malformed('a credential is text');
  if (utf8.encode(text).length > MAX_CREDENTIAL_OCTETS) {
    malformed(`a credential is at most ${MAX_CREDENTIAL_OCTETS} octets`);
  }
  if (text.includes('-----BEGIN')) {
    const leaf = parseLeaf(await loadX509(), readPemCertificates(text)[0] as Uint8Array);
    return { format: 'x509', csi: leaf.csi, zone: leaf.zone };
  }
  const parsed = parseSdJwt(text.trim());
  const zone = zoneOfIssuer(parsed.payload['iss']);
  const csi = disclosedCsi(parsed);
  return csi === undefined ? { format: 'sd-jwt', zone } : { format: 'sd-jwt', zone, csi };
}

/** The value of the disclosure of `csi`, if any, checked for shape. */
function disclosedCsi(parsed: ParsedSdJwt): string | undefined {
  let found: string | undefined;
  for (const disclosure of parsed.disclosures) {
    let value: unknown;
    try {
      value = JSON.parse(utf8Decoder.decode(fromBase64url(disclosure, 'a disclosure')));
    } catch (error) {
      if (error instanceof CredentialError) throw error;
      malformed('a disclosure is not JSON', error);
    }
    // RFC 9901 §4.2.1: [salt, claim name, claim value].
    if (!Array.isArray(value) || value.length !== 3 || typeof value[0] !== 'string') {
      malformed('a disclosure is not [salt, name, value]');
    }
    if (value[1] !== 'csi') malformed(`an unknown claim ${JSON.stringify(value[1])} is disclosed`);
    if (found !== undefined) malformed('csi is disclosed twice');
    const csi: unknown = value[2];
    let canonical: string;
    try {
      canonical = typeof csi === 'string' ? parseCsi(csi) : '';
    } catch (error) {
      malformed('the disclosed csi is not a CSI', error);
    }
    if (canonical !== csi) malformed('the disclosed csi is not a canonical CSI');
    found = canonical;
  }
  return found;
}

/** What {@link verifyCredentialWithAuthkeys} checks a credential against. */
export interface CredentialCheck {
  /** The range's zone, as DNS gave it: the issuer must be this zone. */
  readonly zone: string;
  /** The data of the zone's AUTHKEY RRset, as a validating resolver gave it. */
  readonly authkeys: readonly AuthkeyData[];
  /** Seconds since the epoch. */
  readonly now: number;
}

/**
 * Verifies a credential (PEM or SD-JWT compact serialization) against the AUTHKEY RRset of its
 * range: for X.509, the leaf (the first certificate; a second must be the prover certificate
 * rebuilt from an AUTHKEY, else `ERR_CREDENTIAL_PROVER_NOT_AUTHORIZED`), its profile, its
 * issuer zone equal to `check.zone` (`_RANGE_MISMATCH`), its signature by an unexpired AUTHKEY
 * prover whose key identifier is its AKI; for an SD-JWT, `alg` EdDSA and `typ` dc+sd-jwt, `iss`
 * naming `check.zone`, the signature by an unexpired AUTHKEY prover (the library's own verify,
 * with that key), every disclosure's digest listed in `_sd` (RFC 9901 §7.1), `vct`, `cnf.jwk`;
 * then the validity window. Throws {@link CredentialError}.
 */
export async function verifyCredentialWithAuthkeys(
  text: string,
  check: CredentialCheck,
): Promise<VerifiedCredential> {
  const subject = await readCredential(text);
  const zone = zoneText(check.zone);
  if (subject.zone !== zone) {
    throw new CredentialError(
      'ERR_CREDENTIAL_RANGE_MISMATCH',
      `issued by ${subject.zone}, but the range is ${zone}`,
    );
  }
  const provers = currentProvers(check.authkeys, check.now);
  return subject.format === 'x509'
    ? verifyX509(text, zone, provers, check)
    : verifySdJwt(text.trim(), zone, provers, check, subject.csi);
}

async function verifyX509(
  text: string,
  zone: string,
  provers: readonly AuthkeyData[],
  check: CredentialCheck,
): Promise<VerifiedCredential> {
  const certificates = readPemCertificates(text);
  const leaf = parseLeaf(await loadX509(), certificates[0] as Uint8Array);
  const parts = certificateParts(leaf.der);
  if (!equalBytes(parts.algorithm, ED25519_ALGORITHM_DER)) {
    malformed('the certificate is not signed with Ed25519');
  }
  const prover = provers.find((k) => equalBytes(keyIdentifier(k.publicKey), leaf.aki));
  if (prover === undefined) {
    throw new CredentialError(
      'ERR_CREDENTIAL_PROVER_NOT_AUTHORIZED',
      `the issuer key is not an unexpired AUTHKEY prover of ${zone}`,
    );
  }
  if (!verify(parts.signature, parts.tbs, prover.publicKey)) {
    throw new CredentialError(
      'ERR_CREDENTIAL_BAD_SIGNATURE',
      `the certificate is not signed by the AUTHKEY prover of ${zone} it names`,
    );
  }
  for (const extra of certificates.slice(1)) {
    const pem = `-----BEGIN CERTIFICATE-----\n${btoa(String.fromCharCode(...extra))}\n-----END CERTIFICATE-----\n`;
    if (!(await proverCertificateMatches(pem, zone, prover))) {
      throw new CredentialError(
        'ERR_CREDENTIAL_PROVER_NOT_AUTHORIZED',
        `the certificate after the leaf is not the prover certificate of the AUTHKEY of ${zone}`,
      );
    }
  }
  const nbf = Math.floor(leaf.cert.notBefore.getTime() / 1000);
  // The inclusive notAfter back to an exclusive exp, as issued.
  const exp = Math.floor(leaf.cert.notAfter.getTime() / 1000) + 1;
  checkWindow(nbf, exp, check.now);
  return {
    format: 'x509',
    csi: leaf.csi,
    key: leaf.key,
    prover: prover.publicKey,
    zone,
    nbf,
    exp,
  };
}

async function verifySdJwt(
  text: string,
  zone: string,
  provers: readonly AuthkeyData[],
  check: CredentialCheck,
  csi: string | undefined,
): Promise<VerifiedCredential> {
  const parsed = parseSdJwt(text);
  const { header, payload } = parsed;
  // RFC 8725 §3.1: the algorithm is fixed by the profile, never taken from the token; "none"
  // and every other value are refused before any signature is looked at.
  if (header['alg'] !== SD_JWT_ALG) {
    throw new CredentialError(
      'ERR_CREDENTIAL_BAD_SIGNATURE',
      `the JWT alg must be ${SD_JWT_ALG}, not ${JSON.stringify(header['alg'])}`,
    );
  }
  if (header['typ'] !== SD_JWT_TYP) malformed(`the JWT typ must be ${SD_JWT_TYP}`);
  if (payload['vct'] !== CREDENTIAL_VCT) malformed(`vct must be ${CREDENTIAL_VCT}`);
  if (payload['_sd_alg'] !== 'sha-256') malformed('_sd_alg must be sha-256');
  const nbf = numberClaim(payload, 'nbf');
  const exp = numberClaim(payload, 'exp');
  numberClaim(payload, 'iat');
  const key = confirmationKey(payload['cnf']);
  const digests = payload['_sd'];
  if (!Array.isArray(digests)) malformed('_sd must be an array of digests');
  if (Object.hasOwn(payload, 'csi')) malformed('csi must be selectively disclosable, not plain');
  for (const disclosure of parsed.disclosures) {
    // RFC 9901 §7.1 step 3: the digest of each disclosure is over its base64url text.
    const digest = toBase64url(sdJwtHasher(disclosure));
    if (!digests.includes(digest)) {
      throw new CredentialError(
        'ERR_CREDENTIAL_BAD_SIGNATURE',
        'a disclosure is not covered by the signed _sd digests (tampered or foreign)',
      );
    }
  }
  let signer: AuthkeyData | undefined;
  for (const prover of provers) {
    if (await sdJwtLibraryVerifies(text, prover.publicKey, check.now)) {
      signer = prover;
      break;
    }
  }
  if (signer === undefined) {
    // Without a key identifier in the JWT, a forgery and a JWT of an unlisted prover look the
    // same: neither is signed by a key the range vouches for.
    throw new CredentialError(
      'ERR_CREDENTIAL_PROVER_NOT_AUTHORIZED',
      `the JWT is not signed by an unexpired AUTHKEY prover of ${zone}`,
    );
  }
  checkWindow(nbf, exp, check.now);
  return {
    format: 'sd-jwt',
    ...(csi === undefined ? {} : { csi }),
    key,
    prover: signer.publicKey,
    zone,
    nbf,
    exp,
  };
}

/** RFC 7800 §3.2 with an RFC 8037 OKP Ed25519 key: the recipient key. */
function confirmationKey(cnf: unknown): Uint8Array {
  const jwk =
    typeof cnf === 'object' && cnf !== null ? (cnf as Record<string, unknown>)['jwk'] : undefined;
  if (typeof jwk !== 'object' || jwk === null) malformed('cnf.jwk is missing');
  const { kty, crv, x } = jwk as Record<string, unknown>;
  if (kty !== 'OKP' || crv !== 'Ed25519' || typeof x !== 'string') {
    malformed('cnf.jwk must be an OKP Ed25519 key');
  }
  const key = fromBase64url(x, 'cnf.jwk.x');
  if (key.length !== ED25519_PUBLIC_KEY_OCTETS) malformed('cnf.jwk.x must be 32 octets');
  return key;
}

/**
 * The SD-JWT library's own verification with one key: the signature, the disclosures and its
 * time checks (the window is checked again here with the codes of this module).
 */
async function sdJwtLibraryVerifies(
  text: string,
  publicKey: Uint8Array,
  now: number,
): Promise<boolean> {
  const SdJwt = await loadSdJwt();
  const verifier = new SdJwt<Record<string, unknown>>({
    hasher: sdJwtHasher,
    verifier: (data, signature) => {
      try {
        return verify(fromBase64url(signature, 'the JWT signature'), utf8.encode(data), publicKey);
      } catch {
        return false;
      }
    },
  });
  try {
    // Far from the window, so the library's time checks never decide: ours do, with codes.
    await verifier.verify(text, { currentDate: now, skewSeconds: Number.MAX_SAFE_INTEGER / 4 });
    return true;
  } catch {
    return false;
  }
}
