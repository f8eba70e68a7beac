import {
  systemClock,
  type Clock,
  type Ed25519KeyPair,
  type Logger,
  type ResourceRecord,
  type RRType,
  type ZoneKey,
  type ZoneView,
} from '@mimi-discovery/common';
import pg from 'pg';
import {
  prepareOperation,
  type OperationOutcome,
  type ReplayRecord,
  type StoreOperation,
} from './mapping-ops.js';
import { createMemoryReplica, type MemoryCommit, type MemoryReplica } from './memory-store.js';
import { decodeNode } from './node-codec.js';
import { PG_CONNECT_TIMEOUT_MS, checkPgSchema, messageOf, migrateWith } from './pg-schema.js';
import {
  PG_CHANGE_LOG_KEEP,
  PG_CHANGE_LOG_MAX_NAMES,
  PG_NOTIFY_CHANNEL,
  lockZone,
  logChange,
  merge,
  pruneReplay,
  putNodes,
  readCursor,
  readNodes,
  readReplay,
  readZoneRow,
  replayOfRow,
  rowOf,
  writeZone,
  zoneRows,
  type ChangeLogBounds,
  type ReplayRow,
  type ZoneRow,
  readJournal,
} from './pg-statements.js';
import { journalLimits, type JournalEntry, type JournalLimits } from '../zone/journal.js';
import type { DiscoveryStore, StoreWriteCounts } from './store.js';
import { StoreError, noZoneError } from './store-error.js';
import type { ApplyResult, RRsetChange, ZoneInfo, ZoneInit } from './store-types.js';
import { normalizeChanges, type StoreChanges } from '../zone/zone-changes.js';
import { zoneOrigin } from '../zone/owner-name.js';
import { type SignatureValidityPolicy, type ZoneWrites } from '../zone/zone-signer.js';
import { PG_MIGRATION_LOCK } from './pg-schema.js';
import {
  checkProverAgainst,
  decodeSigningRecord,
  encodeSigningRecord,
  keyDirectoryFault,
  keySetOfRecord,
  migrateZoneSeed,
  signingRecordOf,
  zoneKeySet,
  type SignatureStatus,
} from './store-keys.js';
import {
  createMemoryKeyDirectory,
  openKeyDirectory,
  type KeyDirectory,
} from '../keys/key-directory.js';
import type { ZoneKeySet } from '../keys/key-set.js';

/**
 * The {@link DiscoveryStore} over PostgreSQL (design §9 (b), as PowerDNS's SQL back ends): one
 * database behind several DP front ends, each a process with this store open.
 *
 * Reads stay synchronous, as the contract requires: each process answers from an in-memory
 * replica of the database (a memory store, `createMemoryReplica`), loaded at open and kept
 * current through `LISTEN`/`NOTIFY` — every write notifies {@link PG_NOTIFY_CHANNEL} with the id
 * of its change-log row — and the change log itself: a process compares each zone's `version`
 * with the one its replica holds and reads the change-log rows in between, so a missed
 * notification only delays (a poll every {@link PG_POLL_INTERVAL_MS} catches up regardless).
 *
 * A write of zone Z (`apply`, `applyOperation`, and `resign` for every zone):
 * 1. waits for the process's queue of Z; writes queued meanwhile go together (group commit, up
 *    to {@link PG_GROUP_MAX_WRITES});
 * 2. `BEGIN`; `SELECT … FROM zones WHERE origin = Z FOR UPDATE`: the row lock serialises the
 *    writers of Z across every process, in the database;
 * 3. catches the replica's Z up from the change log (it may lag behind another process);
 * 4. plans the writes on the replica, with the memory store's own code, which groups them (one
 *    SOA serial step and one SOA signature for all the group's applies and operations): what
 *    they read is the latest committed data, because nobody else can commit to Z until this
 *    transaction ends;
 * 5. writes the changed nodes, the anti-replay records, a change-log row, Z's new `version`, and
 *    `NOTIFY`; `COMMIT` with `synchronous_commit = on`, so the commit is flushed to the WAL on
 *    disk before PostgreSQL answers;
 * 6. only then resolves each write. A failed commit puts back every node and anti-replay record
 *    the writes replaced in the replica, and each write rejects with `ERR_STORE_IO`.
 * The replica shows a write from step 4 on, before its commit, as the LMDB store shows a commit
 * before its flush; a write that then fails is taken back.
 *
 * Anti-replay records are merged in SQL as the operations merge them (the larger `until`, `seq`
 * and `before`), so two writers can never lower one. Operations on one CSI are serialised by the
 * lock of the zone they are sent to (the registrar sends each CSI to its most specific zone).
 *
 * Re-signing (`resign`) runs in one process at a time: the one that gets
 * `pg_try_advisory_lock` ({@link PG_RESIGN_LOCK}); elsewhere it resolves 0 at once and only
 * forgets expired anti-replay records from its replica. The holder locks every zone's row, in
 * origin order, and re-signs on its replica.
 *
 * Keys live in the key directory (design §9), never in the database: front ends over one database
 * share one key directory (a shared mount, or a copy kept in step). The `signing` column of a
 * zone's row names the keys it is signed with; a front end that meets a key tag its directory
 * lacks reloads the directory, and, still missing, fails that write with
 * `ERR_STORE_KEY_MISSING` (naming zone, tag and directory) while it keeps answering. A database
 * of schema version 1 or 2 still holds seeds in a `secrets` table: the first open moves them into
 * the key directory (`pg-schema.ts` has the layout and the migrations).
 *
 * Cost: every front end holds every zone in memory (the replica), and a write costs one round
 * of commit in the database, shared by the writes grouped with it.
 */

