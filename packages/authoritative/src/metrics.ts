import {
  CREDENTIAL_FORMATS,
  createMetricsRegistry,
  declareConnectionMetrics,
  declareAnswerCacheMetrics,
  declareQueryLogMetrics,
  type ConnectionListener,
  type CredentialFormat,
  type ConnectionStatsSource,
  type Counter,
  type Histogram,
  type MetricsRegistry,
  type Rcode,
  type TsigErrorName,
  type AnswerCacheStats,
  type QueryLog,
} from '@mimi-discovery/common';
import type { DpLimitStats } from './answering/dp-limits.js';
import type { NotifyOutcome } from './answering/notify.js';
import type { TransferKind, TransferOutcome } from './answering/transfer.js';
import type { DiscoveryStore } from './store/store.js';
import type { CdsOutcome } from './zone/cds-poller.js';

/**
 * The Prometheus metrics of a Discovery Provider or the root directory (design §10), served on
 * the admin port:
 *
 * | metric                                              | type      | from                              |
 * | --------------------------------------------------- | --------- | --------------------------------- |
 * | `authoritative_queries_total{transport,rcode}`      | counter   | the query handler, per query      |
 * | `authoritative_query_duration_seconds{transport}`   | histogram | the query handler, per query      |
 * | `authoritative_store_zones`                         | gauge     | `store.listZones()` when scraped  |
 * | `authoritative_answer_cache_hits_total`             | counter   | the answer cache's count          |
 * | `authoritative_answer_cache_misses_total`           | counter   | the answer cache's count          |
 * | `authoritative_answer_cache_bytes`                  | gauge     | the answer cache's size           |
 * | `authoritative_query_log_lines_total`               | counter   | the query log's count             |
 * | `authoritative_query_log_dropped_lines_total`       | counter   | the query log's count             |
 * | `authoritative_transfers_total{type,outcome}`       | counter   | AXFR and IXFR requests: `type` what was sent (`axfr`, `ixfr`, `ixfr-full`, `ixfr-current`), `outcome` `ok`, `refused`, `aborted` |
 * | `authoritative_tsig_refused_total{error}`           | counter   | signed queries refused: `BADKEY`, `BADSIG`, `BADTIME`, `BADTRUNC`, `FORMERR` |
 * | `authoritative_notify_messages_total`               | counter   | NOTIFY datagrams sent, retransmissions included |
 * | `authoritative_notifies_total{outcome}`             | counter   | NOTIFY exchanges: `acknowledged`, `refused`, `timeout`, `superseded` |
 * | `authoritative_connections_refused_total{listener,reason}` | counter | listeners: closed at accept |
 * | `authoritative_connections_closed_total{listener,reason}`  | counter | listeners: closed by the server |
 * | `authoritative_rate_limited_total{frontend,action}` | counter | RRL (udp: drop, slip), DoH (429) |
 * | `authoritative_rate_limit_entries{table}`           | gauge   | streams of RRL, clients of DoH   |
 * | `authoritative_registration_codes_sent_total{channel}` | counter | the registrar: one-time codes handed to `outbox`, `smtp`, `webhook` |
 * | `authoritative_registration_channel_failures_total{channel}` | counter | the registrar: a channel that failed to take a code |
 * | `authoritative_registration_rate_limited_total{reason}` | counter | the registrar: requests refused by `client` (requests per client), `csi` (codes per CSI), `attempts` (tries per code) |
 * | `authoritative_registration_credentials_issued_total{format}` | counter | the registrar: credentials issued (`POST /v1/credentials`), by `format` (`x509`, `sd-jwt`) |
 * | `authoritative_zone_soa_serial{zone}`               | gauge   | `store.zoneInfo` when scraped     |
 * | `authoritative_zone_rrsig_earliest_expiry_timestamp_seconds{zone}` | gauge | `store.signatureStatus` when scraped: the RRSIG that expires first |
 * | `authoritative_zone_keys{zone,state}`               | gauge   | the key directory when scraped: the zone's keys by state |
 * | `authoritative_cds_polls_total{outcome}`            | counter | children's CDS checked (`cds-poller.ts`): `updated`, `unchanged`, `no-cds`, or why refused |
 * | `authoritative_cds_ds_updates_total`                | counter | DS RRsets replaced or removed from a child's CDS |
 *
 * plus the process metrics of prom-client. Label values are small fixed sets (a transport, an
 * rcode, a reason, a channel, one of the server's own zones): never a CSI, a query name or a
 * client address.
 *
 * One way to declare, as in every package: each metric is declared here, once. What happens on
 * the request path is recorded when it happens (`recordQuery`); what another part keeps a
 * count of (the answer cache, the listeners, the store) is read by the metric's own `collect`
 * when metrics are scraped, from a source handed over with a `watch…` call, so the hot path
 * bumps a plain number and nothing is copied between metrics.
 */

