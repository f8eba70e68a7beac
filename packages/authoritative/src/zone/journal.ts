import {
  decodeName,
  decodeRdata,
  encodeName,
  encodeRdata,
  typeToCode,
  codeToType,
  type RecordOf,
  type ResourceRecord,
  type RRType,
} from '@mimi-discovery/common';
import { nodeKey } from '../store/node-codec.js';
import { StoreError } from '../store/store-error.js';
import { ownerName } from './owner-name.js';
import type { StoredNode, ZoneReader, ZoneWrites } from './zone-nodes.js';

/**
 * The journal of a zone: one entry per write that changed its serial, each the difference that
 * write made, as an incremental zone transfer sends it (IXFR, RFC 1995 §4: the SOA of the old
 * serial, the records deleted, the SOA of the new serial, the records added). Every store writes
 * the entry in the same transaction as the write itself, so the journal never misses or invents
 * a change; a secondary at serial `s` is brought up to date with the entries from `s` on, and one
 * whose serial the journal no longer reaches gets the whole zone (AXFR, RFC 1995 §2).
 *
 * An entry is derived from what the write already holds: the nodes it replaces (read through the
 * store's reader before the commit) and the nodes it writes. Only the RRsets that differ are
 * compared, record by record (RDATA in canonical form and TTL), so an apply that changes one MAP
 * RRset yields an entry of a handful of records: both SOAs, the old and new MAP records and the
 * RRSIGs of the MAP and the SOA (and NSEC3 records, when the zone keeps its chain).
 *
 * Worked example, zone `4.4.e164.mimi.arpa` at serial 7: publishing a first mapping at
 * `8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa` is the entry `{ from: 7, to: 8, deleted: [SOA 7,
 * RRSIG(SOA 7)], added: [SOA 8, RRSIG(SOA 8), MAP, RRSIG(MAP)] }`.
 *
 * Bounds: a zone keeps at most `maxEntries` entries and `maxOctets` octets of encoded entries
 * ({@link JournalLimits}); past either, the oldest entries go first. A single entry larger than
 * `maxOctets` empties the journal: the next transfer is a whole zone.
 */

/** One serial change as IXFR sends it (RFC 1995 §4). */
export interface JournalEntry {
  readonly from: number;
  readonly to: number;
  /** The SOA of `from` first, then every other record the write removed, in canonical order. */
  readonly deleted: readonly ResourceRecord[];
  /** The SOA of `to` first, then every other record the write added, in canonical order. */
  readonly added: readonly ResourceRecord[];
}

/** Default bound on a zone's journal entries (store option `journal`, DP config key `journal`). */
export const JOURNAL_MAX_ENTRIES = 10_000;
/** Default bound on the encoded octets of a zone's journal: 64 MiB. */
export const JOURNAL_MAX_OCTETS = 64 * 1024 * 1024;

/** How much of its journal a zone keeps; the oldest entries go first. */
export interface JournalLimits {
  /** Entries kept per zone (0: no journal; every transfer is a whole zone). */
  maxEntries: number;
  /** Octets of encoded entries kept per zone. */
  maxOctets: number;
}

/** Checks journal limits, filling in defaults. Throws `StoreError` (`ERR_STORE_BAD_ZONE`). */
export function journalLimits(limits: Partial<JournalLimits> | undefined): JournalLimits {
  const maxEntries = limits?.maxEntries ?? JOURNAL_MAX_ENTRIES;
  const maxOctets = limits?.maxOctets ?? JOURNAL_MAX_OCTETS;
  for (const [what, value] of [
    ['maxEntries', maxEntries],
    ['maxOctets', maxOctets],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new StoreError(
        'ERR_STORE_BAD_ZONE',
        `journal.${what} must be a whole number of at least 0, got ${String(value)}`,
      );
    }
  }
  return { maxEntries, maxOctets };
}

/**
 * The journal entry of one write: what the nodes `writes` replace (read through `before`, the
 * zone as it was) and what they become. Undefined when the apex SOA did not change (a write
 * that bumps no serial has nothing to transfer).
 */
