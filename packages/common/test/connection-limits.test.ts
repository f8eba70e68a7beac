import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  TransportError,
  clientKeyOf,
  connectionLimitsFor,
  createConnectionGate,
  type ConnectionGate,
  type ConnectionLimits,
  type ConnectionScheduler,
  type TrackedConnection,
} from '../src/index.js';

// The gate on a real TCP listener on 127.0.0.1. Linux routes all of 127.0.0.0/8 to the loopback
// interface, so a client socket bound to 127.0.0.2 is another client than one bound to
// 127.0.0.1.

/** Timers fired by the test: the idle timeouts without waiting for them. */
function manualTimers(): { schedule: ConnectionScheduler; pending(): number; fireAll(): void } {
  const timers = new Set<() => void>();
  return {
    schedule: (_ms, fn) => {
      const entry = (): void => fn();
      timers.add(entry);
      return () => timers.delete(entry);
    },
    pending: () => timers.size,
    fireAll: () => {
      for (const fn of [...timers]) {
        timers.delete(fn);
        fn();
      }
    },
  };
}

/** What the server decided for one client connection. */
interface Connected {
  readonly client: Socket;
  readonly connection: TrackedConnection | undefined;
  /** Resolves when the client sees its connection closed. */
  readonly closed: Promise<void>;
  isClosed(): boolean;
}

interface GatedServer {
  readonly gate: ConnectionGate;
  /** Connects from `from` and waits for the gate's decision. */
  connectFrom(from: string): Promise<Connected>;
  close(): Promise<void>;
}

