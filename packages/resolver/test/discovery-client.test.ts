import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RankedMsp } from '@mimi-discovery/common';
import {
  DISCOVERY_BATCH_CONCURRENCY,
  DISCOVERY_CLIENT_CONNECTIONS,
  DISCOVERY_CLIENT_TIMEOUT_MS,
  DiscoveryClientError,
  MAX_DISCOVERY_BATCH_RESPONSE_OCTETS,
  MAX_DISCOVERY_RESPONSE_OCTETS,
  MAX_RESOLUTION_MS,
  createDiscoveryClient,
  createResolver,
  parseDiscoveryResult,
  resultJson,
  resultJsonText,
  startJsonApi,
  type DiscoveryClient,
  type DiscoveryResult,
  type JsonApi,
  type Resolver,
  type VerifiedMapping,
} from '../src/index.js';
import {
  CSIS,
  buildHierarchy,
  publishCases,
  type Hierarchy,
} from '../../../test/helpers/hierarchy.js';
import { rejectionOf } from '../../../test/helpers/rejection.js';

// The discovery client against the JSON API of a real resolver over the test hierarchy, and
// against servers that answer what the API never would.

/** The error `call` rejects with, a {@link DiscoveryClientError}; fails the test when it resolves. */
function rejection(call: Promise<unknown>): Promise<DiscoveryClientError> {
  return rejectionOf(call, DiscoveryClientError);
}

describe('the discovery client against a resolver', () => {
  let h: Hierarchy;
  let resolver: Resolver;
  let api: JsonApi;
  let client: DiscoveryClient;

  beforeAll(async () => {
    h = await buildHierarchy();
    await publishCases(h);
    // A clock that stands still: a result read twice carries the same TTL.
    const now = Date.now() / 1000;
    resolver = createResolver(h.resolverConfig(), { now: () => now });
    api = await startJsonApi({ port: 0, cert: h.tls.cert, key: h.tls.key, maxBatch: 8 }, resolver);
    client = createDiscoveryClient({ url: api.url, ca: h.caPem });
  });

  afterAll(async () => {
    await client?.close();
    await api?.close();
    await resolver?.close();
    await h?.close();
  });

  it('returns for one CSI what the resolver returns in process', async () => {
    for (const input of ['+44 (0)20 7946 0018', CSIS.empty, CSIS.none, CSIS.mapref]) {
      const result = await client.discover(input);
      expect(result, input).toEqual(await resolver.discover(input));
    }
    expect((await client.discover(CSIS.found)).status).toBe('found');
  });

  it('returns a batch in input order, an entry that is not a CSI as an invalid-csi result', async () => {
    const inputs = [CSIS.found, 'not a number', CSIS.none, '+44 20 7946 0019', CSIS.found];
    const results = await client.discoverMany(inputs);
    expect(results.map((r) => r.status)).toEqual(['found', 'error', 'none', 'empty', 'found']);
    expect(results[1]).toMatchObject({ csi: 'not a number', error: { reason: 'invalid-csi' } });
    expect(results).toEqual(await resolver.discoverMany(inputs));
    expect(await client.discoverMany([])).toEqual([]);
  });

  it("carries the API's code for a single input that is not a CSI, and for a batch too large", async () => {
    const invalid = await rejection(client.discover('020 7946 0018'));
    expect(invalid).toMatchObject({ code: 'ERR_CSI_INVALID', status: 400 });
    expect(invalid.detail).toMatch(/^ERR_CSI_/);
    const batch = Array.from(
      { length: 9 },
      (_, i) => `+44 20 7946 01${String(i).padStart(2, '0')}`,
    );
    const tooMany = await rejection(client.discoverMany(batch));
    expect(tooMany).toMatchObject({ code: 'ERR_BATCH_TOO_LARGE', status: 413, detail: 'csis' });
  });

  it('sends a list longer than its maxBatch as batches, the results in input order', async () => {
    let responses = 0;
    const batched = createDiscoveryClient({
      url: api.url,
      ca: h.caPem,
      maxBatch: 8,
      onResponse: () => responses++,
    });
    try {
      const inputs = Array.from({ length: 30 }, (_, i) =>
        i % 3 === 0 ? CSIS.found : i % 3 === 1 ? 'not a number' : `+44 20 7946 ${3000 + i}`,
      );
      const results = await batched.discoverMany(inputs);
      expect(results).toEqual(await resolver.discoverMany(inputs));
      // 8 + 8 + 8 + 6.
      expect(responses).toBe(4);
    } finally {
      await batched.close();
    }
    // A client whose batches are larger than the API takes fails with the API's refusal.
    const tooLarge = createDiscoveryClient({ url: api.url, ca: h.caPem, maxBatch: 9 });
    try {
      const inputs = Array.from({ length: 20 }, (_, i) => `+44 20 7946 ${3100 + i}`);
      expect(await rejection(tooLarge.discoverMany(inputs))).toMatchObject({
        code: 'ERR_BATCH_TOO_LARGE',
        status: 413,
      });
    } finally {
      await tooLarge.close();
    }
    for (const maxBatch of [0, -1, 1.5, Number.NaN]) {
      expect(() => createDiscoveryClient({ url: api.url, maxBatch })).toThrow(TypeError);
    }
  });

  it('answers many concurrent callers, each with the result for its CSI', async () => {
    const inputs = Array.from({ length: 40 }, (_, i) =>
      i % 2 === 0 ? CSIS.found : `+44 20 7946 ${String(2000 + i)}`,
    );
    const results = await Promise.all(inputs.map((input) => client.discover(input)));
    expect(results.map((r) => r.status)).toEqual(
      inputs.map((_, i) => (i % 2 === 0 ? 'found' : 'none')),
    );
  });

  it('does not trust the resolver without its CA', async () => {
    const untrusting = createDiscoveryClient({ url: api.url });
    try {
      expect((await rejection(untrusting.discover(CSIS.found))).code).toBe('ERR_API_UNREACHABLE');
    } finally {
      await untrusting.close();
    }
  });
});

