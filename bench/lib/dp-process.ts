import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is bench/lib/dp-process.ts). */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** How long `stop` waits for the DP to close its store before it is killed. */
const STOP_TIMEOUT_MS = 30_000;

/** The DP in its own process (bench/lib/dp-server.ts), driven by JSON lines. */
export interface DpProcess {
  port: number;
  /** The TCP port, when the DP offers transfers (same as `port`, as a rule). */
  tcpPort: number | undefined;
  /** `http://127.0.0.1:<port>` of its admin listener (metrics), when it offers transfers. */
  adminUrl: string | undefined;
  pid: number;
  /** The command line, relative to the repository root, for the results. */
  command: string;
  request(command: object): Promise<Record<string, unknown>>;
  /** Asks the DP to close its store and exit; kills it when it does not within 30 s. */
  stop(): Promise<void>;
}

/**
 * Starts the DP over the LMDB store in `dataDir` (vite-node runs dp-server.ts in the spawned
 * process itself, so `pid` is the DP's) and resolves once it listens on 127.0.0.1. With
 * `transfer` (the `transfer` section of a DP's config), it also offers its zone to secondaries.
 * `keysDir`: the key directory a PostgreSQL store signs from (the data set's). `answerWorkers`
 * (LMDB only; default 1): the DP's config key, its answer workers being children of its process.
 */
export async function startDp(
  dataDir: string,
  transfer?: object,
  keysDir?: string,
  answerWorkers = 1,
): Promise<DpProcess> {
  const viteNode = join(ROOT, 'node_modules', 'vite-node', 'vite-node.mjs');
  const script = join(ROOT, 'bench', 'lib', 'dp-server.ts');
  const args = [
    viteNode,
    script,
    dataDir,
    ...(transfer === undefined ? [] : [JSON.stringify(transfer)]),
  ];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: ROOT,
    env: {
      ...process.env,
      ...(keysDir === undefined ? {} : { MIMI_BENCH_KEYS: keysDir }),
      ...(answerWorkers === 1 ? {} : { MIMI_BENCH_ANSWER_WORKERS: String(answerWorkers) }),
    },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let exited = child.exitCode !== null;
  child.once('exit', () => (exited = true));
  const lines = createInterface({ input: child.stdout! });
  const waiting: ((value: Record<string, unknown>) => void)[] = [];
  lines.on('line', (line) => {
    if (!line.startsWith('{')) return;
    waiting.shift()?.(JSON.parse(line) as Record<string, unknown>);
  });
  const next = (): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      if (exited) {
        reject(new Error(`DP process exited (${child.exitCode})`));
        return;
      }
      // The exit listener goes with its answer: one request at a time is ever waiting.
      const onExit = (code: number | null): void =>
        reject(new Error(`DP process exited (${code})`));
      child.once('exit', onExit);
      waiting.push((value) => {
        child.removeListener('exit', onExit);
        resolve(value);
      });
    });
  let ready: Record<string, unknown>;
  try {
    ready = await next();
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    port: Number(ready.port),
    tcpPort: ready.tcp === undefined ? undefined : Number(ready.tcp),
    adminUrl: typeof ready.admin === 'string' ? ready.admin : undefined,
    pid: child.pid ?? 0,
    command: `node ${args.map((a) => relative(ROOT, a)).join(' ')}`,
    request(command) {
      const answer = next();
      child.stdin!.write(`${JSON.stringify(command)}\n`);
      return answer;
    },
    async stop() {
      if (exited) return;
      const gone = new Promise<void>((resolve) => {
        if (exited) resolve();
        else child.once('exit', () => resolve());
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      child.stdin!.write(`${JSON.stringify({ cmd: 'stop' })}\n`);
      await gone;
      clearTimeout(timer);
    },
  };
}
