import {
  connect as connectHttp2,
  constants as http2Constants,
  type ClientHttp2Session,
} from 'node:http2';
import { connect as connectTcp, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { connect as connectTls } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_CONNECTIONS_PER_CLIENT,
  JSON_BODY_ERRORS,
  MimiError,
  createLocalCa,
  createMetricsRegistry,
  deadlineCheckIntervalMs,
  issueServerCertificate,
  jsonErrorBody,
  readJsonBody,
  sendJson,
  startAdminServer,
  startHttpServer,
  ListenError,
  type AdminServer,
  type ConnectionScheduler,
  type HttpHandlers,
  type HttpServer,
  type HttpServerConfig,
  type HttpServerComponents,
  type JsonBodyErrorCode,
  type JsonBodyLimits,
  type ResponseOptions,
} from '../src/index.js';

// The HTTP server scaffold on 127.0.0.1, with a small JSON echo server on top: POST bodies are
// read by `readJsonBody` and echoed, refusals are answered in the one JSON error shape. Hostile
// clients bind their sockets to other addresses of 127.0.0.0/8 (Linux routes all of it to the
// loopback interface), so the server sees them as other clients than 127.0.0.1.

/** Deadlines of the echo server, each a distinct value so the manual timers can tell them apart. */
const BODY_TIMEOUT_MS = 4321;
const DELIVERY_TIMEOUT_MS = 5432;
const HEADERS_TIMEOUT_MS = 1111;
const MAX_BODY_OCTETS = 1024;

/** Timers that fire only when the test says so, told apart by their duration. */
function manualTimers(): {
  schedule: ConnectionScheduler;
  pending(ms: number): number;
  fire(ms: number): void;
} {
  const timers: Array<{ ms: number; fn: () => void; live: boolean }> = [];
  return {
    schedule(ms, fn) {
      const timer = { ms, fn, live: true };
      timers.push(timer);
      return () => {
        timer.live = false;
      };
    },
    pending: (ms) => timers.filter((t) => t.live && t.ms === ms).length,
    fire(ms) {
      for (const timer of timers.filter((t) => t.live && t.ms === ms)) {
        timer.live = false;
        timer.fn();
      }
    },
  };
}

/** The refusal class of the echo server, as a real server has its own. */
class Refusal extends MimiError {
  readonly status: number;
  constructor(code: JsonBodyErrorCode, message: string, cause?: unknown) {
    super(code, message, cause === undefined ? undefined : { cause });
    this.status = JSON_BODY_ERRORS[code];
  }
}

interface Echo {
  readonly handlers: HttpHandlers;
  /** The codes of the refusals, in order. */
  readonly refusals: string[];
  readonly timers: ReturnType<typeof manualTimers>;
}

/** POST: echoes the JSON body as `{"echo": …}`; GET: `{"hello": "world"}`, body unread. */
function echo(): Echo {
  const timers = manualTimers();
  const refusals: string[] = [];
  const body: JsonBodyLimits = {
    maxBodyOctets: MAX_BODY_OCTETS,
    timeoutMs: BODY_TIMEOUT_MS,
    schedule: timers.schedule,
    refuse: (code, message, cause) => new Refusal(code, message, cause),
  };
  const responses: ResponseOptions = {
    headers: { 'cache-control': 'no-store' },
    deliveryTimeoutMs: DELIVERY_TIMEOUT_MS,
    schedule: timers.schedule,
  };
  return {
    refusals,
    timers,
    handlers: {
      kind: 'request',
      request: (req, res) => {
        if (req.method === 'GET') {
          sendJson(req, res, { status: 200, body: { value: { hello: 'world' } } }, responses);
          return;
        }
        readJsonBody(req, body).then(
          (value) =>
            sendJson(req, res, { status: 200, body: { value: { echo: value } } }, responses),
          (error: unknown) => {
            if (!(error instanceof Refusal)) throw error;
            refusals.push(error.code);
            const refusal = { status: error.status, body: { value: jsonErrorBody(error) } };
            sendJson(req, res, refusal, responses);
          },
        );
      },
    },
  };
}

