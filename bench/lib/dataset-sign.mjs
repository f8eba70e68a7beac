// @ts-check
import {
  createAttestation,
  createMapping,
  csiToName,
  encodeMapping,
  keyPairFromSeed,
  parseCsi,
} from '@mimi-discovery/common';

/**
 * The signed mappings of the benchmark data set, as plain JavaScript so that a worker thread can
 * load it with Node.js alone (a worker does not inherit vite-node's TypeScript loader). It
 * imports the built packages (`@mimi-discovery/common` resolves to `packages/common/dist`), so
 * `tsc -b` must have run. `dataset.ts` re-exports what the rest of the benchmark uses.
 */

/** Fixed seed of the DP's prover key, so AUTHKEY in the zone matches every attestation. */
export const PROVER_SEED = new Uint8Array(32).fill(7);

/** Recipient keys are drawn from a fixed pool: key generation is not what is measured. */
export const RECIPIENT_KEYS = 48;

/** CSIs of the data set are consecutive numbers from here, so the tree has few empty nodes. */
const FIRST_NUMBER = 7_700_000_000;

/** Mappings live this long; a cached data set is rebuilt well before (`data-cache.ts`). */
export const MAPPING_LIFETIME_SECONDS = 180 * 86400;

const prover = keyPairFromSeed(PROVER_SEED);

/**
 * The n-th CSI of the data set (n ≥ count gives CSIs that are absent).
 * @param {number} n
 * @returns {string}
 */
export function csiOf(n) {
  return `tel:+44${FIRST_NUMBER + n}`;
}

/**
 * The owner name of the n-th CSI.
 * @param {number} n
 * @returns {string}
 */
export function nameOf(n) {
  return csiToName(parseCsi(csiOf(n)));
}

/**
 * How many mappings CSI `n` has: 1, 2, 3, 1, 2, 3, …
 * @param {number} n
 * @returns {number}
 */
export function mappingsOf(n) {
  return 1 + (n % 3);
}

/**
 * The recipient key (index into {@link recipientKeys}) of mapping `j` of CSI `n`: distinct for
 * the mappings of one CSI, since 17 and 34 are not multiples of 48.
 * @param {number} n
 * @param {number} j
 * @returns {number}
 */
export function recipientOf(n, j) {
  return (n + j * 17) % RECIPIENT_KEYS;
}

/**
 * The provider named by mapping `j` of a CSI.
 * @param {number} j
 * @returns {string}
 */
export function providerOf(j) {
  return `msp${j}.example`;
}

/**
 * The fixed pool of recipient keys.
 * @returns {import('@mimi-discovery/common').Ed25519KeyPair[]}
 */
export function recipientKeys() {
  return Array.from({ length: RECIPIENT_KEYS }, (_, i) => {
    const seed = new Uint8Array(32).fill(0x40);
    seed[0] = i;
    return keyPairFromSeed(seed);
  });
}

/**
 * The MAP RDATA of one signed mapping of CSI `n` by recipient key `key`: a version-2 Mapping,
 * which does not carry the CSI (its signatures cover it; docs/protocol.md §4). `createMapping`
 * checks the attestation's signature over the CSI, one verification per mapping.
 * @param {number} n
 * @param {import('@mimi-discovery/common').Ed25519KeyPair} key
 * @param {string} provider
 * @param {number} now seconds since the epoch
 * @returns {Uint8Array}
 */
export function signedMapping(n, key, provider, now) {
  const csi = csiOf(n);
  const att = createAttestation(
    { csi, key: key.publicKey, prover: prover.publicKey, nbf: now - 3600, exp: now + 365 * 86400 },
    prover.secretKey,
  );
  const mapping = createMapping(
    {
      csi,
      msps: [{ provider, tags: ['default'] }],
      seq: 1,
      iat: now - 60,
      exp: now + MAPPING_LIFETIME_SECONDS,
      new: false,
      att,
    },
    key.secretKey,
  );
  return encodeMapping(mapping);
}

/**
 * The owner names of CSIs `start` to `end - 1` and the MAP RDATA of all their mappings, in
 * order (CSI, then mapping), packed into one buffer so that a worker can transfer it without
 * copying: mapping i is `bytes.subarray(offsets[i], offsets[i + 1])`. The names come along
 * because parsing a CSI (libphonenumber) would otherwise cost the main thread about 30 µs each.
 * @typedef {{ names: string[]; offsets: Uint32Array<ArrayBuffer>; bytes: Uint8Array<ArrayBuffer> }} SignedRange
 */

/**
 * Signs the mappings of CSIs `start` to `end - 1`.
 *
 * The node:crypto signer of `common` caches 16 imported private keys (importing one costs about
 * 300 µs, ten signatures' worth). The pool has 48 recipient keys, used round-robin, plus the
 * prover key, so signing in CSI order misses that cache on every mapping: profiled, that was 55 %
 * of the time. Signing grouped by recipient key imports each key once per range; the output is
 * put back in CSI order, so the bytes are the same.
 * @param {number} start
 * @param {number} end
 * @param {number} now
 * @param {readonly import('@mimi-discovery/common').Ed25519KeyPair[]} keys the pool, {@link recipientKeys}
 * @returns {SignedRange}
 */
export function signRange(start, end, now, keys) {
  /** @type {string[]} */
  const names = [];
  /** @type {{ n: number; j: number; slot: number }[][]} */
  const byKey = Array.from({ length: keys.length }, () => []);
  let slots = 0;
  for (let n = start; n < end; n++) {
    names.push(nameOf(n));
    for (let j = 0; j < mappingsOf(n); j++) {
      /** @type {{ n: number; j: number; slot: number }[]} */ (byKey[recipientOf(n, j)]).push({
        n,
        j,
        slot: slots++,
      });
    }
  }
  /** @type {Uint8Array[]} */
  const rdata = new Array(slots);
  byKey.forEach((tasks, k) => {
    const key = /** @type {import('@mimi-discovery/common').Ed25519KeyPair} */ (keys[k]);
    for (const { n, j, slot } of tasks) rdata[slot] = signedMapping(n, key, providerOf(j), now);
  });
  const offsets = new Uint32Array(slots + 1);
  let size = 0;
  rdata.forEach((r, i) => {
    size += r.length;
    offsets[i + 1] = size;
  });
  const bytes = new Uint8Array(size);
  rdata.forEach((r, i) => bytes.set(r, /** @type {number} */ (offsets[i])));
  return { names, offsets, bytes };
}
