import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  attestsCsi,
  buildQuery,
  decodeAttestation,
  decodeMapping,
  openSealed,
  parseAudienceKey,
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
  return (await mapRecordBytes()).map((data) => decodeMapping(data));
}

/** The RDATA of the MAP records the DP serves for Alice, as they go over the wire. */
async function mapRecordBytes(): Promise<Uint8Array[]> {
  const dns = provider.dns?.udp;
  if (dns === undefined) throw new Error('the DP serves no UDP');
  const response = await queryUdp({ host: dns.host, port: dns.port }, buildQuery(NAME, 'MAP'));
  return response.answers.flatMap((rr) => (rr.type === 'MAP' ? [rr.data] : []));
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

  it('makes an audience key file readable by its owner only, never overwritten, and prints the line to share', async () => {
    const made = await cli.json<{ file: string; kid: string; share: string }>([
      'recipient',
      'audience-key',
      '--out',
      'work.audience',
    ]);
    expect(made.file).toBe(join(cli.dir, 'work.audience'));
    expect(statSync(made.file).mode & 0o777).toBe(0o600);
    const text = readFileSync(made.file, 'utf8');
    // Comment lines, then the very line printed to share.
    expect(text.trimEnd().split('\n').at(-1)).toBe(made.share);
    expect(made.share).toMatch(/^mimi-audience:[A-Za-z0-9_-]{43}$/);
    const key = await parseAudienceKey(text);
    expect(Buffer.from(key.kid).toString('base64url')).toBe(made.kid);
    expect((await parseAudienceKey(made.share)).kid).toEqual(key.kid);

    const again = await cli.run(['recipient', 'audience-key', '--out', 'work.audience']);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(
      /work\.audience exists: refusing to overwrite it \(ERR_CLI_EXISTS\)\n$/,
    );
    expect(readFileSync(made.file, 'utf8')).toBe(text);

    const printed = await cli.ok(['recipient', 'audience-key', '--out', 'club.audience']);
    const club = await parseAudienceKey(readFileSync(join(cli.dir, 'club.audience'), 'utf8'));
    const kid = Buffer.from(club.kid).toString('base64url');
    expect(printed).toContain(`key id ${kid}\n`);
    expect(printed.trimEnd().split('\n').at(-1)).toMatch(/^mimi-audience:/);
    expect(kid).not.toBe(made.kid);
  });

  it('makes one audience key file of two concurrent runs for one name, the other refused', async () => {
    const runs = await Promise.all(
      [0, 1].map(() => cli.run(['recipient', 'audience-key', '--out', 'race.audience', '--json'])),
    );
    expect(runs.map((r) => r.exitCode).sort()).toEqual([0, 2]);
    const won = runs.find((r) => r.exitCode === 0);
    const lost = runs.find((r) => r.exitCode === 2);
    expect(lost?.stderr).toMatch(
      /race\.audience exists: refusing to overwrite it \(ERR_CLI_EXISTS\)\n$/,
    );
    const { share } = JSON.parse(won?.stdout ?? '{}') as { share: string };
    // The file holds the key the winner printed, not the loser's.
    expect(readFileSync(join(cli.dir, 'race.audience'), 'utf8').trimEnd().split('\n').at(-1)).toBe(
      share,
    );
  });

  it('publishes public and sealed MSPs in one mapping: one box per audience key, opened only with it', async () => {
    const published = await cli.json<{
      msps: number;
      sealed: Array<{ kid: string; msps: number }>;
    }>([
      'recipient',
      'publish',
      ...api,
      '--key',
      'alice.key',
      '--seq',
      '20',
      '--msp',
      'chat.example:personal,pref:2',
      '--seal',
      'work.audience=wire.example:business,pref:1',
      '--seal',
      'club.audience=text.example:ctx:soccer',
      '--seal',
      'work.audience=mail.example:business',
      '--uri',
      'wire.example=im:alice@wire.example',
    ]);
    const work = await parseAudienceKey(readFileSync(join(cli.dir, 'work.audience'), 'utf8'));
    const club = await parseAudienceKey(readFileSync(join(cli.dir, 'club.audience'), 'utf8'));
    const kid = (key: { kid: Uint8Array }): string => Buffer.from(key.kid).toString('base64url');
    expect(published.msps).toBe(1);
    expect(published.sealed.map((s) => [s.kid, s.msps])).toEqual([
      [kid(work), 2],
      [kid(club), 1],
    ]);

    const [mapping, ...others] = await mapRecords();
    expect(others).toEqual([]);
    if (mapping === undefined) throw new Error('no mapping served');
    expect(mapping.msps).toEqual([{ provider: 'chat.example', tags: ['personal', 'pref:2'] }]);
    const boxes = mapping.sealed ?? [];
    expect(boxes.map((b) => kid(b))).toEqual([kid(work), kid(club)]);
    const [workBox, clubBox] = boxes;
    if (workBox === undefined || clubBox === undefined) throw new Error('two boxes expected');
    expect(await openSealed(CSI, mapping.key, workBox, work)).toEqual([
      { provider: 'wire.example', tags: ['business', 'pref:1'], uri: 'im:alice@wire.example' },
      { provider: 'mail.example', tags: ['business'] },
    ]);
    expect(await openSealed(CSI, mapping.key, clubBox, club)).toEqual([
      { provider: 'text.example', tags: ['ctx:soccer'] },
    ]);
    // The wrong key opens nothing.
    await expect(openSealed(CSI, mapping.key, clubBox, work)).rejects.toMatchObject({
      code: 'ERR_SEALED_KID',
    });
    // Nothing of a sealed entry is in the record in clear.
    const rdata = Buffer.from((await mapRecordBytes())[0] ?? new Uint8Array()).toString('latin1');
    for (const secret of [
      'wire.example',
      'mail.example',
      'text.example',
      'ctx:soccer',
      'business',
    ]) {
      expect(rdata).not.toContain(secret);
    }
  });

  it('publishes a mapping of sealed MSPs only, with no public MSP', async () => {
    const text = await cli.ok([
      'recipient',
      'publish',
      ...api,
      '--key',
      'alice.key',
      '--seq',
      '21',
      '--seal',
      'club.audience=wire.example:ctx:soccer',
    ]);
    expect(text).toMatch(
      /^published a mapping with no public MSP, 1 MSP sealed to key id [\w-]{11} for tel:\+442079460018, seq 21 \(zone 4\.4\.e164\.mimi\.arpa, serial \d+\)\n$/,
    );
    const [mapping] = await mapRecords();
    expect(mapping?.msps).toEqual([]);
    expect(mapping?.sealed).toHaveLength(1);
  });

  it('refuses tags that break the vocabulary and unusable audience keys, publishing nothing', async () => {
    const before = await mapRecordBytes();
    writeFileSync(join(cli.dir, 'garbage.audience'), 'mimi-audience:not-a-key\n');
    for (let i = 0; i < 9; i++) {
      await cli.ok(['recipient', 'audience-key', '--out', `many-${i}.audience`]);
    }
    const publish = ['publish', ...api, '--key', 'alice.key', '--seq', '30'];
    const cases: Array<[string[], RegExp]> = [
      [
        ['--msp', 'chat.example:pref:0'],
        /"pref:0" is no rank: write pref:1 to pref:999.*\(ERR_USAGE\)/,
      ],
      [['--msp', 'chat.example:pref:1,pref:2'], /at most one pref: tag \(ERR_USAGE\)/],
      [['--msp', 'chat.example:pref:01'], /"pref:01" is no rank.*\(ERR_USAGE\)/],
      [['--msp', 'chat.example:business,business'], /"business" is given twice \(ERR_USAGE\)/],
      [
        ['--seal', 'work.audience=wire.example:ctx:Soccer'],
        /"ctx:Soccer" is no context.*\(ERR_USAGE\)/,
      ],
      [['--seal', 'wire.example'], /expected FILE=PROVIDER\[:TAG\[,TAG\]\] \(ERR_USAGE\)/],
      [
        ['--seal', 'missing.audience=wire.example'],
        /--seal missing\.audience: cannot read it.*\(ERR_USAGE\)/,
      ],
      [
        ['--seal', 'garbage.audience=wire.example'],
        /--seal garbage\.audience: .*\(ERR_AUDIENCE_KEY\)/,
      ],
      [
        Array.from({ length: 9 }, (_, i) => ['--seal', `many-${i}.audience=wire.example`]).flat(),
        /--seal: 9 audience keys, a mapping holds at most 8 sealed boxes \(ERR_USAGE\)/,
      ],
      [
        ['--seal', 'work.audience=wire.example', '--uri', 'x.example=im:a'],
        /x\.example is not one of the --msp or --seal providers \(ERR_USAGE\)/,
      ],
    ];
    for (const [flags, message] of cases) {
      const result = await cli.run(['recipient', ...publish, ...flags]);
      expect({ flags, exitCode: result.exitCode }).toEqual({ flags, exitCode: 1 });
      expect(result.stderr).toMatch(message);
      expect(result.stderr.split('\n')).toHaveLength(2);
    }
    expect(await mapRecordBytes()).toEqual(before);
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
        /b\.example is not one of the --msp or --seal providers \(ERR_USAGE\)/,
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
