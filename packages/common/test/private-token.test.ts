import nodeCrypto, { createHash, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { TOKEN_TYPES, Token, TokenChallenge, publicVerif } from '@cloudflare/privacypass-ts';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  MAX_AUTHORIZATION_HEADER_OCTETS,
  MAX_CHALLENGE_HEADER_OCTETS,
  MAX_TOKEN_CHALLENGES,
  MAX_TOKEN_KEY_SPKI_OCTETS,
  TOKEN_OCTETS,
  TOKEN_REQUEST_OCTETS,
  TOKEN_TYPE_BLIND_RSA,
  TokenError,
  authorizationHeader,
  blindedMessageInRange,
  challengeHeader,
  createTokenRequest,
  exportIssuerKey,
  generateIssuerKey,
  importIssuerKey,
  issueToken,
  parseAuthorizationHeader,
  parseChallengeHeader,
  tokenChallenge,
  tokenKeyFromSpki,
  tokenRequestKeyId,
  verifyToken,
  type IssuerKey,
  type TokenErrorCode,
  type TokenKey,
} from '../src/index.js';
import { MAX_CACHED_BLINDING_KEYS } from '../src/protocol/private-token.js';

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

const hex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const sha256 = (bytes: Uint8Array): Uint8Array =>
  new Uint8Array(createHash('sha256').update(bytes).digest());

/** The PKCS#8 DER inside the vector's hex-encoded PEM private key. */
function pkcs8Of(v: Rfc9578Vector): Uint8Array {
  const pem = Buffer.from(v.skS, 'hex').toString('ascii');
  const body = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '').replace(/\s+/g, '');
  return new Uint8Array(Buffer.from(body, 'base64'));
}

/** A key valid from 0 until 2^32 s: the vectors carry no validity. */
const vectorKey = (v: Rfc9578Vector): TokenKey => tokenKeyFromSpki(hex(v.pkS), 0, 2 ** 32);
const NOW = 1_800_000_000;

async function expectTokenError(promise: Promise<unknown>, code: TokenErrorCode): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TokenError);
  expect((error as TokenError).code).toBe(code);
}

function flipBit(bytes: Uint8Array, index: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[index] = (copy[index] as number) ^ 0x01;
  return copy;
}

describe('RFC 9578 Appendix A.2 test vectors (token type 2)', () => {
  const vectors = rfc9578.vectors.map((v, i) => [i + 1, v] as const);

  it('holds the five vectors of the appendix', () => {
    expect(rfc9578.vectors).toHaveLength(5);
  });

  it.each(vectors)('vector %i: the token verifies under pkS for its challenge', async (_, v) => {
    const result = await verifyToken(hex(v.token), hex(v.token_challenge), [vectorKey(v)], NOW);
    expect(toHex(result.keyId)).toBe(toHex(sha256(hex(v.pkS))));
    expect(toHex(result.spentId)).toBe(toHex(sha256(hex(v.token))));
  });

  it.each(vectors)('vector %i: a flipped bit anywhere in the token is refused', async (_, v) => {
    const token = hex(v.token);
    const challenge = hex(v.token_challenge);
    const keys = [vectorKey(v)];
    // In the nonce, the challenge digest, the key id and the authenticator.
    await expectTokenError(
      verifyToken(flipBit(token, 10), challenge, keys, NOW),
      'ERR_TOKEN_INVALID',
    );
    await expectTokenError(
      verifyToken(flipBit(token, 40), challenge, keys, NOW),
      'ERR_TOKEN_CHALLENGE',
    );
    await expectTokenError(
      verifyToken(flipBit(token, 70), challenge, keys, NOW),
      'ERR_TOKEN_KEY_UNKNOWN',
    );
    await expectTokenError(
      verifyToken(flipBit(token, TOKEN_OCTETS - 1), challenge, keys, NOW),
      'ERR_TOKEN_INVALID',
    );
    // And in the challenge the origin expects.
    await expectTokenError(
      verifyToken(token, flipBit(challenge, challenge.length - 1), keys, NOW),
      'ERR_TOKEN_CHALLENGE',
    );
  });

  it.each(vectors)('vector %i: the token request names the key by its last octet', (_, v) => {
    const request = hex(v.token_request);
    expect(request).toHaveLength(TOKEN_REQUEST_OCTETS);
    const keyId = sha256(hex(v.pkS));
    expect(tokenRequestKeyId(request)).toBe(keyId[31]);
    expect(toHex(vectorKey(v).id)).toBe(toHex(keyId));
  });

  it.each(vectors)('vector %i: skS signs the token request into token_response', async (_, v) => {
    const issuerKey = await importIssuerKey(pkcs8Of(v));
    expect(toHex(issuerKey.spki)).toBe(v.pkS);
    const response = await issueToken(hex(v.token_request), issuerKey);
    expect(toHex(response)).toBe(v.token_response);
  });

  describe('with the vector’s nonce, salt and blind', () => {
    afterEach(() => {
      vi.restoreAllMocks();
    });

    it.each(vectors)(
      'vector %i: the client makes token_request and finalizes token_response into token',
      async (_, v) => {
        // The library draws the nonce, then the PSS salt, then the blind, in that order.
        vi.spyOn(webcrypto, 'getRandomValues')
          .mockReturnValueOnce(hex(v.nonce))
          .mockReturnValueOnce(hex(v.salt))
          .mockReturnValueOnce(hex(v.blind));
        const pending = await createTokenRequest(hex(v.token_challenge), hex(v.pkS));
        vi.restoreAllMocks();
        expect(toHex(pending.request)).toBe(v.token_request);
        expect(toHex(await pending.finalize(hex(v.token_response)))).toBe(v.token);
      },
    );
  });
});

