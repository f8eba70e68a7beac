import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PG_SCHEMA_VERSION } from '@mimi-discovery/authoritative';
import { buildQuery, queryUdp } from '@mimi-discovery/common';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCliFixture, serve } from './fixture.js';
import {
  postgresMissing,
  postgresTool,
  startPostgres,
  type TestPostgres,
} from '../../../test/helpers/postgres.js';

// `db migrate` and `db copy`, and the other commands over a config whose store is PostgreSQL:
// a DP made by `init` on LMDB, copied into a database, then served and read from there.

const missing = postgresMissing();
if (missing !== undefined) console.warn(`${missing}: skipping the db command tests`);

const cli = createCliFixture('db');
let cluster: TestPostgres | undefined;
beforeAll(async () => {
  await cli.ok(['init', 'dp', '--dir', 'dp', '--range', '+44', '--udp', '0', '--tcp', '0']);
  if (missing === undefined) cluster = await startPostgres();
}, 120_000);
afterAll(async () => {
  await cluster?.stop();
  cli.cleanup();
});

/** A copy of the DP's config at `name`, its store the database at `url`. */
function postgresConfig(name: string, url: string): string {
  const config = JSON.parse(readFileSync(join(cli.dir, 'dp', 'config.json'), 'utf8')) as object;
  writeFileSync(
    join(cli.dir, name),
    // The DP's own key directory: the database holds no key.
    JSON.stringify({
      ...config,
      store: { kind: 'postgres', url, poolSize: 2 },
      keys: { dir: join(cli.dir, 'dp', 'keys') },
    }),
  );
  return name;
}

describe('db backup', () => {
  it('copies the LMDB store of a running server into a directory that then serves as the store', async () => {
    await cli.ok(['init', 'dp', '--dir', 'hot', '--range', '+33', '--udp', '0', '--tcp', '0']);
    const server = await serve(cli, 'hot/config.json');
    let copied: { store: string; out: string };
    try {
      copied = await cli.json([
        'db',
        'backup',
        '--config',
        'hot/config.json',
        '--out',
        'saved/store',
      ]);
    } finally {
      expect((await server.stop()).exitCode).toBe(0);
    }
    expect(copied.out).toBe(join(cli.dir, 'saved', 'store'));
    expect(statSync(join(cli.dir, 'saved', 'store', 'data.mdb')).mode & 0o777).toBe(0o600);
    const config = JSON.parse(readFileSync(join(cli.dir, 'hot', 'config.json'), 'utf8')) as object;
    // Restored beside the same key directory: the copy holds no key (design §9).
    writeFileSync(
      join(cli.dir, 'saved.json'),
      JSON.stringify({
        ...config,
        dataDir: join(cli.dir, 'saved'),
        keys: { dir: join(cli.dir, 'hot', 'keys') },
      }),
    );
    for (const command of [['ds'], ['zone', 'export', '--zone', '+33', '--no-nsec3']]) {
      expect(await cli.ok([...command, '--config', 'saved.json'])).toBe(
        await cli.ok([...command, '--config', 'hot/config.json']),
      );
    }
    const again = await cli.run([
      'db',
      'backup',
      '--config',
      'hot/config.json',
      '--out',
      'saved/store',
    ]);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(/is not empty.*\(ERR_STORE_IO\)\n$/);
  });
});

