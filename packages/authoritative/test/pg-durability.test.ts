import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyRRset, type RecordOf } from '@mimi-discovery/common';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgStore, type DiscoveryStore } from '../src/index.js';
import { WRITER_ORIGIN, writeOf } from './fixtures/durable-writer.js';
import { bundleFixture } from '../../../test/helpers/strace.js';
import {
  postgresMissing,
  startPostgres,
  type TestPostgres,
} from '../../../test/helpers/postgres.js';

/**
 * Design §9 over PostgreSQL: a write is acknowledged only after its `COMMIT` returned with
 * `synchronous_commit = on`, so nothing acknowledged is lost when the writing process is killed,
 * when the database server itself is killed (crash recovery replays the WAL it flushed), or when
 * two processes write to one zone at once (each zone's writers are serialised by its row lock).
 * A kill cannot show a flush happened: a third test sets the database's default to
 * `synchronous_commit = off` and counts the WAL flushes the store's commits still cause.
 */

const missing = postgresMissing();
if (missing !== undefined) console.warn(`${missing}: skipping the PostgreSQL durability tests`);

const dir = mkdtempSync(join(tmpdir(), 'mimi-pg-durability-'));
const writer = join(dir, 'durable-writer.mjs');
/** The key directory every process of the test signs from (as front ends of one database share one). */
const keysDir = join(dir, 'keys');
let cluster: TestPostgres | undefined;
beforeAll(async () => {
  if (missing !== undefined) return;
  await bundleFixture(join(import.meta.dirname, 'fixtures', 'durable-writer.ts'), writer);
  cluster = await startPostgres();
}, 120_000);
afterAll(async () => {
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const running = (): TestPostgres => {
  if (cluster === undefined) throw new Error('no PostgreSQL cluster');
  return cluster;
};

/**
 * A writer child: its acknowledged writes and the serials of their commits, and promises for
 * `wanted` of them and its exit.
 */
function startWriter(
  url: string,
  count: number,
  concurrency: number,
  first: number,
  wanted: number,
): {
  child: ChildProcess;
  acks: number[];
  serials: Set<number>;
  reached: Promise<void>;
  exited: Promise<void>;
} {
  const child = spawn(
    process.execPath,
    [writer, url, String(count), String(concurrency), String(first), keysDir],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const acks: number[] = [];
  const serials = new Set<number>();
  let buffered = '';
  let reach: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => (reach = resolve));
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      const m = /^ack (\d+)$/.exec(line);
      if (m !== null) acks.push(Number(m[1]));
      const s = /^serial (\d+)$/.exec(line);
      if (s !== null) serials.add(Number(s[1]));
    }
    if (acks.length >= wanted) reach();
  });
  child.stderr?.resume();
  const exited = new Promise<void>((resolve) =>
    child.on('close', () => {
      reach();
      resolve();
    }),
  );
  return { child, acks, serials, reached, exited };
}

/** Creates the writers' zone, so that concurrent writers do not race to create it. */
async function createZone(url: string): Promise<void> {
  const store = await openPgStore({ url, keys: keysDir, now: () => 1767225600 });
  await store.addZone({
    origin: WRITER_ORIGIN,
    nameservers: [`ns1.${WRITER_ORIGIN}`],
    mname: `ns1.${WRITER_ORIGIN}`,
    rname: `hostmaster.${WRITER_ORIGIN}`,
  });
  await store.close();
}

/** Expects every write of `acks` to be served by `store`, signed. */
function expectServed(store: DiscoveryStore, acks: readonly number[]): void {
  const dnskeys = store.readRRset(WRITER_ORIGIN, WRITER_ORIGIN, 'DNSKEY');
  const view = store.zoneView(WRITER_ORIGIN);
  const lost: number[] = [];
  for (const n of acks) {
    const { name, data } = writeOf(n);
    const [map] = store.readRRset(WRITER_ORIGIN, name, 'MAP');
    const rrsig = view?.node(name)?.signatures.get('MAP')?.[0] as RecordOf<'RRSIG'>;
    if (
      map?.type !== 'MAP' ||
      !Buffer.from(map.data).equals(data) ||
      verifyRRset([map], rrsig, dnskeys, 1767225600).kind !== 'verified'
    ) {
      lost.push(n);
    }
  }
  expect(lost, 'acknowledged but not stored').toEqual([]);
}

