import { join } from 'node:path';
import {
  canonicalName,
  isSubdomain,
  parentName,
  silentLogger,
  type DsData,
} from '@mimi-discovery/common';
import {
  CDS_STATE_FILE,
  DEFAULT_DOH_PATH_TEMPLATE,
  delegate,
  listDelegations,
  openCdsState,
  pollChildCds,
  undelegate,
  type DelegationSpec,
  type DiscoveryStore,
  type NameserverSpec,
} from '@mimi-discovery/authoritative';
import type { Command } from 'commander';
import { loadConfig, selectZones, withStore, type LoadedConfig } from '../config-file.js';
import type { CommandEnv } from '../context.js';
import { dsJson, dsLine, zoneDs, type DsJson } from '../ds-records.js';
import { failure, usageError } from '../errors.js';
import {
  collect,
  dsData,
  isPublishableAddress,
  nameserver,
  rangeZone,
  remotePort,
  zoneOf,
} from '../flag-values.js';
import { formatTable } from '../table.js';

/**
 * `delegate`, `undelegate` and `delegations`: the delegations of a parent zone — the root's
 * apex zone, or for a DP (sub-delegation) its zone that contains the range — made, removed and
 * listed through `delegate`, `undelegate` and `listDelegations` of the authoritative package.
 *
 * The child's facts come from flags (`--ns NAME=ADDR`, `--ds "KEYTAG 15 2 HEX"`) or straight
 * from the child's data directory (`--ns-from`, `--ds-from` with the child's config): every
 * nameserver of its apex NS RRset, with the glue and `_dns` SVCB its zone holds for those inside
 * it (else its config's listen address and DoH port), its DS from its key. Both may be given:
 * an `--ns` overrides the child's nameserver of the same name (its addresses, and the DoH port
 * of `--doh-port`) and adds any other, e.g. the address of a nameserver that lies outside the
 * child's zone but inside the parent's, which the child cannot supply as glue.
 *
 * A running parent server sees the change from its next query on: the LMDB store caches no
 * zone data in memory, and LMDB readers in another process see each commit from their next
 * read transaction (see packages/cli/README.md, "Running servers").
 */

interface DelegateFlags {
  config?: string;
  range: string;
  ns: NameserverSpec[];
  nsFrom?: string;
  dohPort?: number;
  dohPath?: string;
  ds: DsData[];
  dsFrom?: string;
  dsFromCds?: boolean;
  json?: boolean;
}

interface UndelegateFlags {
  config?: string;
  range: string;
  json?: boolean;
}

interface ListFlags {
  config?: string;
  zone?: string;
  json?: boolean;
}

/** A delegation as JSON. */
export interface DelegationJson {
  parent: string;
  zone: string;
  nameservers: NameserverSpec[];
  ds: DsJson[];
}

