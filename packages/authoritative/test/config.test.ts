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
  DEFAULT_LIMITED_CLIENTS,
  DEFAULT_RRL_BURST_SECONDS,
  DEFAULT_RRL_DENIALS_PER_SECOND,
  DEFAULT_RRL_ERRORS_PER_SECOND,
  DEFAULT_RRL_MAX_ENTRIES,
  DEFAULT_RRL_RESPONSES_PER_SECOND,
  DEFAULT_RRL_SLIP,
  parseConfigText,
} from '@mimi-discovery/common';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CDS_CONFIG,
  DEFAULT_DOH_QUERIES_PER_SECOND,
  DEFAULT_DOH_QUERY_BURST,
  PG_POOL_MAX_SIZE,
  PG_POOL_MIN_SIZE,
  PG_POOL_SIZE,
  PG_STATEMENT_TIMEOUT_MS,
  MAX_RANGE_AUTHKEY_CACHE_ENTRIES,
  MAX_RANGE_AUTHKEY_TIMEOUT_MS,
  RANGE_AUTHKEY_CACHE_ENTRIES,
  RANGE_AUTHKEY_TIMEOUT_MS,
  dpConfigSchema,
  type DpConfig,
} from '../src/index.js';
import { thrownBy } from '../../../test/helpers/rejection.js';

// The config of a DP or the root (`config.ts`): one table per key, as raw config text, with what
// it gives or the exact message.

const errorOf = (fn: () => unknown): ConfigError => thrownBy(fn, ConfigError);

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
/** `dnssec` without the key: the rollover policy's defaults (`rfc5011` by role, later). */
const DEFAULT_DNSSEC = {
  policy: {
    keyLifetimeSeconds: 365 * 86_400,
    propagationDelaySeconds: 300,
    publishSafetySeconds: 3600,
    retireSafetySeconds: 3600,
    registrationDelaySeconds: 86_400,
    addHoldDownSeconds: 30 * 86_400,
    revokeSeconds: 30 * 86_400,
  },
  parent: [],
  checkIntervalSeconds: 60,
  roller: true,
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
  rrl: {
    responsesPerSecond: DEFAULT_RRL_RESPONSES_PER_SECOND,
    denialsPerSecond: DEFAULT_RRL_DENIALS_PER_SECOND,
    errorsPerSecond: DEFAULT_RRL_ERRORS_PER_SECOND,
    burstSeconds: DEFAULT_RRL_BURST_SECONDS,
    slip: DEFAULT_RRL_SLIP,
    maxEntries: DEFAULT_RRL_MAX_ENTRIES,
    exempt: [],
  },
  dohClients: {
    queriesPerSecond: DEFAULT_DOH_QUERIES_PER_SECOND,
    queryBurst: DEFAULT_DOH_QUERY_BURST,
    maxClients: DEFAULT_LIMITED_CLIENTS,
    exempt: [],
  },
};

