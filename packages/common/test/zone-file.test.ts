import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createZoneKey,
  decodeBase32Hex,
  formatRecord,
  formatZone,
  MAX_ZONE_FILE_LINE_CHARS,
  MAX_ZONE_FILE_RECORDS,
  parseZoneFile,
  readZoneFile,
  readZoneFileChunks,
  createZoneFileReader,
  record,
  signZone,
  ZoneFileError,
  type RecordOf,
  type ResourceRecord,
  type ZoneFileEntry,
  type ZoneFileErrorCode,
  type ZoneFileReaderOptions,
} from '../src/index.js';

const rr = <T extends ResourceRecord['type']>(
  name: string,
  type: T,
  data: RecordOf<T>['data'],
  ttl = 3600,
): ResourceRecord => record(name, type, data, ttl);

const hex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));
const b64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Records in one order whatever order they were read or written in. */
function sorted(records: readonly ResourceRecord[]): ResourceRecord[] {
  return [...records].sort((a, b) => (formatRecord(a) < formatRecord(b) ? -1 : 1));
}

function errorOf(fn: () => unknown): ZoneFileError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ZoneFileError) return error;
    throw error;
  }
  throw new Error('no error thrown');
}

/**
 * What a {@link createZoneFileReader} reads from `text` cut at `cuts` (ascending offsets), each
 * piece pushed in turn, then the end.
 */
function readInPieces(
  text: string,
  cuts: readonly number[],
  options: ZoneFileReaderOptions = {},
): ZoneFileEntry[] {
  const reader = createZoneFileReader(options);
  const out: ZoneFileEntry[] = [];
  let from = 0;
  for (const cut of [...cuts, text.length]) {
    out.push(...reader.push(text.slice(from, cut)));
    from = cut;
  }
  out.push(...reader.end());
  return out;
}

/** Every offset inside `text`: pieces of one character. */
const everyCharacter = (text: string): number[] =>
  Array.from({ length: Math.max(0, text.length - 1) }, (_, i) => i + 1);

const soa = {
  mname: 'ns1.example',
  rname: 'host\\.master.example',
  serial: 2026010101,
  refresh: 7200,
  retry: 900,
  expire: 1209600,
  minimum: 300,
};

