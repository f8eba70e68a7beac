import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CsiError, parseCsi, silentLogger } from '@mimi-discovery/common';
import {
  createResolver,
  readResolverFiles,
  resultJson,
  type DiscoveryResult,
  type VerifiedMapping,
} from '@mimi-discovery/resolver';
import { Option, type Command } from 'commander';
import { Agent, request } from 'undici';
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

/** Time allowed for the JSON API's response headers, and then its body: a batch takes a while. */
const LOOKUP_TIMEOUT_MS = 120_000;

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
  const url = flags.resolver as string;
  if (flags.hints !== undefined || flags.trustAnchor !== undefined) {
    throw usageError('ERR_USAGE', '--resolver cannot be combined with --hints or --trust-anchor');
  }
  if (transportGiven || flags.dnsPort !== undefined) {
    throw usageError('ERR_USAGE', '--transport and --dns-port go with --hints, not --resolver');
  }
  let base: URL;
  try {
    base = new URL(url);
  } catch {
    throw usageError('ERR_USAGE', `--resolver ${JSON.stringify(url)}: not a URL`);
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw usageError('ERR_USAGE', `--resolver ${JSON.stringify(url)}: expected an https URL`);
  }
  let ca: Buffer | undefined;
  if (flags.ca !== undefined) {
    try {
      ca = await readFile(resolve(env.cwd, flags.ca));
    } catch (error) {
      throw usageError('ERR_USAGE', `--ca ${flags.ca}: cannot read it`, error);
    }
  }
  const agent = new Agent({
    allowH2: true,
    headersTimeout: LOOKUP_TIMEOUT_MS,
    bodyTimeout: LOOKUP_TIMEOUT_MS,
    ...(ca === undefined ? {} : { connect: { ca } }),
  });
  const endpoint = new URL('v1/discover', base.href.endsWith('/') ? base.href : `${base.href}/`);
  try {
    if (inputs.length === 1) {
      const one = new URL(endpoint);
      one.searchParams.set('csi', inputs[0] as string);
      return [asResult(await call(agent, one, undefined), one)];
    }
    const json = await call(agent, endpoint, JSON.stringify({ csis: inputs }));
    const results =
      typeof json === 'object' && json !== null
        ? (json as Record<string, unknown>)['results']
        : undefined;
    if (!Array.isArray(results) || results.length !== inputs.length) {
      throw badResponse(endpoint, `did not answer ${inputs.length} results`);
    }
    return results.map((r) => asResult(r, endpoint));
  } finally {
    await agent.close();
  }
}

/** One request to the API: the JSON of a 200, or the API's error as the command's (exit 2). */
async function call(agent: Agent, url: URL, body: string | undefined): Promise<unknown> {
  let status: number;
  let text: string;
  try {
    const response = await request(url, {
      method: body === undefined ? 'GET' : 'POST',
      dispatcher: agent,
      headers: {
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body }),
    });
    status = response.statusCode;
    text = await response.body.text();
  } catch (error) {
    throw failure('ERR_CLI_RESOLVER_UNREACHABLE', `cannot reach ${url.origin}`, error);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw badResponse(url, `answered HTTP ${status} without JSON`);
  }
  if (status === 200) return json;
  const error =
    typeof json === 'object' && json !== null
      ? (json as Record<string, unknown>)['error']
      : undefined;
  if (typeof error === 'object' && error !== null) {
    const { code, message } = error as Record<string, unknown>;
    if (typeof code === 'string' && typeof message === 'string') throw failure(code, message);
  }
  throw badResponse(url, `answered HTTP ${status}`);
}

function badResponse(url: URL, what: string): Error {
  return failure('ERR_CLI_RESOLVER_RESPONSE', `${url.origin}${url.pathname} ${what}`);
}

const STATUSES: ReadonlySet<string> = new Set(['none', 'empty', 'found', 'error']);

/** A result of the API, checked enough to print it. */
function asResult(value: unknown, url: URL): DiscoveryResult {
  const r = value as Partial<DiscoveryResult> | null;
  if (
    typeof r !== 'object' ||
    r === null ||
    typeof r.csi !== 'string' ||
    typeof r.status !== 'string' ||
    !STATUSES.has(r.status) ||
    !Array.isArray(r.mappings) ||
    typeof r.ttl !== 'number'
  ) {
    throw badResponse(url, 'answered something other than a discovery result');
  }
  return r as DiscoveryResult;
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
