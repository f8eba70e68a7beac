import { DISCOVERY_BATCH_CONCURRENCY } from '@mimi-discovery/resolver';
import type { DohBenchResult, DohModeName, DohServerName } from './doh-bench.js';
import type {
  ColdBenchResult,
  ColdVariant,
  ResolverBenchResult,
  SyncBenchResult,
  SyncRun,
  UdpBenchResult,
} from './resolver-bench.js';

/**
 * The resolver and DoH results as Markdown, in the style of `report.ts`: one section per
 * benchmark ({@link resolverMarkdown}); their targets are in `targets.ts`.
 */

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const fixed = (n: number, digits: number): string => (Number.isFinite(n) ? n.toFixed(digits) : '—');

const MODE_TEXT: Record<DohModeName, string> = {
  'h2-10x10': 'HTTP/2 + TLS, 10 connections × 10 streams',
  'h2-1x1': 'HTTP/2 + TLS, 1 connection × 1 stream',
  'h1-10': 'HTTP/1.1 keep-alive + TLS, 10 connections',
};

const VARIANT_TEXT: Record<ColdVariant, string> = {
  unbound: 'Unbound: MAP question over UDP',
  'ours-udp': 'ours: MAP question over UDP, DoH upstream (default)',
  'ours-udp-dns-upstream': 'ours: MAP question over UDP, plain DNS upstream (as Unbound)',
  'ours-discover': 'ours: `GET /v1/discover` (MAP, MAPREF, AUTHKEY, mapping verification)',
  'ours-udp-flushed':
    'ours: MAP question over UDP, DoH upstream, caches flushed with connections kept (as Unbound’s flush)',
  'ours-discover-flushed':
    'ours: `GET /v1/discover`, caches flushed with connections kept (as Unbound’s flush)',
  'ours-udp-flushed-root-copy':
    'ours with the root copy: MAP question over UDP, DoH upstream, caches flushed with connections kept',
  'ours-discover-flushed-root-copy':
    'ours with the root copy: `GET /v1/discover`, caches flushed with connections kept',
};

function dohSection(d: DohBenchResult): string[] {
  const servers: DohServerName[] = ['dp', 'resolver', 'unbound'];
  const checks = servers
    .flatMap((s) => {
      const c = d.checks[s];
      return c === undefined
        ? []
        : [`${s} ${c.rcode}, ${c.maps} MAP${c.authenticated ? ', AD' : ''}`];
    })
    .join('; ');
  return [
    '## DoH: DP, resolver and Unbound',
    '',
    `Every request is the same DoH POST (RFC 8484): MAP of \`${d.question.csi}\` (\`${d.question.name}\`), DO and RD set, id 0, ` +
      `${d.question.bodyOctets} octets. Answers before the load: ${checks || 'none'}. ` +
      'Our DP answers from its store; our resolver and Unbound from their caches. h2load, one thread, ' +
      `${d.rounds} interleaved rounds of ${d.seconds} s after ${d.warmUpSeconds} s of warm-up per run; ` +
      'p50 from h2load’s per-request log (time from request to the end of the response); CPU per request is the server’s ' +
      'user + system time from `/proc/<pid>/stat` over the measured part, divided by the completed requests.',
    '',
    '| round | mode | server | requests/s | p50 (ms) | mean (ms) | CPU µs/request |',
    '| ----- | ---- | ------ | ---------- | -------- | --------- | -------------- |',
    ...d.runs.map(
      (x) =>
        `| ${x.round} | ${x.mode} | ${x.server} | ${int(x.result.requestsPerSecond)} | ${fixed(x.result.p50LatencyMs, 3)} | ${fixed(x.result.meanLatencyMs, 3)} | ${fixed(x.result.cpuMicrosecondsPerRequest, 1)} |`,
    ),
    '',
    '| mode | server | median requests/s | median p50 (ms) | median CPU µs/request | median ratio to Unbound |',
    '| ---- | ------ | ----------------- | --------------- | --------------------- | ----------------------- |',
    ...d.modes.flatMap((mode) =>
      servers.flatMap((server) => {
        const m = d.medians[mode.name]?.[server];
        if (m === undefined) return [];
        const ratio =
          server === 'dp'
            ? d.medianRatios[mode.name]?.dpToUnbound
            : server === 'resolver'
              ? d.medianRatios[mode.name]?.resolverToUnbound
              : undefined;
        return [
          `| ${MODE_TEXT[mode.name]} | ${server} | ${int(m.requestsPerSecond)} | ${fixed(m.p50LatencyMs, 3)} | ${fixed(m.cpuMicrosecondsPerRequest, 1)} | ${ratio === undefined ? '—' : fixed(ratio, 3)} |`,
        ];
      }),
    ),
    '',
    ...(d.skipped.length === 0 ? [] : [`Skipped: ${d.skipped.join('; ')}.`, '']),
  ];
}

