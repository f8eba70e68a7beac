import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  EDE_PROHIBITED,
  GATEWAY_PUBLIC_KEY_FILE,
  ODOH_CONTENT_TYPE,
  PRIVATE_TOKEN_EDNS_OPTION,
  TOKEN_OCTETS,
  buildQuery,
  createLocalCa,
  createZoneKey,
  decodeMessage,
  decryptOdohQuery,
  edeOption,
  encodeMessage,
  encodeName,
  encodeOdohConfig,
  encodeOdohConfigs,
  encryptOdohResponse,
  generateOdohKeyPair,
  issueServerCertificate,
  metricsText,
  parsePublicKeyFile,
  record,
  signRRset,
  silentLogger,
  type KeyconfData,
  type Message,
  type OdohKeyPair,
} from '@mimi-discovery/common';
import {
  ISSUER_PUBLIC_KEY_FILE,
  generateCredential,
  hashCredential,
  startIssuer,
  startRelay,
  type RelayExchange,
  type RunningIssuer,
  type RunningRelay,
} from '@mimi-discovery/relay';
import {
  DiscoveryClientError,
  createObliviousClient,
  startResolverServer,
  type ObliviousClient,
  type ObliviousClientOptions,
  type ResolvedAnswer,
  type Resolver,
  type RunningResolverServer,
} from '../src/index.js';
import { dohPost } from '../../../test/helpers/query-log.js';
import { rejectionOf } from '../../../test/helpers/rejection.js';
import { resolverDouble } from '../../../test/helpers/resolver-double.js';

// Oblivious DoH (RFC 9230) from the oblivious client, end to end on real servers: the relay
// package's relay (its ODoH proxy, with an observer that hears what the relay handles), the
// resolver server with its gateway (the ODoH target) in front of a resolver double that knows
// one signed MAP, and the relay package's Privacy Pass issuer. A second target, of the test's
// own, stands for a hostile or instrumented target behind the same relay: it decrypts what it
// gets with a key of its own and answers as each test says.

const ZONE = '4.4.e164.mimi.arpa';
const NAME = `8.1.0.0.6.4.9.7.0.2.${ZONE}`;
const zoneKey = createZoneKey(ZONE, { seed: new Uint8Array(32).fill(5) });
const map = record(NAME, 'MAP', new Uint8Array([0xa1, 0x61, 0x76, 0x01]), 300);
const mapSig = signRRset([map], zoneKey, { inception: 1_767_225_600, expiration: 2_000_000_000 });
const KEY_NAME = 'resolver.chat.example.email.mimi.arpa';

const resolver = resolverDouble({
  async resolve(name): Promise<ResolvedAnswer> {
    return name === NAME
      ? { rcode: 'NOERROR', status: 'secure', answers: [map, mapSig], authorities: [] }
      : { rcode: 'NXDOMAIN', status: 'secure', answers: [], authorities: [] };
  },
  // The JSON API is not asked in these tests; the OHTTP probe is answered before any lookup.
  discoverManyJson: () => Promise.reject(new Error('not asked')),
});

/** What the instrumented target does with what it gets. */
type TargetMode =
  'garbage-configs' | 'garbage-answer' | 'refuse-spent' | 'refuse-spent-once' | 'answer';

let dir: string;
let caPem: string;
let server: RunningResolverServer;
let issuer: RunningIssuer;
let relay: RunningRelay;
let direct: Agent;
const credential = generateCredential();
const exchanges: RelayExchange[] = [];
const clients: ObliviousClient[] = [];

let target: Server;
let targetKey: OdohKeyPair;
let targetMode: TargetMode = 'answer';
/** The EXTRA-TEXT of the target's refusals. */
let targetRefusal = 'ERR_TOKEN_SPENT';
/** The queries the instrumented target decrypted. */
const targetQueries: Message[] = [];

function apiUrl(): string {
  const url = server.api?.url;
  if (url === undefined) throw new Error('no API');
  return url;
}

/** The gateway's authority: the ODoH target the relay may forward to. */
function gatewayTarget(): string {
  return new URL(apiUrl()).host;
}

function instrumentedTarget(): string {
  return `127.0.0.1:${(target.address() as AddressInfo).port}`;
}

function client(options: Partial<ObliviousClientOptions> = {}): ObliviousClient {
  const c = createObliviousClient({
    relay: `${relay.url}/ohttp/resolver`,
    ca: caPem,
    credential,
    // Blind RSA is slow in JavaScript: few tokens at a time.
    tokensPerFetch: 2,
    odohTarget: gatewayTarget(),
    ...options,
  });
  clients.push(c);
  return c;
}

