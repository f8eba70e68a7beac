import { request as httpsRequest } from 'node:https';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { connect as http2Connect } from 'node:http2';
import { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createLocalCa,
  createLogger,
  issueServerCertificate,
  metricsText,
  parseCsi,
  type LocalCa,
} from '@mimi-discovery/common';
import {
  createResolverMetrics,
  startJsonApi,
  type DiscoveryResult,
  type JsonApi,
  type Resolver,
  type ResolverMetrics,
} from '../src/index.js';
import {
  foundResult,
  invalidCsiResult,
  resolverDouble,
} from '../../../test/helpers/resolver-double.js';

// The JSON API in front of a test double of the resolver: results come from a table by
// canonical CSI, so every answer the API gives can be checked exactly.

const ALICE = 'tel:+442079460018';
const BOB = 'mailto:bob@example.com';
const CAROL = 'tel:+442079460019';
const BOGUS = 'tel:+442079460099';
const FAULT = 'tel:+442079460098';

const FOUND = foundResult(ALICE);
const RESULTS: ReadonlyMap<string, DiscoveryResult> = new Map([
  [ALICE, FOUND],
  [BOB, { csi: BOB, status: 'empty', msps: [], mappings: [], ttl: 600 }],
  [CAROL, { csi: CAROL, status: 'none', msps: [], mappings: [], ttl: 120 }],
  [
    BOGUS,
    {
      csi: BOGUS,
      status: 'error',
      msps: [],
      mappings: [],
      ttl: 0,
      error: { reason: 'bogus', detail: 'no DS matches the DNSKEY of 4.4.e164.mimi.arpa' },
    },
  ],
]);

/**
 * A resolver that looks results up in {@link RESULTS}; it records what it was asked, as typed
 * (`asked`) or parsed (`parsed`). It has no `discoverManyJson`, so the API serializes its
 * results itself.
 */
function fakeResolver(): Omit<Resolver, 'discoverManyJson'> & {
  asked: string[][];
  parsed: string[];
} {
  const asked: string[][] = [];
  const parsed: string[] = [];
  const discover = async (input: string): Promise<DiscoveryResult> => {
    let csi: string;
    try {
      csi = parseCsi(input);
    } catch (error) {
      return invalidCsiResult(input, error);
    }
    if (csi === FAULT) throw new Error('resolver fault');
    return RESULTS.get(csi) ?? { csi, status: 'none', msps: [], mappings: [], ttl: 3600 };
  };
  return resolverDouble({
    asked,
    parsed,
    async discover(input) {
      asked.push([input]);
      return discover(input);
    },
    async discoverCsi(csi) {
      parsed.push(csi);
      return discover(csi);
    },
    async discoverMany(inputs) {
      asked.push([...inputs]);
      // Later CSIs finish first, so the order of the results is the API's doing.
      return Promise.all(
        inputs.map(async (input, i) => {
          await new Promise((resolve) => setTimeout(resolve, (inputs.length - i) * 2));
          return discover(input);
        }),
      );
    },
  });
}

const MAX_BATCH = 5;
const MAX_BODY = 2048;
const logs: string[] = [];
let ca: LocalCa;
let api: JsonApi;
let resolver: ReturnType<typeof fakeResolver>;
let metrics: ResolverMetrics;
let h2: Agent;
let h1: Agent;

