import { describe, expect, it } from 'vitest';
import {
  CODE_DIGITS,
  CODE_TTL_SECONDS,
  MAX_PENDING_CODES,
  createCodeTable,
} from '../src/registration/codes.js';
import { MAX_ATTEMPTS_PER_CODE } from '../src/registration/rate-limit.js';

const T0 = 1_767_225_600;
const CSI = 'tel:+442079460018';

function table(options: { maxEntries?: number; draws?: number[] } = {}) {
  const clock = { now: T0 };
  const draws = [...(options.draws ?? [123_456])];
  const codes = createCodeTable({
    now: () => clock.now,
    randomInt: () => draws.shift() ?? 0,
    ...(options.maxEntries === undefined ? {} : { maxEntries: options.maxEntries }),
  });
  return { clock, codes };
}

describe('pending codes', () => {
  it('have the documented defaults', () => {
    expect(CODE_TTL_SECONDS).toBe(600);
    expect(CODE_DIGITS).toBe(6);
    expect(MAX_PENDING_CODES).toBe(100_000);
  });

  it('are zero-padded to their number of digits', () => {
    const { codes } = table({ draws: [7] });
    expect(codes.issue(CSI)).toEqual({ code: '000007', expiresAt: T0 + CODE_TTL_SECONDS });
  });

  it('match once, for their own CSI only', () => {
    const { codes } = table({ draws: [123_456, 123_456] });
    codes.issue(CSI);
    codes.issue('tel:+442079460019');
    expect(codes.check('tel:+442079460017', '123456')).toEqual({ kind: 'none' });
    expect(codes.check(CSI, '123456')).toEqual({ kind: 'ok' });
    expect(codes.check(CSI, '123456')).toEqual({ kind: 'none' });
  });

  it('expire after their lifetime', () => {
    const { clock, codes } = table();
    codes.issue(CSI);
    clock.now += CODE_TTL_SECONDS - 1;
    expect(codes.check(CSI, '000000').kind).toBe('invalid');
    clock.now += 1;
    expect(codes.check(CSI, '123456')).toEqual({ kind: 'expired' });
    expect(codes.check(CSI, '123456')).toEqual({ kind: 'none' });
  });

  it(`are discarded after ${MAX_ATTEMPTS_PER_CODE} wrong attempts`, () => {
    const { codes } = table();
    codes.issue(CSI);
    for (let left = MAX_ATTEMPTS_PER_CODE - 1; left > 0; left--) {
      expect(codes.check(CSI, '654321')).toEqual({ kind: 'invalid', attemptsLeft: left });
    }
    expect(codes.check(CSI, '654321')).toEqual({ kind: 'too-many-attempts' });
    expect(codes.check(CSI, '123456')).toEqual({ kind: 'none' });
  });

  it('are replaced by a new code for the same CSI, attempts reset', () => {
    const { codes } = table({ draws: [111_111, 222_222] });
    codes.issue(CSI);
    codes.check(CSI, '999999');
    codes.issue(CSI);
    expect(codes.size).toBe(1);
    expect(codes.check(CSI, '111111')).toEqual({
      kind: 'invalid',
      attemptsLeft: MAX_ATTEMPTS_PER_CODE - 1,
    });
    expect(codes.check(CSI, '222222')).toEqual({ kind: 'ok' });
  });

  it('are discarded on request only when the code still matches', () => {
    const { codes } = table({ draws: [111_111, 222_222] });
    codes.issue(CSI);
    codes.issue(CSI);
    codes.discard(CSI, '111111');
    expect(codes.size).toBe(1);
    codes.discard(CSI, '222222');
    expect(codes.size).toBe(0);
  });

  it('are bounded in number', () => {
    const { codes } = table({ maxEntries: 2, draws: [1, 2, 3] });
    codes.issue('tel:+1');
    codes.issue('tel:+2');
    codes.issue('tel:+3');
    expect(codes.size).toBe(2);
    expect(codes.check('tel:+1', '000001')).toEqual({ kind: 'none' });
  });

  it('refuse a source that returns a number out of range, and bad settings', () => {
    const { codes } = table({ draws: [1_000_000] });
    expect(() => codes.issue(CSI)).toThrow(RangeError);
    expect(() => createCodeTable({ now: () => T0, digits: 5 })).toThrow(RangeError);
    expect(() => createCodeTable({ now: () => T0, digits: 9 })).toThrow(RangeError);
  });
});
