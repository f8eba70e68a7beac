import type pg from 'pg';
import Cursor from 'pg-cursor';
import { REPLAY_PRUNE_BATCH, type ReplayRecord } from './mapping-ops.js';
import type { MemoryCommit } from './memory-store.js';
import { decodeNode, encodeNode, nodeKey } from './node-codec.js';
import { decodeReplayRecord, replayKey } from './replay-codec.js';
import type { ZoneWrites } from '../zone/zone-signer.js';
import {
  decodeJournalEntry,
  encodeJournalEntry,
  journalLimits,
  type JournalEntry,
  type JournalLimits,
} from '../zone/journal.js';

/**
 * The statements of the PostgreSQL store (`pg-store.ts`) over the tables of `pg-schema.ts`: how
 * zones' rows, nodes, anti-replay records and the change log are written and read back. Each
 * runs on the connection it is given, inside the caller's transaction.
 */

/** Rows written or read by key per statement (nodes, anti-replay records). */
export const PG_WRITE_BATCH_ROWS = 1000;

/** Rows read per step of a cursor when a replica loads a whole zone. */
export const PG_LOAD_BATCH_ROWS = 10_000;

/** Owner names listed in one change-log row; a write of more asks followers to reload. */
export const PG_CHANGE_LOG_MAX_NAMES = 10_000;

/** Change-log rows kept per zone. */
export const PG_CHANGE_LOG_KEEP = 10_000;

/** The `LISTEN`/`NOTIFY` channel of committed writes (payload: the change-log id). */
export const PG_NOTIFY_CHANNEL = 'mimi_discovery_changes';

/** A zone's row as `zones` holds it. */
export interface ZoneRow {
  origin: string;
  incarnation: number;
  version: number;
  /** The zone's signing record (`store-keys.ts`), null for a zone written before version 3. */
  signing: string | null;
}

/** What one transaction writes for one zone: the group's events merged. */
export interface ZoneWrite {
  nodes: ZoneWrites;
  replay: Map<string, ReplayRecord>;
  names: Set<string>;
  everything: boolean;
  /** The journal entries of the group's writes, in order. */
  journal: JournalEntry[];
}

/** A connection, or the pool (one statement on any connection). */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/** A `zones` row as the driver gives it. */
export interface ZoneRowText {
  origin: string;
  incarnation: string;
  version: string;
  signing: string | null;
}

/** A `zones` row as read (bigint columns come as text). */
export function rowOf(r: ZoneRowText): ZoneRow {
  return {
    origin: r.origin,
    incarnation: Number(r.incarnation),
    version: Number(r.version),
    signing: r.signing,
  };
}

/** Every zone's row, by origin. */
export async function zoneRows(client: Queryable): Promise<ZoneRow[]> {
  const rows = await client.query<ZoneRowText>(
    'SELECT origin, incarnation, version, signing FROM zones ORDER BY origin',
  );
  return rows.rows.map(rowOf);
}

/** One zone's row (unlocked), or undefined. */
export async function readZoneRow(client: Queryable, origin: string): Promise<ZoneRow | undefined> {
  const rows = await client.query<ZoneRowText>(
    'SELECT origin, incarnation, version, signing FROM zones WHERE origin = $1',
    [origin],
  );
  const row = rows.rows[0];
  return row === undefined ? undefined : rowOf(row);
}

/** The zone's row, locked until the transaction ends: the writers of one zone go one by one. */
export async function lockZone(client: Queryable, origin: string): Promise<ZoneRow | undefined> {
  const rows = await client.query<ZoneRowText>(
    'SELECT origin, incarnation, version, signing FROM zones WHERE origin = $1 FOR UPDATE',
    [origin],
  );
  const row = rows.rows[0];
  return row === undefined ? undefined : rowOf(row);
}

/** The events of one zone's transaction as one write: the last state of each node and record. */
export function merge(events: readonly MemoryCommit[]): ZoneWrite {
  const out: ZoneWrite = {
    nodes: new Map(),
    replay: new Map(),
    names: new Set(),
    everything: false,
    journal: [],
  };
  for (const event of events) {
    if (event.kind !== 'write') continue;
    if (event.journal !== undefined) out.journal.push(event.journal);
    for (const [name, node] of event.writes) {
      out.nodes.set(name, node);
      out.names.add(name);
    }
    for (const record of event.replay) out.replay.set(replayKey(record).toString('latin1'), record);
    if (event.changed === 'all') out.everything = true;
  }
  return out;
}

