import {
  createApiClient,
  isJsonObject,
  type ApiAnswer,
  type ApiEndpointOptions,
} from '@mimi-discovery/common';
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
import { DEFAULT_MAX_BATCH, DISCOVER_PATH, JSON_API_ERRORS } from './json-api.js';
import {
  createObliviousClient,
  type ObliviousClient,
  type ObliviousClientOptions,
} from './oblivious-client.js';
import { CsiMemo } from './csi-memo.js';
import { expectedCsi, parseDiscoveryResult } from './result-json.js';
import type { DiscoveryResult } from './types.js';

// Shared with the oblivious client, and exported here as before.
export {
  DISCOVERY_CLIENT_CONNECT_TIMEOUT_MS,
  DISCOVERY_CLIENT_TIMEOUT_MS,
  DiscoveryClientError,
} from './discovery-client-base.js';
export type { ClientIdentity, DiscoveryClient } from './discovery-client-base.js';
export { parseDiscoveryResult } from './result-json.js';

/**
 * A client of a resolver's JSON API (design §7; json-api.ts): what an MSP back end, the CLI's
 * `lookup --resolver`, the tests and the bench call to discover CSIs through a running resolver.
 * It has the two verbs of the in-process `Resolver` and returns the same `DiscoveryResult`s:
 *
 * - `discover(input, options?)`: `GET /v1/discover?csi=<as typed>[&context=…]`, one result;
 * - `discoverMany(inputs, options?)`: `POST /v1/discover` `{"csis": [...], "context"?}`, one
 *   result per input, in order (contact sync). A list longer than the client's `maxBatch`
 *   (default `DEFAULT_MAX_BATCH`, the API's default bound) is sent as batches of that size,
 *   {@link DISCOVERY_BATCH_CONCURRENCY} at once over the client's connections, so the resolver
 *   works on one while the client reads another; the first batch refused or failed fails the
 *   call (no batch starts after it). An API configured with a lower bound refuses a batch over it
 *   (`ERR_BATCH_TOO_LARGE`): give the client that bound as its `maxBatch`.
 *
 * `options.context` goes to the API; `options.audienceKeys` never do: the boxes they match are
 * opened in the client (`open-sealed.ts`), their entries filtered with the context and the
 * client's `msp` (`createDiscoveryClient({ …, msp })`; absent, the MSP the resolver vouched for),
 * and each result's `msps` ranked again.
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
 * Largest response to `discover`, in octets: far above the JSON of the largest result the
 * resolver writes (the mappings of at most 1 + `MAX_MAPREF_FANOUT` MAP RRsets, each within one
 * DNS message of 64 KiB).
 */
export const MAX_DISCOVERY_RESPONSE_OCTETS = 1024 * 1024;
/**
 * Largest response to one request of `discoverMany` (one batch), in octets: a batch of the API's default bound
 * (`DEFAULT_MAX_BATCH`, 1000 CSIs) at 64 KiB a result, many times what recipients publish.
 */
export const MAX_DISCOVERY_BATCH_RESPONSE_OCTETS = 64 * 1024 * 1024;

/**
 * Connections a client opens to the API at once. undici sends one POST (not idempotent) per
 * connection at a time even over HTTP/2, so this also bounds the batches of `discoverMany` in
 * flight; further requests wait in the client.
 */
export const DISCOVERY_CLIENT_CONNECTIONS = 4;

/** Batches of one `discoverMany` call in flight at once (see the module comment). */
export const DISCOVERY_BATCH_CONCURRENCY = 4;

/**
 * Octets of a client's memo of parsed inputs (`csi-memo.ts`), by which it checks that each
 * result answers the CSI asked: about 30,000 typical phone numbers. A contact sync sends the
 * same inputs again and again, and parsing a phone number (libphonenumber) costs more than
 * parsing its result's JSON.
 */
export const DISCOVERY_CLIENT_PARSED_CSI_OCTETS = 4 * 1024 * 1024;

const CODES: ReadonlySet<string> = new Set(Object.keys(JSON_API_ERRORS));

