import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { openLmdbStore, storeDirectory } from '@mimi-discovery/authoritative';
import { buildQuery, queryUdp } from '@mimi-discovery/common';
import type { DataSetManifest } from './data-cache.js';
import { ORIGIN, PROVER_SEED, nameOf } from './dataset.js';
import { startDp, type DpProcess } from './dp-process.js';
import { machineFacts, treeCpuSeconds, type MachineFacts } from './proc.js';
import { median, percentile } from './report.js';

/**
 * How the DP behaves as its store grows: the store's size on disk, the DP's memory, its start-up
 * time and its query latency at a fixed moderate rate, over one data set. Two results (100,000
 * and 10,000,000 CSIs) compare in `scale-report.ts`.
 *
 * Method, per data set:
 * 1. Store size: `data.mdb`'s length and the blocks it occupies (`stat` blocks × 512; an LMDB
 *    file may be sparse, or hold freed pages).
 * 2. Start-up, `startups` times (default 3): drop the page cache when allowed (root:
 *    `sync; echo 3 > /proc/sys/vm/drop_caches`, else the run is marked warm), spawn the DP
 *    (`dp-process.ts`), and time spawn → ready line (the store is open, the socket bound) →
 *    first answered MAP query for a CSI in the middle of the data set. Medians are reported. The
 *    DP runs under vite-node, whose start (transforming TypeScript) is the same for every size;
 *    what grows with the store is whatever the DP reads before it reports ready (with
 *    `startDp`, a `resign` walk over every node: see `resignScanSeconds`).
 *    Then it waits until the DP is idle (its CPU below 3 % of a core for 3 s): what the DP does
 *    in the background once it answers (`startDp` starts a `resign` walk over every node)
 *    would otherwise compete with the latency passes.
 * 3. Memory: VmRSS (split into anonymous and file-backed: LMDB's pages are file-backed, mapped
 *    from the page cache) and VmHWM from /proc/<pid>/status, right after the last start-up's
 *    first answer, once it is idle, and again after the query load.
 * 4. Latency: dnsperf at a fixed rate (`-Q`, default 2,000 queries/s, far below saturation), DO
 *    set, `-v` (one line per response, parsed as it streams), each name asked once (`-n 1`) and
 *    the run bounded by `-l`. Names: CSIs spread evenly over the whole data set (3 of 4) and
 *    absent CSIs spread the same way (1 of 4: a 13-digit number that extends an existing one,
 *    so its denial is looked up next to existing data), shuffled. After the last start-up,
 *    10 s of unrecorded queries for other names warm V8 up; then two passes over the same
 *    names. The first looks every name up in the store: a name's page is in memory only if
 *    something read it since the cache was dropped (the warm-up, or a `resign` walk: then the
 *    whole store, RAM allowing). The second repeats them: with `startDp` the DP's answer
 *    cache (64 MiB by default) holds the first pass's responses, so it measures cache hits.
 *    Percentiles are nearest-rank over answered queries; server CPU per query from /proc. A CSI
 *    with three mappings is answered truncated (TC) over UDP, as in `run.ts` (see
 *    `probeIndex`).
 * 5. Export (`measureExport`), once the DP has stopped: `mimi-discovery zone export --no-nsec3`
 *    (the built command, as an operator runs it) over the data set, its stdout a pipe that this
 *    process reads and counts (records are lines), nothing written to disk. Its memory is sampled
 *    from /proc/<pid>/status every {@link EXPORT_SAMPLE_MS} ms (the largest RssAnon and
 *    RssFile), and at exit it reports its own peak RSS and CPU time (`process.resourceUsage`,
 *    through a preloaded module writing to fd 3). Anonymous memory is the process's own (the V8
 *    heap, buffers): streamed, it stays the same at any size. File-backed memory is LMDB's map
 *    of `data.mdb`, pages of the page cache that the read brings in and the kernel reclaims
 *    when it needs them; the peak RSS (VmHWM) counts them too, so it follows the store's size
 *    as far as RAM allows. `--no-nsec3` is the form that streams without a stored NSEC3 chain;
 *    a zone that keeps its chain streams the same way.
 */

/** The DP counts as idle below this fraction of one core… */
const IDLE_CPU_FRACTION = 0.03;
/** …for this many consecutive seconds. */
const IDLE_SECONDS = 3;
/** Longest wait for the DP to become idle after it starts. */
const SETTLE_TIMEOUT_MS = 30 * 60_000;

