import { afterEach, describe, expect, it } from 'vitest';
import {
  record,
  silentLogger,
  startDnsServer,
  type DnsServer,
  type Ed25519KeyPair,
  type Message,
  type ResourceRecord,
  type RRType,
  type ZoneKey,
} from '@mimi-discovery/common';
import type { KeyDirectory } from '../src/keys/key-directory.js';
import type { KeyTiming, StoredZoneKey } from '../src/keys/key-set.js';
import type { ParentDs, RolloverPolicy } from '../src/keys/key-policy.js';
import {
  ROLLER_RELOAD_INTERVAL_SECONDS,
  queryParentDs,
  startKeyRoller,
  type KeyRoller,
  type KeyRollerOptions,
  type RollerStore,
} from '../src/keys/key-roller.js';

/**
 * Test doubles of the key directory and of the store (the real ones are `key-directory.ts` and
 * the stores' `refreshKeys`; their own tests cover them): the double's store signs with the
 * keys active at its last `refreshKeys` and has `RRSETS` RRsets to re-sign after a switch.
 */
const ZONE = '4.4.e164.mimi.arpa';
const RRSETS = 3;

function keyDirectoryDouble(): KeyDirectory & { changedElsewhere: boolean } {
  const keys = new Map<string, StoredZoneKey[]>();
  let nextTag = 100;
  const find = (origin: string, tag: number): StoredZoneKey => {
    const key = (keys.get(origin) ?? []).find((k) => k.keyTag === tag);
    if (key === undefined) throw new Error(`no key ${tag}`);
    return key;
  };
  return {
    dir: undefined,
    changedElsewhere: false,
    proverKey: (): Ed25519KeyPair => {
      throw new Error('not used');
    },
    zoneKeys: (origin) => (keys.get(origin) ?? []).map((k) => ({ ...k, timing: { ...k.timing } })),
    privateKey: (): ZoneKey | undefined => undefined,
    addZoneKey(origin, timing) {
      const key: StoredZoneKey = {
        zone: origin,
        keyTag: nextTag++,
        dnskey: { flags: 257, protocol: 3, algorithm: 15, publicKey: new Uint8Array(32) },
        timing: { ...timing },
      };
      keys.set(origin, [...(keys.get(origin) ?? []), key]);
      return Promise.resolve(key);
    },
    setTiming(origin, keyTag, timing) {
      const key = find(origin, keyTag);
      key.timing = { ...key.timing, ...timing } as KeyTiming;
      return Promise.resolve(key);
    },
    deleteZoneKey(origin, keyTag) {
      keys.set(
        origin,
        (keys.get(origin) ?? []).filter((k) => k.keyTag !== keyTag),
      );
      return Promise.resolve();
    },
    removeZone(origin) {
      keys.delete(origin);
      return Promise.resolve();
    },
    reload() {
      const changed = this.changedElsewhere;
      this.changedElsewhere = false;
      return changed;
    },
  };
}

interface StoreDouble extends RollerStore {
  keys: ReturnType<typeof keyDirectoryDouble>;
  /** Zones of the store besides ZONE: ZONE's parent when it is held here. */
  localParent: string[];
  /** The DS of ZONE in its parent held here. */
  localDs: number[];
  steps: string[];
  refreshes: number[];
  resigns: number;
  signers: number[];
  pending: number;
  published: number[];
  cds: number[];
}

