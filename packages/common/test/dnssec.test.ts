import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  checkRrsig,
  computeDs,
  computeKeyTag,
  createZoneKey,
  DnssecError,
  dnskeyRecord,
  dsMatchesDnskey,
  dsRecord,
  formatRecord,
  rrsigSignedData,
  signRRset,
  verifyRRset,
  verifyRrsigWith,
  type DnskeyData,
  type RecordOf,
  type ResourceRecord,
} from '../src/index.js';
import { sign } from '../src/protocol/ed25519.js';

interface Rfc8080Vector {
  description: string;
  owner: string;
  privateKey: string;
  dnskey: string;
  keyTag: number;
  ds: string;
  rrset: { owner: string; type: number; ttl: number; rdata: string[] };
  inception: number;
  expiration: number;
  labels: number;
  signature: string;
  publishedLabels: number;
  publishedSignature: string;
}

const rfc8080 = JSON.parse(
  readFileSync(new URL('./vectors/rfc8080.json', import.meta.url), 'utf8'),
) as { vectors: Rfc8080Vector[] };

const b64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));
const hex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));
const toB64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

function vectorRRset(v: Rfc8080Vector): ResourceRecord[] {
  return v.rrset.rdata.map((data) => ({
    name: v.rrset.owner,
    type: `TYPE${v.rrset.type}` as const,
    class: 'IN' as const,
    ttl: v.rrset.ttl,
    data: hex(data),
  }));
}

describe('RFC 8080 §6.1 Ed25519 examples', () => {
  it.each(rfc8080.vectors)('$description: DNSKEY and key tag from the private key', (v) => {
    const key = createZoneKey(v.owner, { seed: b64(v.privateKey) });
    expect(formatRecord(dnskeyRecord(key, 3600))).toBe(v.dnskey);
    expect(key.keyTag).toBe(v.keyTag);
    expect(computeKeyTag(key.dnskey)).toBe(v.keyTag);
  });

  it.each(rfc8080.vectors)('$description: DS digest (SHA-256)', (v) => {
    const key = createZoneKey(v.owner, { seed: b64(v.privateKey) });
    expect(formatRecord(dsRecord(key, 3600))).toBe(v.ds);
    expect(dsMatchesDnskey(v.owner, computeDs(v.owner, key.dnskey), key.dnskey)).toBe(true);
  });

  it.each(rfc8080.vectors)('$description: RRSIG over the MX RRset (Errata 4935)', (v) => {
    const key = createZoneKey(v.owner, { seed: b64(v.privateKey) });
    const rrsig = signRRset(vectorRRset(v), key, {
      inception: v.inception,
      expiration: v.expiration,
    });
    expect(rrsig.data).toMatchObject({
      typeCovered: 'TYPE15',
      algorithm: 15,
      labels: v.labels,
      originalTtl: 3600,
      inception: v.inception,
      expiration: v.expiration,
      keyTag: v.keyTag,
      signerName: 'example.com',
    });
    expect(toB64(rrsig.data.signature)).toBe(v.signature);
    expect(verifyRRset(vectorRRset(v), rrsig, [key.dnskey], v.inception + 1)).toEqual({
      kind: 'verified',
    });
  });

  it.each(rfc8080.vectors)('$description: the signature as printed in the RFC (Labels 3)', (v) => {
    const key = createZoneKey(v.owner, { seed: b64(v.privateKey) });
    const rrsig = signRRset(vectorRRset(v), key, {
      inception: v.inception,
      expiration: v.expiration,
    });
    const signed = rrsigSignedData(vectorRRset(v), { ...rrsig.data, labels: v.publishedLabels });
    expect(toB64(sign(signed, key.keyPair.secretKey))).toBe(v.publishedSignature);
  });
});

