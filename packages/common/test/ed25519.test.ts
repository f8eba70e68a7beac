import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ed25519,
  Ed25519Error,
  generateKeyPair,
  keyPairFromSeed,
  MAX_CACHED_VERIFY_KEYS,
  nativeEd25519,
  portableEd25519,
  sign,
  verify,
  createVerifyPool,
  type Ed25519Backend,
} from '../src/index.js';
import { sharedDataPath } from '../../../test/helpers/shared-data.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

// Project Wycheproof, testvectors_v1/ed25519_test.json (v0.9rc5, Apache-2.0): 151 verification
// vectors, 88 valid and 63 invalid, including the RFC 8032 §7.1 ones. Read in place from the
// shared vector directory (see its README), not copied into the repository.
const WYCHEPROOF_PATH = sharedDataPath('vectors', 'wycheproof-ed25519_test.json');

interface WycheproofFile {
  numberOfTests: number;
  testGroups: {
    publicKey: { pk: string };
    tests: {
      tcId: number;
      comment: string;
      flags: string[];
      msg: string;
      sig: string;
      result: string;
    }[];
  }[];
}

const wycheproof = JSON.parse(readFileSync(WYCHEPROOF_PATH, 'utf8')) as WycheproofFile;
const wycheproofVectors = wycheproof.testGroups.flatMap((group) =>
  group.tests.map((t) => ({
    name: `tcId ${t.tcId} ${t.result}${t.comment === '' ? '' : ` (${t.comment})`}`,
    publicKey: hex(group.publicKey.pk),
    message: hex(t.msg),
    signature: hex(t.sig),
    valid: t.result === 'valid',
  })),
);

