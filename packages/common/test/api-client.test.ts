import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiClientError,
  createApiClient,
  createLocalCa,
  issueServerCertificate,
  type ApiClient,
  type ApiClientOptions,
  type ApiResponseInfo,
} from '../src/index.js';
import { rejectionOf } from '../../../test/helpers/rejection.js';

// The JSON transport of the API clients against real servers on 127.0.0.1 that answer what the
// test tells them to, honest or hostile.

type ExampleCode = 'ERR_EXAMPLE_REFUSED';
class ExampleClientError extends ApiClientError<ExampleCode> {}

/** What a route of the test server does with a request. */
type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

const routes = new Map<string, Handler>();
const sockets = new Set<Socket>();
let server: Server;
let base: string;

function listen(s: Server): Promise<number> {
  s.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return new Promise((resolve) =>
    s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)),
  );
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const handler = routes.get(path);
      if (handler === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not here');
        return;
      }
      handler(req, res, Buffer.concat(chunks).toString('utf8'));
    });
  });
  base = `http://127.0.0.1:${await listen(server)}`;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function json(res: ServerResponse, status: number, value: unknown, headers = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body);
}

/** A client of the test server with short bounds. */
function client(extra: Partial<ApiClientOptions<ExampleClientError>> = {}): ApiClient {
  return createApiClient({
    url: base,
    connectTimeoutMs: 1000,
    timeoutMs: 1000,
    maxResponseOctets: 1024,
    connections: 8,
    codes: new Set(['ERR_EXAMPLE_REFUSED']),
    error: ExampleClientError,
    ...extra,
  });
}

/** The error `call` rejects with, a {@link ExampleClientError}; fails the test when it resolves. */
function rejection(call: Promise<unknown>): Promise<ExampleClientError> {
  return rejectionOf(call, ExampleClientError);
}

