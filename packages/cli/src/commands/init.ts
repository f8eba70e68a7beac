import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { mkdir } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { join, resolve } from 'node:path';
import {
  ConfigError,
  DEFAULT_APEX,
  isSubdomain,
  parseConfig,
  record,
} from '@mimi-discovery/common';
import {
  DEFAULT_DOH_PATH_TEMPLATE,
  dpConfigSchema,
  MAX_NAMESERVERS_PER_DELEGATION,
  storeDirectory,
  type DiscoveryStore,
  type DpConfig,
  type NameserverSpec,
  type RRsetChange,
} from '@mimi-discovery/authoritative';
import { readResolverFiles, resolverConfigSchema } from '@mimi-discovery/resolver';
import { Option, type Command } from 'commander';
import { openStore } from '../config-file.js';
import type { CommandEnv } from '../context.js';
import { dsJson, dsJsonLine, zoneDs, type DsJson } from '../ds-records.js';
import { failure, usageError } from '../errors.js';
import { writeNew } from '../files.js';
import {
  collect,
  domainName,
  ipAddress,
  isPublishableAddress,
  listenHost,
  listenPort,
  nameserver,
  rangeZone,
  soaContact,
  text,
} from '../flag-values.js';
import { loadOrCreateCa, writeServerCertificate } from '../tls-material.js';

/**
 * `init root` and `init dp`: a new server in a new data directory, ready for `serve` —
 *
 * - `DIR/config.json`, valid under `dpConfigSchema`, with absolute paths;
 * - the LMDB store in `DIR/store` with the server's zones: the apex zone for the root, one zone
 *   per range for a DP; each with the nameservers of `--ns` (default `ns1.<zone>` at
 *   `--address`), every one in its apex NS RRset, those inside the zone with their addresses as
 *   glue and their DoH endpoint as `_dns.<nameserver>` SVCB when the DoH port is fixed (those
 *   outside it are listed without glue: their own zone holds their addresses, RFC 1034 §4.2.1);
 *   SOA MNAME `--soa-primary` (default the zone's first nameserver) and RNAME from
 *   `--soa-contact` (default `hostmaster.<zone>`);
 * - TLS when DoH or the registration API is served: the given certificate, or one issued by the
 *   local CA in `--ca-dir` (created there when absent) for `localhost`, `127.0.0.1`, `::1`, the
 *   nameservers' addresses and names, written to `DIR/server-cert.pem` and
 *   `DIR/server-key.pem`; with `--no-cert-addresses`, for the nameservers' names only, as a
 *   public CA issues one (resolvers send the name as SNI and verify the certificate against it
 *   while connecting to the glue address).
 *
 * Every zone of one `init` gets the same nameservers: a DP serving several ranges usually names
 * nameservers of its own domain, outside each zone (`--ns ns1.dp.example --ns ns2.dp.example`);
 * a nameserver named inside one of the zones is glue there and listed without glue in the
 * others. A nameserver inside a zone without an address, a name given twice, or more than
 * {@link MAX_NAMESERVERS_PER_DELEGATION} nameservers is refused before anything is created.
 *
 * It prints each zone's key tag and DS, for `delegate` in the parent. An existing
 * `DIR/config.json` or `DIR/store` is never overwritten (`ERR_CLI_EXISTS`). The config is
 * written last, so a run that fails leaves no config behind that would claim a usable server.
 */

interface CommonFlags {
  dir: string;
  apex: string;
  host: string;
  address?: string;
  ns: NameserverSpec[];
  soaContact?: string;
  soaPrimary?: string;
  udp?: number;
  tcp?: number;
  doh?: number;
  admin?: number;
  tlsCert?: string;
  tlsKey?: string;
  caDir?: string;
  certAddresses: boolean;
  json?: boolean;
}

interface DpFlags extends CommonFlags {
  range: string[];
  api?: number;
  outbox?: string;
  mspResolver?: string;
  mspResolverCa?: string;
  mspZone?: string;
}

