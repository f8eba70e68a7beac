import { parseCsi } from '@mimi-discovery/common';
import { DEFAULT_CSIS_PER_TOKEN } from './gateway/tokens.js';
import {
  DISCOVERY_CLIENT_CONNECT_TIMEOUT_MS,
  DISCOVERY_CLIENT_TIMEOUT_MS,
  DiscoveryClientError,
  mapLimited,
  openResults,
  split,
  type ClientIdentity,
  type DiscoveryClient,
} from './discovery-client-base.js';
import { expectedCsi, parseDiscoveryResult } from './result-json.js';
import { DISCOVER_PATH, JSON_API_ERRORS } from './json-api.js';
import {
  createKeyConfigSource,
  type KeyCheck,
  type KeyConfigSource,
} from './oblivious/key-configs.js';
import {
  OHTTP_REQUEST_TYPE,
  OHTTP_RESPONSE_TYPE,
  decapsulateResponse,
  decodeBhttpResponse,
  encapsulateRequest,
  encodeBhttpRequest,
  padBhttp,
  BHTTP_REQUEST_PADDING_BLOCK,
  parseChallengeHeader,
  type BhttpRequest,
  type BhttpResponse,
  type ParsedChallenge,
} from '@mimi-discovery/common';
import {
  createHttpTransport,
  jsonOf,
  refusalOf,
  type HttpTransport,
} from './oblivious/transport.js';
import { createOdohClient, type OdohClient } from './oblivious/odoh-client.js';
import {
  createTokenWallet,
  tokensPerFetchWithin,
  type Redemption,
  type TokenWallet,
} from './oblivious/wallet.js';
import type { DiscoveryResult } from './types.js';

/**
 * The discovery client through an oblivious relay (design §7, R6, R8): the verbs of
 * `createDiscoveryClient`, each sent as a Binary HTTP request (RFC 9292) encapsulated with
 * Oblivious HTTP (RFC 9458) to the resolver's gateway, through a relay run by another party.
 * The relay sees the client's address and ciphertext; the gateway sees the CSIs and the relay's
 * address. No CSI leaves the client outside an encapsulated request.
 *
 * 1. The gateway's key configuration is fetched through the relay and, with `keyCheck`, checked
 *    against the KEYCONF RRset in the tree (`oblivious/key-configs.ts`); an inconsistent one is
 *    `ERR_KEY_INCONSISTENT` and nothing is sent.
 * 2. The first request is a probe without CSIs (`POST /v1/discover` `{"csis": []}`, no
 *    token): the gateway's 401 says which challenges it accepts and how many CSIs one token
 *    covers (`detail.csisPerToken`), so no CSI is ever sent without a token.
 * 3. Every inner request carries one token (`authorization: PrivateToken token="…"`, RFC 9577
 *    §2.2) from the wallet (`oblivious/wallet.ts`), which fetches tokens from the issuer when it
 *    holds none.
 * 4. `discoverMany` splits a batch into chunks of `csisPerToken` (a 413 `ERR_BATCH_TOO_LARGE`
 *    with a smaller `detail.csisPerToken` splits again and gives the token back, since the
 *    gateway did not spend it), sends up to {@link OBLIVIOUS_BATCH_CONCURRENCY} at once, and
 *    returns the results in input order.
 * 5. A token the gateway refuses (`ERR_TOKEN_SPENT`, `ERR_TOKEN_KEY_EXPIRED`,
 *    `ERR_TOKEN_INVALID`) is dropped and the request sent once more with a fresh one; a second
 *    refusal is the gateway's code. An issuer out of quota is `ERR_TOKENS_EXHAUSTED`; for a
 *    batch, its `results` hold every result, those not obtained as `error` (reason `limit`),
 *    never `none`.
 *
 * Bounds: every exchange within `timeoutMs` (headers, then body), responses within
 * {@link MAX_OBLIVIOUS_RESPONSE_OCTETS}, at most {@link MAX_INNER_ATTEMPTS} inner requests per
 * request or chunk, at most {@link MAX_BATCH_SPLITS} successive splits, and the wallet's bounds.
 *
 * ```ts
 * const client = createObliviousClient({
 *   relay: 'https://relay.example:15329/ohttp/resolver',
 *   ca: caPem,
 *   credential: 'alice-secret',
 *   keyCheck: { resolver, keyName: 'resolver.chat.example.email.mimi.arpa' },
 * });
 * const results = await client.discoverMany(contacts);
 * await client.close();
 * ```
 */

