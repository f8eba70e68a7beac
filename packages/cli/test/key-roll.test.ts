import type { RollStatus } from '@mimi-discovery/authoritative';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCliFixture } from './fixture.js';

// `keys roll` and `keys status` with the server stopped: they work on the store and the key
// directory of the config (docs/operations.md §8).

const cli = createCliFixture('key-roll');
afterAll(() => cli.cleanup());

const ZONE = 'chat.example.email.mimi.arpa';
const DP = ['--config', 'dp/config.json'];

beforeAll(async () => {
  await cli.ok(['init', 'dp', '--dir', 'dp', '--range', '@chat.example', '--udp', '0']);
});

const status = async (): Promise<RollStatus> => {
  const all = await cli.json<RollStatus[]>(['keys', 'status', ...DP, '--zone', ZONE]);
  const one = all[0];
  if (one === undefined) throw new Error('no status');
  return one;
};

describe('keys roll and keys status', () => {
  it('shows a new zone idle with its one active key', async () => {
    const s = await status();
    expect(s.phase).toBe('idle');
    expect(s.keys.map((k) => k.state)).toEqual(['active']);
    expect(await cli.ok(['keys', 'status', ...DP])).toMatch(
      /^chat\.example\.email\.mimi\.arpa: idle/,
    );
  });

  it('starts a roll: the new key is published, not yet signing', async () => {
    const rolled = await cli.json<RollStatus>(['keys', 'roll', ...DP, '--zone', ZONE]);
    expect(rolled.phase).toBe('publishing');
    expect(rolled.keys.map((k) => k.state)).toEqual(['active', 'published']);
    // Its CDS is planned after IpubC (300 + 3600 + 3600 by default).
    const [old, incoming] = rolled.keys;
    expect((incoming?.timing.syncPublish ?? 0) - (incoming?.timing.publish ?? 0)).toBe(7500);
    expect(old?.timing.inactive).toBeUndefined();
    expect(await status()).toMatchObject({ phase: 'publishing' });
  });

  it('refuses a second roll with one line and exit 2, and writes nothing', async () => {
    const before = await status();
    const result = await cli.run(['keys', 'roll', ...DP, '--zone', ZONE]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/already being rolled in.*ERR_KEY_ROLL_IN_PROGRESS/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(await status()).toEqual(before);
  });

  it('refuses a zone the store does not hold', async () => {
    const result = await cli.run(['keys', 'roll', ...DP, '--zone', 'other.email.mimi.arpa']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/ERR_CLI_NO_ZONE/);
  });

  it('makes the key being rolled in sign at once in an emergency', async () => {
    const rolled = await cli.json<RollStatus>([
      'keys',
      'roll',
      ...DP,
      '--zone',
      ZONE,
      '--emergency',
    ]);
    expect(rolled.keys.map((k) => k.state)).toEqual(['retired', 'active']);
    const result = await cli.run(['keys', 'roll', ...DP, '--zone', ZONE, '--emergency']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/ERR_KEY_ROLL_IN_PROGRESS/);
  });
});
