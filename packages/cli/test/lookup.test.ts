import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  audienceKeyFromSecret,
  createLocalCa,
  createTrustAnchor,
  createZoneKey,
  formatAudienceKey,
  formatTrustAnchor,
  issueServerCertificate,
  keyPairFromSeed,
  parseCsi,
  sealMsps,
  silentLogger,
} from '@mimi-discovery/common';
import {
  startJsonApi,
  type DiscoveryResult,
  type JsonApi,
  type Resolver,
} from '@mimi-discovery/resolver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foundResult, invalidCsiResult } from '../../../test/helpers/resolver-double.js';
import { createCliFixture } from './fixture.js';

// `lookup` through the JSON API of a running front end, whose resolver is a test double that
// answers from a table; and every way the command line can be wrong.

const cli = createCliFixture('lookup');

const ALICE = 'tel:+442079460018';
const BOB = 'mailto:bob@example.com';
const CAROL = 'tel:+442079460019';
const BOGUS = 'tel:+442079460099';
const DAVE = 'tel:+442079460020';
const EVE = 'tel:+442079460021';

const FOUND = foundResult(ALICE, {
  msps: [
    { provider: 'chat.example', tags: ['primary', 'work'], uri: 'im:alice@chat.example' },
    { provider: 'other.example', tags: [] },
  ],
  new: true,
});
const EMPTY: DiscoveryResult = {
  csi: BOB,
  status: 'empty',
  msps: [],
  mappings: [
    {
      ...(FOUND.mappings[0] as DiscoveryResult['mappings'][number]),
      msps: [],
      new: false,
      zone: 'example.com.email.mimi.arpa',
    },
  ],
  ttl: 600,
  stale: true,
};
const RESULTS: ReadonlyMap<string, DiscoveryResult> = new Map([
  [ALICE, FOUND],
  [BOB, EMPTY],
  [CAROL, { csi: CAROL, status: 'none', msps: [], mappings: [], ttl: 120 }],
  [
    BOGUS,
    {
      csi: BOGUS,
      status: 'error',
      msps: [],
      mappings: [],
      ttl: 0,
      error: { reason: 'bogus', detail: 'no DS matches the DNSKEY of 4.4.e164.mimi.arpa' },
    },
  ],
]);

// Dave's mapping: chat.example in clear, and wire.example for business sealed to the audience
// key of `friend.audience` — a real box (HPKE) for Dave's CSI and recipient key, which the
// command line opens when given that file.
const DAVE_KEY = keyPairFromSeed(new Uint8Array(32).fill(0x44));
const FRIEND = audienceKeyFromSecret(new Uint8Array(32).fill(0x46));
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
let daveResult: DiscoveryResult;
/** Dave's box moved into a mapping for Eve, as a hostile DP or resolver could serve it. */
let eveResult: DiscoveryResult;

const asked: string[][] = [];
/** The options each request reached the resolver with. */
const askedOptions: unknown[] = [];
const discover = async (input: string): Promise<DiscoveryResult> => {
  let csi: string;
  try {
    csi = parseCsi(input);
  } catch (error) {
    return invalidCsiResult(input, error);
  }
  if (csi === DAVE) return daveResult;
  if (csi === EVE) return eveResult;
  return RESULTS.get(csi) ?? { csi, status: 'none', msps: [], mappings: [], ttl: 3600 };
};
// What the JSON API calls; without `discoverManyJson` it serializes the results itself.
const resolver: Pick<Resolver, 'discover' | 'discoverMany'> = {
  async discover(input, options) {
    asked.push([input]);
    askedOptions.push(options);
    return discover(input);
  },
  async discoverMany(inputs, options) {
    asked.push([...inputs]);
    askedOptions.push(options);
    return Promise.all(inputs.map(discover));
  },
};

let api: JsonApi;
let via: string[];

