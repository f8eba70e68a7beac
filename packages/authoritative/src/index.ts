/**
 * @mimi-discovery/authoritative — a Discovery Provider: the zone store (LMDB by default, memory
 * for ephemeral servers and tests), its signer, the answering path and zone export. This file is
 * the package's whole public surface; each section belongs to one module.
 */

// store.ts, store-types.ts, store-error.ts
export type { DiscoveryStore } from './store/store.js';
export { STREAM_BATCH_RECORDS } from './store/store.js';
export type {
  RRsetChange,
  ApplyResult,
  ZoneInit,
  AuthkeyEntry,
  ZoneInfo,
} from './store/store-types.js';
export { StoreError } from './store/store-error.js';
export type { StoreErrorCode } from './store/store-error.js';

// zone-signer.ts, zone-changes.ts
export {
  DEFAULT_SIGNATURE_VALIDITY,
  INCEPTION_BACKDATE_SECONDS,
  DEFAULT_PROVER_KEY_LIFETIME_SECONDS,
  DEFAULT_SOA_TIMERS,
  DEFAULT_APEX_TTL,
  DEFAULT_AUTHKEY_TTL_SECONDS,
  RESIGN_MAX_RRSETS_PER_WRITE,
  signatureJitter,
} from './zone/zone-signer.js';
export type { SignatureValidityPolicy } from './zone/zone-signer.js';
export {
  MAX_CHANGES_PER_APPLY,
  MAX_RECORDS_PER_RRSET,
  CHANGEABLE_TYPES,
  CHANGE_LOG_ENTRIES,
} from './zone/zone-changes.js';
export type { ChangedNames, StoreChanges } from './zone/zone-changes.js';

// journal.ts: what each write changed, for IXFR
export {
  JOURNAL_MAX_ENTRIES,
  JOURNAL_MAX_OCTETS,
  journalEntry,
  journalLimits,
  encodeJournalEntry,
  decodeJournalEntry,
} from './zone/journal.js';
export type { JournalEntry, JournalLimits } from './zone/journal.js';

// mapping-ops.ts: operations the store decides inside its write transaction
export {
  MAX_MAP_TTL_SECONDS,
  MAPREF_TTL_SECONDS,
  MAX_MAPPINGS_PER_CSI,
  MAX_MAP_RRSET_OCTETS,
  MAX_MAPREFS_PER_CSI,
  MAX_ATTESTATION_LIFETIME_SECONDS,
  REPLAY_PRUNE_BATCH,
  isAuthorizedKey,
  removalRecordUntil,
  revocationRecordUntil,
  requestRecordUntil,
} from './store/mapping-ops.js';
export type {
  StoreOperation,
  OperationOutcome,
  RefusalReason,
  ReplayRecord,
  RemovalRecord,
  RevocationRecord,
  MaprefRequestRecord,
  AuthkeyRef,
} from './store/mapping-ops.js';

// keys/authkeys.ts: the keys authorized for a range (AUTHKEY), and the prover key's renewal
export {
  DEFAULT_AUTHKEY_VALIDITY_DAYS,
  DEFAULT_AUTHKEY_RENEW_BEFORE_DAYS,
  MAX_AUTHKEY_VALIDITY_DAYS,
  AUTHKEY_RENEWAL_INTERVAL_MS,
  AuthkeyError,
  listAuthkeys,
  addAuthkey,
  removeAuthkey,
  renewProverAuthkey,
  proverRenewalDue,
  startAuthkeyRenewal,
} from './keys/authkeys.js';
export type {
  AuthkeyErrorCode,
  ListedAuthkey,
  AuthkeyListing,
  AuthkeyChange,
  AuthkeyWriteOptions,
  AuthkeyRenewalComponents,
  AuthkeyRenewal,
} from './keys/authkeys.js';

// memory-store.ts, lmdb-store.ts
export { createMemoryStore } from './store/memory-store.js';
export type { MemoryStoreOptions } from './store/memory-store.js';
export {
  openLmdbStore,
  lmdbKeyDirectory,
  LMDB_MAX_READERS,
  LMDB_MAX_TABLES,
  KEY_SET_RETRY_SECONDS,
  STREAM_MAX_OPEN,
  STREAM_MAX_SECONDS,
} from './store/lmdb-store.js';
export type { LmdbStoreOptions } from './store/lmdb-store.js';
export { backupLmdbStore } from './store/lmdb-backup.js';

