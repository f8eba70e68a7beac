import {
  buildQuery,
  canonicalName,
  createDohClient,
  dsMatchesDnskey,
  queryUdp,
  TransportError,
  verifyRRset,
  type DnskeyData,
  type Message,
  type RecordOf,
  type ResourceRecord,
} from '@mimi-discovery/common';
import { STARTUP_CHECK_RETRY_DELAY_MS, type ResolverServerConfig } from '@mimi-discovery/resolver';
import { failure } from './errors.js';

/**
 * The start-up check of `resolver serve` (config `startupCheck`): a resolver that cannot reach
 * its root over the configured transport and CA, or whose trust anchor does not match the
 * root's keys, could only answer SERVFAIL; it refuses to start instead, with one line saying
 * why. Every root server of the hints is asked, together, for the apex DNSKEY RRset with DO
 * (over DoH with the hints' name as SNI, as the resolver asks; over plain DNS at its address and
 * port); the check passes as soon as one answers with a DNSKEY RRset that a key matching the
 * trust anchor signs (RFC 4035 §5: the first step of every validation the resolver will make).
 * Bounded: `attempts` rounds, each of at most `timeoutMs`, {@link STARTUP_CHECK_RETRY_DELAY_MS}
 * apart.
 *
 * Example of the line: `no root server answered DNSKEY mimi.arpa over doh after 3 attempts:
 * ns1.mimi.arpa https://127.0.0.1:8443/dns-query: certificate of ns1.mimi.arpa at
 * 127.0.0.1:8443 refused: … (ERR_CLI_RESOLVER_STARTUP)`.
 */

/** Where the check asks one root server. */
interface RootTarget {
  readonly label: string;
  ask(query: Message, timeoutMs: number): Promise<Message>;
}

/** Runs the check of `config.startupCheck`; throws `ERR_CLI_RESOLVER_STARTUP` when it fails. */
export async function checkResolverStartup(
  config: ResolverServerConfig,
  options: { now?: () => number; signal?: AbortSignal } = {},
): Promise<void> {
  const check = config.startupCheck;
  if (!check.enabled) return;
  const apex = canonicalName(config.apex);
  const transport = config.transport;
  const doh =
    transport === 'doh'
      ? createDohClient({
          ...(config.ca === undefined ? {} : { ca: config.ca }),
          acceptAddressCertificates: config.upstream?.acceptAddressCertificates ?? true,
        })
      : undefined;
  const targets: RootTarget[] = config.rootServers.flatMap((root): RootTarget[] => {
    if (doh !== undefined) {
      const urls =
        root.doh !== undefined
          ? [root.doh]
          : root.addresses.map((a) => `https://${a.includes(':') ? `[${a}]` : a}/dns-query`);
      return urls.map((url) => ({
        label: `${root.name} ${url}`,
        ask: (query, timeoutMs) => doh.query(url, query, { timeoutMs, serverName: root.name }),
      }));
    }
    const port = root.port ?? 53;
    return root.addresses.map((host) => ({
      label: `${root.name} ${host.includes(':') ? `[${host}]` : host}:${port}`,
      ask: (query, timeoutMs) => queryUdp({ host, port }, query, { timeoutMs }),
    }));
  });
  const now = options.now ?? (() => Date.now() / 1000);
  let reasons = ['no root server in the hints for this transport'];
  try {
    for (let attempt = 1; attempt <= check.attempts && targets.length > 0; attempt++) {
      const outcomes = await Promise.all(
        targets.map(async (target) => {
          const why = await askRoot(target, apex, config, check.timeoutMs, now);
          return why === undefined ? undefined : `${target.label}: ${why}`;
        }),
      );
      // One root server that answers is enough: the resolver tries the others after it.
      if (outcomes.some((why) => why === undefined)) return;
      reasons = outcomes.filter((why): why is string => why !== undefined);
      if (options.signal?.aborted === true) break;
      if (attempt < check.attempts) {
        await new Promise((resolve) => setTimeout(resolve, STARTUP_CHECK_RETRY_DELAY_MS));
      }
    }
  } finally {
    await doh?.close();
  }
  throw failure(
    'ERR_CLI_RESOLVER_STARTUP',
    `no root server answered DNSKEY ${apex} over ${transport} after ${check.attempts} attempt${check.attempts === 1 ? '' : 's'}: ${reasons.join('; ')}`,
  );
}

/** Asks one root server; undefined when it answered as the check wants, else why not. */
async function askRoot(
  target: RootTarget,
  apex: string,
  config: ResolverServerConfig,
  timeoutMs: number,
  now: () => number,
): Promise<string | undefined> {
  let response: Message;
  try {
    response = await target.ask(buildQuery(apex, 'DNSKEY', { dnssecOk: true }), timeoutMs);
  } catch (error) {
    if (error instanceof TransportError) return error.message;
    throw error;
  }
  if (response.rcode !== 'NOERROR') return `answered ${response.rcode}`;
  const atApex = (rr: ResourceRecord): boolean => canonicalName(rr.name) === apex;
  const keys = response.answers.filter(
    (rr): rr is RecordOf<'DNSKEY'> => rr.type === 'DNSKEY' && atApex(rr),
  );
  if (keys.length === 0) return 'answered no DNSKEY';
  const anchor = config.trustAnchor;
  const trusted: DnskeyData[] = keys
    .map((rr) => rr.data)
    .filter(
      (key) =>
        anchor.ds.some((ds) => dsMatchesDnskey(apex, ds, key)) ||
        anchor.dnskeys.some((k) => Buffer.from(k.publicKey).equals(Buffer.from(key.publicKey))),
    );
  if (trusted.length === 0) return 'no DNSKEY matches the trust anchor';
  const rrsigs = response.answers.filter(
    (rr): rr is RecordOf<'RRSIG'> =>
      rr.type === 'RRSIG' && atApex(rr) && rr.data.typeCovered === 'DNSKEY',
  );
  const failures = rrsigs.map((rrsig) => verifyRRset(keys, rrsig, trusted, now()));
  if (failures.some((v) => v.kind === 'verified')) return undefined;
  const first = failures.find((v) => v.kind === 'failed');
  return `the DNSKEY RRset does not verify with the trust anchor's key (${first?.kind === 'failed' ? first.reason : 'no RRSIG'})`;
}
