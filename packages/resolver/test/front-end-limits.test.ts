import { connect as connectTcp } from 'node:net';
import { createSocket } from 'node:dgram';
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
  metricsText,
  parseCsi,
  record,
  silentLogger,
  type LocalCa,
  type Message,
} from '@mimi-discovery/common';
import {
  createClientLimits,
  createResolverMetrics,
  resultJsonText,
  startJsonApi,
  startResolverServer,
  type DiscoveryResult,
  type JsonApi,
  type Resolver,
  type ResolverClientLimits,
  type ResolverMetrics,
  type RunningResolverServer,
} from '../src/index.js';
import {
  agentsByAddress,
  postDiscover,
  type DiscoverReply,
} from '../../../test/helpers/client-address.js';
import { invalidCsiResult, resolverDouble } from '../../../test/helpers/resolver-double.js';

// The per-client limits of the resolver's front ends (`front-end-limits.ts`) in the real servers,
// in front of a test double of the resolver that records what it was asked: the JSON API's
// new-CSIs budget and request rate, and the DNS front ends' gate (UDP, TCP, DoH). Each client is
// an address of 127/8 of its own; the clock is a variable the tests move.

let t = 1_767_225_600;
const now = (): number => t;

/** `count` distinct phone numbers from `+442070000000 + from`, as typed. */
function numbers(count: number, from = 0): string[] {
  return Array.from({ length: count }, (_, i) => `+4420${70_000_000 + from + i}`);
}

/** A resolver that answers `none` for every CSI and NOERROR for every name, recording them. */
function fakeResolver(): Resolver & { asked: string[] } {
  const asked: string[] = [];
  const discover = async (input: string): Promise<DiscoveryResult> => {
    asked.push(input);
    try {
      return { csi: parseCsi(input), status: 'none', msps: [], mappings: [], ttl: 60 };
    } catch (error) {
      return invalidCsiResult(input, error);
    }
  };
  return resolverDouble({
    asked,
    discover,
    discoverCsi: discover,
    discoverMany: (inputs) => Promise.all(inputs.map(discover)),
    async discoverManyJson(inputs) {
      const results = await Promise.all(inputs.map(discover));
      return { results, json: results.map((r) => resultJsonText(r)) };
    },
    async resolve(name) {
      asked.push(name);
      const answer = record(name, 'MAP', Uint8Array.of(0xa0), 60);
      // Given again for 30 s (`usable`), as the resolver says of an answer it may reuse.
      return { rcode: 'NOERROR', status: 'secure', answers: [answer], authorities: [], usable: 30 };
    },
  });
}

let ca: LocalCa;
let tls: { cert: string; key: string };
const agents = agentsByAddress(() => ca.certPem);
const agentFor = (address: string): Agent => agents.agentFor(address);

type Reply = DiscoverReply<{
  results?: DiscoveryResult[];
  error?: { code: string; message: string; detail?: string };
}>;

function post(api: JsonApi, from: string, csis: readonly string[]): Promise<Reply> {
  return postDiscover(api.url, agentFor(from), csis);
}

async function get(api: JsonApi, from: string, csi: string): Promise<Reply> {
  const response = await request(`${api.url}/v1/discover?csi=${encodeURIComponent(csi)}`, {
    dispatcher: agentFor(from),
  });
  return {
    status: response.statusCode,
    retryAfter: response.headers['retry-after'] as string | undefined,
    body: (await response.body.json()) as Reply['body'],
  };
}

beforeAll(async () => {
  ca = await createLocalCa();
  const leaf = await issueServerCertificate(ca, { hostnames: [], ipAddresses: ['127.0.0.1'] });
  tls = { cert: leaf.certPem, key: leaf.keyPem };
});

afterAll(async () => {
  await agents.close();
});

