import {
  createMetricsRegistry,
  declareConnectionMetrics,
  declareQueryLogMetrics,
  type ConnectionStatsSource,
  type Counter,
  type Histogram,
  type MetricsRegistry,
} from '@mimi-discovery/common';

/**
 * The relay's Prometheus metrics (design §10), served on its admin port:
 *
 * | metric                                          | type      | what                                     |
 * | ----------------------------------------------- | --------- | ---------------------------------------- |
 * | `relay_requests_total{route,status}`            | counter   | requests answered, by route and HTTP status |
 * | `relay_request_octets_total{route}`             | counter   | request body octets read                 |
 * | `relay_response_octets_total{route}`            | counter   | response body octets sent                |
 * | `relay_forward_duration_seconds{route}`         | histogram | one forward, sent to response read       |
 * | `relay_forward_failures_total{reason}`          | counter   | `timeout`, `unreachable`, `too_large`    |
 * | `relay_rate_limited_total{limit}`               | counter   | `requests` (token bucket), `client_forwards`, `forwards` |
 * | `relay_forwards_in_flight`                      | gauge     | forwards in progress now                 |
 * | `relay_connections_refused_total{listener,reason}` | counter | `relay`, `admin`: closed at accept      |
 * | `relay_connections_closed_total{listener,reason}`  | counter | closed by the relay                     |
 * | `relay_query_log_lines_total`                   | counter   | query log lines written                  |
 * | `relay_query_log_dropped_lines_total`           | counter   | query log lines dropped                  |
 *
 * `route` is one of {@link RELAY_ROUTES}: the kind of resource, never the gateway's name or an
 * ODoH target (a config value, but a target is what a client asked for), and never an address.
 */

/** The `route` label: what a request asked for. */
export const RELAY_ROUTES = Object.freeze([
  /** `POST /ohttp/<name>`: an encapsulated request. */
  'ohttp',
  /** `GET /ohttp/<name>`: the gateway's key configs. */
  'ohttp_keys',
  /** `POST /proxy`: an ODoH query. */
  'odoh',
  /** `GET /proxy`: a target's ODoH configs. */
  'odoh_configs',
  /** Anything else (refused). */
  'other',
] as const);

/** A value of {@link RELAY_ROUTES}. */
export type RelayRoute = (typeof RELAY_ROUTES)[number];

/** Why a forward failed. */
export type ForwardFailure = 'timeout' | 'unreachable' | 'too_large';

/** Which limit refused a request. */
export type RelayLimitHit = 'requests' | 'client_forwards' | 'forwards';

/** Upper bounds of the forward duration buckets, seconds. */
export const FORWARD_DURATION_BUCKETS = Object.freeze([
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
]);

/** The metrics of one relay, and what its handler records in them. */
export interface RelayMetrics {
  readonly registry: MetricsRegistry;
  recordRequest(route: RelayRoute, status: number, octetsIn: number, octetsOut: number): void;
  recordForward(route: RelayRoute, seconds: number): void;
  recordForwardFailure(reason: ForwardFailure): void;
  recordLimited(limit: RelayLimitHit): void;
}

/** What the collected metrics read when scraped. */
export interface RelayMetricsSources {
  forwardsInFlight(): number;
  /** Listeners by name (`relay`, `admin`), once started. */
  listeners(): Iterable<readonly [string, ConnectionStatsSource]>;
  queryLog(): { stats(): { written: number; dropped: number } } | undefined;
}

/** Declares the relay's metrics in a registry of their own (prefix `relay`). */
export function createRelayMetrics(sources: RelayMetricsSources): RelayMetrics {
  const registry = createMetricsRegistry('relay', { processMetrics: true });
  const requests: Counter<'route' | 'status'> = registry.counter('requests_total', {
    help: 'Requests answered, by route and HTTP status',
    labelNames: ['route', 'status'],
  });
  const octetsIn: Counter<'route'> = registry.counter('request_octets_total', {
    help: 'Request body octets read from clients, by route',
    labelNames: ['route'],
  });
  const octetsOut: Counter<'route'> = registry.counter('response_octets_total', {
    help: 'Response body octets sent to clients, by route',
    labelNames: ['route'],
  });
  const duration: Histogram<'route'> = registry.histogram('forward_duration_seconds', {
    help: 'Time of one forward, from sending it to reading the whole response',
    labelNames: ['route'],
    buckets: FORWARD_DURATION_BUCKETS,
  });
  const failures: Counter<'reason'> = registry.counter('forward_failures_total', {
    help: 'Forwards without a usable response, by reason (timeout, unreachable, too_large)',
    labelNames: ['reason'],
  });
  const limited: Counter<'limit'> = registry.counter('rate_limited_total', {
    help: 'Requests refused by a limit (requests, client_forwards, forwards)',
    labelNames: ['limit'],
  });
  registry.gauge('forwards_in_flight', {
    help: 'Forwards in progress now',
    collect() {
      this.set(sources.forwardsInFlight());
    },
  });
  declareConnectionMetrics(registry, sources.listeners);
  declareQueryLogMetrics(registry, sources.queryLog);
  return {
    registry,
    recordRequest(route, status, inOctets, outOctets) {
      requests.inc({ route, status: String(status) });
      if (inOctets > 0) octetsIn.inc({ route }, inOctets);
      if (outOctets > 0) octetsOut.inc({ route }, outOctets);
    },
    recordForward: (route, seconds) => duration.observe({ route }, seconds),
    recordForwardFailure: (reason) => failures.inc({ reason }),
    recordLimited: (limit) => limited.inc({ limit }),
  };
}
