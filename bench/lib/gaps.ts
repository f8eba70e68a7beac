import { runLabel, type History } from './history.js';
import { formatFigure, goalText } from './method.js';
import { TARGETS } from './targets.js';

/**
 * What would close each target a run did not meet: `bench/gaps.md`, written by hand from the
 * run's profiles, one `## <target id>` heading per target, and the "Not met" part of the History
 * section of `docs/benchmarks.md`, which lists every target the last run of the history did not
 * meet with its figure, its goal and that note. Pure: the caller reads and writes the files.
 */

/** The notes of `bench/gaps.md`: target id → its Markdown (trimmed), in the file's order. */
export function parseGapNotes(text: string): Map<string, string> {
  const notes = new Map<string, string>();
  let id: string | undefined;
  let lines: string[] = [];
  const flush = (): void => {
    if (id !== undefined) notes.set(id, lines.join('\n').trim());
  };
  for (const line of text.split('\n')) {
    const heading = /^## (\S+)\s*$/.exec(line);
    if (heading !== null) {
      flush();
      id = heading[1]!;
      if (!TARGETS.some((t) => t.id === id))
        throw new Error(`bench/gaps.md: ${id} is not a target id of bench/lib/targets.ts`);
      if (notes.has(id)) throw new Error(`bench/gaps.md: ${id} has two sections`);
      lines = [];
    } else if (id !== undefined) lines.push(line);
  }
  flush();
  return notes;
}

/** The targets the last run of `history` measured and did not meet, in the order of `TARGETS`. */
export function unmetTargets(history: History): string[] {
  const last = history.runs.at(-1);
  if (last === undefined) return [];
  return TARGETS.filter((t) => last.targets.find((f) => f.id === t.id)?.met === false).map(
    (t) => t.id,
  );
}

/** The "Not met" lines: each unmet target of the last run with its figure, goal and note. */
export function gapLines(history: History, notes: ReadonlyMap<string, string>): string[] {
  const last = history.runs.at(-1);
  const unmet = unmetTargets(history);
  if (last === undefined || unmet.length === 0) return agreementLines(history);
  const lines = [
    ...agreementLines(history),
    `### Not met in the run of ${runLabel(last.date)}: where the time goes and what would close it`,
    '',
    'Written by hand in `bench/gaps.md` from the profiles of that run (the sections above and its results file).',
    '',
  ];
  for (const id of unmet) {
    const t = TARGETS.find((x) => x.id === id)!;
    const f = last.targets.find((x) => x.id === id)!;
    const cpu =
      t.cpuMeasured && f.cpuRatio !== null
        ? `, CPU ratio ${formatFigure(f.cpuRatio, 'ratio')}`
        : '';
    lines.push(
      `#### ${t.title}`,
      '',
      `Median ${f.median === null ? '—' : formatFigure(f.median, t.unit)}${cpu}; goal ${goalText(t.goal, t.unit)}.`,
      '',
      notes.get(id) ?? 'No note in `bench/gaps.md` yet.',
      '',
    );
  }
  return lines;
}

/**
 * Whether the last two full runs (not `--quick`) of `history` agree on met / not met for every
 * target both judged: a line naming the runs and the targets on which they differ.
 */
export function agreementLines(history: History): string[] {
  const full = history.runs.filter((r) => !r.quick);
  if (full.length < 2) {
    return [
      `Agreement: ${full.length === 0 ? 'no full run' : `one full run (${runLabel(full[0]!.date)})`} in the history; two are needed to say whether met and not met agree.`,
      '',
    ];
  }
  const [a, b] = [full.at(-2)!, full.at(-1)!];
  const differ = TARGETS.filter((t) => {
    const x = a.targets.find((f) => f.id === t.id)?.met;
    const y = b.targets.find((f) => f.id === t.id)?.met;
    return typeof x === 'boolean' && typeof y === 'boolean' && x !== y;
  }).map((t) => t.title);
  const runs = `the last two full runs (${runLabel(a.date)}, ${runLabel(b.date)}; ${
    a.commit !== null && a.commit === b.commit ? 'the same commit' : 'different commits'
  })`;
  return [
    differ.length === 0
      ? `Agreement: ${runs} agree on met and not met for every target both judged.`
      : `Agreement: ${runs} differ on ${differ.join('; ')}.`,
    '',
  ];
}
