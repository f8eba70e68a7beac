/**
 * A DNS server: one query handler behind any of three listeners on one host — UDP and TCP
 * (RFC 1035, RFC 7766) for `dig`, `kdig` and diagnostics, DoH (RFC 8484) for every hop of the
 * discovery network (design §7). Each listener turns bytes into a well-formed query or an error
 * response before the handler sees anything (`respond.ts`), so a handler only answers questions.
 *
 * ```ts
 * const server = await startDnsServer(
 *   { udp: { port: 5300 }, tcp: { port: 5300 }, doh: { port: 8443, cert, key } },
 *   (query) => answerFromZone(zone, query),
 * );
 * // … server.doh.url is https://127.0.0.1:8443/dns-query
 * await server.close();
 * ```
 */
import { isIP } from 'node:net';
import type { ConnectionStats } from './connection-limits.js';
import { TransportError } from './dns-client.js';
import { startDohListener, type DohListener, type DohListenerConfig } from './doh-server.js';
import { silentLogger, type Logger } from './log.js';
import {
  MIN_UDP_PAYLOAD_OCTETS,
  type QueryGate,
  type QueryHandler,
  type TsigServerOptions,
} from './respond.js';
import { startTcpListener, type TcpListener, type TcpListenerConfig } from './tcp-server.js';
import type { AnswerCache } from './answer-cache.js';
import type { QueryLog } from './query-log.js';
import type { ListenerLimits } from './query-gate.js';
import type { ResponseRateLimiter } from './rrl.js';
import { startUdpListener, type UdpListener, type UdpListenerConfig } from './udp-server.js';
import { HEADER_OCTETS, MAX_MESSAGE_OCTETS } from '../protocol/wire.js';

/** Default address to listen on: loopback, so nothing is exposed unless asked for. */
export const DEFAULT_DNS_SERVER_HOST = '127.0.0.1';

/** Tries to find one free port for both UDP and TCP when both ask for port 0. */
const SHARED_PORT_ATTEMPTS = 5;

/** Which listeners to start, and their limits (defaults are the named constants of each listener). */
export interface DnsServerConfig {
  /** IP address of every listener; default {@link DEFAULT_DNS_SERVER_HOST}. */
  host?: string;
  udp?: UdpListenerConfig;
  tcp?: TcpListenerConfig;
  doh?: DohListenerConfig;
}

/** A running server: where each listener is bound, its connection counts, and how to stop it. */
export interface DnsServer {
  readonly udp?: { host: string; port: number };
  readonly tcp?: { host: string; port: number; connectionStats(): ConnectionStats };
  readonly doh?: {
    host: string;
    port: number;
    url: string;
    connectionStats(): ConnectionStats;
    /** New handshakes use this certificate and key; open connections keep theirs. */
    setTls(tls: { cert: string | Uint8Array; key: string | Uint8Array }): void;
  };
  /** Stops listening, closes every connection, resolves when all are closed. */
  close(): Promise<void>;
}

/** What the server uses besides its configuration. */
export interface DnsServerComponents {
  /** Default {@link silentLogger}. */
  log?: Logger;
  /**
   * Answers reused by every listener (`answer-cache.ts`); default none. Only for a handler
   * whose answer depends on nothing but the query's octets and the cache's generation.
   */
  cache?: AnswerCache;
  /** Where every listener records the queries it answers (`query-log.ts`); default none. */
  queryLog?: QueryLog;
  /**
   * Per-client limits asked about every query of every listener before anything else
   * (`QueryGate` of `respond.ts`); default none.
   */
  gate?: QueryGate;
  /** Response Rate Limiting of UDP responses (`rrl.ts`); default none. */
  rrl?: ResponseRateLimiter;
  /** The TSIG keys every listener verifies signed queries with (`respond.ts`); default none. */
  tsig?: TsigServerOptions;
}

/** The shape shared by the UDP, TCP and DoH listeners' start functions. */
type ListenerStart<C, L> = (
  host: string,
  config: C,
  handler: QueryHandler,
  log: Logger,
  cache?: AnswerCache,
  limits?: ListenerLimits,
  queryLog?: QueryLog,
) => Promise<L>;

/**
 * Starts the configured listeners (at least one) and answers every query through `handler`.
 * When UDP and TCP both ask for port 0, they get the same free port.
 * Throws `TransportError` `ERR_TRANSPORT_CONFIG` for a value out of range, and
 * `ERR_TRANSPORT_LISTEN` when a listener cannot bind (the others are closed again).
 */
