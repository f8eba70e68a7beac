import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  canonicalName,
  createLocalCa,
  isSubdomain,
  issueServerCertificate,
  parseCsi,
  respondError,
  startDnsServer,
  type Csi,
  type DnsServer,
  type Message,
  type ResourceRecord,
} from '@mimi-discovery/common';
import {
  MAX_RANGE_AUTHKEY_CACHE_ENTRIES,
  MAX_RANGE_AUTHKEY_CACHE_SECONDS,
  MAX_RANGE_AUTHKEY_TIMEOUT_MS,
  RANGE_AUTHKEY_CACHE_ENTRIES,
  RANGE_AUTHKEY_TIMEOUT_MS,
  createRangeAuthkeys,
  parseResolverEndpoint,
  type RangeAuthkeys,
} from '../src/registration/range-authkeys.js';
import { RegistrationError } from '../src/registration/registration-error.js';

/**
 * The lookup of a CSI's range AUTHKEYs through a resolver (range-authkeys.ts), against a real DNS
 * server on 127.0.0.1 that plays the resolver: it answers as each test tells it — honest,
 * without the AD bit, with another zone's SOA, stalling — and counts the questions it gets.
 */

const NOW = 1_780_000_000;
const PROVER = new Uint8Array(32).fill(7);

/** What the resolver double answers; each test sets its own. */
interface Behaviour {
  /** The AD bit of the answer to a question of this type. */
  ad: boolean | ((type: string) => boolean);
  /** The SOA owner given for a name: default the longest zone of `zones` above it. */
  soaOwner?: (name: string) => string;
  /** AUTHKEY TTL. */
  ttl: number;
  rcode?: Message['rcode'];
  /** Answers wait until this settles. */
  stall?: Promise<void>;
}

const ZONES = ['4.4.e164.mimi.arpa', '1.e164.mimi.arpa', '2.0.2.1.e164.mimi.arpa', 'mimi.arpa'];

let behaviour: Behaviour;
let asked: Array<{ name: string; type: string; ad: boolean; dnssecOk: boolean }>;
let server: DnsServer;
let ca: Awaited<ReturnType<typeof createLocalCa>>;
let clock = NOW;
const lookups: RangeAuthkeys[] = [];

function authkey(zone: string, ttl: number): ResourceRecord {
  return {
    name: zone,
    type: 'AUTHKEY',
    ttl,
    class: 'IN',
    data: { role: 'prover', algorithm: 15, notAfter: NOW + 86_400, publicKey: PROVER },
  };
}

function soa(owner: string): ResourceRecord {
  return {
    name: owner,
    type: 'SOA',
    ttl: 300,
    class: 'IN',
    data: {
      mname: `ns.${owner}`,
      rname: `hostmaster.${owner}`,
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86_400,
      minimum: 60,
    },
  };
}

async function answer(query: Message): Promise<Message> {
  const q = query.questions[0];
  if (q === undefined) return respondError(query, 'FORMERR');
  asked.push({
    name: canonicalName(q.name),
    type: q.type,
    ad: query.flags.ad,
    dnssecOk: query.edns?.dnssecOk === true,
  });
  if (behaviour.stall !== undefined) await behaviour.stall;
  if (behaviour.rcode !== undefined) return respondError(query, behaviour.rcode);
  const name = canonicalName(q.name);
  const base = respondError(query, 'NOERROR');
  const ad = typeof behaviour.ad === 'boolean' ? behaviour.ad : behaviour.ad(q.type);
  const response: Message = { ...base, flags: { ...base.flags, ra: true, ad } };
  const zone =
    behaviour.soaOwner?.(name) ??
    ZONES.filter((z) => isSubdomain(name, z)).sort((a, b) => b.length - a.length)[0] ??
    'mimi.arpa';
  if (q.type === 'SOA') {
    if (name === zone) response.answers.push(soa(zone));
    else {
      response.rcode = 'NXDOMAIN';
      response.authorities.push(soa(zone));
    }
  } else if (q.type === 'AUTHKEY') {
    if (
      zone === '4.4.e164.mimi.arpa' ||
      zone === '1.e164.mimi.arpa' ||
      zone === '2.0.2.1.e164.mimi.arpa'
    ) {
      response.answers.push(authkey(name, behaviour.ttl));
    } else response.authorities.push(soa(zone));
  }
  return response;
}

