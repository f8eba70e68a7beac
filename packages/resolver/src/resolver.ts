import { randomInt } from 'node:crypto';
import {
  autoVerifyThreads,
  canonicalName,
  computeDs,
  createVerifyPool,
  csiToName,
  isContext,
  silentLogger,
  type Csi,
  type MspFilter,
  type ExtendedDnsError,
  type Logger,
  type ResourceRecord,
  type RRType,
  type VerifyPool,
} from '@mimi-discovery/common';
import { aggregate, errorResult } from './aggregate.js';
import { CACHED_ERROR_EDE, failureEde } from './ede.js';
import { createAuthkeyRefetchLimiter, type AuthkeyRefetchLimiter } from './authkey-refetch.js';
import { cacheSlot, ResolverCache, SingleFlight } from './cache.js';
import { CsiMemo } from './csi-memo.js';
import { EXPIRED, startDeadline } from './deadline.js';
import { FailureCache } from './failure-cache.js';
import { zoneFor, type Failure, type ZoneCut } from './iterator.js';
import {
  DEFAULT_BATCH_CONCURRENCY,
  DEFAULT_CACHE_BYTES,
  MAX_RESOLUTION_MS,
  PARSED_CSI_CACHE_OCTETS,
} from './limits.js';
import {
  askQuestion,
  askQuestionAgain,
  createQuestionStage,
  type QuestionCounters,
  type QuestionStage,
  type Resolved,
} from './questions.js';
import { openResult } from './open-sealed.js';
import { resultJsonText, resultText, type ResultText } from './result-json.js';
import { senderView } from './sender-view.js';
import type {
  DiscoverOptions,
  DiscoveryResult,
  DiscoveryResultsJson,
  ResolvedAnswer,
  Resolver,
  ResolverComponents,
  ResolverConfig,
  ResolverStats,
} from './types.js';
import {
  createUpstream,
  type NameServer,
  type Upstream,
  type UpstreamObserver,
} from './upstream.js';
import { disabledRootCopy, startRootCopy, type RootCopyKeeper } from './root-copy.js';
import { startAutoTrust, type AutoTrust, type DnskeyFetch } from './auto-trust.js';
import { rrsetOf } from './validator.js';
import type { SignatureMemo, VerifiedSignature } from './validator.js';

/**
 * The resolver: wires the stages together (design §6).
 *
 * ```
 * discover(input) ─ parseCsi (memo) ─┐
 * discoverCsi(csi) ──────────────────┴▶ discovery: cache (result + JSON) ─ single-flight
 *                                        ─ deadline ─ aggregate
 *                                                        │ MAP, MAPREF, AUTHKEY, targets
 * resolve(name, type) ───────────────────────────────┐   │
 *                                                    ▼   ▼
 *   question (askQuestion): cache (answer) ─ failure cache ─ single-flight ─ state + deadline
 *                                                                                │
 *                                              iterator ─ upstream, validator ◀──┘
 * ```
 *
 * Each stage is its own module: `questions.ts` is where a question is cached, single-flighted
 * and given its deadline (one `QuestionState` per question); `iterator.ts` walks from the
 * apex with QNAME minimisation and follows referrals; `validator.ts` holds the chain of trust;
 * `upstream.ts` talks to servers; `aggregate.ts` turns answers into a discovery result;
 * `deadline.ts` bounds a unit of work in time. A failed resolution is remembered
 * (`failure-cache.ts`, RFC 9520), with the zone it is about when it is the zone's, so asking
 * again costs no upstream query and no verification until it expires. When every server of a
 * zone fails, a stale cached answer is served, marked `stale` with a TTL of
 * `STALE_ANSWER_TTL_SECONDS` (RFC 8767). Parsed inputs are remembered (`csi-memo.ts`) and
 * a cached discovery result keeps its JSON text (`result-json.ts`), so that a warm contact sync
 * neither parses nor serializes again.
 *
 * A discovery is single-flighted and bounded in time at its own level, because it is another
 * unit of work than any of its questions: it plans them (MAP and MAPREF at the name and at every
 * MAPREF target, AUTHKEY of the range), verifies every mapping and its attestation (two Ed25519
 * verifications per MAP record), and writes the result with its JSON text to the cache. Its
 * questions are single-flighted as questions; its own single-flight spares concurrent callers of
 * one CSI the aggregation, which no question covers, and its deadline
 * ({@link MAX_RESOLUTION_MS}) bounds the plan as a whole, MAPREF levels included, where each
 * question's deadline bounds that question.
 *
 * Senders (`sender-view.ts`): a cached result is the view of the resolver's own MSP identity
 * (`msp`), the same for every request; a request's context is applied to it afterwards, so one
 * cached result serves every context. Without a context, a cached result's JSON text is written
 * as it is (the warm contact sync); with one, the view is derived and written. A caller's
 * audience keys open boxes after that (`open-sealed.ts`), in the caller's process.
 *
 * Time: the injected clock, in seconds since the epoch, for everything cached and every
 * validity period; monotonic time for deadlines and RTTs only (`deadline.ts`).
 */