/** What `init` creates. */
export interface InitSpec {
  role: DpConfig['role'];
  /** Absolute data directory. */
  dir: string;
  apex: string;
  zones: string[];
  host: string;
  /** Glue address of the default nameserver `ns1.<zone>`, when `nameservers` is empty. */
  address: string;
  /**
   * The nameservers of every zone, in order, their names canonical: addresses are required for
   * those inside a zone (glue). Empty: `ns1.<zone>` at `address`, for each zone.
   */
  nameservers: NameserverSpec[];
  /** SOA RNAME, in domain-name form (`hostmaster.example.org`); default `hostmaster.<zone>`. */
  rname?: string;
  /** SOA MNAME; default the zone's first nameserver. */
  mname?: string;
  ports: {
    udp: number | null;
    tcp: number | null;
    doh: number | null;
    api: number | null;
    admin: number | null;
  };
  tls: { cert: string; key: string } | { caDir: string } | undefined;
  /**
   * With a CA: the certificate also names `localhost`, 127.0.0.1, ::1 and the nameservers'
   * addresses (default true); false: the nameservers' names only.
   */
  certAddresses?: boolean;
  /** Absolute path of the development outbox (DPs). */
  outbox?: string;
  /**
   * The config's `mspZone` (DPs run by an MSP): the zone taking publications for other ranges,
   * the resolver their AUTHKEYs are checked through, and its CA file (absolute).
   */
  mspZone?: { zone: string; resolver: string; ca?: string };
}

/** A zone as `init` reports it. */
export interface InitZoneReport {
  zone: string;
  /** The first nameserver, and its first glue address (none when it is outside the zone). */
  nameserver: string;
  address?: string;
  /** Every nameserver, with the glue addresses the zone holds for it (none outside the zone). */
  nameservers: NameserverSpec[];
  soa: { mname: string; rname: string };
  keyTag: number;
  ds: DsJson[];
}

/** What `init` reports. */
export interface InitReport {
  role: DpConfig['role'];
  config: string;
  dataDir: string;
  zones: InitZoneReport[];
  tls?: { cert: string; key: string; ca?: string; caCreated?: boolean };
  outbox?: string;
}

