import { resolve } from 'node:path';
import {
  PG_SCHEMA_VERSION,
  copyStoreToPg,
  keyDirectoryPath,
  migratePgSchema,
  openLmdbStore,
  storeDirectory,
  type StoreCopyReport,
} from '@mimi-discovery/authoritative';
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { loadConfig, type LoadedConfig } from '../config-file.js';
import type { CommandEnv } from '../context.js';
import { failure, usageError } from '../errors.js';
import { runBackup, type BackupFlags } from './backup.js';

/**
 * `db migrate`, `db copy` and `db backup`: a server's store. `migrate` creates or upgrades the
 * schema of the PostgreSQL store (`store.kind "postgres"`; a DP does it at start too; run it
 * first when the DP's database role may not change the schema). `copy` moves a DP from its LMDB
 * store to the database: every zone as it is (records, signatures, serial, zone key), the prover
 * key and the anti-replay records, in one transaction, into a database that holds no zone yet.
 * `backup` is `mimi-discovery backup` (`backup.ts`) under its older name.
 */

interface DbFlags {
  config?: string;
  json?: boolean;
}

interface CopyFlags extends DbFlags {
  from?: string;
}

/** Adds `db` (`migrate`, `copy`, `backup`) to `program`. */
export function registerDb(program: Command, env: CommandEnv): Command {
  const db = program
    .command('db')
    .description("a server's store: PostgreSQL schema, moving from LMDB, LMDB online backup");
  db.addHelpText(
    'after',
    `
Examples:
  $ mimi-discovery db migrate --config ./dp44/config.json
  $ mimi-discovery db copy --config ./dp44/config.json
  $ mimi-discovery db backup --config ./dp44/config.json --out /backup/dp44`,
  );
  db.command('migrate')
    .description(
      `create or upgrade the store's schema in the database (to version ${PG_SCHEMA_VERSION})`,
    )
    .option('--config <file>', 'config file of the server (default: $MIMI_DISCOVERY_CONFIG)')
    .option('--json', 'print {from, to} as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery db migrate --config ./dp44/config.json
  $ PGPASSWORD=… mimi-discovery db migrate --config ./dp44/config.json --json`,
    )
    .action(async (flags: DbFlags) => {
      const url = postgresUrl(await loadConfig(flags.config, env), 'db migrate');
      const { from, to } = await migratePgSchema(url);
      if (flags.json === true) env.out(`${JSON.stringify({ from, to })}\n`);
      else if (from === to) env.out(`schema version ${to}: nothing to do\n`);
      else env.out(`schema version ${from} → ${to}\n`);
    });
  db.command('copy')
    .description('copy an LMDB store (default: the one in the data directory) into the database')
    .option('--config <file>', 'config file of the server (default: $MIMI_DISCOVERY_CONFIG)')
    .option('--from <dir>', 'the LMDB store directory (default: <dataDir>/store of the config)')
    .option('--json', 'print {zones, nodes, replayRecords} as JSON')
    .addHelpText(
      'after',
      `
Stop the DP that writes the LMDB store first; the database must hold no zone yet.

Examples:
  $ mimi-discovery db copy --config ./dp44/config.json
  $ mimi-discovery db copy --config ./dp44/config.json --from /srv/old-dp44/store --json`,
    )
    .action(async (flags: CopyFlags) => {
      const loaded = await loadConfig(flags.config, env);
      const url = postgresUrl(loaded, 'db copy');
      const from =
        flags.from === undefined
          ? storeDirectory(loaded.config.dataDir)
          : resolve(env.cwd, flags.from);
      if (!existsSync(from)) {
        throw failure('ERR_CLI_NO_STORE', `no LMDB store in ${from}`);
      }
      const source = await openLmdbStore({
        dataDir: from,
        keys: keyDirectoryPath(loaded.config),
        now: env.now,
      });
      let report: StoreCopyReport;
      try {
        report = await copyStoreToPg(source, url, env.now());
      } finally {
        await source.close();
      }
      if (flags.json === true) env.out(`${JSON.stringify(report)}\n`);
      else {
        env.out(
          `copied ${report.zones} zone(s), ${report.nodes} node(s) and ` +
            `${report.replayRecords} anti-replay record(s) from ${from}\n`,
        );
      }
    });
  db.command('backup')
    .description("the same as 'mimi-discovery backup' (its older name)")
    .option('--config <file>', 'config file of the server (default: $MIMI_DISCOVERY_CONFIG)')
    .requiredOption(
      '--out <path>',
      'LMDB: a new (or empty) directory that receives data.mdb; PostgreSQL: the pg_dump file',
    )
    .option('--json', 'print {kind, store, out, keys} as JSON')
    .addHelpText(
      'after',
      `
The copy holds no key material: back up the key directory apart (see 'mimi-discovery backup').

Examples:
  $ mimi-discovery db backup --config ./dp44/config.json --out /backup/dp44-$(date +%F)`,
    )
    .action(async (flags: BackupFlags) => runBackup(flags, env));
  return db;
}

/** The config's PostgreSQL URL; a usage error (exit 1) for a config of another store. */
function postgresUrl(loaded: LoadedConfig, command: string): string {
  const store = loaded.config.store;
  if (store.kind !== 'postgres') {
    throw usageError(
      'ERR_CLI_STORE_KIND',
      `${command} needs a config with "store": { "kind": "postgres", "url": … }; ` +
        `${loaded.path} has store kind "${store.kind}"`,
    );
  }
  return store.url;
}
