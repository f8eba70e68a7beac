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
