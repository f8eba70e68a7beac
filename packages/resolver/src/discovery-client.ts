import {
  ApiClientError,
  createApiClient,
  type ApiClientErrorInit,
  isJsonObject,
  parseCsi,
  type ApiAnswer,
  type ApiEndpointOptions,
  type MspEntry,
} from '@mimi-discovery/common';
import { DISCOVER_PATH, JSON_API_ERRORS, type JsonApiErrorCode } from './json-api.js';
import type { ObliviousClientErrorCode } from './oblivious/errors.js';
// A cycle: the oblivious client uses this module's error and parser, inside functions only.
import {
  createObliviousClient,
  type ObliviousClient,
  type ObliviousClientOptions,
} from './oblivious-client.js';
import type {
  DiscoveryErrorReason,
  DiscoveryResult,
  DiscoveryStatus,
  VerifiedMapping,
} from './types.js';

/**
 * A client of a resolver's JSON API (design §7; json-api.ts): what an MSP back end, the CLI's
 * `lookup --resolver`, the tests and the bench call to discover CSIs through a running resolver.
 * It has the two verbs of the in-process `Resolver` and returns the same `DiscoveryResult`s:
 *
 * - `discover(input)`: `GET /v1/discover?csi=<as typed>`, one result;
 * - `discoverMany(inputs)`: `POST /v1/discover` `{"csis": [...]}`, one result per input, in
 *   order (contact sync). The API refuses a batch over its `maxBatch` (`ERR_BATCH_TOO_LARGE`);
 *   the client does not split it, since only the operator's config knows the bound.
 *
 * Every result is parsed back with {@link parseDiscoveryResult}, the one parser of the format
 * that `resultJson` writes, and checked to answer the CSI asked. A refusal rejects with a
 * {@link DiscoveryClientError} carrying the API's stable code (`ERR_CSI_INVALID` for a single
 * input that is not a CSI, where the in-process `discover` returns an `invalid-csi` result); an
 * exchange that fails, with `ERR_API_UNREACHABLE`, `ERR_API_TIMEOUT` or `ERR_API_RESPONSE`.
 *
 * ```ts
 * const resolver = createDiscoveryClient({ url: 'https://resolver.example:8453', ca: caPem });
 * const result = await resolver.discover('+44 20 7946 0018'); // { csi, status: 'found', … }
 * await resolver.close();
 * ```
 */

/**
 * Time allowed for the response headers, and then for the body, in milliseconds: a batch of
 * a thousand CSIs that the resolver has not cached takes a while.
 */
export const DISCOVERY_CLIENT_TIMEOUT_MS = 120_000;
/** Time allowed for the TCP connection and the TLS handshake, in milliseconds. */
export const DISCOVERY_CLIENT_CONNECT_TIMEOUT_MS = 10_000;
/**
 * Largest response to `discover`, in octets: far above the JSON of the largest result the
 * resolver writes (the mappings of at most 1 + `MAX_MAPREF_FANOUT` MAP RRsets, each within one
 * DNS message of 64 KiB).
 */
export const MAX_DISCOVERY_RESPONSE_OCTETS = 1024 * 1024;
/**
 * Largest response to `discoverMany`, in octets: a batch of the API's default bound
 * (`DEFAULT_MAX_BATCH`, 1000 CSIs) at 64 KiB a result, many times what recipients publish.
 */
export const MAX_DISCOVERY_BATCH_RESPONSE_OCTETS = 64 * 1024 * 1024;

/**
 * Connections a client opens to the API at once; HTTP/2 carries up to
 * `API_MAX_CONCURRENT_STREAMS` (100) requests on each, and further requests wait in the client.
 */
export const DISCOVERY_CLIENT_CONNECTIONS = 4;

const CODES: ReadonlySet<string> = new Set(Object.keys(JSON_API_ERRORS));
const STATUSES: ReadonlySet<string> = new Set<DiscoveryStatus>(['none', 'empty', 'found', 'error']);
const REASONS: ReadonlySet<string> = new Set<DiscoveryErrorReason>([
  'bogus',
  'timeout',
  'limit',
  'invalid-csi',
  'servfail',
]);

/**
 * A refusal of the JSON API (`code` one of `JSON_API_ERRORS`), a fault of the exchange
 * (`ERR_API_UNREACHABLE`, `ERR_API_TIMEOUT`, `ERR_API_RESPONSE`), or, through a relay, one of
 * `OBLIVIOUS_CLIENT_ERRORS` (`oblivious/errors.ts`).
 */
