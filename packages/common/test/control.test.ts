import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CONTROL_MAX_REQUEST_OCTETS,
  ControlError,
  changedConfigKeys,
  controlKeyMatches,
  controlRequest,
  createControlDispatcher,
  createLogger,
  createMetricsRegistry,
  generateControlKey,
  openServerControl,
  parseControlKey,
  readControlKeyFile,
  startAdminServer,
  startControlSocket,
  type ControlHandlers,
  type ControlReply,
  type ControlSocket,
} from '../src/index.js';

// The control channel on a real socket and a real admin port: who may connect, what a bad
// request gets, and that nothing a client sends stops it or changes anything.

const dir = mkdtempSync(join(tmpdir(), 'mimi-control-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let sockets = 0;
function socketPath(): string {
  return join(dir, `c${++sockets}.sock`);
}

const handlers: ControlHandlers = {
  status: () => ({ role: 'test' }),
  flush: (request) => ({ flushed: request.name ?? request.csi ?? 'all' }),
  stats: () => {
    throw new Error('the registry is gone');
  },
};

/** Sends `data` as is and resolves with every line the server writes until it closes. */
function raw(
  path: string,
  data: string | Buffer,
  options: { end?: boolean } = {},
): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(text.split('\n').filter((l) => l !== '')));
    socket.on('connect', () => {
      socket.write(data);
      if (options.end !== false) socket.end();
    });
  });
}

function parse(line: string | undefined): ControlReply {
  return JSON.parse(line ?? 'null') as ControlReply;
}

function codeOf(reply: ControlReply): string | undefined {
  return reply.ok ? undefined : reply.error.code;
}

describe('the control socket', () => {
  it('is a socket of mode 0600, answered until closed, and removed when closed', async () => {
    const path = socketPath();
    const socket = await startControlSocket({ path }, createControlDispatcher(handlers));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await controlRequest({ socket: path }, { command: 'status' })).toEqual({
      ok: true,
      result: { role: 'test' },
    });
    await socket.close();
    expect(() => statSync(path)).toThrow();
    await expect(controlRequest({ socket: path }, { command: 'status' })).rejects.toMatchObject({
      code: 'ERR_CONTROL_UNREACHABLE',
    });
  });

  it('refuses a directory that group or others can write, and leaves no socket there', async () => {
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const path = join(open, 'control.sock');
    await expect(
      startControlSocket({ path }, createControlDispatcher(handlers)),
    ).rejects.toMatchObject({ code: 'ERR_CONTROL_PERMISSIONS' });
    expect(() => statSync(path)).toThrow();
  });

  it('makes a missing directory 0700', async () => {
    const path = join(dir, 'made', 'control.sock');
    const socket = await startControlSocket({ path }, createControlDispatcher(handlers));
    expect(statSync(join(dir, 'made')).mode & 0o777).toBe(0o700);
    await socket.close();
  });

  it('refuses a path a running server holds, and one that is not a socket', async () => {
    const path = socketPath();
    const first = await startControlSocket({ path }, createControlDispatcher(handlers));
    await expect(
      startControlSocket({ path }, createControlDispatcher(handlers)),
    ).rejects.toMatchObject({ code: 'ERR_CONTROL_IN_USE' });
    // The first still answers.
    expect((await controlRequest({ socket: path }, { command: 'status' })).ok).toBe(true);
    await first.close();
    const file = join(dir, 'plain-file');
    writeFileSync(file, 'data');
    await expect(
      startControlSocket({ path: file }, createControlDispatcher(handlers)),
    ).rejects.toMatchObject({ code: 'ERR_CONTROL_IN_USE' });
  });

  it('replaces the socket file a crashed server left', async () => {
    const path = socketPath();
    // A server killed while it listens leaves its socket file behind.
    spawnSync(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    expect(statSync(path).isSocket()).toBe(true);
    const socket = await startControlSocket({ path }, createControlDispatcher(handlers));
    expect((await controlRequest({ socket: path }, { command: 'status' })).ok).toBe(true);
    await socket.close();
  });

  it('refuses a path longer than a socket address holds', async () => {
    const path = join(dir, 'x'.repeat(120), 'control.sock');
    await expect(
      startControlSocket({ path }, createControlDispatcher(handlers)),
    ).rejects.toMatchObject({ code: 'ERR_CONTROL_CONFIG' });
  });
});

