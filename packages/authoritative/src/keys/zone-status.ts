import type { Clock } from '@mimi-discovery/common';
import type { ZoneStatusSource } from '../metrics.js';
import type { DiscoveryStore } from '../store/store.js';

/**
 * The zone gauges' view of a store's signing state (`ZoneStatusSource` of `metrics.ts`): the
 * earliest RRSIG expiry from `store.signatureStatus(origin)` and the zone's keys by state from
 * `store.keys.zoneKeys(origin)` and the key directory's `keyStateAt` (docs/operations.md §8).
 *
 * Both come with the key directory, which the store contract gains in the same release: a store
 * without `signatureStatus` (or a caller without `keyStateAt`) leaves that gauge without
 * samples, so a dashboard shows "no data" rather than a number nobody measured.
 */

/** What the store contract offers for the gauges, once it has a key directory. */
interface SigningStateSurface {
  signatureStatus(origin: string): { readonly earliestExpiry: number | undefined } | undefined;
  readonly keys: { zoneKeys(origin: string): readonly unknown[] };
}

/** What {@link zoneStatusOf} needs besides the store. */
export interface ZoneStatusOptions<K> {
  readonly now: Clock;
  /** The key directory's `keyStateAt`: the state of one of the zone's keys at `now`. */
  readonly keyStateAt?: (key: K, now: number) => string;
}

/** The zone gauges' source over `store` (see the module comment). */
export function zoneStatusOf<K>(
  store: DiscoveryStore,
  options: ZoneStatusOptions<K>,
): ZoneStatusSource {
  const surface = store as DiscoveryStore & Partial<SigningStateSurface>;
  const source: ZoneStatusSource = {};
  if (typeof surface.signatureStatus === 'function') {
    const status = surface.signatureStatus.bind(store);
    source.earliestExpiry = (origin) => status(origin)?.earliestExpiry;
  }
  const keys = surface.keys;
  const stateOf = options.keyStateAt;
  if (keys !== undefined && stateOf !== undefined) {
    source.keyStates = (origin) => {
      const now = options.now();
      const counts = new Map<string, number>();
      for (const key of keys.zoneKeys(origin) as readonly K[]) {
        const state = stateOf(key, now);
        counts.set(state, (counts.get(state) ?? 0) + 1);
      }
      return counts;
    };
  }
  return source;
}
