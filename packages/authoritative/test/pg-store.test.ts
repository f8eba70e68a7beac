import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgStore, type DiscoveryStore } from '../src/index.js';
import { storeBattery } from './store-battery.js';
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

let dumps = 0;
/** Backs up `url` as an operator would (data and secrets apart) and restores it into a new database. */
async function backupAndRestore(url: string): Promise<string> {
  const data = join(work, `data-${++dumps}.dump`);
  const secrets = join(work, `secrets-${dumps}.dump`);
  execFileSync(postgresTool('pg_dump'), [
    '--format=custom',
    '--exclude-table-data=secrets',
    `--file=${data}`,
    `--dbname=${url}`,
  ]);
  execFileSync(postgresTool('pg_dump'), [
    '--format=custom',
    '--data-only',
    '--table=secrets',
    `--file=${secrets}`,
    `--dbname=${url}`,
  ]);
  const restored = await running().createDatabase();
  execFileSync(postgresTool('pg_restore'), ['--exit-on-error', `--dbname=${restored}`, data]);
  execFileSync(postgresTool('pg_restore'), ['--exit-on-error', `--dbname=${restored}`, secrets]);
  return restored;
}

if (missing === undefined) {
  storeBattery('PostgreSQL store', async (options) => {
    const url = await running().createDatabase();
    const store = await openPgStore({ url, ...options });
    return {
      store,
      reopen: async (): Promise<DiscoveryStore> => {
        await store.close();
        return openPgStore({ url, ...options });
      },
      restoreCopy: async (current): Promise<DiscoveryStore> => {
        await current.close();
        return openPgStore({ url: await backupAndRestore(url), ...options });
      },
    };
  });
}

describe.skipIf(missing !== undefined)('PostgreSQL store', () => {
  it('leaves the secrets out of a data backup', async () => {
    const url = await running().createDatabase();
    const store = await openPgStore({ url });
    await store.close();
    const file = join(work, 'no-secrets.sql');
    execFileSync(postgresTool('pg_dump'), [
      '--exclude-table-data=secrets',
      `--file=${file}`,
      `--dbname=${url}`,
    ]);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const seed = (await client.query<{ seed: Buffer }>('SELECT seed FROM secrets')).rows[0]?.seed;
    await client.end();
    expect(seed).toBeDefined();
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(file, 'utf8')).not.toContain(seed?.toString('hex'));
  });
});
