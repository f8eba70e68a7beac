import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  HPKE_AEAD_AES_128_GCM,
  HPKE_KDF_HKDF_SHA256,
  HPKE_KEM_X25519_SHA256,
  MAX_OHTTP_KEY_CONFIGS,
  MAX_OHTTP_MESSAGE_OCTETS,
  MAX_OHTTP_SUITES,
  OhttpError,
  decapsulateRequest,
  decapsulateResponse,
  decodeBhttpRequest,
  decodeBhttpResponse,
  decodeKeyConfig,
  decodeKeyConfigs,
  encapsulateRequest,
  encapsulateResponse,
  encodeBhttpRequest,
  encodeBhttpResponse,
  encodeKeyConfig,
  encodeKeyConfigs,
  generateOhttpKeyPair,
  ohttpKeyPairFromPrivate,
  type OhttpErrorCode,
  type OhttpKeyConfig,
  type OhttpKeyPair,
} from '../src/index.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

// RFC 9458 Appendix A (source cited in the file).
interface AppendixA {
  gatewayPrivateKey: string;
  keyConfig: string;
  request: string;
  ephemeralPrivateKey: string;
  ephemeralPublicKey: string;
  encapsulatedRequest: string;
  response: string;
  exportedSecret: string;
  responseNonce: string;
  encapsulatedResponse: string;
}
const A = JSON.parse(
  readFileSync(new URL('./vectors/rfc9458-appendix-a.json', import.meta.url), 'utf8'),
) as AppendixA;

/** The OhttpError code `f` rejects with; fails the test on any other outcome. */
async function codeOf(f: () => Promise<unknown> | unknown): Promise<OhttpErrorCode> {
  try {
    await f();
  } catch (e) {
    expect(e).toBeInstanceOf(OhttpError);
    return (e as OhttpError).code;
  }
  throw new Error('expected an OhttpError');
}

/** The gateway key of Appendix A, with the config exactly as published (two suites). */
function appendixKey(): OhttpKeyPair {
  return { config: decodeKeyConfig(hex(A.keyConfig)), privateKey: hex(A.gatewayPrivateKey) };
}

describe('Oblivious HTTP, RFC 9458 Appendix A, octet for octet', () => {
  it('derives the published public key from the gateway private key', async () => {
    const pair = await ohttpKeyPairFromPrivate(1, hex(A.gatewayPrivateKey));
    expect(toHex(pair.config.publicKey)).toBe(toHex(appendixKey().config.publicKey));
  });

  it('decodes the key configuration and encodes it back unchanged', () => {
    const config = decodeKeyConfig(hex(A.keyConfig));
    expect(config.keyId).toBe(1);
    expect(config.kemId).toBe(HPKE_KEM_X25519_SHA256);
    expect(config.suites).toEqual([
      { kdfId: HPKE_KDF_HKDF_SHA256, aeadId: HPKE_AEAD_AES_128_GCM },
      { kdfId: HPKE_KDF_HKDF_SHA256, aeadId: 0x0003 },
    ]);
    expect(toHex(encodeKeyConfig(config))).toBe(A.keyConfig);
  });

  it('the request plaintext is the Binary HTTP of GET https://example.com/', () => {
    expect(decodeBhttpRequest(hex(A.request))).toEqual({
      method: 'GET',
      scheme: 'https',
      authority: 'example.com',
      path: '/',
      headers: [],
      body: new Uint8Array(0),
    });
  });

  it('encapsulates the request with the ephemeral key to the published Encapsulated Request', async () => {
    const { message, context } = await encapsulateRequest(appendixKey().config, hex(A.request), {
      ephemeralPrivateKey: hex(A.ephemeralPrivateKey),
    });
    expect(toHex(message)).toBe(A.encapsulatedRequest);
    expect(toHex(context.enc)).toBe(A.ephemeralPublicKey);
    expect(toHex(context.secret)).toBe(A.exportedSecret);
  });

  it('decapsulates the published request and exports the published secret', async () => {
    const { request, context } = await decapsulateRequest(
      [appendixKey()],
      hex(A.encapsulatedRequest),
    );
    expect(toHex(request)).toBe(A.request);
    expect(toHex(context.secret)).toBe(A.exportedSecret);
  });

  it('encapsulates the response with the published nonce to the published Encapsulated Response', async () => {
    const { context } = await decapsulateRequest(appendixKey(), hex(A.encapsulatedRequest));
    const message = await encapsulateResponse(context, hex(A.response), {
      responseNonce: hex(A.responseNonce),
    });
    expect(toHex(message)).toBe(A.encapsulatedResponse);
  });

  it('the client opens the published response with its own context', async () => {
    const { context } = await encapsulateRequest(appendixKey().config, hex(A.request), {
      ephemeralPrivateKey: hex(A.ephemeralPrivateKey),
    });
    const response = await decapsulateResponse(context, hex(A.encapsulatedResponse));
    expect(toHex(response)).toBe(A.response);
    expect(decodeBhttpResponse(response).status).toBe(200);
  });
});

