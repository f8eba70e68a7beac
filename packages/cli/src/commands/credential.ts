import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  CredentialError,
  MAX_CREDENTIAL_OCTETS,
  parseResolverEndpoint,
  verifyCredential,
  type VerifiedCredential,
} from '@mimi-discovery/common';
import type { Command } from 'commander';
import { readCaFile } from '../api-flags.js';
import type { CommandEnv } from '../context.js';
import { failure, usageError } from '../errors.js';
import { toBase64url } from '../key-file.js';

/**
 * `credential verify FILE`: checks a credential from a prover (an X.509 certificate in PEM, or
 * an SD-JWT; `recipient credential` makes them) with the DNS alone, through a validating
 * resolver: `verifyCredential` of @mimi-discovery/common (docs/protocol.md, "Credentials").
 * Exit 0 when it verifies, 2 with the `ERR_CREDENTIAL_…` code when it does not.
 */

interface VerifyFlags {
  resolver: string;
  ca?: string;
  apex?: string;
  json?: boolean;
}

/** Adds `credential` and its subcommands to `program`. */
export function registerCredential(program: Command, env: CommandEnv): Command {
  const credential = program
    .command('credential')
    .description("credentials from a range's prover: check one against the range's AUTHKEY");
  credential
    .command('verify')
    .description(
      "verify a credential (X.509 PEM or SD-JWT) against an AUTHKEY prover of its CSI's range, found through DNS",
    )
    .argument('<file>', 'the credential file')
    .requiredOption(
      '--resolver <url>',
      'a validating resolver: DoH (https://host:port/dns-query), or udp://127.0.0.1:PORT / tcp://… on loopback',
    )
    .option('--ca <file>', 'a CA certificate (PEM) to trust for a DoH resolver')
    .option('--apex <name>', 'the namespace apex (default mimi.arpa)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery credential verify alice.pem --resolver https://127.0.0.1:8453/dns-query --ca ./net/ca/ca.pem
  $ mimi-discovery credential verify alice.sd-jwt --resolver udp://127.0.0.1:5353 --json`,
    )
    .action(async (given: string, flags: VerifyFlags) => {
      try {
        parseResolverEndpoint(flags.resolver);
      } catch (error) {
        throw usageError(
          'ERR_USAGE',
          `--resolver ${JSON.stringify(flags.resolver)}: ${(error as Error).message}`,
          error,
        );
      }
      const file = resolve(env.cwd, given);
      const text = await readCredentialFile(given, file);
      const ca =
        flags.ca === undefined
          ? undefined
          : await readCaFile('--ca', flags.ca, resolve(env.cwd, flags.ca));
      let verified: VerifiedCredential;
      try {
        verified = await verifyCredential(text, {
          resolver: flags.resolver,
          ...(ca === undefined ? {} : { ca }),
          ...(flags.apex === undefined ? {} : { apex: flags.apex }),
          now: env.now,
        });
      } catch (error) {
        if (error instanceof CredentialError) throw failure(error.code, error.message, error);
        throw error;
      }
      const report = {
        format: verified.format,
        ...(verified.csi === undefined ? {} : { csi: verified.csi }),
        key: toBase64url(verified.key),
        prover: toBase64url(verified.prover),
        zone: verified.zone,
        nbf: verified.nbf,
        exp: verified.exp,
      };
      if (flags.json === true) env.out(`${JSON.stringify(report, null, 2)}\n`);
      else {
        env.out(
          `verified: ${report.csi ?? 'a CSI (not disclosed)'} of ${report.zone} is held by key ${report.key}\n` +
            `prover ${report.prover} (an AUTHKEY of ${report.zone}), valid ${iso(report.nbf)} to ${iso(report.exp)}\n`,
        );
      }
    });
  return credential;
}

/** The credential file's text; a usage error (exit 1) when it cannot be read or is too large. */
async function readCredentialFile(given: string, file: string): Promise<string> {
  try {
    // A credential is a few kilobytes: refuse before reading a large file.
    if ((await stat(file)).size > MAX_CREDENTIAL_OCTETS) {
      throw usageError(
        'ERR_USAGE',
        `${given}: larger than ${MAX_CREDENTIAL_OCTETS} octets, not a credential`,
      );
    }
    return await readFile(file, 'utf8');
  } catch (error) {
    if (error instanceof Error && 'exitCode' in error) throw error;
    throw usageError('ERR_USAGE', `${given}: ${(error as Error).message}`, error);
  }
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}
