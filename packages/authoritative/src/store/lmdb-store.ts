import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  computeKeyTag,
  createZoneKey,
  isSubdomain,
  namesBelowOrigin,
  parentName,
  systemClock,
  type Clock,
  type Ed25519KeyPair,
  type Logger,
  type ResourceRecord,
  type RRType,
  type ZoneKey,
  type ZoneNode,
  type Descent,
  type ZoneView,
} from '@mimi-discovery/common';
import { open, type Database, type RootDatabase, type Transaction } from 'lmdb';
import {
  GROUP_MAX_WRITES,
  REPLAY_PRUNE_BATCH,
  applyPlan,
  expiredMappingsChange,
  mayHoldExpiredMappings,
  operationPlan,
  prepareOperation,
  type GroupedWrite,
  type OperationOutcome,
  type ReplayReader,
  type ReplayRecord,
  type StoreOperation,
} from './mapping-ops.js';
import {
  belowRange,
  decodeNode,
  encodeNode,
  nodeKey,
  nodeHolds,
  nodeName,
  zonePrefix,
  zoneRange,
} from './node-codec.js';
import {
  EXPIRY_VALUE,
  RECORDS_RANGE,
  decodeReplayRecord,
  encodeReplayValue,
  expiredRange,
  expiryKey,
  recordKeyOfExpiry,
  replayKey,
  replayReader,
  untilOf,
} from './replay-codec.js';
import { STREAM_BATCH_RECORDS, type DiscoveryStore, type StoreWriteCounts } from './store.js';
import { StoreError, noZoneError, type StoreErrorCode } from './store-error.js';
import type { ApplyResult, RRsetChange, ZoneInfo, ZoneInit } from './store-types.js';
import type { StoreWriterReply, StoreWriterRequest } from './store-writer-messages.js';
import {
  checkProverAgainst,
  decodeSigningRecord,
  encodeSigningRecord,
  firstKey,
  firstKeySet,
  keyDirectoryFault,
  keySetOfRecord,
  migrateZoneSeed,
  saveFirstKey,
  signingRecordOf,
  staleRRsets,
  recordChecker,
  zoneKeySet,
  type SignatureStatus,
  type SigningRecord,
} from './store-keys.js';
import { defaultKeyDirectory, openKeyDirectory, type KeyDirectory } from '../keys/key-directory.js';
import type { ZoneKeySet } from '../keys/key-set.js';
import {
  CHANGE_LOG_ENTRIES,
  changedNames,
  changesBetween,
  normalizeChanges,
  changedUnion,
  type ChangedNames,
  type StoreChanges,
} from '../zone/zone-changes.js';
import {
  decodeJournalEntry,
  encodeJournalEntry,
  journalEntry,
  journalLimits,
  type JournalEntry,
  type JournalLimits,
} from '../zone/journal.js';
import { chainLabel, chainOwner, type Nsec3Index } from '../zone/nsec3-chain.js';
import { ownerName, ownerOrUndefined, zoneOrigin } from '../zone/owner-name.js';
import {
  DEFAULT_PROVER_KEY_LIFETIME_SECONDS,
  RESIGN_MAX_RRSETS_PER_WRITE,
  earliestExpiration,
  initialZone,
  isDue,
  nodeRecords,
  countingSigner,
  planApply,
  planKeys,
  planNsec3,
  planResign,
  planSerial,
  signatureValidityPolicy,
  toZoneNode,
  zoneOverlay,
  zoneSerial,
  zoneSigner,
  type SignatureValidityPolicy,
  type SigningCounts,
  type ZoneOverlay,
  type StoredNode,
  type ZoneReader,
  type ZoneSigner,
  type ZoneWrites,
} from '../zone/zone-signer.js';

/**
 * The embedded default {@link DiscoveryStore}: every zone's records in LMDB (design §9, as Knot
 * DNS and PowerDNS keep theirs), one environment per data directory.
 *
 * Layout — one LMDB environment (`data.mdb`, `lock.mdb`) with eight named tables:
 * - `nodes` (binary keys and values): one entry per owner name of a zone holding all its RRsets
 *   and their RRSIGs. The key is the zone origin and then the owner, both as labels from the root
 *   down, so names sort in DNSSEC canonical order and every descendant of a name sorts right after
 *   it: an empty non-terminal is found with one cursor step (`node-codec.ts` has the encoding).
 * - `zones` (key: origin, since layout 4): the zone's signing record (`store-keys.ts`): the key
 *   tags it is signed with, as its last `refreshKeys` computed them, and its signature counts
 *   (`signatureStatus`), kept by every write. No key material: the keys are in the key directory
 *   (`keys/key-directory.ts`, design §9). Layouts up to 3 kept the zone key's seed here and the
 *   prover key's seed in `meta`; opening such a directory moves them into the key directory
 *   (unless it has keys for the zone already) and erases them.
 * - `meta`: `format` (layout version, 5) and
 *   `generation` (a 6-octet counter every write transaction increases, absent until the first:
 *   it is what {@link DiscoveryStore.generation} reads, so a server's answer cache also sees
 *   writes made by another process, such as the CLI, on the same store).
 * - `changes` (key: a generation, 6 octets): what the write of that generation changed, for
 *   `changesSince` — `00` for everything, or `01` and the changed owner names separated by
 *   newlines (canonical presentation escapes any newline in a label). The last
 *   `CHANGE_LOG_ENTRIES` writes are kept; each write deletes the entry that falls out.
 * - `replay` (binary keys and values, since layout 2): the anti-replay records of removals,
 *   revocations and MapRef requests, and an index of them by expiry (`replay-codec.ts`). A
 *   directory of layout 1 gains the empty table when it is first opened.
 * - `nsec3` (binary, since layout 3): the nodes of each zone's NSEC3 chain (`nsec3-chain.ts`),
 *   keyed as `nodes` keys them (origin, then the owner `<label>.<origin>`), so one table is both
 *   the chain and its index in hash order (base32hex keeps the order of the hashes), and a zone
 *   is read in canonical order by merging two ranges. Answering reads only `nodes`: the chain is
 *   invisible to it. A directory of layout 2, whose chains (of zones with a ZONEMD) were in
 *   `nodes`, has them moved here when it is first opened.
 * - `journal` (binary, since layout 3): each zone's journal (`journal.ts`). Key: the zone's key
 *   prefix (`zonePrefix`) then an 8-octet sequence number, value: the encoded entry; the key
 *   prefix alone holds the zone's head: first and next sequence numbers and the octets held
 *   (8 octets each). Trimmed from the oldest entry by the `journal` limits in the transaction
 *   that appends.
 * - `cuts` (binary, since layout 5): the key (as in `nodes`) of every node strictly below its
 *   zone's apex that holds NS, a zone cut; the value is one octet, 01. Written in the transaction
 *   that writes the node, so answering finds a query name's cut with one search of this small
 *   table (`#descend`) instead of reading every name on the way down. A directory of an older
 *   layout has it built from `nodes` when it is first opened (no process of the older version
 *   may still be writing to it: it would leave its delegations out).
 * The data directory is made mode 0700 and both files 0600 (they hold no secret, but mappings are
 * personal data).
 *
 * Durability (design §9): `apply`, `applyOperation`, `addZone`, `removeZone` and `resign` resolve
 * only after their commit is flushed to disk (an operation that changed nothing, once this
 * store's commits before it are: what it found stored is then durable too). lmdb-js commits batched
 * transactions on a thread of its own; with `overlappingSync` (its default outside Windows) a
 * write's promise resolves at commit, when the data is visible, and the flush (fdatasync)
 * follows, overlapping the next commit. Each write therefore awaits its
 * transaction and then `env.flushed`, which resolves once the last commit is on disk. On
 * Windows, without overlapping sync, the commit itself is synchronous and `flushed` is the commit.
 *
 * Group commit: writes run as child transactions queued with lmdb-js, which puts every write
 * queued in one event turn into one LMDB transaction and one flush. A burst of concurrent
 * `apply` calls costs one fdatasync, not one each. `apply` and `applyOperation` go further:
 * those queued until their group's child transaction starts (at most `GROUP_MAX_WRITES`)
 * are planned one after the other in it, each over the ones before it, and each zone they
 * changed then gets one SOA serial step, one SOA RRSIG, one journal entry and one change-log
 * generation for the whole group (`zone-signer.ts` `planSerial`): the serial a secondary and
 * a resolver see steps once per commit, not once per publish. A failing `apply` adds nothing
 * to its group and rejects with its own error; the others commit.
 *
 * Operations (`applyOperation`) read what they depend on inside their child transaction, which
 * sees the data as committed by every earlier transaction (of any thread or process: LMDB
 * serializes writers through the lock file) and by the earlier children of its own batch. That,
 * not any read snapshot, is what makes concurrent publishes for one CSI all land.
 *
 * Reads are synchronous `get`s and cursor steps outside any transaction. lmdb-js keeps one read
 * snapshot per thread and renews it at the next event turn after a read and after a commit made
 * through the same environment object; so one synchronous `lookupZone` sees one snapshot. A
 * commit made elsewhere — the writer thread, another process — is not announced: the threaded
 * store renews the reading thread's snapshot itself before it resolves a write (`renewReads`),
 * so that a read after an acknowledged write sees it.
 *
 * Zone streams (`streamZone`, for AXFR and export) are the exception: each holds a read
 * transaction of its own from its first batch to its last, so it reads one snapshot however
 * many writes commit meanwhile, and reads both ranges (`nodes`, `nsec3`) a few hundred entries
 * at a time through it. A reader slot and the pages of an old snapshot are what such a
 * transaction costs, so streams are bounded in number and in time (`STREAM_MAX_OPEN`,
 * `STREAM_MAX_SECONDS`) and `close` ends them.
 */

