import {
  computeDs,
  createAttestation,
  createLocalCa,
  createMapping,
  createTrustAnchor,
  csiToName,
  encodeMapping,
  formatTrustAnchor,
  issueServerCertificate,
  keyPairFromSeed,
  parseCsi,
  record,
  respondError,
  startDnsServer,
  type Csi,
  type DnskeyData,
  type DnsServer,
  type Ed25519KeyPair,
  type Message,
  type MspEntry,
  type QueryHandler,
} from '@mimi-discovery/common';
import {
  createAnswerer,
  createMemoryStore,
  delegate,
  type DiscoveryStore,
} from '@mimi-discovery/authoritative';
import type { ResolverConfig } from '../src/index.js';

/**
 * A small hierarchy on 127.0.0.1, in process, for the resolver's unit tests:
 *
 * ```
 *   mimi.arpa (root)              served by `root`
 *     ├── 4.4.e164.mimi.arpa      served by `phone` (+44: found, empty, none, bogus, MAPREF)
 *     ├── msp.mimi.arpa           served by `msp`   (a MAPREF target zone)
 *     └── bad.mimi.arpa           served by `msp`, delegated with a DS of another key
 * ```
 *
 * Every server answers UDP, TCP and DoH (certificate from a local CA, 127.0.0.1 as IP SAN).
 * Each server's handler counts the questions it sees and can be switched to SERVFAIL (`down`)
 * or made to tamper with one name's MAP records after signing (`tamper`).
 */

export const APEX = 'mimi.arpa';
export const PHONE_ZONE = '4.4.e164.mimi.arpa';
export const MSP_ZONE = 'msp.mimi.arpa';
export const BAD_ZONE = 'bad.mimi.arpa';
export const MAP_TTL = 300;

const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
export const ALICE = keyPairFromSeed(seed(0x21));
export const BOB = keyPairFromSeed(seed(0x22));
export const CAROL = keyPairFromSeed(seed(0x23));

/** The CSIs the fixture publishes, by what they exercise. */
export const CSIS = Object.freeze({
  found: parseCsi('+44 20 7946 0018'),
  empty: parseCsi('+44 20 7946 0019'),
  none: parseCsi('+44 20 7946 0999'),
  bogus: parseCsi('+44 20 7946 0017'),
  mapref: parseCsi('+44 20 7946 0020'),
  wrongCsi: parseCsi('+44 20 7946 0021'),
  rotated: parseCsi('+44 20 7946 0022'),
});
/** Where the MAPREF of `CSIS.mapref` points. */
export const MAPREF_TARGET = `alice.${MSP_ZONE}`;

export const MSPS: readonly MspEntry[] = [{ provider: 'chat.example', tags: ['mls'] }];

/** One server of the fixture. */
export interface FixtureServer {
  readonly store: DiscoveryStore;
  readonly server: DnsServer;
  readonly dohUrl: string;
  readonly udpPort: number;
  /** Every question seen, as `name/type`. */
  readonly seen: string[];
  /** Answer every query with SERVFAIL while true. */
  down: boolean;
  /** A name whose MAP records are altered after signing. */
  tamper: string | undefined;
}

export interface Hierarchy {
  readonly caPem: string;
  readonly trustAnchor: string;
  readonly root: FixtureServer;
  readonly phone: FixtureServer;
  readonly msp: FixtureServer;
  /** A resolver config over DoH. */
  config(extra?: Partial<ResolverConfig>): ResolverConfig;
  close(): Promise<void>;
}

async function startFixtureServer(
  store: DiscoveryStore,
  tls: { cert: string; key: string },
): Promise<FixtureServer> {
  const answer = createAnswerer(store);
  const state = { seen: [] as string[], down: false, tamper: undefined as string | undefined };
  const handler: QueryHandler = async (query, context) => {
    const q = query.questions[0];
    if (q !== undefined) state.seen.push(`${q.name.toLowerCase()}/${q.type}`);
    if (state.down) return respondError(query, 'SERVFAIL');
    const response: Message = await answer(query, context);
    if (state.tamper === undefined) return response;
    const target = state.tamper;
    return {
      ...response,
      answers: response.answers.map((rr) => {
        if (rr.type !== 'MAP' || rr.name.toLowerCase() !== target) return rr;
        const data = Uint8Array.from(rr.data);
        data[data.length - 1] = (data[data.length - 1] ?? 0) ^ 0x01;
        return { ...rr, data };
      }),
    };
  };
  const server = await startDnsServer(
    { host: '127.0.0.1', udp: { port: 0 }, tcp: { port: 0 }, doh: { port: 0, ...tls } },
    handler,
  );
  if (server.doh === undefined || server.udp === undefined) throw new Error('listener missing');
  const fixture: FixtureServer = {
    store,
    server,
    dohUrl: server.doh.url,
    udpPort: server.udp.port,
    get seen() {
      return state.seen;
    },
    get down() {
      return state.down;
    },
    set down(value: boolean) {
      state.down = value;
    },
    get tamper() {
      return state.tamper;
    },
    set tamper(value: string | undefined) {
      state.tamper = value;
    },
  };
  return fixture;
}

async function addZone(store: DiscoveryStore, origin: string): Promise<DnskeyData> {
  await store.addZone({
    origin,
    nameservers: [`ns1.${origin}`],
    mname: `ns1.${origin}`,
    rname: `hostmaster.${origin}`,
    minimum: 300,
  });
  const dnskey = store.readRRset(origin, origin, 'DNSKEY')[0];
  if (dnskey?.type !== 'DNSKEY') throw new Error(`no DNSKEY for ${origin}`);
  return dnskey.data;
}

