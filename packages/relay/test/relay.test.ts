import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { connect as netConnect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { connect } from 'node:tls';
import { createLocalCa, issueServerCertificate, silentLogger } from '@mimi-discovery/common';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { agentsByAddress } from '../../../test/helpers/client-address.js';
import {
  DEFAULT_RELAY_MAX_REQUEST_OCTETS,
  startRelay,
  type RelayComponents,
  type RelayExchange,
  type RelaySettings,
  type RunningRelay,
} from '../src/index.js';

// The relay started for real on 127.0.0.1 in front of a test gateway — a small HTTPS server with
// a certificate of the test's own CA, which records every request it receives and answers as
// each test tells it. Clients are undici agents leaving from chosen addresses of 127/8, each
// address a client of its own to the relay's per-client limits.

interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The address the relay's connection came from. */
  readonly from: string;
}

type GatewayHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

const OHTTP_PATH = '/.well-known/ohttp-gateway';
/** `promtool` (Debian package `prometheus`) lints the metrics where it is installed. */
const promtool = spawnSync('sh', ['-c', 'command -v promtool']).status === 0;
let caPem = '';
let leaf = { certPem: '', keyPem: '' };
let gateway: Server;
let gatewayAuthority = '';
const received: Received[] = [];
/** Responses held back by a hanging handler, answered or cut when the test ends. */
const held: ServerResponse[] = [];
let handler: GatewayHandler = (_req, res) => res.end();
const agents = agentsByAddress(() => caPem);
const relays: RunningRelay[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  const ca = await createLocalCa({ commonName: 'relay test CA' });
  caPem = ca.certPem;
  leaf = await issueServerCertificate(ca, { hostnames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  gateway = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
        from: req.socket.remoteAddress ?? '',
      });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
  gatewayAuthority = `127.0.0.1:${(gateway.address() as AddressInfo).port}`;
});

afterEach(async () => {
  for (const res of held.splice(0)) res.destroy();
  await Promise.all(relays.splice(0).map((relay) => relay.close()));
  received.length = 0;
  handler = (_req, res) => res.end();
});