export class DiscoveryClientError extends ApiClientError<
  JsonApiErrorCode | ObliviousClientErrorCode
> {
  /**
   * For a batch that could not be completed (`ERR_TOKENS_EXHAUSTED`): one result per input, in
   * order, those not obtained as `error` results (reason `limit`), never as `none`.
   */
  readonly results: DiscoveryResult[] | undefined;

  constructor(
    code: DiscoveryClientError['code'],
    message: string,
    init: ApiClientErrorInit & { results?: DiscoveryResult[] },
  ) {
    super(code, message, init);
    this.results = init.results;
  }
}

/**
 * Where the API is and how to reach it. Defaults: {@link DISCOVERY_CLIENT_TIMEOUT_MS},
 * {@link DISCOVERY_CLIENT_CONNECTIONS}, and as the largest response
 * {@link MAX_DISCOVERY_RESPONSE_OCTETS} for `discover`, {@link MAX_DISCOVERY_BATCH_RESPONSE_OCTETS}
 * for `discoverMany` (one `maxResponseOctets` sets both). Or, with `relay`, the API through an
 * oblivious relay (`oblivious-client.ts`).
 */
export type DiscoveryClientOptions = ApiEndpointOptions | RelayDiscoveryClientOptions;

/** The JSON API reached through an oblivious relay (design §7, R6): `createObliviousClient`'s options. */
export interface RelayDiscoveryClientOptions {
  readonly relay: ObliviousClientOptions;
}

/** A resolver's JSON API, with the discovery verbs of the in-process `Resolver`. */
export interface DiscoveryClient {
  /** Discovers one CSI given as typed. */
  discover(input: string): Promise<DiscoveryResult>;
  /** Discovers many CSIs in one request; results in input order. */
  discoverMany(inputs: readonly string[]): Promise<DiscoveryResult[]>;
  /** Closes the client's connections. */
  close(): Promise<void>;
}

/**
 * A client of the JSON API at `options.url`, over HTTP/2 or HTTP/1.1; or, given `relay`, the
 * oblivious client of `createObliviousClient` (the same verbs and results, and `dnsQuery`).
 * Throws a `TypeError` for a URL that is not http or https (through a relay: https).
 */
export function createDiscoveryClient(options: RelayDiscoveryClientOptions): ObliviousClient;
export function createDiscoveryClient(options: ApiEndpointOptions): DiscoveryClient;
export function createDiscoveryClient(options: DiscoveryClientOptions): DiscoveryClient;
export function createDiscoveryClient(options: DiscoveryClientOptions): DiscoveryClient {
  if ('relay' in options) return createObliviousClient(options.relay);
  const api = createApiClient({
    url: options.url,
    ...(options.ca === undefined ? {} : { ca: options.ca }),
    connectTimeoutMs: DISCOVERY_CLIENT_CONNECT_TIMEOUT_MS,
    timeoutMs: options.timeoutMs ?? DISCOVERY_CLIENT_TIMEOUT_MS,
    maxResponseOctets: options.maxResponseOctets ?? MAX_DISCOVERY_RESPONSE_OCTETS,
    allowH2: true,
    connections: options.connections ?? DISCOVERY_CLIENT_CONNECTIONS,
    codes: CODES,
    error: DiscoveryClientError,
    ...(options.onResponse === undefined ? {} : { onResponse: options.onResponse }),
  });

  /** The JSON of a 200; anything else that is not a refusal is a fault. */
  const ok = (answer: ApiAnswer): unknown => {
    if (answer.value === undefined) {
      throw fault(answer, `${answer.url} answered HTTP ${answer.status} without JSON`);
    }
    if (answer.status !== 200) throw fault(answer, `${answer.url} answered HTTP ${answer.status}`);
    return answer.value;
  };
  /** `value` as the result for `input`, or a fault. */
  const resultFor = (answer: ApiAnswer, input: string, value: unknown): DiscoveryResult => {
    const result = parseDiscoveryResult(value);
    if (result === undefined) {
      throw fault(answer, `${answer.url} answered something other than a discovery result`);
    }
    if (result.csi !== expectedCsi(input, result)) {
      throw fault(answer, `${answer.url} answered a result for another CSI`);
    }
    return result;
  };

  return {
    async discover(input) {
      const answer = await api.send({ method: 'GET', path: DISCOVER_PATH, query: { csi: input } });
      return resultFor(answer, input, ok(answer));
    },
    async discoverMany(inputs) {
      const answer = await api.send({
        method: 'POST',
        path: DISCOVER_PATH,
        body: { csis: inputs },
        maxResponseOctets: options.maxResponseOctets ?? MAX_DISCOVERY_BATCH_RESPONSE_OCTETS,
      });
      const value = ok(answer);
      const results = isJsonObject(value) ? value['results'] : undefined;
      if (!Array.isArray(results) || results.length !== inputs.length) {
        throw fault(answer, `${answer.url} did not answer ${inputs.length} results`);
      }
      return results.map((r: unknown, i) => resultFor(answer, inputs[i] as string, r));
    },
    close: () => api.close(),
  };
}

