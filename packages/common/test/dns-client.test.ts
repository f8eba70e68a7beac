import { createSocket, type RemoteInfo } from 'node:dgram';
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from 'node:http2';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  DNS_MESSAGE_MEDIA_TYPE,
  EDNS_UDP_PAYLOAD_OCTETS,
  TransportError,
  buildQuery,
  createDohClient,
  DOH_RETRIES_ON_DEAD_CONNECTION,
  DOH_CONNECT_TIMEOUT_MS,
  createLocalCa,
  decodeMessage,
  encodeMessage,
  issueServerCertificate,
  padMessage,
  PADDING_OPTION_CODE,
  QUERY_PADDING_BLOCK_OCTETS,
  queryTcp,
  queryUdp,
  respondError,
  type LocalCa,
  type Message,
  type ServerCertificate,
} from '../src/index.js';

const NAME = '8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa';

/** Binds a UDP socket on 127.0.0.1 that calls `onQuery` with each datagram and its sender. */
async function fakeUdpServer(
  onQuery: (bytes: Buffer, reply: (bytes: Uint8Array) => void, peer: RemoteInfo) => void,
): Promise<{ port: number; close: () => void }> {
  const socket = createSocket('udp4');
  socket.on('message', (bytes, peer) =>
    onQuery(bytes, (out) => socket.send(out, peer.port, peer.address), peer),
  );
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { port: socket.address().port, close: () => socket.close() };
}

/** A TCP server on 127.0.0.1 that hands each connection to `onConnection`. */
async function fakeTcpServer(
  onConnection: (socket: Socket) => void,
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Reads the first length-prefixed message of a connection. */
function firstMessage(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (buffer.length >= 2 && buffer.length >= 2 + buffer.readUInt16BE(0))
        resolve(buffer.subarray(2, 2 + buffer.readUInt16BE(0)));
    });
  });
}

function frame(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  out.set(bytes, 2);
  return out;
}

/** A NOERROR answer to the query in `bytes`, with `change` applied. */
function answer(bytes: Uint8Array, change: (m: Message) => Message = (m) => m): Uint8Array {
  return encodeMessage(change(respondError(decodeMessage(bytes), 'NOERROR')));
}

/** The stray reply of RFC 5452 §9.1: the query's id, REFUSED, and no question. */
function questionless(bytes: Uint8Array, rcode: Message['rcode'] = 'REFUSED'): Uint8Array {
  return answer(bytes, (m) => ({ ...m, rcode, questions: [] }));
}

describe('buildQuery', () => {
  it('builds an EDNS query with RD clear and a random id by default', () => {
    const query = buildQuery(NAME, 'MAP');
    expect(query.questions).toEqual([{ name: NAME, type: 'MAP', class: 'IN' }]);
    expect(query.flags).toMatchObject({ qr: false, opcode: 0, rd: false });
    expect(query.edns).toEqual({
      udpPayloadSize: EDNS_UDP_PAYLOAD_OCTETS,
      extendedRcode: 0,
      version: 0,
      dnssecOk: false,
      options: [],
    });
    expect(query.id).toBeGreaterThanOrEqual(0);
    expect(query.id).toBeLessThan(65536);
    const ids = new Set(Array.from({ length: 20 }, () => buildQuery(NAME, 'MAP').id));
    expect(ids.size).toBeGreaterThan(1);
  });

  it('takes id, DO, RD, CO and payload size from the options', () => {
    const query = buildQuery(NAME, 'MAP', {
      id: 7,
      dnssecOk: true,
      recursionDesired: true,
      udpPayloadSize: 4096,
      compactOk: true,
    });
    expect(query.id).toBe(7);
    expect(query.flags.rd).toBe(true);
    expect(query.edns).toMatchObject({ udpPayloadSize: 4096, dnssecOk: true, compactOk: true });
    expect(decodeMessage(encodeMessage(query))).toEqual(query);
  });
});

