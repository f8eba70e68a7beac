import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import {
  MAX_JOBS_PER_BATCH,
  MAX_VERIFY_THREADS,
  MAX_WORKER_REPLACEMENTS,
  autoVerifyThreads,
  createLogger,
  createVerifyPool,
  keyPairFromSeed,
  nativeEd25519,
  sign,
  type SignatureCheck,
  type VerifyPool,
} from '../src/index.js';
import { spawnVerifyWorker } from '../src/runtime/verify-pool.js';

const key = keyPairFromSeed(new Uint8Array(32).fill(0x42));

/** `count` checks of distinct messages; those at `bad` indexes carry a flipped signature bit. */
function checks(count: number, bad: readonly number[] = []): SignatureCheck[] {
  return Array.from({ length: count }, (_, i) => {
    const message = Uint8Array.of(i & 0xff, i >> 8, 0x4d, 0x41, 0x50);
    const signature = sign(message, key.secretKey);
    if (bad.includes(i)) signature[10] = (signature[10] as number) ^ 0x01;
    return { signature, message, publicKey: key.publicKey };
  });
}

function expected(count: number, bad: readonly number[]): boolean[] {
  return Array.from({ length: count }, (_, i) => !bad.includes(i));
}

/** A worker of code `source` (CommonJS, run with eval). */
const workerOf = (source: string) => (): Worker => new Worker(source, { eval: true });

/** Throws on its first batch: an 'error' event, then an exit, with the batch out. */
const CRASHES = `const { parentPort } = require('node:worker_threads');
parentPort.postMessage({ ready: true });
parentPort.on('message', () => {
  throw new Error('crashed on purpose');
});`;
/** Answers every batch with one octet too many, all 1: an answer of the wrong shape. */
const ANSWERS_WRONG_SHAPE = `const { parentPort } = require('node:worker_threads');
parentPort.postMessage({ ready: true });
parentPort.on('message', (m) => {
  const count = new DataView(m.buffer).getUint32(0);
  parentPort.postMessage({ id: m.id, results: new Uint8Array(count + 1).fill(1) });
});`;
/** Answers all 1 for a batch it was never sent (id + 1000). */
const ANSWERS_OTHER_BATCH = `const { parentPort } = require('node:worker_threads');
parentPort.postMessage({ ready: true });
parentPort.on('message', (m) => {
  const count = new DataView(m.buffer).getUint32(0);
  parentPort.postMessage({ id: m.id + 1000, results: new Uint8Array(count).fill(1) });
});`;
/** Says ready, then never answers: alive but stuck. */
const NEVER_ANSWERS = `const { parentPort } = require('node:worker_threads');
parentPort.postMessage({ ready: true });
parentPort.on('message', () => undefined);`;
/** Says ready, then answers every batch all valid after 150 ms: a slow worker with a backlog. */
const ANSWERS_SLOWLY = `const { parentPort } = require('node:worker_threads');
parentPort.postMessage({ ready: true });
const pause = new Int32Array(new SharedArrayBuffer(4));
parentPort.on('message', (m) => {
  Atomics.wait(pause, 0, 0, 150);
  const count = new DataView(m.buffer).getUint32(0);
  parentPort.postMessage({ id: m.id, results: new Uint8Array(count).fill(1) });
});`;
/** Starts, and never says ready. */
const NEVER_READY = `setInterval(() => undefined, 1000);`;
/** Exits before it says ready. */
const NEVER_STARTS = `process.exit(3);`;
/** Says its known-answer test failed. */
const FAILS_SELF_TEST = `require('node:worker_threads').parentPort.postMessage({ ready: false });
setInterval(() => undefined, 1000);`;

function warnings(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger('test', { level: 'warn', write: (l) => lines.push(l) }), lines };
}

async function withPool<T>(pool: VerifyPool, body: (pool: VerifyPool) => Promise<T>): Promise<T> {
  try {
    return await body(pool);
  } finally {
    await pool.close();
  }
}

