import { describe, expect, it } from 'vitest';
import {
  MAX_ATTEMPTS_PER_CODE,
  MAX_RATE_LIMIT_KEYS,
  REQUESTS_PER_CLIENT_PER_MINUTE,
  SENDS_PER_CSI_PER_HOUR,
  createTokenBuckets,
} from '../src/registration/rate-limit.js';

const T0 = 1_767_225_600;

function buckets(capacity: number, windowSeconds: number, maxKeys?: number) {
  const clock = { now: T0 };
  const table = createTokenBuckets({
    capacity,
    windowSeconds,
    now: () => clock.now,
    ...(maxKeys === undefined ? {} : { maxKeys }),
  });
  return { clock, table };
}

/** How many tokens `key` can take right now. */
function drain(table: ReturnType<typeof createTokenBuckets>, key: string, bound = 10_000): number {
  let n = 0;
  while (n < bound && table.take(key).kind === 'taken') n++;
  return n;
}

describe('limits', () => {
  it('are the documented defaults', () => {
    expect(SENDS_PER_CSI_PER_HOUR).toBe(5);
    expect(REQUESTS_PER_CLIENT_PER_MINUTE).toBe(60);
    expect(MAX_ATTEMPTS_PER_CODE).toBe(5);
    expect(MAX_RATE_LIMIT_KEYS).toBe(100_000);
  });

  it(`sends ${SENDS_PER_CSI_PER_HOUR} codes per CSI per hour`, () => {
    const { clock, table } = buckets(SENDS_PER_CSI_PER_HOUR, 3600);
    expect(drain(table, 'tel:+442079460018')).toBe(5);
    expect(table.take('tel:+442079460018')).toEqual({ kind: 'limited', retryAfter: 720 });
    clock.now += 719;
    expect(table.take('tel:+442079460018').kind).toBe('limited');
    clock.now += 1;
    expect(drain(table, 'tel:+442079460018')).toBe(1);
    clock.now += 3600;
    expect(drain(table, 'tel:+442079460018')).toBe(5);
  });

  it(`serves ${REQUESTS_PER_CLIENT_PER_MINUTE} requests per client per minute`, () => {
    const { clock, table } = buckets(REQUESTS_PER_CLIENT_PER_MINUTE, 60);
    expect(drain(table, '192.0.2.1')).toBe(60);
    expect(table.take('192.0.2.1')).toEqual({ kind: 'limited', retryAfter: 1 });
    // Buckets are per key.
    expect(drain(table, '192.0.2.2')).toBe(60);
    clock.now += 30;
    expect(drain(table, '192.0.2.1')).toBe(30);
  });
});

describe('token buckets', () => {
  it('never hold more than their capacity', () => {
    const { clock, table } = buckets(3, 60);
    clock.now += 10 * 86_400;
    expect(table.available('k')).toBe(3);
    expect(drain(table, 'k')).toBe(3);
  });

  it('neither add nor take tokens when the clock steps back', () => {
    const { clock, table } = buckets(2, 60);
    drain(table, 'k');
    clock.now -= 3600;
    expect(table.take('k').kind).toBe('limited');
    clock.now += 3600 + 30;
    expect(drain(table, 'k')).toBe(1);
  });

  it('track at most maxKeys keys, dropping the least recently used', () => {
    const { table } = buckets(1, 60, 3);
    for (const key of ['a', 'b', 'c', 'd']) expect(table.take(key).kind).toBe('taken');
    expect(table.size).toBe(3);
    // `a` was dropped, so it starts again with a full bucket; `d` was not.
    expect(table.take('a').kind).toBe('taken');
    expect(table.take('d').kind).toBe('limited');
  });

  it('reject a capacity or window that makes no sense', () => {
    expect(() => createTokenBuckets({ capacity: 0, windowSeconds: 60, now: () => 0 })).toThrow();
    expect(() => createTokenBuckets({ capacity: 1, windowSeconds: 0, now: () => 0 })).toThrow();
  });
});
