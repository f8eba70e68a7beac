import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  GATEWAY_PUBLIC_KEY_FILE,
  MimiError,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  encodeKeyConfig,
  encodeOdohConfig,
  encodePublicKeyFile,
  ohttpKeyPairFromPrivate,
  odohKeyPairFromPrivate,
  generateOhttpKeyPair,
  generateOdohKeyPair,
  type KeyconfData,
  type OdohKeyPair,
  type OhttpKeyPair,
} from '@mimi-discovery/common';

/**
 * The gateway's HPKE keys (RFC 9458 §3, RFC 9230 §6): one X25519 key for Oblivious HTTP and one
 * for Oblivious DoH per *generation*. A generation is made at first start and then every
 * `rotationSeconds`; the one before stays accepted for `overlapSeconds` more, so a client that
 * fetched the previous config just before a rotation is still answered (RFC 9458 §3.1 leaves the
 * schedule to the gateway). OHTTP key ids count up through 0–255 and wrap: two generations are
 * alive at once, never 256.
 *
 * Worked example, rotation 7 days, overlap 1 day: generation A made at day 0 (key id 0) is
 * served alone until day 7, when B (key id 1) is made; both are accepted until day 8; from then
 * on only B. Each is published with not-before its creation and not-after creation + rotation +
 * overlap (A: day 0 to day 8).
 *
 * Files, in `keyDir` (made 0700; never the data directory, so backups of data carry no secrets):
 *
 * - `gateway-keys.json` (0600): the private keys, `{ "version": 1, "generations": [{ "created":
 *   <unix s>, "ohttpKeyId": 0–255, "ohttp": "<base64url X25519 private key>", "odoh": "…" }] }`.
 * - `gateway-public-keys.json` (0644): the public-key file of the contract (`kind` `ohttp` with
 *   an RFC 9458 key config, `odoh` with an ObliviousDoHConfig), newest first, which `mimi-discovery
 *   keys publish` turns into KEYCONF records.
 *
 * Both are written to a temporary file and renamed over the old one, so a reader (or a crash)
 * never sees half a file; the private file is written before the public one, so a published key
 * is always one the gateway holds. Private keys are never logged.
 */

/** Default seconds between key generations: 7 days. */
export const DEFAULT_KEY_ROTATION_SECONDS = 7 * 86_400;
/** Default seconds the previous generation stays accepted after a rotation: 1 day. */
export const DEFAULT_KEY_OVERLAP_SECONDS = 86_400;
/** The private key file in `keyDir`. */
export const GATEWAY_PRIVATE_KEY_FILE = 'gateway-keys.json';
/**
 * Most generations kept in the private file, whatever the settings: a rotation period shorter
 * than the overlap would otherwise keep ever more keys alive.
 */
export const MAX_KEY_GENERATIONS = 8;

/** A key directory the gateway cannot use. */
export class GatewayKeyError extends MimiError<'ERR_GATEWAY_KEYS'> {}

/** The key schedule. */
export interface GatewayKeySettings {
  /** Directory of the key files (created, mode 0700). */
  readonly keyDir: string;
  /** Default {@link DEFAULT_KEY_ROTATION_SECONDS}. */
  readonly rotationSeconds?: number;
  /** Default {@link DEFAULT_KEY_OVERLAP_SECONDS}. */
  readonly overlapSeconds?: number;
}

/** What the keys use besides their settings. */
export interface GatewayKeyComponents {
  /** Whole seconds since the epoch; default `systemClock`. */
  readonly now?: Clock;
  readonly log?: Logger;
}

/** One generation's keys and times. */
export interface GatewayKeyGeneration {
  /** Unix seconds of its creation: its not-before. */
  readonly created: number;
  /** Unix seconds after which it is refused: created + rotation + overlap. */
  readonly notAfter: number;
  readonly ohttp: OhttpKeyPair;
  readonly odoh: OdohKeyPair;
}

