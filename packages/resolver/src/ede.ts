import {
  EDE_CACHED_ERROR,
  EDE_DNSKEY_MISSING,
  EDE_DNSSEC_BOGUS,
  EDE_NETWORK_ERROR,
  EDE_NO_REACHABLE_AUTHORITY,
  EDE_NSEC_MISSING,
  EDE_OTHER,
  EDE_RRSIGS_MISSING,
  EDE_SIGNATURE_EXPIRED,
  EDE_SIGNATURE_NOT_YET_VALID,
  EDE_UNSUPPORTED_DNSKEY_ALGORITHM,
  type ExtendedDnsError,
} from '@mimi-discovery/common';
import type { Failure } from './iterator.js';

/**
 * Why a resolution failed, as an Extended DNS Error (RFC 8914): the INFO-CODE of the failure's
 * reason and an EXTRA-TEXT of `<reason>: <detail>`, which the DNS front ends put in the OPT record
 * of every SERVFAIL and the JSON API in the result's `error.ede`. Worked example: a MAP RRset whose
 * only RRSIG expired is `{ infoCode: 7, text: 'signature-expired: MAP of 8.1.0.0…' }`.
 *
 * | failure                                                   | INFO-CODE                        |
 * | --------------------------------------------------------- | -------------------------------- |
 * | bogus `signature-expired`                                 | 7 Signature Expired              |
 * | bogus `signature-not-yet-valid`                           | 8 Signature Not Yet Valid        |
 * | bogus `missing-dnskey`, `no-ds-match`                     | 9 DNSKEY Missing                 |
 * | bogus `missing-signature`                                 | 10 RRSIGs Missing                |
 * | bogus `missing-denial`                                    | 12 NSEC Missing                  |
 * | bogus `unsupported-algorithm`                             | 1 Unsupported DNSKEY Algorithm   |
 * | any other bogus (bad signature, a validation limit, …)    | 6 DNSSEC Bogus                   |
 * | error `timeout`, or `servfail` of a zone none of whose servers answered | 22 No Reachable Authority |
 * | error `servfail` a server answered                        | 23 Network Error                 |
 * | error `limit`                                             | 0 Other                          |
 *
 * A failure answered from the failure cache (RFC 9520) also carries 13 Cached Error.
 */

/** The longest EXTRA-TEXT given, in characters: the detail is cut there (a response stays small). */
export const EDE_MAX_TEXT_CHARS = 200;

const BOGUS_CODES: Readonly<Record<string, number>> = Object.freeze({
  'signature-expired': EDE_SIGNATURE_EXPIRED,
  'signature-not-yet-valid': EDE_SIGNATURE_NOT_YET_VALID,
  'missing-dnskey': EDE_DNSKEY_MISSING,
  'no-ds-match': EDE_DNSKEY_MISSING,
  'missing-signature': EDE_RRSIGS_MISSING,
  'missing-denial': EDE_NSEC_MISSING,
  'unsupported-algorithm': EDE_UNSUPPORTED_DNSKEY_ALGORITHM,
});

/** The Extended DNS Error of a failed resolution (table of the module comment). */
export function failureEde(failure: Failure): ExtendedDnsError {
  const text = (reason: string): string => {
    const full = `${reason}: ${failure.detail}`;
    return full.length <= EDE_MAX_TEXT_CHARS ? full : `${full.slice(0, EDE_MAX_TEXT_CHARS - 1)}…`;
  };
  if (failure.kind === 'bogus') {
    return {
      infoCode: BOGUS_CODES[failure.reason] ?? EDE_DNSSEC_BOGUS,
      text: text(failure.reason),
    };
  }
  switch (failure.reason) {
    case 'timeout':
      return { infoCode: EDE_NO_REACHABLE_AUTHORITY, text: text(failure.reason) };
    case 'servfail':
      return {
        infoCode: failure.zone === undefined ? EDE_NETWORK_ERROR : EDE_NO_REACHABLE_AUTHORITY,
        text: text(failure.reason),
      };
    case 'limit':
    case 'refused':
      return { infoCode: EDE_OTHER, text: text(failure.reason) };
  }
}

/** The Extended DNS Error a failure answered from the failure cache adds (RFC 8914 §4.14). */
export const CACHED_ERROR_EDE: ExtendedDnsError = Object.freeze({
  infoCode: EDE_CACHED_ERROR,
  text: 'cached failure (RFC 9520)',
});
