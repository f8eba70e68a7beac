import { dirname, resolve as resolvePath } from 'node:path';
import {
  checkConnectionsPerClient,
  configPathSchema,
  logConfigSchema,
  positiveIntSchema,
  readConfigFile,
  readTlsFiles,
  listenPortSchema,
  timeoutMsSchema,
  tlsConfigSchema,
  type LogLevel,
} from '@mimi-discovery/common';
import { z } from 'zod';

/**
 * An issuer's config (design §10), beside the issuer: the schema of its JSON file and the
 * loader that reads it and the TLS files it names. Relative paths are relative to the file.
 *
 * ```json
 * { "listen": { "host": "127.0.0.1", "api": 8463, "admin": 9163 },
 *   "tls": { "cert": "issuer-cert.pem", "key": "issuer-key.pem" },
 *   "dataDir": "data", "keyDir": "keys",
 *   "tokensPerPeriod": 100, "periodSeconds": 86400,
 *   "users": [ { "id": "alice", "credentialSha256": "<64 hex digits>" } ] }
 * ```
 */

/** Default tokens a user gets per period: with 100 CSIs a token, 10,000 CSIs a day. */
export const DEFAULT_TOKENS_PER_PERIOD = 100;
/** Default length of a quota period: a day. */
export const DEFAULT_PERIOD_SECONDS = 86_400;
/** Default time a token key is the signing key before the next one takes over: a week. */
export const DEFAULT_KEY_LIFETIME_SECONDS = 7 * 86_400;
/**
 * Default time a token key stays valid after the next one takes over, so that tokens issued
 * just before a rotation can still be redeemed: a day.
 */
export const DEFAULT_KEY_OVERLAP_SECONDS = 86_400;
/**
 * Default time a new token key is listed in the public-key file before it signs: a day, for
 * `keys publish` to put it in the tree and gateways to fetch it (at the KEYCONF TTL) before
 * any token of it is redeemed. The first key of an empty key directory signs at once.
 */
export const DEFAULT_KEY_PREPUBLISH_SECONDS = 86_400;
/** Shortest key lifetime accepted: rotation is checked every minute. */
export const MIN_KEY_LIFETIME_SECONDS = 300;
/** Shortest quota period accepted. */
export const MIN_PERIOD_SECONDS = 60;
/** Most users one issuer config holds: each request compares its credential with every one. */
export const MAX_ISSUER_USERS = 100_000;
/** Default most connections of the token API at once. */
export const DEFAULT_ISSUER_MAX_CONNECTIONS = 512;
/** Default most connections of one client (IPv4 address, IPv6 /64): an eighth of the cap. */
export const DEFAULT_ISSUER_CONNECTIONS_PER_CLIENT = 64;
/** Default bound on a request's TLS handshake, its headers and its body, each. */
export const DEFAULT_ISSUER_REQUEST_TIMEOUT_MS = 10_000;
/** Default: a connection with no request in progress is closed this long after its last response. */
export const DEFAULT_ISSUER_IDLE_TIMEOUT_MS = 30_000;
/**
 * Default most signings waiting or running at once. A signing takes about a millisecond of CPU
 * (OpenSSL's raw RSA, `issueToken`), but each waits for its count's flush to disk; past this
 * many, requests get 503 with `retry-after` rather than queue for ever.
 */
export const DEFAULT_MAX_PENDING_SIGNINGS = 32;

/** A user id: what counters and logs name; never the credential. */
const userIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9._@+-]{1,128}$/, { error: 'expected 1–128 of A–Z a–z 0–9 . _ @ + -' });

/** One user: an id and SHA-256 of its bearer credential, lowercase hex. */
export const issuerUserSchema = z.strictObject({
  id: userIdSchema,
  credentialSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, { error: 'expected SHA-256 as 64 lowercase hex digits' }),
});

/** `limits` of an issuer: the token API's connections, deadlines and signing queue. */
const issuerLimitsSchema = z
  .strictObject({
    maxConnections: positiveIntSchema.default(DEFAULT_ISSUER_MAX_CONNECTIONS),
    connectionsPerClient: positiveIntSchema.optional(),
    requestTimeoutMs: timeoutMsSchema.default(DEFAULT_ISSUER_REQUEST_TIMEOUT_MS),
    idleTimeoutMs: timeoutMsSchema.default(DEFAULT_ISSUER_IDLE_TIMEOUT_MS),
    maxPendingSignings: positiveIntSchema.default(DEFAULT_MAX_PENDING_SIGNINGS),
  })
  .check(checkConnectionsPerClient);

