import { expect } from 'vitest';
import {
  buildQuery,
  dsMatchesDnskey,
  namesEqual,
  queryTcp,
  queryUdp,
  verifyRRset,
  type BuildQueryOptions,
  type DnskeyData,
  type DohClient,
  type DsData,
  type Message,
  type Question,
  type RecordOf,
  type ResourceRecord,
  type RRType,
} from '@mimi-discovery/common';

/**
 * Asking the network's servers over each transport, and checking DNSSEC signatures the way a
 * validator does: from the trust anchor's DS to the root's DNSKEY, through the DS in a referral
 * to the child's DNSKEY, to the RRset.
 */

/** The transports every server offers: plain DNS for diagnostics, DoH for every hop (design §7). */
export const TRANSPORTS = ['udp', 'tcp', 'doh-get', 'doh-post'] as const;
/** One of {@link TRANSPORTS}. */
export type Transport = (typeof TRANSPORTS)[number];

/** Where a server listens, as the network fixture describes it. */
export interface DnsTarget {
  readonly udp: { host: string; port: number };
  readonly tcp: { host: string; port: number };
  readonly dohUrl: string;
}

/** Sends one query for `name`/`type` to `server` over `transport`; DO set unless told. */
export function ask(
  doh: DohClient,
  server: DnsTarget,
  transport: Transport,
  name: string,
  type: Question['type'],
  options: BuildQueryOptions = {},
): Promise<Message> {
  const query = buildQuery(name, type, { dnssecOk: true, ...options });
  switch (transport) {
    case 'udp':
      // Without the TCP retry, so a truncated answer shows up as one.
      return queryUdp(server.udp, query, { tcpFallback: false });
    case 'tcp':
      return queryTcp(server.tcp, query);
    case 'doh-get':
      return doh.query(server.dohUrl, { ...query, id: 0 }, { method: 'GET' });
    case 'doh-post':
      return doh.query(server.dohUrl, query, { method: 'POST' });
  }
}

/** The records of one RRset in a section (RRSIGs excluded unless `type` is RRSIG). */
export function rrset<T extends RRType>(
  section: readonly ResourceRecord[],
  name: string,
  type: T,
): Array<Extract<ResourceRecord, { type: T }>> {
  return section.filter(
    (rr): rr is Extract<ResourceRecord, { type: T }> =>
      rr.type === type && namesEqual(rr.name, name),
  );
}

/** The RRSIGs in a section that cover `name`/`type`. */
export function rrsigsOf(
  section: readonly ResourceRecord[],
  name: string,
  type: RRType,
): Array<RecordOf<'RRSIG'>> {
  return rrset(section, name, 'RRSIG').filter((sig) => sig.data.typeCovered === type);
}

/**
 * Asserts that the RRset `name`/`type` of `section` is present and that an RRSIG in the same
 * section, made by `signer`, verifies it with `dnskeys` now.
 */
export function expectSigned(
  section: readonly ResourceRecord[],
  name: string,
  type: RRType,
  signer: string,
  dnskeys: readonly DnskeyData[],
): void {
  const records = rrset(section, name, type);
  expect(records.length, `${name} ${type} is present`).toBeGreaterThan(0);
  const sigs = rrsigsOf(section, name, type);
  expect(sigs.length, `${name} ${type} has an RRSIG`).toBeGreaterThan(0);
  const now = Math.floor(Date.now() / 1000);
  for (const sig of sigs) {
    expect(namesEqual(sig.data.signerName, signer), `${name} ${type} is signed by ${signer}`).toBe(
      true,
    );
    expect(verifyRRset(records, sig, dnskeys, now), `RRSIG over ${name} ${type}`).toEqual({
      kind: 'verified',
    });
  }
}

/**
 * Fetches the DNSKEY RRset of `zone` from `server` and checks it as a validator does: one key
 * matches one of `ds` (the trust anchor, or the DS of the parent's referral), and that key's
 * signature verifies the whole RRset. Returns the keys, now trusted.
 */
export async function trustedDnskeys(
  doh: DohClient,
  server: DnsTarget,
  zone: string,
  ds: readonly DsData[],
): Promise<DnskeyData[]> {
  const response = await ask(doh, server, 'doh-post', zone, 'DNSKEY');
  expect(response.rcode).toBe('NOERROR');
  expect(response.flags.aa).toBe(true);
  const keys = rrset(response.answers, zone, 'DNSKEY').map((rr) => rr.data);
  const anchored = keys.filter((key) => ds.some((d) => dsMatchesDnskey(zone, d, key)));
  expect(anchored.length, `a DNSKEY of ${zone} matches its DS`).toBeGreaterThan(0);
  expectSigned(response.answers, zone, 'DNSKEY', zone, anchored);
  return keys;
}