describe('the JSON API over the limits', () => {
  let api: JsonApi;
  let resolver: ReturnType<typeof fakeResolver>;
  let metrics: ResolverMetrics;
  let limits: ResolverClientLimits;

  beforeAll(async () => {
    resolver = fakeResolver();
    metrics = createResolverMetrics(resolver);
    limits = createClientLimits(
      { requestBurst: 40, requestsPerSecond: 1, exempt: ['127.0.0.9'] },
      { now },
    );
    metrics.watchClientLimits(limits);
    api = await startJsonApi({ port: 0, ...tls, maxBatch: 1000 }, resolver, {
      limits,
      metrics,
      log: silentLogger,
    });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('stops an enumeration of 10,000 CSIs at the budget with 429, while another client is served', async () => {
    const all = numbers(10_000);
    const asked = resolver.asked.length;
    const statuses: number[] = [];
    for (let i = 0; i < all.length; i += 1000) {
      const reply = await post(api, '127.0.0.1', all.slice(i, i + 1000));
      statuses.push(reply.status);
      if (reply.status === 429) {
        expect(reply.body.error?.code).toBe('ERR_RATE_LIMITED');
        expect(reply.body.error?.detail).toBe('new-csis');
        expect(reply.body.error?.message).toBe(
          'this request asks for 1000 CSIs new to this client, and 0 are left in its budget; retry in 43200 s',
        );
        expect(reply.retryAfter).toBe('43200');
      } else {
        expect(reply.body.results).toHaveLength(1000);
      }
    }
    expect(statuses).toEqual([200, 200, ...Array(8).fill(429)]);
    // The resolver was asked for the 2,000 CSIs of the budget, and for nothing after.
    expect(resolver.asked.length - asked).toBe(2000);

    // Another client, meanwhile: a contact sync of 1,000 new CSIs passes.
    const sync = await post(api, '127.0.0.2', numbers(1000, 50_000));
    expect(sync.status).toBe(200);
    expect(sync.body.results?.every((r) => r.status === 'none')).toBe(true);
  });

  it('does not charge CSIs the client asked for in the last day', async () => {
    // The budget of 127.0.0.1 is spent: what it asked before still passes, a new CSI does not.
    const again = await post(api, '127.0.0.1', numbers(1000));
    expect(again.status).toBe(200);
    expect((await get(api, '127.0.0.1', '+44 20 7000 0007')).status).toBe(200);
    // A CSI written another way is the same CSI.
    expect((await get(api, '127.0.0.1', 'tel:+442070000008')).status).toBe(200);
    const fresh = await get(api, '127.0.0.1', numbers(1, 10_000)[0] ?? '');
    expect(fresh.status).toBe(429);
    expect(fresh.retryAfter).toBe('44');
  });

  it('refuses a batch over the budget whole: the resolver is not asked, nothing is charged', async () => {
    expect((await post(api, '127.0.0.3', numbers(1000, 100_000))).status).toBe(200);
    expect((await post(api, '127.0.0.3', numbers(500, 101_000))).status).toBe(200);
    const asked = resolver.asked.length;
    // 1,000 CSIs, 200 of them known: 800 new, 500 left.
    const over = await post(api, '127.0.0.3', numbers(1000, 101_300));
    expect(over.status).toBe(429);
    expect(over.body.error?.message).toContain('asks for 800 CSIs new to this client, and 500');
    expect(resolver.asked.length).toBe(asked);
    // What was left is still there, and the refused CSIs are still new: 500 of them fit.
    expect((await post(api, '127.0.0.3', numbers(500, 101_500))).status).toBe(200);
    expect((await post(api, '127.0.0.3', numbers(1, 102_000))).status).toBe(429);
  });

  it('charges CSIs that are not CSIs nothing', async () => {
    const typos = ['not a number', 'alice@', '+', ...numbers(10, 200_000)];
    const reply = await post(api, '127.0.0.4', typos);
    expect(reply.status).toBe(200);
    expect(limits.stats().entries.new_names).toBeGreaterThan(0);
    expect(reply.body.results?.slice(0, 3).map((r) => r.error?.reason)).toEqual([
      'invalid-csi',
      'invalid-csi',
      'invalid-csi',
    ]);
  });

  it('lets only one of two concurrent batches through when both do not fit', async () => {
    expect((await post(api, '127.0.0.5', numbers(500, 300_000))).status).toBe(200);
    // 1,500 left: either batch of 1,000 fits, not both.
    const [a, b] = await Promise.all([
      post(api, '127.0.0.5', numbers(1000, 301_000)),
      post(api, '127.0.0.5', numbers(1000, 302_000)),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 429]);
  });

  it('refills the budget with the clock', async () => {
    t += 3600;
    const reply = await post(api, '127.0.0.1', numbers(500, 400_000));
    expect(reply.status).toBe(429);
    // 500 tokens at 2,000 a day; an hour has passed since the budget was spent.
    expect(Number(reply.retryAfter)).toBe(21_600 - 3600);
    t += 21_600 - 3600;
    expect((await post(api, '127.0.0.1', numbers(500, 400_000))).status).toBe(200);
  });

  it('limits the rate of requests, before anything else', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 41; i++) {
      statuses.push((await get(api, '127.0.0.6', '+442070000001')).status);
    }
    expect(statuses).toEqual([...Array(40).fill(200), 429]);
    const limited = await post(api, '127.0.0.6', ['not even read']);
    expect(limited.status).toBe(429);
    expect(limited.body.error?.detail).toBe('requests');
    expect(limited.retryAfter).toBe('1');
    t += 1;
    expect((await get(api, '127.0.0.6', '+442070000001')).status).toBe(200);
  });

  it('never limits an exempt client', async () => {
    for (let i = 0; i < 10; i++) {
      expect((await post(api, '127.0.0.9', numbers(1000, 500_000 + i * 1000))).status).toBe(200);
    }
  });

  it('counts the refusals by front end, limit and action, and never a client', async () => {
    const text = await metricsText(metrics.registry);
    expect(text).toMatch(
      /^resolver_rate_limited_total\{frontend="api",limit="new_names",action="429"\} (\d+)$/m,
    );
    expect(text).toContain(
      'resolver_rate_limited_total{frontend="api",limit="requests",action="429"} 2\n',
    );
    expect(text).toMatch(/^resolver_api_requests_total\{status="429"\} \d+$/m);
    expect(text).not.toMatch(/127\.0\.0\./);
  });
});

