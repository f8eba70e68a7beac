import {
  DEFAULT_APEX,
  ANSWER_CACHE_OCTETS,
  DEFAULT_LIMITED_CLIENTS,
  DEFAULT_RRL_BURST_SECONDS,
  DEFAULT_RRL_DENIALS_PER_SECOND,
  DEFAULT_RRL_ERRORS_PER_SECOND,
  DEFAULT_RRL_MAX_ENTRIES,
  DEFAULT_RRL_RESPONSES_PER_SECOND,
  DEFAULT_RRL_SLIP,
  MAX_RRL_SLIP,
  TSIG_ALGORITHMS,
  checkConnectionsPerClient,
  checkTlsForHttps,
  controlConfigSchema,
  createTsigKey,
  decodeSecret,
  cidrListSchema,
  configPathSchema,
  dohLimitsConfigSchema,
  domainNameSchema,
  listenConfigSchema,
  logConfigSchema,
  positiveIntSchema,
  queryLogConfigSchema,
  remotePortSchema,
  tcpLimitsConfigSchema,
  timeoutMsSchema,
  tlsConfigSchema,
  type ConfigCheckContext,
} from '@mimi-discovery/common';
import { z } from 'zod';
import { isIP } from 'node:net';
import { isAddressRange, MAX_TRANSFERS, TRANSFERS_PER_CLIENT } from './answering/transfer.js';
import {
  DP_ANSWER_CACHE_MAX_AGE_SECONDS,
  MAX_ANSWER_CACHE_MAX_AGE_SECONDS,
} from './answering/answer.js';
import {
  MAX_NOTIFY_RETRIES,
  NOTIFY_CHECK_INTERVAL_MS,
  NOTIFY_RETRIES,
  NOTIFY_TIMEOUT_MS,
} from './answering/notify.js';
import { DEFAULT_DOH_QUERIES_PER_SECOND, DEFAULT_DOH_QUERY_BURST } from './answering/dp-limits.js';
import {
  ANSWER_WORKER_ACK_MS,
  MAX_ANSWER_WORKER_ACK_MS,
  MAX_ANSWER_WORKERS,
  MIN_ANSWER_WORKER_ACK_MS,
} from './answering/answer-worker-limits.js';
import { CODE_TTL_SECONDS } from './registration/codes.js';
import {
  PG_POOL_MAX_SIZE,
  PG_POOL_MIN_SIZE,
  PG_POOL_SIZE,
  PG_STATEMENT_TIMEOUT_MS,
} from './store/pg-store.js';
import { DEFAULT_AUTHKEY_TTL_SECONDS } from './zone/zone-signer.js';
import {
  DEFAULT_AUTHKEY_RENEW_BEFORE_DAYS,
  DEFAULT_AUTHKEY_VALIDITY_DAYS,
  MAX_AUTHKEY_VALIDITY_DAYS,
  MAX_TTL_SECONDS,
} from './keys/authkeys.js';
import {
  CDS_DNS_PORT,
  CDS_MAX_CHILDREN_PER_ROUND,
  CDS_POLL_INTERVAL_SECONDS,
  CDS_QUERY_TIMEOUT_MS,
  CDS_ROUND_TIMEOUT_MS,
} from './zone/cds-poller.js';
import {
  MAX_ATTEMPTS_PER_CODE,
  REQUESTS_PER_CLIENT_PER_MINUTE,
  SENDS_PER_CSI_PER_HOUR,
} from './registration/rate-limit.js';
import {
  DEFAULT_ADD_HOLD_DOWN_SECONDS,
  DEFAULT_KEY_LIFETIME_SECONDS,
  DEFAULT_PROPAGATION_DELAY_SECONDS,
  DEFAULT_PUBLISH_SAFETY_SECONDS,
  DEFAULT_REGISTRATION_DELAY_SECONDS,
  DEFAULT_RETIRE_SAFETY_SECONDS,
  DEFAULT_REVOKE_SECONDS,
  MAX_POLICY_SECONDS,
  type RolloverPolicy,
} from './keys/key-policy.js';
import { MAX_PARENT_SERVERS, ROLLER_CHECK_INTERVAL_SECONDS } from './keys/key-roller.js';
import {
  MAX_RANGE_AUTHKEY_CACHE_ENTRIES,
  MAX_RANGE_AUTHKEY_TIMEOUT_MS,
  RANGE_AUTHKEY_CACHE_ENTRIES,
  RANGE_AUTHKEY_TIMEOUT_MS,
  parseResolverEndpoint,
} from './registration/range-authkeys.js';

