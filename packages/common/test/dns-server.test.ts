import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_DOH_PATH,
  DNS_MESSAGE_MEDIA_TYPE,
  EDNS_UDP_PAYLOAD_OCTETS,
  buildQuery,
  createDohClient,
  createLocalCa,
  createLogger,
  createMemoryZone,
  createZoneKey,
  decodeMessage,
  dohCacheMaxAge,
  encodeMessage,
  issueServerCertificate,
  lookupZone,
  queryTcp,
  queryUdp,
  record,
  respondError,
  signRRset,
  signZone,
  startDnsServer,
  truncateForUdp,
  TransportError,
  udpResponseLimit,
  type DnsServer,
  type DohClient,
  type LocalCa,
  type Message,
  type QueryContext,
  type QueryHandler,
  type RecordOf,
  type ResourceRecord,
} from '../src/index.js';

// A signed `+44` range zone with one MAP, and a name whose MAP RRset (40 × 120 octets) cannot
// fit a UDP response, so truncation and the TCP retry can be seen.
const ORIGIN = '4.4.e164.mimi.arpa';
const MAP_NAME = '8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa';
const BIG_NAME = '9.9.9.9.6.4.9.7.0.2.4.4.e164.mimi.arpa';
const INCEPTION = 1_767_225_600;
const EXPIRATION = INCEPTION + 30 * 86_400;
const key = createZoneKey(ORIGIN, { seed: new Uint8Array(32).fill(7) });
const validity = { inception: INCEPTION, expiration: EXPIRATION };
const soa = record(
  ORIGIN,
  'SOA',
  {
    mname: 'ns1.dp.example',
    rname: 'hostmaster.dp.example',
    serial: 1,
    refresh: 3600,
    retry: 600,
    expire: 604_800,
    minimum: 300,
  },
  3600,
);
const records: ResourceRecord[] = [
  soa,
  record(ORIGIN, 'NS', 'ns1.dp.example', 3600),
  record(MAP_NAME, 'MAP', new Uint8Array([0xa1, 0x61, 0x76, 0x01]), 600),
  ...Array.from({ length: 40 }, (_, i) =>
    record(BIG_NAME, 'MAP', new Uint8Array(120).fill(i), 900),
  ),
];
const zone = createMemoryZone(ORIGIN, signZone(ORIGIN, records, key, validity));
const sign = (rrset: readonly ResourceRecord[]): RecordOf<'RRSIG'> =>
  signRRset([...rrset], key, validity);

/** An authoritative answer from the zone, as the Discovery Provider gives it. */
function answerFromZone(query: Message): Message {
  const question = query.questions[0];
  if (question === undefined) return respondError(query, 'FORMERR');
  const outcome = lookupZone(zone, question, { dnssecOk: query.edns?.dnssecOk === true, sign });
  if (outcome.kind === 'refused') return respondError(query, 'REFUSED');
  const nxdomain = outcome.kind === 'nxdomain' && query.edns?.compactOk === true;
  const base = respondError(query, nxdomain ? 'NXDOMAIN' : 'NOERROR');
  return {
    ...base,
    flags: { ...base.flags, aa: outcome.kind !== 'referral' },
    answers: outcome.answers,
    authorities: outcome.authorities,
    additionals: outcome.additionals,
  };
}

const contexts: QueryContext[] = [];
const logLines: string[] = [];
const handler: QueryHandler = async (query, context) => {
  contexts.push(context);
  const name = query.questions[0]?.name ?? '';
  if (name.startsWith('throw.')) throw new Error('handler fault');
  if (name.startsWith('slow.')) await new Promise((resolve) => setTimeout(resolve, 50));
  return answerFromZone(query);
};

let ca: LocalCa;
let server: DnsServer;
let doh2: DohClient;
let doh1: DohClient;

