import type * as NodeBuffer from 'node:buffer';
import type * as NodeCrypto from 'node:crypto';
import { nodeBuffer, nodeCrypto } from './node-builtins.js';
import { fromBase64url } from './bytes.js';

/**
 * The client's half of RSA blind signatures (RFC 9474 §4.2 Blind, §4.4 Finalize) for
 * RSABSSA-SHA384-PSS-Deterministic, with the RSA and the hashing done by `node:crypto`
 * (OpenSSL) and the rest with `BigInt`. `@cloudflare/blindrsa-ts` computes the same function in
 * JavaScript bignums (sjcl): about 45 ms of CPU per blinding and 5–9 ms per finalize, against
 * about 1 ms and 0.1 ms here; `private-token.ts` uses this module where the runtime has
 * `node:crypto`, the library elsewhere, and the tests hold the two to the same octets.
 *
 * Worked example (RFC 9578 Appendix A.2, vector 1): the token input `0002 …` (type, nonce,
 * challenge digest, key id) is PSS-encoded with the vector's salt into m; with the vector's blind
 * r, m·r^e mod n is the vector's blinded_msg; the issuer's z = blinded_msg^d gives back
 * s = z·r⁻¹ mod n = m^d, the token's authenticator, which RSASSA-PSS-VERIFY accepts.
 *
 * Side channels: `BigInt` arithmetic is not constant-time, as the library's sjcl bignums and
 * `BigInt` inverse are not either; what it touches is the blind r, fresh for every token.
 */

/** The hash of the variant (RFC 9474 §5: SHA-384), as `node:crypto` names it. */
export const BLIND_RSA_HASH = 'sha384';
/** Octets of a SHA-384 digest (hLen). */
export const BLIND_RSA_HASH_OCTETS = 48;
/** Octets of the PSS salt (RFC 9474 §5: sLen = 48 for the PSS variants). */
export const BLIND_RSA_SALT_OCTETS = 48;
/**
 * Draws of a blind r before giving up (RFC 9474 §4.2 step 6, random_integer_uniform; the same
 * bound as the library's). A draw of kLen octets is refused when it is 0 or not below n; for a
 * modulus with its top bit set that is less than half of the draws, so 128 refusals in a row
 * happen with probability below 2^-128: a failing source of randomness, not bad luck.
 */
export const BLIND_RSA_MAX_DRAWS = 128;

/** A source of random octets: `octets` of them, fresh. Injected so tests can replay vectors. */
export type RandomOctets = (octets: number) => Uint8Array;

/** An RSA public key ready for blinding and finalizing: parsed once, used for many tokens. */
export interface BlindRsaKey {
  /** The modulus n. */
  readonly n: bigint;
  /** Octets of the modulus (kLen, RFC 9474 §4.1: modulus_len). */
  readonly octets: number;
  /** Bits of the modulus. */
  readonly bits: number;
  /** The key as OpenSSL holds it (type `rsa`), for RSAVP1 and RSASSA-PSS-VERIFY. */
  readonly keyObject: NodeCrypto.KeyObject;
}

/** What {@link BlindRsa.blind} gives: the message for the issuer, and what finalizing needs. */
export interface Blinded {
  /** The blinded message, {@link BlindRsaKey.octets} octets (RFC 9474 §4.2: blinded_msg). */
  readonly blindedMsg: Uint8Array;
  /** r⁻¹ mod n (RFC 9474 §4.2: inv). */
  readonly inv: bigint;
}

/** The client's operations of RFC 9474 on `node:crypto`. */
export interface BlindRsa {
  /**
   * The key of a DER SubjectPublicKeyInfo with the rsaEncryption OID (the RSASSA-PSS OID of
   * token keys is converted by the caller; OpenSSL's raw RSA refuses RSA-PSS keys). Throws for
   * anything but an RSA public key.
   */
  importKey(spki: Uint8Array): BlindRsaKey;
  /**
   * RFC 9474 §4.2 Blind of `msg` (the prepared message: for the Deterministic variant, the
   * message itself). Draws the salt, then the blind, from `random`. Throws for a message not
   * coprime with n or a blind that cannot be inverted (either would reveal a factor of n), and
   * when {@link BLIND_RSA_MAX_DRAWS} draws give no blind.
   */
  blind(key: BlindRsaKey, msg: Uint8Array, random: RandomOctets): Blinded;
  /**
   * RFC 9474 §4.4 Finalize: the signature of `msg` unblinded from the issuer's `blindSig`, or
   * undefined when `blindSig` is not {@link BlindRsaKey.octets} octets, is not below n, or the
   * unblinded signature does not pass RSASSA-PSS-VERIFY (SHA-384, MGF1 SHA-384, sLen 48).
   */
  finalize(
    key: BlindRsaKey,
    msg: Uint8Array,
    blindSig: Uint8Array,
    inv: bigint,
  ): Uint8Array | undefined;
}

