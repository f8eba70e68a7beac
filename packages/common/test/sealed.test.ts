import { createHash } from 'node:crypto';
import { Aes128Gcm, CipherSuite, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import { describe, expect, it } from 'vitest';
import {
  AUDIENCE_KEY_ID_OCTETS,
  MAX_AUDIENCE_KEY_FILE_OCTETS,
  MAX_SEALED_CIPHERTEXT_OCTETS,
  MAX_SEALED_PLAINTEXT_OCTETS,
  SEALED_PADDING_BLOCK,
  SealedError,
  SignedObjectError,
  audienceKeyFromSecret,
  audienceKeyId,
  createAttestation,
  createMapping,
  decodeMapping,
  encodeMapping,
  encodeMspEntries,
  formatAudienceKey,
  generateAudienceKey,
  keyPairFromSeed,
  openSealed,
  parseAudienceKey,
  sealMsps,
  verifyMapping,
  type AudienceKey,
  type Mapping,
  type MspEntry,
  type SealedBox,
  type SealedErrorCode,
} from '../src/index.js';

// Fixed keys of the vectors (docs/protocol.md §7): recipient 01…01, prover 02…02.
const RECIPIENT_SEED = new Uint8Array(32).fill(0x01);
const OTHER_SEED = new Uint8Array(32).fill(0x04);
const PROVER_SEED = new Uint8Array(32).fill(0x02);
const RECIPIENT = keyPairFromSeed(RECIPIENT_SEED);
const OTHER = keyPairFromSeed(OTHER_SEED);
const CSI = 'tel:+442079460018';
const OTHER_CSI = 'tel:+442079460019';
const KEY = RECIPIENT.publicKey;
const DAY = 86_400;
const T0 = 1_767_225_600;
const NOW = T0 + DAY;

const ENTRIES: MspEntry[] = [
  { provider: 'wire.example', tags: ['business', 'pref:1'] },
  { provider: 'chat.example', tags: ['ctx:soccer'], uri: 'im:alice@chat.example' },
];

const secret = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

async function codeOf(promise: Promise<unknown>): Promise<SealedErrorCode | string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SealedError) return error.code;
    if (error instanceof SignedObjectError) return `SignedObjectError ${error.code}`;
    throw error;
  }
  return 'no error';
}

/** The HPKE suite of docs/protocol.md §4, built here from the library, not from sealed.ts. */
const suite = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Aes128Gcm(),
});

/** The aad of the spec, computed independently: label, 00, CSI, 00, key. */
function specAad(csi: string, key: Uint8Array): Uint8Array {
  return new Uint8Array([...utf8('MIMI-Discovery-v1/sealed\0'), ...utf8(csi), 0, ...key]);
}

/** A box around any plaintext, sealed as the spec says: what a careless or hostile sealer makes. */
async function sealRaw(
  plaintext: Uint8Array,
  audience: AudienceKey,
  csi = CSI,
  key = KEY,
): Promise<SealedBox> {
  const sender = await suite.createSenderContext({
    recipientPublicKey: await suite.kem.deserializePublicKey(audience.publicKey),
    info: utf8('MIMI-Discovery-v1/sealed'),
  });
  const ct = new Uint8Array(await sender.seal(plaintext, specAad(csi, key)));
  return { kid: audience.kid, enc: new Uint8Array(sender.enc), ct };
}

/** The plaintext layout of the spec: length, entries, `padTo` octets in all. */
function plaintextOf(entries: Uint8Array, padTo: number): Uint8Array {
  const out = new Uint8Array(padTo);
  out[0] = entries.length >> 8;
  out[1] = entries.length & 0xff;
  out.set(entries, 2);
  return out;
}

function mappingWith(
  sealed: readonly SealedBox[] | undefined,
  seq = 1,
  seed = RECIPIENT_SEED,
): Mapping {
  const key = keyPairFromSeed(seed).publicKey;
  const att = createAttestation({ csi: CSI, key, nbf: T0, exp: T0 + 365 * DAY }, PROVER_SEED);
  return createMapping(
    {
      csi: CSI,
      msps: [],
      seq,
      iat: T0,
      exp: T0 + 30 * DAY,
      new: false,
      att,
      ...(sealed === undefined ? {} : { sealed }),
    },
    seed,
  );
}