/** Seconds of unrecorded queries, for other names, before the first pass (V8 warm-up). */
const WARM_UP_SECONDS = 10;

/** Options of {@link measureScale}. */
export interface ScaleOptions {
  /** CSIs in the data set (names are chosen from 0 to csis - 1). */
  csis: number;
  /** Recorded in the result. */
  manifest?: DataSetManifest;
  /** Start-ups to time; default 3. */
  startups?: number;
  /** Try to drop the page cache before each start-up; default true. */
  dropCaches?: boolean;
  /** Time `store.resign` walking the whole store (see {@link timeResignScan}); default true. */
  resignScan?: boolean;
  /** Measure `zone export` of the whole zone (see {@link measureExport}); default true. */
  export?: boolean;
  /** Query rate of the latency runs; default 2,000/s. */
  queriesPerSecond?: number;
  /** Names per latency pass (3 of 4 existing); default 40,000, 20 s at 2,000/s. */
  queries?: number;
  log?: (message: string) => void;
}

/** Memory of the DP process, from /proc/<pid>/status, in KiB. */
export interface ProcessMemory {
  vmRssKiB: number;
  rssAnonKiB: number;
  rssFileKiB: number;
  vmHwmKiB: number;
}

/** One timed start-up, milliseconds from spawn. */
export interface StartupRun {
  cache: 'cold' | 'warm';
  /** Spawn → the DP's ready line (store open, UDP socket bound). */
  readyMs: number;
  /** Spawn → the first answer to a MAP query. */
  firstAnswerMs: number;
  /**
   * Spawn → the DP idle (below {@link IDLE_CPU_FRACTION} of a core for {@link IDLE_SECONDS} s):
   * the end of work the DP does in the background after it answers, such as a first `resign`
   * walk over every node.
   */
  settledMs: number;
  /** CPU seconds the DP used from spawn until settled. */
  cpuSecondsToSettle: number;
}

/** One latency pass. */
export interface LatencyRun {
  pass: 'first' | 'second';
  dnsperf: string;
  queriesSent: number;
  answered: number;
  lost: number;
  rcodes: Record<string, number>;
  /** Achieved rate over the run. */
  queriesPerSecond: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** Server CPU (user + system) per answered query. */
  cpuMicrosecondsPerQuery: number;
  /**
   * The machine's 1-minute load average when the pass ended: above the core count, other work
   * competed with the DP and dnsperf, and latencies include waiting for a CPU.
   */
  loadAverage: number;
}

/** One measured zone export (see the module comment, step 5). */
export interface ExportRun {
  /** The command line, relative to the repository root. */
  command: string;
  /** Lines written: one record each. */
  records: number;
  /** Octets written. */
  octets: number;
  /** Spawn → exit. */
  seconds: number;
  recordsPerSecond: number;
  /** User + system CPU of the export process (its own report at exit). */
  cpuSeconds: number;
  /** The largest anonymous RSS sampled: the process's own memory. */
  peakRssAnonKiB: number;
  /** The largest file-backed RSS sampled: LMDB's mapped pages, and code. */
  peakRssFileKiB: number;
  /** Peak RSS, anonymous and file-backed (ru_maxrss, the process's own report at exit). */
  peakRssKiB: number;
}

/** The result of {@link measureScale}: plain data, for JSON. */
export interface ScaleResult {
  date: string;
  machine: MachineFacts;
  csis: number;
  mappings?: number;
  dataSetBuiltAt?: string;
  /** The build's wall time and its phases, when the manifest was given. */
  build?: DataSetManifest['load'];
  store: {
    dataDir: string;
    /** `data.mdb`'s length. */
    dataFileBytes: number;
    /** Blocks `data.mdb` occupies on disk (`stat` blocks × 512). */
    dataDiskBytes: number;
    /** `dataDiskBytes` per CSI. */
    bytesPerCsi: number;
  };
  startup: {
    runs: StartupRun[];
    medianReadyMs: number;
    medianFirstAnswerMs: number;
    medianSettledMs: number;
    /** `cold` when the page cache was dropped before every start-up. */
    cache: 'cold' | 'warm' | 'mixed';
    /**
     * Seconds `store.resign` took to walk the whole store with nothing due, in the measuring
     * process after the DP stopped (page cache warm). `startDp` (server.ts) runs this walk
     * in the background at start and every 15 minutes on the store's writer thread; this
     * measures what each pass costs.
     */
    resignScanSeconds?: number;
  };
  memory: { afterStart: ProcessMemory; afterSettle: ProcessMemory; afterLoad: ProcessMemory };
  /** `zone export` of the whole zone (absent in results from before it was measured). */
  export?: ExportRun;
  latency: {
    queriesPerSecond: number;
    existing: number;
    absent: number;
    passes: LatencyRun[];
  };
  notes: string[];
}