describe('dpConfigSchema', () => {
  it('fills in every default for a DP', () => {
    const config: DpConfig = parseConfigText(dp(), dpConfigSchema);
    expect(config).toEqual({
      role: 'dp',
      dataDir: '/var/lib/dp',
      store: { kind: 'lmdb' },
      keys: {},
      apex: 'mimi.arpa',
      listen: DEFAULT_LISTEN,
      signing: { validityDays: 14, refreshDays: 7 },
      answerCacheBytes: 64 * 2 ** 20,
      answerCacheMaxAgeSeconds: 3600,
      answerWorkers: 1,
      answerWorkerAckMs: 2000,
      limits: DEFAULT_LIMITS,
      registration: DEFAULT_REGISTRATION,
      log: { level: 'info' },
      authkeyTtl: 300,
      prover: { authkeyValidityDays: 365, renewBeforeDays: 30 },
      cds: DEFAULT_CDS_CONFIG,
      dnssec: DEFAULT_DNSSEC,
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
      'authkeyTtl',
      [
        [dp('"authkeyTtl": 60'), 'authkeyTtl', 60],
        [dp('"authkeyTtl": -1'), 'error', 'authkeyTtl: must be at least 0'],
        [dp('"authkeyTtl": 2147483648'), 'error', 'authkeyTtl: must be at most 2147483647'],
      ],
    ],
    [
      'prover',
      [
        [
          dp('"prover": { "renewBeforeDays": 7 }'),
          'prover',
          { authkeyValidityDays: 365, renewBeforeDays: 7 },
        ],
        [
          dp('"prover": { "authkeyValidityDays": 30 }'),
          'error',
          'prover.renewBeforeDays: must be less than prover.authkeyValidityDays',
        ],
        [
          dp('"prover": { "authkeyValidityDays": 3651 }'),
          'error',
          'prover.authkeyValidityDays: must be at most 3650',
        ],
        [dp('"prover": { "renew": 1 }'), 'error', 'unknown key "renew" in prover'],
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
          dp(
            '"limits": { "rrl": { "responsesPerSecond": 0, "slip": 1, "exempt": ["10.0.0.0/8"] } }',
          ),
          'limits',
          {
            ...DEFAULT_LIMITS,
            rrl: { ...DEFAULT_LIMITS.rrl, responsesPerSecond: 0, slip: 1, exempt: ['10.0.0.0/8'] },
          },
        ],
        [dp('"limits": { "rrl": { "slip": 11 } }'), 'error', 'limits.rrl.slip: must be at most 10'],
        [
          dp('"limits": { "rrl": { "exempt": ["10.0.0.0/33"] } }'),
          'error',
          'limits.rrl.exempt[0]: expected a CIDR range (192.0.2.0/24, 2001:db8::/48) or an IP address',
        ],
        [
          dp('"limits": { "dohClients": { "queriesPerSecond": 5, "exempt": ["2001:db8::/48"] } }'),
          'limits',
          {
            ...DEFAULT_LIMITS,
            dohClients: {
              ...DEFAULT_LIMITS.dohClients,
              queriesPerSecond: 5,
              exempt: ['2001:db8::/48'],
            },
          },
        ],
        [
          dp('"limits": { "dohClients": { "queryBurst": 0 } }'),
          'error',
          'limits.dohClients.queryBurst: must be at least 1',
        ],
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
      'store',
      [
        [dp('"store": { "kind": "lmdb" }'), 'store', { kind: 'lmdb' }],
        [
          dp('"store": { "kind": "postgres", "url": "postgresql://dp@db.example/mimi" }'),
          'store',
          {
            kind: 'postgres',
            url: 'postgresql://dp@db.example/mimi',
            poolSize: PG_POOL_SIZE,
            statementTimeoutMs: PG_STATEMENT_TIMEOUT_MS,
          },
        ],
        [
          dp(
            '"store": { "kind": "postgres", "url": "postgres://db/mimi", "poolSize": 8, "statementTimeoutMs": 5000 }',
          ),
          'store',
          { kind: 'postgres', url: 'postgres://db/mimi', poolSize: 8, statementTimeoutMs: 5000 },
        ],
        [dp('"store": { "kind": "postgres" }'), 'error', 'store.url: required'],
        [
          dp('"store": { "kind": "postgres", "url": "mysql://db/mimi" }'),
          'error',
          'store.url: expected a postgresql:// connection URL',
        ],
        [
          dp('"store": { "kind": "postgres", "url": "postgres://db", "poolSize": 1 }'),
          'error',
          `store.poolSize: must be at least ${PG_POOL_MIN_SIZE}`,
        ],
        [
          dp('"store": { "kind": "postgres", "url": "postgres://db", "poolSize": 65 }'),
          'error',
          `store.poolSize: must be at most ${PG_POOL_MAX_SIZE}`,
        ],
        [
          dp('"store": { "kind": "lmdb", "url": "postgres://db" }'),
          'error',
          'unknown key "url" in store',
        ],
        [dp('"store": { "kind": "sqlite" }'), 'error', 'store.kind: expected "lmdb" or "postgres"'],
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
      'journal',
      [
        [dp(''), 'journal', undefined],
        [dp('"journal": {}'), 'journal', {}],
        [
          dp('"journal": { "maxEntries": 0, "maxOctets": 1048576 }'),
          'journal',
          { maxEntries: 0, maxOctets: 1048576 },
        ],
        [dp('"journal": { "maxEntries": -1 }'), 'error', 'journal.maxEntries: must be at least 0'],
        [dp('"journal": { "entries": 5 }'), 'error', 'unknown key "entries" in journal'],
      ],
    ],
    [
      'cds',
      [
        [dp(''), 'cds', DEFAULT_CDS_CONFIG],
        [
          dp('"cds": { "intervalSeconds": 1, "allowDelete": true, "port": 5353 }'),
          'cds',
          { ...DEFAULT_CDS_CONFIG, intervalSeconds: 1, allowDelete: true, port: 5353 },
        ],
        [dp('"cds": { "intervalSeconds": 0 }'), 'error', 'cds.intervalSeconds: must be at least 1'],
        [
          dp('"cds": { "maxChildrenPerRound": 0 }'),
          'error',
          'cds.maxChildrenPerRound: must be at least 1',
        ],
        [dp('"cds": { "timeoutMs": 0 }'), 'error', 'cds.timeoutMs: must be at least 1'],
        [dp('"cds": { "port": 0 }'), 'error', 'cds.port: expected a port number 1–65535'],
        [
          dp('"cds": { "allowDelete": "yes" }'),
          'error',
          'cds.allowDelete: expected true or false, found a string',
        ],
        [dp('"cds": { "bootstrap": true }'), 'error', 'unknown key "bootstrap" in cds'],
      ],
    ],
    [
      'mspZone',
      [
        [dp(''), 'mspZone', undefined],
        [
          dp(
            '"mspZone": { "zone": "chat.example.email.mimi.arpa", "resolver": "udp://127.0.0.1:5353" }',
          ),
          'mspZone',
          {
            zone: 'chat.example.email.mimi.arpa',
            resolver: 'udp://127.0.0.1:5353',
            authkeyCacheEntries: RANGE_AUTHKEY_CACHE_ENTRIES,
            timeoutMs: RANGE_AUTHKEY_TIMEOUT_MS,
          },
        ],
        [
          dp(
            '"mspZone": { "zone": "chat.example", "resolver": "https://r.example/dns-query", "ca": "/etc/ca.pem", "authkeyCacheEntries": 10, "timeoutMs": 900 }',
          ),
          'mspZone',
          {
            zone: 'chat.example',
            resolver: 'https://r.example/dns-query',
            ca: '/etc/ca.pem',
            authkeyCacheEntries: 10,
            timeoutMs: 900,
          },
        ],
        [
          dp('"mspZone": { "zone": "chat.example", "resolver": "udp://192.0.2.53:53" }'),
          'error',
          'mspZone.resolver: plain DNS to the resolver only over loopback (127.0.0.0/8, ::1), not 192.0.2.53: use DoH for a resolver on another host',
        ],
        [
          dp('"mspZone": { "zone": "chat.example", "resolver": "http://127.0.0.1/dns-query" }'),
          'error',
          'mspZone.resolver: expected https:, udp: or tcp:, not http:',
        ],
        [
          dp(
            '"mspZone": { "zone": "chat.example", "resolver": "tcp://127.0.0.1:53", "ca": "/ca" }',
          ),
          'error',
          'mspZone.ca: only for a DoH resolver (https://…)',
        ],
        [
          dp(
            `"mspZone": { "zone": "chat.example", "resolver": "tcp://127.0.0.1:53", "authkeyCacheEntries": ${MAX_RANGE_AUTHKEY_CACHE_ENTRIES + 1} }`,
          ),
          'error',
          `mspZone.authkeyCacheEntries: must be at most ${MAX_RANGE_AUTHKEY_CACHE_ENTRIES}`,
        ],
        [
          dp(
            `"mspZone": { "zone": "chat.example", "resolver": "tcp://127.0.0.1:53", "timeoutMs": ${MAX_RANGE_AUTHKEY_TIMEOUT_MS + 1} }`,
          ),
          'error',
          `mspZone.timeoutMs: must be at most ${MAX_RANGE_AUTHKEY_TIMEOUT_MS}`,
        ],
        [dp('"mspZone": { "resolver": "tcp://127.0.0.1:53" }'), 'error', 'mspZone.zone: required'],
        [
          dp('"mspZone": { "zone": "chat.example", "resolver": "tcp://127.0.0.1:53", "ttl": 1 }'),
          'error',
          'unknown key "ttl" in mspZone',
        ],
        [
          '{ "role": "root", "dataDir": "/d", "mspZone": { "zone": "chat.example", "resolver": "tcp://127.0.0.1:53" } }',
          'error',
          'mspZone: not allowed when role is "root" (the root has no registration API)',
        ],
      ],
    ],
    [
      'keys',
      [
        [dp(''), 'keys', {}],
        [dp('"keys": { "dir": "/etc/mimi/keys" }'), 'keys', { dir: '/etc/mimi/keys' }],
        [dp('"keys": { "dir": "" }'), 'error', 'keys.dir: must not be empty'],
        [dp('"keys": { "path": "k" }'), 'error', 'unknown key "path" in keys'],
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