/** Adds `init root` and `init dp` to `program`. */
export function registerInit(program: Command, env: CommandEnv): Command {
  const init = program
    .command('init')
    .description('create the data directory, config, store and TLS material of a new server');
  init.addHelpText(
    'after',
    `
Examples:
  $ mimi-discovery init root --dir ./net/root --udp 5300 --tcp 5300 --doh 8443 --ca-dir ./net/ca
  $ mimi-discovery init dp --dir ./net/dp44 --range +44 --udp 5301 --tcp 5301 --doh 8444 --api 8445 --ca-dir ./net/ca`,
  );

  const root = withServerFlags(
    init
      .command('root')
      .description(
        'create the root directory: its config, a store holding the apex zone, and TLS material',
      ),
  );
  root.addHelpText(
    'after',
    `
Examples:
  $ mimi-discovery init root --dir ./net/root --udp 5300 --tcp 5300
  $ mimi-discovery init root --dir ./net/root --apex mimi.test --udp 5300 --tcp 5300 --doh 8443 --ca-dir ./net/ca --json
  $ mimi-discovery init root --dir ./net/root --udp 53 --doh 443 --ca-dir ./net/ca \\
      --ns a.mimi.arpa=192.0.2.1,2001:db8::1 --ns b.mimi.arpa=198.51.100.1 --soa-contact hostmaster@example.org`,
  );
  root.action(async (flags: CommonFlags) => {
    await initServer(specFrom('root', flags, [flags.apex], env), Boolean(flags.json), env);
  });

  const dp = withServerFlags(
    init
      .command('dp')
      .description(
        'create a Discovery Provider: its config, a store with one zone per range, and TLS material',
      )
      .option(
        '--range <range>',
        'a range to serve (+44, @example.com); repeat for more',
        collect(text),
        [],
      )
      .option('--api <port>', 'registration API port (HTTPS)', listenPort)
      .option(
        '--outbox <file>',
        'file the one-time codes are appended to (default: DIR/outbox.jsonl)',
      )
      .option(
        '--msp-resolver <url>',
        "run by an MSP: take publications for CSIs of any range in the MSP's zone, checking their provers through this validating resolver (https://host:port/dns-query, or udp:// / tcp://127.0.0.1:port)",
      )
      .option(
        '--msp-resolver-ca <file>',
        'with a DoH --msp-resolver: the CA file its certificate is checked with',
      )
      .option(
        '--msp-zone <range>',
        'with --msp-resolver: the range whose zone takes those publications (default: the only --range)',
      ),
  );
  dp.addHelpText(
    'after',
    `
Examples:
  $ mimi-discovery init dp --dir ./net/dp44 --range +44 --udp 5301 --tcp 5301
  $ mimi-discovery init dp --dir ./net/dp --range +44 --range @example.com --doh 8444 --api 8445 --ca-dir ./net/ca
  $ mimi-discovery init dp --dir ./net/dp44 --range +44 --udp 53 --doh 443 --ca-dir ./net/ca \\
      --ns ns1.4.4.e164.mimi.arpa=192.0.2.53 --ns ns2.4.4.e164.mimi.arpa=198.51.100.53 --ns ns.dp.example
  $ mimi-discovery init dp --dir ./net/dp-msp --range @chat.example --api 8446 --ca-dir ./net/ca \\
      --msp-resolver https://127.0.0.1:8453/dns-query --msp-resolver-ca ./net/ca/ca.pem`,
  );
  dp.action(async (flags: DpFlags) => {
    if (flags.range.length === 0) {
      throw usageError('ERR_USAGE', 'init dp needs at least one --range (e.g. --range +44)');
    }
    const zones = flags.range.map((r) => rangeZone('--range', r, flags.apex));
    const spec = specFrom('dp', flags, [...new Set(zones)], env);
    spec.ports.api = flags.api ?? null;
    spec.outbox = resolve(env.cwd, flags.outbox ?? join(flags.dir, 'outbox.jsonl'));
    const msp = mspZoneOf(flags, spec.zones, env);
    if (msp !== undefined) spec.mspZone = msp;
    await initServer(spec, Boolean(flags.json), env);
  });

  init
    .command('resolver')
    .description(
      "create a resolver's config and TLS certificate, from the root's hints and trust anchor",
    )
    .requiredOption('--dir <dir>', 'directory of the new resolver (created when missing)')
    .requiredOption('--hints <file>', "the root hints ('mimi-discovery hints')")
    .requiredOption('--trust-anchor <file>', "the trust anchor ('mimi-discovery trust-anchor')")
    .option('--host <address>', 'address the listeners bind to', listenHost, '127.0.0.1')
    .option(
      '--name <host>',
      "a host name the resolver's certificate is issued for; repeat for more",
      collect(domainName),
      [],
    )
    .option('--udp <port>', 'DNS over UDP port (0: ephemeral)', listenPort)
    .option('--tcp <port>', 'DNS over TCP port (0: ephemeral)', listenPort)
    .option('--doh <port>', 'DNS over HTTPS port (needs TLS)', listenPort)
    .option('--api <port>', 'JSON API port (HTTPS, needs TLS)', listenPort)
    .option('--admin <port>', 'health and metrics port (plain HTTP)', listenPort)
    .addOption(new Option('--tls-cert <file>', 'TLS certificate chain (PEM)').conflicts('caDir'))
    .addOption(new Option('--tls-key <file>', 'TLS private key (PEM)').conflicts('caDir'))
    .option(
      '--ca-dir <dir>',
      "local CA directory that issues the resolver's certificate (created when absent); its ca.pem is also the upstream CA unless --upstream-ca",
    )
    .option(
      '--upstream-ca <file>',
      "CA certificates (PEM) trusted for DoH to the root and the DPs (default: --ca-dir's ca.pem, else the system's)",
    )
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery init resolver --dir ./net/resolver --hints ./net/root-hints.json \
      --trust-anchor ./net/root.key --ca-dir ./net/ca --udp 5353 --tcp 5353 --api 8453`,
    )
    .action(async (flags: ResolverFlags) => {
      await initResolver(resolverSpecFrom(flags, env), Boolean(flags.json), env);
    });
  return init;
}

interface ResolverFlags {
  dir: string;
  hints: string;
  trustAnchor: string;
  host: string;
  name: string[];
  udp?: number;
  tcp?: number;
  doh?: number;
  api?: number;
  admin?: number;
  tlsCert?: string;
  tlsKey?: string;
  caDir?: string;
  upstreamCa?: string;
  json?: boolean;
}

/** What `init resolver` creates; every path absolute. */
export interface ResolverInitSpec {
  dir: string;
  hints: string;
  trustAnchor: string;
  host: string;
  /** Host names the certificate is issued for, besides `localhost` and the loopback addresses. */
  names: string[];
  ports: {
    udp: number | null;
    tcp: number | null;
    doh: number | null;
    api: number | null;
    admin: number | null;
  };
  tls: { cert: string; key: string } | { caDir: string } | undefined;
  /** The CA file trusted for DoH upstream; undefined: the system's. */
  upstreamCa: string | undefined;
}

/** What `init resolver` reports. */
export interface ResolverInitReport {
  config: string;
  dir: string;
  tls?: { cert: string; key: string; ca?: string; caCreated?: boolean };
  upstreamCa?: string;
}

function resolverSpecFrom(flags: ResolverFlags, env: CommandEnv): ResolverInitSpec {
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw usageError('ERR_USAGE', '--tls-cert and --tls-key go together');
  }
  const at = (path: string): string => resolve(env.cwd, path);
  const tls =
    flags.tlsCert !== undefined && flags.tlsKey !== undefined
      ? { cert: at(flags.tlsCert), key: at(flags.tlsKey) }
      : flags.caDir !== undefined
        ? { caDir: at(flags.caDir) }
        : undefined;
  const upstreamCa =
    flags.upstreamCa !== undefined
      ? at(flags.upstreamCa)
      : flags.caDir !== undefined
        ? join(at(flags.caDir), 'ca.pem')
        : undefined;
  return {
    dir: at(flags.dir),
    hints: at(flags.hints),
    trustAnchor: at(flags.trustAnchor),
    host: flags.host,
    names: [...new Set(flags.name)],
    ports: {
      udp: flags.udp ?? null,
      tcp: flags.tcp ?? null,
      doh: flags.doh ?? null,
      api: flags.api ?? null,
      admin: flags.admin ?? null,
    },
    tls,
    upstreamCa,
  };
}

/**
 * Creates a resolver as `spec` says: `DIR/config.json` (valid under `resolverConfigSchema`, with
 * absolute paths to the hints, the trust anchor and the upstream CA) and, with a CA, its
 * certificate for `localhost`, 127.0.0.1, ::1, the listen address and the names given, in
 * `DIR/server-cert.pem` and `DIR/server-key.pem`. The hints and the anchor are read and checked
 * (`readResolverFiles`) before anything is written, so that a resolver is never configured with
 * files it cannot start from. An existing `DIR/config.json` is never overwritten; the config is
 * written last.
 */
export async function initResolver(
  spec: ResolverInitSpec,
  json: boolean,
  env: CommandEnv,
): Promise<void> {
  const configPath = join(spec.dir, 'config.json');
  const tlsPaths =
    spec.tls === undefined
      ? undefined
      : 'cert' in spec.tls
        ? spec.tls
        : { cert: join(spec.dir, 'server-cert.pem'), key: join(spec.dir, 'server-key.pem') };
  const raw = {
    rootHints: spec.hints,
    trustAnchor: spec.trustAnchor,
    ...(spec.upstreamCa === undefined ? {} : { ca: spec.upstreamCa }),
    listen: { host: spec.host, ...spec.ports },
    ...(tlsPaths === undefined ? {} : { tls: tlsPaths }),
  };
  try {
    parseConfig(resolverConfigSchema, raw, configPath);
  } catch (error) {
    if (error instanceof ConfigError && error.issues.some((issue) => issue.path === 'tls')) {
      throw usageError(
        'ERR_USAGE',
        `${spec.ports.doh !== null ? '--doh' : '--api'} needs TLS: give --tls-cert and --tls-key, or --ca-dir for a local CA`,
        error,
      );
    }
    if (error instanceof ConfigError && error.issues.some((issue) => issue.path === 'listen')) {
      throw usageError(
        'ERR_USAGE',
        'give at least one of --udp, --tcp, --doh and --api: the resolver would serve no one',
        error,
      );
    }
    throw error;
  }
  if (existsSync(configPath)) {
    throw failure(
      'ERR_CLI_EXISTS',
      `${configPath} exists: refusing to overwrite a resolver's config`,
    );
  }
  if (spec.tls !== undefined && 'cert' in spec.tls) {
    for (const file of [spec.tls.cert, spec.tls.key]) {
      if (!existsSync(file)) throw usageError('ERR_USAGE', `TLS file ${file} does not exist`);
    }
  }
  // A CA directory created below holds the upstream CA too: its file is checked after that.
  const caCreatedHere = spec.tls !== undefined && 'caDir' in spec.tls;
  await readResolverFiles({
    rootHints: spec.hints,
    trustAnchor: spec.trustAnchor,
    ...(spec.upstreamCa === undefined || caCreatedHere ? {} : { ca: spec.upstreamCa }),
  });

  await mkdir(spec.dir, { recursive: true });
  const report: ResolverInitReport = {
    config: configPath,
    dir: spec.dir,
    ...(spec.upstreamCa === undefined ? {} : { upstreamCa: spec.upstreamCa }),
  };
  if (spec.tls !== undefined && tlsPaths !== undefined) {
    if ('caDir' in spec.tls) {
      const ca = await loadOrCreateCa(spec.tls.caDir);
      const host = isIP(spec.host) !== 0 && spec.host !== '0.0.0.0' && spec.host !== '::';
      const written = await writeServerCertificate(ca.ca, spec.dir, {
        hostnames: ['localhost', ...spec.names],
        ipAddresses: [...new Set(['127.0.0.1', '::1', ...(host ? [spec.host] : [])])],
      });
      report.tls = { ...written, ca: ca.certPath, caCreated: ca.created };
    } else {
      report.tls = { ...tlsPaths };
    }
  }
  if (spec.upstreamCa !== undefined && caCreatedHere) {
    await readResolverFiles({
      rootHints: spec.hints,
      trustAnchor: spec.trustAnchor,
      ca: spec.upstreamCa,
    });
  }
  await writeNew(configPath, `${JSON.stringify(raw, null, 2)}\n`, 0o644);
  if (json) {
    env.out(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const lines = [`created a resolver in ${report.dir}`, `  config  ${report.config}`];
  if (report.tls) {
    lines.push(`  tls     ${report.tls.cert}`);
    if (report.tls.ca !== undefined) {
      lines.push(`  ca      ${report.tls.ca}${report.tls.caCreated === true ? ' (created)' : ''}`);
    }
  }
  if (report.upstreamCa !== undefined) lines.push(`  upstream CA  ${report.upstreamCa}`);
  env.out(`${lines.join('\n')}\n`);
}

/** The `mspZone` of `init dp`'s flags, or undefined without `--msp-resolver`. */
function mspZoneOf(flags: DpFlags, zones: readonly string[], env: CommandEnv): InitSpec['mspZone'] {
  if (flags.mspResolver === undefined) {
    for (const [given, flag] of [
      [flags.mspResolverCa, '--msp-resolver-ca'],
      [flags.mspZone, '--msp-zone'],
    ] as const) {
      if (given !== undefined) throw usageError('ERR_USAGE', `${flag} goes with --msp-resolver`);
    }
    return undefined;
  }
  let zone: string | undefined;
  if (flags.mspZone !== undefined) {
    zone = rangeZone('--msp-zone', flags.mspZone, flags.apex);
    if (!zones.includes(zone)) {
      throw usageError('ERR_USAGE', `--msp-zone ${flags.mspZone} is not one of the --range given`);
    }
  } else if (zones.length === 1) zone = zones[0];
  if (zone === undefined) {
    throw usageError(
      'ERR_USAGE',
      "--msp-resolver with several --range: name the MSP's with --msp-zone",
    );
  }
  return {
    zone,
    resolver: flags.mspResolver,
    ...(flags.mspResolverCa === undefined ? {} : { ca: resolve(env.cwd, flags.mspResolverCa) }),
  };
}

function withServerFlags(command: Command): Command {
  return command
    .requiredOption('--dir <dir>', 'data directory of the new server (created when missing)')
    .option('--apex <name>', 'apex of the namespace', domainName, DEFAULT_APEX)
    .option('--host <address>', 'address the listeners bind to', listenHost, '127.0.0.1')
    .addOption(
      new Option(
        '--address <ip>',
        'address published as glue for the default nameserver ns1.<zone> (default: --host when it is one IP, else 127.0.0.1)',
      )
        .argParser(ipAddress)
        .conflicts('ns'),
    )
    .addOption(
      new Option(
        '--ns <name=addr>',
        'a nameserver of every zone, NAME=ADDR[,ADDR] (NAME alone outside the zones); repeat for more',
      )
        .argParser(collect(nameserver))
        .default([], 'ns1.<zone> at --address'),
    )
    .option(
      '--soa-contact <mailbox>',
      "the zones' contact, as the SOA RNAME (default: hostmaster@<zone>)",
      soaContact,
    )
    .option(
      '--soa-primary <name>',
      "the zones' primary server, as the SOA MNAME (default: the first nameserver)",
      domainName,
    )
    .option('--udp <port>', 'plain DNS over UDP port (0: ephemeral)', listenPort)
    .option('--tcp <port>', 'plain DNS over TCP port (0: ephemeral)', listenPort)
    .option('--doh <port>', 'DNS over HTTPS port (needs TLS)', listenPort)
    .option('--admin <port>', 'health and metrics port (plain HTTP)', listenPort)
    .addOption(new Option('--tls-cert <file>', 'TLS certificate chain (PEM)').conflicts('caDir'))
    .addOption(new Option('--tls-key <file>', 'TLS private key (PEM)').conflicts('caDir'))
    .option(
      '--ca-dir <dir>',
      'local CA directory (ca.pem, ca-key.pem; created when absent) that issues the server certificate',
    )
    .option(
      '--no-cert-addresses',
      "with --ca-dir: a certificate for the nameservers' names only (as a public CA issues), without localhost and addresses",
    )
    .option('--json', 'print the result as JSON');
}

function specFrom(
  role: DpConfig['role'],
  flags: CommonFlags,
  zones: string[],
  env: CommandEnv,
): InitSpec {
  const ports = {
    udp: flags.udp ?? null,
    tcp: flags.tcp ?? null,
    doh: flags.doh ?? null,
    api: null,
    admin: flags.admin ?? null,
  };
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw usageError('ERR_USAGE', '--tls-cert and --tls-key go together');
  }
  const tls =
    flags.tlsCert !== undefined && flags.tlsKey !== undefined
      ? { cert: resolve(env.cwd, flags.tlsCert), key: resolve(env.cwd, flags.tlsKey) }
      : flags.caDir !== undefined
        ? { caDir: resolve(env.cwd, flags.caDir) }
        : undefined;
  const spec: InitSpec = {
    role,
    dir: resolve(env.cwd, flags.dir),
    apex: flags.apex,
    zones,
    host: flags.host,
    address: flags.address ?? (isPublishableAddress(flags.host) ? flags.host : '127.0.0.1'),
    nameservers: flags.ns,
    ...(flags.soaContact === undefined ? {} : { rname: flags.soaContact }),
    ...(flags.soaPrimary === undefined ? {} : { mname: flags.soaPrimary }),
    ports,
    tls,
    certAddresses: flags.certAddresses,
  };
  checkNameservers(spec);
  return spec;
}

