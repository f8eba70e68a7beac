import {
  declareConnectionMetrics,
  createMetricsRegistry,
  declareAnswerCacheMetrics,
  declareQueryLogMetrics,
  type ConnectionListener,
  type ConnectionStatsSource,
  type AnswerCacheStats,
  type Histogram,
  type MetricsRegistry,
  type QueryLog,
  type Rcode,
} from '@mimi-discovery/common';
import {
  LIMITED_FRONT_ENDS,
  LIMIT_KINDS,
  type ClientLimitStats,
  type LimitedFrontEnd,
} from './front-end-limits.js';
import type { DiscoveryResult, Resolver } from './types.js';

/**
 * The resolver's Prometheus metrics (design §10), served on the admin port:
 *
 * | metric                                              | type      | from                          |
 * | --------------------------------------------------- | --------- | ----------------------------- |
 * | `resolver_cache_hits_total{cache}`                  | counter   | `stats()`: `answer`, `discovery` |
 * | `resolver_cache_misses_total{cache}`                | counter   | `stats()`: `answer`, `discovery` |
 * | `resolver_upstream_rtt_seconds{upstream}`           | histogram | each answer of a server (address or URL) |
 * | `resolver_upstream_errors_total{upstream,kind}`     | counter   | each failed query: `timeout`, `certificate`, `connect`, or the rcode (`servfail`, `refused`, …) |
 * | `resolver_trust_anchor_keys{state}`                 | gauge     | `stats()`: RFC 5011 states of the apex's keys |
 * | `resolver_authkey_refetches_total{outcome}`         | counter   | `stats()`: AUTHKEY asked again for an unknown prover: `allowed`, `refused` by the bounds |
 * | `resolver_cache_bytes`                              | gauge     | `stats()`                     |
 * | `resolver_upstream_queries_total`                   | counter   | `stats()`                     |
 * | `resolver_validation_failures_total{reason}`        | counter   | `stats()`                     |
 * | `resolver_signature_verifications_total`            | counter   | `stats()`: RRSIG × key tried  |
 * | `resolver_failure_cache_hits_total`                 | counter   | `stats()`: RFC 9520 answers   |
 * | `resolver_discoveries_total{status}`                | counter   | the JSON API, per CSI         |
 * | `resolver_resolution_duration_seconds{kind}`        | histogram | front ends: `dns`, `discover` (one CSI), `batch` (one POST) |
 * | `resolver_queries_total{transport,rcode}`           | counter   | the DNS front ends            |
 * | `resolver_api_requests_total{status}`               | counter   | the JSON API, by HTTP status  |
 * | `resolver_root_copy_valid`                          | gauge     | `stats()`: 1 with a valid copy |
 * | `resolver_root_copy_serial`                         | gauge     | `stats()`: the copy's SOA serial |
 * | `resolver_root_copy_age_seconds`                    | gauge     | `stats()`: since its transfer |
 * | `resolver_root_copy_delegations`                    | gauge     | `stats()`: delegations in use |
 * | `resolver_root_copy_transfers_total{outcome}`       | counter   | `stats()`: `ok`, `failed` (refused, cut off or rejected) |
 * | `resolver_connections_refused_total{listener,reason}` | counter | listeners: closed at accept |
 * | `resolver_connections_closed_total{listener,reason}`  | counter | listeners: closed by the server |
 * | `resolver_query_log_lines_total`                    | counter   | the query log's count         |
 * | `resolver_query_log_dropped_lines_total`            | counter   | the query log's count         |
 * | `resolver_rate_limited_total{frontend,limit,action}` | counter | the per-client limits' counts |
 * | `resolver_rate_limit_entries{table}`               | gauge     | the per-client limits' tables |
 * | `resolver_gateway_requests_total{path,status}`     | counter   | the gateway: outer requests by path and HTTP status, inner requests by `inner:<path>` and inner status |
 * | `resolver_gateway_tokens_total{outcome}`           | counter   | the gateway's token redemptions: `redeemed`, `required`, `invalid`, `spent`, `key_expired` |
 *
 * plus the process metrics of prom-client. Label values are small fixed sets (a status, a
 * reason, a transport): never a CSI, a query name or a client address.
 *
 * One way to declare, as in every package: each metric is declared here, once. What the front
 * ends see is recorded when it happens (`record…`); what another part keeps a count of (the
 * resolver core's `ResolverStats`, the answer cache, the listeners) is read by the metric's own
 * `collect` when metrics are scraped, so the core bumps plain numbers and nothing is copied
 * between metrics.
 */