beforeAll(async () => {
  const ca = await createLocalCa();
  const leaf = await issueServerCertificate(ca, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  writeFileSync(join(cli.dir, 'ca.pem'), ca.certPem);
  const friend = await FRIEND;
  // A file holding just the line a recipient shares.
  writeFileSync(join(cli.dir, 'friend.audience'), `${formatAudienceKey(friend)}\n`);
  const box = await sealMsps(
    DAVE,
    DAVE_KEY.publicKey,
    [{ provider: 'wire.example', tags: ['business', 'pref:1'], uri: 'im:dave@wire.example' }],
    friend,
  );
  daveResult = foundResult(DAVE, {
    msps: [{ provider: 'chat.example', tags: [] }],
    key: b64(DAVE_KEY.publicKey),
    sealed: [{ kid: b64(box.kid), enc: b64(box.enc), ct: b64(box.ct) }],
  });
  eveResult = foundResult(EVE, {
    msps: [{ provider: 'chat.example', tags: [] }],
    key: b64(DAVE_KEY.publicKey),
    sealed: [{ kid: b64(box.kid), enc: b64(box.enc), ct: b64(box.ct) }],
  });
  api = await startJsonApi(
    { port: 0, cert: leaf.certPem, key: leaf.keyPem, maxBatch: 4 },
    resolver,
    {
      log: silentLogger,
    },
  );
  via = ['--resolver', api.url, '--ca', 'ca.pem'];
});

afterAll(async () => {
  await api?.close();
  cli.cleanup();
});

describe('lookup through the JSON API', () => {
  it('prints the canonical CSI, status and TTL, each MSP with its tags, and where it came from', async () => {
    const result = await cli.run(['lookup', '+44 (0)20 7946 0018', ...via]);
    expect(result).toEqual({
      exitCode: 0,
      stderr: '',
      stdout:
        'tel:+442079460018  found  ttl 300s\n' +
        '  1. chat.example  contexts: any  tags: primary, work  uri: im:alice@chat.example  from: zone 4.4.e164.mimi.arpa\n' +
        '  2. other.example  contexts: any  from: zone 4.4.e164.mimi.arpa\n' +
        '  verified: recipient key a2V5 seq 7 (new), expires 2026-01-31T00:00:00Z, attested by prover cHJvdmVy\n' +
        '    from: zone 4.4.e164.mimi.arpa, server https://127.0.0.1:8444/dns-query\n',
    });
    // One CSI is one GET, sent as typed.
    expect(asked.at(-1)).toEqual(['+44 (0)20 7946 0018']);
  });

  it('prints several results in order, through one POST', async () => {
    const result = await cli.run(['lookup', '+442079460019', 'Bob@Example.COM', ...via]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(
      'tel:+442079460019  none  ttl 120s\n' +
        '  no mapping (authenticated denial)\n' +
        '\n' +
        'mailto:bob@example.com  empty  ttl 600s  (stale)\n' +
        '  no MSP listed: the recipient opted out\n' +
        '  verified: recipient key a2V5 seq 7, expires 2026-01-31T00:00:00Z, attested by prover cHJvdmVy\n' +
        '    from: zone example.com.email.mimi.arpa, server https://127.0.0.1:8444/dns-query\n',
    );
    expect(asked.at(-1)).toEqual(['+442079460019', 'Bob@Example.COM']);
  });

  it('prints the JSON API response with --json: one result, or the batch', async () => {
    expect(await cli.json<DiscoveryResult>(['lookup', ALICE, ...via])).toEqual(FOUND);
    expect(
      await cli.json<{ results: DiscoveryResult[] }>(['lookup', ALICE, CAROL, ...via]),
    ).toEqual({
      results: [FOUND, RESULTS.get(CAROL)],
    });
  });

  it('prints every result and exits 2 when any ended in error', async () => {
    const result = await cli.run(['lookup', ALICE, BOGUS, '--json', ...via]);
    expect(result.exitCode).toBe(2);
    expect(JSON.parse(result.stdout)).toEqual({ results: [FOUND, RESULTS.get(BOGUS)] });
    expect(result.stderr).toBe(
      'mimi-discovery: 1 of 2 lookups ended in error (bogus) (ERR_CLI_LOOKUP_FAILED)\n',
    );
    const text = await cli.run(['lookup', BOGUS, ...via]);
    expect(text.exitCode).toBe(2);
    expect(text.stdout).toBe(
      'tel:+442079460099  error  ttl 0s\n' +
        '  error: bogus: no DS matches the DNSKEY of 4.4.e164.mimi.arpa\n',
    );
  });

  it("reports the API's refusal with its code (exit 2)", async () => {
    const result = await cli.run(['lookup', ALICE, BOB, CAROL, BOGUS, '+442079460017', ...via]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toBe(
      'mimi-discovery: 5 CSIs in one request; at most 4 are accepted (ERR_BATCH_TOO_LARGE)\n',
    );
  });

  it('does not trust the resolver without its CA', async () => {
    const result = await cli.run(['lookup', ALICE, '--resolver', api.url]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(
      /^mimi-discovery: cannot reach https:\/\/127\.0\.0\.1:\d+: .*\(ERR_CLI_RESOLVER_UNREACHABLE\)\n$/,
    );
  });

  it('reports a server that is not a resolver', async () => {
    const result = await cli.run([
      'lookup',
      ALICE,
      '--resolver',
      `${api.url}/elsewhere`,
      '--ca',
      'ca.pem',
    ]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/no route \/elsewhere\/v1\/discover.* \(ERR_NOT_FOUND\)\n$/);
  });
});

describe('lookup for one sender: a context and audience keys', () => {
  it('opens the box of a given audience key here, sending only the context', async () => {
    const friend = await FRIEND;
    const kid = b64(friend.kid);
    const result = await cli.run([
      'lookup',
      DAVE,
      ...via,
      '--context',
      'business',
      '--audience-key',
      'friend.audience',
    ]);
    expect(result).toMatchObject({ exitCode: 0, stderr: '' });
    const lines = result.stdout.split('\n');
    expect(lines.slice(0, 3)).toEqual([
      'tel:+442079460020  found  ttl 300s',
      `  1. wire.example  contexts: business  tags: business, pref:1  uri: im:dave@wire.example  from: sealed ${kid}`,
      '  2. chat.example  contexts: any  from: zone 4.4.e164.mimi.arpa',
    ]);
    expect(result.stdout).toContain(`    sealed boxes: ${kid} (opened)\n`);
    expect(result.stdout).not.toContain('not opened');
    // The resolver was told the context, and nothing of the key.
    expect(askedOptions.at(-1)).toEqual({ context: 'business' });

    const json = await cli.json<DiscoveryResult>([
      'lookup',
      DAVE,
      ...via,
      '--audience-key',
      'friend.audience',
    ]);
    expect(json.msps.map((m) => [m.provider, m.audience])).toEqual([
      ['wire.example', kid],
      ['chat.example', undefined],
    ]);
    expect(json.mappings[0]?.opened?.map((o) => o.audience)).toEqual([kid]);
    expect(askedOptions.at(-1) ?? {}).toEqual({});
  });

  it('without the key: the public entries, and one line saying how many boxes stayed sealed', async () => {
    const text = await cli.ok(['lookup', DAVE, ...via]);
    const kid = b64((await FRIEND).kid);
    expect(text).toBe(
      'tel:+442079460020  found  ttl 300s\n' +
        '  1. chat.example  contexts: any  from: zone 4.4.e164.mimi.arpa\n' +
        '  1 sealed box not opened: no audience key for it\n' +
        `  verified: recipient key ${b64(DAVE_KEY.publicKey)} seq 7, expires 2026-01-31T00:00:00Z, attested by prover cHJvdmVy\n` +
        '    from: zone 4.4.e164.mimi.arpa, server https://127.0.0.1:8444/dns-query\n' +
        `    sealed boxes: ${kid}\n`,
    );
    expect(text).not.toContain('wire.example');
  });
});

describe('lookup of a box moved into another mapping', () => {
  it('leaves it sealed and says the key of its id did not open it (exit 0)', async () => {
    const text = await cli.ok(['lookup', EVE, ...via, '--audience-key', 'friend.audience']);
    expect(text).toContain(
      '  1. chat.example  contexts: any  from: zone 4.4.e164.mimi.arpa\n' +
        '  1 sealed box not opened: the audience key of its key id did not open it\n',
    );
    expect(text).not.toContain('wire.example');
    const json = await cli.json<DiscoveryResult>([
      'lookup',
      EVE,
      ...via,
      '--audience-key',
      'friend.audience',
    ]);
    expect(json).toMatchObject({ status: 'found', unopened: 1 });
    expect(json.mappings[0]?.opened).toBeUndefined();
  });
});

describe('lookup: bad command lines', () => {
  const anchor = formatTrustAnchor(
    createTrustAnchor('mimi.arpa', [
      createZoneKey('mimi.arpa', { seed: new Uint8Array(32).fill(5) }).dnskey,
    ]),
  );

  beforeAll(() => {
    writeFileSync(join(cli.dir, 'root.key'), anchor);
    writeFileSync(join(cli.dir, 'bad.audience'), '# not a key\nhello\n');
    writeFileSync(
      join(cli.dir, 'doh-hints.json'),
      JSON.stringify({
        apex: 'mimi.arpa',
        servers: [{ name: 'ns1.mimi.arpa', addresses: [], doh: 'https://ns1.mimi.arpa/dns-query' }],
      }),
    );
    writeFileSync(
      join(cli.dir, 'hints.json'),
      JSON.stringify({
        apex: 'mimi.arpa',
        servers: [{ name: 'ns1.mimi.arpa', addresses: ['127.0.0.1'], port: 5300 }],
      }),
    );
  });

  it.each<[string, string[], RegExp]>([
    [
      'no CSI',
      ['lookup', '--resolver', 'https://127.0.0.1:1'],
      /missing required argument 'csi' \(ERR_USAGE\)/,
    ],
    [
      'a CSI that is not one',
      ['lookup', ALICE, 'alice', '--resolver', 'https://127.0.0.1:1'],
      /"alice": not a phone number .* \(ERR_CSI_UNRECOGNIZED\)/,
    ],
    [
      'no way to resolve',
      ['lookup', ALICE],
      /give --resolver URL, or --hints FILE and --trust-anchor FILE \(ERR_USAGE\)/,
    ],
    [
      'hints without an anchor',
      ['lookup', ALICE, '--hints', 'hints.json'],
      /--hints FILE and --trust-anchor FILE go together \(ERR_USAGE\)/,
    ],
    [
      'both ways',
      ['lookup', ALICE, '--resolver', 'https://127.0.0.1:1', '--hints', 'h', '--trust-anchor', 'a'],
      /--resolver cannot be combined with --hints or --trust-anchor \(ERR_USAGE\)/,
    ],
    [
      'a transport for the API',
      ['lookup', ALICE, '--resolver', 'https://127.0.0.1:1', '--transport', 'doh'],
      /--transport and --dns-port go with --hints, not --resolver \(ERR_USAGE\)/,
    ],
    [
      'an unknown transport',
      ['lookup', ALICE, '--transport', 'udp'],
      /argument 'udp' is invalid.*\(ERR_USAGE\)/,
    ],
    [
      'a DNS port without DNS',
      ['lookup', ALICE, '--hints', 'hints.json', '--trust-anchor', 'root.key', '--dns-port', '53'],
      /--dns-port goes with --transport dns \(ERR_USAGE\)/,
    ],
    [
      'a URL that is not one',
      ['lookup', ALICE, '--resolver', 'resolver:8453'],
      /expected an https URL \(ERR_USAGE\)/,
    ],
    [
      'a context that is not one',
      ['lookup', ALICE, '--resolver', 'https://127.0.0.1:1', '--context', 'Business'],
      /argument 'Business' is invalid\. expected personal, business or ctx:NAME.*\(ERR_USAGE\)/,
    ],
    [
      'a missing audience key file',
      ['lookup', ALICE, '--resolver', 'https://127.0.0.1:1', '--audience-key', 'nope.audience'],
      /--audience-key nope\.audience: cannot read it: ENOENT.*\(ERR_USAGE\)/,
    ],
    [
      'an audience key file that holds no key',
      ['lookup', ALICE, '--resolver', 'https://127.0.0.1:1', '--audience-key', 'bad.audience'],
      /--audience-key bad\.audience: .*\(ERR_AUDIENCE_KEY\)/,
    ],
    [
      'a missing CA file',
      ['lookup', ALICE, '--resolver', 'https://127.0.0.1:1', '--ca', 'nope.pem'],
      /--ca nope\.pem: cannot read it/,
    ],
    [
      'missing hints',
      ['lookup', ALICE, '--hints', 'nope.json', '--trust-anchor', 'root.key'],
      /nope\.json: cannot read the root hints: ENOENT.*\(ERR_CONFIG_READ\)/,
    ],
    [
      'hints without an address for plain DNS',
      [
        'lookup',
        ALICE,
        '--hints',
        'doh-hints.json',
        '--trust-anchor',
        'root.key',
        '--transport',
        'dns',
      ],
      /no root server has an address for plain DNS .*\(ERR_CONFIG_INVALID\)/,
    ],
    [
      'an anchor that is not one',
      [
        'lookup',
        ALICE,
        '--hints',
        'hints.json',
        '--trust-anchor',
        'hints.json',
        '--transport',
        'dns',
      ],
      /hints\.json: trust anchor .*\(ERR_CONFIG_INVALID\)/,
    ],
  ])('refuses %s (exit 1)', async (_what, argv, message) => {
    const before = asked.length;
    const result = await cli.run(argv);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/^mimi-discovery: [^\n]+\n$/);
    expect(result.exitCode).toBe(1);
    expect(asked.length).toBe(before);
  });

  it('describes itself with usage and examples', async () => {
    const result = await cli.run(['lookup', '--help']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('Usage: mimi-discovery lookup [options] <csi...>');
    expect(result.stdout).toContain('Examples:\n  $ mimi-discovery lookup ');
  });
});