/**
 * The config file of a Discovery Provider or of the root directory (design §10), beside the
 * server that reads it (`startDp`). The sections every server has (`listen`, `tls`,
 * `limits.tcp`, `limits.doh`, `log`) and `parseConfig` come from `@mimi-discovery/common`; what
 * only a DP has — signing, registration and its code channels, the registration API's limits,
 * the rules of the roles — is here, each rule stated once, in the schema.
 */

const signingSchema = z
  .strictObject({
    /** Days from inception to expiration of each RRSIG. */
    validityDays: positiveIntSchema.default(14),
    /** Signatures are renewed when fewer than this many days of validity remain. */
    refreshDays: positiveIntSchema.default(7),
  })
  .check((ctx) => {
    // Only once both are valid numbers: a bad one is reported on its own.
    if (ctx.issues.length === 0 && ctx.value.refreshDays >= ctx.value.validityDays) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        path: ['refreshDays'],
        message: 'must be less than signing.validityDays',
      });
    }
  });

const smtpSchema = z
  .strictObject({
    host: z.string().min(1),
    port: remotePortSchema,
    /** TLS from the start (port 465) rather than STARTTLS. */
    secure: z.boolean().optional(),
    from: z.string().min(1),
    user: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
  })
  .check((ctx) => {
    if ((ctx.value.user === undefined) !== (ctx.value.password === undefined)) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        path: [ctx.value.user === undefined ? 'user' : 'password'],
        message: 'user and password go together',
      });
    }
  });

const webhookSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'expected an http or https URL' }),
  headers: z.record(z.string(), z.string()).optional(),
});

const channelsSchema = z.strictObject({
  /** Development: codes are appended, one JSON line each, to this file. */
  outbox: z.strictObject({ path: configPathSchema }).optional(),
  /** Codes for email CSIs. */
  smtp: smtpSchema.optional(),
  /** Codes for phone CSIs, through an SMS gateway. */
  webhook: webhookSchema.optional(),
});

/**
 * `limits.api` of a DP: the registration API's connection limits and deadlines. Absent keys
 * take the API's own defaults (`MAX_API_CONNECTIONS`, `API_CONNECTIONS_PER_CLIENT`,
 * `HEADERS_TIMEOUT_MS`, `BODY_TIMEOUT_MS` of `registration-api.ts`).
 */
const registrationApiLimitsSchema = z
  .strictObject({
    maxConnections: positiveIntSchema.exactOptional(),
    connectionsPerClient: positiveIntSchema.exactOptional(),
    /** TLS handshake, then the request headers: each within this long. */
    headersTimeoutMs: timeoutMsSchema.exactOptional(),
    /** The request body within this long of its headers. */
    bodyTimeoutMs: timeoutMsSchema.exactOptional(),
  })
  .check(checkConnectionsPerClient);

/**
 * `limits.rrl`: Response Rate Limiting of UDP answers (`rrl.ts` of `@mimi-discovery/common`,
 * as BIND, NSD and Knot DNS do it). A rate of 0 leaves its class of responses unlimited; all
 * three at 0 turn RRL off.
 */
const rrlSchema = z.strictObject({
  /** Positive answers and referrals per second, per client, query name and type. */
  responsesPerSecond: z.int().min(0).default(DEFAULT_RRL_RESPONSES_PER_SECOND),
  /** Denials (NXDOMAIN, NODATA, compact denial) per second, per client and zone. */
  denialsPerSecond: z.int().min(0).default(DEFAULT_RRL_DENIALS_PER_SECOND),
  /** Error responses per second, per client. */
  errorsPerSecond: z.int().min(0).default(DEFAULT_RRL_ERRORS_PER_SECOND),
  /** Seconds of its rate a stream may spend at once. */
  burstSeconds: positiveIntSchema.default(DEFAULT_RRL_BURST_SECONDS),
  /** Every `slip`-th limited response goes out truncated (TC); 0: none, 1: all. */
  slip: z.int().min(0).max(MAX_RRL_SLIP).default(DEFAULT_RRL_SLIP),
  /** Most streams tracked. */
  maxEntries: positiveIntSchema.default(DEFAULT_RRL_MAX_ENTRIES),
  /** Clients never limited, as CIDR ranges or addresses. */
  exempt: cidrListSchema.default([]),
});

/**
 * `limits.dohClients`: per-client query rate of DNS over HTTPS (`dp-limits.ts`); a client over
 * it gets 429 with `Retry-After`.
 */
