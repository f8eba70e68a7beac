import { compareNames, record, type RecordOf, type ResourceRecord } from '@mimi-discovery/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  belowRange,
  decodeNode,
  encodeNode,
  nodeKey,
  nodeName,
  zoneRange,
} from '../src/store/node-codec.js';
import { StoreError } from '../src/store/store-error.js';
import type { StoredNode } from '../src/zone/zone-signer.js';

const ORIGIN = '4.4.e164.mimi.arpa';

/** Labels with the octets that need escaping in keys (0x00, 0x01) and in names (`.`, `\`). */
const label = fc.uint8Array({ minLength: 1, maxLength: 4 }).map((bytes) =>
  [...bytes]
    .map((b) => [0x00, 0x01, 0x2e, 0x5c, 0x61, 0x62, 0xff][b % 7] as number)
    .map((b) =>
      b === 0x61 || b === 0x62 ? String.fromCharCode(b) : `\\${String(b).padStart(3, '0')}`,
    )
    .join(''),
);
const relative = fc.array(label, { minLength: 0, maxLength: 4 });
const nameIn = (labels: string[]): string => [...labels, ORIGIN].join('.');

describe('node keys', () => {
  it('order names canonically (RFC 4034 §6.1) and map back to the same name', () => {
    fc.assert(
      fc.property(relative, relative, (a, b) => {
        const [x, y] = [nameIn(a), nameIn(b)];
        const byKey = Math.sign(Buffer.compare(nodeKey(ORIGIN, x), nodeKey(ORIGIN, y)));
        expect(byKey).toBe(Math.sign(compareNames(x, y)));
        expect(compareNames(nodeName(ORIGIN, nodeKey(ORIGIN, x)), x)).toBe(0);
      }),
    );
  });

  it('put exactly the descendants of a name in its range, and the zone in its own', () => {
    fc.assert(
      fc.property(relative, relative, (a, b) => {
        const [x, y] = [nameIn(a), nameIn(b)];
        const key = nodeKey(ORIGIN, y);
        const { start, end } = belowRange(nodeKey(ORIGIN, x));
        const inside = Buffer.compare(key, start) >= 0 && Buffer.compare(key, end) < 0;
        const descendant =
          b.length > a.length && compareNames(nameIn(b.slice(b.length - a.length)), x) === 0;
        expect(inside).toBe(descendant);
        const zone = zoneRange(ORIGIN);
        expect(Buffer.compare(key, zone.start) >= 0 && Buffer.compare(key, zone.end) < 0).toBe(
          true,
        );
      }),
    );
  });

  it('keep a zone apart from the zones above and below it', () => {
    const child = `7.${ORIGIN}`;
    const parent = zoneRange(ORIGIN);
    const inParent = (key: Buffer): boolean =>
      Buffer.compare(key, parent.start) >= 0 && Buffer.compare(key, parent.end) < 0;
    expect(inParent(nodeKey(child, child))).toBe(false);
    expect(inParent(nodeKey(child, `1.${child}`))).toBe(false);
    expect(inParent(nodeKey(ORIGIN, `1.${child}`))).toBe(true);
    expect(inParent(nodeKey('e164.mimi.arpa', `5.e164.mimi.arpa`))).toBe(false);
  });
});

describe('node values', () => {
  it('round-trip RRsets with and without signatures', () => {
    const name = `8.${ORIGIN}`;
    const rrsig = record(
      name,
      'RRSIG',
      {
        typeCovered: 'MAP',
        algorithm: 15,
        labels: 6,
        originalTtl: 300,
        expiration: 1768435200,
        inception: 1767222000,
        keyTag: 53568,
        signerName: ORIGIN,
        signature: new Uint8Array(64).fill(5),
      },
      300,
    );
    const node: StoredNode = new Map([
      [
        'MAP',
        {
          records: [
            record(name, 'MAP', Uint8Array.of(1, 2), 300),
            record(name, 'MAP', Uint8Array.of(3), 300),
          ],
          signatures: [rrsig],
        },
      ],
      ['A', { records: [record(name, 'A', '192.0.2.1', 60)] as ResourceRecord[], signatures: [] }],
    ]);
    const decoded = decodeNode(name, encodeNode(node));
    expect([...decoded.keys()]).toEqual(['A', 'MAP']);
    expect(decoded.get('MAP')).toEqual(node.get('MAP'));
    expect(decoded.get('A')).toEqual(node.get('A'));
  });

  it('round-trips a node whose RRsets carry several RRSIGs (a key rollover), and keeps the one-RRSIG layout otherwise', () => {
    const name = `x.${ORIGIN}`;
    const sig = (keyTag: number): RecordOf<'RRSIG'> =>
      record(
        name,
        'RRSIG',
        {
          typeCovered: 'A',
          algorithm: 15,
          labels: 6,
          originalTtl: 60,
          expiration: 1768435200,
          inception: 1767222000,
          keyTag,
          signerName: ORIGIN,
          signature: new Uint8Array(64).fill(keyTag & 0xff),
        },
        60,
      );
    const records = [record(name, 'A', '192.0.2.1', 60)] as ResourceRecord[];
    const one: StoredNode = new Map([['A', { records, signatures: [sig(1)] }]]);
    const two: StoredNode = new Map([['A', { records, signatures: [sig(1), sig(2)] }]]);
    expect(decodeNode(name, encodeNode(two)).get('A')).toEqual(two.get('A'));
    expect(decodeNode(name, encodeNode(one)).get('A')).toEqual(one.get('A'));
    // A node as written before zones had several keys: count, then one length-prefixed RRSIG.
    expect(encodeNode(one).readUInt16BE(0)).toBe(1);
    expect(encodeNode(two).readUInt16BE(0)).toBe(0x8001);
  });

  it('reports a damaged value as ERR_STORE_CORRUPT', () => {
    const node: StoredNode = new Map([
      [
        'A',
        {
          records: [record(`x.${ORIGIN}`, 'A', '192.0.2.1', 60)] as ResourceRecord[],
          signatures: [],
        },
      ],
    ]);
    const bytes = encodeNode(node);
    for (const damaged of [
      bytes.subarray(0, bytes.length - 1),
      Buffer.concat([bytes, Buffer.of(0)]),
    ]) {
      expect(() => decodeNode(`x.${ORIGIN}`, damaged)).toThrow(StoreError);
    }
  });
});
