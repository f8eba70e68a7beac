/**
 * The error codes of the oblivious client (`oblivious-client.ts`) beyond the JSON API's own
 * (`JSON_API_ERRORS`) and the transport faults (`ERR_API_UNREACHABLE`, `ERR_API_TIMEOUT`,
 * `ERR_API_RESPONSE`). Every one is carried by a `DiscoveryClientError`, as the direct client's
 * are, so a caller handles both paths alike.
 */
export const OBLIVIOUS_CLIENT_ERRORS = Object.freeze({
  /**
   * The gateway refused the token of an inner request (RFC 9577 §2.2), after the one retry
   * with a fresh token: the gateway's own code, passed on.
   */
  ERR_TOKEN_REQUIRED: 'the gateway asks for a token',
  ERR_TOKEN_INVALID: 'the gateway found the token invalid',
  ERR_TOKEN_SPENT: 'the gateway has seen the token before',
  ERR_TOKEN_KEY_EXPIRED: "the token's issuer key is no longer accepted",
  /**
   * The gateway's key configuration is not one the tree publishes (no secure KEYCONF `ohttp`
   * entry at the key name, valid now, byte-equal to it): nothing was sent to the gateway.
   */
  ERR_KEY_INCONSISTENT: 'the key configuration is not the one published in the tree',
  /** The relay served no key configuration with the suite of the contract. */
  ERR_KEY_CONFIG_UNUSABLE: 'no usable key configuration',
  /** The relay, or the gateway behind it, refused the encapsulated request (its HTTP status). */
  ERR_RELAY_REFUSED: 'the relay or the gateway refused the request',
  /** The gateway asks for tokens and the client has no credential for an issuer. */
  ERR_CREDENTIAL_REQUIRED: 'tokens are needed and no credential was given',
  /** The gateway's challenge names no issuer the client may use, or does not parse. */
  ERR_TOKEN_CHALLENGE: 'no usable token challenge',
  /**
   * The issuer refused the token request (`detail` is its code: `ERR_UNAUTHENTICATED`,
   * `ERR_BAD_TOKEN_REQUEST`, `ERR_TOKEN_KEY_UNKNOWN`, …).
   */
  ERR_ISSUER_REFUSED: 'the issuer refused the token request',
  /** The challenge's token key is not in the issuer's directory, or has expired there. */
  ERR_ISSUER_KEY: "the challenge's token key is not a current key of the issuer",
  /**
   * The issuer's quota for this credential is used up (its 429 `ERR_TOKEN_QUOTA`) and no token
   * is left: the requests that needed one were not sent. `retryAfter` says when to try again;
   * for a batch, `results` holds every result, those not obtained as `error` results.
   */
  ERR_TOKENS_EXHAUSTED: 'no token left, and the issuer gives no more in this period',
} as const);

/** A code of {@link OBLIVIOUS_CLIENT_ERRORS}. */
export type ObliviousClientErrorCode = keyof typeof OBLIVIOUS_CLIENT_ERRORS;