describe('Oblivious HTTP, key configurations', () => {
  it('lists configs with 2-octet length prefixes (RFC 9540 §3) and reads them back', async () => {
    const a = await generateOhttpKeyPair(7);
    const b = await generateOhttpKeyPair(8);
    const list = encodeKeyConfigs([a.config, b.config]);
    expect(list.length).toBe(2 * (2 + 41));
    expect(toHex(list.subarray(0, 3))).toBe('002907');
    expect(decodeKeyConfigs(list)).toEqual([a.config, b.config]);
  });

  it('skips a config with another KEM in a list but refuses it alone', () => {
    const other = concat(hex('050010'), new Uint8Array(65), hex('000400010001'));
    const list = concat(hex('004a'), other, hex('002d'), hex(A.keyConfig));
    expect(decodeKeyConfigs(list).map((c) => c.keyId)).toEqual([1]);
    expect(() => decodeKeyConfig(other)).toThrow(OhttpError);
  });

  it.each([
    ['truncated', A.keyConfig.slice(0, 40)],
    ['with trailing octets', `${A.keyConfig}00`],
    ['with no suites', `${A.keyConfig.slice(0, 70)}0000`],
    ['with a suites length not a multiple of 4', `${A.keyConfig.slice(0, 70)}0003000100`],
  ])('refuses a key config %s', async (_what, config) => {
    expect(await codeOf(() => decodeKeyConfig(hex(config)))).toBe('ERR_OHTTP_MALFORMED');
  });

  it('discards the whole list when one entry is broken (RFC 9458 §3.2)', async () => {
    const good = concat(hex('002d'), hex(A.keyConfig));
    expect(await codeOf(() => decodeKeyConfigs(concat(good, hex('0030'), hex(A.keyConfig))))).toBe(
      'ERR_OHTTP_MALFORMED',
    );
    expect(await codeOf(() => decodeKeyConfigs(concat(good, hex('00'))))).toBe(
      'ERR_OHTTP_MALFORMED',
    );
    expect(await codeOf(() => decodeKeyConfigs(new Uint8Array(0)))).toBe('ERR_OHTTP_MALFORMED');
  });

  it(`refuses more than MAX_OHTTP_KEY_CONFIGS (${MAX_OHTTP_KEY_CONFIGS}) configs and MAX_OHTTP_SUITES (${MAX_OHTTP_SUITES}) suites`, async () => {
    const entry = concat(hex('002d'), hex(A.keyConfig));
    const list = (n: number): Uint8Array => concat(...Array.from({ length: n }, () => entry));
    expect(decodeKeyConfigs(list(MAX_OHTTP_KEY_CONFIGS))).toHaveLength(MAX_OHTTP_KEY_CONFIGS);
    expect(await codeOf(() => decodeKeyConfigs(list(MAX_OHTTP_KEY_CONFIGS + 1)))).toBe(
      'ERR_OHTTP_TOO_LARGE',
    );
    const suites = (n: number): Uint8Array =>
      concat(
        hex(A.keyConfig.slice(0, 70)),
        Uint8Array.of((4 * n) >> 8, (4 * n) & 0xff),
        ...Array.from({ length: n }, () => hex('00010001')),
      );
    expect(decodeKeyConfig(suites(MAX_OHTTP_SUITES)).suites).toHaveLength(MAX_OHTTP_SUITES);
    expect(await codeOf(() => decodeKeyConfig(suites(MAX_OHTTP_SUITES + 1)))).toBe(
      'ERR_OHTTP_TOO_LARGE',
    );
  });

  it('refuses to encapsulate to a config without the one supported suite', async () => {
    const config: OhttpKeyConfig = { ...appendixKey().config, suites: [{ kdfId: 1, aeadId: 3 }] };
    expect(await codeOf(() => encapsulateRequest(config, hex(A.request)))).toBe(
      'ERR_OHTTP_UNSUPPORTED',
    );
  });

  it('refuses a private key of the wrong length and a key id over 255', async () => {
    expect(await codeOf(() => ohttpKeyPairFromPrivate(1, new Uint8Array(31)))).toBe(
      'ERR_OHTTP_MALFORMED',
    );
    expect(await codeOf(() => generateOhttpKeyPair(256))).toBe('ERR_OHTTP_MALFORMED');
  });
});

