import { readFile } from 'node:fs/promises';
import {
  attestsCsi,
  decodeAttestation,
  keyPairFromSeed,
  MimiError,
  type Attestation,
  type Ed25519KeyPair,
} from '@mimi-discovery/common';
import { usageError } from './errors.js';
import { writeNew, writeReplacing } from './files.js';

/**
 * A recipient's key file: its Ed25519 key pair and, once a DP has attested it, the CSI and the
 * attestation (design §4), byte strings in base64url without padding:
 *
 * ```json
 * { "publicKey": "iojj3XQJ8ZX9Uts9…", "secretKey": "AQEBAQEBAQEBAQEB…",
 *   "csi": "tel:+442079460018", "attestation": "pmF2AmNleHAa…" }
 * ```
 *
 * The file holds a secret key: it is created with mode 0600, never overwritten by `keygen`, and
 * rewritten atomically when an attestation is added. An attestation may instead live in a file
 * of its own (`{ "csi", "attestation" }`), for a key attested for more than one CSI. `csi` goes
 * with every attestation: an attestation does not carry its CSI (docs/protocol.md §4), and is
 * checked, by its signature, to be of that CSI and of this key when the file is read.
 */

/** A key file's content. */
export interface KeyFile {
  readonly keyPair: Ed25519KeyPair;
  readonly attested?: AttestedCsi;
}

/** A CSI and the attestation that binds it to the key. */
export interface AttestedCsi {
  readonly csi: string;
  readonly attestation: Attestation;
  readonly encoded: Uint8Array;
}

/** base64url without padding (RFC 4648 §5), as the registration API uses. */
export function toBase64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

function fromBase64url(value: unknown, what: string, path: string): Uint8Array {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]+$/.test(value)) {
    throw badFile(path, `${what} must be base64url`);
  }
  return new Uint8Array(Buffer.from(value, 'base64url'));
}

function badFile(path: string, why: string, cause?: unknown): never {
  throw usageError('ERR_CLI_KEY_FILE', `${path}: ${why}`, cause);
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    return badFile(path, 'cannot read it', error);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return badFile(path, 'not JSON', error);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return badFile(path, 'expected a JSON object');
  }
  return value as Record<string, unknown>;
}

function onlyKeys(path: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) badFile(path, `unknown key ${JSON.stringify(key)}`);
  }
}

/** Reads and checks a key file (`ERR_CLI_KEY_FILE`, exit 1, when it cannot be used). */
export async function readKeyFile(path: string): Promise<KeyFile> {
  const value = await readJson(path);
  onlyKeys(path, value, ['publicKey', 'secretKey', 'csi', 'attestation']);
  const secretKey = fromBase64url(value['secretKey'], 'secretKey', path);
  const publicKey = fromBase64url(value['publicKey'], 'publicKey', path);
  let keyPair: Ed25519KeyPair;
  try {
    keyPair = keyPairFromSeed(secretKey);
  } catch (error) {
    return badFile(path, 'secretKey must be a 32-octet Ed25519 seed', error);
  }
  if (!Buffer.from(publicKey).equals(Buffer.from(keyPair.publicKey))) {
    badFile(path, 'publicKey is not the public key of secretKey');
  }
  if (value['attestation'] === undefined) return { keyPair };
  return { keyPair, attested: attestedFrom(path, value, keyPair) };
}

/** Reads an attestation file, checked against the key. */
export async function readAttestationFile(
  path: string,
  keyPair: Ed25519KeyPair,
): Promise<AttestedCsi> {
  const value = await readJson(path);
  onlyKeys(path, value, ['csi', 'attestation']);
  return attestedFrom(path, value, keyPair);
}

function attestedFrom(
  path: string,
  value: Record<string, unknown>,
  keyPair: Ed25519KeyPair,
): AttestedCsi {
  const encoded = fromBase64url(value['attestation'], 'attestation', path);
  let attestation: Attestation;
  try {
    attestation = decodeAttestation(encoded);
  } catch (error) {
    const why = error instanceof MimiError ? error.message : String(error);
    return badFile(path, `attestation does not decode (${why})`, error);
  }
  if (!Buffer.from(attestation.key).equals(Buffer.from(keyPair.publicKey))) {
    badFile(path, 'the attestation is for another key');
  }
  const csi = value['csi'];
  if (typeof csi !== 'string') {
    return badFile(path, 'csi must name the attested CSI: the attestation does not carry it');
  }
  // Times are not checked: an expired attestation still signs a removal.
  if (!attestsCsi(attestation, csi)) {
    badFile(
      path,
      `the attestation is not of ${JSON.stringify(csi)}: its signature does not cover it`,
    );
  }
  return { csi, attestation, encoded };
}

/** Writes a new key file (mode 0600); an existing file is never replaced. */
export async function writeNewKeyFile(path: string, keyPair: Ed25519KeyPair): Promise<void> {
  const json = {
    publicKey: toBase64url(keyPair.publicKey),
    secretKey: toBase64url(keyPair.secretKey),
  };
  await writeNew(path, `${JSON.stringify(json, null, 2)}\n`, 0o600);
}

/** Rewrites a key file with the attestation added (replacing an earlier one). */
export async function addAttestationToKeyFile(
  path: string,
  keyPair: Ed25519KeyPair,
  attested: Pick<AttestedCsi, 'csi' | 'encoded'>,
): Promise<void> {
  const json = {
    publicKey: toBase64url(keyPair.publicKey),
    secretKey: toBase64url(keyPair.secretKey),
    csi: attested.csi,
    attestation: toBase64url(attested.encoded),
  };
  await writeReplacing(path, `${JSON.stringify(json, null, 2)}\n`, 0o600);
}

/** Writes an attestation file (mode 0600: it names the CSI). */
export async function writeAttestationFile(
  path: string,
  attested: Pick<AttestedCsi, 'csi' | 'encoded'>,
): Promise<void> {
  const json = { csi: attested.csi, attestation: toBase64url(attested.encoded) };
  await writeReplacing(path, `${JSON.stringify(json, null, 2)}\n`, 0o600);
}