let certPem: string;
let keyPem: string;
let caPem: string;
const servers: Array<{ close(): Promise<void> }> = [];
const sockets: Array<{ destroy(): void }> = [];
const agents: Agent[] = [];

beforeAll(async () => {
  const ca = await createLocalCa();
  caPem = ca.certPem;
  const leaf = await issueServerCertificate(ca, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  certPem = leaf.certPem;
  keyPem = leaf.keyPem;
});

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(agents.splice(0).map((agent) => agent.close()));
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

function config(overrides: Partial<HttpServerConfig> = {}): HttpServerConfig {
  return {
    listener: 'test',
    label: 'test server',
    listenError: (message, cause) => new ListenError('ERR_API_LISTEN', message, { cause }),
    host: '127.0.0.1',
    port: 0,
    tls: { cert: certPem, key: keyPem },
    http2: { maxConcurrentStreams: 10 },
    connections: { maxConnections: 16, connectionsPerClient: 4, idleTimeoutMs: 30_000 },
    deadlines: { handshakeMs: 5_000, headersMs: 5_000, requestMs: 10_000 },
    ...overrides,
  };
}

async function start(
  handlers: HttpHandlers,
  overrides: Partial<HttpServerConfig> = {},
  components: HttpServerComponents = {},
): Promise<HttpServer> {
  const server = await startHttpServer(config(overrides), handlers, components);
  servers.push(server);
  return server;
}

function agent(allowH2: boolean): Agent {
  const made = new Agent({ allowH2, connect: { ca: caPem } });
  agents.push(made);
  return made;
}

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly json: unknown;
}

async function post(
  url: string,
  body: string | Readable,
  options: { contentType?: string; h2?: boolean } = {},
): Promise<Reply> {
  const response = await request(`${url}/echo`, {
    method: 'POST',
    dispatcher: agent(options.h2 ?? true),
    headers: { 'content-type': options.contentType ?? 'application/json' },
    body,
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, json: JSON.parse(text) };
}

/** Polls every 10 ms, for at most 5 s. */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(condition()).toBe(true);
}

