import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/ports.js';

/** A stock authoritative server (NSD or Knot) serving the exported zone. */
export interface StockServer {
  name: 'nsd' | 'knot';
  port: number;
  pid: number;
  command: string;
  config: string;
  stop(): Promise<void>;
}

export function installed(binary: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A SOA query for `origin` (id 0x4242, RD clear), built by hand to stay independent of our code. */
function soaQuery(origin: string): Buffer {
  const labels = origin.split('.').map((l) => Buffer.concat([Buffer.of(l.length), Buffer.from(l)]));
  return Buffer.concat([
    Buffer.from([0x42, 0x42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...labels,
    Buffer.from([0, 0, 6, 0, 1]),
  ]);
}

/** Resolves once the server at `port` answers the zone's SOA with NOERROR and an answer. */
export async function waitForZone(port: number, origin: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const query = soaQuery(origin);
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createSocket('udp4');
      const timer = setTimeout(() => {
        socket.close();
        resolve(false);
      }, 500);
      socket.on('message', (msg) => {
        clearTimeout(timer);
        socket.close();
        const rcode = (msg[3] ?? 0) & 0x0f;
        const answers = msg.readUInt16BE(6);
        resolve(rcode === 0 && answers > 0);
      });
      socket.send(query, port, '127.0.0.1');
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no SOA answer for ${origin} on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
}

function launch(command: string, args: string[], logFile: string): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: string[] = [];
  child.stdout?.on('data', (d: Buffer) => chunks.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => chunks.push(d.toString()));
  child.on('exit', () => writeFileSync(logFile, chunks.join('')));
  return child;
}

/**
 * The working directory of one server: `<dir>/<name>` for one worker (as before `workers`), and
 * `<dir>/<name>-<workers>` for more, so that both run at once.
 */
function workDir(dir: string, name: string, workers: number): string {
  return join(dir, workers === 1 ? name : `${name}-${workers}`);
}

/**
 * Starts NSD in the foreground: `server-count: workers` server processes (default 1; NSD forks
 * them as children of its main process), no chroot, no privilege drop.
 */
export async function startNsd(
  dir: string,
  origin: string,
  zoneFile: string,
  workers = 1,
): Promise<StockServer> {
  const work = workDir(dir, 'nsd', workers);
  mkdirSync(work, { recursive: true });
  const port = await freePort();
  const config = join(work, 'nsd.conf');
  writeFileSync(
    config,
    [
      'server:',
      `  ip-address: 127.0.0.1@${port}`,
      '  do-ip6: no',
      `  server-count: ${workers}`,
      '  username: ""',
      '  chroot: ""',
      `  zonesdir: "${work}"`,
      `  pidfile: "${join(work, 'nsd.pid')}"`,
      '  database: ""',
      `  zonelistfile: "${join(work, 'zone.list')}"`,
      `  xfrdfile: "${join(work, 'xfrd.state')}"`,
      `  logfile: "${join(work, 'nsd.log')}"`,
      '  verbosity: 1',
      // Response rate limiting would cap one client at 200 answers a second.
      '  rrl-ratelimit: 0',
      '  rrl-whitelist-ratelimit: 0',
      'remote-control:',
      '  control-enable: no',
      'zone:',
      `  name: "${origin}"`,
      `  zonefile: "${zoneFile}"`,
      '',
    ].join('\n'),
  );
  const args = ['-d', '-c', config];
  const child = launch('nsd', args, join(work, 'stdout.log'));
  await waitForZone(port, origin, 120_000);
  return {
    name: 'nsd',
    port,
    pid: child.pid ?? 0,
    command: `nsd ${args.join(' ')}`,
    config,
    stop: stopper(child),
  };
}

/**
 * Starts knotd in the foreground: `udp-workers` and `tcp-workers` both `workers` (default 1,
 * threads of the one process), running as root, zone file loaded whole.
 */
export async function startKnot(
  dir: string,
  origin: string,
  zoneFile: string,
  workers = 1,
): Promise<StockServer> {
  const work = workDir(dir, 'knot', workers);
  mkdirSync(work, { recursive: true });
  const port = await freePort();
  const config = join(work, 'knot.conf');
  writeFileSync(
    config,
    [
      'server:',
      `    rundir: "${work}"`,
      `    listen: 127.0.0.1@${port}`,
      `    udp-workers: ${workers}`,
      `    tcp-workers: ${workers}`,
      '    background-workers: 1',
      'control:',
      `    listen: "${join(work, 'knot.sock')}"`,
      'database:',
      `    storage: "${work}"`,
      'log:',
      '  - target: stderr',
      '    any: notice',
      'template:',
      '  - id: default',
      `    storage: "${work}"`,
      '    zonefile-sync: -1',
      '    zonefile-load: whole',
      '    journal-content: none',
      'zone:',
      `  - domain: ${origin}`,
      `    file: "${zoneFile}"`,
      '',
    ].join('\n'),
  );
  const args = ['-c', config];
  const child = launch('knotd', args, join(work, 'stdout.log'));
  await waitForZone(port, origin, 120_000);
  return {
    name: 'knot',
    port,
    pid: child.pid ?? 0,
    command: `knotd ${args.join(' ')}`,
    config,
    stop: stopper(child),
  };
}