beforeAll(async () => {
  ca = await createLocalCa();
  const leaf = await issueServerCertificate(ca, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  server = await startDnsServer(
    {
      udp: { port: 0 },
      tcp: { port: 0 },
      doh: { port: 0, cert: leaf.certPem, key: leaf.keyPem },
    },
    handler,
    { log: createLogger('test', { level: 'debug', write: (line) => logLines.push(line) }) },
  );
  doh2 = createDohClient({ ca: ca.certPem });
  doh1 = createDohClient({ ca: ca.certPem, allowH2: false });
});

afterAll(async () => {
  await Promise.all([doh2?.close(), doh1?.close()]);
  await server?.close();
});

function udp(): { host: string; port: number } {
  if (server.udp === undefined) throw new Error('no UDP listener');
  return server.udp;
}
function tcp(): { host: string; port: number } {
  if (server.tcp === undefined) throw new Error('no TCP listener');
  return server.tcp;
}
function dohUrl(): string {
  if (server.doh === undefined) throw new Error('no DoH listener');
  return server.doh.url;
}

/** Sends raw bytes over UDP; resolves with the first datagram back, or undefined after `waitMs`. */
function udpRaw(bytes: Uint8Array, waitMs = 1000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      resolve(undefined);
    }, waitMs);
    socket.once('message', (datagram) => {
      clearTimeout(timer);
      socket.close();
      resolve(datagram);
    });
    socket.send(bytes, udp().port, udp().host);
  });
}

/** A raw TCP connection that collects length-prefixed messages. */
interface RawTcp {
  socket: Socket;
  /** Resolves with the next `count` messages, rejects after `timeoutMs`. */
  messages(count: number, timeoutMs?: number): Promise<Buffer[]>;
  /** Resolves with the time until the server closed the connection. */
  closed: Promise<number>;
}

function rawTcp(port: number): Promise<RawTcp> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const opened = performance.now();
    let buffer = Buffer.alloc(0);
    const received: Buffer[] = [];
    let wake: (() => void) | undefined;
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 2 && buffer.length >= 2 + buffer.readUInt16BE(0)) {
        received.push(buffer.subarray(2, 2 + buffer.readUInt16BE(0)));
        buffer = buffer.subarray(2 + buffer.readUInt16BE(0));
      }
      wake?.();
    });
    socket.on('error', () => undefined);
    const closed = new Promise<number>((done) =>
      socket.once('close', () => done(performance.now() - opened)),
    );
    socket.once('connect', () =>
      resolve({
        socket,
        closed,
        messages: (count, timeoutMs = 2000) =>
          new Promise((done, fail) => {
            const timer = setTimeout(
              () => fail(new Error(`${received.length} of ${count} messages`)),
              timeoutMs,
            );
            const check = (): void => {
              if (received.length < count) return;
              clearTimeout(timer);
              wake = undefined;
              done(received.splice(0, count));
            };
            wake = check;
            check();
          }),
      }),
    );
    socket.once('error', reject);
  });
}

/** The query as an old client sends it: no OPT record. */
function withoutEdns(query: Message): Message {
  const plain = { ...query };
  delete plain.edns;
  return plain;
}

function frame(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  out.set(bytes, 2);
  return out;
}

