import {
  canonicalName,
  formatZone,
  refreshZonemd,
  signRRset,
  signZone,
  systemClock,
  type RecordOf,
  type ResourceRecord,
} from '@mimi-discovery/common';
import { ONLINE_SIGNATURE_VALIDITY_SECONDS } from '../answering/answer.js';
import { currentMappings, mappingExpiry } from '../answering/map-expiry.js';
import type { DiscoveryStore } from '../store/store.js';
import { zoneOrigin } from './owner-name.js';
import { DEFAULT_SIGNATURE_VALIDITY, validityAt } from './zone-signer.js';
import { noZoneError } from '../store/store-error.js';

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
 * Without `nsec3`, the file holds the records as the store serves them, RRSIGs included, and no
 * denial chain: a view for people, not something a secondary can serve.
 *
 * Either way the export is the zone as a DP answers from it at `now` (R9): a mapping that has
 * expired (min(`exp`, `att.exp`) ≤ now, see `map-expiry.ts`) is left out, even when no write
 * has rewritten its RRset yet. Without `nsec3`, a MAP RRset that lost records gets a fresh RRSIG
 * with the export's validity, and one that lost them all is left out with its RRSIG, so what is
 * exported still verifies. A file keeps its TTLs and mappings as of `now`: export again to
 * follow expiries (each mapping still carries its own `exp`, which every resolver checks).
 *
 * Worked example: a zone with SOA, NS, DNSKEY, AUTHKEY and one MAP exports with `nsec3` as those
 * records, an RRSIG over each RRset, three NSEC3 records (apex, the MAP owner and each empty
 * non-terminal above it) with their RRSIGs, and the NSEC3PARAM; once that mapping has expired,
 * as SOA, NS, DNSKEY and AUTHKEY with their RRSIGs, one NSEC3 (the apex) and the NSEC3PARAM.
 */

/** Options of {@link exportZone}. */
export interface ExportZoneOptions {
  /** Sign with a full NSEC3 chain for stock secondaries. */
  nsec3: boolean;
  /**
   * Signing time, and the time at which mappings are checked for expiry, in seconds since the
   * epoch; default the time of `systemClock`.
   */
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
  const key = store.zoneKey(apex);
  const now = options.now ?? systemClock();
  const validity = validityAt(now, {
    validitySeconds: options.validitySeconds ?? DEFAULT_SIGNATURE_VALIDITY.validitySeconds,
    refreshBeforeSeconds: 0,
  });
  if (!options.nsec3) {
    const resign =
      key === undefined
        ? undefined
        : (rrset: readonly ResourceRecord[]) => signRRset(rrset, key, validity);
    const current = withoutExpired(records, now, resign);
    // A zone that carries a ZONEMD keeps one that states what is exported (RFC 8976).
    return formatZone(
      apex,
      current.length !== records.length && resign !== undefined
        ? refreshZonemd(apex, current, resign)
        : current,
    );
  }
  if (key === undefined) throw noZoneError(apex);
  const signed = signZone(
    apex,
    withoutExpired(
      records.filter((rr) => rr.type !== 'RRSIG'),
      now,
    ),
    key,
    { ...validity, nsec3: true },
  );
  return formatZone(apex, signed);
}

/**
 * The records of zone `origin` as the DP answers from it at `now` (R9), for a transfer: what
 * the store holds, RRSIGs included, in canonical order, without the MAP records whose mapping
 * has expired (a MAP RRset that lost some is signed anew, as the answerer signs it), SOA first.
 * A zone that carries a ZONEMD gets it computed again when anything was left out, so the
 * transferred zone still verifies as a whole (RFC 8976). Throws `StoreError`
 * (`ERR_STORE_NO_ZONE`) when the store holds no such zone.
 */
export function zoneRecordsAt(
  store: DiscoveryStore,
  origin: string,
  now: number,
): ResourceRecord[] {
  const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
  const stored = store.readZone(apex);
  const key = store.zoneKey(apex);
  const validity = validityAt(now, {
    validitySeconds: ONLINE_SIGNATURE_VALIDITY_SECONDS,
    refreshBeforeSeconds: 0,
  });
  const sign =
    key === undefined
      ? undefined
      : (rrset: readonly ResourceRecord[]) => signRRset(rrset, key, validity);
  const current = withoutExpired(stored, now, sign);
  const records =
    current.length !== stored.length && sign !== undefined
      ? refreshZonemd(apex, current, sign)
      : current;
  const soa = records.findIndex((rr) => rr.type === 'SOA' && canonicalName(rr.name) === apex);
  if (soa <= 0) return records;
  return [records[soa] as ResourceRecord, ...records.slice(0, soa), ...records.slice(soa + 1)];
}

/**
 * `records` (a zone in canonical order, each RRset followed by its RRSIG) without the MAP
 * records whose mapping has expired at `now`. The RRSIG of a MAP RRset that lost records is
 * replaced by `resign` over what is left (in the same place), or dropped with the RRset when
 * nothing is left or there is no `resign`.
 */
function withoutExpired(
  records: readonly ResourceRecord[],
  now: number,
  resign?: (rrset: readonly ResourceRecord[]) => RecordOf<'RRSIG'>,
): ResourceRecord[] {
  const maps = new Map<string, ResourceRecord[]>();
  for (const rr of records) {
    if (rr.type !== 'MAP') continue;
    const owner = canonicalName(rr.name);
    const rrset = maps.get(owner);
    if (rrset === undefined) maps.set(owner, [rr]);
    else rrset.push(rr);
  }
  const dropped = new Set<ResourceRecord>();
  const signatures = new Map<string, RecordOf<'RRSIG'> | undefined>();
  for (const [owner, rrset] of maps) {
    const current = currentMappings(rrset, now, mappingExpiry);
    if (current.removed === 0) continue;
    const kept = new Set(current.records);
    for (const rr of rrset) if (!kept.has(rr)) dropped.add(rr);
    signatures.set(
      owner,
      current.records.length > 0 && resign !== undefined ? resign(current.records) : undefined,
    );
  }
  if (dropped.size === 0) return [...records];
  const out: ResourceRecord[] = [];
  for (const rr of records) {
    if (dropped.has(rr)) continue;
    if (rr.type === 'RRSIG' && rr.data.typeCovered === 'MAP') {
      const owner = canonicalName(rr.name);
      if (signatures.has(owner)) {
        const fresh = signatures.get(owner);
        if (fresh !== undefined) out.push(fresh);
        continue;
      }
    }
    out.push(rr);
  }
  return out;
}
