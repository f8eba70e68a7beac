import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeDs, silentLogger, type DsData } from '@mimi-discovery/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CDS_STATE_FILE,
  DEFAULT_CDS_CONFIG,
  createAuthoritativeMetrics,
  createMemoryStore,
  delegate,
  listDelegations,
  openCdsState,
  startCdsPoller,
  type AuthoritativeMetrics,
  type CdsConfig,
  type CdsPoller,
  type CdsReplayState,
  type DiscoveryStore,
} from '../src/index.js';
import {
  CHILD_ZONE,
  DELETE_CDNSKEY,
  DELETE_CDS,
  K1,
  K2,
  K3,
  PARENT_ZONE,
  dsOf,
  honest,
  startChildServer,
  startStallingServer,
  type ChildServer,
} from '../../../test/helpers/cds-child.js';
import { startMemoryDp } from './memory-dp.js';
import { PROVER_SEED, T0, fakeClock, zoneInit } from './store-battery.js';

/**
 * The parent following its children's CDS (RFC 7344, RFC 8078) against real DNS servers on
 * loopback: an accepted roll, and every way a hostile child, an attacker on the path or one
 * compromised nameserver could try to choose the parent's DS — none of which may change it.
 */

const clock = fakeClock();
let store: DiscoveryStore;
let child: ChildServer;
let metrics: AuthoritativeMetrics;
let dir: string;
const closers: Array<() => Promise<void>> = [];

async function delegateChild(
  ds: DsData[],
  servers: Array<{ name: string; address: string }> = [
    { name: `ns1.${CHILD_ZONE}`, address: '127.0.0.1' },
  ],
  zone = CHILD_ZONE,
): Promise<void> {
  await delegate(store, PARENT_ZONE, {
    zone,
    nameservers: servers.map((s) => ({
      name: s.name,
      addresses: s.address === '' ? [] : [s.address],
    })),
    ds,
  });
}

function storedDs(zone = CHILD_ZONE): string[] {
  return store
    .readRRset(PARENT_ZONE, zone, 'DS')
    .map((r) => (r.type === 'DS' ? `${r.data.keyTag}/${r.data.digestType}` : ''))
    .sort();
}

function tags(...keys: Array<{ keyTag: number }>): string[] {
  return keys.map((k) => `${k.keyTag}/2`).sort();
}

function poller(
  config: Partial<CdsConfig> = {},
  state: CdsReplayState = openCdsState(join(dir, CDS_STATE_FILE)),
): CdsPoller {
  const p = startCdsPoller({
    store,
    config: { ...DEFAULT_CDS_CONFIG, enabled: false, port: child.port, timeoutMs: 2000, ...config },
    clock: clock.now,
    log: silentLogger,
    metrics,
    state,
  });
  closers.push(() => p.stop());
  return p;
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cds-poller-'));
  store = createMemoryStore({ proverSeed: PROVER_SEED, now: clock.now });
  await store.addZone(zoneInit(PARENT_ZONE));
  metrics = createAuthoritativeMetrics(store);
  child = await startChildServer(honest([K1], undefined));
  closers.push(() => child.close());
  await delegateChild([dsOf(K1)]);
});

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('an accepted roll', () => {
  it('adds the new DS beside the old, then drops the old, following the CDS alone', async () => {
    const p = poller();
    expect((await p.pollOnce())[0]?.outcome).toBe('no-cds');

    // Double-DS (RFC 6781 §4.1.2): the child publishes K2 and the CDS of both keys.
    child.content = honest([K1, K2], [K1, K2], T0 - 3600);
    const [added] = await p.pollOnce();
    expect(added).toMatchObject({ zone: CHILD_ZONE, outcome: 'updated' });
    expect(storedDs()).toEqual(tags(K1, K2));

    // The child switches to K2 and withdraws K1's CDS: the parent drops K1's DS.
    child.content = honest([K1, K2], [K2], T0 - 1800);
    expect((await p.pollOnce())[0]?.outcome).toBe('updated');
    expect(storedDs()).toEqual(tags(K2));

    // K1 removed from the child: its DNSKEY RRset now validates from K2's DS.
    child.content = honest([K2], [K2], T0 - 900);
    expect((await p.pollOnce())[0]?.outcome).toBe('unchanged');
    expect(storedDs()).toEqual(tags(K2));

    const text = await metrics.registry.registry.metrics();
    expect(text).toContain('authoritative_cds_polls_total{outcome="updated"} 2');
    expect(text).toContain('authoritative_cds_ds_updates_total 2');
  });

  it('takes CDNSKEY alone, as DS digest type 2', async () => {
    child.content = { ...honest([K1, K2], [K1, K2]), cds: [] };
    delete child.content.cds;
    expect((await poller().pollOnce())[0]?.outcome).toBe('updated');
    expect(storedDs()).toEqual(tags(K1, K2));
  });

  it('a round asked twice at once asks the child once', async () => {
    const p = poller();
    const before = child.queries;
    const [a, b] = await Promise.all([p.pollOnce(), p.pollOnce()]);
    expect(a).toBe(b);
    expect(child.queries - before).toBe(3);
  });
});