afterAll(async () => {
  await agents.close();
  gateway.closeAllConnections();
  await new Promise((resolve) => gateway.close(resolve));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A relay for the test gateway (`/ohttp/resolver`, ODoH target), with `overrides`. */
async function relay(
  overrides: Partial<RelaySettings> = {},
  components: RelayComponents = {},
): Promise<RunningRelay> {
  const running = await startRelay(
    {
      listen: { relay: 0 },
      tls: { cert: leaf.certPem, key: leaf.keyPem },
      ca: caPem,
      gateways: { resolver: `https://${gatewayAuthority}${OHTTP_PATH}` },
      odohTargets: [gatewayAuthority],
      ...overrides,
    },
    { log: silentLogger, ...components },
  );
  relays.push(running);
  return running;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A request to the relay from the client at `from` (default 127.0.0.1). */
async function send(
  relayUrl: string,
  path: string,
  options: {
    method?: 'GET' | 'POST' | 'PUT';
    headers?: Record<string, string>;
    body?: Uint8Array;
    from?: string;
  } = {},
): Promise<Reply> {
  const response = await request(`${relayUrl}${path}`, {
    dispatcher: agents.agentFor(options.from ?? '127.0.0.1'),
    method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
    headers: options.headers ?? {},
    ...(options.body === undefined ? {} : { body: options.body }),
  });
  const body = Buffer.from(await response.body.arrayBuffer());
  return { status: response.statusCode, headers: response.headers, body };
}

/** An encapsulated request as a client sends one: opaque octets of `message/ohttp-req`. */
function ohttpRequest(body: Uint8Array, extra: Record<string, string> = {}) {
  return { headers: { 'content-type': 'message/ohttp-req', ...extra }, body };
}

function errorCode(reply: Reply): string {
  return (JSON.parse(reply.body.toString('utf8')) as { error: { code: string } }).error.code;
}

/** Resolves once the test gateway has received `count` requests. */
async function receivedCount(count: number): Promise<void> {
  while (received.length < count) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** The handler that never answers (until the test ends). */
function hang(_req: IncomingMessage, res: ServerResponse): void {
  held.push(res);
}

describe('the OHTTP relay resource', () => {
  it('forwards the body to the gateway and gives back its status, content type and octets unchanged', async () => {
    const running = await relay();
    const answer = randomBytes(3000);
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'message/ohttp-res' });
      res.end(answer);
    };
    const message = randomBytes(6000);
    const reply = await send(running.url, '/ohttp/resolver', ohttpRequest(message));
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('message/ohttp-res');
    expect(reply.body.equals(answer)).toBe(true);
    expect(received).toHaveLength(1);
    expect(received[0]?.method).toBe('POST');
    expect(received[0]?.url).toBe(OHTTP_PATH);
    expect(received[0]?.body.equals(message)).toBe(true);
    expect(received[0]?.headers['content-type']).toBe('message/ohttp-req');
    expect(received[0]?.headers['accept']).toBe('message/ohttp-res');
  });

  it('passes no header of the client to the gateway and adds none that names it', async () => {
    const running = await relay();
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'message/ohttp-res' });
      res.end('x');
    };
    const identifying = {
      cookie: 'session=alice',
      authorization: 'Bearer alice-credential',
      'user-agent': 'AliceApp/1.0 (alice-phone)',
      forwarded: 'for=198.51.100.9',
      'x-forwarded-for': '198.51.100.9',
      'x-real-ip': '198.51.100.9',
      'accept-language': 'en-GB',
      via: '1.1 alice-proxy',
      'x-client-id': 'alice',
    };
    await send(running.url, '/ohttp/resolver', ohttpRequest(randomBytes(100), identifying));
    await send(running.url, '/ohttp/resolver', { headers: identifying });
    expect(received).toHaveLength(2);
    for (const r of received) {
      // What HTTP/1.1 framing needs and the relay's own content type and accept: nothing else.
      expect(
        Object.keys(r.headers).every((name) =>
          ['host', 'connection', 'content-length', 'content-type', 'accept'].includes(name),
        ),
        Object.keys(r.headers).join(', '),
      ).toBe(true);
      const all = JSON.stringify(r.headers);
      for (const value of Object.values(identifying)) expect(all).not.toContain(value);
      expect(r.headers['forwarded']).toBeUndefined();
      expect(r.headers['x-forwarded-for']).toBeUndefined();
    }
  });

  it('fetches the key configs with GET and accept application/ohttp-keys, and gives back their cache lifetime', async () => {
    const running = await relay();
    const keys = randomBytes(43);
    handler = (_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/ohttp-keys',
        'cache-control': 'max-age=600',
      });
      res.end(keys);
    };
    const reply = await send(running.url, '/ohttp/resolver');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/ohttp-keys');
    expect(reply.headers['cache-control']).toBe('max-age=600');
    expect(reply.body.equals(keys)).toBe(true);
    expect(received[0]).toMatchObject({ method: 'GET', url: OHTTP_PATH });
    expect(received[0]?.headers['accept']).toBe('application/ohttp-keys');
    expect(received[0]?.body.length).toBe(0);
  });

  it("gives back the gateway's refusal as it is: status, content type, body", async () => {
    const running = await relay();
    const problem = JSON.stringify({
      type: 'https://iana.org/assignments/http-problem-types#ohttp-key',
      title: 'unknown key',
    });
    handler = (_req, res) => {
      res.writeHead(400, { 'content-type': 'application/problem+json' });
      res.end(problem);
    };
    const reply = await send(running.url, '/ohttp/resolver', ohttpRequest(randomBytes(64)));
    expect(reply.status).toBe(400);
    expect(reply.headers['content-type']).toBe('application/problem+json');
    expect(reply.body.toString('utf8')).toBe(problem);
  });

  it('refuses an unknown gateway, another method, another content type and an oversized body, forwarding nothing', async () => {
    const running = await relay({ limits: { maxRequestOctets: 1024 } });
    const unknown = await send(running.url, '/ohttp/other', ohttpRequest(randomBytes(10)));
    expect([unknown.status, errorCode(unknown)]).toEqual([404, 'ERR_NOT_FOUND']);
    const query = await send(running.url, '/ohttp/resolver?x=1', ohttpRequest(randomBytes(10)));
    expect(query.status).toBe(404);
    const put = await send(running.url, '/ohttp/resolver', { method: 'PUT', body: randomBytes(4) });
    expect([put.status, errorCode(put), put.headers['allow']]).toEqual([
      405,
      'ERR_METHOD_NOT_ALLOWED',
      'GET, POST',
    ]);
    const json = await send(running.url, '/ohttp/resolver', {
      headers: { 'content-type': 'application/json' },
      body: Buffer.from('{"csis":["+442079460018"]}'),
    });
    expect([json.status, errorCode(json)]).toEqual([415, 'ERR_UNSUPPORTED_MEDIA_TYPE']);
    const large = await send(running.url, '/ohttp/resolver', ohttpRequest(randomBytes(1025)));
    expect([large.status, errorCode(large)]).toEqual([413, 'ERR_BODY_TOO_LARGE']);
    // Without a content-length (chunked): refused while reading.
    const stream = await request(`${running.url}/ohttp/resolver`, {
      dispatcher: agents.agentFor('127.0.0.1'),
      method: 'POST',
      headers: { 'content-type': 'message/ohttp-req' },
      body: Readable.from(
        (async function* () {
          for (let i = 0; i < 4; i++) yield randomBytes(512);
        })(),
      ),
    });
    expect(stream.statusCode).toBe(413);
    await stream.body.dump();
    expect(received).toHaveLength(0);
  });

  it(`accepts by default a body of ${DEFAULT_RELAY_MAX_REQUEST_OCTETS} octets and not one more`, async () => {
    const running = await relay();
    const fits = await send(
      running.url,
      '/ohttp/resolver',
      ohttpRequest(randomBytes(DEFAULT_RELAY_MAX_REQUEST_OCTETS)),
    );
    expect(fits.status).toBe(200);
    const over = await send(
      running.url,
      '/ohttp/resolver',
      ohttpRequest(randomBytes(DEFAULT_RELAY_MAX_REQUEST_OCTETS + 1)),
    );
    expect(over.status).toBe(413);
    expect(received).toHaveLength(1);
  });
  it('leaves from sourceAddress, and lets an observer hear each exchange as the relay sees it', async () => {
    const heard: RelayExchange[] = [];
    const running = await startRelay(
      {
        listen: { relay: 0 },
        tls: { cert: leaf.certPem, key: leaf.keyPem },
        ca: caPem,
        gateways: { resolver: `https://${gatewayAuthority}${OHTTP_PATH}` },
        sourceAddress: '127.0.0.3',
      },
      { log: silentLogger, observe: (exchange) => heard.push(exchange) },
    );
    relays.push(running);
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'message/ohttp-res' });
      res.end(Buffer.from('answer'));
    };
    const message = randomBytes(100);
    const reply = await send(running.url, '/ohttp/resolver', {
      ...ohttpRequest(message),
      from: '127.0.0.2',
    });
    expect(reply.status).toBe(200);
    expect(received[0]?.from).toBe('127.0.0.3');
    expect(heard).toHaveLength(1);
    expect(heard[0]).toMatchObject({ target: '/ohttp/resolver', method: 'POST', status: 200 });
    expect(Buffer.from(heard[0]?.requestBody ?? []).equals(message)).toBe(true);
    expect(Buffer.from(heard[0]?.responseBody ?? []).toString()).toBe('answer');
  });
});

