import { canonicalName } from '@mimi-discovery/common';
import {
  rolloverPolicyOf,
  rollZoneKey,
  zoneRollStatus,
  type DpConfig,
  type RollStatus,
} from '@mimi-discovery/authoritative';
import type { Command } from 'commander';
import { loadConfig, selectZones, withStore } from '../config-file.js';
import type { CommandEnv } from '../context.js';
import { domainName } from '../flag-values.js';
import { formatTable } from '../table.js';

/**
 * `keys roll` and `keys status`: a zone's signing key rollover (design §5, docs/operations.md
 * §8) by hand, and where each zone's roll stands, over `rollZoneKey` and `zoneRollStatus` of
 * the authoritative package.
 *
 * Both work on the store and key directory of the config, with the server stopped or running:
 * `keys roll` writes the new key and its timing into the key directory and has the store
 * publish it; a running server's roller reads the key directory again at its next tick and
 * carries the roll on (with the server stopped, it does so once the server starts). A roll
 * that cannot start (one already in progress, a zone without an active key) is refused with
 * one line and exit 2, and nothing is written.
 *
 * `--emergency` is for a compromised or lost key: the new key signs at once and the CDS names
 * only it; caches holding the old DNSKEY RRset fail on what the new key signs for up to its TTL
 * (docs/operations.md §8).
 */

interface RollFlags {
  config?: string;
  zone: string;
  emergency?: boolean;
  json?: boolean;
}

interface StatusFlags {
  config?: string;
  zone?: string;
  json?: boolean;
}

/** Whether `zone` of this server has a parent that holds its DS (not the root's apex). */
function hasParent(config: DpConfig, zone: string): boolean {
  return !(config.role === 'root' && canonicalName(zone) === canonicalName(config.apex));
}

/** A time as ISO 8601 (UTC), or `-`. */
function when(at: number | undefined): string {
  return at === undefined ? '-' : new Date(at * 1000).toISOString().replace('.000Z', 'Z');
}

/** One zone's roll as text: a line for the zone, a table of its keys. */
function statusText(status: RollStatus): string {
  const head = `${status.zone}: ${status.phase}${
    status.nextEvent === undefined ? '' : `, next step at ${when(status.nextEvent)}`
  }\n`;
  const rows = status.keys.map((k) => [
    String(k.keyTag),
    k.state,
    when(k.timing.publish),
    when(k.timing.active),
    when(k.timing.inactive),
    when(k.timing.syncPublish),
    when(k.timing.syncDelete),
    when(k.timing.revoke),
    when(k.timing.remove),
  ]);
  return (
    head +
    formatTable([
      ['KEY', 'STATE', 'PUBLISH', 'ACTIVE', 'INACTIVE', 'CDS', 'CDS-DELETE', 'REVOKE', 'REMOVE'],
      ...rows,
    ])
  );
}

/** Adds `keys roll` and `keys status` to the `keys` command. */
export function registerKeyRoll(keys: Command, env: CommandEnv): void {
  keys
    .command('roll')
    .description("start a rollover of a zone's signing key now (the policy's steps follow)")
    .option('--config <file>', 'config file of the DP or root (default: $MIMI_DISCOVERY_CONFIG)')
    .requiredOption('--zone <origin>', 'the zone', domainName)
    .option(
      '--emergency',
      'the key is compromised or lost: sign with the new key at once (a short gap, see docs)',
    )
    .option('--json', 'print the roll as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery keys roll --config ./net/dp44/config.json --zone 4.4.e164.mimi.arpa
  $ mimi-discovery keys roll --config ./net/dp44/config.json --zone 4.4.e164.mimi.arpa --emergency`,
    )
    .action(async (flags: RollFlags) => {
      const { config } = await loadConfig(flags.config, env);
      const zone = canonicalName(flags.zone);
      const status = await withStore(config, env, (store) => {
        selectZones(store, zone);
        return rollZoneKey(store, rolloverPolicyOf(config), zone, {
          now: env.now(),
          hasParent: hasParent(config, zone),
          ...(flags.emergency === true ? { emergency: true } : {}),
        });
      });
      if (flags.json === true) env.out(`${JSON.stringify(status, null, 2)}\n`);
      else {
        env.out(`${flags.emergency === true ? 'emergency roll' : 'roll'} started\n`);
        env.out(statusText(status));
      }
    });

  keys
    .command('status')
    .description("where each zone's key rollover stands: its phase, next step and keys")
    .option('--config <file>', 'config file of the DP or root (default: $MIMI_DISCOVERY_CONFIG)')
    .option('--zone <origin>', 'only this zone', domainName)
    .option('--json', 'print the status as JSON')
    .action(async (flags: StatusFlags) => {
      const { config } = await loadConfig(flags.config, env);
      const policy = rolloverPolicyOf(config);
      const statuses = await withStore(config, env, (store) =>
        selectZones(store, flags.zone === undefined ? undefined : canonicalName(flags.zone)).map(
          (zone) => zoneRollStatus(store, policy, zone, env.now(), hasParent(config, zone)),
        ),
      );
      if (flags.json === true) env.out(`${JSON.stringify(statuses, null, 2)}\n`);
      else env.out(statuses.map(statusText).join('\n'));
    });
}
