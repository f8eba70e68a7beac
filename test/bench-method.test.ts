import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chartSvg, escapeXml, MAX_DATE_LABELS } from '../bench/lib/chart.js';
import {
  appendRun,
  emptyHistory,
  historyEntry,
  HISTORY_MAX_RUNS,
  parseHistory,
  serializeHistory,
  type History,
  type HistoryEntry,
  runLabel,
} from '../bench/lib/history.js';
import {
  HISTORY_END,
  HISTORY_START,
  historyCharts,
  historySection,
  replaceHistorySection,
  targetsTable,
} from '../bench/lib/history-report.js';
import {
  cpuRatio,
  median,
  MIN_ROUNDS,
  spreadOf,
  targetMet,
  type Goal,
} from '../bench/lib/method.js';
import { markdown } from '../bench/lib/report.js';
import {
  TARGETS,
  targetFigures,
  type RunResults,
  type TargetFigures,
} from '../bench/lib/targets.js';
import { agreementLines, gapLines, parseGapNotes, unmetTargets } from '../bench/lib/gaps.js';
import { readGapNotes } from '../bench/lib/history-files.js';
import { descendants, parseXml } from './helpers/xml.js';

/**
 * The method of `npm run bench` (bench/lib/method.ts), its history (bench/lib/history.ts) and
 * charts (bench/lib/chart.ts). No benchmark runs here: the figures are the recorded run of
 * bench/results/2026-11-23.json and made-up histories.
 */

const ROOT = join(import.meta.dirname, '..');
const SEED_RESULTS = 'bench/results/2026-11-23.json';
const seedResults = (): RunResults =>
  JSON.parse(readFileSync(join(ROOT, SEED_RESULTS), 'utf8')) as RunResults;

const atLeast = (value: number): Goal => ({ direction: 'at-least', value });
const atMost = (value: number): Goal => ({ direction: 'at-most', value });

describe('the median, the spread and the rule', () => {
  it('takes the median of odd and even counts, ignoring figures that are not finite', () => {
    expect(MIN_ROUNDS).toBeGreaterThanOrEqual(5);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([0.7, 0.5])).toBeCloseTo(0.6, 12);
    expect(median([1, NaN, Infinity, 3])).toBe(2);
    expect(median([])).toBeNaN();
  });

  it('gives the spread and the count of the rounds, nothing when no round gave a figure', () => {
    expect(spreadOf([0.62, 0.55, 0.71, 0.6, 0.58, 0.64])).toEqual({
      median: 0.61,
      min: 0.55,
      max: 0.71,
      rounds: 6,
    });
    expect(spreadOf([0.5, NaN])).toEqual({ median: 0.5, min: 0.5, max: 0.5, rounds: 1 });
    expect(spreadOf([NaN])).toBeUndefined();
    expect(spreadOf([])).toBeUndefined();
  });

  it('turns CPU per query into a ratio in the direction of the throughput ratio', () => {
    // Ours spends 20 µs where theirs spends 10: half as efficient, 0.5×.
    expect(cpuRatio(20, 10)).toBe(0.5);
    expect(cpuRatio(undefined, 10)).toBeUndefined();
    expect(cpuRatio(0, 10)).toBeUndefined();
    expect(cpuRatio(20, NaN)).toBeUndefined();
  });

  it('meets a target only when both the median and the CPU ratio meet it', () => {
    const cpu = (ratio: number | null) => ({ measured: true, ratio });
    expect(targetMet(atLeast(0.6), 0.65, cpu(0.61))).toBe(true);
    expect(targetMet(atLeast(0.6), 0.6, cpu(0.6))).toBe(true);
    // The throughput ratio passes, the CPU ratio does not.
    expect(targetMet(atLeast(0.6), 0.65, cpu(0.49))).toBe(false);
    expect(targetMet(atLeast(0.6), 0.55, cpu(0.9))).toBe(false);
    // CPU measured for the target but absent from the run: unproven.
    expect(targetMet(atLeast(0.6), 0.65, cpu(null))).toBe(false);
    expect(targetMet(atLeast(0.6), 0.65, { measured: false, ratio: null })).toBe(true);
    expect(targetMet(atMost(1.2), 1.1, { measured: false, ratio: null })).toBe(true);
    expect(targetMet(atMost(1.2), 1.3, { measured: false, ratio: null })).toBe(false);
    expect(targetMet(atMost(1.2), NaN, { measured: false, ratio: null })).toBe(false);
    expect(targetMet(atLeast(0.6), null, cpu(0.9))).toBeNull();
    expect(targetMet(null, 0.65, cpu(0.9))).toBeNull();
  });
});