describe('the DNS front ends over the limits', () => {
  let server: RunningResolverServer;
  let resolver: ReturnType<typeof fakeResolver>;
  const ZONE = '4.4.e164.mimi.arpa';
  const name = (i: number): string => csiToName(parseCsi(numbers(1, 600_000 + i)[0] ?? ''));

  beforeAll(async () => {
    resolver = fakeResolver();
    server = await startResolverServer(
      {
        listen: { udp: 0, tcp: 0, doh: 0, admin: 0 },
        tls,
        limits: {
          clients: {
            newNameBurst: 20,
            newNamesPerDay: 200,
            maxSeenPerClient: 40,
            queryBurst: 60,
            queriesPerSecond: 1,
            exempt: ['127.0.0.40/32'],
          },
        },
      },
      resolver,
      { now, log: silentLogger },
    );
  });
  afterAll(async () => {
    await server?.close();
  });

  async function udp(from: string, query: Message): Promise<Message> {
    const socket = createSocket('udp4');
    try {
      await new Promise<void>((resolve) => socket.bind({ address: from }, resolve));
      return await new Promise<Message>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no UDP response')), 5000);
        socket.once('message', (datagram) => {
          clearTimeout(timer);
          resolve(decodeMessage(datagram));
        });
        socket.send(encodeMessage(query), server.dns?.udp?.port ?? 0, '127.0.0.1');
      });
    } finally {
      socket.close();
    }
  }

  async function tcp(from: string, queries: Message[]): Promise<Message[]> {
    const socket = connectTcp({
      host: '127.0.0.1',
      port: server.dns?.tcp?.port ?? 0,
      localAddress: from,
    });
    try {
      const answers: Message[] = [];
      let pending = Buffer.alloc(0);
      const done = new Promise<void>((resolve, reject) => {
        socket.on('error', reject);
        socket.on('data', (chunk: Buffer) => {
          pending = Buffer.concat([pending, chunk]);
          while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
            answers.push(decodeMessage(pending.subarray(2, 2 + pending.readUInt16BE(0))));
            pending = pending.subarray(2 + pending.readUInt16BE(0));
          }
          if (answers.length === queries.length) resolve();
        });
      });
      // One after another, so that the budget is spent in the order asked.
      for (const query of queries) {
        const wire = encodeMessage(query);
        const frame = Buffer.alloc(2 + wire.length);
        frame.writeUInt16BE(wire.length, 0);
        frame.set(wire, 2);
        socket.write(frame);
        const expected = answers.length + 1;
        while (answers.length < expected) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      await done;
      return answers.sort((a, b) => a.id - b.id);
    } finally {
      socket.destroy();
    }
  }

  it('refuses new names past the budget over UDP with REFUSED and EDE 18, and serves another client', async () => {
    const answers: Message[] = [];
    for (let i = 0; i < 30; i++) answers.push(await udp('127.0.0.11', buildQuery(name(i), 'MAP')));
    expect(answers.slice(0, 20).map((m) => m.rcode)).toEqual(Array(20).fill('NOERROR'));
    for (const refused of answers.slice(20)) {
      expect(refused.rcode).toBe('REFUSED');
      expect(refused.flags.ra).toBe(true);
      expect(extendedDnsErrors(refused.edns?.options ?? [])).toEqual([
        { infoCode: EDE_PROHIBITED, text: 'rate limited (new names); retry in 432 s' },
      ]);
    }
    // A name the client asked before is not new; a name under another apex is not charged (the
    // handler refuses it, without an Extended DNS Error).
    expect((await udp('127.0.0.11', buildQuery(name(3), 'MAPREF'))).rcode).toBe('NOERROR');
    const outside = await udp('127.0.0.11', buildQuery('example.com', 'A'));
    expect(outside.rcode).toBe('REFUSED');
    expect(extendedDnsErrors(outside.edns?.options ?? [])).toEqual([]);
    expect((await udp('127.0.0.12', buildQuery(name(25), 'MAP'))).rcode).toBe('NOERROR');
  });

  it('never limits an exempt client over UDP: past the query burst and the new-names budget', async () => {
    const rcodes: string[] = [];
    for (let i = 0; i < 70; i++) {
      rcodes.push((await udp('127.0.0.40', buildQuery(name(1_000 + i), 'MAP'))).rcode);
    }
    expect(rcodes).toEqual(Array(70).fill('NOERROR'));
    // The address next to it is not exempt: its budget stops it at the 20th new name.
    const next: string[] = [];
    for (let i = 0; i < 21; i++) {
      next.push((await udp('127.0.0.41', buildQuery(name(2_000 + i), 'MAP'))).rcode);
    }
    expect(next).toEqual([...Array(20).fill('NOERROR'), 'REFUSED']);
  });

  it('refuses a cached answer too: the gate is asked before the answer cache', async () => {
    // 127.0.0.12 just had name(25) answered, so it is in the front ends' answer cache.
    const asked = resolver.asked.length;
    const refused = await udp('127.0.0.11', buildQuery(name(25), 'MAP'));
    expect(refused.rcode).toBe('REFUSED');
    expect(extendedDnsErrors(refused.edns?.options ?? [])[0]?.text).toMatch(/new names/);
    // The answer is cached: a third client gets it without the resolver being asked.
    const cached = await udp('127.0.0.16', buildQuery(name(25), 'MAP'));
    expect(cached.rcode).toBe('NOERROR');
    expect(cached.answers).toHaveLength(1);
    expect(resolver.asked.length).toBe(asked);
  });

  it('refuses over TCP with REFUSED and EDE 18', async () => {
    const queries = Array.from({ length: 22 }, (_, i) =>
      buildQuery(name(100 + i), 'MAP', { id: i }),
    );
    const answers = await tcp('127.0.0.13', queries);
    expect(answers.map((m) => m.rcode)).toEqual([
      ...Array(20).fill('NOERROR'),
      'REFUSED',
      'REFUSED',
    ]);
    expect(extendedDnsErrors(answers[21]?.edns?.options ?? [])[0]?.infoCode).toBe(EDE_PROHIBITED);
  });

  it('answers 429 with Retry-After over DoH', async () => {
    const statuses: number[] = [];
    let last: { retryAfter: unknown; cacheControl: unknown } = { retryAfter: '', cacheControl: '' };
    for (let i = 0; i < 21; i++) {
      const response = await request(server.dns?.doh?.url ?? '', {
        method: 'POST',
        dispatcher: agentFor('127.0.0.14'),
        headers: { 'content-type': DNS_MESSAGE_MEDIA_TYPE },
        body: encodeMessage(buildQuery(name(200 + i), 'MAP')),
      });
      statuses.push(response.statusCode);
      last = {
        retryAfter: response.headers['retry-after'],
        cacheControl: response.headers['cache-control'],
      };
      await response.body.arrayBuffer();
    }
    expect(statuses).toEqual([...Array(20).fill(200), 429]);
    expect(last).toEqual({ retryAfter: '432', cacheControl: 'no-store' });
  });

  it('limits the query rate whatever the names', async () => {
    const rcodes: string[] = [];
    for (let i = 0; i < 61; i++) {
      rcodes.push((await udp('127.0.0.15', buildQuery(`${ZONE}`, 'SOA'))).rcode);
    }
    expect(rcodes.slice(0, 60)).toEqual(Array(60).fill('NOERROR'));
    const refused = await udp('127.0.0.15', buildQuery(ZONE, 'SOA'));
    expect(extendedDnsErrors(refused.edns?.options ?? [])[0]?.text).toBe(
      'rate limited (queries); retry in 1 s',
    );
    expect(rcodes[60]).toBe('REFUSED');
  });

  it('counts the refusals by front end, limit and action on the admin port', async () => {
    const text = await (await fetch(`${server.admin?.url ?? ''}/metrics`)).text();
    for (const line of [
      'resolver_rate_limited_total{frontend="udp",limit="new_names",action="refused"} 12',
      'resolver_rate_limited_total{frontend="udp",limit="queries",action="refused"} 2',
      'resolver_rate_limited_total{frontend="tcp",limit="new_names",action="refused"} 2',
      'resolver_rate_limited_total{frontend="doh",limit="new_names",action="429"} 1',
    ]) {
      expect(text).toContain(`${line}\n`);
    }
    expect(text).toMatch(/^resolver_rate_limit_entries\{table="seen"\} \d+$/m);
    expect(text).not.toMatch(/127\.0\.0\./);
  });
});