describe.skipIf(missing !== undefined)('durability of the PostgreSQL store', () => {
  it('keeps every acknowledged write of two processes writing one zone, when both are killed with SIGKILL', async () => {
    const url = await running().createDatabase();
    await createZone(url);
    const one = startWriter(url, 100_000, 8, 0, 150);
    const two = startWriter(url, 100_000, 8, 1_000_000, 150);
    // A safety net only: each writer acknowledges many writes a second.
    const timeout = setTimeout(() => {
      one.child.kill('SIGKILL');
      two.child.kill('SIGKILL');
    }, 60_000);
    await Promise.all([one.reached, two.reached]);
    one.child.kill('SIGKILL');
    two.child.kill('SIGKILL');
    await Promise.all([one.exited, two.exited]);
    clearTimeout(timeout);
    expect(one.child.signalCode).toBe('SIGKILL');
    expect(two.child.signalCode).toBe('SIGKILL');
    expect(one.acks.length).toBeGreaterThanOrEqual(150);
    expect(two.acks.length).toBeGreaterThanOrEqual(150);

    const store = await openPgStore({ url, keys: keysDir, now: () => 1767225600 });
    expectServed(store, [...one.acks, ...two.acks]);
    // One serial step per commit, each commit of one process: no serial acknowledged to both
    // (none of either process's commits was lost to the other), every one of them durable.
    expect([...one.serials].filter((serial) => two.serials.has(serial))).toEqual([]);
    expect(store.zoneInfo(WRITER_ORIGIN)?.serial).toBeGreaterThanOrEqual(
      Math.max(...one.serials, ...two.serials),
    );
    await store.close();
  });

  it('keeps every acknowledged write when the database server is killed with SIGKILL mid-stream', async () => {
    const url = await running().createDatabase();
    await createZone(url);
    const w = startWriter(url, 100_000, 8, 0, 200);
    const timeout = setTimeout(() => w.child.kill('SIGKILL'), 60_000);
    await w.reached;
    running().kill();
    await w.exited;
    clearTimeout(timeout);
    // The writer's writes in flight failed with the server: it stopped without acknowledging them.
    expect(w.child.exitCode).toBe(1);
    expect(w.acks.length).toBeGreaterThanOrEqual(200);
    await running().restart();
    const store = await openPgStore({ url, keys: keysDir, now: () => 1767225600 });
    expectServed(store, w.acks);
    expect(store.zoneInfo(WRITER_ORIGIN)?.serial).toBeGreaterThanOrEqual(Math.max(...w.serials));
    await store.close();
  });

  it('keeps answering while the database is down, refuses writes, and catches up once it is back', async () => {
    const url = await running().createDatabase();
    await createZone(url);
    const now = (): number => 1767225600;
    const a = await openPgStore({ url, keys: keysDir, now });
    const put = (n: number) => {
      const { name, data } = writeOf(n);
      return a.apply(WRITER_ORIGIN, [
        {
          op: 'put',
          name,
          type: 'MAP',
          records: [{ name, type: 'MAP', class: 'IN', ttl: 300, data }],
        },
      ]);
    };
    await put(1);
    const serial = a.zoneInfo(WRITER_ORIGIN)?.serial;
    running().kill();
    // Longer than a reconnection delay: the first attempts to listen again fail.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expectServed(a, [1]);
    await expect(put(2)).rejects.toMatchObject({ code: 'ERR_STORE_IO' });
    expect(a.readRRset(WRITER_ORIGIN, writeOf(2).name, 'MAP')).toEqual([]);
    expect(a.zoneInfo(WRITER_ORIGIN)?.serial).toBe(serial);
    await running().restart();
    await put(3);
    // Another front end's write reaches this one again.
    const b = await openPgStore({ url, keys: keysDir, now });
    const { name, data } = writeOf(4);
    await b.apply(WRITER_ORIGIN, [
      {
        op: 'put',
        name,
        type: 'MAP',
        records: [{ name, type: 'MAP', class: 'IN', ttl: 300, data }],
      },
    ]);
    const deadline = Date.now() + 10_000;
    while (a.readRRset(WRITER_ORIGIN, name, 'MAP').length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expectServed(a, [1, 3, 4]);
    // Both listen for notifications: the first, after attempts that failed while the server was down.
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const listening = await admin.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND query LIKE 'LISTEN%'`,
    );
    await admin.end();
    expect(listening.rows[0]).toEqual({ n: 2 });
    await Promise.all([a.close(), b.close()]);
  });

  it('flushes the WAL at each commit even where the database default is synchronous_commit = off', async () => {
    const url = await running().createDatabase();
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    admin.on('error', () => undefined);
    try {
      await admin.query(
        `DO $$ BEGIN
           EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', current_database());
         END $$`,
      );
      const walSyncs = async (): Promise<number> => {
        await admin.query('SELECT pg_stat_clear_snapshot()');
        // Backends report WAL statistics when they end; the connections counted have ended.
        const row = await admin.query<{ wal_sync: string }>('SELECT wal_sync FROM pg_stat_wal');
        return Number(row.rows[0]?.wal_sync);
      };
      const writes = 40;
      await createZone(url);

      // The control: the same number of commits without the store's setting.
      const plain = new pg.Client({ connectionString: url });
      await plain.connect();
      await plain.query('CREATE TABLE control (n int)');
      const beforePlain = await walSyncs();
      for (let n = 0; n < writes; n++) await plain.query('INSERT INTO control VALUES ($1)', [n]);
      await plain.end();
      await new Promise((resolve) => setTimeout(resolve, 300));
      const plainSyncs = (await walSyncs()) - beforePlain;

      const before = await walSyncs();
      const store = await openPgStore({ url, keys: keysDir, now: () => 1767225600 });
      for (let n = 0; n < writes; n++) {
        const { name, data } = writeOf(n);
        await store.apply(WRITER_ORIGIN, [
          {
            op: 'put',
            name,
            type: 'MAP',
            records: [{ name, type: 'MAP', class: 'IN', ttl: 300, data }],
          },
        ]);
      }
      await store.close();
      await new Promise((resolve) => setTimeout(resolve, 300));
      const storeSyncs = (await walSyncs()) - before;
      expect(plainSyncs).toBeLessThan(writes / 2);
      expect(storeSyncs).toBeGreaterThanOrEqual(writes);
    } finally {
      await admin.end();
    }
  });
});
