import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  ConfigError,
  createLogger,
  createTlsReload,
  parseConfigText,
  readConfigText,
} from '@mimi-discovery/common';
import {
  generateCredential,
  hashCredential,
  issuerConfigSchema,
  loadIssuerConfig,
  startIssuer,
  type RunningIssuer,
} from '@mimi-discovery/relay';
import type { Command } from 'commander';
import { CONFIG_ENV, configPath } from '../config-file.js';
import type { CommandEnv } from '../context.js';
import { usageError } from '../errors.js';
import { writeNew, writeReplacing } from '../files.js';
import {
  logStopped,
  printListeners,
  reloadOnHangup,
  stopSignal,
  type ListenerJson,
} from './serve.js';

/**
 * `issuer serve`: runs a Privacy Pass issuer (`startIssuer` of `@mimi-discovery/relay`) from its
 * config file (`issuerConfigSchema`), prints one line per listener (`api   https://…`, `admin
 * http://…`, or with `--json` one JSON object per line) and runs until SIGINT or SIGTERM (in
 * process: until the context's signal aborts), when it closes its listeners and its counters and
 * logs `stopped`; SIGHUP re-reads its certificate and key (other changes wait for a restart).
 *
 * `issuer add-user --config FILE --id ID`: adds a user to the config file with a fresh bearer
 * credential, storing only its SHA-256; the credential is printed once (or written, 0600, to
 * `--credential-out FILE`) and cannot be recovered. The config file is checked before and after
 * and replaced atomically; a running issuer reads it at its next start.
 */

interface ServeFlags {
  config?: string;
  json?: boolean;
}

interface AddUserFlags {
  config?: string;
  id: string;
  credentialOut?: string;
  json?: boolean;
}

/** Adds `issuer serve` and `issuer add-user` to `program`. */
export function registerIssuer(program: Command, env: CommandEnv): Command {
  const group = program
    .command('issuer')
    .description('run a Privacy Pass token issuer (RFC 9578) and manage its users')
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery issuer add-user --config ./net/issuer.json --id alice --credential-out alice.credential
  $ mimi-discovery issuer serve --config ./net/issuer.json`,
    );
  group
    .command('serve')
    .description('run the issuer (token API over HTTPS, the admin port) until SIGINT or SIGTERM')
    .option('--config <file>', `config file of the issuer (default: $${CONFIG_ENV})`)
    .option('--json', 'print one JSON object per listener')
    .addHelpText(
      'after',
      `
The config, with paths relative to its directory:

  { "listen": { "api": 8463, "admin": 9163 },
    "tls": { "cert": "issuer-cert.pem", "key": "issuer-key.pem" },
    "dataDir": "issuer-data", "keyDir": "issuer-keys",
    "tokensPerPeriod": 100, "periodSeconds": 86400,
    "users": [ { "id": "alice", "credentialSha256": "…" } ] }

The token keys and issuer-public-keys.json (for 'keys publish') are kept in keyDir.`,
    )
    .action(async (flags: ServeFlags) => {
      const path = configPath(flags.config, env);
      const config = await loadIssuerConfig(path);
      const log = env.log ?? createLogger('issuer', { level: config.log.level });
      const stopped = stopSignal(env.signal);
      let issuer: RunningIssuer | undefined;
      let unsubscribe = (): void => undefined;
      try {
        issuer = await startIssuer(config, { log });
        const running = issuer;
        unsubscribe = reloadOnHangup(
          env,
          createTlsReload(
            config,
            () => loadIssuerConfig(path),
            () => [running],
            {
              configFile: path,
              log,
            },
          ),
        );
        printListeners(env, listeners(issuer), flags.json === true);
        await stopped;
      } finally {
        unsubscribe();
        await issuer?.close();
        logStopped(log, env);
      }
    });
  group
    .command('add-user')
    .description('add a user with a fresh bearer credential, printed once')
    .option('--config <file>', `config file of the issuer (default: $${CONFIG_ENV})`)
    .requiredOption('--id <id>', 'the user id (1–128 of A–Z a–z 0–9 . _ @ + -)')
    .option('--credential-out <file>', 'write the credential to FILE (0600) instead of printing it')
    .option('--json', 'print {id, credential} (or {id, credentialFile}) as JSON')
    .action(async (flags: AddUserFlags) => {
      const path = configPath(flags.config, env);
      const text = await readConfigText(path, 'config file');
      const parsed = parseConfigText(text, issuerConfigSchema, path);
      if (parsed.users.some((u) => u.id === flags.id)) {
        throw usageError('ERR_USAGE', `--id ${JSON.stringify(flags.id)}: the user exists already`);
      }
      const credential = generateCredential();
      // The file as written, with one user more: the operator's other keys stay as they are.
      const raw = JSON.parse(text.startsWith('\uFEFF') ? text.slice(1) : text) as {
        users?: unknown[];
      };
      raw.users = [
        ...(raw.users ?? []),
        { id: flags.id, credentialSha256: hashCredential(credential) },
      ];
      const updated = `${JSON.stringify(raw, null, 2)}\n`;
      try {
        parseConfigText(updated, issuerConfigSchema, path);
      } catch (error) {
        if (error instanceof ConfigError) throw usageError(error.code, `--id: ${error.message}`);
        throw error;
      }
      const outFile =
        flags.credentialOut === undefined ? undefined : resolve(env.cwd, flags.credentialOut);
      if (outFile !== undefined) await writeNew(outFile, `${credential}\n`, 0o600);
      const mode = (await stat(path)).mode & 0o777;
      await writeReplacing(path, updated, mode);
      if (flags.json === true) {
        env.out(
          `${JSON.stringify(
            outFile === undefined
              ? { id: flags.id, credential }
              : { id: flags.id, credentialFile: outFile },
          )}\n`,
        );
      } else if (outFile === undefined) {
        env.out(`user ${flags.id} added; its credential (shown once):\n${credential}\n`);
      } else {
        env.out(`user ${flags.id} added; its credential is in ${outFile}\n`);
      }
    });
  return group;
}

/** The listeners of a running issuer. */
function listeners(issuer: RunningIssuer): ListenerJson[] {
  const out: ListenerJson[] = [
    { listener: 'api', host: issuer.api.host, port: issuer.api.port, url: issuer.api.url },
  ];
  const { admin } = issuer;
  if (admin !== undefined) {
    out.push({ listener: 'admin', host: issuer.api.host, port: admin.port, url: admin.url });
  }
  return out;
}
