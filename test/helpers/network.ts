import { join } from 'node:path';
import { Agent } from 'undici';
import {
  createDohClient,
  createLogger,
  type AuthkeyData,
  type DohClient,
  type DsData,
  type ServerAddress,
  type TrustAnchor,
} from '@mimi-discovery/common';
import {
  createRegistrationClient,
  delegate,
  type AuthkeyEntry,
  type RunningDp,
} from '@mimi-discovery/authoritative';
import { rootTrustAnchor } from '@mimi-discovery/root';
import {
  APEX,
  createLoopbackDir,
  delegationTo,
  initServer,
  serveServer,
} from '../../examples/loopback-network.js';
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
 * TLS certificate, each server keeps its LMDB store in its own temporary data directory, and
 * the root delegates both DP zones with NS, DS of the child's key, glue and the `_dns` SVCB of
 * the child's DoH endpoint. The root's DS is the trust anchor. Built with the steps of the
 * examples' network (examples/loopback-network.ts), which the tests share.
 */

export { APEX };
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
  readonly provider: RunningDp;
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

async function startServer(
  role: 'root' | 'dp',
  zone: string,
  dataDir: string,
  files: { readonly caPem: string; readonly tls: { cert: string; key: string } },
): Promise<NetworkServer> {
  const logs: string[] = [];
  const outbox = join(dataDir, 'outbox.jsonl');
  const provider = await serveServer(role, dataDir, files.tls, {
    admin: true,
    ...(role === 'dp' ? { outbox, limits: TEST_REGISTRATION_LIMITS } : {}),
    log: createLogger(role === 'root' ? 'root' : 'dp', {
      level: 'debug',
      write: (line) => logs.push(line),
    }),
  });
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
            outbox,
            client: createRegistrationClient({ url: api.url, ca: files.caPem }),
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
  const files = await createLoopbackDir('mimi-network');
  const started: NetworkServer[] = [];
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async (): Promise<void> => {
    await Promise.allSettled(closers.reverse().map((close) => close()));
    await Promise.allSettled(started.map((s) => s.api?.client.close()));
    await Promise.allSettled(started.map((s) => s.provider.close()));
    files.remove();
  };
  try {
    const servers = [
      { role: 'root', zone: APEX, name: 'root' },
      { role: 'dp', zone: PHONE_ZONE, name: 'phone' },
      { role: 'dp', zone: EMAIL_ZONE, name: 'email' },
    ] as const;
    const ds = new Map<string, DsData | undefined>();
    for (const s of servers) {
      const dataDir = join(files.dir, s.name);
      ds.set(s.zone, (await initServer(dataDir, [s.zone])).get(s.zone));
      started.push(await startServer(s.role, s.zone, dataDir, files));
    }
    const [root, phone, email] = started as [NetworkServer, NetworkServer, NetworkServer];
    for (const child of [phone, email]) {
      const childDs = ds.get(child.zone);
      if (childDs === undefined) throw new Error(`no DS for ${child.zone}`);
      await delegate(root.provider.store, APEX, delegationTo(child.zone, child.provider, childDs));
    }
    const agent = new Agent({ connect: { ca: files.caPem } });
    closers.push(() => agent.close());
    const doh = createDohClient({ ca: files.caPem });
    closers.push(() => doh.close());
    return {
      apex: APEX,
      dir: files.dir,
      caPem: files.caPem,
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
