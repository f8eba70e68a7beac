import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import {
  computeDs,
  createDohClient,
  createLocalCa,
  createLogger,
  dpConfigSchema,
  issueServerCertificate,
  parseConfig,
  record,
  type AuthkeyData,
  type DohClient,
  type DpConfig,
  type DsData,
  type ServerAddress,
  type TrustAnchor,
} from '@mimi-discovery/common';
import {
  createRegistrationClient,
  delegate,
  openLmdbStore,
  startProvider,
  storeDirectory,
  type AuthkeyEntry,
  type RunningProvider,
} from '@mimi-discovery/authoritative';
import { rootTrustAnchor } from '@mimi-discovery/root';
import type { RegistrationEndpoint } from './registration.js';

/**
 * The whole authoritative side on 127.0.0.1, built in-process from one call, as hickory's
 * `Graph::build` builds root → TLD → leaf:
 *
 * ```
 *   mimi.arpa (root directory)
 *     ├── 4.4.e164.mimi.arpa           DP "phone"  (+44)
 *     └── example.com.email.mimi.arpa  DP "email"  (@example.com)
 * ```
 *
 * Every server listens on ephemeral ports for UDP and TCP (one port for both), DoH and admin;
 * the DPs also serve the registration API with a file outbox for codes. A local CA issues the
 * TLS certificates, each server keeps its LMDB store in its own temporary data directory, and
 * the root delegates both DP zones with NS, DS of the child's key, glue and the `_dns` SVCB of
 * the child's DoH endpoint. The root's DS is the trust anchor.
 */

/** The namespace apex of the fixture. */
export const APEX = 'mimi.arpa';
/** The range zone of the `+44` DP. */
export const PHONE_ZONE = '4.4.e164.mimi.arpa';
/** The range zone of the `@example.com` DP. */
export const EMAIL_ZONE = 'example.com.email.mimi.arpa';

/** One running server of the network and where to reach it. */
export interface NetworkServer {
  readonly role: 'root' | 'dp';
  /** The zone it serves. */
  readonly zone: string;
  readonly dataDir: string;
  readonly provider: RunningProvider;
  /** Plain DNS; UDP and TCP share the port. */
  readonly udp: ServerAddress;
  readonly tcp: ServerAddress;
  /** `https://127.0.0.1:<port>/dns-query` */
  readonly dohUrl: string;
  readonly dohPort: number;
  /** A DP's registration API (`https://127.0.0.1:<port>`), outbox and client; not the root's. */
  readonly api: RegistrationEndpoint | undefined;
  /** `http://127.0.0.1:<port>` (health and metrics). */
  readonly adminUrl: string;
  /**
   * Every log line (JSON, debug level and above), for tests that check that nothing went wrong
   * inside and what the server records about its clients.
   */
  readonly logs: string[];
}

/** The running network. */
export interface Network {
  readonly apex: string;
  /** Temporary directory holding every data directory and the TLS files. */
  readonly dir: string;
  /** PEM of the CA that issued every server certificate. */
  readonly caPem: string;
  /** The root zone's DNSKEY and its DS (design §5). */
  readonly trustAnchor: TrustAnchor;
  readonly root: NetworkServer;
  /** The DP of `+44`. */
  readonly phone: NetworkServer;
  /** The DP of `@example.com`. */
  readonly email: NetworkServer;
  /** An undici agent that trusts the CA (for raw HTTP requests). */
  readonly agent: Agent;
  /** A DoH client that trusts the CA. */
  readonly doh: DohClient;
  /** Stops every server and client and deletes the temporary directory. */
  close(): Promise<void>;
}

/**
 * Registration limits for tests: every request comes from 127.0.0.1 and a test proves the same
 * CSI several times, so the production defaults (60 requests a minute per client, 5 codes an
 * hour per CSI) would refuse a test run half way through.
 */
export const TEST_REGISTRATION_LIMITS = Object.freeze({
  requestsPerClientPerMinute: 100_000,
  sendsPerCsiPerHour: 1_000,
});

/** What {@link prepareZone} creates. */
export interface ZoneSetup {
  readonly origin: string;
  /** Extra AUTHKEY entries besides the DP's own prover key. */
  readonly authkeys?: readonly AuthkeyEntry[];
}

/**
 * Creates a zone in the LMDB store of `dataDir` the way an operator sets up a new server before
 * its first start: SOA, NS `ns1.<origin>`, the zone key, AUTHKEY, and the nameserver's address
 * (127.0.0.1) in the zone. Returns the DS of the zone's key, for the parent.
 */
export async function prepareZone(dataDir: string, setup: ZoneSetup): Promise<DsData> {
  const store = await openLmdbStore({ dataDir: storeDirectory(dataDir) });
  try {
    const { origin } = setup;
    const ns = `ns1.${origin}`;
    await store.addZone({
      origin,
      nameservers: [ns],
      mname: ns,
      rname: `hostmaster.${origin}`,
      ...(setup.authkeys ? { authkeys: [...setup.authkeys] } : {}),
    });
    await store.apply(origin, [
      { op: 'put', name: ns, type: 'A', records: [record(ns, 'A', '127.0.0.1', 3600)] },
    ]);
    const dnskey = store.readRRset(origin, origin, 'DNSKEY')[0];
    if (dnskey?.type !== 'DNSKEY') throw new Error(`zone ${origin} has no DNSKEY`);
    return computeDs(origin, dnskey.data);
  } finally {
    await store.close();
  }
}

