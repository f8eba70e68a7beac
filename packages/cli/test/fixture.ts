import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@mimi-discovery/common';
import { runCli, type CliContext, type CliResult } from '../src/index.js';
import type { ListenerJson } from '../src/commands/serve.js';

// Shared by the CLI tests: a temporary directory per test file, the command line run
// in-process with that directory as its working directory, and `serve` started in-process until
// the test stops it. Fixed free ports come from test/helpers/ports.ts.

/** A temporary working directory and a way to run the command line in it. */
export interface CliFixture {
  readonly dir: string;
  run(argv: readonly string[], context?: CliContext): Promise<CliResult>;
  /** Runs and expects exit 0; returns stdout. */
  ok(argv: readonly string[]): Promise<string>;
  /** Runs with `--json` added and expects exit 0; returns the parsed stdout. */
  json<T>(argv: readonly string[]): Promise<T>;
  readJson<T>(path: string): T;
  cleanup(): void;
}

export function createCliFixture(prefix: string): CliFixture {
  const dir = mkdtempSync(join(tmpdir(), `mimi-cli-${prefix}-`));
  const run = (argv: readonly string[], context: CliContext = {}): Promise<CliResult> =>
    runCli(argv, { cwd: dir, env: {}, log: silentLogger, ...context });
  const ok = async (argv: readonly string[]): Promise<string> => {
    const result = await run(argv);
    if (result.exitCode !== 0) {
      throw new Error(
        `mimi-discovery ${argv.join(' ')} exited ${result.exitCode}: ${result.stderr}`,
      );
    }
    return result.stdout;
  };
  return {
    dir,
    run,
    ok,
    json: async <T>(argv: readonly string[]) => JSON.parse(await ok([...argv, '--json'])) as T,
    readJson: <T>(path: string) => JSON.parse(readFileSync(join(dir, path), 'utf8')) as T,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A server command running in-process: its listeners, and how to stop it. */
export interface Serving<L extends { listener: string } = ListenerJson> {
  readonly listeners: readonly L[];
  listener(kind: L['listener']): L;
  /** Aborts the command (as SIGTERM does in the bin) and returns its result. */
  stop(): Promise<CliResult>;
}

/**
 * Starts `serve --json --config <config>` (and `flags`) and resolves once it has printed its
 * listeners.
 */
export function serve(
  fixture: CliFixture,
  config: string,
  flags: readonly string[] = [],
): Promise<Serving> {
  return serveCommand<ListenerJson>(fixture, ['serve'], ['--config', config, ...flags]);
}

/**
 * Starts `<command> --json <flags>` (`serve`, `resolver serve`, `relay serve`, …) and resolves
 * once it has printed its listeners, one JSON object a line; `context` adds to the run's
 * (`hangups`, to deliver SIGHUP).
 */
export async function serveCommand<L extends { listener: string }>(
  fixture: CliFixture,
  command: readonly string[],
  flags: readonly string[] = [],
  context: CliContext = {},
): Promise<Serving<L>> {
  const name = command.join(' ');
  const stop = new AbortController();
  let stdout = '';
  let printed: () => void = () => undefined;
  const firstOutput = new Promise<undefined>((resolve) => {
    printed = () => resolve(undefined);
  });
  const running = fixture.run([...command, '--json', ...flags], {
    ...context,
    signal: stop.signal,
    stdout: (text) => {
      stdout += text;
      printed();
    },
  });
  const early = await Promise.race([firstOutput, running]);
  if (early !== undefined) throw new Error(`${name} exited ${early.exitCode}: ${early.stderr}`);
  // Every listener line is written in the same turn as the first.
  await new Promise((resolve) => setImmediate(resolve));
  const listeners = stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as L);
  return {
    listeners,
    listener(kind) {
      const found = listeners.find((l) => l.listener === kind);
      if (found === undefined) throw new Error(`${name} has no ${kind} listener`);
      return found;
    },
    async stop() {
      stop.abort();
      return running;
    },
  };
}
