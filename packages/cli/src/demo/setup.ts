import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  maprefTargetName,
  parseCsi,
  parsePublicKeyFile,
  silentLogger,
  unexpiredKeys,
} from '@mimi-discovery/common';
import { lastOutboxCode } from '@mimi-discovery/authoritative';
import type { CliContext, CliResult, CommandEnv } from '../context.js';
import { failure } from '../errors.js';
import { loadOrCreateCa, writeServerCertificate } from '../tls-material.js';
import type { NetworkPaths } from './network-file.js';
import {
  DEMO_APEX,
  DEMO_HOST,
  DEMO_ISSUER_USERS,
  DEMO_PERIOD_SECONDS,
  DEMO_TOKENS_PER_PERIOD,
  GATEWAY_KEY_NAME,
  ISSUER_KEY_NAME,
  MSP_ZONE,
  RELAY_GATEWAY_NAME,
  type PlannedServer,
} from './plan.js';

/**
 * Building the demonstration network with the command line's own commands, run in-process
 * (`init`, `delegate --ns-from --ds-from`, `trust-anchor`, `hints`, `issuer add-user`,
 * `keys publish`, `recipient …`): the same steps an operator types, in the order
 * packages/cli/README.md and docs/operations.md §3.1, §10, §11, §17 give them. What no command
 * does is done here and said so: the config files of the resolver (with its gateway), the issuer
 * and the relay. The MSP's DP (`dp-msp`) is initialised with `--msp-resolver` (the demo's
 * resolver, over DoH with the demo's CA), so it takes the mappings of its clients through its
 * registration API like any DP (docs/operations.md §17).
 */

/** Runs one command line of `mimi-discovery` in-process. */
export type RunCli = (argv: readonly string[], context?: CliContext) => Promise<CliResult>;

/** A command runner bound to the network's directory that fails on a non-zero exit. */
export interface StepRunner {
  /** Runs `argv` and returns its stdout; a failure names the command and its error line. */
  ok(argv: readonly string[]): Promise<string>;
  /** Runs `argv` and returns its result, whatever the exit code. */
  run(argv: readonly string[]): Promise<CliResult>;
}

/** Binds `runCli` to `dir`, quietly (no logs, no `$MIMI_DISCOVERY_CONFIG`). */
export function stepRunner(runCli: RunCli, dir: string, env: CommandEnv): StepRunner {
  const run = (argv: readonly string[]): Promise<CliResult> =>
    runCli(argv, { cwd: dir, env: {}, log: silentLogger, now: env.now });
  return {
    run,
    async ok(argv) {
      const result = await run(argv);
      if (result.exitCode !== 0) {
        throw failure(
          'ERR_CLI_DEMO_SETUP',
          `'mimi-discovery ${argv.join(' ')}' failed: ${result.stderr.trim().replace(/^mimi-discovery: /, '')}`,
        );
      }
      return result.stdout;
    },
  };
}

function serverNamed(plan: readonly PlannedServer[], name: string): PlannedServer {
  const found = plan.find((s) => s.name === name);
  if (found === undefined) throw new Error(`the plan has no server ${name}`);
  return found;
}

/** `--udp`, `--tcp` and `--doh` of `init` for `s`: a server of the tree speaks DNS. */
function dnsPorts(s: PlannedServer): { dns: number; doh: number } {
  if (s.ports.dns === null || s.ports.doh === null) {
    throw new Error(`${s.name} has no DNS ports in the plan`);
  }
  return { dns: s.ports.dns, doh: s.ports.doh };
}

/**
 * Creates every server's directory, config, store and TLS material, the delegations from the
 * root (and from the +1 DP to the +1202 DP), the trust anchor in both formats, the root hints,
 * the resolver's config with its gateway, the issuer's config with its users (and their
 * credential files), and the relay's config. Nothing runs yet.
 */