describe('audience keys', () => {
  it('derive the public key and the id from the secret, the id as the spec hashes it', async () => {
    const key = await audienceKeyFromSecret(secret(0x05));
    expect(key.secretKey).toEqual(secret(0x05));
    expect(key.publicKey).toHaveLength(32);
    const digest = createHash('sha256')
      .update(utf8('MIMI-Discovery-v1/audience\0'))
      .update(key.publicKey)
      .digest();
    expect(key.kid).toEqual(new Uint8Array(digest.subarray(0, AUDIENCE_KEY_ID_OCTETS)));
    expect(audienceKeyId(key.publicKey)).toEqual(key.kid);
    expect((await audienceKeyFromSecret(secret(0x07))).kid).not.toEqual(key.kid);
  });

  it('are fresh each time they are generated', async () => {
    const [a, b] = await Promise.all([generateAudienceKey(), generateAudienceKey()]);
    expect(a.secretKey).not.toEqual(b.secretKey);
    expect(await audienceKeyFromSecret(a.secretKey)).toEqual(a);
  });

  it('round-trip through the mimi-audience line and a file of it with comments', async () => {
    const key = await generateAudienceKey();
    const line = formatAudienceKey(key);
    expect(line).toMatch(/^mimi-audience:[A-Za-z0-9_-]{43}$/);
    expect(await parseAudienceKey(line)).toEqual(key);
    const file = `# soccer parents\r\n# made 2026-01-01\r\n\r\n${line}\r\n`;
    expect(await parseAudienceKey(file)).toEqual(key);
  });

  it.each([
    ['an empty text', ''],
    ['only comments', '# nothing here\n'],
    ['no prefix', 'BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU'],
    ['another prefix', 'mimi-audiences:BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU'],
    ['padding', 'mimi-audience:BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU='],
    ['31 octets', 'mimi-audience:BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQ'],
    ['standard base64', 'mimi-audience:BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB+/'],
    ['a non-canonical last character', 'mimi-audience:BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQV'],
    [
      'two key lines',
      'mimi-audience:BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU\n' +
        'mimi-audience:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc',
    ],
    [
      'a text over the bound',
      `${'#'.repeat(MAX_AUDIENCE_KEY_FILE_OCTETS)}\nmimi-audience:BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU`,
    ],
  ])('are refused from %s with ERR_AUDIENCE_KEY, never quoting the secret', async (_, text) => {
    const error = await parseAudienceKey(text).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SealedError);
    expect(error).toMatchObject({ code: 'ERR_AUDIENCE_KEY' });
    expect((error as Error).message).not.toContain('BQUFBQUF');
  });

  it('reads a file at the bound and refuses one octet more', async () => {
    const line = formatAudienceKey(await audienceKeyFromSecret(secret(0x05)));
    const comment = `#${'x'.repeat(MAX_AUDIENCE_KEY_FILE_OCTETS - line.length - 3)}\n`;
    expect(comment.length + line.length).toBe(MAX_AUDIENCE_KEY_FILE_OCTETS - 1);
    await expect(parseAudienceKey(`${comment}${line}\n`)).resolves.toMatchObject({
      secretKey: secret(0x05),
    });
    expect(await codeOf(parseAudienceKey(`${comment}${line}\n\n`))).toBe('ERR_AUDIENCE_KEY');
  });

  it('refuses a secret or a public key that is not 32 octets', async () => {
    expect(await codeOf(audienceKeyFromSecret(new Uint8Array(31)))).toBe('ERR_AUDIENCE_KEY');
    expect(() => audienceKeyId(new Uint8Array(33))).toThrow(SealedError);
  });
});

