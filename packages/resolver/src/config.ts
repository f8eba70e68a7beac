import { dirname, relative, resolve as resolvePath } from 'node:path';
import {
  ConfigError,
  DEFAULT_APEX,
  MimiError,
  ANSWER_CACHE_OCTETS,
  DEFAULT_LIMITED_CLIENTS,
  DEFAULT_SEEN_SECONDS,
  canonicalName,
  checkConnectionsPerClient,
  checkTlsForHttps,
  cidrListSchema,
  controlConfigSchema,
  configPathSchema,
  dohLimitsConfigSchema,
  domainNameSchema,
  listenConfigSchema,
  logConfigSchema,
  parseConfig,
  parseConfigText,
  parseTrustAnchor,
  positiveIntSchema,
  queryLogConfigSchema,
  readConfigFile,
  readConfigText,
  readTlsFiles,
  remotePortSchema,
  rootHintsSchema,
  tcpLimitsConfigSchema,
  timeoutMsSchema,
  tlsConfigSchema,
  type ConfigCheckContext,
  type LogLevel,
  type TrustAnchor,
  MAX_VERIFY_THREADS,
} from '@mimi-discovery/common';
import { z } from 'zod';
import {
  DEFAULT_API_REQUEST_BURST,
  DEFAULT_API_REQUESTS_PER_SECOND,
  DEFAULT_MAX_SEEN,
  DEFAULT_MAX_SEEN_PER_CLIENT,
  DEFAULT_NEW_NAME_BURST,
  DEFAULT_NEW_NAMES_PER_DAY,
  DEFAULT_QUERIES_PER_SECOND,
  DEFAULT_QUERY_BURST,
} from './front-end-limits.js';
import { DEFAULT_MAX_BATCH } from './json-api.js';
import { DEFAULT_KEY_OVERLAP_SECONDS, DEFAULT_KEY_ROTATION_SECONDS } from './gateway/keys.js';
import { DEFAULT_CSIS_PER_TOKEN } from './gateway/tokens.js';
import { INFRA_HOST_TTL_SECONDS, MAX_BACKOFF_MS } from './infra-cache.js';
import { DEFAULT_BATCH_CONCURRENCY, DEFAULT_CACHE_BYTES } from './limits.js';
import {
  AUTO_TRUST_ADD_HOLD_DOWN_SECONDS,
  AUTO_TRUST_MAX_PROBE_SECONDS,
  AUTO_TRUST_REMOVE_HOLD_DOWN_SECONDS,
} from './auto-trust.js';
import type { ResolverConfig } from './types.js';

/**
 * A resolver's config (design §10), beside the server that reads it: the schema of its file,
 * each rule across keys stated once in it, and the loader that reads the file and the files it
 * names — the root hints (`rootHintsSchema` of `@mimi-discovery/common`), the trust anchor
 * (parsed here, once, and passed on parsed), the CA file and the TLS files.
 *
 * ```ts
 * const config = await loadResolverConfig('/etc/mimi/resolver.json');
 * const resolver = createResolver(config, { log });
 * const server = await startResolverServer(config, resolver, { log });
 * ```
 */

// ---------------------------------------------------------------------------------------------
// The schema

/**
 * `limits.api` of a resolver: the JSON API's connection limits and deadlines. Absent keys take
 * the API's own defaults (`DEFAULT_API_MAX_CONNECTIONS`, `DEFAULT_API_CONNECTIONS_PER_CLIENT`,
 * `DEFAULT_API_REQUEST_TIMEOUT_MS`, `DEFAULT_API_IDLE_TIMEOUT_MS` of `json-api.ts`).
 */
const jsonApiLimitsSchema = z
  .strictObject({
    maxConnections: positiveIntSchema.exactOptional(),
    connectionsPerClient: positiveIntSchema.exactOptional(),
    /** TLS handshake, headers, body: each within this long of its start. */
    requestTimeoutMs: timeoutMsSchema.exactOptional(),
    /** A connection with no request in progress is closed this long after its last response. */
    idleTimeoutMs: timeoutMsSchema.exactOptional(),
  })
  .check(checkConnectionsPerClient);

