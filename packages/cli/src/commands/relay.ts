import { resolve } from 'node:path';
import { QUERY_LOG_BUFFER_OCTETS, createLogger, createTlsReload } from '@mimi-discovery/common';
import {
  loadRelayConfig,
  startRelay,
  type RelayServerConfig,
  type RunningRelay,
} from '@mimi-discovery/relay';
import type { Command } from 'commander';
import { CONFIG_ENV, configPath } from '../config-file.js';
import type { CommandEnv } from '../context.js';
import { logStopped, printListeners, reloadOnHangup, stopSignal } from './serve.js';

/**
 * `relay serve`: runs an oblivious relay (`startRelay`: the OHTTP relay resources and the ODoH
 * proxy, and the admin port) from its config file (`relayConfigSchema`), prints one line per
 * listener — `relay https://127.0.0.1:15329`, `admin http://127.0.0.1:15330` — then one per
 * relay resource (`ohttp https://127.0.0.1:15329/ohttp/resolver`), or with `--json` one JSON
 * object per line, and runs until SIGINT or SIGTERM (in-process: until the context's signal
 * aborts), when it closes every listener and its connections to the gateways, logs `stopped`
 * and ends with exit 0; SIGHUP re-reads its certificate and key. Logs are JSON lines on stderr. `--query-log FILE` turns the query log on (or moves
 * it) for this run.
 */

interface ServeFlags {
  config?: string;
  json?: boolean;
  queryLog?: string;
}

/** One line of `relay serve`: a listener, or a gateway's relay resource. */
export interface RelayListenerJson {
  listener: 'relay' | 'admin' | 'ohttp';
  host: string;
  port: number;
  url: string;
  /** For `ohttp`: the gateway's name in the config. */
  gateway?: string;
}

/** Adds `relay serve` to `program`. */
export function registerRelay(program: Command, env: CommandEnv): Command {
  const group = program
    .command('relay')
    .description('run an oblivious relay (OHTTP, ODoH) between senders and resolvers')
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery relay serve --config ./net/relay.json`,
    );
  group
    .command('serve')
    .description(
      'run an oblivious relay (OHTTP relay resources, an ODoH proxy, the admin port) until SIGINT or SIGTERM',
    )
    .option('--config <file>', `config file of the relay (default: $${CONFIG_ENV})`)
    .option('--json', 'print one JSON object per listener and relay resource')
    .option(
      '--query-log <file>',
      "append a line per request to FILE (JSON lines, never a body), instead of the config's queryLog.path",
    )
    .addHelpText(
      'after',
      `
The config names the gateways (each resolver's /.well-known/ohttp-gateway) and the ODoH
targets the relay forwards to; relative paths are relative to the config file's directory:

  { "listen": { "relay": 15329, "admin": 15330 },
    "tls": { "cert": "relay-cert.pem", "key": "relay-key.pem" }, "ca": "ca/ca.pem",
    "gateways": { "resolver": "https://127.0.0.1:8453/.well-known/ohttp-gateway" },
    "odohTargets": ["127.0.0.1:8453"] }

Examples:
  $ mimi-discovery relay serve --config ./net/relay.json
  $ mimi-discovery lookup +442079460018 --relay https://127.0.0.1:15329/ohttp/resolver --ca ./net/ca/ca.pem`,
    )
    .action(async (flags: ServeFlags) => {
      const path = configPath(flags.config, env);
      const read = async (): Promise<RelayServerConfig> => {
        const loaded = await loadRelayConfig(path);
        return flags.queryLog === undefined
          ? loaded
          : {
              ...loaded,
              queryLog: {
                path: resolve(env.cwd, flags.queryLog),
                bufferBytes: loaded.queryLog?.bufferBytes ?? QUERY_LOG_BUFFER_OCTETS,
              },
            };
      };
      const config = await read();
      const log = env.log ?? createLogger('relay', { level: config.log.level });
      const stopped = stopSignal(env.signal);
      let relay: RunningRelay | undefined;
      let unsubscribe = (): void => undefined;
      try {
        relay = await startRelay(config, { log });
        const running = relay;
        unsubscribe = reloadOnHangup(
          env,
          createTlsReload(config, read, () => [running], { configFile: path, log }),
        );
        printListeners(
          env,
          relayListeners(relay, Object.keys(config.gateways)),
          flags.json === true,
        );
        await stopped;
      } finally {
        unsubscribe();
        await relay?.close();
        logStopped(log, env);
      }
    });
  return group;
}

/** The listeners of a running relay, then the relay resource of each gateway. */
function relayListeners(relay: RunningRelay, gateways: readonly string[]): RelayListenerJson[] {
  const out: RelayListenerJson[] = [
    { listener: 'relay', host: relay.host, port: relay.port, url: relay.url },
  ];
  if (relay.admin !== undefined) {
    out.push({ listener: 'admin', host: relay.host, port: relay.admin.port, url: relay.admin.url });
  }
  for (const gateway of gateways) {
    out.push({
      listener: 'ohttp',
      host: relay.host,
      port: relay.port,
      url: `${relay.url}/ohttp/${gateway}`,
      gateway,
    });
  }
  return out;
}