// pg-store.ts, pg-schema.ts: the PostgreSQL store
export {
  openPgStore,
  PG_POOL_SIZE,
  PG_POOL_MIN_SIZE,
  PG_POOL_MAX_SIZE,
  PG_STATEMENT_TIMEOUT_MS,
  PG_GROUP_MAX_WRITES,
  PG_CATCH_UP_MAX_ENTRIES,
  PG_POLL_INTERVAL_MS,
  PG_RECONNECT_DELAY_MS,
  PG_RESIGN_LOCK,
} from './store/pg-store.js';
export type { PgStoreOptions, PgStoreLimits } from './store/pg-store.js';
export { copyStoreToPg } from './store/pg-copy.js';
export type { StoreCopyReport } from './store/pg-copy.js';
export { openConfiguredStore, keyDirectoryPath } from './store/store-factory.js';
export type { ConfiguredStoreOptions } from './store/store-factory.js';
export {
  PG_WRITE_BATCH_ROWS,
  PG_LOAD_BATCH_ROWS,
  PG_CHANGE_LOG_MAX_NAMES,
  PG_CHANGE_LOG_KEEP,
  PG_NOTIFY_CHANNEL,
} from './store/pg-statements.js';
export {
  migratePgSchema,
  PG_SCHEMA_VERSION,
  PG_MIGRATION_LOCK,
  PG_CONNECT_TIMEOUT_MS,
} from './store/pg-schema.js';

// answer.ts
export {
  createAnswerer,
  ONLINE_SIGNATURE_VALIDITY_SECONDS,
  DP_ANSWER_CACHE_MAX_AGE_SECONDS,
  MAX_ANSWER_CACHE_MAX_AGE_SECONDS,
  DENIAL_CACHE_ENTRIES,
  CURRENT_MAP_CACHE_ENTRIES,
} from './answering/answer.js';
export type { Answerer, AnswererOptions } from './answering/answer.js';
export {
  DEFAULT_DOH_QUERIES_PER_SECOND,
  DEFAULT_DOH_QUERY_BURST,
  createDpLimits,
} from './answering/dp-limits.js';
export type {
  DpRrlSettings,
  DpDohClientSettings,
  DpLimitStats,
  DpLimits,
} from './answering/dp-limits.js';

// map-expiry.ts
export {
  MAPPING_EXPIRY_MEMO_OCTETS,
  MappingExpiries,
  currentMappings,
  mappingExpiry,
} from './answering/map-expiry.js';
export type { CurrentMappings } from './answering/map-expiry.js';

// zone-export.ts, zone-digest.ts
export {
  exportZone,
  exportZoneText,
  exportForm,
  zoneRecordsAt,
  EXPORT_CHUNK_CHARS,
} from './zone/zone-export.js';
export { keepZoneDigest, dropZoneDigest } from './zone/zone-digest.js';

// transfer.ts, notify.ts, transfer-setup.ts
export {
  MAX_TRANSFER_MESSAGE_OCTETS,
  TRANSFERS_PER_CLIENT,
  MAX_TRANSFERS,
  TRANSFER_REPLAY_ENTRIES,
  addressRanges,
  isAddressRange,
  createTransferHandler,
} from './answering/transfer.js';
export type { ExportZoneOptions, ExportForm } from './zone/zone-export.js';
export type {
  TransferPolicy,
  TransferComponents,
  TransferOutcome,
  TransferKind,
} from './answering/transfer.js';
export {
  NOTIFY_RETRIES,
  NOTIFY_TIMEOUT_MS,
  MAX_NOTIFY_RETRIES,
  NOTIFY_CHECK_INTERVAL_MS,
  OPCODE_NOTIFY,
  notifyMessage,
  startNotifySender,
} from './answering/notify.js';
export type {
  NotifyTarget,
  NotifyOptions,
  NotifyOutcome,
  NotifyComponents,
  NotifySender,
} from './answering/notify.js';
export { setUpTransfers } from './answering/transfer-setup.js';
export type { TransferSetup, TransferSetupComponents } from './answering/transfer-setup.js';

