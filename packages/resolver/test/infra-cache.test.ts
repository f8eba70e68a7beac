import { describe, expect, it } from 'vitest';
import {
  BACKOFF_INITIAL_MS,
  INFRA_HOST_TTL_SECONDS,
  InfraCache,
  MAX_BACKOFF_MS,
  MAX_INFRA_HOSTS,
  MAX_RTO_MS,
  MIN_RTO_MS,
  RTT_BAND_MS,
  SLOW_SERVER_PROBE_MS,
  UNKNOWN_SERVER_RTO_MS,
  type InfraSettings,
} from '../src/index.js';

// The infra cache (`infra-cache.ts`) on a clock the test moves and a seeded random source.

const SETTINGS: InfraSettings = {
  rttBandMs: RTT_BAND_MS,
  maxBackoffMs: MAX_BACKOFF_MS,
  hostTtlSeconds: INFRA_HOST_TTL_SECONDS,
  maxHosts: MAX_INFRA_HOSTS,
  timeoutMs: 2000,
};

/** mulberry32: a small seeded generator, uniform in [0, 1). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function cache(settings: Partial<InfraSettings> = {}, seed = 1) {
  const clock = { ms: 1_000_000 };
  const infra = new InfraCache({ ...SETTINGS, ...settings }, () => clock.ms, seeded(seed));
  return { infra, clock };
}

/** How often each server comes first over `n` plans. */
function firsts(infra: InfraCache, ids: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const first = infra.plan(ids).order[0] ?? '';
    counts.set(first, (counts.get(first) ?? 0) + 1);
  }
  return counts;
}

describe('RTT and RTO (RFC 6298 §2)', () => {
  it('starts from the first sample, then smooths with alpha 1/8 and beta 1/4', () => {
    const { infra } = cache();
    infra.answered('a', 100);
    // §2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4·RTTVAR.
    expect(infra.entry('a')).toMatchObject({ srtt: 100, rttvar: 50, rto: 300 });
    infra.answered('a', 20);
    // §2.3: RTTVAR = 3/4·50 + 1/4·|100 − 20| = 57.5; SRTT = 7/8·100 + 1/8·20 = 90.
    expect(infra.entry('a')).toMatchObject({ srtt: 90, rttvar: 57.5, rto: 320 });
  });

  it('keeps the RTO between its floor and its cap', () => {
    const { infra } = cache();
    infra.answered('fast', 1);
    expect(infra.rto('fast')).toBe(MIN_RTO_MS);
    infra.answered('slow', 100_000);
    expect(infra.rto('slow')).toBe(MAX_RTO_MS);
    expect(infra.rto('never')).toBe(UNKNOWN_SERVER_RTO_MS);
  });
});

describe('selection', () => {
  it('chooses at random among the servers within the band of the fastest, never a slower one first', () => {
    const { infra } = cache();
    infra.answered('fast', 5); // RTO 50
    infra.answered('near', 100); // RTO 300: within 400 ms of 50
    infra.answered('slow', 500); // RTO 1500
    const counts = firsts(infra, ['slow', 'near', 'fast'], 400);
    expect(counts.get('slow')).toBeUndefined();
    expect(counts.get('fast')).toBeGreaterThan(100);
    expect(counts.get('near')).toBeGreaterThan(100);
    expect(infra.plan(['slow', 'near', 'fast']).order[2]).toBe('slow');
  });

  it('counts a server never asked within the band of a fast one, so it gets tried', () => {
    const { infra } = cache();
    infra.answered('fast', 5);
    const counts = firsts(infra, ['fast', 'new'], 200);
    expect(counts.get('new')).toBeGreaterThan(50);
  });

  it('with a band of 0 always takes the fastest first', () => {
    const { infra } = cache({ rttBandMs: 0 });
    infra.answered('fast', 5);
    infra.answered('near', 100);
    expect(firsts(infra, ['near', 'fast'], 50)).toEqual(new Map([['fast', 50]]));
  });

  it('lists each address once', () => {
    const { infra } = cache();
    expect(infra.plan(['a', 'b', 'a']).order).toHaveLength(2);
  });
});

