import { spawn, type ChildProcess } from 'node:child_process';
import { Buffer } from 'node:buffer';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TsigKey } from '@mimi-discovery/common';
import { freePort } from './ports.js';
import { missingTools } from './tools.js';

/**
 * Stock secondaries of a DP (docs/operations.md, "A hidden primary"): NSD and Knot DNS, each a
 * foreground process on a free port of 127.0.0.1 with its config, state and zone files in a
 * directory of the test's, transferring one zone from a primary with a TSIG key and taking its
 * NOTIFYs, as an operator would configure them. Both are bounded: start within
 * {@link SECONDARY_TIMEOUT_MS}, stop with SIGTERM then SIGKILL.
 */

/** How long NSD or Knot may take to start or stop. */
export const SECONDARY_TIMEOUT_MS = 10_000;

/** The Debian packages of the secondaries' programs. */
export const SECONDARY_TOOLS = Object.freeze({
  nsd: 'nsd',
  knotd: 'knot',
  knotc: 'knot',
});

/** The programs of {@link SECONDARY_TOOLS} that are missing (each announced once). */
export function missingSecondaries(): Set<string> {
  return missingTools(SECONDARY_TOOLS);
}

/** What a secondary transfers, from where, with which key. */
export interface SecondaryOptions {
  /** A directory of its own (created if absent). */
  readonly dir: string;
  readonly zone: string;
  /** The primary's TCP (and UDP) port on 127.0.0.1. */
  readonly primaryPort: number;
  readonly key: TsigKey;
  /** Its port on 127.0.0.1 (the primary's NOTIFY goes there); default a free one. */
  readonly port?: number;
}

/** A running NSD or Knot. */
export interface RunningSecondary {
  readonly kind: 'nsd' | 'knot';
  /** Its UDP and TCP port on 127.0.0.1. */
  readonly port: number;
  /** Its process id (NSD's first process, the parent of its others). */
  readonly pid: number;
  /** The command line it runs. */
  readonly command: string;
  /** Everything it logged so far. */
  log(): string;
  /** Stops it (SIGTERM, then SIGKILL if it lingers); resolves when it has exited. */
  stop(): Promise<void>;
}

/**
 * NSD 4 (`nsd -d`): the zone by `request-xfr` from the primary with the key (IXFR over TCP,
 * AXFR when the primary has no journal that far back), NOTIFY allowed from it with the key, no
 * database and no privilege drop, so that it runs as the test's user.
 */
export async function startNsd(options: SecondaryOptions): Promise<RunningSecondary> {
  const dir = options.dir;
  mkdirSync(dir, { recursive: true });
  const port = options.port ?? (await freePort());
  const config = [
    'server:',
    '  ip-address: 127.0.0.1',
    `  port: ${port}`,
    '  username: ""',
    '  chroot: ""',
    `  zonesdir: "${dir}"`,
    '  database: ""',
    `  pidfile: "${join(dir, 'nsd.pid')}"`,
    `  xfrdfile: "${join(dir, 'xfrd.state')}"`,
    `  zonelistfile: "${join(dir, 'zone.list')}"`,
    `  xfrdir: "${dir}"`,
    '  verbosity: 2',
    '  do-ip6: no',
    '  server-count: 1',
    // Every client is 127.0.0.1: response rate limiting would cap it at 200 answers a second.
    '  rrl-ratelimit: 0',
    '  rrl-whitelist-ratelimit: 0',
    'remote-control:',
    '  control-enable: no',
    'key:',
    `  name: "${options.key.name}"`,
    `  algorithm: ${options.key.algorithm}`,
    `  secret: "${Buffer.from(options.key.secret).toString('base64')}"`,
    'zone:',
    `  name: "${options.zone}"`,
    `  zonefile: "${options.zone}.zone"`,
    `  request-xfr: 127.0.0.1@${options.primaryPort} ${options.key.name}`,
    `  allow-notify: 127.0.0.1 ${options.key.name}`,
    '',
  ].join('\n');
  const file = join(dir, 'nsd.conf');
  writeFileSync(file, config);
  return run('nsd', 'nsd', ['-d', '-c', file], port, /nsd started/);
}

/**
 * Knot DNS 3 (`knotd`, in the foreground): the zone from the primary (`master`) with the key,
 * NOTIFY allowed from it with the key, its zone kept in its journal only (no zone file written),
 * logs to stderr.
 */
export async function startKnot(options: SecondaryOptions): Promise<RunningSecondary> {
  const dir = options.dir;
  // Knot keeps its journal (the changes IXFR brought) in the database storage, which must exist.
  mkdirSync(join(dir, 'db'), { recursive: true });
  const port = options.port ?? (await freePort());
  const config = [
    'server:',
    `    listen: 127.0.0.1@${port}`,
    `    rundir: "${dir}"`,
    'database:',
    `    storage: "${join(dir, 'db')}"`,
    'key:',
    `  - id: ${options.key.name}`,
    `    algorithm: ${options.key.algorithm}`,
    `    secret: ${Buffer.from(options.key.secret).toString('base64')}`,
    'remote:',
    '  - id: primary',
    `    address: 127.0.0.1@${options.primaryPort}`,
    `    key: ${options.key.name}`,
    'acl:',
    '  - id: notify-from-primary',
    '    address: 127.0.0.1',
    `    key: ${options.key.name}`,
    '    action: notify',
    'template:',
    '  - id: default',
    `    storage: "${dir}"`,
    '    zonefile-sync: -1',
    '    zonefile-load: none',
    '    journal-content: changes',
    'zone:',
    `  - domain: ${options.zone}`,
    '    master: primary',
    '    acl: notify-from-primary',
    'log:',
    '  - target: stderr',
    '    any: info',
    '',
  ].join('\n');
  const file = join(dir, 'knot.conf');
  writeFileSync(file, config);
  return run('knot', 'knotd', ['-c', file], port, /server started in the foreground/);
}

/** Starts `program` and resolves once its output matches `ready`. */
async function run(
  kind: 'nsd' | 'knot',
  program: string,
  args: readonly string[],
  port: number,
  ready: RegExp,
): Promise<RunningSecondary> {
  const child: ChildProcess = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${program} did not start within ${SECONDARY_TIMEOUT_MS} ms:\n${output}`));
    }, SECONDARY_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${program} exited with ${String(code)}:\n${output}`));
    });
  });
  return {
    kind,
    port,
    pid: child.pid ?? 0,
    command: `${program} ${args.join(' ')}`,
    log: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), SECONDARY_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}
