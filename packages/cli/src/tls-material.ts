import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLocalCa, issueServerCertificate, type LocalCa } from '@mimi-discovery/common';
import { failure } from './errors.js';
import { writeNew } from './files.js';

/**
 * TLS for servers on a development network (DoH and the registration API need it: design R7):
 * a local CA kept in a directory of its own, shared by every server of the network so that a
 * resolver or a recipient trusts one file, and server certificates it issues.
 *
 * Layout of a CA directory: `ca.pem` (the certificate clients trust) and `ca-key.pem` (its
 * private key, mode 0600; the directory is mode 0700).
 */

/** File names in a CA directory. */
export const CA_CERT_FILE = 'ca.pem';
/** See {@link CA_CERT_FILE}. */
export const CA_KEY_FILE = 'ca-key.pem';
/** File names of a server's certificate and key in its data directory. */
export const SERVER_CERT_FILE = 'server-cert.pem';
/** See {@link SERVER_CERT_FILE}. */
export const SERVER_KEY_FILE = 'server-key.pem';

/** A CA read from or created in its directory. */
export interface CaFiles {
  readonly ca: LocalCa;
  readonly certPath: string;
  readonly created: boolean;
}

/**
 * The CA in `dir`, created (with the directory) when the directory holds none. A directory that
 * holds only one of the two files is refused (`ERR_CLI_TLS`) rather than overwritten.
 */
export async function loadOrCreateCa(dir: string): Promise<CaFiles> {
  const certPath = join(dir, CA_CERT_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  const hasCert = existsSync(certPath);
  const hasKey = existsSync(keyPath);
  if (hasCert && hasKey) {
    const ca = {
      certPem: await readFile(certPath, 'utf8'),
      keyPem: await readFile(keyPath, 'utf8'),
    };
    return { ca, certPath, created: false };
  }
  if (hasCert || hasKey) {
    throw failure(
      'ERR_CLI_TLS',
      `${dir} holds ${hasCert ? CA_CERT_FILE : CA_KEY_FILE} without ${hasCert ? CA_KEY_FILE : CA_CERT_FILE}: not a usable CA`,
    );
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = await createLocalCa();
  await writeNew(keyPath, ca.keyPem, 0o600);
  await writeNew(certPath, ca.certPem, 0o644);
  return { ca, certPath, created: true };
}

/**
 * Issues a server certificate for `hostnames` and `ipAddresses` and writes it with its key
 * (mode 0600) into `dir`. Returns the paths.
 */
export async function writeServerCertificate(
  ca: LocalCa,
  dir: string,
  names: { hostnames: string[]; ipAddresses: string[] },
): Promise<{ cert: string; key: string }> {
  const issued = await issueServerCertificate(ca, names);
  const cert = join(dir, SERVER_CERT_FILE);
  const key = join(dir, SERVER_KEY_FILE);
  await writeNew(key, issued.keyPem, 0o600);
  await writeNew(cert, issued.certPem, 0o644);
  return { cert, key };
}
