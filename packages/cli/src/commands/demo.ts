import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DiscoveryResult } from '@mimi-discovery/resolver';
import type { Command } from 'commander';
import type { CommandEnv } from '../context.js';
import { failure, usageError } from '../errors.js';
import { remotePort } from '../flag-values.js';
import { formatTable } from '../table.js';
import { startChild, type ChildExit, type ChildServer } from '../demo/children.js';
import {
  networkFileJson,
  networkPaths,
  readNetworkPortBase,
  writeNetworkFile,
  type NetworkExampleJson,
  type NetworkFileJson,
  type NetworkPaths,
} from '../demo/network-file.js';
import {
  DEFAULT_PORT_BASE,
  DEMO_EXAMPLES,
  PORTS_PER_SERVER,
  DEMO_SERVERS,
  checkPortsFree,
  planNetwork,
  type PlannedServer,
} from '../demo/plan.js';
import {
  createServers,
  publishGatewayKeys,
  publishIssuerKeys,
  publishedOhttpConfigs,
  registerRecipients,
  stepRunner,
  type RunCli,
  type StepRunner,
} from '../demo/setup.js';

/**
 * `demo`: a whole discovery network on this machine in one command — the root directory, DPs
 * for +44, +1 (with +1202 sub-delegated to a DP of its own) and @example.com, an MSP-run DP
 * reached by MAPREF, a resolver with an oblivious gateway, a Privacy Pass issuer and an
 * oblivious relay — each server a child process running this very bin (`serve`, `resolver
 * serve`, `issuer serve`, `relay serve`), set up with the command line's own commands run
 * in-process (`init`, `delegate --ns-from --ds-from`, `trust-anchor`, `hints`, `issuer
 * add-user`, `keys publish`, `recipient …`), with example recipients registered through the
 * DPs' real APIs.
 *
 * Servers start in the order their dependencies need: the root, the DPs and the issuer; the
 * issuer's keys published in the tree (`keys publish`, so the gateway finds them when it
 * resolves them); the resolver; the gateway's keys published in the tree (`keys publish
 * --doh`); the relay. The keys are published at every start, so that keys rotated while the
 * network was down are in the tree.
 *
 * It writes `DIR/network.json` (see demo/network-file.ts), checks the example CSIs through the
 * resolver's JSON API and through the relay (one `lookup --relay`, the gateway's key checked
 * against the tree, one token of `sender1`), prints where everything listens and a line
 * starting with `ready`, and runs until SIGINT or SIGTERM (in-process: until the context's
 * signal aborts; SIGHUP too), when it stops every child (SIGTERM, then SIGKILL after a bound)
 * and ends with exit 0. A DIR that already holds a network (network.json) is restarted from its
 * data, not created again.
 * A child that dies on its own is reported on stderr with its last stderr lines; the rest of
 * the network keeps running, so a resolver serving from its cache can be watched.
 */

interface DemoFlags {
  dir?: string;
  portBase?: number;
  json?: boolean;
  queryLog?: boolean;
}

/** The default directory: `.demo` at the root of the repository this package lives in. */
const DEFAULT_DIR = fileURLToPath(new URL('../../../../.demo', import.meta.url));