describe('the ODoH proxy', () => {
  const target = (path: string, host = gatewayAuthority): string =>
    `/proxy?targethost=${encodeURIComponent(host)}&targetpath=${encodeURIComponent(path)}`;

  it('forwards a query to an allowed target and its configs with GET', async () => {
    const running = await relay();
    const answer = randomBytes(200);
    handler = (req, res) => {
      res.writeHead(200, {
        'content-type':
          req.method === 'POST' ? 'application/oblivious-dns-message' : 'application/octet-stream',
      });
      res.end(answer);
    };
    const query = randomBytes(300);
    const reply = await send(running.url, target('/dns-query'), {
      headers: { 'content-type': 'application/oblivious-dns-message', cookie: 'a=b' },
      body: query,
    });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/oblivious-dns-message');
    expect(reply.body.equals(answer)).toBe(true);
    expect(received[0]).toMatchObject({ method: 'POST', url: '/dns-query' });
    expect(received[0]?.body.equals(query)).toBe(true);
    expect(received[0]?.headers['cookie']).toBeUndefined();

    const configs = await send(running.url, target('/.well-known/odohconfigs'));
    expect(configs.status).toBe(200);
    expect(configs.body.equals(answer)).toBe(true);
    expect(received[1]).toMatchObject({ method: 'GET', url: '/.well-known/odohconfigs' });
  });

  it('refuses with 403 a target not on the allow list, and a GET of another path, forwarding nothing', async () => {
    const running = await relay();
    const odoh = { 'content-type': 'application/oblivious-dns-message' };
    const port = gatewayAuthority.split(':')[1] ?? '';
    for (const host of [
      `localhost:${port}`,
      `127.0.0.2:${port}`,
      '127.0.0.1',
      'resolver.example:443',
    ]) {
      const reply = await send(running.url, target('/dns-query', host), {
        headers: odoh,
        body: randomBytes(50),
      });
      expect([host, reply.status, errorCode(reply)]).toEqual([host, 403, 'ERR_TARGET_NOT_ALLOWED']);
    }
    const other = await send(running.url, target('/v1/discover?csi=%2B442079460018'));
    expect(other.status).toBe(400);
    const get = await send(running.url, target('/dns-query'));
    expect([get.status, errorCode(get)]).toEqual([403, 'ERR_TARGET_NOT_ALLOWED']);
    expect(received).toHaveLength(0);
  });

  it('refuses a target path that would name another host, and a missing or repeated parameter', async () => {
    const running = await relay();
    const odoh = {
      headers: { 'content-type': 'application/oblivious-dns-message' },
      body: randomBytes(8),
    };
    for (const path of [
      target('//evil.example/dns-query'),
      target('dns-query'),
      `/proxy?targethost=${gatewayAuthority}`,
      `${target('/dns-query')}&targethost=${gatewayAuthority}`,
      `${target('/dns-query')}&extra=1`,
      `/proxy?targethost=user%40${gatewayAuthority}&targetpath=%2Fdns-query`,
    ]) {
      const reply = await send(running.url, path, odoh);
      expect([path, reply.status, errorCode(reply)]).toEqual([path, 400, 'ERR_BAD_REQUEST']);
    }
    expect(received).toHaveLength(0);
  });
});

