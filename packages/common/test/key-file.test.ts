import { describe, expect, it } from 'vitest';
import {
  encodePublicKeyFile,
  KeyFileError,
  MAX_KEYCONF_CONFIG_OCTETS,
  MAX_PUBLIC_KEY_FILE_KEYS,
  MAX_PUBLIC_KEY_FILE_OCTETS,
  parsePublicKeyFile,
  unexpiredKeys,
  type KeyconfData,
  type KeyFileErrorCode,
} from '../src/index.js';

const NOW = 1_767_225_600;

const key = (n: number, overrides: Partial<KeyconfData> = {}): KeyconfData => ({
  kind: 'ohttp',
  config: Uint8Array.of(n, 0, 0x20, 0xfb, 0xff),
  notBefore: NOW - 86_400 + n,
  notAfter: NOW + 86_400 + n,
  ...overrides,
});

function keyFileError(fn: () => unknown): KeyFileError {
  try {
    fn();
  } catch (error) {
    if (error instanceof KeyFileError) return error;
    throw error;
  }
  throw new Error('no error thrown');
}

/** A file as JSON text from a plain value. */
const file = (value: unknown): string => JSON.stringify(value);
const entry = { kind: 'ohttp', config: 'AQAg-_8', notBefore: NOW, notAfter: NOW + 60 };

