import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import {
  canonicalName,
  computeDs,
  createAttestation,
  createLocalCa,
  createMapping,
  createZoneKey,
  csiToName,
  decodeMapping,
  encodeMapping,
  formatTrustAnchor,
  generateKeyPair,
  isSubdomain,
  issueServerCertificate,
  keyPairFromSeed,
  parentName,
  parseCsi,
  record,
  respondError,
  signRRset,
  SignedObjectError,
  startDnsServer,
  type DnsServer,
  type DsData,
  type Ed25519KeyPair,
  type Mapping,
  type Message,
  type MspEntry,
  type SealedBox,
  type QueryContext,
  type QueryHandler,
  type RecordOf,
  type ResourceRecord,
  type ServerAddress,
} from '@mimi-discovery/common';
import {
  createAnswerer,
  createMemoryStore,
  createTransferHandler,
  keepZoneDigest,
  createOutboxChannel,
  createRegistrar,
  createRegistrationClient,
  delegate,
  listDelegations,
  startRegistrationApi,
  type AuthkeyEntry,
  type DiscoveryStore,
  type RegistrationClient,
} from '@mimi-discovery/authoritative';
import { rootTrustAnchor } from '@mimi-discovery/root';
import type { ResolverConfig } from '@mimi-discovery/resolver';
import { initZone } from '../../examples/loopback-network.js';
import { APEX, EMAIL_ZONE, PHONE_ZONE, TEST_REGISTRATION_LIMITS, authkey } from './network.js';

/**
 * The whole discovery hierarchy on 127.0.0.1, in-process: the one fixture of every test that
 * resolves (the resolver package's own tests, and the hierarchy, cache, attack and Unbound tests
 * of test/), as hickory's `Graph::build` builds root → TLD → leaf with a trust anchor:
 *
 * ```
 *   mimi.arpa                              root directory
 *     ├── 4.4.e164.mimi.arpa               DP "phone" (+44), registration API, a CSIP key
 *     │     └── 7.4.4.e164.mimi.arpa       DP "sub"   (+447), sub-delegated by the +44 DP
 *     ├── example.com.email.mimi.arpa      DP "email" (@example.com)
 *     └── chat.example.email.mimi.arpa     DP "msp", run by the MSP chat.example: MAPREF targets
 * ```
 *
 * Every server answers plain DNS (UDP and TCP on one port) and DoH with a certificate from one
 * local CA, from a memory store, and records the questions it is asked. Every delegation is
 * signed (DS) and carries glue and the `_dns` SVCB of the child's DoH endpoint, as `delegate`
 * writes them. Tests add more servers (honest or hostile) with {@link Hierarchy.addServer},
 * make a server lie or fail while they run ({@link HierarchyServer.tamper}:
 * {@link corruptMapAt}, {@link answerServfail}), publish mappings straight into the stores
 * (signed by the prover key of the range, as a DP's registrar would) or through the +44 DP's
 * registration API (`phone.api.client`), load the resolver's cases with {@link publishCases},
 * give a zone more nameservers with {@link Hierarchy.addNameserver}, and point a resolver at
 * the root with {@link Hierarchy.resolverConfig}.
 *
 * A memory store rather than LMDB: the resolver's tests exercise what servers answer, not
 * durability (test/dp-kill.test.ts covers that), and memory keeps each fixture fast.
 */

/** The range zone of the sub-delegated `+447` DP. */
export const SUB_ZONE = `7.${PHONE_ZONE}`;
/** The zone of the MSP-run DP where MAPREF targets point. */
export const MSP_ZONE = `chat.example.email.${APEX}`;
/** TTL the fixture gives MAP and MAPREF RRsets, as the registrar's `MAX_MAP_TTL_SECONDS`. */
export const MAP_TTL_SECONDS = 300;

/** The zone of a delegation whose DS matches no key of the zone ({@link publishCases}). */
export const BAD_ZONE = `bad.${APEX}`;

