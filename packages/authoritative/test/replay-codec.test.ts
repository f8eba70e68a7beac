import { describe, expect, it } from 'vitest';
import type { ReplayRecord } from '../src/store/mapping-ops.js';
import {
  decodeReplayRecord,
  encodeReplayValue,
  expiredRange,
  expiryKey,
  recordKeyOfExpiry,
  replayKey,
} from '../src/store/replay-codec.js';
import { StoreError } from '../src/store/store-error.js';

const K = new Uint8Array(32).fill(0xab);
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

describe('anti-replay records in the LMDB replay table', () => {
  it('encodes the worked example of the module comment', () => {
    const record: ReplayRecord = {
      kind: 'removal',
      csi: 'tel:+442079460018',
      key: K,
      seq: 5,
      until: 1830297900,
    };
    const key = replayKey(record);
    expect(hex(key)).toBe(`01${hex(K)}${Buffer.from('tel:+442079460018').toString('hex')}`);
    expect(hex(encodeReplayValue(record))).toBe('000000006d18212c0000000000000005');
    expect(hex(expiryKey(record.until, key))).toBe(`00000000006d18212c${hex(key)}`);
    expect(recordKeyOfExpiry(expiryKey(record.until, key))).toEqual(key);
  });

  it.each<ReplayRecord>([
    { kind: 'removal', csi: 'mailto:alice@example.com', key: K, seq: 2 ** 53 - 1, until: 1 },
    { kind: 'revocation', csi: 'tel:+442079460018', before: 1767225600, until: 1830297600 },
    { kind: 'mapref-request', id: new Uint8Array(64).fill(7), until: 1767225900 },
  ])('reads back a $kind record as written', (record) => {
    expect(decodeReplayRecord(replayKey(record), encodeReplayValue(record))).toEqual(record);
  });

  it('puts exactly the records expired at now in the expired range (kept while now <= until)', () => {
    const key = replayKey({ kind: 'revocation', csi: 'tel:+1', before: 0, until: 0 });
    const { start, end } = expiredRange(100);
    const inRange = (until: number): boolean => {
      const k = expiryKey(until, key);
      return Buffer.compare(k, start) >= 0 && Buffer.compare(k, end) < 0;
    };
    expect([inRange(0), inRange(99), inRange(100), inRange(101)]).toEqual([
      true,
      true,
      false,
      false,
    ]);
  });

  it('refuses stored bytes that are not a record', () => {
    for (const [key, value] of [
      [Buffer.of(1, 2, 3), Buffer.alloc(16)],
      [Buffer.of(3, 1), Buffer.alloc(8)],
      [Buffer.of(9), Buffer.alloc(8)],
      [replayKey({ kind: 'revocation', csi: 'tel:+1', before: 0, until: 0 }), Buffer.alloc(3)],
    ] as const) {
      expect(() => decodeReplayRecord(key, value)).toThrow(StoreError);
    }
  });
});
