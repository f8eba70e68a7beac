import { monotonicMs } from './deadline.js';
import {
  DEFAULT_APEX,
  ANSWER_CACHE_OCTETS,
  AnswerCache,
  EDE_DNSSEC_BOGUS,
  EDE_PROHIBITED,
  EDE_STALE_ANSWER,
  canonicalName,
  createLogger,
  csiToName,
  edeOption,
  EDE_OTHER,
  isSubdomain,
  namesEqual,
  openQueryLog,
  questionOf,
  respondError,
  CONTROL_SOCKET_NAME,
  createTlsReload,
  openServerControl,
  startAdminServer,
  startDnsServer,
  systemClock,
  type AdminServer,
  type Clock,
  type ControlConfig,
  type ReloadReport,
  type ServerControl,
  type Csi,
  type DnsServer,
  type DnsServerConfig,
  type EdnsOption,
  type LogLevel,
  type Logger,
  type Message,
  type QueryGate,
  type QueryHandler,
  type QueryLog,
  type ResourceRecord,
} from '@mimi-discovery/common';
import { dirname, join } from 'node:path';
import { checkListenerSettings, type ResolverFileConfig } from './config.js';
import { resolverControlHandlers } from './control-commands.js';
import {
  createClientLimits,
  type LimitOutcome,
  type ResolverClientLimits,
} from './front-end-limits.js';
import { startJsonApi, type JsonApi, type LookupLog } from './json-api.js';
import { lookupPageFor } from './lookup-page.js';
import { createResolverMetrics, type ResolverMetrics } from './metrics.js';
import { createGateway, type Gateway, type GatewaySettings } from './gateway/gateway.js';
import type { ResolvedAnswer, Resolver } from './types.js';

/**
 * A resolver as a server (design §7): the DNS front ends (UDP, TCP, DoH through
 * `startDnsServer`), the JSON API (`json-api.ts`) and the admin port (health, metrics), all in
 * front of one `Resolver`. Its config file is read by `config.ts`.
 *
 * ```ts
 * const config = await loadResolverConfig('/etc/mimi/resolver.json');
 * const resolver = createResolver(config, { log });
 * const server = await startResolverServer(config, resolver, { log });
 * // … server.dns?.doh?.url, server.api?.url
 * await server.close();
 * await resolver.close();
 * ```
 */

// ---------------------------------------------------------------------------------------------
// The DNS front ends

/** The records a response without DO must not carry (RFC 4035 §3.2.1, RFC 3225 §3). */
const DNSSEC_TYPES: ReadonlySet<string> = new Set(['RRSIG', 'NSEC', 'NSEC3']);

/** What the DNS handler uses besides the resolver. */
export interface ResolverQueryHandlerOptions {
  /** The namespace apex; names outside it are refused. Default `mimi.arpa`. */
  apex?: string;
  metrics?: ResolverMetrics;
  log?: Logger;
  /**
   * Receives, for each response built from a resolution, the time (seconds on `now`) by which
   * every copy of it must be gone: an answer cache in front of the handler keeps the response,
   * TTLs unchanged, only so long that a copy given last and kept for its TTL is gone by then
   * (`client-ttl.ts`, `AnswerCacheOptions.expiresAt`).
   */
  useBy?: WeakMap<Message, number>;
  /** The clock of `useBy`; default `systemClock`. */
  now?: Clock;
}

/**
 * The answer of the DNS front ends to one query, from `resolver.resolve(name, type)`:
 *
 * - a name outside the apex, class other than IN, AXFR, IXFR or OPT: REFUSED (a resolver for
 *   one namespace, not an open recursive resolver); ANY: NOTIMP (RFC 8482 §4 lets a server
 *   decline ANY);
 * - RA set (RFC 1035 §4.1.1), AA clear; the resolver's rcode and records, except that a denied
 *   name is NOERROR to a client with DO and without CO (RFC 9824 §5, see {@link wireRcode});
 * - AD set only when the answer is `secure` and the query set DO or AD (RFC 6840 §5.7, §5.8);
 * - RRSIG, NSEC and NSEC3 only when the query set DO (RFC 4035 §3.2.1), except the queried
 *   type in the answer section;
 * - `bogus`: SERVFAIL, with the Extended DNS Error of its reason (RFC 8914: 6 "DNSSEC Bogus",
 *   7 "Signature Expired", 9 "DNSKEY Missing", …, `ede.ts`) when the query has EDNS; every other
 *   SERVFAIL likewise (22 "No Reachable Authority", 23 "Network Error", 13 "Cached Error" beside
 *   the reason for a failure from the failure cache, 0 "Other" for a fault); an answer from stale
 *   cache carries Extended DNS Error 3 "Stale Answer";
 * - CD, minimally: the resolver validates every answer whatever CD says (RFC 6840 §5.9) and
 *   keeps nothing unvalidated, so CD only changes what a `bogus` answer becomes — with CD the
 *   client gets the rcode and the records the resolver returned for it (possibly none), AD
 *   clear and Extended DNS Error 6 still attached, to check them itself (RFC 4035 §3.2.2),
 *   instead of a plain SERVFAIL. CD is echoed.
 * - RD clear is answered as RD set: the front ends serve only resolution.
 *
 * A resolver that throws gets the client a SERVFAIL; the fault is logged with the query name
 * and type, never with the client address (design §10).
 */
