import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CONTROL_SOCKET_NAME,
  ConfigError,
  aggregatedRegistry,
  canonicalName,
  createLogger,
  openServerControl,
  openQueryLog,
  startAdminServer,
  startDnsServer,
  systemClock,
  type AdminServer,
  type Clock,
  type DnsServer,
  type DnsServerConfig,
  type Logger,
  type QueryLog,
  type ReloadReport,
  type ServerControl,
} from '@mimi-discovery/common';
import { createDpReload, dpControlHandlers } from './control-commands.js';
import type { DpConfig } from '../config.js';
import { createAnswerPath } from './answer-path.js';
import {
  answerWorkerCount,
  startAnswerWorkers,
  storeWithAnswerWorkers,
  type AnswerWorkers,
} from './answer-workers.js';
import { setUpTransfers } from './transfer-setup.js';
import { keepZoneDigest } from '../zone/zone-digest.js';
import { createAuthoritativeMetrics } from '../metrics.js';
import {
  createOutboxChannel,
  createSmtpChannel,
  createWebhookChannel,
  type CodeChannels,
} from '../registration/channels.js';
import { openConfiguredStore, storeDirectory } from '../store/store-factory.js';
import { createRegistrar } from '../registration/registration.js';
import { createRangeAuthkeys, type RangeAuthkeys } from '../registration/range-authkeys.js';
import { startRegistrationApi, type RegistrationApi } from '../registration/registration-api.js';
import { loadRecipientPage } from '../registration/recipient-page.js';
import type { DiscoveryStore } from '../store/store.js';
import { startAuthkeyRenewal } from '../keys/authkeys.js';
import { zoneStatusOf } from '../keys/zone-status.js';
import { startCdsPoller, type CdsPoller } from '../zone/cds-poller.js';
import { CDS_STATE_FILE, openCdsState } from '../zone/cds-state.js';
import { startKeyRoller, type KeyRoller } from '../keys/key-roller.js';
import { rolloverPolicyOf } from '../config.js';

/**
 * One running Discovery Provider (or the root directory, `role: "root"`): the store its config
 * names (LMDB in `<dataDir>/store` by default, or PostgreSQL shared with other front ends), the DNS listeners (UDP, TCP, DoH) answering from it behind their per-client
 * limits (`dp-limits.ts`: RRL on UDP, a query rate on DoH), the registration API
 * (DPs only), the admin port, and the background re-signing of RRSIGs before they expire.
 */
export interface RunningDp {
  readonly config: DpConfig;
  /**
   * The store, as the server writes it: with answer workers, a write resolves once every
   * worker sees it (`answer-workers.ts`).
   */
  readonly store: DiscoveryStore;
  /**
   * The DNS listeners. With answer workers, `udp` and `tcp` are the workers' (the bound ports)
   * and `doh` this process's own.
   */
  readonly dns: DnsServer | undefined;
  /** The answer workers (`answerWorkers` past 1); undefined when this process answers alone. */
  readonly answerWorkers: AnswerWorkers | undefined;
  readonly api: RegistrationApi | undefined;
  readonly admin: AdminServer | undefined;
  /** The query log, when the config asks for one (`queryLog`). */
  readonly queryLog: QueryLog | undefined;
  /** The poller of the children's CDS (`cds` of the config; idle when `cds.enabled` is false). */
  readonly cds: CdsPoller;
  /** The key roller (`keys/key-roller.ts`), unless `dnssec.roller` is false. */
  readonly roller: KeyRoller | undefined;
  /** The control channel (`ctl`): its socket, and the admin port's key. */
  readonly control: ServerControl;
  /**
   * `ctl reload` and SIGHUP: re-reads the config file (`reloadConfig`) and the certificate and
   * key, swaps the TLS context of the DoH and registration listeners (open connections keep
   * theirs, so no query is dropped), and names the changed keys that need a restart, which keep
   * their old values. A config or certificate that cannot be used changes nothing and rejects.
   */
  reload(): Promise<ReloadReport>;
  /**
   * Stops the answer workers (asked, then killed past `ANSWER_WORKER_CLOSE_MS`), every listener
   * and the re-signing, writes what the query log holds, then closes the store.
   */
  close(): Promise<void>;
}