/**
 * Refuses, as a usage error, nameservers that cannot make a zone: more than a delegation may
 * list, a name given twice, a name inside a zone without an address (it would need glue).
 */
function checkNameservers(spec: InitSpec): void {
  if (spec.nameservers.length > MAX_NAMESERVERS_PER_DELEGATION) {
    throw usageError(
      'ERR_USAGE',
      `--ns given ${spec.nameservers.length} times: a zone lists at most ${MAX_NAMESERVERS_PER_DELEGATION} nameservers`,
    );
  }
  const seen = new Set<string>();
  for (const ns of spec.nameservers) {
    if (seen.has(ns.name)) {
      throw usageError(
        'ERR_USAGE',
        `--ns ${ns.name} is given twice: give each nameserver once, with all its addresses (NAME=ADDR,ADDR)`,
      );
    }
    seen.add(ns.name);
    const zone = spec.zones.find((z) => isSubdomain(ns.name, z));
    if (zone !== undefined && ns.addresses.length === 0) {
      throw usageError(
        'ERR_USAGE',
        `--ns ${ns.name} is inside the zone ${zone} and needs its address as glue: --ns ${ns.name}=ADDR[,ADDR]`,
      );
    }
  }
}

/**
 * The nameservers of `zone` as `spec` gives them, each with the addresses published as glue in
 * the zone: those of a name inside it, none for a name outside it.
 */
