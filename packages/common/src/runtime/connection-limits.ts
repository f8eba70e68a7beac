/**
 * Connection limits shared by every connection-oriented listener (DNS over TCP, DoH, the
 * registration API, the resolver's JSON API): a cap per client, a cap per listener, and an idle
 * timeout that bytes cannot reset. Each listener puts one {@link ConnectionGate} in front of its
 * server and tells it when a connection is busy.
 *
 * Worked example, a listener with `maxConnections` 16 and `connectionsPerClient` 4:
 *
 * - 127.0.0.2 opens 6 connections: 4 are admitted, the 5th and the 6th are closed as soon as
 *   they are accepted (`client_limit`), before any TLS or HTTP work is done for them.
 * - 127.0.0.3, 127.0.0.4 and 127.0.0.5 open 4 each: the listener is full.
 * - 127.0.0.1 connects: the gate closes the connection idle the longest of the client holding
 *   the most (each holds 4, more than the newcomer's 0) and admits the newcomer. Had every
 *   connection been busy, the newcomer would have been refused (`capacity`).
 *
 * Rules:
 *
 * - A client is an IPv4 address, or an IPv6 /64 prefix ({@link clientKeyOf}): one subscriber
 *   usually holds a whole /64 (RFC 6177), so counting single IPv6 addresses would let it open
 *   2^64 times its share.
 * - A client holding `connectionsPerClient` connections has every further one closed at accept
 *   (RFC 7766 §6.2.2: servers may limit concurrent connections per client address or subnet,
 *   loosely, since one address can be many clients behind NAT).
 * - At `maxConnections`, a newcomer is admitted only by evicting the connection idle the
 *   longest of the client holding the most connections, and only if that client holds more
 *   than the newcomer's client; otherwise the newcomer is refused. This is RFC 7766 §6.2.3
 *   ("servers MAY use zero timeouts when they are experiencing heavy load or are under attack")
 *   applied where it matters: to the idle connections of the heaviest holder, when a connection
 *   is wanted.
 * - A connection is busy while the server owes it work: a query in flight (TCP), a request
 *   whose response is not done (HTTP/1.1), an open stream (HTTP/2). Otherwise it is idle — also
 *   while its TLS handshake or its request headers are still arriving. An idle connection is
 *   closed `idleTimeoutMs` after it became idle, whatever it sends meanwhile: an attacker
 *   dripping one byte at a time does not reset the timer.
 *
 * What this guarantees a well-behaved client, whatever others do:
 *
 * 1. No client holds more than `connectionsPerClient` connections of a listener.
 * 2. Until `maxConnections / connectionsPerClient` clients (8 with every default) each hold
 *    their whole share, the listener is not full, and every other client is admitted.
 * 3. When it is full, a client is admitted as soon as some client holding more connections than
 *    it has an idle one; a connection is only ever evicted in favour of a client that holds
 *    fewer connections than its owner. A client using one connection therefore loses it only
 *    to a client that holds none, and only when that connection is the oldest idle one.
 * 4. A full listener of busy connections frees up within the listener's own deadlines (query
 *    and request timeouts), and no new client can add to it meanwhile.
 *
 * Metrics count refusals by reason and closes by reason ({@link ConnectionStats}); labels name
 * the listener and the reason, never a client.
 */
import { isIPv4, isIPv6, type Server, type Socket } from 'node:net';
import { TransportError } from './dns-client.js';
import { silentLogger, type Logger } from './log.js';
import type { MetricsRegistry } from './metrics.js';

/** Why a new connection was closed at accept. */
export type ConnectionRefusal = 'client_limit' | 'capacity';

/** Why the server closed an admitted connection. */
export type ConnectionCloseReason = 'evicted' | 'idle_timeout' | 'message_timeout';

/** Every {@link ConnectionRefusal}, in a fixed order (metrics). */
export const CONNECTION_REFUSALS: readonly ConnectionRefusal[] = Object.freeze([
  'client_limit',
  'capacity',
]);

/** Every {@link ConnectionCloseReason}, in a fixed order (metrics). */
export const CONNECTION_CLOSE_REASONS: readonly ConnectionCloseReason[] = Object.freeze([
  'evicted',
  'idle_timeout',
  'message_timeout',
]);

/**
 * The share of a listener's cap one client holds by default: one eighth, so that at least
 * eight clients must each hold their whole share before a listener is full (guarantee 2).
 */
export const CONNECTIONS_PER_CLIENT_SHARE = 8;