/** What a DP (or the root) uses besides its config. */
export interface DpComponents {
  /**
   * The clock of the whole server (whole seconds since the epoch): the store, the answerer, the
   * registrar, the answer cache and re-signing all read this one. Default `systemClock`.
   */
  now?: Clock;
  /** Default: JSON lines on stderr at the configured level. */
  log?: Logger;
  /** An already open store (tests); default the config's (`openConfiguredStore`). */
  store?: DiscoveryStore;
  /** The config file, for `status` and `reload`; undefined: `reload` re-reads the certificates only. */
  configFile?: string;
  /** Reads the config file again (`reload`); default: the config the server started with. */
  reloadConfig?: () => Promise<DpConfig>;
}

/** How often the background task looks for signatures to renew. */
export const RESIGN_INTERVAL_MS = 15 * 60 * 1000;

export { storeDirectory };

/**
 * The MSP zone of a DP that takes publications for other ranges (config `mspZone`), with the
 * lookup of their AUTHKEYs through its resolver; undefined without `mspZone`. The zone must be
 * one of the store's: a config naming another stops the start with a clear error.
 */
async function setUpMspZone(
  config: DpConfig,
  store: DiscoveryStore,
  components: { readonly now: Clock; readonly log: Logger },
): Promise<{ readonly zone: string; readonly authkeys: RangeAuthkeys } | undefined> {
  const msp = config.mspZone;
  if (msp === undefined) return undefined;
  const zone = canonicalName(msp.zone);
  if (!store.listZones().some((z) => canonicalName(z) === zone)) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `mspZone.zone: ${zone} is not a zone of this DP (its zones: ${store.listZones().join(', ') || 'none'})`,
      undefined,
    );
  }
  const ca = msp.ca === undefined ? undefined : await readFile(msp.ca, 'utf8');
  const authkeys = createRangeAuthkeys({
    resolver: msp.resolver,
    ...(ca === undefined ? {} : { ca }),
    apex: config.apex,
    cacheEntries: msp.authkeyCacheEntries,
    timeoutMs: msp.timeoutMs,
    now: components.now,
    log: components.log,
  });
  components.log.info('msp-zone', { zone, resolver: msp.resolver });
  return { zone, authkeys };
}

