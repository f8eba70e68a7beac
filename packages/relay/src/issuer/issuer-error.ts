import { MimiError } from '@mimi-discovery/common';

/**
 * The errors of the issuer's HTTP API, each with its HTTP status and default message. The
 * body is the JSON error shape of every server: `{"error": {"code", "message"}}`.
 */
export const ISSUER_ERRORS = Object.freeze({
  /** No `Authorization: Bearer <credential>`, or a credential of no user. */
  ERR_UNAUTHENTICATED: { status: 401, message: 'a valid bearer credential is required' },
  /** The user has had every token of the current period. */
  ERR_TOKEN_QUOTA: { status: 429, message: 'no tokens are left for this period' },
  /** A TokenRequest that is not one: size, type, a blinded message that cannot be signed. */
  ERR_BAD_TOKEN_REQUEST: { status: 400, message: 'malformed token request' },
  /** A truncated key id that is not the current signing key's (RFC 9578 §6.2: 422). */
  ERR_TOKEN_KEY_UNKNOWN: {
    status: 422,
    message: 'the request is for no current token key; fetch the issuer directory again',
  },
  ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: 'the request body must be application/private-token-request',
  },
  ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed' },
  ERR_BODY_TOO_LARGE: { status: 413, message: 'the request body is too large' },
  ERR_NOT_FOUND: { status: 404, message: 'no such resource' },
  ERR_TIMEOUT: { status: 408, message: 'the request was not received in time' },
  ERR_HEADERS_TOO_LARGE: { status: 431, message: 'the request headers are too large' },
  ERR_BAD_REQUEST: { status: 400, message: 'bad request' },
  /** As many signings are waiting as `limits.maxPendingSignings` allows. */
  ERR_BUSY: { status: 503, message: 'the issuer is busy; retry shortly' },
  ERR_INTERNAL: { status: 500, message: 'internal error' },
} as const);

/** A code of {@link ISSUER_ERRORS}, or `ERR_ISSUER_LISTEN` / `ERR_ISSUER_KEYS` (startup). */
export type IssuerErrorCode = keyof typeof ISSUER_ERRORS | 'ERR_ISSUER_LISTEN' | 'ERR_ISSUER_KEYS';

/** An issuer refusal or fault: its code, HTTP status and, for 429 and 503, `retry-after`. */
export class IssuerError extends MimiError<IssuerErrorCode> {
  readonly status: number;
  /** Seconds, sent as `retry-after`. */
  readonly retryAfter: number | undefined;

  constructor(
    code: IssuerErrorCode,
    message?: string,
    options: { cause?: unknown; retryAfter?: number } = {},
  ) {
    const known =
      code in ISSUER_ERRORS ? ISSUER_ERRORS[code as keyof typeof ISSUER_ERRORS] : undefined;
    super(code, message ?? known?.message ?? code, { cause: options.cause });
    this.status = known?.status ?? 500;
    this.retryAfter = options.retryAfter;
  }
}
