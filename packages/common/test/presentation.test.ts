import { describe, expect, it } from 'vitest';
import {
  formatRecord,
  formatTime,
  formatZone,
  ZoneError,
  type RecordOf,
  type ResourceRecord,
  record,
} from '../src/index.js';

const rr = <T extends ResourceRecord['type']>(
  name: string,
  type: T,
  data: RecordOf<T>['data'],
  ttl = 3600,
): ResourceRecord => record(name, type, data, ttl);

/** A record of a type without a mnemonic (RFC 3597). */
function generic(name: string, code: number, data: Uint8Array): ResourceRecord {
  return { name, type: `TYPE${code}`, class: 'IN', ttl: 3600, data };
}

const hex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));
const b64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));

const soa = {
  mname: 'ns1.example',
  rname: 'hostmaster.example',
  serial: 2024010101,
  refresh: 7200,
  retry: 900,
  expire: 1209600,
  minimum: 300,
};

describe('formatRecord', () => {
  it.each<[string, ResourceRecord, string]>([
    [
      'SOA',
      rr('example', 'SOA', soa),
      'example. 3600 IN SOA ns1.example. hostmaster.example. 2024010101 7200 900 1209600 300',
    ],
    ['NS', rr('example', 'NS', 'ns1.example'), 'example. 3600 IN NS ns1.example.'],
    ['A', rr('ns1.example', 'A', '192.0.2.1'), 'ns1.example. 3600 IN A 192.0.2.1'],
    ['AAAA', rr('ns1.example', 'AAAA', '2001:db8::1'), 'ns1.example. 3600 IN AAAA 2001:db8::1'],
    ['CNAME', rr('www.example', 'CNAME', '.'), 'www.example. 3600 IN CNAME .'],
    [
      'TXT',
      rr('t.example', 'TXT', [
        new TextEncoder().encode('a "quoted" \\ text'),
        Uint8Array.of(0, 0x7f),
      ]),
      't.example. 3600 IN TXT "a \\"quoted\\" \\\\ text" "\\000\\127"',
    ],
    [
      'DS (RFC 4034 §5.4)',
      rr(
        'dskey.example.com',
        'DS',
        {
          keyTag: 60485,
          algorithm: 5,
          digestType: 1,
          digest: hex('2bb183af5f22588179a53b0a98631fad1a292118'),
        },
        86400,
      ),
      'dskey.example.com. 86400 IN DS 60485 5 1 2bb183af5f22588179a53b0a98631fad1a292118',
    ],
    [
      'DNSKEY (RFC 8080 §6.1)',
      rr('example.com', 'DNSKEY', {
        flags: 257,
        protocol: 3,
        algorithm: 15,
        publicKey: b64('l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4='),
      }),
      'example.com. 3600 IN DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=',
    ],
    [
      'RRSIG over a private type',
      rr('x.example', 'RRSIG', {
        typeCovered: 'MAP',
        algorithm: 15,
        labels: 2,
        originalTtl: 300,
        expiration: 1440021600,
        inception: 1438207200,
        keyTag: 3613,
        signerName: 'example',
        signature: Uint8Array.of(1, 2, 3),
      }),
      'x.example. 3600 IN RRSIG TYPE65400 15 2 300 20150819220000 20150729220000 3613 example. AQID',
    ],
    [
      'NSEC',
      rr('x.example', 'NSEC', {
        nextName: '\\000.x.example',
        types: ['A', 'RRSIG', 'NSEC', 'AUTHKEY'],
      }),
      'x.example. 3600 IN NSEC \\000.x.example. A RRSIG NSEC TYPE65402',
    ],
    [
      'NSEC3 (RFC 5155 Appendix A form)',
      rr('0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example', 'NSEC3', {
        hashAlgorithm: 1,
        flags: 1,
        iterations: 12,
        salt: hex('aabbccdd'),
        nextHashedOwner: Uint8Array.of(0x19, 0x54, 0xeb, 0x20, 0x45),
        types: ['NS', 'SOA', 'MAPREF', 'TYPE128'],
      }),
      '0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example. 3600 IN NSEC3 1 1 12 aabbccdd 35aem825 NS SOA TYPE65401 TYPE128',
    ],
    [
      'NSEC3 of an empty non-terminal, empty salt',
      rr('abc.example', 'NSEC3', {
        hashAlgorithm: 1,
        flags: 0,
        iterations: 0,
        salt: new Uint8Array(0),
        nextHashedOwner: Uint8Array.of(0, 0, 0, 0, 0),
        types: [],
      }),
      'abc.example. 3600 IN NSEC3 1 0 0 - 00000000',
    ],
    [
      'NSEC3PARAM',
      rr(
        'example',
        'NSEC3PARAM',
        { hashAlgorithm: 1, flags: 0, iterations: 0, salt: new Uint8Array(0) },
        0,
      ),
      'example. 0 IN NSEC3PARAM 1 0 0 -',
    ],
    [
      'SVCB for DoH (RFC 9461)',
      rr('_dns.ns1.example', 'SVCB', {
        priority: 1,
        target: 'ns1.example',
        params: { dohpath: '/dns-query{?dns}', port: 443, alpn: ['h2', 'http/1.1'] },
      }),
      '_dns.ns1.example. 3600 IN SVCB 1 ns1.example. alpn=h2,http/1.1 port=443 dohpath=/dns-query{?dns}',
    ],
    [
      'SVCB with every key',
      rr('s.example', 'SVCB', {
        priority: 2,
        target: '.',
        params: {
          unknown: [
            { key: 65000, value: new TextEncoder().encode('a b') },
            { key: 9, value: new Uint8Array(0) },
          ],
          ipv6hint: ['2001:db8::1', '2001:db8::2'],
          ech: Uint8Array.of(1, 2, 3),
          ipv4hint: ['192.0.2.1', '192.0.2.2'],
          noDefaultAlpn: true,
          alpn: ['h3', 'odd,one\\'],
          mandatory: ['alpn', 'port'],
          port: 8443,
        },
      }),
      's.example. 3600 IN SVCB 2 . mandatory=alpn,port alpn=h3,odd\\\\,one\\\\\\\\ no-default-alpn port=8443 ipv4hint=192.0.2.1,192.0.2.2 ech=AQID ipv6hint=2001:db8::1,2001:db8::2 key9 key65000=a\\032b',
    ],
    [
      'SVCB with ohttp, as key8 for stock tools (RFC 9540 §4, RFC 9460 §2.1)',
      rr('_dns.resolver.example', 'SVCB', {
        priority: 1,
        target: 'resolver.example',
        params: { mandatory: ['ohttp'], alpn: ['h2'], dohpath: '/dns-query{?dns}', ohttp: true },
      }),
      '_dns.resolver.example. 3600 IN SVCB 1 resolver.example. mandatory=key8 alpn=h2 dohpath=/dns-query{?dns} key8',
    ],
    [
      'SVCB alias mode',
      rr('a.example', 'SVCB', { priority: 0, target: 'b.example', params: {} }),
      'a.example. 3600 IN SVCB 0 b.example.',
    ],
  ])('writes %s in its standard form', (_type, record, line) => {
    expect(formatRecord(record)).toBe(line);
  });

  it.each<[string, ResourceRecord, string]>([
    [
      'MAP',
      rr('x.example', 'MAP', Uint8Array.of(0xa1, 0x61, 0x76)),
      'x.example. 3600 IN TYPE65400 \\# 3 a16176',
    ],
    [
      'MAPREF, keeping the case of its target',
      rr('x.example', 'MAPREF', 'dp.MSP.example'),
      'x.example. 3600 IN TYPE65401 \\# 16 026470034d5350076578616d706c6500',
    ],
    [
      'AUTHKEY',
      rr('example', 'AUTHKEY', {
        role: 'prover',
        algorithm: 15,
        notAfter: 0x01020304,
        publicKey: new Uint8Array(32).fill(0xee),
      }),
      `example. 3600 IN TYPE65402 \\# 38 010f01020304${'ee'.repeat(32)}`,
    ],
    [
      'KEYCONF',
      rr('resolver.example', 'KEYCONF', {
        kind: 'odoh',
        config: Uint8Array.of(1, 2),
        notBefore: 1,
        notAfter: 2,
      }),
      // {v: 1, cfg: h'0102', exp: 2, nbf: 1, kind: "odoh"} in RFC 8949 §4.2.1 key order.
      'resolver.example. 3600 IN TYPE65403 \\# 31 a5617601636366674201026365787002636e626601646b696e64646f646f68',
    ],
    [
      'an unknown type',
      generic('x.example', 999, Uint8Array.of(0xff)),
      'x.example. 3600 IN TYPE999 \\# 1 ff',
    ],
    [
      'empty RDATA',
      generic('x.example', 999, new Uint8Array(0)),
      'x.example. 3600 IN TYPE999 \\# 0',
    ],
  ])('writes %s in the RFC 3597 generic form', (_type, record, line) => {
    expect(formatRecord(record)).toBe(line);
  });

  it('writes RRSIG times as YYYYMMDDHHmmSS in UTC', () => {
    expect(formatTime(0)).toBe('19700101000000');
    expect(formatTime(2 ** 32 - 1)).toBe('21060207062815');
  });
});

