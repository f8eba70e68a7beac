import {
  buildQuery,
  createDohClient,
  queryUdp,
  TransportError,
  type DohClient,
  type Logger,
  type Message,
  type RRType,
  type ServerAddress,
} from '@mimi-discovery/common';
import { monotonicMs } from './deadline.js';
import {
  MAX_SERVERS_PER_ZONE,
  MAX_UPSTREAM_IN_FLIGHT,
  SERVER_TIMEOUT_MS,
  UPSTREAM_DOH_LANES,
  UPSTREAM_EDNS_PAYLOAD_OCTETS,
} from './limits.js';

/**
 * Sending one question to the servers of one zone: the only place the resolver touches the
 * network. A question goes to one server at a time, the fastest first by smoothed RTT (as
 * Unbound's infra cache and BIND's SRTT), and on a timeout, a connection failure or a SERVFAIL,
 * REFUSED, FORMERR or NOTIMP answer, to the next, at most {@link MAX_SERVERS_PER_ZONE} of them.
 * Queries carry DO=1, CD=0, RD=0 and EDNS with a 1232-octet payload; over DoH they are padded
 * (RFC 8467) and spread over {@link UPSTREAM_DOH_LANES} connections per server.
 *
 * Worked example: the zone `4.4.e164.mimi.arpa` has `ns1` (SRTT 40 ms) and `ns2` (SRTT 9 ms):
 * the question goes to `ns2`; if `ns2` times out after 2 s, its SRTT grows past `ns1`'s and the
 * question goes to `ns1`, which answers.
 */

/** One server of a zone and how it is reached. */
export interface NameServer {
  /** Its host name (the NS target), for logs and provenance. */
  readonly name: string;
  /** DoH (RFC 8484) at a URL, or plain DNS (UDP with TCP fallback on TC) at an address. */
  readonly endpoint:
    { readonly kind: 'doh'; readonly url: string } | ({ readonly kind: 'dns' } & ServerAddress);
}

/** The outcome of asking a zone's servers: a response, or why none came. */
export type UpstreamOutcome =
  | { readonly kind: 'response'; readonly message: Message; readonly server: string }
  | {
      readonly kind: 'failed';
      readonly reason: 'timeout' | 'servfail';
      readonly detail: string;
      /**
       * No server answered at all (timeouts, failed connections, replies that are not an answer
       * to the question): the zone is unreachable. False when some server answered with an error
       * rcode, which may be about the one name asked.
       */
      readonly unreachable: boolean;
    };

/** Sends questions to servers. */
export interface Upstream {
  /** Asks `servers` (one zone's) for `name`/`type`, trying them in order of smoothed RTT. */
  query(servers: readonly NameServer[], name: string, type: RRType): Promise<UpstreamOutcome>;
  /** Queries sent so far (each try at each server counts). */
  sent(): number;
  /**
   * Forgets every server's smoothed RTT (as `unbound-control flush_infra all`); connections
   * stay open.
   */
  forgetRtts(): void;
  /** Closes DoH connections. */
  close(): Promise<void>;
}

/** Options of {@link createUpstream}. */
export interface UpstreamInit {
  /** PEM CA certificates trusted for DoH; default the system store. */
  ca?: string | string[];
  /** Per-server timeout; default {@link SERVER_TIMEOUT_MS}. */
  timeoutMs?: number;
  /**
   * With `doh`, the DoH client (and its TLS context, built from the CA) is made at once rather
   * than by the first query, which should not wait for it. Default: made when first needed.
   */
  transport?: 'doh' | 'dns';
}

/** SRTT assumed for a server never asked (Unbound uses 376 ms; lower favours exploring). */
export const INITIAL_RTT_MS = 100;
/** Weight of a new sample in the smoothed RTT (RFC 6298's alpha is 1/8; DNS servers move faster). */
const RTT_SAMPLE_WEIGHT = 0.3;
/** Servers whose RTT is remembered; the oldest is forgotten beyond this. */
const MAX_RTT_ENTRIES = 10_000;
/** Response codes after which the next server is tried (RFC 1035 §7.2 / RFC 8767). */
const RETRY_RCODES: ReadonlySet<string> = new Set(['SERVFAIL', 'REFUSED', 'FORMERR', 'NOTIMP']);

