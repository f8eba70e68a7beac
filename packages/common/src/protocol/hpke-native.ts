import type * as NodeBuffer from 'node:buffer';
import type * as NodeCrypto from 'node:crypto';

/**
 * HPKE base mode (RFC 9180 §5.1.1) for the one suite of the network — DHKEM(X25519,
 * HKDF-SHA256) 0x0020, HKDF-SHA256 0x0001, AES-128-GCM 0x0001 — with every primitive from
 * `node:crypto` (OpenSSL), synchronously. `@hpke/core` computes the same through WebCrypto, with
 * a promise per HMAC (about 20 of them per context): about 1.2 ms of CPU to set up a sender and
 * 1.7 ms a recipient on the project's test machine, against about 0.15 ms here; with
 * `@hpke/dhkem-x25519` (pure-JS X25519) the sender costs about 3 ms. `ohttp.ts` uses this module
 * where the runtime has `node:crypto` and the library elsewhere (a browser page that bundles
 * sealed.ts); the tests hold both to RFC 9458 Appendix A and to each other.
 *
 * Worked example (RFC 9180 §5.1, §4.1): the sender draws (skE, pkE); dh = X25519(skE, pkR);
 * shared_secret = LabeledExpand(LabeledExtract("", "eae_prk", dh), "shared_secret",
 * pkE ‖ pkR, 32) under the suite id "KEM" 0020; the key schedule then derives key, base_nonce
 * and exporter_secret from it and the info under "HPKE" 0020 0001 0001, and enc = pkE.
 */

/** Octets of an X25519 key, of `enc` and of the DH output (Npk = Nsk = Nenc = Ndh). */
const NPK = 32;
/** HKDF-SHA256 output size (Nh) and the KEM's shared secret size (Nsecret). */
const NH = 32;
/** AES-128-GCM key, nonce and tag sizes (RFC 9180 §7.3). */
const NK = 16;
const NN = 12;
const NT = 16;
/**
 * Messages one context may seal or open (RFC 9180 §5.2: the sequence number must not wrap; a
 * 12-octet nonce allows 2^96, the project seals one message per context).
 */
export const HPKE_MAX_SEQUENCE = Number.MAX_SAFE_INTEGER;

/**
 * What ohttp.ts, odoh.ts and sealed.ts use of a sender or recipient context: the shape of
 * `@hpke/core`'s contexts (octets as `ArrayBuffer`s), so either implementation serves them.
 */
export interface HpkeContext {
  /** The encapsulated key (pkE); a recipient's is the one it was given. */
  readonly enc: ArrayBuffer;
  /** Seal (RFC 9180 §5.2) with the next sequence number. */
  seal(plaintext: Uint8Array, aad: Uint8Array): Promise<ArrayBuffer>;
  /** Open (RFC 9180 §5.2) with the next sequence number; rejects when it does not authenticate. */
  open(ciphertext: Uint8Array, aad: Uint8Array): Promise<ArrayBuffer>;
  /** Secret export (RFC 9180 §5.3). */
  export(exporterContext: Uint8Array, length: number): Promise<ArrayBuffer>;
}

/** The octets of `bytes` in an `ArrayBuffer` of their own. */
function bufferOf(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.length);
  new Uint8Array(out).set(bytes);
  return out;
}

/** HPKE of the one suite on `node:crypto`. */
export interface NativeHpke {
  /**
   * SetupBaseS to the raw X25519 `publicKey` with `info`; `ephemeralPrivateKey` replaces the
   * fresh ephemeral key (test vectors only). Throws for a public key of the wrong size or one
   * whose shared secret is zero (a low-order point, RFC 9180 §7.1.4).
   */
  sender(
    publicKey: Uint8Array,
    info: Uint8Array,
    ephemeralPrivateKey: Uint8Array | undefined,
  ): HpkeContext;
  /** SetupBaseR with the raw X25519 key pair, `enc` and `info`; throws as {@link sender}. */
  recipient(
    privateKey: Uint8Array,
    publicKey: Uint8Array,
    enc: Uint8Array,
    info: Uint8Array,
  ): HpkeContext;
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** PKCS #8 header of an X25519 private key (RFC 8410 §7), and SPKI header of a public key. */
const PKCS8_X25519_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);
const SPKI_X25519_PREFIX = Uint8Array.from([
  0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
]);
const HPKE_V1 = text('HPKE-v1');
/** suite_id of the KEM (RFC 9180 §4.1) and of the whole suite (§5.1). */
const KEM_SUITE_ID = Uint8Array.of(0x4b, 0x45, 0x4d, 0x00, 0x20);
const HPKE_SUITE_ID = Uint8Array.of(0x48, 0x50, 0x4b, 0x45, 0x00, 0x20, 0x00, 0x01, 0x00, 0x01);
const MODE_BASE = 0x00;

