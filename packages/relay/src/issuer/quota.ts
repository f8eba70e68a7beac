import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createPendingWrites } from '@mimi-discovery/common';
import { open, type Database, type RootDatabase } from 'lmdb';

/**
 * Tokens per user per period, counted durably in LMDB (design §9), so that a restart gives no
 * user a fresh budget: a token is counted, and the count flushed to disk, before it is signed
 * and sent.
 *
 * Periods are fixed windows of `periodSeconds` from the Unix epoch: period p covers
 * [p × periodSeconds, (p + 1) × periodSeconds). The count of user u in period p is the value at
 * the key `[periodSeconds, p, u]`; keys of other periods are deleted when a new period is first
 * seen, so the table holds at most one entry per user (and a change of `periodSeconds` starts
 * every count afresh rather than mixing two numberings).
 *
 * A charge is decided inside the write transaction that records it (read the count, refuse at
 * the cap, else write count + 1): lmdb-js runs the transactions of concurrent charges one after
 * the other, each seeing the ones before, so concurrent requests of one user never exceed the
 * cap, whichever process writes (LMDB serialises writers through its lock file). Charges queued
 * in one event turn share one commit and one flush (group commit).
 */

/** What a charge gave. */
export type Charge =
  | { readonly kind: 'charged'; readonly remaining: number }
  | { readonly kind: 'exhausted'; readonly retryAfter: number };

/** The counters. */
export interface TokenQuota {
  /** Counts one token for `user` at `nowS` unless the user has had every token of the period. */
  charge(user: string, nowS: number): Promise<Charge>;
  /** Tokens `user` has had in the period of `nowS` (a read outside any transaction). */
  used(user: string, nowS: number): number;
  /** Waits for pending charges and closes the environment. Idempotent. */
  close(): Promise<void>;
}

/** How tokens are counted. */
export interface TokenQuotaOptions {
  readonly dataDir: string;
  readonly tokensPerPeriod: number;
  readonly periodSeconds: number;
}

type CounterKey = [number, number, string];

/** Opens (creating it 0700, its files 0600) the counters' LMDB environment. */
export function openTokenQuota(options: TokenQuotaOptions): TokenQuota {
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  chmodSync(options.dataDir, 0o700);
  const env: RootDatabase = open({ path: options.dataDir, noSubdir: false, maxDbs: 2 });
  for (const file of ['data.mdb', 'lock.mdb']) {
    const path = join(options.dataDir, file);
    if (existsSync(path)) chmodSync(path, 0o600);
  }
  const counts: Database<number, CounterKey> = env.openDB({ name: 'tokens' });
  const { periodSeconds, tokensPerPeriod } = options;
  const writes = createPendingWrites();
  let prunedPeriod = -1;

  const periodOf = (nowS: number): number => Math.floor(nowS / periodSeconds);
  const keyOf = (user: string, period: number): CounterKey => [periodSeconds, period, user];

  /** Inside a write transaction: deletes the counts of every other period. */
  const pruneOtherPeriods = (period: number): void => {
    for (const key of counts.getKeys()) {
      if (key[0] !== periodSeconds || key[1] !== period) counts.removeSync(key);
    }
  };

  const charge = async (user: string, nowS: number): Promise<Charge> => {
    if (writes.closed) throw new Error('the token counters are closed');
    const period = periodOf(nowS);
    const key = keyOf(user, period);
    const granted = await env.childTransaction(() => {
      if (period !== prunedPeriod) {
        pruneOtherPeriods(period);
        prunedPeriod = period;
      }
      const used = counts.get(key) ?? 0;
      if (used >= tokensPerPeriod) return -1;
      counts.putSync(key, used + 1);
      return tokensPerPeriod - used - 1;
    });
    // Design §9: acknowledged only once flushed (with overlappingSync the commit resolves first).
    await env.flushed;
    if (granted < 0) {
      return { kind: 'exhausted', retryAfter: Math.max(1, (period + 1) * periodSeconds - nowS) };
    }
    return { kind: 'charged', remaining: granted };
  };

  return {
    charge(user, nowS) {
      return writes.track(charge(user, nowS));
    },
    used(user, nowS) {
      return counts.get(keyOf(user, periodOf(nowS))) ?? 0;
    },
    close: () => writes.close(env),
  };
}