describe('sealing and opening', () => {
  it('opens what it sealed, for the same CSI, key and audience', async () => {
    const audience = await generateAudienceKey();
    const box = await sealMsps(CSI, KEY, ENTRIES, audience);
    expect(box.kid).toEqual(audience.kid);
    expect(box.enc).toHaveLength(32);
    expect(await openSealed(CSI, KEY, box, audience)).toEqual(ENTRIES);
  });

  it('opens with the public key the box was sealed to and the secret alone', async () => {
    const audience = await generateAudienceKey();
    const box = await sealMsps(CSI, KEY, ENTRIES, { publicKey: audience.publicKey });
    const holder = await parseAudienceKey(formatAudienceKey(audience));
    expect(await openSealed(CSI, KEY, box, holder)).toEqual(ENTRIES);
  });

  it('uses a fresh ephemeral key for each box', async () => {
    const audience = await generateAudienceKey();
    const [a, b] = await Promise.all([
      sealMsps(CSI, KEY, ENTRIES, audience),
      sealMsps(CSI, KEY, ENTRIES, audience),
    ]);
    expect(a.enc).not.toEqual(b.enc);
    expect(a.ct).not.toEqual(b.ct);
  });

  it('is deterministic with a fixed ephemeral secret, and only then', async () => {
    const audience = await audienceKeyFromSecret(secret(0x05));
    const fixed = { ephemeralSecret: secret(0x06) };
    const a = await sealMsps(CSI, KEY, ENTRIES, audience, fixed);
    const b = await sealMsps(CSI, KEY, ENTRIES, audience, fixed);
    expect(b).toEqual(a);
  });

  it('keeps boxes apart when many are sealed and opened at once', async () => {
    const audiences = await Promise.all(Array.from({ length: 8 }, () => generateAudienceKey()));
    const lists = audiences.map((_, i): MspEntry[] => [
      { provider: `msp${i}.example`, tags: [`ctx:group-${i}`] },
    ]);
    const boxes = await Promise.all(audiences.map((a, i) => sealMsps(CSI, KEY, lists[i]!, a)));
    const opened = await Promise.all(
      boxes.map((box, i) => openSealed(CSI, KEY, box, audiences[i]!)),
    );
    expect(opened).toEqual(lists);
  });

  it('seals an empty list of entries', async () => {
    const audience = await generateAudienceKey();
    const box = await sealMsps(CSI, KEY, [], audience);
    expect(await openSealed(CSI, KEY, box, audience)).toEqual([]);
  });
});