describe('UDP', () => {
  it('answers a MAP query with the signed RRset', async () => {
    const query = buildQuery(MAP_NAME, 'MAP', { dnssecOk: true });
    const response = await queryUdp(udp(), query);
    expect(response.id).toBe(query.id);
    expect(response.rcode).toBe('NOERROR');
    expect(response.flags.aa).toBe(true);
    expect(response.answers.map((rr) => rr.type)).toEqual(['MAP', 'RRSIG']);
    expect(response.edns?.dnssecOk).toBe(true);
    expect(contexts.at(-1)).toEqual({ transport: 'udp', remoteAddress: '127.0.0.1' });
  });

  it('truncates an answer larger than the EDNS payload size, and the client retries over TCP', async () => {
    const query = buildQuery(BIG_NAME, 'MAP', { dnssecOk: true });
    const truncated = await queryUdp(udp(), query, { tcpFallback: false });
    expect(truncated.flags.tc).toBe(true);
    expect(truncated.questions).toEqual(query.questions);
    expect(truncated.answers).toEqual([]);
    expect(truncated.authorities).toEqual([]);
    expect(truncated.edns).toBeDefined();
    expect(encodeMessage(truncated).length).toBeLessThanOrEqual(EDNS_UDP_PAYLOAD_OCTETS);

    // UDP and TCP asked for port 0 and share one port, where the client retries (RFC 7766 §5).
    expect(tcp().port).toBe(udp().port);
    const full = await queryUdp(udp(), query);
    expect(full.flags.tc).toBe(false);
    expect(full.answers.filter((rr) => rr.type === 'MAP')).toHaveLength(40);
    expect(contexts.at(-1)?.transport).toBe('tcp');
  });

  it('limits a response to 512 octets for a query without EDNS', async () => {
    const plain = withoutEdns(buildQuery(MAP_NAME, 'MAP'));
    const small = await queryUdp(udp(), plain);
    expect(small.flags.tc).toBe(false);
    expect(small.edns).toBeUndefined();
    const bigPlain = withoutEdns(buildQuery(BIG_NAME, 'MAP'));
    const datagram = await udpRaw(encodeMessage(bigPlain));
    expect(datagram?.length).toBeLessThanOrEqual(512);
    expect(decodeMessage(datagram as Buffer).flags.tc).toBe(true);
  });

  it('answers FORMERR with the id and no question for bytes that do not decode', async () => {
    // Header: id 0xabcd, QDCOUNT 2, but no question follows.
    const bytes = Uint8Array.from([0xab, 0xcd, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0]);
    const datagram = await udpRaw(bytes);
    const response = decodeMessage(datagram as Buffer);
    expect(response).toMatchObject({ id: 0xabcd, rcode: 'FORMERR', questions: [] });
    expect(response.flags.qr).toBe(true);
    expect(response.flags.rd).toBe(true);
  });

  it('drops fewer octets than a header, and messages with QR set', async () => {
    expect(await udpRaw(Uint8Array.from([1, 2, 3]), 300)).toBeUndefined();
    const response = {
      ...buildQuery(MAP_NAME, 'MAP'),
      flags: { ...buildQuery(MAP_NAME, 'MAP').flags, qr: true },
    };
    expect(await udpRaw(encodeMessage(response), 300)).toBeUndefined();
  });
});

describe('error responses', () => {
  it('answers BADVERS to EDNS version 1, with an OPT of version 0 (RFC 6891 §6.1.3)', async () => {
    const query = buildQuery(MAP_NAME, 'MAP');
    query.edns = { ...(query.edns as NonNullable<Message['edns']>), version: 1 };
    const response = await queryUdp(udp(), query);
    expect(response.rcode).toBe('BADVERS');
    expect(response.edns?.version).toBe(0);
    expect(response.questions).toEqual(query.questions);
  });

  it('answers NOTIMP to an opcode other than QUERY', async () => {
    const query = buildQuery(MAP_NAME, 'SOA');
    query.flags.opcode = 4; // NOTIFY
    const response = await queryTcp(tcp(), query);
    expect(response.rcode).toBe('NOTIMP');
    expect(response.flags.opcode).toBe(4);
  });

  it('answers FORMERR to two questions (RFC 9619)', async () => {
    const query = buildQuery(MAP_NAME, 'MAP');
    query.questions.push({ name: ORIGIN, type: 'SOA', class: 'IN' });
    const response = await queryUdp(udp(), query);
    expect(response.rcode).toBe('FORMERR');
    expect(response.questions).toEqual([]);
  });

  it('answers SERVFAIL when the handler throws, and logs the fault without the client address', async () => {
    const response = await queryUdp(udp(), buildQuery(`throw.${ORIGIN}`, 'MAP'));
    expect(response.rcode).toBe('SERVFAIL');
    const line = logLines.find((l) => l.includes('handler failed'));
    expect(line).toBeDefined();
    expect(line).toContain('handler fault');
    expect(line).toContain(`throw.${ORIGIN}`);
    expect(line).not.toContain('127.0.0.1');
  });
});