/**
 * Where the API is and how to reach it. Defaults: {@link DISCOVERY_CLIENT_TIMEOUT_MS},
 * {@link DISCOVERY_CLIENT_CONNECTIONS}, and as the largest response
 * {@link MAX_DISCOVERY_RESPONSE_OCTETS} for `discover`, {@link MAX_DISCOVERY_BATCH_RESPONSE_OCTETS}
 * for `discoverMany` (one `maxResponseOctets` sets both). Or, with `relay`, the API through an
 * oblivious relay (`oblivious-client.ts`).
 */
export type DiscoveryClientOptions = DirectDiscoveryClientOptions | RelayDiscoveryClientOptions;

/**
 * The JSON API at a URL, the sender's MSP for the boxes the client opens, and the most CSIs one
 * request carries (`maxBatch`, a positive integer; default `DEFAULT_MAX_BATCH`, the API's
 * default bound).
 */
export type DirectDiscoveryClientOptions = ApiEndpointOptions &
  ClientIdentity & { readonly maxBatch?: number };

/** The JSON API reached through an oblivious relay (design §7, R6): `createObliviousClient`'s options. */
export interface RelayDiscoveryClientOptions extends ClientIdentity {
  readonly relay: ObliviousClientOptions;
}

/**
 * A client of the JSON API at `options.url`, over HTTP/2 or HTTP/1.1; or, given `relay`, the
 * oblivious client of `createObliviousClient` (the same verbs and results, and `dnsQuery`).
 * Throws a `TypeError` for a URL that is not http or https (through a relay: https).
 */
export function createDiscoveryClient(options: RelayDiscoveryClientOptions): ObliviousClient;
export function createDiscoveryClient(options: DirectDiscoveryClientOptions): DiscoveryClient;
export function createDiscoveryClient(options: DiscoveryClientOptions): DiscoveryClient;
export function createDiscoveryClient(options: DiscoveryClientOptions): DiscoveryClient {
  if ('relay' in options) {
    return createObliviousClient(
      options.msp === undefined || options.relay.msp !== undefined
        ? options.relay
        : { ...options.relay, msp: options.msp },
    );
  }
  const identity: ClientIdentity = options.msp === undefined ? {} : { msp: options.msp };
  const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
  if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) {
    throw new TypeError(`maxBatch must be a positive integer, not ${String(options.maxBatch)}`);
  }
  // A batch waiting in the client for a connection would spend its deadline there: no more in
  // flight than there are connections to carry them.
  const batchesInFlight = Math.min(
    DISCOVERY_BATCH_CONCURRENCY,
    options.connections ?? DISCOVERY_CLIENT_CONNECTIONS,
  );
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

  const parsed = new CsiMemo(DISCOVERY_CLIENT_PARSED_CSI_OCTETS);

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
    if (result.csi !== expectedCsi(input, result, parsed)) {
      throw fault(answer, `${answer.url} answered a result for another CSI`);
    }
    return result;
  };

  return {
    async discover(input, asked) {
      const context = asked?.context;
      const answer = await api.send({
        method: 'GET',
        path: DISCOVER_PATH,
        query: context === undefined ? { csi: input } : { csi: input, context },
      });
      const result = resultFor(answer, input, ok(answer));
      return (await openResults([result], asked, identity))[0] as DiscoveryResult;
    },
    async discoverMany(inputs, asked) {
      const context = asked?.context;
      const sendBatch = async (batch: readonly string[]): Promise<DiscoveryResult[]> => {
        const answer = await api.send({
          method: 'POST',
          path: DISCOVER_PATH,
          body: context === undefined ? { csis: batch } : { csis: batch, context },
          maxResponseOctets: options.maxResponseOctets ?? MAX_DISCOVERY_BATCH_RESPONSE_OCTETS,
        });
        const value = ok(answer);
        const results = isJsonObject(value) ? value['results'] : undefined;
        if (!Array.isArray(results) || results.length !== batch.length) {
          throw fault(answer, `${answer.url} did not answer ${batch.length} results`);
        }
        return results.map((r: unknown, i) => resultFor(answer, batch[i] as string, r));
      };
      const parsed =
        inputs.length <= maxBatch
          ? await sendBatch(inputs)
          : (await mapLimited(split(inputs, maxBatch), batchesInFlight, sendBatch)).flat();
      return openResults(parsed, asked, identity);
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
