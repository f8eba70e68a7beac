import { POLL_MS, type TransferBenchResult } from './transfer-bench.js';

/** The rows and section of the transfer benchmark (`transfer-bench.ts`) in `docs/benchmarks.md`. */

/** The target row of `docs/benchmarks.md`. */
export function transferTargetRow(t: TransferBenchResult | undefined): string {
  const target =
    'Zone transfers: AXFR time and publish-to-secondary latency (NOTIFY + IXFR, p50, p99); NSD serving the transferred zone next to our DP';
  if (t === undefined) return `| ${target} | not measured | — |`;
  if (t.skipped !== undefined || t.axfr === undefined || t.propagation === undefined) {
    return `| ${target} | not measured: ${t.skipped ?? 'incomplete'} | — |`;
  }
  const p = t.propagation;
  const incremental = p.transfers.ixfr ?? 0;
  const udp =
    t.udp === undefined
      ? ''
      : `; UDP ${int(t.udp.ours)} (ours) vs ${int(t.udp.nsdSecondary)} (NSD, transferred zone) queries/s`;
  return (
    `| ${target} | AXFR of ${int(t.csis)} CSIs (${int(t.axfr.records)} records) **${t.axfr.seconds.toFixed(2)} s**; ` +
    `publish → NSD p50 **${int(p.p50Ms)} ms**, p99 **${int(p.p99Ms)} ms** over ${p.publishes} publishes ` +
    `(${incremental} IXFR, ${(p.transfers['ixfr-full'] ?? 0) + (p.transfers.axfr ?? 0)} whole-zone transfers)${udp} | measured |`
  );
}

/** The section of `docs/benchmarks.md`. */
export function transferMarkdown(t: TransferBenchResult | undefined): string[] {
  if (t === undefined) return [];
  const lines = ['## Zone transfers to a secondary', ''];
  if (t.skipped !== undefined) return [...lines, `Not measured: ${t.skipped}.`, ''];
  lines.push(
    'Our DP as the hidden primary of NSD over the same store (`bench/lib/transfer-bench.ts`): TSIG on every transfer and NOTIFY, the NSEC3 chain kept by the store. ' +
      'Each publish goes through the DP’s store alone, after the one before reached NSD; its latency runs from the durable publish to NSD answering the new serial (polled every ' +
      `${POLL_MS} ms), so it holds the DP’s check for a new serial (every 200 ms), the NOTIFY, NSD’s SOA query and IXFR and its apply.`,
    '',
    '| measure | value |',
    '| ------- | ----- |',
  );
  if (t.dpStartSeconds !== undefined)
    lines.push(
      `| DP start with transfers on (NSEC3 chain kept) | ${t.dpStartSeconds.toFixed(1)} s |`,
    );
  if (t.axfr !== undefined) {
    lines.push(
      `| AXFR by our client (signed, records dropped as they come) | ${t.axfr.seconds.toFixed(2)} s: ${int(t.axfr.records)} records, ${int(t.axfr.messages)} messages, ${(t.axfr.octets / 2 ** 20).toFixed(1)} MiB |`,
    );
  }
  if (t.nsdBootstrapSeconds !== undefined)
    lines.push(
      `| NSD start to serving the zone (its AXFR and load) | ${t.nsdBootstrapSeconds.toFixed(1)} s |`,
    );
  if (t.propagation !== undefined) {
    const p = t.propagation;
    lines.push(
      `| publish → NSD serving it, ${p.publishes} publishes | p50 ${int(p.p50Ms)} ms, p99 ${int(p.p99Ms)} ms, max ${int(p.maxMs)} ms |`,
      `| how the DP answered NSD meanwhile | ${
        Object.entries(p.transfers)
          .map(([type, n]) => `${type} ${n}`)
          .join(', ') || 'no transfer'
      } |`,
    );
  }
  if (t.udp !== undefined) {
    lines.push(
      `| UDP queries/s, median of ${t.udp.rounds} interleaved rounds of ${t.udp.seconds} s | ours ${int(t.udp.ours)}, NSD with the transferred zone ${int(t.udp.nsdSecondary)} |`,
    );
  }
  lines.push('');
  return lines;
}

function int(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—';
}
