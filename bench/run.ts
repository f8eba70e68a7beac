import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { exportZone, openLmdbStore } from '@mimi-discovery/authoritative';
import { ORIGIN, PROVER_SEED, ZONE_INIT, loadDataSet, nameOf } from './lib/dataset.js';
import {
  runDnsperf,
  dnsperfArgs,
  type DnsperfOptions,
  type DnsperfResult,
  type LatencyPercentiles,
} from './lib/dnsperf.js';
import { machineFacts } from './lib/proc.js';
import { startDp, type DpProcess } from './lib/dp-process.js';
import { cachedDataSet } from './lib/data-cache.js';
import { measureScale, type ScaleResult } from './lib/scale.js';
import type { ProfileSummary } from './lib/profile.js';
import { runDohBench, type DohBenchResult } from './lib/doh-bench.js';
import { verifyRates } from './lib/verify-rate.js';
import { ensureBenchTools } from './lib/install.js';
import { startHierarchy } from './lib/hierarchy.js';
import { runResolverBench, type ResolverBenchResult } from './lib/resolver-bench.js';
import { markdown, median, type Results, type Round, type ServerName } from './lib/report.js';
import { TARGETS, targetFigures } from './lib/targets.js';
import { MIN_ROUNDS } from './lib/method.js';
import {
  gitCommit,
  readGapNotes,
  readHistoryFile,
  recordRun,
  writeHistoryDocs,
} from './lib/history-files.js';
import { historySection, replaceHistorySection } from './lib/history-report.js';
import type { History } from './lib/history.js';
import { pgBenchMarkdown, runPgBench, type PgBenchResult } from './lib/pg-bench.js';
import { runRelayBench } from './lib/relay-bench.js';
import type { RelayBenchResult } from './lib/relay-report.js';
import { installed, startKnot, startNsd, type StockServer } from './lib/stock.js';
import { runTransferBench, type TransferBenchResult } from './lib/transfer-bench.js';

/**
 * `npm run bench [-- --scale small|large] [--quick] [--csis N] [--report-only] [--only dp]`: the
 * DP next to NSD and Knot over UDP, and durable registration throughput. Runs against the built
 * packages (`tsc -b` first). Each run is appended to `bench/results/history.json` and charted in
 * `docs/benchmarks/`; `--report-only` runs no benchmark and writes the charts and the History
 * section of `docs/benchmarks.md` again from that history. `--only dp` runs the DP comparison
 * and the registration rounds alone and prints their targets, writing no file.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

interface Options {
  scale: 'small' | 'large';
  quick: boolean;
  csis: number | undefined;
  reportOnly: boolean;
  /** `dp`: the DP comparison and registration only, nothing written. */
  only: 'dp' | undefined;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    scale: 'small',
    quick: false,
    csis: undefined,
    reportOnly: false,
    only: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') options.quick = true;
    else if (arg === '--report-only') options.reportOnly = true;
    else if (arg === '--only') {
      if (argv[++i] !== 'dp') throw new Error('--only takes dp');
      options.only = 'dp';
    } else if (arg === '--scale') {
      const value = argv[++i];
      if (value !== 'small' && value !== 'large') throw new Error('--scale takes small or large');
      options.scale = value;
    } else if (arg === '--csis') {
      const value = Number(argv[++i]);
      if (!Number.isInteger(value) || value < 1000)
        throw new Error('--csis takes a whole number ≥ 1000');
      options.csis = value;
    } else
      throw new Error(
        `unknown argument ${arg}; usage: bench/run.ts [--scale small|large] [--quick] [--csis N] [--report-only] [--only dp]`,
      );
  }
  return options;
}

const SCALE_CSIS = { small: 100_000, large: 10_000_000 };
/** Fixed rate of the latency runs: well below every server's capacity, so latency is service time. */
const LATENCY_QPS = 5_000;
/**
 * dnsperf threads at most for the servers on every core: one thread sends and receives some
 * 100,000 queries/s here, less than N workers answer; more threads than cores only contend.
 */
