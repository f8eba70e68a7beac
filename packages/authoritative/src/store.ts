import type {
  Ed25519KeyPair,
  ResourceRecord,
  RRType,
  ZoneKey,
  ZoneView,
} from '@mimi-discovery/common';

/**
 * The contract between a Discovery Provider's zone data and everything that reads or changes it
 * (the answering path, the registration API, delegation management, zone import and export).
 * Implementations: the LMDB store (the embedded default, `lmdb-store.ts`) and the memory store
 * (`memory-store.ts`, for ephemeral servers and tests). One shared test battery runs against both.
 *
 * Every write resolves only after it is durable (LMDB: its commit flushed to disk), applies
 * atomically, re-signs what it changed and increases the zone's SOA serial by at least one.
 */
export interface DiscoveryStore {
  /** Origins of the zones this store holds, canonical (lowercase, no trailing dot). */
  listZones(): string[];
  /** Creates a zone: SOA, NS, DNSKEY (a new combined zone key) and the apex AUTHKEY records. */
  addZone(init: ZoneInit): Promise<ZoneInfo>;
  /** Deletes a zone and its key. */
  removeZone(origin: string): Promise<void>;
  /** The zone's settings and key facts, or undefined when the store has no such zone. */
  zoneInfo(origin: string): ZoneInfo | undefined;
  /** The most specific zone of this store that contains `name`, or undefined. */
  findZone(name: string): string | undefined;
  /** Read access for `lookupZone`, with every authoritative RRset signed. */
  zoneView(origin: string): ZoneView | undefined;
  /** The zone's signing key (for online signing of compact denials). */
  zoneKey(origin: string): ZoneKey | undefined;
  /** The DP's prover key: signs attestations; listed as AUTHKEY `prover` at every apex. */
  proverKey(): Ed25519KeyPair;
  /** The records of one RRset (no RRSIGs), empty when absent. */
  readRRset(origin: string, name: string, type: RRType): ResourceRecord[];
  /** Every record of the zone, RRSIGs included (for export and transfer). */
  readZone(origin: string): ResourceRecord[];
  /**
   * Applies changes to one zone atomically: each change replaces or deletes one RRset. Signs the
   * changed RRsets, bumps the SOA serial once, and resolves after the commit is durable.
   */
  apply(origin: string, changes: readonly RRsetChange[]): Promise<ApplyResult>;
  /** Re-signs every RRset whose RRSIG expires before `before` (seconds); returns how many. */
  resign(before: number): Promise<number>;
  /** Flushes and closes; later calls fail. */
  close(): Promise<void>;
}

/** One change to one RRset of a zone. */
export type RRsetChange =
  | { op: 'put'; name: string; type: RRType; records: ResourceRecord[] }
  | { op: 'delete'; name: string; type: RRType };

/** The outcome of {@link DiscoveryStore.apply}. */
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
  /** TTL of the apex records (SOA, NS, DNSKEY, AUTHKEY); default 3600. */
  ttl?: number;
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
}
