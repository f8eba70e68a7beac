import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WireError } from '../src/protocol/errors.js';
import { parseLabels } from '../src/protocol/names.js';
import { encodeName } from '../src/protocol/wire.js';

/** The wire form built from `parseLabels`, the general parser the encoder's fast path skips. */
function reference(name: string, canonical: boolean): Uint8Array {
  const labels = parseLabels(name).map((label) =>
    canonical ? label.map((b) => (b >= 0x41 && b <= 0x5a ? b + 0x20 : b)) : label,
  );
  return Uint8Array.from([...labels.flatMap((l) => [l.length, ...l]), 0]);
}

describe('encodeName on names without escapes', () => {
  const label = fc.stringMatching(/^[0-9A-Za-z_*-]{1,63}$/);

  it('matches the general parser, with and without a trailing dot and lowercasing', () => {
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 4 }), fc.boolean(), (labels, dot) => {
        const name = `${labels.join('.')}${dot ? '.' : ''}`;
        for (const canonical of [false, true]) {
          expect(encodeName(name, { canonical })).toEqual(reference(name, canonical));
        }
      }),
    );
  });

  it('still refuses an over-long label or name with the codec error', () => {
    expect(() => encodeName(`${'a'.repeat(64)}.example`)).toThrow(WireError);
    const long = Array.from({ length: 5 }, () => 'b'.repeat(63)).join('.');
    expect(() => encodeName(long)).toThrow(WireError);
    // Three 63-octet labels and one of 61: 3 × 64 + 62 + 1 = 255 octets, the most allowed.
    const edge = [...Array.from({ length: 3 }, () => 'c'.repeat(63)), 'c'.repeat(61)].join('.');
    expect(encodeName(edge)).toHaveLength(255);
    expect(() => encodeName(`c${edge}`)).toThrow(WireError);
  });
});
