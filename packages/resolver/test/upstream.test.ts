import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '@mimi-discovery/common';
import { createUpstream, type NameServer } from '../src/index.js';
import { answerServfail, buildHierarchy, type Hierarchy } from '../../../test/helpers/hierarchy.js';
import { APEX } from '../../../test/helpers/network.js';

let net: Hierarchy;
beforeAll(async () => {
  net = await buildHierarchy();
});
afterAll(async () => {
  await net?.close();
});

/** A UDP port on 127.0.0.1 where nothing listens (bound, read, then released). */
async function deadPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

describe('upstream', () => {
  it('fails over to the next server and then prefers the one that answered', async () => {
    const upstream = createUpstream({ timeoutMs: 500 }, silentLogger);
    const dead: NameServer = {
      name: 'dead',
      endpoint: { kind: 'dns', host: '127.0.0.1', port: await deadPort() },
    };
    const live: NameServer = {
      name: 'live',
      endpoint: { kind: 'dns', host: '127.0.0.1', port: net.root.udp.port },
    };
    try {
      const first = await upstream.query([dead, live], APEX, 'SOA');
      expect(first.kind === 'response' && first.server).toBe(`127.0.0.1:${net.root.udp.port}`);
      const sent = upstream.sent();
      expect(sent).toBe(2);
      const second = await upstream.query([dead, live], APEX, 'SOA');
      expect(second.kind).toBe('response');
      expect(upstream.sent()).toBe(sent + 1);
    } finally {
      await upstream.close();
    }
  });

  it('asks with DO set and RD clear', async () => {
    const upstream = createUpstream({ ca: net.caPem }, silentLogger);
    try {
      const result = await upstream.query(
        [{ name: 'root', endpoint: { kind: 'doh', url: net.root.dohUrl } }],
        APEX,
        'DNSKEY',
      );
      expect(result.kind).toBe('response');
      if (result.kind !== 'response') return;
      expect(result.message.flags.rd).toBe(false);
      expect(result.message.answers.map((rr) => rr.type)).toContain('RRSIG');
    } finally {
      await upstream.close();
    }
  });

  it('tells a zone whose servers cannot be reached from one whose servers answered an error', async () => {
    const upstream = createUpstream({ timeoutMs: 300 }, silentLogger);
    const dead: NameServer = {
      name: 'dead',
      endpoint: { kind: 'dns', host: '127.0.0.1', port: await deadPort() },
    };
    const failing: NameServer = {
      name: 'failing',
      endpoint: { kind: 'dns', host: '127.0.0.1', port: net.phone.udp.port },
    };
    net.phone.tamper = answerServfail;
    try {
      const unreachable = await upstream.query([dead], APEX, 'SOA');
      expect(unreachable).toMatchObject({ kind: 'failed', unreachable: true });
      const answered = await upstream.query([dead, failing], APEX, 'SOA');
      expect(answered).toMatchObject({ kind: 'failed', unreachable: false });
    } finally {
      net.phone.tamper = undefined;
      await upstream.close();
    }
  });
});