describe('the targets of a run', () => {
  it('takes the transfer comparison’s per-round ratios, and leaves older runs without them absent', () => {
    const udp = { rounds: 6, seconds: 3, ours: 1, nsdSecondary: 1 };
    const [figures] = targetFigures({
      transfer: {
        csis: 1000,
        udp: {
          ...udp,
          ratios: [0.9, 0.5, 0.7, 0.6, 1, 0.8],
          cpuMicrosecondsPerQuery: { ours: 20, nsdSecondary: 10 },
        },
      },
    }).filter((f) => f.id === 'transfer-udp-nsd');
    expect(figures).toMatchObject({ median: 0.75, min: 0.5, max: 1, rounds: 6, cpuRatio: 0.5 });
    expect(figures!.median).toBeCloseTo(0.75, 12);
    // No goal of its own in the issue: reported beside the other comparisons, not judged.
    expect(figures!.met).toBeNull();
    const old = targetFigures({ transfer: { csis: 1000, udp } });
    expect(old.find((f) => f.id === 'transfer-udp-nsd')).toMatchObject({
      median: null,
      cpuRatio: null,
    });
  });

  it('takes the contact sync’s rounds where the run has them, its single run otherwise', () => {
    const r = seedResults();
    const sync = r.resolver!.sync!;
    const single = targetFigures(r).find((f) => f.id === 'sync-cold')!;
    expect(single).toMatchObject({ median: sync.coldToBound, rounds: 1, met: false });
    sync.rounds = [0.72, 0.8, 0.75, 0.71, 0.9].map((coldToBound, i) => ({
      round: i + 1,
      coldToBound,
      // The CPU ratio of every round fails the goal the throughput passes.
      coldCpuToBound: 0.5,
      warmMs: 90 + i,
    }));
    sync.coldCpuToBound = 0.5;
    const figures = targetFigures(r);
    expect(figures.find((f) => f.id === 'sync-cold')).toMatchObject({
      median: 0.75,
      min: 0.71,
      max: 0.9,
      rounds: 5,
      cpuRatio: 0.5,
      met: false,
    });
    expect(figures.find((f) => f.id === 'sync-warm')).toMatchObject({
      median: 92,
      rounds: 5,
      met: true,
    });
  });

  it('takes registration’s rounds: publishes/s, and each round’s p99 against the quiet one', () => {
    const r = seedResults();
    const quiet = r.udp.medians.ours!.p99LatencyMs;
    r.registration.rounds = [3100, 2900, 3300, 3200, 3000].map((publishesPerSecond, i) => ({
      round: i + 1,
      publishes: 30_000,
      seconds: 30_000 / publishesPerSecond,
      publishesPerSecond,
      p99Ms: quiet * (1.5 + i / 10),
    }));
    const figures = targetFigures(r);
    expect(figures.find((f) => f.id === 'registration-publishes')).toMatchObject({
      median: 3100,
      min: 2900,
      max: 3300,
      rounds: 5,
      met: true,
    });
    const p99 = figures.find((f) => f.id === 'registration-p99')!;
    expect(p99.median).toBeCloseTo(1.7, 12);
    expect(p99.rounds).toBe(5);
    expect(p99.met).toBe(true);
    expect(markdown(r, SEED_RESULTS)).toContain('| 5 | 30,000 | 10.00 | 3,000 |');
  });

  it('leaves the targets of a part that did not run not measured', () => {
    const { doh, resolver } = seedResults();
    const figures = targetFigures({ doh, resolver });
    const measured = figures.filter((f) => f.median !== null).map((f) => f.id);
    expect(measured).toEqual([
      'resolver-udp-unbound',
      'doh-resolver-unbound',
      'doh-dp-unbound',
      'cold-resolution',
      'sync-cold',
      'sync-warm',
    ]);
    expect(figures.find((f) => f.id === 'dp-udp-nsd')).toMatchObject({ median: null, met: null });
  });

  it('computes the targets on every core from the -all servers of a run that has them', () => {
    const r = seedResults();
    const one = r.udp.medians;
    const udp = {
      ...r.udp,
      workers: 2,
      ratios: r.udp.ratios.map((x, i) => ({ ...x, allToNsdAll: 0.5 + i / 10, allToKnotAll: 0.4 })),
      medians: {
        ...one,
        'ours-all': { ...one.ours!, cpuMicrosecondsPerQuery: 20 },
        'nsd-all': { ...one.nsd!, cpuMicrosecondsPerQuery: 10 },
      },
    };
    const figures = targetFigures({ udp });
    expect(figures.find((f) => f.id === 'dp-udp-nsd-all')).toMatchObject({
      median: 0.7,
      min: 0.5,
      max: 0.9,
      rounds: 5,
      cpuRatio: 0.5,
      // 0.7× of NSD's queries/s meets 0.6×; half its CPU efficiency does not.
      met: false,
    });
    expect(figures.find((f) => f.id === 'dp-udp-knot-all')).toMatchObject({
      median: 0.4,
      cpuRatio: null,
      met: null,
    });
    // The one-core figures are those of the same rounds as before.
    expect(figures.find((f) => f.id === 'dp-udp-nsd')?.median).toBeCloseTo(
      r.udp.medianRatioOursToNsd!,
      12,
    );
  });

  it('puts every target in the page of a run, with the rule’s status', () => {
    const r = seedResults();
    const page = markdown(r, SEED_RESULTS);
    for (const line of targetsTable(targetFigures(r))) expect(page).toContain(line);
    expect(page).not.toContain(HISTORY_START);
  });

  it('computes every target of the recorded run with the rule', () => {
    const r = seedResults();
    const figures = targetFigures(r);
    // The run predates the servers on every core: it has no figure for their targets.
    expect(figures.map((f) => f.id)).toEqual(
      TARGETS.map((t) => t.id).filter((id) => !id.endsWith('-all')),
    );
    const nsd = figures.find((f) => f.id === 'dp-udp-nsd')!;
    // The same median of per-round ratios as the run computed itself.
    expect(nsd.median).toBeCloseTo(r.udp.medianRatioOursToNsd!, 12);
    expect(nsd.rounds).toBe(5);
    expect(nsd.min).toBe(Math.min(...r.udp.ratios.map((x) => x.oursToNsd!)));
    expect(nsd.cpuRatio).toBeCloseTo(
      r.udp.medians.nsd!.cpuMicrosecondsPerQuery / r.udp.medians.ours!.cpuMicrosecondsPerQuery,
      12,
    );
    // 0.65× of NSD's queries/s meets 0.6×; 0.49× of its CPU efficiency does not.
    expect(nsd.median!).toBeGreaterThan(0.6);
    expect(nsd.cpuRatio!).toBeLessThan(0.6);
    expect(nsd.met).toBe(false);
    // The run had no PostgreSQL part: absent, never zero.
    expect(figures.find((f) => f.id === 'pg-miss-lmdb')).toMatchObject({
      median: null,
      cpuRatio: null,
      met: null,
    });
    // Knot has no goal of its own: reported, not judged.
    expect(figures.find((f) => f.id === 'dp-udp-knot')?.met).toBeNull();
    const table = targetsTable(figures).join('\n');
    expect(table).toContain(
      '| DP over UDP, 1 worker vs NSD server-count 1 | **0.649×** | 0.548×–0.669× | 0.487× | 5 | ≥ 0.6× | not met |',
    );
  });
});

