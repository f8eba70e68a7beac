import {
  AggregatorRegistry,
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
} from 'prom-client';
import { MimiError } from '../protocol/errors.js';

export type { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics (design §10) through `prom-client`, one {@link Registry} per server and
 * never prom-client's global default registry, so that two servers in one process (as in the
 * integration tests) keep separate counts and nothing is shared between them.
 *
 * Names follow the house style `<pkg>_<noun>_<unit|total>`: the registry holds the package
 * prefix, and each declaration gives the rest, checked when declared against the rules that
 * `promtool check metrics` applies (a counter ends in `_total`, nothing else does; `_count`,
 * `_sum` and `_bucket` are the series a histogram writes, never a name of its own):
 *
 * ```ts
 * const metrics = createMetricsRegistry('authoritative');
 * const queries = metrics.counter('queries_total', { help: 'Queries answered', labelNames: ['transport', 'rcode'] });
 * queries.inc({ transport: 'doh', rcode: 'NOERROR' }); // authoritative_queries_total{…} 1
 * ```
 *
 * Labels must never carry a CSI or a client address (design §10): label values are a small,
 * fixed set (a transport, an rcode, an outcome).
 *
 * One way to declare, in every package: a server's metrics are declared in its package's
 * `metrics.ts`, each once. An event on the request path updates its metric where it happens;
 * a count that another part keeps (a cache, a listener) is read by the metric's own `collect`
 * when metrics are scraped, and nothing is copied from one metric's `collect` into another.
 */

/** The content type of the Prometheus text format that {@link metricsText} produces. */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** Options of a counter or gauge: help text and label names. */
export interface MetricOptions<L extends string> {
  /** One line saying what is counted or measured. */
  help: string;
  labelNames?: readonly L[];
}

/**
 * Options of a counter that mirrors a count kept elsewhere: `collect` sets it when metrics are
 * scraped (with `reset()` then `inc(total)`), so the hot path only bumps a plain number.
 */
export interface CounterOptions<L extends string> extends MetricOptions<L> {
  collect?: (this: Counter<L>) => void | Promise<void>;
}

/** Options of a gauge: a `collect` function can set it when metrics are scraped. */
export interface GaugeOptions<L extends string> extends MetricOptions<L> {
  collect?: (this: Gauge<L>) => void | Promise<void>;
}

/** Options of a histogram: bucket upper bounds, in the metric's unit. */
export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  buckets?: readonly number[];
}

/** Options of {@link createMetricsRegistry}. */
export interface MetricsRegistryOptions {
  /**
   * Also collect prom-client's process metrics (`process_cpu_seconds_total`,
   * `nodejs_eventloop_lag_seconds`, …), unprefixed as every exporter names them, less
   * {@link DROPPED_PROCESS_METRICS}. Default false.
   */
  processMetrics?: boolean;
}

/** A server's metrics: its registry and the functions that declare metrics in it. */
export interface MetricsRegistry {
  /** The package prefix of every metric name (`authoritative`). */
  readonly prefix: string;
  readonly registry: Registry;
  /** Declares `<prefix>_<name>`; `name` ends in `_total`. */
  counter<L extends string = never>(name: string, options: CounterOptions<L>): Counter<L>;
  /** Declares `<prefix>_<name>`; `name` ends in its unit, not `_total`. */
  gauge<L extends string = never>(name: string, options: GaugeOptions<L>): Gauge<L>;
  /** Declares `<prefix>_<name>`; `name` ends in its unit, not `_total`. */
  histogram<L extends string = never>(name: string, options: HistogramOptions<L>): Histogram<L>;
}

/**
 * prom-client's process metrics that are left out: gauges whose names end in `_total`, which
 * `promtool check metrics` rejects ("non-counter metrics should not have _total suffix"). Each
 * is the sum of a gauge that is kept, labelled by type (`nodejs_active_handles{type}` …), so
 * `sum(nodejs_active_handles)` gives what it held.
 */
export const DROPPED_PROCESS_METRICS: readonly string[] = Object.freeze([
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
]);

/** Endings of the series a histogram writes (and a summary's `_count`, `_sum`). */
const RESERVED_SUFFIXES = Object.freeze(['_count', '_sum', '_bucket']);

const PREFIX = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;
/** A noun and a unit at least: `queries_total`, `cache_bytes`, `answer_duration_seconds`. */
const NAME = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$/;
const LABEL = /^[a-z][a-z0-9_]*$/;

/** The codes of a {@link MetricsError}. */
export type MetricsErrorCode = 'ERR_METRIC_NAME' | 'ERR_METRIC_DUPLICATE';

/** A metric declared against the naming rules, or twice: a fault of the declaring code. */
export class MetricsError extends MimiError<MetricsErrorCode> {}

/**
 * A registry for one server whose metric names start with `prefix` (the package: `resolver`,
 * `authoritative`). Throws `MetricsError` `ERR_METRIC_NAME` for a prefix, name or label name
 * against the naming rules, and `ERR_METRIC_DUPLICATE` for a name declared twice.
 */
