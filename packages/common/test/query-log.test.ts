import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  QUERY_LOG_BUFFER_OCTETS,
  createLogger,
  openQueryLog,
  queryLogLine,
  type QueryLog,
  type QueryLogEntry,
} from '../src/index.js';

const NAME = '8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa';
const ENTRY: QueryLogEntry = {
  name: NAME,
  type: 'MAP',
  transport: 'doh',
  rcode: 'NOERROR',
  peer: '192.0.2.7',
};
/** 2026-01-01T00:00:00.000Z */
const T0 = 1_767_225_600_000;

const dirs: string[] = [];
const logs: QueryLog[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mimi-query-log-'));
  dirs.push(dir);
  return dir;
}

function opened(...args: Parameters<typeof openQueryLog>): QueryLog {
  const log = openQueryLog(...args);
  logs.push(log);
  return log;
}

function linesOf(path: string): unknown[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown);
}

afterEach(async () => {
  await Promise.all(logs.splice(0).map((l) => l.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('query log lines', () => {
  it('hold t, name, type, transport and the outcome, in that order, without the peer', () => {
    expect(queryLogLine(ENTRY, T0, false)).toBe(
      `{"t":"2026-01-01T00:00:00.000Z","name":"${NAME}","type":"MAP","transport":"doh","rcode":"NOERROR"}\n`,
    );
  });

  it('hold the peer last, only when the log is configured with it', () => {
    expect(JSON.parse(queryLogLine({ ...ENTRY, cached: true }, T0, true))).toEqual({
      t: '2026-01-01T00:00:00.000Z',
      name: NAME,
      type: 'MAP',
      transport: 'doh',
      rcode: 'NOERROR',
      cached: true,
      peer: '192.0.2.7',
    });
    const line = queryLogLine({ ...ENTRY, cached: true }, T0, true);
    expect(Object.keys(JSON.parse(line) as object)).toEqual([
      't',
      'name',
      'type',
      'transport',
      'rcode',
      'cached',
      'peer',
    ]);
  });

  it('hold the status of an API lookup instead of an rcode', () => {
    const entry: QueryLogEntry = { name: NAME, type: 'MAP', transport: 'api', status: 'found' };
    const line = queryLogLine(entry, T0, true);
    expect(JSON.parse(line)).toEqual({
      t: '2026-01-01T00:00:00.000Z',
      name: NAME,
      type: 'MAP',
      transport: 'api',
      status: 'found',
    });
  });

  it('escape whatever a name holds, one line each', () => {
    const line = queryLogLine({ ...ENTRY, name: 'a\\010b"c.mimi.arpa' }, T0, false);
    expect(line.split('\n')).toHaveLength(2);
    expect((JSON.parse(line) as { name: string }).name).toBe('a\\010b"c.mimi.arpa');
  });
});

describe('openQueryLog', () => {
  it('appends one JSON line per query, created with mode 0600, the peer left out', async () => {
    const path = join(tempDir(), 'queries.jsonl');
    const log = opened({ path }, { now: () => T0 });
    for (let i = 0; i < 3; i++) log.record({ ...ENTRY, type: `TYPE${i}` });
    await log.flush();
    expect(linesOf(path)).toEqual(
      [0, 1, 2].map((i) => ({
        t: '2026-01-01T00:00:00.000Z',
        name: NAME,
        type: `TYPE${i}`,
        transport: 'doh',
        rcode: 'NOERROR',
      })),
    );
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(log.stats()).toEqual({ written: 3, dropped: 0 });
  });

  it('writes the peer when configured to', async () => {
    const path = join(tempDir(), 'queries.jsonl');
    const log = opened({ path, peer: true });
    log.record(ENTRY);
    await log.flush();
    expect(linesOf(path)).toMatchObject([{ name: NAME, peer: '192.0.2.7' }]);
  });

  it('appends to an existing log, ending a line that was cut short first', async () => {
    const path = join(tempDir(), 'queries.jsonl');
    writeFileSync(path, '{"t":"2025-12-31T23:59:59.000Z","name":"x"}\n{"t":"2025-12-31T23:59:59.5');
    const log = opened({ path });
    log.record(ENTRY);
    await log.flush();
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[1]).toBe('{"t":"2025-12-31T23:59:59.5');
    expect(JSON.parse(lines[2] ?? '')).toMatchObject({ name: NAME });
    expect(lines[3]).toBe('');
  });

  it('drops and counts the lines past its buffer while the disk is busy, never blocking', async () => {
    const path = join(tempDir(), 'queries.jsonl');
    const lineOctets = queryLogLine(ENTRY, Date.now(), false).length;
    const log = opened({ path, bufferBytes: lineOctets * 10 });
    // 25 lines in one event turn: the buffer holds 10 of them until the write.
    for (let i = 0; i < 25; i++) log.record(ENTRY);
    expect(log.stats()).toEqual({ written: 0, dropped: 15 });
    await log.flush();
    expect(log.stats()).toEqual({ written: 10, dropped: 15 });
    expect(linesOf(path)).toHaveLength(10);
  });

  it('counts the lines a full disk refuses, reports it once, and never throws', async () => {
    const errors: string[] = [];
    const log = opened(
      { path: '/dev/full' },
      {
        log: createLogger('test', { write: (line) => errors.push(line) }),
        retryMs: 10,
      },
    );
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 5; i++) log.record(ENTRY);
      await log.flush();
    }
    expect(log.stats()).toEqual({ written: 0, dropped: 15 });
    const failures = errors.filter((l) => l.includes('query-log-failed'));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toContain('ENOSPC');
  });

  it('counts the lines of a path that cannot be opened, and writes once it can', async () => {
    const dir = tempDir();
    // A regular file where the log's directory should be: open fails (ENOTDIR).
    writeFileSync(join(dir, 'logs'), '');
    const path = join(dir, 'logs', 'queries.jsonl');
    const lines: string[] = [];
    const log = opened(
      { path },
      { log: createLogger('test', { write: (l) => lines.push(l) }), retryMs: 10 },
    );
    log.record(ENTRY);
    log.record(ENTRY);
    await log.flush();
    expect(log.stats()).toEqual({ written: 0, dropped: 2 });
    // The operator fixes the path; the next write after the wait succeeds.
    rmSync(join(dir, 'logs'));
    mkdirSync(join(dir, 'logs'));
    log.record(ENTRY);
    await log.flush();
    expect(log.stats()).toEqual({ written: 1, dropped: 2 });
    expect(linesOf(path)).toHaveLength(1);
    expect(lines.some((l) => l.includes('query-log-recovered'))).toBe(true);
  });

  it('writes what it holds when closed, and drops what comes after', async () => {
    const path = join(tempDir(), 'queries.jsonl');
    const log = opened({ path });
    log.record(ENTRY);
    log.record(ENTRY);
    await log.close();
    expect(linesOf(path)).toHaveLength(2);
    log.record(ENTRY);
    await log.flush();
    expect(log.stats()).toEqual({ written: 2, dropped: 1 });
    expect(linesOf(path)).toHaveLength(2);
  });

  it('closes without waiting out the pause after a failed write', async () => {
    // A pause of a minute: were close to wait for it, the test would time out.
    const log = opened({ path: '/dev/full' }, { retryMs: 60_000 });
    log.record(ENTRY);
    while (log.stats().dropped === 0) await new Promise((r) => setTimeout(r, 5));
    log.record(ENTRY);
    await log.close();
    expect(log.stats()).toEqual({ written: 0, dropped: 2 });
  });

  it('refuses a buffer that is not a positive integer', () => {
    expect(() => openQueryLog({ path: '/dev/null', bufferBytes: 0 })).toThrow(RangeError);
    expect(QUERY_LOG_BUFFER_OCTETS).toBe(2 ** 20);
  });
});
