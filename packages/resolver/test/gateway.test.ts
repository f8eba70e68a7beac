import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildQuery,
  createLocalCa,
  createZoneKey,
  decodeMessage,
  encodeMessage,
  extendedDnsErrors,
  issueServerCertificate,
  metricsText,
  parseCsi,
  record,
  signRRset,
  silentLogger,
  type Message,
} from '@mimi-discovery/common';
import {
  OHTTP_KEY_PROBLEM_TYPE,
  resultJsonText,
  startResolverServer,
  type DiscoveryResult,
  type ResolvedAnswer,
  type RunningResolverServer,
} from '../src/index.js';
import {
  ODOH_CONTENT_TYPE,
  OHTTP_REQUEST_TYPE,
  PRIVATE_TOKEN_EDNS_OPTION,
  authorizationHeader,
  decodeOdohConfigs,
  decryptOdohResponse,
  encapsulateRequest,
  encryptOdohQuery,
  parseChallengeHeader,
  type OdohConfig,
  type OhttpKeyConfig,
} from '@mimi-discovery/common';
import { createFakeClock } from '../../../test/helpers/clock.js';
import { dohPost, readQueryLog } from '../../../test/helpers/query-log.js';
import {
  foundResult,
  invalidCsiResult,
  resolverDouble,
} from '../../../test/helpers/resolver-double.js';
import {
  bodyText,
  createTestIssuer,
  fetchKeyConfigs,
  headerValues,
  innerRequest,
  sendOhttp,
  writeIssuerKeysFile,
  type OhttpReply,
  type TestIssuer,
} from './oblivious-helpers.js';

// The gateway on a real resolver server (JSON API, DoH front end), in front of a test double
// of the resolver: requests go straight from a client that stands for the relay (leaving from
// 127.0.0.2), encapsulated as a sender's app would, with tokens of a test issuer.

const DAY = 86_400;
const ISSUER = 'issuer.test:8443';
const ORIGIN = 'resolver.test';
const CSIS_PER_TOKEN = 3;
const RELAY_ADDRESS = '127.0.0.2';
const DEADLINE_MS = 2_000;

const ALICE = 'tel:+442079460018';
const BOB = 'mailto:bob@example.com';
const ALICE_PATH = `/v1/discover?csi=${encodeURIComponent(ALICE)}`;
const BOB_PATH = `/v1/discover?csi=${encodeURIComponent(BOB)}`;
/** A CSI whose discovery never ends: the gateway's deadline answers for it. */
const HANGS = 'tel:+442079460077';

const RESULTS: ReadonlyMap<string, DiscoveryResult> = new Map([
  [ALICE, foundResult(ALICE, { msps: [{ provider: 'chat.example', tags: ['primary'] }] })],
  [BOB, { csi: BOB, status: 'empty', msps: [], mappings: [], ttl: 600 }],
]);

async function discover(input: string): Promise<DiscoveryResult> {
  let csi: string;
  try {
    csi = parseCsi(input);
  } catch (error) {
    return invalidCsiResult(input, error);
  }
  if (csi === HANGS) return new Promise(() => undefined);
  return RESULTS.get(csi) ?? { csi, status: 'none', msps: [], mappings: [], ttl: 3600 };
}

const ZONE = '4.4.e164.mimi.arpa';
const NAME = `8.1.0.0.6.4.9.7.0.2.${ZONE}`;
const zoneKey = createZoneKey(ZONE, { seed: new Uint8Array(32).fill(5) });
const map = record(NAME, 'MAP', new Uint8Array([0xa1, 0x61, 0x76, 0x01]), 300);
const mapSig = signRRset([map], zoneKey, { inception: 1_767_225_600, expiration: 1_769_817_600 });

const resolver = resolverDouble({
  discover,
  discoverCsi: (csi) => discover(csi),
  discoverMany: (inputs) => Promise.all(inputs.map(discover)),
  async discoverManyJson(inputs) {
    const results = await Promise.all(inputs.map(discover));
    return { results, json: results.map((r) => resultJsonText(r)) };
  },
  async resolve(name): Promise<ResolvedAnswer> {
    return name === NAME
      ? { rcode: 'NOERROR', status: 'secure', answers: [map, mapSig], authorities: [] }
      : { rcode: 'NXDOMAIN', status: 'secure', answers: [], authorities: [] };
  },
});

