import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { failure } from '../errors.js';

/**
 * The servers of the demonstration network as child processes: each one is the
 * `mimi-discovery` bin itself (`serve`, `resolver serve`, `issuer serve` or `relay serve`, with
 * `--config … --json`), so the network runs exactly what an operator runs. A child is ready once
 * it has printed its admin listener (`"listener":"admin"`), which each of these prints once
 * every listener is up: the last line of `serve`, `resolver serve` and `issuer serve`; `relay
 * serve` follows it with its relay resources, printed at once. Its stdout and stderr (JSON log lines) are
 * appended to its log file, and the last lines of stderr are kept to say why it died.
 *
 * Children run in their own process group (`detached`): a Ctrl-C in the terminal reaches only
 * the supervisor, which stops each child once, with SIGTERM, then SIGKILL after a bound.
 */

/** The bin every child runs: `packages/cli/dist/main.js`, from `src/demo/` or `dist/demo/`. */
export const CLI_BIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
/** How long a child may take to print its listeners. */
export const READY_TIMEOUT_MS = 30_000;
/** How long a child may take to stop after SIGTERM before it gets SIGKILL. */
export const STOP_TIMEOUT_MS = 5_000;
/** Lines of stderr kept per child. */
const STDERR_LINES_KEPT = 12;

/** A server process of the network. */
export interface ChildServer {
  readonly name: string;
  readonly pid: number;
  /** Whether the process is still running. */
  readonly running: boolean;
  /** Its last lines of stderr. */
  lastStderr(): string[];
  /** SIGTERM, then SIGKILL after {@link STOP_TIMEOUT_MS}; resolves once it has exited. */
  stop(): Promise<void>;
}

/** How a child ended, for a supervisor that did not ask it to. */
export interface ChildExit {
  readonly child: ChildServer;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * Starts `mimi-discovery <args> --json` as a child, and resolves once it has printed its admin
 * listener. `onExit` hears of an exit that {@link ChildServer.stop} did not cause. A child that
 * exits or stays silent before it is ready is stopped, and the start fails (`ERR_CLI_CHILD`)
 * with its last stderr lines.
 */
export async function startChild(
  name: string,
  args: readonly string[],
  logFile: string,
  onExit: (exit: ChildExit) => void,
): Promise<ChildServer> {
  const log: WriteStream = createWriteStream(logFile, { flags: 'a' });
  const process_ = spawn(globalThis.process.execPath, [CLI_BIN, ...args, '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const stderrLines: string[] = [];
  let stderrRest = '';
  let stdoutText = '';
  let stopping = false;
  let exited = false;
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    process_.once('exit', (code, signal) => {
      exited = true;
      resolve({ code, signal });
    });
    // A process that could not be spawned at all emits `error` and no `exit`.
    process_.once('error', (error) => {
      stderrLines.push(error.message);
      if (process_.pid === undefined) {
        exited = true;
        resolve({ code: null, signal: null });
      }
    });
  });

  process_.stdout?.on('data', (chunk: Buffer) => {
    log.write(chunk);
    stdoutText += chunk.toString('utf8');
    if (/"listener":"admin"/.test(stdoutText)) markReady();
  });
  process_.stderr?.on('data', (chunk: Buffer) => {
    log.write(chunk);
    const lines = (stderrRest + chunk.toString('utf8')).split('\n');
    stderrRest = lines.pop() ?? '';
    stderrLines.push(...lines.filter((l) => l !== ''));
    stderrLines.splice(0, Math.max(0, stderrLines.length - STDERR_LINES_KEPT));
  });

  const child: ChildServer = {
    name,
    get pid() {
      return process_.pid ?? -1;
    },
    get running() {
      return !exited;
    },
    lastStderr: () => (stderrRest === '' ? [...stderrLines] : [...stderrLines, stderrRest]),
    async stop() {
      stopping = true;
      if (!exited) {
        signal(process_, 'SIGTERM');
        const timer = setTimeout(() => signal(process_, 'SIGKILL'), STOP_TIMEOUT_MS);
        await exit;
        clearTimeout(timer);
      }
      await new Promise<void>((resolve) => log.end(resolve));
    },
  };

  void exit.then(({ code, signal: by }) => {
    if (!stopping) onExit({ child, code, signal: by });
  });

  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), READY_TIMEOUT_MS);
  });
  const outcome = await Promise.race([ready.then(() => 'ready' as const), exit, timedOut]);
  clearTimeout(timer);
  if (outcome === 'ready') return child;
  stopping = true;
  await child.stop();
  const why =
    outcome === 'timeout'
      ? `did not print its listeners within ${READY_TIMEOUT_MS / 1000} s`
      : `exited with ${outcome.signal ?? `code ${outcome.code}`} while starting`;
  throw failure('ERR_CLI_CHILD', `${name} ${why}${stderrSummary(child.lastStderr())}`);
}

function signal(child: ChildProcess, name: NodeJS.Signals): void {
  try {
    child.kill(name);
  } catch {
    // Already gone: the exit event follows.
  }
}

/** The last stderr lines as `: line | line`, for one error line; the last log message only. */
export function stderrSummary(lines: readonly string[]): string {
  if (lines.length === 0) return '';
  return `: ${lines.slice(-3).map(logMessage).join(' | ')}`;
}

/** A JSON log line shortened to its message and error, or the line itself. */
function logMessage(line: string): string {
  try {
    const entry = JSON.parse(line) as Record<string, unknown>;
    const parts = [entry['ns'], entry['event'], entry['error'], entry['code']]
      .filter((v) => v !== undefined)
      .map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));
    return parts.length > 0 ? parts.join(' ') : line;
  } catch {
    return line;
  }
}