export function createResolverQueryHandler(
  resolver: Pick<Resolver, 'resolve'>,
  options: ResolverQueryHandlerOptions = {},
): QueryHandler {
  const apex = canonicalName(options.apex ?? DEFAULT_APEX);
  const log = options.log;
  const answer = async (query: Message): Promise<Message> => {
    const question = query.questions[0];
    if (question === undefined) return respondError(query, 'FORMERR');
    const type = question.type;
    if (type === 'ANY') return resolverResponse(query, 'NOTIMP');
    if (question.class !== 'IN' || type === 'AXFR' || type === 'IXFR' || type === 'OPT') {
      return resolverResponse(query, 'REFUSED');
    }
    const name = canonicalName(question.name);
    if (!isSubdomain(name, apex)) return resolverResponse(query, 'REFUSED');

    let resolved;
    try {
      resolved = await resolver.resolve(name, type);
    } catch (error) {
      log?.error('resolve-failed', { name, type, error });
      return resolverResponse(query, 'SERVFAIL', [edeOption(EDE_OTHER, 'resolver fault')]);
    }
    const dnssecOk = query.edns?.dnssecOk === true;
    // Every SERVFAIL says why (RFC 8914): the resolution's reason (`ede.ts`).
    const ede: EdnsOption[] = (resolved.ede ?? []).map((e) => edeOption(e.infoCode, e.text));
    if (resolved.status === 'bogus') {
      if (ede.length === 0) ede.push(edeOption(EDE_DNSSEC_BOGUS, 'validation failed'));
      if (!query.flags.cd) return resolverResponse(query, 'SERVFAIL', ede);
    }
    if (resolved.stale === true) ede.push(edeOption(EDE_STALE_ANSWER, ''));
    const keep =
      (section: 'answers' | 'authorities') =>
      (rr: ResourceRecord): boolean =>
        dnssecOk || !DNSSEC_TYPES.has(rr.type) || (section === 'answers' && rr.type === type);
    const response = resolverResponse(query, wireRcode(query, resolved), ede);
    const answered: Message = {
      ...response,
      ...(response.edns !== undefined && query.edns?.compactOk === true
        ? { edns: { ...response.edns, compactOk: true } }
        : {}),
      flags: {
        ...response.flags,
        ad: resolved.status === 'secure' && (dnssecOk || query.flags.ad),
      },
      answers: resolved.answers.filter(keep('answers')),
      authorities: resolved.authorities.filter(keep('authorities')),
    };
    if (options.useBy !== undefined) {
      // Given again until `usable` runs out, with TTLs of at most the largest here: every copy
      // is gone by then plus that TTL.
      const ttl = Math.max(0, ...[...answered.answers, ...answered.authorities].map((r) => r.ttl));
      options.useBy.set(answered, (options.now ?? systemClock)() + (resolved.usable ?? 0) + ttl);
    }
    return answered;
  };
  return async (query, context) => {
    const started = monotonicMs();
    const response = await answer(query);
    options.metrics?.recordQuery(
      context.transport,
      response.rcode,
      (monotonicMs() - started) / 1000,
    );
    return response;
  };
}