describe('queryUdp', () => {
  it('ignores datagrams that do not decode or answer another query', async () => {
    const server = await fakeUdpServer((bytes, reply) => {
      reply(Uint8Array.from([1, 2, 3]));
      reply(answer(bytes, (m) => ({ ...m, id: (m.id + 1) & 0xffff })));
      reply(
        answer(bytes, (m) => ({
          ...m,
          questions: [{ name: 'other.example', type: 'MAP', class: 'IN' }],
        })),
      );
      // Names match without regard to case (DNS 0x20).
      reply(
        answer(bytes, (m) => ({
          ...m,
          questions: m.questions.map((q) => ({ ...q, name: q.name.toUpperCase() })),
          rcode: 'NXDOMAIN',
        })),
      );
    });
    try {
      const response = await queryUdp(
        { host: '127.0.0.1', port: server.port },
        buildQuery(NAME, 'MAP'),
      );
      expect(response.rcode).toBe('NXDOMAIN');
    } finally {
      server.close();
    }
  });

  it.each(['REFUSED', 'FORMERR', 'NOERROR'] as const)(
    'ignores a %s with the right id and no question, and takes the answer that follows',
    async (rcode) => {
      const server = await fakeUdpServer((bytes, reply) => {
        reply(questionless(bytes, rcode));
        setTimeout(() => reply(answer(bytes, (m) => ({ ...m, rcode: 'NXDOMAIN' }))), 50);
      });
      try {
        const response = await queryUdp(
          { host: '127.0.0.1', port: server.port },
          buildQuery(NAME, 'MAP'),
        );
        expect(response.rcode).toBe('NXDOMAIN');
        expect(response.questions).toHaveLength(1);
      } finally {
        server.close();
      }
    },
  );

  it('times out when the only reply is a REFUSED without a question', async () => {
    const server = await fakeUdpServer((bytes, reply) => reply(questionless(bytes)));
    try {
      await expect(
        queryUdp({ host: '127.0.0.1', port: server.port }, buildQuery(NAME, 'MAP'), {
          timeoutMs: 200,
        }),
      ).rejects.toMatchObject({ code: 'ERR_TRANSPORT_TIMEOUT' });
    } finally {
      server.close();
    }
  });

  it('ignores a forged answer from another port than the one asked', async () => {
    const stranger = createSocket('udp4');
    await new Promise<void>((resolve) => stranger.bind(0, '127.0.0.1', resolve));
    const server = await fakeUdpServer((bytes, reply, peer) => {
      // A valid-looking answer from the wrong source port arrives first, the real one later.
      stranger.send(
        answer(bytes, (m) => ({ ...m, rcode: 'NXDOMAIN' })),
        peer.port,
        peer.address,
      );
      setTimeout(() => reply(answer(bytes)), 50);
    });
    try {
      const response = await queryUdp(
        { host: '127.0.0.1', port: server.port },
        buildQuery(NAME, 'MAP'),
      );
      expect(response.rcode).toBe('NOERROR');
    } finally {
      stranger.close();
      server.close();
    }
  });

  it('fails with ERR_TRANSPORT_TIMEOUT when no answer comes', async () => {
    const server = await fakeUdpServer(() => undefined);
    try {
      const started = performance.now();
      const error = await queryUdp(
        { host: '127.0.0.1', port: server.port },
        buildQuery(NAME, 'MAP'),
        {
          timeoutMs: 200,
        },
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransportError);
      expect(error).toMatchObject({ code: 'ERR_TRANSPORT_TIMEOUT' });
      expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    } finally {
      server.close();
    }
  });

  it('retries a truncated answer over TCP on the same port', async () => {
    const tcp = await fakeTcpServer((socket) => {
      void firstMessage(socket).then((bytes) =>
        socket.write(frame(answer(bytes, (m) => ({ ...m, rcode: 'NXDOMAIN' })))),
      );
    });
    const udp = createSocket('udp4');
    udp.on('message', (bytes, peer) =>
      udp.send(
        answer(bytes, (m) => ({ ...m, flags: { ...m.flags, tc: true } })),
        peer.port,
        peer.address,
      ),
    );
    await new Promise<void>((resolve) => udp.bind(tcp.port, '127.0.0.1', resolve));
    try {
      const server = { host: '127.0.0.1', port: tcp.port };
      const retried = await queryUdp(server, buildQuery(NAME, 'MAP'));
      expect(retried.rcode).toBe('NXDOMAIN');
      const truncated = await queryUdp(server, buildQuery(NAME, 'MAP'), { tcpFallback: false });
      expect(truncated.flags.tc).toBe(true);
    } finally {
      udp.close();
      await tcp.close();
    }
  });
});