/** Adds `demo` to `program`; `runCli` runs the setup steps in-process. */
export function registerDemo(program: Command, env: CommandEnv, runCli: RunCli): Command {
  const ports = DEMO_SERVERS.length * PORTS_PER_SERVER;
  return program
    .command('demo')
    .description(
      'run a whole discovery network on this machine (root, DPs, an MSP-run DP, a resolver, a token issuer, an oblivious relay) until SIGINT or SIGTERM',
    )
    .option(
      '--dir <dir>',
      'directory of the network; restarted when it holds one (default: <repo>/.demo)',
    )
    .option(
      '--port-base <port>',
      `first of the ${ports} ports the servers listen on, 4 per server (default: ${DEFAULT_PORT_BASE})`,
      remotePort,
    )
    .option('--json', 'print one JSON object when ready and one when stopped')
    .option(
      '--query-log',
      'every server but the issuer keeps a query log (JSON lines) in DIR/logs; network.json lists them',
    )
    .addHelpText(
      'after',
      `
Each server takes 4 ports from the block: plain DNS (UDP and TCP), DoH, API, admin; in the
order root, dp44 (+44), dp1 (+1), dp1202 (+1202), dp-email (@example.com), dp-msp
(@chat.example), resolver, issuer, relay. The issuer and the relay speak no DNS: they use only
their third port (the token API; the relay's HTTPS port) and their fourth (admin).
DIR/network.json says where everything listens, which files to trust, the relay, the gateway's
published keys, the issuer and its users' credential files (DIR/issuer/sender1.credential,
sender2.credential), and the example CSIs with their expected results.

With --query-log each server appends a line per query it answers to
DIR/logs/<server>.queries.jsonl, without client addresses (the resolver also one per CSI its
JSON API looks up); the relay one per request it forwards, with the client's address and never
a CSI (it sees none). The issuer keeps no query log.

Examples:
  $ mimi-discovery demo
  $ mimi-discovery demo --dir /tmp/net --port-base 25300 --json
  $ mimi-discovery demo --query-log`,
    )
    .action(async (flags: DemoFlags) => {
      await runDemo(flags, env, runCli);
    });
}