describe('tokens issued, redeemed and verified', () => {
  let issuerKey: IssuerKey;
  let key: TokenKey;
  const challenge = tokenChallenge('issuer.example:8443', 'resolver.example:8453');

  beforeAll(async () => {
    issuerKey = await generateIssuerKey();
    key = tokenKeyFromSpki(issuerKey.spki, NOW - 60, NOW + 3600);
  });

  async function issue(forChallenge = challenge, withKey = issuerKey): Promise<Uint8Array> {
    const pending = await createTokenRequest(forChallenge, withKey.spki);
    return pending.finalize(await issueToken(pending.request, withKey));
  }

  it('makes a challenge of type 2 for one origin, without a redemption context', () => {
    expect(challenge[0]).toBe(0);
    expect(challenge[1]).toBe(TOKEN_TYPE_BLIND_RSA);
    const [parsed] = parseChallengeHeader(challengeHeader(challenge, key));
    expect(parsed?.issuerName).toBe('issuer.example:8443');
    expect(parsed?.originInfo).toEqual(['resolver.example:8453']);
    expect(toHex(parsed?.challenge ?? new Uint8Array())).toBe(toHex(challenge));
    expect(toHex(parsed?.tokenKey ?? new Uint8Array())).toBe(toHex(issuerKey.spki));
  });

  it('goes from the issuer through the client to the origin, headers and all', async () => {
    const [parsed] = parseChallengeHeader(`Basic realm="x", ${challengeHeader(challenge, key)}`);
    if (parsed === undefined) throw new Error('no challenge parsed');
    const pending = await createTokenRequest(parsed.challenge, parsed.tokenKey);
    const token = await pending.finalize(await issueToken(pending.request, issuerKey));
    const redeemed = parseAuthorizationHeader(authorizationHeader(token));
    expect(toHex(redeemed)).toBe(toHex(token));
    const verified = await verifyToken(redeemed, challenge, [key], NOW);
    expect(toHex(verified.keyId)).toBe(toHex(issuerKey.id));
  });

  it('gives two tokens two spent ids, and one token spelled quoted or not one', async () => {
    const [a, b] = [await issue(), await issue()];
    const ids = await Promise.all([a, b].map((t) => verifyToken(t, challenge, [key], NOW)));
    expect(toHex(ids[0]?.spentId ?? new Uint8Array())).not.toBe(
      toHex(ids[1]?.spentId ?? new Uint8Array()),
    );
    // A token is 354 octets: its base64url has no padding, quoted or not.
    const quoted = `PrivateToken token="${Buffer.from(a).toString('base64url')}"`;
    const unquoted = `PrivateToken token=${Buffer.from(a).toString('base64url')}`;
    expect(toHex(parseAuthorizationHeader(quoted))).toBe(toHex(a));
    expect(toHex(parseAuthorizationHeader(unquoted))).toBe(toHex(a));
  });

  it('keeps the private key through export and import', async () => {
    const again = await importIssuerKey(await exportIssuerKey(issuerKey));
    expect(toHex(again.id)).toBe(toHex(issuerKey.id));
    await expect(
      verifyToken(await issue(challenge, again), challenge, [key], NOW),
    ).resolves.toBeDefined();
  });

  it('refuses a token of another origin’s challenge', async () => {
    const other = tokenChallenge('issuer.example:8443', 'elsewhere.example:443');
    await expectTokenError(
      verifyToken(await issue(other), challenge, [key], NOW),
      'ERR_TOKEN_CHALLENGE',
    );
  });

  it('tells an unknown key from an expired or not yet valid one', async () => {
    const token = await issue();
    const stranger = await generateIssuerKey();
    const strangerKey = tokenKeyFromSpki(stranger.spki, NOW - 60, NOW + 3600);
    await expectTokenError(
      verifyToken(token, challenge, [strangerKey], NOW),
      'ERR_TOKEN_KEY_UNKNOWN',
    );
    await expectTokenError(verifyToken(token, challenge, [], NOW), 'ERR_TOKEN_KEY_UNKNOWN');
    await expectTokenError(
      verifyToken(token, challenge, [key], key.notAfter),
      'ERR_TOKEN_KEY_EXPIRED',
    );
    await expectTokenError(
      verifyToken(token, challenge, [key], key.notBefore - 1),
      'ERR_TOKEN_KEY_EXPIRED',
    );
    await expect(verifyToken(token, challenge, [key], key.notAfter - 1)).resolves.toBeDefined();
  });

  it('refuses a token signed by another key that claims this key’s id', async () => {
    const stranger = await generateIssuerKey();
    const forged = await issue(challenge, stranger);
    // The stranger's token with this key's id: the signature is the stranger's.
    const relabelled = Uint8Array.from(forged);
    relabelled.set(issuerKey.id, 2 + 32 + 32);
    await expectTokenError(verifyToken(relabelled, challenge, [key], NOW), 'ERR_TOKEN_INVALID');
  });

  it('says a token key that does not import is malformed, not that the token is invalid', async () => {
    const token = await issue();
    const broken = { ...key, spki: Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x00) };
    await expectTokenError(verifyToken(token, challenge, [broken], NOW), 'ERR_TOKEN_MALFORMED');
  });

  it('refuses tokens of the wrong size or type', async () => {
    const token = await issue();
    const longer = new Uint8Array(TOKEN_OCTETS + 1);
    longer.set(token);
    await expectTokenError(verifyToken(longer, challenge, [key], NOW), 'ERR_TOKEN_MALFORMED');
    await expectTokenError(
      verifyToken(token.subarray(1), challenge, [key], NOW),
      'ERR_TOKEN_MALFORMED',
    );
    const typeOne = Uint8Array.from(token);
    typeOne[1] = 1;
    await expectTokenError(verifyToken(typeOne, challenge, [key], NOW), 'ERR_TOKEN_MALFORMED');
  });

  it('refuses a token request for another key, of a bad size, or not below the modulus', async () => {
    const pending = await createTokenRequest(challenge, issuerKey.spki);
    const stranger = await generateIssuerKey();
    if (stranger.id[31] !== issuerKey.id[31]) {
      await expectTokenError(issueToken(pending.request, stranger), 'ERR_TOKEN_KEY_UNKNOWN');
    }
    await expectTokenError(
      issueToken(pending.request.subarray(0, 100), issuerKey),
      'ERR_TOKEN_MALFORMED',
    );
    const huge = Uint8Array.from(pending.request);
    huge.fill(0xff, 3);
    expect(await blindedMessageInRange(huge, issuerKey)).toBe(false);
    expect(await blindedMessageInRange(pending.request, issuerKey)).toBe(true);
    await expectTokenError(issueToken(huge, issuerKey), 'ERR_TOKEN_MALFORMED');
  });

  it('agrees with the library: its client’s tokens verify here, ours under its origin', async () => {
    const { BlindRSAMode, Client, Origin, TokenResponse } = publicVerif;
    const libraryChallenge = TokenChallenge.deserialize(challenge);
    const client = new Client(BlindRSAMode.PSS);
    const request = await client.createTokenRequest(libraryChallenge, issuerKey.spki);
    const response = await issueToken(request.serialize(), issuerKey);
    const libraryToken = (await client.finalize(new TokenResponse(response))).serialize();
    await expect(verifyToken(libraryToken, challenge, [key], NOW)).resolves.toBeDefined();
    const ours = Token.deserialize(TOKEN_TYPES.BLIND_RSA, await issue());
    expect(await new Origin(BlindRSAMode.PSS).verify(ours, issuerKey.publicKey)).toBe(true);
  });

  it('refuses an issuer response that does not verify, and a second finalize', async () => {
    const pending = await createTokenRequest(challenge, issuerKey.spki);
    const response = await issueToken(pending.request, issuerKey);
    await expectTokenError(pending.finalize(flipBit(response, 100)), 'ERR_TOKEN_INVALID');
    await expectTokenError(pending.finalize(response), 'ERR_TOKEN_MALFORMED');
    const other = await createTokenRequest(challenge, issuerKey.spki);
    await expectTokenError(other.finalize(response.subarray(1)), 'ERR_TOKEN_MALFORMED');
  });
});

