import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { z } from 'zod';
import { MimiError } from '../protocol/errors.js';
import { canonicalName, parseLabels } from '../protocol/names.js';
import { isCidr } from './client-limits.js';
import {
  DEFAULT_DOH_CONNECTIONS_PER_CLIENT,
  DEFAULT_DOH_IDLE_TIMEOUT_MS,
  DEFAULT_DOH_MAX_CONNECTIONS,
  DEFAULT_DOH_REQUEST_TIMEOUT_MS,
} from './doh-server.js';
import { QUERY_LOG_BUFFER_OCTETS } from './query-log.js';
import {
  DEFAULT_TCP_CONNECTIONS_PER_CLIENT,
  DEFAULT_TCP_IDLE_TIMEOUT_MS,
  DEFAULT_TCP_MAX_CONNECTIONS,
  DEFAULT_TCP_MESSAGE_TIMEOUT_MS,
} from './tcp-server.js';

/**
 * The one way servers read configuration (design §10): JSON, checked against a zod schema that
 * rejects unknown keys, defaults filled in, every problem reported with the path of its key:
 *
 * ```
 * dp.json: listen.udp: expected a port number 0–65535; unknown key "listne" in the top level
 * ```
 *
 * Schemas are built from `z.strictObject` so that a misspelt key is an error, not a silently
 * ignored setting. Each server's schema lives beside its server (`dpConfigSchema` in
 * `@mimi-discovery/authoritative`, `resolverConfigSchema` in `@mimi-discovery/resolver`); this
 * module holds what they share — the `listen`, `tls`, `limits.tcp`, `limits.doh` and `log`
 * sections, the value types they are built from, the rule that HTTPS listeners need `tls` — and
 * the root hints, which the root writes and the resolver reads.
 */

/** Every code a {@link ConfigError} can carry. */
export const CONFIG_ERROR_CODES = Object.freeze([
  /** Values that do not match the schema: unknown keys, wrong types, values out of range. */
  'ERR_CONFIG_INVALID',
  /** Text that is not JSON. */
  'ERR_CONFIG_SYNTAX',
  /** A config file that cannot be read. */
  'ERR_CONFIG_READ',
] as const);

/** A code from {@link CONFIG_ERROR_CODES}. */
export type ConfigErrorCode = (typeof CONFIG_ERROR_CODES)[number];

/** One problem with a config: where (`listen.udp`, empty for the top level) and what. */
export interface ConfigIssue {
  /** The key path as written in messages: `listen.udp`, `webhook.headers["X-Key"]`, `list[0]`. */
  path: string;
  /** The problem, without the path: `expected a port number 0–65535`. */
  message: string;
  /** An unknown key, reported as `unknown key "x" in <path>` rather than `<path>: …`. */
  unknownKey: boolean;
}

/** A config that cannot be used; the message lists every problem with its key path. */
export class ConfigError extends MimiError<ConfigErrorCode> {
  /** The file or other origin of the config, when known. */
  readonly source: string | undefined;
  /** The problems, in the order of the schema (empty for a syntax or read error). */
  readonly issues: readonly ConfigIssue[];

  constructor(
    code: ConfigErrorCode,
    message: string,
    source: string | undefined,
    issues: readonly ConfigIssue[] = [],
    options?: { cause?: unknown },
  ) {
    super(code, source === undefined ? message : `${source}: ${message}`, options);
    this.source = source;
    this.issues = issues;
  }
}

/**
 * Checks a parsed config (`unknown`, e.g. from `JSON.parse`) against `schema` and returns it
 * with defaults filled in. Throws {@link ConfigError} `ERR_CONFIG_INVALID` listing every
 * problem: `listen.udp: expected a port number 0–65535; unknown key "listne" in the top level`,
 * prefixed with `source` when given.
 */