/**
 * `limits.clients` of a resolver: the per-client limits of every front end
 * (`front-end-limits.ts`), with their defaults. A request of `newNameBurst` new names must be
 * rememberable whole, so `maxSeenPerClient` is at least `newNameBurst`, and `maxSeen` at least
 * `maxSeenPerClient`.
 */
const clientLimitsSchema = z
  .strictObject({
    /** Most new names (CSIs, DNS names under the apex) one client may ask for at once. */
    newNameBurst: positiveIntSchema.default(DEFAULT_NEW_NAME_BURST),
    /** New names a client earns per day. */
    newNamesPerDay: positiveIntSchema.default(DEFAULT_NEW_NAMES_PER_DAY),
    /** A name asked for within this long is not new to the client. */
    seenSeconds: positiveIntSchema.default(DEFAULT_SEEN_SECONDS),
    maxSeenPerClient: positiveIntSchema.default(DEFAULT_MAX_SEEN_PER_CLIENT),
    maxSeen: positiveIntSchema.default(DEFAULT_MAX_SEEN),
    /** DNS queries (UDP, TCP, DoH) per second per client, and at once. */
    queriesPerSecond: positiveIntSchema.default(DEFAULT_QUERIES_PER_SECOND),
    queryBurst: positiveIntSchema.default(DEFAULT_QUERY_BURST),
    /** JSON API requests per second per client, and at once. */
    requestsPerSecond: positiveIntSchema.default(DEFAULT_API_REQUESTS_PER_SECOND),
    requestBurst: positiveIntSchema.default(DEFAULT_API_REQUEST_BURST),
    /** Most clients each table tracks (least recently active dropped first). */
    maxClients: positiveIntSchema.default(DEFAULT_LIMITED_CLIENTS),
    /** Clients never limited: trusted back ends, as CIDR ranges or addresses. */
    exempt: cidrListSchema.default([]),
  })
  .check((ctx) => {
    const c = ctx.value;
    if (ctx.issues.length > 0) return;
    if (c.maxSeenPerClient < c.newNameBurst) {
      ctx.issues.push({
        code: 'custom',
        input: c,
        path: ['maxSeenPerClient'],
        message: 'must be at least newNameBurst',
      });
    }
    if (c.maxSeen < c.maxSeenPerClient) {
      ctx.issues.push({
        code: 'custom',
        input: c,
        path: ['maxSeen'],
        message: 'must be at least maxSeenPerClient',
      });
    }
  });

/** `limits` of a resolver: per listener, connections and deadlines; per client, `clients`. */
const resolverLimitsSchema = z.strictObject({
  tcp: tcpLimitsConfigSchema.prefault({}),
  doh: dohLimitsConfigSchema.prefault({}),
  api: jsonApiLimitsSchema.prefault({}),
  clients: clientLimitsSchema.prefault({}),
});

/**
 * `queryLog` of a resolver: the common section (`path`, `peer`, `bufferBytes`) and `api`, which
 * adds a line per CSI looked up through the JSON API (off by default: a contact sync writes
 * its whole book).
 */
const resolverQueryLogSchema = queryLogConfigSchema.extend({ api: z.boolean().default(false) });

/**
 * `verifyThreads` of a resolver: `"auto"`, or a whole number of threads from 0 (the event loop
 * verifies) to `MAX_VERIFY_THREADS`.
 */
const verifyThreadsSchema = z.union(
  [z.literal('auto'), z.number().int().min(0).max(MAX_VERIFY_THREADS)],
  {
    error: `must be "auto" or a whole number of threads from 0 (the event loop verifies) to ${MAX_VERIFY_THREADS}`,
  },
);

/**
 * `rootCopy` of a resolver: the local copy of the root's zone (`root-copy.ts`), on by default;
 * `false` or `{ "enabled": false }` turns it off.
 */
const rootCopySchema = z.union(
  [
    z.literal(false),
    z.strictObject({
      enabled: z.boolean().default(true),
      /** Seconds between serial checks; default the SOA's refresh. */
      refreshSeconds: positiveIntSchema.exactOptional(),
      /** Most records of one transfer (`ROOT_COPY_MAX_RECORDS`). */
      maxRecords: positiveIntSchema.exactOptional(),
      /** Most octets of one transfer (`ROOT_COPY_MAX_OCTETS`). */
      maxOctets: positiveIntSchema.exactOptional(),
      /** Time of one transfer (`ROOT_COPY_TRANSFER_TIMEOUT_MS`). */
      transferTimeoutMs: timeoutMsSchema.exactOptional(),
    }),
  ],
  {
    error:
      'expected false or an object of enabled, refreshSeconds, maxRecords, maxOctets, transferTimeoutMs',
  },
);