/**
 * A cached discovery result with its JSON text around the TTL (`result-json.ts`). The result's
 * `ttl` is what every client gets while the entry lives (`client-ttl.ts`).
 */
interface CachedDiscovery {
  readonly result: DiscoveryResult;
  readonly text: ResultText;
}

/** A fresh result, and its JSON text when it went into the cache. */
interface Discovered {
  readonly result: DiscoveryResult;
  readonly text: ResultText | undefined;
}

/** Cached discovery results, by canonical CSI. */
const DISCOVERIES = cacheSlot<CachedDiscovery>('discovery');

/** Signatures verified (SOA, DNSKEY, DS), by owner, type and signature (`validator.ts`). */
const SIGNATURES = cacheSlot<VerifiedSignature>('signature');

/** Default plain-DNS port of servers other than the roots. */
const DEFAULT_DNS_PORT = 53;

/**
 * The local root copy of `config` (`root-copy.ts`): transferred from the root servers that list
 * a plain DNS port, each of their addresses in turn; off when disabled or when none lists one.
 */
function rootCopyOf(
  config: ResolverConfig,
  init: {
    apex: string;
    ds: ZoneCut['ds'];
    trustedDs: () => ZoneCut['ds'];
    transport: 'doh' | 'dns';
    dnsPort: number;
    now: () => number;
    log: Logger;
  },
): RootCopyKeeper {
  const settings = config.rootCopy === false ? { enabled: false } : (config.rootCopy ?? {});
  if (settings.enabled === false) return disabledRootCopy();
  const servers = config.rootServers.flatMap((root) =>
    root.port === undefined
      ? []
      : root.addresses.map((host) => ({ host, port: root.port as number })),
  );
  if (servers.length === 0) {
    init.log.info('root-copy-no-server', { reason: 'no root server lists a DNS port' });
    return disabledRootCopy();
  }
  return startRootCopy({
    ...init,
    servers,
    ...(settings.refreshSeconds === undefined ? {} : { refreshSeconds: settings.refreshSeconds }),
    ...(settings.maxRecords === undefined ? {} : { maxRecords: settings.maxRecords }),
    ...(settings.maxOctets === undefined ? {} : { maxOctets: settings.maxOctets }),
    ...(settings.transferTimeoutMs === undefined
      ? {}
      : { transferTimeoutMs: settings.transferTimeoutMs }),
  });
}

function rootServers(config: ResolverConfig): NameServer[] {
  const transport = config.transport ?? 'doh';
  return config.rootServers.flatMap((root): NameServer[] => {
    if (transport === 'doh') {
      // The hints' name is the one the root server's certificate is verified against.
      if (root.doh !== undefined)
        return [
          { name: root.name, endpoint: { kind: 'doh', url: root.doh, serverName: root.name } },
        ];
      return root.addresses.map((a) => ({
        name: root.name,
        endpoint: {
          kind: 'doh',
          url: `https://${a.includes(':') ? `[${a}]` : a}/dns-query`,
          serverName: root.name,
        },
      }));
    }
    return root.addresses.map((a) => ({
      name: root.name,
      endpoint: { kind: 'dns', host: a, port: root.port ?? DEFAULT_DNS_PORT },
    }));
  });
}

/** The records of a resolution with their TTLs lowered to what is left. */
function withTtl(records: readonly ResourceRecord[], ttl: number): ResourceRecord[] {
  return records.map((rr) => ({ ...rr, ttl: Math.min(rr.ttl, ttl) }));
}

