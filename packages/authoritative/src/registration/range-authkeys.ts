import {
  createRangeAuthkeys as createCommonRangeAuthkeys,
  type RangeAuthkeys,
  type RangeAuthkeysOptions,
} from '@mimi-discovery/common';
import { RegistrationError } from './registration-error.js';

/**
 * The AUTHKEY lookup of an MSP-run DP (config `mspZone`; design §8, docs/protocol.md §9): the
 * CSI's range and its AUTHKEY RRset, through the DP's validating resolver. The lookup itself is
 * common's (`runtime/range-authkeys.ts` of `@mimi-discovery/common`, which credential verifiers
 * use too); here a resolver that cannot vouch for the keys refuses the registration request with
 * `ERR_PROVER_UNVERIFIABLE` (503, detail `resolver`): nothing is stored on an unverified key.
 */

export {
  MAX_RANGE_AUTHKEY_CACHE_ENTRIES,
  MAX_RANGE_AUTHKEY_CACHE_SECONDS,
  MAX_RANGE_AUTHKEY_TIMEOUT_MS,
  RANGE_AUTHKEY_CACHE_ENTRIES,
  RANGE_AUTHKEY_TIMEOUT_MS,
  parseResolverEndpoint,
} from '@mimi-discovery/common';
export type {
  RangeAuthkeyLookup,
  RangeAuthkeys,
  RangeAuthkeysOptions,
  RangeKeys,
  ResolverEndpoint,
} from '@mimi-discovery/common';

/** Creates the lookup of a DP's `mspZone`; failures are {@link RegistrationError}s. */
export function createRangeAuthkeys(
  options: Omit<RangeAuthkeysOptions, 'unverifiable'>,
): RangeAuthkeys {
  return createCommonRangeAuthkeys({
    ...options,
    unverifiable: (message, cause) =>
      new RegistrationError('ERR_PROVER_UNVERIFIABLE', message, {
        detail: 'resolver',
        ...(cause === undefined ? {} : { cause }),
      }),
  });
}
