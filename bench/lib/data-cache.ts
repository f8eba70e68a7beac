import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openLmdbStore } from '@mimi-discovery/authoritative';
import {
  MAPPING_LIFETIME_SECONDS,
  ORIGIN,
  PROVER_SEED,
  ZONE_INIT,
  loadDataSet,
  type LoadResult,
} from './dataset.js';

/**
 * A data set built once and reused across benchmark runs: building 10,000,000 CSIs takes the
 * better part of an hour, reading it takes a moment.
 *
 * Layout of the cache directory (default `$MIMI_BENCH_DATA`, else `<repo>/.bench-data/`):
 *
 *   csis-<N>/manifest.json        what was built, when, with which parameters
 *   csis-<N>/store/               the LMDB environment (data.mdb, lock.mdb)
 *   csis-<N>.lock                 held (pid inside) while a build runs
 *   .building-csis-<N>-<pid>/     a build in progress; renamed to csis-<N> when complete
 *
 * A build writes into `.building-…` and renames it into place only after the store is closed
 * and the manifest written, so an interrupted build is never taken for a data set; the next
 * build removes its leftovers. A data set is rebuilt when its manifest is missing or records
 * other parameters (count, {@link DATA_SET_VERSION}), when its store does not open, or when it
 * is older than {@link MAX_AGE_DAYS}: its mappings expire after 180 days, and a benchmark should
 * serve data that is valid.
 */

/**
 * Changes whenever the data set changes shape (dataset-sign.mjs, dataset.ts or the store options
 * below), so that an old cache is rebuilt rather than measured as if it were the new one.
 */
export const DATA_SET_VERSION =
  'mimi-bench-data/2: 48 keys, 1-3 MAP per CSI (Mapping v2, no CSI in RDATA), RRSIG 180 d';

/** A data set older than this is rebuilt, half the mappings' lifetime. */
export const MAX_AGE_DAYS = 90;

/**
 * RRSIG lifetime in a cached store. The store's default (14 days) would leave a data set reused
 * for up to 90 days serving expired signatures; 180 days matches the mappings'. The DP under test
 * never re-signs (dp-server.ts does not run `resign`), so this only sets the stored expiration.
 */
const SIGNATURE_VALIDITY_SECONDS = MAPPING_LIFETIME_SECONDS;

/**
 * Bytes of disk per CSI a build needs at most, from the 100,000 CSI build (about 1.1 KiB per CSI
 * stored, LMDB pages included) with margin: a build that cannot fit fails before it starts.
 */
const BYTES_PER_CSI_ESTIMATE = 1600;

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What a cached data set was built with; `csis-<N>/manifest.json`. */
export interface DataSetManifest {
  version: string;
  origin: string;
  csis: number;
  mappings: number;
  /** When the build finished (ISO 8601). */
  builtAt: string;
  /** The mappings' clock (seconds since the epoch): their `iat` is 60 s before it. */
  mappingTime: number;
  signatureValiditySeconds: number;
  /** The build's timings, as `loadDataSet` reported them. */
  load: LoadResult;
}

/** A ready data set. */
export interface CachedDataSet {
  /** The LMDB store's directory, for `openLmdbStore` or the DP. */
  dataDir: string;
  manifest: DataSetManifest;
  /** Whether this call built it (false: reused). */
  built: boolean;
  /** Why it was built, when it was: `missing`, `version`, `age`, `unreadable`, `forced`. */
  reason?: string;
}

/** Options of {@link cachedDataSet}. */
export interface DataCacheOptions {
  /** Default {@link defaultCacheDir}. */
  cacheDir?: string;
  /** Build anew even when a valid data set exists. */
  rebuild?: boolean;
  /** Signing worker threads (see `loadDataSet`). */
  workers?: number;
  /** Called after each applied batch during a build. */
  progress?: (done: number, count: number) => void;
  /** Clock in milliseconds since the epoch; default `Date.now`. */
  now?: () => number;
}

/** `$MIMI_BENCH_DATA`, else `.bench-data/` at the repository root. */
export function defaultCacheDir(): string {
  const fromEnv = process.env.MIMI_BENCH_DATA;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(REPO_ROOT, '.bench-data');
}

/**
 * The data set of `csis` CSIs, built first when missing, stale or different (see the module
 * comment). Rejects when another process is building the same data set.
 */
export async function cachedDataSet(
  csis: number,
  options: DataCacheOptions = {},
): Promise<CachedDataSet> {
  if (!Number.isSafeInteger(csis) || csis < 1) throw new Error(`csis must be ≥ 1, not ${csis}`);
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const now = options.now ?? Date.now;
  const dir = join(cacheDir, `csis-${csis}`);
  const dataDir = join(dir, 'store');
  if (options.rebuild !== true) {
    const current = await check(dir, csis, now());
    if (current.kind === 'valid') return { dataDir, manifest: current.manifest, built: false };
    return build(cacheDir, csis, options, now, current.reason);
  }
  return build(cacheDir, csis, options, now, 'forced');
}

type Check = { kind: 'valid'; manifest: DataSetManifest } | { kind: 'stale'; reason: string };

