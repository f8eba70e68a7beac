import { ConfigError, MimiError } from '@mimi-discovery/common';
import { CommanderError } from 'commander';

/**
 * How the command reports failure: one line on stderr, `mimi-discovery: <message> (<code>)`,
 * and an exit code that says whose fault it was:
 *
 * | exit | meaning                                                                          |
 * | ---- | -------------------------------------------------------------------------------- |
 * | 0    | success (also `--help`)                                                          |
 * | 1    | usage or config: unknown command or flag, bad flag value (range, CSI, port, …),  |
 * |      | config file missing, unreadable or invalid, a config of the wrong role           |
 * | 2    | the operation failed: store, delegation, TLS, network, the registration API's    |
 * |      | refusal, a file that already exists                                              |
 *
 * Example: `mimi-discovery ds --config missing.json` prints
 * `mimi-discovery: /srv/missing.json: cannot read the config file: ENOENT: … (ERR_CONFIG_READ)`
 * and exits 1.
 */

/** Exit codes of the command (see the module comment). */
export const EXIT_CODES = Object.freeze({ ok: 0, usage: 1, failed: 2 } as const);

/** One of {@link EXIT_CODES}. */
export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];

/**
 * Codes of the command's own errors (other errors keep the code of the package that threw):
 * - `ERR_USAGE` — a command line that does not parse (commander's errors, conflicting flags);
 * - `ERR_CLI_ROLE` — a config of the wrong role for the command (a DP's for `trust-anchor`);
 * - `ERR_CLI_EPHEMERAL_PORT` — a port of 0 where a fixed port must be published;
 * - `ERR_CLI_PORTS` — listen ports that cannot be published as root hints;
 * - `ERR_CLI_EXISTS` — a file or directory that the command refuses to overwrite;
 * - `ERR_CLI_NO_STORE` — a data directory without a store (`init` was not run);
 * - `ERR_CLI_STORE_KIND` — a config whose `store` is not the kind the command works on (`db`);
 * - `ERR_CLI_NO_ZONE` — a zone that the store does not hold, or no zone that contains a range;
 * - `ERR_CLI_IMPORT_ORDER` — `zone import`: a file whose records of one delegation owner are
 *   not on consecutive lines;
 * - `ERR_CLI_IMPORT_RRSET` — `zone import`: an RRset in the file over `MAX_RECORDS_PER_RRSET`;
 * - `ERR_CLI_FILE_CHANGED` — `zone import`: the file changed between its check and its writes;
 * - `ERR_CLI_TLS` — TLS material that cannot be used (a CA directory holding only half a CA);
 * - `ERR_CLI_KEY_FILE` — a recipient key or attestation file that cannot be used (exit 1);
 * - `ERR_CLI_API_UNREACHABLE` — the registration API could not be reached;
 * - `ERR_CLI_API_RESPONSE` — the registration API answered something other than its JSON;
 * - `ERR_CLI_RESOLVER_UNREACHABLE`, `ERR_CLI_RESOLVER_RESPONSE` — the same for a resolver's API;
 * - `ERR_CLI_LOOKUP_FAILED` — a lookup printed a result with status `error` (exit 2);
 * - `ERR_CLI_RESOLVER_STARTUP` — `resolver serve`: no root server answered the start-up check
 *   with keys the trust anchor validates (exit 2);
 * - `ERR_CLI_PORT_BUSY` — `demo`: a planned port is in use;
 * - `ERR_CLI_DEMO_SETUP`, `ERR_CLI_DEMO_LOOKUP` — `demo`: a setup step or a check lookup failed;
 * - `ERR_CLI_CHILD` — `demo`: a server process failed to start;
 * - `ERR_CLI_NETWORK_FILE` — `demo`: `network.json` cannot be read or does not match the flags,
 *   or the network lacks a server of the plan;
 * - `ERR_CLI_NOT_BUILT` — the package is not built (`dist/` missing); written by
 *   bin/mimi-discovery.js, which cannot load this code then (exit 2).
 */