describe('parseZoneFile round trip', () => {
  // A zone with a record of every type of the model, names that need escapes, and TXT and SVCB
  // values that need quoting, signed with an NSEC3 chain (RRSIG, NSEC3, NSEC3PARAM, DNSKEY).
  const origin = 'example';
  const key = createZoneKey(origin, { seed: new Uint8Array(32).fill(7) });
  const zone: ResourceRecord[] = [
    rr('example', 'SOA', soa),
    rr('example', 'NS', 'ns1.example'),
    rr('example', 'AUTHKEY', {
      role: 'prover',
      algorithm: 15,
      notAfter: 1_800_000_000,
      publicKey: new Uint8Array(32).fill(0xee),
    }),
    rr('ns1.example', 'A', '192.0.2.1'),
    rr('ns1.example', 'AAAA', '2001:db8::1'),
    rr('_dns.ns1.example', 'SVCB', {
      priority: 1,
      target: 'ns1.example',
      params: { alpn: ['h2'], port: 8443, dohpath: '/dns-query{?dns}' },
    }),
    rr('s.example', 'SVCB', {
      priority: 2,
      target: '.',
      params: {
        mandatory: ['alpn', 'port'],
        alpn: ['h3', 'odd,one\\'],
        noDefaultAlpn: true,
        port: 8443,
        ipv4hint: ['192.0.2.1', '192.0.2.2'],
        ech: Uint8Array.of(1, 2, 3),
        ipv6hint: ['2001:db8::1', '2001:db8::2'],
        dohpath: '/q{?dns}/é',
        unknown: [
          { key: 9, value: new Uint8Array(0) },
          { key: 65000, value: text('a b;"c"') },
        ],
      },
    }),
    rr('alias.example', 'SVCB', { priority: 0, target: 'ns1.example', params: {} }),
    rr('_dns.resolver.example', 'SVCB', {
      priority: 1,
      target: 'resolver.example',
      params: { mandatory: ['ohttp'], alpn: ['h2'], dohpath: '/dns-query{?dns}', ohttp: true },
    }),
    rr('resolver.example', 'KEYCONF', {
      kind: 'ohttp',
      config: hex('01002000' + '11'.repeat(32) + '000400010001'),
      notBefore: 1_767_225_600,
      notAfter: 1_767_225_600 + 30 * 86_400,
    }),
    rr('www.example', 'CNAME', 'ns1.example'),
    rr('Mixed.Case.example', 'TXT', [
      text('a "quoted" \\ text; (not a comment)'),
      Uint8Array.of(0, 0x7f, 0xff, 0x20),
      new Uint8Array(0),
    ]),
    rr('odd\\.label\\032with\\000octets.example', 'TXT', [text('x')]),
    rr('8.1.0.0.6.4.9.7.0.2.4.4.example', 'MAP', hex('a16176')),
    rr('8.1.0.0.6.4.9.7.0.2.4.4.example', 'MAPREF', 'dp.MSP.example.com'),
    rr('sub.example', 'NS', 'ns.sub.example'),
    rr('sub.example', 'DS', {
      keyTag: 3613,
      algorithm: 15,
      digestType: 2,
      digest: hex('3aa5ab37efce57f737fc1627013fee07bdf241bd10f3b1964ab55c78e79a304b'),
    }),
    rr('ns.sub.example', 'A', '192.0.2.2'),
    { name: 'x.example', type: 'TYPE999', class: 'IN', ttl: 60, data: Uint8Array.of(0xff, 0) },
    { name: 'x.example', type: 'TYPE998', class: 'IN', ttl: 60, data: new Uint8Array(0) },
  ];
  const signed = signZone(origin, zone, key, {
    inception: 1_767_225_600,
    expiration: 1_767_225_600 + 14 * 86_400,
    nsec3: true,
  });
  // signZone makes no NSEC (our servers deny online); add one as compact denial would.
  const records: ResourceRecord[] = [
    ...signed,
    rr('gone.example', 'NSEC', {
      nextName: '\\000.gone.example',
      types: ['RRSIG', 'NSEC', 'TYPE128'],
    }),
  ];

  it('covers every type of the model', () => {
    const types = new Set(records.map((r) => r.type));
    for (const type of [
      'SOA',
      'NS',
      'A',
      'AAAA',
      'CNAME',
      'TXT',
      'DS',
      'DNSKEY',
      'RRSIG',
      'NSEC',
      'NSEC3',
      'NSEC3PARAM',
      'SVCB',
      'MAP',
      'MAPREF',
      'AUTHKEY',
      'KEYCONF',
      'TYPE999',
    ] as const) {
      expect(types).toContain(type);
    }
  });

  it('reads back what formatZone writes, record for record', () => {
    const written = formatZone(origin, records);
    expect(sorted(parseZoneFile(written))).toEqual(sorted(records));
  });

  it('writes again exactly what it read', () => {
    const written = formatZone(origin, records);
    expect(formatZone(origin, parseZoneFile(written))).toBe(written);
  });

  it('reads the same records from the text in pieces of one character', () => {
    const written = formatZone(origin, records);
    expect(readInPieces(written, everyCharacter(written))).toEqual(readZoneFile(written));
  });

  it('reads the same records from the text in pieces of every size up to a few lines', () => {
    const written = formatZone(origin, records);
    const whole = readZoneFile(written);
    for (let size = 2; size <= 400; size += 7) {
      const cuts = Array.from(
        { length: Math.ceil(written.length / size) - 1 },
        (_, i) => (i + 1) * size,
      );
      expect(readInPieces(written, cuts), `pieces of ${size}`).toEqual(whole);
    }
  });
});

// In the style of the BIND 9 ARM and NSD examples: $ORIGIN, $TTL with units, `@`, relative
// names, omitted owners, class and TTL in either order, parentheses, comments.
const BIND_STYLE = String.raw`
; example.com. zone, BIND style
$ORIGIN example.com.
$TTL 1h
@       IN      SOA     ns1 hostmaster (
                        2024010101      ; serial
                        2h              ; refresh
                        15M             ; retry
                        2w              ; expire
                        5m )            ; negative caching TTL
        IN      NS      ns1
                NS      ns2.example.net.
        IN      DNSKEY  257 3 ED25519 (
                        l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4= ) ; RFC 8080 §6.1
ns1     IN      600     A       192.0.2.1
        600     IN      AAAA    2001:DB8:0:0::1
www             CNAME   ns1
_dns.ns1        SVCB    1 ns1 alpn="h2,h3" port=8443 dohpath=/dns-query{?dns}
txt     300     TXT     "v=spf1 -all" unquoted "with \"quotes\" ; and a semicolon" caf\195\169
w\032x\.y       CNAME   @ ; a label with a space and a dot
$ORIGIN 4.4.e164.example.com.
8.1.0.0.6.4.9.7.0.2     TYPE65400 \# 3 A16176
                TYPE65401 \# 16 026470036d7370076578616d706c6500 ; MAPREF dp.msp.example.
sub     NS      ns.sub
        DS      3613 15 2 ( 3AA5AB37EFCE57F737FC1627013FEE07
                            BDF241BD10F3B1964AB55C78E79A304B )
ns.sub  A       192.0.2.2
`;

