import {
  EDE_PROHIBITED,
  JSON_CONTENT_TYPE,
  MAX_MESSAGE_OCTETS,
  RESPONSE_PADDING_BLOCK_OCTETS,
  answerQuery,
  decodeMessage,
  dohCacheMaxAge,
  edeOption,
  EDE_OTHER,
  encodeMessage,
  isJsonContentType,
  jsonErrorBody,
  padMessage,
  readBody,
  respondError,
  sendBody,
  sendJson,
  silentLogger,
  systemClock,
  type Clock,
  type Csi,
  type HttpRequest,
  type HttpResponse,
  type JsonResponse,
  type Logger,
  type Message,
  type QueryHandler,
  type QueryLog,
  type QueryLogTransport,
} from '@mimi-discovery/common';
import type { ResolverClientLimits } from '../front-end-limits.js';
import {
  BODY_OCTETS_PER_CSI,
  DISCOVER_PATH,
  JsonApiError,
  MIN_MAX_BODY_OCTETS,
  errorResponse,
  type DiscoverRequest,
  type GatewayMount,
  type GatewayRoutes,
} from '../json-api.js';
import type { ResolverMetrics } from '../metrics.js';
import type { Resolver } from '../types.js';
import {
  DEFAULT_KEY_OVERLAP_SECONDS,
  DEFAULT_KEY_ROTATION_SECONDS,
  openGatewayKeys,
  type GatewayKeys,
} from './keys.js';
import {
  BhttpError,
  ODOH_CONTENT_TYPE,
  OHTTP_KEYS_TYPE,
  OHTTP_REQUEST_TYPE,
  OHTTP_RESPONSE_TYPE,
  OdohError,
  OhttpError,
  PRIVATE_TOKEN_EDNS_OPTION,
  decapsulateRequest,
  decodeBhttpRequest,
  decryptOdohQuery,
  encapsulateResponse,
  encodeBhttpResponse,
  padBhttp,
  BHTTP_RESPONSE_PADDING_BLOCK,
  encodeKeyConfigs,
  encodeOdohConfigs,
  encryptOdohResponse,
  type BhttpRequest,
  type BhttpResponse,
} from '@mimi-discovery/common';
import { openSpentTokenStore, type SpentTokenStore } from './spent-tokens.js';
import {
  DEFAULT_CSIS_PER_TOKEN,
  createTokenRedeemer,
  type IssuerSettings,
  type Redemption,
  type TokenRedeemer,
} from './tokens.js';

