import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createAttestation,
  createMapping,
  decodeCbor,
  decodeMapping,
  encodeCbor,
  encodeMapping,
  keyPairFromSeed,
  MAX_CBOR_DEPTH,
  MAX_SIGNED_OBJECT_OCTETS,
  receivedMappingSigningInputs,
  SignedObjectError,
  signingInput,
  verifyAttestation,
  verifyMapping,
  verifyMappingBatched,
  createVerifyPool,
  encodeAttestation,
  type CborMap,
  type CborValue,
  type Mapping,
  type MspEntry,
  type SealedBox,
} from '../src/index.js';
import {
  encodeHead,
  readHead,
  readMapSpans,
  skipDeterministicItem,
  spliceMapEntry,
} from '../src/protocol/cbor-walk.js';

// The signed content of a received Mapping (and of its Attestation) is cut from the received
// octets (signed.ts, receivedContent); these tests check that it is, byte for byte, the content
// the encoder builds from the decoded object (signingInput), and that octets the strict decoder
// refuses never get that far.

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const DAY = 86_400;
const T0 = 1_767_225_600;
const NOW = T0 + DAY;
const RECIPIENT_SEED = new Uint8Array(32).fill(0x01);
const PROVER_SEED = new Uint8Array(32).fill(0x02);
const RECIPIENT = keyPairFromSeed(RECIPIENT_SEED);

/** Both signing inputs of `bytes` built the old way: decode, then encode with `csi` inserted. */
function reencoded(
  bytes: Uint8Array,
  csi: string,
): { mapping: Uint8Array; attestation: Uint8Array } {
  const m = decodeMapping(bytes);
  return {
    mapping: signingInput('mapping', m, csi),
    attestation: signingInput('attestation', m.att, csi),
  };
}

function mappingFor(
  csi: string,
  fields: { msps: MspEntry[]; sealed?: SealedBox[]; seq: number; iat: number; new: boolean },
): Mapping {
  const att = createAttestation(
    { csi, key: RECIPIENT.publicKey, nbf: fields.iat, exp: fields.iat + 365 * DAY },
    PROVER_SEED,
  );
  return createMapping(
    {
      csi,
      msps: fields.msps,
      ...(fields.sealed === undefined ? {} : { sealed: fields.sealed }),
      seq: fields.seq,
      iat: fields.iat,
      exp: fields.iat + 30 * DAY,
      new: fields.new,
      att,
    },
    RECIPIENT_SEED,
  );
}

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
const provider = fc.tuple(label, label).map(([a, b]) => `${a}.${b}`);
const mspEntry: fc.Arbitrary<MspEntry> = fc.record(
  {
    provider,
    tags: fc.array(fc.string({ minLength: 1, maxLength: 20, unit: 'grapheme' }), {
      maxLength: 4,
    }),
    uri: fc.string({ minLength: 1, maxLength: 60, unit: 'grapheme' }),
  },
  { requiredKeys: ['provider', 'tags'] },
);
const sealedBox: fc.Arbitrary<SealedBox> = fc.record({
  kid: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  enc: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  ct: fc.uint8Array({ minLength: 17, maxLength: 300 }),
});
/** CSIs of both kinds, of lengths on both sides of the 23/24-octet text-head boundary. */
const csi = fc.oneof(
  fc.stringMatching(/^[0-9]{1,15}$/).map((d) => `tel:+${d}`),
  fc
    .tuple(fc.stringMatching(/^[a-z0-9.]{1,60}$/), provider)
    .map(([local, domain]) => `mailto:${local}@${domain}`),
);
const mappingCase = fc.record(
  {
    csi,
    msps: fc.array(mspEntry, { maxLength: 5 }),
    sealed: fc.array(sealedBox, { minLength: 1, maxLength: 3 }),
    seq: fc.maxSafeInteger().map((n) => Math.abs(n)),
    iat: fc.integer({ min: 0, max: 2 ** 40 }),
    new: fc.boolean(),
  },
  { requiredKeys: ['csi', 'msps', 'seq', 'iat', 'new'] },
);

