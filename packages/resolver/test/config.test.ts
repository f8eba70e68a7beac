import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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
  DEFAULT_SEEN_SECONDS,
  createTrustAnchor,
  createZoneKey,
  formatTrustAnchor,
  parseConfigText,
  MAX_VERIFY_THREADS,
} from '@mimi-discovery/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AUTO_TRUST_ADD_HOLD_DOWN_SECONDS,
  AUTO_TRUST_MAX_PROBE_SECONDS,
  AUTO_TRUST_REMOVE_HOLD_DOWN_SECONDS,
  DEFAULT_API_REQUEST_BURST,
  DEFAULT_API_REQUESTS_PER_SECOND,
  DEFAULT_MAX_SEEN,
  DEFAULT_MAX_SEEN_PER_CLIENT,
  DEFAULT_NEW_NAME_BURST,
  DEFAULT_NEW_NAMES_PER_DAY,
  DEFAULT_QUERIES_PER_SECOND,
  DEFAULT_QUERY_BURST,
  DEFAULT_STARTUP_CHECK_ATTEMPTS,
  DEFAULT_STARTUP_CHECK_TIMEOUT_MS,
  MAX_STARTUP_CHECK_ATTEMPTS,
  createResolver,
  loadResolverConfig,
  readResolverFiles,
  resolverConfigSchema,
  type ResolverFileConfig,
} from '../src/index.js';
import { thrownBy } from '../../../test/helpers/rejection.js';

// The resolver's config (`config.ts`): the schema, one table per key as raw config text with
// what it gives or the exact message; then the loader, over files on disk.

const errorOf = (fn: () => unknown): ConfigError => thrownBy(fn, ConfigError);

