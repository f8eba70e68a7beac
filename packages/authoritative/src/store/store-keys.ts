import { randomBytes } from 'node:crypto';
import {
  DNSKEY_FLAG_REVOKE,
  computeKeyTag,
  createZoneKey,
  type ZoneKey,
} from '@mimi-discovery/common';
import { StoreError } from './store-error.js';
import { KeyDirectoryError, type KeyDirectory } from '../keys/key-directory.js';
import {
  isPublishedState,
  keySetAt,
  keyStateAt,
  revokedDnskey,
  type ZoneKeySet,
} from '../keys/key-set.js';
import type { StoredNode, ZoneSigner } from '../zone/zone-nodes.js';
import { KEY_RRSET_TYPES } from '../zone/zone-signer.js';

/**
 * How every store turns its key directory (`keys/key-directory.ts`) into the keys it signs a
 * zone with, creates a zone's first key, and moves the seeds of an old layout out of its data:
 * one rule for the memory, LMDB and PostgreSQL stores.
 */

/** What `DiscoveryStore.signatureStatus` reports for one zone. */
export interface SignatureStatus {
  /**
   * The earliest expiration among the zone's RRSIGs (seconds), undefined when it has none: a
   * lower bound between two re-signing passes (a write only adds later expirations, and the
   * exact value is taken again at each pass).
   */
  earliestExpiry: number | undefined;
  /** RRsets whose RRSIGs are not exactly by the current signers: 0 once a key switch is done. */
  pendingResign: number;
  /** The key tags of the current signers. */
  signers: number[];
}

/**
 * The zone's key set at `now`, as the key directory says, checked: every published key's
 * private half is there (after one `reload`, for a directory another process writes), and some
 * key is active. Throws `StoreError` (`ERR_STORE_KEY_MISSING`, naming the zone, the tag and the
 * directory) otherwise, before anything is written.
 */
export function zoneKeySet(keys: KeyDirectory, origin: string, now: number): ZoneKeySet {
  let missing = missingKeys(keys, origin, now);
  if (missing.length > 0) {
    try {
      keys.reload();
    } catch (error) {
      throw keyDirectoryFault(error);
    }
    missing = missingKeys(keys, origin, now);
  }
  const where = keys.dir === undefined ? 'the memory key directory' : `key directory ${keys.dir}`;
  if (missing.length > 0) {
    throw new StoreError(
      'ERR_STORE_KEY_MISSING',
      `zone ${origin}: key tag ${missing.join(', ')} is not in the ${where}`,
    );
  }
  const set = keySetAt(keys.zoneKeys(origin), (k) => keys.privateKey(k), now);
  if (set.signers.length === 0) {
    throw new StoreError(
      'ERR_STORE_KEY_MISSING',
      `zone ${origin} has no active key in the ${where}`,
    );
  }
  return set;
}

/** The tags of the zone's published keys whose private half the directory lacks. */
function missingKeys(keys: KeyDirectory, origin: string, now: number): number[] {
  return keys
    .zoneKeys(origin)
    .filter((k) => isPublishedState(keyStateAt(k, now)) && keys.privateKey(k) === undefined)
    .map((k) => k.keyTag);
}

/**
 * The first key of a new zone, made in memory (not yet written): from `seed`, else a new random
 * one. The store writes it with {@link saveFirstKey} once the zone's settings checked out.
 */
export function firstKey(origin: string, seed: Uint8Array | undefined): ZoneKey {
  if (seed !== undefined && !(seed instanceof Uint8Array && seed.length === 32)) {
    throw new StoreError('ERR_STORE_BAD_ZONE', 'keySeed must be 32 octets');
  }
  return createZoneKey(origin, { seed: seed ?? Uint8Array.from(randomBytes(32)) });
}

/** The key set of a zone whose only key is `key`, published and active, no CDS. */
export function firstKeySet(key: ZoneKey): ZoneKeySet {
  return { dnskeys: [key.dnskey], signers: [key], dnskeySigners: [key], cds: [] };
}

/**
 * Writes a new zone's first key into the key directory: created, published and active at
 * `now`, no CDS (a parent adds the DS by hand or from a later CDS). A key already there (the same
 * seed, kept from a zone of that origin) is kept as it is.
 */
