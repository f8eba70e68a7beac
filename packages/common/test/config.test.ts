import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  DEFAULT_DOH_CONNECTIONS_PER_CLIENT,
  DEFAULT_DOH_IDLE_TIMEOUT_MS,
  DEFAULT_DOH_MAX_CONNECTIONS,
  DEFAULT_DOH_REQUEST_TIMEOUT_MS,
  DEFAULT_TCP_CONNECTIONS_PER_CLIENT,
  DEFAULT_TCP_IDLE_TIMEOUT_MS,
  DEFAULT_TCP_MAX_CONNECTIONS,
  DEFAULT_TCP_MESSAGE_TIMEOUT_MS,
  dpConfigSchema,
  parseConfig,
  parseConfigText,
  readConfigFile,
  resolverConfigSchema,
  rootHintsSchema,
  type DpConfig,
  type ResolverFileConfig,
} from '../src/index.js';

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('no error thrown');
}

/** A DP config with the two required keys and `extra` keys after them. */
const dp = (extra = ''): string =>
  `{ "role": "dp", "dataDir": "/var/lib/dp"${extra === '' ? '' : `, ${extra}`} }`;

const DEFAULT_LISTEN = {
  host: '127.0.0.1',
  udp: null,
  tcp: null,
  doh: null,
  api: null,
  admin: null,
};
const DEFAULT_REGISTRATION = {
  codeTtlSeconds: 600,
  maxAttemptsPerCode: 5,
  sendsPerCsiPerHour: 5,
  requestsPerClientPerMinute: 60,
  channels: {},
};
const TLS = '"tls": { "cert": "/etc/dp/cert.pem", "key": "/etc/dp/key.pem" }';
/** The listener limits a config gets without a `limits` key: each listener's named defaults. */
const DEFAULT_LIMITS = {
  tcp: {
    maxConnections: DEFAULT_TCP_MAX_CONNECTIONS,
    connectionsPerClient: DEFAULT_TCP_CONNECTIONS_PER_CLIENT,
    idleTimeoutMs: DEFAULT_TCP_IDLE_TIMEOUT_MS,
    messageTimeoutMs: DEFAULT_TCP_MESSAGE_TIMEOUT_MS,
  },
  doh: {
    maxConnections: DEFAULT_DOH_MAX_CONNECTIONS,
    connectionsPerClient: DEFAULT_DOH_CONNECTIONS_PER_CLIENT,
    requestTimeoutMs: DEFAULT_DOH_REQUEST_TIMEOUT_MS,
    idleTimeoutMs: DEFAULT_DOH_IDLE_TIMEOUT_MS,
  },
  api: {},
};

