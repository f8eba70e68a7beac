import { describe, expect, it } from 'vitest';
import {
  EXEMPTION_MEMO_ENTRIES,
  createClientExemptions,
  createClientRateLimiter,
  createNameBudget,
  isCidr,
  type NameBudgetOptions,
} from '../src/index.js';

// The shared per-client limiter (`client-limits.ts`): token buckets by client, the budget of new
// names, the exemptions, and the bounds of every table. The clock is a variable the tests move.

function clock(start = 1_767_225_600): { now: () => number; advance(seconds: number): void } {
  let t = start;
  return { now: () => t, advance: (s) => (t += s) };
}

/** `count` distinct names of a zone, as a contact sync or an enumeration asks for them. */
function names(count: number, from = 0): string[] {
  return Array.from({ length: count }, (_, i) => `${from + i}.4.4.e164.mimi.arpa`);
}

const DAY = 86_400;

function budget(
  overrides: Partial<NameBudgetOptions> = {},
  time = clock(),
): ReturnType<typeof createNameBudget> {
  return createNameBudget({
    rate: { perSecond: 2000 / DAY, burst: 2000 },
    seenSeconds: DAY,
    maxSeenPerClient: 4096,
    maxSeen: 100_000,
    now: time.now,
    ...overrides,
  });
}

describe('createClientRateLimiter', () => {
  it('lets a burst through, then refuses with the whole seconds until a token is back', () => {
    const time = clock();
    const limiter = createClientRateLimiter({ rate: { perSecond: 2, burst: 10 }, now: time.now });
    for (let i = 0; i < 10; i++) expect(limiter.take('192.0.2.1')).toEqual({ kind: 'taken' });
    expect(limiter.take('192.0.2.1')).toEqual({ kind: 'limited', retryAfter: 1 });
    expect(limiter.available('192.0.2.1')).toBe(0);
    time.advance(1);
    expect(limiter.take('192.0.2.1')).toEqual({ kind: 'taken' });
    expect(limiter.take('192.0.2.1')).toEqual({ kind: 'taken' });
    expect(limiter.take('192.0.2.1').kind).toBe('limited');
    time.advance(5);
    expect(limiter.available('192.0.2.1')).toBe(10);
  });

  it('takes a cost of several tokens, and says how long until all of them fit', () => {
    const time = clock();
    const limiter = createClientRateLimiter({ rate: { perSecond: 1, burst: 10 }, now: time.now });
    expect(limiter.take('192.0.2.1', 8)).toEqual({ kind: 'taken' });
    expect(limiter.take('192.0.2.1', 5)).toEqual({ kind: 'limited', retryAfter: 3 });
    // Refused: nothing was taken.
    expect(limiter.available('192.0.2.1')).toBe(2);
  });

  it('keeps a bucket per client: an IPv4 address, an IPv6 /64', () => {
    const limiter = createClientRateLimiter({ rate: { perSecond: 1, burst: 1 }, now: clock().now });
    expect(limiter.take('192.0.2.1').kind).toBe('taken');
    expect(limiter.take('192.0.2.1').kind).toBe('limited');
    // The same address written IPv4-mapped is the same client.
    expect(limiter.take('::ffff:192.0.2.1').kind).toBe('limited');
    expect(limiter.take('192.0.2.2').kind).toBe('taken');
    expect(limiter.take('2001:db8:1:2::1').kind).toBe('taken');
    // Another address of the same /64 shares its bucket; the next /64 does not.
    expect(limiter.take('2001:db8:1:2:ffff::9').kind).toBe('limited');
    expect(limiter.take('2001:db8:1:3::1').kind).toBe('taken');
  });

  it('adds nothing when the clock steps back', () => {
    const time = clock();
    const limiter = createClientRateLimiter({ rate: { perSecond: 1, burst: 2 }, now: time.now });
    limiter.take('192.0.2.1', 2);
    time.advance(-100);
    expect(limiter.take('192.0.2.1').kind).toBe('limited');
    time.advance(100);
    expect(limiter.take('192.0.2.1').kind).toBe('limited');
    time.advance(1);
    expect(limiter.take('192.0.2.1').kind).toBe('taken');
  });

  it('never limits an exempt client, and keeps no bucket for it', () => {
    const limiter = createClientRateLimiter({
      rate: { perSecond: 1, burst: 1 },
      exempt: createClientExemptions(['10.0.0.0/8', '2001:db8::/32']),
      now: clock().now,
    });
    for (let i = 0; i < 100; i++) {
      expect(limiter.take('10.1.2.3').kind).toBe('taken');
      expect(limiter.take('2001:db8:ffff::1').kind).toBe('taken');
    }
    expect(limiter.clients).toBe(0);
    expect(limiter.take('11.0.0.1').kind).toBe('taken');
    expect(limiter.take('11.0.0.1').kind).toBe('limited');
  });

  it('tracks at most maxClients clients however many come, the least recently active dropped', () => {
    const limiter = createClientRateLimiter({
      rate: { perSecond: 1, burst: 1 },
      maxClients: 1000,
      now: clock().now,
    });
    // 100,000 distinct clients: IPv4 addresses and IPv6 /64s.
    for (let i = 0; i < 50_000; i++) {
      limiter.take(`10.${(i >>> 16) & 0xff}.${(i >>> 8) & 0xff}.${i & 0xff}`);
      limiter.take(`2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`);
      expect(limiter.clients).toBeLessThanOrEqual(1000);
    }
    expect(limiter.clients).toBe(1000);
  });

  it('refuses settings that are not rates', () => {
    const now = clock().now;
    expect(() => createClientRateLimiter({ rate: { perSecond: 0, burst: 1 }, now })).toThrow(
      RangeError,
    );
    expect(() => createClientRateLimiter({ rate: { perSecond: 1, burst: 0.5 }, now })).toThrow(
      /burst must be a positive integer/,
    );
    expect(() =>
      createClientRateLimiter({ rate: { perSecond: 1, burst: 1 }, maxClients: 0, now }),
    ).toThrow(/maxClients/);
  });
});

