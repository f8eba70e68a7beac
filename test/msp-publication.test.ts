import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createLogger,
  createMaprefRequest,
  encodeMaprefRequest,
  keyPairFromSeed,
  maprefTargetName,
  parseConfig,
  parseCsi,
  silentLogger,
  type Ed25519KeyPair,
} from '@mimi-discovery/common';
import {
  createRegistrationClient,
  delegate,
  dpConfigSchema,
  exportZoneText,
  openLmdbStore,
  defaultKeyDirectory,
  storeDirectory,
  startDp,
  type RegistrationClient,
  type RunningDp,
} from '@mimi-discovery/authoritative';
import {
  createResolver,
  startResolverServer,
  type Resolver,
  type RunningResolverServer,
} from '@mimi-discovery/resolver';
import { runCli } from '@mimi-discovery/cli';
import { delegationTo, initServer } from '../examples/loopback-network.js';
import { APEX, PHONE_ZONE, buildNetwork, type Network } from './helpers/network.js';
import {
  answerOf,
  apiOf,
  attest,
  attestAs,
  errorCode,
  mappingBytes,
  mappingOf,
  nowSeconds,
  removeMapping,
  type HeldAttestation,
} from './helpers/registration.js';

// Issue 16, "MSP-run DPs take publications" (design §8, docs/protocol.md §9): a recipient of a
// +44 number proves it at the +44 DP, points a MAPREF from its name there to its name in the
// zone of the MSP chat.example, and publishes at the MSP-run DP's registration API a mapping
// attested by the +44 prover. The MSP-run DP checks the prover against the +44 range's AUTHKEY
// RRset through a real validating resolver (from @mimi-discovery/resolver, over UDP on
// loopback), stores the mapping at the MAPREF-target name, and a sender finds it through the
// same resolver, with the MSP zone as its provenance.

const MSP_ZONE = 'chat.example.email.mimi.arpa';
const CSI = 'tel:+442079460018';
const TARGET = maprefTargetName(parseCsi(CSI), MSP_ZONE);
const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
/** The recipient's key at the +44 DP, and the key its chat.example client holds. */
const AT_RANGE = keyPairFromSeed(seed(21));
const AT_MSP = keyPairFromSeed(seed(22));
/** A key that is no AUTHKEY anywhere. */
const STRAY_PROVER = keyPairFromSeed(seed(23));

let net: Network;
let resolver: Resolver;
let resolverServer: RunningResolverServer;
let msp: RunningDp;
let mspApi: RegistrationClient;
let atMsp: HeldAttestation;
const mspLogs: string[] = [];

/** The MAP records at the MAPREF-target name in the MSP-run DP's store. */
const mapsAtTarget = (): number => msp.store.readRRset(MSP_ZONE, TARGET, 'MAP').length;

beforeAll(async () => {
  net = await buildNetwork();
  resolver = createResolver(
    {
      rootServers: [{ name: `ns1.${APEX}`, addresses: ['127.0.0.1'], doh: net.root.dohUrl }],
      trustAnchor: net.trustAnchor,
      ca: net.caPem,
    },
    { log: silentLogger },
  );
  resolverServer = await startResolverServer({ listen: { udp: 0 } }, resolver, {
    log: silentLogger,
  });
  const udp = resolverServer.dns?.udp;
  if (udp === undefined) throw new Error('the resolver serves no UDP');

  // The MSP-run DP: its own zone, delegated from the root, taking publications for any range.
  const dataDir = join(net.dir, 'msp');
  const ds = (await initServer(dataDir, [MSP_ZONE])).get(MSP_ZONE);
  if (ds === undefined) throw new Error('no DS for the MSP zone');
  const config = parseConfig(dpConfigSchema, {
    role: 'dp',
    dataDir,
    apex: APEX,
    listen: { host: '127.0.0.1', udp: 0, tcp: 0, doh: 0, api: 0 },
    tls: { cert: join(net.dir, 'server-cert.pem'), key: join(net.dir, 'server-key.pem') },
    registration: {
      requestsPerClientPerMinute: 100_000,
      channels: { outbox: { path: join(dataDir, 'outbox.jsonl') } },
    },
    mspZone: { zone: MSP_ZONE, resolver: `udp://127.0.0.1:${udp.port}`, timeoutMs: 2000 },
    log: { level: 'silent' },
  });
  msp = await startDp(config, {
    log: createLogger('dp', { level: 'debug', write: (line) => mspLogs.push(line) }),
  });
  await delegate(net.root.provider.store, APEX, delegationTo(MSP_ZONE, msp, ds));
  if (msp.api === undefined) throw new Error('the MSP-run DP serves no registration API');
  mspApi = createRegistrationClient({ url: msp.api.url, ca: net.caPem });

  // The recipient at the +44 DP: a mapping of its own there, a MAPREF to the MSP's zone, and a
  // second key (its chat.example client's) attested there too.
  const phone = apiOf(net.phone);
  const atRange = await attest(phone, CSI, AT_RANGE);
  expect((await answerOf(phone.client.publishMapping(mappingOf(atRange, AT_RANGE)))).status).toBe(
    201,
  );
  const mapref = encodeMaprefRequest(
    createMaprefRequest(
      { csi: CSI, target: TARGET, iat: nowSeconds(), att: atRange },
      AT_RANGE.secretKey,
    ),
  );
  expect((await answerOf(phone.client.publishMapref(mapref))).status).toBe(201);
  atMsp = await attest(phone, CSI, AT_MSP);
}, 120_000);

