import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import {
  MimiError,
  canonicalName,
  computeKeyTag,
  createZoneKey,
  keyPairFromSeed,
  type DnskeyData,
  type Ed25519KeyPair,
  type ZoneKey,
} from '@mimi-discovery/common';
import { KEY_TIMING_FIELDS, revokedDnskey, type KeyTiming, type StoredZoneKey } from './key-set.js';

/**
 * The key directory (design §9: keys live apart from data, so a backup of the data carries no
 * secret). One directory per server, mode 0700, holding:
 *
 * - `prover.key`: this DP's prover key (the Ed25519 seed that signs attestations), made on first
 *   open;
 * - one file per zone key, named as BIND names its key files, `K<zone>.+015+<tag>.key`
 *   (`K.+015+<tag>.key` for the root; a second key of the zone with the same tag gets `-2`, `-3`
 *   … before `.key`), holding the key's seed, its public DNSKEY and its timing (`key-set.ts`).
 *
 * Every file is JSON, mode 0600, written whole to a temporary file that is fsynced, renamed over
 * the old one, and the directory fsynced (so a crash leaves the old file or the new one, never a
 * torn one). Opening refuses, as ssh does with a private key, a directory or key file that group
 * or others may read (`ERR_KEYS_PERMISSIONS`): a key readable by another account is a leaked key.
 *
 * Example: a DP's zone `4.4.e164.mimi.arpa` with one key of tag 31211 has
 * `keys/prover.key` and `keys/K4.4.e164.mimi.arpa.+015+31211.key`:
 * `{"zone":"4.4.e164.mimi.arpa","keyTag":31211,"flags":257,"protocol":3,"algorithm":15,
 * "publicKey":"…","seed":"…","timing":{"created":…,"publish":…,"active":…}}`.
 */

/** Mode of the key directory: the owner only (as ssh wants `~/.ssh`). */
export const KEY_DIRECTORY_MODE = 0o700;
/** Mode of every key file: read and write by the owner only. */
export const KEY_FILE_MODE = 0o600;
/** The prover key's file in the key directory. */
export const PROVER_KEY_FILE = 'prover.key';
/**
 * Largest key file read, in octets: a key file is a few hundred octets, so anything larger is
 * not one of ours and is refused before it is parsed.
 */
export const MAX_KEY_FILE_OCTETS = 64 * 1024;
/**
 * Most keys one zone may have in the directory: a rollover has two or three at once, an
 * emergency roll during a rollover four; more is an operator mistake (or a runaway loop), and
 * every key costs a signature on the DNSKEY RRset.
 */
export const MAX_KEYS_PER_ZONE = 8;
/** Prefix of the temporary files of an atomic write (left over only after a crash; ignored). */
const TEMP_PREFIX = '.tmp-';

/** Stable codes of {@link KeyDirectoryError}. */
export type KeyDirectoryErrorCode =
  /** The directory or a key file may be read by group or others. */
  | 'ERR_KEYS_PERMISSIONS'
  /** The directory does not exist and was not to be created, or is not a directory. */
  | 'ERR_KEYS_NO_DIRECTORY'
  /** A key file that does not parse or whose contents do not agree with themselves. */
  | 'ERR_KEYS_CORRUPT'
  /** No key of that zone with that tag. */
  | 'ERR_KEYS_NO_KEY'
  /** Two keys of the zone share the tag asked for: the operation does not know which. */
  | 'ERR_KEYS_AMBIGUOUS'
  /** The key (same public key) is already in the directory. */
  | 'ERR_KEYS_EXISTS'
  /** Timing values that are not whole seconds since the epoch. */
  | 'ERR_KEYS_BAD_TIMING'
  /** A seed that is not 32 octets. */
  | 'ERR_KEYS_BAD_SEED'
  /** The zone has {@link MAX_KEYS_PER_ZONE} keys already. */
  | 'ERR_KEYS_TOO_MANY'
  /** The directory holds a different prover key than the configured seed. */
  | 'ERR_KEYS_PROVER_KEY'
  /** Reading or writing the directory failed. */
  | 'ERR_KEYS_IO';

