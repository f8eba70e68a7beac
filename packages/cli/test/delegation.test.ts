import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildQuery, parseTrustAnchor, queryUdp, computeDs } from '@mimi-discovery/common';
import { openLmdbStore, storeDirectory } from '@mimi-discovery/authoritative';
import { parseRootHints } from '@mimi-discovery/root';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../test/helpers/ports.js';
import { createCliFixture, serve } from './fixture.js';

const cli = createCliFixture('delegation');
afterAll(() => cli.cleanup());

const PHONE_ZONE = '4.4.e164.mimi.arpa';
const NUMBER_NAME = `8.1.0.0.6.4.9.7.0.2.${PHONE_ZONE}`;

interface DsJson {
  zone: string;
  keyTag: number;
  algorithm: number;
  digestType: number;
  digest: string;
}

interface DelegationJson {
  parent: string;
  zone: string;
  serial?: number;
  nameservers: Array<{ name: string; addresses: string[]; doh?: { port: number; path?: string } }>;
  ds: DsJson[];
}

const ports = { rootDns: 0, rootDoh: 0, dpDns: 0, dpDoh: 0 };

beforeAll(async () => {
  ports.rootDns = await freePort();
  ports.rootDoh = await freePort();
  ports.dpDns = await freePort();
  ports.dpDoh = await freePort();
  const dns = (port: number): string[] => ['--udp', String(port), '--tcp', String(port)];
  await cli.ok([
    'init',
    'root',
    '--dir',
    'root',
    ...dns(ports.rootDns),
    '--doh',
    String(ports.rootDoh),
    '--ca-dir',
    'ca',
  ]);
  await cli.ok([
    'init',
    'dp',
    '--dir',
    'dp',
    '--range',
    '+44',
    ...dns(ports.dpDns),
    '--doh',
    String(ports.dpDoh),
    '--ca-dir',
    'ca',
  ]);
  await cli.ok([
    'init',
    'dp',
    '--dir',
    'dp-ephemeral',
    '--range',
    '+1',
    '--udp',
    '0',
    '--doh',
    '0',
    '--ca-dir',
    'ca',
  ]);
});

async function dpDs(): Promise<DsJson[]> {
  return cli.json<DsJson[]>(['ds', '--config', 'dp/config.json']);
}

