import { dirname, join, resolve } from 'node:path';
import {
  CONTROL_SOCKET_NAME,
  ControlError,
  controlRequest,
  generateControlKey,
  readConfigText,
  readControlKeyFile,
  type ControlRequest,
  type ControlTarget,
} from '@mimi-discovery/common';
import type { Command } from 'commander';
import { CONFIG_ENV } from '../config-file.js';
import type { CommandEnv } from '../context.js';
import { failure, usageError } from '../errors.js';
import { writeNew } from '../files.js';

/**
 * `ctl`: the control channel of a running server (`control.ts` of `@mimi-discovery/common`),
 * as `knotc` and `unbound-control` are Knot's and Unbound's:
 *
 * ```
 * mimi-discovery ctl [--config C | --socket PATH | --admin URL --key-file F] COMMAND
 * ```
 *
 * COMMAND is `status`, `reload`, `flush [--name N | --csi CSI]`, `zone-status [--zone Z]`,
 * `key-status [--zone Z]` or `stats`; `ctl keygen --out F` writes a new admin-port key (0600).
 * The socket is found from the server's config file (`control.socket`, else
 * `<dataDir>/control.sock` for a DP or the root, `control.sock` beside a resolver's config).
 * The reply is printed as indented text, or with `--json` as the JSON the server sent; an error
 * reply ends the command with its code and exit 2.
 */

interface TargetFlags {
  config?: string;
  socket?: string;
  admin?: string;
  keyFile?: string;
  json?: boolean;
}

/** Adds `ctl` and its commands to `program`. */
export function registerCtl(program: Command, env: CommandEnv): Command {
  const group = program
    .command('ctl')
    .description('control a running server: status, reload, flush, zone-status, key-status, stats')
    .addHelpText(
      'after',
      `
The server is reached over its control socket (file permissions are the access control), or
over its admin port with the key of control.keyFile:

  --config FILE           the server's config file: its control.socket, else the default socket
  --socket PATH           the control socket
  --admin URL --key-file F  the admin port (http://127.0.0.1:9153) and its control key

Examples:
  $ mimi-discovery ctl --config ./net/dp44/config.json status
  $ mimi-discovery ctl --config ./net/dp44/config.json zone-status --zone +44.mimi.arpa
  $ mimi-discovery ctl --socket ./net/resolver/control.sock flush --csi +442079460018
  $ mimi-discovery ctl --admin http://127.0.0.1:9153 --key-file ./net/dp44/control.key reload
  $ mimi-discovery ctl keygen --out ./net/dp44/control.key`,
    );
  const withTarget = (command: Command): Command =>
    command
      .option('--config <file>', `config file of the server (default: $${CONFIG_ENV})`)
      .option('--socket <path>', 'the control socket')
      .option('--admin <url>', 'the admin port, with --key-file')
      .option('--key-file <file>', 'the control key of the admin port (control.keyFile)')
      .option('--json', 'print the reply as JSON');
  withTarget(group);

  const run = async (command: Command, request: ControlRequest): Promise<void> => {
    const flags = { ...group.opts<TargetFlags>(), ...command.opts<TargetFlags>() };
    const target = await targetOf(flags, env);
    let reply;
    try {
      reply = await controlRequest(target, request);
    } catch (error) {
      if (error instanceof ControlError) throw failure(error.code, error.message, error.cause);
      throw error;
    }
    if (!reply.ok) throw failure(reply.error.code, `${request.command}: ${reply.error.message}`);
    env.out(
      flags.json === true
        ? `${JSON.stringify(reply.result, null, 2)}\n`
        : renderText(reply.result, ''),
    );
  };

  withTarget(group.command('status'))
    .description('the server: role, uptime, listeners, last reload')
    .action(async (_flags: unknown, command: Command) => run(command, { command: 'status' }));
  withTarget(group.command('reload'))
    .description(
      're-read the config file and certificates; name the changed keys that need a restart',
    )
    .action(async (_flags: unknown, command: Command) => run(command, { command: 'reload' }));
  withTarget(group.command('flush'))
    .description("empty a resolver's cache: all of it, one name, or one CSI")
    .option('--name <name>', 'only this owner name (every type)')
    .option('--csi <csi>', "only this CSI's discovery result and its name")
    .action(async (flags: { name?: string; csi?: string }, command: Command) => {
      if (flags.name !== undefined && flags.csi !== undefined)
        throw usageError('ERR_USAGE', 'flush takes --name or --csi, not both');
      await run(command, {
        command: 'flush',
        ...(flags.name === undefined ? {} : { name: flags.name }),
        ...(flags.csi === undefined ? {} : { csi: flags.csi }),
      });
    });
  withTarget(group.command('zone-status'))
    .description('each zone: serial, keys and their states, signatures, next re-sign')
    .option('--zone <zone>', 'only this zone')
    .action(async (flags: { zone?: string }, command: Command) =>
      run(command, {
        command: 'zone-status',
        ...(flags.zone === undefined ? {} : { zone: flags.zone }),
      }),
    );
  withTarget(group.command('key-status'))
    .description("each zone's keys and their states, and the prover key")
    .option('--zone <zone>', 'only this zone')
    .action(async (flags: { zone?: string }, command: Command) =>
      run(command, {
        command: 'key-status',
        ...(flags.zone === undefined ? {} : { zone: flags.zone }),
      }),
    );
  withTarget(group.command('stats'))
    .description("the server's metrics, as JSON or text")
    .action(async (_flags: unknown, command: Command) => run(command, { command: 'stats' }));
  group
    .command('keygen')
    .description('write a new control key for the admin port (control.keyFile), mode 0600')
    .requiredOption('--out <file>', 'the key file to write (must not exist)')
    .action(async (flags: { out: string }) => {
      const path = resolve(env.cwd, flags.out);
      await writeNew(path, generateControlKey(), 0o600);
      env.out(`${path}\n`);
    });
  return group;
}