describe('hostile children and paths', () => {
  it('ignores a CDS signed by a key the DS does not name', async () => {
    // The attacker adds its key K3 to the DNSKEY RRset and signs the CDS with it alone.
    child.content = {
      dnskeys: [K1.dnskey, K3.dnskey],
      dnskeySigners: [K1, K3],
      cds: [dsOf(K3)],
      cdnskey: [K3.dnskey],
      cdsSigners: [K3],
      inception: T0 - 600,
    };
    expect((await poller().pollOnce())[0]?.outcome).toBe('signer');
    expect(storedDs()).toEqual(tags(K1));
  });

  it('ignores a DNSKEY RRset that no DS-named key signs (an attacker on the path)', async () => {
    child.content = honest([K3], [K3]);
    expect((await poller().pollOnce())[0]?.outcome).toBe('bogus');
    expect(storedDs()).toEqual(tags(K1));
  });

  it('ignores a CDS rewritten on the path, its signatures left as they were', async () => {
    child.content = { ...honest([K1], [K1]), tamperedCds: [dsOf(K3)] };
    delete child.content.cdnskey;
    const [result] = await poller().pollOnce();
    expect(result?.outcome).toBe('signer');
    expect(storedDs()).toEqual(tags(K1));
  });

  it('acts only when every nameserver agrees (one compromised nameserver)', async () => {
    child.content = honest([K1], [K1]);
    let second: ChildServer;
    try {
      second = await startChildServer(honest([K1, K3], [K1, K3]), '127.0.0.2', child.port);
    } catch {
      // The port is taken on 127.0.0.2: bind both afresh elsewhere.
      second = await startChildServer(honest([K1, K3], [K1, K3]), '127.0.0.2');
      await child.close();
      child = await startChildServer(honest([K1], [K1]), '127.0.0.1', second.port);
    }
    closers.push(() => second.close());
    // The compromised server holds K1 (it signs with it) and serves a CDS adding K3.
    second.content = {
      ...honest([K1, K3], [K1, K3]),
      dnskeySigners: [K1, K3],
      cdsSigners: [K1],
    };
    await delegateChild(
      [dsOf(K1)],
      [
        { name: `ns1.${CHILD_ZONE}`, address: '127.0.0.1' },
        { name: `ns2.${CHILD_ZONE}`, address: '127.0.0.2' },
      ],
    );
    const [result] = await poller().pollOnce();
    expect(result?.outcome).toBe('disagree');
    expect(storedDs()).toEqual(tags(K1));
  });

  it('ignores a replayed older CDS, also after a restart', async () => {
    const p = poller();
    child.content = honest([K1, K2], [K1, K2], T0 - 3600);
    await p.pollOnce();
    child.content = honest([K1, K2], [K2], T0 - 1800);
    await p.pollOnce();
    expect(storedDs()).toEqual(tags(K2));

    // The attacker replays the double-DS answer it recorded: still inside its validity, and
    // signed by K2, which the DS now names.
    child.content = honest([K1, K2], [K1, K2], T0 - 3600);
    expect((await p.pollOnce())[0]?.outcome).toBe('replay');
    await p.stop();
    // A new poller over the same data directory (a restart) remembers.
    expect((await poller().pollOnce())[0]?.outcome).toBe('replay');
    expect(storedDs()).toEqual(tags(K2));
  });

  it('ignores a CDS that would break the chain', async () => {
    // K2's DS asked for, but the DNSKEY RRset is signed by K1 only: with K2's DS alone,
    // validators would find no key that signs the DNSKEY RRset.
    child.content = {
      dnskeys: [K1.dnskey, K2.dnskey],
      dnskeySigners: [K1],
      cds: [dsOf(K2)],
      cdnskey: [K2.dnskey],
      cdsSigners: [K1],
      inception: T0 - 600,
    };
    expect((await poller().pollOnce())[0]?.outcome).toBe('breaks-chain');
    expect(storedDs()).toEqual(tags(K1));
  });

  it('ignores CDS and CDNSKEY that name different keys', async () => {
    child.content = { ...honest([K1, K2], [K1, K2]), cdnskey: [K1.dnskey] };
    expect((await poller().pollOnce())[0]?.outcome).toBe('inconsistent');
    expect(storedDs()).toEqual(tags(K1));
  });

  it('refuses a delete request without allowDelete, follows it with', async () => {
    child.content = { ...honest([K1], undefined), cds: [DELETE_CDS], cdnskey: [DELETE_CDNSKEY] };
    expect((await poller().pollOnce())[0]?.outcome).toBe('delete-refused');
    expect(storedDs()).toEqual(tags(K1));
    expect((await poller({ allowDelete: true }).pollOnce())[0]?.outcome).toBe('deleted');
    expect(storedDs()).toEqual([]);
  });

  it('refuses a delete request published beside keys', async () => {
    child.content = { ...honest([K1], [K1]), cds: [DELETE_CDS, dsOf(K1)] };
    delete child.content.cdnskey;
    expect((await poller({ allowDelete: true }).pollOnce())[0]?.outcome).toBe('inconsistent');
    expect(storedDs()).toEqual(tags(K1));
  });

  it('gives up on a child that stalls, within the query timeout', async () => {
    const stalling = await startStallingServer();
    closers.push(() => stalling.close());
    const [result] = await poller({ port: stalling.port, timeoutMs: 200 }).pollOnce();
    expect(result?.outcome).toBe('unreachable');
    expect(storedDs()).toEqual(tags(K1));
  });

  it('stops at once while a stalling child holds a round', async () => {
    const stalling = await startStallingServer();
    closers.push(() => stalling.close());
    const p = poller({ port: stalling.port, timeoutMs: 600_000, roundTimeoutMs: 600_000 });
    const round = p.pollOnce();
    await expect.poll(() => stalling.connections).toBeGreaterThan(0);
    // Within the test's own timeout: stop does not wait for the stalled questions.
    await p.stop();
    expect(await round).toEqual([]);
    expect(await metrics.registry.registry.metrics()).not.toContain('cds_polls_total{');
  });

  it('refuses a child that floods its answer', async () => {
    child.content = honest([K1, K2], [K1, K2]);
    child.flood = 500;
    expect((await poller().pollOnce())[0]?.outcome).toBe('too-large');
    expect(storedDs()).toEqual(tags(K1));
  });

  it('never enrolls a child without DS (no bootstrapping)', async () => {
    await store.apply(PARENT_ZONE, [{ op: 'delete', name: CHILD_ZONE, type: 'DS' }]);
    child.content = honest([K1], [K1]);
    expect(await poller().pollOnce()).toEqual([]);
    expect(storedDs()).toEqual([]);
  });
});

