import { join } from 'node:path';
import type { Clock, Logger } from '@mimi-discovery/common';
import type { DpConfig } from '../config.js';
import { defaultKeyDirectory } from '../keys/key-directory.js';
import { openLmdbStore } from './lmdb-store.js';
import { openPgStore } from './pg-store.js';
import type { DiscoveryStore } from './store.js';

/**
 * Opening the store a server's config names (`store`, design §9): the one place where the DP
 * (`startDp`) and the command line (`mimi-discovery`'s commands) turn a config into a
 * {@link DiscoveryStore}, with the config's signing policy, so that what a command signs lasts
 * as long as what the server signs.
 */

/** What {@link openConfiguredStore} uses besides the config. */
export interface ConfiguredStoreOptions {
  /** Clock in whole seconds since the epoch; default the system clock. */
  now?: Clock;
  /**
   * LMDB only: writes on a thread of their own (`'thread'`, what a server uses, with the system
   * clock) or on the calling thread (`'inline'`, the default).
   */
  writer?: 'inline' | 'thread';
  /**
   * LMDB only: whether opening brings every zone's keys up to date (a write; default true).
   * False for a reader beside the writer (a DP's answer workers).
   */
  refreshKeys?: boolean;
  /**
   * PostgreSQL only: create or upgrade the schema at open (default true); false refuses a
   * database whose schema is not the current one (`ERR_STORE_OLDER_FORMAT`).
   */
  migrate?: boolean;
  /** Where lost connections (PostgreSQL) and the one-time move of seeds out of the store go. */
  log?: Logger;
}

/** The key directory of a config: `keys.dir`, else `<dataDir>/keys` (design §9). */
export function keyDirectoryPath(config: DpConfig): string {
  return config.keys.dir ?? defaultKeyDirectory(config.dataDir);
}

/** The store directory inside a server's data directory (the LMDB store). */
export function storeDirectory(dataDir: string): string {
  return join(dataDir, 'store');
}

/**
 * Opens the store of `config.store`: the LMDB store in `<dataDir>/store`, or the PostgreSQL
 * store at `store.url` (its schema created or upgraded unless `options.migrate` is false),
 * signing from the key directory of `config.keys` ({@link keyDirectoryPath}).
 * Rejects with the store's `StoreError`.
 */
export async function openConfiguredStore(
  config: DpConfig,
  options: ConfiguredStoreOptions = {},
): Promise<DiscoveryStore> {
  const day = 86_400;
  const signatureValidity = {
    validitySeconds: config.signing.validityDays * day,
    refreshBeforeSeconds: config.signing.refreshDays * day,
  };
  const store = config.store;
  // The journal's bounds (config `journal`); absent keys take the store's defaults.
  const journal =
    config.journal === undefined
      ? {}
      : {
          journal: {
            ...(config.journal.maxEntries === undefined
              ? {}
              : { maxEntries: config.journal.maxEntries }),
            ...(config.journal.maxOctets === undefined
              ? {}
              : { maxOctets: config.journal.maxOctets }),
          },
        };
  const keys = keyDirectoryPath(config);
  // New zones list this DP's prover key for `prover.authkeyValidityDays`; the DP renews it
  // before it lapses (`keys/authkeys.ts`).
  const proverKeyLifetimeSeconds = config.prover.authkeyValidityDays * day;
  if (store.kind === 'postgres') {
    return openPgStore({
      url: store.url,
      keys,
      proverKeyLifetimeSeconds,
      poolSize: store.poolSize,
      statementTimeoutMs: store.statementTimeoutMs,
      signatureValidity,
      ...journal,
      ...(options.now === undefined ? {} : { now: options.now }),
      ...(options.migrate === undefined ? {} : { migrate: options.migrate }),
      ...(options.log === undefined ? {} : { log: options.log }),
    });
  }
  return openLmdbStore({
    dataDir: storeDirectory(config.dataDir),
    keys,
    proverKeyLifetimeSeconds,
    ...(options.log === undefined ? {} : { log: options.log }),
    signatureValidity,
    ...journal,
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.writer === undefined ? {} : { writer: options.writer }),
    ...(options.refreshKeys === undefined ? {} : { refreshKeys: options.refreshKeys }),
  });
}