async function check(dir: string, csis: number, nowMs: number): Promise<Check> {
  const path = join(dir, 'manifest.json');
  if (!existsSync(path)) return { kind: 'stale', reason: 'missing' };
  let manifest: DataSetManifest;
  try {
    manifest = JSON.parse(readFileSync(path, 'utf8')) as DataSetManifest;
  } catch {
    return { kind: 'stale', reason: 'unreadable' };
  }
  if (manifest.version !== DATA_SET_VERSION || manifest.csis !== csis) {
    return { kind: 'stale', reason: 'version' };
  }
  const age = nowMs - Date.parse(manifest.builtAt);
  if (!(age >= 0 && age <= MAX_AGE_DAYS * 86_400_000)) return { kind: 'stale', reason: 'age' };
  // The store's own layout version is checked by opening it (ERR_STORE_CORRUPT otherwise);
  // opening maps the file and reads a few pages, whatever the data set's size.
  try {
    const store = await openLmdbStore({ dataDir: join(dir, 'store'), proverSeed: PROVER_SEED });
    const zone = store.zoneInfo(ORIGIN);
    await store.close();
    if (zone === undefined) return { kind: 'stale', reason: 'unreadable' };
  } catch {
    return { kind: 'stale', reason: 'unreadable' };
  }
  return { kind: 'valid', manifest };
}

async function build(
  cacheDir: string,
  csis: number,
  options: DataCacheOptions,
  now: () => number,
  reason: string,
): Promise<CachedDataSet> {
  mkdirSync(cacheDir, { recursive: true });
  const name = `csis-${csis}`;
  const release = lock(join(cacheDir, `${name}.lock`));
  try {
    removeLeftovers(cacheDir, name);
    const free = statfsSync(cacheDir);
    const need = csis * BYTES_PER_CSI_ESTIMATE;
    if (free.bavail * free.bsize < need) {
      throw new Error(
        `building ${csis} CSIs needs about ${gib(need)} GiB in ${cacheDir}; ` +
          `${gib(free.bavail * free.bsize)} GiB are free`,
      );
    }
    const building = join(cacheDir, `.building-${name}-${process.pid}`);
    rmSync(building, { recursive: true, force: true });
    const mappingTime = Math.floor(now() / 1000);
    const store = await openLmdbStore({
      dataDir: join(building, 'store'),
      proverSeed: PROVER_SEED,
      signatureValidity: { validitySeconds: SIGNATURE_VALIDITY_SECONDS },
      now: () => Math.floor(now() / 1000),
    });
    let load: LoadResult;
    try {
      await store.addZone(ZONE_INIT);
      load = await loadDataSet(
        store,
        csis,
        (done) => options.progress?.(done, csis),
        options.workers === undefined
          ? { now: mappingTime }
          : { now: mappingTime, workers: options.workers },
      );
    } finally {
      await store.close();
    }
    const manifest: DataSetManifest = {
      version: DATA_SET_VERSION,
      origin: ORIGIN,
      csis,
      mappings: load.mappings,
      builtAt: new Date(now()).toISOString(),
      mappingTime,
      signatureValiditySeconds: SIGNATURE_VALIDITY_SECONDS,
      load,
    };
    writeDurably(join(building, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const dir = join(cacheDir, name);
    const old = join(cacheDir, `.stale-${name}-${process.pid}`);
    if (existsSync(dir)) renameSync(dir, old);
    renameSync(building, dir);
    rmSync(old, { recursive: true, force: true });
    return { dataDir: join(dir, 'store'), manifest, built: true, reason };
  } finally {
    release();
  }
}

/**
 * Copies the store of a cached data set into `targetDir` (created), for a benchmark that writes
 * to it (run.ts's registration step publishes new CSIs): the cached copy stays as built. Only
 * `data.mdb` is copied; LMDB makes a new lock file. `copyFileSync` copies inside the kernel
 * (copy_file_range), about a minute for 10,000,000 CSIs on a virtual disk.
 */
export function copyDataSet(dataDir: string, targetDir: string): void {
  mkdirSync(targetDir, { recursive: true, mode: 0o700 });
  copyFileSync(join(dataDir, 'data.mdb'), join(targetDir, 'data.mdb'));
}

/**
 * Takes the lock file `path` (O_EXCL, our pid inside), taking over one whose process is gone.
 * Returns its release.
 */
function lock(path: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(readFileSync(path, 'utf8').trim());
      if (alive(holder)) {
        throw new Error(`process ${holder} is building this data set (${path})`);
      }
      rmSync(path, { force: true });
    }
  }
  throw new Error(`cannot take the lock ${path}`);
}

function alive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes half-built and replaced copies of `name` left by processes that are gone. */
function removeLeftovers(cacheDir: string, name: string): void {
  for (const entry of readdirSync(cacheDir)) {
    const match = /^\.(?:building|stale)-(.+)-(\d+)$/.exec(entry);
    if (match?.[1] === name && !alive(Number(match[2]))) {
      rmSync(join(cacheDir, entry), { recursive: true, force: true });
    }
  }
}

function writeDurably(path: string, text: string): void {
  const fd = openSync(path, 'w');
  try {
    writeFileSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function gib(bytes: number): string {
  return (bytes / 2 ** 30).toFixed(1);
}
