import { describe, expect, it } from 'vitest';
import {
  decodeMessage,
  decodeRdata,
  encodeCbor,
  encodeMessage,
  encodeRdata,
  formatRecord,
  KEYCONF_KINDS,
  MAX_KEYCONF_CONFIG_OCTETS,
  parseZoneFile,
  record,
  responseFlags,
  RR_TYPE_KEYCONF,
  typeToCode,
  WireError,
  type CborValue,
  type KeyconfData,
  type Message,
  type WireErrorCode,
} from '../src/index.js';

const hex = (text: string): Uint8Array =>
  new Uint8Array(Buffer.from(text.replace(/ /g, ''), 'hex'));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

const KEY: KeyconfData = {
  kind: 'ohttp',
  // RFC 9458 Appendix A's key config: key id 1, X25519, HKDF-SHA256 with AES-128-GCM.
  config: hex(
    '01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e79815500080001000100010003',
  ),
  notBefore: 1_767_225_600,
  notAfter: 1_769_817_600,
};

function wireError(fn: () => unknown): WireError {
  try {
    fn();
  } catch (error) {
    if (error instanceof WireError) return error;
    throw error;
  }
  throw new Error('no error thrown');
}

/** KEYCONF RDATA of an arbitrary CBOR map, for what an honest encoder never writes. */
function rdataOf(fields: Record<string, CborValue>): Uint8Array {
  return encodeCbor(fields);
}

const GOOD_FIELDS: Record<string, CborValue> = {
  v: 1,
  kind: 'ohttp',
  cfg: KEY.config,
  nbf: KEY.notBefore,
  exp: KEY.notAfter,
};