/** `bytes` as a big-endian unsigned integer (RFC 8017 §4.2 OS2IP). */
export function os2ip(bytes: Uint8Array): bigint {
  let hex = '0x0';
  for (const b of bytes) hex += (b < 16 ? '0' : '') + b.toString(16);
  return BigInt(hex);
}

/** `x` as `octets` big-endian octets (RFC 8017 §4.1 I2OSP); throws when it does not fit. */
export function i2osp(x: bigint, octets: number): Uint8Array {
  if (x < 0n) throw new RangeError('I2OSP of a negative integer');
  const hex = x.toString(16);
  if (hex.length > 2 * octets) throw new RangeError('integer too large');
  const padded = hex.padStart(2 * octets, '0');
  const out = new Uint8Array(octets);
  for (let i = 0; i < octets; i++) out[i] = parseInt(padded.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * a⁻¹ mod m by the extended Euclidean algorithm, or undefined when gcd(a, m) ≠ 1. The loop
 * runs at most about 1.45·log2(m) times (Lamé), each step shrinking the remainder.
 */
export function inverseMod(a: bigint, m: bigint): bigint | undefined {
  let [r0, r1] = [((a % m) + m) % m, m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) return undefined;
  return s0 < 0n ? s0 + m : s0;
}

/**
 * The native implementation over a `node:crypto` module. Exported for the tests; everything
 * else uses {@link nativeBlindRsa}.
 */
export function createNativeBlindRsa(
  crypto: typeof NodeCrypto,
  buffer: typeof NodeBuffer,
): BlindRsa {
  const hash = (...parts: Uint8Array[]): Uint8Array => {
    const h = crypto.createHash(BLIND_RSA_HASH);
    for (const p of parts) h.update(p);
    return new Uint8Array(h.digest());
  };

  /** MGF1 with SHA-384 (RFC 8017 Appendix B.2.1): `length` octets from `seed`. */
  const mgf1 = (seed: Uint8Array, length: number): Uint8Array => {
    const out = new Uint8Array(length);
    const counter = new Uint8Array(4);
    for (let i = 0, at = 0; at < length; i++, at += BLIND_RSA_HASH_OCTETS) {
      counter[0] = i >>> 24;
      counter[1] = (i >>> 16) & 0xff;
      counter[2] = (i >>> 8) & 0xff;
      counter[3] = i & 0xff;
      const block = hash(seed, counter);
      out.set(block.subarray(0, Math.min(BLIND_RSA_HASH_OCTETS, length - at)), at);
    }
    return out;
  };

  /** EMSA-PSS-ENCODE (RFC 8017 §9.1.1) of `msg` into `emBits` bits, with `salt`. */
  const emsaPssEncode = (msg: Uint8Array, emBits: number, salt: Uint8Array): Uint8Array => {
    const emLen = Math.ceil(emBits / 8);
    const hLen = BLIND_RSA_HASH_OCTETS;
    if (emLen < hLen + salt.length + 2) throw new Error('encoding error');
    const mHash = hash(msg);
    const h = hash(new Uint8Array(8), mHash, salt);
    // DB = PS || 0x01 || salt, masked with MGF1(H); then EM = maskedDB || H || 0xbc.
    const dbLen = emLen - hLen - 1;
    const db = new Uint8Array(dbLen);
    db[dbLen - salt.length - 1] = 0x01;
    db.set(salt, dbLen - salt.length);
    const mask = mgf1(h, dbLen);
    for (let i = 0; i < dbLen; i++) db[i] = (db[i] as number) ^ (mask[i] as number);
    // The leftmost 8·emLen − emBits bits of maskedDB are cleared, so that EM is below 2^emBits.
    db[0] = (db[0] as number) & (0xff >>> (8 * emLen - emBits));
    const em = new Uint8Array(emLen);
    em.set(db, 0);
    em.set(h, dbLen);
    em[emLen - 1] = 0xbc;
    return em;
  };

  /** RSAVP1 (RFC 8017 §5.2.2), x^e mod n, by OpenSSL: x is below n, as kLen octets. */
  const rsavp1 = (key: BlindRsaKey, x: bigint): bigint =>
    os2ip(
      new Uint8Array(
        crypto.publicEncrypt(
          { key: key.keyObject, padding: crypto.constants.RSA_NO_PADDING },
          i2osp(x, key.octets),
        ),
      ),
    );

  return Object.freeze({
    importKey(spki: Uint8Array): BlindRsaKey {
      const keyObject = crypto.createPublicKey({
        key: buffer.Buffer.from(spki),
        format: 'der',
        type: 'spki',
      });
      if (keyObject.asymmetricKeyType !== 'rsa') throw new Error('not an RSA public key');
      const jwk = keyObject.export({ format: 'jwk' });
      const modulus = typeof jwk.n === 'string' ? fromBase64url(jwk.n) : undefined;
      if (modulus === undefined) throw new Error('the key has no modulus');
      const n = os2ip(modulus);
      const bits = n.toString(2).length;
      return Object.freeze({ n, octets: Math.ceil(bits / 8), bits, keyObject });
    },

    blind(key: BlindRsaKey, msg: Uint8Array, random: RandomOctets): Blinded {
      // 1–3. encoded_msg = EMSA-PSS-ENCODE(msg, bit_len(n) − 1); m = bytes_to_int(encoded_msg).
      const salt = random(BLIND_RSA_SALT_OCTETS);
      if (salt.length !== BLIND_RSA_SALT_OCTETS) throw new Error('short random salt');
      const m = os2ip(emsaPssEncode(msg, key.bits - 1, salt));
      // 6. r = random_integer_uniform(1, n): kLen random octets, drawn again while 0 or ≥ n.
      let r = 0n;
      for (let draw = 0; draw < BLIND_RSA_MAX_DRAWS && (r === 0n || r >= key.n); draw++) {
        const octets = random(key.octets);
        if (octets.length !== key.octets) throw new Error('short random blind');
        r = os2ip(octets);
      }
      if (r === 0n || r >= key.n) throw new Error('no blind below the modulus was drawn');
      // 4–5 and 7–8 in one inversion: m·r mod n is invertible exactly when m and r both are
      // (coprime with n), and then r⁻¹ = m·(m·r)⁻¹ mod n. Either check failing means the
      // number shares a factor with n: refused, as the RFC refuses it.
      const mr = (m * r) % key.n;
      const mrInv = inverseMod(mr, key.n);
      if (mrInv === undefined)
        throw new Error('invalid input or blinding error: not coprime with n');
      const inv = (m * mrInv) % key.n;
      // 9–11. x = RSAVP1(pk, r); z = m·x mod n; blinded_msg = int_to_bytes(z, kLen).
      const z = (m * rsavp1(key, r)) % key.n;
      return Object.freeze({ blindedMsg: i2osp(z, key.octets), inv });
    },

    finalize(
      key: BlindRsaKey,
      msg: Uint8Array,
      blindSig: Uint8Array,
      inv: bigint,
    ): Uint8Array | undefined {
      // 1–2. len(blind_sig) = kLen; z = bytes_to_int(blind_sig), which an honest issuer's
      // RSASP1 keeps below n (a z + n would unblind to the same signature: refused all the same).
      if (blindSig.length !== key.octets) return undefined;
      const z = os2ip(blindSig);
      if (z >= key.n) return undefined;
      // 3–4. s = z·inv mod n; sig = int_to_bytes(s, kLen).
      const sig = i2osp((z * inv) % key.n, key.octets);
      // 5–6. RSASSA-PSS-VERIFY(pk, msg, sig): MGF1 takes the signature's hash, SHA-384.
      const valid = crypto.verify(
        BLIND_RSA_HASH,
        msg,
        {
          key: key.keyObject,
          padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
          saltLength: BLIND_RSA_SALT_OCTETS,
        },
        sig,
      );
      return valid ? sig : undefined;
    },
  } satisfies BlindRsa);
}

/**
 * The native implementation when this runtime has `node:crypto`, else undefined.
 * `process.getBuiltinModule` (Node ≥ 20.16, Deno, Bun) keeps this module loadable where
 * `node:crypto` does not exist, which a static import would not.
 */
function loadNativeBlindRsa(): BlindRsa | undefined {
  const crypto = nodeCrypto();
  const buffer = nodeBuffer();
  if (crypto === undefined || buffer === undefined) return undefined;
  try {
    return createNativeBlindRsa(crypto, buffer);
  } catch {
    return undefined;
  }
}

/** The client's blind RSA on `node:crypto`, or undefined where the runtime has none. */
export const nativeBlindRsa: BlindRsa | undefined = loadNativeBlindRsa();
