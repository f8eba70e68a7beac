import { resolve } from 'node:path';
import {
  MimiError,
  createRevocation,
  encodeRevocation,
  generateKeyPair,
  parseCsi,
} from '@mimi-discovery/common';
import {
  RegistrationError,
  createRegistrar,
  createRegistrationClient,
  type RevokeResult,
} from '@mimi-discovery/authoritative';
import { InvalidArgumentError, type Command } from 'commander';
import { apiFailure, apiUrl, readCaFile } from '../api-flags.js';
import { loadConfig, withStore } from '../config-file.js';
import type { CommandEnv } from '../context.js';
import { failure, parseFlag, usageError } from '../errors.js';
import { readKeyFile, toBase64url, writeNewKeyFile } from '../key-file.js';

/**
 * `csip …`: what a CSI provider (the operator of a numbering range or mail domain) does at the
 * DPs of its range — `keygen` (its key file, whose public key the DP lists with
 * `keys add-csip`) and `revoke` (design §4, R10: a recycled number's attestations issued before
 * `--before` stop counting, and the mappings they carry are deleted).
 *
 * The revocation is signed here, with the key that never leaves its file, and submitted either
 * to the DP's registration API (`--api`, `POST /v1/revocations`) or, by the DP's operator, into
 * the DP's store (`--config`): the same checks run on both paths (the registrar's `revoke`:
 * signature, times, the CSI's zone, the key listed as AUTHKEY `csip`), and the store applies it
 * as one operation with its anti-replay record, so a restart never lets the old mappings back.
 */

interface RevokeFlags {
  key: string;
  csi: string;
  before?: number;
  api?: string;
  ca?: string;
  config?: string;
  json?: boolean;
}

/** What `csip revoke --json` prints. */
export interface RevokeJson extends RevokeResult {
  csi: string;
  before: number;
}

/** Adds `csip` and its subcommands to `program`. */
export function registerCsip(program: Command, env: CommandEnv): Command {
  const csip = program
    .command('csip')
    .description("a CSI provider's key and its revocations of recycled CSIs (R10)");

  csip
    .command('keygen')
    .description('create a new CSIP key file (Ed25519, mode 0600)')
    .requiredOption('--out <file>', 'the key file to create (never overwritten)')
    .option('--json', 'print {file, publicKey} as JSON')
    .addHelpText(
      'after',
      `
Give the public key to the DPs of the range: mimi-discovery keys add-csip --public-key KEY.

Examples:
  $ mimi-discovery csip keygen --out operator-csip.key`,
    )
    .action(async (flags: { out: string; json?: boolean }) => {
      const file = resolve(env.cwd, flags.out);
      const keyPair = generateKeyPair();
      await writeNewKeyFile(file, keyPair);
      const publicKey = toBase64url(keyPair.publicKey);
      if (flags.json === true) env.out(`${JSON.stringify({ file, publicKey }, null, 2)}\n`);
      else env.out(`wrote a new CSIP key to ${file}\npublic key ${publicKey}\n`);
    });

  csip
    .command('revoke')
    .description(
      'revoke the attestations of a CSI issued before a time (a recycled number): signed with the CSIP key, sent to the DP',
    )
    .requiredOption('--key <file>', 'the CSIP key file (from csip keygen)')
    .requiredOption('--csi <csi>', 'the phone number or email address, as typed')
    .option(
      '--before <time>',
      'revoke attestations issued before this time: seconds since the epoch or an ISO 8601 date (default: now)',
      timeFlag,
    )
    .option('--api <url>', "the DP's registration API (https://host:port)")
    .option('--ca <file>', 'a CA certificate (PEM) to trust for --api')
    .option('--config <file>', "or: the DP's config, to apply the revocation to its store")
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Give exactly one of --api and --config.

Examples:
  $ mimi-discovery csip revoke --key operator-csip.key --csi "+44 20 7946 0018" --api https://127.0.0.1:8445 --ca ./net/ca/ca.pem
  $ mimi-discovery csip revoke --key operator-csip.key --csi "+44 20 7946 0018" --config ./net/dp44/config.json --before 2026-12-01T00:00:00Z`,
    )
    .action(async (flags: RevokeFlags) => {
      if ((flags.api === undefined) === (flags.config === undefined)) {
        throw usageError('ERR_USAGE', 'give exactly one of --api and --config');
      }
      if (flags.ca !== undefined && flags.api === undefined) {
        throw usageError('ERR_USAGE', '--ca goes with --api');
      }
      const csi = parseFlag('--csi', flags.csi, parseCsi);
      const { keyPair } = await readKeyFile(resolve(env.cwd, flags.key));
      const now = env.now();
      const before = flags.before ?? now;
      let revocation: Uint8Array;
      try {
        revocation = encodeRevocation(
          createRevocation({ csi, before, iat: now }, keyPair.secretKey),
        );
      } catch (error) {
        if (error instanceof MimiError) throw usageError(error.code, error.message, error);
        throw error;
      }
      const result =
        flags.api !== undefined
          ? await viaApi(flags.api, flags.ca, env, revocation)
          : await viaStore(flags.config, env, revocation);
      const json: RevokeJson = { csi, before, ...result };
      if (flags.json === true) env.out(`${JSON.stringify(json, null, 2)}\n`);
      else {
        const n = result.removed;
        env.out(
          `revoked the attestations of ${csi} issued before ${new Date(before * 1000).toISOString()}: ` +
            `${n} mapping${n === 1 ? '' : 's'} deleted (zone ${result.zone}, serial ${result.serial})\n`,
        );
      }
    });
  return csip;
}

/** A time: whole seconds since the epoch, or an ISO 8601 date with a time zone. */
function timeFlag(value: string): number {
  if (/^[0-9]{1,10}$/.test(value)) return Number(value);
  if (!/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2}))?$/.test(value)) {
    throw new InvalidArgumentError(
      'expected seconds since the epoch or an ISO 8601 date (2026-12-01 or 2026-12-01T00:00:00Z)',
    );
  }
  const ms = Date.parse(value);
  if (Number.isNaN(ms) || ms < 0) throw new InvalidArgumentError('not a valid date');
  return Math.floor(ms / 1000);
}

async function viaApi(
  api: string,
  ca: string | undefined,
  env: CommandEnv,
  revocation: Uint8Array,
): Promise<RevokeResult> {
  const url = apiUrl('--api', api);
  const pem = ca === undefined ? undefined : await readCaFile('--ca', ca, resolve(env.cwd, ca));
  const client = createRegistrationClient({
    url: url.href,
    ...(pem === undefined ? {} : { ca: pem }),
  });
  try {
    return (await client.revoke(revocation)).result;
  } catch (error) {
    throw apiFailure(error, url, {
      unreachable: 'ERR_CLI_API_UNREACHABLE',
      response: 'ERR_CLI_API_RESPONSE',
    });
  } finally {
    await client.close();
  }
}

async function viaStore(
  configFlag: string | undefined,
  env: CommandEnv,
  revocation: Uint8Array,
): Promise<RevokeResult> {
  const { config } = await loadConfig(configFlag, env);
  return withStore(config, env, async (store) => {
    // The registrar's own checks and operation: no code channel is needed to revoke.
    const registrar = createRegistrar({ store, channels: {}, now: env.now, apex: config.apex });
    try {
      return await registrar.revoke(revocation);
    } catch (error) {
      if (error instanceof RegistrationError) throw failure(error.code, error.message, error);
      throw error;
    }
  });
}
