import pg from 'pg';
import { StoreError } from './store-error.js';

/**
 * The tables of the PostgreSQL store (`pg-store.ts`) and the migrations that create and upgrade
 * them. The DP runs them at start (`startDp`), an operator with `mimi-discovery db migrate`;
 * both take an advisory lock first, so front ends starting together migrate once.
 *
 * Layout (version 3) — give each DP deployment a database of its own:
 *
 * - `store_meta (key, value)`: `schema_version`, the number of migrations applied.
 * - `zones (origin, incarnation, version, signing)`: one row per zone. A write locks the zone's row
 *   (`SELECT … FOR UPDATE`), which serialises the writers of one zone across every process;
 *   `version` counts the zone's committed writes, `incarnation` tells a zone from one removed
 *   and created again under the same origin, `signing` (since version 3) names the keys the zone
 *   is signed with (`store-keys.ts`: key tags only, as the last `refreshKeys` computed them), so
 *   that every front end signs with the same keys, taken from the key directory they share.
 * - `nodes (origin, owner, name, data)`: one row per owner name, all its RRsets and their RRSIGs
 *   as the LMDB store encodes them (`node-codec.ts`: `owner` is the node key, which sorts in
 *   DNSSEC canonical order, RFC 4034 §6.1; `data` the encoded RRsets).
 * - `change_log (id, origin, version, names, replay, everything)`: what each write of a zone
 *   changed — the owner names written (NULL: too many to list, reload the zone), the keys of the
 *   anti-replay records written, and whether answers anywhere in the zone may differ — so that
 *   every process brings its in-memory replica up to the zone's `version` by reading only those
 *   rows. The last `PG_CHANGE_LOG_KEEP` rows of each zone are kept.
 * - `replay (key, until, num)`: the anti-replay records of removals, revocations and MapRef
 *   requests (`replay-codec.ts` keys; `num` the removal's `seq` or the revocation's `before`),
 *   indexed by `until` for pruning.
 * - `journal (origin, seq, serial_from, serial_to, data)` (since version 2): each zone's journal of
 *   signed changes (`zone/journal.ts`, what IXFR sends), one row per serial change, written in
 *   the transaction of the change; `data` is `encodeJournalEntry`. Kept within the store's
 *   `journal` limits, the oldest rows dropped first; an entry that does not follow the last one
 *   starts the zone's journal afresh.
 *
 * No key material is in the database (design §9: keys live apart from data, so `pg_dump` of it
 * carries no secret): the zone keys and the prover key are in the key directory. Versions 1 and
 * 2 kept their seeds in a `secrets (name, seed)` table; the first store that opens the database
 * with a key directory moves them there and drops the table (`pg-store.ts`, under
 * {@link PG_MIGRATION_LOCK}), since a migration alone (`db migrate`) has nowhere to put them.
 */

/** Each migration's statements; migration i brings the schema from version i to i + 1. */
const MIGRATIONS: readonly (readonly string[])[] = Object.freeze([
  [
    `CREATE TABLE zones (
       origin text PRIMARY KEY,
       incarnation bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
       version bigint NOT NULL
     )`,
    `CREATE TABLE nodes (
       origin text NOT NULL REFERENCES zones (origin) ON DELETE CASCADE,
       owner bytea NOT NULL,
       name text NOT NULL,
       data bytea NOT NULL,
       PRIMARY KEY (origin, owner)
     )`,
    `CREATE TABLE change_log (
       id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       origin text NOT NULL REFERENCES zones (origin) ON DELETE CASCADE,
       version bigint NOT NULL,
       names text[],
       replay bytea[] NOT NULL,
       everything boolean NOT NULL,
       UNIQUE (origin, version)
     )`,
    `CREATE TABLE replay (
       key bytea PRIMARY KEY,
       until bigint NOT NULL,
       num bigint
     )`,
    `CREATE INDEX replay_until ON replay (until)`,
    `CREATE TABLE secrets (
       name text PRIMARY KEY,
       seed bytea NOT NULL CHECK (octet_length(seed) = 32)
     )`,
  ],
  [
    `CREATE TABLE journal (
       origin text NOT NULL REFERENCES zones (origin) ON DELETE CASCADE,
       seq bigint GENERATED ALWAYS AS IDENTITY,
       serial_from bigint NOT NULL,
       serial_to bigint NOT NULL,
       data bytea NOT NULL,
       PRIMARY KEY (origin, seq)
     )`,
    `CREATE INDEX journal_from ON journal (origin, serial_from)`,
  ],
  [
    `ALTER TABLE zones ADD COLUMN signing text`,
    // An empty `secrets` table (a new database) goes now; one holding seeds stays until a store
    // opened with a key directory has moved them (`pg-store.ts`).
    `DO $$ BEGIN
       IF NOT EXISTS (SELECT 1 FROM secrets) THEN DROP TABLE secrets; END IF;
     END $$`,
  ],
]);

