import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPairFromSeed } from '@mimi-discovery/common';
import type { AuthkeyChangeJson, AuthkeyListingJson } from '../src/commands/authorized-keys.js';
import type { RevokeJson } from '../src/commands/csip.js';
import { createCliFixture } from './fixture.js';

// `keys list|add-prover|remove-prover|add-csip|remove-csip|renew` on a DP's store, and
// `csip keygen|revoke` into it: what each prints, and every refusal as one line, a non-zero exit
// and nothing stored.

const cli = createCliFixture('authorized-keys');
afterAll(() => cli.cleanup());

const ZONE = '4.4.e164.mimi.arpa';
const DP = ['--config', 'dp/config.json'];
const AT = ['--zone', ZONE];
const DAY = 86_400;
const PROVER = keyPairFromSeed(new Uint8Array(32).fill(0x41));
const b64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

const list = async (): Promise<AuthkeyListingJson> => {
  const [listing] = await cli.json<AuthkeyListingJson[]>(['keys', 'list', ...DP, ...AT]);
  if (listing === undefined) throw new Error('no listing');
  return listing;
};

/** This DP's own prover key, base64url. */
let ownKey = '';

beforeAll(async () => {
  await cli.ok(['init', 'dp', '--dir', 'dp', '--range', '+44', '--udp', '0', '--tcp', '0']);
  ownKey = (await list()).keys.find((k) => k.own)?.publicKey ?? '';
});

describe('keys list', () => {
  it("lists the DP's own prover key at the short AUTHKEY TTL", async () => {
    const listing = await list();
    expect(listing).toMatchObject({ zone: ZONE, ttl: 300 });
    expect(listing.keys).toEqual([expect.objectContaining({ role: 'prover', own: true })]);
    // A new zone lists the DP's prover for prover.authkeyValidityDays (365), not 10 years.
    const notAfter = listing.keys[0]?.notAfter ?? 0;
    expect(Math.abs(notAfter - (Math.floor(Date.now() / 1000) + 365 * DAY))).toBeLessThan(DAY);
    const text = await cli.ok(['keys', 'list', ...DP]);
    expect(text).toContain(`${ZONE} (AUTHKEY TTL 300 s)`);
    expect(text).toContain("this DP's prover");
  });
});

