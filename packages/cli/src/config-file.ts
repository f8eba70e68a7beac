import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { readConfigFile } from '@mimi-discovery/common';
import {
  dpConfigSchema,
  openConfiguredStore,
  storeDirectory,
  type DiscoveryStore,
  type DpConfig,
} from '@mimi-discovery/authoritative';
import type { CommandEnv } from './context.js';
import { failure, usageError } from './errors.js';

/**
 * Reading a server's config file (`dpConfigSchema`, one config per server: design §10) and
 * opening the store it names, for the commands that work on a server's data.
 *
 * Relative paths inside a config (`dataDir`, `tls.cert`, `tls.key`, the outbox, the query log) are taken
 * relative to the directory of the config file, so a config means the same thing whatever
 * directory the command runs in; `init` writes absolute paths anyway.
 */

/** The environment variable that names the config file when `--config` is not given. */
export const CONFIG_ENV = 'MIMI_DISCOVERY_CONFIG';

/** A parsed config and the file it came from. */
export interface LoadedConfig {
  /** Absolute path of the config file. */
  readonly path: string;
  readonly config: DpConfig;
}

/**
 * Reads and checks the config named by `--config` (else `$MIMI_DISCOVERY_CONFIG`). Throws
 * `ConfigError` (exit 1) for a file that is missing, not JSON or not valid.
 */
export async function loadConfig(flag: string | undefined, env: CommandEnv): Promise<LoadedConfig> {
  const path = configPath(flag, env);
  const config = await readConfigFile(path, dpConfigSchema);
  return { path, config: withAbsolutePaths(config, dirname(path)) };
}

/**
 * The absolute path of the config file named by `--config` (else `$MIMI_DISCOVERY_CONFIG`),
 * relative to the working directory; a usage error (exit 2) when neither is given.
 */
export function configPath(flag: string | undefined, env: CommandEnv): string {
  const given = flag ?? env.env[CONFIG_ENV];
  if (given === undefined || given === '') {
    throw usageError('ERR_USAGE', `--config FILE is required (or set ${CONFIG_ENV})`);
  }
  return resolve(env.cwd, given);
}

function withAbsolutePaths(config: DpConfig, base: string): DpConfig {
  const outbox = config.registration?.channels.outbox;
  return {
    ...config,
    dataDir: resolve(base, config.dataDir),
    ...(config.keys.dir === undefined ? {} : { keys: { dir: resolve(base, config.keys.dir) } }),
    ...(config.tls
      ? { tls: { cert: resolve(base, config.tls.cert), key: resolve(base, config.tls.key) } }
      : {}),
    ...(config.queryLog
      ? { queryLog: { ...config.queryLog, path: resolve(base, config.queryLog.path) } }
      : {}),
    ...(config.control
      ? {
          control: {
            ...config.control,
            ...(typeof config.control.socket === 'string'
              ? { socket: resolve(base, config.control.socket) }
              : {}),
            ...(config.control.keyFile === undefined
              ? {}
              : { keyFile: resolve(base, config.control.keyFile) }),
          },
        }
      : {}),
    ...(config.registration && outbox
      ? {
          registration: {
            ...config.registration,
            channels: {
              ...config.registration.channels,
              outbox: { path: resolve(base, outbox.path) },
            },
          },
        }
      : {}),
  };
}

/** Refuses a config of another role (exit 1): `trust-anchor` needs the root's. */
export function requireRole(loaded: LoadedConfig, role: DpConfig['role'], command: string): void {
  if (loaded.config.role !== role) {
    throw usageError(
      'ERR_CLI_ROLE',
      `${command} needs the config of ${role === 'root' ? 'the root directory' : 'a DP'} (role "${role}"); ${loaded.path} has role "${loaded.config.role}"`,
    );
  }
}

/**
 * Opens the store a server's config names (`store`: LMDB in `<dataDir>/store`, or PostgreSQL)
 * with the config's signing policy (`openConfiguredStore`), so that what the command signs lasts
 * as long as what the server signs. Unless `create`, a data directory without an LMDB store is
 * refused (`ERR_CLI_NO_STORE`) rather than given a new, empty one, and a database without the
 * current schema is refused (`ERR_STORE_OLDER_FORMAT`: `mimi-discovery db migrate` makes it).
 *
 * A running server may have the same store open: LMDB serializes writers across processes and
 * a reader sees each commit from its next read transaction on; PostgreSQL serialises the writers
 * of each zone and tells every front end of each commit (LISTEN/NOTIFY).
 */
export async function openStore(
  config: DpConfig,
  env: CommandEnv,
  options: { create?: boolean } = {},
): Promise<DiscoveryStore> {
  requireStore(config, options);
  return openConfiguredStore(config, {
    now: env.now,
    ...(config.store.kind === 'postgres' ? { migrate: options.create === true } : {}),
  });
}

/**
 * Refuses (`ERR_CLI_NO_STORE`) a config whose LMDB data directory holds no store, unless
 * `create`; a PostgreSQL store is checked when it is opened.
 */
export function requireStore(config: DpConfig, options: { create?: boolean } = {}): void {
  if (config.store.kind !== 'lmdb' || options.create === true) return;
  if (!existsSync(storeDirectory(config.dataDir))) {
    throw failure(
      'ERR_CLI_NO_STORE',
      `no store in ${config.dataDir}: create it with 'mimi-discovery init'`,
    );
  }
}

/** Runs `action` with the config's store open, and closes the store afterwards. */
export async function withStore<T>(
  config: DpConfig,
  env: CommandEnv,
  action: (store: DiscoveryStore) => Promise<T> | T,
): Promise<T> {
  const store = await openStore(config, env);
  try {
    return await action(store);
  } finally {
    await store.close();
  }
}

/** The zones to work on: `zone` when given (it must be in the store), else every zone. */
export function selectZones(store: DiscoveryStore, zone: string | undefined): string[] {
  const zones = store.listZones();
  if (zone === undefined) return zones;
  if (!zones.includes(zone)) {
    throw failure(
      'ERR_CLI_NO_ZONE',
      `the store holds no zone ${zone}${zones.length ? ` (it holds ${zones.join(', ')})` : ''}`,
    );
  }
  return [zone];
}
