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
  /**
   * One search down from the origin to `name` (canonical, at or below the origin): the first zone
   * cut on the way and the node at `name`. Optional: a view without it is searched with `node`,
   * one call per name on the way ({@link descendZone}). A store implements it when it can find
   * both in one pass over its index (the LMDB store builds the name's key once and probes its
   * ancestors as prefixes of it).
   */
  descend?(name: string): Descent;
}

/** What {@link ZoneView.descend} finds on the way from the origin down to a name. */
export interface Descent {
  /**
   * The zone cut nearest the origin: the first node strictly below the origin, at or above the
   * name, that holds NS (RFC 1034 §4.3.2 step 3b), with its name (canonical).
   */
  readonly cut?: { readonly name: string; readonly node: ZoneNode };
  /**
   * The node at the name itself, when it owns records; left out when the cut lies above the
   * name (the answer is then the cut's referral, whatever the name holds).
   */
  readonly node?: ZoneNode;
}

/**
 * {@link ZoneView.descend} of `zone`, or the same search through `zone.node`: each name from the
 * origin's child down to `name` (canonical, at or below the origin) is asked for until one holds
 * NS. Example, zone `e164.mimi.arpa` delegating `4.4.e164.mimi.arpa`, name
 * `1.4.4.e164.mimi.arpa`: `4.e164.mimi.arpa` (no node), then `4.4.e164.mimi.arpa` (NS) → the
 * cut, and no node at the name.
 */
export function descendZone(zone: ZoneView, name: string): Descent {
  if (zone.descend !== undefined) return zone.descend(name);
  for (const above of namesBelowOrigin(name, zone.origin)) {
    if (above === name) break;
    const node = zone.node(above);
    if (node?.rrsets.has('NS') === true) return { cut: { name: above, node } };
  }
  const node = zone.node(name);
  if (node === undefined) return {};
  // The apex holds NS too, but is no cut of its own zone.
  return node.rrsets.has('NS') && name !== canonicalName(zone.origin)
    ? { cut: { name, node }, node }
    : { node };
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
