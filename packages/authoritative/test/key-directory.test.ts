import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createZoneKey } from '@mimi-discovery/common';
import {
  KEY_FILE_MODE,
  MAX_KEYS_PER_ZONE,
  PROVER_KEY_FILE,
  createMemoryKeyDirectory,
  openKeyDirectory,
  type KeyDirectory,
} from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'mimi-keys-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(root, `k${n++}`);
const SEED = new Uint8Array(32).fill(7);
const PROVER = new Uint8Array(32).fill(9);

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

async function rejectCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

describe('openKeyDirectory', () => {
  it('creates the directory 0700 and the prover key file 0600 from the configured seed', () => {
    const dir = fresh();
    const keys = openKeyDirectory(dir, { proverSeed: PROVER });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, PROVER_KEY_FILE)).mode & 0o777).toBe(KEY_FILE_MODE);
    expect(keys.proverKey().secretKey).toEqual(PROVER);
    expect(openKeyDirectory(dir).proverKey().publicKey).toEqual(keys.proverKey().publicKey);
  });

  it('refuses a different configured prover seed', () => {
    const dir = fresh();
    openKeyDirectory(dir, { proverSeed: PROVER });
    expect(codeOf(() => openKeyDirectory(dir, { proverSeed: SEED }))).toBe('ERR_KEYS_PROVER_KEY');
  });

  it('refuses to create a missing directory with create false', () => {
    expect(codeOf(() => openKeyDirectory(fresh(), { create: false }))).toBe(
      'ERR_KEYS_NO_DIRECTORY',
    );
  });

  it('refuses a directory readable by group or others, as ssh does', () => {
    const dir = fresh();
    openKeyDirectory(dir);
    chmodSync(dir, 0o750);
    expect(codeOf(() => openKeyDirectory(dir))).toBe('ERR_KEYS_PERMISSIONS');
    chmodSync(dir, 0o700);
    expect(codeOf(() => openKeyDirectory(dir))).toBeUndefined();
  });

  it('refuses a key file readable by others, and reload keeps the state it had', async () => {
    const dir = fresh();
    const keys = openKeyDirectory(dir);
    const added = await keys.addZoneKey('Example.', { created: 1, publish: 1, active: 1 }, SEED);
    const file = readdirSync(dir).find((f) => f.startsWith('K')) as string;
    chmodSync(join(dir, file), 0o644);
    expect(codeOf(() => openKeyDirectory(dir))).toBe('ERR_KEYS_PERMISSIONS');
    expect(codeOf(() => keys.reload())).toBe('ERR_KEYS_PERMISSIONS');
    expect(keys.zoneKeys('example')).toEqual([added]);
  });

  it('refuses a damaged key file whose public key does not match its seed', async () => {
    const dir = fresh();
    const keys = openKeyDirectory(dir);
    await keys.addZoneKey('example', { created: 1, publish: 1 }, SEED);
    const file = join(dir, readdirSync(dir).find((f) => f.startsWith('K')) as string);
    const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    json.publicKey = Buffer.alloc(32, 1).toString('base64');
    writeFileSync(file, JSON.stringify(json), { mode: 0o600 });
    expect(codeOf(() => openKeyDirectory(dir))).toBe('ERR_KEYS_CORRUPT');
  });
});

