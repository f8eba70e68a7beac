import { describe, expect, it } from 'vitest';
import { CsiError, parseCsi } from '@mimi-discovery/common';
import {
  CsiMemo,
  MAX_STALE_AGE_SECONDS,
  PARSED_CSI_CACHE_OCTETS,
  PARSED_CSI_ENTRY_OVERHEAD_OCTETS,
  ResolverCache,
  SingleFlight,
  cacheSlot,
} from '../src/index.js';

const TEXT = cacheSlot<string>('text');

describe('cache', () => {
  it('expires by the injected clock and keeps a stale copy for serve-stale', () => {
    const clock = { now: 1_000 };
    const cache = new ResolverCache(1 << 20, () => clock.now);
    cache.set(TEXT, 'a', 'value', 300);
    expect(cache.get(TEXT, 'a')).toEqual({ value: 'value', ttl: 300, lifetime: 300 });
    clock.now += 300;
    expect(cache.get(TEXT, 'a')).toBeUndefined();
    expect(cache.getStale(TEXT, 'a')).toBe('value');
    clock.now += MAX_STALE_AGE_SECONDS;
    expect(cache.getStale(TEXT, 'a')).toBeUndefined();
  });

  it('stays within its byte bound, evicting the least recently used', () => {
    const cache = new ResolverCache(4096, () => 0);
    for (let i = 0; i < 100; i++) cache.set(TEXT, `k${i}`, 'x'.repeat(200), 60);
    expect(cache.bytes).toBeLessThanOrEqual(4096);
    expect(cache.get(TEXT, 'k0')).toBeUndefined();
    expect(cache.get(TEXT, 'k99')?.value).toHaveLength(200);
  });

  it('drops every entry, fresh and stale, on clear', () => {
    const clock = { now: 1_000 };
    const cache = new ResolverCache(1 << 20, () => clock.now);
    cache.set(TEXT, 'fresh', 'value', 300);
    cache.set(TEXT, 'stale', 'value', 1);
    clock.now += 2;
    cache.clear();
    expect(cache.bytes).toBe(0);
    expect(cache.get(TEXT, 'fresh')).toBeUndefined();
    expect(cache.getStale(TEXT, 'stale')).toBeUndefined();
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

describe('CsiMemo', () => {
  it('returns what parseCsi returns, and the code and message of its error for input that is not a CSI', () => {
    const memo = new CsiMemo(PARSED_CSI_CACHE_OCTETS);
    for (let i = 0; i < 2; i++) {
      expect(memo.parse('+44 (0)20 7946 0018')).toBe('tel:+442079460018');
      expect(memo.parse('Alice@Example.COM')).toBe('mailto:alice@example.com');
      const failure = memo.parse('+44 20 7946 001x');
      const thrown = (() => {
        try {
          parseCsi('+44 20 7946 001x');
        } catch (error) {
          return error as CsiError;
        }
        return undefined;
      })();
      expect(thrown).toBeInstanceOf(CsiError);
      expect(failure).toEqual({ code: thrown?.code, message: thrown?.message });
    }
    expect(memo.size).toBe(3);
  });

  it('stays within its octet bound, forgetting the least recently used input', () => {
    // Room for about ten entries of `+4420794600NN` → `tel:+4420794600NN`.
    const entry = 2 * ('+442079460000'.length + 'tel:+442079460000'.length);
    const bound = 10 * (entry + PARSED_CSI_ENTRY_OVERHEAD_OCTETS);
    const memo = new CsiMemo(bound);
    for (let i = 0; i < 50; i++) memo.parse(`+4420794600${String(i).padStart(2, '0')}`);
    expect(memo.octets).toBeLessThanOrEqual(bound);
    expect(memo.size).toBe(10);
    // The most recent inputs are still there; the first ones were forgotten, and parse again.
    expect(memo.parse('+442079460049')).toBe('tel:+442079460049');
    expect(memo.parse('+442079460000')).toBe('tel:+442079460000');
    expect(memo.size).toBe(10);
  });

  it('forgets everything on clear', () => {
    const memo = new CsiMemo(PARSED_CSI_CACHE_OCTETS);
    memo.parse('+442079460018');
    memo.clear();
    expect(memo.size).toBe(0);
    expect(memo.octets).toBe(0);
  });
});