beforeAll(async () => {
  ca = await createLocalCa();
  const leaf = await issueServerCertificate(ca, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  resolver = fakeResolver();
  metrics = createResolverMetrics(resolver);
  api = await startJsonApi(
    {
      port: 0,
      cert: leaf.certPem,
      key: leaf.keyPem,
      maxBatch: MAX_BATCH,
      maxBodyOctets: MAX_BODY,
      requestTimeoutMs: 300,
    },
    resolver,
    {
      metrics,
      log: createLogger('resolver', { level: 'debug', write: (line) => logs.push(line) }),
    },
  );
  h2 = new Agent({ allowH2: true, connect: { ca: ca.certPem } });
  h1 = new Agent({ allowH2: false, connect: { ca: ca.certPem } });
});

afterAll(async () => {
  await Promise.all([h2?.close(), h1?.close()]);
  await api?.close();
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: unknown;
}

async function call(
  path: string,
  options: {
    method?: Dispatcher.HttpMethod;
    body?: string;
    contentType?: string;
    agent?: Agent;
  } = {},
): Promise<Reply> {
  const response = await request(`${api.url}${path}`, {
    method: options.method ?? 'GET',
    dispatcher: options.agent ?? h2,
    ...(options.body === undefined ? {} : { body: options.body }),
    headers: options.contentType === undefined ? {} : { 'content-type': options.contentType },
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, json: JSON.parse(text) };
}

const post = (body: unknown, contentType = 'application/json'): Promise<Reply> =>
  call('/v1/discover', {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    contentType,
  });

describe('GET /v1/discover', () => {
  it('answers one CSI as typed with its result, cacheable for its TTL', async () => {
    const reply = await call(`/v1/discover?csi=${encodeURIComponent('+44 (0)20 7946 0018')}`);
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(reply.headers['cache-control']).toBe('max-age=300');
    expect(reply.json).toEqual(FOUND);
  });

  it.each([
    ['a literal leading plus', '?csi=+442079460018'],
    ['form encoding', '?csi=%2B44+20+7946+0018'],
    ['a leading plus and encoded spaces', '?csi=+44%2020%207946%200018'],
  ])('reads the CSI with %s', async (_what, query) => {
    const reply = await call(`/v1/discover${query}`);
    expect(reply.status).toBe(200);
    expect((reply.json as DiscoveryResult).csi).toBe(ALICE);
  });

  it('parses the CSI once, where it enters, and hands the resolver the CSI it parsed', async () => {
    const asked = resolver.asked.length;
    const reply = await call(`/v1/discover?csi=${encodeURIComponent('+44 (0)20 7946 0018')}`);
    expect(reply.status).toBe(200);
    expect(resolver.parsed.at(-1)).toBe(ALICE);
    expect(resolver.asked.length).toBe(asked);
  });

  it('answers over HTTP/1.1 too', async () => {
    const reply = await call(`/v1/discover?csi=${encodeURIComponent(BOB)}`, { agent: h1 });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ csi: BOB, status: 'empty', msps: [], mappings: [], ttl: 600 });
  });

  it('negotiates HTTP/2 by ALPN', async () => {
    const session = http2Connect(api.url, { ca: ca.certPem });
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>(
        (resolve, reject) => {
          const stream = session.request({ ':path': '/v1/discover?csi=bob@example.com' });
          let status = 0;
          let body = '';
          stream.on('response', (headers) => (status = Number(headers[':status'])));
          stream.setEncoding('utf8');
          stream.on('data', (chunk: string) => (body += chunk));
          stream.on('end', () => resolve({ status, body }));
          stream.on('error', reject);
        },
      );
      expect(status).toBe(200);
      expect(JSON.parse(body)).toMatchObject({ csi: BOB, status: 'empty' });
    } finally {
      session.close();
    }
  });

  it('reports a failed resolution as an error result, not as a request error', async () => {
    const reply = await call(`/v1/discover?csi=${encodeURIComponent(BOGUS)}`);
    expect(reply.status).toBe(200);
    expect(reply.headers['cache-control']).toBe('max-age=0');
    expect(reply.json).toEqual(RESULTS.get(BOGUS));
  });

  it('refuses a CSI that is not one with 400 ERR_CSI_INVALID and the parser code', async () => {
    const reply = await call('/v1/discover?csi=%2B0123');
    expect(reply.status).toBe(400);
    expect(reply.headers['cache-control']).toBe('no-store');
    expect(reply.json).toEqual({
      error: {
        code: 'ERR_CSI_INVALID',
        message: expect.stringMatching(/country/) as unknown,
        detail: 'ERR_CSI_PHONE_INVALID',
      },
    });
  });

  it.each([
    ['no query', '/v1/discover', 'missing query parameter "csi"'],
    ['another parameter', '/v1/discover?csi=%2B442079460018&x=1', 'unknown query parameter "x"'],
    [
      'csi twice',
      '/v1/discover?csi=%2B442079460018&csi=bob@example.com',
      'the query parameter "csi" is given more than once',
    ],
    ['bad percent-encoding', '/v1/discover?csi=%E0%A4%A', 'the csi is not valid percent-encoding'],
  ])('refuses %s with 400 ERR_BAD_REQUEST', async (_what, path, message) => {
    const reply = await call(path);
    expect(reply.status).toBe(400);
    expect(reply.json).toMatchObject({ error: { code: 'ERR_BAD_REQUEST', message } });
  });

  it('answers an empty csi as an invalid CSI', async () => {
    const reply = await call('/v1/discover?csi=');
    expect(reply.status).toBe(400);
    expect(reply.json).toMatchObject({
      error: { code: 'ERR_CSI_INVALID', detail: 'ERR_CSI_EMPTY' },
    });
  });
});

