import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
// The modules themselves rather than the package index, so these tests load only the codec.
import { WIRE_ERROR_CODES, WireError } from '../src/protocol/errors.js';
import { formatLabels } from '../src/protocol/names.js';
import {
  codeToType,
  decodeMessage,
  decodeName,
  decodeRdata,
  encodeMessage,
  encodeName,
  encodeRdata,
  encodeRecord,
  MAX_COMPRESSION_POINTERS,
  MAX_MAP_RDATA_OCTETS,
  MAX_MESSAGE_OCTETS,
  MAX_RECORDS_PER_MESSAGE,
  typeToCode,
} from '../src/protocol/wire.js';
import { responseFlags } from '../src/protocol/records.js';
import type {
  Edns,
  Message,
  MessageFlags,
  Question,
  Rcode,
  ResourceRecord,
  RRClass,
  RRType,
  SvcParams,
} from '../src/protocol/records.js';

// ---------------------------------------------------------------------------------------------
// Helpers

/** Hex with spaces, newlines and `#` comments allowed. */
function hex(text: string): Uint8Array {
  const clean = text.replace(/#[^\n]*/g, '').replace(/\s+/g, '');
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function u16(n: number): string {
  return n.toString(16).padStart(4, '0');
}

function u32(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** A header (id 0x1234, QR AA) with the given section counts. */
function header(qd: number, an: number, ns: number, ar: number, flags = 0x8400): string {
  return `1234 ${u16(flags)} ${u16(qd)} ${u16(an)} ${u16(ns)} ${u16(ar)}`;
}

/** One record in hex: owner (hex), type, class IN, TTL 60, RDLENGTH computed from `rdata`. */
function rr(owner: string, type: number, rdata: string, klass = 1): string {
  const length = hex(rdata).length;
  return `${owner} ${u16(type)} ${u16(klass)} ${u32(60)} ${u16(length)} ${rdata}`;
}

/** `example` as a wire name. */
const EXAMPLE = '07 6578616d706c65 00';
/** A question for `example` A IN, at offset 12 of every hand-built message. */
const QUESTION = `${EXAMPLE} 0001 0001`;

function wireError(f: () => unknown): WireError {
  try {
    f();
  } catch (e) {
    if (e instanceof WireError) return e;
    throw new Error(`expected a WireError, got ${String(e)}`, { cause: e });
  }
  throw new Error('expected a WireError, nothing was thrown');
}

const FLAGS = responseFlags();

function message(parts: Partial<Message>): Message {
  return {
    id: 0x4d4d,
    flags: FLAGS,
    rcode: 'NOERROR',
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
    ...parts,
  };
}

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
const SIGNATURE = Uint8Array.from({ length: 64 }, (_, i) => 255 - i);
const EDNS: Edns = {
  udpPayloadSize: 1232,
  extendedRcode: 0,
  version: 0,
  dnssecOk: true,
  options: [],
};

function record<T extends ResourceRecord['type']>(
  name: string,
  type: T,
  data: T extends `TYPE${number}` ? Uint8Array : Extract<ResourceRecord, { type: T }>['data'],
  ttl = 3600,
): ResourceRecord {
  return { name, type, class: 'IN', ttl, data } as ResourceRecord;
}

// ---------------------------------------------------------------------------------------------
// Types and names

describe('type codes', () => {
  it.each([
    ['A', 1],
    ['NS', 2],
    ['SOA', 6],
    ['OPT', 41],
    ['DS', 43],
    ['RRSIG', 46],
    ['NSEC', 47],
    ['DNSKEY', 48],
    ['NSEC3', 50],
    ['NSEC3PARAM', 51],
    ['SVCB', 64],
    ['MAP', 65400],
    ['MAPREF', 65401],
    ['AUTHKEY', 65402],
    ['TYPE1234', 1234],
    ['TYPE0', 0],
    ['TYPE65535', 65535],
    ['ANY', 255],
    ['AXFR', 252],
    ['IXFR', 251],
  ] as const)('maps %s to code %i', (type, code) => {
    expect(typeToCode(type)).toBe(code);
  });

  it.each([
    [65400, 'MAP'],
    [64, 'SVCB'],
    [15, 'TYPE15'],
    [255, 'TYPE255'],
    [1234, 'TYPE1234'],
  ] as const)('names code %i %s', (code, type) => {
    expect(codeToType(code)).toBe(type);
  });

  it.each(['MX', 'TYPE', 'TYPE01', 'TYPE65536', 'type1', 'A '])(
    'refuses the unknown type %j',
    (type) => {
      expect(wireError(() => typeToCode(type as RRType)).code).toBe('ERR_WIRE_BAD_TYPE');
    },
  );

  it('refuses a code that is not a 16-bit integer', () => {
    expect(wireError(() => codeToType(65536)).code).toBe('ERR_WIRE_BAD_VALUE');
    expect(wireError(() => codeToType(1.5)).code).toBe('ERR_WIRE_BAD_VALUE');
  });
});

describe('names', () => {
  it('encodes a name uncompressed, keeping case unless canonical', () => {
    expect(toHex(encodeName('Example.COM'))).toBe('074578616d706c6503434f4d00');
    expect(toHex(encodeName('Example.COM.', { canonical: true }))).toBe(
      '076578616d706c6503636f6d00',
    );
    expect(toHex(encodeName('.'))).toBe('00');
  });

  it('keeps escaped octets exact and lowercases only ASCII letters', () => {
    expect(toHex(encodeName('a\\.B.\\200\\000', { canonical: true }))).toBe('03612e6202c80000');
    expect(decodeName(hex('03 61 2e 42 02 80 00 00')).name).toBe('a\\.B.\\128\\000');
  });

  it('decodes a compressed name and reports where it ends', () => {
    expect(decodeName(hex('01 61 00 01 62 c0 00'), 3)).toEqual({ name: 'b.a', end: 7 });
  });

  it('refuses names it cannot encode', () => {
    expect(wireError(() => encodeName(`${'a'.repeat(64)}.b`)).code).toBe('ERR_WIRE_BAD_LABEL');
    expect(wireError(() => encodeName('a..b')).code).toBe('ERR_WIRE_BAD_LABEL');
    expect(wireError(() => encodeName(Array(128).fill('a').join('.'))).code).toBe(
      'ERR_WIRE_NAME_TOO_LONG',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Records

/** One record of every type of the model, as the decoder gives them back. */
const EVERY_TYPE: ResourceRecord[] = [
  record('ns1.dp.example', 'A', '192.0.2.53'),
  record('ns1.dp.example', 'AAAA', '2001:db8::53'),
  record('4.4.e164.mimi.arpa', 'NS', 'ns1.dp.example'),
  record('www.example', 'CNAME', 'Web.Example'),
  record('example', 'TXT', [new TextEncoder().encode('v=1'), new Uint8Array(0), KEY]),
  record('example', 'SOA', {
    mname: 'ns1.example',
    rname: 'hostmaster.example',
    serial: 2024010101,
    refresh: 7200,
    retry: 3600,
    expire: 1209600,
    minimum: 300,
  }),
  record('4.4.e164.mimi.arpa', 'DS', {
    keyTag: 3613,
    algorithm: 15,
    digestType: 2,
    digest: KEY,
  }),
  record('4.4.e164.mimi.arpa', 'DNSKEY', {
    flags: 257,
    protocol: 3,
    algorithm: 15,
    publicKey: KEY,
  }),
  record('4.4.e164.mimi.arpa', 'RRSIG', {
    typeCovered: 'MAP',
    algorithm: 15,
    labels: 4,
    originalTtl: 3600,
    expiration: 1_900_000_000,
    inception: 1_700_000_000,
    keyTag: 3613,
    signerName: '4.4.e164.mimi.arpa',
    signature: SIGNATURE,
  }),
  record('a.example', 'NSEC', {
    nextName: '\\000.a.example',
    types: ['RRSIG', 'NSEC', 'TYPE128'],
  }),
  record('0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example', 'NSEC3', {
    hashAlgorithm: 1,
    flags: 0,
    iterations: 0,
    salt: new Uint8Array(0),
    nextHashedOwner: Uint8Array.from({ length: 20 }, (_, i) => i * 7),
    types: ['A', 'NS', 'SOA', 'RRSIG', 'DNSKEY', 'NSEC3PARAM'],
  }),
  record('example', 'NSEC3PARAM', {
    hashAlgorithm: 1,
    flags: 0,
    iterations: 0,
    salt: Uint8Array.of(0xab, 0xcd),
  }),
  record('_dns.ns1.dp.example', 'SVCB', { priority: 0, target: 'ns1.dp.example', params: {} }),
  record('_dns.ns1.dp.example', 'SVCB', {
    priority: 1,
    target: '.',
    params: {
      mandatory: ['alpn', 'dohpath'],
      alpn: ['h2', 'h3'],
      noDefaultAlpn: true,
      port: 8443,
      ipv4hint: ['192.0.2.1', '192.0.2.2'],
      ech: Uint8Array.of(0, 4, 1, 2, 3, 4),
      ipv6hint: ['2001:db8::1'],
      dohpath: '/dns-query{?dns}',
      ohttp: true,
      unknown: [{ key: 667, value: new TextEncoder().encode('hello') }],
    },
  }),
  record('8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa', 'MAP', Uint8Array.of(0xa1, 0x61, 0x76, 0x01)),
  record('8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa', 'MAPREF', 'Csi.DP.msp.example'),
  record('4.4.e164.mimi.arpa', 'AUTHKEY', {
    role: 'prover',
    algorithm: 15,
    notAfter: 1_800_000_000,
    publicKey: KEY,
  }),
  record('4.4.e164.mimi.arpa', 'AUTHKEY', {
    role: 'csip',
    algorithm: 15,
    notAfter: 0,
    publicKey: KEY,
  }),
  record('example', 'TYPE65280', Uint8Array.of(1, 2, 3)),
  record('example', 'TYPE99', new Uint8Array(0)),
];

describe('records', () => {
  it.each(EVERY_TYPE.map((r) => [r.type, r] as const))(
    'round-trips %s RDATA, alone and inside a message',
    (_type, r) => {
      const rdata = encodeRdata(r);
      expect(decodeRdata(r.type, rdata)).toEqual(r.data);
      const m = message({ answers: [r], authorities: [r] });
      const bytes = encodeMessage(m);
      expect(decodeMessage(bytes)).toEqual(m);
      expect(encodeMessage(decodeMessage(bytes))).toEqual(bytes);
      const whole = encodeRecord(r);
      expect(toHex(whole.subarray(whole.length - rdata.length))).toBe(toHex(rdata));
    },
  );

  it('normalises address text, bitmap order and SVCB key order', () => {
    expect(decodeRdata('AAAA', encodeRdata(record('x', 'AAAA', '2001:DB8:0:0::1')))).toBe(
      '2001:db8::1',
    );
    const nsec = record('x', 'NSEC', { nextName: 'y', types: ['NSEC', 'A', 'RRSIG'] });
    expect(decodeRdata('NSEC', encodeRdata(nsec))).toEqual({
      nextName: 'y',
      types: ['A', 'RRSIG', 'NSEC'],
    });
    const svcb = record('x', 'SVCB', {
      priority: 1,
      target: '.',
      params: {
        mandatory: ['port', 'alpn'],
        port: 1,
        alpn: ['h2'],
        unknown: [
          { key: 10, value: new Uint8Array(0) },
          { key: 9, value: new Uint8Array(0) },
        ],
      },
    });
    expect(decodeRdata('SVCB', encodeRdata(svcb))).toEqual({
      priority: 1,
      target: '.',
      params: {
        mandatory: ['alpn', 'port'],
        port: 1,
        alpn: ['h2'],
        unknown: [
          { key: 9, value: new Uint8Array(0) },
          { key: 10, value: new Uint8Array(0) },
        ],
      },
    });
  });

  it('writes RRSIG times modulo 2^32 and reads back the u32 value', () => {
    const sig = record('x', 'RRSIG', {
      typeCovered: 'A',
      algorithm: 15,
      labels: 1,
      originalTtl: 60,
      expiration: 2 ** 32 + 5,
      inception: -1,
      keyTag: 1,
      signerName: 'x',
      signature: new Uint8Array(0),
    });
    const rdata = encodeRdata(sig);
    expect(toHex(rdata.subarray(8, 16))).toBe('00000005ffffffff');
    expect(decodeRdata('RRSIG', rdata)).toMatchObject({ expiration: 5, inception: 2 ** 32 - 1 });
  });

  it('lowercases only the names RFC 4034 §6.2 as updated by RFC 6840 §5.1 lists', () => {
    const canonical = (r: ResourceRecord): string => toHex(encodeRdata(r, { canonical: true }));
    const lower = toHex(encodeName('a.example'));
    const upper = toHex(encodeName('A.Example'));
    expect(canonical(record('x', 'NS', 'A.Example'))).toBe(lower);
    expect(canonical(record('x', 'CNAME', 'A.Example'))).toBe(lower);
    expect(canonical(record('x', 'MAPREF', 'A.Example'))).toBe(upper);
    expect(canonical(record('x', 'NSEC', { nextName: 'A.Example', types: [] }))).toBe(upper);
    expect(canonical(record('x', 'SVCB', { priority: 0, target: 'A.Example', params: {} }))).toBe(
      `0000${upper}`,
    );
    const soa = canonical(
      record('x', 'SOA', {
        mname: 'A.Example',
        rname: 'A.Example',
        serial: 0,
        refresh: 0,
        retry: 0,
        expire: 0,
        minimum: 0,
      }),
    );
    expect(soa.startsWith(`${lower}${lower}`)).toBe(true);
    const sig = record('x', 'RRSIG', {
      typeCovered: 'A',
      algorithm: 15,
      labels: 1,
      originalTtl: 60,
      expiration: 0,
      inception: 0,
      keyTag: 1,
      signerName: 'A.Example',
      signature: new Uint8Array(0),
    });
    expect(canonical(sig).endsWith(lower)).toBe(true);
    expect(toHex(encodeRdata(sig)).endsWith(upper)).toBe(true);
    expect(toHex(encodeRecord(record('A.Example', 'NS', 'B'), { canonical: true }))).toMatch(
      new RegExp(`^${lower}`),
    );
  });

  it('returns copies that do not alias the input, as plain Uint8Arrays', () => {
    const input = Buffer.from(encodeRdata(record('x', 'MAP', Uint8Array.of(1, 2, 3))));
    const data = decodeRdata('MAP', input) as Uint8Array;
    input[0] = 9;
    expect(data).toEqual(Uint8Array.of(1, 2, 3));
    expect(Object.getPrototypeOf(data)).toBe(Uint8Array.prototype);
  });
});

// ---------------------------------------------------------------------------------------------
// Known answers

/**
 * SVCB wire forms after RFC 9460 Appendix D (D.1 AliasMode, D.2 ServiceMode figures) and the
 * RFC 9461 §5 example. Reconstructed from the RFCs' presentation forms and the wire rules of
 * RFC 9460 §2.2 and §7, octet by octet, not copied from the documents.
 */
const SVCB_VECTORS: Array<{
  source: string;
  data: { priority: number; target: string; params: SvcParams };
  decoded?: { priority: number; target: string; params: SvcParams };
  wire: string;
}> = [
  {
    source: 'RFC 9460 D.1: 0 foo.example.com.',
    data: { priority: 0, target: 'foo.example.com', params: {} },
    wire: '0000 03666f6f 076578616d706c65 03636f6d 00',
  },
  {
    source: 'RFC 9460 D.2: 1 .',
    data: { priority: 1, target: '.', params: {} },
    wire: '0001 00',
  },
  {
    source: 'RFC 9460 D.2: 16 foo.example.com. port=53',
    data: { priority: 16, target: 'foo.example.com', params: { port: 53 } },
    wire: '0010 03666f6f076578616d706c6503636f6d00 0003 0002 0035',
  },
  {
    source: 'RFC 9460 D.2: 1 foo.example.com. key667=hello',
    data: {
      priority: 1,
      target: 'foo.example.com',
      params: { unknown: [{ key: 667, value: new TextEncoder().encode('hello') }] },
    },
    wire: '0001 03666f6f076578616d706c6503636f6d00 029b 0005 68656c6c6f',
  },
  {
    source: 'RFC 9460 D.2: 1 foo.example.com. key667="hello\\210qoo"',
    data: {
      priority: 1,
      target: 'foo.example.com',
      params: { unknown: [{ key: 667, value: hex('68656c6c6f d2 716f6f') }] },
    },
    wire: '0001 03666f6f076578616d706c6503636f6d00 029b 0009 68656c6c6fd2716f6f',
  },
  {
    source: 'RFC 9460 D.2: 1 foo.example.com. ipv6hint="2001:db8::1,2001:db8::53:1"',
    data: {
      priority: 1,
      target: 'foo.example.com',
      params: { ipv6hint: ['2001:db8::1', '2001:db8::53:1'] },
    },
    wire: `0001 03666f6f076578616d706c6503636f6d00 0006 0020
           20010db8000000000000000000000001 20010db8000000000000000000530001`,
  },
  {
    source: 'RFC 9460 D.2: 1 example.com. ipv6hint="2001:db8:122:344::192.0.2.33"',
    data: {
      priority: 1,
      target: 'example.com',
      params: { ipv6hint: ['2001:db8:122:344::192.0.2.33'] },
    },
    decoded: {
      priority: 1,
      target: 'example.com',
      params: { ipv6hint: ['2001:db8:122:344::c000:221'] },
    },
    wire: '0001 076578616d706c6503636f6d00 0006 0010 20010db801220344 00000000 c0000221',
  },
  {
    source:
      'RFC 9460 D.2: 16 foo.example.org. (alpn=h2,h3-19 mandatory=ipv4hint,alpn ipv4hint=192.0.2.1)',
    data: {
      priority: 16,
      target: 'foo.example.org',
      params: { alpn: ['h2', 'h3-19'], mandatory: ['ipv4hint', 'alpn'], ipv4hint: ['192.0.2.1'] },
    },
    decoded: {
      priority: 16,
      target: 'foo.example.org',
      params: { alpn: ['h2', 'h3-19'], mandatory: ['alpn', 'ipv4hint'], ipv4hint: ['192.0.2.1'] },
    },
    wire: `0010 03666f6f076578616d706c6503 6f7267 00
           0000 0004 0001 0004           # mandatory: alpn, ipv4hint
           0001 0009 02 6832 05 68332d3139 # alpn: h2, h3-19
           0004 0004 c0000201             # ipv4hint: 192.0.2.1`,
  },
  {
    source: 'RFC 9460 D.2: 16 foo.example.org. alpn="f\\\\oo\\,bar,h2"',
    data: { priority: 16, target: 'foo.example.org', params: { alpn: ['f\\oo,bar', 'h2'] } },
    wire: '0010 03666f6f076578616d706c65036f726700 0001 000c 08 665c6f6f2c626172 02 6832',
  },
  {
    source: 'RFC 9461 §5: 1 doh.example.net alpn=h2 dohpath=/dns-query{?dns}',
    data: {
      priority: 1,
      target: 'doh.example.net',
      params: { alpn: ['h2'], dohpath: '/dns-query{?dns}' },
    },
    wire: `0001 03646f68076578616d706c65036e657400
           0001 0003 02 6832
           0007 0010 2f646e732d71756572797b3f646e737d`,
  },
];

/** Other RDATA vectors: RFC 4034 examples, and the private types from first principles. */
const RDATA_VECTORS: Array<{ source: string; record: ResourceRecord; wire: string }> = [
  {
    source: 'RFC 4034 §5.4: DS 60485 5 1 2BB183AF…2118',
    record: record('dskey.example.com', 'DS', {
      keyTag: 60485,
      algorithm: 5,
      digestType: 1,
      digest: hex('2BB183AF5F22588179A53B0A98631FAD1A292118'),
    }),
    wire: 'ec45 05 01 2bb183af5f22588179a53b0a98631fad1a292118',
  },
  {
    source: 'RFC 4034 §4.3: NSEC host.example.com. A MX RRSIG NSEC TYPE1234',
    record: record('alfa.example.com', 'NSEC', {
      nextName: 'host.example.com',
      types: ['A', 'TYPE15', 'RRSIG', 'NSEC', 'TYPE1234'],
    }),
    wire: `04686f7374 076578616d706c65 03636f6d 00
           00 06 40 01 00 00 00 03
           04 1b 000000000000000000000000000000000000000000000000000020`,
  },
  {
    source: 'design §4: AUTHKEY prover, Ed25519, notAfter 1700000000',
    record: record('4.4.e164.mimi.arpa', 'AUTHKEY', {
      role: 'prover',
      algorithm: 15,
      notAfter: 1_700_000_000,
      publicKey: KEY,
    }),
    wire: `01 0f 6553f100 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f`,
  },
  {
    source: 'design §4: MAPREF to an uncompressed name, case kept',
    record: record('x', 'MAPREF', 'DP.example'),
    wire: '02 4450 07 6578616d706c65 00',
  },
  {
    source: 'RFC 1035 §3.4.1: A 10.2.0.52',
    record: record('x', 'A', '10.2.0.52'),
    wire: '0a020034',
  },
];

describe('known answers', () => {
  it.each(SVCB_VECTORS)('encodes and decodes SVCB $source', ({ data, decoded, wire }) => {
    const r = record('example.com', 'SVCB', data);
    expect(toHex(encodeRdata(r))).toBe(toHex(hex(wire)));
    expect(decodeRdata('SVCB', hex(wire))).toEqual(decoded ?? data);
  });

  it.each(RDATA_VECTORS)('encodes and decodes $source', ({ record: r, wire }) => {
    expect(toHex(encodeRdata(r))).toBe(toHex(hex(wire)));
    expect(decodeRdata(r.type, hex(wire))).toEqual(r.data);
  });

  it('compresses a small response as RFC 1035 §4.1.4 describes', () => {
    const m = message({
      id: 0x1234,
      flags: { ...FLAGS, aa: true },
      questions: [{ name: 'example.com', type: 'NS', class: 'IN' }],
      answers: [record('example.com', 'NS', 'ns1.example.com')],
    });
    const wire = `1234 8400 0001 0001 0000 0000
                  076578616d706c6503636f6d00 0002 0001     # question, name at offset 12
                  c00c 0002 0001 00000e10 0006 036e7331 c00c # answer: owner and target point to 12`;
    expect(toHex(encodeMessage(m))).toBe(toHex(hex(wire)));
    expect(decodeMessage(hex(wire))).toEqual(m);
  });
});

// ---------------------------------------------------------------------------------------------
// Whole messages

/** A referral from the e164 zone to a DP, with the records this project adds. */
const REFERRAL: Message = message({
  flags: { ...FLAGS, z: true, cd: true },
  questions: [{ name: '8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa', type: 'MAP', class: 'IN' }],
  answers: [
    record('8.1.0.0.6.4.9.7.0.2.4.4.E164.mimi.arpa', 'MAP', Uint8Array.of(0xa1, 0x61, 0x76, 1)),
    record('8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa', 'MAPREF', 'x.dp.msp.example'),
  ],
  authorities: [
    record('4.4.e164.mimi.arpa', 'NS', 'ns1.dp.example'),
    record('4.4.e164.mimi.arpa', 'NS', 'ns2.dp.example'),
    record('4.4.e164.mimi.arpa', 'DS', { keyTag: 3613, algorithm: 15, digestType: 2, digest: KEY }),
    record('4.4.e164.mimi.arpa', 'RRSIG', {
      typeCovered: 'DS',
      algorithm: 15,
      labels: 4,
      originalTtl: 3600,
      expiration: 1_900_000_000,
      inception: 1_700_000_000,
      keyTag: 4242,
      signerName: 'e164.mimi.arpa',
      signature: SIGNATURE,
    }),
    record('4.4.e164.mimi.arpa', 'AUTHKEY', {
      role: 'prover',
      algorithm: 15,
      notAfter: 1_800_000_000,
      publicKey: KEY,
    }),
    record('4\\.4.e164.mimi.arpa', 'NSEC', {
      nextName: '\\000.4\\.4.e164.mimi.arpa',
      types: ['RRSIG', 'NSEC', 'TYPE128'],
    }),
    record('e164.mimi.arpa', 'SOA', {
      mname: 'ns.e164.mimi.arpa',
      rname: 'hostmaster.e164.mimi.arpa',
      serial: 1,
      refresh: 7200,
      retry: 3600,
      expire: 1209600,
      minimum: 300,
    }),
  ],
  additionals: [
    record('ns1.dp.example', 'A', '192.0.2.53'),
    record('ns1.dp.example', 'AAAA', '2001:db8::53'),
    record('ns2.dp.example', 'A', '198.51.100.53'),
    record('_dns.ns1.dp.example', 'SVCB', {
      priority: 1,
      target: 'ns1.dp.example',
      params: { alpn: ['h2'], port: 443, dohpath: '/dns-query{?dns}' },
    }),
  ],
  edns: { ...EDNS, options: [{ code: 10, data: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8) }] },
});

describe('messages', () => {
  it('round-trips a referral with MAP, MAPREF, AUTHKEY, SVCB, DS, RRSIG, NSEC and OPT', () => {
    const bytes = encodeMessage(REFERRAL);
    const decoded = decodeMessage(bytes);
    expect(decoded).toEqual(REFERRAL);
    expect(toHex(encodeMessage(decoded))).toBe(toHex(bytes));
  });

  it('compresses a referral well below its uncompressed size', () => {
    const uncompressedSize = (m: Message): number =>
      12 +
      m.questions.reduce((n, q) => n + encodeName(q.name).length + 4, 0) +
      [...m.answers, ...m.authorities, ...m.additionals].reduce(
        (n, r) => n + encodeRecord(r).length,
        0,
      ) +
      (m.edns === undefined ? 0 : 11 + m.edns.options.reduce((n, o) => n + 4 + o.data.length, 0));
    // Keys and signatures do not compress; names do.
    expect(encodeMessage(REFERRAL).length).toBeLessThan(uncompressedSize(REFERRAL) * 0.75);
    const zone = '4.4.e164.mimi.arpa';
    const servers = ['ns1', 'ns2', 'ns3', 'ns4'].map((n) => `${n}.dp-operator.example`);
    const plain = message({
      questions: [{ name: `8.1.0.0.6.4.9.7.0.2.${zone}`, type: 'MAP', class: 'IN' }],
      authorities: servers.map((s) => record(zone, 'NS', s)),
      additionals: servers.flatMap((s) => [
        record(s, 'A', '192.0.2.1'),
        record(s, 'AAAA', '2001:db8::1'),
      ]),
      edns: EDNS,
    });
    expect(encodeMessage(plain).length).toBeLessThan(uncompressedSize(plain) * 0.55);
  });

  it('never compresses names inside RRSIG, NSEC, SVCB and MAPREF RDATA', () => {
    const bytes = toHex(encodeMessage(REFERRAL));
    const records = [...REFERRAL.answers, ...REFERRAL.authorities, ...REFERRAL.additionals];
    for (const r of records.filter((r) => ['RRSIG', 'NSEC', 'SVCB', 'MAPREF'].includes(r.type))) {
      expect(bytes).toContain(toHex(encodeRdata(r)));
    }
    // NS RDATA, by contrast, is compressed against the names written before it.
    const ns2 = REFERRAL.authorities[1] as ResourceRecord;
    expect(bytes).not.toContain(toHex(encodeRdata(ns2)));
    expect(bytes).toContain('036e7332c0');
  });

  it('compresses case-sensitively, so names come back in the case they were given', () => {
    const decoded = decodeMessage(encodeMessage(REFERRAL));
    expect(decoded.answers[0]?.name).toBe('8.1.0.0.6.4.9.7.0.2.4.4.E164.mimi.arpa');
  });

  it('combines the header RCODE with the OPT extended RCODE (RFC 6891 §6.1.3)', () => {
    const m = message({ rcode: 'BADVERS', edns: { ...EDNS, extendedRcode: 1 } });
    const bytes = encodeMessage(m);
    expect(bytes[3]! & 0xf).toBe(0);
    expect(decodeMessage(bytes)).toEqual(m);
    const big = message({ rcode: 'RCODE4095', edns: { ...EDNS, extendedRcode: 255 } });
    expect(decodeMessage(encodeMessage(big))).toEqual(big);
  });

  it('carries the DO and CO EDNS flags (RFC 3225 §3, RFC 9824 §5)', () => {
    const m = message({ edns: { ...EDNS, dnssecOk: true, compactOk: true } });
    const bytes = encodeMessage(m);
    // The OPT record is last: its flags word is the 2 octets before RDLENGTH (2 octets, 0 here).
    expect([...bytes.subarray(bytes.length - 4, bytes.length - 2)]).toEqual([0xc0, 0x00]);
    expect(decodeMessage(bytes)).toEqual(m);
    const plain = message({ edns: { ...EDNS, dnssecOk: false } });
    expect(decodeMessage(encodeMessage(plain)).edns).not.toHaveProperty('compactOk');
  });

  it('keeps every header flag, the Z bit included', () => {
    const flags: MessageFlags = {
      qr: false,
      opcode: 15,
      aa: true,
      tc: true,
      rd: true,
      ra: true,
      z: true,
      ad: true,
      cd: true,
    };
    const bytes = encodeMessage(message({ flags, rcode: 'REFUSED' }));
    expect(toHex(bytes.subarray(2, 4))).toBe('7ff5');
    expect(decodeMessage(bytes).flags).toEqual(flags);
  });

  it('accepts a Buffer and a subarray as input', () => {
    const bytes = encodeMessage(REFERRAL);
    const padded = new Uint8Array(bytes.length + 3);
    padded.set(bytes, 3);
    expect(decodeMessage(Buffer.from(bytes))).toEqual(REFERRAL);
    expect(decodeMessage(padded.subarray(3))).toEqual(REFERRAL);
  });
});

// ---------------------------------------------------------------------------------------------
// Strictness: every rule, every error code

/** A chain of questions whose names each point to the previous one: `hops` pointers deep. */
function pointerChain(hops: number): Uint8Array {
  const parts = [header(hops + 1, 0, 0, 0), '01 61 00 0001 0001'];
  let previous = 12;
  let at = 12 + 7;
  for (let i = 0; i < hops; i++) {
    parts.push(`${u16(0xc000 | previous)} 0001 0001`);
    previous = at;
    at += 6;
  }
  return hex(parts.join(' '));
}

const LABEL63 = `3f ${'61'.repeat(63)}`;

const MESSAGE_CASES: Array<[string, string, string | Uint8Array]> = [
  ['ERR_WIRE_TRUNCATED', 'a message shorter than the header', '1234 8400 0000 0000 0000'],
  ['ERR_WIRE_TRUNCATED', 'a question name cut short', `${header(1, 0, 0, 0)} 07 6578 0000 0000`],
  [
    'ERR_WIRE_TRUNCATED',
    'RDATA running past the end',
    `${header(0, 1, 0, 0)} 00 0001 0001 0000003c 0004 0102`,
  ],
  [
    'ERR_WIRE_TRUNCATED',
    'counts claiming more records than the bytes hold',
    `${header(1, 3, 0, 0)} ${QUESTION} ${rr('c00c', 1, '01020304')}`,
  ],
  [
    'ERR_WIRE_TRUNCATED',
    'a count of one record too many',
    `${header(1, 2, 0, 0)} ${QUESTION} ${rr('c00c', 1, '01020304')} 00 0001 0001 0000`,
  ],
  [
    'ERR_WIRE_TRAILING_BYTES',
    'a byte after the last record',
    `${header(1, 0, 0, 0)} ${QUESTION} 00`,
  ],
  [
    'ERR_WIRE_TRAILING_BYTES',
    'a count of one record too few',
    `${header(1, 0, 0, 0)} ${QUESTION} ${rr('c00c', 1, '01020304')}`,
  ],
  ['ERR_WIRE_TOO_LARGE', 'a message over 65535 octets', new Uint8Array(MAX_MESSAGE_OCTETS + 1)],
  [
    'ERR_WIRE_TOO_MANY_RECORDS',
    `more than ${MAX_RECORDS_PER_MESSAGE} questions and records`,
    header(1000, 1000, 1000, MAX_RECORDS_PER_MESSAGE - 2999),
  ],
  ['ERR_WIRE_BAD_POINTER', 'a pointer to itself', `${header(1, 0, 0, 0)} c00c 0001 0001`],
  ['ERR_WIRE_BAD_POINTER', 'a forward pointer', `${header(1, 0, 0, 0)} 01 61 c0 12 0001 0001 00`],
  [
    'ERR_WIRE_BAD_POINTER',
    'a pointer into the header',
    `${header(1, 0, 0, 0)} ${QUESTION} `.replace(EXAMPLE, '01 61 c0 02'),
  ],
  [
    'ERR_WIRE_BAD_POINTER',
    'two names pointing at each other',
    `${header(2, 0, 0, 0)} 01 61 c0 13 0001 0001 01 62 c0 0c 0001 0001`,
  ],
  [
    'ERR_WIRE_BAD_POINTER',
    `more than ${MAX_COMPRESSION_POINTERS} pointers for one name`,
    pointerChain(MAX_COMPRESSION_POINTERS + 1),
  ],
  [
    'ERR_WIRE_BAD_POINTER',
    'a pointer in the RRSIG signer',
    `${header(1, 1, 0, 0)} ${QUESTION} ${rr('c00c', 46, `0001 0f 01 0000003c 00000000 00000000 0001 c00c`)}`,
  ],
  [
    'ERR_WIRE_BAD_POINTER',
    'a pointer in the NSEC next name',
    `${header(1, 1, 0, 0)} ${QUESTION} ${rr('c00c', 47, 'c00c 0001 40')}`,
  ],
  [
    'ERR_WIRE_BAD_POINTER',
    'a pointer in the SVCB target',
    `${header(1, 1, 0, 0)} ${QUESTION} ${rr('c00c', 64, '0001 c00c')}`,
  ],
  [
    'ERR_WIRE_BAD_POINTER',
    'a pointer in MAPREF',
    `${header(1, 1, 0, 0)} ${QUESTION} ${rr('c00c', 65401, '01 61 c00c')}`,
  ],
  ['ERR_WIRE_BAD_LABEL', 'label type 0x40', `${header(1, 0, 0, 0)} 41 00 0001 0001`],
  ['ERR_WIRE_BAD_LABEL', 'label type 0x80', `${header(1, 0, 0, 0)} 81 61 00 0001 0001`],
  [
    'ERR_WIRE_NAME_TOO_LONG',
    'a name of 256 octets',
    `${header(1, 0, 0, 0)} ${LABEL63} ${LABEL63} ${LABEL63} 3e ${'61'.repeat(62)} 00 0001 0001`,
  ],
  [
    'ERR_WIRE_NAME_TOO_LONG',
    'a name over 255 octets through a pointer',
    `${header(2, 0, 0, 0)} ${LABEL63} ${LABEL63} ${LABEL63} 3a ${'61'.repeat(58)} 00 0001 0001
     03 616161 c00c 0001 0001`,
  ],
  [
    'ERR_WIRE_RDLENGTH',
    'an A record of 5 octets',
    `${header(1, 1, 0, 0)} ${QUESTION} ${rr('c00c', 1, '0102030405')}`,
  ],
  [
    'ERR_WIRE_RDLENGTH',
    'an NS record with an octet after the name',
    `${header(1, 1, 0, 0)} ${QUESTION} ${rr('c00c', 2, 'c00c 00')}`,
  ],
  [
    'ERR_WIRE_RDLENGTH',
    'an SOA record without MINIMUM',
    `${header(1, 1, 0, 0)} ${QUESTION} ${rr('c00c', 6, `c00c c00c ${'00000001'.repeat(4)}`)}`,
  ],
  [
    'ERR_WIRE_RDLENGTH',
    'an NS name running past RDLENGTH',
    `${header(1, 1, 0, 0)} ${QUESTION} c00c 0002 0001 0000003c 0002 01 61 00`,
  ],
  ['ERR_WIRE_BAD_RDATA', 'an empty TXT', `${header(1, 1, 0, 0)} ${QUESTION} ${rr('c00c', 16, '')}`],
  [
    'ERR_WIRE_BAD_BITMAP',
    'an NSEC window of length 0',
    `${header(1, 1, 0, 0)} ${QUESTION} ${rr('c00c', 47, '00 0000')}`,
  ],
  [
    'ERR_WIRE_BAD_SVCB',
    'SVCB keys out of order',
    `${header(1, 1, 0, 0)} ${QUESTION} ${rr('c00c', 64, '0001 00 0003 0002 0035 0001 0003 026832')}`,
  ],
  [
    'ERR_WIRE_BAD_OPT',
    'OPT in the answer section',
    `${header(1, 1, 0, 0)} ${QUESTION} 00 0029 04d0 00000000 0000`,
  ],
  [
    'ERR_WIRE_BAD_OPT',
    'two OPT records',
    `${header(1, 0, 0, 2)} ${QUESTION} 00 0029 04d0 00000000 0000 00 0029 04d0 00000000 0000`,
  ],
  [
    'ERR_WIRE_BAD_OPT',
    'OPT owned by a name other than the root',
    `${header(1, 0, 0, 1)} ${QUESTION} c00c 0029 04d0 00000000 0000`,
  ],
  [
    'ERR_WIRE_BAD_OPT',
    'an EDNS option running past the OPT RDATA',
    `${header(1, 0, 0, 1)} ${QUESTION} 00 0029 04d0 00000000 0006 000a 0004 0102`,
  ],
  [
    'ERR_WIRE_BAD_OPT',
    'a truncated EDNS option header',
    `${header(1, 0, 0, 1)} ${QUESTION} 00 0029 04d0 00000000 0002 000a`,
  ],
  [
    'ERR_WIRE_BAD_TYPE',
    'a record of the query-only type ANY',
    `${header(1, 1, 0, 0)} ${QUESTION} ${rr('c00c', 255, '')}`,
  ],
  [
    'ERR_WIRE_BAD_TYPE',
    'a record of the reserved type 0',
    `${header(1, 1, 0, 0)} ${QUESTION} ${rr('c00c', 0, '')}`,
  ],
];

describe('strict message decoding', () => {
  it.each(MESSAGE_CASES)('throws %s for %s', (code, _what, input) => {
    const bytes = typeof input === 'string' ? hex(input) : input;
    expect(wireError(() => decodeMessage(bytes)).code).toBe(code);
  });

  it(`follows exactly ${MAX_COMPRESSION_POINTERS} pointers for one name`, () => {
    const m = decodeMessage(pointerChain(MAX_COMPRESSION_POINTERS));
    expect(m.questions.every((q) => q.name === 'a')).toBe(true);
  });

  it('accepts a name of exactly 255 octets through a pointer', () => {
    const bytes =
      hex(`${header(2, 0, 0, 0)} ${LABEL63} ${LABEL63} ${LABEL63} 3a ${'61'.repeat(58)} 00
      0001 0001 02 6161 c00c 0001 0001`);
    expect(decodeMessage(bytes).questions[1]?.name.length).toBe(2 + 1 + 63 * 3 + 3 + 58);
  });

  it('rejects a 65535-octet message with huge counts at once', () => {
    const bytes = new Uint8Array(MAX_MESSAGE_OCTETS).fill(0xc0);
    bytes.set(hex(header(0xffff, 0xffff, 0xffff, 0xffff)));
    const start = performance.now();
    expect(wireError(() => decodeMessage(bytes)).code).toBe('ERR_WIRE_TOO_MANY_RECORDS');
    bytes.set(hex(header(MAX_RECORDS_PER_MESSAGE, 0, 0, 0)));
    expect(wireError(() => decodeMessage(bytes)).code).toBe('ERR_WIRE_BAD_POINTER');
    bytes.set(hex(header(0, MAX_RECORDS_PER_MESSAGE, 0, 0)));
    bytes.fill(0, 12);
    expect(wireError(() => decodeMessage(bytes)).code).toBe('ERR_WIRE_BAD_TYPE');
    expect(performance.now() - start).toBeLessThan(50);
  });

  it('decodes a full 65535-octet message of the most records allowed', () => {
    // MAX_RECORDS_PER_MESSAGE TYPE65280 records at the root, padded by the last one's RDATA.
    const small = rr('00', 65280, '');
    const count = MAX_RECORDS_PER_MESSAGE;
    const used = 12 + (count - 1) * 11 + 11;
    const last = rr('00', 65280, '00'.repeat(MAX_MESSAGE_OCTETS - used));
    const bytes = hex(`${header(0, count, 0, 0)} ${small.repeat(count - 1)} ${last}`);
    expect(bytes.length).toBe(MAX_MESSAGE_OCTETS);
    const m = decodeMessage(bytes);
    expect(m.answers).toHaveLength(count);
    expect(encodeMessage(m)).toEqual(bytes);
  });
});

const RDATA_CASES: Array<[string, string, RRType, string]> = [
  ['ERR_WIRE_RDLENGTH', 'an AAAA of 15 octets', 'AAAA', '00'.repeat(15)],
  ['ERR_WIRE_RDLENGTH', 'a DS without its digest type', 'DS', '0001 0f'],
  ['ERR_WIRE_RDLENGTH', 'a TXT string longer than the RDATA', 'TXT', '05 6162'],
  [
    'ERR_WIRE_RDLENGTH',
    'NSEC3PARAM with an octet after the salt',
    'NSEC3PARAM',
    '01 00 0000 00 ff',
  ],
  ['ERR_WIRE_RDLENGTH', 'a MAPREF name with an octet after it', 'MAPREF', '01 61 00 00'],
  ['ERR_WIRE_RDLENGTH', 'a MAPREF name running past the RDATA', 'MAPREF', '03 6161'],
  ['ERR_WIRE_BAD_POINTER', 'a pointer in NS RDATA decoded alone', 'NS', 'c000'],
  ['ERR_WIRE_BAD_RDATA', 'a DS with an empty digest', 'DS', '0001 0f 02'],
  ['ERR_WIRE_BAD_RDATA', 'a DNSKEY with an empty key', 'DNSKEY', '0101 03 0f'],
  ['ERR_WIRE_BAD_RDATA', 'an NSEC3 hash of length 0', 'NSEC3', '01 00 0000 00 00'],
  ['ERR_WIRE_BAD_RDATA', 'an empty MAP', 'MAP', ''],
  ['ERR_WIRE_BAD_RDATA', 'AUTHKEY role 3', 'AUTHKEY', `03 0f 00000000 ${'00'.repeat(32)}`],
  ['ERR_WIRE_BAD_RDATA', 'AUTHKEY role 0', 'AUTHKEY', `00 0f 00000000 ${'00'.repeat(32)}`],
  ['ERR_WIRE_BAD_RDATA', 'AUTHKEY algorithm 13', 'AUTHKEY', `01 0d 00000000 ${'00'.repeat(32)}`],
  [
    'ERR_WIRE_BAD_RDATA',
    'AUTHKEY key of 31 octets',
    'AUTHKEY',
    `01 0f 00000000 ${'00'.repeat(31)}`,
  ],
  [
    'ERR_WIRE_BAD_RDATA',
    'AUTHKEY key of 33 octets',
    'AUTHKEY',
    `02 0f 00000000 ${'00'.repeat(33)}`,
  ],
  ['ERR_WIRE_TOO_LARGE', 'a MAP over the limit', 'MAP', '00'.repeat(MAX_MAP_RDATA_OCTETS + 1)],
  ['ERR_WIRE_BAD_BITMAP', 'a window of 33 octets', 'NSEC', `00 00 21 ${'01'.repeat(33)}`],
  ['ERR_WIRE_BAD_BITMAP', 'windows out of order', 'NSEC', '00 01 01 40 00 01 40'],
  ['ERR_WIRE_BAD_BITMAP', 'a repeated window', 'NSEC', '00 00 01 40 00 01 20'],
  ['ERR_WIRE_BAD_BITMAP', 'a window ending in a zero octet', 'NSEC', '00 00 02 40 00'],
  ['ERR_WIRE_BAD_BITMAP', 'a window header cut short', 'NSEC', '00 00'],
  ['ERR_WIRE_BAD_BITMAP', 'a window past the RDATA', 'NSEC', '00 00 03 40 01'],
  [
    'ERR_WIRE_BAD_BITMAP',
    'an NSEC3 bitmap with an empty window',
    'NSEC3',
    '01 00 0000 00 01 aa 00 00',
  ],
  ['ERR_WIRE_BAD_SVCB', 'a repeated key', 'SVCB', '0001 00 0003 0002 0035 0003 0002 0035'],
  ['ERR_WIRE_BAD_SVCB', 'AliasMode with params', 'SVCB', '0000 00 0003 0002 0035'],
  ['ERR_WIRE_BAD_SVCB', 'mandatory naming an absent key', 'SVCB', '0001 00 0000 0002 0003'],
  [
    'ERR_WIRE_BAD_SVCB',
    'mandatory naming itself',
    'SVCB',
    '0001 00 0000 0004 0000 0003 0003 0002 0035',
  ],
  ['ERR_WIRE_BAD_SVCB', 'mandatory with an odd length', 'SVCB', '0001 00 0000 0001 00'],
  ['ERR_WIRE_BAD_SVCB', 'mandatory empty', 'SVCB', '0001 00 0000 0000'],
  [
    'ERR_WIRE_BAD_SVCB',
    'mandatory keys out of order',
    'SVCB',
    '0001 00 0000 0004 0003 0001 0001 0003 026832 0003 0002 0035',
  ],
  ['ERR_WIRE_BAD_SVCB', 'an empty alpn', 'SVCB', '0001 00 0001 0000'],
  ['ERR_WIRE_BAD_SVCB', 'an alpn id of length 0', 'SVCB', '0001 00 0001 0001 00'],
  ['ERR_WIRE_BAD_SVCB', 'an alpn id past the value', 'SVCB', '0001 00 0001 0002 05 68'],
  ['ERR_WIRE_BAD_SVCB', 'a port of 3 octets', 'SVCB', '0001 00 0003 0003 000035'],
  ['ERR_WIRE_BAD_SVCB', 'a port of 1 octet', 'SVCB', '0001 00 0003 0001 35'],
  ['ERR_WIRE_BAD_SVCB', 'no-default-alpn with a value', 'SVCB', '0001 00 0002 0001 00'],
  ['ERR_WIRE_BAD_SVCB', 'an ipv4hint of 5 octets', 'SVCB', '0001 00 0004 0005 c000020100'],
  ['ERR_WIRE_BAD_SVCB', 'an empty ipv4hint', 'SVCB', '0001 00 0004 0000'],
  ['ERR_WIRE_BAD_SVCB', 'an ipv6hint of 15 octets', 'SVCB', `0001 00 0006 000f ${'00'.repeat(15)}`],
  ['ERR_WIRE_BAD_SVCB', 'an empty ech', 'SVCB', '0001 00 0005 0000'],
  ['ERR_WIRE_BAD_SVCB', 'a dohpath that is not UTF-8', 'SVCB', '0001 00 0007 0002 2fff'],
  ['ERR_WIRE_BAD_SVCB', 'the invalid key 65535', 'SVCB', '0001 00 ffff 0000'],
  ['ERR_WIRE_BAD_SVCB', 'a value past the RDATA', 'SVCB', '0001 00 0003 0004 0035'],
  ['ERR_WIRE_BAD_SVCB', 'a param header cut short', 'SVCB', '0001 00 0003 00'],
  ['ERR_WIRE_BAD_TYPE', 'OPT as a record', 'OPT', ''],
  ['ERR_WIRE_BAD_TYPE', 'the query type ANY', 'TYPE255', ''],
];

describe('strict RDATA decoding', () => {
  it.each(RDATA_CASES)('throws %s for %s', (code, _what, type, rdata) => {
    expect(wireError(() => decodeRdata(type, hex(rdata))).code).toBe(code);
  });

  it(`accepts a MAP of exactly ${MAX_MAP_RDATA_OCTETS} octets`, () => {
    const map = new Uint8Array(MAX_MAP_RDATA_OCTETS).fill(7);
    expect(decodeRdata('MAP', encodeRdata(record('x', 'MAP', map)))).toEqual(map);
  });

  it('accepts NSEC3 with an empty bitmap, as an empty non-terminal has (RFC 5155 §7.1)', () => {
    expect(decodeRdata('NSEC3', hex('01 00 0000 00 01 aa'))).toMatchObject({ types: [] });
  });

  it('keeps a DNSKEY protocol other than 3 for the validator to judge (RFC 4034 §2.1.2)', () => {
    expect(decodeRdata('DNSKEY', hex('0100 02 0f 01'))).toMatchObject({ protocol: 2 });
  });
});

const SVCB: SvcbRecord = { priority: 1, target: '.', params: {} };
type SvcbRecord = { priority: number; target: string; params: SvcParams };

function svcb(params: SvcParams, priority = 1): ResourceRecord {
  return record('x', 'SVCB', { ...SVCB, priority, params });
}

const ENCODE_CASES: Array<[string, string, () => unknown]> = [
  [
    'ERR_WIRE_BAD_VALUE',
    'a record whose data has the wrong shape',
    () =>
      encodeRdata({
        name: 'x',
        type: 'SOA',
        class: 'IN',
        ttl: 0,
        data: null,
      } as unknown as ResourceRecord),
  ],
  ['ERR_WIRE_BAD_VALUE', 'a port over 65535', () => encodeRdata(svcb({ port: 65536 }))],
  [
    'ERR_WIRE_BAD_VALUE',
    'a negative TTL',
    () => encodeRecord({ ...record('x', 'A', '1.2.3.4'), ttl: -1 }),
  ],
  [
    'ERR_WIRE_BAD_VALUE',
    'a TTL of 2^32',
    () => encodeRecord({ ...record('x', 'A', '1.2.3.4'), ttl: 2 ** 32 }),
  ],
  [
    'ERR_WIRE_BAD_VALUE',
    'an IPv4 address with a leading zero',
    () => encodeRdata(record('x', 'A', '01.2.3.4')),
  ],
  [
    'ERR_WIRE_BAD_VALUE',
    'an IPv6 address with a zone',
    () => encodeRdata(record('x', 'AAAA', 'fe80::1%eth0')),
  ],
  [
    'ERR_WIRE_BAD_VALUE',
    'an IPv6 address with two ::',
    () => encodeRdata(record('x', 'AAAA', '1::2::3')),
  ],
  ['ERR_WIRE_BAD_VALUE', 'a bad ipv4hint', () => encodeRdata(svcb({ ipv4hint: ['256.1.1.1'] }))],
  [
    'ERR_WIRE_BAD_VALUE',
    'opcode 16',
    () => encodeMessage(message({ flags: { ...FLAGS, opcode: 16 } })),
  ],
  ['ERR_WIRE_BAD_VALUE', 'an id over 16 bits', () => encodeMessage(message({ id: 65536 }))],
  [
    'ERR_WIRE_BAD_VALUE',
    'BADVERS without EDNS',
    () => encodeMessage(message({ rcode: 'BADVERS' })),
  ],
  [
    'ERR_WIRE_BAD_VALUE',
    'the generic form of a named rcode',
    () => encodeMessage(message({ rcode: 'RCODE3' })),
  ],
  [
    'ERR_WIRE_BAD_VALUE',
    'a fractional RRSIG time',
    () =>
      encodeRdata(
        record('x', 'RRSIG', {
          typeCovered: 'A',
          algorithm: 15,
          labels: 1,
          originalTtl: 0,
          expiration: 1.5,
          inception: 0,
          keyTag: 0,
          signerName: 'x',
          signature: new Uint8Array(0),
        }),
      ),
  ],
  [
    'ERR_WIRE_BAD_TYPE',
    'the generic form of a named type',
    () =>
      encodeRecord({
        name: 'x',
        type: 'TYPE1',
        class: 'IN',
        ttl: 0,
        data: Uint8Array.of(1, 2, 3, 4),
      }),
  ],
  [
    'ERR_WIRE_BAD_TYPE',
    'the generic form of a named class',
    () => encodeRecord({ ...record('x', 'A', '1.2.3.4'), class: 'CLASS1' }),
  ],
  [
    'ERR_WIRE_BAD_TYPE',
    'a record of type ANY',
    () =>
      encodeRecord({ name: 'x', type: 'TYPE255', class: 'IN', ttl: 0, data: new Uint8Array(0) }),
  ],
  [
    'ERR_WIRE_BAD_LABEL',
    'a label of 64 octets',
    () => encodeRdata(record('x', 'NS', `${'a'.repeat(64)}.b`)),
  ],
  [
    'ERR_WIRE_NAME_TOO_LONG',
    'an owner over 255 octets',
    () => encodeRecord(record(Array(128).fill('a').join('.'), 'A', '1.2.3.4')),
  ],
  ['ERR_WIRE_BAD_RDATA', 'an empty TXT', () => encodeRdata(record('x', 'TXT', []))],
  [
    'ERR_WIRE_BAD_RDATA',
    'a TXT string of 256 octets',
    () => encodeRdata(record('x', 'TXT', [new Uint8Array(256)])),
  ],
  ['ERR_WIRE_BAD_RDATA', 'an empty MAP', () => encodeRdata(record('x', 'MAP', new Uint8Array(0)))],
  [
    'ERR_WIRE_BAD_RDATA',
    'an AUTHKEY with algorithm 13',
    () =>
      encodeRdata(
        record('x', 'AUTHKEY', { role: 'csip', algorithm: 13, notAfter: 0, publicKey: KEY }),
      ),
  ],
  [
    'ERR_WIRE_BAD_RDATA',
    'an AUTHKEY key of 31 octets',
    () =>
      encodeRdata(
        record('x', 'AUTHKEY', {
          role: 'csip',
          algorithm: 15,
          notAfter: 0,
          publicKey: KEY.subarray(1),
        }),
      ),
  ],
  [
    'ERR_WIRE_BAD_RDATA',
    'an NSEC3 hash of 0 octets',
    () =>
      encodeRdata(
        record('x', 'NSEC3', {
          hashAlgorithm: 1,
          flags: 0,
          iterations: 0,
          salt: new Uint8Array(0),
          nextHashedOwner: new Uint8Array(0),
          types: [],
        }),
      ),
  ],
  [
    'ERR_WIRE_TOO_LARGE',
    'a MAP over the limit',
    () => encodeRdata(record('x', 'MAP', new Uint8Array(MAX_MAP_RDATA_OCTETS + 1))),
  ],
  [
    'ERR_WIRE_TOO_LARGE',
    'a message over 65535 octets',
    () =>
      encodeMessage(
        message({
          answers: Array.from({ length: 9 }, () =>
            record('x', 'MAP', new Uint8Array(MAX_MAP_RDATA_OCTETS)),
          ),
        }),
      ),
  ],
  [
    'ERR_WIRE_TOO_MANY_RECORDS',
    `more than ${MAX_RECORDS_PER_MESSAGE} records`,
    () =>
      encodeMessage(
        message({
          answers: Array.from({ length: MAX_RECORDS_PER_MESSAGE + 1 }, () =>
            record('.', 'TYPE65280', new Uint8Array(0)),
          ),
        }),
      ),
  ],
  [
    'ERR_WIRE_BAD_BITMAP',
    'a type listed twice',
    () => encodeRdata(record('x', 'NSEC', { nextName: 'y', types: ['A', 'TYPE1'] })),
  ],
  ['ERR_WIRE_BAD_SVCB', 'AliasMode with params', () => encodeRdata(svcb({ port: 53 }, 0))],
  [
    'ERR_WIRE_BAD_SVCB',
    'mandatory naming an absent key',
    () => encodeRdata(svcb({ mandatory: ['port'] })),
  ],
  [
    'ERR_WIRE_BAD_SVCB',
    'mandatory naming itself',
    () => encodeRdata(svcb({ mandatory: ['mandatory', 'port'], port: 1 })),
  ],
  [
    'ERR_WIRE_BAD_SVCB',
    'mandatory naming a key twice',
    () => encodeRdata(svcb({ mandatory: ['port', 'port'], port: 1 })),
  ],
  [
    'ERR_WIRE_BAD_SVCB',
    'mandatory with an unknown key name',
    () => encodeRdata(svcb({ mandatory: ['ohttp'] })),
  ],
  ['ERR_WIRE_BAD_SVCB', 'an empty alpn id', () => encodeRdata(svcb({ alpn: [''] }))],
  ['ERR_WIRE_BAD_SVCB', 'an alpn id beyond Latin-1', () => encodeRdata(svcb({ alpn: ['h€'] }))],
  [
    'ERR_WIRE_BAD_SVCB',
    'an unknown key that has a typed field',
    () => encodeRdata(svcb({ unknown: [{ key: 3, value: Uint8Array.of(0, 53) }] })),
  ],
  [
    'ERR_WIRE_BAD_SVCB',
    'the same unknown key twice',
    () =>
      encodeRdata(
        svcb({
          unknown: [
            { key: 9, value: new Uint8Array(0) },
            { key: 9, value: new Uint8Array(0) },
          ],
        }),
      ),
  ],
  [
    'ERR_WIRE_BAD_SVCB',
    'the invalid key 65535',
    () => encodeRdata(svcb({ unknown: [{ key: 65535, value: new Uint8Array(0) }] })),
  ],
  [
    'ERR_WIRE_BAD_SVCB',
    'a dohpath with a lone surrogate',
    () => encodeRdata(svcb({ dohpath: '/\ud800' })),
  ],
  [
    'ERR_WIRE_BAD_OPT',
    'an extended RCODE that does not match rcode',
    () => encodeMessage(message({ rcode: 'BADVERS', edns: EDNS })),
  ],
];

describe('strict encoding', () => {
  it.each(ENCODE_CASES)('throws %s for %s', (code, _what, encode) => {
    expect(wireError(encode).code).toBe(code);
  });

  it('produces every documented error code in these tests', () => {
    const produced = new Set([
      ...MESSAGE_CASES.map(([code]) => code),
      ...RDATA_CASES.map(([code]) => code),
      ...ENCODE_CASES.map(([code]) => code),
    ]);
    // ERR_WIRE_INTERNAL marks a fault in the codec itself: the fuzz tests assert it never occurs.
    expect(WIRE_ERROR_CODES.filter((c) => !produced.has(c))).toEqual(['ERR_WIRE_INTERNAL']);
  });
});

// ---------------------------------------------------------------------------------------------
// Property tests

const RCODE_NAMES: Record<number, Rcode> = {
  0: 'NOERROR',
  1: 'FORMERR',
  2: 'SERVFAIL',
  3: 'NXDOMAIN',
  4: 'NOTIMP',
  5: 'REFUSED',
  9: 'NOTAUTH',
  16: 'BADVERS',
};

const rcodeOf = (code: number): Rcode => RCODE_NAMES[code] ?? `RCODE${code}`;

const u8 = fc.integer({ min: 0, max: 0xff });
const u16a = fc.integer({ min: 0, max: 0xffff });
const u32a = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (minLength: number, maxLength: number): fc.Arbitrary<Uint8Array> =>
  fc.uint8Array({ minLength, maxLength });

const labelArb = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[a-zA-Z0-9-]{1,10}$/).map((s) => Buffer.from(s)) },
  { weight: 1, arbitrary: bytes(1, 63) },
);
const SUFFIXES = ['mimi.arpa', 'e164.mimi.arpa', 'dp.example', 'Example.COM', '.'];
const nameArb = fc
  .tuple(fc.array(labelArb, { maxLength: 3 }), fc.constantFrom(...SUFFIXES))
  .map(([labels, suffix]) => {
    const prefix = formatLabels(labels.map((l) => new Uint8Array(l)));
    if (labels.length === 0) return suffix;
    return suffix === '.' ? prefix : `${prefix}.${suffix}`;
  });

const ipv4Arb = bytes(4, 4).map((b) => [...b].join('.'));
const ipv6Arb = bytes(16, 16).map((b) => decodeRdata('AAAA', b) as string);
const typesArb = fc
  .uniqueArray(u16a, { maxLength: 8 })
  .map((codes) => codes.sort((a, b) => a - b).map(codeToType));
const genericTypeArb = fc
  .integer({ min: 1, max: 0xffff })
  .filter((n) => codeToType(n).startsWith('TYPE') && !(n >= 251 && n <= 255))
  .map((n) => `TYPE${n}` as const);
const classArb: fc.Arbitrary<RRClass> = fc.constantFrom('IN', 'IN', 'CH', 'HS', 'ANY', 'CLASS254');

const SVC_NAMES = [
  'mandatory',
  'alpn',
  'no-default-alpn',
  'port',
  'ipv4hint',
  'ech',
  'ipv6hint',
  'dohpath',
  'ohttp',
];
const svcParamsArb: fc.Arbitrary<SvcParams> = fc
  .record(
    {
      // ALPN ids are octet strings, carried as Latin-1 text.
      alpn: fc.array(
        bytes(1, 8).map((b) => String.fromCharCode(...b)),
        { minLength: 1, maxLength: 3 },
      ),
      noDefaultAlpn: fc.constant(true as const),
      port: u16a,
      ipv4hint: fc.array(ipv4Arb, { minLength: 1, maxLength: 3 }),
      ech: bytes(1, 16),
      ipv6hint: fc.array(ipv6Arb, { minLength: 1, maxLength: 2 }),
      dohpath: fc.string({ unit: 'grapheme', maxLength: 20 }),
      ohttp: fc.constant(true as const),
      unknown: fc
        .uniqueArray(fc.record({ key: fc.integer({ min: 9, max: 65534 }), value: bytes(0, 8) }), {
          selector: (e) => e.key,
          minLength: 1,
          maxLength: 3,
        })
        .map((list) => list.sort((a, b) => a.key - b.key)),
    },
    { requiredKeys: [] },
  )
  .chain((params) => {
    const fields: Record<string, number> = {
      alpn: 1,
      noDefaultAlpn: 2,
      port: 3,
      ipv4hint: 4,
      ech: 5,
      ipv6hint: 6,
      dohpath: 7,
      ohttp: 8,
    };
    const keys = [
      ...Object.keys(params).flatMap((k) => (k in fields ? [fields[k] as number] : [])),
      ...(params.unknown ?? []).map((u) => u.key),
    ].sort((a, b) => a - b);
    if (keys.length === 0) return fc.constant(params);
    return fc
      .subarray(keys, { minLength: 0 })
      .map((chosen) =>
        chosen.length === 0
          ? params
          : { ...params, mandatory: chosen.map((k) => SVC_NAMES[k] ?? `key${k}`) },
      );
  });

const svcbArb = fc.oneof(
  nameArb.map((target) => ({ priority: 0, target, params: {} })),
  fc.record({
    priority: fc.integer({ min: 1, max: 0xffff }),
    target: nameArb,
    params: svcParamsArb,
  }),
);

const dataArbs: Array<fc.Arbitrary<[ResourceRecord['type'], ResourceRecord['data']]>> = [
  ipv4Arb.map((d) => ['A', d]),
  ipv6Arb.map((d) => ['AAAA', d]),
  nameArb.map((d) => ['NS', d]),
  nameArb.map((d) => ['CNAME', d]),
  fc.array(bytes(0, 40), { minLength: 1, maxLength: 3 }).map((d) => ['TXT', d]),
  fc
    .record({
      mname: nameArb,
      rname: nameArb,
      serial: u32a,
      refresh: u32a,
      retry: u32a,
      expire: u32a,
      minimum: u32a,
    })
    .map((d) => ['SOA', d]),
  fc
    .record({ keyTag: u16a, algorithm: u8, digestType: u8, digest: bytes(1, 48) })
    .map((d) => ['DS', d]),
  fc
    .record({ flags: u16a, protocol: u8, algorithm: u8, publicKey: bytes(1, 40) })
    .map((d) => ['DNSKEY', d]),
  fc
    .record({
      typeCovered: u16a.map(codeToType),
      algorithm: u8,
      labels: u8,
      originalTtl: u32a,
      expiration: u32a,
      inception: u32a,
      keyTag: u16a,
      signerName: nameArb,
      signature: bytes(0, 64),
    })
    .map((d) => ['RRSIG', d]),
  fc.record({ nextName: nameArb, types: typesArb }).map((d) => ['NSEC', d]),
  fc
    .record({
      hashAlgorithm: u8,
      flags: u8,
      iterations: u16a,
      salt: bytes(0, 8),
      nextHashedOwner: bytes(1, 32),
      types: typesArb,
    })
    .map((d) => ['NSEC3', d]),
  fc
    .record({ hashAlgorithm: u8, flags: u8, iterations: u16a, salt: bytes(0, 8) })
    .map((d) => ['NSEC3PARAM', d]),
  svcbArb.map((d) => ['SVCB', d]),
  bytes(1, 200).map((d) => ['MAP', d]),
  nameArb.map((d) => ['MAPREF', d]),
  fc
    .record({
      role: fc.constantFrom('prover' as const, 'csip' as const),
      algorithm: fc.constant(15),
      notAfter: u32a,
      publicKey: bytes(32, 32),
    })
    .map((d) => ['AUTHKEY', d]),
];

const recordArb: fc.Arbitrary<ResourceRecord> = fc
  .tuple(nameArb, classArb, u32a, fc.oneof(...dataArbs, fc.tuple(genericTypeArb, bytes(0, 30))))
  .map(
    ([name, klass, ttl, [type, data]]) =>
      ({ name, type, class: klass, ttl, data }) as ResourceRecord,
  );

const questionArb: fc.Arbitrary<Question> = fc.record({
  name: nameArb,
  type: fc.oneof(
    fc.constantFrom(
      'ANY' as const,
      'AXFR' as const,
      'IXFR' as const,
      'MAP' as const,
      'SVCB' as const,
    ),
    u16a.filter((n) => n !== 251 && n !== 252 && n !== 255).map(codeToType),
  ),
  class: classArb,
});

const flagsArb: fc.Arbitrary<MessageFlags> = fc.record({
  qr: fc.boolean(),
  opcode: fc.integer({ min: 0, max: 15 }),
  aa: fc.boolean(),
  tc: fc.boolean(),
  rd: fc.boolean(),
  ra: fc.boolean(),
  z: fc.boolean(),
  ad: fc.boolean(),
  cd: fc.boolean(),
});

const ednsArb = fc.record({
  udpPayloadSize: u16a,
  version: u8,
  dnssecOk: fc.boolean(),
  options: fc.array(fc.record({ code: u16a, data: bytes(0, 12) }), { maxLength: 3 }),
});

const messageArb: fc.Arbitrary<Message> = fc
  .record({
    id: u16a,
    flags: flagsArb,
    questions: fc.array(questionArb, { maxLength: 2 }),
    answers: fc.array(recordArb, { maxLength: 5 }),
    authorities: fc.array(recordArb, { maxLength: 5 }),
    additionals: fc.array(recordArb, { maxLength: 5 }),
    edns: fc.option(ednsArb, { nil: undefined }),
    rcode: fc.integer({ min: 0, max: 0xfff }),
  })
  .map(({ edns, rcode, ...rest }) => {
    if (edns === undefined) return { ...rest, rcode: rcodeOf(rcode & 0xf) };
    return { ...rest, rcode: rcodeOf(rcode), edns: { ...edns, extendedRcode: rcode >> 4 } };
  });

describe('properties', () => {
  it('decodes every encoded message back to the same model and the same bytes', () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const bytes = encodeMessage(m);
        const decoded = decodeMessage(bytes);
        expect(decoded).toEqual(m);
        expect(toHex(encodeMessage(decoded))).toBe(toHex(bytes));
      }),
      { numRuns: 1000, seed: 0x5eed },
    );
  });

  it('decodes every encoded RDATA back to the same data', () => {
    fc.assert(
      fc.property(recordArb, (r) => {
        expect(decodeRdata(r.type, encodeRdata(r))).toEqual(r.data);
        const canonical = encodeRdata(r, { canonical: true });
        expect(canonical.length).toBe(encodeRdata(r).length);
      }),
      { numRuns: 2000, seed: 0x5eed },
    );
  });

  it('round-trips any name through its wire form', () => {
    fc.assert(
      fc.property(fc.array(bytes(1, 63), { maxLength: 3 }), (labels) => {
        const name = formatLabels(labels);
        const wire = encodeName(name);
        expect(decodeName(wire)).toEqual({ name, end: wire.length });
      }),
      { numRuns: 1000, seed: 0x5eed },
    );
  });
});
