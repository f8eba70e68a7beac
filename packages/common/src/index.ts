/**
 * @mimi-discovery/common — the protocol layer (`protocol/`: CSI names, record formats, signed
 * objects, DNSSEC with Ed25519, the DNS message codec and zone lookup as pure functions) and the
 * runtime the servers share (`runtime/`: listeners, the HTTP scaffold, the DNS client, the
 * answer cache, TLS, admin, config pieces, logs, metrics, the clock).
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
  NameError,
  WIRE_ERROR_CODES,
} from './protocol/errors.js';
export type {
  CsiErrorCode,
  WireErrorCode,
  SignedObjectErrorCode,
  DnssecErrorCode,
  ZoneErrorCode,
  NameErrorCode,
} from './protocol/errors.js';

// records.ts
export {
  RR_TYPE_MAP,
  RR_TYPE_MAPREF,
  RR_TYPE_AUTHKEY,
  RR_TYPE_KEYCONF,
  KEYCONF_KINDS,
  MAX_KEYCONF_CONFIG_OCTETS,
  DNSSEC_ALGORITHM_ED25519,
  DS_DIGEST_SHA256,
  record,
  responseFlags,
} from './protocol/records.js';
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
  ZonemdData,
  AuthkeyRole,
  AuthkeyData,
  KeyconfKind,
  KeyconfData,
  ResourceRecord,
  RecordOf,
  EdnsOption,
  Edns,
  Rcode,
  MessageFlags,
  Message,
} from './protocol/records.js';

// key-file.ts
export {
  PUBLIC_KEY_FILE_VERSION,
  MAX_PUBLIC_KEY_FILE_KEYS,
  MAX_PUBLIC_KEY_FILE_OCTETS,
  GATEWAY_PUBLIC_KEY_FILE,
  ISSUER_PUBLIC_KEY_FILE,
  KeyFileError,
  encodePublicKeyFile,
  parsePublicKeyFile,
  unexpiredKeys,
} from './protocol/key-file.js';
export type { KeyFileErrorCode } from './protocol/key-file.js';

// ede.ts, peek.ts
export {
  EDE_OPTION_CODE,
  EDE_STALE_ANSWER,
  EDE_DNSSEC_BOGUS,
  EDE_PROHIBITED,
  EDE_OTHER,
  EDE_UNSUPPORTED_DNSKEY_ALGORITHM,
  EDE_SIGNATURE_EXPIRED,
  EDE_SIGNATURE_NOT_YET_VALID,
  EDE_DNSKEY_MISSING,
  EDE_RRSIGS_MISSING,
  EDE_NSEC_MISSING,
  EDE_CACHED_ERROR,
  EDE_NO_REACHABLE_AUTHORITY,
  EDE_NETWORK_ERROR,
  edeOption,
  extendedDnsErrors,
} from './protocol/ede.js';
export type { ExtendedDnsError } from './protocol/ede.js';
export { questionOf, classifyResponse, slipResponse } from './protocol/peek.js';
export type { PeekedQuestion, ResponseClass } from './protocol/peek.js';

// bytes.ts
export { compareBytes } from './protocol/bytes.js';

// private-token.ts
export {
  TOKEN_TYPE_BLIND_RSA,
  PRIVATE_TOKEN_EDNS_OPTION,
  TOKEN_KEY_ID_OCTETS,
  TOKEN_AUTHENTICATOR_OCTETS,
  TOKEN_OCTETS,
  TOKEN_REQUEST_OCTETS,
  TOKEN_RESPONSE_OCTETS,
  TOKEN_KEY_MODULUS_BITS,
  MAX_TOKEN_KEY_SPKI_OCTETS,
  MAX_TOKEN_CHALLENGE_OCTETS,
  MAX_AUTHORIZATION_HEADER_OCTETS,
  MAX_CHALLENGE_HEADER_OCTETS,
  MAX_TOKEN_CHALLENGES,
  TOKEN_ERROR_CODES,
  TokenError,
  tokenKeyFromSpki,
  generateIssuerKey,
  exportIssuerKey,
  importIssuerKey,
  tokenChallenge,
  challengeHeader,
  parseChallengeHeader,
  authorizationHeader,
  parseAuthorizationHeader,
  verifyToken,
  createTokenRequest,
  tokenRequestKeyId,
  blindedMessageInRange,
  issueToken,
} from './protocol/private-token.js';
export type {
  TokenErrorCode,
  TokenKey,
  IssuerKey,
  ParsedChallenge,
  PendingTokenRequest,
  VerifiedToken,
} from './protocol/private-token.js';

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
  parseLabels,
  formatLabels,
  formatLabel,
} from './protocol/names.js';

// csi.ts
export {
  MAX_CSI_INPUT_LENGTH,
  MAX_E164_DIGITS,
  DEFAULT_APEX,
  parseCsi,
  isCsi,
  csiKind,
  csiToName,
  maprefTargetName,
  nameToCsi,
  parseRange,
  rangeOfZone,
  csiInRange,
  formatRange,
} from './protocol/csi.js';
export type { Csi, CsiKind, Range } from './protocol/csi.js';
export {
  CONTEXT_TAG_PREFIX,
  MAX_CONTEXT_NAME_OCTETS,
  NAMED_CONTEXTS,
  PREF_MAX,
  PREF_MIN,
  PREF_TAG_PREFIX,
  SAME_MSP_TAG,
  bestPref,
  checkPreferenceTags,
  isContext,
  passesFilter,
  preferencesOf,
  rankMsps,
} from './protocol/preferences.js';
export type {
  Context,
  MspFilter,
  Preferences,
  RankInput,
  RankedMsp,
} from './protocol/preferences.js';

// wire.ts
export {
  HEADER_OCTETS,
  MAX_MESSAGE_OCTETS,
  MAX_RECORDS_PER_MESSAGE,
  MAX_COMPRESSION_POINTERS,
  MAX_MAP_RDATA_OCTETS,
  MAX_RDATA_OCTETS,
  typeToCode,
  codeToType,
  encodeName,
  decodeName,
  encodeRdata,
  keepStoredRdata,
  decodeRdata,
  encodeRecord,
  encodeMessage,
  decodeMessage,
} from './protocol/wire.js';

// padding.ts
export {
  PADDING_OPTION_CODE,
  QUERY_PADDING_BLOCK_OCTETS,
  RESPONSE_PADDING_BLOCK_OCTETS,
  padMessage,
} from './protocol/padding.js';

// ed25519.ts, cbor.ts, signed.ts
export {
  ED25519_SECRET_KEY_OCTETS,
  ED25519_PUBLIC_KEY_OCTETS,
  ED25519_SIGNATURE_OCTETS,
  MAX_CACHED_SIGNING_KEYS,
  MAX_CACHED_VERIFY_KEYS,
  Ed25519Error,
  portableEd25519,
  nativeEd25519,
  ed25519,
  generateKeyPair,
  keyPairFromSeed,
  sign,
  verify,
  passesEd25519Checks,
} from './protocol/ed25519.js';
export type { Ed25519KeyPair, Ed25519Backend, Ed25519ErrorCode } from './protocol/ed25519.js';
export {
  MAX_SIGNED_OBJECT_OCTETS,
  MAX_CBOR_DEPTH,
  encodeCbor,
  decodeCbor,
} from './protocol/cbor.js';
export type { CborValue, CborArray, CborMap } from './protocol/cbor.js';
export {
  SIGNING_CONTEXT,
  SIGNED_OBJECT_VERSION,
  SIGNING_LABELS,
  MAX_CLOCK_SKEW_SECONDS,
  MAX_CSI_OCTETS,
  MAX_PROVIDER_OCTETS,
  MAX_URI_OCTETS,
  MAX_TAG_OCTETS,
  MAX_MSPS_PER_MAPPING,
  MAX_TAGS_PER_MSP,
  MAX_SEALED_PER_MAPPING,
  SEALED_ENC_OCTETS,
  SEALED_TAG_OCTETS,
  MAX_SEALED_CIPHERTEXT_OCTETS,
  signingInput,
  receivedMappingSigningInputs,
  createAttestation,
  createMapping,
  createRemoval,
  createRevocation,
  createMaprefRequest,
  encodeAttestation,
  decodeAttestation,
  encodeMapping,
  decodeMapping,
  encodeRemoval,
  decodeRemoval,
  encodeRevocation,
  decodeRevocation,
  encodeMaprefRequest,
  decodeMaprefRequest,
  encodeMspEntries,
  decodeMspEntries,
  parseSealedBox,
  verifyAttestation,
  verifyMapping,
  verifyMappingBatched,
  verifyRemoval,
  verifyRevocation,
  verifyMaprefRequest,
  CREDENTIAL_FORMATS,
  createCredentialRequest,
  encodeCredentialRequest,
  decodeCredentialRequest,
  verifyCredentialRequest,
  attestsCsi,
} from './protocol/signed.js';
export type {
  SigningLabel,
  Attestation,
  MspEntry,
  SealedBox,
  Mapping,
  Removal,
  Revocation,
  MaprefRequest,
  CredentialFormat,
  CredentialRequest,
  UnsignedCredentialRequest,
  CredentialRequestFields,
  UnsignedAttestation,
  UnsignedMapping,
  UnsignedRemoval,
  UnsignedRevocation,
  UnsignedMaprefRequest,
  AttestationFields,
  MappingFields,
  RemovalFields,
  RevocationFields,
  MaprefRequestFields,
  VerifyOptions,
  VerifyForCsiOptions,
  VerifyFailure,
  VerifyResult,
} from './protocol/signed.js';

// sealed.ts
export {
  AUDIENCE_KEY_ID_OCTETS,
  AUDIENCE_KEY_OCTETS,
  AUDIENCE_KEY_PREFIX,
  AUDIENCE_KEY_ID_CONTEXT,
  SEALED_INFO,
  SEALED_PADDING_BLOCK,
  SEALED_LENGTH_OCTETS,
  MAX_SEALED_PLAINTEXT_OCTETS,
  MAX_AUDIENCE_KEY_FILE_OCTETS,
  SEALED_ERROR_CODES,
  SealedError,
  audienceKeyId,
  audienceKeyFromSecret,
  generateAudienceKey,
  formatAudienceKey,
  parseAudienceKey,
  sealedAad,
  sealMsps,
  openSealed,
} from './protocol/sealed.js';
export type { AudienceKey, SealOptions, SealedErrorCode } from './protocol/sealed.js';

// dnssec.ts, nsec.ts, nsec3.ts, base32hex.ts, zone-signing.ts, zonemd.ts, presentation.ts,
// trust-anchor.ts
export {
  DNSKEY_FLAG_ZONE,
  DNSKEY_FLAG_SEP,
  DNSKEY_FLAG_REVOKE,
  DNSKEY_PROTOCOL,
  ZONE_KEY_FLAGS,
  createZoneKey,
  computeKeyTag,
  dnskeyRecord,
  computeDs,
  dsRecord,
  dsMatchesDnskey,
  signRRset,
  verifyRRset,
  checkRrsig,
  verifyRrsigWith,
  rrsigSignedData,
} from './protocol/dnssec.js';
export type {
  ZoneKey,
  CreateZoneKeyOptions,
  SignatureValidity,
  RrsetVerification,
  RrsetVerificationFailure,
  RrsigCheck,
} from './protocol/dnssec.js';
export {
  NXNAME_TYPE,
  compactDenialForName,
  compactDenialForType,
  denialTtl,
  immediateSuccessor,
  sortTypes,
} from './protocol/nsec.js';
export {
  NSEC3_HASH_SHA1,
  NSEC3_FLAG_OPT_OUT,
  NSEC3_PARAMETERS,
  nsec3Hash,
  buildNsec3Chain,
} from './protocol/nsec3.js';
export { encodeBase32Hex, decodeBase32Hex } from './protocol/base32hex.js';
export { signZone } from './protocol/zone-signing.js';
export {
  ZONEMD_SCHEME_SIMPLE,
  ZONEMD_HASH_SHA384,
  ZONEMD_HASH_SHA512,
  zonemdSupported,
  zoneDigest,
  zonemdRecord,
  zonemdPlaceholder,
  refreshZonemd,
  verifyZonemd,
  createZoneDigester,
  zonemdAlgorithms,
  zonemdRRset,
} from './protocol/zonemd.js';
export type {
  ZonemdFailure,
  ZonemdVerification,
  ZonemdRecordOptions,
  ZoneDigester,
} from './protocol/zonemd.js';
export type { SignZoneOptions } from './protocol/zone-signing.js';
export {
  formatRecord,
  formatRdata,
  formatZone,
  presentationType,
  absoluteName,
  formatTime,
} from './protocol/presentation.js';
export {
  createTrustAnchor,
  formatTrustAnchor,
  formatBindTrustAnchors,
  parseTrustAnchor,
} from './protocol/trust-anchor.js';
export type { TrustAnchor, FormatTrustAnchorOptions } from './protocol/trust-anchor.js';

// zone.ts, lookup.ts
export { createMemoryZone, descendZone, namesBelowOrigin } from './protocol/zone.js';
export type { Descent, ZoneNode, ZoneView, MemoryZone } from './protocol/zone.js';
export { lookupZone, sameRRset } from './protocol/lookup.js';
export type {
  LookupOutcome,
  LookupSections,
  LookupOptions,
  RRsetSigner,
} from './protocol/lookup.js';

// Oblivious encapsulation: bhttp.ts, ohttp.ts, odoh.ts
export {
  MAX_BHTTP_MESSAGE_OCTETS,
  MAX_BHTTP_FIELDS,
  MAX_BHTTP_INFORMATIONAL,
  BHTTP_REQUEST_PADDING_BLOCK,
  BHTTP_RESPONSE_PADDING_BLOCK,
  BHTTP_ERROR_CODES,
  BhttpError,
  encodeBhttpRequest,
  decodeBhttpRequest,
  encodeBhttpResponse,
  decodeBhttpResponse,
  padBhttp,
} from './protocol/bhttp.js';
export type { BhttpErrorCode, BhttpRequest, BhttpResponse } from './protocol/bhttp.js';
export {
  OHTTP_REQUEST_TYPE,
  OHTTP_RESPONSE_TYPE,
  OHTTP_KEYS_TYPE,
  HPKE_KEM_X25519_SHA256,
  HPKE_KDF_HKDF_SHA256,
  HPKE_AEAD_AES_128_GCM,
  X25519_KEY_OCTETS,
  MAX_OHTTP_KEY_CONFIGS,
  MAX_OHTTP_SUITES,
  MAX_OHTTP_MESSAGE_OCTETS,
  OHTTP_ERROR_CODES,
  OhttpError,
  encodeKeyConfig,
  decodeKeyConfig,
  encodeKeyConfigs,
  decodeKeyConfigs,
  generateOhttpKeyPair,
  ohttpKeyPairFromPrivate,
  encapsulateRequest,
  decapsulateRequest,
  encapsulateResponse,
  decapsulateResponse,
} from './protocol/ohttp.js';
export type {
  OhttpErrorCode,
  OhttpSuite,
  OhttpKeyConfig,
  OhttpKeyPair,
  OhttpContext,
  OhttpRequestFixed,
  OhttpResponseFixed,
} from './protocol/ohttp.js';
export {
  ODOH_CONTENT_TYPE,
  ODOH_VERSION,
  ODOH_MESSAGE_QUERY,
  ODOH_MESSAGE_RESPONSE,
  ODOH_KEY_ID_OCTETS,
  MAX_ODOH_CONFIGS,
  MAX_ODOH_MESSAGE_OCTETS,
  ODOH_ERROR_CODES,
  OdohError,
  encodeOdohConfig,
  decodeOdohConfig,
  encodeOdohConfigs,
  decodeOdohConfigs,
  odohKeyId,
  generateOdohKeyPair,
  odohKeyPairFromPrivate,
  encryptOdohQuery,
  decryptOdohQuery,
  encryptOdohResponse,
  decryptOdohResponse,
} from './protocol/odoh.js';
export type {
  OdohErrorCode,
  OdohConfig,
  OdohKeyPair,
  OdohContext,
  OdohQueryFixed,
  OdohResponseFixed,
} from './protocol/odoh.js';

// serial.ts
export { compareSerials } from './protocol/serial.js';

// tsig.ts
export {
  TSIG_ALGORITHMS,
  TSIG_FUDGE_SECONDS,
  TSIG_ERRORS,
  TSIG_MAX_UNSIGNED_MESSAGES,
  RR_TYPE_TSIG,
  MIN_TSIG_SECRET_OCTETS,
  MAX_TSIG_SECRET_OCTETS,
  MAX_TSIG_KEY_FILE_OCTETS,
  TsigError,
  createTsigKey,
  createTsigKeyring,
  isTsigAlgorithm,
  tsigMacOctets,
  splitTsig,
  signMessage,
  appendUnsignedTsig,
  tsigRecordOctets,
  verifyRequest,
  badTimeOtherData,
  createTsigResponseVerifier,
  formatTsigKeyFile,
  parseTsigKeyFile,
  decodeSecret,
} from './protocol/tsig.js';
export type {
  TsigAlgorithm,
  TsigErrorName,
  TsigErrorCode,
  TsigKey,
  TsigKeyring,
  TsigRecord,
  TsigSplit,
  TsigSignOptions,
  SignedMessage,
  TsigVerification,
  TsigResponseCheck,
  TsigResponseVerifier,
} from './protocol/tsig.js';

// log.ts
export { createLogger, silentLogger, redactPair } from './runtime/log.js';
export {
  MAX_VERIFY_THREADS,
  MAX_JOBS_PER_BATCH,
  MIN_JOBS_FOR_THREADS,
  MAX_WORKER_REPLACEMENTS,
  WORKER_ANSWER_TIMEOUT_MS,
  autoVerifyThreads,
  createVerifyPool,
  callingThreadVerifier,
} from './runtime/verify-pool.js';
export type {
  SignatureCheck,
  Verifier,
  VerifyPool,
  VerifyPoolInit,
  VerifyPoolComponents,
  VerifyPoolStats,
} from './runtime/verify-pool.js';
export type { Logger, LogLevel, LogFields, LoggerOptions } from './runtime/log.js';

// clock.ts
export { systemClock } from './runtime/clock.js';
export type { Clock } from './runtime/clock.js';

// transports: dns-server.ts, dns-client.ts, api-client.ts, tls.ts
export {
  EDNS_UDP_PAYLOAD_OCTETS,
  MIN_UDP_PAYLOAD_OCTETS,
  answerQuery,
  respondError,
  truncateForUdp,
  dohCacheMaxAge,
  udpResponseLimit,
} from './runtime/respond.js';
export type {
  Answer,
  AnswerOptions,
  QueryContext,
  QueryHandler,
  TransferHandler,
  TsigServerOptions,
  VerifiedTsig,
  TransferResponse,
  QueryGate,
  GateDecision,
} from './runtime/respond.js';
export {
  DEFAULT_TRANSFER_TIMEOUT_MS,
  DEFAULT_TRANSFER_MAX_RECORDS,
  DEFAULT_TRANSFER_MAX_OCTETS,
  ZONE_TRANSFER_ERROR_CODES,
  ZoneTransferError,
  transferZone,
  transferZoneChanges,
} from './runtime/zone-transfer-client.js';
export type {
  ZoneTransferErrorCode,
  ZoneTransferOptions,
  ZoneTransferResult,
  ZoneDelta,
  IncrementalTransfer,
  IncrementalTransferResult,
} from './runtime/zone-transfer-client.js';
export type { ListenerLimits } from './runtime/query-gate.js';
export {
  DEFAULT_LIMITED_CLIENTS,
  DEFAULT_SEEN_SECONDS,
  isCidr,
  EXEMPTION_MEMO_ENTRIES,
  createClientExemptions,
  createClientRateLimiter,
  createNameBudget,
} from './runtime/client-limits.js';
export type {
  Rate,
  RateDecision,
  NameCharge,
  ClientExemptions,
  ClientRateLimiterOptions,
  ClientRateLimiter,
  NameBudgetOptions,
  NameBudgetStats,
  NameBudget,
} from './runtime/client-limits.js';
export {
  DEFAULT_RRL_RESPONSES_PER_SECOND,
  DEFAULT_RRL_DENIALS_PER_SECOND,
  DEFAULT_RRL_ERRORS_PER_SECOND,
  DEFAULT_RRL_BURST_SECONDS,
  DEFAULT_RRL_SLIP,
  DEFAULT_RRL_MAX_ENTRIES,
  DEFAULT_RRL_SETTINGS,
  MAX_RRL_SLIP,
  createResponseRateLimiter,
} from './runtime/rrl.js';
export type {
  RrlAction,
  RrlSettings,
  RrlStats,
  RrlComponents,
  ResponseRateLimiter,
} from './runtime/rrl.js';
export { DEFAULT_UDP_MAX_PAYLOAD, DEFAULT_UDP_MAX_IN_FLIGHT } from './runtime/udp-server.js';
export type { UdpListenerConfig } from './runtime/udp-server.js';
export {
  CONNECTION_REFUSALS,
  CONNECTION_CLOSE_REASONS,
  CONNECTIONS_PER_CLIENT_SHARE,
  clientKeyOf,
  connectionLimitsFor,
  connectionsPerClientFor,
  createConnectionGate,
  declareConnectionMetrics,
  guardConnections,
} from './runtime/connection-limits.js';
export type {
  ConnectionRefusal,
  ConnectionCloseReason,
  ConnectionLimits,
  ConnectionStats,
  ConnectionScheduler,
  ConnectionGateComponents,
  ConnectionGate,
  TrackedConnection,
  SocketAddresses,
  ClosableExchange,
  ConnectionStatsSource,
  ConnectionListener,
} from './runtime/connection-limits.js';
export {
  JSON_BODY_ERRORS,
  JSON_CONTENT_TYPE,
  MAX_DEADLINE_CHECK_MS,
  MIN_DEADLINE_CHECK_MS,
  deadlineCheckIntervalMs,
  isJsonContentType,
  jsonErrorBody,
  readBody,
  readJsonBody,
  sendBody,
  sendJson,
  startHttpServer,
  ListenError,
} from './runtime/http-server.js';
export type {
  BodyDeadline,
  BodyRead,
  BodyResponse,
  HttpDeadlines,
  HttpHandlers,
  HttpJsonError,
  HttpRequest,
  HttpResponse,
  HttpServer,
  HttpServerComponents,
  HttpServerConfig,
  HttpTls,
  JsonBodyErrorCode,
  JsonBodyLimits,
  JsonResponse,
  RawErrorAnswers,
  RawErrorKind,
  ResponseOptions,
  ListenErrorCode,
} from './runtime/http-server.js';
export {
  DEFAULT_TCP_IDLE_TIMEOUT_MS,
  DEFAULT_TCP_MESSAGE_TIMEOUT_MS,
  DEFAULT_TCP_MAX_CONNECTIONS,
  DEFAULT_TCP_CONNECTIONS_PER_CLIENT,
  DEFAULT_TCP_MAX_IN_FLIGHT,
  TCP_MAX_UNSENT_OCTETS,
} from './runtime/tcp-server.js';
export type { TcpListenerConfig } from './runtime/tcp-server.js';
export {
  DEFAULT_DOH_PATH,
  DEFAULT_DOH_MAX_BODY_OCTETS,
  DEFAULT_DOH_REQUEST_TIMEOUT_MS,
  DEFAULT_DOH_IDLE_TIMEOUT_MS,
  DEFAULT_DOH_MAX_CONNECTIONS,
  DEFAULT_DOH_CONNECTIONS_PER_CLIENT,
  DOH_MAX_CONCURRENT_STREAMS,
} from './runtime/doh-server.js';
export type { DohListenerConfig } from './runtime/doh-server.js';
export { DEFAULT_DNS_SERVER_HOST, startDnsServer } from './runtime/dns-server.js';
export {
  ANSWER_CACHE_OCTETS,
  ANSWER_CACHE_MAX_AGE_SECONDS,
  AnswerCache,
  declareAnswerCacheMetrics,
  ttlFields,
} from './runtime/answer-cache.js';
export type {
  AnswerCacheOptions,
  CachedResponse,
  AnswerCacheStats,
} from './runtime/answer-cache.js';
export type { DnsServer, DnsServerConfig, DnsServerComponents } from './runtime/dns-server.js';
export {
  QUERY_LOG_BUFFER_OCTETS,
  QUERY_LOG_RETRY_MS,
  declareQueryLogMetrics,
  openLineLog,
  openQueryLog,
  queryLogLine,
} from './runtime/query-log.js';
export type {
  LineLog,
  LineLogSettings,
  QueryLog,
  QueryLogComponents,
  QueryLogEntry,
  QueryLogSettings,
  QueryLogStats,
  QueryLogTransport,
} from './runtime/query-log.js';
export {
  DNS_MESSAGE_MEDIA_TYPE,
  DEFAULT_CLIENT_TIMEOUT_MS,
  DEFAULT_DOH_CLIENT_CONNECTIONS,
  DOH_CLIENT_STREAMS_PER_CONNECTION,
  MAX_DOH_CLIENT_LANES,
  DOH_RETRIES_ON_DEAD_CONNECTION,
  DOH_CONNECT_TIMEOUT_MS,
  DEFAULT_DOH_TLS_SESSION_SERVERS,
  DOH_TLS_TICKETS_PER_SERVER,
  TRANSPORT_ERROR_CODES,
  TransportError,
  queryUdp,
  queryTcp,
  createDohClient,
  buildQuery,
} from './runtime/dns-client.js';
export type {
  TransportErrorCode,
  ClientOptions,
  UdpQueryOptions,
  DohQueryOptions,
  ServerAddress,
  DohClient,
  DohClientOptions,
  BuildQueryOptions,
} from './runtime/dns-client.js';
export {
  API_CLIENT_FAULT_CODES,
  ApiClientError,
  createApiClient,
  isJsonObject,
} from './runtime/api-client.js';
export { isUndiciTimeout, readBoundedBody, retryAfterOf } from './runtime/http-response.js';
export {
  MAX_SITE_FILES,
  MAX_SITE_FILE_OCTETS,
  SITE_CONTENT_TYPES,
  SITE_HEADERS,
  StaticSiteError,
  loadStaticSite,
  siteForSetting,
} from './runtime/static-site.js';
export type { StaticSite } from './runtime/static-site.js';
export {
  MAX_RANGE_AUTHKEY_CACHE_ENTRIES,
  MAX_RANGE_AUTHKEY_CACHE_SECONDS,
  MAX_RANGE_AUTHKEY_TIMEOUT_MS,
  RANGE_AUTHKEY_CACHE_ENTRIES,
  RANGE_AUTHKEY_TIMEOUT_MS,
  RangeAuthkeysError,
  createRangeAuthkeys,
  parseResolverEndpoint,
} from './runtime/range-authkeys.js';
export { verifyCredential } from './runtime/credential-verify.js';
export type {
  CredentialAuthkeyLookup,
  VerifyCredentialOptions,
} from './runtime/credential-verify.js';
export type {
  RangeAuthkeyLookup,
  RangeAuthkeys,
  RangeAuthkeysOptions,
  RangeKeys,
  ResolverEndpoint,
} from './runtime/range-authkeys.js';
export {
  AUTHKEY_NO_EXPIRY,
  CERTIFICATE_SERIAL_OCTETS,
  CREDENTIAL_ERROR_CODES,
  CREDENTIAL_VCT,
  CredentialError,
  KEY_IDENTIFIER_OCTETS,
  MAX_CREDENTIAL_OCTETS,
  NO_WELL_DEFINED_EXPIRATION,
  SD_JWT_ALG,
  SD_JWT_SALT_OCTETS,
  SD_JWT_TYP,
  issueSdJwtCredential,
  issueX509Credential,
  keyIdentifier,
  proverCertificate,
  proverCertificateMatches,
  readCredential,
  verifyCredentialWithAuthkeys,
} from './protocol/credentials.js';
export type {
  CredentialCheck,
  CredentialErrorCode,
  CredentialIssue,
  CredentialSubject,
  ProverAuthkey,
  VerifiedCredential,
  X509Credential,
} from './protocol/credentials.js';
export { createPendingWrites } from './runtime/pending-writes.js';
export type { FlushingStore, PendingWrites } from './runtime/pending-writes.js';
export type { BoundedResponse } from './runtime/http-response.js';
export type {
  ApiClientFaultCode,
  ApiClientErrorInit,
  ApiClientErrorClass,
  ApiClientOptions,
  ApiEndpointOptions,
  ApiResponseInfo,
  ApiRequest,
  ApiAnswer,
  ApiClient,
} from './runtime/api-client.js';
export {
  DEFAULT_CA_VALID_DAYS,
  DEFAULT_SERVER_CERTIFICATE_VALID_DAYS,
  DEFAULT_CA_COMMON_NAME,
  createLocalCa,
  issueServerCertificate,
} from './runtime/tls.js';
export type {
  LocalCa,
  LocalCaOptions,
  ServerCertificate,
  ServerCertificateOptions,
} from './runtime/tls.js';

// zone-file.ts, config.ts, metrics.ts, admin.ts
export {
  MAX_ZONE_FILE_RECORDS,
  MAX_ZONE_FILE_LINE_CHARS,
  ZONE_FILE_ERROR_CODES,
  ZoneFileError,
  parseZoneFile,
  readZoneFile,
  createZoneFileReader,
  readZoneFileChunks,
} from './protocol/zone-file.js';
export type {
  ZoneFileErrorCode,
  ZoneFileOptions,
  ZoneFileReadOptions,
  ZoneFileEntry,
  ZoneFileReader,
  ZoneFileReaderOptions,
} from './protocol/zone-file.js';
export {
  CONFIG_ERROR_CODES,
  ConfigError,
  parseConfig,
  parseConfigText,
  readConfigFile,
  readConfigText,
  readTlsFiles,
  listenPortSchema,
  listenHostSchema,
  remotePortSchema,
  configPathSchema,
  positiveIntSchema,
  domainNameSchema,
  timeoutMsSchema,
  cidrListSchema,
  checkConnectionsPerClient,
  listenConfigSchema,
  tlsConfigSchema,
  checkTlsForHttps,
  tcpLimitsConfigSchema,
  dohLimitsConfigSchema,
  logConfigSchema,
  queryLogConfigSchema,
  rootHintsSchema,
} from './runtime/config.js';
export type {
  ConfigErrorCode,
  ConfigIssue,
  ConfigCheckContext,
  RootHintsFile,
} from './runtime/config.js';
export {
  DROPPED_PROCESS_METRICS,
  METRICS_CONTENT_TYPE,
  MetricsError,
  aggregatedRegistry,
  cumulativeSnapshot,
  createMetricsRegistry,
  metricsText,
} from './runtime/metrics.js';
export type {
  MetricOptions,
  GaugeOptions,
  CounterOptions,
  HistogramOptions,
  MetricsRegistryOptions,
  MetricsRegistry,
  MetricsSnapshot,
  MetricsErrorCode,
  Counter,
  Gauge,
  Histogram,
  Registry,
} from './runtime/metrics.js';
export {
  ADMIN_TIMEOUT_MS,
  ADMIN_HEALTH_TIMEOUT_MS,
  ADMIN_MAX_CONNECTIONS,
  ADMIN_CONNECTIONS_PER_CLIENT,
  startAdminServer,
} from './runtime/admin.js';
export type {
  AdminServerOptions,
  AdminServerComponents,
  AdminServer,
  HealthReport,
} from './runtime/admin.js';
export {
  CONTROL_COMMANDS,
  CONTROL_COMMAND_TIMEOUT_MS,
  CONTROL_KEY_OCTETS,
  CONTROL_MAX_CLIENTS,
  CONTROL_MAX_REPLY_OCTETS,
  CONTROL_MAX_REQUEST_OCTETS,
  CONTROL_MAX_REQUESTS_PER_CONNECTION,
  CONTROL_MAX_SOCKET_PATH_OCTETS,
  CONTROL_SOCKET_NAME,
  CONTROL_TIMEOUT_MS,
  ControlError,
  certificateSummary,
  changedConfigKeys,
  checkControlDirectory,
  controlConfigSchema,
  controlKeyMatches,
  controlReplyStatus,
  controlRequest,
  createControlDispatcher,
  createTlsReload,
  errorReply,
  generateControlKey,
  metricsJson,
  openServerControl,
  parseControlKey,
  parseControlRequest,
  readControlKeyFile,
  startControlSocket,
} from './runtime/control.js';
export type {
  CertificateSummary,
  ControlCommandName,
  ControlConfig,
  ControlDispatcher,
  ControlDispatcherOptions,
  ControlErrorCode,
  ControlHandlers,
  ControlReply,
  ControlRequest,
  ControlRequestOptions,
  ReloadableSettings,
  ReloadReport,
  ServerControl,
  ControlSocket,
  ControlSocketOptions,
  ControlTarget,
} from './runtime/control.js';
