import { createHash, webcrypto } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Token, publicVerif, util } from '@cloudflare/privacypass-ts';
import {
  createLocalCa,
  issueServerCertificate,
  parseCsi,
  type LocalCa,
} from '@mimi-discovery/common';
import { Agent, request } from 'undici';
import { resultJson, type DiscoveryResult } from '../src/index.js';
import {
  OHTTP_KEYS_TYPE,
  OHTTP_REQUEST_TYPE,
  OHTTP_RESPONSE_TYPE,
  OhttpError,
  challengeHeader,
  decapsulateRequest,
  decodeBhttpRequest,
  encapsulateResponse,
  encodeBhttpResponse,
  encodeKeyConfigs,
  generateOhttpKeyPair,
  parseAuthorizationHeader,
  tokenChallenge,
  tokenKeyFromSpki,
  type BhttpRequest,
  type BhttpResponse,
  type OhttpKeyPair,
} from '@mimi-discovery/common';

/**
 * Test doubles of the other parties of the oblivious path, following the issue 13 contract's
 * wire agreements: an issuer (RFC 9578 directory and token requests, per-credential quota), a
 * gateway (RFC 9540 key list, RFC 9458 decapsulation, inner routes answered from a table of
 * results, RFC 9577 token redemption with a spent set) and a relay (forwards, records every
 * octet it forwards). Each is a real HTTPS server on 127.0.0.1.
 */

/** TLS for every double: one local CA. */
export interface DoubleTls {
  readonly ca: LocalCa;
  readonly cert: string;
  readonly key: string;
}

