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
  SealedJson,
  OpenedBox,
  DiscoveryResult,
  DiscoverOptions,
  ResolvedAnswer,
  ResolverStats,
  CacheName,
  Resolver,
  ResolverConfig,
  ResolverComponents,
  RootCopyConfig,
  UpstreamConfig,
  DiscoveryResultsJson,
} from './types.js';

// core: resolver.ts, questions.ts, iterator.ts, validator.ts, cache.ts, deadline.ts, upstream.ts,
// infra-cache.ts, aggregate.ts, limits.ts, root-copy.ts
export { createResolver } from './resolver.js';
export { ANSWERS, askQuestion, createQuestionStage } from './questions.js';
export type { QuestionCounters, QuestionStage, QuestionStageInit, Resolved } from './questions.js';
export {
  createIterator,
  iterate,
  zoneFor,
  isFailure,
  classifyResponse,
  referralServers,
  ZONE_CUTS,
} from './iterator.js';
export type {
  ZoneCut,
  RootCopyView,
  Resolution,
  Failure,
  ResponseOutcome,
  ResolutionBudget,
  QuestionState,
  IteratorInit,
  Iterator,
} from './iterator.js';
export { EXPIRED, startDeadline } from './deadline.js';
export type { Deadline, Expired } from './deadline.js';
export {
  createBudget,
  LIMIT_REASONS,
  DEADLINE_REASON,
  rrsetOf,
  recordsOf,
  rrsigsOf,
  validateRRset,
  validateDnskeys,
  validateDelegationDs,
  validateDenial,
  MEMO_TYPES,
} from './validator.js';
export type {
  Validation,
  VerificationBudget,
  BudgetOptions,
  TrustedKeys,
  Denial,
  SignatureMemo,
  VerifiedSignature,
} from './validator.js';
export { ResolverCache, SingleFlight, cacheSlot, cachedTtl, estimateSize } from './cache.js';
export { clientTtl, freshClientTtl } from './client-ttl.js';
export type { ClientTtl } from './client-ttl.js';
export { FailureCache, failureBackoffSeconds } from './failure-cache.js';
export type { CachedFailure, FailureHit } from './failure-cache.js';
export type { CacheSlot, CacheHit } from './cache.js';
export { createUpstream, serverId } from './upstream.js';
export {
  InfraCache,
  UNKNOWN_SERVER_RTO_MS,
  MIN_RTO_MS,
  MAX_RTO_MS,
  RTT_BAND_MS,
  BACKOFF_INITIAL_MS,
  MAX_BACKOFF_MS,
  SLOW_SERVER_PROBE_MS,
  INFRA_HOST_TTL_SECONDS,
  MAX_INFRA_HOSTS,
} from './infra-cache.js';
export type { InfraEntry, InfraSettings, ServerPlan } from './infra-cache.js';
export {
  ROOT_COPY_MAX_RECORDS,
  ROOT_COPY_MAX_OCTETS,
  ROOT_COPY_TRANSFER_TIMEOUT_MS,
  ROOT_COPY_EXPIRY_MARGIN_SECONDS,
  ROOT_COPY_MIN_RETRY_SECONDS,
  ROOT_COPY_VERIFICATIONS_PER_RRSET,
  checkRootCopy,
  disabledRootCopy,
  startRootCopy,
  nextRefreshAt,
  serialGreater,
} from './root-copy.js';
export type {
  RootCopy,
  RootCopyCheck,
  RootCopyInit,
  RootCopyKeeper,
  RootCopySettings,
  RootCopyStatus,
} from './root-copy.js';
export type {
  NameServer,
  Upstream,
  UpstreamInit,
  UpstreamObserver,
  UpstreamOutcome,
} from './upstream.js';

