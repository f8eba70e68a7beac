/**
 * DNS over UDP (RFC 1035 §4.2.1): one datagram in, at most one datagram out. A response larger
 * than the client accepts is sent truncated (TC=1), and the client retries over TCP. With
 * limits, each query first passes the gate, and each response Response Rate Limiting (`rrl.ts`:
 * sent, sent truncated, or dropped).
 */
import { createSocket, type RemoteInfo } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Logger } from './log.js';
import type { AnswerCache } from './answer-cache.js';
import type { QueryLog } from './query-log.js';
import type { ListenerLimits } from './query-gate.js';
import {
  EDNS_UDP_PAYLOAD_OCTETS,
  answerQueryNow,
  type Answer,
  type QueryHandler,
  type TransferHandler,
} from './respond.js';

/** Default largest UDP response: {@link EDNS_UDP_PAYLOAD_OCTETS} (DNS flag day 2020). */
export const DEFAULT_UDP_MAX_PAYLOAD = EDNS_UDP_PAYLOAD_OCTETS;

/**
 * Default most queries answered at once over UDP; datagrams beyond are dropped, as a server
 * under load does, and the client retries. Bounds the memory a flood can pin in handlers.
 */
export const DEFAULT_UDP_MAX_IN_FLIGHT = 1024;

/** The UDP listener's configuration. */
export interface UdpListenerConfig {
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** Largest response sent, 512–65535; default {@link DEFAULT_UDP_MAX_PAYLOAD}. */
  maxPayload?: number;
  /** Most queries in the handler at once; default {@link DEFAULT_UDP_MAX_IN_FLIGHT}. */
  maxInFlight?: number;
  /**
   * Answers IXFR with one message (RFC 1995 §2; `respond.ts`); without it IXFR goes to the
   * query handler like any question. AXFR over UDP always does (RFC 5936 §4.2).
   */
  transfer?: TransferHandler;
  /**
   * Binds without `exclusive`: in a `node:cluster` worker the primary then holds the socket and
   * every worker binding the same address and port shares it (the kernel hands each datagram
   * to one of them). Default false: the socket is this process's own.
   */
  shared?: boolean;
}

/** A bound UDP listener. */
export interface UdpListener {
  readonly host: string;
  readonly port: number;
  /** Stops receiving; answers still being computed are discarded. */
  close(): Promise<void>;
}

/** Binds a UDP socket on `host` and answers each datagram through `handler`. */
export async function startUdpListener(
  host: string,
  config: UdpListenerConfig,
  handler: QueryHandler,
  log: Logger,
  cache?: AnswerCache,
  limits: ListenerLimits = {},
  queryLog?: QueryLog,
): Promise<UdpListener> {
  const { gate, rrl, tsig } = limits;
  const maxPayload = config.maxPayload ?? DEFAULT_UDP_MAX_PAYLOAD;
  const maxInFlight = config.maxInFlight ?? DEFAULT_UDP_MAX_IN_FLIGHT;
  const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
  let inFlight = 0;
  let closed = false;

  const send = (result: Answer, peer: RemoteInfo): void => {
    if (result.kind === 'drop' || closed) return;
    // RRL decides on what would be sent, whatever produced it (the handler, the cache, the gate).
    const wire = rrl === undefined ? result.wire : rrl.limit(result.wire, peer.address);
    if (wire === undefined) return;
    // Already cut to what the sender accepts (`udpLimit` below). Without a callback a failed send becomes an 'error' event (logged below), and a sent one
    // costs no callback at all.
    socket.send(wire, peer.port, peer.address);
  };

  socket.on('message', (datagram, peer) => {
    if (inFlight >= maxInFlight) return;
    let result: Answer | Promise<Answer>;
    try {
      result = answerQueryNow(
        datagram,
        {
          handler,
          context: { transport: 'udp', remoteAddress: peer.address },
          log,
          udpLimit: maxPayload,
          cache,
          queryLog,
          gate,
          tsig,
        },
        config.transfer,
      );
      // A synchronous answer is sent at once, without a promise in between.
      if (!(result instanceof Promise)) return send(result, peer);
    } catch (error) {
      log.error('udp-answer-failed', { error });
      return;
    }
    inFlight++;
    result
      .then((answer) => send(answer, peer))
      .catch((error: unknown) => log.error('udp-answer-failed', { error }))
      .finally(() => {
        inFlight--;
      });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => {
      socket.close();
      reject(error);
    };
    socket.once('error', onError);
    socket.bind({ port: config.port, address: host, exclusive: config.shared !== true }, () => {
      socket.removeListener('error', onError);
      resolve();
    });
  });
  // After binding, socket errors (ICMP-driven send failures on some systems) must not crash.
  socket.on('error', (error) => log.debug('udp-socket-error', { error }));

  const bound = socket.address();
  log.info('listening', { transport: 'udp', host: bound.address, port: bound.port });
  return {
    host: bound.address,
    port: bound.port,
    close: () =>
      new Promise<void>((resolve) => {
        if (closed) return resolve();
        closed = true;
        socket.close(() => resolve());
      }),
  };
}