/** Options of {@link openPgStore}. */
export interface PgStoreOptions {
  /** Connection URL (`postgresql://user@host:port/database`, libpq's forms). */
  url: string;
  /** Clock in whole seconds since the epoch; default `systemClock`. */
  now?: Clock;
  /** Signature lifetime and renewal margin; default 14 days, renewed 7 days before expiry. */
  signatureValidity?: Partial<SignatureValidityPolicy>;
  /**
   * The key directory (`keys/key-directory.ts`) the zones are signed from: its path or an open
   * one; default a memory one (one process only: front ends must share a directory on disk).
   */
  keys?: string | KeyDirectory;
  /**
   * Seed of this DP's prover key (32 octets) for a new key directory. A directory keeps the key
   * it was created with; opening it with a different seed fails with `ERR_STORE_PROVER_KEY`.
   */
  proverSeed?: Uint8Array;
  /** Lifetime of the prover key's AUTHKEY entry in new zones; default 10 years. */
  proverKeyLifetimeSeconds?: number;
  /** Connections in the pool (config `store.poolSize`), default {@link PG_POOL_SIZE}. */
  poolSize?: number;
  /**
   * Longest a statement may run (config `store.statementTimeoutMs`), default
   * {@link PG_STATEMENT_TIMEOUT_MS}.
   */
  statementTimeoutMs?: number;
  /**
   * Create or upgrade the schema at open (default true); false: refuse a database whose schema
   * is not the current one (`ERR_STORE_OLDER_FORMAT`), changing nothing.
   */
  migrate?: boolean;
  /** Where lost connections and failed catch-ups are reported; default nowhere. */
  log?: Logger;
  /** Bounds of the store's work, each defaulting to its constant (tests set small ones). */
  limits?: Partial<PgStoreLimits>;
  /**
   * How much of each zone's journal (IXFR) the `journal` table keeps; default
   * `JOURNAL_MAX_ENTRIES`, `JOURNAL_MAX_OCTETS` (config key `journal`).
   */
  journal?: Partial<JournalLimits>;
}

/** Bounds of the PostgreSQL store's work (`PgStoreOptions.limits`). */
export interface PgStoreLimits {
  /** Writes of one zone in one transaction; default {@link PG_GROUP_MAX_WRITES}. */
  groupMaxWrites: number;
  /** Change-log rows replayed before a zone is reloaded; default {@link PG_CATCH_UP_MAX_ENTRIES}. */
  catchUpMaxEntries: number;
  /** Names listed in one change-log row; default `PG_CHANGE_LOG_MAX_NAMES`. */
  changeLogMaxNames: number;
  /** Change-log rows kept per zone; default `PG_CHANGE_LOG_KEEP`. */
  changeLogKeep: number;
  /** Catch-up without a notification, every this long; default {@link PG_POLL_INTERVAL_MS}. */
  pollIntervalMs: number;
  /** Wait before listening again; default {@link PG_RECONNECT_DELAY_MS}. */
  reconnectDelayMs: number;
}

/** Connections in the pool by default: writes of different zones commit in parallel. */
export const PG_POOL_SIZE = 4;
/**
 * Fewest connections a pool may have: `resign` holds one for its advisory lock while it waits
 * for the zones' queues, whose writes need another.
 */
export const PG_POOL_MIN_SIZE = 2;
/** Most connections a pool may have (PostgreSQL's default `max_connections` is 100). */
export const PG_POOL_MAX_SIZE = 64;
/** Longest a statement may run by default before PostgreSQL cancels it. */
export const PG_STATEMENT_TIMEOUT_MS = 30_000;
/** Most writes of one zone committed in one transaction (group commit). */
export const PG_GROUP_MAX_WRITES = 256;
/** Change-log rows a replica replays to catch up a zone; further behind, it reloads the zone. */
export const PG_CATCH_UP_MAX_ENTRIES = 1000;
/** How often a replica checks the database for writes it was not notified of. */
export const PG_POLL_INTERVAL_MS = 5_000;
/** Wait before the notification connection is opened again after it was lost. */
export const PG_RECONNECT_DELAY_MS = 1_000;
/** The advisory lock (two-int form) held by the process that re-signs. */
export const PG_RESIGN_LOCK: readonly [number, number] = Object.freeze([0x4d494d49, 2]);

/** `BEGIN` of a write transaction: flushed to the WAL before `COMMIT` returns. */
const BEGIN_WRITE = 'BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit TO on';
/** `BEGIN` of a catch-up: one snapshot for the zone's row, its change log and its nodes. */
const BEGIN_READ = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';
/** The `secrets` name of a zone key's seed (schema versions 1 and 2). */
const ZONE_SECRET_PREFIX = 'zone ';
const PROVER_SECRET = 'prover';

/**
 * Opens the store in the database at `options.url`, creating or upgrading the schema (unless
 * `migrate` is false), and loads every zone into the process's replica. Rejects with
 * `StoreError`: `ERR_STORE_IO` when the database cannot be reached, `ERR_STORE_PROVER_KEY` for a
 * prover seed other than the stored one, `ERR_STORE_NEWER_FORMAT` / `ERR_STORE_OLDER_FORMAT`
 * for a schema of another version.
 */
export async function openPgStore(options: PgStoreOptions): Promise<DiscoveryStore> {
  if (
    options.proverSeed !== undefined &&
    !(options.proverSeed instanceof Uint8Array && options.proverSeed.length === 32)
  ) {
    throw new StoreError('ERR_STORE_PROVER_KEY', 'proverSeed must be 32 octets (an Ed25519 seed)');
  }
  const poolSize = options.poolSize ?? PG_POOL_SIZE;
  if (!Number.isInteger(poolSize) || poolSize < PG_POOL_MIN_SIZE || poolSize > PG_POOL_MAX_SIZE) {
    throw new TypeError(
      `openPgStore: poolSize must be an integer from ${PG_POOL_MIN_SIZE} to ${PG_POOL_MAX_SIZE}`,
    );
  }
  const limits = pgStoreLimits(options.limits);
  const statementTimeout = options.statementTimeoutMs ?? PG_STATEMENT_TIMEOUT_MS;
  if (!Number.isInteger(statementTimeout) || statementTimeout <= 0) {
    throw new TypeError('openPgStore: statementTimeoutMs must be a positive integer');
  }
  const connection: pg.ClientConfig = {
    connectionString: options.url,
    connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
    statement_timeout: statementTimeout,
    keepAlive: true,
    application_name: 'mimi-discovery',
  };
  const pool = new pg.Pool({ ...connection, max: poolSize });
  // An idle connection that fails is dropped by the pool; the next checkout opens another.
  pool.on('error', (error) => options.log?.warn('pg-connection-lost', { error: messageOf(error) }));
  try {
    const client = await checkout(pool);
    let keys: KeyDirectory;
    try {
      if (options.migrate === false) await checkPgSchema(client);
      else await migrateWith(client);
      keys = await moveSecrets(client, options);
    } finally {
      client.release();
    }
    const store = new PgStore(pool, connection, options, limits, keys);
    await store.start();
    return store;
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw ioError(error, 'cannot open the PostgreSQL store');
  }
}