describe('TCP', () => {
  it('answers a query', async () => {
    const query = buildQuery(MAP_NAME, 'MAP', { dnssecOk: true });
    const response = await queryTcp(tcp(), query);
    expect(response.answers.map((rr) => rr.type)).toEqual(['MAP', 'RRSIG']);
    expect(contexts.at(-1)?.transport).toBe('tcp');
  });

  it('answers 50 pipelined queries on one connection, each by its id', async () => {
    const connection = await rawTcp(tcp().port);
    const ids = Array.from({ length: 50 }, (_, i) => 1000 + i);
    // Every third query is slow, so answers overtake each other (RFC 7766 §6.2.1.1).
    const queries = ids.map((id) =>
      buildQuery(id % 3 === 0 ? `slow.${MAP_NAME}` : MAP_NAME, 'MAP', { id }),
    );
    connection.socket.write(Buffer.concat(queries.map((q) => frame(encodeMessage(q)))));
    const answers = (await connection.messages(50, 5000)).map((bytes) => decodeMessage(bytes));
    expect(answers.map((m) => m.id).sort((a, b) => a - b)).toEqual(ids);
    expect(answers.map((m) => m.id)).not.toEqual(ids);
    connection.socket.destroy();
  });

  it('answers FORMERR to a framed message that does not decode, and keeps the connection', async () => {
    const connection = await rawTcp(tcp().port);
    const garbage = Uint8Array.from([0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff]);
    const query = buildQuery(MAP_NAME, 'MAP', { id: 77 });
    connection.socket.write(Buffer.concat([frame(garbage), frame(encodeMessage(query))]));
    const [first, second] = await connection.messages(2);
    expect(decodeMessage(first as Buffer)).toMatchObject({ id: 0x1234, rcode: 'FORMERR' });
    expect(decodeMessage(second as Buffer)).toMatchObject({ id: 77, rcode: 'NOERROR' });
    connection.socket.destroy();
  });

  it('closes the connection on a length below the header size', async () => {
    const connection = await rawTcp(tcp().port);
    connection.socket.write(Uint8Array.from([0, 0]));
    expect(await connection.closed).toBeLessThan(2000);
  });
});

