import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { backupLmdbStore, keyDirectoryPath, storeDirectory } from '@mimi-discovery/authoritative';
import type { Command } from 'commander';
import { loadConfig, type LoadedConfig } from '../config-file.js';
import type { CommandEnv } from '../context.js';
import { failure } from '../errors.js';

/**
 * `mimi-discovery backup --config C --out PATH`: an online, consistent copy of a server's store
 * while it runs (docs/operations.md §6), never key material (design §9: the keys are in the key
 * directory, backed up apart). LMDB: a compacting copy of the environment in one read
 * transaction (`backupLmdbStore`), into the new directory PATH. PostgreSQL: `pg_dump -Fc` of the
 * store's database into the file PATH (one snapshot: pg_dump reads in one transaction).
 * `db backup` is the same command under its older name.
 */

/** Flags of `backup` (and `db backup`). */
export interface BackupFlags {
  config?: string;
  out: string;
  json?: boolean;
}

/** What a backup wrote. */
export interface BackupReport {
  kind: 'lmdb' | 'postgres';
  /** The store directory or the database URL without its password. */
  store: string;
  out: string;
  /** The key directory, which the backup leaves out. */
  keys: string;
}

/** Adds `backup` to `program`. */
export function registerBackup(program: Command, env: CommandEnv): Command {
  return program
    .command('backup')
    .description("copy a server's store while it runs: no key material (keys are backed up apart)")
    .option('--config <file>', 'config file of the server (default: $MIMI_DISCOVERY_CONFIG)')
    .requiredOption(
      '--out <path>',
      'LMDB: a new (or empty) directory that receives data.mdb; PostgreSQL: the pg_dump file',
    )
    .option('--json', 'print {kind, store, out, keys} as JSON')
    .addHelpText(
      'after',
      `
The copy holds no key: back up the key directory (keys.dir, default <dataDir>/keys) apart, and
keep it as secret as the keys are. Restore: LMDB, put out/data.mdb into an empty <dataDir>/store
(mode 0700), the server stopped; PostgreSQL, pg_restore --dbname=URL PATH into an empty database.
Then start the server with the same key directory.

Examples:
  $ mimi-discovery backup --config ./dp44/config.json --out /backup/dp44-$(date +%F)
  $ mimi-discovery backup --config ./dp44-pg/config.json --out /backup/dp44-$(date +%F).dump`,
    )
    .action(async (flags: BackupFlags) => runBackup(flags, env));
}

/** Runs a backup and prints what it wrote (shared by `backup` and `db backup`). */
export async function runBackup(flags: BackupFlags, env: CommandEnv): Promise<void> {
  const loaded = await loadConfig(flags.config, env);
  const out = resolve(env.cwd, flags.out);
  const report = await backupStore(loaded, out, env);
  if (flags.json === true) env.out(`${JSON.stringify(report)}\n`);
  else if (report.kind === 'lmdb') env.out(`copied ${report.store} into ${out}/data.mdb\n`);
  else env.out(`dumped ${report.store} into ${out} (pg_dump -Fc)\n`);
}

async function backupStore(
  loaded: LoadedConfig,
  out: string,
  env: CommandEnv,
): Promise<BackupReport> {
  const config = loaded.config;
  const keys = keyDirectoryPath(config);
  if (config.store.kind === 'lmdb') {
    const store = storeDirectory(config.dataDir);
    await backupLmdbStore(store, out);
    return { kind: 'lmdb', store, out, keys };
  }
  if (existsSync(out)) {
    throw failure('ERR_CLI_EXISTS', `${out} exists: a backup goes into a new file`);
  }
  const url = config.store.url;
  await pgDump(url, out, env);
  return { kind: 'postgres', store: withoutPassword(url), out, keys };
}

/**
 * `pg_dump --format=custom` of the database at `url` into `out` (mode 0600). `PG_DUMP` in the
 * environment names the program; one line saying so when it is missing.
 */
function pgDump(url: string, out: string, env: CommandEnv): Promise<void> {
  const program = env.env.PG_DUMP ?? 'pg_dump';
  return new Promise((done, fail) => {
    execFile(
      program,
      ['--format=custom', `--file=${out}`, `--dbname=${url}`],
      { env: { ...process.env, ...env.env }, signal: env.signal },
      (error, _stdout, stderr) => {
        if (error === null) {
          done();
          return;
        }
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          fail(
            failure(
              'ERR_CLI_NO_PG_DUMP',
              `${program} not found: install the PostgreSQL client tools (Debian: postgresql-client) ` +
                'or set PG_DUMP to its path',
            ),
          );
          return;
        }
        const line = String(stderr).trim().split('\n').at(-1) ?? error.message;
        fail(failure('ERR_CLI_BACKUP', `pg_dump failed: ${line}`, error));
      },
    );
  });
}

/** A connection URL without its password, for printing. */
function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the configured database';
  }
}
