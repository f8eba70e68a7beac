import * as nodeBuffer from 'node:buffer';
import * as nodeCrypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { RSABSSA } from '@cloudflare/blindrsa-ts';
import { util } from '@cloudflare/privacypass-ts';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import {
  BLIND_RSA_MAX_DRAWS,
  BLIND_RSA_SALT_OCTETS,
  createNativeBlindRsa,
  i2osp,
  inverseMod,
  nativeBlindRsa,
  os2ip,
  type BlindRsaKey,
  type RandomOctets,
} from '../src/protocol/blind-rsa-native.js';

/** A vector of RFC 9578 Appendix A.2, hex strings (see vectors/rfc9578-a2.json). */
interface Rfc9578Vector {
  skS: string;
  pkS: string;
  token_challenge: string;
  nonce: string;
  blind: string;
  salt: string;
  token_request: string;
  token_response: string;
  token: string;
}

const rfc9578 = JSON.parse(
  readFileSync(new URL('./vectors/rfc9578-a2.json', import.meta.url), 'utf8'),
) as { vectors: Rfc9578Vector[] };
const vectors = rfc9578.vectors.map((v, i) => [i + 1, v] as const);

const hex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const K_LEN = 256;
/** Octets of a token before its authenticator: type, nonce, challenge digest, key id. */
const TOKEN_INPUT_OCTETS = 2 + 32 + 32 + 32;

const blindRsa = createNativeBlindRsa(nodeCrypto, nodeBuffer);
/** The library's RSABSSA-SHA384-PSS-Deterministic, the reference. */
const library = RSABSSA.SHA384.PSS.Deterministic();

/** The vector's private key, and its public key as OpenSSL's and WebCrypto's key objects. */
function keysOf(v: Rfc9578Vector): {
  privateKey: nodeCrypto.KeyObject;
  key: BlindRsaKey;
  p: bigint;
} {
  const pem = Buffer.from(v.skS, 'hex').toString('ascii');
  const privateKey = nodeCrypto.createPrivateKey(pem);
  const p = os2ip(
    new Uint8Array(Buffer.from(privateKey.export({ format: 'jwk' }).p ?? '', 'base64url')),
  );
  const key = blindRsa.importKey(util.convertRSASSAPSSToEnc(hex(v.pkS)));
  return { privateKey, key, p };
}

/** Random octets that replay `values` in order, then fail. */
function replay(...values: Uint8Array[]): RandomOctets & { calls: number } {
  const source = Object.assign(
    (octets: number): Uint8Array => {
      const next = values[source.calls++];
      if (next === undefined || next.length !== octets) throw new Error('no replayed octets');
      return next;
    },
    { calls: 0 },
  );
  return source;
}

/** The issuer's RSASP1 with OpenSSL, as `issueToken` does it. */
const sign = (privateKey: nodeCrypto.KeyObject, blinded: Uint8Array): Uint8Array =>
  new Uint8Array(
    nodeCrypto.privateDecrypt(
      { key: privateKey, padding: nodeCrypto.constants.RSA_NO_PADDING },
      blinded,
    ),
  );

const fresh: RandomOctets = (octets) => new Uint8Array(nodeCrypto.randomBytes(octets));

describe('integers and octets', () => {
  it('converts between octets and integers (RFC 8017 §4)', () => {
    expect(os2ip(Uint8Array.of(1, 0))).toBe(256n);
    expect(os2ip(new Uint8Array(0))).toBe(0n);
    expect(toHex(i2osp(256n, 4))).toBe('00000100');
    const x = os2ip(nodeCrypto.randomBytes(K_LEN));
    expect(os2ip(i2osp(x, K_LEN))).toBe(x);
  });

  it('refuses an integer that does not fit, and a negative one', () => {
    expect(() => i2osp(2n ** 16n, 2)).toThrow(RangeError);
    expect(() => i2osp(-1n, 2)).toThrow(RangeError);
  });

  it('inverts modulo n, and says when it cannot', () => {
    expect(inverseMod(3n, 7n)).toBe(5n);
    expect(inverseMod(6n, 9n)).toBeUndefined();
    expect(inverseMod(0n, 9n)).toBeUndefined();
  });
});

