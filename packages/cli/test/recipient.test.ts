import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  attestsCsi,
  buildQuery,
  decodeAttestation,
  decodeMapping,
  queryUdp,
  readConfigFile,
  silentLogger,
} from '@mimi-discovery/common';
import { dpConfigSchema, startDp, type RunningDp } from '@mimi-discovery/authoritative';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outboxCode } from '../../../test/helpers/registration.js';
import { createCliFixture } from './fixture.js';

const cli = createCliFixture('recipient');
const ZONE = '4.4.e164.mimi.arpa';
const CSI = 'tel:+442079460018';
const NAME = `8.1.0.0.6.4.9.7.0.2.${ZONE}`;

let provider: RunningDp;
let api: string[];

beforeAll(async () => {
  await cli.ok([
    'init',
    'dp',
    '--dir',
    'dp',
    '--range',
    '+44',
    '--range',
    '@example.com',
    '--udp',
    '0',
    '--api',
    '0',
    '--ca-dir',
    'ca',
  ]);
  const config = await readConfigFile(join(cli.dir, 'dp', 'config.json'), dpConfigSchema);
  provider = await startDp(config, { log: silentLogger });
  const url = provider.api?.url;
  if (url === undefined) throw new Error('the DP serves no registration API');
  api = ['--api', url, '--ca', 'ca/ca.pem'];
});

afterAll(async () => {
  await provider.close();
  cli.cleanup();
});

/** The code the DP last wrote to its outbox for `csi`. */
function lastCode(csi: string): Promise<string> {
  return outboxCode(join(cli.dir, 'dp', 'outbox.jsonl'), csi);
}

async function mapRecords(): Promise<Array<ReturnType<typeof decodeMapping>>> {
  const dns = provider.dns?.udp;
  if (dns === undefined) throw new Error('the DP serves no UDP');
  const response = await queryUdp({ host: dns.host, port: dns.port }, buildQuery(NAME, 'MAP'));
  return response.answers.flatMap((rr) => (rr.type === 'MAP' ? [decodeMapping(rr.data)] : []));
}