export async function saveFirstKey(keys: KeyDirectory, key: ZoneKey, now: number): Promise<void> {
  const there = keys
    .zoneKeys(key.zone)
    .some((k) => Buffer.from(k.dnskey.publicKey).equals(Buffer.from(key.dnskey.publicKey)));
  if (there) return;
  try {
    await keys.addZoneKey(
      key.zone,
      { created: now, publish: now, active: now },
      key.keyPair.secretKey,
    );
  } catch (error) {
    throw keyDirectoryFault(error);
  }
}

/**
 * Moves a zone key's seed found in an old store layout into the key directory, unless the
 * directory already has keys for that zone; resolves true when it wrote a key. The key is
 * published and active from `now` on (it signs what the store holds already).
 */
export async function migrateZoneSeed(
  keys: KeyDirectory,
  origin: string,
  seed: Uint8Array,
  now: number,
): Promise<boolean> {
  if (keys.zoneKeys(origin).length > 0) return false;
  try {
    await keys.addZoneKey(origin, { created: now, publish: now, active: now }, seed);
  } catch (error) {
    throw keyDirectoryFault(error);
  }
  return true;
}

/** Checks that a configured prover seed is the key directory's prover key. */
export function checkProverAgainst(keys: KeyDirectory, seed: Uint8Array | undefined): void {
  if (seed === undefined) return;
  if (!(seed instanceof Uint8Array && seed.length === 32)) {
    throw new StoreError('ERR_STORE_PROVER_KEY', 'proverSeed must be 32 octets (an Ed25519 seed)');
  }
  if (!Buffer.from(keys.proverKey().secretKey).equals(Buffer.from(seed))) {
    throw new StoreError(
      'ERR_STORE_PROVER_KEY',
      'the key directory holds a different prover key than the configured seed',
    );
  }
}

/** Tells whether signatures are by exactly the keys a signing record names. */
export function recordChecker(record: SigningRecord): Pick<ZoneSigner, 'isCurrent'> {
  const key = (tags: readonly number[]): string => [...tags].sort((a, b) => a - b).join(',');
  const data = key(record.signers);
  const keys = key(record.keyRrsigTags);
  // CDS and CDNSKEY: the keys without REVOKE (`zoneSigner`).
  const cds = key(record.keyRrsigTags.filter((_, i) => record.keys[i]?.revoked !== true));
  return {
    isCurrent: (type, signatures) =>
      key(signatures.map((s) => s.data.keyTag)) ===
      (type === 'DNSKEY' ? keys : KEY_RRSET_TYPES.has(type) ? cds : data),
  };
}

/** How many RRsets of a node have RRSIGs that are not exactly by the current keys. */
export function staleRRsets(
  node: StoredNode | undefined,
  current: Pick<ZoneSigner, 'isCurrent'>,
): number {
  let n = 0;
  for (const [type, rrset] of node ?? []) {
    if (rrset.signatures.length > 0 && !current.isCurrent(type, rrset.signatures)) n += 1;
  }
  return n;
}

/** A key directory fault as the store's error (its message kept). */
export function keyDirectoryFault(error: unknown): unknown {
  if (!(error instanceof KeyDirectoryError)) return error;
  return new StoreError(
    error.code === 'ERR_KEYS_PROVER_KEY' ? 'ERR_STORE_PROVER_KEY' : 'ERR_STORE_KEY_MISSING',
    error.message,
    { cause: error },
  );
}

/**
 * What a shared store keeps per zone about its keys, so that every process over the same data
 * (a server's writer thread, the command line, PostgreSQL front ends) signs with the key set
 * the last `refreshKeys` computed, and reads the zone's signature status without a scan: the
 * tags of the signers and of the DNSKEY/CDS/CDNSKEY signers (revoked or not), the number of
 * RRsets not yet signed by exactly the signers, and the earliest RRSIG expiration. Key tags
 * only: never key material.
 */
export interface SigningRecord {
  signers: number[];
  keys: Array<{ tag: number; revoked: boolean }>;
  /** The tags the RRSIGs of the `keys` carry (a revoked key's tag changes with the bit). */
  keyRrsigTags: number[];
  pending: number;
  earliest: number | undefined;
}