describe("a server's control channel", () => {
  it('leaves out a default socket it cannot make safely, with a warning, but refuses a configured one', async () => {
    const open = join(dir, 'shared-data');
    mkdirSync(open);
    chmodSync(open, 0o775);
    const lines: string[] = [];
    const log = createLogger('test', { write: (line) => lines.push(line) });
    const path = join(open, 'control.sock');
    const byDefault = await openServerControl(undefined, path, handlers, log);
    await byDefault.listen();
    expect(byDefault.socket).toBeUndefined();
    expect(() => statSync(path)).toThrow();
    expect(lines.map((l) => JSON.parse(l) as { event: string; code?: string })).toEqual([
      expect.objectContaining({ event: 'control-socket-off', code: 'ERR_CONTROL_PERMISSIONS' }),
    ]);
    const configured = await openServerControl(
      { socket: path, maxClients: 8, timeoutMs: 1000 },
      undefined,
      handlers,
      log,
    );
    await expect(configured.listen()).rejects.toMatchObject({ code: 'ERR_CONTROL_PERMISSIONS' });
  });

  it('refuses to start with a key file others can read', async () => {
    const file = join(dir, 'open.key');
    writeFileSync(file, generateControlKey(), { mode: 0o644 });
    chmodSync(file, 0o644);
    await expect(
      openServerControl(
        { keyFile: file, maxClients: 8, timeoutMs: 1000 },
        undefined,
        handlers,
        createLogger('test', { level: 'silent' }),
      ),
    ).rejects.toMatchObject({ code: 'ERR_CONTROL_PERMISSIONS' });
  });
});

describe('requests', () => {
  let socket: ControlSocket;
  let path: string;
  const ready = (async () => {
    path = socketPath();
    socket = await startControlSocket(
      { path, maxClients: 3, timeoutMs: 300 },
      createControlDispatcher(handlers),
    );
  })();
  afterAll(async () => {
    await ready;
    await socket.close();
  });

  it.each([
    ['not JSON', 'status\n', 'ERR_CONTROL_BAD_REQUEST'],
    ['an array', '[]\n', 'ERR_CONTROL_BAD_REQUEST'],
    ['no command', '{"name":"x"}\n', 'ERR_CONTROL_BAD_REQUEST'],
    ['an unknown command', '{"command":"shutdown"}\n', 'ERR_CONTROL_UNKNOWN_COMMAND'],
    ['an unknown argument', '{"command":"status","force":true}\n', 'ERR_CONTROL_BAD_REQUEST'],
    ['a wrong argument type', '{"command":"flush","name":5}\n', 'ERR_CONTROL_BAD_REQUEST'],
    [
      'both name and csi',
      '{"command":"flush","name":"a.","csi":"tel:+44"}\n',
      'ERR_CONTROL_BAD_REQUEST',
    ],
    ['a command this server lacks', '{"command":"zone-status"}\n', 'ERR_CONTROL_UNSUPPORTED'],
    ['a command that fails', '{"command":"stats"}\n', 'ERR_CONTROL_FAILED'],
  ])('answers %s with a stable code and keeps serving', async (_what, line, code) => {
    await ready;
    const [reply] = await raw(path, line);
    expect(codeOf(parse(reply))).toBe(code);
    expect(await controlRequest({ socket: path }, { command: 'status' })).toMatchObject({
      ok: true,
    });
  });

  it('answers several requests on one connection in order', async () => {
    await ready;
    const lines = await raw(
      path,
      '{"command":"flush","name":"a."}\n\n{"command":"flush","csi":"tel:+442079460018"}\n',
    );
    expect(lines.map((l) => parse(l))).toEqual([
      { ok: true, result: { flushed: 'a.' } },
      { ok: true, result: { flushed: 'tel:+442079460018' } },
    ]);
  });

  it('cuts a request line over the size bound', async () => {
    await ready;
    const lines = await raw(path, 'x'.repeat(CONTROL_MAX_REQUEST_OCTETS + 10), { end: false });
    expect(lines.map((l) => codeOf(parse(l)))).toEqual(['ERR_CONTROL_TOO_LARGE']);
  });

  it('closes a connection that sends no whole request in time', async () => {
    await ready;
    const lines = await raw(path, '{"command":', { end: false });
    expect(lines.map((l) => codeOf(parse(l)))).toEqual(['ERR_CONTROL_TIMEOUT']);
  });

  it('turns away connections over the bound, and serves the others', async () => {
    await ready;
    const held = await Promise.all(
      [1, 2, 3].map(
        () =>
          new Promise<ReturnType<typeof connect>>((resolve) => {
            const s = connect(path, () => resolve(s));
          }),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(socket.clients()).toBe(3);
    const [reply] = await raw(path, '{"command":"status"}\n');
    expect(codeOf(parse(reply))).toBe('ERR_CONTROL_BUSY');
    for (const s of held) s.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await controlRequest({ socket: path }, { command: 'status' })).ok).toBe(true);
  });

  it('answers concurrent callers, each its own reply', async () => {
    await ready;
    const replies = await Promise.all(
      ['a.', 'b.', 'c.'].map((name) =>
        controlRequest({ socket: path }, { command: 'flush', name }),
      ),
    );
    expect(replies).toEqual([
      { ok: true, result: { flushed: 'a.' } },
      { ok: true, result: { flushed: 'b.' } },
      { ok: true, result: { flushed: 'c.' } },
    ]);
  });
});