/**
 * The resolver's gateway on the oblivious path (design §7, R6, R8): Oblivious HTTP (RFC 9458)
 * and Oblivious DoH (RFC 9230) on the JSON API's port, so that a relay run by another party
 * forwards what senders ask, and neither sees both who asks and for whom.
 *
 * | request (outer)                                        | answer                                     |
 * | ------------------------------------------------------ | ------------------------------------------ |
 * | `GET /.well-known/ohttp-gateway`                       | 200 `application/ohttp-keys` (RFC 9540 §4) |
 * | `POST /.well-known/ohttp-gateway` `message/ohttp-req`   | 200 `message/ohttp-res`: the inner response |
 * | `GET /.well-known/odohconfigs`                         | 200 ObliviousDoHConfigs (RFC 9230 §6.1)    |
 * | `POST /dns-query` `application/oblivious-dns-message`   | 200 the encrypted DNS response             |
 *
 * Key lists carry every key accepted now, newest first, with `cache-control: max-age=` the
 * seconds until the newest key's rotation or {@link MAX_KEYS_CACHE_SECONDS}, the smaller.
 *
 * Outer refusals: 405 (with `allow`), 415 for another content type, 413 over
 * {@link GatewayLimits.maxOuterOctets}, 408 for a body not received within the API's deadline;
 * an OHTTP request whose key id is unknown is 400 `application/problem+json` of type
 * {@link OHTTP_KEY_PROBLEM_TYPE} (RFC 9540 §6, with `code: ERR_OHTTP_KEY_UNKNOWN`); one that is
 * malformed or does not open, 400 JSON `ERR_OHTTP_MALFORMED` / `ERR_OHTTP_DECRYPT`. An ODoH query
 * for an unknown key id is 401 `ERR_ODOH_KEY_UNKNOWN` (RFC 9230 §4.3: the client fetches the
 * configs again), one that does not open 400 `ERR_ODOH_MALFORMED` / `ERR_ODOH_DECRYPT`.
 *
 * Inner requests (Binary HTTP, RFC 9292): `GET /v1/discover?csi=…` and `POST /v1/discover`
 * answer exactly what the direct API answers (the same {@link DiscoverRoute}, the same octets),
 * `POST /dns-query` (`application/dns-message`, RFC 8484) what the DoH front end answers (the
 * same handler, padded to 468-octet blocks, RFC 8467); anything else is inner 404
 * `ERR_NOT_FOUND`. Checks, in this order, so that a request refused for its form spends no token:
 * route, method, the request itself (the API's 4xx), a batch over `csisPerToken` (inner 413
 * `ERR_BATCH_TOO_LARGE`, `detail.csisPerToken`), then the token (`tokens.ts`: inner 401 with one
 * `www-authenticate` per accepted issuer key), recorded as spent — durably — before anything is
 * resolved. An ODoH query carries its token in EDNS option {@link PRIVATE_TOKEN_EDNS_OPTION},
 * removed before the query is answered; without a valid one the answer is REFUSED with Extended
 * DNS Error 18 whose EXTRA-TEXT is the refusal code (when the query has EDNS, RFC 6891 §7).
 *
 * Limits: the outer body (see {@link gatewayLimits}), Binary HTTP field counts and size (the
 * decoder's), the inner JSON body (`max(MIN_MAX_BODY_OCTETS, csisPerToken × BODY_OCTETS_PER_CSI)`),
 * a DNS message of at most 65535 octets, and {@link DEFAULT_GATEWAY_DEADLINE_MS} per request
 * (inner 504 `ERR_GATEWAY_TIMEOUT`, or SERVFAIL over ODoH). Every error is answered; none stops
 * the server.
 *
 * Each outer request counts as one request of its peer (the relay) against the API's request
 * rate; the CSIs inside are charged to the token, not to the relay's address (with
 * `requireTokens: false`, to the relay's new-names budget instead). The query log records what
 * the gateway answers with transport `ohttp` or `odoh` and the outer peer — the relay's address:
 * the gateway never learns the sender's.
 */

/** The OHTTP key path (RFC 9540 §4) and gateway resource. */
export const OHTTP_GATEWAY_PATH = '/.well-known/ohttp-gateway';
/** The ODoH configs path (RFC 9230 §6.2). */
export const ODOH_CONFIGS_PATH = '/.well-known/odohconfigs';
/** The ODoH target path, and the inner DoH path. */
export const ODOH_TARGET_PATH = '/dns-query';
/** The problem type of an unknown OHTTP key (RFC 9540 §6). */
export const OHTTP_KEY_PROBLEM_TYPE = 'https://iana.org/assignments/http-problem-types#ohttp-key';
/** Longest `max-age` of a key list. */
export const MAX_KEYS_CACHE_SECONDS = 3600;
/** Default most time from an outer request's body to its response. */
export const DEFAULT_GATEWAY_DEADLINE_MS = 30_000;
/** Octets of an inner request beyond its JSON body: control data, header fields, framing. */
export const GATEWAY_INNER_OVERHEAD_OCTETS = 8192;
/** Octets of encapsulation around an inner request (OHTTP header, HPKE enc, AEAD tag; ODoH framing). */
export const GATEWAY_ENCAPSULATION_OCTETS = 1024;
/** Seconds between two prunings of the spent-token store (also done at start). */
export const SPENT_PRUNE_INTERVAL_SECONDS = 3600;
/** The DoH media type (RFC 8484 §6). */
export const DNS_MESSAGE_TYPE = 'application/dns-message';

