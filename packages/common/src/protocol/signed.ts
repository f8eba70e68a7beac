import {
  decodeCbor,
  encodeCbor,
  MAX_CBOR_DEPTH,
  MAX_SIGNED_OBJECT_OCTETS,
  type CborMap,
} from './cbor.js';
import { encodeText, readMapSpans, spliceMapEntry } from './cbor-walk.js';
import {
  ED25519_PUBLIC_KEY_OCTETS,
  ED25519_SIGNATURE_OCTETS,
  keyPairFromSeed,
  sign,
  verify,
} from './ed25519.js';
import { NameError, SignedObjectError } from './errors.js';
import { canonicalName, formatLabels, parseLabels } from './names.js';

/**
 * The signed objects of design §4: Mapping (MAP RDATA), Attestation, Removal and Revocation,
 * and the MapRef request of the registration API (design §8.3), in version 2
 * (docs/protocol.md §4).
 * Each is a CBOR map in deterministic encoding (cbor.ts) whose `sig` is an Ed25519 signature
 * (ed25519.ts) over `"MIMI-Discovery-v1/" || label || 0x00 || content`, where `content` is the
 * deterministic CBOR of the object without `sig`. The label keeps a signature made for one
 * purpose from passing for another, as MLS `SignWithLabel` (RFC 9420 §5.1.2) does.
 *
 * A Mapping and an Attestation do not carry their CSI: a MAP record is cached, logged and
 * transferred, and should not spell the phone number or email address it is for. Their signed
 * content is the object's map *with* `csi` inserted, and whoever verifies supplies the canonical
 * CSI, which it knows already (a resolver looked it up, a DP was asked to publish for it). A
 * mapping copied to another CSI's name fails: its signatures cover its own CSI. Removal,
 * Revocation and MapRef request are sent to a DP, never published, and keep `csi`; a MapRef
 * request's `att` is an Attestation of the request's `csi`.
 *
 * Version 1 carried `csi` in both. A version-1 object is refused (`unsupported-version`) and can
 * never pass for version 2: `v` is inside every signed content, so a version-1 signature covers
 * `v: 1` and a version-2 verifier rebuilds `v: 2`.
 *
 * Worked example: a Removal `{v: 2, csi: "tel:+442079460018", key, seq: 1, iat}` is signed over
 * `4d494d492d446973636f766572792d76312f` ("MIMI-Discovery-v1/") `72656d6f76616c` ("removal")
 * `00` and the CBOR map of those five fields; the encoded Removal is that map with `sig` added.
 * An Attestation `{v: 2, key, prover, nbf, exp}` of `tel:+442079460018` is signed over
 * "MIMI-Discovery-v1/attestation" `00` and the CBOR map of those five fields and
 * `csi: "tel:+442079460018"`; the encoded Attestation is the five fields and `sig`.
 * test/vectors/signed-objects.json holds complete examples from fixed keys.
 *
 * What this module checks, and what it leaves to the caller:
 * - decoding is strict: exactly the fields of the type (`uri` of an MSP entry and `sealed` of a
 *   Mapping are the only optional ones), each of its type and within the bounds below, `v` = 2;
 *   a failure names the field;
 * - a Mapping's sealed boxes are octets here: their sizes are checked and the signature covers
 *   them, and opening one is sealed.ts's concern (a DP or a resolver never holds the key);
 * - a CSI (a field, or the one supplied to verify a Mapping or Attestation) is only checked for
 *   shape (`tel:+…` or `mailto:…`, at most {@link MAX_CSI_OCTETS}); whether it is canonical is
 *   csi.ts's concern, and the signatures cover the string as given, so the caller passes a
 *   canonical CSI;
 * - verification checks signatures, labels, the CSI binding and validity times; it does not
 *   check that a prover or CSIP key is authorized for the range (the caller holds the AUTHKEY
 *   set and checks `att.prover` or `csip` against it), nor `seq` ordering, nor what a
 *   Revocation's `before` revokes.
 *
 * Times are integer seconds since the epoch and always passed in (`now`); the module reads no
 * clock.
 */

/**
 * The context string that opens every signing input (design §4). It names the framing of the
 * signing input, which version 2 keeps; the object's version is `v`, inside the content.
 */
export const SIGNING_CONTEXT = 'MIMI-Discovery-v1/';
/**
 * The version every object carries in `v`: 2, in which a Mapping and an Attestation do not
 * carry their CSI. Objects of any other version (1 carried it) are refused.
 */
export const SIGNED_OBJECT_VERSION = 2;
/**
 * How far a start time (`iat`, `nbf`) may lie ahead of `now` and still verify, for clocks that
 * disagree a little. Expiry (`exp`) gets no such allowance: the signer chose it.
 */
export const MAX_CLOCK_SKEW_SECONDS = 300;
/**
 * Longest CSI in UTF-8 octets: `mailto:` (7) and an address of at most 256 octets, the path
 * limit of RFC 5321 §4.5.3.1.3. A `tel:` CSI is far shorter (E.164: 15 digits).
 */
export const MAX_CSI_OCTETS = 263;
/** Longest MSP `provider`: a domain name in presentation form (RFC 1035 §2.3.4). */
export const MAX_PROVIDER_OCTETS = 253;
/** Longest MSP `uri`. */
export const MAX_URI_OCTETS = 512;
/** Longest MSP tag. */
export const MAX_TAG_OCTETS = 63;
/** Most MSP entries in one Mapping. */
export const MAX_MSPS_PER_MAPPING = 32;
/** Most tags in one MSP entry. */
export const MAX_TAGS_PER_MSP = 16;
/**
 * Most sealed boxes in one Mapping (docs/protocol.md §4, "Sealed mappings"): one per
 * audience, with room for a key rotation's hand-over. The whole mapping stays within
 * `MAX_SIGNED_OBJECT_OCTETS` too, which binds first when the boxes are large.
 */
export const MAX_SEALED_PER_MAPPING = 8;
/** Octets of a sealed box's `kid`: the audience key id (sealed.ts, `audienceKeyId`). */
export const AUDIENCE_KEY_ID_OCTETS = 8;
/** Octets of a sealed box's `enc`: the X25519 encapsulated key of HPKE (RFC 9180 §7.1, Nenc). */
export const SEALED_ENC_OCTETS = 32;
/** Octets of the AES-128-GCM tag that ends a sealed box's `ct` (RFC 9180 §7.3, Nt). */
export const SEALED_TAG_OCTETS = 16;
/**
 * Longest sealed box `ct`: 2048 octets of padded plaintext and the AEAD tag. The shortest is
 * the tag and one octet; sealed.ts always writes a whole number of padding blocks.
 */
export const MAX_SEALED_CIPHERTEXT_OCTETS = 2064;

/**
 * The signing labels (design §4), one per object type; `mapref` signs a {@link MaprefRequest}
 * (design §8.3), which is sent to a registration API and never published.
 */
export const SIGNING_LABELS = Object.freeze([
  'mapping',
  'attestation',
  'removal',
  'revocation',
  'mapref',
  'credential',
] as const);
/** A signing label. */
export type SigningLabel = (typeof SIGNING_LABELS)[number];

/**
 * The ID prover's credential: the holder of `key` controls a CSI (design §4). The CSI is not a
 * field: the prover's signature covers it, and a verifier supplies it.
 */
export interface Attestation {
  readonly v: 2;
  /** The recipient's public key. */
  readonly key: Uint8Array;
  /** The prover's public key; the caller checks it is an AUTHKEY `prover` of the range. */
  readonly prover: Uint8Array;
  readonly nbf: number;
  readonly exp: number;
  /** The prover's signature under label `attestation`. */
  readonly sig: Uint8Array;
}

/** One MSP that serves the CSI. */
export interface MspEntry {
  /** The MSP's domain. */
  readonly provider: string;
  readonly tags: readonly string[];
  readonly uri?: string;
}

// A type alias, not an interface: an object type is assignable to a CBOR map (which has an
// index signature) only when it is an alias, so a Mapping's fields, spread into a map, stay
// CBOR values as they were before boxes existed.
/**
 * MSP entries sealed with HPKE to one audience key (sealed.ts; docs/protocol.md §4, "Sealed
 * mappings"). A DP or a resolver serves and verifies it as octets; only a holder of the
 * audience key opens it.
 */
export type SealedBox = {
  /** The audience key id, {@link AUDIENCE_KEY_ID_OCTETS} octets. */
  readonly kid: Uint8Array;
  /** The HPKE encapsulated key, {@link SEALED_ENC_OCTETS} octets. */
  readonly enc: Uint8Array;
  /** The padded entries and the AEAD tag, at most {@link MAX_SEALED_CIPHERTEXT_OCTETS}. */
  readonly ct: Uint8Array;
};

/**
 * A signed mapping from a CSI to MSPs, the RDATA of a MAP record (design §4). The CSI is not a
 * field: both signatures cover it, and a verifier supplies it.
 */
export interface Mapping {
  readonly v: 2;
  /** May be empty. */
  readonly msps: readonly MspEntry[];
  /**
   * Entries sealed to audience keys, covered by `sig` like every field. Absent or non-empty:
   * a mapping without boxes has no `sealed` key, so it encodes as it did before boxes existed.
   */
  readonly sealed?: readonly SealedBox[];
  /** The recipient's public key. */
  readonly key: Uint8Array;
  /** Grows per key. */
  readonly seq: number;
  readonly iat: number;
  readonly exp: number;
  /** The "new" bit. */
  readonly new: boolean;
  /** The attestation that binds the CSI to `key`, with its own signature. */
  readonly att: Attestation;
  /** The recipient's signature under label `mapping`. */
  readonly sig: Uint8Array;
}