/**
 * The rcode a compact denial of a name goes out with (RFC 9824 §5). The DP proves that a name
 * does not exist with NOERROR and an NSEC at the name whose bitmap holds NXNAME; the resolver
 * reports it as NXDOMAIN. A client that validates (DO set) and has not said it knows compact
 * answers (CO clear) gets the NOERROR the records were signed for: to a validator such as BIND's
 * `delv`, an NXDOMAIN beside an NSEC that claims the name exists is bogus. A client without DO
 * sees no NSEC and gets NXDOMAIN; one with CO gets NXDOMAIN and CO echoed. A name denied through
 * an ancestor that does not exist (the resolver's QNAME minimisation stopped there, RFC 8020)
 * is NXDOMAIN to every client: the NSEC is owned by the ancestor, and NOERROR would claim the
 * name itself exists.
 */
function wireRcode(
  query: Message,
  resolved: Pick<ResolvedAnswer, 'rcode' | 'authorities'>,
): Message['rcode'] {
  if (resolved.rcode !== 'NXDOMAIN') return resolved.rcode;
  const edns = query.edns;
  if (edns?.dnssecOk !== true || edns.compactOk === true) return 'NXDOMAIN';
  const qname = query.questions[0]?.name ?? '';
  const atName = resolved.authorities.some(
    (rr) => rr.type === 'NSEC' && namesEqual(rr.name, qname),
  );
  return atName ? 'NOERROR' : 'NXDOMAIN';
}

/**
 * The gate of the DNS front ends (`QueryGate` of `@mimi-discovery/common`, asked before the
 * answer cache): each query takes a token of its client's query rate, and a query for a name
 * under the apex is charged to the client's new-names budget (`front-end-limits.ts`). A refused
 * query gets REFUSED with Extended DNS Error 18 "Prohibited" (RFC 8914 §4.19: refused by local
 * policy; no code for rate limiting is registered), whose EXTRA-TEXT says which limit and when to
 * try again: `rate limited (new names); retry in 43 s`. Over DoH the client gets 429 with
 * `Retry-After: 43` instead (`doh-server.ts`).
 */
export function createResolverQueryGate(limits: ResolverClientLimits, apex: string): QueryGate {
  const base = canonicalName(apex);
  return (bytes, context) => {
    // An exempt client is never charged: nothing of its query need be read.
    if (limits.isExempt(context.remoteAddress)) return PASS;
    const question = questionOf(bytes);
    const name =
      question !== undefined && isSubdomain(question.name, base) ? question.name : undefined;
    const outcome = limits.query(context.remoteAddress, context.transport, name);
    if (outcome.kind === 'pass') return PASS;
    const text = limitText(outcome);
    return {
      kind: 'refuse',
      retryAfter: outcome.retryAfter,
      respond: (query) => resolverResponse(query, 'REFUSED', [edeOption(EDE_PROHIBITED, text)]),
    };
  };
}

const PASS = Object.freeze({ kind: 'pass' as const });

/** The EXTRA-TEXT of a refusal: which limit, and the wait. */
function limitText(outcome: Extract<LimitOutcome, { kind: 'limited' }>): string {
  const what = outcome.limit === 'new_names' ? 'new names' : 'queries';
  return `rate limited (${what}); retry in ${outcome.retryAfter} s`;
}

/** An empty response from a recursive resolver: RA set; `options` in its OPT, if it has one. */
function resolverResponse(
  query: Message,
  rcode: Message['rcode'],
  options: EdnsOption[] = [],
): Message {
  const base = respondError(query, rcode);
  return {
    ...base,
    flags: { ...base.flags, ra: true },
    ...(base.edns === undefined ? {} : { edns: { ...base.edns, options } }),
  };
}

// ---------------------------------------------------------------------------------------------
// The server

/**
 * The `limits` of a resolver config file: per listener, connections and deadlines; `clients`,
 * the per-client limits of every front end.
 */
type ListenerLimits = ResolverFileConfig['limits'];