describe('a box that is not for the key or the mapping', () => {
  it('is ERR_SEALED_KID for another audience key, which is not even tried', async () => {
    const [audience, stranger] = await Promise.all([generateAudienceKey(), generateAudienceKey()]);
    const box = await sealMsps(CSI, KEY, ENTRIES, audience);
    expect(await codeOf(openSealed(CSI, KEY, box, stranger))).toBe('ERR_SEALED_KID');
  });

  it('is ERR_SEALED_KID when a key object claims the box id but holds another public key', async () => {
    const [audience, stranger] = await Promise.all([generateAudienceKey(), generateAudienceKey()]);
    const box = await sealMsps(CSI, KEY, ENTRIES, audience);
    const liar: AudienceKey = { ...stranger, kid: audience.kid };
    expect(await codeOf(openSealed(CSI, KEY, box, liar))).toBe('ERR_SEALED_KID');
  });

  it('is ERR_SEALED_OPEN with the right id but another secret', async () => {
    const [audience, stranger] = await Promise.all([generateAudienceKey(), generateAudienceKey()]);
    const box = await sealMsps(CSI, KEY, ENTRIES, audience);
    const wrongSecret: AudienceKey = { ...audience, secretKey: stranger.secretKey };
    expect(await codeOf(openSealed(CSI, KEY, box, wrongSecret))).toBe('ERR_SEALED_OPEN');
  });

  it.each([
    ['the first octet of ct', 'ct', 0],
    ['the last octet of ct (the tag)', 'ct', -1],
    ['an octet of enc', 'enc', 5],
  ] as const)('is ERR_SEALED_OPEN when %s is changed', async (_, field, at) => {
    const audience = await generateAudienceKey();
    const box = await sealMsps(CSI, KEY, ENTRIES, audience);
    const bytes = Uint8Array.from(box[field]);
    const i = at < 0 ? bytes.length + at : at;
    bytes[i] = (bytes[i] ?? 0) ^ 0x01;
    const tampered = { ...box, [field]: bytes };
    expect(await codeOf(openSealed(CSI, KEY, tampered, audience))).toBe('ERR_SEALED_OPEN');
  });

  it('is ERR_SEALED_OPEN for an enc of all zeros (a point X25519 refuses)', async () => {
    const audience = await generateAudienceKey();
    const box = await sealMsps(CSI, KEY, ENTRIES, audience);
    const zero = { ...box, enc: new Uint8Array(32) };
    expect(await codeOf(openSealed(CSI, KEY, zero, audience))).toBe('ERR_SEALED_OPEN');
  });

  it('does not open when moved to another CSI', async () => {
    const audience = await generateAudienceKey();
    const box = await sealMsps(CSI, KEY, ENTRIES, audience);
    expect(await codeOf(openSealed(OTHER_CSI, KEY, box, audience))).toBe('ERR_SEALED_OPEN');
  });

  it('does not open in another recipient key’s mapping, even one that signs it', async () => {
    const audience = await generateAudienceKey();
    const box = await sealMsps(CSI, KEY, ENTRIES, audience);
    // Someone else with an attested key for the CSI republishes the box as their own: the
    // mapping verifies (they signed it), but the box was sealed for the first key.
    const copy = mappingWith([box], 1, OTHER_SEED);
    expect(verifyMapping(encodeMapping(copy), { csi: CSI, now: NOW }).kind).toBe('verified');
    expect(await codeOf(openSealed(CSI, OTHER.publicKey, box, audience))).toBe('ERR_SEALED_OPEN');
    expect(await openSealed(CSI, KEY, box, audience)).toEqual(ENTRIES);
  });

  it('is ERR_SEALED_MALFORMED for a box of the wrong shape, before any key is tried', async () => {
    const audience = await generateAudienceKey();
    const box = await sealMsps(CSI, KEY, ENTRIES, audience);
    for (const bad of [
      { ...box, kid: box.kid.subarray(0, 7) },
      { ...box, enc: new Uint8Array(31) },
      { ...box, ct: new Uint8Array(16) },
      { ...box, ct: new Uint8Array(MAX_SEALED_CIPHERTEXT_OCTETS + 1) },
    ]) {
      expect(await codeOf(openSealed(CSI, KEY, bad, audience))).toBe('ERR_SEALED_MALFORMED');
    }
  });
});

describe('padding', () => {
  it('seals a whole number of blocks', async () => {
    const audience = await generateAudienceKey();
    for (const entries of [[], ENTRIES, [...ENTRIES, ...ENTRIES, ...ENTRIES]]) {
      const box = await sealMsps(CSI, KEY, entries, audience);
      const plaintext = box.ct.length - 16;
      expect(plaintext % SEALED_PADDING_BLOCK).toBe(0);
      expect(plaintext).toBe(
        Math.ceil((2 + encodeMspEntries(entries).length) / SEALED_PADDING_BLOCK) *
          SEALED_PADDING_BLOCK,
      );
    }
  });

  it('gives two entry lists of different length within a block the same ct length', async () => {
    const audience = await generateAudienceKey();
    const one: MspEntry[] = [{ provider: 'a.example', tags: [] }];
    const two: MspEntry[] = [
      { provider: 'a.example', tags: ['business'] },
      { provider: 'b.example', tags: [] },
    ];
    expect(encodeMspEntries(one).length).not.toBe(encodeMspEntries(two).length);
    expect(encodeMspEntries(two).length + 2).toBeLessThanOrEqual(SEALED_PADDING_BLOCK);
    const [a, b] = await Promise.all([
      sealMsps(CSI, KEY, one, audience),
      sealMsps(CSI, KEY, two, audience),
    ]);
    expect(a.ct.length).toBe(b.ct.length);
    expect(a.ct.length).toBe(16 + SEALED_PADDING_BLOCK);
  });

  it('seals entries whose padded encoding is exactly the bound, and refuses one octet more', async () => {
    const audience = await generateAudienceKey();
    // Three entries with long URIs, the last one's length tuned to reach the bound exactly
    // (its length stays in the 2-octet CBOR length form, so one more character is one octet).
    const entries = (last: number): MspEntry[] => [
      { provider: 'a.example', tags: [], uri: `https://a.example/${'a'.repeat(480)}` },
      { provider: 'b.example', tags: [], uri: `https://b.example/${'b'.repeat(480)}` },
      { provider: 'c.example', tags: [], uri: `https://c.example/${'c'.repeat(480)}` },
      { provider: 'd.example', tags: [], uri: `https://d.example/${'d'.repeat(last)}` },
    ];
    const base = encodeMspEntries(entries(300)).length;
    const fit = 300 + (MAX_SEALED_PLAINTEXT_OCTETS - 2 - base);
    expect(encodeMspEntries(entries(fit)).length).toBe(MAX_SEALED_PLAINTEXT_OCTETS - 2);
    const box = await sealMsps(CSI, KEY, entries(fit), audience);
    expect(box.ct).toHaveLength(MAX_SEALED_CIPHERTEXT_OCTETS);
    expect(await openSealed(CSI, KEY, box, audience)).toEqual(entries(fit));
    expect(await codeOf(sealMsps(CSI, KEY, entries(fit + 1), audience))).toBe(
      'ERR_SEALED_TOO_LARGE',
    );
  });
});

