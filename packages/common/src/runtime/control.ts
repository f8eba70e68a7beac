/**
 * The control channel of every server (design §10), as operators know it from `knotc` and
 * `unbound-control`: `mimi-discovery ctl status|reload|flush|zone-status|key-status|stats`.
 *
 * Two ways in, one protocol:
 *
 * - a local stream socket (`control.socket`, default `<dataDir>/control.sock`): file permissions
 *   are the access control, as for Knot's and Unbound's sockets. The socket is made with mode
 *   0600 (the process umask is narrowed around the bind, then the mode is set again) in a
 *   directory its owner alone can write, so that nobody else can connect to it or put another
 *   socket in its place; a directory writable by group or others is refused, as ssh refuses a
 *   key file others can read.
 * - `POST /control` on the admin port, with the key of `control.keyFile` (32 random octets, hex)
 *   as `Authorization: Bearer <hex>`, compared in constant time (the SHA-256 of both sides, so
 *   that neither the key nor its length leaks through timing). Without a key file the admin port
 *   refuses control.
 *
 * A request is one JSON object on one line (newline-delimited JSON): `{"command":"flush",
 * "name":"+44.mimi.arpa."}`; the reply is one line, `{"ok":true,"result":{…}}` or
 * `{"ok":false,"error":{"code":"ERR_CONTROL_BAD_REQUEST","message":"…"}}`, with a stable code.
 * Bounded: a request line at most {@link CONTROL_MAX_REQUEST_OCTETS}, at most
 * {@link CONTROL_MAX_CLIENTS} connections at once, each request whole within `timeoutMs` of the
 * previous reply, each command answered within {@link CONTROL_COMMAND_TIMEOUT_MS}, at most
 * {@link CONTROL_MAX_REQUESTS_PER_CONNECTION} requests per connection. A malformed request gets
 * its error reply and changes nothing; it never stops the server.
 */
