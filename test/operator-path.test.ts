import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The operator path of README "Set up a real delegation", run exactly as written from a fresh
// directory: the one sh block after the `<!-- operator-path … -->` marker, its commands in order
// (a line ending in `\` continues on the next). A command ending in `&` is a server: it is
// started in a process group of its own and the next command waits until it has printed its
// listeners, as an operator waits for `serve` to say where it listens; every other command must
// exit 0. The last command's output holds every `expect="…"` of the marker. No file is written
// but by the commands: the directory starts empty.
//
// The commands name literal ports (15500–15511): when one of them is taken, the test is skipped
// with a line saying so, as test/readme.test.ts does for the demo's ports.

const REPO = join(import.meta.dirname, '..');
const README = readFileSync(join(REPO, 'README.md'), 'utf8');
const LINKED_BIN = join(REPO, 'node_modules', '.bin', 'mimi-discovery');
/** Parent of the fresh directories: inside the repository, so that npx finds its bin. */
const WORK_ROOT = join(REPO, 'test', '.tmp-operator-path');
const COMMAND_MS = 60_000;
const SERVER_READY_MS = 60_000;
const STOP_MS = 15_000;

interface OperatorPath {
  commands: string[];
  expect: string[];
}

/** The marked block of the README's section "5. Set up a real delegation". */
function operatorPath(markdown: string): OperatorPath {
  const lines = markdown.split('\n');
  const at = lines.findIndex((line) => /^<!--\s*operator-path\b.*-->\s*$/.test(line));
  if (at < 0) throw new Error('README has no operator-path block');
  const marker = lines[at] ?? '';
  const expect = [...marker.matchAll(/expect="([^"]*)"/g)].map((m) => m[1] ?? '');
  let i = at + 1;
  while ((lines[i] ?? '').trim() === '') i++;
  if (lines[i] !== '```sh')
    throw new Error('the operator-path marker is not followed by a sh block');
  const commands: string[] = [];
  let pending = '';
  for (i++; i < lines.length && lines[i] !== '```'; i++) {
    const line = lines[i] ?? '';
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    commands.push(`${pending}${line}`.replace(/\s+/g, ' ').trim());
    pending = '';
  }
  return { commands: commands.filter((c) => c !== ''), expect };
}

/** The ports the commands name (`--udp 15500`, `https://127.0.0.1:15511`). */
function portsOf(commands: readonly string[]): number[] {
  const ports = new Set<number>();
  for (const command of commands) {
    for (const m of command.matchAll(/--(?:udp|tcp|doh|api|admin) (\d+)/g)) ports.add(Number(m[1]));
    for (const m of command.matchAll(/:\/\/127\.0\.0\.1:(\d+)/g)) ports.add(Number(m[1]));
  }
  return [...ports];
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

const ENV = { ...process.env, npm_config_yes: 'false', NO_COLOR: '1' };

/** Runs one command to its end in `cwd`; resolves with its exit code and output. */
function run(
  command: string,
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], {
      cwd,
      env: ENV,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), COMMAND_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A server started in its own process group, and its output so far. */
interface Background {
  readonly child: ChildProcess;
  readonly command: string;
  readonly output: { stdout: string; stderr: string };
}

/** Starts `command` (without its `&`) and resolves once it has printed its first listener. */
function start(command: string, cwd: string): Promise<Background> {
  const child = spawn('sh', ['-c', `exec ${command}`], {
    cwd,
    env: ENV,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stderr?.on('data', (chunk: Buffer) => (output.stderr += chunk.toString('utf8')));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(new Error(`${command}: no listener within ${SERVER_READY_MS} ms\n${output.stderr}`)),
      SERVER_READY_MS,
    );
    child.stdout?.on('data', (chunk: Buffer) => {
      output.stdout += chunk.toString('utf8');
      if (/^(udp|tcp|doh|api) /m.test(output.stdout)) {
        clearTimeout(timer);
        resolve({ child, command, output });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(
        new Error(`${command} exited with ${String(code)} before listening\n${output.stderr}`),
      );
    });
  });
}

/** Stops a server's process group with SIGTERM (SIGKILL after {@link STOP_MS}). */
async function stop(server: Background): Promise<void> {
  const pid = server.child.pid;
  if (pid === undefined || server.child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => server.child.once('exit', () => resolve()));
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, STOP_MS);
  await exited;
  clearTimeout(timer);
}

