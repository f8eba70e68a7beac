import { describe, expect, it } from 'vitest';
import { SORTED_CHUNK_ENTRIES, SortedMap } from '../src/zone/sorted-map.js';

// The memory store's ordered index (`sorted-map.ts`), checked against a plain sorted array under
// random writes that split and empty its chunks.

/** A deterministic pseudo-random source (mulberry32). */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** The reference: what each query should answer, from a sorted array. */
function reference(keys: readonly string[]): {
  lower(k: string): string | undefined;
  higher(k: string): string | undefined;
} {
  return {
    lower: (k) => keys.filter((x) => x < k).at(-1),
    higher: (k) => keys.find((x) => x > k),
  };
}

describe('SortedMap', () => {
  it('keeps its keys in order and answers neighbours as a sorted array does, through random writes', () => {
    const next = random(7);
    const map = new SortedMap<number>();
    const truth = new Map<string, number>();
    const key = (): string =>
      `k${Math.floor(next() * 3000)
        .toString()
        .padStart(4, '0')}`;
    for (let step = 0; step < 6000; step++) {
      const k = key();
      if (next() < 0.65) {
        map.set(k, step);
        truth.set(k, step);
      } else {
        expect(map.delete(k)).toBe(truth.delete(k));
      }
      if (step % 500 !== 0) continue;
      const sorted = [...truth.keys()].sort();
      expect(map.size).toBe(sorted.length);
      expect([...map.entries()].map(([k2]) => k2)).toEqual(sorted);
      expect(map.first()).toBe(sorted[0]);
      expect(map.last()).toBe(sorted.at(-1));
      const ref = reference(sorted);
      for (let probe = 0; probe < 50; probe++) {
        const p = key();
        expect(map.lower(p)).toBe(ref.lower(p));
        expect(map.higher(p)).toBe(ref.higher(p));
        expect(map.get(p)).toBe(truth.get(p));
        expect(map.has(p)).toBe(truth.has(p));
      }
    }
    expect(truth.size).toBeGreaterThan(SORTED_CHUNK_ENTRIES * 2);
  });

  it('lists a range of keys, start included, end excluded', () => {
    const map = new SortedMap<string>();
    for (const k of ['a', 'b', 'ba', 'bb', 'c']) map.set(k, k.toUpperCase());
    expect([...map.entries('b', 'c')]).toEqual([
      ['b', 'B'],
      ['ba', 'BA'],
      ['bb', 'BB'],
    ]);
    expect([...map.entries('bz')]).toEqual([['c', 'C']]);
    expect([...map.entries('d')]).toEqual([]);
    expect(map.lower('a')).toBeUndefined();
    expect(map.higher('c')).toBeUndefined();
    expect(new SortedMap().first()).toBeUndefined();
  });

  it('keeps a snapshot as it was, whatever is written after it', () => {
    const map = new SortedMap<number>();
    for (let i = 0; i < 3 * SORTED_CHUNK_ENTRIES; i++) map.set(`k${String(i).padStart(5, '0')}`, i);
    const snapshot = map.snapshot();
    const before = [...snapshot.entries()];
    for (let i = 0; i < 3 * SORTED_CHUNK_ENTRIES; i += 2)
      map.delete(`k${String(i).padStart(5, '0')}`);
    for (let i = 0; i < 1000; i++) map.set(`j${i}`, -i);
    map.set('k00001', 99);
    expect([...snapshot.entries()]).toEqual(before);
    expect(snapshot.size).toBe(3 * SORTED_CHUNK_ENTRIES);
    expect(map.get('k00001')).toBe(99);
    expect(snapshot.get('k00001')).toBe(1);
  });
});