/**
 * `autoTrustAnchor` of a resolver: RFC 5011 updates of the trust anchor file (`auto-trust.ts`),
 * on by default. Hold-downs in seconds (defaults 30 days each, RFC 5011 §2.4); `maxProbeSeconds`
 * caps the probe interval RFC 5011 §2.3 gives (1 hour to 15 days) for labs and tests.
 */
const autoTrustAnchorSchema = z.strictObject({
  enabled: z.boolean().default(true),
  addHoldDownSeconds: positiveIntSchema.default(AUTO_TRUST_ADD_HOLD_DOWN_SECONDS),
  removeHoldDownSeconds: positiveIntSchema.default(AUTO_TRUST_REMOVE_HOLD_DOWN_SECONDS),
  maxProbeSeconds: positiveIntSchema.max(AUTO_TRUST_MAX_PROBE_SECONDS).exactOptional(),
});

/**
 * `authkeyRefetch` of a resolver: how often an AUTHKEY RRset is asked again for a prover it lacks
 * (`authkey-refetch.ts`); absent keys take their constants.
 */
const authkeyRefetchSchema = z.strictObject({
  minIntervalSeconds: positiveIntSchema.exactOptional(),
  perMinute: positiveIntSchema.max(6_000).exactOptional(),
});

/**
 * `upstream` of a resolver: queries to the root and DP servers and the choice among a zone's
 * servers (`upstream.ts`, `infra-cache.ts`). Absent keys take their defaults there:
 * `SERVER_TIMEOUT_MS`, `RTT_BAND_MS`, `MAX_BACKOFF_MS`, `INFRA_HOST_TTL_SECONDS`,
 * `MAX_INFRA_HOSTS`. A server is held back at most as long as it is remembered, or it would be
 * forgotten, and asked as a new one, before its backoff ends.
 */
const upstreamSchema = z
  .strictObject({
    /** Time one server has to answer one query before the next server is tried. */
    timeoutMs: timeoutMsSchema.max(60_000).exactOptional(),
    /** Servers whose RTO is within this of the lowest are chosen among at random; 0: the fastest. */
    rttBandMs: z.int().min(0).max(60_000).exactOptional(),
    /** The longest a server that timed out is held back. */
    maxBackoffMs: timeoutMsSchema.exactOptional(),
    /** How long what is known of a server is kept after its last answer or failure. */
    hostTtlSeconds: positiveIntSchema.max(86_400).exactOptional(),
    /** Server addresses remembered. */
    maxHosts: positiveIntSchema.max(1_000_000).exactOptional(),
    /**
     * A DoH server's certificate valid for its address but not for its name (the SNI sent: the
     * `_dns` SVCB target, else the NS name) is accepted; default true.
     */
    acceptAddressCertificates: z.boolean().exactOptional(),
  })
  .check((ctx) => {
    const u = ctx.value;
    if (ctx.issues.length > 0) return;
    const ttlMs = (u.hostTtlSeconds ?? INFRA_HOST_TTL_SECONDS) * 1000;
    const backoffMs = u.maxBackoffMs ?? MAX_BACKOFF_MS;
    if (backoffMs > ttlMs) {
      ctx.issues.push({
        code: 'custom',
        input: u,
        ...(u.maxBackoffMs === undefined
          ? {
              path: ['hostTtlSeconds'],
              message: `must be at least maxBackoffMs / 1000 (${backoffMs / 1000}): a server held back would be forgotten first`,
            }
          : {
              path: ['maxBackoffMs'],
              message: `must be at most hostTtlSeconds × 1000 (${ttlMs}): a server held back would be forgotten first`,
            }),
      });
    }
  });

/** Most issuers one gateway accepts tokens of. */
export const MAX_GATEWAY_ISSUERS = 16;

