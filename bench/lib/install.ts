import { spawnSync } from 'node:child_process';
import { installed } from './stock.js';

/**
 * The comparison servers and load generators, installed from Debian's packages when missing, as
 * far as this machine allows (root and apt-get). What cannot be installed is returned with the
 * reason, and the benchmarks that need it say they skipped.
 */

/** Binary → the Debian package that provides it. */
export const BENCH_TOOLS: Readonly<Record<string, string>> = Object.freeze({
  dnsperf: 'dnsperf',
  nsd: 'nsd',
  knotd: 'knot',
  unbound: 'unbound',
  'unbound-control': 'unbound',
  h2load: 'nghttp2-client',
});

/** Longest an apt-get step may take. */
const APT_TIMEOUT_MS = 10 * 60 * 1000;

function apt(args: string[]): boolean {
  const result = spawnSync('apt-get', args, {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    timeout: APT_TIMEOUT_MS,
  });
  return result.status === 0;
}

/** Installs the missing tools; returns what is still missing, each with why. */
export function ensureBenchTools(log: (message: string) => void): string[] {
  const missing = Object.entries(BENCH_TOOLS).filter(([binary]) => !installed(binary));
  if (missing.length === 0) return [];
  const packages = [...new Set(missing.map(([, pkg]) => pkg))];
  const canInstall = process.getuid?.() === 0 && installed('apt-get');
  if (canInstall) {
    log(`installing ${packages.join(', ')} (apt-get)`);
    // The package lists of a fresh machine may be empty or stale: update once, then retry.
    if (!apt(['install', '-y', '--no-install-recommends', ...packages])) {
      apt(['update']);
      apt(['install', '-y', '--no-install-recommends', ...packages]);
    }
  }
  return missing
    .filter(([binary]) => !installed(binary))
    .map(
      ([binary, pkg]) =>
        `${binary}: not installed${canInstall ? ' (apt-get install failed)' : ''}; apt-get install ${pkg}`,
    );
}