describe('a malformed plaintext', () => {
  const entries = encodeMspEntries(ENTRIES);

  it('is opened when laid out as the spec says (the sealer below is faithful)', async () => {
    const audience = await generateAudienceKey();
    const box = await sealRaw(plaintextOf(entries, 128), audience);
    expect(await openSealed(CSI, KEY, box, audience)).toEqual(ENTRIES);
  });

  const CASES: [string, () => Uint8Array][] = [
    ['not a multiple of the block', () => plaintextOf(entries, 127)],
    ['a whole block of padding more than needed', () => plaintextOf(entries, 192)],
    [
      'a length running past the plaintext',
      () => {
        const p = plaintextOf(entries, 128);
        p[0] = 0;
        p[1] = 127;
        return p;
      },
    ],
    [
      'padding that is not zero',
      () => {
        const p = plaintextOf(entries, 128);
        p[127] = 1;
        return p;
      },
    ],
    [
      'a length that cuts the entries short',
      () => {
        const p = plaintextOf(entries, 128);
        p[1] = entries.length - 1;
        return p;
      },
    ],
    ['entries that are not an array', () => plaintextOf(Uint8Array.of(0xa0), 64)],
    [
      'an entry with an unknown field',
      () =>
        plaintextOf(
          // [{"x": 1, "tags": [], "provider": "a.example"}] in deterministic CBOR.
          Uint8Array.from([
            0x81,
            0xa3,
            0x61,
            0x78,
            0x01,
            0x64,
            ...utf8('tags'),
            0x80,
            0x68,
            ...utf8('provider'),
            0x69,
            ...utf8('a.example'),
          ]),
          64,
        ),
    ],
    [
      'too many entries',
      () => plaintextOf(Uint8Array.from([0x98, 33, ...Array.from({ length: 33 }, () => 0xa0)]), 64),
    ],
  ];

  it.each(CASES)('is ERR_SEALED_MALFORMED with %s', async (_, make) => {
    const audience = await generateAudienceKey();
    const box = await sealRaw(make(), audience);
    expect(await codeOf(openSealed(CSI, KEY, box, audience))).toBe('ERR_SEALED_MALFORMED');
  });
});

