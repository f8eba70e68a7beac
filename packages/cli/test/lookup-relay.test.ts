import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  createLocalCa,
  createTrustAnchor,
  createZoneKey,
  formatTrustAnchor,
  issueServerCertificate,
} from '@mimi-discovery/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCliFixture } from './fixture.js';

// `lookup --relay`: the key check, which refuses before any CSI is sent, and every way the
// command line can be wrong. The relay path itself is tested in the resolver package, against
// doubles of the relay, the gateway and the issuer (oblivious-client.test.ts).

const cli = createCliFixture('lookup-relay');
const ALICE = 'tel:+442079460018';

/**
 * A relay that serves one key configuration (RFC 9458 §3.1, RFC 9540 §3: id 1, X25519, a key
 * of 32 octets, HKDF-SHA256 with AES-128-GCM) on GET and records what it is asked.
 */
let relay: Server;
let relayUrl: string;
const asked: string[] = [];

beforeAll(async () => {
  const ca = await createLocalCa();
  const leaf = await issueServerCertificate(ca, { hostnames: [], ipAddresses: ['127.0.0.1'] });
  writeFileSync(join(cli.dir, 'ca.pem'), ca.certPem);
  writeFileSync(join(cli.dir, 'alice.credential'), 'alice-credential\n');
  const config = Buffer.concat([
    Buffer.from([0x01, 0x00, 0x20]),
    Buffer.alloc(32, 9),
    Buffer.from([0x00, 0x04, 0x00, 0x01, 0x00, 0x01]),
  ]);
  const keys = Buffer.concat([Buffer.from([0, config.length]), config]);
  relay = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    asked.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'application/ohttp-keys' });
    res.end(keys);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  relayUrl = `https://127.0.0.1:${(relay.address() as AddressInfo).port}/ohttp/resolver`;
});

afterAll(async () => {
  relay?.closeAllConnections();
  await new Promise((resolve) => relay?.close(resolve));
  cli.cleanup();
});

describe('lookup through a relay, with a key check', () => {
  it('refuses a key it cannot find in the tree before sending any CSI (exit 2)', async () => {
    // A root that does not answer: the KEYCONF cannot be resolved, so nothing is secure.
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
    const result = await cli.run([
      'lookup',
      ALICE,
      '--relay',
      relayUrl,
      '--ca',
      'ca.pem',
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
    ]);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/nothing was sent \(ERR_KEY_INCONSISTENT\)\n$/);
    expect(result.exitCode).toBe(2);
    expect(asked).toEqual(['GET /ohttp/resolver']);
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
