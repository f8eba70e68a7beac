/**
 * The per-client limits a listener applies: the query gate of `respond.ts` (every listener,
 * asked before the answer cache), and Response Rate Limiting of what is sent (UDP only,
 * `rrl.ts`). Kept apart from both so that neither imports the other.
 */
import type { QueryGate } from './respond.js';
import type { ResponseRateLimiter } from './rrl.js';

/** The per-client limits of one listener; each absent means none. */
export interface ListenerLimits {
  readonly gate?: QueryGate | undefined;
  readonly rrl?: ResponseRateLimiter | undefined;
}