/** What a {@link Tamper} may use besides the query and the honest answer. */
export interface TamperContext {
  readonly zone: string;
  readonly store: DiscoveryStore;
  readonly transport: QueryContext['transport'];
  /** Signs an RRset with the zone's key, valid from an hour ago for a day. */
  sign(rrset: readonly ResourceRecord[]): RecordOf<'RRSIG'>;
  /** A response that never comes: settles (SERVFAIL) only when the server stops. */
  hang(): Promise<Message>;
}

/** Rewrites a server's honest response: how a test builds a hostile server. */
export type Tamper = (
  query: Message,
  honest: Message,
  context: TamperContext,
) => Message | Promise<Message>;

/** One server of the hierarchy: a zone (or several) answered from a memory store. */
export interface HierarchyServer {
  readonly zone: string;
  readonly store: DiscoveryStore;
  /** The nameserver's name, `ns1.<zone>` (`ns2.<zone>`, … for {@link Hierarchy.addNameserver}'s). */
  readonly nameserver: string;
  /** Plain DNS; UDP and TCP share the port. */
  readonly udp: ServerAddress;
  readonly tcp: ServerAddress;
  /** `https://127.0.0.1:<port>/dns-query` */
  readonly dohUrl: string;
  readonly dohPort: number;
  /** The registration API and a client of it (the +44 DP only). */
  readonly api:
    | { readonly url: string; readonly outbox: string; readonly client: RegistrationClient }
    | undefined;
  /** Every question this server was asked since it started, as `name/type` (name lower case). */
  readonly seen: string[];
  /** Rewrites every response while set ({@link answerServfail}, {@link corruptMapAt}). */
  tamper: Tamper | undefined;
  /** Queries this server was asked, over any transport: the length of {@link seen}. */
  queries(): number;
  /** Stops answering (every listener closes); the store is kept. */
  stop(): Promise<void>;
  /** Starts answering again on the same ports. */
  start(): Promise<void>;
}

/** How {@link Hierarchy.addServer} builds and delegates a server. */
export interface ServerSpec {
  readonly zone: string;
  /** The zone's server that delegates to it; default the root. */
  readonly parent?: HierarchyServer;
  /** AUTHKEY entries besides the server's own prover key. */
  readonly authkeys?: readonly AuthkeyEntry[];
  /** Rewrites every response. */
  readonly tamper?: Tamper;
  /** DS records to publish in the parent instead of the zone key's (a DS that does not match). */
  readonly ds?: readonly DsData[];
  /** Leave the delegation to the test. */
  readonly delegate?: boolean;
}

/** What a mapping says; every field has a default that makes it valid for its range. */
export interface MappingOptions {
  readonly msps?: readonly MspEntry[];
  readonly seq?: number;
  readonly new?: boolean;
  /** Mapping issue time; default now. */
  readonly iat?: number;
  /** Mapping expiry; default 30 days from now. */
  readonly exp?: number;
  /** Attestation start; default a minute ago. */
  readonly nbf?: number;
  /** Attestation expiry; default a year from now. */
  readonly attExp?: number;
  /** The prover; default the prover key of the DP authoritative for the CSI. */
  readonly prover?: Ed25519KeyPair;
  /** Sealed boxes (`sealMsps`); default none. */
  readonly sealed?: readonly SealedBox[];
}

/** Where {@link Hierarchy.publish} writes. */
export interface PublishOptions {
  /** Owner name of the MAP record; default the CSI's name. */
  readonly at?: string;
  /** RRset TTL; default min(300, seconds until the mapping or its attestation expires). */
  readonly ttl?: number;
  /** Replace the MAP RRset instead of adding to it. */
  readonly replace?: boolean;
}