/** Adds `delegate`, `undelegate` and `delegations` to `program`. */
export function registerDelegation(program: Command, env: CommandEnv): void {
  program
    .command('delegate')
    .description(
      "add or replace the delegation of a range in the parent's zone (NS, DS, glue, DoH)",
    )
    .option(
      '--config <file>',
      'config file of the parent (root or DP; default: $MIMI_DISCOVERY_CONFIG)',
    )
    .requiredOption('--range <range>', 'the range to delegate (+44, @example.com)')
    .option(
      '--ns <name=addr>',
      'a nameserver of the child, NAME=ADDR[,ADDR] (NAME alone outside the parent zone); repeat for more',
      collect(nameserver),
      [],
    )
    .option(
      '--ns-from <config>',
      "take every nameserver of the child's zone from its config and store (--ns overrides by name)",
    )
    .option('--doh-port <port>', 'DoH port of the --ns nameservers (default 443)', remotePort)
    .option(
      '--doh-path <path>',
      `DoH path template of the --ns nameservers (default ${DEFAULT_DOH_PATH_TEMPLATE})`,
    )
    .option(
      '--ds <rdata>',
      'DS of the child, "KEYTAG 15 2 HEX" or a line of `ds`; repeat for more',
      collect(dsData),
      [],
    )
    .option('--ds-from <config>', "take the DS from the child's config and store")
    .option(
      '--ds-from-cds',
      "replace the DS of an existing delegation with what the child's signed CDS/CDNSKEY asks for, checked as the parent's poller checks it (RFC 7344)",
    )
    .option('--json', 'print the delegation as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery delegate --config ./net/root/config.json --range +44 \\
      --ns-from ./net/dp44/config.json --ds-from ./net/dp44/config.json
  $ mimi-discovery delegate --config ./net/root/config.json --range +44 \\
      --ns ns1.4.4.e164.mimi.arpa=192.0.2.53 --doh-port 8444 --ds "53568 15 2 0a9022b4…"
  $ mimi-discovery delegate --config ./net/root/config.json --range +44 \\
      --ns ns1.4.4.e164.mimi.arpa=192.0.2.53,2001:db8::53 --ns ns2.4.4.e164.mimi.arpa=198.51.100.53 \\
      --ns ns.dp.example --doh-port 8444 --ds-from ./net/dp44/config.json
  $ mimi-discovery delegate --config ./net/root/config.json --range +44 --ds-from-cds`,
    )
    .action(async (flags: DelegateFlags) => {
      const parent = await loadConfig(flags.config, env);
      const zone = rangeZone('--range', flags.range, parent.config.apex);
      if (flags.dsFromCds === true) {
        await dsFromCds(parent, zone, flags, env);
        return;
      }
      const spec = await delegationSpec(zone, flags, env);
      const result = await withStore(parent.config, env, async (store) => {
        const origin = parentZone(store, zone, parent);
        const { serial } = await delegate(store, origin, spec);
        const stored = listDelegations(store, origin).find((d) => d.zone === zone) ?? spec;
        return { origin, serial, stored };
      });
      const json = { ...toJson(result.origin, result.stored), serial: result.serial };
      if (flags.json === true) env.out(`${JSON.stringify(json, null, 2)}\n`);
      else {
        env.out(`delegated ${zone} from ${result.origin} (serial ${result.serial})\n`);
        env.out(table([json]));
      }
    });

  program
    .command('undelegate')
    .description("remove the delegation of a range from the parent's zone")
    .option('--config <file>', 'config file of the parent (default: $MIMI_DISCOVERY_CONFIG)')
    .requiredOption('--range <range>', 'the delegated range (+44, @example.com)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery undelegate --config ./net/root/config.json --range +44`,
    )
    .action(async (flags: UndelegateFlags) => {
      const parent = await loadConfig(flags.config, env);
      const zone = rangeZone('--range', flags.range, parent.config.apex);
      const result = await withStore(parent.config, env, async (store) => {
        const origin = parentZone(store, zone, parent);
        return { origin, ...(await undelegate(store, origin, zone)) };
      });
      if (flags.json === true) {
        env.out(
          `${JSON.stringify({ parent: result.origin, zone, serial: result.serial }, null, 2)}\n`,
        );
      } else
        env.out(
          `removed the delegation of ${zone} from ${result.origin} (serial ${result.serial})\n`,
        );
    });

  program
    .command('delegations')
    .description("list the delegations in the store's zones")
    .option('--config <file>', 'config file of the server (default: $MIMI_DISCOVERY_CONFIG)')
    .option('--zone <zone>', 'only the delegations in this zone (a zone name or a range)')
    .option('--json', 'print a JSON list of {parent, zone, nameservers, ds}')
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery delegations --config ./net/root/config.json
  $ mimi-discovery delegations --config ./net/dp/config.json --zone +44 --json`,
    )
    .action(async (flags: ListFlags) => {
      const { config } = await loadConfig(flags.config, env);
      const zone = flags.zone === undefined ? undefined : zoneOf('--zone', flags.zone, config.apex);
      const list = await withStore(config, env, (store) =>
        selectZones(store, zone).flatMap((origin) =>
          listDelegations(store, origin).map((d) => toJson(origin, d)),
        ),
      );
      if (flags.json === true) env.out(`${JSON.stringify(list, null, 2)}\n`);
      else if (list.length === 0) env.out('no delegations\n');
      else env.out(table(list));
    });
}

/**
 * `delegate --ds-from-cds`: the check the parent's CDS poller makes (`pollChildCds`), for one
 * child and now, with the parent's `cds` config and replay state; applies the DS the child's CDS
 * asks for and prints it. A refusal is a failure naming why; "unchanged" and "no CDS" are not.
 */
async function dsFromCds(
  parent: LoadedConfig,
  zone: string,
  flags: DelegateFlags,
  env: CommandEnv,
): Promise<void> {
  if (
    flags.ns.length > 0 ||
    flags.ds.length > 0 ||
    flags.nsFrom !== undefined ||
    flags.dsFrom !== undefined
  ) {
    throw usageError(
      'ERR_USAGE',
      '--ds-from-cds changes only the DS of an existing delegation: give no --ns, --ns-from, --ds or --ds-from',
    );
  }
  const { config } = parent;
  const result = await withStore(config, env, async (store) => {
    const origin = parentZone(store, zone, parent);
    const current = listDelegations(store, origin).find((d) => d.zone === zone);
    if (current === undefined || current.ds.length === 0) {
      throw failure(
        'ERR_CLI_NO_DELEGATION',
        `${zone} has no signed delegation in ${origin}: a CDS is followed only from a DS already there (no bootstrapping)`,
      );
    }
    const polled = await pollChildCds(origin, current, {
      store,
      config: config.cds,
      clock: env.now,
      log: env.log ?? silentLogger,
      state: openCdsState(join(config.dataDir, CDS_STATE_FILE)),
    });
    return { origin, polled, serial: store.zoneInfo(origin)?.serial };
  });
  const { polled, origin, serial } = result;
  const applied = polled.outcome === 'updated' || polled.outcome === 'deleted';
  if (!applied && polled.outcome !== 'unchanged' && polled.outcome !== 'no-cds') {
    throw failure(
      'ERR_CLI_CDS_REFUSED',
      `the CDS of ${zone} was not applied: ${polled.outcome}${polled.detail === undefined ? '' : ` (${polled.detail})`}`,
    );
  }
  const ds = polled.ds ?? [];
  if (flags.json === true) {
    env.out(
      `${JSON.stringify(
        {
          parent: origin,
          zone,
          outcome: polled.outcome,
          ds: ds.map((d) => dsJson(zone, d)),
          ...(applied ? { serial } : {}),
        },
        null,
        2,
      )}\n`,
    );
    return;
  }
  const what =
    polled.outcome === 'updated'
      ? `replaced the DS of ${zone} in ${origin} from its CDS (serial ${serial})`
      : polled.outcome === 'deleted'
        ? `removed the DS of ${zone} from ${origin}, as its CDS asks (RFC 8078; serial ${serial})`
        : polled.outcome === 'unchanged'
          ? `the CDS of ${zone} names the DS ${origin} already holds: nothing to change`
          : `${zone} publishes no CDS or CDNSKEY: nothing to change`;
  env.out(`${what}\n`);
  for (const d of ds) env.out(`${dsLine(zone, d)}\n`);
}

/** The zone of the parent's store that the delegation of `zone` goes into. */
function parentZone(store: DiscoveryStore, zone: string, parent: LoadedConfig): string {
  const above = parentName(zone);
  const origin = above === undefined ? undefined : store.findZone(above);
  if (origin === undefined) {
    throw failure(
      'ERR_CLI_NO_ZONE',
      `no zone of ${parent.path} contains ${zone} (it holds ${store.listZones().join(', ') || 'none'})`,
    );
  }
  return origin;
}

/** The delegation from the flags, with what `--ns-from` and `--ds-from` read from the child. */
async function delegationSpec(
  zone: string,
  flags: DelegateFlags,
  env: CommandEnv,
): Promise<DelegationSpec> {
  if (flags.ns.length === 0 && flags.nsFrom === undefined) {
    throw usageError('ERR_USAGE', 'delegate needs --ns NAME=ADDR or --ns-from CHILD_CONFIG');
  }
  if (flags.ds.length === 0 && flags.dsFrom === undefined) {
    throw usageError(
      'ERR_USAGE',
      'delegate needs --ds "KEYTAG 15 2 HEX" or --ds-from CHILD_CONFIG',
    );
  }
  const doh =
    flags.dohPort !== undefined || flags.dohPath !== undefined
      ? { port: flags.dohPort ?? 443, path: flags.dohPath ?? DEFAULT_DOH_PATH_TEMPLATE }
      : undefined;
  const given = flags.ns.map((ns) => (doh ? { ...ns, doh } : ns));
  const ds = [...flags.ds];
  const nameservers =
    flags.nsFrom === undefined
      ? given
      : overrideByName(await childNameservers(flags.nsFrom, zone, env), given);
  if (flags.dsFrom !== undefined) ds.push(...(await childDs(flags.dsFrom, zone, env)));
  return { zone, nameservers, ds };
}

/**
 * `base` with each nameserver of `given` in place of the one of the same name, and the others
 * of `given` after them. A name `given` twice stays twice, for `delegate` to refuse.
 */
function overrideByName(
  base: readonly NameserverSpec[],
  given: readonly NameserverSpec[],
): NameserverSpec[] {
  const names = new Set(given.map((ns) => ns.name));
  return [...base.filter((ns) => !names.has(ns.name)), ...given];
}

/**
 * The nameservers of the child's zone, every name of its apex NS RRset: for a name inside the
 * zone, its addresses from the zone's glue (else the config's listen address) and its DoH
 * endpoint from the zone's `_dns.<name>` SVCB (else the config's DoH port); a name outside the
 * zone with neither, since the child holds no glue for it.
 */
async function childNameservers(
  path: string,
  zone: string,
  env: CommandEnv,
): Promise<NameserverSpec[]> {
  const child = await loadConfig(path, env);
  const { host, doh } = child.config.listen;
  if (doh === 0) {
    throw usageError(
      'ERR_CLI_EPHEMERAL_PORT',
      `${child.path} has listen.doh 0 (an ephemeral port), which cannot be published: set a fixed port or give --ns and --doh-port`,
    );
  }
  if (doh === null) {
    env.err(
      `mimi-discovery: warning: ${child.path} serves no DoH; the delegation's _dns SVCB names port 443\n`,
    );
  }
  return withStore(child.config, env, (store) => {
    requireChildZone(store, zone, child);
    return store.readRRset(zone, zone, 'NS').flatMap((rr): NameserverSpec[] => {
      if (rr.type !== 'NS') return [];
      const name = canonicalName(rr.data);
      if (!isSubdomain(name, zone)) return [{ name, addresses: [] }];
      let addresses = [
        ...store.readRRset(zone, name, 'A'),
        ...store.readRRset(zone, name, 'AAAA'),
      ].flatMap((a) => (a.type === 'A' || a.type === 'AAAA' ? [a.data] : []));
      if (addresses.length === 0 && isPublishableAddress(host)) {
        addresses = [host];
      }
      const svcb = store
        .readRRset(zone, `_dns.${name}`, 'SVCB')
        .find((r) => r.type === 'SVCB' && r.data.priority > 0);
      const params = svcb?.type === 'SVCB' ? svcb.data.params : undefined;
      const published =
        params?.port === undefined
          ? undefined
          : {
              port: params.port,
              path: params.dohpath ?? DEFAULT_DOH_PATH_TEMPLATE,
              ...(params.alpn === undefined ? {} : { alpn: [...params.alpn] }),
            };
      const endpoint =
        published ?? (doh !== null ? { port: doh, path: DEFAULT_DOH_PATH_TEMPLATE } : undefined);
      return [{ name, addresses, ...(endpoint === undefined ? {} : { doh: endpoint }) }];
    });
  });
}