describe('public-key file', () => {
  it('writes versioned JSON with unpadded base64url configs', () => {
    const text = encodePublicKeyFile([
      key(1),
      key(2, { kind: 'private-token', notAfter: NOW - 1, notBefore: NOW - 100 }),
    ]);
    expect(text.endsWith('}\n')).toBe(true);
    expect(JSON.parse(text)).toEqual({
      version: 1,
      keys: [
        { kind: 'ohttp', config: 'AQAg-_8', notBefore: NOW - 86_399, notAfter: NOW + 86_401 },
        { kind: 'private-token', config: 'AgAg-_8', notBefore: NOW - 100, notAfter: NOW - 1 },
      ],
    });
  });

  it('reads back what it writes, for every kind and the largest config', () => {
    const keys = [
      key(1),
      key(2, { kind: 'odoh' }),
      key(3, { kind: 'private-token', config: new Uint8Array(MAX_KEYCONF_CONFIG_OCTETS).fill(3) }),
    ];
    expect(parsePublicKeyFile(encodePublicKeyFile(keys))).toEqual(keys);
    expect(parsePublicKeyFile(encodePublicKeyFile([]))).toEqual([]);
  });

  it(`takes ${MAX_PUBLIC_KEY_FILE_KEYS} keys and refuses one more, both ways`, () => {
    const keys = Array.from({ length: MAX_PUBLIC_KEY_FILE_KEYS + 1 }, (_, i) => key(i));
    const most = keys.slice(0, MAX_PUBLIC_KEY_FILE_KEYS);
    expect(parsePublicKeyFile(encodePublicKeyFile(most))).toHaveLength(MAX_PUBLIC_KEY_FILE_KEYS);
    expect(keyFileError(() => encodePublicKeyFile(keys)).code).toBe('ERR_KEY_FILE_TOO_LARGE');
    const text = file({ version: 1, keys: keys.map(() => entry) });
    expect(keyFileError(() => parsePublicKeyFile(text)).code).toBe('ERR_KEY_FILE_TOO_LARGE');
  });

  it('refuses a text over the size bound before parsing it', () => {
    const text = `{"version":1,"keys":[]}${' '.repeat(MAX_PUBLIC_KEY_FILE_OCTETS)}`;
    const err = keyFileError(() => parsePublicKeyFile(text));
    expect(err.code).toBe('ERR_KEY_FILE_TOO_LARGE');
  });

  it.each<[string, string, KeyFileErrorCode, string]>([
    ['text that is not JSON', '{"version": 1,', 'ERR_KEY_FILE_MALFORMED', 'not JSON'],
    ['an array', '[]', 'ERR_KEY_FILE_MALFORMED', 'must be a JSON object'],
    ['version 2', file({ version: 2, keys: [] }), 'ERR_KEY_FILE_MALFORMED', 'version 2 is not 1'],
    ['no version', file({ keys: [] }), 'ERR_KEY_FILE_MALFORMED', 'version undefined'],
    [
      'an unknown top-level field',
      file({ version: 1, keys: [], issuer: 'x' }),
      'ERR_KEY_FILE_MALFORMED',
      'unknown field "issuer"',
    ],
    ['keys that are not a list', file({ version: 1, keys: {} }), 'ERR_KEY_FILE_MALFORMED', 'array'],
    [
      'an unknown key field',
      file({ version: 1, keys: [{ ...entry, keyId: 1 }] }),
      'ERR_KEY_FILE_MALFORMED',
      'key 0 has an unknown field "keyId"',
    ],
    [
      'a missing key field',
      file({ version: 1, keys: [{ kind: 'ohttp', config: 'AQ', notBefore: NOW }] }),
      'ERR_KEY_FILE_MALFORMED',
      'key 0 lacks "notAfter"',
    ],
    [
      'an unknown kind',
      file({ version: 1, keys: [entry, { ...entry, kind: 'dns' }] }),
      'ERR_KEY_FILE_MALFORMED',
      'key 1: KEYCONF kind "dns"',
    ],
    [
      'padded base64',
      file({ version: 1, keys: [{ ...entry, config: 'AQAg+/8=' }] }),
      'ERR_KEY_FILE_MALFORMED',
      'unpadded base64url',
    ],
    [
      'base64url with stray trailing bits',
      file({ version: 1, keys: [{ ...entry, config: 'AR' }] }),
      'ERR_KEY_FILE_MALFORMED',
      'not canonical',
    ],
    [
      'an empty config',
      file({ version: 1, keys: [{ ...entry, config: '' }] }),
      'ERR_KEY_FILE_MALFORMED',
      'non-empty',
    ],
    [
      'notBefore after notAfter',
      file({ version: 1, keys: [{ ...entry, notBefore: NOW + 61 }] }),
      'ERR_KEY_FILE_MALFORMED',
      'is not before notAfter',
    ],
    [
      'a time given as text',
      file({ version: 1, keys: [{ ...entry, notAfter: String(NOW + 60) }] }),
      'ERR_KEY_FILE_MALFORMED',
      'unsigned integer',
    ],
    [
      'the same key twice',
      file({ version: 1, keys: [entry, { ...entry, notAfter: NOW + 120 }] }),
      'ERR_KEY_FILE_MALFORMED',
      'key 1 is key 0 again',
    ],
    [
      'an oversized config',
      file({
        version: 1,
        keys: [
          { ...entry, config: Buffer.alloc(MAX_KEYCONF_CONFIG_OCTETS + 1).toString('base64url') },
        ],
      }),
      'ERR_KEY_FILE_MALFORMED',
      `over ${MAX_KEYCONF_CONFIG_OCTETS}`,
    ],
  ])('refuses %s with a clear error', (_what, text, code, message) => {
    const err = keyFileError(() => parsePublicKeyFile(text));
    expect(err.code).toBe(code);
    expect(err.message).toContain(message);
    expect(err.message.startsWith('public-key file: ')).toBe(true);
  });

  it('writes no file with a key the KEYCONF codec refuses', () => {
    const err = keyFileError(() => encodePublicKeyFile([key(1), key(2, { notAfter: 0 })]));
    expect(err.message).toContain('key 1:');
  });

  it('keeps the keys whose notAfter is still ahead', () => {
    const keys = [
      key(1, { notAfter: NOW }),
      key(2, { notAfter: NOW + 1 }),
      key(3, { notBefore: NOW + 10, notAfter: NOW + 20 }),
      key(4, { notBefore: NOW - 20, notAfter: NOW - 10 }),
    ];
    expect(unexpiredKeys(keys, NOW)).toEqual([keys[1], keys[2]]);
    expect(unexpiredKeys(keys, NOW + 20)).toEqual([]);
  });
});