/** What the resolver's entries work over. */
interface ResolverState {
  readonly apex: string;
  readonly cache: ResolverCache;
  readonly upstream: Upstream;
  readonly questions: QuestionStage;
  readonly counters: QuestionCounters;
  /** Parsed inputs (`csi-memo.ts`). */
  readonly parsed: CsiMemo;
  /** Discoveries in flight, by canonical CSI (see the module comment). */
  readonly discoveries: SingleFlight<Discovered>;
  /** Whole seconds since the epoch, on the injected clock. */
  readonly seconds: () => number;
  readonly batchConcurrency: number;
  readonly rootCopy: RootCopyKeeper;
  readonly autoTrust: AutoTrust;
  /** The bounds of AUTHKEY re-fetches (`authkey-refetch.ts`). */
  readonly authkeyRefetch: AuthkeyRefetchLimiter;
  /** Lookups of the discovery cache; `counters` has those of the answer cache. */
  readonly discoveryCounts: { hits: number; misses: number };
  /** The resolver's MSP identity as a filter (`ResolverConfig.msp`): every result's view. */
  readonly identity: MspFilter;
  /** Where signatures are verified (`ResolverConfig.verifyThreads`). */
  readonly verifyPool: VerifyPool;
}

/**
 * Creates a resolver for the namespace whose apex is the trust anchor's zone. The config is
 * taken as checked: `loadResolverConfig` and `readResolverFiles` parse the trust anchor and
 * check the root hints once, where they are read.
 */
export function createResolver(
  config: ResolverConfig,
  components: ResolverComponents = {},
): Resolver {
  const anchor = config.trustAnchor;
  const apex = canonicalName(anchor.zone);
  const clock = components.now ?? ((): number => Date.now() / 1000);
  const seconds = (): number => Math.floor(clock());
  const log = (components.log ?? silentLogger).child('core');
  const servers = rootServers(config);
  // Whoever watches the queries to servers (the metrics), added after the resolver is made.
  const upstreamObservers: UpstreamObserver[] = [];
  const cache = new ResolverCache(config.cacheBytes ?? DEFAULT_CACHE_BYTES, clock);
  const transport = config.transport ?? 'doh';
  const upstream = createUpstream(
    {
      transport,
      ...(config.ca === undefined ? {} : { ca: config.ca }),
      ...config.upstream,
      observe: (server, result) => {
        for (const observer of upstreamObservers) observer(server, result);
      },
    },
    log,
  );
  // RFC 5011: the apex's DS follows the trust point (`auto-trust.ts`), read at every use.
  const autoTrust = startAutoTrust({
    anchor,
    settings: config.autoTrustAnchor ?? {},
    now: clock,
    log: log.child('trust-anchor'),
    fetch: () => fetchApexKeys(upstream, servers, apex),
    // New trust: what failed or was kept under the old one is asked again.
    onChange: () => cache.clear(),
    ...(components.autoTrustSchedule === undefined
      ? {}
      : { schedule: components.autoTrustSchedule }),
  });
  const staticDs = [...anchor.ds, ...anchor.dnskeys.map((k) => computeDs(apex, k))];
  const root: ZoneCut = {
    zone: apex,
    servers,
    get ds() {
      const ds = autoTrust.ds();
      return ds.length === 0 ? staticDs : ds;
    },
  };

  const dnsPort = config.dnsPort ?? DEFAULT_DNS_PORT;
  const rootCopy = rootCopyOf(config, {
    apex,
    ds: root.ds,
    trustedDs: () => root.ds,
    transport,
    dnsPort,
    now: seconds,
    log: log.child('root-copy'),
  });
  // Started on first use: a resolver that never validates never starts a thread.
  const verifyPool =
    components.verifyPool ??
    createVerifyPool(
      {
        threads:
          config.verifyThreads === undefined || config.verifyThreads === 'auto'
            ? autoVerifyThreads()
            : config.verifyThreads,
      },
      { log: log.child('verify') },
    );
  const memo: SignatureMemo = {
    get: (id) => cache.get(SIGNATURES, id)?.value,
    set: (id, value, ttl) => cache.set(SIGNATURES, id, value, ttl),
  };
  const counters: QuestionCounters = {
    cacheHits: 0,
    cacheMisses: 0,
    failureCacheHits: 0,
    signatureVerifications: 0,
    validationFailures: {},
  };
  const state: ResolverState = {
    apex,
    cache,
    upstream,
    questions: createQuestionStage({
      apex,
      root,
      transport,
      dnsPort,
      upstream,
      cache,
      now: seconds,
      log,
      memo,
      failures: new FailureCache(cache, apex, clock),
      counters,
      rootCopy: () => rootCopy.current(),
      verifier: verifyPool,
    }),
    counters,
    parsed: new CsiMemo(PARSED_CSI_CACHE_OCTETS),
    discoveries: new SingleFlight<Discovered>(),
    seconds,
    batchConcurrency: Math.max(1, config.batchConcurrency ?? DEFAULT_BATCH_CONCURRENCY),
    rootCopy,
    autoTrust,
    discoveryCounts: { hits: 0, misses: 0 },
    authkeyRefetch: createAuthkeyRefetchLimiter(config.authkeyRefetch ?? {}),
    identity: config.msp === undefined ? {} : { msp: config.msp },
    verifyPool,
  };

  return {
    discover: async (input, options) =>
      (await discoverFor(state, [csiOf(state, input)], options))[0] as DiscoveryResult,
    discoverCsi: async (csi, options) =>
      (await discoverFor(state, [csi], options))[0] as DiscoveryResult,
    discoverMany: (inputs, options) =>
      discoverFor(
        state,
        inputs.map((input) => csiOf(state, input)),
        options,
      ),
    discoverManyJson: async (inputs, options) => {
      const filter = filterOf(state, options);
      const json: string[] = new Array<string>(inputs.length);
      const items = inputs.map((input) => csiOf(state, input));
      const results = await discoverItems(state, items, filter, json);
      return { results, json } satisfies DiscoveryResultsJson;
    },
    resolve: (name, type) => resolveAnswer(state, name, type),
    stats: () => stats(state),
    flushCache: () => flushCache(state),
    flushName: (name) => state.cache.deleteOwner(canonicalName(name)),
    flushCsi: (csi) => {
      const had = state.cache.getStale(DISCOVERIES, csi) !== undefined;
      state.cache.delete(DISCOVERIES, csi);
      return (had ? 1 : 0) + state.cache.deleteOwner(canonicalName(csiToName(csi, state.apex)));
    },
    refreshRootCopy: () => rootCopy.refresh(),
    probeTrustAnchor: () => autoTrust.probe(),
    observeUpstream: (observer) => {
      upstreamObservers.push(observer);
    },
    trustAnchorKeys: () => autoTrust.keys(),
    close: async () => {
      autoTrust.close();
      rootCopy.close();
      if (components.verifyPool === undefined) await verifyPool.close();
      return upstream.close();
    },
  };
}