describe('a hostile or broken gateway', () => {
  it('answers 504 when the gateway hangs, and stays responsive for other clients meanwhile', async () => {
    const running = await relay({ limits: { forwardTimeoutMs: 400 } });
    handler = (req, res) => {
      if (req.url === '/dns-query') hang(req, res);
      else {
        res.writeHead(200, { 'content-type': 'message/ohttp-res' });
        res.end('fast');
      }
    };
    const slow = send(
      running.url,
      `/proxy?targethost=${gatewayAuthority}&targetpath=%2Fdns-query`,
      { headers: { 'content-type': 'application/oblivious-dns-message' }, body: randomBytes(8) },
    );
    await receivedCount(1);
    const order: string[] = [];
    const fast = send(running.url, '/ohttp/resolver', {
      ...ohttpRequest(randomBytes(8)),
      from: '127.0.0.2',
    });
    const [fastReply, slowReply] = await Promise.all([
      fast.then((r) => (order.push('fast'), r)),
      slow.then((r) => (order.push('slow'), r)),
    ]);
    expect(order).toEqual(['fast', 'slow']);
    expect(fastReply.body.toString()).toBe('fast');
    expect([slowReply.status, errorCode(slowReply)]).toEqual([504, 'ERR_GATEWAY_TIMEOUT']);
    expect(running.forwardsInFlight()).toBe(0);
  });

  it('answers 504 when the gateway drips its response past the forward timeout', async () => {
    const running = await relay({ limits: { forwardTimeoutMs: 400 } });
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'message/ohttp-res' });
      held.push(res);
      const drip = setInterval(() => {
        if (res.destroyed) clearInterval(drip);
        else res.write('x');
      }, 50);
    };
    const reply = await send(running.url, '/ohttp/resolver', ohttpRequest(randomBytes(8)));
    expect([reply.status, errorCode(reply)]).toEqual([504, 'ERR_GATEWAY_TIMEOUT']);
  });

  it('answers 502 for a response over maxResponseOctets, declared or streamed', async () => {
    const running = await relay({ limits: { maxResponseOctets: 4096 } });
    let chunked = false;
    handler = (_req, res) => {
      if (chunked) {
        res.writeHead(200, { 'content-type': 'message/ohttp-res' });
        res.write(randomBytes(3000));
        res.end(randomBytes(3000));
      } else {
        res.writeHead(200, { 'content-type': 'message/ohttp-res' });
        res.end(randomBytes(4097));
      }
    };
    const declared = await send(running.url, '/ohttp/resolver', ohttpRequest(randomBytes(8)));
    expect([declared.status, errorCode(declared)]).toEqual([502, 'ERR_GATEWAY_RESPONSE_TOO_LARGE']);
    chunked = true;
    const streamed = await send(running.url, '/ohttp/resolver', ohttpRequest(randomBytes(8)));
    expect([streamed.status, errorCode(streamed)]).toEqual([502, 'ERR_GATEWAY_RESPONSE_TOO_LARGE']);
    // Exactly the bound passes.
    chunked = false;
    handler = (_req, res) => res.end(randomBytes(4096));
    expect((await send(running.url, '/ohttp/resolver', ohttpRequest(randomBytes(8)))).status).toBe(
      200,
    );
  });

  it('answers 502 when the gateway cannot be reached or its certificate is not trusted', async () => {
    const closed = await relay({
      gateways: { resolver: 'https://127.0.0.1:1/.well-known/ohttp-gateway' },
    });
    const refused = await send(closed.url, '/ohttp/resolver', ohttpRequest(randomBytes(8)));
    expect([refused.status, errorCode(refused)]).toEqual([502, 'ERR_GATEWAY_UNREACHABLE']);
    const other = await createLocalCa({ commonName: 'another CA' });
    const untrusting = await relay({ ca: other.certPem });
    const untrusted = await send(untrusting.url, '/ohttp/resolver', ohttpRequest(randomBytes(8)));
    expect([untrusted.status, errorCode(untrusted)]).toEqual([502, 'ERR_GATEWAY_UNREACHABLE']);
    expect(received).toHaveLength(0);
  });
});

