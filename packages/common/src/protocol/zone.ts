import { ZoneError } from './errors.js';
import { canonicalName, isSubdomain, nameLabels, parentName } from './names.js';
import type { RecordOf, ResourceRecord, RRType } from './records.js';

/**
 * The records at one owner name, grouped by type. `signatures` holds the RRSIGs that cover each
 * RRset, keyed by the type covered (RFC 4034 §3: an RRSIG belongs to the RRset it covers, not to
 * an RRSIG RRset of its own).
 */
export interface ZoneNode {
  readonly rrsets: ReadonlyMap<RRType, readonly ResourceRecord[]>;
  readonly signatures: ReadonlyMap<RRType, readonly RecordOf<'RRSIG'>[]>;
}

/**
 * Read access to one zone, as the pure lookup needs it. The in-memory zone below implements it;
 * a store (LMDB, SQL) implements the same three members over its own index.
 */
export interface ZoneView {
  /** The zone's origin (its apex name). */
  readonly origin: string;
  /** The node at exactly `name` (any case), or undefined when no record is owned by it. */
  node(name: string): ZoneNode | undefined;
  /** Whether some node exists strictly below `name` (so `name` is at least an empty non-terminal). */
  hasDescendants(name: string): boolean;
}

/** A zone held in memory: built once from a list of records, immutable afterwards. */
export interface MemoryZone extends ZoneView {
  /** Every record of the zone, RRSIGs included, in the order given. */
  readonly records: readonly ResourceRecord[];
}

/**
 * Builds an in-memory zone from its records. Every owner must be at or below `origin`; an SOA at
 * the origin is required (RFC 1035 §5.2), since every negative answer carries it.
 */
export function createMemoryZone(origin: string, records: readonly ResourceRecord[]): MemoryZone {
  const apex = canonicalName(origin);
  const nodes = new Map<
    string,
    { rrsets: Map<RRType, ResourceRecord[]>; signatures: Map<RRType, RecordOf<'RRSIG'>[]> }
  >();
  const interior = new Set<string>();
  for (const rr of records) {
    const owner = canonicalName(rr.name);
    if (!isSubdomain(owner, apex)) {
      throw new ZoneError(
        'ERR_ZONE_OUT_OF_ZONE',
        `record owner ${rr.name} is not in zone ${origin}`,
      );
    }
    let node = nodes.get(owner);
    if (!node) {
      node = { rrsets: new Map(), signatures: new Map() };
      nodes.set(owner, node);
      for (
        let p = parentName(owner);
        p !== undefined && isSubdomain(p, apex) && !interior.has(p);
        p = parentName(p)
      ) {
        interior.add(p);
        if (p === apex) break;
      }
    }
    if (rr.type === 'RRSIG') {
      const list = node.signatures.get(rr.data.typeCovered) ?? [];
      list.push(rr);
      node.signatures.set(rr.data.typeCovered, list);
    } else {
      const list = node.rrsets.get(rr.type) ?? [];
      list.push(rr);
      node.rrsets.set(rr.type, list);
    }
  }
  if (!nodes.get(apex)?.rrsets.has('SOA')) {
    throw new ZoneError('ERR_ZONE_NO_SOA', `zone ${origin} has no SOA record at its origin`);
  }
  return {
    origin: apex,
    records,
    node: (name) => nodes.get(canonicalName(name)),
    hasDescendants: (name) => interior.has(canonicalName(name)),
  };
}

/** Labels from the zone origin (exclusive) down to `name` (inclusive), in walk order. */
export function namesBelowOrigin(name: string, origin: string): string[] {
  const labels = nameLabels(canonicalName(name));
  const depth = nameLabels(canonicalName(origin)).length;
  const out: string[] = [];
  for (let keep = depth + 1; keep <= labels.length; keep++) {
    out.push(labels.slice(labels.length - keep).join('.'));
  }
  return out;
}
