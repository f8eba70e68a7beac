import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLmdbStore } from '@mimi-discovery/authoritative';
import { PROVER_SEED, ZONE_INIT, loadDataSet } from './lib/dataset.js';
import { MIN_ROUNDS } from './lib/method.js';
import { pgBenchMarkdown, runPgBench } from './lib/pg-bench.js';

/**
 * The PostgreSQL benchmark on its own, for development:
 *
 *   npx tsc -b && npx vite-node bench/pg-run.ts -- [--csis N] [--quick]
 *
 * Builds a data set of N CSIs (default 20,000) in a temporary directory, runs
 * `bench/lib/pg-bench.ts` (`MIN_ROUNDS` rounds, smaller with --quick) and prints the result as JSON on
 * stdout, then as Markdown.
 */

function log(message: string): void {
  process.stderr.write(`[pg-bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const at = args.indexOf('--csis');
const csis = at < 0 ? 20_000 : Number(args[at + 1]);
if (!Number.isInteger(csis) || csis < 1000) throw new Error('--csis takes a whole number ≥ 1000');

const dir = mkdtempSync(join(tmpdir(), 'mimi-pg-bench-'));
try {
  const storeDir = join(dir, 'store');
  const store = await openLmdbStore({ dataDir: storeDir, proverSeed: PROVER_SEED });
  await store.addZone(ZONE_INIT);
  log(`loading ${csis} CSIs`);
  await loadDataSet(store, csis, () => undefined);
  await store.close();
  const result = await runPgBench({
    storeDir,
    csis,
    rounds: MIN_ROUNDS,
    quick,
    workDir: dir,
    log,
  });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n${pgBenchMarkdown(result)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
