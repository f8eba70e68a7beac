import { Buffer } from 'node:buffer';
import { MimiError } from './errors.js';
import { record, type KeyconfData } from './records.js';
import { encodeRdata } from './wire.js';

/**
 * The public-key file of an oblivious-path service: the keys a gateway or a token issuer has
 * in use, which it rewrites (atomically) at every rotation and which an operator publishes in
 * the tree as a KEYCONF RRset (`mimi-discovery keys publish`). The format is versioned JSON:
 *
 * ```json
 * { "version": 1,
 *   "keys": [ { "kind": "ohttp", "config": "AAAgACCd…", "notBefore": 1767225600,
 *               "notAfter": 1769817600 } ] }
 * ```
 *
 * `config` is the unpadded base64url (RFC 4648 §5) of the key's protocol form, the KEYCONF
 * `config` (`records.ts`). Each key passes the very checks of the KEYCONF codec (`wire.ts`):
 * a file that parses can be published, and what is published can be written as a file.
 * Parsing is strict: unknown fields, a wrong version, a config that is not canonical base64url,
 * the same key twice, more than {@link MAX_PUBLIC_KEY_FILE_KEYS} keys or a text over
 * {@link MAX_PUBLIC_KEY_FILE_OCTETS} are refused with a {@link KeyFileError}.
 */

/** The format version this module reads and writes. */
export const PUBLIC_KEY_FILE_VERSION = 1;

/**
 * Most keys one file may list. A service keeps its current key, the next one and those still in
 * their overlap; 16 leaves room for several kinds at once and for slow rotations, and 16 keys of
 * the largest config still fit one DNS response as a KEYCONF RRset.
 */
export const MAX_PUBLIC_KEY_FILE_KEYS = 16;

/**
 * Largest file, in UTF-16 code units of its text: {@link MAX_PUBLIC_KEY_FILE_KEYS} keys of the
 * largest config (`MAX_KEYCONF_CONFIG_OCTETS`, 2,731 base64url characters) with their fields.
 */
export const MAX_PUBLIC_KEY_FILE_OCTETS = 64 * 1024;

/** The file names the gateway and the issuer write into their key directory. */
export const GATEWAY_PUBLIC_KEY_FILE = 'gateway-public-keys.json';
/** See {@link GATEWAY_PUBLIC_KEY_FILE}. */
export const ISSUER_PUBLIC_KEY_FILE = 'issuer-public-keys.json';

/** The codes of a {@link KeyFileError}. */
export type KeyFileErrorCode = 'ERR_KEY_FILE_MALFORMED' | 'ERR_KEY_FILE_TOO_LARGE';

/** A public-key file that cannot be read or written; the message names the key and field. */
export class KeyFileError extends MimiError<KeyFileErrorCode> {}

const TOP_FIELDS: ReadonlySet<string> = new Set(['version', 'keys']);
const KEY_FIELDS: ReadonlySet<string> = new Set(['kind', 'config', 'notBefore', 'notAfter']);
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * The file's text (JSON, two-space indented, with a final newline) for `keys`, in the order
 * given. Throws {@link KeyFileError} for a key the KEYCONF codec refuses, a key listed twice or
 * more than {@link MAX_PUBLIC_KEY_FILE_KEYS} keys.
 */
