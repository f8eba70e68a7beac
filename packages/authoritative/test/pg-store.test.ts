import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createLogger,
  keyPairFromSeed,
  type Ed25519KeyPair,
  type ResourceRecord,
} from '@mimi-discovery/common';
import {
  PG_GROUP_MAX_WRITES,
  PG_POLL_INTERVAL_MS,
  PG_POOL_MAX_SIZE,
  PG_POOL_MIN_SIZE,
  PG_RESIGN_LOCK,
  PG_SCHEMA_VERSION,
  migratePgSchema,
  openPgStore,
  type DiscoveryStore,
  type PgStoreOptions,
  type StoreError,
  type StoreOperation,
} from '../src/index.js';
import {
  CSIP,
  DAY,
  PHONE,
  RECIPIENT,
  attest,
  mappingBytes,
  maprefBytes,
  seed,
} from './registration-fixture.js';
import {
  CHILD,
  NUMBER,
  ORIGIN,
  PROVER_SEED,
  T0,
  ZONE_SEED,
  delegation,
  expectStoreError,
  fakeClock,
  mapRecord,
  putMap,
  storeBattery,
  verifiesAt,
  zoneInit,
  type FakeClock,
} from './store-battery.js';
import {
  postgresMissing,
  postgresTool,
  startPostgres,
  type TestPostgres,
} from '../../../test/helpers/postgres.js';

/**
 * The shared store battery against the PostgreSQL store, each harness on a database of its own
 * in a cluster this file starts in a temporary directory. A reopen opens the same database
 * again; a restored copy is the backup docs/operations.md describes: `pg_dump` of the data
 * without the secrets' rows, a second dump of the secrets alone, both restored into an empty
 * database.
 */

const missing = postgresMissing();
if (missing !== undefined) console.warn(`${missing}: skipping the PostgreSQL store battery`);

let cluster: TestPostgres | undefined;
const work = mkdtempSync(join(tmpdir(), 'mimi-pg-store-'));
beforeAll(async () => {
  if (missing === undefined) cluster = await startPostgres();
}, 120_000);
afterAll(async () => {
  await cluster?.stop();
  rmSync(work, { recursive: true, force: true });
});

const running = (): TestPostgres => {
  if (cluster === undefined) throw new Error('no PostgreSQL cluster');
  return cluster;
};

/**
 * The key directory of each database (front ends of one database share one, design §9; a
 * restored copy is served with the key directory of the database it was copied from).
 */
const keyDirs = new Map<string, string>();
const keyDirOf = (url: string): string => {
  let dir = keyDirs.get(url);
  if (dir === undefined) {
    dir = join(work, `keys-${keyDirs.size + 1}`);
    keyDirs.set(url, dir);
  }
  return dir;
};

/** Opens the store of `options.url` with that database's key directory. */
function openPg(options: PgStoreOptions): Promise<DiscoveryStore> {
  return openPgStore({ keys: keyDirOf(options.url), ...options });
}

let dumps = 0;
/** Backs up `url` as an operator would (`pg_dump -Fc`) and restores it into a new database. */
async function backupAndRestore(url: string): Promise<string> {
  const data = join(work, `data-${++dumps}.dump`);
  execFileSync(postgresTool('pg_dump'), ['--format=custom', `--file=${data}`, `--dbname=${url}`]);
  const restored = await running().createDatabase();
  execFileSync(postgresTool('pg_restore'), ['--exit-on-error', `--dbname=${restored}`, data]);
  keyDirs.set(restored, keyDirOf(url));
  return restored;
}

if (missing === undefined) {
  storeBattery('PostgreSQL store', async (options) => {
    const url = await running().createDatabase();
    const store = await openPg({ url, ...options });
    return {
      store,
      reopen: async (): Promise<DiscoveryStore> => {
        await store.close();
        return openPg({ url, ...options });
      },
      restoreCopy: async (current): Promise<DiscoveryStore> => {
        await current.close();
        return openPg({ url: await backupAndRestore(url), ...options });
      },
    };
  });
}

