import { X509Certificate } from 'node:crypto';
import { connect, createServer, type Server } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_CA_COMMON_NAME,
  createLocalCa,
  issueServerCertificate,
  type LocalCa,
  type ServerCertificate,
} from '../src/index.js';

const NOW = Date.UTC(2026, 0, 1);
const DAY_MS = 86_400_000;

let ca: LocalCa;
let leaf: ServerCertificate;
let server: Server;
let port: number;

beforeAll(async () => {
  ca = await createLocalCa();
  leaf = await issueServerCertificate(ca, {
    hostnames: ['localhost', 'ns1.dp.example'],
    ipAddresses: ['127.0.0.1', '::1'],
  });
  server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (socket) => {
    socket.end('hello');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  port = typeof address === 'object' && address !== null ? address.port : 0;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Connects to the test server and resolves with the outcome of the TLS handshake. */
function handshake(options: {
  host: string;
  servername?: string;
  ca: string;
}): Promise<{ ok: true; text: string } | { ok: false; code: string }> {
  return new Promise((resolve) => {
    const socket = connect({ port, ...options });
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => resolve({ ok: true, text }));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      resolve({ ok: false, code: error.code ?? error.message }),
    );
  });
}

describe('createLocalCa', () => {
  it('makes a self-signed P-256 CA certificate that may sign certificates', () => {
    const certificate = new X509Certificate(ca.certPem);
    expect(certificate.ca).toBe(true);
    expect(certificate.subject).toBe(`CN=${DEFAULT_CA_COMMON_NAME}`);
    expect(certificate.issuer).toBe(certificate.subject);
    expect(certificate.verify(certificate.publicKey)).toBe(true);
    expect(certificate.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(ca.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('takes the common name, lifetime and clock from the options', async () => {
    const other = await createLocalCa({ commonName: 'Test, CA', validDays: 10, now: () => NOW });
    const certificate = new X509Certificate(other.certPem);
    // A comma is kept inside the common name (node shows it escaped, RFC 4514).
    expect(certificate.subject).toBe('CN=Test\\, CA');
    expect(Date.parse(certificate.validTo)).toBe(NOW + 10 * DAY_MS);
    // Backdated an hour for clock skew.
    expect(Date.parse(certificate.validFrom)).toBe(NOW - 3_600_000);
  });

  it('rejects a lifetime out of range', async () => {
    await expect(createLocalCa({ validDays: 0 })).rejects.toMatchObject({
      code: 'ERR_TRANSPORT_CONFIG',
    });
  });
});

describe('issueServerCertificate', () => {
  it('issues a serverAuth certificate for the names and addresses, signed by the CA', () => {
    const certificate = new X509Certificate(leaf.certPem);
    const issuer = new X509Certificate(ca.certPem);
    expect(certificate.ca).toBe(false);
    expect(certificate.checkIssued(issuer)).toBe(true);
    expect(certificate.verify(issuer.publicKey)).toBe(true);
    expect(certificate.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(certificate.checkHost('localhost')).toBe('localhost');
    expect(certificate.checkHost('ns1.dp.example')).toBe('ns1.dp.example');
    expect(certificate.checkHost('other.example')).toBeUndefined();
    expect(certificate.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(certificate.checkIP('::1')).toBe('::1');
    expect(certificate.checkIP('127.0.0.2')).toBeUndefined();
  });

  it('gives every certificate its own serial number and key', async () => {
    const again = await issueServerCertificate(ca, { hostnames: ['localhost'] });
    expect(new X509Certificate(again.certPem).serialNumber).not.toBe(
      new X509Certificate(leaf.certPem).serialNumber,
    );
    expect(again.keyPem).not.toBe(leaf.keyPem);
  });

  it('rejects a certificate without names, and an address that is not one', async () => {
    await expect(issueServerCertificate(ca, { hostnames: [] })).rejects.toMatchObject({
      code: 'ERR_TRANSPORT_CONFIG',
    });
    await expect(
      issueServerCertificate(ca, { hostnames: ['localhost'], ipAddresses: ['localhost'] }),
    ).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CONFIG' });
  });
});

describe('node:tls with the local CA as the only trusted root', () => {
  it('accepts the chain for 127.0.0.1', async () => {
    expect(await handshake({ host: '127.0.0.1', ca: ca.certPem })).toEqual({
      ok: true,
      text: 'hello',
    });
  });

  it('accepts the chain for localhost', async () => {
    expect(await handshake({ host: '127.0.0.1', servername: 'localhost', ca: ca.certPem })).toEqual(
      { ok: true, text: 'hello' },
    );
    expect(await handshake({ host: 'localhost', ca: ca.certPem })).toEqual({
      ok: true,
      text: 'hello',
    });
  });

  it('rejects a name the certificate does not hold', async () => {
    expect(
      await handshake({ host: '127.0.0.1', servername: 'other.example', ca: ca.certPem }),
    ).toEqual({ ok: false, code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it('rejects the chain when another CA is trusted', async () => {
    const unrelated = await createLocalCa();
    const outcome = await handshake({ host: '127.0.0.1', ca: unrelated.certPem });
    expect(outcome.ok).toBe(false);
    expect(outcome).toMatchObject({ code: expect.stringMatching(/UNABLE_TO_VERIFY|SIGNATURE/) });
  });
});