export async function createServers(
  plan: readonly PlannedServer[],
  paths: NetworkPaths,
  run: StepRunner,
): Promise<void> {
  for (const s of plan) {
    if (s.role !== 'root' && s.role !== 'dp') continue;
    const { dns, doh } = dnsPorts(s);
    const ports = [
      ['--udp', dns],
      ['--tcp', dns],
      ['--doh', doh],
      ['--admin', s.ports.admin],
      ...(s.ports.api === null ? [] : [['--api', s.ports.api]]),
    ].flatMap(([flag, port]) => [String(flag), String(port)]);
    const ranges = s.ranges.flatMap((r) => ['--range', r]);
    // The MSP's DP checks the provers of other ranges through the demo's own resolver (DoH).
    const msp =
      s.name === 'dp-msp'
        ? [
            '--msp-resolver',
            `https://${DEMO_HOST}:${dnsPorts(serverNamed(plan, 'resolver')).doh}/dns-query`,
            '--msp-resolver-ca',
            paths.ca,
          ]
        : [];
    await run.ok([
      'init',
      s.role === 'root' ? 'root' : 'dp',
      '--dir',
      paths.dataDirOf(s.name),
      '--apex',
      DEMO_APEX,
      '--host',
      DEMO_HOST,
      ...ranges,
      ...ports,
      '--ca-dir',
      paths.caDir,
      ...msp,
    ]);
  }
  // Parents after children exist; a DP's sub-delegation goes into its own zone.
  for (const s of plan) {
    if (s.parent === undefined) continue;
    for (const range of s.ranges) {
      await run.ok([
        'delegate',
        '--config',
        paths.configOf(s.parent),
        '--range',
        range,
        '--ns-from',
        paths.configOf(s.name),
        '--ds-from',
        paths.configOf(s.name),
      ]);
    }
  }
  const root = paths.configOf('root');
  await run.ok(['trust-anchor', '--config', root, '--out', paths.trustAnchor]);
  await run.ok([
    'trust-anchor',
    '--config',
    root,
    '--format',
    'bind',
    '--out',
    paths.bindTrustAnchor,
  ]);
  await run.ok(['hints', '--config', root, '--out', paths.hints]);
  const issuer = serverNamed(plan, 'issuer');
  await writeResolverConfig(serverNamed(plan, 'resolver'), issuer, paths);
  await writeIssuerConfig(issuer, paths);
  for (const id of DEMO_ISSUER_USERS) {
    await run.ok([
      'issuer',
      'add-user',
      '--config',
      paths.configOf(issuer.name),
      '--id',
      id,
      '--credential-out',
      paths.credentialOf(id),
    ]);
  }
  await writeRelayConfig(serverNamed(plan, 'relay'), serverNamed(plan, 'resolver'), paths);
}

/** `host:port` of a server's API port: the issuer's name, the gateway's ODoH target. */
export function apiAuthority(s: PlannedServer): string {
  if (s.ports.api === null) throw new Error(`${s.name} has no API port`);
  return `${DEMO_HOST}:${s.ports.api}`;
}

/** A new server directory with a TLS certificate from the network's CA. */
async function serverDirWithTls(
  s: PlannedServer,
  paths: NetworkPaths,
): Promise<{ cert: string; key: string }> {
  const dir = paths.dataDirOf(s.name);
  await mkdir(dir, { recursive: true });
  const { ca } = await loadOrCreateCa(paths.caDir);
  return writeServerCertificate(ca, dir, {
    hostnames: ['localhost'],
    ipAddresses: [DEMO_HOST, '::1'],
  });
}

