import { dirname, resolve as resolvePath } from 'node:path';
import {
  ConfigError,
  QUERY_LOG_BUFFER_OCTETS,
  DEFAULT_LIMITED_CLIENTS,
  checkConnectionsPerClient,
  cidrListSchema,
  configPathSchema,
  logConfigSchema,
  parseConfig,
  positiveIntSchema,
  readConfigFile,
  readConfigText,
  readTlsFiles,
  listenHostSchema,
  listenPortSchema,
  timeoutMsSchema,
  tlsConfigSchema,
  type ConfigCheckContext,
  type LogLevel,
} from '@mimi-discovery/common';
import { z } from 'zod';
import {
  DEFAULT_RELAY_CONNECT_TIMEOUT_MS,
  DEFAULT_RELAY_FORWARDS_PER_CLIENT,
  DEFAULT_RELAY_FORWARD_TIMEOUT_MS,
  DEFAULT_RELAY_GATEWAY_CONNECTIONS,
  DEFAULT_RELAY_IDLE_TIMEOUT_MS,
  DEFAULT_RELAY_MAX_CONNECTIONS,
  DEFAULT_RELAY_MAX_FORWARDS,
  DEFAULT_RELAY_MAX_REQUEST_OCTETS,
  DEFAULT_RELAY_MAX_RESPONSE_OCTETS,
  DEFAULT_RELAY_REQUEST_BURST,
  DEFAULT_RELAY_REQUEST_TIMEOUT_MS,
  DEFAULT_RELAY_REQUESTS_PER_SECOND,
} from './limits.js';
import { GATEWAY_NAME_PATTERN, targetAuthority } from './routes.js';

/**
 * The relay's config (design §10), beside its server: the schema of its file, each rule across
 * keys stated once in it, and the loader that reads the file and the files it names.
 *
 * ```json
 * { "listen": { "host": "127.0.0.1", "relay": 15329, "admin": 15330 },
 *   "tls": { "cert": "relay-cert.pem", "key": "relay-key.pem" },
 *   "ca": "ca/ca.pem",
 *   "gateways": { "resolver": "https://127.0.0.1:15322/.well-known/ohttp-gateway" },
 *   "odohTargets": ["127.0.0.1:15322"],
 *   "limits": { "maxRequestOctets": 65536, "forwardTimeoutMs": 10000, … },
 *   "queryLog": { "path": "relay-queries.jsonl" },
 *   "log": { "level": "info" } }
 * ```
 *
 * ```ts
 * const config = await loadRelayConfig('/etc/mimi/relay.json');
 * const relay = await startRelay(config, { log });
 * ```
 */

/** `listen`: the relay's HTTPS port (0: ephemeral) and the admin port (null: off). */
const relayListenSchema = z.strictObject({
  host: listenHostSchema.default('127.0.0.1'),
  /** The relay resources and the ODoH proxy, HTTPS (HTTP/2 and HTTP/1.1). */
  relay: listenPortSchema,
  /** Health and metrics (plain HTTP; bind it to a private address). */
  admin: listenPortSchema.nullable().default(null),
});

/**
 * `limits`: every bound of `limits.ts`, each with its default. `forwardsPerClient` is at most
 * `maxForwards`, `connectionsPerClient` at most `maxConnections`; `connectionsPerClient` absent
 * is the listener's default share of `maxConnections`.
 */
