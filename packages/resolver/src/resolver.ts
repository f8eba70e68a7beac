import {
  canonicalName,
  computeDs,
  silentLogger,
  type Csi,
  type ResourceRecord,
  type RRType,
} from '@mimi-discovery/common';
import { aggregate, errorResult, type Resolved } from './aggregate.js';
import { cacheSlot, ResolverCache, SingleFlight } from './cache.js';
import { CsiMemo } from './csi-memo.js';
import { FailureCache } from './failure-cache.js';
import { createIterator, type Delegation, type Failure, type Resolution } from './iterator.js';
import {
  DEFAULT_BATCH_CONCURRENCY,
  DEFAULT_CACHE_BYTES,
  MAX_RESOLUTION_MS,
  PARSED_CSI_CACHE_OCTETS,
  STALE_ANSWER_TTL_SECONDS,
} from './limits.js';
import { resultJsonText, resultText, type ResultText } from './result-json.js';
import type {
  DiscoveryResult,
  DiscoveryResultsJson,
  ResolvedAnswer,
  Resolver,
  ResolverComponents,
  ResolverConfig,
  ResolverStats,
} from './types.js';
import { createUpstream, type NameServer } from './upstream.js';
import { createBudget, type SignatureMemo, type VerifiedSignature } from './validator.js';

/**
 * The resolver: wires the stages together (design §6).
 *
 * ```
 * discover(input) ─ parseCsi ─ cache(discovery) ─ single-flight ─ aggregate ─┐
 *                  (memo)     (result + JSON)                               │
 * resolve(name, type) ─────────────────────────────────────────────────────┐ │
 *        question ─ cache(answer) ─ single-flight ─ iterator ─ upstream    ◀─┴─┘
 *                                                     └─ validator
 * ```
 *
 * Each stage is its own module: `cache.ts` keeps answers, delegations and keys; `iterator.ts`
 * walks from the apex with QNAME minimisation and follows referrals; `validator.ts` holds the
 * chain of trust; `upstream.ts` talks to servers; `aggregate.ts` turns answers into a discovery
 * result. A failed resolution is remembered (`failure-cache.ts`, RFC 9520), with the zone it is
 * about when it is the zone's, so asking again costs no upstream query and no verification until
 * it expires. When every server of a zone fails, a stale cached answer is served, marked `stale`
 * with a TTL of {@link STALE_ANSWER_TTL_SECONDS} (RFC 8767). Parsed inputs are remembered
 * (`csi-memo.ts`) and a cached discovery result keeps its JSON text (`result-json.ts`), so that
 * a warm contact sync neither parses nor serializes again.
 */

/** Cached validated questions, by `name/type`. */
const ANSWERS = cacheSlot<Resolution>('answer');
/** A cached discovery result with its JSON text around the TTL (`result-json.ts`). */
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

function rootServers(config: ResolverConfig): NameServer[] {
  const transport = config.transport ?? 'doh';
  return config.rootServers.flatMap((root): NameServer[] => {
    if (transport === 'doh') {
      if (root.doh !== undefined)
        return [{ name: root.name, endpoint: { kind: 'doh', url: root.doh } }];
      return root.addresses.map((a) => ({
        name: root.name,
        endpoint: { kind: 'doh', url: `https://${a.includes(':') ? `[${a}]` : a}/dns-query` },
      }));
    }
    return root.addresses.map((a) => ({
      name: root.name,
      endpoint: { kind: 'dns', host: a, port: root.port ?? DEFAULT_DNS_PORT },
    }));
  });
}

