import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  PADDING_OPTION_CODE,
  RESPONSE_PADDING_BLOCK_OCTETS,
  buildQuery,
  createLocalCa,
  decodeMessage,
  encodeMessage,
  queryTcp,
  queryUdp,
  type Message,
} from '@mimi-discovery/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningDp } from '../src/index.js';
import {
  TWICE_OVER_EACH,
  askTwiceOverEach,
  dohPost,
  readQueryLog,
} from '../../../test/helpers/query-log.js';
import { startMemoryDp, writeTlsFiles } from './memory-dp.js';
import { NUMBER, ORIGIN, putMap } from './store-battery.js';

// The query log of a DP (design §10) and the padding of its DoH answers (RFC 8467), on a real
// server over UDP, TCP and DoH.

const root = mkdtempSync(join(tmpdir(), 'mimi-dp-query-log-'));
let ca: Awaited<ReturnType<typeof createLocalCa>>;
let tls: { cert: string; key: string };

beforeAll(async () => {
  ca = await createLocalCa();
  tls = await writeTlsFiles(ca, root);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A DP serving the +44 zone with a MAP at NUMBER, its query log as `queryLog` says. */
function dpWithLog(queryLog: unknown): Promise<RunningDp> {
  return startMemoryDp(
    root,
    { listen: { udp: 0, tcp: 0, doh: 0, admin: 0 }, tls, queryLog, log: { level: 'silent' } },
    async (store) => {
      await store.apply(ORIGIN, [putMap(NUMBER, 5)]);
    },
  );
}

const paddingOf = (message: Message): Uint8Array[] =>
  (message.edns?.options ?? []).filter((o) => o.code === PADDING_OPTION_CODE).map((o) => o.data);

async function metric(dp: RunningDp, name: string): Promise<number> {
  const text = await (await fetch(`${dp.admin?.url ?? ''}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
}

describe('the query log of a DP', () => {
  it('has a line for every query over UDP, TCP and DoH, answers from the cache included, and no peer', async () => {
    const path = join(root, 'queries.jsonl');
    const dp = await dpWithLog({ path });
    try {
      const udp = { host: '127.0.0.1', port: dp.dns?.udp?.port ?? 0 };
      const tcp = { host: '127.0.0.1', port: dp.dns?.tcp?.port ?? 0 };
      const url = dp.dns?.doh?.url ?? '';
      const ask = (): Message => buildQuery(NUMBER, 'MAP', { dnssecOk: true });
      // Each transport twice: the second answer of each comes from the answer cache.
      for (const response of await askTwiceOverEach({ udp, tcp, dohUrl: url }, ca.certPem, ask)) {
        expect(response.rcode).toBe('NOERROR');
      }
      const refused = await queryUdp(udp, buildQuery('example.com', 'A'));
      expect(refused.rcode).toBe('REFUSED');
      await dp.queryLog?.flush();
      const lines = readQueryLog(path);
      expect(lines.map((l) => [l['transport'], l['cached'] ?? false])).toEqual([
        ...TWICE_OVER_EACH,
        ['udp', false],
      ]);
      for (const line of lines.slice(0, 6)) {
        expect(line).toMatchObject({ name: NUMBER, type: 'MAP', rcode: 'NOERROR' });
        expect(Object.keys(line).slice(0, 4)).toEqual(['t', 'name', 'type', 'transport']);
        expect(Date.parse(String(line['t']))).toBeGreaterThan(0);
      }
      expect(lines[6]).toMatchObject({ name: 'example.com', type: 'A', rcode: 'REFUSED' });
      expect(lines.every((l) => !('peer' in l))).toBe(true);
      expect(readFileSync(path, 'utf8')).not.toContain('127.0.0.1');
      expect(await metric(dp, 'authoritative_query_log_lines_total')).toBe(7);
      expect(await metric(dp, 'authoritative_query_log_dropped_lines_total')).toBe(0);
    } finally {
      await dp.close();
    }
  });

  it('writes the client address only when configured with peer', async () => {
    const path = join(root, 'with-peer.jsonl');
    const dp = await dpWithLog({ path, peer: true });
    try {
      const udp = { host: '127.0.0.1', port: dp.dns?.udp?.port ?? 0 };
      await queryUdp(udp, buildQuery(NUMBER, 'MAP'));
      await queryUdp(udp, buildQuery(NUMBER, 'MAP'));
    } finally {
      // Closing writes what the log holds.
      await dp.close();
    }
    expect(readQueryLog(path)).toMatchObject([
      { name: NUMBER, transport: 'udp', peer: '127.0.0.1' },
      { name: NUMBER, transport: 'udp', cached: true, peer: '127.0.0.1' },
    ]);
  });

  it.each([
    ['a full disk', '/dev/full'],
    ['a path that cannot be opened', join(root, 'not-a-directory', 'queries.jsonl')],
  ])('keeps answering on %s, and counts the lines it drops', async (_what, path) => {
    writeFileSync(join(root, 'not-a-directory'), '');
    const dp = await dpWithLog({ path });
    try {
      const udp = { host: '127.0.0.1', port: dp.dns?.udp?.port ?? 0 };
      const tcp = { host: '127.0.0.1', port: dp.dns?.tcp?.port ?? 0 };
      for (let i = 0; i < 10; i++) {
        expect((await queryUdp(udp, buildQuery(NUMBER, 'MAP'))).rcode).toBe('NOERROR');
        expect((await queryTcp(tcp, buildQuery(`${i}.${ORIGIN}`, 'MAP'))).rcode).toBe('NOERROR');
      }
      await dp.queryLog?.flush();
      expect(dp.queryLog?.stats()).toEqual({ written: 0, dropped: 20 });
      expect(await metric(dp, 'authoritative_query_log_dropped_lines_total')).toBe(20);
    } finally {
      await dp.close();
    }
  });
});

describe('EDNS padding of a DP (RFC 7830, RFC 8467)', () => {
  it('pads every DoH response to a query with EDNS to a multiple of 468 octets, cached or not', async () => {
    const dp = await dpWithLog(undefined);
    try {
      const url = dp.dns?.doh?.url ?? '';
      for (const name of [NUMBER, `9.9.${ORIGIN}`, ORIGIN]) {
        for (const type of ['MAP', 'SOA', 'DNSKEY'] as const) {
          const query = encodeMessage(buildQuery(name, type, { dnssecOk: true }));
          // Twice: the second answer comes from the answer cache, padded on its way out too.
          for (let i = 0; i < 2; i++) {
            const body = await dohPost(url, query, ca.certPem);
            expect(body.length % RESPONSE_PADDING_BLOCK_OCTETS, `${name} ${type}`).toBe(0);
            const response = decodeMessage(body);
            expect(response.rcode).toBe('NOERROR');
            const [padding] = paddingOf(response);
            expect(padding?.every((octet) => octet === 0)).toBe(true);
          }
        }
      }
    } finally {
      await dp.close();
    }
  });

  it('answers a DoH query without EDNS without OPT, so unpadded (RFC 6891 §7)', async () => {
    const dp = await dpWithLog(undefined);
    try {
      const plain: Message = buildQuery(NUMBER, 'MAP');
      delete plain.edns;
      const body = await dohPost(dp.dns?.doh?.url ?? '', encodeMessage(plain), ca.certPem);
      const response = decodeMessage(body);
      expect(response.rcode).toBe('NOERROR');
      expect(response.edns).toBeUndefined();
    } finally {
      await dp.close();
    }
  });

  it('does not pad over UDP or TCP, even for a query that carries a Padding option', async () => {
    const dp = await dpWithLog(undefined);
    try {
      const padded = buildQuery(NUMBER, 'MAP', { dnssecOk: true });
      padded.edns = {
        ...(padded.edns ?? expect.unreachable()),
        options: [{ code: PADDING_OPTION_CODE, data: new Uint8Array(40) }],
      };
      const at = { host: '127.0.0.1', port: dp.dns?.udp?.port ?? 0 };
      const tcpAt = { host: '127.0.0.1', port: dp.dns?.tcp?.port ?? 0 };
      for (const response of [await queryUdp(at, padded), await queryTcp(tcpAt, padded)]) {
        expect(response.rcode).toBe('NOERROR');
        expect(response.edns).toBeDefined();
        expect(paddingOf(response)).toEqual([]);
      }
    } finally {
      await dp.close();
    }
  });
});