/** A raw connection from `from`; TLS with ALPN `http/1.1` unless `plain`. */
function rawConnection(
  port: number,
  options: { from?: string; plain?: boolean } = {},
): { socket: Socket; received: Promise<string>; isClosed(): boolean } {
  const tcp = connectTcp({ host: '127.0.0.1', port, localAddress: options.from ?? '127.0.0.1' });
  tcp.on('error', () => undefined);
  sockets.push(tcp);
  const socket = options.plain
    ? tcp
    : connectTls({ socket: tcp, host: '127.0.0.1', ca: caPem, ALPNProtocols: ['http/1.1'] });
  socket.on('error', () => undefined);
  sockets.push(socket);
  let closed = false;
  const received = new Promise<string>((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('close', () => {
      closed = true;
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
  return { socket, received, isClosed: () => closed };
}

/** Status, lower-cased headers and JSON body of a raw HTTP/1.1 response. */
function parseRaw(text: string): {
  status: number;
  headers: Record<string, string>;
  json: unknown;
} {
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const at = line.indexOf(':');
    headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, json: JSON.parse(body) };
}

function http2Session(
  url: string,
  settings: { initialWindowSize?: number } = {},
): ClientHttp2Session {
  const session = connectHttp2(url, { ca: caPem, settings });
  session.on('error', () => undefined);
  sockets.push(session);
  return session;
}

describe('JSON bodies', () => {
  it('echoes a JSON body over HTTP/2 and HTTP/1.1 on one port, with the JSON headers', async () => {
    const { handlers } = echo();
    const server = await start(handlers);
    for (const h2 of [true, false]) {
      const reply = await post(server.url, '{"csis":["+44 20 7946 0018"]}', { h2 });
      expect(reply.status).toBe(200);
      expect(reply.json).toEqual({ echo: { csis: ['+44 20 7946 0018'] } });
      expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(reply.headers['x-content-type-options']).toBe('nosniff');
      expect(reply.headers['cache-control']).toBe('no-store');
    }
    // ALPN h2: a plain HTTP/2 client gets its answer on the same port.
    const session = http2Session(server.url);
    const status = await new Promise<number>((resolve) => {
      const stream = session.request({ ':path': '/echo' });
      stream.on('error', () => undefined);
      stream.on('response', (headers) => resolve(Number(headers[':status'])));
      stream.resume();
    });
    expect(status).toBe(200);
  });

  it.each([
    ['no content type', undefined],
    ['text/plain', 'text/plain'],
    ['a form', 'application/x-www-form-urlencoded'],
    ['another charset', 'application/json; charset=latin1'],
  ])('refuses %s with 415 before reading the body', async (_what, contentType) => {
    const { handlers, refusals } = echo();
    const server = await start(handlers);
    const response = await request(`${server.url}/echo`, {
      method: 'POST',
      dispatcher: agent(true),
      headers: contentType === undefined ? {} : { 'content-type': contentType },
      body: '{}',
    });
    expect(response.statusCode).toBe(415);
    expect(await response.body.json()).toEqual({
      error: {
        code: 'ERR_UNSUPPORTED_MEDIA_TYPE',
        message: 'the request body must be application/json',
      },
    });
    expect(refusals).toEqual(['ERR_UNSUPPORTED_MEDIA_TYPE']);
  });

  it('accepts application/json with charset utf-8, in any case and quoted', async () => {
    const { handlers } = echo();
    const server = await start(handlers);
    const reply = await post(server.url, '[1]', {
      contentType: 'Application/JSON; Charset="UTF-8"',
    });
    expect(reply).toMatchObject({ status: 200, json: { echo: [1] } });
  });

  it.each([
    ['bad JSON', Buffer.from('{"csis": ['), 'the request body is not valid JSON'],
    [
      'invalid UTF-8',
      Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]),
      'the request body is not valid UTF-8',
    ],
    ['an empty body', Buffer.alloc(0), 'the request body is not valid JSON'],
  ])('refuses %s with 400 ERR_BAD_JSON', async (_what, bytes, message) => {
    const { handlers } = echo();
    const server = await start(handlers);
    const response = await request(`${server.url}/echo`, {
      method: 'POST',
      dispatcher: agent(true),
      headers: { 'content-type': 'application/json' },
      body: bytes,
    });
    expect(response.statusCode).toBe(400);
    expect(await response.body.json()).toEqual({ error: { code: 'ERR_BAD_JSON', message } });
  });

  it('refuses a body whose content-length is over the limit at once, before any of it arrives, and closes', async () => {
    const { handlers, refusals } = echo();
    const server = await start(handlers);
    const client = rawConnection(server.port);
    client.socket.write(
      'POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n' +
        `Content-Length: ${MAX_BODY_OCTETS + 1}\r\n\r\n`,
    );
    // Not one octet of the body is sent: only the declared length can have refused it.
    const reply = parseRaw(await client.received);
    expect(reply.status).toBe(413);
    expect(reply.headers['connection']).toBe('close');
    expect(reply.json).toEqual({
      error: {
        code: 'ERR_BODY_TOO_LARGE',
        message: `the request body is larger than ${MAX_BODY_OCTETS} octets`,
      },
    });
    expect(refusals).toEqual(['ERR_BODY_TOO_LARGE']);
  });

  it.each([
    ['HTTP/2', true],
    ['HTTP/1.1 (chunked)', false],
  ])(
    'refuses a streamed body without a length as it grows past the limit, over %s',
    async (_v, h2) => {
      const { handlers, refusals } = echo();
      const server = await start(handlers);
      const chunks = async function* (): AsyncGenerator<Buffer> {
        yield Buffer.from('{"pad": "');
        for (let i = 0; i < 8; i++) yield Buffer.alloc(MAX_BODY_OCTETS / 2, 0x61);
        yield Buffer.from('"}');
      };
      const reply = await post(server.url, Readable.from(chunks()), { h2 });
      expect(reply.status).toBe(413);
      expect(reply.json).toMatchObject({ error: { code: 'ERR_BODY_TOO_LARGE' } });
      expect(refusals).toEqual(['ERR_BODY_TOO_LARGE']);
    },
  );

  it('answers 408 ERR_TIMEOUT to an HTTP/1.1 body that does not arrive by its deadline, and closes', async () => {
    const { handlers, timers } = echo();
    const server = await start(handlers);
    const client = rawConnection(server.port);
    client.socket.write(
      'POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n' +
        'Content-Length: 100\r\n\r\n{"csis": [',
    );
    await until(() => timers.pending(BODY_TIMEOUT_MS) === 1);
    // Octets that keep coming do not push the deadline back.
    client.socket.write('"+44');
    timers.fire(BODY_TIMEOUT_MS);
    const reply = parseRaw(await client.received);
    expect(reply.status).toBe(408);
    expect(reply.headers['connection']).toBe('close');
    expect(reply.json).toEqual({
      error: { code: 'ERR_TIMEOUT', message: 'the request body was not received in time' },
    });
  });

  it('answers 408 to an HTTP/2 body that does not arrive by its deadline, then resets the stream with NO_ERROR', async () => {
    const { handlers, timers } = echo();
    const server = await start(handlers);
    const session = http2Session(server.url);
    const stream = session.request({
      ':method': 'POST',
      ':path': '/echo',
      'content-type': 'application/json',
      'content-length': '100',
    });
    stream.on('error', () => undefined);
    stream.write('{"csis": [');
    const status = new Promise<number>((resolve) =>
      stream.once('response', (headers) => resolve(Number(headers[':status']))),
    );
    let body = '';
    stream.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    const closed = new Promise<number>((resolve) =>
      stream.once('close', () => resolve(stream.rstCode)),
    );
    await until(() => timers.pending(BODY_TIMEOUT_MS) === 1);
    timers.fire(BODY_TIMEOUT_MS);
    expect(await status).toBe(408);
    expect(await closed).toBe(http2Constants.NGHTTP2_NO_ERROR);
    expect(JSON.parse(body)).toMatchObject({ error: { code: 'ERR_TIMEOUT' } });
    // The session itself goes on.
    expect(session.destroyed).toBe(false);
  });

  it('refuses with ERR_BAD_REQUEST a body whose client resets the stream before its end', async () => {
    const { handlers, refusals } = echo();
    const server = await start(handlers);
    const session = http2Session(server.url);
    const stream = session.request({
      ':method': 'POST',
      ':path': '/echo',
      'content-type': 'application/json',
      'content-length': '100',
    });
    stream.on('error', () => undefined);
    stream.write('{"csis": [');
    await new Promise((r) => setTimeout(r, 50));
    stream.close(http2Constants.NGHTTP2_CANCEL);
    await until(() => refusals.length === 1);
    expect(refusals).toEqual(['ERR_BAD_REQUEST']);
  });
});

describe('responses', () => {
  it('keeps an HTTP/1.1 connection whose request was read, and closes one whose body was refused unread', async () => {
    const { handlers } = echo();
    const server = await start(handlers);
    const read = await post(server.url, '{}', { h2: false });
    expect(read.status).toBe(200);
    expect(read.headers['connection']).not.toBe('close');
    const refused = await post(server.url, 'x'.repeat(MAX_BODY_OCTETS + 1), { h2: false });
    expect(refused.status).toBe(413);
    expect(refused.headers['connection']).toBe('close');
  });

  it('cuts an HTTP/2 exchange whose client does not take its response by the delivery deadline', async () => {
    const { handlers, timers } = echo();
    const server = await start(handlers);
    // A flow-control window of zero: the response headers go out, its DATA never can.
    const session = http2Session(server.url, { initialWindowSize: 0 });
    const stream = session.request({ ':path': '/echo' });
    stream.on('error', () => undefined);
    const closed = new Promise<number>((resolve) =>
      stream.once('close', () => resolve(stream.rstCode)),
    );
    await until(() => timers.pending(DELIVERY_TIMEOUT_MS) === 1);
    timers.fire(DELIVERY_TIMEOUT_MS);
    expect(await closed).toBe(http2Constants.NGHTTP2_CANCEL);
    expect(session.destroyed).toBe(false);
  });
});

describe('connections', () => {
  it('closes the connections of one client past its share at accept, before TLS, and serves another client', async () => {
    const { handlers } = echo();
    const server = await start(handlers);
    const before = server.connectionStats().refused.client_limit;
    // TCP connections that never start TLS: each would hold a place until the handshake deadline.
    const held = Array.from({ length: 7 }, () =>
      rawConnection(server.port, { from: '127.0.0.2', plain: true }),
    );
    await until(() => held.filter((c) => c.isClosed()).length === 3);
    expect(server.connectionStats()).toMatchObject({ open: 4, clients: 1 });
    expect(server.connectionStats().refused.client_limit - before).toBe(3);
    expect((await post(server.url, '{}')).status).toBe(200);
  });

  it('closes every connection on close(), resolves, and accepts none afterwards', async () => {
    const { handlers } = echo();
    const server = await start(handlers);
    const session = http2Session(server.url);
    const sessionClosed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    const stream = session.request({ ':path': '/echo' });
    // The server going away ends the stream with an error the test expects.
    stream.on('error', () => undefined);
    stream.resume();
    const silent = rawConnection(server.port, { from: '127.0.0.2', plain: true });
    await until(() => server.connectionStats().open === 2);
    await server.close();
    await sessionClosed;
    await silent.received;
    const refused = await new Promise<string>((resolve) => {
      const socket = connectTcp({ host: '127.0.0.1', port: server.port });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? ''));
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
    });
    expect(refused).toBe('ECONNREFUSED');
  });
});