/** Default times `resolver serve` asks the root servers for the apex DNSKEY before refusing. */
export const DEFAULT_STARTUP_CHECK_ATTEMPTS = 3;
/** Most attempts of the start-up check a config may ask for. */
export const MAX_STARTUP_CHECK_ATTEMPTS = 10;
/** Default time each attempt of the start-up check gives the root servers (asked together). */
export const DEFAULT_STARTUP_CHECK_TIMEOUT_MS = 3000;
/** Pause between two attempts of the start-up check. */
export const STARTUP_CHECK_RETRY_DELAY_MS = 1000;

/**
 * `startupCheck`: before it serves, `resolver serve` asks every root server of the hints, over
 * the configured transport and with the configured CA, for the apex's DNSKEY RRset, and refuses
 * to start, with one line saying why, when none answers with keys the trust anchor validates —
 * a resolver that could only answer SERVFAIL. `attempts` tries, each of at most `timeoutMs`,
 * {@link STARTUP_CHECK_RETRY_DELAY_MS} apart; `enabled: false` skips it (a resolver started
 * before its root, which it then reaches once the root is up).
 */
const startupCheckSchema = z.strictObject({
  enabled: z.boolean().default(true),
  attempts: positiveIntSchema
    .max(MAX_STARTUP_CHECK_ATTEMPTS)
    .default(DEFAULT_STARTUP_CHECK_ATTEMPTS),
  timeoutMs: timeoutMsSchema.max(60_000).default(DEFAULT_STARTUP_CHECK_TIMEOUT_MS),
});

/**
 * One issuer of `gateway.issuers`: its name (the URL authority its clients fetch tokens from,
 * `host:port`, the challenges' issuer_name) and where its token keys are: `keyName`, the owner
 * of its KEYCONF RRset in the tree (resolved and validated), or `keysFile`, its public-key file.
 */
const gatewayIssuerSchema = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .max(255)
      .regex(/^[A-Za-z0-9.\-[\]:]+$/, 'expected host or host:port'),
    keyName: domainNameSchema.exactOptional(),
    keysFile: configPathSchema.exactOptional(),
  })
  .check((ctx) => {
    if ((ctx.value.keyName === undefined) === (ctx.value.keysFile === undefined)) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        path: ['keyName'],
        message: 'give exactly one of keyName and keysFile',
      });
    }
  });

/** Whether `inner` is `outer` or a path inside it. */
function within(inner: string, outer: string): boolean {
  const rel = relative(resolvePath('/', outer), resolvePath('/', inner));
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith('/'));
}

/**
 * `gateway` of a resolver: the oblivious gateway on the JSON API's port (`gateway/gateway.ts`).
 * `keyDir` holds its private HPKE keys and may be neither the token store's `dataDir` nor inside
 * it, nor hold it (design §9: backups of data carry no secrets).
 */
const gatewayConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    keyDir: configPathSchema,
    dataDir: configPathSchema,
    originName: z.string().min(1).max(255).exactOptional(),
    csisPerToken: positiveIntSchema.default(DEFAULT_CSIS_PER_TOKEN),
    requireTokens: z.boolean().default(true),
    keyRotationSeconds: positiveIntSchema.default(DEFAULT_KEY_ROTATION_SECONDS),
    keyOverlapSeconds: z.int().min(0).default(DEFAULT_KEY_OVERLAP_SECONDS),
    issuers: z.array(gatewayIssuerSchema).max(MAX_GATEWAY_ISSUERS).default([]),
  })
  .check((ctx) => {
    const g = ctx.value;
    if (ctx.issues.length > 0) return;
    if (within(g.keyDir, g.dataDir) || within(g.dataDir, g.keyDir)) {
      ctx.issues.push({
        code: 'custom',
        input: g,
        path: ['keyDir'],
        message: 'must be apart from dataDir (private keys are never kept with the data)',
      });
    }
    if (g.requireTokens && g.issuers.length === 0) {
      ctx.issues.push({
        code: 'custom',
        input: g,
        path: ['issuers'],
        message: 'list at least one issuer, or set requireTokens to false',
      });
    }
  });

/** A resolver's listeners, from its config file or from code: a port absent or null is off. */
interface ResolverListeners {
  listen: {
    udp?: number | null | undefined;
    tcp?: number | null | undefined;
    doh?: number | null | undefined;
    api?: number | null | undefined;
  };
  tls?: unknown;
}

