import * as nodeBuffer from 'node:buffer';
import * as nodeCrypto from 'node:crypto';
import { Aes128Gcm, CipherSuite, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import { describe, expect, it } from 'vitest';
import { createNativeHpke, nativeHpke } from '../src/protocol/hpke-native.js';

/** `@hpke/core` with `@hpke/dhkem-x25519`: the reference, and what a browser page uses. */
const library = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Aes128Gcm(),
});
const hpke = createNativeHpke(nodeCrypto, nodeBuffer);

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const toHex = (bytes: ArrayBuffer | Uint8Array): string =>
  Buffer.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)).toString('hex');
const info = text('message/bhttp request\0test');
const aad = text('aad');

async function libraryKeyPair(): Promise<{ privateKey: Uint8Array; publicKey: Uint8Array }> {
  const pair = await library.kem.generateKeyPair();
  return {
    privateKey: new Uint8Array(await library.kem.serializePrivateKey(pair.privateKey)),
    publicKey: new Uint8Array(await library.kem.serializePublicKey(pair.publicKey)),
  };
}

describe('HPKE on node:crypto against @hpke/core', () => {
  it('is the implementation this runtime uses', () => {
    expect(nativeHpke).toBeDefined();
  });

  it('seals what the library opens, and both export the same secret', async () => {
    const { privateKey, publicKey } = await libraryKeyPair();
    const sender = hpke.sender(publicKey, info, undefined);
    const ct = await sender.seal(text('hello'), aad);
    const recipient = await library.createRecipientContext({
      recipientKey: {
        privateKey: await library.kem.deserializePrivateKey(privateKey),
        publicKey: await library.kem.deserializePublicKey(publicKey),
      },
      enc: sender.enc,
      info,
    });
    expect(new TextDecoder().decode(await recipient.open(ct, aad))).toBe('hello');
    expect(toHex(await sender.export(text('x'), 16))).toBe(
      toHex(await recipient.export(text('x'), 16)),
    );
  });

  it('opens what the library seals, message after message, and both export the same secret', async () => {
    const { privateKey, publicKey } = await libraryKeyPair();
    const sender = await library.createSenderContext({
      recipientPublicKey: await library.kem.deserializePublicKey(publicKey),
      info,
    });
    const recipient = hpke.recipient(privateKey, publicKey, new Uint8Array(sender.enc), info);
    for (const message of ['one', 'two', 'three']) {
      const ct = new Uint8Array(await sender.seal(text(message), aad));
      expect(new TextDecoder().decode(await recipient.open(ct, aad))).toBe(message);
    }
    expect(toHex(await recipient.export(text('message/bhttp response'), 16))).toBe(
      toHex(await sender.export(text('message/bhttp response'), 16)),
    );
  });

  it('gives the library’s octets for a fixed ephemeral key', async () => {
    const { publicKey } = await libraryKeyPair();
    const ephemeral = await libraryKeyPair();
    const ours = hpke.sender(publicKey, info, ephemeral.privateKey);
    const theirs = await library.createSenderContext({
      recipientPublicKey: await library.kem.deserializePublicKey(publicKey),
      info,
      ekm: {
        privateKey: await library.kem.deserializePrivateKey(ephemeral.privateKey),
        publicKey: await library.kem.deserializePublicKey(ephemeral.publicKey),
      },
    });
    expect(toHex(ours.enc)).toBe(toHex(ephemeral.publicKey));
    expect(toHex(await ours.seal(text('same'), aad))).toBe(
      toHex(await theirs.seal(text('same'), aad)),
    );
  });
});

describe('hostile input', () => {
  it('refuses a tampered ciphertext, another aad, another info and a short ciphertext', async () => {
    const { privateKey, publicKey } = await libraryKeyPair();
    const sender = hpke.sender(publicKey, info, undefined);
    const enc = new Uint8Array(sender.enc);
    const ct = new Uint8Array(await sender.seal(text('hello'), aad));
    const flipped = Uint8Array.from(ct);
    flipped[0] = (flipped[0] as number) ^ 1;
    await expect(
      hpke.recipient(privateKey, publicKey, enc, info).open(flipped, aad),
    ).rejects.toThrow();
    await expect(
      hpke.recipient(privateKey, publicKey, enc, info).open(ct, text('other')),
    ).rejects.toThrow();
    await expect(
      hpke.recipient(privateKey, publicKey, enc, text('other info')).open(ct, aad),
    ).rejects.toThrow();
    await expect(
      hpke.recipient(privateKey, publicKey, enc, info).open(ct.subarray(0, 15), aad),
    ).rejects.toThrow();
    // And the right one still opens.
    await expect(
      hpke.recipient(privateKey, publicKey, enc, info).open(ct, aad),
    ).resolves.toBeDefined();
  });

  it('refuses a low-order public key or enc, whose shared secret is zero (RFC 9180 §7.1.4)', async () => {
    const { privateKey, publicKey } = await libraryKeyPair();
    const zero = new Uint8Array(32);
    expect(() => hpke.sender(zero, info, undefined)).toThrow();
    expect(() => hpke.recipient(privateKey, publicKey, zero, info)).toThrow();
    // The point of order 8 with u = 1 (RFC 7748 §5 lists the low-order points).
    const one = new Uint8Array(32);
    one[0] = 1;
    expect(() => hpke.recipient(privateKey, publicKey, one, info)).toThrow();
  });

  it('refuses keys of the wrong size', async () => {
    const { privateKey, publicKey } = await libraryKeyPair();
    expect(() => hpke.sender(publicKey.subarray(1), info, undefined)).toThrow(/32 octets/);
    expect(() => hpke.sender(publicKey, info, new Uint8Array(31))).toThrow(/32 octets/);
    const enc = new Uint8Array(hpke.sender(publicKey, info, undefined).enc);
    expect(() => hpke.recipient(privateKey.subarray(1), publicKey, enc, info)).toThrow(/32 octets/);
    expect(() => hpke.recipient(privateKey, publicKey, enc.subarray(1), info)).toThrow(/32 octets/);
  });
});
