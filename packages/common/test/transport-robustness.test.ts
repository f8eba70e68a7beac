import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readdirSync, readFileSync } from 'node:fs';
import { connect as connectHttp2 } from 'node:http2';
import { connect as connectTcp, type Socket } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DNS_MESSAGE_MEDIA_TYPE,
  HEADER_OCTETS,
  RR_TYPE_TSIG,
  buildQuery,
  createDohClient,
  createLocalCa,
  createLogger,
  decodeMessage,
  encodeMessage,
  issueServerCertificate,
  queryTcp,
  queryUdp,
  record,
  respondError,
  splitTsig,
  startDnsServer,
  type DnsServer,
  type DohClient,
  type Message,
  type QueryHandler,
  type Rcode,
} from '../src/index.js';
import { sharedDataPath } from '../../../test/helpers/shared-data.js';

// Whatever arrives, the server answers what it must, drops what it must, never crashes, and still
// answers a normal query promptly on every transport afterwards.

const CORPUS = sharedDataPath('corpus', 'bind9-fuzz', 'dns_message_parse.in');
const packets = readdirSync(CORPUS)
  .sort()
  .map((file) => ({ file, bytes: readFileSync(join(CORPUS, file)) }));

/** Largest UDP payload over IPv4 (65535 − 20 IP − 8 UDP). */
const MAX_UDP_DATAGRAM = 65_507;
const REQUEST_TIMEOUT_MS = 500;
const CANARY = 'canary.mimi.arpa';

const faults: unknown[] = [];
const onFault = (error: unknown): void => {
  faults.push(error);
};
const errorLines: string[] = [];
let handled = 0;

/** Answers every question with one TXT record; the canary's answer proves the server is alive. */
const handler: QueryHandler = (query) => {
  handled++;
  const question = query.questions[0];
  const base = respondError(query, 'NOERROR');
  if (question === undefined) return base;
  return {
    ...base,
    answers: [record(question.name, 'TXT', [Uint8Array.from([0x6f, 0x6b])], 60)],
  };
};

let server: DnsServer;
let caPem: string;
let agent: Agent;
let doh: DohClient;

