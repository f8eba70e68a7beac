import { buildQuery, computeDs, type DsData } from '@mimi-discovery/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createAnswerer,
  createMemoryStore,
  delegate,
  DelegationError,
  listDelegations,
  MAX_NAMESERVERS_PER_DELEGATION,
  undelegate,
  type DelegationSpec,
  type DiscoveryStore,
} from '../src/index.js';

/**
 * Delegations with several nameservers (RFC 1034 §4.2.1): every nameserver in the parent's NS
 * RRset, glue and `_dns` SVCB for each one inside the parent zone, none for the others; glue
 * shared by two delegations survives the removal of one of them.
 */

const PARENT = 'mimi.arpa';
const CHILD = '4.4.e164.mimi.arpa';
const OTHER = '3.3.e164.mimi.arpa';

let store: DiscoveryStore;
let ds: DsData;

beforeEach(async () => {
  store = createMemoryStore();
  await store.addZone({
    origin: PARENT,
    nameservers: [`ns1.${PARENT}`],
    mname: `ns1.${PARENT}`,
    rname: `hostmaster.${PARENT}`,
  });
  const child = createMemoryStore();
  await child.addZone({
    origin: CHILD,
    nameservers: [`ns1.${CHILD}`],
    mname: `ns1.${CHILD}`,
    rname: `hostmaster.${CHILD}`,
  });
  const dnskey = child.readRRset(CHILD, CHILD, 'DNSKEY')[0];
  if (dnskey?.type !== 'DNSKEY') throw new Error('no DNSKEY');
  ds = computeDs(CHILD, dnskey.data);
  await child.close();
});
afterEach(async () => {
  await store.close();
});

const rdata = (name: string, type: 'NS' | 'A' | 'AAAA'): string[] =>
  store
    .readRRset(PARENT, name, type)
    .map((r) => String(r.data))
    .sort();

function spec(zone: string, nameservers: DelegationSpec['nameservers']): DelegationSpec {
  return { zone, nameservers, ds: [ds] };
}