/** The issuer's config file. */
export const issuerConfigSchema = z
  .strictObject({
    listen: z.strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      /** The token API (HTTPS): the issuer directory and the token requests. */
      api: listenPortSchema,
      /** Health and metrics (plain HTTP; bind it to a private address). */
      admin: listenPortSchema.nullable().default(null),
    }),
    tls: tlsConfigSchema,
    /** The LMDB environment of the per-user counters. */
    dataDir: configPathSchema,
    /** The token keys (files 0600) and `issuer-public-keys.json`. */
    keyDir: configPathSchema,
    tokensPerPeriod: positiveIntSchema.default(DEFAULT_TOKENS_PER_PERIOD),
    periodSeconds: z.int().min(MIN_PERIOD_SECONDS).default(DEFAULT_PERIOD_SECONDS),
    keyLifetimeSeconds: z.int().min(MIN_KEY_LIFETIME_SECONDS).default(DEFAULT_KEY_LIFETIME_SECONDS),
    keyOverlapSeconds: z.int().min(0).default(DEFAULT_KEY_OVERLAP_SECONDS),
    keyPrepublishSeconds: z.int().min(0).default(DEFAULT_KEY_PREPUBLISH_SECONDS),
    users: z.array(issuerUserSchema).max(MAX_ISSUER_USERS).default([]),
    limits: issuerLimitsSchema.default(() => issuerLimitsSchema.parse({})),
    log: logConfigSchema.default({ level: 'info' }),
  })
  .check((ctx) => {
    const c = ctx.value;
    if (ctx.issues.length > 0) return;
    if (c.keyPrepublishSeconds >= c.keyLifetimeSeconds) {
      ctx.issues.push({
        code: 'custom',
        input: c,
        path: ['keyPrepublishSeconds'],
        message: 'must be less than keyLifetimeSeconds',
      });
    }
    const seen = new Map<string, number>();
    const hashes = new Map<string, number>();
    c.users.forEach((user, i) => {
      if (seen.has(user.id)) {
        ctx.issues.push({
          code: 'custom',
          input: user,
          path: ['users', i, 'id'],
          message: `duplicates users[${seen.get(user.id)}].id`,
        });
      }
      if (hashes.has(user.credentialSha256)) {
        ctx.issues.push({
          code: 'custom',
          input: user,
          path: ['users', i, 'credentialSha256'],
          message: `duplicates users[${hashes.get(user.credentialSha256)}].credentialSha256`,
        });
      }
      seen.set(user.id, i);
      hashes.set(user.credentialSha256, i);
    });
  });

/** An issuer config file as written. */
export type IssuerFileConfig = z.output<typeof issuerConfigSchema>;
/** One user of the config. */
export type IssuerUser = z.output<typeof issuerUserSchema>;

/** An issuer config, read: its paths absolute, its TLS files read. */
export interface IssuerConfig {
  /** Absolute path of the config file, when read from one. */
  readonly source?: string;
  readonly listen: IssuerFileConfig['listen'];
  /** PEM certificate chain and key of the token API. */
  readonly tls: { readonly cert: string; readonly key: string };
  readonly dataDir: string;
  readonly keyDir: string;
  readonly tokensPerPeriod: number;
  readonly periodSeconds: number;
  readonly keyLifetimeSeconds: number;
  readonly keyOverlapSeconds: number;
  readonly keyPrepublishSeconds: number;
  readonly users: readonly IssuerUser[];
  readonly limits: IssuerFileConfig['limits'];
  readonly log: { readonly level: LogLevel };
}

/**
 * Reads an issuer config file ({@link issuerConfigSchema}) and its TLS files. Throws
 * `ConfigError` (`ERR_CONFIG_READ`, `ERR_CONFIG_SYNTAX`, `ERR_CONFIG_INVALID`) naming the file
 * and the key.
 */
export async function loadIssuerConfig(path: string): Promise<IssuerConfig> {
  const source = resolvePath(path);
  const file = await readConfigFile(source, issuerConfigSchema);
  const at = (p: string): string => resolvePath(dirname(source), p);
  return {
    source,
    listen: file.listen,
    tls: await readTlsFiles(file.tls, at),
    dataDir: at(file.dataDir),
    keyDir: at(file.keyDir),
    tokensPerPeriod: file.tokensPerPeriod,
    periodSeconds: file.periodSeconds,
    keyLifetimeSeconds: file.keyLifetimeSeconds,
    keyOverlapSeconds: file.keyOverlapSeconds,
    keyPrepublishSeconds: file.keyPrepublishSeconds,
    users: file.users,
    limits: file.limits,
    log: file.log,
  };
}