const dohClientsSchema = z.strictObject({
  /** DoH queries per second per client. */
  queriesPerSecond: positiveIntSchema.default(DEFAULT_DOH_QUERIES_PER_SECOND),
  /** DoH queries one client may send at once. */
  queryBurst: positiveIntSchema.default(DEFAULT_DOH_QUERY_BURST),
  /** Most clients tracked. */
  maxClients: positiveIntSchema.default(DEFAULT_LIMITED_CLIENTS),
  /** Clients never limited, as CIDR ranges or addresses. */
  exempt: cidrListSchema.default([]),
});

/**
 * `limits` of a DP or the root: per listener, connections and deadlines; per client, RRL on UDP
 * and the DoH query rate.
 */
const dpLimitsSchema = z.strictObject({
  tcp: tcpLimitsConfigSchema.prefault({}),
  doh: dohLimitsConfigSchema.prefault({}),
  api: registrationApiLimitsSchema.prefault({}),
  rrl: rrlSchema.prefault({}),
  dohClients: dohClientsSchema.prefault({}),
});

/** `registration`: the registrar's limits (defaults: its own) and code channels (design §8). */
const registrationSchema = z.strictObject({
  codeTtlSeconds: positiveIntSchema.default(CODE_TTL_SECONDS),
  maxAttemptsPerCode: positiveIntSchema.default(MAX_ATTEMPTS_PER_CODE),
  sendsPerCsiPerHour: positiveIntSchema.default(SENDS_PER_CSI_PER_HOUR),
  requestsPerClientPerMinute: positiveIntSchema.default(REQUESTS_PER_CLIENT_PER_MINUTE),
  channels: channelsSchema.prefault({}),
  /**
   * The recipient page at `/recipient/` of the API port (`registration/recipient-page.ts`):
   * `true` requires it (the DP does not start when it is not built), `false` turns it off;
   * absent, it is served when built, else a warning is logged and the API runs alone.
   */
  page: z.boolean().optional(),
});

/**
 * One TSIG key of `transfer.keys` (RFC 8945): its name, algorithm and secret, the secret given
 * inline (base64, as `tsig-keygen` prints it) or as a key file (`secretFile`: the `key` clause
 * `mimi-discovery keys tsig --out` and `tsig-keygen` write, whose name and algorithm must match;
 * read at start). Keeping secrets in files of their own (0600) keeps them out of the config.
 */
const transferKeySchema = z
  .strictObject({
    name: domainNameSchema,
    algorithm: z.enum(TSIG_ALGORITHMS).default('hmac-sha256'),
    secret: z.string().min(1).optional(),
    secretFile: configPathSchema.optional(),
  })
  .check((ctx) => {
    const { secret, secretFile } = ctx.value;
    if ((secret === undefined) === (secretFile === undefined)) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        path: ['secret'],
        message: 'give exactly one of secret and secretFile',
      });
      return;
    }
    if (secret === undefined) return;
    try {
      createTsigKey(ctx.value.name, ctx.value.algorithm, decodeSecret(secret));
    } catch (error) {
      ctx.issues.push({
        code: 'custom',
        input: secret,
        path: ['secret'],
        message: error instanceof Error ? error.message : String(error),
      });
    }
  });

/** One secondary of `transfer.notify` (RFC 1996): where NOTIFY goes, signed with `key` if set. */
const notifyTargetSchema = z.strictObject({
  address: z.string().refine((value) => isIP(value) !== 0, { error: 'expected an IP address' }),
  port: remotePortSchema.default(53),
  /** The name of a key of `transfer.keys`. */
  key: domainNameSchema.optional(),
});

/**
 * `transfer`: who may copy the server's zones by AXFR and IXFR (RFC 5936, RFC 1995;
 * `transfer.ts`), and which secondaries hear of each change by NOTIFY (RFC 1996; `notify.ts`).
 *
 * The root offers its zone (public delegations; resolvers keep a copy, RFC 8806): by default to
 * anyone. A DP offers its zones to its own secondaries (a hidden primary, docs/operations.md):
 * only with `keys` (TSIG, RFC 8945), and by default only to requests signed with one of them.
 * `allow` restricts both to address ranges (`[]`: nobody); each client (IPv4 address, IPv6 /64)
 * has at most `transfersPerClient` transfers running at once, the server `maxTransfers`.
 */