const DEFAULT_LISTEN = {
  host: '127.0.0.1',
  udp: null,
  tcp: null,
  doh: null,
  api: null,
  admin: null,
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
  clients: {
    newNameBurst: DEFAULT_NEW_NAME_BURST,
    newNamesPerDay: DEFAULT_NEW_NAMES_PER_DAY,
    seenSeconds: DEFAULT_SEEN_SECONDS,
    maxSeenPerClient: DEFAULT_MAX_SEEN_PER_CLIENT,
    maxSeen: DEFAULT_MAX_SEEN,
    queriesPerSecond: DEFAULT_QUERIES_PER_SECOND,
    queryBurst: DEFAULT_QUERY_BURST,
    requestsPerSecond: DEFAULT_API_REQUESTS_PER_SECOND,
    requestBurst: DEFAULT_API_REQUEST_BURST,
    maxClients: DEFAULT_LIMITED_CLIENTS,
    exempt: [],
  },
};

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
      autoTrustAnchor: {
        enabled: true,
        addHoldDownSeconds: AUTO_TRUST_ADD_HOLD_DOWN_SECONDS,
        removeHoldDownSeconds: AUTO_TRUST_REMOVE_HOLD_DOWN_SECONDS,
      },
      apex: 'mimi.arpa',
      rootHints: 'hints.json',
      trustAnchor: 'root.key',
      transport: 'doh',
      cacheBytes: 64 * 1024 * 1024,
      answerCacheBytes: 64 * 1024 * 1024,
      batchConcurrency: 32,
      verifyThreads: 'auto',
      maxBatch: 1000,
      rootCopy: { enabled: true },
      listen: RESOLVER_LISTEN,
      limits: DEFAULT_LIMITS,
      log: { level: 'info' },
      startupCheck: {
        enabled: true,
        attempts: DEFAULT_STARTUP_CHECK_ATTEMPTS,
        timeoutMs: DEFAULT_STARTUP_CHECK_TIMEOUT_MS,
      },
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
      'msp',
      [
        [resolver('"msp": "chat.example"'), 'msp', 'chat.example'],
        [resolver(''), 'msp', undefined],
        [resolver('"msp": "Chat.Example."'), 'msp', 'chat.example'],
        [
          resolver('"msp": "chat..example"'),
          'error',
          'msp: not a domain name (empty label in chat..example)',
        ],
        [resolver('"msp": 7'), 'error', 'msp: expected a string, found 7'],
      ],
    ],
    [
      'cacheBytes, batchConcurrency, verifyThreads and maxBatch',
      [
        [resolver('"cacheBytes": 1048576'), 'cacheBytes', 1_048_576],
        [resolver('"cacheBytes": 0'), 'error', 'cacheBytes: must be at least 1'],
        [resolver('"batchConcurrency": 8'), 'batchConcurrency', 8],
        [resolver('"batchConcurrency": 2000'), 'error', 'batchConcurrency: must be at most 1024'],
        [resolver('"verifyThreads": 2'), 'verifyThreads', 2],
        [resolver('"verifyThreads": 0'), 'verifyThreads', 0],
        [resolver('"verifyThreads": "auto"'), 'verifyThreads', 'auto'],
        [resolver('"verifyThreads": -1'), 'error', 'verifyThreads: must be at least 0'],
        [
          resolver(`"verifyThreads": ${MAX_VERIFY_THREADS + 1}`),
          'error',
          `verifyThreads: must be at most ${MAX_VERIFY_THREADS}`,
        ],
        ...['1.5', '"all"'].map((value): [string, string, unknown] => [
          resolver(`"verifyThreads": ${value}`),
          'error',
          `verifyThreads: must be "auto" or a whole number of threads from 0 (the event loop verifies) to ${MAX_VERIFY_THREADS}`,
        ]),
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
      'rootCopy',
      [
        [resolver('"rootCopy": false'), 'rootCopy', false],
        [resolver('"rootCopy": { "enabled": false }'), 'rootCopy', { enabled: false }],
        [
          resolver('"rootCopy": { "refreshSeconds": 600, "maxRecords": 5000 }'),
          'rootCopy',
          { enabled: true, refreshSeconds: 600, maxRecords: 5000 },
        ],
        [
          resolver('"rootCopy": { "maxOctets": 1048576, "transferTimeoutMs": 5000 }'),
          'rootCopy',
          { enabled: true, maxOctets: 1_048_576, transferTimeoutMs: 5000 },
        ],
        [
          resolver('"rootCopy": true'),
          'error',
          'rootCopy: expected false or an object of enabled, refreshSeconds, maxRecords, maxOctets, transferTimeoutMs',
        ],
        [
          resolver('"rootCopy": { "refreshSeconds": 0 }'),
          'error',
          'rootCopy.refreshSeconds: must be at least 1',
        ],
        [resolver('"rootCopy": { "axfr": true }'), 'error', 'unknown key "axfr" in rootCopy'],
      ],
    ],
    [
      'upstream',
      [
        [
          resolver('"upstream": { "timeoutMs": 1000, "rttBandMs": 0 }'),
          'upstream',
          { timeoutMs: 1000, rttBandMs: 0 },
        ],
        [
          resolver('"upstream": { "maxBackoffMs": 60000, "hostTtlSeconds": 60, "maxHosts": 100 }'),
          'upstream',
          { maxBackoffMs: 60_000, hostTtlSeconds: 60, maxHosts: 100 },
        ],
        [
          resolver('"upstream": { "timeoutMs": 0 }'),
          'error',
          'upstream.timeoutMs: must be at least 1',
        ],
        [
          resolver('"upstream": { "rttBandMs": -1 }'),
          'error',
          'upstream.rttBandMs: must be at least 0',
        ],
        [
          resolver('"upstream": { "hostTtlSeconds": 60 }'),
          'error',
          'upstream.hostTtlSeconds: must be at least maxBackoffMs / 1000 (120): a server held back would be forgotten first',
        ],
        [
          resolver('"upstream": { "maxBackoffMs": 900001 }'),
          'error',
          'upstream.maxBackoffMs: must be at most hostTtlSeconds × 1000 (900000): a server held back would be forgotten first',
        ],
        [resolver('"upstream": { "probe": true }'), 'error', 'unknown key "probe" in upstream'],
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
        [
          resolver(
            '"limits": { "clients": { "newNameBurst": 3000, "maxSeenPerClient": 6000, "exempt": ["192.0.2.0/24", "2001:db8::1"] } }',
          ),
          'limits',
          {
            ...DEFAULT_LIMITS,
            clients: {
              ...DEFAULT_LIMITS.clients,
              newNameBurst: 3000,
              maxSeenPerClient: 6000,
              exempt: ['192.0.2.0/24', '2001:db8::1'],
            },
          },
        ],
        [
          resolver('"limits": { "clients": { "newNameBurst": 5000 } }'),
          'error',
          'limits.clients.maxSeenPerClient: must be at least newNameBurst',
        ],
        [
          resolver('"limits": { "clients": { "maxSeen": 100 } }'),
          'error',
          'limits.clients.maxSeen: must be at least maxSeenPerClient',
        ],
        [
          resolver('"maxBatch": 2500'),
          'error',
          'limits.clients.newNameBurst: must be at least maxBatch (a full batch of new CSIs must fit the budget)',
        ],
        [
          resolver('"limits": { "clients": { "exempt": ["localhost"] } }'),
          'error',
          'limits.clients.exempt[0]: expected a CIDR range (192.0.2.0/24, 2001:db8::/48) or an IP address',
        ],
        [
          resolver('"limits": { "clients": { "queriesPerSecond": 0 } }'),
          'error',
          'limits.clients.queriesPerSecond: must be at least 1',
        ],
      ],
    ],
    [
      'gateway',
      [
        [
          resolver(
            `"listen": { "api": 443 }, ${TLS}, "gateway": { "keyDir": "keys", "dataDir": "data", "issuers": [{ "name": "issuer.example:443", "keyName": "Issuer.Chat.Example.email.mimi.arpa." }] }`,
          ),
          'gateway',
          {
            enabled: true,
            keyDir: 'keys',
            dataDir: 'data',
            csisPerToken: 100,
            requireTokens: true,
            keyRotationSeconds: 604_800,
            keyOverlapSeconds: 86_400,
            issuers: [
              { name: 'issuer.example:443', keyName: 'issuer.chat.example.email.mimi.arpa' },
            ],
          },
        ],
        [
          resolver(
            `"listen": { "api": 443 }, ${TLS}, "gateway": { "keyDir": "k", "dataDir": "d", "requireTokens": false, "csisPerToken": 10, "originName": "resolver.example", "keyRotationSeconds": 3600, "keyOverlapSeconds": 0 }`,
          ),
          'gateway',
          {
            enabled: true,
            keyDir: 'k',
            dataDir: 'd',
            originName: 'resolver.example',
            csisPerToken: 10,
            requireTokens: false,
            keyRotationSeconds: 3600,
            keyOverlapSeconds: 0,
            issuers: [],
          },
        ],
        [
          resolver('"gateway": { "keyDir": "k", "dataDir": "d", "requireTokens": false }'),
          'error',
          'gateway: the gateway is served on the JSON API: set listen.api',
        ],
        [
          resolver(
            `"listen": { "api": 443 }, ${TLS}, "gateway": { "keyDir": "k", "dataDir": "d" }`,
          ),
          'error',
          'gateway.issuers: list at least one issuer, or set requireTokens to false',
        ],
        [
          resolver(
            `"listen": { "api": 443 }, ${TLS}, "gateway": { "keyDir": "var/gw", "dataDir": "var/gw/data", "requireTokens": false }`,
          ),
          'error',
          'gateway.keyDir: must be apart from dataDir (private keys are never kept with the data)',
        ],
        [
          resolver(
            `"listen": { "api": 443 }, ${TLS}, "maxBatch": 50, "gateway": { "keyDir": "k", "dataDir": "d", "requireTokens": false }`,
          ),
          'error',
          'gateway.csisPerToken: must be at most maxBatch',
        ],
        [
          resolver(
            `"listen": { "api": 443 }, ${TLS}, "gateway": { "keyDir": "k", "dataDir": "d", "issuers": [{ "name": "i:1" }] }`,
          ),
          'error',
          'gateway.issuers[0].keyName: give exactly one of keyName and keysFile',
        ],
        [
          resolver(
            `"listen": { "api": 443 }, ${TLS}, "gateway": { "keyDir": "k", "dataDir": "d", "requireTokens": false, "keyOverlapSeconds": -1 }`,
          ),
          'error',
          'gateway.keyOverlapSeconds: must be at least 0',
        ],
        [
          resolver(
            `"listen": { "api": 443 }, ${TLS}, "gateway": { "keyDir": "k", "dataDir": "d", "requireTokens": false, "keys": [] }`,
          ),
          'error',
          'unknown key "keys" in gateway',
        ],
      ],
    ],
    [
      'startupCheck',
      [
        [
          resolver('"startupCheck": { "enabled": false }'),
          'startupCheck',
          {
            enabled: false,
            attempts: DEFAULT_STARTUP_CHECK_ATTEMPTS,
            timeoutMs: DEFAULT_STARTUP_CHECK_TIMEOUT_MS,
          },
        ],
        [
          resolver(
            `"startupCheck": { "attempts": ${MAX_STARTUP_CHECK_ATTEMPTS}, "timeoutMs": 500 }`,
          ),
          'startupCheck',
          { enabled: true, attempts: MAX_STARTUP_CHECK_ATTEMPTS, timeoutMs: 500 },
        ],
        [
          resolver(`"startupCheck": { "attempts": ${MAX_STARTUP_CHECK_ATTEMPTS + 1} }`),
          'error',
          `startupCheck.attempts: must be at most ${MAX_STARTUP_CHECK_ATTEMPTS}`,
        ],
        [
          resolver('"startupCheck": { "attempts": 0 }'),
          'error',
          'startupCheck.attempts: must be at least 1',
        ],
        [
          resolver('"startupCheck": { "retries": 2 }'),
          'error',
          'unknown key "retries" in startupCheck',
        ],
        [
          resolver('"upstream": { "acceptAddressCertificates": false }'),
          'upstream',
          { acceptAddressCertificates: false },
        ],
        [
          resolver('"upstream": { "acceptAddressCertificates": "no" }'),
          'error',
          'upstream.acceptAddressCertificates: expected true or false, found a string',
        ],
      ],
    ],
    [
      'autoTrustAnchor',
      [
        [
          resolver('"autoTrustAnchor": { "addHoldDownSeconds": 60, "maxProbeSeconds": 5 }'),
          'autoTrustAnchor',
          {
            enabled: true,
            addHoldDownSeconds: 60,
            removeHoldDownSeconds: AUTO_TRUST_REMOVE_HOLD_DOWN_SECONDS,
            maxProbeSeconds: 5,
          },
        ],
        [
          resolver('"autoTrustAnchor": { "enabled": false }'),
          'autoTrustAnchor',
          {
            enabled: false,
            addHoldDownSeconds: AUTO_TRUST_ADD_HOLD_DOWN_SECONDS,
            removeHoldDownSeconds: AUTO_TRUST_REMOVE_HOLD_DOWN_SECONDS,
          },
        ],
        [
          resolver('"autoTrustAnchor": { "addHoldDownSeconds": 0 }'),
          'error',
          'autoTrustAnchor.addHoldDownSeconds: must be at least 1',
        ],
        [
          resolver('"autoTrustAnchor": { "maxProbeSeconds": 99999999 }'),
          'error',
          `autoTrustAnchor.maxProbeSeconds: must be at most ${AUTO_TRUST_MAX_PROBE_SECONDS}`,
        ],
        [
          resolver('"autoTrustAnchor": { "file": "x" }'),
          'error',
          'unknown key "file" in autoTrustAnchor',
        ],
      ],
    ],
    [
      'authkeyRefetch',
      [
        [
          resolver('"authkeyRefetch": { "minIntervalSeconds": 30, "perMinute": 10 }'),
          'authkeyRefetch',
          { minIntervalSeconds: 30, perMinute: 10 },
        ],
        [
          resolver('"authkeyRefetch": { "perMinute": 0 }'),
          'error',
          'authkeyRefetch.perMinute: must be at least 1',
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

describe('loadResolverConfig', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'resolver-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const anchor = createTrustAnchor('mimi.arpa', [
    createZoneKey('mimi.arpa', { seed: new Uint8Array(32).fill(9) }).dnskey,
  ]);
  const hints = {
    apex: 'mimi.arpa',
    servers: [
      {
        name: 'ns1.mimi.arpa',
        addresses: ['127.0.0.1'],
        port: 5300,
        doh: 'https://127.0.0.1:8443/dns-query',
      },
    ],
  };

  /** Writes the files of a resolver into a fresh directory; returns the config path. */
  function files(
    name: string,
    config: Record<string, unknown>,
    overrides: Record<string, string> = {},
  ): string {
    const base = join(dir, name);
    const all: Record<string, string> = {
      'root-hints.json': JSON.stringify(hints),
      'root.key': formatTrustAnchor(anchor),
      'ca.pem': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
      'cert.pem': 'CERT',
      'key.pem': 'KEY',
      ...overrides,
    };
    rmSync(base, { recursive: true, force: true });
    mkdirSync(base, { recursive: true });
    for (const [file, text] of Object.entries(all)) writeFileSync(join(base, file), text);
    const path = join(base, 'resolver.json');
    writeFileSync(
      path,
      JSON.stringify({
        rootHints: 'root-hints.json',
        trustAnchor: 'root.key',
        listen: { udp: 0 },
        ...config,
      }),
    );
    return path;
  }

  it('hands the resolver its MSP identity, in canonical form, and none when it has none', async () => {
    const withMsp = await loadResolverConfig(files('msp', { msp: 'Chat.Example.' }));
    expect(withMsp.msp).toBe('chat.example');
    const without = await loadResolverConfig(files('no-msp', {}));
    expect('msp' in without).toBe(false);
  });

  it('reads the config and the files it names, relative to its directory', async () => {
    const path = files('good', {
      ca: 'ca.pem',
      listen: { udp: 0, api: 0 },
      limits: { tcp: { connectionsPerClient: 4 }, api: { idleTimeoutMs: 5000 } },
      tls: { cert: 'cert.pem', key: 'key.pem' },
      maxBatch: 50,
    });
    const config = await loadResolverConfig(path);
    expect(config).toEqual({
      // The anchor file keeps the RFC 5011 state.
      autoTrustAnchor: {
        enabled: true,
        addHoldDownSeconds: AUTO_TRUST_ADD_HOLD_DOWN_SECONDS,
        removeHoldDownSeconds: AUTO_TRUST_REMOVE_HOLD_DOWN_SECONDS,
        file: join(dirname(path), 'root.key'),
      },
      source: path,
      apex: 'mimi.arpa',
      rootServers: hints.servers,
      trustAnchor: anchor,
      ca: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
      transport: 'doh',
      cacheBytes: 64 * 1024 * 1024,
      answerCacheBytes: 64 * 1024 * 1024,
      batchConcurrency: 32,
      verifyThreads: 'auto',
      maxBatch: 50,
      rootCopy: { enabled: true },
      listen: { host: '127.0.0.1', udp: 0, tcp: null, doh: null, api: 0, admin: null },
      limits: {
        tcp: {
          maxConnections: DEFAULT_TCP_MAX_CONNECTIONS,
          connectionsPerClient: 4,
          idleTimeoutMs: DEFAULT_TCP_IDLE_TIMEOUT_MS,
          messageTimeoutMs: DEFAULT_TCP_MESSAGE_TIMEOUT_MS,
        },
        doh: {
          maxConnections: DEFAULT_DOH_MAX_CONNECTIONS,
          connectionsPerClient: DEFAULT_DOH_CONNECTIONS_PER_CLIENT,
          requestTimeoutMs: DEFAULT_DOH_REQUEST_TIMEOUT_MS,
          idleTimeoutMs: DEFAULT_DOH_IDLE_TIMEOUT_MS,
        },
        api: { idleTimeoutMs: 5000 },
        clients: DEFAULT_LIMITS.clients,
      },
      tls: { cert: 'CERT', key: 'KEY' },
      log: { level: 'info' },
      startupCheck: {
        enabled: true,
        attempts: DEFAULT_STARTUP_CHECK_ATTEMPTS,
        timeoutMs: DEFAULT_STARTUP_CHECK_TIMEOUT_MS,
      },
    });
  });

  it('passes upstream on to the resolver as written', async () => {
    const upstream = { timeoutMs: 1500, rttBandMs: 200, maxBackoffMs: 60_000 };
    const config = await loadResolverConfig(files('upstream', { upstream }));
    expect(config.upstream).toEqual(upstream);
    const without = await loadResolverConfig(files('no-upstream', {}));
    expect(without).not.toHaveProperty('upstream');
  });

  it.each<[string, Record<string, unknown>, Record<string, string>, string, RegExp]>([
    [
      'an unknown key',
      { listne: {} },
      {},
      'ERR_CONFIG_INVALID',
      /resolver\.json: unknown key "listne" in the top level$/,
    ],
    [
      'a missing hints file',
      { rootHints: 'nope.json' },
      {},
      'ERR_CONFIG_READ',
      /nope\.json: cannot read the root hints: ENOENT/,
    ],
    [
      'hints that are not JSON',
      {},
      { 'root-hints.json': '{' },
      'ERR_CONFIG_SYNTAX',
      /root-hints\.json: invalid JSON/,
    ],
    [
      'hints of another shape',
      {},
      { 'root-hints.json': '{"apex":"mimi.arpa","servers":[{"name":"ns1.mimi.arpa"}]}' },
      'ERR_CONFIG_INVALID',
      /root-hints\.json: servers\[0\]\.addresses: required/,
    ],
    [
      'hints for another apex',
      { apex: 'example.org' },
      {},
      'ERR_CONFIG_INVALID',
      /root-hints\.json: the root hints are for mimi\.arpa, not example\.org$/,
    ],
    [
      'hints without the transport',
      { transport: 'dns' },
      {
        'root-hints.json': JSON.stringify({
          apex: 'mimi.arpa',
          servers: [
            { name: 'ns1.mimi.arpa', addresses: [], doh: 'https://ns1.mimi.arpa/dns-query' },
          ],
        }),
      },
      'ERR_CONFIG_INVALID',
      /no root server has an address for plain DNS \(use transport "doh"\)$/,
    ],
    [
      'a trust anchor that does not parse',
      {},
      { 'root.key': 'mimi.arpa. IN DS 1 2\n' },
      'ERR_CONFIG_INVALID',
      /root\.key: trust anchor/,
    ],
    [
      'a trust anchor of another zone',
      {},
      { 'root.key': formatTrustAnchor(createTrustAnchor('other.example', anchor.dnskeys)) },
      'ERR_CONFIG_INVALID',
      /root\.key: the trust anchor is for other\.example, not mimi\.arpa$/,
    ],
    [
      'a CA file that is not PEM',
      { ca: 'root.key' },
      {},
      'ERR_CONFIG_INVALID',
      /root\.key: not a PEM certificate file$/,
    ],
    [
      'a missing TLS key',
      { listen: { doh: 0 }, tls: { cert: 'cert.pem', key: 'none.pem' } },
      {},
      'ERR_CONFIG_READ',
      /none\.pem: cannot read the tls\.key/,
    ],
  ])(
    'reports %s as a ConfigError naming the file',
    async (name, config, overrides, code, message) => {
      const path = files(name.replace(/\W+/g, '-'), config, overrides);
      const error = await loadResolverConfig(path).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).code).toBe(code);
      expect((error as ConfigError).message).toMatch(message);
    },
  );

  it('takes the apex from the hints when none is given', async () => {
    const path = files('apex', {});
    const read = await readResolverFiles({
      rootHints: join(dir, 'apex', 'root-hints.json'),
      trustAnchor: join(dir, 'apex', 'root.key'),
    });
    expect(read.apex).toBe('mimi.arpa');
    expect(read.transport).toBe('doh');
    expect(path).toMatch(/resolver\.json$/);
  });
});

