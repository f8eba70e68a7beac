import { resolve } from 'node:path';
import { createLogger, queryLogConfigSchema, type Logger } from '@mimi-discovery/common';
import { startDp, type RunningDp } from '@mimi-discovery/authoritative';
import type { Command } from 'commander';
import type { DpConfig } from '@mimi-discovery/authoritative';
import { configPath, loadConfig, requireStore } from '../config-file.js';
import type { CommandEnv } from '../context.js';

/**
 * `serve`: runs the root directory or a DP from its config (`startDp`), prints one line
 * per listener — `udp 127.0.0.1:5300`, `doh https://127.0.0.1:8443/dns-query`, … — or with
 * `--json` one JSON object per line (`{"listener":"udp","host":"127.0.0.1","port":5300}`), and
 * runs until SIGINT or SIGTERM (in-process: until the context's signal aborts), when it closes
 * every listener and the store, logs a `stopped` line and ends with exit 0; SIGHUP reloads it
 * as `ctl reload` does (the config file and certificates). Logs are JSON lines on stderr.
 * `--query-log FILE` turns the query log on (or moves it) for this run.
 */

interface ServeFlags {
  config?: string;
  json?: boolean;
  queryLog?: string;
}

/** One listener of a running server. */
export interface ListenerJson {
  listener: 'udp' | 'tcp' | 'doh' | 'api' | 'admin';
  host: string;
  port: number;
  url?: string;
}

/** Adds `serve` to `program`. */
export function registerServe(program: Command, env: CommandEnv): Command {
  return program
    .command('serve')
    .description('run the root directory or a DP from its config until SIGINT or SIGTERM')
    .option('--config <file>', 'config file of the server (default: $MIMI_DISCOVERY_CONFIG)')
    .option('--json', 'print one JSON object per listener')
    .option(
      '--query-log <file>',
      "append a line per DNS query to FILE (JSON lines), instead of the config's queryLog.path",
    )
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery serve --config ./net/root/config.json
  $ MIMI_DISCOVERY_CONFIG=./net/dp44/config.json mimi-discovery serve --json
  $ mimi-discovery serve --config ./net/dp44/config.json --query-log ./net/dp44/queries.jsonl`,
    )
    .action(async (flags: ServeFlags) => {
      // The flags apply to every reading of the file, so that a reload sees no change in them.
      const read = async (): Promise<DpConfig> => {
        const loaded = await loadConfig(flags.config, env);
        return flags.queryLog === undefined
          ? loaded.config
          : {
              ...loaded.config,
              queryLog: withQueryLogPath(loaded.config.queryLog, resolve(env.cwd, flags.queryLog)),
            };
      };
      const config = await read();
      requireStore(config);
      const log = env.log ?? createLogger('authoritative', { level: config.log.level });
      const stopped = stopSignal(env.signal);
      const dp = await startDp(config, {
        log,
        configFile: configPath(flags.config, env),
        reloadConfig: read,
      });
      const unsubscribe = reloadOnHangup(env, dp.reload);
      try {
        printListeners(env, listeners(dp), flags.json === true);
        await stopped;
      } finally {
        unsubscribe();
        await dp.close();
        logStopped(log, env);
      }
    });
}

/**
 * The `queryLog` section with `path` set (`--query-log`): the config's other keys (`peer`,
 * `bufferBytes`) are kept; without a section, its defaults (no peer).
 */
export function withQueryLogPath<T extends { path: string }>(
  section: T | undefined,
  path: string,
): T | ReturnType<typeof queryLogConfigSchema.parse> {
  return section === undefined ? queryLogConfigSchema.parse({ path }) : { ...section, path };
}

/** The listeners of a running server, in a fixed order. */
export function listeners(dp: RunningDp): ListenerJson[] {
  const out: ListenerJson[] = [];
  const { dns, api, admin } = dp;
  if (dns?.udp) out.push({ listener: 'udp', host: dns.udp.host, port: dns.udp.port });
  if (dns?.tcp) out.push({ listener: 'tcp', host: dns.tcp.host, port: dns.tcp.port });
  if (dns?.doh)
    out.push({ listener: 'doh', host: dns.doh.host, port: dns.doh.port, url: dns.doh.url });
  const host = dp.config.listen.host;
  if (api) out.push({ listener: 'api', host, port: api.port, url: api.url });
  if (admin) out.push({ listener: 'admin', host, port: admin.port, url: admin.url });
  return out;
}

/**
 * Prints one line per listener, as `serve` and the other servers' `serve` commands do: `udp
 * 127.0.0.1:5353`, `api   https://…`, or with `json` one JSON object per line.
 */
export function printListeners(
  env: Pick<CommandEnv, 'out'>,
  list: readonly (Pick<ListenerJson, 'host' | 'port' | 'url'> & { listener: string })[],
  json: boolean,
): void {
  for (const l of list) {
    env.out(
      json
        ? `${JSON.stringify(l)}\n`
        : `${l.listener.padEnd(5)} ${l.url ?? hostPort(l.host, l.port)}\n`,
    );
  }
}

/** `host:port`, with brackets around an IPv6 host. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Runs `reload` on each SIGHUP while a server runs (as `ctl reload`); the server logs the
 * outcome, and a failed reload changes nothing. Returns the unsubscribe.
 */
export function reloadOnHangup(
  env: Pick<CommandEnv, 'hangups'>,
  reload: () => Promise<unknown>,
): () => void {
  const unsubscribe = env.hangups?.subscribe(() => {
    reload().catch(() => undefined);
  });
  return unsubscribe ?? (() => undefined);
}

/** The last line of a server: `stopped`, with the signal that stopped it when one did. */
export function logStopped(log: Logger, env: Pick<CommandEnv, 'signal'>): void {
  const reason: unknown = env.signal?.reason;
  log.info('stopped', typeof reason === 'string' ? { signal: reason } : {});
}

/** Resolves when `signal` aborts; never without one. */
export function stopSignal(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal === undefined) return;
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