/** A signed MAP record for `csi` by `recipient`, attested by `prover`. */
export function mapRecord(
  csi: Csi,
  recipient: Ed25519KeyPair,
  prover: Ed25519KeyPair,
  options: {
    msps?: readonly MspEntry[];
    seq?: number;
    new?: boolean;
    nbf?: number;
    owner?: string;
    forCsi?: Csi;
  } = {},
) {
  const now = Math.floor(Date.now() / 1000);
  const forCsi = options.forCsi ?? csi;
  const att = createAttestation(
    {
      csi: forCsi,
      key: recipient.publicKey,
      nbf: options.nbf ?? now - 3600,
      exp: now + 365 * 86400,
    },
    prover.secretKey,
  );
  const mapping = createMapping(
    {
      csi: forCsi,
      msps: options.msps ?? MSPS,
      seq: options.seq ?? 1,
      iat: now - 60,
      exp: now + 30 * 86400,
      new: options.new ?? false,
      att,
    },
    recipient.secretKey,
  );
  return record(options.owner ?? csiToName(csi), 'MAP', encodeMapping(mapping), MAP_TTL);
}

/** Builds and starts the hierarchy. */
export async function buildHierarchy(): Promise<Hierarchy> {
  const ca = await createLocalCa({ commonName: 'resolver test CA' });
  const leaf = await issueServerCertificate(ca, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  const tls = { cert: leaf.certPem, key: leaf.keyPem };
  const rootStore = createMemoryStore();
  const phoneStore = createMemoryStore();
  const mspStore = createMemoryStore();
  const rootKey = await addZone(rootStore, APEX);
  const phoneKey = await addZone(phoneStore, PHONE_ZONE);
  const mspKey = await addZone(mspStore, MSP_ZONE);
  await addZone(mspStore, BAD_ZONE);

  const t0 = Math.floor(Date.now() / 1000);
  const phoneProver = phoneStore.proverKey();
  const mspProver = mspStore.proverKey();
  const put = (name: string, records: ReturnType<typeof mapRecord>[]) => ({
    op: 'put' as const,
    name,
    type: 'MAP' as const,
    records,
  });
  await phoneStore.apply(PHONE_ZONE, [
    put(csiToName(CSIS.found), [mapRecord(CSIS.found, ALICE, phoneProver)]),
    put(csiToName(CSIS.empty), [mapRecord(CSIS.empty, ALICE, phoneProver, { msps: [] })]),
    put(csiToName(CSIS.bogus), [mapRecord(CSIS.bogus, ALICE, phoneProver)]),
    put(csiToName(CSIS.mapref), [mapRecord(CSIS.mapref, ALICE, phoneProver)]),
    {
      op: 'put',
      name: csiToName(CSIS.mapref),
      type: 'MAPREF',
      records: [record(csiToName(CSIS.mapref), 'MAPREF', MAPREF_TARGET, MAP_TTL)],
    },
    put(csiToName(CSIS.wrongCsi), [
      mapRecord(CSIS.wrongCsi, ALICE, phoneProver, { forCsi: CSIS.found }),
    ]),
    // Two mappings of one key (seq 1 and 2), and Bob's older key, de-listed by Carol's `new`.
    put(csiToName(CSIS.rotated), [
      mapRecord(CSIS.rotated, ALICE, phoneProver, {
        seq: 1,
        nbf: t0 - 60,
        msps: [{ provider: 'old.example', tags: [] }],
      }),
      mapRecord(CSIS.rotated, ALICE, phoneProver, { seq: 2, nbf: t0 - 60 }),
      mapRecord(CSIS.rotated, BOB, phoneProver, { nbf: t0 - 7200 }),
      mapRecord(CSIS.rotated, CAROL, phoneProver, { new: true, nbf: t0 - 3600 }),
    ]),
  ]);
  await mspStore.apply(MSP_ZONE, [
    put(MAPREF_TARGET, [
      // Attested by the +44 prover: valid for the CSI.
      mapRecord(CSIS.mapref, BOB, phoneProver, { owner: MAPREF_TARGET }),
      // Attested by the MSP zone's own prover, which the +44 range does not list: dropped.
      mapRecord(CSIS.mapref, CAROL, mspProver, { owner: MAPREF_TARGET }),
    ]),
  ]);

  const root = await startFixtureServer(rootStore, tls);
  const phone = await startFixtureServer(phoneStore, tls);
  const msp = await startFixtureServer(mspStore, tls);
  const port = (s: FixtureServer): number => Number(new URL(s.dohUrl).port);
  for (const [zone, server, key] of [
    [PHONE_ZONE, phone, phoneKey],
    [MSP_ZONE, msp, mspKey],
    // The DS of another zone's key: no DNSKEY of bad.mimi.arpa matches it.
    [BAD_ZONE, msp, phoneKey],
  ] as const) {
    await delegate(rootStore, APEX, {
      zone,
      nameservers: [{ name: `ns1.${zone}`, addresses: ['127.0.0.1'], doh: { port: port(server) } }],
      ds: [computeDs(zone, key)],
    });
  }
  const anchor = createTrustAnchor(APEX, [rootKey]);
  const trustAnchor = formatTrustAnchor(anchor);
  return {
    caPem: ca.certPem,
    trustAnchor,
    root,
    phone,
    msp,
    config: (extra = {}) => ({
      rootServers: [{ name: 'ns1.mimi.arpa', addresses: ['127.0.0.1'], doh: root.dohUrl }],
      trustAnchor: anchor,
      ca: ca.certPem,
      ...extra,
    }),
    close: async () => {
      await Promise.allSettled([root, phone, msp].map((s) => s.server.close()));
    },
  };
}