const clock = createFakeClock(Date.UTC(2027, 0, 1));
let dir: string;
let certPem: string;
let keyPem: string;
let caPem: string;
let server: RunningResolverServer;
let relay: Agent;
let direct: Agent;
let issuer: TestIssuer;
/** A second key of the issuer, valid only ten minutes. */
let shortLived: TestIssuer;
let config: OhttpKeyConfig;

async function start(): Promise<RunningResolverServer> {
  return startResolverServer(
    {
      listen: { doh: 0, api: 0 },
      tls: { cert: certPem, key: keyPem },
      gateway: {
        keyDir: join(dir, 'keys'),
        dataDir: join(dir, 'data'),
        originName: ORIGIN,
        csisPerToken: CSIS_PER_TOKEN,
        issuers: [{ name: ISSUER, keysFile: join(dir, 'issuer-public-keys.json') }],
        deadlineMs: DEADLINE_MS,
      },
      queryLog: { path: join(dir, 'query.log'), peer: true, api: true },
    },
    resolver,
    { now: clock.seconds, log: silentLogger },
  );
}

function apiUrl(): string {
  const url = server.api?.url;
  if (url === undefined) throw new Error('no API');
  return url;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gateway-'));
  const ca = await createLocalCa();
  const leaf = await issueServerCertificate(ca, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  ({ certPem, keyPem } = leaf);
  caPem = ca.certPem;
  [issuer, shortLived] = await Promise.all([createTestIssuer(ISSUER), createTestIssuer(ISSUER)]);
  const now = clock.seconds();
  writeIssuerKeysFile(join(dir, 'issuer-public-keys.json'), [
    { spki: issuer.spki, notBefore: now - 60, notAfter: now + 30 * DAY },
    { spki: shortLived.spki, notBefore: now - 60, notAfter: now + 600 },
  ]);
  server = await start();
  relay = new Agent({ localAddress: RELAY_ADDRESS, connect: { ca: caPem }, allowH2: true });
  direct = new Agent({ connect: { ca: caPem }, allowH2: true });
  [config] = (await fetchKeyConfigs(apiUrl(), relay)) as [OhttpKeyConfig];
}, 60_000);