/** Largest encapsulated response read from the relay, in octets (a chunk's JSON, encrypted). */
export const MAX_OBLIVIOUS_RESPONSE_OCTETS = 16 * 1024 * 1024;
/** Largest DNS message answered to `dnsQuery`, in octets (RFC 1035 §4.2.2 framing bound). */
export const MAX_DNS_RESPONSE_OCTETS = 65_535;
/** Chunks of one batch in flight at once. */
export const OBLIVIOUS_BATCH_CONCURRENCY = 4;
/** Inner requests sent for one request or chunk: with a token, then once more with a fresh one. */
export const MAX_INNER_ATTEMPTS = 2;
/** Successive splits of a chunk that the gateway refused as too large. */
export const MAX_BATCH_SPLITS = 2;
/** Connections the client opens to the relay and to issuers at once. */
export const OBLIVIOUS_CLIENT_CONNECTIONS = 4;

/** The inner route of DNS messages (RFC 8484 inside Oblivious HTTP). */
export const DNS_QUERY_PATH = '/dns-query';
const DNS_MESSAGE_TYPE = 'application/dns-message';

/**
 * How to reach a gateway through a relay; `msp`, the sender's MSP for the boxes the client
 * opens (`ClientIdentity`).
 */
export interface ObliviousClientOptions extends ClientIdentity {
  /**
   * The relay resource for the gateway (`https://relay.example:15329/ohttp/resolver`): POST
   * carries encapsulated requests, GET fetches the key configurations.
   */
  readonly relay: string;
  /** PEM CA certificate trusted for the relay and the issuer instead of the system's roots. */
  readonly ca?: string | Uint8Array;
  /** The bearer credential for the issuer (`authorization: Bearer …`). */
  readonly credential?: string;
  /** With it, the key configuration in use must be in the tree (see the module comment). */
  readonly keyCheck?: KeyCheck;
  /** Time for each exchange's headers, and then its body; default `DISCOVERY_CLIENT_TIMEOUT_MS`. */
  readonly timeoutMs?: number;
  /** Tokens requested per fetch; default 10, at most 100 (`tokensPerFetchWithin`). */
  readonly tokensPerFetch?: number;
  /**
   * Issuer names (`host:port`) the credential may be sent to; default whichever issuer the
   * gateway's challenge names.
   */
  readonly issuers?: readonly string[];
  /** The clock, seconds since the epoch; default the system clock. */
  readonly now?: () => number;
  /**
   * The gateway's authority (`host:port`) as an ODoH target (RFC 9230) behind the relay's
   * proxy (`<relay origin>/proxy`), for `odohQuery` (`oblivious/odoh-client.ts`).
   */
  readonly odohTarget?: string;
}

/** The discovery client through a relay, with DNS messages besides. */
export interface ObliviousClient extends DiscoveryClient {
  /** Sends one DNS query (wire format) as DoH (RFC 8484) inside Oblivious HTTP; the answer's wire. */
  dnsQuery(wire: Uint8Array): Promise<Uint8Array>;
  /**
   * Sends one DNS query (wire format) as Oblivious DoH (RFC 9230) through the relay's proxy to
   * `odohTarget`, its token inside; the answer's wire. A `TypeError` without `odohTarget`.
   */
  odohQuery(wire: Uint8Array): Promise<Uint8Array>;
}

/** The inner refusals the client knows: the JSON API's codes and the gateway's token codes. */
const INNER_CODES: ReadonlySet<string> = new Set([
  ...Object.keys(JSON_API_ERRORS),
  'ERR_TOKEN_REQUIRED',
  'ERR_TOKEN_INVALID',
  'ERR_TOKEN_SPENT',
  'ERR_TOKEN_KEY_EXPIRED',
]);

/** Token refusals after which a fresh token is worth one more try. */
const RETRY_CODES: ReadonlySet<string> = new Set([
  'ERR_TOKEN_SPENT',
  'ERR_TOKEN_KEY_EXPIRED',
  'ERR_TOKEN_INVALID',
  'ERR_TOKEN_REQUIRED',
]);

/** What the client has learned from the gateway. */
interface GatewayState {
  /** The gateway's latest challenges; undefined until the probe. */
  challenges: ParsedChallenge[] | undefined;
  /** Whether inner requests need a token (false when the gateway answered the probe). */
  tokensRequired: boolean;
  csisPerToken: number;
}

