import { ApiClientError, type ApiClientErrorInit } from '@mimi-discovery/common';
import type { JsonApiErrorCode } from './json-api.js';
import type { ObliviousClientErrorCode } from './oblivious/errors.js';
import { openResult } from './open-sealed.js';
import type { DiscoverOptions, DiscoveryResult } from './types.js';

/**
 * What the clients of the JSON API share — the direct one (`discovery-client.ts`) and the one
 * through a relay (`oblivious-client.ts`): their verbs, their error, their deadlines.
 */

/**
 * Time allowed for the response headers, and then for the body, in milliseconds: a batch of
 * a thousand CSIs that the resolver has not cached takes a while.
 */
export const DISCOVERY_CLIENT_TIMEOUT_MS = 120_000;
/** Time allowed for the TCP connection and the TLS handshake, in milliseconds. */
export const DISCOVERY_CLIENT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * A resolver's JSON API, with the discovery verbs of the in-process `Resolver`. `context` is
 * sent to the API (which refuses one that is not a context); `audienceKeys` never leave the
 * client: the boxes they match are opened here (`open-sealed.ts`), their entries filtered with
 * the context and the client's `msp`, and `msps` ranked again.
 */
export interface DiscoveryClient {
  /** Discovers one CSI given as typed. */
  discover(input: string, options?: DiscoverOptions): Promise<DiscoveryResult>;
  /**
   * Discovers many CSIs; results in input order. A list longer than one request may carry is
   * sent as several, a few at once (the direct client: batches of its `maxBatch`; through a
   * relay: chunks of what one token covers).
   */
  discoverMany(inputs: readonly string[], options?: DiscoverOptions): Promise<DiscoveryResult[]>;
  /** Closes the client's connections. */
  close(): Promise<void>;
}

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
 * The sender's own MSP for the filter of the boxes a client opens (`MspFilter.msp`): a
 * provider domain, as the resolver's config `msp`; absent, the MSP the resolver vouched for.
 */
export interface ClientIdentity {
  readonly msp?: string;
}

/**
 * `results` with the boxes `options.audienceKeys` match opened (`openResult`), filtered for the
 * sender of `options.context` and `identity`; as they are without audience keys (the API has
 * filtered them already).
 */
export async function openResults(
  results: DiscoveryResult[],
  options: DiscoverOptions | undefined,
  identity: ClientIdentity,
): Promise<DiscoveryResult[]> {
  const keys = options?.audienceKeys;
  if (keys === undefined || keys.length === 0) return results;
  const filter = {
    ...(options?.context === undefined ? {} : { context: options.context }),
    ...(identity.msp === undefined ? {} : { msp: identity.msp }),
  };
  return Promise.all(results.map((result) => openResult(result, keys, filter)));
}

/** `items` in consecutive parts of at most `size`, in order. */
export function split<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * `f` over `items` with at most `limit` calls in flight, results in order; after the first
 * rejection no further call starts, and it rejects with that error once the calls in flight end.
 */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  f: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const i = next++;
      try {
        out[i] = await f(items[i] as T);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure.error;
  return out;
}
