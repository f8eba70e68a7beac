import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { cachedDataSet, defaultCacheDir } from './lib/data-cache.js';
import { measureScale, type ScaleResult } from './lib/scale.js';
import { scaleMarkdown } from './lib/scale-report.js';

/**
 * `npx tsc -b && npx vite-node bench/scale-run.ts -- --csis N [--cache-dir DIR] [--rebuild]
 * [--build-only] [--warm]`: gets (building when needed) the cached data set of N CSIs, measures
 * the DP over it (`measureScale`) and prints the result as JSON on stdout. `--warm` keeps the
 * page cache (by default it is dropped before each start-up, which needs root and slows
 * everything else on the machine for a moment). The result is also written
 * to `bench/results/scale-<N>.json`; when the results for 100,000 and 10,000,000 CSIs both exist,
 * the Markdown comparison follows on stderr.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');
const COMPARED = [100_000, 10_000_000] as const;

interface Options {
  csis: number;
  cacheDir: string;
  rebuild: boolean;
  buildOnly: boolean;
  warm: boolean;
}

const USAGE =
  'usage: bench/scale-run.ts --csis N [--cache-dir DIR] [--rebuild] [--build-only] [--warm] ' +
  '(or --scale small|large for 100,000 or 10,000,000 CSIs)';

function parseArgs(argv: string[]): Options {
  const options: Options = {
    csis: 100_000,
    cacheDir: defaultCacheDir(),
    rebuild: false,
    buildOnly: false,
    warm: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') continue;
    if (arg === '--csis') {
      const value = Number(argv[++i]);
      if (!Number.isSafeInteger(value) || value < 1000)
        throw new Error('--csis takes a whole number ≥ 1000');
      options.csis = value;
    } else if (arg === '--scale') {
      const value = argv[++i];
      if (value !== 'small' && value !== 'large') throw new Error('--scale takes small or large');
      options.csis = value === 'small' ? COMPARED[0] : COMPARED[1];
    } else if (arg === '--cache-dir') {
      const value = argv[++i];
      if (value === undefined || value === '') throw new Error('--cache-dir takes a directory');
      options.cacheDir = value;
    } else if (arg === '--rebuild') options.rebuild = true;
    else if (arg === '--build-only') options.buildOnly = true;
    else if (arg === '--warm') options.warm = true;
    else throw new Error(`unknown argument ${arg}; ${USAGE}`);
  }
  return options;
}

function log(message: string): void {
  process.stderr.write(`[scale ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/**
 * Logs build progress about every 1 % (at most every 100,000 CSIs): the rate since the last line
 * and overall, and the time left at the recent rate (the machine may be shared, so the recent
 * rate predicts better than the average).
 */
function progressLogger(): (done: number, count: number) => void {
  const started = performance.now();
  let last = { done: 0, at: started };
  return (done, count) => {
    const step = Math.max(1000, Math.min(100_000, Math.round(count / 100)));
    if (done - last.done < step && done !== count) return;
    const at = performance.now();
    const recent = (done - last.done) / ((at - last.at) / 1000);
    const seconds = (at - started) / 1000;
    last = { done, at };
    log(
      `  ${done.toLocaleString('en-US')} / ${count.toLocaleString('en-US')} CSIs in ` +
        `${Math.round(seconds)} s: ${Math.round(recent)} CSIs/s lately, ` +
        `${Math.round(done / seconds)} overall, about ${Math.round((count - done) / recent / 60)} min left`,
    );
  };
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  log(`data set of ${options.csis.toLocaleString('en-US')} CSIs in ${options.cacheDir}`);
  const dataSet = await cachedDataSet(options.csis, {
    cacheDir: options.cacheDir,
    rebuild: options.rebuild,
    progress: progressLogger(),
  });
  const load = dataSet.manifest.load;
  log(
    dataSet.built
      ? `built (${dataSet.reason}) in ${load.wallSeconds.toFixed(0)} s: ` +
          `${Math.round(load.csis / load.wallSeconds)} CSIs/s with ${load.workers} signing workers ` +
          `(signing ${load.signSeconds.toFixed(0)} s summed over workers, ` +
          `apply ${load.applySeconds.toFixed(0)} s)`
      : `reusing the data set built ${dataSet.manifest.builtAt}`,
  );
  if (options.buildOnly) {
    process.stdout.write(`${JSON.stringify(dataSet, null, 2)}\n`);
    return;
  }
  const result = await measureScale(dataSet.dataDir, {
    csis: options.csis,
    manifest: dataSet.manifest,
    dropCaches: !options.warm,
    log,
  });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  mkdirSync(RESULTS, { recursive: true });
  const path = join(RESULTS, `scale-${options.csis}.json`);
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${relative(ROOT, path)}`);
  const [small, large] = COMPARED.map((n) => join(RESULTS, `scale-${n}.json`));
  if (existsSync(small!) && existsSync(large!)) {
    const read = (p: string): ScaleResult => JSON.parse(readFileSync(p, 'utf8')) as ScaleResult;
    process.stderr.write(`\n${scaleMarkdown(read(small!), read(large!))}\n`);
  }
}

await main();
