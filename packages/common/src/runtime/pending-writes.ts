/**
 * The writes a store has under way, waited for before it closes: a store that commits in groups
 * and flushes in the background (LMDB's, for the issuer's counters and the gateway's spent
 * tokens) must not close its files under a commit, nor before what it acknowledged is on disk.
 */

/** A store that tells when what it committed is on disk, and closes (LMDB's root database). */
export interface FlushingStore {
  /** Resolves once every commit so far is flushed to disk. */
  readonly flushed: Promise<unknown>;
  close(): Promise<void>;
}

/** The writes under way of one store; see the module comment. */
export interface PendingWrites {
  /** True once {@link PendingWrites.close} was called: the store takes no more writes. */
  readonly closed: boolean;
  /** Counts `write` as under way until it settles; returns it. */
  track<T>(write: Promise<T>): Promise<T>;
  /**
   * Marks the store closed, waits for every write under way to settle, then for `store` to
   * flush, then closes it. Idempotent: a second call returns at once.
   */
  close(store: FlushingStore): Promise<void>;
}

/** An empty set of writes under way, the store open. */
export function createPendingWrites(): PendingWrites {
  const pending = new Set<Promise<unknown>>();
  let closed = false;
  return {
    get closed() {
      return closed;
    },
    track(write) {
      pending.add(write);
      const forget = (): void => {
        pending.delete(write);
      };
      write.then(forget, forget);
      return write;
    },
    async close(store) {
      if (closed) return;
      closed = true;
      await Promise.allSettled([...pending]);
      await store.flushed;
      await store.close();
    },
  };
}