/** A DP or root config for the fixture: every listener on port 0, TLS from the local CA. */
export function providerConfig(
  role: 'root' | 'dp',
  dataDir: string,
  tls: { cert: string; key: string },
): DpConfig {
  return parseConfig(dpConfigSchema, {
    role,
    dataDir,
    apex: APEX,
    listen: {
      host: '127.0.0.1',
      udp: 0,
      tcp: 0,
      doh: 0,
      admin: 0,
      ...(role === 'dp' ? { api: 0 } : {}),
    },
    tls,
    ...(role === 'dp'
      ? {
          registration: {
            ...TEST_REGISTRATION_LIMITS,
            channels: { outbox: { path: join(dataDir, 'outbox.jsonl') } },
          },
        }
      : {}),
    log: { level: 'silent' },
  });
}

/** A CA and a certificate for 127.0.0.1 and localhost, written as PEM files into `dir`. */
export async function writeTlsFiles(
  dir: string,
  ca?: { certPem: string; keyPem: string },
): Promise<{ caPem: string; cert: string; key: string }> {
  const authority = ca ?? (await createLocalCa({ commonName: 'MIMI test network CA' }));
  const leaf = await issueServerCertificate(authority, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  mkdirSync(dir, { recursive: true });
  const cert = join(dir, 'tls-cert.pem');
  const key = join(dir, 'tls-key.pem');
  writeFileSync(cert, leaf.certPem);
  writeFileSync(key, leaf.keyPem, { mode: 0o600 });
  return { caPem: authority.certPem, cert, key };
}

async function startServer(
  role: 'root' | 'dp',
  zone: string,
  dataDir: string,
  tls: { cert: string; key: string; caPem: string },
): Promise<NetworkServer> {
  const logs: string[] = [];
  const provider = await startProvider(
    providerConfig(role, dataDir, { cert: tls.cert, key: tls.key }),
    {
      log: createLogger(role === 'root' ? 'root' : 'dp', {
        level: 'debug',
        write: (line) => logs.push(line),
      }),
    },
  );
  const { dns, api, admin } = provider;
  if (!dns?.udp || !dns.tcp || !dns.doh || !admin || (role === 'dp' && !api)) {
    await provider.close();
    throw new Error(`the ${role} server for ${zone} did not start every listener`);
  }
  return {
    role,
    zone,
    dataDir,
    provider,
    udp: { host: dns.udp.host, port: dns.udp.port },
    tcp: { host: dns.tcp.host, port: dns.tcp.port },
    dohUrl: dns.doh.url,
    dohPort: dns.doh.port,
    api:
      api === undefined
        ? undefined
        : {
            url: api.url,
            outbox: join(dataDir, 'outbox.jsonl'),
            client: createRegistrationClient({ url: api.url, ca: tls.caPem }),
          },
    adminUrl: admin.url,
    logs,
  };
}

/** The lines of `logs` at `levels` (e.g. `['warn', 'error']`). */
export function logLines(logs: readonly string[], levels: readonly string[]): string[] {
  return logs.filter((line) => levels.includes((JSON.parse(line) as { level: string }).level));
}

/** Builds and starts the network; see the module comment. */
export async function buildNetwork(): Promise<Network> {
  const dir = mkdtempSync(join(tmpdir(), 'mimi-network-'));
  const started: NetworkServer[] = [];
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async (): Promise<void> => {
    await Promise.allSettled(closers.reverse().map((close) => close()));
    await Promise.allSettled(started.map((s) => s.api?.client.close()));
    await Promise.allSettled(started.map((s) => s.provider.close()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ca = await createLocalCa({ commonName: 'MIMI test network CA' });
    const servers = [
      { role: 'root', zone: APEX, name: 'root' },
      { role: 'dp', zone: PHONE_ZONE, name: 'phone' },
      { role: 'dp', zone: EMAIL_ZONE, name: 'email' },
    ] as const;
    const ds = new Map<string, DsData>();
    for (const s of servers) {
      const dataDir = join(dir, s.name);
      ds.set(s.zone, await prepareZone(dataDir, { origin: s.zone }));
      started.push(await startServer(s.role, s.zone, dataDir, await writeTlsFiles(dataDir, ca)));
    }
    const [root, phone, email] = started as [NetworkServer, NetworkServer, NetworkServer];
    for (const child of [phone, email]) {
      const childDs = ds.get(child.zone);
      if (childDs === undefined) throw new Error(`no DS for ${child.zone}`);
      await delegate(root.provider.store, APEX, {
        zone: child.zone,
        nameservers: [
          { name: `ns1.${child.zone}`, addresses: ['127.0.0.1'], doh: { port: child.dohPort } },
        ],
        ds: [childDs],
      });
    }
    const agent = new Agent({ connect: { ca: ca.certPem } });
    closers.push(() => agent.close());
    const doh = createDohClient({ ca: ca.certPem });
    closers.push(() => doh.close());
    return {
      apex: APEX,
      dir,
      caPem: ca.certPem,
      trustAnchor: rootTrustAnchor(root.provider.store, APEX),
      root,
      phone,
      email,
      agent,
      doh,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/** An AUTHKEY entry valid for ten years from `now`. */
export function authkey(
  role: AuthkeyData['role'],
  publicKey: Uint8Array,
  now = Math.floor(Date.now() / 1000),
): AuthkeyEntry {
  return { role, publicKey, notAfter: now + 3650 * 86_400 };
}
