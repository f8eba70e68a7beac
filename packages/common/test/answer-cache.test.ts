import { afterEach, describe, expect, it } from 'vitest';
import {
  ANSWER_CACHE_MAX_AGE_SECONDS,
  ANSWER_CACHE_OCTETS,
  AnswerCache,
  buildQuery,
  decodeMessage,
  encodeMessage,
  queryTcp,
  queryUdp,
  record,
  respondError,
  startDnsServer,
  ttlFields,
  type DnsServer,
  type Message,
  type QueryHandler,
} from '../src/index.js';

const NAME = '8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa';
const text = (value: string): Uint8Array => new TextEncoder().encode(value);

/** A query's octets with the given id. */
function queryBytes(id: number, name = NAME): Uint8Array {
  return encodeMessage(buildQuery(name, 'MAP', { id }));
}

/** An answer to `query` holding one TXT record per TTL given. */
function answer(query: Message, ttls: number[], rcode: Message['rcode'] = 'NOERROR'): Message {
  const response = respondError(query, rcode);
  response.flags.aa = true;
  response.answers = ttls.map((ttl, i) => record(NAME, 'TXT', [text(`answer ${i}`)], ttl));
  return response;
}

/** Fills `cache` with the answer to the query with id 1, as a server does. */
function fill(cache: AnswerCache, ttls: number[], udp = false): Uint8Array {
  const bytes = queryBytes(1);
  const response = answer(decodeMessage(bytes), ttls);
  const wire = encodeMessage(response);
  cache.set(bytes, udp, response, wire, cache.generation(), 300);
  return wire;
}

