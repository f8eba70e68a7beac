import { csiToName, parseCsi, record as record_, type KeyconfData } from '@mimi-discovery/common';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DiscoveryClientError,
  createDiscoveryClient,
  createObliviousClient,
  DEFAULT_TOKENS_PER_FETCH,
  MAX_TOKENS_PER_FETCH,
  tokensPerFetchWithin,
  type DiscoveryResult,
  type ObliviousClient,
  type ObliviousClientOptions,
  type ResolvedAnswer,
  type Resolver,
  type ValidationStatus,
} from '../src/index.js';
import { TOKEN_REQUESTS_IN_FLIGHT } from '../src/oblivious/wallet.js';
import {
  encodeKeyConfig,
  generateAudienceKey,
  generateOhttpKeyPair,
  sealMsps,
  type OhttpKeyConfig,
} from '@mimi-discovery/common';
import { rejectionOf } from '../../../test/helpers/rejection.js';
import {
  createIssuerKey,
  doubleTls,
  startGatewayDouble,
  startIssuerDouble,
  startRelayDouble,
  type DoubleTls,
  type GatewayDouble,
  type IssuerDouble,
  type IssuerKey,
  type RelayDouble,
} from './oblivious-doubles.js';
import { foundResult } from '../../../test/helpers/resolver-double.js';

// The oblivious client against doubles of the relay, the gateway and the issuer that follow the
// issue 13 contract's wire agreements (oblivious-doubles.ts), each a real HTTPS server.

const NOW = 1_800_000_000;
const now = (): number => NOW;

const ALICE = 'tel:+442079460018';
const BOB = 'mailto:bob@example.com';
const FOUND = foundResult(ALICE, { iat: NOW - 100, exp: NOW + 86_400 });
const EMPTY: DiscoveryResult = { csi: BOB, status: 'empty', msps: [], mappings: [], ttl: 600 };
const RESULTS = new Map<string, DiscoveryResult>([
  [ALICE, FOUND],
  [BOB, EMPTY],
]);

/** `n` distinct phone numbers, none in the table. */
function numbers(n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, i) => `+44 20 7946 ${String(1000 + from + i)}`);
}

function rejection(call: Promise<unknown>): Promise<DiscoveryClientError> {
  return rejectionOf(call, DiscoveryClientError);
}

let tls: DoubleTls;
let issuerKey: IssuerKey;
let issuer: IssuerDouble;
let gateway: GatewayDouble;
let relay: RelayDouble;
const clients: ObliviousClient[] = [];

function client(options: Partial<ObliviousClientOptions> = {}): ObliviousClient {
  const c = createObliviousClient({
    relay: relay.url,
    ca: tls.ca.certPem,
    credential: 'alice-credential',
    // Blind RSA is slow in JavaScript: tests fetch few tokens at a time.
    tokensPerFetch: 2,
    now,
    ...options,
  });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  tls = await doubleTls();
  issuer = await startIssuerDouble(tls, {
    credentials: ['alice-credential', 'bob-credential'],
    tokensPerPeriod: 1000,
    now,
  });
  issuerKey = await createIssuerKey(issuer.name, NOW - 3600, NOW + 86_400);
  issuer.keys = [issuerKey];
  gateway = await startGatewayDouble(tls, { results: RESULTS, now });
  relay = await startRelayDouble(tls, gateway.url);
}, 60_000);

beforeEach(() => {
  gateway.issuers = [
    {
      name: issuer.name,
      spki: issuerKey.spki,
      notBefore: issuerKey.notBefore,
      notAfter: issuerKey.notAfter,
    },
  ];
  gateway.csisPerToken = 100;
  gateway.tamper = undefined;
  gateway.replayNext = 0;
  gateway.inner.length = 0;
  relay.forwarded.length = 0;
  relay.requests.length = 0;
  issuer.requests.length = 0;
  issuer.issued.clear();
  issuer.tokensPerPeriod = 1000;
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  await relay?.close();
  await gateway?.close();
  await issuer?.close();
});

const tokenRequests = (): number =>
  issuer.requests.filter((r) => r === 'POST /token-request').length;