describe('hostile clients', () => {
  it('answers 408 to a client dripping its body, forwarding nothing', async () => {
    const running = await relay({ limits: { requestTimeoutMs: 400 } });
    const socket = connect({
      host: '127.0.0.1',
      port: running.port,
      ca: caPem,
      servername: 'localhost',
      ALPNProtocols: ['http/1.1'],
    });
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    socket.write(
      'POST /ohttp/resolver HTTP/1.1\r\nhost: relay\r\ncontent-type: message/ohttp-req\r\ncontent-length: 100\r\n\r\n',
    );
    const drip = setInterval(() => {
      if (!socket.destroyed) socket.write('x');
    }, 50);
    await ended;
    clearInterval(drip);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text).toContain('ERR_TIMEOUT');
    expect(received).toHaveLength(0);
  });

  it('answers 429 with Retry-After to a client over its token bucket, while another client is served', async () => {
    let now = 1_000_000;
    const running = await startRelay(
      {
        listen: { relay: 0 },
        tls: { cert: leaf.certPem, key: leaf.keyPem },
        ca: caPem,
        gateways: { resolver: `https://${gatewayAuthority}${OHTTP_PATH}` },
        limits: { requestBurst: 3, requestsPerSecond: 1 },
      },
      { log: silentLogger, now: () => now },
    );
    relays.push(running);
    for (let i = 0; i < 3; i++) {
      expect(
        (await send(running.url, '/ohttp/resolver', ohttpRequest(randomBytes(8)))).status,
      ).toBe(200);
    }
    const limited = await send(running.url, '/ohttp/resolver', ohttpRequest(randomBytes(8)));
    expect([limited.status, errorCode(limited), limited.headers['retry-after']]).toEqual([
      429,
      'ERR_RATE_LIMITED',
      '1',
    ]);
    expect(received).toHaveLength(3);
    const other = await send(running.url, '/ohttp/resolver', {
      ...ohttpRequest(randomBytes(8)),
      from: '127.0.0.2',
    });
    expect(other.status).toBe(200);
    now += 1;
    expect((await send(running.url, '/ohttp/resolver', ohttpRequest(randomBytes(8)))).status).toBe(
      200,
    );
  });

  it('caps forwards in progress per client (429) and overall (503)', async () => {
    const running = await relay({
      limits: { forwardsPerClient: 2, maxForwards: 3, forwardTimeoutMs: 5_000 },
    });
    handler = hang;
    const body = (): ReturnType<typeof ohttpRequest> => ohttpRequest(randomBytes(8));
    const pending = [
      send(running.url, '/ohttp/resolver', body()),
      send(running.url, '/ohttp/resolver', body()),
    ];
    await receivedCount(2);
    const third = await send(running.url, '/ohttp/resolver', body());
    expect([third.status, errorCode(third), third.headers['retry-after']]).toEqual([
      429,
      'ERR_RATE_LIMITED',
      '1',
    ]);
    pending.push(send(running.url, '/ohttp/resolver', { ...body(), from: '127.0.0.2' }));
    await receivedCount(3);
    const full = await send(running.url, '/ohttp/resolver', { ...body(), from: '127.0.0.3' });
    expect([full.status, errorCode(full)]).toEqual([503, 'ERR_RELAY_BUSY']);
    expect(running.forwardsInFlight()).toBe(3);
    // The gateway answers: the slots are free again.
    for (const res of held.splice(0)) res.end('done');
    expect((await Promise.all(pending)).map((r) => r.status)).toEqual([200, 200, 200]);
    handler = (_req, res) => res.end('ok');
    expect((await send(running.url, '/ohttp/resolver', body())).status).toBe(200);
    expect(received).toHaveLength(4);
  });

  it('caps the connections of one client, refused at accept and counted in the metrics', async () => {
    const running = await relay({
      listen: { relay: 0, admin: 0 },
      limits: { maxConnections: 8, connectionsPerClient: 2 },
    });
    const sockets = [0, 1, 2].map(() => {
      const socket = netConnect({
        host: '127.0.0.1',
        port: running.port,
        localAddress: '127.0.0.5',
      });
      socket.on('error', () => undefined);
      return socket;
    });
    try {
      while (running.connectionStats().refused.client_limit < 1) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(running.connectionStats().open).toBe(2);
      const metrics = await (await request(`${running.admin?.url ?? ''}/metrics`)).body.text();
      expect(metrics).toContain(
        'relay_connections_refused_total{listener="relay",reason="client_limit"} 1',
      );
      // Another client still gets in.
      handler = (_req, res) => res.end('ok');
      const other = await send(running.url, '/ohttp/resolver', {
        ...ohttpRequest(randomBytes(8)),
        from: '127.0.0.6',
      });
      expect(other.status).toBe(200);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });

  it('never lets an exempt client run out of requests', async () => {
    // A clock that stands still: no request is earned back between the two of the other client.
    const running = await relay(
      { limits: { requestBurst: 1, exempt: ['127.0.0.4/32'] } },
      { now: () => 1_000_000 },
    );
    handler = (_req, res) => res.end('ok');
    for (let i = 0; i < 3; i++) {
      const reply = await send(running.url, '/ohttp/resolver', {
        ...ohttpRequest(randomBytes(8)),
        from: '127.0.0.4',
      });
      expect(reply.status).toBe(200);
    }
    await send(running.url, '/ohttp/resolver', ohttpRequest(randomBytes(8)));
    const limited = await send(running.url, '/ohttp/resolver', ohttpRequest(randomBytes(8)));
    expect(limited.status).toBe(429);
  });
});