describe('the dispatcher', () => {
  it('runs reloads one at a time', async () => {
    let running = 0;
    let most = 0;
    const dispatcher = createControlDispatcher({
      reload: async () => {
        most = Math.max(most, ++running);
        await new Promise((resolve) => setTimeout(resolve, 20));
        running--;
        return { applied: [] };
      },
    });
    const replies = await Promise.all(
      [1, 2, 3].map(() => dispatcher.dispatch('{"command":"reload"}')),
    );
    expect(replies.every((r) => r.ok)).toBe(true);
    expect(most).toBe(1);
  });

  it('answers a command that does not finish in time with ERR_CONTROL_TIMEOUT', async () => {
    const dispatcher = createControlDispatcher(
      { status: () => new Promise(() => undefined) },
      { commandTimeoutMs: 50 },
    );
    expect(codeOf(await dispatcher.dispatch({ command: 'status' }))).toBe('ERR_CONTROL_TIMEOUT');
  });
});

describe('the admin port', () => {
  const key = parseControlKey(generateControlKey());
  const other = parseControlKey(generateControlKey());

  async function admin(control: { key: Uint8Array | undefined } | undefined) {
    return startAdminServer(
      { port: 0 },
      {
        registry: createMetricsRegistry('test'),
        health: () => ({ ok: true }),
        ...(control === undefined
          ? {}
          : { control: { dispatcher: createControlDispatcher(handlers), key: control.key } }),
      },
    );
  }

  it('runs a request that carries the key', async () => {
    const server = await admin({ key });
    try {
      expect(await controlRequest({ url: server.url, key }, { command: 'status' })).toEqual({
        ok: true,
        result: { role: 'test' },
      });
    } finally {
      await server.close();
    }
  });

  it('refuses a wrong key, a missing one, and control without a configured key', async () => {
    const server = await admin({ key });
    const unkeyed = await admin({ key: undefined });
    const none = await admin(undefined);
    try {
      const wrong = await controlRequest({ url: server.url, key: other }, { command: 'status' });
      expect(codeOf(wrong)).toBe('ERR_CONTROL_UNAUTHORIZED');
      const missing = await fetch(`${server.url}/control`, {
        method: 'POST',
        body: '{"command":"status"}',
      });
      expect(missing.status).toBe(401);
      for (const s of [unkeyed, none]) {
        const reply = await controlRequest({ url: s.url, key }, { command: 'status' });
        expect(codeOf(reply)).toBe('ERR_CONTROL_DISABLED');
      }
    } finally {
      await Promise.all([server.close(), unkeyed.close(), none.close()]);
    }
  });

  it('answers a bad request, a body too large and a GET with their errors', async () => {
    const server = await admin({ key });
    const authorization = `Bearer ${Buffer.from(key).toString('hex')}`;
    try {
      const bad = await fetch(`${server.url}/control`, {
        method: 'POST',
        headers: { authorization },
        body: '{"command":',
      });
      expect(bad.status).toBe(400);
      expect(codeOf((await bad.json()) as ControlReply)).toBe('ERR_CONTROL_BAD_REQUEST');
      const large = await fetch(`${server.url}/control`, {
        method: 'POST',
        headers: { authorization },
        body: 'x'.repeat(CONTROL_MAX_REQUEST_OCTETS + 1),
      });
      expect(large.status).toBe(413);
      const get = await fetch(`${server.url}/control`, { headers: { authorization } });
      expect(get.status).toBe(405);
      // The port still serves its other endpoints.
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('keys', () => {
  it('matches only the exact key, whatever the length presented', () => {
    const key = parseControlKey(generateControlKey());
    const hex = Buffer.from(key).toString('hex');
    expect(controlKeyMatches(`Bearer ${hex}`, key)).toBe(true);
    expect(controlKeyMatches(`Bearer ${hex.slice(0, 62)}`, key)).toBe(false);
    expect(controlKeyMatches(`Bearer ${hex}00`, key)).toBe(false);
    expect(controlKeyMatches(`Basic ${hex}`, key)).toBe(false);
    expect(controlKeyMatches(undefined, key)).toBe(false);
  });

  it('reads a 0600 key file and refuses one others can read or one without a key', async () => {
    const file = join(dir, 'control.key');
    writeFileSync(file, generateControlKey(), { mode: 0o600 });
    expect((await readControlKeyFile(file)).length).toBe(32);
    chmodSync(file, 0o644);
    await expect(readControlKeyFile(file)).rejects.toMatchObject({
      code: 'ERR_CONTROL_PERMISSIONS',
    });
    writeFileSync(join(dir, 'short.key'), 'abcd\n', { mode: 0o600 });
    await expect(readControlKeyFile(join(dir, 'short.key'))).rejects.toBeInstanceOf(ControlError);
  });
});

describe('changedConfigKeys', () => {
  it.each([
    [{ a: 1 }, { a: 1 }, []],
    [{ a: 1, b: { c: 2 } }, { a: 1, b: { c: 3 } }, ['b.c']],
    [{ a: [1, 2] }, { a: [1, 3] }, ['a']],
    [{ a: 1 }, { a: 1, b: { c: 1 } }, ['b']],
    [{ listen: { udp: 1, tcp: 2 } }, { listen: { udp: 5, tcp: 2 } }, ['listen.udp']],
  ])('compares %j with %j', (before, after, changed) => {
    expect(changedConfigKeys(before, after)).toEqual(changed);
  });
});
