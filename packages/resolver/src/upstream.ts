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
  INFRA_HOST_TTL_SECONDS,
  InfraCache,
  MAX_BACKOFF_MS,
  MAX_INFRA_HOSTS,
  RTT_BAND_MS,
  type InfraEntry,
} from './infra-cache.js';
import {
  MAX_SERVERS_PER_ZONE,
  MAX_UPSTREAM_IN_FLIGHT,
  SERVER_TIMEOUT_MS,
  UPSTREAM_DOH_LANES,
  UPSTREAM_EDNS_PAYLOAD_OCTETS,
} from './limits.js';

/**
 * Sending one question to the servers of one zone: the only place the resolver touches the
 * network. Every address of every nameserver of the zone is a server; the infra cache
 * (`infra-cache.ts`, as Unbound's) orders them for each question: at random among those whose
 * RTO is within a band of the lowest, then the slower ones, then those held back after a
 * timeout. A question goes to one server at a time, and on a timeout, a connection failure or a
 * SERVFAIL, REFUSED, FORMERR or NOTIMP answer, to the next, at most
 * {@link MAX_SERVERS_PER_ZONE} of them; each answer is an RTT sample, each timeout a backoff.
 * Now and then a question also sends a probe, the same query to a held-back or slow server,
 * not waited for, so that a server that came back or got faster is seen to. Queries carry DO=1,
 * CD=0, RD=0 and EDNS with a 1232-octet payload; over DoH they are padded (RFC 8467) and spread
 * over {@link UPSTREAM_DOH_LANES} connections per server, each connection after a server's
 * first resuming a TLS session it gave (RFC 8446 §2.2), each session ticket used once.
 *
 * The timeout of one query is the configured one (`timeoutMs`), not the server's RTO as in
 * Unbound: a question asks each server once, so a timeout cut to a fast server's usual RTT would
 * turn its one slow answer into a failure rather than a retransmission. The RTO orders servers.
 *
 * Worked example: the zone `4.4.e164.mimi.arpa` has `ns1` (RTO 900 ms) and `ns2` (RTO 50 ms):
 * `ns1` is outside the 400 ms band, so the question goes to `ns2`; if `ns2` times out after
 * 2 s, it is held back and the question goes to `ns1`, which answers; the next questions go to
 * `ns1` until, 5 s later, a probe finds `ns2` answering again.
 */

/** One server of a zone and how it is reached. */
export interface NameServer {
  /** Its host name (the NS target), for logs and provenance. */
  readonly name: string;
  /** DoH (RFC 8484) at a URL, or plain DNS (UDP with TCP fallback on TC) at an address. */
  readonly endpoint:
    | {
        readonly kind: 'doh';
        readonly url: string;
        /**
         * The name its certificate is verified against and sent as SNI (RFC 6066 §3), while
         * the connection goes to the URL's address (the glue): the `_dns` SVCB target, else
         * the NS name. Absent: the URL's host.
         */
        readonly serverName?: string;
      }
    | ({ readonly kind: 'dns' } & ServerAddress);
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
   * Forgets what the infra cache knows of every server (as `unbound-control flush_infra all`);
   * connections stay open.
   */
  forgetRtts(): void;
  /** What the infra cache knows of a server address ({@link serverId}), for status and tests. */
  serverState(id: string): InfraEntry | undefined;
  /** Closes DoH connections. */
  close(): Promise<void>;
}

/**
 * Told of each query to one server (a try of {@link Upstream.query}, not a probe): `server` is
 * its address or URL ({@link serverId}); `rttSeconds` when it answered, else `error` as
 * `timeout`, `connect` (any other transport failure) or the rcode it answered (`servfail`,
 * `refused`, `formerr`, `notimp`). For metrics; it must not throw.
 */
export type UpstreamObserver = (
  server: string,
  result: { readonly rttSeconds: number } | { readonly error: string },
) => void;