const transferSchema = z.strictObject({
  allow: z
    .array(
      z.string().refine(isAddressRange, {
        error: 'expected an IPv4 or IPv6 address, optionally with a prefix length (CIDR)',
      }),
    )
    .optional(),
  transfersPerClient: positiveIntSchema.default(TRANSFERS_PER_CLIENT),
  maxTransfers: positiveIntSchema.default(MAX_TRANSFERS),
  /** The TSIG keys of the secondaries (names unique). */
  keys: z.array(transferKeySchema).default([]),
  /** Whether a transfer must be signed with one of `keys`; default: whether there are keys. */
  requireKey: z.boolean().optional(),
  /** The DP's zones offered; default every zone of the store at start. The root's: its apex. */
  zones: z.array(domainNameSchema).optional(),
  /** Secondaries sent a NOTIFY at each change of an offered zone. */
  notify: z.array(notifyTargetSchema).default([]),
  /** Retransmissions of an unanswered NOTIFY (RFC 1996 §3.6). */
  notifyRetries: z.int().min(0).max(MAX_NOTIFY_RETRIES).default(NOTIFY_RETRIES),
  /** Wait before the first retransmission, doubled for each later one. */
  notifyTimeoutMs: timeoutMsSchema.default(NOTIFY_TIMEOUT_MS),
  /** How often the store is checked for a new serial (also a write of another process). */
  notifyCheckIntervalMs: timeoutMsSchema.default(NOTIFY_CHECK_INTERVAL_MS),
});

/**
 * `journal`: how much of each zone's journal of signed changes (`zone/journal.ts`, what an
 * incremental transfer, IXFR RFC 1995, sends) the store keeps; the oldest entries go first.
 * Absent keys take the store's defaults (`JOURNAL_MAX_ENTRIES`, 10,000 entries;
 * `JOURNAL_MAX_OCTETS`, 64 MiB); `maxEntries: 0` keeps none (every transfer is a whole zone).
 */
const journalSchema = z.strictObject({
  /** Entries kept per zone. */
  maxEntries: z.int().min(0).exactOptional(),
  /** Octets of encoded entries kept per zone. */
  maxOctets: z.int().min(0).exactOptional(),
});
/** Rules of `transfer` across its keys and the role (one check, called from the DP schema). */
function checkTransfer(ctx: ConfigCheckContext<DpConfigInput>): void {
  const c = ctx.value;
  const t = c.transfer;
  if (t === undefined) return;
  const issue = (path: PropertyKey[], message: string): void => {
    ctx.issues.push({ code: 'custom', input: t, path: ['transfer', ...path], message });
  };
  if (c.role === 'dp' && t.keys.length === 0) {
    issue(
      ['keys'],
      "a DP offers its zones by transfer only to secondaries with a TSIG key: a DP's zones name CSIs (docs/operations.md)",
    );
  }
  if (c.role === 'root' && t.zones !== undefined) {
    issue(['zones'], 'not allowed when role is "root" (the root offers its own zone)');
  }
  const names = new Set<string>();
  t.keys.forEach((key, i) => {
    if (names.has(key.name)) issue(['keys', i, 'name'], `key ${key.name} is listed twice`);
    names.add(key.name);
  });
  t.notify.forEach((target, i) => {
    if (target.key !== undefined && !names.has(target.key)) {
      issue(['notify', i, 'key'], `no key ${target.key} in transfer.keys`);
    }
  });
}

/**
 * `keys`: the key directory (design §9: keys live apart from data; `keys/key-directory.ts`):
 * `dir`, default `<dataDir>/keys`. Front ends of one PostgreSQL store share one (a shared mount
 * or a copy kept in step).
 */
const keysSchema = z.strictObject({ dir: configPathSchema.optional() });

/**
 * `store`: where the server keeps its zones (design §9, `store-factory.ts`). `lmdb` (the
 * default): the embedded LMDB store in `<dataDir>/store`. `postgres`: the PostgreSQL store
 * (`pg-store.ts`), which several front ends share: `url` in libpq's form (a password may stay out
 * of the file: the driver reads `PGPASSWORD` and `~/.pgpass`), `poolSize` connections (at least
 * 2: one re-signs while another writes), and `statementTimeoutMs`.
 */
const storeSchema = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({ kind: z.literal('lmdb') }),
    z.strictObject({
      kind: z.literal('postgres'),
      url: z.string().regex(/^postgres(ql)?:\/\//, {
        error: 'expected a postgresql:// connection URL',
      }),
      poolSize: z.int().min(PG_POOL_MIN_SIZE).max(PG_POOL_MAX_SIZE).default(PG_POOL_SIZE),
      statementTimeoutMs: timeoutMsSchema.default(PG_STATEMENT_TIMEOUT_MS),
    }),
  ],
  { error: 'expected "lmdb" or "postgres"' },
);

/**
 * `prover`: the validity of this DP's own prover AUTHKEY (design §4) and when it is renewed.
 * `mimi-discovery keys renew` and the DP itself (`keys/authkeys.ts`, once at start and then
 * every `AUTHKEY_RENEWAL_INTERVAL_MS`) set its `notAfter` to now + `authkeyValidityDays` when
 * fewer than `renewBeforeDays` remain.
 */
