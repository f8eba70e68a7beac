/**
 * @mimi-discovery/common — the protocol layer: CSI names, record formats, signed objects,
 * DNSSEC with Ed25519, the DNS message codec and zone lookup as a pure function.
 * This file is the package's whole public surface; each section belongs to one module.
 */

// errors.ts
export {
  MimiError,
  CsiError,
  WireError,
  SignedObjectError,
  DnssecError,
  ZoneError,
} from './errors.js';

// records.ts
export {
  RR_TYPE_MAP,
  RR_TYPE_MAPREF,
  RR_TYPE_AUTHKEY,
  DNSSEC_ALGORITHM_ED25519,
  DS_DIGEST_SHA256,
} from './records.js';
export type {
  KnownRRType,
  RRType,
  RRClass,
  Question,
  SoaData,
  DsData,
  DnskeyData,
  RrsigData,
  NsecData,
  Nsec3Data,
  Nsec3ParamData,
  SvcParams,
  SvcbData,
  AuthkeyRole,
  AuthkeyData,
  ResourceRecord,
  RecordOf,
  EdnsOption,
  Edns,
  Rcode,
  MessageFlags,
  Message,
} from './records.js';

// names.ts
export {
  MAX_LABEL_OCTETS,
  MAX_NAME_OCTETS,
  nameLabels,
  joinLabels,
  canonicalName,
  namesEqual,
  labelCount,
  isSubdomain,
  parentName,
  nameWireLength,
  compareNames,
} from './names.js';

// csi.ts

// wire.ts

// ed25519.ts, cbor.ts, signed.ts

// dnssec.ts, nsec.ts, nsec3.ts, trust-anchor.ts

// lookup.ts
