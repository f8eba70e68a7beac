/**
 * The record model shared by every package: plain, typed data for DNS messages and resource
 * records. The wire codec (`wire.ts`) is the only place that turns these into bytes and back.
 *
 * Conventions (the same as dns-packet's, so nothing is lost at the boundary):
 * - A domain name is a string in presentation form without the trailing dot, labels separated
 *   by `.`; the root is `.`. Case is preserved as received; compare with `canonicalName()`
 *   from `names.ts`.
 * - Byte strings are `Uint8Array`.
 * - Times in RRSIG are seconds since the epoch (the codec applies RFC 4034 §3.1.5 serial
 *   arithmetic only on the wire).
 */

/** Private-use RR type codes (RFC 6895 §3.1) assigned by the design (§4). */
export const RR_TYPE_MAP = 65400;
/** See {@link RR_TYPE_MAP}. */
export const RR_TYPE_MAPREF = 65401;
/** See {@link RR_TYPE_MAP}. */
export const RR_TYPE_AUTHKEY = 65402;
/** See {@link RR_TYPE_MAP}: a key of an oblivious-path service, published in the tree. */
export const RR_TYPE_KEYCONF = 65403;

/** DNSSEC algorithm number of Ed25519 (RFC 8080 §5). */
export const DNSSEC_ALGORITHM_ED25519 = 15;
/** DS digest type SHA-256 (RFC 4509). */
export const DS_DIGEST_SHA256 = 2;

/** The RR types the codec understands by name; anything else is `TYPE<n>` (RFC 3597). */
export type KnownRRType =
  | 'A'
  | 'NS'
  | 'CNAME'
  | 'SOA'
  | 'TXT'
  | 'AAAA'
  | 'OPT'
  | 'DS'
  | 'RRSIG'
  | 'NSEC'
  | 'DNSKEY'
  | 'NSEC3'
  | 'CDS'
  | 'CDNSKEY'
  | 'NSEC3PARAM'
  | 'SVCB'
  | 'ZONEMD'
  | 'MAP'
  | 'MAPREF'
  | 'AUTHKEY'
  | 'KEYCONF';

/** An RR type by mnemonic, or `TYPE<n>` for a type without one (RFC 3597 §5). */
export type RRType = KnownRRType | `TYPE${number}`;

/** Question and record class. Only IN is served; others decode so they can be refused. */
export type RRClass = 'IN' | 'CH' | 'HS' | 'ANY' | `CLASS${number}`;

/** One question (RFC 1035 §4.1.2). `type` may also be a query-only type such as `ANY`. */
export interface Question {
  name: string;
  type: RRType | 'ANY' | 'AXFR' | 'IXFR';
  class: RRClass;
}

/** Fields every resource record has. */
interface RRBase {
  name: string;
  ttl: number;
  class: RRClass;
}

