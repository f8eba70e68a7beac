import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
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
} from '@mimi-discovery/common';
import { PHONE_ZONE, authkey } from './helpers/network.js';
import { initServer, writeLoopbackTls } from '../examples/loopback-network.js';
import {
  killDpProcess,
  requireBuiltPackages,
  startDpProcess as startDp,
  writeDpProcessConfig,
  type DpProcess,
} from './helpers/dp-process.js';
import { createRegistrationClient, type RegistrationClient } from '@mimi-discovery/authoritative';
import { answerOf, attestAs, mappingBytes } from './helpers/registration.js';

// Design §8–§9: a write is acknowledged only once it is durable, so nothing acknowledged is lost
// when the process dies. A DP runs as a child process; a stream of publishes goes through its
// API; the process gets SIGKILL while publishes are in flight; restarted on the same data
// directory, it must serve every mapping it acknowledged, signed with the same zone key.
// A kill cannot prove that a flush happened (the page cache survives a killed process), so a
// second test watches the system calls: each acknowledgement leaves after an fdatasync of the
// data file that began after its request came in.

/** Publishes in flight at a time. */
const CONCURRENCY = 8;
/** The process is killed when this many publishes have been acknowledged. */
const KILL_AFTER_ACKS = 120;
/** Upper bound of publishes tried (the numbers +44 20 7946 0000 to 0999). */
const MAX_PUBLISHES = 1000;

const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
/** An independent prover that the operator lists at the +44 apex. */
const PROVER = keyPairFromSeed(seed(0x31));
const RECIPIENT = keyPairFromSeed(seed(0x32));

/** The n-th CSI of the stream: tel:+44207946nnnn. */
const csiOf = (n: number): Csi => parseCsi(`tel:+44207946${String(n).padStart(4, '0')}`);

let dir: string;
let configFile: string;
let caPem: string;
const clients: RegistrationClient[] = [];
/** A client of the API at `url`, closed after the file. */
const clientOf = (url: string): RegistrationClient => {
  const client = createRegistrationClient({ url, ca: caPem });
  clients.push(client);
  return client;
};
/** The DS of the zone's key, as the parent would publish it. */
let zoneDs: DsData;
const running = new Set<DpProcess>();

beforeAll(async () => {
  requireBuiltPackages();
  dir = mkdtempSync(join(tmpdir(), 'mimi-dp-kill-'));
  const dataDir = join(dir, 'dp');
  const ds = await initServer(dataDir, [PHONE_ZONE], {
    authkeys: [authkey('prover', PROVER.publicKey)],
  });
  zoneDs = ds.get(PHONE_ZONE) ?? expect.unreachable();
  const tls = await writeLoopbackTls(dataDir);
  caPem = tls.caPem;
  configFile = writeDpProcessConfig(dir, dataDir, tls.tls);
});

