import type {
  MaprefRequestRecord,
  RemovalRecord,
  ReplayReader,
  ReplayRecord,
  RevocationRecord,
} from './mapping-ops.js';
import { StoreError } from './store-error.js';

/**
 * How anti-replay records (`mapping-ops.ts`) are kept as keys and values of the LMDB `replay`
 * table, and the expiry index in the same table that lets pruning find expired records without
 * reading the others:
 *
 * | key                                      | value                        |
 * | ---------------------------------------- | ---------------------------- |
 * | `01` ‖ recipient key (32) ‖ CSI (UTF-8)  | until (8) ‖ seq (8)          |
 * | `02` ‖ CSI (UTF-8)                       | until (8) ‖ before (8)       |
 * | `03` ‖ MapRef request signature (64)     | until (8)                    |
 * | `00` ‖ until (8) ‖ the record's key      | `00` (expiry index entry)    |
 *
 * Numbers are unsigned big-endian (every time and `seq` is below 2^53). Worked example: a
 * removal of `tel:+442079460018` by key K up to seq 5, kept until 1830297900, is the key
 * `01 ‖ K ‖ "tel:+442079460018"` with value `00 00 00 00 6d 18 21 2c ‖ 00 … 05`, and the index
 * key `00 ‖ 00 00 00 00 6d 18 21 2c ‖ 01 ‖ K ‖ "tel:…"`. Index keys sort by time, so the
 * records expired at `now` are the index range below `00 ‖ now`.
 */

const INDEX = 0x00;
const REMOVAL = 0x01;
const REVOCATION = 0x02;
const REQUEST = 0x03;
const KEY_OCTETS = 32;
const SIGNATURE_OCTETS = 64;
const U64 = 8;

/** The table key of a removal record. */
export function removalKey(csi: string, key: Uint8Array): Buffer {
  return Buffer.concat([Buffer.of(REMOVAL), Buffer.from(key), Buffer.from(csi, 'utf8')]);
}

/** The table key of a revocation record. */
export function revocationKey(csi: string): Buffer {
  return Buffer.concat([Buffer.of(REVOCATION), Buffer.from(csi, 'utf8')]);
}

/** The table key of a MapRef request record. */
export function requestKey(id: Uint8Array): Buffer {
  return Buffer.concat([Buffer.of(REQUEST), Buffer.from(id)]);
}

/** The table key of any record. */
export function replayKey(record: ReplayRecord): Buffer {
  switch (record.kind) {
    case 'removal':
      return removalKey(record.csi, record.key);
    case 'revocation':
      return revocationKey(record.csi);
    case 'mapref-request':
      return requestKey(record.id);
  }
}

/** A {@link ReplayReader} over a table read by key (`get` returns the decoded record). */
export function replayReader(get: (key: Buffer) => ReplayRecord | undefined): ReplayReader {
  return {
    removal: (csi, key) => narrow(get(removalKey(csi, key)), 'removal'),
    revocation: (csi) => narrow(get(revocationKey(csi)), 'revocation'),
    request: (id) => narrow(get(requestKey(id)), 'mapref-request'),
  };
}

function narrow<K extends ReplayRecord['kind']>(
  record: ReplayRecord | undefined,
  kind: K,
): Extract<ReplayRecord, { kind: K }> | undefined {
  return record?.kind === kind ? (record as Extract<ReplayRecord, { kind: K }>) : undefined;
}

/** The stored value of a record. */
export function encodeReplayValue(record: ReplayRecord): Buffer {
  switch (record.kind) {
    case 'removal':
      return Buffer.concat([u64(record.until), u64(record.seq)]);
    case 'revocation':
      return Buffer.concat([u64(record.until), u64(record.before)]);
    case 'mapref-request':
      return u64(record.until);
  }
}

/** The record stored under `key` with `value`; throws `ERR_STORE_CORRUPT` when malformed. */
export function decodeReplayRecord(key: Uint8Array, value: Uint8Array): ReplayRecord {
  const k = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  const v = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  switch (k[0]) {
    case REMOVAL: {
      if (k.length <= 1 + KEY_OCTETS || v.length !== 2 * U64) break;
      const record: RemovalRecord = {
        kind: 'removal',
        csi: k.toString('utf8', 1 + KEY_OCTETS),
        key: Uint8Array.from(k.subarray(1, 1 + KEY_OCTETS)),
        seq: readU64(v, U64),
        until: readU64(v, 0),
      };
      return record;
    }
    case REVOCATION: {
      if (k.length <= 1 || v.length !== 2 * U64) break;
      const record: RevocationRecord = {
        kind: 'revocation',
        csi: k.toString('utf8', 1),
        before: readU64(v, U64),
        until: readU64(v, 0),
      };
      return record;
    }
    case REQUEST: {
      if (k.length !== 1 + SIGNATURE_OCTETS || v.length !== U64) break;
      const record: MaprefRequestRecord = {
        kind: 'mapref-request',
        id: Uint8Array.from(k.subarray(1)),
        until: readU64(v, 0),
      };
      return record;
    }
  }
  throw new StoreError('ERR_STORE_CORRUPT', `an anti-replay record does not decode`);
}

/** The `until` of a stored value (its first 8 octets). */
export function untilOf(value: Uint8Array): number {
  if (value.length < U64) throw new StoreError('ERR_STORE_CORRUPT', 'a short anti-replay value');
  return readU64(Buffer.from(value.buffer, value.byteOffset, value.byteLength), 0);
}

/** The expiry index key of the record stored under `key` until `until`. */
export function expiryKey(until: number, key: Uint8Array): Buffer {
  return Buffer.concat([Buffer.of(INDEX), u64(until), Buffer.from(key)]);
}

/** The record key an expiry index key points at. */
export function recordKeyOfExpiry(indexKey: Uint8Array): Buffer {
  return Buffer.from(indexKey.subarray(1 + U64));
}

/** The index range of records whose `until` is below `now` (expired: `now > until`). */
export function expiredRange(now: number): { start: Buffer; end: Buffer } {
  return { start: Buffer.of(INDEX), end: Buffer.concat([Buffer.of(INDEX), u64(now)]) };
}

/** The range of the records themselves (the index excluded). */
export const RECORDS_RANGE: Readonly<{ start: Buffer }> = Object.freeze({
  start: Buffer.of(REMOVAL),
});

/** The value of an index entry. */
export const EXPIRY_VALUE: Buffer = Buffer.of(0);

function u64(n: number): Buffer {
  const out = Buffer.alloc(U64);
  out.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(n))));
  return out;
}

function readU64(b: Buffer, at: number): number {
  return Number(b.readBigUInt64BE(at));
}