describe('dpConfigSchema', () => {
  it('fills in every default for a DP', () => {
    const config: DpConfig = parseConfigText(dp(), dpConfigSchema);
    expect(config).toEqual({
      role: 'dp',
      dataDir: '/var/lib/dp',
      apex: 'mimi.arpa',
      listen: DEFAULT_LISTEN,
      signing: { validityDays: 14, refreshDays: 7 },
      answerCacheBytes: 64 * 2 ** 20,
      limits: DEFAULT_LIMITS,
      registration: DEFAULT_REGISTRATION,
      log: { level: 'info' },
    });
    // The inferred type is what servers program against.
    const udp: number | null = config.listen.udp;
    expect(udp).toBeNull();
  });

  it('fills in no registration for the root', () => {
    const config = parseConfigText('{ "role": "root", "dataDir": "/r" }', dpConfigSchema);
    expect(config.role).toBe('root');
    expect(config.registration).toBeUndefined();
  });

  // One table per key, as raw config text: what it gives, or the exact message.
  describe.each<[string, Array<[string, string, unknown]>]>([
    [
      'role',
      [
        ['{ "role": "root", "dataDir": "/r" }', 'role', 'root'],
        ['{ "dataDir": "/r" }', 'error', 'role: required'],
        ['{ "role": "DP", "dataDir": "/r" }', 'error', 'role: expected "dp" or "root"'],
      ],
    ],
    [
      'dataDir',
      [
        ['{ "role": "dp", "dataDir": "rel/dir" }', 'dataDir', 'rel/dir'],
        ['{ "role": "dp" }', 'error', 'dataDir: required'],
        ['{ "role": "dp", "dataDir": "" }', 'error', 'dataDir: must not be empty'],
        ['{ "role": "dp", "dataDir": 5 }', 'error', 'dataDir: expected a string, found 5'],
      ],
    ],
    [
      'apex',
      [
        [dp('"apex": "Example.ORG."'), 'apex', 'example.org'],
        [dp('"apex": "a..b"'), 'error', 'apex: not a domain name (empty label in a..b)'],
        [dp('"apex": "."'), 'error', 'apex: not a domain name (the root is not allowed)'],
      ],
    ],
    [
      'listen',
      [
        [dp('"listen": {}'), 'listen', DEFAULT_LISTEN],
        [
          dp('"listen": { "host": "::1", "udp": 0, "tcp": 53, "admin": 65535 }'),
          'listen',
          { ...DEFAULT_LISTEN, host: '::1', udp: 0, tcp: 53, admin: 65535 },
        ],
        [
          dp('"listen": { "host": "dp.example" }'),
          'listen',
          { ...DEFAULT_LISTEN, host: 'dp.example' },
        ],
        [dp('"listen": { "udp": null }'), 'listen', DEFAULT_LISTEN],
        [dp('"listen": { "udp": 65536 }'), 'error', 'listen.udp: expected a port number 0–65535'],
        [dp('"listen": { "tcp": -1 }'), 'error', 'listen.tcp: expected a port number 0–65535'],
        [
          dp('"listen": { "admin": "9100" }'),
          'error',
          'listen.admin: expected a port number 0–65535',
        ],
        [
          dp('"listen": { "admin": 91.5 }'),
          'error',
          'listen.admin: expected a port number 0–65535',
        ],
        [
          dp('"listen": { "host": "not a host" }'),
          'error',
          'listen.host: expected an IP address or a host name',
        ],
        [dp('"listen": { "udpp": 53 }'), 'error', 'unknown key "udpp" in listen'],
        [dp('"listen": [53]'), 'error', 'listen: expected an object, found a list'],
      ],
    ],
    [
      'tls',
      [
        [
          dp(`"listen": { "doh": 443, "api": 8443 }, ${TLS}`),
          'tls',
          { cert: '/etc/dp/cert.pem', key: '/etc/dp/key.pem' },
        ],
        [dp(TLS), 'tls', { cert: '/etc/dp/cert.pem', key: '/etc/dp/key.pem' }],
        [
          dp('"listen": { "doh": 443 }'),
          'error',
          'tls: required when listen.doh or listen.api is set',
        ],
        [
          dp('"listen": { "api": 0 }'),
          'error',
          'tls: required when listen.doh or listen.api is set',
        ],
        [dp('"tls": { "cert": "/c" }'), 'error', 'tls.key: required'],
      ],
    ],
    [
      'signing',
      [
        [dp('"signing": { "validityDays": 30 }'), 'signing', { validityDays: 30, refreshDays: 7 }],
        [
          dp('"signing": { "refreshDays": 14 }'),
          'error',
          'signing.refreshDays: must be less than signing.validityDays',
        ],
        [
          dp('"signing": { "validityDays": 0 }'),
          'error',
          'signing.validityDays: must be at least 1',
        ],
        [
          dp('"signing": { "validityDays": 1.5 }'),
          'error',
          'signing.validityDays: expected a whole number, found a fraction',
        ],
      ],
    ],
    [
      'limits',
      [
        [dp('"limits": {}'), 'limits', DEFAULT_LIMITS],
        [
          dp('"limits": { "tcp": { "connectionsPerClient": 4, "messageTimeoutMs": 500 } }'),
          'limits',
          {
            ...DEFAULT_LIMITS,
            tcp: { ...DEFAULT_LIMITS.tcp, connectionsPerClient: 4, messageTimeoutMs: 500 },
          },
        ],
        // A small cap alone is valid: the per-client default shrinks to it.
        [
          dp('"limits": { "doh": { "maxConnections": 16 } }'),
          'limits',
          {
            ...DEFAULT_LIMITS,
            doh: { ...DEFAULT_LIMITS.doh, maxConnections: 16, connectionsPerClient: 16 },
          },
        ],
        [
          dp('"limits": { "api": { "maxConnections": 64, "headersTimeoutMs": 5000 } }'),
          'limits',
          { ...DEFAULT_LIMITS, api: { maxConnections: 64, headersTimeoutMs: 5000 } },
        ],
        [
          dp('"limits": { "tcp": { "maxConnections": 8, "connectionsPerClient": 9 } }'),
          'error',
          'limits.tcp.connectionsPerClient: must not exceed maxConnections',
        ],
        [
          dp('"limits": { "api": { "maxConnections": 8, "connectionsPerClient": 16 } }'),
          'error',
          'limits.api.connectionsPerClient: must not exceed maxConnections',
        ],
        [
          dp('"limits": { "doh": { "connectionsPerClient": 0 } }'),
          'error',
          'limits.doh.connectionsPerClient: must be at least 1',
        ],
        [
          dp('"limits": { "tcp": { "idleTimeoutMs": 2147483648 } }'),
          'error',
          'limits.tcp.idleTimeoutMs: must be at most 2147483647',
        ],
        [
          dp('"limits": { "api": { "requestTimeoutMs": 1000 } }'),
          'error',
          'unknown key "requestTimeoutMs" in limits.api',
        ],
        [dp('"limits": { "udp": {} }'), 'error', 'unknown key "udp" in limits'],
        [
          '{ "role": "root", "dataDir": "/r", "limits": { "api": { "maxConnections": 8 } } }',
          'error',
          'limits.api: not allowed when role is "root" (the root has no registration API)',
        ],
      ],
    ],
    [
      'registration',
      [
        [
          dp('"registration": { "codeTtlSeconds": 300 }'),
          'registration',
          { ...DEFAULT_REGISTRATION, codeTtlSeconds: 300 },
        ],
        [
          dp(
            '"registration": { "channels": { "outbox": { "path": "/tmp/outbox" }, ' +
              '"smtp": { "host": "mail.example", "port": 587, "from": "dp@example.org", "user": "dp", "password": "s" }, ' +
              '"webhook": { "url": "https://sms.example/send", "headers": { "Authorization": "Bearer x" } } } }',
          ),
          'registration',
          {
            ...DEFAULT_REGISTRATION,
            channels: {
              outbox: { path: '/tmp/outbox' },
              smtp: {
                host: 'mail.example',
                port: 587,
                from: 'dp@example.org',
                user: 'dp',
                password: 's',
              },
              webhook: {
                url: 'https://sms.example/send',
                headers: { Authorization: 'Bearer x' },
              },
            },
          },
        ],
        [
          '{ "role": "root", "dataDir": "/r", "listen": { "api": 8445 }, "tls": { "cert": "c", "key": "k" } }',
          'error',
          'listen.api: not allowed when role is "root" (the root has no registration API)',
        ],
        [
          '{ "role": "root", "dataDir": "/r", "registration": {} }',
          'error',
          'registration: not allowed when role is "root" (the root registers no CSIs)',
        ],
        [
          dp('"registration": { "maxAttemptsPerCode": 0 }'),
          'error',
          'registration.maxAttemptsPerCode: must be at least 1',
        ],
        [
          dp('"registration": { "channels": { "smtp": { "host": "h", "port": 0, "from": "f" } } }'),
          'error',
          'registration.channels.smtp.port: expected a port number 1–65535',
        ],
        [
          dp(
            '"registration": { "channels": { "smtp": { "host": "h", "port": 25, "from": "f", "user": "u" } } }',
          ),
          'error',
          'registration.channels.smtp.password: user and password go together',
        ],
        [
          dp('"registration": { "channels": { "webhook": { "url": "ftp://sms.example/" } } }'),
          'error',
          'registration.channels.webhook.url: expected an http or https URL',
        ],
        [
          dp(
            '"registration": { "channels": { "webhook": { "url": "https://s.example/", "headers": { "X-Key": 1 } } } }',
          ),
          'error',
          'registration.channels.webhook.headers["X-Key"]: expected a string, found 1',
        ],
        [
          dp('"registration": { "channels": { "sms": {} } }'),
          'error',
          'unknown key "sms" in registration.channels',
        ],
      ],
    ],
    [
      'log',
      [
        [dp('"log": { "level": "debug" }'), 'log', { level: 'debug' }],
        [
          dp('"log": { "level": "loud" }'),
          'error',
          'log.level: expected one of "debug", "info", "warn", "error", "silent"',
        ],
      ],
    ],
    [
      'the top level',
      [
        [dp('"listne": {}'), 'error', 'unknown key "listne" in the top level'],
        [dp('"a": 1, "b": 2'), 'error', 'unknown keys "a", "b" in the top level'],
        ['[]', 'error', 'the top level: expected an object, found a list'],
        [
          '{ "role": "dp", "dataDir": 1, "listen": { "udp": 1e6 }, "x": 0 }',
          'error',
          'dataDir: expected a string, found 1; listen.udp: expected a port number 0–65535; unknown key "x" in the top level',
        ],
      ],
    ],
  ])('%s', (_key, table) => {
    it.each(table)('%s', (raw, key, expected) => {
      if (key === 'error') {
        const error = errorOf(() => parseConfigText(raw, dpConfigSchema));
        expect(error.code).toBe('ERR_CONFIG_INVALID');
        expect(error.message).toBe(expected);
      } else {
        expect(parseConfigText(raw, dpConfigSchema)[key as keyof DpConfig]).toEqual(expected);
      }
    });
  });
});

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
    const error = errorOf(() => parseConfigText(text, dpConfigSchema, 'dp.json'));
    expect(error.code).toBe('ERR_CONFIG_SYNTAX');
    expect(error.message).toBe(message);
  });

  it('reads a file that starts with a byte order mark', () => {
    expect(parseConfigText(`\uFEFF${dp()}`, dpConfigSchema).role).toBe('dp');
  });
});