/** One validated question as the DNS front ends answer it. */
async function resolveAnswer(
  state: ResolverState,
  name: string,
  type: RRType,
): Promise<ResolvedAnswer> {
  const r: Resolved = await askQuestion(state.questions, name, type);
  const stale = r.stale === true ? { stale: true } : {};
  const usable = r.usable === undefined ? {} : { usable: r.usable };
  switch (r.kind) {
    case 'answer':
      return {
        rcode: 'NOERROR',
        status: 'secure',
        answers: withTtl([...r.rrset, ...r.rrsigs], r.ttl),
        authorities: [],
        ...stale,
        ...usable,
      };
    case 'nodata':
    case 'nxdomain':
      return {
        rcode: r.kind === 'nxdomain' ? 'NXDOMAIN' : 'NOERROR',
        status: 'secure',
        answers: [],
        authorities: withTtl(r.records, r.ttl),
        ...stale,
        ...usable,
      };
    case 'bogus':
      return {
        rcode: 'SERVFAIL',
        status: 'bogus',
        answers: [],
        authorities: [],
        ede: failureEdes(r),
      };
    case 'error':
      return {
        rcode: r.reason === 'refused' ? 'REFUSED' : 'SERVFAIL',
        status: 'indeterminate',
        answers: [],
        authorities: [],
        ede: failureEdes(r),
      };
  }
}

/** The Extended DNS Errors of a failed resolution (`ede.ts`). */
function failureEdes(r: Resolved & Failure): ExtendedDnsError[] {
  return r.cached === true ? [failureEde(r), CACHED_ERROR_EDE] : [failureEde(r)];
}

/** One input of a batch: the CSI to discover, or the result of an input that is not a CSI. */
type Item = Csi | DiscoveryResult;

/** The CSI of `input`, or the result for input that is not a CSI. */
function csiOf(state: ResolverState, input: string): Item {
  const value = state.parsed.parse(input);
  return typeof value === 'string'
    ? value
    : errorResult(input, 'invalid-csi', `${value.code}: ${value.message}`);
}