const proverSchema = z
  .strictObject({
    authkeyValidityDays: z
      .int()
      .min(1)
      .max(MAX_AUTHKEY_VALIDITY_DAYS)
      .default(DEFAULT_AUTHKEY_VALIDITY_DAYS),
    renewBeforeDays: positiveIntSchema.default(DEFAULT_AUTHKEY_RENEW_BEFORE_DAYS),
  })
  .check((ctx) => {
    if (ctx.issues.length === 0 && ctx.value.renewBeforeDays >= ctx.value.authkeyValidityDays) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        path: ['renewBeforeDays'],
        message: 'must be less than prover.authkeyValidityDays',
      });
    }
  });

/**
 * `cds`: the parent polls its children's CDS and CDNSKEY (RFC 7344, RFC 8078;
 * `zone/cds-poller.ts`) and replaces their DS when the child's signed CDS asks for it. Every
 * `intervalSeconds`, at most `maxChildrenPerRound` delegations with a DS, each nameserver asked
 * over DNS on TCP at `port`, each question within `timeoutMs`, the round within
 * `roundTimeoutMs`. A child's request to remove its DS (RFC 8078 §4) is followed only with
 * `allowDelete`.
 */
const cdsSchema = z.strictObject({
  enabled: z.boolean().default(true),
  intervalSeconds: positiveIntSchema.default(CDS_POLL_INTERVAL_SECONDS),
  timeoutMs: timeoutMsSchema.default(CDS_QUERY_TIMEOUT_MS),
  roundTimeoutMs: timeoutMsSchema.default(CDS_ROUND_TIMEOUT_MS),
  maxChildrenPerRound: positiveIntSchema.default(CDS_MAX_CHILDREN_PER_ROUND),
  allowDelete: z.boolean().default(false),
  port: remotePortSchema.default(CDS_DNS_PORT),
});

/** A policy duration: whole seconds, 0 to {@link MAX_POLICY_SECONDS}. */
const policySecondsSchema = z.int().min(0).max(MAX_POLICY_SECONDS);

/**
 * `dnssec.policy`: the rollover policy of every zone's signing key (`keys/key-policy.ts`,
 * design §5, RFC 7583 timings). `rfc5011` absent: true for the root, false for a DP
 * ({@link rolloverPolicyOf}).
 */
const dnssecPolicySchema = z.strictObject({
  /** From a key's activation to its successor's roll; 0: rolls only by `keys roll`. */
  keyLifetimeSeconds: policySecondsSchema.default(DEFAULT_KEY_LIFETIME_SECONDS),
  /** Dprp: how long a change takes to reach every nameserver (and the parent's). */
  propagationDelaySeconds: policySecondsSchema.default(DEFAULT_PROPAGATION_DELAY_SECONDS),
  publishSafetySeconds: policySecondsSchema.default(DEFAULT_PUBLISH_SAFETY_SECONDS),
  retireSafetySeconds: policySecondsSchema.default(DEFAULT_RETIRE_SAFETY_SECONDS),
  /** The parent's DS TTL; absent: the TTL the parent serves, else 3600. */
  dsTtlSeconds: policySecondsSchema.optional(),
  /** Dreg: the parent's delay to act on a new CDS, used when `dnssec.parent` is empty. */
  registrationDelaySeconds: policySecondsSchema.default(DEFAULT_REGISTRATION_DELAY_SECONDS),
  rfc5011: z.boolean().optional(),
  addHoldDownSeconds: policySecondsSchema.default(DEFAULT_ADD_HOLD_DOWN_SECONDS),
  revokeSeconds: policySecondsSchema.default(DEFAULT_REVOKE_SECONDS),
});

/**
 * `dnssec`: key rollover (`keys/key-roller.ts`). `parent` lists the parent's nameservers (Do53,
 * asked over TCP) for the zones' DS, at most `MAX_PARENT_SERVERS`; empty: the roller assumes
 * the parent acts on a CDS within `registrationDelaySeconds`. `checkIntervalSeconds`: how often
 * a roll waiting on the parent or on the re-signing looks again. `roller: false` runs no roller
 * in this process (with the PostgreSQL store, run it in one front end only).
 */
const dnssecSchema = z.strictObject({
  policy: dnssecPolicySchema.prefault({}),
  parent: z
    .array(
      z.strictObject({
        address: z.string().refine((value) => isIP(value) !== 0, {
          error: 'expected an IP address',
        }),
        port: remotePortSchema.default(53),
      }),
    )
    .max(MAX_PARENT_SERVERS)
    .default([]),
  checkIntervalSeconds: positiveIntSchema.default(ROLLER_CHECK_INTERVAL_SECONDS),
  roller: z.boolean().default(true),
});