export async function startDnsServer(
  config: DnsServerConfig,
  handler: QueryHandler,
  components: DnsServerComponents = {},
): Promise<DnsServer> {
  checkConfig(config);
  const host = config.host ?? DEFAULT_DNS_SERVER_HOST;
  const log = (components.log ?? silentLogger).child('dns-server');
  const { cache, queryLog } = components;
  const limits: ListenerLimits = {
    gate: components.gate,
    rrl: components.rrl,
    tsig: components.tsig,
  };
  let udp: UdpListener | undefined;
  let tcp: TcpListener | undefined;
  let doh: DohListener | undefined;
  const started: Array<{ close(): Promise<void> }> = [];
  const closeAll = async (): Promise<void> => {
    await Promise.all(started.map((listener) => listener.close()));
  };
  // Every transport's listener takes the same handler, cache, limits and query log.
  const listen = <C, L>(
    start: ListenerStart<C, L>,
    transport: 'udp' | 'tcp' | 'doh',
    listenerConfig: C,
  ): Promise<L> =>
    start(host, listenerConfig, handler, log.child(transport), cache, limits, queryLog);
  try {
    if (
      config.udp !== undefined &&
      config.tcp !== undefined &&
      config.udp.port === 0 &&
      config.tcp.port === 0
    ) {
      // Both on a free port: the same one, as clients retry a truncated UDP answer over TCP on
      // the port they asked (RFC 7766 §5). TCP takes a free port, UDP binds the same number;
      // when that is taken for UDP, try again with another.
      for (let attempt = 1; udp === undefined; attempt++) {
        const tcpListener = await listen(startTcpListener, 'tcp', config.tcp);
        try {
          udp = await listen(startUdpListener, 'udp', { ...config.udp, port: tcpListener.port });
          tcp = tcpListener;
        } catch (error) {
          await tcpListener.close();
          if (attempt >= SHARED_PORT_ATTEMPTS) throw error;
        }
      }
      started.push(udp, tcp as TcpListener);
    } else {
      if (config.udp !== undefined) {
        udp = await listen(startUdpListener, 'udp', config.udp);
        started.push(udp);
      }
      if (config.tcp !== undefined) {
        tcp = await listen(startTcpListener, 'tcp', config.tcp);
        started.push(tcp);
      }
    }
    if (config.doh !== undefined) {
      doh = await listen(startDohListener, 'doh', config.doh);
      started.push(doh);
    }
  } catch (error) {
    await closeAll();
    if (error instanceof TransportError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new TransportError('ERR_TRANSPORT_LISTEN', `cannot listen on ${host}: ${message}`, {
      cause: error,
    });
  }
  let closing: Promise<void> | undefined;
  return {
    ...(udp === undefined ? {} : { udp: { host: udp.host, port: udp.port } }),
    ...(tcp === undefined
      ? {}
      : { tcp: { host: tcp.host, port: tcp.port, connectionStats: tcp.connectionStats } }),
    ...(doh === undefined
      ? {}
      : {
          doh: {
            host: doh.host,
            port: doh.port,
            url: doh.url,
            connectionStats: doh.connectionStats,
            setTls: doh.setTls,
          },
        }),
    close: () => (closing ??= closeAll()),
  };
}

function checkConfig(config: DnsServerConfig): void {
  const { udp, tcp, doh } = config;
  if (config.host !== undefined && isIP(config.host) === 0)
    configError(`host must be an IP address, got ${JSON.stringify(config.host)}`);
  if (udp === undefined && tcp === undefined && doh === undefined)
    configError('at least one of udp, tcp and doh must be configured');
  if (udp !== undefined) {
    integer('udp.port', udp.port, 0, 0xffff);
    integer('udp.maxPayload', udp.maxPayload, MIN_UDP_PAYLOAD_OCTETS, MAX_MESSAGE_OCTETS);
    integer('udp.maxInFlight', udp.maxInFlight, 1, Number.MAX_SAFE_INTEGER);
  }
  if (tcp !== undefined) {
    integer('tcp.port', tcp.port, 0, 0xffff);
    integer('tcp.idleTimeoutMs', tcp.idleTimeoutMs, 1, 2 ** 31 - 1);
    integer('tcp.messageTimeoutMs', tcp.messageTimeoutMs, 1, 2 ** 31 - 1);
    integer('tcp.maxConnections', tcp.maxConnections, 1, Number.MAX_SAFE_INTEGER);
    integer('tcp.connectionsPerClient', tcp.connectionsPerClient, 1, Number.MAX_SAFE_INTEGER);
    integer('tcp.maxInFlightPerConnection', tcp.maxInFlightPerConnection, 1, 65535);
  }
  if (doh !== undefined) {
    integer('doh.port', doh.port, 0, 0xffff);
    if (doh.cert.length === 0 || doh.key.length === 0)
      configError('doh.cert and doh.key must hold a PEM certificate chain and private key');
    integer('doh.maxBodyOctets', doh.maxBodyOctets, HEADER_OCTETS, MAX_MESSAGE_OCTETS);
    integer('doh.requestTimeoutMs', doh.requestTimeoutMs, 1, 2 ** 31 - 1);
    integer('doh.idleTimeoutMs', doh.idleTimeoutMs, 1, 2 ** 31 - 1);
    integer('doh.maxConnections', doh.maxConnections, 1, Number.MAX_SAFE_INTEGER);
    integer('doh.connectionsPerClient', doh.connectionsPerClient, 1, Number.MAX_SAFE_INTEGER);
    if (doh.path !== undefined && !/^\/[\x21-\x7e]*$/.test(doh.path))
      configError(
        `doh.path must be an absolute path without spaces, got ${JSON.stringify(doh.path)}`,
      );
    if (doh.path?.includes('?') === true || doh.path?.includes('#') === true)
      configError(`doh.path must not hold a query or fragment, got ${JSON.stringify(doh.path)}`);
  }
}

function integer(what: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < min || value > max)
    configError(`${what} must be an integer in ${min}..${max}, got ${String(value)}`);
}

function configError(message: string): never {
  throw new TransportError('ERR_TRANSPORT_CONFIG', message);
}
