import {
  canonicalName,
  createTrustAnchor,
  MimiError,
  parseConfigText,
  rootHintsSchema,
  type DnskeyData,
  type RootHintsFile,
  type TrustAnchor,
} from '@mimi-discovery/common';
import type { DiscoveryStore } from '@mimi-discovery/authoritative';

/**
 * The root directory: an authoritative server whose single zone, at the namespace apex
 * (`mimi.arpa`), holds only delegations of ranges to Discovery Providers, plus its own apex
 * records. Resolvers start from its hints and trust its key (design §2, §5, §6).
 */

/**
 * Where resolvers reach the root directory's servers (the resolver's "root hints"): the apex
 * the root serves and its servers, in the format of `rootHintsSchema`.
 */
export type RootHints = RootHintsFile;

/**
 * One root server: its name, addresses, plain DNS port (UDP and TCP) when served, and DoH URL
 * (RFC 8484) when served.
 */
export type RootServerHint = RootHintsFile['servers'][number];

/** The codes of a {@link RootError}. */
export type RootErrorCode = 'ERR_ROOT_NO_ZONE';

/** A root directory operation that cannot be done; `code` says which. */
export class RootError extends MimiError<RootErrorCode> {}

/** The trust anchor of the namespace: the root zone's DNSKEYs and their DS (design §5). */
export function rootTrustAnchor(store: DiscoveryStore, apex: string): TrustAnchor {
  const origin = canonicalName(apex);
  const dnskeys: DnskeyData[] = store
    .readRRset(origin, origin, 'DNSKEY')
    .flatMap((rr) => (rr.type === 'DNSKEY' ? [rr.data] : []));
  if (dnskeys.length === 0) {
    throw new RootError('ERR_ROOT_NO_ZONE', `this store holds no root zone at ${origin}`);
  }
  return createTrustAnchor(origin, dnskeys);
}

/** Serializes root hints as JSON, the file resolvers are given with the trust anchor. */
export function formatRootHints(hints: RootHints): string {
  return `${JSON.stringify(hints, null, 2)}\n`;
}

/**
 * Reads root hints from their JSON text with `rootHintsSchema` of `@mimi-discovery/common`, the
 * one schema of the format (the resolver reads them with it too). Throws `ConfigError`:
 * `ERR_CONFIG_SYNTAX` for text that is not JSON, `ERR_CONFIG_INVALID` naming each bad key.
 */
export function parseRootHints(text: string, source?: string): RootHints {
  return parseConfigText(text, rootHintsSchema, source);
}