describe('parseDiscoveryResult', () => {
  const base64url = fc.stringMatching(/^[A-Za-z0-9_-]{43}$/);
  const whole = fc.integer({ min: 0, max: 2 ** 40 });
  const msp = fc.record(
    {
      provider: fc.domain(),
      tags: fc.array(fc.string({ maxLength: 12 }), { maxLength: 4 }),
      uri: fc.webUrl(),
    },
    { requiredKeys: ['provider', 'tags'] },
  );
  const box = fc.record({ kid: base64url, enc: base64url, ct: base64url });
  const mapping = fc.record(
    {
      msps: fc.array(msp, { maxLength: 3 }),
      sealed: fc.array(box, { minLength: 1, maxLength: 2 }),
      opened: fc.array(fc.record({ audience: base64url, msps: fc.array(msp, { maxLength: 2 }) }), {
        minLength: 1,
        maxLength: 2,
      }),
      key: base64url,
      seq: whole,
      iat: whole,
      exp: whole,
      new: fc.boolean(),
      prover: base64url,
      zone: fc.domain(),
      server: fc.webUrl(),
    },
    {
      requiredKeys: ['msps', 'key', 'seq', 'iat', 'exp', 'new', 'prover', 'zone', 'server'],
    },
  );
  const ranked = fc.record(
    {
      provider: fc.domain(),
      tags: fc.array(fc.string({ maxLength: 12 }), { maxLength: 4 }),
      uri: fc.webUrl(),
      contexts: fc.array(fc.constantFrom('personal', 'business', 'ctx:soccer'), { maxLength: 2 }),
      pref: fc.integer({ min: 1, max: 999 }),
      sameMsp: fc.boolean(),
      key: base64url,
      zone: fc.domain(),
      audience: base64url,
    },
    { requiredKeys: ['provider', 'tags', 'contexts', 'sameMsp', 'key', 'zone'] },
  );
  const result: fc.Arbitrary<DiscoveryResult> = fc.oneof(
    fc.record(
      {
        csi: fc.string(),
        status: fc.constantFrom('none' as const, 'empty' as const),
        msps: fc.constant<RankedMsp[]>([]),
        mappings: fc.array(mapping, { maxLength: 3 }),
        ttl: fc.nat(),
        stale: fc.constant(true),
      },
      { requiredKeys: ['csi', 'status', 'msps', 'mappings', 'ttl'] },
    ),
    fc.record(
      {
        csi: fc.string(),
        status: fc.constant('found' as const),
        msps: fc.array(ranked, { maxLength: 4 }),
        mappings: fc.array(mapping, { maxLength: 3 }),
        ttl: fc.nat(),
        stale: fc.constant(true),
        unopened: fc.integer({ min: 1, max: 8 }),
      },
      { requiredKeys: ['csi', 'status', 'msps', 'mappings', 'ttl'] },
    ),
    fc.record(
      {
        csi: fc.string(),
        status: fc.constant('error' as const),
        msps: fc.constant<RankedMsp[]>([]),
        mappings: fc.constant<VerifiedMapping[]>([]),
        ttl: fc.nat(),
        stale: fc.constant(true),
        error: fc.record({
          reason: fc.constantFrom(
            'bogus' as const,
            'timeout' as const,
            'limit' as const,
            'invalid-csi' as const,
            'servfail' as const,
          ),
          detail: fc.string(),
        }),
      },
      { requiredKeys: ['csi', 'status', 'msps', 'mappings', 'ttl', 'error'] },
    ),
  );

  it('reads back every result the JSON API writes', () => {
    fc.assert(
      fc.property(result, (r) => {
        expect(parseDiscoveryResult(JSON.parse(resultJsonText(r)))).toEqual(r);
      }),
    );
  });

  it('refuses a result missing any field, or with a field of the wrong type', () => {
    const found = resultJson({
      csi: 'tel:+442079460018',
      status: 'found',
      msps: [
        {
          provider: 'chat.example',
          tags: ['mls', 'pref:1'],
          contexts: [],
          pref: 1,
          sameMsp: false,
          key: 'a'.repeat(43),
          zone: '4.4.e164.mimi.arpa',
        },
      ],
      mappings: [
        {
          msps: [{ provider: 'chat.example', tags: ['mls', 'pref:1'] }],
          sealed: [{ kid: 'a'.repeat(11), enc: 'b'.repeat(43), ct: 'c'.repeat(43) }],
          opened: [{ audience: 'd'.repeat(11), msps: [{ provider: 'wire.example', tags: [] }] }],
          key: 'a'.repeat(43),
          seq: 1,
          iat: 2,
          exp: 3,
          new: false,
          prover: 'b'.repeat(43),
          zone: '4.4.e164.mimi.arpa',
          server: 'https://127.0.0.1/dns-query',
        },
      ],
      ttl: 300,
    });
    expect(parseDiscoveryResult(found)).toBeDefined();
    const at = (value: unknown, path: readonly (string | number)[]): Record<string, unknown> =>
      path.reduce<Record<string, unknown>>(
        (v, k) => v[k] as Record<string, unknown>,
        value as Record<string, unknown>,
      );
    const paths: ReadonlyArray<readonly (string | number)[]> = [
      ['csi'],
      ['status'],
      ['msps'],
      ['msps', 0, 'provider'],
      ['msps', 0, 'tags'],
      ['msps', 0, 'contexts'],
      ['msps', 0, 'sameMsp'],
      ['msps', 0, 'key'],
      ['msps', 0, 'zone'],
      ['mappings'],
      ['ttl'],
      ['mappings', 0, 'msps'],
      ['mappings', 0, 'sealed', 0, 'kid'],
      ['mappings', 0, 'sealed', 0, 'enc'],
      ['mappings', 0, 'sealed', 0, 'ct'],
      ['mappings', 0, 'opened', 0, 'audience'],
      ['mappings', 0, 'opened', 0, 'msps'],
      ['mappings', 0, 'msps', 0, 'provider'],
      ['mappings', 0, 'msps', 0, 'tags'],
      ['mappings', 0, 'key'],
      ['mappings', 0, 'seq'],
      ['mappings', 0, 'iat'],
      ['mappings', 0, 'exp'],
      ['mappings', 0, 'new'],
      ['mappings', 0, 'prover'],
      ['mappings', 0, 'zone'],
      ['mappings', 0, 'server'],
    ];
    for (const path of paths) {
      for (const change of ['delete', 'wrong type'] as const) {
        const copy = structuredClone(found);
        const parent = at(copy, path.slice(0, -1));
        const key = path.at(-1) as string;
        if (change === 'delete') delete parent[key];
        else parent[key] = typeof parent[key] === 'string' ? 7 : 'seven';
        expect(parseDiscoveryResult(copy), `${path.join('.')}: ${change}`).toBeUndefined();
      }
    }
    const cases: Array<[string, unknown]> = [
      ['an unknown status', { ...found, status: 'maybe' }],
      ['a negative TTL', { ...found, ttl: -1 }],
      ['a fractional seq', { ...found, mappings: [{ ...at(found, ['mappings', 0]), seq: 1.5 }] }],
      ['an error without error status', { ...found, error: { reason: 'bogus', detail: '' } }],
      ['error status without its error', { ...found, status: 'error' }],
      ['an unknown reason', { ...found, status: 'error', error: { reason: 'oops', detail: '' } }],
      ['a stale flag that is not boolean', { ...found, stale: 'yes' }],
      ['ranked MSPs in a result that is not found', { ...found, status: 'empty' }],
      ['a rank out of range', { ...found, msps: [{ ...at(found, ['msps', 0]), pref: 1000 }] }],
      ['a rank of 0', { ...found, msps: [{ ...at(found, ['msps', 0]), pref: 0 }] }],
      [
        'a sealed list that is empty',
        { ...found, mappings: [{ ...at(found, ['mappings', 0]), sealed: [] }] },
      ],
      [
        'an opened list that is empty',
        { ...found, mappings: [{ ...at(found, ['mappings', 0]), opened: [] }] },
      ],
      [
        'a sealed list that is no list',
        { ...found, mappings: [{ ...at(found, ['mappings', 0]), sealed: {} }] },
      ],
      ['unopened 0', { ...found, unopened: 0 }],
      ['unopened not whole', { ...found, unopened: 1.5 }],
      ['an array', [found]],
      ['null', null],
    ];
    for (const [what, value] of cases) expect(parseDiscoveryResult(value), what).toBeUndefined();
  });
});