describe('the oblivious client on the honest path', () => {
  it('discovers one CSI and a batch in input order, with the results the resolver gave', async () => {
    const c = client();
    expect(await c.discover('+44 (0)20 7946 0018')).toEqual(FOUND);
    const inputs = ['Bob@Example.COM', 'not a number', ALICE, '+44 20 7946 0099'];
    const results = await c.discoverMany(inputs);
    expect(results.map((r) => r.status)).toEqual(['empty', 'error', 'found', 'none']);
    expect(results[0]).toEqual(EMPTY);
    expect(results[1]).toMatchObject({ csi: 'not a number', error: { reason: 'invalid-csi' } });
    expect(await c.discoverMany([])).toEqual([]);
  });

  it('fetches tokens only when the gateway asks, then spends one per inner request', async () => {
    const c = client({ tokensPerFetch: 2 });
    expect(issuer.requests).toEqual([]);
    await c.discover(ALICE);
    // The probe carried no CSI and no token; the request after it carried one.
    expect(gateway.inner.map((i) => [i.token, i.status])).toEqual([
      [false, 401],
      [true, 200],
    ]);
    expect(new TextDecoder().decode(gateway.inner[0]?.request.body)).toBe('{"csis":[]}');
    expect(issuer.requests).toEqual([
      'GET /.well-known/private-token-issuer-directory',
      'POST /token-request',
      'POST /token-request',
    ]);
    await c.discover(BOB);
    expect(tokenRequests()).toBe(2);
    await c.discover(ALICE);
    expect(tokenRequests()).toBe(4);
    expect(gateway.spent.size).toBeGreaterThanOrEqual(3);
  });

  it('sends a batch in chunks of csisPerToken, one token each, results in input order', async () => {
    gateway.csisPerToken = 8;
    const c = client({ tokensPerFetch: 4 });
    const inputs = [...numbers(11), ALICE, ...numbers(10, 50), BOB];
    const results = await c.discoverMany(inputs);
    expect(results.map((r) => r.csi)).toEqual(inputs.map((i) => parseCsi(i)));
    expect(results[11]).toEqual(FOUND);
    expect(results[22]).toEqual(EMPTY);
    const chunks = gateway.inner.filter((i) => i.token);
    expect(chunks).toHaveLength(3);
    for (const chunk of chunks) {
      const { csis } = JSON.parse(new TextDecoder().decode(chunk.request.body)) as {
        csis: string[];
      };
      expect(csis.length).toBeLessThanOrEqual(8);
      expect(chunk.status).toBe(200);
    }
    const spentBefore = gateway.spent.size;
    await c.discoverMany(numbers(8, 200));
    expect(gateway.spent.size).toBe(spentBefore + 1);
    expect(tokenRequests()).toBe(4);
  });

  it('splits again, without losing the token, when the gateway lowers csisPerToken', async () => {
    const c = client({ tokensPerFetch: 4 });
    await c.discover(ALICE); // learns csisPerToken 100
    gateway.csisPerToken = 3;
    const inputs = numbers(7, 300);
    const spentBefore = gateway.spent.size;
    const results = await c.discoverMany(inputs);
    expect(results.map((r) => r.csi)).toEqual(inputs.map((i) => parseCsi(i)));
    expect(gateway.inner.at(-4)?.status).toBe(413);
    // 413 spends nothing: three chunks, three tokens, the refused one among them.
    expect(gateway.spent.size).toBe(spentBefore + 3);
    expect(tokenRequests()).toBe(4);
  });

  it('answers many concurrent callers, sharing one token fetch', async () => {
    const c = client({ tokensPerFetch: 8 });
    const inputs = [...numbers(7, 400), ALICE];
    const results = await Promise.all(inputs.map((i) => c.discover(i)));
    expect(results.map((r) => r.csi)).toEqual(inputs.map((i) => parseCsi(i)));
    expect(tokenRequests()).toBe(8);
    expect(issuer.requests.filter((r) => r.startsWith('GET'))).toHaveLength(1);
    // One probe for all of them.
    expect(gateway.inner.filter((i) => !i.token)).toHaveLength(1);
  });

  it('sends a DNS message inside Oblivious HTTP, with a token', async () => {
    const c = client();
    const query = Uint8Array.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    const answer = await c.dnsQuery(query);
    expect(Buffer.from(answer).toString('hex')).toBe('123481000001000000000000');
    const last = gateway.inner.at(-1);
    expect(last?.request).toMatchObject({ method: 'POST', path: '/dns-query' });
    expect(last?.token).toBe(true);
  });

  it('is what createDiscoveryClient returns given a relay', async () => {
    const c = createDiscoveryClient({
      relay: { relay: relay.url, ca: tls.ca.certPem, credential: 'bob-credential', now },
    });
    try {
      expect(await c.discover(ALICE)).toEqual(FOUND);
    } finally {
      await c.close();
    }
  });
});

