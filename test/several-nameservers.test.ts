import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPairFromSeed, parseCsi } from '@mimi-discovery/common';
import { listDelegations } from '@mimi-discovery/authoritative';
import { createResolver, type Resolver } from '@mimi-discovery/resolver';
import { createFakeClock } from './helpers/clock.js';
import { buildHierarchy, type Hierarchy, type HierarchyServer } from './helpers/hierarchy.js';
import { APEX, PHONE_ZONE } from './helpers/network.js';

// A DP zone on two nameservers, delegated from the root with both (NS, glue, `_dns` SVCB): a
// resolver walking the real hierarchy over DoH keeps finding mappings while either nameserver
// is down, and finds them at the one that is up.

const ALICE = keyPairFromSeed(new Uint8Array(32).fill(0x51));
const CSIS = ['+44 20 7946 1001', '+44 20 7946 1002', '+44 20 7946 1003', '+44 20 7946 1004'].map(
  (typed) => parseCsi(typed),
);

let h: Hierarchy;
let ns1: HierarchyServer;
let ns2: HierarchyServer;
let resolver: Resolver;

beforeAll(async () => {
  h = await buildHierarchy();
  ns1 = h.phone;
  ns2 = await h.addNameserver(ns1);
  for (const csi of CSIS) await h.publish(csi, ALICE);
  // A server that is down costs the question one timeout before the other is asked.
  resolver = createResolver(h.resolverConfig({ upstream: { timeoutMs: 1000 } }), {
    now: createFakeClock().seconds,
  });
});
afterAll(async () => {
  await resolver?.close();
  await h?.close();
});

describe('a zone with two nameservers', () => {
  it('is delegated from the root with both, each with its glue and DoH endpoint', () => {
    const delegation = listDelegations(h.root.store, APEX).find((d) => d.zone === PHONE_ZONE);
    expect(delegation?.nameservers).toEqual([
      {
        name: ns1.nameserver,
        addresses: ['127.0.0.1'],
        doh: expect.objectContaining({ port: ns1.dohPort }),
      },
      {
        name: ns2.nameserver,
        addresses: ['127.0.0.1'],
        doh: expect.objectContaining({ port: ns2.dohPort }),
      },
    ]);
  });

  it('keeps answering while either nameserver is down, from the one that is up', async () => {
    const [first, second, third, fourth] = CSIS;
    if (!first || !second || !third || !fourth) throw new Error('four CSIs');
    const found = await resolver.discoverCsi(first);
    expect(found.status).toBe('found');

    await ns1.stop();
    try {
      const result = await resolver.discoverCsi(second);
      expect(result.status).toBe('found');
      expect(result.mappings.map((m) => m.server)).toEqual([ns2.dohUrl]);
    } finally {
      await ns1.start();
    }

    // ns1 may be held back after its failure: it is still tried when ns2 fails.
    await ns2.stop();
    try {
      const result = await resolver.discoverCsi(third);
      expect(result.status).toBe('found');
      expect(result.mappings.map((m) => m.server)).toEqual([ns1.dohUrl]);
    } finally {
      await ns2.start();
    }

    const last = await resolver.discoverCsi(fourth);
    expect(last.status).toBe('found');
  });
});
