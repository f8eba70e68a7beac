import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bundleFixture,
  parseTrace,
  straceInstalled,
  traceNode,
  unflushedAcks,
} from './helpers/strace.js';

// Design §9 for the two stores of the oblivious path: a token is refused as spent after a crash
// only if its spending was on disk before the gateway answered, and a user's count of tokens
// survives only if it was on disk before the issuer signed. The gateway's spent-token store
// (`packages/resolver/src/gateway/spent-tokens.ts`) and the issuer's counts
// (`packages/relay/src/issuer/quota.ts`) are each run under strace by a child that acknowledges
// every write on stdout; every acknowledgement must follow a completed flush, and, as LMDB with
// overlapping sync marks a commit durable, a meta page written through its O_DSYNC descriptor.
// (The restart tests of both stores are in packages/resolver/test/gateway.test.ts and
// packages/relay/test/issuer.test.ts.)

const dir = mkdtempSync(join(tmpdir(), 'mimi-token-durability-'));
const writer = join(dir, 'token-writer.mjs');
const strace = straceInstalled();
if (!strace) {
  console.warn('strace not installed: skipping the check that tokens are flushed before answers');
}

beforeAll(async () => {
  await bundleFixture(join(import.meta.dirname, 'fixtures', 'token-writer.ts'), writer);
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the stores of the oblivious path flush before they answer (strace order check)', () => {
  it.skipIf(!strace).each([
    { mode: 'spent', what: "the gateway's spent tokens" },
    { mode: 'quota', what: "the issuer's count of each user's tokens" },
  ])('$what', ({ mode }) => {
    const writes = 20;
    const { status, stderr, events } = traceNode(
      writer,
      [mode, join(dir, mode), String(writes)],
      join(dir, `${mode}.trace`),
    );
    expect(status, stderr).toBe(0);
    expect(events.filter((e) => e.kind === 'ack')).toHaveLength(writes);
    expect(unflushedAcks(events, 'flush')).toEqual([]);
    expect(unflushedAcks(events, 'flush-and-meta')).toEqual([]);
  });
});

it('finds an acknowledgement whose pages were written after the last flush before it', () => {
  const events = parseTrace(
    [
      '201 openat(AT_FDCWD, "d/data.mdb", O_RDWR|O_CREAT, 0664) = 19',
      '201 openat(AT_FDCWD, "d/data.mdb", O_WRONLY|O_DSYNC|O_CLOEXEC) = 20',
      '202 writev(19, [{iov_base="", iov_len=4096}], 1) = 4096',
      '202 fdatasync(19) = 0',
      '202 pwrite64(20, "", 128, 2088) = 128',
      '201 write(1, "ack 0\\n", 6) = 6',
      // Write 1: its pages, then the acknowledgement, and only then the flush (the late flush of
      // write 1 must not count for write 2).
      '203 writev(19, [{iov_base="", iov_len=4096}], 1) = 4096',
      '201 write(1, "ack 1\\n", 6) = 6',
      '203 fdatasync(19) = 0',
      '203 pwrite64(20, "", 128, 2088) = 128',
      '204 writev(19, [{iov_base="", iov_len=4096}], 1) = 4096',
      '201 write(1, "ack 2\\n", 6) = 6',
    ].join('\n'),
  );
  expect(unflushedAcks(events, 'flush')).toEqual([1, 2]);
  expect(unflushedAcks(events, 'flush-and-meta')).toEqual([1, 2]);
});