/** Where the request goes, from the flags: a socket, the admin port, or the config's socket. */
async function targetOf(flags: TargetFlags, env: CommandEnv): Promise<ControlTarget> {
  const given = [flags.socket, flags.admin, flags.config].filter((f) => f !== undefined).length;
  if (given > 1)
    throw usageError('ERR_USAGE', 'give one of --config, --socket and --admin --key-file');
  if (flags.keyFile !== undefined && flags.admin === undefined)
    throw usageError('ERR_USAGE', '--key-file goes with --admin URL');
  if (flags.socket !== undefined) return { socket: resolve(env.cwd, flags.socket) };
  if (flags.admin !== undefined) {
    if (flags.keyFile === undefined)
      throw usageError('ERR_USAGE', '--admin needs --key-file (the control key)');
    let url: URL;
    try {
      url = new URL(flags.admin);
    } catch {
      throw usageError('ERR_USAGE', `--admin ${JSON.stringify(flags.admin)}: not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw usageError('ERR_USAGE', `--admin ${flags.admin}: an http or https URL`);
    try {
      return {
        url: url.href,
        key: await readControlKeyFile(resolve(env.cwd, flags.keyFile)),
      };
    } catch (error) {
      if (error instanceof ControlError) throw usageError(error.code, error.message, error.cause);
      throw error;
    }
  }
  const config = flags.config ?? env.env[CONFIG_ENV];
  if (config === undefined || config === '')
    throw usageError(
      'ERR_USAGE',
      `give --config FILE (or set ${CONFIG_ENV}), --socket PATH, or --admin URL --key-file FILE`,
    );
  return {
    socket: socketOfConfig(
      resolve(env.cwd, config),
      await readConfigText(resolve(env.cwd, config), 'config file'),
    ),
  };
}

/**
 * The control socket a config file names: `control.socket` (relative to the file's directory),
 * else `<dataDir>/control.sock` for a DP or the root (a config with `role`), else `control.sock`
 * beside a resolver's config. Only these keys are read: the server checked the rest.
 */
export function socketOfConfig(path: string, text: string): string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw usageError('ERR_CONFIG_SYNTAX', `${path} is not JSON`);
  }
  const base = dirname(path);
  const config = (typeof raw === 'object' && raw !== null ? raw : {}) as {
    role?: unknown;
    dataDir?: unknown;
    control?: { socket?: unknown };
  };
  const socket = config.control?.socket;
  if (socket === null)
    throw usageError(
      'ERR_USAGE',
      `${path} turns the control socket off (control.socket null): use --admin URL --key-file FILE`,
    );
  if (typeof socket === 'string') return resolve(base, socket);
  if (config.role !== undefined) {
    if (typeof config.dataDir !== 'string')
      throw usageError('ERR_CONFIG_INVALID', `${path} has no dataDir`);
    return join(resolve(base, config.dataDir), CONTROL_SOCKET_NAME);
  }
  return join(base, CONTROL_SOCKET_NAME);
}

/** A reply as indented `key: value` lines; arrays of scalars on one line. */
export function renderText(value: unknown, indent: string): string {
  if (value === null || typeof value !== 'object') return `${indent}${scalar(value)}\n`;
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object'))
      return `${indent}${value.length === 0 ? '-' : value.map(scalar).join(' ')}\n`;
    return value.map((item) => `${indent}-\n${renderText(item, `${indent}  `)}`).join('');
  }
  let out = '';
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) continue;
    if (v === null || typeof v !== 'object') out += `${indent}${key}: ${scalar(v)}\n`;
    else if (Array.isArray(v) && v.every((x) => x === null || typeof x !== 'object'))
      out += `${indent}${key}: ${v.length === 0 ? '-' : v.map(scalar).join(' ')}\n`;
    else out += `${indent}${key}:\n${renderText(v, `${indent}  `)}`;
  }
  return out;
}

function scalar(value: unknown): string {
  if (value === null || value === undefined) return '-';
  return typeof value === 'string' ? value : JSON.stringify(value);
}