describe('signed content cut from received octets', () => {
  it('equals the re-encoded content byte for byte, for generated mappings and CSIs', () => {
    fc.assert(
      fc.property(mappingCase, (c) => {
        const bytes = encodeMapping(mappingFor(c.csi, c));
        const cut = receivedMappingSigningInputs(bytes, c.csi);
        const again = reencoded(bytes, c.csi);
        expect(Buffer.from(cut.mapping).equals(again.mapping)).toBe(true);
        expect(Buffer.from(cut.attestation).equals(again.attestation)).toBe(true);
        expect(verifyMapping(bytes, { csi: c.csi, now: c.iat + 1 }).kind).toBe('verified');
      }),
      { numRuns: 150 },
    );
  });

  it('equals the re-encoded content for another CSI too (whose signatures then fail)', () => {
    fc.assert(
      fc.property(mappingCase, csi, (c, other) => {
        const bytes = encodeMapping(mappingFor(c.csi, c));
        expect(receivedMappingSigningInputs(bytes, other)).toEqual(reencoded(bytes, other));
      }),
      { numRuns: 100 },
    );
  });

  it('reproduces the signing inputs of the mapping vectors of docs/protocol.md §7.2', () => {
    const doc = readFileSync(
      join(import.meta.dirname, '..', '..', '..', 'docs', 'protocol.md'),
      'utf8',
    );
    const section = doc.slice(doc.indexOf('### 7.2 Signed objects'), doc.indexOf('### 7.3'));
    const csiOf = /CSI `([^`]+)`/;
    const fences = [...section.matchAll(/\n([^\n]*)\n[^`]*?```\n([\s\S]*?)```/g)];
    let mappings = 0;
    for (const [, , body] of fences) {
      const field = (name: string): Uint8Array | undefined => {
        const m = new RegExp(`(?:^|\\n)${name}:\\n((?:  [0-9a-f]+\\n)+)`).exec(body ?? '');
        return m?.[1] === undefined ? undefined : hex(m[1]);
      };
      const encoded = field('encoded');
      const input = field('signing input');
      if (encoded === undefined || input === undefined) continue;
      const prefix = Buffer.from(input).toString('latin1');
      if (!prefix.startsWith('MIMI-Discovery-v1/mapping\0')) continue;
      const vectorCsi = csiOf.exec(section)?.[1] ?? '';
      const cut = receivedMappingSigningInputs(encoded, vectorCsi);
      expect(Buffer.from(cut.mapping).toString('hex')).toBe(Buffer.from(input).toString('hex'));
      expect(cut).toEqual(reencoded(encoded, vectorCsi));
      mappings++;
    }
    // The clear mapping and the sealed one.
    expect(mappings).toBeGreaterThanOrEqual(2);
  });

  it('reports a content over the bound as the encoder does, with the same detail', () => {
    // A mapping whose encoding fits, but not with a long CSI inserted.
    const longCsi = `mailto:${'a'.repeat(240)}@b.example`;
    const fill = (ct: number): Mapping =>
      mappingFor('tel:+1', {
        msps: [],
        sealed: [1, 2, 3, 4].map((i) => ({
          kid: new Uint8Array(8).fill(i),
          enc: new Uint8Array(32),
          ct: new Uint8Array(ct),
        })),
        seq: 1,
        iat: T0,
        new: false,
      });
    // Grows the boxes until the content with the long CSI no longer fits.
    let ct = 1800;
    let bytes = encodeMapping(fill(ct));
    const fits = (b: Uint8Array): boolean => {
      try {
        signingInput('mapping', decodeMapping(b), longCsi);
        return true;
      } catch {
        return false;
      }
    };
    while (fits(bytes)) {
      bytes = encodeMapping(fill(++ct));
    }
    // Its attestation made for the long CSI (same size), so the attestation's signature passes
    // and the mapping's content is built; no signer could sign that content.
    const att = createAttestation(
      { csi: longCsi, key: RECIPIENT.publicKey, nbf: T0, exp: T0 + 365 * DAY },
      PROVER_SEED,
    );
    bytes = encodeCbor({
      ...(decodeCbor(bytes) as CborMap),
      att: decodeCbor(encodeAttestation(att)),
    });
    expect(bytes.length).toBeLessThanOrEqual(MAX_SIGNED_OBJECT_OCTETS);
    const result = verifyMapping(bytes, { csi: longCsi, now: NOW });
    expect(result).toMatchObject({ kind: 'failed', reason: 'malformed' });
    let encoderError: unknown;
    try {
      signingInput('mapping', decodeMapping(bytes), longCsi);
    } catch (error) {
      encoderError = error;
    }
    expect(encoderError).toMatchObject({ code: 'ERR_CBOR_TOO_LARGE' });
    expect(result.kind === 'failed' ? result.detail : '').toBe(
      `mapping.sig: the signed content ${(encoderError as Error).message}`,
    );
  });
});