/** SOA RDATA (RFC 1035 §3.3.13). */
export interface SoaData {
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

/** DS RDATA (RFC 4034 §5.1). */
export interface DsData {
  keyTag: number;
  algorithm: number;
  digestType: number;
  digest: Uint8Array;
}

/** DNSKEY RDATA (RFC 4034 §2.1). */
export interface DnskeyData {
  flags: number;
  protocol: number;
  algorithm: number;
  publicKey: Uint8Array;
}

/** RRSIG RDATA (RFC 4034 §3.1). Times are seconds since the epoch. */
export interface RrsigData {
  typeCovered: RRType;
  algorithm: number;
  labels: number;
  originalTtl: number;
  expiration: number;
  inception: number;
  keyTag: number;
  signerName: string;
  signature: Uint8Array;
}

/** NSEC RDATA (RFC 4034 §4.1); `types` in ascending type-code order. */
export interface NsecData {
  nextName: string;
  types: RRType[];
}

/** NSEC3 RDATA (RFC 5155 §3.2); `nextHashedOwner` is the raw hash (not base32). */
export interface Nsec3Data {
  hashAlgorithm: number;
  flags: number;
  iterations: number;
  salt: Uint8Array;
  nextHashedOwner: Uint8Array;
  types: RRType[];
}

/** NSEC3PARAM RDATA (RFC 5155 §4.2). */
export interface Nsec3ParamData {
  hashAlgorithm: number;
  flags: number;
  iterations: number;
  salt: Uint8Array;
}

/**
 * SVCB parameters (RFC 9460 §7, RFC 9461 §5). Known keys are typed; any other key is kept as
 * raw bytes under `key<n>`. On the wire keys are strictly increasing; the codec sorts on encode
 * and rejects disorder on decode.
 */
export interface SvcParams {
  mandatory?: string[];
  alpn?: string[];
  noDefaultAlpn?: true;
  port?: number;
  ipv4hint?: string[];
  ech?: Uint8Array;
  ipv6hint?: string[];
  dohpath?: string;
  /**
   * The DoH service is also offered through an Oblivious HTTP gateway (RFC 9540 §4: key 8,
   * empty value).
   */
  ohttp?: true;
  /** Keys without a typed field, by number, raw value bytes. */
  unknown?: ReadonlyArray<{ key: number; value: Uint8Array }>;
}

/** SVCB RDATA (RFC 9460 §2.2). Priority 0 is AliasMode (no params). */
export interface SvcbData {
  priority: number;
  target: string;
  params: SvcParams;
}

/**
 * ZONEMD RDATA (RFC 8976 §2.2): a digest of the whole zone at `serial`, by the collation
 * `scheme` (1: SIMPLE) and the hash `hashAlgorithm` (1: SHA-384, 2: SHA-512).
 */
export interface ZonemdData {
  serial: number;
  scheme: number;
  hashAlgorithm: number;
  digest: Uint8Array;
}

/** Role of an AUTHKEY: an ID prover of the range, or its CSI provider (design §4). */
export type AuthkeyRole = 'prover' | 'csip';

/**
 * AUTHKEY RDATA (private type 65402), wire form:
 * `role (u8: 1 prover, 2 csip) | algorithm (u8: 15 Ed25519) | notAfter (u32 seconds since the
 * epoch) | publicKey (32 octets for Ed25519)`.
 */
export interface AuthkeyData {
  role: AuthkeyRole;
  algorithm: number;
  notAfter: number;
  publicKey: Uint8Array;
}

/**
 * What a KEYCONF key is for: an Oblivious HTTP gateway key config (RFC 9458 §3), an Oblivious
 * DoH target config (RFC 9230 §6.1) or a Privacy Pass token issuer key (RFC 9578 §6.5).
 */
export type KeyconfKind = 'ohttp' | 'odoh' | 'private-token';

/** Every {@link KeyconfKind}, in the order the KEYCONF RDATA documentation lists them. */
export const KEYCONF_KINDS: readonly KeyconfKind[] = Object.freeze([
  'ohttp',
  'odoh',
  'private-token',
]);

/**
 * Largest `config` of a KEYCONF: room for a post-quantum KEM key in an OHTTP key config
 * (ML-KEM-768 public keys are 1,184 octets) and for a 4096-bit RSA SPKI, while an RRset of a few
 * keys and its RRSIG still fits one 64 KiB response. Today's configs are far smaller: an X25519
 * OHTTP key config is 41 octets, a 2048-bit RSA-PSS token key SPKI under 400.
 */
export const MAX_KEYCONF_CONFIG_OCTETS = 2048;

/**
 * KEYCONF RDATA (private type 65403): one public key of an oblivious-path service, in the wire
 * form of its protocol, with its validity. On the wire a deterministic CBOR map
 * (RFC 8949 §4.2.1) `{ v: 1, kind, cfg, nbf, exp }`:
 * - `config` (`cfg`): for `ohttp` one key config (RFC 9458 §3); for `odoh` one
 *   ObliviousDoHConfig with its version and length (RFC 9230 §6.1); for `private-token` the
 *   token key's SPKI (RFC 9578 §6.5). At most {@link MAX_KEYCONF_CONFIG_OCTETS} octets.
 * - `notBefore` (`nbf`) < `notAfter` (`exp`): seconds since the epoch; the key is in use while
 *   `notBefore ≤ now < notAfter`.
 */
export interface KeyconfData {
  kind: KeyconfKind;
  config: Uint8Array;
  notBefore: number;
  notAfter: number;
}

/** A resource record, discriminated by `type`. */
export type ResourceRecord =
  | (RRBase & { type: 'A'; data: string })
  | (RRBase & { type: 'AAAA'; data: string })
  | (RRBase & { type: 'NS'; data: string })
  | (RRBase & { type: 'CNAME'; data: string })
  | (RRBase & { type: 'TXT'; data: Uint8Array[] })
  | (RRBase & { type: 'SOA'; data: SoaData })
  | (RRBase & { type: 'DS'; data: DsData })
  | (RRBase & { type: 'DNSKEY'; data: DnskeyData })
  | (RRBase & { type: 'CDS'; data: DsData })
  | (RRBase & { type: 'CDNSKEY'; data: DnskeyData })
  | (RRBase & { type: 'RRSIG'; data: RrsigData })
  | (RRBase & { type: 'NSEC'; data: NsecData })
  | (RRBase & { type: 'NSEC3'; data: Nsec3Data })
  | (RRBase & { type: 'NSEC3PARAM'; data: Nsec3ParamData })
  | (RRBase & { type: 'SVCB'; data: SvcbData })
  | (RRBase & { type: 'ZONEMD'; data: ZonemdData })
  | (RRBase & { type: 'MAP'; data: Uint8Array })
  | (RRBase & { type: 'MAPREF'; data: string })
  | (RRBase & { type: 'AUTHKEY'; data: AuthkeyData })
  | (RRBase & { type: 'KEYCONF'; data: KeyconfData })
  | (RRBase & { type: `TYPE${number}`; data: Uint8Array });

/** The record type for a given `type` mnemonic. */
export type RecordOf<T extends ResourceRecord['type']> = Extract<ResourceRecord, { type: T }>;

/** One EDNS(0) option (RFC 6891 §6.1.2). */
export interface EdnsOption {
  code: number;
  data: Uint8Array;
}

/**
 * EDNS(0) as carried by the OPT pseudo-record (RFC 6891 §6.1). The codec keeps OPT out of
 * `additionals` and exposes it here; a message with more than one OPT does not decode.
 */
export interface Edns {
  udpPayloadSize: number;
  /** Upper 8 bits of the 12-bit extended RCODE. */
  extendedRcode: number;
  version: number;
  /** DNSSEC OK (RFC 3225). */
  dnssecOk: boolean;
  /** Compact Answers OK (RFC 9824 §5: EDNS header flag bit 1): NXDOMAIN may be signalled. */
  compactOk?: boolean;
  options: EdnsOption[];
}

/** Response codes (RFC 1035 §4.1.1, RFC 6895 §2.3) that the project uses by name. */
export type Rcode =
  | 'NOERROR'
  | 'FORMERR'
  | 'SERVFAIL'
  | 'NXDOMAIN'
  | 'NOTIMP'
  | 'REFUSED'
  /** Not authorized: a request whose TSIG does not verify (RFC 8945 §5.2). */
  | 'NOTAUTH'
  | 'BADVERS'
  | `RCODE${number}`;

/** Header flags (RFC 1035 §4.1.1, RFC 4035 §3.1.6 for AD and CD). */
export interface MessageFlags {
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  /** The Z bit; must be zero on the wire, kept so a decode/encode round-trips byte for byte. */
  z: boolean;
  ad: boolean;
  cd: boolean;
}

/** A whole DNS message. */
export interface Message {
  id: number;
  flags: MessageFlags;
  /** The full (extended, when EDNS is present) response code. */
  rcode: Rcode;
  questions: Question[];
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  additionals: ResourceRecord[];
  edns?: Edns;
}

/**
 * The header flags of a response (RFC 1035 §4.1.1): QR set, opcode QUERY, and every other flag
 * clear unless `set` says otherwise. `responseFlags({ aa: true })` is an authoritative answer.
 */
export function responseFlags(set: Partial<MessageFlags> = {}): MessageFlags {
  return {
    qr: true,
    opcode: 0,
    aa: false,
    tc: false,
    rd: false,
    ra: false,
    z: false,
    ad: false,
    cd: false,
    ...set,
  };
}

/**
 * Builds one record of class IN: `record('example.com', 'NS', 'ns1.example.com', 3600)`. The type
 * parameter ties `data` to the record type, so a mismatch is a compile error.
 */
export function record<T extends ResourceRecord['type']>(
  name: string,
  type: T,
  data: RecordOf<T>['data'],
  ttl: number,
): RecordOf<T> {
  // The union cannot be narrowed by a generic `type`; the signature above ties data to type.
  return { name, type, class: 'IN', ttl, data } as RecordOf<T>;
}