describe('Oblivious HTTP, round trips and hostile peers', () => {
  const request = encodeBhttpRequest({
    method: 'POST',
    scheme: 'https',
    authority: 'resolver.example',
    path: '/v1/discover',
    headers: [['content-type', 'application/json']],
    body: new TextEncoder().encode('{"csis":["tel:+442079460018"]}'),
  });

  it('carries any request and response through a fresh key', async () => {
    const key = await generateOhttpKeyPair(3);
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 2000 }),
        fc.uint8Array({ maxLength: 2000 }),
        async (q, r) => {
          const sent = await encapsulateRequest(key.config, q);
          const received = await decapsulateRequest([key], sent.message);
          expect(received.request).toEqual(q);
          const answer = await encapsulateResponse(received.context, r);
          expect(await decapsulateResponse(sent.context, answer)).toEqual(r);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('opens with the key pair given, not with an imported key kept for the same private key', async () => {
    // The gateway's imported key is kept by its private key's array; the public key is part of
    // the HPKE context (RFC 9180 §4.1: kem_context = enc ‖ pkR), so a pair given with another
    // public key must not open what the real pair opens, and the real pair must open it after.
    const key = await generateOhttpKeyPair(5);
    const other = await generateOhttpKeyPair(5);
    const sent = await encapsulateRequest(key.config, request);
    await expect(decapsulateRequest(key, sent.message)).resolves.toBeDefined();
    const mismatched = { ...key, config: { ...key.config, publicKey: other.config.publicKey } };
    await expect(decapsulateRequest(mismatched, sent.message)).rejects.toMatchObject({
      code: 'ERR_OHTTP_DECRYPT',
    });
    const again = await decapsulateRequest(key, sent.message);
    expect(again.request).toEqual(request);
  });

  it('keeps concurrent exchanges apart: each response opens only with its own request context', async () => {
    const key = await generateOhttpKeyPair(4);
    const exchanges = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const sent = await encapsulateRequest(key.config, Uint8Array.of(i));
        const received = await decapsulateRequest(key, sent.message);
        const body = encodeBhttpResponse({ status: 200, headers: [], body: Uint8Array.of(i) });
        return { sent, answer: await encapsulateResponse(received.context, body) };
      }),
    );
    for (const [i, { sent, answer }] of exchanges.entries()) {
      expect(decodeBhttpResponse(await decapsulateResponse(sent.context, answer)).body).toEqual(
        Uint8Array.of(i),
      );
      const other = exchanges[(i + 1) % exchanges.length]!.sent.context;
      expect(await codeOf(() => decapsulateResponse(other, answer))).toBe('ERR_OHTTP_DECRYPT');
    }
  });

  it('answers an unknown key id, KEM or suite with ERR_OHTTP_KEY_UNKNOWN (RFC 9458 §5.3)', async () => {
    const key = await generateOhttpKeyPair(5);
    const { message } = await encapsulateRequest(key.config, request);
    const other = await generateOhttpKeyPair(6);
    expect(await codeOf(() => decapsulateRequest([other], message))).toBe('ERR_OHTTP_KEY_UNKNOWN');
    expect(await codeOf(() => decapsulateRequest([], message))).toBe('ERR_OHTTP_KEY_UNKNOWN');
    const wrongAead = message.slice();
    wrongAead[6] = 3;
    expect(await codeOf(() => decapsulateRequest([key], wrongAead))).toBe('ERR_OHTTP_KEY_UNKNOWN');
    const wrongKem = message.slice();
    wrongKem[2] = 0x21;
    expect(await codeOf(() => decapsulateRequest([key], wrongKem))).toBe('ERR_OHTTP_KEY_UNKNOWN');
  });

  it('finds the right key when a rotation reuses a key id', async () => {
    const old = await generateOhttpKeyPair(9);
    const current = await generateOhttpKeyPair(9);
    const { message } = await encapsulateRequest(current.config, request);
    expect((await decapsulateRequest([old, current], message)).request).toEqual(request);
    expect(await codeOf(() => decapsulateRequest([old], message))).toBe('ERR_OHTTP_DECRYPT');
  });

  it('refuses a request whose enc, ciphertext or tag was changed, or with octets appended', async () => {
    const key = await generateOhttpKeyPair(5);
    const { message } = await encapsulateRequest(key.config, request);
    for (const at of [7, 20, 39, 40, 60, message.length - 1]) {
      const tampered = message.slice();
      tampered[at] = (tampered[at] as number) ^ 0x01;
      expect(await codeOf(() => decapsulateRequest(key, tampered))).toBe('ERR_OHTTP_DECRYPT');
    }
    expect(await codeOf(() => decapsulateRequest(key, concat(message, Uint8Array.of(0))))).toBe(
      'ERR_OHTTP_DECRYPT',
    );
  });

  it('refuses truncated requests and responses as malformed', async () => {
    const key = await generateOhttpKeyPair(5);
    const { message, context } = await encapsulateRequest(key.config, request);
    expect(await codeOf(() => decapsulateRequest(key, message.subarray(0, 6)))).toBe(
      'ERR_OHTTP_MALFORMED',
    );
    expect(await codeOf(() => decapsulateRequest(key, message.subarray(0, 7 + 32 + 15)))).toBe(
      'ERR_OHTTP_MALFORMED',
    );
    expect(await codeOf(() => decapsulateResponse(context, new Uint8Array(31)))).toBe(
      'ERR_OHTTP_MALFORMED',
    );
  });

  it('refuses a response that was tampered with or cut short by one octet', async () => {
    const key = await generateOhttpKeyPair(5);
    const sent = await encapsulateRequest(key.config, request);
    const { context } = await decapsulateRequest(key, sent.message);
    const answer = await encapsulateResponse(context, hex('0140c8'));
    for (const at of [0, 15, 16, answer.length - 1]) {
      const tampered = answer.slice();
      tampered[at] = (tampered[at] as number) ^ 0x80;
      expect(await codeOf(() => decapsulateResponse(sent.context, tampered))).toBe(
        'ERR_OHTTP_DECRYPT',
      );
    }
    expect(
      await codeOf(() => decapsulateResponse(sent.context, answer.subarray(0, answer.length - 1))),
    ).toBe('ERR_OHTTP_DECRYPT');
  });

  it(`refuses messages over MAX_OHTTP_MESSAGE_OCTETS (${MAX_OHTTP_MESSAGE_OCTETS}) before any work`, async () => {
    const key = await generateOhttpKeyPair(5);
    const big = new Uint8Array(MAX_OHTTP_MESSAGE_OCTETS + 1);
    big[0] = 5;
    expect(await codeOf(() => decapsulateRequest(key, big))).toBe('ERR_OHTTP_TOO_LARGE');
    const { context } = await encapsulateRequest(key.config, request);
    expect(await codeOf(() => decapsulateResponse(context, big))).toBe('ERR_OHTTP_TOO_LARGE');
  });

  it('refuses a public key of low order as unusable rather than sealing to it', async () => {
    const config: OhttpKeyConfig = { ...appendixKey().config, publicKey: new Uint8Array(32) };
    expect(await codeOf(() => encapsulateRequest(config, request))).toBe('ERR_OHTTP_MALFORMED');
  });
});