describe('readConfigFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads and checks a file, naming it in errors', async () => {
    const good = join(dir, 'good.json');
    writeFileSync(good, dp('"listen": { "udp": 5353 }'));
    expect((await readConfigFile(good, dpConfigSchema)).listen.udp).toBe(5353);

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, dp('"listen": { "udp": 70000 }'));
    await expect(readConfigFile(bad, dpConfigSchema)).rejects.toThrow(
      `${bad}: listen.udp: expected a port number 0–65535`,
    );
  });

  it('reports a file that cannot be read', async () => {
    const missing = join(dir, 'missing.json');
    const error = await readConfigFile(missing, dpConfigSchema).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('ERR_CONFIG_READ');
    expect((error as ConfigError).message).toMatch(
      new RegExp(`^${missing}: cannot read the config file: ENOENT`),
    );
  });
});

/** A resolver config with the required keys (a UDP listener unless `extra` has `listen`) and `extra`. */
const resolver = (extra = ''): string =>
  `{ "rootHints": "hints.json", "trustAnchor": "root.key"${
    extra.includes('"listen"') ? '' : ', "listen": { "udp": 5353 }'
  }${extra === '' ? '' : `, ${extra}`} }`;
const RESOLVER_LISTEN = { ...DEFAULT_LISTEN, udp: 5353 };