const BIND_STYLE_RECORDS: ResourceRecord[] = [
  rr('example.com', 'SOA', {
    mname: 'ns1.example.com',
    rname: 'hostmaster.example.com',
    serial: 2024010101,
    refresh: 7200,
    retry: 900,
    expire: 1209600,
    minimum: 300,
  }),
  rr('example.com', 'NS', 'ns1.example.com'),
  rr('example.com', 'NS', 'ns2.example.net'),
  rr('example.com', 'DNSKEY', {
    flags: 257,
    protocol: 3,
    algorithm: 15,
    publicKey: b64('l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4='),
  }),
  rr('ns1.example.com', 'A', '192.0.2.1', 600),
  rr('ns1.example.com', 'AAAA', '2001:db8::1', 600),
  rr('www.example.com', 'CNAME', 'ns1.example.com'),
  rr('_dns.ns1.example.com', 'SVCB', {
    priority: 1,
    target: 'ns1.example.com',
    params: { alpn: ['h2', 'h3'], port: 8443, dohpath: '/dns-query{?dns}' },
  }),
  rr(
    'txt.example.com',
    'TXT',
    [text('v=spf1 -all'), text('unquoted'), text('with "quotes" ; and a semicolon'), text('café')],
    300,
  ),
  rr('w\\032x\\.y.example.com', 'CNAME', 'example.com'),
  rr('8.1.0.0.6.4.9.7.0.2.4.4.e164.example.com', 'MAP', hex('a16176')),
  rr('8.1.0.0.6.4.9.7.0.2.4.4.e164.example.com', 'MAPREF', 'dp.msp.example'),
  rr('sub.4.4.e164.example.com', 'NS', 'ns.sub.4.4.e164.example.com'),
  rr('sub.4.4.e164.example.com', 'DS', {
    keyTag: 3613,
    algorithm: 15,
    digestType: 2,
    digest: hex('3aa5ab37efce57f737fc1627013fee07bdf241bd10f3b1964ab55c78e79a304b'),
  }),
  rr('ns.sub.4.4.e164.example.com', 'A', '192.0.2.2'),
];

describe('parseZoneFile on a hand-written zone', () => {
  it('reads a zone written as for BIND or NSD', () => {
    expect(parseZoneFile(BIND_STYLE)).toEqual(BIND_STYLE_RECORDS);
  });

  const CHECKZONE = spawnSync('sh', ['-c', 'command -v named-compilezone']).status === 0;
  if (!CHECKZONE) {
    console.warn(
      'named-compilezone not installed (Debian package bind9-utils): skipping the cross-check with BIND',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'zone-file-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.skipIf(!CHECKZONE)('reads it as BIND reads it (named-compilezone, full names)', () => {
    const file = join(dir, 'example.com.zone');
    writeFileSync(file, BIND_STYLE);
    const result = spawnSync(
      'named-compilezone',
      ['-q', '-i', 'none', '-k', 'ignore', '-s', 'full', '-o', '-', 'example.com', file],
      { encoding: 'utf8' },
    );
    expect(result.status, result.stderr).toBe(0);
    // BIND writes its canonical text: absolute names, every TTL and class, uppercase hex,
    // quoted TXT and SvcParam values, key7 for dohpath in 9.18.
    expect(sorted(parseZoneFile(result.stdout))).toEqual(sorted(BIND_STYLE_RECORDS));
  });
});