beforeAll(async () => {
  process.on('uncaughtException', onFault);
  process.on('unhandledRejection', onFault);
  const ca = await createLocalCa();
  caPem = ca.certPem;
  const leaf = await issueServerCertificate(ca, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  server = await startDnsServer(
    {
      udp: { port: 0 },
      tcp: { port: 0, idleTimeoutMs: 2000 },
      doh: { port: 0, cert: leaf.certPem, key: leaf.keyPem, requestTimeoutMs: REQUEST_TIMEOUT_MS },
    },
    handler,
    {
      log: createLogger('robustness', {
        level: 'error',
        write: (line) => errorLines.push(line),
      }),
    },
  );
  agent = new Agent({ connect: { ca: caPem }, allowH2: true, pipelining: 100 });
  doh = createDohClient({ ca: caPem });
});

afterAll(async () => {
  process.removeListener('uncaughtException', onFault);
  process.removeListener('unhandledRejection', onFault);
  await Promise.all([agent?.close(), doh?.close()]);
  await server?.close();
});

const udpAddress = (): { host: string; port: number } => server.udp ?? { host: '', port: 0 };
const tcpAddress = (): { host: string; port: number } => server.tcp ?? { host: '', port: 0 };
const dohUrl = (): string => server.doh?.url ?? '';
const dohPort = (): number => server.doh?.port ?? 0;

/**
 * What the server must do with `bytes` (RFC 1035 §4.1.1, RFC 6891 §6.1.3, RFC 9619): nothing
 * for fewer octets than a header or a message with QR set; otherwise answer with this rcode. A
 * message with a TSIG record (RFC 8945 §5.1, §5.2.1) is answered FORMERR when that record is out
 * of place or unreadable, else NOTAUTH: this server has no keys.
 */
function expected(bytes: Uint8Array): 'drop' | Rcode {
  if (bytes.length < HEADER_OCTETS) return 'drop';
  if (((bytes[2] as number) & 0x80) !== 0) return 'drop';
  let query: Message;
  try {
    query = decodeMessage(bytes);
  } catch {
    return 'FORMERR';
  }
  if (query.additionals.some((rr) => rr.type === `TYPE${RR_TYPE_TSIG}`)) {
    return splitTsig(bytes).kind === 'signed' ? 'NOTAUTH' : 'FORMERR';
  }
  if (query.edns !== undefined && query.edns.version > 0) return 'BADVERS';
  if (query.flags.opcode !== 0) return 'NOTIMP';
  if (query.questions.length !== 1) return 'FORMERR';
  return 'NOERROR';
}

/** Checks that `response` answers the packet `bytes` as {@link expected} says. */
function checkAnswer(bytes: Uint8Array, response: Uint8Array, file: string): void {
  const decoded = decodeMessage(response);
  expect(decoded.flags.qr, file).toBe(true);
  expect(decoded.id, file).toBe(((bytes[0] as number) << 8) | (bytes[1] as number));
  expect(decoded.rcode, file).toBe(expected(bytes));
}

function frame(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  out.set(bytes, 2);
  return out;
}

/** A UDP socket whose datagrams can be awaited one at a time. */
async function udpClient(): Promise<{
  socket: UdpSocket;
  next(timeoutMs: number): Promise<Buffer | undefined>;
  pending(): number;
}> {
  const socket = createSocket('udp4');
  const queue: Buffer[] = [];
  let wake: (() => void) | undefined;
  socket.on('message', (datagram) => {
    queue.push(datagram);
    wake?.();
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    socket,
    pending: () => queue.length,
    next: (timeoutMs) =>
      new Promise((resolve) => {
        const take = (): void => {
          clearTimeout(timer);
          wake = undefined;
          resolve(queue.shift());
        };
        const timer = setTimeout(take, timeoutMs);
        if (queue.length > 0) take();
        else wake = take;
      }),
  };
}

/** Sends bytes on a new TCP connection; collects framed answers until the server closes or `waitMs`. */
function tcpExchange(
  bytes: Uint8Array,
  waitMs: number,
  expectedMessages: number,
): Promise<{ messages: Buffer[]; closed: boolean }> {
  return new Promise((resolve) => {
    const socket: Socket = connectTcp({ host: '127.0.0.1', port: tcpAddress().port });
    let buffer = Buffer.alloc(0);
    const messages: Buffer[] = [];
    let closed = false;
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ messages, closed });
    };
    const timer = setTimeout(finish, waitMs);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 2 && buffer.length >= 2 + buffer.readUInt16BE(0)) {
        messages.push(buffer.subarray(2, 2 + buffer.readUInt16BE(0)));
        buffer = buffer.subarray(2 + buffer.readUInt16BE(0));
      }
      if (messages.length >= expectedMessages) finish();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      finish();
    });
  });
}

/**
 * Opens TLS with ALPN http/1.1 and sends `bytes`; resolves once a response head has arrived, the
 * server has closed, or `waitMs` has passed.
 */
function http1Raw(
  bytes: Uint8Array | string,
  waitMs = 3000,
): Promise<{ response: string; closed: boolean; elapsedMs: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket: TLSSocket = connectTls({
      host: '127.0.0.1',
      port: dohPort(),
      ca: caPem,
      ALPNProtocols: ['http/1.1'],
    });
    let response = '';
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ response, closed, elapsedMs: performance.now() - started });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('secureConnect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => {
      response += chunk.toString('latin1');
      if (response.includes('\r\n\r\n')) finish(false);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => finish(true));
  });
}

/** Times a normal query on each transport; each must be answered. */
async function canaries(): Promise<{ udp: number; tcp: number; doh: number }> {
  const time = async (ask: () => Promise<Message>): Promise<number> => {
    const started = performance.now();
    const response = await ask();
    expect(response.answers).toHaveLength(1);
    return performance.now() - started;
  };
  return {
    udp: await time(() => queryUdp(udpAddress(), buildQuery(CANARY, 'TXT'), { timeoutMs: 1000 })),
    tcp: await time(() => queryTcp(tcpAddress(), buildQuery(CANARY, 'TXT'), { timeoutMs: 1000 })),
    doh: await time(() => doh.query(dohUrl(), buildQuery(CANARY, 'TXT'), { timeoutMs: 1000 })),
  };
}