const servers: GatedServer[] = [];
const clients: Socket[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function gatedServer(
  limits: ConnectionLimits,
  schedule?: ConnectionScheduler,
): Promise<GatedServer> {
  const gate = createConnectionGate(limits, {
    listener: 'test',
    ...(schedule === undefined ? {} : { schedule }),
  });
  const decisions: Array<(connection: TrackedConnection | undefined) => void> = [];
  const server: Server = createServer((socket) => {
    socket.on('error', () => undefined);
    const connection = gate.admit(socket);
    decisions.shift()?.(connection);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const gated: GatedServer = {
    gate,
    async connectFrom(from) {
      const decided = new Promise<TrackedConnection | undefined>((resolve) =>
        decisions.push(resolve),
      );
      const client = connect({ host: '127.0.0.1', port, localAddress: from });
      clients.push(client);
      client.on('error', () => undefined);
      let isClosed = false;
      const closed = new Promise<void>((resolve) =>
        client.once('close', () => {
          isClosed = true;
          resolve();
        }),
      );
      const connection = await decided;
      return { client, connection, closed, isClosed: () => isClosed };
    },
    close: () =>
      new Promise<void>((resolve) => {
        gate.close();
        server.close(() => resolve());
      }),
  };
  servers.push(gated);
  return gated;
}

describe('clientKeyOf', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::99', '2001:db8:1:2::/64'],
    ['2001:DB8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
    ['unknown', 'unknown'],
  ])('keys %s as %s', (address, key) => {
    expect(clientKeyOf(address)).toBe(key);
  });
});

describe('the connection gate', () => {
  it('admits a client up to its share, closes the next at once, and still admits another client', async () => {
    const server = await gatedServer({ maxConnections: 16, connectionsPerClient: 4 });
    const held: Connected[] = [];
    for (let i = 0; i < 4; i++) held.push(await server.connectFrom('127.0.0.2'));
    expect(held.every((c) => c.connection?.client === '127.0.0.2')).toBe(true);
    const extra = await server.connectFrom('127.0.0.2');
    expect(extra.connection).toBeUndefined();
    await extra.closed;
    const other = await server.connectFrom('127.0.0.1');
    expect(other.connection?.client).toBe('127.0.0.1');
    expect(server.gate.stats()).toMatchObject({
      open: 5,
      clients: 2,
      refused: { client_limit: 1, capacity: 0 },
    });
    expect(held.some((c) => c.isClosed())).toBe(false);
  });

  it('when full, evicts the connection idle the longest of the client holding the most', async () => {
    const server = await gatedServer({ maxConnections: 6, connectionsPerClient: 4 });
    const heavy: Connected[] = [];
    for (let i = 0; i < 4; i++) heavy.push(await server.connectFrom('127.0.0.2'));
    const light = [await server.connectFrom('127.0.0.3'), await server.connectFrom('127.0.0.3')];
    // The heavy client's first connection works, then goes idle after the other three did.
    heavy[0]?.connection?.begin();
    heavy[0]?.connection?.end();
    const newcomer = await server.connectFrom('127.0.0.1');
    expect(newcomer.connection).toBeDefined();
    await heavy[1]?.closed;
    expect(heavy.map((c) => c.isClosed())).toEqual([false, true, false, false]);
    expect(light.some((c) => c.isClosed())).toBe(false);
    expect(server.gate.stats()).toMatchObject({ open: 6, closed: { evicted: 1 } });
  });

  it('when full of busy connections, refuses a newcomer and never holds more than the cap', async () => {
    const server = await gatedServer({ maxConnections: 6, connectionsPerClient: 3 });
    const busy: Connected[] = [];
    for (const from of ['127.0.0.2', '127.0.0.3']) {
      for (let i = 0; i < 3; i++) busy.push(await server.connectFrom(from));
    }
    for (const c of busy) c.connection?.begin();
    for (let i = 0; i < 20; i++) {
      const refused = await server.connectFrom(`127.0.0.${4 + (i % 5)}`);
      expect(refused.connection).toBeUndefined();
      expect(server.gate.stats().open).toBe(6);
    }
    expect(server.gate.stats().refused.capacity).toBe(20);
    // One request ends: that connection is idle, and the next newcomer takes its place.
    busy[0]?.connection?.end();
    const admitted = await server.connectFrom('127.0.0.1');
    expect(admitted.connection).toBeDefined();
    await busy[0]?.closed;
    expect(server.gate.stats().open).toBe(6);
  });

  it('evicts only for a client holding fewer connections than the owner of the victim', async () => {
    const server = await gatedServer({ maxConnections: 4, connectionsPerClient: 3 });
    const a = [
      await server.connectFrom('127.0.0.2'),
      await server.connectFrom('127.0.0.2'),
      await server.connectFrom('127.0.0.2'),
    ];
    const b = [await server.connectFrom('127.0.0.3')];
    // B holds 1 and A holds 3: one of A's goes to B.
    b.push(await server.connectFrom('127.0.0.3'));
    expect(b[1]?.connection).toBeDefined();
    await a[0]?.closed;
    // Now both hold 2: neither evicts the other.
    const third = await server.connectFrom('127.0.0.3');
    expect(third.connection).toBeUndefined();
    const again = await server.connectFrom('127.0.0.2');
    expect(again.connection).toBeUndefined();
    expect(server.gate.stats()).toMatchObject({
      open: 4,
      refused: { capacity: 2 },
      closed: { evicted: 1 },
    });
  });

  it('lets attackers whose shares add up past the cap neither keep a newcomer out nor evict it', async () => {
    const server = await gatedServer({ maxConnections: 16, connectionsPerClient: 4 });
    const attackers = [
      '127.0.0.2',
      '127.0.0.3',
      '127.0.0.4',
      '127.0.0.5',
      '127.0.0.6',
      '127.0.0.7',
    ];
    // Six attackers at four each would be 24 connections; the listener holds 16.
    for (const from of attackers) {
      for (let i = 0; i < 4; i++) await server.connectFrom(from);
    }
    expect(server.gate.stats().open).toBe(16);
    const victim = await server.connectFrom('127.0.0.1');
    expect(victim.connection).toBeDefined();
    // The attackers keep reconnecting: each takes a connection from the heaviest of them, never
    // the newcomer's single one.
    for (let round = 0; round < 40; round++) {
      await server.connectFrom(attackers[round % attackers.length] as string);
      expect(server.gate.stats().open).toBeLessThanOrEqual(16);
    }
    expect(victim.isClosed()).toBe(false);
    expect(server.gate.stats().clients).toBeGreaterThanOrEqual(5);
  });

  it('closes an idle connection after idleTimeoutMs, never a busy one, and counts from the end of its last request', async () => {
    const timers = manualTimers();
    const server = await gatedServer(
      { maxConnections: 4, connectionsPerClient: 4, idleTimeoutMs: 1000 },
      timers.schedule,
    );
    const idle = await server.connectFrom('127.0.0.2');
    const busy = await server.connectFrom('127.0.0.2');
    busy.connection?.begin();
    expect(timers.pending()).toBe(1);
    timers.fireAll();
    await idle.closed;
    expect(busy.isClosed()).toBe(false);
    // Its request done, the busy one is idle from now, with a timer of its own.
    busy.connection?.end();
    expect(timers.pending()).toBe(1);
    timers.fireAll();
    await busy.closed;
    expect(server.gate.stats()).toMatchObject({ open: 0, closed: { idle_timeout: 2 } });
  });

  it('closes every connection when closed, and admits none afterwards', async () => {
    const server = await gatedServer({ maxConnections: 4, connectionsPerClient: 2 });
    const held = [await server.connectFrom('127.0.0.2'), await server.connectFrom('127.0.0.3')];
    server.gate.close();
    await Promise.all(held.map((c) => c.closed));
    const late = await server.connectFrom('127.0.0.4');
    expect(late.connection).toBeUndefined();
    expect(server.gate.stats().open).toBe(0);
  });

  it.each([
    [{ maxConnections: 4, connectionsPerClient: 5 }, 'must not exceed'],
    [{ maxConnections: 0, connectionsPerClient: 1 }, 'test.maxConnections must be an integer'],
    [{ maxConnections: 4, connectionsPerClient: 1.5 }, 'test.connectionsPerClient must be'],
    [{ maxConnections: 4, connectionsPerClient: 1, idleTimeoutMs: 0 }, 'test.idleTimeoutMs must'],
  ])('refuses the limits %j', (limits, message) => {
    let error: unknown;
    try {
      createConnectionGate(limits, { listener: 'test' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(TransportError);
    expect((error as TransportError).code).toBe('ERR_TRANSPORT_CONFIG');
    expect((error as TransportError).message).toContain(message);
  });
});

describe('connectionLimitsFor', () => {
  const defaults: ConnectionLimits = {
    maxConnections: 256,
    connectionsPerClient: 32,
    idleTimeoutMs: 10_000,
  };

  it.each<[string, Parameters<typeof connectionLimitsFor>[0], ConnectionLimits]>([
    ['nothing configured', {}, defaults],
    [
      'a small cap alone: the per-client default shrinks to it',
      { maxConnections: 8 },
      { maxConnections: 8, connectionsPerClient: 8, idleTimeoutMs: 10_000 },
    ],
    [
      'a per-client cap alone',
      { connectionsPerClient: 2 },
      { maxConnections: 256, connectionsPerClient: 2, idleTimeoutMs: 10_000 },
    ],
    [
      'every key, absent ones given as undefined',
      { maxConnections: 64, connectionsPerClient: undefined, idleTimeoutMs: 500 },
      { maxConnections: 64, connectionsPerClient: 32, idleTimeoutMs: 500 },
    ],
  ])('fills in the defaults: %s', (_what, configured, expected) => {
    expect(connectionLimitsFor(configured, defaults)).toEqual(expected);
  });

  it('leaves out an idle timeout when neither the config nor the defaults have one', () => {
    const limits = connectionLimitsFor({}, { maxConnections: 4, connectionsPerClient: 1 });
    expect(limits).toEqual({ maxConnections: 4, connectionsPerClient: 1 });
    expect('idleTimeoutMs' in limits).toBe(false);
  });
});