/**
 * Opens the key directory and, for a database of schema version 1 or 2 that still has its
 * `secrets` table, moves the seeds there: the prover key's (the directory is opened with it),
 * then each zone key's (unless the directory has keys for that zone), then, in one transaction
 * under {@link PG_MIGRATION_LOCK} (front ends starting together move them once), gives each zone
 * its signing record and drops the table. Logged once, by the open that moved them.
 */
async function moveSecrets(client: pg.ClientBase, options: PgStoreOptions): Promise<KeyDirectory> {
  let moved = 0;
  let keys: KeyDirectory | undefined;
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...PG_MIGRATION_LOCK]);
    const present = await client.query<{ present: boolean }>(
      `SELECT to_regclass('secrets') IS NOT NULL AS present`,
    );
    const secrets =
      present.rows[0]?.present === true
        ? (await client.query<{ name: string; seed: Buffer }>('SELECT name, seed FROM secrets'))
            .rows
        : [];
    const prover = secrets.find((r) => r.name === PROVER_SECRET)?.seed;
    if (
      prover !== undefined &&
      options.proverSeed !== undefined &&
      !prover.equals(Buffer.from(options.proverSeed))
    ) {
      throw new StoreError(
        'ERR_STORE_PROVER_KEY',
        'the database holds a different prover key than the configured seed',
      );
    }
    const proverSeed = prover === undefined ? options.proverSeed : Uint8Array.from(prover);
    keys = openKeys(options.keys, proverSeed);
    checkProverAgainst(keys, proverSeed);
    keys.reload();
    const now = (options.now ?? systemClock)();
    for (const row of secrets) {
      if (!row.name.startsWith(ZONE_SECRET_PREFIX)) continue;
      const origin = row.name.slice(ZONE_SECRET_PREFIX.length);
      const seed = Uint8Array.from(row.seed);
      await migrateZoneSeed(keys, origin, seed, now);
      const record = zoneKeySet(keys, origin, now);
      await client.query('UPDATE zones SET signing = $2 WHERE origin = $1 AND signing IS NULL', [
        origin,
        signingText(record),
      ]);
      moved += 1;
    }
    if (present.rows[0]?.present === true) await client.query('DROP TABLE secrets');
    await client.query('COMMIT');
    if (present.rows[0]?.present === true) {
      options.log?.info('keys-moved-to-key-directory', {
        zones: moved,
        prover: prover !== undefined,
        dir: keys.dir ?? '',
      });
    }
    return keys;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw keyDirectoryFault(error);
  }
}

/** The key directory of `given` (a path, an open one, or a new memory one). */
function openKeys(given: string | KeyDirectory | undefined, proverSeed: Uint8Array | undefined) {
  const seed = proverSeed === undefined ? {} : { proverSeed };
  if (typeof given === 'object') return given;
  if (given === undefined) return createMemoryKeyDirectory(seed);
  return openKeyDirectory(given, seed);
}

/** A key set as the `signing` column holds it (key tags only; the counts are per process). */
function signingText(set: ZoneKeySet): string {
  return encodeSigningRecord(signingRecordOf(set, { pending: 0, earliest: undefined })).toString(
    'utf8',
  );
}

async function checkout(pool: pg.Pool): Promise<pg.PoolClient> {
  try {
    return await pool.connect();
  } catch (cause) {
    throw new StoreError('ERR_STORE_IO', `cannot connect to PostgreSQL: ${messageOf(cause)}`, {
      cause,
    });
  }
}

/** The limits of `given` filled in with the constants; each a positive whole number. */
function pgStoreLimits(given: Partial<PgStoreLimits> = {}): PgStoreLimits {
  const limits: PgStoreLimits = {
    groupMaxWrites: given.groupMaxWrites ?? PG_GROUP_MAX_WRITES,
    catchUpMaxEntries: given.catchUpMaxEntries ?? PG_CATCH_UP_MAX_ENTRIES,
    changeLogMaxNames: given.changeLogMaxNames ?? PG_CHANGE_LOG_MAX_NAMES,
    changeLogKeep: given.changeLogKeep ?? PG_CHANGE_LOG_KEEP,
    pollIntervalMs: given.pollIntervalMs ?? PG_POLL_INTERVAL_MS,
    reconnectDelayMs: given.reconnectDelayMs ?? PG_RECONNECT_DELAY_MS,
  };
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new TypeError(`openPgStore: limits.${key} must be a positive whole number`);
    }
  }
  return limits;
}

function ioError(error: unknown, what: string): StoreError {
  if (error instanceof StoreError) return error;
  return new StoreError('ERR_STORE_IO', `${what}: ${messageOf(error)}`, { cause: error });
}

