import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTrustAnchor, createZoneKey, formatTrustAnchor } from '@mimi-discovery/common';
import type { DiscoveryResult } from '@mimi-discovery/resolver';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createIssuerKey,
  doubleTls,
  startGatewayDouble,
  startIssuerDouble,
  startRelayDouble,
  type GatewayDouble,
  type IssuerDouble,
  type RelayDouble,
} from '../../resolver/test/oblivious-doubles.js';
import { createCliFixture } from './fixture.js';

// `lookup --relay` against doubles of the relay, the gateway and the issuer that follow the
// issue 13 contract (packages/resolver/test/oblivious-doubles.ts), and every way its command
// line can be wrong.

const cli = createCliFixture('lookup-relay');
const NOW = Math.floor(Date.now() / 1000);
const now = (): number => NOW;

const ALICE = 'tel:+442079460018';
const FOUND: DiscoveryResult = {
  csi: ALICE,
  status: 'found',
  mappings: [
    {
      msps: [{ provider: 'chat.example', tags: ['primary'] }],
      key: 'a2V5',
      seq: 7,
      iat: 1_767_225_600,
      exp: 1_769_817_600,
      new: false,
      prover: 'cHJvdmVy',
      zone: '4.4.e164.mimi.arpa',
      server: 'https://127.0.0.1:8444/dns-query',
    },
  ],
  ttl: 300,
};

let issuer: IssuerDouble;
let gateway: GatewayDouble;
let relay: RelayDouble;
let via: string[];

beforeAll(async () => {
  const tls = await doubleTls();
  writeFileSync(join(cli.dir, 'ca.pem'), tls.ca.certPem);
  writeFileSync(join(cli.dir, 'alice.credential'), 'alice-credential\n');
  writeFileSync(join(cli.dir, 'bob.credential'), 'bob-credential\n');
  issuer = await startIssuerDouble(tls, {
    credentials: ['alice-credential', 'bob-credential'],
    tokensPerPeriod: 1000,
    now,
  });
  const key = await createIssuerKey(issuer.name, NOW - 60, NOW + 86_400);
  issuer.keys = [key];
  gateway = await startGatewayDouble(tls, { results: new Map([[ALICE, FOUND]]), now });
  gateway.issuers = [
    { name: issuer.name, spki: key.spki, notBefore: key.notBefore, notAfter: key.notAfter },
  ];
  relay = await startRelayDouble(tls, gateway.url);
  via = ['--relay', relay.url, '--ca', 'ca.pem'];
}, 60_000);

beforeEach(() => {
  gateway.csisPerToken = 100;
  relay.requests.length = 0;
  gateway.inner.length = 0;
});

afterAll(async () => {
  await relay?.close();
  await gateway?.close();
  await issuer?.close();
  cli.cleanup();
});