/** The running hierarchy. */
export interface Hierarchy {
  readonly apex: string;
  /** Temporary directory (TLS files, outbox). */
  readonly dir: string;
  /** PEM of the CA that issued every server certificate. */
  readonly caPem: string;
  /** The root zone's DS and DNSKEY in presentation format (`formatTrustAnchor`). */
  readonly trustAnchor: string;
  /** Root hints as `ResolverConfig.rootServers` wants them. */
  readonly rootServers: ResolverConfig['rootServers'];
  /**
   * The same hints with the root's plain DNS port: a resolver given these keeps a local copy of
   * the root's zone (`rootCopy`), transferred by AXFR from the root, which offers it over TCP
   * and keeps its ZONEMD. The plain {@link rootServers} list no port: no copy.
   */
  readonly rootCopyServers: ResolverConfig['rootServers'];
  readonly root: HierarchyServer;
  /** `+44`. */
  readonly phone: HierarchyServer;
  /** `+447`, delegated from the +44 DP. */
  readonly sub: HierarchyServer;
  /** `@example.com`. */
  readonly email: HierarchyServer;
  /** The MSP's DP (`chat.example.email.mimi.arpa`). */
  readonly msp: HierarchyServer;
  /** The CSIP key listed at the +44 apex (revocations of +44 numbers). */
  readonly csip: Ed25519KeyPair;
  /** TLS certificate and key (PEM) every server uses, for tests that start their own. */
  readonly tls: { readonly cert: string; readonly key: string };
  /** A resolver config pointing at the root with the trust anchor and the CA. */
  resolverConfig(extra?: Partial<ResolverConfig>): ResolverConfig;
  /** The server whose zone is the closest enclosing zone of `name`. */
  serverFor(name: string): HierarchyServer;
  /** The prover key of the DP authoritative for `csi` (what its AUTHKEY lists). */
  proverFor(csi: string): Ed25519KeyPair;
  /** A signed mapping of `csi` by `recipient`, attested by the range's prover by default. */
  mapping(csi: string, recipient: Ed25519KeyPair, options?: MappingOptions): Mapping;
  /**
   * Writes a mapping (or raw MAP RDATA) at `nameOrCsi` (a CSI's name, or an owner name) into the
   * store of the zone holding that name, as a DP would sign and serve it: a mapping does not
   * carry its CSI, so where it goes is the caller's to say (a hostile DP may put it anywhere).
   * `options.at` is not used here.
   */
  publishMapping(
    nameOrCsi: string,
    mapping: Mapping | Uint8Array,
    options?: PublishOptions,
  ): Promise<string>;
  /** `mapping` + `publishMapping`; returns the mapping. */
  publish(
    csi: string,
    recipient: Ed25519KeyPair,
    options?: MappingOptions & PublishOptions,
  ): Promise<Mapping>;
  /** Deletes the MAP RRset at `name` (a CSI or an owner name). */
  removeMappings(nameOrCsi: string): Promise<void>;
  /** Puts the MAPREF RRset at `name` (a CSI or an owner name). */
  publishMapref(nameOrCsi: string, targets: readonly string[]): Promise<void>;
  /** Starts another server and (unless told not to) delegates its zone from `spec.parent`. */
  addServer(spec: ServerSpec): Promise<HierarchyServer>;
  /**
   * Starts another nameserver of `server`'s zone, `ns<N>.<zone>`, answering from the same store
   * on listeners of its own (with its own {@link HierarchyServer.seen} and `tamper`), and lists
   * every nameserver of the zone in its apex NS RRset and in the delegation from its parent,
   * each with its glue (127.0.0.1) and the `_dns` SVCB of its DoH port.
   */
  addNameserver(server: HierarchyServer): Promise<HierarchyServer>;
  /** Delegates `zone` from `parent` to `server`'s DoH endpoint with `ds`. */
  delegateTo(
    parent: HierarchyServer,
    zone: string,
    server: { nameserver: string; dohPort: number },
    ds: readonly DsData[],
  ): Promise<void>;
  /** Starts an HTTPS server that answers every DoH request with random octets. */
  startGarbageServer(): Promise<{ readonly dohPort: number; readonly url: string }>;
  /** Stops every server and deletes the temporary directory. */
  close(): Promise<void>;
}