/** Runs functions one at a time, in the order they were given. */
class Lock {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(action: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(action);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/** A write waiting in a zone's queue: `run` makes it on the replica. */
interface QueuedWrite {
  run(): Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** A zone's queue in this process: its lock, and the writes waiting for the next group. */
interface ZoneQueue {
  readonly lock: Lock;
  waiting: QueuedWrite[];
  scheduled: boolean;
}

/** The version of a zone that the replica holds, and the signing record it signs with. */
interface Held {
  readonly incarnation: number;
  readonly version: number;
  readonly signing: string | null;
}

/** The outcome of catching a zone up inside a transaction. */
type CatchUp = 'current' | 'absent' | 'unknown-zone';

class PgStore implements DiscoveryStore {
  readonly keys: KeyDirectory;
  readonly #pool: pg.Pool;
  readonly #connection: pg.ClientConfig;
  readonly #replica: MemoryReplica;
  readonly #now: Clock;
  readonly #log: Logger | undefined;
  readonly #limits: PgStoreLimits;
  readonly #journal: JournalLimits;
  /** Per zone, the version the replica holds. */
  readonly #held = new Map<string, Held>();
  readonly #queues = new Map<string, ZoneQueue>();
  /**
   * Taken before any zone's lock by what adds zones to the replica or removes them, and by
   * `resign`, which re-signs every zone the replica holds.
   */
  readonly #structure = new Lock();
  /** The events of the replica's writes, per zone, while a transaction of that zone runs. */
  readonly #captures = new Map<string, MemoryCommit[]>();
  readonly #pending = new Set<Promise<unknown>>();
  #listener: pg.Client | undefined;
  #reconnect: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #syncing: Promise<void> | undefined;
  #syncAgain = false;
  #closed = false;

  constructor(
    pool: pg.Pool,
    connection: pg.ClientConfig,
    options: PgStoreOptions,
    limits: PgStoreLimits,
    keys: KeyDirectory,
  ) {
    this.#pool = pool;
    this.#connection = connection;
    this.#now = options.now ?? systemClock;
    this.#log = options.log;
    this.#limits = limits;
    this.#journal = journalLimits(options.journal);
    this.keys = keys;
    this.#replica = createMemoryReplica({
      now: this.#now,
      keys,
      // The journal lives in the database (`journal` table): the replica only computes entries.
      journal: { maxEntries: 0 },
      ...(options.signatureValidity === undefined
        ? {}
        : { signatureValidity: options.signatureValidity }),
      ...(options.proverKeyLifetimeSeconds === undefined
        ? {}
        : { proverKeyLifetimeSeconds: options.proverKeyLifetimeSeconds }),
      onCommit: (change) => this.#onCommit(change),
    });
  }

  /** Listens for notifications, then loads every zone (nothing committed between is missed). */
  async start(): Promise<void> {
    await this.#listen();
    try {
      await this.#loadAll();
    } catch (error) {
      await this.#stopListening();
      throw error;
    }
    this.#poll = setInterval(() => this.#requestSync(), this.#limits.pollIntervalMs);
    this.#poll.unref();
    // Opening a store brings every zone's keys in line with the key directory; a zone whose
    // key is missing keeps the keys its row names (its writes fail until the key is back).
    try {
      for (const origin of this.#replica.listZones()) {
        try {
          await this.refreshKeys(origin);
        } catch (error) {
          if (!(error instanceof StoreError && error.code === 'ERR_STORE_KEY_MISSING')) {
            throw error;
          }
          this.#log?.warn('zone-key-missing', { zone: origin, error: error.message });
        }
      }
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Reads: the replica

  listZones(): string[] {
    return this.#replica.listZones();
  }

  zoneInfo(origin: string): ZoneInfo | undefined {
    return this.#replica.zoneInfo(origin);
  }

  findZone(name: string): string | undefined {
    return this.#replica.findZone(name);
  }

  zoneView(origin: string): ZoneView | undefined {
    return this.#replica.zoneView(origin);
  }

  /** The SOA signatures this process made (its replica plans every write). */
  writeCounts(): StoreWriteCounts {
    return this.#replica.writeCounts?.() ?? { soaSignatures: 0 };
  }

  zoneKey(origin: string): ZoneKey | undefined {
    return this.#replica.zoneKey(origin);
  }

  zoneSigners(origin: string): readonly ZoneKey[] {
    return this.#replica.zoneSigners(origin);
  }

  signatureStatus(origin: string): SignatureStatus | undefined {
    return this.#replica.signatureStatus(origin);
  }

  async refreshKeys(origin: string, now?: number): Promise<{ serial: number; changed: boolean }> {
    this.#open();
    const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
    return (await this.#submit(apex, () => this.#replica.refreshKeys(apex, now))) as {
      serial: number;
      changed: boolean;
    };
  }

  proverKey(): Ed25519KeyPair {
    return this.#replica.proverKey();
  }

  generation(): number {
    return this.#replica.generation();
  }

  changesSince(generation: number): StoreChanges {
    return this.#replica.changesSince(generation);
  }

  readRRset(origin: string, name: string, type: RRType): ResourceRecord[] {
    return this.#replica.readRRset(origin, name, type);
  }

  readZone(origin: string): ResourceRecord[] {
    return this.#replica.readZone(origin);
  }

  replayRecords(limit?: number): ReplayRecord[] {
    return this.#replica.replayRecords(limit);
  }

  // -------------------------------------------------------------------------------------------
  // Writes

  async addZone(init: ZoneInit): Promise<ZoneInfo> {
    this.#open();
    const origin = zoneOrigin(init.origin, 'ERR_STORE_BAD_ZONE');
    return this.#track(
      this.#structure.run(() => this.#queue(origin).lock.run(() => this.#addZone(origin, init))),
    );
  }

  async removeZone(origin: string): Promise<void> {
    this.#open();
    const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
    return this.#track(
      this.#structure.run(() => this.#queue(apex).lock.run(() => this.#removeZone(apex))),
    );
  }

  streamZone(origin: string): AsyncIterable<readonly ResourceRecord[]> {
    this.#open();
    // The replica holds the zone as committed up to its version; its stream is one snapshot.
    return this.#replica.streamZone(origin);
  }

  async journalSince(origin: string, from: number): Promise<JournalEntry[] | undefined> {
    this.#open();
    const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
    const info = this.#replica.zoneInfo(apex);
    if (info === undefined) throw noZoneError(apex);
    try {
      return await readJournal(this.#pool, apex, from, info.serial);
    } catch (error) {
      throw ioError(error, 'the PostgreSQL read failed');
    }
  }

  async setNsec3(origin: string, enabled: boolean): Promise<ApplyResult> {
    this.#open();
    const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
    return (await this.#submit(apex, () => this.#replica.setNsec3(apex, enabled))) as ApplyResult;
  }

  async apply(origin: string, changes: readonly RRsetChange[]): Promise<ApplyResult> {
    this.#open();
    const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
    // Checks that need no data run before any transaction, so bad input never queues a write.
    normalizeChanges(apex, changes);
    return (await this.#submit(apex, () => this.#replica.apply(apex, changes))) as ApplyResult;
  }

  async applyOperation(origin: string, operation: StoreOperation): Promise<OperationOutcome> {
    this.#open();
    const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
    prepareOperation(apex, operation);
    return (await this.#submit(apex, () =>
      this.#replica.applyOperation(apex, operation),
    )) as OperationOutcome;
  }

  async resign(before?: number): Promise<number> {
    this.#open();
    const now = this.#now();
    // Every process forgets expired records; the one that re-signs also deletes them.
    this.#replica.pruneReplay(now);
    return this.#track(this.#resign(now, before));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#poll);
    clearTimeout(this.#reconnect);
    await Promise.allSettled([...this.#pending]);
    await this.#syncing;
    await this.#stopListening();
    await this.#pool.end().catch(() => undefined);
    await this.#replica.close();
  }

  #open(): void {
    if (this.#closed) throw new StoreError('ERR_STORE_CLOSED', 'the store is closed');
  }

  #bounds(): ChangeLogBounds {
    return { maxNames: this.#limits.changeLogMaxNames, keep: this.#limits.changeLogKeep };
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#pending.add(promise);
    const forget = (): void => {
      this.#pending.delete(promise);
    };
    promise.then(forget, forget);
    return promise;
  }

  #queue(origin: string): ZoneQueue {
    let queue = this.#queues.get(origin);
    if (queue === undefined) {
      queue = { lock: new Lock(), waiting: [], scheduled: false };
      this.#queues.set(origin, queue);
    }
    return queue;
  }

  /** Queues a write of `origin` for the next group commit and resolves with its result. */
  async #submit(origin: string, run: () => Promise<unknown>): Promise<unknown> {
    if (!this.#held.has(origin)) {
      // A zone the replica does not hold: made by another process a moment ago, or none at all.
      // Only zones of the database get a queue.
      const row = await this.#pool
        .query<{ present: boolean }>('SELECT true AS present FROM zones WHERE origin = $1', [
          origin,
        ])
        .catch((error: unknown) => {
          throw ioError(error, 'PostgreSQL');
        });
      if (row.rows.length === 0) throw noZoneError(origin);
      await this.#structureSync(origin);
    }
    const queue = this.#queue(origin);
    const result = new Promise<unknown>((resolve, reject) => {
      queue.waiting.push({ run, resolve, reject });
    });
    this.#schedule(origin, queue);
    return this.#track(result);
  }

  #schedule(origin: string, queue: ZoneQueue): void {
    if (queue.scheduled) return;
    queue.scheduled = true;
    void queue.lock.run(() => this.#drain(origin, queue));
  }

  /** Runs the writes waiting in `queue` as one group (inside the zone's lock). */
  async #drain(origin: string, queue: ZoneQueue): Promise<void> {
    queue.scheduled = false;
    const group = queue.waiting.splice(0, this.#limits.groupMaxWrites);
    if (group.length === 0) return;
    if (queue.waiting.length > 0) this.#schedule(origin, queue);
    const outcome = await this.#group(origin, group);
    if (outcome === 'unknown-zone') {
      // Another process removed and created the zone again: the replica reloads it (which takes
      // the structure lock, so never inside this zone's lock), then the writes run again.
      queue.waiting.unshift(...group);
      void this.#structureSync(origin)
        .catch((error: unknown) => {
          for (const write of queue.waiting.splice(0)) write.reject(error);
        })
        .finally(() => this.#schedule(origin, queue));
    }
  }

  /**
   * One group commit of zone `origin`. Resolves 'unknown-zone' (nothing done) when the replica
   * must load the zone first; settles each write otherwise: with its result once committed,
   * with its own error when the replica refused it, with `ERR_STORE_IO` when the transaction
   * failed.
   */
  async #group(origin: string, group: readonly QueuedWrite[]): Promise<CatchUp | 'done'> {
    const results: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    let client: pg.PoolClient;
    try {
      client = await checkout(this.#pool);
    } catch (error) {
      for (const write of group) write.reject(error);
      return 'done';
    }
    const events: MemoryCommit[] = [];
    let failed: unknown;
    try {
      await client.query(BEGIN_WRITE);
      const row = await lockZone(client, origin);
      const caught = await this.#catchUp(client, origin, row);
      if (caught === 'unknown-zone') {
        await client.query('ROLLBACK');
        return caught;
      }
      this.#captures.set(origin, events);
      try {
        // Started together, so that the replica plans the group's applies and operations as
        // one write of its own: one serial step and one SOA signature for the group.
        const runs = await Promise.allSettled(group.map((write) => write.run()));
        for (const run of runs) {
          results.push(
            run.status === 'fulfilled'
              ? { ok: true, value: run.value }
              : { ok: false, error: run.reason },
          );
        }
      } finally {
        this.#captures.delete(origin);
      }
      // A key refresh may change the keys the zone is signed with without changing a record:
      // the row says so, and the version moves so that the other front ends hear of it.
      const keySet = this.#replica.keySetOf(origin);
      const signing = keySet === undefined ? null : signingText(keySet);
      const resigned = row !== undefined && signing !== null && signing !== row.signing;
      if ((events.length > 0 || resigned) && row !== undefined) {
        const version = row.version + 1;
        const write =
          events.length > 0
            ? merge(events)
            : {
                nodes: new Map(),
                replay: new Map(),
                names: new Set<string>(),
                everything: true,
                journal: [],
              };
        if (resigned) write.everything = true;
        await writeZone(client, origin, version, write, this.#bounds(), this.#journal);
        if (resigned) {
          await client.query('UPDATE zones SET signing = $2 WHERE origin = $1', [origin, signing]);
        }
        await client.query('COMMIT');
        this.#held.set(origin, {
          incarnation: row.incarnation,
          version,
          signing: signing ?? row.signing,
        });
      } else {
        // Nothing to write: what was read is committed already.
        await client.query('COMMIT');
      }
      group.forEach((write, i) => {
        const result = results[i];
        if (result?.ok === true) write.resolve(result.value);
        else write.reject(result?.error);
      });
      return 'done';
    } catch (error) {
      failed = error;
      await client.query('ROLLBACK').catch(() => undefined);
      this.#undo(events);
      this.#restoreKeySet(origin);
      const fault = ioError(error, 'the PostgreSQL write failed');
      group.forEach((write, i) => {
        const result = results[i];
        write.reject(result?.ok === false ? result.error : fault);
      });
      return 'done';
    } finally {
      client.release(failed instanceof Error && !(failed instanceof StoreError) ? failed : false);
    }
  }

  async #addZone(origin: string, init: ZoneInit): Promise<ZoneInfo> {
    const client = await checkout(this.#pool);
    const events: MemoryCommit[] = [];
    const hadKeys = this.keys.zoneKeys(origin).length > 0;
    let newKey: number | undefined;
    let failed: unknown;
    try {
      await client.query(BEGIN_WRITE);
      const inserted = await client.query<{ incarnation: string }>(
        `INSERT INTO zones (origin, version) VALUES ($1, 1)
         ON CONFLICT (origin) DO NOTHING RETURNING incarnation`,
        [origin],
      );
      const incarnation = inserted.rows[0]?.incarnation;
      if (incarnation === undefined) {
        await client.query('ROLLBACK');
        // The replica may not have heard of it yet.
        this.#requestSync();
        throw new StoreError('ERR_STORE_ZONE_EXISTS', `the store already holds zone ${origin}`);
      }
      // A zone removed by another process that the replica still holds.
      this.#replica.dropZone(origin);
      this.#held.delete(origin);
      this.#captures.set(origin, events);
      let info: ZoneInfo;
      try {
        info = await this.#replica.addZone(init);
      } finally {
        this.#captures.delete(origin);
      }
      const added = events.find((e) => e.kind === 'zone-added');
      if (added?.kind !== 'zone-added') throw new Error('the replica reported no new zone');
      newKey = info.keyTag;
      const firstSet = this.#replica.keySetOf(origin);
      const signing = firstSet === undefined ? null : signingText(firstSet);
      await client.query('UPDATE zones SET signing = $2 WHERE origin = $1', [origin, signing]);
      await putNodes(client, origin, added.writes);
      await logChange(
        client,
        origin,
        1,
        {
          nodes: added.writes,
          replay: new Map(),
          names: new Set([origin]),
          everything: true,
          journal: [],
        },
        this.#bounds(),
      );
      await client.query('COMMIT');
      const keySet = this.#replica.keySetOf(origin);
      this.#held.set(origin, {
        incarnation: Number(incarnation),
        version: 1,
        signing: keySet === undefined ? null : signingText(keySet),
      });
      return info;
    } catch (error) {
      failed = error;
      await client.query('ROLLBACK').catch(() => undefined);
      if (events.some((e) => e.kind === 'zone-added')) this.#replica.dropZone(origin);
      // The zone's first key was written before the zone: it goes with the zone that failed.
      if (newKey !== undefined && !hadKeys) {
        await this.keys.deleteZoneKey(origin, newKey).catch(() => undefined);
      }
      throw ioError(error, 'the PostgreSQL write failed');
    } finally {
      client.release(failed instanceof Error && !(failed instanceof StoreError) ? failed : false);
    }
  }

  async #removeZone(origin: string): Promise<void> {
    const client = await checkout(this.#pool);
    let failed: unknown;
    try {
      await client.query(BEGIN_WRITE);
      const row = await lockZone(client, origin);
      if (row === undefined) {
        await client.query('ROLLBACK');
        this.#replica.dropZone(origin);
        this.#held.delete(origin);
        throw noZoneError(origin);
      }
      await client.query('DELETE FROM zones WHERE origin = $1', [origin]);
      await client.query('SELECT pg_notify($1, $2)', [PG_NOTIFY_CHANNEL, '0']);
      await client.query('COMMIT');
      this.#replica.dropZone(origin);
      this.#held.delete(origin);
      await this.keys.removeZone(origin).catch((error: unknown) => {
        throw keyDirectoryFault(error);
      });
    } catch (error) {
      failed = error;
      await client.query('ROLLBACK').catch(() => undefined);
      throw ioError(error, 'the PostgreSQL write failed');
    } finally {
      client.release(failed instanceof Error && !(failed instanceof StoreError) ? failed : false);
    }
  }

  /** Re-signs under the advisory lock, or resolves 0 when another process holds it. */
  async #resign(now: number, before: number | undefined): Promise<number> {
    const client = await checkout(this.#pool);
    let failed: unknown;
    try {
      const got = await client.query<{ got: boolean }>(
        'SELECT pg_try_advisory_lock($1, $2) AS got',
        [...PG_RESIGN_LOCK],
      );
      if (got.rows[0]?.got !== true) return 0;
      try {
        await pruneReplay(client, now);
        return await this.#structure.run(async () => {
          const origins = [
            ...new Set([...(await zoneRows(client)).map((r) => r.origin), ...this.#held.keys()]),
          ].sort();
          return this.#withZoneLocks(origins, () => this.#resignLocked(client, before));
        });
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, $2)', [...PG_RESIGN_LOCK]);
      }
    } catch (error) {
      failed = error;
      throw ioError(error, 'PostgreSQL re-signing failed');
    } finally {
      client.release(failed instanceof Error && !(failed instanceof StoreError) ? failed : false);
    }
  }

  /** Runs `action` holding the queue locks of `origins` (sorted), taken one after another. */
  #withZoneLocks<T>(origins: readonly string[], action: () => Promise<T>): Promise<T> {
    const [first, ...rest] = origins;
    if (first === undefined) return action();
    return this.#queue(first).lock.run(() => this.#withZoneLocks(rest, action));
  }