/** The gateway's settings (`gateway` of the resolver config, `config.ts`). */
export interface GatewaySettings {
  /** Private HPKE keys and the public-key file (`keys.ts`). */
  readonly keyDir: string;
  /** The spent-token store (`spent-tokens.ts`). */
  readonly dataDir: string;
  /** origin_info of the challenges; default the JSON API URL's authority (`host:port`). */
  readonly originName?: string;
  /** Default {@link DEFAULT_CSIS_PER_TOKEN}. */
  readonly csisPerToken?: number;
  /** Default true. */
  readonly requireTokens?: boolean;
  /** Default `DEFAULT_KEY_ROTATION_SECONDS`. */
  readonly keyRotationSeconds?: number;
  /** Default `DEFAULT_KEY_OVERLAP_SECONDS`. */
  readonly keyOverlapSeconds?: number;
  readonly issuers: readonly IssuerSettings[];
  /** Default {@link DEFAULT_GATEWAY_DEADLINE_MS}. */
  readonly deadlineMs?: number;
}

/** What the gateway uses besides its settings. */
export interface GatewayComponents {
  /** Resolves issuers' KEYCONF sets. */
  readonly resolver: Pick<Resolver, 'resolve'>;
  /** Answers inner DNS queries: the DNS front ends' handler (`createResolverQueryHandler`). */
  readonly dnsHandler: QueryHandler;
  /** The per-client limits (with `requireTokens: false`, inner CSIs are charged here). */
  readonly limits: ResolverClientLimits;
  readonly metrics?: ResolverMetrics;
  /** Records each inner DNS query (transport `ohttp` / `odoh`, the relay as peer). */
  readonly queryLog?: QueryLog;
  /** Whole seconds since the epoch (keys, tokens); default `systemClock`. */
  readonly now?: Clock;
  readonly log?: Logger;
}

/** A gateway: its keys, its store, and the routes it mounts on the JSON API. */
export interface Gateway {
  readonly keys: GatewayKeys;
  readonly store: SpentTokenStore;
  /** For `JsonApiComponents.gateway`. */
  mount(api: GatewayMount): GatewayRoutes;
  /** Closes the spent-token store, after the redemptions in progress. */
  close(): Promise<void>;
}

/** The size bounds of one gateway. */
export interface GatewayLimits {
  /** Largest inner JSON body. */
  readonly maxInnerBodyOctets: number;
  /** Largest outer body of an OHTTP request. */
  readonly maxOuterOctets: number;
  /** Largest outer body of an ODoH query. */
  readonly maxOdohOctets: number;
}

/** The size bounds for `csisPerToken` (see the module comment). */
export function gatewayLimits(csisPerToken: number): GatewayLimits {
  const maxInnerBodyOctets = Math.max(MIN_MAX_BODY_OCTETS, csisPerToken * BODY_OCTETS_PER_CSI);
  return {
    maxInnerBodyOctets,
    maxOuterOctets:
      maxInnerBodyOctets + GATEWAY_INNER_OVERHEAD_OCTETS + GATEWAY_ENCAPSULATION_OCTETS,
    maxOdohOctets: MAX_MESSAGE_OCTETS + GATEWAY_ENCAPSULATION_OCTETS,
  };
}

/**
 * Opens the gateway's keys (creating or rotating them) and its spent-token store. Throws
 * `GatewayKeyError` or `SpentTokenError` when either directory cannot be used, and
 * `TokenSettingsError` for an issuer given neither or both of `keyName` and `keysFile`.
 */