describe('parseZoneFile fields', () => {
  const one = (line: string, options = {}): ResourceRecord => {
    const records = parseZoneFile(line, { origin: 'example', defaultTtl: 300, ...options });
    expect(records).toHaveLength(1);
    return records[0] as ResourceRecord;
  };

  it.each<[string, string, ResourceRecord]>([
    ['an absolute owner', 'a.example.net. A 192.0.2.1', rr('a.example.net', 'A', '192.0.2.1', 300)],
    ['a relative owner', 'a A 192.0.2.1', rr('a.example', 'A', '192.0.2.1', 300)],
    ['@', '@ A 192.0.2.1', rr('example', 'A', '192.0.2.1', 300)],
    ['the root', '. A 192.0.2.1', rr('.', 'A', '192.0.2.1', 300)],
    [
      '\\DDD escapes, normalised',
      '\\065\\.b A 192.0.2.1',
      rr('A\\.b.example', 'A', '192.0.2.1', 300),
    ],
    ['a TTL in units', 'a 1W2d3H4m5S A 192.0.2.1', rr('a.example', 'A', '192.0.2.1', 788645)],
    ['class before TTL', 'a IN 60 A 192.0.2.1', rr('a.example', 'A', '192.0.2.1', 60)],
    ['TTL before class', 'a 60 IN A 192.0.2.1', rr('a.example', 'A', '192.0.2.1', 60)],
    ['lowercase mnemonics', 'a 60 in a 192.0.2.1', rr('a.example', 'A', '192.0.2.1', 60)],
    ['CLASS1 and TYPE1', 'a 60 CLASS1 TYPE1 192.0.2.1', rr('a.example', 'A', '192.0.2.1', 60)],
    [
      'a known type in the generic form',
      'a 60 A \\# 4 C0000201',
      rr('a.example', 'A', '192.0.2.1', 60),
    ],
    [
      'another class',
      'a 60 CH TXT x',
      { name: 'a.example', type: 'TXT', class: 'CH', ttl: 60, data: [text('x')] },
    ],
    [
      'a class without a mnemonic',
      'a 60 CLASS42 TYPE999 \\# 0',
      { name: 'a.example', type: 'TYPE999', class: 'CLASS42', ttl: 60, data: new Uint8Array(0) },
    ],
    [
      'a type outside the model under its mnemonic, generic RDATA',
      'a 60 MX \\# 3 000a00',
      { name: 'a.example', type: 'TYPE15', class: 'IN', ttl: 60, data: hex('000a00') },
    ],
    [
      'generic hex split over tokens',
      'a 60 TYPE65400 \\# 3 a1 61 76',
      rr('a.example', 'MAP', hex('a16176'), 60),
    ],
    ['MAPREF by name', 'a 60 MAPREF dp.MSP', rr('a.example', 'MAPREF', 'dp.MSP.example', 60)],
    [
      'AUTHKEY in the generic form',
      `@ 60 AUTHKEY \\# 38 020f6b36ec80${'11'.repeat(32)}`,
      rr(
        'example',
        'AUTHKEY',
        {
          role: 'csip',
          algorithm: 15,
          notAfter: 0x6b36ec80,
          publicKey: new Uint8Array(32).fill(0x11),
        },
        60,
      ),
    ],
    [
      'RRSIG times in seconds',
      'a RRSIG A ED25519 2 300 1767225600 0 1 example. AAEC',
      rr(
        'a.example',
        'RRSIG',
        {
          typeCovered: 'A',
          algorithm: 15,
          labels: 2,
          originalTtl: 300,
          expiration: 1767225600,
          inception: 0,
          keyTag: 1,
          signerName: 'example',
          signature: Uint8Array.of(0, 1, 2),
        },
        300,
      ),
    ],
    [
      'RRSIG over a private type, times as dates, signature over lines',
      'a RRSIG TYPE65400 15 2 300 20260101000000 19700101000000 1 @ ( AA\n EC )',
      rr(
        'a.example',
        'RRSIG',
        {
          typeCovered: 'MAP',
          algorithm: 15,
          labels: 2,
          originalTtl: 300,
          expiration: 1767225600,
          inception: 0,
          keyTag: 1,
          signerName: 'example',
          signature: Uint8Array.of(0, 1, 2),
        },
        300,
      ),
    ],
    [
      'NSEC with NXNAME (RFC 9824) and unsorted types',
      'a NSEC \\000.a NXNAME NSEC RRSIG',
      rr(
        'a.example',
        'NSEC',
        { nextName: '\\000.a.example', types: ['RRSIG', 'NSEC', 'TYPE128'] },
        300,
      ),
    ],
    [
      'NSEC3 as RFC 5155 Appendix A prints it',
      '0p9mhaveqvm6t7vbl5lop2u3t2rp3tom NSEC3 1 1 12 aabbccdd 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR NS SOA MX RRSIG DNSKEY NSEC3PARAM',
      rr(
        '0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example',
        'NSEC3',
        {
          hashAlgorithm: 1,
          flags: 1,
          iterations: 12,
          salt: hex('aabbccdd'),
          nextHashedOwner: decodeBase32Hex('2t7b4g4vsa5smi47k61mv5bv1a22bojr'),
          types: ['NS', 'SOA', 'TYPE15', 'RRSIG', 'DNSKEY', 'NSEC3PARAM'],
        },
        300,
      ),
    ],
    [
      'NSEC3PARAM with an empty salt',
      '@ 0 NSEC3PARAM 1 0 0 -',
      rr('example', 'NSEC3PARAM', { hashAlgorithm: 1, flags: 0, iterations: 0, salt: hex('') }, 0),
    ],
    [
      'SVCB with quoted values, a generic key and no-default-alpn',
      'a SVCB 1 . alpn="h2,http/1.1" no-default-alpn key65001="x y" key65002 ipv4hint=192.0.2.1,192.0.2.2',
      rr(
        'a.example',
        'SVCB',
        {
          priority: 1,
          target: '.',
          params: {
            alpn: ['h2', 'http/1.1'],
            noDefaultAlpn: true,
            ipv4hint: ['192.0.2.1', '192.0.2.2'],
            unknown: [
              { key: 65001, value: text('x y') },
              { key: 65002, value: new Uint8Array(0) },
            ],
          },
        },
        300,
      ),
    ],
    [
      'SVCB with known keys in the generic form (RFC 9460 §2.1)',
      'a SVCB 1 . key0="\\000\\003" key3="\\000\\053" key7="/q{?dns}"',
      rr(
        'a.example',
        'SVCB',
        {
          priority: 1,
          target: '.',
          params: { mandatory: ['port'], port: 53, dohpath: '/q{?dns}' },
        },
        300,
      ),
    ],
  ])('reads %s', (_what, line, expected) => {
    expect(one(line)).toEqual(expected);
  });

  it('takes an omitted owner, TTL and class from the record before', () => {
    expect(parseZoneFile('a.example. 60 CH TXT x\n  TXT y\n\n ; comment\n\tTXT z', {})).toEqual([
      { name: 'a.example', type: 'TXT', class: 'CH', ttl: 60, data: [text('x')] },
      { name: 'a.example', type: 'TXT', class: 'CH', ttl: 60, data: [text('y')] },
      { name: 'a.example', type: 'TXT', class: 'CH', ttl: 60, data: [text('z')] },
    ]);
  });

  it('prefers $TTL to the previous TTL, and defaultTtl before any $TTL', () => {
    expect(
      parseZoneFile('a. 60 TXT x\nb. TXT x\n$TTL 2m\nc. TXT x', { defaultTtl: 30 }).map(
        (r) => r.ttl,
      ),
    ).toEqual([60, 30, 120]);
    expect(parseZoneFile('a. 60 TXT x\nb. TXT x').map((r) => r.ttl)).toEqual([60, 60]);
  });

  it('reads $ORIGIN relative to the origin before it, and keeps the previous owner', () => {
    expect(
      parseZoneFile('$ORIGIN example.\nwww 1 TXT x\n$ORIGIN sub\n  TXT y\nwww TXT z').map(
        (r) => r.name,
      ),
    ).toEqual(['www.example', 'www.example', 'www.sub.example']);
  });

  it('accepts the origin option with or without the trailing dot, and CRLF line ends', () => {
    expect(parseZoneFile('a 1 TXT x\r\nb 1 TXT y\r\n', { origin: 'Example.' })).toEqual([
      { name: 'a.Example', type: 'TXT', class: 'IN', ttl: 1, data: [text('x')] },
      { name: 'b.Example', type: 'TXT', class: 'IN', ttl: 1, data: [text('y')] },
    ]);
  });
});

