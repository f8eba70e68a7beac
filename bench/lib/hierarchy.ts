import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  defaultKeyDirectory,
  delegate,
  lmdbKeyDirectory,
  openLmdbStore,
  storeDirectory,
} from '@mimi-discovery/authoritative';
import {
  DEFAULT_APEX,
  computeDs,
  createTrustAnchor,
  formatTrustAnchor,
  type DnskeyData,
} from '@mimi-discovery/common';
import { initServer, writeLoopbackTls } from '../../examples/loopback-network.js';
import { ORIGIN } from './dataset.js';
import type { GatewaySettings } from '@mimi-discovery/resolver';
import type { ResolverSpec } from './resolver-server.js';
import { installed } from './stock.js';
import { startUnbound, type RunningUnbound } from './unbound.js';
import type { ProfileSummary } from './profile.js';

/**
 * The discovery hierarchy the resolver benchmarks run on, every server on 127.0.0.1 in a process
 * of its own so that each one's CPU time can be read from /proc:
 *
 * ```
 *   mimi.arpa                  root directory      mimi-discovery serve (role root)
 *     └── 4.4.e164.mimi.arpa   the bench data set  mimi-discovery serve (role dp)
 *   our resolver               bench/lib/resolver-server.ts, DoH to the root and the DP
 *   Unbound                    validating, stub zones at the root and the DP, DoH on https-port
 * ```
 *
 * The root delegates the DP's zone directly, as the demo network and the tests do: the design
 * puts no zone between the apex and a range (a range is delegated "at any digit").
 *
 * The root and the DP are what an operator runs (`node packages/cli/dist/main.js serve`), with
 * UDP and TCP on one port, DoH and the admin port (whose metrics count the queries each server
 * answered). The DP serves the bench's LMDB store read as it is: its data directory holds a
 * symbolic link `store` to it. The root zone is created in a store of its own, with the
 * delegation (NS, glue, DS, the `_dns` SVCB of the DP's DoH port) and the trust anchor made
 * from its key. One local CA issues the one certificate every DoH server uses (`writeLoopbackTls`, the
 * examples' network step that the tests share too).
 *
 * Our resolver runs from the built packages (loaded natively, not transformed by vite-node:
 * `--options.deps.external`), so that what is measured is the code a deployment runs.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'packages', 'cli', 'dist', 'main.js');
const VITE_NODE = join(ROOT, 'node_modules', 'vite-node', 'vite-node.mjs');

/** Time a server process has to start and print its listeners. */
const START_TIMEOUT_MS = 60_000;
/** Time a command to the resolver process has (the longest is a verification-rate run). */
const REQUEST_TIMEOUT_MS = 120_000;
/** Time a process has to exit after being asked, before SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;

/** How to start the hierarchy. */
export interface HierarchyOptions {
  /** The LMDB store of the bench data set (zone {@link ORIGIN}), as `loadDataSet` filled it. */
  readonly storeDir: string;
  /** An empty directory for configs, the root's store, TLS files and logs. */
  readonly workDir: string;
  /** Start Unbound too (when installed); default true. */
  readonly unbound?: boolean;
  /** When set, our Node.js servers run with `--cpu-prof` and write profiles here on stop. */
  readonly cpuProfileDir?: string;
}

/** A root or DP process and its listeners. */
export interface ServerProcess {
  readonly name: 'root' | 'dp';
  readonly zone: string;
  readonly pid: number;
  readonly command: string;
  /** Plain DNS, UDP and TCP on one port. */
  readonly port: number;
  readonly dohPort: number;
  /** `https://127.0.0.1:<port>/dns-query` */
  readonly dohUrl: string;
  /** `http://127.0.0.1:<port>` (health and metrics). */
  readonly adminUrl: string;
  /** DNS queries answered so far over every transport (the admin port's metrics). */
  queriesAnswered(): Promise<number>;
  stop(): Promise<void>;
}

/** The `stats()` of our resolver. */
export interface ResolverProcessStats {
  cacheHits: number;
  cacheMisses: number;
  upstreamQueries: number;
  cacheBytes: number;
  validationFailures: Record<string, number>;
}

