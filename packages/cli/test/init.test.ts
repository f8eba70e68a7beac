import { statSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseConfig, parseZoneFile } from '@mimi-discovery/common';
import { dpConfigSchema } from '@mimi-discovery/authoritative';
import { openLmdbStore, storeDirectory } from '@mimi-discovery/authoritative';
import { afterAll, describe, expect, it } from 'vitest';
import { createCliFixture } from './fixture.js';

const cli = createCliFixture('init');
afterAll(() => cli.cleanup());

interface InitJson {
  role: string;
  config: string;
  dataDir: string;
  zones: Array<{
    zone: string;
    nameserver: string;
    address?: string;
    nameservers: Array<{ name: string; addresses: string[] }>;
    soa: { mname: string; rname: string };
    keyTag: number;
    ds: Array<{
      zone: string;
      keyTag: number;
      algorithm: number;
      digestType: number;
      digest: string;
    }>;
  }>;
  tls?: { cert: string; key: string; ca?: string; caCreated?: boolean };
  outbox?: string;
}

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('init root', () => {
  it('writes a valid root config and a store holding the signed apex zone with glue', async () => {
    const report = await cli.json<InitJson>([
      'init',
      'root',
      '--dir',
      'root',
      '--udp',
      '0',
      '--tcp',
      '0',
    ]);
    expect(report.role).toBe('root');
    expect(report.config).toBe(join(cli.dir, 'root', 'config.json'));
    const raw = cli.readJson<unknown>('root/config.json');
    const config = parseConfig(dpConfigSchema, raw);
    expect(config).toMatchObject({
      role: 'root',
      dataDir: join(cli.dir, 'root'),
      apex: 'mimi.arpa',
      listen: { host: '127.0.0.1', udp: 0, tcp: 0, doh: null, admin: null },
    });
    expect(config.tls).toBeUndefined();

    const [zone] = report.zones;
    expect(zone).toMatchObject({
      zone: 'mimi.arpa',
      nameserver: 'ns1.mimi.arpa',
      address: '127.0.0.1',
    });
    const store = await openLmdbStore({ dataDir: storeDirectory(join(cli.dir, 'root')) });
    try {
      expect(store.listZones()).toEqual(['mimi.arpa']);
      expect(store.zoneInfo('mimi.arpa')?.keyTag).toBe(zone?.keyTag);
      expect(store.readRRset('mimi.arpa', 'mimi.arpa', 'NS').map((r) => r.data)).toEqual([
        'ns1.mimi.arpa',
      ]);
      expect(store.readRRset('mimi.arpa', 'ns1.mimi.arpa', 'A').map((r) => r.data)).toEqual([
        '127.0.0.1',
      ]);
      const soa = store.readRRset('mimi.arpa', 'mimi.arpa', 'SOA')[0];
      expect(soa?.type === 'SOA' && soa.data.rname).toBe('hostmaster.mimi.arpa');
    } finally {
      await store.close();
    }
  });

  it('prints the zone, its key tag and its DS in presentation form', async () => {
    const out = await cli.ok([
      'init',
      'root',
      '--dir',
      'root-text',
      '--apex',
      'Mimi.Test.',
      '--udp',
      '0',
    ]);
    expect(out).toMatch(/^created the root directory in /);
    const keyTag =
      /zone mimi\.test: nameserver ns1\.mimi\.test \(127\.0\.0\.1\), key tag (\d+)/.exec(out)?.[1];
    expect(keyTag).toBeDefined();
    const dsLine = out.split('\n').find((l) => l.includes(' IN DS '));
    const [ds] = parseZoneFile(dsLine?.trim() ?? '');
    expect(ds).toMatchObject({
      name: 'mimi.test',
      type: 'DS',
      data: { keyTag: Number(keyTag), algorithm: 15, digestType: 2 },
    });
  });

  it('creates a local CA and a server certificate for the nameserver when DoH is asked for', async () => {
    const report = await cli.json<InitJson>([
      'init',
      'root',
      '--dir',
      'root-tls',
      '--udp',
      '0',
      '--doh',
      '0',
      '--ca-dir',
      'ca',
    ]);
    expect(report.tls).toEqual({
      cert: join(cli.dir, 'root-tls', 'server-cert.pem'),
      key: join(cli.dir, 'root-tls', 'server-key.pem'),
      ca: join(cli.dir, 'ca', 'ca.pem'),
      caCreated: true,
    });
    expect(mode(join(cli.dir, 'ca', 'ca-key.pem'))).toBe(0o600);
    expect(mode(join(cli.dir, 'ca'))).toBe(0o700);
    expect(mode(join(cli.dir, 'root-tls', 'server-key.pem'))).toBe(0o600);
    const ca = new X509Certificate(readFileSync(join(cli.dir, 'ca', 'ca.pem')));
    const cert = new X509Certificate(readFileSync(join(cli.dir, 'root-tls', 'server-cert.pem')));
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.subjectAltName).toContain('DNS:localhost');
    expect(cert.subjectAltName).toContain('DNS:ns1.mimi.arpa');
    expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
    const config = parseConfig(dpConfigSchema, cli.readJson<unknown>('root-tls/config.json'));
    expect(config.tls).toEqual({ cert: report.tls?.cert, key: report.tls?.key });
  });

  it('refuses to overwrite an existing server', async () => {
    const result = await cli.run(['init', 'root', '--dir', 'root', '--udp', '0']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(
      /^mimi-discovery: .*config\.json exists: refusing to overwrite .* \(ERR_CLI_EXISTS\)\n$/,
    );
  });

  it('refuses DoH without TLS material, before creating anything', async () => {
    const result = await cli.run(['init', 'root', '--dir', 'no-tls', '--doh', '0']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/--doh needs TLS.*\(ERR_USAGE\)\n$/);
    expect(() => statSync(join(cli.dir, 'no-tls'))).toThrow();
  });
});

