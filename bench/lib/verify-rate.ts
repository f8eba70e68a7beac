import { performance } from 'node:perf_hooks';
import {
  createVerifyPool,
  nativeEd25519,
  portableEd25519,
  sign,
  keyPairFromSeed,
  type Ed25519Backend,
} from '@mimi-discovery/common';

/**
 * Ed25519 verifications per second on one core, for each backend of the one signing module:
 * the runtime's own (`node:crypto`) and the portable one (`@noble/ed25519`); and of the
 * verification pool the resolver uses on all cores ({@link poolVerifyRate}). Verification bounds
 * cold lookups, so this is the yardstick of the resolver figures.
 */

/** How long each backend verifies; the rate is verifications ÷ elapsed time. */
const VERIFY_SECONDS = 1;
/** Distinct messages, so nothing is cached between verifications. */
const MESSAGES = 256;

export interface VerifyRates {
  /** Verifications per second on one core; undefined when the runtime has no native Ed25519. */
  native?: number;
  portable: number;
}

function rate(backend: Ed25519Backend): number {
  const key = keyPairFromSeed(new Uint8Array(32).fill(9));
  const messages = Array.from({ length: MESSAGES }, (_, i) => Uint8Array.of(i, i >> 8, 1, 2, 3));
  const signatures = messages.map((m) => sign(m, key.secretKey));
  let count = 0;
  const start = performance.now();
  const end = start + VERIFY_SECONDS * 1000;
  // Bounded by time, checked every MESSAGES verifications.
  while (performance.now() < end) {
    for (let i = 0; i < MESSAGES; i++) {
      if (!backend.verify(signatures[i]!, messages[i]!, key.publicKey))
        throw new Error(`${backend.name} Ed25519 rejected a valid signature`);
    }
    count += MESSAGES;
  }
  return count / ((performance.now() - start) / 1000);
}

export function verifyRates(): VerifyRates {
  return {
    ...(nativeEd25519 === undefined ? {} : { native: rate(nativeEd25519) }),
    portable: rate(portableEd25519),
  };
}

/** Verifications per second of a verification pool, and per CPU second of the whole process. */
export interface PoolVerifyRate {
  /** The pool's worker threads. */
  threads: number;
  verifications: number;
  perSecond: number;
  /** Per CPU second of this process, every thread counted (`process.cpuUsage` is per process). */
  perCpuSecond: number;
}

/** Signatures per batch a caller hands the pool, as a contact sync's validations do per turn. */
const POOL_BATCH = 256;
/** Batches kept in flight, so that every worker always has one queued behind the one it runs. */
const POOL_BATCHES_IN_FLIGHT = 8;

/**
 * The verification rate of a pool of `threads` workers (`createVerifyPool`, the resolver's
 * `verifyThreads`) over `seconds`, in this process: the bound of a resolver that verifies on
 * all cores. The 512-octet message is about a MAP RRset's signed data, as the one-core rate of
 * the resolver's process (`resolver-server.ts`) uses.
 */
export async function poolVerifyRate(threads: number, seconds: number): Promise<PoolVerifyRate> {
  const key = keyPairFromSeed(new Uint8Array(32).fill(0x21));
  const checks = Array.from({ length: POOL_BATCH }, (_, i) => {
    const message = new Uint8Array(512).fill(0x5a);
    message[0] = i;
    return { signature: sign(message, key.secretKey), message, publicKey: key.publicKey };
  });
  const pool = createVerifyPool({ threads, minJobsForThreads: 0 });
  try {
    // Workers started and warm before the clock runs.
    await pool.verifyBatch(checks);
    const started = performance.now();
    const deadline = started + seconds * 1000;
    const cpu = process.cpuUsage();
    let verifications = 0;
    const lane = async (): Promise<void> => {
      // Bounded by time: each lane stops at the deadline.
      while (performance.now() < deadline) {
        const results = await pool.verifyBatch(checks);
        if (!results.every(Boolean)) throw new Error('the pool rejected a valid signature');
        verifications += results.length;
      }
    };
    await Promise.all(Array.from({ length: POOL_BATCHES_IN_FLIGHT }, lane));
    const elapsed = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    return {
      threads: pool.threads,
      verifications,
      perSecond: verifications / elapsed,
      perCpuSecond: verifications / ((used.user + used.system) / 1e6),
    };
  } finally {
    await pool.close();
  }
}
