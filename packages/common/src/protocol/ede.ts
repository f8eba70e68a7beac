/**
 * Extended DNS Errors (RFC 8914): an EDNS option that says why a response is what it is. Its
 * data is a 16-bit INFO-CODE, then EXTRA-TEXT in UTF-8 (RFC 8914 §2), and it travels only in a
 * response to a query that had an OPT record (§3).
 *
 * Worked example: `edeOption(EDE_PROHIBITED, 'rate limited')` is the option code 15 with the
 * data `00 12 72 61 74 65 20 6c 69 6d 69 74 65 64`.
 */
import type { EdnsOption } from './records.js';

/** EDNS option code of Extended DNS Errors (RFC 8914 §2, IANA "DNS EDNS0 Option Codes"). */
export const EDE_OPTION_CODE = 15;
/** RFC 8914 §4.1: an error that no other code fits; the EXTRA-TEXT says which. */
export const EDE_OTHER = 0;
/** RFC 8914 §4.2: the only signatures are by a DNSKEY algorithm the validator does not support. */
export const EDE_UNSUPPORTED_DNSKEY_ALGORITHM = 1;
/** RFC 8914 §4.4: an answer served from stale cache. */
export const EDE_STALE_ANSWER = 3;
/** RFC 8914 §4.7: validation ended in bogus. */
export const EDE_DNSSEC_BOGUS = 6;
/** RFC 8914 §4.8: the only signatures had expired. */
export const EDE_SIGNATURE_EXPIRED = 7;
/** RFC 8914 §4.9: the only signatures were not yet valid. */
export const EDE_SIGNATURE_NOT_YET_VALID = 8;
/** RFC 8914 §4.10: a DS (or trust anchor) names no DNSKEY that could be found. */
export const EDE_DNSKEY_MISSING = 9;
/** RFC 8914 §4.11: data that should have been signed had no RRSIG. */
export const EDE_RRSIGS_MISSING = 10;
/** RFC 8914 §4.13: a denial came without the NSEC records that prove it. */
export const EDE_NSEC_MISSING = 12;
/** RFC 8914 §4.14: the answer is an error the resolver cached (RFC 9520). */
export const EDE_CACHED_ERROR = 13;
/** RFC 8914 §4.23: no authoritative server of a zone could be reached. */
export const EDE_NO_REACHABLE_AUTHORITY = 22;
/** RFC 8914 §4.24: an error in talking to another server. */
export const EDE_NETWORK_ERROR = 23;
/**
 * RFC 8914 §4.19: the server refuses the client by policy ("an 'unauthorized' client …, local
 * policy"). This project's front ends use it for a client over its rate limits (no INFO-CODE
 * for rate limiting is registered), with the wait in the EXTRA-TEXT.
 */
export const EDE_PROHIBITED = 18;

/** One Extended DNS Error: its INFO-CODE and EXTRA-TEXT. */
export interface ExtendedDnsError {
  readonly infoCode: number;
  readonly text: string;
}

/** An Extended DNS Error option: INFO-CODE, then EXTRA-TEXT in UTF-8 (RFC 8914 §2). */
export function edeOption(infoCode: number, text: string): EdnsOption {
  if (!Number.isInteger(infoCode) || infoCode < 0 || infoCode > 0xffff) {
    throw new RangeError(`an EDE INFO-CODE is 0..65535, got ${String(infoCode)}`);
  }
  const extra = new TextEncoder().encode(text);
  const data = new Uint8Array(2 + extra.length);
  data[0] = infoCode >>> 8;
  data[1] = infoCode & 0xff;
  data.set(extra, 2);
  return { code: EDE_OPTION_CODE, data };
}

/**
 * The Extended DNS Errors among `options` (an OPT record's options), in order. An option too
 * short to hold an INFO-CODE is skipped (RFC 8914 §3: a malformed EDE is ignored); EXTRA-TEXT
 * that is not UTF-8 is read with replacement characters, as it is only ever shown to people.
 */
export function extendedDnsErrors(options: readonly EdnsOption[]): ExtendedDnsError[] {
  return options
    .filter((option) => option.code === EDE_OPTION_CODE && option.data.length >= 2)
    .map((option) => ({
      infoCode: ((option.data[0] as number) << 8) | (option.data[1] as number),
      text: new TextDecoder().decode(option.data.subarray(2)),
    }));
}
