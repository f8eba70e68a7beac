import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readHistoryFile, recordRun, writeHistoryDocs } from './lib/history-files.js';
import type { RunResults } from './lib/targets.js';

/**
 * `npx vite-node bench/history.ts [-- --add <results.json> [--commit <sha>]]`: writes the charts
 * (`docs/benchmarks/<id>.svg`) and the History section of `docs/benchmarks.md` again from
 * `bench/results/history.json`, without running any benchmark. `--add` first appends a results
 * file written by `npm run bench` (a run from before the history, or from another checkout) as a
 * run of its date; its commit is unknown unless given.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const USAGE = 'usage: bench/history.ts [--add <results.json> [--commit <sha>]]';

function main(argv: string[]): void {
  let add: string | undefined;
  let commit: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--add' && argv[i + 1] !== undefined) add = argv[++i];
    else if (arg === '--commit' && /^[0-9a-f]{40}$/.test(argv[i + 1] ?? '')) commit = argv[++i]!;
    else throw new Error(`bad argument ${arg}; ${USAGE}`);
  }
  if (commit !== null && add === undefined) throw new Error(`--commit goes with --add; ${USAGE}`);
  let history = readHistoryFile(ROOT);
  if (add !== undefined) {
    const path = resolve(add);
    const results = JSON.parse(readFileSync(path, 'utf8')) as RunResults;
    if (typeof results.date !== 'string' || results.udp === undefined)
      throw new Error(`${add} is not a results file of npm run bench`);
    history = recordRun(ROOT, results, {
      date: results.date,
      commit,
      resultsFile: relative(ROOT, path),
    });
    process.stderr.write(`added the run of ${results.date} to bench/results/history.json\n`);
  }
  for (const file of writeHistoryDocs(ROOT, history)) process.stderr.write(`wrote ${file}\n`);
}

main(process.argv.slice(2));
