import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TEST_REGISTRATION_LIMITS } from './network.js';

/**
 * A Discovery Provider as a process of its own (`test/fixtures/dp-process.mjs`, over the built
 * packages, as an operator runs them), for the tests that kill or restart one on the same data
 * directory.
 */

const REPO = join(import.meta.dirname, '..', '..');
const FIXTURE = join(REPO, 'test', 'fixtures', 'dp-process.mjs');
const BUILT = [
  join(REPO, 'packages', 'common', 'dist', 'index.js'),
  join(REPO, 'packages', 'authoritative', 'dist', 'index.js'),
];
/** How long a DP process may take to listen. */
export const DP_START_TIMEOUT_MS = 15_000;

/** What the fixture prints once it listens. */
export interface DpPorts {
  /** Its own pid (under strace, the child of the test is strace). */
  readonly pid: number;
  readonly udp: number;
  readonly tcp: number;
  /** `https://127.0.0.1:<port>`. */
  readonly api: string;
  /** `https://127.0.0.1:<port>/dns-query`, when the config listens for DoH. */
  readonly doh?: string;
}

/** A running DP process. */
export interface DpProcess {
  readonly child: ChildProcess;
  readonly ports: DpPorts;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

/**
 * Writes the config of a DP process over `dataDir` into `dir/dp.json` and returns its path: every
 * listener on an ephemeral port, TLS from `tls` (file paths), the tests' registration limits;
 * logs at `logLevel` (`silent` for a DP started in the test's own process).
 */
export function writeDpProcessConfig(
  dir: string,
  dataDir: string,
  tls: { readonly cert: string; readonly key: string },
  logLevel: 'error' | 'silent' = 'error',
): string {
  const configFile = join(dir, 'dp.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      role: 'dp',
      dataDir,
      listen: { udp: 0, tcp: 0, api: 0 },
      tls: { cert: tls.cert, key: tls.key },
      registration: { ...TEST_REGISTRATION_LIMITS },
      log: { level: logLevel },
    }),
  );
  return configFile;
}

/** Throws unless the packages the fixture imports are built. */
export function requireBuiltPackages(): void {
  for (const file of BUILT) {
    if (!existsSync(file)) {
      throw new Error(`${file} is missing: build first (npm test runs tsc -b before vitest)`);
    }
  }
}

/**
 * Starts the fixture on `configFile` and resolves with its ports once it listens. With `strace`,
 * the process runs under `strace <strace...>`.
 */
export function startDpProcess(
  configFile: string,
  strace: readonly string[] = [],
): Promise<DpProcess> {
  const command = [process.execPath, FIXTURE, configFile];
  const [file, ...args] = strace.length > 0 ? ['strace', ...strace, ...command] : command;
  const child = spawn(file ?? process.execPath, args, {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the DP process did not start within ${DP_START_TIMEOUT_MS} ms: ${stderr}`));
    }, DP_START_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const line = stdout.split('\n')[0];
      if (!stdout.includes('\n') || line === undefined) return;
      clearTimeout(timer);
      resolve({ child, ports: JSON.parse(line) as DpPorts, exited, stderr: () => stderr });
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(
        new Error(`the DP process exited (${String(code ?? signal)}) before listening: ${stderr}`),
      );
    });
  });
}

/** Whether a process exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Kills a DP process (and the DP itself when it runs under strace) and waits for its exit. */
export async function killDpProcess(dp: DpProcess): Promise<void> {
  if (dp.child.pid !== dp.ports.pid && isAlive(dp.ports.pid)) process.kill(dp.ports.pid, 'SIGKILL');
  dp.child.kill('SIGKILL');
  await dp.exited;
}
