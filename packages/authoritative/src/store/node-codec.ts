import {
  codeToType,
  decodeRdata,
  encodeRdata,
  formatLabels,
  keepStoredRdata,
  parseLabels,
  typeToCode,
  type RecordOf,
  type ResourceRecord,
  type RRType,
} from '@mimi-discovery/common';
import { StoreError } from './store-error.js';
import type { StoredNode, StoredRRset } from '../zone/zone-signer.js';

/**
 * Binary keys and values of the LMDB `nodes` table (layout in `lmdb-store.ts`).
 *
 * A key orders names the DNSSEC way (RFC 4034 §6.1) and puts every descendant of a name right
 * after it, so "is there anything below this name" is one cursor step. A name is written as its
 * labels from the root down, each label's octets escaped (0x00 → 01 01, 0x01 → 01 02, any other
 * octet as is) and closed by 0x00. The escape keeps the octet order and leaves 0x00 free to end a
 * label, so a shorter label sorts before any label it is a prefix of. A key is the zone's origin
 * so written, one more 0x00 (the origin ends: no label starts with 0x00), then the owner's labels
 * below the origin.
 *
 * Worked example, zone `4.4.e164.mimi.arpa`, owner `8.4.4.e164.mimi.arpa`:
 * `arpa 00 mimi 00 e164 00 4 00 4 00 | 00 | 8 00`. Its descendants are exactly the keys from
 * `… 8 00 01` (inclusive) to `… 8 01` (exclusive).
 *
 * A value is the node's RRsets, in type-code order:
 * `count u16 · (type u16 · ttl u32 · n u16 · (length u16 · RDATA){n} · sigLength u16 · RRSIG RDATA?)*`
 * with RDATA in uncompressed wire form (`encodeRdata`), class IN, and a signature length of 0 for
 * an unsigned RRset. Records are rebuilt with the owner taken from the key, each keeping its
 * RDATA octets (`keepStoredRdata`), which a response copies instead of encoding them again.
 */

/** The key prefix shared by every node of a zone (also the apex's key). */
export function zonePrefix(origin: string): Buffer {
  return nodeKey(origin, origin);
}

/** The key of the node `name` (canonical, at or below `origin`) of the zone `origin`. */
export function nodeKey(origin: string, name: string): Buffer {
  const prefix = plainPrefix(origin);
  if (prefix !== undefined && PLAIN.test(name)) {
    // Fast path for names without escapes: their labels are their octets, and none is 0x00
    // or 0x01, so the key is the labels joined with 0x00 (every lookup builds several keys).
    const top = origin === '.' ? 0 : origin.split('.').length;
    const all = name === '.' ? [] : name.split('.');
    const below = all.slice(0, all.length - top);
    return Buffer.from(`${prefix}${terminated(below.reverse())}`, 'latin1');
  }
  const below = parseLabels(name);
  const top = parseLabels(origin);
  below.length -= top.length;
  return Buffer.concat([encodeLabels(top.reverse()), Buffer.of(0), encodeLabels(below.reverse())]);
}

/** Canonical names whose labels need no escape: lowercase letters, digits, `-`, `_`, `*`. */
const PLAIN = /^(?:\.|[0-9a-z_*-]+(?:\.[0-9a-z_*-]+)*)$/;

/** The key prefix of a plain origin as latin1 text, or undefined when the origin needs escapes. */
function plainPrefix(origin: string): string | undefined {
  if (!PLAIN.test(origin)) return undefined;
  const top = origin === '.' ? [] : origin.split('.');
  return `${terminated(top.reverse())}\u0000`;
}

function terminated(labels: readonly string[]): string {
  let out = '';
  for (const label of labels) out += `${label}\u0000`;
  return out;
}

/**
 * The key range `[start, end)` of the nodes strictly below a node key (or, for the zone prefix,
 * of every node of the zone but the apex).
 */
export function belowRange(key: Buffer): { start: Buffer; end: Buffer } {
  return {
    start: Buffer.concat([key, Buffer.of(1)]),
    end: Buffer.concat([key.subarray(0, key.length - 1), Buffer.of(1)]),
  };
}

/** The key range `[start, end)` of every node of a zone, apex included. */
export function zoneRange(origin: string): { start: Buffer; end: Buffer } {
  const prefix = zonePrefix(origin);
  return {
    start: prefix,
    end: Buffer.concat([prefix.subarray(0, prefix.length - 1), Buffer.of(1)]),
  };
}

/** The owner name of a node key of zone `origin` (canonical, as `formatLabels` writes it). */
export function nodeName(origin: string, key: Uint8Array): string {
  const prefix = zonePrefix(origin);
  const labels = decodeLabels(key.subarray(prefix.length));
  return formatLabels([...labels.reverse(), ...parseLabels(origin)]);
}

/**
 * Flag on a node's RRset count: each RRset's signatures are preceded by their count (a node some
 * of whose RRsets have several RRSIGs, during a key rollover). Without it, each RRset has one
 * length-prefixed RRSIG or a zero length, as nodes were written before zones had several keys,
 * so those nodes read unchanged and a node with at most one RRSIG per RRset is written as before.
 */
const SEVERAL_SIGNATURES = 0x8000;

