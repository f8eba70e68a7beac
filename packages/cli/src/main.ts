import { runCli } from './cli.js';
import type { Hangups } from './context.js';

/**
 * The entry point of the `mimi-discovery` command (which bin/mimi-discovery.js loads, and the
 * demo runs for each server): runs the command line with the process's streams, turns SIGINT
 * and SIGTERM into a clean stop of `serve` (close every listener and the store, log "stopped",
 * then exit 0), and SIGHUP into a reload of the server running (as `ctl reload`). A command
 * that runs no server keeps SIGHUP's default: it ends.
 */
const stop = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => stop.abort(signal));
}
const hangupListeners = new Set<() => void>();
process.on('SIGHUP', () => {
  if (hangupListeners.size === 0) {
    // No server to reload: what SIGHUP does by default, exit 128 + 1.
    process.exit(129);
  }
  for (const listener of hangupListeners) listener();
});
const hangups: Hangups = {
  subscribe(listener) {
    const own = (): void => listener();
    hangupListeners.add(own);
    return () => hangupListeners.delete(own);
  },
};
const result = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  stdoutStream: process.stdout,
  stderrIsTTY: process.stderr.isTTY === true,
  signal: stop.signal,
  hangups,
});
process.exitCode = result.exitCode;
