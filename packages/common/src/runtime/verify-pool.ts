import { availableParallelism } from 'node:os';
import { setImmediate as onNextTurn } from 'node:timers';
import { Worker } from 'node:worker_threads';
import {
  ED25519_PUBLIC_KEY_OCTETS,
  ED25519_SIGNATURE_OCTETS,
  MAX_CACHED_VERIFY_KEYS,
  nativeEd25519,
  passesEd25519Checks,
  verify,
} from '../protocol/ed25519.js';
import { silentLogger, type Logger } from './log.js';

/**
 * Ed25519 verification on worker threads (`node:worker_threads`), so that a resolver's
 * validation uses every core while its event loop keeps parsing, caching and answering.
 *
 * Worked example: a contact sync has 32 discoveries in flight; in one turn of the event loop
 * their validators ask for 40 verifications (`verifyBatch` or `verify`). They wait in a queue
 * until the end of that turn, then go out as one message per worker (the signatures, keys and
 * signed octets packed in one transferred buffer), and come back as one octet per job. A message
 * costs about as much as one verification (~70 µs), so it is batches that make threads pay.
 *
 * What stays on the calling thread:
 * - the cheap strict checks of `ed25519.ts` (lengths, S < L, canonical key not of small order):
 *   a job that fails them is false at once and never sent; the worker runs only `node:crypto`'s
 *   equation, so the result is the native backend's `verify` exactly;
 * - a queue holding no more than {@link MIN_JOBS_FOR_THREADS} jobs while no batch is out: a
 *   lone verification is cheaper here than a round trip (a single lookup keeps its latency);
 * - every job until the first worker is ready: the workers start on first use, in the
 *   background, and nothing waits for them (a one-shot lookup pays no thread start-up);
 * - everything when the pool cannot start (no native Ed25519, or no worker comes up): one
 *   warning, then the calling thread verifies, as with `threads: 0`.
 *
 * Trust: a worker's answer counts only for the batch it was sent and only as one octet per job,
 * in order; the job's bytes were copied into the message when it left, so the answer is about
 * exactly those bytes. An answer of the wrong shape, a worker that fails or exits with jobs out,
 * or one with work out that has answered nothing for {@link WORKER_ANSWER_TIMEOUT_MS} (checked
 * after the answers already delivered are read, so a blocked event loop or a backlog of batches
 * does not fail a working worker): those jobs are never taken as verified; each is verified once
 * more on the calling thread, the worker is replaced (at most {@link MAX_WORKER_REPLACEMENTS} times over the pool's life, then
 * the calling thread verifies everything, with a warning).
 */

/** Most verification threads a pool runs, whatever the config asks. */
export const MAX_VERIFY_THREADS = 16;
/** Most jobs in one message to a worker; a fuller queue goes out at once, not at the turn's end. */
export const MAX_JOBS_PER_BATCH = 256;
/**
 * A queue of at most this many jobs, while no batch is out on a worker, is verified on the
 * calling thread: one verification costs about what a message round trip to a worker does.
 */
export const MIN_JOBS_FOR_THREADS = 1;
/** Workers replaced after a failure over the pool's life before it gives up its threads. */
export const MAX_WORKER_REPLACEMENTS = 8;
/**
 * Milliseconds a worker with work out may go without answering (256 verifications take about
 * 20 ms of CPU); a worker silent for longer is taken as failed: its jobs are verified on the
 * calling thread. Also how long the first worker has to say ready before threads are given up.
 */
export const WORKER_ANSWER_TIMEOUT_MS = 5_000;

/** One signature to check: the signature, the octets it signs and the public key. */
export interface SignatureCheck {
  readonly signature: Uint8Array;
  readonly message: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** An asynchronous Ed25519 verifier: the pool's face to validators. */
export interface Verifier {
  /** Whether each check verifies (strict, as `verify`); result i is check i's. Never rejects. */
  verifyBatch(checks: readonly SignatureCheck[]): Promise<boolean[]>;
  /** One check; never rejects. */
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): Promise<boolean>;
}