describe('RFC 9578 Appendix A.2 vectors on the native path', () => {
  it('is the path this runtime uses', () => {
    expect(nativeBlindRsa).toBeDefined();
  });

  it.each(vectors)(
    'vector %i: blinds the token input into token_request and finalizes token_response into token',
    (_, v) => {
      const { key } = keysOf(v);
      const token = hex(v.token);
      const tokenInput = token.subarray(0, TOKEN_INPUT_OCTETS);
      const blinded = blindRsa.blind(key, tokenInput, replay(hex(v.salt), hex(v.blind)));
      expect(toHex(blinded.blindedMsg)).toBe(toHex(hex(v.token_request).subarray(3)));
      expect(blinded.inv).toBe(inverseMod(os2ip(hex(v.blind)), key.n));
      const sig = blindRsa.finalize(key, tokenInput, hex(v.token_response), blinded.inv);
      expect(toHex(sig ?? new Uint8Array())).toBe(toHex(token.subarray(TOKEN_INPUT_OCTETS)));
    },
  );
});

describe('the native path against the library', () => {
  const v = rfc9578.vectors[0];
  if (v === undefined) throw new Error('no vector');
  let privateKey: nodeCrypto.KeyObject;
  let key: BlindRsaKey;
  let libraryPublic: nodeCrypto.webcrypto.CryptoKey;
  let libraryPrivate: nodeCrypto.webcrypto.CryptoKey;

  beforeAll(async () => {
    ({ privateKey, key } = keysOf(v));
    const params = { name: 'RSA-PSS', hash: 'SHA-384' };
    libraryPublic = await nodeCrypto.webcrypto.subtle.importKey(
      'spki',
      util.convertRSASSAPSSToEnc(hex(v.pkS)),
      params,
      true,
      ['verify'],
    );
    libraryPrivate = await nodeCrypto.webcrypto.subtle.importKey(
      'pkcs8',
      privateKey.export({ format: 'der', type: 'pkcs8' }),
      params,
      true,
      ['sign'],
    );
  });

  it('blinds a message that the library signs, finalizes it, and the library verifies it', async () => {
    const msg = new Uint8Array(nodeCrypto.randomBytes(TOKEN_INPUT_OCTETS));
    const blinded = blindRsa.blind(key, msg, fresh);
    const blindSig = await library.blindSign(libraryPrivate, blinded.blindedMsg);
    const sig = blindRsa.finalize(key, msg, blindSig, blinded.inv);
    if (sig === undefined) throw new Error('the signature does not verify');
    expect(await library.verify(libraryPublic, sig, msg)).toBe(true);
    // The library's own finalize of the same blind signature gives the same octets.
    const libraryFinal = await library.finalize(
      libraryPublic,
      msg,
      blindSig,
      i2osp(blinded.inv, K_LEN),
    );
    expect(toHex(sig)).toBe(toHex(libraryFinal));
  });

  it('finalizes what the library blinded and OpenSSL signed, as the library does', async () => {
    const msg = new Uint8Array(nodeCrypto.randomBytes(TOKEN_INPUT_OCTETS));
    const { blindedMsg, inv } = await library.blind(libraryPublic, msg);
    const blindSig = sign(privateKey, blindedMsg);
    const sig = blindRsa.finalize(key, msg, blindSig, os2ip(inv));
    if (sig === undefined) throw new Error('the signature does not verify');
    expect(toHex(sig)).toBe(toHex(await library.finalize(libraryPublic, msg, blindSig, inv)));
    expect(await library.verify(libraryPublic, sig, msg)).toBe(true);
  });

  it('gives a fresh blinded message for each blinding of one message', () => {
    const msg = new Uint8Array(TOKEN_INPUT_OCTETS);
    const a = blindRsa.blind(key, msg, fresh);
    const b = blindRsa.blind(key, msg, fresh);
    expect(toHex(a.blindedMsg)).not.toBe(toHex(b.blindedMsg));
    expect(a.blindedMsg).toHaveLength(K_LEN);
    expect(os2ip(a.blindedMsg) < key.n).toBe(true);
  });
});

