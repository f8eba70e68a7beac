import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLmdbStore } from '@mimi-discovery/authoritative';
import { ORIGIN, PROVER_SEED, ZONE_INIT, loadDataSet } from './lib/dataset.js';
import { runDohBench } from './lib/doh-bench.js';
import { MIN_ROUNDS } from './lib/method.js';
import { startHierarchy } from './lib/hierarchy.js';
import { summarizeProfile, type CpuProfile } from './lib/profile.js';
import { runResolverBench, type ResolverBenchPart } from './lib/resolver-bench.js';
import { targetsTable } from './lib/history-report.js';
import { resolverMarkdown } from './lib/resolver-report.js';
import { runRelayBench } from './lib/relay-bench.js';
import { relayMarkdown } from './lib/relay-report.js';
import { targetFigures } from './lib/targets.js';

/**
 * The resolver and DoH benchmarks on their own, for development:
 *
 *   npx tsc -b && npx vite-node bench/resolver-run.ts -- [--csis N] [--quick] [--only doh|resolver|relay]
 *                                                       [--parts udp,cold,sync] [--cpu-prof DIR]
 *
 * Builds a data set of N CSIs (default 20,000) in a temporary directory, starts the hierarchy
 * (bench/lib/hierarchy.ts), runs the benchmarks (`--only`: one of DoH, the resolver's and the
 * relay's; `--parts`: which of the resolver's) and prints
 * their results as JSON on stdout, then as Markdown. With `--cpu-prof DIR`, our servers write
 * CPU profiles into DIR when they stop, and the functions with the most self time in each
 * (`summarizeProfile`) are printed on stderr. A profile covers the whole life of its process:
 * run one part at a time to read one.
 */

interface Options {
  csis: number;
  quick: boolean;
  only: 'doh' | 'resolver' | 'relay' | undefined;
  parts: ResolverBenchPart[] | undefined;
  cpuProfileDir: string | undefined;
}

const PARTS: readonly string[] = ['udp', 'cold', 'sync'];

function parseArgs(argv: string[]): Options {
  const options: Options = {
    csis: 20_000,
    quick: false,
    only: undefined,
    parts: undefined,
    cpuProfileDir: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') continue;
    if (arg === '--quick') options.quick = true;
    else if (arg === '--csis') {
      const value = Number(argv[++i]);
      if (!Number.isInteger(value) || value < 1000)
        throw new Error('--csis takes a whole number ≥ 1000');
      options.csis = value;
    } else if (arg === '--only') {
      const value = argv[++i];
      if (value !== 'doh' && value !== 'resolver' && value !== 'relay')
        throw new Error('--only takes doh, resolver or relay');
      options.only = value;
    } else if (arg === '--parts') {
      const value = (argv[++i] ?? '').split(',');
      if (!value.every((p) => PARTS.includes(p))) throw new Error('--parts takes udp,cold,sync');
      options.parts = value as ResolverBenchPart[];
    } else if (arg === '--cpu-prof') {
      const value = argv[++i];
      if (value === undefined) throw new Error('--cpu-prof takes a directory');
      options.cpuProfileDir = value;
    } else
      throw new Error(
        `unknown argument ${arg}; usage: bench/resolver-run.ts [--csis N] [--quick] [--only doh|resolver|relay] [--parts udp,cold,sync] [--cpu-prof DIR]`,
      );
  }
  return options;
}

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  // As many rounds with --quick (the medians need them, `lib/method.ts`), each shorter.
  const rounds = MIN_ROUNDS;
  const seconds = options.quick ? 3 : 10;
  const dir = mkdtempSync(join(tmpdir(), 'mimi-resolver-bench-'));
  let stop: (() => Promise<void>) | undefined;
  try {
    const storeDir = join(dir, 'store');
    const store = await openLmdbStore({ dataDir: storeDir, proverSeed: PROVER_SEED });
    await store.addZone(ZONE_INIT);
    log(`loading ${options.csis} CSIs into ${ORIGIN}`);
    const load = await loadDataSet(store, options.csis, () => undefined);
    await store.close();
    log(
      `loaded ${load.mappings} mappings in ${(load.signSeconds + load.applySeconds).toFixed(1)} s`,
    );

    const workDir = join(dir, 'work');
    mkdirSync(workDir);
    const h = await startHierarchy({
      storeDir,
      workDir,
      ...(options.cpuProfileDir === undefined ? {} : { cpuProfileDir: options.cpuProfileDir }),
    });
    stop = () => h.stop();
    log(`hierarchy up: ${JSON.stringify(h.commands)}`);
    const common = { rounds, seconds, quick: options.quick, workDir };
    const doh =
      options.only === undefined || options.only === 'doh'
        ? await runDohBench(h, common)
        : undefined;
    if (doh !== undefined) log('DoH done');
    const resolver =
      options.only !== undefined && options.only !== 'resolver'
        ? undefined
        : await runResolverBench(h, {
            ...common,
            csis: options.csis,
            ...(options.parts === undefined ? {} : { parts: options.parts }),
          });
    if (resolver !== undefined) log('resolver done');
    const relay =
      options.only === undefined || options.only === 'relay'
        ? await runRelayBench(h, { ...common, csis: options.csis })
        : undefined;
    if (relay !== undefined) log('relay done');
    await h.stop();
    stop = undefined;
    const results = {
      csis: options.csis,
      quick: options.quick,
      commands: h.commands,
      doh,
      resolver,
      relay,
    };
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n\n`);
    process.stdout.write(
      [
        // The targets of the parts that ran, with the rule of `lib/method.ts`.
        ...targetsTable(targetFigures({ doh, resolver, relay }).filter((f) => f.median !== null)),
        '',
        resolverMarkdown(resolver, doh),
        ...relayMarkdown(relay),
      ].join('\n'),
    );
    if (options.cpuProfileDir !== undefined) {
      const dir = options.cpuProfileDir;
      for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
        const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
        const summary = summarizeProfile(file, profile);
        log(
          `${file}: ${summary.busyMs.toFixed(0)} ms busy of ${summary.sampledMs.toFixed(0)} ms, ` +
            `GC ${summary.gcPercent.toFixed(1)}%; self time, share of busy:\n` +
            summary.top
              .map((e) => `${e.percent.toFixed(1).padStart(5)}%  ${e.function}`)
              .join('\n'),
        );
      }
    }
  } finally {
    await stop?.();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