function create(
  transport: 'udp' | 'tcp' | 'doh' = 'udp',
  more: { cacheEntries?: number; timeoutMs?: number } = {},
): RangeAuthkeys {
  const resolver =
    transport === 'doh'
      ? (server.doh?.url ?? '')
      : `${transport}://127.0.0.1:${transport === 'udp' ? server.udp?.port : server.tcp?.port}`;
  const lookup = createRangeAuthkeys({
    resolver,
    ...(transport === 'doh' ? { ca: ca.certPem } : {}),
    now: () => clock,
    ...more,
  });
  lookups.push(lookup);
  return lookup;
}

const csi = (typed: string): Csi => parseCsi(typed);

/** The RegistrationError a promise rejects with. */
async function refusal(promise: Promise<unknown>): Promise<RegistrationError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RegistrationError);
  return error as RegistrationError;
}

beforeAll(async () => {
  ca = await createLocalCa();
  const leaf = await issueServerCertificate(ca, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  server = await startDnsServer(
    {
      host: '127.0.0.1',
      udp: { port: 0 },
      tcp: { port: 0 },
      doh: { port: 0, cert: leaf.certPem, key: leaf.keyPem },
    },
    answer,
  );
});

afterAll(async () => {
  await server?.close();
});

afterEach(async () => {
  await Promise.all(lookups.splice(0).map((l) => l.close()));
  behaviour = { ad: true, ttl: 300 };
  asked = [];
  clock = NOW;
});

behaviour = { ad: true, ttl: 300 };
asked = [];

describe('range AUTHKEYs through a resolver', () => {
  it.each(['udp', 'tcp', 'doh'] as const)(
    'finds the range zone from the SOA and its AUTHKEYs, with DO and AD set (%s)',
    async (transport) => {
      const keys = await create(transport).lookup(csi('+44 20 7946 0018'));
      expect(keys.zone).toBe('4.4.e164.mimi.arpa');
      expect(keys.authkeys).toHaveLength(1);
      expect(asked).toEqual([
        { name: '8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa', type: 'SOA', ad: true, dnssecOk: true },
        { name: '4.4.e164.mimi.arpa', type: 'AUTHKEY', ad: true, dnssecOk: true },
      ]);
    },
  );

  it('takes the closest enclosing zone: a sub-range delegated below another', async () => {
    const lookup = create();
    expect((await lookup.lookup(csi('+1 202 555 0100'))).zone).toBe('2.0.2.1.e164.mimi.arpa');
    expect((await lookup.lookup(csi('+1 415 555 0100'))).zone).toBe('1.e164.mimi.arpa');
  });

  it('gives a zone that lists no key with no AUTHKEY (the prover is then refused by the caller)', async () => {
    behaviour.soaOwner = () => 'mimi.arpa';
    const keys = await create().lookup(csi('+33 1 23 45 67 89'));
    expect(keys).toEqual({ zone: 'mimi.arpa', authkeys: [] });
  });

  it('refuses answers without the AD bit: the resolver did not validate them', async () => {
    behaviour.ad = false;
    const error = await refusal(create().lookup(csi('+44 20 7946 0018')));
    expect(error.code).toBe('ERR_PROVER_UNVERIFIABLE');
    expect(error.status).toBe(503);
    expect(error.message).toMatch(/no AD bit/);
  });

  it('refuses an AUTHKEY answer without the AD bit even after a validated SOA', async () => {
    const lookup = create();
    // The SOA is validated, the AUTHKEY is not.
    behaviour.ad = (type) => type !== 'AUTHKEY';
    const error = await refusal(lookup.lookup(csi('+44 20 7946 0018')));
    expect(error.code).toBe('ERR_PROVER_UNVERIFIABLE');
    expect(asked.map((a) => a.type)).toEqual(['SOA', 'AUTHKEY']);
    expect(lookup.cachedZones).toBe(0);
  });

  it.each([
    ['a zone that does not enclose the name', '5.4.e164.mimi.arpa'],
    ["the MSP's own zone", 'chat.example.email.mimi.arpa'],
    ['a zone above the namespace apex', 'arpa'],
  ])('refuses an SOA of %s', async (_, owner) => {
    behaviour.soaOwner = () => owner;
    const error = await refusal(create().lookup(csi('+44 20 7946 0018')));
    expect(error.code).toBe('ERR_PROVER_UNVERIFIABLE');
    expect(error.message).toMatch(/no SOA of a zone enclosing/);
    // No AUTHKEY of a zone the SOA did not prove was asked.
    expect(asked.map((a) => a.type)).toEqual(['SOA']);
  });

  it('refuses a SERVFAIL (a bogus answer) as unverifiable', async () => {
    behaviour.rcode = 'SERVFAIL';
    const error = await refusal(create().lookup(csi('+44 20 7946 0018')));
    expect(error.code).toBe('ERR_PROVER_UNVERIFIABLE');
    expect(error.message).toMatch(/SERVFAIL/);
  });

  it('gives up on a stalling resolver within the timeout, and asks again next time', async () => {
    let release = (): void => undefined;
    behaviour.stall = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      const lookup = create('tcp', { timeoutMs: 200 });
      const error = await refusal(lookup.lookup(csi('+44 20 7946 0018')));
      expect(error.code).toBe('ERR_PROVER_UNVERIFIABLE');
      expect(error.message).toMatch(/within 200 ms/);
      release();
      delete behaviour.stall;
      // Failures are not cached: the resolver back, the next lookup succeeds.
      expect((await lookup.lookup(csi('+44 20 7946 0018'))).zone).toBe('4.4.e164.mimi.arpa');
    } finally {
      release();
    }
  });

  it('refuses when nothing listens at the resolver address', async () => {
    const lookup = createRangeAuthkeys({ resolver: 'tcp://127.0.0.1:1', now: () => clock });
    lookups.push(lookup);
    const error = await refusal(lookup.lookup(csi('+44 20 7946 0018')));
    expect(error.code).toBe('ERR_PROVER_UNVERIFIABLE');
  });

  it('asks one AUTHKEY question for many concurrent publications of one range', async () => {
    const lookup = create('tcp');
    const numbers = Array.from({ length: 40 }, (_, i) => csi(`+44 20 7946 ${String(1000 + i)}`));
    const all = await Promise.all([...numbers, ...numbers].map((c) => lookup.lookup(c)));
    expect(all.every((k) => k.zone === '4.4.e164.mimi.arpa')).toBe(true);
    expect(asked.filter((a) => a.type === 'AUTHKEY')).toHaveLength(1);
    // One SOA question per name, however many ask for it at once.
    expect(asked.filter((a) => a.type === 'SOA')).toHaveLength(40);
  });

  it('keeps a zone for its TTL, and at most an hour', async () => {
    const lookup = create();
    behaviour.ttl = 300;
    await lookup.lookup(csi('+44 20 7946 0018'));
    clock += 299;
    await lookup.lookup(csi('+44 20 7946 0018'));
    expect(asked.filter((a) => a.type === 'AUTHKEY')).toHaveLength(1);
    clock += 1;
    await lookup.lookup(csi('+44 20 7946 0018'));
    expect(asked.filter((a) => a.type === 'AUTHKEY')).toHaveLength(2);

    behaviour.ttl = 86_400;
    clock += 300;
    await lookup.lookup(csi('+44 20 7946 0018'));
    expect(asked.filter((a) => a.type === 'AUTHKEY')).toHaveLength(3);
    clock += MAX_RANGE_AUTHKEY_CACHE_SECONDS - 1;
    await lookup.lookup(csi('+44 20 7946 0018'));
    expect(asked.filter((a) => a.type === 'AUTHKEY')).toHaveLength(3);
    clock += 1;
    await lookup.lookup(csi('+44 20 7946 0018'));
    expect(asked.filter((a) => a.type === 'AUTHKEY')).toHaveLength(4);
  });

  it('keeps at most cacheEntries zones, the least recently used dropped first', async () => {
    const lookup = create('udp', { cacheEntries: 2 });
    const in44 = csi('+44 20 7946 0018');
    const in1 = csi('+1 415 555 0100');
    const in1202 = csi('+1 202 555 0100');
    await lookup.lookup(in44);
    await lookup.lookup(in1);
    await lookup.lookup(in44); // +44 is now the most recently used
    await lookup.lookup(in1202); // drops +1
    expect(lookup.cachedZones).toBe(2);
    const authkeyQuestions = (): string[] =>
      asked.filter((a) => a.type === 'AUTHKEY').map((a) => a.name);
    expect(authkeyQuestions()).toEqual([
      '4.4.e164.mimi.arpa',
      '1.e164.mimi.arpa',
      '2.0.2.1.e164.mimi.arpa',
    ]);
    await lookup.lookup(in44);
    await lookup.lookup(in1);
    expect(authkeyQuestions()).toHaveLength(4);
    expect(authkeyQuestions()[3]).toBe('1.e164.mimi.arpa');
    expect(lookup.cachedZones).toBe(2);
  });

  it('has bounds as named constants, checked', () => {
    expect(RANGE_AUTHKEY_CACHE_ENTRIES).toBe(1024);
    expect(RANGE_AUTHKEY_TIMEOUT_MS).toBe(5000);
    expect(MAX_RANGE_AUTHKEY_CACHE_SECONDS).toBe(3600);
    const make = (more: { cacheEntries?: number; timeoutMs?: number }) => () =>
      createRangeAuthkeys({ resolver: 'udp://127.0.0.1:53', ...more });
    expect(make({ cacheEntries: 0 })).toThrow(RangeError);
    expect(make({ cacheEntries: MAX_RANGE_AUTHKEY_CACHE_ENTRIES + 1 })).toThrow(RangeError);
    expect(make({ timeoutMs: 0 })).toThrow(RangeError);
    expect(make({ timeoutMs: MAX_RANGE_AUTHKEY_TIMEOUT_MS + 1 })).toThrow(RangeError);
  });
});