describe('TCP limits', () => {
  let limited: DnsServer;
  const port = (): number => limited.tcp?.port ?? 0;

  beforeAll(async () => {
    limited = await startDnsServer(
      { tcp: { port: 0, idleTimeoutMs: 200, maxConnections: 2 } },
      answerFromZone,
    );
  });
  afterAll(() => limited.close());

  it('closes a connection that sends nothing after the idle timeout', async () => {
    const connection = await rawTcp(port());
    const elapsed = await connection.closed;
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(2000);
  });

  it('closes a connection that stops in the middle of a message', async () => {
    const connection = await rawTcp(port());
    const wire = frame(encodeMessage(buildQuery(MAP_NAME, 'MAP', { id: 5 })));
    connection.socket.write(wire.subarray(0, 10));
    const elapsed = await connection.closed;
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(2000);
  });

  it('keeps a connection open while it sends queries', async () => {
    // Its own server with a longer idle timeout, so that a busy machine delaying a timer by a
    // few hundred milliseconds cannot close the connection between two queries: the queries
    // span twice the idle timeout, each gap a third of it.
    const patient = await startDnsServer(
      { tcp: { port: 0, idleTimeoutMs: 1500, maxConnections: 2 } },
      answerFromZone,
    );
    try {
      const connection = await rawTcp(patient.tcp?.port ?? 0);
      for (let i = 0; i < 7; i++) {
        connection.socket.write(frame(encodeMessage(buildQuery(MAP_NAME, 'MAP', { id: i }))));
        const [answer] = await connection.messages(1);
        expect(decodeMessage(answer as Buffer).id).toBe(i);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      connection.socket.destroy();
    } finally {
      await patient.close();
    }
  });

  it('refuses connections beyond maxConnections', async () => {
    const first = await rawTcp(port());
    const second = await rawTcp(port());
    const third = await rawTcp(port());
    expect(await third.closed).toBeLessThan(1000);
    // The first two are served.
    first.socket.write(frame(encodeMessage(buildQuery(MAP_NAME, 'MAP', { id: 1 }))));
    second.socket.write(frame(encodeMessage(buildQuery(MAP_NAME, 'MAP', { id: 2 }))));
    expect(decodeMessage((await first.messages(1))[0] as Buffer).id).toBe(1);
    expect(decodeMessage((await second.messages(1))[0] as Buffer).id).toBe(2);
    first.socket.destroy();
    second.socket.destroy();
    await Promise.all([first.closed, second.closed]);
  });
});

describe('DoH', () => {
  const cases = [
    { version: '2', method: 'POST' },
    { version: '2', method: 'GET' },
    { version: '1.1', method: 'POST' },
    { version: '1.1', method: 'GET' },
  ] as const;

  it.each(cases)('answers over HTTP/$version with $method', async ({ version, method }) => {
    const client = version === '2' ? doh2 : doh1;
    const query = buildQuery(MAP_NAME, 'MAP', { dnssecOk: true, id: 0 });
    const response = await client.query(dohUrl(), query, { method });
    expect(response.answers.map((rr) => rr.type)).toEqual(['MAP', 'RRSIG']);
    expect(contexts.at(-1)).toEqual({
      transport: 'doh',
      remoteAddress: '127.0.0.1',
      httpVersion: version,
    });
  });

  it('answers a 60 KB POST body over HTTP/2 in full', async () => {
    // A query padded with an EDNS option (RFC 7830) to ~60 KB: more than one HTTP/2 window.
    const query = buildQuery(MAP_NAME, 'MAP', { id: 0 });
    query.edns = {
      ...(query.edns as NonNullable<Message['edns']>),
      options: [{ code: 12, data: new Uint8Array(60_000) }],
    };
    const response = await doh2.query(dohUrl(), query);
    expect(response.rcode).toBe('NOERROR');
  });

  it('sets content-type and a cache lifetime no longer than the answer TTL', async () => {
    const agent = new Agent({ connect: { ca: ca.certPem }, allowH2: true });
    try {
      const positive = encodeMessage(buildQuery(MAP_NAME, 'MAP', { id: 0 }));
      const answered = await request(dohUrl(), {
        dispatcher: agent,
        method: 'POST',
        headers: { 'content-type': DNS_MESSAGE_MEDIA_TYPE },
        body: Buffer.from(positive),
      });
      await answered.body.arrayBuffer();
      expect(answered.statusCode).toBe(200);
      expect(answered.headers['content-type']).toBe(DNS_MESSAGE_MEDIA_TYPE);
      expect(answered.headers['cache-control']).toBe('max-age=600');

      const negative = encodeMessage(buildQuery(`1.${MAP_NAME}`, 'MAP', { id: 0 }));
      const denied = await request(
        `${dohUrl()}?dns=${Buffer.from(negative).toString('base64url')}`,
        {
          dispatcher: agent,
        },
      );
      await denied.body.arrayBuffer();
      expect(denied.headers['cache-control']).toBe('max-age=300');
    } finally {
      await agent.close();
    }
  });

  it.each([
    { what: 'another path', path: '/other', method: 'GET', status: 404 },
    { what: 'another method', path: DEFAULT_DOH_PATH, method: 'PUT', status: 405 },
    {
      what: 'another media type',
      path: DEFAULT_DOH_PATH,
      method: 'POST',
      type: 'text/plain',
      status: 415,
    },
    { what: 'an empty body', path: DEFAULT_DOH_PATH, method: 'POST', body: '', status: 400 },
    { what: 'a missing dns parameter', path: DEFAULT_DOH_PATH, method: 'GET', status: 400 },
    { what: 'bad base64url', path: `${DEFAULT_DOH_PATH}?dns=a*b`, method: 'GET', status: 400 },
    {
      what: 'bytes that are no query',
      path: `${DEFAULT_DOH_PATH}?dns=AAEC`,
      method: 'GET',
      status: 400,
    },
  ] as const)('answers $status to $what', async (c) => {
    const agent = new Agent({ connect: { ca: ca.certPem }, allowH2: true });
    try {
      const url = new URL(c.path, dohUrl());
      const response = await request(url, {
        dispatcher: agent,
        method: c.method,
        ...(c.method === 'POST' || c.method === 'PUT'
          ? {
              headers: { 'content-type': 'type' in c ? c.type : DNS_MESSAGE_MEDIA_TYPE },
              body: 'body' in c ? c.body : Buffer.from(encodeMessage(buildQuery(MAP_NAME, 'MAP'))),
            }
          : {}),
      });
      expect(response.statusCode).toBe(c.status);
      expect(await response.body.text()).toMatch(new RegExp(`^${c.status} `));
    } finally {
      await agent.close();
    }
  });

  it('answers a POST to the path, with or without a query, and 404 to a path like it', async () => {
    const agent = new Agent({ connect: { ca: ca.certPem }, allowH2: true });
    const post = async (path: string): Promise<number> => {
      const response = await request(new URL(path, dohUrl()), {
        dispatcher: agent,
        method: 'POST',
        headers: { 'content-type': DNS_MESSAGE_MEDIA_TYPE },
        body: Buffer.from(encodeMessage(buildQuery(MAP_NAME, 'MAP'))),
      });
      await response.body.arrayBuffer();
      return response.statusCode;
    };
    try {
      expect(await post(DEFAULT_DOH_PATH)).toBe(200);
      expect(await post(`${DEFAULT_DOH_PATH}?ct`)).toBe(200);
      expect(await post(`${DEFAULT_DOH_PATH}/`)).toBe(404);
      expect(await post(DEFAULT_DOH_PATH.toUpperCase())).toBe(404);
    } finally {
      await agent.close();
    }
  });

  it('reports an HTTP error status to the client as a TransportError', async () => {
    const error = await doh2
      .query(new URL('/nowhere', dohUrl()).href, buildQuery(MAP_NAME, 'MAP'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ code: 'ERR_TRANSPORT_HTTP_STATUS', status: 404 });
  });
});

describe('close()', () => {
  it('resolves while clients hold connections open', async () => {
    const leaf = await issueServerCertificate(ca, {
      hostnames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    const other = await startDnsServer(
      {
        udp: { port: 0 },
        tcp: { port: 0 },
        doh: { port: 0, cert: leaf.certPem, key: leaf.keyPem },
      },
      answerFromZone,
    );
    const connection = await rawTcp(other.tcp?.port ?? 0);
    const client = createDohClient({ ca: ca.certPem });
    await client.query(other.doh?.url ?? '', buildQuery(MAP_NAME, 'MAP'));
    const started = performance.now();
    await other.close();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(await connection.closed).toBeGreaterThan(0);
    await client.close();
    const refused = await queryTcp(
      { host: '127.0.0.1', port: other.tcp?.port ?? 0 },
      buildQuery(MAP_NAME, 'MAP'),
    ).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'ERR_TRANSPORT_CONNECTION' });
  });

  it('rejects a configuration out of range', async () => {
    await expect(
      startDnsServer({ udp: { port: 0, maxPayload: 100 } }, answerFromZone),
    ).rejects.toMatchObject({
      code: 'ERR_TRANSPORT_CONFIG',
    });
    await expect(startDnsServer({}, answerFromZone)).rejects.toMatchObject({
      code: 'ERR_TRANSPORT_CONFIG',
    });
    await expect(
      startDnsServer({ host: 'localhost', udp: { port: 0 } }, answerFromZone),
    ).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CONFIG' });
    await expect(
      startDnsServer(
        { doh: { port: 0, cert: 'not a certificate', key: 'nor a key' } },
        answerFromZone,
      ),
    ).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CONFIG' });
  });

  it('rejects a port in use, and leaves no listener behind', async () => {
    const taken = udp().port;
    await expect(
      startDnsServer({ tcp: { port: 0 }, udp: { port: taken } }, answerFromZone),
    ).rejects.toMatchObject({ code: 'ERR_TRANSPORT_LISTEN' });
  });
});

describe('udpResponseLimit', () => {
  it('is the EDNS payload size, at least 512, at most the server maximum', () => {
    const withPayload = (udpPayloadSize: number): Message =>
      buildQuery(MAP_NAME, 'MAP', { udpPayloadSize });
    expect(udpResponseLimit(withoutEdns(buildQuery(MAP_NAME, 'MAP')), 1232)).toBe(512);
    expect(udpResponseLimit(withPayload(100), 1232)).toBe(512);
    expect(udpResponseLimit(withPayload(1400), 1232)).toBe(1232);
    expect(udpResponseLimit(withPayload(1000), 1232)).toBe(1000);
    expect(udpResponseLimit(undefined, 1232)).toBe(512);
  });
});

describe('truncateForUdp', () => {
  const query = buildQuery(BIG_NAME, 'MAP', { id: 9, dnssecOk: true });
  const response = answerFromZone(query);

  it('returns the whole response when it fits', () => {
    const small = answerFromZone(buildQuery(MAP_NAME, 'MAP', { id: 9 }));
    expect(truncateForUdp(small, 512)).toEqual(encodeMessage(small));
  });

  it('gives the same bytes when handed the response already encoded', () => {
    expect(truncateForUdp(response, 1232, encodeMessage(response))).toEqual(
      truncateForUdp(response, 1232),
    );
  });

  it('keeps header, question and OPT, sets TC, and fits the limit', () => {
    const bytes = truncateForUdp(response, 1232);
    expect(bytes.length).toBeLessThanOrEqual(1232);
    const decoded = decodeMessage(bytes);
    expect(decoded.flags.tc).toBe(true);
    expect(decoded.questions).toEqual(query.questions);
    expect([...decoded.answers, ...decoded.authorities, ...decoded.additionals]).toEqual([]);
    expect(decoded.edns?.dnssecOk).toBe(true);
  });

  it('drops OPT options that would not fit', () => {
    const padded: Message = {
      ...response,
      edns: {
        ...(response.edns as NonNullable<Message['edns']>),
        options: [{ code: 12, data: new Uint8Array(600) }],
      },
    };
    const bytes = truncateForUdp(padded, 512);
    expect(bytes.length).toBeLessThanOrEqual(512);
    expect(decodeMessage(bytes).edns?.options).toEqual([]);
  });
});

describe('respondError and dohCacheMaxAge', () => {
  it('echoes id, opcode, question, RD, CD and the DO bit', () => {
    const query = buildQuery(MAP_NAME, 'MAP', { id: 42, dnssecOk: true, recursionDesired: true });
    query.flags.cd = true;
    const response = respondError(query, 'REFUSED');
    expect(response).toMatchObject({ id: 42, rcode: 'REFUSED', questions: query.questions });
    expect(response.flags).toMatchObject({ qr: true, rd: true, cd: true, aa: false, tc: false });
    expect(response.edns).toMatchObject({ version: 0, dnssecOk: true, extendedRcode: 0 });
  });

  it('adds no OPT when the query had none, except for an extended rcode', () => {
    const plain = withoutEdns(buildQuery(MAP_NAME, 'MAP'));
    expect(respondError(plain, 'SERVFAIL').edns).toBeUndefined();
    expect(respondError(plain, 'BADVERS').edns?.extendedRcode).toBe(1);
  });

  it('takes the smallest answer TTL, the negative TTL of the SOA, or 0 for errors', () => {
    const base = respondError(buildQuery(MAP_NAME, 'MAP'), 'NOERROR');
    const map = (ttl: number): ResourceRecord => record(MAP_NAME, 'MAP', new Uint8Array([1]), ttl);
    expect(dohCacheMaxAge({ ...base, answers: [map(3600), map(300)] })).toBe(300);
    expect(dohCacheMaxAge({ ...base, authorities: [soa] })).toBe(300);
    expect(dohCacheMaxAge({ ...base, rcode: 'SERVFAIL', answers: [map(60)] })).toBe(0);
    expect(dohCacheMaxAge(base)).toBe(0);
  });
});
