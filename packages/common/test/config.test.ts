import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  configPathSchema,
  listenConfigSchema,
  parseConfig,
  parseConfigText,
  readConfigFile,
  rootHintsSchema,
} from '../src/index.js';
import { thrownBy } from '../../../test/helpers/rejection.js';

const errorOf = (fn: () => unknown): ConfigError => thrownBy(fn, ConfigError);

/**
 * A server config made of common's shared sections, as each server's schema is (`dpConfigSchema`
 * and `resolverConfigSchema` are tested beside their servers).
 */
const serverSchema = z.strictObject({
  role: z.enum(['dp', 'root']),
  dataDir: configPathSchema,
  listen: listenConfigSchema.prefault({}),
});

/** A config with the two required keys and `extra` keys after them. */
const dp = (extra = ''): string =>
  `{ "role": "dp", "dataDir": "/var/lib/dp"${extra === '' ? '' : `, ${extra}`} }`;

describe('parseConfig', () => {
  const schema = z.strictObject({
    list: z.array(z.strictObject({ n: z.int() })),
    'odd key': z.boolean().optional(),
  });

  it('names array items and odd keys in the path', () => {
    const error = errorOf(() =>
      parseConfig(schema, { list: [{ n: 1 }, { n: 'x' }, { m: 1, n: 1 }], 'odd key': 'yes' }),
    );
    expect(error.message).toBe(
      'list[1].n: expected a number, found a string; unknown key "m" in list[2]; ["odd key"]: expected true or false, found a string',
    );
    expect(error.issues).toEqual([
      { path: 'list[1].n', message: 'expected a number, found a string', unknownKey: false },
      { path: 'list[2]', message: 'unknown key "m"', unknownKey: true },
      { path: '["odd key"]', message: 'expected true or false, found a string', unknownKey: false },
    ]);
  });

  it('prefixes the source', () => {
    const error = errorOf(() => parseConfig(schema, {}, 'x.json'));
    expect(error.message).toBe('x.json: list: required');
    expect(error.source).toBe('x.json');
  });
});

describe('parseConfigText', () => {
  it.each([
    [
      'a missing comma',
      '{\n  "role": "dp"\n  "dataDir": "/d"\n}',
      "dp.json: invalid JSON at line 3, column 3: Expected ',' or '}' after property value",
    ],
    [
      'a trailing comma',
      '{ "role": "dp", }',
      'dp.json: invalid JSON at line 1, column 17: Expected double-quoted property name',
    ],
    [
      'an empty file',
      '',
      'dp.json: invalid JSON at line 1, column 1: Unexpected end of JSON input',
    ],
  ])('names the line and column of %s', (_what, text, message) => {
    const error = errorOf(() => parseConfigText(text, serverSchema, 'dp.json'));
    expect(error.code).toBe('ERR_CONFIG_SYNTAX');
    expect(error.message).toBe(message);
  });

  it('reads a file that starts with a byte order mark', () => {
    expect(parseConfigText(`\uFEFF${dp()}`, serverSchema).role).toBe('dp');
  });
});

describe('readConfigFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads and checks a file, naming it in errors', async () => {
    const good = join(dir, 'good.json');
    writeFileSync(good, dp('"listen": { "udp": 5353 }'));
    expect((await readConfigFile(good, serverSchema)).listen.udp).toBe(5353);

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, dp('"listen": { "udp": 70000 }'));
    await expect(readConfigFile(bad, serverSchema)).rejects.toThrow(
      `${bad}: listen.udp: expected a port number 0–65535`,
    );
  });

  it('reports a file that cannot be read', async () => {
    const missing = join(dir, 'missing.json');
    const error = await readConfigFile(missing, serverSchema).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('ERR_CONFIG_READ');
    expect((error as ConfigError).message).toMatch(
      new RegExp(`^${missing}: cannot read the config file: ENOENT`),
    );
  });
});

describe('rootHintsSchema', () => {
  const server = '{ "name": "ns1.mimi.arpa", "addresses": ["127.0.0.1"], "port": 5300 }';
  const hints = (servers: string, apex = '"mimi.arpa"'): string =>
    `{ "apex": ${apex}, "servers": [${servers}] }`;

  it.each<[string, string, unknown]>([
    [
      hints(server, '"MIMI.arpa."'),
      'ok',
      {
        apex: 'mimi.arpa',
        servers: [{ name: 'ns1.mimi.arpa', addresses: ['127.0.0.1'], port: 5300 }],
      },
    ],
    [
      hints(
        '{ "name": "NS1.mimi.arpa", "addresses": [], "doh": "https://ns1.mimi.arpa/dns-query" }',
      ),
      'ok',
      {
        apex: 'mimi.arpa',
        servers: [{ name: 'ns1.mimi.arpa', addresses: [], doh: 'https://ns1.mimi.arpa/dns-query' }],
      },
    ],
    [hints(''), 'error', 'servers: must list at least 1'],
    ['{ "servers": [] }', 'error', 'apex: required; servers: must list at least 1'],
    [
      hints('{ "name": "ns1.mimi.arpa", "addresses": ["192.0.2.1", "2001:db8::1"] }'),
      'ok',
      {
        apex: 'mimi.arpa',
        servers: [{ name: 'ns1.mimi.arpa', addresses: ['192.0.2.1', '2001:db8::1'] }],
      },
    ],
    [
      hints('{ "name": "ns1.mimi.arpa", "addresses": [], "port": 53 }'),
      'error',
      'servers[0]: needs addresses or a doh URL: the server cannot be reached otherwise',
    ],
    [
      hints('{ "name": "ns1.mimi.arpa", "addresses": ["localhost"], "port": 53 }'),
      'error',
      'servers[0].addresses[0]: expected an IPv4 or IPv6 address',
    ],
    [
      hints('{ "name": "ns1.mimi.arpa", "addresses": [], "doh": "http://x.example/" }'),
      'error',
      'servers[0].doh: expected an https URL',
    ],
    [
      hints('{ "name": "ns1.mimi.arpa", "addresses": ["::1"], "port": 53, "ttl": 1 }'),
      'error',
      'unknown key "ttl" in servers[0]',
    ],
  ])('%s', (raw, outcome, expected) => {
    if (outcome === 'error') {
      const error = errorOf(() => parseConfigText(raw, rootHintsSchema));
      expect(error.message).toBe(expected);
    } else expect(parseConfigText(raw, rootHintsSchema)).toEqual(expected);
  });
});
