import { createSocket } from 'node:dgram';
import { readdirSync, readFileSync } from 'node:fs';
import { connect as connectHttp2, type ClientHttp2Session } from 'node:http2';
import { connect as connectTcp, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_DOH_CONNECTIONS_PER_CLIENT,
  DEFAULT_TCP_CONNECTIONS_PER_CLIENT,
  DEFAULT_TCP_MAX_CONNECTIONS,
  DNS_MESSAGE_MEDIA_TYPE,
  HEADER_OCTETS,
  buildQuery,
  createDohClient,
  csiToName,
  decodeMessage,
  encodeMessage,
  formatRecord,
  keyPairFromSeed,
  parseCsi,
  queryTcp,
  type ConnectionStats,
  type DnsServer,
  type Message,
} from '@mimi-discovery/common';
import { API_CONNECTIONS_PER_CLIENT, type RunningDp } from '@mimi-discovery/authoritative';
import { buildNetwork, logLines, type Network, type NetworkServer } from './helpers/network.js';
import { TRANSPORTS, ask } from './helpers/dns.js';
import {
  answerOf,
  apiOf,
  attest,
  errorCode,
  mappingBytes,
  type ApiResponse,
} from './helpers/registration.js';
import { sharedDataPath } from './helpers/shared-data.js';

// Whatever a client sends, a running DP neither crashes nor stalls: right after malformed DNS
// packets, broken framing, slow clients and junk API bodies, a normal query is answered on every
// transport, and junk sent to the registration API leaves the store as it was.

const CORPUS = sharedDataPath('corpus', 'bind9-fuzz', 'dns_message_parse.in');
const packets = readdirSync(CORPUS)
  .sort()
  .map((file) => ({ file, bytes: readFileSync(join(CORPUS, file)) }));

/** Largest UDP payload over IPv4. */
const MAX_UDP_DATAGRAM = 65_507;
/** A normal query must be answered this fast while the server is under abuse. */
const PROMPT_MS = 2000;
const ALICE = keyPairFromSeed(new Uint8Array(32).fill(0x41));
const PHONE = parseCsi('tel:+442079460018');

let net: Network;
let dp: NetworkServer;
let mapBytes: Uint8Array;

beforeAll(async () => {
  net = await buildNetwork();
  dp = net.phone;
  const att = await attest(apiOf(dp), PHONE, ALICE);
  mapBytes = mappingBytes(att, ALICE);
  const published = await answerOf(
    apiOf(dp).client.publishMapping({ csi: PHONE, mapping: mapBytes }),
  );
  expect(published.status).toBe(201);
});

afterAll(async () => {
  await net?.close();
});

/** A normal MAP query on every transport gets the published mapping, each within PROMPT_MS. */
async function expectServing(): Promise<void> {
  for (const transport of TRANSPORTS) {
    const started = performance.now();
    const response = await ask(net.doh, dp, transport, csiToName(PHONE), 'MAP', {
      dnssecOk: false,
    });
    expect(performance.now() - started, `${transport} answered promptly`).toBeLessThan(PROMPT_MS);
    expect(response.rcode, transport).toBe('NOERROR');
    const maps = response.answers.flatMap((rr) => (rr.type === 'MAP' ? [rr.data] : []));
    expect(
      maps.map((m) => Buffer.from(m).toString('hex')),
      transport,
    ).toEqual([Buffer.from(mapBytes).toString('hex')]);
  }
}

/** The zone as text, RRSIGs included, and its serial: what junk must not change. */
function zoneSnapshot(): string {
  return dp.provider.store.readZone(dp.zone).map(formatRecord).join('\n');
}

const frame = (bytes: Uint8Array): Buffer => {
  const out = Buffer.alloc(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  out.set(bytes, 2);
  return out;
};

/** Opens a TCP connection to the DP, from `from` (another client than the probes' 127.0.0.1). */
function tcpConnection(from = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host: '127.0.0.1', port: dp.tcp.port, localAddress: from }, () =>
      resolve(socket),
    );
    socket.once('error', reject);
  });
}

/** Opens a TLS connection (HTTP/1.1 by ALPN) trusting the network's CA. */
function tlsConnection(port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connectTls(
      { host: '127.0.0.1', port, ca: net.caPem, ALPNProtocols: ['http/1.1'] },
      () => resolve(socket),
    );
    socket.once('error', reject);
  });
}

const apiPort = (): number => Number(new URL(dp.api?.url ?? '').port);