export function zoneNameservers(spec: InitSpec, zone: string): NameserverSpec[] {
  const listed =
    spec.nameservers.length > 0
      ? spec.nameservers
      : [{ name: nameserverOf(zone), addresses: [spec.address] }];
  return listed.map((ns) => ({
    name: ns.name,
    addresses: isSubdomain(ns.name, zone) ? [...new Set(ns.addresses)] : [],
  }));
}

/**
 * Checks the config `init` is about to write against `dpConfigSchema`, which states its rules.
 * Here its TLS rule (`tls` is required with `listen.doh` or `listen.api`) is about flags, so it
 * is reported as a usage error naming the flags that give TLS material.
 */
function parseInitConfig(raw: unknown, configPath: string, spec: InitSpec): DpConfig {
  try {
    return parseConfig(dpConfigSchema, raw, configPath);
  } catch (error) {
    if (error instanceof ConfigError && error.issues.some((issue) => issue.path === 'tls')) {
      throw usageError(
        'ERR_USAGE',
        `${spec.ports.doh !== null ? '--doh' : '--api'} needs TLS: give --tls-cert and --tls-key, or --ca-dir for a local CA`,
        error,
      );
    }
    throw error;
  }
}

/** The nameserver `init` gives a zone. */
export function nameserverOf(zone: string): string {
  return `ns1.${zone}`;
}