describe('the connections to gateways', () => {
  it('gives up on a gateway that never completes its TLS handshake after connectTimeoutMs', async () => {
    const silent = createNetServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      // Without the connect deadline the forward would wait its whole minute, past the test's.
      const running = await relay({
        gateways: { resolver: `https://127.0.0.1:${port}${OHTTP_PATH}` },
        limits: { connectTimeoutMs: 200, forwardTimeoutMs: 60_000 },
      });
      const reply = await send(running.url, '/ohttp/resolver', ohttpRequest(randomBytes(8)));
      expect([reply.status, errorCode(reply)]).toEqual([504, 'ERR_GATEWAY_TIMEOUT']);
    } finally {
      silent.close();
    }
  }, 10_000);

  it('keeps at most gatewayConnections connections to one gateway, queueing the rest', async () => {
    const running = await relay({ limits: { gatewayConnections: 1 } });
    let connections = 0;
    const count = (): void => {
      connections++;
    };
    gateway.on('secureConnection', count);
    try {
      handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'message/ohttp-res' });
        res.end('ok');
      };
      const replies = await Promise.all(
        ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'].map((from) =>
          send(running.url, '/ohttp/resolver', { ...ohttpRequest(randomBytes(8)), from }),
        ),
      );
      expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      expect(received).toHaveLength(4);
      expect(connections).toBe(1);
    } finally {
      gateway.off('secureConnection', count);
    }
  });
});