function storeDouble(clock: () => number): StoreDouble {
  const store: StoreDouble = {
    keys: keyDirectoryDouble(),
    steps: [],
    refreshes: [],
    resigns: 0,
    signers: [],
    pending: 0,
    published: [],
    cds: [],
    listZones: () => [ZONE, ...store.localParent],
    findZone: (name: string) => store.localParent.find((z) => name === z || name.endsWith(`.${z}`)),
    localParent: [],
    localDs: [],
    readRRset(_origin: string, _name: string, type: RRType): ResourceRecord[] {
      if (type === 'DS') {
        return store.localDs.map((keyTag) =>
          record(
            ZONE,
            'DS',
            { keyTag, algorithm: 15, digestType: 2, digest: new Uint8Array(32) },
            7,
          ),
        );
      }
      return type === 'DNSKEY'
        ? [
            record(
              ZONE,
              'DNSKEY',
              { flags: 257, protocol: 3, algorithm: 15, publicKey: new Uint8Array(32) },
              20,
            ),
          ]
        : [];
    },
    async *streamZone() {
      await Promise.resolve();
      yield [
        record(
          ZONE,
          'SOA',
          { mname: 'ns', rname: 'h', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 25 },
          30,
        ),
        record(`x.${ZONE}`, 'TXT', [new Uint8Array(1)], 12),
      ];
    },
    refreshKeys(origin: string, now?: number) {
      const at = now ?? clock();
      store.refreshes.push(at);
      const keys = store.keys.zoneKeys(origin);
      const reached = (t: number | undefined): boolean => t !== undefined && at >= t;
      const live = keys.filter((k) => at >= k.timing.publish && !reached(k.timing.remove));
      const signers = live
        .filter(
          (k) =>
            reached(k.timing.active) && !reached(k.timing.inactive) && !reached(k.timing.revoke),
        )
        .map((k) => k.keyTag);
      const published = live.map((k) => k.keyTag);
      const cds = live
        .filter((k) => reached(k.timing.syncPublish) && !reached(k.timing.syncDelete))
        .map((k) => k.keyTag);
      const changed =
        signers.join() !== store.signers.join() ||
        published.join() !== store.published.join() ||
        cds.join() !== store.cds.join();
      if (signers.join() !== store.signers.join()) store.pending = RRSETS;
      Object.assign(store, { signers, published, cds });
      return Promise.resolve({ serial: store.refreshes.length, changed });
    },
    signatureStatus: () => ({ pendingResign: store.pending, signers: store.signers }),
    resign() {
      store.resigns++;
      const n = store.pending;
      store.pending = 0;
      return Promise.resolve(n);
    },
  };
  return store;
}

const policy: RolloverPolicy = {
  keyLifetimeSeconds: 0,
  propagationDelaySeconds: 3,
  publishSafetySeconds: 5,
  retireSafetySeconds: 7,
  dsTtlSeconds: undefined,
  registrationDelaySeconds: 100,
  rfc5011: false,
  addHoldDownSeconds: 50,
  revokeSeconds: 40,
};