/** A fault of the key directory; nothing was changed. */
export class KeyDirectoryError extends MimiError<KeyDirectoryErrorCode> {
  constructor(code: KeyDirectoryErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Where a server keeps its zone keys and its prover key (`keys-directory.ts`). */
export interface KeyDirectory {
  /** The directory, or undefined for the memory one. */
  readonly dir: string | undefined;
  /** This DP's prover key (made on first open). */
  proverKey(): Ed25519KeyPair;
  /**
   * Every key of the zone, oldest first: by `created`, and within one second a key on its way
   * out (`inactive` set) before one that is not, then by `active` (unset last), then key tag.
   */
  zoneKeys(origin: string): StoredZoneKey[];
  /** The private half of a key, undefined when the directory does not hold it. */
  privateKey(key: StoredZoneKey): ZoneKey | undefined;
  /**
   * Adds a key to the zone (from `seed`, 32 octets, or a new random one whose key tag, plain or
   * revoked, no other key of the zone has), written before the promise resolves.
   */
  addZoneKey(origin: string, timing: KeyTiming, seed?: Uint8Array): Promise<StoredZoneKey>;
  /** Changes some timing fields of one key (the others are kept); written before it resolves. */
  setTiming(origin: string, keyTag: number, timing: Partial<KeyTiming>): Promise<StoredZoneKey>;
  /** Deletes one key's file. */
  deleteZoneKey(origin: string, keyTag: number): Promise<void>;
  /** Deletes every key of the zone. */
  removeZone(origin: string): Promise<void>;
  /** Re-reads the files (another process changed them); true when something changed. */
  reload(): boolean;
}

/** The key directory inside a server's data directory, the default of config `keys.dir`. */
export function defaultKeyDirectory(dataDir: string): string {
  return join(dataDir, 'keys');
}

/** One key as kept in memory: what the file says, the seed, and the file's name. */
interface Entry {
  key: StoredZoneKey;
  seed: Uint8Array;
  file: string | undefined;
  /** The file's JSON text, to tell on reload whether it changed. */
  text: string;
}

/**
 * Opens (and with `create`, the default, makes) the key directory `dir`: checks its permissions
 * and those of every key file, reads every key, and creates `prover.key` from `proverSeed` (or a
 * random seed) when it is missing. Throws {@link KeyDirectoryError}: `ERR_KEYS_PERMISSIONS` for a
 * directory or key file that group or others may read, `ERR_KEYS_PROVER_KEY` when `proverSeed`
 * differs from the stored prover key, `ERR_KEYS_CORRUPT`, `ERR_KEYS_NO_DIRECTORY`, `ERR_KEYS_IO`.
 */
export function openKeyDirectory(
  dir: string,
  options: { create?: boolean; proverSeed?: Uint8Array } = {},
): KeyDirectory {
  checkSeed(options.proverSeed, 'proverSeed', 'ERR_KEYS_PROVER_KEY');
  let stats: Stats | undefined;
  try {
    stats = statSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw io(`cannot read ${dir}`, error);
  }
  if (stats === undefined) {
    if (options.create === false) {
      throw new KeyDirectoryError(
        'ERR_KEYS_NO_DIRECTORY',
        `the key directory ${dir} does not exist`,
      );
    }
    try {
      mkdirSync(dir, { recursive: true, mode: KEY_DIRECTORY_MODE });
      stats = statSync(dir);
    } catch (error) {
      throw io(`cannot create the key directory ${dir}`, error);
    }
  }
  if (!stats.isDirectory()) {
    throw new KeyDirectoryError('ERR_KEYS_NO_DIRECTORY', `${dir} is not a directory`);
  }
  checkMode(stats, dir, 'directory', '700');
  const files = new FileStore(dir);
  const loaded = files.load();
  let prover = loaded.prover;
  if (prover === undefined) {
    const seed = options.proverSeed ?? Uint8Array.from(randomBytes(32));
    files.write(PROVER_KEY_FILE, proverText(seed));
    prover = seed;
  } else if (
    options.proverSeed !== undefined &&
    !Buffer.from(options.proverSeed).equals(Buffer.from(prover))
  ) {
    throw new KeyDirectoryError(
      'ERR_KEYS_PROVER_KEY',
      `the key directory ${dir} holds a different prover key than the configured seed`,
    );
  }
  return new Directory(dir, keyPairFromSeed(prover), loaded.entries, files);
}

/** A key directory in memory, for ephemeral servers and tests: the same rules, no files. */
export function createMemoryKeyDirectory(options: { proverSeed?: Uint8Array } = {}): KeyDirectory {
  checkSeed(options.proverSeed, 'proverSeed', 'ERR_KEYS_PROVER_KEY');
  const seed = options.proverSeed ?? Uint8Array.from(randomBytes(32));
  return new Directory(undefined, keyPairFromSeed(seed), [], undefined);
}

/** The key directory's state and operations; `files` is undefined for the memory one. */
class Directory implements KeyDirectory {
  #prover: Ed25519KeyPair;
  #entries: Entry[];
  readonly #files: FileStore | undefined;
  readonly #private = new WeakMap<Entry, ZoneKey>();

  constructor(
    readonly dir: string | undefined,
    prover: Ed25519KeyPair,
    entries: Entry[],
    files: FileStore | undefined,
  ) {
    this.#prover = prover;
    this.#entries = entries;
    this.#files = files;
  }

  proverKey(): Ed25519KeyPair {
    return this.#prover;
  }

  zoneKeys(origin: string): StoredZoneKey[] {
    const zone = canonicalName(origin);
    return this.#of(zone).map((e) => copyKey(e.key));
  }

  privateKey(key: StoredZoneKey): ZoneKey | undefined {
    const zone = canonicalName(key.zone);
    const entry = this.#entries.find(
      (e) =>
        e.key.zone === zone &&
        e.key.keyTag === key.keyTag &&
        Buffer.from(e.key.dnskey.publicKey).equals(Buffer.from(key.dnskey.publicKey)),
    );
    if (entry === undefined) return undefined;
    let secret = this.#private.get(entry);
    if (secret === undefined) {
      secret = createZoneKey(zone, { seed: entry.seed });
      this.#private.set(entry, secret);
    }
    return secret;
  }

  async addZoneKey(origin: string, timing: KeyTiming, seed?: Uint8Array): Promise<StoredZoneKey> {
    await Promise.resolve();
    const zone = canonicalName(origin);
    const checked = checkTiming(timing, true) as KeyTiming;
    checkSeed(seed, 'seed', 'ERR_KEYS_BAD_SEED');
    const existing = this.#of(zone);
    if (existing.length >= MAX_KEYS_PER_ZONE) {
      throw new KeyDirectoryError(
        'ERR_KEYS_TOO_MANY',
        `zone ${zone} has ${existing.length} keys already (at most ${MAX_KEYS_PER_ZONE})`,
      );
    }
    const taken = new Set(
      existing.flatMap((e) => [e.key.keyTag, computeKeyTag(revokedDnskey(e.key.dnskey))]),
    );
    let secret: ZoneKey;
    let keySeed: Uint8Array;
    if (seed !== undefined) {
      keySeed = Uint8Array.from(seed);
      secret = createZoneKey(zone, { seed: keySeed });
      const same = existing.find((e) =>
        Buffer.from(e.key.dnskey.publicKey).equals(Buffer.from(secret.dnskey.publicKey)),
      );
      if (same !== undefined) {
        throw new KeyDirectoryError(
          'ERR_KEYS_EXISTS',
          `zone ${zone} already has this key (tag ${same.key.keyTag})`,
        );
      }
    } else {
      // RFC 4034 Appendix B: tags are not unique; a new key whose tag (or revoked tag) another
      // key of the zone has would make validators try both, so a random key is drawn again.
      do {
        keySeed = Uint8Array.from(randomBytes(32));
        secret = createZoneKey(zone, { seed: keySeed });
      } while (taken.has(secret.keyTag) || taken.has(computeKeyTag(revokedDnskey(secret.dnskey))));
    }
    const key: StoredZoneKey = {
      zone,
      keyTag: secret.keyTag,
      dnskey: secret.dnskey,
      timing: checked,
    };
    const text = keyText(key, keySeed);
    const file = this.#files?.write(this.#files.freeName(zone, key.keyTag), text);
    this.#entries = [...this.#entries, { key, seed: keySeed, file, text }];
    return copyKey(key);
  }

  async setTiming(
    origin: string,
    keyTag: number,
    timing: Partial<KeyTiming>,
  ): Promise<StoredZoneKey> {
    await Promise.resolve();
    // Another process (`keys roll` beside the running server's roller) may have changed the
    // file since it was read: merge into what is on disk now, not into a stale copy.
    this.reload();
    const entry = this.#one(canonicalName(origin), keyTag);
    const merged = { ...entry.key.timing, ...checkTiming(timing, false) } as KeyTiming;
    const key: StoredZoneKey = { ...entry.key, timing: merged };
    const text = keyText(key, entry.seed);
    if (this.#files !== undefined && entry.file !== undefined) this.#files.write(entry.file, text);
    const next: Entry = { key, seed: entry.seed, file: entry.file, text };
    this.#entries = this.#entries.map((e) => (e === entry ? next : e));
    return copyKey(key);
  }

  async deleteZoneKey(origin: string, keyTag: number): Promise<void> {
    await Promise.resolve();
    this.reload();
    const entry = this.#one(canonicalName(origin), keyTag);
    if (this.#files !== undefined && entry.file !== undefined) this.#files.remove([entry.file]);
    this.#entries = this.#entries.filter((e) => e !== entry);
  }

  async removeZone(origin: string): Promise<void> {
    await Promise.resolve();
    const zone = canonicalName(origin);
    const gone = this.#of(zone);
    if (this.#files !== undefined) {
      this.#files.remove(gone.flatMap((e) => (e.file === undefined ? [] : [e.file])));
    }
    this.#entries = this.#entries.filter((e) => e.key.zone !== zone);
  }

  reload(): boolean {
    if (this.#files === undefined) return false;
    const loaded = this.#files.load();
    if (loaded.prover === undefined) {
      throw new KeyDirectoryError(
        'ERR_KEYS_CORRUPT',
        `the key directory ${this.dir ?? ''} lost its ${PROVER_KEY_FILE}`,
      );
    }
    const before = this.#entries.map((e) => `${e.file ?? ''}\u0000${e.text}`).sort();
    const after = loaded.entries.map((e) => `${e.file ?? ''}\u0000${e.text}`).sort();
    const proverChanged = !Buffer.from(loaded.prover).equals(Buffer.from(this.#prover.secretKey));
    const changed = proverChanged || before.join('\u0001') !== after.join('\u0001');
    if (changed) {
      this.#entries = loaded.entries;
      if (proverChanged) this.#prover = keyPairFromSeed(loaded.prover);
    }
    return changed;
  }

  #of(zone: string): Entry[] {
    return this.#entries
      .filter((e) => e.key.zone === zone)
      .sort((a, b) => compareAge(a.key, b.key));
  }

  #one(zone: string, keyTag: number): Entry {
    const found = this.#entries.filter((e) => e.key.zone === zone && e.key.keyTag === keyTag);
    const entry = found[0];
    if (entry === undefined) {
      throw new KeyDirectoryError(
        'ERR_KEYS_NO_KEY',
        `no key of zone ${zone} with tag ${keyTag}${this.dir === undefined ? '' : ` in ${this.dir}`}`,
      );
    }
    if (found.length > 1) {
      throw new KeyDirectoryError(
        'ERR_KEYS_AMBIGUOUS',
        `zone ${zone} has ${found.length} keys with tag ${keyTag}: change their files by hand`,
      );
    }
    return entry;
  }
}

/** The files of one key directory: reading them all, and writing one atomically. */
class FileStore {
  constructor(readonly dir: string) {}

  /** Reads every key file; throws on the first that is unsafe or does not parse. */
  load(): { prover: Uint8Array | undefined; entries: Entry[] } {
    checkMode(this.#stat(this.dir), this.dir, 'directory', '700');
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (error) {
      throw io(`cannot list the key directory ${this.dir}`, error);
    }
    let prover: Uint8Array | undefined;
    const entries: Entry[] = [];
    for (const name of names.sort()) {
      if (name.startsWith(TEMP_PREFIX)) continue;
      const isProver = name === PROVER_KEY_FILE;
      if (!isProver && !(name.startsWith('K') && name.endsWith('.key'))) continue;
      const text = this.#read(name);
      if (isProver) prover = parseProver(text, join(this.dir, name));
      else entries.push({ ...parseKey(text, join(this.dir, name)), file: name, text });
    }
    return { prover, entries };
  }

  /** A file name for a new key of `zone` with `keyTag` that no file has yet. */
  freeName(zone: string, keyTag: number): string {
    const base = `K${zone === '.' ? '' : fileSafe(zone)}.+015+${String(keyTag).padStart(5, '0')}`;
    for (let n = 1; ; n++) {
      const name = n === 1 ? `${base}.key` : `${base}-${n}.key`;
      try {
        lstatSync(join(this.dir, name));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return name;
        throw io(`cannot read ${join(this.dir, name)}`, error);
      }
    }
  }

  /**
   * Writes `text` to `name` atomically and durably: a new 0600 temporary file, fsync, rename
   * over `name`, fsync of the directory (so the rename itself survives a power cut).
   */
  write(name: string, text: string): string {
    const temp = join(this.dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      const fd = openSync(temp, 'wx', KEY_FILE_MODE);
      try {
        const bytes = Buffer.from(text);
        let done = 0;
        while (done < bytes.length) done += writeSync(fd, bytes, done);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, join(this.dir, name));
      this.#syncDir();
    } catch (error) {
      try {
        unlinkSync(temp);
      } catch {
        // The temporary file may never have been created; nothing else to undo.
      }
      throw io(`cannot write ${join(this.dir, name)}`, error);
    }
    return name;
  }

  remove(names: readonly string[]): void {
    try {
      for (const name of names) {
        try {
          unlinkSync(join(this.dir, name));
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        }
      }
      this.#syncDir();
    } catch (error) {
      throw io(`cannot delete key files in ${this.dir}`, error);
    }
  }

  #syncDir(): void {
    const fd = openSync(this.dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  #stat(path: string): Stats {
    try {
      return lstatSync(path);
    } catch (error) {
      throw io(`cannot read ${path}`, error);
    }
  }

  #read(name: string): string {
    const path = join(this.dir, name);
    const stats = this.#stat(path);
    if (!stats.isFile()) {
      throw new KeyDirectoryError('ERR_KEYS_CORRUPT', `${path} is not a regular file`);
    }
    checkMode(stats, path, 'key file', '600');
    if (stats.size > MAX_KEY_FILE_OCTETS) {
      throw new KeyDirectoryError(
        'ERR_KEYS_CORRUPT',
        `${path} is ${stats.size} octets, more than a key file (${MAX_KEY_FILE_OCTETS})`,
      );
    }
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw io(`cannot read ${path}`, error);
    }
  }
}

/** Refuses a directory or file that group or others may access, as ssh refuses a private key. */
function checkMode(stats: Stats, path: string, what: string, wanted: string): void {
  if ((stats.mode & 0o077) !== 0) {
    throw new KeyDirectoryError(
      'ERR_KEYS_PERMISSIONS',
      `the ${what} ${path} is accessible by group or others (mode ` +
        `${(stats.mode & 0o777).toString(8).padStart(3, '0')}): run chmod ${wanted} ${path}`,
    );
  }
}

/** A zone name as a file name: characters other than letters, digits, `.`, `-`, `_` as `%xx`. */
function fileSafe(zone: string): string {
  return zone.replace(/[^a-z0-9._-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function proverText(seed: Uint8Array): string {
  return `${JSON.stringify({ type: 'prover', seed: Buffer.from(seed).toString('base64') })}\n`;
}

function keyText(key: StoredZoneKey, seed: Uint8Array): string {
  return `${JSON.stringify({
    zone: key.zone,
    keyTag: key.keyTag,
    flags: key.dnskey.flags,
    protocol: key.dnskey.protocol,
    algorithm: key.dnskey.algorithm,
    publicKey: Buffer.from(key.dnskey.publicKey).toString('base64'),
    seed: Buffer.from(seed).toString('base64'),
    timing: key.timing,
  })}\n`;
}

function parseProver(text: string, path: string): Uint8Array {
  const value = parseJson(text, path);
  const seed = typeof value.seed === 'string' ? Buffer.from(value.seed, 'base64') : undefined;
  if (value.type !== 'prover' || seed === undefined || seed.length !== 32) {
    throw corrupt(path, 'not a prover key file ({"type":"prover","seed":<32 octets, base64>})');
  }
  return Uint8Array.from(seed);
}

/** Parses a zone key file and checks that its public key is the one its seed gives. */
function parseKey(text: string, path: string): { key: StoredZoneKey; seed: Uint8Array } {
  const value = parseJson(text, path);
  if (typeof value.zone !== 'string' || typeof value.seed !== 'string') {
    throw corrupt(path, 'a zone key file needs "zone" and "seed"');
  }
  let zone: string;
  try {
    zone = canonicalName(value.zone);
  } catch (cause) {
    throw corrupt(path, `${JSON.stringify(value.zone)} is not a zone name`, cause);
  }
  const seed = Buffer.from(value.seed, 'base64');
  if (seed.length !== 32) throw corrupt(path, 'the seed is not 32 octets');
  const secret = createZoneKey(zone, { seed: Uint8Array.from(seed) });
  const dnskey: DnskeyData = secret.dnskey;
  if (
    value.publicKey !== Buffer.from(dnskey.publicKey).toString('base64') ||
    value.keyTag !== secret.keyTag ||
    value.flags !== dnskey.flags ||
    value.protocol !== dnskey.protocol ||
    value.algorithm !== dnskey.algorithm
  ) {
    throw corrupt(path, 'its public key, flags or tag do not match its seed');
  }
  let timing: KeyTiming;
  try {
    timing = checkTiming(value.timing, true) as KeyTiming;
  } catch (cause) {
    throw corrupt(path, 'its timing is not valid', cause);
  }
  return { key: { zone, keyTag: secret.keyTag, dnskey, timing }, seed: Uint8Array.from(seed) };
}

function parseJson(text: string, path: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw corrupt(path, 'not JSON', cause);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw corrupt(path, 'not a JSON object');
  }
  return value as Record<string, unknown>;
}

/**
 * Checks timing fields: whole seconds in 0..2^32-1 (what an RRSIG can carry), no unknown field,
 * `created` and `publish` present when `whole`. Returns the fields that are set.
 */
function checkTiming(timing: unknown, whole: boolean): Partial<KeyTiming> {
  if (typeof timing !== 'object' || timing === null || Array.isArray(timing)) {
    throw badTiming('timing must be an object');
  }
  const out: Partial<KeyTiming> = {};
  const known = new Set<string>(KEY_TIMING_FIELDS);
  for (const [field, value] of Object.entries(timing)) {
    if (!known.has(field)) throw badTiming(`unknown timing field ${field}`);
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= 2 ** 32) {
      throw badTiming(
        `timing ${field} must be whole seconds since the epoch, got ${String(value)}`,
      );
    }
    out[field as keyof KeyTiming] = value;
  }
  if (whole && (out.created === undefined || out.publish === undefined)) {
    throw badTiming('timing needs created and publish');
  }
  return out;
}

function checkSeed(
  seed: unknown,
  what: string,
  code: 'ERR_KEYS_BAD_SEED' | 'ERR_KEYS_PROVER_KEY',
): void {
  if (seed !== undefined && !(seed instanceof Uint8Array && seed.length === 32)) {
    throw new KeyDirectoryError(code, `${what} must be 32 octets (an Ed25519 seed)`);
  }
}

function copyKey(key: StoredZoneKey): StoredZoneKey {
  return { zone: key.zone, keyTag: key.keyTag, dnskey: key.dnskey, timing: { ...key.timing } };
}

function badTiming(message: string): KeyDirectoryError {
  return new KeyDirectoryError('ERR_KEYS_BAD_TIMING', message);
}

function corrupt(path: string, why: string, cause?: unknown): KeyDirectoryError {
  return new KeyDirectoryError('ERR_KEYS_CORRUPT', `the key file ${path} is damaged: ${why}`, {
    cause,
  });
}

function io(message: string, cause: unknown): KeyDirectoryError {
  return new KeyDirectoryError('ERR_KEYS_IO', message, { cause });
}

/**
 * Orders two keys of a zone oldest first. `created` has a resolution of one second, and a roll
 * started within the second the zone was made (a script, a test) gives two keys the same
 * `created`: the roller takes the last key not on its way out as the incoming one, so a tie is
 * broken by what the timings say about age, never by the key tag alone.
 */
function compareAge(a: StoredZoneKey, b: StoredZoneKey): number {
  const leaving = (k: StoredZoneKey): number => (k.timing.inactive === undefined ? 1 : 0);
  const active = (k: StoredZoneKey): number => k.timing.active ?? Number.POSITIVE_INFINITY;
  return (
    a.timing.created - b.timing.created ||
    leaving(a) - leaving(b) ||
    (active(a) === active(b) ? 0 : active(a) < active(b) ? -1 : 1) ||
    a.keyTag - b.keyTag
  );
}