describe('hostile input', () => {
  it('refuses the vector-2 token with the modulus added to its signature (s + n)', async () => {
    // A second spelling of one signature would be a second spent id for one token. In vector 2
    // s + n still fits in 256 octets, so the check is RSAVP1's (RFC 8017 §5.2.2: s < n).
    const v = rfc9578.vectors[1];
    if (v === undefined) throw new Error('no vector');
    const key = vectorKey(v);
    const issuerKey = await importIssuerKey(pkcs8Of(v));
    const jwk = await webcrypto.subtle.exportKey('jwk', issuerKey.publicKey);
    const n = BigInt(`0x${Buffer.from(jwk.n ?? '', 'base64url').toString('hex')}`);
    const token = hex(v.token);
    const s = BigInt(`0x${toHex(token.subarray(TOKEN_OCTETS - 256))}`);
    expect(s + n < 2n ** 2048n).toBe(true);
    const forged = Uint8Array.from(token);
    forged.set(hex((s + n).toString(16).padStart(512, '0')), TOKEN_OCTETS - 256);
    await expectTokenError(
      verifyToken(forged, hex(v.token_challenge), [key], NOW),
      'ERR_TOKEN_INVALID',
    );
  });

  it('refuses token keys that are not RSASSA-PSS 2048 with SHA-384', async () => {
    const rsaEnc = await webcrypto.subtle.generateKey(
      {
        name: 'RSA-PSS',
        modulusLength: 2048,
        publicExponent: Uint8Array.of(1, 0, 1),
        hash: 'SHA-384',
      },
      true,
      ['sign', 'verify'],
    );
    // WebCrypto's export uses the rsaEncryption OID: not the encoding of RFC 9578 §6.5.
    const spki = new Uint8Array(await webcrypto.subtle.exportKey('spki', rsaEnc.publicKey));
    expect(() => tokenKeyFromSpki(spki, 0, 1)).toThrow(TokenError);
    expect(() => tokenKeyFromSpki(new Uint8Array(10), 0, 1)).toThrow(TokenError);
    expect(() => tokenKeyFromSpki(new Uint8Array(MAX_TOKEN_KEY_SPKI_OCTETS + 1), 0, 1)).toThrow(
      /at most|1\.\./,
    );
    const good = hex(rfc9578.vectors[0]?.pkS ?? '');
    expect(() => tokenKeyFromSpki(good, 10, 10)).toThrow(/notBefore < notAfter/);
    expect(() => tokenKeyFromSpki(good, 0.5, 10)).toThrow(TokenError);
  });

  it('refuses challenge names that cannot be encoded', () => {
    expect(() => tokenChallenge('', 'o.example')).toThrow(TokenError);
    expect(() => tokenChallenge('i.example', 'a,b')).toThrow(/comma/);
    expect(() => tokenChallenge('i.example', 'ö.example')).toThrow(TokenError);
    expect(() => tokenChallenge('i.example', 'o'.repeat(2000))).toThrow(/at most/);
  });

  it('refuses authorization values that are too long, empty, doubled or garbage', () => {
    const refuses = (value: string): void => {
      expect(() => parseAuthorizationHeader(value), value.slice(0, 40)).toThrow(TokenError);
    };
    refuses(`PrivateToken token="${'A'.repeat(MAX_AUTHORIZATION_HEADER_OCTETS)}"`);
    refuses('');
    refuses('Bearer abc');
    refuses('PrivateToken');
    refuses('PrivateToken token=""');
    refuses('PrivateToken token="!!!"');
    refuses(`PrivateToken token="${'A'.repeat(100)}"`);
    refuses('PrivateToken ' + 'a='.repeat(500) + '!');
    const token = Buffer.from(new Uint8Array(TOKEN_OCTETS).fill(7)).toString('base64url');
    refuses(`PrivateToken token="${token}"`); // type 0x0707
  });

  it('refuses two tokens in one authorization', () => {
    const vector = rfc9578.vectors[0];
    if (vector === undefined) throw new Error('no vector');
    const one = authorizationHeader(hex(vector.token));
    expect(toHex(parseAuthorizationHeader(one))).toBe(vector.token);
    expect(() => parseAuthorizationHeader(`${one}, ${one}`)).toThrow(/exactly one/);
  });

  it('refuses challenge values that are too long or hold too many challenges', () => {
    const vector = rfc9578.vectors[1];
    if (vector === undefined) throw new Error('no vector');
    const one = challengeHeader(hex(vector.token_challenge), vectorKey(vector));
    expect(parseChallengeHeader(one)).toHaveLength(1);
    const many = Array<string>(MAX_TOKEN_CHALLENGES + 1)
      .fill(one)
      .join(', ');
    expect(many.length).toBeLessThan(MAX_CHALLENGE_HEADER_OCTETS);
    expect(() => parseChallengeHeader(many)).toThrow(/at most/);
    expect(() =>
      parseChallengeHeader(`${one}, ${'x'.repeat(MAX_CHALLENGE_HEADER_OCTETS)}`),
    ).toThrow(TokenError);
    expect(() => parseChallengeHeader('PrivateToken challenge="AAEC", token-key="AAEC"')).toThrow(
      TokenError,
    );
    expect(() => parseChallengeHeader('PrivateToken token-key="AAEC"')).toThrow(TokenError);
    expect(parseChallengeHeader('Basic realm="x"')).toEqual([]);
  });

  it('refuses to make a request for a malformed challenge or key', async () => {
    const vector = rfc9578.vectors[0];
    if (vector === undefined) throw new Error('no vector');
    const challenge = hex(vector.token_challenge);
    const longer = new Uint8Array(challenge.length + 1);
    longer.set(challenge);
    await expectTokenError(createTokenRequest(longer, hex(vector.pkS)), 'ERR_TOKEN_MALFORMED');
    await expectTokenError(
      createTokenRequest(challenge.subarray(0, 10), hex(vector.pkS)),
      'ERR_TOKEN_MALFORMED',
    );
    await expectTokenError(
      createTokenRequest(challenge, hex(vector.pkS).subarray(1)),
      'ERR_TOKEN_MALFORMED',
    );
  });
});