export type CliErrorCode =
  | 'ERR_USAGE'
  | 'ERR_CLI_ROLE'
  | 'ERR_CLI_EPHEMERAL_PORT'
  | 'ERR_CLI_PORTS'
  | 'ERR_CLI_EXISTS'
  | 'ERR_CLI_NO_STORE'
  | 'ERR_CLI_STORE_KIND'
  | 'ERR_CLI_NO_ZONE'
  | 'ERR_CLI_IMPORT_ORDER'
  | 'ERR_CLI_IMPORT_RRSET'
  | 'ERR_CLI_FILE_CHANGED'
  | 'ERR_CLI_TLS'
  | 'ERR_CLI_KEY_FILE'
  | 'ERR_CLI_API_UNREACHABLE'
  | 'ERR_CLI_API_RESPONSE'
  | 'ERR_CLI_RESOLVER_UNREACHABLE'
  | 'ERR_CLI_RESOLVER_RESPONSE'
  | 'ERR_CLI_LOOKUP_FAILED'
  | 'ERR_CLI_RESOLVER_STARTUP'
  | 'ERR_CLI_PORT_BUSY'
  | 'ERR_CLI_DEMO_SETUP'
  | 'ERR_CLI_DEMO_LOOKUP'
  | 'ERR_CLI_CHILD'
  | 'ERR_CLI_NETWORK_FILE';

/** An error of the command line itself, with the exit code it ends the command with. */
export class CliError extends MimiError {
  readonly exitCode: ExitCode;

  constructor(
    exitCode: ExitCode,
    code: CliErrorCode | string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.exitCode = exitCode;
  }
}

/** A bad command line or flag value (exit 1); `code` may be the parser's (`ERR_RANGE_INVALID`). */
export function usageError(
  code: CliErrorCode | string,
  message: string,
  cause?: unknown,
): CliError {
  return new CliError(EXIT_CODES.usage, code, message, cause === undefined ? {} : { cause });
}

/** An operation that failed (exit 2). */
export function failure(code: CliErrorCode | string, message: string, cause?: unknown): CliError {
  return new CliError(EXIT_CODES.failed, code, message, cause === undefined ? {} : { cause });
}

/**
 * Runs `parse` on a flag's value and turns a `MimiError` it throws (a bad range, CSI, name) into
 * a usage error naming the flag: `--range "+0": no country code starts with 0 (ERR_RANGE_INVALID)`.
 */
export function parseFlag<T>(flag: string, value: string, parse: (value: string) => T): T {
  try {
    return parse(value);
  } catch (error) {
    if (error instanceof MimiError) {
      throw usageError(error.code, `${flag} ${JSON.stringify(value)}: ${error.message}`, error);
    }
    throw error;
  }
}

/** The exit code for an error that ended a command. */
export function exitCodeOf(error: unknown): ExitCode {
  if (error instanceof CliError) return error.exitCode;
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT_CODES.usage;
  if (error instanceof ConfigError) return EXIT_CODES.usage;
  return EXIT_CODES.failed;
}

/**
 * The one line that reports an error: `mimi-discovery: <message> (<code>)`, with the message of
 * its first cause added when that says something the message does not (the `EADDRINUSE` behind
 * a listener that could not start), and never a stack trace.
 */
export function errorLine(error: unknown): string {
  const { message, code } = describeError(error);
  return `mimi-discovery: ${oneLine(message)} (${code})\n`;
}

function describeError(error: unknown): { message: string; code: string } {
  if (error instanceof CommanderError) {
    return { message: error.message.replace(/^error:\s*/, ''), code: 'ERR_USAGE' };
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    let message = error.message;
    const cause = error.cause;
    if (cause instanceof Error && cause.message !== '' && !message.includes(cause.message)) {
      message = `${message}: ${cause.message}`;
    }
    return { message, code: typeof code === 'string' && code !== '' ? code : 'ERR_INTERNAL' };
  }
  return { message: String(error), code: 'ERR_INTERNAL' };
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