describe('queryTcp', () => {
  const servers: Array<{ close: () => Promise<void> }> = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  async function serve(
    onConnection: (socket: Socket) => void,
  ): Promise<{ host: string; port: number }> {
    const server = await fakeTcpServer(onConnection);
    servers.push(server);
    return { host: '127.0.0.1', port: server.port };
  }

  it('reassembles an answer that arrives one octet at a time', async () => {
    const server = await serve((socket) => {
      void firstMessage(socket).then(async (bytes) => {
        for (const octet of frame(answer(bytes))) {
          socket.write(Uint8Array.of(octet));
          await new Promise((resolve) => setImmediate(resolve));
        }
      });
    });
    const query = buildQuery(NAME, 'MAP');
    expect((await queryTcp(server, query)).id).toBe(query.id);
  });

  it.each([
    {
      what: 'bytes that do not decode',
      reply: (_: Buffer) => frame(Uint8Array.from({ length: 13 }, () => 0xff)),
    },
    {
      what: 'an answer to another id',
      reply: (b: Buffer) => frame(answer(b, (m) => ({ ...m, id: m.id ^ 1 }))),
    },
    { what: 'a length below the header', reply: (_: Buffer) => frame(Uint8Array.from([1, 2, 3])) },
    {
      what: 'a REFUSED with the right id and no question',
      reply: (b: Buffer) => frame(questionless(b)),
    },
  ])('fails with ERR_TRANSPORT_BAD_RESPONSE on $what', async ({ reply }) => {
    const server = await serve((socket) => {
      void firstMessage(socket).then((bytes) => socket.write(reply(bytes)));
    });
    await expect(queryTcp(server, buildQuery(NAME, 'MAP'))).rejects.toMatchObject({
      code: 'ERR_TRANSPORT_BAD_RESPONSE',
    });
  });

  it('fails with ERR_TRANSPORT_CONNECTION when the server closes before answering', async () => {
    const server = await serve((socket) => {
      void firstMessage(socket).then(() => socket.end());
    });
    await expect(queryTcp(server, buildQuery(NAME, 'MAP'))).rejects.toMatchObject({
      code: 'ERR_TRANSPORT_CONNECTION',
    });
  });

  it('fails with ERR_TRANSPORT_CONNECTION when nothing listens', async () => {
    const server = await fakeTcpServer(() => undefined);
    await server.close();
    await expect(
      queryTcp({ host: '127.0.0.1', port: server.port }, buildQuery(NAME, 'MAP')),
    ).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CONNECTION' });
  });

  it('fails with ERR_TRANSPORT_TIMEOUT when the server stays silent', async () => {
    const server = await serve(() => undefined);
    await expect(
      queryTcp(server, buildQuery(NAME, 'MAP'), { timeoutMs: 200 }),
    ).rejects.toMatchObject({
      code: 'ERR_TRANSPORT_TIMEOUT',
    });
  });
});

