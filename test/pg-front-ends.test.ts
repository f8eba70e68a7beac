import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildQuery,
  csiToName,
  dsMatchesDnskey,
  keyPairFromSeed,
  parseCsi,
  queryTcp,
  verifyRRset,
  type Csi,
  type DsData,
  type Message,
} from '@mimi-discovery/common';
import {
  copyStoreToPg,
  createRegistrationClient,
  delegate,
  defaultKeyDirectory,
  openLmdbStore,
  storeDirectory,
  type RegistrationClient,
  type RunningDp,
} from '@mimi-discovery/authoritative';
import { createResolver } from '@mimi-discovery/resolver';
import {
  APEX,
  createLoopbackDir,
  initServer,
  resolverConfigFor,
  serveServer,
  type LoopbackDir,
} from '../examples/loopback-network.js';
import { PHONE_ZONE, TEST_REGISTRATION_LIMITS, authkey } from './helpers/network.js';
import {
  killDpProcess,
  requireBuiltPackages,
  startDpProcess,
  type DpProcess,
} from './helpers/dp-process.js';
import { postgresMissing, startPostgres, type TestPostgres } from './helpers/postgres.js';
import { answerOf, attestAs, mappingBytes } from './helpers/registration.js';

// Design §9 (b): several DP front ends, each a process of its own, over one PostgreSQL database,
// behind one delegation: the root's delegation of +44 lists a nameserver for each (its DoH
// endpoint) and one DS, since both sign with the zone key kept in the database. The zone was made
// as `mimi-discovery init` makes it (LMDB) and moved with `db copy`'s function. A publish through
// one front end is answered by the other within a second (LISTEN/NOTIFY); killed with SIGKILL,
// one leaves the other serving, and a resolver that knows only the root still finds what is
// published then.

const missing = postgresMissing();
if (missing !== undefined) console.warn(`${missing}: skipping the front ends over PostgreSQL`);

/** The bound the issue sets for a publish through one front end to be served by the other. */
const FRONT_END_LAG_MS = 1000;

const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
/** An independent prover that the operator lists at the +44 apex. */
const PROVER = keyPairFromSeed(seed(0x41));
const RECIPIENT = keyPairFromSeed(seed(0x42));
const csiOf = (n: number): Csi => parseCsi(`tel:+44207946${String(n).padStart(4, '0')}`);

let files: LoopbackDir | undefined;
let cluster: TestPostgres | undefined;
let root: RunningDp | undefined;
let zoneDs: DsData;
const fronts: DpProcess[] = [];
const clients: RegistrationClient[] = [];

