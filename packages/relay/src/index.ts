/**
 * @mimi-discovery/relay — the parties between a sender's app and a resolver that learn no CSI:
 * the oblivious relay (Oblivious HTTP, RFC 9458; Oblivious DoH proxy, RFC 9230), which knows
 * the sender's address but forwards only encrypted requests, and the Privacy Pass issuer
 * (RFC 9576–9578), which knows the sender's account but signs only blinded token requests.
 */

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