/** The native implementation over `node:crypto`; exported for the tests. */
export function createNativeHpke(crypto: typeof NodeCrypto, buffer: typeof NodeBuffer): NativeHpke {
  const { Buffer } = buffer;
  const hmac = (key: Uint8Array, ...parts: Uint8Array[]): Uint8Array => {
    const h = crypto.createHmac('sha256', key);
    for (const p of parts) h.update(p);
    return new Uint8Array(h.digest());
  };
  // RFC 9180 §4: LabeledExtract and LabeledExpand over HKDF-SHA256 (RFC 5869).
  const labeledExtract = (
    suiteId: Uint8Array,
    salt: Uint8Array,
    label: string,
    ikm: Uint8Array,
  ): Uint8Array => hmac(salt, HPKE_V1, suiteId, text(label), ikm);
  const labeledExpand = (
    suiteId: Uint8Array,
    prk: Uint8Array,
    label: string,
    info: Uint8Array,
    length: number,
  ): Uint8Array => {
    const labeledInfo = concat(
      Uint8Array.of(length >>> 8, length & 0xff),
      HPKE_V1,
      suiteId,
      text(label),
      info,
    );
    // HKDF-Expand: T(i) = HMAC(prk, T(i−1) ‖ info ‖ i), at most 255 blocks (RFC 5869 §2.3).
    if (length > 255 * NH) throw new RangeError('HKDF-Expand output too long');
    const out = new Uint8Array(length);
    let block: Uint8Array = new Uint8Array(0);
    for (let i = 1, at = 0; at < length; i++, at += NH) {
      block = hmac(prk, block, labeledInfo, Uint8Array.of(i));
      out.set(block.subarray(0, Math.min(NH, length - at)), at);
    }
    return out;
  };

  const privateKeyOf = (raw: Uint8Array): NodeCrypto.KeyObject => {
    if (raw.length !== NPK) throw new RangeError(`an X25519 private key is ${NPK} octets`);
    return crypto.createPrivateKey({
      key: Buffer.from(concat(PKCS8_X25519_PREFIX, raw)),
      format: 'der',
      type: 'pkcs8',
    });
  };
  const publicKeyOf = (raw: Uint8Array): NodeCrypto.KeyObject => {
    if (raw.length !== NPK) throw new RangeError(`an X25519 public key is ${NPK} octets`);
    return crypto.createPublicKey({
      key: Buffer.from(concat(SPKI_X25519_PREFIX, raw)),
      format: 'der',
      type: 'spki',
    });
  };
  const rawPublic = (key: NodeCrypto.KeyObject): Uint8Array => {
    const spki = key.export({ format: 'der', type: 'spki' });
    return new Uint8Array(spki.subarray(spki.length - NPK));
  };
  /** DH (RFC 9180 §4.1), refusing the all-zero output of a low-order point (§7.1.4). */
  const dh = (privateKey: NodeCrypto.KeyObject, publicKey: NodeCrypto.KeyObject): Uint8Array => {
    const out = new Uint8Array(crypto.diffieHellman({ privateKey, publicKey }));
    if (out.every((b) => b === 0)) throw new Error('the X25519 shared secret is zero');
    return out;
  };
  /** ExtractAndExpand of DHKEM (RFC 9180 §4.1). */
  const sharedSecret = (dhOut: Uint8Array, enc: Uint8Array, pkR: Uint8Array): Uint8Array =>
    labeledExpand(
      KEM_SUITE_ID,
      labeledExtract(KEM_SUITE_ID, new Uint8Array(0), 'eae_prk', dhOut),
      'shared_secret',
      concat(enc, pkR),
      NH,
    );

  /** KeySchedule (RFC 9180 §5.1) in base mode, and the context it gives. */
  const context = (secret: Uint8Array, info: Uint8Array, enc: Uint8Array): HpkeContext => {
    const empty = new Uint8Array(0);
    const keyScheduleContext = concat(
      Uint8Array.of(MODE_BASE),
      labeledExtract(HPKE_SUITE_ID, empty, 'psk_id_hash', empty),
      labeledExtract(HPKE_SUITE_ID, empty, 'info_hash', info),
    );
    const prk = labeledExtract(HPKE_SUITE_ID, secret, 'secret', empty);
    const key = labeledExpand(HPKE_SUITE_ID, prk, 'key', keyScheduleContext, NK);
    const baseNonce = labeledExpand(HPKE_SUITE_ID, prk, 'base_nonce', keyScheduleContext, NN);
    const exporterSecret = labeledExpand(HPKE_SUITE_ID, prk, 'exp', keyScheduleContext, NH);
    let sequence = 0;
    /** ComputeNonce (RFC 9180 §5.2): base_nonce XOR I2OSP(seq, Nn), then seq + 1. */
    const nextNonce = (): Uint8Array => {
      if (sequence >= HPKE_MAX_SEQUENCE) throw new Error('the HPKE sequence number is exhausted');
      const nonce = Uint8Array.from(baseNonce);
      let seq = sequence++;
      for (let i = NN - 1; i >= 0 && seq > 0; i--, seq = Math.floor(seq / 256)) {
        nonce[i] = (nonce[i] as number) ^ (seq % 256);
      }
      return nonce;
    };
    return Object.freeze({
      enc: bufferOf(enc),
      seal(plaintext: Uint8Array, aad: Uint8Array): Promise<ArrayBuffer> {
        const cipher = crypto.createCipheriv('aes-128-gcm', key, nextNonce());
        cipher.setAAD(aad);
        const body = cipher.update(plaintext);
        const last = cipher.final();
        return Promise.resolve(bufferOf(Buffer.concat([body, last, cipher.getAuthTag()])));
      },
      open(ciphertext: Uint8Array, aad: Uint8Array): Promise<ArrayBuffer> {
        try {
          if (ciphertext.length < NT) throw new Error('the ciphertext is shorter than its tag');
          const nonce = nextNonce();
          const decipher = crypto.createDecipheriv('aes-128-gcm', key, nonce, {
            authTagLength: NT,
          });
          decipher.setAAD(aad);
          decipher.setAuthTag(ciphertext.subarray(ciphertext.length - NT));
          const body = decipher.update(ciphertext.subarray(0, ciphertext.length - NT));
          const last = decipher.final();
          return Promise.resolve(bufferOf(Buffer.concat([body, last])));
        } catch (cause) {
          return Promise.reject(new Error('the HPKE ciphertext does not open', { cause }));
        }
      },
      export(exporterContext: Uint8Array, length: number): Promise<ArrayBuffer> {
        return Promise.resolve(
          bufferOf(labeledExpand(HPKE_SUITE_ID, exporterSecret, 'sec', exporterContext, length)),
        );
      },
    });
  };

  return Object.freeze({
    sender(
      publicKey: Uint8Array,
      info: Uint8Array,
      ephemeralPrivateKey: Uint8Array | undefined,
    ): HpkeContext {
      const pkR = publicKeyOf(publicKey);
      const skE =
        ephemeralPrivateKey === undefined
          ? crypto.generateKeyPairSync('x25519').privateKey
          : privateKeyOf(ephemeralPrivateKey);
      const enc = rawPublic(crypto.createPublicKey(skE));
      const secret = sharedSecret(dh(skE, pkR), enc, publicKey);
      return context(secret, info, enc);
    },
    recipient(
      privateKey: Uint8Array,
      publicKey: Uint8Array,
      enc: Uint8Array,
      info: Uint8Array,
    ): HpkeContext {
      const secret = sharedSecret(dh(privateKeyOf(privateKey), publicKeyOf(enc)), enc, publicKey);
      return context(secret, info, enc);
    },
  } satisfies NativeHpke);
}

/**
 * The native implementation when this runtime has `node:crypto` with X25519, else undefined.
 * `process.getBuiltinModule` keeps this module loadable in a browser bundle (see ohttp.ts).
 */
function loadNativeHpke(): NativeHpke | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  if (typeof proc?.getBuiltinModule !== 'function') return undefined;
  try {
    const crypto = proc.getBuiltinModule('node:crypto') as typeof NodeCrypto | undefined;
    const buffer = proc.getBuiltinModule('node:buffer') as typeof NodeBuffer | undefined;
    if (crypto === undefined || buffer === undefined) return undefined;
    crypto.generateKeyPairSync('x25519');
    return createNativeHpke(crypto, buffer);
  } catch {
    // A node:crypto without X25519: the library serves.
    return undefined;
  }
}

/** HPKE on `node:crypto`, or undefined where the runtime has none. */
export const nativeHpke: NativeHpke | undefined = loadNativeHpke();