/** Resolves once `check` holds, polling; rejects after `timeoutMs` (a liveness bound only). */
async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Runs SQL on a database of the cluster with a connection of its own. */
async function sql<Row extends pg.QueryResultRow = pg.QueryResultRow>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Row>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Two store objects (as two DP processes have) over one new database holding ORIGIN. */
async function twoStores(): Promise<{
  url: string;
  clock: FakeClock;
  a: DiscoveryStore;
  b: DiscoveryStore;
  close(): Promise<void>;
}> {
  const url = await running().createDatabase();
  const clock = fakeClock();
  const options = { url, now: clock.now, proverSeed: PROVER_SEED };
  const a = await openPg(options);
  await a.addZone(
    zoneInit(ORIGIN, {
      authkeys: [{ role: 'csip', publicKey: CSIP.publicKey, notAfter: T0 + 3650 * DAY }],
    }),
  );
  const b = await openPg(options);
  return {
    url,
    clock,
    a,
    b,
    close: () => Promise.all([a.close(), b.close()]).then(() => undefined),
  };
}

const publishOf = (clock: FakeClock, recipient: Ed25519KeyPair): StoreOperation => ({
  kind: 'publish-mapping',
  name: NUMBER,
  csi: PHONE,
  mapping: mappingBytes({
    att: attest(PHONE, recipient, PROVER_SEED, T0),
    iat: clock.now(),
    recipient,
  }),
  now: clock.now(),
  authorize: true,
});

const zoneText = (store: DiscoveryStore): string =>
  JSON.stringify(store.readZone(ORIGIN), (_k, v: unknown) =>
    v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
  );