/** One inner request's outcome, its body parsed when JSON. */
interface InnerAnswer {
  readonly response: BhttpResponse;
  readonly value: unknown;
  /** The redemption it carried, if any. */
  readonly redemption: Redemption | undefined;
}

/**
 * A client of the gateway behind `options.relay`. Throws a `TypeError` for a relay URL that is
 * not https.
 */
export function createObliviousClient(options: ObliviousClientOptions): ObliviousClient {
  const relay = parseRelayUrl(options.relay);
  const relayName = `${relay.origin}${relay.pathname}`;
  const now = options.now ?? ((): number => Date.now() / 1000);
  const tokensPerFetch = tokensPerFetchWithin(options.tokensPerFetch);
  const transport: HttpTransport = createHttpTransport({
    ...(options.ca === undefined ? {} : { ca: options.ca }),
    connectTimeoutMs: DISCOVERY_CLIENT_CONNECT_TIMEOUT_MS,
    timeoutMs: options.timeoutMs ?? DISCOVERY_CLIENT_TIMEOUT_MS,
    connections: OBLIVIOUS_CLIENT_CONNECTIONS,
  });
  const keys: KeyConfigSource = createKeyConfigSource({
    relay,
    transport,
    keyCheck: options.keyCheck,
    now,
  });
  const wallet: TokenWallet = createTokenWallet({
    transport,
    credential: options.credential,
    tokensPerFetch,
    issuers: options.issuers,
    now,
  });
  const state: GatewayState = {
    challenges: undefined,
    tokensRequired: true,
    csisPerToken: DEFAULT_CSIS_PER_TOKEN,
  };
  let probing: Promise<void> | undefined;
  const identity: ClientIdentity = options.msp === undefined ? {} : { msp: options.msp };

  const fault = (message: string, cause?: unknown): DiscoveryClientError =>
    new DiscoveryClientError('ERR_API_RESPONSE', `${relayName}: ${message}`, {
      url: relayName,
      ...(cause === undefined ? {} : { cause }),
    });

  /** One encapsulated exchange: the gateway's inner response, decrypted and decoded. */
  const exchange = async (request: BhttpRequest, maxOctets: number): Promise<BhttpResponse> => {
    for (let fresh = 0; ; fresh++) {
      const config = await keys.current();
      const { message, context } = await encapsulateRequest(
        config,
        padBhttp(encodeBhttpRequest(request), BHTTP_REQUEST_PADDING_BLOCK),
      );
      const reply = await transport.send({
        url: relay,
        method: 'POST',
        headers: { 'content-type': OHTTP_REQUEST_TYPE, accept: OHTTP_RESPONSE_TYPE },
        body: message,
        maxOctets: Math.min(MAX_OBLIVIOUS_RESPONSE_OCTETS, maxOctets + ENCAPSULATION_OVERHEAD),
      });
      if (reply.status !== 200) {
        const value = jsonOf(reply.body);
        // RFC 9458 §5.3, RFC 9540: the gateway does not know the key id (it rotated): fetch the
        // key configurations again, once.
        if (reply.status === 400 && isKeyProblem(value) && fresh === 0) {
          keys.invalidate(config);
          continue;
        }
        const refusal = refusalOf(value);
        throw new DiscoveryClientError(
          'ERR_RELAY_REFUSED',
          `${relayName} answered HTTP ${reply.status}${refusal === undefined ? '' : ` ${refusal.code}: ${refusal.message}`}`,
          {
            url: relayName,
            status: reply.status,
            ...(refusal === undefined ? {} : { detail: refusal.code }),
          },
        );
      }
      if (reply.contentType !== OHTTP_RESPONSE_TYPE) {
        throw fault(
          `answered ${reply.contentType || 'no content type'}, not ${OHTTP_RESPONSE_TYPE}`,
        );
      }
      let inner: Uint8Array;
      try {
        inner = await decapsulateResponse(context, reply.body);
      } catch (error) {
        throw fault('the encapsulated response does not decrypt', error);
      }
      try {
        const response = decodeBhttpResponse(inner);
        if (response.body.length > maxOctets) {
          throw fault(`the inner response is over ${maxOctets} octets`);
        }
        return response;
      } catch (error) {
        if (error instanceof DiscoveryClientError) throw error;
        throw fault('the inner response is not Binary HTTP', error);
      }
    }
  };

  /** Learns from a 401 the gateway's challenges and its `csisPerToken`. */
  const learn = (answer: InnerAnswer): void => {
    const challenges: ParsedChallenge[] = [];
    for (const [name, value] of answer.response.headers) {
      if (name !== 'www-authenticate') continue;
      try {
        challenges.push(...parseChallengeHeader(value));
      } catch (error) {
        throw fault('the gateway sent a challenge that does not parse', error);
      }
    }
    if (challenges.length === 0)
      throw fault('the gateway answered 401 without a PrivateToken challenge');
    state.challenges = challenges;
    state.tokensRequired = true;
    learnCsisPerToken(answer.value);
  };

  const learnCsisPerToken = (value: unknown): number | undefined => {
    const detail = refusalOf(value)?.detail;
    const n =
      typeof detail === 'object' && detail !== null
        ? (detail as Record<string, unknown>)['csisPerToken']
        : undefined;
    if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 1) {
      state.csisPerToken = n;
      return n;
    }
    return undefined;
  };

  /**
   * The probe of the module comment, once per client (again after a failed one); with `force`,
   * again to learn the current challenges (an ODoH refusal carries none).
   */
  const probe = (force = false): Promise<void> => {
    if (!force && (state.challenges !== undefined || !state.tokensRequired)) {
      return Promise.resolve();
    }
    probing ??= (async () => {
      const response = await exchange(discoverBatch([]), MAX_DNS_RESPONSE_OCTETS);
      const answer = { response, value: jsonOf(response.body), redemption: undefined };
      if (response.status === 200) {
        state.tokensRequired = false;
        return;
      }
      if (response.status !== 401) throw innerError(answer);
      learn(answer);
    })().finally(() => {
      probing = undefined;
    });
    return probing;
  };

  /**
   * Sends `build()` with a token: one retry with a fresh token after a token refusal; a 401
   * that names new challenges or a smaller `csisPerToken` is learned. `fits` says whether the
   * request is still within `csisPerToken`; when it no longer is, the answer is the 401 for the
   * caller to split.
   */
  const redeem = async (
    request: (authorization: string | undefined) => BhttpRequest,
    maxOctets: number,
    fits: () => boolean,
  ): Promise<InnerAnswer> => {
    await probe();
    for (let attempt = 1; ; attempt++) {
      const redemption =
        state.tokensRequired && state.challenges !== undefined
          ? await wallet.take(state.challenges)
          : undefined;
      const response = await exchange(request(redemption?.header), maxOctets);
      const answer: InnerAnswer = { response, value: jsonOf(response.body), redemption };
      if (response.status !== 401) return answer;
      const code = refusalOf(answer.value)?.code ?? '';
      learn(answer);
      if (redemption !== undefined && code === 'ERR_TOKEN_KEY_EXPIRED') wallet.dropKey(redemption);
      if (!RETRY_CODES.has(code) || attempt >= MAX_INNER_ATTEMPTS || !fits()) return answer;
    }
  };

  /** One chunk of a batch, within `csisPerToken`, split further when the gateway says so. */
  const sendChunk = async (
    chunk: readonly string[],
    splits: number,
    context: string | undefined,
  ): Promise<DiscoveryResult[]> => {
    if (chunk.length > state.csisPerToken) {
      if (splits >= MAX_BATCH_SPLITS) {
        throw new DiscoveryClientError(
          'ERR_BATCH_TOO_LARGE',
          `${relayName}: the gateway keeps refusing batches as too large`,
          { url: relayName, status: 413 },
        );
      }
      const parts = await mapLimited(
        split(chunk, state.csisPerToken),
        OBLIVIOUS_BATCH_CONCURRENCY,
        (c) => sendChunk(c, splits + 1, context),
      );
      return parts.flat();
    }
    const answer = await redeem(
      (authorization) => discoverBatch(chunk, authorization, context),
      MAX_OBLIVIOUS_RESPONSE_OCTETS,
      () => chunk.length <= state.csisPerToken,
    );
    const { response } = answer;
    if (response.status === 413 && refusalOf(answer.value)?.code === 'ERR_BATCH_TOO_LARGE') {
      // The gateway did not spend the token (contract): keep it for the smaller chunks.
      if (answer.redemption !== undefined) wallet.giveBack(answer.redemption);
      const n = learnCsisPerToken(answer.value);
      if (n !== undefined && n < chunk.length && splits < MAX_BATCH_SPLITS) {
        return sendChunk(chunk, splits + 1, context);
      }
      throw innerError(answer);
    }
    if (response.status === 401 && chunk.length > state.csisPerToken)
      return sendChunk(chunk, splits, context);
    if (response.status !== 200) throw innerError(answer);
    const results = isObject(answer.value) ? answer.value['results'] : undefined;
    if (!Array.isArray(results) || results.length !== chunk.length) {
      throw fault(`the gateway did not answer ${chunk.length} results`);
    }
    return results.map((r: unknown, i) => resultFor(r, chunk[i] as string));
  };

  const resultFor = (value: unknown, input: string): DiscoveryResult => {
    const result = parseDiscoveryResult(value);
    if (result === undefined)
      throw fault('the gateway answered something other than a discovery result');
    if (result.csi !== expectedCsi(input, result)) {
      throw fault('the gateway answered a result for another CSI');
    }
    return result;
  };

  /** The error for an inner answer that is not a success. */
  const innerError = (answer: InnerAnswer): DiscoveryClientError => {
    const refusal = refusalOf(answer.value);
    const status = answer.response.status;
    if (refusal === undefined || !INNER_CODES.has(refusal.code)) {
      return fault(
        refusal === undefined
          ? `the gateway answered HTTP ${status}`
          : `the gateway answered HTTP ${status} with a code the API does not have: ${refusal.code}`,
      );
    }
    const detail = refusal.detail;
    return new DiscoveryClientError(refusal.code as DiscoveryClientError['code'], refusal.message, {
      url: relayName,
      status,
      ...(typeof detail === 'string'
        ? { detail }
        : detail === undefined
          ? {}
          : { detail: JSON.stringify(detail) }),
    });
  };

  const odoh: OdohClient | undefined =
    options.odohTarget === undefined
      ? undefined
      : createOdohClient({
          relay,
          target: options.odohTarget,
          transport,
          keyCheck: options.keyCheck,
          maxAttempts: MAX_INNER_ATTEMPTS,
          now,
          tokens: {
            async take() {
              await probe();
              return state.tokensRequired && state.challenges !== undefined
                ? wallet.take(state.challenges)
                : undefined;
            },
            async refused(redemption, code) {
              if (redemption !== undefined && code === 'ERR_TOKEN_KEY_EXPIRED') {
                wallet.dropKey(redemption);
              }
              if (code !== 'ERR_TOKEN_SPENT') await probe(true);
            },
          },
        });

  return {
    async discover(input, options) {
      // The context goes to the gateway inside the encapsulated request; audience keys never do.
      const context = options?.context;
      const target =
        `${DISCOVER_PATH}?csi=${encodeURIComponent(input)}` +
        (context === undefined ? '' : `&context=${encodeURIComponent(context)}`);
      const answer = await redeem(
        (authorization) => ({
          ...innerBase('GET', target, authorization),
          headers: headersOf(authorization, { accept: 'application/json' }),
        }),
        MAX_OBLIVIOUS_RESPONSE_OCTETS,
        () => true,
      ).catch((error: unknown) => {
        throw withResults(error, [input]);
      });
      if (answer.response.status !== 200) throw innerError(answer);
      const result = resultFor(answer.value, input);
      return (await openResults([result], options, identity))[0] as DiscoveryResult;
    },

    async discoverMany(inputs, options) {
      if (inputs.length === 0) return [];
      const context = options?.context;
      await probe();
      const chunks = split(inputs, state.csisPerToken);
      const settled = await mapLimited(chunks, OBLIVIOUS_BATCH_CONCURRENCY, async (chunk) => {
        try {
          return { ok: true as const, results: await sendChunk(chunk, 0, context) };
        } catch (error) {
          if (error instanceof DiscoveryClientError && error.code === 'ERR_TOKENS_EXHAUSTED') {
            return { ok: false as const, error };
          }
          throw error;
        }
      });
      const exhausted = settled.find((s) => !s.ok);
      if (exhausted === undefined || exhausted.ok) {
        return openResults(
          settled.flatMap((s) => (s.ok ? s.results : [])),
          options,
          identity,
        );
      }
      const results = await openResults(
        settled.flatMap((s, i) =>
          s.ok ? s.results : (chunks[i] as string[]).map((input) => notObtained(input, s.error)),
        ),
        options,
        identity,
      );
      throw new DiscoveryClientError(exhausted.error.code, exhausted.error.message, {
        url: exhausted.error.url,
        ...(exhausted.error.status === undefined ? {} : { status: exhausted.error.status }),
        ...(exhausted.error.retryAfter === undefined
          ? {}
          : { retryAfter: exhausted.error.retryAfter }),
        results,
      });
    },

    async dnsQuery(wire) {
      const answer = await redeem(
        (authorization) => ({
          ...innerBase('POST', DNS_QUERY_PATH, authorization),
          headers: headersOf(authorization, {
            'content-type': DNS_MESSAGE_TYPE,
            accept: DNS_MESSAGE_TYPE,
          }),
          body: wire,
        }),
        MAX_DNS_RESPONSE_OCTETS,
        () => true,
      );
      const { response } = answer;
      if (response.status !== 200) throw innerError(answer);
      const type = response.headers.find(([name]) => name === 'content-type')?.[1] ?? '';
      if (type.split(';')[0]?.trim().toLowerCase() !== DNS_MESSAGE_TYPE) {
        throw fault(`the gateway answered ${type || 'no content type'}, not ${DNS_MESSAGE_TYPE}`);
      }
      return response.body;
    },

    odohQuery(wire) {
      if (odoh === undefined) {
        return Promise.reject(new TypeError('odohQuery needs the odohTarget option'));
      }
      return odoh.query(wire);
    },

    close: () => transport.close(),
  };
}