/** The recipient's withdrawal of its mappings up to `seq`. */
export interface Removal {
  readonly v: 2;
  readonly csi: string;
  readonly key: Uint8Array;
  readonly seq: number;
  readonly iat: number;
  /** The recipient's signature under label `removal`. */
  readonly sig: Uint8Array;
}

/** The CSI provider's revocation of mappings made before `before` (e.g. a recycled number). */
export interface Revocation {
  readonly v: 2;
  readonly csi: string;
  readonly before: number;
  /** The CSIP's public key; the caller checks it is an AUTHKEY `csip` of the range. */
  readonly csip: Uint8Array;
  readonly iat: number;
  /** The CSIP's signature under label `revocation`. */
  readonly sig: Uint8Array;
}

/**
 * A recipient's request to a registration API to publish a MAPREF at its CSI name (design
 * §8.3: "only on a request signed by an attested key for that CSI"). `target` is the domain
 * name where more mappings for the CSI are published, in canonical form (lowercase, no
 * trailing dot); `null` asks to withdraw the CSI's MAPREF records. The request is not
 * published: `iat` ties it to the moment it was made, and {@link verifyMaprefRequest} accepts
 * it only within {@link MAX_CLOCK_SKEW_SECONDS} of `now`, either side.
 */
export interface MaprefRequest {
  readonly v: 2;
  readonly csi: string;
  readonly target: string | null;
  /** The recipient's public key. */
  readonly key: Uint8Array;
  readonly iat: number;
  /** The attestation that binds `csi` to `key`, with its own signature. */
  readonly att: Attestation;
  /** The recipient's signature under label `mapref`. */
  readonly sig: Uint8Array;
}

/** The credential profiles a DP's prover issues (docs/protocol.md, "Credentials"). */
export const CREDENTIAL_FORMATS = Object.freeze(['x509', 'sd-jwt'] as const);
/** A credential profile: an X.509 certificate, or an SD-JWT (RFC 9901). */
export type CredentialFormat = (typeof CREDENTIAL_FORMATS)[number];

/**
 * A recipient's request to a registration API for a credential that carries its attestation's
 * binding in another form (docs/protocol.md, "Credentials"). It is signed by `att.key`, the
 * attested recipient key, under label `credential`: proof of possession, as a CSR's
 * self-signature (RFC 2986 §3). Like a MapRef request, it is not published, and `iat` ties it
 * to the moment it was made ({@link verifyCredentialRequest} accepts it only within
 * {@link MAX_CLOCK_SKEW_SECONDS} of `now`).
 */
export interface CredentialRequest {
  readonly v: 2;
  readonly csi: string;
  /** The attestation that binds `csi` to the recipient key, with its own signature. */
  readonly att: Attestation;
  readonly format: CredentialFormat;
  readonly iat: number;
  /** The signature by `att.key` under label `credential`. */
  readonly sig: Uint8Array;
}

/** An Attestation without its signature: what the prover signs. */
export type UnsignedAttestation = Omit<Attestation, 'sig'>;
/** A Mapping without its signature: what the recipient signs. */
export type UnsignedMapping = Omit<Mapping, 'sig'>;
/** A Removal without its signature. */
export type UnsignedRemoval = Omit<Removal, 'sig'>;
/** A Revocation without its signature. */
export type UnsignedRevocation = Omit<Revocation, 'sig'>;
/** A MapRef request without its signature. */
export type UnsignedMaprefRequest = Omit<MaprefRequest, 'sig'>;
/** A credential request without its signature. */
export type UnsignedCredentialRequest = Omit<CredentialRequest, 'sig'>;

/**
 * Fields of {@link createAttestation}; `prover`, when given, must match the secret key. `csi` is
 * signed, not encoded.
 */
export interface AttestationFields {
  readonly csi: string;
  readonly key: Uint8Array;
  readonly nbf: number;
  readonly exp: number;
  readonly prover?: Uint8Array;
}

/**
 * Fields of {@link createMapping}; `key`, when given, must match the secret key. `csi` is signed,
 * not encoded; `att` must be an Attestation of it.
 */
export interface MappingFields {
  readonly csi: string;
  readonly msps: readonly MspEntry[];
  /** Boxes made with sealed.ts `sealMsps` for this CSI and key; absent or non-empty. */
  readonly sealed?: readonly SealedBox[];
  readonly seq: number;
  readonly iat: number;
  readonly exp: number;
  readonly new: boolean;
  readonly att: Attestation;
  readonly key?: Uint8Array;
}

/** Fields of {@link createRemoval}; `key`, when given, must match the secret key. */
export interface RemovalFields {
  readonly csi: string;
  readonly seq: number;
  readonly iat: number;
  readonly key?: Uint8Array;
}

/** Fields of {@link createRevocation}; `csip`, when given, must match the secret key. */
export interface RevocationFields {
  readonly csi: string;
  readonly before: number;
  readonly iat: number;
  readonly csip?: Uint8Array;
}

/** Fields of {@link createMaprefRequest}; `key`, when given, must match the secret key. */
export interface MaprefRequestFields {
  readonly csi: string;
  readonly target: string | null;
  readonly iat: number;
  readonly att: Attestation;
  readonly key?: Uint8Array;
}

/**
 * Fields of {@link createCredentialRequest}; `att.key` must be the public key of the secret
 * key, and `att` an Attestation of `csi`.
 */
export interface CredentialRequestFields {
  readonly csi: string;
  readonly att: Attestation;
  readonly format: CredentialFormat;
  readonly iat: number;
}

/** Options of the verify functions of objects that carry their CSI (Removal, Revocation, MapRef). */
export interface VerifyOptions {
  /** The CSI the caller looked up, canonical; when given, the object must be for it. */
  readonly csi?: string;
  /** The current time in seconds since the epoch. */
  readonly now: number;
}

/**
 * Options of {@link verifyMapping} and {@link verifyAttestation}: objects that do not carry their
 * CSI, so the caller supplies it.
 */
export interface VerifyForCsiOptions {
  /**
   * The canonical CSI the object must be for: the one looked up, or the one a publication was
   * asked for. The signatures cover it; an object made for another CSI fails `bad-signature`.
   */
  readonly csi: string;
  /** The current time in seconds since the epoch. */
  readonly now: number;
}

/**
 * Why a verification failed:
 * - `malformed`: the bytes or object are not a well-formed object of the type;
 * - `unsupported-version`: `v` (of the object or of its `att`) is not
 *   {@link SIGNED_OBJECT_VERSION}, e.g. a version-1 object that spells its CSI;
 * - `bad-signature`: a signature is not valid under its label over the object and the CSI it
 *   is verified for: forged, or (a Mapping, an Attestation) made for another CSI;
 * - `wrong-label`: a signature is valid, but under another label (made for another purpose);
 * - `expired` / `not-yet-valid`: `now` is outside the validity times;
 * - `csi-mismatch`: a Removal, Revocation or MapRef request names another CSI than expected, or
 *   a Mapping's (or MapRef request's) attestation binds the CSI to another key.
 */
export type VerifyFailure =
  | 'malformed'
  | 'unsupported-version'
  | 'bad-signature'
  | 'wrong-label'
  | 'expired'
  | 'not-yet-valid'
  | 'csi-mismatch';

/** The outcome of a verification: the verified value, or why it failed. */
export type VerifyResult<T> =
  | { readonly kind: 'verified'; readonly value: T }
  | { readonly kind: 'failed'; readonly reason: VerifyFailure; readonly detail: string };

type Failure = Extract<VerifyResult<never>, { kind: 'failed' }>;

/**
 * Whether an object arrives as bytes or from the program: bytes must hold exactly the fields
 * of the type; an object may carry other properties (TypeScript allows them), which are ignored.
 */
type Strictness = 'exact' | 'lenient';

const ATTESTATION_FIELDS = Object.freeze(['v', 'key', 'prover', 'nbf', 'exp']);
const MAPPING_FIELDS = Object.freeze(['v', 'msps', 'key', 'seq', 'iat', 'exp', 'new', 'att']);
const REMOVAL_FIELDS = Object.freeze(['v', 'csi', 'key', 'seq', 'iat']);
const REVOCATION_FIELDS = Object.freeze(['v', 'csi', 'before', 'csip', 'iat']);
const MAPREF_REQUEST_FIELDS = Object.freeze(['v', 'csi', 'target', 'key', 'iat', 'att']);
const CREDENTIAL_REQUEST_FIELDS = Object.freeze(['v', 'csi', 'att', 'format', 'iat']);
const MAPPING_OPTIONAL_FIELDS = Object.freeze(['sealed']);
const SEALED_BOX_FIELDS = Object.freeze(['kid', 'enc', 'ct']);
const MSP_FIELDS = Object.freeze(['provider', 'tags']);
const MSP_OPTIONAL_FIELDS = Object.freeze(['uri']);
const NO_FIELDS: readonly string[] = Object.freeze([]);

/** A map's entries by key, as read from CBOR or from a program's object. */
type Fields = Readonly<Record<string, unknown>>;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

// ---------------------------------------------------------------------------------------------
// Signing input

