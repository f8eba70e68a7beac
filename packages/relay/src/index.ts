/**
 * @mimi-discovery/relay — the parties between a sender's app and a resolver that learn no CSI:
 * the oblivious relay (Oblivious HTTP, RFC 9458; Oblivious DoH proxy, RFC 9230), which knows
 * the sender's address but forwards only encrypted requests, and the Privacy Pass issuer
 * (RFC 9576–9578), which knows the sender's account but signs only blinded token requests.
 */

// The oblivious relay (`relay/`).
export { RELAY_ERRORS, RelayError, RelayListenError, startRelay } from './relay/server.js';
export type {
  RelayComponents,
  RelayExchange,
  RelayErrorCode,
  RelaySettings,
  RunningRelay,
} from './relay/server.js';
export {
  checkRelayForwarding,
  loadRelayConfig,
  relayConfigSchema,
  relayForwardingSchema,
  relayLimitsSchema,
  resolveRelayLimits,
} from './relay/config.js';
export type {
  RelayFileConfig,
  RelayLimits,
  RelayLimitsInput,
  RelayServerConfig,
} from './relay/config.js';
export {
  DEFAULT_RELAY_CONNECT_TIMEOUT_MS,
  DEFAULT_RELAY_CONNECTIONS_PER_CLIENT,
  DEFAULT_RELAY_FORWARD_TIMEOUT_MS,
  DEFAULT_RELAY_FORWARDS_PER_CLIENT,
  DEFAULT_RELAY_GATEWAY_CONNECTIONS,
  DEFAULT_RELAY_IDLE_TIMEOUT_MS,
  DEFAULT_RELAY_MAX_CONNECTIONS,
  DEFAULT_RELAY_MAX_FORWARDS,
  DEFAULT_RELAY_MAX_REQUEST_OCTETS,
  DEFAULT_RELAY_MAX_RESPONSE_OCTETS,
  DEFAULT_RELAY_REQUEST_BURST,
  DEFAULT_RELAY_REQUEST_TIMEOUT_MS,
  DEFAULT_RELAY_REQUESTS_PER_SECOND,
  RELAY_BUSY_RETRY_AFTER_SECONDS,
  RELAY_MAX_CONCURRENT_STREAMS,
  RELAY_MAX_HEADER_OCTETS,
  RELAY_MAX_TARGET_PATH_LENGTH,
} from './relay/limits.js';
export {
  GATEWAY_NAME_PATTERN,
  ODOH_CONFIGS_PATH,
  ODOH_PROXY_PATH,
  OHTTP_RELAY_PATH_PREFIX,
  routeRequest,
  createRelayRoutes,
  targetAuthority,
} from './relay/routes.js';
export type { RelayRoutes, RelayTarget } from './relay/routes.js';
export { createForwardSlots } from './relay/forward-slots.js';
export type { ForwardSlots, SlotOutcome } from './relay/forward-slots.js';
export { FORWARD_DURATION_BUCKETS, RELAY_ROUTES, createRelayMetrics } from './relay/metrics.js';
export type {
  ForwardFailure,
  RelayLimitHit,
  RelayMetrics,
  RelayMetricsSources,
  RelayRoute,
} from './relay/metrics.js';
export { openRelayQueryLog, relayLogLine } from './relay/query-log.js';
export type {
  RelayLogEntry,
  RelayQueryLog,
  RelayQueryLogComponents,
  RelayQueryLogSettings,
} from './relay/query-log.js';
// issuer/: the Privacy Pass issuer
export {
  DEFAULT_TOKENS_PER_PERIOD,
  DEFAULT_PERIOD_SECONDS,
  DEFAULT_KEY_LIFETIME_SECONDS,
  DEFAULT_KEY_OVERLAP_SECONDS,
  DEFAULT_KEY_PREPUBLISH_SECONDS,
  MIN_KEY_LIFETIME_SECONDS,
  MIN_PERIOD_SECONDS,
  MAX_ISSUER_USERS,
  DEFAULT_ISSUER_MAX_CONNECTIONS,
  DEFAULT_ISSUER_CONNECTIONS_PER_CLIENT,
  DEFAULT_ISSUER_REQUEST_TIMEOUT_MS,
  DEFAULT_ISSUER_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_PENDING_SIGNINGS,
  issuerConfigSchema,
  issuerUserSchema,
  loadIssuerConfig,
} from './issuer/config.js';
export type { IssuerConfig, IssuerFileConfig, IssuerUser } from './issuer/config.js';
export {
  CREDENTIAL_OCTETS,
  MAX_AUTHORIZATION_CHARS,
  generateCredential,
  hashCredential,
} from './issuer/credentials.js';
export { ISSUER_ERRORS, IssuerError } from './issuer/issuer-error.js';
export { openTokenQuota } from './issuer/quota.js';
export type { Charge, TokenQuota, TokenQuotaOptions } from './issuer/quota.js';
export type { IssuerErrorCode } from './issuer/issuer-error.js';
export { ISSUER_PUBLIC_KEY_FILE, encodeIssuerPublicKeyFile } from './issuer/key-ring.js';
export type { IssuerTokenKey } from './issuer/key-ring.js';
export { TOKEN_REQUEST_OUTCOMES } from './issuer/metrics.js';
export type { TokenRequestOutcome } from './issuer/metrics.js';
export {
  ISSUER_DIRECTORY_PATH,
  TOKEN_REQUEST_PATH,
  ISSUER_DIRECTORY_TYPE,
  TOKEN_REQUEST_TYPE,
  TOKEN_RESPONSE_TYPE,
  DIRECTORY_MAX_AGE_SECONDS,
  MAX_TOKEN_REQUEST_BODY_OCTETS,
  MAX_ISSUER_HEADER_OCTETS,
  KEY_ROTATION_CHECK_MS,
  startIssuer,
} from './issuer/server.js';
export type { IssuerComponents, RunningIssuer } from './issuer/server.js';