/** Options of {@link openLmdbStore}. */
export interface LmdbStoreOptions {
  /** Directory of the LMDB environment; created (mode 0700) when missing. */
  dataDir: string;
  /** Clock in whole seconds since the epoch; default `systemClock`. */
  now?: Clock;
  /** Signature lifetime and renewal margin; default 14 days, renewed 7 days before expiry. */
  signatureValidity?: Partial<SignatureValidityPolicy>;
  /**
   * The key directory (`keys/key-directory.ts`) the zones are signed from: its path (a writer
   * thread opens it too) or, inline only, an open one. Default {@link lmdbKeyDirectory}.
   */
  keys?: string | KeyDirectory;
  /**
   * Seed of this DP's prover key (32 octets) for a new key directory. A directory keeps the key
   * it was created with; opening it with a different seed fails with `ERR_STORE_PROVER_KEY`.
   */
  proverSeed?: Uint8Array;
  /** Lifetime of the prover key's AUTHKEY entry in new zones; default 10 years. */
  proverKeyLifetimeSeconds?: number;
  /** How much of each zone's journal to keep; default `JOURNAL_MAX_ENTRIES`, `JOURNAL_MAX_OCTETS`. */
  journal?: Partial<JournalLimits>;
  /** Where the one-time move of seeds out of an old layout is reported (inline only). */
  log?: Logger;
  /**
   * Where writes run: `'inline'` (default) on the calling thread; `'thread'` on a writer thread
   * of their own (`store-writer.ts`) over the same environment, so that planning, signing and
   * committing a burst of writes never holds up the thread that answers queries. Reads stay on
   * the calling thread either way. A writer thread keeps the system clock: `now` cannot be given.
   */
  writer?: 'inline' | 'thread';
  /**
   * Whether opening brings every zone's keys up to date (`refreshKeys`, a write): true by
   * default. False for a reader beside the writer (a DP's answer workers), which must not write.
   */
  refreshKeys?: boolean;
}

/**
 * What the store's own thread hands its writer thread (`store-writer.ts`) as `workerData`: the
 * options to open the same environment with, less the clock (a function does not cross threads)
 * and the writer choice.
 */
export interface StoreWriterData {
  readonly options: Omit<LmdbStoreOptions, 'now' | 'writer'>;
}

/**
 * The key directory of an LMDB store opened without one: a server's, `<server dataDir>/keys`
 * (config `keys.dir`'s default), for a store directory named `store` as `storeDirectory` names
 * it; else `<dataDir>/keys`.
 */
export function lmdbKeyDirectory(dataDir: string): string {
  const resolved = resolve(dataDir);
  return basename(resolved) === 'store'
    ? defaultKeyDirectory(dirname(resolved))
    : join(resolved, 'keys');
}

/**
 * Zones whose key prefix length `#descend` keeps, and whose failed key set `zoneSigners`
 * remembers (each map is emptied when full).
 */
const PREFIX_LENGTH_ENTRIES = 1024;
/**
 * Seconds `zoneSigners` answers a zone whose key set did not load (a key missing from the key
 * directory) without trying again: each try reloads the key directory (a listing and a read of
 * each file), and answering asks on every answer-cache miss, so a flood of new names would
 * otherwise turn into as many directory reads. Writes always try again (`#signing`).
 */
export const KEY_SET_RETRY_SECONDS = 1;

/** Decoded nodes kept for reuse (see `#decoded`). */
const DECODED_NODE_CACHE_ENTRIES = 4096;

interface DecodedNode {
  /** The stored bytes the entry was decoded from. */
  raw: Buffer;
  node: StoredNode;
  view: ZoneNode;
}

/** The `meta` key of the write counter, and its size: 2^48 writes do not wrap in practice. */
const GENERATION_KEY = 'generation';
const GENERATION_OCTETS = 6;

/** A generation as 6 big-endian octets: the `meta` value and the `changes` key. */
function generationKey(generation: number): Buffer {
  const out = Buffer.alloc(GENERATION_OCTETS);
  out.writeUIntBE(((generation % 2 ** 48) + 2 ** 48) % 2 ** 48, 0, GENERATION_OCTETS);
  return out;
}

/** A replay record as stored: its key, value and expiry, encoded before anything is written. */
interface EncodedReplayRecord {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly until: number;
}

function encodeReplayRecord(record: ReplayRecord): EncodedReplayRecord {
  return { key: replayKey(record), value: encodeReplayValue(record), until: record.until };
}

/**
 * One zone of a group commit (`#runGroup`): its writes so far, its signer, and the results of
 * the writes it holds.
 */
interface GroupZone {
  readonly overlay: ZoneOverlay;
  readonly sign: () => ZoneSigner;
  readonly members: Array<{ index: number; result: (serial: number) => unknown }>;
}

/** Version of the layout above, kept in `meta` as `format`. */
const FORMAT_VERSION = 5;
/** The layout before the `cuts` table; opening such a directory builds it. */
const FORMAT_WITHOUT_CUTS = 4;
/** The layout that kept seeds in `zones` and `meta`; opening it moves them to the key directory. */
const FORMAT_WITH_SEEDS = 3;
/** The layout before the `replay` table; opening such a directory adds the table. */
const FORMAT_WITHOUT_REPLAY = 1;
/** The layout before the `nsec3` and `journal` tables; opening such a directory adds them. */
const FORMAT_WITHOUT_JOURNAL = 2;
/** Nodes read per step of `resign`'s walk, so one step never blocks long. */
const RESIGN_BATCH = 256;
/** Entries read from each table per step of a zone stream. */
const STREAM_READ_ENTRIES = 256;

/**
 * Zone streams (`streamZone`) one LMDB store runs at once. Each holds a read transaction, which
 * takes a reader slot (126 by default) and keeps the pages of its snapshot from being reused
 * while it lasts; past the bound a stream fails at once with `ERR_STORE_BUSY`.
 */
export const STREAM_MAX_OPEN = 16;

/**
 * Reader slots of the store's lock file (LMDB's default is 126): each process and thread that
 * reads takes one, and each zone stream one more. A DP with 64 answer workers, each holding
 * transfers, and a writer with {@link STREAM_MAX_OPEN} streams needs more than the default. The
 * process that creates the lock file sizes it (32 KiB at this count), so every open asks for the
 * same.
 */
export const LMDB_MAX_READERS = 512;
/** Named tables the environment may hold: the eight of the layout, and room for more. */
export const LMDB_MAX_TABLES = 16;
/** The value of a `cuts` entry (the key says it all). */
const CUT_VALUE = Buffer.of(1);
/** The type code of NS (RFC 1035 §3.2.2). */
const NS_CODE = 2;
/**
 * Seconds a zone stream may hold its read transaction: a transfer to a secondary that stopped
 * reading must not keep its snapshot (and the file's growth) forever. Past it the stream fails
 * with `ERR_STORE_BUSY`, and a stream left unfinished releases its transaction anyway.
 */
export const STREAM_MAX_SECONDS = 3600;

/**
 * Opens (creating when needed) the LMDB store in `options.dataDir`. Rejects with `StoreError`:
 * `ERR_STORE_IO` when the directory cannot be used, `ERR_STORE_CORRUPT` for a foreign layout,
 * `ERR_STORE_PROVER_KEY` for a prover seed that differs from the stored one.
 */
export async function openLmdbStore(options: LmdbStoreOptions): Promise<DiscoveryStore> {
  if (options.writer === 'thread') return openThreadedStore(options);
  return openInlineStore(options);
}

/** The store of {@link openLmdbStore} with its writes on the calling thread. */
async function openInlineStore(options: LmdbStoreOptions, refresh = true): Promise<LmdbStore> {
  const policy = signatureValidityPolicy(options.signatureValidity);
  if (
    options.proverSeed !== undefined &&
    !(options.proverSeed instanceof Uint8Array && options.proverSeed.length === 32)
  ) {
    throw new StoreError('ERR_STORE_PROVER_KEY', 'proverSeed must be 32 octets (an Ed25519 seed)');
  }
  let tables: Tables;
  try {
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    chmodSync(options.dataDir, 0o700);
    const env = open({
      path: options.dataDir,
      noSubdir: false,
      maxDbs: LMDB_MAX_TABLES,
      maxReaders: LMDB_MAX_READERS,
    });
    for (const file of ['data.mdb', 'lock.mdb']) {
      const path = join(options.dataDir, file);
      if (existsSync(path)) chmodSync(path, 0o600);
    }
    tables = {
      env,
      nodes: env.openDB<Buffer, Buffer>({
        name: 'nodes',
        encoding: 'binary',
        keyEncoding: 'binary',
      }),
      zones: env.openDB<Buffer, string>({ name: 'zones', encoding: 'binary' }),
      meta: env.openDB<Buffer, string>({ name: 'meta', encoding: 'binary' }),
      changes: env.openDB<Buffer, Buffer>({
        name: 'changes',
        encoding: 'binary',
        keyEncoding: 'binary',
      }),
      replay: env.openDB<Buffer, Buffer>({
        name: 'replay',
        encoding: 'binary',
        keyEncoding: 'binary',
      }),
      nsec3: env.openDB<Buffer, Buffer>({
        name: 'nsec3',
        encoding: 'binary',
        keyEncoding: 'binary',
      }),
      journal: env.openDB<Buffer, Buffer>({
        name: 'journal',
        encoding: 'binary',
        keyEncoding: 'binary',
      }),
      cuts: env.openDB<Buffer, Buffer>({
        name: 'cuts',
        encoding: 'binary',
        keyEncoding: 'binary',
      }),
    };
  } catch (cause) {
    throw new StoreError('ERR_STORE_IO', `cannot open the LMDB store in ${options.dataDir}`, {
      cause,
    });
  }
  const env = tables.env;
  try {
    const journal = journalLimits(options.journal);
    const now = options.now ?? systemClock;
    const keys = await initialize(tables, options, now());
    const store = new LmdbStore(tables, {
      now,
      policy,
      keys,
      proverLifetime: options.proverKeyLifetimeSeconds ?? DEFAULT_PROVER_KEY_LIFETIME_SECONDS,
      journal,
    });
    if (refresh && options.refreshKeys !== false) await store.refreshAll();
    return store;
  } catch (error) {
    await env.close();
    throw error;
  }
}

interface Tables {
  env: RootDatabase;
  nodes: Database<Buffer, Buffer>;
  zones: Database<Buffer, string>;
  meta: Database<Buffer, string>;
  changes: Database<Buffer, Buffer>;
  replay: Database<Buffer, Buffer>;
  nsec3: Database<Buffer, Buffer>;
  journal: Database<Buffer, Buffer>;
  cuts: Database<Buffer, Buffer>;
}

interface Settings {
  now: Clock;
  policy: SignatureValidityPolicy;
  keys: KeyDirectory;
  proverLifetime: number;
  journal: JournalLimits;
}