async function runDemo(flags: DemoFlags, env: CommandEnv, runCli: RunCli): Promise<void> {
  const started = performance.now();
  const paths = networkPaths(resolve(env.cwd, flags.dir ?? DEFAULT_DIR));
  const restart = existsSync(paths.networkFile);
  let portBase = flags.portBase ?? DEFAULT_PORT_BASE;
  if (restart) {
    const recorded = await readNetworkPortBase(paths);
    if (flags.portBase !== undefined && flags.portBase !== recorded) {
      throw usageError(
        'ERR_USAGE',
        `${paths.dir} holds a network on --port-base ${recorded}: give that, or another --dir to start a new one`,
      );
    }
    portBase = recorded;
  } else if (existsSync(paths.dir) && (await readdir(paths.dir)).length > 0) {
    throw failure(
      'ERR_CLI_EXISTS',
      `${paths.dir} holds files but no network.json (a setup that was interrupted?): remove it, or give another --dir`,
    );
  }
  const plan = planNetwork(portBase);
  // A network made before a server joined the plan lacks that server's config.
  const missing = restart ? plan.filter((s) => !existsSync(paths.configOf(s.name))) : [];
  if (missing.length > 0) {
    throw failure(
      'ERR_CLI_NETWORK_FILE',
      `${paths.dir} holds a network without ${missing.map((s) => s.name).join(', ')} (made by an earlier version?): remove it to create a new one, or give another --dir`,
    );
  }
  await checkPortsFree(plan);

  const stop = stopSignal(env.signal);
  const say = (text: string): void => {
    if (flags.json !== true) env.out(text);
  };
  const children: ChildServer[] = [];
  const onExit = ({ child, code, signal }: ChildExit): void => {
    const lines = child.lastStderr();
    env.err(
      `mimi-discovery demo: ${child.name} (pid ${child.pid}) exited unexpectedly with ${signal ?? `code ${code}`}` +
        (lines.length === 0
          ? '; it wrote nothing to stderr\n'
          : `; its last stderr lines:\n${lines.map((l) => `  ${l}\n`).join('')}`),
    );
  };
  try {
    const run = stepRunner(runCli, paths.dir, env);
    if (restart) say(`restarting the network in ${paths.dir}\n`);
    else {
      say(`creating a network in ${paths.dir}\n`);
      await mkdir(paths.dir, { recursive: true });
      await createServers(plan, paths, run);
    }
    await mkdir(paths.logs, { recursive: true });
    const queryLogs = flags.queryLog === true;
    const start = (s: PlannedServer): Promise<ChildServer> =>
      startChild(s.name, childArgs(s, paths, queryLogs), paths.logOf(s.name), onExit);
    const startAll = async (group: readonly PlannedServer[]): Promise<void> => {
      const settled = await Promise.allSettled(group.map(start));
      for (const s of settled) if (s.status === 'fulfilled') children.push(s.value);
      const failed = settled.find((s) => s.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    };
    // The authoritative servers and the issuer first, then the resolver, as a network comes
    // up: the resolver transfers the root's zone for its local copy as it starts (protocol
    // §10), and its gateway resolves the issuer's keys, which are in the tree by then. The
    // relay last, once the gateway's keys are published: a client it serves can check them.
    await startAll(plan.filter((s) => s.role !== 'resolver' && s.role !== 'relay'));
    await publishIssuerKeys(plan, paths, run);
    await startAll(plan.filter((s) => s.role === 'resolver'));
    await publishGatewayKeys(plan, paths, run);
    await startAll(plan.filter((s) => s.role === 'relay'));

    if (!restart) await registerRecipients(plan, paths, run);
    const pids = new Map(children.map((c) => [c.name, c.pid]));
    const file = networkFileJson({
      paths,
      portBase,
      plan,
      examples: DEMO_EXAMPLES,
      pids,
      pid: process.pid,
      queryLogs,
      gatewayKeyConfigs: await publishedOhttpConfigs(paths, env.now()),
    });
    await writeNetworkFile(paths, file);

    const lookups = compareExamples(file, await runLookup(run, apiLookupArgs(file), 'api'));
    const relayLookups = compareExamples(
      file,
      await runLookup(run, relayLookupArgs(file), 'relay'),
    );
    const seconds = (performance.now() - started) / 1000;
    if (flags.json === true) {
      env.out(
        `${JSON.stringify({ ready: true, network: paths.networkFile, created: !restart, startupSeconds: round(seconds), lookups, relayLookups })}\n`,
      );
    } else {
      env.out(summary(file, paths, lookups, relayLookups, env.cwd));
    }
    for (const [checked, how] of [
      [lookups, "the resolver's JSON API"],
      [relayLookups, 'the relay'],
    ] as const) {
      const wrong = checked.filter((l) => !l.ok);
      if (wrong.length > 0) {
        throw failure(
          'ERR_CLI_DEMO_LOOKUP',
          `the resolver did not give the expected result through ${how} for ${wrong.map((l) => l.csi).join(', ')}`,
        );
      }
    }
    say(`ready in ${round(seconds)} s: ${paths.networkFile}; Ctrl-C stops the network\n`);
    await stop.stopped;
  } finally {
    // A second Ctrl-C while the children stop must not leave them orphaned.
    const guard = (): void => undefined;
    for (const s of GUARDED_SIGNALS) process.on(s, guard);
    try {
      if (children.length > 0) say(`stopping ${children.length} servers\n`);
      await Promise.all(children.map((c) => c.stop()));
    } finally {
      for (const s of GUARDED_SIGNALS) process.off(s, guard);
      stop.dispose();
    }
  }
  if (flags.json === true) env.out(`${JSON.stringify({ stopped: true })}\n`);
  else env.out('stopped\n');
}

const GUARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** One example CSI as the resolver answered it, and whether that is what was expected. */
export interface ExampleLookup {
  csi: string;
  status: DiscoveryResult['status'];
  expect: NetworkExampleJson['expect'];
  providers: string[];
  zones: string[];
  ok: boolean;
}

/**
 * The arguments of a server's child process: `serve`, `resolver serve` (with `--query-log-api`
 * when logging), `issuer serve` (no query log), `relay serve`; `startChild` adds `--json`.
 */
function childArgs(s: PlannedServer, paths: NetworkPaths, queryLogs: boolean): string[] {
  const config = ['--config', paths.configOf(s.name)];
  const log = ['--query-log', paths.queryLogOf(s.name)];
  switch (s.role) {
    case 'root':
    case 'dp':
      return ['serve', ...config, ...(queryLogs ? log : [])];
    case 'resolver':
      return ['resolver', 'serve', ...config, ...(queryLogs ? [...log, '--query-log-api'] : [])];
    case 'issuer':
      return ['issuer', 'serve', ...config];
    case 'relay':
      return ['relay', 'serve', ...config, ...(queryLogs ? log : [])];
  }
}

/** `lookup` of every example through the resolver's JSON API: one `POST /v1/discover`. */
function apiLookupArgs(file: NetworkFileJson): string[] {
  return [
    'lookup',
    ...file.examples.map((e) => e.csi),
    '--resolver',
    file.resolver.api,
    '--ca',
    file.ca,
    '--json',
  ];
}

/** The first user of the issuer, whose tokens the demo's own checks spend. */
function checkUser(file: NetworkFileJson): NetworkFileJson['issuer']['users'][number] {
  const user = file.issuer.users[0];
  if (user === undefined) throw new Error('network.json lists no user of the issuer');
  return user;
}

/**
 * `lookup` of every example through the relay, as a sender's app: the gateway's key checked
 * against its KEYCONF in the tree (resolved from the root hints and the trust anchor), one
 * token of the first user (the examples are fewer than a token's CSIs).
 */
function relayLookupArgs(file: NetworkFileJson): string[] {
  return [
    'lookup',
    ...file.examples.map((e) => e.csi),
    '--relay',
    file.relay.ohttp,
    '--credential',
    checkUser(file).credential,
    '--key-name',
    file.gateway.keyName,
    '--hints',
    file.hints,
    '--trust-anchor',
    file.trustAnchor.ds,
    '--ca',
    file.ca,
    '--json',
  ];
}

/** Each example's result compared with the expected one. */
function compareExamples(file: NetworkFileJson, results: DiscoveryResult[]): ExampleLookup[] {
  return file.examples.map((example, i) => {
    const result = results[i];
    const providers = sortedUnique(
      result?.mappings.flatMap((m) => m.msps.map((msp) => msp.provider)) ?? [],
    );
    const zones = sortedUnique(
      result?.status === 'found' ? result.mappings.map((m) => m.zone) : [],
    );
    const status = result?.status ?? 'error';
    return {
      csi: example.csi,
      status,
      expect: example.expect,
      providers,
      zones,
      ok:
        status === example.expect &&
        sameList(providers, example.providers) &&
        sameList(zones, example.zones),
    };
  });
}

/**
 * Runs `lookup … --json` and returns its results; an `error` result (exit 2) still has its
 * JSON, which the comparison reports. A lookup that printed none fails the start.
 */
async function runLookup(
  run: StepRunner,
  argv: readonly string[],
  through: 'api' | 'relay',
): Promise<DiscoveryResult[]> {
  const result = await run.run(argv);
  if (result.exitCode === 0 || result.stdout.trim().startsWith('{')) {
    return (JSON.parse(result.stdout) as { results: DiscoveryResult[] }).results;
  }
  const what = through === 'api' ? "the resolver's JSON API" : 'the relay';
  throw failure(
    'ERR_CLI_DEMO_LOOKUP',
    `${what} could not be asked: ${result.stderr.trim().replace(/^mimi-discovery: /, '')}`,
  );
}

function sortedUnique(values: readonly string[]): string[] {
  return [...new Set(values)].sort();
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function round(seconds: number): number {
  return Math.round(seconds * 10) / 10;
}

/** A table of example lookups. */
function lookupTable(lookups: readonly ExampleLookup[]): string {
  const rows = [['CSI', 'RESULT', 'EXPECTED', 'MSPS', 'FROM ZONES']];
  for (const l of lookups) {
    rows.push([
      l.csi,
      l.status,
      l.ok ? 'ok' : `WRONG (expected ${l.expect})`,
      l.providers.join(', ') || '-',
      l.zones.join(', ') || '-',
    ]);
  }
  return formatTable(rows);
}

/** Where everything listens, what to trust, and the lookups, for people. */
function summary(
  file: NetworkFileJson,
  paths: NetworkPaths,
  lookups: readonly ExampleLookup[],
  relayLookups: readonly ExampleLookup[],
  cwd: string,
): string {
  const rows = [['SERVER', 'PID', 'ZONES', 'DNS (UDP+TCP)', 'DOH', 'API', 'ADMIN']];
  for (const s of file.servers) {
    rows.push([
      s.name,
      String(s.pid ?? '-'),
      s.zones.join(', ') || '-',
      s.udp === null ? '-' : `${s.udp.host}:${s.udp.port}`,
      s.doh ?? '-',
      s.api ?? '-',
      s.admin,
    ]);
  }
  const show = (path: string): string => {
    const rel = relative(cwd, path);
    return rel.startsWith('..') ? path : rel;
  };
  const { resolver, relay, issuer } = file;
  const user = checkUser(file);
  const alice = file.examples[0]?.csi ?? '+44 20 7946 0018';
  const dp44 = file.servers.find((s) => s.name === 'dp44');
  return [
    '',
    formatTable(rows),
    `ca            ${show(paths.ca)}`,
    `trust anchor  ${show(paths.trustAnchor)} (DS), ${show(paths.bindTrustAnchor)} (BIND)`,
    `root hints    ${show(paths.hints)}`,
    ...(file.servers.some((s) => s.queryLog !== null)
      ? [`query logs    ${show(paths.logs)}/<server>.queries.jsonl`]
      : []),
    `resolver      JSON API ${resolver.api}/v1/discover, DNS ${resolver.udp.host}:${resolver.udp.port}`,
    ...(dp44?.api == null
      ? []
      : [
          `recipients    ${dp44.api}/recipient/ (the +44 DP's recipient page: register a number in a browser; codes in its outbox)`,
        ]),
    `lookup page   ${resolver.api}/lookup/ (the resolver's verified answers in a browser; trust ${show(paths.ca)})`,
    `relay         ${relay.ohttp} (OHTTP), ${relay.odohProxy} (ODoH)`,
    `issuer        ${issuer.url}, ${issuer.tokensPerPeriod} tokens ${issuer.periodSeconds === 86_400 ? 'a day' : `per ${issuer.periodSeconds} s`} for each of ${issuer.users.map((u) => show(u.credential)).join(', ')}`,
    '',
    `verified lookups through the resolver's JSON API:`,
    lookupTable(lookups),
    `verified lookups through the oblivious relay (key checked against the tree; 1 token of ${user.id}):`,
    lookupTable(relayLookups),
    'try:',
    `  npx mimi-discovery lookup "${alice}" --resolver ${resolver.api} --ca ${show(paths.ca)}`,
    `  npx mimi-discovery lookup "${alice}" --relay ${relay.ohttp} --credential ${show(user.credential)} --key-name ${file.gateway.keyName} --hints ${show(paths.hints)} --trust-anchor ${show(paths.trustAnchor)} --ca ${show(paths.ca)}`,
    `  curl --cacert ${show(paths.ca)} '${resolver.api}/v1/discover?csi=dave@example.com'`,
    `  dig +dnssec -p ${resolver.udp.port} @${resolver.udp.host} 8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa TYPE65400`,
    ...(dp44 === undefined
      ? []
      : [
          `  tail -1 ${show(paths.dataDirOf(dp44.name))}/outbox.jsonl   # one-time codes of the +44 DP`,
        ]),
    '',
  ].join('\n');
}

/**
 * Resolves `stopped` when `signal` aborts or the process gets SIGHUP (a closed terminal), so the
 * children are stopped in every case where the process can still act; `dispose` removes the
 * SIGHUP listener.
 */
function stopSignal(signal: AbortSignal | undefined): {
  stopped: Promise<void>;
  dispose(): void;
} {
  let onHup: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    onHup = () => resolve();
    process.once('SIGHUP', onHup);
    if (signal === undefined) return;
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  return { stopped, dispose: () => process.off('SIGHUP', onHup) };
}