function udpSection(u: UdpBenchResult): string[] {
  const warm = Object.entries(u.warmUp)
    .map(
      ([name, w]) =>
        `${name} ${int(w.answered)}/${int(w.asked)} answered (${int(w.authenticated)} with AD) in ${fixed(w.seconds, 1)} s`,
    )
    .join('; ');
  return [
    '## Resolver cache hits over UDP',
    '',
    `dnsperf (\`${u.command}\`) against our resolver and Unbound (validating, stub zones at our root and DP), ` +
      `the same query file of ${int(u.names)} MAP questions for existing CSIs, DO set. Before the rounds each resolver ` +
      `was asked every question once: ${warm || 'no warm-up'}. The cache-hit ratio of a round is the resolver’s own count ` +
      '(our `stats()`, Unbound’s `total.num.cachehits` / `cachemiss`).',
    '',
    '| round | server | queries/s | avg latency (ms) | lost | CPU µs/query | cache hits |',
    '| ----- | ------ | --------- | ---------------- | ---- | ------------ | ---------- |',
    ...u.rounds.map(
      (x) =>
        `| ${x.round} | ${x.server} | ${int(x.result.queriesPerSecond)} | ${fixed(x.result.averageLatencyMs, 3)} | ${x.result.queriesLost} | ${fixed(x.result.cpuMicrosecondsPerQuery, 1)} | ${fixed(x.cacheHitRatio * 100, 1)}% |`,
    ),
    '',
    '| server | median queries/s | median avg latency (ms) | median CPU µs/query |',
    '| ------ | ---------------- | ----------------------- | ------------------- |',
    ...Object.entries(u.medians).map(
      ([name, m]) =>
        `| ${name} | ${int(m.queriesPerSecond)} | ${fixed(m.averageLatencyMs, 3)} | ${fixed(m.cpuMicrosecondsPerQuery, 1)} |`,
    ),
    '',
  ];
}

function coldSection(c: ColdBenchResult): string[] {
  return [
    '## Cold resolution',
    '',
    'One CSI through the whole hierarchy (root → DP) with nothing cached: our resolver and its front ends are replaced by new ones in the same ' +
      'process, on the same ports (empty caches, the front ends’ answer cache included; no upstream connections, no server RTTs); Unbound is flushed (`flush_zone .`, `flush_negative`, ' +
      '`flush_bogus`, `flush_infra all`). Timed from sending the question to the answer; each variant asks a CSI of its own, the ' +
      `variants rotate within each sample. In every sample the root answered at least ${c.fewestRootQueries} and the DP at least ` +
      `${c.fewestDpQueries} queries (their metrics)` +
      (c.everySampleCold
        ? ', so every sample walked from the root, DNSKEYs and delegation included.'
        : ': **some sample found something cached** (a cold walk asks each at least twice: DNSKEY, then the referral or the question).') +
      (c.mostRootQueriesWithCopy === undefined
        ? ''
        : ` The variants with the root copy (loaded by AXFR before the sample, and kept by the flush as Unbound keeps its zones) sent the root at most ${c.mostRootQueriesWithCopy} queries in a sample.`),
    '',
    '| variant | p50 (ms) | min (ms) | max (ms) | samples ok |',
    '| ------- | -------- | -------- | -------- | ---------- |',
    ...(
      Object.entries(c.summary) as [
        ColdVariant,
        NonNullable<ColdBenchResult['summary']['unbound']>,
      ][]
    ).map(
      ([variant, s]) =>
        `| ${VARIANT_TEXT[variant]} | ${fixed(s.p50Ms, 2)} | ${fixed(s.minMs, 2)} | ${fixed(s.maxMs, 2)} | ${s.ok}/${c.samples.filter((x) => x.variant === variant).length} |`,
    ),
    '',
  ];
}

