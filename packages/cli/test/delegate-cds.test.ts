import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CDS_NOW as T0,
  CHILD_ZONE,
  K1,
  K2,
  K3,
  dsOf,
  honest,
  startChildServer,
  type ChildServer,
} from '../../../test/helpers/cds-child.js';
import { createCliFixture } from './fixture.js';

/**
 * `delegate --ds-from-cds`: the operator approving a child's CDS by hand. The parent is a DP
 * made by `init dp` (+44) that sub-delegates +447 to a child nameserver on loopback serving
 * CDS/CDNSKEY signed as each test needs; the clock is the one those signatures were made for.
 */

const cli = createCliFixture('delegate-cds');
let child: ChildServer;
const now = (): number => T0;

interface CdsJson {
  parent: string;
  zone: string;
  outcome: string;
  ds: Array<{ keyTag: number; digestType: number }>;
  serial?: number;
}

beforeAll(async () => {
  child = await startChildServer(honest([K1], undefined));
  await cli.ok(['init', 'dp', '--dir', 'dp', '--range', '+44', '--udp', '0', '--ca-dir', 'ca']);
  // The child's nameservers answer on the fixture's port (the poller's `cds.port`).
  const path = join(cli.dir, 'dp', 'config.json');
  const config = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  writeFileSync(path, JSON.stringify({ ...config, cds: { port: child.port, timeoutMs: 2000 } }));
  const ds = dsOf(K1);
  await cli.ok([
    'delegate',
    '--config',
    'dp/config.json',
    '--range',
    '+447',
    '--ns',
    `ns1.${CHILD_ZONE}=127.0.0.1`,
    '--ds',
    `${ds.keyTag} 15 2 ${Buffer.from(ds.digest).toString('hex')}`,
  ]);
});

afterAll(async () => {
  await child.close();
  cli.cleanup();
});

async function fromCds(
  json: boolean,
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return cli.run(
    [
      'delegate',
      '--config',
      'dp/config.json',
      '--range',
      '+447',
      '--ds-from-cds',
      ...(json ? ['--json'] : []),
    ],
    { now },
  );
}

describe('delegate --ds-from-cds', () => {
  it('refuses a CDS signed by a key the DS does not name, and changes nothing', async () => {
    child.content = {
      dnskeys: [K1.dnskey, K3.dnskey],
      dnskeySigners: [K1, K3],
      cds: [dsOf(K3)],
      cdnskey: [K3.dnskey],
      cdsSigners: [K3],
      inception: T0 - 600,
    };
    const result = await fromCds(false);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/the CDS of 7\.4\.4\.e164\.mimi\.arpa was not applied: signer/);
    const listed = JSON.parse(
      await cli.ok(['delegations', '--config', 'dp/config.json', '--json']),
    ) as Array<{ zone: string; ds: Array<{ keyTag: number }> }>;
    expect(listed.find((d) => d.zone === CHILD_ZONE)?.ds.map((d) => d.keyTag)).toEqual([K1.keyTag]);
  });

  it('prints and applies the DS the validated CDS asks for', async () => {
    child.content = honest([K1, K2], [K1, K2], T0 - 300);
    const result = await fromCds(true);
    expect(result.exitCode, result.stderr).toBe(0);
    const out = JSON.parse(result.stdout) as CdsJson;
    expect(out.outcome).toBe('updated');
    expect(out.ds.map((d) => d.keyTag).sort()).toEqual([K1.keyTag, K2.keyTag].sort());
    expect(out.serial).toBeGreaterThan(1);

    const again = await fromCds(false);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toMatch(/names the DS 4\.4\.e164\.mimi\.arpa already holds/);
    expect(again.stdout).toMatch(
      new RegExp(
        `^${CHILD_ZONE.replaceAll('.', '\\.')}\\. \\d+ IN DS ${K2.keyTag} 15 2 [0-9a-f]{64}$`,
        'm',
      ),
    );
  });

  it('takes no other DS or nameserver flag', async () => {
    const result = await cli.run([
      'delegate',
      '--config',
      'dp/config.json',
      '--range',
      '+447',
      '--ds-from-cds',
      '--ds',
      `1 15 2 ${'00'.repeat(32)}`,
    ]);
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(/--ds-from-cds changes only the DS/);
  });
});
