import * as noble from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import type * as NodeBuffer from 'node:buffer';
import type * as NodeCrypto from 'node:crypto';
import { nodeBuffer, nodeCrypto } from './node-builtins.js';
import { MimiError } from './errors.js';

/**
 * Ed25519 (RFC 8032) for the whole project: signed objects (design §4) and DNSSEC algorithm 15
 * (RFC 8080). This is the only module that imports `@noble/ed25519`; everything else calls
 * {@link sign}, {@link verify} and the key functions below.
 *
 * Two backends compute the same function:
 * - `native`: `node:crypto` (OpenSSL), used when the runtime has it and it passes a known-answer
 *   test at load;
 * - `portable`: `@noble/ed25519` with `@noble/hashes` SHA-512, pure JavaScript, any runtime.
 *
 * Verification is strict RFC 8032 §5.1.7 and the two backends agree on every input, not only on
 * honest signatures. OpenSSL and noble do not agree out of the box (see test/ed25519.test.ts for
 * constructed examples), so both backends apply the same rules:
 * 1. lengths: signature 64 octets, public key 32;
 * 2. S < L (RFC 8032 §5.1.7 step 1; §8.4 malleability);
 * 3. A is a canonical encoding (y < p) and not one of the 8 points of small order. OpenSSL
 *    accepts non-canonical and small-order A (the identity key verifies `R = identity, S = 0`
 *    for every message); noble in strict mode rejects both, and so do we;
 * 4. R decodes canonically and `[S]B = R + [k]A` holds exactly, the cofactorless equation that
 *    RFC 8032 §5.1.7 allows ("sufficient, but not required"). OpenSSL evaluates this equation;
 *    noble's `verify` evaluates the cofactored one (`[8][S]B = [8]R + [8][k]A`), which also
 *    accepts an R or A with a small-order component. The portable backend therefore evaluates
 *    the cofactorless equation with noble's strict point decoding (`zip215 = false`).
 *
 * Worked example (RFC 8032 §7.1, TEST 1): the seed `9d61b1…7f60` has the public key
 * `d75a98…511a`, and signs the empty message as `e55643…100b`; this is also the known-answer
 * test the native backend must pass before it is used.
 */

/** Octets of an Ed25519 secret key: the 32-octet seed of RFC 8032 §5.1.5. */
export const ED25519_SECRET_KEY_OCTETS = 32;
/** Octets of an Ed25519 public key (RFC 8032 §5.1.2). */
export const ED25519_PUBLIC_KEY_OCTETS = 32;
/** Octets of an Ed25519 signature, R || S (RFC 8032 §5.1.6). */
export const ED25519_SIGNATURE_OCTETS = 64;
/**
 * Signing keys the native backend keeps ready. Importing a raw seed into OpenSSL costs about
 * 300 µs (PKCS #8 decoding) against about 25 µs for a signature, and a signer uses few keys (a
 * zone key, a prover key), so a handful of cached keys removes nearly all of that cost.
 */
export const MAX_CACHED_SIGNING_KEYS = 16;
/**
 * Public keys the native backend keeps imported: zone keys and provers' keys sign most of what a
 * resolver verifies, and importing a key costs about a tenth of a verification.
 */
export const MAX_CACHED_VERIFY_KEYS = 256;

/** An Ed25519 key pair. */
export interface Ed25519KeyPair {
  /** The 32-octet seed (RFC 8032 §5.1.5), not the 64-octet expanded key. */
  readonly secretKey: Uint8Array;
  /** The 32-octet public key. */
  readonly publicKey: Uint8Array;
}