/**
 * Checks the layout version, upgrades an older one, and opens the key directory. Seeds of a
 * layout up to 3 (zone keys in `zones`, the prover key in `meta`) go to the key directory first
 * (each zone's unless the directory has keys for it), and only then, in one transaction, are
 * they erased from the store: a crash in between leaves them in both, and the next open ends
 * the move.
 */
async function initialize(
  tables: Tables,
  options: LmdbStoreOptions,
  now: number,
): Promise<KeyDirectory> {
  const format = tables.meta.get('format');
  const upgrading =
    format !== undefined && format.length === 1 && (format[0] ?? 0) < FORMAT_VERSION;
  const storedProver = tables.meta.get('prover');
  if (
    storedProver !== undefined &&
    options.proverSeed !== undefined &&
    !Buffer.from(options.proverSeed).equals(storedProver)
  ) {
    throw new StoreError(
      'ERR_STORE_PROVER_KEY',
      'the data directory holds a different prover key than the configured seed',
    );
  }
  const proverSeed =
    storedProver === undefined ? options.proverSeed : Uint8Array.from(storedProver);
  let keys: KeyDirectory;
  try {
    keys =
      typeof options.keys === 'object'
        ? options.keys
        : openKeyDirectory(options.keys ?? lmdbKeyDirectory(options.dataDir), {
            ...(proverSeed === undefined ? {} : { proverSeed }),
          });
  } catch (error) {
    throw keyDirectoryFault(error);
  }
  checkProverAgainst(keys, proverSeed);
  const seeds: Array<{ origin: string; seed: Uint8Array }> = [];
  if (upgrading) {
    for (const { key, value } of tables.zones.getRange()) {
      if (decodeSigningRecord(key, value) === undefined) {
        seeds.push({ origin: key, seed: Uint8Array.from(value) });
      }
    }
    for (const { origin, seed } of seeds) await migrateZoneSeed(keys, origin, seed, now);
  }
  const result = await tables.env.childTransaction(() => {
    const format = tables.meta.get('format');
    if (format === undefined) {
      if (tables.zones.getKeysCount() > 0) return corrupt('zones without a format version');
      tables.meta.putSync('format', Buffer.of(FORMAT_VERSION));
    } else if (
      format.length === 1 &&
      (format[0] === FORMAT_WITHOUT_REPLAY ||
        format[0] === FORMAT_WITHOUT_JOURNAL ||
        format[0] === FORMAT_WITH_SEEDS ||
        format[0] === FORMAT_WITHOUT_CUTS)
    ) {
      // An upgrade: the tables a layout lacked were opened (so created, empty) above; the
      // chains kept in `nodes` move to `nsec3`; the seeds (now in the key directory) go; the
      // zone cuts are indexed.
      if (format[0] === FORMAT_WITHOUT_REPLAY || format[0] === FORMAT_WITHOUT_JOURNAL) {
        moveChains(tables);
      }
      indexCuts(tables);
      for (const { origin, seed } of seeds) {
        const key = createZoneKey(origin, { seed });
        tables.zones.putSync(
          origin,
          encodeSigningRecord(
            signingRecordOf(firstKeySet(key), { pending: 0, earliest: undefined }),
          ),
        );
      }
      tables.meta.removeSync('prover');
      tables.meta.putSync('format', Buffer.of(FORMAT_VERSION));
      return seeds.length > 0 || storedProver !== undefined ? 'moved' : 'upgraded';
    } else if (format.length === 1 && (format[0] ?? 0) > FORMAT_VERSION) {
      return new StoreError(
        'ERR_STORE_NEWER_FORMAT',
        `the data directory has layout version ${format[0]}, written by a newer version of ` +
          `this software; this version reads layouts up to ${FORMAT_VERSION}`,
      );
    } else if (format.length !== 1 || format[0] !== FORMAT_VERSION) {
      return corrupt(`layout version ${format.toString('hex')}, expected ${FORMAT_VERSION}`);
    }
    return 'current';
  });
  if (result instanceof StoreError) throw result;
  await tables.env.flushed;
  if (result === 'moved') {
    // Once: the open that moved them; later opens find nothing to move.
    options.log?.info('keys-moved-to-key-directory', {
      zones: seeds.length,
      prover: storedProver !== undefined,
      dir: keys.dir ?? '',
    });
  }
  return keys;
}

function corrupt(message: string): StoreError {
  return new StoreError('ERR_STORE_CORRUPT', `not a store of this format: ${message}`);
}

/**
 * Moves the NSEC3 chain of every zone that keeps one (NSEC3PARAM at its apex) from `nodes`,
 * where layout 2 kept it, to `nsec3` (inside the upgrade's write transaction).
 */
function moveChains(tables: Tables): void {
  for (const origin of [...tables.zones.getKeys()]) {
    const apex = tables.nodes.get(nodeKey(origin, origin));
    if (apex === undefined || !decodeNode(origin, apex).has('NSEC3PARAM')) continue;
    const moving: Array<{ key: Buffer; value: Buffer }> = [];
    for (const { key, value } of tables.nodes.getRange(belowRange(zonePrefix(origin)))) {
      const name = nodeName(origin, key);
      if (chainLabel(origin, name) !== undefined && decodeNode(name, value).has('NSEC3')) {
        moving.push({ key: Buffer.from(key), value: Buffer.from(value) });
      }
    }
    for (const { key, value } of moving) {
      tables.nodes.removeSync(key);
      tables.nsec3.putSync(key, value);
    }
  }
}

/**
 * The length of the longest prefix of `a` and `b` that ends at a label (an unescaped 0x00,
 * `node-codec.ts`), at least `below` (the zone prefix, which both share).
 */
function sharedLabels(a: Uint8Array, b: Uint8Array, below: number): number {
  const n = Math.min(a.length, b.length);
  let i = below;
  while (i < n && a[i] === b[i]) i++;
  // `i` octets are equal; the prefix ends after the last label end among them.
  for (let end = i; end > below; end--) if (a[end - 1] === 0) return end;
  return below;
}

/** How many labels the node key `key` holds below its zone prefix of `below` octets. */
function labelCount(key: Uint8Array, below: number): number {
  let labels = 0;
  for (let i = below; i < key.length; i++) if (key[i] === 0) labels++;
  return labels;
}

/** The end of the key of the parent of the node whose key is `key[0, end)`, at least `below`. */
function parentEnd(key: Uint8Array, end: number, below: number): number {
  for (let at = end - 1; at > below; at--) if (key[at - 1] === 0) return at;
  return below;
}

/**
 * Fills `cuts` from `nodes` (inside the upgrade's write transaction): every node below its
 * zone's apex that holds NS. Each node's types are read from its encoding without decoding it.
 */
function indexCuts(tables: Tables): void {
  for (const origin of [...tables.zones.getKeys()]) {
    const cuts: Buffer[] = [];
    for (const { key, value } of tables.nodes.getRange(belowRange(zonePrefix(origin)))) {
      if (nodeHolds(value, NS_CODE)) cuts.push(Buffer.from(key));
    }
    for (const key of cuts) tables.cuts.putSync(key, CUT_VALUE);
  }
}

class LmdbStore implements DiscoveryStore {
  readonly #t: Tables;
  readonly #s: Settings;
  /** Key sets by origin, with the signing record they were derived from. */
  readonly #keySets = new Map<string, { raw: Buffer; set: ZoneKeySet }>();
  /** The lowest expiration written per zone since its re-signing pass began (`resign`). */
  readonly #passEarliest = new Map<string, number>();
  readonly #pending = new Set<Promise<unknown>>();
  /** Decoded nodes by key (latin1), least recently used first. */
  readonly #cache = new Map<string, DecodedNode>();
  /** The length of each zone's key prefix (`#descend`), by origin. */
  readonly #prefixLengths = new Map<string, number>();
  /** Zones whose key set did not load for `zoneSigners`: the record it failed on, and when to try again. */
  readonly #signersFailed = new Map<string, { raw: Buffer; retryAt: number }>();
  #closed = false;
  /** Applies and operations waiting for the next group commit. */
  #queued: GroupedWrite[] = [];
  /** Whether a group commit is queued with lmdb-js and has not yet taken `#queued`. */
  #groupQueued = false;
  /** SOA signatures made by this store object (`writeCounts`). */
  readonly #counts: SigningCounts = { soaSignatures: 0 };
  /**
   * What the write being run changed: set by `apply` and `applyOperation` (undefined when no
   * record changed: no generation is counted), `'all'` for every other write.
   */
  #changedNow: ChangedNames | undefined = 'all';
  /** The zone streams running, each with the function that ends its read transaction. */
  readonly #streams = new Set<() => void>();

  constructor(tables: Tables, settings: Settings) {
    this.#t = tables;
    this.#s = settings;
  }

  get keys(): KeyDirectory {
    return this.#s.keys;
  }

  /**
   * `refreshKeys` of every zone, at open. A zone whose keys cannot be refreshed (a key missing
   * from the directory) keeps the set it was signed with; its writes fail until the key is back.
   */
  async refreshAll(): Promise<void> {
    for (const origin of this.listZones()) {
      try {
        await this.refreshKeys(origin);
      } catch (error) {
        if (!(error instanceof StoreError && error.code === 'ERR_STORE_KEY_MISSING')) throw error;
      }
    }
  }

