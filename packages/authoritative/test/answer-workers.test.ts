import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../src/index.js';
import { storeWithAnswerWorkers } from '../src/answering/answer-workers.js';
import { NUMBER, ORIGIN, PROVER_SEED, fakeClock, putMap, zoneInit } from './store-battery.js';

// The writer's side of answer workers (`answer-workers.ts`): its store's writes resolve only
// after every worker confirmed it sees them. The workers themselves run in
// test/dp-answer-workers.test.ts, as processes.

/** A renew whose confirmation the test gives by hand. */
function heldRenew(): { renew(): Promise<void>; calls: number; confirm(): void } {
  const waiting: Array<() => void> = [];
  const held = {
    calls: 0,
    renew: () => {
      held.calls++;
      return new Promise<void>((resolve) => waiting.push(resolve));
    },
    confirm: () => waiting.splice(0).forEach((resolve) => resolve()),
  };
  return held;
}

const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('the store of a writer with answer workers', () => {
  it('resolves a write only once the workers have confirmed it', async () => {
    const inner = createMemoryStore({ proverSeed: PROVER_SEED, now: fakeClock().now });
    const held = heldRenew();
    const store = storeWithAnswerWorkers(inner, held.renew);
    const adding = store.addZone(zoneInit());
    let added = false;
    void adding.then(() => {
      added = true;
    });
    await turns(20);
    expect(held.calls).toBe(1);
    expect(added).toBe(false);
    held.confirm();
    await adding;

    let applied = false;
    const applying = store.apply(ORIGIN, [putMap(NUMBER, 1)]).then((result) => {
      applied = true;
      return result;
    });
    await turns(20);
    // Committed (readers of this process see it) but not acknowledged yet.
    expect(inner.readRRset(ORIGIN, NUMBER, 'MAP')).toHaveLength(1);
    expect(applied).toBe(false);
    held.confirm();
    expect((await applying).serial).toBeGreaterThan(1);
    expect(held.calls).toBe(2);
    await store.close();
  });

  it('asks nothing of the workers for a write that changed nothing readers see', async () => {
    const inner = createMemoryStore({ proverSeed: PROVER_SEED, now: fakeClock().now });
    await inner.addZone(zoneInit());
    const held = heldRenew();
    const store = storeWithAnswerWorkers(inner, held.renew);
    const before = inner.generation();
    // Nothing is close to expiry right after the zone was signed.
    await store.resign(0);
    expect(inner.generation()).toBe(before);
    expect(held.calls).toBe(0);
    // Reads go straight to the store.
    expect(store.listZones()).toEqual(inner.listZones());
    expect(store.generation()).toBe(before);
    await store.close();
  });
});