import { X509Certificate, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { z } from 'zod';
import { MimiError } from '../protocol/errors.js';
import { silentLogger, type Logger } from './log.js';
import { positiveIntSchema, timeoutMsSchema } from './config.js';
import type { MetricsRegistry, Registry } from './metrics.js';

/** Largest request line, newline included: a command and a name fit in far less. */
export const CONTROL_MAX_REQUEST_OCTETS = 4_096;
/**
 * Largest reply a client reads: `stats` of a server with many zones is the largest, and stays
 * well within this.
 */
export const CONTROL_MAX_REPLY_OCTETS = 16 * 2 ** 20;
/** Default most control connections at once: an operator and a script or two. */
export const CONTROL_MAX_CLIENTS = 8;
/**
 * Default bound on receiving a whole request, from the accept or the previous reply; an idle
 * connection is closed after it.
 */
export const CONTROL_TIMEOUT_MS = 10_000;
/** Bound on one command's run: a reply within it, else `ERR_CONTROL_TIMEOUT`. */
export const CONTROL_COMMAND_TIMEOUT_MS = 60_000;
/** Most requests on one connection; then it is closed (the client connects again). */
export const CONTROL_MAX_REQUESTS_PER_CONNECTION = 64;
/** Octets of a control key (`control.keyFile`): 256 bits, hex in the file. */
export const CONTROL_KEY_OCTETS = 32;
/** Longest socket path Linux takes (`sun_path` is 108 octets with its terminating NUL). */
export const CONTROL_MAX_SOCKET_PATH_OCTETS = 107;
/** File name of the socket in the data directory when `control.socket` is not given. */
export const CONTROL_SOCKET_NAME = 'control.sock';

/** The commands of the control channel. */
export const CONTROL_COMMANDS = Object.freeze([
  'status',
  'reload',
  'flush',
  'zone-status',
  'key-status',
  'stats',
] as const);

/** A command's name. */
export type ControlCommandName = (typeof CONTROL_COMMANDS)[number];

/** The stable codes of a {@link ControlError}, in replies and on the client side. */
export type ControlErrorCode =
  /** Not one JSON object, or a key or value the command does not take. */
  | 'ERR_CONTROL_BAD_REQUEST'
  /** A request line over {@link CONTROL_MAX_REQUEST_OCTETS}. */
  | 'ERR_CONTROL_TOO_LARGE'
  /** A command this channel does not know. */
  | 'ERR_CONTROL_UNKNOWN_COMMAND'
  /** A known command this server does not run (`flush` on a DP). */
  | 'ERR_CONTROL_UNSUPPORTED'
  /** Too many connections at once, or too many requests on one. */
  | 'ERR_CONTROL_BUSY'
  /** A request not received, or a command not run, in time. */
  | 'ERR_CONTROL_TIMEOUT'
  /** The command ran and failed (a reload of a config that does not parse, an unknown zone). */
  | 'ERR_CONTROL_FAILED'
  /** The admin port's key is missing or wrong. */
  | 'ERR_CONTROL_UNAUTHORIZED'
  /** The admin port has no control key configured: it refuses control. */
  | 'ERR_CONTROL_DISABLED'
  /** A socket directory or key file others can write or read. */
  | 'ERR_CONTROL_PERMISSIONS'
  /** The socket path is taken by a running server, or is not a socket. */
  | 'ERR_CONTROL_IN_USE'
  /** A socket path too long, a key file that does not hold a key. */
  | 'ERR_CONTROL_CONFIG'
  /** The client reached no server. */
  | 'ERR_CONTROL_UNREACHABLE'
  /** `zone-status` or `key-status` of a zone the server does not serve. */
  | 'ERR_CONTROL_NO_ZONE';

/** A control channel fault, with a stable code. */
export class ControlError extends MimiError<ControlErrorCode> {}

/** Config section `control` of every server. */
export const controlConfigSchema = z.strictObject({
  /** The socket's path; default `<dataDir>/control.sock`; `null`: no socket. */
  socket: z.string().min(1).nullable().optional(),
  /** A file holding the admin port's control key; absent: the admin port refuses control. */
  keyFile: z.string().min(1).optional(),
  /** Most control connections at once. */
  maxClients: positiveIntSchema.default(CONTROL_MAX_CLIENTS),
  /** Bound on receiving a request; idle connections are closed after it. */
  timeoutMs: timeoutMsSchema.default(CONTROL_TIMEOUT_MS),
});

/** The `control` config section, defaults filled in. */
export type ControlConfig = z.output<typeof controlConfigSchema>;

const zoneArg = z.string().min(1).max(255);

/** The request schema: one strict object per command, so a misspelt argument is an error. */
const requestSchema = z.discriminatedUnion('command', [
  z.strictObject({ command: z.literal('status') }),
  z.strictObject({ command: z.literal('reload') }),
  z.strictObject({ command: z.literal('stats') }),
  z
    .strictObject({
      command: z.literal('flush'),
      name: zoneArg.optional(),
      csi: z.string().min(1).max(320).optional(),
    })
    .refine((r) => r.name === undefined || r.csi === undefined, {
      error: 'give name or csi, not both',
    }),
  z.strictObject({ command: z.literal('zone-status'), zone: zoneArg.optional() }),
  z.strictObject({ command: z.literal('key-status'), zone: zoneArg.optional() }),
]);

/** One control request. */
export type ControlRequest = z.output<typeof requestSchema>;

/** A reply: the command's result, or an error with a stable code. */
export type ControlReply =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly error: { readonly code: string; readonly message: string } };

/** What a server runs for each command it has; a command left out is `ERR_CONTROL_UNSUPPORTED`. */
export type ControlHandlers = {
  readonly [K in ControlCommandName]?: (
    request: Extract<ControlRequest, { command: K }>,
  ) => unknown;
};

/**
 * Checks one request (already JSON-parsed, or a line of text): a known command with the
 * arguments it takes. Throws `ControlError`.
 */
