import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { connect as connectSocket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import {
  buildQuery,
  createDohClient,
  issueServerCertificate,
  type ControlReply,
} from '@mimi-discovery/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN } from './helpers/demo.js';
import { requireBuiltPackages } from './helpers/dp-process.js';

// The control channel of a root directory run as an operator runs it: `mimi-discovery serve`
// in a process of its own, `mimi-discovery ctl` against it over the socket and the admin port,
// SIGHUP swapping a renewed certificate while DoH queries run, SIGTERM ending with "stopped".

const dir = mkdtempSync(join(tmpdir(), 'mimi-ctl-'));
const config = join(dir, 'root', 'config.json');
const ZONE = 'mimi.arpa';

interface Listener {
  listener: string;
  url?: string;
  port: number;
}

interface Server {
  child: ChildProcess;
  listeners: Listener[];
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs the command line to the end: exit code, stdout, stderr. */
function cli(args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI_BIN, ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, MIMI_DISCOVERY_CONFIG: '' },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function ok(args: readonly string[]): string {
  const result = cli(args);
  if (result.code !== 0)
    throw new Error(`mimi-discovery ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

function ctlJson<T>(args: readonly string[]): T {
  return JSON.parse(ok(['ctl', '--config', config, ...args, '--json'])) as T;
}

/** `serve --json` in a process of its own, once it has printed its listeners. */
function startServe(): Promise<Server> {
  const child = spawn(process.execPath, [CLI_BIN, 'serve', '--config', config, '--json'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 30_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const lines = stdout.split('\n').filter((l) => l !== '');
      if (!lines.some((l) => l.includes('"admin"'))) return;
      clearTimeout(timer);
      resolve({
        child,
        listeners: lines.map((l) => JSON.parse(l) as Listener),
        stderr: () => stderr,
        exited,
      });
    });
    void exited.then(() => reject(new Error(`serve exited: ${stderr}`)));
  });
}

function listener(server: Server, kind: string): Listener {
  const found = server.listeners.find((l) => l.listener === kind);
  if (found === undefined) throw new Error(`no ${kind} listener`);
  return found;
}

/** The fingerprint of the certificate the DoH listener gives a new connection. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

/** Sends raw octets to the control socket and returns the first line of the reply. */
function rawControl(data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectSocket(join(dir, 'root', 'control.sock'));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n')) {
        socket.destroy();
        resolve(text.split('\n')[0] ?? '');
      }
    });
    socket.on('error', reject);
    socket.on('connect', () => socket.write(data));
  });
}

let server: Server;

beforeAll(async () => {
  requireBuiltPackages();
  ok(['init', 'root', '--dir', 'root', '--udp', '0', '--tcp', '0', '--doh', '0', '--ca-dir', 'ca']);
  ok(['ctl', 'keygen', '--out', 'root/control.key']);
  const raw = JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;
  const listen = raw.listen as Record<string, unknown>;
  writeFileSync(
    config,
    JSON.stringify({
      ...raw,
      listen: { ...listen, admin: 0 },
      control: { keyFile: 'control.key' },
    }),
  );
  server = await startServe();
}, 120_000);

afterAll(async () => {
  if (server !== undefined && server.child.exitCode === null) {
    server.child.kill('SIGKILL');
    await server.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('ctl over the control socket', () => {
  it('makes the socket 0600', () => {
    expect(statSync(join(dir, 'root', 'control.sock')).mode & 0o777).toBe(0o600);
  });

  it('reports the status: role, listeners, config file', () => {
    const status = ctlJson<{ role: string; configFile: string; listeners: Listener[] }>(['status']);
    expect(status.role).toBe('root');
    expect(status.configFile).toBe(config);
    expect(status.listeners.map((l) => l.listener)).toEqual(
      expect.arrayContaining(['udp', 'tcp', 'doh', 'admin', 'control']),
    );
    // The text form names the same.
    expect(ok(['ctl', '--config', config, 'status'])).toMatch(/^role: root$/m);
  });

  it('reports the zone: the serial served, its signing key, the next re-sign', () => {
    const udp = listener(server, 'udp').port;
    const dig = spawnSync('dig', ['+short', '-p', String(udp), '@127.0.0.1', ZONE, 'SOA'], {
      encoding: 'utf8',
    });
    const served = Number(dig.stdout.trim().split(/\s+/)[2]);
    const status = ctlJson<{
      zones: Array<{
        zone: string;
        serial: number;
        keys: Array<{ keyTag: number; state: string }>;
        nextResign: number;
      }>;
    }>(['zone-status', '--zone', ZONE]);
    expect(status.zones).toHaveLength(1);
    expect(status.zones[0]?.zone).toBe(ZONE);
    if (dig.status === 0 && Number.isInteger(served)) expect(status.zones[0]?.serial).toBe(served);
    expect(status.zones[0]?.keys).toEqual([
      expect.objectContaining({ state: 'active', keyTag: expect.any(Number) as number }),
    ]);
    expect(status.zones[0]?.nextResign).toBeGreaterThan(Date.now() / 1000);
    const keys = ctlJson<{ zones: Array<{ keys: Array<{ keyTag: number }> }> }>(['key-status']);
    expect(keys.zones[0]?.keys[0]?.keyTag).toBe(status.zones[0]?.keys[0]?.keyTag);
  });

  it('gives the metrics as JSON', () => {
    const stats = ctlJson<Array<{ name: string; values: unknown[] }>>(['stats']);
    expect(stats.map((m) => m.name)).toContain('authoritative_queries_total');
  });

  it('answers what it cannot do with a stable code and exit 2', () => {
    const flush = cli(['ctl', '--config', config, 'flush']);
    expect(flush.code).toBe(2);
    expect(flush.stderr).toContain('ERR_CONTROL_UNSUPPORTED');
    const zone = cli(['ctl', '--config', config, 'zone-status', '--zone', 'nowhere.example']);
    expect(zone.code).toBe(2);
    expect(zone.stderr).toContain('ERR_CONTROL_NO_ZONE');
  });

  it('answers a malformed request with an error and keeps serving', async () => {
    for (const [line, code] of [
      ['{"command":"status"', 'ERR_CONTROL_BAD_REQUEST'],
      ['{"command":"reboot"}', 'ERR_CONTROL_UNKNOWN_COMMAND'],
      ['{"command":"zone-status","zone":7}', 'ERR_CONTROL_BAD_REQUEST'],
    ] as const) {
      const reply = JSON.parse(await rawControl(`${line}\n`)) as ControlReply;
      expect(reply.ok ? undefined : reply.error.code).toBe(code);
    }
    expect(ctlJson<{ role: string }>(['status']).role).toBe('root');
  });
});

describe('ctl over the admin port', () => {
  it('runs a command with the key, and refuses a wrong key', () => {
    const admin = listener(server, 'admin').url ?? '';
    const status = JSON.parse(
      ok(['ctl', '--admin', admin, '--key-file', 'root/control.key', 'status', '--json']),
    ) as { role: string };
    expect(status.role).toBe('root');
    ok(['ctl', 'keygen', '--out', 'other.key']);
    const wrong = cli(['ctl', '--admin', admin, '--key-file', 'other.key', 'status']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('ERR_CONTROL_UNAUTHORIZED');
  });
});

describe('reload', () => {
  it('names a changed key that needs a restart and keeps serving with the old value', () => {
    const before = readFileSync(config, 'utf8');
    const raw = JSON.parse(before) as Record<string, unknown>;
    writeFileSync(config, JSON.stringify({ ...raw, log: { level: 'debug' } }));
    try {
      const report = ctlJson<{ applied: string[]; restartNeeded: string[] }>(['reload']);
      expect(report.applied).toEqual(['tls']);
      expect(report.restartNeeded).toEqual(['log.level']);
    } finally {
      writeFileSync(config, before);
    }
  });

  it('refuses a config that does not parse, changing nothing', () => {
    const before = readFileSync(config, 'utf8');
    writeFileSync(config, '{ "role": "root", ');
    try {
      const reload = cli(['ctl', '--socket', 'root/control.sock', 'reload']);
      expect(reload.code).toBe(2);
      expect(reload.stderr).toMatch(/ERR_CONFIG/);
    } finally {
      writeFileSync(config, before);
    }
    expect(ctlJson<{ lastReload: { ok: boolean } }>(['status']).lastReload.ok).toBe(false);
  });

  it('swaps a renewed certificate on SIGHUP while DoH queries run, none failing', async () => {
    const doh = listener(server, 'doh');
    const url = doh.url ?? '';
    const caPem = readFileSync(join(dir, 'ca', 'ca.pem'), 'utf8');
    const ca = { certPem: caPem, keyPem: readFileSync(join(dir, 'ca', 'ca-key.pem'), 'utf8') };
    const paths = JSON.parse(readFileSync(config, 'utf8')) as {
      tls: { cert: string; key: string };
    };
    const certPath = resolve(dir, 'root', paths.tls.cert);
    const keyPath = resolve(dir, 'root', paths.tls.key);
    const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;
    const before = fingerprint(readFileSync(certPath, 'utf8'));
    expect(await servedFingerprint(doh.port)).toBe(before);
    const renewed = await issueServerCertificate(ca, {
      hostnames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });

    const install = (c: { certPem: string; keyPem: string }): void => {
      // As certbot and the like renew: new files renamed into place, the key never half-written.
      writeFileSync(`${keyPath}.new`, c.keyPem, { mode: 0o600 });
      writeFileSync(`${certPath}.new`, c.certPem);
      renameSync(`${keyPath}.new`, keyPath);
      renameSync(`${certPath}.new`, certPath);
    };

    let running = true;
    let answered = 0;
    const failures: unknown[] = [];
    // One client keeps its connection (the old context serves it on), the other makes a new
    // connection, and so a new handshake, for every query.
    const kept = createDohClient({ ca: caPem });
    const keptLoop = (async () => {
      while (running) {
        try {
          await kept.query(url, buildQuery(ZONE, 'SOA'));
          answered++;
        } catch (error) {
          failures.push(error);
        }
      }
    })();
    const freshLoop = (async () => {
      while (running) {
        const fresh = createDohClient({ ca: caPem, allowH2: false });
        try {
          await fresh.query(url, buildQuery(ZONE, 'NS'));
          answered++;
        } catch (error) {
          failures.push(error);
        } finally {
          await fresh.close();
        }
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 300));
    install(renewed);
    const reloadsBefore = server.stderr().split('"event":"reloaded"').length;
    server.child.kill('SIGHUP');
    const deadline = Date.now() + 15_000;
    while (server.stderr().split('"event":"reloaded"').length === reloadsBefore) {
      if (Date.now() > deadline) throw new Error(`no reload logged: ${server.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const atReload = answered;
    expect(atReload).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 500));
    running = false;
    await Promise.all([keptLoop, freshLoop]);
    await kept.close();
    expect(failures).toEqual([]);
    expect(answered).toBeGreaterThan(atReload);
    expect(await servedFingerprint(doh.port)).toBe(fingerprint(renewed.certPem));
    expect(server.child.exitCode).toBeNull();
  });
});

describe('signals', () => {
  it('ends on SIGTERM with a "stopped" line, exit 0, and the socket gone', async () => {
    server.child.kill('SIGTERM');
    const { code } = await server.exited;
    expect(code).toBe(0);
    const last = server.stderr().trim().split('\n').at(-1) ?? '';
    expect(JSON.parse(last)).toMatchObject({ event: 'stopped', signal: 'SIGTERM' });
    expect(existsSync(join(dir, 'root', 'control.sock'))).toBe(false);
  });
});
