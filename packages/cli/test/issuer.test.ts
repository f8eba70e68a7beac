import { X509Certificate } from 'node:crypto';
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { join } from 'node:path';
import {
  createLocalCa,
  createTokenRequest,
  issueServerCertificate,
  tokenChallenge,
  tokenKeyFromSpki,
  verifyToken,
} from '@mimi-discovery/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListenerJson } from '../src/commands/serve.js';
import type { Hangups } from '../src/index.js';
import { createCliFixture, serveCommand } from './fixture.js';

// `issuer add-user` and `issuer serve` run in-process: a user added to the config file gets a
// token from the served issuer with the credential printed once, and bad input changes nothing.

const cli = createCliFixture('issuer');
let ca = '';
let localCaPair = { certPem: '', keyPem: '' };

function post(
  url: string,
  headers: Record<string, string>,
  body: Uint8Array,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers, ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(Buffer.from(body));
  });
}

beforeAll(async () => {
  const localCa = await createLocalCa();
  const leaf = await issueServerCertificate(localCa, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  ca = localCa.certPem;
  localCaPair = localCa;
  writeFileSync(join(cli.dir, 'issuer-cert.pem'), leaf.certPem);
  writeFileSync(join(cli.dir, 'issuer-key.pem'), leaf.keyPem);
  writeFileSync(
    join(cli.dir, 'issuer.json'),
    `${JSON.stringify({
      listen: { api: 0, admin: 0 },
      tls: { cert: 'issuer-cert.pem', key: 'issuer-key.pem' },
      dataDir: 'issuer-data',
      keyDir: 'issuer-keys',
      tokensPerPeriod: 2,
      log: { level: 'silent' },
    })}\n`,
  );
});

afterAll(() => {
  cli.cleanup();
});

describe('mimi-discovery issuer', () => {
  it('adds a user, printing the credential once and storing its SHA-256 only', async () => {
    const out = await cli.json<{ id: string; credential: string }>([
      'issuer',
      'add-user',
      '--config',
      'issuer.json',
      '--id',
      'alice',
    ]);
    expect(out.id).toBe('alice');
    const stored = readFileSync(join(cli.dir, 'issuer.json'), 'utf8');
    expect(stored).not.toContain(out.credential);
    const users = cli.readJson<{ users: { id: string; credentialSha256: string }[] }>(
      'issuer.json',
    ).users;
    expect(users.map((u) => u.id)).toEqual(['alice']);
    expect(users[0]?.credentialSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('writes a credential file 0600 on request, and refuses to overwrite it', async () => {
    await cli.ok([
      'issuer',
      'add-user',
      '--config',
      'issuer.json',
      '--id',
      'bob',
      '--credential-out',
      'bob.credential',
    ]);
    expect(statSync(join(cli.dir, 'bob.credential')).mode & 0o777).toBe(0o600);
    const again = await cli.run([
      'issuer',
      'add-user',
      '--config',
      'issuer.json',
      '--id',
      'carol',
      '--credential-out',
      'bob.credential',
    ]);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(/ERR_CLI_EXISTS/);
  });

  it('refuses a user that exists or a bad id, leaving the config as it was', async () => {
    const before = readFileSync(join(cli.dir, 'issuer.json'), 'utf8');
    const dup = await cli.run(['issuer', 'add-user', '--config', 'issuer.json', '--id', 'alice']);
    expect([dup.exitCode, dup.stderr]).toEqual([1, expect.stringMatching(/exists already/)]);
    const bad = await cli.run([
      'issuer',
      'add-user',
      '--config',
      'issuer.json',
      '--id',
      'no spaces',
    ]);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/users\[\d\]\.id/);
    const missing = await cli.run(['issuer', 'serve', '--config', 'nothing.json']);
    expect([missing.exitCode, missing.stderr]).toEqual([
      1,
      expect.stringMatching(/ERR_CONFIG_READ/),
    ]);
    expect(readFileSync(join(cli.dir, 'issuer.json'), 'utf8')).toBe(before);
  });

  it('serves tokens to an added user until its cap', async () => {
    const { credential } = await cli.json<{ credential: string }>([
      'issuer',
      'add-user',
      '--config',
      'issuer.json',
      '--id',
      'dave',
    ]);
    const running = await serveCommand<ListenerJson>(
      cli,
      ['issuer', 'serve'],
      ['--config', 'issuer.json'],
    );
    try {
      const { listeners } = running;
      expect(listeners.map((l) => l.listener)).toEqual(['api', 'admin']);
      const api = listeners[0]?.url ?? '';
      const file = cli.readJson<{
        keys: { config: string; notBefore: number; notAfter: number }[];
      }>('issuer-keys/issuer-public-keys.json');
      const published = file.keys.map((k) =>
        tokenKeyFromSpki(
          new Uint8Array(Buffer.from(k.config, 'base64url')),
          k.notBefore,
          k.notAfter,
        ),
      );
      const challenge = tokenChallenge('localhost:8463', 'resolver.test:8453');
      const statuses: number[] = [];
      for (let i = 0; i < 3; i += 1) {
        const pending = await createTokenRequest(challenge, published[0]?.spki ?? new Uint8Array());
        const reply = await post(
          `${api}/token-request`,
          {
            authorization: `Bearer ${credential}`,
            'content-type': 'application/private-token-request',
          },
          pending.request,
        );
        statuses.push(reply.status);
        if (reply.status === 200) {
          const token = await pending.finalize(new Uint8Array(reply.body));
          const nowS = Math.floor(Date.now() / 1000);
          await expect(verifyToken(token, challenge, published, nowS)).resolves.toBeDefined();
        }
      }
      expect(statuses).toEqual([200, 200, 429]);
    } finally {
      expect((await running.stop()).exitCode).toBe(0);
    }
  });
});

describe('issuer serve on SIGHUP', () => {
  /** The fingerprint of the certificate a new connection to `port` gets. */
  function served(port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
        resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
        socket.destroy();
      });
      socket.on('error', reject);
    });
  }

  it('serves a renewed certificate to new connections, and ends cleanly', async () => {
    const listeners = new Set<() => void>();
    const hangups: Hangups = {
      subscribe(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    const running = await serveCommand<ListenerJson>(
      cli,
      ['issuer', 'serve'],
      ['--config', 'issuer.json'],
      { hangups },
    );
    try {
      const port = running.listener('api').port;
      const renewed = await issueServerCertificate(localCaPair, {
        hostnames: ['localhost'],
        ipAddresses: ['127.0.0.1'],
      });
      const expected = new X509Certificate(renewed.certPem).fingerprint256;
      expect(await served(port)).not.toBe(expected);
      writeFileSync(join(cli.dir, 'issuer-key.pem.new'), renewed.keyPem, { mode: 0o600 });
      writeFileSync(join(cli.dir, 'issuer-cert.pem.new'), renewed.certPem);
      renameSync(join(cli.dir, 'issuer-key.pem.new'), join(cli.dir, 'issuer-key.pem'));
      renameSync(join(cli.dir, 'issuer-cert.pem.new'), join(cli.dir, 'issuer-cert.pem'));
      expect(listeners.size).toBe(1);
      for (const listener of listeners) listener();
      const deadline = Date.now() + 10_000;
      while ((await served(port)) !== expected) {
        if (Date.now() > deadline) throw new Error('the renewed certificate is not served');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      expect((await running.stop()).exitCode).toBe(0);
    }
    expect(listeners.size).toBe(0);
  });
});
