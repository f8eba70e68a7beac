import { CsiError } from '@mimi-discovery/common';
import type { DiscoveryResult, Resolver, ResolverStats } from '@mimi-discovery/resolver';

/**
 * A test double of the resolver for the tests of its front ends (JSON API, DNS, DoH) and of the
 * CLI's lookup, which need a resolver that answers as each test says and records what it was
 * asked, without a network behind it.
 */

/** The counters of a resolver that has done nothing, its root copy off (a new object each call). */
export function idleResolverStats(): ResolverStats {
  return {
    cacheHits: 0,
    cacheMisses: 0,
    signatureVerifications: 0,
    failureCacheHits: 0,
    upstreamQueries: 0,
    validationFailures: {},
    cacheBytes: 0,
    rootCopy: { state: 'off', transfersOk: 0, transfersFailed: 0 },
  };
}

const notUsed = (): Promise<never> => Promise.reject(new Error('not used'));

/**
 * A resolver whose methods are those of `methods`; any other method rejects with "not used",
 * but `stats` (idle counters), `flushCache` and `close`, which do nothing. It has no
 * `discoverManyJson` unless `methods` gives one, so that the JSON API serializes results itself.
 */
export function resolverDouble<T extends Partial<Resolver>>(
  methods: T,
): Omit<Resolver, 'discoverManyJson'> & NoInfer<T> {
  return {
    discover: notUsed,
    discoverCsi: notUsed,
    discoverMany: notUsed,
    resolve: notUsed,
    stats: idleResolverStats,
    flushCache: () => undefined,
    refreshRootCopy: notUsed,
    close: async () => undefined,
    ...methods,
  };
}

/**
 * The result for an input that is not a CSI, as the resolver gives it (`invalid-csi`) when
 * `parseCsi` threw `error`; any other error is thrown again.
 */
export function invalidCsiResult(input: string, error: unknown): DiscoveryResult {
  if (!(error instanceof CsiError)) throw error;
  return {
    csi: input,
    status: 'error',
    mappings: [],
    ttl: 0,
    error: { reason: 'invalid-csi', detail: error.message },
  };
}