/** The gateway's published keys as a secure KEYCONF RRset, `odoh` entries replaced by `odoh`. */
function keyconfResolver(odoh?: Uint8Array): Pick<Resolver, 'resolve'> & { asked: string[] } {
  const asked: string[] = [];
  const published = parsePublicKeyFile(
    readFileSync(join(dir, 'gateway-keys', GATEWAY_PUBLIC_KEY_FILE), 'utf8'),
  );
  const entries: KeyconfData[] =
    odoh === undefined
      ? published
      : [
          ...published.filter((k) => k.kind !== 'odoh'),
          { ...(published.find((k) => k.kind === 'odoh') as KeyconfData), config: odoh },
        ];
  return {
    asked,
    async resolve(name, type): Promise<ResolvedAnswer> {
      asked.push(`${name} ${type}`);
      return {
        rcode: 'NOERROR',
        status: 'secure',
        answers: entries.map((data) => record(name, 'KEYCONF', data, 300)),
        authorities: [],
      };
    },
  };
}

function rejection(call: Promise<unknown>): Promise<DiscoveryClientError> {
  return rejectionOf(call, DiscoveryClientError);
}

/** The exchanges the relay handled since `from`, as `METHOD path`. */
function routes(from: number): string[] {
  return exchanges.slice(from).map((e) => `${e.method} ${e.target.split('?')[0] ?? ''}`);
}

/** Without EDNS padding (RFC 7830), which differs between front ends by design. */
function withoutPadding(m: Message): Message {
  return m.edns === undefined
    ? m
    : { ...m, edns: { ...m.edns, options: m.edns.options.filter((o) => o.code !== 12) } };
}

async function counter(pattern: RegExp): Promise<number> {
  const text = await metricsText(server.metrics.registry);
  const m = pattern.exec(text);
  return m === null ? 0 : Number(m[1]);
}

/** The instrumented target: ODoH configs of its own key, and answers per {@link targetMode}. */
async function startTarget(cert: string, key: string): Promise<Server> {
  targetKey = await generateOdohKeyPair();
  const s = createServer({ cert, key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        if (req.method === 'GET') {
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          res.end(
            targetMode === 'garbage-configs'
              ? Buffer.from('these are not ObliviousDoHConfigs')
              : Buffer.from(encodeOdohConfigs([targetKey.config])),
          );
          return;
        }
        if (targetMode === 'garbage-answer') {
          res.writeHead(200, { 'content-type': ODOH_CONTENT_TYPE });
          res.end(Buffer.alloc(80, 0x5a));
          return;
        }
        const { query, context } = await decryptOdohQuery(targetKey, Buffer.concat(chunks));
        const q = decodeMessage(query);
        targetQueries.push(q);
        const refuse =
          targetMode === 'refuse-spent' ||
          (targetMode === 'refuse-spent-once' && targetQueries.length === 1);
        const answer: Message = {
          ...q,
          flags: { ...q.flags, qr: true, ra: true },
          rcode: refuse ? 'REFUSED' : 'NXDOMAIN',
          edns: {
            udpPayloadSize: 1232,
            extendedRcode: 0,
            version: 0,
            dnssecOk: false,
            options: refuse ? [edeOption(EDE_PROHIBITED, targetRefusal)] : [],
          },
        };
        const sealed = await encryptOdohResponse(context, encodeMessage(answer));
        res.writeHead(200, { 'content-type': ODOH_CONTENT_TYPE });
        res.end(Buffer.from(sealed));
      })().catch(() => {
        res.writeHead(400);
        res.end();
      });
    });
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return s;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'odoh-client-'));
  const ca = await createLocalCa();
  const leaf = await issueServerCertificate(ca, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  caPem = ca.certPem;
  const tls = { cert: leaf.certPem, key: leaf.keyPem };
  issuer = await startIssuer(
    {
      listen: { host: '127.0.0.1', api: 0, admin: null },
      tls,
      dataDir: join(dir, 'issuer-data'),
      keyDir: join(dir, 'issuer-keys'),
      tokensPerPeriod: 1000,
      periodSeconds: 86_400,
      keyLifetimeSeconds: 7 * 86_400,
      keyOverlapSeconds: 86_400,
      keyPrepublishSeconds: 3600,
      users: [{ id: 'alice', credentialSha256: hashCredential(credential) }],
      limits: {
        maxConnections: 64,
        connectionsPerClient: 64,
        requestTimeoutMs: 5000,
        idleTimeoutMs: 5000,
        maxPendingSignings: 32,
      },
      log: { level: 'silent' },
    },
    { log: silentLogger },
  );
  server = await startResolverServer(
    {
      listen: { doh: 0, api: 0 },
      tls,
      gateway: {
        keyDir: join(dir, 'gateway-keys'),
        dataDir: join(dir, 'gateway-data'),
        issuers: [
          {
            name: new URL(issuer.api.url).host,
            keysFile: join(dir, 'issuer-keys', ISSUER_PUBLIC_KEY_FILE),
          },
        ],
      },
    },
    resolver,
    { log: silentLogger },
  );
  target = await startTarget(leaf.certPem, leaf.keyPem);
  relay = await startRelay(
    {
      listen: { relay: 0 },
      tls,
      ca: caPem,
      gateways: { resolver: `${apiUrl()}/.well-known/ohttp-gateway` },
      odohTargets: [gatewayTarget(), instrumentedTarget()],
      log: { level: 'silent' },
    },
    { log: silentLogger, observe: (e) => exchanges.push(e) },
  );
  direct = new Agent({ connect: { ca: caPem } });
}, 60_000);

