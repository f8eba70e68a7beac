/**
 * @mimi-discovery/cli — the `mimi-discovery` command (bin: `bin/mimi-discovery.js`), and the same
 * command line as a function for tests and embedding. This file is the package's whole public
 * surface.
 */

// cli.ts, context.ts
export { runCli } from './cli.js';
export type { CliContext, CliResult, Hangups } from './context.js';

// errors.ts
export { EXIT_CODES, CliError } from './errors.js';
export type { ExitCode, CliErrorCode } from './errors.js';
