import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './ports.js';

/**
 * A stock validating Unbound on 127.0.0.1, for the conformance test of design §5: it trusts only
 * our root's DS, reaches the root directory and each DP through `stub-zone`s (the servers are
 * not on port 53), and validates everything it returns. {@link runUnbound} runs the process for
 * the tests and for the bench's Unbound (bench/lib/unbound.ts), each with its own config.
 */

/** A zone and the plain-DNS port of its server on 127.0.0.1. */
export interface StubZone {
  readonly zone: string;
  readonly port: number;
}

/** A running Unbound. */
export interface RunningUnbound {
  readonly port: number;
  /** Everything Unbound logged so far (its log goes to stderr). */
  log(): string;
  /** Stops it (SIGTERM, then SIGKILL if it lingers) and resolves when it has exited. */
  stop(): Promise<void>;
}

/** How long Unbound may take to start or stop (and the bench's unbound-control to answer). */
export const UNBOUND_TIMEOUT_MS = 10_000;

/** An `unbound -d` process. */
export interface UnboundProcess {
  readonly pid: number;
  /** `unbound -d -c <config file>`. */
  readonly command: string;
  readonly configFile: string;
  /** Everything Unbound logged so far (its log goes to stderr). */
  log(): string;
  /** Stops it (SIGTERM, then SIGKILL if it lingers) and resolves when it has exited. */
  stop(): Promise<void>;
}

/**
 * Writes `config` to `dir/unbound.conf` and starts `unbound -d` on it; resolves once it logs
 * "start of service", and fails if it exits first or takes longer than
 * {@link UNBOUND_TIMEOUT_MS}.
 */
export async function runUnbound(dir: string, config: string): Promise<UnboundProcess> {
  const configFile = join(dir, 'unbound.conf');
  writeFileSync(configFile, config);
  const args = ['-d', '-c', configFile];
  const child: ChildProcess = spawn('unbound', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`unbound did not start within ${UNBOUND_TIMEOUT_MS} ms:\n${output}`));
    }, UNBOUND_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.includes('start of service')) {
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
      reject(new Error(`unbound exited with ${String(code)}:\n${output}`));
    });
  });
  return {
    pid: child.pid ?? 0,
    command: `unbound ${args.join(' ')}`,
    configFile,
    log: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), UNBOUND_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The unbound.conf text. */
export function unboundConfig(options: {
  dir: string;
  port: number;
  trustAnchorFile: string;
  stubs: readonly StubZone[];
}): string {
  const stubs = options.stubs.flatMap((s) => [
    'stub-zone:',
    `  name: "${s.zone}"`,
    `  stub-addr: 127.0.0.1@${s.port}`,
  ]);
  return [
    'server:',
    '  interface: 127.0.0.1',
    `  port: ${options.port}`,
    '  do-ip6: no',
    '  do-not-query-localhost: no',
    `  trust-anchor-file: "${options.trustAnchorFile}"`,
    '  module-config: "validator iterator"',
    '  chroot: ""',
    '  username: ""',
    `  directory: "${options.dir}"`,
    `  pidfile: "${join(options.dir, 'unbound.pid')}"`,
    '  use-syslog: no',
    '  logfile: ""',
    '  verbosity: 1',
    '  val-log-level: 2',
    '  harden-dnssec-stripped: yes',
    '  qname-minimisation: yes',
    ...stubs,
    '',
  ].join('\n');
}

/** Writes the config into `dir` and starts `unbound -d`; resolves once it serves. */
export async function startUnbound(options: {
  dir: string;
  trustAnchorFile: string;
  stubs: readonly StubZone[];
}): Promise<RunningUnbound> {
  const port = await freePort();
  const unbound = await runUnbound(options.dir, unboundConfig({ ...options, port }));
  return { port, log: unbound.log, stop: unbound.stop };
}
