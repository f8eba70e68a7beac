import {
  DNSKEY_FLAG_REVOKE,
  DNSKEY_FLAG_SEP,
  computeDs,
  formatRecord,
  type DnskeyData,
  type DsData,
} from '@mimi-discovery/common';
import { DELEGATION_TTL, type DiscoveryStore } from '@mimi-discovery/authoritative';
import { failure } from './errors.js';

/**
 * The DS of a zone (design §5: one combined key per zone, digest type 2), as the parent must
 * publish it, in the forms the commands print:
 *
 * ```
 * 4.4.e164.mimi.arpa. 3600 IN DS 53568 15 2 0a9022b4…
 * {"zone":"4.4.e164.mimi.arpa","keyTag":53568,"algorithm":15,"digestType":2,"digest":"0a9022b4…"}
 * ```
 */

/** A DS as JSON: the digest in hex. */
export interface DsJson {
  zone: string;
  keyTag: number;
  algorithm: number;
  digestType: number;
  digest: string;
}

/** The DS RDATA of every DNSKEY at the apex of `zone` in `store`. */
export function zoneDs(store: DiscoveryStore, zone: string): DsData[] {
  const ds = store
    .readRRset(zone, zone, 'DNSKEY')
    .flatMap((rr) => (rr.type === 'DNSKEY' ? [computeDs(zone, rr.data)] : []));
  if (ds.length === 0) throw failure('ERR_CLI_NO_ZONE', `zone ${zone} has no DNSKEY`);
  return ds;
}

/**
 * Whether a DNSKEY is one a parent's DS or a resolver's trust anchor may name: a SEP key (flag
 * 0x0001, RFC 4034 §2.1.1) not published with the REVOKE bit (RFC 5011 §2.1). During a key roll
 * the apex publishes two such keys, and both are printed.
 */
export function isEntryKey(key: DnskeyData): boolean {
  return (key.flags & DNSKEY_FLAG_SEP) !== 0 && (key.flags & DNSKEY_FLAG_REVOKE) === 0;
}

/**
 * The DS RDATA of every entry key ({@link isEntryKey}) at the apex of `zone` in `store`: what
 * `ds` prints, so that a parent never publishes a DS of a revoked key or a key that signs no
 * DNSKEY RRset.
 */
export function zoneEntryDs(store: Pick<DiscoveryStore, 'readRRset'>, zone: string): DsData[] {
  const ds = store
    .readRRset(zone, zone, 'DNSKEY')
    .flatMap((rr) =>
      rr.type === 'DNSKEY' && isEntryKey(rr.data) ? [computeDs(zone, rr.data)] : [],
    );
  if (ds.length === 0) throw failure('ERR_CLI_NO_ZONE', `zone ${zone} has no SEP DNSKEY`);
  return ds;
}

/** A DS record in presentation form, without the newline. */
export function dsLine(zone: string, ds: DsData): string {
  return formatRecord({ name: zone, type: 'DS', class: 'IN', ttl: DELEGATION_TTL, data: ds });
}

/** A DS as JSON. */
export function dsJson(zone: string, ds: DsData): DsJson {
  return {
    zone,
    keyTag: ds.keyTag,
    algorithm: ds.algorithm,
    digestType: ds.digestType,
    digest: Buffer.from(ds.digest).toString('hex'),
  };
}

/** A DS given as JSON in presentation form, without the newline. */
export function dsJsonLine(ds: DsJson): string {
  const data: DsData = {
    keyTag: ds.keyTag,
    algorithm: ds.algorithm,
    digestType: ds.digestType,
    digest: new Uint8Array(Buffer.from(ds.digest, 'hex')),
  };
  return dsLine(ds.zone, data);
}