function entry(date: string, median: number | null = 0.7): HistoryEntry {
  const targets: TargetFigures[] = TARGETS.map((t) => ({
    id: t.id,
    median,
    cpuRatio: t.cpuMeasured ? 0.5 : null,
    min: median === null ? null : median - 0.1,
    max: median === null ? null : median + 0.1,
    rounds: median === null ? null : 5,
    goal: t.goal,
    met: t.goal === null || median === null ? null : false,
  }));
  return {
    date,
    commit: null,
    scale: 'small',
    quick: false,
    machine: seedResults().machine,
    results: `bench/results/${date.slice(0, 10)}.json`,
    targets,
  };
}

const dated = (n: number): string => new Date(Date.UTC(2027, 0, 1) + n * 3_600_000).toISOString();

describe('the history', () => {
  it('appends runs and keeps only the last ones', () => {
    let history = emptyHistory();
    for (let n = 0; n < 5; n++) history = appendRun(history, entry(dated(n)), 3);
    expect(history.runs.map((r) => r.date)).toEqual([dated(2), dated(3), dated(4)]);
    let full: History = emptyHistory();
    for (let n = 0; n <= HISTORY_MAX_RUNS; n++) full = appendRun(full, entry(dated(n)));
    expect(full.runs).toHaveLength(HISTORY_MAX_RUNS);
    expect(full.runs[0]!.date).toBe(dated(1));
  });

  it('refuses a run twice or out of order, changing nothing', () => {
    const history = appendRun(appendRun(emptyHistory(), entry(dated(0))), entry(dated(2)));
    const before = serializeHistory(history);
    expect(() => appendRun(history, entry(dated(2)))).toThrow(/already holds/);
    expect(() => appendRun(history, entry(dated(1)))).toThrow(/older/);
    expect(() => appendRun(history, entry(dated(3)), 0)).toThrow(/bound/);
    expect(serializeHistory(history)).toBe(before);
  });

  it('reads back what it writes and rejects malformed files clearly', () => {
    const history = appendRun(emptyHistory(), entry(dated(0)));
    expect(parseHistory(serializeHistory(history))).toEqual(history);
    expect(() => parseHistory('{')).toThrow(/not JSON/);
    expect(() => parseHistory('{"version":2,"runs":[]}')).toThrow(/version 1/);
    const bad = JSON.parse(serializeHistory(history)) as {
      runs: { targets: { median: unknown }[] }[];
    };
    bad.runs[0]!.targets[0]!.median = '0.7';
    expect(() => parseHistory(JSON.stringify(bad))).toThrow(/median is neither a number nor null/);
  });

  it('starts with the run of 2026-11-23, converted, and docs/benchmarks.md shows it', () => {
    const history = parseHistory(readFileSync(join(ROOT, 'bench/results/history.json'), 'utf8'));
    expect(history.runs[0]).toEqual(
      historyEntry(seedResults(), { date: '2026-11-23', commit: null, results: SEED_RESULTS }),
    );
    // The committed section and charts are the generator's output for the committed history.
    expect(readFileSync(join(ROOT, 'docs/benchmarks.md'), 'utf8')).toContain(
      historySection(history, readGapNotes(ROOT)),
    );
    for (const [file, svg] of historyCharts(history))
      expect(readFileSync(join(ROOT, 'docs/benchmarks', file), 'utf8')).toBe(svg);
  });
});

