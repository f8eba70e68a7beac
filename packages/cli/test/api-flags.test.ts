import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCliFixture } from './fixture.js';

// What `recipient` and `lookup` print when the server at `--api` or `--resolver` is not the
// API it should be: one line with the command's code, exit 2.

const cli = createCliFixture('api-flags');
const sockets = new Set<Socket>();
let answer: (res: ServerResponse) => void = (res) => res.end();
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.once('end', () => answer(res));
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  cli.cleanup();
});

const json =
  (status: number, value: unknown, headers: Record<string, string> = {}) =>
  (res: ServerResponse): void => {
    res
      .writeHead(status, { 'content-type': 'application/json', ...headers })
      .end(JSON.stringify(value));
  };

describe('a server that is not the API', () => {
  it("recipient: a refusal keeps the API's code and says when to retry", async () => {
    answer = json(
      429,
      { error: { code: 'ERR_RATE_LIMITED', message: 'too many requests; try again later' } },
      { 'retry-after': '30' },
    );
    const result = await cli.run(['recipient', 'prove', '--api', url, '--csi', '+442079460018']);
    expect(result).toMatchObject({
      exitCode: 2,
      stderr:
        'mimi-discovery: too many requests; try again later; retry after 30 s (ERR_RATE_LIMITED)\n',
    });
  });

  it('recipient: an answer that is not the API’s is ERR_CLI_API_RESPONSE', async () => {
    answer = (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<p>hello</p>');
    const html = await cli.run(['recipient', 'prove', '--api', url, '--csi', '+442079460018']);
    expect(html).toMatchObject({
      exitCode: 2,
      stderr: `mimi-discovery: ${url}/v1/prove answered HTTP 200 without a JSON object (ERR_CLI_API_RESPONSE)\n`,
    });
    answer = json(202, { csi: 'tel:+442079460018', channel: 'outbox' });
    const partial = await cli.run(['recipient', 'prove', '--api', url, '--csi', '+442079460018']);
    expect(partial).toMatchObject({
      exitCode: 2,
      stderr: "mimi-discovery: the DP's response has no expiresAt (ERR_CLI_API_RESPONSE)\n",
    });
  });

  it('lookup: an answer that is not the API’s is ERR_CLI_RESOLVER_RESPONSE', async () => {
    answer = (res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>proxy</h1>');
    const html = await cli.run(['lookup', '+442079460018', '--resolver', url]);
    expect(html).toMatchObject({
      exitCode: 2,
      stderr: `mimi-discovery: ${url}/v1/discover answered HTTP 502 without JSON (ERR_CLI_RESOLVER_RESPONSE)\n`,
    });
    answer = json(200, {
      csi: 'tel:+442079460019',
      status: 'none',
      msps: [],
      mappings: [],
      ttl: 60,
    });
    const other = await cli.run(['lookup', '+442079460018', '--resolver', url]);
    expect(other).toMatchObject({
      exitCode: 2,
      stderr: `mimi-discovery: ${url}/v1/discover answered a result for another CSI (ERR_CLI_RESOLVER_RESPONSE)\n`,
    });
  });
});
