import { chmodSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import { LMDB_MAX_READERS, LMDB_MAX_TABLES } from './lmdb-store.js';
import { StoreError } from './store-error.js';

/**
 * The online copy of an LMDB store (docs/operations.md §6): what `mdb_copy` does, through
 * lmdb-js's own LMDB (Debian's `mdb_copy` cannot read lmdb-js 3's files). The copy is one read
 * transaction of LMDB (`mdb_env_copy2`): a consistent snapshot of every table — zones, their
 * signing records, anti-replay records — taken while the server keeps answering and writing, and
 * never key material (keys live in the key directory, design §9); writers are not
 * blocked, and a write that commits meanwhile is either wholly in the copy or not at all.
 */

/**
 * Copies the LMDB store in `dataDir` (the `<dataDir>/store` of a server; it may be open in a
 * running server) into `outDir` as `data.mdb` (mode 0600; the directory is created mode 0700 and
 * must be new or empty). Restoring is putting that `data.mdb` in an empty store directory.
 * Rejects with `StoreError` (`ERR_STORE_IO`) when the store cannot be read or `outDir` used.
 */
export async function backupLmdbStore(dataDir: string, outDir: string): Promise<void> {
  if (!existsSync(join(dataDir, 'data.mdb'))) {
    throw new StoreError('ERR_STORE_IO', `no LMDB store in ${dataDir}`);
  }
  if (existsSync(outDir) && readdirSync(outDir).length > 0) {
    throw new StoreError(
      'ERR_STORE_IO',
      `${outDir} is not empty: a backup goes into a new directory`,
    );
  }
  let env: ReturnType<typeof open> | undefined;
  try {
    mkdirSync(outDir, { recursive: true, mode: 0o700 });
    chmodSync(outDir, 0o700);
    env = open({
      path: dataDir,
      noSubdir: false,
      maxDbs: LMDB_MAX_TABLES,
      readOnly: true,
      maxReaders: LMDB_MAX_READERS,
    });
    // Compacting (MDB_CP_COMPACT): free pages are left out, and with them whatever a freed
    // page still holds, such as the seeds an old layout kept before they moved to the key
    // directory.
    await env.backup(outDir, true);
    chmodSync(join(outDir, 'data.mdb'), 0o600);
  } catch (cause) {
    throw new StoreError('ERR_STORE_IO', `the backup of ${dataDir} failed: ${String(cause)}`, {
      cause,
    });
  } finally {
    await env?.close();
  }
}