// registration
export { REGISTRATION_ERRORS, RegistrationError } from './registration/registration-error.js';
export type {
  RegistrationErrorCode,
  RegistrationErrorOptions,
} from './registration/registration-error.js';
export { ATTESTATION_VALIDITY_SECONDS, createRegistrar } from './registration/registration.js';
export type {
  Registrar,
  RegistrarOptions,
  RegistrarLimits,
  ProveResult,
  ConfirmResult,
  CredentialResult,
  PublishResult,
  RevokeResult,
} from './registration/registration.js';
export {
  RANGE_AUTHKEY_CACHE_ENTRIES,
  MAX_RANGE_AUTHKEY_CACHE_ENTRIES,
  MAX_RANGE_AUTHKEY_CACHE_SECONDS,
  RANGE_AUTHKEY_TIMEOUT_MS,
  MAX_RANGE_AUTHKEY_TIMEOUT_MS,
  createRangeAuthkeys,
  parseResolverEndpoint,
} from './registration/range-authkeys.js';
export type {
  RangeAuthkeyLookup,
  RangeAuthkeys,
  RangeAuthkeysOptions,
  RangeKeys,
  ResolverEndpoint,
} from './registration/range-authkeys.js';
export {
  MAX_BODY_OCTETS,
  HEADERS_TIMEOUT_MS,
  BODY_TIMEOUT_MS,
  MAX_HEADER_OCTETS,
  MAX_API_CONNECTIONS,
  API_CONNECTIONS_PER_CLIENT,
  API_IDLE_TIMEOUT_MS,
  startRegistrationApi,
} from './registration/registration-api.js';
export {
  RECIPIENT_PAGE_MOUNT,
  RECIPIENT_PAGE_DIR,
  loadRecipientPage,
} from './registration/recipient-page.js';
export type { RecipientPageSetting } from './registration/recipient-page.js';
export type {
  RegistrationApi,
  RegistrationApiOptions,
  RegistrationApiComponents,
  Scheduler,
} from './registration/registration-api.js';
export { REGISTRATION_ROUTES } from './registration/routes.js';
export {
  REGISTRATION_CLIENT_TIMEOUT_MS,
  REGISTRATION_CLIENT_CONNECTIONS,
  MAX_REGISTRATION_RESPONSE_OCTETS,
  RegistrationClientError,
  createRegistrationClient,
} from './registration/client.js';
export type {
  RegistrationClient,
  RegistrationClientOptions,
  RegistrationResponse,
} from './registration/client.js';
export {
  CHANNEL_TIMEOUT_MS,
  ChannelError,
  selectChannel,
  createOutboxChannel,
  lastOutboxCode,
  createSmtpChannel,
  createWebhookChannel,
} from './registration/channels.js';
export type {
  CodeChannel,
  CodeChannels,
  CodeMessage,
  SmtpChannelOptions,
  WebhookChannelOptions,
} from './registration/channels.js';
export {
  CODE_TTL_SECONDS,
  CODE_DIGITS,
  MAX_PENDING_CODES,
  createCodeTable,
} from './registration/codes.js';
export type { CodeTable, CodeTableOptions, CodeCheck } from './registration/codes.js';
export {
  SENDS_PER_CSI_PER_HOUR,
  REQUESTS_PER_CLIENT_PER_MINUTE,
  MAX_ATTEMPTS_PER_CODE,
  MAX_RATE_LIMIT_KEYS,
  createTokenBuckets,
} from './registration/rate-limit.js';
export type { TokenBuckets, TokenBucketOptions, TakeResult } from './registration/rate-limit.js';

// key-policy.ts, key-roller.ts: key rollover (design §5)
export {
  DEFAULT_KEY_LIFETIME_SECONDS,
  DEFAULT_PROPAGATION_DELAY_SECONDS,
  DEFAULT_PUBLISH_SAFETY_SECONDS,
  DEFAULT_RETIRE_SAFETY_SECONDS,
  DEFAULT_DS_TTL_SECONDS,
  DEFAULT_REGISTRATION_DELAY_SECONDS,
  DEFAULT_ADD_HOLD_DOWN_SECONDS,
  DEFAULT_REVOKE_SECONDS,
  MAX_POLICY_SECONDS,
  RFC5011_MAX_PROBE_SECONDS,
  KeyRollError,
  defaultRolloverPolicy,
  publishInterval,
  holdDownInterval,
  retireInterval,
  dsInterval,
  rfc5011ProbeInterval,
  rollDue,
  startRoll,
  planRoll,
} from './keys/key-policy.js';
export type {
  RolloverPolicy,
  ParentDs,
  RollContext,
  RollPhase,
  RollPlan,
  RollKey,
  KeyAction,
  KeyRollErrorCode,
} from './keys/key-policy.js';
export {
  ROLLER_RELOAD_INTERVAL_SECONDS,
  ROLLER_CHECK_INTERVAL_SECONDS,
  PARENT_QUERY_TIMEOUT_MS,
  MAX_PARENT_SERVERS,
  MAX_ROLL_STEPS_PER_TICK,
  queryParentDs,
  maxZoneTtl,
  zoneRollStatus,
  applyKeyActions,
  rollZoneKey,
  startKeyRoller,
} from './keys/key-roller.js';
export type {
  RollerStore,
  ParentServer,
  RollStatus,
  KeyRollerOptions,
  KeyRoller,
} from './keys/key-roller.js';