/** The signing record of a key set, with its signature counts. */
export function signingRecordOf(
  set: ZoneKeySet,
  counts: { pending: number; earliest: number | undefined },
): SigningRecord {
  return {
    signers: set.signers.map((k) => k.keyTag),
    keys: set.dnskeySigners.map((k) => {
      const revoked = (k.dnskey.flags & DNSKEY_FLAG_REVOKE) !== 0;
      // The key directory knows a key by its tag without REVOKE.
      const tag = revoked
        ? computeKeyTag({ ...k.dnskey, flags: k.dnskey.flags & ~DNSKEY_FLAG_REVOKE })
        : k.keyTag;
      return { tag, revoked };
    }),
    keyRrsigTags: set.dnskeySigners.map((k) => k.keyTag),
    pending: counts.pending,
    earliest: counts.earliest,
  };
}

/** Prefix of an encoded signing record (a zone key's seed, in old layouts, is 32 raw octets). */
const SIGNING_RECORD_PREFIX = 'mimi-keys:';

/** Encodes a signing record (JSON after a fixed prefix). */
export function encodeSigningRecord(record: SigningRecord): Buffer {
  return Buffer.from(SIGNING_RECORD_PREFIX + JSON.stringify(record), 'utf8');
}

/**
 * Decodes a signing record; undefined for a value of an old layout (the zone key's seed).
 * Throws `StoreError` (`ERR_STORE_CORRUPT`) for anything else.
 */
export function decodeSigningRecord(origin: string, value: Uint8Array): SigningRecord | undefined {
  const text = Buffer.from(value).toString('utf8');
  if (!text.startsWith(SIGNING_RECORD_PREFIX)) {
    if (value.length === 32) return undefined;
    throw new StoreError('ERR_STORE_CORRUPT', `the key record of zone ${origin} does not decode`);
  }
  try {
    const parsed = JSON.parse(text.slice(SIGNING_RECORD_PREFIX.length)) as Partial<SigningRecord>;
    if (!Array.isArray(parsed.signers) || !Array.isArray(parsed.keys)) throw new Error('shape');
    return {
      signers: parsed.signers.map(Number),
      keys: parsed.keys.map((k) => ({ tag: Number(k.tag), revoked: k.revoked === true })),
      keyRrsigTags: Array.isArray(parsed.keyRrsigTags) ? parsed.keyRrsigTags.map(Number) : [],
      pending: typeof parsed.pending === 'number' ? parsed.pending : 0,
      earliest: typeof parsed.earliest === 'number' ? parsed.earliest : undefined,
    };
  } catch (cause) {
    throw new StoreError('ERR_STORE_CORRUPT', `the key record of zone ${origin} does not decode`, {
      cause,
    });
  }
}

/**
 * The key set a signing record names, from the key directory (reloaded once when a tag is
 * missing: another front end may have added the key). Throws `StoreError`
 * (`ERR_STORE_KEY_MISSING`, naming zone, tag and directory) when a key is still missing.
 */
export function keySetOfRecord(
  keys: KeyDirectory,
  origin: string,
  record: SigningRecord,
): ZoneKeySet {
  const find = (tag: number): ZoneKey | undefined => {
    const stored = keys.zoneKeys(origin).find((k) => k.keyTag === tag);
    return stored === undefined ? undefined : keys.privateKey(stored);
  };
  const tags = [...record.signers, ...record.keys.map((k) => k.tag)];
  if (tags.some((tag) => find(tag) === undefined)) {
    try {
      keys.reload();
    } catch (error) {
      throw keyDirectoryFault(error);
    }
  }
  const get = (tag: number): ZoneKey => {
    const key = find(tag);
    if (key === undefined) {
      const where =
        keys.dir === undefined ? 'the memory key directory' : `key directory ${keys.dir}`;
      throw new StoreError(
        'ERR_STORE_KEY_MISSING',
        `zone ${origin}: key tag ${tag} is not in the ${where}`,
      );
    }
    return key;
  };
  const signers = record.signers.map(get);
  const dnskeySigners = record.keys.map(({ tag, revoked }) => {
    const key = get(tag);
    if (!revoked) return key;
    const dnskey = revokedDnskey(key.dnskey);
    return { ...key, dnskey, keyTag: computeKeyTag(dnskey) };
  });
  return { dnskeys: dnskeySigners.map((k) => k.dnskey), signers, dnskeySigners, cds: [] };
}
