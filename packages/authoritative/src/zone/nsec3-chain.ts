import {
  NSEC3_PARAMETERS,
  decodeBase32Hex,
  denialTtl,
  encodeBase32Hex,
  isSubdomain,
  nsec3Hash,
  parentName,
  sortTypes,
  type RecordOf,
  type RRType,
} from '@mimi-discovery/common';
import { StoreError } from '../store/store-error.js';
import type { Nsec3Index, StoredNode, StoredRRset, ZoneReader, ZoneSigner } from './zone-nodes.js';

export type { Nsec3Index } from './zone-nodes.js';

/**
 * The NSEC3 chain of a zone kept for stock secondaries (design §5, §9): RFC 5155 with the
 * parameters of RFC 9276 (`NSEC3_PARAMETERS`: SHA-1, no extra iterations, empty salt, no
 * opt-out), exactly the chain `buildNsec3Chain` (common/protocol/nsec3.ts) builds from the zone's
 * data, but kept up to date write by write instead of rebuilt.
 *
 * Where it lives: a zone keeps its chain while its apex holds NSEC3PARAM. Each entry is an
 * ordinary node at `<base32hex hash>.<origin>` holding one NSEC3 RRset and its RRSIG, so a store
 * that persists nodes persists the chain, and a transfer or an export reads it like any node.
 * Stores keep these nodes apart from the zone's data — the answering view never sees them (our
 * own servers deny by compact denial, design §5), `readRRset` finds nothing there, and they
 * never make a name an empty non-terminal — and keep an ordered index of their labels (an
 * {@link Nsec3Index}: an LMDB table keyed by origin and label, a sorted map in memory), so that a
 * predecessor in hash order is found in O(log n). A name of that shape (one label of 32
 * base32hex digits right below the origin) is therefore never zone data: changes there are
 * refused.
 *
 * What one write changes (RFC 5155 §7.1 for what the chain covers): the names the write touched
 * whose set of types changed, their ancestors up to the apex when a name appeared or went away
 * (empty non-terminals come and go with their descendants), and every name below a delegation
 * point that appeared or went away (what is below a cut is not the zone's). For each, the wanted
 * entry — its type bitmap, or none — is compared with the stored one; entries that appear or go
 * away change the Next Hashed Owner of their predecessor in hash order. Only those entries are
 * written and signed.
 *
 * Worked example, zone `example` whose chain covers `example` (hash `35…`) and `a.example`
 * (hash `9g…`): a write that adds `b.example` (hash `60…`) writes the entry `60…` (next `9g…`)
 * and rewrites its predecessor `35…` (next `60…` instead of `9g…`); a later write that deletes
 * `a.example` deletes `9g…` and rewrites `60…` (next `35…`, wrapping around).
 */

/** A zone being written, as the chain sees it (the signer's pending writes over a store's reader). */
export interface ChainEdit extends ZoneReader {
  /** The zone as it was before this write: its nodes and its chain's index. */
  readonly base: ZoneReader;
  /** Owner names this write has written so far. */
  written(): Iterable<string>;
  /** Writes a node; an empty node deletes it. */
  set(name: string, node: StoredNode): void;
}

/** A label of a chain entry: 32 base32hex digits, lowercase (a 20-octet SHA-1 hash). */
const CHAIN_LABEL = /^[0-9a-v]{32}$/;

/** Types that are themselves denial or signature data, left out of a bitmap's view of a node. */
const DENIAL_TYPES: ReadonlySet<RRType> = new Set(['RRSIG', 'NSEC', 'NSEC3', 'NSEC3PARAM']);

/**
 * The label of `name` when it has the shape of a chain entry of zone `origin` (one label of 32
 * base32hex digits right below the origin), else undefined. Names are canonical.
 */
export function chainLabel(origin: string, name: string): string | undefined {
  if (origin === '.') return CHAIN_LABEL.test(name) ? name : undefined;
  if (name.length !== origin.length + 33 || name[32] !== '.' || !name.endsWith(origin)) {
    return undefined;
  }
  const label = name.slice(0, 32);
  return CHAIN_LABEL.test(label) ? label : undefined;
}

/** The owner name of the chain entry `label` of zone `origin`. */
export function chainOwner(origin: string, label: string): string {
  return origin === '.' ? label : `${label}.${origin}`;
}

