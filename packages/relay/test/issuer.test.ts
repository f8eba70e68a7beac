import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  createLocalCa,
  createTokenRequest,
  issueServerCertificate,
  parseConfig,
  tokenChallenge,
  tokenKeyFromSpki,
  verifyToken,
  type TokenKey,
} from '@mimi-discovery/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ISSUER_PUBLIC_KEY_FILE,
  MAX_TOKEN_REQUEST_BODY_OCTETS,
  generateCredential,
  hashCredential,
  issuerConfigSchema,
  startIssuer,
  type IssuerConfig,
  type RunningIssuer,
} from '../src/index.js';

// The issuer started for real on 127.0.0.1 (HTTPS with a local CA), on a data and key
// directory of its own, with a clock the tests move: tokens issued and verified end to end,
// every refusal of the token API, the cap under concurrent requests and across a real restart,
// and key rotation with overlap.

const T0 = 1_800_000_000;
const LIFETIME = 600;
const OVERLAP = 300;
const PREPUBLISH = 120;
const PERIOD = 3600;
const CAP = 3;
const ISSUER_NAME = 'issuer.test:8463';
const ORIGIN = 'resolver.test:8453';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

let dir: string;
let ca: string;
let tls: { cert: string; key: string };
let now = T0;
const clock = (): number => now;
const alice = generateCredential();
const bob = generateCredential();

function config(overrides: Partial<IssuerConfig> = {}): IssuerConfig {
  return {
    listen: { host: '127.0.0.1', api: 0, admin: 0 },
    tls,
    dataDir: join(dir, 'data'),
    keyDir: join(dir, 'keys'),
    tokensPerPeriod: CAP,
    periodSeconds: PERIOD,
    keyLifetimeSeconds: LIFETIME,
    keyOverlapSeconds: OVERLAP,
    keyPrepublishSeconds: PREPUBLISH,
    users: [
      { id: 'alice', credentialSha256: hashCredential(alice) },
      { id: 'bob', credentialSha256: hashCredential(bob) },
    ],
    limits: {
      maxConnections: 64,
      connectionsPerClient: 64,
      requestTimeoutMs: 5000,
      idleTimeoutMs: 5000,
      maxPendingSignings: 32,
    },
    log: { level: 'silent' },
    ...overrides,
  };
}

function fetchRaw(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: Uint8Array } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(
      target,
      { method: options.method ?? 'GET', headers: options.headers ?? {}, ca, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body === undefined ? undefined : Buffer.from(options.body));
  });
}

interface Directory {
  'issuer-request-uri': string;
  'token-keys': {
    'token-type': number;
    'token-key': string;
    'not-before': number;
    'not-after': number;
  }[];
}

async function directory(issuer: RunningIssuer): Promise<Directory> {
  const reply = await fetchRaw(`${issuer.api.url}/.well-known/private-token-issuer-directory`);
  expect(reply.status).toBe(200);
  expect(reply.headers['content-type']).toBe('application/private-token-issuer-directory');
  return JSON.parse(reply.body.toString('utf8')) as Directory;
}

/** The keys of the public-key file, as a gateway's `keysFile` reads them. */
function publishedKeys(): TokenKey[] {
  const file = JSON.parse(readFileSync(join(dir, 'keys', ISSUER_PUBLIC_KEY_FILE), 'utf8')) as {
    version: number;
    keys: { kind: string; config: string; notBefore: number; notAfter: number }[];
  };
  expect(file.version).toBe(1);
  return file.keys.map((k) => {
    expect(k.kind).toBe('private-token');
    return tokenKeyFromSpki(
      new Uint8Array(Buffer.from(k.config, 'base64url')),
      k.notBefore,
      k.notAfter,
    );
  });
}

const challenge = tokenChallenge(ISSUER_NAME, ORIGIN);

function postRequest(
  issuer: RunningIssuer,
  credential: string | undefined,
  body: Uint8Array,
  type = 'application/private-token-request',
): Promise<Reply> {
  return fetchRaw(`${issuer.api.url}/token-request`, {
    method: 'POST',
    headers: {
      'content-type': type,
      ...(credential === undefined ? {} : { authorization: `Bearer ${credential}` }),
    },
    body,
  });
}

