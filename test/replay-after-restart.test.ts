import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildQuery,
  createMaprefRequest,
  csiToName,
  encodeMaprefRequest,
  keyPairFromSeed,
  parseCsi,
  queryTcp,
  queryUdp,
  type Csi,
  type Message,
} from '@mimi-discovery/common';
import { PHONE_ZONE, authkey } from './helpers/network.js';
import { initServer, writeLoopbackTls } from '../examples/loopback-network.js';
import {
  killDpProcess,
  requireBuiltPackages,
  startDpProcess,
  writeDpProcessConfig,
  type DpProcess,
} from './helpers/dp-process.js';
import { createRegistrationClient, type RegistrationClient } from '@mimi-discovery/authoritative';
import {
  answerOf,
  attestAs,
  errorCode,
  mappingBytes,
  mappingOf,
  nowSeconds,
  removeMapping,
  revoke,
} from './helpers/registration.js';

// Issue 10, "Durable anti-replay" (R9, R10): published mappings are public, so after a removal or
// a revocation anyone can send the old bytes again. The DP keeps what it removed in its store,
// so a new process on the same data directory still refuses them: 409, and no MAP served. The
// first process is killed with SIGKILL right after the acknowledgements, so nothing but what was
// durable at the acknowledgement carries over.

const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
/** An independent prover and a CSIP, both listed at the +44 apex. */
const PROVER = keyPairFromSeed(seed(0x41));
const CSIP = keyPairFromSeed(seed(0x42));
const ALICE = keyPairFromSeed(seed(0x43));
const BOB = keyPairFromSeed(seed(0x44));
const CAROL = keyPairFromSeed(seed(0x45));

const REMOVED = parseCsi('tel:+442079461401');
const REVOKED = parseCsi('tel:+442079461402');
const REFERRED = parseCsi('tel:+442079461403');
const TARGET = 'carol.msp.example.com.email.mimi.arpa';

let dir: string;
let configFile: string;
let caPem: string;
const running = new Set<DpProcess>();
const clients: RegistrationClient[] = [];

beforeAll(async () => {
  requireBuiltPackages();
  dir = mkdtempSync(join(tmpdir(), 'mimi-replay-'));
  const dataDir = join(dir, 'dp');
  await initServer(dataDir, [PHONE_ZONE], {
    authkeys: [authkey('prover', PROVER.publicKey), authkey('csip', CSIP.publicKey)],
  });
  const tls = await writeLoopbackTls(dataDir);
  caPem = tls.caPem;
  configFile = writeDpProcessConfig(dir, dataDir, tls.tls);
});

afterAll(async () => {
  for (const dp of running) await killDpProcess(dp);
  await Promise.all(clients.map((client) => client.close()));
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

async function start(): Promise<{ dp: DpProcess; api: RegistrationClient }> {
  const dp = await startDpProcess(configFile);
  running.add(dp);
  const api = createRegistrationClient({ url: dp.ports.api, ca: caPem });
  clients.push(api);
  return { dp, api };
}

/** The DP's MAP answer for `csi`, over UDP and TCP. */
async function askMap(dp: DpProcess, csi: Csi): Promise<Message[]> {
  const server = { host: '127.0.0.1', port: dp.ports.tcp };
  const query = buildQuery(csiToName(csi), 'MAP', { dnssecOk: true });
  return [await queryUdp({ ...server, port: dp.ports.udp }, query), await queryTcp(server, query)];
}

const maps = (answer: Message): number => answer.answers.filter((rr) => rr.type === 'MAP').length;

describe('a DP restarted on the same data directory', () => {
  it('refuses removed, revoked and replayed objects sent again, and serves no MAP for them', async () => {
    const first = await start();
    const mapping = (csi: Csi, recipient: typeof ALICE): Uint8Array =>
      mappingBytes(attestAs(PROVER, csi, recipient), recipient);

    // Alice publishes and removes; Bob publishes and the CSIP revokes his number; Carol points
    // her number at an MSP's zone.
    const removed = mapping(REMOVED, ALICE);
    expect(
      (await answerOf(first.api.publishMapping({ csi: REMOVED, mapping: removed }))).status,
    ).toBe(201);
    const removal = await removeMapping(first.api, REMOVED, ALICE, 1);
    expect(removal.status, JSON.stringify(removal.body)).toBe(200);
    const revoked = mapping(REVOKED, BOB);
    expect(
      (await answerOf(first.api.publishMapping({ csi: REVOKED, mapping: revoked }))).status,
    ).toBe(201);
    // Attestations carry nbf = the second they were made: "before" one second later covers it.
    const before = nowSeconds() + 1;
    const revocation = await revoke(first.api, REVOKED, CSIP, before);
    expect(revocation.status, JSON.stringify(revocation.body)).toBe(200);
    const carolAtt = attestAs(PROVER, REFERRED, CAROL);
    expect((await answerOf(first.api.publishMapping(mappingOf(carolAtt, CAROL)))).status).toBe(201);
    const request = encodeMaprefRequest(
      createMaprefRequest(
        { csi: REFERRED, target: TARGET, iat: nowSeconds(), att: carolAtt },
        CAROL.secretKey,
      ),
    );
    expect((await answerOf(first.api.publishMapref(request))).status).toBe(201);
    for (const csi of [REMOVED, REVOKED]) {
      for (const answer of await askMap(first.dp, csi)) expect(maps(answer)).toBe(0);
    }

    first.dp.child.kill('SIGKILL');
    expect(await first.dp.exited).toEqual({ code: null, signal: 'SIGKILL' });
    running.delete(first.dp);

    const second = await start();
    const replays: Array<[string, Uint8Array, Csi | 'mapref', string]> = [
      ['the removed mapping', removed, REMOVED, 'ERR_STALE_SEQ'],
      ['the revoked mapping', revoked, REVOKED, 'ERR_REVOKED'],
      ['the applied MapRef request', request, 'mapref', 'ERR_REPLAYED'],
    ];
    for (const [what, bytes, kind, code] of replays) {
      const response =
        kind === 'mapref'
          ? await answerOf(second.api.publishMapref(bytes))
          : await answerOf(second.api.publishMapping({ csi: kind, mapping: bytes }));
      expect(response.status, `${what}: ${JSON.stringify(response.body)}`).toBe(409);
      expect(errorCode(response), what).toBe(code);
    }
    for (const csi of [REMOVED, REVOKED]) {
      for (const answer of await askMap(second.dp, csi)) {
        expect(answer.rcode).toBe('NOERROR');
        expect(maps(answer), `a MAP of ${csi} after the replay`).toBe(0);
      }
    }

    // What the records do not cover still goes through: Alice's next mapping, a new holder of
    // Bob's number (attested after the revocation).
    const next = mappingBytes(attestAs(PROVER, REMOVED, ALICE), ALICE, { seq: 2 });
    expect(
      (await answerOf(second.api.publishMapping({ csi: REMOVED, mapping: next }))).status,
    ).toBe(201);
    const newHolder = mappingBytes(attestAs(PROVER, REVOKED, CAROL, before), CAROL);
    const accepted = await answerOf(
      second.api.publishMapping({ csi: REVOKED, mapping: newHolder }),
    );
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(201);

    second.dp.child.kill('SIGTERM');
    expect(await second.dp.exited).toEqual({ code: 0, signal: null });
    running.delete(second.dp);
    expect(second.dp.stderr()).toBe('');
  });
});