/** The gateway's keys: what is accepted now, and the rotation. */
export interface GatewayKeys {
  /**
   * Rotates when a rotation is due at the clock's time (a new generation, both files
   * rewritten) and drops the generations past their not-after; concurrent calls share one
   * rotation. Cheap when nothing is due: each request calls it.
   */
  refresh(): Promise<void>;
  /** The generations accepted now, newest first (as of the last {@link refresh}). */
  generations(): readonly GatewayKeyGeneration[];
  /** The OHTTP key pairs accepted now, newest first. */
  ohttp(): readonly OhttpKeyPair[];
  /** The ODoH key pairs accepted now, newest first. */
  odoh(): readonly OdohKeyPair[];
  /** Seconds until the newest generation's rotation (0 when due). */
  secondsToRotation(): number;
}

interface StoredGeneration {
  created: number;
  ohttpKeyId: number;
  ohttp: string;
  odoh: string;
}

/**
 * Opens the keys of `settings.keyDir`, making the first generation when there is none and
 * rotating when one is due. Throws {@link GatewayKeyError} for a key file that cannot be read
 * or parsed (never overwriting it: an operator's keys are not replaced silently).
 */
export async function openGatewayKeys(
  settings: GatewayKeySettings,
  components: GatewayKeyComponents = {},
): Promise<GatewayKeys> {
  const rotation = settings.rotationSeconds ?? DEFAULT_KEY_ROTATION_SECONDS;
  const overlap = settings.overlapSeconds ?? DEFAULT_KEY_OVERLAP_SECONDS;
  if (!Number.isSafeInteger(rotation) || rotation < 1) {
    throw new RangeError(`rotationSeconds must be a positive integer, got ${rotation}`);
  }
  if (!Number.isSafeInteger(overlap) || overlap < 0) {
    throw new RangeError(`overlapSeconds must be a non-negative integer, got ${overlap}`);
  }
  const now = components.now ?? systemClock;
  const log = components.log ?? silentLogger;
  const dir = settings.keyDir;
  const privatePath = join(dir, GATEWAY_PRIVATE_KEY_FILE);
  const publicPath = join(dir, GATEWAY_PUBLIC_KEY_FILE);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
  } catch (cause) {
    throw new GatewayKeyError('ERR_GATEWAY_KEYS', `cannot make the key directory ${dir}`, {
      cause,
    });
  }

  let stored = await readStored(privatePath);
  let live: GatewayKeyGeneration[] = await Promise.all(
    stored.map((g) => generationOf(g, rotation, overlap)),
  );
  let rotating: Promise<void> | undefined;

  const dropExpired = (at: number): void => {
    live = live.filter((g) => at < g.notAfter);
  };

  const rotate = async (at: number): Promise<void> => {
    const previous = stored[0];
    const keyId = previous === undefined ? 0 : (previous.ohttpKeyId + 1) % 256;
    const ohttp = await generateOhttpKeyPair(keyId);
    const odoh = await generateOdohKeyPair();
    const next: StoredGeneration = {
      created: at,
      ohttpKeyId: keyId,
      ohttp: b64(ohttp.privateKey),
      odoh: b64(odoh.privateKey),
    };
    // The new generation and every one still accepted: expired private keys are deleted.
    const kept = [next, ...stored.filter((g) => at < g.created + rotation + overlap)].slice(
      0,
      MAX_KEY_GENERATIONS,
    );
    await writeAtomically(
      privatePath,
      `${JSON.stringify({ version: 1, generations: kept })}\n`,
      0o600,
    );
    stored = kept;
    live = await Promise.all(kept.map((g) => generationOf(g, rotation, overlap)));
    await writeAtomically(publicPath, encodePublicKeyFile(publicKeys(live)), 0o644);
    log.info('gateway-keys-rotated', { created: at, ohttpKeyId: keyId, accepted: live.length });
  };

  const due = (at: number): boolean => {
    const newest = stored[0];
    return newest === undefined || at >= newest.created + rotation;
  };

  const refresh = async (): Promise<void> => {
    const at = now();
    if (due(at)) {
      rotating ??= rotate(at).finally(() => {
        rotating = undefined;
      });
      await rotating;
    }
    dropExpired(now());
  };

  await refresh();
  // A public file lost or older than the private one is written again at start.
  await writeAtomically(publicPath, encodePublicKeyFile(publicKeys(live)), 0o644);

  return {
    refresh,
    generations: () => live,
    ohttp: () => live.map((g) => g.ohttp),
    odoh: () => live.map((g) => g.odoh),
    secondsToRotation: () => {
      const newest = stored[0];
      return newest === undefined ? 0 : Math.max(0, newest.created + rotation - now());
    },
  };
}