  async refreshKeys(origin: string, now?: number): Promise<{ serial: number; changed: boolean }> {
    this.#open();
    const apex = this.#existing(origin);
    const at = now ?? this.#s.now();
    // Timings may have been changed by another process (`keys roll`, the roller).
    try {
      this.#s.keys.reload();
    } catch (error) {
      throw keyDirectoryFault(error);
    }
    const set = zoneKeySet(this.#s.keys, apex, at);
    return this.#write(() => {
      const before = this.#record(apex);
      if (before === undefined) throw noZoneError(apex);
      const plan = planKeys(this.#reader(apex), set, zoneSigner(set, at, this.#s.policy));
      if (plan.serial !== undefined) this.#commit(apex, plan.writes);
      const after = this.#record(apex) as SigningRecord;
      const next = signingRecordOf(set, { pending: after.pending, earliest: after.earliest });
      const signersChanged =
        next.signers.join(',') !== before.signers.join(',') ||
        next.keyRrsigTags.join(',') !== before.keyRrsigTags.join(',');
      if (signersChanged) Object.assign(next, this.#countZone(apex, next));
      this.#t.zones.putSync(apex, encodeSigningRecord(next));
      if (plan.serial === undefined && !signersChanged) this.#changedNow = undefined;
      return {
        serial: this.zoneInfo(apex)?.serial ?? 0,
        changed: plan.serial !== undefined || signersChanged,
      };
    });
  }

  signatureStatus(origin: string): SignatureStatus | undefined {
    this.#open();
    const apex = ownerOrUndefined(origin);
    const record = apex === undefined ? undefined : this.#record(apex);
    if (record === undefined) return undefined;
    return {
      earliestExpiry: record.earliest,
      pendingResign: record.pending,
      signers: [...record.signers],
    };
  }

  zoneSigners(origin: string): readonly ZoneKey[] {
    this.#open();
    const apex = ownerOrUndefined(origin);
    if (apex === undefined) return [];
    // Answering asks on every answer-cache miss: a key set that did not load (a key missing from
    // the key directory, whose every try reloads the directory) is not tried again for
    // KEY_SET_RETRY_SECONDS while the zone's signing record stays the same.
    const failed = this.#signersFailed.get(apex);
    if (failed !== undefined && this.#s.now() < failed.retryAt) {
      const value = this.#t.zones.get(apex);
      if (value !== undefined && failed.raw.equals(value)) return [];
    }
    try {
      const signers = this.#keySet(apex)?.signers ?? [];
      this.#signersFailed.delete(apex);
      return signers;
    } catch {
      const value = this.#t.zones.get(apex);
      if (value !== undefined) {
        if (this.#signersFailed.size >= PREFIX_LENGTH_ENTRIES) this.#signersFailed.clear();
        this.#signersFailed.set(apex, {
          raw: Buffer.from(value),
          retryAt: this.#s.now() + KEY_SET_RETRY_SECONDS,
        });
      }
      return [];
    }
  }

