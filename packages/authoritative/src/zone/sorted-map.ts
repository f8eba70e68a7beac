/**
 * A map from string keys to values, kept in key order (JavaScript string order: UTF-16 code
 * units, so keys written as latin1 octets sort by octet), for the memory store's ordered views:
 * its owner names in canonical order and its NSEC3 chain in hash order. Lookups, inserts,
 * deletes and the neighbours of a key (`lower`, `higher`) cost O(log n) comparisons plus a copy
 * of one chunk; a snapshot costs a copy of the chunk list and stays as it was, whatever is
 * written after it.
 *
 * The entries live in sorted chunks of at most {@link SORTED_CHUNK_ENTRIES}. A chunk is never
 * changed in place: a write replaces the chunk it touches with a changed copy, so a snapshot
 * that shares the old chunks keeps seeing them (copy on write, as persistent B-trees do).
 *
 * Worked example: keys `b`, `d`, `f` in one chunk; `lower('d')` is `b`, `higher('d')` is `f`,
 * `lower('a')` is undefined; `set('c', …)` replaces the chunk by `b c d f`; a snapshot taken
 * before still lists `b d f`.
 */

/** Entries per chunk at most; a chunk that grows past it is split in two. */
export const SORTED_CHUNK_ENTRIES = 128;

interface Chunk<V> {
  readonly keys: readonly string[];
  readonly values: readonly V[];
}

/** See the module comment. */
export class SortedMap<V> {
  #chunks: Chunk<V>[];
  #size: number;

  constructor(chunks: Chunk<V>[] = [], size = 0) {
    this.#chunks = chunks;
    this.#size = size;
  }

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  get(key: string): V | undefined {
    const at = this.#find(key);
    if (at === undefined) return undefined;
    const chunk = this.#chunks[at.chunk] as Chunk<V>;
    return chunk.keys[at.index] === key ? chunk.values[at.index] : undefined;
  }

  has(key: string): boolean {
    const at = this.#find(key);
    return at !== undefined && this.#chunks[at.chunk]?.keys[at.index] === key;
  }

  /** Sets the value of `key`, adding it when absent. */
  set(key: string, value: V): void {
    if (this.#chunks.length === 0) {
      this.#chunks = [{ keys: [key], values: [value] }];
      this.#size = 1;
      return;
    }
    // Past every key: the last chunk takes it.
    const at = this.#find(key) ?? {
      chunk: this.#chunks.length - 1,
      index: (this.#chunks.at(-1) as Chunk<V>).keys.length,
    };
    const chunk = this.#chunks[at.chunk] as Chunk<V>;
    const keys = [...chunk.keys];
    const values = [...chunk.values];
    if (keys[at.index] === key) {
      values[at.index] = value;
    } else {
      keys.splice(at.index, 0, key);
      values.splice(at.index, 0, value);
      this.#size += 1;
    }
    if (keys.length <= SORTED_CHUNK_ENTRIES) {
      this.#chunks[at.chunk] = { keys, values };
      return;
    }
    const half = keys.length >> 1;
    this.#chunks.splice(
      at.chunk,
      1,
      { keys: keys.slice(0, half), values: values.slice(0, half) },
      { keys: keys.slice(half), values: values.slice(half) },
    );
  }

  /** Deletes `key`; returns whether it was there. */
  delete(key: string): boolean {
    const at = this.#find(key);
    if (at === undefined) return false;
    const chunk = this.#chunks[at.chunk] as Chunk<V>;
    if (chunk.keys[at.index] !== key) return false;
    this.#size -= 1;
    if (chunk.keys.length === 1) {
      this.#chunks.splice(at.chunk, 1);
      return true;
    }
    const keys = [...chunk.keys];
    const values = [...chunk.values];
    keys.splice(at.index, 1);
    values.splice(at.index, 1);
    this.#chunks[at.chunk] = { keys, values };
    return true;
  }

  /** The smallest key, or undefined when empty. */
  first(): string | undefined {
    return this.#chunks[0]?.keys[0];
  }

  /** The largest key, or undefined when empty. */
  last(): string | undefined {
    return this.#chunks.at(-1)?.keys.at(-1);
  }

  /** The largest key below `key`, or undefined. */
  lower(key: string): string | undefined {
    const at = this.#find(key);
    if (at === undefined) return this.last();
    if (at.index > 0) return this.#chunks[at.chunk]?.keys[at.index - 1];
    return this.#chunks[at.chunk - 1]?.keys.at(-1);
  }

  /** The smallest key above `key`, or undefined. */
  higher(key: string): string | undefined {
    const at = this.#find(key);
    if (at === undefined) return undefined;
    const chunk = this.#chunks[at.chunk] as Chunk<V>;
    const index = chunk.keys[at.index] === key ? at.index + 1 : at.index;
    return index < chunk.keys.length ? chunk.keys[index] : this.#chunks[at.chunk + 1]?.keys[0];
  }

  /** The entries with `start <= key < end` (either bound may be left out), in key order. */
  *entries(start?: string, end?: string): Generator<[string, V]> {
    const from = start === undefined ? { chunk: 0, index: 0 } : this.#find(start);
    if (from === undefined) return;
    // The chunk list may be replaced by a write between two steps: iterate the one of now.
    const chunks = this.#chunks;
    for (let c = from.chunk; c < chunks.length; c++) {
      const chunk = chunks[c] as Chunk<V>;
      for (let i = c === from.chunk ? from.index : 0; i < chunk.keys.length; i++) {
        const key = chunk.keys[i] as string;
        if (end !== undefined && key >= end) return;
        yield [key, chunk.values[i] as V];
      }
    }
  }

  /** A copy that later writes to either map do not change (it shares the chunks). */
  snapshot(): SortedMap<V> {
    return new SortedMap([...this.#chunks], this.#size);
  }

  /**
   * Where `key` is or would be inserted: the first chunk whose last key is at least `key`, and
   * the first index there whose key is at least `key`; undefined when `key` is above them all.
   */
  #find(key: string): { chunk: number; index: number } | undefined {
    let lo = 0;
    let hi = this.#chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (((this.#chunks[mid] as Chunk<V>).keys.at(-1) as string) < key) lo = mid + 1;
      else hi = mid;
    }
    if (lo === this.#chunks.length) return undefined;
    const keys = (this.#chunks[lo] as Chunk<V>).keys;
    let a = 0;
    let b = keys.length;
    while (a < b) {
      const mid = (a + b) >> 1;
      if ((keys[mid] as string) < key) a = mid + 1;
      else b = mid;
    }
    return { chunk: lo, index: a };
  }
}
