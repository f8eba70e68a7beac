/**
 * A clock that moves only when a test moves it, for TTL and expiry tests (no sleeping): hand
 * `clock.now` to a component that takes a millisecond clock, or `clock.seconds` to one that takes
 * seconds (`createResolver`'s `components.now`), then `clock.advance(301)` to be one second past
 * a 300-second TTL.
 */

/** A fake clock in milliseconds since the epoch. */
export interface FakeClock {
  /** The current fake time in milliseconds since the epoch. */
  now(): number;
  /** The current fake time in whole seconds since the epoch. */
  seconds(): number;
  /** Moves the clock forward by `seconds` (may be fractional; never backwards). */
  advance(seconds: number): void;
}

/** A fake clock starting at `startMs` (default: the real time now). */
export function createFakeClock(startMs: number = Date.now()): FakeClock {
  let current = startMs;
  return {
    now: () => current,
    seconds: () => Math.floor(current / 1000),
    advance(seconds) {
      if (!Number.isFinite(seconds) || seconds < 0) {
        throw new Error(`a fake clock only moves forward, not by ${seconds} s`);
      }
      current += seconds * 1000;
    },
  };
}
