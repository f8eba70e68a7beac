import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, keyPairFromSeed } from '@mimi-discovery/common';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  AuthkeyError,
  DEFAULT_AUTHKEY_TTL_SECONDS,
  StoreError,
  addAuthkey,
  createMemoryStore,
  listAuthkeys,
  openLmdbStore,
  removeAuthkey,
  renewProverAuthkey,
  startAuthkeyRenewal,
  type DiscoveryStore,
} from '../src/index.js';
import {
  CSIP,
  INDEPENDENT_PROVER,
  PHONE,
  PHONE_NAME,
  RECIPIENT,
  attest,
  mappingBytes,
  snapshot,
} from './registration-fixture.js';
import { ORIGIN, PROVER_SEED, T0, fakeClock, zoneInit } from './store-battery.js';
import { startMemoryDp } from './memory-dp.js';

// The apex AUTHKEY RRset managed one key at a time (keys/authkeys.ts over the store operations
// add-authkeys, remove-authkeys and renew-authkey of mapping-ops.ts), against the memory store
// and the LMDB store (reopened to see what lasts).

const DAY = 86_400;
const dirs = mkdtempSync(join(tmpdir(), 'mimi-authkeys-'));
afterAll(() => rmSync(dirs, { recursive: true, force: true }));
let counter = 0;

const OTHER_PROVER = keyPairFromSeed(new Uint8Array(32).fill(9));

interface Harness {
  store: DiscoveryStore;
  reopen?: () => Promise<DiscoveryStore>;
}

const clock = fakeClock(T0);

const kinds: Array<[string, () => Promise<Harness>]> = [
  [
    'memory store',
    async () => ({ store: createMemoryStore({ now: clock.now, proverSeed: PROVER_SEED }) }),
  ],
  [
    'LMDB store',
    async () => {
      const dataDir = join(dirs, `lmdb-${++counter}`);
      const options = { dataDir, now: clock.now, proverSeed: PROVER_SEED };
      const store = await openLmdbStore(options);
      return {
        store,
        reopen: async () => {
          await store.close();
          return openLmdbStore(options);
        },
      };
    },
  ],
];

const keysOf = (store: DiscoveryStore): string[] =>
  listAuthkeys(store, ORIGIN)
    .keys.map((k) => `${k.role}:${Buffer.from(k.publicKey).toString('hex').slice(0, 8)}`)
    .sort();
const id = (role: string, key: Uint8Array): string =>
  `${role}:${Buffer.from(key).toString('hex').slice(0, 8)}`;

