import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildQuery, dpConfigSchema, queryTcp, queryUdp } from '@mimi-discovery/common';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createMemoryStore,
  openLmdbStore,
  startProvider,
  type DiscoveryStore,
} from '../src/index.js';
import {
  NUMBER,
  ORIGIN,
  PROVER_SEED,
  fakeClock,
  mapRecord,
  putMap,
  zoneInit,
} from './store-battery.js';

const root = mkdtempSync(join(tmpdir(), 'mimi-answer-cache-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const stores: [string, (dir: string) => Promise<DiscoveryStore>][] = [
  ['memory', async () => createMemoryStore({ proverSeed: PROVER_SEED, now: fakeClock().now })],
  ['LMDB', (dir) => openLmdbStore({ dataDir: dir, proverSeed: PROVER_SEED, now: fakeClock().now })],
];

describe.each(stores)('a DP with its answer cache, over the %s store', (kind, open) => {
  it('answers a write from the moment it is acknowledged, over UDP and TCP', async () => {
    const dir = join(root, kind);
    const store = await open(join(dir, 'store'));
    await store.addZone(zoneInit());
    const config = dpConfigSchema.parse({
      role: 'dp',
      dataDir: dir,
      listen: { udp: 0, tcp: 0, admin: 0 },
      log: { level: 'error' },
    });
    const provider = await startProvider(config, { store, now: fakeClock().now });
    try {
      const at = { host: '127.0.0.1', port: provider.dns!.udp!.port };
      const ask = async (over: 'udp' | 'tcp') => {
        const query = buildQuery(NUMBER, 'MAP', { dnssecOk: true });
        return over === 'udp' ? queryUdp(at, query) : queryTcp(at, query);
      };
      // Asked twice before the write: the second answer comes from the cache.
      for (const over of ['udp', 'tcp'] as const) {
        for (let i = 0; i < 2; i++) {
          const before = await ask(over);
          expect(before.rcode).toBe('NOERROR');
          expect(before.answers).toEqual([]);
        }
      }
      await store.apply(ORIGIN, [putMap(NUMBER, 9)]);
      for (const over of ['udp', 'tcp'] as const) {
        const after = await ask(over);
        expect(after.answers.filter((rr) => rr.type === 'MAP')).toEqual([mapRecord(NUMBER, 9)]);
      }
      // A write elsewhere keeps this answer cached; one at an absent name below it shows,
      // because the cached denial of its ancestor is dropped.
      const other = `7.${NUMBER}`;
      const hits = async (): Promise<number> => {
        const text = await fetch(`http://127.0.0.1:${provider.admin!.port}/metrics`).then((r) =>
          r.text(),
        );
        return Number(/^authoritative_answer_cache_hits_total (\d+)/m.exec(text)?.[1]);
      };
      const ancestor = await queryUdp(at, buildQuery(`1.${ORIGIN}`, 'MAP', { dnssecOk: true }));
      expect(ancestor.rcode).toBe('NOERROR');
      expect(ancestor.answers).toEqual([]);
      await store.apply(ORIGIN, [putMap(`9.1.${ORIGIN}`, 3)]);
      const before = await hits();
      expect((await ask('udp')).answers.filter((rr) => rr.type === 'MAP')).toHaveLength(1);
      expect(await hits()).toBe(before + 1);
      const again = await queryUdp(at, buildQuery(`1.${ORIGIN}`, 'MAP', { dnssecOk: true }));
      // Now an empty non-terminal: NODATA whose NSEC lists no types but NSEC and RRSIG.
      expect(again.authorities.find((rr) => rr.type === 'NSEC')).not.toEqual(
        ancestor.authorities.find((rr) => rr.type === 'NSEC'),
      );
      await store.apply(ORIGIN, [putMap(other, 4)]);
      expect((await ask('udp')).answers.filter((rr) => rr.type === 'MAP')).toEqual([
        mapRecord(NUMBER, 9),
      ]);
      const metrics = await fetch(`http://127.0.0.1:${provider.admin!.port}/metrics`).then((r) =>
        r.text(),
      );
      expect(metrics).toMatch(/^authoritative_answer_cache_hits_total [1-9]/m);
      expect(metrics).toMatch(/^authoritative_answer_cache_bytes [1-9]/m);
    } finally {
      await provider.close();
      await store.close();
    }
  });
});