describe('keys add-prover, remove-prover, add-csip, remove-csip', () => {
  it('adds an independent prover for --days, given in base64 or base64url, and removes it', async () => {
    const standard = Buffer.from(PROVER.publicKey).toString('base64');
    const start = Math.floor(Date.now() / 1000);
    const added = await cli.json<AuthkeyChangeJson>([
      'keys',
      'add-prover',
      ...DP,
      ...AT,
      '--public-key',
      standard,
      '--days',
      '30',
    ]);
    expect(added).toMatchObject({
      zone: ZONE,
      role: 'prover',
      publicKey: b64url(PROVER.publicKey),
      changed: true,
      ttl: 300,
    });
    expect(added.notAfter).toBeGreaterThanOrEqual(start + 30 * DAY);
    expect((await list()).keys.map((k) => k.publicKey)).toContain(b64url(PROVER.publicKey));
    const again = await cli.ok([
      'keys',
      'add-prover',
      ...DP,
      ...AT,
      '--public-key',
      b64url(PROVER.publicKey),
    ]);
    expect(again).toContain('was already authorized');
    const removed = await cli.ok([
      'keys',
      'remove-prover',
      ...DP,
      ...AT,
      '--public-key',
      b64url(PROVER.publicKey),
    ]);
    expect(removed).toMatch(/^removed prover \S+ from 4\.4\.e164\.mimi\.arpa \(serial \d+\)\n/);
    expect((await list()).keys).toHaveLength(1);
  });

  it('renews the DP’s own prover key to prover.authkeyValidityDays', async () => {
    const start = Math.floor(Date.now() / 1000);
    // A new zone already lists the key for 365 days: --days moves it first, so that the plain
    // renewal below changes something.
    const [longer] = await cli.json<AuthkeyChangeJson[]>(['keys', 'renew', ...DP, '--days', '400']);
    expect(longer).toMatchObject({ zone: ZONE, role: 'prover', changed: true });
    expect(longer?.notAfter).toBeGreaterThanOrEqual(start + 400 * DAY);
    const [renewed] = await cli.json<AuthkeyChangeJson[]>(['keys', 'renew', ...DP]);
    expect(renewed).toMatchObject({ zone: ZONE, role: 'prover', changed: true });
    expect(renewed?.notAfter).toBeGreaterThanOrEqual(start + 365 * DAY);
    expect(renewed?.notAfter).toBeLessThan(start + 366 * DAY);
    const own = (await list()).keys.find((k) => k.own);
    expect(own?.notAfter).toBe(renewed?.notAfter);
  });

  it.each<[string, () => string[], number, string]>([
    [
      'a key that is not listed',
      () => ['remove-csip', ...DP, ...AT, '--public-key', b64url(PROVER.publicKey)],
      2,
      'ERR_AUTHKEY_NOT_LISTED',
    ],
    [
      "the DP's own prover key",
      () => ['remove-prover', ...DP, ...AT, '--public-key', ownKey],
      2,
      'ERR_AUTHKEY_OWN_PROVER',
    ],
    [
      'a key of 31 octets',
      () => ['add-csip', ...DP, ...AT, '--public-key', b64url(new Uint8Array(31))],
      1,
      'ERR_USAGE',
    ],
    [
      'a key that is not base64',
      () => ['add-csip', ...DP, ...AT, '--public-key', 'not a key!'],
      1,
      'ERR_USAGE',
    ],
    [
      'a zone the store does not hold',
      () => [
        'add-csip',
        ...DP,
        '--zone',
        'example.com.email.mimi.arpa',
        '--public-key',
        b64url(PROVER.publicKey),
      ],
      2,
      'ERR_AUTHKEY_NO_ZONE',
    ],
    [
      'a validity of 0 days',
      () => ['add-csip', ...DP, ...AT, '--public-key', b64url(PROVER.publicKey), '--days', '0'],
      1,
      'ERR_USAGE',
    ],
    [
      'a missing --zone',
      () => ['add-prover', ...DP, '--public-key', b64url(PROVER.publicKey)],
      1,
      'ERR_USAGE',
    ],
  ])(
    'refuses %s with one line, a non-zero exit and nothing stored',
    async (_what, args, exit, code) => {
      const before = await list();
      const result = await cli.run(['keys', ...args()]);
      expect(result.exitCode).toBe(exit);
      expect(result.stdout).toBe('');
      expect(result.stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
      expect(result.stderr).toContain(`(${code})`);
      expect(await list()).toEqual(before);
    },
  );
});

describe('csip revoke', () => {
  it('is refused for a key the zone does not list, and applied once it is (--config)', async () => {
    const made = await cli.json<{ file: string; publicKey: string }>([
      'csip',
      'keygen',
      '--out',
      'operator.key',
    ]);
    const revoke = ['csip', 'revoke', '--key', 'operator.key', '--csi', '+44 20 7946 0018', ...DP];
    const refused = await cli.run(revoke);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('(ERR_CSIP_NOT_AUTHORIZED)');
    await cli.ok(['keys', 'add-csip', ...DP, ...AT, '--public-key', made.publicKey]);
    const before = Math.floor(Date.now() / 1000) - 60;
    const done = await cli.json<RevokeJson>([...revoke, '--before', String(before)]);
    expect(done).toMatchObject({ csi: 'tel:+442079460018', before, zone: ZONE, removed: 0 });
    const text = await cli.ok([...revoke, '--before', '2026-01-01']);
    expect(text).toMatch(
      /^revoked the attestations of tel:\+442079460018 issued before 2026-01-01T00:00:00\.000Z: 0 mappings deleted/,
    );
  });

  it.each<[string, string[], string]>([
    ['both --api and --config', ['--api', 'https://127.0.0.1:1', ...DP], 'ERR_USAGE'],
    ['neither --api nor --config', [], 'ERR_USAGE'],
    ['a date that is not one', [...DP, '--before', 'yesterday'], 'ERR_USAGE'],
    ['a CSI that is not one', [...DP, '--csi', '+0 12'], 'ERR_CSI_PHONE_INVALID'],
  ])('refuses %s with one line and exit 1', async (_what, args, code) => {
    const result = await cli.run([
      'csip',
      'revoke',
      '--key',
      'operator.key',
      '--csi',
      '+44 20 7946 0018',
      ...args,
    ]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
    expect(result.stderr).toContain(`(${code})`);
  });
});