/**
 * `mspZone`: this DP is run by an MSP and takes publications for CSIs of any range in its zone
 * `zone` (one of its zones, checked at start), at their MAPREF-target names (design §8,
 * `registration/registration.ts`). The attestation's prover of such a CSI is checked against the
 * AUTHKEY RRset of the CSI's own range, fetched through `resolver` — a validating resolver of the
 * operator's own, whose AD bit the DP trusts (`registration/range-authkeys.ts`):
 * `https://host:port/dns-query` (DoH, its certificate verified with the CA file `ca` or the
 * system's CAs), or `udp://127.0.0.1:port` / `tcp://127.0.0.1:port` (loopback only). Each
 * question within `timeoutMs`; the AUTHKEY RRsets of at most `authkeyCacheEntries` zones kept,
 * each for its TTL (at most an hour).
 */
const mspZoneSchema = z
  .strictObject({
    zone: domainNameSchema,
    resolver: z.string().check((ctx) => {
      try {
        parseResolverEndpoint(ctx.value);
      } catch (error) {
        ctx.issues.push({
          code: 'custom',
          input: ctx.value,
          message: error instanceof Error ? error.message : String(error),
        });
      }
    }),
    ca: configPathSchema.optional(),
    authkeyCacheEntries: z
      .int()
      .min(1)
      .max(MAX_RANGE_AUTHKEY_CACHE_ENTRIES)
      .default(RANGE_AUTHKEY_CACHE_ENTRIES),
    timeoutMs: z.int().min(1).max(MAX_RANGE_AUTHKEY_TIMEOUT_MS).default(RANGE_AUTHKEY_TIMEOUT_MS),
  })
  .check((ctx) => {
    if (ctx.value.ca !== undefined && !ctx.value.resolver.startsWith('https:')) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        path: ['ca'],
        message: 'only for a DoH resolver (https://…)',
      });
    }
  });

/** The rollover policy of a server's zones, `rfc5011` defaulted by role (the root: true). */
export function rolloverPolicyOf(config: Pick<DpConfig, 'role' | 'dnssec'>): RolloverPolicy {
  const p = config.dnssec.policy;
  return { ...p, dsTtlSeconds: p.dsTtlSeconds, rfc5011: p.rfc5011 ?? config.role === 'root' };
}

/** Why the root refuses what only a DP has. */
const NO_REGISTRATION_API = 'not allowed when role is "root" (the root has no registration API)';

