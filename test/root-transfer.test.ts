import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildQuery,
  computeDs,
  createTrustAnchor,
  createZoneKey,
  formatTrustAnchor,
  parseConfig,
  parseZoneFile,
  queryTcp,
  queryUdp,
  transferZone,
  transferZoneChanges,
  verifyZonemd,
  ZoneTransferError,
  type DnskeyData,
  type ResourceRecord,
} from '@mimi-discovery/common';
import {
  createMemoryStore,
  delegate,
  dpConfigSchema,
  startDp,
  type RunningDp,
} from '@mimi-discovery/authoritative';

/**
 * The root directory offers its zone by AXFR over TCP (RFC 5936), for resolvers that keep a
 * copy (RFC 8806): stock tools transfer it and check it as a whole (ZONEMD, RFC 8976) and every
 * signature; UDP, other zones and clients out of the allowed ranges are refused.
 */

const APEX = 'mimi.arpa';
const dir = mkdtempSync(join(tmpdir(), 'mimi-root-transfer-'));
const onPath = (tool: string): boolean =>
  spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

interface Server {
  readonly dp: RunningDp;
  readonly port: number;
  readonly dnskey: DnskeyData;
}

async function startRoot(
  extra: Record<string, unknown> = {},
  role: 'root' | 'dp' = 'root',
): Promise<Server> {
  const store = createMemoryStore();
  await store.addZone({
    origin: APEX,
    nameservers: [`ns1.${APEX}`],
    mname: `ns1.${APEX}`,
    rname: `hostmaster.${APEX}`,
  });
  await store.apply(APEX, [
    {
      op: 'put',
      name: `ns1.${APEX}`,
      type: 'A',
      records: [{ name: `ns1.${APEX}`, type: 'A', class: 'IN', ttl: 3600, data: '127.0.0.1' }],
    },
  ]);
  for (const [zone, address] of [
    [`4.4.e164.${APEX}`, '127.0.0.44'],
    [`example.com.email.${APEX}`, '127.0.0.45'],
  ] as const) {
    const key = createZoneKey(zone);
    await delegate(store, APEX, {
      zone,
      nameservers: [{ name: `ns1.${zone}`, addresses: [address], doh: { port: 8443 } }],
      ds: [computeDs(zone, key.dnskey)],
    });
  }
  const config = parseConfig(dpConfigSchema, {
    role,
    dataDir: dir,
    listen: { udp: 0, tcp: 0, admin: 0 },
    log: { level: 'error' },
    ...extra,
  });
  const dp = await startDp(config, { store });
  const dnskey = store.readRRset(APEX, APEX, 'DNSKEY')[0];
  if (dnskey?.type !== 'DNSKEY' || dp.dns?.tcp === undefined)
    throw new Error('the root did not start');
  return { dp, port: dp.dns.tcp.port, dnskey: dnskey.data };
}

let root: Server;
let anchorFile: string;
beforeAll(async () => {
  root = await startRoot();
  anchorFile = join(dir, 'root.key');
  writeFileSync(anchorFile, formatTrustAnchor(createTrustAnchor(APEX, [root.dnskey])));
});
afterAll(async () => {
  await root.dp.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs a tool without blocking the event loop: the servers under test answer in this process.
 */
function run(tool: string, args: string[]): Promise<{ status: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout }));
  });
}

/** A zone file of what a transfer tool printed: comments and the closing SOA left out. */
function zoneFileOf(output: string): string {
  const lines = output.split('\n').filter((line) => line.trim() !== '' && !line.startsWith(';'));
  const soas = lines.filter((line) => /\sSOA\s/.test(line));
  return `${lines.filter((line, i) => !(soas.length > 1 && line === soas.at(-1) && i === lines.lastIndexOf(line))).join('\n')}\n`;
}

