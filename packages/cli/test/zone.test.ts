import { spawnSync } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  createAttestation,
  createMapping,
  csiToName,
  encodeCbor,
  encodeMapping,
  formatZone,
  keyPairFromSeed,
  parseCsi,
  parseZoneFile,
  record,
} from '@mimi-discovery/common';
import {
  MAX_CHANGES_PER_APPLY,
  openLmdbStore,
  storeDirectory,
  type DiscoveryStore,
} from '@mimi-discovery/authoritative';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCliFixture } from './fixture.js';

const cli = createCliFixture('zone');
afterAll(() => cli.cleanup());

const ZONE = '4.4.e164.mimi.arpa';
const CSI = 'tel:+442079460018';
const NUMBER_NAME = `8.1.0.0.6.4.9.7.0.2.${ZONE}`;
const NOW = Math.floor(Date.now() / 1000);
const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);

const LDNS = spawnSync('sh', ['-c', 'command -v ldns-verify-zone']).status === 0;
if (!LDNS) {
  console.warn(
    'ldns-verify-zone not installed (Debian package ldnsutils): skipping the export check',
  );
}

async function withStore<T>(
  dir: string,
  action: (store: DiscoveryStore) => Promise<T>,
): Promise<T> {
  const store = await openLmdbStore({ dataDir: storeDirectory(join(cli.dir, dir)) });
  try {
    return await action(store);
  } finally {
    await store.close();
  }
}

/**
 * A signed mapping of `csi` (default CSI) for recipient 01…01 (or `recipientByte`), attested by
 * prover 02…02.
 */
function mappingBytes(recipientByte = 1, provider = 'chat.example', csi = CSI): Uint8Array {
  const recipient = keyPairFromSeed(seed(recipientByte));
  const att = createAttestation(
    { csi, key: recipient.publicKey, nbf: NOW - 60, exp: NOW + 86_400 },
    seed(2),
  );
  const mapping = createMapping(
    {
      csi,
      msps: [{ provider, tags: [] }],
      seq: 1,
      iat: NOW,
      exp: NOW + 86_400,
      new: false,
      att,
    },
    recipient.secretKey,
  );
  return encodeMapping(mapping);
}

beforeAll(async () => {
  await cli.ok(['init', 'dp', '--dir', 'a', '--range', '+44', '--udp', '0']);
  await cli.ok(['init', 'dp', '--dir', 'b', '--range', '+44', '--udp', '0']);
  await cli.ok(['init', 'dp', '--dir', 'c', '--range', '@example.com', '--udp', '0']);
  const [ds] = JSON.parse(await cli.ok(['ds', '--config', 'a/config.json', '--json'])) as Array<{
    keyTag: number;
    digest: string;
  }>;
  await cli.ok([
    'delegate',
    '--config',
    'a/config.json',
    '--range',
    '+447',
    '--ns',
    `ns1.7.${ZONE}=192.0.2.7`,
    '--doh-port',
    '8443',
    '--ds',
    `${ds?.keyTag} 15 2 ${ds?.digest}`,
  ]);
  await withStore('a', (store) =>
    store.apply(ZONE, [
      {
        op: 'put',
        name: NUMBER_NAME,
        type: 'MAP',
        records: [record(NUMBER_NAME, 'MAP', mappingBytes(), 300)],
      },
      {
        op: 'put',
        name: `note.${ZONE}`,
        type: 'TXT',
        records: [record(`note.${ZONE}`, 'TXT', [Buffer.from('hello')], 300)],
      },
    ]),
  );
});