afterAll(async () => {
  await mspApi?.close();
  await msp?.close();
  await resolverServer?.close();
  await resolver?.close();
  await net?.close();
});

/** Publishes at the MSP-run DP a mapping of `att`'s key. */
function publishAtMsp(att: HeldAttestation, key: Ed25519KeyPair, seq = 1) {
  return answerOf(
    mspApi.publishMapping(
      mappingOf(att, key, { msps: [{ provider: 'chat.example', tags: ['mls'] }], seq }),
    ),
  );
}

describe('an MSP-run DP takes publications for other ranges', () => {
  it('refuses a mapping attested by a prover that is no AUTHKEY of +44, storing nothing', async () => {
    // The MSP-run DP's own prover is listed at its own apex, never at +44's.
    for (const prover of [msp.store.proverKey(), STRAY_PROVER]) {
      const response = await publishAtMsp(attestAs(prover, CSI, AT_MSP), AT_MSP);
      expect(response.status, JSON.stringify(response.body)).toBe(403);
      expect(errorCode(response)).toBe('ERR_PROVER_NOT_AUTHORIZED');
      expect(JSON.stringify(response.body)).toContain(PHONE_ZONE);
    }
    expect(mapsAtTarget()).toBe(0);
  });

  it('stores a mapping attested by the +44 prover, and the resolver finds it there', async () => {
    const response = await publishAtMsp(atMsp, AT_MSP);
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    expect(response.body).toMatchObject({ zone: MSP_ZONE, name: TARGET });
    expect(mapsAtTarget()).toBe(1);

    const result = await resolver.discover('+44 20 7946 0018');
    expect(result.status).toBe('found');
    const fromMsp = result.mappings.filter((m) => m.zone === MSP_ZONE);
    expect(fromMsp).toHaveLength(1);
    expect(fromMsp[0]?.key).toBe(Buffer.from(AT_MSP.publicKey).toString('base64url'));
    expect(fromMsp[0]?.msps).toEqual([{ provider: 'chat.example', tags: ['mls'] }]);
    expect(result.mappings.some((m) => m.zone === PHONE_ZONE)).toBe(true);
  });

  it('imports an export of its zone back whole, and skips a mapping by an unlisted prover', async () => {
    // A copy of the MSP-run DP made with the command line, as an operator migrates one.
    const udp = resolverServer.dns?.udp;
    if (udp === undefined) throw new Error('the resolver serves no UDP');
    const cli = (argv: readonly string[]) =>
      runCli(argv, { cwd: net.dir, env: {}, log: silentLogger, now: nowSeconds });
    const init = await cli([
      'init',
      'dp',
      '--dir',
      'msp-copy',
      '--range',
      '@chat.example',
      '--msp-resolver',
      `udp://127.0.0.1:${udp.port}`,
    ]);
    expect(init.exitCode, init.stderr).toBe(0);
    const file = join(net.dir, 'msp.zone');
    let text = '';
    for await (const chunk of exportZoneText(msp.store, MSP_ZONE, { nsec3: false })) text += chunk;
    writeFileSync(file, text);
    // A mapping of another +44 number, attested by a key that is no AUTHKEY of +44.
    const other = 'tel:+442079460019';
    const stray = mappingBytes(attestAs(STRAY_PROVER, other, AT_MSP), AT_MSP);
    const hex = Buffer.from(stray).toString('hex');
    const strayName = maprefTargetName(parseCsi(other), MSP_ZONE);
    appendFileSync(file, `${strayName}. 300 IN TYPE65400 \\# ${hex.length / 2} ${hex}\n`);

    const imported = await cli([
      'zone',
      'import',
      '--config',
      'msp-copy/config.json',
      '--zone',
      '@chat.example',
      '--file',
      'msp.zone',
      '--json',
    ]);
    expect(imported.exitCode, imported.stderr).toBe(0);
    const report = JSON.parse(imported.stdout) as {
      skipped: Array<{ type: string; count: number; reason: string }>;
    };
    expect(report.skipped.filter((s) => s.type === 'MAP')).toEqual([
      {
        type: 'MAP',
        count: 1,
        reason: `attested by a prover that is no AUTHKEY of ${PHONE_ZONE}, the CSI's range`,
      },
    ]);
    const dataDir = join(net.dir, 'msp-copy');
    const copy = await openLmdbStore({
      dataDir: storeDirectory(dataDir),
      keys: defaultKeyDirectory(dataDir),
    });
    try {
      const maps = (store: typeof copy) =>
        store
          .readRRset(MSP_ZONE, TARGET, 'MAP')
          .map((rr) => (rr.type === 'MAP' ? Buffer.from(rr.data).toString('hex') : ''));
      expect(maps(copy)).toEqual(maps(msp.store));
      expect(maps(copy)).toHaveLength(1);
      expect(copy.readRRset(MSP_ZONE, strayName, 'MAP')).toEqual([]);
    } finally {
      await copy.close();
    }
  });

  it('keeps a removal: the old mapping sent again is refused', async () => {
    const old = mappingBytes(atMsp, AT_MSP, { seq: 1 });
    expect(mapsAtTarget()).toBe(1);
    const removed = await removeMapping(mspApi, CSI, AT_MSP, 1);
    expect(removed.status, JSON.stringify(removed.body)).toBe(200);
    expect(mapsAtTarget()).toBe(0);
    const replayed = await answerOf(mspApi.publishMapping({ csi: CSI, mapping: old }));
    expect(replayed.status).toBe(409);
    expect(errorCode(replayed)).toBe('ERR_STALE_SEQ');
    expect(mapsAtTarget()).toBe(0);
    resolver.flushCache();
    const result = await resolver.discover(CSI);
    expect(result.mappings.filter((m) => m.zone === MSP_ZONE)).toEqual([]);
  });

  it('refuses MAPREFs and proofs for other ranges: they belong to the range', async () => {
    const proved = await answerOf(mspApi.prove(CSI));
    expect(errorCode(proved)).toBe('ERR_NOT_AUTHORITATIVE');
    const mapref = encodeMaprefRequest(
      createMaprefRequest(
        { csi: CSI, target: `x.${MSP_ZONE}`, iat: nowSeconds(), att: atMsp },
        AT_MSP.secretKey,
      ),
    );
    expect(errorCode(await answerOf(mspApi.publishMapref(mapref)))).toBe('ERR_NOT_AUTHORITATIVE');
  });

  it('refuses with 503 ERR_PROVER_UNVERIFIABLE while the resolver is down, storing nothing', async () => {
    await resolverServer.close();
    const response = await publishAtMsp(atMsp, AT_MSP, 2);
    expect(response.status, JSON.stringify(response.body)).toBe(503);
    expect(errorCode(response)).toBe('ERR_PROVER_UNVERIFIABLE');
    expect(mapsAtTarget()).toBe(0);
    expect(mspLogs.some((line) => line.includes('"resolver-failed"'))).toBe(true);
  });

  it('does not start with an mspZone that is not one of its zones', async () => {
    const dataDir = join(net.dir, 'msp-misconfigured');
    await initServer(dataDir, [MSP_ZONE]);
    const config = parseConfig(dpConfigSchema, {
      role: 'dp',
      dataDir,
      apex: APEX,
      listen: { host: '127.0.0.1', api: 0 },
      tls: { cert: join(net.dir, 'server-cert.pem'), key: join(net.dir, 'server-key.pem') },
      mspZone: { zone: 'text.example.email.mimi.arpa', resolver: 'udp://127.0.0.1:53' },
      log: { level: 'silent' },
    });
    await expect(startDp(config, { log: silentLogger })).rejects.toThrow(
      `mspZone.zone: text.example.email.mimi.arpa is not a zone of this DP (its zones: ${MSP_ZONE})`,
    );
  });
});