const DNSPERF_MAX_THREADS = 4;
/**
 * Unrecorded passes of the query file, per answer worker, after the first pass of our DP on every
 * core: each worker keeps an answer cache of its own and the kernel hands each datagram to any
 * of them, so after k passes a worker has missed a given question with odds (1 - 1/N)^k: 5 × N
 * passes leave under 0.5% of each worker's answers to compute in the rounds (10 passes for N = 2:
 * 0.1%), where a miss costs some 15 hits; NSD and Knot never pay it.
 */
const WARM_PASSES_PER_WORKER = 5;
/** Bound of the query run during registration, which normally ends with the last publish. */
const REGISTRATION_QUERY_SECONDS_MAX = 300;

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function shuffle<T>(items: T[], seed: number): T[] {
  let state = seed;
  for (let i = items.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const j = state % (i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

async function main(): Promise<void> {
  const started = performance.now();
  const options = parseArgs(process.argv.slice(2));
  if (options.reportOnly) {
    for (const file of writeHistoryDocs(ROOT, readHistoryFile(ROOT))) log(`wrote ${file}`);
    return;
  }
  for (const line of ensureBenchTools(log)) log(`missing, what needs it is skipped: ${line}`);
  if (!installed('dnsperf'))
    throw new Error('the benchmarks need dnsperf: apt-get install dnsperf');
  if (options.scale === 'large' && options.csis === undefined) return scaleRun();
  const count = options.csis ?? SCALE_CSIS[options.scale];
  // As many rounds with --quick (the medians need them, `method.ts`), each shorter.
  const rounds = MIN_ROUNDS;
  const roundSeconds = options.quick ? 3 : 10;
  const latencySeconds = options.quick ? 2 : 4;
  const registrationPublishes = options.quick ? 10_000 : 30_000;
  const concurrency = 200;
  const dir = mkdtempSync(join(tmpdir(), 'mimi-bench-'));
  const stock: StockServer[] = [];
  let dp: DpProcess | undefined;
  /** Our DP with an answer worker per core (`answerWorkers`), when the host has more than one. */
  let dpAll: DpProcess | undefined;
  const cores = availableParallelism();
  try {
    // Data set.
    const dataDir = join(dir, 'store');
    const store = await openLmdbStore({ dataDir, proverSeed: PROVER_SEED });
    await store.addZone(ZONE_INIT);
    log(`loading ${count} CSIs into ${ORIGIN}`);
    let lastReport = 0;
    const load = await loadDataSet(store, count, (done) => {
      if (done - lastReport >= 10_000 || done === count) {
        lastReport = done;
        log(`  ${done} CSIs`);
      }
    });
    log(
      `loaded: mappings signed in ${load.signSeconds.toFixed(1)} s, applied in ${load.applySeconds.toFixed(1)} s`,
    );
    const exportStart = performance.now();
    const zoneText = exportZone(store, ORIGIN, { nsec3: true });
    const zoneFile = join(dir, `${ORIGIN}.zone`);
    writeFileSync(zoneFile, zoneText);
    const exportSeconds = (performance.now() - exportStart) / 1000;
    log(
      `exported ${(zoneText.length / 2 ** 20).toFixed(1)} MiB with NSEC3 in ${exportSeconds.toFixed(1)} s`,
    );
    await store.close();

    // Queries: 3 of 4 for existing CSIs, 1 of 4 for absent ones.
    const existing = Math.min(count, 40_000);
    const absent = Math.round(existing / 3);
    const step = count / existing;
    const names = [
      ...Array.from({ length: existing }, (_, i) => nameOf(Math.floor(i * step))),
      ...Array.from({ length: absent }, (_, i) => nameOf(count + 1_000_000 + i)),
    ];
    const queryFile = join(dir, 'queries.txt');
    writeFileSync(
      queryFile,
      shuffle(names, 42)
        .map((n) => `${n} TYPE65400\n`)
        .join(''),
    );

    // Servers, all up at once: each on one core, and each on every core.
    dp = await startDp(dataDir);
    log(`DP on 127.0.0.1:${dp.port} (pid ${dp.pid})`);
    const skipped: string[] = [];
    const targets: { name: ServerName; port: number; pid: number; workers: number }[] = [
      { name: 'ours', port: dp.port, pid: dp.pid, workers: 1 },
    ];
    const commands: Record<string, string> = { bench: process.argv.join(' '), dp: dp.command };
    if (cores > 1) {
      dpAll = await startDp(dataDir, undefined, undefined, cores);
      log(`DP with ${cores} answer workers on 127.0.0.1:${dpAll.port} (pid ${dpAll.pid})`);
      targets.push({ name: 'ours-all', port: dpAll.port, pid: dpAll.pid, workers: cores });
      commands['dp-all'] = `MIMI_BENCH_ANSWER_WORKERS=${cores} ${dpAll.command}`;
    } else {
      skipped.push('ours-all, nsd-all, knot-all: this host has one core');
    }
    for (const [name, binary, start] of [
      ['nsd', 'nsd', startNsd],
      ['knot', 'knotd', startKnot],
    ] as const) {
      if (!installed(binary)) {
        skipped.push(`${name}: ${binary} is not installed (apt-get install ${name})`);
        continue;
      }
      for (const workers of cores > 1 ? [1, cores] : [1]) {
        const label: ServerName = workers === 1 ? name : `${name}-all`;
        try {
          const server = await start(dir, ORIGIN, zoneFile, workers);
          stock.push(server);
          targets.push({ name: label, port: server.port, pid: server.pid, workers });
          commands[label] = server.command;
          log(`${label} on 127.0.0.1:${server.port} (pid ${server.pid}, ${workers} workers)`);
        } catch (error) {
          skipped.push(`${label}: did not start (${(error as Error).message})`);
        }
      }
    }

    // One core: one dnsperf thread, 4 clients (as every run before). Every core: a thread per
    // core up to DNSPERF_MAX_THREADS, 4 clients each, so that the load generator is not the
    // bottleneck of N answering processes.
    const perf = (port: number, seconds: number, maxQps?: number, workers = 1): DnsperfOptions => {
      const threads = Math.min(workers, DNSPERF_MAX_THREADS);
      return {
        port,
        queryFile,
        seconds,
        clients: 4 * threads,
        ...(threads === 1 ? {} : { threads }),
        outstanding: 100,
        ...(maxQps === undefined ? {} : { maxQps }),
      };
    };
    commands.dnsperf = `dnsperf ${dnsperfArgs(perf(0, roundSeconds)).join(' ')} (port per server)`;
    if (cores > 1) {
      commands['dnsperf-all'] =
        `dnsperf ${dnsperfArgs(perf(0, roundSeconds, undefined, cores)).join(' ')} (the -all servers)`;
    }

    // Warm-up: the whole query file once per server. NSD and Knot compile every answer when they
    // load the zone; our DP compiles an answer (into its answer cache) the first time it is asked,
    // so this pass is where it pays that cost. Its rate is recorded as the first-query rate.
    const firstPass: Results['udp']['firstPass'] = {};
    for (const t of targets) {
      const result = await runDnsperf(
        { ...perf(t.port, 0, undefined, t.workers), passes: 1 },
        t.pid,
      );
      firstPass[t.name] = result;
      log(
        `first pass ${t.name}: ${Math.round(result.queriesPerSecond)} q/s, ${result.cpuMicrosecondsPerQuery.toFixed(1)} µs CPU/query`,
      );
      if (t.name === 'ours-all') {
        const passes = WARM_PASSES_PER_WORKER * t.workers;
        const warm = await runDnsperf({ ...perf(t.port, 0, undefined, t.workers), passes }, t.pid);
        log(
          `warm-up ${t.name}: ${passes} more passes, ${Math.round(warm.queriesPerSecond)} q/s, not recorded`,
        );
      }
    }

    const measured: Round[] = [];
    for (let round = 1; round <= rounds; round++) {
      // Rotate the order so that no server always runs first.
      const order = targets.map((_, i) => targets[(i + round - 1) % targets.length]!);
      for (const t of order) {
        const result = await runDnsperf(perf(t.port, roundSeconds, undefined, t.workers), t.pid);
        // Latency at a fixed rate right after: per-response times, for percentiles.
        const latency = await runDnsperf(
          { ...perf(t.port, latencySeconds, LATENCY_QPS, t.workers), percentiles: true },
          t.pid,
        );
        measured.push({ round, server: t.name, result, latency: latency.percentilesMs! });
        log(
          `round ${round} ${t.name}: ${Math.round(result.queriesPerSecond)} q/s, ` +
            `${result.cpuMicrosecondsPerQuery.toFixed(1)} µs CPU/query, lost ${result.queriesLost}; ` +
            `at ${LATENCY_QPS} q/s p50 ${latency.percentilesMs!.p50.toFixed(3)} ms, p99 ${latency.percentilesMs!.p99.toFixed(3)} ms`,
        );
      }
    }
    const qps = (round: number, server: ServerName): number | undefined =>
      measured.find((m) => m.round === round && m.server === server)?.result.queriesPerSecond;
    const ratios = Array.from({ length: rounds }, (_, i) => {
      const ours = qps(i + 1, 'ours')!;
      const nsd = qps(i + 1, 'nsd');
      const knot = qps(i + 1, 'knot');
      const all = qps(i + 1, 'ours-all');
      const nsdAll = qps(i + 1, 'nsd-all');
      const knotAll = qps(i + 1, 'knot-all');
      return {
        round: i + 1,
        ...(nsd === undefined ? {} : { oursToNsd: ours / nsd }),
        ...(knot === undefined ? {} : { oursToKnot: ours / knot }),
        ...(all === undefined || nsdAll === undefined ? {} : { allToNsdAll: all / nsdAll }),
        ...(all === undefined || knotAll === undefined ? {} : { allToKnotAll: all / knotAll }),
      };
    });
    const medians: Results['udp']['medians'] = {};
    for (const t of targets) {
      const of = (pick: (r: DnsperfResult) => number): number =>
        median(measured.filter((m) => m.server === t.name).map((m) => pick(m.result)));
      const latencyOf = (pick: (r: LatencyPercentiles) => number): number =>
        median(measured.filter((m) => m.server === t.name).map((m) => pick(m.latency)));
      medians[t.name] = {
        queriesPerSecond: of((r) => r.queriesPerSecond),
        averageLatencyMs: of((r) => r.averageLatencyMs),
        cpuMicrosecondsPerQuery: of((r) => r.cpuMicrosecondsPerQuery),
        p50LatencyMs: latencyOf((r) => r.p50),
        p90LatencyMs: latencyOf((r) => r.p90),
        p99LatencyMs: latencyOf((r) => r.p99),
      };
    }
    const ratioMedian = (
      key: 'oursToNsd' | 'oursToKnot' | 'allToNsdAll' | 'allToKnotAll',
    ): number | undefined => {
      const values = ratios.flatMap((r) => (r[key] === undefined ? [] : [r[key]]));
      return values.length === 0 ? undefined : median(values);
    };

    // Profiles of our DP, each in a run of its own so that no measured figure carries the
    // profiler's cost: the first answer to a question (the slowest path: lookup, encoding, online
    // signing of denials), over questions the rounds never asked, and an answer from the cache.
    const unseen = shuffle(
      [
        ...(step >= 2
          ? Array.from({ length: Math.min(existing, 15_000) }, (_, i) =>
              nameOf(Math.floor(i * step) + 1),
            )
          : []),
        ...Array.from({ length: 5_000 }, (_, i) => nameOf(count + 2_000_000 + i)),
      ],
      7,
    );
    const unseenFile = join(dir, 'queries-unseen.txt');
    writeFileSync(unseenFile, unseen.map((n) => `${n} TYPE65400\n`).join(''));
    const profiles: Results['profiles'] = [];
    for (const [phase, run] of [
      [
        'first answer to each question (answer cache miss)',
        { ...perf(dp.port, 0), queryFile: unseenFile, passes: 1 },
      ],
      ['answers from the answer cache', perf(dp.port, roundSeconds)],
    ] as const) {
      await dp.request({ cmd: 'profile-start' });
      const result = await runDnsperf(run, dp.pid);
      const { summary } = (await dp.request({ cmd: 'profile-stop', phase })) as {
        summary: ProfileSummary;
      };
      profiles.push({ ...summary, queriesPerSecond: result.queriesPerSecond });
      log(`profiled ${phase}: ${Math.round(result.queriesPerSecond)} q/s under the profiler`);
    }

    // Registration while the DP answers queries (dnsperf capped so that both share the CPU), in
    // rounds as every comparison (`lib/method.ts`), each publishing mappings for new CSIs: on the
    // DP with answer workers when there is one (its process is the writer and publishes, each
    // publish resolved once every worker serves it), else on the one-process DP.
    const writer = dpAll ?? dp;
    const writerWorkers = dpAll === undefined ? 1 : cores;
    log(
      `registration: ${rounds} rounds of ${registrationPublishes} publishes, ${concurrency} concurrent, ` +
        `on the DP with ${writerWorkers} answer worker(s)`,
    );
    const registrationRounds: (NonNullable<Results['registration']['rounds']>[number] & {
      queriesMeanwhile: DnsperfResult;
    })[] = [];
    for (let round = 1; round <= rounds; round++) {
      await writer.request({
        cmd: 'prepare',
        first: count + 5_000_000 + (round - 1) * registrationPublishes,
        count: registrationPublishes,
      });
      // Queries at the latency runs' rate, so that p99 compares with the same server without
      // writes, from just before the first publish to the last one (dnsperf stops on SIGINT).
      const publishing = new AbortController();
      const meanwhile = runDnsperf(
        {
          ...perf(writer.port, REGISTRATION_QUERY_SECONDS_MAX, LATENCY_QPS, writerWorkers),
          percentiles: true,
          signal: publishing.signal,
        },
        writer.pid,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      const registered = await writer.request({ cmd: 'register', concurrency });
      publishing.abort();
      const queriesMeanwhile = await meanwhile;
      registrationRounds.push({
        round,
        publishes: Number(registered.publishes),
        seconds: Number(registered.seconds),
        publishesPerSecond: Number(registered.publishesPerSecond),
        p99Ms: queriesMeanwhile.percentilesMs?.p99 ?? NaN,
        queriesMeanwhile,
      });
      log(
        `registration round ${round}: ${Math.round(Number(registered.publishesPerSecond))} publishes/s, ` +
          `query p99 ${(queriesMeanwhile.percentilesMs?.p99 ?? NaN).toFixed(3)} ms`,
      );
    }
    // The round of the median rate stands for the run in the section; the targets take every round.
    const registered = [...registrationRounds].sort(
      (a, b) => a.publishesPerSecond - b.publishesPerSecond,
    )[Math.floor(registrationRounds.length / 2)]!;
    const queriesMeanwhile = registered.queriesMeanwhile;
    commands.registrationQueries = `dnsperf ${queriesMeanwhile.args.join(' ')}`;

    // The hierarchy (root → DP, our resolver, Unbound) over the same store: the DP, NSD and Knot
    // of the comparison above stop first, so that the next benchmarks have the cores to themselves.
    await dp.stop();
    dp = undefined;
    await dpAll?.stop();
    dpAll = undefined;
    for (const server of stock.splice(0)) await server.stop();
    const udp: Results['udp'] = {
      queryFile: { existing, absent },
      latencyQps: LATENCY_QPS,
      firstPass,
      rounds: measured,
      skipped,
      ...(cores > 1 ? { workers: cores } : {}),
      ratios,
      medians,
      ...(ratioMedian('oursToNsd') === undefined
        ? {}
        : { medianRatioOursToNsd: ratioMedian('oursToNsd')! }),
      ...(ratioMedian('oursToKnot') === undefined
        ? {}
        : { medianRatioOursToKnot: ratioMedian('oursToKnot')! }),
      ...(ratioMedian('allToNsdAll') === undefined
        ? {}
        : { medianRatioAllToNsdAll: ratioMedian('allToNsdAll')! }),
      ...(ratioMedian('allToKnotAll') === undefined
        ? {}
        : { medianRatioAllToKnotAll: ratioMedian('allToKnotAll')! }),
    };
    const registration: Results['registration'] = {
      ...(writerWorkers > 1 ? { answerWorkers: writerWorkers } : {}),
      concurrency,
      publishes: registered.publishes,
      seconds: registered.seconds,
      publishesPerSecond: registered.publishesPerSecond,
      queriesMeanwhile,
      rounds: registrationRounds.map(({ queriesMeanwhile: _, ...round }) => round),
    };
    if (options.only === 'dp') {
      // Printed, not written: a partial run has no place in the results or the history.
      for (const figure of targetFigures({ udp, registration })) {
        if (figure.median === null) continue;
        const title = TARGETS.find((t) => t.id === figure.id)?.title ?? figure.id;
        log(
          `${figure.id} (${title}): median ${figure.median.toFixed(3)} [${figure.min?.toFixed(3)}–${figure.max?.toFixed(3)}]` +
            `${figure.cpuRatio === null ? '' : `, CPU ratio ${figure.cpuRatio.toFixed(3)}`}, met: ${String(figure.met)}`,
        );
      }
      return;
    }

    // Zone transfers: our DP as NSD's primary over the same store (NOTIFY, IXFR, TSIG).
    const transferDir = join(dir, 'transfer');
    mkdirSync(transferDir);
    log('transfer: our DP as the primary of NSD');
    const transfer: TransferBenchResult = await runTransferBench({
      dataDir,
      workDir: transferDir,
      csis: count,
      queryFile,
      firstNewCsi: count + 7_000_000,
      quick: options.quick,
      log,
    });
    Object.assign(commands, transfer.commands ?? {});

    const verification = verifyRates();
    log(
      `Ed25519 verifications/s on one core: native ${Math.round(verification.native ?? NaN)}, portable ${Math.round(verification.portable)}`,
    );
    const hierarchyDir = join(dir, 'hierarchy');
    mkdirSync(hierarchyDir);
    log('hierarchy: root, DP, our resolver and Unbound');
    const hierarchy = await startHierarchy({ storeDir: dataDir, workDir: hierarchyDir });
    let doh: DohBenchResult;
    let resolver: ResolverBenchResult;
    let relay: RelayBenchResult;
    try {
      for (const [key, value] of Object.entries(hierarchy.commands))
        commands[`hierarchy.${key}`] = value;
      const shared = { rounds, seconds: roundSeconds, quick: options.quick, workDir: hierarchyDir };
      log('DoH: our DP, our resolver and Unbound (h2load)');
      doh = await runDohBench(hierarchy, shared);
      log('resolver: cache hits, cold resolution, contact sync');
      resolver = await runResolverBench(hierarchy, { ...shared, csis: count });
      log('relay: lookups and contact syncs through the oblivious relay next to direct ones');
      relay = await runRelayBench(hierarchy, { ...shared, csis: count });
      Object.assign(commands, relay.commands);
    } finally {
      await hierarchy.stop();
    }
    log('postgres: our DP over PostgreSQL next to our DP over LMDB');
    const postgres = await runPgBench({
      storeDir: dataDir,
      csis: count,
      rounds,
      quick: options.quick,
      workDir: dir,
      log,
    });

    const date = new Date().toISOString().slice(0, 10);
    const results: Results & { postgres: PgBenchResult; relay: RelayBenchResult } = {
      date,
      scale: options.scale,
      quick: options.quick,
      machine: machineFacts(),
      commands,
      dataSet: {
        origin: ORIGIN,
        csis: count,
        requestedCsis: SCALE_CSIS[options.scale],
        mappings: load.mappings,
        signSeconds: load.signSeconds,
        applySeconds: load.applySeconds,
        exportSeconds,
        zoneFileBytes: Buffer.byteLength(zoneText),
        note:
          count === SCALE_CSIS[options.scale]
            ? ''
            : `The scale asks for ${SCALE_CSIS[options.scale].toLocaleString('en-US')} CSIs; this run used ${count.toLocaleString('en-US')} (\`--csis\`).`,
      },
      udp,
      profiles,
      verification,
      doh,
      resolver,
      transfer,
      postgres,
      relay,
      registration,
      wallSeconds: 0,
    };
    results.wallSeconds = (performance.now() - started) / 1000;
    const resultsDir = join(ROOT, 'bench', 'results');
    mkdirSync(resultsDir, { recursive: true });
    // A second run of the same day keeps the first one's file: the time of day goes in its name.
    const finished = new Date().toISOString();
    const dayPath = join(resultsDir, `${date}.json`);
    const resultsPath = existsSync(dayPath)
      ? join(resultsDir, `${finished.slice(0, 16).replace(':', '')}.json`)
      : dayPath;
    writeFileSync(resultsPath, `${JSON.stringify(results, null, 2)}\n`);
    const history = recordRun(ROOT, results, {
      date: finished,
      commit: gitCommit(ROOT),
      resultsFile: relative(ROOT, resultsPath),
    });
    writeMarkdown(results, resultsPath, history);
    log(
      `wrote ${relative(ROOT, resultsPath)}, bench/results/history.json, docs/benchmarks.md and its charts in ${results.wallSeconds.toFixed(0)} s`,
    );
  } finally {
    await dp?.stop().catch(() => undefined);
    await dpAll?.stop().catch(() => undefined);
    for (const server of stock) await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const RESULTS_DIR = join(ROOT, 'bench', 'results');

/** The scale results of the last `--scale large` run, when there is one. */
function scaleResults(): { small: ScaleResult; large: ScaleResult } | undefined {
  const [small, large] = [SCALE_CSIS.small, SCALE_CSIS.large].map((n) =>
    join(RESULTS_DIR, `scale-${n}.json`),
  );
  if (!existsSync(small!) || !existsSync(large!)) return undefined;
  const read = (path: string): ScaleResult => JSON.parse(readFileSync(path, 'utf8')) as ScaleResult;
  return { small: read(small!), large: read(large!) };
}

/**
 * `docs/benchmarks.md` from a run's results, the last scale comparison and the history of runs,
 * and the history's charts.
 */
function writeMarkdown(
  results: Results & { postgres?: PgBenchResult; relay?: RelayBenchResult },
  resultsPath: string,
  history: History,
): void {
  writeFileSync(
    join(ROOT, 'docs', 'benchmarks.md'),
    replaceHistorySection(
      markdown(results, relative(ROOT, resultsPath), scaleResults()) +
        pgBenchMarkdown(results.postgres),
      historySection(history, readGapNotes(ROOT)),
    ),
  );
  writeHistoryDocs(ROOT, history);
}

/**
 * `--scale large`: the DP over 10,000,000 CSIs next to 100,000 — store size, memory, start-up
 * and query latency (\`bench/lib/scale.ts\`) — from data sets kept between runs
 * (\`bench/lib/data-cache.ts\`: the large one takes about an hour to build on two cores).
 * NSD, Knot and Unbound are not run at this scale: the zone file they would load is tens of GB.
 * The comparison is written to \`bench/results/scale-<N>.json\` and into
 * \`docs/benchmarks.md\`, whose other sections keep the last full run's figures.
 */
async function scaleRun(): Promise<void> {
  mkdirSync(RESULTS_DIR, { recursive: true });
  for (const csis of [SCALE_CSIS.small, SCALE_CSIS.large]) {
    log(`scale: the data set of ${csis.toLocaleString('en-US')} CSIs`);
    let last = 0;
    const dataSet = await cachedDataSet(csis, {
      progress: (done, total) => {
        if (done - last < total / 100 && done !== total) return;
        last = done;
        log(`  built ${done.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} CSIs`);
      },
    });
    const result = await measureScale(dataSet.dataDir, {
      csis,
      manifest: dataSet.manifest,
      log: (message) => log(`  ${message}`),
    });
    writeFileSync(join(RESULTS_DIR, `scale-${csis}.json`), `${JSON.stringify(result, null, 2)}\n`);
  }
  const latest = readdirSync(RESULTS_DIR)
    .filter((file) => /^\d{4}-\d{2}-\d{2}\.json$/.test(file))
    .sort()
    .at(-1);
  if (latest === undefined) {
    log('wrote bench/results/scale-*.json; run `npm run bench` for docs/benchmarks.md');
    return;
  }
  const resultsPath = join(RESULTS_DIR, latest);
  writeMarkdown(
    JSON.parse(readFileSync(resultsPath, 'utf8')) as Results,
    resultsPath,
    readHistoryFile(ROOT),
  );
  log('wrote bench/results/scale-*.json and docs/benchmarks.md');
}

await main();
