import type { RecordOf, ResourceRecord, RRType } from '@mimi-discovery/common';

/**
 * How a store holds a zone's nodes, as the signer (`zone-signer.ts`), the NSEC3 chain
 * (`nsec3-chain.ts`), the journal (`journal.ts`) and the stores share them: types only, in a
 * module that imports nothing of this package, so that none of those modules has to import
 * another's code to name them.
 */

/**
 * One RRset as a store keeps it: its records and, when it is authoritative, its RRSIGs: one per
 * key that signs it (one key, or two for a moment during a key rollover, `keys/key-set.ts`);
 * empty when the RRset is not signed.
 */
export interface StoredRRset {
  readonly records: readonly ResourceRecord[];
  readonly signatures: readonly RecordOf<'RRSIG'>[];
}

/**
 * Signs one RRset with every key that signs its type now (the zone's signers, or for DNSKEY, CDS
 * and CDNSKEY every published key), one RRSIG each.
 */
export interface ZoneSigner {
  (rrset: readonly ResourceRecord[]): RecordOf<'RRSIG'>[];
  /**
   * Whether `signatures` over an RRset of `type` are exactly by the keys that sign that type now
   * (one RRSIG per key, no other): false after a key switch, until the RRset is signed again.
   */
  isCurrent(type: RRType, signatures: readonly RecordOf<'RRSIG'>[]): boolean;
  /** The key tags of the keys that sign RRsets other than DNSKEY, CDS and CDNSKEY. */
  readonly signerTags: readonly number[];
}

/** The RRsets at one owner name, by type. A node without RRsets does not exist. */
export type StoredNode = ReadonlyMap<RRType, StoredRRset>;

/**
 * Read access to one zone's nodes; names are canonical. The entries of the zone's NSEC3 chain
 * (`nsec3-chain.ts`) are nodes too: `node` returns them, `namesBelow` never lists them (they are
 * not data), and `nsec3` lists their labels in hash order.
 */
export interface ZoneReader {
  /** The zone's origin, canonical. */
  readonly origin: string;
  node(name: string): StoredNode | undefined;
  /** Owner names of the data nodes strictly below `name` (never the chain's). */
  namesBelow(name: string): Iterable<string>;
  /** The labels of the zone's NSEC3 chain entries, in hash order. */
  readonly nsec3: Nsec3Index;
}

/** Nodes to write, by canonical owner name; `undefined` deletes the node. */
export type ZoneWrites = Map<string, StoredNode | undefined>;

/** The labels of a zone's chain entries in hash order (base32hex keeps the order of the hashes). */
export interface Nsec3Index {
  /** The smallest label, or undefined when the zone has no chain. */
  first(): string | undefined;
  /** The largest label. */
  last(): string | undefined;
  /** The largest label below `label`. */
  lower(label: string): string | undefined;
  /** The smallest label above `label`. */
  higher(label: string): string | undefined;
}
