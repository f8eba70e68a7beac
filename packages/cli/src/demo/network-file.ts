import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCsi } from '@mimi-discovery/common';
import { failure } from '../errors.js';
import { writeReplacing } from '../files.js';
import { DEMO_APEX, DEMO_HOST, type DemoExample, type PlannedServer } from './plan.js';

/**
 * `DIR/network.json`: everything a client needs to use the demonstration network without having
 * seen it being built — where each server listens, the files to trust (CA, trust anchor, root
 * hints), and the example CSIs with their expected results. Rewritten on every start (the pids
 * change; nothing else does). Its presence is also what tells `demo` that `DIR` holds a
 * network to restart rather than one to create.
 *
 * ```json
 * { "version": 1, "apex": "mimi.arpa", "dir": "/repo/.demo", "portBase": 15300, "pid": 4242,
 *   "ca": "/repo/.demo/ca/ca.pem",
 *   "trustAnchor": { "ds": "/repo/.demo/root.key", "bind": "/repo/.demo/root-anchors.conf" },
 *   "hints": "/repo/.demo/root-hints.json",
 *   "resolver": { "api": "https://127.0.0.1:15326", "doh": "https://127.0.0.1:15325/dns-query",
 *                 "udp": { "host": "127.0.0.1", "port": 15324 }, "tcp": { … } },
 *   "servers": [ { "name": "dp44", "role": "dp", "description": "DP for +44",
 *                  "ranges": ["+44"], "zones": ["4.4.e164.mimi.arpa"], "parent": "root",
 *                  "udp": { … }, "tcp": { … }, "doh": "https://127.0.0.1:15305/dns-query",
 *                  "api": "https://127.0.0.1:15306", "admin": "http://127.0.0.1:15307",
 *                  "config": "…/dp44/config.json", "log": "…/logs/dp44.log",
 *                  "queryLog": "…/logs/dp44.queries.jsonl", "pid": 4243 }, … ],
 *   "examples": [ { "csi": "+44 20 7946 0018", "canonical": "tel:+442079460018",
 *                   "expect": "found", "providers": ["chat.example", "text.example"],
 *                   "zones": […], "note": "…" }, … ] }
 * ```
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
  role: 'root' | 'dp' | 'resolver';
  description: string;
  ranges: string[];
  zones: string[];
  /** The server whose zone delegates this one's ranges. */
  parent: string | null;
  udp: DnsAddress;
  tcp: DnsAddress;
  /** DoH endpoint (RFC 8484). */
  doh: string;
  /** Registration API for a DP, the JSON discovery API for the resolver, null for the root. */
  api: string | null;
  /** Health (`/healthz`) and metrics (`/metrics`). */
  admin: string;
  config: string;
  /** Where the server's stdout and stderr go. */
  log: string;
  /**
   * The server's query log (JSON lines, `docs/operations.md` §7), or null: `demo --query-log`
   * turns it on for every server.
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
  /** Every server keeps a query log at `paths.queryLogOf`. */
  queryLogs: boolean;
}): NetworkFileJson {
  const { paths, plan } = input;
  const servers = plan.map((s): NetworkServerJson => {
    const dns = { host: DEMO_HOST, port: s.ports.dns };
    return {
      name: s.name,
      role: s.role,
      description: s.description,
      ranges: [...s.ranges],
      zones: [...s.zones],
      parent: s.parent ?? null,
      udp: dns,
      tcp: { ...dns },
      doh: `https://${hostPort(s.ports.doh)}/dns-query`,
      api: s.ports.api === null ? null : `https://${hostPort(s.ports.api)}`,
      admin: `http://${hostPort(s.ports.admin)}`,
      config: paths.configOf(s.name),
      log: paths.logOf(s.name),
      queryLog: input.queryLogs ? paths.queryLogOf(s.name) : null,
      pid: input.pids.get(s.name) ?? null,
    };
  });
  const resolver = servers.find((s) => s.role === 'resolver');
  if (resolver?.api == null) throw new Error('the plan has no resolver with a JSON API');
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
