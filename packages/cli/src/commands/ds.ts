import type { Command } from 'commander';
import { loadConfig, selectZones, withStore } from '../config-file.js';
import type { CommandEnv } from '../context.js';
import { dsJson, dsLine, zoneEntryDs, type DsJson } from '../ds-records.js';
import { zoneOf } from '../flag-values.js';

/**
 * `ds`: the DS records of each zone of a server's store, in presentation form, to hand to the
 * parent (`delegate --ds`): one per SEP key at the apex that is not revoked (RFC 5011 §2.1), so
 * during a key roll both keys' DS. With `--json`, a list of `{zone, keyTag, algorithm,
 * digestType, digest}` (digest in hex), one per such key.
 */

interface DsFlags {
  config?: string;
  zone?: string;
  json?: boolean;
}

/** Adds `ds` to `program`. */
export function registerDs(program: Command, env: CommandEnv): Command {
  return program
    .command('ds')
    .description("print the DS records of the store's zones, for the parent's delegation")
    .option('--config <file>', 'config file of the server (default: $MIMI_DISCOVERY_CONFIG)')
    .option('--zone <zone>', 'only this zone (a zone name, or a range such as +44)')
    .option('--json', 'print a JSON list of {zone, keyTag, algorithm, digestType, digest}')
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery ds --config ./net/dp44/config.json
  $ mimi-discovery ds --config ./net/dp/config.json --zone +44 --json`,
    )
    .action(async (flags: DsFlags) => {
      const { config } = await loadConfig(flags.config, env);
      const zone = flags.zone === undefined ? undefined : zoneOf('--zone', flags.zone, config.apex);
      const list = await withStore(config, env, (store) =>
        selectZones(store, zone).flatMap((z) => zoneEntryDs(store, z).map((ds) => ({ z, ds }))),
      );
      if (flags.json === true) {
        const out: DsJson[] = list.map(({ z, ds }) => dsJson(z, ds));
        env.out(`${JSON.stringify(out, null, 2)}\n`);
      } else {
        env.out(list.map(({ z, ds }) => `${dsLine(z, ds)}\n`).join(''));
      }
    });
}