describe('AnswerCache', () => {
  it('returns the stored response with the id of the new query, as a fresh copy', () => {
    const cache = new AnswerCache();
    const wire = fill(cache, [300]);
    const hit = cache.get(queryBytes(0xabcd), false);
    expect(hit).toBeDefined();
    expect([...hit!.wire.subarray(0, 2)]).toEqual([0xab, 0xcd]);
    expect([...hit!.wire.subarray(2)]).toEqual([...wire.subarray(2)]);
    expect(hit!.maxAge).toBe(300);
    hit!.wire[5] = 0xff;
    expect([...cache.get(queryBytes(7), false)!.wire.subarray(2)]).toEqual([...wire.subarray(2)]);
    expect(cache.stats).toMatchObject({ hits: 2, misses: 0, entries: 1 });
  });

  it('keys on every octet after the id and on the transport', () => {
    const cache = new AnswerCache();
    fill(cache, [300], true);
    expect(cache.get(queryBytes(2), false)).toBeUndefined();
    expect(cache.get(queryBytes(2), true)).toBeDefined();
    expect(cache.get(queryBytes(2, NAME.toUpperCase()), true)).toBeUndefined();
    const withDo = encodeMessage(buildQuery(NAME, 'MAP', { id: 2, dnssecOk: true }));
    expect(cache.get(withDo, true)).toBeUndefined();
  });

  it('drops every entry when the generation changes, and refuses answers computed before', () => {
    let generation = 1;
    const cache = new AnswerCache({ generation: () => generation });
    fill(cache, [300]);
    const before = cache.generation();
    generation = 2;
    expect(cache.get(queryBytes(3), false)).toBeUndefined();
    expect(cache.stats.entries).toBe(0);
    // An answer read from the data before the change arrives after it: not stored.
    const bytes = queryBytes(1);
    const response = answer(decodeMessage(bytes), [300]);
    cache.set(bytes, false, response, encodeMessage(response), before, 300);
    expect(cache.get(queryBytes(4), false)).toBeUndefined();
  });

  it('on a change of some names, drops their entries and their ancestors’ only', () => {
    let generation = 1;
    let changed: readonly string[] | 'all' = [];
    const cache = new AnswerCache({
      generation: () => generation,
      changes: (since) => {
        expect(since).toBe(generation - 1);
        return { generation, names: changed };
      },
    });
    const names = [NAME, `7.${NAME}`, `0.2.4.4.e164.mimi.arpa`, `other.${NAME}`, 'example.com'];
    for (const name of names) {
      const bytes = queryBytes(1, name);
      const response = answer(decodeMessage(bytes), [300]);
      cache.set(bytes, false, response, encodeMessage(response), cache.generation(), 300);
    }
    const cached = (name: string): boolean => cache.get(queryBytes(2, name), false) !== undefined;
    expect(names.every(cached)).toBe(true);
    // A new node below NAME: its ancestors (NAME, …, 0.2.4.4…) may have become empty
    // non-terminals; NAME's other descendants and unrelated names keep their answers.
    generation = 2;
    changed = [`5.${NAME.toUpperCase()}`];
    expect(cached(NAME)).toBe(false);
    expect(cached('0.2.4.4.e164.mimi.arpa')).toBe(false);
    expect(cached(`7.${NAME}`)).toBe(true);
    expect(cached(`other.${NAME}`)).toBe(true);
    expect(cached('example.com')).toBe(true);
    generation = 3;
    changed = 'all';
    expect(cached('example.com')).toBe(false);
    expect(cache.stats.entries).toBe(0);
  });

  // These tests count milliseconds in `now`; the cache's clock reads seconds (`now / 1000`).
  it(`reuses an entry for at most maxAgeSeconds (default ${ANSWER_CACHE_MAX_AGE_SECONDS})`, () => {
    let now = 1_000_000;
    const cache = new AnswerCache({ now: () => now / 1000 });
    fill(cache, [86_400]);
    now += ANSWER_CACHE_MAX_AGE_SECONDS * 1000 - 1;
    expect(cache.get(queryBytes(5), false)).toBeDefined();
    now += 1;
    expect(cache.get(queryBytes(5), false)).toBeUndefined();
    expect(cache.stats.entries).toBe(0);
  });

  it('stores only answers that depend on the data alone', () => {
    const cache = new AnswerCache();
    for (const rcode of ['SERVFAIL', 'FORMERR', 'NOTIMP'] as const) {
      const bytes = queryBytes(1);
      const response = answer(decodeMessage(bytes), [], rcode);
      cache.set(bytes, false, response, encodeMessage(response), cache.generation(), 0);
      expect(cache.get(queryBytes(2), false)).toBeUndefined();
    }
    for (const rcode of ['NXDOMAIN', 'REFUSED'] as const) {
      const bytes = queryBytes(1, `${rcode.toLowerCase()}.example`);
      const response = answer(decodeMessage(bytes), [], rcode);
      cache.set(bytes, false, response, encodeMessage(response), cache.generation(), 0);
      expect(cache.get(queryBytes(2, `${rcode.toLowerCase()}.example`), false)).toBeDefined();
    }
  });

  it('counts TTLs down by whole seconds and lives no longer than the smallest TTL', () => {
    let now = 5_000_000;
    const cache = new AnswerCache({ now: () => now / 1000, decrementTtls: true });
    fill(cache, [3600, 60]);
    now += 1999;
    const hit = decodeMessage(cache.get(queryBytes(9), false)!.wire);
    expect(hit.answers.map((rr) => rr.ttl)).toEqual([3599, 59]);
    expect(hit.edns?.udpPayloadSize).toBe(1232);
    expect(cache.get(queryBytes(9), false)!.maxAge).toBe(299);
    now += 58_001;
    expect(cache.get(queryBytes(9), false)).toBeUndefined();
  });

  it('keeps a truncated answer as long as the smallest TTL of the whole response', () => {
    let now = 0;
    const cache = new AnswerCache({ now: () => now / 1000, decrementTtls: true });
    const bytes = queryBytes(1);
    const response = answer(decodeMessage(bytes), [3600, 120]);
    const truncated = encodeMessage({
      ...response,
      flags: { ...response.flags, tc: true },
      answers: [],
    });
    cache.set(bytes, true, response, truncated, cache.generation(), 120);
    now += 119_000;
    const hit = cache.get(queryBytes(2), true)!;
    expect(decodeMessage(hit.wire).flags.tc).toBe(true);
    now += 1000;
    expect(cache.get(queryBytes(2), true)).toBeUndefined();
    // A response without records lasts only as a refusal.
    const empty = respondError(decodeMessage(bytes), 'NOERROR');
    cache.set(bytes, false, empty, encodeMessage(empty), cache.generation(), 0);
    expect(cache.get(queryBytes(3), false)).toBeUndefined();
  });

  it('sends an answer with data that expires early enough that no TTL reaches past the expiry', () => {
    let now = 1_000_000;
    const expiry = now + 1_000_000;
    const expiring = new WeakSet<Message>();
    const cache = new AnswerCache({
      now: () => now / 1000,
      expiresAt: (response) => (expiring.has(response) ? expiry / 1000 : undefined),
    });
    const offer = (id: number, ttls: number[]): Message => {
      const bytes = queryBytes(id);
      const response = answer(decodeMessage(bytes), ttls);
      expiring.add(response);
      cache.set(bytes, false, response, encodeMessage(response), cache.generation(), ttls[0] ?? 0);
      return response;
    };
    // Expiry in 1000 s, TTLs up to 300 s: kept for 300 s (maxAge), then 1000 − 700 − 300 = 0.
    offer(1, [300, 60]);
    now += 299_999;
    expect(cache.get(queryBytes(2), false)).toBeDefined();
    now += 1;
    expect(cache.get(queryBytes(2), false)).toBeUndefined();
    // At 400 s before the expiry: kept 100 s, so the last copy sent lives 300 s more at most.
    now = expiry - 400_000;
    offer(3, [300]);
    now += 99_999;
    expect(cache.get(queryBytes(4), false)).toBeDefined();
    now += 1;
    expect(cache.get(queryBytes(4), false)).toBeUndefined();
    // A response whose TTLs already reach the expiry is not kept at all.
    offer(5, [300]);
    expect(cache.get(queryBytes(6), false)).toBeUndefined();
    now = expiry;
    offer(7, [0]);
    expect(cache.get(queryBytes(8), false)).toBeUndefined();
    expect(cache.stats.entries).toBe(0);
  });

  it('with TTLs counted down, keeps an answer with data that expires until the expiry', () => {
    let now = 0;
    const expiry = 200_000;
    const cache = new AnswerCache({
      now: () => now / 1000,
      decrementTtls: true,
      expiresAt: () => expiry / 1000,
    });
    fill(cache, [3600]);
    now += 199_999;
    expect(decodeMessage(cache.get(queryBytes(2), false)!.wire).answers[0]!.ttl).toBe(3401);
    now += 1;
    expect(cache.get(queryBytes(2), false)).toBeUndefined();
  });

  it('an authoritative cache leaves TTLs as they are', () => {
    let now = 0;
    const cache = new AnswerCache({ now: () => now / 1000 });
    fill(cache, [60]);
    now += 30_000;
    expect(decodeMessage(cache.get(queryBytes(9), false)!.wire).answers[0]!.ttl).toBe(60);
  });

  it(`holds at most maxOctets (default ${ANSWER_CACHE_OCTETS}), dropping the least recently used`, () => {
    const cache = new AnswerCache({ maxOctets: 4096 });
    for (let i = 0; i < 100; i++) {
      const bytes = queryBytes(1, `${i}.${NAME}`);
      const response = answer(decodeMessage(bytes), [300]);
      cache.set(bytes, false, response, encodeMessage(response), cache.generation(), 300);
    }
    expect(cache.stats.octets).toBeLessThanOrEqual(4096);
    expect(cache.stats.entries).toBeGreaterThan(0);
    expect(cache.stats.entries).toBeLessThan(100);
    expect(cache.get(queryBytes(2, `99.${NAME}`), false)).toBeDefined();
    expect(cache.get(queryBytes(2, `0.${NAME}`), false)).toBeUndefined();
  });

  it('rejects settings out of range', () => {
    expect(() => new AnswerCache({ maxOctets: 0 })).toThrow(RangeError);
    expect(() => new AnswerCache({ maxAgeSeconds: 0.5 })).toThrow(RangeError);
  });

  it('ignores octets too short to be a query', () => {
    const cache = new AnswerCache();
    expect(cache.get(new Uint8Array(12), true)).toBeUndefined();
    expect(cache.get(new Uint8Array(3), true)).toBeUndefined();
  });
});

