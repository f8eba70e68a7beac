import {
  createMetricsRegistry,
  declareConnectionMetrics,
  type ConnectionStatsSource,
  type Counter,
  type Histogram,
  type MetricsRegistry,
} from '@mimi-discovery/common';

/**
 * The issuer's metrics (prefix `issuer`). Labels never name a user or a client address.
 *
 * - `issuer_token_requests_total{outcome}`: token requests by outcome — `issued`,
 *   `unauthenticated`, `quota`, `bad_request`, `key_unknown`, `busy`, `error`;
 * - `issuer_token_keys{state}`: token keys `active` (valid now) and `announced` (listed, not yet
 *   valid);
 * - `issuer_signing_duration_seconds`: time to sign one blinded request;
 * - `issuer_connections_refused_total`, `issuer_connections_closed_total` by listener.
 */

/** The outcomes of a token request, as the `outcome` label. */
export const TOKEN_REQUEST_OUTCOMES = Object.freeze([
  'issued',
  'unauthenticated',
  'quota',
  'bad_request',
  'key_unknown',
  'busy',
  'error',
] as const);

/** One of {@link TOKEN_REQUEST_OUTCOMES}. */
export type TokenRequestOutcome = (typeof TOKEN_REQUEST_OUTCOMES)[number];

/** The issuer's metrics. */
export interface IssuerMetrics {
  readonly metrics: MetricsRegistry;
  readonly requests: Counter<'outcome'>;
  readonly signing: Histogram;
  /** Counts the listener's connections under `name` at each scrape. */
  watchConnections(name: string, source: ConnectionStatsSource): void;
}

/** Declares the issuer's metrics; `keys` gives the token key counts at each scrape. */
export function createIssuerMetrics(
  keys: () => { active: number; announced: number },
): IssuerMetrics {
  const metrics = createMetricsRegistry('issuer', { processMetrics: true });
  const requests = metrics.counter<'outcome'>('token_requests_total', {
    help: 'Token requests by outcome',
    labelNames: ['outcome'],
  });
  for (const outcome of TOKEN_REQUEST_OUTCOMES) requests.inc({ outcome }, 0);
  metrics.gauge<'state'>('token_keys', {
    help: 'Token keys by state (active: valid now; announced: listed, not yet valid)',
    labelNames: ['state'],
    collect() {
      const counts = keys();
      this.set({ state: 'active' }, counts.active);
      this.set({ state: 'announced' }, counts.announced);
    },
  });
  const signing = metrics.histogram('signing_duration_seconds', {
    help: 'Time to sign one blinded token request',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5],
  });
  const sources = new Map<string, ConnectionStatsSource>();
  declareConnectionMetrics(metrics, () => sources.entries());
  return {
    metrics,
    requests,
    signing,
    watchConnections: (name, source) => {
      sources.set(name, source);
    },
  };
}