/** The limits of one listener. */
export interface ConnectionLimits {
  /** Most connections at once on the listener. */
  readonly maxConnections: number;
  /** Most connections at once of one client; at most `maxConnections`. */
  readonly connectionsPerClient: number;
  /**
   * An idle connection is closed this long after it became idle (see the module comment);
   * absent: the gate closes no idle connection (the listener has its own deadline).
   */
  readonly idleTimeoutMs?: number;
}

/** Counts of one listener since it started, and its connections now. */
export interface ConnectionStats {
  /** Connections admitted since the start. */
  readonly admitted: number;
  /** Connections open now. */
  readonly open: number;
  /** Clients holding at least one connection now. */
  readonly clients: number;
  /** New connections closed at accept, by reason. */
  readonly refused: Readonly<Record<ConnectionRefusal, number>>;
  /** Admitted connections the server closed, by reason. */
  readonly closed: Readonly<Record<ConnectionCloseReason, number>>;
}

/** Schedules `fn` after `ms` milliseconds; returns a function that cancels it. */
export type ConnectionScheduler = (ms: number, fn: () => void) => () => void;

/** What a gate uses besides its limits. */
export interface ConnectionGateComponents {
  /** The listener's name in logs (`tcp`, `doh`, `api`). */
  readonly listener: string;
  /** Default {@link silentLogger}. */
  readonly log?: Logger;
  /** Timers of the idle timeouts; default `setTimeout`, unreferenced. */
  readonly schedule?: ConnectionScheduler;
}

/** One admitted connection, as the listener reports its work on it. */
export interface TrackedConnection {
  /** The client it is counted against ({@link clientKeyOf}). */
  readonly client: string;
  /** The server took up a request on it: busy until the matching {@link end}. */
  begin(): void;
  /** One request is done; when none is left the connection is idle from now. */
  end(): void;
  /** Closes it, counted under `reason`. */
  close(reason: ConnectionCloseReason): void;
}

/** A socket as a later layer sees it (TLS socket, HTTP/2 session socket): by its addresses. */
export interface SocketAddresses {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
}

/** The admission and idle bookkeeping of one listener. */
export interface ConnectionGate {
  readonly limits: ConnectionLimits;
  /**
   * Admits a just-accepted socket, evicting an idle connection if the listener is full (see
   * the module comment), or destroys it and returns undefined.
   */
  admit(socket: Socket): TrackedConnection | undefined;
  /**
   * The admitted connection under a socket of a later layer (a TLS socket, an HTTP/2 session's
   * socket), found by its addresses; undefined once that connection is closed.
   */
  find(socket: SocketAddresses & object): TrackedConnection | undefined;
  /** Marks the connection under `socket` busy until `exchange` emits `close`. */
  track(socket: (SocketAddresses & object) | undefined, exchange: ClosableExchange): void;
  stats(): ConnectionStats;
  /** Destroys every connection and stops every timer; later connections are refused. */
  close(): void;
}

/** An HTTP response or an HTTP/2 stream: whatever emits `close` once its exchange is over. */
export interface ClosableExchange {
  once(event: 'close', listener: () => void): unknown;
}

/**
 * The key a client is counted under: an IPv4 address as is (also when written as an
 * IPv4-mapped IPv6 address), an IPv6 address by its /64 prefix, since one subscriber usually
 * holds a whole /64 (RFC 6177) and could otherwise rotate through it. Anything else is used as
 * given.
 */
export function clientKeyOf(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] !== undefined && isIPv4(mapped[1])) return mapped[1];
  if (!isIPv6(address)) return address;
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, lowercase without leading zeros. */
function expandIPv6(address: string): string[] {
  const zoneless = address.split('%')[0] ?? address;
  const [head = '', tail] = zoneless.split('::');
  const parts = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const groups = (s: string): string[] =>
    parts(s).flatMap((g) => {
      if (!g.includes('.')) return [g];
      // A trailing dotted quad is two groups.
      const o = g.split('.').map(Number);
      return [
        (((o[0] ?? 0) << 8) | (o[1] ?? 0)).toString(16),
        (((o[2] ?? 0) << 8) | (o[3] ?? 0)).toString(16),
      ];
    });
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const fill = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right].map((g) => parseInt(g, 16).toString(16));
}

/**
 * The per-client cap a listener uses when only its global cap is given: `perClientDefault`,
 * but never more than `maxConnections`.
 */
export function connectionsPerClientFor(
  maxConnections: number,
  connectionsPerClient: number | undefined,
  perClientDefault: number,
): number {
  return connectionsPerClient ?? Math.min(perClientDefault, maxConnections);
}

