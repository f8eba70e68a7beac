import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ADMIN_CONNECTIONS_PER_CLIENT,
  createLocalCa,
  issueServerCertificate,
  parseConfig,
} from '@mimi-discovery/common';
import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryStore, dpConfigSchema, startDp } from '../src/index.js';
import { PROVER_SEED, fakeClock, zoneInit } from './store-battery.js';

const root = mkdtempSync(join(tmpdir(), 'mimi-server-limits-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('a DP started from its config', () => {
  it('gives each listener the connection limits of `limits`, and counts refusals in its metrics', async () => {
    const ca = await createLocalCa();
    const leaf = await issueServerCertificate(ca, { hostnames: [], ipAddresses: ['127.0.0.1'] });
    const cert = join(root, 'cert.pem');
    const key = join(root, 'key.pem');
    writeFileSync(cert, leaf.certPem);
    writeFileSync(key, leaf.keyPem, { mode: 0o600 });
    const store = createMemoryStore({ proverSeed: PROVER_SEED, now: fakeClock().now });
    await store.addZone(zoneInit());
    const config = parseConfig(dpConfigSchema, {
      role: 'dp',
      dataDir: root,
      listen: { tcp: 0, doh: 0, api: 0, admin: 0 },
      tls: { cert, key },
      limits: {
        tcp: { connectionsPerClient: 2 },
        doh: { connectionsPerClient: 3 },
        api: { connectionsPerClient: 1 },
      },
      log: { level: 'error' },
    });
    const provider = await startDp(config, { store, now: fakeClock().now });
    const sockets: Socket[] = [];
    try {
      const listeners = [
        ['tcp', provider.dns?.tcp, 2],
        ['doh', provider.dns?.doh, 3],
        ['api', provider.api, 1],
      ] as const;
      // From 127.0.0.2, one connection more than each share: the last is refused.
      for (const [, listener, share] of listeners) {
        for (let i = 0; i <= share; i++) {
          const socket = connect({
            host: '127.0.0.1',
            port: listener?.port ?? 0,
            localAddress: '127.0.0.2',
          });
          socket.on('error', () => undefined);
          sockets.push(socket);
        }
      }
      const refused = (): number[] =>
        listeners.map(([, l]) => l?.connectionStats().refused.client_limit ?? -1);
      for (let i = 0; i < 500 && refused().join() !== '1,1,1'; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(refused()).toEqual([1, 1, 1]);
      expect(listeners.map(([, l]) => l?.connectionStats().open)).toEqual([2, 3, 1]);
      const text = await (await fetch(`${provider.admin?.url ?? ''}/metrics`)).text();
      for (const [name] of listeners) {
        expect(text).toContain(
          `authoritative_connections_refused_total{listener="${name}",reason="client_limit"} 1\n`,
        );
      }
      expect(text).not.toMatch(/127\.0\.0\./);
    } finally {
      for (const socket of sockets) socket.destroy();
      await provider.close();
    }
  });

  it('caps the admin port per client too, and counts its refusals under listener "admin"', async () => {
    const store = createMemoryStore({ proverSeed: PROVER_SEED, now: fakeClock().now });
    await store.addZone(zoneInit());
    const config = parseConfig(dpConfigSchema, {
      role: 'dp',
      dataDir: root,
      listen: { admin: 0 },
      log: { level: 'error' },
    });
    const provider = await startDp(config, { store, now: fakeClock().now });
    const sockets: Socket[] = [];
    try {
      const admin = provider.admin;
      expect(admin).toBeDefined();
      // From 127.0.0.2, one connection more than its share: the last is refused at accept.
      for (let i = 0; i <= ADMIN_CONNECTIONS_PER_CLIENT; i++) {
        const socket = connect({
          host: '127.0.0.1',
          port: admin?.port ?? 0,
          localAddress: '127.0.0.2',
        });
        socket.on('error', () => undefined);
        sockets.push(socket);
      }
      const refused = (): number => admin?.connectionStats().refused.client_limit ?? -1;
      for (let i = 0; i < 500 && refused() !== 1; i++) await new Promise((r) => setTimeout(r, 10));
      expect(refused()).toBe(1);
      expect(admin?.connectionStats().open).toBe(ADMIN_CONNECTIONS_PER_CLIENT);
      // 127.0.0.1 is another client: it is served, and sees the refusal counted.
      const text = await (await fetch(`${admin?.url ?? ''}/metrics`)).text();
      expect(text).toContain(
        'authoritative_connections_refused_total{listener="admin",reason="client_limit"} 1\n',
      );
    } finally {
      for (const socket of sockets) socket.destroy();
      await provider.close();
    }
  });
});
