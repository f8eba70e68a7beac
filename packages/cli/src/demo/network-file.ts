import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GATEWAY_PUBLIC_KEY_FILE, ISSUER_PUBLIC_KEY_FILE, parseCsi } from '@mimi-discovery/common';
import { DEFAULT_CSIS_PER_TOKEN } from '@mimi-discovery/resolver';
import { failure } from '../errors.js';
import { writeReplacing } from '../files.js';
import {
  DEMO_APEX,
  DEMO_HOST,
  DEMO_ISSUER_USERS,
  DEMO_PERIOD_SECONDS,
  DEMO_TOKENS_PER_PERIOD,
  GATEWAY_KEY_NAME,
  ISSUER_KEY_NAME,
  RELAY_GATEWAY_NAME,
  type DemoExample,
  type DemoRole,
  type PlannedServer,
} from './plan.js';

/**
 * `DIR/network.json`: everything a client needs to use the demonstration network without having
 * seen it being built — where each server listens, the files to trust (CA, trust anchor, root
 * hints), the oblivious path (the relay, the resolver's gateway and its published keys, the
 * token issuer and its users' credentials), and the example CSIs with their expected results.
 * Rewritten on every start (the pids change, and the gateway's key configs at a rotation;
 * nothing else does). Its presence is also what tells `demo` that `DIR` holds a network to
 * restart rather than one to create.
 *
 * ```json
 * { "version": 1, "apex": "mimi.arpa", "dir": "/repo/.demo", "portBase": 15300, "pid": 4242,
 *   "ca": "/repo/.demo/ca/ca.pem",
 *   "trustAnchor": { "ds": "/repo/.demo/root.key", "bind": "/repo/.demo/root-anchors.conf" },
 *   "hints": "/repo/.demo/root-hints.json",
 *   "resolver": { "api": "https://127.0.0.1:15326", "doh": "https://127.0.0.1:15325/dns-query",
 *                 "udp": { "host": "127.0.0.1", "port": 15324 }, "tcp": { … },
 *                 "admin": "http://127.0.0.1:15327" },
 *   "relay": { "url": "https://127.0.0.1:15334",
 *              "ohttp": "https://127.0.0.1:15334/ohttp/resolver",
 *              "odohProxy": "https://127.0.0.1:15334/proxy", "admin": "http://127.0.0.1:15335" },
 *   "gateway": { "url": "https://127.0.0.1:15326/.well-known/ohttp-gateway",
 *                "odohConfigs": "https://127.0.0.1:15326/.well-known/odohconfigs",
 *                "odohTarget": "127.0.0.1:15326",
 *                "keyName": "resolver.chat.example.email.mimi.arpa",
 *                "publicKeys": "/repo/.demo/resolver/gateway-keys/gateway-public-keys.json",
 *                "keyConfigs": ["<base64url OHTTP key config>", …] },
 *   "issuer": { "url": "https://127.0.0.1:15330", "name": "127.0.0.1:15330",
 *               "keyName": "issuer.chat.example.email.mimi.arpa",
 *               "publicKeys": "/repo/.demo/issuer/keys/issuer-public-keys.json",
 *               "tokensPerPeriod": 50, "periodSeconds": 86400, "csisPerToken": 100,
 *               "users": [ { "id": "sender1",
 *                            "credential": "/repo/.demo/issuer/sender1.credential" }, … ] },
 *   "servers": [ { "name": "dp44", "role": "dp", "description": "DP for +44",
 *                  "ranges": ["+44"], "zones": ["4.4.e164.mimi.arpa"], "parent": "root",
 *                  "udp": { … }, "tcp": { … }, "doh": "https://127.0.0.1:15305/dns-query",
 *                  "api": "https://127.0.0.1:15306", "admin": "http://127.0.0.1:15307",
 *                  "config": "…/dp44/config.json", "log": "…/logs/dp44.log",
 *                  "queryLog": "…/logs/dp44.queries.jsonl", "pid": 4243 }, …,
 *                { "name": "relay", "role": "relay", "udp": null, "tcp": null, "doh": null,
 *                  "api": "https://127.0.0.1:15334", … } ],
 *   "examples": [ { "csi": "+44 20 7946 0018", "canonical": "tel:+442079460018",
 *                   "expect": "found", "providers": ["chat.example", "text.example"],
 *                   "zones": […], "note": "…" }, … ] }
 * ```
 *
 * - `relay.ohttp` is the URL a sender's app is given (`lookup --relay URL`): the relay's
 *   resource for the resolver's gateway (RFC 9458 §2); `relay.odohProxy` its Oblivious DoH
 *   proxy (RFC 9230 §4.1), which forwards to `gateway.odohTarget` only.
 * - `gateway.keyConfigs` are the OHTTP key configs (RFC 9458 §3) the gateway published in the
 *   tree at this start (`keys publish`, KEYCONF at `gateway.keyName`), newest first: what a
 *   client checks the config it is served against. `publicKeys` is the file they came from.
 * - `issuer.name` is the issuer_name of the token challenges (RFC 9577 §2.1); each user's
 *   `credential` file holds its bearer credential for the token API.
 * - The issuer and the relay speak no DNS: their `udp`, `tcp` and `doh` are null, and their
 *   `api` is their HTTPS URL. The issuer keeps no query log (`queryLog` null).
 */