describe('nameservers and operators', () => {
  it('asks a nameserver outside the parent zone at the addresses its name resolves to', async () => {
    await delegateChild([dsOf(K1)], [{ name: 'ns.dns-operator.example', address: '' }]);
    child.content = honest([K1, K2], [K1, K2]);
    const asked: string[] = [];
    const p = startCdsPoller({
      store,
      config: { ...DEFAULT_CDS_CONFIG, enabled: false, port: child.port },
      clock: clock.now,
      log: silentLogger,
      resolveHost: (host) => {
        asked.push(host);
        return Promise.resolve(['127.0.0.1']);
      },
    });
    closers.push(() => p.stop());
    expect((await p.pollOnce())[0]?.outcome).toBe('updated');
    expect(asked).toEqual(['ns.dns-operator.example']);
    expect(storedDs()).toEqual(tags(K1, K2));
  });

  it('gives up on a nameserver name that does not resolve in time', async () => {
    await delegateChild([dsOf(K1)], [{ name: 'ns.dns-operator.example', address: '' }]);
    const p = startCdsPoller({
      store,
      config: { ...DEFAULT_CDS_CONFIG, enabled: false, port: child.port, timeoutMs: 100 },
      clock: clock.now,
      log: silentLogger,
      resolveHost: () => new Promise<string[]>(() => undefined),
    });
    closers.push(() => p.stop());
    expect((await p.pollOnce())[0]?.outcome).toBe('unreachable');
  });

  it("leaves an operator's DS set while the child was being asked", async () => {
    child.content = honest([K1, K2], [K1, K2]);
    let once = false;
    child.onQuery = () => {
      if (once) return;
      once = true;
      // The operator delegates again by hand, naming K3, while the poller waits for answers.
      void delegateChild([dsOf(K3)]);
    };
    expect((await poller().pollOnce())[0]?.outcome).toBe('changed-meanwhile');
    expect(storedDs()).toEqual(tags(K3));
  });
});