/**
 * Config of a Discovery Provider (`role: "dp"`) or of the root directory (`role: "root"`), with
 * defaults:
 *
 * ```json
 * { "role": "dp", "dataDir": "/var/lib/mimi-dp", "store": { "kind": "lmdb" }, "apex": "mimi.arpa",
 *   "listen": { "host": "127.0.0.1", "udp": null, "tcp": null, "doh": null, "api": null, "admin": null },
 *   "tls": { "cert": "…", "key": "…" },
 *   "signing": { "validityDays": 14, "refreshDays": 7 }, "answerCacheBytes": 67108864,
 *   "limits": {
 *     "tcp": { "maxConnections": 256, "connectionsPerClient": 32, "idleTimeoutMs": 10000,
 *              "messageTimeoutMs": 2000 },
 *     "doh": { "maxConnections": 1024, "connectionsPerClient": 128, "requestTimeoutMs": 10000,
 *              "idleTimeoutMs": 30000 },
 *     "api": {},
 *     "rrl": { "responsesPerSecond": 200, "denialsPerSecond": 200, "errorsPerSecond": 200,
 *              "burstSeconds": 15, "slip": 2, "maxEntries": 100000, "exempt": [] },
 *     "dohClients": { "queriesPerSecond": 1000, "queryBurst": 10000, "maxClients": 100000,
 *                     "exempt": [] } },
 *   "registration": { "codeTtlSeconds": 600, "maxAttemptsPerCode": 5, "sendsPerCsiPerHour": 5,
 *                     "requestsPerClientPerMinute": 60, "channels": {} },
 *   "transfer": { "transfersPerClient": 1, "maxTransfers": 16, "keys": [], "notify": [],
 *                 "notifyRetries": 5, "notifyTimeoutMs": 2000, "notifyCheckIntervalMs": 200 },
 *   "authkeyTtl": 300, "prover": { "authkeyValidityDays": 365, "renewBeforeDays": 30 },
 *   "log": { "level": "info" } }
 * ```
 *
 * `store` is `{ "kind": "postgres", "url": "postgresql://…", "poolSize": 4,
 * "statementTimeoutMs": 30000 }` for the PostgreSQL store shared by several front ends.
 *
 * `queryLog` (absent by default: no query log) is `{ "path": "…", "peer": false,
 * "bufferBytes": 1048576 }`: every DNS query answered, one JSON line each, with the client's
 * address only when `peer` is true. `journal` (absent by default: the store's limits) is
 * `{ "maxEntries": 10000, "maxOctets": 67108864 }`, the journal each zone keeps for IXFR.
 *
 * `mspZone` (absent by default: publications only for CSIs of the DP's own ranges) is
 * `{ "zone": "chat.example.email.mimi.arpa", "resolver": "https://127.0.0.1:8443/dns-query",
 * "ca": "…", "authkeyCacheEntries": 1024, "timeoutMs": 5000 }` (`mspZoneSchema`).
 *
 * `answerWorkers` (default 1: one process) is how many processes answer DNS over UDP and TCP
 * (`answering/answer-workers.ts`): a whole number from 1 to `MAX_ANSWER_WORKERS`, or `"auto"`
 * for `os.availableParallelism()`. Past 1 (also `"auto"`), `queryLog` and the PostgreSQL store
 * are refused. `answerWorkerAckMs` (default 2000) bounds how long a write waits for every answer
 * worker to confirm it sees it; a worker past it is killed and replaced.
 *
 * `cds` (polling the children's CDS, `cdsSchema`) defaults to `{ "enabled": true,
 * "intervalSeconds": 3600, "timeoutMs": 5000, "roundTimeoutMs": 120000,
 * "maxChildrenPerRound": 100, "allowDelete": false, "port": 53 }`.
 *
 * Ports are 0–65535 (0: ephemeral) or null (not served). Rules across keys: `tls` is required
 * when `listen.doh` or `listen.api` is set (`checkTlsForHttps` of `@mimi-discovery/common`);
 * `registration` and `limits.api` are refused for the root, and `registration` is filled with
 * its defaults for a DP; `transfer` (zone transfers and NOTIFY, see `transferSchema`) is filled
 * with its defaults for the root (AXFR of its zone by anyone) and absent for a DP unless given,
 * then with at least one key (a DP's zones are offered to its own secondaries only), each
 * `notify[].key` naming one of them, and `zones` only for a DP; `signing.refreshDays` is less
 * than `signing.validityDays`; each
 * `connectionsPerClient` is at most its `maxConnections`. `limits.api` (`maxConnections`,
 * `connectionsPerClient`, `headersTimeoutMs`, `bodyTimeoutMs`) keeps absent keys absent: the
 * registration API fills in its own defaults.
 */
