import { resolve } from 'node:path';
import { CsiError, parseCsi, silentLogger } from '@mimi-discovery/common';
import {
  createDiscoveryClient,
  createResolver,
  readResolverFiles,
  resultJson,
  type DiscoveryResult,
  type VerifiedMapping,
} from '@mimi-discovery/resolver';
import { Option, type Command } from 'commander';
import { apiFailure, apiUrl, readCaFile } from '../api-flags.js';
import type { CommandEnv } from '../context.js';
import { failure, usageError } from '../errors.js';
import { remotePort } from '../flag-values.js';

/**
 * `lookup`: discovers CSIs (design §6) and prints the verified result of each — through a
 * running resolver's JSON API (`--resolver URL`), or by resolving in-process from the root
 * hints and the trust anchor (`--hints FILE --trust-anchor FILE`), as a resolver would.
 *
 * With `--json` it prints what the JSON API returns: the `DiscoveryResult` object for one CSI,
 * `{"results": [...]}` for several. Exit 0 when every result is `none`, `empty` or `found`;
 * 2 when any is `error` (the results are printed first, then one error line); 1 for a command
 * line that does not parse, a CSI that is not one, or unusable hints or anchor.
 */

interface LookupFlags {
  resolver?: string;
  ca?: string;
  hints?: string;
  trustAnchor?: string;
  transport: 'doh' | 'dns';
  dnsPort?: number;
  json?: boolean;
}

/** Adds `lookup` to `program`. */
export function registerLookup(program: Command, env: CommandEnv): Command {
  return program
    .command('lookup')
    .description(
      'discover CSIs: the MSPs each recipient listed, verified, through a resolver or directly',
    )
    .argument('<csi...>', 'phone numbers or email addresses, as typed')
    .option('--resolver <url>', "a running resolver's JSON API (https://host:port)")
    .option('--ca <file>', 'a CA certificate to trust for HTTPS (a local CA from init --ca-dir)')
    .option('--hints <file>', "resolve directly from these root hints ('mimi-discovery hints')")
    .option('--trust-anchor <file>', "and this trust anchor ('mimi-discovery trust-anchor')")
    .addOption(
      new Option('--transport <transport>', 'with --hints: how to reach the servers')
        .choices(['doh', 'dns'])
        .default('doh'),
    )
    .option(
      '--dns-port <port>',
      'with --transport dns: the plain DNS port of servers other than the roots (default 53)',
      remotePort,
    )
    .option('--json', 'print the results as the JSON API returns them')
    .addHelpText(
      'after',
      `
Exit codes: 0 every result is none, empty or found; 2 any result is error; 1 usage.

Examples:
  $ mimi-discovery lookup "+44 20 7946 0018" --resolver https://127.0.0.1:8453 --ca ./net/ca/ca.pem
  $ mimi-discovery lookup +442079460018 alice@example.com --hints ./net/root-hints.json \\
      --trust-anchor ./net/root.key --ca ./net/ca/ca.pem --json`,
    )
    .action(async (inputs: string[], flags: LookupFlags, command: Command) => {
      for (const input of inputs) checkCsi(input);
      const transportGiven = command.getOptionValueSource('transport') !== 'default';
      const results =
        flags.resolver !== undefined
          ? await throughApi(inputs, flags, transportGiven, env)
          : await directly(inputs, flags, env);
      if (flags.json === true) {
        // The JSON API's own serializer: what the API writes, field for field.
        const json =
          results.length === 1
            ? resultJson(results[0] as DiscoveryResult)
            : { results: results.map(resultJson) };
        env.out(`${JSON.stringify(json, null, 2)}\n`);
      } else env.out(results.map(formatResult).join('\n'));
      const failed = results.filter((r) => r.status === 'error');
      if (failed.length > 0) {
        const reasons = [...new Set(failed.map((r) => r.error?.reason ?? 'error'))].join(', ');
        throw failure(
          'ERR_CLI_LOOKUP_FAILED',
          `${failed.length} of ${results.length} lookups ended in error (${reasons})`,
        );
      }
    });
}

