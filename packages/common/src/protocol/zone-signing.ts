import { dnskeyRecord, signRRset, type SignatureValidity, type ZoneKey } from './dnssec.js';
import { DnssecError, ZoneError } from './errors.js';
import { canonicalName, compareNames, isSubdomain } from './names.js';
import { denialTtl } from './nsec.js';
import { buildNsec3Chain, isBelowCut, zoneCuts } from './nsec3.js';
import type { DnskeyData, RecordOf, ResourceRecord, RRType } from './records.js';
import { encodeRdata, typeToCode } from './wire.js';
import { refreshZonemd } from './zonemd.js';

/**
 * Signing a whole zone ahead of time, for export to stock secondaries (design §5, §9): what
 * `dnssec-signzone` or `ldns-signzone` would produce with our one combined key.
 *
 * Worked example, zone `example` with SOA, NS, `www` A and a delegation `sub` (NS, DS, glue
 * `ns.sub` A): the DNSKEY is added at the apex; SOA, NS, DNSKEY, `www` A and `sub` DS get an
 * RRSIG; `sub` NS and the glue do not (RFC 4035 §2.2); with `nsec3`, three NSEC3 records
 * (`example`, `www`, `sub`; none for the glue) and the NSEC3PARAM are added and signed too.
 */

/** Options of {@link signZone}. */
export interface SignZoneOptions extends SignatureValidity {
  /** Add an NSEC3 chain and NSEC3PARAM (RFC 9276 parameters). */
  nsec3?: boolean;
  /** TTL of the DNSKEY record when it has to be added; default: the SOA record's TTL. */
  ttl?: number;
}

/** DNSSEC data that signing regenerates; any such record in the input is dropped. */
const REGENERATED: ReadonlySet<RRType> = new Set(['RRSIG', 'NSEC', 'NSEC3', 'NSEC3PARAM']);

/**
 * Signs a zone: returns its records with the key's DNSKEY at the apex (added when absent), an
 * RRSIG over every authoritative RRset (the DS of a delegation included; its NS and all glue
 * excluded, RFC 4035 §2.2), and with `nsec3` the NSEC3 chain and NSEC3PARAM, signed too, at TTL
 * min(SOA TTL, SOA MINIMUM) (RFC 9077). Existing RRSIG, NSEC, NSEC3 and NSEC3PARAM records
 * are replaced, duplicate records dropped, and the TTLs of an RRset made equal to its lowest
 * (RFC 2181 §5.2). A zone with a ZONEMD at its apex (a placeholder will do) gets it computed
 * over the signed zone and signed (`refreshZonemd`, RFC 8976 §3). Output is in canonical order
 * (RFC 4034 §6.1), types in code order, each RRset followed by its RRSIG. Throws `ZoneError` without an SOA at the origin or with a record outside
 * the zone, and `DnssecError` when the key belongs to another zone.
 */
export function signZone(
  origin: string,
  records: readonly ResourceRecord[],
  key: ZoneKey,
  options: SignZoneOptions,
): ResourceRecord[] {
  const apex = canonicalName(origin);
  if (canonicalName(key.zone) !== apex) {
    throw new DnssecError('ERR_KEY_ZONE', `the key of ${key.zone} cannot sign zone ${apex}`);
  }
  const data: ResourceRecord[] = [];
  for (const rr of records) {
    if (!isSubdomain(rr.name, apex)) {
      throw new ZoneError(
        'ERR_ZONE_OUT_OF_ZONE',
        `record owner ${rr.name} is not in zone ${origin}`,
      );
    }
    if (!REGENERATED.has(rr.type)) data.push(rr);
  }
  const soa = data.find(
    (rr): rr is RecordOf<'SOA'> => rr.type === 'SOA' && canonicalName(rr.name) === apex,
  );
  if (soa === undefined) {
    throw new ZoneError('ERR_ZONE_NO_SOA', `zone ${origin} has no SOA record at its origin`);
  }
  const hasKey = data.some(
    (rr) =>
      rr.type === 'DNSKEY' && canonicalName(rr.name) === apex && sameDnskey(rr.data, key.dnskey),
  );
  if (!hasKey) data.push(dnskeyRecord(key, options.ttl ?? soa.ttl));
  if (options.nsec3 === true) data.push(...buildNsec3Chain(apex, data, denialTtl(soa)));

  const cuts = zoneCuts(apex, data);
  const validity = { inception: options.inception, expiration: options.expiration };
  const out: ResourceRecord[] = [];
  for (const rrset of groupRRsets(data)) {
    const first = rrset[0] as ResourceRecord;
    const owner = canonicalName(first.name);
    out.push(...rrset);
    const authoritative = !isBelowCut(owner, cuts) && (!cuts.has(owner) || first.type === 'DS');
    const apexZonemd = first.type === 'ZONEMD' && owner === apex;
    if (authoritative && !apexZonemd) out.push(signRRset(rrset, key, validity));
  }
  // RFC 8976 §3: the apex ZONEMD is computed last, over the zone signed, then signed itself.
  return refreshZonemd(apex, out, (rrset) => signRRset(rrset, key, validity));
}

/**
 * Records grouped into RRsets in canonical order (owner, then type code), duplicates removed and
 * the TTLs of each RRset set to its lowest.
 */
function groupRRsets(records: readonly ResourceRecord[]): ResourceRecord[][] {
  const sets = new Map<string, { rrs: ResourceRecord[]; seen: Set<string> }>();
  for (const rr of records) {
    const id = `${canonicalName(rr.name)} ${rr.class} ${typeToCode(rr.type)}`;
    let set = sets.get(id);
    if (set === undefined) {
      set = { rrs: [], seen: new Set() };
      sets.set(id, set);
    }
    const rdata = Buffer.from(encodeRdata(rr, { canonical: true })).toString('hex');
    if (set.seen.has(rdata)) continue;
    set.seen.add(rdata);
    set.rrs.push(rr);
  }
  return [...sets.values()]
    .map(({ rrs }) => {
      const ttl = Math.min(...rrs.map((rr) => rr.ttl));
      return rrs.map((rr) => (rr.ttl === ttl ? rr : { ...rr, ttl }));
    })
    .sort((a, b) => {
      const x = a[0] as ResourceRecord;
      const y = b[0] as ResourceRecord;
      return compareNames(x.name, y.name) || typeToCode(x.type) - typeToCode(y.type);
    });
}

function sameDnskey(a: DnskeyData, b: DnskeyData): boolean {
  return (
    a.flags === b.flags &&
    a.protocol === b.protocol &&
    a.algorithm === b.algorithm &&
    Buffer.from(a.publicKey).equals(b.publicKey)
  );
}