/**
 * Writes one zone's merged write at `version`: nodes, anti-replay records, the change-log row,
 * the zone's version and the notification (sent by PostgreSQL at commit).
 */
export async function writeZone(
  client: Queryable,
  origin: string,
  version: number,
  write: ZoneWrite,
  bounds: ChangeLogBounds = CHANGE_LOG_BOUNDS,
  journal: JournalLimits = journalLimits(undefined),
): Promise<void> {
  await putNodes(client, origin, write.nodes);
  await putReplay(client, [...write.replay.values()]);
  await putJournal(client, origin, write.journal, journal);
  await logChange(client, origin, version, write, bounds);
}

/**
 * Appends journal entries of zone `origin` (in the order of their writes) and drops the oldest
 * past `limits`. An entry that does not follow the zone's last one clears the journal first:
 * the entries must chain, or a transfer from an older serial would skip a change.
 */
export async function putJournal(
  client: Queryable,
  origin: string,
  entries: readonly JournalEntry[],
  limits: JournalLimits,
): Promise<void> {
  if (entries.length === 0) return;
  if (limits.maxEntries === 0) {
    await client.query('DELETE FROM journal WHERE origin = $1', [origin]);
    return;
  }
  const last = await client.query<{ serial_to: string }>(
    'SELECT serial_to FROM journal WHERE origin = $1 ORDER BY seq DESC LIMIT 1',
    [origin],
  );
  const lastTo = last.rows[0] === undefined ? undefined : Number(last.rows[0].serial_to);
  const rows: Array<[number, number, Buffer]> = [];
  let previous = lastTo;
  let restart = false;
  for (const entry of entries) {
    if (previous !== entry.from) {
      restart = true;
      rows.length = 0;
    }
    rows.push([entry.from, entry.to, Buffer.from(encodeJournalEntry(entry))]);
    previous = entry.to;
  }
  if (restart) await client.query('DELETE FROM journal WHERE origin = $1', [origin]);
  for (let i = 0; i < rows.length; i += PG_WRITE_BATCH_ROWS) {
    const batch = rows.slice(i, i + PG_WRITE_BATCH_ROWS);
    await client.query(
      `INSERT INTO journal (origin, serial_from, serial_to, data)
       SELECT $1, f, t, d FROM unnest($2::bigint[], $3::bigint[], $4::bytea[])
         WITH ORDINALITY AS u (f, t, d, n) ORDER BY n`,
      [origin, batch.map((r) => r[0]), batch.map((r) => r[1]), batch.map((r) => r[2])],
    );
  }
  // The newest entries within both bounds stay; the rest go, oldest first.
  await client.query(
    `DELETE FROM journal WHERE origin = $1 AND seq IN (
       SELECT seq FROM (
         SELECT seq,
                sum(octet_length(data)) OVER (ORDER BY seq DESC) AS octets,
                row_number() OVER (ORDER BY seq DESC) AS n
         FROM journal WHERE origin = $1
       ) AS kept WHERE kept.octets > $2 OR kept.n > $3
     )`,
    [origin, limits.maxOctets, limits.maxEntries],
  );
}

/**
 * The journal entries of zone `origin` from serial `from` to `current`: [] when `from` is
 * current, undefined when the journal does not lead from `from` to `current`.
 */
export async function readJournal(
  client: Queryable,
  origin: string,
  from: number,
  current: number,
): Promise<JournalEntry[] | undefined> {
  if (from === current) return [];
  // Only a serial (RFC 1982: 32 bits) can start an entry.
  if (!Number.isInteger(from) || from < 0 || from > 0xffffffff) return undefined;
  const start = await client.query<{ seq: string }>(
    'SELECT seq FROM journal WHERE origin = $1 AND serial_from = $2 ORDER BY seq DESC LIMIT 1',
    [origin, from],
  );
  const seq = start.rows[0]?.seq;
  if (seq === undefined) return undefined;
  const rows = await client.query<{ data: Buffer }>(
    'SELECT data FROM journal WHERE origin = $1 AND seq >= $2 ORDER BY seq',
    [origin, seq],
  );
  const out: JournalEntry[] = [];
  let at = from;
  for (const row of rows.rows) {
    const entry = decodeJournalEntry(row.data);
    if (entry.from !== at) return undefined;
    out.push(entry);
    at = entry.to;
    // The database may be ahead of this process's replica: stop at the serial it serves.
    if (at === current) return out;
  }
  return undefined;
}

