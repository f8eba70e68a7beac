import type { ResourceRecord, RRType } from '@mimi-discovery/common';

/**
 * The values the store contract (`DiscoveryStore`, `store.ts`) takes and returns: changes to
 * apply, zone settings and zone facts. They sit in a module that imports nothing else of this
 * package, so that the signer (`zone-signer.ts`) and the change checks (`zone-changes.ts`) use
 * them without importing the contract, which itself names what those modules define.
 */

/**
 * One change to one RRset of a zone. Allowed types: NS (the apex NS RRset, or a delegation), DS
 * (at a delegation), A, AAAA and SVCB (glue, `_dns` endpoints), TXT, MAP, MAPREF and AUTHKEY (at
 * the apex). SOA, DNSKEY, RRSIG, NSEC, NSEC3 and NSEC3PARAM are the store's own.
 */
export type RRsetChange =
  | { op: 'put'; name: string; type: RRType; records: ResourceRecord[] }
  | { op: 'delete'; name: string; type: RRType };

/** The outcome of `DiscoveryStore.apply`. */
export interface ApplyResult {
  serial: number;
}

/** What it takes to create a zone. */
export interface ZoneInit {
  origin: string;
  /** Nameserver names for the apex NS RRset. */
  nameservers: string[];
  /** SOA MNAME and RNAME; timers default to common values when omitted. */
  mname: string;
  rname: string;
  refresh?: number;
  retry?: number;
  expire?: number;
  minimum?: number;
  /** TTL of the apex records (SOA, NS, DNSKEY); default 3600. */
  ttl?: number;
  /** TTL of the apex AUTHKEY RRset; default `DEFAULT_AUTHKEY_TTL_SECONDS` (300). */
  authkeyTtl?: number;
  /** Seed of the zone key (32 octets) when it must be fixed; a new random key otherwise. */
  keySeed?: Uint8Array;
  /** Extra AUTHKEY entries besides this DP's prover key (independent provers, CSIPs). */
  authkeys?: AuthkeyEntry[];
}

/** One key authorized for a range (AUTHKEY RDATA). */
export interface AuthkeyEntry {
  role: 'prover' | 'csip';
  publicKey: Uint8Array;
  notAfter: number;
}

/** Facts about one zone. */
export interface ZoneInfo {
  origin: string;
  serial: number;
  keyTag: number;
  /** The zone's DNSKEY public key. */
  publicKey: Uint8Array;
  /** Whether the zone keeps an NSEC3 chain for transfer (NSEC3PARAM at its apex). */
  nsec3: boolean;
}