/** Starts a Discovery Provider or the root directory from a parsed config (`dpConfigSchema`). */
export async function startDp(config: DpConfig, components: DpComponents = {}): Promise<RunningDp> {
  const now = components.now ?? systemClock;
  const log = components.log ?? createLogger(`authoritative`, { level: config.log.level });
  const day = 86_400;
  const workerCount = answerWorkerCount(config.answerWorkers);
  if (workerCount > 1 && (components.store !== undefined || components.now !== undefined)) {
    // Workers open the configured store themselves and keep the system clock.
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      'answerWorkers: more than one answer worker needs the configured store and the system clock (no components.store, no components.now)',
      undefined,
    );
  }
  const store =
    components.store ??
    // PostgreSQL: the schema is created or upgraded here, at start (`pg-schema.ts`).
    (await openConfiguredStore(config, {
      // LMDB: writes on a thread of their own keep a burst of publishes from delaying answers;
      // a clock other than the system's (tests) keeps them inline, where it can be used.
      ...(components.now === undefined ? { writer: 'thread' as const } : { now }),
      log: log.child('store'),
    }));
  const started: Array<{ close(): Promise<void> }> = [];
  const startedAt = now();
  /** The query log: closed after the listeners, so that it has every query they answered. */
  let closeLast: { close(): Promise<void> } | undefined;
  try {
    const metrics = createAuthoritativeMetrics(store);
    // Earliest RRSIG expiry and key states per zone, from the store's signing state.
    metrics.watchZoneStatus(zoneStatusOf(store, { now }));
    const {
      handler,
      cache,
      limits: dpLimits,
    } = createAnswerPath(config, store, {
      now,
      log,
      metrics,
    });
    // Off unless configured (design §10); answering never waits for it (`query-log.ts`).
    const queryLog =
      config.queryLog === undefined
        ? undefined
        : openQueryLog(config.queryLog, { log: log.child('query-log') });
    if (queryLog !== undefined) metrics.watchQueryLog(queryLog);
    closeLast = queryLog;

    const tls = config.tls
      ? { cert: await readFile(config.tls.cert), key: await readFile(config.tls.key) }
      : undefined;
    const { host, doh, api, admin } = config.listen;
    // With answer workers, UDP and TCP are theirs; this process serves DoH.
    const udp = workerCount > 1 ? null : config.listen.udp;
    const tcp = workerCount > 1 ? null : config.listen.tcp;
    const limits = config.limits;
    // The root's zone is copied by resolvers (RFC 8806): it carries a ZONEMD (RFC 8976) that the
    // store keeps at every write, and is offered by AXFR and IXFR over TCP (`transfer.ts`).
    if (
      config.role === 'root' &&
      store.listZones().includes(canonicalName(config.apex)) &&
      (await keepZoneDigest(store, config.apex))
    ) {
      log.info('zone-digest-started', { zone: canonicalName(config.apex) });
    }
    // Zone transfers, TSIG and NOTIFY (`transfer-setup.ts`): the `transfer` section of the config.
    const transfers = await setUpTransfers(config, store, { now, log, metrics });
    const transfer = transfers?.handler;
    // The workers start once this process has written what its start writes (ZONEMD, NSEC3
    // chains): their store then opens on it.
    const workers =
      workerCount > 1
        ? await startAnswerWorkers(config, {
            count: workerCount,
            log: log.child('workers'),
            metrics,
          })
        : undefined;
    if (workers !== undefined) {
      started.push(workers);
      metrics.watchAnswerWorkers(workers);
    }
    const renew = workers?.renew;
    // `/metrics` and `ctl metrics` add the workers' answering counts to this process's.
    const registry =
      workers === undefined
        ? metrics.registry
        : aggregatedRegistry(metrics.registry, () => workers.metrics());
    /** What the server writes through: every write seen by the workers before it resolves. */
    const writes = renew === undefined ? store : storeWithAnswerWorkers(store, renew);
    const dnsConfig: DnsServerConfig = {
      host,
      ...(udp !== null
        ? { udp: { port: udp, ...(transfer === undefined ? {} : { transfer }) } }
        : {}),
      ...(tcp !== null
        ? { tcp: { port: tcp, ...limits.tcp, ...(transfer === undefined ? {} : { transfer }) } }
        : {}),
      ...(doh !== null && tls
        ? { doh: { port: doh, cert: tls.cert, key: tls.key, ...limits.doh } }
        : {}),
    };
    const anyDns = udp !== null || tcp !== null || (doh !== null && tls !== undefined);
    const own = anyDns
      ? await startDnsServer(dnsConfig, handler, {
          log: log.child('dns'),
          cache,
          ...(queryLog === undefined ? {} : { queryLog }),
          gate: dpLimits.gate,
          ...(dpLimits.rrl === undefined ? {} : { rrl: dpLimits.rrl }),
          ...(transfers === undefined ? {} : { tsig: transfers.tsig }),
        })
      : undefined;
    if (own) started.push(own);
    const dns = workers === undefined ? own : clusterDns(config.listen.host, workers, own);
    const notify = await transfers?.startNotify();
    if (notify !== undefined) started.push(notify);
    if (own?.tcp) metrics.watchConnections('tcp', own.tcp);
    if (dns?.doh) metrics.watchConnections('doh', dns.doh);

    let registrationApi: RegistrationApi | undefined;
    if (config.role === 'dp' && config.registration && api !== null) {
      const msp = await setUpMspZone(config, store, { now, log: log.child('range-authkeys') });
      if (msp !== undefined) started.push(msp.authkeys);
      const registrar = createRegistrar({
        store: writes,
        channels: channelsFrom(config),
        now,
        log: log.child('registration'),
        apex: config.apex,
        events: metrics.registration,
        ...(msp === undefined ? {} : { msp }),
        limits: {
          codeTtlSeconds: config.registration.codeTtlSeconds,
          maxAttemptsPerCode: config.registration.maxAttemptsPerCode,
          sendsPerCsiPerHour: config.registration.sendsPerCsiPerHour,
          requestsPerClientPerMinute: config.registration.requestsPerClientPerMinute,
        },
      });
      const page = loadRecipientPage(config.registration.page, log);
      registrationApi = await startRegistrationApi(
        { host, port: api, ...(tls ? { tls } : {}), ...limits.api },
        registrar,
        { log: log.child('api'), ...(page === undefined ? {} : { page }) },
      );
      started.push(registrationApi);
      metrics.watchConnections('api', registrationApi);
    }

    // The control channel: its key is read now (a bad key file stops the start); its socket
    // listens once the listeners it controls run.
    let nextResignAt: number | undefined;
    const refreshSeconds = config.signing.refreshDays * day;
    const reloader = createDpReload(config, {
      ...(components.configFile === undefined ? {} : { configFile: components.configFile }),
      ...(components.reloadConfig === undefined ? {} : { read: components.reloadConfig }),
      tlsListeners: () => [dns?.doh, registrationApi].filter((l) => l !== undefined),
      now,
      log,
    });
    const reload = reloader.reload;
    // The key roller starts below; the control channel reads it through this once it runs.
    const rollerOfControl: { current?: KeyRoller } = {};
    const control = await openServerControl(
      config.control,
      join(config.dataDir, CONTROL_SOCKET_NAME),
      dpControlHandlers({
        role: config.role,
        store: writes,
        now,
        startedAt,
        configFile: components.configFile,
        registry,
        listeners: () => [
          ...(dns?.udp ? [{ listener: 'udp', ...dns.udp }] : []),
          ...(dns?.tcp ? [{ listener: 'tcp', host: dns.tcp.host, port: dns.tcp.port }] : []),
          ...(dns?.doh ? [{ listener: 'doh', url: dns.doh.url }] : []),
          ...(registrationApi ? [{ listener: 'api', url: registrationApi.url }] : []),
          ...(adminServer ? [{ listener: 'admin', url: adminServer.url }] : []),
          ...(control.socket ? [{ listener: 'control', path: control.socket.path }] : []),
        ],
        reload,
        nextResign: () => nextResignAt,
        resignBefore: () => now() + refreshSeconds,
        lastReload: reloader.lastReload,
        roll: (origin) => {
          const status = rollerOfControl.current?.status(origin)[0];
          return status === undefined
            ? undefined
            : { phase: status.phase, nextEvent: status.nextEvent };
        },
      }),
      log.child('control'),
    );
    started.push(control);

    const adminServer =
      admin !== null
        ? await startAdminServer(
            { host, port: admin },
            {
              registry,
              health: () => ({
                ok: true,
                detail: { role: config.role, zones: store.listZones().length },
              }),
              log: log.child('admin'),
              control: { dispatcher: control.dispatcher, key: control.key },
            },
          )
        : undefined;
    if (adminServer) {
      started.push(adminServer);
      metrics.watchConnections('admin', adminServer);
    }

    // A DP's own prover AUTHKEY is renewed before it lapses (config `prover`), checked at once.
    if (config.role === 'dp') {
      const renewal = startAuthkeyRenewal({
        store: writes,
        policy: config.prover,
        ttl: config.authkeyTtl,
        now,
        log: log.child('authkeys'),
      });
      started.push({ close: () => renewal.stop() });
      void renewal.tick();
    }
    // The control socket listens before the first re-signing pass starts: that pass reads every
    // node of every zone, and the start would wait behind it.
    await control.listen();

    // RRSIGs are renewed well before they expire (design §5): a small pass every interval.
    let resigning: Promise<unknown> = Promise.resolve();
    const resign = (): void => {
      nextResignAt = now() + RESIGN_INTERVAL_MS / 1000;
      resigning = writes.resign(now() + refreshSeconds).catch((error: unknown) => {
        log.error('resign-failed', { error });
      });
    };
    const timer = setInterval(resign, RESIGN_INTERVAL_MS);
    timer.unref();
    // The first pass runs while the listeners answer: it reads every node of every zone, which
    // takes seconds for millions of names, and renewal is due a week before expiry anyway.
    resign();
    // The parent follows its children's CDS (RFC 7344, `zone/cds-poller.ts`).
    const cds = startCdsPoller({
      store: writes,
      config: config.cds,
      clock: now,
      log: log.child('cds'),
      metrics,
      state: openCdsState(join(config.dataDir, CDS_STATE_FILE)),
    });
    started.push({ close: () => cds.stop() });
    // Keys roll on the policy (design §5), in this process unless `dnssec.roller` is false (with
    // the PostgreSQL store, one front end rolls: the one that re-signs).
    const roller = config.dnssec.roller
      ? startKeyRoller({
          store: writes,
          policy: rolloverPolicyOf(config),
          parent: config.dnssec.parent,
          clock: now,
          log: log.child('keys'),
          parentless: config.role === 'root' ? [canonicalName(config.apex)] : [],
          checkIntervalSeconds: config.dnssec.checkIntervalSeconds,
        })
      : undefined;
    if (roller !== undefined) started.push({ close: () => roller.stop() });
    if (roller !== undefined) rollerOfControl.current = roller;
    log.info('started', {
      role: config.role,
      zones: store.listZones(),
      udp: dns?.udp?.port,
      tcp: dns?.tcp?.port,
      doh: dns?.doh?.url,
      api: registrationApi?.url,
      admin: adminServer?.url,
      control: control.socket?.path,
      answerWorkers: workerCount,
    });

    return {
      config,
      store: writes,
      dns,
      answerWorkers: workers,
      api: registrationApi,
      admin: adminServer,
      queryLog,
      cds,
      roller,
      control,
      reload,
      async close() {
        clearInterval(timer);
        // The workers first: nothing answers from the store once it closes.
        await workers?.close();
        await Promise.allSettled(started.map((s) => s.close()));
        await queryLog?.close();
        await resigning;
        if (!components.store) await store.close();
      },
    };
  } catch (error) {
    await Promise.allSettled(started.map((s) => s.close()));
    await closeLast?.close();
    if (!components.store) await store.close();
    throw error;
  }
}