describe('arguments', () => {
  it('refuses a CSI, a mapping key or an ephemeral secret of the wrong shape', async () => {
    const audience = await generateAudienceKey();
    expect(await codeOf(sealMsps('alice', KEY, ENTRIES, audience))).toBe('ERR_SEALED_ARGUMENT');
    expect(await codeOf(sealMsps(CSI, KEY.subarray(1), ENTRIES, audience))).toBe(
      'ERR_SEALED_ARGUMENT',
    );
    expect(
      await codeOf(
        sealMsps(CSI, KEY, ENTRIES, audience, { ephemeralSecret: secret(6).subarray(1) }),
      ),
    ).toBe('ERR_SEALED_ARGUMENT');
    expect(await codeOf(sealMsps(CSI, KEY, ENTRIES, { publicKey: new Uint8Array(31) }))).toBe(
      'ERR_AUDIENCE_KEY',
    );
    const box = await sealMsps(CSI, KEY, ENTRIES, audience);
    expect(await codeOf(openSealed('mailto:', KEY, box, audience))).toBe('ERR_SEALED_ARGUMENT');
  });

  it('refuses entries a mapping would refuse, as the signed-object error', async () => {
    const audience = await generateAudienceKey();
    expect(
      await codeOf(sealMsps(CSI, KEY, [{ provider: 'Not A Domain', tags: [] }], audience)),
    ).toBe('SignedObjectError ERR_SIGNED_OBJECT_MALFORMED');
  });
});

describe('boxes in a signed mapping', () => {
  it('travel in the MAP record, verify with the mapping and open after decoding', async () => {
    const audience = await generateAudienceKey();
    const box = await sealMsps(CSI, KEY, ENTRIES, audience);
    const bytes = encodeMapping(mappingWith([box]));
    const result = verifyMapping(bytes, { csi: CSI, now: NOW });
    if (result.kind !== 'verified') throw new Error(result.detail);
    expect(result.value.msps).toEqual([]);
    const [carried] = result.value.sealed ?? [];
    expect(carried).toEqual(box);
    expect(await openSealed(CSI, result.value.key, carried!, audience)).toEqual(ENTRIES);
  });

  it('are covered by the signature: one changed ct octet is bad-signature', async () => {
    const audience = await generateAudienceKey();
    const box = await sealMsps(CSI, KEY, ENTRIES, audience);
    const mapping = mappingWith([box]);
    const ct = Uint8Array.from(box.ct);
    ct[10] = (ct[10] ?? 0) ^ 0x80;
    const forged: Mapping = { ...mapping, sealed: [{ ...box, ct }] };
    expect(verifyMapping(encodeMapping(forged), { csi: CSI, now: NOW })).toMatchObject({
      kind: 'failed',
      reason: 'bad-signature',
    });
    // Dropping a box, or adding one, breaks the signature as well.
    const without = Object.fromEntries(
      Object.entries(mapping).filter(([key]) => key !== 'sealed'),
    ) as Mapping;
    expect(verifyMapping(without, { csi: CSI, now: NOW })).toMatchObject({
      reason: 'bad-signature',
    });
    const extra = await sealMsps(CSI, KEY, ENTRIES, await generateAudienceKey());
    expect(
      verifyMapping({ ...mapping, sealed: [box, extra] }, { csi: CSI, now: NOW }),
    ).toMatchObject({ reason: 'bad-signature' });
  });

  it('rotate: old and new keys open during the hand-over, only the new one after', async () => {
    const [oldKey, newKey] = await Promise.all([generateAudienceKey(), generateAudienceKey()]);
    const handOver = mappingWith(
      await Promise.all([sealMsps(CSI, KEY, ENTRIES, oldKey), sealMsps(CSI, KEY, ENTRIES, newKey)]),
      1,
    );
    const after = mappingWith([await sealMsps(CSI, KEY, ENTRIES, newKey)], 2);

    /** What a holder of `key` opens in `mapping`, as a sender's client would try. */
    const openWith = async (mapping: Mapping, key: AudienceKey): Promise<MspEntry[][]> => {
      const decoded = decodeMapping(encodeMapping(mapping));
      const mine = (decoded.sealed ?? []).filter((b) => Buffer.from(b.kid).equals(key.kid));
      return await Promise.all(mine.map((b) => openSealed(CSI, decoded.key, b, key)));
    };
    expect(await openWith(handOver, oldKey)).toEqual([ENTRIES]);
    expect(await openWith(handOver, newKey)).toEqual([ENTRIES]);
    expect(await openWith(after, newKey)).toEqual([ENTRIES]);
    expect(await openWith(after, oldKey)).toEqual([]);
    const [onlyBox] = after.sealed ?? [];
    expect(await codeOf(openSealed(CSI, KEY, onlyBox!, oldKey))).toBe('ERR_SEALED_KID');
  });
});