export function parseControlRequest(raw: unknown): ControlRequest {
  let value = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw) as unknown;
    } catch {
      throw new ControlError('ERR_CONTROL_BAD_REQUEST', 'the request is not JSON');
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ControlError('ERR_CONTROL_BAD_REQUEST', 'the request must be a JSON object');
  const command = (value as { command?: unknown }).command;
  if (typeof command !== 'string')
    throw new ControlError('ERR_CONTROL_BAD_REQUEST', 'the request has no "command" string');
  if (!(CONTROL_COMMANDS as readonly string[]).includes(command))
    throw new ControlError(
      'ERR_CONTROL_UNKNOWN_COMMAND',
      `unknown command ${JSON.stringify(command.slice(0, 64))} (commands: ${CONTROL_COMMANDS.join(', ')})`,
    );
  const parsed = requestSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
    throw new ControlError(
      'ERR_CONTROL_BAD_REQUEST',
      `${command}: ${where}${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}

/** Runs requests through handlers, each bounded in time. */
export interface ControlDispatcher {
  /** Parses and runs one request; never rejects: a fault is an error reply. */
  dispatch(raw: unknown): Promise<ControlReply>;
}

/** Options of {@link createControlDispatcher}. */
export interface ControlDispatcherOptions {
  /** Default {@link CONTROL_COMMAND_TIMEOUT_MS}. */
  commandTimeoutMs?: number;
  log?: Logger;
}

/**
 * The one place requests are checked and run, for the socket and the admin port alike.
 * `reload` runs one at a time (a second waits for the first), so two reloads never swap
 * certificates against each other.
 */
export function createControlDispatcher(
  handlers: ControlHandlers,
  options: ControlDispatcherOptions = {},
): ControlDispatcher {
  const timeoutMs = options.commandTimeoutMs ?? CONTROL_COMMAND_TIMEOUT_MS;
  const log = options.log ?? silentLogger;
  let reloads: Promise<unknown> = Promise.resolve();
  const run = (request: ControlRequest): Promise<unknown> => {
    const handler = handlers[request.command] as ((r: ControlRequest) => unknown) | undefined;
    if (handler === undefined) {
      return Promise.reject(
        new ControlError(
          'ERR_CONTROL_UNSUPPORTED',
          `${request.command} is not a command of this server`,
        ),
      );
    }
    if (request.command !== 'reload') return Promise.resolve().then(() => handler(request));
    const next = reloads.then(() => handler(request));
    reloads = next.catch(() => undefined);
    return next;
  };
  return {
    async dispatch(raw) {
      let request: ControlRequest;
      try {
        request = parseControlRequest(raw);
      } catch (error) {
        return errorReply(error);
      }
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new ControlError(
                'ERR_CONTROL_TIMEOUT',
                `${request.command} took longer than ${timeoutMs} ms`,
              ),
            ),
          timeoutMs,
        );
        timer.unref();
      });
      // What changes the server is logged at info; what only reads it (a monitor's `status`
      // every few seconds) at debug.
      const record = request.command === 'reload' || request.command === 'flush' ? 'info' : 'debug';
      try {
        const result = await Promise.race([run(request), timeout]);
        log[record]('control', { command: request.command, ok: true });
        return { ok: true, result: result ?? null };
      } catch (error) {
        const reply = errorReply(error);
        log[record]('control', {
          command: request.command,
          ok: false,
          ...(reply.ok ? {} : { code: reply.error.code }),
        });
        return reply;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** The error reply of a fault: its own code when it has one, else `ERR_CONTROL_FAILED`. */
export function errorReply(error: unknown): ControlReply {
  if (error instanceof MimiError) {
    const code = String(error.code).startsWith('ERR_') ? String(error.code) : 'ERR_CONTROL_FAILED';
    return { ok: false, error: { code, message: error.message } };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { ok: false, error: { code: 'ERR_CONTROL_FAILED', message } };
}

/** The HTTP status of a reply on the admin port. */
export function controlReplyStatus(reply: ControlReply): number {
  if (reply.ok) return 200;
  switch (reply.error.code) {
    case 'ERR_CONTROL_BUSY':
      return 503;
    case 'ERR_CONTROL_TIMEOUT':
      return 504;
    case 'ERR_CONTROL_FAILED':
      return 500;
    case 'ERR_CONTROL_TOO_LARGE':
      return 413;
    default:
      return 400;
  }
}

// ------------------------------------------------------------------------------------------
// What the servers' commands share

/**
 * The dotted paths of the leaves that differ between two parsed configs (`listen.udp`,
 * `limits.doh.maxConnections`), sorted; a subtree present in only one of them is its own path.
 * `reload` names these when they need a restart.
 */
export function changedConfigKeys(before: unknown, after: unknown, prefix = ''): string[] {
  if (Object.is(before, after)) return [];
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
  if (isObject(before) && isObject(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    const out: string[] = [];
    for (const key of [...keys].sort()) {
      out.push(
        ...changedConfigKeys(before[key], after[key], prefix === '' ? key : `${prefix}.${key}`),
      );
    }
    return out;
  }
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  return [prefix === '' ? '(config)' : prefix];
}

/** What `reload` and `status` say of a certificate: subject, names, validity, fingerprint. */
export interface CertificateSummary {
  readonly subject: string;
  readonly subjectAltName: string | undefined;
  readonly validFrom: string;
  readonly validTo: string;
  readonly fingerprint256: string;
}

/** The summary of the first certificate of a PEM chain. */
export function certificateSummary(pem: string | Uint8Array): CertificateSummary {
  const certificate = new X509Certificate(typeof pem === 'string' ? pem : Buffer.from(pem));
  return {
    subject: certificate.subject,
    subjectAltName: certificate.subjectAltName,
    validFrom: new Date(certificate.validFrom).toISOString(),
    validTo: new Date(certificate.validTo).toISOString(),
    fingerprint256: certificate.fingerprint256,
  };
}

/** `stats`: every metric of a registry as JSON (name, type, and each labelled value). */
export async function metricsJson(registry: Registry | MetricsRegistry): Promise<unknown> {
  const inner = 'getMetricsAsJSON' in registry ? registry : registry.registry;
  const metrics = await inner.getMetricsAsJSON();
  return metrics.map((m) => ({
    name: m.name,
    type: m.type,
    values: m.values.map((v) => ({ labels: v.labels, value: v.value })),
  }));
}

/** The TLS material and every other setting a reload compares. */
export interface ReloadableSettings {
  readonly tls?: { cert: string | Uint8Array; key: string | Uint8Array } | undefined;
}

/** What a `reload` did: what it applied, and the changed keys that need a restart. */
export interface ReloadReport {
  /** The config file re-read; undefined when the server was started without one. */
  readonly configFile: string | undefined;
  /** `tls` when the certificate and key were swapped. */
  readonly applied: readonly string[];
  /** Changed keys that need a restart; they keep their old value until then. */
  readonly restartNeeded: readonly string[];
  /** The certificate now served, when the server has TLS listeners. */
  readonly certificate: CertificateSummary | undefined;
}

/** A listener whose TLS context can be swapped. */
interface TlsListener {
  setTls(tls: { cert: string | Uint8Array; key: string | Uint8Array }): void;
}

/**
 * The reload of a server whose settings hold its certificate and key (PEM): `read` gives the settings as the config file says now; the
 * certificate and key are swapped on every TLS listener (open connections keep theirs); every
 * other changed key is named as needing a restart and keeps its value. One that cannot be used
 * changes nothing and rejects, logged.
 */
export function createTlsReload<S extends ReloadableSettings>(
  initial: S,
  read: (() => Promise<S>) | undefined,
  listeners: () => readonly TlsListener[],
  context: { configFile: string | undefined; log: Logger },
): () => Promise<ReloadReport> {
  let current = initial;
  return async () => {
    try {
      const next = read === undefined ? current : await read();
      const restartNeeded = changedConfigKeys(
        { ...current, tls: current.tls === undefined },
        { ...next, tls: next.tls === undefined },
      );
      const applied: string[] = [];
      let certificate: CertificateSummary | undefined;
      const targets = listeners();
      if (next.tls !== undefined && targets.length > 0) {
        // The first swap checks the pair: when it throws, nothing has changed.
        for (const listener of targets) listener.setTls(next.tls);
        certificate = certificateSummary(next.tls.cert);
        applied.push('tls');
        current = { ...current, tls: next.tls };
      }
      context.log.info('reloaded', {
        applied,
        restartNeeded,
        ...(certificate === undefined ? {} : { certificateValidTo: certificate.validTo }),
      });
      return { configFile: context.configFile, applied, restartNeeded, certificate };
    } catch (error) {
      context.log.error('reload-failed', { error });
      throw error;
    }
  };
}

// ------------------------------------------------------------------------------------------
// Keys of the admin port

/** A new control key, as the key file holds it: 64 hex digits and a newline. */
export function generateControlKey(): string {
  return `${randomBytes(CONTROL_KEY_OCTETS).toString('hex')}\n`;
}

/** Parses a key file's text: {@link CONTROL_KEY_OCTETS} octets in hex. Throws `ControlError`. */
export function parseControlKey(text: string, source = 'the control key'): Uint8Array {
  const hex = text.trim();
  if (!new RegExp(`^[0-9a-fA-F]{${2 * CONTROL_KEY_OCTETS}}$`).test(hex))
    throw new ControlError(
      'ERR_CONTROL_CONFIG',
      `${source} must hold ${CONTROL_KEY_OCTETS} octets in hex (${2 * CONTROL_KEY_OCTETS} digits)`,
    );
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

/**
 * Reads a control key file; refuses (`ERR_CONTROL_PERMISSIONS`) one that group or others can
 * read or write, as ssh refuses such a private key.
 */
export async function readControlKeyFile(path: string): Promise<Uint8Array> {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (error) {
    throw new ControlError('ERR_CONTROL_CONFIG', `cannot read control key file ${path}`, {
      cause: error,
    });
  }
  if ((mode & 0o077) !== 0)
    throw new ControlError(
      'ERR_CONTROL_PERMISSIONS',
      `control key file ${path} is accessible by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`,
    );
  return parseControlKey(await readFile(path, 'utf8'), `control key file ${path}`);
}

/**
 * Whether `given` (an `Authorization` header) carries `key`: `Bearer <hex>`, compared in
 * constant time over the SHA-256 of both, so that timing tells nothing of the key or its length.
 */
export function controlKeyMatches(given: string | undefined, key: Uint8Array): boolean {
  const match = /^Bearer ([0-9a-fA-F]{1,256})$/.exec(given ?? '');
  const presented = match?.[1] === undefined ? new Uint8Array(0) : Buffer.from(match[1], 'hex');
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(key).digest();
  return timingSafeEqual(a, b) && match !== null;
}

// ------------------------------------------------------------------------------------------
// The socket

/** Where and how the control socket listens. */
export interface ControlSocketOptions {
  path: string;
  /** Default {@link CONTROL_MAX_CLIENTS}. */
  maxClients?: number;
  /** Default {@link CONTROL_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/** A listening control socket. */
export interface ControlSocket {
  readonly path: string;
  /** Connections open now. */
  clients(): number;
  /** Stops listening, closes every connection and removes the socket file. */
  close(): Promise<void>;
}

/**
 * Checks the socket's directory (made 0700 when missing): owned by this process's user and
 * writable by nobody else. Throws `ControlError` `ERR_CONTROL_PERMISSIONS`.
 */
export function checkControlDirectory(dir: string): void {
  let stat;
  try {
    stat = lstatSync(dir);
  } catch {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      stat = lstatSync(dir);
    } catch (error) {
      throw new ControlError(
        'ERR_CONTROL_CONFIG',
        `cannot make control socket directory ${dir}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
  }
  if (!stat.isDirectory())
    throw new ControlError(
      'ERR_CONTROL_CONFIG',
      `control socket directory ${dir} is not a directory`,
    );
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid)
    throw new ControlError(
      'ERR_CONTROL_PERMISSIONS',
      `control socket directory ${dir} belongs to uid ${stat.uid}, not to this server's (${uid})`,
    );
  if ((stat.mode & 0o022) !== 0)
    throw new ControlError(
      'ERR_CONTROL_PERMISSIONS',
      `control socket directory ${dir} is writable by group or others (mode ${(stat.mode & 0o777).toString(8)}): chmod go-w it, or set control.socket`,
    );
}