describe('key tags and DS', () => {
  it('computes the RFC 4034 §5.4 example key tag and SHA-1 DS', () => {
    // RFC 4034 §5.4: dskey.example.com. DNSKEY 256 3 5 … ; key id = 60485, and its DS.
    const dnskey: DnskeyData = {
      flags: 256,
      protocol: 3,
      algorithm: 5,
      publicKey: b64(
        'AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==',
      ),
    };
    expect(computeKeyTag(dnskey)).toBe(60485);
    const ds = computeDs('dskey.example.com', dnskey, 1);
    expect(Buffer.from(ds.digest).toString('hex')).toBe('2bb183af5f22588179a53b0a98631fad1a292118');
    expect(ds).toMatchObject({ keyTag: 60485, algorithm: 5, digestType: 1 });
  });

  it('hashes the owner name in canonical form', () => {
    const key = createZoneKey('Example.COM', { seed: new Uint8Array(32).fill(3) });
    expect(computeDs('EXAMPLE.com.', key.dnskey)).toEqual(computeDs('example.com', key.dnskey));
  });

  it('refuses unknown digest types and matches no DS of another key', () => {
    const key = createZoneKey('example', { seed: new Uint8Array(32).fill(1) });
    const other = createZoneKey('example', { seed: new Uint8Array(32).fill(2) });
    expect(() => computeDs('example', key.dnskey, 3)).toThrow(DnssecError);
    expect(dsMatchesDnskey('example', computeDs('example', other.dnskey), key.dnskey)).toBe(false);
    expect(dsMatchesDnskey('other', computeDs('example', key.dnskey), key.dnskey)).toBe(false);
    expect(dsMatchesDnskey('example', computeDs('example', key.dnskey, 4), key.dnskey)).toBe(true);
  });

  it('creates the combined signing key of a zone', () => {
    const key = createZoneKey('Zone.Example.');
    expect(key.zone).toBe('zone.example');
    expect(key.dnskey).toMatchObject({ flags: 257, protocol: 3, algorithm: 15 });
    expect(key.dnskey.publicKey).toHaveLength(32);
    expect(createZoneKey('zone.example').dnskey.publicKey).not.toEqual(key.dnskey.publicKey);
  });
});

const ZONE = 'example';
const key = createZoneKey(ZONE, { seed: new Uint8Array(32).fill(9) });
const WINDOW = { inception: 1_700_000_000, expiration: 1_700_000_000 + 30 * 86_400 };
const NOW = WINDOW.inception + 86_400;

function a(name: string, address: string, ttl = 300): RecordOf<'A'> {
  return { name, type: 'A', class: 'IN', ttl, data: address };
}