describe('hostile octets never reach the signature check', () => {
  const good = encodeMapping(
    mappingFor('tel:+442079460018', {
      msps: [{ provider: 'msp.example', tags: ['mls'] }],
      seq: 1,
      iat: T0,
      new: true,
    }),
  );
  const map = decodeCbor(good) as CborMap;

  /** Octets of `map` with `edit` applied to the encoding, by hand. */
  const cases: [string, Uint8Array][] = [
    ['truncated by one octet', good.subarray(0, good.length - 1)],
    ['truncated to the head', good.subarray(0, 1)],
    ['a trailing octet', Uint8Array.from([...good, 0x00])],
    ['a second map after it', Uint8Array.from([...good, 0xa0])],
    ['an indefinite-length map', Uint8Array.from([0xbf, ...good.subarray(1), 0xff])],
    ['a head count of one more', Uint8Array.from([(good[0] as number) + 1, ...good.subarray(1)])],
    [
      'a head count in two octets',
      Uint8Array.from([0xb8, (good[0] as number) & 0x1f, ...good.subarray(1)]),
    ],
    [
      'a declared map count of 2^53 - 1',
      Uint8Array.from([0xbb, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...good.subarray(1)]),
    ],
    [
      'a declared map count over 2^53',
      Uint8Array.from([0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...good.subarray(1)]),
    ],
    ['a csi key already present', encodeCbor({ ...map, csi: 'tel:+442079460018' })],
    ['no sig', encodeCbor(Object.fromEntries(Object.entries(map).filter(([k]) => k !== 'sig')))],
    [
      'att without its sig',
      encodeCbor({
        ...map,
        att: Object.fromEntries(Object.entries(map['att'] as CborMap).filter(([k]) => k !== 'sig')),
      }),
    ],
    [
      'att with a csi',
      encodeCbor({ ...map, att: { ...(map['att'] as CborMap), csi: 'tel:+442079460018' } }),
    ],
  ];

  /** The keys swapped: the first two entries (`v: 2` and `att`) in the other order. */
  function swappedFirstEntries(): Uint8Array {
    const { entries } = readMapSpans(good, 0, good.length, MAX_CBOR_DEPTH);
    const [a, b] = entries;
    if (a === undefined || b === undefined) throw new Error('two entries expected');
    return Uint8Array.from([
      ...good.subarray(0, a.keyStart),
      ...good.subarray(b.keyStart, b.valueEnd),
      ...good.subarray(a.keyStart, a.valueEnd),
      ...good.subarray(b.valueEnd),
    ]);
  }
  /** The first entry twice, with the head count raised. */
  function duplicatedFirstEntry(): Uint8Array {
    const { entries } = readMapSpans(good, 0, good.length, MAX_CBOR_DEPTH);
    const a = entries[0];
    if (a === undefined) throw new Error('an entry expected');
    return Uint8Array.from([
      (good[0] as number) + 1,
      ...good.subarray(a.keyStart, a.valueEnd),
      ...good.subarray(1),
    ]);
  }
  /** `seq: 1` written in two octets instead of one. */
  function longSeq(): Uint8Array {
    const at = Buffer.from(good).indexOf(Buffer.from('63736571' + '01', 'hex'));
    expect(at).toBeGreaterThan(0);
    return Uint8Array.from([...good.subarray(0, at + 4), 0x18, 0x01, ...good.subarray(at + 5)]);
  }
  cases.push(
    ['keys out of order', swappedFirstEntries()],
    ['a repeated key', duplicatedFirstEntry()],
    ['an integer not in its shortest form', longSeq()],
  );

  it.each(cases)('refuses %s as malformed, before any signature check', (_, bytes) => {
    const result = verifyMapping(bytes, { csi: 'tel:+442079460018', now: NOW });
    expect(result).toMatchObject({ kind: 'failed', reason: 'malformed' });
    // The same octets are refused by the decoder, so no content is ever cut from them.
    expect(() => decodeMapping(bytes)).toThrow(SignedObjectError);
    expect(() => receivedMappingSigningInputs(bytes, 'tel:+442079460018')).toThrow(
      SignedObjectError,
    );
  });

  it('verifies the untouched octets, so the cases above fail for their edit', () => {
    expect(verifyMapping(good, { csi: 'tel:+442079460018', now: NOW }).kind).toBe('verified');
  });

  it('refuses a version-1 attestation inside as unsupported-version, as before', () => {
    const bytes = encodeCbor({ ...map, att: { ...(map['att'] as CborMap), v: 1 } });
    expect(verifyMapping(bytes, { csi: 'tel:+442079460018', now: NOW })).toMatchObject({
      kind: 'failed',
      reason: 'unsupported-version',
    });
  });

  it('never verifies a mapping with one octet changed, whatever the octet', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const changed = Uint8Array.from(good);
        const i = at % changed.length;
        changed[i] = (changed[i] as number) ^ xor;
        expect(verifyMapping(changed, { csi: 'tel:+442079460018', now: NOW }).kind).toBe('failed');
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a standalone attestation edited the same ways as the decoder does', () => {
    const att = createAttestation(
      { csi: 'tel:+1', key: RECIPIENT.publicKey, nbf: T0, exp: T0 + DAY * 2 },
      PROVER_SEED,
    );
    const bytes = encodeAttestation(att);
    expect(verifyAttestation(bytes, { csi: 'tel:+1', now: NOW }).kind).toBe('verified');
    const withCsi = encodeCbor({ ...(decodeCbor(bytes) as CborMap), csi: 'tel:+1' });
    expect(verifyAttestation(withCsi, { csi: 'tel:+1', now: NOW })).toMatchObject({
      reason: 'malformed',
    });
    expect(verifyAttestation(bytes.subarray(1), { csi: 'tel:+1', now: NOW })).toMatchObject({
      reason: 'malformed',
    });
  });
});