/** A CSI as typed, refused (exit 1) before anything is asked when it is not one. */
function checkCsi(input: string): void {
  try {
    parseCsi(input);
  } catch (error) {
    if (error instanceof CsiError) {
      throw usageError(error.code, `${JSON.stringify(input)}: ${error.message}`, error);
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Directly, from the hints and the trust anchor

async function directly(
  inputs: string[],
  flags: LookupFlags,
  env: CommandEnv,
): Promise<DiscoveryResult[]> {
  if (flags.hints === undefined || flags.trustAnchor === undefined) {
    throw usageError(
      'ERR_USAGE',
      flags.hints === undefined && flags.trustAnchor === undefined
        ? 'give --resolver URL, or --hints FILE and --trust-anchor FILE'
        : '--hints FILE and --trust-anchor FILE go together',
    );
  }
  if (flags.dnsPort !== undefined && flags.transport !== 'dns') {
    throw usageError('ERR_USAGE', '--dns-port goes with --transport dns');
  }
  const files = await readResolverFiles({
    rootHints: resolve(env.cwd, flags.hints),
    trustAnchor: resolve(env.cwd, flags.trustAnchor),
    transport: flags.transport,
    ...(flags.ca === undefined ? {} : { ca: resolve(env.cwd, flags.ca) }),
  });
  const resolver = createResolver(
    { ...files, ...(flags.dnsPort === undefined ? {} : { dnsPort: flags.dnsPort }) },
    { log: env.log ?? silentLogger, now: env.now },
  );
  try {
    return await resolver.discoverMany(inputs);
  } finally {
    await resolver.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Through a resolver's JSON API

async function throughApi(
  inputs: string[],
  flags: LookupFlags,
  transportGiven: boolean,
  env: CommandEnv,
): Promise<DiscoveryResult[]> {
  if (flags.hints !== undefined || flags.trustAnchor !== undefined) {
    throw usageError('ERR_USAGE', '--resolver cannot be combined with --hints or --trust-anchor');
  }
  if (transportGiven || flags.dnsPort !== undefined) {
    throw usageError('ERR_USAGE', '--transport and --dns-port go with --hints, not --resolver');
  }
  const url = apiUrl('--resolver', flags.resolver as string);
  const ca =
    flags.ca === undefined
      ? undefined
      : await readCaFile('--ca', flags.ca, resolve(env.cwd, flags.ca));
  const api = createDiscoveryClient({ url: url.href, ...(ca === undefined ? {} : { ca }) });
  try {
    // One CSI is one GET, sent as typed; several are one POST.
    return inputs.length === 1
      ? [await api.discover(inputs[0] as string)]
      : await api.discoverMany(inputs);
  } catch (error) {
    throw apiFailure(error, url, {
      unreachable: 'ERR_CLI_RESOLVER_UNREACHABLE',
      response: 'ERR_CLI_RESOLVER_RESPONSE',
    });
  } finally {
    await api.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Human output

/**
 * One result as text:
 *
 * ```
 * tel:+442079460018  found  ttl 300s
 *   chat.example  tags: primary, work  uri: im:alice@chat.example
 *     verified: recipient key a2V5… seq 7, expires 2026-02-01T00:00:00Z, attested by prover cHJv…
 *     from: zone 4.4.e164.mimi.arpa, server https://127.0.0.1:8444/dns-query
 * ```
 */
function formatResult(result: DiscoveryResult): string {
  const lines = [
    `${result.csi}  ${result.status}  ttl ${result.ttl}s${result.stale === true ? '  (stale)' : ''}`,
  ];
  switch (result.status) {
    case 'none':
      lines.push('  no mapping (authenticated denial)');
      break;
    case 'empty':
      lines.push('  no MSP listed: the recipient opted out');
      for (const m of result.mappings) lines.push(...provenance(m));
      break;
    case 'found':
      for (const m of result.mappings) {
        for (const msp of m.msps) {
          const tags = msp.tags.length > 0 ? `  tags: ${msp.tags.join(', ')}` : '  no tags';
          const uri = msp.uri === undefined ? '' : `  uri: ${msp.uri}`;
          lines.push(`  ${msp.provider}${tags}${uri}`);
        }
        lines.push(...provenance(m));
      }
      break;
    case 'error':
      lines.push(
        `  error: ${result.error?.reason ?? 'unknown'}: ${result.error?.detail ?? ''}`.trimEnd(),
      );
      break;
  }
  return `${lines.join('\n')}\n`;
}

function provenance(m: VerifiedMapping): string[] {
  const expires = new Date(m.exp * 1000).toISOString().replace('.000Z', 'Z');
  return [
    `    verified: recipient key ${m.key} seq ${m.seq}${m.new ? ' (new)' : ''}, expires ${expires}, attested by prover ${m.prover}`,
    `    from: zone ${m.zone}, server ${m.server}`,
  ];
}