/** The schema version this software writes and reads: the number of migrations it knows. */
export const PG_SCHEMA_VERSION: number = MIGRATIONS.length;

/**
 * The advisory lock key (the two-int form, `pg_advisory_xact_lock(int, int)`) that serialises
 * migrations; the first half, "MIMI" in ASCII, is shared by every lock of the store.
 */
export const PG_MIGRATION_LOCK: readonly [number, number] = Object.freeze([0x4d494d49, 1]);

/** Longest wait for a connection to the database. */
export const PG_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Creates or upgrades the store's tables in the database at `url` to {@link PG_SCHEMA_VERSION},
 * in one transaction under an advisory lock. Resolves with the versions before and after (equal
 * when there was nothing to do). Rejects with `StoreError`: `ERR_STORE_NEWER_FORMAT` for a
 * database written by a newer version (nothing is changed), `ERR_STORE_IO` when the database
 * cannot be reached or a statement fails.
 */
export async function migratePgSchema(url: string): Promise<{ from: number; to: number }> {
  const client = await connectPg(url);
  try {
    return await migrateWith(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * One connection to the database at `url`, for a command (migration, copy). Rejects with
 * `StoreError` (`ERR_STORE_IO`) when it cannot be opened within `PG_CONNECT_TIMEOUT_MS`.
 */
export async function connectPg(url: string): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
  });
  try {
    await client.connect();
  } catch (cause) {
    throw new StoreError('ERR_STORE_IO', `cannot connect to PostgreSQL: ${messageOf(cause)}`, {
      cause,
    });
  }
  // A connection that fails later reports through the query that was running.
  client.on('error', () => undefined);
  return client;
}

/** {@link migratePgSchema} over an open connection (outside any transaction). */
export async function migrateWith(client: pg.ClientBase): Promise<{ from: number; to: number }> {
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...PG_MIGRATION_LOCK]);
    // Only a new database is changed: a role without the right to create tables can start a
    // DP over a schema that is current.
    const exists = await client.query<{ present: boolean }>(
      `SELECT to_regclass('store_meta') IS NOT NULL AS present`,
    );
    if (exists.rows[0]?.present !== true) {
      await client.query('CREATE TABLE store_meta (key text PRIMARY KEY, value text NOT NULL)');
    }
    const from = await versionIn(client);
    if (from > PG_SCHEMA_VERSION) throw newerSchema(from);
    for (let version = from; version < PG_SCHEMA_VERSION; version++) {
      for (const statement of MIGRATIONS[version] ?? []) await client.query(statement);
    }
    if (from !== PG_SCHEMA_VERSION) {
      await client.query(
        `INSERT INTO store_meta (key, value) VALUES ('schema_version', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        [String(PG_SCHEMA_VERSION)],
      );
    }
    await client.query('COMMIT');
    return { from, to: PG_SCHEMA_VERSION };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (error instanceof StoreError) throw error;
    throw new StoreError('ERR_STORE_IO', `the schema migration failed: ${messageOf(error)}`, {
      cause: error,
    });
  }
}

/**
 * Checks that the database holds the schema this version reads. Rejects with `StoreError`:
 * `ERR_STORE_OLDER_FORMAT` when it has none or an older one (run `mimi-discovery db migrate`),
 * `ERR_STORE_NEWER_FORMAT` for a newer one.
 */
export async function checkPgSchema(client: pg.ClientBase): Promise<void> {
  const exists = await client.query<{ present: boolean }>(
    `SELECT to_regclass('store_meta') IS NOT NULL AS present`,
  );
  const version = exists.rows[0]?.present === true ? await versionIn(client) : 0;
  if (version > PG_SCHEMA_VERSION) throw newerSchema(version);
  if (version < PG_SCHEMA_VERSION) {
    throw new StoreError(
      'ERR_STORE_OLDER_FORMAT',
      `the database has schema version ${version}, this version needs ${PG_SCHEMA_VERSION}: ` +
        `run 'mimi-discovery db migrate' (a DP migrates at start)`,
    );
  }
}

async function versionIn(client: pg.ClientBase): Promise<number> {
  const row = await client.query<{ value: string }>(
    `SELECT value FROM store_meta WHERE key = 'schema_version'`,
  );
  const text = row.rows[0]?.value;
  if (text === undefined) return 0;
  const version = Number(text);
  if (!Number.isInteger(version) || version < 0) {
    throw new StoreError('ERR_STORE_CORRUPT', `not a store of this format: schema ${text}`);
  }
  return version;
}

function newerSchema(version: number): StoreError {
  return new StoreError(
    'ERR_STORE_NEWER_FORMAT',
    `the database has schema version ${version}, written by a newer version of this software; ` +
      `this version reads schema ${PG_SCHEMA_VERSION}`,
  );
}

/** The message of an error from the database or the driver. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