/** Counts of a pool's work, for stats and tests. */
export interface VerifyPoolStats {
  /** Threads the pool runs now (0 when it verifies on the calling thread). */
  readonly threads: number;
  /** Jobs answered by a worker. */
  readonly onThreads: number;
  /** Jobs verified on the calling thread (short queues, fallback, retries). */
  readonly onCallingThread: number;
  /** Jobs verified on the calling thread again because their worker failed. */
  readonly retried: number;
  /** Workers replaced after a failure. */
  readonly replacedWorkers: number;
}

/** A pool of verification threads; {@link Verifier} plus its lifecycle. */
export interface VerifyPool extends Verifier {
  /** The threads asked for, after the bound (0: every job on the calling thread). */
  readonly threads: number;
  stats(): VerifyPoolStats;
  /**
   * Starts the workers if they are not running, and settles once one of them is ready (true) or
   * the pool verifies on the calling thread for good (false). Jobs never wait for it: until a
   * worker is ready, they are verified on the calling thread.
   */
  ready(): Promise<boolean>;
  /** Stops the workers; jobs still out are verified on the calling thread. */
  close(): Promise<void>;
}

/** What {@link createVerifyPool} takes. */
export interface VerifyPoolInit {
  /** Worker threads; 0 verifies on the calling thread; bounded by {@link MAX_VERIFY_THREADS}. */
  readonly threads: number;
  /** Queue length verified on the calling thread while no batch is out (default {@link MIN_JOBS_FOR_THREADS}). */
  readonly minJobsForThreads?: number;
  /** How long a worker has to answer a batch (default {@link WORKER_ANSWER_TIMEOUT_MS}). */
  readonly answerTimeoutMs?: number;
}

/** What a pool is made with beyond its settings. */
export interface VerifyPoolComponents {
  readonly log?: Logger;
  /** Starts one worker; default the pool's own code. Tests pass a failing one. */
  readonly spawn?: () => Worker;
}

/**
 * The threads `"auto"` means: one fewer than the cores (at least 1), bounded by
 * {@link MAX_VERIFY_THREADS}. The event loop's thread keeps a core of its own: in a cold contact
 * sync it spends more time parsing responses and building results than the workers spend
 * verifying, and a worker on its core would slow it as much as it helps.
 */
export function autoVerifyThreads(cores: number = availableParallelism()): number {
  return Math.min(MAX_VERIFY_THREADS, Math.max(1, cores - 1));
}

/**
 * The worker's code, run with `eval` so that the pool works the same from the built packages,
 * from TypeScript sources under vite-node and in vitest, with no file to resolve. It reads a
 * batch `u32 count, then per job: u32 message length, 64-octet signature, 32-octet key,
 * message` and answers one octet per job, 1 when `node:crypto` verifies it. Imported keys are
 * kept as the native backend keeps them (least recently used out past the bound). Before any
 * batch it checks RFC 8032 §7.1 TEST 1 on its own thread and says `{ ready }` with the outcome.
 */
/** RFC 8032 §7.1 TEST 1: the public key, and its signature of the empty message. */
const KNOWN_ANSWER_KEY = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const KNOWN_ANSWER_SIGNATURE =
  'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const crypto = require('node:crypto');