// authkey-refetch.ts, ede.ts
export {
  AUTHKEY_REFETCH_MIN_INTERVAL_SECONDS,
  AUTHKEY_REFETCHES_PER_MINUTE,
  AUTHKEY_REFETCH_MAX_ZONES,
  createAuthkeyRefetchLimiter,
} from './authkey-refetch.js';
export type { AuthkeyRefetchLimiter, AuthkeyRefetchSettings } from './authkey-refetch.js';
export { CACHED_ERROR_EDE, EDE_MAX_TEXT_CHARS, failureEde } from './ede.js';
export { askQuestionAgain } from './questions.js';

// auto-trust.ts: RFC 5011 updates of the trust anchor
export {
  AUTO_TRUST_ADD_HOLD_DOWN_SECONDS,
  AUTO_TRUST_REMOVE_HOLD_DOWN_SECONDS,
  AUTO_TRUST_MIN_PROBE_SECONDS,
  AUTO_TRUST_MAX_PROBE_SECONDS,
  AUTO_TRUST_MAX_RETRY_SECONDS,
  AUTO_TRUST_FIRST_PROBE_SECONDS,
  AUTO_TRUST_MAX_KEYS,
  TRUST_ANCHOR_KEY_STATES,
  applyDnskeys,
  formatTrustPoint,
  parseTrustPoint,
  probeInterval,
  startAutoTrust,
  trustPointOf,
  trustedDs,
} from './auto-trust.js';
export type {
  AutoTrust,
  AutoTrustInit,
  AutoTrustSettings,
  DnskeyFetch,
  ProbeOutcome,
  TrackedKey,
  TrustAnchorKeyState,
  TrustPoint,
} from './auto-trust.js';
export { aggregate, selectMappings, errorResult } from './aggregate.js';
export { CsiMemo } from './csi-memo.js';
export type { CsiParseFailure } from './csi-memo.js';
export { resultJson, resultText, resultJsonText } from './result-json.js';
export type { ResultText } from './result-json.js';

// sender-view.ts, open-sealed.ts: a result as one sender sees it, and its boxes opened
export { senderView, orderMappings } from './sender-view.js';
export { openResult } from './open-sealed.js';
export type { AggregateInit } from './aggregate.js';
export {
  MAX_REFERRALS_PER_RESOLUTION,
  MAX_QUERIES_PER_RESOLUTION,
  MAX_MAPREF_FANOUT,
  MAX_MAPREF_DEPTH,
  MAX_SERVERS_PER_ZONE,
  SERVER_TIMEOUT_MS,
  MAX_KEYS_PER_SIGNATURE,
  MAX_SAME_TAG_KEYS,
  MAX_SIGNATURES_PER_RRSET,
  MAX_VERIFICATIONS_PER_RESOLUTION,
  VERIFICATIONS_PER_SLICE,
  FAILURE_CACHE_MIN_SECONDS,
  FAILURE_CACHE_MAX_SECONDS,
  MAX_RESOLUTION_MS,
  MAX_RESPONSE_OCTETS,
  UPSTREAM_EDNS_PAYLOAD_OCTETS,
  UPSTREAM_DOH_LANES,
  MAX_UPSTREAM_IN_FLIGHT,
  MINIMISE_ONE_LABEL_STEPS,
  STALE_ANSWER_TTL_SECONDS,
  MAX_STALE_AGE_SECONDS,
  MAX_CACHE_TTL_SECONDS,
  DEFAULT_CACHE_BYTES,
  DEFAULT_BATCH_CONCURRENCY,
  PARSED_CSI_CACHE_OCTETS,
  PARSED_CSI_ENTRY_OVERHEAD_OCTETS,
} from './limits.js';

// config.ts: the config file's schema and loader
export {
  MAX_GATEWAY_ISSUERS,
  DEFAULT_STARTUP_CHECK_ATTEMPTS,
  MAX_STARTUP_CHECK_ATTEMPTS,
  DEFAULT_STARTUP_CHECK_TIMEOUT_MS,
  STARTUP_CHECK_RETRY_DELAY_MS,
  resolverConfigSchema,
  loadResolverConfig,
  readResolverFiles,
} from './config.js';
export type { ResolverFileConfig, ResolverServerConfig, ResolverFiles } from './config.js';