/** Options of {@link createUpstream}. */
export interface UpstreamInit {
  /** Told of each query's RTT or failure ({@link UpstreamObserver}). */
  observe?: UpstreamObserver;
  /** PEM CA certificates trusted for DoH; default the system store. */
  ca?: string | string[];
  /** Per-server timeout; default {@link SERVER_TIMEOUT_MS}. */
  timeoutMs?: number;
  /**
   * A DoH server's certificate valid for its address but not for its name is accepted; default
   * true, so that networks whose certificates name addresses keep working.
   */
  acceptAddressCertificates?: boolean;
  /**
   * With `doh`, the DoH client (and its TLS context, built from the CA) is made at once rather
   * than by the first query, which should not wait for it. Default: made when first needed.
   */
  transport?: 'doh' | 'dns';
  /** The band of RTOs chosen among at random; default {@link RTT_BAND_MS}. */
  rttBandMs?: number;
  /** The longest a server is held back after timeouts; default {@link MAX_BACKOFF_MS}. */
  maxBackoffMs?: number;
  /** Lifetime of what is known of a server; default {@link INFRA_HOST_TTL_SECONDS}. */
  hostTtlSeconds?: number;
  /** Server addresses remembered; default {@link MAX_INFRA_HOSTS}. */
  maxHosts?: number;
  /**
   * The monotonic clock in ms of backoffs, probes and lifetimes; default `performance.now()`.
   * RTT samples are always measured on `performance.now()`.
   */
  now?: () => number;
  /** Uniform in [0, 1), for the choice within the band; default `Math.random`. */
  random?: () => number;
  /**
   * Most DoH servers whose TLS sessions are kept for resumption (`createDohClient`'s
   * `tlsSessionServers`): a new connection to a server, such as another lane's, resumes a
   * session rather than making a full handshake; 0 turns resumption off. Default common's
   * `DEFAULT_DOH_TLS_SESSION_SERVERS`.
   */
  tlsSessionServers?: number;
}
/** Failures that say a server cannot be used as configured, rather than that it is slow. */
const UNUSABLE_CODES: ReadonlySet<string> = new Set([
  'ERR_TRANSPORT_CERTIFICATE',
  'ERR_TRANSPORT_CONNECTION',
]);

/** Response codes after which the next server is tried (RFC 1035 §7.2 / RFC 8767). */
const RETRY_RCODES: ReadonlySet<string> = new Set(['SERVFAIL', 'REFUSED', 'FORMERR', 'NOTIMP']);