const MAX_KEYS = ${MAX_CACHED_VERIFY_KEYS};
const keys = new Map();
function keyOf(raw) {
  const x = Buffer.from(raw).toString('base64url');
  let key = keys.get(x);
  if (key !== undefined) { keys.delete(x); keys.set(x, key); return key; }
  key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
  if (keys.size >= MAX_KEYS) keys.delete(keys.keys().next().value);
  keys.set(x, key);
  return key;
}
// RFC 8032 §7.1 TEST 1 on this thread first: the pool counts on a worker once it said ready.
const test = (signature) => {
  try {
    return crypto.verify(null, new Uint8Array(0), keyOf(Buffer.from('${KNOWN_ANSWER_KEY}', 'hex')), Buffer.from(signature, 'hex'));
  } catch {
    return false;
  }
};
const good = '${KNOWN_ANSWER_SIGNATURE}';
const bad = (good[0] === '0' ? '1' : '0') + good.slice(1);
parentPort.postMessage({ ready: test(good) && !test(bad) });
parentPort.on('message', (m) => {
  const bytes = new Uint8Array(m.buffer);
  const view = new DataView(m.buffer);
  const count = view.getUint32(0);
  const results = new Uint8Array(count);
  let at = 4;
  for (let i = 0; i < count; i++) {
    const length = view.getUint32(at);
    const signature = bytes.subarray(at + 4, at + 68);
    const publicKey = bytes.subarray(at + 68, at + 100);
    const message = bytes.subarray(at + 100, at + 100 + length);
    at += 100 + length;
    try {
      results[i] = crypto.verify(null, message, keyOf(publicKey), signature) ? 1 : 0;
    } catch {
      results[i] = 0;
    }
  }
  parentPort.postMessage({ id: m.id, results }, [results.buffer]);
});
`;

/** Starts one worker of the pool's own code ({@link WORKER_SOURCE}). */
export function spawnVerifyWorker(): Worker {
  return new Worker(WORKER_SOURCE, { eval: true });
}

const JOB_HEADER_OCTETS = 4 + ED25519_SIGNATURE_OCTETS + ED25519_PUBLIC_KEY_OCTETS;

interface Job {
  readonly check: SignatureCheck;
  readonly resolve: (valid: boolean) => void;
}

interface Slot {
  readonly worker: Worker;
  /** Batches sent and not answered, by id. */
  readonly out: Map<number, readonly Job[]>;
  /** The answer deadline of each batch out, by id. */
  readonly timers: Map<number, NodeJS.Timeout>;
  outJobs: number;
  /**
   * When the worker last showed progress (`performance.now()`): its last answer, or the send
   * that gave an idle worker work. A batch waiting behind others is late only when the worker
   * itself has been silent for the answer timeout.
   */
  progressAt: number;
  /** Set once the worker has failed or was stopped: its answers no longer count. */
  gone: boolean;
}

/** Packs jobs into one buffer in the worker's layout (see {@link WORKER_SOURCE}). */
function pack(jobs: readonly Job[]): ArrayBuffer {
  let size = 4;
  for (const job of jobs) size += JOB_HEADER_OCTETS + job.check.message.length;
  const buffer = new ArrayBuffer(size);
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  view.setUint32(0, jobs.length);
  let at = 4;
  for (const { check } of jobs) {
    view.setUint32(at, check.message.length);
    bytes.set(check.signature, at + 4);
    bytes.set(check.publicKey, at + 4 + ED25519_SIGNATURE_OCTETS);
    bytes.set(check.message, at + JOB_HEADER_OCTETS);
    at += JOB_HEADER_OCTETS + check.message.length;
  }
  return buffer;
}

/** A worker's answer to a batch of `count` jobs: `{ id, results }`, one octet per job. */
function answerOf(value: unknown, count: number): Uint8Array | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const results = (value as { results?: unknown }).results;
  return results instanceof Uint8Array && results.length === count ? results : undefined;
}

/**
 * Creates a verification pool of `init.threads` workers (see the module comment), started on
 * first use. `threads: 0`, or a runtime without native Ed25519, verifies on the calling thread.
 */
export function createVerifyPool(
  init: VerifyPoolInit,
  components: VerifyPoolComponents = {},
): VerifyPool {
  const threads = Math.max(0, Math.min(MAX_VERIFY_THREADS, Math.floor(init.threads)));
  const minJobs = init.minJobsForThreads ?? MIN_JOBS_FOR_THREADS;
  const answerTimeoutMs = init.answerTimeoutMs ?? WORKER_ANSWER_TIMEOUT_MS;
  const log = components.log ?? silentLogger;
  const spawn = components.spawn ?? spawnVerifyWorker;
  const slots: Slot[] = [];
  let queue: Job[] = [];
  let scheduled = false;
  let nextId = 1;
  let replaced = 0;
  let closed = false;
  /** Whether jobs go to workers at all; false after a failed start or too many failures. */
  let usable = threads > 0;
  let started = false;
  /** Whether a worker has said ready: until one has, a failure means threads do not work here. */
  let anyReady = false;
  /** Callers of `ready()` waiting for the first worker, or for the pool to give up. */
  let readyWaiters: Array<(ready: boolean) => void> = [];
  const settleReady = (ready: boolean): void => {
    const waiters = readyWaiters;
    readyWaiters = [];
    for (const settle of waiters) settle(ready);
  };
  const counts = { onThreads: 0, onCallingThread: 0, retried: 0 };

  if (usable && nativeEd25519 === undefined) {
    usable = false;
    log.warn('verify-threads-unavailable', {
      reason: 'no native Ed25519 in this runtime: verifying on the event loop thread',
    });
  }

  const here = (job: Job): void => {
    counts.onCallingThread++;
    job.resolve(verify(job.check.signature, job.check.message, job.check.publicKey));
  };

  const giveUp = (reason: string): void => {
    if (!usable) return;
    usable = false;
    log.warn('verify-threads-unavailable', {
      reason: `${reason}: verifying on the event loop thread`,
    });
    for (const slot of slots.splice(0)) retire(slot);
    settleReady(false);
  };

  /** Takes a worker out: its jobs still out fail closed and are verified here, once. */
  const retire = (slot: Slot): void => {
    if (slot.gone) return;
    slot.gone = true;
    const index = slots.indexOf(slot);
    if (index >= 0) slots.splice(index, 1);
    void slot.worker.terminate().catch(() => undefined);
    for (const jobs of slot.out.values()) {
      for (const job of jobs) {
        counts.retried++;
        here(job);
      }
    }
    slot.out.clear();
    for (const timer of slot.timers.values()) clearTimeout(timer);
    slot.timers.clear();
    slot.outJobs = 0;
  };

  const failed = (slot: Slot, why: string): void => {
    if (slot.gone) return;
    retire(slot);
    if (closed || !usable) return;
    if (replaced >= MAX_WORKER_REPLACEMENTS) {
      giveUp(`${replaced} verification workers failed (last: ${why})`);
      return;
    }
    replaced++;
    log.warn('verify-worker-replaced', { reason: why });
    addWorker();
  };

  const addWorker = (): boolean => {
    let worker: Worker;
    try {
      worker = spawn();
    } catch (error) {
      giveUp(`a verification worker did not start (${String(error)})`);
      return false;
    }
    // The workers never keep a process alive that has nothing else to do.
    worker.unref();
    const slot: Slot = {
      worker,
      out: new Map(),
      timers: new Map(),
      outJobs: 0,
      progressAt: performance.now(),
      gone: false,
    };
    worker.on('message', (value: unknown) => {
      if (slot.gone) return;
      if (typeof value === 'object' && value !== null && 'ready' in value) {
        if (value.ready === true) {
          anyReady = true;
          settleReady(true);
        } else giveUp('node:crypto failed the Ed25519 known-answer test on a worker thread');
        return;
      }
      const id = typeof value === 'object' && value !== null ? (value as { id?: unknown }).id : -1;
      const jobs = typeof id === 'number' ? slot.out.get(id) : undefined;
      const results = jobs === undefined ? undefined : answerOf(value, jobs.length);
      if (jobs === undefined || results === undefined) {
        failed(slot, 'an answer that is not one octet per job of a batch it was sent');
        return;
      }
      slot.out.delete(id as number);
      clearTimeout(slot.timers.get(id as number));
      slot.timers.delete(id as number);
      slot.outJobs -= jobs.length;
      slot.progressAt = performance.now();
      counts.onThreads += jobs.length;
      jobs.forEach((job, i) => job.resolve(results[i] === 1));
    });
    const lost = (why: string): void => {
      // A worker taken out (retired, or the pool closed) exits as asked: nothing was lost.
      if (slot.gone || closed) return;
      // Before any worker said ready, a failure means threads do not work here: no restart loop.
      if (!anyReady) giveUp(`a verification worker did not start (${why})`);
      else failed(slot, why);
    };
    worker.on('error', (error) => lost(`error: ${error.message}`));
    worker.on('exit', (code) => lost(`exit ${code}`));
    worker.on('messageerror', () => failed(slot, 'an answer that could not be read'));
    slots.push(slot);
    return true;
  };

  const start = (): void => {
    if (started || !usable || closed) return;
    for (let i = 0; i < threads && usable; i++) addWorker();
    started = usable;
    if (!started) return;
    // A worker that never says ready (stuck before its known-answer test) must not keep the
    // callers of `ready()` waiting: past the answer timeout, threads are given up.
    setTimeout(() => {
      if (!anyReady && !closed) giveUp(`no verification worker ready within ${answerTimeoutMs} ms`);
    }, answerTimeoutMs).unref();
  };

  /**
   * The deadline of batch `id` on `slot`, `ms` from now. A worker that is alive but silent
   * (stuck) must not hold its callers forever; but a batch is late only when the worker has
   * shown no progress for the whole timeout (a batch queued behind others waits for them), and
   * only once answers already delivered have been read: the check runs after the event loop's
   * poll phase (`setImmediate`), so a loop blocked past the timeout does not fail a worker whose
   * answer is waiting.
   */
  const arm = (slot: Slot, id: number, ms: number): void => {
    const timer = setTimeout(() => {
      onNextTurn(() => {
        if (slot.gone || !slot.out.has(id)) return;
        const silent = performance.now() - slot.progressAt;
        if (silent < answerTimeoutMs) arm(slot, id, answerTimeoutMs - silent);
        else failed(slot, `no answer within ${answerTimeoutMs} ms`);
      });
    }, ms);
    timer.unref();
    slot.timers.set(id, timer);
  };

  const send = (slot: Slot, jobs: readonly Job[]): void => {
    const id = nextId++;
    if (slot.outJobs === 0) slot.progressAt = performance.now();
    slot.out.set(id, jobs);
    slot.outJobs += jobs.length;
    arm(slot, id, answerTimeoutMs);
    const buffer = pack(jobs);
    try {
      slot.worker.postMessage({ id, buffer }, [buffer]);
    } catch (error) {
      failed(slot, `a batch could not be sent (${String(error)})`);
    }
  };

  const flush = (): void => {
    scheduled = false;
    const jobs = queue;
    queue = [];
    if (jobs.length === 0) return;
    const busy = slots.some((s) => s.outJobs > 0);
    if (!usable || closed || (jobs.length <= minJobs && !busy)) {
      for (const job of jobs) here(job);
      return;
    }
    start();
    // Until a worker is ready (starting one takes tens of milliseconds), nothing waits for it.
    if (slots.length === 0 || !anyReady) {
      for (const job of jobs) here(job);
      return;
    }
    // Shared out so that every worker gets some, the least loaded first.
    const parts = Math.min(slots.length, jobs.length);
    const size = Math.ceil(jobs.length / parts);
    for (let at = 0; at < jobs.length; at += size) {
      // A failed send can take the last worker out, or the threads altogether: the rest here.
      if (!usable || slots.length === 0) {
        for (const job of jobs.slice(at)) here(job);
        return;
      }
      const slot = slots.reduce((a, b) => (b.outJobs < a.outJobs ? b : a));
      send(slot, jobs.slice(at, at + size));
    }
  };

  const enqueue = (check: SignatureCheck): Promise<boolean> => {
    // Rules 1–3 of ed25519.ts here; a job that fails them never leaves.
    if (!passesEd25519Checks(check.signature, check.message, check.publicKey)) {
      return Promise.resolve(false);
    }
    return new Promise<boolean>((resolve) => {
      const job: Job = { check, resolve };
      if (!usable || closed) {
        here(job);
        return;
      }
      queue.push(job);
      if (queue.length >= MAX_JOBS_PER_BATCH) flush();
      else if (!scheduled) {
        scheduled = true;
        onNextTurn(flush);
      }
    });
  };

  return {
    threads,
    verify: (signature, message, publicKey) => enqueue({ signature, message, publicKey }),
    verifyBatch: (checks) => Promise.all(checks.map((check) => enqueue(check))),
    ready: () => {
      start();
      if (anyReady || !usable || closed) return Promise.resolve(anyReady && usable && !closed);
      return new Promise<boolean>((resolve) => readyWaiters.push(resolve));
    },
    stats: () => ({
      threads: usable ? slots.length : 0,
      onThreads: counts.onThreads,
      onCallingThread: counts.onCallingThread,
      retried: counts.retried,
      replacedWorkers: replaced,
    }),
    close: async () => {
      closed = true;
      settleReady(false);
      flush();
      for (const slot of slots.splice(0)) retire(slot);
    },
  };
}

/** A {@link Verifier} that verifies on the calling thread: the synchronous `verify`, as a promise. */
export const callingThreadVerifier: Verifier = Object.freeze({
  verify: (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) =>
    Promise.resolve(verify(signature, message, publicKey)),
  verifyBatch: (checks: readonly SignatureCheck[]) =>
    Promise.resolve(checks.map((c) => verify(c.signature, c.message, c.publicKey))),
});