describe('backoff and probes', () => {
  it('holds back a server that timed out, doubling the time on each timeout in a row, up to the cap', () => {
    const { infra, clock } = cache({ maxBackoffMs: 30_000 });
    infra.answered('a', 5);
    infra.answered('b', 5);
    infra.failed('b');
    expect(infra.entry('b')).toMatchObject({
      failures: 1,
      rto: SETTINGS.timeoutMs,
      heldUntil: clock.ms + BACKOFF_INITIAL_MS,
    });
    // Held back: after every server that has not failed, and no probe before its time.
    for (let i = 0; i < 20; i++)
      expect(infra.plan(['b', 'a'])).toEqual({ order: ['a', 'b'], probe: undefined });
    const held: number[] = [];
    for (let i = 0; i < 5; i++) {
      const entry = infra.entry('b');
      clock.ms = entry?.heldUntil ?? 0;
      expect(infra.plan(['a', 'b']).probe).toBe('b');
      infra.failed('b');
      held.push((infra.entry('b')?.heldUntil ?? 0) - clock.ms);
    }
    expect(held).toEqual([10_000, 20_000, 30_000, 30_000, 30_000]);
    expect(infra.rto('b')).toBeLessThanOrEqual(MAX_RTO_MS);
  });

  it('counts the failures of queries that were on their way together as one outage', () => {
    const { infra, clock } = cache();
    infra.answered('a', 5);
    const sentAt = clock.ms;
    clock.ms += 2000;
    for (let i = 0; i < 50; i++) infra.failed('a', sentAt);
    expect(infra.entry('a')).toMatchObject({
      failures: 1,
      rto: SETTINGS.timeoutMs,
      heldUntil: clock.ms + BACKOFF_INITIAL_MS,
    });
    // A query sent after that failure was recorded, failing too, is a second one in a row.
    const later = clock.ms + 1;
    clock.ms += 2001;
    infra.failed('a', later);
    expect(infra.entry('a')).toMatchObject({ failures: 2, rto: 2 * SETTINGS.timeoutMs });
  });

  it('sends one probe at a time, and lets a server that answers it rejoin the band', () => {
    const { infra, clock } = cache();
    infra.answered('a', 5);
    infra.answered('b', 5);
    infra.failed('b');
    clock.ms += BACKOFF_INITIAL_MS;
    expect(infra.plan(['a', 'b']).probe).toBe('b');
    // The probe is on its way: no second one.
    expect(infra.plan(['a', 'b']).probe).toBeUndefined();
    infra.answered('b', 5);
    expect(infra.entry('b')).toMatchObject({ failures: 0, probing: false, heldUntil: 0 });
    expect(infra.rto('b')).toBeLessThan(MIN_RTO_MS + RTT_BAND_MS);
    const counts = firsts(infra, ['a', 'b'], 200);
    expect(counts.get('b')).toBeGreaterThan(50);
  });

  it('probes a slow server once it has not been asked for a while', () => {
    const { infra, clock } = cache();
    infra.answered('fast', 5);
    infra.answered('slow', 900);
    expect(infra.plan(['fast', 'slow']).probe).toBeUndefined();
    clock.ms += SLOW_SERVER_PROBE_MS - 1;
    infra.answered('fast', 5);
    expect(infra.plan(['fast', 'slow']).probe).toBeUndefined();
    clock.ms += 1;
    expect(infra.plan(['fast', 'slow']).probe).toBe('slow');
    // It got faster: its answers bring it into the band (slowly: alpha is 1/8).
    for (let i = 0; i < 40; i++) infra.answered('slow', 5);
    expect(infra.rto('slow')).toBeLessThan(MIN_RTO_MS + RTT_BAND_MS);
  });

  it('still tries held-back servers when all of them are, the lowest RTO first, and probes no server the question asks first', () => {
    const { infra, clock } = cache();
    infra.answered('a', 5);
    infra.answered('b', 800);
    infra.failed('a'); // RTO max(2·50, timeout) = 2000
    infra.failed('b'); // RTO 2·2400 = 4800
    clock.ms += BACKOFF_INITIAL_MS;
    const plan = infra.plan(['b', 'a']);
    expect(plan.order).toEqual(['a', 'b']);
    expect(plan.probe).toBe('b');
    expect(infra.plan(['a']).probe).toBeUndefined();
  });

  it('forgets a probe that neither answered nor timed out', () => {
    const { infra, clock } = cache();
    infra.answered('a', 5);
    infra.failed('b');
    clock.ms += BACKOFF_INITIAL_MS;
    expect(infra.plan(['a', 'b']).probe).toBe('b');
    infra.abandon('b');
    expect(infra.plan(['a', 'b']).probe).toBe('b');
  });
});

describe('bounds', () => {
  it('remembers at most maxHosts addresses, forgetting the least recently updated', () => {
    const { infra } = cache({ maxHosts: 3 });
    for (const id of ['a', 'b', 'c']) infra.answered(id, 5);
    infra.answered('a', 5);
    infra.answered('d', 5);
    expect(infra.size).toBe(3);
    expect(infra.entry('b')).toBeUndefined();
    expect(['a', 'c', 'd'].map((id) => infra.entry(id) !== undefined)).toEqual([true, true, true]);
  });

  it('forgets an address hostTtlSeconds after its last answer or failure, a backoff with it', () => {
    const { infra, clock } = cache({ hostTtlSeconds: 60, maxBackoffMs: 60_000 });
    infra.failed('a');
    clock.ms += 60_000;
    expect(infra.entry('a')?.failures).toBe(1);
    clock.ms += 1;
    expect(infra.entry('a')).toBeUndefined();
    expect(infra.rto('a')).toBe(UNKNOWN_SERVER_RTO_MS);
    expect(infra.size).toBe(0);
  });

  it('forgets everything on clear', () => {
    const { infra } = cache();
    infra.answered('a', 5);
    infra.clear();
    expect(infra.size).toBe(0);
  });
});
