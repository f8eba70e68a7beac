import { connect as connectHttp2, constants as http2Constants } from 'node:http2';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildQuery,
  createDohClient,
  createLocalCa,
  encodeMessage,
  issueServerCertificate,
  queryTcp,
  record,
  respondError,
  startDnsServer,
  type ConnectionStats,
  type DnsServer,
  type QueryHandler,
} from '../src/index.js';

// Per-client connection limits and the deadlines bytes cannot reset, on the DNS-over-TCP and DoH
// listeners of real servers on 127.0.0.1. Attackers bind their sockets to other addresses of
// 127.0.0.0/8 (Linux routes all of it to the loopback interface), so the server sees them as
// other clients than the well-behaved one at 127.0.0.1.

const NAME = 'canary.mimi.arpa';
/** Queries for names under this one wait until {@link release} is called. */
const SLOW = 'slow.mimi.arpa';

let releaseSlow: () => void = () => undefined;
let slowGate = new Promise<void>((resolve) => (releaseSlow = resolve));
function release(): void {
  releaseSlow();
  slowGate = new Promise<void>((resolve) => (releaseSlow = resolve));
}

const handler: QueryHandler = async (query) => {
  const question = query.questions[0];
  const base = respondError(query, 'NOERROR');
  if (question === undefined) return base;
  if (question.name.endsWith(SLOW)) await slowGate;
  return { ...base, answers: [record(question.name, 'TXT', [Uint8Array.of(0x6f, 0x6b)], 60)] };
};

let cert: { certPem: string; keyPem: string };
let caPem: string;
const started: DnsServer[] = [];
const sockets: Socket[] = [];

beforeAll(async () => {
  const ca = await createLocalCa();
  caPem = ca.certPem;
  cert = await issueServerCertificate(ca, { hostnames: ['localhost'], ipAddresses: ['127.0.0.1'] });
});

/** Closes every client socket the last test opened. */
function closeClients(): void {
  for (const socket of sockets.splice(0)) socket.destroy();
}

afterAll(async () => {
  release();
  closeClients();
  await Promise.all(started.map((server) => server.close()));
});

async function server(config: Parameters<typeof startDnsServer>[0]): Promise<DnsServer> {
  const running = await startDnsServer(config, handler);
  started.push(running);
  return running;
}

/** A connection from `from`, and when it was closed (ms after it was opened). */
interface Opened {
  readonly socket: Socket;
  readonly closedAfter: Promise<number>;
  isClosed(): boolean;
}

function open(port: number, from: string): Opened {
  const socket = connectTcp({ host: '127.0.0.1', port, localAddress: from });
  sockets.push(socket);
  socket.on('error', () => undefined);
  const opened = performance.now();
  let closed = false;
  const closedAfter = new Promise<number>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve(performance.now() - opened);
    }),
  );
  return { socket, closedAfter, isClosed: () => closed };
}

/** Waits until `condition` holds, checking every 10 ms, for at most `timeoutMs`. */
async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Every connection the listener has decided on: admitted, refused or closed by it. */
function decided(stats: ConnectionStats): number {
  return stats.admitted + stats.refused.client_limit + stats.refused.capacity;
}

function frame(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  out.set(bytes, 2);
  return out;
}

