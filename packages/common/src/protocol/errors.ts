/**
 * One base error for the whole project: every fault carries a stable `code` that programs match
 * on (`ERR_WIRE_TRUNCATED`), and a human message that people read. Subclasses add typed fields.
 * Outcomes that are not faults (a referral, a denial, a failed verification) are unions, never
 * exceptions.
 */
export class MimiError<Code extends string = string> extends Error {
  /** A stable, documented code such as `ERR_CSI_INVALID`; each subclass owns its own set. */
  readonly code: Code;

  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The codes of a {@link CsiError}: which rule of design §3 the input broke. */
export type CsiErrorCode =
  | 'ERR_CSI_EMPTY'
  | 'ERR_CSI_TOO_LONG'
  | 'ERR_CSI_UNRECOGNIZED'
  | 'ERR_CSI_PHONE_NO_COUNTRY'
  | 'ERR_CSI_PHONE_INVALID'
  | 'ERR_CSI_PHONE_TOO_LONG'
  | 'ERR_CSI_EMAIL_INVALID'
  | 'ERR_CSI_EMAIL_DOMAIN'
  | 'ERR_CSI_NAME_TOO_LONG'
  | 'ERR_CSI_APEX_INVALID'
  | 'ERR_RANGE_INVALID';

/** Input that is not a valid CSI or range; `code` says which rule it broke. */
export class CsiError extends MimiError<CsiErrorCode> {
  /** The input as given (may be truncated for display). */
  readonly input: string;

  constructor(code: CsiErrorCode, message: string, input: string) {
    super(code, message);
    this.input = input.length > 200 ? `${input.slice(0, 200)}…` : input;
  }
}

/** Every code a {@link WireError} can carry (see the module comment of `wire.ts`). */
export const WIRE_ERROR_CODES = Object.freeze([
  'ERR_WIRE_TRUNCATED',
  'ERR_WIRE_TRAILING_BYTES',
  'ERR_WIRE_TOO_LARGE',
  'ERR_WIRE_TOO_MANY_RECORDS',
  'ERR_WIRE_BAD_POINTER',
  'ERR_WIRE_BAD_LABEL',
  'ERR_WIRE_NAME_TOO_LONG',
  'ERR_WIRE_RDLENGTH',
  'ERR_WIRE_BAD_RDATA',
  'ERR_WIRE_BAD_BITMAP',
  'ERR_WIRE_BAD_SVCB',
  'ERR_WIRE_BAD_OPT',
  'ERR_WIRE_BAD_TYPE',
  'ERR_WIRE_BAD_VALUE',
  'ERR_WIRE_INTERNAL',
] as const);

/** A code from {@link WIRE_ERROR_CODES}. */
export type WireErrorCode = (typeof WIRE_ERROR_CODES)[number];

/** Bytes that are not an exactly well-formed DNS message, record or name. */
export class WireError extends MimiError<WireErrorCode> {
  /** Byte offset where decoding failed, when known. */
  readonly offset: number | undefined;

  constructor(
    code: WireErrorCode,
    message: string,
    offset?: number,
    options?: { cause?: unknown },
  ) {
    super(code, offset === undefined ? message : `${message} (at byte ${offset})`, options);
    this.offset = offset;
  }
}

/** The codes of a {@link SignedObjectError}. */
export type SignedObjectErrorCode =
  | 'ERR_CBOR_MALFORMED'
  | 'ERR_CBOR_TOO_LARGE'
  | 'ERR_CBOR_UNSUPPORTED'
  | 'ERR_SIGNED_OBJECT_BINDING_MISMATCH'
  | 'ERR_SIGNED_OBJECT_KEY_MISMATCH'
  | 'ERR_SIGNED_OBJECT_LABEL'
  | 'ERR_SIGNED_OBJECT_MALFORMED'
  | 'ERR_SIGNED_OBJECT_VERSION'
  | 'ERR_VERIFY_OPTIONS';

/** A signed object (Mapping, Attestation, Removal, Revocation) that cannot be decoded or built. */
export class SignedObjectError extends MimiError<SignedObjectErrorCode> {}

/** The codes of a {@link DnssecError}. */
export type DnssecErrorCode =
  | 'ERR_BASE32HEX_SYNTAX'
  | 'ERR_DS_DIGEST_UNSUPPORTED'
  | 'ERR_KEY_ZONE'
  | 'ERR_NO_SUCCESSOR'
  | 'ERR_NSEC3_COLLISION'
  | 'ERR_NSEC3_OUT_OF_ZONE'
  | 'ERR_NSEC3_PARAMETERS'
  | 'ERR_RRSET_INVALID'
  | 'ERR_RRSIG_WINDOW'
  | 'ERR_TRUST_ANCHOR_EMPTY'
  | 'ERR_TRUST_ANCHOR_SYNTAX';

/** A DNSSEC operation that cannot be carried out (bad key, unsupported algorithm, bad input). */
export class DnssecError extends MimiError<DnssecErrorCode> {}

/** The codes of a {@link ZoneError}. */
export type ZoneErrorCode =
  | 'ERR_ZONE_NO_SOA'
  | 'ERR_ZONE_OUT_OF_ZONE'
  | 'ERR_ZONE_SOA_COUNT'
  /**
   * A ZONEMD scheme or hash algorithm that cannot be computed (RFC 8976), or records given to a
   * one-pass digest (`createZoneDigester`) out of canonical order.
   */
  | 'ERR_ZONE_ZONEMD';

/** A zone's content that violates a rule the lookup depends on (e.g. no SOA at the origin). */
export class ZoneError extends MimiError<ZoneErrorCode> {}

/** The codes of a {@link NameError}. */
export type NameErrorCode = 'ERR_NAME_LABEL_TOO_LONG' | 'ERR_NAME_SYNTAX' | 'ERR_NAME_TOO_LONG';

/** A domain name in presentation form that cannot be parsed (bad escape, label or name too long). */
export class NameError extends MimiError<NameErrorCode> {}