/** Whether a server answers on the socket at `path` (a stale file from a crash does not). */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    const done = (answers: boolean): void => {
      probe.destroy();
      resolve(answers);
    };
    probe.once('connect', () => done(true));
    probe.once('error', () => done(false));
    probe.setTimeout(1_000, () => done(false));
  });
}

/**
 * Listens on the control socket and runs each request line through `dispatcher`. Throws
 * `ControlError`: `ERR_CONTROL_PERMISSIONS` for an unsafe directory, `ERR_CONTROL_IN_USE` when a
 * running server holds the path (or it is not a socket), `ERR_CONTROL_CONFIG` for a path too
 * long. A socket file left by a server that crashed is replaced.
 */
export async function startControlSocket(
  options: ControlSocketOptions,
  dispatcher: ControlDispatcher,
  components: { log?: Logger } = {},
): Promise<ControlSocket> {
  const log = components.log ?? silentLogger;
  const path = options.path;
  const maxClients = options.maxClients ?? CONTROL_MAX_CLIENTS;
  const timeoutMs = options.timeoutMs ?? CONTROL_TIMEOUT_MS;
  if (Buffer.byteLength(path) > CONTROL_MAX_SOCKET_PATH_OCTETS)
    throw new ControlError(
      'ERR_CONTROL_CONFIG',
      `control socket path ${path} is longer than ${CONTROL_MAX_SOCKET_PATH_OCTETS} octets: set control.socket to a shorter one`,
    );
  checkControlDirectory(dirname(path));
  let existing;
  try {
    existing = lstatSync(path);
  } catch {
    existing = undefined;
  }
  if (existing !== undefined) {
    if (!existing.isSocket())
      throw new ControlError('ERR_CONTROL_IN_USE', `${path} exists and is not a socket`);
    if (await socketAnswers(path))
      throw new ControlError(
        'ERR_CONTROL_IN_USE',
        `another server is running with control socket ${path}`,
      );
    unlinkSync(path);
  }

  const connections = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: false }, (socket) => {
    if (connections.size >= maxClients) {
      socket.end(replyLine(busy(`more than ${maxClients} control connections at once`)));
      socket.destroySoon();
      return;
    }
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    serveConnection(socket, dispatcher, timeoutMs, log);
  });
  server.maxConnections = maxClients * 2;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new ControlError('ERR_CONTROL_CONFIG', `cannot listen on ${path}: ${error.message}`, {
          cause: error,
        }),
      ),
    );
    // The bind happens inside listen(), synchronously: a umask of 0177 makes the file 0600 from
    // its first instant, and the chmod that follows in the same turn makes sure of it where the
    // umask cannot be changed (a worker thread).
    let previous: number | undefined;
    try {
      previous = process.umask(0o177);
    } catch {
      previous = undefined;
    }
    try {
      server.listen(path);
    } finally {
      if (previous !== undefined) process.umask(previous);
    }
    try {
      chmodSync(path, 0o600);
    } catch {
      // The bind failed: the error event says why.
    }
    server.once('listening', () => resolve());
  });
  server.on('error', (error) => log.error('control-socket-error', { error }));
  log.info('listening', { listener: 'control', path });
  let closing: Promise<void> | undefined;
  return {
    path,
    clients: () => connections.size,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of connections) socket.destroy();
      }).then(() => {
        try {
          unlinkSync(path);
        } catch {
          // Already gone: node removes a socket file it made when it closes.
        }
      })),
  };
}