describe('signRRset and verifyRRset', () => {
  const rrset = [a('www.example', '192.0.2.1'), a('www.example', '192.0.2.2')];
  const rrsig = signRRset(rrset, key, WINDOW);

  it('signs an RRset that then verifies against the zone key', () => {
    expect(rrsig).toMatchObject({ name: 'www.example', type: 'RRSIG', class: 'IN', ttl: 300 });
    expect(rrsig.data).toMatchObject({ typeCovered: 'A', labels: 2, originalTtl: 300 });
    expect(rrsig.data.signature).toHaveLength(64);
    expect(verifyRRset(rrset, rrsig, [key.dnskey], NOW)).toEqual({ kind: 'verified' });
    expect(verifyRRset(rrset, rrsig, [dnskeyRecord(key, 3600)], NOW)).toEqual({ kind: 'verified' });
  });

  it('gives the same signature whatever the record order, duplicates and case', () => {
    const shuffled = [
      a('WWW.Example.', '192.0.2.2'),
      a('www.EXAMPLE', '192.0.2.1'),
      a('www.example', '192.0.2.2'),
    ];
    const again = signRRset(
      shuffled,
      createZoneKey('EXAMPLE', { seed: new Uint8Array(32).fill(9) }),
      WINDOW,
    );
    expect(toB64(again.data.signature)).toBe(toB64(rrsig.data.signature));
    expect(verifyRRset(shuffled, rrsig, [key.dnskey], NOW)).toEqual({ kind: 'verified' });
  });

  it('verifies with the original TTL whatever TTL the records arrive with', () => {
    const decremented = rrset.map((rr) => ({ ...rr, ttl: 17 }));
    expect(verifyRRset(decremented, rrsig, [key.dnskey], NOW)).toEqual({ kind: 'verified' });
  });

  it('lowercases names inside RDATA (RFC 4034 §6.2)', () => {
    const ns: ResourceRecord[] = [
      { name: 'example', type: 'NS', class: 'IN', ttl: 60, data: 'NS1.Example' },
    ];
    const sig = signRRset(ns, key, WINDOW);
    const lower: ResourceRecord[] = [{ ...ns[0], data: 'ns1.example' } as ResourceRecord];
    expect(verifyRRset(lower, sig, [key.dnskey], NOW)).toEqual({ kind: 'verified' });
  });

  it('does not count a leading * in Labels and verifies wildcard expansions', () => {
    const wildcard = [a('*.w.example', '192.0.2.9')];
    const sig = signRRset(wildcard, key, WINDOW);
    expect(sig.data.labels).toBe(2);
    expect(verifyRRset(wildcard, sig, [key.dnskey], NOW)).toEqual({ kind: 'verified' });
    const expanded = [a('x.y.w.example', '192.0.2.9')];
    expect(verifyRRset(expanded, { ...sig, name: 'x.y.w.example' }, [key.dnskey], NOW)).toEqual({
      kind: 'verified',
    });
    const wrongParent = [a('x.v.example', '192.0.2.9')];
    expect(verifyRRset(wrongParent, { ...sig, name: 'x.v.example' }, [key.dnskey], NOW)).toEqual({
      kind: 'failed',
      reason: 'bad-signature',
    });
  });

  describe('reports each reason a verification fails', () => {
    const fails = (reason: string) => ({ kind: 'failed', reason });

    it('mismatch: the RRSIG is not for this RRset', () => {
      const other = [a('ftp.example', '192.0.2.1')];
      expect(verifyRRset(other, rrsig, [key.dnskey], NOW)).toEqual(fails('mismatch'));
      expect(verifyRRset([], rrsig, [key.dnskey], NOW)).toEqual(fails('mismatch'));
      const covered = { ...rrsig, data: { ...rrsig.data, typeCovered: 'AAAA' as const } };
      expect(verifyRRset(rrset, covered, [key.dnskey], NOW)).toEqual(fails('mismatch'));
      const labels = { ...rrsig, data: { ...rrsig.data, labels: 3 } };
      expect(verifyRRset(rrset, labels, [key.dnskey], NOW)).toEqual(fails('mismatch'));
      const signer = { ...rrsig, data: { ...rrsig.data, signerName: 'other' } };
      expect(verifyRRset(rrset, signer, [key.dnskey], NOW)).toEqual(fails('mismatch'));
      const mixed = [...rrset, a('ftp.example', '192.0.2.3')];
      expect(verifyRRset(mixed, rrsig, [key.dnskey], NOW)).toEqual(fails('mismatch'));
      const chaos = { ...rrsig, class: 'CH' as const };
      expect(verifyRRset(rrset, chaos, [key.dnskey], NOW)).toEqual(fails('mismatch'));
    });

    it('mismatch: a DNSKEY RRset signed by another name', () => {
      const child = createZoneKey('sub.example', { seed: new Uint8Array(32).fill(4) });
      const keys = [dnskeyRecord(child, 3600)];
      const byParent = signRRset(keys, key, WINDOW);
      expect(verifyRRset(keys, byParent, [key.dnskey], NOW)).toEqual(fails('mismatch'));
    });

    it('unsupported-algorithm', () => {
      const ecdsa = { ...rrsig, data: { ...rrsig.data, algorithm: 13 } };
      expect(verifyRRset(rrset, ecdsa, [key.dnskey], NOW)).toEqual(fails('unsupported-algorithm'));
    });

    it('not-yet-valid and expired, inclusive at both ends', () => {
      expect(verifyRRset(rrset, rrsig, [key.dnskey], WINDOW.inception - 1)).toEqual(
        fails('not-yet-valid'),
      );
      expect(verifyRRset(rrset, rrsig, [key.dnskey], WINDOW.inception)).toEqual({
        kind: 'verified',
      });
      expect(verifyRRset(rrset, rrsig, [key.dnskey], WINDOW.expiration)).toEqual({
        kind: 'verified',
      });
      expect(verifyRRset(rrset, rrsig, [key.dnskey], WINDOW.expiration + 1)).toEqual(
        fails('expired'),
      );
    });

    it('no-key: no zone key with the tag, algorithm and protocol', () => {
      const other = createZoneKey(ZONE, { seed: new Uint8Array(32).fill(10) });
      expect(verifyRRset(rrset, rrsig, [other.dnskey], NOW)).toEqual(fails('no-key'));
      expect(verifyRRset(rrset, rrsig, [], NOW)).toEqual(fails('no-key'));
      const notZone = { ...key.dnskey, flags: 1 };
      expect(verifyRRset(rrset, rrsig, [notZone], NOW)).toEqual(fails('no-key'));
      const protocol = { ...key.dnskey, protocol: 2 };
      expect(verifyRRset(rrset, rrsig, [protocol], NOW)).toEqual(fails('no-key'));
      const elsewhere = { ...dnskeyRecord(key, 3600), name: 'other' };
      expect(verifyRRset(rrset, rrsig, [elsewhere], NOW)).toEqual(fails('no-key'));
    });

    it('no-key: a revoked key verifies only its DNSKEY RRset (RFC 5011 §2.1)', () => {
      const revoked = createZoneKey(ZONE, { seed: new Uint8Array(32).fill(11) });
      const dnskey = { ...revoked.dnskey, flags: 257 | 0x80 };
      const revokedKey = { ...revoked, dnskey, keyTag: computeKeyTag(dnskey) };
      const sig = signRRset(rrset, revokedKey, WINDOW);
      expect(verifyRRset(rrset, sig, [dnskey], NOW)).toEqual(fails('no-key'));
      const keys: ResourceRecord[] = [
        { name: ZONE, type: 'DNSKEY', class: 'IN', ttl: 60, data: dnskey },
      ];
      expect(verifyRRset(keys, signRRset(keys, revokedKey, WINDOW), [dnskey], NOW)).toEqual({
        kind: 'verified',
      });
    });

    it('bad-signature: data or signature altered', () => {
      const altered = [a('www.example', '192.0.2.1'), a('www.example', '192.0.2.3')];
      expect(verifyRRset(altered, rrsig, [key.dnskey], NOW)).toEqual(fails('bad-signature'));
      const signature = Uint8Array.from(rrsig.data.signature);
      signature[10] = (signature[10] as number) ^ 1;
      const flipped = { ...rrsig, data: { ...rrsig.data, signature } };
      expect(verifyRRset(rrset, flipped, [key.dnskey], NOW)).toEqual(fails('bad-signature'));
      const ttl = { ...rrsig, data: { ...rrsig.data, originalTtl: 301 } };
      expect(verifyRRset(rrset, ttl, [key.dnskey], NOW)).toEqual(fails('bad-signature'));
    });
  });

  it('compares times in serial arithmetic across the 2106 wrap (RFC 4034 §3.1.5)', () => {
    const window = { inception: 2 ** 32 - 86_400, expiration: 2 ** 32 + 86_400 };
    const sig = signRRset(rrset, key, window);
    const now = 2 ** 32 + 3600;
    expect(verifyRRset(rrset, sig, [key.dnskey], now)).toEqual({ kind: 'verified' });
    // As decoded from the wire, expiration has wrapped to 86400.
    const wrapped = { ...sig, data: { ...sig.data, expiration: 86_400 } };
    expect(verifyRRset(rrset, wrapped, [key.dnskey], now)).toEqual({ kind: 'verified' });
    expect(verifyRRset(rrset, wrapped, [key.dnskey], now - 2 * 86_400)).toEqual({
      kind: 'failed',
      reason: 'not-yet-valid',
    });
    expect(verifyRRset(rrset, wrapped, [key.dnskey], 2 ** 32 + 2 * 86_400)).toEqual({
      kind: 'failed',
      reason: 'expired',
    });
  });

  it('uses the lowest TTL of an RRset as its original TTL (RFC 2181 §5.2)', () => {
    const sig = signRRset(
      [a('www.example', '192.0.2.1', 600), a('www.example', '192.0.2.2', 300)],
      key,
      WINDOW,
    );
    expect(sig.data.originalTtl).toBe(300);
    expect(sig.ttl).toBe(300);
  });

  it.each([
    ['an empty RRset', [] as ResourceRecord[]],
    ['a mixed RRset', [a('www.example', '192.0.2.1'), a('ftp.example', '192.0.2.1')]],
    ['an RRset outside the zone', [a('www.example.net', '192.0.2.1')]],
    ['an RRSIG RRset', [rrsig]],
  ])('refuses to sign %s', (_name, records) => {
    expect(() => signRRset(records, key, WINDOW)).toThrow(DnssecError);
  });

  it.each([
    ['an inverted window', { inception: 2000, expiration: 1000 }],
    ['a window of 2^31 seconds', { inception: 0, expiration: 2 ** 31 }],
    ['fractional times', { inception: 1.5, expiration: 1000 }],
  ])('refuses %s', (_name, window) => {
    expect(() => signRRset(rrset, key, window)).toThrow(/signature/);
  });
});

