import type { LatencyRun, ScaleResult } from './scale.js';

/**
 * The Markdown comparison of two {@link ScaleResult}s, the smaller data set first (100,000
 * against 10,000,000 CSIs): one row per figure, a column per data set and their ratio.
 */
export function scaleMarkdown(small: ScaleResult, large: ScaleResult): string {
  const mib = (kib: number): string => `${(kib / 1024).toFixed(0)} MiB`;
  const bytes = (b: number): string =>
    b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`;
  const ms = (x: number): string => (x < 10 ? `${x.toFixed(3)} ms` : `${x.toFixed(0)} ms`);
  const count = (n: number): string => n.toLocaleString('en-US');
  const pass = (r: ScaleResult, which: LatencyRun['pass']): LatencyRun => {
    const run = r.latency.passes.find((p) => p.pass === which);
    if (run === undefined) throw new Error(`the result for ${r.csis} CSIs lacks the ${which} pass`);
    return run;
  };

  type Row = [
    label: string,
    pick: (r: ScaleResult) => number,
    show: (x: number) => string,
    /** Whether the ratio large / small means anything (not for the load average). */
    ratio?: boolean,
  ];
  const rows: Row[] = [
    ['CSIs', (r) => r.csis, count],
    ['mappings', (r) => r.mappings ?? NaN, count],
    ['build wall time', (r) => r.build?.wallSeconds ?? NaN, (s) => `${s.toFixed(0)} s`],
    [
      'build rate',
      (r) => (r.build === undefined ? NaN : r.csis / r.build.wallSeconds),
      (x) => `${x.toFixed(0)} CSIs/s`,
    ],
    ['`data.mdb` length', (r) => r.store.dataFileBytes, bytes],
    ['`data.mdb` on disk (blocks)', (r) => r.store.dataDiskBytes, bytes],
    ['on disk per CSI', (r) => r.store.bytesPerCsi, (b) => `${b.toFixed(0)} B`],
    ['start-up: spawn → ready (median)', (r) => r.startup.medianReadyMs, ms],
    ['start-up: spawn → first answer (median)', (r) => r.startup.medianFirstAnswerMs, ms],
    [
      'start-up: spawn → idle (median; background work done)',
      (r) => r.startup.medianSettledMs ?? NaN,
      (x) => `${(x / 1000).toFixed(1)} s`,
    ],
    [
      'full-store `resign` walk (every 15 min, on the writer thread)',
      (r) => r.startup.resignScanSeconds ?? NaN,
      (x) => `${x.toFixed(1)} s`,
    ],
    ['RSS after start (first answer)', (r) => r.memory.afterStart.vmRssKiB, mib],
    ['RSS once idle', (r) => r.memory.afterSettle?.vmRssKiB ?? NaN, mib],
    ['RSS after the query load', (r) => r.memory.afterLoad.vmRssKiB, mib],
    ['… anonymous (heap)', (r) => r.memory.afterLoad.rssAnonKiB, mib],
    ['… file-backed (LMDB pages, code)', (r) => r.memory.afterLoad.rssFileKiB, mib],
    ['peak RSS (VmHWM)', (r) => r.memory.afterLoad.vmHwmKiB, mib],
    [
      '`zone export --no-nsec3` (to a pipe): time',
      (r) => r.export?.seconds ?? NaN,
      (x) => `${x.toFixed(1)} s`,
    ],
    ['… records written', (r) => r.export?.records ?? NaN, count],
    ['… octets written', (r) => r.export?.octets ?? NaN, bytes],
    ['… rate', (r) => r.export?.recordsPerSecond ?? NaN, (x) => `${x.toFixed(0)} records/s`],
    ['… CPU (user + system)', (r) => r.export?.cpuSeconds ?? NaN, (x) => `${x.toFixed(1)} s`],
    ['… peak RSS, anonymous (the process itself)', (r) => r.export?.peakRssAnonKiB ?? NaN, mib],
    ['… peak RSS, file-backed (LMDB pages)', (r) => r.export?.peakRssFileKiB ?? NaN, mib],
    ['… peak RSS, both (ru_maxrss)', (r) => r.export?.peakRssKiB ?? NaN, mib],
  ];
  for (const which of ['first', 'second'] as const) {
    const label =
      which === 'first' ? 'first pass (store lookups)' : 'second pass (same names: answer cache)';
    rows.push(
      [`latency p50, ${label}`, (r) => pass(r, which).p50Ms, ms],
      [`latency p90, ${label}`, (r) => pass(r, which).p90Ms, ms],
      [`latency p99, ${label}`, (r) => pass(r, which).p99Ms, ms],
      [
        `load average at the end, ${label}`,
        (r) => pass(r, which).loadAverage,
        (x) => x.toFixed(2),
        false,
      ],
      [
        `server CPU per query, ${label}`,
        (r) => pass(r, which).cpuMicrosecondsPerQuery,
        (x) => `${x.toFixed(0)} µs`,
      ],
    );
  }
  const header = `| | ${count(small.csis)} CSIs | ${count(large.csis)} CSIs | ratio |`;
  const lines = [header, '| --- | ---: | ---: | ---: |'];
  for (const [label, pick, show, withRatio = true] of rows) {
    const a = pick(small);
    const b = pick(large);
    const ratio =
      withRatio && Number.isFinite(a) && Number.isFinite(b) && a !== 0
        ? `${(b / a).toFixed(2)}×`
        : '';
    const cell = (x: number): string => (Number.isFinite(x) ? show(x) : '–');
    lines.push(`| ${label} | ${cell(a)} | ${cell(b)} | ${ratio} |`);
  }
  const cache = (r: ScaleResult): string => `${count(r.csis)}: ${r.startup.cache}`;
  const qps = small.latency.queriesPerSecond;
  const notes = [
    `Start-ups: ${small.startup.runs.length} and ${large.startup.runs.length} runs, page cache ` +
      `${cache(small)}, ${cache(large)}. Latency: dnsperf at ${count(qps)} queries/s, ` +
      `${count(small.latency.existing)} existing and ${count(small.latency.absent)} absent CSIs ` +
      'spread over the data set, each asked once per pass, after 10 s of warm-up queries for ' +
      'other names; percentiles are nearest-rank. A CSI with three mappings is answered ' +
      'truncated over UDP (the DP caps UDP responses at 1,232 octets).',
    'Export: the built command, `zone export --no-nsec3`, over the whole zone, its stdout a ' +
      'pipe the bench reads and counts; memory sampled every 100 ms. Anonymous memory is the ' +
      "process's own; file-backed memory is LMDB's map of `data.mdb`, page cache the kernel " +
      'reclaims as it needs, which the peak RSS counts too.',
    ...new Set([...small.notes, ...large.notes]),
  ];
  return `${lines.join('\n')}\n\n${notes.join('\n\n')}\n`;
}
