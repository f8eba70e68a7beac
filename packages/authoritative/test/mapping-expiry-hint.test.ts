import { describe, expect, it } from 'vitest';
import { mappingExpiry } from '../src/index.js';
import { mappingExpiryHint } from '../src/store/mapping-expiry-hint.js';
import { mappingRdata } from './expiring-mappings.js';
import { T0 } from './store-battery.js';

// The quick read of a mapping's expiry that `resign` walks a zone with: it must agree with the
// strict decoder on every mapping, and read nothing from what is not one.

describe('the quick read of a mapping expiry', () => {
  it.each([
    { key: 1, exp: T0 + 1000 },
    { key: 2, exp: T0 + 1000, attExp: T0 + 500 },
    { key: 3, exp: 2 ** 32 + 5, attExp: 2 ** 40 },
    { key: 4, exp: 30, attExp: 2 ** 31 },
  ])('agrees with the strict decoder on %o', (spec) => {
    const rdata = mappingRdata(spec);
    expect(mappingExpiryHint(rdata)).toBe(mappingExpiry(rdata));
    expect(mappingExpiryHint(rdata)).toBe(
      Math.min(spec.exp, spec.attExp ?? spec.exp + 365 * 86_400),
    );
  });

  it('reads nothing from octets that are not a mapping', () => {
    const rdata = mappingRdata({ key: 1, exp: T0 + 1000 });
    const cases: Uint8Array[] = [
      new Uint8Array(),
      // {"v": 1}: a map without the expiries.
      Uint8Array.of(0xa1, 0x61, 0x76, 0x01),
      // An array, a text string, an indefinite-length map.
      Uint8Array.of(0x81, 0x01),
      Uint8Array.of(0x63, 0x65, 0x78, 0x70),
      Uint8Array.of(0xbf, 0x63, 0x65, 0x78, 0x70, 0x01, 0xff),
      // Truncated mappings.
      rdata.subarray(0, rdata.length - 70),
      rdata.subarray(0, 3),
    ];
    for (const bytes of cases) expect(mappingExpiryHint(bytes)).toBeUndefined();
  });
});