/** Version of the file's layout. */
export const NETWORK_FILE_VERSION = 1;
/** Name of the file in the network's directory. */
export const NETWORK_FILE = 'network.json';

/** A plain DNS address. */
export interface DnsAddress {
  host: string;
  port: number;
}

/** One server in `network.json`. */
export interface NetworkServerJson {
  name: string;
  role: DemoRole;
  description: string;
  ranges: string[];
  zones: string[];
  /** The server whose zone delegates this one's ranges. */
  parent: string | null;
  /** Plain DNS; null for the issuer and the relay, which speak no DNS. */
  udp: DnsAddress | null;
  tcp: DnsAddress | null;
  /** DoH endpoint (RFC 8484); null for the issuer and the relay. */
  doh: string | null;
  /**
   * Registration API for a DP, the JSON discovery API (and the gateway) for the resolver, the
   * token API for the issuer, the relay's HTTPS URL for the relay; null for the root.
   */
  api: string | null;
  /** Health (`/healthz`) and metrics (`/metrics`). */
  admin: string;
  config: string;
  /** Where the server's stdout and stderr go. */
  log: string;
  /**
   * The server's query log (JSON lines, `docs/operations.md` §7.1, the relay's §10), or null:
   * `demo --query-log` turns it on for every server but the issuer, which has none.
   */
  queryLog: string | null;
  /** Process id while the network runs. */
  pid: number | null;
}

/** An example CSI in `network.json`. */
export interface NetworkExampleJson {
  csi: string;
  canonical: string;
  expect: DemoExample['expect'];
  providers: string[];
  zones: string[];
  note: string;
}

/** The relay in `network.json`. */
export interface NetworkRelayJson {
  /** Its HTTPS URL. */
  url: string;
  /** Its relay resource for the resolver's gateway: what `lookup --relay` takes. */
  ohttp: string;
  /** Its Oblivious DoH proxy (`?targethost=…&targetpath=…`). */
  odohProxy: string;
  admin: string;
}

/** The resolver's oblivious gateway in `network.json`. */
export interface NetworkGatewayJson {
  /** The gateway resource (RFC 9540 §4): GET for the key configs, POST for requests. */
  url: string;
  /** The ObliviousDoHConfigs (RFC 9230 §6.1). */
  odohConfigs: string;
  /** The ODoH target, as the proxy's `targethost`. */
  odohTarget: string;
  /** The owner of its KEYCONF RRset in the tree. */
  keyName: string;
  /** Its public-key file. */
  publicKeys: string;
  /** The OHTTP key configs published at this start, base64url, newest first. */
  keyConfigs: string[];
}

/** One user of the issuer. */
export interface NetworkIssuerUserJson {
  id: string;
  /** The file holding its bearer credential. */
  credential: string;
}

/** The token issuer in `network.json`. */
export interface NetworkIssuerJson {
  url: string;
  /** Its issuer_name in token challenges: the URL's authority. */
  name: string;
  /** The owner of its KEYCONF RRset in the tree. */
  keyName: string;
  /** Its public-key file. */
  publicKeys: string;
  tokensPerPeriod: number;
  periodSeconds: number;
  /** CSIs one token covers at the gateway. */
  csisPerToken: number;
  users: NetworkIssuerUserJson[];
}