describe('formatZone', () => {
  const records = [
    rr('www.example', 'A', '192.0.2.80'),
    rr('example', 'RRSIG', {
      typeCovered: 'NS',
      algorithm: 15,
      labels: 1,
      originalTtl: 3600,
      expiration: 1,
      inception: 0,
      keyTag: 1,
      signerName: 'example',
      signature: Uint8Array.of(0),
    }),
    rr('example', 'NS', 'ns1.example'),
    generic('a.example', 65000, Uint8Array.of(1)),
    rr('example', 'SOA', soa),
    rr('example', 'NS', 'ns2.example'),
  ];

  it('puts the SOA first, then canonical order with each RRSIG after what it covers', () => {
    expect(formatZone('Example.', records)).toBe(
      [
        'example. 3600 IN SOA ns1.example. hostmaster.example. 2024010101 7200 900 1209600 300',
        'example. 3600 IN NS ns1.example.',
        'example. 3600 IN NS ns2.example.',
        'example. 3600 IN RRSIG NS 15 1 3600 19700101000001 19700101000000 1 example. AA==',
        'a.example. 3600 IN TYPE65000 \\# 1 01',
        'www.example. 3600 IN A 192.0.2.80',
        '',
      ].join('\n'),
    );
  });

  it('refuses a zone without exactly one SOA at its origin, or with outside records', () => {
    expect(() => formatZone('example', records.slice(0, 4))).toThrow(ZoneError);
    expect(() => formatZone('example', [...records, rr('example', 'SOA', soa)])).toThrow(ZoneError);
    expect(() => formatZone('example', [...records, rr('example.net', 'A', '192.0.2.1')])).toThrow(
      /not in zone/,
    );
  });
});