describe('init dp', () => {
  it('creates one zone per range, the outbox channel and the registration API config', async () => {
    const report = await cli.json<InitJson>([
      'init',
      'dp',
      '--dir',
      'dp',
      '--range',
      '+44',
      '--range',
      '@Example.COM',
      '--udp',
      '0',
      '--api',
      '0',
      '--ca-dir',
      'ca',
    ]);
    expect(report.zones.map((z) => [z.zone, z.nameserver])).toEqual([
      ['4.4.e164.mimi.arpa', 'ns1.4.4.e164.mimi.arpa'],
      ['example.com.email.mimi.arpa', 'ns1.example.com.email.mimi.arpa'],
    ]);
    expect(report.tls?.caCreated).toBe(false);
    const config = parseConfig(dpConfigSchema, cli.readJson<unknown>('dp/config.json'));
    expect(config.role).toBe('dp');
    expect(config.listen.api).toBe(0);
    expect(config.registration?.channels.outbox?.path).toBe(join(cli.dir, 'dp', 'outbox.jsonl'));
    const store = await openLmdbStore({ dataDir: storeDirectory(join(cli.dir, 'dp')) });
    try {
      expect(store.listZones()).toEqual(['4.4.e164.mimi.arpa', 'example.com.email.mimi.arpa']);
      expect(
        store.readRRset('4.4.e164.mimi.arpa', 'ns1.4.4.e164.mimi.arpa', 'A').map((r) => r.data),
      ).toEqual(['127.0.0.1']);
      // The DP's prover key is listed at every apex (design §4).
      const authkeys = store.readRRset('4.4.e164.mimi.arpa', '4.4.e164.mimi.arpa', 'AUTHKEY');
      expect(authkeys.some((r) => r.type === 'AUTHKEY' && r.data.role === 'prover')).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('publishes the DoH endpoint of the nameserver when the DoH port is fixed', async () => {
    await cli.ok([
      'init',
      'dp',
      '--dir',
      'dp-doh',
      '--range',
      '+1',
      '--doh',
      '8443',
      '--address',
      '192.0.2.7',
      '--ca-dir',
      'ca',
    ]);
    const store = await openLmdbStore({ dataDir: storeDirectory(join(cli.dir, 'dp-doh')) });
    try {
      const [svcb] = store.readRRset('1.e164.mimi.arpa', '_dns.ns1.1.e164.mimi.arpa', 'SVCB');
      expect(svcb?.type === 'SVCB' && svcb.data.params).toMatchObject({
        port: 8443,
        dohpath: '/dns-query{?dns}',
      });
      expect(
        store.readRRset('1.e164.mimi.arpa', 'ns1.1.e164.mimi.arpa', 'A').map((r) => r.data),
      ).toEqual(['192.0.2.7']);
    } finally {
      await store.close();
    }
  });

  it('refuses a DP without a range', async () => {
    const result = await cli.run(['init', 'dp', '--dir', 'dp-none']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/at least one --range.*\(ERR_USAGE\)\n$/);
  });

  it('writes mspZone for a DP run by an MSP, its zone the range given', async () => {
    const ca = join(cli.dir, 'msp-ca.pem');
    writeFileSync(ca, 'PEM');
    await cli.ok([
      'init',
      'dp',
      '--dir',
      'dp-msp',
      '--range',
      '@chat.example',
      '--msp-resolver',
      'https://127.0.0.1:8453/dns-query',
      '--msp-resolver-ca',
      'msp-ca.pem',
    ]);
    const raw = JSON.parse(readFileSync(join(cli.dir, 'dp-msp', 'config.json'), 'utf8')) as {
      mspZone?: unknown;
    };
    expect(raw.mspZone).toEqual({
      zone: 'chat.example.email.mimi.arpa',
      resolver: 'https://127.0.0.1:8453/dns-query',
      ca,
    });
    expect(parseConfig(dpConfigSchema, raw).mspZone?.authkeyCacheEntries).toBe(1024);
  });

  it.each([
    [
      ['--range', '+44', '--msp-resolver-ca', 'x.pem'],
      /--msp-resolver-ca goes with --msp-resolver/,
    ],
    [
      ['--range', '+44', '--range', '@chat.example', '--msp-resolver', 'udp://127.0.0.1:53'],
      /several --range: name the MSP's with --msp-zone/,
    ],
    [
      ['--range', '+44', '--msp-resolver', 'udp://127.0.0.1:53', '--msp-zone', '@chat.example'],
      /--msp-zone @chat.example is not one of the --range given/,
    ],
    [
      [
        '--range',
        '+44',
        '--msp-resolver',
        'https://r.example/dns-query',
        '--msp-resolver-ca',
        'none.pem',
      ],
      /--msp-resolver-ca .*none\.pem does not exist/,
    ],
    [['--range', '+44', '--msp-resolver', 'udp://192.0.2.1:53'], /only over loopback/],
  ])('refuses %j, creating nothing', async (flags, message) => {
    const result = await cli.run(['init', 'dp', '--dir', 'dp-msp-bad', ...flags]);
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(message);
    expect(existsSync(join(cli.dir, 'dp-msp-bad', 'config.json'))).toBe(false);
  });

  it('takes the MSP zone among several ranges with --msp-zone', async () => {
    await cli.ok([
      'init',
      'dp',
      '--dir',
      'dp-msp-two',
      '--range',
      '+44',
      '--range',
      '@chat.example',
      '--msp-resolver',
      'tcp://127.0.0.1:53',
      '--msp-zone',
      '@chat.example',
    ]);
    const raw = JSON.parse(readFileSync(join(cli.dir, 'dp-msp-two', 'config.json'), 'utf8')) as {
      mspZone?: unknown;
    };
    expect(raw.mspZone).toEqual({
      zone: 'chat.example.email.mimi.arpa',
      resolver: 'tcp://127.0.0.1:53',
    });
  });
});

describe('init with several nameservers', () => {
  const ZONE = '4.4.e164.mimi.arpa';

  it('lists every nameserver at the apex, with glue and DoH endpoint for those inside the zone', async () => {
    const report = await cli.json<InitJson>([
      'init',
      'dp',
      '--dir',
      'dp-multi',
      '--range',
      '+44',
      '--udp',
      '0',
      '--doh',
      '8443',
      '--ca-dir',
      'ca',
      '--ns',
      `NS1.${ZONE}.=192.0.2.1,2001:db8::1`,
      '--ns',
      `ns2.${ZONE}=198.51.100.2`,
      '--ns',
      'ns.dp.example',
      '--soa-contact',
      'John.Doe@Example.ORG',
      '--soa-primary',
      'hidden.dp.example',
    ]);
    const nameservers = [
      { name: `ns1.${ZONE}`, addresses: ['192.0.2.1', '2001:db8::1'] },
      { name: `ns2.${ZONE}`, addresses: ['198.51.100.2'] },
      { name: 'ns.dp.example', addresses: [] },
    ];
    expect(report.zones[0]).toMatchObject({
      zone: ZONE,
      nameserver: `ns1.${ZONE}`,
      address: '192.0.2.1',
      nameservers,
      soa: { mname: 'hidden.dp.example', rname: 'john\\.doe.example.org' },
    });
    const cert = new X509Certificate(readFileSync(join(cli.dir, 'dp-multi', 'server-cert.pem')));
    expect(cert.subjectAltName).toContain(`DNS:ns2.${ZONE}`);
    expect(cert.subjectAltName).toContain('IP Address:198.51.100.2');

    const store = await openLmdbStore({ dataDir: storeDirectory(join(cli.dir, 'dp-multi')) });
    try {
      const data = (name: string, type: 'NS' | 'A' | 'AAAA'): string[] =>
        store.readRRset(ZONE, name, type).map((r) => String(r.data));
      expect(data(ZONE, 'NS').sort()).toEqual(nameservers.map((ns) => ns.name).sort());
      expect(data(`ns1.${ZONE}`, 'A')).toEqual(['192.0.2.1']);
      expect(data(`ns1.${ZONE}`, 'AAAA')).toEqual(['2001:db8::1']);
      expect(data(`ns2.${ZONE}`, 'A')).toEqual(['198.51.100.2']);
      // The DoH endpoints of the nameservers inside the zone, and of no other.
      const svcb = store
        .readZone(ZONE)
        .flatMap((r) => (r.type === 'SVCB' ? [`${r.name} ${r.data.params.port}`] : []));
      expect(svcb.sort()).toEqual([`_dns.ns1.${ZONE} 8443`, `_dns.ns2.${ZONE} 8443`]);
      const [soa] = store.readRRset(ZONE, ZONE, 'SOA');
      expect(soa?.type === 'SOA' && [soa.data.mname, soa.data.rname]).toEqual([
        'hidden.dp.example',
        'john\\.doe.example.org',
      ]);
    } finally {
      await store.close();
    }
  });

  it("issues a certificate for the nameservers' names only with --no-cert-addresses", async () => {
    await cli.json<InitJson>([
      'init',
      'dp',
      '--dir',
      'dp-names-only',
      '--range',
      '+44',
      '--udp',
      '0',
      '--doh',
      '8443',
      '--ca-dir',
      'ca',
      '--no-cert-addresses',
      '--ns',
      `ns1.${ZONE}=192.0.2.1`,
      '--ns',
      'ns.dp.example',
    ]);
    const cert = new X509Certificate(
      readFileSync(join(cli.dir, 'dp-names-only', 'server-cert.pem')),
    );
    expect(cert.subjectAltName).toBe(`DNS:ns1.${ZONE}, DNS:ns.dp.example`);
  });

  it('prints each nameserver of the zone, and which have no glue', async () => {
    const out = await cli.ok([
      'init',
      'root',
      '--dir',
      'root-multi',
      '--udp',
      '0',
      '--ns',
      'a.mimi.arpa=192.0.2.1',
      '--ns',
      'b.ns.example',
    ]);
    expect(out).toMatch(
      /^zone mimi\.arpa: nameservers a\.mimi\.arpa \(192\.0\.2\.1\), b\.ns\.example \(no glue\), key tag \d+$/m,
    );
  });

  it.each([
    [
      ['--ns', `ns1.${ZONE}=192.0.2.1`, '--ns', `ns2.${ZONE}`],
      /inside the zone .* needs its address as glue/,
    ],
    [['--ns', `ns1.${ZONE}=192.0.2.1`, '--ns', `NS1.${ZONE}=192.0.2.2`], /is given twice/],
    [
      Array.from({ length: 14 }, (_, i) => ['--ns', `ns${i}.dp.example`]).flat(),
      /at most 13 nameservers/,
    ],
    [
      ['--ns', `ns1.${ZONE}=192.0.2.1`, '--address', '192.0.2.9'],
      /--address.* cannot be used with option '--ns/,
    ],
    [['--ns', `ns1.${ZONE}=192.0.2.999`], /192\.0\.2\.999 is not an IP address/],
    [
      ['--soa-contact', 'hostmaster.example.org'],
      /expected a mailbox such as hostmaster@example\.org/,
    ],
    [['--soa-contact', 'host master@example.org'], /the part before @ may hold/],
    [['--soa-primary', 'not a name'], /not a domain name/],
  ])('refuses %j with one line, exit 1 and nothing created', async (flags, message) => {
    const result = await cli.run(['init', 'dp', '--dir', 'dp-bad', '--range', '+44', ...flags]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.split('\n')).toHaveLength(2);
    expect(() => statSync(join(cli.dir, 'dp-bad'))).toThrow();
  });
});

describe('ds', () => {
  it('prints the DS of every zone, or of one zone named by its range, as text or JSON', async () => {
    const all = await cli.ok(['ds', '--config', 'dp/config.json']);
    const records = parseZoneFile(all);
    expect(records.map((r) => [r.name, r.type])).toEqual([
      ['4.4.e164.mimi.arpa', 'DS'],
      ['example.com.email.mimi.arpa', 'DS'],
    ]);
    const list = await cli.json<Array<Record<string, unknown>>>([
      'ds',
      '--config',
      'dp/config.json',
      '--zone',
      '+44',
    ]);
    const first = records[0];
    expect(list).toEqual([
      {
        zone: '4.4.e164.mimi.arpa',
        keyTag: first?.type === 'DS' ? first.data.keyTag : -1,
        algorithm: 15,
        digestType: 2,
        digest: first?.type === 'DS' ? Buffer.from(first.data.digest).toString('hex') : '',
      },
    ]);
  });

  it('reads the config named by MIMI_DISCOVERY_CONFIG when --config is not given', async () => {
    const result = await cli.run(['ds'], { env: { MIMI_DISCOVERY_CONFIG: 'dp/config.json' } });
    expect(result.exitCode).toBe(0);
    expect(parseZoneFile(result.stdout)).toHaveLength(2);
  });

  it('refuses a zone the store does not hold', async () => {
    const result = await cli.run(['ds', '--config', 'dp/config.json', '--zone', '+33']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/holds no zone 3\.3\.e164\.mimi\.arpa.*\(ERR_CLI_NO_ZONE\)\n$/);
  });
});