function verifyWithLdns(zoneText: string): { status: number | null; output: string } {
  const file = join(dir, `axfr-${Math.random().toString(36).slice(2)}.zone`);
  writeFileSync(file, zoneText);
  const result = spawnSync('ldns-verify-zone', ['-k', anchorFile, '-ZZ', file], {
    encoding: 'utf8',
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('AXFR of the root zone over TCP', () => {
  it('transfers a zone that verifies as a whole against its ZONEMD', async () => {
    const result = await transferZone({ host: '127.0.0.1', port: root.port }, APEX);
    expect(result.soa.data.serial).toBeGreaterThan(1);
    expect(verifyZonemd(APEX, result.records).kind).toBe('verified');
    expect(result.records.some((rr) => rr.type === 'NS' && rr.name === `4.4.e164.${APEX}`)).toBe(
      true,
    );
    expect(result.records.some((rr) => rr.type === 'RRSIG')).toBe(true);
  });

  it.skipIf(!onPath('dig') || !onPath('ldns-verify-zone'))(
    'dig AXFR gets the zone, which ldns-verify-zone -ZZ accepts (signatures, NSEC3 chain, ZONEMD)',
    async () => {
      const dig = await run('dig', [
        '+tcp',
        '+nocmd',
        '+nostats',
        '-p',
        String(root.port),
        '@127.0.0.1',
        APEX,
        'AXFR',
      ]);
      expect(dig.status).toBe(0);
      expect(dig.stdout).toContain('ZONEMD');
      const verified = verifyWithLdns(zoneFileOf(dig.stdout));
      expect(verified.output).toContain('Zone is verified and complete');
      expect(verified.status).toBe(0);
      // A changed glue address: the ZONEMD no longer matches.
      const tampered = verifyWithLdns(zoneFileOf(dig.stdout).replace('127.0.0.44', '127.0.0.99'));
      expect(tampered.status).not.toBe(0);
      expect(tampered.output).toMatch(/ZONEMD/);
    },
  );

  it.skipIf(!onPath('kdig') || !onPath('ldns-verify-zone'))(
    'kdig AXFR gets the same zone',
    async () => {
      const kdig = await run('kdig', [
        '-p',
        String(root.port),
        '@127.0.0.1',
        APEX,
        'AXFR',
        '+nocomments',
        '+nostats',
      ]);
      expect(kdig.status).toBe(0);
      const verified = verifyWithLdns(zoneFileOf(kdig.stdout));
      expect(verified.output).toContain('Zone is verified and complete');
      const records: ResourceRecord[] = parseZoneFile(zoneFileOf(kdig.stdout));
      expect(verifyZonemd(APEX, records).kind).toBe('verified');
    },
  );

  it('follows a delegation added while it runs: a new serial and a new ZONEMD', async () => {
    const before = await transferZone({ host: '127.0.0.1', port: root.port }, APEX);
    const zone = `1.e164.${APEX}`;
    await delegate(root.dp.store, APEX, {
      zone,
      nameservers: [{ name: `ns1.${zone}`, addresses: ['127.0.0.46'] }],
      ds: [computeDs(zone, createZoneKey(zone).dnskey)],
    });
    const after = await transferZone({ host: '127.0.0.1', port: root.port }, APEX);
    expect(after.soa.data.serial).toBeGreaterThan(before.soa.data.serial);
    expect(verifyZonemd(APEX, after.records).kind).toBe('verified');
    expect(after.records.some((rr) => rr.type === 'NS' && rr.name === zone)).toBe(true);
  });

  it('is refused over UDP (RFC 5936 §4.2), where IXFR gets the SOA alone (RFC 1995 §2)', async () => {
    const udp = await queryUdp({ host: '127.0.0.1', port: root.port }, buildQuery(APEX, 'AXFR'), {
      tcpFallback: false,
    });
    expect(udp.rcode).toBe('REFUSED');
    expect(udp.answers).toEqual([]);
    const ixfr = buildQuery(APEX, 'IXFR');
    const serial = root.dp.store.zoneInfo(APEX)?.serial ?? 0;
    ixfr.authorities = [
      ...root.dp.store
        .readRRset(APEX, APEX, 'SOA')
        .map((soa) =>
          soa.type === 'SOA' ? { ...soa, data: { ...soa.data, serial: serial - 1 } } : soa,
        ),
    ];
    const soaOnly = await queryUdp({ host: '127.0.0.1', port: root.port }, ixfr, {
      tcpFallback: false,
    });
    expect(soaOnly.rcode).toBe('NOERROR');
    expect(soaOnly.answers.map((rr) => rr.type)).toEqual(['SOA']);
    // Without the client's SOA in the authority section: FORMERR (RFC 1995 §3).
    const bare = await queryTcp({ host: '127.0.0.1', port: root.port }, buildQuery(APEX, 'IXFR'));
    expect(bare.rcode).toBe('FORMERR');
  });

  it('answers IXFR over TCP: the SOA alone when current, the whole zone when the journal does not reach back', async () => {
    const serial = root.dp.store.zoneInfo(APEX)?.serial ?? 0;
    const current = await transferZoneChanges({ host: '127.0.0.1', port: root.port }, APEX, serial);
    expect(current.kind).toBe('current');
    const old = await transferZoneChanges({ host: '127.0.0.1', port: root.port }, APEX, 1);
    expect(['incremental', 'full']).toContain(old.kind);
    if (old.kind === 'full') expect(verifyZonemd(APEX, old.records).kind).toBe('verified');
  });

  it('is refused for a name that is not the apex', async () => {
    await expect(
      transferZone({ host: '127.0.0.1', port: root.port }, `4.4.e164.${APEX}`),
    ).rejects.toMatchObject({
      code: 'ERR_TRANSFER_REFUSED',
    });
  });

  it('counts transfers in the metrics', async () => {
    const text = await (await fetch(`${root.dp.admin?.url ?? ''}/metrics`)).text();
    expect(text).toMatch(/authoritative_transfers_total\{type="axfr",outcome="ok"\} [1-9]/);
    expect(text).toMatch(/authoritative_transfers_total\{type="axfr",outcome="refused"\} [1-9]/);
    expect(text).toMatch(/authoritative_transfers_total\{type="ixfr-current",outcome="ok"\} [1-9]/);
  });
});

describe('AXFR restricted by config', () => {
  it('is refused to a client outside transfer.allow, and served inside it', async () => {
    const closed = await startRoot({ transfer: { allow: ['192.0.2.0/24'] } });
    const open = await startRoot({ transfer: { allow: ['127.0.0.0/8', '::1'] } });
    try {
      const error = await transferZone({ host: '127.0.0.1', port: closed.port }, APEX).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ZoneTransferError);
      expect(error).toMatchObject({ code: 'ERR_TRANSFER_REFUSED' });
      const result = await transferZone({ host: '127.0.0.1', port: open.port }, APEX);
      expect(verifyZonemd(APEX, result.records).kind).toBe('verified');
    } finally {
      await closed.dp.close();
      await open.dp.close();
    }
  });

  it("is refused by a DP without a transfer config, and a DP's config cannot offer it without a TSIG key", async () => {
    const dp = await startRoot({}, 'dp');
    try {
      await expect(transferZone({ host: '127.0.0.1', port: dp.port }, APEX)).rejects.toMatchObject({
        code: 'ERR_TRANSFER_REFUSED',
      });
      expect(dp.dp.store.readRRset(APEX, APEX, 'ZONEMD')).toEqual([]);
    } finally {
      await dp.dp.close();
    }
    // A DP's zones name CSIs: offered only to secondaries holding a key (test/secondaries.test.ts).
    expect(() => parseConfig(dpConfigSchema, { role: 'dp', dataDir: dir, transfer: {} })).toThrow(
      /transfer\.keys: a DP offers its zones by transfer only to secondaries with a TSIG key/,
    );
    expect(() =>
      parseConfig(dpConfigSchema, {
        role: 'root',
        dataDir: dir,
        transfer: { allow: ['10.0.0.0/33'] },
      }),
    ).toThrow(/CIDR/);
  });
});
