import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPairFromSeed, parseCsi, silentLogger } from '@mimi-discovery/common';
import { DEFAULT_AUTHKEY_TTL_SECONDS } from '@mimi-discovery/authoritative';
import { createResolver, type Resolver } from '@mimi-discovery/resolver';
import { runCli } from '@mimi-discovery/cli';
import { resolverConfigFor } from '../examples/loopback-network.js';
import { createFakeClock, type FakeClock } from './helpers/clock.js';
import { ask, rrset } from './helpers/dns.js';
import { PHONE_ZONE, buildNetwork, type Network } from './helpers/network.js';
import {
  answerOf,
  apiOf,
  attestAndPublish,
  attestAs,
  errorCode,
  mappingOf,
} from './helpers/registration.js';

// Issue 15, "Done when": an independent prover added with `keys add-prover` has the mappings it
// attests `found` through a resolver that had cached the range's AUTHKEY RRset before, once that
// copy expires — which the short AUTHKEY TTL (config `authkeyTtl`, 300 s) bounds — and
// `keys remove-prover` makes them fail validation (bogus) the same way. Real servers (the root
// and the +44 DP on LMDB), the command line run in-process on the DP's config while the DP runs,
// and our resolver on a fake clock so that the TTL passes without sleeping.

const PROVER = keyPairFromSeed(new Uint8Array(32).fill(0x61));
const ALICE = keyPairFromSeed(new Uint8Array(32).fill(0x62));
const BOB = keyPairFromSeed(new Uint8Array(32).fill(0x63));
const ALICE_CSI = parseCsi('+442079460071');
const BOB_CSI = parseCsi('+442079460072');
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

let net: Network;
let config: string;
let clock: FakeClock;
let resolver: Resolver;

/** `mimi-discovery keys <args> --config <the +44 DP's config> --zone <its zone>`. */
async function keys(...args: string[]) {
  return runCli(['keys', ...args, '--config', config, '--zone', PHONE_ZONE], {
    cwd: net.dir,
    env: {},
    log: silentLogger,
  });
}

/** The AUTHKEY RRset the +44 DP serves now. */
async function servedAuthkeys() {
  const response = await ask(net.doh, net.phone, 'udp', PHONE_ZONE, 'AUTHKEY');
  return rrset(response.answers, PHONE_ZONE, 'AUTHKEY');
}

beforeAll(async () => {
  net = await buildNetwork();
  config = join(net.dir, 'phone-config.json');
  writeFileSync(
    config,
    JSON.stringify({
      role: 'dp',
      dataDir: net.phone.dataDir,
      apex: net.apex,
      log: { level: 'silent' },
    }),
  );
  clock = createFakeClock();
  resolver = createResolver(resolverConfigFor(net.root.provider, net.caPem), {
    now: clock.seconds,
  });
}, 60_000);

afterAll(async () => {
  await resolver?.close();
  await net?.close();
});

describe('an independent prover, added and removed with keys', () => {
  it('is found through a resolver once its cached AUTHKEY RRset expires, and bogus after removal', async () => {
    const api = apiOf(net.phone);
    // The resolver caches the +44 AUTHKEY RRset (the DP's own prover only) with a first lookup.
    expect((await attestAndPublish(api, ALICE_CSI, ALICE)).response.status).toBe(201);
    expect((await resolver.discover(ALICE_CSI)).status).toBe('found');

    // Before it is listed, the DP refuses what the prover attests.
    const att = attestAs(PROVER, BOB_CSI, BOB);
    const refused = await answerOf(api.client.publishMapping(mappingOf(att, BOB)));
    expect(errorCode(refused)).toBe('ERR_PROVER_NOT_AUTHORIZED');

    const added = await keys('add-prover', '--public-key', b64(PROVER.publicKey));
    expect(added).toMatchObject({ exitCode: 0, stderr: '' });
    const served = await servedAuthkeys();
    expect(served.map((rr) => b64(rr.data.publicKey))).toContain(b64(PROVER.publicKey));
    expect(new Set(served.map((rr) => rr.ttl))).toEqual(new Set([DEFAULT_AUTHKEY_TTL_SECONDS]));

    const published = await answerOf(api.client.publishMapping(mappingOf(att, BOB)));
    expect(published.status).toBe(201);

    // However the resolver answered meanwhile, once the AUTHKEY TTL has passed it asks again.
    clock.advance(DEFAULT_AUTHKEY_TTL_SECONDS + 1);
    const found = await resolver.discover(BOB_CSI);
    expect(found.status).toBe('found');
    expect(found.mappings.map((m) => m.prover)).toEqual([b64(PROVER.publicKey)]);

    const removed = await keys('remove-prover', '--public-key', b64(PROVER.publicKey));
    expect(removed).toMatchObject({ exitCode: 0, stderr: '' });
    expect((await servedAuthkeys()).map((rr) => b64(rr.data.publicKey))).not.toContain(
      b64(PROVER.publicKey),
    );
    clock.advance(DEFAULT_AUTHKEY_TTL_SECONDS + 1);
    const bogus = await resolver.discover(BOB_CSI);
    expect(bogus).toMatchObject({ status: 'error', error: { reason: 'bogus' } });
    // The DP's own prover is untouched: its mappings are still found.
    expect((await resolver.discover(ALICE_CSI)).status).toBe('found');
  }, 60_000);
});

describe('a CSIP added with keys add-csip', () => {
  it('revokes a recycled number through the registration API with csip revoke', async () => {
    const run = (argv: string[]) => runCli(argv, { cwd: net.dir, env: {}, log: silentLogger });
    const made = await run(['csip', 'keygen', '--out', 'csip.key', '--json']);
    expect(made.exitCode).toBe(0);
    const { publicKey } = JSON.parse(made.stdout) as { publicKey: string };
    expect((await keys('add-csip', '--public-key', publicKey)).exitCode).toBe(0);
    writeFileSync(join(net.dir, 'ca.pem'), net.caPem);
    const api = apiOf(net.phone);
    const revoked = await run([
      'csip',
      'revoke',
      '--key',
      'csip.key',
      '--csi',
      ALICE_CSI,
      '--api',
      api.url,
      '--ca',
      'ca.pem',
      // Alice was attested moments ago, maybe in this very second: a second ahead covers her
      // attestation for sure (a `before` within the clock skew is accepted).
      '--before',
      String(Math.floor(Date.now() / 1000) + 1),
      '--json',
    ]);
    expect(revoked).toMatchObject({ exitCode: 0, stderr: '' });
    expect(JSON.parse(revoked.stdout)).toMatchObject({ csi: ALICE_CSI, removed: 1 });
    clock.advance(DEFAULT_AUTHKEY_TTL_SECONDS + 1);
    expect((await resolver.discover(ALICE_CSI)).status).toBe('none');
  }, 60_000);
});