/** A whole issuance for `credential` under the directory's first key: the reply and the token. */
async function fetchToken(
  issuer: RunningIssuer,
  credential: string,
): Promise<{ reply: Reply; token?: Uint8Array; spki: Uint8Array }> {
  const first = (await directory(issuer))['token-keys'][0];
  if (first === undefined) throw new Error('the directory lists no key');
  const spki = new Uint8Array(Buffer.from(first['token-key'], 'base64url'));
  const pending = await createTokenRequest(challenge, spki);
  const reply = await postRequest(issuer, credential, pending.request);
  if (reply.status !== 200) return { reply, spki };
  return { reply, spki, token: await pending.finalize(new Uint8Array(reply.body)) };
}

function errorCode(reply: Reply): string {
  return (JSON.parse(reply.body.toString('utf8')) as { error: { code: string } }).error.code;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mimi-issuer-'));
  const localCa = await createLocalCa();
  const leaf = await issueServerCertificate(localCa, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  ca = localCa.certPem;
  tls = { cert: leaf.certPem, key: leaf.keyPem };
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('issuer config', () => {
  const base = {
    listen: { api: 8463 },
    tls: { cert: 'c.pem', key: 'k.pem' },
    dataDir: 'data',
    keyDir: 'keys',
  };
  const hash = 'a'.repeat(64);

  it('fills in the defaults', () => {
    const parsed = parseConfig(issuerConfigSchema, base);
    expect(parsed.tokensPerPeriod).toBe(100);
    expect(parsed.periodSeconds).toBe(86_400);
    expect(parsed.keyLifetimeSeconds).toBe(7 * 86_400);
    expect(parsed.limits.maxPendingSignings).toBe(32);
    expect(parsed.listen.admin).toBeNull();
  });

  it.each([
    [{ ...base, tokensPerPeriod: 0 }, 'tokensPerPeriod'],
    [{ ...base, periodSeconds: 10 }, 'periodSeconds'],
    [{ ...base, keyLifetimeSeconds: 100 }, 'keyLifetimeSeconds'],
    [
      { ...base, keyPrepublishSeconds: 7 * 86_400 },
      'keyPrepublishSeconds: must be less than keyLifetimeSeconds',
    ],
    [{ ...base, users: [{ id: 'a', credentialSha256: 'xyz' }] }, 'users[0].credentialSha256'],
    [{ ...base, users: [{ id: 'a b', credentialSha256: hash }] }, 'users[0].id'],
    [
      {
        ...base,
        users: [
          { id: 'a', credentialSha256: hash },
          { id: 'a', credentialSha256: 'b'.repeat(64) },
        ],
      },
      'users[1].id: duplicates users[0].id',
    ],
    [
      {
        ...base,
        users: [
          { id: 'a', credentialSha256: hash },
          { id: 'b', credentialSha256: hash },
        ],
      },
      'users[1].credentialSha256',
    ],
    [{ ...base, limits: { maxPendingSignings: 0 } }, 'limits.maxPendingSignings'],
    [
      { ...base, limits: { maxConnections: 4, connectionsPerClient: 8 } },
      'limits.connectionsPerClient',
    ],
    [{ ...base, tokensPerPerod: 5 }, 'unknown key "tokensPerPerod"'],
    [{ ...base, listen: { api: 8463, doh: 1 } }, 'unknown key "doh" in listen'],
    [{ listen: { api: 1 }, tls: base.tls, keyDir: 'k' }, 'dataDir: required'],
  ])('refuses %j with a message naming %s', (raw, message) => {
    expect(() => parseConfig(issuerConfigSchema, raw)).toThrow(ConfigError);
    expect(() => parseConfig(issuerConfigSchema, raw)).toThrow(message);
  });
});

describe('the issuer server', () => {
  let issuer: RunningIssuer;

  beforeAll(async () => {
    now = T0;
    issuer = await startIssuer(config(), { clock });
  });

  afterAll(async () => {
    await issuer.close();
  });

  it('serves its directory: the signing key, valid now, with cache-control', async () => {
    const dirReply = await fetchRaw(`${issuer.api.url}/.well-known/private-token-issuer-directory`);
    expect(dirReply.headers['cache-control']).toBe(`max-age=${LIFETIME}`);
    const body = JSON.parse(dirReply.body.toString('utf8')) as Directory;
    expect(body['issuer-request-uri']).toBe('/token-request');
    expect(body['token-keys']).toHaveLength(1);
    const [key] = body['token-keys'];
    expect(key?.['token-type']).toBe(2);
    expect(key?.['not-before']).toBe(T0);
    expect(key?.['not-after']).toBe(T0 + LIFETIME + OVERLAP);
    const [published] = publishedKeys();
    expect(Buffer.from(key?.['token-key'] ?? '', 'base64url')).toEqual(
      Buffer.from(published?.spki ?? []),
    );
  });

  it('keeps its key files 0600 in a 0700 directory, and its data directory 0700', () => {
    const keyDir = join(dir, 'keys');
    expect(statSync(keyDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'data')).mode & 0o777).toBe(0o700);
    const files = readdirSync(keyDir).filter((f) => f.startsWith('token-key-'));
    expect(files).toHaveLength(1);
    for (const f of files) expect(statSync(join(keyDir, f)).mode & 0o777).toBe(0o600);
  });

  it('issues a token that the origin verifies under the published key', async () => {
    const { reply, token } = await fetchToken(issuer, alice);
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/private-token-response');
    if (token === undefined) throw new Error('no token');
    const verified = await verifyToken(token, challenge, publishedKeys(), now);
    expect(verified.spentId).toHaveLength(32);
  });

  it('refuses requests without a user’s credential, and counts nothing for them', async () => {
    const spki = publishedKeys()[0]?.spki ?? new Uint8Array();
    const pending = await createTokenRequest(challenge, spki);
    for (const credential of [undefined, generateCredential(), `${alice}x`]) {
      const reply = await postRequest(issuer, credential, pending.request);
      expect(reply.status).toBe(401);
      expect(errorCode(reply)).toBe('ERR_UNAUTHENTICATED');
    }
    const basic = await fetchRaw(`${issuer.api.url}/token-request`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${alice}`,
        'content-type': 'application/private-token-request',
      },
      body: pending.request,
    });
    expect(basic.status).toBe(401);
  });

  it('refuses malformed requests with the status of each fault, and counts nothing', async () => {
    const spki = publishedKeys()[0]?.spki ?? new Uint8Array();
    const pending = await createTokenRequest(challenge, spki);
    const wrongType = await postRequest(issuer, alice, pending.request, 'application/octet-stream');
    expect([wrongType.status, errorCode(wrongType)]).toEqual([415, 'ERR_UNSUPPORTED_MEDIA_TYPE']);
    const tooBig = await postRequest(
      issuer,
      alice,
      new Uint8Array(MAX_TOKEN_REQUEST_BODY_OCTETS + 1),
    );
    expect(tooBig.status).toBe(413);
    const short = await postRequest(issuer, alice, pending.request.subarray(0, 200));
    expect([short.status, errorCode(short)]).toEqual([400, 'ERR_BAD_TOKEN_REQUEST']);
    const otherKey = Uint8Array.from(pending.request);
    otherKey[2] = ((otherKey[2] as number) + 1) % 256;
    const unknown = await postRequest(issuer, alice, otherKey);
    expect([unknown.status, errorCode(unknown)]).toEqual([422, 'ERR_TOKEN_KEY_UNKNOWN']);
    const huge = Uint8Array.from(pending.request);
    huge.fill(0xff, 3);
    const outOfRange = await postRequest(issuer, alice, huge);
    expect([outOfRange.status, errorCode(outOfRange)]).toEqual([400, 'ERR_BAD_TOKEN_REQUEST']);
    const get = await fetchRaw(`${issuer.api.url}/token-request`);
    expect([get.status, get.headers['allow']]).toEqual([405, 'POST']);
    const post = await fetchRaw(`${issuer.api.url}/.well-known/private-token-issuer-directory`, {
      method: 'POST',
    });
    expect(post.status).toBe(405);
    expect((await fetchRaw(`${issuer.api.url}/nothing`)).status).toBe(404);
    // Alice has had one token so far: two more, then the cap.
    expect((await fetchToken(issuer, alice)).reply.status).toBe(200);
    expect((await fetchToken(issuer, alice)).reply.status).toBe(200);
    const capped = await fetchToken(issuer, alice);
    expect([capped.reply.status, errorCode(capped.reply)]).toEqual([429, 'ERR_TOKEN_QUOTA']);
    expect(Number(capped.reply.headers['retry-after'])).toBe(PERIOD - (T0 % PERIOD));
  });

  it('never gives one user more than the cap to concurrent requests', async () => {
    const spki = publishedKeys()[0]?.spki ?? new Uint8Array();
    const requests = await Promise.all(
      Array.from({ length: 8 }, () => createTokenRequest(challenge, spki)),
    );
    const replies = await Promise.all(requests.map((p) => postRequest(issuer, bob, p.request)));
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429, 429, 429]);
  });

  it('serves its metrics and health on the admin port', async () => {
    const metrics = await fetchRaw(`${issuer.admin?.url ?? ''}/metrics`);
    const text = metrics.body.toString('utf8');
    expect(text).toMatch(/issuer_token_requests_total\{outcome="issued"\} 6/);
    expect(text).toMatch(/issuer_token_requests_total\{outcome="quota"\} 6/);
    expect(text).toMatch(/issuer_token_keys\{state="active"\} 1/);
    expect(text).not.toMatch(/alice|bob/);
    const health = await fetchRaw(`${issuer.admin?.url ?? ''}/healthz`);
    expect(health.status).toBe(200);
  });
});

describe('the issuer across a restart, a new period and key rotation', () => {
  it('keeps every user’s count and its keys across a real restart on the same directories', async () => {
    now = T0 + 10;
    const before = publishedKeys().map((k) => Buffer.from(k.id).toString('hex'));
    const issuer = await startIssuer(config(), { clock });
    try {
      expect(publishedKeys().map((k) => Buffer.from(k.id).toString('hex'))).toEqual(before);
      for (const credential of [alice, bob]) {
        const { reply } = await fetchToken(issuer, credential);
        expect([reply.status, errorCode(reply)]).toEqual([429, 'ERR_TOKEN_QUOTA']);
      }
      // A new period: a new budget.
      now = T0 - (T0 % PERIOD) + PERIOD;
      const { reply, token } = await fetchToken(issuer, bob);
      expect(reply.status).toBe(200);
      await expect(
        verifyToken(token ?? new Uint8Array(), challenge, publishedKeys(), now),
      ).resolves.toBeDefined();
    } finally {
      await issuer.close();
    }
  });

  it('announces the next key before it signs, overlaps, and drops an expired key', async () => {
    rmSync(join(dir, 'keys'), { recursive: true, force: true });
    rmSync(join(dir, 'data'), { recursive: true, force: true });
    const start = T0 + 100 * PERIOD;
    now = start;
    const issuer = await startIssuer(config(), { clock });
    try {
      const [a] = publishedKeys();
      if (a === undefined) throw new Error('no key');
      const idOf = (k: TokenKey | undefined): string => Buffer.from(k?.id ?? []).toString('hex');

      // Before the announcement: one key.
      now = start + LIFETIME - PREPUBLISH - 1;
      await issuer.rotateKeys();
      expect(publishedKeys()).toHaveLength(1);

      // Announced: in the public-key file, not in the directory; A still signs.
      now = start + LIFETIME - PREPUBLISH;
      await issuer.rotateKeys();
      const [b, a2] = publishedKeys();
      expect(idOf(a2)).toBe(idOf(a));
      expect(b?.notBefore).toBe(start + LIFETIME);
      expect(b?.notAfter).toBe(start + 2 * LIFETIME + OVERLAP);
      expect((await directory(issuer))['token-keys']).toHaveLength(1);
      const beforeTakeover = await fetchToken(issuer, alice);
      expect(beforeTakeover.reply.status).toBe(200);
      const byA = await verifyToken(
        beforeTakeover.token ?? new Uint8Array(),
        challenge,
        publishedKeys(),
        now,
      );
      expect(Buffer.from(byA.keyId).toString('hex')).toBe(idOf(a));

      // Takeover: B signs, A is still valid (overlap) and listed second.
      now = start + LIFETIME;
      const listed = (await directory(issuer))['token-keys'];
      expect(listed.map((k) => k['not-before'])).toEqual([start + LIFETIME, start]);
      const afterTakeover = await fetchToken(issuer, alice);
      const byB = await verifyToken(
        afterTakeover.token ?? new Uint8Array(),
        challenge,
        publishedKeys(),
        now,
      );
      expect(Buffer.from(byB.keyId).toString('hex')).toBe(idOf(b));
      // A's earlier token still redeems during the overlap.
      await expect(
        verifyToken(beforeTakeover.token ?? new Uint8Array(), challenge, publishedKeys(), now),
      ).resolves.toBeDefined();

      // A request blinded for A is refused once B signs (unless their last octets collide).
      const forA = await createTokenRequest(challenge, a.spki);
      if (a.id[31] !== b?.id[31]) {
        const refused = await postRequest(issuer, alice, forA.request);
        expect([refused.status, errorCode(refused)]).toEqual([422, 'ERR_TOKEN_KEY_UNKNOWN']);
      }

      // A expires: out of the directory, the public-key file and the key directory.
      now = a.notAfter;
      await issuer.rotateKeys();
      expect(publishedKeys().map(idOf)).toEqual([idOf(b)]);
      expect((await directory(issuer))['token-keys']).toHaveLength(1);
      expect(readdirSync(join(dir, 'keys')).filter((f) => f.startsWith('token-key-'))).toHaveLength(
        1,
      );
      await expect(
        verifyToken(beforeTakeover.token ?? new Uint8Array(), challenge, [a], now),
      ).rejects.toMatchObject({ code: 'ERR_TOKEN_KEY_EXPIRED' });
      expect(existsSync(join(dir, 'keys', ISSUER_PUBLIC_KEY_FILE))).toBe(true);
    } finally {
      await issuer.close();
    }
  });

  it('answers 503 past maxPendingSignings, and counts nothing for the refused', async () => {
    now = T0;
    const own = { dataDir: join(dir, 'busy-data'), keyDir: join(dir, 'busy-keys') };
    const base = config(own);
    const issuer = await startIssuer(
      { ...base, tokensPerPeriod: 10, limits: { ...base.limits, maxPendingSignings: 1 } },
      { clock },
    );
    try {
      const spki = (await directory(issuer))['token-keys'][0]?.['token-key'] ?? '';
      const key = new Uint8Array(Buffer.from(spki, 'base64url'));
      const requests = await Promise.all(
        Array.from({ length: 4 }, () => createTokenRequest(challenge, key)),
      );
      const replies = await Promise.all(requests.map((p) => postRequest(issuer, alice, p.request)));
      const busy = replies.filter((r) => r.status === 503);
      expect(busy.length).toBeGreaterThan(0);
      for (const r of busy) {
        expect([errorCode(r), r.headers['retry-after']]).toEqual(['ERR_BUSY', '1']);
      }
      const issued = replies.filter((r) => r.status === 200).length;
      expect(issued + busy.length).toBe(4);
      // Only what was issued was counted: the rest of the ten are still there.
      let more = 0;
      while ((await fetchToken(issuer, alice)).reply.status === 200) more += 1;
      expect(issued + more).toBe(10);
    } finally {
      await issuer.close();
    }
  });

  it('refuses to start on a key file it cannot use', async () => {
    const keyDir = join(dir, 'bad-keys');
    rmSync(keyDir, { recursive: true, force: true });
    const { mkdirSync, writeFileSync } = await import('node:fs');
    mkdirSync(keyDir, { mode: 0o700 });
    writeFileSync(join(keyDir, 'token-key-1-0123456789abcdef.json'), '{"version":1}', {
      mode: 0o600,
    });
    await expect(startIssuer(config({ keyDir }), { clock })).rejects.toMatchObject({
      code: 'ERR_ISSUER_KEYS',
    });
  });
});
