import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  CsiError,
  parseCsi,
  silentLogger,
  type AudienceKey,
  type RankedMsp,
} from '@mimi-discovery/common';
import {
  DEFAULT_CSIS_PER_TOKEN,
  DiscoveryClientError,
  createDiscoveryClient,
  createResolver,
  readResolverFiles,
  resultJson,
  type DiscoverOptions,
  type DiscoveryResult,
  type VerifiedMapping,
} from '@mimi-discovery/resolver';
import { Option, type Command } from 'commander';
import { apiFailure, apiUrl, readCaFile } from '../api-flags.js';
import { readAudienceKeyFile } from '../audience-key-file.js';
import type { CommandEnv } from '../context.js';
import { failure, usageError } from '../errors.js';
import { collect, remotePort, senderContext, text } from '../flag-values.js';

/**
 * `lookup`: discovers CSIs (design §6) and prints the verified result of each — through a
 * running resolver's JSON API (`--resolver URL`), through an oblivious relay to a resolver's
 * gateway (`--relay URL`, design §7 R6: the relay sees the sender, the resolver the CSIs), or
 * by resolving in-process from the root hints and the trust anchor (`--hints FILE
 * --trust-anchor FILE`), as a resolver would.
 *
 * Through a relay, `--credential FILE` holds the bearer credential for the issuer of tokens
 * (RFC 9577/9578), and `--key-name NAME` with `--hints` and `--trust-anchor` checks, with a
 * resolver run in-process, that the gateway's key configuration is the KEYCONF published at
 * NAME (key consistency); `--ca` is the CA of the relay and the issuer.
 *
 * `--context NAME` asks for the MSPs the recipient listed for senders in that context
 * (`business`, `personal`, `ctx:<name>`; docs/protocol.md §4.2), and `--audience-key FILE`
 * (repeatable) opens, here, the sealed boxes of that audience key (CUJ 5–7): the key is read
 * locally and never sent, not to the resolver, not to the relay. The text lists the MSPs in the
 * recipient's order, the first being the one to use, and says how many boxes stayed sealed.
 *
 * With `--json` it prints what the JSON API returns: the `DiscoveryResult` object for one CSI,
 * `{"results": [...]}` for several. Exit 0 when every result is `none`, `empty` or `found`;
 * 2 when any is `error` (the results are printed first, then one error line); 1 for a command
 * line that does not parse, a CSI that is not one, or unusable hints or anchor.
 */