describe('the charts', () => {
  const target = TARGETS.find((t) => t.id === 'dp-udp-nsd')!;

  it('writes well-formed SVG with a point and a CPU marker per measured run and the goal line', () => {
    const points = [
      { date: dated(0), figures: entry(dated(0), 0.55).targets[0] },
      { date: dated(1), figures: entry(dated(1), null).targets[0] },
      { date: dated(2), figures: undefined },
      { date: dated(3), figures: entry(dated(3), 0.62).targets[0] },
    ];
    const svg = parseXml(chartSvg(target, points));
    expect(svg.name).toBe('svg');
    const all = descendants(svg);
    const ofClass = (name: string, cls: string) =>
      all.filter((e) => e.name === name && e.attributes.get('class') === cls);
    expect(svg.children[0]?.name).toBe('title');
    expect(svg.children[1]?.name).toBe('desc');
    expect(svg.children[1]?.text).toContain('median 0.550×');
    expect(ofClass('circle', 'median')).toHaveLength(2);
    expect(ofClass('path', 'cpu')).toHaveLength(2);
    expect(ofClass('line', 'whisker')).toHaveLength(2);
    expect(ofClass('text', 'absent')).toHaveLength(2);
    expect(ofClass('text', 'date').map((e) => e.text)).toEqual(points.map((p) => runLabel(p.date)));
    const goal = ofClass('line', 'goal');
    expect(goal).toHaveLength(1);
    // The goal line lies between the two medians' heights (0.55 below it, 0.62 above).
    const [low, high] = ofClass('circle', 'median').map((c) => Number(c.attributes.get('cy')));
    const goalY = Number(goal[0]!.attributes.get('y1'));
    expect(low!).toBeGreaterThan(goalY);
    expect(high!).toBeLessThan(goalY);
  });

  it('escapes text', () => {
    expect(escapeXml(`a<b & "c" 'd'>`)).toBe('a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;');
    const hostile = { ...target, title: `</title><script>alert("x")</script> & co` };
    const svg = parseXml(chartSvg(hostile, [{ date: dated(0), figures: undefined }]));
    expect(svg.children[0]?.text).toBe(`${hostile.title}: history`);
    expect(descendants(svg).some((e) => e.name === 'script')).toBe(false);
  });

  it('draws every run of a full history, with few enough dates to read', () => {
    const runs = Array.from({ length: HISTORY_MAX_RUNS }, (_, n) => ({
      date: dated(n),
      figures: entry(dated(n), 0.5 + (n % 7) / 20).targets[0],
    }));
    const all = descendants(parseXml(chartSvg(target, runs)));
    expect(all.filter((e) => e.attributes.get('class') === 'median')).toHaveLength(runs.length);
    const dates = all.filter((e) => e.attributes.get('class') === 'date').map((e) => e.text);
    expect(dates.length).toBeLessThanOrEqual(MAX_DATE_LABELS);
    expect(dates.at(-1)).toBe(runLabel(dated(HISTORY_MAX_RUNS - 1)));
  });

  it('draws no goal line for a target without a goal', () => {
    const knot = TARGETS.find((t) => t.id === 'dp-udp-knot')!;
    const all = descendants(parseXml(chartSvg(knot, [{ date: dated(0), figures: undefined }])));
    expect(all.filter((e) => e.attributes.get('class') === 'goal')).toHaveLength(0);
  });
});