  /** The zone's signing record, undefined when there is no such zone. */
  #record(origin: string): SigningRecord | undefined {
    const value = this.#t.zones.get(origin);
    if (value === undefined) return undefined;
    return (
      decodeSigningRecord(origin, value) ?? {
        signers: [],
        keys: [],
        keyRrsigTags: [],
        pending: 0,
        earliest: undefined,
      }
    );
  }

  /**
   * The key set the zone is signed with (its signing record's keys, from the key directory),
   * undefined for no such zone. Throws `ERR_STORE_KEY_MISSING` when a key is not there.
   */
  #keySet(origin: string): ZoneKeySet | undefined {
    const value = this.#t.zones.get(origin);
    if (value === undefined) return undefined;
    const raw = Buffer.from(value);
    const cached = this.#keySets.get(origin);
    if (cached !== undefined && cached.raw.equals(raw)) return cached.set;
    const record = this.#record(origin) as SigningRecord;
    const set = keySetOfRecord(this.#s.keys, origin, record);
    this.#keySets.set(origin, { raw, set });
    return set;
  }

  /** The zone's key set for a write: throws `ERR_STORE_NO_ZONE` or `ERR_STORE_KEY_MISSING`. */
  #signing(origin: string): ZoneKeySet {
    const set = this.#keySet(origin);
    if (set === undefined) throw noZoneError(origin);
    if (set.signers.length === 0) {
      throw new StoreError('ERR_STORE_KEY_MISSING', `zone ${origin} has no key to sign with`);
    }
    return set;
  }

  /** Counts the zone's RRsets not signed as `record` says, and its earliest expiration. */
  #countZone(
    origin: string,
    record: SigningRecord,
  ): { pending: number; earliest: number | undefined } {
    const checker = recordChecker(record);
    let pending = 0;
    let earliest: number | undefined;
    const range = zoneRange(origin);
    for (const table of [this.#t.nodes, this.#t.nsec3]) {
      for (const { key, value } of table.getRange(range)) {
        const node = decodeNode(nodeName(origin, key), value);
        pending += staleRRsets(node, checker);
        for (const rrset of node.values()) {
          const e = earliestExpiration(rrset.signatures);
          if (e !== undefined && (earliest === undefined || e < earliest)) earliest = e;
        }
      }
    }
    return { pending, earliest };
  }

  listZones(): string[] {
    this.#open();
    return [...this.#t.zones.getKeys()].sort();
  }

  async addZone(init: ZoneInit): Promise<ZoneInfo> {
    this.#open();
    const origin = zoneOrigin(init.origin, 'ERR_STORE_BAD_ZONE');
    const exists = (): void => {
      if (this.#t.zones.get(origin) !== undefined) {
        throw new StoreError('ERR_STORE_ZONE_EXISTS', `the store already holds zone ${origin}`);
      }
    };
    exists();
    const key = firstKey(origin, init.keySeed);
    const keySet = firstKeySet(key);
    const now = this.#s.now();
    const apex = initialZone(init, {
      dnskeys: keySet.dnskeys,
      proverPublicKey: this.#s.keys.proverKey().publicKey,
      proverNotAfter: Math.min(now + this.#s.proverLifetime, 2 ** 32 - 1),
      sign: zoneSigner(keySet, now, this.#s.policy),
    });
    // The key is on disk before the zone exists: a zone is never without its key. A zone that
    // another writer created meanwhile keeps its own keys: this one's file goes again.
    const hadKeys = this.#s.keys.zoneKeys(origin).length > 0;
    await saveFirstKey(this.#s.keys, key, now);
    try {
      return await this.#write(() => {
        exists();
        this.#t.nodes.putSync(nodeKey(origin, origin), encodeNode(apex));
        const earliest = earliestOf(apex);
        this.#t.zones.putSync(
          origin,
          encodeSigningRecord(signingRecordOf(keySet, { pending: 0, earliest })),
        );
        return {
          origin,
          serial: 1,
          keyTag: key.keyTag,
          publicKey: key.keyPair.publicKey,
          nsec3: false,
        };
      });
    } catch (error) {
      if (!hadKeys) {
        await this.#s.keys.deleteZoneKey(origin, key.keyTag).catch(() => undefined);
      }
      throw error;
    }
  }

  async removeZone(origin: string): Promise<void> {
    return this.#write(() => {
      const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
      if (this.#t.zones.get(apex) === undefined) throw noZoneError(apex);
      for (const table of [this.#t.nodes, this.#t.nsec3, this.#t.cuts]) {
        for (const key of [...table.getKeys(zoneRange(apex))]) table.removeSync(key);
      }
      this.#clearJournal(apex);
      this.#t.zones.removeSync(apex);
      this.#keySets.delete(apex);
    });
    try {
      await this.#s.keys.removeZone(zoneOrigin(origin, 'ERR_STORE_NO_ZONE'));
    } catch (error) {
      throw keyDirectoryFault(error);
    }
  }

  zoneInfo(origin: string): ZoneInfo | undefined {
    this.#open();
    const apex = ownerOrUndefined(origin);
    const record = apex === undefined ? undefined : this.#record(apex);
    if (apex === undefined || record === undefined) return undefined;
    const node = this.#node(apex, apex);
    const soa = node?.get('SOA')?.records[0];
    // The first current signer's DNSKEY, found in the apex DNSKEY RRset by its tag.
    const dnskeys = (node?.get('DNSKEY')?.records ?? []).flatMap((rr) =>
      rr.type === 'DNSKEY' ? [rr.data] : [],
    );
    const first = record.signers[0];
    const dnskey = dnskeys.find((d) => computeKeyTag(d) === first) ?? dnskeys[0];
    return {
      origin: apex,
      serial: soa?.type === 'SOA' ? soa.data.serial : 0,
      keyTag: dnskey === undefined ? 0 : computeKeyTag(dnskey),
      publicKey: dnskey?.publicKey ?? new Uint8Array(32),
      nsec3: node?.has('NSEC3PARAM') === true,
    };
  }

  findZone(name: string): string | undefined {
    this.#open();
    const owner = ownerOrUndefined(name);
    if (owner === undefined) return undefined;
    if (owner.includes('\\')) {
      for (let n: string | undefined = owner; n !== undefined; n = parentName(n)) {
        if (this.#t.zones.get(n) !== undefined) return n;
      }
      return undefined;
    }
    // Without escapes every dot ends a label, so each ancestor is a suffix of the name.
    for (let at = 0; at < owner.length;) {
      const n = owner.slice(at);
      if (this.#t.zones.get(n) !== undefined) return n;
      const dot = owner.indexOf('.', at);
      if (dot < 0) break;
      at = dot + 1;
    }
    return owner !== '.' && this.#t.zones.get('.') !== undefined ? '.' : undefined;
  }

  zoneView(origin: string): ZoneView | undefined {
    this.#open();
    const apex = ownerOrUndefined(origin);
    if (apex === undefined || this.#t.zones.get(apex) === undefined) return undefined;
    return {
      origin: apex,
      node: (name) => {
        const owner = ownerOrUndefined(name);
        if (owner === undefined || !isSubdomain(owner, apex)) return undefined;
        return this.#decoded(apex, owner)?.view;
      },
      hasDescendants: (name) => {
        const owner = ownerOrUndefined(name);
        if (owner === undefined || !isSubdomain(owner, apex)) return false;
        const range = belowRange(nodeKey(apex, owner));
        for (const _ of this.#t.nodes.getKeys({ ...range, limit: 1 })) return true;
        return false;
      },
      descend: (name) => {
        const owner = ownerOrUndefined(name);
        if (owner === undefined || !isSubdomain(owner, apex)) return {};
        return this.#descend(apex, owner, name);
      },
    };
  }

  /**
   * `ZoneView.descend` with one search of the zone cuts: the key of `owner` (`name` as the
   * store spells it; names in the result are spelt as `name` is, as a walk down gives them) is
   * built once, the cut nearest the origin on the way down to it is found in `cuts`
   * (`#highestCut`), and the node at the name is one read. Example, zone `4.4.e164.mimi.arpa` without delegations, name
   * `3.2.1.4.4.e164.mimi.arpa`: one cursor step in `cuts` finds nothing, then one read of
   * `nodes` — where reading each name on the way (`1.4.4…`, `2.1.4.4…`) would take three.
   */
  #descend(origin: string, owner: string, name: string): Descent {
    const key = nodeKey(origin, owner);
    let below = this.#prefixLengths.get(origin);
    if (below === undefined) {
      below = zonePrefix(origin).length;
      if (this.#prefixLengths.size >= PREFIX_LENGTH_ENTRIES) this.#prefixLengths.clear();
      this.#prefixLengths.set(origin, below);
    }
    const cut = this.#highestCut(key, below);
    if (cut !== undefined && cut.key.length < key.length) {
      // A cut above the name: the answer is its referral, whatever the name holds. Its name is
      // spelt as the caller spelt the name (its last labels), as a walk down would give it.
      const labels = labelCount(cut.key, below);
      const cutName = namesBelowOrigin(name, origin)[labels - 1] ?? nodeName(origin, cut.key);
      return { cut: { name: cutName, node: this.#decodedAt(cut.key, cutName, cut.value).view } };
    }
    const value = cut?.value ?? this.#t.nodes.get(key);
    if (value === undefined) return {};
    const node = this.#decodedAt(key, owner, value).view;
    return owner !== origin && node.rrsets.has('NS') ? { cut: { name, node }, node } : { node };
  }

  /**
   * The zone cut nearest the origin at or above the node key `key` (a prefix of it, or itself),
   * whose zone prefix is `below` octets long: its key and its node as stored. Each search takes
   * the greatest key in `cuts` at or before a bound: one that is a prefix of `key` ending at a
   * label is a cut on the way (then the search goes on above it, for a higher one); any other
   * shares with `key` at most its first labels, and no cut on the way lies between them, so the
   * bound becomes that shared part. Bounded: every search shortens the bound by at least one
   * label. Without delegations in the zone, the first search finds nothing. A cut found is
   * checked against its node (NS there): a stale entry costs a read, never a wrong answer. An
   * entry missing would hide its cut; the index is written in the transaction that writes the
   * node, and a process of a layout before it must not write to the directory (operations.md
   * §6.4).
   */
  #highestCut(key: Buffer, below: number): { key: Buffer; value: Buffer } | undefined {
    const apex = key.subarray(0, below);
    let bound = key;
    let highest: { key: Buffer; value: Buffer } | undefined;
    while (bound.length > below) {
      let found: Buffer | undefined;
      for (const k of this.#t.cuts.getKeys({ start: bound, end: apex, reverse: true, limit: 1 })) {
        found = k;
      }
      if (found === undefined) break;
      const shared = sharedLabels(found, key, below);
      let next: number;
      if (shared === found.length) {
        const candidate = key.subarray(0, shared);
        const value = this.#t.nodes.get(candidate);
        if (value !== undefined && nodeHolds(value, NS_CODE)) highest = { key: candidate, value };
        next = parentEnd(key, shared, below);
      } else {
        next = shared;
      }
      // Never the case (see above); a guard against looping on a key that breaks the encoding.
      if (next >= bound.length) break;
      bound = key.subarray(0, next);
    }
    return highest;
  }

  zoneKey(origin: string): ZoneKey | undefined {
    return this.zoneSigners(origin)[0];
  }

  proverKey(): Ed25519KeyPair {
    this.#open();
    return this.#s.keys.proverKey();
  }

  generation(): number {
    const stored = this.#t.meta.get(GENERATION_KEY);
    return stored === undefined ? 0 : stored.readUIntBE(0, GENERATION_OCTETS);
  }

  changesSince(generation: number): StoreChanges {
    return changesBetween(generation, this.generation(), (g) => {
      const value = this.#t.changes.get(generationKey(g));
      if (value === undefined) return undefined;
      if (value[0] !== 1) return 'all';
      const text = value.toString('utf8', 1);
      return text === '' ? [] : text.split('\n');
    });
  }

  readRRset(origin: string, name: string, type: RRType): ResourceRecord[] {
    this.#open();
    const apex = this.#existing(origin);
    const owner = ownerName(name);
    if (!isSubdomain(owner, apex)) {
      throw new StoreError('ERR_STORE_OUT_OF_ZONE', `${owner} is not in zone ${apex}`);
    }
    // The data only: the NSEC3 chain's nodes are not answers.
    return [...(this.#decoded(apex, owner)?.node.get(type)?.records ?? [])];
  }

  readZone(origin: string): ResourceRecord[] {
    this.#open();
    const apex = this.#existing(origin);
    const out: ResourceRecord[] = [];
    for (const node of this.#nodesInOrder(apex, undefined)) out.push(...nodeRecords(node));
    return out;
  }

  streamZone(origin: string): AsyncIterable<readonly ResourceRecord[]> {
    this.#open();
    const apex = this.#existing(origin);
    return { [Symbol.asyncIterator]: () => this.#stream(apex) };
  }

  /**
   * The batches of one zone stream, read through one read transaction (one snapshot) held from
   * the first batch to the last, or until the stream is ended early, the store closes or
   * STREAM_MAX_SECONDS pass (then it fails with `ERR_STORE_BUSY`).
   */
  async *#stream(apex: string): AsyncGenerator<readonly ResourceRecord[]> {
    this.#open();
    if (this.#streams.size >= STREAM_MAX_OPEN) {
      throw new StoreError(
        'ERR_STORE_BUSY',
        `${STREAM_MAX_OPEN} zone streams are running already (STREAM_MAX_OPEN)`,
      );
    }
    const transaction = this.#t.env.useReadTransaction();
    let ended: StoreError | undefined;
    const end = (reason: StoreError): void => {
      if (ended !== undefined) return;
      ended = reason;
      clearTimeout(timer);
      this.#streams.delete(release);
      transaction.done();
    };
    const release = (): void => end(new StoreError('ERR_STORE_CLOSED', 'the store is closed'));
    const expired = (): StoreError =>
      new StoreError(
        'ERR_STORE_BUSY',
        `the zone stream of ${apex} ran past STREAM_MAX_SECONDS (${STREAM_MAX_SECONDS} s)`,
      );
    // Unref'd: a stream nobody finishes must neither keep its snapshot nor the process alive.
    const timer = setTimeout(() => end(expired()), STREAM_MAX_SECONDS * 1000);
    timer.unref();
    this.#streams.add(release);
    const started = this.#s.now();
    try {
      if (this.#t.zones.get(apex, { transaction }) === undefined) throw noZoneError(apex);
      let batch: ResourceRecord[] = [];
      for (const node of this.#nodesInOrder(apex, transaction)) {
        batch.push(...nodeRecords(node));
        if (batch.length < STREAM_BATCH_RECORDS) continue;
        yield batch;
        batch = [];
        if (ended !== undefined) throw ended;
        if (this.#s.now() - started > STREAM_MAX_SECONDS) throw expired();
      }
      if (batch.length > 0) yield batch;
    } finally {
      end(new StoreError('ERR_STORE_CLOSED', 'the zone stream has ended'));
    }
  }

  /**
   * A zone's nodes in canonical order (RFC 4034 §6.1): the `nodes` range merged with the
   * `nsec3` range (both keyed alike), read in steps of STREAM_READ_ENTRIES through
   * `transaction` (or this thread's current snapshot).
   */
  *#nodesInOrder(apex: string, transaction: Transaction | undefined): Generator<StoredNode> {
    const data = this.#entries(this.#t.nodes, apex, transaction);
    const chain = this.#entries(this.#t.nsec3, apex, transaction);
    let a = data.next();
    let b = chain.next();
    while (a.done !== true || b.done !== true) {
      const takeData =
        a.done !== true && (b.done === true || Buffer.compare(a.value.key, b.value.key) < 0);
      const entry = (takeData ? a.value : b.value) as { key: Buffer; value: Buffer };
      yield decodeNode(nodeName(apex, entry.key), entry.value);
      if (takeData) a = data.next();
      else b = chain.next();
    }
  }

  /** The entries of one zone in `table`, in key order, read in steps (keys and values copied). */
  *#entries(
    table: Database<Buffer, Buffer>,
    apex: string,
    transaction: Transaction | undefined,
  ): Generator<{ key: Buffer; value: Buffer }> {
    const range = zoneRange(apex);
    let start = range.start;
    for (let read = STREAM_READ_ENTRIES; read === STREAM_READ_ENTRIES;) {
      read = 0;
      const step: Array<{ key: Buffer; value: Buffer }> = [];
      for (const { key, value } of table.getRange({
        start,
        end: range.end,
        limit: STREAM_READ_ENTRIES,
        ...(transaction === undefined ? {} : { transaction }),
      })) {
        step.push({ key: Buffer.from(key), value: Buffer.from(value) });
        read += 1;
      }
      const last = step.at(-1);
      if (last !== undefined) start = Buffer.concat([last.key, Buffer.of(0)]);
      yield* step;
    }
  }

  async journalSince(origin: string, from: number): Promise<JournalEntry[] | undefined> {
    this.#open();
    const apex = this.#existing(origin);
    const current = this.zoneInfo(apex)?.serial ?? 0;
    if (from === current) return [];
    const head = this.#journalHead(apex);
    if (head.next === head.first) return undefined;
    const last = this.#t.journal.get(journalKey(apex, head.next - 1));
    if (last === undefined || last.readUInt32BE(5) !== current) return undefined;
    // Entries chain one serial to the next, so the entry from `from` is usually found at once;
    // else it is looked for entry by entry (bounded by the journal's length).
    const first = this.#t.journal.get(journalKey(apex, head.first));
    let at: number | undefined;
    if (first !== undefined && Number.isInteger(from) && from >= 0) {
      const guess = head.first + ((from - first.readUInt32BE(1) + 2 ** 32) % 2 ** 32);
      if (
        guess < head.next &&
        this.#t.journal.get(journalKey(apex, guess))?.readUInt32BE(1) === from
      ) {
        at = guess;
      }
    }
    if (at === undefined) {
      for (const { key, value } of this.#t.journal.getRange(journalRange(apex))) {
        if (value.readUInt32BE(1) === from) {
          at = Number(Buffer.from(key).readBigUInt64BE(key.length - 8));
          break;
        }
      }
    }
    if (at === undefined) return undefined;
    const out: JournalEntry[] = [];
    for (const { value } of this.#t.journal.getRange({
      start: journalKey(apex, at),
      end: journalKey(apex, head.next),
    })) {
      out.push(decodeJournalEntry(value));
    }
    return out;
  }

  async setNsec3(origin: string, enabled: boolean): Promise<ApplyResult> {
    this.#open();
    const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
    return this.#write(() => {
      const key = this.#signing(apex);
      const plan = planNsec3(
        this.#reader(apex),
        enabled,
        zoneSigner(key, this.#s.now(), this.#s.policy),
      );
      if (plan.serial === undefined) {
        this.#changedNow = undefined;
        return { serial: this.zoneInfo(apex)?.serial ?? 0 };
      }
      this.#commit(apex, plan.writes);
      return { serial: plan.serial };
    });
  }

  async apply(origin: string, changes: readonly RRsetChange[]): Promise<ApplyResult> {
    this.#open();
    const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
    // Checks that need no data run before the transaction, so bad input never queues a write.
    const normalized = normalizeChanges(apex, changes);
    return (await this.#grouped(apex, applyPlan(normalized))) as ApplyResult;
  }

  async applyOperation(origin: string, operation: StoreOperation): Promise<OperationOutcome> {
    this.#open();
    const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
    // Checks that need no data run before the transaction, so bad input never queues a write.
    const prepared = prepareOperation(apex, operation);
    // Planned inside the write transaction: over the latest committed data and the writes of
    // the group before it.
    return (await this.#grouped(apex, operationPlan(prepared))) as OperationOutcome;
  }

  /** SOA signatures this store object made since it opened: one per signer per serial step. */
  writeCounts(): StoreWriteCounts {
    return { ...this.#counts };
  }

  /** Queues an apply or an operation of zone `apex` for the next group commit. */
  #grouped(apex: string, plan: GroupedWrite['plan']): Promise<unknown> {
    const write = new Promise((resolve, reject) => {
      this.#queued.push({ apex, plan, resolve, reject });
      this.#scheduleGroup();
    });
    // `close` waits for it, queued or running, as for every write it accepted.
    this.#pending.add(write);
    const forget = (): void => {
      this.#pending.delete(write);
    };
    write.then(forget, forget);
    return write;
  }

  /**
   * Queues one group commit with lmdb-js unless one is queued that has not started: that one
   * takes every write queued until it starts (at most `GROUP_MAX_WRITES`).
   */
  #scheduleGroup(): void {
    if (this.#groupQueued || this.#queued.length === 0) return;
    this.#groupQueued = true;
    let taken: GroupedWrite[] | undefined;
    // Accepted while the store was open: runs even if `close` began meanwhile (which waits).
    const group = this.#write(() => {
      this.#groupQueued = false;
      taken = this.#queued.splice(0, GROUP_MAX_WRITES);
      // The rest go to the next group, queued behind this one once this callback has returned
      // (lmdb-js would nest a child transaction queued from inside it).
      if (this.#queued.length > 0) queueMicrotask(() => this.#scheduleGroup());
      return this.#runGroup(taken);
    }, true);
    group.then(
      (settled) => {
        settled.forEach((result, i) => {
          const write = (taken as GroupedWrite[])[i] as GroupedWrite;
          if (result.ok) write.resolve(result.value);
          else write.reject(result.error);
        });
      },
      (error: unknown) => {
        if (taken === undefined) {
          // The transaction never started: what waits for it fails with it.
          this.#groupQueued = false;
          taken = this.#queued.splice(0);
        }
        for (const write of taken) write.reject(error);
      },
    );
  }

  /**
   * Plans the writes of one group in order, each over its zone as the ones before it left it
   * (an overlay, `zoneOverlay`), then completes each zone changed: one serial step and SOA
   * signature (`planSerial`), committed with one journal entry. Runs inside the group's child
   * transaction. A write whose planning throws adds nothing and settles with its error: all
   * that can fail for one write alone (planning, encoding its replay records) runs before any
   * of it is stored. Storing can then fail only for the store's own reasons (a full map, which
   * leaves the LMDB transaction unusable anyway), and a zone that cannot be completed
   * (`planSerial` throws: its SOA is gone, a fault) likewise: either throws, which drops the
   * whole child transaction, and every write of the group rejects with that error. So a write
   * that rejects has changed nothing.
   */
  #runGroup(
    group: readonly GroupedWrite[],
  ): Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> {
    const now = this.#s.now();
    const settled: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    const zones = new Map<string, GroupZone>();
    const changed = changedUnion();
    group.forEach((write, index) => {
      let zone: GroupZone | undefined;
      let plan: ReturnType<GroupedWrite['plan']>;
      let replay: EncodedReplayRecord[];
      try {
        zone = zones.get(write.apex);
        if (zone === undefined) {
          const keys = this.#signing(write.apex);
          let signer: ZoneSigner | undefined;
          zone = {
            overlay: zoneOverlay(this.#reader(write.apex)),
            sign: () =>
              (signer ??= countingSigner(zoneSigner(keys, now, this.#s.policy), this.#counts)),
            members: [],
          };
          zones.set(write.apex, zone);
        }
        plan = write.plan(zone.overlay, this.#replayReader(), zone.sign);
        replay = plan.records.map(encodeReplayRecord);
      } catch (error) {
        settled[index] = { ok: false, error };
        return;
      }
      // Stored at once, so that the next write of the group sees this one's replay records (a
      // message sent twice in one group is a replay too); a failure here is the store's, and
      // fails the group (see above).
      zone.overlay.merge(plan.writes);
      for (const record of replay) this.#putReplay(record);
      changed.add(plan.changed);
      zone.members.push({ index, result: (serial) => plan.result(serial) });
      settled[index] = { ok: true, value: undefined };
    });
    for (const [apex, zone] of zones) {
      let serial = zoneSerial(zone.overlay);
      if (zone.overlay.writes.size > 0) {
        const plan = planSerial(this.#reader(apex), zone.overlay.writes, zone.sign());
        this.#commit(apex, plan.writes);
        serial = plan.serial;
        // The apex changed with its SOA.
        changed.add([apex]);
      }
      for (const member of zone.members) {
        settled[member.index] = { ok: true, value: member.result(serial) };
      }
    }
    this.#changedNow = changed.names;
    return settled;
  }

  replayRecords(limit?: number): ReplayRecord[] {
    this.#open();
    const out: ReplayRecord[] = [];
    for (const { key, value } of this.#t.replay.getRange({
      ...RECORDS_RANGE,
      ...(limit === undefined ? {} : { limit }),
    })) {
      out.push(decodeReplayRecord(key, value));
    }
    return out;
  }

  /**
   * Renews this thread's read snapshot, so that the next read sees every commit made so far by
   * any thread or process (lmdb-js renews it by itself only after its own commits).
   */
  renewReads(): void {
    if (!this.#closed) this.#t.env.resetReadTxn();
  }

  async resign(before?: number): Promise<number> {
    this.#open();
    const now = this.#s.now();
    const limit = before ?? now + this.#s.policy.refreshBeforeSeconds;
    await this.#pruneReplay(now);
    let count = 0;
    for (const apex of this.listZones()) {
      try {
        this.#signing(apex);
      } catch (error) {
        // A zone whose key is missing cannot be re-signed; the others still are.
        if (error instanceof StoreError && error.code === 'ERR_STORE_KEY_MISSING') continue;
        throw error;
      }
      count += await this.#resignZone(apex, limit, now);
    }
    return count;
  }

  /**
   * One walk over a zone's nodes, then its chain's, RESIGN_BATCH at a time (outside any
   * transaction), for the MAP RRsets that may hold an expired mapping and the names with a
   * signature due before `limit`. The expired mappings are deleted first (R9), the due RRsets
   * then renewed, each in writes of at most RESIGN_MAX_RRSETS_PER_WRITE RRsets planned again
   * inside their transaction (`expiredMappingsChange` decodes each mapping strictly there).
   */
  async #resignZone(apex: string, limit: number, now: number): Promise<number> {
    let count = 0;
    let expired: string[] = [];
    let due: string[] = [];
    let dueRRsets = 0;
    const dropExpired = async (): Promise<void> => {
      const names = expired;
      expired = [];
      if (names.length === 0) return;
      await this.#write(() => {
        const key = this.#keySet(apex);
        const read = this.#reader(apex);
        const changes = names.flatMap((name) => expiredMappingsChange(read, name, now) ?? []);
        if (key === undefined || changes.length === 0) {
          this.#changedNow = undefined;
          return;
        }
        const plan = planApply(read, changes, zoneSigner(key, now, this.#s.policy));
        this.#commit(apex, plan.writes);
        this.#changedNow = changedNames(changes, plan.writes.keys());
      });
    };
    const renew = async (all: boolean): Promise<void> => {
      while (due.length > 0 && (all || dueRRsets >= RESIGN_MAX_RRSETS_PER_WRITE)) {
        // What is deleted need not be renewed first.
        await dropExpired();
        const names = due;
        const plan = await this.#write(() => {
          const key = this.#keySet(apex);
          if (key === undefined) return { count: 0, done: names.length };
          const planned = planResign(
            this.#reader(apex),
            names,
            limit,
            zoneSigner(key, now, this.#s.policy),
          );
          if (planned.count === 0) this.#changedNow = undefined;
          else this.#commit(apex, planned.writes);
          return planned;
        });
        count += plan.count;
        due = names.slice(Math.max(1, plan.done));
        dueRRsets = 0;
        for (const name of due) dueRRsets += this.#dueRRsets(apex, name, limit);
      }
    };
    // What the walk finds: the earliest expiration among the RRsets this pass leaves alone.
    const current = this.#keySet(apex);
    if (current === undefined) return 0;
    const checker = zoneSigner(current, now, this.#s.policy);
    let untouched: number | undefined;
    this.#passEarliest.delete(apex);
    const range = zoneRange(apex);
    for (const table of [this.#t.nodes, this.#t.nsec3]) {
      let start = range.start;
      // Bounded: each step moves `start` past the keys it read, over a finite range.
      for (let scanned = RESIGN_BATCH; scanned === RESIGN_BATCH;) {
        scanned = 0;
        let last: Buffer | undefined;
        for (const { key, value } of table.getRange({
          start,
          end: range.end,
          limit: RESIGN_BATCH,
        })) {
          scanned += 1;
          last = Buffer.from(key);
          const name = nodeName(apex, key);
          const node = decodeNode(name, value);
          if (mayHoldExpiredMappings(node, now)) expired.push(name);
          const n = dueCount(node, limit, checker);
          for (const rrset of node.values()) {
            const e = earliestExpiration(rrset.signatures);
            if (e !== undefined && e >= limit && (untouched === undefined || e < untouched)) {
              untouched = e;
            }
          }
          if (n === 0) continue;
          due.push(name);
          dueRRsets += n;
        }
        if (last !== undefined) start = Buffer.concat([last, Buffer.of(0)]);
        if (expired.length >= RESIGN_MAX_RRSETS_PER_WRITE) await dropExpired();
        await renew(false);
      }
    }
    await dropExpired();
    await renew(true);
    // Every RRSIG has now been seen or written: the earliest expiration is taken again exactly
    // (those this pass left alone, and those written since it began), in one small write that
    // bumps no serial.
    const written = this.#passEarliest.get(apex);
    this.#passEarliest.delete(apex);
    await this.#write(() => {
      this.#changedNow = undefined;
      const record = this.#record(apex);
      if (record === undefined) return;
      const earliest =
        untouched === undefined
          ? written
          : written === undefined
            ? untouched
            : Math.min(untouched, written);
      this.#t.zones.putSync(apex, encodeSigningRecord({ ...record, earliest }));
    });
    return count;
  }

  /** How many RRsets of a node are due for re-signing. */
  #dueRRsets(apex: string, name: string, limit: number): number {
    const node = this.#node(apex, name);
    const set = this.#keySet(apex);
    if (node === undefined || set === undefined) return 0;
    return dueCount(node, limit, zoneSigner(set, 0, this.#s.policy));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // A running stream's read transaction would hold the environment open.
    for (const release of [...this.#streams]) release();
    await Promise.allSettled([...this.#pending]);
    await this.#t.env.flushed;
    await this.#t.env.close();
  }

  #open(): void {
    if (this.#closed) throw new StoreError('ERR_STORE_CLOSED', 'the store is closed');
  }

  /**
   * Deletes the anti-replay records whose time has passed at `now`, REPLAY_PRUNE_BATCH per
   * transaction, through the expiry index: the work is proportional to what expired. Bounded:
   * each step deletes the index entries it read, or stops.
   */
  async #pruneReplay(now: number): Promise<void> {
    for (let pruned = REPLAY_PRUNE_BATCH; pruned === REPLAY_PRUNE_BATCH;) {
      pruned = await this.#write(() => {
        // Nothing any reader of the zones sees changes: no generation is counted.
        this.#changedNow = undefined;
        let n = 0;
        // Read in full before anything is deleted, the keys copied out of lmdb-js's buffers.
        const expired = Array.from(
          this.#t.replay.getKeys({ ...expiredRange(now), limit: REPLAY_PRUNE_BATCH }),
          (key) => Buffer.from(key),
        );
        for (const indexKey of expired) {
          const recordKey = recordKeyOfExpiry(indexKey);
          const value = this.#t.replay.get(recordKey);
          // A record kept longer since has a later index entry of its own.
          if (value !== undefined && untilOf(value) < now) this.#t.replay.removeSync(recordKey);
          this.#t.replay.removeSync(indexKey);
          n += 1;
        }
        return n;
      });
    }
  }

  /** Reads anti-replay records (inside a write transaction: the latest committed ones). */
  #replayReader(): ReplayReader {
    const get = (key: Buffer): ReplayRecord | undefined => {
      const value = this.#t.replay.get(key);
      return value === undefined ? undefined : decodeReplayRecord(key, value);
    };
    return replayReader(get);
  }

  /** Writes a record (already merged with the one it replaces) and moves its index entry. */
  #putReplay(record: EncodedReplayRecord): void {
    const { key, value, until } = record;
    const previous = this.#t.replay.get(key);
    if (previous !== undefined) this.#t.replay.removeSync(expiryKey(untilOf(previous), key));
    this.#t.replay.putSync(key, value);
    this.#t.replay.putSync(expiryKey(until, key), EXPIRY_VALUE);
  }

  /**
   * Runs `action` in a child transaction of the next group commit and resolves after the commit
   * is flushed. An exception in `action` aborts its child transaction only, and is rethrown.
   * Rejects at once with `ERR_STORE_CLOSED` once the store is closing, unless `accepted` (the
   * writes of a group, accepted before and waited for by `close`).
   */
  #write<T>(action: () => T, accepted = false): Promise<T> {
    if (!accepted) this.#open();
    const run = async (): Promise<T> => {
      let failure: { error: unknown } | undefined;
      let result: T;
      try {
        result = await this.#t.env.childTransaction(() => {
          try {
            this.#changedNow = 'all';
            const value = action();
            // `apply` and `applyOperation` set it inside `action`, which the checker cannot see.
            const names = this.#changedNow as ChangedNames | undefined;
            if (names === undefined) return value;
            // In the same transaction as the data, so readers see both change at once.
            const next = (this.generation() + 1) % 2 ** 48;
            this.#t.meta.putSync(GENERATION_KEY, generationKey(next));
            this.#t.changes.putSync(
              generationKey(next),
              names === 'all'
                ? Buffer.of(0)
                : Buffer.concat([Buffer.of(1), Buffer.from(names.join('\n'), 'utf8')]),
            );
            this.#t.changes.removeSync(generationKey(next - CHANGE_LOG_ENTRIES));
            return value;
          } catch (error) {
            failure = { error };
            throw error;
          }
        });
      } catch (cause) {
        if (failure !== undefined) throw failure.error;
        throw new StoreError('ERR_STORE_IO', 'the LMDB commit failed', { cause });
      }
      try {
        await this.#t.env.flushed;
      } catch (cause) {
        throw new StoreError('ERR_STORE_IO', 'the LMDB flush failed', { cause });
      }
      return result;
    };
    const promise = run();
    this.#pending.add(promise);
    const forget = (): void => {
      this.#pending.delete(promise);
    };
    promise.then(forget, forget);
    return promise;
  }

  /**
   * Writes one write's nodes (inside its transaction) with its journal entry, derived from the
   * nodes as they are before this commit and as they become. The NSEC3 chain's nodes go to the
   * `nsec3` table, the rest to `nodes`.
   */
  #commit(origin: string, writes: ZoneWrites): void {
    const entry = writes.size === 0 ? undefined : journalEntry(this.#reader(origin), writes);
    this.#trackSignatures(origin, writes);
    for (const [name, node] of writes) {
      const key = nodeKey(origin, name);
      if (chainLabel(origin, name) !== undefined) {
        if (node === undefined) this.#t.nsec3.removeSync(key);
        else this.#t.nsec3.putSync(key, encodeNode(node));
        continue;
      }
      if (node === undefined) this.#t.nodes.removeSync(key);
      else this.#t.nodes.putSync(key, encodeNode(node));
      // The cut index follows the node (the apex's NS is no cut of its own zone).
      if (name !== origin && node?.has('NS') === true) this.#t.cuts.putSync(key, CUT_VALUE);
      else if (name !== origin) this.#t.cuts.removeSync(key);
    }
    if (entry !== undefined) this.#appendJournal(origin, entry);
  }

  /**
   * Keeps the zone's signature counts in its signing record as a write replaces nodes (inside
   * the write's transaction): stale RRsets of the old nodes off, of the new ones on; new
   * expirations lower the earliest.
   */
  #trackSignatures(origin: string, writes: ZoneWrites): void {
    const record = this.#record(origin);
    if (record === undefined || writes.size === 0) return;
    const checker = recordChecker(record);
    let { pending, earliest } = record;
    let lowest = this.#passEarliest.get(origin);
    for (const [name, node] of writes) {
      pending += staleRRsets(node, checker) - staleRRsets(this.#node(origin, name), checker);
      for (const rrset of node?.values() ?? []) {
        const e = earliestExpiration(rrset.signatures);
        if (e === undefined) continue;
        if (earliest === undefined || e < earliest) earliest = e;
        if (lowest === undefined || e < lowest) lowest = e;
      }
    }
    if (lowest !== undefined) this.#passEarliest.set(origin, lowest);
    this.#t.zones.putSync(
      origin,
      encodeSigningRecord({ ...record, pending: Math.max(0, pending), earliest }),
    );
  }

  /** The head of a zone's journal: its first and next sequence numbers and its octets. */
  #journalHead(origin: string): { first: number; next: number; octets: number } {
    const value = this.#t.journal.get(zonePrefix(origin));
    if (value === undefined) return { first: 0, next: 0, octets: 0 };
    return {
      first: Number(value.readBigUInt64BE(0)),
      next: Number(value.readBigUInt64BE(8)),
      octets: Number(value.readBigUInt64BE(16)),
    };
  }

  /**
   * Appends a write's entry to its zone's journal (inside the write's transaction), then drops
   * the oldest entries past the limits. An entry that does not follow the last one starts the
   * journal afresh: entries must chain, or a transfer would skip a change.
   */
  #appendJournal(origin: string, entry: JournalEntry): void {
    const { maxEntries, maxOctets } = this.#s.journal;
    let { first, next, octets } = this.#journalHead(origin);
    if (maxEntries === 0) {
      if (next > first) this.#clearJournal(origin);
      return;
    }
    const last = next > first ? this.#t.journal.get(journalKey(origin, next - 1)) : undefined;
    if (last !== undefined && last.readUInt32BE(5) !== entry.from) {
      this.#clearJournal(origin);
      first = next;
      octets = 0;
    }
    const bytes = encodeJournalEntry(entry);
    this.#t.journal.putSync(journalKey(origin, next), Buffer.from(bytes));
    next += 1;
    octets += bytes.length;
    while (first < next && (next - first > maxEntries || octets > maxOctets)) {
      const key = journalKey(origin, first);
      octets -= this.#t.journal.get(key)?.length ?? 0;
      this.#t.journal.removeSync(key);
      first += 1;
    }
    const head = Buffer.alloc(24);
    head.writeBigUInt64BE(BigInt(first), 0);
    head.writeBigUInt64BE(BigInt(next), 8);
    head.writeBigUInt64BE(BigInt(octets), 16);
    this.#t.journal.putSync(zonePrefix(origin), head);
  }

  /** Deletes a zone's journal entries (its head stays, or goes with `removeZone`). */
  #clearJournal(origin: string): void {
    for (const key of [...this.#t.journal.getKeys(journalRange(origin))]) {
      this.#t.journal.removeSync(Buffer.from(key));
    }
    this.#t.journal.removeSync(zonePrefix(origin));
  }

  #reader(origin: string): ZoneReader {
    return {
      origin,
      node: (name) => this.#node(origin, name),
      namesBelow: (name) => {
        const range = belowRange(nodeKey(origin, name));
        return this.#t.nodes.getKeys(range).map((key) => nodeName(origin, key));
      },
      nsec3: this.#chainIndex(origin),
    };
  }

  /** The labels of a zone's chain in hash order: keys of the `nsec3` table. */
  #chainIndex(origin: string): Nsec3Index {
    const prefix = zonePrefix(origin);
    const range = zoneRange(origin);
    const labelOf = (key: Uint8Array | undefined): string | undefined =>
      key === undefined
        ? undefined
        : Buffer.from(key.subarray(prefix.length, prefix.length + 32)).toString('latin1');
    const one = (options: {
      start: Buffer;
      end: Buffer;
      reverse?: boolean;
      exclusiveStart?: boolean;
    }): string | undefined => {
      for (const key of this.#t.nsec3.getKeys({ ...options, limit: 1 })) return labelOf(key);
      return undefined;
    };
    const keyOf = (label: string): Buffer => nodeKey(origin, chainOwner(origin, label));
    return {
      first: () => one({ start: range.start, end: range.end }),
      last: () => one({ start: range.end, end: range.start, reverse: true }),
      lower: (label) =>
        one({ start: keyOf(label), end: range.start, reverse: true, exclusiveStart: true }),
      higher: (label) => one({ start: keyOf(label), end: range.end, exclusiveStart: true }),
    };
  }

  #node(origin: string, name: string): StoredNode | undefined {
    if (chainLabel(origin, name) !== undefined) {
      const value = this.#t.nsec3.get(nodeKey(origin, name));
      return value === undefined ? undefined : decodeNode(name, value);
    }
    return this.#decoded(origin, name)?.node;
  }

  /**
   * A node read from LMDB, decoded once: the cache entry is reused only while the stored bytes
   * are the same, so it can never be stale, and the costly part of a read (RDATA decoding) is
   * skipped for the apex and other hot names.
   */
  #decoded(origin: string, name: string): DecodedNode | undefined {
    const key = nodeKey(origin, name);
    const value = this.#t.nodes.get(key);
    if (value !== undefined) return this.#decodedAt(key, name, value);
    this.#cache.delete(key.toString('latin1'));
    return undefined;
  }

  /** {@link #decoded} of the node stored under `key` (owner `name`) as `value`, just read. */
  #decodedAt(key: Buffer, name: string, value: Buffer): DecodedNode {
    const id = key.toString('latin1');
    const cached = this.#cache.get(id);
    if (cached !== undefined && cached.raw.equals(value)) return cached;
    const node = decodeNode(name, value);
    const entry: DecodedNode = { raw: value, node, view: toZoneNode(node) };
    this.#cache.delete(id);
    this.#cache.set(id, entry);
    if (this.#cache.size > DECODED_NODE_CACHE_ENTRIES) {
      const oldest = this.#cache.keys().next();
      if (oldest.done !== true) this.#cache.delete(oldest.value);
    }
    return entry;
  }

  #existing(origin: string): string {
    const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
    if (this.#t.zones.get(apex) === undefined) throw noZoneError(apex);
    return apex;
  }
}