/** The whole of `network.json`. */
export interface NetworkFileJson {
  version: typeof NETWORK_FILE_VERSION;
  apex: string;
  dir: string;
  portBase: number;
  /** Process id of `mimi-discovery demo`, which supervises the servers. */
  pid: number;
  ca: string;
  trustAnchor: { ds: string; bind: string };
  hints: string;
  resolver: { api: string; doh: string; udp: DnsAddress; tcp: DnsAddress; admin: string };
  relay: NetworkRelayJson;
  gateway: NetworkGatewayJson;
  issuer: NetworkIssuerJson;
  servers: NetworkServerJson[];
  examples: NetworkExampleJson[];
}

/** Files of the network, by where they live under its directory. */
export interface NetworkPaths {
  readonly dir: string;
  readonly ca: string;
  readonly caDir: string;
  readonly trustAnchor: string;
  readonly bindTrustAnchor: string;
  readonly hints: string;
  readonly recipients: string;
  readonly logs: string;
  readonly networkFile: string;
  /** The gateway's key directory (private keys, and its public-key file). */
  readonly gatewayKeyDir: string;
  /** The gateway's spent-token store. */
  readonly gatewayDataDir: string;
  readonly gatewayPublicKeys: string;
  /** The issuer's key directory (token keys, and its public-key file). */
  readonly issuerKeyDir: string;
  /** The issuer's per-user counts. */
  readonly issuerDataDir: string;
  readonly issuerPublicKeys: string;
  /** The file of a user's issuer credential. */
  credentialOf(user: string): string;
  configOf(server: string): string;
  dataDirOf(server: string): string;
  logOf(server: string): string;
  queryLogOf(server: string): string;
}

/** The paths of a network in `dir` (absolute). */
export function networkPaths(dir: string): NetworkPaths {
  return {
    dir,
    ca: join(dir, 'ca', 'ca.pem'),
    caDir: join(dir, 'ca'),
    trustAnchor: join(dir, 'root.key'),
    bindTrustAnchor: join(dir, 'root-anchors.conf'),
    hints: join(dir, 'root-hints.json'),
    recipients: join(dir, 'recipients'),
    logs: join(dir, 'logs'),
    networkFile: join(dir, NETWORK_FILE),
    gatewayKeyDir: join(dir, 'resolver', 'gateway-keys'),
    gatewayDataDir: join(dir, 'resolver', 'gateway-data'),
    gatewayPublicKeys: join(dir, 'resolver', 'gateway-keys', GATEWAY_PUBLIC_KEY_FILE),
    issuerKeyDir: join(dir, 'issuer', 'keys'),
    issuerDataDir: join(dir, 'issuer', 'data'),
    issuerPublicKeys: join(dir, 'issuer', 'keys', ISSUER_PUBLIC_KEY_FILE),
    credentialOf: (user) => join(dir, 'issuer', `${user}.credential`),
    configOf: (server) => join(dir, server, 'config.json'),
    dataDirOf: (server) => join(dir, server),
    logOf: (server) => join(dir, 'logs', `${server}.log`),
    queryLogOf: (server) => join(dir, 'logs', `${server}.queries.jsonl`),
  };
}

function hostPort(port: number): string {
  return `${DEMO_HOST}:${port}`;
}

