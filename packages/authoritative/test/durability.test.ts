import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyRRset, type RecordOf } from '@mimi-discovery/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLmdbStore } from '../src/index.js';
import { WRITER_ORIGIN, writeOf } from './fixtures/durable-writer.js';
import {
  bundleFixture,
  parseTrace,
  straceInstalled,
  traceNode,
  unflushedAcks,
} from '../../../test/helpers/strace.js';

/**
 * Design §9: a write is acknowledged only once its commit is flushed to disk, so it survives
 * kill -9 and a power cut. A kill test shows that nothing acknowledged is lost when the process
 * dies; it cannot show a flush happened (the page cache survives a killed process), so a second
 * test watches the system calls and checks that a flush completes before each acknowledgement.
 */

const dir = mkdtempSync(join(tmpdir(), 'mimi-durability-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const writer = join(dir, 'durable-writer.mjs');

/**
 * Bundles the writer fixture into one ES module for a plain `node` child, from the TypeScript
 * sources (the `source` export condition, as the tests use them). Other packages stay outside
 * the bundle, imported from their absolute paths, so lmdb loads its native addon as usual.
 */
beforeAll(async () => {
  await bundleFixture(join(import.meta.dirname, 'fixtures', 'durable-writer.ts'), writer);
}, 60_000);

/**
 * Reads `ack <n>` and `serial <s>` lines from a child until it exits; resolves `onAcks` once `wanted`
 * arrived. `serial` is the highest serial acknowledged.
 */
function collectAcks(
  child: ChildProcess,
  wanted: number,
): {
  acks: number[];
  serial: { highest: number };
  reached: Promise<void>;
  exited: Promise<number | null>;
} {
  const acks: number[] = [];
  const serial = { highest: 0 };
  let buffered = '';
  let reach: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => (reach = resolve));
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      const m = /^ack (\d+)$/.exec(line);
      if (m !== null) acks.push(Number(m[1]));
      const s = /^serial (\d+)$/.exec(line);
      if (s !== null) serial.highest = Math.max(serial.highest, Number(s[1]));
    }
    if (acks.length >= wanted) reach();
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('close', (code) => {
      reach();
      resolve(code);
    });
  });
  return { acks, serial, reached, exited };
}

describe('durability of the LMDB store', () => {
  it('keeps every acknowledged write after the writer is killed with SIGKILL mid-stream', async () => {
    const dataDir = join(dir, 'killed');
    const child = spawn(process.execPath, [writer, dataDir, '100000', '16'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const { acks, serial, reached, exited } = collectAcks(child, 400);
    // A safety net only: the writer acknowledges hundreds of writes a second.
    const timeout = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await reached;
    child.kill('SIGKILL');
    await exited;
    clearTimeout(timeout);
    expect(stderr).toBe('');
    expect(child.signalCode).toBe('SIGKILL');
    expect(acks.length).toBeGreaterThanOrEqual(400);

    const store = await openLmdbStore({ dataDir });
    const dnskeys = store.readRRset(WRITER_ORIGIN, WRITER_ORIGIN, 'DNSKEY');
    const view = store.zoneView(WRITER_ORIGIN);
    for (const n of acks) {
      const { name, data } = writeOf(n);
      const [map] = store.readRRset(WRITER_ORIGIN, name, 'MAP');
      expect(map?.type === 'MAP' && Buffer.from(map.data).equals(data), `write ${n}`).toBe(true);
      const rrsig = view?.node(name)?.signatures.get('MAP')?.[0] as RecordOf<'RRSIG'>;
      expect(verifyRRset([map as RecordOf<'MAP'>], rrsig, dnskeys, 1767225600).kind).toBe(
        'verified',
      );
    }
    // One serial step per group commit: the serial of every acknowledged commit is durable.
    expect(serial.highest).toBeGreaterThan(1);
    expect(store.zoneInfo(WRITER_ORIGIN)?.serial).toBeGreaterThanOrEqual(serial.highest);
    await store.close();
  });

  const strace = straceInstalled();
  if (!strace) {
    console.warn(
      'strace not installed: skipping the check that a flush precedes each acknowledgement',
    );
  }

  it.skipIf(!strace)(
    'flushes to disk before it acknowledges each write (strace order check)',
    () => {
      const dataDir = join(dir, 'traced');
      const trace = join(dir, 'trace.txt');
      const writes = 30;
      const { status, stderr, events } = traceNode(writer, [dataDir, String(writes), '1'], trace);
      expect(status, stderr).toBe(0);
      expect(events.filter((e) => e.kind === 'ack')).toHaveLength(writes);
      expect(unflushedAcks(events, 'flush')).toEqual([]);
      // With overlapping sync, LMDB then records the commit as flushed in a meta page written
      // through its O_DSYNC descriptor; after a power cut it trusts only such a commit.
      expect(unflushedAcks(events, 'flush-and-meta')).toEqual([]);
    },
  );

  it('finds an acknowledgement without a flush before it in a trace', () => {
    const events = parseTrace(
      [
        '101 openat(AT_FDCWD, "d/data.mdb", O_WRONLY|O_DSYNC|O_CLOEXEC) = 20',
        '101 write(1, "ready\\n", 6) = 6',
        '102 fdatasync(19 <unfinished ...>',
        '101 write(1, "ack 0\\n", 6) = 6',
        '102 <... fdatasync resumed>) = 0',
        '103 fdatasync(19) = 0',
        '101 write(1, "ack 1\\n", 6) = 6',
        '101 write(1, "ack 2\\n", 6) = 6',
        '104 fdatasync(19) = 0',
        '104 pwrite64(20, "\\0\\0"..., 128, 2088 <unfinished ...>',
        '101 write(1, "ack 3\\n", 6) = 6',
        '104 <... pwrite64 resumed>) = 128',
        '105 fdatasync(19) = 0',
        '105 pwrite64(20, "\\0\\0"..., 128, 2088) = 128',
        '101 write(1, "ack 4\\n", 6) = 6',
      ].join('\n'),
    );
    expect(unflushedAcks(events, 'flush')).toEqual([0, 2]);
    expect(unflushedAcks(events, 'flush-and-meta')).toEqual([0, 1, 2, 3]);
  });
});
