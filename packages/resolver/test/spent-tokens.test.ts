import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SPENT_ID_OCTETS, openSpentTokenStore, type SpentTokenStore } from '../src/index.js';

// The durable record of redeemed tokens: one redemption wins, whatever the concurrency, and a
// restart on the same directory remembers every acknowledged one.

const dirs: string[] = [];
const stores: SpentTokenStore[] = [];

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'spent-'));
  dirs.push(dir);
  return join(dir, 'data');
}

function open(dir: string): SpentTokenStore {
  const store = openSpentTokenStore(dir);
  stores.push(store);
  return store;
}

const id = (n: number): Uint8Array => createHash('sha256').update(`token ${n}`).digest();

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('spending a token', () => {
  it('accepts a token once and refuses it after', async () => {
    const store = open(dataDir());
    expect(await store.spend(id(1), 2_000_000_000)).toBe('fresh');
    expect(await store.spend(id(1), 2_000_000_000)).toBe('spent');
    expect(await store.spend(id(2), 2_000_000_000)).toBe('fresh');
    expect(store.size()).toBe(2);
  });

  it('lets exactly one of many concurrent spends of one token win', async () => {
    const store = open(dataDir());
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, () => store.spend(id(7), 2_000_000_000)),
    );
    expect(outcomes.filter((o) => o === 'fresh')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'spent')).toHaveLength(49);
  });

  it('remembers every acknowledged spend after a restart on the same directory', async () => {
    const dir = dataDir();
    const first = open(dir);
    for (let n = 0; n < 20; n++) expect(await first.spend(id(n), 2_000_000_000)).toBe('fresh');
    await first.close();
    const second = open(dir);
    for (let n = 0; n < 20; n++) expect(await second.spend(id(n), 2_000_000_000)).toBe('spent');
    expect(await second.spend(id(20), 2_000_000_000)).toBe('fresh');
  });

  it('makes the directory 0700 and its files 0600', async () => {
    const dir = dataDir();
    await open(dir).spend(id(1), 2_000_000_000);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    await stores.splice(0)[0]?.close();
    open(dir);
    expect(statSync(join(dir, 'data.mdb')).mode & 0o777).toBe(0o600);
  });

  it('refuses an id that is not a SHA-256 and stores nothing', async () => {
    const store = open(dataDir());
    await expect(store.spend(new Uint8Array(SPENT_ID_OCTETS - 1), 2_000_000_000)).rejects.toThrow(
      RangeError,
    );
    expect(store.size()).toBe(0);
  });

  it('refuses to write once closed', async () => {
    const store = open(dataDir());
    await store.close();
    await expect(store.spend(id(1), 2_000_000_000)).rejects.toMatchObject({
      code: 'ERR_SPENT_STORE_CLOSED',
    });
  });
});

describe('pruning', () => {
  it('drops the entries whose key has expired and keeps the others', async () => {
    const store = open(dataDir());
    await store.spend(id(1), 1000);
    await store.spend(id(2), 1000);
    await store.spend(id(3), 5000);
    expect(await store.prune(999)).toBe(0);
    expect(await store.prune(1001)).toBe(2);
    expect(store.has(id(1))).toBe(false);
    expect(store.has(id(3))).toBe(true);
    expect(store.size()).toBe(1);
  });
});
