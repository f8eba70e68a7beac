import { CsiError } from '@mimi-discovery/common';
import {
  senderView,
  type DiscoveryResult,
  type Resolver,
  type ResolverStats,
  type VerifiedMapping,
} from '@mimi-discovery/resolver';

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
    cacheHitsBy: { answer: 0, discovery: 0 },
    cacheMissesBy: { answer: 0, discovery: 0 },
    signatureVerifications: 0,
    failureCacheHits: 0,
    upstreamQueries: 0,
    validationFailures: {},
    cacheBytes: 0,
    rootCopy: { state: 'off', transfersOk: 0, transfersFailed: 0 },
    trustAnchorKeys: { addpend: 0, valid: 0, missing: 0, revoked: 0, removed: 0 },
    authkeyRefetches: { allowed: 0, refused: 0 },
  };
}

const notUsed = (): Promise<never> => Promise.reject(new Error('not used'));

/**
 * A resolver whose methods are those of `methods`; any other method rejects with "not used",
 * but `stats` (idle counters), `flushCache`, `flushName`, `flushCsi` (nothing flushed) and
 * `close`, which do nothing. It has no
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
    flushName: () => 0,
    flushCsi: () => 0,
    refreshRootCopy: notUsed,
    probeTrustAnchor: notUsed,
    trustAnchorKeys: () => [],
    observeUpstream: () => undefined,
    close: async () => undefined,
    ...methods,
  };
}

/**
 * A `found` result for `csi` with one verified mapping, as the resolver gives it: one MSP
 * (`chat.example`, tag `primary`), key `a2V5`, seq 7, valid through January 2026, TTL 300; the
 * keys of `mapping` replace those; `msps` ranked from it as a resolver without an identity ranks.
 */
export function foundResult(csi: string, mapping: Partial<VerifiedMapping> = {}): DiscoveryResult {
  return senderView(
    {
      csi,
      status: 'found',
      msps: [],
      mappings: [
        {
          msps: [{ provider: 'chat.example', tags: ['primary'], uri: 'im:alice@chat.example' }],
          key: 'a2V5',
          seq: 7,
          iat: 1_767_225_600,
          exp: 1_769_817_600,
          new: false,
          prover: 'cHJvdmVy',
          zone: '4.4.e164.mimi.arpa',
          server: 'https://127.0.0.1:8444/dns-query',
          ...mapping,
        },
      ],
      ttl: 300,
    },
    {},
  );
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
    msps: [],
    mappings: [],
    ttl: 0,
    error: { reason: 'invalid-csi', detail: error.message },
  };
}