async function childDs(path: string, zone: string, env: CommandEnv): Promise<DsData[]> {
  const child = await loadConfig(path, env);
  return withStore(child.config, env, (store) => {
    requireChildZone(store, zone, child);
    return zoneDs(store, zone);
  });
}

function requireChildZone(store: DiscoveryStore, zone: string, child: LoadedConfig): void {
  if (!store.listZones().includes(zone)) {
    throw failure(
      'ERR_CLI_NO_ZONE',
      `the child ${child.path} holds no zone ${zone} (it holds ${store.listZones().join(', ') || 'none'})`,
    );
  }
}

function toJson(parent: string, d: DelegationSpec): DelegationJson {
  return {
    parent,
    zone: d.zone,
    nameservers: d.nameservers,
    ds: d.ds.map((ds) => dsJson(d.zone, ds)),
  };
}

function table(list: readonly DelegationJson[]): string {
  const rows = [['ZONE', 'NAMESERVER', 'ADDRESSES', 'DOH', 'DS']];
  for (const d of list) {
    const ds = d.ds.map((x) => `${x.keyTag} ${x.algorithm} ${x.digestType}`).join(', ');
    d.nameservers.forEach((ns, i) => {
      rows.push([
        i === 0 ? d.zone : '',
        ns.name,
        ns.addresses.join(',') || '-',
        ns.doh ? `${ns.doh.port}${ns.doh.path ?? ''}` : '-',
        i === 0 ? ds : '',
      ]);
    });
  }
  return formatTable(rows);
}