// RFC 8032 §7.1, TEST 1 to TEST 3: seed, public key, message, signature.
const RFC8032_VECTORS = [
  {
    name: 'TEST 1',
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2',
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'TEST 3',
    seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    publicKey: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature:
      '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

// Inputs on which OpenSSL 3.0 (node:crypto) and @noble/ed25519 3.x (`zip215: false`) disagree
// when called directly, constructed for this project with noble's Point arithmetic:
// - small-order keys: OpenSSL verifies a signature `R || 0` (S = 0) whenever R = -[k]A, which
//   under the identity key holds for every message, in any encoding of that key; noble refuses
//   small-order keys;
// - a small-order component in R or A: noble's cofactored equation accepts, OpenSSL's
//   cofactorless one does not, unless 8 divides k (then both hold).
// `valid` is the project's rule (see ed25519.ts): both backends must give it.
const HELLO = '68656c6c6f';
const DIVERGENCE_VECTORS = [
  {
    name: 'the identity key with R = identity and S = 0 (OpenSSL alone accepts)',
    publicKey: '0100000000000000000000000000000000000000000000000000000000000000',
    signature: `01${'00'.repeat(63)}`,
    message: HELLO,
    valid: false,
  },
  {
    name: 'the identity key encoded with y = p + 1 (OpenSSL alone accepts)',
    publicKey: 'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    signature: `01${'00'.repeat(63)}`,
    message: HELLO,
    valid: false,
  },
  {
    name: 'the identity key encoded with the sign bit set (OpenSSL alone accepts)',
    publicKey: '0100000000000000000000000000000000000000000000000000000000000080',
    signature: `01${'00'.repeat(63)}`,
    message: HELLO,
    valid: false,
  },
  {
    name: 'the order-2 key (OpenSSL alone accepts)',
    publicKey: 'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    signature: `ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f${'00'.repeat(32)}`,
    message: HELLO,
    valid: false,
  },
  {
    name: 'an order-4 key (OpenSSL alone accepts)',
    publicKey: '0000000000000000000000000000000000000000000000000000000000000080',
    signature: '00'.repeat(64),
    message: HELLO,
    valid: false,
  },
  {
    name: 'an order-8 key (OpenSSL alone accepts)',
    publicKey: '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
    signature: '00'.repeat(64),
    message: HELLO,
    valid: false,
  },
  {
    name: 'R with a small-order component (noble alone accepts)',
    publicKey: 'ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c',
    signature:
      '6a84d583f06569edb3f5ed77df65544b27d6948b4f0b2cb76f33dd8413b207190ce570c0be0ef74692c3bce289148a6fc8d4621657b8ca1240485a6c31cbcf0e',
    message: HELLO,
    valid: false,
  },
  {
    name: 'A with a small-order component, k odd (noble alone accepts)',
    publicKey: '1f4f580e73ac208f06760190e9edc6f5916775dabd9c1cdca393175c2d6d1083',
    signature:
      '7767a3242dc9b58bbc68488c1265cc6cc5f26c6f3c88a5d55e901b0734dca5722f9670df59506588581ff9c7dac0e6bd3754d0b5958b45818beddf5e2ef6590a',
    message: '6d697865642d6f7264657220412030',
    valid: false,
  },
  {
    name: 'A with a small-order component, 8 divides k (both accept)',
    publicKey: '1f4f580e73ac208f06760190e9edc6f5916775dabd9c1cdca393175c2d6d1083',
    signature:
      '7767a3242dc9b58bbc68488c1265cc6cc5f26c6f3c88a5d55e901b0734dca572a261537c5a78c1d96f57792748af848dbf78be754136cdc173427785740ed707',
    message: '6d697865642d6f7264657220412036',
    valid: true,
  },
];

if (nativeEd25519 === undefined) {
  console.warn(
    `ed25519 tests: node:crypto has no usable Ed25519 on Node ${process.version}; native backend skipped`,
  );
}

const backends: [string, Ed25519Backend | undefined][] = [
  ['portable', portableEd25519],
  ['native', nativeEd25519],
];

describe('Wycheproof vector file', () => {
  it('holds the 151 vectors, 88 valid, that every backend must agree with', () => {
    expect(wycheproof.numberOfTests).toBe(151);
    expect(wycheproofVectors).toHaveLength(151);
    expect(wycheproofVectors.filter((v) => v.valid)).toHaveLength(88);
  });
});

describe('native backend', () => {
  it('is available on Node 20 and is the default', () => {
    expect(nativeEd25519?.name).toBe('native');
    expect(ed25519).toBe(nativeEd25519);
  });
});

describe.each(backends)('%s backend', (name, backend) => {
  describe.skipIf(backend === undefined)(`${name}`, () => {
    const b = backend as Ed25519Backend;

    it.each(wycheproofVectors)('gives the Wycheproof result for $name', (v) => {
      expect(b.verify(v.signature, v.message, v.publicKey)).toBe(v.valid);
    });

    it.each(DIVERGENCE_VECTORS)('applies the project rule to $name', (v) => {
      expect(b.verify(hex(v.signature), hex(v.message), hex(v.publicKey))).toBe(v.valid);
    });

    it.each(RFC8032_VECTORS)('reproduces RFC 8032 §7.1 $name', (v) => {
      const seed = hex(v.seed);
      expect(toHex(b.publicKeyFromSeed(seed))).toBe(v.publicKey);
      expect(toHex(b.sign(hex(v.message), seed))).toBe(v.signature);
      expect(b.verify(hex(v.signature), hex(v.message), hex(v.publicKey))).toBe(true);
    });

    it('verifies its own signatures and rejects a changed message, signature or key', () => {
      const seed = new Uint8Array(32).fill(0x42);
      const publicKey = b.publicKeyFromSeed(seed);
      const message = text('MIMI discovery');
      const signature = b.sign(message, seed);
      expect(signature).toHaveLength(64);
      expect(b.verify(signature, message, publicKey)).toBe(true);
      expect(b.verify(signature, text('MIMI discoverY'), publicKey)).toBe(false);
      const otherKey = b.publicKeyFromSeed(new Uint8Array(32).fill(0x43));
      expect(b.verify(signature, message, otherKey)).toBe(false);
      for (const i of [0, 31, 32, 63]) {
        const changed = Uint8Array.from(signature);
        changed[i] = (changed[i] as number) ^ 0x01;
        expect(b.verify(changed, message, publicKey)).toBe(false);
      }
    });

    it('returns false, never throws, for inputs of the wrong length or type', () => {
      const seed = new Uint8Array(32).fill(1);
      const publicKey = b.publicKeyFromSeed(seed);
      const message = text('m');
      const signature = b.sign(message, seed);
      expect(b.verify(signature.subarray(0, 63), message, publicKey)).toBe(false);
      expect(b.verify(new Uint8Array([...signature, 0]), message, publicKey)).toBe(false);
      expect(b.verify(signature, message, publicKey.subarray(0, 31))).toBe(false);
      expect(b.verify(signature, message, new Uint8Array(33))).toBe(false);
      const offCurve = new Uint8Array(32);
      offCurve[0] = 2; // y = 2 gives no point on the curve
      expect(b.verify(signature, message, offCurve)).toBe(false);
      const notBytes = 'not bytes' as unknown as Uint8Array;
      expect(b.verify(notBytes, message, publicKey)).toBe(false);
      expect(b.verify(signature, notBytes, publicKey)).toBe(false);
      expect(b.verify(signature, message, notBytes)).toBe(false);
    });

    it('refuses a seed that is not 32 octets with ERR_ED25519_KEY_LENGTH', () => {
      for (const seed of [new Uint8Array(31), new Uint8Array(33), new Uint8Array(64)]) {
        expect(() => b.publicKeyFromSeed(seed)).toThrow(
          expect.objectContaining({ code: 'ERR_ED25519_KEY_LENGTH' }),
        );
        expect(() => b.sign(text('m'), seed)).toThrow(Ed25519Error);
      }
    });
  });
});

describe.skipIf(nativeEd25519 === undefined)('native and portable backends together', () => {
  const native = nativeEd25519 as Ed25519Backend;
  const seeds = Array.from({ length: 16 }, (_, i) => new Uint8Array(32).fill(i * 17 + 3));
  const messages = [new Uint8Array(0), text('a'), new Uint8Array(1000).fill(0xa5)];

  it('derive the same public keys and make the same signatures', () => {
    for (const seed of seeds) {
      expect(native.publicKeyFromSeed(seed)).toEqual(portableEd25519.publicKeyFromSeed(seed));
      for (const message of messages) {
        expect(native.sign(message, seed)).toEqual(portableEd25519.sign(message, seed));
      }
    }
  });

  it("verify each other's signatures", () => {
    for (const seed of seeds) {
      const publicKey = portableEd25519.publicKeyFromSeed(seed);
      for (const message of messages) {
        expect(portableEd25519.verify(native.sign(message, seed), message, publicKey)).toBe(true);
        expect(native.verify(portableEd25519.sign(message, seed), message, publicKey)).toBe(true);
      }
    }
  });

  it('keep signing correctly when more keys are used than the native cache holds', () => {
    const many = Array.from({ length: 40 }, (_, i) => new Uint8Array(32).fill(i));
    for (let round = 0; round < 2; round++) {
      for (const seed of many) {
        expect(native.sign(text('x'), seed)).toEqual(portableEd25519.sign(text('x'), seed));
      }
    }
  });

  it(`keep verifying correctly when more keys are used than the ${MAX_CACHED_VERIFY_KEYS} kept imported`, () => {
    const pairs = Array.from({ length: MAX_CACHED_VERIFY_KEYS + 20 }, (_, i) => {
      const seed = new Uint8Array(32);
      seed[0] = i & 0xff;
      seed[1] = i >> 8;
      return keyPairFromSeed(seed);
    });
    const message = text('y');
    const signatures = pairs.map((pair) => portableEd25519.sign(message, pair.secretKey));
    for (let round = 0; round < 2; round++) {
      pairs.forEach((pair, i) => {
        expect(native.verify(signatures[i]!, message, pair.publicKey)).toBe(true);
        // Another key's signature: a cached key must never stand in for the one given.
        const other = signatures[(i + 1) % pairs.length]!;
        expect(native.verify(other, message, pair.publicKey)).toBe(false);
      });
    }
  });
});

describe('key pairs and the default backend', () => {
  it('derives a key pair from a seed and keeps a copy of the seed', () => {
    const seed = hex(RFC8032_VECTORS[0]?.seed ?? '');
    const pair = keyPairFromSeed(seed);
    expect(toHex(pair.publicKey)).toBe(RFC8032_VECTORS[0]?.publicKey);
    seed[0] = 0;
    expect(toHex(pair.secretKey)).toBe(RFC8032_VECTORS[0]?.seed);
  });

  it('generates a key pair from the given source of randomness', () => {
    const pair = generateKeyPair((n) => new Uint8Array(n).fill(7));
    expect(pair.secretKey).toEqual(new Uint8Array(32).fill(7));
    expect(pair.publicKey).toEqual(portableEd25519.publicKeyFromSeed(new Uint8Array(32).fill(7)));
  });

  it('generates different key pairs from the default CSPRNG', () => {
    expect(generateKeyPair().publicKey).not.toEqual(generateKeyPair().publicKey);
  });

  it('refuses a source of randomness that returns the wrong length', () => {
    expect(() => generateKeyPair((n) => new Uint8Array(n - 1))).toThrow(
      expect.objectContaining({ code: 'ERR_ED25519_KEY_LENGTH' }),
    );
  });

  it('refuses a seed of the wrong length with an Ed25519Error', () => {
    expect(() => keyPairFromSeed(new Uint8Array(16))).toThrow(Ed25519Error);
    expect(() => sign(text('m'), new Uint8Array(64))).toThrow(
      expect.objectContaining({ code: 'ERR_ED25519_KEY_LENGTH' }),
    );
  });

  it('signs and verifies through the default backend', () => {
    const pair = keyPairFromSeed(new Uint8Array(32).fill(9));
    const signature = sign(text('hello'), pair.secretKey);
    expect(verify(signature, text('hello'), pair.publicKey)).toBe(true);
    expect(verify(signature, text('hellp'), pair.publicKey)).toBe(false);
    expect(verify(new Uint8Array(64), text('hello'), pair.publicKey)).toBe(false);
  });
});

describe.skipIf(nativeEd25519 === undefined)('the verification pool', () => {
  // Every vector in one batch over two worker threads, as a resolver's pool verifies them.
  const all = [
    ...wycheproofVectors,
    ...DIVERGENCE_VECTORS.map((v) => ({
      name: v.name,
      publicKey: hex(v.publicKey),
      message: hex(v.message),
      signature: hex(v.signature),
      valid: v.valid,
    })),
    ...RFC8032_VECTORS.map((v) => ({
      name: v.name,
      publicKey: hex(v.publicKey),
      message: hex(v.message),
      signature: hex(v.signature),
      valid: true,
    })),
  ];

  it('gives the Wycheproof, project-rule and RFC 8032 result for every vector, as verify does', async () => {
    const pool = createVerifyPool({ threads: 2, minJobsForThreads: 0 });
    try {
      expect(await pool.ready()).toBe(true);
      const results = await pool.verifyBatch(all);
      expect(results.map((valid, i) => [all[i]?.name, valid])).toEqual(
        all.map((v) => [v.name, v.valid]),
      );
      expect(results).toEqual(all.map((v) => verify(v.signature, v.message, v.publicKey)));
      // The vectors that pass the strict checks went to the threads.
      expect(pool.stats().onThreads).toBeGreaterThan(88);
      expect(pool.stats().onCallingThread).toBe(0);
    } finally {
      await pool.close();
    }
  });
});