describe('token keys kept parsed for blinding', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it(`parses a key once, and again only after ${MAX_CACHED_BLINDING_KEYS} others`, async () => {
    // Keys no other test used, so none is in the cache yet.
    const keys = await Promise.all(
      Array.from(
        { length: MAX_CACHED_BLINDING_KEYS + 1 },
        async () => (await generateIssuerKey()).spki,
      ),
    );
    const challenge = tokenChallenge('issuer.example:8443', 'resolver.example:8453');
    // The native blinding parses a key through node:crypto's module object, as loaded at run
    // time; each parse is one createPublicKey there.
    const parse = vi.spyOn(nodeCrypto, 'createPublicKey');
    const first = keys[0] as Uint8Array;
    await createTokenRequest(challenge, first);
    await createTokenRequest(challenge, Uint8Array.from(first));
    expect(parse).toHaveBeenCalledTimes(1);
    for (const key of keys.slice(1)) await createTokenRequest(challenge, key);
    expect(parse).toHaveBeenCalledTimes(MAX_CACHED_BLINDING_KEYS + 1);
    // The first key was the oldest: dropped, parsed again; the last one is still there.
    await createTokenRequest(challenge, first);
    await createTokenRequest(challenge, keys[MAX_CACHED_BLINDING_KEYS] as Uint8Array);
    expect(parse).toHaveBeenCalledTimes(MAX_CACHED_BLINDING_KEYS + 2);
  });

  it('checks a key before it keeps it: a bad key is refused each time', async () => {
    const challenge = tokenChallenge('issuer.example:8443', 'resolver.example:8453');
    const bad = Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x00);
    await expectTokenError(createTokenRequest(challenge, bad), 'ERR_TOKEN_MALFORMED');
    await expectTokenError(createTokenRequest(challenge, bad), 'ERR_TOKEN_MALFORMED');
  });
});
