import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { externalTools, readmeBlocks } from './helpers/readme.js';

// Every shell block of the README's tour marked `<!-- readme-test -->`, run exactly as written:
// `npx mimi-discovery …` (npm's link to packages/cli/bin, no rewriting), the literal ports of
// `npm start`'s network and its `.demo/…` paths. So the test gives the commands what a reader
// has, with nothing of the reader's touched:
//
// - a demo of its own, started as `npm start` starts it, on the default ports 15300–15335 (the
//   numbers the commands name), with `--dir .demo` in a fresh directory under
//   test/.tmp-readme/ (git-ignored);
// - the blocks run with that directory as their working directory: there `.demo` is the test's
//   demo, and `npx` finds the repository's node_modules/.bin, as from the repository root;
// - when something already holds those ports (typically the reader's own `npm start`), the
//   demo refuses to start (ERR_CLI_PORT_BUSY) and every block is skipped with a line saying
//   so: the commands name those ports, so they would reach that network instead;
// - `npm_config_yes=false` for npx: it runs the linked bin and may never fetch a package;
// - a block that calls a DNS tool or curl that is not installed is skipped with a line.

const REPO = join(import.meta.dirname, '..');
const CLI_BIN = join(REPO, 'packages', 'cli', 'bin', 'mimi-discovery.js');
const LINKED_BIN = join(REPO, 'node_modules', '.bin', 'mimi-discovery');
const README = readFileSync(join(REPO, 'README.md'), 'utf8');
/** The port block the README's commands are written for: `npm start`'s. */
const DEFAULT_BLOCK = { base: 15300, size: 36 };
/** Parent of the directories the tour runs in: inside the repository, for npx. */
const WORK_ROOT = join(REPO, 'test', '.tmp-readme');
const READY_MS = 90_000;
const BLOCK_MS = 60_000;
const STOP_MS = 15_000;

interface Endpoint {
  host: string;
  port: number;
}

interface NetworkFile {
  portBase: number;
  /** `udp`, `tcp` and `doh` are null for the issuer and the relay, which speak no DNS. */
  servers: Array<{
    udp: Endpoint | null;
    tcp: Endpoint | null;
    doh: string | null;
    api: string | null;
    admin: string;
  }>;
}

/** Ready: the blocks run in `cwd`. Busy: something else holds the ports, as `reason` says. */
type Setup = { kind: 'ready'; cwd: string; net: NetworkFile } | { kind: 'busy'; reason: string };

/** Every port the network listens on. */
function portsOf(net: NetworkFile): Set<number> {
  const ports = new Set<number>();
  for (const s of net.servers) {
    if (s.udp !== null) ports.add(s.udp.port);
    if (s.tcp !== null) ports.add(s.tcp.port);
    for (const url of [s.doh, s.api, s.admin])
      if (url !== null) ports.add(Number(new URL(url).port));
  }
  return ports;
}

/** The README's section `## title`, up to the next `## ` heading. */
function section(markdown: string, title: string): string {
  const start = markdown.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`README has no section ${title}`);
  const end = markdown.indexOf('\n## ', start + 1);
  return markdown.slice(start, end < 0 ? undefined : end);
}

