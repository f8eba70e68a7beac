import { describe, expect, it } from 'vitest';
import {
  FAILURE_CACHE_MAX_SECONDS,
  FailureCache,
  ResolverCache,
  type Failure,
} from '../src/index.js';

// RFC 9520: failures remembered for their zone or their question, with a backoff.

const ZONE = 'bad.test.email.mimi.arpa';
const bogusZone: Failure = { kind: 'bogus', reason: 'no-ds-match', detail: 'DNSKEY', zone: ZONE };
const bogusAnswer: Failure = { kind: 'bogus', reason: 'bogus-signature', detail: 'MAP answer' };

function setup(): { failures: FailureCache; clock: { now: number }; cache: ResolverCache } {
  const clock = { now: 1_767_225_600 };
  const cache = new ResolverCache(1 << 20, () => clock.now);
  return { failures: new FailureCache(cache, 'mimi.arpa', () => clock.now), clock, cache };
}

describe('FailureCache', () => {
  it('answers every name and type at or under a failed zone, and nothing beside or above it', () => {
    const { failures } = setup();
    failures.record(`a.${ZONE}`, 'MAP', bogusZone);
    for (const [name, type] of [
      [`a.${ZONE}`, 'MAP'],
      [`b.${ZONE}`, 'MAPREF'],
      [`deep.c.${ZONE}`, 'MAP'],
      [ZONE, 'AUTHKEY'],
      [`B.${ZONE.toUpperCase()}`, 'MAP'],
    ] as const) {
      expect(failures.find(name, type)?.failure, `${name}/${type}`).toEqual(bogusZone);
    }
    expect(failures.find('test.email.mimi.arpa', 'MAP')).toBeUndefined();
    expect(failures.find('other.test.email.mimi.arpa', 'MAP')).toBeUndefined();
    // DS is the parent's data: the child's failure does not answer it.
    expect(failures.find(ZONE, 'DS')).toBeUndefined();
    expect(failures.find(`x.${ZONE}`, 'DS')).toEqual({ failure: bogusZone, ttl: 5 });
  });

  it('answers only the question for a failure without a zone, until a success forgets it', () => {
    const { failures } = setup();
    failures.record(`a.${ZONE}`, 'MAP', bogusAnswer);
    expect(failures.find(`a.${ZONE}`, 'MAP')?.failure).toEqual(bogusAnswer);
    expect(failures.find(`a.${ZONE}`, 'MAPREF')).toBeUndefined();
    expect(failures.find(`b.${ZONE}`, 'MAP')).toBeUndefined();
    failures.forget(`a.${ZONE}`, 'MAP');
    expect(failures.find(`a.${ZONE}`, 'MAP')).toBeUndefined();
  });

  it('keeps a repeat twice as long, and starts again after a quiet spell', () => {
    const { failures, clock } = setup();
    const kept = (): number => {
      const entry = failures.record(`a.${ZONE}`, 'MAP', bogusZone);
      return entry.until - clock.now;
    };
    const seconds: number[] = [];
    for (let i = 0; i < 8; i++) {
      const time = kept();
      seconds.push(time);
      clock.now += time + 1;
    }
    expect(seconds).toEqual([5, 10, 20, 40, 80, 160, 300, 300]);
    // More than five minutes after the last one expired, a failure is a first one again.
    clock.now += FAILURE_CACHE_MAX_SECONDS + 1;
    expect(kept()).toBe(5);
  });

  it('expires on the clock and is emptied with the cache', () => {
    const { failures, clock, cache } = setup();
    failures.record(`a.${ZONE}`, 'MAP', bogusZone);
    clock.now += 4;
    expect(failures.find(`a.${ZONE}`, 'MAP')?.ttl).toBe(1);
    clock.now += 1;
    expect(failures.find(`a.${ZONE}`, 'MAP')).toBeUndefined();
    failures.record(`a.${ZONE}`, 'MAP', bogusAnswer);
    cache.clear();
    expect(failures.find(`a.${ZONE}`, 'MAP')).toBeUndefined();
  });
});