/** The key of a server address in the infra cache, and its provenance string. */
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
      acceptAddressCertificates: init.acceptAddressCertificates ?? true,
      ...(init.ca === undefined ? {} : { ca: init.ca }),
      ...(init.tlsSessionServers === undefined
        ? {}
        : { tlsSessionServers: init.tlsSessionServers }),
    });
  let doh: DohClient | undefined = init.transport === 'doh' ? newDohClient() : undefined;
  const now = init.now ?? monotonicMs;
  const infra = new InfraCache(
    {
      rttBandMs: init.rttBandMs ?? RTT_BAND_MS,
      maxBackoffMs: init.maxBackoffMs ?? MAX_BACKOFF_MS,
      hostTtlSeconds: init.hostTtlSeconds ?? INFRA_HOST_TTL_SECONDS,
      maxHosts: init.maxHosts ?? MAX_INFRA_HOSTS,
      timeoutMs,
    },
    now,
    init.random ?? Math.random,
  );
  let closed = false;
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

  /**
   * A failed exchange with `id`: into the infra cache, and a line with its backoff. The first
   * failure of a server that cannot be used as configured (its certificate refused, no
   * connection) is logged at info with the reason, so that an operator sees why lookups fail;
   * the rest at debug, so that a server down is one line, not one per question.
   */
  const failed = (id: string, error: TransportError, sentAt: number): void => {
    infra.failed(id, sentAt);
    const entry = infra.entry(id);
    const fields = {
      server: id,
      code: error.code,
      failures: entry?.failures ?? 1,
      heldMs: Math.max(0, Math.round((entry?.heldUntil ?? 0) - now())),
    };
    if (fields.failures === 1 && UNUSABLE_CODES.has(error.code)) {
      log.info('upstream-unusable', { ...fields, reason: error.message });
    } else {
      log.debug('upstream-failure', fields);
    }
  };

  /**
   * The probe of a plan: the question sent to `server` besides, its outcome only an RTT sample
   * or a failure for the cache. It never rejects.
   */
  const probe = async (
    server: NameServer,
    id: string,
    name: string,
    type: RRType,
  ): Promise<void> => {
    await acquire();
    if (closed) {
      infra.abandon(id);
      release();
      return;
    }
    const started = monotonicMs();
    const sentAt = now();
    sent++;
    try {
      await send(server, upstreamQuery(name, type));
      infra.answered(id, monotonicMs() - started);
      log.debug('upstream-probe-answered', { server: id });
    } catch (error) {
      if (error instanceof TransportError && !closed) failed(id, error, sentAt);
      else infra.abandon(id);
    } finally {
      release();
    }
  };

  const send = async (server: NameServer, query: Message): Promise<Message> => {
    const e = server.endpoint;
    if (e.kind === 'doh') {
      doh ??= newDohClient();
      return doh.query(e.url, query, {
        timeoutMs,
        ...(e.serverName === undefined ? {} : { serverName: e.serverName }),
      });
    }
    return queryUdp({ host: e.host, port: e.port }, query, { timeoutMs });
  };

  const query = async (
    servers: readonly NameServer[],
    name: string,
    type: RRType,
  ): Promise<UpstreamOutcome> => {
    const byId = new Map<string, NameServer>();
    for (const server of servers) {
      const id = serverId(server);
      if (!byId.has(id)) byId.set(id, server);
    }
    if (byId.size === 0) {
      return { kind: 'failed', reason: 'servfail', detail: 'no usable server', unreachable: true };
    }
    const plan = infra.plan([...byId.keys()]);
    const ordered = plan.order
      .slice(0, MAX_SERVERS_PER_ZONE)
      .map((id) => ({ id, server: byId.get(id) as NameServer }));
    const probed = plan.probe === undefined ? undefined : byId.get(plan.probe);
    if (probed !== undefined && plan.probe !== undefined) {
      void probe(probed, plan.probe, name, type);
    }
    let timedOut = false;
    let answered = false;
    const failures: string[] = [];
    for (const { server, id } of ordered) {
      const message = upstreamQuery(name, type);
      await acquire();
      const started = monotonicMs();
      const sentAt = now();
      sent++;
      try {
        const response = await send(server, message);
        const rttMs = monotonicMs() - started;
        infra.answered(id, rttMs);
        init.observe?.(id, { rttSeconds: rttMs / 1000 });
        if (RETRY_RCODES.has(response.rcode)) {
          init.observe?.(id, { error: response.rcode.toLowerCase() });
          answered = true;
          failures.push(`${id} answered ${response.rcode}`);
          continue;
        }
        return { kind: 'response', message: response, server: id };
      } catch (error) {
        if (!(error instanceof TransportError)) throw error;
        // A failed server goes after every working one until it answers again.
        failed(id, error, sentAt);
        init.observe?.(id, {
          error:
            error.code === 'ERR_TRANSPORT_TIMEOUT'
              ? 'timeout'
              : error.code === 'ERR_TRANSPORT_CERTIFICATE'
                ? 'certificate'
                : 'connect',
        });
        if (error.code === 'ERR_TRANSPORT_TIMEOUT') timedOut = true;
        failures.push(`${id}: ${error.code}`);
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
    forgetRtts: () => infra.clear(),
    serverState: (id) => infra.entry(id),
    close: async () => {
      closed = true;
      await doh?.close();
      doh = undefined;
    },
  };
}

/** A query as the resolver sends it upstream: DO set, RD clear, EDNS with our payload size. */
function upstreamQuery(name: string, type: RRType): Message {
  return buildQuery(name, type, { dnssecOk: true, udpPayloadSize: UPSTREAM_EDNS_PAYLOAD_OCTETS });
}