describe('checkRrsig and verifyRrsigWith', () => {
  const rrset = [a('www.example', '192.0.2.1')];
  const rrsig = signRRset(rrset, key, WINDOW);
  /**
   * A key with the zone key's flags, algorithm and tag, but another public key: octets 29 and
   * 31 of the key both count as low octets of the checksum (RFC 4034 Appendix B), so one up and
   * the other down leaves the tag as it was.
   */
  const sameTag = (): DnskeyData => {
    const publicKey = Uint8Array.from(key.dnskey.publicKey);
    const up = (publicKey[29] ?? 0) < 255 && (publicKey[31] ?? 0) > 0;
    publicKey[29] = (publicKey[29] ?? 0) + (up ? 1 : -1);
    publicKey[31] = (publicKey[31] ?? 0) + (up ? -1 : 1);
    const candidate = { ...key.dnskey, publicKey };
    expect(computeKeyTag(candidate)).toBe(key.keyTag);
    return candidate;
  };

  it('returns every key of the signature’s tag and the signed octets, verifying nothing', () => {
    const other = sameTag();
    const checked = checkRrsig(rrset, rrsig, [other, key.dnskey], NOW);
    expect(checked.kind === 'checked' && checked.keys).toEqual([other, key.dnskey]);
    expect(checked.kind === 'checked' && toB64(checked.signed)).toBe(
      toB64(rrsigSignedData(rrset, rrsig.data)),
    );
    if (checked.kind !== 'checked') return;
    expect(verifyRrsigWith(checked.signed, rrsig.data, other)).toBe(false);
    expect(verifyRrsigWith(checked.signed, rrsig.data, key.dnskey)).toBe(true);
  });

  it('fails before any key is tried, as verifyRRset does', () => {
    expect(checkRrsig(rrset, rrsig, [key.dnskey], WINDOW.inception - 1)).toEqual({
      kind: 'failed',
      reason: 'not-yet-valid',
    });
    expect(checkRrsig(rrset, rrsig, [], NOW)).toEqual({ kind: 'failed', reason: 'no-key' });
  });
});