/** Encodes a node's RRsets. */
export function encodeNode(node: StoredNode): Buffer {
  const several = [...node.values()].some((rrset) => rrset.signatures.length > 1);
  const parts: Buffer[] = [u16(node.size | (several ? SEVERAL_SIGNATURES : 0))];
  const types = [...node.keys()].sort((a, b) => typeToCode(a) - typeToCode(b));
  for (const type of types) {
    const rrset = node.get(type) as StoredRRset;
    const first = rrset.records[0] as ResourceRecord;
    parts.push(u16(typeToCode(type)), u32(first.ttl), u16(rrset.records.length));
    for (const rr of rrset.records) parts.push(lengthPrefixed(encodeRdata(rr)));
    if (several) {
      parts.push(u16(rrset.signatures.length));
      for (const sig of rrset.signatures) parts.push(lengthPrefixed(encodeRdata(sig)));
    } else {
      const sig = rrset.signatures[0];
      parts.push(sig === undefined ? u16(0) : lengthPrefixed(encodeRdata(sig)));
    }
  }
  return Buffer.concat(parts);
}

/**
 * Whether the node encoded as `value` holds an RRset of the type whose code is `code`, read from
 * its RRset headers without decoding a record. False for a value that does not parse.
 */
export function nodeHolds(value: Uint8Array, code: number): boolean {
  const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (bytes.length < 2) return false;
  const head = bytes.readUInt16BE(0);
  const several = (head & SEVERAL_SIGNATURES) !== 0;
  let pos = 2;
  const skipLengthPrefixed = (): boolean => {
    if (pos + 2 > bytes.length) return false;
    pos += 2 + bytes.readUInt16BE(pos);
    return pos <= bytes.length;
  };
  for (let i = 0; i < (head & ~SEVERAL_SIGNATURES); i++) {
    // type u16 · ttl u32 · n u16
    if (pos + 8 > bytes.length) return false;
    if (bytes.readUInt16BE(pos) === code) return true;
    const n = bytes.readUInt16BE(pos + 6);
    pos += 8;
    for (let j = 0; j < n; j++) if (!skipLengthPrefixed()) return false;
    if (several) {
      if (pos + 2 > bytes.length) return false;
      const sigs = bytes.readUInt16BE(pos);
      pos += 2;
      for (let j = 0; j < sigs; j++) if (!skipLengthPrefixed()) return false;
    } else if (!skipLengthPrefixed()) return false;
  }
  return false;
}

/** Decodes a node's RRsets; `name` is the owner. Throws `StoreError` (`ERR_STORE_CORRUPT`). */
export function decodeNode(name: string, value: Uint8Array): StoredNode {
  const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  let pos = 0;
  const take = (n: number): Buffer => {
    if (pos + n > bytes.length) throw corrupt(name);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const readU16 = (): number => take(2).readUInt16BE(0);
  try {
    const node = new Map<RRType, StoredRRset>();
    const head = readU16();
    const several = (head & SEVERAL_SIGNATURES) !== 0;
    const count = head & ~SEVERAL_SIGNATURES;
    // Each record keeps its RDATA octets (`keepStoredRdata`): a response copies them.
    const readSignature = (length: number): RecordOf<'RRSIG'> => {
      const rdata = Uint8Array.from(take(length));
      const data = decodeRdata('RRSIG', rdata) as RecordOf<'RRSIG'>['data'];
      return keepStoredRdata({ name, type: 'RRSIG', class: 'IN', ttl, data }, rdata);
    };
    let ttl = 0;
    for (let i = 0; i < count; i++) {
      const type = codeToType(readU16());
      ttl = take(4).readUInt32BE(0);
      const n = readU16();
      const records: ResourceRecord[] = [];
      for (let j = 0; j < n; j++) {
        const rdata = Uint8Array.from(take(readU16()));
        const data = decodeRdata(type, rdata);
        // decodeRdata returns the data of `type`; the union cannot follow a runtime type.
        records.push(
          keepStoredRdata({ name, type, class: 'IN', ttl, data } as ResourceRecord, rdata),
        );
      }
      const signatures: RecordOf<'RRSIG'>[] = [];
      if (several) {
        const n = readU16();
        for (let j = 0; j < n; j++) signatures.push(readSignature(readU16()));
      } else {
        const sigLength = readU16();
        if (sigLength > 0) signatures.push(readSignature(sigLength));
      }
      if (records.length === 0) throw corrupt(name);
      node.set(type, { records, signatures });
    }
    if (pos !== bytes.length) throw corrupt(name);
    return node;
  } catch (error) {
    if (error instanceof StoreError) throw error;
    throw new StoreError('ERR_STORE_CORRUPT', `the stored node ${name} does not decode`, {
      cause: error,
    });
  }
}

function encodeLabels(labels: readonly Uint8Array[]): Buffer {
  const out: number[] = [];
  for (const label of labels) {
    for (const b of label) {
      if (b === 0) out.push(1, 1);
      else if (b === 1) out.push(1, 2);
      else out.push(b);
    }
    out.push(0);
  }
  return Buffer.from(out);
}

function decodeLabels(bytes: Uint8Array): Uint8Array[] {
  const labels: Uint8Array[] = [];
  let current: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b === 0) {
      labels.push(Uint8Array.from(current));
      current = [];
    } else if (b === 1) {
      current.push((bytes[++i] as number) - 1);
    } else {
      current.push(b);
    }
  }
  return labels;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n, 0);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

function lengthPrefixed(bytes: Uint8Array): Buffer {
  return Buffer.concat([u16(bytes.length), bytes]);
}

function corrupt(name: string): StoreError {
  return new StoreError('ERR_STORE_CORRUPT', `the stored node ${name} is truncated or malformed`);
}