describe('raw errors (HTTP/1.1 without a request object)', () => {
  const RAW = {
    headersTimeoutMs: HEADERS_TIMEOUT_MS,
    errorFor: (kind: 'timeout' | 'headers-too-large' | 'bad-request') =>
      kind === 'timeout'
        ? { status: 408, code: 'ERR_TIMEOUT', message: 'too slow' }
        : kind === 'headers-too-large'
          ? { status: 431, code: 'ERR_HEADERS_TOO_LARGE', message: 'too large' }
          : { status: 400, code: 'ERR_BAD_REQUEST', message: 'not HTTP' },
    headers: { 'cache-control': 'no-store' },
  };

  async function plain(): Promise<{ server: HttpServer; timers: ReturnType<typeof manualTimers> }> {
    const { handlers, timers } = echo();
    const server = await start(
      handlers,
      { tls: undefined, http2: undefined, rawErrors: RAW, maxHeaderOctets: 1024 },
      { schedule: timers.schedule },
    );
    return { server, timers };
  }

  it('answers bytes that are not HTTP with the JSON error shape, and closes', async () => {
    const { server } = await plain();
    const client = rawConnection(server.port, { plain: true });
    client.socket.write('HELLO\r\n\r\n');
    const reply = parseRaw(await client.received);
    expect(reply).toMatchObject({
      status: 400,
      headers: {
        'content-type': 'application/json; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'close',
      },
      json: { error: { code: 'ERR_BAD_REQUEST', message: 'not HTTP' } },
    });
  });

  it('answers headers over the limit with 431 in the JSON error shape', async () => {
    const { server } = await plain();
    const client = rawConnection(server.port, { plain: true });
    client.socket.write(`GET /echo HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(2048)}\r\n\r\n`);
    const reply = parseRaw(await client.received);
    expect(reply).toMatchObject({
      status: 431,
      json: { error: { code: 'ERR_HEADERS_TOO_LARGE' } },
    });
  });

  it('answers headers that do not arrive by their deadline with a JSON 408, whatever octets come', async () => {
    const { server, timers } = await plain();
    const client = rawConnection(server.port, { plain: true });
    client.socket.write('POST /echo HTTP/1.1\r\nHost: x\r\n');
    await until(() => timers.pending(HEADERS_TIMEOUT_MS) === 1);
    client.socket.write('X-Slow: 1\r\n');
    timers.fire(HEADERS_TIMEOUT_MS);
    const reply = parseRaw(await client.received);
    expect(reply).toMatchObject({ status: 408, json: { error: { code: 'ERR_TIMEOUT' } } });
  });

  it('lifts the headers deadline once a request has arrived', async () => {
    const { server, timers } = await plain();
    const reply = await request(`${server.url}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(await reply.body.json()).toEqual({ echo: { a: 1 } });
    expect(timers.pending(HEADERS_TIMEOUT_MS)).toBe(0);
  });
});

describe('startHttpServer', () => {
  it.each<[string, Partial<HttpServerConfig>, HttpHandlers['kind']]>([
    ['HTTP/2 without TLS', { tls: undefined }, 'request'],
    ['stream handlers without HTTP/2', { http2: undefined }, 'stream'],
    [
      'raw errors on HTTP/2',
      {
        rawErrors: {
          headersTimeoutMs: 1,
          errorFor: () => ({ status: 400, code: 'E', message: 'm' }),
        },
      },
      'request',
    ],
    [
      'a headers deadline past the request deadline',
      { deadlines: { headersMs: 2, requestMs: 1 } },
      'request',
    ],
    [
      'a certificate that is none',
      { tls: { cert: 'not a certificate', key: 'nor a key' } },
      'request',
    ],
    [
      'a per-client cap above the cap',
      { connections: { maxConnections: 2, connectionsPerClient: 3 } },
      'request',
    ],
  ])('refuses %s with ERR_TRANSPORT_CONFIG', async (_what, overrides, kind) => {
    const handlers: HttpHandlers =
      kind === 'request'
        ? { kind, request: () => undefined }
        : { kind, http1: () => undefined, http2: () => undefined };
    await expect(startHttpServer(config(overrides), handlers)).rejects.toMatchObject({
      code: 'ERR_TRANSPORT_CONFIG',
    });
  });

  it('names a port in use with the configured listen error code', async () => {
    const { handlers } = echo();
    const first = await start(handlers);
    const error = await startHttpServer(config({ port: first.port }), handlers).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MimiError);
    expect(error).toMatchObject({ code: 'ERR_API_LISTEN' });
    expect((error as Error).message).toMatch(/^test server cannot listen on 127\.0\.0\.1:\d+: /);
  });

  it.each([
    [{ headersMs: 10_000, requestMs: 10_000 }, 1_000],
    [{ headersMs: 500, requestMs: 1_000 }, 125],
    [{ headersMs: 20, requestMs: 20 }, 10],
  ])(
    'checks node deadlines every quarter of the shorter, within 10 ms..1 s: %o',
    (deadlines, ms) => {
      expect(deadlineCheckIntervalMs(deadlines)).toBe(ms);
    },
  );
});

describe('the admin server through the scaffold', () => {
  async function admin(
    options: { maxConnections?: number; connectionsPerClient?: number } = {},
  ): Promise<AdminServer> {
    const server = await startAdminServer(
      { port: 0, ...options },
      { registry: createMetricsRegistry('test'), health: () => ({ ok: true }) },
    );
    servers.push(server);
    return server;
  }

  it(`closes one client's connections past its share (${ADMIN_CONNECTIONS_PER_CLIENT}) at accept, and answers another client`, async () => {
    const server = await admin();
    const held = Array.from({ length: ADMIN_CONNECTIONS_PER_CLIENT + 3 }, () =>
      rawConnection(server.port, { from: '127.0.0.2', plain: true }),
    );
    await until(() => held.filter((c) => c.isClosed()).length === 3);
    expect(server.connectionStats()).toMatchObject({
      open: ADMIN_CONNECTIONS_PER_CLIENT,
      refused: { client_limit: 3 },
    });
    const response = await fetch(`${server.url}/healthz`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
  });

  it('holds at most its cap, evicting an idle connection of the heaviest client for a newcomer', async () => {
    const server = await admin({ maxConnections: 4, connectionsPerClient: 2 });
    for (const from of ['127.0.0.2', '127.0.0.3']) {
      for (let i = 0; i < 2; i++) rawConnection(server.port, { from, plain: true });
    }
    await until(() => server.connectionStats().open === 4);
    const newcomer = rawConnection(server.port, { from: '127.0.0.4', plain: true });
    await until(() => server.connectionStats().closed.evicted === 1);
    expect(server.connectionStats().open).toBe(4);
    expect(newcomer.isClosed()).toBe(false);
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(200);
    expect(server.connectionStats().open).toBeLessThanOrEqual(4);
  });
});