/**
 * The CSI that the start-up probe asks for: in the middle of the data set, one with a single
 * mapping (n % 3 = 0), whose answer fits in a UDP response. The DP caps UDP responses at 1,232
 * octets, so a CSI with three mappings is answered truncated (TC) over UDP.
 */
const probeIndex = (csis: number): number => {
  const middle = Math.floor(csis / 2);
  return middle - (middle % 3);
};

/** Measures the DP over the LMDB store in `dataDir` (see the module comment). */
export async function measureScale(dataDir: string, options: ScaleOptions): Promise<ScaleResult> {
  const log = options.log ?? (() => undefined);
  const startups = options.startups ?? 3;
  const qps = options.queriesPerSecond ?? 2000;
  const total = options.queries ?? 40_000;
  const existing = Math.min(options.csis, Math.round((total * 3) / 4));
  const absent = total - existing;
  const notes: string[] = [];
  const work = mkdtempSync(join(tmpdir(), 'mimi-scale-'));
  let dp: DpProcess | undefined;
  try {
    const store = storeSize(dataDir, options.csis);
    log(
      `store: ${(store.dataFileBytes / 2 ** 20).toFixed(0)} MiB long, ` +
        `${(store.dataDiskBytes / 2 ** 20).toFixed(0)} MiB on disk`,
    );
    const queryFile = join(work, 'queries.txt');
    writeFileSync(queryFile, queryNames(options.csis, existing, absent).join(''));
    const warmUpFile = join(work, 'warm-up.txt');
    const warmUp = Math.round(qps * WARM_UP_SECONDS);
    const warmUpExisting = Math.round((warmUp * existing) / total);
    writeFileSync(
      warmUpFile,
      queryNames(options.csis, warmUpExisting, warmUp - warmUpExisting, 0.5).join(''),
    );

    const runs: StartupRun[] = [];
    let afterStart: ProcessMemory | undefined;
    for (let i = 0; i < startups; i++) {
      const cold = options.dropCaches !== false && dropPageCache();
      const started = performance.now();
      dp = await startDp(dataDir);
      const readyMs = performance.now() - started;
      await firstAnswer(dp.port, nameOf(probeIndex(options.csis)));
      const firstAnswerMs = performance.now() - started;
      if (i === startups - 1) afterStart = processMemory(dp.pid);
      const cpuSecondsToSettle = await settle(dp.pid);
      const settledMs = performance.now() - started;
      runs.push({
        cache: cold ? 'cold' : 'warm',
        readyMs,
        firstAnswerMs,
        settledMs,
        cpuSecondsToSettle,
      });
      log(
        `start-up ${i + 1} (${cold ? 'cold' : 'warm'} cache): ready ${readyMs.toFixed(0)} ms, ` +
          `first answer ${firstAnswerMs.toFixed(0)} ms, idle after ${(settledMs / 1000).toFixed(1)} s ` +
          `(${cpuSecondsToSettle.toFixed(1)} CPU s)`,
      );
      if (i < startups - 1) {
        await dp.stop();
        dp = undefined;
      }
    }
    if (dp === undefined || afterStart === undefined) {
      throw new Error('startups must be at least 1');
    }
    const afterSettle = processMemory(dp.pid);
    const caches = new Set(runs.map((r) => r.cache));
    const cache = caches.size > 1 ? 'mixed' : runs[0]!.cache;
    if (options.dropCaches === false) {
      notes.push('Start-ups ran with a warm page cache: dropping it was not asked for.');
    } else if (cache !== 'cold') {
      notes.push('The page cache could not be dropped (needs root): start-ups ran warm.');
    }

    // Unrecorded: the first thousands of queries of a new process run partly unoptimised.
    await latencyRun(dp, warmUpFile, qps, warmUp, 'first');

    const passes: LatencyRun[] = [];
    for (const pass of ['first', 'second'] as const) {
      const run = await latencyRun(dp, queryFile, qps, total, pass);
      passes.push(run);
      log(
        `latency, ${pass} pass: p50 ${run.p50Ms.toFixed(3)} ms, p90 ${run.p90Ms.toFixed(3)} ms, ` +
          `p99 ${run.p99Ms.toFixed(3)} ms, max ${run.maxMs.toFixed(1)} ms, ` +
          `${run.answered} answered, ${run.lost} lost, load average ${run.loadAverage}`,
      );
    }
    const afterLoad = processMemory(dp.pid);
    await dp.stop();
    dp = undefined;
    log(
      `RSS ${(afterStart.vmRssKiB / 1024).toFixed(0)} MiB after start, ` +
        `${(afterLoad.vmRssKiB / 1024).toFixed(0)} MiB after the load ` +
        `(${(afterLoad.rssAnonKiB / 1024).toFixed(0)} MiB anonymous), ` +
        `peak ${(afterLoad.vmHwmKiB / 1024).toFixed(0)} MiB`,
    );
    let resignScanSeconds: number | undefined;
    if (options.resignScan !== false) {
      resignScanSeconds = await timeResignScan(dataDir);
      log(`resign walk over the whole store: ${resignScanSeconds.toFixed(1)} s`);
    }
    let exported: ExportRun | undefined;
    if (options.export !== false) {
      exported = await measureExport(dataDir, work);
      log(
        `zone export: ${exported.records.toLocaleString('en-US')} records, ` +
          `${(exported.octets / 2 ** 20).toFixed(0)} MiB in ${exported.seconds.toFixed(1)} s ` +
          `(${Math.round(exported.recordsPerSecond)} records/s), ` +
          `peak RSS ${(exported.peakRssKiB / 1024).toFixed(0)} MiB, ` +
          `of it anonymous at most ${(exported.peakRssAnonKiB / 1024).toFixed(0)} MiB`,
      );
    }
    return {
      date: new Date().toISOString().slice(0, 10),
      machine: machineFacts(),
      csis: options.csis,
      ...(options.manifest === undefined
        ? {}
        : {
            mappings: options.manifest.mappings,
            dataSetBuiltAt: options.manifest.builtAt,
            build: options.manifest.load,
          }),
      store,
      startup: {
        runs,
        medianReadyMs: median(runs.map((r) => r.readyMs)),
        medianFirstAnswerMs: median(runs.map((r) => r.firstAnswerMs)),
        medianSettledMs: median(runs.map((r) => r.settledMs)),
        cache,
        ...(resignScanSeconds === undefined ? {} : { resignScanSeconds }),
      },
      memory: { afterStart, afterSettle, afterLoad },
      ...(exported === undefined ? {} : { export: exported }),
      latency: { queriesPerSecond: qps, existing, absent, passes },
      notes,
    };
  } finally {
    await dp?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Seconds `store.resign(now)` takes over the store in `dataDir`, in this process: it walks every
 * node, decoding each, to find signatures that expire before `now`. A cached data set has none
 * (its RRSIGs last 180 days and it is rebuilt after 90), so the walk changes nothing.
 */
export async function timeResignScan(dataDir: string): Promise<number> {
  const store = await openLmdbStore({ dataDir, proverSeed: PROVER_SEED });
  try {
    const started = performance.now();
    const renewed = await store.resign(Math.floor(Date.now() / 1000));
    const seconds = (performance.now() - started) / 1000;
    if (renewed !== 0) throw new Error(`resign renewed ${renewed} expired RRsets in ${dataDir}`);
    return seconds;
  } finally {
    await store.close();
  }
}

/** The repository root (this file is bench/lib/scale.ts). */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Interval of the memory samples of the export process. */
const EXPORT_SAMPLE_MS = 100;

/**
 * Preloaded into the export process: at exit, its peak RSS and CPU time (`resourceUsage`) as
 * JSON on fd 3.
 */
const EXIT_REPORT = `import { writeSync } from 'node:fs';
process.on('exit', () => {
  const u = process.resourceUsage();
  writeSync(3, JSON.stringify({ maxRssKiB: u.maxRSS, cpuMicros: u.userCPUTime + u.systemCPUTime }));
});
`;

/**
 * Runs `mimi-discovery zone export --no-nsec3` over the LMDB store in `dataDir` (a data set's
 * `store` directory) and measures it (see the module comment, step 5). `work` is a scratch
 * directory for its config.
 */
export async function measureExport(dataDir: string, work: string): Promise<ExportRun> {
  if (storeDirectory(dirname(dataDir)) !== dataDir) {
    throw new Error(`${dataDir} is not the store directory of a data directory`);
  }
  const config = join(work, 'export-config.json');
  writeFileSync(
    config,
    JSON.stringify({
      role: 'dp',
      dataDir: dirname(dataDir),
      listen: { host: '127.0.0.1', udp: 0, tcp: null, doh: null, api: null, admin: null },
      registration: { channels: { outbox: { path: join(work, 'outbox.jsonl') } } },
    }),
  );
  const preload = join(work, 'exit-report.mjs');
  writeFileSync(preload, EXIT_REPORT);
  const bin = join(ROOT, 'packages', 'cli', 'bin', 'mimi-discovery.js');
  const args = [
    '--import',
    preload,
    bin,
    'zone',
    'export',
    '--config',
    config,
    '--zone',
    ORIGIN,
    '--no-nsec3',
    '--no-progress',
  ];
  const started = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  let records = 0;
  let octets = 0;
  child.stdout!.on('data', (chunk: Buffer) => {
    octets += chunk.length;
    for (let at = chunk.indexOf(10); at >= 0; at = chunk.indexOf(10, at + 1)) records++;
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let report = '';
  (child.stdio[3] as NodeJS.ReadableStream).on('data', (chunk: Buffer) => (report += chunk));
  let peakAnon = 0;
  let peakFile = 0;
  const sample = setInterval(() => {
    try {
      const memory = processMemory(child.pid ?? 0);
      peakAnon = Math.max(peakAnon, memory.rssAnonKiB);
      peakFile = Math.max(peakFile, memory.rssFileKiB);
    } catch {
      // Gone between two samples: the exit report has the rest.
    }
  }, EXPORT_SAMPLE_MS);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  }).finally(() => clearInterval(sample));
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`zone export exited ${code}: ${stderr}`);
  const exit = JSON.parse(report) as { maxRssKiB: number; cpuMicros: number };
  return {
    command: `node ${args
      .map((a) => (a.startsWith(work) ? `<tmp>${a.slice(work.length)}` : a))
      .map((a) => (a.startsWith('/') ? relative(ROOT, a) : a))
      .join(' ')}`,
    records,
    octets,
    seconds,
    recordsPerSecond: records / seconds,
    cpuSeconds: exit.cpuMicros / 1e6,
    peakRssAnonKiB: peakAnon,
    peakRssFileKiB: peakFile,
    peakRssKiB: exit.maxRssKiB,
  };
}

function storeSize(dataDir: string, csis: number): ScaleResult['store'] {
  const stat = statSync(join(dataDir, 'data.mdb'));
  const disk = stat.blocks * 512;
  return { dataDir, dataFileBytes: stat.size, dataDiskBytes: disk, bytesPerCsi: disk / csis };
}

/**
 * `existing` CSIs evenly spread over 0 … csis - 1 and `absent` ones spread the same way, as
 * dnsperf lines (`<name> TYPE65400`), shuffled with a fixed seed. An absent CSI is an existing
 * number with one more digit: its name is one label below an existing CSI's, so it sorts among
 * the data rather than after it. `offset` (0 ≤ offset < 1) shifts every pick by that fraction
 * of the spacing, so that two offsets give disjoint names.
 */
export function queryNames(csis: number, existing: number, absent: number, offset = 0): string[] {
  const spread = (count: number, at: number): number[] =>
    Array.from({ length: count }, (_, i) => Math.floor(((i + at) * csis) / count));
  const lines = [
    ...spread(existing, offset).map((n) => `${nameOf(n)} TYPE65400\n`),
    ...spread(absent, (offset + 0.5) % 1).map((n, i) => `${i % 10}.${nameOf(n)} TYPE65400\n`),
  ];
  let state = 42;
  for (let i = lines.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const j = state % (i + 1);
    [lines[i], lines[j]] = [lines[j]!, lines[i]!];
  }
  return lines;
}

/**
 * Drops the page cache (root only), so that a start-up reads the store from disk. Returns
 * whether it did.
 */
function dropPageCache(): boolean {
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

/** Asks `name MAP` until answered (the DP listens before it reports ready, so once). */
async function firstAnswer(port: number, name: string): Promise<void> {
  const deadline = performance.now() + 60_000;
  for (;;) {
    try {
      const response = await queryUdp(
        { host: '127.0.0.1', port },
        // As dnsperf's EDNS buffer: a MAP RRset of three mappings and its RRSIG exceed 1,232.
        buildQuery(name, 'MAP', { dnssecOk: true, udpPayloadSize: 4096 }),
        { timeoutMs: 2000, tcpFallback: false },
      );
      if (response.rcode !== 'NOERROR' || response.flags.tc || response.answers.length === 0) {
        throw new Error(`the probe for ${name} was answered ${response.rcode} without a MAP`);
      }
      return;
    } catch (error) {
      if (performance.now() > deadline) throw error;
    }
  }
}

/**
 * Waits until the process tree of `pid` is idle (see {@link IDLE_CPU_FRACTION}) and returns the
 * CPU seconds it had used by then. Bounded by {@link SETTLE_TIMEOUT_MS}.
 */
async function settle(pid: number): Promise<number> {
  const deadline = performance.now() + SETTLE_TIMEOUT_MS;
  let quiet = 0;
  let cpu = treeCpuSeconds(pid);
  while (quiet < IDLE_SECONDS) {
    if (performance.now() > deadline) {
      throw new Error(
        `the DP (pid ${pid}) was still busy ${SETTLE_TIMEOUT_MS / 60_000} min after start`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const now = treeCpuSeconds(pid);
    quiet = now - cpu < IDLE_CPU_FRACTION ? quiet + 1 : 0;
    cpu = now;
  }
  return cpu;
}

function processMemory(pid: number): ProcessMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    if (match?.[1] === undefined) throw new Error(`/proc/${pid}/status lacks ${name}`);
    return Number(match[1]);
  };
  return {
    vmRssKiB: field('VmRSS'),
    rssAnonKiB: field('RssAnon'),
    rssFileKiB: field('RssFile'),
    vmHwmKiB: field('VmHWM'),
  };
}

/**
 * One dnsperf pass over `queryFile` at `qps` with `-v`, bounded by `-n 1` and `-l` (the names
 * at the rate, plus 10 s). `-v` prints a line per response, `> NOERROR <name> <type> <seconds>`,
 * and `> T …` for a query that timed out; they are parsed as they stream, so memory holds one
 * number per query.
 */
async function latencyRun(
  dp: DpProcess,
  queryFile: string,
  qps: number,
  queries: number,
  pass: LatencyRun['pass'],
): Promise<LatencyRun> {
  const seconds = Math.ceil(queries / qps) + 10;
  const args = [
    '-s',
    '127.0.0.1',
    '-p',
    String(dp.port),
    '-d',
    queryFile,
    '-D',
    '-n',
    '1',
    '-l',
    String(seconds),
    '-Q',
    String(qps),
    '-c',
    '4',
    '-T',
    '1',
    '-q',
    '100',
    '-t',
    '2',
    '-v',
  ];
  const cpuBefore = treeCpuSeconds(dp.pid);
  const latencies: number[] = [];
  const rcodes: Record<string, number> = {};
  let lost = 0;
  let summary = '';
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('dnsperf', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (!line.startsWith('> ')) {
        summary += `${line}\n`;
        return;
      }
      const fields = line.split(' ');
      const status = fields[1] ?? '';
      if (status === 'T') {
        lost += 1;
        return;
      }
      rcodes[status] = (rcodes[status] ?? 0) + 1;
      latencies.push(Number(fields[fields.length - 1]) * 1000);
    });
    child.stderr.on('data', (d: Buffer) => (summary += d.toString()));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`dnsperf exited ${code}:\n${summary}`)),
    );
  });
  const wall = (performance.now() - started) / 1000;
  const cpu = treeCpuSeconds(dp.pid) - cpuBefore;
  const sent = Number(/Queries sent:\s+(\d+)/.exec(summary)?.[1] ?? NaN);
  const runTime = Number(/Run time \(s\):\s+([\d.]+)/.exec(summary)?.[1] ?? wall);
  latencies.sort((a, b) => a - b);
  const rank = (p: number): number => percentile(latencies, p);
  return {
    pass,
    dnsperf: `dnsperf ${args.join(' ')}`,
    queriesSent: sent,
    answered: latencies.length,
    lost,
    rcodes,
    queriesPerSecond: latencies.length / runTime,
    meanMs: latencies.reduce((s, x) => s + x, 0) / latencies.length,
    p50Ms: rank(0.5),
    p90Ms: rank(0.9),
    p99Ms: rank(0.99),
    p999Ms: rank(0.999),
    maxMs: latencies[latencies.length - 1] ?? NaN,
    cpuMicrosecondsPerQuery: (cpu / latencies.length) * 1e6,
    loadAverage: loadavg()[0] ?? NaN,
  };
}
