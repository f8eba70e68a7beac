import { record, type RecordOf, type SoaData } from '@mimi-discovery/common';

/**
 * The SOA record of `zone` that tests put in negative answers and authority sections: primary
 * `ns1.<zone>`, contact `hostmaster.<zone>`, serial 1, the refresh, retry and expire of a
 * typical zone, and a negative-caching TTL (`minimum`, RFC 2308 §4) of 300 s; `data` changes
 * any of these.
 */
export function soaRecord(zone: string, data: Partial<SoaData> = {}, ttl = 300): RecordOf<'SOA'> {
  return record(
    zone,
    'SOA',
    {
      mname: `ns1.${zone}`,
      rname: `hostmaster.${zone}`,
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 604_800,
      minimum: 300,
      ...data,
    },
    ttl,
  );
}