// config.ts
export { dpConfigSchema, rolloverPolicyOf } from './config.js';
export type { DpConfig } from './config.js';

// metrics.ts
export { QUERY_DURATION_BUCKETS, createAuthoritativeMetrics } from './metrics.js';
export type {
  AuthoritativeMetrics,
  RegistrationEvents,
  RegistrationLimit,
  ZoneStatusSource,
} from './metrics.js';

// server.ts, delegation.ts
export { startDp, storeDirectory, RESIGN_INTERVAL_MS } from './answering/server.js';
export {
  ANSWER_WORKER_ACK_MS,
  ANSWER_WORKER_CLOSE_MS,
  ANSWER_WORKER_RESTARTS_PER_WINDOW,
  ANSWER_WORKER_RESTART_WINDOW_MS,
  ANSWER_WORKER_START_MS,
  ANSWER_WORKER_STATS_MS,
  MAX_ANSWER_WORKERS,
} from './answering/answer-worker-limits.js';
export { answerWorkerCount, workerShare } from './answering/answer-workers.js';
export type { AnswerWorkers } from './answering/answer-workers.js';
export type { RunningDp, DpComponents } from './answering/server.js';
export {
  delegate,
  undelegate,
  listDelegations,
  delegationChanges,
  DelegationError,
  DELEGATION_TTL,
  MAX_NAMESERVERS_PER_DELEGATION,
  DEFAULT_DOH_PATH_TEMPLATE,
} from './zone/delegation.js';
export type { DelegationSpec, NameserverSpec, DelegationErrorCode } from './zone/delegation.js';

// keyconf.ts
export {
  DEFAULT_KEYCONF_TTL,
  KeyconfError,
  keyconfChanges,
  publishKeys,
  listKeys,
} from './zone/keyconf.js';
export type {
  KeyconfErrorCode,
  PublishKeysOptions,
  PublishedKeys,
  KeysAt,
} from './zone/keyconf.js';
export {
  startCdsPoller,
  pollChildCds,
  CDS_POLL_INTERVAL_SECONDS,
  CDS_QUERY_TIMEOUT_MS,
  CDS_ROUND_TIMEOUT_MS,
  CDS_MAX_CHILDREN_PER_ROUND,
  CDS_DNS_PORT,
  CDS_FIRST_ROUND_DELAY_MS,
  DEFAULT_CDS_CONFIG,
} from './zone/cds-poller.js';
export type {
  CdsConfig,
  CdsMetrics,
  CdsOutcome,
  CdsPollResult,
  CdsPoller,
  CdsPollerComponents,
} from './zone/cds-poller.js';
export {
  checkChildCds,
  CDS_DIGEST_TYPES,
  MAX_CDS_RRSET_RECORDS,
  MAX_CDS_SIGNATURES,
  MAX_CDS_VERIFICATIONS,
} from './zone/cds-check.js';
export type {
  CdsCheck,
  CdsCheckInput,
  CdsRejection,
  FetchedRRset,
  ServerAnswers,
} from './zone/cds-check.js';
export {
  CdsFetchError,
  MAX_CDS_ANSWER_RECORDS,
  MAX_CDS_SERVERS_PER_CHILD,
  systemResolveHost,
} from './zone/cds-fetch.js';
export type { CdsFetchErrorCode, CdsServerAddress, ResolveHost } from './zone/cds-fetch.js';
export { CDS_STATE_FILE, CdsStateError, openCdsState } from './zone/cds-state.js';
export type { CdsReplayState } from './zone/cds-state.js';

// keys/key-set.ts, keys/key-directory.ts: keys apart from data (design §9)
export {
  KEY_TIMING_FIELDS,
  keyStateAt,
  keySetAt,
  nextKeyEvent,
  isPublishedState,
  revokedDnskey,
} from './keys/key-set.js';
export type { KeyTiming, KeyState, StoredZoneKey, ZoneKeySet } from './keys/key-set.js';
export {
  KEY_DIRECTORY_MODE,
  KEY_FILE_MODE,
  PROVER_KEY_FILE,
  MAX_KEY_FILE_OCTETS,
  MAX_KEYS_PER_ZONE,
  KeyDirectoryError,
  defaultKeyDirectory,
  openKeyDirectory,
  createMemoryKeyDirectory,
} from './keys/key-directory.js';
export type { KeyDirectory, KeyDirectoryErrorCode } from './keys/key-directory.js';
export type { SignatureStatus } from './store/store-keys.js';
