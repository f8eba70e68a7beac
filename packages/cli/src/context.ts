import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { systemClock, type Clock, type Logger } from '@mimi-discovery/common';

/**
 * What a command runs with besides its flags: where relative paths start, the environment, the
 * clock, where its output goes, and what stops a long-running command (`serve`). `runCli` fills
 * in the defaults; tests give their own so a command runs in-process, quietly and on a fixed
 * clock.
 */
export interface CliContext {
  /** Where relative paths on the command line start; default `process.cwd()`. */
  cwd?: string;
  /** The environment (`MIMI_DISCOVERY_CONFIG`); default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Clock in seconds since the epoch; default the system clock. */
  now?: Clock;
  /** Receives stdout text as it is written (it is also collected in the result). */
  stdout?: (text: string) => void;
  /** Receives stderr text as it is written (it is also collected in the result). */
  stderr?: (text: string) => void;
  /**
   * Where output too large to collect goes (`zone export` to stdout), written with
   * back-pressure and not collected in the result: the process's stdout in the bin. Without it,
   * such output goes through `stdout` and is collected like any other.
   */
  stdoutStream?: Writable;
  /** Whether stderr is a terminal: commands that run long then show progress there. */
  stderrIsTTY?: boolean;
  /** Stops `serve` when aborted; without it `serve` runs until the process ends. */
  signal?: AbortSignal;
  /** Logger of `serve`; default JSON lines on stderr at the config's `log.level`. */
  log?: Logger;
  /** Where a running server hears SIGHUP (a reload); without it, servers reload by `ctl` only. */
  hangups?: Hangups;
}

/**
 * SIGHUP, as the bin delivers it to the server a command runs: a server subscribes while it runs
 * and reloads (as `ctl reload` does) on each.
 */
export interface Hangups {
  /** Calls `listener` on each SIGHUP until the returned function is called. */
  subscribe(listener: () => void): () => void;
}

/** The outcome of one command line. */
export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** The context with its defaults, and the output of the command being run. */
export interface CommandEnv {
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly now: Clock;
  readonly signal: AbortSignal | undefined;
  readonly log: Logger | undefined;
  /** SIGHUP for a running server; undefined in-process unless the caller gives it. */
  readonly hangups: Hangups | undefined;
  /** Whether stderr is a terminal (progress is shown there by default). */
  readonly errIsTTY: boolean;
  /** Writes text to stdout. */
  out(text: string): void;
  /**
   * Writes `pieces` to stdout as they come, waiting while the stream is full: to the context's
   * `stdoutStream` when it has one (not collected), else as {@link out} does.
   */
  outStream(pieces: AsyncIterable<string>): Promise<void>;
  /** Writes text to stderr. */
  err(text: string): void;
}

/** Output collected for the result, passed on as it is written. */
export interface CollectedOutput {
  readonly env: CommandEnv;
  result(exitCode: number): CliResult;
}

/** Fills in the defaults of `context` and collects what the command writes. */
export function commandEnv(context: CliContext): CollectedOutput {
  let stdout = '';
  let stderr = '';
  const env: CommandEnv = {
    cwd: context.cwd ?? process.cwd(),
    env: context.env ?? process.env,
    now: context.now ?? systemClock,
    signal: context.signal,
    log: context.log,
    hangups: context.hangups,
    errIsTTY: context.stderrIsTTY === true,
    out(text) {
      stdout += text;
      context.stdout?.(text);
    },
    async outStream(pieces) {
      const sink = context.stdoutStream;
      if (sink === undefined) {
        for await (const piece of pieces) env.out(piece);
        return;
      }
      await writeStreaming(sink, pieces);
    },
    err(text) {
      stderr += text;
      context.stderr?.(text);
    },
  };
  return { env, result: (exitCode) => ({ exitCode, stdout, stderr }) };
}

/**
 * Writes `pieces` to `sink` in order, awaiting `drain` whenever it is full, so that memory holds
 * what the stream buffers (its high-water mark) and no more; rejects with the stream's error (a
 * closed pipe: EPIPE), leaving the stream open for what follows.
 */
async function writeStreaming(sink: Writable, pieces: AsyncIterable<string>): Promise<void> {
  let failed: Error | undefined;
  const onError = (error: Error): void => {
    failed ??= error;
  };
  sink.on('error', onError);
  try {
    for await (const piece of pieces) {
      if (failed !== undefined) throw failed;
      if (!sink.write(piece)) await once(sink, 'drain');
    }
    if (failed !== undefined) throw failed;
  } finally {
    sink.off('error', onError);
  }
}