/**
 * The filter of a request: the resolver's identity, and the context of `options` when given.
 * Throws a `TypeError` for a context that is not one (`isContext`): the JSON API refuses it
 * before, with a 400.
 */
function filterOf(state: ResolverState, options: DiscoverOptions | undefined): MspFilter {
  const context = options?.context;
  if (context === undefined) return state.identity;
  if (!isContext(context)) {
    throw new TypeError(
      `${JSON.stringify(context)} is no context: personal, business or ctx:<name>`,
    );
  }
  return { ...state.identity, context };
}

/** {@link discoverItems} for a caller's `options`, boxes opened with its audience keys. */
async function discoverFor(
  state: ResolverState,
  items: readonly Item[],
  options: DiscoverOptions | undefined,
): Promise<DiscoveryResult[]> {
  const filter = filterOf(state, options);
  const results = await discoverItems(state, items, filter);
  const keys = options?.audienceKeys;
  if (keys === undefined || keys.length === 0) return results;
  return Promise.all(results.map((result) => openResult(result, keys, filter)));
}

/**
 * Discovers `items` (and writes their JSON into `json`, when given), results in order, each as
 * the sender of `filter` sees it: cache hits at once, in one pass without waiting; the rest by
 * {@link ResolverConfig.batchConcurrency} workers. A cached result carries its JSON text, so a
 * warm batch without a context is mostly concatenation; with a context, each result's view is
 * derived and written.
 */
async function discoverItems(
  state: ResolverState,
  items: readonly Item[],
  filter: MspFilter,
  json?: string[],
): Promise<DiscoveryResult[]> {
  // Cached and fresh results are the identity's view already (`aggregate`): only a context
  // changes them.
  const view =
    filter.context === undefined
      ? undefined
      : (result: DiscoveryResult): DiscoveryResult => senderView(result, filter);
  const results: DiscoveryResult[] = new Array<DiscoveryResult>(items.length);
  const misses: Array<{ index: number; csi: Csi }> = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as Item;
    if (typeof item !== 'string') {
      results[i] = item;
      if (json !== undefined) json[i] = resultJsonText(item);
      continue;
    }
    const hit = state.cache.get(DISCOVERIES, item);
    if (hit === undefined) {
      misses.push({ index: i, csi: item });
      continue;
    }
    state.discoveryCounts.hits++;
    // The TTL as first given, not counted down (`client-ttl.ts`): the entry lives only while
    // that TTL keeps every client within the data's own lifetime.
    const result = hit.value.result;
    if (view === undefined) {
      results[i] = result;
      if (json !== undefined) json[i] = resultJsonText(result, hit.value.text);
    } else {
      const seen = view(result);
      results[i] = seen;
      if (json !== undefined) json[i] = resultJsonText(seen);
    }
  }
  // The upstream questions of a batch go out in an order of their own (Fisher–Yates with
  // `crypto.randomInt`), so that a DP does not receive a contact book in the order the client
  // holds it; results stay in input order.
  shuffle(misses);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < misses.length) {
      const { index, csi } = misses[next++] as { index: number; csi: Csi };
      const { result, text } = await discoverUncached(state, csi);
      if (view === undefined) {
        results[index] = result;
        if (json !== undefined) json[index] = resultJsonText(result, text);
      } else {
        const seen = view(result);
        results[index] = seen;
        if (json !== undefined) json[index] = resultJsonText(seen);
      }
    }
  };
  const workers = Math.min(state.batchConcurrency, misses.length);
  await Promise.all(Array.from({ length: workers }, worker));
  return results;
}

/** Puts `items` in a uniformly random order, in place (Fisher–Yates, `crypto.randomInt`). */
function shuffle<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    const item = items[i] as T;
    items[i] = items[j] as T;
    items[j] = item;
  }
}

/**
 * How long a discovery result may be cached: while every answer it was made from may still be
 * given to clients with its TTL (`usable`, `client-ttl.ts`), and while the result's own TTL,
 * given again, still ends before the earliest `exp` of its mappings.
 */
function discoveryLifetime(result: DiscoveryResult, usable: number, now: number): number {
  const expiry = Math.min(...result.mappings.map((m) => m.exp));
  // No answer said how long it may be given (none was asked): nothing to keep.
  return Number.isFinite(usable) ? Math.min(usable, expiry - now - result.ttl) : 0;
}

/**
 * Discovers a CSI the cache does not hold, once for every concurrent caller, within the
 * discovery's deadline, and caches it with its JSON text (not an error, nor a stale result).
 */