/**
 * The bytes a signature covers: `SIGNING_CONTEXT || label || 0x00 || CBOR(content)`, where the
 * content is the object without `sig` and, for a Mapping or an Attestation, with `csi` (which
 * the object does not carry) inserted. A `sig` property on `unsigned` is ignored. Throws
 * {@link SignedObjectError} when `unsigned` is not a well-formed object of the label's type, when
 * `csi` is missing or not shaped as a CSI for a Mapping or an Attestation, and
 * `ERR_CBOR_TOO_LARGE` when the content exceeds `MAX_SIGNED_OBJECT_OCTETS`.
 */
export function signingInput(label: 'mapping', unsigned: UnsignedMapping, csi: string): Uint8Array;
export function signingInput(
  label: 'attestation',
  unsigned: UnsignedAttestation,
  csi: string,
): Uint8Array;
export function signingInput(label: 'removal', unsigned: UnsignedRemoval): Uint8Array;
export function signingInput(label: 'revocation', unsigned: UnsignedRevocation): Uint8Array;
export function signingInput(label: 'mapref', unsigned: UnsignedMaprefRequest): Uint8Array;
export function signingInput(label: 'credential', unsigned: UnsignedCredentialRequest): Uint8Array;
export function signingInput(
  label: SigningLabel,
  unsigned:
    | UnsignedMapping
    | UnsignedAttestation
    | UnsignedRemoval
    | UnsignedRevocation
    | UnsignedMaprefRequest
    | UnsignedCredentialRequest,
  csi?: string,
): Uint8Array;
export function signingInput(label: SigningLabel, unsigned: unknown, csi?: string): Uint8Array {
  switch (label) {
    case 'mapping':
      return labelled(
        label,
        mappingContent(parseUnsignedMapping(unsigned, 'mapping'), suppliedCsi(csi, 'mapping')),
      );
    case 'attestation':
      return labelled(
        label,
        attestationContent(
          parseUnsignedAttestation(unsigned, 'attestation'),
          suppliedCsi(csi, 'attestation'),
        ),
      );
    case 'removal':
      return labelled(label, removalContent(parseUnsignedRemoval(unsigned, 'removal')));
    case 'revocation':
      return labelled(label, revocationContent(parseUnsignedRevocation(unsigned, 'revocation')));
    case 'mapref':
      return labelled(label, maprefContent(parseUnsignedMaprefRequest(unsigned, 'mapref')));
    case 'credential':
      return labelled(
        label,
        credentialRequestContent(parseUnsignedCredentialRequest(unsigned, 'credential')),
      );
    default:
      throw new SignedObjectError(
        'ERR_SIGNED_OBJECT_LABEL',
        `unknown signing label ${String(label)}`,
      );
  }
}

/** The CSI a Mapping or Attestation is signed for, checked for shape. */
function suppliedCsi(csi: unknown, path: string): string {
  if (csi === undefined) {
    malformed(`${path}.csi`, 'must be supplied: it is signed but not carried');
  }
  return readCsi({ csi }, path);
}

/** `"MIMI-Discovery-v1/" || label || 0x00` of each label, encoded once. */
const LABEL_PREFIXES: ReadonlyMap<SigningLabel, Uint8Array> = new Map(
  SIGNING_LABELS.map((label) => [label, utf8.encode(`${SIGNING_CONTEXT}${label}\0`)]),
);

function labelled(label: SigningLabel, content: Uint8Array): Uint8Array {
  const prefix = LABEL_PREFIXES.get(label) ?? utf8.encode(`${SIGNING_CONTEXT}${label}\0`);
  const out = new Uint8Array(prefix.length + content.length);
  out.set(prefix, 0);
  out.set(content, prefix.length);
  return out;
}

/** The signed content of an Attestation: its fields and the CSI it attests. */
function attestationContent(a: UnsignedAttestation, csi: string): Uint8Array {
  return encodeCbor({ ...unsignedAttestationToCbor(a), csi });
}
/** The signed content of a Mapping: its fields (`att` as encoded) and the CSI it maps. */
function mappingContent(m: UnsignedMapping, csi: string): Uint8Array {
  return encodeCbor({ ...unsignedMappingToCbor(m), csi });
}

/**
 * The signed content of a received Mapping or Attestation whose encoding fills
 * `bytes[start, end)`: that map without its `sig` entry and with `csi` inserted where its key
 * sorts (docs/protocol.md §4, "How a verifier builds the signing input from received bytes").
 * Only for octets the strict decoder has accepted as an object of the type: they are then the
 * deterministic encoding of the decoded object, so cutting gives the very octets that encoding
 * the object with `csi` would ({@link mappingContent}, {@link attestationContent}; the tests of
 * signed-content.test.ts compare them byte for byte). A Mapping's `att` keeps its octets, `sig`
 * included, as the content embeds it. Throws as an encoder would: `ERR_CBOR_TOO_LARGE` over
 * `MAX_SIGNED_OBJECT_OCTETS`.
 */
function receivedContent(bytes: Uint8Array, start: number, end: number, csi: string): Uint8Array {
  return spliceMapEntry(
    bytes,
    start,
    end,
    { drop: 'sig', insertKey: 'csi', insertText: csi },
    MAX_CBOR_DEPTH,
    MAX_SIGNED_OBJECT_OCTETS,
  );
}

/**
 * The signing inputs of a received Mapping for `csi` (its own, under label `mapping`, and its
 * attestation's, under label `attestation`) as {@link verifyMapping} builds them: cut from
 * `bytes`, after `bytes` are decoded strictly. Throws {@link SignedObjectError} as
 * {@link decodeMapping} for octets that are not a Mapping, and `ERR_CBOR_TOO_LARGE` for a content
 * over `MAX_SIGNED_OBJECT_OCTETS`. They equal {@link signingInput} of the decoded mapping.
 */
export function receivedMappingSigningInputs(
  bytes: Uint8Array,
  csi: string,
): { readonly mapping: Uint8Array; readonly attestation: Uint8Array } {
  decodeMapping(bytes);
  const checked = suppliedCsi(csi, 'mapping');
  return {
    mapping: labelled('mapping', receivedContent(bytes, 0, bytes.length, checked)),
    attestation: labelled('attestation', receivedAttestationContent(bytes, checked)),
  };
}

const ATT_KEY = encodeText('att');

/** The signed content of the attestation inside a received Mapping, cut from its octets. */
function receivedAttestationContent(mapping: Uint8Array, csi: string): Uint8Array {
  const { entries } = readMapSpans(mapping, 0, mapping.length, MAX_CBOR_DEPTH);
  const att = entries.find(
    (e) =>
      e.valueStart - e.keyStart === ATT_KEY.length &&
      ATT_KEY.every((octet, i) => mapping[e.keyStart + i] === octet),
  );
  if (att === undefined) malformed('mapping.att', 'is missing');
  return receivedContent(mapping, att.valueStart, att.valueEnd, csi);
}

function removalContent(r: UnsignedRemoval): Uint8Array {
  return encodeCbor(unsignedRemovalToCbor(r));
}
function revocationContent(r: UnsignedRevocation): Uint8Array {
  return encodeCbor(unsignedRevocationToCbor(r));
}
function maprefContent(r: UnsignedMaprefRequest): Uint8Array {
  return encodeCbor(unsignedMaprefToCbor(r));
}
function credentialRequestContent(r: UnsignedCredentialRequest): Uint8Array {
  return encodeCbor(unsignedCredentialRequestToCbor(r));
}

/**
 * Whether the prover's signature on `attestation` covers `csi`: what {@link verifyAttestation}
 * checks but the times, for one who holds or receives an attestation (a key file, a
 * registration client) whatever its clock says. False for an attestation that is not well
 * formed; never throws.
 */