export async function createGateway(
  settings: GatewaySettings,
  components: GatewayComponents,
): Promise<Gateway> {
  const now = components.now ?? systemClock;
  const log = components.log ?? silentLogger;
  const csisPerToken = settings.csisPerToken ?? DEFAULT_CSIS_PER_TOKEN;
  const requireTokens = settings.requireTokens ?? true;
  const deadlineMs = settings.deadlineMs ?? DEFAULT_GATEWAY_DEADLINE_MS;
  const limits = gatewayLimits(csisPerToken);
  const keys = await openGatewayKeys(
    {
      keyDir: settings.keyDir,
      rotationSeconds: settings.keyRotationSeconds ?? DEFAULT_KEY_ROTATION_SECONDS,
      overlapSeconds: settings.keyOverlapSeconds ?? DEFAULT_KEY_OVERLAP_SECONDS,
    },
    { now, log },
  );
  const store = openSpentTokenStore(settings.dataDir);
  const metrics = components.metrics;
  // Entries of expired issuer keys go: such tokens are refused by their key's expiry anyway.
  const prune = (): void => {
    store.prune(now()).catch((error: unknown) => log.error('spent-prune-failed', faultOf(error)));
  };
  prune();
  const pruning = setInterval(prune, SPENT_PRUNE_INTERVAL_SECONDS * 1000);
  pruning.unref();
  // Checked now, so that a bad issuer fails the start rather than the first request.
  createTokenRedeemer(
    { originName: settings.originName ?? 'check', issuers: settings.issuers },
    { resolver: components.resolver, store, now },
  );
  const taggedLogs = {
    ohttp: tagged(components.queryLog, 'ohttp'),
    odoh: tagged(components.queryLog, 'odoh'),
  };

  const mount = (api: GatewayMount): GatewayRoutes => {
    let redeemer: TokenRedeemer | undefined;
    // Made at the first request: the default origin is the API's authority, known once it listens.
    const tokens = (): TokenRedeemer =>
      (redeemer ??= createTokenRedeemer(
        { originName: settings.originName ?? api.authority(), issuers: settings.issuers },
        {
          resolver: components.resolver,
          store,
          now,
          log,
          count: (outcome) => metrics?.recordGatewayToken(outcome),
        },
      ));

    const innerJson = (response: JsonResponse): BhttpResponse => ({
      status: response.status,
      headers: [['content-type', JSON_CONTENT_TYPE], ...Object.entries(response.headers ?? {})],
      // As `sendJson` writes it: the same octets as the direct API.
      body: Buffer.from(
        `${'text' in response.body ? response.body.text : JSON.stringify(response.body.value)}\n`,
      ),
    });

    /** A token's redemption, or the relay's budget without tokens; undefined: go on. */
    const admit = async (
      authorization: string | undefined,
      peer: string,
      csis: () => readonly Csi[],
    ): Promise<BhttpResponse | undefined> => {
      if (!requireTokens) {
        const outcome = components.limits.chargeCsis(peer, csis());
        if (outcome.kind === 'pass') return undefined;
        return innerJson(
          errorResponse(
            new JsonApiError(
              'ERR_RATE_LIMITED',
              `too many new CSIs; retry in ${outcome.retryAfter} s`,
              {
                detail: 'new-csis',
                retryAfter: outcome.retryAfter,
              },
            ),
          ),
        );
      }
      const redemption = await tokens().redeem(authorization);
      if (redemption.kind === 'redeemed') return undefined;
      const refused = innerJson(tokenRefusalResponse(redemption, csisPerToken));
      const challenges = await tokens().challenges();
      return {
        ...refused,
        headers: [
          ...refused.headers,
          ...challenges.map((c): [string, string] => ['www-authenticate', c]),
        ],
      };
    };

    const innerDiscover = async (
      request: BhttpRequest,
      query: string,
      peer: string,
    ): Promise<BhttpResponse> => {
      let parsed: DiscoverRequest;
      try {
        parsed = await api.discover.parse(
          request.method,
          query,
          async () => innerJsonBody(request, limits.maxInnerBodyOctets),
          csisPerToken,
        );
      } catch (error) {
        if (error instanceof JsonApiError && error.code === 'ERR_BATCH_TOO_LARGE') {
          return innerJson({
            status: 413,
            body: {
              value: {
                error: { code: error.code, message: error.message, detail: { csisPerToken } },
              },
            },
            headers: { 'cache-control': 'no-store' },
          });
        }
        return innerJson(errorResponse(error));
      }
      const refused = await admit(header(request, 'authorization'), peer, () =>
        api.discover.csisOf(parsed),
      );
      if (refused !== undefined) return refused;
      try {
        return innerJson(await api.discover.answer(parsed, { transport: 'ohttp', peer }));
      } catch (error) {
        if (!(error instanceof JsonApiError)) log.error('inner-discover-failed', faultOf(error));
        return innerJson(errorResponse(error));
      }
    };

    const innerDns = async (request: BhttpRequest, peer: string): Promise<BhttpResponse> => {
      if (request.method !== 'POST') {
        const refused = innerJson(
          errorResponse(
            new JsonApiError('ERR_METHOD_NOT_ALLOWED', `${ODOH_TARGET_PATH} takes POST`),
          ),
        );
        return { ...refused, headers: [...refused.headers, ['allow', 'POST']] };
      }
      if (mediaType(header(request, 'content-type')) !== DNS_MESSAGE_TYPE) {
        return innerJson(
          errorResponse(
            new JsonApiError('ERR_UNSUPPORTED_MEDIA_TYPE', `the body must be ${DNS_MESSAGE_TYPE}`),
          ),
        );
      }
      if (request.body.length < 12 || request.body.length > MAX_MESSAGE_OCTETS) {
        return innerJson(
          errorResponse(new JsonApiError('ERR_BAD_REQUEST', 'the body is not a DNS message')),
        );
      }
      const refused = await admit(header(request, 'authorization'), peer, () => []);
      if (refused !== undefined) return refused;
      const answer = await answerQuery(request.body, {
        handler: components.dnsHandler,
        context: { transport: 'doh', remoteAddress: peer },
        log,
        queryLog: taggedLogs.ohttp,
      });
      if (answer.kind === 'drop') {
        return innerJson(errorResponse(new JsonApiError('ERR_BAD_REQUEST', 'not a DNS query')));
      }
      const maxAge =
        answer.maxAge ?? (answer.response === undefined ? 0 : dohCacheMaxAge(answer.response));
      return {
        status: 200,
        headers: [
          ['content-type', DNS_MESSAGE_TYPE],
          ['cache-control', `max-age=${maxAge}`],
        ],
        body: padMessage(answer.wire, RESPONSE_PADDING_BLOCK_OCTETS),
      };
    };

    /** The inner response to one decapsulated Binary HTTP request. */
    const inner = async (bytes: Uint8Array, peer: string): Promise<BhttpResponse> => {
      let request: BhttpRequest;
      try {
        request = decodeBhttpRequest(bytes);
      } catch (error) {
        if (!(error instanceof BhttpError)) throw error;
        record('inner:malformed', 400);
        return innerJson(errorResponse(new JsonApiError('ERR_BAD_REQUEST', error.message)));
      }
      const { path, query } = splitTarget(request.path);
      let response: BhttpResponse;
      let label = `inner:${path}`;
      if (path === DISCOVER_PATH) response = await innerDiscover(request, query, peer);
      else if (path === ODOH_TARGET_PATH) response = await innerDns(request, peer);
      else {
        label = 'inner:other';
        response = innerJson(
          errorResponse(
            new JsonApiError(
              'ERR_NOT_FOUND',
              `no route ${path}; the gateway serves ${DISCOVER_PATH} and ${ODOH_TARGET_PATH}`,
            ),
          ),
        );
      }
      record(label, response.status);
      return response;
    };

    const record = (path: string, status: number): void => {
      metrics?.recordGatewayRequest(path, status);
    };

    /** Reads an outer body of at most `limit` octets of `type`; throws the API's errors. */
    const outerBody = async (
      req: HttpRequest,
      type: string,
      limit: number,
    ): Promise<Uint8Array> => {
      if (mediaType(req.headers['content-type']) !== type) {
        throw new JsonApiError('ERR_UNSUPPORTED_MEDIA_TYPE', `the request body must be ${type}`);
      }
      const tooLarge = `the request body is larger than ${limit} octets`;
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) > limit) {
        throw new JsonApiError('ERR_BODY_TOO_LARGE', tooLarge);
      }
      const read = await readBody(req, limit, { timeoutMs: api.requestTimeoutMs });
      if (read === 'too-large') throw new JsonApiError('ERR_BODY_TOO_LARGE', tooLarge);
      if (read === 'timeout') {
        throw new JsonApiError('ERR_TIMEOUT', 'the request body was not received in time');
      }
      if (read === 'aborted') {
        throw new JsonApiError('ERR_BAD_REQUEST', 'the request body was not received whole');
      }
      return read;
    };

    const keysMaxAge = (): string =>
      `max-age=${Math.min(MAX_KEYS_CACHE_SECONDS, keys.secondsToRotation())}`;

    const ohttp = async (req: HttpRequest, res: HttpResponse, peer: string): Promise<number> => {
      const body = await outerBody(req, OHTTP_REQUEST_TYPE, limits.maxOuterOctets);
      let opened: Awaited<ReturnType<typeof decapsulateRequest>>;
      try {
        opened = await decapsulateRequest(keys.ohttp(), body);
      } catch (error) {
        if (!(error instanceof OhttpError)) throw error;
        if (error.code === 'ERR_OHTTP_KEY_UNKNOWN') {
          sendBody(
            req,
            res,
            {
              status: 400,
              contentType: 'application/problem+json',
              body: `${JSON.stringify({
                type: OHTTP_KEY_PROBLEM_TYPE,
                title: 'key identifier unknown',
                status: 400,
                code: error.code,
              })}\n`,
              headers: { 'cache-control': 'no-store' },
            },
            api.responses,
          );
          return 400;
        }
        throw new GatewayRefusal(400, error.code, error.message);
      }
      const response = await withDeadline(inner(opened.request, peer), deadlineMs, () =>
        innerJson({
          status: 504,
          body: {
            value: jsonErrorBody({
              code: 'ERR_GATEWAY_TIMEOUT',
              message: `no answer within ${deadlineMs} ms`,
            }),
          },
          headers: { 'cache-control': 'no-store' },
        }),
      );
      const sealed = await encapsulateResponse(
        opened.context,
        padBhttp(encodeBhttpResponse(response), BHTTP_RESPONSE_PADDING_BLOCK),
      );
      sendBody(
        req,
        res,
        {
          status: 200,
          contentType: OHTTP_RESPONSE_TYPE,
          body: sealed,
          headers: { 'cache-control': 'no-store' },
        },
        api.responses,
      );
      return 200;
    };

    const odoh = async (req: HttpRequest, res: HttpResponse, peer: string): Promise<number> => {
      const body = await outerBody(req, ODOH_CONTENT_TYPE, limits.maxOdohOctets);
      let opened: Awaited<ReturnType<typeof decryptOdohQuery>>;
      try {
        opened = await decryptOdohQuery(keys.odoh(), body);
      } catch (error) {
        if (!(error instanceof OdohError)) throw error;
        throw new GatewayRefusal(
          error.code === 'ERR_ODOH_KEY_UNKNOWN' ? 401 : 400,
          error.code,
          error.message,
        );
      }
      const wire = await withDeadline(odohAnswer(opened.query, peer), deadlineMs, () =>
        odohServfail(opened.query),
      );
      const sealed = await encryptOdohResponse(opened.context, wire);
      sendBody(
        req,
        res,
        {
          status: 200,
          contentType: ODOH_CONTENT_TYPE,
          body: sealed,
          headers: { 'cache-control': 'no-store' },
        },
        api.responses,
      );
      return 200;
    };

    /** The DNS answer to a decrypted ODoH query: its token redeemed and removed first. */
    const odohAnswer = async (bytes: Uint8Array, peer: string): Promise<Uint8Array> => {
      let query: Message | undefined;
      try {
        query = decodeMessage(bytes);
      } catch {
        query = undefined;
      }
      let stripped = bytes;
      if (query !== undefined && query.questions.length === 1) {
        const options = query.edns?.options ?? [];
        const tokenOptions = options.filter((o) => o.code === PRIVATE_TOKEN_EDNS_OPTION);
        if (requireTokens) {
          const redemption =
            tokenOptions.length > 1
              ? ({
                  kind: 'refused',
                  code: 'ERR_TOKEN_INVALID',
                  message: 'more than one token',
                } as const)
              : await tokens().redeemToken(tokenOptions[0]?.data);
          if (redemption.kind === 'refused') {
            record('inner:odoh', 401);
            return encodeMessage(refusedQuery(query, redemption.code));
          }
        } else {
          const name = query.questions[0]?.name;
          if (components.limits.query(peer, 'doh', name).kind === 'limited') {
            return encodeMessage(refusedQuery(query, 'ERR_RATE_LIMITED'));
          }
        }
        if (tokenOptions.length > 0 && query.edns !== undefined) {
          stripped = encodeMessage({
            ...query,
            edns: {
              ...query.edns,
              options: options.filter((o) => o.code !== PRIVATE_TOKEN_EDNS_OPTION),
            },
          });
        }
      }
      // Anything else (bytes that do not decode, no or many questions) gets the answer every
      // front end gives it (FORMERR and the like), for which nothing is resolved.
      const answer = await answerQuery(stripped, {
        handler: components.dnsHandler,
        context: { transport: 'doh', remoteAddress: peer },
        log,
        queryLog: taggedLogs.odoh,
      });
      record('inner:odoh', 200);
      if (answer.kind === 'drop')
        throw new GatewayRefusal(400, 'ERR_BAD_REQUEST', 'not a DNS query');
      return answer.wire;
    };

    const handle = async (req: HttpRequest, res: HttpResponse, peer: string): Promise<void> => {
      const { path } = splitTarget(req.url ?? '/');
      let status: number;
      try {
        await keys.refresh();
        status = await route(req, res, path, peer);
      } catch (error) {
        const response = gatewayErrorResponse(error);
        if (response.status >= 500) log.error('gateway-request-failed', faultOf(error));
        sendJson(req, res, response, api.responses);
        status = response.status;
      }
      record(path, status);
    };

    const route = async (
      req: HttpRequest,
      res: HttpResponse,
      path: string,
      peer: string,
    ): Promise<number> => {
      const method = req.method ?? '';
      if (path === OHTTP_GATEWAY_PATH) {
        if (method === 'POST') return ohttp(req, res, peer);
        if (method === 'GET' || method === 'HEAD') {
          sendBody(
            req,
            res,
            {
              status: 200,
              contentType: OHTTP_KEYS_TYPE,
              body: encodeKeyConfigs(keys.ohttp().map((k) => k.config)),
              headers: { 'cache-control': keysMaxAge() },
            },
            api.responses,
          );
          return 200;
        }
        throw new GatewayRefusal(
          405,
          'ERR_METHOD_NOT_ALLOWED',
          `${path} takes GET or POST`,
          'GET, POST',
        );
      }
      if (path === ODOH_CONFIGS_PATH) {
        if (method !== 'GET' && method !== 'HEAD') {
          throw new GatewayRefusal(405, 'ERR_METHOD_NOT_ALLOWED', `${path} takes GET`, 'GET');
        }
        sendBody(
          req,
          res,
          {
            status: 200,
            contentType: 'application/octet-stream',
            body: encodeOdohConfigs(keys.odoh().map((k) => k.config)),
            headers: { 'cache-control': keysMaxAge() },
          },
          api.responses,
        );
        return 200;
      }
      if (method !== 'POST') {
        throw new GatewayRefusal(405, 'ERR_METHOD_NOT_ALLOWED', `${path} takes POST`, 'POST');
      }
      return odoh(req, res, peer);
    };

    return {
      serves: (path) =>
        path === OHTTP_GATEWAY_PATH || path === ODOH_CONFIGS_PATH || path === ODOH_TARGET_PATH,
      handle: (req, res, peer) =>
        handle(req, res, peer).catch((error: unknown) => {
          log.error('gateway-request-failed', faultOf(error));
          res.destroy();
        }),
    };
  };

  return {
    keys,
    store,
    mount,
    close: () => {
      clearInterval(pruning);
      return store.close();
    },
  };
}