/**
 * The limits of a listener as configured: each absent key takes the listener's default, and the
 * per-client default never exceeds the configured `maxConnections` ({@link connectionsPerClientFor}),
 * so that a small cap alone is a valid configuration. One function for every listener (TCP, DoH,
 * the HTTPS APIs, admin), so that they read their limits alike.
 */
export function connectionLimitsFor(
  configured: {
    readonly maxConnections?: number | undefined;
    readonly connectionsPerClient?: number | undefined;
    readonly idleTimeoutMs?: number | undefined;
  },
  defaults: ConnectionLimits,
): ConnectionLimits {
  const maxConnections = configured.maxConnections ?? defaults.maxConnections;
  const idleTimeoutMs = configured.idleTimeoutMs ?? defaults.idleTimeoutMs;
  return {
    maxConnections,
    connectionsPerClient: connectionsPerClientFor(
      maxConnections,
      configured.connectionsPerClient,
      defaults.connectionsPerClient,
    ),
    ...(idleTimeoutMs === undefined ? {} : { idleTimeoutMs }),
  };
}

/**
 * The default {@link ConnectionScheduler}: `setTimeout`, unreferenced, so that a pending
 * deadline never keeps the process alive.
 */
export const scheduleUnref: ConnectionScheduler = (ms, fn) => {
  const timer = setTimeout(fn, ms);
  timer.unref();
  return () => clearTimeout(timer);
};

/** The connections of one client; `idle` in the order they became idle, oldest first. */
interface Client {
  readonly key: string;
  readonly all: Set<Entry>;
  readonly idle: Set<Entry>;
}

interface Entry {
  readonly client: Client;
  readonly socket: Socket;
  /** `remoteAddress|remotePort|localAddress|localPort` of the socket, for {@link ConnectionGate.find}. */
  readonly address: string;
  busy: number;
  /** When it last became idle, as a sequence number: smaller is idle longer. */
  idleSince: number;
  cancelIdle: (() => void) | undefined;
  closed: boolean;
  readonly tracked: TrackedConnection;
}

function addressKey(socket: SocketAddresses): string | undefined {
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  if (remoteAddress === undefined || remotePort === undefined) return undefined;
  return `${remoteAddress}|${remotePort}|${localAddress ?? ''}|${localPort ?? ''}`;
}

function checkLimits(listener: string, limits: ConnectionLimits): void {
  const whole = (name: string, value: number | undefined, max: number): void => {
    if (value === undefined) return;
    if (!Number.isInteger(value) || value < 1 || value > max) {
      throw new TransportError(
        'ERR_TRANSPORT_CONFIG',
        `${listener}.${name} must be an integer in 1..${max}, got ${String(value)}`,
      );
    }
  };
  whole('maxConnections', limits.maxConnections, Number.MAX_SAFE_INTEGER);
  whole('connectionsPerClient', limits.connectionsPerClient, Number.MAX_SAFE_INTEGER);
  whole('idleTimeoutMs', limits.idleTimeoutMs, 2 ** 31 - 1);
  if (limits.connectionsPerClient > limits.maxConnections) {
    throw new TransportError(
      'ERR_TRANSPORT_CONFIG',
      `${listener}.connectionsPerClient (${limits.connectionsPerClient}) must not exceed ` +
        `${listener}.maxConnections (${limits.maxConnections})`,
    );
  }
}

/**
 * Creates the gate of one listener. Throws `TransportError` `ERR_TRANSPORT_CONFIG` for a limit
 * that is not a positive integer, or a per-client cap above the listener's cap.
 */
