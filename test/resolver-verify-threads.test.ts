import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EDE_CACHED_ERROR,
  EDE_DNSKEY_MISSING,
  EDE_DNSSEC_BOGUS,
  createVerifyPool,
  csiToName,
  type Csi,
  type VerifyPool,
} from '@mimi-discovery/common';
import { createResolver, type Resolver, type ResolverComponents } from '@mimi-discovery/resolver';
import { createFakeClock } from './helpers/clock.js';
import {
  BAD_ZONE,
  CSIS,
  buildHierarchy,
  corruptMapAt,
  publishCases,
  type Hierarchy,
} from './helpers/hierarchy.js';

/**
 * Verification on worker threads (`verifyThreads`, `verify-pool.ts`) changes where signatures are
 * checked, never what a client gets: the same results, DNS answers, failures and Extended DNS
 * Errors as with every signature verified on the event loop, over the hierarchy's honest and
 * hostile cases (a corrupted MAP RRSIG, a mapping stored at another CSI's name, a mapping of a
 * prover the range does not list, a DS that matches no key), also when every worker crashes.
 */

let h: Hierarchy;
const opened: Resolver[] = [];
const pools: VerifyPool[] = [];
/** Every case of `publishCases`, asked as one batch. */
const ALL: Csi[] = Object.values(CSIS);

beforeAll(async () => {
  h = await buildHierarchy();
  await publishCases(h);
  // The MAP RRset of `bogus` no longer verifies under its RRSIG.
  h.phone.tamper = corruptMapAt(csiToName(CSIS.bogus));
});

afterAll(async () => {
  await Promise.allSettled(opened.map((r) => r.close()));
  await Promise.allSettled(pools.map((p) => p.close()));
  await h?.close();
});

/** Throws on every batch after saying ready: each worker crashes with its jobs out. */
const CRASHING_WORKER = `const { parentPort } = require('node:worker_threads');
parentPort.postMessage({ ready: true });
parentPort.on('message', () => { throw new Error('crashed on purpose'); });`;

interface Observed {
  readonly results: unknown;
  readonly answers: unknown;
}

/** What a client sees of every case through a new resolver of `verifyThreads` / `pool`. */
async function observe(verifyThreads: number | 'auto', pool?: VerifyPool): Promise<Observed> {
  const clock = createFakeClock();
  const components: ResolverComponents = {
    now: () => clock.now() / 1000,
    ...(pool === undefined ? {} : { verifyPool: pool }),
  };
  const resolver = createResolver(h.resolverConfig({ verifyThreads }), components);
  opened.push(resolver);
  const results = await resolver.discoverMany(ALL);
  const answers = await Promise.all(
    [
      [csiToName(CSIS.found), 'MAP'],
      [csiToName(CSIS.bogus), 'MAP'],
      [csiToName(CSIS.none), 'MAP'],
      [`1.${BAD_ZONE}`, 'MAP'],
    ].map(async ([name, type]) => {
      const a = await resolver.resolve(name as string, type as 'MAP');
      return { name, rcode: a.rcode, status: a.status, ede: a.ede, answers: a.answers.length };
    }),
  );
  return { results, answers };
}

let onMainThread: Observed;

describe('verifyThreads', () => {
  beforeAll(async () => {
    onMainThread = await observe(0);
  });

  it('with 0, verifies on the event loop: the cases give their known outcomes', () => {
    const results = onMainThread.results as Array<{ csi: string; status: string; error?: unknown }>;
    expect(results.map((r) => r.status)).toEqual([
      'found', // found
      'empty', // empty
      'none', // none
      'error', // bogus: the RRSIG of its MAP RRset
      'found', // mapref: Alice's and Bob's; Carol's prover is not listed
      'error', // wrongCsi: a mapping whose signatures cover another CSI
      'found', // rotated
    ]);
    expect(results[3]?.error).toMatchObject({
      reason: 'bogus',
      ede: { infoCode: EDE_DNSSEC_BOGUS },
    });
    expect(onMainThread.answers).toMatchObject([
      // The MAP record and its RRSIG.
      { rcode: 'NOERROR', status: 'secure', answers: 2 },
      // Failed in the discovery before: bogus, and answered from the failure cache (RFC 9520).
      {
        rcode: 'SERVFAIL',
        ede: [
          { infoCode: EDE_DNSSEC_BOGUS, text: expect.stringMatching(/^bogus-signature: /) },
          { infoCode: EDE_CACHED_ERROR },
        ],
      },
      { rcode: 'NXDOMAIN', status: 'secure' },
      // The delegation's DS matches none of the zone's keys.
      { rcode: 'SERVFAIL', ede: [{ infoCode: EDE_DNSKEY_MISSING }] },
    ]);
  });

  it('with 2 worker threads, gives the same results and answers, verified on the threads', async () => {
    const pool = createVerifyPool({ threads: 2, minJobsForThreads: 0 });
    pools.push(pool);
    expect(await pool.ready()).toBe(true);
    expect(await observe(2, pool)).toEqual(onMainThread);
    expect(pool.stats().onThreads).toBeGreaterThan(10);
    expect(pool.stats().retried).toBe(0);
  });

  it('with "auto" and a pool of its own, gives the same results and answers', async () => {
    expect(await observe('auto')).toEqual(onMainThread);
  });

  it('with workers that crash on every batch, gives the same results and answers, each signature verified again on the event loop', async () => {
    const pool = createVerifyPool(
      { threads: 2, minJobsForThreads: 0 },
      { spawn: () => new Worker(CRASHING_WORKER, { eval: true }) },
    );
    pools.push(pool);
    expect(await pool.ready()).toBe(true);
    expect(await observe(2, pool)).toEqual(onMainThread);
    expect(pool.stats().onThreads).toBe(0);
    expect(pool.stats().retried).toBeGreaterThan(0);
  });
});