let now = 0;
const clock = (): number => now;
const rollers: KeyRoller[] = [];
const servers: DnsServer[] = [];
afterEach(async () => {
  await Promise.all(rollers.splice(0).map((r) => r.stop()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function withFirstKey(store: StoreDouble): Promise<number> {
  const first = await store.keys.addZoneKey(ZONE, {
    created: 0,
    publish: 0,
    active: 0,
    syncPublish: 0,
  });
  await store.refreshKeys(ZONE, 0);
  return first.keyTag;
}

function roller(store: StoreDouble, over: Partial<KeyRollerOptions> = {}): KeyRoller {
  const r = startKeyRoller({
    store,
    policy,
    parent: [],
    clock,
    log: silentLogger,
    timer: false,
    ...over,
  });
  rollers.push(r);
  return r;
}

describe('the key roller', () => {
  it('rolls a DP key through the parent check, the switch and the removal', async () => {
    now = 1000;
    const store = storeDouble(clock);
    const a = await withFirstKey(store);
    let parent: ParentDs = { keyTags: [a], ttl: 11 };
    let asked = 0;
    const r = roller(store, {
      checkIntervalSeconds: 1,
      queryParent: () => {
        asked++;
        return Promise.resolve(parent);
      },
    });
    const started = await r.roll(ZONE);
    expect(started.phase).toBe('publishing');
    const b = started.keys[1]?.keyTag ?? -1;
    expect(store.published).toEqual([a, b]);
    expect(store.cds).toEqual([a]);
    expect(asked).toBe(0);

    // IpubC later the store publishes the CDS of both; the parent still serves only the old DS.
    now = 1028;
    await r.tick();
    expect(store.cds).toEqual([a, b]);
    expect(asked).toBe(1);
    expect(r.status(ZONE)[0]?.phase).toBe('waiting-parent');

    now = 1040;
    parent = { keyTags: [a, b], ttl: 11 };
    await r.tick();
    const switchAt = 1040 + 11 + 3;
    expect(r.status(ZONE)[0]).toMatchObject({ phase: 'switching', nextEvent: switchAt });
    expect(store.signers).toEqual([a]);

    // At the switch the store signs with B, drops A's CDS and re-signs at once.
    now = switchAt;
    await r.tick();
    expect(store.signers).toEqual([b]);
    expect(store.cds).toEqual([b]);
    expect(store.resigns).toBeGreaterThan(0);
    expect(store.published).toEqual([a, b]);

    now = switchAt + 1;
    await r.tick();
    // Max zone TTL 30 (the SOA's), + Dprp 3 + retire safety 7.
    const removeAt = switchAt + 1 + 40;
    expect(store.keys.zoneKeys(ZONE)[0]?.timing.remove).toBe(removeAt);
    expect(r.status(ZONE)[0]?.phase).toBe('retiring');

    now = removeAt;
    await r.tick();
    expect(store.published).toEqual([b]);
    expect(store.keys.zoneKeys(ZONE).map((k) => k.keyTag)).toEqual([b]);
    expect(r.status(ZONE)[0]?.phase).toBe('idle');
  });

  it('reads the DS in its own store when the parent zone is held there', async () => {
    now = 0;
    const store = storeDouble(clock);
    const a = await withFirstKey(store);
    store.localParent = ['e164.mimi.arpa'];
    store.localDs = [a];
    const r = roller(store, {
      parent: [{ address: '127.0.0.1', port: 1 }],
      queryParent: () => Promise.reject(new Error('the parent is local')),
      metrics: { rollStep: (zone, phase) => store.steps.push(`${zone} ${phase}`) },
    });
    const b = (await r.roll(ZONE)).keys[1]?.keyTag ?? -1;
    now = 28;
    await r.tick();
    expect(r.status(ZONE)[0]?.phase).toBe('waiting-parent');
    store.localDs = [a, b];
    now = 29;
    await r.tick();
    // The DS TTL served there (7) + Dprp.
    expect(store.keys.zoneKeys(ZONE)[1]?.timing.active).toBe(29 + 7 + 3);
    expect(store.steps).toEqual([`${ZONE} waiting-parent`]);
  });

  it('keeps rolling with the keys it has when the key directory cannot be read', async () => {
    now = 0;
    const store = storeDouble(clock);
    await withFirstKey(store);
    const errors: string[] = [];
    const log = {
      ...silentLogger,
      error: (event: string) => errors.push(event),
      child: () => log,
    };
    const r = roller(store, { log });
    await r.roll(ZONE);
    store.keys.reload = () => {
      throw new Error('EACCES');
    };
    now = 28;
    await r.tick();
    expect(errors).toEqual(['key-directory-reload-failed']);
    expect(store.cds).toHaveLength(2);
  });

  it('never switches while the parent cannot be asked', async () => {
    now = 0;
    const store = storeDouble(clock);
    await withFirstKey(store);
    const r = roller(store, { queryParent: () => Promise.resolve('unreachable' as const) });
    await r.roll(ZONE);
    for (now = 28; now < 5000; now += 500) await r.tick();
    expect(store.keys.zoneKeys(ZONE)[1]?.timing.active).toBeUndefined();
    expect(store.signers).toHaveLength(1);
  });

  it('rolls the root by RFC 5011 without asking any parent', async () => {
    now = 0;
    const store = storeDouble(clock);
    const a = await withFirstKey(store);
    const r = roller(store, {
      policy: { ...policy, rfc5011: true },
      parentless: [ZONE],
      queryParent: () => Promise.reject(new Error('the root has no parent')),
    });
    const b = (await r.roll(ZONE)).keys[1]?.keyTag ?? -1;
    const activeAt = 3 + 20 + 50 + 10;
    expect(store.keys.zoneKeys(ZONE)[1]?.timing.active).toBe(activeAt);
    now = activeAt;
    await r.tick();
    expect(store.signers).toEqual([b]);
    now = activeAt + 1;
    await r.tick();
    const old = store.keys.zoneKeys(ZONE).find((k) => k.keyTag === a);
    expect(old?.timing).toMatchObject({ revoke: activeAt + 1 + 40, remove: activeAt + 1 + 80 });
    now = activeAt + 41;
    await r.tick();
    expect(r.status(ZONE)[0]?.phase).toBe('revoking');
  });

  it('makes an emergency roll take effect at once', async () => {
    now = 50;
    const store = storeDouble(clock);
    const a = await withFirstKey(store);
    const r = roller(store);
    const status = await r.roll(ZONE, { emergency: true });
    const b = status.keys[1]?.keyTag ?? -1;
    expect(store.signers).toEqual([b]);
    expect(store.cds).toEqual([b]);
    expect(store.published).toEqual([a, b]);
    expect(store.pending).toBe(0);
  });

  it('starts one roll when two are asked at once, and changes nothing for the refused one', async () => {
    now = 0;
    const store = storeDouble(clock);
    await withFirstKey(store);
    const r = roller(store);
    const results = await Promise.allSettled([r.roll(ZONE), r.roll(ZONE)]);
    expect(results.map((x) => x.status).sort()).toEqual(['fulfilled', 'rejected']);
    const refused = results.find((x) => x.status === 'rejected');
    expect(refused).toMatchObject({ reason: { code: 'ERR_KEY_ROLL_IN_PROGRESS' } });
    expect(store.keys.zoneKeys(ZONE)).toHaveLength(2);
  });

  it('refuses a zone the store does not hold', async () => {
    const store = storeDouble(clock);
    await expect(roller(store).roll('other.example')).rejects.toMatchObject({
      code: 'ERR_KEY_ROLL_NO_KEY',
    });
  });

  it('goes on with a roll after a restart, from the timing in the key directory', async () => {
    now = 0;
    const store = storeDouble(clock);
    await withFirstKey(store);
    const first = roller(store);
    await first.roll(ZONE);
    await first.stop();
    now = 28;
    const second = roller(store);
    await second.tick();
    // Unchecked parent: Dreg 100 + DS TTL 3600 + Dprp 3 after the CDS.
    expect(store.keys.zoneKeys(ZONE)[1]?.timing.active).toBe(28 + 100 + 3600 + 3);
  });

  it('sees a roll started by another process at its next tick', async () => {
    now = 0;
    const store = storeDouble(clock);
    await withFirstKey(store);
    const r = roller(store);
    await r.tick();
    const before = store.refreshes.length;
    await store.keys.addZoneKey(ZONE, { created: 5, publish: 5, syncPublish: 33 });
    store.keys.changedElsewhere = true;
    now = 6;
    await r.tick();
    expect(store.refreshes.length).toBeGreaterThan(before);
    expect(store.published).toHaveLength(2);
  });

  it('wakes at the next timing event, and at least every reload interval', async () => {
    now = 0;
    const store = storeDouble(clock);
    await withFirstKey(store);
    const r = roller(store, { timer: true });
    await r.tick();
    expect(r.nextTick()).toBe(ROLLER_RELOAD_INTERVAL_SECONDS);
    await store.keys.addZoneKey(ZONE, { created: 0, publish: 3, syncPublish: 40 });
    store.keys.changedElsewhere = true;
    now = 1;
    await r.tick();
    expect(r.nextTick()).toBe(3);
    await r.stop();
    expect(r.nextTick()).toBeUndefined();
  });

  it('asks the parent at most once per check interval', async () => {
    now = 0;
    const store = storeDouble(clock);
    await withFirstKey(store);
    let asked = 0;
    const r = roller(store, {
      checkIntervalSeconds: 30,
      queryParent: () => {
        asked++;
        return Promise.resolve('unreachable' as const);
      },
    });
    await r.roll(ZONE);
    for (now = 28; now < 88; now += 5) await r.tick();
    // Ticks at 28 … 83: the parent is asked at 28 and 58 only.
    expect(asked).toBe(2);
  });
});

describe('queryParentDs', () => {
  async function parentServer(tags: number[]): Promise<{ address: string; port: number }> {
    const server = await startDnsServer(
      { host: '127.0.0.1', tcp: { port: 0 } },
      (query: Message) => ({
        ...query,
        flags: { ...query.flags, qr: true, aa: true },
        answers: tags.map((keyTag) =>
          record(
            ZONE,
            'DS',
            { keyTag, algorithm: 15, digestType: 2, digest: new Uint8Array(32) },
            11,
          ),
        ),
      }),
    );
    servers.push(server);
    return { address: '127.0.0.1', port: server.tcp?.port ?? 0 };
  }

  it('gives the DS key tags every parent nameserver serves', async () => {
    const parents = [await parentServer([7, 3]), await parentServer([3, 7])];
    expect(await queryParentDs(ZONE, parents)).toEqual({ keyTags: [3, 7], ttl: 11 });
  });

  it('is unreachable when the parent nameservers disagree or one does not answer', async () => {
    const agreeing = await parentServer([3, 7]);
    expect(await queryParentDs(ZONE, [agreeing, await parentServer([3])])).toBe('unreachable');
    expect(await queryParentDs(ZONE, [agreeing, { address: '127.0.0.1', port: 1 }], 500)).toBe(
      'unreachable',
    );
  });

  it('is not checked without parent nameservers', async () => {
    expect(await queryParentDs(ZONE, [])).toBe('not-checked');
  });
});