describe.skipIf(nativeEd25519 === undefined)('createVerifyPool', () => {
  it('fails only the item with a bad signature in a batch', async () => {
    const bad = [3, 97, 255];
    await withPool(createVerifyPool({ threads: 2, minJobsForThreads: 0 }), async (pool) => {
      expect(await pool.ready()).toBe(true);
      expect(await pool.verifyBatch(checks(300, bad))).toEqual(expected(300, bad));
      expect(pool.stats().onThreads).toBe(300);
    });
  });

  it('answers concurrent callers across turns of the event loop, each with its own result', async () => {
    const all = checks(600, [5, 500]);
    await withPool(createVerifyPool({ threads: 2 }), async (pool) => {
      expect(await pool.ready()).toBe(true);
      const results = await Promise.all(
        all.map(async (c, i) => {
          // Callers arrive over many turns, as resolutions' validations do.
          for (let t = 0; t < i % 7; t++) await new Promise((r) => setImmediate(r));
          return pool.verify(c.signature, c.message, c.publicKey);
        }),
      );
      expect(results).toEqual(expected(600, [5, 500]));
      expect(pool.stats().onThreads).toBeGreaterThan(0);
    });
  });

  it('verifies the bytes of a job as they were when it went out, not as the caller changes them later', async () => {
    await withPool(createVerifyPool({ threads: 1, minJobsForThreads: 0 }), async (pool) => {
      expect(await pool.ready()).toBe(true);
      const [c] = checks(1);
      const pending = pool.verifyBatch([c!, ...checks(3)]);
      // After the turn's flush the bytes have left; changing them now changes nothing.
      await new Promise((r) => setImmediate(r));
      c!.message[0] = 0xff;
      expect(await pending).toEqual([true, true, true, true]);
    });
  });

  it('rejects on the calling thread what fails the strict checks, without sending it', async () => {
    await withPool(createVerifyPool({ threads: 1, minJobsForThreads: 0 }), async (pool) => {
      const [c] = checks(1);
      const identity = new Uint8Array(32);
      identity[0] = 1; // the identity point, of small order: OpenSSL alone would accept it
      const results = await pool.verifyBatch([
        { ...c!, publicKey: identity },
        { ...c!, signature: c!.signature.subarray(0, 63) },
      ]);
      expect(results).toEqual([false, false]);
      expect(pool.stats().onThreads + pool.stats().onCallingThread).toBe(0);
    });
  });

  it('never takes a crashed worker for a verification: its jobs are verified again on the calling thread, and it is replaced', async () => {
    let spawned = 0;
    const { log, lines } = warnings();
    const spawn = (): Worker => (spawned++ === 0 ? workerOf(CRASHES)() : spawnVerifyWorker());
    await withPool(
      createVerifyPool({ threads: 1, minJobsForThreads: 0 }, { spawn, log }),
      async (pool) => {
        expect(await pool.ready()).toBe(true);
        const bad = [0, 7];
        expect(await pool.verifyBatch(checks(20, bad))).toEqual(expected(20, bad));
        expect(pool.stats()).toMatchObject({ retried: 20, onThreads: 0, replacedWorkers: 1 });
        // The replacement verifies.
        expect(await pool.verifyBatch(checks(10, [4]))).toEqual(expected(10, [4]));
        expect(pool.stats().onThreads).toBe(10);
        expect(lines.filter((l) => l.includes('verify-worker-replaced'))).toHaveLength(1);
      },
    );
  });

  it('takes a worker silent past its answer timeout as failed: its jobs are verified on the calling thread', async () => {
    const { log } = warnings();
    let spawned = 0;
    const spawn = (): Worker => (spawned++ === 0 ? workerOf(NEVER_ANSWERS)() : spawnVerifyWorker());
    await withPool(
      createVerifyPool({ threads: 1, minJobsForThreads: 0, answerTimeoutMs: 200 }, { spawn, log }),
      async (pool) => {
        expect(await pool.ready()).toBe(true);
        expect(await pool.verifyBatch(checks(6, [4]))).toEqual(expected(6, [4]));
        expect(pool.stats()).toMatchObject({ retried: 6, onThreads: 0, replacedWorkers: 1 });
      },
    );
  });

  it('does not take a worker as silent when its answer waits behind a blocked event loop', async () => {
    const { log } = warnings();
    await withPool(
      createVerifyPool({ threads: 1, minJobsForThreads: 0, answerTimeoutMs: 200 }, { log }),
      async (pool) => {
        expect(await pool.ready()).toBe(true);
        const results = pool.verifyBatch(checks(6, [4]));
        // The batch leaves at the end of this turn; then the event loop is blocked well past the
        // answer timeout while the worker answers.
        await new Promise((resolve) => setImmediate(resolve));
        const until = Date.now() + 1_500;
        while (Date.now() < until) {
          // busy: timers and messages wait
        }
        expect(await results).toEqual(expected(6, [4]));
        expect(pool.stats()).toMatchObject({ replacedWorkers: 0, retried: 0, onThreads: 6 });
      },
    );
  });

  it('does not take a worker as silent while it answers a backlog, batch after batch', async () => {
    const { log } = warnings();
    let spawned = 0;
    const spawn = (): Worker => {
      spawned++;
      return workerOf(ANSWERS_SLOWLY)();
    };
    await withPool(
      createVerifyPool({ threads: 1, minJobsForThreads: 0, answerTimeoutMs: 400 }, { spawn, log }),
      async (pool) => {
        expect(await pool.ready()).toBe(true);
        // Five batches at once: the last is answered about 750 ms after it left, yet the worker
        // answered every 150 ms.
        const count = 5 * MAX_JOBS_PER_BATCH;
        expect(await pool.verifyBatch(checks(count))).toEqual(expected(count, []));
        expect(pool.stats()).toMatchObject({ replacedWorkers: 0, retried: 0, onThreads: count });
        expect(spawned).toBe(1);
      },
    );
  });

  it('gives up its threads when no worker says ready within the answer timeout', async () => {
    const { log, lines } = warnings();
    await withPool(
      createVerifyPool(
        { threads: 1, minJobsForThreads: 0, answerTimeoutMs: 200 },
        { spawn: workerOf(NEVER_READY), log },
      ),
      async (pool) => {
        expect(await pool.ready()).toBe(false);
        expect(await pool.verifyBatch(checks(3, [0]))).toEqual(expected(3, [0]));
        expect(lines.filter((l) => l.includes('verify-threads-unavailable'))).toHaveLength(1);
      },
    );
  });

  it('verifies every job when sending batches fails until the threads are given up', async () => {
    const { log, lines } = warnings();
    const spawn = (): Worker => {
      const worker = workerOf(NEVER_ANSWERS)();
      worker.postMessage = () => {
        throw new Error('the channel is closed');
      };
      return worker;
    };
    await withPool(
      createVerifyPool({ threads: 2, minJobsForThreads: 0 }, { spawn, log }),
      async (pool) => {
        expect(await pool.ready()).toBe(true);
        // Each batch is cut in two, one part per worker; every send fails and replaces its
        // worker, until the replacements are spent and the threads given up mid-batch.
        for (let round = 0; round <= MAX_WORKER_REPLACEMENTS; round++) {
          expect(await pool.verifyBatch(checks(4, [round % 4]))).toEqual(expected(4, [round % 4]));
        }
        expect(pool.stats().threads).toBe(0);
        expect(pool.stats().onThreads).toBe(0);
        expect(lines.filter((l) => l.includes('verify-threads-unavailable'))).toHaveLength(1);
      },
    );
  });

  it('starts no worker once closed, and says so to ready()', async () => {
    let spawned = 0;
    const spawn = (): Worker => {
      spawned++;
      return spawnVerifyWorker();
    };
    const { log, lines } = warnings();
    const pool = createVerifyPool({ threads: 2, minJobsForThreads: 0 }, { spawn, log });
    await pool.close();
    expect(await pool.ready()).toBe(false);
    expect(await pool.verifyBatch(checks(3, [1]))).toEqual(expected(3, [1]));
    expect(spawned).toBe(0);
    expect(lines).toEqual([]);
  });

  it('warns of nothing when closed before its workers are ready', async () => {
    const { log, lines } = warnings();
    const pool = createVerifyPool({ threads: 2, minJobsForThreads: 0 }, { log });
    const ready = pool.ready();
    await pool.close();
    expect(await ready).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(lines).toEqual([]);
  });

  it.each([
    ['an answer of the wrong length', ANSWERS_WRONG_SHAPE],
    ['an answer to a batch it was not sent', ANSWERS_OTHER_BATCH],
  ])('does not trust %s: those jobs are verified on the calling thread', async (_, source) => {
    const { log } = warnings();
    let spawned = 0;
    const spawn = (): Worker => (spawned++ === 0 ? workerOf(source)() : spawnVerifyWorker());
    await withPool(
      createVerifyPool({ threads: 1, minJobsForThreads: 0 }, { spawn, log }),
      async (pool) => {
        expect(await pool.ready()).toBe(true);
        const bad = [1, 2, 3];
        expect(await pool.verifyBatch(checks(8, bad))).toEqual(expected(8, bad));
        expect(pool.stats()).toMatchObject({ retried: 8, onThreads: 0, replacedWorkers: 1 });
      },
    );
  });

  it(`gives up its threads, with one warning, after ${MAX_WORKER_REPLACEMENTS} replaced workers failed too`, async () => {
    const { log, lines } = warnings();
    await withPool(
      createVerifyPool({ threads: 1, minJobsForThreads: 0 }, { spawn: workerOf(CRASHES), log }),
      async (pool) => {
        expect(await pool.ready()).toBe(true);
        // Each batch crashes the worker it reaches; every result still comes from a verification.
        for (let round = 0; round <= MAX_WORKER_REPLACEMENTS + 2; round++) {
          expect(await pool.verifyBatch(checks(4, [round % 4]))).toEqual(expected(4, [round % 4]));
        }
        expect(pool.stats().replacedWorkers).toBe(MAX_WORKER_REPLACEMENTS);
        expect(pool.stats().threads).toBe(0);
        expect(lines.filter((l) => l.includes('verify-threads-unavailable'))).toHaveLength(1);
      },
    );
  });

  it.each([
    [
      'a worker cannot be created',
      (): Worker => {
        throw new Error('no threads here');
      },
    ],
    ['a worker exits before it says ready', workerOf(NEVER_STARTS)],
    ['a worker fails its known-answer test', workerOf(FAILS_SELF_TEST)],
  ])('verifies on the calling thread, with one warning, when %s', async (_, spawn) => {
    const { log, lines } = warnings();
    await withPool(
      createVerifyPool({ threads: 2, minJobsForThreads: 0 }, { spawn, log }),
      async (pool) => {
        expect(await pool.verifyBatch(checks(6, [2]))).toEqual(expected(6, [2]));
        expect(await pool.ready()).toBe(false);
        // Later batches never wait for threads that are not there.
        expect(await pool.verifyBatch(checks(6, [5]))).toEqual(expected(6, [5]));
        expect(pool.stats().threads).toBe(0);
        expect(pool.stats().onThreads).toBe(0);
        expect(lines.filter((l) => l.includes('verify-threads-unavailable'))).toHaveLength(1);
      },
    );
  });

  it('verifies on the calling thread with threads: 0, starting no worker', async () => {
    const spawn = (): Worker => {
      throw new Error('must not be called');
    };
    await withPool(createVerifyPool({ threads: 0 }, { spawn }), async (pool) => {
      expect(await pool.verifyBatch(checks(5, [0]))).toEqual(expected(5, [0]));
      expect(pool.stats()).toMatchObject({ threads: 0, onCallingThread: 5, onThreads: 0 });
    });
  });

  it('keeps a lone verification on the calling thread while no batch is out', async () => {
    await withPool(createVerifyPool({ threads: 1 }), async (pool) => {
      const [c] = checks(1);
      expect(await pool.verify(c!.signature, c!.message, c!.publicKey)).toBe(true);
      expect(pool.stats()).toMatchObject({ onCallingThread: 1, onThreads: 0 });
    });
  });

  it(`runs at most ${MAX_VERIFY_THREADS} threads, whatever it is asked`, async () => {
    const pool = createVerifyPool({ threads: 1000 });
    expect(pool.threads).toBe(MAX_VERIFY_THREADS);
    await pool.close();
  });

  it('verifies on the calling thread until a worker is ready, without waiting for it', async () => {
    await withPool(createVerifyPool({ threads: 1, minJobsForThreads: 0 }), async (pool) => {
      expect(await pool.verifyBatch(checks(4, [3]))).toEqual(expected(4, [3]));
      expect(pool.stats()).toMatchObject({ onCallingThread: 4, onThreads: 0 });
      expect(await pool.ready()).toBe(true);
      expect(await pool.verifyBatch(checks(4, [0]))).toEqual(expected(4, [0]));
      expect(pool.stats().onThreads).toBe(4);
    });
  });

  it('verifies jobs still queued at close on the calling thread', async () => {
    const pool = createVerifyPool({ threads: 1, minJobsForThreads: 0 });
    await pool.ready();
    const pending = pool.verifyBatch(checks(5, [1]));
    await pool.close();
    expect(await pending).toEqual(expected(5, [1]));
  });
});

describe('autoVerifyThreads', () => {
  it.each([
    [1, 1],
    [2, 1],
    [8, 7],
    [64, MAX_VERIFY_THREADS],
  ])('gives %i cores %i threads: the event loop keeps one', (cores, threads) => {
    expect(autoVerifyThreads(cores)).toBe(threads);
  });
});