/** What a front end measures: one DNS question, one GET discovery, or one POST batch. */
export type ResolutionKind = 'dns' | 'discover' | 'batch';

/** Upper bounds of the resolution duration buckets, in seconds: from a cache hit to a slow walk. */
export const RESOLUTION_DURATION_BUCKETS = Object.freeze([
  0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/** The metrics of one resolver server, and what the front ends record in them. */
export interface ResolverMetrics {
  readonly registry: MetricsRegistry;
  /** One DNS question answered by a DNS front end, in `seconds`. */
  recordQuery(transport: 'udp' | 'tcp' | 'doh', rcode: Rcode, seconds: number): void;
  /** The results of one JSON API request, which took `seconds`. */
  recordDiscoveries(
    kind: 'discover' | 'batch',
    results: readonly DiscoveryResult[],
    seconds: number,
  ): void;
  /** One JSON API request answered with HTTP `status`. */
  recordApiRequest(status: number): void;
  /** Reports the counts of the DNS front ends' answer cache. */
  watchAnswerCache(cache: { readonly stats: AnswerCacheStats }): void;
  /** Reports the connection refusals and closes of a listener. */
  watchConnections(listener: ConnectionListener, source: ConnectionStatsSource): void;
  /** Reports the lines written and dropped by the query log. */
  watchQueryLog(queryLog: Pick<QueryLog, 'stats'>): void;
  /** Reports the refusals and table sizes of the per-client limits (`front-end-limits.ts`). */
  watchClientLimits(limits: { stats(): ClientLimitStats }): void;
  /**
   * One request to the gateway: an outer one by its path, or an inner one by `inner:<path>`
   * (a path the gateway serves, or `inner:other`), with its HTTP status.
   */
  recordGatewayRequest(path: string, status: number): void;
  /** One token redemption at the gateway, by outcome (`gateway/tokens.ts`). */
  recordGatewayToken(outcome: string): void;
}

/**
 * What a front end does with a request over a limit: the DNS front ends over UDP and TCP answer
 * REFUSED (with an Extended DNS Error), DoH and the JSON API answer HTTP 429.
 */
function limitAction(frontEnd: LimitedFrontEnd): 'refused' | '429' {
  return frontEnd === 'udp' || frontEnd === 'tcp' ? 'refused' : '429';
}

/** Upper bounds of the upstream RTT buckets, in seconds: from a local server to a timeout. */
export const UPSTREAM_RTT_BUCKETS = Object.freeze([
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5,
]);

/**
 * Servers labelled by their own address in the upstream metrics at most; the queries to any
 * further one count under `upstream="other"`, so that delegations to many servers cannot grow
 * the metrics without bound.
 */
export const MAX_UPSTREAM_METRIC_SERVERS = 256;

/**
 * Declares the metrics of a resolver server in a new registry, reading `resolver.stats()`, and
 * watching its queries to servers when it offers `observeUpstream`.
 */
export function createResolverMetrics(
  resolver: Pick<Resolver, 'stats'> & Partial<Pick<Resolver, 'observeUpstream'>>,
): ResolverMetrics {
  const registry = createMetricsRegistry('resolver', { processMetrics: true });
  // Hits and misses as counters, so that a ratio is taken over any window (`rate(hits) /
  // (rate(hits) + rate(misses))`), not only since start.
  registry.counter<'cache'>('cache_hits_total', {
    help: 'Cache lookups answered from the cache, by cache: answer (questions), discovery (results)',
    labelNames: ['cache'],
    collect() {
      this.reset();
      for (const [cache, count] of Object.entries(resolver.stats().cacheHitsBy)) {
        this.inc({ cache }, count);
      }
    },
  });
  registry.counter<'cache'>('cache_misses_total', {
    help: 'Cache lookups the cache could not answer, by cache: answer (questions), discovery (results)',
    labelNames: ['cache'],
    collect() {
      this.reset();
      for (const [cache, count] of Object.entries(resolver.stats().cacheMissesBy)) {
        this.inc({ cache }, count);
      }
    },
  });
  const upstreamRtt = registry.histogram<'upstream'>('upstream_rtt_seconds', {
    help: 'Time a server took to answer one query, by server address or URL',
    labelNames: ['upstream'],
    buckets: UPSTREAM_RTT_BUCKETS,
  });
  const upstreamErrors = registry.counter<'upstream' | 'kind'>('upstream_errors_total', {
    help: 'Queries to a server that failed, by server address or URL and kind (timeout, certificate, connect, or the rcode)',
    labelNames: ['upstream', 'kind'],
  });
  const labelled = new Set<string>();
  resolver.observeUpstream?.((server, result) => {
    if (!labelled.has(server) && labelled.size < MAX_UPSTREAM_METRIC_SERVERS) labelled.add(server);
    const upstream = labelled.has(server) ? server : 'other';
    if ('rttSeconds' in result) upstreamRtt.observe({ upstream }, result.rttSeconds);
    else upstreamErrors.inc({ upstream, kind: result.error });
  });
  registry.counter<'outcome'>('authkey_refetches_total', {
    help: 'AUTHKEY RRsets asked again for a prover they lacked: allowed, or refused by the bounds',
    labelNames: ['outcome'],
    collect() {
      this.reset();
      const { allowed, refused } = resolver.stats().authkeyRefetches;
      this.inc({ outcome: 'allowed' }, allowed);
      this.inc({ outcome: 'refused' }, refused);
    },
  });
  registry.gauge<'state'>('trust_anchor_keys', {
    help: "Keys of the apex's trust point by RFC 5011 state (addpend, valid, missing, revoked, removed)",
    labelNames: ['state'],
    collect() {
      this.reset();
      for (const [state, count] of Object.entries(resolver.stats().trustAnchorKeys)) {
        this.set({ state }, count);
      }
    },
  });
  registry.gauge('cache_bytes', {
    help: 'Bytes held by the cache',
    collect() {
      this.set(resolver.stats().cacheBytes);
    },
  });
  // Counters read from the core only go up: each is set to the core's running total.
  registry.counter('upstream_queries_total', {
    help: 'Queries sent to root and Discovery Provider servers',
    collect() {
      this.reset();
      this.inc(resolver.stats().upstreamQueries);
    },
  });
  registry.counter<'reason'>('validation_failures_total', {
    help: 'DNSSEC and mapping validation failures, by reason',
    labelNames: ['reason'],
    collect() {
      this.reset();
      for (const [reason, count] of Object.entries(resolver.stats().validationFailures)) {
        this.inc({ reason }, count);
      }
    },
  });
  registry.counter('signature_verifications_total', {
    help: 'DNSSEC signature verifications (one RRSIG tried with one key)',
    collect() {
      this.reset();
      this.inc(resolver.stats().signatureVerifications);
    },
  });
  registry.counter('failure_cache_hits_total', {
    help: 'Questions answered from the cache of failed resolutions (RFC 9520)',
    collect() {
      this.reset();
      this.inc(resolver.stats().failureCacheHits);
    },
  });
  // The local root copy (`root-copy.ts`): 0 for the values of a copy when there is none.
  registry.gauge('root_copy_valid', {
    help: 'Whether a validated copy of the root zone is in use (1) or not (0)',
    collect() {
      this.set(resolver.stats().rootCopy.state === 'valid' ? 1 : 0);
    },
  });
  registry.gauge('root_copy_serial', {
    help: 'SOA serial of the root zone copy in use (0 without one)',
    collect() {
      this.set(resolver.stats().rootCopy.serial ?? 0);
    },
  });
  registry.gauge('root_copy_age_seconds', {
    help: 'Seconds since the root zone copy in use was transferred (0 without one)',
    collect() {
      this.set(resolver.stats().rootCopy.ageSeconds ?? 0);
    },
  });
  registry.gauge('root_copy_delegations', {
    help: 'Delegations of the root zone copy in use (0 without one)',
    collect() {
      this.set(resolver.stats().rootCopy.delegations ?? 0);
    },
  });
  registry.counter<'outcome'>('root_copy_transfers_total', {
    help: 'Transfers of the root zone, by outcome: ok, failed (refused, cut off or rejected)',
    labelNames: ['outcome'],
    collect() {
      this.reset();
      const { transfersOk, transfersFailed } = resolver.stats().rootCopy;
      this.inc({ outcome: 'ok' }, transfersOk);
      this.inc({ outcome: 'failed' }, transfersFailed);
    },
  });
  const discoveries = registry.counter<'status'>('discoveries_total', {
    help: 'CSIs discovered through the JSON API, by result status',
    labelNames: ['status'],
  });
  const duration: Histogram<'kind'> = registry.histogram<'kind'>('resolution_duration_seconds', {
    help: 'Time to answer one DNS question, one discovery, or one batch of discoveries',
    labelNames: ['kind'],
    buckets: RESOLUTION_DURATION_BUCKETS,
  });
  const queries = registry.counter<'transport' | 'rcode'>('queries_total', {
    help: 'DNS questions answered by the DNS front ends, by transport and response code',
    labelNames: ['transport', 'rcode'],
  });
  const requests = registry.counter<'status'>('api_requests_total', {
    help: 'JSON API requests, by HTTP status',
    labelNames: ['status'],
  });
  let answerCache: { readonly stats: AnswerCacheStats } | undefined;
  declareAnswerCacheMetrics(registry, () => answerCache);

  const connectionSources = new Map<ConnectionListener, ConnectionStatsSource>();
  declareConnectionMetrics(registry, () => connectionSources);
  let queryLog: Pick<QueryLog, 'stats'> | undefined;
  declareQueryLogMetrics(registry, () => queryLog);

  let clientLimits: { stats(): ClientLimitStats } | undefined;
  registry.counter<'frontend' | 'limit' | 'action'>('rate_limited_total', {
    help: 'Requests and DNS queries refused by the per-client limits, by front end, limit and action (refused, 429)',
    labelNames: ['frontend', 'limit', 'action'],
    collect() {
      this.reset();
      const limited = clientLimits?.stats().limited;
      if (limited === undefined) return;
      for (const frontend of LIMITED_FRONT_ENDS) {
        for (const limit of LIMIT_KINDS) {
          const count = limited[frontend][limit];
          if (count > 0) this.inc({ frontend, limit, action: limitAction(frontend) }, count);
        }
      }
    },
  });
  registry.gauge<'table'>('rate_limit_entries', {
    help: 'Entries held by the per-client limits: clients per table (new_names, queries, requests) and names remembered (seen)',
    labelNames: ['table'],
    collect() {
      this.reset();
      const entries = clientLimits?.stats().entries;
      if (entries === undefined) return;
      for (const [table, count] of Object.entries(entries)) this.set({ table }, count);
    },
  });

  const gatewayRequests = registry.counter<'path' | 'status'>('gateway_requests_total', {
    help: 'Requests to the oblivious gateway: outer by path, inner by inner:<path>, with the HTTP status',
    labelNames: ['path', 'status'],
  });
  const gatewayTokens = registry.counter<'outcome'>('gateway_tokens_total', {
    help: 'Privacy Pass token redemptions at the gateway, by outcome',
    labelNames: ['outcome'],
  });

  return {
    registry,
    recordGatewayRequest(path, status) {
      gatewayRequests.inc({ path, status: String(status) });
    },
    recordGatewayToken(outcome) {
      gatewayTokens.inc({ outcome });
    },
    watchQueryLog(source) {
      queryLog = source;
    },
    watchAnswerCache(cache) {
      answerCache = cache;
    },
    watchConnections(listener, source) {
      connectionSources.set(listener, source);
    },
    watchClientLimits(limits) {
      clientLimits = limits;
    },
    recordQuery(transport, rcode, seconds) {
      queries.inc({ transport, rcode });
      duration.observe({ kind: 'dns' }, seconds);
    },
    recordDiscoveries(kind, results, seconds) {
      // Counted here first: a labelled inc costs a label lookup, and a batch has 1000 results.
      let none = 0;
      let empty = 0;
      let found = 0;
      let error = 0;
      for (const result of results) {
        if (result.status === 'found') found++;
        else if (result.status === 'none') none++;
        else if (result.status === 'empty') empty++;
        else error++;
      }
      if (found > 0) discoveries.inc({ status: 'found' }, found);
      if (none > 0) discoveries.inc({ status: 'none' }, none);
      if (empty > 0) discoveries.inc({ status: 'empty' }, empty);
      if (error > 0) discoveries.inc({ status: 'error' }, error);
      duration.observe({ kind }, seconds);
    },
    recordApiRequest(status) {
      requests.inc({ status: String(status) });
    },
  };
}