// front ends: server.ts, json-api.ts, front-end-limits.ts, metrics.ts
export {
  createResolverQueryHandler,
  createResolverQueryGate,
  startResolverServer,
} from './server.js';
export type {
  ResolverQueryHandlerOptions,
  ResolverQueryLogSettings,
  ResolverServerSettings,
  ResolverServerComponents,
  RunningResolverServer,
} from './server.js';
export {
  DEFAULT_MAX_BATCH,
  BODY_OCTETS_PER_CSI,
  MIN_MAX_BODY_OCTETS,
  DEFAULT_API_REQUEST_TIMEOUT_MS,
  DEFAULT_API_IDLE_TIMEOUT_MS,
  DEFAULT_API_MAX_CONNECTIONS,
  DEFAULT_API_CONNECTIONS_PER_CLIENT,
  API_MAX_CONCURRENT_STREAMS,
  DISCOVER_PATH,
  JSON_API_ERRORS,
  JsonApiError,
  createDiscoverRoute,
  startJsonApi,
} from './json-api.js';
export { LOOKUP_PAGE_DIR, LOOKUP_PAGE_PATH, lookupPageFor } from './lookup-page.js';
export type {
  JsonApiErrorCode,
  JsonApiOptions,
  JsonApiComponents,
  JsonApi,
  DiscoverRequest,
  DiscoverRoute,
  DiscoverRouteComponents,
  GatewayMount,
  GatewayRoutes,
  LookupLog,
  LookupSource,
} from './json-api.js';
export {
  DEFAULT_NEW_NAME_BURST,
  DEFAULT_NEW_NAMES_PER_DAY,
  DEFAULT_MAX_SEEN_PER_CLIENT,
  DEFAULT_MAX_SEEN,
  DEFAULT_QUERIES_PER_SECOND,
  DEFAULT_QUERY_BURST,
  DEFAULT_API_REQUESTS_PER_SECOND,
  DEFAULT_API_REQUEST_BURST,
  DEFAULT_CLIENT_LIMITS,
  LIMITED_FRONT_ENDS,
  LIMIT_KINDS,
  createClientLimits,
} from './front-end-limits.js';
export type {
  ClientLimitSettings,
  ClientLimitComponents,
  ClientLimitStats,
  LimitedFrontEnd,
  LimitKind,
  LimitOutcome,
  ResolverClientLimits,
} from './front-end-limits.js';
export {
  RESOLUTION_DURATION_BUCKETS,
  UPSTREAM_RTT_BUCKETS,
  MAX_UPSTREAM_METRIC_SERVERS,
  createResolverMetrics,
} from './metrics.js';
export type { ResolutionKind, ResolverMetrics } from './metrics.js';

// discovery-client.ts: the JSON API's client
export {
  DISCOVERY_CLIENT_TIMEOUT_MS,
  DISCOVERY_CLIENT_CONNECT_TIMEOUT_MS,
  DISCOVERY_CLIENT_CONNECTIONS,
  DISCOVERY_BATCH_CONCURRENCY,
  MAX_DISCOVERY_RESPONSE_OCTETS,
  MAX_DISCOVERY_BATCH_RESPONSE_OCTETS,
  DiscoveryClientError,
  createDiscoveryClient,
  parseDiscoveryResult,
} from './discovery-client.js';
export type {
  ClientIdentity,
  DiscoveryClient,
  DiscoveryClientOptions,
  DirectDiscoveryClientOptions,
  RelayDiscoveryClientOptions,
} from './discovery-client.js';