describe('zone keys in the directory', () => {
  it('writes a BIND-named 0600 file per key, and another process sees it on reload', async () => {
    const dir = fresh();
    const a = openKeyDirectory(dir);
    const b = openKeyDirectory(dir);
    const key = await a.addZoneKey('example', { created: 10, publish: 10, active: 10 }, SEED);
    const expected = createZoneKey('example', { seed: SEED });
    expect(key.keyTag).toBe(expected.keyTag);
    const name = `Kexample.+015+${String(key.keyTag).padStart(5, '0')}.key`;
    expect(statSync(join(dir, name)).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
    expect(b.zoneKeys('example')).toEqual([]);
    expect(b.reload()).toBe(true);
    expect(b.reload()).toBe(false);
    expect(b.zoneKeys('example')).toEqual([key]);
    expect(b.privateKey(key)?.keyPair.secretKey).toEqual(SEED);
    await a.setTiming('example', key.keyTag, { inactive: 99 });
    expect(b.reload()).toBe(true);
    expect(b.zoneKeys('example')[0]?.timing).toEqual({
      created: 10,
      publish: 10,
      active: 10,
      inactive: 99,
    });
    await a.deleteZoneKey('example', key.keyTag);
    expect(b.reload()).toBe(true);
    expect(b.zoneKeys('example')).toEqual([]);
  });

  it('merges a timing change into what another process wrote since, not into a stale copy', async () => {
    const dir = fresh();
    const a = openKeyDirectory(dir);
    const key = await a.addZoneKey('example', { created: 10, publish: 10, active: 10 }, SEED);
    const b = openKeyDirectory(dir);
    // `a` (the server's roller, say) has not reloaded when `b` (a command) sets another field.
    await b.setTiming('example', key.keyTag, { inactive: 99 });
    await a.setTiming('example', key.keyTag, { remove: 199 });
    const c = openKeyDirectory(dir);
    expect(c.zoneKeys('example')[0]?.timing).toEqual({
      created: 10,
      publish: 10,
      active: 10,
      inactive: 99,
      remove: 199,
    });
  });

  it('names the root zone K.+015+<tag>.key', async () => {
    const dir = fresh();
    const keys = openKeyDirectory(dir);
    const key = await keys.addZoneKey('.', { created: 1, publish: 1 });
    expect(readdirSync(dir)).toContain(`K.+015+${String(key.keyTag).padStart(5, '0')}.key`);
    expect(openKeyDirectory(dir).zoneKeys('.')).toEqual([key]);
  });

  it('lists keys oldest first and keeps zones apart', async () => {
    const keys = openKeyDirectory(fresh());
    const newer = await keys.addZoneKey('example', { created: 20, publish: 20 });
    const older = await keys.addZoneKey('example', { created: 10, publish: 10 });
    await keys.addZoneKey('other', { created: 5, publish: 5 });
    expect(keys.zoneKeys('EXAMPLE.').map((k) => k.keyTag)).toEqual([older.keyTag, newer.keyTag]);
    await keys.removeZone('example');
    expect(keys.zoneKeys('example')).toEqual([]);
    expect(keys.zoneKeys('other')).toHaveLength(1);
  });

  it('refuses bad timing, a bad seed, a key already there and too many keys, changing nothing', async () => {
    const dir = fresh();
    const keys = openKeyDirectory(dir);
    await keys.addZoneKey('example', { created: 1, publish: 1 }, SEED);
    const before = readdirSync(dir).sort();
    expect(await rejectCode(keys.addZoneKey('example', { created: -1, publish: 1 }))).toBe(
      'ERR_KEYS_BAD_TIMING',
    );
    expect(await rejectCode(keys.addZoneKey('example', { created: 1.5, publish: 1 }))).toBe(
      'ERR_KEYS_BAD_TIMING',
    );
    expect(
      await rejectCode(keys.addZoneKey('example', { created: 1, publish: 1 }, new Uint8Array(31))),
    ).toBe('ERR_KEYS_BAD_SEED');
    expect(await rejectCode(keys.addZoneKey('example', { created: 1, publish: 1 }, SEED))).toBe(
      'ERR_KEYS_EXISTS',
    );
    expect(await rejectCode(keys.setTiming('example', 1, { active: 1 }))).toBe('ERR_KEYS_NO_KEY');
    expect(readdirSync(dir).sort()).toEqual(before);
    for (let i = 1; i < MAX_KEYS_PER_ZONE; i++)
      await keys.addZoneKey('example', { created: 1, publish: 1 });
    expect(await rejectCode(keys.addZoneKey('example', { created: 1, publish: 1 }))).toBe(
      'ERR_KEYS_TOO_MANY',
    );
    expect(openKeyDirectory(dir).zoneKeys('example')).toHaveLength(MAX_KEYS_PER_ZONE);
  });

  it('survives concurrent adds from one process: every key has its own file', async () => {
    const dir = fresh();
    const keys = openKeyDirectory(dir);
    await Promise.all(
      Array.from({ length: 5 }, (_, i) => keys.addZoneKey('example', { created: i, publish: i })),
    );
    expect(openKeyDirectory(dir).zoneKeys('example')).toHaveLength(5);
  });
});

describe('createMemoryKeyDirectory', () => {
  it('keeps keys in memory with the same rules', async () => {
    const keys: KeyDirectory = createMemoryKeyDirectory({ proverSeed: PROVER });
    expect(keys.dir).toBeUndefined();
    expect(keys.proverKey().secretKey).toEqual(PROVER);
    const key = await keys.addZoneKey('example', { created: 1, publish: 1, active: 1 }, SEED);
    expect(keys.privateKey(key)?.keyTag).toBe(key.keyTag);
    expect(await rejectCode(keys.addZoneKey('example', { created: 1, publish: 1 }, SEED))).toBe(
      'ERR_KEYS_EXISTS',
    );
    expect(keys.reload()).toBe(false);
  });
});
