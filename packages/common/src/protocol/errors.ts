/**
 * One base error for the whole project: every fault carries a stable `code` that programs match
 * on (`ERR_WIRE_TRUNCATED`), and a human message that people read. Subclasses add typed fields.
 * Outcomes that are not faults (a referral, a denial, a failed verification) are unions, never
 * exceptions.
 */
export class MimiError extends Error {
  /** A stable, documented code such as `ERR_CSI_INVALID`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Input that is not a valid CSI or range; `code` says which rule it broke. */
export class CsiError extends MimiError {
  /** The input as given (may be truncated for display). */
  readonly input: string;

  constructor(code: string, message: string, input: string) {
    super(code, message);
    this.input = input.length > 200 ? `${input.slice(0, 200)}…` : input;
  }
}

/** Bytes that are not an exactly well-formed DNS message, record or name. */
export class WireError extends MimiError {
  /** Byte offset where decoding failed, when known. */
  readonly offset: number | undefined;

  constructor(code: string, message: string, offset?: number, options?: { cause?: unknown }) {
    super(code, offset === undefined ? message : `${message} (at byte ${offset})`, options);
    this.offset = offset;
  }
}

/** A signed object (Mapping, Attestation, Removal, Revocation) that cannot be decoded or built. */
export class SignedObjectError extends MimiError {}

/** A DNSSEC operation that cannot be carried out (bad key, unsupported algorithm, bad input). */
export class DnssecError extends MimiError {}

/** A zone's content that violates a rule the lookup depends on (e.g. no SOA at the origin). */
export class ZoneError extends MimiError {}

/** A domain name in presentation form that cannot be parsed (bad escape, label or name too long). */
export class NameError extends MimiError {}
