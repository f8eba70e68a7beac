import { zonemdPlaceholder } from '@mimi-discovery/common';
import type { DiscoveryStore } from '../store/store.js';
import { zoneOrigin } from './owner-name.js';
import { DEFAULT_APEX_TTL } from './zone-signer.js';

/**
 * Turning on (and off) the message digest of a zone (RFC 8976 ZONEMD) and the NSEC3 chain kept
 * with it, which make the zone checkable as a whole once transferred (the root's zone, which
 * resolvers copy: RFC 8806). Putting a placeholder ZONEMD at the apex (RFC 8976 §3.1) is all it
 * takes: from that write on, every write of the zone, re-signing included, brings the chain up
 * to date and computes the ZONEMD anew under the new serial (`zone-signer.ts`).
 */

/**
 * Has `store` keep the ZONEMD of zone `origin` from now on, when it does not already: one write,
 * which computes the first digest. Resolves with whether it wrote. Rejects with `StoreError`
 * (`ERR_STORE_NO_ZONE`) for a zone the store does not hold.
 */
export async function keepZoneDigest(store: DiscoveryStore, origin: string): Promise<boolean> {
  const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
  if (store.readRRset(apex, apex, 'ZONEMD').length > 0) return false;
  const ttl = store.readRRset(apex, apex, 'SOA')[0]?.ttl ?? DEFAULT_APEX_TTL;
  await store.apply(apex, [
    { op: 'put', name: apex, type: 'ZONEMD', records: [zonemdPlaceholder(apex, ttl)] },
  ]);
  return true;
}

/** Stops keeping the ZONEMD (and the NSEC3 chain) of zone `origin`; resolves with whether it wrote. */
export async function dropZoneDigest(store: DiscoveryStore, origin: string): Promise<boolean> {
  const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
  if (store.readRRset(apex, apex, 'ZONEMD').length === 0) return false;
  await store.apply(apex, [{ op: 'delete', name: apex, type: 'ZONEMD' }]);
  return true;
}