describe('createClientExemptions', () => {
  it.each([
    ['10.0.0.0/8', '10.255.0.1', true],
    ['10.0.0.0/8', '11.0.0.1', false],
    ['192.0.2.7', '192.0.2.7', true],
    ['192.0.2.7', '192.0.2.8', false],
    ['192.0.2.0/24', '::ffff:192.0.2.200', true],
    ['2001:db8::/32', '2001:db8:abcd::1', true],
    ['2001:db8::/32', '2001:db9::1', false],
    ['::1', '::1', true],
    ['0.0.0.0/0', '203.0.113.9', true],
  ])('%s holds %s: %s', (range, address, exempt) => {
    expect(createClientExemptions([range]).has(address)).toBe(exempt);
  });

  it('answers the same, asked again and past its memo of recent addresses', () => {
    const exemptions = createClientExemptions(['10.0.0.0/8', '2001:db8::/32']);
    // More distinct addresses than the memo holds, each asked twice, in and out of the ranges.
    const addresses = Array.from({ length: EXEMPTION_MEMO_ENTRIES + 100 }, (_, i) =>
      i % 3 === 0
        ? `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
        : i % 3 === 1
          ? `11.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
          : `2001:db8::${i.toString(16)}`,
    );
    for (let pass = 0; pass < 2; pass++) {
      addresses.forEach((address, i) => expect(exemptions.has(address)).toBe(i % 3 !== 1));
    }
    expect(exemptions.has('::ffff:10.1.2.3')).toBe(true);
    expect(exemptions.has('::ffff:11.1.2.3')).toBe(false);
    expect(exemptions.has('not an address')).toBe(false);
  });

  it.each(['10.0.0.0/33', '2001:db8::/129', 'localhost', '10.0.0.0/8/8', '10.0.0.0/', '10.0.0/8'])(
    'refuses %s with a clear error',
    (range) => {
      expect(isCidr(range)).toBe(false);
      expect(() => createClientExemptions([range])).toThrow(
        `${JSON.stringify(range)} is not a CIDR range or an IP address`,
      );
    },
  );
});