describe('DoH client', () => {
  type Mode =
    | 'answer'
    | 'text'
    | 'garbage'
    | 'other-id'
    | 'no-question'
    | 'status-503'
    | 'silent'
    | 'huge'
    | 'reset-once'
    | 'reset';
  let ca: LocalCa;
  let leaf: ServerCertificate;
  let server: Http2SecureServer;
  let url: string;
  let mode: Mode = 'answer';
  let connections = 0;
  const paths: string[] = [];
  /** The octets of every query the server received. */
  const received: Buffer[] = [];

  beforeAll(async () => {
    ca = await createLocalCa();
    leaf = await issueServerCertificate(ca, {
      hostnames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    // The compatibility API serves both versions here: this is a stand-in server with faults
    // on demand, not the project's DoH server.
    server = createSecureServer(
      { cert: leaf.certPem, key: leaf.keyPem, allowHTTP1: true },
      (request, response) => void respond(request, response),
    );
    server.on('secureConnection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    url = `https://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/dns-query`;
  });
  afterAll(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Connections left open by the silent case are closed with the server.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  );

  async function respond(
    request: Http2ServerRequest,
    response: Http2ServerResponse,
  ): Promise<void> {
    paths.push(request.url);
    const chunks: Buffer[] = [];
    for await (const chunk of request as AsyncIterable<Buffer>) chunks.push(chunk);
    const dns = new URL(request.url, 'https://x').searchParams.get('dns');
    const bytes = dns === null ? Buffer.concat(chunks) : Buffer.from(dns, 'base64url');
    received.push(bytes);
    const ok = { 'content-type': DNS_MESSAGE_MEDIA_TYPE };
    switch (mode) {
      case 'answer':
        response.writeHead(200, ok).end(answer(bytes));
        return;
      case 'text':
        response.writeHead(200, { 'content-type': 'text/html' }).end(answer(bytes));
        return;
      case 'garbage':
        response.writeHead(200, ok).end(Buffer.from('not dns'));
        return;
      case 'other-id':
        response.writeHead(200, ok).end(answer(bytes, (m) => ({ ...m, id: m.id ^ 1 })));
        return;
      case 'no-question':
        response.writeHead(200, ok).end(questionless(bytes));
        return;
      case 'status-503':
        response.writeHead(503, { 'content-type': 'text/plain' }).end('overloaded, retry later');
        return;
      case 'huge':
        response.writeHead(200, ok).end(Buffer.alloc(70_000));
        return;
      case 'silent':
        return;
      // The connection dies under the request, as one kept open to a server that restarted.
      case 'reset-once':
        mode = 'answer';
        request.socket.destroy();
        return;
      case 'reset':
        request.socket.destroy();
        return;
    }
  }

  it(`sends a query again, ${DOH_RETRIES_ON_DEAD_CONNECTION} time, when its connection dies under it`, async () => {
    for (const allowH2 of [true, false]) {
      const client = createDohClient({ ca: ca.certPem, allowH2 });
      try {
        mode = 'answer';
        await client.query(url, buildQuery(NAME, 'MAP'));
        const asked = received.length;
        mode = 'reset-once';
        const answer = await client.query(url, buildQuery(NAME, 'MAP'));
        expect(answer.flags.qr).toBe(true);
        expect(received.length - asked).toBe(2);
        // A server that always drops the connection: the query fails after the one retry.
        mode = 'reset';
        const from = received.length;
        const error = await client.query(url, buildQuery(NAME, 'MAP')).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(TransportError);
        expect((error as TransportError).code).toBe('ERR_TRANSPORT_CONNECTION');
        expect(received.length - from).toBe(1 + DOH_RETRIES_ON_DEAD_CONNECTION);
      } finally {
        mode = 'answer';
        await client.close();
      }
    }
  });

  it('reuses one HTTP/2 connection for many queries', async () => {
    mode = 'answer';
    const client = createDohClient({ ca: ca.certPem });
    try {
      const before = connections;
      for (let i = 0; i < 5; i++) await client.query(url, buildQuery(NAME, 'MAP'));
      await Promise.all(
        Array.from({ length: 20 }, () => client.query(url, buildQuery(NAME, 'MAP'))),
      );
      expect(connections - before).toBe(1);
    } finally {
      await client.close();
    }
  });

  it('opens one HTTP/2 connection for queries sent together to a server not yet connected', async () => {
    mode = 'answer';
    const client = createDohClient({ ca: ca.certPem });
    try {
      const before = connections;
      const answers = await Promise.all(
        Array.from({ length: 6 }, () => client.query(url, buildQuery(NAME, 'MAP'))),
      );
      expect(answers.every((m) => m.flags.qr)).toBe(true);
      expect(connections - before).toBe(1);
    } finally {
      await client.close();
    }
  });

  it('times out queries whose connection is never made, by their own timeout', async () => {
    // Accepts TCP connections and never answers the TLS handshake; once the queries have
    // failed, closes every connection at once, so that the client can close.
    const sockets = new Set<Socket>();
    let refusing = false;
    const silent: Server = createTcpServer((socket) => {
      if (refusing) {
        socket.destroy();
        return;
      }
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const client = createDohClient({ ca: ca.certPem });
    try {
      const errors = await Promise.all(
        Array.from({ length: 3 }, () =>
          client
            .query(`https://127.0.0.1:${port}/dns-query`, buildQuery(NAME, 'MAP'), {
              timeoutMs: 300,
            })
            .catch((e: unknown) => e),
        ),
      );
      // Each fails by its own timeout, not by undici's connect timeout (10 s, past the
      // test's own): neither the query making the connection nor those waiting for it hang.
      for (const error of errors) expect(error).toMatchObject({ code: 'ERR_TRANSPORT_TIMEOUT' });
    } finally {
      // undici keeps the handshake pending (and connects again) until its socket is gone.
      refusing = true;
      for (const socket of sockets) socket.destroy();
      await client.close();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('keeps HTTP/1.1 connections alive, at most `connections` of them', async () => {
    mode = 'answer';
    const client = createDohClient({ ca: ca.certPem, allowH2: false, connections: 2 });
    try {
      const before = connections;
      await Promise.all(
        Array.from({ length: 20 }, () => client.query(url, buildQuery(NAME, 'MAP'))),
      );
      expect(connections - before).toBeLessThanOrEqual(2);
    } finally {
      await client.close();
    }
  });

  it('sends GET with the padded query as unpadded base64url in `dns`', async () => {
    mode = 'answer';
    const client = createDohClient({ ca: ca.certPem });
    try {
      const query = buildQuery(NAME, 'MAP', { id: 0 });
      await client.query(url, query, { method: 'GET' });
      const padded = padMessage(encodeMessage(query), QUERY_PADDING_BLOCK_OCTETS);
      const expected = Buffer.from(padded).toString('base64url');
      expect(paths.at(-1)).toBe(`/dns-query?dns=${expected}`);
      expect(expected).not.toContain('=');
    } finally {
      await client.close();
    }
  });

  it('pads every query with EDNS to a multiple of 128 octets, GET and POST (RFC 8467 §4.1)', async () => {
    mode = 'answer';
    const client = createDohClient({ ca: ca.certPem });
    try {
      // Names of many lengths: the unpadded queries are 40 to 200 octets.
      const names = Array.from({ length: 12 }, (_, i) => `${'ab.'.repeat(i * 5)}mimi.arpa`);
      for (const [i, name] of names.entries()) {
        const query = buildQuery(name, 'MAP', { dnssecOk: true });
        await client.query(url, query, { method: i % 2 === 0 ? 'POST' : 'GET' });
        const bytes = received.at(-1) ?? expect.unreachable();
        expect(bytes.length % QUERY_PADDING_BLOCK_OCTETS, name).toBe(0);
        expect(bytes.length - encodeMessage(query).length).toBeLessThan(
          QUERY_PADDING_BLOCK_OCTETS + 4,
        );
        const decoded = decodeMessage(bytes);
        expect(decoded.questions).toEqual(query.questions);
        expect(decoded.edns?.dnssecOk).toBe(true);
        const padding = decoded.edns?.options.filter((o) => o.code === PADDING_OPTION_CODE);
        expect(padding).toHaveLength(1);
        expect(padding?.[0]?.data.every((octet) => octet === 0)).toBe(true);
      }
    } finally {
      await client.close();
    }
  });

  it('sends a query without EDNS as it is: padding lives in the OPT record', async () => {
    mode = 'answer';
    const client = createDohClient({ ca: ca.certPem });
    try {
      const query: Message = buildQuery(NAME, 'MAP');
      delete query.edns;
      await client.query(url, query);
      expect(received.at(-1)).toEqual(Buffer.from(encodeMessage(query)));
    } finally {
      await client.close();
    }
  });

  it('spreads queries over its lanes, one HTTP/2 connection each', async () => {
    mode = 'answer';
    const client = createDohClient({ ca: ca.certPem, lanes: 4 });
    try {
      const before = connections;
      // Each query takes a lane at random: with 60 queries, a lane left without any has
      // probability 4 × (3/4)^60, about 10^-7.
      await Promise.all(
        Array.from({ length: 60 }, () => client.query(url, buildQuery(NAME, 'MAP'))),
      );
      expect(connections - before).toBe(4);
    } finally {
      await client.close();
    }
  });

  it.each([0, 17, 1.5])('refuses %s lanes', (lanes) => {
    expect(() => createDohClient({ lanes })).toThrow(RangeError);
  });

  it.each([
    { mode: 'text', code: 'ERR_TRANSPORT_BAD_RESPONSE' },
    { mode: 'garbage', code: 'ERR_TRANSPORT_BAD_RESPONSE' },
    { mode: 'other-id', code: 'ERR_TRANSPORT_BAD_RESPONSE' },
    { mode: 'no-question', code: 'ERR_TRANSPORT_BAD_RESPONSE' },
    { mode: 'huge', code: 'ERR_TRANSPORT_BAD_RESPONSE' },
    { mode: 'status-503', code: 'ERR_TRANSPORT_HTTP_STATUS' },
    { mode: 'silent', code: 'ERR_TRANSPORT_TIMEOUT' },
  ] as const)('fails with $code when the server answers $mode', async (c) => {
    mode = c.mode;
    const client = createDohClient({ ca: ca.certPem });
    try {
      const error = await client
        .query(url, buildQuery(NAME, 'MAP'), { timeoutMs: 300 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransportError);
      expect(error).toMatchObject({ code: c.code });
      if (c.mode === 'status-503') {
        expect(error).toMatchObject({ status: 503 });
        expect((error as Error).message).toContain('overloaded');
      }
    } finally {
      await client.close();
    }
  });

  it('fails with ERR_TRANSPORT_CERTIFICATE for a server certificate from an untrusted CA', async () => {
    mode = 'answer';
    const other = await createLocalCa();
    const client = createDohClient({ ca: other.certPem });
    try {
      const error = await client.query(url, buildQuery(NAME, 'MAP')).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_TRANSPORT_CERTIFICATE' });
      expect((error as Error).message).toContain('certificate');
      expect((error as Error).message).toContain('127.0.0.1');
      expect((error as Error).cause).toBeDefined();
    } finally {
      await client.close();
    }
  });
});

describe('DoH client: the certificate of a server called by name (RFC 6066 §3, RFC 6125)', () => {
  let ca: LocalCa;
  const servers: Http2SecureServer[] = [];
  /** The SNI each server saw, by port. */
  const sni = new Map<number, Array<string | false>>();

  /** A DoH server on 127.0.0.1 with a certificate for `names`, answering every query. */
  async function serverWith(names: {
    hostnames: string[];
    ipAddresses?: string[];
  }): Promise<string> {
    const leaf = await issueServerCertificate(ca, names);
    const server = createSecureServer(
      { cert: leaf.certPem, key: leaf.keyPem },
      (request, response) => {
        const chunks: Buffer[] = [];
        request.on('data', (chunk: Buffer) => chunks.push(chunk));
        request.on('end', () =>
          response
            .writeHead(200, { 'content-type': DNS_MESSAGE_MEDIA_TYPE })
            .end(answer(Buffer.concat(chunks))),
        );
      },
    );
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const seen: Array<string | false> = [];
    sni.set(port, seen);
    server.on('secureConnection', (socket) => seen.push(socket.servername));
    return `https://127.0.0.1:${port}/dns-query`;
  }

  beforeAll(async () => {
    ca = await createLocalCa();
  });
  afterAll(async () => {
    await Promise.all(
      servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
  });

  it('reaches a server by its glue address with a certificate for its name only, sending the name as SNI', async () => {
    const url = await serverWith({ hostnames: ['ns1.dp.example'] });
    const client = createDohClient({ ca: ca.certPem });
    try {
      const response = await client.query(url, buildQuery(NAME, 'MAP'), {
        serverName: 'ns1.dp.example.',
      });
      expect(response.rcode).toBe('NOERROR');
      expect(sni.get(Number(new URL(url).port))).toEqual(['ns1.dp.example']);
      // Without the name, the same certificate is checked against the address, and refused.
      const error = await client.query(url, buildQuery(NAME, 'MAP')).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_TRANSPORT_CERTIFICATE' });
    } finally {
      await client.close();
    }
  });

  it('refuses a certificate for another name, saying "certificate", the name and the address', async () => {
    const url = await serverWith({ hostnames: ['ns1.other.example'], ipAddresses: ['127.0.0.1'] });
    const client = createDohClient({ ca: ca.certPem });
    try {
      const error = await client
        .query(url, buildQuery(NAME, 'MAP'), { serverName: 'ns1.dp.example' })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransportError);
      expect(error).toMatchObject({ code: 'ERR_TRANSPORT_CERTIFICATE' });
      const message = (error as Error).message;
      expect(message).toContain('certificate');
      expect(message).toContain('ns1.dp.example');
      expect(message).toContain(`127.0.0.1:${new URL(url).port}`);
    } finally {
      await client.close();
    }
  });

  it('accepts a certificate for the address only when address certificates are accepted', async () => {
    const url = await serverWith({ hostnames: [], ipAddresses: ['127.0.0.1'] });
    const strict = createDohClient({ ca: ca.certPem });
    const lenient = createDohClient({ ca: ca.certPem, acceptAddressCertificates: true });
    try {
      const error = await strict
        .query(url, buildQuery(NAME, 'MAP'), { serverName: 'ns1.dp.example' })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_TRANSPORT_CERTIFICATE' });
      expect((error as Error).message).toContain('ns1.dp.example');
      const response = await lenient.query(url, buildQuery(NAME, 'MAP'), {
        serverName: 'ns1.dp.example',
      });
      expect(response.rcode).toBe('NOERROR');
    } finally {
      await strict.close();
      await lenient.close();
    }
  });

  it('still refuses a certificate for neither the name nor the address when address certificates are accepted', async () => {
    const url = await serverWith({ hostnames: ['ns1.other.example'], ipAddresses: ['127.0.0.2'] });
    const lenient = createDohClient({ ca: ca.certPem, acceptAddressCertificates: true });
    try {
      const error = await lenient
        .query(url, buildQuery(NAME, 'MAP'), { serverName: 'ns1.dp.example' })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_TRANSPORT_CERTIFICATE' });
    } finally {
      await lenient.close();
    }
  });

  it(`gives up a connection whose handshake never completes (DOH_CONNECT_TIMEOUT_MS, ${DOH_CONNECT_TIMEOUT_MS} ms by default)`, async () => {
    // A server that accepts TCP and never answers the ClientHello.
    let closed = 0;
    const silent = await fakeTcpServer((socket) => {
      socket.on('close', () => closed++);
      // Read (and drop) what comes, so that the client's end of the connection is seen.
      socket.resume();
    });
    const client = createDohClient({ ca: ca.certPem, connectTimeoutMs: 200 });
    try {
      const error = await client
        .query(`https://127.0.0.1:${silent.port}/dns-query`, buildQuery(NAME, 'MAP'), {
          serverName: 'ns1.dp.example',
          timeoutMs: 5000,
        })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_TRANSPORT_TIMEOUT' });
      expect((error as Error).message).toContain('ns1.dp.example');
      await vi.waitFor(() => expect(closed).toBe(1));
    } finally {
      await client.close();
      await silent.close();
    }
  });

  it('opens a connection per name for queries to one address under two names', async () => {
    const url = await serverWith({ hostnames: ['ns1.dp.example', 'ns2.dp.example'] });
    const client = createDohClient({ ca: ca.certPem });
    try {
      const names = ['ns1.dp.example', 'ns2.dp.example', 'ns1.dp.example'];
      const responses = await Promise.all(
        names.map((serverName) => client.query(url, buildQuery(NAME, 'MAP'), { serverName })),
      );
      expect(responses.map((r) => r.rcode)).toEqual(['NOERROR', 'NOERROR', 'NOERROR']);
      const seen = sni.get(Number(new URL(url).port)) ?? [];
      expect(new Set(seen)).toEqual(new Set(['ns1.dp.example', 'ns2.dp.example']));
    } finally {
      await client.close();
    }
  });
});