export function createConnectionGate(
  limits: ConnectionLimits,
  components: ConnectionGateComponents,
): ConnectionGate {
  checkLimits(components.listener, limits);
  const { maxConnections, connectionsPerClient, idleTimeoutMs } = limits;
  const log = components.log ?? silentLogger;
  const schedule = components.schedule ?? scheduleUnref;
  const clients = new Map<string, Client>();
  const byAddress = new Map<string, Entry>();
  /** Sockets of later layers already matched to their connection. */
  const found = new WeakMap<object, Entry>();
  const refused: Record<ConnectionRefusal, number> = { client_limit: 0, capacity: 0 };
  const closedBy: Record<ConnectionCloseReason, number> = {
    evicted: 0,
    idle_timeout: 0,
    message_timeout: 0,
  };
  let open = 0;
  let admitted = 0;
  let shut = false;
  /** Set while the listener is full; a warning is logged once per such episode. */
  let full = false;

  let sequence = 0;

  const becomeIdle = (entry: Entry): void => {
    entry.idleSince = sequence++;
    entry.client.idle.add(entry);
    if (idleTimeoutMs !== undefined) {
      entry.cancelIdle = schedule(idleTimeoutMs, () => {
        entry.cancelIdle = undefined;
        close(entry, 'idle_timeout');
      });
    }
  };

  /** Forgets the connection (its socket closed, or the gate closes it). */
  const remove = (entry: Entry): void => {
    if (entry.closed) return;
    entry.closed = true;
    entry.cancelIdle?.();
    entry.cancelIdle = undefined;
    const client = entry.client;
    client.all.delete(entry);
    client.idle.delete(entry);
    if (client.all.size === 0) clients.delete(client.key);
    byAddress.delete(entry.address);
    open--;
    // Hysteresis: warn again only after the listener has drained to three quarters.
    if (full && open <= (maxConnections * 3) / 4) full = false;
  };

  const close = (entry: Entry, reason: ConnectionCloseReason): void => {
    if (entry.closed) return;
    remove(entry);
    closedBy[reason]++;
    log.debug('connection-closed', { listener: components.listener, reason });
    entry.socket.destroy();
  };

  const refuse = (socket: Socket, reason: ConnectionRefusal): undefined => {
    refused[reason]++;
    log.debug('connection-refused', {
      listener: components.listener,
      reason,
      remoteAddress: socket.remoteAddress,
    });
    socket.destroy();
    return undefined;
  };

  /**
   * The connection to evict for a newcomer whose client holds `holding`: the oldest idle one
   * of the client holding the most among those holding more than `holding` and having an idle
   * one; ties go to the connection idle the longest.
   */
  const victim = (holding: number): Entry | undefined => {
    let best: Client | undefined;
    let bestOldest: Entry | undefined;
    for (const client of clients.values()) {
      if (client.all.size <= holding) continue;
      const oldest = client.idle.values().next().value;
      if (oldest === undefined) continue;
      const size = client.all.size;
      const bestSize = best?.all.size ?? 0;
      if (
        best === undefined ||
        size > bestSize ||
        (size === bestSize && oldest.idleSince < (bestOldest?.idleSince ?? Infinity))
      ) {
        best = client;
        bestOldest = oldest;
      }
    }
    return bestOldest;
  };

  const admit = (socket: Socket): TrackedConnection | undefined => {
    if (shut) {
      socket.destroy();
      return undefined;
    }
    const remoteAddress = socket.remoteAddress;
    const address = addressKey(socket);
    // A socket without a peer address has gone already.
    if (remoteAddress === undefined || address === undefined) {
      socket.destroy();
      return undefined;
    }
    const key = clientKeyOf(remoteAddress);
    const holding = clients.get(key)?.all.size ?? 0;
    if (holding >= connectionsPerClient) return refuse(socket, 'client_limit');
    if (open >= maxConnections) {
      const evict = victim(holding);
      if (evict === undefined) return refuse(socket, 'capacity');
      close(evict, 'evicted');
    }
    let client = clients.get(key);
    if (client === undefined) {
      client = { key, all: new Set(), idle: new Set() };
      clients.set(key, client);
    }
    const entry: Entry = {
      client,
      socket,
      address,
      busy: 0,
      idleSince: 0,
      cancelIdle: undefined,
      closed: false,
      tracked: {
        client: key,
        begin: () => {
          if (entry.closed) return;
          if (entry.busy++ === 0) {
            entry.client.idle.delete(entry);
            entry.cancelIdle?.();
            entry.cancelIdle = undefined;
          }
        },
        end: () => {
          if (entry.closed || entry.busy === 0) return;
          if (--entry.busy === 0) becomeIdle(entry);
        },
        close: (reason) => close(entry, reason),
      },
    };
    client.all.add(entry);
    byAddress.set(address, entry);
    open++;
    admitted++;
    if (open >= maxConnections && !full) {
      full = true;
      log.warn('connections-at-capacity', { listener: components.listener, maxConnections });
    }
    becomeIdle(entry);
    socket.once('close', () => remove(entry));
    return entry.tracked;
  };

  const find = (socket: SocketAddresses & object): TrackedConnection | undefined => {
    let entry = found.get(socket);
    if (entry === undefined) {
      const address = addressKey(socket);
      entry = address === undefined ? undefined : byAddress.get(address);
      if (entry === undefined) return undefined;
      found.set(socket, entry);
    }
    return entry.closed ? undefined : entry.tracked;
  };

  return {
    limits: Object.freeze({ ...limits }),
    admit,
    find,
    track(socket, exchange) {
      const connection = socket === undefined ? undefined : find(socket);
      if (connection === undefined) return;
      connection.begin();
      exchange.once('close', () => connection.end());
    },
    stats: () => ({
      admitted,
      open,
      clients: clients.size,
      refused: { ...refused },
      closed: { ...closedBy },
    }),
    close() {
      shut = true;
      for (const entry of [...byAddress.values()]) {
        remove(entry);
        entry.socket.destroy();
      }
    },
  };
}