/** TLS from a socket bound to `from`: node's `tls.connect` takes no local address itself. */
function tlsFrom(port: number, from: string, alpn: 'h2' | 'http/1.1'): TLSSocket {
  const socket = connectTcp({ host: '127.0.0.1', port, localAddress: from });
  socket.on('error', () => undefined);
  sockets.push(socket);
  return connectTls({ socket, host: '127.0.0.1', ca: caPem, ALPNProtocols: [alpn] });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const ATTACKERS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7'];

describe('DNS over TCP: connections per client', () => {
  let dns: DnsServer;
  const port = (): number => dns.tcp?.port ?? 0;
  const stats = (): ConnectionStats => (dns.tcp as NonNullable<DnsServer['tcp']>).connectionStats();

  beforeAll(async () => {
    // Long deadlines: only the limits can close the attackers' silent connections here.
    dns = await server({
      tcp: { port: 0, maxConnections: 16, connectionsPerClient: 4, idleTimeoutMs: 30_000 },
    });
  });

  afterEach(async () => {
    release();
    closeClients();
    await until(() => stats().open === 0);
  });

  it('closes the connections of one client past its share at once, and serves another client', async () => {
    const before = decided(stats());
    const held = Array.from({ length: 10 }, () => open(port(), '127.0.0.2'));
    await until(() => decided(stats()) - before === 10);
    // Six closed before the attacker sent anything; its four others stay open.
    await until(() => held.filter((c) => c.isClosed()).length === 6, 1000);
    expect(stats()).toMatchObject({ open: 4, refused: { client_limit: 6 } });
    const answer = await queryTcp({ host: '127.0.0.1', port: port() }, buildQuery(NAME, 'TXT'));
    expect(answer.answers).toHaveLength(1);
  });

  it('serves a client while attackers whose shares add up past the cap hold every connection', async () => {
    for (const from of ATTACKERS) for (let i = 0; i < 4; i++) open(port(), from);
    await until(() => stats().clients === ATTACKERS.length && stats().open === 16);
    // 24 attacker connections, at most 16 at once; the newcomer takes an idle one's place.
    const answer = await queryTcp({ host: '127.0.0.1', port: port() }, buildQuery(NAME, 'TXT'));
    expect(answer.answers).toHaveLength(1);
    expect(stats().open).toBeLessThanOrEqual(16);
    // The last attackers took the places of idle connections of the heaviest others, and the
    // newcomer one more.
    expect(stats().closed.evicted).toBeGreaterThanOrEqual(ATTACKERS.length + 1);
  });

  it('holds the cap when every connection is busy, and serves the newcomer once one is free', async () => {
    const slow = frame(encodeMessage(buildQuery(`a.${SLOW}`, 'TXT')));
    const held = ATTACKERS.slice(0, 4).flatMap((from) =>
      Array.from({ length: 4 }, () => open(port(), from)),
    );
    await until(() => stats().open === 16);
    for (const c of held) c.socket.write(slow);
    // Each connection has a query in flight: nothing to evict.
    await sleep(100);
    const refusedBefore = stats().refused.capacity;
    const newcomer = open(port(), '127.0.0.1');
    expect(await newcomer.closedAfter).toBeLessThan(1000);
    expect(stats().refused.capacity).toBe(refusedBefore + 1);
    expect(stats().open).toBe(16);
    expect(held.some((c) => c.isClosed())).toBe(false);
    release();
    const answer = await queryTcp({ host: '127.0.0.1', port: port() }, buildQuery(NAME, 'TXT'));
    expect(answer.answers).toHaveLength(1);
  });
});

describe('DNS over TCP: deadlines that bytes do not reset', () => {
  it('closes a client that sends a query one octet at a time when the message deadline passes', async () => {
    const dns = await server({ tcp: { port: 0, idleTimeoutMs: 30_000, messageTimeoutMs: 500 } });
    const query = frame(encodeMessage(buildQuery(NAME, 'TXT')));
    const dripper = open(dns.tcp?.port ?? 0, '127.0.0.2');
    let sent = 0;
    // At most the whole query (about 3.5 s at this pace); the server cuts it long before.
    for (; sent < query.length && !dripper.isClosed(); sent++) {
      dripper.socket.write(query.subarray(sent, sent + 1));
      await sleep(100);
    }
    const after = await dripper.closedAfter;
    expect(sent).toBeLessThan(query.length);
    expect(after).toBeGreaterThanOrEqual(450);
    expect(after).toBeLessThan(2000);
    expect(dns.tcp?.connectionStats().closed.message_timeout).toBe(1);
  });

  it('closes a connection idle since its last answer, although octets keep arriving', async () => {
    const dns = await server({ tcp: { port: 0, idleTimeoutMs: 600, messageTimeoutMs: 30_000 } });
    const client = open(dns.tcp?.port ?? 0, '127.0.0.2');
    const answered = new Promise<number>((resolve) =>
      client.socket.once('data', () => resolve(performance.now())),
    );
    client.socket.write(frame(encodeMessage(buildQuery(NAME, 'TXT'))));
    const answeredAt = await answered;
    // A second query, one octet every 100 ms: never whole before the idle timeout.
    const next = frame(encodeMessage(buildQuery(NAME, 'TXT')));
    for (let i = 0; i < next.length && !client.isClosed(); i++) {
      client.socket.write(next.subarray(i, i + 1));
      await sleep(100);
    }
    await client.closedAfter;
    const idleFor = performance.now() - answeredAt;
    expect(idleFor).toBeGreaterThanOrEqual(550);
    expect(idleFor).toBeLessThan(2000);
    expect(dns.tcp?.connectionStats().closed.idle_timeout).toBe(1);
  });
});

describe('DNS over TCP: a busy connection', () => {
  it('outlives the idle timeout while its query is in flight, and is closed idle after the answer', async () => {
    const dns = await server({ tcp: { port: 0, idleTimeoutMs: 300 } });
    const client = open(dns.tcp?.port ?? 0, '127.0.0.2');
    const answered = new Promise<number>((resolve) =>
      client.socket.once('data', () => resolve(performance.now())),
    );
    client.socket.write(frame(encodeMessage(buildQuery(`b.${SLOW}`, 'TXT'))));
    await sleep(700);
    expect(client.isClosed()).toBe(false);
    release();
    const answeredAt = await answered;
    await client.closedAfter;
    expect(performance.now() - answeredAt).toBeGreaterThanOrEqual(250);
  });
});

describe('DoH: connections per client', () => {
  let dns: DnsServer;
  const stats = (): ConnectionStats => (dns.doh as NonNullable<DnsServer['doh']>).connectionStats();

  beforeAll(async () => {
    dns = await server({
      doh: {
        port: 0,
        cert: cert.certPem,
        key: cert.keyPem,
        maxConnections: 16,
        connectionsPerClient: 4,
        requestTimeoutMs: 30_000,
        idleTimeoutMs: 30_000,
      },
    });
  });

  afterEach(async () => {
    closeClients();
    await until(() => stats().open === 0);
  });

  it('closes the half-open connections of one client past its share at once, and serves another client', async () => {
    const before = decided(stats());
    // TCP connections that never start TLS: each would hold a slot until the handshake deadline.
    const held = Array.from({ length: 10 }, () => open(dns.doh?.port ?? 0, '127.0.0.2'));
    await until(() => decided(stats()) - before === 10);
    await until(() => held.filter((c) => c.isClosed()).length === 6, 1000);
    expect(stats().refused.client_limit).toBe(6);
    const fresh = createDohClient({ ca: caPem });
    try {
      const answer = await fresh.query(dns.doh?.url ?? '', buildQuery(NAME, 'TXT'));
      expect(answer.answers).toHaveLength(1);
    } finally {
      await fresh.close();
    }
  });

  it('serves a client while attackers whose shares add up past the cap hold half-open connections', async () => {
    for (const from of ATTACKERS) for (let i = 0; i < 4; i++) open(dns.doh?.port ?? 0, from);
    await until(() => decided(stats()) >= 24 && stats().clients >= ATTACKERS.length - 1);
    expect(stats().open).toBeLessThanOrEqual(16);
    const fresh = createDohClient({ ca: caPem });
    try {
      const answer = await fresh.query(dns.doh?.url ?? '', buildQuery(NAME, 'TXT'));
      expect(answer.answers).toHaveLength(1);
    } finally {
      await fresh.close();
    }
    expect(stats().open).toBeLessThanOrEqual(16);
    expect(stats().closed.evicted).toBeGreaterThanOrEqual(8);
  });
});

describe('DoH: deadlines that bytes do not reset', () => {
  let dns: DnsServer;
  const port = (): number => dns.doh?.port ?? 0;
  const stats = (): ConnectionStats => (dns.doh as NonNullable<DnsServer['doh']>).connectionStats();

  beforeAll(async () => {
    dns = await server({
      doh: {
        port: 0,
        cert: cert.certPem,
        key: cert.keyPem,
        requestTimeoutMs: 500,
        idleTimeoutMs: 800,
      },
    });
  });

  it('closes a client that sends its TLS ClientHello one octet at a time at the handshake deadline', async () => {
    // A TLS record header announcing a 512-octet handshake message, then its first octets.
    const hello = Buffer.concat([
      Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]),
      Buffer.alloc(64, 0x2a),
    ]);
    const dripper = open(port(), '127.0.0.2');
    let sent = 0;
    for (; sent < hello.length && !dripper.isClosed(); sent++) {
      dripper.socket.write(hello.subarray(sent, sent + 1));
      await sleep(50);
    }
    const after = await dripper.closedAfter;
    expect(sent).toBeLessThan(hello.length);
    expect(after).toBeGreaterThanOrEqual(450);
    expect(after).toBeLessThan(2000);
  });

  it('closes an HTTP/2 session without streams at the idle timeout, although it keeps sending PINGs', async () => {
    const idleBefore = stats().closed.idle_timeout;
    const session = connectHttp2(dns.doh?.url ?? '', {
      createConnection: () => tlsFrom(port(), '127.0.0.3', 'h2'),
    });
    session.on('error', () => undefined);
    const closedAt = new Promise<number>((resolve) =>
      session.once('close', () => resolve(performance.now())),
    );
    const dns64 = Buffer.from(encodeMessage(buildQuery(NAME, 'TXT', { id: 0 }))).toString(
      'base64url',
    );
    const stream = session.request({ ':path': `/dns-query?dns=${dns64}` });
    stream.resume();
    const status = await new Promise<number>((resolve) =>
      stream.once('response', (headers) => resolve(Number(headers[':status']))),
    );
    expect(status).toBe(200);
    await new Promise<void>((resolve) => stream.once('close', () => resolve()));
    const idleFrom = performance.now();
    let pings = 0;
    for (let i = 0; i < 40 && !session.closed && !session.destroyed; i++) {
      const ok = await new Promise<boolean>((resolve) => {
        try {
          session.ping((error) => resolve(error === null));
        } catch {
          resolve(false);
        }
      });
      if (ok) pings++;
      await sleep(100);
    }
    const idleFor = (await closedAt) - idleFrom;
    expect(pings).toBeGreaterThanOrEqual(4);
    expect(idleFor).toBeGreaterThanOrEqual(700);
    expect(idleFor).toBeLessThan(2500);
    expect(stats().closed.idle_timeout).toBeGreaterThan(idleBefore);
  });

  it('closes an HTTP/1.1 connection at the idle timeout after its response, although the next request trickles in', async () => {
    const socket = tlsFrom(port(), '127.0.0.4', 'http/1.1');
    sockets.push(socket);
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    const closed = new Promise<number>((resolve) =>
      socket.once('close', () => resolve(performance.now())),
    );
    const dns64 = Buffer.from(encodeMessage(buildQuery(NAME, 'TXT', { id: 0 }))).toString(
      'base64url',
    );
    const answered = new Promise<number>((resolve) =>
      socket.once('data', () => resolve(performance.now())),
    );
    socket.write(`GET /dns-query?dns=${dns64} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    const answeredAt = await answered;
    const next = `GET /dns-query?dns=${dns64} HTTP/1.1\r\nHost: localhost\r\n\r\n`;
    for (let i = 0; i < next.length && !socket.destroyed; i++) {
      socket.write(next.slice(i, i + 1));
      await sleep(50);
      if (socket.readableEnded) break;
    }
    const idleFor = (await closed) - answeredAt;
    // The idle deadline (800 ms from the response) comes first; the request deadline (500 ms
    // from its first octet) would cut it too, a little later.
    expect(idleFor).toBeLessThan(2000);
  });

  it.each([
    ['HTTP/2', true],
    ['HTTP/1.1', false],
  ])('keeps an %s connection busy with a slow query past the idle timeout', async (_v, allowH2) => {
    const client = createDohClient({ ca: caPem, allowH2 });
    try {
      const answer = client.query(dns.doh?.url ?? '', buildQuery(`c.${SLOW}`, 'TXT'), {
        timeoutMs: 5000,
      });
      // Longer than the idle timeout (800 ms): only a connection counted busy survives it.
      await sleep(1200);
      release();
      expect((await answer).answers).toHaveLength(1);
    } finally {
      await client.close();
    }
  });

  it('cuts an HTTP/2 exchange whose client does not take its answer', async () => {
    // A flow-control window of zero: the response headers go out, its DATA never can.
    const session = connectHttp2(dns.doh?.url ?? '', {
      createConnection: () => tlsFrom(port(), '127.0.0.5', 'h2'),
      settings: { initialWindowSize: 0 },
    });
    session.on('error', () => undefined);
    try {
      const dns64 = Buffer.from(encodeMessage(buildQuery(NAME, 'TXT', { id: 0 }))).toString(
        'base64url',
      );
      const started = performance.now();
      const stream = session.request({ ':path': `/dns-query?dns=${dns64}` });
      stream.on('error', () => undefined);
      // PINGs keep the session active, as a client holding the answer back on purpose would.
      const pinger = setInterval(() => {
        if (!session.destroyed) session.ping(() => undefined);
      }, 100);
      const closed = await new Promise<{ after: number; code: number }>((resolve) =>
        stream.once('close', () =>
          resolve({ after: performance.now() - started, code: stream.rstCode }),
        ),
      );
      clearInterval(pinger);
      // The exchange is reset (RST_STREAM CANCEL); the session itself was not torn down.
      expect(closed.code).toBe(http2Constants.NGHTTP2_CANCEL);
      expect(session.destroyed).toBe(false);
      expect(closed.after).toBeGreaterThanOrEqual(450);
      expect(closed.after).toBeLessThan(1500);
    } finally {
      session.destroy();
    }
  });
});
