import { createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { Clock } from '@mimi-discovery/common';
import { LRUCache } from 'lru-cache';
import { MAX_ATTEMPTS_PER_CODE } from './rate-limit.js';

/**
 * Pending one-time codes of the registration API (design §8.1): the code a CSI's owner must
 * echo back to prove control of it.
 *
 * - A code is 6 to 8 random decimal digits from `crypto.randomInt` (a CSPRNG).
 * - Only a keyed hash is kept: HMAC-SHA-256 under a key drawn when the table is created, over
 *   the CSI and the code, so a memory dump does not reveal live codes and a 6-digit code
 *   cannot be found by hashing all 10^6 candidates without the key.
 * - One live code per CSI: issuing a new one replaces the old one (and its attempt count).
 * - A code expires after `ttlSeconds`; at most `maxAttempts` wrong codes are tried against it,
 *   then it is discarded; a right code is used up.
 * - The table is bounded ({@link MAX_PENDING_CODES}); the least recently used code is dropped.
 *
 * Pending codes live in memory only and do not survive a restart: they are short-lived, and
 * nothing acknowledged is lost (the owner asks for a new code; no attestation was issued).
 */

/** How long a code stays valid, in seconds. */
export const CODE_TTL_SECONDS = 600;
/** Digits of a code (design: 6 to 8). */
export const CODE_DIGITS = 6;
/** Most codes pending at once. */
export const MAX_PENDING_CODES = 100_000;

/** What checking a code found. */
export type CodeCheck =
  | { readonly kind: 'ok' }
  /** No code is pending for the CSI (never asked, used up, discarded or evicted). */
  | { readonly kind: 'none' }
  | { readonly kind: 'expired' }
  /** Wrong code; `attemptsLeft` more wrong codes are tolerated. */
  | { readonly kind: 'invalid'; readonly attemptsLeft: number }
  /** Wrong code, and the last attempt: the code is discarded. */
  | { readonly kind: 'too-many-attempts' };

/** The pending codes. */
export interface CodeTable {
  /** Draws a code for `csi`, replacing a pending one; returns it and its expiry (seconds). */
  issue(csi: string): { code: string; expiresAt: number };
  /** Checks `code` for `csi`, counting a wrong one. Compares in constant time. */
  check(csi: string, code: string): CodeCheck;
  /** Discards `csi`'s pending code if it is still `code` (a code that could not be sent). */
  discard(csi: string, code: string): void;
  /** Number of codes pending (expired ones included until touched or evicted). */
  readonly size: number;
}

/** Settings of {@link createCodeTable}. */
export interface CodeTableOptions {
  /** The clock, whole seconds since the epoch (the server's one clock). */
  readonly now: Clock;
  readonly ttlSeconds?: number;
  readonly digits?: number;
  readonly maxAttempts?: number;
  readonly maxEntries?: number;
  /** A uniform random integer in [0, max); default `crypto.randomInt`. */
  readonly randomInt?: (max: number) => number;
}

interface Pending {
  readonly digest: Buffer;
  readonly expiresAt: number;
  attempts: number;
}

/** Creates an empty table of pending codes. */
export function createCodeTable(options: CodeTableOptions): CodeTable {
  const ttl = options.ttlSeconds ?? CODE_TTL_SECONDS;
  const digits = options.digits ?? CODE_DIGITS;
  const maxAttempts = options.maxAttempts ?? MAX_ATTEMPTS_PER_CODE;
  const draw = options.randomInt ?? ((max: number) => randomInt(max));
  if (!Number.isInteger(digits) || digits < 6 || digits > 8) {
    throw new RangeError('code digits must be 6, 7 or 8');
  }
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError('maxAttempts must be a positive integer');
  }
  if (!(ttl > 0)) throw new RangeError('ttlSeconds must be positive');
  const key = randomBytes(32);
  const table = new LRUCache<string, Pending>({ max: options.maxEntries ?? MAX_PENDING_CODES });
  const digest = (csi: string, code: string): Buffer =>
    createHmac('sha256', key).update(csi).update('\0').update(code).digest();

  return {
    issue(csi) {
      const limit = 10 ** digits;
      const n = draw(limit);
      if (!Number.isSafeInteger(n) || n < 0 || n >= limit) {
        throw new RangeError(`randomInt returned ${n}, outside [0, ${limit})`);
      }
      const code = String(n).padStart(digits, '0');
      const expiresAt = options.now() + ttl;
      table.set(csi, { digest: digest(csi, code), expiresAt, attempts: 0 });
      return { code, expiresAt };
    },
    check(csi, code) {
      const pending = table.get(csi);
      if (pending === undefined) return { kind: 'none' };
      if (options.now() >= pending.expiresAt) {
        table.delete(csi);
        return { kind: 'expired' };
      }
      if (timingSafeEqual(digest(csi, code), pending.digest)) {
        table.delete(csi);
        return { kind: 'ok' };
      }
      pending.attempts += 1;
      if (pending.attempts >= maxAttempts) {
        table.delete(csi);
        return { kind: 'too-many-attempts' };
      }
      return { kind: 'invalid', attemptsLeft: maxAttempts - pending.attempts };
    },
    discard(csi, code) {
      const pending = table.get(csi);
      if (pending !== undefined && timingSafeEqual(digest(csi, code), pending.digest)) {
        table.delete(csi);
      }
    },
    get size() {
      return table.size;
    },
  };
}