/** Octets an encapsulated response adds to its Binary HTTP (nonce, tag, framing). */
const ENCAPSULATION_OVERHEAD = 4096;

/** The inner `POST /v1/discover` for `csis`, and the sender's context. */
function discoverBatch(
  csis: readonly string[],
  authorization?: string,
  context?: string,
): BhttpRequest {
  return {
    ...innerBase('POST', DISCOVER_PATH, authorization),
    headers: headersOf(authorization, {
      'content-type': 'application/json',
      accept: 'application/json',
    }),
    body: new TextEncoder().encode(
      JSON.stringify(context === undefined ? { csis } : { csis, context }),
    ),
  };
}

/**
 * The request line of an inner request. The authority is empty: the client names no target,
 * the gateway serves its own routes (RFC 9292 §3.4 allows an empty authority).
 */
function innerBase(
  method: 'GET' | 'POST',
  path: string,
  authorization: string | undefined,
): BhttpRequest {
  return {
    method,
    scheme: 'https',
    authority: '',
    path,
    headers: headersOf(authorization, {}),
    body: new Uint8Array(0),
  };
}

function headersOf(
  authorization: string | undefined,
  fields: Readonly<Record<string, string>>,
): [string, string][] {
  return [
    ...Object.entries(fields),
    ...(authorization === undefined ? [] : [['authorization', authorization] as [string, string]]),
  ];
}

