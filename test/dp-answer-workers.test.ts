import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  buildQuery,
  csiToName,
  keyPairFromSeed,
  parseCsi,
  parseConfig,
  queryTcp,
  queryUdp,
  type Message,
} from '@mimi-discovery/common';
import {
  MAX_ANSWER_WORKERS,
  createMemoryStore,
  createRegistrationClient,
  dpConfigSchema,
  startDp,
  workerShare,
  type DpConfig,
  type RegistrationClient,
  type RunningDp,
} from '@mimi-discovery/authoritative';
import { PHONE_ZONE, TEST_REGISTRATION_LIMITS, authkey } from './helpers/network.js';
import { initServer, writeLoopbackTls } from '../examples/loopback-network.js';
import { answerOf, attestAs, mappingBytes, removeMapping } from './helpers/registration.js';
import { requireBuiltPackages } from './helpers/dp-process.js';

// A DP with `answerWorkers: 2`: the process that runs startDp stays the writer (registration
// API, admin port) and two node:cluster workers answer UDP and TCP on the same ports. These
// tests use real sockets on 127.0.0.1 and real worker processes (the compiled worker entry).

const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
const PROVER = keyPairFromSeed(seed(0x41));
const RECIPIENT = keyPairFromSeed(seed(0x42));
/** The bound on a worker's confirmation of a write in these tests (`answerWorkerAckMs`). */
const ACK_MS = 300;
/** UDP queries sent right after an acknowledged write, each from a socket of its own. */
const QUERIES_AFTER_WRITE = 60;

let dir: string;
let caPem: string;
let baseConfig: Record<string, unknown>;
let dp: RunningDp | undefined;
let client: RegistrationClient | undefined;

const udpAddress = (): { host: string; port: number } => ({
  host: '127.0.0.1',
  port: dp?.dns?.udp?.port ?? expect.unreachable(),
});
const tcpAddress = (): { host: string; port: number } => ({
  host: '127.0.0.1',
  port: dp?.dns?.tcp?.port ?? expect.unreachable(),
});

/** The MAP records of an answer, as hex. */
const mapsOf = (response: Message): string[] =>
  response.answers.flatMap((rr) =>
    rr.type === 'MAP' ? [Buffer.from(rr.data).toString('hex')] : [],
  );

/** `count` UDP queries for the MAP of `csi`, each from a new socket (a new source port). */
async function mapsOverUdp(csi: string, count: number): Promise<string[][]> {
  const query = buildQuery(csiToName(parseCsi(csi)), 'MAP');
  return Promise.all(
    Array.from({ length: count }, async () =>
      mapsOf(await queryUdp(udpAddress(), query, { tcpFallback: false, timeoutMs: 3000 })),
    ),
  );
}

