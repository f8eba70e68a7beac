import { describe, expect, it } from 'vitest';
import {
  EDE_PROHIBITED,
  buildQuery,
  classifyResponse,
  createClientExemptions,
  createResponseRateLimiter,
  decodeMessage,
  edeOption,
  encodeMessage,
  extendedDnsErrors,
  questionOf,
  record,
  respondError,
  slipResponse,
  type Message,
  type ResourceRecord,
  type RrlSettings,
} from '../src/index.js';
import { soaRecord } from '../../../test/helpers/records.js';

// Response Rate Limiting (`rrl.ts`) over the octets a UDP listener would send, the response
// classes it counts by (`peek.ts`), and the Extended DNS Error option (`ede.ts`).

const ZONE = '4.4.e164.mimi.arpa';
const NUMBER = `8.1.0.0.6.4.9.7.0.2.${ZONE}`;
const SOA = soaRecord(ZONE);

/** The octets of a response to `name`/`type` with these sections. */
function response(
  name: string,
  type: 'MAP' | 'NS' | 'A',
  sections: {
    rcode?: Message['rcode'];
    aa?: boolean;
    answers?: ResourceRecord[];
    authorities?: ResourceRecord[];
  },
): Uint8Array {
  const query = buildQuery(name, type, { id: 0x1234 });
  const base = respondError(query, sections.rcode ?? 'NOERROR');
  return encodeMessage({
    ...base,
    flags: { ...base.flags, aa: sections.aa ?? true },
    answers: sections.answers ?? [],
    authorities: sections.authorities ?? [],
  });
}

const positive = (name = NUMBER): Uint8Array =>
  response(name, 'MAP', { answers: [record(name, 'MAP', Uint8Array.of(0xa0), 300)] });
/** A name that does not exist, as compact denial answers it: NOERROR, SOA, no answer. */
const denial = (name: string): Uint8Array => response(name, 'MAP', { authorities: [SOA] });
const referral = (name: string): Uint8Array =>
  response(name, 'MAP', {
    aa: false,
    authorities: [record(`7.${ZONE}`, 'NS', `ns1.7.${ZONE}`, 3600)],
  });

function clock(start = 1_767_225_600): { now: () => number; advance(seconds: number): void } {
  let t = start;
  return { now: () => t, advance: (s) => (t += s) };
}

function limiter(settings: Partial<RrlSettings> = {}, time = clock()) {
  return createResponseRateLimiter(
    {
      responsesPerSecond: 5,
      denialsPerSecond: 5,
      errorsPerSecond: 5,
      burstSeconds: 1,
      slip: 3,
      ...settings,
    },
    { now: time.now },
  );
}

describe('classifyResponse', () => {
  it.each([
    ['an answer', positive(), { kind: 'positive', name: NUMBER, type: 65400 }],
    ['a compact denial', denial(`1.2.${ZONE}`), { kind: 'denial', zone: ZONE }],
    [
      'an NXDOMAIN with its SOA',
      response(`1.2.${ZONE}`, 'MAP', { rcode: 'NXDOMAIN', authorities: [SOA] }),
      { kind: 'denial', zone: ZONE },
    ],
    [
      'an NXDOMAIN without an SOA',
      response(`1.2.${ZONE}`, 'MAP', { rcode: 'NXDOMAIN' }),
      { kind: 'denial', zone: `1.2.${ZONE}` },
    ],
    ['a referral', referral(`1.7.${ZONE}`), { kind: 'referral', name: `7.${ZONE}` }],
    ['a REFUSED', response('example.com', 'A', { rcode: 'REFUSED' }), { kind: 'error' }],
    ['a SERVFAIL', response(NUMBER, 'MAP', { rcode: 'SERVFAIL' }), { kind: 'error' }],
    [
      'an answer with nothing to classify by',
      response(NUMBER.toUpperCase(), 'MAP', {}),
      { kind: 'positive', name: NUMBER, type: 65400 },
    ],
    ['octets shorter than a header', Uint8Array.of(1, 2, 3), { kind: 'error' }],
  ])('classifies %s', (_what, wire, expected) => {
    expect(classifyResponse(wire)).toEqual(expected);
  });

  it('reads the question of a query in canonical form', () => {
    const wire = encodeMessage(buildQuery('Foo.Mimi.ARPA.', 'MAP'));
    expect(questionOf(wire)).toEqual({ name: 'foo.mimi.arpa', type: 65400, end: wire.length - 11 });
    expect(questionOf(wire.subarray(0, 14))).toBeUndefined();
  });
});

describe('slipResponse', () => {
  it('keeps the header and the question, sets TC and drops every record', () => {
    const full = positive();
    const slip = slipResponse(full);
    const decoded = decodeMessage(slip);
    expect(decoded.flags.tc).toBe(true);
    expect(decoded.flags.aa).toBe(true);
    expect(decoded.id).toBe(0x1234);
    expect(decoded.questions).toEqual([{ name: NUMBER, type: 'MAP', class: 'IN' }]);
    expect([decoded.answers, decoded.authorities, decoded.additionals]).toEqual([[], [], []]);
    expect(decoded.edns).toBeUndefined();
    expect(slip.length).toBeLessThan(full.length);
  });
});