describe('the oblivious client and a sender', () => {
  it('sends the context inside, never an audience key, and opens the boxes itself', async () => {
    const audience = await generateAudienceKey();
    const csi = 'tel:+442079460077';
    const recipient = new Uint8Array(32).fill(7);
    const box = await sealMsps(
      csi,
      recipient,
      [{ provider: 'wire.example', tags: ['business', 'pref:1'] }],
      audience,
    );
    const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
    const sealed = foundResult(csi, {
      msps: [{ provider: 'chat.example', tags: ['personal'] }],
      sealed: [{ kid: b64(box.kid), enc: b64(box.enc), ct: b64(box.ct) }],
      key: b64(recipient),
    });
    RESULTS.set(csi, sealed);
    try {
      const c = client();
      const options = { context: 'business', audienceKeys: [audience] } as const;
      const one = await c.discover(csi, options);
      const [many] = await c.discoverMany([csi], options);
      for (const result of [one, many]) {
        // The gateway double does not filter: the client applies the context to the entries
        // it ranks again, the public personal one included.
        expect(result?.msps.map((m) => [m.provider, m.audience])).toEqual([
          ['wire.example', b64(audience.kid)],
        ]);
        expect(result?.mappings[0]?.opened).toHaveLength(1);
      }
      const requests = gateway.inner.filter((i) => i.token).map((i) => i.request);
      expect(requests.map((r) => r.method)).toEqual(['GET', 'POST']);
      expect(requests[0]?.path).toContain('&context=business');
      expect(JSON.parse(new TextDecoder().decode(requests[1]?.body))).toEqual({
        csis: [csi],
        context: 'business',
      });
      const secrets = [audience.secretKey, audience.publicKey].map(b64);
      for (const r of requests) {
        const sent = `${r.path}${JSON.stringify(r.headers)}${new TextDecoder().decode(r.body)}`;
        for (const secret of secrets) expect(sent).not.toContain(secret);
      }
    } finally {
      RESULTS.delete(csi);
    }
  });
});

describe('what the relay sees', () => {
  it('forwards no CSI: neither digits, nor canonical CSI, nor the hashed name', async () => {
    const c = client();
    const inputs = [ALICE, BOB, 'alice@example.com', ...numbers(30, 500)];
    await c.discoverMany(inputs);
    await c.discover('+44 20 7946 0018');
    const seen = Buffer.concat(relay.forwarded).toString('latin1');
    expect(seen.length).toBeGreaterThan(1000);
    for (const input of inputs) {
      const csi = parseCsi(input);
      const name = csiToName(csi);
      // The CSI as sent, its canonical form and digits, its name in the tree and, for an email
      // address, the hashed local part (the name's first label).
      const needles = [input, csi, name, name.replace(/\.e164\..*$/, '').replace(/\./g, '')];
      if (csi.startsWith('tel:')) needles.push(csi.slice(5), csi.slice(4));
      else needles.push(csi.slice(7), name.split('.')[0] as string);
      for (const needle of needles) expect(seen.includes(needle), needle).toBe(false);
    }
    // The gateway did get them, so the test would see them if they were in the clear.
    const inner = gateway.inner.map((i) => new TextDecoder().decode(i.request.body)).join('');
    expect(inner).toContain('bob@example.com');
  });
});

describe('tokens the gateway refuses', () => {
  it('drops a token found spent (replayed) and retries once with a fresh one', async () => {
    const c = client();
    await c.discover(BOB);
    gateway.replayNext = 1;
    expect(await c.discover(ALICE)).toEqual(FOUND);
    const last = gateway.inner.slice(-2).map((i) => i.status);
    expect(last).toEqual([401, 200]);
  });

  it("reports the gateway's code when the fresh token is refused too", async () => {
    const c = client();
    await c.discover(BOB);
    gateway.replayNext = 2;
    const error = await rejection(c.discover(ALICE));
    expect(error).toMatchObject({ code: 'ERR_TOKEN_SPENT', status: 401 });
  });

  it('drops the tokens of an issuer key the gateway no longer accepts, and fetches under the new key', async () => {
    const c = client();
    await c.discover(BOB);
    const next = await createIssuerKey(issuer.name, NOW - 60, NOW + 86_400);
    issuer.keys = [next, issuerKey];
    gateway.issuers = [
      { name: issuer.name, spki: next.spki, notBefore: next.notBefore, notAfter: next.notAfter },
    ];
    const before = tokenRequests();
    expect(await c.discover(ALICE)).toEqual(FOUND);
    expect(gateway.inner.slice(-2).map((i) => i.status)).toEqual([401, 200]);
    expect(tokenRequests()).toBe(before + 2);
    issuer.keys = [issuerKey];
  }, 30_000);

  it('asks for a credential when the gateway wants tokens and none was given', async () => {
    const c = createObliviousClient({ relay: relay.url, ca: tls.ca.certPem, now });
    clients.push(c);
    expect((await rejection(c.discover(ALICE))).code).toBe('ERR_CREDENTIAL_REQUIRED');
    expect(issuer.requests).toEqual([]);
  });

  it("reports the issuer's refusal of an unknown credential", async () => {
    const c = client({ credential: 'mallory' });
    const error = await rejection(c.discover(ALICE));
    expect(error).toMatchObject({
      code: 'ERR_ISSUER_REFUSED',
      status: 401,
      detail: 'ERR_UNAUTHENTICATED',
    });
  });

  it('does not send the credential to an issuer it was not told to use', async () => {
    const c = client({ issuers: ['issuer.example:443'] });
    expect((await rejection(c.discover(ALICE))).code).toBe('ERR_TOKEN_CHALLENGE');
    expect(issuer.requests).toEqual([]);
  });
});