// A config built in code, not read by the loader: `createResolver` takes it as given (the rules
// are the loader's), so what the loader would refuse must still end in a clear outcome.
describe('createResolver with a config built in code', () => {
  const anchor = createTrustAnchor('example.test', [
    createZoneKey('example.test', { seed: new Uint8Array(32).fill(7) }).dnskey,
  ]);

  it("serves the namespace of its trust anchor's zone, refusing names outside it", async () => {
    const resolver = createResolver({
      rootServers: [{ name: 'ns1.example.test', addresses: [], doh: 'https://127.0.0.1:1/q' }],
      trustAnchor: anchor,
    });
    try {
      const outside = await resolver.resolve('8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa', 'MAP');
      expect(outside.rcode).toBe('REFUSED');
      expect(resolver.stats().upstreamQueries).toBe(0);
    } finally {
      await resolver.close();
    }
  });

  it('answers error, never none, when no root server can be reached over its transport', async () => {
    const resolver = createResolver({
      rootServers: [{ name: 'ns1.example.test', addresses: [], doh: 'https://127.0.0.1:1/q' }],
      trustAnchor: anchor,
      transport: 'dns',
    });
    try {
      const result = await resolver.discover('alice@example.test');
      expect(result.status).toBe('error');
      expect(result.error?.reason).toBe('servfail');
      expect(resolver.stats().upstreamQueries).toBe(0);
    } finally {
      await resolver.close();
    }
  });
});
