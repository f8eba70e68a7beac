import * as cborg from 'cborg';
import type * as Cborg from 'cborg';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import * as ed25519 from '../src/protocol/ed25519.js';
import type * as Ed25519 from '../src/protocol/ed25519.js';
import {
  createAttestation,
  createMapping,
  encodeAttestation,
  encodeMapping,
  receivedMappingSigningInputs,
  verifyAttestation,
  verifyMapping,
} from '../src/index.js';

// Counts the CBOR encodings and the signature checks of verifying one received object. cborg's
// `encode` is the only encoder of cbor.ts; ed25519.ts's `verify` is the only check of signed.ts.
vi.mock('cborg', async (importOriginal) => {
  const actual = await importOriginal<typeof Cborg>();
  return { ...actual, encode: vi.fn(actual.encode) };
});
vi.mock('../src/protocol/ed25519.js', async (importOriginal) => {
  const actual = await importOriginal<typeof Ed25519>();
  return { ...actual, verify: vi.fn(actual.verify) };
});

const encode = vi.mocked(cborg.encode);
const verify = vi.mocked(ed25519.verify);
const DAY = 86_400;
const T0 = 1_767_225_600;
const CSI = 'tel:+442079460018';
const RECIPIENT_SEED = new Uint8Array(32).fill(0x01);
const PROVER_SEED = new Uint8Array(32).fill(0x02);
const RECIPIENT = ed25519.keyPairFromSeed(RECIPIENT_SEED);

const att = createAttestation(
  { csi: CSI, key: RECIPIENT.publicKey, nbf: T0, exp: T0 + 365 * DAY },
  PROVER_SEED,
);
const mapping = createMapping(
  {
    csi: CSI,
    msps: [{ provider: 'msp.example', tags: ['mls'], uri: 'https://msp.example/mimi' }],
    sealed: [{ kid: new Uint8Array(8), enc: new Uint8Array(32), ct: new Uint8Array(64) }],
    seq: 1,
    iat: T0,
    exp: T0 + 30 * DAY,
    new: true,
    att,
  },
  RECIPIENT_SEED,
);
const mappingBytes = encodeMapping(mapping);
const attBytes = encodeAttestation(att);

beforeEach(() => {
  encode.mockClear();
  verify.mockClear();
});

describe('encodings while verifying a received object', () => {
  it('verifying a received mapping encodes nothing', () => {
    expect(verifyMapping(mappingBytes, { csi: CSI, now: T0 + DAY }).kind).toBe('verified');
    expect(encode).toHaveBeenCalledTimes(0);
  });

  it('verifying a received attestation encodes nothing', () => {
    expect(verifyAttestation(attBytes, { csi: CSI, now: T0 + DAY }).kind).toBe('verified');
    expect(encode).toHaveBeenCalledTimes(0);
  });

  it('checks each signature once, over the inputs cut from the received octets', () => {
    verifyMapping(mappingBytes, { csi: CSI, now: T0 + DAY });
    const inputs = receivedMappingSigningInputs(mappingBytes, CSI);
    expect(verify.mock.calls.map(([, message]) => message)).toEqual([
      inputs.attestation,
      inputs.mapping,
    ]);
  });

  it('an object built in the program is still encoded for its signing inputs', () => {
    // The path of createMapping and of verifying an object: its content encoded, once per
    // signature (the mapping's content holds the attestation's encoding).
    expect(verifyMapping(mapping, { csi: CSI, now: T0 + DAY }).kind).toBe('verified');
    expect(encode).toHaveBeenCalledTimes(2);
  });
});