/** The key of a server in the RTT table and its provenance string. */
export function serverId(server: NameServer): string {
  const e = server.endpoint;
  if (e.kind === 'doh') return e.url;
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

/** Creates the upstream stage. */
export function createUpstream(init: UpstreamInit, log: Logger): Upstream {
  const timeoutMs = init.timeoutMs ?? SERVER_TIMEOUT_MS;
  const newDohClient = (): DohClient =>
    createDohClient({
      lanes: UPSTREAM_DOH_LANES,
      ...(init.ca === undefined ? {} : { ca: init.ca }),
    });
  let doh: DohClient | undefined = init.transport === 'doh' ? newDohClient() : undefined;
  const rtt = new Map<string, number>();
  let sent = 0;
  let inFlight = 0;
  const waiting: Array<() => void> = [];

  const acquire = async (): Promise<void> => {
    if (inFlight < MAX_UPSTREAM_IN_FLIGHT) {
      inFlight++;
      return;
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  };
  const release = (): void => {
    const next = waiting.shift();
    if (next !== undefined) next();
    else inFlight--;
  };

  const remember = (id: string, value: number): void => {
    rtt.delete(id);
    rtt.set(id, value);
    if (rtt.size > MAX_RTT_ENTRIES) {
      const oldest = rtt.keys().next().value;
      if (oldest !== undefined) rtt.delete(oldest);
    }
  };

  const send = async (server: NameServer, query: Message): Promise<Message> => {
    const e = server.endpoint;
    if (e.kind === 'doh') {
      doh ??= newDohClient();
      return doh.query(e.url, query, { timeoutMs });
    }
    return queryUdp({ host: e.host, port: e.port }, query, { timeoutMs });
  };

  const query = async (
    servers: readonly NameServer[],
    name: string,
    type: RRType,
  ): Promise<UpstreamOutcome> => {
    const ordered = [...servers]
      .map((server) => ({ server, id: serverId(server) }))
      .sort((a, b) => (rtt.get(a.id) ?? INITIAL_RTT_MS) - (rtt.get(b.id) ?? INITIAL_RTT_MS))
      .slice(0, MAX_SERVERS_PER_ZONE);
    if (ordered.length === 0) {
      return { kind: 'failed', reason: 'servfail', detail: 'no usable server', unreachable: true };
    }
    let timedOut = false;
    let answered = false;
    const failures: string[] = [];
    for (const { server, id } of ordered) {
      const message = buildQuery(name, type, {
        dnssecOk: true,
        udpPayloadSize: UPSTREAM_EDNS_PAYLOAD_OCTETS,
      });
      await acquire();
      const started = monotonicMs();
      sent++;
      try {
        const response = await send(server, message);
        const elapsed = monotonicMs() - started;
        const previous = rtt.get(id) ?? elapsed;
        remember(id, previous + RTT_SAMPLE_WEIGHT * (elapsed - previous));
        if (RETRY_RCODES.has(response.rcode)) {
          answered = true;
          failures.push(`${id} answered ${response.rcode}`);
          continue;
        }
        return { kind: 'response', message: response, server: id };
      } catch (error) {
        if (!(error instanceof TransportError)) throw error;
        // A failed server sorts after every working one until it answers again.
        remember(id, (rtt.get(id) ?? INITIAL_RTT_MS) * 2 + timeoutMs);
        if (error.code === 'ERR_TRANSPORT_TIMEOUT') timedOut = true;
        failures.push(`${id}: ${error.code}`);
        log.debug('upstream-failure', { server: id, code: error.code });
      } finally {
        release();
      }
    }
    return {
      kind: 'failed',
      reason: timedOut ? 'timeout' : 'servfail',
      detail: `every server failed (${failures.join('; ')})`,
      unreachable: !answered,
    };
  };

  return {
    query,
    sent: () => sent,
    forgetRtts: () => rtt.clear(),
    close: async () => {
      await doh?.close();
      doh = undefined;
    },
  };
}