function installed(tool: string): boolean {
  return spawnSync('bash', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

const blocks = readmeBlocks(README);
let setup: Setup;
let workDir: string | undefined;
let demo: ChildProcess | undefined;
let exited: Promise<unknown> = Promise.resolve();

beforeAll(async () => {
  // `npx mimi-discovery` must be the repository's own command, linked by npm at install time.
  let linked = '';
  try {
    linked = realpathSync(LINKED_BIN);
  } catch {
    // Reported below.
  }
  if (linked !== realpathSync(CLI_BIN)) {
    throw new Error(
      `${LINKED_BIN} does not lead to ${CLI_BIN}: run npm ci (or npm install) so that npm links the bin`,
    );
  }

  mkdirSync(WORK_ROOT, { recursive: true });
  const cwd = mkdtempSync(join(WORK_ROOT, 'run-'));
  workDir = cwd;
  // As `npm start` runs it, with its data in this directory's .demo.
  const child = spawn(process.execPath, [CLI_BIN, 'demo', '--dir', '.demo'], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  demo = child;
  let gone = false;
  exited = new Promise((resolve) => child.once('exit', resolve)).then(() => (gone = true));
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const deadline = Date.now() + READY_MS;
  while (!/^ready /m.test(out)) {
    if (gone && err.includes('(ERR_CLI_PORT_BUSY)')) {
      const last = DEFAULT_BLOCK.base + DEFAULT_BLOCK.size - 1;
      setup = {
        kind: 'busy',
        reason: `ports ${DEFAULT_BLOCK.base}–${last}, which the commands name, are taken (is npm start running?)`,
      };
      console.log(`README tour: skipped, ${setup.reason}: ${err.trim()}`);
      return;
    }
    if (gone || Date.now() > deadline) throw new Error(`the demo is not ready:\n${out}\n${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const net = JSON.parse(readFileSync(join(cwd, '.demo', 'network.json'), 'utf8')) as NetworkFile;
  setup = { kind: 'ready', cwd, net };
}, READY_MS + 10_000);

afterAll(async () => {
  if (demo !== undefined && demo.exitCode === null && demo.signalCode === null) {
    demo.kill('SIGTERM');
    const timer = setTimeout(() => demo?.kill('SIGKILL'), STOP_MS);
    await exited;
    clearTimeout(timer);
  }
  if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
  if (existsSync(WORK_ROOT) && readdirSync(WORK_ROOT).length === 0)
    rmSync(WORK_ROOT, { recursive: true });
}, STOP_MS + 5000);

describe('the README tour', () => {
  it('has runnable blocks, written for npm start’s ports and .demo', () => {
    expect(README).toMatch(
      new RegExp(`Ports are ${DEFAULT_BLOCK.base}–${DEFAULT_BLOCK.base + DEFAULT_BLOCK.size - 1}`),
    );
    expect(blocks.length).toBeGreaterThanOrEqual(6);
    for (const b of blocks) expect(b.expect.length, `line ${b.line}`).toBeGreaterThan(0);
  });

  it('names only ports that npm start’s network listens on', (context) => {
    if (setup.kind === 'busy') return context.skip(setup.reason);
    const listening = portsOf(setup.net);
    expect(setup.net.portBase).toBe(DEFAULT_BLOCK.base);
    // The operator path of "Set up a real delegation" runs its own network on its own ports
    // (test/operator-path.test.ts checks it): its block and the range the prose names are left out.
    const tour = section(README, 'Tour')
      .replace(/<!-- operator-path[^]*?```sh\n[^]*?```/, '')
      .replace(/15500–15511/g, '');
    const named = [...tour.matchAll(/\b1\d{4}\b/g)].map((m) => Number(m[0]));
    expect(named.length).toBeGreaterThan(0);
    for (const port of named) expect(listening, `port ${port}`).toContain(port);
  });

  it.for(blocks.map((b) => [`${b.heading} (line ${b.line})`, b] as const))(
    'runs %s',
    { timeout: BLOCK_MS + 5000 },
    ([, block], context) => {
      if (setup.kind === 'busy') return context.skip(setup.reason);
      const missing = externalTools(block.script).filter((tool) => !installed(tool));
      if (missing.length > 0) {
        const note = `README line ${block.line}: skipped, ${missing.join(', ')} not installed`;
        console.log(note);
        return context.skip(note);
      }
      const result = spawnSync('bash', ['-euo', 'pipefail', '-c', block.script], {
        cwd: setup.cwd,
        env: { ...process.env, npm_config_yes: 'false' },
        encoding: 'utf8',
        timeout: BLOCK_MS,
      });
      const what = `README line ${block.line}:\n${block.script}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
      expect(result.status, what).toBe(0);
      for (const text of block.expect) expect(result.stdout, what).toContain(text);
    },
  );
});
