import { spawn, spawnSync } from 'node:child_process';

/**
 * The stock DNS tools some tests run against our servers (dig, kdig, delv, unbound,
 * ldns-verify-zone): whether each is installed, and running one without blocking the event loop
 * (the servers under test answer in the same process meanwhile).
 */

/** Whether `tool` is on the PATH. */
export function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

/**
 * The tools of `tools` (tool → the Debian package that installs it) that are not installed, each
 * announced with its package: the checks that use them are skipped.
 */
export function missingTools(tools: Readonly<Record<string, string>>): Set<string> {
  const missing = new Set<string>();
  for (const [tool, pkg] of Object.entries(tools)) {
    if (!onPath(tool)) {
      missing.add(tool);
      console.warn(
        `${tool} not installed (Debian package ${pkg}): skipping the checks that use it`,
      );
    }
  }
  return missing;
}

/**
 * Runs a program to completion, stdout and stderr together, killing it after `timeoutMs`.
 */
export function runTool(
  tool: string,
  args: readonly string[],
  timeoutMs = 20_000,
): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    });
  });
}
