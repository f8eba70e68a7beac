import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DNS_MESSAGE_MEDIA_TYPE,
  buildQuery,
  createLocalCa,
  decodeMessage,
  encodeMessage,
  queryTcp,
  type Message,
} from '@mimi-discovery/common';
import type { RunningDp } from '../src/index.js';
import { startMemoryDp, writeTlsFiles } from './memory-dp.js';
import { ORIGIN } from './store-battery.js';

// The per-client limits of a running DP (`dp-limits.ts`): Response Rate Limiting of its UDP
// answers, with slip, and the query rate of its DoH; TCP is left to its connection limits. The
// DP's clock does not move, so no bucket refills during a test and every count is exact.

const run = promisify(execFile);
const root = mkdtempSync(join(tmpdir(), 'mimi-dp-limits-'));
let provider: RunningDp;
const agents: Agent[] = [];
let caPem: string;

beforeAll(async () => {
  const ca = await createLocalCa();
  caPem = ca.certPem;
  provider = await startMemoryDp(root, {
    listen: { udp: 0, tcp: 0, doh: 0, admin: 0 },
    tls: await writeTlsFiles(ca, root),
    limits: {
      rrl: {
        responsesPerSecond: 5,
        denialsPerSecond: 5,
        errorsPerSecond: 5,
        burstSeconds: 1,
        slip: 3,
      },
      dohClients: { queriesPerSecond: 1, queryBurst: 10 },
    },
    log: { level: 'silent' },
  });
});

afterAll(async () => {
  await Promise.all(agents.map((agent) => agent.close()));
  await provider?.close();
  rmSync(root, { recursive: true, force: true });
});

const udpPort = (): number => provider.dns?.udp?.port ?? 0;

async function metrics(): Promise<string> {
  return (await fetch(`${provider.admin?.url ?? ''}/metrics`)).text();
}

/** The value of one sample of the metrics, 0 when absent. */
async function sample(line: string): Promise<number> {
  const text = await metrics();
  const at = text.split('\n').find((l) => l.startsWith(`${line} `));
  return at === undefined ? 0 : Number(at.slice(line.length + 1));
}

/**
 * Sends `queries` from `from` over UDP at once, and returns what came back once the server has
 * counted `limited` responses as limited (RRL sends nothing for a dropped one).
 */