afterAll(async () => {
  await relay?.close();
  await direct?.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The TokenChallenge of the 401 the gateway answers a request without a token with. */
let challenge: Uint8Array | undefined;

async function token(from: TestIssuer = issuer): Promise<Uint8Array> {
  if (challenge === undefined) {
    const reply = inner(await send('GET', `/v1/discover?csi=${encodeURIComponent(ALICE)}`));
    const first = parseChallengeHeader(headerValues(reply, 'www-authenticate')[0] ?? '')[0];
    if (first === undefined) throw new Error('no challenge');
    challenge = first.challenge;
  }
  return from.issue(challenge);
}

function send(
  method: string,
  path: string,
  options: { token?: Uint8Array; json?: unknown; body?: Uint8Array; type?: string } = {},
): Promise<OhttpReply> {
  const headers: [string, string][] = [];
  if (options.token !== undefined)
    headers.push(['authorization', authorizationHeader(options.token)]);
  let body = options.body ?? new Uint8Array();
  if (options.json !== undefined) {
    headers.push(['content-type', 'application/json']);
    body = Buffer.from(JSON.stringify(options.json));
  }
  if (options.type !== undefined) headers.push(['content-type', options.type]);
  return sendOhttp(apiUrl(), relay, config, innerRequest(method, path, headers, body));
}

function inner(reply: OhttpReply): Extract<OhttpReply, { kind: 'inner' }>['response'] {
  if (reply.kind !== 'inner') throw new Error(`outer ${reply.status}: ${reply.body}`);
  return reply.response;
}

function errorOf(reply: OhttpReply): { code: string; detail?: unknown } {
  return (JSON.parse(bodyText(inner(reply))) as { error: { code: string; detail?: unknown } })
    .error;
}

async function directApi(method: 'GET' | 'POST', path: string, json?: unknown) {
  const response = await request(`${apiUrl()}${path}`, {
    method,
    dispatcher: direct,
    ...(json === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(json) }),
  });
  return {
    status: response.statusCode,
    cacheControl: response.headers['cache-control'],
    body: await response.body.text(),
  };
}

describe('key configs', () => {
  it('serves the OHTTP key configs and the ODoH configs with a max-age', async () => {
    const keys = await request(`${apiUrl()}/.well-known/ohttp-gateway`, { dispatcher: relay });
    expect(keys.statusCode).toBe(200);
    expect(keys.headers['content-type']).toBe('application/ohttp-keys');
    expect(keys.headers['cache-control']).toBe('max-age=3600');
    await keys.body.arrayBuffer();
    const odoh = await request(`${apiUrl()}/.well-known/odohconfigs`, { dispatcher: relay });
    expect(odoh.statusCode).toBe(200);
    const configs = decodeOdohConfigs(new Uint8Array(await odoh.body.arrayBuffer()));
    expect(configs).toHaveLength(1);
    expect(config.keyId).toBe(0);
  });
});

describe('tokens', () => {
  it('answers a request without a token with 401 and a challenge per valid issuer key', async () => {
    const reply = inner(await send('GET', `/v1/discover?csi=${encodeURIComponent(ALICE)}`));
    expect(reply.status).toBe(401);
    expect(JSON.parse(bodyText(reply))).toMatchObject({
      error: { code: 'ERR_TOKEN_REQUIRED', detail: { csisPerToken: CSIS_PER_TOKEN } },
    });
    const challenges = headerValues(reply, 'www-authenticate').flatMap(parseChallengeHeader);
    expect(challenges).toHaveLength(2);
    for (const c of challenges) {
      expect(c.issuerName).toBe(ISSUER);
      expect(c.originInfo).toEqual([ORIGIN]);
    }
    expect(challenges.map((c) => Buffer.from(c.tokenKey).toString('hex')).sort()).toEqual(
      [issuer.spki, shortLived.spki].map((k) => Buffer.from(k).toString('hex')).sort(),
    );
  });

  it('refuses a token that is not one with ERR_TOKEN_INVALID', async () => {
    const forged = await token();
    forged.set([(forged.at(-1) ?? 0) ^ 1], forged.length - 1);
    expect(errorOf(await send('GET', ALICE_PATH, { token: forged }))).toMatchObject({
      code: 'ERR_TOKEN_INVALID',
    });
    const reply = await sendOhttp(
      apiUrl(),
      relay,
      config,
      innerRequest('GET', ALICE_PATH, [['authorization', 'Bearer abc']]),
    );
    expect(errorOf(reply).code).toBe('ERR_TOKEN_INVALID');
  });

  it('refuses a replayed token with ERR_TOKEN_SPENT, also after a restart on the same dataDir', async () => {
    const t = await token();
    expect(inner(await send('GET', ALICE_PATH, { token: t })).status).toBe(200);
    const again = inner(await send('GET', ALICE_PATH, { token: t }));
    expect(again.status).toBe(401);
    expect(errorOf({ kind: 'inner', response: again }).code).toBe('ERR_TOKEN_SPENT');
    await server.close();
    server = await start();
    const afterRestart = await send('GET', ALICE_PATH, { token: t });
    expect(errorOf(afterRestart).code).toBe('ERR_TOKEN_SPENT');
    // The same keys after the restart: the client's config still opens.
    expect(inner(await send('GET', ALICE_PATH, { token: await token() })).status).toBe(200);
  });

  it('serves exactly one of concurrent requests that redeem one token', async () => {
    const t = await token();
    const replies = await Promise.all(
      Array.from({ length: 8 }, () => send('GET', BOB_PATH, { token: t })),
    );
    const statuses = replies.map((r) => inner(r).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(replies.filter((r) => inner(r).status === 401).map((r) => errorOf(r).code)).toEqual(
      Array(7).fill('ERR_TOKEN_SPENT'),
    );
  });

  it('refuses a batch over csisPerToken with 413 and leaves the token unspent', async () => {
    const t = await token();
    const tooMany = inner(
      await send('POST', '/v1/discover', { token: t, json: { csis: [ALICE, BOB, ALICE, BOB] } }),
    );
    expect(tooMany.status).toBe(413);
    expect(JSON.parse(bodyText(tooMany))).toMatchObject({
      error: { code: 'ERR_BATCH_TOO_LARGE', detail: { csisPerToken: CSIS_PER_TOKEN } },
    });
    const fits = inner(
      await send('POST', '/v1/discover', { token: t, json: { csis: [ALICE, BOB, ALICE] } }),
    );
    expect(fits.status).toBe(200);
  });

  it('leaves a token unspent when the request is malformed', async () => {
    const t = await token();
    const bad = inner(await send('GET', '/v1/discover?csi=not-a-csi', { token: t }));
    expect(bad.status).toBe(400);
    expect(inner(await send('GET', ALICE_PATH, { token: t })).status).toBe(200);
  });

  it('refuses the token of an issuer key past its not-after with ERR_TOKEN_KEY_EXPIRED', async () => {
    const t = await token(shortLived);
    clock.advance(601);
    expect(errorOf(await send('GET', ALICE_PATH, { token: t })).code).toBe('ERR_TOKEN_KEY_EXPIRED');
    // Its key is no longer offered.
    const reply = inner(await send('GET', ALICE_PATH));
    expect(headerValues(reply, 'www-authenticate')).toHaveLength(1);
  });

  it('counts redemptions by outcome, without addresses or CSIs', async () => {
    const text = await metricsText(server.metrics.registry);
    expect(text).toMatch(/resolver_gateway_tokens_total\{outcome="spent"\} [1-9]/);
    expect(text).toMatch(
      /resolver_gateway_requests_total\{path="inner:\/v1\/discover",status="401"\}/,
    );
    expect(text).not.toContain(RELAY_ADDRESS);
    expect(text).not.toContain('442079460018');
  });
});

describe('inner requests', () => {
  it('answers GET and POST /v1/discover exactly as the direct API', async () => {
    for (const csi of [ALICE, BOB, 'tel:+15550100']) {
      const path = `/v1/discover?csi=${encodeURIComponent(csi)}`;
      const directly = await directApi('GET', path);
      const through = inner(await send('GET', path, { token: await token() }));
      expect(through.status).toBe(directly.status);
      expect(bodyText(through)).toBe(directly.body);
      expect(headerValues(through, 'cache-control')).toEqual([directly.cacheControl]);
    }
    const batch = { csis: [ALICE, 'not a csi', BOB] };
    const directly = await directApi('POST', '/v1/discover', batch);
    const through = inner(
      await send('POST', '/v1/discover', { token: await token(), json: batch }),
    );
    expect(through.status).toBe(200);
    expect(bodyText(through)).toBe(directly.body);
  });

  it('answers an inner DoH query as the DoH front end does', async () => {
    const query = encodeMessage(
      buildQuery(NAME, 'MAP', { dnssecOk: true, recursionDesired: true }),
    );
    const doh = server.dns?.doh?.url;
    if (doh === undefined) throw new Error('no DoH');
    const directly = await dohPost(doh, query, caPem);
    const through = inner(
      await send('POST', '/dns-query', {
        token: await token(),
        body: query,
        type: 'application/dns-message',
      }),
    );
    expect(through.status).toBe(200);
    expect(Buffer.from(through.body).equals(directly)).toBe(true);
    expect(decodeMessage(through.body).answers.map((rr) => rr.type)).toEqual(['MAP', 'RRSIG']);
  });

  it('answers an unknown inner route 404 and spends no token', async () => {
    const t = await token();
    const reply = inner(await send('GET', '/v1/other', { token: t }));
    expect(reply.status).toBe(404);
    expect(errorOf({ kind: 'inner', response: reply }).code).toBe('ERR_NOT_FOUND');
    expect(inner(await send('GET', ALICE_PATH, { token: t })).status).toBe(200);
  });

  it('answers 504 when the inner request outlives the deadline', async () => {
    const reply = inner(
      await send('GET', `/v1/discover?csi=${encodeURIComponent(HANGS)}`, { token: await token() }),
    );
    expect(reply.status).toBe(504);
    expect(errorOf({ kind: 'inner', response: reply }).code).toBe('ERR_GATEWAY_TIMEOUT');
  });
});

describe('Oblivious DoH', () => {
  let odoh: OdohConfig;

  async function ask(query: Message): Promise<Message> {
    const { message, context } = await encryptOdohQuery(odoh, encodeMessage(query));
    const response = await request(`${apiUrl()}/dns-query`, {
      method: 'POST',
      dispatcher: relay,
      headers: { 'content-type': ODOH_CONTENT_TYPE },
      body: Buffer.from(message),
    });
    expect(response.statusCode).toBe(200);
    const sealed = new Uint8Array(await response.body.arrayBuffer());
    return decodeMessage(await decryptOdohResponse(context, sealed));
  }

  function withToken(query: Message, t: Uint8Array): Message {
    const edns = query.edns;
    if (edns === undefined) throw new Error('no EDNS');
    return {
      ...query,
      edns: { ...edns, options: [...edns.options, { code: PRIVATE_TOKEN_EDNS_OPTION, data: t }] },
    };
  }

  beforeAll(async () => {
    const response = await request(`${apiUrl()}/.well-known/odohconfigs`, { dispatcher: relay });
    [odoh] = decodeOdohConfigs(new Uint8Array(await response.body.arrayBuffer())) as [OdohConfig];
  });

  it('answers a query carrying a token as the DoH front end does', async () => {
    const query = buildQuery(NAME, 'MAP', { dnssecOk: true, recursionDesired: true });
    const doh = server.dns?.doh?.url;
    if (doh === undefined) throw new Error('no DoH');
    const directly = decodeMessage(await dohPost(doh, encodeMessage(query), caPem));
    const through = await ask(withToken(query, await token()));
    const withoutPadding = (m: Message): Message => ({
      ...m,
      ...(m.edns === undefined
        ? {}
        : { edns: { ...m.edns, options: m.edns.options.filter((o) => o.code !== 12) } }),
    });
    expect(withoutPadding(through)).toEqual(withoutPadding(directly));
    expect(through.answers.map((rr) => rr.type)).toEqual(['MAP', 'RRSIG']);
  });

  it('refuses a query without a token, or with a spent one, with EDE 18 naming the code', async () => {
    const query = buildQuery(NAME, 'MAP', { dnssecOk: true, recursionDesired: true });
    const bare = await ask(query);
    expect(bare.rcode).toBe('REFUSED');
    expect(extendedDnsErrors(bare.edns?.options ?? [])).toEqual([
      { infoCode: 18, text: 'ERR_TOKEN_REQUIRED' },
    ]);
    const t = await token();
    expect((await ask(withToken(query, t))).rcode).toBe('NOERROR');
    const replayed = await ask(withToken(query, t));
    expect(replayed.rcode).toBe('REFUSED');
    expect(extendedDnsErrors(replayed.edns?.options ?? [])[0]?.text).toBe('ERR_TOKEN_SPENT');
  });

  it('answers garbage with a 400 and an unknown key id with a 401', async () => {
    const garbage = await request(`${apiUrl()}/dns-query`, {
      method: 'POST',
      dispatcher: relay,
      headers: { 'content-type': ODOH_CONTENT_TYPE },
      body: Buffer.from('not an oblivious message'),
    });
    expect(garbage.statusCode).toBe(400);
    await garbage.body.text();
    const { message } = await encryptOdohQuery(
      { ...odoh, publicKey: new Uint8Array(32).fill(9) },
      encodeMessage(buildQuery(NAME, 'MAP')),
    );
    const unknown = await request(`${apiUrl()}/dns-query`, {
      method: 'POST',
      dispatcher: relay,
      headers: { 'content-type': ODOH_CONTENT_TYPE },
      body: Buffer.from(message),
    });
    expect(unknown.statusCode).toBe(401);
    expect(JSON.parse(await unknown.body.text())).toMatchObject({
      error: { code: 'ERR_ODOH_KEY_UNKNOWN' },
    });
  });
});

describe('hostile outer requests', () => {
  async function post(path: string, type: string, body: Uint8Array | string) {
    const response = await request(`${apiUrl()}${path}`, {
      method: 'POST',
      dispatcher: relay,
      headers: { 'content-type': type },
      body: typeof body === 'string' ? body : Buffer.from(body),
    });
    return { status: response.statusCode, body: await response.body.text() };
  }

  it('answers every kind of garbage with an error and keeps serving', async () => {
    expect((await post('/.well-known/ohttp-gateway', OHTTP_REQUEST_TYPE, 'short')).status).toBe(
      400,
    );
    const random = new Uint8Array(200).map((_, i) => (i * 37 + 11) & 0xff);
    random[0] = config.keyId;
    random.set([0, 0x20, 0, 1, 0, 1], 1);
    const undecryptable = await post('/.well-known/ohttp-gateway', OHTTP_REQUEST_TYPE, random);
    expect(undecryptable.status).toBe(400);
    expect(JSON.parse(undecryptable.body)).toMatchObject({ error: { code: 'ERR_OHTTP_DECRYPT' } });
    expect((await post('/.well-known/ohttp-gateway', 'application/json', '{}')).status).toBe(415);
    expect(
      (
        await post(
          '/.well-known/ohttp-gateway',
          OHTTP_REQUEST_TYPE,
          new Uint8Array(2 * 1024 * 1024),
        )
      ).status,
    ).toBe(413);
    const put = await request(`${apiUrl()}/.well-known/ohttp-gateway`, {
      method: 'PUT',
      dispatcher: relay,
      body: 'x',
    });
    expect(put.statusCode).toBe(405);
    expect(put.headers['allow']).toBe('GET, POST');
    await put.body.text();

    // An encapsulated request whose content is not Binary HTTP: an inner 400.
    const { message, context } = await encapsulateRequest(config, Uint8Array.of(7, 1, 2, 3));
    const notBhttp = await request(`${apiUrl()}/.well-known/ohttp-gateway`, {
      method: 'POST',
      dispatcher: relay,
      headers: { 'content-type': OHTTP_REQUEST_TYPE },
      body: Buffer.from(message),
    });
    expect(notBhttp.statusCode).toBe(200);
    const { decapsulateResponse, decodeBhttpResponse } = await import('@mimi-discovery/common');
    const opened = decodeBhttpResponse(
      await decapsulateResponse(context, new Uint8Array(await notBhttp.body.arrayBuffer())),
    );
    expect(opened.status).toBe(400);

    // Still serving.
    expect(inner(await send('GET', ALICE_PATH, { token: await token() })).status).toBe(200);
  });
});

describe('the query log', () => {
  it('records what came through the gateway with the relay as the only peer', async () => {
    await server.queryLog?.flush();
    const lines = readQueryLog(join(dir, 'query.log'));
    const oblivious = lines.filter((l) => l['transport'] === 'ohttp' || l['transport'] === 'odoh');
    expect(
      oblivious.some((l) => l['transport'] === 'ohttp' && l['type'] === 'MAP' && 'status' in l),
    ).toBe(true);
    expect(oblivious.some((l) => l['transport'] === 'ohttp' && 'rcode' in l)).toBe(true);
    expect(oblivious.some((l) => l['transport'] === 'odoh')).toBe(true);
    expect(new Set(oblivious.map((l) => l['peer']))).toEqual(new Set([RELAY_ADDRESS]));
  });
});

describe('key rotation', () => {
  it('opens a request to the previous key through the overlap and refuses it after', async () => {
    const old = config;
    clock.advance(7 * DAY);
    const during = await send('GET', ALICE_PATH);
    expect(inner(during).status).toBe(401);
    const configs = await fetchKeyConfigs(apiUrl(), relay);
    expect(configs.map((c) => c.keyId)).toEqual([1, 0]);

    clock.advance(DAY);
    const after = await send('GET', ALICE_PATH);
    expect(after).toMatchObject({
      kind: 'outer',
      status: 400,
      contentType: 'application/problem+json',
    });
    expect(JSON.parse((after as { body: string }).body)).toMatchObject({
      type: OHTTP_KEY_PROBLEM_TYPE,
      code: 'ERR_OHTTP_KEY_UNKNOWN',
    });
    config = (await fetchKeyConfigs(apiUrl(), relay))[0] as OhttpKeyConfig;
    expect(config.keyId).toBe(1);
    expect(old.keyId).toBe(0);
    expect(inner(await send('GET', ALICE_PATH, { token: await token() })).status).toBe(200);
  });
});