describe('delegate, delegations, undelegate', () => {
  it("delegates a range with the child's nameserver, glue, DoH port and DS read from its data", async () => {
    const made = await cli.json<DelegationJson>([
      'delegate',
      '--config',
      'root/config.json',
      '--range',
      '+44',
      '--ns-from',
      'dp/config.json',
      '--ds-from',
      'dp/config.json',
    ]);
    expect(made).toMatchObject({
      parent: 'mimi.arpa',
      zone: PHONE_ZONE,
      nameservers: [
        {
          name: `ns1.${PHONE_ZONE}`,
          addresses: ['127.0.0.1'],
          doh: { port: ports.dpDoh, path: '/dns-query{?dns}' },
        },
      ],
      ds: await dpDs(),
    });
    expect(made.serial).toBeGreaterThan(1);

    const listed = await cli.json<DelegationJson[]>([
      'delegations',
      '--config',
      'root/config.json',
    ]);
    expect(listed).toEqual([{ ...made, serial: undefined }].map(({ serial: _, ...rest }) => rest));
    const table = await cli.ok(['delegations', '--config', 'root/config.json']);
    expect(table.split('\n')[0]).toMatch(/^ZONE\s+NAMESERVER\s+ADDRESSES\s+DOH\s+DS$/);
    expect(table).toContain(
      `${PHONE_ZONE}  ns1.${PHONE_ZONE}  127.0.0.1  ${ports.dpDoh}/dns-query{?dns}`,
    );
  });

  it('replaces a delegation, dropping the glue of a nameserver no longer listed', async () => {
    const [ds] = await dpDs();
    const dsText = (await cli.ok(['ds', '--config', 'dp/config.json'])).trim();
    const made = await cli.json<DelegationJson>([
      'delegate',
      '--config',
      'root/config.json',
      '--range',
      '+44',
      '--ns',
      `ns2.${PHONE_ZONE}=192.0.2.2,2001:db8::2`,
      '--doh-port',
      '8443',
      '--ds',
      dsText,
    ]);
    expect(made.nameservers).toEqual([
      {
        name: `ns2.${PHONE_ZONE}`,
        addresses: ['192.0.2.2', '2001:db8::2'],
        doh: expect.objectContaining({ port: 8443 }),
      },
    ]);
    expect(made.ds).toEqual([ds]);
    const store = await openLmdbStore({ dataDir: storeDirectory(join(cli.dir, 'root')) });
    try {
      expect(store.readRRset('mimi.arpa', `ns1.${PHONE_ZONE}`, 'A')).toEqual([]);
      expect(store.readRRset('mimi.arpa', `ns2.${PHONE_ZONE}`, 'AAAA').map((r) => r.data)).toEqual([
        '2001:db8::2',
      ]);
    } finally {
      await store.close();
    }
  });

  it('undelegates, after which nothing is listed', async () => {
    const removed = await cli.json<{ parent: string; zone: string; serial: number }>([
      'undelegate',
      '--config',
      'root/config.json',
      '--range',
      '+44',
    ]);
    expect(removed).toMatchObject({ parent: 'mimi.arpa', zone: PHONE_ZONE });
    expect(await cli.json<unknown[]>(['delegations', '--config', 'root/config.json'])).toEqual([]);
    expect(await cli.ok(['delegations', '--config', 'root/config.json'])).toBe('no delegations\n');
    const again = await cli.run(['undelegate', '--config', 'root/config.json', '--range', '+44']);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(
      /is not delegated from mimi\.arpa \(ERR_DELEGATION_NOT_FOUND\)\n$/,
    );
  });

  it('sub-delegates a range from the DP zone that contains it', async () => {
    const [ds] = await dpDs();
    const made = await cli.json<DelegationJson>([
      'delegate',
      '--config',
      'dp/config.json',
      '--range',
      '+447',
      '--ns',
      `ns1.7.${PHONE_ZONE}=192.0.2.7`,
      '--ds',
      `${ds?.keyTag} 15 2 ${ds?.digest}`,
    ]);
    expect(made).toMatchObject({
      parent: PHONE_ZONE,
      zone: `7.${PHONE_ZONE}`,
      nameservers: [{ name: `ns1.7.${PHONE_ZONE}`, addresses: ['192.0.2.7'] }],
    });
    const listed = await cli.json<DelegationJson[]>([
      'delegations',
      '--config',
      'dp/config.json',
      '--zone',
      '+44',
    ]);
    expect(listed.map((d) => d.zone)).toEqual([`7.${PHONE_ZONE}`]);
    await cli.ok(['undelegate', '--config', 'dp/config.json', '--range', '+447']);
  });

  it('refuses what cannot be delegated', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['--range', '+44', '--ns-from', 'dp/config.json'], 1, /needs --ds .*\(ERR_USAGE\)/],
      [['--range', '+44', '--ds-from', 'dp/config.json'], 1, /needs --ns .*\(ERR_USAGE\)/],
      [
        [
          '--range',
          '+1',
          '--ns-from',
          'dp-ephemeral/config.json',
          '--ds-from',
          'dp-ephemeral/config.json',
        ],
        1,
        /listen\.doh 0 .*\(ERR_CLI_EPHEMERAL_PORT\)/,
      ],
      [
        ['--range', '+33', '--ns-from', 'dp/config.json', '--ds-from', 'dp/config.json'],
        2,
        /holds no zone 3\.3\.e164\.mimi\.arpa .*\(ERR_CLI_NO_ZONE\)/,
      ],
      [
        ['--range', '+44', '--ns', 'ns1.x.example', '--ds', '1 15 2 abcd'],
        1,
        /digest of type 2 has 32 octets.*\(ERR_USAGE\)/,
      ],
      [
        ['--range', '+44', '--ns', `ns1.${PHONE_ZONE}`, '--ds-from', 'dp/config.json'],
        2,
        /needs an address \(glue\) \(ERR_DELEGATION_GLUE\)/,
      ],
    ];
    for (const [flags, exitCode, message] of cases) {
      const result = await cli.run(['delegate', '--config', 'root/config.json', ...flags]);
      expect({ flags, exitCode: result.exitCode }).toEqual({ flags, exitCode });
      expect(result.stderr).toMatch(message);
      expect(result.stderr.split('\n')).toHaveLength(2);
    }
    const [ds] = await dpDs();
    const outside = await cli.run([
      'delegate',
      '--config',
      'dp/config.json',
      '--range',
      '+33',
      '--ns',
      'ns1.x.example',
      '--ds',
      `${ds?.keyTag} 15 2 ${ds?.digest}`,
    ]);
    expect(outside.exitCode).toBe(2);
    expect(outside.stderr).toMatch(
      /no zone of .* contains 3\.3\.e164\.mimi\.arpa .*\(ERR_CLI_NO_ZONE\)/,
    );
  });

  it('changes what a running root serves from its next query', async () => {
    const root = await serve(cli, 'root/config.json');
    const child = await serve(cli, 'dp/config.json');
    try {
      const server = { host: '127.0.0.1', port: root.listener('udp').port };
      const before = await queryUdp(server, buildQuery(NUMBER_NAME, 'MAP', { dnssecOk: true }));
      expect(before.flags.aa).toBe(true);
      expect(before.authorities.some((r) => r.type === 'NS')).toBe(false);

      await cli.ok([
        'delegate',
        '--config',
        'root/config.json',
        '--range',
        '+44',
        '--ns-from',
        'dp/config.json',
        '--ds-from',
        'dp/config.json',
      ]);
      const after = await queryUdp(server, buildQuery(NUMBER_NAME, 'MAP', { dnssecOk: true }));
      expect(after.flags.aa).toBe(false);
      expect(after.authorities.filter((r) => r.type === 'NS').map((r) => r.data)).toEqual([
        `ns1.${PHONE_ZONE}`,
      ]);
      expect(
        after.additionals.some((r) => r.type === 'SVCB' && r.data.params.port === ports.dpDoh),
      ).toBe(true);

      // The child, opened by `delegate --ns-from` while it was serving, still answers.
      const childAnswer = await queryUdp(
        { host: '127.0.0.1', port: child.listener('udp').port },
        buildQuery(PHONE_ZONE, 'SOA'),
      );
      expect(childAnswer.answers.map((r) => r.type)).toEqual(['SOA']);
    } finally {
      expect((await root.stop()).exitCode).toBe(0);
      expect((await child.stop()).exitCode).toBe(0);
    }
  });
});

