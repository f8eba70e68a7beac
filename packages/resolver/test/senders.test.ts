import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  generateAudienceKey,
  parseCsi,
  sealMsps,
  type AudienceKey,
  type Ed25519KeyPair,
  type SealedBox,
} from '@mimi-discovery/common';
import {
  createDiscoveryClient,
  createResolver,
  openResult,
  resultJson,
  startJsonApi,
  type DiscoveryResult,
  type JsonApi,
  type Resolver,
} from '../src/index.js';
import {
  ALICE,
  BOB,
  CAROL,
  MSP_ZONE,
  buildHierarchy,
  type Hierarchy,
} from '../../../test/helpers/hierarchy.js';

// What one sender sees (design §4 "Preferences", "Sealed mappings"; spec of the resolver's
// results): ranking across keys and zones, the resolver's MSP identity, a context per request,
// sealed boxes passed through, and opened only by a holder of the audience key, in its process.

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

/** The CSIs this file publishes, by what they exercise. */
const CSI = {
  ranked: parseCsi('+44 20 7946 0040'),
  tie: parseCsi('+44 20 7946 0041'),
  sameMsp: parseCsi('+44 20 7946 0042'),
  contexts: parseCsi('+44 20 7946 0043'),
  sealedOnly: parseCsi('+44 20 7946 0044'),
  mixed: parseCsi('+44 20 7946 0045'),
};
const RANKED_TARGET = `ranked.${MSP_ZONE}`;

let net: Hierarchy;
let audience: AudienceKey;
let stranger: AudienceKey;
/** The box of `CSI.sealedOnly` for Alice's key: copied elsewhere, it must not open. */
let sealedOnlyBox: SealedBox;
const opened: Resolver[] = [];

function resolverFor(msp?: string): Resolver {
  const resolver = createResolver(net.resolverConfig(msp === undefined ? {} : { msp }));
  opened.push(resolver);
  return resolver;
}

const providers = (r: DiscoveryResult): string[] => r.msps.map((m) => m.provider);
const mappingKeys = (r: DiscoveryResult): string[] => r.mappings.map((m) => m.key);

beforeAll(async () => {
  net = await buildHierarchy();
  audience = await generateAudienceKey();
  stranger = await generateAudienceKey();
  const t0 = Math.floor(Date.now() / 1000);
  const earlier = { nbf: t0 - 3600 };
  // Three keys in two zones; Alice's mapping is the oldest, Carol's is at a MAPREF target.
  await net.publish(CSI.ranked, ALICE, {
    ...earlier,
    iat: t0 - 300,
    msps: [
      { provider: 'text.example', tags: [] },
      { provider: 'wire.example', tags: ['business', 'pref:2'] },
    ],
  });
  await net.publish(CSI.ranked, BOB, {
    ...earlier,
    iat: t0 - 200,
    msps: [{ provider: 'chat.example', tags: ['personal', 'pref:1'] }],
  });
  await net.publish(CSI.ranked, CAROL, {
    ...earlier,
    iat: t0 - 100,
    at: RANKED_TARGET,
    prover: net.proverFor(CSI.ranked),
    msps: [
      { provider: 'msp.example', tags: ['pref:3'] },
      // The same provider and uri as Alice's, ranked before it: Alice's is dropped.
      { provider: 'text.example', tags: ['pref:4'] },
    ],
  });
  await net.publishMapref(CSI.ranked, [RANKED_TARGET]);
  // Two unranked mappings of one iat: the key decides.
  for (const [key, provider] of [
    [ALICE, 'a.example'],
    [BOB, 'b.example'],
  ] as const) {
    await net.publish(CSI.tie, key, { ...earlier, iat: t0 - 50, msps: [{ provider, tags: [] }] });
  }
  await net.publish(CSI.sameMsp, ALICE, {
    ...earlier,
    msps: [
      { provider: 'chat.example', tags: ['same-msp', 'pref:1'] },
      { provider: 'text.example', tags: ['same-msp', 'pref:2'] },
      { provider: 'wire.example', tags: ['pref:3'] },
    ],
  });
  await net.publish(CSI.contexts, ALICE, {
    ...earlier,
    msps: [
      { provider: 'wire.example', tags: ['business'] },
      { provider: 'chat.example', tags: ['personal', 'ctx:soccer'] },
      { provider: 'text.example', tags: [] },
    ],
  });
  sealedOnlyBox = await sealMsps(
    CSI.sealedOnly,
    ALICE.publicKey,
    [{ provider: 'wire.example', tags: ['business', 'pref:1'] }],
    audience,
  );
  await net.publish(CSI.sealedOnly, ALICE, { ...earlier, msps: [], sealed: [sealedOnlyBox] });
  // A public personal mapping and a sealed business one (CUJ 7), and a box copied from another
  // CSI, which cannot open here.
  await net.publish(CSI.mixed, BOB, {
    ...earlier,
    iat: t0 - 10,
    msps: [{ provider: 'chat.example', tags: ['personal', 'pref:2'] }],
  });
  await net.publish(CSI.mixed, ALICE, {
    ...earlier,
    iat: t0 - 20,
    msps: [],
    sealed: [
      await sealMsps(
        CSI.mixed,
        ALICE.publicKey,
        [
          { provider: 'wire.example', tags: ['business', 'pref:1'] },
          { provider: 'chat.example', tags: ['same-msp'] },
        ],
        audience,
      ),
    ],
  });
});