/**
 * How many RRsets of a node have a signature that expires before `limit` or is not by the
 * current keys (`current`): what `planResign` will renew.
 */
function dueCount(node: StoredNode, limit: number, current: ZoneSigner): number {
  let n = 0;
  for (const [type, rrset] of node) {
    if (rrset.signatures.length > 0 && isDue(rrset, type, limit, current, () => true)) n += 1;
  }
  return n;
}

/** The earliest RRSIG expiration of a node. */
function earliestOf(node: StoredNode): number | undefined {
  let earliest: number | undefined;
  for (const rrset of node.values()) {
    const e = earliestExpiration(rrset.signatures);
    if (e !== undefined && (earliest === undefined || e < earliest)) earliest = e;
  }
  return earliest;
}

/** The key of entry `seq` of a zone's journal: the zone's key prefix, then 8 octets. */
function journalKey(origin: string, seq: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(seq), 0);
  return Buffer.concat([zonePrefix(origin), out]);
}

/** The key range of a zone's journal entries (its head, the bare prefix, is outside it). */
function journalRange(origin: string): { start: Buffer; end: Buffer } {
  const prefix = zonePrefix(origin);
  return {
    start: Buffer.concat([prefix, Buffer.alloc(8)]),
    end: Buffer.concat([prefix, Buffer.alloc(8, 0xff), Buffer.of(0)]),
  };
}