/** An outer refusal with a code outside the API's set, or a status of its own. */
class GatewayRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly allow?: string,
  ) {
    super(message);
  }
}

function gatewayErrorResponse(error: unknown): JsonResponse {
  if (!(error instanceof GatewayRefusal)) return errorResponse(error);
  return {
    status: error.status,
    body: { value: jsonErrorBody(error) },
    headers: {
      'cache-control': 'no-store',
      ...(error.allow === undefined ? {} : { allow: error.allow }),
    },
  };
}

/** The inner 401 of a refused token (its challenges are added by the caller). */
function tokenRefusalResponse(
  redemption: Extract<Redemption, { kind: 'refused' }>,
  csisPerToken: number,
): JsonResponse {
  return {
    status: 401,
    body: {
      value: {
        error: { code: redemption.code, message: redemption.message, detail: { csisPerToken } },
      },
    },
    headers: { 'cache-control': 'no-store' },
  };
}

/**
 * REFUSED with Extended DNS Error 18 "Prohibited" (RFC 8914 §4.19) whose EXTRA-TEXT is `code`,
 * as the DNS front ends refuse a limited query (`server.ts`); RA set.
 */
function refusedQuery(query: Message, code: string): Message {
  const base = respondError(query, 'REFUSED');
  return {
    ...base,
    flags: { ...base.flags, ra: true },
    ...(base.edns === undefined
      ? {}
      : { edns: { ...base.edns, options: [edeOption(EDE_PROHIBITED, code)] } }),
  };
}

