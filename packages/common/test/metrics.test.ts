import { Counter, Gauge, Histogram, Registry, register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  DROPPED_PROCESS_METRICS,
  createMetricsRegistry,
  cumulativeSnapshot,
  METRICS_CONTENT_TYPE,
  metricsText,
  MimiError,
} from '../src/index.js';

function errorOf(fn: () => unknown): MimiError {
  try {
    fn();
  } catch (error) {
    if (error instanceof MimiError) return error;
    throw error;
  }
  throw new Error('no error thrown');
}

describe('createMetricsRegistry', () => {
  it('names metrics <pkg>_<noun>_<unit|total> and writes the Prometheus text format', async () => {
    const metrics = createMetricsRegistry('authoritative');
    const queries = metrics.counter('queries_total', {
      help: 'Queries answered',
      labelNames: ['transport', 'rcode'],
    });
    const zones = metrics.gauge('zones_loaded', { help: 'Zones served' });
    const latency = metrics.histogram('answer_duration_seconds', {
      help: 'Time to answer',
      buckets: [0.001, 0.01],
    });
    queries.inc({ transport: 'doh', rcode: 'NOERROR' });
    queries.inc({ transport: 'doh', rcode: 'NOERROR' });
    zones.set(3);
    latency.observe(0.005);

    const text = await metricsText(metrics);
    expect(text).toContain('# HELP authoritative_queries_total Queries answered\n');
    expect(text).toContain('# TYPE authoritative_queries_total counter\n');
    expect(text).toContain('authoritative_queries_total{transport="doh",rcode="NOERROR"} 2\n');
    expect(text).toContain('authoritative_zones_loaded 3\n');
    expect(text).toContain('authoritative_answer_duration_seconds_bucket{le="0.001"} 0\n');
    expect(text).toContain('authoritative_answer_duration_seconds_bucket{le="0.01"} 1\n');
    expect(text).toContain('authoritative_answer_duration_seconds_count 1\n');
    expect(await metricsText(metrics.registry)).toBe(text);
    expect(METRICS_CONTENT_TYPE).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('keeps each server apart, and out of the global registry', async () => {
    const a = createMetricsRegistry('resolver');
    const b = createMetricsRegistry('resolver');
    a.counter('resolutions_total', { help: 'Resolutions' }).inc(5);
    b.counter('resolutions_total', { help: 'Resolutions' });
    expect(await metricsText(a)).toContain('resolver_resolutions_total 5\n');
    expect(await metricsText(b)).toContain('resolver_resolutions_total 0\n');
    expect(globalRegistry.getSingleMetric('resolver_resolutions_total')).toBeUndefined();
  });

  it('sets a gauge when scraped through its collect function', async () => {
    const metrics = createMetricsRegistry('resolver');
    let entries = 0;
    metrics.gauge('cache_entries', {
      help: 'Cached RRsets',
      collect() {
        this.set(entries);
      },
    });
    entries = 42;
    expect(await metricsText(metrics)).toContain('resolver_cache_entries 42\n');
  });

  it('adds process metrics only when asked', async () => {
    expect(await metricsText(createMetricsRegistry('root'))).toBe('\n');
    const text = await metricsText(createMetricsRegistry('root', { processMetrics: true }));
    expect(text).toContain('process_cpu_user_seconds_total');
  });

  // promtool check metrics: "non-counter metrics should not have _total suffix".
  it('leaves out the process gauges named _total, keeping the per-type gauges they sum', async () => {
    const text = await metricsText(createMetricsRegistry('root', { processMetrics: true }));
    const types = [...text.matchAll(/^# TYPE (\w+) (\w+)$/gm)].map((m) => [m[1], m[2]]);
    expect(types.length).toBeGreaterThan(10);
    expect(types.filter(([name, type]) => type !== 'counter' && name?.endsWith('_total'))).toEqual(
      [],
    );
    for (const name of DROPPED_PROCESS_METRICS) {
      expect(text).not.toContain(`# TYPE ${name} `);
      expect(text).toContain(`# TYPE ${name.replace(/_total$/, '')} gauge\n`);
    }
  });

  it.each([
    ['a prefix that is not snake_case', () => createMetricsRegistry('Resolver'), 'ERR_METRIC_NAME'],
    [
      'a counter without _total',
      () => createMetricsRegistry('dp').counter('queries', { help: 'h' }),
      'ERR_METRIC_NAME',
    ],
    [
      'a gauge ending in _total',
      () => createMetricsRegistry('dp').gauge('zones_total', { help: 'h' }),
      'ERR_METRIC_NAME',
    ],
    [
      'a gauge ending in _count (the series of a histogram)',
      () => createMetricsRegistry('dp').gauge('zones_count', { help: 'h' }),
      'ERR_METRIC_NAME',
    ],
    [
      'a histogram ending in _sum',
      () => createMetricsRegistry('dp').histogram('latency_sum', { help: 'h' }),
      'ERR_METRIC_NAME',
    ],
    [
      'a gauge ending in _bucket',
      () => createMetricsRegistry('dp').gauge('size_bucket', { help: 'h' }),
      'ERR_METRIC_NAME',
    ],
    [
      'a name without a unit',
      () => createMetricsRegistry('dp').histogram('latency', { help: 'h' }),
      'ERR_METRIC_NAME',
    ],
    [
      'a label name that is not snake_case',
      () => createMetricsRegistry('dp').counter('a_total', { help: 'h', labelNames: ['Rcode'] }),
      'ERR_METRIC_NAME',
    ],
    [
      'a name declared twice',
      () => {
        const metrics = createMetricsRegistry('dp');
        metrics.counter('a_total', { help: 'h' });
        metrics.counter('a_total', { help: 'h' });
      },
      'ERR_METRIC_DUPLICATE',
    ],
  ])('refuses %s', (_what, declare, code) => {
    expect(errorOf(declare).code).toBe(code);
  });
});

describe('cumulativeSnapshot', () => {
  /** One process's metrics: `n` requests counted and observed, `open` connections now. */
  async function processMetrics(n: number, open: number) {
    const registry = new Registry();
    const requests = new Counter({ name: 'requests_total', help: 'h', registers: [registry] });
    const latency = new Histogram({
      name: 'latency_seconds',
      help: 'h',
      buckets: [1],
      registers: [registry],
    });
    const connections = new Gauge({ name: 'connections', help: 'h', registers: [registry] });
    requests.inc(n);
    for (let i = 0; i < n; i++) latency.observe(0.5);
    connections.set(open);
    return registry.getMetricsAsJSON();
  }

  it('sums the counters and histograms of ended processes and leaves their gauges out', async () => {
    const summed = await cumulativeSnapshot([
      await processMetrics(3, 7),
      await processMetrics(4, 9),
    ]);
    expect(summed.map((m) => m.name).sort()).toEqual(['latency_seconds', 'requests_total']);
    expect(summed.find((m) => m.name === 'requests_total')?.values[0]?.value).toBe(7);
    const count = summed
      .find((m) => m.name === 'latency_seconds')
      ?.values.find((v) => 'metricName' in v && v.metricName === 'latency_seconds_count');
    expect(count?.value).toBe(7);
    // Summed again with a later one (the chain of exits), the totals keep growing.
    const again = await cumulativeSnapshot([summed, await processMetrics(1, 0)]);
    expect(again.find((m) => m.name === 'requests_total')?.values[0]?.value).toBe(8);
  });
});
