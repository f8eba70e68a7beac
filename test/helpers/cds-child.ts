import { createServer, type Server, type Socket } from 'node:net';
import {
  computeDs,
  createZoneKey,
  record,
  respondError,
  signRRset,
  startDnsServer,
  type DnsServer,
  type DnskeyData,
  type DsData,
  type Message,
  type ResourceRecord,
  type ZoneKey,
} from '@mimi-discovery/common';

/**
 * A child zone for the parent's CDS tests: a real DNS server of this project (`startDnsServer`,
 * TCP) whose handler answers DNSKEY, CDS and CDNSKEY at the child's apex with records signed by
 * the keys a test chooses — honest, or as a hostile child or a compromised nameserver would
 * sign them. Also a TCP server that accepts and never answers (a child that stalls).
 */

/**
 * The time the tests' clocks stand at (2026-01-01, as the store battery's `T0`): the fixture's
 * signatures are made for it.
 */
export const CDS_NOW = 1767225600;

/** The child zone the tests delegate. */
export const CHILD_ZONE = '7.4.4.e164.mimi.arpa';
/** The parent zone (the store battery's +44 zone). */
export const PARENT_ZONE = '4.4.e164.mimi.arpa';

/** Fixed keys of the child: K1 (the one the parent's DS names at first), K2 (the next one). */
export const K1 = createZoneKey(CHILD_ZONE, { seed: new Uint8Array(32).fill(11) });
export const K2 = createZoneKey(CHILD_ZONE, { seed: new Uint8Array(32).fill(12) });
/** A key of an attacker: never in the parent's DS. */
export const K3 = createZoneKey(CHILD_ZONE, { seed: new Uint8Array(32).fill(13) });

/** The DS (SHA-256) of a child key. */
export function dsOf(key: ZoneKey): DsData {
  return computeDs(CHILD_ZONE, key.dnskey);
}

/** RFC 8078 §4: the CDS asking for the DS to be removed, and the CDNSKEY doing the same. */
export const DELETE_CDS: DsData = {
  keyTag: 0,
  algorithm: 0,
  digestType: 0,
  digest: Uint8Array.of(0),
};
export const DELETE_CDNSKEY: DnskeyData = {
  flags: 0,
  protocol: 3,
  algorithm: 0,
  publicKey: Uint8Array.of(0),
};

/** What the child serves at its apex, and with which keys each RRset is signed. */
export interface ChildContent {
  dnskeys: DnskeyData[];
  dnskeySigners: ZoneKey[];
  cds?: DsData[];
  cdnskey?: DnskeyData[];
  cdsSigners: ZoneKey[];
  /**
   * Served in place of `cds`, with the RRSIGs made over `cds`: what an attacker on the path who
   * rewrites the answer but cannot sign sends.
   */
  tamperedCds?: DsData[];
  /** RRSIG inception of every signature; expiration is inception + 14 days. */
  inception: number;
}

/** The honest content: `keys` published, signed by all of them, CDS/CDNSKEY for `cdsKeys`. */
export function honest(
  keys: ZoneKey[],
  cdsKeys: ZoneKey[] | undefined,
  inception = CDS_NOW - 3600,
): ChildContent {
  return {
    dnskeys: keys.map((k) => k.dnskey),
    dnskeySigners: keys,
    ...(cdsKeys === undefined
      ? {}
      : { cds: cdsKeys.map(dsOf), cdnskey: cdsKeys.map((k) => k.dnskey) }),
    cdsSigners: keys,
    inception,
  };
}

/** The records (RRset and RRSIGs) a child with `content` answers for `type` at its apex. */
export function apexAnswer(content: ChildContent, type: string): ResourceRecord[] {
  const validity = { inception: content.inception, expiration: content.inception + 14 * 86_400 };
  let rrset: ResourceRecord[] = [];
  let signers: ZoneKey[] = content.cdsSigners;
  if (type === 'DNSKEY') {
    rrset = content.dnskeys.map((k) => record(CHILD_ZONE, 'DNSKEY', k, 300));
    signers = content.dnskeySigners;
  } else if (type === 'CDS') {
    rrset = (content.cds ?? []).map((d) => record(CHILD_ZONE, 'CDS', d, 300));
  } else if (type === 'CDNSKEY') {
    rrset = (content.cdnskey ?? []).map((k) => record(CHILD_ZONE, 'CDNSKEY', k, 300));
  }
  if (rrset.length === 0) return [];
  const rrsigs = signers.map((key) => signRRset(rrset, key, validity));
  if (type === 'CDS' && content.tamperedCds !== undefined) {
    rrset = content.tamperedCds.map((d) => record(CHILD_ZONE, 'CDS', d, 300));
  }
  return [...rrset, ...rrsigs];
}

/** A running child nameserver; `content` may be changed between polls. */
export interface ChildServer {
  readonly host: string;
  readonly port: number;
  content: ChildContent;
  /** When set, every answer to CDS is this many copies of the first CDS record (a flood). */
  flood: number | undefined;
  /** Called with each question's type before it is answered. */
  onQuery: ((type: string) => void) | undefined;
  /** Queries answered so far. */
  readonly queries: number;
  close(): Promise<void>;
}

/** Starts a child nameserver on `host` (TCP, `port` 0: any free one) serving `content`. */
export async function startChildServer(
  content: ChildContent,
  host = '127.0.0.1',
  port = 0,
): Promise<ChildServer> {
  let queries = 0;
  const child: { content: ChildContent; flood?: number; onQuery?: (type: string) => void } = {
    content,
  };
  const handler = (query: Message): Message => {
    queries++;
    const response = respondError(query, 'NOERROR');
    response.flags = { ...response.flags, aa: true };
    const q = query.questions[0];
    if (q !== undefined) child.onQuery?.(q.type);
    if (q === undefined || q.name.toLowerCase() !== CHILD_ZONE) return response;
    let answers = apexAnswer(child.content, q.type);
    if (child.flood !== undefined && q.type === 'CDS') {
      const first = answers[0];
      if (first !== undefined) answers = Array.from({ length: child.flood }, () => first);
    }
    response.answers = answers;
    return response;
  };
  const server: DnsServer = await startDnsServer({ host, tcp: { port } }, handler);
  const bound = server.tcp;
  if (bound === undefined) throw new Error('no TCP listener');
  return {
    host: bound.host,
    port: bound.port,
    get content() {
      return child.content;
    },
    set content(value: ChildContent) {
      child.content = value;
    },
    get flood() {
      return child.flood;
    },
    set flood(value: number | undefined) {
      if (value === undefined) delete child.flood;
      else child.flood = value;
    },
    get onQuery() {
      return child.onQuery;
    },
    set onQuery(value: ((type: string) => void) | undefined) {
      if (value === undefined) delete child.onQuery;
      else child.onQuery = value;
    },
    get queries() {
      return queries;
    },
    close: () => server.close(),
  };
}

/** A TCP server that accepts connections and never answers: a child that stalls. */
export async function startStallingServer(
  host = '127.0.0.1',
): Promise<{ port: number; readonly connections: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  let connections = 0;
  server.on('connection', () => connections++);
  return {
    port: address.port,
    get connections() {
      return connections;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