/** RFC 9540 §5 / RFC 9458 §5.3: the problem type of an unknown key id. */
function isKeyProblem(value: unknown): boolean {
  return (
    isObject(value) && value['type'] === 'https://iana.org/assignments/http-problem-types#ohttp-key'
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The result of an input whose request was not sent for want of a token: an error, never none. */
function notObtained(input: string, error: DiscoveryClientError): DiscoveryResult {
  let csi = input;
  try {
    csi = parseCsi(input);
  } catch {
    // Not a CSI: named as given, as the API names it.
  }
  return {
    csi,
    status: 'error',
    msps: [],
    mappings: [],
    ttl: 0,
    error: { reason: 'limit', detail: `${error.code}: ${error.message}` },
  };
}

/** A single request's exhaustion, with its one result (an error) as a batch's would carry. */
function withResults(error: unknown, inputs: readonly string[]): unknown {
  if (!(error instanceof DiscoveryClientError) || error.code !== 'ERR_TOKENS_EXHAUSTED')
    return error;
  return new DiscoveryClientError(error.code, error.message, {
    url: error.url,
    ...(error.status === undefined ? {} : { status: error.status }),
    ...(error.retryAfter === undefined ? {} : { retryAfter: error.retryAfter }),
    results: inputs.map((input) => notObtained(input, error)),
  });
}

function parseRelayUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`${JSON.stringify(value)} is not a URL`);
  }
  if (url.protocol !== 'https:')
    throw new TypeError(`${JSON.stringify(value)} is not an https URL`);
  return url;
}