/** Upserts and deletes nodes, {@link PG_WRITE_BATCH_ROWS} per statement. */
export async function putNodes(
  client: Queryable,
  origin: string,
  nodes: ZoneWrites,
): Promise<void> {
  const puts: Array<[Buffer, string, Buffer]> = [];
  const deletes: Buffer[] = [];
  for (const [name, node] of nodes) {
    const owner = nodeKey(origin, name);
    if (node === undefined) deletes.push(owner);
    else puts.push([owner, name, encodeNode(node)]);
  }
  for (let i = 0; i < puts.length; i += PG_WRITE_BATCH_ROWS) {
    const batch = puts.slice(i, i + PG_WRITE_BATCH_ROWS);
    await client.query(
      `INSERT INTO nodes (origin, owner, name, data)
       SELECT $1, o, n, d FROM unnest($2::bytea[], $3::text[], $4::bytea[]) AS t (o, n, d)
       ON CONFLICT (origin, owner) DO UPDATE SET name = excluded.name, data = excluded.data`,
      [origin, batch.map((p) => p[0]), batch.map((p) => p[1]), batch.map((p) => p[2])],
    );
  }
  for (let i = 0; i < deletes.length; i += PG_WRITE_BATCH_ROWS) {
    await client.query('DELETE FROM nodes WHERE origin = $1 AND owner = ANY ($2::bytea[])', [
      origin,
      deletes.slice(i, i + PG_WRITE_BATCH_ROWS),
    ]);
  }
}

/** A `replay` row as read. */
export interface ReplayRow {
  key: Buffer;
  until: string;
  num: string | null;
}

/** The `num` column of a record: a removal's `seq`, a revocation's `before`. */
function numOf(record: ReplayRecord): number | null {
  switch (record.kind) {
    case 'removal':
      return record.seq;
    case 'revocation':
      return record.before;
    case 'mapref-request':
      return null;
  }
}

/** The record of a `replay` row, through the LMDB value layout (`replay-codec.ts`). */
export function replayOfRow(row: ReplayRow): ReplayRecord {
  const value = Buffer.alloc(row.num === null ? 8 : 16);
  value.writeBigUInt64BE(BigInt(row.until), 0);
  if (row.num !== null) value.writeBigUInt64BE(BigInt(row.num), 8);
  return decodeReplayRecord(row.key, value);
}

/**
 * Upserts anti-replay records. Each is already merged with the one it replaces; merging again
 * with what is stored (the larger value wins, as `mapping-ops.ts` merges) means no writer can
 * lower a record another one wrote.
 */
export async function putReplay(
  client: Queryable,
  records: readonly ReplayRecord[],
): Promise<void> {
  for (let i = 0; i < records.length; i += PG_WRITE_BATCH_ROWS) {
    const batch = records.slice(i, i + PG_WRITE_BATCH_ROWS);
    await client.query(
      `INSERT INTO replay (key, until, num)
       SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bigint[])
       ON CONFLICT (key) DO UPDATE SET until = GREATEST(replay.until, excluded.until),
                                       num = GREATEST(replay.num, excluded.num)`,
      [batch.map(replayKey), batch.map((r) => r.until), batch.map(numOf)],
    );
  }
}

/** How much the change log says and keeps (defaults {@link CHANGE_LOG_BOUNDS}). */
export interface ChangeLogBounds {
  /** Names listed in one row; more: the row lists none, and followers reload the zone. */
  readonly maxNames: number;
  /** Rows kept per zone. */
  readonly keep: number;
}

/** The default {@link ChangeLogBounds}. */
export const CHANGE_LOG_BOUNDS: ChangeLogBounds = Object.freeze({
  maxNames: PG_CHANGE_LOG_MAX_NAMES,
  keep: PG_CHANGE_LOG_KEEP,
});

/**
 * Adds the change-log row of `version`, moves the zone to it, drops the rows older than
 * `bounds.keep` and notifies {@link PG_NOTIFY_CHANNEL}: one statement.
 */