export function createMetricsRegistry(
  prefix: string,
  options: MetricsRegistryOptions = {},
): MetricsRegistry {
  if (!PREFIX.test(prefix)) {
    throw new MetricsError(
      'ERR_METRIC_NAME',
      `metric prefix ${JSON.stringify(prefix)} is not snake_case`,
    );
  }
  const registry = new Registry();
  if (options.processMetrics === true) {
    collectDefaultMetrics({ register: registry });
    for (const name of DROPPED_PROCESS_METRICS) registry.removeSingleMetric(name);
  }

  const declare = <L extends string>(
    kind: 'counter' | 'gauge' | 'histogram',
    name: string,
    labelNames: readonly L[] | undefined,
  ): { name: string; labelNames: L[]; registers: Registry[] } => {
    if (!NAME.test(name)) {
      throw new MetricsError(
        'ERR_METRIC_NAME',
        `metric name ${JSON.stringify(name)} is not <noun>_<unit|total> in snake_case`,
      );
    }
    if (kind === 'counter' && !name.endsWith('_total')) {
      throw new MetricsError('ERR_METRIC_NAME', `counter ${name} must end in _total`);
    }
    if (kind !== 'counter' && name.endsWith('_total')) {
      throw new MetricsError('ERR_METRIC_NAME', `${kind} ${name} must end in its unit, not _total`);
    }
    const reserved = RESERVED_SUFFIXES.find((suffix) => name.endsWith(suffix));
    if (reserved !== undefined) {
      throw new MetricsError(
        'ERR_METRIC_NAME',
        `${kind} ${name} must not end in ${reserved}: a histogram writes series with that ending`,
      );
    }
    for (const label of labelNames ?? []) {
      if (!LABEL.test(label)) {
        throw new MetricsError(
          'ERR_METRIC_NAME',
          `label name ${JSON.stringify(label)} is not snake_case`,
        );
      }
    }
    const full = `${prefix}_${name}`;
    if (registry.getSingleMetric(full) !== undefined) {
      throw new MetricsError('ERR_METRIC_DUPLICATE', `metric ${full} is already declared`);
    }
    // `registers` is always given: without it prom-client would use its global registry.
    return { name: full, labelNames: [...(labelNames ?? [])], registers: [registry] };
  };

  return {
    prefix,
    registry,
    counter: <L extends string = never>(name: string, o: CounterOptions<L>): Counter<L> =>
      new Counter<L>({
        ...declare('counter', name, o.labelNames),
        help: o.help,
        ...(o.collect === undefined ? {} : { collect: o.collect }),
      }),
    gauge: <L extends string = never>(name: string, o: GaugeOptions<L>): Gauge<L> =>
      new Gauge<L>({
        ...declare('gauge', name, o.labelNames),
        help: o.help,
        ...(o.collect === undefined ? {} : { collect: o.collect }),
      }),
    histogram: <L extends string = never>(name: string, o: HistogramOptions<L>): Histogram<L> =>
      new Histogram<L>({
        ...declare('histogram', name, o.labelNames),
        help: o.help,
        ...(o.buckets === undefined ? {} : { buckets: [...o.buckets] }),
      }),
  };
}

/** The registry's metrics in the Prometheus text format ({@link METRICS_CONTENT_TYPE}). */
export function metricsText(registry: Registry | MetricsRegistry): Promise<string> {
  return (registry instanceof Registry ? registry : registry.registry).metrics();
}

/**
 * The metrics of one process as `Registry.getMetricsAsJSON` gives them: plain data, what a
 * `node:cluster` worker sends its primary.
 */
export type MetricsSnapshot = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/**
 * The counters and histograms of `snapshots` summed into one snapshot, gauges left out: what
 * processes that ended leave behind, so that a server's counters, kept on in its other processes
 * and their successors, never go down (a drop reads as a counter reset).
 */
export async function cumulativeSnapshot(
  snapshots: readonly MetricsSnapshot[],
): Promise<MetricsSnapshot> {
  const kept = snapshots.map((snapshot) =>
    // prom-client's types declare a numeric enum; its JSON carries the type's name.
    snapshot.filter((metric) => ['counter', 'histogram'].includes(String(metric.type))),
  );
  return AggregatorRegistry.aggregate(kept).getMetricsAsJSON();
}

/**
 * A registry for a server that runs in several processes (`node:cluster`): its text at each
 * scrape is `own`'s metrics merged with the snapshots `others` yields then, by prom-client's
 * `AggregatorRegistry.aggregate` (counters and histograms summed per label set, gauges by their
 * `aggregator`, default sum). Give it to the admin endpoint in place of `own`.
 */
export function aggregatedRegistry(
  own: MetricsRegistry,
  others: () => Promise<readonly MetricsSnapshot[]>,
): Registry {
  const merged = async (): Promise<Registry> =>
    AggregatorRegistry.aggregate([await own.registry.getMetricsAsJSON(), ...(await others())]);
  return new (class extends Registry {
    override async metrics(): Promise<string> {
      return (await merged()).metrics();
    }
    override async getMetricsAsJSON(): Promise<MetricsSnapshot> {
      return (await merged()).getMetricsAsJSON();
    }
  })();
}