describe('ttlFields', () => {
  it('finds the TTL of every record but OPT', () => {
    const query = decodeMessage(queryBytes(1));
    const wire = encodeMessage(answer(query, [10, 20, 30]));
    const fields = ttlFields(wire)!;
    expect(fields.filter((_, i) => i % 2 === 1)).toEqual([10, 20, 30]);
    for (let i = 0; i < fields.length; i += 2) {
      const at = fields[i]!;
      expect(
        ((wire[at]! << 24) | (wire[at + 1]! << 16) | (wire[at + 2]! << 8) | wire[at + 3]!) >>> 0,
      ).toBe(fields[i + 1]);
    }
  });

  it('returns undefined for octets that do not parse, whatever they are', () => {
    const wire = encodeMessage(answer(decodeMessage(queryBytes(1)), [10]));
    expect(ttlFields(wire.subarray(0, wire.length - 1))).toBeUndefined();
    expect(ttlFields(Uint8Array.of(...wire, 0))).toBeUndefined();
    expect(ttlFields(new Uint8Array(5))).toBeUndefined();
    const badLabel = Uint8Array.from(wire);
    badLabel[12] = 0x80;
    expect(ttlFields(badLabel)).toBeUndefined();
    let seed = 7;
    for (let n = 0; n < 2000; n++) {
      const bytes = Uint8Array.from(wire);
      for (let k = 0; k < 3; k++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        bytes[seed % bytes.length] = seed & 0xff;
      }
      const fields = ttlFields(bytes);
      if (fields !== undefined) for (const value of fields) expect(value).toBeGreaterThanOrEqual(0);
    }
  });
});