/** min(`exp`, `att.exp`) of the mapping in MAP RDATA; undefined when it is not one. */
function mappingExpiry(rdata: Uint8Array): number | undefined {
  try {
    const m = decodeMapping(rdata);
    return Math.min(m.exp, m.att.exp);
  } catch (error) {
    if (error instanceof SignedObjectError) return undefined;
    throw error;
  }
}

/** Owner name of a CSI (given canonical or as typed), or the name itself. */
function ownerOf(nameOrCsi: string): string {
  return /^(tel|mailto):/.test(nameOrCsi) ? csiToName(parseCsi(nameOrCsi), APEX) : nameOrCsi;
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** A zone in a fresh memory store, as `mimi-discovery init` makes one ({@link initZone}). */
async function newZoneStore(
  zone: string,
  authkeys: readonly AuthkeyEntry[] = [],
): Promise<{ store: DiscoveryStore; ds: DsData }> {
  const store = createMemoryStore();
  return { store, ds: await initZone(store, zone, authkeys) };
}

/** What a zone server's handler reads and records while it runs. */
interface ZoneServerState {
  tamper: Tamper | undefined;
  /** Every question seen, as `name/type`, the name in lower case. */
  readonly seen: string[];
}

/** Starts DNS listeners for `store` on `ports` (0: ephemeral), recording the questions. */
function createZoneServer(
  zone: string,
  store: DiscoveryStore,
  tls: { cert: string; key: string },
  state: ZoneServerState,
): {
  start(ports?: { dns: number; doh: number }): Promise<DnsServer>;
  stop(): Promise<void>;
} {
  const answer = createAnswerer(store);
  // The root offers its zone by AXFR (RFC 5936), as the root directory does.
  const transfer = zone === APEX ? createTransferHandler(store, { zones: [zone] }) : undefined;
  const hung = new Set<() => void>();
  let running: DnsServer | undefined;
  const sign = (rrset: readonly ResourceRecord[]): RecordOf<'RRSIG'> => {
    const key = store.zoneKey(zone);
    if (key === undefined) throw new Error(`no key for ${zone}`);
    const now = nowSeconds();
    return signRRset(rrset, key, { inception: now - 3600, expiration: now + 86_400 });
  };
  const handler: QueryHandler = async (query, context) => {
    const q = query.questions[0];
    state.seen.push(q === undefined ? '' : `${q.name.toLowerCase()}/${q.type}`);
    const honest = await answer(query, context);
    const tamper = state.tamper;
    if (tamper === undefined) return honest;
    return tamper(query, honest, {
      zone,
      store,
      transport: context.transport,
      sign,
      hang: () =>
        new Promise<Message>((resolve) => {
          const release = (): void => resolve(respondError(query, 'SERVFAIL'));
          hung.add(release);
        }),
    });
  };
  return {
    async start(ports) {
      running = await startDnsServer(
        {
          host: '127.0.0.1',
          udp: { port: ports?.dns ?? 0 },
          tcp: { port: ports?.dns ?? 0, ...(transfer === undefined ? {} : { transfer }) },
          doh: { port: ports?.doh ?? 0, cert: tls.cert, key: tls.key },
        },
        handler,
      );
      return running;
    },
    async stop() {
      for (const release of hung) release();
      hung.clear();
      await running?.close();
      running = undefined;
    },
  };
}

/** Builds and starts the hierarchy; see the module comment. */
export async function buildHierarchy(): Promise<Hierarchy> {
  const dir = mkdtempSync(join(tmpdir(), 'mimi-hierarchy-'));
  const servers: HierarchyServer[] = [];
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async (): Promise<void> => {
    await Promise.allSettled(closers.reverse().map((close) => close()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ca = await createLocalCa({ commonName: 'MIMI test hierarchy CA' });
    const leaf = await issueServerCertificate(ca, {
      hostnames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    const tls = { cert: leaf.certPem, key: leaf.keyPem };
    const csip = generateKeyPair();

    const startServer = async (
      zone: string,
      options: {
        authkeys?: readonly AuthkeyEntry[];
        tamper?: Tamper | undefined;
        api?: boolean;
      } = {},
    ): Promise<{ server: HierarchyServer; ds: DsData }> => {
      const { store, ds } = await newZoneStore(zone, options.authkeys);
      closers.push(() => store.close());
      return { server: await serveZone(zone, store, `ns1.${zone}`, options), ds };
    };

    /** Listeners for `zone` from `store` as the nameserver `nameserver`. */
    const serveZone = async (
      zone: string,
      store: DiscoveryStore,
      nameserver: string,
      options: { tamper?: Tamper | undefined; api?: boolean } = {},
    ): Promise<HierarchyServer> => {
      const state: ZoneServerState = { tamper: options.tamper, seen: [] };
      const zoneServer = createZoneServer(zone, store, tls, state);
      const dns = await zoneServer.start();
      closers.push(() => zoneServer.stop());
      if (!dns.udp || !dns.tcp || !dns.doh) throw new Error(`${zone}: a listener did not start`);
      const ports = { dns: dns.udp.port, doh: dns.doh.port };
      let api: HierarchyServer['api'];
      if (options.api === true) {
        const outbox = join(dir, `${zone}.outbox.jsonl`);
        const registrar = createRegistrar({
          store,
          channels: { fallback: createOutboxChannel(outbox) },
          apex: APEX,
          limits: TEST_REGISTRATION_LIMITS,
        });
        const running = await startRegistrationApi({ host: '127.0.0.1', port: 0, tls }, registrar);
        closers.push(() => running.close());
        const client = createRegistrationClient({ url: running.url, ca: ca.certPem });
        closers.push(() => client.close());
        api = { url: running.url, outbox, client };
      }
      const server: HierarchyServer = {
        zone,
        store,
        nameserver,
        udp: { host: '127.0.0.1', port: ports.dns },
        tcp: { host: '127.0.0.1', port: ports.dns },
        dohUrl: dns.doh.url,
        dohPort: ports.doh,
        api,
        seen: state.seen,
        get tamper() {
          return state.tamper;
        },
        set tamper(tamper: Tamper | undefined) {
          state.tamper = tamper;
        },
        queries: () => state.seen.length,
        stop: () => zoneServer.stop(),
        async start() {
          await zoneServer.start(ports);
        },
      };
      servers.push(server);
      return server;
    };

    const addNameserver = async (primary: HierarchyServer): Promise<HierarchyServer> => {
      const zone = primary.zone;
      const siblings = servers.filter((s) => s.zone === zone);
      const added = await serveZone(zone, primary.store, `ns${siblings.length + 1}.${zone}`);
      const all = [...siblings, added];
      const glue = all.map((s) => ({
        name: s.nameserver,
        addresses: ['127.0.0.1'],
        doh: { port: s.dohPort },
      }));
      await primary.store.apply(zone, [
        {
          op: 'put',
          name: zone,
          type: 'NS',
          records: all.map((s) => record(zone, 'NS', s.nameserver, 3600)),
        },
        ...all.map((s) => ({
          op: 'put' as const,
          name: s.nameserver,
          type: 'A' as const,
          records: [record(s.nameserver, 'A', '127.0.0.1', 3600)],
        })),
      ]);
      const above = parentName(zone);
      const parent = above === undefined ? undefined : serverFor(above);
      const current =
        parent === undefined
          ? undefined
          : listDelegations(parent.store, parent.zone).find((d) => d.zone === zone);
      if (parent === undefined || current === undefined) {
        throw new Error(`${zone} is not delegated in the hierarchy`);
      }
      await delegate(parent.store, parent.zone, { zone, nameservers: glue, ds: current.ds });
      return added;
    };

    const delegateTo = async (
      parent: HierarchyServer,
      zone: string,
      server: { nameserver: string; dohPort: number },
      ds: readonly DsData[],
    ): Promise<void> => {
      await delegate(parent.store, parent.zone, {
        zone,
        nameservers: [
          { name: server.nameserver, addresses: ['127.0.0.1'], doh: { port: server.dohPort } },
        ],
        ds: [...ds],
      });
    };

    const { server: root } = await startServer(APEX);
    await keepZoneDigest(root.store, APEX);
    const phone = await startServer(PHONE_ZONE, {
      authkeys: [authkey('csip', csip.publicKey)],
      api: true,
    });
    const sub = await startServer(SUB_ZONE);
    const email = await startServer(EMAIL_ZONE);
    const msp = await startServer(MSP_ZONE);
    await delegateTo(root, PHONE_ZONE, phone.server, [phone.ds]);
    await delegateTo(phone.server, SUB_ZONE, sub.server, [sub.ds]);
    await delegateTo(root, EMAIL_ZONE, email.server, [email.ds]);
    await delegateTo(root, MSP_ZONE, msp.server, [msp.ds]);

    const anchor = rootTrustAnchor(root.store, APEX);
    const trustAnchor = formatTrustAnchor(anchor);
    const rootServers: ResolverConfig['rootServers'] = [
      { name: root.nameserver, addresses: ['127.0.0.1'], doh: root.dohUrl },
    ];
    const rootCopyServers: ResolverConfig['rootServers'] = [
      { name: root.nameserver, addresses: ['127.0.0.1'], port: root.tcp.port, doh: root.dohUrl },
    ];

    const serverFor = (name: string): HierarchyServer => {
      const owner = canonicalName(name);
      let best: HierarchyServer | undefined;
      for (const server of servers) {
        if (!isSubdomain(owner, server.zone)) continue;
        if (best === undefined || server.zone.length > best.zone.length) best = server;
      }
      if (best === undefined) throw new Error(`no server of the hierarchy holds ${name}`);
      return best;
    };

    const proverFor = (csi: string): Ed25519KeyPair => serverFor(ownerOf(csi)).store.proverKey();

    const mapping = (
      csi: string,
      recipient: Ed25519KeyPair,
      options: MappingOptions = {},
    ): Mapping => {
      const canonical = parseCsi(csi);
      const now = nowSeconds();
      const nbf = options.nbf ?? now - 60;
      const prover = options.prover ?? proverFor(canonical);
      const att = createAttestation(
        {
          csi: canonical,
          key: recipient.publicKey,
          nbf,
          exp: options.attExp ?? now + 365 * 86_400,
        },
        prover.secretKey,
      );
      return createMapping(
        {
          csi: canonical,
          msps: options.msps ?? [{ provider: 'chat.example', tags: ['mls'] }],
          seq: options.seq ?? 1,
          iat: options.iat ?? now,
          exp: options.exp ?? now + 30 * 86_400,
          new: options.new ?? false,
          att,
          ...(options.sealed === undefined ? {} : { sealed: options.sealed }),
        },
        recipient.secretKey,
      );
    };

    const publishMapping = async (
      nameOrCsi: string,
      value: Mapping | Uint8Array,
      options: PublishOptions = {},
    ): Promise<string> => {
      const bytes = value instanceof Uint8Array ? value : encodeMapping(value);
      const name = canonicalName(ownerOf(nameOrCsi));
      const server = serverFor(name);
      // RDATA that is no mapping of this version (a test's forgery) has no expiry to follow.
      const expiry = mappingExpiry(bytes);
      const ttl =
        options.ttl ??
        (expiry === undefined
          ? MAP_TTL_SECONDS
          : Math.max(1, Math.min(MAP_TTL_SECONDS, expiry - nowSeconds())));
      const existing =
        options.replace === true ? [] : server.store.readRRset(server.zone, name, 'MAP');
      const records = [
        ...existing.flatMap((rr) => (rr.type === 'MAP' ? [record(name, 'MAP', rr.data, ttl)] : [])),
        record(name, 'MAP', bytes, ttl),
      ];
      await server.store.apply(server.zone, [{ op: 'put', name, type: 'MAP', records }]);
      return server.zone;
    };

    const hierarchy: Hierarchy = {
      apex: APEX,
      dir,
      caPem: ca.certPem,
      trustAnchor,
      rootServers,
      rootCopyServers,
      root,
      phone: phone.server,
      sub: sub.server,
      email: email.server,
      msp: msp.server,
      csip,
      tls,
      resolverConfig: (extra = {}) => ({
        rootServers,
        trustAnchor: anchor,
        ca: ca.certPem,
        ...extra,
      }),
      serverFor,
      proverFor,
      mapping,
      publishMapping,
      async publish(csi, recipient, options = {}) {
        const m = mapping(csi, recipient, options);
        await publishMapping(options.at ?? parseCsi(csi), m, options);
        return m;
      },
      async removeMappings(nameOrCsi) {
        const name = canonicalName(ownerOf(nameOrCsi));
        const server = serverFor(name);
        await server.store.apply(server.zone, [{ op: 'delete', name, type: 'MAP' }]);
      },
      async publishMapref(nameOrCsi, targets) {
        const name = canonicalName(ownerOf(nameOrCsi));
        const server = serverFor(name);
        const records = targets.map((t) => record(name, 'MAPREF', t, MAP_TTL_SECONDS));
        await server.store.apply(server.zone, [{ op: 'put', name, type: 'MAPREF', records }]);
      },
      async addServer(spec) {
        const { server, ds } = await startServer(spec.zone, {
          ...(spec.authkeys === undefined ? {} : { authkeys: spec.authkeys }),
          tamper: spec.tamper,
        });
        if (spec.delegate !== false) {
          await delegateTo(spec.parent ?? root, spec.zone, server, spec.ds ?? [ds]);
        }
        return server;
      },
      delegateTo,
      addNameserver,
      async startGarbageServer() {
        const garbage = await startGarbageDohServer(tls);
        closers.push(() => garbage.close());
        return garbage;
      },
      close: closeAll,
    };
    return hierarchy;
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/**
 * An HTTPS server (HTTP/2 and HTTP/1.1) that answers every request, whatever its path or
 * method, with `200 application/dns-message` and 512 random octets whose QDCOUNT is 0xffff, so
 * they never decode as a DNS message.
 */
async function startGarbageDohServer(tls: {
  cert: string;
  key: string;
}): Promise<{ dohPort: number; url: string; close(): Promise<void> }> {
  const server: Http2SecureServer = createSecureServer({ ...tls, allowHTTP1: true });
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('request', (request, response) => {
    request.resume();
    request.once('end', () => {
      const junk = randomBytes(512);
      junk[4] = 0xff;
      junk[5] = 0xff;
      response.writeHead(200, { 'content-type': 'application/dns-message' });
      response.end(junk);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1' }, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    dohPort: port,
    url: `https://127.0.0.1:${port}/dns-query`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** A DS that matches no key of `zone`: the DS of a key made for the occasion. */
export function unrelatedDs(zone: string): DsData {
  const key = createZoneKey(zone);
  return computeDs(zone, key.dnskey);
}

/** A {@link Tamper} that answers every query with SERVFAIL: a server that is up but failing. */
export const answerServfail: Tamper = (query) => respondError(query, 'SERVFAIL');

/**
 * A {@link Tamper} that flips the last octet of every MAP record at `name` after signing, so
 * that its RRSIG no longer verifies.
 */
export function corruptMapAt(name: string): Tamper {
  const target = canonicalName(name);
  return (_query, honest) => ({
    ...honest,
    answers: honest.answers.map((rr) => {
      if (rr.type !== 'MAP' || canonicalName(rr.name) !== target) return rr;
      const data = Uint8Array.from(rr.data);
      data[data.length - 1] = (data[data.length - 1] ?? 0) ^ 0x01;
      return { ...rr, data };
    }),
  });
}

const seeded = (byte: number): Ed25519KeyPair => keyPairFromSeed(new Uint8Array(32).fill(byte));
/** Recipient keys of {@link publishCases}. */
export const ALICE = seeded(0x21);
export const BOB = seeded(0x22);
export const CAROL = seeded(0x23);

/** The CSIs {@link publishCases} publishes, by what they exercise. */
export const CSIS = Object.freeze({
  found: parseCsi('+44 20 7946 0018'),
  empty: parseCsi('+44 20 7946 0019'),
  none: parseCsi('+44 20 7946 0999'),
  bogus: parseCsi('+44 20 7946 0017'),
  mapref: parseCsi('+44 20 7946 0020'),
  wrongCsi: parseCsi('+44 20 7946 0021'),
  rotated: parseCsi('+44 20 7946 0022'),
});
/** Where the MAPREF of `CSIS.mapref` points, in the MSP's zone. */
export const MAPREF_TARGET = `alice.${MSP_ZONE}`;

/**
 * Publishes one case of each outcome the resolver tells apart, all in the +44 zone:
 *
 * - `found`, `empty` (a mapping listing no MSP), `none` (nothing published), `bogus` (a mapping
 *   a test corrupts with {@link corruptMapAt});
 * - `mapref`: Alice's mapping and a MAPREF to {@link MAPREF_TARGET}, where Bob's mapping is
 *   attested by the +44 prover (valid) and Carol's by the MSP zone's own prover (not a prover
 *   of +44: dropped);
 * - `wrongCsi`: a valid mapping of `found` stored at the name of another CSI;
 * - `rotated`: Alice's seq 1 and 2, Bob's key attested two hours ago, and Carol's key attested
 *   an hour ago with the "new" bit, which de-lists Bob but not Alice (attested a minute ago);
 *
 * and delegates {@link BAD_ZONE} with a DS that matches none of its keys.
 */
export async function publishCases(h: Hierarchy): Promise<void> {
  const t0 = nowSeconds();
  const earlier = { nbf: t0 - 3600, iat: t0 - 60 };
  await h.publish(CSIS.found, ALICE, earlier);
  await h.publish(CSIS.empty, ALICE, { ...earlier, msps: [] });
  await h.publish(CSIS.bogus, ALICE, earlier);
  await h.publish(CSIS.mapref, ALICE, earlier);
  await h.publishMapref(CSIS.mapref, [MAPREF_TARGET]);
  await h.publish(CSIS.found, ALICE, { ...earlier, at: csiToName(CSIS.wrongCsi, APEX) });
  await h.publish(CSIS.rotated, ALICE, {
    seq: 1,
    nbf: t0 - 60,
    msps: [{ provider: 'old.example', tags: [] }],
  });
  await h.publish(CSIS.rotated, ALICE, { seq: 2, nbf: t0 - 60 });
  await h.publish(CSIS.rotated, BOB, { nbf: t0 - 7200 });
  await h.publish(CSIS.rotated, CAROL, { new: true, nbf: t0 - 3600 });
  const at = { at: MAPREF_TARGET };
  await h.publish(CSIS.mapref, BOB, { ...earlier, ...at, prover: h.proverFor(CSIS.mapref) });
  await h.publish(CSIS.mapref, CAROL, { ...earlier, ...at, prover: h.msp.store.proverKey() });
  await h.addServer({ zone: BAD_ZONE, ds: [unrelatedDs(BAD_ZONE)] });
}
