import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildQuery, queryUdp, type Message, type ResourceRecord } from '@mimi-discovery/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCliFixture, serve, type Serving } from './fixture.js';

// `mimi-discovery backup`: a copy of a running DP's store that a fresh data directory serves
// again with the same key directory, and that holds no key material (design §9).

const cli = createCliFixture('backup');
beforeAll(async () => {
  await cli.ok(['init', 'dp', '--dir', 'hot', '--range', '+33', '--udp', '0', '--tcp', '0']);
}, 60_000);
afterAll(() => cli.cleanup());

/** The seeds in a key directory: every key file's `seed`, decoded. */
function seedsIn(dir: string): Buffer[] {
  return readdirSync(dir).map((file) => {
    const json = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { seed: string };
    return Buffer.from(json.seed, 'base64');
  });
}

/** The stored, signed RRsets a resolver asks a DP for, with DO set. */
async function signedAnswers(server: Serving): Promise<ResourceRecord[][]> {
  const udp = server.listener('udp');
  const out: ResourceRecord[][] = [];
  for (const type of ['SOA', 'DNSKEY', 'NS'] as const) {
    const response: Message = await queryUdp(
      { host: udp.host, port: udp.port },
      buildQuery('3.3.e164.mimi.arpa', type, { dnssecOk: true }),
    );
    expect(response.rcode).toBe('NOERROR');
    out.push(response.answers);
  }
  return out;
}

describe('backup', () => {
  it('copies a running DP, whose copy a fresh data directory serves with the same signed answers and no seed', async () => {
    const server = await serve(cli, 'hot/config.json');
    let report: { kind: string; out: string; keys: string };
    let before: ResourceRecord[][];
    try {
      report = await cli.json(['backup', '--config', 'hot/config.json', '--out', 'saved/store']);
      before = await signedAnswers(server);
    } finally {
      expect((await server.stop()).exitCode).toBe(0);
    }
    const keys = join(cli.dir, 'hot', 'keys');
    expect(report).toEqual({
      kind: 'lmdb',
      store: join(cli.dir, 'hot', 'store'),
      out: join(cli.dir, 'saved', 'store'),
      keys,
    });
    // No zone seed and no prover seed anywhere in the copy.
    const seeds = seedsIn(keys);
    expect(seeds.length).toBeGreaterThanOrEqual(2);
    const copy = readFileSync(join(cli.dir, 'saved', 'store', 'data.mdb'));
    for (const seed of seeds) {
      expect(seed).toHaveLength(32);
      expect(copy.includes(seed)).toBe(false);
    }
    // Restored into a fresh data directory beside the same key directory.
    const config = JSON.parse(readFileSync(join(cli.dir, 'hot', 'config.json'), 'utf8')) as object;
    writeFileSync(
      join(cli.dir, 'saved.json'),
      JSON.stringify({ ...config, dataDir: join(cli.dir, 'saved'), keys: { dir: keys } }),
    );
    const restored = await serve(cli, 'saved.json');
    try {
      expect(await signedAnswers(restored)).toEqual(before);
    } finally {
      expect((await restored.stop()).exitCode).toBe(0);
    }
    // `db backup` is the same command; a used directory is refused.
    const again = await cli.run([
      'db',
      'backup',
      '--config',
      'hot/config.json',
      '--out',
      'saved/store',
    ]);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(/is not empty.*\(ERR_STORE_IO\)\n$/);
  });
});
