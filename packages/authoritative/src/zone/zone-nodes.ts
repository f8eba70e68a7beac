import type { RecordOf, ResourceRecord, RRType } from '@mimi-discovery/common';

/**
 * How a store holds a zone's nodes, as the signer (`zone-signer.ts`), the NSEC3 chain
 * (`nsec3-chain.ts`), the journal (`journal.ts`) and the stores share them: types only, in a
 * module that imports nothing of this package, so that none of those modules has to import
 * another's code to name them.
 */

/** One RRset as a store keeps it: its records and, when it is authoritative, its RRSIG. */
export interface StoredRRset {
  readonly records: readonly ResourceRecord[];
  readonly signature: RecordOf<'RRSIG'> | undefined;
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