export function journalEntry(before: ZoneReader, writes: ZoneWrites): JournalEntry | undefined {
  const origin = before.origin;
  let fromSoa: RecordOf<'SOA'> | undefined;
  let toSoa: RecordOf<'SOA'> | undefined;
  const deleted: ResourceRecord[] = [];
  const added: ResourceRecord[] = [];
  for (const name of canonicalOrder(origin, writes.keys())) {
    const old = before.node(name);
    const next = writes.get(name);
    if (old === next) continue;
    for (const type of typesOf(old, next)) {
      const was = old?.get(type);
      const now = next?.get(type);
      if (was === now) continue;
      const wasRecords = was?.records ?? [];
      const nowRecords = now?.records ?? [];
      if (type === 'SOA' && name === origin) {
        fromSoa = wasRecords[0] as RecordOf<'SOA'> | undefined;
        toSoa = nowRecords[0] as RecordOf<'SOA'> | undefined;
      } else if (wasRecords !== nowRecords) {
        difference(wasRecords, nowRecords, deleted, added);
      }
      const wasSigs = was?.signatures ?? [];
      const nowSigs = now?.signatures ?? [];
      for (const sig of wasSigs) {
        if (!nowSigs.some((other) => sameSignature(sig, other))) deleted.push(sig);
      }
      for (const sig of nowSigs) {
        if (!wasSigs.some((other) => sameSignature(sig, other))) added.push(sig);
      }
    }
  }
  if (fromSoa === undefined || toSoa === undefined) return undefined;
  if (fromSoa.data.serial === toSoa.data.serial) return undefined;
  return {
    from: fromSoa.data.serial,
    to: toSoa.data.serial,
    deleted: [fromSoa, ...deleted],
    added: [toSoa, ...added],
  };
}