describe('zone export', () => {
  it('writes the zone signed with an NSEC3 chain that a stock validator accepts', async () => {
    const out = await cli.ok([
      'zone',
      'export',
      '--config',
      'a/config.json',
      '--zone',
      '+44',
      '--out',
      'a.zone',
    ]);
    expect(out).toBe(`wrote zone ${ZONE} to ${join(cli.dir, 'a.zone')}\n`);
    const records = parseZoneFile(readFileSync(join(cli.dir, 'a.zone'), 'utf8'));
    expect(records[0]?.type).toBe('SOA');
    expect(records.some((r) => r.type === 'NSEC3PARAM')).toBe(true);
    expect(records.some((r) => r.type === 'MAP' && r.name === NUMBER_NAME)).toBe(true);
    if (!LDNS) return;
    const verify = spawnSync('ldns-verify-zone', [join(cli.dir, 'a.zone')], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(`${verify.stdout}${verify.stderr}`).toContain('Zone is verified and complete');
    expect(verify.status).toBe(0);
  });

  it('writes the records as served, without a chain, with --no-nsec3', async () => {
    const text = await cli.ok([
      'zone',
      'export',
      '--config',
      'a/config.json',
      '--zone',
      ZONE,
      '--no-nsec3',
    ]);
    const types = new Set(parseZoneFile(text).map((r) => r.type));
    expect(types.has('RRSIG')).toBe(true);
    expect(types.has('NSEC3')).toBe(false);
  });
});

describe('zone import', () => {
  it("imports the delegation, the mappings and the AUTHKEYs of a file, skipping the store's own records", async () => {
    const report = JSON.parse(
      await cli.ok([
        'zone',
        'import',
        '--config',
        'b/config.json',
        '--zone',
        '+44',
        '--file',
        'a.zone',
        '--json',
      ]),
    ) as {
      zone: string;
      rrsets: number;
      records: number;
      serial: number;
      skipped: Array<{ type: string; count: number; reason: string }>;
    };
    expect(report.zone).toBe(ZONE);
    // NS, DS, glue A and _dns SVCB of the cut; the zone's own nameserver address; MAP; AUTHKEY.
    expect(report.rrsets).toBe(7);
    const skipped = Object.fromEntries(report.skipped.map((s) => [s.type, s]));
    expect(skipped['SOA']).toMatchObject({
      count: 1,
      reason: 'the store makes and signs these itself',
    });
    expect(skipped['DNSKEY']?.count).toBe(1);
    expect(skipped['NSEC3PARAM']?.count).toBe(1);
    expect(skipped['RRSIG']?.count).toBeGreaterThan(5);
    expect(skipped['NSEC3']?.count).toBeGreaterThan(3);
    expect(skipped['NS']).toMatchObject({ count: 1, reason: 'the apex NS is set by init' });
    expect(skipped['TXT']?.count).toBe(1);

    const fromA = await cli.ok(['delegations', '--config', 'a/config.json', '--json']);
    const fromB = await cli.ok(['delegations', '--config', 'b/config.json', '--json']);
    expect(JSON.parse(fromB)).toEqual(JSON.parse(fromA));
    expect(JSON.parse(fromB)).toHaveLength(1);

    const [authkeysA, mapA] = await withStore('a', async (store) => [
      store.readRRset(ZONE, ZONE, 'AUTHKEY'),
      store.readRRset(ZONE, NUMBER_NAME, 'MAP'),
    ]);
    await withStore('b', async (store) => {
      expect(store.readRRset(ZONE, NUMBER_NAME, 'MAP').map((r) => r.data)).toEqual(
        mapA?.map((r) => r.data),
      );
      const keys = store
        .readRRset(ZONE, ZONE, 'AUTHKEY')
        .map((r) => r.type === 'AUTHKEY' && Buffer.from(r.data.publicKey).toString('hex'));
      // B keeps its own prover key and gains A's.
      expect(keys).toContain(Buffer.from(store.proverKey().publicKey).toString('hex'));
      for (const rr of authkeysA ?? []) {
        expect(keys).toContain(
          rr.type === 'AUTHKEY' && Buffer.from(rr.data.publicKey).toString('hex'),
        );
      }
      expect(keys).toHaveLength(2);
    });
  });

  it('reports the skipped records in text', async () => {
    const out = await cli.ok([
      'zone',
      'import',
      '--config',
      'b/config.json',
      '--zone',
      ZONE,
      '--file',
      'a.zone',
    ]);
    expect(out).toMatch(
      /^imported 7 RRsets \(\d+ records\) into 4\.4\.e164\.mimi\.arpa \(serial \d+\)\n/,
    );
    expect(out).toContain('skipped 1 SOA: the store makes and signs these itself\n');
  });

  it('skips a MAP whose mapping is for another name', async () => {
    const other = `9.9.9.9.6.4.9.7.0.2.${ZONE}`;
    const hex = Buffer.from(mappingBytes()).toString('hex');
    writeFileSync(
      join(cli.dir, 'wrong.zone'),
      `${other}. 300 IN TYPE65400 \\# ${hex.length / 2} ${hex}\n`,
    );
    const report = JSON.parse(
      await cli.ok([
        'zone',
        'import',
        '--config',
        'b/config.json',
        '--zone',
        ZONE,
        '--file',
        'wrong.zone',
        '--json',
      ]),
    ) as { rrsets: number; skipped: unknown[] };
    expect(report.rrsets).toBe(0);
    // The record does not say its CSI: the name's does not verify it.
    expect(report.skipped).toEqual([
      { type: 'MAP', count: 1, reason: 'MAP not signed for the CSI of its name (bad-signature)' },
    ]);
  });

  /** Imports `file` (master-file text) into the zone of DP `dir`; the JSON report. */
  async function importText(
    dir: string,
    zone: string,
    text: string,
  ): Promise<{ rrsets: number; skipped: unknown[] }> {
    writeFileSync(join(cli.dir, `${dir}.zone`), text);
    const args = ['zone', 'import', '--config', `${dir}/config.json`, '--zone', zone];
    return JSON.parse(await cli.ok([...args, '--file', `${dir}.zone`, '--json'])) as {
      rrsets: number;
      skipped: unknown[];
    };
  }

  const mapLine = (name: string, bytes: Uint8Array): string => {
    const hex = Buffer.from(bytes).toString('hex');
    return `${name}. 300 IN TYPE65400 \\# ${hex.length / 2} ${hex}\n`;
  };

  it('skips a MAP at an email name, which gives no CSI back, and one at no CSI name', async () => {
    const email = parseCsi('dave@example.com');
    const emailZone = 'example.com.email.mimi.arpa';
    const report = await importText(
      'c',
      emailZone,
      mapLine(csiToName(email), mappingBytes(1, 'chat.example', email)),
    );
    expect(report.rrsets).toBe(0);
    expect(report.skipped).toEqual([
      {
        type: 'MAP',
        count: 1,
        reason:
          'MAP at an email name, which gives no CSI to verify it for (publish it through the registration API)',
      },
    ]);
    const elsewhere = await importText('b', ZONE, mapLine(`msp.${ZONE}`, mappingBytes()));
    expect(elsewhere.skipped).toEqual([
      { type: 'MAP', count: 1, reason: 'MAP at a name that is no CSI name' },
    ]);
  });

  it('skips a version-1 MAP, which spells its CSI', async () => {
    // Version 1 carried `csi` in the mapping and its attestation.
    const v1 = encodeCbor({ v: 1, csi: CSI, msps: [], sig: new Uint8Array(64) });
    const report = await importText('b', ZONE, mapLine(NUMBER_NAME, v1));
    expect(report.skipped).toEqual([
      {
        type: 'MAP',
        count: 1,
        reason: 'MAP of an unsupported version (version 1 spelled the CSI)',
      },
    ]);
  });

  it('adds imported mappings to those of the zone, and skips what the store refuses', async () => {
    const mapFile = (bytes: Uint8Array): string => {
      const hex = Buffer.from(bytes).toString('hex');
      return `${NUMBER_NAME}. 300 IN TYPE65400 \\# ${hex.length / 2} ${hex}\n`;
    };
    const other = mappingBytes(3);
    // The first key again with the same seq but other content: the stored one stays.
    const stale = mappingBytes(1, 'other.example');
    writeFileSync(join(cli.dir, 'more.zone'), mapFile(other) + mapFile(stale));
    const report = JSON.parse(
      await cli.ok([
        'zone',
        'import',
        '--config',
        'b/config.json',
        '--zone',
        ZONE,
        '--file',
        'more.zone',
        '--json',
      ]),
    ) as { rrsets: number; records: number; skipped: unknown[] };
    expect(report).toMatchObject({ rrsets: 1, records: 1 });
    expect(report.skipped).toEqual([
      { type: 'MAP', count: 1, reason: 'refused by the store: stale-seq' },
    ]);
    await withStore('b', async (store) => {
      const stored = store
        .readRRset(ZONE, NUMBER_NAME, 'MAP')
        .map((r) => Buffer.from(r.data as Uint8Array).toString('hex'))
        .sort();
      expect(stored).toEqual(
        [mappingBytes(), other].map((b) => Buffer.from(b).toString('hex')).sort(),
      );
    });
  });

  it('refuses a delegation without DS, writing nothing', async () => {
    writeFileSync(
      join(cli.dir, 'unsigned.zone'),
      `3.${ZONE}. 3600 IN NS ns1.3.${ZONE}.\nns1.3.${ZONE}. 3600 IN A 192.0.2.3\n`,
    );
    const before = await cli.ok([
      'zone',
      'export',
      '--config',
      'b/config.json',
      '--zone',
      ZONE,
      '--no-nsec3',
    ]);
    const result = await cli.run([
      'zone',
      'import',
      '--config',
      'b/config.json',
      '--zone',
      ZONE,
      '--file',
      'unsigned.zone',
    ]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(
      /delegation of 3\.4\.4\.e164\.mimi\.arpa has no DS .*\(ERR_DELEGATION_NO_DS\)\n$/,
    );
    expect(
      await cli.ok(['zone', 'export', '--config', 'b/config.json', '--zone', ZONE, '--no-nsec3']),
    ).toBe(before);
  });

  it('refuses a file that is not a master file, naming the line', async () => {
    writeFileSync(
      join(cli.dir, 'bad.zone'),
      `ns1.${ZONE}. 300 IN A 192.0.2.1\nns2 IN A not-an-address\n`,
    );
    const result = await cli.run([
      'zone',
      'import',
      '--config',
      'b/config.json',
      '--zone',
      ZONE,
      '--file',
      'bad.zone',
    ]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/^mimi-discovery: line 2: .*\(ERR_ZONE_FILE_SYNTAX\)\n$/);
  });
});

/** The records of a DP's zone as served, one string, to see that nothing changed. */
const servedZone = (dir: string): Promise<string> =>
  cli.ok(['zone', 'export', '--config', `${dir}/config.json`, '--zone', ZONE, '--no-nsec3']);

/** MAP RDATA (hex) by owner name, sorted, of the zone of DP `dir`. */
const mapsOf = (dir: string): Promise<string[]> =>
  withStore(dir, async (store) =>
    store
      .readZone(ZONE)
      .flatMap((rr) =>
        rr.type === 'MAP' ? [`${rr.name} ${Buffer.from(rr.data).toString('hex')}`] : [],
      )
      .sort(),
  );

describe('zone export and import as streams', () => {
  const numbers = Array.from({ length: 40 }, (_, i) => `+4420794612${String(i).padStart(2, '0')}`);

  beforeAll(async () => {
    await cli.ok(['init', 'dp', '--dir', 'd', '--range', '+44', '--udp', '0']);
    await cli.ok(['init', 'dp', '--dir', 'e', '--range', '+44', '--udp', '0']);
    await withStore('a', (store) =>
      store.apply(
        ZONE,
        numbers.map((number, i) => {
          const csi = parseCsi(number);
          const name = csiToName(csi);
          return {
            op: 'put' as const,
            name,
            type: 'MAP' as const,
            records: [record(name, 'MAP', mappingBytes(10 + (i % 5), 'chat.example', csi), 300)],
          };
        }),
      ),
    );
  });

  it('imports into a new store what it exported, delegation and mappings alike', async () => {
    await cli.ok([
      'zone',
      'export',
      '--config',
      'a/config.json',
      '--zone',
      ZONE,
      '--no-nsec3',
      '--out',
      'round.zone',
    ]);
    const report = JSON.parse(
      await cli.ok([
        'zone',
        'import',
        '--config',
        'd/config.json',
        '--zone',
        ZONE,
        '--file',
        'round.zone',
        '--json',
      ]),
    ) as { rrsets: number; records: number; skipped: Array<{ type: string; count: number }> };
    // 41 MAP RRsets, the cut's NS, DS, glue and SVCB, the zone's nameserver address, AUTHKEY.
    expect(report.rrsets).toBe(47);
    expect(report.skipped.filter((s) => s.type === 'MAP')).toEqual([]);
    expect(await mapsOf('d')).toEqual(await mapsOf('a'));
    expect(await mapsOf('d')).toHaveLength(41);
    const delegations = (dir: string): Promise<string> =>
      cli.ok(['delegations', '--config', `${dir}/config.json`, '--json']);
    expect(JSON.parse(await delegations('d'))).toEqual(JSON.parse(await delegations('a')));
  });

  it('writes to a stream given for stdout, waiting while it is full, and collects none of it', async () => {
    const received: string[] = [];
    const slow = new Writable({
      highWaterMark: 16,
      write(chunk: Buffer, _encoding, done) {
        received.push(chunk.toString());
        setImmediate(done);
      },
    });
    const result = await cli.run(
      ['zone', 'export', '--config', 'a/config.json', '--zone', ZONE, '--no-nsec3'],
      { stdoutStream: slow },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe('');
    expect(received.join('')).toBe(await servedZone('a'));
  });

  it('shows progress on stderr when it is a terminal, or when asked, and never on stdout', async () => {
    const exportArgs = ['zone', 'export', '--config', 'a/config.json', '--zone', ZONE];
    const onTty = await cli.run([...exportArgs, '--no-nsec3'], { stderrIsTTY: true });
    expect(onTty.exitCode).toBe(0);
    // Each update rewrites the line: carriage return, then ESC [ K (erase to the end).
    expect(onTty.stderr.startsWith('\r\u001b[K')).toBe(true);
    expect(onTty.stderr).toMatch(/export: \d[\d,]* records, [\d.]+ KiB, [\d,]+ records\/s\n$/);
    expect(onTty.stdout).not.toContain('records/s');
    const lines = onTty.stdout.split('\n').length - 1;
    expect(onTty.stderr).toContain(`export: ${lines} records`);

    const signed = await cli.run([...exportArgs, '--progress', '--out', 'p.zone']);
    expect(signed.stderr).toContain('export (signed in memory): ');
    expect(signed.stdout).toBe(`wrote zone ${ZONE} to ${join(cli.dir, 'p.zone')}\n`);

    const quiet = await cli.run([...exportArgs, '--no-nsec3', '--no-progress'], {
      stderrIsTTY: true,
    });
    expect(quiet.stderr).toBe('');
    expect((await cli.run([...exportArgs, '--no-nsec3'])).stderr).toBe('');

    const imported = await cli.run(
      ['zone', 'import', '--config', 'e/config.json', '--zone', ZONE, '--file', 'p.zone', '--json'],
      { stderrIsTTY: true },
    );
    expect(imported.exitCode, imported.stderr).toBe(0);
    expect(imported.stderr).toMatch(/import, checking: \d[\d,]* records, [\d.]+ KiB, .*\n/);
    expect(imported.stderr).toMatch(/import, writing: \d[\d,]* records, [\d.]+ KiB, .*\n$/);
    expect(() => JSON.parse(imported.stdout) as unknown).not.toThrow();
  });

  /** Imports `text` into DP `e` and expects it refused with `pattern`, nothing written. */
  async function refused(text: string, pattern: RegExp): Promise<void> {
    writeFileSync(join(cli.dir, 'hostile.zone'), text);
    const before = await servedZone('e');
    const result = await cli.run([
      'zone',
      'import',
      '--config',
      'e/config.json',
      '--zone',
      ZONE,
      '--file',
      'hostile.zone',
    ]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/^mimi-discovery: [^\n]*\n$/);
    expect(result.stderr).toMatch(pattern);
    expect(await servedZone('e')).toBe(before);
  }

  /** Address RRsets in {@link prefix}: more than one batch of changes, written on the way. */
  const ADDRESSES = MAX_CHANGES_PER_APPLY + 76;
  /** Lines of {@link prefix}; the hostile line that follows is the next. */
  const PREFIX_LINES = ADDRESSES + 4;

  /**
   * A valid delegation with DS, a mapping, and more address RRsets than one write takes: what a
   * single pass would have written before it met the line after.
   */
  const prefix = (): string => {
    const csi = parseCsi('+442079461300');
    const hex = Buffer.from(mappingBytes(20, 'chat.example', csi)).toString('hex');
    const addresses = Array.from(
      { length: ADDRESSES },
      (_, i) => `host${i}.${ZONE}. 3600 IN A 192.0.2.${i % 250}\n`,
    );
    return (
      `5.${ZONE}. 3600 IN NS ns1.5.${ZONE}.\n` +
      `5.${ZONE}. 3600 IN DS 1 15 2 ${'ab'.repeat(32)}\n` +
      `ns1.5.${ZONE}. 3600 IN A 192.0.2.5\n` +
      `${csiToName(csi)}. 300 IN TYPE65400 \\# ${hex.length / 2} ${hex}\n` +
      addresses.join('')
    );
  };

  it('refuses a line of 100 MB, storing nothing', async () => {
    await refused(
      `${prefix()}x.${ZONE}. 300 IN TXT "${'x'.repeat(100 * 2 ** 20)}"\n`,
      new RegExp(
        `line ${PREFIX_LINES + 1}: line longer than 262144 characters \\(ERR_ZONE_FILE_TOO_LARGE\\)`,
      ),
    );
  });

  it('refuses a parenthesis never closed, or closed without being opened, storing nothing', async () => {
    await refused(
      `${prefix()}ns2.5.${ZONE}. 3600 IN A ( 192.0.2.6\n; and no end\n`,
      new RegExp(`line ${PREFIX_LINES + 1}: \\( is never closed \\(ERR_ZONE_FILE_SYNTAX\\)`),
    );
    await refused(
      `${prefix()}ns2.5.${ZONE}. 3600 IN A 192.0.2.6 )\n`,
      new RegExp(`line ${PREFIX_LINES + 1}: unbalanced \\) \\(ERR_ZONE_FILE_SYNTAX\\)`),
    );
  });

  it('refuses an RRset over the limit, storing nothing', async () => {
    const addresses = Array.from(
      { length: 257 },
      (_, i) => `ns2.5.${ZONE}. 3600 IN A 192.0.${Math.floor(i / 250)}.${i % 250}\n`,
    );
    await refused(
      prefix() + addresses.join(''),
      new RegExp(
        `line ${PREFIX_LINES + 257}: more than 256 A records at ns2\\.5\\.4\\.4\\.e164\\.mimi\\.arpa.*\\(ERR_CLI_IMPORT_RRSET\\)`,
      ),
    );
  });

  it('refuses a delegation whose records are not together, and a DS without NS, storing nothing', async () => {
    await refused(
      `${prefix()}5.${ZONE}. 3600 IN DS 2 15 2 ${'cd'.repeat(32)}\n`,
      new RegExp(
        `line ${PREFIX_LINES + 1}: the records of 5\\.4\\.4\\.e164\\.mimi\\.arpa are not on consecutive lines.*\\(ERR_CLI_IMPORT_ORDER\\)`,
      ),
    );
    await refused(
      `${prefix()}6.${ZONE}. 3600 IN DS 2 15 2 ${'cd'.repeat(32)}\n`,
      new RegExp(
        `line ${PREFIX_LINES + 1}: DS at 6\\.4\\.4\\.e164\\.mimi\\.arpa has no NS in the file or the zone.*\\(ERR_STORE_BAD_CHANGE\\)`,
      ),
    );
  });

  it('refuses a file that changes between its check and its writes, storing nothing', async () => {
    writeFileSync(join(cli.dir, 'moving.zone'), prefix());
    const before = await servedZone('e');
    let appended = false;
    const result = await cli.run(
      ['zone', 'import', '--config', 'e/config.json', '--zone', ZONE, '--file', 'moving.zone'],
      {
        stderrIsTTY: true,
        stderr: (text) => {
          if (appended || !text.includes('import, checking')) return;
          appended = true;
          appendFileSync(join(cli.dir, 'moving.zone'), `ns3.5.${ZONE}. 3600 IN A 192.0.2.7\n`);
        },
      },
    );
    expect(appended).toBe(true);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(
      /moving\.zone changed while it was being imported .*\(ERR_CLI_FILE_CHANGED\)\n$/,
    );
    expect(await servedZone('e')).toBe(before);
    // Unchanged since, the same file imports: what the refusals above kept out is writable.
    const report = JSON.parse(
      await cli.ok([
        'zone',
        'import',
        '--config',
        'e/config.json',
        '--zone',
        ZONE,
        '--file',
        'moving.zone',
        '--json',
      ]),
    ) as { rrsets: number; records: number };
    expect(report).toMatchObject({ rrsets: ADDRESSES + 5, records: ADDRESSES + 5 });
    const after = await servedZone('e');
    expect(after).toContain(`5.${ZONE}. 3600 IN DS 1 15 2 `);
    expect(after).toContain(`ns3.5.${ZONE}. 3600 IN A 192.0.2.7`);
    expect(after).toContain(`${csiToName(parseCsi('+442079461300'))}. 300 IN TYPE65400`);
  });
});

describe('zone nsec3', () => {
  beforeAll(async () => {
    await cli.ok(['init', 'dp', '--dir', 'f', '--range', '+44', '--udp', '0']);
  });
  const args = (state: string, ...more: string[]): string[] => [
    'zone',
    'nsec3',
    state,
    '--config',
    'f/config.json',
    ...more,
  ];

  it('takes on or off only, and a zone the store holds', async () => {
    const bad = await cli.run(args('maybe'));
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toBe(
      'mimi-discovery: zone nsec3 takes on or off, not "maybe" (ERR_USAGE)\n',
    );
    const missing = await cli.run(args('on', '--zone', '+33'));
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/no zone 3\.3\.e164\.mimi\.arpa .*\(ERR_CLI_NO_ZONE\)\n$/);
  });

  it('leaves a zone without a chain as it is when turned off', async () => {
    const serial = await withStore('f', async (store) => store.zoneInfo(ZONE)?.serial);
    expect(await cli.ok(args('off', '--zone', '+44'))).toBe(
      `zone ${ZONE} keeps no NSEC3 chain (serial ${serial}, unchanged)\n`,
    );
  });

  it('keeps the chain once on, and the export then streams it as stored', async () => {
    const [on] = JSON.parse(await cli.ok(args('on', '--zone', '+44', '--json'))) as Array<{
      zone: string;
      nsec3: boolean;
      serial: number;
      changed: boolean;
    }>;
    expect(on).toMatchObject({ zone: ZONE, nsec3: true, changed: true });
    expect(await cli.ok(args('on'))).toBe(
      `zone ${ZONE} keeps an NSEC3 chain (serial ${on?.serial}, unchanged)\n`,
    );
    const text = await cli.ok(['zone', 'export', '--config', 'f/config.json', '--zone', ZONE]);
    const stored = await withStore('f', async (store) => store.readZone(ZONE));
    expect(text).toBe(formatZone(ZONE, stored));
    expect(parseZoneFile(text).some((rr) => rr.type === 'NSEC3PARAM')).toBe(true);
    if (LDNS) {
      writeFileSync(join(cli.dir, 'f.zone'), text);
      const verify = spawnSync('ldns-verify-zone', [join(cli.dir, 'f.zone')], {
        encoding: 'utf8',
      });
      expect(`${verify.stdout}${verify.stderr}`).toContain('Zone is verified and complete');
    }
    expect(await cli.ok(args('off'))).toMatch(/keeps no NSEC3 chain \(serial \d+\)\n$/);
    const after = await cli.ok([
      'zone',
      'export',
      '--config',
      'f/config.json',
      '--zone',
      ZONE,
      '--no-nsec3',
    ]);
    expect(after).not.toContain('NSEC3');
  });
});