describe('hostile input', () => {
  const v = rfc9578.vectors[1];
  if (v === undefined) throw new Error('no vector');
  const { privateKey, key, p } = keysOf(v);
  const msg = hex(v.token).subarray(0, TOKEN_INPUT_OCTETS);

  it('refuses a signature of a tampered blinded message', () => {
    const blinded = blindRsa.blind(key, msg, fresh);
    const tampered = Uint8Array.from(blinded.blindedMsg);
    tampered[100] = (tampered[100] as number) ^ 0x01;
    expect(blindRsa.finalize(key, msg, sign(privateKey, tampered), blinded.inv)).toBeUndefined();
  });

  it('refuses a tampered blind signature, one of the wrong size, and one not below n', () => {
    const blinded = blindRsa.blind(key, msg, fresh);
    const blindSig = sign(privateKey, blinded.blindedMsg);
    expect(blindRsa.finalize(key, msg, blindSig, blinded.inv)).toBeDefined();
    const tampered = Uint8Array.from(blindSig);
    tampered[K_LEN - 1] = (tampered[K_LEN - 1] as number) ^ 0x01;
    expect(blindRsa.finalize(key, msg, tampered, blinded.inv)).toBeUndefined();
    expect(blindRsa.finalize(key, msg, blindSig.subarray(1), blinded.inv)).toBeUndefined();
    const long = new Uint8Array(K_LEN + 1);
    long.set(blindSig, 1);
    expect(blindRsa.finalize(key, msg, long, blinded.inv)).toBeUndefined();
  });

  it('refuses a blind signature not below n, which would unblind to the same signature', () => {
    // z + n must fit in 256 octets: vector 2's n leaves room below 2^2048 for some z; a few
    // blindings find one (each has a fair chance).
    for (let attempt = 0; attempt < 64; attempt++) {
      const blinded = blindRsa.blind(key, msg, fresh);
      const blindSig = sign(privateKey, blinded.blindedMsg);
      const z = os2ip(blindSig);
      if (z + key.n >= 2n ** 2048n) continue;
      const sig = blindRsa.finalize(key, msg, blindSig, blinded.inv);
      expect(sig).toBeDefined();
      expect(blindRsa.finalize(key, msg, i2osp(z + key.n, K_LEN), blinded.inv)).toBeUndefined();
      return;
    }
    throw new Error('no blind signature with z + n below 2^2048 in 64 attempts');
  });

  it('refuses the signature of another message', () => {
    const blinded = blindRsa.blind(key, msg, fresh);
    const other = Uint8Array.from(msg);
    other[0] = (other[0] as number) ^ 0x01;
    const blindSig = sign(privateKey, blinded.blindedMsg);
    expect(blindRsa.finalize(key, other, blindSig, blinded.inv)).toBeUndefined();
  });

  it('draws the blind again while it is 0 or not below n', () => {
    const salt = new Uint8Array(BLIND_RSA_SALT_OCTETS);
    const source = replay(salt, new Uint8Array(K_LEN), i2osp(key.n, K_LEN), hex(v.blind));
    const blinded = blindRsa.blind(key, msg, source);
    expect(source.calls).toBe(4);
    expect(blinded.inv).toBe(inverseMod(os2ip(hex(v.blind)), key.n));
  });

  it(`gives up after ${BLIND_RSA_MAX_DRAWS} draws that are not below n`, () => {
    const random = vi.fn((octets: number) => new Uint8Array(octets).fill(0xff));
    expect(() => blindRsa.blind(key, msg, random)).toThrow(/no blind/);
    expect(random).toHaveBeenCalledTimes(1 + BLIND_RSA_MAX_DRAWS);
  });

  it('refuses a blind that shares a factor with n', () => {
    expect(() =>
      blindRsa.blind(key, msg, replay(new Uint8Array(BLIND_RSA_SALT_OCTETS), i2osp(p, K_LEN))),
    ).toThrow(/not coprime/);
  });

  it('refuses a short random source', () => {
    expect(() => blindRsa.blind(key, msg, () => new Uint8Array(1))).toThrow(/short random/);
  });

  it('refuses a key that is not an RSA public key', () => {
    const ed = nodeCrypto
      .generateKeyPairSync('ed25519')
      .publicKey.export({ format: 'der', type: 'spki' });
    expect(() => blindRsa.importKey(new Uint8Array(ed))).toThrow(/not an RSA/);
    expect(() => blindRsa.importKey(Uint8Array.of(1, 2, 3))).toThrow();
  });
});