/**
 * SERVFAIL for a query not answered within the deadline, with Extended DNS Error 0 saying so
 * (RFC 8914: every SERVFAIL says why) when the query has EDNS; header only when it does not
 * decode.
 */
function odohServfail(bytes: Uint8Array): Uint8Array {
  try {
    const base = respondError(decodeMessage(bytes), 'SERVFAIL');
    return encodeMessage(
      base.edns === undefined
        ? base
        : {
            ...base,
            edns: { ...base.edns, options: [edeOption(EDE_OTHER, 'deadline: no answer in time')] },
          },
    );
  } catch {
    const out = Uint8Array.from(bytes.subarray(0, 12));
    out[2] = 0x80 | ((out[2] ?? 0) & 0x79);
    out[3] = 0x02;
    out.fill(0, 4, 12);
    return out;
  }
}

/** `work`'s result, or `late()`'s when `work` takes longer than `ms`. */
async function withDeadline<T>(work: Promise<T>, ms: number, late: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(late()), ms);
    timer.unref();
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** A query log that records with `transport`, or none. */
function tagged(
  queryLog: QueryLog | undefined,
  transport: QueryLogTransport,
): QueryLog | undefined {
  if (queryLog === undefined) return undefined;
  return {
    path: queryLog.path,
    peer: queryLog.peer,
    record: (entry) => queryLog.record({ ...entry, transport }),
    stats: () => queryLog.stats(),
    flush: () => queryLog.flush(),
    close: () => queryLog.close(),
  };
}