/** What `startResolverServer` needs from a config: where to listen, TLS, the apex and bounds. */
export interface ResolverServerSettings {
  /** Default `mimi.arpa`. */
  apex?: string;
  /** Most CSIs in one JSON API batch; default 1000. */
  maxBatch?: number;
  /** Octets of the DNS front ends' answer cache; default {@link ANSWER_CACHE_OCTETS}. */
  answerCacheBytes?: number;
  /** Ports of 0 are ephemeral; null or absent: not served. */
  listen: {
    host?: string;
    udp?: number | null;
    tcp?: number | null;
    doh?: number | null;
    api?: number | null;
    admin?: number | null;
  };
  /**
   * Connection limits and deadlines per listener, and the per-client limits of every front end
   * (`clients`: `front-end-limits.ts`), as `resolverConfigSchema`'s `limits`; absent: defaults.
   */
  limits?: { [L in keyof ListenerLimits]?: Partial<ListenerLimits[L]> };
  /** Certificate chain and key, PEM: required for `doh` and `api`. */
  tls?: { cert: string | Uint8Array; key: string | Uint8Array };
  /** Level of the default logger. */
  log?: { level: LogLevel };
  /**
   * The query log (`query-log.ts` of `@mimi-discovery/common`): a line per query to the DNS
   * front ends, and with `api` per CSI looked up through the JSON API; absent: none.
   */
  queryLog?: ResolverQueryLogSettings | undefined;
  /**
   * The oblivious gateway on the JSON API's port (`gateway/gateway.ts`), served when `api` is
   * and `enabled` is not false; absent: none.
   */
  gateway?: (GatewaySettings & { readonly enabled?: boolean }) | undefined;
  /**
   * The lookup page on the JSON API's port at `/lookup/` (`lookup-page.ts`): absent, served
   * when built; true, required (no built page: the server does not start); false, not served.
   */
  lookupPage?: boolean | undefined;
  /**
   * The control channel (`control.ts` of `@mimi-discovery/common`); absent: the socket beside
   * the config file (`components.configFile`), none without one, and no control over the admin
   * port.
   */
  control?: ControlConfig | undefined;
}

/** A resolver's query log: where, with the client's address or not, and API lookups or not. */
export interface ResolverQueryLogSettings {
  path: string;
  /** Write the client's address of each DNS query; default false. */
  peer?: boolean;
  /** Also log each CSI the JSON API looks up (never with an address); default false. */
  api?: boolean;
  /** Octets of lines held while the disk is busy; default `QUERY_LOG_BUFFER_OCTETS`. */
  bufferBytes?: number;
}

/** What a resolver server uses besides its settings and its resolver. */
export interface ResolverServerComponents {
  /** Default: JSON lines on stderr at `settings.log.level`. */
  log?: Logger;
  /**
   * The clock of the per-client limits and of the gateway's keys and tokens (whole seconds);
   * default `systemClock`.
   */
  now?: Clock;
  /** The config file: `status`, `reload`, and the default control socket beside it. */
  configFile?: string;
  /** Reads the config file again (`reload`); default: the settings the server started with. */
  reloadSettings?: () => Promise<ResolverServerSettings>;
}

/** A running resolver server: its listeners, metrics, and how to stop it. */
export interface RunningResolverServer {
  readonly dns: DnsServer | undefined;
  readonly api: JsonApi | undefined;
  readonly admin: AdminServer | undefined;
  readonly metrics: ResolverMetrics;
  /** The query log, when the settings ask for one. */
  readonly queryLog: QueryLog | undefined;
  /** The per-client limits every front end shares (`front-end-limits.ts`). */
  readonly limits: ResolverClientLimits;
  /** The oblivious gateway, when the settings ask for one. */
  readonly gateway: Gateway | undefined;
  /**
   * Empties the resolver's caches (`Resolver.flushCache`) and the front ends' answer cache, so
   * that no answer from before is given again; connections stay open.
   */
  flushCache(): void;
  /** The control channel (`ctl`): its socket, and the admin port's key. */
  readonly control: ServerControl;
  /**
   * `ctl reload` and SIGHUP: re-reads the settings (`reloadSettings`), swaps the certificate and
   * key of DoH and the JSON API (open connections keep theirs, so no query is dropped), and
   * names the changed keys that need a restart. One that cannot be used changes nothing.
   */
  reload(): Promise<ReloadReport>;
  /** Stops every listener. The resolver is the caller's: it is not closed. */
  close(): Promise<void>;
}

/**
 * Starts the front ends of `resolver` that `settings.listen` asks for: UDP, TCP and DoH
 * answering with {@link createResolverQueryHandler}, the JSON API — every one behind the same
 * per-client limits (`settings.limits.clients`, `front-end-limits.ts`, over the clock
 * `components.now`), the DNS front ends through {@link createResolverQueryGate} — and the admin
 * port (`/healthz`, `/metrics` with `metrics.ts`). Settings that break the rules of a config
 * file (`resolverConfigSchema`: DoH or the API without TLS, no listener at all) are a
 * `ConfigError` `ERR_CONFIG_INVALID`; a listener that cannot start closes the others and throws
 * its error.
 */
