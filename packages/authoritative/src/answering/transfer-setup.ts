import {
  ConfigError,
  canonicalName,
  createTsigKey,
  createTsigKeyring,
  decodeSecret,
  parseTsigKeyFile,
  readConfigText,
  TsigError,
  type Clock,
  type Logger,
  type TransferHandler,
  type TsigKey,
  type TsigServerOptions,
} from '@mimi-discovery/common';
import type { DpConfig } from '../config.js';
import type { AuthoritativeMetrics } from '../metrics.js';
import type { DiscoveryStore } from '../store/store.js';
import { startNotifySender, type NotifySender } from './notify.js';
import { createTransferHandler } from './transfer.js';

/**
 * The `transfer` section of a server's config put to work (`startDp`): its TSIG keys read (a
 * `secretFile` too), the zones offered, the transfer handler of the TCP and UDP listeners, the
 * keys every listener verifies signed queries with, and the NOTIFY sender, each counted in the
 * server's metrics.
 *
 * The root offers its zone as it is (with its ZONEMD); a DP's zones are offered with the NSEC3
 * chain stock secondaries need to serve denials (design §5), which is turned on here, at start,
 * for each zone offered (`store.setNsec3`: a journaled write, so secondaries get the chain by
 * IXFR too; nothing is written when it is already on).
 */

/** What {@link setUpTransfers} gives the server. */
export interface TransferSetup {
  /** The zones offered, canonical. */
  readonly zones: readonly string[];
  /** For the TCP and UDP listeners. */
  readonly handler: TransferHandler;
  /** For every listener: the keys signed queries are verified with. */
  readonly tsig: TsigServerOptions;
  /** Starts sending NOTIFY to the configured secondaries (none configured: undefined). */
  startNotify(): Promise<NotifySender | undefined>;
}

/** What {@link setUpTransfers} uses besides the config and the store. */
export interface TransferSetupComponents {
  readonly now: Clock;
  readonly log: Logger;
  readonly metrics: AuthoritativeMetrics;
}

/**
 * Reads the keys and prepares the zones of `config.transfer`; undefined when the server offers
 * no transfer (no `transfer` section, or a root whose store lacks its apex). Rejects with
 * `ConfigError` for a key file that cannot be read or does not match its entry.
 */
export async function setUpTransfers(
  config: DpConfig,
  store: DiscoveryStore,
  components: TransferSetupComponents,
): Promise<TransferSetup | undefined> {
  const transfer = config.transfer;
  if (transfer === undefined) return undefined;
  const { now, log, metrics } = components;
  // The keys first: a key file that cannot be used stops the server whatever its zones.
  const keys = await Promise.all(transfer.keys.map((entry, i) => readKey(entry, i)));
  const apex = canonicalName(config.apex);
  const zones =
    config.role === 'root'
      ? store.listZones().filter((zone) => zone === apex)
      : (transfer.zones ?? store.listZones());
  if (zones.length === 0) return undefined;
  const missing = zones.find((zone) => !store.listZones().includes(zone));
  if (missing !== undefined) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `transfer.zones: the store holds no zone ${missing}`,
      undefined,
    );
  }
  const byName = new Map(keys.map((key) => [key.name, key]));
  if (config.role === 'dp') {
    for (const zone of zones) {
      const { serial } = await store.setNsec3(zone, true);
      log.info('nsec3-chain-kept', { zone, serial });
    }
  }
  const handler = createTransferHandler(
    store,
    {
      zones,
      ...(transfer.allow === undefined ? {} : { allow: transfer.allow }),
      keys: keys.map((key) => key.name),
      ...(transfer.requireKey === undefined ? {} : { requireKey: transfer.requireKey }),
      transfersPerClient: transfer.transfersPerClient,
      maxTransfers: transfer.maxTransfers,
    },
    {
      now,
      log: log.child('transfer'),
      onTransfer: (outcome, kind) => metrics.recordTransfer(outcome, kind),
    },
  );
  return {
    zones,
    handler,
    tsig: {
      keys: createTsigKeyring(keys),
      now,
      onRefused: (error) => metrics.recordTsigRefusal(error),
    },
    async startNotify() {
      if (transfer.notify.length === 0) return undefined;
      return startNotifySender(
        store,
        {
          zones,
          targets: transfer.notify.map((target) => ({
            address: target.address,
            port: target.port,
            ...(target.key === undefined ? {} : { key: byName.get(target.key) as TsigKey }),
          })),
          retries: transfer.notifyRetries,
          timeoutMs: transfer.notifyTimeoutMs,
          checkIntervalMs: transfer.notifyCheckIntervalMs,
        },
        {
          now,
          log: log.child('notify'),
          onSent: () => metrics.recordNotifySent(),
          onOutcome: (outcome) => metrics.recordNotify(outcome),
        },
      );
    },
  };
}

/** One entry of `transfer.keys` as a key: the inline secret, or the key file's. */
async function readKey(
  entry: NonNullable<DpConfig['transfer']>['keys'][number],
  index: number,
): Promise<TsigKey> {
  const where = `transfer.keys[${index}]`;
  if (entry.secret !== undefined) {
    return createTsigKey(entry.name, entry.algorithm, decodeSecret(entry.secret));
  }
  const path = entry.secretFile as string;
  const text = await readConfigText(path, `${where}.secretFile`);
  let key: TsigKey;
  try {
    key = parseTsigKeyFile(text);
  } catch (error) {
    if (!(error instanceof TsigError)) throw error;
    throw new ConfigError('ERR_CONFIG_INVALID', `${where}.secretFile: ${error.message}`, path, [], {
      cause: error,
    });
  }
  if (key.name !== entry.name || key.algorithm !== entry.algorithm) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `${where}.secretFile: the file holds key ${key.name} (${key.algorithm}), not ${entry.name} (${entry.algorithm})`,
      path,
    );
  }
  return key;
}