describe.each(kinds)('AUTHKEY changes in the %s', (_name, open) => {
  const zone = async (): Promise<Harness> => {
    const h = await open();
    await h.store.addZone(zoneInit(ORIGIN));
    return h;
  };

  it('lists a new zone with its own prover key at the short AUTHKEY TTL', async () => {
    const { store } = await zone();
    const listing = listAuthkeys(store, ORIGIN);
    expect(listing.ttl).toBe(DEFAULT_AUTHKEY_TTL_SECONDS);
    expect(listing.keys).toEqual([expect.objectContaining({ role: 'prover', own: true })]);
    await store.close();
  });

  it('adds and removes an independent prover, the removal surviving a restart', async () => {
    const h = await zone();
    let store = h.store;
    const own = store.proverKey().publicKey;
    const notAfter = T0 + 30 * DAY;
    const added = await addAuthkey(
      store,
      ORIGIN,
      { role: 'prover', publicKey: INDEPENDENT_PROVER.publicKey, notAfter },
      { now: T0 },
    );
    expect(added.changed).toBe(true);
    expect(keysOf(store)).toEqual(
      [id('prover', own), id('prover', INDEPENDENT_PROVER.publicKey)].sort(),
    );
    const removed = await removeAuthkey(
      store,
      ORIGIN,
      { role: 'prover', publicKey: INDEPENDENT_PROVER.publicKey },
      { ttl: 120 },
    );
    expect(removed.serial).toBeGreaterThan(added.serial);
    expect(keysOf(store)).toEqual([id('prover', own)]);
    expect(listAuthkeys(store, ORIGIN).ttl).toBe(120);
    if (h.reopen !== undefined) {
      store = await h.reopen();
      expect(keysOf(store)).toEqual([id('prover', own)]);
    }
    await store.close();
  });

  it('loses neither of a concurrent addition and removal', async () => {
    const { store } = await zone();
    await addAuthkey(
      store,
      ORIGIN,
      { role: 'csip', publicKey: CSIP.publicKey, notAfter: T0 + DAY },
      { now: T0 },
    );
    const before = store.zoneInfo(ORIGIN)?.serial ?? 0;
    await Promise.all([
      addAuthkey(
        store,
        ORIGIN,
        { role: 'prover', publicKey: OTHER_PROVER.publicKey, notAfter: T0 + DAY },
        { now: T0 },
      ),
      removeAuthkey(store, ORIGIN, { role: 'csip', publicKey: CSIP.publicKey }),
      addAuthkey(
        store,
        ORIGIN,
        { role: 'prover', publicKey: INDEPENDENT_PROVER.publicKey, notAfter: T0 + DAY },
        { now: T0 },
      ),
    ]);
    expect(keysOf(store)).toEqual(
      [
        id('prover', store.proverKey().publicKey),
        id('prover', OTHER_PROVER.publicKey),
        id('prover', INDEPENDENT_PROVER.publicKey),
      ].sort(),
    );
    // Writes queued together commit together: one serial step per commit, at most one each.
    const after = store.zoneInfo(ORIGIN)!.serial;
    expect(after).toBeGreaterThan(before);
    expect(after).toBeLessThanOrEqual(before + 3);
    await store.close();
  });

  it('refuses to remove a key that is not listed, or the DP’s own prover, changing nothing', async () => {
    const { store } = await zone();
    const before = snapshot(store, ORIGIN);
    await expect(
      removeAuthkey(store, ORIGIN, { role: 'csip', publicKey: CSIP.publicKey }),
    ).rejects.toMatchObject({ code: 'ERR_AUTHKEY_NOT_LISTED' });
    // The same key listed as a prover is not the CSIP.
    await addAuthkey(
      store,
      ORIGIN,
      { role: 'prover', publicKey: CSIP.publicKey, notAfter: T0 + DAY },
      { now: T0 },
    );
    const after = snapshot(store, ORIGIN);
    await expect(
      removeAuthkey(store, ORIGIN, { role: 'csip', publicKey: CSIP.publicKey }),
    ).rejects.toBeInstanceOf(AuthkeyError);
    await expect(
      removeAuthkey(store, ORIGIN, { role: 'prover', publicKey: store.proverKey().publicKey }),
    ).rejects.toMatchObject({ code: 'ERR_AUTHKEY_OWN_PROVER' });
    expect(snapshot(store, ORIGIN)).toEqual(after);
    expect(after).not.toEqual(before);
    await store.close();
  });

  it('refuses malformed operations before any transaction', async () => {
    const { store } = await zone();
    const before = snapshot(store, ORIGIN);
    const own = { role: 'prover' as const, publicKey: store.proverKey().publicKey };
    for (const operation of [
      { kind: 'renew-authkey' as const, key: own, notAfter: T0, now: T0 },
      { kind: 'renew-authkey' as const, key: own, notAfter: 2 ** 32, now: T0 },
      {
        kind: 'renew-authkey' as const,
        key: { role: 'prover' as const, publicKey: new Uint8Array(31) },
        notAfter: T0 + 1,
        now: T0,
      },
      { kind: 'remove-authkeys' as const, keys: [] },
      { kind: 'remove-authkeys' as const, keys: [own], ttl: -1 },
    ]) {
      await expect(store.applyOperation(ORIGIN, operation)).rejects.toBeInstanceOf(StoreError);
    }
    await expect(
      addAuthkey(
        store,
        ORIGIN,
        { role: 'csip', publicKey: CSIP.publicKey, notAfter: T0 - 1 },
        {
          now: T0,
        },
      ),
    ).rejects.toMatchObject({ code: 'ERR_AUTHKEY_BAD_KEY' });
    expect(snapshot(store, ORIGIN)).toEqual(before);
    await store.close();
  });

  it('renews the DP’s prover key, and a retried renewal changes nothing', async () => {
    const { store } = await zone();
    const first = await renewProverAuthkey(store, ORIGIN, {
      now: T0,
      validityDays: 365,
      ttl: 60,
    });
    expect(first).toMatchObject({ changed: true, notAfter: T0 + 365 * DAY });
    const again = await renewProverAuthkey(store, ORIGIN, {
      now: T0,
      validityDays: 365,
      ttl: 60,
    });
    expect(again).toMatchObject({ changed: false, serial: first.serial });
    const listing = listAuthkeys(store, ORIGIN);
    expect(listing.ttl).toBe(60);
    expect(listing.keys.find((k) => k.own)?.notAfter).toBe(T0 + 365 * DAY);
    await store.close();
  });

  it('refuses a mapping attested by a removed prover inside the write', async () => {
    const { store } = await zone();
    await addAuthkey(
      store,
      ORIGIN,
      { role: 'prover', publicKey: INDEPENDENT_PROVER.publicKey, notAfter: T0 + 365 * DAY },
      { now: T0 },
    );
    const att = attest(PHONE, RECIPIENT, INDEPENDENT_PROVER.secretKey, T0);
    const publish = (seq: number) =>
      store.applyOperation(ORIGIN, {
        kind: 'publish-mapping',
        name: PHONE_NAME,
        csi: PHONE,
        mapping: mappingBytes({ att, iat: T0, seq }),
        now: T0,
        authorize: true,
      });
    expect(await publish(1)).toMatchObject({ kind: 'applied', changed: true });
    await removeAuthkey(store, ORIGIN, {
      role: 'prover',
      publicKey: INDEPENDENT_PROVER.publicKey,
    });
    expect(await publish(2)).toMatchObject({ kind: 'refused', reason: 'prover-not-authorized' });
    await store.close();
  });
});

