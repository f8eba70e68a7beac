import { describe, expect, it } from 'vitest';
import { MAX_STALE_AGE_SECONDS, ResolverCache, SingleFlight, cacheSlot } from '../src/index.js';

const TEXT = cacheSlot<string>('text');

describe('cache', () => {
  it('expires by the injected clock and keeps a stale copy for serve-stale', () => {
    const clock = { now: 1_000_000 };
    const cache = new ResolverCache(1 << 20, () => clock.now);
    cache.set(TEXT, 'a', 'value', 300);
    expect(cache.get(TEXT, 'a')).toEqual({ value: 'value', ttl: 300 });
    clock.now += 300_000;
    expect(cache.get(TEXT, 'a')).toBeUndefined();
    expect(cache.getStale(TEXT, 'a')).toBe('value');
    clock.now += MAX_STALE_AGE_SECONDS * 1000;
    expect(cache.getStale(TEXT, 'a')).toBeUndefined();
  });

  it('stays within its byte bound, evicting the least recently used', () => {
    const cache = new ResolverCache(4096, () => 0);
    for (let i = 0; i < 100; i++) cache.set(TEXT, `k${i}`, 'x'.repeat(200), 60);
    expect(cache.bytes).toBeLessThanOrEqual(4096);
    expect(cache.get(TEXT, 'k0')).toBeUndefined();
    expect(cache.get(TEXT, 'k99')?.value).toHaveLength(200);
  });

  it('runs concurrent identical work once', async () => {
    const flight = new SingleFlight<number>();
    let runs = 0;
    const work = async (): Promise<number> => {
      runs++;
      await Promise.resolve();
      return 42;
    };
    const results = await Promise.all(Array.from({ length: 100 }, () => flight.run('q', work)));
    expect(results.every((r) => r === 42)).toBe(true);
    expect(runs).toBe(1);
    expect(flight.size).toBe(0);
  });
});
