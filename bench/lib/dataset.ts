import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { DiscoveryStore, RRsetChange } from '@mimi-discovery/authoritative';
import { record } from '@mimi-discovery/common';
import { mappingsOf, type SignedRange } from './dataset-sign.mjs';

export {
  PROVER_SEED,
  MAPPING_LIFETIME_SECONDS,
  csiOf,
  nameOf,
  signedMapping,
} from './dataset-sign.mjs';

/** The zone every benchmark serves. */
export const ORIGIN = '4.4.e164.mimi.arpa';

/** Changes per `store.apply` while loading (the store's limit is 1024). */
const LOAD_BATCH = 1000;

/**
 * CSIs per worker task, several batches: each task imports the 48 recipient keys once (see
 * `signRange`), so a longer range spreads that cost thinner.
 */
const SIGN_RANGE = 4 * LOAD_BATCH;

/**
 * Ranges a worker holds at once: while it signs one, the next waits in its queue, so it never
 * idles for a round trip through the busy main thread.
 */
const RANGES_PER_WORKER = 2;

/**
 * Signed ranges waiting to be applied, at most, per worker: when `store.apply` is the slower
 * side, workers pause instead of filling memory.
 */
const BUFFERED_PER_WORKER = 3;

export const ZONE_INIT = {
  origin: ORIGIN,
  nameservers: [`ns1.${ORIGIN}`],
  mname: `ns1.${ORIGIN}`,
  rname: `hostmaster.${ORIGIN}`,
};

/** Options of {@link loadDataSet}. */
export interface LoadOptions {
  /** Signing worker threads; default `os.availableParallelism()`. */
  workers?: number;
  /** The mappings' clock (seconds since the epoch); default now. Fixed only to compare builds. */
  now?: number;
}

export interface LoadResult {
  csis: number;
  mappings: number;
  /**
   * Seconds the workers spent creating signed mappings, summed over workers: the CPU-phase time
   * the same work takes on one thread (wall time inside the workers; on a busy machine that
   * includes time the thread waited for a core).
   */
  signSeconds: number;
  /**
   * Seconds the main thread spent in `store.apply` (planning, RRSIG signing, commit and flush),
   * summed over batches; applies run one at a time, so this is also their wall time.
   */
  applySeconds: number;
  /** Wall time of the whole load, workers starting included. */
  wallSeconds: number;
  /** Signing worker threads used. */
  workers: number;
}

interface Signed extends SignedRange {
  busyMs: number;
}

type WorkerReply = ({ id: number } & Signed) | { id: number; error: string };

/**
 * Writes `count` CSIs with 1–3 signed mappings each (by distinct recipient keys) into the zone,
 * in batches of {@link LOAD_BATCH} changes per apply, in CSI order.
 *
 * Pipeline: `options.workers` threads (dataset-worker.mjs) sign the mappings of one range of
 * {@link SIGN_RANGE} CSIs each, while the main thread applies the batches in order:
 * `store.apply` makes the RRSIGs and commits, and has to run where the store is. Creating the
 * mappings costs about three times the CPU that applying them does, so on two cores the workers
 * and the main thread share the CPUs. The data set is the same, byte for byte, as one built on
 * one thread in CSI order (Ed25519 signatures are deterministic, RFC 8032 §5.1.6).
 */
export async function loadDataSet(
  store: DiscoveryStore,
  count: number,
  progress: (done: number) => void,
  options: LoadOptions = {},
): Promise<LoadResult> {
  const started = performance.now();
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const ranges = Math.ceil(count / SIGN_RANGE);
  const threads = Math.max(1, Math.min(options.workers ?? availableParallelism(), ranges));
  const workers = Array.from(
    { length: threads },
    () => new Worker(new URL('./dataset-worker.mjs', import.meta.url)),
  );
  const inFlight = workers.map(() => 0);
  const done = new Map<number, Signed>();
  const waiting = new Map<number, { resolve: (s: Signed) => void; reject: (e: Error) => void }>();
  let failure: Error | undefined;
  let nextToSign = 0;
  let nextToApply = 0;

  const fail = (error: Error): void => {
    failure ??= error;
    for (const w of waiting.values()) w.reject(failure);
    waiting.clear();
  };
  const dispatch = (): void => {
    for (let w = 0; w < workers.length; w++) {
      while (
        failure === undefined &&
        inFlight[w]! < RANGES_PER_WORKER &&
        nextToSign < ranges &&
        nextToSign < nextToApply + BUFFERED_PER_WORKER * workers.length
      ) {
        const id = nextToSign++;
        const start = id * SIGN_RANGE;
        inFlight[w]! += 1;
        workers[w]!.postMessage({ id, start, end: Math.min(count, start + SIGN_RANGE), now });
      }
    }
  };
  workers.forEach((worker, w) => {
    worker.on('message', (reply: WorkerReply) => {
      inFlight[w]! -= 1;
      if ('error' in reply) {
        fail(new Error(`signing CSIs from ${reply.id * SIGN_RANGE} failed: ${reply.error}`));
        return;
      }
      const waiter = waiting.get(reply.id);
      if (waiter === undefined) done.set(reply.id, reply);
      else {
        waiting.delete(reply.id);
        waiter.resolve(reply);
      }
      dispatch();
    });
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (nextToApply < ranges) fail(new Error(`a signing worker exited (${code})`));
    });
  });
  const signed = (id: number): Promise<Signed> => {
    if (failure !== undefined) return Promise.reject(failure);
    const ready = done.get(id);
    if (ready !== undefined) {
      done.delete(id);
      return Promise.resolve(ready);
    }
    return new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
  };

  let mappings = 0;
  let signMs = 0;
  let applyMs = 0;
  try {
    dispatch();
    for (; nextToApply < ranges; nextToApply++) {
      const range = await signed(nextToApply);
      signMs += range.busyMs;
      const first = nextToApply * SIGN_RANGE;
      const last = Math.min(count, first + SIGN_RANGE);
      let i = 0;
      for (let start = first; start < last; start += LOAD_BATCH) {
        const end = Math.min(last, start + LOAD_BATCH);
        const changes: RRsetChange[] = [];
        for (let n = start; n < end; n++) {
          const name = range.names[n - first]!;
          const records = Array.from({ length: mappingsOf(n) }, () => {
            const rdata = range.bytes.subarray(range.offsets[i]!, range.offsets[i + 1]!);
            i += 1;
            return record(name, 'MAP', rdata, 300);
          });
          mappings += records.length;
          changes.push({ op: 'put', name, type: 'MAP', records });
        }
        const t0 = performance.now();
        await store.apply(ORIGIN, changes);
        applyMs += performance.now() - t0;
        progress(end);
      }
    }
  } finally {
    nextToApply = ranges;
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return {
    csis: count,
    mappings,
    signSeconds: signMs / 1000,
    applySeconds: applyMs / 1000,
    wallSeconds: (performance.now() - started) / 1000,
    workers: threads,
  };
}