/** The public-key file's entries of `generations`, newest first: OHTTP, then ODoH, each. */
export function publicKeys(generations: readonly GatewayKeyGeneration[]): KeyconfData[] {
  return generations.flatMap((g) => [
    {
      kind: 'ohttp' as const,
      config: encodeKeyConfig(g.ohttp.config),
      notBefore: g.created,
      notAfter: g.notAfter,
    },
    {
      kind: 'odoh' as const,
      config: encodeOdohConfig(g.odoh.config),
      notBefore: g.created,
      notAfter: g.notAfter,
    },
  ]);
}

async function generationOf(
  stored: StoredGeneration,
  rotation: number,
  overlap: number,
): Promise<GatewayKeyGeneration> {
  return {
    created: stored.created,
    notAfter: stored.created + rotation + overlap,
    ohttp: await ohttpKeyPairFromPrivate(stored.ohttpKeyId, unb64(stored.ohttp)),
    odoh: await odohKeyPairFromPrivate(unb64(stored.odoh)),
  };
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

function unb64(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text, 'base64url'));
}

/** The generations of the private file, newest first; none when there is no file yet. */
async function readStored(path: string): Promise<StoredGeneration[]> {
  let content: string;
  try {
    content = await readFile(path, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new GatewayKeyError('ERR_GATEWAY_KEYS', `cannot read ${path}`, { cause });
  }
  const bad = (why: string): GatewayKeyError =>
    new GatewayKeyError('ERR_GATEWAY_KEYS', `${path} is not a gateway key file: ${why}`);
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch {
    throw bad('not JSON');
  }
  const file = value as { version?: unknown; generations?: unknown };
  if (file?.version !== 1 || !Array.isArray(file.generations)) {
    throw bad('expected {"version": 1, "generations": [...]}');
  }
  const generations = file.generations.map((entry: unknown, i): StoredGeneration => {
    const g = (entry ?? {}) as Record<string, unknown>;
    const key = (name: string): string => {
      const v = g[name];
      if (typeof v !== 'string' || unb64(v).length !== 32) {
        throw bad(`generations[${i}].${name} is not a 32-octet key`);
      }
      return v;
    };
    const created = g['created'];
    const keyId = g['ohttpKeyId'];
    if (!Number.isSafeInteger(created) || (created as number) < 0) {
      throw bad(`generations[${i}].created is not a time`);
    }
    if (!Number.isInteger(keyId) || (keyId as number) < 0 || (keyId as number) > 255) {
      throw bad(`generations[${i}].ohttpKeyId is not 0–255`);
    }
    return {
      created: created as number,
      ohttpKeyId: keyId as number,
      ohttp: key('ohttp'),
      odoh: key('odoh'),
    };
  });
  return generations.sort((a, b) => b.created - a.created);
}

/**
 * Writes `path` through a temporary file, synced, then renamed over it, with `mode`: after a
 * crash the file is the old one or the new one, whole.
 */
async function writeAtomically(path: string, data: string, mode: number): Promise<void> {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const file = await open(temporary, 'wx', mode);
    try {
      await file.chmod(mode);
      await file.writeFile(data);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, path);
  } catch (cause) {
    await rm(temporary, { force: true });
    throw new GatewayKeyError('ERR_GATEWAY_KEYS', `cannot write ${path}`, { cause });
  }
}