/** Writes the config of front end `n` (its own data directory, the shared database). */
function frontEndConfig(dir: string, n: number, url: string, tls: LoopbackDir['tls']): string {
  const file = join(dir, `front-${n}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      role: 'dp',
      dataDir: join(dir, `front-${n}`),
      store: { kind: 'postgres', url, poolSize: 2 },
      // Front ends share one key directory (docs/operations.md §13).
      keys: { dir: join(dir, 'made', 'keys') },
      listen: { udp: 0, tcp: 0, doh: 0, api: 0 },
      tls,
      registration: { ...TEST_REGISTRATION_LIMITS },
      log: { level: 'error' },
    }),
  );
  return file;
}

beforeAll(async () => {
  if (missing !== undefined) return;
  requireBuiltPackages();
  files = await createLoopbackDir('mimi-pg-front-ends');
  cluster = await startPostgres();
  const url = await cluster.createDatabase();
  // The zone as `init` makes it, then copied into the database (`mimi-discovery db copy`).
  const made = join(files.dir, 'made');
  const ds = await initServer(made, [PHONE_ZONE], {
    authkeys: [authkey('prover', PROVER.publicKey)],
  });
  zoneDs = ds.get(PHONE_ZONE) ?? expect.unreachable();
  const lmdb = await openLmdbStore({
    dataDir: storeDirectory(made),
    keys: defaultKeyDirectory(made),
  });
  await copyStoreToPg(lmdb, url);
  await lmdb.close();

  for (const n of [1, 2]) {
    fronts.push(await startDpProcess(frontEndConfig(files.dir, n, url, files.tls)));
  }
  const rootDir = join(files.dir, 'root');
  await initServer(rootDir, [APEX]);
  root = await serveServer('root', rootDir, files.tls);
  await delegate(root.store, APEX, {
    zone: PHONE_ZONE,
    nameservers: fronts.map((front, i) => ({
      name: `ns${i + 1}.${PHONE_ZONE}`,
      addresses: ['127.0.0.1'],
      doh: { port: Number(new URL(front.ports.doh ?? expect.unreachable()).port) },
    })),
    ds: [zoneDs],
  });
}, 180_000);

afterAll(async () => {
  for (const front of fronts) await killDpProcess(front);
  await Promise.all(clients.map((client) => client.close()));
  await root?.close();
  await cluster?.stop();
  files?.remove();
});

const clientOf = (front: DpProcess): RegistrationClient => {
  const client = createRegistrationClient({ url: front.ports.api, ca: files?.caPem ?? '' });
  clients.push(client);
  return client;
};

/** Publishes a mapping for `csi` through `front`'s registration API. */
async function publish(front: DpProcess, csi: Csi): Promise<Uint8Array> {
  const mapping = mappingBytes(attestAs(PROVER, csi, RECIPIENT), RECIPIENT);
  const answer = await answerOf(clientOf(front).publishMapping({ csi, mapping }));
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  return mapping;
}

/** Asks `front` over TCP for the MAP RRset of `csi`. */
function askMap(front: DpProcess, csi: Csi): Promise<Message> {
  return queryTcp(
    { host: '127.0.0.1', port: front.ports.tcp },
    buildQuery(csiToName(csi), 'MAP', { dnssecOk: true }),
  );
}

/** Whether `response` serves `mapping`, signed by a key the delegation's DS names. */
async function servesSigned(
  front: DpProcess,
  response: Message,
  mapping: Uint8Array,
): Promise<boolean> {
  const maps = response.answers.filter((rr) => rr.type === 'MAP');
  if (!maps.some((rr) => Buffer.from(rr.data).equals(Buffer.from(mapping)))) return false;
  const keys = await queryTcp(
    { host: '127.0.0.1', port: front.ports.tcp },
    buildQuery(PHONE_ZONE, 'DNSKEY'),
  );
  const dnskeys = keys.answers.flatMap((rr) => (rr.type === 'DNSKEY' ? [rr.data] : []));
  if (!dnskeys.some((key) => dsMatchesDnskey(PHONE_ZONE, zoneDs, key))) return false;
  const rrsig = response.answers.find((rr) => rr.type === 'RRSIG');
  const now = Math.floor(Date.now() / 1000);
  return rrsig?.type === 'RRSIG' && verifyRRset(maps, rrsig, dnskeys, now).kind === 'verified';
}

/** Whether `front` serves `mapping` for `csi`, signed, within {@link FRONT_END_LAG_MS} of now. */
async function servedSoon(front: DpProcess, csi: Csi, mapping: Uint8Array): Promise<boolean> {
  const start = Date.now();
  for (;;) {
    if (await servesSigned(front, await askMap(front, csi), mapping)) return true;
    if (Date.now() - start >= FRONT_END_LAG_MS) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe.skipIf(missing !== undefined)('two DP front ends over one PostgreSQL database', () => {
  it('serves a publish made through one front end from the other within a second', async () => {
    const [one, two] = fronts as [DpProcess, DpProcess];
    for (const [from, to, n] of [
      [one, two, 1],
      [two, one, 2],
    ] as const) {
      const csi = csiOf(n);
      // Asked once before: the answer the other front end caches must not outlive the publish.
      expect((await askMap(to, csi)).answers.filter((rr) => rr.type === 'MAP')).toEqual([]);
      const mapping = await publish(from, csi);
      expect(
        await servedSoon(to, csi, mapping),
        `served by the other front end within ${FRONT_END_LAG_MS} ms`,
      ).toBe(true);
    }
  });

  it('keeps serving, and taking publishes, when one front end is killed', async () => {
    const [one, two] = fronts as [DpProcess, DpProcess];
    const before = csiOf(10);
    const mapping = await publish(one, before);
    // Killed as soon as it acknowledged: the commit is in the database, the other hears of it.
    await killDpProcess(one);
    expect(await servedSoon(two, before, mapping)).toBe(true);

    const after = csiOf(11);
    const next = await publish(two, after);
    expect(await servesSigned(two, await askMap(two, after), next)).toBe(true);
    // A resolver that starts from the root finds both through the delegation, the dead front end
    // among its nameservers.
    const resolver = createResolver(
      resolverConfigFor(root ?? expect.unreachable(), files?.caPem ?? ''),
    );
    try {
      for (const csi of [before, after]) {
        expect((await resolver.discover(csi)).status, csi).toBe('found');
      }
    } finally {
      await resolver.close();
    }
    expect(two.stderr()).toBe('');
  });
});
