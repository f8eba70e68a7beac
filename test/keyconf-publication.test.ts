import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyconfData, Message } from '@mimi-discovery/common';
import { publishKeys } from '@mimi-discovery/authoritative';
import { createResolver, type Resolver } from '@mimi-discovery/resolver';
import { MSP_ZONE, buildHierarchy, type Hierarchy, type Tamper } from './helpers/hierarchy.js';

// The gateway's keys published in the tree (issue 13: key consistency): a KEYCONF RRset and the
// `_dns` SVCB with ohttp (RFC 9540 §4), written by publishKeys into the MSP's DP, and what a
// validating resolver makes of them from the root down: secure when honest, bogus when a server
// on the path swaps the key.

const GATEWAY = `resolver.${MSP_ZONE}`;
const NOW = Math.floor(Date.now() / 1000);

const key = (n: number, kind: KeyconfData['kind'] = 'ohttp'): KeyconfData => ({
  kind,
  config: Uint8Array.of(n, 0, 0x20, ...new Uint8Array(32).fill(n), 0, 4, 0, 1, 0, 1),
  notBefore: NOW - 3600,
  notAfter: NOW + 86_400,
});

let h: Hierarchy;
const resolvers: Resolver[] = [];

function newResolver(): Resolver {
  const resolver = createResolver(h.resolverConfig());
  resolvers.push(resolver);
  return resolver;
}

beforeAll(async () => {
  h = await buildHierarchy();
  await publishKeys(h.msp.store, GATEWAY, [key(1), key(2, 'odoh')], {
    now: NOW,
    doh: `https://127.0.0.1:8447/dns-query`,
  });
});

afterAll(async () => {
  await Promise.all(resolvers.map((r) => r.close()));
  await h.close();
});

/** A server that answers KEYCONF with another key in place of the first (a key swap). */
const swapKey: Tamper = (_query, honest): Message => ({
  ...honest,
  answers: honest.answers.map((rr) =>
    rr.type === 'KEYCONF' ? { ...rr, data: { ...rr.data, config: key(66).config } } : rr,
  ),
});

describe('KEYCONF through a validating resolver', () => {
  it('resolves the published keys secure', async () => {
    const answer = await newResolver().resolve(GATEWAY, 'KEYCONF');
    expect(answer.rcode).toBe('NOERROR');
    expect(answer.status).toBe('secure');
    const keys = answer.answers.flatMap((rr) => (rr.type === 'KEYCONF' ? [rr.data] : []));
    expect(keys).toEqual(expect.arrayContaining([key(1), key(2, 'odoh')]));
    expect(keys).toHaveLength(2);
  });

  it('resolves the _dns SVCB with ohttp secure', async () => {
    const answer = await newResolver().resolve(`_dns.${GATEWAY}`, 'SVCB');
    expect(answer.status).toBe('secure');
    const svcb = answer.answers.find((rr) => rr.type === 'SVCB');
    expect(svcb?.type === 'SVCB' && svcb.data.params.ohttp).toBe(true);
  });

  it('proves securely that the gateway name has no other type (KEYCONF in the bitmap)', async () => {
    const answer = await newResolver().resolve(GATEWAY, 'A');
    expect(answer.rcode).toBe('NOERROR');
    expect(answer.answers).toEqual([]);
    expect(answer.status).toBe('secure');
  });

  it('sees a swapped key as bogus, never as a key', async () => {
    h.msp.tamper = swapKey;
    try {
      const answer = await newResolver().resolve(GATEWAY, 'KEYCONF');
      expect(answer.status).toBe('bogus');
      expect(answer.answers.filter((rr) => rr.type === 'KEYCONF')).toEqual([]);
    } finally {
      h.msp.tamper = undefined;
    }
  });

  it('sees the replaced RRset after a rotation', async () => {
    await publishKeys(h.msp.store, GATEWAY, [key(3)], { now: NOW });
    const answer = await newResolver().resolve(GATEWAY, 'KEYCONF');
    expect(answer.status).toBe('secure');
    expect(answer.answers.flatMap((rr) => (rr.type === 'KEYCONF' ? [rr.data] : []))).toEqual([
      key(3),
    ]);
  });
});