  /** The re-signing transaction: every zone's row locked, every zone caught up, then signed. */
  async #resignLocked(client: pg.ClientBase, before: number | undefined): Promise<number> {
    const events = new Map<string, MemoryCommit[]>();
    try {
      await client.query(BEGIN_WRITE);
      const rows = await client.query<{
        origin: string;
        incarnation: string;
        version: string;
        signing: string | null;
      }>('SELECT origin, incarnation, version, signing FROM zones ORDER BY origin FOR UPDATE');
      const locked = new Map<string, ZoneRow>();
      for (const r of rows.rows) locked.set(r.origin, rowOf(r));
      for (const origin of this.#replica.listZones()) {
        if (!locked.has(origin)) {
          this.#replica.dropZone(origin);
          this.#held.delete(origin);
        }
      }
      for (const row of locked.values()) {
        const held = this.#held.get(row.origin);
        if (held === undefined || held.incarnation !== row.incarnation) {
          await this.#reloadZone(client, row);
        } else await this.#catchUp(client, row.origin, row);
        events.set(row.origin, []);
      }
      for (const [origin, list] of events) this.#captures.set(origin, list);
      let count: number;
      try {
        count = await this.#replica.resign(before);
      } finally {
        for (const origin of events.keys()) this.#captures.delete(origin);
      }
      const versions = new Map<string, Held>();
      for (const [origin, list] of events) {
        const row = locked.get(origin);
        if (list.length === 0 || row === undefined) continue;
        const version = row.version + 1;
        await writeZone(client, origin, version, merge(list), this.#bounds(), this.#journal);
        versions.set(origin, {
          incarnation: row.incarnation,
          version,
          signing: this.#held.get(origin)?.signing ?? row.signing,
        });
      }
      await client.query('COMMIT');
      for (const [origin, held] of versions) this.#held.set(origin, held);
      return count;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      for (const list of events.values()) this.#undo(list);
      throw error;
    }
  }