/** Our resolver's process. */
export interface ResolverProcess {
  readonly pid: number;
  readonly command: string;
  /** Plain DNS, UDP and TCP on one port. */
  readonly port: number;
  readonly dohUrl: string;
  /** `https://127.0.0.1:<port>`: the JSON API. */
  readonly apiUrl: string;
  readonly adminUrl: string;
  /**
   * Replaces the resolver and its front ends by new ones on the same ports: empty caches (the
   * front ends' answer cache too), no upstream connections; client connections are closed.
   * With `rootCopy`, the new resolver loads its copy of the root's zone before it serves;
   * without, it keeps none.
   */
  fresh(transport: 'doh' | 'dns', rootCopy?: boolean): Promise<void>;
  stats(): Promise<ResolverProcessStats>;
  /** Empties the resolver's caches and its front ends' answer cache; connections stay. */
  flush(): Promise<void>;
  /**
   * Starts the front ends again on the same ports with the oblivious gateway on the JSON API's
   * port (`GatewaySettings` of `@mimi-discovery/resolver`); the resolver and its cache stay, and
   * every later `fresh` keeps the gateway.
   */
  gateway(settings: GatewaySettings): Promise<void>;
  /** Starts a CPU profile of the resolver's process. */
  profileStart(): Promise<void>;
  /** Stops it and returns its summary. */
  profileStop(phase: string): Promise<ProfileSummary>;
  /** Ed25519 verifications per second of `verify` (@mimi-discovery/common) in this process. */
  verificationRate(
    seconds: number,
  ): Promise<{ verifications: number; perSecond: number; perCpuSecond: number }>;
  stop(): Promise<void>;
}

/** The running hierarchy. */
export interface BenchHierarchy {
  readonly apex: string;
  readonly origin: string;
  /** PEM of the CA of every DoH certificate, and its file. */
  readonly caPem: string;
  readonly caFile: string;
  /** Files of the certificate (that CA's, for 127.0.0.1) and key every server uses. */
  readonly tls: { readonly cert: string; readonly key: string };
  readonly trustAnchorFile: string;
  readonly root: ServerProcess;
  readonly dp: ServerProcess;
  readonly resolver: ResolverProcess;
  /** Undefined when not installed or not started: see {@link skipped}. */
  readonly unbound: RunningUnbound | undefined;
  /** What did not run, and why. */
  readonly skipped: string[];
  /** Why Unbound is not running (from {@link skipped}), for the benchmarks' own lists. */
  readonly unboundMissing: string | undefined;
  /** The command line of every process. */
  readonly commands: Record<string, string>;
  /** Stops every process. */
  stop(): Promise<void>;
}

/** A child process that prints JSON lines on stdout; everything else it prints is kept. */
export interface JsonLineChild {
  readonly child: ChildProcess;
  readonly command: string;
  /** The next JSON line, within `timeoutMs`. */
  next(timeoutMs: number): Promise<Record<string, unknown>>;
  /** Writes `value` as a JSON line to stdin and resolves with the next JSON line. */
  request(value: object, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** What it printed that is not a JSON line. */
  output(): string;
  /** SIGTERM (after `before`, if given), then SIGKILL if it has not exited in time. */
  stop(before?: () => Promise<unknown>): Promise<void>;
}

export function spawnJsonLines(args: string[], name: string): JsonLineChild {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const command = `node ${args.map((a) => (a.startsWith(ROOT) ? relative(ROOT, a) : a)).join(' ')}`;
  let text = '';
  const queued: Record<string, unknown>[] = [];
  const waiting: ((value: Record<string, unknown>) => void)[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (!line.startsWith('{')) {
      text += `${line}\n`;
      return;
    }
    const value = JSON.parse(line) as Record<string, unknown>;
    const waiter = waiting.shift();
    if (waiter === undefined) queued.push(value);
    else waiter(value);
  });
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const next = (timeoutMs: number): Promise<Record<string, unknown>> => {
    const ready = queued.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.splice(waiting.indexOf(done), 1);
        reject(new Error(`${name}: no answer within ${timeoutMs} ms\n${text}`));
      }, timeoutMs);
      const done = (value: Record<string, unknown>): void => {
        clearTimeout(timer);
        resolve(value);
      };
      waiting.push(done);
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${child.exitCode ?? child.signalCode})\n${text}`));
      });
    });
  };
  return {
    child,
    command,
    next,
    request(value, timeoutMs = REQUEST_TIMEOUT_MS) {
      const answer = next(timeoutMs);
      child.stdin!.write(`${JSON.stringify(value)}\n`);
      return answer;
    },
    output: () => text,
    async stop(before) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (before !== undefined) await before().catch(() => undefined);
      const kill = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const term = setTimeout(() => child.kill('SIGTERM'), before === undefined ? 0 : 2_000);
      await exited;
      clearTimeout(term);
      clearTimeout(kill);
    },
  };
}

/** Node.js flags of our servers: `--cpu-prof` into `dir` when profiling. */
function nodeFlags(dir: string | undefined, name: string): string[] {
  return dir === undefined
    ? []
    : ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}.cpuprofile`];
}

