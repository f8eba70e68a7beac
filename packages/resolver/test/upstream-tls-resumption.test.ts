import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_DOH_TLS_SESSION_SERVERS,
  createLocalCa,
  decodeMessage,
  encodeMessage,
  issueServerCertificate,
  silentLogger,
} from '@mimi-discovery/common';
import { createUpstream, type NameServer, type UpstreamInit } from '../src/index.js';

// TLS session resumption (RFC 8446 §2.2) of the resolver's DoH connections upstream: each test
// server closes every connection once it has answered, so that each query of the upstream
// opens a new connection, and records for each connection whether it resumed a session.

interface ResumptionServer {
  readonly nameServer: NameServer;
  /** For each connection accepted, in order: whether it resumed a TLS session. */
  readonly resumed: boolean[];
  close(): Promise<void>;
}

let tls: { cert: string; key: string };
let caPem: string;
const servers: ResumptionServer[] = [];

beforeAll(async () => {
  const ca = await createLocalCa({ commonName: 'MIMI resumption test CA' });
  const leaf = await issueServerCertificate(ca, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  tls = { cert: leaf.certPem, key: leaf.keyPem };
  caPem = ca.certPem;
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/**
 * A DoH server on 127.0.0.1 (HTTP/1.1) that answers every query with an empty NOERROR and
 * `connection: close`, so that the client's next query opens a new connection. Servers given the
 * same `ticketKeys` accept each other's tickets.
 */
async function startServer(ticketKeys: Buffer = randomBytes(48)): Promise<ResumptionServer> {
  const resumed: boolean[] = [];
  const server: Server = createServer({ ...tls, ticketKeys }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const query = decodeMessage(Buffer.concat(chunks));
      const response = encodeMessage({ ...query, flags: { ...query.flags, qr: true } });
      res.writeHead(200, { 'content-type': 'application/dns-message', connection: 'close' });
      res.end(Buffer.from(response));
    });
  });
  server.on('secureConnection', (socket: TLSSocket) => resumed.push(socket.isSessionReused()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const running: ResumptionServer = {
    nameServer: {
      name: 'localhost',
      endpoint: { kind: 'doh', url: `https://127.0.0.1:${port}/dns-query` },
    },
    resumed,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  servers.push(running);
  return running;
}

/** Asks `server` one question per call to `ask`, through one upstream made with `init`. */
async function withUpstream(
  init: Partial<UpstreamInit>,
  run: (ask: (server: ResumptionServer) => Promise<void>) => Promise<void>,
): Promise<void> {
  const upstream = createUpstream({ ca: caPem, transport: 'doh', ...init }, silentLogger);
  try {
    await run(async (server) => {
      const outcome = await upstream.query([server.nameServer], 'example.', 'SOA');
      expect(outcome.kind).toBe('response');
    });
  } finally {
    await upstream.close();
  }
}

describe('TLS session resumption upstream', () => {
  it('resumes a session on each new connection to the same DoH server after the first', async () => {
    const server = await startServer();
    await withUpstream({}, async (ask) => {
      await ask(server);
      await ask(server);
      await ask(server);
    });
    expect(server.resumed).toEqual([false, true, true]);
  });

  it('makes a full handshake on every connection when resumption is off', async () => {
    const server = await startServer();
    await withUpstream({ tlsSessionServers: 0 }, async (ask) => {
      await ask(server);
      await ask(server);
    });
    expect(server.resumed).toEqual([false, false]);
  });

  it("never offers one server's session to another, even one that would accept it", async () => {
    const keys = randomBytes(48);
    const first = await startServer(keys);
    const second = await startServer(keys);
    await withUpstream({}, async (ask) => {
      await ask(first);
      await ask(second);
      await ask(second);
    });
    expect(first.resumed).toEqual([false]);
    expect(second.resumed).toEqual([false, true]);
  });

  it('keeps the sessions of at most tlsSessionServers servers, dropping the least recently used', async () => {
    expect(DEFAULT_DOH_TLS_SESSION_SERVERS).toBeGreaterThan(1);
    const keys = randomBytes(48);
    const [a, b] = [await startServer(keys), await startServer(keys)];
    await withUpstream({ tlsSessionServers: 1 }, async (ask) => {
      await ask(a);
      await ask(b); // a's tickets are dropped for b's
      await ask(a);
    });
    expect(a.resumed).toEqual([false, false]);
    const [c, d] = [await startServer(keys), await startServer(keys)];
    await withUpstream({ tlsSessionServers: 2 }, async (ask) => {
      await ask(c);
      await ask(d);
      await ask(c);
    });
    expect(c.resumed).toEqual([false, true]);
  });
});