function busy(message: string): ControlReply {
  return { ok: false, error: { code: 'ERR_CONTROL_BUSY', message } };
}

function replyLine(reply: ControlReply): string {
  return `${JSON.stringify(reply)}\n`;
}

/**
 * One connection: lines in, replies out, one request at a time (reading pauses while a command
 * runs), each line within the size bound and `timeoutMs`.
 */
function serveConnection(
  socket: Socket,
  dispatcher: ControlDispatcher,
  timeoutMs: number,
  log: Logger,
): void {
  let buffered = '';
  let served = 0;
  let running = false;
  let finished = false;
  let timer: NodeJS.Timeout | undefined;
  const finish = (reply: ControlReply): void => {
    finished = true;
    buffered = '';
    clearTimeout(timer);
    socket.end(replyLine(reply));
    socket.destroySoon();
  };
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(
      () =>
        finish({
          ok: false,
          error: {
            code: 'ERR_CONTROL_TIMEOUT',
            message: `no whole request within ${timeoutMs} ms`,
          },
        }),
      timeoutMs,
    );
    timer.unref();
  };
  const next = (): void => {
    if (running || finished || socket.destroyed) return;
    const end = buffered.indexOf('\n');
    if (end < 0) {
      if (Buffer.byteLength(buffered) >= CONTROL_MAX_REQUEST_OCTETS) {
        finish({
          ok: false,
          error: {
            code: 'ERR_CONTROL_TOO_LARGE',
            message: `a request line is at most ${CONTROL_MAX_REQUEST_OCTETS} octets`,
          },
        });
      }
      return;
    }
    const line = buffered.slice(0, end).replace(/\r$/, '');
    buffered = buffered.slice(end + 1);
    if (Buffer.byteLength(line) >= CONTROL_MAX_REQUEST_OCTETS) {
      finish({
        ok: false,
        error: {
          code: 'ERR_CONTROL_TOO_LARGE',
          message: `a request line is at most ${CONTROL_MAX_REQUEST_OCTETS} octets`,
        },
      });
      return;
    }
    if (line.trim() === '') {
      next();
      return;
    }
    if (++served > CONTROL_MAX_REQUESTS_PER_CONNECTION) {
      finish(busy(`at most ${CONTROL_MAX_REQUESTS_PER_CONNECTION} requests per connection`));
      return;
    }
    running = true;
    clearTimeout(timer);
    socket.pause();
    dispatcher
      .dispatch(line)
      .then((reply) => {
        running = false;
        if (socket.destroyed) return;
        socket.write(replyLine(reply));
        socket.resume();
        arm();
        next();
      })
      .catch((error: unknown) => {
        // dispatch never rejects; a fault here is a bug, answered rather than thrown.
        log.error('control-dispatch-failed', { error });
        finish(errorReply(error));
      });
  };
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    if (finished) return;
    buffered += chunk;
    next();
  });
  socket.on('error', () => socket.destroy());
  socket.on('close', () => clearTimeout(timer));
  arm();
}