/**
 * Queries answered so far, from the admin port's metrics: every sample of
 * `authoritative_queries_total` plus `authoritative_answer_cache_hits_total` (answers sent from
 * the server's answer cache are not counted in the former).
 */
async function queriesAnswered(adminUrl: string): Promise<number> {
  const response = await fetch(`${adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await response.text();
  let total = 0;
  for (const line of text.split('\n')) {
    const match =
      /^authoritative_(?:queries_total\{[^}]*\}|answer_cache_hits_total) (\d+(?:\.\d+)?)$/.exec(
        line,
      );
    if (match?.[1] !== undefined) total += Number(match[1]);
  }
  return total;
}

/** Starts `mimi-discovery serve --json` with the config written to `dir/config.json`. */
async function startServer(
  name: 'root' | 'dp',
  zone: string,
  dir: string,
  tls: { cert: string; key: string },
  profileDir: string | undefined,
): Promise<ServerProcess> {
  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      role: name,
      dataDir: dir,
      apex: DEFAULT_APEX,
      listen: { host: '127.0.0.1', udp: 0, tcp: 0, doh: 0, admin: 0 },
      tls,
      // Every client of the bench is on loopback and measured, not limited: RRL and the DoH
      // query rate exempt it, as NSD runs with `rrl-ratelimit: 0` (stock.ts).
      limits: { rrl: { exempt: ['127.0.0.0/8'] }, dohClients: { exempt: ['127.0.0.0/8'] } },
      log: { level: 'warn' },
    }),
  );
  const server = spawnJsonLines(
    [...nodeFlags(profileDir, name), CLI, 'serve', '--config', config, '--json'],
    name,
  );
  const listeners: Record<string, { port: number; url?: string }> = {};
  try {
    // `serve` prints udp, tcp, doh, admin, in that order, once every listener is up.
    while (listeners.admin === undefined) {
      const line = (await server.next(START_TIMEOUT_MS)) as {
        listener: string;
        port: number;
        url?: string;
      };
      listeners[line.listener] = line;
    }
  } catch (error) {
    await server.stop();
    throw error;
  }
  const { udp, doh } = listeners;
  if (udp === undefined || doh?.url === undefined) {
    await server.stop();
    throw new Error(`${name} did not start UDP and DoH:\n${server.output()}`);
  }
  const adminUrl = listeners.admin.url ?? `http://127.0.0.1:${listeners.admin.port}`;
  return {
    name,
    zone,
    pid: server.child.pid ?? 0,
    command: server.command,
    port: udp.port,
    dohPort: doh.port,
    dohUrl: doh.url,
    adminUrl,
    queriesAnswered: () => queriesAnswered(adminUrl),
    stop: () => server.stop(),
  };
}

/**
 * The arguments that run a TypeScript file of `bench/lib` from the built packages (loaded
 * natively, not transformed by vite-node), as our resolver runs.
 */
export function benchScriptArgs(file: string): string[] {
  return [
    VITE_NODE,
    '--options.deps.external=/packages\\/[a-z]+\\/dist/',
    join(ROOT, 'bench', 'lib', file),
  ];
}

async function startResolver(
  spec: ResolverSpec,
  dir: string,
  profileDir: string | undefined,
): Promise<ResolverProcess> {
  const specFile = join(dir, 'resolver.json');
  writeFileSync(specFile, JSON.stringify(spec));
  const script = join(ROOT, 'bench', 'lib', 'resolver-server.ts');
  const proc = spawnJsonLines(
    [
      ...nodeFlags(profileDir, 'resolver'),
      VITE_NODE,
      '--options.deps.external=/packages\\/[a-z]+\\/dist/',
      script,
      specFile,
    ],
    'resolver',
  );
  let ready: Record<string, unknown>;
  try {
    ready = await proc.next(START_TIMEOUT_MS);
  } catch (error) {
    await proc.stop();
    throw error;
  }
  const expect = async (value: object, event: string): Promise<Record<string, unknown>> => {
    const answer = await proc.request(value);
    if (answer.event !== event) throw new Error(`resolver answered ${JSON.stringify(answer)}`);
    return answer;
  };
  return {
    pid: proc.child.pid ?? 0,
    command: proc.command,
    port: Number(ready.udp),
    dohUrl: String(ready.doh),
    apiUrl: String(ready.api),
    adminUrl: String(ready.admin),
    async fresh(transport, rootCopy = false) {
      await expect({ cmd: 'fresh', transport, rootCopy }, 'fresh');
    },
    async stats() {
      return (await expect({ cmd: 'stats' }, 'stats')) as unknown as ResolverProcessStats;
    },
    async flush() {
      await expect({ cmd: 'flush' }, 'flushed');
    },
    async gateway(settings) {
      await expect({ cmd: 'gateway', settings }, 'gateway');
    },
    async profileStart() {
      await expect({ cmd: 'profile-start' }, 'profiling');
    },
    async profileStop(phase) {
      return (await expect({ cmd: 'profile-stop', phase }, 'profile')).summary as ProfileSummary;
    },
    async verificationRate(seconds) {
      const answer = await expect({ cmd: 'verify', seconds }, 'verified');
      return {
        verifications: Number(answer.verifications),
        perSecond: Number(answer.perSecond),
        perCpuSecond: Number(answer.perCpuSecond),
      };
    },
    stop: () => proc.stop(() => proc.request({ cmd: 'stop' }, STOP_TIMEOUT_MS)),
  };
}

/** The DNSKEY RRset of `zone` in the store at `storeDir` (opened, read, closed). */
async function zoneDnskeys(storeDir: string, zone: string): Promise<DnskeyData[]> {
  const store = await openLmdbStore({ dataDir: storeDir });
  try {
    return store
      .readRRset(zone, zone, 'DNSKEY')
      .flatMap((rr) => (rr.type === 'DNSKEY' ? [rr.data] : []));
  } finally {
    await store.close();
  }
}

/**
 * Creates the root zone in `dataDir/store` as the examples' network does (`initServer`),
 * delegating `child` to the DP on 127.0.0.1 with the DoH port of its `_dns` SVCB; returns the
 * root's trust anchor text.
 */
async function createRootZone(
  dataDir: string,
  child: { zone: string; dohPort: number; dnskeys: readonly DnskeyData[] },
): Promise<string> {
  const apex = DEFAULT_APEX;
  await initServer(dataDir, [apex]);
  const store = await openLmdbStore({ dataDir: storeDirectory(dataDir) });
  try {
    await delegate(store, apex, {
      zone: child.zone,
      nameservers: [
        { name: `ns1.${child.zone}`, addresses: ['127.0.0.1'], doh: { port: child.dohPort } },
      ],
      ds: child.dnskeys.map((key) => computeDs(child.zone, key)),
    });
    const keys = store
      .readRRset(apex, apex, 'DNSKEY')
      .flatMap((rr) => (rr.type === 'DNSKEY' ? [rr.data] : []));
    return formatTrustAnchor(createTrustAnchor(apex, keys));
  } finally {
    await store.close();
  }
}

/** Starts the hierarchy; see the module comment. On a failure, stops what had started. */
export async function startHierarchy(options: HierarchyOptions): Promise<BenchHierarchy> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    stops.length = 0;
  };
  try {
    const work = options.workDir;
    const dpDir = join(work, 'dp');
    const rootDir = join(work, 'root');
    const tlsDir = join(work, 'tls');
    for (const dir of [dpDir, rootDir, tlsDir]) mkdirSync(dir, { recursive: true });
    if (options.cpuProfileDir !== undefined) mkdirSync(options.cpuProfileDir, { recursive: true });

    const { caPem, caFile, tls } = await writeLoopbackTls(tlsDir);

    const dnskeys = await zoneDnskeys(options.storeDir, ORIGIN);
    if (dnskeys.length === 0) throw new Error(`the store ${options.storeDir} has no ${ORIGIN}`);
    symlinkSync(options.storeDir, storeDirectory(dpDir));
    // The zone's signing keys live beside the store, in its key directory (docs/operations.md
    // §8.5), not in it: without them the DP serves the stored signatures but signs nothing new
    // (no NSEC3 denial of a name it computes online), and a validating resolver fails on those.
    // A copy, not a link: the DP's key roller may write to it, and the data set stays as built.
    const keys = lmdbKeyDirectory(options.storeDir);
    if (!existsSync(keys))
      throw new Error(`the store ${options.storeDir} has no key directory ${keys}`);
    cpSync(keys, defaultKeyDirectory(dpDir), { recursive: true });
    const dp = await startServer('dp', ORIGIN, dpDir, tls, options.cpuProfileDir);
    stops.push(() => dp.stop());

    const trustAnchor = await createRootZone(rootDir, {
      zone: ORIGIN,
      dohPort: dp.dohPort,
      dnskeys,
    });
    const trustAnchorFile = join(work, `${DEFAULT_APEX}.anchor`);
    writeFileSync(trustAnchorFile, trustAnchor);
    const root = await startServer('root', DEFAULT_APEX, rootDir, tls, options.cpuProfileDir);
    stops.push(() => root.stop());

    const resolver = await startResolver(
      {
        apex: DEFAULT_APEX,
        rootServers: [
          {
            name: `ns1.${DEFAULT_APEX}`,
            addresses: ['127.0.0.1'],
            port: root.port,
            doh: root.dohUrl,
          },
        ],
        trustAnchor,
        ca: caPem,
        dnsPort: dp.port,
        certFile: tls.cert,
        keyFile: tls.key,
      },
      work,
      options.cpuProfileDir,
    );
    stops.push(() => resolver.stop());

    const skipped: string[] = [];
    let unbound: RunningUnbound | undefined;
    if (options.unbound === false) {
      skipped.push('unbound: not asked for');
    } else if (!installed('unbound') || !installed('unbound-control')) {
      skipped.push('unbound: not installed (apt-get install unbound)');
    } else {
      const dir = join(work, 'unbound');
      mkdirSync(dir, { recursive: true });
      try {
        const started = await startUnbound({
          dir,
          trustAnchorFile,
          stubs: [
            { zone: DEFAULT_APEX, port: root.port },
            { zone: ORIGIN, port: dp.port },
          ],
          tls: { certFile: tls.cert, keyFile: tls.key },
        });
        unbound = started;
        stops.push(() => started.stop());
      } catch (error) {
        skipped.push(`unbound: did not start (${(error as Error).message.split('\n')[0]})`);
      }
    }

    const commands: Record<string, string> = {
      root: root.command,
      dp: dp.command,
      resolver: resolver.command,
      ...(unbound === undefined ? {} : { unbound: unbound.command }),
    };
    return {
      apex: DEFAULT_APEX,
      origin: ORIGIN,
      caPem,
      caFile,
      tls,
      trustAnchorFile,
      root,
      dp,
      resolver,
      unbound,
      skipped,
      unboundMissing: skipped.find((s) => s.startsWith('unbound:'))?.slice('unbound: '.length),
      commands,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
