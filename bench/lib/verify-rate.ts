import { performance } from 'node:perf_hooks';
import {
  nativeEd25519,
  portableEd25519,
  sign,
  keyPairFromSeed,
  type Ed25519Backend,
} from '@mimi-discovery/common';

/**
 * Ed25519 verifications per second on one core, for each backend of the one signing module:
 * the runtime's own (`node:crypto`) and the portable one (`@noble/ed25519`). Verification bounds
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