describe('recipient registration against a DP', () => {
  it('creates a key file readable by its owner only, and never overwrites it', async () => {
    const made = await cli.json<{ file: string; publicKey: string }>([
      'recipient',
      'keygen',
      '--out',
      'alice.key',
    ]);
    expect(made.file).toBe(join(cli.dir, 'alice.key'));
    expect(statSync(made.file).mode & 0o777).toBe(0o600);
    const key = cli.readJson<Record<string, string>>('alice.key');
    expect(Object.keys(key).sort()).toEqual(['publicKey', 'secretKey']);
    expect(key['publicKey']).toBe(made.publicKey);
    expect(Buffer.from(key['secretKey'] ?? '', 'base64url')).toHaveLength(32);

    const again = await cli.run(['recipient', 'keygen', '--out', 'alice.key']);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(
      /alice\.key exists: refusing to overwrite it \(ERR_CLI_EXISTS\)\n$/,
    );
    expect(cli.readJson<Record<string, string>>('alice.key')).toEqual(key);
  });

  it('does not trust the DP without its CA', async () => {
    const result = await cli.run([
      'recipient',
      'prove',
      '--api',
      provider.api?.url ?? '',
      '--csi',
      CSI,
    ]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(
      /^mimi-discovery: cannot reach https:\/\/127\.0\.0\.1:\d+: .*\(ERR_CLI_API_UNREACHABLE\)\n$/,
    );
  });

  it('proves the CSI, reporting the one line of a refused code, then saves the attestation', async () => {
    const proved = await cli.json<{ csi: string; channel: string; expiresAt: number }>([
      'recipient',
      'prove',
      ...api,
      '--csi',
      '+44 (0)20 7946 0018',
    ]);
    expect(proved).toMatchObject({ csi: CSI, channel: 'outbox' });
    const code = await lastCode(CSI);
    const wrong = code === '000000' ? '111111' : '000000';

    const refused = await cli.run([
      'recipient',
      'confirm',
      ...api,
      '--csi',
      CSI,
      '--code',
      wrong,
      '--key',
      'alice.key',
    ]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(
      /^mimi-discovery: the code is not valid for this CSI.* \(ERR_CODE_INVALID\)\n$/,
    );

    const confirmed = await cli.json<{ csi: string; key: string; prover: string; file: string }>([
      'recipient',
      'confirm',
      ...api,
      '--csi',
      CSI,
      '--code',
      code,
      '--key',
      'alice.key',
    ]);
    expect(confirmed.prover).toBe(
      Buffer.from(provider.store.proverKey().publicKey).toString('base64url'),
    );
    expect(confirmed.file).toBe(join(cli.dir, 'alice.key'));
    const key = cli.readJson<Record<string, string>>('alice.key');
    expect(key['csi']).toBe(CSI);
    const attestation = decodeAttestation(Buffer.from(key['attestation'] ?? '', 'base64url'));
    // The attestation does not carry the CSI; its signature covers the one the file names.
    expect(attestation).not.toHaveProperty('csi');
    expect(attestsCsi(attestation, CSI)).toBe(true);
    expect(Buffer.from(attestation.key).toString('base64url')).toBe(key['publicKey']);
    expect(statSync(join(cli.dir, 'alice.key')).mode & 0o777).toBe(0o600);
  });

  it('publishes a mapping that the DP serves, then an empty one', async () => {
    const published = await cli.json<{ zone: string; name: string; seq: number }>([
      'recipient',
      'publish',
      ...api,
      '--key',
      'alice.key',
      '--msp',
      'chat.example:primary,work',
      '--msp',
      'msg.example',
      '--uri',
      'msg.example=im:alice@msg.example',
      '--seq',
      '10',
    ]);
    expect(published).toMatchObject({ zone: ZONE, name: NAME, seq: 10 });
    const [mapping] = await mapRecords();
    expect(mapping?.msps).toEqual([
      { provider: 'chat.example', tags: ['primary', 'work'] },
      { provider: 'msg.example', tags: [], uri: 'im:alice@msg.example' },
    ]);
    expect(mapping?.seq).toBe(10);
    expect(mapping !== undefined && mapping.exp - mapping.iat).toBe(30 * 86_400);

    const empty = await cli.ok([
      'recipient',
      'publish',
      ...api,
      '--key',
      'alice.key',
      '--seq',
      '11',
      '--ttl-days',
      '2',
    ]);
    expect(empty).toMatch(
      /^published an empty mapping \(no MSP\) for tel:\+442079460018, seq 11 \(zone 4\.4\.e164\.mimi\.arpa, serial \d+\)\n$/,
    );
    const maps = await mapRecords();
    expect(maps.map((m) => [m.seq, m.msps.length])).toEqual([[11, 0]]);

    const stale = await cli.run([
      'recipient',
      'publish',
      ...api,
      '--key',
      'alice.key',
      '--seq',
      '5',
      '--msp',
      'chat.example',
    ]);
    expect(stale.exitCode).toBe(2);
    expect(stale.stderr).toMatch(/\(ERR_STALE_SEQ\)\n$/);
  });

  it('publishes and withdraws a MAPREF', async () => {
    const target = `8.1.0.0.6.4.9.7.0.2.4.4.dp.msp.example`;
    await cli.ok([
      'recipient',
      'mapref',
      ...api,
      '--key',
      'alice.key',
      '--target',
      target.toUpperCase(),
    ]);
    expect(provider.store.readRRset(ZONE, NAME, 'MAPREF').map((r) => r.data)).toEqual([target]);
    const withdrawn = await cli.ok([
      'recipient',
      'mapref',
      ...api,
      '--key',
      'alice.key',
      '--withdraw',
    ]);
    expect(withdrawn).toMatch(/^withdrew the MAPREF records for tel:\+442079460018/);
    expect(provider.store.readRRset(ZONE, NAME, 'MAPREF')).toEqual([]);
  });

  it('removes the mappings of the key', async () => {
    const removed = await cli.json<{ seq: number; zone: string }>([
      'recipient',
      'remove',
      ...api,
      '--key',
      'alice.key',
      '--seq',
      '11',
    ]);
    expect(removed).toMatchObject({ seq: 11, zone: ZONE });
    expect(await mapRecords()).toEqual([]);
  });

  it('keeps an attestation in a file of its own with --attestation', async () => {
    await cli.ok(['recipient', 'keygen', '--out', 'bob.key']);
    await cli.ok(['recipient', 'prove', ...api, '--csi', 'Bob@Example.COM']);
    const code = await lastCode('mailto:bob@example.com');
    await cli.ok([
      'recipient',
      'confirm',
      ...api,
      '--csi',
      'bob@example.com',
      '--code',
      code,
      '--key',
      'bob.key',
      '--attestation',
      'bob.att',
    ]);
    expect(Object.keys(cli.readJson<object>('bob.key')).sort()).toEqual(['publicKey', 'secretKey']);
    expect(cli.readJson<{ csi: string }>('bob.att').csi).toBe('mailto:bob@example.com');

    const without = await cli.run([
      'recipient',
      'publish',
      ...api,
      '--key',
      'bob.key',
      '--msp',
      'chat.example',
    ]);
    expect(without.exitCode).toBe(1);
    expect(without.stderr).toMatch(/holds no attestation.*\(ERR_CLI_KEY_FILE\)\n$/);
    const published = await cli.json<{ zone: string }>([
      'recipient',
      'publish',
      ...api,
      '--key',
      'bob.key',
      '--attestation',
      'bob.att',
      '--msp',
      'chat.example',
    ]);
    expect(published.zone).toBe('example.com.email.mimi.arpa');
    const mismatched = await cli.run([
      'recipient',
      'publish',
      ...api,
      '--key',
      'alice.key',
      '--attestation',
      'bob.att',
    ]);
    expect(mismatched.exitCode).toBe(1);
    expect(mismatched.stderr).toMatch(/the attestation is for another key \(ERR_CLI_KEY_FILE\)\n$/);

    // A file that names another CSI than the attestation's, or none.
    const bob = cli.readJson<{ csi: string; attestation: string }>('bob.att');
    const publishWith = async (file: string, content: object) => {
      writeFileSync(join(cli.dir, file), JSON.stringify(content));
      return cli.run(['recipient', 'publish', ...api, '--key', 'bob.key', '--attestation', file]);
    };
    const renamed = await publishWith('eve.att', { ...bob, csi: 'mailto:eve@example.com' });
    expect(renamed.exitCode).toBe(1);
    expect(renamed.stderr).toMatch(
      /the attestation is not of "mailto:eve@example\.com": its signature does not cover it \(ERR_CLI_KEY_FILE\)\n$/,
    );
    const unnamed = await publishWith('none.att', { attestation: bob.attestation });
    expect(unnamed.exitCode).toBe(1);
    expect(unnamed.stderr).toMatch(/csi must name the attested CSI.*\(ERR_CLI_KEY_FILE\)\n$/);
  });

  it('refuses bad input before sending anything', async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ['prove', ...api, '--csi', '020 7946 0018'],
        /--csi "020 7946 0018": .*\(ERR_CSI_PHONE_NO_COUNTRY\)/,
      ],
      [['prove', '--api', 'ftp://dp.example', '--csi', CSI], /expected an https URL \(ERR_USAGE\)/],
      [
        ['publish', ...api, '--key', 'alice.key', '--msp', 'not a domain'],
        /--msp.*not a domain name.*\(ERR_USAGE\)/,
      ],
      [
        ['publish', ...api, '--key', 'alice.key', '--msp', 'a.example', '--uri', 'b.example=x:y'],
        /b\.example is not one of the --msp providers \(ERR_USAGE\)/,
      ],
      [
        ['publish', ...api, '--key', 'missing.key'],
        /missing\.key: cannot read it: ENOENT: .*\(ERR_CLI_KEY_FILE\)/,
      ],
      [['mapref', ...api, '--key', 'alice.key'], /needs --target NAME or --withdraw \(ERR_USAGE\)/],
      [
        ['mapref', ...api, '--key', 'alice.key', '--target', 'x.example', '--withdraw'],
        /cannot be used with.*\(ERR_USAGE\)/,
      ],
    ];
    for (const [argv, message] of cases) {
      const result = await cli.run(['recipient', ...argv]);
      expect({ argv, exitCode: result.exitCode }).toEqual({ argv, exitCode: 1 });
      expect(result.stderr).toMatch(message);
      expect(result.stderr.split('\n')).toHaveLength(2);
    }
  });
});