/**
 * The rules across a resolver's listeners: `tls` is required when `listen.doh` or `listen.api`
 * is set (`checkTlsForHttps`, the rule of every server), and at least one of `udp`, `tcp`,
 * `doh` and `api` is set, else the resolver serves no one.
 */
function checkResolverListeners(ctx: ConfigCheckContext<ResolverListeners>): void {
  checkTlsForHttps(ctx);
  const { udp, tcp, doh, api } = ctx.value.listen;
  if ([udp, tcp, doh, api].every((port) => (port ?? null) === null)) {
    ctx.issues.push({
      code: 'custom',
      input: ctx.value,
      path: ['listen'],
      message: 'set at least one of udp, tcp, doh and api: the resolver would serve no one',
    });
  }
}

/**
 * Config of a resolver (`mimi-discovery resolver serve`), with defaults:
 *
 * ```json
 * { "apex": "mimi.arpa", "rootHints": "/etc/mimi/root-hints.json", "trustAnchor": "/etc/mimi/root.key",
 *   "ca": "/etc/mimi/ca.pem", "transport": "doh", "cacheBytes": 67108864, "answerCacheBytes": 67108864,
 *   "batchConcurrency": 32, "verifyThreads": "auto", "maxBatch": 1000, "rootCopy": { "enabled": true },
 *   "listen": { "host": "127.0.0.1", "udp": null, "tcp": null, "doh": null, "api": null, "admin": null },
 *   "limits": { "tcp": { … }, "doh": { … }, "api": {}, "clients": { … } },
 *   "tls": { "cert": "…", "key": "…" },
 *   "log": { "level": "info" } }
 * ```
 *
 * `rootHints` is the file `mimi-discovery hints` writes (`rootHintsSchema`); `trustAnchor` the
 * DS file `mimi-discovery trust-anchor` writes; `ca` (optional) a PEM file of CA certificates
 * trusted for DoH to the network's servers, instead of the system's. Ports are 0–65535 (0:
 * ephemeral) or null (not served). Rules across keys: at least one of `listen.udp`,
 * `listen.tcp`, `listen.doh` and `listen.api` is set; `tls` is required when `listen.doh` or
 * `listen.api` is set; `dnsPort` (the plain DNS port of every server but the roots) only goes
 * with `transport: "dns"`. `limits.tcp` and `limits.doh` are those of every server
 * (`@mimi-discovery/common`); `limits.api` (`maxConnections`, `connectionsPerClient`,
 * `requestTimeoutMs`, `idleTimeoutMs`) keeps absent keys absent: the JSON API fills in its own
 * defaults. `queryLog` (absent: none) is `{ "path": "…", "peer": false, "api": false,
 * "bufferBytes": 1048576 }`: a line per query to the DNS front ends, and with `api` per CSI of
 * the JSON API; the client's address only with `peer`. `rootCopy` (the local copy of the root's zone,
 * transferred by AXFR over TCP from the root servers whose hints list a `port`) is on by default:
 * `false` or `{ "enabled": false }` turns it off; `refreshSeconds` (default the SOA's refresh),
 * `maxRecords`, `maxOctets` and `transferTimeoutMs` (the bounds of one transfer) may be set.
 * `upstream` (absent: the defaults) is `{ "timeoutMs": 2000, "rttBandMs": 400, "maxBackoffMs":
 * 120000, "hostTtlSeconds": 900, "maxHosts": 10000 }`: the per-server query timeout and the
 * infra cache's server selection (`infra-cache.ts`), and `acceptAddressCertificates` (absent:
 * true): a DoH server's certificate valid for its address but not its name is accepted.
 * `startupCheck` (`{ "enabled": true, "attempts": 3, "timeoutMs": 3000 }`) is what
 * `resolver serve` checks before it serves: a root server answering the apex DNSKEY with keys
 * the trust anchor validates. `limits.clients` holds the per-client limits of every
 * front end (new names, query and request rates, exemptions: `front-end-limits.ts`); its
 * `newNameBurst` is at least `maxBatch`. `gateway` (absent: none) is the oblivious gateway on the
 * JSON API's port, which needs `listen.api`:
 * `{ "enabled": true, "keyDir": "…", "dataDir": "…", "originName": "<host:port>", "csisPerToken":
 * 100, "requireTokens": true, "keyRotationSeconds": 604800, "keyOverlapSeconds": 86400,
 * "issuers": [{ "name": "<host:port>", "keyName": "<owner of its KEYCONF>" | "keysFile": "…" }] }`;
 * `csisPerToken` is at most `maxBatch`, `keyDir` apart from `dataDir`, and `issuers` not empty
 * while `requireTokens` is true. `msp` (absent: none) is the resolver's own MSP identity, a
 * provider domain as MSP entries write it (lower case, no trailing dot): `same-msp` entries of
 * other providers are dropped from every result, and all of them without it. `lookupPage`
 * (absent: served when built) is the lookup page for support staff on the JSON API's port at
 * `/lookup/` (`lookup-page.ts`): `true` requires it (a resolver whose page is not built does not
 * start), `false` turns it off. `verifyThreads` is the number of threads that verify signatures
 * beside the event loop (`"auto"`: one fewer than the cores, at least 1; `0`: none, the event
 * loop verifies; at most `MAX_VERIFY_THREADS`).
 */