describe('KEYCONF RDATA', () => {
  it('is private type 65403', () => {
    expect(RR_TYPE_KEYCONF).toBe(65403);
    expect(typeToCode('KEYCONF')).toBe(65403);
    expect(decodeRdata('KEYCONF', encodeRdata(record('x', 'KEYCONF', KEY, 60)))).toEqual(KEY);
  });

  it('is the deterministic CBOR map {v, kind, cfg, nbf, exp}', () => {
    const rdata = encodeRdata(
      record('x', 'KEYCONF', { kind: 'odoh', config: hex('0102'), notBefore: 1, notAfter: 2 }, 60),
    );
    // a5: map of 5; keys by encoded length, then bytewise (RFC 8949 §4.2.1): v, cfg, exp, nbf,
    // kind.
    expect(toHex(rdata)).toBe(
      'a5' +
        '6176' +
        '01' +
        '63636667' +
        '420102' +
        '63657870' +
        '02' +
        '636e6266' +
        '01' +
        '646b696e64' +
        '646f646f68',
    );
    expect(rdata).toEqual(
      rdataOf({ ...GOOD_FIELDS, kind: 'odoh', cfg: hex('0102'), nbf: 1, exp: 2 }),
    );
  });

  it.each(KEYCONF_KINDS.map((kind) => [kind]))('round-trips kind %s inside a message', (kind) => {
    const rr = record('resolver.chat.example.email.mimi.arpa', 'KEYCONF', { ...KEY, kind }, 300);
    const m: Message = {
      id: 7,
      flags: responseFlags({ aa: true }),
      rcode: 'NOERROR',
      questions: [{ name: rr.name, type: 'KEYCONF', class: 'IN' }],
      answers: [rr],
      authorities: [],
      additionals: [],
    };
    expect(decodeMessage(encodeMessage(m))).toEqual(m);
  });

  it('takes a config of exactly the largest size and refuses one octet more', () => {
    const largest = { ...KEY, config: new Uint8Array(MAX_KEYCONF_CONFIG_OCTETS).fill(7) };
    expect(decodeRdata('KEYCONF', encodeRdata(record('x', 'KEYCONF', largest, 0)))).toEqual(
      largest,
    );
    const over = { ...KEY, config: new Uint8Array(MAX_KEYCONF_CONFIG_OCTETS + 1) };
    expect(wireError(() => encodeRdata(record('x', 'KEYCONF', over, 0))).code).toBe(
      'ERR_WIRE_TOO_LARGE',
    );
    const err = wireError(() =>
      decodeRdata('KEYCONF', rdataOf({ ...GOOD_FIELDS, cfg: over.config })),
    );
    expect(err.code).toBe('ERR_WIRE_TOO_LARGE');
    expect(err.message).toContain(`over ${MAX_KEYCONF_CONFIG_OCTETS}`);
  });

  it.each<[string, Uint8Array, WireErrorCode, string]>([
    [
      'an unknown kind',
      rdataOf({ ...GOOD_FIELDS, kind: 'dns' }),
      'ERR_WIRE_BAD_RDATA',
      'kind "dns"',
    ],
    [
      'a kind that is not text',
      rdataOf({ ...GOOD_FIELDS, kind: 1 }),
      'ERR_WIRE_BAD_RDATA',
      'kind 1',
    ],
    ['version 2', rdataOf({ ...GOOD_FIELDS, v: 2 }), 'ERR_WIRE_BAD_RDATA', 'version 2 is not 1'],
    [
      'an extra key',
      rdataOf({ ...GOOD_FIELDS, alg: 1 }),
      'ERR_WIRE_BAD_RDATA',
      'unknown key "alg"',
    ],
    [
      'a missing key',
      rdataOf({ v: 1, kind: 'ohttp', cfg: KEY.config, nbf: 1 }),
      'ERR_WIRE_BAD_RDATA',
      'lacks the key "exp"',
    ],
    [
      'nbf after exp',
      rdataOf({ ...GOOD_FIELDS, nbf: 10, exp: 9 }),
      'ERR_WIRE_BAD_RDATA',
      'notBefore 10 is not before notAfter 9',
    ],
    [
      'nbf equal to exp',
      rdataOf({ ...GOOD_FIELDS, nbf: 10, exp: 10 }),
      'ERR_WIRE_BAD_RDATA',
      'not before',
    ],
    ['a negative nbf', rdataOf({ ...GOOD_FIELDS, nbf: -1 }), 'ERR_WIRE_BAD_RDATA', 'unsigned'],
    [
      'an empty cfg',
      rdataOf({ ...GOOD_FIELDS, cfg: new Uint8Array(0) }),
      'ERR_WIRE_BAD_RDATA',
      'non-empty',
    ],
    [
      'a text cfg',
      rdataOf({ ...GOOD_FIELDS, cfg: 'AQID' }),
      'ERR_WIRE_BAD_RDATA',
      'not a byte string',
    ],
    ['an array', encodeCbor([1, 'ohttp']), 'ERR_WIRE_BAD_RDATA', 'not a CBOR map'],
    ['empty RDATA', new Uint8Array(0), 'ERR_WIRE_BAD_RDATA', 'empty'],
    [
      'trailing bytes after the map',
      hex(`${toHex(rdataOf(GOOD_FIELDS))}00`),
      'ERR_WIRE_BAD_RDATA',
      'KEYCONF RDATA',
    ],
    [
      // The same map with "kind" first: a second encoding of one value (RFC 8949 §4.2.1).
      'keys out of deterministic order',
      hex('a5 646b696e64 646f646f68 6176 01 63636667 420102 63657870 02 636e6266 01'),
      'ERR_WIRE_BAD_RDATA',
      'deterministic',
    ],
    [
      'an integer in a longer form than needed',
      hex('a5 6176 1801 63636667 420102 63657870 02 636e6266 01 646b696e64 646f646f68'),
      'ERR_WIRE_BAD_RDATA',
      'KEYCONF RDATA',
    ],
  ])('refuses %s', (_what, rdata, code, text) => {
    const err = wireError(() => decodeRdata('KEYCONF', rdata));
    expect(err.code).toBe(code);
    expect(err.message).toContain(text);
  });

  it('refuses a whole message that carries a malformed KEYCONF', () => {
    const rr = record('x', 'KEYCONF', KEY, 60);
    const bytes = encodeMessage({
      id: 1,
      flags: responseFlags(),
      rcode: 'NOERROR',
      questions: [],
      answers: [rr],
      authorities: [],
      additionals: [],
    });
    // The version is the third octet of the RDATA (a5 61 76 01): make it 2.
    const at = toHex(bytes).indexOf('a5617601') / 2 + 3;
    const bad = bytes.slice();
    bad[at] = 2;
    expect(wireError(() => decodeMessage(bad)).code).toBe('ERR_WIRE_BAD_RDATA');
  });

  it.each<[string, KeyconfData, string]>([
    ['an unknown kind', { ...KEY, kind: 'dns' as KeyconfData['kind'] }, 'kind "dns"'],
    ['notBefore after notAfter', { ...KEY, notBefore: 2, notAfter: 1 }, 'not before'],
    ['a fractional time', { ...KEY, notAfter: 1.5 }, 'unsigned integer'],
    ['an empty config', { ...KEY, config: new Uint8Array(0) }, 'non-empty'],
  ])('encodes no KEYCONF with %s', (_what, data, text) => {
    const err = wireError(() => encodeRdata(record('x', 'KEYCONF', data, 0)));
    expect(err.code).toBe('ERR_WIRE_BAD_RDATA');
    expect(err.message).toContain(text);
  });

  it('is written in the RFC 3597 generic form and read back', () => {
    const rr = record('resolver.example', 'KEYCONF', KEY, 300);
    const line = formatRecord(rr);
    expect(line).toMatch(/^resolver\.example\. 300 IN TYPE65403 \\# \d+ a5/);
    expect(parseZoneFile(line)).toEqual([rr]);
    expect(parseZoneFile(line.replace('TYPE65403', 'KEYCONF'))).toEqual([rr]);
  });
});

describe('SVCB ohttp (RFC 9540 §4)', () => {
  const svcb = record(
    '_dns.resolver.example',
    'SVCB',
    {
      priority: 1,
      target: 'resolver.example',
      params: { alpn: ['h2'], port: 8443, dohpath: '/dns-query{?dns}', ohttp: true },
    },
    300,
  );

  it('is key 8 with an empty value', () => {
    const rdata = encodeRdata(svcb);
    expect(toHex(rdata).endsWith('00080000')).toBe(true);
    expect(decodeRdata('SVCB', rdata)).toEqual(svcb.data);
  });

  it('refuses a value on key 8', () => {
    const rdata = hex(`${toHex(encodeRdata(svcb)).slice(0, -8)}0008000101`);
    const err = wireError(() => decodeRdata('SVCB', rdata));
    expect(err.code).toBe('ERR_WIRE_BAD_SVCB');
    expect(err.message).toContain('ohttp: value must be empty');
  });

  it('is no longer an unknown key, and ohttp is true or absent', () => {
    const asUnknown = record(
      'x',
      'SVCB',
      {
        priority: 1,
        target: '.',
        params: { unknown: [{ key: 8, value: new Uint8Array(0) }] },
      },
      0,
    );
    expect(wireError(() => encodeRdata(asUnknown)).message).toContain('must be in 9..65534');
    const notTrue = record(
      'x',
      'SVCB',
      {
        priority: 1,
        target: '.',
        params: { ohttp: false as unknown as true },
      },
      0,
    );
    expect(wireError(() => encodeRdata(notTrue)).message).toContain(
      'ohttp is either true or absent',
    );
  });

  it('is read from a zone file as ohttp or key8, and in a mandatory list by either name', () => {
    const lines = [
      '_dns.resolver.example. 300 IN SVCB 1 resolver.example. alpn=h2 port=8443 dohpath=/dns-query{?dns} ohttp',
      '_dns.resolver.example. 300 IN SVCB 1 resolver.example. alpn=h2 port=8443 dohpath=/dns-query{?dns} key8',
    ];
    for (const line of lines) expect(parseZoneFile(line)).toEqual([svcb]);
    const mandatory = parseZoneFile(
      'x.example. 300 IN SVCB 1 . mandatory=key8,alpn alpn=h2 ohttp',
    )[0];
    expect(mandatory?.type === 'SVCB' && mandatory.data.params.mandatory).toEqual([
      'alpn',
      'ohttp',
    ]);
    expect(() => parseZoneFile('x.example. 300 IN SVCB 1 . ohttp=1')).toThrow('takes no value');
  });
});