  /** Receives the replica's writes: each belongs to the transaction of its zone. */
  #onCommit(change: MemoryCommit): void {
    const capture = this.#captures.get(change.origin);
    if (capture !== undefined) capture.push(change);
    else if (change.kind !== 'zone-removed') {
      // Every write of the replica runs inside a transaction of its zone; this is a fault.
      this.#log?.error('pg-uncaptured-write', { zone: change.origin });
    }
  }

  /** Puts back, newest first, what the events of a failed transaction replaced. */
  #undo(events: readonly MemoryCommit[]): void {
    if (this.#closed) return;
    for (const event of [...events].reverse()) {
      if (event.kind === 'zone-added') this.#replica.dropZone(event.origin);
      if (event.kind !== 'write') continue;
      if (this.#replica.zoneInfo(event.origin) !== undefined) {
        this.#replica.loadNodes(
          event.origin,
          event.before,
          event.changed === 'all' ? 'all' : [...event.before.keys()],
        );
      }
      event.replay.forEach((record, i) => {
        const previous = event.replayBefore[i];
        if (previous === undefined) this.#replica.dropReplay([record]);
        else this.#replica.loadReplay([previous]);
      });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Keeping the replica current

  /**
   * Brings the replica's copy of `origin` up to `row` (read in the same transaction: a locked
   * row, or a snapshot), from the change log or, further behind, by reloading the zone.
   * 'unknown-zone': the replica does not hold this incarnation of the zone (nothing done).
   */
  async #catchUp(
    client: pg.ClientBase,
    origin: string,
    row: ZoneRow | undefined,
  ): Promise<CatchUp> {
    const held = this.#held.get(origin);
    if (row === undefined) {
      if (held !== undefined) {
        this.#replica.dropZone(origin);
        this.#held.delete(origin);
      }
      return 'absent';
    }
    if (held === undefined || held.incarnation !== row.incarnation) return 'unknown-zone';
    if (row.signing !== held.signing) {
      this.#replica.setKeySet(origin, this.#keySetOfRow(row));
      this.#held.set(origin, { ...held, signing: row.signing });
    }
    if (held.version === row.version) return 'current';
    const entries =
      row.version > held.version
        ? await client.query<{
            version: string;
            names: string[] | null;
            replay: Buffer[];
            everything: boolean;
          }>(
            `SELECT version, names, replay, everything FROM change_log
             WHERE origin = $1 AND version > $2 AND version <= $3 ORDER BY version LIMIT $4`,
            [origin, held.version, row.version, this.#limits.catchUpMaxEntries],
          )
        : undefined;
    const rows = entries?.rows ?? [];
    // Every version in between must be there (none pruned, none too many) to replay the log.
    const complete =
      rows.length === row.version - held.version &&
      rows.every((r, i) => Number(r.version) === held.version + 1 + i && r.names !== null);
    if (!complete) {
      await this.#reloadZone(client, row);
      return 'current';
    }
    const names = new Set<string>();
    const keys = new Map<string, Buffer>();
    let everything = false;
    for (const r of rows) {
      for (const name of r.names ?? []) names.add(name);
      for (const key of r.replay) keys.set(key.toString('latin1'), key);
      everything ||= r.everything;
    }
    const nodes = await readNodes(client, origin, [...names]);
    const records = await readReplay(client, [...keys.values()]);
    this.#replica.loadNodes(origin, nodes, everything ? 'all' : [...names]);
    this.#replica.loadReplay(records.found);
    this.#replica.dropReplay(records.missing);
    this.#held.set(origin, {
      incarnation: row.incarnation,
      version: row.version,
      signing: row.signing,
    });
    return 'current';
  }

  /**
   * The key set a zone's row names, from the key directory (reloaded once for a missing key).
   * A key still missing leaves the zone without signers: it is served as stored, and its writes
   * fail with `ERR_STORE_KEY_MISSING` (logged) until the directory has the key.
   */
  #keySetOfRow(row: ZoneRow): ZoneKeySet {
    try {
      const record =
        row.signing === null
          ? undefined
          : decodeSigningRecord(row.origin, Buffer.from(row.signing));
      return record === undefined
        ? zoneKeySet(this.keys, row.origin, this.#now())
        : keySetOfRecord(this.keys, row.origin, record);
    } catch (error) {
      if (!(error instanceof StoreError) || error.code !== 'ERR_STORE_KEY_MISSING') throw error;
      this.#log?.warn('zone-key-missing', { zone: row.origin, error: error.message });
      return { dnskeys: [], signers: [], dnskeySigners: [], cds: [] };
    }
  }

  /** After a failed write, signs the zone again with the keys its row names. */
  #restoreKeySet(origin: string): void {
    const held = this.#held.get(origin);
    if (held === undefined || this.#closed || this.#replica.keySetOf(origin) === undefined) return;
    this.#replica.setKeySet(
      origin,
      this.#keySetOfRow({
        origin,
        incarnation: held.incarnation,
        version: held.version,
        signing: held.signing,
      }),
    );
  }

  /**
   * Loads the whole zone of `row` from the database (in the caller's transaction) and swaps it
   * into the replica at once, so readers never see it half loaded.
   */
  async #reloadZone(client: pg.ClientBase, row: ZoneRow): Promise<void> {
    const keySet = this.#keySetOfRow(row);
    const nodes: ZoneWrites = new Map();
    await readCursor<{ name: string; data: Buffer }>(
      client,
      'SELECT name, data FROM nodes WHERE origin = $1 ORDER BY owner',
      [row.origin],
      (batch) => {
        for (const n of batch) nodes.set(n.name, decodeNode(n.name, n.data));
      },
    );
    this.#replica.loadZone(row.origin, keySet, nodes);
    this.#held.set(row.origin, {
      incarnation: row.incarnation,
      version: row.version,
      signing: row.signing,
    });
  }

  /** The replica's first load: every zone and every anti-replay record, in one snapshot. */
  async #loadAll(): Promise<void> {
    const client = await checkout(this.#pool);
    let failed: unknown;
    try {
      await client.query(BEGIN_READ);
      for (const row of await zoneRows(client)) await this.#reloadZone(client, row);
      await readCursor<ReplayRow>(client, 'SELECT key, until, num FROM replay', [], (batch) =>
        this.#replica.loadReplay(batch.map(replayOfRow)),
      );
      await client.query('COMMIT');
    } catch (error) {
      failed = error;
      await client.query('ROLLBACK').catch(() => undefined);
      throw ioError(error, 'cannot load the PostgreSQL store');
    } finally {
      client.release(failed instanceof Error && !(failed instanceof StoreError) ? failed : false);
    }
  }

  /** Asks for a catch-up of every zone; requests made while one runs make one more. */
  #requestSync(): void {
    if (this.#closed) return;
    if (this.#syncing !== undefined) {
      this.#syncAgain = true;
      return;
    }
    this.#syncing = (async () => {
      do {
        this.#syncAgain = false;
        await this.#syncAll().catch((error: unknown) => {
          if (!this.#closed) this.#log?.warn('pg-catch-up-failed', { error: messageOf(error) });
        });
      } while (this.#syncAgain && !this.#closed);
    })().finally(() => {
      this.#syncing = undefined;
    });
  }

  /** Compares every zone's version with the replica's and catches up those behind. */
  async #syncAll(): Promise<void> {
    const rows = await zoneRows(this.#pool);
    const seen = new Set<string>();
    const work: Promise<unknown>[] = [];
    for (const row of rows) {
      seen.add(row.origin);
      const held = this.#held.get(row.origin);
      if (held === undefined || held.incarnation !== row.incarnation) {
        work.push(this.#structureSync(row.origin));
      } else if (held.version !== row.version) {
        const seen = row.version;
        work.push(
          this.#track(this.#queue(row.origin).lock.run(() => this.#syncZone(row.origin, seen))),
        );
      }
    }
    for (const origin of this.#held.keys()) {
      if (!seen.has(origin)) work.push(this.#structureSync(origin));
    }
    await Promise.all(work);
  }

  /** Catches up one zone the replica holds, in a snapshot (inside the zone's lock). */
  async #syncZone(origin: string, seen: number): Promise<void> {
    // This process's own commit, recorded meanwhile: nothing to read.
    if (this.#closed || this.#held.get(origin)?.version === seen) return;
    const client = await checkout(this.#pool);
    let failed: unknown;
    let outcome: CatchUp;
    try {
      await client.query(BEGIN_READ);
      outcome = await this.#catchUp(client, origin, await readZoneRow(client, origin));
      await client.query('COMMIT');
    } catch (error) {
      failed = error;
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release(failed instanceof Error && !(failed instanceof StoreError) ? failed : false);
    }
    if (outcome === 'unknown-zone') this.#requestSync();
  }

  /** Loads, reloads or drops one zone in the replica (structure lock, then the zone's lock). */
  #structureSync(origin: string): Promise<void> {
    return this.#track(
      this.#structure.run(() =>
        this.#queue(origin).lock.run(async () => {
          if (this.#closed) return;
          const client = await checkout(this.#pool);
          let failed: unknown;
          try {
            await client.query(BEGIN_READ);
            const row = await readZoneRow(client, origin);
            const held = this.#held.get(origin);
            if (row !== undefined && (held === undefined || held.incarnation !== row.incarnation)) {
              await this.#reloadZone(client, row);
            } else await this.#catchUp(client, origin, row);
            await client.query('COMMIT');
          } catch (error) {
            failed = error;
            await client.query('ROLLBACK').catch(() => undefined);
            throw ioError(error, 'cannot load a zone from PostgreSQL');
          } finally {
            client.release(
              failed instanceof Error && !(failed instanceof StoreError) ? failed : false,
            );
          }
        }),
      ),
    );
  }

  /** Opens the notification connection; when it is lost, opens it again and catches up. */
  async #listen(): Promise<void> {
    const client = new pg.Client(this.#connection);
    client.on('notification', () => this.#requestSync());
    const lost = (error?: unknown): void => {
      if (this.#listener !== client) return;
      this.#listener = undefined;
      if (this.#closed) return;
      this.#log?.warn('pg-listener-lost', error === undefined ? {} : { error: messageOf(error) });
      this.#relisten();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    this.#listener = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${PG_NOTIFY_CHANNEL}`);
    } catch (error) {
      this.#listener = undefined;
      await client.end().catch(() => undefined);
      throw ioError(error, 'cannot listen for changes in PostgreSQL');
    }
  }

  /**
   * Opens the notification connection again after {@link PG_RECONNECT_DELAY_MS}, and again
   * after each failure, until it is open (then catches up on what it missed) or the store
   * closes. Meanwhile the poll keeps the replica current.
   */
  #relisten(): void {
    if (this.#closed) return;
    this.#reconnect = setTimeout(() => {
      this.#listen().then(
        () => this.#requestSync(),
        () => this.#relisten(),
      );
    }, this.#limits.reconnectDelayMs);
    this.#reconnect.unref();
  }

  async #stopListening(): Promise<void> {
    const client = this.#listener;
    this.#listener = undefined;
    await client?.end().catch(() => undefined);
  }
}