describe('the JSON API transport', () => {
  it('posts JSON to a route under the base path and returns the status and the parsed answer', async () => {
    const seen: Array<{ method: string; url: string; type: string; body: string }> = [];
    routes.set('/prefix/v1/echo', (req, res, body) => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        type: req.headers['content-type'] ?? '',
        body,
      });
      json(res, 201, { got: JSON.parse(body) as unknown });
    });
    const responses: ApiResponseInfo[] = [];
    const api = createApiClient({
      url: `${base}/prefix`,
      connectTimeoutMs: 1000,
      timeoutMs: 1000,
      maxResponseOctets: 1024,
      connections: 8,
      codes: new Set(),
      error: ExampleClientError,
      onResponse: (r) => responses.push(r),
    });
    try {
      const answer = await api.send({ method: 'POST', path: '/v1/echo', body: { csi: '+44 20' } });
      expect(answer).toEqual({
        url: `${base}/prefix/v1/echo`,
        status: 201,
        value: { got: { csi: '+44 20' } },
      });
      expect(seen).toEqual([
        {
          method: 'POST',
          url: '/prefix/v1/echo',
          type: 'application/json',
          body: '{"csi":"+44 20"}',
        },
      ]);
      expect(responses).toEqual([
        {
          method: 'POST',
          path: '/v1/echo',
          status: 201,
          octets: Buffer.byteLength('{"got":{"csi":"+44 20"}}'),
        },
      ]);
    } finally {
      await api.close();
    }
  });

  it('sends query parameters form-encoded and keeps them out of the URL it reports', async () => {
    let query = '';
    routes.set('/v1/query', (req, res) => {
      query = (req.url ?? '').split('?')[1] ?? '';
      json(res, 200, {});
    });
    const api = client();
    try {
      const answer = await api.send({
        method: 'GET',
        path: '/v1/query',
        query: { csi: '+44 20 7946 0018' },
      });
      expect(query).toBe('csi=%2B44+20+7946+0018');
      expect(answer.url).toBe(`${base}/v1/query`);
    } finally {
      await api.close();
    }
  });

  it("turns the API's refusal into its error with the code, status, detail and Retry-After", async () => {
    routes.set('/v1/refuse', (_req, res) =>
      json(
        res,
        429,
        { error: { code: 'ERR_EXAMPLE_REFUSED', message: 'slow down', detail: 'csi' } },
        { 'retry-after': '42' },
      ),
    );
    const api = client();
    try {
      const error = await rejection(api.send({ method: 'POST', path: '/v1/refuse' }));
      expect(error.code).toBe('ERR_EXAMPLE_REFUSED');
      expect(error.message).toBe('slow down');
      expect(error.status).toBe(429);
      expect(error.detail).toBe('csi');
      expect(error.retryAfter).toBe(42);
      expect(error.url).toBe(`${base}/v1/refuse`);
    } finally {
      await api.close();
    }
  });

  it('does not take a code the API does not have from a refusal', async () => {
    routes.set('/v1/strange', (_req, res) =>
      json(res, 400, { error: { code: 'ERR_MADE_UP', message: 'believe me' } }),
    );
    const api = client();
    try {
      const error = await rejection(api.send({ method: 'POST', path: '/v1/strange' }));
      expect(error.code).toBe('ERR_API_RESPONSE');
      expect(error.status).toBe(400);
      expect(error.message).toContain('ERR_MADE_UP');
    } finally {
      await api.close();
    }
  });

  it('returns a body that is not JSON, or JSON without the error shape, for the API client to judge', async () => {
    routes.set('/v1/html', (_req, res) =>
      res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>bad gateway</h1>'),
    );
    routes.set('/v1/other', (_req, res) => json(res, 500, { error: 'no' }));
    const api = client();
    try {
      expect(await api.send({ method: 'GET', path: '/v1/html' })).toMatchObject({
        status: 502,
        value: undefined,
      });
      expect(await api.send({ method: 'GET', path: '/v1/other' })).toMatchObject({
        status: 500,
        value: { error: 'no' },
      });
    } finally {
      await api.close();
    }
  });

  it('refuses a body over the bound, declared or streamed', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(4096) });
    routes.set('/v1/declared', (_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(big),
    );
    let written = 0;
    routes.set('/v1/streamed', (_req, res) => {
      // No content-length: chunks until the client goes away, at most 1 MiB.
      res.writeHead(200, { 'content-type': 'application/json' });
      const more = (): void => {
        while (written < 1024 * 1024 && res.write(`"${'x'.repeat(1022)}",`)) written += 1024;
        if (written < 1024 * 1024 && !res.destroyed) res.once('drain', more);
        else res.end();
      };
      res.write('[');
      more();
    });
    const api = client();
    try {
      const declared = await rejection(api.send({ method: 'GET', path: '/v1/declared' }));
      expect(declared.code).toBe('ERR_API_RESPONSE');
      expect(declared.message).toBe(`${base}/v1/declared answered more than 1024 octets`);
      const streamed = await rejection(api.send({ method: 'GET', path: '/v1/streamed' }));
      expect(streamed.code).toBe('ERR_API_RESPONSE');
      expect(streamed.message).toBe(`${base}/v1/streamed answered more than 1024 octets`);
      // A larger bound for one request.
      const answer = await api.send({
        method: 'GET',
        path: '/v1/declared',
        maxResponseOctets: 8192,
      });
      expect(answer.status).toBe(200);
    } finally {
      await api.close();
    }
  });

  it('gives up on a server that never answers', async () => {
    routes.set('/v1/silent', () => undefined);
    const api = client({ timeoutMs: 200 });
    try {
      const error = await rejection(api.send({ method: 'GET', path: '/v1/silent' }));
      expect(error.code).toBe('ERR_API_TIMEOUT');
      expect(error.status).toBeUndefined();
    } finally {
      await api.close();
    }
  });

  it('gives up on a body sent one octet at a time: the deadline is not pushed back', async () => {
    const drips = new Set<NodeJS.Timeout>();
    routes.set('/v1/drip', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('[');
      const drip = setInterval(() => {
        if (res.destroyed) clearInterval(drip);
        else res.write(' ');
      }, 20);
      drips.add(drip);
    });
    // Each octet comes well within undici's own inactivity bound (200 ms).
    const api = client({ timeoutMs: 200 });
    try {
      const error = await rejection(api.send({ method: 'GET', path: '/v1/drip' }));
      expect(error.code).toBe('ERR_API_TIMEOUT');
    } finally {
      for (const drip of drips) clearInterval(drip);
      await api.close();
    }
  });

  it('reports a server that cannot be reached', async () => {
    const closed = createServer();
    const port = await listen(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const api = createApiClient({
      url: `http://127.0.0.1:${port}`,
      connectTimeoutMs: 1000,
      timeoutMs: 1000,
      maxResponseOctets: 1024,
      connections: 8,
      codes: new Set(),
      error: ExampleClientError,
    });
    try {
      const error = await rejection(api.send({ method: 'GET', path: '/v1/x' }));
      expect(error.code).toBe('ERR_API_UNREACHABLE');
      expect(error.message).toMatch(/^cannot reach http:\/\/127\.0\.0\.1:\d+: /);
      expect(error.cause).toBeInstanceOf(Error);
    } finally {
      await api.close();
    }
  });

  it('trusts a server certificate only through the CA it is given', async () => {
    const ca = await createLocalCa({ commonName: 'api client test CA' });
    const leaf = await issueServerCertificate(ca, {
      hostnames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    const tls = createHttpsServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) =>
      json(res, 200, { ok: true }),
    );
    const url = `https://127.0.0.1:${await listen(tls)}`;
    const options = {
      url,
      connectTimeoutMs: 1000,
      timeoutMs: 1000,
      maxResponseOctets: 1024,
      connections: 8,
      codes: new Set<string>(),
      error: ExampleClientError,
    };
    const untrusting = createApiClient(options);
    const trusting = createApiClient({ ...options, ca: ca.certPem });
    try {
      const error = await rejection(untrusting.send({ method: 'GET', path: '/' }));
      expect(error.code).toBe('ERR_API_UNREACHABLE');
      expect((await trusting.send({ method: 'GET', path: '/' })).value).toEqual({ ok: true });
    } finally {
      await Promise.all([untrusting.close(), trusting.close()]);
      await new Promise<void>((resolve) => tls.close(() => resolve()));
    }
  });

  it('answers each of many concurrent callers with its own response', async () => {
    routes.set('/v1/echo-slowly', (_req, res, body) => {
      const { n } = JSON.parse(body) as { n: number };
      setTimeout(() => json(res, 200, { n }), (n * 7) % 50);
    });
    const api = client();
    try {
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, n) =>
          api.send({ method: 'POST', path: '/v1/echo-slowly', body: { n } }),
        ),
      );
      expect(answers.map((a) => a.value)).toEqual(Array.from({ length: 50 }, (_, n) => ({ n })));
    } finally {
      await api.close();
    }
  });

  it('refuses a base URL that is not http or https', () => {
    for (const url of ['ftp://dp.example', 'not a url']) {
      expect(() => client({ url })).toThrow(TypeError);
    }
  });
});