describe('rounds', () => {
  it('checks at most maxChildrenPerRound children, the others in the next round', async () => {
    const other = `8.${PARENT_ZONE}`;
    await delegateChild([computeDs(other, K1.dnskey)], undefined, other);
    const p = poller({ maxChildrenPerRound: 1 });
    const first = await p.pollOnce();
    const second = await p.pollOnce();
    expect(first).toHaveLength(1);
    expect(second).toHaveLength(1);
    expect([first[0]?.zone, second[0]?.zone].sort()).toEqual([CHILD_ZONE, other].sort());
  });
});

describe('with real Discovery Providers', () => {
  it('validates the DNSKEY RRset of a real DP child that publishes no CDS', async () => {
    const dpDir = mkdtempSync(join(tmpdir(), 'cds-dp-'));
    const dp = await startMemoryDp(dpDir, { listen: { tcp: 0 }, log: { level: 'error' } });
    closers.push(async () => {
      await dp.close();
      rmSync(dpDir, { recursive: true, force: true });
    });
    const info = dp.store.zoneInfo(PARENT_ZONE);
    if (info === undefined) throw new Error('no zone');
    // The DP's +44 zone delegated from a parent holding e164.mimi.arpa.
    const parentStore = createMemoryStore({ proverSeed: PROVER_SEED, now: clock.now });
    closers.push(() => parentStore.close());
    await parentStore.addZone(zoneInit('e164.mimi.arpa'));
    const dnskey = dp.store.readRRset(PARENT_ZONE, PARENT_ZONE, 'DNSKEY')[0];
    if (dnskey?.type !== 'DNSKEY') throw new Error('no DNSKEY');
    await delegate(parentStore, 'e164.mimi.arpa', {
      zone: PARENT_ZONE,
      nameservers: [{ name: `ns1.${PARENT_ZONE}`, addresses: ['127.0.0.1'] }],
      ds: [computeDs(PARENT_ZONE, dnskey.data)],
    });
    const port = dp.dns?.tcp?.port;
    if (port === undefined) throw new Error('no TCP port');
    const p = startCdsPoller({
      store: parentStore,
      config: { ...DEFAULT_CDS_CONFIG, enabled: false, port },
      clock: clock.now,
      log: silentLogger,
    });
    closers.push(() => p.stop());
    expect((await p.pollOnce()).map((r) => [r.zone, r.outcome])).toEqual([[PARENT_ZONE, 'no-cds']]);
  });

  it('a running parent follows the CDS with no command, and stops on close', async () => {
    const dpDir = mkdtempSync(join(tmpdir(), 'cds-parent-'));
    child.content = honest([K1, K2], [K1, K2]);
    const parent = await startMemoryDp(
      dpDir,
      {
        cds: { port: child.port, intervalSeconds: 1, timeoutMs: 2000 },
        log: { level: 'error' },
      },
      (s) =>
        delegate(s, PARENT_ZONE, {
          zone: CHILD_ZONE,
          nameservers: [{ name: `ns1.${CHILD_ZONE}`, addresses: ['127.0.0.1'] }],
          ds: [dsOf(K1)],
        }).then(() => undefined),
    );
    try {
      const ds = (): number[] =>
        (listDelegations(parent.store, PARENT_ZONE)[0]?.ds ?? []).map((d) => d.keyTag).sort();
      await expect
        .poll(ds, { timeout: 15_000, interval: 100 })
        .toEqual([K1.keyTag, K2.keyTag].sort());
      const state = openCdsState(join(dpDir, CDS_STATE_FILE));
      expect(state.lastInception(CHILD_ZONE)).toBe(T0 - 3600);
    } finally {
      await parent.close();
      rmSync(dpDir, { recursive: true, force: true });
    }
    const before = child.queries;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(child.queries).toBe(before);
  });
});