afterAll(async () => {
  await Promise.allSettled(opened.map((r) => r.close()));
  await net?.close();
});

describe('the order of a result', () => {
  it('ranks entries across keys and zones by pref, then iat, then key, and mappings alike', async () => {
    const resolver = resolverFor();
    const result = await resolver.discover(CSI.ranked);
    expect(result.status).toBe('found');
    expect(providers(result)).toEqual([
      'chat.example',
      'wire.example',
      'msp.example',
      'text.example',
    ]);
    expect(result.msps.map((m) => [m.key, m.zone, m.pref])).toEqual([
      [b64(BOB.publicKey), expect.stringContaining('e164'), 1],
      [b64(ALICE.publicKey), expect.stringContaining('e164'), 2],
      [b64(CAROL.publicKey), MSP_ZONE, 3],
      [b64(CAROL.publicKey), MSP_ZONE, 4],
    ]);
    expect(mappingKeys(result)).toEqual([BOB, ALICE, CAROL].map((k) => b64(k.publicKey)));
    // The same everywhere: another resolver, asked fresh, and the cached result.
    const other = resolverFor();
    const withoutTtl = (r: DiscoveryResult): DiscoveryResult => ({ ...r, ttl: 0 });
    expect(withoutTtl(await other.discover(CSI.ranked))).toEqual(withoutTtl(result));
    expect(await resolver.discover(CSI.ranked)).toEqual(result);
  });

  it('orders mappings of one iat without prefs by their key', async () => {
    const result = await resolverFor().discover(CSI.tie);
    const keys = [ALICE, BOB].map((k) => b64(k.publicKey)).sort();
    expect(mappingKeys(result)).toEqual(keys);
    expect(result.msps.map((m) => m.key)).toEqual(keys);
  });
});

describe("the resolver's MSP identity", () => {
  it.each([
    ['chat.example', ['chat.example', 'wire.example']],
    ['text.example', ['text.example', 'wire.example']],
    [undefined, ['wire.example']],
  ] as const)('as %s, keeps only its own same-msp entries, fresh and cached', async (msp, seen) => {
    const resolver = resolverFor(msp);
    const fresh = await resolver.discover(CSI.sameMsp);
    const hits = resolver.stats().cacheHitsBy.discovery;
    const cached = await resolver.discover(CSI.sameMsp);
    expect(resolver.stats().cacheHitsBy.discovery).toBe(hits + 1);
    for (const result of [fresh, cached]) {
      expect(result.status).toBe('found');
      expect(providers(result)).toEqual(seen);
      // What a sender may not use is not handed out in the mapping either.
      expect(result.mappings[0]?.msps.map((m) => m.provider)).toEqual(seen);
    }
    const batch = await resolver.discoverManyJson([CSI.sameMsp]);
    expect(providers(batch.results[0]!)).toEqual(seen);
    expect(JSON.parse(batch.json[0]!)).toEqual(resultJson(batch.results[0]!));
  });
});