/** The content of `network.json` for `plan`, with the pids of the running servers. */
export function networkFileJson(input: {
  paths: NetworkPaths;
  portBase: number;
  plan: readonly PlannedServer[];
  examples: readonly DemoExample[];
  pids: ReadonlyMap<string, number>;
  pid: number;
  /** Every server but the issuer keeps a query log at `paths.queryLogOf`. */
  queryLogs: boolean;
  /** The gateway's OHTTP key configs published at this start, newest first. */
  gatewayKeyConfigs: readonly Uint8Array[];
}): NetworkFileJson {
  const { paths, plan } = input;
  const servers = plan.map((s): NetworkServerJson => {
    const dns = s.ports.dns === null ? null : { host: DEMO_HOST, port: s.ports.dns };
    return {
      name: s.name,
      role: s.role,
      description: s.description,
      ranges: [...s.ranges],
      zones: [...s.zones],
      parent: s.parent ?? null,
      udp: dns,
      tcp: dns === null ? null : { ...dns },
      doh: s.ports.doh === null ? null : `https://${hostPort(s.ports.doh)}/dns-query`,
      api: s.ports.api === null ? null : `https://${hostPort(s.ports.api)}`,
      admin: `http://${hostPort(s.ports.admin)}`,
      config: paths.configOf(s.name),
      log: paths.logOf(s.name),
      queryLog: input.queryLogs && s.role !== 'issuer' ? paths.queryLogOf(s.name) : null,
      pid: input.pids.get(s.name) ?? null,
    };
  });
  const resolver = servers.find((s) => s.role === 'resolver');
  const relay = servers.find((s) => s.role === 'relay');
  const issuer = servers.find((s) => s.role === 'issuer');
  if (
    resolver?.api == null ||
    resolver.doh === null ||
    resolver.udp === null ||
    resolver.tcp === null
  ) {
    throw new Error('the plan has no resolver with DNS and a JSON API');
  }
  if (relay?.api == null) throw new Error('the plan has no relay with an HTTPS port');
  if (issuer?.api == null) throw new Error('the plan has no issuer with a token API');
  const gatewayAuthority = new URL(resolver.api).host;
  return {
    version: NETWORK_FILE_VERSION,
    apex: DEMO_APEX,
    dir: paths.dir,
    portBase: input.portBase,
    pid: input.pid,
    ca: paths.ca,
    trustAnchor: { ds: paths.trustAnchor, bind: paths.bindTrustAnchor },
    hints: paths.hints,
    resolver: {
      api: resolver.api,
      doh: resolver.doh,
      udp: resolver.udp,
      tcp: resolver.tcp,
      admin: resolver.admin,
    },
    relay: {
      url: relay.api,
      ohttp: `${relay.api}/ohttp/${RELAY_GATEWAY_NAME}`,
      odohProxy: `${relay.api}/proxy`,
      admin: relay.admin,
    },
    gateway: {
      url: `${resolver.api}/.well-known/ohttp-gateway`,
      odohConfigs: `${resolver.api}/.well-known/odohconfigs`,
      odohTarget: gatewayAuthority,
      keyName: GATEWAY_KEY_NAME,
      publicKeys: paths.gatewayPublicKeys,
      keyConfigs: input.gatewayKeyConfigs.map((c) => Buffer.from(c).toString('base64url')),
    },
    issuer: {
      url: issuer.api,
      name: new URL(issuer.api).host,
      keyName: ISSUER_KEY_NAME,
      publicKeys: paths.issuerPublicKeys,
      tokensPerPeriod: DEMO_TOKENS_PER_PERIOD,
      periodSeconds: DEMO_PERIOD_SECONDS,
      csisPerToken: DEFAULT_CSIS_PER_TOKEN,
      users: DEMO_ISSUER_USERS.map((id) => ({ id, credential: paths.credentialOf(id) })),
    },
    servers,
    examples: input.examples.map((e) => ({
      csi: e.csi,
      canonical: parseCsi(e.csi),
      expect: e.expect,
      providers: [...e.providers],
      zones: [...e.zones],
      note: e.note,
    })),
  };
}

/** Writes `network.json` (replacing it atomically). */
export async function writeNetworkFile(paths: NetworkPaths, file: NetworkFileJson): Promise<void> {
  await writeReplacing(paths.networkFile, `${JSON.stringify(file, null, 2)}\n`, 0o644);
}

/**
 * The port base recorded in an existing `network.json`: all a restart needs, since everything
 * else follows from the plan. A file that is not one of ours is refused (`ERR_CLI_NETWORK_FILE`).
 */
export async function readNetworkPortBase(paths: NetworkPaths): Promise<number> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(paths.networkFile, 'utf8'));
  } catch (error) {
    throw failure('ERR_CLI_NETWORK_FILE', `${paths.networkFile}: cannot be read as JSON`, error);
  }
  const file = value as Partial<NetworkFileJson> | null;
  if (
    typeof file !== 'object' ||
    file === null ||
    file.version !== NETWORK_FILE_VERSION ||
    typeof file.portBase !== 'number'
  ) {
    throw failure(
      'ERR_CLI_NETWORK_FILE',
      `${paths.networkFile}: not a network.json of version ${NETWORK_FILE_VERSION}`,
    );
  }
  return file.portBase;
}
