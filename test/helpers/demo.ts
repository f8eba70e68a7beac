import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

/**
 * `mimi-discovery demo` as a user runs it, for whole-network tests: the child process, what it
 * prints, and the shape of the `network.json` it writes (read as a script that has never seen
 * the network would read it).
 */

const REPO = join(import.meta.dirname, '..', '..');
/** The built CLI. */
export const CLI_BIN = join(REPO, 'packages', 'cli', 'dist', 'main.js');
/** How long the demo may take to start every server. */
export const DEMO_READY_MS = 60_000;
/** Ports the demo takes from its `--port-base`. */
export const DEMO_PORTS = 28;

export interface NetworkServer {
  name: string;
  role: 'root' | 'dp' | 'resolver';
  ranges?: string[];
  zones: string[];
  parent?: string;
  udp: { host: string; port: number };
  tcp: { host: string; port: number };
  doh: string;
  api: string | null;
  admin: string;
  config: string;
  queryLog?: string | null;
  pid: number | null;
}

export interface NetworkFile {
  portBase: number;
  pid: number;
  ca: string;
  trustAnchor: { ds: string; bind: string };
  hints: string;
  resolver: { api: string; udp: { host: string; port: number } };
  servers: NetworkServer[];
  examples: Array<{
    csi: string;
    canonical: string;
    expect: 'found' | 'empty' | 'none';
    providers: string[];
    zones: string[];
  }>;
}

/** A running `demo` and what it printed. */
export interface Demo {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `mimi-discovery demo` with `args`. */
export function startDemo(args: readonly string[]): Demo {
  const child = spawn(process.execPath, [CLI_BIN, 'demo', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr?.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Resolves once `text()` matches `pattern`; fails on `exited` or after `ms`. */
export async function waitFor(
  text: () => string,
  pattern: RegExp,
  ms: number,
  exited?: Promise<unknown>,
  what = 'output',
): Promise<void> {
  const deadline = Date.now() + ms;
  let gone = false;
  void exited?.then(() => (gone = true));
  while (!pattern.test(text())) {
    if (gone) throw new Error(`exited before ${pattern}: ${what}`);
    if (Date.now() > deadline) throw new Error(`no ${pattern} within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Resolves once the demo printed its `ready` line. */
export async function waitReady(demo: Demo): Promise<void> {
  await waitFor(
    demo.stdout,
    /^ready /m,
    DEMO_READY_MS,
    demo.exited,
    `stdout ${demo.stdout()} stderr ${demo.stderr()}`,
  );
}

/** Stops a demo still running (SIGTERM) and waits for it to exit. */
export async function stopDemo(demo: Demo | undefined): Promise<void> {
  if (demo === undefined) return;
  if (demo.child.exitCode === null && demo.child.signalCode === null) {
    demo.child.kill('SIGTERM');
    await demo.exited;
  }
}