describe.skipIf(missing !== undefined)('db', () => {
  it('creates the schema once, and refuses a config of another store', async () => {
    const url = await (cluster as TestPostgres).createDatabase();
    const config = postgresConfig('migrate.json', url);
    expect(await cli.ok(['db', 'migrate', '--config', config])).toBe(
      `schema version 0 → ${PG_SCHEMA_VERSION}\n`,
    );
    expect(await cli.json(['db', 'migrate', '--config', config])).toEqual({
      from: PG_SCHEMA_VERSION,
      to: PG_SCHEMA_VERSION,
    });
    const lmdb = await cli.run(['db', 'migrate', '--config', 'dp/config.json']);
    expect(lmdb.exitCode).toBe(1);
    expect(lmdb.stderr).toMatch(/store kind "lmdb" \(ERR_CLI_STORE_KIND\)\n$/);
    const missingTool = await cli.run(['backup', '--config', config, '--out', 'pg-backup'], {
      env: { PG_DUMP: join(cli.dir, 'no-such-pg_dump') },
    });
    expect(missingTool.exitCode).toBe(2);
    expect(missingTool.stderr).toMatch(/not found.*\(ERR_CLI_NO_PG_DUMP\)\n$/);
  });

  it('refuses to read a database without the schema, changing nothing', async () => {
    const url = await (cluster as TestPostgres).createDatabase();
    const result = await cli.run(['ds', '--config', postgresConfig('empty.json', url)]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/db migrate.*\(ERR_STORE_OLDER_FORMAT\)\n$/);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const tables = await client.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`,
    );
    await client.end();
    expect(tables.rows).toEqual([]);
  });

  it('copies an LMDB store into the database, where every command then finds it', async () => {
    const url = await (cluster as TestPostgres).createDatabase();
    const config = postgresConfig('pg.json', url);
    const lmdbDs = await cli.ok(['ds', '--config', 'dp/config.json']);
    const lmdbZone = await cli.ok([
      'zone',
      'export',
      '--config',
      'dp/config.json',
      '--zone',
      '+44',
      '--no-nsec3',
    ]);
    expect(await cli.json(['db', 'copy', '--config', config])).toEqual({
      zones: 1,
      nodes: expect.any(Number) as number,
      replayRecords: 0,
    });
    // The same key (the parent's DS still fits), the same records.
    expect(await cli.ok(['ds', '--config', config])).toBe(lmdbDs);
    expect(
      await cli.ok(['zone', 'export', '--config', config, '--zone', '+44', '--no-nsec3']),
    ).toBe(lmdbZone);
    const again = await cli.run(['db', 'copy', '--config', config]);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(
      /already holds zone 4\.4\.e164\.mimi\.arpa.*\(ERR_STORE_ZONE_EXISTS\)/,
    );

    // `backup` dumps the database (pg_dump -Fc), without any seed; restored into an empty
    // database beside the same key directory, it serves the same zone.
    const dump = join(cli.dir, 'pg.dump');
    const dumped = await cli.run(['backup', '--config', config, '--out', 'pg.dump', '--json'], {
      env: { PG_DUMP: postgresTool('pg_dump') },
    });
    expect(dumped.stderr).toBe('');
    expect(JSON.parse(dumped.stdout)).toMatchObject({ kind: 'postgres', out: dump });
    const bytes = readFileSync(dump);
    for (const file of readdirSync(join(cli.dir, 'dp', 'keys'))) {
      const { seed } = JSON.parse(readFileSync(join(cli.dir, 'dp', 'keys', file), 'utf8')) as {
        seed: string;
      };
      expect(bytes.includes(Buffer.from(seed, 'base64'))).toBe(false);
    }
    const restored = await (cluster as TestPostgres).createDatabase();
    execFileSync(postgresTool('pg_restore'), ['--exit-on-error', `--dbname=${restored}`, dump]);
    expect(await cli.ok(['ds', '--config', postgresConfig('restored.json', restored)])).toBe(
      lmdbDs,
    );

    const server = await serve(cli, config);
    try {
      const udp = server.listener('udp');
      const response = await queryUdp(
        { host: udp.host, port: udp.port },
        buildQuery('4.4.e164.mimi.arpa', 'SOA'),
      );
      expect(response.rcode).toBe('NOERROR');
      expect(response.answers.map((rr) => rr.type)).toEqual(['SOA']);
    } finally {
      expect((await server.stop()).exitCode).toBe(0);
    }
  });
});