/** Upper bounds of the query duration buckets, in seconds: an answer is computed in-process. */
export const QUERY_DURATION_BUCKETS = Object.freeze([
  0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
]);

/**
 * The metrics an answer worker (`answering/answer-workers.ts`) keeps and sends its writer, which
 * adds them to its own at each scrape: what the answering path counts. The rest (zones, keys,
 * registration, CDS, NOTIFY, process metrics) is the writer's alone.
 */
export const ANSWER_WORKER_METRICS: readonly string[] = Object.freeze([
  'authoritative_queries_total',
  'authoritative_query_duration_seconds',
  'authoritative_transfers_total',
  'authoritative_tsig_refused_total',
  'authoritative_answer_cache_hits_total',
  'authoritative_answer_cache_misses_total',
  'authoritative_answer_cache_bytes',
  'authoritative_connections_refused_total',
  'authoritative_connections_closed_total',
  'authoritative_rate_limited_total',
  'authoritative_rate_limit_entries',
]);

/** The metrics of one authoritative server, and what its parts record in them. */
export interface AuthoritativeMetrics {
  readonly registry: MetricsRegistry;
  /** One DNS query answered over `transport` with `rcode`, which took `seconds`. */
  recordQuery(transport: 'udp' | 'tcp' | 'doh', rcode: Rcode, seconds: number): void;
  /** One transfer request (AXFR, IXFR) that ended with `outcome`, having sent `kind` (`transfer.ts`). */
  recordTransfer(outcome: TransferOutcome, kind: TransferKind): void;
  /** One signed query refused by the TSIG step of a listener, with why. */
  recordTsigRefusal(error: TsigErrorName | 'FORMERR'): void;
  /** One NOTIFY datagram sent (`notify.ts`). */
  recordNotifySent(): void;
  /** One NOTIFY exchange that ended with `outcome`. */
  recordNotify(outcome: NotifyOutcome): void;
  /** Reports the counts and size of the answer cache in front of the query handler. */
  watchAnswerCache(cache: { readonly stats: AnswerCacheStats }): void;
  /** Reports the connection refusals and closes of a listener. */
  watchConnections(listener: ConnectionListener, source: ConnectionStatsSource): void;
  /** Reports the lines written and dropped by the query log. */
  watchQueryLog(queryLog: Pick<QueryLog, 'stats'>): void;
  /** Reports the counts and tables of the per-client limits (`dp-limits.ts`). */
  watchLimits(limits: { stats(): DpLimitStats }): void;
  /** The registrar's events (`registration.ts`): codes sent, channel failures, rate limits. */
  readonly registration: RegistrationEvents;
  /** Reports each zone's signatures and keys (`ZoneStatusSource`) when metrics are scraped. */
  watchZoneStatus(source: ZoneStatusSource): void;
  /** One child's CDS checked by the poller, with its outcome (`cds-poller.ts`). */
  recordCdsPoll(outcome: CdsOutcome): void;
  /** One DS RRset replaced or removed from a child's CDS. */
  recordCdsUpdate(): void;
  /** Reports how many answer workers answer now (`answer-workers.ts`). */
  watchAnswerWorkers(source: { live(): number }): void;
  /** One answer worker forked again after it died or was killed. */
  recordAnswerWorkerRestart(): void;
}

/** Why the registrar refused a request as over a limit. */
export type RegistrationLimit = 'client' | 'csi' | 'attempts';

/** What the registrar tells its metrics. */
export interface RegistrationEvents {
  /** A one-time code was handed to `channel` (its name: `outbox`, `smtp`, `webhook`). */
  codeSent(channel: string): void;
  /** `channel` failed to take a code (the request failed with `ERR_CHANNEL_FAILED`). */
  channelFailed(channel: string): void;
  /** A request was refused for being over `limit`. */
  rateLimited(limit: RegistrationLimit): void;
  /** A credential was issued in `format`. */
  credentialIssued(format: CredentialFormat): void;
}

/**
 * Where the zone gauges read what only the signing side knows, when metrics are scraped: the
 * store's signature status and the zone's keys by state (the key directory's `keyStateAt`).
 * Either may be left out: its gauge then has no samples (never a made-up value).
 */