/** Every canary answered within `limitMs`. */
async function expectPromptAnswers(limitMs = 500): Promise<void> {
  const times = await canaries();
  expect(times.udp).toBeLessThan(limitMs);
  expect(times.tcp).toBeLessThan(limitMs);
  expect(times.doh).toBeLessThan(limitMs);
}

/** A deterministic generator (mulberry32), so a failing random datagram can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

describe('the BIND fuzzing corpus', () => {
  it('holds the 300 packets of dns_message_parse.in', () => {
    expect(packets).toHaveLength(300);
    expect(packets.filter((p) => expected(p.bytes) === 'drop').length).toBeLessThan(300);
  });

  it('over UDP: answers each packet as it must, drops what it must', async () => {
    const client = await udpClient();
    try {
      for (const { file, bytes } of packets) {
        if (bytes.length > MAX_UDP_DATAGRAM) continue;
        client.socket.send(bytes, udpAddress().port, '127.0.0.1');
        if (expected(bytes) === 'drop') continue;
        const response = await client.next(2000);
        expect(response, file).toBeDefined();
        checkAnswer(bytes, response as Buffer, file);
      }
      // Nothing answered a packet that had to be dropped: the next datagram is the canary's.
      const canary = buildQuery(CANARY, 'TXT', { id: 0xbeef });
      client.socket.send(encodeMessage(canary), udpAddress().port, '127.0.0.1');
      const last = decodeMessage((await client.next(1000)) as Buffer);
      expect(last.id).toBe(0xbeef);
      expect(client.pending()).toBe(0);
    } finally {
      client.socket.close();
    }
  });

  it('over TCP: answers each framed packet, and the connection still answers the next query', async () => {
    const canary = frame(encodeMessage(buildQuery(CANARY, 'TXT', { id: 0xbeef })));
    for (const { file, bytes } of packets) {
      const outcome = expected(bytes);
      const wanted = outcome === 'drop' ? 1 : 2;
      const { messages, closed } = await tcpExchange(
        Buffer.concat([frame(bytes), canary]),
        2000,
        wanted,
      );
      if (bytes.length < HEADER_OCTETS) {
        // No DNS message is shorter than its header: the framing is not DNS, the server closes.
        expect(messages, file).toEqual([]);
        expect(closed, file).toBe(true);
        continue;
      }
      expect(messages, file).toHaveLength(wanted);
      const decoded = messages.map((m) => decodeMessage(m));
      const canaryAnswer = decoded.findIndex((m) => m.questions[0]?.name === CANARY);
      expect(canaryAnswer, file).toBeGreaterThanOrEqual(0);
      if (outcome !== 'drop') checkAnswer(bytes, messages[1 - canaryAnswer] as Buffer, file);
    }
  });

  it('over DoH POST: answers 200 with the response, or 400 for what is no query', async () => {
    for (const { file, bytes } of packets) {
      const response = await request(dohUrl(), {
        dispatcher: agent,
        method: 'POST',
        headers: { 'content-type': DNS_MESSAGE_MEDIA_TYPE },
        body: bytes,
      });
      const body = Buffer.from(await response.body.arrayBuffer());
      if (expected(bytes) === 'drop') {
        expect(response.statusCode, file).toBe(400);
        continue;
      }
      expect(response.statusCode, file).toBe(200);
      checkAnswer(bytes, body, file);
    }
  });

  it('still answers promptly on every transport', async () => {
    await expectPromptAnswers();
  });
});

describe('random datagrams', () => {
  it('survives 2,000 random datagrams, answering only with well-formed responses', async () => {
    const random = prng(0x5eed);
    const byte = (): number => Math.floor(random() * 256);
    const valid = encodeMessage(buildQuery('8.1.0.0.6.4.4.e164.mimi.arpa', 'MAP'));
    const client = await udpClient();
    let answered = 0;
    try {
      for (let i = 0; i < 2000; i++) {
        let bytes: Uint8Array;
        switch (i % 3) {
          case 0: // noise of any length
            bytes = Uint8Array.from({ length: Math.floor(random() * 600) }, byte);
            break;
          case 1: // a plausible query header (QR clear, one question) and noise
            bytes = Uint8Array.from({ length: 12 + Math.floor(random() * 300) }, byte);
            bytes.set([byte(), byte(), byte() & 0x7f, byte(), 0, 1, 0, 0, 0, 0, 0, 0]);
            break;
          default: // a valid query with a few octets changed
            bytes = Uint8Array.from(valid);
            for (let k = 0; k < 1 + Math.floor(random() * 4); k++) {
              bytes[Math.floor(random() * bytes.length)] = byte();
            }
        }
        client.socket.send(bytes, udpAddress().port, '127.0.0.1');
        // Let the answers drain every few datagrams, so none is lost to a full socket buffer.
        if (i % 50 === 49) {
          for (
            let datagram = await client.next(50);
            datagram !== undefined;
            datagram = await client.next(20)
          ) {
            answered++;
            expect(decodeMessage(datagram).flags.qr).toBe(true);
          }
        }
      }
    } finally {
      client.socket.close();
    }
    expect(answered).toBeGreaterThan(500);
    await expectPromptAnswers();
  });
});

describe('DoH abuse', () => {
  it('answers 413 to a 70,000-octet POST, over HTTP/2 and HTTP/1.1, with or without content-length', async () => {
    const body = Buffer.alloc(70_000, 1);
    const h1 = new Agent({ connect: { ca: caPem }, allowH2: false });
    try {
      for (const dispatcher of [agent, h1]) {
        const declared = await request(dohUrl(), {
          dispatcher,
          method: 'POST',
          headers: { 'content-type': DNS_MESSAGE_MEDIA_TYPE },
          body,
        });
        expect(declared.statusCode).toBe(413);
        await declared.body.text();
        // A streamed body has no content-length: the server counts and stops at the limit.
        const streamed = await request(dohUrl(), {
          dispatcher,
          method: 'POST',
          headers: { 'content-type': DNS_MESSAGE_MEDIA_TYPE },
          body: Readable.from(
            Array.from({ length: 7 }, (_, i) => body.subarray(i * 10_000, (i + 1) * 10_000)),
          ),
        });
        expect(streamed.statusCode).toBe(413);
        await streamed.body.text();
      }
    } finally {
      await h1.close();
    }
    await expectPromptAnswers();
  });

  it.each([
    ['an undecodable dns parameter', '?dns=!!!!'],
    ['an empty dns parameter', '?dns='],
    ['a dns parameter of impossible length', '?dns=A'],
    ['two dns parameters', '?dns=AAAA&dns=AAAA'],
    ['a percent-encoded NUL', '?dns=%00'],
  ])('answers 400 to a GET with %s', async (_what, query) => {
    const response = await request(`${dohUrl()}${query}`, { dispatcher: agent });
    expect(response.statusCode).toBe(400);
    expect(await response.body.text()).toBe('400 Bad Request\n');
  });

  it('answers 413 to a GET whose dns parameter decodes to more than maxBodyOctets', async () => {
    const ca = await createLocalCa();
    const leaf = await issueServerCertificate(ca, {
      hostnames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    const small = await startDnsServer(
      { doh: { port: 0, cert: leaf.certPem, key: leaf.keyPem, maxBodyOctets: 512 } },
      handler,
    );
    const dispatcher = new Agent({ connect: { ca: ca.certPem }, allowH2: true });
    try {
      const response = await request(`${small.doh?.url ?? ''}?dns=${'A'.repeat(700)}`, {
        dispatcher,
      });
      expect(response.statusCode).toBe(413);
      await response.body.text();
    } finally {
      await dispatcher.close();
      await small.close();
    }
  });

  it('answers 431 to a GET whose URL is larger than the header limit', async () => {
    const { response } = await http1Raw(
      `GET /dns-query?dns=${'A'.repeat(87_400)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect(response).toMatch(/^HTTP\/1\.1 431 /);
  });

  const junk: Array<[string, string | Uint8Array]> = [
    ['no HTTP at all', 'GARBAGE\r\n\r\n'],
    ['a request without Host', 'GET /dns-query?dns=AAAA HTTP/1.1\r\n\r\n'],
    ['an unknown HTTP version', 'GET /dns-query HTTP/9.9\r\nHost: x\r\n\r\n'],
    [
      'a negative content-length',
      'POST /dns-query HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
    ],
    [
      'a broken chunked body',
      'POST /dns-query HTTP/1.1\r\nHost: x\r\nContent-Type: application/dns-message\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n',
    ],
    [
      'a header of 20,000 octets',
      `GET /dns-query HTTP/1.1\r\nHost: x\r\nX-Junk: ${'a'.repeat(20_000)}\r\n\r\n`,
    ],
    ['the HTTP/2 preface after ALPN http/1.1', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['binary noise', Uint8Array.from({ length: 1000 }, (_, i) => (i * 7919) & 0xff)],
    [
      'a body shorter than its content-length',
      'POST /dns-query HTTP/1.1\r\nHost: x\r\nContent-Type: application/dns-message\r\nContent-Length: 50\r\n\r\nab',
    ],
  ];

  it.each(junk)('answers %s with a 4xx status or by closing', async (_what, bytes) => {
    const { response, closed, elapsedMs } = await http1Raw(bytes);
    expect(closed || response !== '').toBe(true);
    expect(elapsedMs).toBeLessThan(REQUEST_TIMEOUT_MS * 4);
    if (response !== '') expect(response).toMatch(/^HTTP\/1\.1 4\d\d /);
  });

  it('drops a client that speaks plain text to the TLS port', async () => {
    const outcome = await new Promise<boolean>((resolve) => {
      const socket = connectTcp({ host: '127.0.0.1', port: dohPort() });
      socket.on('connect', () => socket.write('GET /dns-query HTTP/1.1\r\nHost: x\r\n\r\n'));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(true));
      setTimeout(() => resolve(false), 3000).unref();
    });
    expect(outcome).toBe(true);
    await expectPromptAnswers();
  });

  it('cuts a slow-loris client that sends its headers one octet per 50 ms, while others are served', async () => {
    const dns = Buffer.from(encodeMessage(buildQuery(CANARY, 'TXT', { id: 0 }))).toString(
      'base64url',
    );
    const text = Buffer.from(
      `GET /dns-query?dns=${dns} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow\r\nX-Pad: ${'p'.repeat(200)}\r\n\r\n`,
    );
    const socket: TLSSocket = connectTls({
      host: '127.0.0.1',
      port: dohPort(),
      ca: caPem,
      ALPNProtocols: ['http/1.1'],
    });
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    const started = performance.now();
    let response = '';
    socket.on('data', (chunk: Buffer) => (response += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    const closed = new Promise<number>((resolve) =>
      socket.once('close', () => resolve(performance.now() - started)),
    );
    let sent = 0;
    let during: { udp: number; tcp: number; doh: number } | undefined;
    // At most the whole request (≈ 20 s at this pace); the server cuts it long before.
    for (; sent < text.length && !socket.destroyed; sent++) {
      socket.write(text.subarray(sent, sent + 1));
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (sent === 4) during = await canaries();
    }
    const cutAfter = await closed;
    expect(sent).toBeLessThan(text.length);
    expect(cutAfter).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(cutAfter).toBeLessThan(REQUEST_TIMEOUT_MS + 1500);
    if (response !== '') expect(response).toMatch(/^HTTP\/1\.1 408 /);
    expect(during?.doh).toBeLessThan(REQUEST_TIMEOUT_MS);
  });

  it('cuts an HTTP/2 request whose body trickles in, with 408', async () => {
    const session = connectHttp2(`https://127.0.0.1:${dohPort()}`, { ca: caPem });
    session.on('error', () => undefined);
    try {
      const stream = session.request({
        ':method': 'POST',
        ':path': '/dns-query',
        'content-type': DNS_MESSAGE_MEDIA_TYPE,
        'content-length': '100',
      });
      stream.on('error', () => undefined);
      const started = performance.now();
      const status = new Promise<number>((resolve) =>
        stream.once('response', (headers) => resolve(Number(headers[':status']))),
      );
      let stop = false;
      void status.then(() => (stop = true));
      for (let i = 0; i < 100 && !stop && !stream.destroyed; i++) {
        stream.write(Uint8Array.of(0));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(await status).toBe(408);
      expect(performance.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS + 1000);
    } finally {
      session.destroy();
    }
  });
});

describe('afterwards', () => {
  it('answers promptly on every transport', async () => {
    await expectPromptAnswers();
  });

  it('never raised an unhandled error, and logged no fault of its own', () => {
    expect(faults).toEqual([]);
    expect(errorLines).toEqual([]);
    expect(handled).toBeGreaterThan(0);
  });
});
