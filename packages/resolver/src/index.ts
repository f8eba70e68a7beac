/**
 * @mimi-discovery/resolver — the caching, validating, aggregating resolver (design §6). This file
 * is the package's whole public surface; each section belongs to one module.
 */

// types.ts
export type {
  ValidationStatus,
  DiscoveryStatus,
  DiscoveryErrorReason,
  VerifiedMapping,
  DiscoveryResult,
  ResolvedAnswer,
  ResolverStats,
  Resolver,
  ResolverConfig,
  ResolverComponents,
} from './types.js';

// core: resolver.ts, iterator.ts, validator.ts, cache.ts, upstream.ts, aggregate.ts, limits.ts

// front ends: server.ts, json-api.ts, metrics.ts