describe('resolverConfigSchema', () => {
  it('fills in every default', () => {
    const config: ResolverFileConfig = parseConfigText(resolver(), resolverConfigSchema);
    expect(config).toEqual({
      apex: 'mimi.arpa',
      rootHints: 'hints.json',
      trustAnchor: 'root.key',
      transport: 'doh',
      cacheBytes: 64 * 1024 * 1024,
      answerCacheBytes: 64 * 1024 * 1024,
      batchConcurrency: 32,
      maxBatch: 1000,
      listen: RESOLVER_LISTEN,
      limits: DEFAULT_LIMITS,
      log: { level: 'info' },
    });
  });

  describe.each<[string, Array<[string, string, unknown]>]>([
    [
      'rootHints and trustAnchor',
      [
        ['{ "trustAnchor": "a", "listen": { "tcp": 53 } }', 'error', 'rootHints: required'],
        ['{ "rootHints": "h", "listen": { "tcp": 53 } }', 'error', 'trustAnchor: required'],
        [
          '{ "rootHints": "", "trustAnchor": "a", "listen": { "tcp": 53 } }',
          'error',
          'rootHints: must not be empty',
        ],
        [
          '{ "rootHints": "h", "trustAnchor": 1, "listen": { "tcp": 53 } }',
          'error',
          'trustAnchor: expected a string, found 1',
        ],
      ],
    ],
    [
      'apex',
      [
        [resolver('"apex": "Example.ORG."'), 'apex', 'example.org'],
        [resolver('"apex": "."'), 'error', 'apex: not a domain name (the root is not allowed)'],
      ],
    ],
    [
      'ca',
      [
        [resolver('"ca": "ca.pem"'), 'ca', 'ca.pem'],
        [resolver('"ca": ["a.pem"]'), 'error', 'ca: expected a string, found a list'],
      ],
    ],
    [
      'transport and dnsPort',
      [
        [resolver('"transport": "dns"'), 'transport', 'dns'],
        [resolver('"transport": "dns", "dnsPort": 5300'), 'dnsPort', 5300],
        [resolver('"transport": "udp"'), 'error', 'transport: expected "doh" or "dns"'],
        [resolver('"dnsPort": 5300'), 'error', 'dnsPort: only allowed when transport is "dns"'],
        [
          resolver('"transport": "dns", "dnsPort": 0'),
          'error',
          'dnsPort: expected a port number 1–65535',
        ],
      ],
    ],
    [
      'cacheBytes, batchConcurrency and maxBatch',
      [
        [resolver('"cacheBytes": 1048576'), 'cacheBytes', 1_048_576],
        [resolver('"cacheBytes": 0'), 'error', 'cacheBytes: must be at least 1'],
        [resolver('"batchConcurrency": 8'), 'batchConcurrency', 8],
        [resolver('"batchConcurrency": 2000'), 'error', 'batchConcurrency: must be at most 1024'],
        [resolver('"maxBatch": 50'), 'maxBatch', 50],
        [resolver('"maxBatch": 0'), 'error', 'maxBatch: must be at least 1'],
        [
          resolver('"maxBatch": 2.5'),
          'error',
          'maxBatch: expected a whole number, found a fraction',
        ],
      ],
    ],
    [
      'listen and tls',
      [
        [
          resolver('"listen": { "udp": 0, "tcp": 5353, "admin": 9100 }'),
          'listen',
          { ...DEFAULT_LISTEN, udp: 0, tcp: 5353, admin: 9100 },
        ],
        [
          resolver('"listen": { "admin": 9100 }'),
          'error',
          'listen: set at least one of udp, tcp, doh and api: the resolver would serve no one',
        ],
        [
          '{ "rootHints": "h", "trustAnchor": "a" }',
          'error',
          'listen: set at least one of udp, tcp, doh and api: the resolver would serve no one',
        ],
        [
          resolver(`"listen": { "doh": 443, "api": 8443 }, ${TLS}`),
          'tls',
          { cert: '/etc/dp/cert.pem', key: '/etc/dp/key.pem' },
        ],
        [
          resolver('"listen": { "api": 8443 }'),
          'error',
          'tls: required when listen.doh or listen.api is set',
        ],
        [
          resolver('"listen": { "doh": 0 }'),
          'error',
          'tls: required when listen.doh or listen.api is set',
        ],
        [resolver('"listen": { "udp": 53, "dot": 853 }'), 'error', 'unknown key "dot" in listen'],
        [
          resolver('"listen": { "udp": 70000 }'),
          'error',
          'listen.udp: expected a port number 0–65535',
        ],
      ],
    ],
    [
      'limits',
      [
        [resolver('"limits": { "tcp": {} }'), 'limits', DEFAULT_LIMITS],
        [
          resolver('"limits": { "api": { "connectionsPerClient": 8, "idleTimeoutMs": 5000 } }'),
          'limits',
          { ...DEFAULT_LIMITS, api: { connectionsPerClient: 8, idleTimeoutMs: 5000 } },
        ],
        [
          resolver('"limits": { "api": { "headersTimeoutMs": 5000 } }'),
          'error',
          'unknown key "headersTimeoutMs" in limits.api',
        ],
        [
          resolver('"limits": { "doh": { "maxConnections": 4, "connectionsPerClient": 5 } }'),
          'error',
          'limits.doh.connectionsPerClient: must not exceed maxConnections',
        ],
      ],
    ],
    [
      'log',
      [
        [resolver('"log": { "level": "warn" }'), 'log', { level: 'warn' }],
        [resolver('"log": { "lvl": "warn" }'), 'error', 'unknown key "lvl" in log'],
      ],
    ],
    [
      'the top level',
      [
        [resolver('"role": "resolver"'), 'error', 'unknown key "role" in the top level'],
        [
          '{ "rootHints": "h", "trustAnchor": "a", "listen": { "udp": 53 }, "maxBatch": -1, "cache": 1 }',
          'error',
          'maxBatch: must be at least 1; unknown key "cache" in the top level',
        ],
      ],
    ],
  ])('%s', (_key, table) => {
    it.each(table)('%s', (raw, key, expected) => {
      if (key === 'error') {
        const error = errorOf(() => parseConfigText(raw, resolverConfigSchema));
        expect(error.code).toBe('ERR_CONFIG_INVALID');
        expect(error.message).toBe(expected);
      } else {
        const config = parseConfigText(raw, resolverConfigSchema);
        expect(config[key as keyof ResolverFileConfig]).toEqual(expected);
      }
    });
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
