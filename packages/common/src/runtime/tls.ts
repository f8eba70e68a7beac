/**
 * A local certificate authority for development networks and tests: DoH needs TLS on every hop
 * (design §7, R7), and a test network on 127.0.0.1 has no public certificate. A `LocalCa` issues
 * server certificates that node's `tls` (and `dig +https`, `kdig +https`) accept once the CA
 * certificate is given as the trusted root (`ca: caPem`, `+tls-ca=<file>`).
 *
 * Keys are ECDSA P-256 with SHA-256 signatures, made with WebCrypto (`globalThis.crypto`);
 * certificates are X.509 v3 (RFC 5280) built with `@peculiar/x509`:
 * - the CA: self-signed, basicConstraints `cA` (critical), keyUsage keyCertSign + cRLSign
 *   (critical), a subject key identifier;
 * - a server: basicConstraints not a CA, keyUsage digitalSignature, extendedKeyUsage serverAuth,
 *   subjectAltName with every DNS name and IP address (RFC 6125: clients match names there, not
 *   in the subject), authority and subject key identifiers.
 * `notBefore` is one hour in the past, so a peer whose clock lags a little accepts the certificate.
 */
import type { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import type * as X509 from '@peculiar/x509';
import { TransportError } from './dns-client.js';

/** Default lifetime of a local CA. */
export const DEFAULT_CA_VALID_DAYS = 365;
/** Default lifetime of a server certificate (as public CAs issue today). */
export const DEFAULT_SERVER_CERTIFICATE_VALID_DAYS = 90;
/** Default common name of a local CA. */
export const DEFAULT_CA_COMMON_NAME = 'MIMI Discovery local CA';

const DAY_MS = 86_400_000;
const BACKDATE_MS = 3_600_000;
const SERIAL_OCTETS = 16;
const SIGNING_ALGORITHM = Object.freeze({ name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' });

/** A certificate authority: its certificate and private key (PKCS #8), both PEM. */
export interface LocalCa {
  readonly certPem: string;
  readonly keyPem: string;
}

/** A server's certificate and private key (PKCS #8), both PEM. */
export interface ServerCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

/** Options of {@link createLocalCa}. */
export interface LocalCaOptions {
  /** Default {@link DEFAULT_CA_COMMON_NAME}. */
  commonName?: string;
  /** Default {@link DEFAULT_CA_VALID_DAYS}. */
  validDays?: number;
  /** Clock, milliseconds since the epoch; default `Date.now`. */
  now?: () => number;
}

/** Options of {@link issueServerCertificate}. */
export interface ServerCertificateOptions {
  /** DNS names the certificate is valid for (`localhost`, `ns1.dp.example`). */
  hostnames: string[];
  /** IP addresses the certificate is valid for (`127.0.0.1`, `::1`). */
  ipAddresses?: string[];
  /** Default {@link DEFAULT_SERVER_CERTIFICATE_VALID_DAYS}. */
  validDays?: number;
  /** Clock, milliseconds since the epoch; default `Date.now`. */
  now?: () => number;
}

/**
 * `@peculiar/x509` finds its algorithms through `tsyringe`, which needs the Reflect metadata API
 * (the `reflect-metadata` package) loaded first; both load on the first certificate made.
 */
async function loadX509(): Promise<typeof X509> {
  await import('reflect-metadata');
  return import('@peculiar/x509');
}

function checkValidDays(validDays: number): void {
  if (!Number.isInteger(validDays) || validDays < 1 || validDays > 36_500) {
    throw new TransportError(
      'ERR_TRANSPORT_CONFIG',
      `validDays must be an integer in 1..36500, got ${String(validDays)}`,
    );
  }
}

/** A positive serial number of 16 random octets (RFC 5280 §4.1.2.2: at most 20, positive). */
function randomSerial(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(SERIAL_OCTETS));
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x01;
  return Buffer.from(bytes).toString('hex');
}

function validity(now: number, validDays: number): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + validDays * DAY_MS) };
}

async function exportKeyPem(x509: typeof X509, key: webcrypto.CryptoKey): Promise<string> {
  const pkcs8 = await globalThis.crypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return globalThis.crypto.subtle.generateKey(SIGNING_ALGORITHM, true, ['sign', 'verify']);
}

/** Creates a CA: a new P-256 key and a self-signed CA certificate. */
export async function createLocalCa(options: LocalCaOptions = {}): Promise<LocalCa> {
  const validDays = options.validDays ?? DEFAULT_CA_VALID_DAYS;
  checkValidDays(validDays);
  const x509 = await loadX509();
  const crypto = globalThis.crypto;
  const keys = await generateKeys();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      name: [{ CN: [options.commonName ?? DEFAULT_CA_COMMON_NAME] }],
      ...validity((options.now ?? Date.now)(), validDays),
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return {
    certPem: certificate.toString('pem'),
    keyPem: await exportKeyPem(x509, keys.privateKey),
  };
}

/**
 * Issues a server certificate signed by `ca` for the given DNS names and IP addresses (at least
 * one of either), with a new P-256 key.
 */
export async function issueServerCertificate(
  ca: LocalCa,
  options: ServerCertificateOptions,
): Promise<ServerCertificate> {
  const validDays = options.validDays ?? DEFAULT_SERVER_CERTIFICATE_VALID_DAYS;
  checkValidDays(validDays);
  const hostnames = options.hostnames;
  const ipAddresses = options.ipAddresses ?? [];
  const subjectName = hostnames[0] ?? ipAddresses[0];
  if (subjectName === undefined) {
    throw new TransportError(
      'ERR_TRANSPORT_CONFIG',
      'a certificate needs a hostname or an IP address',
    );
  }
  for (const address of ipAddresses) {
    if (isIP(address) === 0)
      throw new TransportError(
        'ERR_TRANSPORT_CONFIG',
        `not an IP address: ${JSON.stringify(address)}`,
      );
  }
  const x509 = await loadX509();
  const crypto = globalThis.crypto;
  const caCertificate = new x509.X509Certificate(ca.certPem);
  const caKey = await crypto.subtle.importKey(
    'pkcs8',
    x509.PemConverter.decodeFirst(ca.keyPem),
    SIGNING_ALGORITHM,
    false,
    ['sign'],
  );
  const keys = await generateKeys();
  const certificate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: [{ CN: [subjectName] }],
      issuer: caCertificate.subject,
      ...validity((options.now ?? Date.now)(), validDays),
      publicKey: keys.publicKey,
      signingKey: caKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([
          ...hostnames.map((value) => ({ type: 'dns' as const, value })),
          ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
        ]),
        await x509.AuthorityKeyIdentifierExtension.create(caCertificate.publicKey, false, crypto),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return {
    certPem: certificate.toString('pem'),
    keyPem: await exportKeyPem(x509, keys.privateKey),
  };
}