describe.skipIf(missing !== undefined)('PostgreSQL store', () => {
  it('refuses to open a database with a different prover seed', async () => {
    const url = await running().createDatabase();
    await (await openPg({ url, proverSeed: PROVER_SEED })).close();
    await expectStoreError(
      openPg({ url, proverSeed: new Uint8Array(32).fill(5) }),
      'ERR_STORE_PROVER_KEY',
    );
    const store = await openPg({ url });
    expect(Buffer.from(store.proverKey().secretKey)).toEqual(Buffer.from(PROVER_SEED));
    await store.close();
  });

  it('refuses a pool too small to re-sign beside a write, or too large', async () => {
    const url = await running().createDatabase();
    for (const poolSize of [PG_POOL_MIN_SIZE - 1, PG_POOL_MAX_SIZE + 1, 2.5]) {
      await expect(openPg({ url, poolSize })).rejects.toThrow(/poolSize/);
    }
    await (await openPg({ url, poolSize: PG_POOL_MIN_SIZE })).close();
  });

  it('creates and upgrades its schema once, and refuses a schema it does not know, changing nothing', async () => {
    const url = await running().createDatabase();
    await expectStoreError(openPg({ url, migrate: false }), 'ERR_STORE_OLDER_FORMAT');
    expect(await sql(url, `SELECT to_regclass('store_meta') AS t`)).toEqual([{ t: null }]);
    // Front ends starting together migrate once.
    const runs = await Promise.all([migratePgSchema(url), migratePgSchema(url)]);
    expect(runs.map((r) => r.from).sort()).toEqual([0, PG_SCHEMA_VERSION]);
    expect(await migratePgSchema(url)).toEqual({ from: PG_SCHEMA_VERSION, to: PG_SCHEMA_VERSION });
    await (await openPg({ url, migrate: false })).close();

    await sql(url, `UPDATE store_meta SET value = $1 WHERE key = 'schema_version'`, [
      String(PG_SCHEMA_VERSION + 1),
    ]);
    await expectStoreError(openPg({ url }), 'ERR_STORE_NEWER_FORMAT');
    await expectStoreError(migratePgSchema(url), 'ERR_STORE_NEWER_FORMAT');
    expect(await sql(url, `SELECT value FROM store_meta`)).toEqual([
      { value: String(PG_SCHEMA_VERSION + 1) },
    ]);
  });

  it('opens a current schema as a role that may read and write rows but not create tables', async () => {
    const url = await running().createDatabase();
    await migratePgSchema(url);
    const role = `front_${url.match(/mimi_(\d+)/)?.[1] ?? '0'}`;
    await sql(
      url,
      `CREATE ROLE ${role} LOGIN;
       REVOKE CREATE ON SCHEMA public FROM PUBLIC;
       GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role};
       GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${role}`,
    );
    const store = await openPg({
      url: url.replace('postgresql://postgres@', `postgresql://${role}@`),
      proverSeed: PROVER_SEED,
    });
    await store.addZone(zoneInit());
    expect((await store.apply(ORIGIN, [putMap(NUMBER)])).serial).toBe(2);
    await store.close();
  });

  it('fails a write that waits longer than the statement timeout for its zone, changing nothing', async () => {
    const url = await running().createDatabase();
    const store = await openPg({ url, proverSeed: PROVER_SEED, statementTimeoutMs: 300 });
    await store.addZone(zoneInit());
    const before = zoneText(store);
    // Another writer holds the zone's row.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT * FROM zones WHERE origin = $1 FOR UPDATE', [ORIGIN]);
    await expectStoreError(store.apply(ORIGIN, [putMap(NUMBER)]), 'ERR_STORE_IO');
    expect(zoneText(store)).toBe(before);
    await holder.query('COMMIT');
    await holder.end();
    expect((await store.apply(ORIGIN, [putMap(NUMBER)])).serial).toBe(2);
    await store.close();
  });

  it('commits the writes queued for a zone together, at most groupMaxWrites at a time', async () => {
    const url = await running().createDatabase();
    const store = await openPg({
      url,
      proverSeed: PROVER_SEED,
      limits: { groupMaxWrites: 10 },
    });
    await store.addZone(zoneInit());
    const writes = 35;
    const results = await Promise.all(
      Array.from({ length: writes }, (_, i) => store.apply(ORIGIN, [putMap(`${i}.${ORIGIN}`)])),
    );
    // One serial step per group commit, whatever number of applies it holds.
    expect(new Set(results.map((r) => r.serial)).size).toBe(Math.ceil(writes / 10));
    const rows = await sql<{ n: number }>(
      url,
      'SELECT count(*)::int AS n FROM change_log WHERE version > 1',
    );
    expect(rows).toEqual([{ n: Math.ceil(writes / 10) }]);
    await store.close();
    // The default bound.
    const other = await running().createDatabase();
    const big = await openPg({ url: other, proverSeed: PROVER_SEED });
    await big.addZone(zoneInit());
    await Promise.all(
      Array.from({ length: PG_GROUP_MAX_WRITES + 1 }, (_, i) =>
        big.apply(ORIGIN, [putMap(`${i % 10}.${Math.floor(i / 10)}.${ORIGIN}`)]),
      ),
    );
    expect(await sql(other, 'SELECT count(*)::int AS n FROM change_log WHERE version > 1')).toEqual(
      [{ n: 2 }],
    );
    await big.close();
    await expect(openPg({ url, limits: { groupMaxWrites: 0 } })).rejects.toThrow(/groupMaxWrites/);
  });

  it('keeps changeLogKeep rows of the change log per zone', async () => {
    const url = await running().createDatabase();
    const store = await openPg({ url, proverSeed: PROVER_SEED, limits: { changeLogKeep: 5 } });
    await store.addZone(zoneInit());
    for (let i = 0; i < 12; i++) await store.apply(ORIGIN, [putMap(NUMBER, i + 1)]);
    expect(await sql(url, 'SELECT version::int FROM change_log ORDER BY version')).toEqual(
      [9, 10, 11, 12, 13].map((version) => ({ version })),
    );
    await store.close();
  });

  it('has other front ends reload a zone after a write of more than changeLogMaxNames names', async () => {
    const url = await running().createDatabase();
    const options = { url, proverSeed: PROVER_SEED, limits: { changeLogMaxNames: 2 } };
    const a = await openPg(options);
    await a.addZone(zoneInit());
    const b = await openPg(options);
    await a.apply(ORIGIN, [putMap(`1.${ORIGIN}`), putMap(`2.${ORIGIN}`), putMap(`3.${ORIGIN}`)]);
    expect(await sql(url, 'SELECT names FROM change_log WHERE version = 2')).toEqual([
      { names: null },
    ]);
    await until(() => b.zoneInfo(ORIGIN)?.serial === 2);
    expect(zoneText(b)).toBe(zoneText(a));
    await Promise.all([a.close(), b.close()]);
  });

  it('reloads a zone further behind than catchUpMaxEntries rows of the change log', async () => {
    const url = await running().createDatabase();
    const a = await openPg({ url, proverSeed: PROVER_SEED });
    await a.addZone(zoneInit());
    // b hears of nothing by itself: no notifications, no poll within the test.
    const b = await openPg({
      url,
      proverSeed: PROVER_SEED,
      limits: { catchUpMaxEntries: 3, pollIntervalMs: 600_000, reconnectDelayMs: 600_000 },
    });
    await sql(
      url,
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = current_database() AND query LIKE 'LISTEN%'`,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let i = 0; i < 10; i++) await a.apply(ORIGIN, [putMap(`${i}.${ORIGIN}`)]);
    expect(b.zoneInfo(ORIGIN)?.serial).toBe(1);
    // Its own write catches it up first, inside the zone's lock.
    expect((await b.apply(ORIGIN, [putMap(NUMBER)])).serial).toBe(12);
    await until(() => a.zoneInfo(ORIGIN)?.serial === 12);
    expect(zoneText(b)).toBe(zoneText(a));
    await Promise.all([a.close(), b.close()]);
  });

  it('shows a write of one front end to the other, with the names it changed', async () => {
    const { a, b, close } = await twoStores();
    expect(b.listZones()).toEqual([ORIGIN]);
    const since = b.generation();
    await a.apply(ORIGIN, [putMap(NUMBER, 5)]);
    await until(() => b.readRRset(ORIGIN, NUMBER, 'MAP').length === 1);
    expect(b.readRRset(ORIGIN, NUMBER, 'MAP')).toEqual([mapRecord(NUMBER, 5)]);
    expect(verifiesAt(b, ORIGIN, NUMBER, 'MAP', T0)).toBe(true);
    expect(b.zoneInfo(ORIGIN)?.serial).toBe(2);
    expect([...(b.changesSince(since).names as string[])].sort()).toEqual([NUMBER, ORIGIN].sort());
    // A delegation changes answers below it: the other front end hears 'all'.
    const before = b.generation();
    await a.apply(ORIGIN, delegation(CHILD));
    await until(() => b.zoneInfo(ORIGIN)?.serial === 3);
    expect(b.changesSince(before).names).toBe('all');
    expect(zoneText(b)).toBe(zoneText(a));
    await close();
  });

  it('lands every write of two front ends on one zone, one serial step per commit', async () => {
    const { a, b, clock, close } = await twoStores();
    const keys = Array.from({ length: 16 }, (_, i) => keyPairFromSeed(seed(0x60 + i)));
    const names = Array.from(
      { length: 40 },
      (_, i) => `${i % 10}.${Math.floor(i / 10)}.9.${ORIGIN}`,
    );
    const outcomes = await Promise.all([
      ...keys.map((k, i) => (i % 2 === 0 ? a : b).applyOperation(ORIGIN, publishOf(clock, k))),
      ...names.map((n, i) => (i % 2 === 0 ? b : a).apply(ORIGIN, [putMap(n, i)])),
    ]);
    expect(outcomes.slice(0, keys.length).map((o) => 'kind' in o && o.kind)).toEqual(
      keys.map(() => 'applied'),
    );
    const serials = outcomes.map((o) => ('serial' in o ? o.serial : 0));
    const last = Math.max(...serials);
    // Each serial is one commit's (of one front end), and every step from 1 is one.
    expect(new Set(serials).size).toBe(last - 1);
    expect(last - 1).toBeLessThan(serials.length);
    const ofA = new Set(serials.filter((_, i) => (i < keys.length ? i % 2 === 0 : i % 2 === 1)));
    const ofB = new Set(serials.filter((_, i) => (i < keys.length ? i % 2 === 1 : i % 2 === 0)));
    expect([...ofA].filter((serial) => ofB.has(serial))).toEqual([]);
    for (const store of [a, b]) {
      await until(() => store.zoneInfo(ORIGIN)?.serial === last);
      expect(store.readRRset(ORIGIN, NUMBER, 'MAP')).toHaveLength(keys.length);
      names.forEach((n, i) => expect(store.readRRset(ORIGIN, n, 'MAP')).toEqual([mapRecord(n, i)]));
      expect(verifiesAt(store, ORIGIN, NUMBER, 'MAP', T0)).toBe(true);
    }
    expect(zoneText(b)).toBe(zoneText(a));
    await close();
  });

  it('keeps one journal of the writes of two front ends, which turns the old zone into the new', async () => {
    const { a, b, clock, close } = await twoStores();
    const key = (rr: ResourceRecord): string =>
      JSON.stringify(rr, (_k, v: unknown) =>
        v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
      );
    const before = new Set(a.readZone(ORIGIN).map(key));
    const names = Array.from(
      { length: 12 },
      (_, i) => `${i % 10}.${Math.floor(i / 10)}.8.${ORIGIN}`,
    );
    const results = await Promise.all([
      ...names.map((n, i) => (i % 2 === 0 ? a : b).apply(ORIGIN, [putMap(n, i)])),
      a.applyOperation(ORIGIN, publishOf(clock, keyPairFromSeed(seed(0x70)))),
      b.applyOperation(ORIGIN, publishOf(clock, keyPairFromSeed(seed(0x71)))),
    ]);
    // One serial step per group commit: fewer steps than writes, one journal entry each.
    const last = Math.max(...results.map((r) => ('serial' in r ? r.serial : 0)));
    expect(last - 1).toBeGreaterThan(0);
    expect(last - 1).toBeLessThan(names.length + 2);
    for (const store of [a, b]) await until(() => store.zoneInfo(ORIGIN)?.serial === last);
    const fromA = await a.journalSince(ORIGIN, 1);
    const fromB = await b.journalSince(ORIGIN, 1);
    expect(fromA?.map((e) => [e.from, e.to])).toEqual(
      Array.from({ length: last - 1 }, (_, i) => [i + 1, i + 2]),
    );
    expect(fromB?.map((e) => [e.from, e.to])).toEqual(fromA?.map((e) => [e.from, e.to]));
    const zone = new Set(before);
    for (const entry of fromA ?? []) {
      for (const rr of entry.deleted) expect(zone.delete(key(rr))).toBe(true);
      for (const rr of entry.added) zone.add(key(rr));
    }
    expect([...zone].sort()).toEqual(b.readZone(ORIGIN).map(key).sort());
    expect(await b.journalSince(ORIGIN, last)).toEqual([]);
    expect(await b.journalSince(ORIGIN, last + 7)).toBeUndefined();
    await close();
  });

  it('catches up after a lost notification connection', async () => {
    const { url, a, b, close } = await twoStores();
    await sql(
      url,
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = current_database() AND query LIKE 'LISTEN%'`,
    );
    await a.apply(ORIGIN, [putMap(NUMBER, 7)]);
    await until(() => b.readRRset(ORIGIN, NUMBER, 'MAP').length === 1, 3 * PG_POLL_INTERVAL_MS);
    // The listener is back: the next write arrives the usual way.
    await until(
      async () =>
        (await sql(url, `SELECT 1 FROM pg_stat_activity WHERE query LIKE 'LISTEN%'`)).length === 2,
    ).catch(() => undefined);
    await a.apply(ORIGIN, [putMap(NUMBER, 8)]);
    await until(() =>
      isDeepStrictEqual(b.readRRset(ORIGIN, NUMBER, 'MAP'), [mapRecord(NUMBER, 8)]),
    );
    await close();
  });

  it('reloads a zone when the change log no longer reaches back to what it holds', async () => {
    const { url, a, b, close } = await twoStores();
    await a.apply(ORIGIN, [putMap(NUMBER, 1)]);
    await until(() => b.zoneInfo(ORIGIN)?.serial === 2);
    // Each new change-log row goes at once, as if pruned: b must reload the zone to catch up.
    await sql(
      url,
      `CREATE FUNCTION forget() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN DELETE FROM change_log WHERE id = NEW.id; RETURN NULL; END $$;
       CREATE TRIGGER forget AFTER INSERT ON change_log FOR EACH ROW EXECUTE FUNCTION forget()`,
    );
    await a.apply(ORIGIN, [putMap(`2.${ORIGIN}`, 2)]);
    await a.apply(ORIGIN, [{ op: 'delete', name: NUMBER, type: 'MAP' }]);
    expect(await sql(url, 'SELECT id FROM change_log WHERE version > 2')).toEqual([]);
    await until(() => b.zoneInfo(ORIGIN)?.serial === 4);
    expect(zoneText(b)).toBe(zoneText(a));
    expect(b.readRRset(ORIGIN, NUMBER, 'MAP')).toEqual([]);
    expect(b.readRRset(ORIGIN, `2.${ORIGIN}`, 'MAP')).toEqual([mapRecord(`2.${ORIGIN}`, 2)]);
    await close();
  });

  it('follows a zone that another front end removed and created again with a new key', async () => {
    const { a, b, close } = await twoStores();
    await a.apply(ORIGIN, [putMap(NUMBER)]);
    await until(() => b.readRRset(ORIGIN, NUMBER, 'MAP').length === 1);
    await a.removeZone(ORIGIN);
    await until(() => b.listZones().length === 0);
    const info = await a.addZone(zoneInit(ORIGIN, { keySeed: seed(0x44) }));
    await until(() => b.zoneInfo(ORIGIN)?.keyTag === info.keyTag);
    expect(b.readRRset(ORIGIN, NUMBER, 'MAP')).toEqual([]);
    // Writes through either land on the new zone.
    expect((await b.apply(ORIGIN, [putMap(NUMBER, 9)])).serial).toBe(2);
    await until(() => a.zoneInfo(ORIGIN)?.serial === 2);
    expect(a.readRRset(ORIGIN, NUMBER, 'MAP')).toEqual([mapRecord(NUMBER, 9)]);
    await expectStoreError(b.addZone(zoneInit()), 'ERR_STORE_ZONE_EXISTS');
    await close();
  });

  it('writes to a zone created by another front end before it heard of it', async () => {
    const { url, a, b, close } = await twoStores();
    // Notifications off for b: it learns of the zone from its write.
    await sql(
      url,
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = current_database() AND query LIKE 'LISTEN%'`,
    );
    await a.addZone(zoneInit(CHILD, { keySeed: seed(0x45) }));
    expect((await b.apply(CHILD, [putMap(`1.${CHILD}`)])).serial).toBe(2);
    expect(b.readRRset(CHILD, `1.${CHILD}`, 'MAP')).toHaveLength(1);
    await expectStoreError(b.apply('example.com', [putMap('example.com')]), 'ERR_STORE_NO_ZONE');
    await close();
  });

  it('re-signs in one front end at a time, under the advisory lock', async () => {
    const { url, a, b, clock, close } = await twoStores();
    await a.apply(ORIGIN, [putMap(NUMBER)]);
    await until(() => b.zoneInfo(ORIGIN)?.serial === 2);
    clock.advance(8 * 86400);
    // Another session holds the lock: nobody here re-signs.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock($1, $2)', [...PG_RESIGN_LOCK]);
    expect(await a.resign()).toBe(0);
    expect(await b.resign()).toBe(0);
    expect(a.zoneInfo(ORIGIN)?.serial).toBe(2);
    await holder.end();
    // Both try at once: the apex RRsets and the MAP are re-signed once, in one serial.
    const counts = await Promise.all([a.resign(), b.resign()]);
    expect(counts[0] + counts[1]).toBe(5);
    await until(() => a.zoneInfo(ORIGIN)?.serial === 3 && b.zoneInfo(ORIGIN)?.serial === 3);
    expect(verifiesAt(b, ORIGIN, NUMBER, 'MAP', clock.now() + 7 * 86400)).toBe(true);
    expect(zoneText(b)).toBe(zoneText(a));
    expect(await a.resign()).toBe(0);
    await close();
  });

  it('puts the replica back when a commit fails, so a retry is not taken for a replay', async () => {
    const { url, a, clock, close } = await twoStores();
    const att = attest(PHONE, RECIPIENT, PROVER_SEED, T0);
    await a.applyOperation(ORIGIN, publishOf(clock, RECIPIENT));
    const before = zoneText(a);
    const records = a.replayRecords();
    const generation = a.generation();
    await sql(
      url,
      `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'refused for the test'; END $$;
       CREATE TRIGGER refuse BEFORE INSERT ON change_log FOR EACH ROW EXECUTE FUNCTION refuse()`,
    );
    const request: StoreOperation = {
      kind: 'mapref',
      name: NUMBER,
      request: maprefBytes(att, 'msp-dp.example.com.email.mimi.arpa', T0),
      now: clock.now(),
      authorize: true,
    };
    const failed = await Promise.allSettled([
      a.applyOperation(ORIGIN, request),
      a.apply(ORIGIN, [putMap(`1.${ORIGIN}`)]),
    ]);
    for (const outcome of failed) {
      expect(outcome.status).toBe('rejected');
      if (outcome.status === 'rejected') {
        expect((outcome.reason as StoreError).code).toBe('ERR_STORE_IO');
      }
    }
    expect(zoneText(a)).toBe(before);
    expect(a.replayRecords()).toEqual(records);
    expect(a.generation()).not.toBe(generation);
    await sql(url, 'DROP TRIGGER refuse ON change_log');
    expect(await a.applyOperation(ORIGIN, request)).toMatchObject({
      kind: 'applied',
      changed: true,
    });
    expect(await a.applyOperation(ORIGIN, request)).toMatchObject({
      kind: 'refused',
      reason: 'replayed',
    });
    await close();
  });

  it('keeps no key material in the database: a dump of it holds no seed', async () => {
    const url = await running().createDatabase();
    const store = await openPg({ url, proverSeed: PROVER_SEED });
    await store.addZone(zoneInit(ORIGIN, { keySeed: ZONE_SEED }));
    await store.close();
    const file = join(work, 'no-secrets.sql');
    execFileSync(postgresTool('pg_dump'), [`--file=${file}`, `--dbname=${url}`]);
    const { readFileSync } = await import('node:fs');
    const dump = readFileSync(file, 'utf8');
    expect(dump).toContain('CREATE TABLE public.zones');
    for (const secret of [ZONE_SEED, PROVER_SEED]) {
      expect(dump).not.toContain(Buffer.from(secret).toString('hex'));
      expect(dump).not.toContain(Buffer.from(secret).toString('base64'));
    }
    expect(dump).not.toContain('secrets');
  });

  it('moves the seeds of a schema-2 database into the key directory once, and drops its secrets', async () => {
    const url = await running().createDatabase();
    const clock = fakeClock();
    const first = await openPg({ url, now: clock.now, proverSeed: PROVER_SEED });
    await first.addZone(zoneInit(ORIGIN, { keySeed: ZONE_SEED }));
    await first.apply(ORIGIN, [putMap(NUMBER)]);
    const records = first.readZone(ORIGIN);
    const info = first.zoneInfo(ORIGIN);
    await first.close();
    // Schema version 2: the seeds in `secrets`, no `signing` column, no key directory.
    await sql(url, 'ALTER TABLE zones DROP COLUMN signing');
    await sql(url, 'CREATE TABLE secrets (name text PRIMARY KEY, seed bytea NOT NULL)');
    await sql(url, 'INSERT INTO secrets VALUES ($1, $2), ($3, $4)', [
      'prover',
      Buffer.from(PROVER_SEED),
      `zone ${ORIGIN}`,
      Buffer.from(ZONE_SEED),
    ]);
    await sql(url, `UPDATE store_meta SET value = '2' WHERE key = 'schema_version'`);
    const keys = join(work, 'moved-keys');
    const lines: string[] = [];
    const log = createLogger('authoritative', { write: (line) => lines.push(line) });
    const moved = await openPgStore({ url, keys, now: clock.now, log });
    expect(lines.filter((l) => l.includes('keys-moved-to-key-directory'))).toHaveLength(1);
    expect(moved.readZone(ORIGIN)).toEqual(records);
    expect(moved.zoneInfo(ORIGIN)).toEqual(info);
    expect(Buffer.from(moved.proverKey().secretKey)).toEqual(Buffer.from(PROVER_SEED));
    expect(moved.keys.zoneKeys(ORIGIN).map((k) => k.keyTag)).toEqual([info?.keyTag]);
    expect(await sql(url, `SELECT to_regclass('secrets') AS t`)).toEqual([{ t: null }]);
    await moved.apply(ORIGIN, delegation(CHILD));
    await moved.close();
    const again = await openPgStore({ url, keys, now: clock.now, log });
    expect(lines.filter((l) => l.includes('keys-moved-to-key-directory'))).toHaveLength(1);
    expect(again.zoneInfo(ORIGIN)?.keyTag).toBe(info?.keyTag);
    await again.close();
  });
});