/**
 * Puts `gate` in front of `server`: every `connection` listener the server has now (node's TLS
 * and HTTP layers install theirs when the server is made) runs only for admitted sockets, so a
 * refused connection costs no TLS handshake and no HTTP parser. Call it once every `connection`
 * listener is added; the server's own `maxConnections` is left unset, since the gate keeps the
 * cap (it can evict, where node could only refuse).
 */
export function guardConnections(server: Server, gate: ConnectionGate): void {
  const listeners = server.listeners('connection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    if (gate.admit(socket) === undefined) return;
    for (const listener of listeners) listener.call(server, socket);
  });
}

/** A bound listener whose connections pass a {@link ConnectionGate}. */
export interface GuardedListener {
  /** The port it is bound to (the one the system chose, for port 0). */
  readonly port: number;
  /** Connections open now, refused and closed by reason since the start. */
  connectionStats(): ConnectionStats;
  /**
   * Stops listening and closes every connection the gate holds; resolves once the server has
   * closed. Later calls return the same promise.
   */
  close(): Promise<void>;
}

/**
 * Binds `server` to `host` and `port` (exclusively, unless `address.shared`: then in a
 * `node:cluster` worker the primary holds the listening socket and hands connections to every
 * worker listening on the same address and port) and returns what every gated listener offers — DNS over TCP and the HTTP servers
 * alike: its port, its counts, and an orderly close. Rejects with the server's own error when it
 * cannot bind; the caller names it.
 */
export async function listenGuarded(
  server: Server,
  gate: ConnectionGate,
  address: { readonly host: string; readonly port: number; readonly shared?: boolean },
): Promise<GuardedListener> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(
      { port: address.port, host: address.host, exclusive: address.shared !== true },
      () => {
        server.removeListener('error', reject);
        resolve();
      },
    );
  });
  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : address.port;
  let closing: Promise<void> | undefined;
  return {
    port,
    connectionStats: () => gate.stats(),
    close: () => {
      // The gate destroys every connection (all of them passed it), so the server's close
      // completes without waiting for clients to leave.
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        gate.close();
      });
      return closing;
    },
  };
}

/** A listener whose connection counts a metrics registry reads, under the listener's name. */
export interface ConnectionStatsSource {
  connectionStats(): ConnectionStats;
}

/** The listeners whose connections a server counts, as the `listener` label of its metrics. */
export type ConnectionListener = 'tcp' | 'doh' | 'api' | 'admin';

/**
 * Declares `<prefix>_connections_refused_total` and `<prefix>_connections_closed_total`, labelled
 * by listener and reason (never by client), read at each scrape from the listeners `sources`
 * yields then: one declaration for every server that holds a {@link ConnectionGate}.
 */
export function declareConnectionMetrics(
  metrics: MetricsRegistry,
  sources: () => Iterable<readonly [string, ConnectionStatsSource]>,
): void {
  metrics.counter<'listener' | 'reason'>('connections_refused_total', {
    help: 'New connections closed at accept, by listener and reason (client_limit, capacity)',
    labelNames: ['listener', 'reason'],
    collect() {
      this.reset();
      for (const [listener, source] of sources()) {
        const { refused } = source.connectionStats();
        for (const reason of CONNECTION_REFUSALS) this.inc({ listener, reason }, refused[reason]);
      }
    },
  });
  metrics.counter<'listener' | 'reason'>('connections_closed_total', {
    help: 'Connections the server closed, by listener and reason (evicted, idle_timeout, message_timeout)',
    labelNames: ['listener', 'reason'],
    collect() {
      this.reset();
      for (const [listener, source] of sources()) {
        const { closed } = source.connectionStats();
        for (const reason of CONNECTION_CLOSE_REASONS) {
          this.inc({ listener, reason }, closed[reason]);
        }
      }
    },
  });
}
