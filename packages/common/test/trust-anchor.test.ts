import { describe, expect, it } from 'vitest';
import {
  createTrustAnchor,
  createZoneKey,
  DnssecError,
  formatBindTrustAnchors,
  formatTrustAnchor,
  parseTrustAnchor,
  type TrustAnchor,
} from '../src/index.js';

const b64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));
const hex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));

// RFC 8080 §6.1, first key.
const RFC8080: TrustAnchor = {
  zone: 'example.com',
  ds: [
    {
      keyTag: 3613,
      algorithm: 15,
      digestType: 2,
      digest: hex('3aa5ab37efce57f737fc1627013fee07bdf241bd10f3b1964ab55c78e79a304b'),
    },
  ],
  dnskeys: [
    {
      flags: 257,
      protocol: 3,
      algorithm: 15,
      publicKey: b64('l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4='),
    },
  ],
};

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('trust anchors', () => {
  it('derives the DS from the DNSKEY', () => {
    expect(createTrustAnchor('Example.COM.', RFC8080.dnskeys)).toEqual(RFC8080);
  });

  it('writes master-file lines, DS first', () => {
    expect(formatTrustAnchor(RFC8080)).toBe(
      'example.com. 3600 IN DS 3613 15 2 3aa5ab37efce57f737fc1627013fee07bdf241bd10f3b1964ab55c78e79a304b\n' +
        'example.com. 3600 IN DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=\n',
    );
    expect(formatTrustAnchor(RFC8080, { ttl: 0 })).toMatch(/^example\.com\. 0 IN DS /);
  });

  it('writes a BIND trust-anchors statement for delv -a', () => {
    expect(formatBindTrustAnchors(RFC8080)).toBe(
      'trust-anchors {\n' +
        '  "example.com." static-ds 3613 15 2 "3aa5ab37efce57f737fc1627013fee07bdf241bd10f3b1964ab55c78e79a304b";\n' +
        '  "example.com." static-key 257 3 15 "l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=";\n' +
        '};\n',
    );
    const root = createTrustAnchor('.', [createZoneKey('.', { seed: new Uint8Array(32) }).dnskey]);
    expect(formatBindTrustAnchors([root, { ...RFC8080, ds: [] }])).toMatch(
      /^trust-anchors \{\n {2}"\." static-ds \d+ 15 2 "[0-9a-f]{64}";\n {2}"\." static-key 257 3 15 "[^"]+";\n {2}"example\.com\." static-key /,
    );
  });

  it('reads back what it writes', () => {
    expect(parseTrustAnchor(formatTrustAnchor(RFC8080))).toEqual(RFC8080);
  });

  it('reads the RFC 8080 records as printed, with parentheses over several lines', () => {
    const text = [
      '; RFC 8080 §6.1',
      'example.com. 3600 IN DNSKEY 257 3 15 (',
      '             l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4= )',
      '',
      'example.com. 3600 IN DS 3613 15 2 (',
      '             3aa5ab37efce57f737fc1627013fee07bdf241bd10f3b1964ab55c78',
      '             e79a304b )',
    ].join('\n');
    expect(parseTrustAnchor(text)).toEqual(RFC8080);
  });

  it('reads Unbound files: comments, no TTL, class before TTL, owner carried over', () => {
    const text = [
      '; autotrust trust anchor file',
      ';;id: example.com. 1',
      'example.com.\tIN\tDS 3613 ED25519 2 3AA5AB37EFCE57F737FC1627013FEE07BDF241BD10F3B1964AB55C78E79A304B',
      '\tIN 172800 DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4= ;{id = 3613 (ksk), size = 256b} ;;state=2 [  VALID  ]',
    ].join('\r\n');
    expect(parseTrustAnchor(text)).toEqual(RFC8080);
  });

  it('reads owner names without the trailing dot, in any case', () => {
    expect(
      parseTrustAnchor('EXAMPLE.com DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=')
        .zone,
    ).toBe('example.com');
  });

  it.each([
    ['a DS with a short digest', 'example. DS 1 15 2 abcd', 1, /32 octets/],
    ['a DS digest that is not hex', 'example. DS 1 15 2 xyz', 1, /hexadecimal/],
    ['a key tag out of range', 'example. DS 70000 15 2 00', 1, /key tag/],
    ['a missing field', 'example. DS 1 15', 1, /missing digest type/],
    [
      'a record type other than DS and DNSKEY',
      '\n\nexample. 3600 IN A 192.0.2.1',
      3,
      /expected DS or DNSKEY, found A/,
    ],
    ['a class other than IN', 'example. CH DS 1 15 2 00', 1, /class CH/],
    ['a DNSKEY protocol other than 3', 'example. DNSKEY 257 2 15 AAAA', 1, /protocol must be 3/],
    ['a DNSKEY that is not a zone key', 'example. DNSKEY 1 3 15 AAAA', 1, /Zone Key/],
    ['a DNSKEY key that is not base64', 'example. DNSKEY 257 3 15 AA*A', 1, /base64/],
    ['an Ed25519 key of the wrong size', 'example. DNSKEY 257 3 15 AAAA', 1, /32 octets/],
    ['an unknown algorithm mnemonic', 'example. DNSKEY 257 3 FOO AAAA', 1, /algorithm/],
    ['records of two zones', 'a. DS 1 8 9 00\n\nb. DS 1 8 9 00', 3, /one zone per file/],
    ['a record without an owner', '  DS 1 8 1 00', 1, /without an owner/],
    ['a directive', '$ORIGIN example.', 1, /directive/],
    ['@ without an origin', '@ DS 1 8 1 00', 1, /@/],
    ['a bad owner name', 'a..b. DS 1 8 1 00', 1, /bad owner name/],
    ['an unclosed parenthesis', '; c\nexample. DNSKEY 257 3 15 (\n AAAA', 2, /never closed/],
    ['a stray closing parenthesis', 'example. DS 1 8 1 00\n)', 2, /unbalanced/],
  ])('rejects %s, naming the line', (_what, text, line, message) => {
    const error = errorOf(() => parseTrustAnchor(text));
    expect(error).toBeInstanceOf(DnssecError);
    expect((error as DnssecError).code).toBe('ERR_TRUST_ANCHOR_SYNTAX');
    expect((error as DnssecError).message).toContain(`line ${line}:`);
    expect((error as DnssecError).message).toMatch(message);
  });

  it('rejects text without any record', () => {
    const error = errorOf(() => parseTrustAnchor('; nothing\n\n'));
    expect(error).toBeInstanceOf(DnssecError);
    expect((error as DnssecError).code).toBe('ERR_TRUST_ANCHOR_EMPTY');
  });
});