describe('lookup through a relay', () => {
  it('prints the same table as the other lookup modes', async () => {
    const result = await cli.run(
      ['lookup', '+44 (0)20 7946 0018', ...via, '--credential', 'alice.credential'],
      { now },
    );
    expect(result).toEqual({
      exitCode: 0,
      stderr: '',
      stdout:
        'tel:+442079460018  found  ttl 300s\n' +
        '  chat.example  tags: primary\n' +
        '    verified: recipient key a2V5 seq 7, expires 2026-01-31T00:00:00Z, attested by prover cHJvdmVy\n' +
        '    from: zone 4.4.e164.mimi.arpa, server https://127.0.0.1:8444/dns-query\n',
    });
    expect(relay.requests).toContain('POST');
  }, 30_000);

  it('prints the results it obtained, the others as errors, and exits 2 when tokens run out', async () => {
    issuer.tokensPerPeriod = 2;
    gateway.csisPerToken = 1;
    try {
      const inputs = [ALICE, '+442079460019', '+442079460020', '+442079460021'];
      const result = await cli.run(
        ['lookup', ...inputs, ...via, '--credential', 'bob.credential', '--json'],
        { now },
      );
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toMatch(/no token left.*\(ERR_TOKENS_EXHAUSTED\)\n$/);
      const { results } = JSON.parse(result.stdout) as { results: DiscoveryResult[] };
      expect(results.map((r) => r.csi)).toEqual(inputs.map((i) => i.replace(/^\+/, 'tel:+')));
      // Two tokens, one CSI each: two results obtained, the other two errors, none `none`.
      const errors = results.filter((r) => r.status === 'error');
      expect(errors).toHaveLength(2);
      for (const r of errors) expect(r.error?.reason).toBe('limit');
    } finally {
      issuer.tokensPerPeriod = 1000;
    }
  }, 30_000);

  it('asks for a credential when the gateway wants tokens', async () => {
    const result = await cli.run(['lookup', ALICE, ...via], { now });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/no credential was given \(ERR_CREDENTIAL_REQUIRED\)\n$/);
  });

  it('refuses a key it cannot check in the tree before sending any CSI (exit 2)', async () => {
    // A root that does not answer: the KEYCONF cannot be resolved, so it is not secure.
    writeFileSync(
      join(cli.dir, 'dead-hints.json'),
      JSON.stringify({
        apex: 'mimi.arpa',
        servers: [{ name: 'ns1.mimi.arpa', addresses: ['127.0.0.1'], port: 9 }],
      }),
    );
    writeFileSync(
      join(cli.dir, 'root.key'),
      formatTrustAnchor(
        createTrustAnchor('mimi.arpa', [
          createZoneKey('mimi.arpa', { seed: new Uint8Array(32).fill(5) }).dnskey,
        ]),
      ),
    );
    const result = await cli.run(
      [
        'lookup',
        ALICE,
        ...via,
        '--credential',
        'alice.credential',
        '--key-name',
        'resolver.chat.example.email.mimi.arpa',
        '--hints',
        'dead-hints.json',
        '--trust-anchor',
        'root.key',
        '--transport',
        'dns',
      ],
      { now },
    );
    expect(result.stderr).toMatch(/nothing was sent \(ERR_KEY_INCONSISTENT\)\n$/);
    expect(result.exitCode).toBe(2);
    expect(relay.requests).toEqual(['GET']);
    expect(gateway.inner).toEqual([]);
  }, 60_000);
});

describe('lookup --relay: bad command lines', () => {
  it.each<[string, string[], RegExp]>([
    [
      'a relay and a resolver',
      ['--relay', 'https://127.0.0.1:1/ohttp/r', '--resolver', 'https://127.0.0.1:1', '--ca', 'x'],
      /--relay cannot be combined with --resolver \(ERR_USAGE\)/,
    ],
    [
      'a relay without its CA',
      ['--relay', 'https://127.0.0.1:1/ohttp/r'],
      /--relay needs --ca FILE, the CA of the relay and the issuer \(ERR_USAGE\)/,
    ],
    [
      'a key name without hints',
      ['--relay', 'https://127.0.0.1:1/ohttp/r', '--ca', 'ca.pem', '--key-name', 'k.mimi.arpa'],
      /--key-name NAME, --hints FILE and --trust-anchor FILE go together \(ERR_USAGE\)/,
    ],
    [
      'hints without a key name',
      [
        '--relay',
        'https://127.0.0.1:1/ohttp/r',
        '--ca',
        'ca.pem',
        '--hints',
        'h',
        '--trust-anchor',
        'a',
      ],
      /--key-name NAME, --hints FILE and --trust-anchor FILE go together \(ERR_USAGE\)/,
    ],
    [
      'a credential without a relay',
      ['--resolver', 'https://127.0.0.1:1', '--credential', 'alice.credential'],
      /--credential and --key-name go with --relay \(ERR_USAGE\)/,
    ],
    [
      'a relay over plain http',
      ['--relay', 'http://127.0.0.1:1/ohttp/r', '--ca', 'ca.pem'],
      /expected an https URL \(ERR_USAGE\)/,
    ],
    [
      'a missing credential file',
      ['--relay', 'https://127.0.0.1:1/ohttp/r', '--ca', 'ca.pem', '--credential', 'nope'],
      /--credential nope: cannot read it/,
    ],
  ])('refuses %s (exit 1)', async (_what, flags, message) => {
    const result = await cli.run(['lookup', ALICE, ...flags]);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/^mimi-discovery: [^\n]+\n$/);
    expect(result.exitCode).toBe(1);
  });
});