describe('createNameBudget', () => {
  it('charges a contact sync only its new names, and a repeat of them nothing', () => {
    const time = clock();
    const b = budget({}, time);
    const sync = names(1000);
    expect(b.charge('192.0.2.1', sync)).toEqual({ kind: 'taken', charged: 1000 });
    expect(b.available('192.0.2.1')).toBe(1000);
    time.advance(3600);
    expect(b.charge('192.0.2.1', sync)).toEqual({ kind: 'taken', charged: 0 });
    // A name twice in one request is one name.
    expect(b.charge('192.0.2.1', ['x.mimi.arpa', 'x.mimi.arpa', sync[0] ?? ''])).toEqual({
      kind: 'taken',
      charged: 1,
    });
  });

  it('refuses a request that does not fit whole, and changes nothing', () => {
    const time = clock();
    const b = budget({}, time);
    expect(b.charge('192.0.2.1', names(1500)).kind).toBe('taken');
    const before = b.stats();
    const left = b.available('192.0.2.1');
    // 1,000 names, 200 of them already asked: 800 new, 500 left.
    const request = names(1000, 1300);
    const refused = b.charge('192.0.2.1', request);
    expect(refused).toEqual({
      kind: 'limited',
      // 300 more tokens at 2,000 a day: 12,960 s.
      retryAfter: 12_960,
      needed: 800,
      available: 500,
    });
    expect(b.available('192.0.2.1')).toBe(left);
    expect(b.stats()).toEqual(before);
    // None of the refused names was remembered: 500 of them still fit, and cost 500.
    expect(b.charge('192.0.2.1', names(500, 1500))).toEqual({ kind: 'taken', charged: 500 });
    expect(b.charge('192.0.2.1', names(1, 2000)).kind).toBe('limited');
  });

  it('refills with the clock, and forgets names asked for longer ago than seenSeconds', () => {
    const time = clock();
    const b = budget({}, time);
    expect(b.charge('192.0.2.1', names(2000)).kind).toBe('taken');
    expect(b.charge('192.0.2.1', names(1, 5000))).toMatchObject({
      kind: 'limited',
      retryAfter: 44,
    });
    time.advance(44);
    expect(b.charge('192.0.2.1', names(1, 5000))).toEqual({ kind: 'taken', charged: 1 });
    // A day later the budget is full and the names of a day ago are new again.
    time.advance(DAY);
    expect(b.available('192.0.2.1')).toBe(2000);
    expect(b.charge('192.0.2.1', names(2000))).toEqual({ kind: 'taken', charged: 2000 });
  });

  it('stops an enumeration of 10,000 names at the burst, while another client is served', () => {
    const b = budget();
    const enumeration = names(10_000);
    let answered = 0;
    for (const name of enumeration) {
      if (b.charge('198.51.100.1', [name]).kind === 'taken') answered++;
    }
    expect(answered).toBe(2000);
    expect(b.charge('198.51.100.2', names(1000, 20_000))).toEqual({ kind: 'taken', charged: 1000 });
  });

  it('says how long until the budget is full when a request can never fit', () => {
    const time = clock();
    const b = budget({ rate: { perSecond: 1, burst: 10 }, maxSeenPerClient: 10 }, time);
    b.charge('192.0.2.1', names(4));
    expect(b.charge('192.0.2.1', names(20, 100))).toEqual({
      kind: 'limited',
      retryAfter: 4,
      needed: 20,
      available: 6,
    });
  });

  it('keeps at most maxSeenPerClient names of a client, the oldest forgotten first', () => {
    const time = clock();
    const b = budget(
      { rate: { perSecond: 1000, burst: 100 }, maxSeenPerClient: 150, maxSeen: 10_000 },
      time,
    );
    for (let i = 0; i < 20; i++) {
      expect(b.charge('192.0.2.1', names(100, i * 100)).kind).toBe('taken');
      time.advance(1);
      expect(b.stats().seen).toBeLessThanOrEqual(150);
    }
    // The latest names are still known, the oldest are new again.
    expect(b.charge('192.0.2.1', names(100, 1900))).toEqual({ kind: 'taken', charged: 0 });
    expect(b.charge('192.0.2.1', names(1, 0))).toEqual({ kind: 'taken', charged: 1 });
  });

  it('stays within maxClients and maxSeen under many distinct clients', () => {
    const b = budget({
      rate: { perSecond: 1, burst: 50 },
      maxSeenPerClient: 50,
      maxSeen: 20_000,
      maxClients: 1000,
    });
    for (let i = 0; i < 20_000; i++) {
      const address = `2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::7`;
      expect(b.charge(address, names(10, i * 10)).kind).toBe('taken');
      const { clients, seen } = b.stats();
      expect(clients).toBeLessThanOrEqual(1000);
      expect(seen).toBeLessThanOrEqual(20_000);
    }
    // 1,000 clients of 10 names each: the per-client tables bound it before maxSeen does.
    expect(b.stats()).toEqual({ clients: 1000, seen: 10_000 });
  });

  it('takes names from the least recently active clients when all of them hold too many', () => {
    const time = clock();
    const b = budget(
      { rate: { perSecond: 1, burst: 100 }, maxSeenPerClient: 100, maxSeen: 250 },
      time,
    );
    b.charge('192.0.2.1', names(100, 0));
    b.charge('192.0.2.2', names(100, 100));
    b.charge('192.0.2.3', names(100, 200));
    expect(b.stats()).toEqual({ clients: 3, seen: 250 });
    // The first client, the least recently active, gave up its 50 oldest names.
    expect(b.charge('192.0.2.1', names(50, 50))).toEqual({ kind: 'taken', charged: 0 });
    expect(b.charge('192.0.2.2', names(100, 100))).toEqual({ kind: 'taken', charged: 0 });
  });

  it('never limits an exempt client, and remembers nothing for it', () => {
    const b = budget({ exempt: createClientExemptions(['127.0.0.0/8']) });
    expect(b.charge('127.0.0.9', names(50_000))).toEqual({ kind: 'taken', charged: 0 });
    expect(b.stats()).toEqual({ clients: 0, seen: 0 });
  });

  it('refuses settings under which a full burst could not be remembered', () => {
    expect(() => budget({ maxSeenPerClient: 1999 })).toThrow(
      'maxSeenPerClient (1999) must be at least the burst (2000)',
    );
    expect(() => budget({ maxSeen: 4000 })).toThrow(
      'maxSeen (4000) must be at least maxSeenPerClient (4096)',
    );
    expect(() => budget({ seenSeconds: 0 })).toThrow(/seenSeconds/);
  });
});
