import { MimiError } from '@mimi-discovery/common';

/**
 * The errors of the registration API (design §8): each has a stable code, an HTTP status and a
 * default message. The API answers `{"error": {"code", "message", "detail"?}}` with the status.
 */
export const REGISTRATION_ERRORS = Object.freeze({
  // Requests the API cannot read.
  ERR_BAD_REQUEST: { status: 400, message: 'the request is not well formed' },
  ERR_BAD_JSON: { status: 400, message: 'the request body is not valid JSON' },
  ERR_ROUTE_NOT_FOUND: { status: 404, message: 'no such route' },
  ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed on this route' },
  ERR_TIMEOUT: { status: 408, message: 'the request was not received in time' },
  ERR_BODY_TOO_LARGE: { status: 413, message: 'the request body is too large' },
  ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: 'the request body must be application/json',
  },
  ERR_HEADERS_TOO_LARGE: { status: 431, message: 'the request headers are too large' },
  // The CSI and the zone.
  ERR_CSI_INVALID: { status: 400, message: 'not a valid CSI' },
  ERR_NOT_AUTHORITATIVE: { status: 404, message: 'this provider serves no zone for the CSI' },
  // Proving control of a CSI.
  ERR_RATE_LIMITED: { status: 429, message: 'too many requests; try again later' },
  ERR_CODE_INVALID: { status: 403, message: 'the code is not valid for this CSI' },
  ERR_CODE_EXPIRED: { status: 403, message: 'the code has expired; ask for a new one' },
  ERR_TOO_MANY_ATTEMPTS: {
    status: 429,
    message: 'too many wrong codes; the code is discarded, ask for a new one',
  },
  ERR_CHANNEL_UNAVAILABLE: { status: 501, message: 'no channel can deliver a code to this CSI' },
  ERR_CHANNEL_FAILED: { status: 502, message: 'the code could not be delivered' },
  // Signed objects.
  ERR_MAPPING_INVALID: { status: 400, message: 'the mapping does not verify' },
  ERR_MAPREF_INVALID: { status: 400, message: 'the MapRef request does not verify' },
  ERR_REMOVAL_INVALID: { status: 400, message: 'the removal does not verify' },
  ERR_REVOCATION_INVALID: { status: 400, message: 'the revocation does not verify' },
  ERR_CREDENTIAL_REQUEST_INVALID: {
    status: 400,
    message: 'the credential request does not verify',
  },
  ERR_PROVER_NOT_AUTHORIZED: {
    status: 403,
    message: 'the attestation is not by an authorized prover of the range',
  },
  ERR_CSIP_NOT_AUTHORIZED: { status: 403, message: 'the key is not a CSIP of the range' },
  ERR_PROVER_UNVERIFIABLE: {
    status: 503,
    message:
      "the keys of the CSI's range could not be verified through the resolver; try again later",
  },
  // The state of the CSI.
  ERR_STALE_SEQ: { status: 409, message: 'a mapping with this or a higher seq exists' },
  ERR_SUPERSEDED: {
    status: 409,
    message: 'a newer holder of the CSI set the "new" bit; this key is de-listed',
  },
  ERR_REVOKED: { status: 409, message: 'the CSIP revoked attestations of this age' },
  ERR_REPLAYED: { status: 409, message: 'this request was already applied' },
  ERR_TOO_MANY_MAPPINGS: { status: 409, message: 'the CSI holds as many mappings as allowed' },
  ERR_TOO_MANY_MAPREFS: { status: 409, message: 'the CSI holds as many MAPREFs as allowed' },
  ERR_NOT_FOUND: { status: 404, message: 'no mapping of this key at the CSI' },
  // Faults of the server.
  ERR_INTERNAL: { status: 500, message: 'internal error' },
} as const);

/** A stable code of {@link REGISTRATION_ERRORS}. */
export type RegistrationErrorCode = keyof typeof REGISTRATION_ERRORS;

/** Extra facts of a {@link RegistrationError}. */
export interface RegistrationErrorOptions {
  /** A machine-readable refinement: a verification reason, a CsiError code, a field name. */
  readonly detail?: string;
  /** Seconds after which a rate-limited request may succeed (`Retry-After`). */
  readonly retryAfter?: number;
  readonly cause?: unknown;
}

/** A request the registration API refuses: a stable code, its HTTP status, a message. */
export class RegistrationError extends MimiError<RegistrationErrorCode> {
  /** The HTTP status of the code. */
  readonly status: number;
  readonly detail: string | undefined;
  readonly retryAfter: number | undefined;

  constructor(
    code: RegistrationErrorCode,
    message?: string,
    options: RegistrationErrorOptions = {},
  ) {
    super(
      code,
      message ?? REGISTRATION_ERRORS[code].message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.status = REGISTRATION_ERRORS[code].status;
    this.detail = options.detail;
    this.retryAfter = options.retryAfter;
  }
}