export function attestsCsi(attestation: Attestation, csi: string): boolean {
  try {
    const a = parseAttestation(attestation, 'attestation', 'lenient');
    return verify(
      a.sig,
      labelled('attestation', attestationContent(a, suppliedCsi(csi, 'attestation'))),
      a.prover,
    );
  } catch (error) {
    if (error instanceof SignedObjectError) return false;
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Create

/**
 * Creates and signs an Attestation of `fields.csi` with the prover's 32-octet seed; `prover` is
 * derived from it. Throws {@link SignedObjectError}: `ERR_SIGNED_OBJECT_MALFORMED` for a field
 * out of bounds, `ERR_SIGNED_OBJECT_KEY_MISMATCH` when `fields.prover` is not the seed's public
 * key (and `Ed25519Error` for a seed that is not 32 octets).
 */
export function createAttestation(
  fields: AttestationFields,
  proverSecretKey: Uint8Array,
): Attestation {
  const prover = signerKey(proverSecretKey, fields.prover, 'attestation.prover');
  const csi = readCsi(fields as unknown as Fields, 'attestation');
  const unsigned = parseUnsignedAttestation(
    {
      v: SIGNED_OBJECT_VERSION,
      key: fields.key,
      prover,
      nbf: fields.nbf,
      exp: fields.exp,
    },
    'attestation',
  );
  const sig = sign(labelled('attestation', attestationContent(unsigned, csi)), proverSecretKey);
  return checkedSize({ ...unsigned, sig }, attestationToCbor);
}

/**
 * Creates and signs a Mapping of `fields.csi` with the recipient's 32-octet seed; `key` is
 * derived from it. Throws {@link SignedObjectError}: `ERR_SIGNED_OBJECT_MALFORMED` for a field
 * out of bounds, `ERR_SIGNED_OBJECT_KEY_MISMATCH` when `fields.key` is not the seed's public
 * key, `ERR_SIGNED_OBJECT_BINDING_MISMATCH` when `att` is not an attestation of this CSI and
 * key (its signature is checked: the CSI is not in it to compare), and `ERR_CBOR_TOO_LARGE`
 * when the encoding or the signed content would exceed `MAX_SIGNED_OBJECT_OCTETS`.
 */
export function createMapping(fields: MappingFields, recipientSecretKey: Uint8Array): Mapping {
  const key = signerKey(recipientSecretKey, fields.key, 'mapping.key');
  const csi = readCsi(fields as unknown as Fields, 'mapping');
  const unsigned = parseUnsignedMapping(
    {
      v: SIGNED_OBJECT_VERSION,
      msps: fields.msps,
      key,
      seq: fields.seq,
      iat: fields.iat,
      exp: fields.exp,
      new: fields.new,
      att: fields.att,
      sealed: fields.sealed,
    },
    'mapping',
  );
  checkAttestationOf(unsigned.att, csi, unsigned.key, 'mapping');
  const sig = sign(labelled('mapping', mappingContent(unsigned, csi)), recipientSecretKey);
  return checkedSize({ ...unsigned, sig }, mappingToCbor);
}

/**
 * Creates and signs a Removal with the recipient's 32-octet seed; `key` is derived from it.
 * Errors as {@link createAttestation}.
 */
export function createRemoval(fields: RemovalFields, recipientSecretKey: Uint8Array): Removal {
  const key = signerKey(recipientSecretKey, fields.key, 'removal.key');
  const unsigned = parseUnsignedRemoval(
    { v: SIGNED_OBJECT_VERSION, csi: fields.csi, key, seq: fields.seq, iat: fields.iat },
    'removal',
  );
  const sig = sign(labelled('removal', removalContent(unsigned)), recipientSecretKey);
  return checkedSize({ ...unsigned, sig }, removalToCbor);
}

/**
 * Creates and signs a Revocation with the CSIP's 32-octet seed; `csip` is derived from it.
 * Errors as {@link createAttestation}.
 */
export function createRevocation(fields: RevocationFields, csipSecretKey: Uint8Array): Revocation {
  const csip = signerKey(csipSecretKey, fields.csip, 'revocation.csip');
  const unsigned = parseUnsignedRevocation(
    { v: SIGNED_OBJECT_VERSION, csi: fields.csi, before: fields.before, csip, iat: fields.iat },
    'revocation',
  );
  const sig = sign(labelled('revocation', revocationContent(unsigned)), csipSecretKey);
  return checkedSize({ ...unsigned, sig }, revocationToCbor);
}

/**
 * Creates and signs a MapRef request with the recipient's 32-octet seed; `key` is derived from
 * it. Errors as {@link createMapping}; a `target` that is not a domain name in canonical form
 * is `ERR_SIGNED_OBJECT_MALFORMED`.
 */
export function createMaprefRequest(
  fields: MaprefRequestFields,
  recipientSecretKey: Uint8Array,
): MaprefRequest {
  const key = signerKey(recipientSecretKey, fields.key, 'mapref.key');
  const unsigned = parseUnsignedMaprefRequest(
    {
      v: SIGNED_OBJECT_VERSION,
      csi: fields.csi,
      target: fields.target,
      key,
      iat: fields.iat,
      att: fields.att,
    },
    'mapref',
  );
  checkAttestationOf(unsigned.att, unsigned.csi, unsigned.key, 'mapref');
  const sig = sign(labelled('mapref', maprefContent(unsigned)), recipientSecretKey);
  return checkedSize({ ...unsigned, sig }, maprefToCbor);
}

/**
 * Creates and signs a credential request with the recipient's 32-octet seed, which must be the
 * secret key of `att.key` (`ERR_SIGNED_OBJECT_KEY_MISMATCH`); `att` must attest `csi`
 * (`ERR_SIGNED_OBJECT_BINDING_MISMATCH`). Other errors as {@link createMapping}.
 */
export function createCredentialRequest(
  fields: CredentialRequestFields,
  recipientSecretKey: Uint8Array,
): CredentialRequest {
  const unsigned = parseUnsignedCredentialRequest(
    {
      v: SIGNED_OBJECT_VERSION,
      csi: fields.csi,
      att: fields.att,
      format: fields.format,
      iat: fields.iat,
    },
    'credential',
  );
  const key = signerKey(recipientSecretKey, unsigned.att.key, 'credential.att.key');
  checkAttestationOf(unsigned.att, unsigned.csi, key, 'credential');
  const sig = sign(labelled('credential', credentialRequestContent(unsigned)), recipientSecretKey);
  return checkedSize({ ...unsigned, sig }, credentialRequestToCbor);
}

/** Throws `ERR_SIGNED_OBJECT_BINDING_MISMATCH` unless `att` binds `csi` to `key`. */
function checkAttestationOf(
  att: Attestation,
  csi: string,
  key: Uint8Array,
  path: 'mapping' | 'mapref' | 'credential',
): void {
  if (!equalBytes(att.key, key)) {
    throw new SignedObjectError(
      'ERR_SIGNED_OBJECT_BINDING_MISMATCH',
      `${path}.att binds the CSI to another key than ${path}.key`,
    );
  }
  if (!attestsCsi(att, csi)) {
    throw new SignedObjectError(
      'ERR_SIGNED_OBJECT_BINDING_MISMATCH',
      `${path}.att is not an attestation of this CSI: its signature does not cover it`,
    );
  }
}

/** The public key of `secretKey`, which must equal `claimed` when that is given. */
function signerKey(secretKey: Uint8Array, claimed: unknown, field: string): Uint8Array {
  const { publicKey } = keyPairFromSeed(secretKey);
  if (claimed !== undefined && !(claimed instanceof Uint8Array && equalBytes(claimed, publicKey))) {
    throw new SignedObjectError(
      'ERR_SIGNED_OBJECT_KEY_MISMATCH',
      `${field} is not the public key of the secret key`,
    );
  }
  return publicKey;
}

/** Returns `object` once its encoding is known to fit `MAX_SIGNED_OBJECT_OCTETS`. */
function checkedSize<T>(object: T, toCbor: (object: T) => CborMap): T {
  encodeCbor(toCbor(object));
  return object;
}

// ---------------------------------------------------------------------------------------------
// Encode and decode

/**
 * Encodes an Attestation (without its CSI); throws {@link SignedObjectError} if it is not well
 * formed.
 */
export function encodeAttestation(a: Attestation): Uint8Array {
  return encodeCbor(attestationToCbor(parseAttestation(a, 'attestation', 'lenient')));
}

/**
 * Decodes an Attestation strictly; throws {@link SignedObjectError} naming the faulty field,
 * `ERR_SIGNED_OBJECT_VERSION` for another version than {@link SIGNED_OBJECT_VERSION}. Which CSI
 * it attests is known only by verifying it for one ({@link verifyAttestation}).
 */
export function decodeAttestation(bytes: Uint8Array): Attestation {
  return parseAttestation(decodeCbor(bytes), 'attestation', 'exact');
}

/**
 * Encodes a Mapping (MAP RDATA, without its CSI); throws {@link SignedObjectError} if it is not
 * well formed.
 */
export function encodeMapping(m: Mapping): Uint8Array {
  return encodeCbor(mappingToCbor(parseMapping(m, 'mapping', 'lenient')));
}

/**
 * Decodes a Mapping strictly; throws {@link SignedObjectError} naming the faulty field,
 * `ERR_SIGNED_OBJECT_VERSION` for another version than {@link SIGNED_OBJECT_VERSION}. Which CSI
 * it maps is known only by verifying it for one ({@link verifyMapping}).
 */
export function decodeMapping(bytes: Uint8Array): Mapping {
  return parseMapping(decodeCbor(bytes), 'mapping', 'exact');
}

/**
 * Encodes MSP entries as a CBOR array, each entry as in a mapping's `msps` (the plaintext of a
 * sealed box, sealed.ts). Throws {@link SignedObjectError} when an entry is out of bounds or
 * there are more than {@link MAX_MSPS_PER_MAPPING}.
 */
export function encodeMspEntries(msps: readonly MspEntry[]): Uint8Array {
  return encodeCbor(
    readMspEntries({ entries: msps }, 'entries', 'sealed', 'lenient').map(mspToCbor),
  );
}

/**
 * Decodes a CBOR array of MSP entries strictly, with the bounds of a mapping's `msps`; throws
 * {@link SignedObjectError} naming the faulty entry.
 */
export function decodeMspEntries(bytes: Uint8Array): MspEntry[] {
  return readMspEntries({ entries: decodeCbor(bytes) }, 'entries', 'sealed', 'exact');
}

/** Encodes a Removal; throws {@link SignedObjectError} if it is not well formed. */
export function encodeRemoval(r: Removal): Uint8Array {
  return encodeCbor(removalToCbor(parseRemoval(r, 'removal', 'lenient')));
}

/** Decodes a Removal strictly; throws {@link SignedObjectError} naming the faulty field. */
export function decodeRemoval(bytes: Uint8Array): Removal {
  return parseRemoval(decodeCbor(bytes), 'removal', 'exact');
}

/** Encodes a Revocation; throws {@link SignedObjectError} if it is not well formed. */
export function encodeRevocation(r: Revocation): Uint8Array {
  return encodeCbor(revocationToCbor(parseRevocation(r, 'revocation', 'lenient')));
}

/** Decodes a Revocation strictly; throws {@link SignedObjectError} naming the faulty field. */
export function decodeRevocation(bytes: Uint8Array): Revocation {
  return parseRevocation(decodeCbor(bytes), 'revocation', 'exact');
}

/** Encodes a MapRef request; throws {@link SignedObjectError} if it is not well formed. */
export function encodeMaprefRequest(r: MaprefRequest): Uint8Array {
  return encodeCbor(maprefToCbor(parseMaprefRequest(r, 'mapref', 'lenient')));
}

/** Decodes a MapRef request strictly; throws {@link SignedObjectError} naming the faulty field. */
export function decodeMaprefRequest(bytes: Uint8Array): MaprefRequest {
  return parseMaprefRequest(decodeCbor(bytes), 'mapref', 'exact');
}

/**
 * Encodes a credential request; throws {@link SignedObjectError} if it is not well formed.
 */
export function encodeCredentialRequest(r: CredentialRequest): Uint8Array {
  return encodeCbor(credentialRequestToCbor(parseCredentialRequest(r, 'credential', 'lenient')));
}

/**
 * Decodes a credential request strictly; throws {@link SignedObjectError} naming the faulty
 * field (a `format` not of {@link CREDENTIAL_FORMATS} is `ERR_SIGNED_OBJECT_MALFORMED`).
 */
export function decodeCredentialRequest(bytes: Uint8Array): CredentialRequest {
  return parseCredentialRequest(decodeCbor(bytes), 'credential', 'exact');
}

function unsignedAttestationToCbor(a: UnsignedAttestation): CborMap {
  return { v: a.v, key: a.key, prover: a.prover, nbf: a.nbf, exp: a.exp };
}
function attestationToCbor(a: Attestation): CborMap {
  return { ...unsignedAttestationToCbor(a), sig: a.sig };
}
function mspToCbor(m: MspEntry): CborMap {
  const entry = { provider: m.provider, tags: [...m.tags] };
  return m.uri === undefined ? entry : { ...entry, uri: m.uri };
}
function sealedBoxToCbor(b: SealedBox): CborMap {
  return { kid: b.kid, enc: b.enc, ct: b.ct };
}
function unsignedMappingToCbor(m: UnsignedMapping): CborMap {
  const fields = {
    v: m.v,
    msps: m.msps.map(mspToCbor),
    key: m.key,
    seq: m.seq,
    iat: m.iat,
    exp: m.exp,
    new: m.new,
    att: attestationToCbor(m.att),
  };
  // Without boxes the key is left out, so such a mapping encodes (and is signed) exactly as
  // before sealed boxes existed.
  return m.sealed === undefined ? fields : { ...fields, sealed: m.sealed.map(sealedBoxToCbor) };
}
function mappingToCbor(m: Mapping): CborMap {
  return { ...unsignedMappingToCbor(m), sig: m.sig };
}
function unsignedRemovalToCbor(r: UnsignedRemoval): CborMap {
  return { v: r.v, csi: r.csi, key: r.key, seq: r.seq, iat: r.iat };
}
function removalToCbor(r: Removal): CborMap {
  return { ...unsignedRemovalToCbor(r), sig: r.sig };
}
function unsignedRevocationToCbor(r: UnsignedRevocation): CborMap {
  return { v: r.v, csi: r.csi, before: r.before, csip: r.csip, iat: r.iat };
}
function revocationToCbor(r: Revocation): CborMap {
  return { ...unsignedRevocationToCbor(r), sig: r.sig };
}
function unsignedMaprefToCbor(r: UnsignedMaprefRequest): CborMap {
  return {
    v: r.v,
    csi: r.csi,
    target: r.target,
    key: r.key,
    iat: r.iat,
    att: attestationToCbor(r.att),
  };
}
function maprefToCbor(r: MaprefRequest): CborMap {
  return { ...unsignedMaprefToCbor(r), sig: r.sig };
}
function unsignedCredentialRequestToCbor(r: UnsignedCredentialRequest): CborMap {
  return { v: r.v, csi: r.csi, att: attestationToCbor(r.att), format: r.format, iat: r.iat };
}
function credentialRequestToCbor(r: CredentialRequest): CborMap {
  return { ...unsignedCredentialRequestToCbor(r), sig: r.sig };
}

// ---------------------------------------------------------------------------------------------
// Parse: from a decoded CBOR value or a program's object to a checked, freshly built object

// Each type has three functions: `read…Fields` reads the fields (but `sig`) of a map whose key
// set is already checked; `parseUnsigned…` reads a program's object without `sig` (a `sig` is
// ignored); `parse…` reads a whole signed object, with exactly its fields when `strictness` is
// exact. Nested maps (`att`, `msps` entries) are read with the same strictness.

function readAttestationFields(r: Fields, path: string): UnsignedAttestation {
  return {
    v: readVersion(r, path),
    key: readKey(r, 'key', path),
    prover: readKey(r, 'prover', path),
    nbf: readUint(r, 'nbf', path),
    exp: readUint(r, 'exp', path),
  };
}

function parseUnsignedAttestation(value: unknown, path: string): UnsignedAttestation {
  return readAttestationFields(readMap(value, path, ATTESTATION_FIELDS, 'lenient'), path);
}

function parseAttestation(value: unknown, path: string, strictness: Strictness): Attestation {
  const r = readMap(value, path, [...ATTESTATION_FIELDS, 'sig'], strictness);
  return { ...readAttestationFields(r, path), sig: readSig(r, path) };
}

function parseMsp(value: unknown, path: string, strictness: Strictness): MspEntry {
  const r = readMap(value, path, MSP_FIELDS, strictness, MSP_OPTIONAL_FIELDS);
  const tags = readArray(r, 'tags', path, MAX_TAGS_PER_MSP).map((tag, i) =>
    readText(tag, `${path}.tags[${i}]`, MAX_TAG_OCTETS),
  );
  const entry = {
    provider: readProvider(r['provider'], `${path}.provider`),
    tags,
  };
  return Object.hasOwn(r, 'uri') && (strictness === 'exact' || r['uri'] !== undefined)
    ? { ...entry, uri: readText(r['uri'], `${path}.uri`, MAX_URI_OCTETS) }
    : entry;
}

/** An MSP's domain: lowercase LDH labels (RFC 1123 §2.1), at least two, A-labels for IDNs. */
const PROVIDER_NAME =
  /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

function readProvider(value: unknown, path: string): string {
  const text = readText(value, path, MAX_PROVIDER_OCTETS);
  if (!PROVIDER_NAME.test(text)) {
    throw new SignedObjectError(
      'ERR_SIGNED_OBJECT_MALFORMED',
      `${path} must be a lowercase domain name of two or more labels`,
    );
  }
  return text;
}

function readMappingFields(r: Fields, path: string, strictness: Strictness): UnsignedMapping {
  const sealed = readSealed(r, path, strictness);
  const fields = {
    v: readVersion(r, path),
    msps: readMspEntries(r, 'msps', path, strictness),
    key: readKey(r, 'key', path),
    seq: readUint(r, 'seq', path),
    iat: readUint(r, 'iat', path),
    exp: readUint(r, 'exp', path),
    new: readBoolean(r, 'new', path),
    att: parseAttestation(r['att'], `${path}.att`, strictness),
  };
  return sealed === undefined ? fields : { ...fields, sealed };
}

/** `r[key]` as MSP entries: at most {@link MAX_MSPS_PER_MAPPING}, each checked. */
function readMspEntries(r: Fields, key: string, path: string, strictness: Strictness): MspEntry[] {
  return readArray(r, key, path, MAX_MSPS_PER_MAPPING).map((msp, i) =>
    parseMsp(msp, `${path}.${key}[${i}]`, strictness),
  );
}

/**
 * A mapping's `sealed`: undefined when absent (or, from a program, undefined), else 1 to
 * {@link MAX_SEALED_PER_MAPPING} boxes. An empty array is refused: "no boxes" has one
 * encoding, the absent key.
 */
function readSealed(r: Fields, path: string, strictness: Strictness): SealedBox[] | undefined {
  if (!Object.hasOwn(r, 'sealed') || (strictness === 'lenient' && r['sealed'] === undefined)) {
    return undefined;
  }
  const boxes = readArray(r, 'sealed', path, MAX_SEALED_PER_MAPPING);
  if (boxes.length === 0) {
    malformed(`${path}.sealed`, 'must hold at least one box (a mapping without boxes omits it)');
  }
  return boxes.map((box, i) => readSealedBox(box, `${path}.sealed[${i}]`, strictness));
}

function readSealedBox(value: unknown, path: string, strictness: Strictness): SealedBox {
  const r = readMap(value, path, SEALED_BOX_FIELDS, strictness);
  const ct = r['ct'];
  if (
    !(ct instanceof Uint8Array) ||
    ct.length <= SEALED_TAG_OCTETS ||
    ct.length > MAX_SEALED_CIPHERTEXT_OCTETS
  ) {
    malformed(
      `${path}.ct`,
      `must be a byte string of ${SEALED_TAG_OCTETS + 1} to ${MAX_SEALED_CIPHERTEXT_OCTETS} octets`,
    );
  }
  return {
    kid: readBytes(r['kid'], `${path}.kid`, AUDIENCE_KEY_ID_OCTETS),
    enc: readBytes(r['enc'], `${path}.enc`, SEALED_ENC_OCTETS),
    ct: Uint8Array.from(ct),
  };
}

/**
 * Checks a sealed box (from bytes, JSON or a program) as a mapping's decoder does; throws
 * {@link SignedObjectError} `ERR_SIGNED_OBJECT_MALFORMED` naming the field. Returns a copy.
 */
export function parseSealedBox(value: unknown): SealedBox {
  return readSealedBox(value, 'sealed', 'lenient');
}

function parseUnsignedMapping(value: unknown, path: string): UnsignedMapping {
  return readMappingFields(
    readMap(value, path, MAPPING_FIELDS, 'lenient', MAPPING_OPTIONAL_FIELDS),
    path,
    'lenient',
  );
}

function parseMapping(value: unknown, path: string, strictness: Strictness): Mapping {
  const r = readMap(value, path, [...MAPPING_FIELDS, 'sig'], strictness, MAPPING_OPTIONAL_FIELDS);
  return { ...readMappingFields(r, path, strictness), sig: readSig(r, path) };
}

function readRemovalFields(r: Fields, path: string): UnsignedRemoval {
  return {
    v: readVersion(r, path),
    csi: readCsi(r, path),
    key: readKey(r, 'key', path),
    seq: readUint(r, 'seq', path),
    iat: readUint(r, 'iat', path),
  };
}

function parseUnsignedRemoval(value: unknown, path: string): UnsignedRemoval {
  return readRemovalFields(readMap(value, path, REMOVAL_FIELDS, 'lenient'), path);
}

function parseRemoval(value: unknown, path: string, strictness: Strictness): Removal {
  const r = readMap(value, path, [...REMOVAL_FIELDS, 'sig'], strictness);
  return { ...readRemovalFields(r, path), sig: readSig(r, path) };
}

function readRevocationFields(r: Fields, path: string): UnsignedRevocation {
  return {
    v: readVersion(r, path),
    csi: readCsi(r, path),
    before: readUint(r, 'before', path),
    csip: readKey(r, 'csip', path),
    iat: readUint(r, 'iat', path),
  };
}

function parseUnsignedRevocation(value: unknown, path: string): UnsignedRevocation {
  return readRevocationFields(readMap(value, path, REVOCATION_FIELDS, 'lenient'), path);
}

function parseRevocation(value: unknown, path: string, strictness: Strictness): Revocation {
  const r = readMap(value, path, [...REVOCATION_FIELDS, 'sig'], strictness);
  return { ...readRevocationFields(r, path), sig: readSig(r, path) };
}

function readMaprefFields(r: Fields, path: string, strictness: Strictness): UnsignedMaprefRequest {
  return {
    v: readVersion(r, path),
    csi: readCsi(r, path),
    target: readTarget(r['target'], `${path}.target`),
    key: readKey(r, 'key', path),
    iat: readUint(r, 'iat', path),
    att: parseAttestation(r['att'], `${path}.att`, strictness),
  };
}

function parseUnsignedMaprefRequest(value: unknown, path: string): UnsignedMaprefRequest {
  return readMaprefFields(readMap(value, path, MAPREF_REQUEST_FIELDS, 'lenient'), path, 'lenient');
}

function parseMaprefRequest(value: unknown, path: string, strictness: Strictness): MaprefRequest {
  const r = readMap(value, path, [...MAPREF_REQUEST_FIELDS, 'sig'], strictness);
  return { ...readMaprefFields(r, path, strictness), sig: readSig(r, path) };
}

function readCredentialRequestFields(
  r: Fields,
  path: string,
  strictness: Strictness,
): UnsignedCredentialRequest {
  const format = r['format'];
  if (typeof format !== 'string' || !(CREDENTIAL_FORMATS as readonly string[]).includes(format)) {
    malformed(`${path}.format`, `must be one of ${CREDENTIAL_FORMATS.join(', ')}`);
  }
  return {
    v: readVersion(r, path),
    csi: readCsi(r, path),
    att: parseAttestation(r['att'], `${path}.att`, strictness),
    format: format as CredentialFormat,
    iat: readUint(r, 'iat', path),
  };
}

function parseUnsignedCredentialRequest(value: unknown, path: string): UnsignedCredentialRequest {
  return readCredentialRequestFields(
    readMap(value, path, CREDENTIAL_REQUEST_FIELDS, 'lenient'),
    path,
    'lenient',
  );
}

function parseCredentialRequest(
  value: unknown,
  path: string,
  strictness: Strictness,
): CredentialRequest {
  const r = readMap(value, path, [...CREDENTIAL_REQUEST_FIELDS, 'sig'], strictness);
  return { ...readCredentialRequestFields(r, path, strictness), sig: readSig(r, path) };
}

/**
 * A MapRef target: `null`, or a domain name other than the root in canonical presentation form
 * (lowercase, no trailing dot, escapes normalized), so that one target has one spelling and is
 * published in lowercase (docs/protocol.md §3).
 */
function readTarget(value: unknown, path: string): string | null {
  if (value === null) return null;
  if (typeof value !== 'string') malformed(path, 'must be a domain name or null');
  let labels: Uint8Array[];
  try {
    labels = parseLabels(value);
  } catch (error) {
    if (error instanceof NameError) malformed(path, `is not a domain name: ${error.message}`);
    throw error;
  }
  // Formatting the parsed labels escapes every octet outside printable ASCII, so a target
  // with such an octet written as is differs from its canonical form and is refused.
  if (labels.length === 0 || canonicalName(formatLabels(labels)) !== value) {
    malformed(path, 'must be a domain name other than the root, lowercase, without trailing dot');
  }
  return value;
}

function malformed(path: string, problem: string): never {
  throw new SignedObjectError('ERR_SIGNED_OBJECT_MALFORMED', `${path} ${problem}`);
}

/**
 * `value` as a map that has every key of `required` and, when `strictness` is exact, no key
 * beyond `required` and `optional`.
 */
function readMap(
  value: unknown,
  path: string,
  required: readonly string[],
  strictness: Strictness,
  optional: readonly string[] = NO_FIELDS,
): Fields {
  if (
    typeof value !== 'object' ||
    value === null ||
    Array.isArray(value) ||
    value instanceof Uint8Array
  ) {
    malformed(path, 'must be a map');
  }
  const record = value as Fields;
  // The version decides which fields an object has: a version-1 object is refused as such,
  // not for its `csi` field.
  if (required.includes('v') && Object.hasOwn(record, 'v')) readVersion(record, path);
  for (const key of required) {
    if (!Object.hasOwn(record, key)) malformed(`${path}.${key}`, 'is missing');
  }
  if (strictness === 'exact') {
    for (const key of Object.keys(record)) {
      if (!required.includes(key) && !optional.includes(key)) {
        malformed(`${path}.${key}`, 'is not a field of this object');
      }
    }
  }
  return record;
}

/**
 * `v`, which must be {@link SIGNED_OBJECT_VERSION}: another whole number is a version this code
 * does not read (`ERR_SIGNED_OBJECT_VERSION`), anything else is malformed.
 */
function readVersion(r: Fields, path: string): 2 {
  const v = r['v'];
  if (v === SIGNED_OBJECT_VERSION) return SIGNED_OBJECT_VERSION;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) {
    throw new SignedObjectError(
      'ERR_SIGNED_OBJECT_VERSION',
      v === 1
        ? `${path}.v is 1: version 1 spelled the CSI in clear and is no longer accepted; ` +
            `this implementation reads version ${SIGNED_OBJECT_VERSION}`
        : `${path}.v is ${v}: this implementation reads version ${SIGNED_OBJECT_VERSION} only`,
    );
  }
  malformed(`${path}.v`, `must be ${SIGNED_OBJECT_VERSION}`);
}

/** A non-negative integer up to 2^53 - 1 (seconds, sequence numbers). */
function readUint(r: Fields, key: string, path: string): number {
  const value = r[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    malformed(`${path}.${key}`, 'must be an integer from 0 to 2^53 - 1');
  }
  // -0 is an integer too; the encoding knows only 0.
  return value === 0 ? 0 : value;
}

function readBoolean(r: Fields, key: string, path: string): boolean {
  const value = r[key];
  if (typeof value !== 'boolean') malformed(`${path}.${key}`, 'must be true or false');
  return value;
}

function readBytes(value: unknown, path: string, octets: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== octets) {
    malformed(path, `must be a byte string of ${octets} octets`);
  }
  return Uint8Array.from(value);
}