describe('the History section of docs/benchmarks.md', () => {
  it('is appended once, then replaced in place', () => {
    const one = historySection(appendRun(emptyHistory(), entry(dated(0))));
    const two = historySection(
      appendRun(appendRun(emptyHistory(), entry(dated(0))), entry(dated(1))),
    );
    const doc = '# Benchmarks\n\nText.\n';
    const first = replaceHistorySection(doc, one);
    expect(first.startsWith(doc)).toBe(true);
    const second = replaceHistorySection(`${first}\n## After\n`, two);
    expect(second.split(HISTORY_START)).toHaveLength(2);
    expect(second).toContain(two);
    expect(second).not.toContain(one);
    expect(second.endsWith('## After\n')).toBe(true);
    expect(replaceHistorySection(second, two)).toBe(second);
  });

  it('refuses markers out of order or repeated', () => {
    expect(() => replaceHistorySection(`${HISTORY_END}\n${HISTORY_START}\n`, 'x')).toThrow(
      /markers/,
    );
    expect(() =>
      replaceHistorySection(`${HISTORY_START}${HISTORY_END}${HISTORY_START}${HISTORY_END}`, 'x'),
    ).toThrow(/markers/);
    expect(() => replaceHistorySection(`${HISTORY_START}\n`, 'x')).toThrow(/markers/);
  });
});