/** The chain label of `name`: base32hex of its NSEC3 hash (RFC 5155 §5) with RFC 9276 parameters. */
export function hashLabel(name: string): string {
  return encodeBase32Hex(nsec3Hash(name, NSEC3_PARAMETERS.salt, NSEC3_PARAMETERS.iterations));
}

/** The NSEC3PARAM record of a zone that keeps its chain, at TTL `ttl`. */
export function nsec3ParamRecord(origin: string, ttl: number): RecordOf<'NSEC3PARAM'> {
  return {
    name: origin,
    type: 'NSEC3PARAM',
    class: 'IN',
    ttl,
    data: { ...NSEC3_PARAMETERS, salt: Uint8Array.from(NSEC3_PARAMETERS.salt) },
  };
}

/**
 * The type bitmap of `name`'s chain entry, as `buildNsec3Chain` lists it, or undefined when the
 * chain does not cover the name: a name below a delegation point, or an empty name with nothing
 * below it. A delegation point lists NS, and DS with RRSIG when it has a DS; an empty
 * non-terminal lists nothing; any other name its types and RRSIG, the apex also NSEC3PARAM.
 */
export function chainTypes(zone: ZoneReader, name: string): RRType[] | undefined {
  const origin = zone.origin;
  for (const ancestor of ancestorsOf(origin, name)) {
    if (zone.node(ancestor)?.has('NS') === true) return undefined;
  }
  const node = zone.node(name);
  const data = [...(node?.keys() ?? [])].filter((type) => !DENIAL_TYPES.has(type));
  if (data.length === 0) {
    if (name === origin) return sortTypes(['NSEC3PARAM']);
    // An empty non-terminal when anything is below it (RFC 5155 §7.1): whatever lies below a
    // cut under this name, the cut itself is data the chain covers.
    for (const _ of zone.namesBelow(name)) return [];
    return undefined;
  }
  if (name !== origin && node?.has('NS') === true) {
    return sortTypes(node.has('DS') ? ['NS', 'DS', 'RRSIG'] : ['NS']);
  }
  const types = new Set<RRType>(data);
  types.add('RRSIG');
  if (name === origin) types.add('NSEC3PARAM');
  return sortTypes(types);
}

/**
 * Brings the chain of a zone that keeps one (its apex held NSEC3PARAM before the write and
 * holds it still) up to date with what the write changed so far, signing the entries it
 * writes (see the module comment). Throws `StoreError` (`ERR_STORE_CORRUPT`) for a zone whose
 * apex has no SOA, `ERR_STORE_BAD_CHANGE` when two names of the write hash alike.
 */
export function updateNsec3Chain(zone: ChainEdit, sign: ZoneSigner): void {
  const origin = zone.origin;
  const candidates = changedNames(zone);
  if (candidates.size === 0) return;
  const wanted = new Map<string, { name: string; types: RRType[] | undefined }>();
  for (const name of candidates) {
    const label = hashLabel(name);
    const other = wanted.get(label);
    if (other !== undefined) throw collision(other.name, name);
    wanted.set(label, { name, types: chainTypes(zone, name) });
  }
  const added: string[] = [];
  const removed = new Set<string>();
  const retyped = new Set<string>();
  for (const [label, { types }] of wanted) {
    const stored = entryAt(zone, label);
    if (types === undefined) {
      if (stored !== undefined) removed.add(label);
    } else if (stored === undefined) {
      added.push(label);
    } else if (!sameTypes(stored.data.types, types)) {
      retyped.add(label);
    }
  }
  if (added.length === 0 && removed.size === 0 && retyped.size === 0) return;
  added.sort();
  const index = new PendingIndex(zone.base.nsec3, added, removed);
  // Entries whose record changes: the new and retyped ones, and the predecessors of every entry
  // that appears or goes away (their Next Hashed Owner).
  const touched = new Set<string>([...added, ...retyped]);
  for (const label of [...added, ...removed]) {
    const previous = index.lowerAround(label);
    if (previous !== undefined) touched.add(previous);
  }
  for (const label of removed) zone.set(chainOwner(origin, label), new Map());
  const ttl = chainTtl(zone);
  for (const label of touched) {
    const types = wanted.get(label)?.types ?? entryAt(zone, label)?.data.types;
    const next = index.higherAround(label);
    if (types === undefined || next === undefined) continue;
    putEntry(zone, label, types, next, ttl, sign);
  }
}