describe('POST /v1/discover', () => {
  it('answers every CSI in the order given, an invalid one as a per-item error', async () => {
    const csis = ['bob@example.com', '+44 20 7946 0019', 'not a csi', '+442079460018', BOGUS];
    const reply = await post({ csis });
    expect(reply.status).toBe(200);
    const results = (reply.json as { results: DiscoveryResult[] }).results;
    expect(results.map((r) => [r.csi, r.status])).toEqual([
      [BOB, 'empty'],
      [CAROL, 'none'],
      ['not a csi', 'error'],
      [ALICE, 'found'],
      [BOGUS, 'error'],
    ]);
    expect(results[2]?.error?.reason).toBe('invalid-csi');
    expect(results[3]).toEqual(FOUND);
    expect(reply.headers['cache-control']).toBe('max-age=0');
    expect(resolver.asked.at(-1)).toEqual(csis);
  });

  it('gives a batch the smallest TTL of its results as its lifetime', async () => {
    const reply = await post({ csis: [ALICE, BOB, CAROL] });
    expect(reply.headers['cache-control']).toBe('max-age=120');
  });

  it('answers an empty batch with no results', async () => {
    const reply = await post({ csis: [] });
    expect(reply).toMatchObject({ status: 200, json: { results: [] } });
    expect(reply.headers['cache-control']).toBe('max-age=0');
  });

  it('accepts a charset parameter of utf-8', async () => {
    const reply = await post({ csis: [ALICE] }, 'application/json; charset=UTF-8');
    expect(reply.status).toBe(200);
  });

  it.each<[string, unknown, string, number, string, string]>([
    [
      'a form body',
      'csis=x',
      'application/x-www-form-urlencoded',
      415,
      'ERR_UNSUPPORTED_MEDIA_TYPE',
      'the request body must be application/json',
    ],
    [
      'another charset',
      '{"csis":[]}',
      'application/json; charset=latin1',
      415,
      'ERR_UNSUPPORTED_MEDIA_TYPE',
      'the request body must be application/json',
    ],
    [
      'bad JSON',
      '{"csis": [',
      'application/json',
      400,
      'ERR_BAD_JSON',
      'the request body is not valid JSON',
    ],
    [
      'a list',
      '["+442079460018"]',
      'application/json',
      400,
      'ERR_BAD_REQUEST',
      'the body must be a JSON object {"csis": [...]}',
    ],
    ['no csis', {}, 'application/json', 400, 'ERR_BAD_REQUEST', 'missing field "csis"'],
    [
      'csis not a list',
      { csis: '+442079460018' },
      'application/json',
      400,
      'ERR_BAD_REQUEST',
      'field "csis" must be a list of strings',
    ],
    [
      'a number among the CSIs',
      { csis: [ALICE, 442079460018] },
      'application/json',
      400,
      'ERR_BAD_REQUEST',
      'csis[1] must be a string',
    ],
    [
      'an unknown field',
      { csis: [], dnssec: true },
      'application/json',
      400,
      'ERR_BAD_REQUEST',
      'unknown field "dnssec"',
    ],
    [
      'too many CSIs',
      { csis: Array.from({ length: MAX_BATCH + 1 }, () => ALICE) },
      'application/json',
      413,
      'ERR_BATCH_TOO_LARGE',
      `${MAX_BATCH + 1} CSIs in one request; at most ${MAX_BATCH} are accepted`,
    ],
    [
      'a body too large',
      { csis: ['x'.repeat(MAX_BODY)] },
      'application/json',
      413,
      'ERR_BODY_TOO_LARGE',
      `the request body is larger than ${MAX_BODY} octets`,
    ],
  ])('refuses %s', async (_what, body, contentType, status, code, message) => {
    const asked = resolver.asked.length;
    const reply = await post(body, contentType);
    expect(reply.status).toBe(status);
    expect(reply.json).toMatchObject({ error: { code, message } });
    expect(reply.headers['cache-control']).toBe('no-store');
    expect(resolver.asked.length).toBe(asked);
  });

  it('refuses a body too large that announces no length, while reading it', async () => {
    const chunks = async function* (): AsyncGenerator<Buffer> {
      yield Buffer.from('{"csis": ["');
      yield Buffer.alloc(MAX_BODY, 0x61);
      yield Buffer.from('"]}');
    };
    const response = await request(`${api.url}/v1/discover`, {
      method: 'POST',
      dispatcher: h1,
      headers: { 'content-type': 'application/json' },
      // A stream of unknown length: undici sends it chunked, without content-length.
      body: Readable.from(chunks()),
    });
    expect(response.statusCode).toBe(413);
    expect(response.headers['transfer-encoding']).toBeUndefined();
    expect(await response.body.json()).toMatchObject({ error: { code: 'ERR_BODY_TOO_LARGE' } });
  });

  it('answers 408 to a body that does not arrive in time', async () => {
    const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpsRequest(`${api.url}/v1/discover`, {
        method: 'POST',
        ca: ca.certPem,
        headers: { 'content-type': 'application/json', 'content-length': '100' },
      });
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.write('{"csis": [');
    });
    expect(reply.status).toBe(408);
    expect(JSON.parse(reply.body)).toMatchObject({ error: { code: 'ERR_TIMEOUT' } });
  });
});