interface LookupFlags {
  resolver?: string;
  relay?: string;
  credential?: string;
  keyName?: string;
  ca?: string;
  hints?: string;
  trustAnchor?: string;
  transport: 'doh' | 'dns';
  dnsPort?: number;
  context?: string;
  audienceKey: string[];
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
    .option(
      '--relay <url>',
      "through an oblivious relay: its resource for the resolver's gateway (https://host:port/ohttp/NAME)",
    )
    .option('--credential <file>', "with --relay: the issuer's bearer credential for tokens")
    .option(
      '--key-name <name>',
      "with --relay, --hints and --trust-anchor: check the gateway's key against its KEYCONF at NAME",
    )
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
    .option(
      '--context <name>',
      'only the MSPs the recipient listed for this context: personal, business or ctx:NAME',
      senderContext,
    )
    .option(
      '--audience-key <file>',
      'an audience key file the recipient gave you: opens its sealed MSPs here, never sent; repeatable',
      collect(text),
      [],
    )
    .option('--json', 'print the results as the JSON API returns them')
    .addHelpText(
      'after',
      `
The MSPs are listed in the recipient's order: use the first. "found" with no MSP listed means
reachable, but not for this sender (another context, another MSP, or sealed to others).

Exit codes: 0 every result is none, empty or found; 2 any result is error; 1 usage.

Examples:
  $ mimi-discovery lookup "+44 20 7946 0018" --resolver https://127.0.0.1:8453 --ca ./net/ca/ca.pem
  $ mimi-discovery lookup +442079460018 --resolver https://127.0.0.1:8453 --ca ./net/ca/ca.pem \\
      --context business --audience-key ./alice-work.audience
  $ mimi-discovery lookup +442079460018 alice@example.com --hints ./net/root-hints.json \\
      --trust-anchor ./net/root.key --ca ./net/ca/ca.pem --json
  $ mimi-discovery lookup +442079460018 --relay https://127.0.0.1:15329/ohttp/resolver \\
      --credential ./alice.credential --key-name resolver.chat.example.email.mimi.arpa \\
      --hints ./net/root-hints.json --trust-anchor ./net/root.key --ca ./net/ca/ca.pem`,
    )
    .action(async (inputs: string[], flags: LookupFlags, command: Command) => {
      for (const input of inputs) checkCsi(input);
      const transportGiven = command.getOptionValueSource('transport') !== 'default';
      const options = await discoverOptions(flags, env);
      if (flags.relay === undefined) {
        if (flags.credential !== undefined || flags.keyName !== undefined) {
          throw usageError('ERR_USAGE', '--credential and --key-name go with --relay');
        }
      }
      const { results, incomplete } =
        flags.relay !== undefined
          ? await throughRelay(inputs, flags, options, transportGiven, env)
          : {
              results:
                flags.resolver !== undefined
                  ? await throughApi(inputs, flags, options, transportGiven, env)
                  : await directly(inputs, flags, options, env),
              incomplete: undefined,
            };
      printResults(results, flags, env);
      // Results were printed, those not obtained among them as errors; then the reason.
      if (incomplete !== undefined) throw incomplete;
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

/** The results as text, or with `--json` as the JSON API writes them. */
function printResults(results: DiscoveryResult[], flags: LookupFlags, env: CommandEnv): void {
  if (flags.json === true) {
    // The JSON API's own serializer: what the API writes, field for field.
    const json =
      results.length === 1
        ? resultJson(results[0] as DiscoveryResult)
        : { results: results.map(resultJson) };
    env.out(`${JSON.stringify(json, null, 2)}\n`);
  } else env.out(results.map(formatResult).join('\n'));
}

/** The context and the audience keys of the command line, read before anything is asked. */
async function discoverOptions(flags: LookupFlags, env: CommandEnv): Promise<DiscoverOptions> {
  const audienceKeys: AudienceKey[] = [];
  for (const given of flags.audienceKey) {
    audienceKeys.push(await readAudienceKeyFile('--audience-key', given, resolve(env.cwd, given)));
  }
  return {
    ...(flags.context === undefined ? {} : { context: flags.context }),
    ...(audienceKeys.length === 0 ? {} : { audienceKeys }),
  };
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
  options: DiscoverOptions,
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
    return await resolver.discoverMany(inputs, options);
  } finally {
    await resolver.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Through a resolver's JSON API

async function throughApi(
  inputs: string[],
  flags: LookupFlags,
  options: DiscoverOptions,
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
    // One CSI is one GET, sent as typed; several are one POST per batch of the API's bound.
    return inputs.length === 1
      ? [await api.discover(inputs[0] as string, options)]
      : await api.discoverMany(inputs, options);
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
// Through an oblivious relay

async function throughRelay(
  inputs: string[],
  flags: LookupFlags,
  options: DiscoverOptions,
  transportGiven: boolean,
  env: CommandEnv,
): Promise<{ results: DiscoveryResult[]; incomplete: unknown }> {
  if (flags.resolver !== undefined) {
    throw usageError('ERR_USAGE', '--relay cannot be combined with --resolver');
  }
  if (flags.ca === undefined) {
    throw usageError('ERR_USAGE', '--relay needs --ca FILE, the CA of the relay and the issuer');
  }
  const checking = flags.keyName !== undefined;
  if (checking !== (flags.hints !== undefined) || checking !== (flags.trustAnchor !== undefined)) {
    throw usageError(
      'ERR_USAGE',
      'with --relay, --key-name NAME, --hints FILE and --trust-anchor FILE go together',
    );
  }
  if (!checking && (transportGiven || flags.dnsPort !== undefined)) {
    throw usageError('ERR_USAGE', '--transport and --dns-port go with --hints');
  }
  if (flags.dnsPort !== undefined && flags.transport !== 'dns') {
    throw usageError('ERR_USAGE', '--dns-port goes with --transport dns');
  }
  const url = apiUrl('--relay', flags.relay as string);
  if (url.protocol !== 'https:') {
    throw usageError('ERR_USAGE', `--relay ${JSON.stringify(flags.relay)}: expected an https URL`);
  }
  const ca = await readCaFile('--ca', flags.ca, resolve(env.cwd, flags.ca));
  const credential =
    flags.credential === undefined
      ? undefined
      : await readCredential(flags.credential, resolve(env.cwd, flags.credential));
  // The key check resolves the gateway's KEYCONF from the root, as `lookup --hints` resolves.
  const local = checking
    ? createResolver(
        {
          ...(await readResolverFiles({
            rootHints: resolve(env.cwd, flags.hints as string),
            trustAnchor: resolve(env.cwd, flags.trustAnchor as string),
            transport: flags.transport,
            ca: resolve(env.cwd, flags.ca),
          })),
          ...(flags.dnsPort === undefined ? {} : { dnsPort: flags.dnsPort }),
        },
        { log: env.log ?? silentLogger, now: env.now },
      )
    : undefined;
  const client = createDiscoveryClient({
    relay: {
      relay: url.href,
      ca,
      ...(credential === undefined ? {} : { credential }),
      // This process keeps no tokens after it: fetch only what the lookups spend (one token per
      // `DEFAULT_CSIS_PER_TOKEN` CSIs), so a lookup costs the user's quota no more than that.
      tokensPerFetch: Math.max(1, Math.ceil(inputs.length / DEFAULT_CSIS_PER_TOKEN)),
      ...(local === undefined
        ? {}
        : { keyCheck: { resolver: local, keyName: flags.keyName as string } }),
      now: env.now,
    },
  });
  try {
    return {
      results:
        inputs.length === 1
          ? [await client.discover(inputs[0] as string, options)]
          : await client.discoverMany(inputs, options),
      incomplete: undefined,
    };
  } catch (error) {
    const reported = apiFailure(error, url, {
      unreachable: 'ERR_CLI_RESOLVER_UNREACHABLE',
      response: 'ERR_CLI_RESOLVER_RESPONSE',
    });
    // Out of tokens: the results obtained are printed, the others as errors.
    if (error instanceof DiscoveryClientError && error.results !== undefined) {
      return { results: error.results, incomplete: reported };
    }
    throw reported;
  } finally {
    await client.close();
    await local?.close();
  }
}

/** The credential in `file`, without its line ending; a usage error when it cannot be read. */
async function readCredential(given: string, file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw usageError('ERR_USAGE', `--credential ${given}: cannot read it`, error);
  }
  const credential = text.replace(/\r?\n$/, '');
  if (credential === '' || /[\r\n]/.test(credential)) {
    throw usageError(
      'ERR_USAGE',
      `--credential ${given}: expected one line holding the credential`,
    );
  }
  return credential;
}

// ---------------------------------------------------------------------------------------------
// Human output

/**
 * One result as text: the MSPs a sender may use, in the recipient's order (`msps`, ranked by
 * `rankMsps`: use the first), each with its contexts, its URI and where it came from (the zone
 * that served a public entry, or the audience key id of the box it was sealed in); the boxes
 * left sealed; then each verified mapping. An entry without a context tag, which is for every
 * context, is shown with the word `any` in place of its contexts.
 *
 * ```
 * tel:+442079460018  found  ttl 300s
 *   1. wire.example  contexts: business  tags: business, pref:1  from: sealed q2C1f0n2Xk8
 *   2. chat.example  contexts: personal  tags: personal  uri: im:alice@chat.example  from: zone 4.4.e164.mimi.arpa
 *   1 sealed box not opened: no audience key for it
 *   verified: recipient key a2V5… seq 7, expires 2026-02-01T00:00:00Z, attested by prover cHJv…
 *     from: zone 4.4.e164.mimi.arpa, server https://127.0.0.1:8444/dns-query
 *     sealed boxes: q2C1f0n2Xk8 (opened), 7Hc0bV-zzXw
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
    case 'found': {
      if (result.msps.length === 0) {
        // Design §6 / docs/protocol.md §4.2: filters never change the status.
        lines.push(
          '  no MSP for this sender: the recipient listed its MSPs for other contexts, other MSPs, or sealed them',
        );
      }
      result.msps.forEach((msp, i) => lines.push(`  ${i + 1}. ${rankedLine(msp)}`));
      // Boxes left sealed: most for want of a key; `unopened` of them despite a key of their id.
      const left = result.mappings.reduce((n, m) => n + (m.sealed?.length ?? 0), 0);
      const failed = Math.min(result.unopened ?? 0, left);
      const noKey = left - failed;
      if (noKey > 0) {
        lines.push(
          `  ${boxes(noKey)} not opened: no audience key for ${noKey === 1 ? 'it' : 'them'}`,
        );
      }
      if (failed > 0) {
        lines.push(
          `  ${boxes(failed)} not opened: the audience key of ${failed === 1 ? 'its' : 'their'} key id did not open ${failed === 1 ? 'it' : 'them'}`,
        );
      }
      for (const m of result.mappings) lines.push(...provenance(m));
      break;
    }
    case 'error':
      lines.push(
        `  error: ${result.error?.reason ?? 'unknown'}: ${result.error?.detail ?? ''}`.trimEnd(),
      );
      break;
  }
  return `${lines.join('\n')}\n`;
}

/** One ranked MSP: provider, contexts, tags, URI, and where it came from. */
function rankedLine(msp: RankedMsp): string {
  const contexts = msp.contexts.length > 0 ? msp.contexts.join(', ') : 'any';
  const tags = msp.tags.length > 0 ? `  tags: ${msp.tags.join(', ')}` : '';
  const uri = msp.uri === undefined ? '' : `  uri: ${msp.uri}`;
  const from = msp.audience === undefined ? `zone ${msp.zone}` : `sealed ${msp.audience}`;
  return `${msp.provider}  contexts: ${contexts}${tags}${uri}  from: ${from}`;
}

function boxes(n: number): string {
  return `${n} sealed box${n === 1 ? '' : 'es'}`;
}

function provenance(m: VerifiedMapping): string[] {
  const expires = new Date(m.exp * 1000).toISOString().replace('.000Z', 'Z');
  const lines = [
    `  verified: recipient key ${m.key} seq ${m.seq}${m.new ? ' (new)' : ''}, expires ${expires}, attested by prover ${m.prover}`,
    `    from: zone ${m.zone}, server ${m.server}`,
  ];
  // An opened box moves from `sealed` to `opened` (open-sealed.ts of the resolver).
  const kids = [
    ...(m.opened ?? []).map((o) => `${o.audience} (opened)`),
    ...(m.sealed ?? []).map((box) => box.kid),
  ];
  if (kids.length > 0) lines.push(`    sealed boxes: ${kids.join(', ')}`);
  return lines;
}