/** Text that does not read: what it shows, the text, the error's code and message. */
const ERROR_CASES: Array<[string, string, ZoneFileErrorCode, string]> = [
  [
    'an unknown type',
    `$ORIGIN example.\n$TTL 300\n${'; filler\n'.repeat(9)}www FOO 1`,
    'ERR_ZONE_FILE_UNKNOWN_TYPE',
    'line 12: unknown type FOO',
  ],
  [
    'a relative name without an origin',
    'www 300 A 192.0.2.1',
    'ERR_ZONE_FILE_BAD_NAME',
    'line 1: relative name www needs an origin ($ORIGIN or the origin option)',
  ],
  [
    '@ without an origin',
    '@ 300 A 192.0.2.1',
    'ERR_ZONE_FILE_BAD_NAME',
    'line 1: @ needs an origin ($ORIGIN or the origin option)',
  ],
  [
    'an empty label',
    'a..b. 300 A 192.0.2.1',
    'ERR_ZONE_FILE_BAD_NAME',
    'line 1: bad owner name a..b.: empty label in a..b.',
  ],
  [
    'a label over 63 octets in RDATA',
    `a. 300 NS ${'x'.repeat(64)}.`,
    'ERR_ZONE_FILE_BAD_NAME',
    `line 1: bad target name ${'x'.repeat(64)}.: label over 63 octets in ${'x'.repeat(64)}.`,
  ],
  [
    'an omitted owner on the first record',
    '\t300 A 192.0.2.1',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: record without an owner name (the line starts with white space)',
  ],
  [
    'no TTL anywhere',
    'a. A 192.0.2.1',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: no TTL: give one, or a $TTL before the record',
  ],
  [
    'a TTL over 2^31 - 1',
    'a. 2147483648 A 192.0.2.1',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: TTL 2147483648 is over 2147483647 (RFC 2181 §8)',
  ],
  [
    'a bad $TTL',
    '$TTL 1x',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: $TTL must be seconds or units such as 1h30m, found 1x',
  ],
  [
    'a bad address',
    'a. 300 A 192.0.2.256',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: bad IPv4 address 192.0.2.256',
  ],
  [
    'an IPv6 address with a zone',
    'a. 300 AAAA fe80::1%eth0',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: bad IPv6 address fe80::1%eth0',
  ],
  ['a missing field', 'a. 300 A', 'ERR_ZONE_FILE_SYNTAX', 'line 1: missing address'],
  [
    'a missing field at the end of parentheses, on the line it ends',
    'a. 300 SOA ns. host. (\n 1 2 3\n 4 )',
    'ERR_ZONE_FILE_SYNTAX',
    'line 3: missing SOA minimum',
  ],
  [
    'a bad field inside parentheses, on its own line',
    'a. 300 SOA ns. host. (\n 1 2 3\n 4 x )',
    'ERR_ZONE_FILE_SYNTAX',
    'line 3: SOA minimum must be seconds or units such as 1h30m, found x',
  ],
  [
    'a field too many',
    'a. 300 A 192.0.2.1 192.0.2.2',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: unexpected 192.0.2.2 after the A RDATA',
  ],
  [
    'a quoted string left open',
    'a. 300 TXT "open',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: quoted string is not closed on its line',
  ],
  [
    'a parenthesis left open',
    'a. 300 TXT ( x\n\n',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: ( is never closed',
  ],
  ['a stray parenthesis', '\na. 300 TXT x )', 'ERR_ZONE_FILE_SYNTAX', 'line 2: unbalanced )'],
  [
    'a backslash at the end of a line',
    'a. 300 TXT x\\',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: a backslash ends the line',
  ],
  [
    'a short \\DDD escape',
    'a. 300 TXT \\25x',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: bad \\DDD escape in TXT string \\25x',
  ],
  [
    'a TXT string over 255 octets',
    `a. 300 TXT ${'x'.repeat(256)}`,
    'ERR_ZONE_FILE_BAD_RDATA',
    'line 1: TXT RDATA: TXT string over 255 octets',
  ],
  [
    'a query type as a record',
    'a. 300 ANY \\# 0',
    'ERR_ZONE_FILE_UNKNOWN_TYPE',
    'line 1: ANY cannot be the type of a record',
  ],
  [
    'OPT as a record',
    'a. 300 TYPE41 \\# 0',
    'ERR_ZONE_FILE_UNKNOWN_TYPE',
    'line 1: TYPE41 cannot be the type of a record',
  ],
  [
    'a class that cannot hold records',
    'a. 300 CLASS255 A 192.0.2.1',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: CLASS255 cannot be the class of a record',
  ],
  [
    'a type outside the model in its own form',
    'a. 300 MX 10 mail.example.',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: MX RDATA must be in the RFC 3597 generic form \\# <length> <hex>',
  ],
  [
    'MAP in anything but the generic form',
    'a. 300 MAP a16176',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: MAP RDATA must be in the RFC 3597 generic form \\# <length> <hex>',
  ],
  [
    'generic RDATA shorter than its length',
    'a. 300 TYPE65400 \\# 3 a161',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: \\# says 3 octets, but 2 follow',
  ],
  [
    'generic RDATA that the type refuses',
    'a. 300 AUTHKEY \\# 1 03',
    'ERR_ZONE_FILE_BAD_RDATA',
    'line 1: AUTHKEY RDATA: AUTHKEY role 3 (at byte 0)',
  ],
  [
    'a DS digest that is not hex',
    'a. 300 DS 1 15 2 xyz',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: DS digest must be hexadecimal octets',
  ],
  [
    'a key tag out of range',
    'a. 300 DS 70000 15 2 00',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: key tag must be a number 0..65535, found 70000',
  ],
  [
    'an unknown algorithm',
    'a. 300 DNSKEY 257 3 FOO AAAA',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: algorithm must be a number 0..255 or a mnemonic, found FOO',
  ],
  [
    'a key that is not base64',
    'a. 300 DNSKEY 257 3 15 AA*A',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: DNSKEY public key must be base64',
  ],
  [
    'an impossible date',
    'a. 300 RRSIG A 15 1 300 20240230000000 20240101000000 1 a. AA==',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: expiration 20240230000000 is not a date',
  ],
  [
    'an NSEC3 hash that is not base32hex',
    'a. 300 NSEC3 1 0 0 - 0p9mhaveqvm6t7vbl5lop2u3t2rp3toz A',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: next hashed owner name must be base32hex, found 0p9mhaveqvm6t7vbl5lop2u3t2rp3toz',
  ],
  [
    'an unknown type in a bitmap',
    'a. 300 NSEC b. A FOO',
    'ERR_ZONE_FILE_UNKNOWN_TYPE',
    'line 1: unknown type FOO',
  ],
  [
    'an SvcParam without its value',
    'a. 300 SVCB 1 . alpn',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: SVCB alpn: needs a value',
  ],
  [
    'an SvcParam given twice',
    'a. 300 SVCB 1 . port=1 key3="\\000\\002"',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: SVCB key3: given twice',
  ],
  [
    'an unknown SvcParamKey',
    'a. 300 SVCB 1 . foo=bar',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: unknown SvcParamKey foo',
  ],
  [
    'a mandatory key that is absent',
    'a. 300 SVCB 1 . mandatory=port',
    'ERR_ZONE_FILE_BAD_RDATA',
    'line 1: SVCB RDATA: mandatory lists port, which is absent',
  ],
  [
    'SvcParams in AliasMode',
    'a. 300 SVCB 0 . port=1',
    'ERR_ZONE_FILE_BAD_RDATA',
    'line 1: SVCB RDATA: AliasMode (priority 0) with SvcParams',
  ],
  [
    '$INCLUDE',
    '$INCLUDE other.zone',
    'ERR_ZONE_FILE_DIRECTIVE',
    'line 1: $INCLUDE is not supported: expand it before reading the file',
  ],
  ['an unknown directive', '$FOO 1', 'ERR_ZONE_FILE_DIRECTIVE', 'line 1: unknown directive $FOO'],
  [
    'a directive with too many fields',
    '$ORIGIN a. b.',
    'ERR_ZONE_FILE_SYNTAX',
    'line 1: unexpected b. after the $ORIGIN',
  ],
];

describe('parseZoneFile errors', () => {
  it.each(ERROR_CASES)('refuses %s, naming the line', (_what, input, code, message) => {
    const error = errorOf(() => parseZoneFile(input));
    expect(error.code).toBe(code);
    expect(error.message).toBe(message);
    expect(error.line).toBe(Number(/^line (\d+)/.exec(message)?.[1]));
  });

  it('keeps the codec error as the cause of a refused RDATA', () => {
    const error = errorOf(() => parseZoneFile('a. 300 SVCB 0 . port=1'));
    expect((error.cause as { code?: string }).code).toBe('ERR_WIRE_BAD_SVCB');
  });

  it('refuses bad options without a line', () => {
    const error = errorOf(() => parseZoneFile('', { origin: 'a..b' }));
    expect(error.code).toBe('ERR_ZONE_FILE_OPTIONS');
    expect(error.line).toBeUndefined();
    expect(errorOf(() => parseZoneFile('', { maxRecords: -1 })).code).toBe('ERR_ZONE_FILE_OPTIONS');
  });
});

describe('parseZoneFile bounds', () => {
  it('reads at most maxRecords records, a million by default', () => {
    expect(MAX_ZONE_FILE_RECORDS).toBe(1_000_000);
    const input = 'a. 1 TXT x\nb. 1 TXT x\nc. 1 TXT x\n';
    expect(parseZoneFile(input, { maxRecords: 3 })).toHaveLength(3);
    const error = errorOf(() => parseZoneFile(input, { maxRecords: 2 }));
    expect(error.code).toBe('ERR_ZONE_FILE_TOO_LARGE');
    expect(error.message).toBe('line 3: more than 2 records');
  });

  it('refuses a line over the bound, even a comment', () => {
    const error = errorOf(() => parseZoneFile(`\n;${'x'.repeat(MAX_ZONE_FILE_LINE_CHARS)}`));
    expect(error.code).toBe('ERR_ZONE_FILE_TOO_LARGE');
    expect(error.message).toBe(`line 2: line longer than ${MAX_ZONE_FILE_LINE_CHARS} characters`);
  });

  it('refuses a record spread over lines beyond the bound', () => {
    const line = ` ${'ab'.repeat(500)}\n`;
    const input = `a. 1 TYPE999 \\# 1 ( 00\n${line.repeat(MAX_ZONE_FILE_LINE_CHARS / line.length + 1)})`;
    const error = errorOf(() => parseZoneFile(input));
    expect(error.message).toBe(`line 1: record longer than ${MAX_ZONE_FILE_LINE_CHARS} characters`);
  });

  it('reads the largest generic RDATA', () => {
    const data = new Uint8Array(65535).fill(0xab);
    const [read] = parseZoneFile(`a. 1 TYPE999 \\# 65535 ${Buffer.from(data).toString('hex')}`);
    expect(read?.data).toEqual(data);
  });
});

describe('createZoneFileReader', () => {
  it('reads a hand-written zone cut in two at every place, or in pieces of one character', () => {
    const whole = readZoneFile(BIND_STYLE);
    expect(whole.map((entry) => entry.record)).toEqual(BIND_STYLE_RECORDS);
    expect(readInPieces(BIND_STYLE, everyCharacter(BIND_STYLE))).toEqual(whole);
    for (let cut = 0; cut <= BIND_STYLE.length; cut++) {
      expect(readInPieces(BIND_STYLE, [cut]), `cut at ${cut}`).toEqual(whole);
    }
  });

  it.each(ERROR_CASES)(
    'refuses %s the same way wherever the text is cut',
    (_what, input, code, message) => {
      for (const cuts of [
        everyCharacter(input),
        ...[...Array(input.length + 1).keys()].map((c) => [c]),
      ]) {
        const error = errorOf(() => readInPieces(input, cuts));
        expect(error.code, `cut at ${cuts.join(',')}`).toBe(code);
        expect(error.message, `cut at ${cuts.join(',')}`).toBe(message);
      }
    },
  );

  /** Pushes `chunks` until the reader throws; the error and how many chunks it took. */
  function pushUntilError(chunks: Iterable<string>): { error: ZoneFileError; pushed: number } {
    const reader = createZoneFileReader();
    let pushed = 0;
    const error = errorOf(() => {
      for (const chunk of chunks) {
        pushed += 1;
        reader.push(chunk);
      }
      reader.end();
    });
    return { error, pushed };
  }

  /** 100 MB of text in pieces of 64 KiB, made as they are asked for. */
  function* hundredMegabytes(first: string, piece: string): Generator<string> {
    yield first;
    for (let sent = 0; sent < 100 * 2 ** 20; sent += piece.length) yield piece;
  }

  it('refuses a line of 100 MB once it is over the bound, without reading the rest', () => {
    const { error, pushed } = pushUntilError(hundredMegabytes('a. 300 TXT ', 'x'.repeat(65_536)));
    expect(error.code).toBe('ERR_ZONE_FILE_TOO_LARGE');
    expect(error.message).toBe(`line 1: line longer than ${MAX_ZONE_FILE_LINE_CHARS} characters`);
    expect(pushed).toBe(Math.ceil(MAX_ZONE_FILE_LINE_CHARS / 65_536) + 1);
  });

  it('refuses a parenthesis opened over 100 MB of lines once the record is over the bound', () => {
    const line = `${' 00'.repeat(1000)}\n`;
    const { error, pushed } = pushUntilError(
      hundredMegabytes('ok. 1 TXT x\na. 1 TYPE999 \\# 1 ( 00\n', line.repeat(20)),
    );
    expect(error.code).toBe('ERR_ZONE_FILE_TOO_LARGE');
    expect(error.message).toBe(`line 2: record longer than ${MAX_ZONE_FILE_LINE_CHARS} characters`);
    expect(pushed).toBeLessThan(MAX_ZONE_FILE_LINE_CHARS / (line.length * 20) + 3);
  });

  it('refuses a ( never closed at the end, and a ) never opened, naming the line', () => {
    expect(pushUntilError(['a. 1 TXT x\nb. 1 TXT ( "y"\n', '; more\n']).error.message).toBe(
      'line 2: ( is never closed',
    );
    expect(pushUntilError(['a. 1 TXT x\n', 'b. 1 TXT "y" )\n']).error.message).toBe(
      'line 2: unbalanced )',
    );
  });

  it('keeps failing after an error, and refuses text after the end', () => {
    const reader = createZoneFileReader();
    const first = errorOf(() => reader.push('a. 1 A x\n'));
    expect(errorOf(() => reader.push('b. 1 A 192.0.2.1\n'))).toBe(first);
    expect(errorOf(() => reader.end())).toBe(first);
    const ended = createZoneFileReader();
    ended.end();
    expect(errorOf(() => ended.push('a. 1 A 192.0.2.1\n')).code).toBe('ERR_ZONE_FILE_OPTIONS');
  });

  it('bounds the records only when asked', () => {
    const input = 'a. 1 TXT x\nb. 1 TXT x\nc. 1 TXT x\n';
    expect(readInPieces(input, [5])).toHaveLength(3);
    const error = errorOf(() => readInPieces(input, [5], { maxRecords: 2 }));
    expect(error.message).toBe('line 3: more than 2 records');
  });

  it('reads pieces from an async source in batches, as they complete records', async () => {
    async function* pieces(): AsyncGenerator<string> {
      yield '$ORIGIN example.\n$TTL 60\na A 192.0.2.1\nb A 192.';
      yield '0.2.2\nc A 192.0.2.3\n';
      yield 'd A 192.0.2.4';
    }
    const batches: string[][] = [];
    for await (const batch of readZoneFileChunks(pieces())) {
      batches.push(batch.map((entry) => `${entry.line} ${entry.record.name}`));
    }
    expect(batches).toEqual([['3 a.example'], ['4 b.example', '5 c.example'], ['6 d.example']]);
  });
});