// ------------------------------------------------------------------------------------------
// A server's control channel, as the servers start it

/** A server's control channel: the dispatcher, the admin port's key, the socket once listening. */
export interface ServerControl {
  readonly dispatcher: ControlDispatcher;
  /** The admin port's key; undefined: the admin port refuses control. */
  readonly key: Uint8Array | undefined;
  /** The socket, once {@link ServerControl.listen} has run; undefined when configured off. */
  readonly socket: ControlSocket | undefined;
  /** Starts the socket: last in a server's start, so control never meets a half-started server. */
  listen(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The control channel of a server from its `control` section: reads the key file (refusing one
 * others can read) now, so that a bad one stops the start with a clear error; the socket at
 * `control.socket`, else `defaultSocket` (left out with a `control-socket-off` warning where it
 * cannot be made safely), else none.
 */
export async function openServerControl(
  section: ControlConfig | undefined,
  defaultSocket: string | undefined,
  handlers: ControlHandlers,
  log: Logger,
): Promise<ServerControl> {
  const key =
    section?.keyFile === undefined ? undefined : await readControlKeyFile(section.keyFile);
  const dispatcher = createControlDispatcher(handlers, { log });
  const path = section?.socket === null ? undefined : (section?.socket ?? defaultSocket);
  let socket: ControlSocket | undefined;
  return {
    dispatcher,
    key,
    get socket() {
      return socket;
    },
    async listen() {
      if (path === undefined || socket !== undefined) return;
      try {
        socket = await startControlSocket(
          {
            path,
            ...(section?.maxClients === undefined ? {} : { maxClients: section.maxClients }),
            ...(section?.timeoutMs === undefined ? {} : { timeoutMs: section.timeoutMs }),
          },
          dispatcher,
          { log },
        );
      } catch (error) {
        // A socket the operator asked for is made safely or the start fails. The default one is
        // left out, with a warning, where it cannot be made safely (a data directory others can
        // write, a path too long) or another server of the same data directory holds it: a
        // server that ran before keeps starting, never with an unsafe socket.
        const configured = typeof section?.socket === 'string';
        if (
          configured ||
          !(error instanceof ControlError) ||
          (error.code !== 'ERR_CONTROL_PERMISSIONS' &&
            error.code !== 'ERR_CONTROL_CONFIG' &&
            error.code !== 'ERR_CONTROL_IN_USE')
        )
          throw error;
        log.warn('control-socket-off', { path, code: error.code, reason: error.message });
      }
    },
    async close() {
      await socket?.close();
    },
  };
}

// ------------------------------------------------------------------------------------------
// The client

/** Where a control request goes: a socket, or the admin port with its key. */
export type ControlTarget =
  { readonly socket: string } | { readonly url: string; readonly key: Uint8Array };

/** Options of {@link controlRequest}. */
export interface ControlRequestOptions {
  /** Bound on the whole exchange; default {@link CONTROL_COMMAND_TIMEOUT_MS} + 5 s. */
  timeoutMs?: number;
}

/**
 * Sends one request and returns the server's reply (an error reply included). Throws
 * `ControlError` when no reply comes: `ERR_CONTROL_UNREACHABLE`, `ERR_CONTROL_PERMISSIONS` (the
 * socket is not this user's), `ERR_CONTROL_TIMEOUT`.
 */
export async function controlRequest(
  target: ControlTarget,
  request: ControlRequest,
  options: ControlRequestOptions = {},
): Promise<ControlReply> {
  const timeoutMs = options.timeoutMs ?? CONTROL_COMMAND_TIMEOUT_MS + 5_000;
  const body = JSON.stringify(request);
  if ('socket' in target) return socketRequest(target.socket, body, timeoutMs);
  const url = `${target.url.replace(/\/+$/, '')}/control`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${Buffer.from(target.key).toString('hex')}`,
        'content-type': 'application/json',
      },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const timedOut = error instanceof Error && error.name === 'TimeoutError';
    throw new ControlError(
      timedOut ? 'ERR_CONTROL_TIMEOUT' : 'ERR_CONTROL_UNREACHABLE',
      timedOut ? `no reply from ${url} within ${timeoutMs} ms` : `cannot reach ${url}`,
      { cause: error },
    );
  }
  const text = await response.text();
  return parseReply(text, url);
}

function parseReply(text: string, source: string): ControlReply {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ControlError('ERR_CONTROL_UNREACHABLE', `${source} did not answer with JSON`);
  }
  if (typeof value === 'object' && value !== null) {
    const v = value as { ok?: unknown; result?: unknown; error?: unknown };
    if (v.ok === true) return { ok: true, result: v.result };
    // The admin port's own errors (no key, 404) use the `{ error: { code, message } }` shape.
    const error = v.error as { code?: unknown; message?: unknown } | undefined;
    if (typeof error?.code === 'string' && typeof error.message === 'string')
      return { ok: false, error: { code: error.code, message: error.message } };
  }
  throw new ControlError('ERR_CONTROL_UNREACHABLE', `${source} did not answer a control reply`);
}

function socketRequest(path: string, body: string, timeoutMs: number): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let text = '';
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      outcome();
    };
    const timer = setTimeout(
      () =>
        settle(() =>
          reject(
            new ControlError('ERR_CONTROL_TIMEOUT', `no reply on ${path} within ${timeoutMs} ms`),
          ),
        ),
      timeoutMs,
    );
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(`${body}\n`));
    socket.on('data', (chunk: string) => {
      text += chunk;
      const end = text.indexOf('\n');
      if (end >= 0) {
        const line = text.slice(0, end);
        settle(() => {
          try {
            resolve(parseReply(line, path));
          } catch (error) {
            reject(error);
          }
        });
      } else if (text.length > CONTROL_MAX_REPLY_OCTETS) {
        settle(() =>
          reject(new ControlError('ERR_CONTROL_UNREACHABLE', `the reply on ${path} is too large`)),
        );
      }
    });
    socket.once('end', () =>
      settle(() =>
        reject(new ControlError('ERR_CONTROL_UNREACHABLE', `${path} closed without a reply`)),
      ),
    );
    socket.once('error', (error: NodeJS.ErrnoException) =>
      settle(() =>
        reject(
          error.code === 'EACCES'
            ? new ControlError(
                'ERR_CONTROL_PERMISSIONS',
                `no permission to use control socket ${path} (run as the server's user)`,
                { cause: error },
              )
            : new ControlError(
                'ERR_CONTROL_UNREACHABLE',
                `no server listens on control socket ${path}`,
                { cause: error },
              ),
        ),
      ),
    );
  });
}
