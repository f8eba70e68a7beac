import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerCsip } from './commands/csip.js';
import { registerBackup } from './commands/backup.js';
import { registerCtl } from './commands/ctl.js';
import { registerDb } from './commands/db.js';
import { registerDelegation } from './commands/delegate.js';
import { registerDemo } from './commands/demo.js';
import { registerDs } from './commands/ds.js';
import { registerInit } from './commands/init.js';
import { registerKeys } from './commands/keys.js';
import { registerCredential } from './commands/credential.js';
import { registerIssuer } from './commands/issuer.js';
import { registerLookup } from './commands/lookup.js';
import { registerRecipient } from './commands/recipient.js';
import { registerRelay } from './commands/relay.js';
import { registerResolver } from './commands/resolver.js';
import { registerServe } from './commands/serve.js';
import { registerTrustAnchor } from './commands/trust-anchor.js';
import { registerZone } from './commands/zone.js';
import { commandEnv, type CliContext, type CliResult, type CommandEnv } from './context.js';
import { EXIT_CODES, errorLine, exitCodeOf, usageError } from './errors.js';

/**
 * The `mimi-discovery` command line, as a function: argv in, `{ exitCode, stdout, stderr }`
 * out. The bin (`main.ts`) and the tests run the very same code; a fresh commander program is
 * built for every call, so nothing carries over from one run to the next.
 *
 * Each command is thin (style: parse flags → `parseConfig` → an exported function of the
 * packages → text or `--json` → exit code) and lives in `commands/`. Errors end the command
 * with one line on stderr and the exit code of `errors.ts`.
 */

/** The version of this package, for `--version`. */
function packageVersion(): string {
  const text = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
  const version = (JSON.parse(text) as { version?: unknown }).version;
  return typeof version === 'string' ? version : '0.0.0';
}

/** Runs one command line (`argv` without the node and script paths). */
export async function runCli(
  argv: readonly string[],
  context: CliContext = {},
): Promise<CliResult> {
  const { env, result } = commandEnv(context);
  // The command being parsed, so that a missing subcommand can be named.
  let current: Command | undefined;
  const program = buildProgram(env, (command) => {
    current = command;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return result(EXIT_CODES.ok);
  } catch (error) {
    if (error instanceof CommanderError && error.exitCode === 0) return result(EXIT_CODES.ok);
    if (error instanceof CommanderError && error.code === 'commander.help') {
      const command = current ?? program;
      const names = command.commands.map((c) => c.name()).filter((n) => n !== 'help');
      const path = commandPath(command);
      const what =
        command === program ? 'a command is missing' : `${command.name()} needs a command`;
      env.err(
        errorLine(usageError('ERR_USAGE', `${what}: ${names.join(', ')} (see '${path} --help')`)),
      );
      return result(EXIT_CODES.usage);
    }
    env.err(errorLine(error));
    return result(exitCodeOf(error));
  }
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c !== null; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * The commander program with every command registered; `entered` is told of each subcommand
 * that parsing enters.
 */
function buildProgram(env: CommandEnv, entered: (command: Command) => void): Command {
  const program = new Command('mimi-discovery')
    .description(
      'Set up and run the MIMI Discovery Network: the root directory, Discovery Providers (DPs), ' +
        'their delegations, resolvers, the recipient side of registration, and lookups.',
    )
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help for the command')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => env.out(text),
      // Commander writes to stderr only the help it shows for a missing subcommand, and its
      // errors; runCli reports both as one line instead.
      writeErr: () => undefined,
      outputError: () => undefined,
    })
    .showSuggestionAfterError(true);
  program.addHelpText(
    'after',
    `
Exit codes: 0 success; 1 usage or config error; 2 the operation failed.
The config file may also be given as $MIMI_DISCOVERY_CONFIG.

Examples:
  $ mimi-discovery init root --dir ./net/root --udp 5300 --tcp 5300 --doh 8443 --ca-dir ./net/ca
  $ mimi-discovery init dp --dir ./net/dp44 --range +44 --udp 5301 --tcp 5301 --doh 8444 --api 8445 --ca-dir ./net/ca
  $ mimi-discovery delegate --config ./net/root/config.json --range +44 --ns-from ./net/dp44/config.json --ds-from ./net/dp44/config.json
  $ mimi-discovery trust-anchor --config ./net/root/config.json --out ./net/root.key
  $ mimi-discovery serve --config ./net/root/config.json
  $ mimi-discovery lookup +442079460018 --hints ./net/root-hints.json --trust-anchor ./net/root.key --ca ./net/ca/ca.pem
  $ mimi-discovery demo    # all of the above, and more, on this machine`,
  );
  registerInit(program, env);
  registerDs(program, env);
  registerDelegation(program, env);
  registerTrustAnchor(program, env);
  registerServe(program, env);
  registerZone(program, env);
  registerDb(program, env);
  registerBackup(program, env);
  registerKeys(program, env);
  registerRecipient(program, env);
  registerCsip(program, env);
  registerResolver(program, env);
  registerRelay(program, env);
  registerIssuer(program, env);
  registerCredential(program, env);
  registerLookup(program, env);
  registerCtl(program, env);
  registerDemo(program, env, runCli);
  for (const group of [program, ...program.commands]) {
    if (group.commands.length > 0) group.hook('preSubcommand', (_, sub) => entered(sub));
  }
  return program;
}
