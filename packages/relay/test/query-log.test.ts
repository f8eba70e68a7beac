import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createForwardSlots, openRelayQueryLog, relayLogLine } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'mimi-relay-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ENTRY = {
  client: '192.0.2.7',
  method: 'POST',
  route: '/ohttp/resolver',
  octetsIn: 6212,
  octetsOut: 18933,
  status: 200,
};

describe('the relay query log', () => {
  it('writes one JSON line per request, in order, to a file only its owner reads', async () => {
    const path = join(dir, 'ok.jsonl');
    const log = openRelayQueryLog({ path }, { now: () => Date.UTC(2026, 0, 1, 12) });
    for (let i = 0; i < 50; i++) log.record({ ...ENTRY, status: 200 + i });
    await log.close();
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(50);
    expect(lines[0]).toBe(
      '{"t":"2026-01-01T12:00:00.000Z","client":"192.0.2.7","method":"POST","route":"/ohttp/resolver","in":6212,"out":18933,"status":200}',
    );
    expect(lines.map((l) => (JSON.parse(l) as { status: number }).status)).toEqual(
      Array.from({ length: 50 }, (_, i) => 200 + i),
    );
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(log.stats()).toEqual({ written: 50, dropped: 0 });
  });

  it('drops and counts lines past its buffer, and never throws on a file it cannot open', async () => {
    const line = relayLogLine(ENTRY, 0);
    const small = openRelayQueryLog({
      path: join(dir, 'small.jsonl'),
      bufferBytes: line.length * 2,
    });
    for (let i = 0; i < 5; i++) small.record(ENTRY);
    await small.close();
    expect(small.stats()).toEqual({ written: 2, dropped: 3 });

    const broken = openRelayQueryLog(
      { path: join(dir, 'no-such-dir', 'q.jsonl') },
      { retryMs: 10 },
    );
    expect(() => broken.record(ENTRY)).not.toThrow();
    await broken.flush();
    await broken.close();
    expect(broken.stats()).toEqual({ written: 0, dropped: 1 });
  });
});

describe('forward slots', () => {
  it('caps forwards per client and overall, and frees a slot once, on release', () => {
    const slots = createForwardSlots(4, 2);
    const a1 = slots.take('192.0.2.1');
    const a2 = slots.take('192.0.2.1');
    expect(slots.take('192.0.2.1').kind).toBe('client-busy');
    // One IPv6 /64 is one client.
    expect(slots.take('2001:db8::1').kind).toBe('taken');
    expect(slots.take('2001:db8::2').kind).toBe('taken');
    expect(slots.take('2001:db8::3').kind).toBe('client-busy');
    expect(slots.take('192.0.2.2').kind).toBe('busy');
    expect(slots.inFlight).toBe(4);
    if (a1.kind !== 'taken' || a2.kind !== 'taken') throw new Error('not taken');
    a1.release();
    a1.release();
    expect(slots.inFlight).toBe(3);
    expect(slots.take('192.0.2.2').kind).toBe('taken');
    expect(slots.take('192.0.2.1').kind).toBe('busy');
  });
});
