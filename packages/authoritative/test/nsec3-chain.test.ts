import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildQuery,
  encodeBase32Hex,
  formatTime,
  formatZone,
  record,
  type ResourceRecord,
} from '@mimi-discovery/common';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createAnswerer,
  createMemoryStore,
  openLmdbStore,
  type DiscoveryStore,
  type RRsetChange,
} from '../src/index.js';
import { chainLabel, hashLabel } from '../src/zone/nsec3-chain.js';
import {
  CHILD,
  NUMBER,
  ORIGIN,
  PROVER_SEED,
  T0,
  delegation,
  putMap,
  zoneInit,
} from './store-battery.js';

/**
 * The NSEC3 chain a store keeps (`zone/nsec3-chain.ts`) makes the zone, as it is stored and
 * streamed, a standard signed zone that stock secondaries load: ldns-verify-zone (Debian
 * ldnsutils) checks every signature and the whole chain, as NSD and Knot would need it.
 */

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

const LDNS = onPath('ldns-verify-zone');
if (!LDNS) {
  console.warn(
    'ldns-verify-zone not installed (Debian package ldnsutils): skipping the zone check',
  );
}

const dir = mkdtempSync(join(tmpdir(), 'mimi-chain-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;

/** ldns-verify-zone's verdict on `records` at T0. */
function verify(records: readonly ResourceRecord[]): { status: number | null; output: string } {
  const file = join(dir, `zone-${++counter}.zone`);
  writeFileSync(file, formatZone(ORIGIN, records));
  const result = spawnSync('ldns-verify-zone', ['-t', formatTime(T0), '-V', '3', file], {
    encoding: 'utf8',
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

const address = (name: string, ip: string): RRsetChange => ({
  op: 'put',
  name,
  type: 'A',
  records: [record(name, 'A', ip, 3600)],
});

/**
 * A zone with the chain on from the start and then changed write by write: mappings added and
 * removed, a signed and an unsigned delegation with glue, a MAPREF, a delegation taken away.
 */
async function populate(store: DiscoveryStore): Promise<void> {
  await store.addZone(zoneInit());
  await store.setNsec3(ORIGIN, true);
  const unsignedCut = `3.${ORIGIN}`;
  await store.apply(ORIGIN, [
    address(`ns1.${ORIGIN}`, '192.0.2.53'),
    address(`ns2.${ORIGIN}`, '192.0.2.54'),
    putMap(NUMBER, 1),
    ...delegation(CHILD),
  ]);
  await store.apply(ORIGIN, [
    {
      op: 'put',
      name: unsignedCut,
      type: 'NS',
      records: [record(unsignedCut, 'NS', `ns1.${unsignedCut}`, 3600)],
    },
    address(`ns1.${unsignedCut}`, '192.0.2.3'),
    putMap(`5.5.${ORIGIN}`),
  ]);
  await store.applyOperation(ORIGIN, {
    kind: 'add-maprefs',
    name: `9.9.9.9.6.4.9.7.0.2.${ORIGIN}`,
    targets: ['dp.msp.example'],
  });
  await store.apply(ORIGIN, [{ op: 'delete', name: `5.5.${ORIGIN}`, type: 'MAP' }]);
  const gone = `2.${ORIGIN}`;
  await store.apply(ORIGIN, [...delegation(gone), putMap(`1.ns1.${gone}`)]);
  await store.apply(ORIGIN, [
    { op: 'delete', name: gone, type: 'DS' },
    { op: 'delete', name: gone, type: 'NS' },
  ]);
}

const stores: Array<[string, () => Promise<DiscoveryStore>]> = [
  ['memory store', async () => createMemoryStore({ now: () => T0, proverSeed: PROVER_SEED })],
  [
    'LMDB store',
    async () =>
      openLmdbStore({
        dataDir: join(dir, `store-${++counter}`),
        now: () => T0,
        proverSeed: PROVER_SEED,
      }),
  ],
];

describe.each(stores)('the NSEC3 chain of the %s', (_name, open) => {
  it.skipIf(!LDNS)(
    'makes the stored zone one that ldns-verify-zone verifies as complete',
    async () => {
      const store = await open();
      await populate(store);
      const streamed: ResourceRecord[] = [];
      for await (const batch of store.streamZone(ORIGIN)) streamed.push(...batch);
      const { status, output } = verify(streamed);
      expect(output, output).toContain('Zone is verified and complete');
      expect(status).toBe(0);
      await store.close();
    },
  );

  it.skipIf(!LDNS)('fails ldns-verify-zone once an entry of the chain is missing', async () => {
    const store = await open();
    await populate(store);
    const zone = store.readZone(ORIGIN);
    const dropped = zone.find((rr) => rr.type === 'NSEC3' && rr.name !== ORIGIN);
    const broken = zone.filter((rr) => rr.name !== dropped?.name);
    const { status, output } = verify(broken);
    expect(output).not.toContain('Zone is verified and complete');
    expect(status).not.toBe(0);
    await store.close();
  });
});

describe.each(stores)('answering from a zone of the %s that keeps its chain', (_name, open) => {
  it('never answers with the chain: its owners are names that do not exist', async () => {
    const store = await open();
    await populate(store);
    const answer = createAnswerer(store, { now: () => T0 });
    const owners = store
      .readZone(ORIGIN)
      .filter((rr) => rr.type === 'NSEC3')
      .map((rr) => rr.name);
    expect(owners.length).toBeGreaterThan(10);
    const context = { transport: 'udp', remoteAddress: '127.0.0.1' } as const;
    for (const [name, type] of [
      ...owners.slice(0, 5).map((owner) => [owner, 'NSEC3'] as const),
      ...owners.slice(0, 5).map((owner) => [owner, 'A'] as const),
      [NUMBER, 'NSEC3'] as const,
      [`4.${ORIGIN}`, 'MAP'] as const,
    ]) {
      const response = await answer(
        buildQuery(name, type, { dnssecOk: true, compactOk: true }),
        context,
      );
      const records = [...response.answers, ...response.authorities, ...response.additionals];
      expect(
        records.filter((rr) => rr.type === 'NSEC3'),
        `${name} ${type}`,
      ).toEqual([]);
      expect(response.rcode, `${name} ${type}`).toBe(name === NUMBER ? 'NOERROR' : 'NXDOMAIN');
    }
    await store.close();
  });
});

describe('chain owner names', () => {
  it('are one label of 32 lowercase base32hex digits right below the origin', () => {
    // RFC 9276 parameters: SHA-1 of the name's wire form alone (no salt, no extra iteration).
    const label = hashLabel('example');
    const wire = Buffer.from('076578616d706c6500', 'hex');
    expect(label).toBe(encodeBase32Hex(createHash('sha1').update(wire).digest()));
    expect(label).toMatch(/^[0-9a-v]{32}$/);
    expect(chainLabel('example', `${label}.example`)).toBe(label);
    expect(chainLabel('.', label)).toBe(label);
    expect(chainLabel('example', `${label}.other`)).toBeUndefined();
    expect(chainLabel('example', `x.${label}.example`)).toBeUndefined();
    expect(chainLabel('example', `${label.slice(1)}w.example`)).toBeUndefined();
    expect(chainLabel('example', `${label.slice(1)}.example`)).toBeUndefined();
    expect(chainLabel('example', 'example')).toBeUndefined();
  });
});