describe('cbor-walk', () => {
  it('splices the entry in at its sorted place and keeps the count in its shortest form', () => {
    // {"a": 1, "sig": h''} -> {"a": 1, "csi": "x"}; {"zz": 1, "sig": h''} -> {"csi": "x", "zz": 1}.
    for (const value of [
      { a: 1, sig: new Uint8Array(0) },
      { zz: 1, sig: new Uint8Array(0) },
      { v: 2, sig: new Uint8Array(3), key: new Uint8Array(0), b: [1, [2, { x: null }]] },
    ] satisfies CborMap[]) {
      const bytes = encodeCbor(value);
      const rest = Object.fromEntries(Object.entries(value).filter(([k]) => k !== 'sig'));
      const spliced = spliceMapEntry(
        bytes,
        0,
        bytes.length,
        { drop: 'sig', insertKey: 'csi', insertText: 'x' },
        MAX_CBOR_DEPTH,
        MAX_SIGNED_OBJECT_OCTETS,
      );
      expect(spliced).toEqual(encodeCbor({ ...rest, csi: 'x' }));
    }
  });

  it('writes a map of 24 or more entries with a two-octet head, as the encoder does', () => {
    const value: Record<string, CborValue> = { sig: true };
    for (let i = 0; i < 30; i++) value[`k${i}`] = i;
    const bytes = encodeCbor(value);
    const rest = Object.fromEntries(Object.entries(value).filter(([k]) => k !== 'sig'));
    expect(
      spliceMapEntry(
        bytes,
        0,
        bytes.length,
        { drop: 'sig', insertKey: 'csi', insertText: 'tel:+1' },
        MAX_CBOR_DEPTH,
        MAX_SIGNED_OBJECT_OCTETS,
      ),
    ).toEqual(encodeCbor({ ...rest, csi: 'tel:+1' }));
  });

  it('writes heads in their shortest form, as the encoder does', () => {
    for (const n of [0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
      expect(encodeHead(0, n)).toEqual(encodeCbor(n));
      const head = readHead(encodeHead(0, n), 0, encodeHead(0, n).length);
      expect(head.argument).toBe(n);
    }
  });

  it('never reads past the end it is given, whatever a head declares', () => {
    // A byte string declaring 2^32 octets, a text string of 5 in 3, an array of 1000 in 2.
    for (const bytes of [hex('5b0000000100000000'), hex('6561626364'), hex('9903e800')]) {
      expect(() => skipDeterministicItem(bytes, 0, bytes.length, 0, MAX_CBOR_DEPTH)).toThrow(
        SignedObjectError,
      );
    }
    // A valid item is refused when the end given cuts it.
    const item = encodeCbor({ a: [1, 2, 3] });
    expect(skipDeterministicItem(item, 0, item.length, 0, MAX_CBOR_DEPTH)).toBe(item.length);
    expect(() => skipDeterministicItem(item, 0, item.length - 1, 0, MAX_CBOR_DEPTH)).toThrow(
      SignedObjectError,
    );
  });

  it('refuses to splice when the dropped key is absent or the inserted one present', () => {
    const edit = { drop: 'sig', insertKey: 'csi', insertText: 'x' } as const;
    for (const value of [{ a: 1 }, { csi: 'y', sig: 1 }, [1, 2]] as CborValue[]) {
      const bytes = encodeCbor(value);
      expect(() =>
        spliceMapEntry(bytes, 0, bytes.length, edit, MAX_CBOR_DEPTH, MAX_SIGNED_OBJECT_OCTETS),
      ).toThrow(SignedObjectError);
    }
  });
});

describe('verifyMappingBatched', () => {
  // Both signatures through a verification pool's batch, as the resolver checks MAP records.
  const pool = createVerifyPool({ threads: 1, minJobsForThreads: 0 });
  const batch = pool.verifyBatch;
  const CSI = 'tel:+442079460018';
  const good = encodeMapping(
    mappingFor(CSI, {
      msps: [{ provider: 'chat.example', tags: [] }],
      seq: 1,
      iat: T0,
      new: false,
    }),
  );

  it.each([
    ['a valid mapping', good, CSI, NOW],
    ['another CSI than the one signed', good, 'tel:+442079460019', NOW],
    ['a time before iat (beyond the skew)', good, CSI, T0 - DAY],
    ['a time after exp', good, CSI, T0 + 31 * DAY],
    ['octets that are not CBOR', Uint8Array.of(0xff, 0x00), CSI, NOW],
  ])('gives the result of verifyMapping for %s', async (_, bytes, csi, now) => {
    expect(await verifyMappingBatched(bytes, { csi, now }, batch)).toEqual(
      verifyMapping(bytes, { csi, now }),
    );
  });

  it('gives the result of verifyMapping for a mapping with any one octet changed', async () => {
    expect(await pool.ready()).toBe(true);
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.integer({ min: 1, max: 255 }), async (at, xor) => {
        const changed = Uint8Array.from(good);
        const i = at % changed.length;
        changed[i] = (changed[i] as number) ^ xor;
        const options = { csi: CSI, now: NOW };
        expect(await verifyMappingBatched(changed, options, batch)).toEqual(
          verifyMapping(changed, options),
        );
      }),
      { numRuns: 200 },
    );
    expect(pool.stats().onThreads).toBeGreaterThan(0);
    await pool.close();
  });
});