export async function logChange(
  client: Queryable,
  origin: string,
  version: number,
  write: ZoneWrite,
  bounds: ChangeLogBounds = CHANGE_LOG_BOUNDS,
): Promise<void> {
  const names = write.names.size > bounds.maxNames ? null : [...write.names];
  await client.query(
    `WITH entry AS (
       INSERT INTO change_log (origin, version, names, replay, everything)
       VALUES ($1, $2, $3, $4, $5) RETURNING id
     ), moved AS (
       UPDATE zones SET version = $2 WHERE origin = $1
     ), pruned AS (
       DELETE FROM change_log WHERE origin = $1 AND version <= $2 - $6::bigint
     )
     SELECT pg_notify($7, id::text) FROM entry`,
    [
      origin,
      version,
      names,
      [...write.replay.values()].map(replayKey),
      write.everything,
      bounds.keep,
      PG_NOTIFY_CHANNEL,
    ],
  );
}

/** The nodes of `names` as stored (undefined: absent), {@link PG_WRITE_BATCH_ROWS} per query. */
export async function readNodes(
  client: Queryable,
  origin: string,
  names: readonly string[],
): Promise<ZoneWrites> {
  const out: ZoneWrites = new Map();
  for (const name of names) out.set(name, undefined);
  for (let i = 0; i < names.length; i += PG_WRITE_BATCH_ROWS) {
    const batch = names.slice(i, i + PG_WRITE_BATCH_ROWS).map((n) => nodeKey(origin, n));
    const rows = await client.query<{ name: string; data: Buffer }>(
      'SELECT name, data FROM nodes WHERE origin = $1 AND owner = ANY ($2::bytea[])',
      [origin, batch],
    );
    for (const row of rows.rows) out.set(row.name, decodeNode(row.name, row.data));
  }
  return out;
}

/** The anti-replay records under `keys`, and stand-ins for the keys that have none (pruned). */
export async function readReplay(
  client: Queryable,
  keys: readonly Buffer[],
): Promise<{ found: ReplayRecord[]; missing: ReplayRecord[] }> {
  const found: ReplayRecord[] = [];
  const present = new Set<string>();
  for (let i = 0; i < keys.length; i += PG_WRITE_BATCH_ROWS) {
    const rows = await client.query<ReplayRow>(
      'SELECT key, until, num FROM replay WHERE key = ANY ($1::bytea[])',
      [keys.slice(i, i + PG_WRITE_BATCH_ROWS)],
    );
    for (const row of rows.rows) {
      found.push(replayOfRow(row));
      present.add(row.key.toString('latin1'));
    }
  }
  // A record that is gone is dropped by its key; any value decodes to a record with that key.
  const missing = keys
    .filter((key) => !present.has(key.toString('latin1')))
    .map((key) => replayOfRow({ key, until: '0', num: key[0] === 0x03 ? null : '0' }));
  return { found, missing };
}

/**
 * Deletes the anti-replay records whose time has passed at `now`, {@link REPLAY_PRUNE_BATCH} per
 * transaction, through the `until` index.
 */
export async function pruneReplay(client: Queryable, now: number): Promise<void> {
  for (let deleted = REPLAY_PRUNE_BATCH; deleted === REPLAY_PRUNE_BATCH;) {
    const result = await client.query(
      // `until < $1` again outside the subquery: a record renewed meanwhile (a later removal
      // of the same key) is checked anew on its new row version, and kept.
      `DELETE FROM replay WHERE key IN (
         SELECT key FROM replay WHERE until < $1 ORDER BY until LIMIT $2) AND until < $1`,
      [now, REPLAY_PRUNE_BATCH],
    );
    deleted = result.rowCount ?? 0;
  }
}

/** Reads a query's rows through a cursor, {@link PG_LOAD_BATCH_ROWS} at a time. */
export async function readCursor<Row extends object>(
  client: pg.ClientBase,
  text: string,
  values: readonly unknown[],
  each: (rows: Row[]) => void,
): Promise<void> {
  const cursor = client.query(new Cursor<Row>(text, [...values]));
  try {
    for (;;) {
      const rows = await cursor.read(PG_LOAD_BATCH_ROWS);
      if (rows.length === 0) break;
      each(rows);
    }
  } finally {
    await cursor.close();
  }
}