export const relayLimitsSchema = z
  .strictObject({
    /** Largest request body forwarded, octets. */
    maxRequestOctets: positiveIntSchema.default(DEFAULT_RELAY_MAX_REQUEST_OCTETS),
    /** Largest gateway response body taken, octets. */
    maxResponseOctets: positiveIntSchema.default(DEFAULT_RELAY_MAX_RESPONSE_OCTETS),
    /** One forward, request sent to response read, connecting included. */
    forwardTimeoutMs: timeoutMsSchema.default(DEFAULT_RELAY_FORWARD_TIMEOUT_MS),
    /** TCP and TLS to a gateway. */
    connectTimeoutMs: timeoutMsSchema.default(DEFAULT_RELAY_CONNECT_TIMEOUT_MS),
    /** Forwards in progress at once, every client. */
    maxForwards: positiveIntSchema.default(DEFAULT_RELAY_MAX_FORWARDS),
    /** Forwards in progress at once, one client. */
    forwardsPerClient: positiveIntSchema.default(DEFAULT_RELAY_FORWARDS_PER_CLIENT),
    /** Connections kept open to one gateway. */
    gatewayConnections: positiveIntSchema.default(DEFAULT_RELAY_GATEWAY_CONNECTIONS),
    /** A client's token bucket: requests earned per second, and the most it holds. */
    requestsPerSecond: positiveIntSchema.default(DEFAULT_RELAY_REQUESTS_PER_SECOND),
    requestBurst: positiveIntSchema.default(DEFAULT_RELAY_REQUEST_BURST),
    /** Most clients the token buckets track (least recently active dropped first). */
    maxClients: positiveIntSchema.default(DEFAULT_LIMITED_CLIENTS),
    /** Clients never rate limited, as CIDR ranges or addresses (the concurrency caps hold). */
    exempt: cidrListSchema.default([]),
    /** TLS handshake, headers, body of a client's request: each within this long of its start. */
    requestTimeoutMs: timeoutMsSchema.default(DEFAULT_RELAY_REQUEST_TIMEOUT_MS),
    /** A connection with no request in progress is closed this long after its last response. */
    idleTimeoutMs: timeoutMsSchema.default(DEFAULT_RELAY_IDLE_TIMEOUT_MS),
    maxConnections: positiveIntSchema.default(DEFAULT_RELAY_MAX_CONNECTIONS),
    connectionsPerClient: positiveIntSchema.exactOptional(),
  })
  .check(checkConnectionsPerClient)
  .check((ctx) => {
    if (ctx.issues.length > 0) return;
    if (ctx.value.forwardsPerClient > ctx.value.maxForwards) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        path: ['forwardsPerClient'],
        message: 'must not exceed maxForwards',
      });
    }
  });

/** The relay's bounds, defaults filled in ({@link relayLimitsSchema}). */
export type RelayLimits = z.output<typeof relayLimitsSchema>;
/** The relay's bounds as given in code or a file, each one optional. */
export type RelayLimitsInput = z.input<typeof relayLimitsSchema>;

/**
 * `limits` with defaults filled in, checked by the file's rules: a `ConfigError`
 * `ERR_CONFIG_INVALID` (`limits: forwardsPerClient: must not exceed maxForwards`) for settings
 * built in code that a config file could not hold.
 */
export function resolveRelayLimits(input: RelayLimitsInput = {}): RelayLimits {
  return parseConfig(relayLimitsSchema, input, 'limits');
}

/** A gateway's URL: https only (design §7, R7: every hop encrypted). */
const gatewayUrlSchema = z.url({
  protocol: /^https$/,
  error: 'expected an https URL (the gateway resource, …/.well-known/ohttp-gateway)',
});

/** `gateways`: relay resource name → gateway URL. */
const gatewaysSchema = z.record(z.string(), gatewayUrlSchema).check((ctx) => {
  for (const name of Object.keys(ctx.value)) {
    if (!GATEWAY_NAME_PATTERN.test(name)) {
      ctx.issues.push({
        code: 'custom',
        input: name,
        path: [name],
        message: 'a gateway name is a lowercase label: letters, digits, inner hyphens',
      });
    }
  }
});

/** `odohTargets`: the ODoH targets the proxy forwards to, each `host:port` (port default 443). */
const odohTargetsSchema = z.array(
  z.string().refine((value) => targetAuthority(value) !== undefined, {
    error: 'expected host:port (an ODoH target, e.g. resolver.example:443)',
  }),
);

/** `gateways` and `odohTargets`: where the relay forwards. */
const relayForwardingShape = {
  gateways: gatewaysSchema.default({}),
  odohTargets: odohTargetsSchema.default([]),
};

/** The rule across them: at least one is given, else the relay forwards nothing. */
function checkForwarding(
  ctx: ConfigCheckContext<{ gateways: Record<string, string>; odohTargets: string[] }>,
): void {
  const c = ctx.value;
  if (Object.keys(c.gateways).length === 0 && c.odohTargets.length === 0) {
    ctx.issues.push({
      code: 'custom',
      input: c,
      path: ['gateways'],
      message: 'give at least one gateway or ODoH target: the relay would forward nothing',
    });
  }
}

/**
 * Where the relay forwards, by the rules of a config file: the schema of settings given in code
 * ({@link checkRelayForwarding}).
 */