/** Creates the server described by `spec` and prints the report. */
export async function initServer(spec: InitSpec, json: boolean, env: CommandEnv): Promise<void> {
  const configPath = join(spec.dir, 'config.json');
  // The config is checked before anything is looked at or created, with the paths it will hold.
  const tlsPaths =
    spec.tls === undefined
      ? undefined
      : 'cert' in spec.tls
        ? spec.tls
        : { cert: join(spec.dir, 'server-cert.pem'), key: join(spec.dir, 'server-key.pem') };
  const raw = {
    role: spec.role,
    dataDir: spec.dir,
    apex: spec.apex,
    listen: {
      host: spec.host,
      udp: spec.ports.udp,
      tcp: spec.ports.tcp,
      doh: spec.ports.doh,
      ...(spec.role === 'dp' ? { api: spec.ports.api } : {}),
      admin: spec.ports.admin,
    },
    ...(tlsPaths ? { tls: tlsPaths } : {}),
    ...(spec.role === 'dp' && spec.outbox !== undefined
      ? { registration: { channels: { outbox: { path: spec.outbox } } } }
      : {}),
    ...(spec.mspZone === undefined ? {} : { mspZone: spec.mspZone }),
  };
  const config = parseInitConfig(raw, configPath, spec);
  if (spec.mspZone?.ca !== undefined && !existsSync(spec.mspZone.ca)) {
    throw usageError('ERR_USAGE', `--msp-resolver-ca ${spec.mspZone.ca} does not exist`);
  }
  for (const path of [configPath, storeDirectory(spec.dir)]) {
    if (existsSync(path)) {
      throw failure('ERR_CLI_EXISTS', `${path} exists: refusing to overwrite a server's data`);
    }
  }
  if (spec.tls !== undefined && 'cert' in spec.tls) {
    for (const file of [spec.tls.cert, spec.tls.key]) {
      if (!existsSync(file)) throw usageError('ERR_USAGE', `TLS file ${file} does not exist`);
    }
  }

  await mkdir(spec.dir, { recursive: true });
  const report: InitReport = {
    role: spec.role,
    config: configPath,
    dataDir: spec.dir,
    zones: [],
    ...(spec.outbox !== undefined ? { outbox: spec.outbox } : {}),
  };
  // The certificate names every nameserver and every address given for one, since each may
  // be how a resolver reaches this server.
  const given =
    spec.nameservers.length > 0
      ? spec.nameservers
      : spec.zones.map((zone) => ({ name: nameserverOf(zone), addresses: [spec.address] }));
  const nameservers = [...new Set(given.map((ns) => ns.name))];
  if (spec.tls !== undefined && tlsPaths !== undefined) {
    if ('caDir' in spec.tls) {
      const ca = await loadOrCreateCa(spec.tls.caDir);
      const withAddresses = spec.certAddresses ?? true;
      const ipAddresses = withAddresses
        ? [...new Set(['127.0.0.1', '::1', ...given.flatMap((ns) => ns.addresses)])]
        : [];
      const written = await writeServerCertificate(ca.ca, spec.dir, {
        hostnames: withAddresses ? ['localhost', ...nameservers] : nameservers,
        ipAddresses,
      });
      report.tls = { ...written, ca: ca.certPath, caCreated: ca.created };
    } else {
      report.tls = { ...tlsPaths };
    }
  }

  const store = await openStore(config, env, { create: true });
  try {
    for (const zone of spec.zones) report.zones.push(await createZone(store, zone, spec));
  } finally {
    await store.close();
  }
  await writeNew(configPath, `${JSON.stringify(raw, null, 2)}\n`, 0o644);
  print(report, json, env);
}