export async function doubleTls(): Promise<DoubleTls> {
  const ca = await createLocalCa();
  const leaf = await issueServerCertificate(ca, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  return { ca, cert: leaf.certPem, key: leaf.keyPem };
}

type Handler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => Promise<void> | void;

async function listen(tls: DoubleTls, handler: Handler): Promise<{ server: Server; port: number }> {
  const server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      Promise.resolve(handler(req, Buffer.concat(chunks), res)).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
}

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

// ---------------------------------------------------------------------------------------------
// Issuer

/** One issuer key: the library's issuer, its SPKI (RFC 9578 §6.5) and validity. */
export interface IssuerKey {
  readonly issuer: publicVerif.Issuer;
  readonly spki: Uint8Array;
  readonly notBefore: number;
  readonly notAfter: number;
}

export async function createIssuerKey(
  name: string,
  notBefore: number,
  notAfter: number,
): Promise<IssuerKey> {
  const pair = await publicVerif.Issuer.generateKey(publicVerif.BlindRSAMode.PSS, {
    modulusLength: 2048,
    publicExponent: Uint8Array.from([1, 0, 1]),
  });
  const spki = await publicVerif.getPublicKeyBytes(pair.publicKey);
  const issuer = new publicVerif.Issuer(
    publicVerif.BlindRSAMode.PSS,
    name,
    pair.privateKey,
    pair.publicKey,
  );
  return { issuer, spki, notBefore, notAfter };
}

export interface IssuerDouble {
  /** The issuer name, `127.0.0.1:<port>` (its URL authority). */
  readonly name: string;
  /** Keys, newest first; the first signs. Replace to rotate. */
  keys: IssuerKey[];
  /** Token requests answered 200, per credential. */
  readonly issued: Map<string, number>;
  /** Every request: method and path. */
  readonly requests: string[];
  /** Tokens per credential per period (the test's only period). */
  tokensPerPeriod: number;
  /** Token requests being answered now, and the most at any one time. */
  inFlight: number;
  maxInFlight: number;
  close(): Promise<void>;
}

/** How long the issuer double waits before it signs, as a real issuer waits for its flush. */
const ISSUER_FLUSH_MS = 5;

export async function startIssuerDouble(
  tls: DoubleTls,
  init: { credentials: readonly string[]; tokensPerPeriod: number; now: () => number },
): Promise<IssuerDouble> {
  // The issuer stores SHA-256 of each credential (contract), never the credential.
  const users = new Set(init.credentials.map((c) => createHash('sha256').update(c).digest('hex')));
  const double: Omit<IssuerDouble, 'name' | 'close'> = {
    keys: [],
    issued: new Map(),
    requests: [],
    tokensPerPeriod: init.tokensPerPeriod,
    inFlight: 0,
    maxInFlight: 0,
  };
  const { server, port } = await listen(tls, async (req, body, res) => {
    double.requests.push(`${req.method} ${req.url}`);
    if (req.url === '/.well-known/private-token-issuer-directory' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/private-token-issuer-directory' });
      res.end(
        JSON.stringify({
          'issuer-request-uri': '/token-request',
          'token-keys': double.keys
            .filter((k) => init.now() < k.notAfter)
            .map((k) => ({
              'token-type': 2,
              'token-key': b64url(k.spki),
              'not-before': k.notBefore,
              'not-after': k.notAfter,
            })),
        }),
      );
      return;
    }
    if (req.url !== '/token-request')
      return sendJson(res, 404, { error: { code: 'ERR_NOT_FOUND', message: 'no route' } });
    if (req.method !== 'POST')
      return sendJson(res, 405, { error: { code: 'ERR_METHOD', message: 'POST' } });
    if (req.headers['content-type'] !== 'application/private-token-request') {
      return sendJson(res, 415, { error: { code: 'ERR_MEDIA_TYPE', message: 'type' } });
    }
    const auth = req.headers.authorization ?? '';
    const credential = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    const user = createHash('sha256').update(credential).digest('hex');
    if (!users.has(user)) {
      return sendJson(res, 401, {
        error: { code: 'ERR_UNAUTHENTICATED', message: 'unknown credential' },
      });
    }
    const count = double.issued.get(credential) ?? 0;
    if (count >= double.tokensPerPeriod) {
      return sendJson(
        res,
        429,
        { error: { code: 'ERR_TOKEN_QUOTA', message: 'no more tokens this period' } },
        { 'retry-after': '600' },
      );
    }
    let tokenRequest: publicVerif.TokenRequest;
    try {
      tokenRequest = publicVerif.TokenRequest.deserialize(
        publicVerif.BLIND_RSA,
        new Uint8Array(body),
      );
      if (body.length !== 3 + publicVerif.BLIND_RSA.Nk) throw new Error('length');
    } catch {
      return sendJson(res, 400, { error: { code: 'ERR_BAD_TOKEN_REQUEST', message: 'bad' } });
    }
    const key = double.keys.find(
      (k) => tokenKeyFromSpki(k.spki, 0, 1).id.at(-1) === tokenRequest.truncatedTokenKeyId,
    );
    if (key === undefined) {
      return sendJson(res, 422, { error: { code: 'ERR_TOKEN_KEY_UNKNOWN', message: 'key' } });
    }
    // Counted before anything is awaited, as a real issuer decides inside its transaction:
    // concurrent requests never go past the quota.
    double.issued.set(credential, count + 1);
    double.inFlight++;
    double.maxInFlight = Math.max(double.maxInFlight, double.inFlight);
    try {
      // As a real issuer answers: after a flush of its counts (a few milliseconds here), so
      // that concurrent requests overlap as they do there.
      await new Promise((resolve) => setTimeout(resolve, ISSUER_FLUSH_MS));
      const response = await key.issuer.issue(tokenRequest);
      res.writeHead(200, { 'content-type': 'application/private-token-response' });
      res.end(Buffer.from(response.serialize()));
    } finally {
      double.inFlight--;
    }
  });
  return Object.assign(double, {
    name: `127.0.0.1:${port}`,
    close: () => close(server),
  });
}

// ---------------------------------------------------------------------------------------------
// Gateway

/** How the gateway misbehaves for the next outer POSTs (tests of a hostile gateway). */
export type GatewayTamper =
  | 'garbage'
  | 'truncated'
  | 'oversized'
  | 'wrong-type'
  | 'inner-garbage'
  | 'other-csi'
  | 'short-batch'
  | 'keys-garbage';

export interface GatewayDouble {
  readonly url: string;
  /** The gateway's key pairs, newest first. */
  keys: OhttpKeyPair[];
  /** Issuer keys the gateway accepts, with the issuer's name. */
  issuers: { name: string; spki: Uint8Array; notBefore: number; notAfter: number }[];
  csisPerToken: number;
  /** Decoded inner requests, in arrival order, with whether they carried a token. */
  readonly inner: { request: BhttpRequest; token: boolean; status: number }[];
  /** Tokens spent (SHA-256 hex). */
  readonly spent: Set<string>;
  /** The next `n` tokens are found already spent (as if someone replayed them first). */
  replayNext: number;
  tamper: GatewayTamper | undefined;
  close(): Promise<void>;
}

/** The origin name in challenges: the gateway's JSON API authority. */
export async function startGatewayDouble(
  tls: DoubleTls,
  init: { results: ReadonlyMap<string, DiscoveryResult>; now: () => number; csisPerToken?: number },
): Promise<GatewayDouble> {
  const state: Omit<GatewayDouble, 'url' | 'close'> = {
    keys: [await generateOhttpKeyPair(1)],
    issuers: [],
    csisPerToken: init.csisPerToken ?? 100,
    inner: [],
    spent: new Set(),
    replayNext: 0,
    tamper: undefined,
  };
  let origin = '';

  const discover = (input: string): DiscoveryResult => {
    let csi: string;
    try {
      csi = parseCsi(input);
    } catch (error) {
      return {
        csi: input,
        status: 'error',
        msps: [],
        mappings: [],
        ttl: 0,
        error: { reason: 'invalid-csi', detail: (error as Error).message },
      };
    }
    return init.results.get(csi) ?? { csi, status: 'none', msps: [], mappings: [], ttl: 3600 };
  };

  const json = (
    status: number,
    value: unknown,
    headers: [string, string][] = [],
  ): BhttpResponse => ({
    status,
    headers: [['content-type', 'application/json'], ...headers],
    body: new TextEncoder().encode(JSON.stringify(value)),
  });

  const refuse = (code: string, message: string): BhttpResponse =>
    json(
      401,
      { error: { code, message, detail: { csisPerToken: state.csisPerToken } } },
      state.issuers.map((i) => [
        'www-authenticate',
        challengeHeader(tokenChallenge(i.name, origin), tokenKeyFromSpki(i.spki, 0, 1)),
      ]),
    );

  /** RFC 9577 §2.2 redemption: null when the token is good (and now spent), else the 401. */
  const redeem = async (request: BhttpRequest): Promise<BhttpResponse | null> => {
    const header = request.headers.find(([n]) => n === 'authorization')?.[1];
    if (header === undefined) return refuse('ERR_TOKEN_REQUIRED', 'a token is required');
    let token: Token;
    try {
      token = Token.deserialize(publicVerif.BLIND_RSA, parseAuthorizationHeader(header));
    } catch {
      return refuse('ERR_TOKEN_INVALID', 'the token does not decode');
    }
    const keyId = Buffer.from(token.authInput.tokenKeyId);
    const issuer = state.issuers.find((i) =>
      Buffer.from(tokenKeyFromSpki(i.spki, 0, 1).id).equals(keyId),
    );
    if (issuer === undefined)
      return refuse('ERR_TOKEN_KEY_EXPIRED', 'the token key is not accepted');
    const now = init.now();
    if (now < issuer.notBefore || now >= issuer.notAfter) {
      return refuse('ERR_TOKEN_KEY_EXPIRED', 'the token key has expired');
    }
    const challenge = tokenChallenge(issuer.name, origin);
    const digest = createHash('sha256').update(challenge).digest();
    if (!digest.equals(Buffer.from(token.authInput.challengeDigest))) {
      return refuse('ERR_TOKEN_INVALID', 'the token is for another challenge');
    }
    const key = await webcrypto.subtle.importKey(
      'spki',
      util.convertRSASSAPSSToEnc(issuer.spki),
      { name: 'RSA-PSS', hash: 'SHA-384' },
      true,
      ['verify'],
    );
    const origin9578 = new publicVerif.Origin(publicVerif.BlindRSAMode.PSS, [origin]);
    if (!(await origin9578.verify(token, key))) return refuse('ERR_TOKEN_INVALID', 'bad signature');
    const spentId = createHash('sha256').update(parseAuthorizationHeader(header)).digest('hex');
    if (state.replayNext > 0) {
      state.replayNext -= 1;
      state.spent.add(spentId);
    }
    if (state.spent.has(spentId)) return refuse('ERR_TOKEN_SPENT', 'the token was spent before');
    state.spent.add(spentId);
    return null;
  };

  const answerInner = async (request: BhttpRequest): Promise<BhttpResponse> => {
    const url = new URL(request.path, 'https://gateway.invalid');
    if (url.pathname === '/v1/discover' && request.method === 'POST') {
      let csis: unknown;
      try {
        csis = (JSON.parse(new TextDecoder().decode(request.body)) as { csis: unknown }).csis;
      } catch {
        csis = undefined;
      }
      if (!Array.isArray(csis) || !csis.every((c) => typeof c === 'string')) {
        return json(400, { error: { code: 'ERR_BAD_REQUEST', message: 'csis' } });
      }
      // A batch over csisPerToken is refused before the token is looked at, and spends none.
      if (csis.length > state.csisPerToken) {
        return json(413, {
          error: {
            code: 'ERR_BATCH_TOO_LARGE',
            message: `at most ${state.csisPerToken} CSIs per token`,
            detail: { csisPerToken: state.csisPerToken },
          },
        });
      }
      const refusal = await redeem(request);
      if (refusal !== null) return refusal;
      const results = (csis as string[]).map((c) => resultJson(discover(c)));
      if (state.tamper === 'other-csi' && results[0] !== undefined) {
        results[0] = { ...results[0], csi: 'tel:+15555550100' };
      }
      if (state.tamper === 'short-batch') results.pop();
      return json(200, { results });
    }
    if (url.pathname === '/v1/discover' && request.method === 'GET') {
      const refusal = await redeem(request);
      if (refusal !== null) return refusal;
      const csi = url.searchParams.get('csi') ?? '';
      return json(200, resultJson(discover(csi)));
    }
    if (url.pathname === '/dns-query' && request.method === 'POST') {
      const refusal = await redeem(request);
      if (refusal !== null) return refusal;
      // A DNS answer of the double's own: the query with QR set (RFC 1035 §4.1.1).
      const answer = Uint8Array.from(request.body);
      if (answer.length >= 3) answer[2] = (answer[2] as number) | 0x80;
      return { status: 200, headers: [['content-type', 'application/dns-message']], body: answer };
    }
    const refusal = await redeem(request);
    if (refusal !== null) return refusal;
    return json(404, { error: { code: 'ERR_NOT_FOUND', message: 'no route' } });
  };

  const { server, port } = await listen(tls, async (req, body, res) => {
    if (req.url !== '/.well-known/ohttp-gateway') {
      return sendJson(res, 404, { error: { code: 'ERR_NOT_FOUND', message: 'no route' } });
    }
    if (req.method === 'GET') {
      if (state.tamper === 'keys-garbage') {
        res.writeHead(200, { 'content-type': OHTTP_KEYS_TYPE });
        res.end(Buffer.from([0, 9, 1, 2, 3]));
        return;
      }
      res.writeHead(200, { 'content-type': OHTTP_KEYS_TYPE, 'cache-control': 'max-age=3600' });
      res.end(Buffer.from(encodeKeyConfigs(state.keys.map((k) => k.config))));
      return;
    }
    if (req.headers['content-type'] !== OHTTP_REQUEST_TYPE) {
      return sendJson(res, 415, { error: { code: 'ERR_UNSUPPORTED_MEDIA_TYPE', message: 'type' } });
    }
    let opened: Awaited<ReturnType<typeof decapsulateRequest>>;
    try {
      opened = await decapsulateRequest(state.keys, new Uint8Array(body));
    } catch (error) {
      if (error instanceof OhttpError && error.code === 'ERR_OHTTP_KEY_UNKNOWN') {
        res.writeHead(400, { 'content-type': 'application/problem+json' });
        res.end(
          JSON.stringify({
            type: 'https://iana.org/assignments/http-problem-types#ohttp-key',
            title: 'key identifier unknown',
          }),
        );
        return;
      }
      return sendJson(res, 400, { error: { code: 'ERR_OHTTP', message: 'does not decapsulate' } });
    }
    const request = decodeBhttpRequest(opened.request);
    const response = await answerInner(request);
    state.inner.push({
      request,
      token: request.headers.some(([n]) => n === 'authorization'),
      status: response.status,
    });
    const tamper = state.tamper;
    let message = await encapsulateResponse(
      opened.context,
      tamper === 'inner-garbage' ? Uint8Array.from([7, 7, 7, 7]) : encodeBhttpResponse(response),
    );
    if (tamper === 'garbage') message = new Uint8Array(64).fill(0x41);
    if (tamper === 'truncated') message = message.subarray(0, message.length - 5);
    // Far more than a DNS answer can be (the client's bound for `dnsQuery`).
    if (tamper === 'oversized') message = new Uint8Array(256 * 1024).fill(0x42);
    res.writeHead(200, {
      'content-type': tamper === 'wrong-type' ? 'application/json' : OHTTP_RESPONSE_TYPE,
    });
    res.end(Buffer.from(message));
  });
  origin = `127.0.0.1:${port}`;
  return Object.assign(state, {
    url: `https://127.0.0.1:${port}/.well-known/ohttp-gateway`,
    close: () => close(server),
  });
}

// ---------------------------------------------------------------------------------------------
// Relay

export interface RelayDouble {
  /** The relay resource for the gateway: `https://127.0.0.1:<port>/ohttp/resolver`. */
  readonly url: string;
  /** Every octet forwarded, both ways: request bodies and response bodies. */
  readonly forwarded: Buffer[];
  /** Method of each request received on the resource. */
  readonly requests: ('GET' | 'POST')[];
  close(): Promise<void>;
}

/**
 * The relay of the contract: `/ohttp/resolver` forwards POST bodies and GETs to the gateway;
 * only `content-type`/`accept` pass, nothing names the client.
 */
export async function startRelayDouble(tls: DoubleTls, gatewayUrl: string): Promise<RelayDouble> {
  const agent = new Agent({ connect: { ca: tls.ca.certPem } });
  const forwarded: Buffer[] = [];
  const requests: ('GET' | 'POST')[] = [];
  const { server, port } = await listen(tls, async (req, body, res) => {
    if (req.url !== '/ohttp/resolver' || (req.method !== 'GET' && req.method !== 'POST')) {
      return sendJson(res, 404, { error: { code: 'ERR_NOT_FOUND', message: 'no route' } });
    }
    requests.push(req.method);
    if (req.method === 'POST') forwarded.push(body);
    const headers: Record<string, string> = {};
    if (req.headers['content-type'] !== undefined)
      headers['content-type'] = req.headers['content-type'];
    if (req.headers.accept !== undefined) headers['accept'] = req.headers.accept;
    const upstream = await request(gatewayUrl, {
      dispatcher: agent,
      method: req.method,
      headers,
      ...(req.method === 'POST' ? { body } : {}),
    });
    let answer: Buffer;
    try {
      answer = Buffer.from(await upstream.body.arrayBuffer());
    } catch {
      res.destroy();
      return;
    }
    forwarded.push(answer);
    const type = upstream.headers['content-type'];
    res.writeHead(upstream.statusCode, typeof type === 'string' ? { 'content-type': type } : {});
    res.end(answer);
  });
  return {
    url: `https://127.0.0.1:${port}/ohttp/resolver`,
    forwarded,
    requests,
    close: async () => {
      await close(server);
      await agent.close();
    },
  };
}