/**
 * The DNS listeners of a DP with answer workers, as `RunningDp.dns` shows them: UDP and TCP are
 * the workers' (their bound ports; TCP's connection counts added up from the workers' last
 * reports), DoH this process's own. Closing it closes this process's listeners; the workers
 * stop with the server.
 */
function clusterDns(host: string, workers: AnswerWorkers, own: DnsServer | undefined): DnsServer {
  return {
    ...(workers.udp === undefined ? {} : { udp: { host, port: workers.udp } }),
    ...(workers.tcp === undefined
      ? {}
      : { tcp: { host, port: workers.tcp, connectionStats: () => workers.tcpStats() } }),
    ...(own?.doh === undefined ? {} : { doh: own.doh }),
    close: () => own?.close() ?? Promise.resolve(),
  };
}

/** The code channels a DP config names (design §8): outbox, SMTP for email, webhook for SMS. */
function channelsFrom(config: DpConfig): CodeChannels {
  const c = config.registration?.channels;
  const outbox = c?.outbox ? createOutboxChannel(c.outbox.path) : undefined;
  const smtp = c?.smtp
    ? createSmtpChannel({
        host: c.smtp.host,
        port: c.smtp.port,
        from: c.smtp.from,
        ...(c.smtp.secure !== undefined ? { secure: c.smtp.secure } : {}),
        ...(c.smtp.user !== undefined && c.smtp.password !== undefined
          ? { user: c.smtp.user, password: c.smtp.password }
          : {}),
      })
    : undefined;
  const webhook = c?.webhook
    ? createWebhookChannel({
        url: c.webhook.url,
        ...(c.webhook.headers ? { headers: c.webhook.headers } : {}),
      })
    : undefined;
  return {
    ...(webhook ? { tel: webhook } : {}),
    ...(smtp ? { mailto: smtp } : {}),
    ...(outbox ? { fallback: outbox } : {}),
  };
}
