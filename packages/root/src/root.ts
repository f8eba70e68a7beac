import {
  canonicalName,
  createTrustAnchor,
  MimiError,
  type DnskeyData,
  type TrustAnchor,
} from '@mimi-discovery/common';
import type { DiscoveryStore } from '@mimi-discovery/authoritative';

/**
 * The root directory: an authoritative server whose single zone, at the namespace apex
 * (`mimi.arpa`), holds only delegations of ranges to Discovery Providers, plus its own apex
 * records. Resolvers start from its hints and trust its key (design §2, §5, §6).
 */

/** Where resolvers reach the root directory's servers (the resolver's "root hints"). */
export interface RootHints {
  /** The namespace apex served by the root directory. */
  apex: string;
  servers: RootServerHint[];
}

/** One root server: its name, addresses and endpoints. */
export interface RootServerHint {
  name: string;
  addresses: string[];
  /** Plain DNS port (UDP and TCP), when served. */
  port?: number;
  /** DoH URL template (RFC 8484), when served. */
  doh?: string;
}

/** A root directory operation that cannot be done; `code` says which. */
export class RootError extends MimiError {}

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

/** Reads root hints from their JSON text; throws `RootError` naming what is wrong. */
export function parseRootHints(text: string): RootHints {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new RootError('ERR_ROOT_HINTS', `root hints are not JSON: ${String(error)}`);
  }
  const fail = (what: string): never => {
    throw new RootError('ERR_ROOT_HINTS', `root hints: ${what}`);
  };
  if (typeof raw !== 'object' || raw === null) return fail('expected an object');
  const { apex, servers } = raw as Record<string, unknown>;
  if (typeof apex !== 'string' || apex === '') fail('apex must be a domain name');
  if (!Array.isArray(servers) || servers.length === 0) return fail('servers must be a list');
  return {
    apex: canonicalName(apex as string),
    servers: servers.map((s: unknown, i) => {
      if (typeof s !== 'object' || s === null) return fail(`servers[${i}] must be an object`);
      const { name, addresses, port, doh } = s as Record<string, unknown>;
      if (typeof name !== 'string') fail(`servers[${i}].name must be a string`);
      if (!Array.isArray(addresses) || !addresses.every((a) => typeof a === 'string')) {
        fail(`servers[${i}].addresses must be a list of addresses`);
      }
      if (
        port !== undefined &&
        (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535)
      ) {
        fail(`servers[${i}].port must be a port number`);
      }
      if (doh !== undefined && typeof doh !== 'string') fail(`servers[${i}].doh must be a URL`);
      return {
        name: name as string,
        addresses: addresses as string[],
        ...(port !== undefined ? { port: port as number } : {}),
        ...(doh !== undefined ? { doh: doh as string } : {}),
      };
    }),
  };
}