export const resolverConfigSchema = z
  .strictObject({
    apex: domainNameSchema.default(DEFAULT_APEX),
    rootHints: configPathSchema,
    trustAnchor: configPathSchema,
    ca: configPathSchema.optional(),
    transport: z.enum(['doh', 'dns']).default('doh'),
    dnsPort: remotePortSchema.optional(),
    cacheBytes: positiveIntSchema.default(DEFAULT_CACHE_BYTES),
    /** Octets of encoded DNS answers the front ends keep for reuse (`answer-cache.ts`). */
    answerCacheBytes: positiveIntSchema.default(ANSWER_CACHE_OCTETS),
    batchConcurrency: positiveIntSchema.max(1024).default(DEFAULT_BATCH_CONCURRENCY),
    verifyThreads: verifyThreadsSchema.default('auto'),
    /** Read in canonical form, as MSP entries write their provider (`Chat.Example.` → `chat.example`). */
    msp: domainNameSchema.optional(),
    maxBatch: positiveIntSchema.max(100_000).default(DEFAULT_MAX_BATCH),
    rootCopy: rootCopySchema.default({ enabled: true }),
    autoTrustAnchor: autoTrustAnchorSchema.prefault({}),
    authkeyRefetch: authkeyRefetchSchema.optional(),
    upstream: upstreamSchema.optional(),
    listen: listenConfigSchema.prefault({}),
    limits: resolverLimitsSchema.prefault({}),
    tls: tlsConfigSchema.optional(),
    log: logConfigSchema.prefault({}),
    queryLog: resolverQueryLogSchema.optional(),
    gateway: gatewayConfigSchema.optional(),
    /**
     * The lookup page on the JSON API's port (`lookup-page.ts`): absent, served when built;
     * true, required; false, not served.
     */
    lookupPage: z.boolean().optional(),
    startupCheck: startupCheckSchema.prefault({}),
    /**
     * The control channel (`control.ts` of `@mimi-discovery/common`); absent: the socket at
     * `control.sock` beside the config file, and no control over the admin port.
     */
    control: controlConfigSchema.optional(),
  })
  .check((ctx) => {
    checkResolverListeners(ctx);
    const c = ctx.value;
    if (c.gateway?.enabled === true) {
      if ((c.listen.api ?? null) === null) {
        ctx.issues.push({
          code: 'custom',
          input: c,
          path: ['gateway'],
          message: 'the gateway is served on the JSON API: set listen.api',
        });
      }
      if (c.gateway.csisPerToken > c.maxBatch) {
        ctx.issues.push({
          code: 'custom',
          input: c,
          path: ['gateway', 'csisPerToken'],
          message: 'must be at most maxBatch',
        });
      }
    }
    // A full batch of new CSIs must fit a full budget, or it could never be answered.
    if (c.limits.clients.newNameBurst < c.maxBatch) {
      ctx.issues.push({
        code: 'custom',
        input: c,
        path: ['limits', 'clients', 'newNameBurst'],
        message: 'must be at least maxBatch (a full batch of new CSIs must fit the budget)',
      });
    }
    if (c.dnsPort !== undefined && c.transport !== 'dns') {
      ctx.issues.push({
        code: 'custom',
        input: c,
        path: ['dnsPort'],
        message: 'only allowed when transport is "dns"',
      });
    }
  });

