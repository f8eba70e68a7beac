import { describe, expect, it } from 'vitest';
import { createPendingWrites } from '../src/index.js';

describe('pending writes', () => {
  it('closes the store only after every write under way settled and the store flushed', async () => {
    const writes = createPendingWrites();
    const order: string[] = [];
    let finish: (value: string) => void = () => undefined;
    let fail: (error: Error) => void = () => undefined;
    const ok = writes.track(new Promise<string>((resolve) => (finish = resolve)));
    const bad = writes.track(new Promise<string>((_, reject) => (fail = reject)));
    bad.catch(() => order.push('failed write settled'));
    let flush: () => void = () => undefined;
    const store = {
      flushed: new Promise<void>((resolve) => (flush = resolve)).then(() => {
        order.push('flushed');
      }),
      close: async () => {
        order.push('closed');
      },
    };
    const closing = writes.close(store);
    expect(writes.closed).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual([]);
    fail(new Error('commit failed'));
    finish('done');
    await expect(ok).resolves.toBe('done');
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['failed write settled']);
    flush();
    await closing;
    expect(order).toEqual(['failed write settled', 'flushed', 'closed']);
    // A second close neither waits nor closes the store again.
    await writes.close(store);
    expect(order.filter((step) => step === 'closed')).toHaveLength(1);
  });
});