export async function startResolverServer(
  settings: ResolverServerSettings,
  resolver: Resolver,
  components: ResolverServerComponents = {},
): Promise<RunningResolverServer> {
  const log = components.log ?? createLogger('resolver', { level: settings.log?.level ?? 'info' });
  const {
    host = '127.0.0.1',
    udp = null,
    tcp = null,
    doh = null,
    api = null,
    admin = null,
  } = settings.listen;
  const tls = settings.tls;
  // Settings built in code have not been through the config file's schema: the same rules.
  checkListenerSettings(settings);
  const apex = canonicalName(settings.apex ?? DEFAULT_APEX);
  const limits = settings.limits ?? {};
  const metrics = createResolverMetrics(resolver);
  const clientLimits = createClientLimits(limits.clients ?? {}, {
    apex,
    ...(components.now === undefined ? {} : { now: components.now }),
  });
  metrics.watchClientLimits(clientLimits);
  const started: Array<{ close(): Promise<void> }> = [];
  let answerCache: AnswerCache | undefined;
  // Off unless configured (design §10); closed after the listeners, so that it has every query
  // they answered.
  const queryLog =
    settings.queryLog === undefined
      ? undefined
      : openQueryLog(
          {
            path: settings.queryLog.path,
            peer: settings.queryLog.peer === true,
            ...(settings.queryLog.bufferBytes === undefined
              ? {}
              : { bufferBytes: settings.queryLog.bufferBytes }),
          },
          { log: log.child('query-log') },
        );
  if (queryLog !== undefined) metrics.watchQueryLog(queryLog);
  let gateway: Gateway | undefined;
  try {
    let dns: DnsServer | undefined;
    if (udp !== null || tcp !== null || doh !== null) {
      const config: DnsServerConfig = {
        host,
        ...(udp === null ? {} : { udp: { port: udp } }),
        ...(tcp === null ? {} : { tcp: { port: tcp, ...limits.tcp } }),
        ...(doh === null || tls === undefined
          ? {}
          : { doh: { port: doh, cert: tls.cert, key: tls.key, ...limits.doh } }),
      };
      const useBy = new WeakMap<Message, number>();
      const handler = createResolverQueryHandler(resolver, {
        apex,
        metrics,
        log: log.child('dns'),
        useBy,
        now: systemClock,
      });
      // Encoded answers, reused as they are while the resolver would give the same (its TTLs
      // do not count down, `client-ttl.ts`): what its own cache would answer, without resolving,
      // validating or encoding again.
      const cache = new AnswerCache({
        maxOctets: settings.answerCacheBytes ?? ANSWER_CACHE_OCTETS,
        now: systemClock,
        expiresAt: (response) => useBy.get(response),
      });
      metrics.watchAnswerCache(cache);
      answerCache = cache;
      dns = await startDnsServer(config, handler, {
        log: log.child('dns'),
        cache,
        ...(queryLog === undefined ? {} : { queryLog }),
        gate: createResolverQueryGate(clientLimits, apex),
      });
      started.push(dns);
      if (dns.tcp) metrics.watchConnections('tcp', dns.tcp);
      if (dns.doh) metrics.watchConnections('doh', dns.doh);
    }
    let jsonApi: JsonApi | undefined;
    if (api !== null && tls !== undefined) {
      if (settings.gateway !== undefined && settings.gateway.enabled !== false) {
        gateway = await createGateway(settings.gateway, {
          resolver,
          // The DNS front ends' answers, without their metrics (the gateway counts its own).
          dnsHandler: createResolverQueryHandler(resolver, { apex, log: log.child('gateway') }),
          limits: clientLimits,
          metrics,
          ...(queryLog === undefined ? {} : { queryLog }),
          ...(components.now === undefined ? {} : { now: components.now }),
          log: log.child('gateway'),
        });
      }
      // Read once, here: a page that is not built stops a start that asked for it, before any
      // port of the API is bound.
      const page = lookupPageFor(settings.lookupPage, log.child('api'));
      jsonApi = await startJsonApi(
        {
          host,
          port: api,
          cert: tls.cert,
          key: tls.key,
          ...(settings.maxBatch === undefined ? {} : { maxBatch: settings.maxBatch }),
          ...limits.api,
        },
        resolver,
        {
          log: log.child('api'),
          metrics,
          limits: clientLimits,
          ...(queryLog !== undefined && settings.queryLog?.api === true
            ? { lookupLog: lookupLogOf(queryLog, apex) }
            : {}),
          ...(gateway === undefined ? {} : { gateway: gateway.mount }),
          ...(page === undefined ? {} : { page }),
        },
      );
      started.push(jsonApi);
      metrics.watchConnections('api', jsonApi);
    }
    const clock = components.now ?? systemClock;
    const startedAt = clock();
    const configFile = components.configFile;
    const reload = createTlsReload(
      settings,
      components.reloadSettings,
      () => [...(dns?.doh ? [dns.doh] : []), ...(jsonApi ? [jsonApi] : [])],
      { configFile, log },
    );
    let adminServer: AdminServer | undefined;
    const control = await openServerControl(
      settings.control,
      configFile === undefined ? undefined : join(dirname(configFile), CONTROL_SOCKET_NAME),
      resolverControlHandlers({
        resolver,
        metrics,
        now: clock,
        startedAt,
        configFile,
        listeners: () => [
          ...(dns?.udp ? [{ listener: 'udp', ...dns.udp }] : []),
          ...(dns?.tcp ? [{ listener: 'tcp', host: dns.tcp.host, port: dns.tcp.port }] : []),
          ...(dns?.doh ? [{ listener: 'doh', url: dns.doh.url }] : []),
          ...(jsonApi ? [{ listener: 'api', url: jsonApi.url }] : []),
          ...(adminServer ? [{ listener: 'admin', url: adminServer.url }] : []),
          ...(control.socket ? [{ listener: 'control', path: control.socket.path }] : []),
        ],
        reload,
        clearAnswerCache: () => answerCache?.clear(),
      }),
      log.child('control'),
    );
    started.push(control);
    if (admin !== null) {
      adminServer = await startAdminServer(
        { host, port: admin },
        {
          registry: metrics.registry,
          health: () => {
            const stats = resolver.stats();
            return {
              ok: true,
              detail: {
                apex,
                cacheBytes: stats.cacheBytes,
                upstreamQueries: stats.upstreamQueries,
              },
            };
          },
          log: log.child('admin'),
          control: { dispatcher: control.dispatcher, key: control.key },
        },
      );
      started.push(adminServer);
      metrics.watchConnections('admin', adminServer);
    }
    await control.listen();
    log.info('started', {
      apex,
      udp: dns?.udp?.port,
      tcp: dns?.tcp?.port,
      doh: dns?.doh?.url,
      api: jsonApi?.url,
      admin: adminServer?.url,
      control: control.socket?.path,
    });
    let closing: Promise<void> | undefined;
    return {
      dns,
      api: jsonApi,
      admin: adminServer,
      metrics,
      queryLog,
      limits: clientLimits,
      gateway,
      flushCache: () => {
        resolver.flushCache();
        answerCache?.clear();
      },
      control,
      reload,
      close: () => {
        closing ??= Promise.allSettled(started.map((s) => s.close()))
          .then(() => gateway?.close())
          .then(() => queryLog?.close());
        return closing;
      },
    };
  } catch (error) {
    await Promise.allSettled(started.map((s) => s.close()));
    await gateway?.close();
    await queryLog?.close();
    throw error;
  }
}

/**
 * A lookup log writing each CSI discovered through the JSON API to `queryLog`: the CSI's name
 * under `apex` (an email's local part hashed, as in the tree), type MAP, the transport (`api`,
 * or `ohttp` through the gateway), and the result's status. A direct API lookup is never
 * written with the client's address: the line holds a CSI (design §10). One through the gateway
 * carries the outer peer, the relay's address, which the log writes only when configured with
 * `peer`. An input that is not a CSI names nothing and is not recorded.
 */
function lookupLogOf(queryLog: QueryLog, apex: string): LookupLog {
  return (results, source) => {
    for (const result of results) {
      if (result.error?.reason === 'invalid-csi') continue;
      let name: string;
      try {
        name = csiToName(result.csi as Csi, apex);
      } catch {
        continue;
      }
      queryLog.record({
        name,
        type: 'MAP',
        transport: source.transport,
        status: result.status,
        ...(source.peer === undefined ? {} : { peer: source.peer }),
      });
    }
  };
}