/** A resolver config file, defaults filled in; paths as written in the file. */
export type ResolverFileConfig = z.output<typeof resolverConfigSchema>;

/** Listeners given in code rather than in a file, held to the rules of a file's. */
const listenerSettingsSchema = z.custom<ResolverListeners>().check(checkResolverListeners);

/**
 * Checks listeners given in code (`startResolverServer`'s settings, which tests, examples and
 * the bench build without a file) by the rules {@link resolverConfigSchema} applies to a file:
 * throws `ConfigError` `ERR_CONFIG_INVALID` — `tls: required when listen.doh or listen.api is
 * set`, `listen: set at least one of …` — rather than start a server that silently lacks a
 * listener it was asked for.
 */
export function checkListenerSettings(settings: ResolverListeners): void {
  parseConfig(listenerSettingsSchema, settings);
}

// ---------------------------------------------------------------------------------------------
// The loader

/** A resolver config file, read: `createResolver`'s config plus what the front ends need. */
export interface ResolverServerConfig extends ResolverConfig {
  /** Absolute path of the config file. */
  readonly source: string;
  apex: string;
  transport: 'doh' | 'dns';
  cacheBytes: number;
  answerCacheBytes: number;
  batchConcurrency: number;
  verifyThreads: number | 'auto';
  maxBatch: number;
  listen: ResolverFileConfig['listen'];
  /** Connection limits and deadlines of the listeners. */
  limits: ResolverFileConfig['limits'];
  /** The certificate chain and key of DoH and the JSON API, PEM (read from `tls.cert`, `tls.key`). */
  tls?: { cert: string; key: string };
  log: { level: LogLevel };
  /** The query log; its path absolute. */
  queryLog?: ResolverFileConfig['queryLog'];
  /** The gateway; its paths absolute. */
  gateway?: ResolverFileConfig['gateway'];
  /** The lookup page on the JSON API's port: absent, served when built (`lookup-page.ts`). */
  lookupPage?: boolean;
  /** What `resolver serve` checks before it serves. */
  startupCheck: ResolverFileConfig['startupCheck'];
  /** The control channel; its paths absolute. */
  control?: ResolverFileConfig['control'];
}

/** The files a resolver starts from, by path. */
export interface ResolverFiles {
  /** Root hints JSON, as `mimi-discovery hints` writes it. */
  rootHints: string;
  /** The trust anchor (DS records of the apex), as `mimi-discovery trust-anchor` writes it. */
  trustAnchor: string;
  /** PEM CA certificates trusted for DoH to the network's servers. */
  ca?: string;
  /** The apex the hints and the anchor must be for; default the apex of the hints. */
  apex?: string;
  /** Which endpoint of the root servers will be used; default `doh`. */
  transport?: 'doh' | 'dns';
}

/**
 * Reads and checks the files a resolver starts from, for `createResolver`: the root hints
 * (`rootHintsSchema`), the trust anchor (parsed here, so a bad one is reported before anything
 * starts, and passed on parsed) and the CA file. Checks that the hints and the anchor are for
 * the apex, and that some root server can be reached over the transport. Every problem is a
 * `ConfigError` naming the file: `ERR_CONFIG_READ` for a file that cannot be read,
 * `ERR_CONFIG_SYNTAX` or `ERR_CONFIG_INVALID` for its content.
 */
