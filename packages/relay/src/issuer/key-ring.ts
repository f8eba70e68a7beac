import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  exportIssuerKey,
  generateIssuerKey,
  importIssuerKey,
  type IssuerKey,
  type Logger,
} from '@mimi-discovery/common';
import { IssuerError } from './issuer-error.js';

/**
 * The issuer's token keys (RFC 9578 §6: RSA-PSS 2048), rotated with overlap:
 *
 * - the first key of an empty key directory is valid at once; every later key is made
 *   `prepublishSeconds` before it takes over, so that it is in the public-key file (and, through
 *   `keys publish`, in the tree) before any token of it exists;
 * - key k+1 takes over `lifetimeSeconds` after key k did (its `notBefore`), and key k stays valid
 *   `overlapSeconds` longer for the tokens it signed: `notAfter = notBefore + lifetime + overlap`;
 * - the signing key is the newest whose `notBefore` has passed; an expired key is never used,
 *   its file is deleted, and it leaves the directory and the public-key file.
 *
 * Worked example (lifetime 7 d, overlap 1 d, prepublish 1 d, first start at day 0): key A is
 * valid days 0–8 and signs days 0–7; key B is made on day 6, listed from then, signs days 7–14,
 * valid until day 15; A's file goes on day 8.
 *
 * Files: `<keyDir>/token-key-<notBefore>-<id prefix>.json` (mode 0600, the directory 0700)
 * holding `{ "version": 1, "notBefore", "notAfter", "privateKey": <base64url PKCS#8> }`, and
 * `<keyDir>/issuer-public-keys.json`, the public-key file (below), rewritten through a
 * temporary file and a rename at every change. One issuer process per key directory.
 */

/** The name of the public-key file in the key directory. */
export const ISSUER_PUBLIC_KEY_FILE = 'issuer-public-keys.json';
/** The version of the key files and of the public-key file. */
const FILE_VERSION = 1;
const KEY_FILE = /^token-key-\d+-[0-9a-f]{16}\.json$/;

/** A token key of the issuer with its validity. */
export interface IssuerTokenKey {
  readonly key: IssuerKey;
  readonly notBefore: number;
  readonly notAfter: number;
}

/** How keys rotate. */
export interface KeyRingOptions {
  readonly keyDir: string;
  readonly lifetimeSeconds: number;
  readonly overlapSeconds: number;
  readonly prepublishSeconds: number;
}

/** The issuer's keys. */
export interface KeyRing {
  /**
   * Brings the keys up to `nowS`: deletes expired keys, makes the next key when it is due, and
   * rewrites the public-key file when anything changed. Concurrent calls share one run.
   */
  rotate(nowS: number): Promise<void>;
  /** The key that signs at `nowS`: the newest valid one; undefined before the first rotate. */
  signingKey(nowS: number): IssuerTokenKey | undefined;
  /** Keys valid at `nowS` (notBefore ≤ now < notAfter), newest first: the issuer directory. */
  activeKeys(nowS: number): IssuerTokenKey[];
  /** Keys not expired at `nowS`, newest first, announced ones included: the public-key file. */
  publishedKeys(nowS: number): IssuerTokenKey[];
}

/**
 * Loads the key directory (made 0700 if absent) and returns the ring; call `rotate` before use.
 * Throws {@link IssuerError} `ERR_ISSUER_KEYS` for a key file that cannot be read or used.
 */
