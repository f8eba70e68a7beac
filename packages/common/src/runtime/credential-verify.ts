import {
  CredentialError,
  readCredential,
  verifyCredentialWithAuthkeys,
  type VerifiedCredential,
} from '../protocol/credentials.js';
import { DEFAULT_APEX, type Csi } from '../protocol/csi.js';
import { canonicalName, isSubdomain } from '../protocol/names.js';
import type { AuthkeyData } from '../protocol/records.js';
import { systemClock, type Clock } from './clock.js';
import { createRangeAuthkeys, type RangeAuthkeyLookup, type RangeKeys } from './range-authkeys.js';

/**
 * `verifyCredential`: checks a credential from a prover (docs/protocol.md, "Credentials") with
 * nothing but the DNS. The steps:
 *
 * 1. read the credential (credentials.ts `readCredential`): an X.509 leaf names its CSI in the
 *    SAN and its range in the issuer; an SD-JWT names its range in `iss` and may disclose `csi`;
 * 2. find the range from DNS: for a CSI, the zone whose SOA the validating resolver gives for
 *    the CSI's name (range-authkeys.ts); an SD-JWT that discloses no CSI is checked against the
 *    zone of `iss`. Either way the issuer's zone must lie under the namespace apex
 *    (`ERR_CREDENTIAL_RANGE_MISMATCH` before any DNS question otherwise);
 * 3. fetch the range's AUTHKEY RRset with the AD bit;
 * 4. check the credential against an unexpired AUTHKEY `prover` of that zone: the issuer zone is
 *    the range (`ERR_CREDENTIAL_RANGE_MISMATCH` otherwise: a prover of one range cannot vouch
 *    for a CSI of another), the signature, the profile, the validity window.
 *
 * A resolver that cannot vouch for the keys (down, SERVFAIL, no AD bit) is
 * `ERR_CREDENTIAL_UNVERIFIABLE`, never a pass.
 */

/** An AUTHKEY lookup a caller brings (its own resolver, a test): CSI → range, and zone → keys. */
export interface CredentialAuthkeyLookup extends RangeAuthkeyLookup {
  /** The AUTHKEYs at a zone's apex, as a validating resolver gave them. */
  zoneAuthkeys(zone: string): Promise<RangeKeys>;
}

/** How {@link verifyCredential} reaches the DNS. */
export type VerifyCredentialOptions =
  | {
      /** A validating resolver: a DoH URL, or `udp://`/`tcp://` on loopback (`parseResolverEndpoint`). */
      readonly resolver: string;
      /** PEM of the CAs to trust for a DoH resolver instead of the system's. */
      readonly ca?: string | Uint8Array;
      /** The namespace apex; default `mimi.arpa`. */
      readonly apex?: string;
      /** Each DNS question within this long; default `RANGE_AUTHKEY_TIMEOUT_MS`. */
      readonly timeoutMs?: number;
      /** Whole seconds since the epoch; default `systemClock`. */
      readonly now?: Clock;
    }
  | {
      readonly authkeys: CredentialAuthkeyLookup;
      /** The namespace apex; default `mimi.arpa`. */
      readonly apex?: string;
      /** Whole seconds since the epoch; default `systemClock`. */
      readonly now?: Clock;
    };

/**
 * Verifies a credential (the text of a PEM file or an SD-JWT) against the AUTHKEY RRset of its
 * range, found through DNS (see the module comment). Resolves with what it binds; rejects with a
 * {@link CredentialError}.
 */
export async function verifyCredential(
  credential: string | Uint8Array,
  options: VerifyCredentialOptions,
): Promise<VerifiedCredential> {
  let text: string;
  try {
    text =
      typeof credential === 'string'
        ? credential
        : new TextDecoder('utf-8', { fatal: true }).decode(credential);
  } catch (error) {
    throw new CredentialError('ERR_CREDENTIAL_MALFORMED', 'a credential is UTF-8 text', {
      cause: error,
    });
  }
  const subject = await readCredential(text);
  // A range is a zone of the namespace: an issuer elsewhere (a zone an attacker signs and lists
  // keys in) is no range at all, whatever keys its DNS gives.
  const apex = canonicalName(options.apex ?? DEFAULT_APEX);
  if (subject.zone === apex || !isSubdomain(subject.zone, apex)) {
    throw new CredentialError(
      'ERR_CREDENTIAL_RANGE_MISMATCH',
      `issued by ${subject.zone}, which is not a range under ${apex}`,
    );
  }
  const clock = options.now ?? systemClock;
  const unverifiable = (message: string, cause?: unknown): CredentialError =>
    new CredentialError(
      'ERR_CREDENTIAL_UNVERIFIABLE',
      message,
      cause === undefined ? undefined : { cause },
    );
  const own =
    'resolver' in options
      ? createRangeAuthkeys({
          resolver: options.resolver,
          ...(options.ca === undefined ? {} : { ca: options.ca }),
          ...(options.apex === undefined ? {} : { apex: options.apex }),
          ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
          // One credential: a cache of one zone is all it can use.
          cacheEntries: 1,
          now: clock,
          unverifiable,
        })
      : undefined;
  const lookup: CredentialAuthkeyLookup =
    own ?? (options as { authkeys: CredentialAuthkeyLookup }).authkeys;
  try {
    const keys = await rangeKeys(lookup, subject, unverifiable);
    const authkeys: AuthkeyData[] = keys.authkeys.flatMap((rr) =>
      rr.type === 'AUTHKEY' ? [rr.data] : [],
    );
    return await verifyCredentialWithAuthkeys(text, { zone: keys.zone, authkeys, now: clock() });
  } finally {
    await own?.close();
  }
}

/** The range's keys: by the CSI when the credential names one, else by the issuer's zone. */
async function rangeKeys(
  lookup: CredentialAuthkeyLookup,
  subject: Awaited<ReturnType<typeof readCredential>>,
  unverifiable: (message: string, cause?: unknown) => CredentialError,
): Promise<RangeKeys> {
  try {
    if (subject.csi === undefined) return await lookup.zoneAuthkeys(subject.zone);
    return await lookup.lookup(subject.csi as Csi);
  } catch (error) {
    if (error instanceof CredentialError) throw error;
    throw unverifiable(
      `the keys of the credential's range could not be verified: ${(error as Error).message}`,
      error,
    );
  }
}
