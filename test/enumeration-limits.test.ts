import { createSocket } from 'node:dgram';
import { connect as connectTcp, type Socket } from 'node:net';
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DNS_MESSAGE_MEDIA_TYPE,
  EDE_PROHIBITED,
  buildQuery,
  createLocalCa,
  csiToName,
  decodeMessage,
  encodeMessage,
  extendedDnsErrors,
  issueServerCertificate,
  keyPairFromSeed,
  parseCsi,
  silentLogger,
  type Message,
} from '@mimi-discovery/common';
import {
  DEFAULT_NEW_NAME_BURST,
  createResolver,
  type DiscoveryResult,
  type Resolver,
  type RunningResolverServer,
  startResolverServer,
} from '@mimi-discovery/resolver';
import { agentsByAddress, postDiscover, type DiscoverReply } from './helpers/client-address.js';
import { createFakeClock } from './helpers/clock.js';
import { buildNetwork, type Network } from './helpers/network.js';
import { answerOf, apiOf, attest, mappingBytes } from './helpers/registration.js';

// Enumeration bounded (R8), end to end: the root and the DPs of the test network, a resolver
// that walks and validates for real, and its front ends — the JSON API, DNS over UDP and TCP,
// DoH — with the default budget of new names per client (2,000 at once, 2,000 more a day). One
// client enumerating 10,000 distinct CSIs is stopped at the budget on each front end (429 with
// Retry-After, REFUSED with Extended DNS Error 18), while another client is served and a contact
// sync of 1,000 new CSIs passes. Each client is an address of 127/8 of its own; the limits' clock
// is a fake one that only the test moves.

/** The 10,000 CSIs of the enumeration, as typed. */
const ENUMERATION = Array.from({ length: 10_000 }, (_, i) => `+4420${70_000_000 + i}`);
const ALICE = keyPairFromSeed(new Uint8Array(32).fill(0x31));
const ALICE_PHONE = parseCsi('+44 20 7946 0018');
/** A contact book: 500 numbers, 499 email addresses, and Alice, who published a mapping. */
const CONTACTS = [
  ...Array.from({ length: 500 }, (_, i) => `+4420${80_000_000 + i}`),
  ...Array.from({ length: 499 }, (_, i) => `friend${i}@example.com`),
  ALICE_PHONE,
];

let net: Network;
let resolver: Resolver;
let server: RunningResolverServer;
const clock = createFakeClock();
const agents = agentsByAddress(() => resolverCa);
const agentFor = (address: string): Agent => agents.agentFor(address);
/** The CA of the resolver's certificate (DoH, JSON API). */
let resolverCa: string;

beforeAll(async () => {
  net = await buildNetwork();
  const att = await attest(apiOf(net.phone), ALICE_PHONE, ALICE);
  const published = await answerOf(
    apiOf(net.phone).client.publishMapping({ csi: ALICE_PHONE, mapping: mappingBytes(att, ALICE) }),
  );
  expect(published.status).toBe(201);
  resolver = createResolver(
    {
      rootServers: [{ name: `ns1.${net.apex}`, addresses: ['127.0.0.1'], doh: net.root.dohUrl }],
      trustAnchor: net.trustAnchor,
      ca: net.caPem,
    },
    { log: silentLogger },
  );
  const ca = await createLocalCa();
  resolverCa = ca.certPem;
  const leaf = await issueServerCertificate(ca, { hostnames: [], ipAddresses: ['127.0.0.1'] });
  server = await startResolverServer(
    {
      listen: { udp: 0, tcp: 0, doh: 0, api: 0, admin: 0 },
      tls: { cert: leaf.certPem, key: leaf.keyPem },
      // The default budget of new names; a query rate high enough that the budget is what stops
      // the enumerations below, and their refusals say so.
      limits: { clients: { queryBurst: 50_000 } },
    },
    resolver,
    { now: clock.seconds, log: silentLogger },
  );
}, 120_000);

afterAll(async () => {
  await agents.close();
  await server?.close();
  await resolver?.close();
  await net?.close();
});

/** A discovery request to the resolver's JSON API from `from`. */
function post(
  from: string,
  csis: readonly string[],
): Promise<DiscoverReply<Record<string, unknown>>> {
  return postDiscover(server.api?.url ?? '', agentFor(from), csis);
}

/** The DNS name of a CSI as typed. */
const nameOf = (input: string): string => csiToName(parseCsi(input));

/** A DNS client of the resolver from one address, over one transport. */
interface DnsClient {
  ask(query: Message): Promise<{ message?: Message; status: number; retryAfter?: unknown }>;
  close(): void;
}