async function createZone(
  store: DiscoveryStore,
  zone: string,
  spec: InitSpec,
): Promise<InitZoneReport> {
  const nameservers = zoneNameservers(spec, zone);
  const first = nameservers[0];
  if (first === undefined) throw new Error('init: a zone without a nameserver');
  const soa = { mname: spec.mname ?? first.name, rname: spec.rname ?? `hostmaster.${zone}` };
  const info = await store.addZone({
    origin: zone,
    nameservers: nameservers.map((ns) => ns.name),
    ...soa,
  });
  const changes: RRsetChange[] = [];
  for (const ns of nameservers) {
    if (ns.addresses.length === 0) continue;
    for (const type of ['A', 'AAAA'] as const) {
      const addresses = ns.addresses.filter((a) => isIPv6(a) === (type === 'AAAA'));
      if (addresses.length === 0) continue;
      const records = addresses.map((a) => record(ns.name, type, a, 3600));
      changes.push({ op: 'put', name: ns.name, type, records });
    }
    if (spec.ports.doh !== null && spec.ports.doh !== 0) {
      // RFC 9461: the zone publishes where its own nameservers speak DoH — this server's port,
      // which the zone's other nameservers, serving the same zone, are taken to share.
      const owner = `_dns.${ns.name}`;
      const params = {
        alpn: ['h2', 'http/1.1'],
        port: spec.ports.doh,
        dohpath: DEFAULT_DOH_PATH_TEMPLATE,
      };
      changes.push({
        op: 'put',
        name: owner,
        type: 'SVCB',
        records: [record(owner, 'SVCB', { priority: 1, target: ns.name, params }, 3600)],
      });
    }
  }
  if (changes.length > 0) await store.apply(zone, changes);
  const address = first.addresses[0];
  return {
    zone,
    nameserver: first.name,
    ...(address === undefined ? {} : { address }),
    nameservers,
    soa,
    keyTag: info.keyTag,
    ds: zoneDs(store, zone).map((ds) => dsJson(zone, ds)),
  };
}

function print(report: InitReport, json: boolean, env: CommandEnv): void {
  if (json) {
    env.out(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const what = report.role === 'root' ? 'the root directory' : 'a Discovery Provider';
  const lines = [`created ${what} in ${report.dataDir}`, `  config  ${report.config}`];
  if (report.tls) {
    lines.push(`  tls     ${report.tls.cert}`);
    if (report.tls.ca !== undefined) {
      lines.push(`  ca      ${report.tls.ca}${report.tls.caCreated === true ? ' (created)' : ''}`);
    }
  }
  if (report.outbox !== undefined) lines.push(`  outbox  ${report.outbox}`);
  for (const z of report.zones) {
    const listed = z.nameservers.map(
      (ns) => `${ns.name} (${ns.addresses.length > 0 ? ns.addresses.join(', ') : 'no glue'})`,
    );
    const what = listed.length === 1 ? 'nameserver' : 'nameservers';
    lines.push(`zone ${z.zone}: ${what} ${listed.join(', ')}, key tag ${z.keyTag}`);
    for (const ds of z.ds) {
      lines.push(`  ${dsJsonLine(ds)}`);
    }
  }
  env.out(`${lines.join('\n')}\n`);
}
