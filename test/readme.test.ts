import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  externalTools,
  readmeBlocks,
  retarget,
  shellWord,
  type Retarget,
} from './helpers/readme.js';

// Every shell block of the README's tour marked `<!-- readme-test -->`, run as written against
// a demo network of its own: another port block and data directory than `npm start`'s, so a
// developer's running demo is never touched. Ports, the `.demo` prefix and `npx mimi-discovery`
// are rewritten from the demo's network.json; a block that calls a DNS tool or curl that is not
// installed is skipped with a line saying so.

const REPO = join(import.meta.dirname, '..');
const BIN = join(REPO, 'packages', 'cli', 'dist', 'main.js');
const README = readFileSync(join(REPO, 'README.md'), 'utf8');
/** The port block the README's commands are written for: `npm start`'s. */
const DEFAULT_BLOCK = { base: 15300, size: 28 };
const READY_MS = 30_000;
const BLOCK_MS = 20_000;

interface Endpoint {
  host: string;
  port: number;
}

interface NetworkFile {
  dir: string;
  portBase: number;
  pid: number;
  ca: string;
  resolver: { api: string; doh: string; udp: Endpoint; tcp: Endpoint; admin: string };
  servers: Array<{
    udp: Endpoint;
    tcp: Endpoint;
    doh: string;
    api: string | null;
    admin: string;
  }>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () =>
      server.close(() => {
        const socket = createSocket('udp4');
        socket.once('error', () => resolve(false));
        socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
      }),
    );
  });
}

/** A block of ports as large as the demo's that is free now, away from the default one. */
async function freeBlock(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 1000) * DEFAULT_BLOCK.size;
    let free = true;
    for (let p = base; p < base + DEFAULT_BLOCK.size && free; p++) free = await portFree(p);
    if (free) return base;
  }
  throw new Error('no free block of ports');
}

/** Every port the network lists, keyed by the port it has in the default block. */
function portMap(net: NetworkFile): Map<number, number> {
  const ports = new Map<number, number>();
  const add = (port: number): void => {
    ports.set(DEFAULT_BLOCK.base + (port - net.portBase), port);
  };
  const addUrl = (url: string | null): void => {
    if (url !== null) add(Number(new URL(url).port));
  };
  for (const s of [...net.servers, net.resolver]) {
    add(s.udp.port);
    add(s.tcp.port);
    addUrl(s.doh);
    addUrl(s.admin);
    if ('api' in s) addUrl(s.api);
  }
  return ports;
}

function installed(tool: string): boolean {
  return spawnSync('bash', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

let dir: string;
let demo: ChildProcess;
let exited: Promise<unknown>;
let target: Retarget;
const blocks = readmeBlocks(README);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mimi-readme-'));
  const portBase = await freeBlock();
  demo = spawn(process.execPath, [BIN, 'demo', '--dir', dir, '--port-base', String(portBase)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  exited = new Promise((resolve) => demo.once('exit', resolve));
  let out = '';
  let err = '';
  demo.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  demo.stderr?.on('data', (c: Buffer) => (err += c.toString('utf8')));
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + READY_MS;
  while (!/^ready /m.test(out)) {
    if (gone || Date.now() > deadline) throw new Error(`the demo is not ready: ${out} ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const net = JSON.parse(readFileSync(join(dir, 'network.json'), 'utf8')) as NetworkFile;
  expect(net.portBase).toBe(portBase);
  target = { ports: portMap(net), dir: net.dir, cli: `node ${shellWord(BIN)}` };
}, READY_MS + 10_000);

afterAll(async () => {
  if (demo !== undefined && demo.exitCode === null && demo.signalCode === null) {
    demo.kill('SIGTERM');
    await exited;
  }
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('the README tour', () => {
  it('has runnable blocks, written for npm start’s ports and .demo', () => {
    expect(README).toMatch(
      new RegExp(`Ports are ${DEFAULT_BLOCK.base}–${DEFAULT_BLOCK.base + DEFAULT_BLOCK.size - 1}`),
    );
    expect(blocks.length).toBeGreaterThanOrEqual(6);
    for (const b of blocks) expect(b.expect.length, `line ${b.line}`).toBeGreaterThan(0);
  });

  it.each(blocks.map((b) => [`${b.heading} (line ${b.line})`, b] as const))(
    'runs %s',
    (_name, block) => {
      const missing = externalTools(block.script).filter((tool) => !installed(tool));
      if (missing.length > 0) {
        console.log(`README line ${block.line}: skipped, ${missing.join(', ')} not installed`);
        return;
      }
      const script = retarget(block.script, target, DEFAULT_BLOCK);
      const result = spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
        cwd: REPO,
        encoding: 'utf8',
        timeout: BLOCK_MS,
      });
      const what = `README line ${block.line}:\n${script}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
      expect(result.status, what).toBe(0);
      for (const text of block.expect) expect(result.stdout, what).toContain(text);
    },
    BLOCK_MS + 5000,
  );
});
