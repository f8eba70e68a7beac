/**
 * The per-client limits a listener applies: the query gate of `respond.ts` (every listener,
 * asked before the answer cache), and Response Rate Limiting of what is sent (UDP only,
 * `rrl.ts`). Kept apart from both so that neither imports the other.
 */
import type { QueryGate, TsigServerOptions } from './respond.js';
import type { ResponseRateLimiter } from './rrl.js';

/** The per-client limits of one listener; each absent means none. */
export interface ListenerLimits {
  readonly gate?: QueryGate | undefined;
  readonly rrl?: ResponseRateLimiter | undefined;
  /**
   * Who may sign queries (TSIG, RFC 8945; `respond.ts`): the keys every listener verifies a
   * signed query against. Absent: none, so every signed query names an unknown key (BADKEY).
   */
  readonly tsig?: TsigServerOptions | undefined;
}