describe('a DNS server with a answer cache', () => {
  let server: DnsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('asks the handler once per question and transport, and sends truncated answers over UDP', async () => {
    let calls = 0;
    // 30 TXT records of 100 octets: more than a 1232-octet UDP response holds.
    const handler: QueryHandler = (query) => {
      calls++;
      const response = respondError(query, 'NOERROR');
      const big = query.questions[0]!.name.startsWith('big.');
      response.answers = Array.from({ length: big ? 30 : 1 }, (_, i) =>
        record(query.questions[0]!.name, 'TXT', [text(`${i}`.padEnd(100, '.'))], 300),
      );
      return response;
    };
    const cache = new AnswerCache();
    server = await startDnsServer({ udp: { port: 0 }, tcp: { port: 0 } }, handler, { cache });
    const at = { host: '127.0.0.1', port: server.udp!.port };
    const first = await queryUdp(at, buildQuery(NAME, 'TXT', { id: 1 }));
    const second = await queryUdp(at, buildQuery(NAME, 'TXT', { id: 2 }));
    expect(calls).toBe(1);
    expect(second.id).toBe(2);
    expect({ ...second, id: 1 }).toEqual(first);

    const big = `big.${NAME}`;
    const udp1 = await queryUdp(at, buildQuery(big, 'TXT', { id: 3 }), { tcpFallback: false });
    const udp2 = await queryUdp(at, buildQuery(big, 'TXT', { id: 4 }), { tcpFallback: false });
    expect(udp1.flags.tc).toBe(true);
    expect(udp2.flags.tc).toBe(true);
    expect(udp2.answers).toEqual([]);
    const tcp1 = await queryTcp(at, buildQuery(big, 'TXT', { id: 5 }));
    const tcp2 = await queryTcp(at, buildQuery(big, 'TXT', { id: 6 }));
    expect(tcp1.answers).toHaveLength(30);
    expect(tcp2.answers).toHaveLength(30);
    // One computation for the name, one for UDP's big answer, one for TCP's.
    expect(calls).toBe(3);
  });
});