/**
 * POSTs `body` to `route` of the DP's API as it is (JSON text, raw octets, or a value sent as
 * JSON), with the content type given: for requests that no client would send.
 */
async function postRaw(
  route: string,
  body: unknown,
  contentType = 'application/json',
): Promise<ApiResponse> {
  const response = await request(`${dp.api?.url ?? ''}${route}`, {
    dispatcher: net.agent,
    method: 'POST',
    headers: { 'content-type': contentType },
    body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
  const text = await response.body.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: kept as text, and the assertion on it says so.
  }
  return { status: response.statusCode, body: parsed };
}

describe('malformed DNS messages (the BIND fuzzing corpus)', () => {
  it('holds 300 packets', () => {
    expect(packets).toHaveLength(300);
  });

  it('over UDP: each packet is answered or dropped, and a canary after it is answered', async () => {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const received: Buffer[] = [];
    /** Responses to the corpus packets (everything that is not a canary's answer). */
    const others: Message[] = [];
    let waiter: (() => void) | undefined;
    socket.on('message', (datagram) => {
      received.push(datagram);
      waiter?.();
    });
    /** Resolves with the response to `id`, skipping others; rejects after PROMPT_MS. */
    const responseTo = (id: number): Promise<Message> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no response to ${id}`)), PROMPT_MS);
        const check = (): void => {
          for (const datagram of received.splice(0)) {
            const message = decodeMessage(datagram);
            if (message.id === id) {
              clearTimeout(timer);
              waiter = undefined;
              resolve(message);
              return;
            }
            others.push(message);
          }
        };
        waiter = check;
        check();
      });
    try {
      let id = 1;
      for (const { bytes } of packets) {
        if (bytes.length > MAX_UDP_DATAGRAM) continue;
        socket.send(bytes, dp.udp.port, '127.0.0.1');
        const canary = buildQuery(csiToName(PHONE), 'MAP', { id: 0x8000 | (id++ % 0x8000) });
        socket.send(encodeMessage(canary), dp.udp.port, '127.0.0.1');
        const answer = await responseTo(canary.id);
        expect(answer.rcode).toBe('NOERROR');
        expect(answer.answers.some((rr) => rr.type === 'MAP')).toBe(true);
      }
    } finally {
      socket.close();
    }
    // What the corpus drew is well-formed DNS (it decoded above), and never a server fault.
    expect(others.length).toBeGreaterThan(0);
    expect(others.filter((m) => m.rcode === 'SERVFAIL')).toEqual([]);
  });

  it('over TCP: each framed packet is answered, or the connection closed, and a new one is served', async () => {
    const canary = encodeMessage(buildQuery(csiToName(PHONE), 'MAP', { id: 0xbeef }));
    const rcodes = new Map<string, number>();
    for (const { file, bytes } of packets) {
      const socket = await tcpConnection();
      const messages = await new Promise<Buffer[]>((resolve) => {
        let pending = Buffer.alloc(0);
        const out: Buffer[] = [];
        const timer = setTimeout(() => finish(), PROMPT_MS);
        const finish = (): void => {
          clearTimeout(timer);
          socket.destroy();
          resolve(out);
        };
        socket.on('data', (chunk: Buffer) => {
          pending = Buffer.concat([pending, chunk]);
          while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
            const length = pending.readUInt16BE(0);
            out.push(pending.subarray(2, 2 + length));
            pending = pending.subarray(2 + length);
          }
          if (out.some((m) => m.readUInt16BE(0) === 0xbeef)) finish();
        });
        socket.once('close', finish);
        socket.on('error', () => undefined);
        socket.write(Buffer.concat([frame(bytes), frame(canary)]));
      });
      const decoded = messages.map((m) => decodeMessage(m));
      for (const m of decoded) rcodes.set(m.rcode, (rcodes.get(m.rcode) ?? 0) + 1);
      if (bytes.length >= HEADER_OCTETS) {
        // A frame long enough for a header keeps the connection: the canary is answered on it.
        expect(
          decoded.some((m) => m.id === 0xbeef && m.answers.length > 0),
          file,
        ).toBe(true);
      }
    }
    expect(rcodes.get('SERVFAIL')).toBeUndefined();
    await expectServing();
  });

  it('over DoH POST: each packet gets 200 with a DNS message or a 4xx, never a 5xx', async () => {
    const statuses = new Map<number, number>();
    for (const { file, bytes } of packets) {
      const response = await request(dp.dohUrl, {
        dispatcher: net.agent,
        method: 'POST',
        headers: { 'content-type': DNS_MESSAGE_MEDIA_TYPE, accept: DNS_MESSAGE_MEDIA_TYPE },
        body: bytes,
      });
      const body = Buffer.from(await response.body.arrayBuffer());
      statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
      expect(response.statusCode, file).toBeLessThan(500);
      if (response.statusCode === 200) {
        expect(decodeMessage(body).rcode, file).not.toBe('SERVFAIL');
      }
    }
    expect(statuses.get(200)).toBeGreaterThan(0);
    await expectServing();
  });

  it('logged no fault while answering them', () => {
    expect(logLines(dp.logs, ['error'])).toEqual([]);
  });
});

describe('broken TCP framing and slow DNS clients', () => {
  it('a length prefix larger than what follows does not hold up other clients', async () => {
    const hanging = await tcpConnection();
    hanging.on('error', () => undefined);
    // Announces 65535 octets, sends 100, and stays silent.
    hanging.write(Buffer.concat([Buffer.from([0xff, 0xff]), Buffer.alloc(100, 0x41)]));
    try {
      await expectServing();
    } finally {
      hanging.destroy();
    }
  });

  it('a whole frame of 65535 junk octets gets FORMERR, and the connection still answers', async () => {
    const socket = await tcpConnection();
    const junk = Buffer.alloc(65_535, 0x41);
    junk.writeUInt16BE(0x1234, 0); // the id, so the FORMERR can be matched
    junk[2] = 0; // QR clear: a query
    const canary = encodeMessage(buildQuery(csiToName(PHONE), 'MAP', { id: 0xbeef }));
    const ids = await new Promise<number[]>((resolve, reject) => {
      let pending = Buffer.alloc(0);
      const seen: number[] = [];
      const timer = setTimeout(() => reject(new Error(`only got ${seen.join(', ')}`)), PROMPT_MS);
      socket.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
          const message = decodeMessage(pending.subarray(2, 2 + pending.readUInt16BE(0)));
          pending = pending.subarray(2 + pending.readUInt16BE(0));
          seen.push(message.id);
          if (message.id === 0x1234) expect(message.rcode).toBe('FORMERR');
        }
        if (seen.length === 2) {
          clearTimeout(timer);
          resolve(seen);
        }
      });
      socket.write(Buffer.concat([frame(junk), frame(canary)]));
    });
    socket.destroy();
    expect(ids.sort()).toEqual([0x1234, 0xbeef]);
  });

  it('a length prefix below a DNS header closes that connection only', async () => {
    const socket = await tcpConnection();
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.write(Buffer.from([0x00, 0x05, 1, 2, 3, 4, 5]));
    await closed;
    await expectServing();
  });

  it('many slow TCP clients, each stuck inside a message, do not hold up other clients', async () => {
    const slow = await Promise.all(Array.from({ length: 32 }, () => tcpConnection('127.0.0.2')));
    for (const socket of slow) {
      socket.on('error', () => undefined);
      socket.write(Buffer.from([0x00])); // half of a length prefix
    }
    try {
      await expectServing();
    } finally {
      for (const socket of slow) socket.destroy();
    }
  });

  it('a client that sends queries and never reads the answers does not hold up other clients', async () => {
    const greedy = await tcpConnection();
    greedy.on('error', () => undefined);
    greedy.pause();
    const query = frame(encodeMessage(buildQuery(csiToName(PHONE), 'MAP', { dnssecOk: true })));
    // About 2,000 answers of ~600 octets: well past the server's unsent-octets bound.
    greedy.write(Buffer.concat(Array.from({ length: 2000 }, () => query)));
    try {
      await expectServing();
    } finally {
      greedy.destroy();
    }
  });
});

describe('slow HTTP clients', () => {
  const partialRequests = [
    ['headers that never end', 'POST /v1/prove HTTP/1.1\r\nHost: 127.0.0.1\r\n'],
    [
      'a body shorter than its Content-Length',
      'POST /v1/prove HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"csi":',
    ],
  ] as const;

  it.each(partialRequests)(
    'the registration API keeps serving while a client sends %s',
    async (_what, text) => {
      const slow = await Promise.all(Array.from({ length: 16 }, () => tlsConnection(apiPort())));
      for (const socket of slow) {
        socket.on('error', () => undefined);
        socket.write(text);
      }
      try {
        const started = performance.now();
        const response = await answerOf(apiOf(dp).client.prove('not a csi'));
        expect(performance.now() - started).toBeLessThan(PROMPT_MS);
        expect(response.status).toBe(400);
        expect(errorCode(response)).toBe('ERR_CSI_INVALID');
        await expectServing();
      } finally {
        for (const socket of slow) socket.destroy();
      }
    },
  );

  it.each([
    ['headers that never end', 'POST /dns-query HTTP/1.1\r\nHost: 127.0.0.1\r\n'],
    [
      'a body shorter than its Content-Length',
      `POST /dns-query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${DNS_MESSAGE_MEDIA_TYPE}\r\nContent-Length: 512\r\n\r\n\x00\x01`,
    ],
  ])('DoH keeps serving while HTTP/1.1 clients send %s', async (_what, text) => {
    const slow = await Promise.all(Array.from({ length: 16 }, () => tlsConnection(dp.dohPort)));
    for (const socket of slow) {
      socket.on('error', () => undefined);
      socket.write(text);
    }
    try {
      await expectServing();
    } finally {
      for (const socket of slow) socket.destroy();
    }
  });

  it('DoH keeps serving while HTTP/2 streams stall in the middle of their bodies', async () => {
    const session: ClientHttp2Session = connectHttp2(`https://127.0.0.1:${dp.dohPort}`, {
      ca: net.caPem,
    });
    session.on('error', () => undefined);
    const streams = Array.from({ length: 50 }, () => {
      const stream = session.request({
        ':method': 'POST',
        ':path': '/dns-query',
        'content-type': DNS_MESSAGE_MEDIA_TYPE,
        'content-length': '512',
      });
      stream.on('error', () => undefined);
      stream.write(Buffer.from([0x00, 0x01, 0x02]));
      return stream;
    });
    try {
      await expectServing();
    } finally {
      for (const stream of streams) stream.close();
      session.destroy();
    }
  });
});

