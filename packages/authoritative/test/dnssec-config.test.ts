import { ConfigError, parseConfigText } from '@mimi-discovery/common';
import { describe, expect, it } from 'vitest';
import {
  MAX_PARENT_SERVERS,
  MAX_POLICY_SECONDS,
  dpConfigSchema,
  rolloverPolicyOf,
} from '../src/index.js';
import { thrownBy } from '../../../test/helpers/rejection.js';

// The `dnssec` section of a DP's or the root's config (key rollover): raw config text, and what
// it gives or the exact message.

const config = (role: string, dnssec: string): string =>
  `{ "role": "${role}", "dataDir": "/d", "dnssec": ${dnssec} }`;

describe('dnssec config', () => {
  it('defaults to RFC 5011 for the root and not for a DP', () => {
    const root = parseConfigText('{ "role": "root", "dataDir": "/r" }', dpConfigSchema);
    const dp = parseConfigText('{ "role": "dp", "dataDir": "/d" }', dpConfigSchema);
    expect(rolloverPolicyOf(root).rfc5011).toBe(true);
    expect(rolloverPolicyOf(dp)).toEqual({
      keyLifetimeSeconds: 365 * 86_400,
      propagationDelaySeconds: 300,
      publishSafetySeconds: 3600,
      retireSafetySeconds: 3600,
      dsTtlSeconds: undefined,
      registrationDelaySeconds: 86_400,
      rfc5011: false,
      addHoldDownSeconds: 30 * 86_400,
      revokeSeconds: 30 * 86_400,
    });
  });

  it.each<[string, string, (c: ReturnType<typeof rolloverPolicyOf>) => unknown, unknown]>([
    ['dp', '{ "policy": { "rfc5011": true } }', (p) => p.rfc5011, true],
    ['root', '{ "policy": { "rfc5011": false } }', (p) => p.rfc5011, false],
    ['dp', '{ "policy": { "keyLifetimeSeconds": 0 } }', (p) => p.keyLifetimeSeconds, 0],
    ['dp', '{ "policy": { "dsTtlSeconds": 86400 } }', (p) => p.dsTtlSeconds, 86_400],
  ])('%s %s', (role, raw, read, expected) => {
    expect(read(rolloverPolicyOf(parseConfigText(config(role, raw), dpConfigSchema)))).toEqual(
      expected,
    );
  });

  it('lists the parent nameservers, port 53 by default', () => {
    const c = parseConfigText(
      config(
        'dp',
        '{ "parent": [{ "address": "192.0.2.1" }, { "address": "::1", "port": 5353 }] }',
      ),
      dpConfigSchema,
    );
    expect(c.dnssec.parent).toEqual([
      { address: '192.0.2.1', port: 53 },
      { address: '::1', port: 5353 },
    ]);
  });

  const tooMany = JSON.stringify(
    Array.from({ length: MAX_PARENT_SERVERS + 1 }, () => ({ address: '192.0.2.1' })),
  );
  it.each<[string, string, string]>([
    [
      'root',
      '{ "parent": [{ "address": "192.0.2.1" }] }',
      'dnssec.parent: not allowed when role is "root" (the root has no parent)',
    ],
    [
      'dp',
      '{ "parent": [{ "address": "ns.example" }] }',
      'dnssec.parent[0].address: expected an IP address',
    ],
    ['dp', `{ "parent": ${tooMany} }`, `dnssec.parent: must be at most ${MAX_PARENT_SERVERS}`],
    [
      'dp',
      '{ "policy": { "keyLifetimeSeconds": -1 } }',
      'dnssec.policy.keyLifetimeSeconds: must be at least 0',
    ],
    [
      'dp',
      `{ "policy": { "revokeSeconds": ${MAX_POLICY_SECONDS + 1} } }`,
      `dnssec.policy.revokeSeconds: must be at most ${MAX_POLICY_SECONDS}`,
    ],
    [
      'dp',
      '{ "policy": { "propagationDelaySeconds": 1.5 } }',
      'dnssec.policy.propagationDelaySeconds: expected a whole number, found a fraction',
    ],
    ['dp', '{ "policy": { "holdDown": 1 } }', 'unknown key "holdDown" in dnssec.policy'],
    ['dp', '{ "checkIntervalSeconds": 0 }', 'dnssec.checkIntervalSeconds: must be at least 1'],
  ])('%s %s is refused', (role, raw, message) => {
    const error = thrownBy(() => parseConfigText(config(role, raw), dpConfigSchema), ConfigError);
    expect(error.message).toBe(message);
  });
});
