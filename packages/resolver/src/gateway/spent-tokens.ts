import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { MimiError, createPendingWrites } from '@mimi-discovery/common';

/**
 * The tokens the gateway has redeemed (RFC 9577 §2.2: an origin refuses a token it has seen,
 * RFC 9576 §3.4 double-spend), kept durably in an LMDB environment in the gateway's `dataDir`,
 * so that a restart does not make a token spendable again.
 *
 * Tables (binary keys):
 * - `spent`: key the token's spentId (SHA-256 of the token, 32 octets), value the not-after of
 *   its issuer key (8 octets, big-endian unix seconds): past it the token is refused anyway, as
 *   its key has expired, and the entry may go.
 * - `expiry`: key not-after (8 octets) ‖ spentId, empty value: the index pruning walks, so its
 *   work is proportional to what expired.
 *
 * {@link SpentTokenStore.spend} decides inside one write transaction whether the token is new
 * and records it there (a conditional put): of concurrent redemptions of one token, in this
 * process or another on the same directory (LMDB serializes writers through its lock file),
 * exactly one finds it absent. It resolves `fresh` only after the commit is flushed to disk:
 * lmdb-js resolves a write at commit with `overlappingSync` and flushes after, so it awaits
 * `env.flushed` as `packages/authoritative/src/store/lmdb-store.ts` does. The gateway computes
 * no answer before that, so no answer is ever given for a token a crash could make unspent.
 * Writes queued in one event turn share one transaction and one flush (group commit).
 */

/** Entries deleted per prune transaction. */
export const SPENT_PRUNE_BATCH = 1000;
/** Octets of a spentId. */
export const SPENT_ID_OCTETS = 32;

/** A spent-token store that cannot be opened or written. */
export class SpentTokenError extends MimiError<'ERR_SPENT_STORE_IO' | 'ERR_SPENT_STORE_CLOSED'> {}

/** The durable record of redeemed tokens. */
export interface SpentTokenStore {
  /**
   * Records `spentId` as spent until `until` (unix seconds): `fresh` when it was not spent
   * (resolved once flushed), `spent` when it was. Throws {@link SpentTokenError} when the
   * store cannot be written, and `RangeError` for an id that is not 32 octets.
   */
  spend(spentId: Uint8Array, until: number): Promise<'fresh' | 'spent'>;
  /** Whether `spentId` is recorded. */
  has(spentId: Uint8Array): boolean;
  /** Deletes the entries whose `until` is before `now`; resolves with how many. */
  prune(now: number): Promise<number>;
  /** Entries held. */
  size(): number;
  /** Waits for writes in progress, then closes the environment. */
  close(): Promise<void>;
}

function timeKey(seconds: number): Buffer {
  const key = Buffer.alloc(8);
  key.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(seconds))));
  return key;
}

/** Opens (creating, mode 0700) the store in `dataDir`. */
export function openSpentTokenStore(dataDir: string): SpentTokenStore {
  let env: RootDatabase;
  let spent: Database<Buffer, Buffer>;
  let expiry: Database<Buffer, Buffer>;
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    chmodSync(dataDir, 0o700);
    env = open({ path: dataDir, noSubdir: false, maxDbs: 4 });
    for (const file of ['data.mdb', 'lock.mdb']) {
      const path = join(dataDir, file);
      if (existsSync(path)) chmodSync(path, 0o600);
    }
    spent = env.openDB<Buffer, Buffer>({
      name: 'spent',
      encoding: 'binary',
      keyEncoding: 'binary',
    });
    expiry = env.openDB<Buffer, Buffer>({
      name: 'expiry',
      encoding: 'binary',
      keyEncoding: 'binary',
    });
  } catch (cause) {
    throw new SpentTokenError('ERR_SPENT_STORE_IO', `cannot open the token store in ${dataDir}`, {
      cause,
    });
  }
  const writes = createPendingWrites();

  /** Runs `action` in a child transaction of the next group commit; resolves once flushed. */
  const write = <T>(action: () => T): Promise<T> => {
    if (writes.closed) {
      return Promise.reject(new SpentTokenError('ERR_SPENT_STORE_CLOSED', 'the store is closed'));
    }
    const run = async (): Promise<T> => {
      let result: T;
      try {
        result = await env.childTransaction(action);
      } catch (cause) {
        throw new SpentTokenError('ERR_SPENT_STORE_IO', 'the token store commit failed', { cause });
      }
      try {
        await env.flushed;
      } catch (cause) {
        throw new SpentTokenError('ERR_SPENT_STORE_IO', 'the token store flush failed', { cause });
      }
      return result;
    };
    return writes.track(run());
  };

  const checkId = (spentId: Uint8Array): Buffer => {
    if (spentId.length !== SPENT_ID_OCTETS) {
      throw new RangeError(`a spentId has ${SPENT_ID_OCTETS} octets, got ${spentId.length}`);
    }
    return Buffer.from(spentId);
  };

  return {
    async spend(spentId, until) {
      const key = checkId(spentId);
      return write(() => {
        // Read inside the write transaction: the latest committed state, and the earlier
        // children of this batch, so a concurrent spend of the same token finds this one.
        if (spent.get(key) !== undefined) return 'spent' as const;
        spent.putSync(key, timeKey(until));
        expiry.putSync(Buffer.concat([timeKey(until), key]), Buffer.alloc(0));
        return 'fresh' as const;
      });
    },
    has(spentId) {
      return spent.get(checkId(spentId)) !== undefined;
    },
    async prune(now) {
      let total = 0;
      for (let n = SPENT_PRUNE_BATCH; n === SPENT_PRUNE_BATCH;) {
        n = await write(() => {
          const expired = Array.from(
            expiry.getKeys({ end: timeKey(now), limit: SPENT_PRUNE_BATCH }),
            (key) => Buffer.from(key),
          );
          for (const indexKey of expired) {
            const id = indexKey.subarray(8);
            const value = spent.get(id);
            // A token recorded again later (impossible while it is spent) keeps its entry.
            if (value !== undefined && value.equals(indexKey.subarray(0, 8))) spent.removeSync(id);
            expiry.removeSync(indexKey);
          }
          return expired.length;
        });
        total += n;
      }
      return total;
    },
    size: () => spent.getCount(),
    close: () => writes.close(env),
  };
}