async function udpClient(from: string): Promise<DnsClient> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind({ address: from }, resolve));
  return {
    ask: (query) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no UDP response')), 10_000);
        const onMessage = (datagram: Buffer): void => {
          const message = decodeMessage(datagram);
          if (message.id !== query.id) return;
          clearTimeout(timer);
          socket.removeListener('message', onMessage);
          resolve({ message, status: 0 });
        };
        socket.on('message', onMessage);
        socket.send(encodeMessage(query), server.dns?.udp?.port ?? 0, '127.0.0.1');
      }),
    close: () => socket.close(),
  };
}

async function tcpClient(from: string): Promise<DnsClient> {
  const socket: Socket = connectTcp({
    host: '127.0.0.1',
    port: server.dns?.tcp?.port ?? 0,
    localAddress: from,
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let pending = Buffer.alloc(0);
  let waiting: ((message: Message) => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
      const length = pending.readUInt16BE(0);
      const message = decodeMessage(pending.subarray(2, 2 + length));
      pending = pending.subarray(2 + length);
      waiting?.(message);
    }
  });
  return {
    ask: (query) =>
      new Promise((resolve) => {
        waiting = (message) => resolve({ message, status: 0 });
        const wire = encodeMessage(query);
        const frame = Buffer.alloc(2 + wire.length);
        frame.writeUInt16BE(wire.length, 0);
        frame.set(wire, 2);
        socket.write(frame);
      }),
    close: () => socket.destroy(),
  };
}

function dohClient(from: string): DnsClient {
  return {
    async ask(query) {
      const response = await request(server.dns?.doh?.url ?? '', {
        method: 'POST',
        dispatcher: agentFor(from),
        headers: { 'content-type': DNS_MESSAGE_MEDIA_TYPE },
        body: encodeMessage(query),
      });
      const body = new Uint8Array(await response.body.arrayBuffer());
      return response.statusCode === 200
        ? { message: decodeMessage(body), status: 200 }
        : { status: response.statusCode, retryAfter: response.headers['retry-after'] };
    },
    close: () => undefined,
  };
}

/** Whether an answer of the DNS front ends is a refusal by the limits. */
function refused(answer: { message?: Message; status: number }): boolean {
  if (answer.status === 429) return true;
  const ede = extendedDnsErrors(answer.message?.edns?.options ?? []);
  return answer.message?.rcode === 'REFUSED' && ede[0]?.infoCode === EDE_PROHIBITED;
}

/**
 * Asks `client` for the MAP of each CSI of the enumeration in turn, until the limits refuse one,
 * then 200 more: how many were answered, and every answer after the first refusal.
 */
async function enumerate(client: DnsClient): Promise<{
  answered: number;
  after: Array<{ message?: Message; status: number; retryAfter?: unknown }>;
}> {
  let answered = 0;
  const after: Array<{ message?: Message; status: number; retryAfter?: unknown }> = [];
  for (const input of ENUMERATION) {
    const answer = await client.ask(buildQuery(nameOf(input), 'MAP', { dnssecOk: true }));
    if (after.length === 0 && !refused(answer)) {
      // A denial: NOERROR as the DP signed it, or NXDOMAIN when the resolver's QNAME
      // minimisation stopped at a missing prefix of the number (RFC 8020).
      expect(['NOERROR', 'NXDOMAIN']).toContain(answer.message?.rcode);
      answered++;
      continue;
    }
    after.push(answer);
    if (after.length > 200) break;
  }
  return { answered, after };
}