/** Longest wait for the writer thread to open the store or to close it. */
export const STORE_WRITER_TIMEOUT_MS = 30_000;

/** The compiled writer thread, also when this module runs from its TypeScript source (tests). */
function writerScript(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.ts')
    ? join(dirname(here), '..', '..', 'dist', 'store', 'store-writer.js')
    : join(dirname(here), 'store-writer.js');
}

/**
 * An LMDB store whose writes run on a writer thread: reads go to a store on this thread, over
 * the same environment. lmdb-js does not renew this thread's read snapshot when another thread
 * commits, so each reply of the writer renews it (`renewReads`) before the write's promise
 * resolves: a read after an acknowledged write sees it. The writes themselves never depend on
 * this thread's snapshot: operations are planned inside the writer's transaction.
 */
async function openThreadedStore(options: LmdbStoreOptions): Promise<DiscoveryStore> {
  if (options.now !== undefined) {
    throw new TypeError('openLmdbStore: a writer thread keeps the system clock, so no `now`');
  }
  const rest: LmdbStoreOptions = { ...options };
  delete rest.writer;
  delete rest.log;
  if (typeof rest.keys === 'object') {
    if (rest.keys.dir === undefined) {
      throw new TypeError('openLmdbStore: a writer thread needs a key directory on disk');
    }
    rest.keys = rest.keys.dir;
  }
  // This thread's store opens first: it creates the directory or upgrades an old layout (moving
  // seeds into the key directory, logged once); the writer then refreshes every zone's keys.
  const opened = await openInlineStore(
    { ...rest, ...(options.log === undefined ? {} : { log: options.log }), writer: 'inline' },
    false,
  );
  const data: StoreWriterData = { options: rest };
  // The compiled writer imports the compiled packages: export conditions that select TypeScript
  // sources (as a test runner sets) are not passed on.
  const execArgv = process.execArgv.filter(
    (arg, i, all) =>
      !arg.startsWith('--conditions') &&
      !arg.startsWith('-C') &&
      !(all[i - 1] === '--conditions' || all[i - 1] === '-C'),
  );
  const worker = new Worker(writerScript(), { workerData: data, execArgv });
  const pending = new Map<number, { resolve(value: unknown): void; reject(e: Error): void }>();
  let failure: StoreError | undefined;
  const failAll = (error: StoreError): void => {
    failure ??= error;
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };
  worker.on('message', (reply: StoreWriterReply) => {
    const waiter = pending.get(reply.id);
    if (waiter === undefined) return;
    pending.delete(reply.id);
    opened.renewReads();
    if ('error' in reply) {
      const { code, message } = reply.error;
      waiter.reject(
        code === undefined
          ? new StoreError('ERR_STORE_IO', message)
          : new StoreError(code as StoreErrorCode, message),
      );
    } else waiter.resolve(reply.value);
  });
  worker.on('error', (cause) =>
    failAll(new StoreError('ERR_STORE_IO', 'the store writer thread failed', { cause })),
  );
  worker.on('exit', () => failAll(new StoreError('ERR_STORE_CLOSED', 'the store is closed')));
  let nextId = 1;
  const call = (request: DistributiveOmit<StoreWriterRequest, 'id'>): Promise<unknown> => {
    if (failure !== undefined) return Promise.reject(failure);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ ...request, id });
    });
  };
  const withTimeout = <T>(promise: Promise<T>, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StoreError('ERR_STORE_IO', `the store writer thread did not ${what}`)),
        STORE_WRITER_TIMEOUT_MS,
      );
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  };
  try {
    // The writer opens (and, for a new directory, creates) the store first; it answers id 0.
    await withTimeout(
      new Promise((resolve, reject) => pending.set(0, { resolve, reject })),
      'open the store',
    );
  } catch (error) {
    await worker.terminate();
    await opened.close();
    throw error;
  }
  opened.renewReads();
  let closing: Promise<void> | undefined;
  return {
    keys: opened.keys,
    signatureStatus: (origin) => opened.signatureStatus(origin),
    zoneSigners: (origin) => opened.zoneSigners(origin),
    refreshKeys: (origin, now) =>
      call({
        method: 'refreshKeys',
        args: now === undefined ? [origin] : [origin, now],
      }) as Promise<{ serial: number; changed: boolean }>,
    listZones: () => opened.listZones(),
    zoneInfo: (origin) => opened.zoneInfo(origin),
    findZone: (name) => opened.findZone(name),
    zoneView: (origin) => opened.zoneView(origin),
    zoneKey: (origin) => opened.zoneKey(origin),
    proverKey: () => opened.proverKey(),
    generation: () => opened.generation(),
    changesSince: (generation) => opened.changesSince(generation),
    readRRset: (origin, name, type) => opened.readRRset(origin, name, type),
    readZone: (origin) => opened.readZone(origin),
    streamZone: (origin) => opened.streamZone(origin),
    journalSince: (origin, from) => opened.journalSince(origin, from),
    replayRecords: (limit) => opened.replayRecords(limit),
    setNsec3: (origin, enabled) =>
      call({ method: 'setNsec3', args: [origin, enabled] }) as Promise<ApplyResult>,
    addZone: (init) => call({ method: 'addZone', args: [init] }) as Promise<ZoneInfo>,
    removeZone: (origin) => call({ method: 'removeZone', args: [origin] }) as Promise<void>,
    apply: (origin, changes) =>
      call({ method: 'apply', args: [origin, changes] }) as Promise<ApplyResult>,
    applyOperation: (origin, operation) =>
      call({ method: 'applyOperation', args: [origin, operation] }) as Promise<OperationOutcome>,
    resign: (before) =>
      call({ method: 'resign', args: before === undefined ? [] : [before] }) as Promise<number>,
    close: () =>
      (closing ??= (async () => {
        await withTimeout(call({ method: 'close' }), 'close').catch(() => undefined);
        await worker.terminate();
        failAll(new StoreError('ERR_STORE_CLOSED', 'the store is closed'));
        await opened.close();
      })()),
  };
}

/** `Omit` applied to each member of a union. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