describe('an issuer out of quota', () => {
  it('reports ERR_TOKENS_EXHAUSTED with every result, those not obtained as errors, never none', async () => {
    issuer.tokensPerPeriod = 3;
    gateway.csisPerToken = 2;
    const c = client({ tokensPerFetch: 10 });
    const inputs = [ALICE, ...numbers(9, 600)];
    const error = await rejection(c.discoverMany(inputs));
    expect(error.code).toBe('ERR_TOKENS_EXHAUSTED');
    expect(error.retryAfter).toBeGreaterThan(0);
    const results = error.results ?? [];
    expect(results.map((r) => r.csi)).toEqual(inputs.map((i) => parseCsi(i)));
    const obtained = results.filter((r) => r.status !== 'error');
    const missing = results.filter((r) => r.status === 'error');
    expect(obtained).toHaveLength(6);
    expect(missing).toHaveLength(4);
    for (const r of missing) {
      expect(r.error).toMatchObject({ reason: 'limit' });
      expect(r.error?.detail).toMatch(/ERR_TOKENS_EXHAUSTED/);
    }
    // The issuer is not asked again within its retry-after, and nothing is sent for want of a token.
    const asked = issuer.requests.length;
    const sent = gateway.inner.length;
    const again = await rejection(c.discover(ALICE));
    expect(again.code).toBe('ERR_TOKENS_EXHAUSTED');
    expect(again.results?.[0]).toMatchObject({ csi: ALICE, status: 'error' });
    expect(issuer.requests.length).toBe(asked);
    expect(gateway.inner.length).toBe(sent);
    // Another user, with tokens, is still served.
    expect(await client({ credential: 'bob-credential' }).discover(ALICE)).toEqual(FOUND);
  });
});

describe('key consistency', () => {
  function keyconf(
    config: OhttpKeyConfig,
    status: ValidationStatus,
    validity: [number, number] = [NOW - 60, NOW + 3600],
  ): Pick<Resolver, 'resolve'> & { asked: string[] } {
    const asked: string[] = [];
    return {
      asked,
      async resolve(name, type): Promise<ResolvedAnswer> {
        asked.push(`${name} ${type}`);
        const data: KeyconfData = {
          kind: 'ohttp',
          config: encodeKeyConfig(config),
          notBefore: validity[0],
          notAfter: validity[1],
        };
        const record = record_(name, 'KEYCONF', data, 300);
        return { rcode: 'NOERROR', status, answers: [record], authorities: [] };
      },
    };
  }
  const keyName = 'resolver.chat.example.email.mimi.arpa';

  it('uses the key configuration the tree publishes', async () => {
    const resolver = keyconf((gateway.keys[0] as { config: OhttpKeyConfig }).config, 'secure');
    const c = client({ keyCheck: { resolver, keyName } });
    expect(await c.discover(ALICE)).toEqual(FOUND);
    expect(resolver.asked).toEqual([`${keyName} KEYCONF`]);
  });

  it.each<[string, () => Promise<Pick<Resolver, 'resolve'>>]>([
    ['another key', async () => keyconf((await generateOhttpKeyPair(1)).config, 'secure')],
    [
      'an insecure answer',
      async () => keyconf(gateway.keys[0]?.config as OhttpKeyConfig, 'insecure'),
    ],
    ['a bogus answer', async () => keyconf(gateway.keys[0]?.config as OhttpKeyConfig, 'bogus')],
    [
      'an expired entry',
      async () =>
        keyconf(gateway.keys[0]?.config as OhttpKeyConfig, 'secure', [NOW - 7200, NOW - 1]),
    ],
    [
      'an entry not yet valid',
      async () =>
        keyconf(gateway.keys[0]?.config as OhttpKeyConfig, 'secure', [NOW + 10, NOW + 7200]),
    ],
  ])(
    'refuses a key configuration checked against %s, before any CSI is sent',
    async (_what, make) => {
      const c = client({ keyCheck: { resolver: await make(), keyName } });
      const error = await rejection(c.discoverMany([ALICE, BOB]));
      expect(error.code).toBe('ERR_KEY_INCONSISTENT');
      expect(relay.requests).toEqual(['GET']);
      expect(gateway.inner).toEqual([]);
      expect(issuer.requests).toEqual([]);
    },
  );

  it('fetches the key configurations again when the gateway no longer knows the key id', async () => {
    const c = client();
    await c.discover(ALICE);
    const old = gateway.keys;
    gateway.keys = [await generateOhttpKeyPair(2)];
    try {
      expect(await c.discover(BOB)).toEqual(EMPTY);
      expect(relay.requests.filter((m) => m === 'GET')).toHaveLength(2);
    } finally {
      gateway.keys = old;
    }
  });
});