async function flood(from: string, queries: Message[], limited: number): Promise<Message[]> {
  const before =
    (await sample('authoritative_rate_limited_total{frontend="udp",action="drop"}')) +
    (await sample('authoritative_rate_limited_total{frontend="udp",action="slip"}'));
  const socket = createSocket('udp4');
  const received: Message[] = [];
  try {
    socket.on('message', (datagram) => received.push(decodeMessage(datagram)));
    await new Promise<void>((resolve) => socket.bind({ address: from }, resolve));
    for (const query of queries) socket.send(encodeMessage(query), udpPort(), '127.0.0.1');
    for (let i = 0; i < 500; i++) {
      const now =
        (await sample('authoritative_rate_limited_total{frontend="udp",action="drop"}')) +
        (await sample('authoritative_rate_limited_total{frontend="udp",action="slip"}'));
      if (now - before >= limited && received.length >= queries.length - limited + slips(limited))
        break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return received;
  } finally {
    socket.close();
  }
}

/** Slips among `limited` limited responses of one new stream, with `slip` 3. */
const slips = (limited: number): number => Math.floor(limited / 3);

describe('Response Rate Limiting of UDP answers', () => {
  it('drops most of a flood from one client and slips every 3rd limited answer as TC', async () => {
    const queries = Array.from({ length: 60 }, (_, i) => buildQuery(ORIGIN, 'SOA', { id: i }));
    const received = await flood('127.0.0.1', queries, 55);
    const answered = received.filter((m) => !m.flags.tc);
    const slipped = received.filter((m) => m.flags.tc);
    expect(answered).toHaveLength(5);
    expect(answered.every((m) => m.answers.some((rr) => rr.type === 'SOA'))).toBe(true);
    expect(slipped).toHaveLength(18);
    for (const slip of slipped) {
      expect(slip.answers).toEqual([]);
      expect(slip.authorities).toEqual([]);
      expect(slip.questions).toEqual([{ name: ORIGIN, type: 'SOA', class: 'IN' }]);
    }
    expect(await sample('authoritative_rate_limited_total{frontend="udp",action="drop"}')).toBe(37);
    expect(await sample('authoritative_rate_limited_total{frontend="udp",action="slip"}')).toBe(18);
  });

  it('answers another client as if nothing happened', async () => {
    const received = await flood('127.0.0.2', [buildQuery(ORIGIN, 'SOA')], 0);
    expect(received).toHaveLength(1);
    expect(received[0]?.flags.tc).toBe(false);
    expect(received[0]?.answers.some((rr) => rr.type === 'SOA')).toBe(true);
  });

  it('gets dig its answer over TCP when its UDP query is slipped', async () => {
    const { stdout } = await run('dig', [
      '+tries=3',
      '+timeout=1',
      '+norec',
      '-b',
      '127.0.0.1',
      '-p',
      String(udpPort()),
      '@127.0.0.1',
      ORIGIN,
      'SOA',
    ]);
    expect(stdout).toContain('Truncated, retrying in TCP mode');
    expect(stdout).toContain('status: NOERROR');
    expect(stdout).toMatch(
      new RegExp(`^${ORIGIN.replace(/\./g, '\\.')}\\.\\s+\\d+\\s+IN\\s+SOA\\s`, 'm'),
    );
    // From the other client, dig is answered over UDP.
    const other = await run('dig', [
      '+tries=1',
      '+norec',
      '-b',
      '127.0.0.2',
      '-p',
      String(udpPort()),
      '@127.0.0.1',
      ORIGIN,
      'SOA',
    ]);
    expect(other.stdout).not.toContain('Truncated');
    expect(other.stdout).toContain('status: NOERROR');
  });

  it('counts the denials of every name under the zone as one stream', async () => {
    const queries = Array.from({ length: 30 }, (_, i) =>
      buildQuery(`${i}.9.9.${ORIGIN}`, 'MAP', { id: i }),
    );
    const received = await flood('127.0.0.3', queries, 25);
    expect(received.filter((m) => !m.flags.tc)).toHaveLength(5);
    expect(received.filter((m) => m.flags.tc)).toHaveLength(8);
  });

  it('leaves TCP answers alone', async () => {
    const tcp = provider.dns?.tcp ?? { host: '', port: 0 };
    for (let i = 0; i < 20; i++) {
      const answer = await queryTcp(tcp, buildQuery(ORIGIN, 'SOA'));
      expect(answer.flags.tc).toBe(false);
      expect(answer.answers.some((rr) => rr.type === 'SOA')).toBe(true);
    }
  });
});

describe('the DoH query rate', () => {
  async function doh(from: string): Promise<{ status: number; retryAfter: unknown }> {
    const agent = new Agent({ localAddress: from, connect: { ca: caPem }, allowH2: true });
    agents.push(agent);
    const response = await request(provider.dns?.doh?.url ?? '', {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': DNS_MESSAGE_MEDIA_TYPE },
      body: encodeMessage(buildQuery(ORIGIN, 'SOA')),
    });
    await response.body.arrayBuffer();
    return { status: response.statusCode, retryAfter: response.headers['retry-after'] };
  }

  it('answers 429 with Retry-After past a client burst, and serves another client', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await doh('127.0.0.4')).status);
    expect(statuses).toEqual(Array(10).fill(200));
    expect(await doh('127.0.0.4')).toEqual({ status: 429, retryAfter: '1' });
    expect((await doh('127.0.0.5')).status).toBe(200);
  });

  it('counts the refusals by front end and action, never by client', async () => {
    const text = await metrics();
    expect(text).toContain('authoritative_rate_limited_total{frontend="doh",action="429"} 1\n');
    expect(text).toMatch(/^authoritative_rate_limit_entries\{table="rrl"\} \d+$/m);
    expect(text).toMatch(/^authoritative_rate_limit_entries\{table="doh"\} 2$/m);
    expect(text).not.toMatch(/127\.0\.0\./);
  });
});
