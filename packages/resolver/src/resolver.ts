import {
  CsiError,
  DEFAULT_APEX,
  MimiError,
  canonicalName,
  computeDs,
  parseCsi,
  parseTrustAnchor,
  silentLogger,
  type ResourceRecord,
  type RRType,
} from '@mimi-discovery/common';
import { aggregate, errorResult, type Resolved } from './aggregate.js';
import { cacheSlot, ResolverCache, SingleFlight } from './cache.js';
import { createIterator, type Delegation, type Resolution } from './iterator.js';
import {
  DEFAULT_BATCH_CONCURRENCY,
  DEFAULT_CACHE_BYTES,
  MAX_RESOLUTION_MS,
  STALE_ANSWER_TTL_SECONDS,
} from './limits.js';
import type {
  DiscoveryResult,
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
 * resolve(name, type) ─────────────────────────────────────────────────────┐ │
 *        question ─ cache(answer) ─ single-flight ─ iterator ─ upstream    ◀─┴─┘
 *                                                     └─ validator
 * ```
 *
 * Each stage is its own module: `cache.ts` keeps answers, delegations and keys; `iterator.ts`
 * walks from the apex with QNAME minimisation and follows referrals; `validator.ts` holds the
 * chain of trust; `upstream.ts` talks to servers; `aggregate.ts` turns answers into a discovery
 * result. When every server of a zone fails, a stale cached answer is served, marked `stale`
 * with a TTL of {@link STALE_ANSWER_TTL_SECONDS} (RFC 8767).
 */

/** A fault in the resolver's configuration. */
export class ResolverConfigError extends MimiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_RESOLVER_CONFIG', message, options);
  }
}

/** Cached validated questions, by `name/type`. */
const ANSWERS = cacheSlot<Resolution>('answer');
/** Cached discovery results, by canonical CSI. */
const DISCOVERIES = cacheSlot<DiscoveryResult>('discovery');
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
 * Creates a resolver. Throws {@link ResolverConfigError} for a trust anchor that does not parse
 * or is not for the apex, or for no usable root server.
 */
export function createResolver(
  config: ResolverConfig,
  components: ResolverComponents = {},
): Resolver {
  const apex = canonicalName(config.apex ?? DEFAULT_APEX);
  const nowMs = components.now ?? Date.now;
  const nowSeconds = (): number => Math.floor(nowMs() / 1000);
  const log = (components.log ?? silentLogger).child('core');
  let anchor;
  try {
    anchor = parseTrustAnchor(config.trustAnchor);
  } catch (cause) {
    throw new ResolverConfigError(`trust anchor: ${(cause as Error).message}`, { cause });
  }
  if (anchor.zone !== apex) {
    throw new ResolverConfigError(`the trust anchor is for ${anchor.zone}, not the apex ${apex}`);
  }
  const servers = rootServers(config);
  if (servers.length === 0) throw new ResolverConfigError('no usable root server');
  const root: Delegation = {
    zone: apex,
    servers,
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
  const questions = new SingleFlight<Resolved>();
  const discoveries = new SingleFlight<DiscoveryResult>();
  const counters = { cacheHits: 0, cacheMisses: 0 };
  const validationFailures: Record<string, number> = {};
  const countFailure = (reason: string): void => {
    validationFailures[reason] = (validationFailures[reason] ?? 0) + 1;
  };

  /** One validated question: cache, then single-flight, then the iterator; stale on failure. */
  const resolveQuestion = (name: string, type: RRType): Promise<Resolved> => {
    const key = `${canonicalName(name)}/${type}`;
    const hit = cache.get(ANSWERS, key);
    if (hit !== undefined) {
      counters.cacheHits++;
      return Promise.resolve({ ...hit.value, ttl: hit.ttl } as Resolved);
    }
    counters.cacheMisses++;
    return questions.run(key, async () => {
      const resolution = await withDeadline(
        iterator.resolve(name, type, { verifications: createBudget(), queries: 0, referrals: 0 }),
        MAX_RESOLUTION_MS,
        (): Resolution => ({
          kind: 'error',
          reason: 'timeout',
          detail: `no result within ${MAX_RESOLUTION_MS} ms`,
        }),
      );
      if (resolution.kind === 'bogus') {
        countFailure(resolution.reason);
        log.info('bogus', { type, reason: resolution.reason });
        return resolution;
      }
      if (resolution.kind === 'error') {
        if (resolution.reason === 'timeout' || resolution.reason === 'servfail') {
          const stale = cache.getStale(ANSWERS, key);
          if (stale !== undefined) {
            return { ...stale, ttl: STALE_ANSWER_TTL_SECONDS, stale: true } as Resolved;
          }
        }
        return resolution;
      }
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

  const discover = async (input: string): Promise<DiscoveryResult> => {
    let csi;
    try {
      csi = parseCsi(input);
    } catch (error) {
      if (!(error instanceof CsiError)) throw error;
      return errorResult(input, 'invalid-csi', `${error.code}: ${error.message}`);
    }
    const hit = cache.get(DISCOVERIES, csi);
    if (hit !== undefined) {
      counters.cacheHits++;
      return { ...hit.value, ttl: hit.ttl };
    }
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
      if (result.status !== 'error' && result.stale !== true) {
        cache.set(DISCOVERIES, csi, result, result.ttl);
      }
      return result;
    });
  };

  const discoverMany = async (inputs: readonly string[]): Promise<DiscoveryResult[]> => {
    const results: DiscoveryResult[] = new Array<DiscoveryResult>(inputs.length);
    const concurrency = Math.max(1, config.batchConcurrency ?? DEFAULT_BATCH_CONCURRENCY);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < inputs.length) {
        const i = next++;
        results[i] = await discover(inputs[i] as string);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, inputs.length) }, worker));
    return results;
  };

  const stats = (): ResolverStats => ({
    cacheHits: counters.cacheHits,
    cacheMisses: counters.cacheMisses,
    upstreamQueries: upstream.sent(),
    validationFailures: { ...validationFailures },
    cacheBytes: cache.bytes,
  });

  // Unbound's `flush_zone .` and `flush_infra all` together: every cached answer, delegation,
  // key, signature, discovery result and stale copy, and every server's RTT. Questions in flight
  // finish and may cache what they bring.
  const flushCache = (): void => {
    cache.clear();
    upstream.forgetRtts();
  };

  return {
    discover,
    discoverMany,
    resolve,
    stats,
    flushCache,
    close: () => upstream.close(),
  };
}
