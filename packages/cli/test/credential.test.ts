import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readConfigFile, silentLogger } from '@mimi-discovery/common';
import { dpConfigSchema, startDp, type RunningDp } from '@mimi-discovery/authoritative';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outboxCode } from '../../../test/helpers/registration.js';
import { createCliFixture } from './fixture.js';

/**
 * `recipient credential` against a DP, and the refusals of `credential verify` that need no
 * network (test/credentials-network.test.ts verifies through a real resolver).
 */

const cli = createCliFixture('credential');
const CSI = 'tel:+442079460018';

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
  await cli.ok(['recipient', 'keygen', '--out', 'alice.key']);
  await cli.ok(['recipient', 'keygen', '--out', 'bare.key']);
  await cli.ok(['recipient', 'prove', ...api, '--csi', CSI]);
  const code = await outboxCode(join(cli.dir, 'dp', 'outbox.jsonl'), CSI);
  await cli.ok([
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
});

afterAll(async () => {
  await provider.close();
  cli.cleanup();
});

const credential = (more: readonly string[]) =>
  cli.run(['recipient', 'credential', ...api, '--key', 'alice.key', ...more]);

describe('recipient credential', () => {
  it('writes the certificate and the prover certificate, and the prover certificate alone', async () => {
    const report = await cli.json<{
      csi: string;
      format: string;
      file: string;
      issuerFile: string;
    }>([
      'recipient',
      'credential',
      ...api,
      '--key',
      'alice.key',
      '--format',
      'x509',
      '--out',
      'alice.pem',
      '--issuer-out',
      'prover.pem',
    ]);
    expect(report).toMatchObject({ csi: CSI, format: 'x509' });
    const both = readFileSync(join(cli.dir, 'alice.pem'), 'utf8');
    const prover = readFileSync(join(cli.dir, 'prover.pem'), 'utf8');
    expect(both.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(2);
    expect(both.endsWith(prover)).toBe(true);
    expect(prover.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(1);
  });

  it('writes an SD-JWT', async () => {
    const result = await credential(['--format', 'sd-jwt', '--out', 'alice.sd-jwt']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(readFileSync(join(cli.dir, 'alice.sd-jwt'), 'utf8')).toMatch(
      /^[\w-]+\.[\w-]+\.[\w-]+~[\w-]+~\n$/,
    );
  });

  it('refuses bad flags before asking the DP, writing nothing', async () => {
    for (const [flags, message] of [
      [['--format', 'pdf', '--out', 'a.pdf'], 'pdf'],
      [['--format', 'sd-jwt', '--out', 'b.sd-jwt', '--issuer-out', 'b.pem'], '--issuer-out'],
      [['--format', 'x509', '--out', 'c.pem', '--issuer-out', 'c.pem'], '--issuer-out'],
    ] as const) {
      const result = await credential(flags);
      expect(result.exitCode, flags.join(' ')).toBe(1);
      expect(result.stderr).toContain(message);
    }
    for (const file of ['a.pdf', 'b.sd-jwt', 'b.pem', 'c.pem']) {
      expect(existsSync(join(cli.dir, file)), file).toBe(false);
    }
    const bare = await cli.run([
      'recipient',
      'credential',
      ...api,
      '--key',
      'bare.key',
      '--format',
      'x509',
      '--out',
      'bare.pem',
    ]);
    expect(bare.exitCode).toBe(1);
    expect(bare.stderr).toContain('ERR_CLI_KEY_FILE');
  });
});

describe('credential verify', () => {
  it('refuses a missing, oversized or garbled file and a resolver it may not trust', async () => {
    const verify = (file: string, resolver = 'udp://127.0.0.1:53') =>
      cli.run(['credential', 'verify', file, '--resolver', resolver]);
    expect((await verify('missing.pem')).exitCode).toBe(1);
    writeFileSync(join(cli.dir, 'big.pem'), 'x'.repeat(17 * 1024));
    expect((await verify('big.pem')).exitCode).toBe(1);
    const remote = await verify('alice.pem', 'udp://192.0.2.1:53');
    expect(remote.exitCode).toBe(1);
    expect(remote.stderr).toContain('loopback');
    writeFileSync(join(cli.dir, 'garbled.pem'), 'not a credential');
    const garbled = await verify('garbled.pem');
    expect(garbled.exitCode).toBe(2);
    expect(garbled.stderr).toContain('ERR_CREDENTIAL_MALFORMED');
  });

  it('says a credential is unverifiable when the resolver does not answer', async () => {
    const result = await cli.run([
      'credential',
      'verify',
      'alice.pem',
      '--resolver',
      'tcp://127.0.0.1:1',
    ]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('ERR_CREDENTIAL_UNVERIFIABLE');
  });
});