/** The first value of a header field of an inner request. */
function header(request: BhttpRequest, name: string): string | undefined {
  return request.headers.find(([n]) => n === name)?.[1];
}

/** The media type of a content type, lowercase, without parameters. */
function mediaType(contentType: string | undefined): string | undefined {
  return contentType?.split(';')[0]?.trim().toLowerCase();
}

/** The path and raw query string of a request target. */
function splitTarget(target: string): { path: string; query: string } {
  const at = target.indexOf('?');
  return at < 0
    ? { path: target, query: '' }
    : { path: target.slice(0, at), query: target.slice(at + 1) };
}

/** The JSON body of an inner POST, checked as `readJsonBody` checks an outer one. */
function innerJsonBody(request: BhttpRequest, limit: number): unknown {
  if (!isJsonContentType(header(request, 'content-type'))) {
    throw new JsonApiError(
      'ERR_UNSUPPORTED_MEDIA_TYPE',
      'the request body must be application/json',
    );
  }
  if (request.body.length > limit) {
    throw new JsonApiError('ERR_BODY_TOO_LARGE', `the request body is larger than ${limit} octets`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(request.body);
  } catch (cause) {
    throw new JsonApiError('ERR_BAD_JSON', 'the request body is not valid UTF-8', { cause });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new JsonApiError('ERR_BAD_JSON', 'the request body is not valid JSON', { cause });
  }
}

/** A fault for the log: its class and code, never its message (it may quote a CSI). */
function faultOf(error: unknown): { fault: string; code?: string } {
  if (!(error instanceof Error)) return { fault: typeof error };
  const code = (error as { code?: unknown }).code;
  return { fault: error.name, ...(typeof code === 'string' ? { code } : {}) };
}
