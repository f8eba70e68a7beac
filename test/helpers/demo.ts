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
/** Ports the demo takes from its `--port-base`: 4 for each of its 9 servers. */
export const DEMO_PORTS = 36;

/** A plain DNS address. */
export interface DnsAddress {
  host: string;
  port: number;
}

export interface NetworkServer {
  name: string;
  role: 'root' | 'dp' | 'resolver' | 'issuer' | 'relay';
  description: string;
  ranges: string[];
  zones: string[];
  parent: string | null;
  /** Null for the issuer and the relay, which speak no DNS. */
  udp: DnsAddress | null;
  tcp: DnsAddress | null;
  doh: string | null;
  /** A DP's registration API, the resolver's JSON API, the issuer's token API, the relay's URL. */
  api: string | null;
  admin: string;
  config: string;
  log: string;
  /** Null unless `demo --query-log`; always null for the issuer. */
  queryLog: string | null;
  pid: number | null;
}

/** The oblivious relay. */
export interface NetworkRelay {
  url: string;
  /** Its resource for the resolver's gateway: `lookup --relay URL`. */
  ohttp: string;
  /** Its ODoH proxy. */
  odohProxy: string;
  admin: string;
}

/** The resolver's oblivious gateway and its published keys. */
export interface NetworkGateway {
  url: string;
  odohConfigs: string;
  odohTarget: string;
  /** Owner of its KEYCONF RRset, without the final dot. */
  keyName: string;
  /** Its public-key file. */
  publicKeys: string;
  /** OHTTP key configs published at the demo's start, base64url, newest first. */
  keyConfigs: string[];
}

/** The Privacy Pass issuer and its users. */
export interface NetworkIssuer {
  url: string;
  /** issuer_name of the token challenges (`host:port`). */
  name: string;
  keyName: string;
  publicKeys: string;
  tokensPerPeriod: number;
  periodSeconds: number;
  csisPerToken: number;
  /** Each user's id and the file of its bearer credential. */
  users: Array<{ id: string; credential: string }>;
}

export interface NetworkFile {
  version: number;
  apex: string;
  dir: string;
  portBase: number;
  pid: number;
  ca: string;
  trustAnchor: { ds: string; bind: string };
  hints: string;
  resolver: { api: string; doh: string; udp: DnsAddress; tcp: DnsAddress; admin: string };
  relay: NetworkRelay;
  gateway: NetworkGateway;
  issuer: NetworkIssuer;
  servers: NetworkServer[];
  examples: Array<{
    csi: string;
    canonical: string;
    expect: 'found' | 'empty' | 'none';
    providers: string[];
    zones: string[];
    note: string;
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