function fault(answer: ApiAnswer, message: string): DiscoveryClientError {
  return new DiscoveryClientError('ERR_API_RESPONSE', message, {
    url: answer.url,
    status: answer.status,
  });
}

/**
 * The CSI a result for `input` names: the canonical CSI, or the input as given when the
 * resolver found it not to be one (json-api.ts: a batch's `invalid-csi` results).
 */
export function expectedCsi(input: string, result: DiscoveryResult): string | undefined {
  if (result.error?.reason === 'invalid-csi') return input;
  try {
    return parseCsi(input);
  } catch {
    return undefined;
  }
}

/**
 * A discovery result from its JSON (as `resultJson` writes it and the JSON API answers it), or
 * undefined when `value` does not have that shape: the fields of `DiscoveryResult` with their
 * types, `status` and `error.reason` from their lists, `error` exactly when the status is
 * `error`. Fields it does not know are left out (a newer API may add some). Byte strings stay
 * base64url text and signatures are not checked again: the resolver verified them, and the
 * result says which keys it trusted.
 *
 * `parseDiscoveryResult(JSON.parse(JSON.stringify(resultJson(r))))` equals `r`.
 */
export function parseDiscoveryResult(value: unknown): DiscoveryResult | undefined {
  if (!isJsonObject(value)) return undefined;
  const { csi, status, mappings, ttl, stale, error } = value;
  if (typeof csi !== 'string' || typeof status !== 'string' || !STATUSES.has(status)) {
    return undefined;
  }
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0) return undefined;
  if (stale !== undefined && typeof stale !== 'boolean') return undefined;
  if (!Array.isArray(mappings)) return undefined;
  const verified: VerifiedMapping[] = [];
  for (const m of mappings as unknown[]) {
    const mapping = parseMapping(m);
    if (mapping === undefined) return undefined;
    verified.push(mapping);
  }
  const failure = error === undefined ? undefined : parseFailure(error);
  if ((status === 'error') !== (failure !== undefined)) return undefined;
  if (error !== undefined && failure === undefined) return undefined;
  return {
    csi,
    status: status as DiscoveryStatus,
    mappings: verified,
    ttl,
    ...(stale === true ? { stale: true } : {}),
    ...(failure === undefined ? {} : { error: failure }),
  };
}

function parseMapping(value: unknown): VerifiedMapping | undefined {
  if (!isJsonObject(value)) return undefined;
  const { msps, key, seq, iat, exp, prover, zone, server } = value;
  const isNew = value['new'];
  if (!Array.isArray(msps)) return undefined;
  const entries: MspEntry[] = [];
  for (const msp of msps as unknown[]) {
    const entry = parseMsp(msp);
    if (entry === undefined) return undefined;
    entries.push(entry);
  }
  if (
    typeof key !== 'string' ||
    typeof prover !== 'string' ||
    typeof zone !== 'string' ||
    typeof server !== 'string' ||
    typeof isNew !== 'boolean' ||
    !isWhole(seq) ||
    !isWhole(iat) ||
    !isWhole(exp)
  ) {
    return undefined;
  }
  return { msps: entries, key, seq, iat, exp, new: isNew, prover, zone, server };
}

function parseMsp(value: unknown): MspEntry | undefined {
  if (!isJsonObject(value)) return undefined;
  const { provider, tags, uri } = value;
  if (typeof provider !== 'string' || !Array.isArray(tags)) return undefined;
  if (!tags.every((tag: unknown) => typeof tag === 'string')) return undefined;
  if (uri !== undefined && typeof uri !== 'string') return undefined;
  return { provider, tags: [...(tags as string[])], ...(uri === undefined ? {} : { uri }) };
}

function parseFailure(value: unknown): DiscoveryResult['error'] | undefined {
  if (!isJsonObject(value)) return undefined;
  const { reason, detail } = value;
  if (typeof reason !== 'string' || !REASONS.has(reason) || typeof detail !== 'string') {
    return undefined;
  }
  return { reason: reason as DiscoveryErrorReason, detail };
}

function isWhole(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