async function writeConfig(path: string, config: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(config, null, 2)}\n`, { flag: 'wx' });
}

/**
 * The resolver's config (`resolverConfigSchema`, see packages/resolver/README.md) and its TLS
 * certificate from the network's CA: no command writes these, an operator does. Its gateway
 * (docs/operations.md §3.1) accepts the tokens of the demo's issuer, whose keys it resolves
 * from the KEYCONF RRset the issuer publishes in the MSP's zone.
 */
async function writeResolverConfig(
  resolver: PlannedServer,
  issuer: PlannedServer,
  paths: NetworkPaths,
): Promise<void> {
  const tls = await serverDirWithTls(resolver, paths);
  const { dns, doh } = dnsPorts(resolver);
  await writeConfig(paths.configOf(resolver.name), {
    apex: DEMO_APEX,
    rootHints: paths.hints,
    trustAnchor: paths.trustAnchor,
    ca: paths.ca,
    listen: {
      host: DEMO_HOST,
      udp: dns,
      tcp: dns,
      doh,
      api: resolver.ports.api,
      admin: resolver.ports.admin,
    },
    tls,
    gateway: {
      keyDir: paths.gatewayKeyDir,
      dataDir: paths.gatewayDataDir,
      issuers: [{ name: apiAuthority(issuer), keyName: `${ISSUER_KEY_NAME}.` }],
    },
  });
}

/**
 * The issuer's config (`issuerConfigSchema`, docs/operations.md §11) and its TLS certificate,
 * with no users yet: `issuer add-user` adds them.
 */
async function writeIssuerConfig(issuer: PlannedServer, paths: NetworkPaths): Promise<void> {
  const tls = await serverDirWithTls(issuer, paths);
  await writeConfig(paths.configOf(issuer.name), {
    listen: { host: DEMO_HOST, api: issuer.ports.api, admin: issuer.ports.admin },
    tls,
    dataDir: paths.issuerDataDir,
    keyDir: paths.issuerKeyDir,
    tokensPerPeriod: DEMO_TOKENS_PER_PERIOD,
    periodSeconds: DEMO_PERIOD_SECONDS,
    users: [],
  });
}

/**
 * The relay's config (`relayConfigSchema`, docs/operations.md §10) and its TLS certificate: one
 * relay resource for the resolver's gateway, the resolver's JSON API as the only ODoH target,
 * and the default limits for every client, the local ones included (`limits.exempt` empty).
 */
async function writeRelayConfig(
  relay: PlannedServer,
  resolver: PlannedServer,
  paths: NetworkPaths,
): Promise<void> {
  const tls = await serverDirWithTls(relay, paths);
  const gateway = apiAuthority(resolver);
  await writeConfig(paths.configOf(relay.name), {
    listen: { host: DEMO_HOST, relay: relay.ports.api, admin: relay.ports.admin },
    tls,
    ca: paths.ca,
    gateways: { [RELAY_GATEWAY_NAME]: `https://${gateway}/.well-known/ohttp-gateway` },
    odohTargets: [gateway],
    limits: { exempt: [] },
  });
}

/**
 * Puts the issuer's token keys (its public-key file, written as it starts) into the tree as the
 * KEYCONF RRset at {@link ISSUER_KEY_NAME} in the MSP's zone, with `keys publish` on the MSP's
 * DP (docs/operations.md §11). Run at every start, before the resolver starts: a key rotated
 * while the network was down is in the tree before the gateway resolves the RRset.
 */
export async function publishIssuerKeys(
  plan: readonly PlannedServer[],
  paths: NetworkPaths,
  run: StepRunner,
): Promise<void> {
  await publishKeys(plan, paths, run, ISSUER_KEY_NAME, paths.issuerPublicKeys);
}

/**
 * Puts the gateway's key configs (OHTTP and ODoH, from the public-key file the resolver writes
 * as it starts) into the tree at {@link GATEWAY_KEY_NAME}, with the `_dns` SVCB of its DoH
 * service (RFC 9540 §4), so that a client checks the key it is served is everyone's
 * (docs/operations.md §3.1). Run at every start, after the resolver starts.
 */
export async function publishGatewayKeys(
  plan: readonly PlannedServer[],
  paths: NetworkPaths,
  run: StepRunner,
): Promise<void> {
  await publishKeys(plan, paths, run, GATEWAY_KEY_NAME, paths.gatewayPublicKeys, [
    '--doh',
    `https://${apiAuthority(serverNamed(plan, 'resolver'))}/dns-query`,
  ]);
}

/** `keys publish` on the MSP's DP: the keys of public-key file `from` as the KEYCONF at `name`. */
async function publishKeys(
  plan: readonly PlannedServer[],
  paths: NetworkPaths,
  run: StepRunner,
  name: string,
  from: string,
  more: readonly string[] = [],
): Promise<void> {
  await run.ok([
    'keys',
    'publish',
    '--config',
    paths.configOf(serverNamed(plan, 'dp-msp').name),
    '--name',
    `${name}.`,
    '--from',
    from,
    ...more,
  ]);
}

/**
 * The gateway's OHTTP key configs that `keys publish` put in the tree at `nowS` (the unexpired
 * ones of its public-key file), newest first.
 */
export async function publishedOhttpConfigs(
  paths: NetworkPaths,
  nowS: number,
): Promise<Uint8Array[]> {
  const keys = unexpiredKeys(
    parsePublicKeyFile(await readFile(paths.gatewayPublicKeys, 'utf8')),
    nowS,
  );
  return keys
    .filter((k) => k.kind === 'ohttp')
    .sort((a, b) => b.notBefore - a.notBefore)
    .map((k) => k.config);
}

/** The code a DP last wrote to its development outbox for `csi`. */
async function lastCode(outbox: string, csi: string): Promise<string> {
  const code = await lastOutboxCode(outbox, csi);
  if (code === undefined) {
    throw failure('ERR_CLI_DEMO_SETUP', `no one-time code for ${csi} in ${outbox}`);
  }
  return code;
}