describe('what would close each target not met (bench/gaps.md)', () => {
  const withMet = (e: HistoryEntry, met: Record<string, boolean>): HistoryEntry => ({
    ...e,
    targets: e.targets.map((t) => (t.id in met ? { ...t, met: met[t.id]! } : t)),
  });

  it('reads one section per target id and refuses an unknown or repeated id', () => {
    const notes = parseGapNotes(
      '# Title\n\n## dp-udp-nsd\n\nThe send syscall.\n\n## sync-warm\nParsing.\n',
    );
    expect([...notes]).toEqual([
      ['dp-udp-nsd', 'The send syscall.'],
      ['sync-warm', 'Parsing.'],
    ]);
    expect(() => parseGapNotes('## no-such-target\nx\n')).toThrow(/not a target id/);
    expect(() => parseGapNotes('## sync-warm\na\n## sync-warm\nb\n')).toThrow(/two sections/);
  });

  it('lists the last run’s unmet targets with their figure and note, and no met one', () => {
    const met = Object.fromEntries(TARGETS.filter((t) => t.goal !== null).map((t) => [t.id, true]));
    const last = withMet(entry(dated(1)), { ...met, 'sync-warm': false, 'dp-udp-nsd': false });
    const history = appendRun(appendRun(emptyHistory(), entry(dated(0))), last);
    expect(unmetTargets(history)).toEqual(['dp-udp-nsd', 'sync-warm']);
    const text = gapLines(history, new Map([['sync-warm', 'Parsing dominates.']])).join('\n');
    expect(text).toContain('Parsing dominates.');
    expect(text).toContain('No note in `bench/gaps.md` yet.');
    const unmetPart = text.slice(text.indexOf('### Not met'));
    expect(unmetPart).not.toContain(TARGETS.find((t) => t.id === 'resolver-udp-unbound')!.title);
    // The first run left every target not met, the last met all but two: they differ.
    expect(text.slice(0, text.indexOf('### Not met'))).toMatch(/^Agreement: .* differ on /);
  });

  it('names a run by its day, and by its time of day when the history has it', () => {
    expect(runLabel('2026-11-23')).toBe('2026-11-23');
    expect(runLabel('2026-12-07T20:13:50.113Z')).toBe('2026-12-07 20:13 UTC');
    expect(runLabel(dated(1))).not.toBe(runLabel(dated(2)));
  });

  it('says whether the last two full runs agree, ignoring quick runs', () => {
    const a = entry(dated(0));
    const quick = { ...withMet(entry(dated(1)), { 'sync-warm': true }), quick: true };
    const b = entry(dated(2));
    expect(agreementLines(appendRun(emptyHistory(), a))[0]).toMatch(/one full run/);
    const agreeing = appendRun(appendRun(appendRun(emptyHistory(), a), quick), b);
    expect(agreementLines(agreeing)[0]).toMatch(/different commits\) agree on met and not met/);
    const same = appendRun(appendRun(emptyHistory(), { ...a, commit: 'c0ffee' }), {
      ...b,
      commit: 'c0ffee',
    });
    expect(agreementLines(same)[0]).toMatch(/the same commit\) agree/);
    const differing = appendRun(agreeing, withMet(entry(dated(3)), { 'sync-warm': true }));
    expect(agreementLines(differing)[0]).toContain('Contact sync of 10,000 CSIs, warm');
  });

  it('has a note for every target the last committed run did not meet', () => {
    const history = parseHistory(readFileSync(join(ROOT, 'bench/results/history.json'), 'utf8'));
    const notes = readGapNotes(ROOT);
    for (const id of unmetTargets(history)) expect(notes.get(id), id).toBeTruthy();
  });
});