function discoverUncached(state: ResolverState, csi: Csi): Promise<Discovered> {
  state.discoveryCounts.misses++;
  return state.discoveries.run(csi, async () => {
    const deadline = startDeadline(MAX_RESOLUTION_MS);
    const timedOut = `no result within ${deadline.ms} ms`;
    // The least time any answer of this discovery may still be given to clients.
    let usable = Number.POSITIVE_INFINITY;
    // Read beside the answer, not in front of it: the plan sees each answer in the same turn
    // as without this.
    const ask = (name: string, type: RRType): Promise<Resolved> => {
      const pending = askQuestion(state.questions, name, type);
      pending.then(
        (resolved) => {
          if (resolved.usable !== undefined) usable = Math.min(usable, resolved.usable);
          if (type === 'AUTHKEY' && resolved.kind === 'answer' && resolved.fromCache !== true) {
            state.authkeyRefetch.fetched(name, state.seconds());
          }
        },
        () => undefined,
      );
      return pending;
    };
    try {
      const aggregated = await deadline.within(
        aggregate(csi, {
          apex: state.apex,
          // Past the deadline the caller has its answer: the plan asks nothing more.
          resolve: (name, type) =>
            deadline.expired()
              ? Promise.resolve<Failure>({ kind: 'error', reason: 'timeout', detail: timedOut })
              : ask(name, type),
          zoneFor: async (name) => zoneFor(state.questions.iterator, name),
          now: state.seconds,
          verifyBatch: (checks) => state.verifyPool.verifyBatch(checks),
          refetchAuthkey: (zone) =>
            state.authkeyRefetch.allow(zone, state.seconds())
              ? askQuestionAgain(state.questions, zone, 'AUTHKEY')
              : undefined,
          ...state.identity,
          onInvalidMapping: (reason) => {
            const failures = state.counters.validationFailures;
            failures[reason] = (failures[reason] ?? 0) + 1;
          },
        }),
      );
      const result = aggregated === EXPIRED ? errorResult(csi, 'timeout', timedOut) : aggregated;
      if (result.status === 'error' || result.stale === true) return { result, text: undefined };
      const entry: CachedDiscovery = { result, text: resultText(result) };
      state.cache.set(DISCOVERIES, csi, entry, discoveryLifetime(result, usable, state.seconds()));
      return entry;
    } finally {
      deadline.release();
    }
  });
}

function stats(state: ResolverState): ResolverStats {
  const { counters, discoveryCounts } = state;
  return {
    cacheHits: counters.cacheHits + discoveryCounts.hits,
    cacheMisses: counters.cacheMisses + discoveryCounts.misses,
    cacheHitsBy: { answer: counters.cacheHits, discovery: discoveryCounts.hits },
    cacheMissesBy: { answer: counters.cacheMisses, discovery: discoveryCounts.misses },
    signatureVerifications: counters.signatureVerifications,
    failureCacheHits: counters.failureCacheHits,
    upstreamQueries: state.upstream.sent(),
    validationFailures: { ...counters.validationFailures },
    cacheBytes: state.cache.bytes,
    rootCopy: state.rootCopy.status(),
    trustAnchorKeys: state.autoTrust.counts(),
    authkeyRefetches: {
      allowed: state.authkeyRefetch.allowed(),
      refused: state.authkeyRefetch.refused(),
    },
  };
}

/** The apex's DNSKEY RRset with its RRSIGs from the root servers, for the trust point's probes. */
async function fetchApexKeys(
  upstream: Upstream,
  servers: readonly NameServer[],
  apex: string,
): Promise<DnskeyFetch> {
  const outcome = await upstream.query(servers, apex, 'DNSKEY');
  if (outcome.kind === 'failed') return { kind: 'failed', detail: outcome.detail };
  const answers = outcome.message.answers;
  return {
    kind: 'response',
    answers: [...rrsetOf(answers, apex, 'DNSKEY'), ...rrsetOf(answers, apex, 'RRSIG')],
    server: outcome.server,
  };
}

/**
 * Unbound's `flush_zone .`, `flush_bogus` and `flush_infra all` together: every cached answer,
 * zone cut, key, signature, discovery result, failure and stale copy, every parsed input, and
 * every server's RTT. Questions in flight finish and may cache what they bring.
 */
function flushCache(state: ResolverState): void {
  state.cache.clear();
  state.parsed.clear();
  state.upstream.forgetRtts();
}