export function parseConfig<T>(schema: z.ZodType<T>, raw: unknown, source?: string): T {
  const result = schema.safeParse(raw, { error: fallbackMessage });
  if (result.success) return result.data;
  const issues = result.error.issues.map(toIssue);
  return fail(issues, source);
}

function fail(issues: ConfigIssue[], source: string | undefined): never {
  throw new ConfigError('ERR_CONFIG_INVALID', issues.map(describeIssue).join('; '), source, issues);
}

/** An issue as one phrase: `listen.udp: expected …` or `unknown key "x" in listen`. */
function describeIssue(issue: ConfigIssue): string {
  if (issue.unknownKey) return `${issue.message} in ${issue.path || 'the top level'}`;
  return `${issue.path || 'the top level'}: ${issue.message}`;
}

function toIssue(issue: z.core.$ZodIssue): ConfigIssue {
  const path = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => JSON.stringify(k));
    const message =
      keys.length === 1 ? `unknown key ${keys[0]}` : `unknown keys ${keys.join(', ')}`;
    return { path, message, unknownKey: true };
  }
  return { path, message: issue.message, unknownKey: false };
}

/** `['listen', 'udp']` → `listen.udp`; `['h', 'X-Key', 0]` → `h["X-Key"][0]`. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(segment)) {
      out += out === '' ? segment : `.${segment}`;
    } else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

/** Messages for issues whose schema gives none, in the project's words rather than zod's. */
function fallbackMessage(issue: z.core.$ZodRawIssue): string {
  if (issue.input === undefined && issue.code !== 'custom') return 'required';
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${expectedName(issue.expected)}, found ${valueKind(issue.input)}`;
    case 'too_small':
      if (issue.origin === 'string' && Number(issue.minimum) === 1) return 'must not be empty';
      return issue.origin === 'array'
        ? `must list at least ${issue.minimum}`
        : `must be at least ${issue.minimum}`;
    case 'too_big':
      return issue.origin === 'string'
        ? `must be at most ${issue.maximum} characters`
        : `must be at most ${issue.maximum}`;
    case 'invalid_value': {
      const values = issue.values.map((v) => JSON.stringify(v));
      return values.length <= 2
        ? `expected ${values.join(' or ')}`
        : `expected one of ${values.join(', ')}`;
    }
    case 'invalid_format':
      return `not a valid ${issue.format === 'url' ? 'URL' : issue.format}`;
    default:
      return issue.message ?? 'invalid value';
  }
}

function expectedName(expected: string): string {
  switch (expected) {
    case 'int':
      return 'a whole number';
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'an object';
    case 'array':
      return 'a list';
    case 'record':
      return 'an object';
    default:
      return `a ${expected}`;
  }
}

function valueKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : 'a fraction';
  return typeof value;
}

/**
 * Parses JSON config text and checks it against `schema` ({@link parseConfig}). A syntax error
 * is a {@link ConfigError} `ERR_CONFIG_SYNTAX` that names the line and column when the runtime
 * reports a position: `dp.json: invalid JSON at line 3, column 3: Expected ',' or '}' after
 * property value`.
 */
export function parseConfigText<T>(text: string, schema: z.ZodType<T>, source?: string): T {
  // A UTF-8 byte order mark is not JSON, but editors write one.
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (cause) {
    throw new ConfigError('ERR_CONFIG_SYNTAX', jsonSyntaxMessage(body, cause), source, [], {
      cause,
    });
  }
  return parseConfig(schema, raw, source);
}

function jsonSyntaxMessage(text: string, cause: unknown): string {
  const detail = cause instanceof Error ? cause.message : String(cause);
  const at = /\s*in JSON at position (\d+)(?: \(line \d+ column \d+\))?/.exec(detail);
  const position =
    at !== null ? Number(at[1]) : /end of JSON input/.test(detail) ? text.length : -1;
  const reason = at !== null ? detail.replace(at[0], '') : detail;
  if (position < 0) return `invalid JSON: ${reason}`;
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `invalid JSON at line ${line}, column ${column}: ${reason}`;
}

/**
 * Reads a JSON config file and checks it ({@link parseConfigText}); messages start with the
 * path. A file that cannot be read is a {@link ConfigError} `ERR_CONFIG_READ`.
 */
export async function readConfigFile<T>(path: string, schema: z.ZodType<T>): Promise<T> {
  return parseConfigText(await readConfigText(path, 'config file'), schema, path);
}

/**
 * Reads a file a config names (or the config file itself), as UTF-8 text. A file that cannot be
 * read is a {@link ConfigError} `ERR_CONFIG_READ` for `path`: `cannot read the <what>: <why>`.
 */
export async function readConfigText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new ConfigError('ERR_CONFIG_READ', `cannot read the ${what}: ${why}`, path, [], {
      cause,
    });
  }
}

/**
 * The PEM files of a `tls` section ({@link tlsConfigSchema}), each path resolved by `at`
 * (relative to the config file's directory); {@link readConfigText}'s errors.
 */
export async function readTlsFiles(
  tls: { readonly cert: string; readonly key: string },
  at: (path: string) => string,
): Promise<{ cert: string; key: string }> {
  return {
    cert: await readConfigText(at(tls.cert), 'tls.cert'),
    key: await readConfigText(at(tls.key), 'tls.key'),
  };
}

// ---------------------------------------------------------------------------------------------
// Building blocks

const PORT_MESSAGE = 'expected a port number 0–65535';

/** A port to listen on: 0–65535, 0 for an ephemeral port chosen by the system. */
export const listenPortSchema = z
  .int({ error: PORT_MESSAGE })
  .min(0, { error: PORT_MESSAGE })
  .max(65535, { error: PORT_MESSAGE });

const REMOTE_PORT_MESSAGE = 'expected a port number 1–65535';

/** A port to connect to: 1–65535. */
export const remotePortSchema = z
  .int({ error: REMOTE_PORT_MESSAGE })
  .min(1, { error: REMOTE_PORT_MESSAGE })
  .max(65535, { error: REMOTE_PORT_MESSAGE });

/** A file or directory path, as written (relative paths are resolved by the loader). */
export const configPathSchema = z.string().min(1);

/** A whole number of at least 1. */
export const positiveIntSchema = z.int().min(1);

/**
 * Client ranges exempt from a server's per-client limits (trusted back ends): each a CIDR range
 * (`192.0.2.0/24`, `2001:db8::/48`) or a single IP address.
 */
export const cidrListSchema = z.array(
  z.string().refine(isCidr, {
    error: 'expected a CIDR range (192.0.2.0/24, 2001:db8::/48) or an IP address',
  }),
);

/** An address to listen on: an IP address or a host name. */
export const listenHostSchema = z
  .string()
  .refine(
    (value) =>
      isIP(value) !== 0 ||
      /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(
        value,
      ),
    { error: 'expected an IP address or a host name' },
  );

/** A domain name in presentation form, returned in canonical form (`Mimi.Arpa.` → `mimi.arpa`). */
export const domainNameSchema = z
  .string()
  .check((ctx) => {
    try {
      if (ctx.value === '' || ctx.value === '.') throw new Error('the root is not allowed');
      parseLabels(ctx.value);
    } catch (error) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        message: `not a domain name (${error instanceof Error ? error.message : String(error)})`,
      });
    }
  })
  .transform(canonicalName);

/** A timeout in milliseconds: 1 to 2^31 − 1, what node's timers take. */
export const timeoutMsSchema = z
  .int()
  .min(1)
  .max(2 ** 31 - 1);

/** What a zod check function (`.check(fn)`) is given: the value and the issues so far. */
export interface ConfigCheckContext<T> {
  value: T;
  issues: z.core.$ZodRawIssue[];
}

/**
 * `connectionsPerClient` of a listener's limits is at most its `maxConnections`: a check for
 * the `limits` section of every listener (`.check(checkConnectionsPerClient)`).
 */
export function checkConnectionsPerClient(
  ctx: ConfigCheckContext<{
    maxConnections?: number | undefined;
    connectionsPerClient?: number | undefined;
  }>,
): void {
  const { maxConnections, connectionsPerClient } = ctx.value;
  if (
    ctx.issues.length === 0 &&
    maxConnections !== undefined &&
    connectionsPerClient !== undefined &&
    connectionsPerClient > maxConnections
  ) {
    ctx.issues.push({
      code: 'custom',
      input: ctx.value,
      path: ['connectionsPerClient'],
      message: 'must not exceed maxConnections',
    });
  }
}

/**
 * A listener's per-client cap: as given, else `perClientDefault` but never more than the
 * listener's `maxConnections` (so that a small cap alone is a valid config).
 */
function fillPerClient<
  T extends { maxConnections: number; connectionsPerClient?: number | undefined },
>(
  perClientDefault: number,
): (value: T) => Omit<T, 'connectionsPerClient'> & { connectionsPerClient: number } {
  return (value) => ({
    ...value,
    connectionsPerClient:
      value.connectionsPerClient ?? Math.min(perClientDefault, value.maxConnections),
  });
}

// ---------------------------------------------------------------------------------------------
// Sections every server config has

/**
 * `listen`: where a server's listeners bind, each a port, 0 (ephemeral) or null (off). A DP,
 * the root and a resolver have the same listeners; what `api` serves depends on the server.
 */
export const listenConfigSchema = z.strictObject({
  host: listenHostSchema.default('127.0.0.1'),
  /** Plain DNS over UDP (stub resolvers, diagnostics and stock tools, design §7). */
  udp: listenPortSchema.nullable().default(null),
  /** Plain DNS over TCP. */
  tcp: listenPortSchema.nullable().default(null),
  /** DNS over HTTPS (RFC 8484). */
  doh: listenPortSchema.nullable().default(null),
  /** HTTPS JSON: a DP's registration API (design §8), a resolver's discovery API (design §7). */
  api: listenPortSchema.nullable().default(null),
  /** Health and metrics (plain HTTP; bind it to a private address). */
  admin: listenPortSchema.nullable().default(null),
});

/** `tls`: the certificate chain and private key (PEM files) of the HTTPS listeners. */
export const tlsConfigSchema = z.strictObject({ cert: configPathSchema, key: configPathSchema });

/**
 * The rule across `listen` and `tls` of every server config: DoH and the HTTPS JSON APIs are
 * served over TLS only (design §7, R7), so `tls` is required when `listen.doh` or `listen.api`
 * is set. A check for a server's whole config (`.check(...)`); ports absent or null are off.
 */
export function checkTlsForHttps(
  ctx: ConfigCheckContext<{
    listen: { doh?: number | null | undefined; api?: number | null | undefined };
    tls?: unknown;
  }>,
): void {
  const { listen, tls } = ctx.value;
  if (tls === undefined && ((listen.doh ?? null) !== null || (listen.api ?? null) !== null)) {
    ctx.issues.push({
      code: 'custom',
      input: ctx.value,
      path: ['tls'],
      message: 'required when listen.doh or listen.api is set',
    });
  }
}

/**
 * `limits.tcp`: DNS over TCP (`tcp-server.ts`). A connection past its client's share is closed
 * at accept; at `maxConnections` the oldest idle connection of the client holding the most is
 * evicted (`connection-limits.ts`).
 */
export const tcpLimitsConfigSchema = z
  .strictObject({
    maxConnections: positiveIntSchema.default(DEFAULT_TCP_MAX_CONNECTIONS),
    connectionsPerClient: positiveIntSchema.optional(),
    /** A connection with no query in flight is closed this long after its last answer. */
    idleTimeoutMs: timeoutMsSchema.default(DEFAULT_TCP_IDLE_TIMEOUT_MS),
    /** A message must arrive whole within this long of its first octet. */
    messageTimeoutMs: timeoutMsSchema.default(DEFAULT_TCP_MESSAGE_TIMEOUT_MS),
  })
  .check(checkConnectionsPerClient)
  .transform(fillPerClient(DEFAULT_TCP_CONNECTIONS_PER_CLIENT));

/** `limits.doh`: DNS over HTTPS (`doh-server.ts`). */
export const dohLimitsConfigSchema = z
  .strictObject({
    maxConnections: positiveIntSchema.default(DEFAULT_DOH_MAX_CONNECTIONS),
    connectionsPerClient: positiveIntSchema.optional(),
    /** TLS handshake, headers, body: each within this long of its start. */
    requestTimeoutMs: timeoutMsSchema.default(DEFAULT_DOH_REQUEST_TIMEOUT_MS),
    /** A connection with no request in progress is closed this long after its last response. */
    idleTimeoutMs: timeoutMsSchema.default(DEFAULT_DOH_IDLE_TIMEOUT_MS),
  })
  .check(checkConnectionsPerClient)
  .transform(fillPerClient(DEFAULT_DOH_CONNECTIONS_PER_CLIENT));

/**
 * `queryLog`: the query log (`query-log.ts`), off when absent. `path` is the file lines are
 * appended to; `peer` adds the client's address to each line (off by default: a line then holds
 * a query name and its sender); `bufferBytes` bounds the lines waiting for the disk.
 */
export const queryLogConfigSchema = z.strictObject({
  path: configPathSchema,
  peer: z.boolean().default(false),
  bufferBytes: positiveIntSchema.default(QUERY_LOG_BUFFER_OCTETS),
});

/** The log levels of `log.ts`. */
const logLevel = z.enum(['debug', 'info', 'warn', 'error', 'silent']);

/** `log`: `{ "level": "info" }`. */
export const logConfigSchema = z.strictObject({ level: logLevel.default('info') });

// ---------------------------------------------------------------------------------------------
// Root hints

/** An IP address (glue of a root server in root hints). */
const ipAddress = z.string().refine((value) => isIP(value) !== 0, {
  error: 'expected an IPv4 or IPv6 address',
});

/**
 * One root server of the root hints, as `mimi-discovery hints` writes it. Without `port`, plain
 * DNS goes to port 53; without `doh`, DoH goes to `https://<address>/dns-query` (design §7).
 */
const rootServerHintSchema = z
  .strictObject({
    name: domainNameSchema,
    addresses: z.array(ipAddress),
    /** Plain DNS port, UDP and TCP. */
    port: remotePortSchema.optional(),
    /** DoH URL (RFC 8484). */
    doh: z.url({ protocol: /^https$/, error: 'expected an https URL' }).optional(),
  })
  .check((ctx) => {
    const s = ctx.value;
    if (s.addresses.length === 0 && s.doh === undefined) {
      ctx.issues.push({
        code: 'custom',
        input: s,
        message: 'needs addresses or a doh URL: the server cannot be reached otherwise',
      });
    }
  });

/**
 * Root hints, the JSON file `mimi-discovery hints` writes: where resolvers reach the root
 * directory's servers. The apex is returned in canonical form.
 *
 * ```json
 * { "apex": "mimi.arpa",
 *   "servers": [ { "name": "ns1.mimi.arpa", "addresses": ["127.0.0.1"], "port": 5300,
 *                  "doh": "https://127.0.0.1:8443/dns-query" } ] }
 * ```
 *
 * The one schema of the format: `@mimi-discovery/root` reads hints with it, and so does the
 * resolver, which must not depend on the root (design §2).
 */
export const rootHintsSchema = z.strictObject({
  apex: domainNameSchema,
  servers: z.array(rootServerHintSchema).min(1),
});

/** Root hints, checked ({@link rootHintsSchema}). */
export type RootHintsFile = z.output<typeof rootHintsSchema>;