/** Waits (bounded) until `check` holds, polling. */
async function until(check: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Whether a process with this id still runs. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function metricsText(): Promise<string> {
  const response = await fetch(`${dp?.admin?.url ?? expect.unreachable()}/metrics`);
  return response.text();
}

/** The value of an unlabelled sample, or the sum of a metric's samples. */
function sampleSum(text: string, name: string): number {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

beforeAll(async () => {
  requireBuiltPackages();
  dir = mkdtempSync(join(tmpdir(), 'mimi-answer-workers-'));
  const dataDir = join(dir, 'dp');
  await initServer(dataDir, [PHONE_ZONE], { authkeys: [authkey('prover', PROVER.publicKey)] });
  const tls = await writeLoopbackTls(dataDir);
  caPem = tls.caPem;
  baseConfig = {
    role: 'dp',
    dataDir,
    listen: { udp: 0, tcp: 0, api: 0, admin: 0 },
    tls: tls.tls,
    registration: { ...TEST_REGISTRATION_LIMITS },
    // Every query of these tests comes from 127.0.0.1.
    limits: { rrl: { exempt: ['127.0.0.1'] } },
    log: { level: 'silent' },
  };
  dp = await startDp(
    parseConfig(dpConfigSchema, { ...baseConfig, answerWorkers: 2, answerWorkerAckMs: ACK_MS }),
  );
  client = createRegistrationClient({ url: dp.api?.url ?? expect.unreachable(), ca: caPem });
});

afterAll(async () => {
  await client?.close();
  await dp?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('a DP with answer workers', () => {
  it('answers over UDP from many source ports and over TCP, from more than one worker', async () => {
    const workers = dp?.answerWorkers ?? expect.unreachable();
    expect(workers.live()).toBe(2);
    expect(new Set(workers.pids()).size).toBe(2);
    const before = workers.queries().reduce((a, b) => a + b, 0);
    const soa = buildQuery(PHONE_ZONE, 'SOA');
    const udp = await Promise.all(
      Array.from({ length: 100 }, () => queryUdp(udpAddress(), soa, { tcpFallback: false })),
    );
    const tcp = await Promise.all(Array.from({ length: 10 }, () => queryTcp(tcpAddress(), soa)));
    for (const response of [...udp, ...tcp]) {
      expect(response.rcode).toBe('NOERROR');
      expect(response.answers.some((rr) => rr.type === 'SOA')).toBe(true);
    }
    // The workers report their counts every second: both answered (TCP connections are handed
    // out in turn, so each worker got some).
    await until(
      () =>
        workers.queries().every((n) => n > 0) &&
        workers.queries().reduce((a, b) => a + b, 0) - before >= 110,
      'both workers to report their queries',
    );
    // Their counts reach the writer's /metrics (answers computed, and answers from the cache).
    const text = await metricsText();
    expect(
      sampleSum(text, 'authoritative_queries_total') +
        sampleSum(text, 'authoritative_answer_cache_hits_total'),
    ).toBeGreaterThanOrEqual(110);
    expect(sampleSum(text, 'authoritative_answer_workers')).toBe(2);
  });

  it('serves a publication in every worker as soon as it is acknowledged, and a removal likewise', async () => {
    const api = client ?? expect.unreachable();
    const csi = 'tel:+442079460101';
    const mapping = mappingBytes(attestAs(PROVER, csi, RECIPIENT), RECIPIENT);
    const published = await answerOf(api.publishMapping({ csi, mapping }));
    expect(published.status).toBe(201);
    const hex = Buffer.from(mapping).toString('hex');
    const served = await mapsOverUdp(csi, QUERIES_AFTER_WRITE);
    expect(served.filter((maps) => !maps.includes(hex))).toEqual([]);

    const removed = await removeMapping(api, csi, RECIPIENT, 1);
    expect(removed.status).toBe(200);
    const after = await mapsOverUdp(csi, QUERIES_AFTER_WRITE);
    expect(after.filter((maps) => maps.length > 0)).toEqual([]);
  });

  it('serves every one of concurrent publications in every worker once each is acknowledged', async () => {
    const api = client ?? expect.unreachable();
    const csis = Array.from(
      { length: 12 },
      (_, i) => `tel:+4420794602${String(i).padStart(2, '0')}`,
    );
    // Published at once: their writes commit together and share the workers' renewals; each
    // is checked right after its own 201, while the others may still be in flight.
    const problems = await Promise.all(
      csis.map(async (csi) => {
        const mapping = mappingBytes(attestAs(PROVER, csi, RECIPIENT), RECIPIENT);
        const response = await answerOf(api.publishMapping({ csi, mapping }));
        if (response.status !== 201) return `${csi}: ${response.status}`;
        const hex = Buffer.from(mapping).toString('hex');
        const served = await mapsOverUdp(csi, 10);
        return served.every((maps) => maps.includes(hex)) ? undefined : `${csi}: not served`;
      }),
    );
    expect(problems.filter((p) => p !== undefined)).toEqual([]);
  });

  it('replaces a worker killed with SIGKILL, which serves what was written before', async () => {
    const workers = dp?.answerWorkers ?? expect.unreachable();
    const api = client ?? expect.unreachable();
    const csi = 'tel:+442079460102';
    const mapping = mappingBytes(attestAs(PROVER, csi, RECIPIENT), RECIPIENT);
    expect((await answerOf(api.publishMapping({ csi, mapping }))).status).toBe(201);
    expect((await removeMapping(api, csi, RECIPIENT, 1)).status).toBe(200);

    // Every worker has answered (the first test): what each counted is in the writer's /metrics.
    const answered = (text: string): number =>
      sampleSum(text, 'authoritative_queries_total') +
      sampleSum(text, 'authoritative_answer_cache_hits_total');
    const counted = answered(await metricsText());
    const [victim, other] = workers.pids();
    process.kill(victim ?? expect.unreachable(), 'SIGKILL');
    await until(
      () => workers.live() === 2 && !workers.pids().includes(victim ?? 0),
      'the killed worker to be replaced',
    );
    expect(workers.pids()).toContain(other);
    const text = await metricsText();
    expect(sampleSum(text, 'authoritative_answer_worker_restarts_total')).toBe(1);
    // The killed worker's counts stay counted: a counter never goes down.
    expect(answered(text)).toBeGreaterThanOrEqual(counted);
    // The removal stays removed in the new worker as in the old one.
    const after = await mapsOverUdp(csi, QUERIES_AFTER_WRITE);
    expect(after.filter((maps) => maps.length > 0)).toEqual([]);
    const again = 'tel:+442079460103';
    const next = mappingBytes(attestAs(PROVER, again, RECIPIENT), RECIPIENT);
    expect((await answerOf(api.publishMapping({ csi: again, mapping: next }))).status).toBe(201);
    const hex = Buffer.from(next).toString('hex');
    const served = await mapsOverUdp(again, QUERIES_AFTER_WRITE);
    expect(served.filter((maps) => !maps.includes(hex))).toEqual([]);
  });

  it('does not let a stopped worker hold a publication beyond the bound: it is killed and replaced', async () => {
    const workers = dp?.answerWorkers ?? expect.unreachable();
    const api = client ?? expect.unreachable();
    await until(() => workers.live() === 2, 'two answering workers');
    const [stopped] = workers.pids();
    process.kill(stopped ?? expect.unreachable(), 'SIGSTOP');
    const csi = 'tel:+442079460104';
    const mapping = mappingBytes(attestAs(PROVER, csi, RECIPIENT), RECIPIENT);
    const sent = performance.now();
    const publish = answerOf(api.publishMapping({ csi, mapping }));
    // The publication resolves: the stopped worker is killed (a stopped process dies of SIGKILL),
    // and not before the bound: the write waited for the worker's confirmation.
    expect((await publish).status).toBe(201);
    expect(performance.now() - sent).toBeGreaterThanOrEqual(ACK_MS);
    expect(alive(stopped ?? 0)).toBe(false);
    await until(() => workers.live() === 2, 'the stopped worker to be replaced');
    const hex = Buffer.from(mapping).toString('hex');
    const served = await mapsOverUdp(csi, QUERIES_AFTER_WRITE);
    expect(served.filter((maps) => !maps.includes(hex))).toEqual([]);
  });

  it('kills no worker that confirmed while the writer was blocked past the bound', async () => {
    const workers = dp?.answerWorkers ?? expect.unreachable();
    await until(() => workers.live() === 2, 'two answering workers');
    const pids = workers.pids();
    const restarts = sampleSum(await metricsText(), 'authoritative_answer_worker_restarts_total');
    const renewed = workers.renew();
    // The renewal goes out at the end of this turn; then the writer's event loop is blocked well
    // past answerWorkerAckMs while the workers confirm.
    await new Promise((resolve) => setImmediate(resolve));
    const blockedUntil = Date.now() + 4 * ACK_MS;
    while (Date.now() < blockedUntil) {
      // busy: the confirmations wait to be read behind the bound's timer
    }
    await renewed;
    expect(workers.pids()).toEqual(pids);
    expect(pids.every(alive)).toBe(true);
    expect(sampleSum(await metricsText(), 'authoritative_answer_worker_restarts_total')).toBe(
      restarts,
    );
  });

  it('leaves no worker process after close()', async () => {
    const running = dp ?? expect.unreachable();
    const pids = running.answerWorkers?.pids() ?? [];
    expect(pids).toHaveLength(2);
    await client?.close();
    client = undefined;
    await running.close();
    dp = undefined;
    expect(pids.filter(alive)).toEqual([]);
  });
});

describe('the answerWorkers config', () => {
  const parse = (extra: Record<string, unknown>): DpConfig =>
    parseConfig(dpConfigSchema, { ...baseConfig, ...extra });

  it('refuses 0 and more than MAX_ANSWER_WORKERS', () => {
    expect(() => parse({ answerWorkers: 0 })).toThrow(/answerWorkers: must be at least 1/);
    expect(() => parse({ answerWorkers: MAX_ANSWER_WORKERS + 1 })).toThrow(
      `answerWorkers: must be at most ${MAX_ANSWER_WORKERS}`,
    );
    expect(() => parse({ answerWorkers: 'all' })).toThrow(
      `answerWorkers: must be a whole number from 1 to ${MAX_ANSWER_WORKERS}, or "auto"`,
    );
    expect(parse({ answerWorkers: MAX_ANSWER_WORKERS }).answerWorkers).toBe(MAX_ANSWER_WORKERS);
    expect(parse({ answerWorkers: 'auto' }).answerWorkers).toBe('auto');
    expect(parse({}).answerWorkers).toBe(1);
  });

  it('refuses what the workers cannot carry: the query log, the PostgreSQL store', () => {
    expect(() => parse({ answerWorkers: 2, queryLog: { path: join(dir, 'q.log') } })).toThrow(
      /queryLog.*answerWorkers/s,
    );
    expect(() =>
      parse({ answerWorkers: 'auto', store: { kind: 'postgres', url: 'postgresql://x/y' } }),
    ).toThrow(/PostgreSQL store is not allowed with answerWorkers/);
    expect(
      parse({ answerWorkers: 1, queryLog: { path: join(dir, 'q.log') } }).queryLog,
    ).toBeDefined();
  });

  it('refuses a store or clock given in code, which workers cannot share', async () => {
    const config = parse({ answerWorkers: 2 });
    const store = createMemoryStore();
    try {
      await expect(startDp(config, { store })).rejects.toThrow(ConfigError);
      await expect(startDp(config, { store })).rejects.toThrow(/answerWorkers/);
    } finally {
      await store.close();
    }
  });

  it('divides the per-client budgets among the workers, a budget that is on staying on', () => {
    const config = parse({
      limits: {
        rrl: { responsesPerSecond: 200, denialsPerSecond: 1, errorsPerSecond: 0 },
        tcp: { maxConnections: 256, connectionsPerClient: 32 },
      },
    });
    const share = workerShare(config, 4);
    expect(share.limits.rrl.responsesPerSecond).toBe(50);
    expect(share.limits.rrl.denialsPerSecond).toBe(1);
    expect(share.limits.rrl.errorsPerSecond).toBe(0);
    expect(share.limits.tcp.maxConnections).toBe(64);
    expect(share.limits.tcp.connectionsPerClient).toBe(8);
    // DoH stays on the writer with its whole budget.
    expect(share.limits.dohClients).toEqual(config.limits.dohClients);
  });
});