describe('delegate with several nameservers', () => {
  it('lists every nameserver, with glue and DoH endpoint for those inside the parent zone', async () => {
    await delegate(
      store,
      PARENT,
      spec(CHILD, [
        { name: `ns1.${CHILD}`, addresses: ['192.0.2.1', '2001:db8::1'], doh: { port: 8443 } },
        { name: `ns2.${CHILD}`, addresses: ['192.0.2.2', '192.0.2.22'], doh: { port: 9443 } },
        { name: 'ns.dp.example', addresses: [] },
      ]),
    );
    expect(rdata(CHILD, 'NS')).toEqual([`ns.dp.example`, `ns1.${CHILD}`, `ns2.${CHILD}`]);
    expect(rdata(`ns1.${CHILD}`, 'A')).toEqual(['192.0.2.1']);
    expect(rdata(`ns1.${CHILD}`, 'AAAA')).toEqual(['2001:db8::1']);
    expect(rdata(`ns2.${CHILD}`, 'A')).toEqual(['192.0.2.2', '192.0.2.22']);
    const ports = [`ns1.${CHILD}`, `ns2.${CHILD}`].map((ns) => {
      const [svcb] = store.readRRset(PARENT, `_dns.${ns}`, 'SVCB');
      return svcb?.type === 'SVCB' ? svcb.data.params.port : undefined;
    });
    expect(ports).toEqual([8443, 9443]);

    const [listed] = listDelegations(store, PARENT);
    expect(listed?.nameservers.map((ns) => [ns.name, ns.addresses.sort(), ns.doh?.port])).toEqual([
      [`ns1.${CHILD}`, ['192.0.2.1', '2001:db8::1'], 8443],
      [`ns2.${CHILD}`, ['192.0.2.2', '192.0.2.22'], 9443],
      ['ns.dp.example', [], undefined],
    ]);
  });

  it('sends every nameserver and its glue in a referral', async () => {
    await delegate(
      store,
      PARENT,
      spec(CHILD, [
        { name: `ns1.${CHILD}`, addresses: ['192.0.2.1'], doh: { port: 8443 } },
        { name: `ns2.${CHILD}`, addresses: ['192.0.2.2', '2001:db8::2'], doh: { port: 8443 } },
      ]),
    );
    const answer = createAnswerer(store);
    const response = await answer(buildQuery(`1.${CHILD}`, 'MAP', { dnssecOk: true }), {
      transport: 'udp',
      remoteAddress: '127.0.0.1',
    });
    expect(response.flags.aa).toBe(false);
    expect(response.authorities.filter((r) => r.type === 'NS').map((r) => String(r.data))).toEqual([
      `ns1.${CHILD}`,
      `ns2.${CHILD}`,
    ]);
    const glue = response.additionals
      .filter((r) => r.type === 'A' || r.type === 'AAAA')
      .map((r) => `${r.name} ${String(r.data)}`)
      .sort();
    expect(glue).toEqual([
      `ns1.${CHILD} 192.0.2.1`,
      `ns2.${CHILD} 192.0.2.2`,
      `ns2.${CHILD} 2001:db8::2`,
    ]);
    expect(response.additionals.filter((r) => r.type === 'SVCB')).toHaveLength(2);
  });

  it('keeps glue that another delegation still lists when one is replaced or removed', async () => {
    const shared = { name: `ns.${PARENT}`, addresses: ['192.0.2.53'], doh: { port: 8443 } };
    await delegate(
      store,
      PARENT,
      spec(CHILD, [shared, { name: `ns1.${CHILD}`, addresses: ['192.0.2.1'] }]),
    );
    await delegate(store, PARENT, spec(OTHER, [shared]));
    // Replacing the first without the shared nameserver keeps its glue for the second.
    await delegate(
      store,
      PARENT,
      spec(CHILD, [{ name: `ns1.${CHILD}`, addresses: ['192.0.2.1'] }]),
    );
    expect(rdata(`ns.${PARENT}`, 'A')).toEqual(['192.0.2.53']);
    await delegate(store, PARENT, spec(CHILD, [shared]));
    await undelegate(store, PARENT, OTHER);
    expect(rdata(`ns.${PARENT}`, 'A')).toEqual(['192.0.2.53']);
    expect(store.readRRset(PARENT, `_dns.ns.${PARENT}`, 'SVCB')).toHaveLength(1);
    // The glue of a nameserver no delegation lists any more goes.
    expect(rdata(`ns1.${CHILD}`, 'A')).toEqual([]);
    await undelegate(store, PARENT, CHILD);
    expect(rdata(`ns.${PARENT}`, 'A')).toEqual([]);
    expect(store.readRRset(PARENT, `_dns.ns.${PARENT}`, 'SVCB')).toEqual([]);
  });

  it.each([
    [
      'a nameserver listed twice',
      [
        { name: `ns1.${CHILD}`, addresses: ['192.0.2.1'] },
        { name: `NS1.${CHILD}.`, addresses: ['192.0.2.2'] },
      ],
      'ERR_DELEGATION_NAMESERVERS',
    ],
    [
      'more nameservers than the bound',
      Array.from({ length: MAX_NAMESERVERS_PER_DELEGATION + 1 }, (_, i) => ({
        name: `ns${i}.dp.example`,
        addresses: [],
      })),
      'ERR_DELEGATION_NAMESERVERS',
    ],
    [
      'an address that is not one',
      [{ name: `ns1.${CHILD}`, addresses: ['192.0.2.300'] }],
      'ERR_DELEGATION_GLUE',
    ],
    [
      'an in-zone nameserver without an address',
      [
        { name: `ns1.${CHILD}`, addresses: ['192.0.2.1'] },
        { name: `ns2.${CHILD}`, addresses: [] },
      ],
      'ERR_DELEGATION_GLUE',
    ],
  ])('refuses %s and changes nothing', async (_what, nameservers, code) => {
    await delegate(
      store,
      PARENT,
      spec(CHILD, [{ name: `ns9.${CHILD}`, addresses: ['192.0.2.9'] }]),
    );
    const serial = store.zoneInfo(PARENT)?.serial;
    const refused = delegate(store, PARENT, spec(CHILD, nameservers));
    await expect(refused).rejects.toBeInstanceOf(DelegationError);
    await expect(refused).rejects.toMatchObject({ code });
    expect(store.zoneInfo(PARENT)?.serial).toBe(serial);
    expect(rdata(CHILD, 'NS')).toEqual([`ns9.${CHILD}`]);
  });
});
