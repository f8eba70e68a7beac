import {
  SIGNED_OBJECT_VERSION,
  decodeAttestation,
  encodeMapping,
  encodeRemoval,
  signingInput,
  type MspEntry,
  type SealedBox,
  type UnsignedMapping,
  type UnsignedRemoval,
} from '../../common/src/protocol/signed.js';
import { signWith, type RecipientRecord } from './keys.js';

/**
 * The signed objects the page sends (docs/protocol.md §4), made as the CLI makes them: the
 * signing input and the encodings are common's `signed.ts`; only the signature is this page's,
 * from the stored key (WebCrypto or the portable path, keys.ts).
 */

/** How long a published mapping lasts, in days: the CLI's default (`recipient publish --ttl-days`). */
export const MAPPING_LIFETIME_DAYS = 30;
const DAY = 86_400;

/** The current time in whole seconds. */
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/**
 * The next `seq` of a key: the current time in seconds (as the CLI's default), or one more than
 * the last used when the clock has not moved past it, so every object of the key grows.
 */
export function nextSeq(record: RecipientRecord, now: number): number {
  return Math.max(now, record.seq + 1);
}

/** A signed, encoded Mapping of the record's CSI to `msps` (and `sealed` boxes), with `seq`. */
export async function signedMapping(
  record: RecipientRecord,
  msps: readonly MspEntry[],
  sealed: readonly SealedBox[],
  seq: number,
  now: number,
): Promise<Uint8Array> {
  if (record.attestation === undefined) throw new Error('the key has no attestation yet');
  const unsigned: UnsignedMapping = {
    v: SIGNED_OBJECT_VERSION,
    msps,
    ...(sealed.length === 0 ? {} : { sealed }),
    key: record.publicKey,
    seq,
    iat: now,
    exp: now + MAPPING_LIFETIME_DAYS * DAY,
    new: false,
    att: decodeAttestation(record.attestation),
  };
  // signingInput checks every field against the bounds of a Mapping (a bad provider, tag or
  // URI throws SignedObjectError before anything is signed).
  const sig = await signWith(record, signingInput('mapping', unsigned, record.csi));
  return encodeMapping({ ...unsigned, sig });
}

/** A signed, encoded Removal of the record's mappings up to `seq`. */
export async function signedRemoval(
  record: RecipientRecord,
  seq: number,
  now: number,
): Promise<Uint8Array> {
  const unsigned: UnsignedRemoval = {
    v: SIGNED_OBJECT_VERSION,
    csi: record.csi,
    key: record.publicKey,
    seq,
    iat: now,
  };
  const sig = await signWith(record, signingInput('removal', unsigned));
  return encodeRemoval({ ...unsigned, sig });
}
