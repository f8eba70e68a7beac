import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  csiToName,
  decodeCbor,
  decodeMapping,
  encodeCbor,
  keyPairFromSeed,
  parseCsi,
  verifyMapping,
  type CborValue,
  type Csi,
} from '@mimi-discovery/common';
import { exportZone } from '@mimi-discovery/authoritative';
import { EMAIL_ZONE, buildNetwork, type Network, type NetworkServer } from './helpers/network.js';
import { missingTools, runTool } from './helpers/tools.js';
import { apiOf, attestAndPublish, nowSeconds } from './helpers/registration.js';

// Issue 12, "Records that do not spell the CSI": a MAP record, and the attestation inside it,
// carries no CSI in clear (docs/protocol.md §4, version 2), so whoever sees a MAP answer — a
// cache, a query log, a secondary after a zone transfer — learns the identifier only from the
// owner name. Here a recipient publishes through a real DP's registration API, and the stock
// `dig` and `kdig` ask that DP for the MAP: the RDATA they print, in hex and decoded, holds
// neither the number nor the address, while it still verifies for the CSI that was asked.

const CLIENTS = { dig: 'bind9-dnsutils', kdig: 'knot-dnsutils' } as const;
const missing = missingTools(CLIENTS);

const RECIPIENT = keyPairFromSeed(new Uint8Array(32).fill(0x2d));
const PHONE = parseCsi('+44 20 7946 0018');
const EMAIL = parseCsi('Dave@Example.com');

/**
 * What must not appear in a MAP record of `csi`: the canonical CSI, the number's digits (whole,
 * national, reversed as in the name), or the address and its local part.
 */
function spellings(csi: Csi): string[] {
  if (csi.startsWith('tel:')) {
    const digits = csi.slice('tel:+'.length);
    return [csi, `+${digits}`, digits, digits.slice(2), [...digits].reverse().join('')];
  }
  const address = csi.slice('mailto:'.length);
  return [csi, address, address.slice(0, address.indexOf('@'))];
}

/** Every text and byte string inside a decoded CBOR value, byte strings as UTF-8 and Latin-1. */
function stringsIn(value: CborValue): string[] {
  if (typeof value === 'string') return [value];
  if (value instanceof Uint8Array) {
    return [Buffer.from(value).toString('utf8'), Buffer.from(value).toString('latin1')];
  }
  if (Array.isArray(value)) return value.flatMap((v: CborValue) => stringsIn(v));
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => [k, ...stringsIn(v)]);
  }
  return [];
}

/**
 * The spellings of `csi` found in MAP RDATA given as the hex a client prints: in the hex itself
 * (the spelling's octets in hex), in the octets read as UTF-8 or Latin-1, and in every string of
 * the decoded CBOR.
 */
function spelledIn(hex: string, csi: Csi): string[] {
  const bytes = Buffer.from(hex, 'hex');
  const texts = [bytes.toString('utf8'), bytes.toString('latin1'), ...stringsIn(decodeCbor(bytes))];
  return spellings(csi).filter(
    (s) =>
      hex.toLowerCase().includes(Buffer.from(s, 'utf8').toString('hex')) ||
      texts.some((t) => t.includes(s)),
  );
}

/**
 * The RDATA of each MAP record in a client's `+short` output: RFC 3597 generic form,
 * `\# <length> <hex>`, the hex possibly split into groups.
 */
function mapRdata(output: string): string[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('\\#'))
    .map((line) => {
      const [, length, ...groups] = line.trim().split(/\s+/);
      const hex = groups.join('');
      expect(hex.length / 2, line).toBe(Number(length));
      return hex;
    });
}

let net: Network;
const published = new Map<Csi, Uint8Array>();

beforeAll(async () => {
  net = await buildNetwork();
  for (const [csi, dp] of [
    [PHONE, net.phone],
    [EMAIL, net.email],
  ] as const) {
    const { response, mapping } = await attestAndPublish(apiOf(dp), csi, RECIPIENT, {
      msps: [{ provider: 'chat.example', tags: ['mls', 'personal'] }],
    });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    published.set(csi, mapping);
  }
});

afterAll(async () => {
  await net?.close();
});

const CASES: ReadonlyArray<[string, Csi, () => NetworkServer]> = [
  ['a phone number', PHONE, () => net.phone],
  ['an email address', EMAIL, () => net.email],
];

describe('the spelling check', () => {
  it('finds the CSI in a record that carries it, as version 1 did', () => {
    for (const [, csi] of CASES) {
      const v1 = encodeCbor({ v: 1, csi, msps: [], sig: new Uint8Array(64) });
      expect(spelledIn(Buffer.from(v1).toString('hex'), csi)).toContain(csi);
    }
  });
});

describe.each(Object.keys(CLIENTS))('%s of a MAP at the DP', (tool) => {
  it.skipIf(missing.has(tool)).each(CASES)(
    'for %s shows RDATA that spells neither the CSI nor any part of it',
    async (_what, csi, server) => {
      const dp = server();
      const args =
        tool === 'dig'
          ? ['@127.0.0.1', '-p', String(dp.udp.port), '+norecurse', '+tries=1', '+time=5']
          : ['@127.0.0.1', '-p', String(dp.udp.port), '+norecurse', '+retry=0', '+timeout=5'];
      const { status, output } = await runTool(tool, [
        ...args,
        '+short',
        csiToName(csi),
        'TYPE65400',
      ]);
      expect(status, output).toBe(0);
      const rdata = mapRdata(output);
      // The record the recipient published is the one the client printed.
      expect(rdata, output).toEqual([
        Buffer.from(published.get(csi) ?? [])
          .toString('hex')
          .toUpperCase(),
      ]);
      for (const hex of rdata) {
        expect(spelledIn(hex, csi), hex).toEqual([]);
        // Decoded, it is a mapping that verifies for the CSI asked, and for that CSI only.
        const bytes = Buffer.from(hex, 'hex');
        expect(decodeMapping(bytes).msps.map((m) => m.provider)).toEqual(['chat.example']);
        expect(verifyMapping(bytes, { csi, now: nowSeconds() }).kind).toBe('verified');
        const other = csi === PHONE ? EMAIL : PHONE;
        expect(verifyMapping(bytes, { csi: other, now: nowSeconds() })).toMatchObject({
          kind: 'failed',
          reason: 'bad-signature',
        });
      }
    },
  );
});

describe('a zone as transferred to a secondary', () => {
  it('spells no email address: the owner name is a hash, the MAP RDATA carries no CSI', () => {
    const text = exportZone(net.email.provider.store, EMAIL_ZONE, { nsec3: true });
    expect(text).toContain(csiToName(EMAIL));
    expect(text).not.toContain('dave@example.com');
    expect(text).not.toContain('mailto:');
    const maps = [...text.matchAll(/\sTYPE65400\s+\\# \d+ ([0-9a-fA-F ]+)$/gm)].map((m) =>
      (m[1] ?? '').replace(/\s/g, ''),
    );
    expect(maps).toHaveLength(1);
    for (const hex of maps) expect(spelledIn(hex, EMAIL)).toEqual([]);
  });
});