describe('logs and metrics', () => {
  it('writes a query log line per request with client, route, octets and status, and no body', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimi-relay-'));
    dirs.push(dir);
    const path = join(dir, 'relay.jsonl');
    const running = await relay({ queryLog: { path } });
    const secret = Buffer.from('tel:+442079460018 8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa');
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'message/ohttp-res' });
      res.end(Buffer.concat([secret, Buffer.from(' answer')]));
    };
    await send(running.url, '/ohttp/resolver', ohttpRequest(secret));
    await send(running.url, `/proxy?targethost=127.0.0.9&targetpath=%2Fdns-query`, {
      headers: { 'content-type': 'application/oblivious-dns-message' },
      body: secret,
      from: '127.0.0.2',
    });
    await running.queryLog?.flush();
    const text = readFileSync(path, 'utf8');
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      client: '127.0.0.1',
      method: 'POST',
      route: '/ohttp/resolver',
      in: secret.length,
      out: secret.length + 7,
      status: 200,
    });
    expect(lines[1]).toMatchObject({
      client: '127.0.0.2',
      route: '/proxy',
      target: '127.0.0.9:443',
      in: 0,
      status: 403,
    });
    expect(Object.keys(lines[0] ?? {})).toEqual([
      't',
      'client',
      'method',
      'route',
      'in',
      'out',
      'status',
    ]);
    for (const needle of [
      '442079460018',
      'e164',
      'answer',
      secret.toString('base64'),
      secret.toString('hex'),
    ]) {
      expect(text).not.toContain(needle);
    }
  });

  it('serves health and relay_* metrics on the admin port, labelled by route and status only', async () => {
    const running = await relay({ listen: { relay: 0, admin: 0 } });
    handler = (_req, res) => res.end('ok');
    await send(running.url, '/ohttp/resolver', ohttpRequest(randomBytes(10)));
    await send(running.url, '/nothing');
    const admin = running.admin?.url ?? '';
    const health = await request(`${admin}/healthz`);
    expect(await health.body.json()).toMatchObject({
      status: 'ok',
      detail: { gateways: 1, odohTargets: 1, forwardsInFlight: 0 },
    });
    const metrics = await (await request(`${admin}/metrics`)).body.text();
    expect(metrics).toContain('relay_requests_total{route="ohttp",status="200"} 1');
    expect(metrics).toContain('relay_requests_total{route="other",status="404"} 1');
    expect(metrics).toContain('relay_request_octets_total{route="ohttp"} 10');
    expect(metrics).toMatch(/relay_forward_duration_seconds_count\{route="ohttp"\} 1/);
    expect(metrics).toContain('relay_forwards_in_flight 0');
    expect(metrics).not.toContain('127.0.0.1');
    expect(metrics).not.toContain(gatewayAuthority);
  });

  it.skipIf(!promtool)('serves metrics that pass promtool check metrics', async () => {
    const running = await relay({ listen: { relay: 0, admin: 0 } });
    handler = (_req, res) => res.end('ok');
    await send(running.url, '/ohttp/resolver', ohttpRequest(randomBytes(10)));
    await send(running.url, '/ohttp/resolver', { method: 'PUT' });
    const text = await (await request(`${running.admin?.url ?? ''}/metrics`)).body.text();
    const result = spawnSync('promtool', ['check', 'metrics'], {
      input: text,
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(`${result.stdout}${result.stderr}`.trim()).toBe('');
    expect(result.status).toBe(0);
  });
});