describe('a context', () => {
  it.each([
    ['business', ['wire.example', 'text.example']],
    ['personal', ['chat.example', 'text.example']],
    ['ctx:soccer', ['chat.example', 'text.example']],
    ['ctx:choir', ['text.example']],
    [undefined, ['wire.example', 'chat.example', 'text.example']],
  ] as const)('%s keeps its entries and those for every context', async (context, seen) => {
    const resolver = resolverFor();
    // Asked twice: once fresh, once from the cache, which holds the result for every context.
    for (let i = 0; i < 2; i++) {
      const result = await resolver.discover(
        CSI.contexts,
        context === undefined ? {} : { context },
      );
      expect(result.status).toBe('found');
      expect(providers(result)).toEqual(seen);
      expect(result.mappings[0]?.msps.map((m) => m.provider)).toEqual(seen);
    }
  });

  it('never changes the status: found with no MSP is reachable, not for this sender', async () => {
    const resolver = resolverFor();
    // Bob's public entry is personal; Alice's mapping has only a box.
    const result = await resolver.discover(CSI.mixed, { context: 'business' });
    expect(result).toMatchObject({ status: 'found', msps: [] });
    expect(result.mappings).toHaveLength(2);
  });

  it('is refused when it is not one, before anything is asked', async () => {
    const resolver = resolverFor();
    for (const context of ['Business', 'ctx:', 'ctx:-x', 'pref:1', '']) {
      await expect(resolver.discover(CSI.contexts, { context })).rejects.toThrow(TypeError);
    }
    expect(resolver.stats().upstreamQueries).toBe(0);
  });

  it('keeps the JSON text cache for a warm batch without a context, and writes a view with one', async () => {
    const resolver = resolverFor();
    const inputs = [CSI.contexts, CSI.sameMsp];
    await resolver.discoverMany(inputs);
    const first = await resolver.discoverManyJson(inputs);
    const again = await resolver.discoverManyJson(inputs);
    // The cached result itself, with its text kept: the same object each time.
    expect(again.results[0]).toBe(first.results[0]);
    expect(again.json).toEqual(first.json);
    const business = await resolver.discoverManyJson(inputs, { context: 'business' });
    expect(business.results[0]).not.toBe(first.results[0]);
    expect(providers(business.results[0]!)).toEqual(['wire.example', 'text.example']);
    expect(JSON.parse(business.json[0]!)).toEqual(resultJson(business.results[0]!));
    // The cached result is not changed by a request's view.
    expect(providers((await resolver.discoverManyJson(inputs)).results[0]!)).toHaveLength(3);
  });
});

describe('sealed mappings', () => {
  it('passes a sealed-only mapping through as found, with no MSP and its box', async () => {
    const result = await resolverFor('chat.example').discover(CSI.sealedOnly);
    expect(result).toMatchObject({ status: 'found', msps: [] });
    expect(result.mappings[0]?.msps).toEqual([]);
    expect(result.mappings[0]?.sealed).toEqual([
      { kid: b64(sealedOnlyBox.kid), enc: b64(sealedOnlyBox.enc), ct: b64(sealedOnlyBox.ct) },
    ]);
    expect(result.mappings[0]?.opened).toBeUndefined();
  });

  it('opens a box with the right key: opened filled, its entries ranked with the public ones', async () => {
    const resolver = resolverFor('chat.example');
    const result = await resolver.discover(CSI.mixed);
    expect(providers(result)).toEqual(['chat.example']);
    const open = await openResult(result, [stranger, audience], { msp: 'chat.example' });
    expect(providers(open)).toEqual(['wire.example', 'chat.example']);
    expect(open.msps[0]).toMatchObject({ audience: b64(audience.kid), pref: 1 });
    const alice = open.mappings.find((m) => m.key === b64(ALICE.publicKey));
    expect(alice?.sealed).toBeUndefined();
    expect(alice?.opened).toEqual([
      {
        audience: b64(audience.kid),
        msps: [
          { provider: 'wire.example', tags: ['business', 'pref:1'] },
          { provider: 'chat.example', tags: ['same-msp'] },
        ],
      },
    ]);
    // Alice's mapping now ranks first (pref 1 opened, against Bob's pref 2).
    expect(mappingKeys(open)[0]).toBe(b64(ALICE.publicKey));
    expect(open.unopened).toBeUndefined();
    // The input is not changed.
    expect(result.mappings.some((m) => m.opened !== undefined)).toBe(false);
    // In process, with the identity and a context applied to the opened entries too.
    const personal = await resolver.discover(CSI.mixed, {
      context: 'personal',
      audienceKeys: [audience],
    });
    expect(providers(personal)).toEqual(['chat.example']);
    expect(personal.mappings.find((m) => m.key === b64(ALICE.publicKey))?.opened).toEqual([
      { audience: b64(audience.kid), msps: [{ provider: 'chat.example', tags: ['same-msp'] }] },
    ]);
  });

  it('leaves a box sealed for a key of another id, and counts one whose key is not the one', async () => {
    const result = await resolverFor().discover(CSI.mixed);
    const other = await openResult(result, [stranger], {});
    expect(other).toEqual(result);
    // A key object that claims the audience's public key, without its secret: the box does not
    // open, it stays sealed and is counted, and nothing is thrown.
    const impostor: AudienceKey = { ...audience, secretKey: stranger.secretKey };
    const failed = await openResult(result, [impostor], {});
    expect(failed.unopened).toBe(1);
    expect(failed.mappings.find((m) => m.key === b64(ALICE.publicKey))?.sealed).toHaveLength(1);
    expect(providers(failed)).toEqual(providers(result));
  });

  it('does not open a box copied into the mapping of another CSI', async () => {
    const resolver = resolverFor();
    const result = await resolver.discover(CSI.sealedOnly);
    // The box as a hostile API would hand it out under another CSI: the AAD binds the CSI.
    const moved: DiscoveryResult = { ...result, csi: CSI.mixed };
    const open = await openResult(moved, [audience], {});
    expect(open.unopened).toBe(1);
    expect(open.msps).toEqual([]);
    expect((await openResult(result, [audience], {})).msps.map((m) => m.provider)).toEqual([
      'wire.example',
    ]);
  });
});