export function encodePublicKeyFile(keys: readonly KeyconfData[]): string {
  if (!Array.isArray(keys)) malformed('keys must be an array');
  checkCount(keys.length);
  keys.forEach((key, index) => checkKey(key, index));
  checkDistinct(keys);
  const file = {
    version: PUBLIC_KEY_FILE_VERSION,
    keys: keys.map((k) => ({
      kind: k.kind,
      config: Buffer.from(k.config).toString('base64url'),
      notBefore: k.notBefore,
      notAfter: k.notAfter,
    })),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/**
 * The keys of a public-key file, in file order, expired ones included (see
 * {@link unexpiredKeys}). Throws {@link KeyFileError} for anything but the format of the module
 * comment.
 */
export function parsePublicKeyFile(text: string): KeyconfData[] {
  if (typeof text !== 'string') malformed('the file must be text');
  if (text.length > MAX_PUBLIC_KEY_FILE_OCTETS) {
    throw new KeyFileError(
      'ERR_KEY_FILE_TOO_LARGE',
      `public-key file: ${text.length} characters, over ${MAX_PUBLIC_KEY_FILE_OCTETS}`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    return malformed(`not JSON: ${why}`, cause);
  }
  if (!isObject(raw)) malformed('the file must be a JSON object');
  onlyFields(raw, TOP_FIELDS, 'the file');
  if (raw.version !== PUBLIC_KEY_FILE_VERSION) {
    malformed(`version ${JSON.stringify(raw.version)} is not ${PUBLIC_KEY_FILE_VERSION}`);
  }
  if (!Array.isArray(raw.keys)) malformed('"keys" must be an array');
  checkCount(raw.keys.length);
  const keys = (raw.keys as unknown[]).map((entry, index) => parseKey(entry, index));
  checkDistinct(keys);
  return keys;
}

/**
 * The keys still in use or yet to come at `nowS` (seconds since the epoch): those whose
 * `notAfter` is later than `nowS`, in their given order. These are what belongs in a KEYCONF
 * RRset: a key whose time has passed is of no use to anyone checking a key.
 */
export function unexpiredKeys(keys: readonly KeyconfData[], nowS: number): KeyconfData[] {
  return keys.filter((k) => k.notAfter > nowS);
}

function parseKey(entry: unknown, index: number): KeyconfData {
  const at = `key ${index}`;
  if (!isObject(entry)) malformed(`${at} must be an object`);
  onlyFields(entry, KEY_FIELDS, at);
  for (const field of KEY_FIELDS) {
    if (!Object.hasOwn(entry, field)) malformed(`${at} lacks "${field}"`);
  }
  const { kind, config, notBefore, notAfter } = entry;
  if (typeof config !== 'string' || !BASE64URL.test(config)) {
    malformed(`${at}: "config" must be unpadded base64url (RFC 4648 §5)`);
  }
  const bytes = new Uint8Array(Buffer.from(config, 'base64url'));
  // Node decodes leniently (stray trailing bits, a lone final character): only the canonical
  // text of the bytes is accepted, so that one key has one spelling.
  if (Buffer.from(bytes).toString('base64url') !== config) {
    malformed(`${at}: "config" is not canonical base64url`);
  }
  const key = { kind, config: bytes, notBefore, notAfter } as KeyconfData;
  checkKey(key, index);
  return key;
}

/** The KEYCONF codec's checks (kind, config size, times), as the file's error. */
function checkKey(key: KeyconfData, index: number): void {
  try {
    encodeRdata(record('.', 'KEYCONF', key, 0));
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    malformed(`key ${index}: ${why}`, cause);
  }
}

function checkCount(count: number): void {
  if (count > MAX_PUBLIC_KEY_FILE_KEYS) {
    throw new KeyFileError(
      'ERR_KEY_FILE_TOO_LARGE',
      `public-key file: ${count} keys, over ${MAX_PUBLIC_KEY_FILE_KEYS}`,
    );
  }
}

/** One key is one kind and config: listing it twice (with other times) is ambiguous. */
function checkDistinct(keys: readonly KeyconfData[]): void {
  const seen = new Map<string, number>();
  keys.forEach((k, index) => {
    const id = `${k.kind} ${Buffer.from(k.config).toString('hex')}`;
    const first = seen.get(id);
    if (first !== undefined) malformed(`key ${index} is key ${first} again`);
    seen.set(id, index);
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function onlyFields(
  value: Record<string, unknown>,
  allowed: ReadonlySet<string>,
  at: string,
): void {
  for (const field of Object.keys(value)) {
    if (!allowed.has(field)) malformed(`${at} has an unknown field ${JSON.stringify(field)}`);
  }
}

function malformed(message: string, cause?: unknown): never {
  throw new KeyFileError(
    'ERR_KEY_FILE_MALFORMED',
    `public-key file: ${message}`,
    cause === undefined ? undefined : { cause },
  );
}
