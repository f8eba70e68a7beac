/**
 * The small network every example runs against, on 127.0.0.1 with ephemeral ports and a
 * temporary directory, built the way an operator builds one with the `mimi-discovery` command
 * (`init root`, `init dp`, `delegate`, `trust-anchor`, `hints`, `serve`), but in-process:
 *
 * ```
 *   mimi.arpa                          root directory (LMDB store, DoH, plain DNS)
 *     └── one DP serving some ranges   LMDB store, DoH, plain DNS, registration API (HTTPS)
 * ```
 *
 * A local CA issues the one server certificate; clients are given the CA's PEM. Logs are
 * silenced so the examples print only what they show.
 *
 * Its steps are also the one network builder of the tests and the bench: the tests' network of
 * real DP servers (test/helpers/network.ts) and the zones of the tests' hierarchy
 * (test/helpers/hierarchy.ts) are made with {@link initZone}, {@link initServer},
 * {@link serveServer} and {@link delegationTo}; DP processes and the bench get their TLS files
 * from {@link writeLoopbackTls}.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  computeDs,
  createLocalCa,
  issueServerCertificate,
  parseConfig,
  parseRange,
  record,
  type DsData,
  type LocalCa,
  type Logger,
} from '@mimi-discovery/common';
import {
  delegate,
  dpConfigSchema,
  defaultKeyDirectory,
  openLmdbStore,
  startDp,
  storeDirectory,
  type AuthkeyEntry,
  type DelegationSpec,
  type DiscoveryStore,
  type RegistrarLimits,
  type RunningDp,
} from '@mimi-discovery/authoritative';
import { rootTrustAnchor } from '@mimi-discovery/root';
import type { ResolverConfig } from '@mimi-discovery/resolver';

/** The namespace apex of every example. */
export const APEX = 'mimi.arpa';

/** A local CA and one server certificate for 127.0.0.1 and localhost, as PEM files. */
export interface LoopbackTls {
  /** PEM of the local CA: what clients (resolvers, recipient apps) must trust. */
  readonly caPem: string;
  /** The CA's PEM file (`--ca` of the command line). */
  readonly caFile: string;
  /** Paths of the server certificate and key, as a server config names them. */
  readonly tls: { readonly cert: string; readonly key: string };
}

/** A temporary directory holding a local CA and one server certificate for 127.0.0.1. */
export interface LoopbackDir extends LoopbackTls {
  readonly dir: string;
  /** Deletes the directory and everything in it. */
  remove(): void;
}

/**
 * Writes into `dir` (created if need be) a certificate for 127.0.0.1 and localhost issued by
 * `ca` (default a new local CA), its key (mode 0600) and the CA's PEM.
 */
export async function writeLoopbackTls(dir: string, ca?: LocalCa): Promise<LoopbackTls> {
  const authority = ca ?? (await createLocalCa({ commonName: 'MIMI example CA' }));
  const leaf = await issueServerCertificate(authority, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  mkdirSync(dir, { recursive: true });
  const caFile = join(dir, 'ca.pem');
  const cert = join(dir, 'server-cert.pem');
  const key = join(dir, 'server-key.pem');
  writeFileSync(caFile, authority.certPem);
  writeFileSync(cert, leaf.certPem);
  writeFileSync(key, leaf.keyPem, { mode: 0o600 });
  return { caPem: authority.certPem, caFile, tls: { cert, key } };
}

/** Creates a temporary directory with a local CA and a certificate for 127.0.0.1. */
export async function createLoopbackDir(prefix: string): Promise<LoopbackDir> {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    return { dir, ...(await writeLoopbackTls(dir)), remove };
  } catch (error) {
    remove();
    throw error;
  }
}

/**
 * Creates `zone` in `store` as `mimi-discovery init` does: SOA, NS `ns1.<zone>` with its address
 * (127.0.0.1) in the zone, a fresh zone key, AUTHKEY (the store's prover key, and `authkeys`).
 * Returns the DS of the zone's key, for the parent.
 */
export async function initZone(
  store: DiscoveryStore,
  zone: string,
  authkeys: readonly AuthkeyEntry[] = [],
): Promise<DsData> {
  const ns = `ns1.${zone}`;
  await store.addZone({
    origin: zone,
    nameservers: [ns],
    mname: ns,
    rname: `hostmaster.${zone}`,
    ...(authkeys.length === 0 ? {} : { authkeys: [...authkeys] }),
  });
  await store.apply(zone, [
    { op: 'put', name: ns, type: 'A', records: [record(ns, 'A', '127.0.0.1', 3600)] },
  ]);
  const dnskey = store.readRRset(zone, zone, 'DNSKEY')[0];
  if (dnskey?.type !== 'DNSKEY') throw new Error(`zone ${zone} has no DNSKEY`);
  return computeDs(zone, dnskey.data);
}

/**
 * Creates `zones` ({@link initZone}) in a new LMDB store in `dataDir`; returns the DS of each
 * zone's key, for the parent.
 */
export async function initServer(
  dataDir: string,
  zones: readonly string[],
  options: { readonly authkeys?: readonly AuthkeyEntry[] } = {},
): Promise<Map<string, DsData>> {
  // The key directory a server of this data directory uses (config `keys.dir`, by default).
  const store = await openLmdbStore({
    dataDir: storeDirectory(dataDir),
    keys: defaultKeyDirectory(dataDir),
  });
  const ds = new Map<string, DsData>();
  try {
    for (const zone of zones) ds.set(zone, await initZone(store, zone, options.authkeys));
    return ds;
  } finally {
    await store.close();
  }
}