/**
 * Builds the whole chain of a zone and puts NSEC3PARAM at its apex, every record signed: for a
 * zone that did not keep one (its index is empty). Throws `StoreError` (`ERR_STORE_BAD_CHANGE`)
 * when two names hash alike.
 */
export function buildNsec3ChainInto(zone: ChainEdit, sign: ZoneSigner): void {
  const origin = zone.origin;
  const ttl = chainTtl(zone);
  const apex = zone.node(origin) ?? new Map<RRType, StoredRRset>();
  const param = [nsec3ParamRecord(origin, ttl)];
  zone.set(origin, new Map(apex).set('NSEC3PARAM', { records: param, signatures: sign(param) }));
  const names = new Set<string>([origin]);
  for (const name of zone.namesBelow(origin)) {
    if (chainLabel(origin, name) !== undefined) continue;
    names.add(name);
    for (const ancestor of ancestorsOf(origin, name)) names.add(ancestor);
  }
  const entries: Array<{ label: string; name: string; types: RRType[] }> = [];
  for (const name of names) {
    const types = chainTypes(zone, name);
    if (types !== undefined) entries.push({ label: hashLabel(name), name, types });
  }
  entries.sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  entries.forEach((entry, i) => {
    const previous = entries[i - 1];
    if (previous?.label === entry.label) throw collision(previous.name, entry.name);
    const next = (entries[i + 1] ?? entries[0]) as (typeof entries)[number];
    putEntry(zone, entry.label, entry.types, next.label, ttl, sign);
  });
}

/** Deletes a zone's whole chain and its NSEC3PARAM. */
export function dropNsec3Chain(zone: ChainEdit): void {
  const origin = zone.origin;
  for (const label of chainLabels(zone)) zone.set(chainOwner(origin, label), new Map());
  const apex = zone.node(origin);
  if (apex?.has('NSEC3PARAM') === true) {
    const rest = new Map(apex);
    rest.delete('NSEC3PARAM');
    zone.set(origin, rest);
  }
}

/**
 * The labels of the chain as this write leaves it so far, in hash order: the index's entries
 * that were not deleted and the entries written.
 */
export function chainLabels(zone: ChainEdit): string[] {
  const origin = zone.origin;
  const labels = new Set<string>();
  const index = zone.base.nsec3;
  for (let label = index.first(); label !== undefined; label = index.higher(label)) {
    labels.add(label);
  }
  for (const name of zone.written()) {
    const label = chainLabel(origin, name);
    if (label !== undefined) labels.add(label);
  }
  return [...labels].filter((label) => zone.node(chainOwner(origin, label)) !== undefined).sort();
}

/** Names strictly between `name` and `origin`, nearest first. */
function ancestorsOf(origin: string, name: string): string[] {
  const out: string[] = [];
  for (
    let p = parentName(name);
    p !== undefined && p !== origin && isSubdomain(p, origin);
    p = parentName(p)
  ) {
    out.push(p);
  }
  return out;
}

/** The names whose chain entry this write may have changed (see the module comment). */
function changedNames(zone: ChainEdit): Set<string> {
  const origin = zone.origin;
  const out = new Set<string>();
  for (const name of zone.written()) {
    if (chainLabel(origin, name) !== undefined) continue;
    const was = zone.base.node(name);
    const now = zone.node(name);
    if (sameKeys(was, now)) continue;
    out.add(name);
    if ((was === undefined) !== (now === undefined)) {
      for (const ancestor of ancestorsOf(origin, name)) out.add(ancestor);
    }
    if (name !== origin && (was?.has('NS') === true) !== (now?.has('NS') === true)) {
      for (const below of zone.namesBelow(name)) {
        out.add(below);
        for (const ancestor of ancestorsOf(name, below)) out.add(ancestor);
      }
    }
  }
  return out;
}

function sameKeys(a: StoredNode | undefined, b: StoredNode | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.size !== b.size) return false;
  for (const type of a.keys()) if (!b.has(type)) return false;
  return true;
}

function sameTypes(a: readonly RRType[], b: readonly RRType[]): boolean {
  return a.length === b.length && a.every((type, i) => b[i] === type);
}