export const dpConfigSchema = z
  .strictObject({
    role: z.enum(['dp', 'root']),
    dataDir: configPathSchema,
    /** The zone store: `{ "kind": "lmdb" }` (default) or `{ "kind": "postgres", "url": … }`. */
    store: storeSchema.default({ kind: 'lmdb' }),
    /** The key directory (`keysSchema`). */
    keys: keysSchema.prefault({}),
    apex: domainNameSchema.default(DEFAULT_APEX),
    listen: listenConfigSchema.prefault({}),
    tls: tlsConfigSchema.optional(),
    signing: signingSchema.prefault({}),
    /** Octets of encoded answers kept for reuse (`answer-cache.ts`). */
    answerCacheBytes: positiveIntSchema.default(ANSWER_CACHE_OCTETS),
    /**
     * Longest reuse of an answer in the answer cache, in seconds (`answer.ts`): writes and
     * mapping expiries drop answers as they happen; this bounds how old an online signature or a
     * negative answer's SOA can be when sent.
     */
    answerCacheMaxAgeSeconds: z
      .int()
      .min(1)
      .max(MAX_ANSWER_CACHE_MAX_AGE_SECONDS, {
        error: `must be at most ${MAX_ANSWER_CACHE_MAX_AGE_SECONDS} (a quarter of an online signature's validity)`,
      })
      .default(DP_ANSWER_CACHE_MAX_AGE_SECONDS),
    /**
     * Processes answering DNS over UDP and TCP (`answer-workers.ts`): 1 (this process alone),
     * up to `MAX_ANSWER_WORKERS`, or `"auto"` (one per core, `os.availableParallelism()`).
     */
    answerWorkers: z
      .union([z.int().min(1).max(MAX_ANSWER_WORKERS), z.literal('auto')], {
        error: `must be a whole number from 1 to ${MAX_ANSWER_WORKERS}, or "auto"`,
      })
      .default(1),
    /** How long a write waits for every answer worker's confirmation (ms). */
    answerWorkerAckMs: z
      .int()
      .min(MIN_ANSWER_WORKER_ACK_MS)
      .max(MAX_ANSWER_WORKER_ACK_MS)
      .default(ANSWER_WORKER_ACK_MS),
    limits: dpLimitsSchema.prefault({}),
    registration: registrationSchema.optional(),
    transfer: transferSchema.optional(),
    log: logConfigSchema.prefault({}),
    /** The query log (`query-log.ts` of `@mimi-discovery/common`); absent: none. */
    queryLog: queryLogConfigSchema.optional(),
    /** Each zone's journal for IXFR (`journalSchema`); absent: the store's defaults. */
    journal: journalSchema.optional(),
    /**
     * TTL of the apex AUTHKEY RRsets, in seconds: of new zones, and of existing ones from their
     * next AUTHKEY write (`keys add-prover`, `remove-prover`, `renew`, …).
     */
    authkeyTtl: z.int().min(0).max(MAX_TTL_SECONDS).default(DEFAULT_AUTHKEY_TTL_SECONDS),
    /** This DP's prover AUTHKEY: validity and renewal (`proverSchema`). */
    prover: proverSchema.prefault({}),
    /** Polling the children's CDS (`cdsSchema`). */
    cds: cdsSchema.prefault({}),
    /** Key rollover: policy, the parent's nameservers (`dnssecSchema`). */
    dnssec: dnssecSchema.prefault({}),
    /**
     * The control channel (`control.ts` of `@mimi-discovery/common`): `{ "socket": "…",
     * "keyFile": "…", "maxClients": 8, "timeoutMs": 10000 }`; absent: the socket at
     * `<dataDir>/control.sock` and no control over the admin port.
     */
    control: controlConfigSchema.optional(),
    /** Publications for CSIs of other ranges, in this MSP's zone (`mspZoneSchema`); absent: none. */
    mspZone: mspZoneSchema.optional(),
  })
  .check((ctx) => {
    checkTlsForHttps(ctx);
    const c = ctx.value;
    if (c.role === 'root' && c.listen.api !== null) {
      ctx.issues.push({
        code: 'custom',
        input: c,
        path: ['listen', 'api'],
        message: NO_REGISTRATION_API,
      });
    }
    if (c.role === 'root' && Object.keys(c.limits.api).length > 0) {
      ctx.issues.push({
        code: 'custom',
        input: c,
        path: ['limits', 'api'],
        message: NO_REGISTRATION_API,
      });
    }
    checkTransfer(ctx);
    if (c.answerWorkers !== 1) {
      // What answer workers cannot carry yet is refused, never silently left out.
      if (c.queryLog !== undefined) {
        ctx.issues.push({
          code: 'custom',
          input: c,
          path: ['queryLog'],
          message:
            'not allowed with answerWorkers other than 1 (the query log is written by one process)',
        });
      }
      if (c.store.kind === 'postgres') {
        ctx.issues.push({
          code: 'custom',
          input: c,
          path: ['store'],
          message:
            'the PostgreSQL store is not allowed with answerWorkers other than 1 (answer workers read the LMDB store)',
        });
      }
    }
    if (c.role === 'root' && c.dnssec.parent.length > 0) {
      ctx.issues.push({
        code: 'custom',
        input: c,
        path: ['dnssec', 'parent'],
        message: 'not allowed when role is "root" (the root has no parent)',
      });
    }
    if (c.role === 'root' && c.registration !== undefined) {
      ctx.issues.push({
        code: 'custom',
        input: c,
        path: ['registration'],
        message: 'not allowed when role is "root" (the root registers no CSIs)',
      });
    }
    if (c.role === 'root' && c.mspZone !== undefined) {
      ctx.issues.push({
        code: 'custom',
        input: c,
        path: ['mspZone'],
        message: NO_REGISTRATION_API,
      });
    }
  })
  .transform((c) => {
    if (c.role === 'dp' && c.registration === undefined) {
      return { ...c, registration: registrationSchema.parse({}) };
    }
    if (c.role === 'root' && c.transfer === undefined) {
      return { ...c, transfer: transferSchema.parse({}) };
    }
    return c;
  });

/** A Discovery Provider or root directory config, defaults filled in. */
export type DpConfig = z.output<typeof dpConfigSchema>;

/** The DP config as its cross-key checks see it: each section parsed, before the transform. */
type DpConfigInput = {
  role: 'dp' | 'root';
  transfer?: z.output<typeof transferSchema> | undefined;
};