/** Runs `work` with a wall-time bound (real time: this bounds waiting, not cache lifetimes). */
async function withDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The records of a resolution with their TTLs lowered to what is left. */
function withTtl(records: readonly ResourceRecord[], ttl: number): ResourceRecord[] {
  return records.map((rr) => ({ ...rr, ttl: Math.min(rr.ttl, ttl) }));
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
  const nowMs = components.now ?? Date.now;
  const nowSeconds = (): number => Math.floor(nowMs() / 1000);
  const log = (components.log ?? silentLogger).child('core');
  const root: Delegation = {
    zone: apex,
    servers: rootServers(config),
    ds: [...anchor.ds, ...anchor.dnskeys.map((k) => computeDs(apex, k))],
  };

  const cache = new ResolverCache(config.cacheBytes ?? DEFAULT_CACHE_BYTES, nowMs);
  const transport = config.transport ?? 'doh';
  const upstream = createUpstream(
    { transport, ...(config.ca === undefined ? {} : { ca: config.ca }) },
    log,
  );
  const memo: SignatureMemo = {
    get: (id) => cache.get(SIGNATURES, id)?.value,
    set: (id, value, ttl) => cache.set(SIGNATURES, id, value, ttl),
  };
  const iterator = createIterator({
    apex,
    root,
    transport,
    dnsPort: config.dnsPort ?? DEFAULT_DNS_PORT,
    upstream,
    cache,
    now: nowSeconds,
    log,
    memo,
  });
  const failures = new FailureCache(cache, apex, nowMs);
  const questions = new SingleFlight<Resolved>();
  const discoveries = new SingleFlight<Discovered>();
  const counters = { cacheHits: 0, cacheMisses: 0, signatureVerifications: 0, failureCacheHits: 0 };
  const countVerification = (): void => {
    counters.signatureVerifications++;
  };
  const validationFailures: Record<string, number> = {};
  const countFailure = (reason: string): void => {
    validationFailures[reason] = (validationFailures[reason] ?? 0) + 1;
  };

  /**
   * What a failed question answers: a stale copy of its answer when the servers failed (RFC 8767
   * §4: not for bogus data, nor for a limit), else the failure.
   */
  const afterFailure = (key: string, failure: Failure): Resolved => {
    if (
      failure.kind === 'error' &&
      (failure.reason === 'timeout' || failure.reason === 'servfail')
    ) {
      const stale = cache.getStale(ANSWERS, key);
      if (stale !== undefined) {
        return { ...stale, ttl: STALE_ANSWER_TTL_SECONDS, stale: true } as Resolved;
      }
    }
    return failure;
  };

  /**
   * One validated question: cache, then the failure cache, then single-flight, then the
   * iterator, within {@link MAX_RESOLUTION_MS}; a failure is remembered, and answered stale when
   * it can be.
   */
  const resolveQuestion = (name: string, type: RRType): Promise<Resolved> => {
    const key = `${canonicalName(name)}/${type}`;
    const hit = cache.get(ANSWERS, key);
    if (hit !== undefined) {
      counters.cacheHits++;
      return Promise.resolve({ ...hit.value, ttl: hit.ttl } as Resolved);
    }
    const failed = failures.find(name, type);
    if (failed !== undefined) {
      counters.failureCacheHits++;
      return Promise.resolve(afterFailure(key, failed.failure));
    }
    counters.cacheMisses++;
    return questions.run(key, async () => {
      const deadline = performance.now() + MAX_RESOLUTION_MS;
      const budget = {
        verifications: createBudget({
          expired: () => performance.now() >= deadline,
          onVerify: countVerification,
        }),
        queries: 0,
        referrals: 0,
      };
      const resolution = await withDeadline(
        iterator.resolve(name, type, budget),
        MAX_RESOLUTION_MS,
        (): Resolution => ({
          kind: 'error',
          reason: 'timeout',
          detail: `no result within ${MAX_RESOLUTION_MS} ms`,
        }),
      );
      if (resolution.kind === 'bogus' || resolution.kind === 'error') {
        // A name outside the apex is refused before anything is asked: nothing to remember.
        if (resolution.kind === 'error' && resolution.reason === 'refused') return resolution;
        if (resolution.kind === 'bogus') {
          countFailure(resolution.reason);
          log.info('bogus', { type, reason: resolution.reason });
        }
        failures.record(name, type, resolution);
        return afterFailure(key, resolution);
      }
      failures.forget(name, type);
      cache.set(ANSWERS, key, resolution, resolution.ttl);
      return resolution;
    });
  };

  const resolve = async (name: string, type: RRType): Promise<ResolvedAnswer> => {
    const r = await resolveQuestion(name, type);
    const stale = r.stale === true ? { stale: true } : {};
    switch (r.kind) {
      case 'answer':
        return {
          rcode: 'NOERROR',
          status: 'secure',
          answers: withTtl([...r.rrset, ...r.rrsigs], r.ttl),
          authorities: [],
          ...stale,
        };
      case 'nodata':
      case 'nxdomain':
        return {
          rcode: r.kind === 'nxdomain' ? 'NXDOMAIN' : 'NOERROR',
          status: 'secure',
          answers: [],
          authorities: withTtl(r.records, r.ttl),
          ...stale,
        };
      case 'bogus':
        return { rcode: 'SERVFAIL', status: 'bogus', answers: [], authorities: [] };
      case 'error':
        return {
          rcode: r.reason === 'refused' ? 'REFUSED' : 'SERVFAIL',
          status: 'indeterminate',
          answers: [],
          authorities: [],
        };
    }
  };

  const parsed = new CsiMemo(PARSED_CSI_CACHE_OCTETS);
  /** The CSI of `input`, or the result for input that is not a CSI. */
  const csiOf = (input: string): Csi | DiscoveryResult => {
    const value = parsed.parse(input);
    return typeof value === 'string'
      ? value
      : errorResult(input, 'invalid-csi', `${value.code}: ${value.message}`);
  };

  /** Resolves a CSI the cache does not hold (single-flight, time-bounded) and caches it. */
  const discoverUncached = (csi: Csi): Promise<Discovered> => {
    counters.cacheMisses++;
    return discoveries.run(csi, async () => {
      const result = await withDeadline(
        aggregate(csi, {
          apex,
          resolve: resolveQuestion,
          zoneFor: iterator.zoneFor,
          now: nowSeconds,
          onInvalidMapping: countFailure,
        }),
        MAX_RESOLUTION_MS,
        () => errorResult(csi, 'timeout', `no result within ${MAX_RESOLUTION_MS} ms`),
      );
      if (result.status === 'error' || result.stale === true) return { result, text: undefined };
      const entry: CachedDiscovery = { result, text: resultText(result) };
      cache.set(DISCOVERIES, csi, entry, result.ttl);
      return entry;
    });
  };

  /**
   * Discovers `inputs` into `results` (and their JSON into `json`, when given): cache hits at
   * once, in one pass without waiting; the rest by {@link ResolverConfig.batchConcurrency}
   * workers. A cached result carries its JSON text, so a warm batch is mostly concatenation.
   */
  const discoverInto = async (
    inputs: readonly string[],
    results: DiscoveryResult[],
    json: string[] | undefined,
  ): Promise<void> => {
    const misses: Array<{ index: number; csi: Csi }> = [];
    for (let i = 0; i < inputs.length; i++) {
      const csi = csiOf(inputs[i] as string);
      if (typeof csi !== 'string') {
        results[i] = csi;
        if (json !== undefined) json[i] = resultJsonText(csi);
        continue;
      }
      const hit = cache.get(DISCOVERIES, csi);
      if (hit === undefined) {
        misses.push({ index: i, csi });
        continue;
      }
      counters.cacheHits++;
      results[i] = { ...hit.value.result, ttl: hit.ttl };
      if (json !== undefined) json[i] = `${hit.value.text.head}${hit.ttl}${hit.value.text.tail}`;
    }
    if (misses.length === 0) return;
    const concurrency = Math.max(1, config.batchConcurrency ?? DEFAULT_BATCH_CONCURRENCY);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < misses.length) {
        const { index, csi } = misses[next++] as { index: number; csi: Csi };
        const { result, text } = await discoverUncached(csi);
        results[index] = result;
        if (json !== undefined) json[index] = resultJsonText(result, text);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, misses.length) }, worker));
  };

  const discover = async (input: string): Promise<DiscoveryResult> => {
    const results: DiscoveryResult[] = [];
    await discoverInto([input], results, undefined);
    return results[0] as DiscoveryResult;
  };

  const discoverMany = async (inputs: readonly string[]): Promise<DiscoveryResult[]> => {
    const results: DiscoveryResult[] = new Array<DiscoveryResult>(inputs.length);
    await discoverInto(inputs, results, undefined);
    return results;
  };

  const discoverManyJson = async (inputs: readonly string[]): Promise<DiscoveryResultsJson> => {
    const results: DiscoveryResult[] = new Array<DiscoveryResult>(inputs.length);
    const json: string[] = new Array<string>(inputs.length);
    await discoverInto(inputs, results, json);
    return { results, json };
  };

  const stats = (): ResolverStats => ({
    cacheHits: counters.cacheHits,
    cacheMisses: counters.cacheMisses,
    signatureVerifications: counters.signatureVerifications,
    failureCacheHits: counters.failureCacheHits,
    upstreamQueries: upstream.sent(),
    validationFailures: { ...validationFailures },
    cacheBytes: cache.bytes,
  });

  // Unbound's `flush_zone .`, `flush_bogus` and `flush_infra all` together: every cached answer,
  // delegation, key, signature, discovery result, failure and stale copy, and every server's RTT. Questions in flight
  // finish and may cache what they bring.
  const flushCache = (): void => {
    cache.clear();
    parsed.clear();
    upstream.forgetRtts();
  };

  return {
    discover,
    discoverMany,
    discoverManyJson,
    resolve,
    stats,
    flushCache,
    close: () => upstream.close(),
  };
}