/** A DP's registration API URL and its outbox, from the plan. */
function apiOf(plan: readonly PlannedServer[], name: string): string {
  const port = serverNamed(plan, name).ports.api;
  if (port === null) throw new Error(`${name} has no registration API`);
  return `https://${DEMO_HOST}:${port}`;
}

/**
 * Proves `csi` at the DP `dp` with a new key in `keyFile` (prove → the code from the outbox →
 * confirm), as a recipient's app would, through the DP's real API.
 */
async function attest(
  run: StepRunner,
  plan: readonly PlannedServer[],
  paths: NetworkPaths,
  dp: string,
  csi: string,
  keyFile: string,
): Promise<string[]> {
  const api = ['--api', apiOf(plan, dp), '--ca', paths.ca];
  await run.ok(['recipient', 'keygen', '--out', keyFile]);
  await run.ok(['recipient', 'prove', ...api, '--csi', csi]);
  const code = await lastCode(join(paths.dataDirOf(dp), 'outbox.jsonl'), parseCsi(csi));
  await run.ok(['recipient', 'confirm', ...api, '--csi', csi, '--code', code, '--key', keyFile]);
  return api;
}

/**
 * Lifetime of the example mappings: long enough that a network restarted months later still
 * answers, and within the attestations' year.
 */
const MAPPING_DAYS = 300;

/** The name in the MSP's zone where more mappings of `csi` are published (MAPREF target). */
export function mspTarget(csi: string): string {
  return maprefTargetName(parseCsi(csi), MSP_ZONE);
}

/**
 * Registers the example recipients through the running DPs' APIs (see `DEMO_EXAMPLES`), once the
 * resolver runs (the MSP's DP checks provers through it):
 *
 * - `+44 20 7946 0018` publishes a mapping at the +44 DP, and a MAPREF to its name in the MSP
 *   chat.example's zone; its chat.example client proves the number at the +44 DP with a key of
 *   its own and publishes, through the MSP's DP's registration API, a mapping attested by the +44
 *   DP's prover, which the MSP's DP checks against the +44 range's AUTHKEYs through the resolver
 *   (design §6, §8: provers come from the range that is authoritative for the CSI, never the zone
 *   a MAPREF points into);
 * - `+1 202 555 0100` at the +1202 DP, `dave@example.com` at the @example.com DP;
 * - `+1 415 555 0100` opts out at the +1 DP: a mapping listing no MSP (`empty`).
 */
export async function registerRecipients(
  plan: readonly PlannedServer[],
  paths: NetworkPaths,
  run: StepRunner,
): Promise<void> {
  await mkdir(paths.recipients, { recursive: true });
  const key = (name: string): string => join(paths.recipients, `${name}.key`);
  const days = ['--ttl-days', String(MAPPING_DAYS)];

  const alice = '+44 20 7946 0018';
  let api = await attest(run, plan, paths, 'dp44', alice, key('alice'));
  await run.ok([
    'recipient',
    'publish',
    ...api,
    '--key',
    key('alice'),
    '--msp',
    'chat.example:primary',
    '--msp',
    'text.example',
    ...days,
  ]);
  await run.ok([
    'recipient',
    'mapref',
    ...api,
    '--key',
    key('alice'),
    '--target',
    mspTarget(alice),
  ]);
  await attest(run, plan, paths, 'dp44', alice, key('alice-at-chat.example'));
  await run.ok([
    'recipient',
    'publish',
    '--api',
    apiOf(plan, 'dp-msp'),
    '--ca',
    paths.ca,
    '--key',
    key('alice-at-chat.example'),
    '--msp',
    'chat.example:mls',
    '--uri',
    'chat.example=im:alice@chat.example',
    ...days,
  ]);

  api = await attest(run, plan, paths, 'dp1202', '+1 202 555 0100', key('bob'));
  await run.ok([
    'recipient',
    'publish',
    ...api,
    '--key',
    key('bob'),
    '--msp',
    'text.example',
    ...days,
  ]);

  api = await attest(run, plan, paths, 'dp1', '+1 415 555 0100', key('carol'));
  await run.ok(['recipient', 'publish', ...api, '--key', key('carol'), ...days]);

  api = await attest(run, plan, paths, 'dp-email', 'dave@example.com', key('dave'));
  await run.ok([
    'recipient',
    'publish',
    ...api,
    '--key',
    key('dave'),
    '--msp',
    'chat.example:mls',
    ...days,
  ]);
}