export interface ZoneStatusSource {
  /** The earliest RRSIG expiration of the zone, seconds since the epoch; undefined: unknown. */
  earliestExpiry?(origin: string): number | undefined;
  /** How many of the zone's keys are in each state now (`published`, `active`, …). */
  keyStates?(origin: string): ReadonlyMap<string, number> | undefined;
}

/** Declares the metrics of an authoritative server over `store` in a new registry. */
export function createAuthoritativeMetrics(
  store: Pick<DiscoveryStore, 'listZones' | 'zoneInfo'>,
): AuthoritativeMetrics {
  const registry = createMetricsRegistry('authoritative', { processMetrics: true });
  const queries: Counter<'transport' | 'rcode'> = registry.counter<'transport' | 'rcode'>(
    'queries_total',
    {
      help: 'DNS queries answered, by transport and response code',
      labelNames: ['transport', 'rcode'],
    },
  );
  const latency: Histogram<'transport'> = registry.histogram<'transport'>(
    'query_duration_seconds',
    {
      help: 'Time to answer one DNS query',
      labelNames: ['transport'],
      buckets: QUERY_DURATION_BUCKETS,
    },
  );
  const transfers: Counter<'type' | 'outcome'> = registry.counter<'type' | 'outcome'>(
    'transfers_total',
    {
      help: 'Zone transfer requests, by what was sent (axfr, ixfr, ixfr-full, ixfr-current) and outcome (ok, refused, aborted)',
      labelNames: ['type', 'outcome'],
    },
  );
  const tsigRefused: Counter<'error'> = registry.counter<'error'>('tsig_refused_total', {
    help: 'Signed queries refused, by TSIG error (BADKEY, BADSIG, BADTIME, BADTRUNC) or FORMERR',
    labelNames: ['error'],
  });
  const notifySent: Counter = registry.counter('notify_messages_total', {
    help: 'NOTIFY messages sent to secondaries, retransmissions included',
  });
  const notifies: Counter<'outcome'> = registry.counter<'outcome'>('notifies_total', {
    help: 'NOTIFY exchanges with secondaries, by outcome: acknowledged, refused, timeout, superseded',
    labelNames: ['outcome'],
  });
  registry.gauge('store_zones', {
    help: 'Zones served from the store',
    collect() {
      this.set(store.listZones().length);
    },
  });
  let answerCache: { readonly stats: AnswerCacheStats } | undefined;
  declareAnswerCacheMetrics(registry, () => answerCache);
  const connectionSources = new Map<ConnectionListener, ConnectionStatsSource>();
  declareConnectionMetrics(registry, () => connectionSources);
  let queryLog: Pick<QueryLog, 'stats'> | undefined;
  declareQueryLogMetrics(registry, () => queryLog);

  const cdsPolls: Counter<'outcome'> = registry.counter<'outcome'>('cds_polls_total', {
    help: "Children's CDS/CDNSKEY checked by the parent, by outcome: updated, deleted, unchanged, no-cds, or why refused",
    labelNames: ['outcome'],
  });
  const cdsUpdates: Counter = registry.counter('cds_ds_updates_total', {
    help: "DS RRsets replaced or removed by the parent following a child's CDS/CDNSKEY",
  });

  let limits: { stats(): DpLimitStats } | undefined;
  registry.counter<'frontend' | 'action'>('rate_limited_total', {
    help: 'Responses and requests limited per client: UDP by RRL (drop, slip), DoH by its query rate (429)',
    labelNames: ['frontend', 'action'],
    collect() {
      this.reset();
      const stats = limits?.stats();
      if (stats === undefined) return;
      if (stats.rrl !== undefined) {
        this.inc({ frontend: 'udp', action: 'drop' }, stats.rrl.dropped);
        this.inc({ frontend: 'udp', action: 'slip' }, stats.rrl.slipped);
      }
      this.inc({ frontend: 'doh', action: '429' }, stats.doh.limited);
    },
  });
  registry.gauge<'table'>('rate_limit_entries', {
    help: 'Entries held by the per-client limits: RRL streams (rrl), DoH clients (doh)',
    labelNames: ['table'],
    collect() {
      this.reset();
      const stats = limits?.stats();
      if (stats === undefined) return;
      if (stats.rrl !== undefined) this.set({ table: 'rrl' }, stats.rrl.entries);
      this.set({ table: 'doh' }, stats.doh.clients);
    },
  });

  const codesSent: Counter<'channel'> = registry.counter<'channel'>(
    'registration_codes_sent_total',
    {
      help: 'One-time codes handed to a channel (outbox, smtp, webhook)',
      labelNames: ['channel'],
    },
  );
  const channelFailures: Counter<'channel'> = registry.counter<'channel'>(
    'registration_channel_failures_total',
    {
      help: 'One-time codes a channel (outbox, smtp, webhook) failed to take',
      labelNames: ['channel'],
    },
  );
  const credentialsIssued: Counter<'format'> = registry.counter<'format'>(
    'registration_credentials_issued_total',
    {
      help: "Credentials issued from attestations of this DP's prover (POST /v1/credentials), by format (x509, sd-jwt)",
      labelNames: ['format'],
    },
  );
  // Both formats from the start: a rate over a series that appears later misses its first step.
  for (const format of CREDENTIAL_FORMATS) credentialsIssued.inc({ format }, 0);
  const registrationLimited: Counter<'reason'> = registry.counter<'reason'>(
    'registration_rate_limited_total',
    {
      help: 'Registration requests refused by a limit: client (requests per client), csi (codes per CSI), attempts (tries per code)',
      labelNames: ['reason'],
    },
  );
  // Every series exists from the start, so rate() sees the first event (no missing series).
  for (const reason of ['client', 'csi', 'attempts'] as const)
    registrationLimited.inc({ reason }, 0);

  registry.gauge<'zone'>('zone_soa_serial', {
    help: 'SOA serial of each zone served',
    labelNames: ['zone'],
    collect() {
      this.reset();
      for (const zone of store.listZones()) {
        const info = store.zoneInfo(zone);
        if (info !== undefined) this.set({ zone }, info.serial);
      }
    },
  });
  let zoneStatus: ZoneStatusSource | undefined;
  registry.gauge<'zone'>('zone_rrsig_earliest_expiry_timestamp_seconds', {
    help: 'When the first RRSIG of each zone expires, seconds since the epoch (re-signing keeps it days ahead)',
    labelNames: ['zone'],
    collect() {
      this.reset();
      const source = zoneStatus?.earliestExpiry;
      if (source === undefined) return;
      for (const zone of store.listZones()) {
        const expiry = source.call(zoneStatus, zone);
        if (expiry !== undefined) this.set({ zone }, expiry);
      }
    },
  });
  registry.gauge<'zone' | 'state'>('zone_keys', {
    help: 'DNSSEC keys of each zone by state (generated, published, active, retired, revoked, removed)',
    labelNames: ['zone', 'state'],
    collect() {
      this.reset();
      const source = zoneStatus?.keyStates;
      if (source === undefined) return;
      for (const zone of store.listZones()) {
        for (const [state, count] of source.call(zoneStatus, zone) ?? []) {
          this.set({ zone, state }, count);
        }
      }
    },
  });

  let answerWorkers: { live(): number } | undefined;
  registry.gauge('answer_workers', {
    help: 'Answer worker processes answering DNS now (answerWorkers); absent with one process',
    collect() {
      this.reset();
      if (answerWorkers !== undefined) this.set(answerWorkers.live());
    },
  });
  const workerRestarts: Counter = registry.counter('answer_worker_restarts_total', {
    help: 'Answer workers forked again after one died or was killed for not confirming a write',
  });

  return {
    registry,
    registration: {
      codeSent(channel) {
        codesSent.inc({ channel });
      },
      channelFailed(channel) {
        channelFailures.inc({ channel });
      },
      rateLimited(limit) {
        registrationLimited.inc({ reason: limit });
      },
      credentialIssued(format) {
        credentialsIssued.inc({ format });
      },
    },
    watchZoneStatus(source) {
      zoneStatus = source;
    },
    recordQuery(transport, rcode, seconds) {
      queries.inc({ transport, rcode });
      latency.observe({ transport }, seconds);
    },
    recordTransfer(outcome, kind) {
      transfers.inc({ type: kind, outcome });
    },
    recordTsigRefusal(error) {
      tsigRefused.inc({ error });
    },
    recordNotifySent() {
      notifySent.inc();
    },
    recordNotify(outcome) {
      notifies.inc({ outcome });
    },
    watchAnswerCache(cache) {
      answerCache = cache;
    },
    watchConnections(listener, source) {
      connectionSources.set(listener, source);
    },
    watchQueryLog(source) {
      queryLog = source;
    },
    watchLimits(source) {
      limits = source;
    },
    recordCdsPoll(outcome) {
      cdsPolls.inc({ outcome });
    },
    recordCdsUpdate() {
      cdsUpdates.inc();
    },
    watchAnswerWorkers(source) {
      answerWorkers = source;
    },
    recordAnswerWorkerRestart() {
      workerRestarts.inc();
    },
  };
}
