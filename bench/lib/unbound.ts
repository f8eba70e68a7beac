import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/ports.js';
import { UNBOUND_TIMEOUT_MS, runUnbound, type StubZone } from '../../test/helpers/unbound.js';

/**
 * A stock validating Unbound for the resolver benchmarks: it trusts only our root's DS, reaches
 * the root directory and the DP through `stub-zone`s (our servers are not on port 53, so it
 * cannot follow the glue of a referral), answers plain DNS on one port and DoH (RFC 8484,
 * `https-port`, HTTP/2 through nghttp2) on another, and is driven through `unbound-control`
 * (cache flushes, cache statistics). One thread, as our Node.js servers answer on one. The
 * process is run as the tests run theirs (`runUnbound`, test/helpers/unbound.ts).
 */

export type { StubZone };

/** How to start Unbound. */
export interface UnboundOptions {
  /** Its working directory (config, pid file). */
  readonly dir: string;
  /** The root's trust anchor in presentation format (`formatTrustAnchor`). */
  readonly trustAnchorFile: string;
  readonly stubs: readonly StubZone[];
  /** PEM files of the DoH certificate chain and its key. */
  readonly tls: { readonly certFile: string; readonly keyFile: string };
}

/** A running Unbound. */
export interface RunningUnbound {
  /** Plain DNS, UDP and TCP. */
  readonly port: number;
  readonly dohPort: number;
  /** `https://127.0.0.1:<dohPort>/dns-query` */
  readonly dohUrl: string;
  readonly pid: number;
  readonly command: string;
  readonly config: string;
  /** `unbound -V`'s first line, e.g. `Version 1.17.1`. */
  readonly version: string;
  /** Everything Unbound logged so far. */
  log(): string;
  /** Runs `unbound-control <args>` against it; resolves with its output. */
  control(...args: string[]): Promise<string>;
  /**
   * Forgets everything learnt: RRsets, messages, validated keys (`flush_zone .`), negative and
   * bogus entries, and the infrastructure cache (server RTTs, EDNS), so that the next question
   * is resolved from the trust anchor down.
   */
  flushCache(): Promise<void>;
  /** Cache hits and misses so far (`stats_noreset`: total.num.cachehits / cachemiss). */
  cacheStats(): Promise<{ hits: number; misses: number }>;
  /** Stops it (SIGTERM, then SIGKILL if it lingers). */
  stop(): Promise<void>;
}

/** The DoH path Unbound serves by default (`http-endpoint`). */
const DOH_PATH = '/dns-query';

/** The unbound.conf text. */
export function unboundConfig(
  options: UnboundOptions & { port: number; dohPort: number; controlPort: number },
): string {
  const stubs = options.stubs.flatMap((s) => [
    'stub-zone:',
    `  name: "${s.zone}"`,
    `  stub-addr: 127.0.0.1@${s.port}`,
  ]);
  return [
    'server:',
    // An interface whose port is https-port serves DoH; the other one plain DNS.
    `  interface: 127.0.0.1@${options.port}`,
    `  interface: 127.0.0.1@${options.dohPort}`,
    `  port: ${options.port}`,
    `  https-port: ${options.dohPort}`,
    `  tls-service-pem: "${options.tls.certFile}"`,
    `  tls-service-key: "${options.tls.keyFile}"`,
    '  do-ip6: no',
    '  num-threads: 1',
    // The default of 10 TCP (and so DoH) connections per thread is below what h2load opens.
    '  incoming-num-tcp: 256',
    // Defaults of 4 MiB would not hold the benchmark's answers; our resolver keeps 64 MiB.
    '  msg-cache-size: 64m',
    '  rrset-cache-size: 128m',
    '  key-cache-size: 16m',
    '  do-not-query-localhost: no',
    `  trust-anchor-file: "${options.trustAnchorFile}"`,
    '  module-config: "validator iterator"',
    '  harden-dnssec-stripped: yes',
    '  qname-minimisation: yes',
    '  chroot: ""',
    '  username: ""',
    `  directory: "${options.dir}"`,
    `  pidfile: "${join(options.dir, 'unbound.pid')}"`,
    '  use-syslog: no',
    '  logfile: ""',
    '  verbosity: 1',
    'remote-control:',
    '  control-enable: yes',
    '  control-interface: 127.0.0.1',
    `  control-port: ${options.controlPort}`,
    '  control-use-cert: no',
    ...stubs,
    '',
  ].join('\n');
}

/** Writes the config into `options.dir` and starts `unbound -d`; resolves once it serves. */
export async function startUnbound(options: UnboundOptions): Promise<RunningUnbound> {
  const port = await freePort();
  let dohPort = await freePort();
  while (dohPort === port) dohPort = await freePort();
  let controlPort = await freePort();
  while (controlPort === port || controlPort === dohPort) controlPort = await freePort();
  const unbound = await runUnbound(
    options.dir,
    unboundConfig({ ...options, port, dohPort, controlPort }),
  );
  const config = unbound.configFile;
  const control = (...command: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(
        'unbound-control',
        ['-c', config, ...command],
        { timeout: UNBOUND_TIMEOUT_MS },
        (error, stdout, stderr) => {
          if (error !== null) {
            reject(new Error(`unbound-control ${command.join(' ')}: ${error.message}\n${stderr}`));
          } else resolve(stdout);
        },
      );
    });
  return {
    port,
    dohPort,
    dohUrl: `https://127.0.0.1:${dohPort}${DOH_PATH}`,
    pid: unbound.pid,
    command: unbound.command,
    config,
    version: spawnSync('unbound', ['-V'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? '',
    log: unbound.log,
    control,
    async flushCache() {
      // flush_zone . marks every RRset, message and key entry expired; serve-expired is off, so
      // none of them is used again. flush_infra drops what Unbound learnt about the servers.
      for (const command of [
        ['flush_zone', '.'],
        ['flush_negative'],
        ['flush_bogus'],
        ['flush_infra', 'all'],
        ['flush_requestlist'],
      ]) {
        await control(...command);
      }
    },
    async cacheStats() {
      const text = await control('stats_noreset');
      const value = (key: string): number =>
        Number(new RegExp(`^${key.replace(/\./g, '\\.')}=(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
      return { hits: value('total.num.cachehits'), misses: value('total.num.cachemiss') };
    },
    stop: unbound.stop,
  };
}