beforeEach(() => {
  targetMode = 'answer';
  targetRefusal = 'ERR_TOKEN_SPENT';
  targetQueries.length = 0;
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  await direct?.close();
  await relay?.close();
  await new Promise((resolve) => target?.close(resolve));
  await server?.close();
  await issuer?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('an ODoH query through the relay to the gateway', () => {
  it('gets the answer the DoH front end gives, the key checked in the tree, after an OHTTP probe', async () => {
    const keys = keyconfResolver();
    const c = client({ keyCheck: { resolver: keys, keyName: KEY_NAME } });
    const query = buildQuery(NAME, 'MAP', { dnssecOk: true, recursionDesired: true });
    const from = exchanges.length;
    const through = decodeMessage(await c.odohQuery(encodeMessage(query)));
    const doh = server.dns?.doh?.url;
    if (doh === undefined) throw new Error('no DoH');
    const directly = decodeMessage(await dohPost(doh, encodeMessage(query), caPem));
    expect(withoutPadding(through)).toEqual(withoutPadding(directly));
    expect(through.answers.map((rr) => rr.type)).toEqual(['MAP', 'RRSIG']);
    // Once for the ODoH config, once for the OHTTP key config of the probe.
    expect(keys.asked).toEqual([`${KEY_NAME} KEYCONF`, `${KEY_NAME} KEYCONF`]);
    // The configs through the proxy, the OHTTP key fetch and probe (the challenge), the query.
    expect(routes(from)).toEqual([
      'GET /proxy',
      'GET /ohttp/resolver',
      'POST /ohttp/resolver',
      'POST /proxy',
    ]);
    // A second query reuses the configs (max-age) and the challenge.
    const again = await c.odohQuery(encodeMessage({ ...query, id: 7 }));
    expect(decodeMessage(again).id).toBe(7);
    expect(routes(from).slice(4)).toEqual(['POST /proxy']);
  });

  it('adds an OPT record to a query without one, and answers as the DoH front end', async () => {
    const c = client();
    const bare: Message = buildQuery(NAME, 'MAP', { recursionDesired: true });
    delete bare.edns;
    const through = decodeMessage(await c.odohQuery(encodeMessage(bare)));
    const doh = server.dns?.doh?.url;
    if (doh === undefined) throw new Error('no DoH');
    const directly = decodeMessage(await dohPost(doh, encodeMessage(bare), caPem));
    expect(through.rcode).toBe('NOERROR');
    expect(through.answers).toEqual(directly.answers);
    expect(through.edns).toBeDefined();
  });

  it('spends the token: the same encrypted query replayed through the relay is refused', async () => {
    const c = client();
    const from = exchanges.length;
    await c.odohQuery(encodeMessage(buildQuery(NAME, 'MAP', { dnssecOk: true })));
    const sent = exchanges
      .slice(from)
      .find((e) => e.method === 'POST' && e.target.startsWith('/proxy'));
    if (sent === undefined) throw new Error('no ODoH query went through the relay');
    const spentBefore = await counter(/resolver_gateway_tokens_total\{outcome="spent"\} (\d+)/);
    const refusedBefore = await counter(
      /resolver_gateway_requests_total\{path="inner:odoh",status="401"\} (\d+)/,
    );
    const replay = await request(`${relay.url}${sent.target}`, {
      method: 'POST',
      dispatcher: direct,
      headers: { 'content-type': ODOH_CONTENT_TYPE },
      body: Buffer.from(sent.requestBody),
    });
    expect(replay.statusCode).toBe(200);
    expect(replay.headers['content-type']).toBe(ODOH_CONTENT_TYPE);
    await replay.body.arrayBuffer();
    expect(await counter(/resolver_gateway_tokens_total\{outcome="spent"\} (\d+)/)).toBe(
      spentBefore + 1,
    );
    expect(
      await counter(/resolver_gateway_requests_total\{path="inner:odoh",status="401"\} (\d+)/),
    ).toBe(refusedBefore + 1);
  });

  it('shares one config fetch and one probe among concurrent callers', async () => {
    const c = client({ tokensPerFetch: 3 });
    const from = exchanges.length;
    const answers = await Promise.all(
      [1, 2, 3].map((id) => c.odohQuery(encodeMessage(buildQuery(NAME, 'MAP', { id })))),
    );
    expect(answers.map((a) => decodeMessage(a).id)).toEqual([1, 2, 3]);
    const seen = routes(from);
    expect(seen.filter((r) => r === 'GET /proxy')).toHaveLength(1);
    expect(seen.filter((r) => r === 'POST /ohttp/resolver')).toHaveLength(1);
    expect(seen.filter((r) => r === 'POST /proxy')).toHaveLength(3);
  });

  it('lets the relay see no query name in any octet it handles', async () => {
    const c = client();
    const from = exchanges.length;
    const names = [NAME, `0.0.0.0.6.4.9.7.0.2.${ZONE}`];
    for (const name of names) await c.odohQuery(encodeMessage(buildQuery(name, 'MAP')));
    const seen = exchanges.slice(from);
    expect(seen.filter((e) => e.target.startsWith('/proxy') && e.method === 'POST')).toHaveLength(
      2,
    );
    const octets = Buffer.concat(
      seen.flatMap((e) => [
        Buffer.from(e.target),
        Buffer.from(JSON.stringify(e.headers)),
        Buffer.from(e.requestBody),
        Buffer.from(e.responseBody),
      ]),
    );
    for (const name of names) {
      expect(octets.includes(Buffer.from(name))).toBe(false);
      expect(octets.includes(Buffer.from(encodeName(name)))).toBe(false);
      expect(octets.includes(Buffer.from('e164'))).toBe(false);
      expect(octets.includes(Buffer.from(name.slice(0, 19)))).toBe(false);
    }
  });
});

describe('refusals before anything is sent', () => {
  it('refuses an ODoH config the tree does not publish, with no probe and no query', async () => {
    const other = await generateOdohKeyPair();
    const keys = keyconfResolver(encodeOdohConfig(other.config));
    const c = client({ keyCheck: { resolver: keys, keyName: KEY_NAME } });
    const from = exchanges.length;
    const error = await rejection(c.odohQuery(encodeMessage(buildQuery(NAME, 'MAP'))));
    expect(error.code).toBe('ERR_KEY_INCONSISTENT');
    expect(error.message).toMatch(/KEYCONF odoh/);
    expect(routes(from)).toEqual(['GET /proxy']);
  });

  it('refuses bytes that are not one DNS query, and a target that is not host:port', async () => {
    const c = client();
    const from = exchanges.length;
    expect((await rejection(c.odohQuery(new Uint8Array([1, 2, 3])))).code).toBe('ERR_BAD_REQUEST');
    const response = encodeMessage({
      ...buildQuery(NAME, 'MAP'),
      flags: { ...buildQuery(NAME, 'MAP').flags, qr: true },
    });
    expect((await rejection(c.odohQuery(response))).code).toBe('ERR_BAD_REQUEST');
    expect(routes(from)).toEqual([]);
    expect(() => client({ odohTarget: 'https://127.0.0.1:1/dns-query' })).toThrow(TypeError);
    expect(() => client({ odohTarget: '127.0.0.1' })).toThrow(TypeError);
    const without = createObliviousClient({ relay: `${relay.url}/ohttp/resolver`, ca: caPem });
    clients.push(without);
    await expect(without.odohQuery(encodeMessage(buildQuery(NAME, 'MAP')))).rejects.toThrow(
      TypeError,
    );
  });
});

describe('a hostile or refusing target behind the relay', () => {
  it('reports configs that do not decode as a clear error, and sends no query', async () => {
    targetMode = 'garbage-configs';
    const c = client({ odohTarget: instrumentedTarget() });
    const from = exchanges.length;
    const error = await rejection(c.odohQuery(encodeMessage(buildQuery(NAME, 'MAP'))));
    expect(error.code).toBe('ERR_API_RESPONSE');
    expect(error.message).toMatch(/ODoH configs do not decode/);
    expect(routes(from)).toEqual(['GET /proxy']);
  });

  it('reports an answer that does not decrypt as a clear error', async () => {
    targetMode = 'garbage-answer';
    const c = client({ odohTarget: instrumentedTarget() });
    const error = await rejection(c.odohQuery(encodeMessage(buildQuery(NAME, 'MAP'))));
    expect(error.code).toBe('ERR_API_RESPONSE');
    expect(error.message).toMatch(/does not decrypt/);
  });

  it("reports the relay's refusal of a target it does not serve", async () => {
    const c = client({ odohTarget: '127.0.0.1:9' });
    const error = await rejection(c.odohQuery(encodeMessage(buildQuery(NAME, 'MAP'))));
    expect(error).toMatchObject({
      code: 'ERR_RELAY_REFUSED',
      status: 403,
      detail: 'ERR_TARGET_NOT_ALLOWED',
    });
  });

  it('carries one token in EDNS, keeping the query’s other options and replacing a token it had', async () => {
    const c = client({ odohTarget: instrumentedTarget() });
    const query = buildQuery(NAME, 'MAP', { dnssecOk: true });
    const cookie = { code: 10, data: new Uint8Array(8).fill(7) };
    const stale = { code: PRIVATE_TOKEN_EDNS_OPTION, data: new Uint8Array(4) };
    const edns = query.edns;
    if (edns === undefined) throw new Error('no EDNS');
    await c.odohQuery(encodeMessage({ ...query, edns: { ...edns, options: [cookie, stale] } }));
    const seen = targetQueries[0]?.edns?.options ?? [];
    expect(seen.map((o) => o.code)).toEqual([10, PRIVATE_TOKEN_EDNS_OPTION]);
    expect(seen[0]?.data).toEqual(cookie.data);
    // The raw type-2 token (RFC 9577 §2.2, RFC 9578 §6): 2 + 32 + 32 + 32 + 256 octets.
    expect(seen[1]?.data.length).toBe(TOKEN_OCTETS);
    expect(targetQueries[0]?.edns?.dnssecOk).toBe(true);
  });

  it('asks once more with a fresh token after a token refusal, then reports the refusal', async () => {
    targetMode = 'refuse-spent-once';
    const c = client({ odohTarget: instrumentedTarget() });
    const answer = decodeMessage(await c.odohQuery(encodeMessage(buildQuery(NAME, 'MAP'))));
    expect(answer.rcode).toBe('NXDOMAIN');
    const tokens = targetQueries.map((q) =>
      Buffer.from(q.edns?.options.find((o) => o.code === PRIVATE_TOKEN_EDNS_OPTION)?.data ?? []),
    );
    expect(tokens).toHaveLength(2);
    expect(tokens[0]?.equals(tokens[1] as Buffer)).toBe(false);

    targetMode = 'refuse-spent';
    targetQueries.length = 0;
    const error = await rejection(c.odohQuery(encodeMessage(buildQuery(NAME, 'MAP'))));
    expect(error).toMatchObject({ code: 'ERR_TOKEN_SPENT', detail: 'ERR_TOKEN_SPENT' });
    expect(targetQueries).toHaveLength(2);
  });

  it('learns the current challenges with a new probe before the retry of an invalid token', async () => {
    targetMode = 'refuse-spent-once';
    targetRefusal = 'ERR_TOKEN_INVALID';
    const c = client({ odohTarget: instrumentedTarget() });
    const from = exchanges.length;
    const answer = decodeMessage(await c.odohQuery(encodeMessage(buildQuery(NAME, 'MAP'))));
    expect(answer.rcode).toBe('NXDOMAIN');
    expect(routes(from).filter((r) => r !== 'GET /ohttp/resolver')).toEqual([
      'GET /proxy',
      'POST /ohttp/resolver',
      'POST /proxy',
      'POST /ohttp/resolver',
      'POST /proxy',
    ]);
  });

  it('passes on a REFUSED answer that names no token error', async () => {
    targetMode = 'refuse-spent';
    targetRefusal = 'ERR_RATE_LIMITED';
    const c = client({ odohTarget: instrumentedTarget() });
    const answer = decodeMessage(await c.odohQuery(encodeMessage(buildQuery(NAME, 'MAP'))));
    expect(answer.rcode).toBe('REFUSED');
    expect(targetQueries).toHaveLength(1);
  });
});
