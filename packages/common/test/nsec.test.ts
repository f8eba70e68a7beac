import { describe, expect, it } from 'vitest';
import {
  compactDenialForName,
  compactDenialForType,
  compareNames,
  createZoneKey,
  denialTtl,
  DnssecError,
  formatRecord,
  immediateSuccessor,
  nameWireLength,
  NXNAME_TYPE,
  signRRset,
  sortTypes,
  verifyRRset,
  type RecordOf,
} from '../src/index.js';

describe('compact denial (RFC 9824)', () => {
  it('denies a name with an NSEC to its immediate successor, bitmap RRSIG NSEC NXNAME', () => {
    const nsec = compactDenialForName('x.Example', 300);
    expect(nsec).toEqual({
      name: 'x.Example',
      type: 'NSEC',
      class: 'IN',
      ttl: 300,
      data: { nextName: '\\000.x.example', types: ['RRSIG', 'NSEC', `TYPE${NXNAME_TYPE}`] },
    });
    expect(formatRecord(nsec)).toBe('x.Example. 300 IN NSEC \\000.x.example. RRSIG NSEC TYPE128');
  });

  it('denies a type with the types present plus RRSIG and NSEC, in code order', () => {
    const nsec = compactDenialForType('x.example', ['MAP', 'MAPREF', 'A', 'MAP'], 60);
    expect(nsec.data).toEqual({
      nextName: '\\000.x.example',
      types: ['A', 'RRSIG', 'NSEC', 'MAP', 'MAPREF'],
    });
  });

  it('denies every type at an empty non-terminal with RRSIG and NSEC only', () => {
    expect(compactDenialForType('4.4.e164.mimi.arpa', [], 60).data.types).toEqual([
      'RRSIG',
      'NSEC',
    ]);
  });

  it('produces NSEC records that sign and verify', () => {
    const key = createZoneKey('example', { seed: new Uint8Array(32).fill(5) });
    const nsec = compactDenialForName('nothing.example', 300);
    const window = { inception: 1_000_000, expiration: 2_000_000 };
    const rrsig = signRRset([nsec], key, window);
    expect(verifyRRset([nsec], rrsig, [key.dnskey], 1_500_000)).toEqual({ kind: 'verified' });
  });

  it('takes the TTL of a denial from the SOA: min(TTL, MINIMUM)', () => {
    const soa: RecordOf<'SOA'> = {
      name: 'example',
      type: 'SOA',
      class: 'IN',
      ttl: 3600,
      data: {
        mname: 'ns.example',
        rname: 'hostmaster.example',
        serial: 1,
        refresh: 7200,
        retry: 900,
        expire: 1209600,
        minimum: 300,
      },
    };
    expect(denialTtl(soa)).toBe(300);
    expect(denialTtl({ ...soa, ttl: 60 })).toBe(60);
  });

  it('sorts and de-duplicates types by code', () => {
    expect(sortTypes(['TYPE65402' as const, 'NSEC', 'A', 'NSEC', 'SOA'])).toEqual([
      'A',
      'SOA',
      'NSEC',
      'AUTHKEY',
    ]);
  });
});

describe('immediateSuccessor (RFC 4471 §3.1.2)', () => {
  /** A name of exactly `octets` octets in wire form under `suffix`, built from 63-octet labels. */
  function nameOf(octets: number, suffix: string, fill = 'a'): string {
    const labels: string[] = [];
    let remaining = octets - nameWireLength(suffix);
    while (remaining > 0) {
      const size = Math.min(63, remaining - 1);
      labels.push(fill.repeat(size));
      remaining -= size + 1;
    }
    // The shortest label first, so that the first label has room to grow.
    return [...labels.reverse(), suffix].join('.');
  }

  it('prepends a \\000 label when it fits', () => {
    expect(immediateSuccessor('A.Example')).toBe('\\000.a.example');
    expect(immediateSuccessor('.')).toBe('\\000');
  });

  it('appends \\000 to the first label when only one octet is left', () => {
    const name = nameOf(254, 'example');
    const first = name.split('.')[0] as string;
    expect(first.length).toBeLessThan(63);
    const next = immediateSuccessor(name);
    expect(next).toBe(name.replace(first, `${first}\\000`));
    expect(nameWireLength(next)).toBe(255);
    expect(compareNames(name, next)).toBeLessThan(0);
  });

  it('increments the last octet of the first label at the maximum length', () => {
    const name = nameOf(255, 'example');
    const next = immediateSuccessor(name);
    const first = name.split('.')[0] as string;
    expect(next).toBe(name.replace(first, `${first.slice(0, -1)}b`));
    expect(compareNames(name, next)).toBeLessThan(0);
  });

  it('steps over uppercase letters, which sort as lowercase', () => {
    const name = nameOf(255, 'example', '@');
    const next = immediateSuccessor(name);
    expect(next.split('.')[0]).toBe(`${'\\@'.repeat(52)}[`);
  });

  it('drops trailing 0xff octets and whole 0xff labels', () => {
    const ff = '\\255';
    // 63 octets of 0xff in the first label, the rest filled to 255 octets.
    const rest = nameOf(255 - 64, 'example');
    const name = `${ff.repeat(63)}.${rest}`;
    expect(nameWireLength(name)).toBe(255);
    const next = immediateSuccessor(name);
    const [parentFirst] = rest.split('.');
    expect(next).toBe(rest.replace(parentFirst as string, `${parentFirst}\\000`));
    expect(compareNames(name, next)).toBeLessThan(0);
  });

  it('fails when no name follows', () => {
    const ff = '\\255'.repeat(63);
    const name = ['\\255'.repeat(61), ff, ff, ff].join('.');
    expect(nameWireLength(name)).toBe(255);
    expect(() => immediateSuccessor(name)).toThrow(DnssecError);
  });
});
