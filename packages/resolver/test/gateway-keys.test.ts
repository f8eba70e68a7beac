import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GATEWAY_PRIVATE_KEY_FILE, openGatewayKeys } from '../src/index.js';
import {
  GATEWAY_PUBLIC_KEY_FILE,
  decodeKeyConfig,
  decodeOdohConfig,
  encodeKeyConfig,
  parsePublicKeyFile,
} from '@mimi-discovery/common';
import { createFakeClock } from '../../../test/helpers/clock.js';

// The gateway's HPKE keys over a fake clock: made at first start, rotated on schedule, the
// previous generation accepted through the overlap and dropped after it.

const DAY = 86_400;
const START = Date.UTC(2027, 0, 1);
const dirs: string[] = [];

function keyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gateway-keys-'));
  dirs.push(dir);
  return join(dir, 'keys');
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

describe('gateway keys', () => {
  it('makes one generation at first start, with private files 0600 in a 0700 directory', async () => {
    const clock = createFakeClock(START);
    const dir = keyDir();
    const keys = await openGatewayKeys({ keyDir: dir }, { now: clock.seconds });
    expect(keys.generations()).toHaveLength(1);
    expect(keys.ohttp()[0]?.config.keyId).toBe(0);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, GATEWAY_PRIVATE_KEY_FILE)).mode & 0o777).toBe(0o600);
    const published = parsePublicKeyFile(readFileSync(join(dir, GATEWAY_PUBLIC_KEY_FILE), 'utf8'));
    expect(published.map((k) => k.kind)).toEqual(['ohttp', 'odoh']);
    expect(published[0]?.notBefore).toBe(clock.seconds());
    expect(published[0]?.notAfter).toBe(clock.seconds() + 8 * DAY);
    expect(decodeKeyConfig(published[0]?.config ?? new Uint8Array())).toEqual(
      keys.ohttp()[0]?.config,
    );
    expect(decodeOdohConfig(published[1]?.config ?? new Uint8Array())).toEqual(
      keys.odoh()[0]?.config,
    );
    // No private key in the public file.
    const secret = JSON.parse(readFileSync(join(dir, GATEWAY_PRIVATE_KEY_FILE), 'utf8')) as {
      generations: Array<{ ohttp: string; odoh: string }>;
    };
    const publicText = readFileSync(join(dir, GATEWAY_PUBLIC_KEY_FILE), 'utf8');
    for (const g of secret.generations) {
      expect(publicText).not.toContain(g.ohttp);
      expect(publicText).not.toContain(g.odoh);
    }
  });

  it('keeps its keys across a restart', async () => {
    const clock = createFakeClock(START);
    const dir = keyDir();
    const first = await openGatewayKeys({ keyDir: dir }, { now: clock.seconds });
    clock.advance(DAY);
    const second = await openGatewayKeys({ keyDir: dir }, { now: clock.seconds });
    expect(second.ohttp().map((k) => hex(k.privateKey))).toEqual(
      first.ohttp().map((k) => hex(k.privateKey)),
    );
  });

  it('rotates after the rotation period, keeps the previous key through the overlap, then drops it', async () => {
    const clock = createFakeClock(START);
    const dir = keyDir();
    const keys = await openGatewayKeys(
      { keyDir: dir, rotationSeconds: 7 * DAY, overlapSeconds: DAY },
      { now: clock.seconds },
    );
    const original = encodeKeyConfig(keys.ohttp()[0]!.config);
    expect(keys.secondsToRotation()).toBe(7 * DAY);
    clock.advance(7 * DAY - 1);
    await keys.refresh();
    expect(keys.generations()).toHaveLength(1);

    clock.advance(1);
    await keys.refresh();
    expect(keys.ohttp().map((k) => k.config.keyId)).toEqual([1, 0]);
    expect(encodeKeyConfig(keys.ohttp()[1]!.config)).toEqual(original);
    const published = parsePublicKeyFile(readFileSync(join(dir, GATEWAY_PUBLIC_KEY_FILE), 'utf8'));
    expect(published.map((k) => k.kind)).toEqual(['ohttp', 'odoh', 'ohttp', 'odoh']);
    expect(published[0]!.notBefore).toBeGreaterThan(published[2]!.notBefore);

    clock.advance(DAY - 1);
    await keys.refresh();
    expect(keys.generations()).toHaveLength(2);
    clock.advance(1);
    await keys.refresh();
    expect(keys.ohttp().map((k) => k.config.keyId)).toEqual([1]);
  });

  it('shares one rotation among concurrent refreshes', async () => {
    const clock = createFakeClock(START);
    const keys = await openGatewayKeys({ keyDir: keyDir() }, { now: clock.seconds });
    clock.advance(7 * DAY);
    await Promise.all(Array.from({ length: 10 }, () => keys.refresh()));
    expect(keys.ohttp().map((k) => k.config.keyId)).toEqual([1, 0]);
  });

  it('counts key ids through 0–255 and wraps', async () => {
    const clock = createFakeClock(START);
    const dir = keyDir();
    mkdirSync(dir, { recursive: true });
    const key = (): string => randomBytes(32).toString('base64url');
    writeFileSync(
      join(dir, GATEWAY_PRIVATE_KEY_FILE),
      JSON.stringify({
        version: 1,
        generations: [{ created: clock.seconds(), ohttpKeyId: 254, ohttp: key(), odoh: key() }],
      }),
    );
    const keys = await openGatewayKeys(
      { keyDir: dir, rotationSeconds: 10, overlapSeconds: 10 },
      { now: clock.seconds },
    );
    expect(keys.ohttp().map((k) => k.config.keyId)).toEqual([254]);
    clock.advance(10);
    await keys.refresh();
    expect(keys.ohttp().map((k) => k.config.keyId)).toEqual([255, 254]);
    clock.advance(10);
    await keys.refresh();
    expect(keys.ohttp().map((k) => k.config.keyId)).toEqual([0, 255]);
  });

  it('refuses a private key file it cannot read, and leaves it as it is', async () => {
    const dir = keyDir();
    await openGatewayKeys({ keyDir: dir });
    const path = join(dir, GATEWAY_PRIVATE_KEY_FILE);
    writeFileSync(path, '{"version": 1, "generations": [{"created": 1}]}');
    await expect(openGatewayKeys({ keyDir: dir })).rejects.toMatchObject({
      code: 'ERR_GATEWAY_KEYS',
    });
    expect(readFileSync(path, 'utf8')).toBe('{"version": 1, "generations": [{"created": 1}]}');
  });
});