describe('the discovery client against a server that is not the API', () => {
  let answer: (res: ServerResponse) => void = (res) => res.end();
  const sockets = new Set<Socket>();
  let hostile: Server;
  let url: string;

  beforeAll(async () => {
    hostile = createServer((req, res) => {
      req.resume();
      req.once('end', () => answer(res));
    });
    hostile.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => hostile.close(() => resolve()));
  });

  const json =
    (status: number, value: unknown) =>
    (res: ServerResponse): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    };
  const none = (csi: string): DiscoveryResult => ({
    csi,
    status: 'none',
    msps: [],
    mappings: [],
    ttl: 60,
  });

  /** What the client makes of `respond` to `call`, with a client of short bounds. */
  async function faultOf(
    respond: (res: ServerResponse) => void,
    call: (client: DiscoveryClient) => Promise<unknown>,
  ): Promise<DiscoveryClientError> {
    answer = respond;
    const client = createDiscoveryClient({ url, timeoutMs: 300 });
    try {
      return await rejection(call(client));
    } finally {
      await client.close();
    }
  }

  const one = (c: DiscoveryClient): Promise<unknown> => c.discover('+44 20 7946 0018');
  const two = (c: DiscoveryClient): Promise<unknown> =>
    c.discoverMany(['+44 20 7946 0018', 'bob@example.com']);

  it('refuses what is not a discovery result, and a result for another CSI', async () => {
    const where = `${url}/v1/discover`;
    const cases: Array<[(res: ServerResponse) => void, typeof one, string]> = [
      [
        json(200, { csi: 'tel:+442079460018', status: 'found' }),
        one,
        `${where} answered something other than a discovery result`,
      ],
      [json(200, none('tel:+442079460019')), one, `${where} answered a result for another CSI`],
      [
        json(200, { results: [none('tel:+442079460018')] }),
        two,
        `${where} did not answer 2 results`,
      ],
      [json(200, [none('tel:+442079460018')]), two, `${where} did not answer 2 results`],
      [
        json(200, { results: [none('tel:+442079460018'), none('mailto:carol@example.com')] }),
        two,
        `${where} answered a result for another CSI`,
      ],
      [(res) => res.writeHead(200).end('found'), one, `${where} answered HTTP 200 without JSON`],
      [
        (res) => res.writeHead(502).end('<h1>proxy</h1>'),
        two,
        `${where} answered HTTP 502 without JSON`,
      ],
      [json(201, none('tel:+442079460018')), one, `${where} answered HTTP 201`],
      [
        json(400, { error: { code: 'ERR_NOPE', message: 'no' } }),
        one,
        `${where} answered HTTP 400 with a code the API does not have: ERR_NOPE`,
      ],
    ];
    for (const [respond, call, message] of cases) {
      expect(await faultOf(respond, call)).toMatchObject({ code: 'ERR_API_RESPONSE', message });
    }
  });

  it(`sends at most ${DISCOVERY_BATCH_CONCURRENCY} batches at once, and none after one fails`, async () => {
    // A server that answers each batch after a while, counting the batches it holds at once.
    let inFlight = 0;
    let most = 0;
    let seen = 0;
    const failAt = 6;
    const slow = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.once('end', () => {
        inFlight++;
        seen++;
        most = Math.max(most, inFlight);
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { csis: string[] };
        const fail = seen === failAt;
        setTimeout(() => {
          inFlight--;
          if (fail) json(429, { error: { code: 'ERR_RATE_LIMITED', message: 'slow down' } })(res);
          else json(200, { results: body.csis.map((csi) => none(csi)) })(res);
        }, 40);
      });
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const client = createDiscoveryClient({
      url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}`,
      maxBatch: 2,
    });
    try {
      const inputs = Array.from(
        { length: 20 },
        (_, i) => `tel:+4420794601${String(i).padStart(2, '0')}`,
      );
      const results = await client.discoverMany(inputs.slice(0, 10));
      expect(results.map((r) => r.csi)).toEqual(inputs.slice(0, 10));
      expect(most).toBe(DISCOVERY_BATCH_CONCURRENCY);
      // The 6th batch (the first of the next call) fails: the call rejects with the server's
      // refusal, and no batch starts after it (at most the ones already in flight run on).
      seen = failAt - 1;
      const before = seen;
      const refusal = await rejection(client.discoverMany(inputs));
      expect(refusal).toMatchObject({ code: 'ERR_RATE_LIMITED', status: 429 });
      expect(seen - before).toBeLessThanOrEqual(DISCOVERY_BATCH_CONCURRENCY);
    } finally {
      await client.close();
      await new Promise<void>((resolve) => slow.close(() => resolve()));
    }
  });

  it('sends no more batches at once than it has connections, so none waits out its deadline', async () => {
    const slow = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.once('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { csis: string[] };
        setTimeout(() => json(200, { results: body.csis.map((csi) => none(csi)) })(res), 100);
      });
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    // Each batch alone answers in 100 ms, within the 250 ms bound; four queued on one
    // connection would wait 300 ms for the last.
    const client = createDiscoveryClient({
      url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}`,
      maxBatch: 2,
      connections: 1,
      timeoutMs: 250,
    });
    try {
      const inputs = Array.from({ length: 8 }, (_, i) => `tel:+44207946020${i}`);
      expect((await client.discoverMany(inputs)).map((r) => r.csi)).toEqual(inputs);
    } finally {
      await client.close();
      await new Promise<void>((resolve) => slow.close(() => resolve()));
    }
  });

  it('accepts a batch of well-formed results for the CSIs asked', async () => {
    answer = json(200, { results: [none('tel:+442079460018'), none('mailto:bob@example.com')] });
    const client = createDiscoveryClient({ url });
    try {
      expect(await two(client)).toEqual([
        none('tel:+442079460018'),
        none('mailto:bob@example.com'),
      ]);
    } finally {
      await client.close();
    }
  });

  it('checks every result against its input when the same inputs come again', async () => {
    // The second sync sends the same inputs, parsed from the client's memo: a server that
    // then swaps the results around is still caught.
    const client = createDiscoveryClient({ url });
    try {
      answer = json(200, { results: [none('tel:+442079460018'), none('mailto:bob@example.com')] });
      await two(client);
      answer = json(200, { results: [none('mailto:bob@example.com'), none('tel:+442079460018')] });
      expect(await rejection(two(client))).toMatchObject({
        code: 'ERR_API_RESPONSE',
        message: `${url}/v1/discover answered a result for another CSI`,
      });
      answer = json(200, { results: [none('tel:+442079460018'), none('mailto:bob@example.com')] });
      expect(await two(client)).toEqual([
        none('tel:+442079460018'),
        none('mailto:bob@example.com'),
      ]);
    } finally {
      await client.close();
    }
  });

  it('stops reading a response larger than its bound', async () => {
    const big = { ...none('tel:+442079460018'), pad: 'x'.repeat(MAX_DISCOVERY_RESPONSE_OCTETS) };
    const error = await faultOf(json(200, big), one);
    expect(error).toMatchObject({
      code: 'ERR_API_RESPONSE',
      message: `${url}/v1/discover answered more than ${MAX_DISCOVERY_RESPONSE_OCTETS} octets`,
    });
  });

  it('reads a batch larger than the bound of one result, up to the bound of a batch', async () => {
    expect(MAX_DISCOVERY_BATCH_RESPONSE_OCTETS).toBeGreaterThan(MAX_DISCOVERY_RESPONSE_OCTETS);
    // Fields the client does not know are left out of the results (a newer API may add some).
    const pad = 'x'.repeat(MAX_DISCOVERY_RESPONSE_OCTETS / 2);
    answer = json(200, {
      results: [
        { ...none('tel:+442079460018'), pad },
        { ...none('mailto:bob@example.com'), pad },
      ],
    });
    const client = createDiscoveryClient({ url });
    try {
      expect(await two(client)).toEqual([
        none('tel:+442079460018'),
        none('mailto:bob@example.com'),
      ]);
    } finally {
      await client.close();
    }
  });

  it('opens at most DISCOVERY_CLIENT_CONNECTIONS connections', async () => {
    const connected = sockets.size;
    let seen = 0;
    answer = (res) => {
      seen = Math.max(seen, sockets.size - connected);
      setTimeout(() => json(200, none('tel:+442079460018'))(res), 20);
    };
    const client = createDiscoveryClient({ url });
    try {
      await Promise.all(Array.from({ length: 24 }, () => one(client)));
      expect(seen).toBeGreaterThan(1);
      expect(seen).toBeLessThanOrEqual(DISCOVERY_CLIENT_CONNECTIONS);
    } finally {
      await client.close();
    }
  });

  it('gives up on a server that does not answer in time, and by default waits out a resolution', async () => {
    expect(DISCOVERY_CLIENT_TIMEOUT_MS).toBeGreaterThan(MAX_RESOLUTION_MS);
    expect((await faultOf(() => undefined, two)).code).toBe('ERR_API_TIMEOUT');
  });
});