describe('createResponseRateLimiter', () => {
  it('answers a burst, then drops most of a flood and slips every slip-th response', () => {
    const rrl = limiter();
    const actions = Array.from({ length: 20 }, () => rrl.decide(positive(), '192.0.2.1'));
    expect(actions.slice(0, 5)).toEqual(Array(5).fill('send'));
    const limited = actions.slice(5);
    expect(limited.filter((a) => a === 'slip')).toHaveLength(5);
    expect(limited.filter((a) => a === 'drop')).toHaveLength(10);
    expect(limited.map((a, i) => (a === 'slip' ? i + 1 : 0)).filter((n) => n > 0)).toEqual([
      3, 6, 9, 12, 15,
    ]);
    expect(rrl.stats()).toEqual({ slipped: 5, dropped: 10, entries: 1 });
  });

  it('sends the slip form, or nothing, in place of a limited response', () => {
    const rrl = limiter({ responsesPerSecond: 1, slip: 2 });
    const wire = positive();
    expect(rrl.limit(wire, '192.0.2.1')).toBe(wire);
    expect(rrl.limit(wire, '192.0.2.1')).toBeUndefined();
    expect(rrl.limit(wire, '192.0.2.1')).toEqual(slipResponse(wire));
  });

  it('leaves another client, and another name, unaffected', () => {
    const rrl = limiter();
    for (let i = 0; i < 50; i++) rrl.decide(positive(), '192.0.2.1');
    expect(rrl.decide(positive(), '192.0.2.1')).not.toBe('send');
    expect(rrl.decide(positive(), '192.0.2.2')).toBe('send');
    expect(rrl.decide(positive(`9.${NUMBER}`), '192.0.2.1')).toBe('send');
  });

  it('counts the denials of every name under one zone as one stream', () => {
    const rrl = limiter({ denialsPerSecond: 3, slip: 0 });
    const actions = Array.from({ length: 10 }, (_, i) =>
      rrl.decide(denial(`${i}.0.2.${ZONE}`), '192.0.2.1'),
    );
    expect(actions).toEqual(['send', 'send', 'send', ...Array(7).fill('drop')]);
    // An existing name is another stream.
    expect(rrl.decide(positive(), '192.0.2.1')).toBe('send');
  });

  it('counts the errors of a client as one stream, whatever was asked', () => {
    const rrl = limiter({ errorsPerSecond: 2, slip: 1 });
    const refused = (name: string): Uint8Array => response(name, 'A', { rcode: 'REFUSED' });
    expect(rrl.decide(refused('a.example'), '192.0.2.1')).toBe('send');
    expect(rrl.decide(refused('b.example'), '192.0.2.1')).toBe('send');
    expect(rrl.decide(refused('c.example'), '192.0.2.1')).toBe('slip');
  });

  it('refills each stream with the clock', () => {
    const time = clock();
    const rrl = limiter({ responsesPerSecond: 2, burstSeconds: 2 }, time);
    for (let i = 0; i < 4; i++) expect(rrl.decide(positive(), '192.0.2.1')).toBe('send');
    expect(rrl.decide(positive(), '192.0.2.1')).not.toBe('send');
    time.advance(1);
    expect(rrl.decide(positive(), '192.0.2.1')).toBe('send');
    expect(rrl.decide(positive(), '192.0.2.1')).toBe('send');
    expect(rrl.decide(positive(), '192.0.2.1')).not.toBe('send');
  });

  it('leaves a class with a rate of 0 unlimited, and exempt clients alone', () => {
    const rrl = createResponseRateLimiter(
      { responsesPerSecond: 0, burstSeconds: 1 },
      { now: clock().now, exempt: createClientExemptions(['10.0.0.0/8']) },
    );
    for (let i = 0; i < 1000; i++) expect(rrl.decide(positive(), '192.0.2.1')).toBe('send');
    for (let i = 0; i < 1000; i++)
      expect(rrl.decide(denial(`${i}.${ZONE}`), '10.1.1.1')).toBe('send');
    expect(rrl.stats().entries).toBe(0);
  });

  it('tracks at most maxEntries streams under many clients', () => {
    const rrl = limiter({ maxEntries: 500 });
    for (let i = 0; i < 20_000; i++) {
      rrl.decide(positive(), `10.${(i >>> 16) & 0xff}.${(i >>> 8) & 0xff}.${i & 0xff}`);
      expect(rrl.stats().entries).toBeLessThanOrEqual(500);
    }
  });

  it('refuses settings out of range', () => {
    expect(() => createResponseRateLimiter({ slip: 11 })).toThrow(/slip/);
    expect(() => createResponseRateLimiter({ burstSeconds: 0 })).toThrow(/burstSeconds/);
    expect(() => createResponseRateLimiter({ responsesPerSecond: -1 })).toThrow(
      /responsesPerSecond/,
    );
    expect(() => createResponseRateLimiter({ maxEntries: 0 })).toThrow(/maxEntries/);
  });
});

describe('edeOption', () => {
  it('encodes INFO-CODE and EXTRA-TEXT, and reads them back', () => {
    const option = edeOption(EDE_PROHIBITED, 'rate limited');
    expect(option.code).toBe(15);
    expect([...option.data]).toEqual([
      0x00, 0x12, 0x72, 0x61, 0x74, 0x65, 0x20, 0x6c, 0x69, 0x6d, 0x69, 0x74, 0x65, 0x64,
    ]);
    expect(extendedDnsErrors([{ code: 10, data: Uint8Array.of(1) }, option])).toEqual([
      { infoCode: 18, text: 'rate limited' },
    ]);
    expect(extendedDnsErrors([{ code: 15, data: Uint8Array.of(0) }])).toEqual([]);
    expect(() => edeOption(0x10000, '')).toThrow(RangeError);
  });
});