describe('enumeration of 10,000 CSIs from one client', () => {
  it('stops at the budget on the JSON API with 429 and Retry-After, while another client is served', async () => {
    const statuses: number[] = [];
    let lastRefusal: { retryAfter: unknown; body: Record<string, unknown> } | undefined;
    for (let i = 0; i < ENUMERATION.length; i += 1000) {
      const reply = await post('127.0.0.1', ENUMERATION.slice(i, i + 1000));
      statuses.push(reply.status);
      if (reply.status === 200) {
        expect((reply.body['results'] as DiscoveryResult[]).map((r) => r.status)).toEqual(
          Array(1000).fill('none'),
        );
      } else {
        lastRefusal = reply;
      }
    }
    expect(DEFAULT_NEW_NAME_BURST).toBe(2000);
    expect(statuses).toEqual([200, 200, ...Array(8).fill(429)]);
    expect(lastRefusal?.retryAfter).toBe('43200');
    expect(lastRefusal?.body).toEqual({
      error: {
        code: 'ERR_RATE_LIMITED',
        message:
          'this request asks for 1000 CSIs new to this client, and 0 are left in its budget; retry in 43200 s',
        detail: 'new-csis',
      },
    });
    // What the client asked for before still passes: a repeat is not charged.
    expect((await post('127.0.0.1', ENUMERATION.slice(0, 1000))).status).toBe(200);
  }, 180_000);

  it('lets a contact sync of 1,000 new CSIs through for another client', async () => {
    const reply = await post('127.0.0.2', CONTACTS);
    expect(reply.status).toBe(200);
    const results = reply.body['results'] as DiscoveryResult[];
    expect(results).toHaveLength(1000);
    expect(results.filter((r) => r.status === 'error')).toEqual([]);
    expect(results.at(-1)).toMatchObject({ csi: ALICE_PHONE, status: 'found' });
    expect(results.filter((r) => r.status === 'none')).toHaveLength(999);
  }, 180_000);

  it.each([
    ['UDP', '127.0.0.3', udpClient],
    ['TCP', '127.0.0.4', tcpClient],
  ] as const)(
    'stops at the budget over %s with REFUSED and Extended DNS Error 18, while another client is served',
    async (_transport, from, open) => {
      const client = await open(from);
      const other = await open('127.0.0.6');
      try {
        const { answered, after } = await enumerate(client);
        expect(answered).toBe(2000);
        for (const answer of after) {
          expect(answer.message?.rcode).toBe('REFUSED');
          expect(answer.message?.flags.ra).toBe(true);
          expect(extendedDnsErrors(answer.message?.edns?.options ?? [])).toEqual([
            { infoCode: EDE_PROHIBITED, text: 'rate limited (new names); retry in 44 s' },
          ]);
        }
        const served = await other.ask(buildQuery(nameOf(ENUMERATION[5000] ?? ''), 'MAP'));
        expect(served.message?.rcode).toBe('NXDOMAIN');
        // A name the enumerating client asked before is still answered.
        expect(
          (await client.ask(buildQuery(nameOf(ENUMERATION[7] ?? ''), 'MAP'))).message?.rcode,
        ).toBe('NXDOMAIN');
      } finally {
        client.close();
        other.close();
      }
    },
    180_000,
  );

  it('stops at the budget over DoH with 429 and Retry-After, while another client is served', async () => {
    const { answered, after } = await enumerate(dohClient('127.0.0.5'));
    expect(answered).toBe(2000);
    expect(after.every((a) => a.status === 429 && a.retryAfter === '44')).toBe(true);
    const served = await dohClient('127.0.0.7').ask(
      buildQuery(nameOf(ENUMERATION[5000] ?? ''), 'MAP'),
    );
    expect(served.status).toBe(200);
  }, 180_000);

  it('refills the budget with the clock: 44 s later one more new name passes', async () => {
    const client = await udpClient('127.0.0.3');
    try {
      const next = buildQuery(nameOf(ENUMERATION[9000] ?? ''), 'MAP');
      expect(refused(await client.ask(next))).toBe(true);
      clock.advance(44);
      expect((await client.ask({ ...next, id: (next.id + 1) & 0xffff })).message?.rcode).toBe(
        'NXDOMAIN',
      );
      expect(refused(await client.ask(buildQuery(nameOf(ENUMERATION[9001] ?? ''), 'MAP')))).toBe(
        true,
      );
    } finally {
      client.close();
    }
  });

  it('counts what it refused on the admin port, by front end, limit and action, never by client', async () => {
    const text = await (await fetch(`${server.admin?.url ?? ''}/metrics`)).text();
    const count = (labels: string): number =>
      Number(
        new RegExp(`^resolver_rate_limited_total\\{${labels}\\} (\\d+)$`, 'm').exec(text)?.[1],
      );
    expect(count('frontend="api",limit="new_names",action="429"')).toBe(8);
    expect(count('frontend="udp",limit="new_names",action="refused"')).toBeGreaterThan(200);
    expect(count('frontend="tcp",limit="new_names",action="refused"')).toBe(201);
    expect(count('frontend="doh",limit="new_names",action="429"')).toBe(201);
    // No client address; the upstream metrics name servers by address (here on 127.0.0.1 too).
    const aboutClients = text
      .split('\n')
      .filter((line) => !/^resolver_upstream_(rtt_seconds|errors_total)/.test(line))
      .join('\n');
    expect(aboutClients).not.toMatch(/127\.0\.0\./);
  });
});