describe('parseResolverEndpoint', () => {
  it.each([
    [
      'https://resolver.example:8443/dns-query',
      { kind: 'doh', url: 'https://resolver.example:8443/dns-query' },
    ],
    ['udp://127.0.0.1:5353', { kind: 'udp', host: '127.0.0.1', port: 5353 }],
    ['tcp://127.0.0.53:53', { kind: 'tcp', host: '127.0.0.53', port: 53 }],
    ['tcp://[::1]:53', { kind: 'tcp', host: '::1', port: 53 }],
  ])('reads %s', (value, expected) => {
    expect(parseResolverEndpoint(value)).toEqual(expected);
  });

  it.each([
    ['udp://192.0.2.1:53', /only over loopback/],
    ['tcp://resolver.example:53', /only over loopback/],
    ['udp://127.0.0.1', /nothing after the port/],
    ['udp://127.0.0.1:53/x', /nothing after the port/],
    ['http://127.0.0.1/dns-query', /expected https:, udp: or tcp:/],
    ['https://u:p@resolver.example/dns-query', /no user/],
    ['https://resolver.example/dns-query?dns=x', /no query/],
    ['127.0.0.1:53', /expected https:/],
    ['not a url', /expected https:/],
  ])('refuses %s', (value, message) => {
    expect(() => parseResolverEndpoint(value)).toThrow(message);
  });
});