describe('the DP’s renewal of its prover AUTHKEY', () => {
  it('renews when fewer than renewBeforeDays remain, and leaves an unlisted key unlisted', async () => {
    const t = fakeClock(T0);
    const store = createMemoryStore({
      now: t.now,
      proverSeed: PROVER_SEED,
      proverKeyLifetimeSeconds: 40 * DAY,
    });
    await store.addZone(zoneInit(ORIGIN));
    await store.addZone(zoneInit('example.com.email.mimi.arpa'));
    // An operator took the prover key out of one zone: the DP does not put it back.
    const other = 'example.com.email.mimi.arpa';
    await store.applyOperation(other, {
      kind: 'remove-authkeys',
      keys: [{ role: 'prover', publicKey: store.proverKey().publicKey }],
    });
    const lines: string[] = [];
    const renewal = startAuthkeyRenewal({
      store,
      policy: { authkeyValidityDays: 365, renewBeforeDays: 30 },
      ttl: 90,
      now: t.now,
      log: createLogger('dp', { level: 'info', write: (line) => lines.push(line) }),
    });
    try {
      expect(await renewal.tick()).toEqual([]);
      t.advance(11 * DAY);
      expect(await renewal.tick()).toEqual([ORIGIN]);
      const own = listAuthkeys(store, ORIGIN).keys.find((k) => k.own);
      expect(own?.notAfter).toBe(T0 + 11 * DAY + 365 * DAY);
      expect(listAuthkeys(store, ORIGIN).ttl).toBe(90);
      expect(await renewal.tick()).toEqual([]);
      expect(listAuthkeys(store, other).keys).toEqual([]);
      expect(lines.filter((l) => l.includes('prover-authkey-not-listed'))).toHaveLength(1);
    } finally {
      await renewal.stop();
      await store.close();
    }
  });
});