describe('delegate with several nameservers', () => {
  const ZONE = '3.3.e164.mimi.arpa';
  const delegatedZones = async (): Promise<string[]> =>
    (await cli.json<DelegationJson[]>(['delegations', '--config', 'root/config.json'])).map(
      (d) => d.zone,
    );

  it('writes every nameserver, its addresses and its DoH endpoint into the parent, and lists them', async () => {
    const ds = (await cli.ok(['ds', '--config', 'dp/config.json'])).trim();
    const made = await cli.json<DelegationJson>([
      'delegate',
      '--config',
      'root/config.json',
      '--range',
      '+33',
      '--ns',
      `ns1.${ZONE}=192.0.2.1,2001:db8::1`,
      '--ns',
      `ns2.${ZONE}=198.51.100.2`,
      '--ns',
      'ns.dp.example',
      '--doh-port',
      '8443',
      '--ds',
      ds.replace(PHONE_ZONE, ZONE),
    ]);
    expect(made.nameservers.map((ns) => [ns.name, ns.addresses.sort(), ns.doh?.port])).toEqual([
      [`ns1.${ZONE}`, ['192.0.2.1', '2001:db8::1'], 8443],
      [`ns2.${ZONE}`, ['198.51.100.2'], 8443],
      // Outside the parent zone: no glue and no SVCB can be published for it there.
      ['ns.dp.example', [], undefined],
    ]);
    const store = await openLmdbStore({ dataDir: storeDirectory(join(cli.dir, 'root')) });
    try {
      const data = (name: string, type: 'NS' | 'A' | 'AAAA'): string[] =>
        store.readRRset('mimi.arpa', name, type).map((r) => String(r.data));
      expect(data(ZONE, 'NS').sort()).toEqual(['ns.dp.example', `ns1.${ZONE}`, `ns2.${ZONE}`]);
      expect(data(`ns1.${ZONE}`, 'AAAA')).toEqual(['2001:db8::1']);
      expect(data(`ns2.${ZONE}`, 'A')).toEqual(['198.51.100.2']);
      expect(store.readRRset('mimi.arpa', `_dns.ns2.${ZONE}`, 'SVCB')).toHaveLength(1);
    } finally {
      await store.close();
    }
    const table = await cli.ok(['delegations', '--config', 'root/config.json']);
    const rows = table.split('\n');
    const first = rows.findIndex((row) => row.startsWith(ZONE));
    expect(rows.slice(first, first + 3)).toEqual([
      expect.stringMatching(
        new RegExp(`^${ZONE}\\s+ns1\\.${ZONE}\\s+192\\.0\\.2\\.1,2001:db8::1\\s+8443`),
      ),
      expect.stringMatching(/^\s+ns2\.3\.3\.e164\.mimi\.arpa\s+198\.51\.100\.2\s+8443/),
      expect.stringMatching(/^\s+ns\.dp\.example\s+-\s+-/),
    ]);
    await cli.ok(['undelegate', '--config', 'root/config.json', '--range', '+33']);
  });

  it('takes every nameserver of the child with --ns-from, and --ns adds the glue it cannot give', async () => {
    await cli.ok([
      'init',
      'dp',
      '--dir',
      'dp33',
      '--range',
      '+33',
      '--udp',
      '0',
      '--doh',
      String(ports.dpDoh),
      '--ca-dir',
      'ca',
      '--ns',
      `ns1.${ZONE}=127.0.0.1,::1`,
      '--ns',
      `ns2.${ZONE}=127.0.0.2`,
      '--ns',
      'ns3.mimi.arpa',
    ]);
    const from = ['--ns-from', 'dp33/config.json', '--ds-from', 'dp33/config.json'];
    // ns3.mimi.arpa lies in the parent's zone but outside the child's: only the parent can
    // publish its address, and nobody gave it.
    const refused = await cli.run([
      'delegate',
      '--config',
      'root/config.json',
      '--range',
      '+33',
      ...from,
    ]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(
      /ns3\.mimi\.arpa is inside mimi\.arpa and needs an address \(glue\) \(ERR_DELEGATION_GLUE\)\n$/,
    );
    expect(await delegatedZones()).not.toContain(ZONE);

    const made = await cli.json<DelegationJson>([
      'delegate',
      '--config',
      'root/config.json',
      '--range',
      '+33',
      ...from,
      '--ns',
      'ns3.mimi.arpa=192.0.2.3',
      '--doh-port',
      '9443',
    ]);
    expect(made.nameservers).toEqual([
      {
        name: `ns1.${ZONE}`,
        addresses: ['127.0.0.1', '::1'],
        doh: { port: ports.dpDoh, path: '/dns-query{?dns}', alpn: ['h2', 'http/1.1'] },
      },
      {
        name: `ns2.${ZONE}`,
        addresses: ['127.0.0.2'],
        doh: { port: ports.dpDoh, path: '/dns-query{?dns}', alpn: ['h2', 'http/1.1'] },
      },
      {
        name: 'ns3.mimi.arpa',
        addresses: ['192.0.2.3'],
        doh: { port: 9443, path: '/dns-query{?dns}', alpn: ['h2', 'http/1.1'] },
      },
    ]);
    await cli.ok(['undelegate', '--config', 'root/config.json', '--range', '+33']);
  });

  it('refuses a nameserver given twice, and stores nothing', async () => {
    const result = await cli.run([
      'delegate',
      '--config',
      'root/config.json',
      '--range',
      '+33',
      '--ns',
      `ns1.${ZONE}=192.0.2.1`,
      '--ns',
      `ns1.${ZONE}=192.0.2.2`,
      '--ds-from',
      'dp33/config.json',
    ]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/is listed twice .*\(ERR_DELEGATION_NAMESERVERS\)\n$/);
    expect(result.stderr.split('\n')).toHaveLength(2);
    expect(await delegatedZones()).not.toContain(ZONE);
  });
});

describe('trust-anchor and hints', () => {
  it("prints the root zone's DS and DNSKEY as a trust anchor file that parses back", async () => {
    const text = await cli.ok(['trust-anchor', '--config', 'root/config.json']);
    const anchor = parseTrustAnchor(text);
    expect(anchor.zone).toBe('mimi.arpa');
    expect(anchor.dnskeys).toHaveLength(1);
    const [dnskey] = anchor.dnskeys;
    expect(anchor.ds).toEqual(dnskey ? [computeDs('mimi.arpa', dnskey)] : []);
    const store = await openLmdbStore({ dataDir: storeDirectory(join(cli.dir, 'root')) });
    try {
      expect(dnskey?.publicKey).toEqual(store.zoneInfo('mimi.arpa')?.publicKey);
    } finally {
      await store.close();
    }
  });

  it('writes the anchor for delv -a, and to a file', async () => {
    const bind = await cli.ok(['trust-anchor', '--config', 'root/config.json', '--format', 'bind']);
    expect(bind).toMatch(
      /^trust-anchors \{\n {2}"mimi\.arpa\." static-ds \d+ 15 2 "[0-9a-f]{64}";\n/,
    );
    const out = await cli.ok(['trust-anchor', '--config', 'root/config.json', '--out', 'root.key']);
    expect(out).toBe(`wrote the trust anchor of mimi.arpa to ${join(cli.dir, 'root.key')}\n`);
    expect(parseTrustAnchor(readFileSync(join(cli.dir, 'root.key'), 'utf8')).zone).toBe(
      'mimi.arpa',
    );
  });

  it("refuses a DP's config", async () => {
    const result = await cli.run(['trust-anchor', '--config', 'dp/config.json']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/needs the config of the root directory .*\(ERR_CLI_ROLE\)\n$/);
  });

  it("prints root hints with the root's nameserver, address, port and DoH URL", async () => {
    const hints = parseRootHints(await cli.ok(['hints', '--config', 'root/config.json']));
    expect(hints).toEqual({
      apex: 'mimi.arpa',
      servers: [
        {
          name: 'ns1.mimi.arpa',
          addresses: ['127.0.0.1'],
          port: ports.rootDns,
          doh: `https://127.0.0.1:${ports.rootDoh}/dns-query`,
        },
      ],
    });
  });

  it('refuses hints for ephemeral ports', async () => {
    await cli.ok(['init', 'root', '--dir', 'root-ephemeral', '--udp', '0']);
    const result = await cli.run(['hints', '--config', 'root-ephemeral/config.json']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/listen\.udp 0 .*\(ERR_CLI_EPHEMERAL_PORT\)\n$/);
  });
});