/** One implementation of Ed25519. Both backends give the same result for every input. */
export interface Ed25519Backend {
  readonly name: 'native' | 'portable';
  /** The public key of a 32-octet seed; throws {@link Ed25519Error} on a wrong length. */
  publicKeyFromSeed(seed: Uint8Array): Uint8Array;
  /** The 64-octet signature of `message`; throws {@link Ed25519Error} on a wrong seed length. */
  sign(message: Uint8Array, seed: Uint8Array): Uint8Array;
  /** Strict verification (see the module comment); never throws, returns false on bad input. */
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

/** The codes of an {@link Ed25519Error}. */
export type Ed25519ErrorCode = 'ERR_ED25519_INPUT' | 'ERR_ED25519_KEY_LENGTH';

/** A key or input that Ed25519 cannot use (`ERR_ED25519_KEY_LENGTH`, `ERR_ED25519_INPUT`). */
export class Ed25519Error extends MimiError<Ed25519ErrorCode> {}

// noble's synchronous API hashes with whatever `hashes.sha512` holds. @noble/hashes is plain
// JavaScript, so the portable backend needs nothing from the runtime.
noble.hashes.sha512 = sha512;

/** The group order L = 2^252 + 27742317777372353535851937790883648493 (RFC 8032 §5.1). */
const GROUP_ORDER = noble.Point.CURVE().n;
/** L as 32 little-endian octets, to check S < L without arithmetic. */
const GROUP_ORDER_LE = toLittleEndian(GROUP_ORDER);
/** p = 2^255 - 19 as 32 little-endian octets, to check that an encoded y is below p. */
const FIELD_PRIME_LE = toLittleEndian(noble.Point.CURVE().p);

/**
 * Public keys both backends refuse: the canonical encodings of the 8 points of small order
 * (order 1, 2, 4 and 8), and the 2 encodings of x = 0 with the sign bit set (y = 1 and y = -1),
 * which are not canonical (RFC 8032 §5.1.3 step 4) yet pass the y < p test. Every other encoding
 * of a small-order point has y >= p and fails that test.
 */
const REFUSED_PUBLIC_KEYS: ReadonlySet<string> = new Set([
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  '0100000000000000000000000000000000000000000000000000000000000080',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
]);

/** RFC 8032 §7.1 TEST 1: the known answer the native backend must reproduce. */
const KNOWN_ANSWER = Object.freeze({
  seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
  publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  signature:
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
});

/** DER prefix of a PKCS #8 Ed25519 private key (RFC 8410 §7); the 32-octet seed follows. */
const PKCS8_ED25519_PREFIX = noble.etc.hexToBytes('302e020100300506032b657004220420');

function isBytes(value: unknown, length?: number): value is Uint8Array {
  return value instanceof Uint8Array && (length === undefined || value.length === length);
}

function requireSeed(seed: unknown): asserts seed is Uint8Array {
  if (!isBytes(seed, ED25519_SECRET_KEY_OCTETS)) {
    throw new Ed25519Error(
      'ERR_ED25519_KEY_LENGTH',
      `an Ed25519 secret key is a ${ED25519_SECRET_KEY_OCTETS}-octet seed, got ${describe(seed)}`,
    );
  }
}

function requireMessage(message: unknown): asserts message is Uint8Array {
  if (!isBytes(message)) {
    throw new Ed25519Error(
      'ERR_ED25519_INPUT',
      `a message is a Uint8Array, got ${describe(message)}`,
    );
  }
}

function describe(value: unknown): string {
  return value instanceof Uint8Array ? `${value.length} octets` : typeof value;
}

function toLittleEndian(value: bigint): Uint8Array {
  const out = new Uint8Array(32);
  let rest = value;
  for (let i = 0; i < out.length; i++) {
    out[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return out;
}

function fromLittleEndian(bytes: Uint8Array): bigint {
  return BigInt(`0x${noble.etc.bytesToHex(Uint8Array.from(bytes).reverse()) || '0'}`);
}

/** Whether the little-endian number `bytes` (top bit masked by `topMask`) is below `bound`. */
function isBelow(bytes: Uint8Array, bound: Uint8Array, topMask: number): boolean {
  for (let i = bytes.length - 1; i >= 0; i--) {
    const byte = (bytes[i] as number) & (i === bytes.length - 1 ? topMask : 0xff);
    const limit = bound[i] as number;
    if (byte !== limit) return byte < limit;
  }
  return false;
}

/**
 * Rules 1–3 of the module comment, which both backends apply before their group equation:
 * lengths, S < L, and a canonical public key that is not of small order.
 */
function passesStrictChecks(signature: unknown, message: unknown, publicKey: unknown): boolean {
  return (
    isBytes(signature, ED25519_SIGNATURE_OCTETS) &&
    isBytes(message) &&
    isBytes(publicKey, ED25519_PUBLIC_KEY_OCTETS) &&
    isBelow(signature.subarray(32), GROUP_ORDER_LE, 0xff) &&
    isBelow(publicKey, FIELD_PRIME_LE, 0x7f) &&
    !REFUSED_PUBLIC_KEYS.has(noble.etc.bytesToHex(publicKey))
  );
}

/** `@noble/ed25519` with `@noble/hashes`: synchronous and pure JavaScript. */
export const portableEd25519: Ed25519Backend = Object.freeze({
  name: 'portable',
  publicKeyFromSeed(seed: Uint8Array): Uint8Array {
    requireSeed(seed);
    return noble.getPublicKey(seed);
  },
  sign(message: Uint8Array, seed: Uint8Array): Uint8Array {
    requireMessage(message);
    requireSeed(seed);
    return noble.sign(message, seed);
  },
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    if (!passesStrictChecks(signature, message, publicKey)) return false;
    const r = signature.subarray(0, 32);
    let a: noble.Point;
    let rPoint: noble.Point;
    try {
      // zip215 = false: RFC 8032 §5.1.3 decoding, which refuses y >= p and x = 0 with sign 1.
      a = noble.Point.fromBytes(publicKey, false);
      rPoint = noble.Point.fromBytes(r, false);
    } catch {
      // Not a point on the curve: a verification failure, not a fault.
      return false;
    }
    const s = fromLittleEndian(signature.subarray(32));
    // RFC 8032 §5.1.7 step 2: k = SHA-512(R || A || M) mod L.
    const k = noble.etc.mod(
      fromLittleEndian(sha512(noble.etc.concatBytes(r, publicKey, message))),
      GROUP_ORDER,
    );
    // Step 3 in the cofactorless form OpenSSL uses (see the module comment, rule 4).
    return noble.Point.BASE.multiply(s, false).equals(rPoint.add(a.multiply(k, false)));
  },
});

/**
 * The native backend over `node:crypto`. Public keys are imported as JWK for every verification:
 * that import is cheap (about 6 µs against 64 µs for the verification itself), so a cache of
 * public keys would gain little. Private keys are imported from PKCS #8, which is slow, so
 * they are kept in a small cache keyed by a SHA-256 of the seed (the seed itself is not kept as a
 * map key).
 */
function createNativeBackend(
  crypto: typeof NodeCrypto,
  { Buffer }: typeof NodeBuffer,
): Ed25519Backend {
  type SigningKey = { readonly privateKey: NodeCrypto.KeyObject; readonly publicKey: Uint8Array };
  const signingKeys = new Map<string, SigningKey>();

  const signingKey = (seed: Uint8Array): SigningKey => {
    const id = crypto.createHash('sha256').update(seed).digest('base64');
    const cached = signingKeys.get(id);
    if (cached !== undefined) {
      // Re-insert so the map's insertion order is least-recently-used first.
      signingKeys.delete(id);
      signingKeys.set(id, cached);
      return cached;
    }
    const privateKey = crypto.createPrivateKey({
      key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
      format: 'der',
      type: 'pkcs8',
    });
    const jwk = crypto.createPublicKey(privateKey).export({ format: 'jwk' });
    const publicKey = new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'));
    const entry = { privateKey, publicKey };
    if (signingKeys.size >= MAX_CACHED_SIGNING_KEYS) {
      const oldest = signingKeys.keys().next();
      if (oldest.done !== true) signingKeys.delete(oldest.value);
    }
    signingKeys.set(id, entry);
    return entry;
  };

  const verifyKeys = new Map<string, NodeCrypto.KeyObject>();
  const verifyKey = (publicKey: Uint8Array): NodeCrypto.KeyObject => {
    const x = Buffer.from(publicKey).toString('base64url');
    const cached = verifyKeys.get(x);
    if (cached !== undefined) {
      verifyKeys.delete(x);
      verifyKeys.set(x, cached);
      return cached;
    }
    const key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
    if (verifyKeys.size >= MAX_CACHED_VERIFY_KEYS) {
      const oldest = verifyKeys.keys().next();
      if (oldest.done !== true) verifyKeys.delete(oldest.value);
    }
    verifyKeys.set(x, key);
    return key;
  };

  return Object.freeze({
    name: 'native',
    publicKeyFromSeed(seed: Uint8Array): Uint8Array {
      requireSeed(seed);
      return Uint8Array.from(signingKey(seed).publicKey);
    },
    sign(message: Uint8Array, seed: Uint8Array): Uint8Array {
      requireMessage(message);
      requireSeed(seed);
      return new Uint8Array(crypto.sign(null, message, signingKey(seed).privateKey));
    },
    verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
      if (!passesStrictChecks(signature, message, publicKey)) return false;
      try {
        return crypto.verify(null, message, verifyKey(publicKey), signature);
      } catch {
        // Whatever node:crypto refuses to import or check is, for a verifier, a failed check.
        return false;
      }
    },
  } satisfies Ed25519Backend);
}

/**
 * The native backend if this runtime has `node:crypto` with Ed25519 that reproduces RFC 8032
 * TEST 1, else undefined. `process.getBuiltinModule` (Node ≥ 20.16, Deno, Bun) keeps this module
 * loadable where `node:crypto` does not exist, which a static import would not.
 */
function loadNativeBackend(): Ed25519Backend | undefined {
  const crypto = nodeCrypto();
  const buffer = nodeBuffer();
  if (crypto === undefined || buffer === undefined) return undefined;
  try {
    const backend = createNativeBackend(crypto, buffer);
    const seed = noble.etc.hexToBytes(KNOWN_ANSWER.seed);
    const signature = backend.sign(new Uint8Array(0), seed);
    const flipped = Uint8Array.from(signature);
    flipped[0] = (flipped[0] as number) ^ 1;
    const passes =
      noble.etc.bytesToHex(backend.publicKeyFromSeed(seed)) === KNOWN_ANSWER.publicKey &&
      noble.etc.bytesToHex(signature) === KNOWN_ANSWER.signature &&
      backend.verify(signature, new Uint8Array(0), noble.etc.hexToBytes(KNOWN_ANSWER.publicKey)) &&
      !backend.verify(flipped, new Uint8Array(0), noble.etc.hexToBytes(KNOWN_ANSWER.publicKey));
    return passes ? backend : undefined;
  } catch {
    // A runtime whose node:crypto lacks Ed25519 throws here; the portable backend serves it.
    return undefined;
  }
}

/** `node:crypto` when the runtime supports Ed25519, else undefined. */
export const nativeEd25519: Ed25519Backend | undefined = loadNativeBackend();

/** The backend the project uses: native when available, else portable. */
export const ed25519: Ed25519Backend = nativeEd25519 ?? portableEd25519;

/**
 * A new key pair from 32 random octets. `randomBytes` defaults to the runtime's CSPRNG
 * (`crypto.getRandomValues`); tests pass a fixed source.
 */
export function generateKeyPair(
  randomBytes: (n: number) => Uint8Array = noble.etc.randomBytes,
): Ed25519KeyPair {
  const seed = randomBytes(ED25519_SECRET_KEY_OCTETS);
  if (!isBytes(seed, ED25519_SECRET_KEY_OCTETS)) {
    throw new Ed25519Error(
      'ERR_ED25519_KEY_LENGTH',
      `randomBytes(${ED25519_SECRET_KEY_OCTETS}) returned ${describe(seed)}`,
    );
  }
  return keyPairFromSeed(seed);
}

/** The key pair of a 32-octet seed; throws {@link Ed25519Error} on a wrong length. */
export function keyPairFromSeed(seed: Uint8Array): Ed25519KeyPair {
  requireSeed(seed);
  return Object.freeze({
    secretKey: Uint8Array.from(seed),
    publicKey: ed25519.publicKeyFromSeed(seed),
  });
}

/** Signs `message` with a 32-octet seed through {@link ed25519}; deterministic (RFC 8032 §5.1.6). */
export function sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return ed25519.sign(message, secretKey);
}

/**
 * Strict verification through {@link ed25519} (rules in the module comment). Never throws:
 * wrong lengths, non-canonical encodings and anything that is not a Uint8Array give false.
 */
export function verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  return ed25519.verify(signature, message, publicKey);
}

/**
 * Rules 1–3 of the module comment (lengths, S < L, a canonical public key not of small order):
 * the checks both backends make before their group equation. A verifier that runs the equation
 * elsewhere (`node:crypto` on a worker thread, `runtime/verify-pool.ts`) makes these on the
 * calling thread, so that its result is the native backend's {@link verify} exactly.
 */
export function passesEd25519Checks(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
): boolean {
  return passesStrictChecks(signature, message, publicKey);
}