describe('the renewal over a store that fails', () => {
  it('logs the fault and resolves, so that the timer keeps running', async () => {
    const store = createMemoryStore({ now: clock.now, proverSeed: PROVER_SEED });
    await store.addZone(zoneInit(ORIGIN));
    await store.close();
    const lines: string[] = [];
    const renewal = startAuthkeyRenewal({
      store,
      policy: { authkeyValidityDays: 365, renewBeforeDays: 30 },
      ttl: 300,
      now: clock.now,
      log: createLogger('dp', { level: 'info', write: (line) => lines.push(line) }),
    });
    try {
      expect(await renewal.tick()).toEqual([]);
      expect(lines.some((l) => l.includes('prover-authkey-renewal-failed'))).toBe(true);
    } finally {
      await renewal.stop();
    }
  });
});

describe('the renewal timer', () => {
  it('checks again every intervalMs without being asked', async () => {
    const t = fakeClock(T0);
    const store = createMemoryStore({
      now: t.now,
      proverSeed: PROVER_SEED,
      proverKeyLifetimeSeconds: 40 * DAY,
    });
    await store.addZone(zoneInit(ORIGIN));
    const renewal = startAuthkeyRenewal({
      store,
      policy: { authkeyValidityDays: 365, renewBeforeDays: 30 },
      ttl: 300,
      now: t.now,
      intervalMs: 10,
    });
    try {
      t.advance(11 * DAY);
      await vi.waitFor(() => {
        expect(listAuthkeys(store, ORIGIN).keys.find((k) => k.own)?.notAfter).toBe(
          T0 + 11 * DAY + 365 * DAY,
        );
      });
    } finally {
      await renewal.stop();
      await store.close();
    }
  });
});

describe('two LMDB store objects over one data directory (a DP and the command line)', () => {
  it('lose neither of an addition through one and a removal through the other', async () => {
    const dataDir = join(dirs, `lmdb-${++counter}`);
    const options = { dataDir, now: clock.now, proverSeed: PROVER_SEED };
    const server = await openLmdbStore(options);
    await server.addZone(zoneInit(ORIGIN));
    await addAuthkey(
      server,
      ORIGIN,
      { role: 'csip', publicKey: CSIP.publicKey, notAfter: T0 + DAY },
      { now: T0 },
    );
    const cli = await openLmdbStore(options);
    try {
      await Promise.all([
        removeAuthkey(cli, ORIGIN, { role: 'csip', publicKey: CSIP.publicKey }),
        addAuthkey(
          server,
          ORIGIN,
          { role: 'prover', publicKey: INDEPENDENT_PROVER.publicKey, notAfter: T0 + DAY },
          { now: T0 },
        ),
      ]);
      const expected = [
        id('prover', server.proverKey().publicKey),
        id('prover', INDEPENDENT_PROVER.publicKey),
      ].sort();
      expect(keysOf(cli)).toEqual(expected);
      // The other object sees the other's commit from its next read.
      await new Promise((resolve) => setImmediate(resolve));
      expect(keysOf(server)).toEqual(expected);
    } finally {
      await cli.close();
      await server.close();
    }
  });
});

describe('a running DP', () => {
  it('renews its prover AUTHKEY at start when it expires within prover.renewBeforeDays', async () => {
    const dp = await startMemoryDp(
      join(dirs, `dp-${++counter}`),
      { authkeyTtl: 120, prover: { authkeyValidityDays: 100, renewBeforeDays: 20 } },
      async (store) => {
        await renewProverAuthkey(store, ORIGIN, { now: T0, validityDays: 10 });
      },
    );
    try {
      await vi.waitFor(() => {
        const listing = listAuthkeys(dp.store, ORIGIN);
        expect(listing.keys.find((k) => k.own)?.notAfter).toBe(T0 + 100 * DAY);
        expect(listing.ttl).toBe(120);
      });
    } finally {
      await dp.close();
    }
  });
});
