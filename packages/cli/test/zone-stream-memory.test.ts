import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { record } from '@mimi-discovery/common';
import {
  MAX_CHANGES_PER_APPLY,
  openLmdbStore,
  storeDirectory,
  type RRsetChange,
} from '@mimi-discovery/authoritative';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCliFixture } from './fixture.js';

/**
 * `zone export` in constant memory, shown without timing anything: the export runs as a process
 * of its own (the built command, as an operator runs it) under a V8 heap limit of
 * {@link HEAP_MIB} MiB, over a zone whose master file is larger than that. The file could not
 * be held in that heap as one string, and the same zone exported as one string (`exportZone`)
 * under the same limit runs out of memory: the limit is tight enough to tell the two apart.
 * (The streamed export's live heap stays near 35 MiB, most of it the loaded code; the limit
 * leaves it room, so that it does not spend its time collecting garbage.)
 */

const cli = createCliFixture('zone-stream');
afterAll(() => cli.cleanup());

const REPO = join(import.meta.dirname, '..', '..', '..');
const BIN = join(REPO, 'packages', 'cli', 'bin', 'mimi-discovery.js');
const ZONE = '4.4.e164.mimi.arpa';

/** The export's V8 heap limit (`--max-old-space-size`); loading the command takes about 25. */
const HEAP_MIB = 96;
/** TXT RRsets in the zone, each one record of {@link RECORD_OCTETS}: a file of about 114 MB. */
const RRSETS = 11_000;
/** Octets of each TXT record: 40 strings of 250 letters. */
const RECORD_OCTETS = 40 * 250;

beforeAll(async () => {
  for (const pkg of ['common', 'authoritative', 'cli']) {
    const built = join(REPO, 'packages', pkg, 'dist', 'index.js');
    if (!existsSync(built)) {
      throw new Error(`${built} is missing: build first (npm test runs tsc -b before vitest)`);
    }
  }
  await cli.ok(['init', 'dp', '--dir', 'big', '--range', '+44', '--udp', '0']);
  const store = await openLmdbStore({ dataDir: storeDirectory(join(cli.dir, 'big')) });
  try {
    const strings = Array.from({ length: 40 }, (_, i) =>
      Buffer.from(String.fromCharCode(97 + (i % 26)).repeat(250)),
    );
    for (let at = 0; at < RRSETS; at += MAX_CHANGES_PER_APPLY) {
      const changes: RRsetChange[] = [];
      for (let i = at; i < Math.min(at + MAX_CHANGES_PER_APPLY, RRSETS); i++) {
        const name = `t${i}.${ZONE}`;
        changes.push({ op: 'put', name, type: 'TXT', records: [record(name, 'TXT', strings, 60)] });
      }
      await store.apply(ZONE, changes);
    }
  } finally {
    await store.close();
  }
}, 120_000);

/**
 * Runs `node --max-old-space-size=HEAP_MIB args…` in `cwd` (not blocking the test's own event
 * loop); its exit status and stderr.
 */
function underHeapLimit(
  args: readonly string[],
  cwd: string = cli.dir,
): Promise<{ status: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`--max-old-space-size=${HEAP_MIB}`, ...args], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
    });
    let stderr = '';
    let stdout = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stderr, stdout }));
  });
}

describe('zone export and import of a zone larger than the heap', () => {
  it('writes the whole zone, larger than the heap limit, in a process with that limit', async () => {
    const { status, stderr } = await underHeapLimit([
      BIN,
      'zone',
      'export',
      '--config',
      'big/config.json',
      '--zone',
      ZONE,
      '--no-nsec3',
      '--no-progress',
      '--out',
      'big.zone',
    ]);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const file = join(cli.dir, 'big.zone');
    expect(statSync(file).size).toBeGreaterThan(1.1 * HEAP_MIB * 2 ** 20);
    expect(statSync(file).size).toBeGreaterThan(RRSETS * RECORD_OCTETS);
    const text = readFileSync(file, 'latin1');
    expect(text.startsWith(`${ZONE}. 3600 IN SOA `)).toBe(true);
    // Every TXT RRset, each with its RRSIG.
    expect(text.match(/ IN TXT "/g)).toHaveLength(RRSETS);
    expect(text.match(/ IN RRSIG TXT /g)).toHaveLength(RRSETS);
  }, 120_000);

  it('reads that file back, larger than the heap limit, in a process with that limit', async () => {
    const { status, stderr, stdout } = await underHeapLimit([
      BIN,
      'zone',
      'import',
      '--config',
      'big/config.json',
      '--zone',
      ZONE,
      '--file',
      'big.zone',
      '--no-progress',
      '--json',
    ]);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const report = JSON.parse(stdout) as { skipped: Array<{ type: string; count: number }> };
    expect(report.skipped.find((s) => s.type === 'TXT')?.count).toBe(RRSETS);
  }, 120_000);

  it('runs out of memory under the same limit when the zone is built as one string', async () => {
    const script = [
      "import { openLmdbStore, exportZone, storeDirectory } from '@mimi-discovery/authoritative';",
      `const store = await openLmdbStore({ dataDir: storeDirectory(${JSON.stringify(join(cli.dir, 'big'))}) });`,
      `const text = exportZone(store, '${ZONE}', { nsec3: false });`,
      'process.stdout.write(String(text.length));',
      'await store.close();',
    ].join('\n');
    // Resolved from the repository, whose node_modules links the built packages.
    const { status, stderr } = await underHeapLimit(['--input-type=module', '-e', script], REPO);
    expect(status).not.toBe(0);
    expect(stderr).toContain('JavaScript heap out of memory');
  }, 120_000);
});
