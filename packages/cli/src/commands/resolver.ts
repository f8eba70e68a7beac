import { resolve } from 'node:path';
import { createLogger } from '@mimi-discovery/common';
import {
  createResolver,
  loadResolverConfig,
  startResolverServer,
  type ResolverServerConfig,
  type RunningResolverServer,
} from '@mimi-discovery/resolver';
import type { Command } from 'commander';
import { CONFIG_ENV, configPath } from '../config-file.js';
import type { CommandEnv } from '../context.js';
import { usageError } from '../errors.js';
import { checkResolverStartup } from '../resolver-startup.js';
import {
  logStopped,
  printListeners,
  reloadOnHangup,
  stopSignal,
  withQueryLogPath,
  type ListenerJson,
} from './serve.js';

/**
 * `resolver serve`: runs a resolver (`createResolver`) behind its front ends
 * (`startResolverServer`: UDP, TCP, DoH, the JSON API, the admin port) from its config file
 * (`resolverConfigSchema`), prints one line per listener — `udp   127.0.0.1:5353`, `api
 * https://127.0.0.1:8453`, … — or with `--json` one JSON object per line, and runs until SIGINT
 * or SIGTERM (in-process: until the context's signal aborts), when it closes every listener and
 * the resolver's upstream connections, logs `stopped` and ends with exit 0; SIGHUP reloads it
 * as `ctl reload` does. Logs are JSON lines on stderr.
 * `--query-log FILE` turns the query log on (or moves it) for this run, `--query-log-api` adds
 * the JSON API's lookups to it. Before it serves, it asks the root servers for the apex DNSKEY
 * (`startupCheck`, {@link checkResolverStartup}) and refuses to start, with one line saying why
 * and exit 2, when none answers with keys the trust anchor validates.
 */

interface ServeFlags {
  config?: string;
  json?: boolean;
  queryLog?: string;
  queryLogApi?: boolean;
}

/** Adds `resolver serve` to `program`. */
export function registerResolver(program: Command, env: CommandEnv): Command {
  const group = program
    .command('resolver')
    .description('run a resolver for senders and MSP back ends')
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery resolver serve --config ./net/resolver.json`,
    );
  group
    .command('serve')
    .description(
      'run a resolver (DNS over UDP, TCP and HTTPS, the JSON API, the admin port) until SIGINT or SIGTERM',
    )
    .option('--config <file>', `config file of the resolver (default: $${CONFIG_ENV})`)
    .option('--json', 'print one JSON object per listener')
    .option(
      '--query-log <file>',
      "append a line per DNS query to FILE (JSON lines), instead of the config's queryLog.path",
    )
    .option('--query-log-api', 'log each CSI the JSON API looks up too (queryLog.api)')
    .addHelpText(
      'after',
      `
The config names the root hints and the trust anchor (from 'mimi-discovery hints' and
'mimi-discovery trust-anchor'), relative to the config file's directory:

  { "rootHints": "root-hints.json", "trustAnchor": "root.key", "ca": "ca/ca.pem",
    "listen": { "udp": 5353, "tcp": 5353, "api": 8453, "admin": 9153 },
    "tls": { "cert": "resolver-cert.pem", "key": "resolver-key.pem" } }

Examples:
  $ mimi-discovery resolver serve --config ./net/resolver.json
  $ mimi-discovery lookup +442079460018 --resolver https://127.0.0.1:8453 --ca ./net/ca/ca.pem`,
    )
    .action(async (flags: ServeFlags) => {
      const path = configPath(flags.config, env);
      // The flags apply to every reading of the file, so that a reload sees no change in them.
      const read = async (): Promise<ResolverServerConfig> => {
        const loaded = await loadResolverConfig(path);
        const queryLog =
          flags.queryLog === undefined
            ? loaded.queryLog
            : {
                api: false,
                ...withQueryLogPath(loaded.queryLog, resolve(env.cwd, flags.queryLog)),
              };
        return {
          ...loaded,
          ...(queryLog === undefined
            ? {}
            : { queryLog: flags.queryLogApi === true ? { ...queryLog, api: true } : queryLog }),
        };
      };
      const config = await read();
      if (flags.queryLogApi === true && config.queryLog === undefined) {
        throw usageError(
          'ERR_USAGE',
          '--query-log-api needs a query log: --query-log FILE or queryLog in the config',
        );
      }
      const log = env.log ?? createLogger('resolver', { level: config.log.level });
      const stopped = stopSignal(env.signal);
      // The hints and the anchor were checked (and the anchor parsed) by loadResolverConfig;
      // whether the root can be reached with them is checked before any port is bound.
      await checkResolverStartup(config, env.signal === undefined ? {} : { signal: env.signal });
      const resolver = createResolver(config, { log });
      let server: RunningResolverServer | undefined;
      let unsubscribe = (): void => undefined;
      try {
        server = await startResolverServer(config, resolver, {
          log,
          configFile: path,
          reloadSettings: read,
        });
        unsubscribe = reloadOnHangup(env, server.reload);
        printListeners(env, listeners(server, config.listen.host), flags.json === true);
        await stopped;
      } finally {
        unsubscribe();
        await server?.close();
        await resolver.close();
        logStopped(log, env);
      }
    });
  return group;
}

/** The listeners of a running resolver, in the order `serve` prints a DP's. */
function listeners(server: RunningResolverServer, host: string): ListenerJson[] {
  const out: ListenerJson[] = [];
  const { dns, api, admin } = server;
  if (dns?.udp) out.push({ listener: 'udp', host: dns.udp.host, port: dns.udp.port });
  if (dns?.tcp) out.push({ listener: 'tcp', host: dns.tcp.host, port: dns.tcp.port });
  if (dns?.doh)
    out.push({ listener: 'doh', host: dns.doh.host, port: dns.doh.port, url: dns.doh.url });
  if (api) out.push({ listener: 'api', host: api.host, port: api.port, url: api.url });
  if (admin) out.push({ listener: 'admin', host, port: admin.port, url: admin.url });
  return out;
}
