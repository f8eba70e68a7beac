import { runCli } from './cli.js';

/**
 * The entry point of the `mimi-discovery` command (which bin/mimi-discovery.js loads, and the
 * demo runs for each server): runs the command line with the process's streams, and turns
 * SIGINT and SIGTERM into a clean stop of `serve` (close every listener and the store, then
 * exit 0).
 */
const stop = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => stop.abort());
}
const result = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  stdoutStream: process.stdout,
  stderrIsTTY: process.stderr.isTTY === true,
  signal: stop.signal,
});
process.exitCode = result.exitCode;