describe('routes and methods', () => {
  it('answers another path with 404', async () => {
    const reply = await call('/v1/lookup?csi=x');
    expect(reply.status).toBe(404);
    expect(reply.json).toMatchObject({ error: { code: 'ERR_NOT_FOUND' } });
  });

  it.each<Dispatcher.HttpMethod>(['PUT', 'DELETE', 'PATCH'])(
    'answers %s with 405 and the methods allowed',
    async (method) => {
      const reply = await call('/v1/discover', { method });
      expect(reply.status).toBe(405);
      expect(reply.headers['allow']).toBe('GET, POST');
      expect(reply.json).toMatchObject({ error: { code: 'ERR_METHOD_NOT_ALLOWED' } });
    },
  );

  it('answers a fault of the resolver with 500, and logs its class', async () => {
    const reply = await call(`/v1/discover?csi=${encodeURIComponent(FAULT)}`);
    expect(reply.status).toBe(500);
    expect(reply.json).toEqual({ error: { code: 'ERR_INTERNAL', message: 'internal error' } });
    const line = logs.find((l) => l.includes('"event":"request-failed"'));
    expect(line).toContain('"fault":"Error"');
    // The message of a fault may quote the CSI being resolved: only its class is logged.
    expect(line).not.toContain('resolver fault');
  });
});

describe('metrics and privacy', () => {
  it('counts discoveries by status and requests by HTTP status', async () => {
    const text = await metricsText(metrics.registry);
    expect(text).toMatch(/^resolver_discoveries_total\{status="found"\} [1-9]\d*$/m);
    expect(text).toMatch(/^resolver_discoveries_total\{status="error"\} [1-9]\d*$/m);
    expect(text).toMatch(/^resolver_api_requests_total\{status="400"\} [1-9]\d*$/m);
    expect(text).toMatch(/^resolver_resolution_duration_seconds_count\{kind="batch"\} [1-9]\d*$/m);
    expect(text).toMatch(
      /^resolver_resolution_duration_seconds_count\{kind="discover"\} [1-9]\d*$/m,
    );
  });

  it('logs counts, never a CSI or a client address', () => {
    const requests = logs.filter((l) => l.includes('"event":"request"'));
    expect(requests.length).toBeGreaterThan(10);
    expect(requests.some((l) => /"count":5\b/.test(l))).toBe(true);
    for (const line of logs) {
      expect(line).not.toMatch(/442079460|bob@|example\.com|not a csi/);
      expect(line).not.toMatch(/remoteAddress|"client"/);
    }
  });
});

