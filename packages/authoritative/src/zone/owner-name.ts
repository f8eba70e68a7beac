import { canonicalName, formatLabels, parseLabels } from '@mimi-discovery/common';
import { StoreError } from '../store/store-error.js';

/**
 * How the store spells names: one spelling per name, so that a name read from a query, a change
 * or a zone file finds the same stored node. Used by the stores, the signer, the change checks
 * and the answering path alike.
 *
 * Worked example: `8.1.0.0.6.4.9.7.0.2.4.4.E164.mimi.arpa.` is kept as
 * `8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa`; `a\@b.example` and `a@b.example` are both kept as
 * `a\@b.example` (the escapes `formatLabels` writes).
 */

/** Names that `formatLabels` writes unchanged: no escapes, no specials. */
const PLAIN_NAME = /^[0-9a-z_*-]+(\.[0-9a-z_*-]+)*$/;

/**
 * The form in which the store keys names: canonical (RFC 4034 §6.2, lowercase, no trailing dot)
 * with RFC 1035 escapes exactly as `formatLabels` writes them, so one name has one spelling
 * (`a\@b` and `a@b` are the same name). Throws `NameError` for a malformed name.
 */
export function ownerName(name: string): string {
  const canonical = canonicalName(name);
  if (canonical === '.' || PLAIN_NAME.test(canonical)) return canonical;
  return formatLabels(parseLabels(canonical));
}

/** {@link ownerName}, or undefined for a malformed name. */
export function ownerOrUndefined(name: string): string | undefined {
  try {
    return ownerName(name);
  } catch {
    return undefined;
  }
}

/**
 * The canonical origin of a zone. Throws `StoreError` with `code` when it is not a domain name.
 */
export function zoneOrigin(
  origin: unknown,
  code: 'ERR_STORE_BAD_ZONE' | 'ERR_STORE_NO_ZONE',
): string {
  if (typeof origin !== 'string') throw new StoreError(code, 'a zone origin must be a string');
  try {
    return ownerName(origin);
  } catch (cause) {
    throw new StoreError(code, `${JSON.stringify(origin)} is not a domain name`, { cause });
  }
}