function readKey(r: Fields, key: string, path: string): Uint8Array {
  return readBytes(r[key], `${path}.${key}`, ED25519_PUBLIC_KEY_OCTETS);
}

function readSig(r: Fields, path: string): Uint8Array {
  return readBytes(r['sig'], `${path}.sig`, ED25519_SIGNATURE_OCTETS);
}

/** A non-empty text string of at most `maxOctets` octets of UTF-8. */
function readText(value: unknown, path: string, maxOctets: number): string {
  if (typeof value !== 'string') malformed(path, 'must be a text string');
  // Most texts (CSIs, providers, tags) are ASCII: one octet per code unit, nothing to check.
  let length = isAscii(value) ? value.length : -1;
  if (length < 0) {
    const octets = utf8.encode(value);
    // A string with a lone surrogate has no UTF-8 form: it would be signed as U+FFFD.
    if (utf8Decoder.decode(octets) !== value) malformed(path, 'must be valid Unicode');
    length = octets.length;
  }
  if (length === 0 || length > maxOctets) {
    malformed(path, `must be 1 to ${maxOctets} octets of UTF-8`);
  }
  return value;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** The shape of a canonical CSI; csi.ts decides whether it is canonical. */
function readCsi(r: Fields, path: string): string {
  const csi = readText(r['csi'], `${path}.csi`, MAX_CSI_OCTETS);
  const shaped =
    (csi.startsWith('tel:+') && csi.length > 5) || (csi.startsWith('mailto:') && csi.length > 7);
  if (!shaped) malformed(`${path}.csi`, 'must start with "tel:+" or "mailto:"');
  return csi;
}

function readArray(r: Fields, key: string, path: string, maxItems: number): readonly unknown[] {
  const value = r[key];
  if (!Array.isArray(value)) malformed(`${path}.${key}`, 'must be an array');
  if (value.length > maxItems) malformed(`${path}.${key}`, `must have at most ${maxItems} items`);
  return value as readonly unknown[];
}

// ---------------------------------------------------------------------------------------------
// Verify

/**
 * Verifies an Attestation (bytes or object) for `options.csi`. Checks, and reports the first
 * failure in this order: well formed (`malformed`, `unsupported-version`); the signature by
 * `prover` under label `attestation` over the attestation and `options.csi` (`bad-signature`,
 * also for an attestation of another CSI; `wrong-label`); `nbf <= now + MAX_CLOCK_SKEW_SECONDS`
 * (`not-yet-valid`); `now < exp` (`expired`).
 * Does not check that `prover` is authorized for the range: the caller does, with the value.
 * Never throws on any input; throws {@link SignedObjectError} `ERR_VERIFY_OPTIONS` when
 * `options.now` is not a finite number or `options.csi` is not a CSI (faults of the caller).
 */
export function verifyAttestation(
  input: Uint8Array | Attestation,
  options: VerifyForCsiOptions,
): VerifyResult<Attestation> {
  const csi = checkOptionsForCsi(options);
  const parsed = parseInput(input, decodeAttestation, (v) =>
    parseAttestation(v, 'attestation', 'lenient'),
  );
  if (parsed.kind === 'failed') return parsed;
  const a = parsed.value;
  return (
    checkSignature(
      'attestation',
      input instanceof Uint8Array
        ? () => receivedContent(input, 0, input.length, csi)
        : () => attestationContent(a, csi),
      a.sig,
      a.prover,
      'attestation.sig',
      'prover',
      OVER_SUPPLIED_CSI,
    ) ??
    checkStart(a.nbf, options.now, 'attestation.nbf') ??
    checkExpiry(a.exp, options.now, 'attestation.exp') ?? { kind: 'verified', value: a }
  );
}

/**
 * Verifies a Mapping (bytes, e.g. MAP RDATA, or object) for `options.csi`, the CSI looked up.
 * Checks, and reports the first failure in this order:
 * 1. well formed (`malformed`, `unsupported-version` for a version-1 mapping or attestation);
 * 2. `att.key` equals `key` (`csi-mismatch`: an attestation for another key does not bind this
 *    CSI to this key);
 * 3. the attestation's signature by `att.prover` under label `attestation`, then the mapping's
 *    signature by `key` under label `mapping`, each over its object and `options.csi`
 *    (`bad-signature`, which is also what a mapping of another CSI gets; `wrong-label`);
 * 4. `iat <= now + MAX_CLOCK_SKEW_SECONDS`, `now < exp`, then the same for the attestation's
 *    `nbf` and `exp` (`not-yet-valid`, `expired`).
 * Does not check that `att.prover` is an authorized prover of the range: the caller does, with
 * the value. Never throws on any input; throws {@link SignedObjectError} `ERR_VERIFY_OPTIONS`
 * when `options.now` is not a finite number or `options.csi` is not a CSI (faults of the caller).
 */
export function verifyMapping(
  input: Uint8Array | Mapping,
  options: VerifyForCsiOptions,
): VerifyResult<Mapping> {
  const csi = checkOptionsForCsi(options);
  const parsed = parseInput(input, decodeMapping, (v) => parseMapping(v, 'mapping', 'lenient'));
  if (parsed.kind === 'failed') return parsed;
  const m = parsed.value;
  const { now } = options;
  // Received octets, strictly decoded, are the deterministic encoding of `m`: the signed
  // contents are cut from them (receivedContent) rather than encoded again.
  const received = input instanceof Uint8Array ? input : undefined;
  return (
    checkBinding(m) ??
    checkSignature(
      'attestation',
      received === undefined
        ? () => attestationContent(m.att, csi)
        : () => receivedAttestationContent(received, csi),
      m.att.sig,
      m.att.prover,
      'mapping.att.sig',
      'prover',
      OVER_SUPPLIED_CSI,
    ) ??
    checkSignature(
      'mapping',
      received === undefined
        ? () => mappingContent(m, csi)
        : () => receivedContent(received, 0, received.length, csi),
      m.sig,
      m.key,
      'mapping.sig',
      'key',
      OVER_SUPPLIED_CSI,
    ) ??
    checkMappingTimes(m, now) ?? { kind: 'verified', value: m }
  );
}

/** Step 4 of {@link verifyMapping}: the mapping's times, then its attestation's. */
function checkMappingTimes(m: Mapping, now: number): Failure | undefined {
  return (
    checkStart(m.iat, now, 'mapping.iat') ??
    checkExpiry(m.exp, now, 'mapping.exp') ??
    checkStart(m.att.nbf, now, 'mapping.att.nbf') ??
    checkExpiry(m.att.exp, now, 'mapping.att.exp')
  );
}

/**
 * {@link verifyMapping} of received octets (MAP RDATA) with the two signatures checked by
 * `verifyBatch` (a verification pool, `runtime/verify-pool.ts`) as one batch: same checks, same
 * order, same result. The signed contents are cut from `bytes` after one strict decode, as
 * {@link verifyMapping} cuts them. When either signature fails, the synchronous
 * {@link verifyMapping} decides the result: it reports which one failed and whether it was made
 * under another label, and a batch verifier's "no" is thus never the only word on a rejection.
 */
export async function verifyMappingBatched(
  bytes: Uint8Array,
  options: VerifyForCsiOptions,
  verifyBatch: (
    checks: ReadonlyArray<{ signature: Uint8Array; message: Uint8Array; publicKey: Uint8Array }>,
  ) => Promise<readonly boolean[]>,
): Promise<VerifyResult<Mapping>> {
  const csi = checkOptionsForCsi(options);
  const parsed = parseInput(bytes, decodeMapping, (v) => parseMapping(v, 'mapping', 'lenient'));
  if (parsed.kind === 'failed') return parsed;
  const m = parsed.value;
  const binding = checkBinding(m);
  if (binding !== undefined) return binding;
  let attestation: Uint8Array;
  let mapping: Uint8Array;
  try {
    attestation = labelled('attestation', receivedAttestationContent(bytes, csi));
    mapping = labelled('mapping', receivedContent(bytes, 0, bytes.length, csi));
  } catch (error) {
    if (error instanceof SignedObjectError) return verifyMapping(bytes, options);
    throw error;
  }
  const [attOk, mapOk] = await verifyBatch([
    { signature: m.att.sig, message: attestation, publicKey: m.att.prover },
    { signature: m.sig, message: mapping, publicKey: m.key },
  ]);
  if (attOk !== true || mapOk !== true) return verifyMapping(bytes, options);
  return checkMappingTimes(m, options.now) ?? { kind: 'verified', value: m };
}

/**
 * Verifies a Removal (bytes or object): well formed; `csi` equals `options.csi` when given;
 * the signature by `key` under label `removal`; `iat <= now + MAX_CLOCK_SKEW_SECONDS`. The first
 * failure decides the reason. Whether `seq` covers a given mapping is the caller's check.
 * Never throws on any input; throws {@link SignedObjectError} `ERR_VERIFY_OPTIONS` when
 * `options.now` is not a finite number or `options.csi` is given and not a string.
 */
export function verifyRemoval(
  input: Uint8Array | Removal,
  options: VerifyOptions,
): VerifyResult<Removal> {
  checkOptions(options);
  const parsed = parseInput(input, decodeRemoval, (v) => parseRemoval(v, 'removal', 'lenient'));
  if (parsed.kind === 'failed') return parsed;
  const r = parsed.value;
  return (
    expectCsi(r.csi, options, 'removal.csi') ??
    checkSignature('removal', () => removalContent(r), r.sig, r.key, 'removal.sig', 'key') ??
    checkStart(r.iat, options.now, 'removal.iat') ?? { kind: 'verified', value: r }
  );
}

/**
 * Verifies a Revocation (bytes or object): well formed; `csi` equals `options.csi` when given;
 * the signature by `csip` under label `revocation`; `iat <= now + MAX_CLOCK_SKEW_SECONDS`. The
 * first failure decides the reason. Whether `csip` is an authorized CSIP of the range, and which
 * mappings `before` revokes, are the caller's checks. Never throws on any input (`options` as
 * {@link verifyRemoval}).
 */
export function verifyRevocation(
  input: Uint8Array | Revocation,
  options: VerifyOptions,
): VerifyResult<Revocation> {
  checkOptions(options);
  const parsed = parseInput(input, decodeRevocation, (v) =>
    parseRevocation(v, 'revocation', 'lenient'),
  );
  if (parsed.kind === 'failed') return parsed;
  const r = parsed.value;
  return (
    expectCsi(r.csi, options, 'revocation.csi') ??
    checkSignature(
      'revocation',
      () => revocationContent(r),
      r.sig,
      r.csip,
      'revocation.sig',
      'csip',
    ) ??
    checkStart(r.iat, options.now, 'revocation.iat') ?? { kind: 'verified', value: r }
  );
}

/**
 * Verifies a MapRef request (bytes or object). Checks, and reports the first failure in this
 * order: well formed (`malformed`, `unsupported-version`); `csi` equals `options.csi` when given
 * and `att.key` equals `key` (`csi-mismatch`); the attestation's signature by `att.prover` over
 * the attestation and the request's `csi` (`bad-signature`: also an attestation of another
 * CSI), then the request's signature by `key` under label `mapref` (`bad-signature`,
 * `wrong-label`); `iat <= now + MAX_CLOCK_SKEW_SECONDS` (`not-yet-valid`) and
 * `iat >= now - MAX_CLOCK_SKEW_SECONDS` (`expired`: a request is fresh or refused, which bounds
 * the window in which a captured request can be replayed); then the attestation's `nbf` and
 * `exp`. Does not check that `att.prover` is authorized for the range. Never throws on any
 * input (`options` as {@link verifyRemoval}).
 */
export function verifyMaprefRequest(
  input: Uint8Array | MaprefRequest,
  options: VerifyOptions,
): VerifyResult<MaprefRequest> {
  checkOptions(options);
  const parsed = parseInput(input, decodeMaprefRequest, (v) =>
    parseMaprefRequest(v, 'mapref', 'lenient'),
  );
  if (parsed.kind === 'failed') return parsed;
  const r = parsed.value;
  const { now } = options;
  return (
    expectCsi(r.csi, options, 'mapref.csi') ??
    checkBinding(r, 'mapref') ??
    checkSignature(
      'attestation',
      () => attestationContent(r.att, r.csi),
      r.att.sig,
      r.att.prover,
      'mapref.att.sig',
      'prover',
      'over mapref.csi (an attestation of another CSI, or a forgery)',
    ) ??
    checkSignature('mapref', () => maprefContent(r), r.sig, r.key, 'mapref.sig', 'key') ??
    checkStart(r.iat, now, 'mapref.iat') ??
    checkFresh(r.iat, now, 'mapref.iat') ??
    checkStart(r.att.nbf, now, 'mapref.att.nbf') ??
    checkExpiry(r.att.exp, now, 'mapref.att.exp') ?? { kind: 'verified', value: r }
  );
}

/**
 * Verifies a credential request (bytes or object). Checks, and reports the first failure in
 * this order: well formed (`malformed`, `unsupported-version`); `csi` equals `options.csi`
 * when given (`csi-mismatch`); the attestation's signature by `att.prover` over the
 * attestation and the request's `csi` (`bad-signature`: also an attestation of another CSI);
 * the request's signature by `att.key` under label `credential` (`bad-signature`: not made by
 * the attested key, `wrong-label`); `iat` within {@link MAX_CLOCK_SKEW_SECONDS} of `now`
 * either side (`not-yet-valid`, `expired`: a captured request is useful for minutes at most);
 * then the attestation's `nbf` and `exp`. Does not check that `att.prover` is authorized for
 * the range. Never throws on any input (`options` as {@link verifyRemoval}).
 */
export function verifyCredentialRequest(
  input: Uint8Array | CredentialRequest,
  options: VerifyOptions,
): VerifyResult<CredentialRequest> {
  checkOptions(options);
  const parsed = parseInput(input, decodeCredentialRequest, (v) =>
    parseCredentialRequest(v, 'credential', 'lenient'),
  );
  if (parsed.kind === 'failed') return parsed;
  const r = parsed.value;
  const { now } = options;
  return (
    expectCsi(r.csi, options, 'credential.csi') ??
    checkSignature(
      'attestation',
      () => attestationContent(r.att, r.csi),
      r.att.sig,
      r.att.prover,
      'credential.att.sig',
      'prover',
      'over credential.csi (an attestation of another CSI, or a forgery)',
    ) ??
    checkSignature(
      'credential',
      () => credentialRequestContent(r),
      r.sig,
      r.att.key,
      'credential.sig',
      'att.key',
    ) ??
    checkStart(r.iat, now, 'credential.iat') ??
    checkFresh(r.iat, now, 'credential.iat') ??
    checkStart(r.att.nbf, now, 'credential.att.nbf') ??
    checkExpiry(r.att.exp, now, 'credential.att.exp') ?? { kind: 'verified', value: r }
  );
}

/** What a signature failure of a Mapping or Attestation adds: the CSI is one possible cause. */
const OVER_SUPPLIED_CSI =
  'over the CSI it is verified for (an object of another CSI, or a forgery)';

function checkOptions(options: VerifyOptions): void {
  const { now, csi } = (options ?? {}) as Partial<VerifyOptions>;
  checkNow(now);
  if (csi !== undefined && typeof csi !== 'string') {
    throw new SignedObjectError('ERR_VERIFY_OPTIONS', 'options.csi must be a string when given');
  }
}

/** The CSI of {@link VerifyForCsiOptions}, which the caller must supply. */
function checkOptionsForCsi(options: VerifyForCsiOptions): string {
  const { now, csi } = (options ?? {}) as Partial<VerifyForCsiOptions>;
  checkNow(now);
  try {
    return suppliedCsi(csi, 'options');
  } catch (error) {
    if (!(error instanceof SignedObjectError)) throw error;
    throw new SignedObjectError(
      'ERR_VERIFY_OPTIONS',
      'options.csi must be the CSI to verify for (tel:+… or mailto:…): the object does not carry it',
      { cause: error },
    );
  }
}

function checkNow(now: unknown): void {
  if (typeof now !== 'number' || !Number.isFinite(now)) {
    throw new SignedObjectError(
      'ERR_VERIFY_OPTIONS',
      'options.now must be a finite number of seconds',
    );
  }
}

/** Decodes bytes or checks an object; a malformed input is a failure, not an exception. */
function parseInput<T>(
  input: unknown,
  decodeBytes: (bytes: Uint8Array) => T,
  parseObject: (value: unknown) => T,
): VerifyResult<T> {
  try {
    return {
      kind: 'verified',
      value: input instanceof Uint8Array ? decodeBytes(input) : parseObject(input),
    };
  } catch (error) {
    if (error instanceof SignedObjectError) {
      return failure(
        error.code === 'ERR_SIGNED_OBJECT_VERSION' ? 'unsupported-version' : 'malformed',
        error.message,
      );
    }
    throw error;
  }
}

/**
 * A mapping's (or MapRef request's) attestation must bind the CSI to its key; that it is for
 * the CSI is its signature's check.
 */
function checkBinding(
  m: Pick<Mapping, 'key' | 'att'>,
  path: 'mapping' | 'mapref' = 'mapping',
): Failure | undefined {
  if (!equalBytes(m.att.key, m.key)) {
    return failure(
      'csi-mismatch',
      `${path}.att.key differs from ${path}.key: the attestation binds the CSI to another key`,
    );
  }
  return undefined;
}

function failure(reason: VerifyFailure, detail: string): Failure {
  return { kind: 'failed', reason, detail };
}

function expectCsi(csi: string, options: VerifyOptions, field: string): Failure | undefined {
  return options.csi !== undefined && csi !== options.csi
    ? failure('csi-mismatch', `${field} is not the CSI looked up`)
    : undefined;
}

/**
 * `bad-signature` unless `signature` is valid under `label` over `content()`; `wrong-label` when
 * it is valid under another label instead, i.e. it was made for another purpose. `over` says
 * what the content holds beyond the object, for the failure's detail. A content too large to
 * encode (an object near the size bound with a long CSI inserted) is `malformed`: no signer
 * could have made it (createMapping checks the content too).
 */
function checkSignature(
  label: SigningLabel,
  content: () => Uint8Array,
  signature: Uint8Array,
  publicKey: Uint8Array,
  field: string,
  keyField: string,
  over?: string,
): Failure | undefined {
  let bytes: Uint8Array;
  try {
    bytes = content();
  } catch (error) {
    if (error instanceof SignedObjectError) {
      return failure('malformed', `${field}: the signed content ${error.message}`);
    }
    throw error;
  }
  if (verify(signature, labelled(label, bytes), publicKey)) return undefined;
  const other = SIGNING_LABELS.find(
    (l) => l !== label && verify(signature, labelled(l, bytes), publicKey),
  );
  return other === undefined
    ? failure(
        'bad-signature',
        `${field} is not a signature by ${keyField} under label "${label}"${over === undefined ? '' : ` ${over}`}`,
      )
    : failure('wrong-label', `${field} was made under label "${other}", not "${label}"`);
}

function checkStart(start: number, now: number, field: string): Failure | undefined {
  return start <= now + MAX_CLOCK_SKEW_SECONDS
    ? undefined
    : failure(
        'not-yet-valid',
        `${field} ${start} is after now (${now}) plus the allowed clock skew`,
      );
}

/** A request's `iat` may lie at most MAX_CLOCK_SKEW_SECONDS in the past. */
function checkFresh(iat: number, now: number, field: string): Failure | undefined {
  return iat >= now - MAX_CLOCK_SKEW_SECONDS
    ? undefined
    : failure('expired', `${field} ${iat} is before now (${now}) minus the allowed clock skew`);
}

function checkExpiry(exp: number, now: number, field: string): Failure | undefined {
  return now < exp ? undefined : failure('expired', `${field} ${exp} is not after now (${now})`);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
