import { performance } from 'node:perf_hooks';
import type { DiscoveryStore, RRsetChange } from '@mimi-discovery/authoritative';
import {
  createAttestation,
  createMapping,
  csiToName,
  encodeMapping,
  keyPairFromSeed,
  parseCsi,
  record,
  type Ed25519KeyPair,
} from '@mimi-discovery/common';

/** The zone every benchmark serves. */
export const ORIGIN = '4.4.e164.mimi.arpa';

/** Fixed seed of the DP's prover key, so AUTHKEY in the zone matches every attestation. */
export const PROVER_SEED = new Uint8Array(32).fill(7);

/** Recipient keys are drawn from a fixed pool: key generation is not what is measured. */
const RECIPIENT_KEYS = 48;
/** Changes per `store.apply` while loading (the store's limit is 1024). */
const LOAD_BATCH = 1000;
/** CSIs of the data set are consecutive numbers from here, so the tree has few empty nodes. */
const FIRST_NUMBER = 7_700_000_000;

export const ZONE_INIT = {
  origin: ORIGIN,
  nameservers: [`ns1.${ORIGIN}`],
  mname: `ns1.${ORIGIN}`,
  rname: `hostmaster.${ORIGIN}`,
};

/** The n-th CSI of the data set (n ≥ count gives CSIs that are absent). */
const prover = keyPairFromSeed(PROVER_SEED);

export function csiOf(n: number): string {
  return `tel:+44${FIRST_NUMBER + n}`;
}

export function nameOf(n: number): string {
  return csiToName(parseCsi(csiOf(n)));
}

function recipientKeys(): Ed25519KeyPair[] {
  return Array.from({ length: RECIPIENT_KEYS }, (_, i) => {
    const seed = new Uint8Array(32).fill(0x40);
    seed[0] = i;
    return keyPairFromSeed(seed);
  });
}

/** The MAP RDATA of one signed mapping of CSI `n` by recipient key `key`. */
export function signedMapping(
  n: number,
  key: Ed25519KeyPair,
  provider: string,
  now: number,
): Uint8Array {
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
      exp: now + 180 * 86400,
      new: false,
      att,
    },
    key.secretKey,
  );
  return encodeMapping(mapping);
}

export interface LoadResult {
  csis: number;
  mappings: number;
  /** Seconds spent creating the signed mappings. */
  signSeconds: number;
  /** Seconds spent in `store.apply` (signing RRsets and committing). */
  applySeconds: number;
}

/**
 * Writes `count` CSIs with 1–3 signed mappings each (by distinct recipient keys) into the zone,
 * in batches of {@link LOAD_BATCH} changes per apply.
 */
export async function loadDataSet(
  store: DiscoveryStore,
  count: number,
  progress: (done: number) => void,
): Promise<LoadResult> {
  const keys = recipientKeys();
  const now = Math.floor(Date.now() / 1000);
  let mappings = 0;
  let signSeconds = 0;
  let applySeconds = 0;
  for (let start = 0; start < count; start += LOAD_BATCH) {
    const end = Math.min(count, start + LOAD_BATCH);
    const t0 = performance.now();
    const changes: RRsetChange[] = [];
    for (let n = start; n < end; n++) {
      const name = nameOf(n);
      const perCsi = 1 + (n % 3);
      const records = Array.from({ length: perCsi }, (_, j) =>
        record(
          name,
          'MAP',
          signedMapping(n, keys[(n + j * 17) % keys.length]!, `msp${j}.example`, now),
          300,
        ),
      );
      mappings += perCsi;
      changes.push({ op: 'put', name, type: 'MAP', records });
    }
    const t1 = performance.now();
    await store.apply(ORIGIN, changes);
    const t2 = performance.now();
    signSeconds += (t1 - t0) / 1000;
    applySeconds += (t2 - t1) / 1000;
    progress(end);
  }
  return { csis: count, mappings, signSeconds, applySeconds };
}