/** Names in canonical order (RFC 4034 §6.1), as the LMDB keys of zone `origin` order them. */
function canonicalOrder(origin: string, names: Iterable<string>): string[] {
  return [...names]
    .map((name) => ({ name, key: nodeKey(origin, name).toString('latin1') }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((entry) => entry.name);
}

function typesOf(a: StoredNode | undefined, b: StoredNode | undefined): RRType[] {
  const types = new Set<RRType>([...(a?.keys() ?? []), ...(b?.keys() ?? [])]);
  return [...types].sort((x, y) => typeToCode(x) - typeToCode(y));
}

/** Appends the records of `was` not in `now` to `deleted`, and those of `now` not in `was` to `added`. */
function difference(
  was: readonly ResourceRecord[],
  now: readonly ResourceRecord[],
  deleted: ResourceRecord[],
  added: ResourceRecord[],
): void {
  // An RRset that appears or goes away needs no comparison (the common case: a new name).
  if (was.length === 0 || now.length === 0) {
    deleted.push(...was);
    added.push(...now);
    return;
  }
  const wasIds = was.map(recordId);
  const nowIds = now.map(recordId);
  const nowSet = new Set(nowIds);
  const wasSet = new Set(wasIds);
  was.forEach((rr, i) => {
    if (!nowSet.has(wasIds[i] as string)) deleted.push(rr);
  });
  now.forEach((rr, i) => {
    if (!wasSet.has(nowIds[i] as string)) added.push(rr);
  });
}

/** Whether two RRSIGs of one RRset are the same record (compared field by field, not encoded). */
function sameSignature(a: RecordOf<'RRSIG'>, b: RecordOf<'RRSIG'>): boolean {
  if (a === b) return true;
  const x = a.data;
  const y = b.data;
  return (
    a.ttl === b.ttl &&
    x.typeCovered === y.typeCovered &&
    x.algorithm === y.algorithm &&
    x.labels === y.labels &&
    x.originalTtl === y.originalTtl &&
    x.expiration === y.expiration &&
    x.inception === y.inception &&
    x.keyTag === y.keyTag &&
    x.signerName.toLowerCase() === y.signerName.toLowerCase() &&
    Buffer.from(x.signature.buffer, x.signature.byteOffset, x.signature.byteLength).equals(
      y.signature,
    )
  );
}

/** A record's identity within its RRset: TTL and canonical RDATA (RFC 4034 §6.2). */
function recordId(rr: ResourceRecord): string {
  return `${rr.ttl}:${Buffer.from(encodeRdata(rr, { canonical: true })).toString('latin1')}`;
}

/** Version octet of the encoding below. */
const ENCODING_VERSION = 1;
/** Largest RDATA a record can carry (RFC 1035 §3.2.1: RDLENGTH is 16 bits). */
const MAX_RDLENGTH = 0xffff;

/**
 * An entry as octets, for tables: `01 · from u32 · to u32 · deleted u32 · added u32`, then each
 * record (the deleted ones, then the added ones) as owner (wire form, uncompressed) · type u16 ·
 * TTL u32 · RDLENGTH u16 · RDATA. Class is always IN.
 */
export function encodeJournalEntry(e: JournalEntry): Uint8Array {
  const parts: Uint8Array[] = [];
  const head = Buffer.alloc(17);
  head.writeUInt8(ENCODING_VERSION, 0);
  head.writeUInt32BE(e.from, 1);
  head.writeUInt32BE(e.to, 5);
  head.writeUInt32BE(e.deleted.length, 9);
  head.writeUInt32BE(e.added.length, 13);
  parts.push(head);
  // Records of one write share a few owners: each owner is encoded once.
  const owners = new Map<string, Uint8Array>();
  for (const rr of [...e.deleted, ...e.added]) {
    let owner = owners.get(rr.name);
    if (owner === undefined) {
      owner = encodeName(rr.name);
      owners.set(rr.name, owner);
    }
    const rdata = encodeRdata(rr);
    const fixed = Buffer.allocUnsafe(8);
    fixed.writeUInt16BE(typeToCode(rr.type), 0);
    fixed.writeUInt32BE(rr.ttl, 2);
    fixed.writeUInt16BE(rdata.length, 6);
    parts.push(owner, fixed, rdata);
  }
  return Buffer.concat(parts);
}

/** Decodes {@link encodeJournalEntry}. Throws `StoreError` (`ERR_STORE_CORRUPT`). */
export function decodeJournalEntry(b: Uint8Array): JournalEntry {
  const bytes = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  try {
    if (bytes.length < 17 || bytes[0] !== ENCODING_VERSION) throw corrupt('a bad header');
    const from = bytes.readUInt32BE(1);
    const to = bytes.readUInt32BE(5);
    const counts = [bytes.readUInt32BE(9), bytes.readUInt32BE(13)] as const;
    let pos = 17;
    const read = (count: number): ResourceRecord[] => {
      const out: ResourceRecord[] = [];
      for (let i = 0; i < count; i++) {
        const { name, end } = decodeName(bytes, pos);
        if (end + 8 > bytes.length) throw corrupt('a truncated record');
        const type = codeToType(bytes.readUInt16BE(end));
        const ttl = bytes.readUInt32BE(end + 2);
        const length = bytes.readUInt16BE(end + 6);
        pos = end + 8 + length;
        if (length > MAX_RDLENGTH || pos > bytes.length) throw corrupt('a truncated RDATA');
        const data = decodeRdata(type, Uint8Array.from(bytes.subarray(end + 8, pos)));
        // decodeRdata returns the data of `type`; the union cannot follow a runtime type.
        out.push({ name: ownerName(name), type, class: 'IN', ttl, data } as ResourceRecord);
      }
      return out;
    };
    const deleted = read(counts[0]);
    const added = read(counts[1]);
    if (pos !== bytes.length) throw corrupt('trailing octets');
    if (deleted[0]?.type !== 'SOA' || added[0]?.type !== 'SOA') throw corrupt('no SOA first');
    return { from, to, deleted, added };
  } catch (error) {
    if (error instanceof StoreError) throw error;
    throw new StoreError('ERR_STORE_CORRUPT', 'a journal entry does not decode', { cause: error });
  }
}

function corrupt(what: string): StoreError {
  return new StoreError('ERR_STORE_CORRUPT', `a journal entry with ${what}`);
}