export async function openKeyRing(options: KeyRingOptions, log: Logger): Promise<KeyRing> {
  await mkdir(options.keyDir, { recursive: true, mode: 0o700 });
  await chmod(options.keyDir, 0o700);
  let keys = await loadKeys(options.keyDir);
  let running: Promise<void> | undefined;
  let written = false;

  const newestFirst = (list: IssuerTokenKey[]): IssuerTokenKey[] =>
    [...list].sort((a, b) => b.notBefore - a.notBefore);

  const run = async (nowS: number): Promise<void> => {
    let changed = !written;
    const expired = keys.filter((k) => k.notAfter <= nowS);
    for (const k of expired) {
      await rm(join(options.keyDir, keyFileName(k)), { force: true });
      log.info('key-expired', { keyId: idPrefix(k.key), notAfter: k.notAfter });
      changed = true;
    }
    keys = keys.filter((k) => k.notAfter > nowS);
    const newest = newestFirst(keys)[0];
    // The next key takes over `lifetime` after the newest did; it is made `prepublish` earlier.
    // A key directory that is empty, or whose newest key is overdue, gets a key valid now.
    const takeover = newest === undefined ? nowS : newest.notBefore + options.lifetimeSeconds;
    if (newest === undefined || nowS >= takeover - options.prepublishSeconds) {
      const notBefore = Math.max(takeover, nowS);
      const made: IssuerTokenKey = {
        key: await generateIssuerKey(),
        notBefore,
        notAfter: notBefore + options.lifetimeSeconds + options.overlapSeconds,
      };
      await writeKeyFile(options.keyDir, made);
      keys = [...keys, made];
      log.info('key-created', {
        keyId: idPrefix(made.key),
        notBefore: made.notBefore,
        notAfter: made.notAfter,
      });
      changed = true;
    }
    if (changed) {
      await writePublicKeyFile(options.keyDir, newestFirst(keys));
      written = true;
    }
  };

  return {
    rotate(nowS) {
      if (running === undefined) {
        running = run(nowS).finally(() => {
          running = undefined;
        });
      }
      return running;
    },
    signingKey(nowS) {
      return newestFirst(keys).find((k) => k.notBefore <= nowS && nowS < k.notAfter);
    },
    activeKeys(nowS) {
      return newestFirst(keys).filter((k) => k.notBefore <= nowS && nowS < k.notAfter);
    },
    publishedKeys(nowS) {
      return newestFirst(keys).filter((k) => nowS < k.notAfter);
    },
  };
}

function idPrefix(key: IssuerKey): string {
  return Buffer.from(key.id.subarray(0, 8)).toString('hex');
}

function keyFileName(k: IssuerTokenKey): string {
  return `token-key-${k.notBefore}-${idPrefix(k.key)}.json`;
}

async function loadKeys(keyDir: string): Promise<IssuerTokenKey[]> {
  const out: IssuerTokenKey[] = [];
  for (const name of (await readdir(keyDir)).sort()) {
    if (!KEY_FILE.test(name)) continue;
    const path = join(keyDir, name);
    try {
      const raw = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
      const { version, notBefore, notAfter, privateKey } = raw;
      if (
        version !== FILE_VERSION ||
        !Number.isSafeInteger(notBefore) ||
        !Number.isSafeInteger(notAfter) ||
        typeof privateKey !== 'string'
      ) {
        throw new Error('expected {version: 1, notBefore, notAfter, privateKey}');
      }
      const key = await importIssuerKey(new Uint8Array(Buffer.from(privateKey, 'base64url')));
      out.push({ key, notBefore: notBefore as number, notAfter: notAfter as number });
    } catch (cause) {
      const why = cause instanceof Error ? cause.message : String(cause);
      throw new IssuerError('ERR_ISSUER_KEYS', `${path}: not a usable token key file: ${why}`, {
        cause,
      });
    }
  }
  return out;
}

async function writeKeyFile(keyDir: string, k: IssuerTokenKey): Promise<void> {
  const body = {
    version: FILE_VERSION,
    notBefore: k.notBefore,
    notAfter: k.notAfter,
    privateKey: Buffer.from(await exportIssuerKey(k.key)).toString('base64url'),
  };
  await writeAtomically(join(keyDir, keyFileName(k)), `${JSON.stringify(body)}\n`, 0o600);
}

/**
 * The public-key file (the format the gateway's `keysFile` and `keys publish` read):
 * `{ "version": 1, "keys": [ { "kind": "private-token", "config": <base64url SPKI>,
 * "notBefore", "notAfter" } ] }`, newest first.
 */
export function encodeIssuerPublicKeyFile(keys: readonly IssuerTokenKey[]): string {
  const body = {
    version: FILE_VERSION,
    keys: keys.map((k) => ({
      kind: 'private-token',
      config: Buffer.from(k.key.spki).toString('base64url'),
      notBefore: k.notBefore,
      notAfter: k.notAfter,
    })),
  };
  return `${JSON.stringify(body, null, 2)}\n`;
}

async function writePublicKeyFile(keyDir: string, keys: readonly IssuerTokenKey[]): Promise<void> {
  await writeAtomically(
    join(keyDir, ISSUER_PUBLIC_KEY_FILE),
    encodeIssuerPublicKeyFile(keys),
    0o644,
  );
}

/** Writes through a temporary file in the same directory, renamed over `path`. */
async function writeAtomically(path: string, text: string, mode: number): Promise<void> {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, text, { mode, flag: 'wx' });
    await chmod(temporary, mode);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
