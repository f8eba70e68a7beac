import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  appendRun,
  emptyHistory,
  historyEntry,
  parseHistory,
  serializeHistory,
  type History,
} from './history.js';
import { parseGapNotes } from './gaps.js';
import { historyCharts, historySection, replaceHistorySection } from './history-report.js';
import type { RunResults } from './targets.js';

/** The files of the history, under the repository root `root`. */
export const historyPath = (root: string): string => join(root, 'bench', 'results', 'history.json');

/** Writes `text` to `path` through a temporary file, so that a reader never sees half of it. */
function writeWhole(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}

/** The notes of `bench/gaps.md` (`gaps.ts`); none when the file is absent. */
export function readGapNotes(root: string): Map<string, string> {
  const path = join(root, 'bench', 'gaps.md');
  return existsSync(path) ? parseGapNotes(readFileSync(path, 'utf8')) : new Map();
}

export function readHistoryFile(root: string): History {
  const path = historyPath(root);
  return existsSync(path) ? parseHistory(readFileSync(path, 'utf8')) : emptyHistory();
}

/** `git rev-parse HEAD` of `root`, or `null` outside a git checkout. */
export function gitCommit(root: string): string | null {
  const result = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' });
  const sha = result.status === 0 ? result.stdout.trim() : '';
  return /^[0-9a-f]{40}$/.test(sha) ? sha : null;
}

/**
 * The charts (`docs/benchmarks/<id>.svg`) and the History section of `docs/benchmarks.md`, from
 * `history`; the rest of `docs/benchmarks.md` is kept.
 */
export function writeHistoryDocs(root: string, history: History): string[] {
  const written: string[] = [];
  for (const [file, svg] of historyCharts(history)) {
    writeWhole(join(root, 'docs', 'benchmarks', file), svg);
    written.push(`docs/benchmarks/${file}`);
  }
  const docPath = join(root, 'docs', 'benchmarks.md');
  const doc = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '# Benchmarks\n';
  writeWhole(docPath, replaceHistorySection(doc, historySection(history, readGapNotes(root))));
  written.push('docs/benchmarks.md');
  return written;
}

/** Appends the run of `results` (written to `resultsFile`, relative to `root`) to the history. */
export function recordRun(
  root: string,
  results: RunResults,
  facts: { date: string; commit: string | null; resultsFile: string },
): History {
  const history = appendRun(
    readHistoryFile(root),
    historyEntry(results, { date: facts.date, commit: facts.commit, results: facts.resultsFile }),
  );
  writeWhole(historyPath(root), serializeHistory(history));
  return history;
}