describe('clients holding connections past their share (default limits)', () => {
  // What one client could do before connections were limited per client: 300 silent TCP
  // connections (cap 256) blocked all DNS over TCP; 1,100 half-open connections (cap 1,024)
  // left most DoH probes unserved; 600 slow connections to the registration API (cap 512) left
  // most registrations unserved. Attackers bind to other addresses of 127.0.0.0/8 (all loopback
  // on Linux), so the DP sees them as other clients than the probes from 127.0.0.1.
  const held: Socket[] = [];
  /** Connections opened at once by {@link flood}: well below the listen backlog (511). */
  const FLOOD_BATCH = 100;

  afterEach(() => {
    for (const socket of held.splice(0)) socket.destroy();
  });

  /**
   * Opens `count` connections from `from` to `port`; with `text`, each starts TLS (HTTP/1.1)
   * and sends it once the handshake is done, else it sends nothing (a half-open connection).
   * They go out in batches of {@link FLOOD_BATCH}, each batch once the listener has decided on
   * the one before (`stats`), so that the kernel's accept queue never overflows and every
   * connection reaches the listener at once rather than after SYN retries.
   */
  async function flood(
    port: number,
    from: string,
    count: number,
    stats: () => ConnectionStats,
    text?: string,
  ): Promise<void> {
    const start = decided(stats());
    for (let sent = 0; sent < count;) {
      const batch = Math.min(FLOOD_BATCH, count - sent);
      for (let i = 0; i < batch; i++) {
        const tcp = connectTcp({ host: '127.0.0.1', port, localAddress: from });
        tcp.on('error', () => undefined);
        held.push(tcp);
        if (text === undefined) continue;
        // node's tls.connect takes no local address: TLS over the socket bound to `from`.
        const tls = connectTls(
          { socket: tcp, host: '127.0.0.1', ca: net.caPem, ALPNProtocols: ['http/1.1'] },
          () => tls.write(text),
        );
        tls.on('error', () => undefined);
        held.push(tls);
      }
      sent += batch;
      await settled(() => decided(stats()) - start >= sent);
    }
  }

  /** Polls every 10 ms, for at most 10 s. */
  async function settled(condition: () => boolean): Promise<void> {
    for (let i = 0; i < 1000 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(condition()).toBe(true);
  }

  /** Every connection the listener has admitted or refused since it started. */
  const decided = (stats: ConnectionStats): number =>
    stats.admitted + stats.refused.client_limit + stats.refused.capacity;

  const tcpStats = (): ConnectionStats =>
    (dp.provider.dns?.tcp as NonNullable<DnsServer['tcp']>).connectionStats();
  const dohStats = (): ConnectionStats =>
    (dp.provider.dns?.doh as NonNullable<DnsServer['doh']>).connectionStats();
  const apiStats = (): ConnectionStats =>
    (dp.provider.api as NonNullable<RunningDp['api']>).connectionStats();

  /** `count` MAP queries, each on a new connection of its own (a new client's first query). */
  async function freshProbes(transport: 'tcp' | 'doh', count: number): Promise<number> {
    let served = 0;
    for (let i = 0; i < count; i++) {
      const client = transport === 'doh' ? createDohClient({ ca: net.caPem }) : undefined;
      try {
        const query = buildQuery(csiToName(PHONE), 'MAP', { id: transport === 'doh' ? 0 : i });
        const response =
          client === undefined
            ? await queryTcp(dp.tcp, query, { timeoutMs: PROMPT_MS })
            : await client.query(dp.dohUrl, query, { timeoutMs: PROMPT_MS });
        if (response.answers.some((rr) => rr.type === 'MAP')) served++;
      } finally {
        await client?.close();
      }
    }
    return served;
  }

  it('300 silent TCP connections of one client leave DNS over TCP serving everyone else', async () => {
    const before = tcpStats().refused.client_limit;
    await flood(dp.tcp.port, '127.0.0.2', 300, tcpStats);
    // All but the client's share closed at once.
    expect(tcpStats().refused.client_limit - before).toBe(300 - DEFAULT_TCP_CONNECTIONS_PER_CLIENT);
    expect(await freshProbes('tcp', 10)).toBe(10);
    await expectServing();
  });

  it('ten clients at their TCP share, past the cap together, leave DNS over TCP serving everyone else', async () => {
    // 10 × 32 = 320 connections against a cap of 256: the newest take the oldest idle places.
    for (let n = 2; n < 12; n++) {
      await flood(dp.tcp.port, `127.0.0.${n}`, DEFAULT_TCP_CONNECTIONS_PER_CLIENT, tcpStats);
    }
    expect(tcpStats().open).toBeLessThanOrEqual(DEFAULT_TCP_MAX_CONNECTIONS);
    expect(await freshProbes('tcp', 10)).toBe(10);
    expect(tcpStats().open).toBeLessThanOrEqual(DEFAULT_TCP_MAX_CONNECTIONS);
  });

  it('1,100 half-open DoH connections of one client leave DoH serving everyone else', async () => {
    const before = dohStats().refused.client_limit;
    await flood(dp.dohPort, '127.0.0.2', 1100, dohStats);
    expect(dohStats().refused.client_limit - before).toBe(
      1100 - DEFAULT_DOH_CONNECTIONS_PER_CLIENT,
    );
    expect(await freshProbes('doh', 10)).toBe(10);
    await expectServing();
  });

  it('600 slow connections of one client to the registration API leave it serving everyone else', async () => {
    const before = apiStats().refused.client_limit;
    await flood(
      apiPort(),
      '127.0.0.2',
      600,
      apiStats,
      'POST /v1/prove HTTP/1.1\r\nHost: 127.0.0.1\r\n',
    );
    expect(apiStats().refused.client_limit - before).toBe(600 - API_CONNECTIONS_PER_CLIENT);
    for (let i = 0; i < 10; i++) {
      const response = await answerOf(apiOf(dp).client.prove('not a csi'));
      expect(response.status).toBe(400);
      expect(errorCode(response)).toBe('ERR_CSI_INVALID');
    }
  });

  it('counts the refusals in the metrics by listener and reason, without client addresses', async () => {
    const floods: Array<[number, number, () => ConnectionStats]> = [
      [dp.tcp.port, DEFAULT_TCP_CONNECTIONS_PER_CLIENT, tcpStats],
      [dp.dohPort, DEFAULT_DOH_CONNECTIONS_PER_CLIENT, dohStats],
      [apiPort(), API_CONNECTIONS_PER_CLIENT, apiStats],
    ];
    for (const [port, share, stats] of floods) {
      const before = stats().refused.client_limit;
      await flood(port, '127.0.0.20', share + 3, stats);
      expect(stats().refused.client_limit - before).toBe(3);
    }
    const response = await request(`${dp.adminUrl}/metrics`);
    const text = await response.body.text();
    for (const listener of ['tcp', 'doh', 'api']) {
      expect(text).toMatch(
        new RegExp(
          `^authoritative_connections_refused_total\\{listener="${listener}",reason="client_limit"\\} [1-9]\\d*$`,
          'm',
        ),
      );
    }
    expect(text).toMatch(
      /^authoritative_connections_closed_total\{listener="tcp",reason="evicted"\} [1-9]\d*$/m,
    );
    expect(text).not.toMatch(/127\.0\.0\./);
  });
});

describe('junk sent to the registration API', () => {
  const ROUTES = [
    '/v1/prove',
    '/v1/confirm',
    '/v1/mappings',
    '/v1/maprefs',
    '/v1/removals',
    '/v1/revocations',
  ] as const;
  const FIELDS = ['csi', 'code', 'key', 'mapping', 'request', 'removal', 'revocation'];
  const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

  /** Bodies that are not a valid request to any route. */
  const JUNK: ReadonlyArray<readonly [string, string | Uint8Array]> = [
    ['an empty body', ''],
    ['a truncated object', '{"csi":'],
    ['null', 'null'],
    ['a number', '1e400'],
    ['a string', '"tel:+442079460018"'],
    ['an array', '[]'],
    ['an empty object', '{}'],
    ['a prototype key', '{"__proto__":{"admin":true}}'],
    ['a constructor key', '{"constructor":{"prototype":{"x":1}}}'],
    ['deep nesting', `${'['.repeat(20_000)}${']'.repeat(20_000)}`],
    ['invalid UTF-8', Uint8Array.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
    ['a NUL in a string', '{"csi":"tel:+44\\u00002079460018"}'],
    ['a body over 64 KiB', JSON.stringify({ csi: 'x'.repeat(70_000) })],
    ...FIELDS.flatMap((field): Array<readonly [string, string]> => [
      [`${field} as a number`, JSON.stringify({ [field]: 7 })],
      [`${field} as an object`, JSON.stringify({ [field]: { a: 1 } })],
      [`${field} as base64 with padding`, JSON.stringify({ [field]: 'AAAA==' })],
      [
        `${field} as random bytes`,
        JSON.stringify({ [field]: b64(Uint8Array.from([0xa1, 0x61, 0x76, 0x02])) }),
      ],
      [`${field} as deep CBOR`, JSON.stringify({ [field]: b64(new Uint8Array(4000).fill(0x81)) })],
      [`${field} twice`, `{"${field}":"AAAA","${field}":"BBBB"}`],
    ]),
    [
      'every field of confirm, with a short key',
      JSON.stringify({ csi: PHONE, code: '000000', key: b64(new Uint8Array(31)) }),
    ],
    ['an empty CBOR map', JSON.stringify({ mapping: b64(new Uint8Array([0xa0])) })],
  ];

  it('answers each junk body on each route with a JSON 4xx error carrying a stable code', async () => {
    const before = { zone: zoneSnapshot(), serial: dp.provider.store.zoneInfo(dp.zone)?.serial };
    const codes = new Set<string>();
    for (const route of ROUTES) {
      for (const [what, body] of JUNK) {
        const response = await postRaw(route, body);
        const label = `${route} with ${what}: ${JSON.stringify(response.body)}`;
        expect(response.status, label).toBeGreaterThanOrEqual(400);
        expect(response.status, label).toBeLessThan(500);
        const code = errorCode(response);
        expect(code, label).toMatch(/^ERR_[A-Z_]+$/);
        codes.add(code ?? '');
      }
    }
    expect([...codes].sort()).toEqual(
      expect.arrayContaining(['ERR_BAD_JSON', 'ERR_BAD_REQUEST', 'ERR_BODY_TOO_LARGE']),
    );
    expect(zoneSnapshot()).toBe(before.zone);
    expect(dp.provider.store.zoneInfo(dp.zone)?.serial).toBe(before.serial);
    await expectServing();
  });

  it('refuses other media types and methods on every route, and unknown routes', async () => {
    for (const route of ROUTES) {
      const text = await postRaw(route, '{"csi":"x"}', 'text/plain');
      expect(text.status, route).toBe(415);
      const get = await request(`${dp.api?.url ?? ''}${route}`, { dispatcher: net.agent });
      await get.body.dump();
      expect(get.statusCode, route).toBe(405);
    }
    const unknown = await postRaw('/v1/admin', {});
    expect(unknown.status).toBe(404);
    expect(errorCode(unknown)).toBe('ERR_ROUTE_NOT_FOUND');
  });

  it('logged no fault while refusing them', () => {
    expect(logLines(dp.logs, ['error'])).toEqual([]);
  });
});