export const relayForwardingSchema = z.strictObject(relayForwardingShape).check(checkForwarding);

/**
 * `gateways` and `odohTargets` given in code (`startRelay`'s settings), checked by the rules of
 * a config file: a `ConfigError` `ERR_CONFIG_INVALID` naming the key at fault.
 */
export function checkRelayForwarding(settings: {
  readonly gateways?: Readonly<Record<string, string>> | undefined;
  readonly odohTargets?: readonly string[] | undefined;
}): z.output<typeof relayForwardingSchema> {
  return parseConfig(relayForwardingSchema, {
    ...(settings.gateways === undefined ? {} : { gateways: settings.gateways }),
    ...(settings.odohTargets === undefined ? {} : { odohTargets: settings.odohTargets }),
  });
}

/** `queryLog`: a line per request (time, client, route, octets, status), never a body. */
const relayQueryLogSchema = z.strictObject({
  path: configPathSchema,
  bufferBytes: positiveIntSchema.default(QUERY_LOG_BUFFER_OCTETS),
});

/**
 * Config of a relay (`mimi-discovery relay serve`). `listen.relay` (0–65535; 0 ephemeral) and
 * `tls` are required; `ca` (optional) is a PEM file of CA certificates trusted for the
 * gateways' certificates instead of the system's; at least one of `gateways` and `odohTargets`
 * is given, else the relay forwards nothing.
 */
export const relayConfigSchema = z
  .strictObject({
    listen: relayListenSchema,
    tls: tlsConfigSchema,
    ca: configPathSchema.optional(),
    sourceAddress: z.union([z.ipv4(), z.ipv6()]).optional(),
    ...relayForwardingShape,
    limits: relayLimitsSchema.prefault({}),
    queryLog: relayQueryLogSchema.optional(),
    log: logConfigSchema.prefault({}),
  })
  .check(checkForwarding);

/** A relay config file, defaults filled in; paths as written in the file. */
export type RelayFileConfig = z.output<typeof relayConfigSchema>;

/** A relay config file, read: what {@link startRelay} takes, files read. */
export interface RelayServerConfig {
  /** Absolute path of the config file. */
  readonly source: string;
  readonly listen: RelayFileConfig['listen'];
  /** The relay's certificate chain and key, PEM. */
  readonly tls: { readonly cert: string; readonly key: string };
  /** PEM CA certificates trusted for the gateways' certificates. */
  readonly ca?: string;
  readonly gateways: Readonly<Record<string, string>>;
  readonly odohTargets: readonly string[];
  /** The local address connections to gateways and targets leave from. */
  readonly sourceAddress?: string;
  readonly limits: RelayLimits;
  /** The query log; its path absolute. */
  readonly queryLog?: { readonly path: string; readonly bufferBytes: number };
  readonly log: { readonly level: LogLevel };
}

/**
 * Reads a relay config file ({@link relayConfigSchema}) and the files it names (`tls.cert`,
 * `tls.key`, `ca`), relative to the file's directory. Throws `ConfigError` for anything wrong:
 * `ERR_CONFIG_READ` for a file that cannot be read, `ERR_CONFIG_SYNTAX` or
 * `ERR_CONFIG_INVALID` for its content.
 */
export async function loadRelayConfig(path: string): Promise<RelayServerConfig> {
  const source = resolvePath(path);
  const file = await readConfigFile(source, relayConfigSchema);
  const at = (p: string): string => resolvePath(dirname(source), p);
  const ca = file.ca === undefined ? undefined : await readConfigText(at(file.ca), 'CA file');
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConfigError('ERR_CONFIG_INVALID', 'ca: not a PEM certificate file', source, [
      { path: 'ca', message: 'not a PEM certificate file', unknownKey: false },
    ]);
  }
  return {
    source,
    listen: file.listen,
    tls: await readTlsFiles(file.tls, at),
    ...(ca === undefined ? {} : { ca }),
    gateways: file.gateways,
    odohTargets: file.odohTargets,
    ...(file.sourceAddress === undefined ? {} : { sourceAddress: file.sourceAddress }),
    limits: file.limits,
    ...(file.queryLog === undefined
      ? {}
      : { queryLog: { ...file.queryLog, path: at(file.queryLog.path) } }),
    log: file.log,
  };
}