describe('a resolver that writes its own JSON', () => {
  it('sends the JSON text of each result as the resolver wrote it, in order', async () => {
    const leaf = await issueServerCertificate(ca, {
      hostnames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    const inner = fakeResolver();
    const written: string[] = [];
    const own = await startJsonApi(
      { port: 0, cert: leaf.certPem, key: leaf.keyPem },
      {
        ...inner,
        async discoverManyJson(inputs) {
          const results = await inner.discoverMany(inputs);
          // Text a serializer of its own would write: another order of the same fields.
          const json = results.map((r) =>
            JSON.stringify({ ttl: r.ttl, csi: r.csi, status: r.status, mappings: [] }),
          );
          written.push(...json);
          return { results, json };
        },
      },
    );
    try {
      const response = await request(`${own.url}/v1/discover`, {
        method: 'POST',
        dispatcher: h2,
        body: JSON.stringify({ csis: [ALICE, 'not a csi', CAROL] }),
        headers: { 'content-type': 'application/json' },
      });
      expect(response.statusCode).toBe(200);
      expect(await response.body.text()).toBe(`{"results":[${written.join(',')}]}\n`);
      expect(written).toHaveLength(3);
    } finally {
      await own.close();
    }
  });
});

/** The HTTP/2 error code CANCEL (RFC 9113 §7): the stream is no longer needed. */
const NGHTTP2_CANCEL = 0x8;

describe('connections per client', () => {
  // Attackers bind their sockets to other addresses of 127.0.0.0/8 (all of it is loopback on
  // Linux), so the API sees them as other clients than the one at 127.0.0.1.
  const ATTACKERS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7'];
  let limited: JsonApi;
  let limitedMetrics: ResolverMetrics;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    const leaf = await issueServerCertificate(ca, {
      hostnames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    limitedMetrics = createResolverMetrics(resolver);
    limited = await startJsonApi(
      {
        port: 0,
        cert: leaf.certPem,
        key: leaf.keyPem,
        maxConnections: 16,
        connectionsPerClient: 4,
        requestTimeoutMs: 30_000,
        idleTimeoutMs: 30_000,
      },
      resolver,
      { metrics: limitedMetrics },
    );
    limitedMetrics.watchConnections('api', limited);
  });

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await settled(() => limited.connectionStats().open === 0);
  });

  afterAll(async () => {
    await limited?.close();
  });

  /** A TCP connection from `from` that never starts TLS: it holds a place until a deadline. */
  const halfOpen = (from: string): { isClosed(): boolean } => {
    const socket = connectTcp({ host: '127.0.0.1', port: limited.port, localAddress: from });
    sockets.push(socket);
    socket.on('error', () => undefined);
    let closed = false;
    socket.once('close', () => (closed = true));
    return { isClosed: () => closed };
  };

  /** Every connection the API has decided on since it started. */
  const decided = (): number => {
    const s = limited.connectionStats();
    return s.admitted + s.refused.client_limit + s.refused.capacity;
  };

  /** Polls every 10 ms, for at most 5 s. */
  async function settled(condition: () => boolean): Promise<void> {
    for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(condition()).toBe(true);
  }

  /** One GET on a connection of its own, from 127.0.0.1. */
  async function discover(): Promise<number> {
    const agent = new Agent({ allowH2: true, connect: { ca: ca.certPem } });
    try {
      const response = await request(
        `${limited.url}/v1/discover?csi=${encodeURIComponent(ALICE)}`,
        {
          dispatcher: agent,
        },
      );
      await response.body.text();
      return response.statusCode;
    } finally {
      await agent.close();
    }
  }

  it('closes the connections of one client past its share at once, and answers another client', async () => {
    const before = decided();
    const held = Array.from({ length: 10 }, () => halfOpen('127.0.0.2'));
    await settled(() => decided() - before === 10);
    await settled(() => held.filter((c) => c.isClosed()).length === 6);
    expect(limited.connectionStats()).toMatchObject({ open: 4, refused: { client_limit: 6 } });
    expect(await discover()).toBe(200);
    // Counted by listener and reason, never by client.
    const text = await metricsText(limitedMetrics.registry);
    expect(text).toMatch(
      /^resolver_connections_refused_total\{listener="api",reason="client_limit"\} 6$/m,
    );
    expect(text).not.toMatch(/127\.0\.0\./);
  });

  it('answers a client while attackers whose shares add up past the cap hold half-open connections', async () => {
    const before = decided();
    for (const from of ATTACKERS) for (let i = 0; i < 4; i++) halfOpen(from);
    await settled(() => decided() - before === 24);
    expect(limited.connectionStats().open).toBe(16);
    expect(await discover()).toBe(200);
    expect(limited.connectionStats().open).toBeLessThanOrEqual(16);
    const text = await metricsText(limitedMetrics.registry);
    expect(text).toMatch(
      /^resolver_connections_closed_total\{listener="api",reason="evicted"\} \d+$/m,
    );
  });

  it.each([
    ['HTTP/2', true],
    ['HTTP/1.1', false],
  ])(
    'keeps an %s connection busy with a slow resolution past the idle timeout',
    async (_v, allowH2) => {
      const leaf = await issueServerCertificate(ca, {
        hostnames: ['localhost'],
        ipAddresses: ['127.0.0.1'],
      });
      // Slower than the idle timeout: only a connection counted busy survives it.
      const slow = {
        discover: async (input: string): Promise<DiscoveryResult> => {
          await new Promise((r) => setTimeout(r, 900));
          return resolver.discover(input);
        },
        discoverMany: (inputs: readonly string[]) => resolver.discoverMany(inputs),
      };
      const busy = await startJsonApi(
        {
          port: 0,
          cert: leaf.certPem,
          key: leaf.keyPem,
          requestTimeoutMs: 300,
          idleTimeoutMs: 300,
        },
        slow,
      );
      const agent = new Agent({ allowH2, connect: { ca: ca.certPem } });
      try {
        const response = await request(`${busy.url}/v1/discover?csi=${encodeURIComponent(ALICE)}`, {
          dispatcher: agent,
        });
        expect(response.statusCode).toBe(200);
        expect(await response.body.json()).toEqual(FOUND);
      } finally {
        await agent.close();
        await busy.close();
      }
    },
  );

  it('cuts an HTTP/2 exchange whose client does not take its response', async () => {
    const leaf = await issueServerCertificate(ca, {
      hostnames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    const api = await startJsonApi(
      { port: 0, cert: leaf.certPem, key: leaf.keyPem, requestTimeoutMs: 500 },
      resolver,
    );
    // A flow-control window of zero: the response headers go out, its DATA never can.
    const session = http2Connect(api.url, {
      ca: ca.certPem,
      settings: { initialWindowSize: 0 },
    });
    session.on('error', () => undefined);
    const pinger = setInterval(() => {
      if (!session.destroyed) session.ping(() => undefined);
    }, 100);
    try {
      const started = performance.now();
      const stream = session.request({ ':path': `/v1/discover?csi=${encodeURIComponent(ALICE)}` });
      stream.on('error', () => undefined);
      const closed = await new Promise<{ after: number; code: number }>((resolve) =>
        stream.once('close', () =>
          resolve({ after: performance.now() - started, code: stream.rstCode }),
        ),
      );
      expect(closed.code).toBe(NGHTTP2_CANCEL);
      expect(session.destroyed).toBe(false);
      expect(closed.after).toBeGreaterThanOrEqual(450);
      expect(closed.after).toBeLessThan(1500);
    } finally {
      clearInterval(pinger);
      session.destroy();
      await api.close();
    }
  });

  it('closes an HTTP/2 session without streams at the idle timeout, although it keeps sending PINGs', async () => {
    const leaf = await issueServerCertificate(ca, {
      hostnames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    const idle = await startJsonApi(
      { port: 0, cert: leaf.certPem, key: leaf.keyPem, requestTimeoutMs: 5000, idleTimeoutMs: 600 },
      resolver,
    );
    // Bound to 127.0.0.2 underneath: node's TLS and HTTP/2 clients take no local address.
    const session = http2Connect(idle.url, {
      createConnection: () => {
        const tcp = connectTcp({ host: '127.0.0.1', port: idle.port, localAddress: '127.0.0.2' });
        tcp.on('error', () => undefined);
        return connectTls({
          socket: tcp,
          host: '127.0.0.1',
          ca: ca.certPem,
          ALPNProtocols: ['h2'],
        });
      },
    });
    session.on('error', () => undefined);
    try {
      const closedAt = new Promise<number>((resolve) =>
        session.once('close', () => resolve(performance.now())),
      );
      const stream = session.request({ ':path': `/v1/discover?csi=${encodeURIComponent(ALICE)}` });
      stream.resume();
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
        await new Promise((r) => setTimeout(r, 100));
      }
      const idleFor = (await closedAt) - idleFrom;
      expect(pings).toBeGreaterThanOrEqual(3);
      expect(idleFor).toBeGreaterThanOrEqual(500);
      expect(idleFor).toBeLessThan(2500);
      expect(idle.connectionStats().closed.idle_timeout).toBe(1);
    } finally {
      session.destroy();
      await idle.close();
    }
  });
});