export async function readResolverFiles(
  files: ResolverFiles,
): Promise<ResolverConfig & { apex: string }> {
  const hints = parseConfigText(
    await readConfigText(files.rootHints, 'root hints'),
    rootHintsSchema,
    files.rootHints,
  );
  const apex = canonicalName(files.apex ?? hints.apex);
  if (hints.apex !== apex) {
    invalid(files.rootHints, `the root hints are for ${hints.apex}, not ${apex}`);
  }
  const transport = files.transport ?? 'doh';
  // The schema makes every server reachable over DoH (its URL, else its addresses on port
  // 443); plain DNS needs an address.
  if (transport === 'dns' && hints.servers.every((s) => s.addresses.length === 0)) {
    invalid(files.rootHints, 'no root server has an address for plain DNS (use transport "doh")');
  }
  const anchorText = await readConfigText(files.trustAnchor, 'trust anchor');
  let trustAnchor: TrustAnchor;
  try {
    trustAnchor = parseTrustAnchor(anchorText);
  } catch (error) {
    if (!(error instanceof MimiError)) throw error;
    return invalid(files.trustAnchor, error.message, error);
  }
  if (canonicalName(trustAnchor.zone) !== apex) {
    invalid(files.trustAnchor, `the trust anchor is for ${trustAnchor.zone}, not ${apex}`);
  }
  const ca = files.ca === undefined ? undefined : await readConfigText(files.ca, 'CA file');
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) {
    invalid(files.ca as string, 'not a PEM certificate file');
  }
  return {
    apex,
    rootServers: hints.servers.map((s) => ({
      name: s.name,
      addresses: [...s.addresses],
      ...(s.port === undefined ? {} : { port: s.port }),
      ...(s.doh === undefined ? {} : { doh: s.doh }),
    })),
    trustAnchor,
    transport,
    ...(ca === undefined ? {} : { ca }),
  };
}

/**
 * Reads a resolver config file ({@link resolverConfigSchema}) and the files it names
 * ({@link readResolverFiles}, plus `tls.cert` and `tls.key`). Relative paths in the file are
 * relative to the file's directory. Throws `ConfigError` for anything wrong.
 */
export async function loadResolverConfig(path: string): Promise<ResolverServerConfig> {
  const source = resolvePath(path);
  const file = await readConfigFile(source, resolverConfigSchema);
  const base = dirname(source);
  const at = (p: string): string => resolvePath(base, p);
  const inputs = await readResolverFiles({
    rootHints: at(file.rootHints),
    trustAnchor: at(file.trustAnchor),
    apex: file.apex,
    transport: file.transport,
    ...(file.ca === undefined ? {} : { ca: at(file.ca) }),
  });
  const tls = file.tls === undefined ? undefined : await readTlsFiles(file.tls, at);
  return {
    ...inputs,
    source,
    apex: inputs.apex,
    transport: file.transport,
    ...(file.dnsPort === undefined ? {} : { dnsPort: file.dnsPort }),
    cacheBytes: file.cacheBytes,
    answerCacheBytes: file.answerCacheBytes,
    batchConcurrency: file.batchConcurrency,
    verifyThreads: file.verifyThreads,
    ...(file.msp === undefined ? {} : { msp: file.msp }),
    maxBatch: file.maxBatch,
    rootCopy: file.rootCopy,
    // The anchor file itself keeps the state, as Unbound's `auto-trust-anchor-file`.
    autoTrustAnchor: { ...file.autoTrustAnchor, file: at(file.trustAnchor) },
    ...(file.authkeyRefetch === undefined ? {} : { authkeyRefetch: file.authkeyRefetch }),
    ...(file.upstream === undefined ? {} : { upstream: file.upstream }),
    listen: file.listen,
    limits: file.limits,
    ...(tls === undefined ? {} : { tls }),
    log: file.log,
    startupCheck: file.startupCheck,
    ...(file.lookupPage === undefined ? {} : { lookupPage: file.lookupPage }),
    ...(file.queryLog === undefined
      ? {}
      : { queryLog: { ...file.queryLog, path: at(file.queryLog.path) } }),
    ...(file.gateway === undefined
      ? {}
      : {
          gateway: {
            ...file.gateway,
            keyDir: at(file.gateway.keyDir),
            dataDir: at(file.gateway.dataDir),
            issuers: file.gateway.issuers.map((issuer) =>
              issuer.keysFile === undefined ? issuer : { ...issuer, keysFile: at(issuer.keysFile) },
            ),
          },
        }),
    ...(file.control === undefined
      ? {}
      : {
          control: {
            ...file.control,
            ...(typeof file.control.socket === 'string' ? { socket: at(file.control.socket) } : {}),
            ...(file.control.keyFile === undefined ? {} : { keyFile: at(file.control.keyFile) }),
          },
        }),
  };
}

function invalid(source: string, message: string, cause?: unknown): never {
  throw new ConfigError(
    'ERR_CONFIG_INVALID',
    message,
    source,
    [{ path: '', message, unknownKey: false }],
    cause === undefined ? undefined : { cause },
  );
}