/** What else {@link serveServer} starts, and how. */
export interface ServeOptions {
  /** A DP's development channel for one-time codes: the registration API starts with it. */
  readonly outbox?: string;
  /** Limits of the config's `registration` section (tests prove one CSI many times). */
  readonly limits?: Pick<
    RegistrarLimits,
    'codeTtlSeconds' | 'maxAttemptsPerCode' | 'sendsPerCsiPerHour' | 'requestsPerClientPerMinute'
  >;
  /** Start the admin listener (health, metrics) too. */
  readonly admin?: boolean;
  /** Where the server logs; default nowhere. */
  readonly log?: Logger;
  /** The config's `queryLog` (a line per query answered); default none. */
  readonly queryLog?: { readonly path: string; readonly peer?: boolean };
}

/**
 * Starts the root directory or a DP from `dataDir` (`mimi-discovery serve`): UDP, TCP and DoH
 * on ephemeral ports, the registration API for a DP given an outbox, the admin port if asked.
 */
export async function serveServer(
  role: 'root' | 'dp',
  dataDir: string,
  tls: LoopbackTls['tls'],
  options: ServeOptions = {},
): Promise<RunningDp> {
  const api = role === 'dp' && options.outbox !== undefined;
  const config = parseConfig(dpConfigSchema, {
    role,
    dataDir,
    apex: APEX,
    listen: {
      host: '127.0.0.1',
      udp: 0,
      tcp: 0,
      doh: 0,
      ...(options.admin === true ? { admin: 0 } : {}),
      ...(api ? { api: 0 } : {}),
    },
    tls,
    ...(api
      ? {
          registration: {
            ...options.limits,
            channels: { outbox: { path: options.outbox } },
          },
        }
      : {}),
    ...(options.queryLog === undefined ? {} : { queryLog: options.queryLog }),
    // The children listen on ports of their own, which the poller's one `cds.port` cannot name:
    // the root here does not follow their CDS (RFC 7344), which has tests of its own.
    ...(role === 'root' ? { cds: { enabled: false } } : {}),
    log: { level: 'silent' },
  });
  return startDp(config, options.log === undefined ? {} : { log: options.log });
}

/** The delegation of `zone` to the server `provider`: `ns1.<zone>` at 127.0.0.1, its DoH port. */
export function delegationTo(zone: string, provider: RunningDp, ds: DsData): DelegationSpec {
  const doh = provider.dns?.doh;
  if (doh === undefined) throw new Error(`the server for ${zone} serves no DoH`);
  return {
    zone,
    nameservers: [{ name: `ns1.${zone}`, addresses: ['127.0.0.1'], doh: { port: doh.port } }],
    ds: [ds],
  };
}

/** What a resolver needs to start from the root: hints, trust anchor (parsed), the CA. */
export function resolverConfigFor(root: RunningDp, caPem: string): ResolverConfig {
  const doh = root.dns?.doh;
  if (doh === undefined) throw new Error('the root serves no DoH');
  return {
    rootServers: [{ name: `ns1.${APEX}`, addresses: ['127.0.0.1'], doh: doh.url }],
    trustAnchor: rootTrustAnchor(root.store, APEX),
    ca: caPem,
  };
}

/** A running root and one DP, the DP's ranges delegated from the root. */
export interface LoopbackNetwork {
  readonly dir: string;
  readonly caPem: string;
  /** The server certificate and key files (127.0.0.1), for more servers beside these two. */
  readonly tls: LoopbackTls['tls'];
  readonly root: RunningDp;
  readonly dp: RunningDp;
  /** The DP's zones, one per range. */
  readonly zones: readonly string[];
  /** `https://127.0.0.1:<port>`, the DP's registration API. */
  readonly apiUrl: string;
  /** The file the DP appends one-time codes to (development channel). */
  readonly outbox: string;
  /** Hints, trust anchor and CA for `createResolver`. */
  readonly resolverConfig: ResolverConfig;
  /** Stops both servers and deletes the directory. */
  close(): Promise<void>;
}

/** Builds the network: a root, one DP for `ranges` (`+44`, `@example.com`), delegated. */
export async function startLoopbackNetwork(ranges: readonly string[]): Promise<LoopbackNetwork> {
  const files = await createLoopbackDir('mimi-example');
  const running: RunningDp[] = [];
  const close = async (): Promise<void> => {
    await Promise.allSettled(running.reverse().map((server) => server.close()));
    files.remove();
  };
  try {
    const zones = ranges.map((range) => parseRange(range, APEX).zone);
    const rootDir = join(files.dir, 'root');
    const dpDir = join(files.dir, 'dp');
    const outbox = join(dpDir, 'outbox.jsonl');
    await initServer(rootDir, [APEX]);
    const ds = await initServer(dpDir, zones);
    const root = await serveServer('root', rootDir, files.tls);
    running.push(root);
    const dp = await serveServer('dp', dpDir, files.tls, { outbox });
    running.push(dp);
    for (const zone of zones) {
      const zoneDs = ds.get(zone);
      if (zoneDs === undefined) throw new Error(`no DS for ${zone}`);
      await delegate(root.store, APEX, delegationTo(zone, dp, zoneDs));
    }
    if (dp.api === undefined) throw new Error('the DP serves no registration API');
    return {
      dir: files.dir,
      caPem: files.caPem,
      tls: files.tls,
      root,
      dp,
      zones,
      apiUrl: dp.api.url,
      outbox,
      resolverConfig: resolverConfigFor(root, files.caPem),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * True when the example whose `import.meta.url` is `url` is the program being run: either
 * `node` runs its compiled file, or `vite-node` runs it. vite-node leaves `process.argv[1]` as
 * its own executable rather than the script, so any module it loads sees the same argv; that is
 * safe here because no example imports another.
 */
export function isMain(url: string): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  return basename(entry) === 'vite-node' || url === pathToFileURL(resolve(entry)).href;
}
