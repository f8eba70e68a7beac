import type { Clock } from '@mimi-discovery/common';
import type { ZoneStatusSource } from '../metrics.js';
import type { DiscoveryStore } from '../store/store.js';
import { keyStateAt } from './key-set.js';

/**
 * The zone gauges' view of a store's signing state (`ZoneStatusSource` of `metrics.ts`): the
 * earliest RRSIG expiry from `store.signatureStatus(origin)` (kept by every write, no scan) and
 * the zone's keys by state from the key directory (`store.keys.zoneKeys(origin)` and
 * `keyStateAt` at the clock's now; docs/operations.md §8). A zone with no signature yet has no
 * expiry sample, so a dashboard shows "no data" rather than a number nobody measured.
 */
export function zoneStatusOf(
  store: DiscoveryStore,
  options: { readonly now: Clock },
): ZoneStatusSource {
  return {
    earliestExpiry: (origin) => store.signatureStatus(origin)?.earliestExpiry,
    keyStates: (origin) => {
      const now = options.now();
      const counts = new Map<string, number>();
      for (const key of store.keys.zoneKeys(origin)) {
        const state = keyStateAt(key, now);
        counts.set(state, (counts.get(state) ?? 0) + 1);
      }
      return counts;
    },
  };
}
