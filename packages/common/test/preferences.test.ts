import { describe, expect, it } from 'vitest';
import {
  PREF_MAX,
  bestPref,
  checkPreferenceTags,
  isContext,
  passesFilter,
  preferencesOf,
  rankMsps,
  type MspEntry,
  type RankInput,
} from '../src/index.js';

const entry = (provider: string, ...tags: string[]): MspEntry => ({ provider, tags });

describe('the preference vocabulary', () => {
  it('reads contexts, the rank and "same MSP only", and leaves other tags free', () => {
    expect(preferencesOf(['primary', 'business', 'ctx:soccer', 'pref:2', 'same-msp'])).toEqual({
      contexts: ['business', 'ctx:soccer'],
      pref: 2,
      sameMsp: true,
    });
    expect(preferencesOf(['mls'])).toEqual({ contexts: [], sameMsp: false });
  });

  it('ignores malformed vocabulary when reading, and refuses it when checking', () => {
    for (const tags of [
      ['pref:0'],
      ['pref:01'],
      ['pref:1000'],
      ['pref:x'],
      ['pref:'],
      ['pref:1', 'pref:2'],
      ['ctx:'],
      ['ctx:Soccer'],
      ['ctx:-a'],
      [`ctx:${'a'.repeat(32)}`],
      ['business', 'business'],
    ]) {
      expect(checkPreferenceTags(tags), tags.join(' ')).toMatch(/./);
      expect(preferencesOf(tags).pref, tags.join(' ')).toBeUndefined();
    }
    expect(checkPreferenceTags(['pref:1', 'pref:999', 'x'])).toMatch(/at most one pref/);
    expect(checkPreferenceTags(['primary', 'pref:999', `ctx:${'a'.repeat(31)}`])).toBeUndefined();
    expect(checkPreferenceTags([])).toBeUndefined();
  });

  it('names contexts as a sender gives them', () => {
    expect(['personal', 'business', 'ctx:soccer-parents', 'ctx:9'].map(isContext)).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(['Personal', 'ctx:', 'ctx:a b', 'work', 'pref:1'].map(isContext)).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
  });
});

describe('filters', () => {
  it('keeps an entry without context for every context, and one with contexts for those only', () => {
    const any = entry('text.example');
    const business = entry('wire.example', 'business');
    expect(passesFilter(any, { context: 'business' })).toBe(true);
    expect(passesFilter(business, { context: 'business' })).toBe(true);
    expect(passesFilter(business, { context: 'personal' })).toBe(false);
    expect(passesFilter(business, {})).toBe(true);
  });

  it('keeps a same-msp entry only for a sender of that MSP, never for an unnamed one', () => {
    const same = entry('chat.example', 'same-msp');
    expect(passesFilter(same, { msp: 'chat.example' })).toBe(true);
    expect(passesFilter(same, { msp: 'text.example' })).toBe(false);
    expect(passesFilter(same, {})).toBe(false);
  });
});

describe('rankMsps', () => {
  const input = (
    e: MspEntry,
    key: string,
    iat: number,
    index: number,
    audience?: string,
  ): RankInput => ({
    entry: e,
    key,
    iat,
    zone: 'z.example',
    index,
    ...(audience === undefined ? {} : { audience }),
  });

  it('orders by rank across mappings, then newer mapping, then key, then position', () => {
    const inputs = [
      input(entry('a.example'), 'K1', 10, 0),
      input(entry('b.example', 'pref:3'), 'K1', 10, 1),
      input(entry('c.example', 'pref:1'), 'K2', 5, 0),
      input(entry('d.example'), 'K2', 20, 0),
      input(entry('e.example', 'pref:3'), 'K0', 10, 0),
    ];
    const order = rankMsps(inputs, {}).map((m) => m.provider);
    expect(order).toEqual(['c.example', 'e.example', 'b.example', 'd.example', 'a.example']);
    // The same inputs in any order give the same list.
    expect(rankMsps([...inputs].reverse(), {}).map((m) => m.provider)).toEqual(order);
  });

  it('drops a later entry of the same provider and uri, and what the filter refuses', () => {
    const ranked = rankMsps(
      [
        input(entry('wire.example', 'business', 'pref:2'), 'K1', 1, 0),
        input(entry('wire.example', 'pref:5'), 'K2', 1, 0),
        input(entry('chat.example', 'personal', 'pref:1'), 'K1', 1, 1),
        input(entry('club.example', 'ctx:soccer', 'same-msp'), 'K1', 1, 2, 'kid'),
      ],
      { context: 'business', msp: 'club.example' },
    );
    expect(ranked).toEqual([
      {
        provider: 'wire.example',
        tags: ['business', 'pref:2'],
        contexts: ['business'],
        pref: 2,
        sameMsp: false,
        key: 'K1',
        zone: 'z.example',
      },
    ]);
    const soccer = rankMsps(
      [input(entry('club.example', 'ctx:soccer', 'same-msp'), 'K1', 1, 0, 'kid')],
      { context: 'ctx:soccer', msp: 'club.example' },
    );
    expect(soccer.map((m) => [m.provider, m.audience, m.sameMsp])).toEqual([
      ['club.example', 'kid', true],
    ]);
  });

  it('gives the best rank of a mapping', () => {
    expect(bestPref([entry('a.example', 'pref:4'), entry('b.example', 'pref:2')])).toBe(2);
    expect(bestPref([entry('a.example')])).toBe(PREF_MAX + 1);
  });
});
