import { formatZone, signZone } from '@mimi-discovery/common';
import type { DiscoveryStore } from './store.js';
import { DEFAULT_SIGNATURE_VALIDITY, noZoneError, validityAt, zoneOrigin } from './zone-signer.js';

/**
 * A zone of the store as an RFC 1035 master file, for stock secondaries (NSD, Knot, BIND) and
 * for inspection (design §5, §9).
 *
 * With `nsec3`, the zone is signed afresh the way `ldns-signzone` would sign it: the store's
 * records without their RRSIGs go through `signZone` with the zone's key, which adds a standard
 * NSEC3 chain (RFC 9276 parameters) and NSEC3PARAM, so a server that cannot sign denials online
 * can serve it. Hashes of phone numbers are cheap to reverse: such a file makes the zone
 * enumerable to whoever can query the servers that load it, so export it only to your own.
 *
 * Without `nsec3`, the file holds the records exactly as the store serves them, RRSIGs included,
 * and no denial chain: a backup or a view for people, not something a secondary can serve.
 *
 * Worked example: a zone with SOA, NS, DNSKEY, AUTHKEY and one MAP exports with `nsec3` as those
 * records, an RRSIG over each RRset, three NSEC3 records (apex, the MAP owner and each empty
 * non-terminal above it) with their RRSIGs, and the NSEC3PARAM.
 */

/** Options of {@link exportZone}. */
export interface ExportZoneOptions {
  /** Sign with a full NSEC3 chain for stock secondaries. */
  nsec3: boolean;
  /** Signing time in seconds since the epoch; default the system clock. */
  now?: number;
  /** Lifetime of the export's signatures; default 14 days. */
  validitySeconds?: number;
}

/**
 * The zone `origin` of `store` as a master file (absolute names, SOA first, canonical order).
 * Throws `StoreError` (`ERR_STORE_NO_ZONE`) when the store holds no such zone.
 */
export function exportZone(
  store: DiscoveryStore,
  origin: string,
  options: ExportZoneOptions,
): string {
  const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
  const records = store.readZone(apex);
  if (!options.nsec3) return formatZone(apex, records);
  const key = store.zoneKey(apex);
  if (key === undefined) throw noZoneError(apex);
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const validity = validityAt(now, {
    validitySeconds: options.validitySeconds ?? DEFAULT_SIGNATURE_VALIDITY.validitySeconds,
    refreshBeforeSeconds: 0,
  });
  const signed = signZone(
    apex,
    records.filter((rr) => rr.type !== 'RRSIG'),
    key,
    { ...validity, nsec3: true },
  );
  return formatZone(apex, signed);
}