describe('a hostile relay or gateway', () => {
  it.each<[GatewayDouble['tamper'] & string, RegExp]>([
    ['garbage', /does not decrypt/],
    ['truncated', /does not decrypt/],
    ['wrong-type', /not message\/ohttp-res/],
    ['inner-garbage', /not Binary HTTP/],
    ['other-csi', /for another CSI/],
    ['short-batch', /did not answer 2 results/],
  ])('gets a clear error for a %s response', async (tamper, message) => {
    const c = client();
    await c.discover(BOB);
    gateway.tamper = tamper;
    const error = await rejection(c.discoverMany([ALICE, BOB]));
    expect(error.code).toBe('ERR_API_RESPONSE');
    expect(error.message).toMatch(message);
  });

  it('refuses an oversized response', async () => {
    const c = client();
    await c.discover(BOB);
    gateway.tamper = 'oversized';
    const error = await rejection(
      c.dnsQuery(Uint8Array.from([1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
    );
    expect(error.code).toBe('ERR_API_RESPONSE');
    expect(error.message).toMatch(/more than \d+ octets/);
  });

  it('refuses key configurations that do not decode, and sends nothing', async () => {
    gateway.tamper = 'keys-garbage';
    const c = client();
    const error = await rejection(c.discover(ALICE));
    expect(error.code).toBe('ERR_API_RESPONSE');
    expect(error.message).toMatch(/do not decode/);
    expect(relay.requests).toEqual(['GET']);
  });

  it('reports a relay that refuses, with its status', async () => {
    const c = createObliviousClient({
      relay: relay.url.replace('/ohttp/resolver', '/ohttp/elsewhere'),
      ca: tls.ca.certPem,
      now,
    });
    clients.push(c);
    expect(await rejection(c.discover(ALICE))).toMatchObject({
      code: 'ERR_RELAY_REFUSED',
      status: 404,
    });
  });

  it('does not trust the relay without its CA', async () => {
    const c = createObliviousClient({ relay: relay.url, credential: 'alice-credential', now });
    clients.push(c);
    expect((await rejection(c.discover(ALICE))).code).toBe('ERR_API_UNREACHABLE');
  });

  it('refuses a relay URL that is not https', () => {
    expect(() => createObliviousClient({ relay: 'http://127.0.0.1:1/ohttp/resolver' })).toThrow(
      TypeError,
    );
  });
});

describe('token fetches are bounded', () => {
  it(`sends a fetch's token requests ${TOKEN_REQUESTS_IN_FLIGHT} at a time at most, not one by one`, async () => {
    const c = client({ tokensPerFetch: TOKEN_REQUESTS_IN_FLIGHT + 4 });
    issuer.maxInFlight = 0;
    expect(await c.discover(ALICE)).toEqual(FOUND);
    expect(tokenRequests()).toBe(TOKEN_REQUESTS_IN_FLIGHT + 4);
    expect(issuer.maxInFlight).toBeGreaterThan(1);
    expect(issuer.maxInFlight).toBeLessThanOrEqual(TOKEN_REQUESTS_IN_FLIGHT);
  });

  it.each<[number | undefined, number]>([
    [undefined, DEFAULT_TOKENS_PER_FETCH],
    [0, 1],
    [-5, 1],
    [2.7, 2],
    [10_000, MAX_TOKENS_PER_FETCH],
    [Number.NaN, DEFAULT_TOKENS_PER_FETCH],
  ])('asks for tokensPerFetch %s as %i', (given, used) => {
    expect(tokensPerFetchWithin(given)).toBe(used);
  });
});
