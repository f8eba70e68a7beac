import { AnswerCache, type Clock, type Logger, type QueryHandler } from '@mimi-discovery/common';
import type { DpConfig } from '../config.js';
import type { AuthoritativeMetrics } from '../metrics.js';
import type { DiscoveryStore } from '../store/store.js';
import { createAnswerer } from './answer.js';
import { createDpLimits, type DpLimits } from './dp-limits.js';

/**
 * What answers a DP's DNS queries in one process: the answerer over the store, its answer
 * cache, and the per-client limits. The writer (`server.ts`) and each answer worker
 * (`answer-worker-main.ts`) build theirs here, from the same config.
 */
export interface AnswerPath {
  readonly handler: QueryHandler;
  readonly cache: AnswerCache;
  readonly limits: DpLimits;
  /** DNS queries this process answered since it started: by the answerer or from the cache. */
  queries(): number;
}

/** Builds the {@link AnswerPath} of `config` over `store`, counted in `metrics`. */
export function createAnswerPath(
  config: DpConfig,
  store: DiscoveryStore,
  components: { readonly now: Clock; readonly log: Logger; readonly metrics: AuthoritativeMetrics },
): AnswerPath {
  const { now, log, metrics } = components;
  const answer = createAnswerer(store, { now, log: log.child('answer') });
  let queries = 0;
  // Answers are computed in the event turn of their query (the store reads synchronously), so
  // the handler stays synchronous too: the UDP listener then sends without a promise.
  const handler: QueryHandler = (query, context) => {
    const start = process.hrtime.bigint();
    const response = answer(query, context);
    queries++;
    metrics.recordQuery(
      context.transport,
      response.rcode,
      Number(process.hrtime.bigint() - start) / 1e9,
    );
    return response;
  };
  const cache = new AnswerCache({
    maxOctets: config.answerCacheBytes,
    maxAgeSeconds: config.answerCacheMaxAgeSeconds,
    generation: () => store.generation(),
    changes: (since) => store.changesSince(since),
    // A mapping expires without a write (R9): an answer holding one goes at its expiry.
    now,
    expiresAt: (response) => answer.expiresAt(response),
  });
  metrics.watchAnswerCache(cache);
  // RRL on UDP, the query rate on DoH; TCP keeps its connection limits (dp-limits.ts).
  const limits = createDpLimits(config.limits, { now });
  metrics.watchLimits(limits);
  return { handler, cache, limits, queries: () => queries + cache.stats.hits };
}
