import { describe, expect, it } from 'vitest';
import {
  MAX_CLOCK_SKEW_SECONDS,
  SIGNING_LABELS,
  SignedObjectError,
  createAttestation,
  createMaprefRequest,
  decodeCbor,
  decodeMaprefRequest,
  encodeCbor,
  encodeMaprefRequest,
  keyPairFromSeed,
  sign,
  signingInput,
  verifyMaprefRequest,
  type CborMap,
  type MaprefRequest,
  type UnsignedMaprefRequest,
} from '../src/index.js';

// The MapRef request of the registration API (design §8.3), signed under label `mapref`.

const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
const RECIPIENT = keyPairFromSeed(seed(1));
const PROVER_SEED = seed(2);
const OTHER = keyPairFromSeed(seed(4));
const CSI = 'tel:+442079460018';
const T0 = 1_767_225_600;
const TARGET = 'msp-dp.example.com';

const att = createAttestation(
  { csi: CSI, key: RECIPIENT.publicKey, nbf: T0, exp: T0 + 365 * 86_400 },
  PROVER_SEED,
);

function request(target: string | null = TARGET, iat = T0): MaprefRequest {
  return createMaprefRequest({ csi: CSI, target, iat, att }, RECIPIENT.secretKey);
}

const reasonAt = (input: Uint8Array | MaprefRequest, now: number) => {
  const result = verifyMaprefRequest(input, { now, csi: CSI });
  return result.kind === 'verified' ? 'ok' : result.reason;
};

describe('MapRef request', () => {
  it('has its own signing label', () => {
    expect(SIGNING_LABELS).toContain('mapref');
    const input = signingInput('mapref', request());
    const prefix = new TextEncoder().encode('MIMI-Discovery-v1/mapref\0');
    expect(input.subarray(0, prefix.length)).toEqual(prefix);
  });

  it('encodes deterministically and decodes to the same request', () => {
    for (const target of [TARGET, null]) {
      const r = request(target);
      const bytes = encodeMaprefRequest(r);
      expect(decodeMaprefRequest(bytes)).toEqual(r);
      expect(encodeMaprefRequest(decodeMaprefRequest(bytes))).toEqual(bytes);
      const map = decodeCbor(bytes) as CborMap;
      expect(Object.keys(map).sort()).toEqual(
        ['att', 'csi', 'iat', 'key', 'sig', 'target', 'v'].sort(),
      );
      // The request names its CSI; its attestation is the version-2 form, which does not.
      expect(Object.keys(map['att'] as CborMap).sort()).toEqual(
        ['exp', 'key', 'nbf', 'prover', 'sig', 'v'].sort(),
      );
    }
  });

  it('verifies within the clock skew of its iat, either side', () => {
    const bytes = encodeMaprefRequest(request());
    expect(reasonAt(bytes, T0)).toBe('ok');
    expect(reasonAt(bytes, T0 - MAX_CLOCK_SKEW_SECONDS)).toBe('ok');
    expect(reasonAt(bytes, T0 - MAX_CLOCK_SKEW_SECONDS - 1)).toBe('not-yet-valid');
    expect(reasonAt(bytes, T0 + MAX_CLOCK_SKEW_SECONDS)).toBe('ok');
    expect(reasonAt(bytes, T0 + MAX_CLOCK_SKEW_SECONDS + 1)).toBe('expired');
  });

  it('is bound to the attested CSI and key', () => {
    expect(() =>
      createMaprefRequest({ csi: CSI, target: TARGET, iat: T0, att }, OTHER.secretKey),
    ).toThrow(SignedObjectError);
    const unsigned: UnsignedMaprefRequest = {
      v: 2,
      csi: CSI,
      target: TARGET,
      key: OTHER.publicKey,
      iat: T0,
      att,
    };
    const foreign = { ...unsigned, sig: sign(signingInput('mapref', unsigned), OTHER.secretKey) };
    expect(reasonAt(encodeMaprefRequest(foreign), T0)).toBe('csi-mismatch');
    expect(verifyMaprefRequest(request(), { now: T0, csi: 'tel:+442079460019' })).toMatchObject({
      kind: 'failed',
      reason: 'csi-mismatch',
    });
  });

  it('is bad-signature when its attestation is of another CSI', () => {
    const other = 'tel:+442079460019';
    const otherAtt = createAttestation(
      { csi: other, key: RECIPIENT.publicKey, nbf: T0, exp: T0 + 365 * 86_400 },
      PROVER_SEED,
    );
    // createMaprefRequest refuses it; a request signed by hand around it does not verify.
    expect(() =>
      createMaprefRequest(
        { csi: CSI, target: TARGET, iat: T0, att: otherAtt },
        RECIPIENT.secretKey,
      ),
    ).toThrow(expect.objectContaining({ code: 'ERR_SIGNED_OBJECT_BINDING_MISMATCH' }));
    const unsigned: UnsignedMaprefRequest = {
      v: 2,
      csi: CSI,
      target: TARGET,
      key: RECIPIENT.publicKey,
      iat: T0,
      att: otherAtt,
    };
    const forged = {
      ...unsigned,
      sig: sign(signingInput('mapref', unsigned), RECIPIENT.secretKey),
    };
    expect(verifyMaprefRequest(encodeMaprefRequest(forged), { now: T0 })).toMatchObject({
      kind: 'failed',
      reason: 'bad-signature',
      detail: expect.stringContaining('mapref.att.sig'),
    });
  });

  it('rejects a signature made under another label or by another key', () => {
    const r = request();
    const unsigned: UnsignedMaprefRequest = {
      v: r.v,
      csi: r.csi,
      target: r.target,
      key: r.key,
      iat: r.iat,
      att: r.att,
    };
    const content = signingInput('mapref', unsigned).subarray('MIMI-Discovery-v1/mapref\0'.length);
    const asRemoval = new Uint8Array([
      ...new TextEncoder().encode('MIMI-Discovery-v1/removal\0'),
      ...content,
    ]);
    expect(reasonAt({ ...r, sig: sign(asRemoval, RECIPIENT.secretKey) }, T0)).toBe('wrong-label');
    const byOther = sign(signingInput('mapref', unsigned), OTHER.secretKey);
    expect(reasonAt({ ...r, sig: byOther }, T0)).toBe('bad-signature');
  });

  it.each(['Msp-DP.example.com', 'msp-dp.example.com.', '', '.', 'a..b', 'bücher.de', 42])(
    'refuses the target %j',
    (target) => {
      expect(() =>
        createMaprefRequest(
          { csi: CSI, target: target as string, iat: T0, att },
          RECIPIENT.secretKey,
        ),
      ).toThrow(SignedObjectError);
      const map = { ...(decodeCbor(encodeMaprefRequest(request())) as CborMap), target };
      expect(reasonAt(encodeCbor(map), T0)).toBe('malformed');
    },
  );

  it('decodes only the exact set of fields', () => {
    const map = decodeCbor(encodeMaprefRequest(request())) as CborMap;
    const missing = Object.fromEntries(Object.entries(map).filter(([k]) => k !== 'target'));
    expect(() => decodeMaprefRequest(encodeCbor(missing))).toThrow(/mapref.target is missing/);
    expect(() => decodeMaprefRequest(encodeCbor({ ...map, extra: 1 }))).toThrow(
      /mapref.extra is not a field/,
    );
  });
});