describe('the JSON API with a context and an identity', () => {
  let resolver: Resolver;
  let api: JsonApi;
  let agent: Agent;

  beforeAll(async () => {
    resolver = resolverFor('chat.example');
    api = await startJsonApi({ port: 0, cert: net.tls.cert, key: net.tls.key }, resolver);
    agent = new Agent({ connect: { ca: net.caPem }, allowH2: true });
  });

  afterAll(async () => {
    await agent?.close();
    await api?.close();
  });

  async function call(path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const response = await request(`${api.url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      dispatcher: agent,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    return { status: response.statusCode, json: JSON.parse(await response.body.text()) };
  }
  const q = (csi: string): string => encodeURIComponent(csi);

  it('filters GET and POST by the context, and applies the identity to both', async () => {
    const get = await call(`/v1/discover?csi=${q(CSI.contexts)}&context=business`);
    expect(get.status).toBe(200);
    expect(get.json).toMatchObject({ status: 'found' });
    expect((get.json as DiscoveryResult).msps.map((m) => m.provider)).toEqual([
      'wire.example',
      'text.example',
    ]);
    const post = await call('/v1/discover', {
      csis: [CSI.contexts, CSI.sameMsp],
      context: 'personal',
    });
    const results = (post.json as { results: DiscoveryResult[] }).results;
    // Wire is for every context; text is same-msp of another MSP.
    expect(results.map(providers)).toEqual([
      ['chat.example', 'text.example'],
      ['chat.example', 'wire.example'],
    ]);
    const plain = await call(`/v1/discover?csi=${q(CSI.sameMsp)}`);
    expect(providers(plain.json as DiscoveryResult)).toEqual(['chat.example', 'wire.example']);
  });

  it.each([
    ['GET, a context that is not one', `/v1/discover?csi=%2B442079460043&context=work`, undefined],
    ['GET, an empty context', `/v1/discover?csi=%2B442079460043&context=`, undefined],
    [
      'GET, a context given twice',
      `/v1/discover?csi=%2B442079460043&context=business&context=personal`,
      undefined,
    ],
    ['POST, a context that is not one', '/v1/discover', { csis: [], context: 'ctx:Soccer' }],
    ['POST, a context that is no string', '/v1/discover', { csis: [], context: 1 }],
    ['POST, a null context', '/v1/discover', { csis: [], context: null }],
  ])('refuses %s with 400 ERR_BAD_REQUEST, detail context', async (_what, path, body) => {
    const reply = await call(path, body);
    expect(reply.status).toBe(400);
    expect(reply.json).toMatchObject({ error: { code: 'ERR_BAD_REQUEST', detail: 'context' } });
  });

  it("keeps the other parameters' errors as they were", async () => {
    const bad = await call(`/v1/discover?context=business`);
    expect(bad.json).toMatchObject({ error: { code: 'ERR_BAD_REQUEST', detail: 'csi' } });
    const other = await call(`/v1/discover?csi=%2B442079460043&tag=business`);
    expect(other.json).toMatchObject({ error: { code: 'ERR_BAD_REQUEST', detail: 'tag' } });
    const csi = await call(`/v1/discover?csi=020&context=business`);
    expect(csi.json).toMatchObject({ error: { code: 'ERR_CSI_INVALID' } });
    const field = await call('/v1/discover', { csis: [], contexts: 'business' });
    expect(field.json).toMatchObject({ error: { code: 'ERR_BAD_REQUEST', detail: 'contexts' } });
  });

  it('opens boxes in the client, which sends the context and never the audience key', async () => {
    const client = createDiscoveryClient({ url: api.url, ca: net.caPem, msp: 'chat.example' });
    try {
      const one = await client.discover(CSI.mixed, {
        context: 'business',
        audienceKeys: [audience],
      });
      // The opened same-msp entry is for every context, and the client's MSP is chat.example.
      expect(providers(one)).toEqual(['wire.example', 'chat.example']);
      expect(one.msps.map((m) => m.audience)).toEqual([b64(audience.kid), b64(audience.kid)]);
      const many = await client.discoverMany([CSI.mixed, CSI.sealedOnly], {
        audienceKeys: [audience],
      });
      expect(many.map(providers)).toEqual([['wire.example', 'chat.example'], ['wire.example']]);
      expect(many).toEqual(
        await resolver.discoverMany([CSI.mixed, CSI.sealedOnly], { audienceKeys: [audience] }),
      );
    } finally {
      await client.close();
    }
  });

  it("keeps, in a client without an MSP, the same-msp entries the resolver's identity passed", async () => {
    const client = createDiscoveryClient({ url: api.url, ca: net.caPem });
    try {
      const result = await client.discover(CSI.sameMsp, { audienceKeys: [stranger] });
      expect(providers(result)).toEqual(['chat.example', 'wire.example']);
      // Here no public same-msp entry says which MSP the resolver vouched for: the opened
      // same-msp entry is dropped, and chat.example is Bob's public entry.
      const mixed = await client.discover(CSI.mixed, { audienceKeys: [audience] });
      expect(providers(mixed)).toEqual(['wire.example', 'chat.example']);
      expect(mixed.msps[1]?.key).toBe(b64(BOB.publicKey));
    } finally {
      await client.close();
    }
  });
});

describe('what the discovery client sends', () => {
  let server: Server;
  let url: string;
  const seen: Array<{ url: string; headers: IncomingHttpHeaders; body: string }> = [];
  let answer: DiscoveryResult;

  beforeAll(async () => {
    const resolver = resolverFor();
    answer = await resolver.discover(CSI.mixed);
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        seen.push({ url: req.url ?? '', headers: req.headers, body });
        const value =
          req.method === 'POST'
            ? {
                results: (JSON.parse(body) as { csis: string[] }).csis.map(() =>
                  resultJson(answer),
                ),
              }
            : resultJson(answer);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('sends the context, and no part of an audience key, in any request', async () => {
    const client = createDiscoveryClient({ url });
    try {
      const options = { context: 'business', audienceKeys: [audience] } as const;
      const one = await client.discover(CSI.mixed, options);
      const many = await client.discoverMany([CSI.mixed, CSI.mixed], options);
      for (const result of [one, ...many]) {
        expect(providers(result)).toEqual(['wire.example']);
        expect(result.msps[0]?.audience).toBe(b64(audience.kid));
      }
    } finally {
      await client.close();
    }
    expect(seen).toHaveLength(2);
    expect(seen[0]?.url).toContain('context=business');
    expect(JSON.parse(seen[1]?.body ?? '')).toEqual({
      csis: [CSI.mixed, CSI.mixed],
      context: 'business',
    });
    const secrets = [audience.secretKey, audience.publicKey].flatMap((k) => [
      b64(k),
      Buffer.from(k).toString('base64'),
      Buffer.from(k).toString('hex'),
    ]);
    for (const request of seen) {
      const sent = `${request.url}\n${JSON.stringify(request.headers)}\n${request.body}`;
      for (const secret of secrets) expect(sent).not.toContain(secret);
      expect(sent).not.toContain('mimi-audience:');
    }
  });
});