const path = operatorPath(README);
const servers: Background[] = [];
let cwd = '';
let skipped: string | undefined;
let last: { code: number | null; stdout: string; stderr: string } | undefined;

beforeAll(async () => {
  const busy: number[] = [];
  for (const port of portsOf(path.commands)) if (!(await portFree(port))) busy.push(port);
  if (busy.length > 0) {
    skipped = `ports ${busy.join(', ')} are in use: the README's commands would reach another network`;
    console.warn(`operator-path: skipped, ${skipped}`);
    return;
  }
  if (!existsSync(LINKED_BIN)) throw new Error(`${LINKED_BIN} is missing: run npm ci`);
  mkdirSync(WORK_ROOT, { recursive: true });
  cwd = mkdtempSync(join(WORK_ROOT, 'run-'));
  for (const command of path.commands) {
    if (command.endsWith('&')) {
      servers.push(await start(command.slice(0, -1).trim(), cwd));
      continue;
    }
    last = await run(command, cwd);
    if (last.code !== 0) {
      throw new Error(`${command} exited with ${String(last.code)}\n${last.stdout}${last.stderr}`);
    }
  }
}, 600_000);

afterAll(async () => {
  await Promise.all(servers.map((server) => stop(server)));
  if (cwd !== '') rmSync(cwd, { recursive: true, force: true });
}, 60_000);

describe('README "Set up a real delegation", from a fresh directory', () => {
  it('is a root, two DPs with a sub-delegation and a resolver, made by commands only', () => {
    expect(path.commands.filter((c) => c.endsWith('&'))).toHaveLength(4);
    expect(path.commands.every((c) => c.startsWith('npx mimi-discovery '))).toBe(true);
    for (const step of ['init root', 'init dp', 'delegate', 'init resolver', 'resolver serve']) {
      expect(path.commands.some((c) => c.startsWith(`npx mimi-discovery ${step} `))).toBe(true);
    }
    // The sub-delegation: a DP is the parent of another.
    expect(path.commands.some((c) => /delegate --config net\/dp/.test(c))).toBe(true);
  });

  it('ends with the lookups the README promises', ({ skip }) => {
    if (skipped !== undefined) skip(skipped);
    expect(path.expect.length).toBeGreaterThan(0);
    for (const text of path.expect) expect(last?.stdout).toContain(text);
  });

  it('serves through a DP whose certificate names only its nameserver, reached by glue address', ({
    skip,
  }) => {
    if (skipped !== undefined) skip(skipped);
    const net = join(cwd, 'net');
    const withoutAddresses = readdirSync(net).filter((dir) => {
      const file = join(net, dir, 'server-cert.pem');
      if (!existsSync(file)) return false;
      const certificate = new X509Certificate(readFileSync(file));
      return certificate.subjectAltName?.includes('IP Address') === false;
    });
    expect(withoutAddresses).toEqual(['dp1202']);
    const san = new X509Certificate(readFileSync(join(net, 'dp1202', 'server-cert.pem')))
      .subjectAltName;
    expect(san).toBe('DNS:ns1.2.0.2.1.e164.mimi.arpa');
    // The +1202 number's denial came from that DP, validated: found through it, not around it.
    expect(last?.stdout).toMatch(
      /tel:\+12025550100 {2}none[^\n]*\n {2}no mapping \(authenticated denial\)/,
    );
  });

  it('wrote the resolver config with init resolver, not by hand', ({ skip }) => {
    if (skipped !== undefined) skip(skipped);
    const config = JSON.parse(
      readFileSync(join(cwd, 'net', 'resolver', 'config.json'), 'utf8'),
    ) as {
      rootHints: string;
      trustAnchor: string;
      ca: string;
    };
    expect(config.rootHints).toBe(join(cwd, 'net', 'root-hints.json'));
    expect(config.trustAnchor).toBe(join(cwd, 'net', 'root.key'));
    expect(config.ca).toBe(join(cwd, 'net', 'ca', 'ca.pem'));
  });
});
