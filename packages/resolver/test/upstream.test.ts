import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '@mimi-discovery/common';
import {
  BACKOFF_INITIAL_MS,
  createUpstream,
  serverId,
  type NameServer,
  type Upstream,
} from '../src/index.js';
import { createFakeClock } from '../../../test/helpers/clock.js';
import {
  answerServfail,
  buildHierarchy,
  type Hierarchy,
  type HierarchyServer,
} from '../../../test/helpers/hierarchy.js';
import { APEX, EMAIL_ZONE } from '../../../test/helpers/network.js';

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
    // Both servers are new, so within the band of each other: a random source that never
    // reorders has them tried in the order given, the dead one first.
    const upstream = createUpstream({ timeoutMs: 500, random: () => 0.999 }, silentLogger);
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

describe('server selection among the servers of one zone', () => {
  /** How long the slow server takes to answer: past the 400 ms band of a loopback server. */
  const SLOW_MS = 700;
  /** mulberry32: a seeded random source, so each run chooses the same way. */
  const seeded = (seed: number) => {
    let a = seed >>> 0;
    return (): number => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  };
  const udp = (server: HierarchyServer): NameServer => ({
    name: server.nameserver,
    endpoint: { kind: 'dns', ...server.udp },
  });
  /** Asks the zone `n` times, one question after another; every one must be answered. */
  async function ask(upstream: Upstream, servers: readonly NameServer[], n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const outcome = await upstream.query(servers, EMAIL_ZONE, 'SOA');
      expect(outcome.kind).toBe('response');
    }
  }

  it('takes a burst of questions that all met a dead server as one failure, and holds back a server that answers garbage', async () => {
    const garbage = await net.startGarbageServer();
    const dead: NameServer = {
      name: 'dead',
      endpoint: { kind: 'dns', host: '127.0.0.1', port: await deadPort() },
    };
    const upstream = createUpstream(
      { timeoutMs: 1000, ca: net.caPem, random: () => 0.999 },
      silentLogger,
    );
    try {
      // Twenty questions at once, each trying the dead server first (the order given).
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, () => upstream.query([dead, udp(net.email)], EMAIL_ZONE, 'SOA')),
      );
      expect(outcomes.every((o) => o.kind === 'response')).toBe(true);
      const state = upstream.serverState(serverId(dead));
      expect(state?.failures).toBe(1);
      expect((state?.heldUntil ?? 0) - (state?.updated ?? 0)).toBeCloseTo(BACKOFF_INITIAL_MS, 3);

      // A server whose every answer is random octets is a failure like silence.
      const hostile: NameServer = { name: 'garbage', endpoint: { kind: 'doh', url: garbage.url } };
      const honest: NameServer = { name: 'root', endpoint: { kind: 'doh', url: net.root.dohUrl } };
      const first = await upstream.query([hostile, honest], APEX, 'SOA');
      expect(first).toMatchObject({ kind: 'response', server: net.root.dohUrl });
      expect(upstream.serverState(garbage.url)?.failures).toBe(1);
      const sent = upstream.sent();
      await upstream.query([hostile, honest], APEX, 'SOA');
      expect(upstream.sent()).toBe(sent + 1);
    } finally {
      await upstream.close();
    }
  });

  it('sends most questions to the fast server, backs off a dead one and takes it back once it answers a probe', async () => {
    // The zone example.com.email.mimi.arpa on three nameservers over one store: ns1 answers at
    // once, ns2 after SLOW_MS, ns3 is down.
    const fast = net.email;
    const slow = await net.addNameserver(fast);
    const dead = await net.addNameserver(fast);
    slow.tamper = async (_query, honest) => {
      await new Promise((resolve) => setTimeout(resolve, SLOW_MS));
      return honest;
    };
    await dead.stop();
    const clock = createFakeClock();
    const upstream = createUpstream(
      { timeoutMs: 1500, now: clock.now, random: seeded(7) },
      silentLogger,
    );
    const servers = [udp(dead), udp(slow), udp(fast)];
    const deadId = serverId(udp(dead));
    const counts = () => ({ fast: fast.queries(), slow: slow.queries(), dead: dead.queries() });
    try {
      const before = counts();
      const sentBefore = upstream.sent();
      await ask(upstream, servers, 20);
      const after = counts();
      // Each server is new at first, within the band: the slow one is asked at most once (it
      // then leaves the band), the dead one once (then it is held back).
      expect(after.slow - before.slow).toBeLessThanOrEqual(1);
      expect(after.fast - before.fast).toBeGreaterThanOrEqual(19);
      expect(upstream.serverState(deadId)).toMatchObject({ failures: 1 });
      expect(upstream.sent() - sentBefore).toBe(21);

      // Held back for BACKOFF_INITIAL_MS: no question goes there, and no probe, before then.
      clock.advance(BACKOFF_INITIAL_MS / 1000 - 0.001);
      await ask(upstream, servers, 5);
      expect(upstream.sent() - sentBefore).toBe(26);
      // Then a question sends it a probe besides; still down, it is held back twice as long.
      clock.advance(0.001);
      await ask(upstream, servers, 1);
      await vi.waitFor(() => expect(upstream.serverState(deadId)?.failures).toBe(2), {
        timeout: 5000,
      });
      expect(upstream.sent() - sentBefore).toBe(28);

      // It comes back: the next probe, 2 × BACKOFF_INITIAL_MS later, finds it answering.
      await dead.start();
      clock.advance((2 * BACKOFF_INITIAL_MS) / 1000);
      const beforeProbe = dead.queries();
      await ask(upstream, servers, 1);
      await vi.waitFor(() => expect(upstream.serverState(deadId)?.failures).toBe(0), {
        timeout: 5000,
      });
      expect(dead.queries()).toBe(beforeProbe + 1);

      // Back in the band beside the fast server, it shares the questions; the slow one gets
      // none (its probe is a minute away).
      const again = counts();
      await ask(upstream, servers, 30);
      const end = counts();
      expect(end.dead - again.dead).toBeGreaterThan(0);
      expect(end.fast - again.fast).toBeGreaterThan(0);
      expect(end.slow - again.slow).toBe(0);
      expect(end.dead - again.dead + end.fast - again.fast).toBe(30);
    } finally {
      slow.tamper = undefined;
      await upstream.close();
    }
  });
});