/** The NSEC3 record of the chain entry `label` as the write sees it now. */
function entryAt(zone: ZoneReader, label: string): RecordOf<'NSEC3'> | undefined {
  const rr = zone.node(chainOwner(zone.origin, label))?.get('NSEC3')?.records[0];
  return rr?.type === 'NSEC3' ? rr : undefined;
}

/** RFC 5155 §3 and RFC 9077: NSEC3 records take min(SOA TTL, SOA MINIMUM). */
function chainTtl(zone: ZoneReader): number {
  const soa = zone.node(zone.origin)?.get('SOA')?.records[0];
  if (soa?.type !== 'SOA') {
    throw new StoreError('ERR_STORE_CORRUPT', `zone ${zone.origin} has no SOA at its apex`);
  }
  return denialTtl(soa);
}

/** Writes the entry `label` (signed) unless the stored one already says exactly that. */
function putEntry(
  zone: ChainEdit,
  label: string,
  types: RRType[],
  next: string,
  ttl: number,
  sign: ZoneSigner,
): void {
  const origin = zone.origin;
  const stored = entryAt(zone, label);
  const nextHashedOwner = decodeBase32Hex(next);
  if (
    stored !== undefined &&
    stored.ttl === ttl &&
    sameTypes(stored.data.types, types) &&
    Buffer.from(stored.data.nextHashedOwner).equals(nextHashedOwner)
  ) {
    return;
  }
  const record: RecordOf<'NSEC3'> = {
    name: chainOwner(origin, label),
    type: 'NSEC3',
    class: 'IN',
    ttl,
    data: {
      hashAlgorithm: NSEC3_PARAMETERS.hashAlgorithm,
      flags: NSEC3_PARAMETERS.flags,
      iterations: NSEC3_PARAMETERS.iterations,
      salt: Uint8Array.from(NSEC3_PARAMETERS.salt),
      nextHashedOwner,
      types,
    },
  };
  zone.set(record.name, new Map([['NSEC3', { records: [record], signatures: sign([record]) }]]));
}

/**
 * The chain's index as the write leaves it: the stored index, less the labels `removed`, plus
 * the labels `added` (sorted). Neighbours wrap around: the chain is a ring (RFC 5155 §3.1.7).
 */
class PendingIndex {
  constructor(
    private readonly base: Nsec3Index,
    private readonly added: readonly string[],
    private readonly removed: ReadonlySet<string>,
  ) {}

  /** The largest label below `label`, else the largest of all; undefined for an empty chain. */
  lowerAround(label: string): string | undefined {
    return this.#lower(label) ?? this.#last();
  }

  /** The smallest label above `label`, else the smallest of all (itself when alone). */
  higherAround(label: string): string | undefined {
    return this.#higher(label) ?? this.#first();
  }

  #lower(label: string): string | undefined {
    let stored = this.base.lower(label);
    while (stored !== undefined && this.removed.has(stored)) stored = this.base.lower(stored);
    const i = searchBelow(this.added, label);
    return max(stored, i >= 0 ? this.added[i] : undefined);
  }

  #higher(label: string): string | undefined {
    let stored = this.base.higher(label);
    while (stored !== undefined && this.removed.has(stored)) stored = this.base.higher(stored);
    const i = searchBelow(this.added, label) + 1;
    const fromAdded = this.added[i] === label ? this.added[i + 1] : this.added[i];
    return min(stored, fromAdded);
  }

  #first(): string | undefined {
    let stored = this.base.first();
    while (stored !== undefined && this.removed.has(stored)) stored = this.base.higher(stored);
    return min(stored, this.added[0]);
  }

  #last(): string | undefined {
    let stored = this.base.last();
    while (stored !== undefined && this.removed.has(stored)) stored = this.base.lower(stored);
    return max(stored, this.added.at(-1));
  }
}

/** The index of the largest element of `sorted` below `label`, or -1. */
function searchBelow(sorted: readonly string[], label: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((sorted[mid] as string) < label) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

function max(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}

function min(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a < b ? a : b;
}

function collision(a: string, b: string): StoreError {
  return new StoreError(
    'ERR_STORE_BAD_CHANGE',
    `NSEC3 hash collision between ${a} and ${b} (RFC 5155 §7.1): the chain cannot hold both`,
  );
}