function syncSection(s: SyncBenchResult): string[] {
  const statuses = (r: SyncRun): string =>
    Object.entries(r.statuses)
      .map(([k, v]) => `${int(v)} ${k}`)
      .join(', ');
  return [
    '## Contact sync',
    '',
    `${int(s.csis)} distinct existing CSIs through \`POST /v1/discover\` in one \`discoverMany\` call: ${s.batches} batches of ${int(s.batchSize)} (the API’s limit), ` +
      `${DISCOVERY_BATCH_CONCURRENCY} at a time over the client's connections; cold with a new resolver, warm right after` +
      (s.rounds === undefined
        ? '.'
        : `, in ${s.rounds.length} rounds (each with a new resolver): the times and ratios below are the medians of the rounds, the CPU seconds and statuses those of the round with the median cold time.`),
    '',
    `- Cold: ${fixed(s.cold.seconds, 2)} s, ${int(s.cold.csisPerSecond)} CSIs/s (${statuses(s.cold)}); resolver CPU ${fixed(s.cold.resolverCpuSeconds, 2)} s, DP CPU ${fixed(s.cold.dpCpuSeconds, 2)} s.`,
    `- Warm: ${fixed(s.warmMs, 0)} ms (${statuses(s.warm)}); resolver CPU ${fixed(s.warm.resolverCpuSeconds, 2)} s; ` +
      `${fixed(s.warm.responseOctets / 2 ** 20, 1)} MiB of JSON; the client's CPU ${fixed(s.warm.clientCpuMs, 0)} ms (reading, parsing and checking the results).`,
    `- Verification bound: ${int(s.verifications)} Ed25519 verifications (per CSI the MAP RRSIG and the NSEC RRSIG of the MAPREF denial — the SOA RRSIG of every denial is one signature, checked once per cache fill — ` +
      `per mapping its signature and its attestation’s — ${int(s.mappings)} mappings — and 4 once for the chain) at ` +
      `${int(s.verificationsPerSecond)} verifications/s (${boundSource(s)}) ` +
      `take ${fixed(s.boundSeconds, 2)} s: ${int(s.boundCsisPerSecond)} CSIs/s. Cold throughput is ${fixed(s.coldToBound * 100, 0)}% of it. ` +
      `In CPU time (less disturbed by other load on the machine): the verifications take ${fixed(s.verifications / s.verificationsPerCpuSecond, 2)} CPU s ` +
      `at ${int(s.verificationsPerCpuSecond)} per CPU second, ${fixed(s.coldCpuToBound * 100, 0)}% of the resolver’s ${fixed(s.cold.resolverCpuSeconds, 2)} CPU s (its process, every thread).`,
    ...(s.oneCore === undefined
      ? []
      : [
          `- On one core (\`verify\` in the resolver’s process, on the thread of its JavaScript): ${int(s.oneCore.verificationsPerSecond)} verifications/s, ` +
            `a bound of ${fixed(s.oneCore.boundSeconds, 2)} s (${int(s.oneCore.boundCsisPerSecond)} CSIs/s); cold throughput is ${fixed(s.oneCore.coldToBound * 100, 0)}% of it, ` +
            `${fixed(s.oneCore.coldCpuToBound * 100, 0)}% in CPU time (${int(s.oneCore.verificationsPerCpuSecond)} verifications per CPU second).`,
        ]),
    '',
  ];
}

/** Where the bound's rate was measured: the pool on all cores, or (older runs) one core. */
function boundSource(s: SyncBenchResult): string {
  return s.oneCore === undefined
    ? `\`verify\` of @mimi-discovery/common in the resolver’s process, ${s.cores} core`
    : `the resolver’s verification pool, ${s.cores} worker threads: all cores`;
}

/** The sections of the resolver and DoH benchmarks (whichever ran). */
export function resolverMarkdown(
  resolver: ResolverBenchResult | undefined,
  doh: DohBenchResult | undefined,
): string {
  const lines = [
    ...(doh === undefined ? [] : dohSection(doh)),
    ...(resolver === undefined
      ? []
      : [
          ...(resolver.udp === undefined ? [] : udpSection(resolver.udp)),
          ...(resolver.cold === undefined ? [] : coldSection(resolver.cold)),
          ...(resolver.sync === undefined ? [] : syncSection(resolver.sync)),
          ...(resolver.skipped.length === 0
            ? []
            : [`Skipped: ${resolver.skipped.join('; ')}.`, '']),
        ]),
  ];
  return lines.join('\n');
}