// oblivious-client.ts, oblivious/: the discovery client through an oblivious relay (OHTTP,
// Privacy Pass tokens, key consistency)
export {
  MAX_OBLIVIOUS_RESPONSE_OCTETS,
  MAX_DNS_RESPONSE_OCTETS,
  OBLIVIOUS_BATCH_CONCURRENCY,
  MAX_INNER_ATTEMPTS,
  MAX_BATCH_SPLITS,
  OBLIVIOUS_CLIENT_CONNECTIONS,
  DNS_QUERY_PATH,
  createObliviousClient,
} from './oblivious-client.js';
export type { ObliviousClient, ObliviousClientOptions } from './oblivious-client.js';
export { OBLIVIOUS_CLIENT_ERRORS } from './oblivious/errors.js';
export type { ObliviousClientErrorCode } from './oblivious/errors.js';
export {
  MAX_KEY_CONFIGS_OCTETS,
  MAX_KEY_CONFIG_CACHE_SECONDS,
  DEFAULT_KEY_CONFIG_CACHE_SECONDS,
} from './oblivious/key-configs.js';
export type { KeyCheck } from './oblivious/key-configs.js';
export { ODOH_PROXY_PATH } from './oblivious/odoh-client.js';
export type { OdohTokenRefusal } from './oblivious/odoh-client.js';
export {
  DEFAULT_TOKENS_PER_FETCH,
  MAX_TOKENS_PER_FETCH,
  MAX_TOKENS_HELD,
  MAX_ISSUER_DIRECTORY_OCTETS,
  MAX_DIRECTORY_TOKEN_KEYS,
  MAX_TOKEN_RESPONSE_OCTETS,
  DEFAULT_QUOTA_RETRY_SECONDS,
  MAX_FETCHES_PER_TAKE,
  ISSUER_DIRECTORY_PATH,
  tokensPerFetchWithin,
} from './oblivious/wallet.js';

// gateway/: the oblivious gateway on the JSON API's port (OHTTP, ODoH, Privacy Pass tokens)
export {
  OHTTP_GATEWAY_PATH,
  ODOH_CONFIGS_PATH,
  ODOH_TARGET_PATH,
  OHTTP_KEY_PROBLEM_TYPE,
  MAX_KEYS_CACHE_SECONDS,
  DEFAULT_GATEWAY_DEADLINE_MS,
  GATEWAY_INNER_OVERHEAD_OCTETS,
  GATEWAY_ENCAPSULATION_OCTETS,
  SPENT_PRUNE_INTERVAL_SECONDS,
  DNS_MESSAGE_TYPE,
  createGateway,
  gatewayLimits,
} from './gateway/gateway.js';
export type {
  Gateway,
  GatewayComponents,
  GatewayLimits,
  GatewaySettings,
} from './gateway/gateway.js';
export {
  DEFAULT_KEY_ROTATION_SECONDS,
  DEFAULT_KEY_OVERLAP_SECONDS,
  GATEWAY_PRIVATE_KEY_FILE,
  MAX_KEY_GENERATIONS,
  GatewayKeyError,
  openGatewayKeys,
  publicKeys,
} from './gateway/keys.js';
export type {
  GatewayKeys,
  GatewayKeyGeneration,
  GatewayKeySettings,
  GatewayKeyComponents,
} from './gateway/keys.js';
export {
  DEFAULT_CSIS_PER_TOKEN,
  ISSUER_KEYS_MIN_REFRESH_SECONDS,
  ISSUER_KEYS_MAX_REFRESH_SECONDS,
  ISSUER_KEYS_RETRY_SECONDS,
  MAX_ISSUER_KEYS,
  TOKEN_OUTCOMES,
  TokenSettingsError,
  createTokenRedeemer,
} from './gateway/tokens.js';
export type {
  IssuerSettings,
  Redemption,
  TokenOutcome,
  TokenRedeemer,
  TokenRedeemerComponents,
  TokenRefusalCode,
} from './gateway/tokens.js';
export {
  SPENT_PRUNE_BATCH,
  SPENT_ID_OCTETS,
  SpentTokenError,
  openSpentTokenStore,
} from './gateway/spent-tokens.js';
export type { SpentTokenStore } from './gateway/spent-tokens.js';