afterAll(async () => {
  // Under strace the child is strace: the DP itself is killed by its own pid.
  for (const dp of running) await killDpProcess(dp);
  await Promise.all(clients.map((client) => client.close()));
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('a DP killed with SIGKILL in the middle of a stream of publishes', () => {
  it('serves every acknowledged mapping after a restart on the same data directory', async () => {
    const first = await startDp(configFile);
    running.add(first);
    const target = clientOf(first.ports.api);
    const acknowledged = new Map<Csi, Uint8Array>();
    const cutOff = new Map<Csi, Uint8Array>();
    let next = 0;
    let inFlight = 0;
    let inFlightAtKill = -1;
    let killed = false;

    const worker = async (): Promise<void> => {
      while (!killed && next < MAX_PUBLISHES) {
        const csi = csiOf(next++);
        const bytes = mappingBytes(attestAs(PROVER, csi, RECIPIENT), RECIPIENT);
        inFlight++;
        let status: number;
        try {
          status = (await answerOf(target.publishMapping({ csi, mapping: bytes }))).status;
        } catch {
          // The connection died with the process: not acknowledged.
          cutOff.set(csi, bytes);
          return;
        } finally {
          inFlight--;
        }
        if (status === 201) acknowledged.set(csi, bytes);
        else if (!killed) throw new Error(`publish of ${csi} answered ${status}`);
        if (!killed && acknowledged.size >= KILL_AFTER_ACKS) {
          killed = true;
          inFlightAtKill = inFlight;
          first.child.kill('SIGKILL');
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(killed, 'the stream reached the kill point').toBe(true);
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    running.delete(first);
    // Publishes were under way when the process died: the kill hit mid-stream.
    expect(inFlightAtKill).toBeGreaterThan(0);
    expect(acknowledged.size).toBeGreaterThanOrEqual(KILL_AFTER_ACKS);

    const second = await startDp(configFile);
    running.add(second);
    const lost: string[] = [];
    const unsigned: string[] = [];
    const now = Math.floor(Date.now() / 1000);
    const keyResponse = await queryTcp(
      { host: '127.0.0.1', port: second.ports.tcp },
      buildQuery(PHONE_ZONE, 'DNSKEY'),
    );
    const dnskeys = keyResponse.answers.flatMap((rr) => (rr.type === 'DNSKEY' ? [rr.data] : []));
    expect(dnskeys.some((key) => dsMatchesDnskey(PHONE_ZONE, zoneDs, key))).toBe(true);
    const csis = [...acknowledged.keys()];
    for (let i = 0; i < csis.length; i += CONCURRENCY) {
      await Promise.all(
        csis.slice(i, i + CONCURRENCY).map(async (csi) => {
          const response = await queryTcp(
            { host: '127.0.0.1', port: second.ports.tcp },
            buildQuery(csiToName(csi), 'MAP', { dnssecOk: true }),
          );
          const maps = response.answers.filter((rr) => rr.type === 'MAP');
          const served = maps.map((rr) => Buffer.from(rr.data).toString('hex'));
          const expected = Buffer.from(acknowledged.get(csi) ?? []).toString('hex');
          if (response.rcode !== 'NOERROR' || !served.includes(expected)) lost.push(csi);
          // Served as signed data of the same zone key: the DS held by the parent still fits.
          const rrsig = response.answers.find((rr) => rr.type === 'RRSIG');
          if (
            rrsig?.type !== 'RRSIG' ||
            verifyRRset(maps, rrsig, dnskeys, now).kind !== 'verified'
          ) {
            unsigned.push(csi);
          }
        }),
      );
    }
    expect(lost, `acknowledged but not served after the restart: ${lost.join(', ')}`).toEqual([]);
    expect(unsigned, 'served without a valid RRSIG').toEqual([]);

    // A client whose publish was cut off retries it: applied or not before the kill, it succeeds.
    const retryTarget = clientOf(second.ports.api);
    for (const [csi, bytes] of cutOff) {
      const retried = await answerOf(retryTarget.publishMapping({ csi, mapping: bytes }));
      expect(retried.status, `retry of ${csi}: ${JSON.stringify(retried.body)}`).toBe(201);
    }

    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    running.delete(second);
    expect(second.stderr()).toBe('');
  });
});

const STRACE_INSTALLED = spawnSync('sh', ['-c', 'command -v strace']).status === 0;
// Containers without CAP_SYS_PTRACE have strace but cannot trace.
const STRACE =
  STRACE_INSTALLED && spawnSync('strace', ['-f', '-e', 'trace=none', 'true']).status === 0;
if (!STRACE_INSTALLED) {
  console.warn('strace not installed (Debian package strace): skipping the flush-order check');
} else if (!STRACE) {
  console.warn('strace cannot trace here (ptrace not permitted): skipping the flush-order check');
}

/** One syscall of interest in an strace log: when it started and, for a flush, ended. */
interface Traced {
  readonly start: number;
  readonly end: number;
}

/**
 * Reads an `strace -f -yy -ttt -T` log: the flushes of LMDB's data file (fdatasync, fsync,
 * msync) and, per client port of the API, the first TLS application-data record read (the
 * request) and written (the response). With TLS 1.2 the record type is in clear: 0x17
 * (`\27\3\3` in strace's escapes) is application data, handshake records are 0x16.
 */
function parseTrace(text: string): {
  flushes: Traced[];
  requests: Map<number, Traced>;
  responses: Map<number, Traced>;
} {
  const flushes: Traced[] = [];
  const requests = new Map<number, Traced>();
  const responses = new Map<number, Traced>();
  const unfinished = new Map<string, number>();
  const pendingIo = new Map<string, { kind: string; port: number; start: number }>();
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(\d+\.\d+) (.*)$/.exec(line);
    if (!m) continue;
    const [, pid = '', tsText = '', call = ''] = m;
    const ts = Number(tsText);
    const flush = /^(fdatasync|fsync|msync)\(\d+<[^>]*data\.mdb>/.exec(call);
    if (flush) {
      if (call.endsWith('<unfinished ...>')) unfinished.set(pid, ts);
      else {
        const duration = Number(/<(\d+\.\d+)>$/.exec(call)?.[1] ?? 0);
        flushes.push({ start: ts, end: ts + duration });
      }
      continue;
    }
    if (/^<\.\.\. (fdatasync|fsync|msync) resumed>/.test(call)) {
      const start = unfinished.get(pid);
      if (start !== undefined) flushes.push({ start, end: ts });
      unfinished.delete(pid);
      continue;
    }
    // A read or write that another thread's syscall interrupts in the log is split in two:
    // `read(fd<TCP:[…]>, <unfinished ...>` and later `<... read resumed>"\27\3\3…"`.
    const split =
      /^(read|write|writev)\(\d+<TCP:\[127\.0\.0\.1:\d+->127\.0\.0\.1:(\d+)\]>,\s+<unfinished \.\.\.>/.exec(
        call,
      );
    if (split) {
      pendingIo.set(pid, { kind: split[1] ?? '', port: Number(split[2]), start: ts });
      continue;
    }
    const resumed = /^<\.\.\. (read|write|writev) resumed>[^"]*"(\\27\\3\\3)?/.exec(call);
    if (resumed) {
      const io = pendingIo.get(pid);
      pendingIo.delete(pid);
      if (io === undefined || resumed[2] === undefined || /= -1 /.test(call)) continue;
      const table = io.kind === 'read' ? requests : responses;
      if (!table.has(io.port)) table.set(io.port, { start: io.start, end: ts });
      continue;
    }
    const io =
      /^(read|write|writev)\(\d+<TCP:\[127\.0\.0\.1:\d+->127\.0\.0\.1:(\d+)\]>, [^"]*"(\\27\\3\\3)?/.exec(
        call,
      );
    if (!io || io[3] === undefined || /= -1 /.test(call)) continue;
    const port = Number(io[2]);
    const table = io[1] === 'read' ? requests : responses;
    if (!table.has(port)) table.set(port, { start: ts, end: ts });
  }
  return { flushes, requests, responses };
}

/** POSTs a mapping over its own TLS 1.2 connection; resolves with the status and client port. */
function publishOverTls12(
  apiUrl: string,
  caPem: string,
  csi: Csi,
  mapping: Uint8Array,
): Promise<{ status: number; port: number }> {
  const body = JSON.stringify({ csi, mapping: Buffer.from(mapping).toString('base64url') });
  return new Promise((resolve, reject) => {
    let port = 0;
    const req = httpsRequest(
      `${apiUrl}/v1/mappings`,
      {
        method: 'POST',
        ca: caPem,
        maxVersion: 'TLSv1.2',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
        },
      },
      (res) => {
        res.resume();
        res.once('end', () => resolve({ status: res.statusCode ?? 0, port }));
      },
    );
    req.once('socket', (socket) => socket.once('connect', () => (port = socket.localPort ?? 0)));
    req.once('error', reject);
    req.end(body);
  });
}

describe('the order of flush and acknowledgement', () => {
  it.skipIf(!STRACE)(
    'flushes the data file after reading each publish and before answering it (strace)',
    async () => {
      const trace = join(dir, 'strace.log');
      const dp = await startDp(configFile, [
        '-f',
        '-yy',
        '-ttt',
        '-T',
        '-e',
        'trace=fdatasync,fsync,msync,read,write,writev',
        '-o',
        trace,
      ]);
      running.add(dp);
      const acknowledged: number[] = [];
      // One at a time, so that no flush of another publish can be taken for this one's.
      for (let n = 0; n < 5; n++) {
        const csi = csiOf(MAX_PUBLISHES + n);
        const mapping = mappingBytes(attestAs(PROVER, csi, RECIPIENT), RECIPIENT);
        const { status, port } = await publishOverTls12(dp.ports.api, caPem, csi, mapping);
        expect(status).toBe(201);
        acknowledged.push(port);
      }
      // SIGTERM to the DP itself: strace exits with it.
      process.kill(dp.ports.pid, 'SIGTERM');
      await dp.exited;
      running.delete(dp);

      const { flushes, requests, responses } = parseTrace(readFileSync(trace, 'utf8'));
      for (const port of acknowledged) {
        const request = requests.get(port);
        const response = responses.get(port);
        expect(request, `request from port ${port} in the trace`).toBeDefined();
        expect(response, `response to port ${port} in the trace`).toBeDefined();
        const covering = flushes.filter(
          (f) => f.start >= (request?.start ?? Infinity) && f.end <= (response?.start ?? 0),
        );
        expect(
          covering.length,
          `a flush between request and response on port ${port}`,
        ).toBeGreaterThan(0);
      }
    },
  );
});
