import { describe, expect, it } from 'vitest';
import { systemClock } from '../src/index.js';

describe('systemClock', () => {
  it('reads the system time in whole seconds, rounded down', () => {
    const before = Date.now();
    const now = systemClock();
    const after = Date.now();
    expect(Number.isInteger(now)).toBe(true);
    expect(now).toBeGreaterThanOrEqual(Math.floor(before / 1000));
    expect(now).toBeLessThanOrEqual(Math.floor(after / 1000));
  });
});
