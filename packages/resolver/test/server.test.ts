import { connect as connectTcp, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  MimiError,
  buildQuery,
  createDohClient,
  createLocalCa,
  createLogger,
  createZoneKey,
  extendedDnsErrors,
  issueServerCertificate,
  queryTcp,
  queryUdp,
  record,
  signRRset,
  type DohClient,
  type Message,
  type ResourceRecord,
} from '@mimi-discovery/common';
import {
  startResolverServer,
  type ResolvedAnswer,
  type Resolver,
  type RunningResolverServer,
} from '../src/index.js';
import { soaRecord } from '../../../test/helpers/records.js';

// The DNS front ends and the admin port in front of a test double of the resolver, whose
// answers come from a table by query name: each name stands for one validation outcome.

const ZONE = '4.4.e164.mimi.arpa';
const SECURE = `8.1.0.0.6.4.9.7.0.2.${ZONE}`;
const INSECURE = `insecure.${ZONE}`;
const INDETERMINATE = `indeterminate.${ZONE}`;
const BOGUS = `bogus.${ZONE}`;
const STALE = `stale.${ZONE}`;
const NXDOMAIN = `9.9.9.9.6.4.9.7.0.2.${ZONE}`;
/** A name under {@link NXDOMAIN}, denied through it (RFC 8020). */
const BELOW_NXDOMAIN = `1.${NXDOMAIN}`;
const FAULT = `fault.${ZONE}`;
/** Bogus for an expired signature; SERVFAIL for a zone none of whose servers answered, cached. */
const EXPIRED_SIG = `expired.${ZONE}`;
const UNREACHABLE = `unreachable.${ZONE}`;
const CACHED = `cached.${ZONE}`;
/** Answered without `usable`: not to be given again. */
const ONCE = `once.${ZONE}`;

const key = createZoneKey(ZONE, { seed: new Uint8Array(32).fill(3) });
const validity = { inception: 1_767_225_600, expiration: 1_769_817_600 };
const map = record(SECURE, 'MAP', new Uint8Array([0xa1, 0x61, 0x76, 0x01]), 300);
const mapSig = signRRset([map], key, validity);
const soa = soaRecord(ZONE);
const soaSig = signRRset([soa], key, validity);
const nsec = record(
  NXDOMAIN,
  'NSEC',
  { nextName: `\\000.${NXDOMAIN}`, types: ['RRSIG', 'NSEC', 'TYPE128'] },
  300,
);
const nsecSig = signRRset([nsec], key, validity);

function answer(
  status: ResolvedAnswer['status'],
  extra: Partial<ResolvedAnswer> = {},
): ResolvedAnswer {
  return { rcode: 'NOERROR', status, answers: [map, mapSig], authorities: [], ...extra };
}

const ANSWERS: ReadonlyMap<string, ResolvedAnswer> = new Map([
  [SECURE, answer('secure')],
  [INSECURE, answer('insecure')],
  [INDETERMINATE, answer('indeterminate')],
  [BOGUS, answer('bogus')],
  [
    EXPIRED_SIG,
    answer('bogus', {
      rcode: 'SERVFAIL',
      answers: [],
      ede: [{ infoCode: 7, text: 'signature-expired: MAP of expired.4.4.e164.mimi.arpa' }],
    }),
  ],
  [
    UNREACHABLE,
    answer('indeterminate', {
      rcode: 'SERVFAIL',
      answers: [],
      ede: [
        { infoCode: 22, text: 'servfail: every server failed' },
        { infoCode: 13, text: 'cached failure (RFC 9520)' },
      ],
    }),
  ],
  [STALE, answer('secure', { stale: true })],
  [
    CACHED,
    answer('secure', { answers: [record(CACHED, 'MAP', new Uint8Array([1]), 60)], usable: 30 }),
  ],
  [ONCE, answer('secure', { answers: [record(ONCE, 'MAP', new Uint8Array([1]), 60)] })],
  [
    NXDOMAIN,
    {
      rcode: 'NXDOMAIN',
      status: 'secure',
      answers: [],
      authorities: [soa, soaSig, nsec, nsecSig],
    },
  ],
  [
    BELOW_NXDOMAIN,
    {
      rcode: 'NXDOMAIN',
      status: 'secure',
      answers: [],
      authorities: [soa, soaSig, nsec, nsecSig],
    },
  ],
]);

const resolved: Array<[string, string]> = [];
let flushes = 0;
const resolver: Resolver = {
  discover: () => Promise.reject(new Error('not used')),
  discoverCsi: () => Promise.reject(new Error('not used')),
  discoverMany: () => Promise.reject(new Error('not used')),
  discoverManyJson: () => Promise.reject(new Error('not used')),
  flushCache: () => {
    flushes++;
  },
  flushName: () => 0,
  flushCsi: () => 0,
  refreshRootCopy: () => Promise.reject(new Error('not used')),
  probeTrustAnchor: () => Promise.reject(new Error('not used')),
  trustAnchorKeys: () => [],
  observeUpstream: (observer) => {
    // Two answers and a timeout of one server, as the metrics see them.
    observer('127.0.0.1:53', { rttSeconds: 0.004 });
    observer('127.0.0.1:53', { rttSeconds: 0.2 });
    observer('127.0.0.1:53', { error: 'timeout' });
  },
  async resolve(name, type) {
    resolved.push([name, type]);
    if (name === FAULT) throw new Error('resolver fault');
    return ANSWERS.get(name) ?? answer('secure', { answers: [] });
  },
  stats: () => ({
    cacheHits: 3,
    cacheMisses: 1,
    cacheHitsBy: { answer: 2, discovery: 1 },
    cacheMissesBy: { answer: 1, discovery: 0 },
    signatureVerifications: 5,
    failureCacheHits: 2,
    upstreamQueries: 17,
    validationFailures: { 'bogus-signature': 2, 'no-ds-match': 1 },
    cacheBytes: 4096,
    rootCopy: { state: 'off', transfersOk: 0, transfersFailed: 0 },
    trustAnchorKeys: { addpend: 1, valid: 1, missing: 0, revoked: 0, removed: 0 },
    authkeyRefetches: { allowed: 4, refused: 6 },
  }),
  close: async () => undefined,
};

const logs: string[] = [];
let server: RunningResolverServer;
let doh: DohClient;
/** The certificate of every server in this file. */
let tlsLeaf: { certPem: string; keyPem: string };

beforeAll(async () => {
  const ca = await createLocalCa();
  const leaf = await issueServerCertificate(ca, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  tlsLeaf = leaf;
  server = await startResolverServer(
    {
      listen: { udp: 0, tcp: 0, doh: 0, api: 0, admin: 0 },
      tls: { cert: leaf.certPem, key: leaf.keyPem },
    },
    resolver,
    { log: createLogger('resolver', { level: 'debug', write: (line) => logs.push(line) }) },
  );
  doh = createDohClient({ ca: ca.certPem });
});

afterAll(async () => {
  await doh?.close();
  await server?.close();
});

function udp(): { host: string; port: number } {
  const address = server.dns?.udp;
  if (address === undefined) throw new Error('no UDP listener');
  return address;
}

/** A query with DO, AD and CD as given. */
function query(
  name: string,
  type: Parameters<typeof buildQuery>[1],
  bits: { do?: boolean; ad?: boolean; cd?: boolean; edns?: boolean } = {},
): Message {
  const q = buildQuery(name, type, { dnssecOk: bits.do ?? false, recursionDesired: true });
  const withFlags = { ...q, flags: { ...q.flags, ad: bits.ad ?? false, cd: bits.cd ?? false } };
  if (bits.edns !== false) return withFlags;
  const plain: Message = { ...withFlags };
  delete plain.edns;
  return plain;
}

const types = (records: readonly ResourceRecord[]): string[] => records.map((rr) => rr.type);

/** The INFO-CODEs of the Extended DNS Errors of a response (RFC 8914). */
const edeCodes = (response: Message): number[] =>
  (response.edns?.options ?? [])
    .filter((o) => o.code === 15)
    .map((o) => ((o.data[0] ?? 0) << 8) | (o.data[1] ?? 0));

describe('the AD bit (RFC 6840 §5.8)', () => {
  it.each<[string, string, { do?: boolean; ad?: boolean }, boolean]>([
    ['sets AD on a secure answer to a query with DO', SECURE, { do: true }, true],
    ['sets AD on a secure answer to a query with AD', SECURE, { ad: true }, true],
    ['leaves AD clear on a secure answer to a query with neither', SECURE, {}, false],
    ['leaves AD clear on an insecure answer', INSECURE, { do: true }, false],
    ['leaves AD clear on an indeterminate answer', INDETERMINATE, { do: true, ad: true }, false],
    ['sets AD on a secure denial to a query with DO', NXDOMAIN, { do: true }, true],
  ])('%s', async (_what, name, bits, ad) => {
    const response = await queryUdp(udp(), query(name, 'MAP', bits));
    expect(response.flags.ad).toBe(ad);
    expect(response.flags.ra).toBe(true);
    expect(response.flags.aa).toBe(false);
  });
});

describe('DNSSEC records', () => {
  it('carries RRSIGs only when the query sets DO', async () => {
    const withDo = await queryUdp(udp(), query(SECURE, 'MAP', { do: true }));
    expect(types(withDo.answers)).toEqual(['MAP', 'RRSIG']);
    const without = await queryUdp(udp(), query(SECURE, 'MAP'));
    expect(types(without.answers)).toEqual(['MAP']);
  });

  it('keeps NSEC and RRSIG out of a denial without DO, leaving the SOA', async () => {
    const without = await queryUdp(udp(), query(NXDOMAIN, 'MAP'));
    expect(without.rcode).toBe('NXDOMAIN');
    expect(types(without.authorities)).toEqual(['SOA']);
    const withDo = await queryUdp(udp(), query(NXDOMAIN, 'MAP', { do: true }));
    expect(types(withDo.authorities)).toEqual(['SOA', 'RRSIG', 'NSEC', 'RRSIG']);
  });

  it.each<[string, { do?: boolean; co?: boolean }, string]>([
    ['NXDOMAIN to a client without DO, which sees no NSEC', {}, 'NXDOMAIN'],
    ['NOERROR, as signed, to a validating client (DO without CO)', { do: true }, 'NOERROR'],
    ['NXDOMAIN with CO echoed to a client that sets CO', { do: true, co: true }, 'NXDOMAIN'],
  ])('answers a compact denial of a name with %s (RFC 9824 §5)', async (_what, bits, rcode) => {
    const base = query(NXDOMAIN, 'MAP', { do: bits.do ?? false });
    const q: Message =
      bits.co === true && base.edns !== undefined
        ? { ...base, edns: { ...base.edns, compactOk: true } }
        : base;
    const response = await queryUdp(udp(), q);
    expect(response.rcode).toBe(rcode);
    expect(response.edns?.compactOk === true).toBe(bits.co === true);
    if (bits.do === true) {
      const nsec = response.authorities.find((rr) => rr.type === 'NSEC');
      expect(nsec?.type === 'NSEC' ? nsec.data.types : []).toContain('TYPE128');
    }
  });

  it.each<[string, { do?: boolean; co?: boolean }]>([
    ['without DO', {}],
    ['with DO and without CO', { do: true }],
    ['with CO', { do: true, co: true }],
  ])(
    'answers NXDOMAIN %s for a name denied through an ancestor that does not exist (RFC 8020)',
    async (_what, bits) => {
      const base = query(BELOW_NXDOMAIN, 'MAP', { do: bits.do ?? false });
      const q: Message =
        bits.co === true && base.edns !== undefined
          ? { ...base, edns: { ...base.edns, compactOk: true } }
          : base;
      const response = await queryUdp(udp(), q);
      // NOERROR would claim the name exists: the NSEC is the ancestor's.
      expect(response.rcode).toBe('NXDOMAIN');
      if (bits.do === true) {
        expect(response.authorities.find((rr) => rr.type === 'NSEC')?.name).toBe(NXDOMAIN);
      }
    },
  );

  it('answers a question for RRSIGs with them, DO or not', async () => {
    const response = await queryUdp(udp(), query(SECURE, 'RRSIG'));
    expect(types(response.answers)).toContain('RRSIG');
  });
});

describe('bogus answers', () => {
  it('are SERVFAIL with Extended DNS Error 6 (DNSSEC Bogus)', async () => {
    const response = await queryUdp(udp(), query(BOGUS, 'MAP', { do: true }));
    expect(response.rcode).toBe('SERVFAIL');
    expect(response.answers).toEqual([]);
    expect(response.flags.ad).toBe(false);
    expect(edeCodes(response)).toEqual([6]);
  });

  it("carry the resolver's reason as the Extended DNS Error (RFC 8914)", async () => {
    const response = await queryUdp(udp(), query(EXPIRED_SIG, 'MAP', { do: true }));
    expect(response.rcode).toBe('SERVFAIL');
    expect(extendedDnsErrors(response.edns?.options ?? [])).toEqual([
      { infoCode: 7, text: 'signature-expired: MAP of expired.4.4.e164.mimi.arpa' },
    ]);
  });

  it('are SERVFAIL without an OPT for a query without EDNS', async () => {
    const response = await queryUdp(udp(), query(BOGUS, 'MAP', { edns: false }));
    expect(response.rcode).toBe('SERVFAIL');
    expect(response.edns).toBeUndefined();
  });

  it('are passed on, AD clear and still marked bogus, when the query sets CD', async () => {
    const response = await queryUdp(udp(), query(BOGUS, 'MAP', { do: true, cd: true }));
    expect(response.rcode).toBe('NOERROR');
    expect(response.flags.cd).toBe(true);
    expect(response.flags.ad).toBe(false);
    expect(types(response.answers)).toEqual(['MAP', 'RRSIG']);
    expect(edeCodes(response)).toEqual([6]);
  });
});

describe('every SERVFAIL says why (RFC 8914)', () => {
  it('an unreachable zone, from the failure cache: 22 No Reachable Authority and 13 Cached Error', async () => {
    const response = await queryUdp(udp(), query(UNREACHABLE, 'MAP'));
    expect(response.rcode).toBe('SERVFAIL');
    expect(edeCodes(response)).toEqual([22, 13]);
  });

  it('a resolver fault: 0 Other', async () => {
    const response = await queryUdp(udp(), query(FAULT, 'MAP'));
    expect(response.rcode).toBe('SERVFAIL');
    expect(extendedDnsErrors(response.edns?.options ?? [])).toEqual([
      { infoCode: 0, text: 'resolver fault' },
    ]);
  });
});

describe('what is refused', () => {
  it.each([
    ['a name outside the apex', 'example.com'],
    ['a name beside the apex', 'mimi.org'],
    ['the root', '.'],
  ])('refuses %s without resolving it', async (_what, name) => {
    const before = resolved.length;
    const response = await queryUdp(udp(), query(name, 'A'));
    expect(response.rcode).toBe('REFUSED');
    expect(response.flags.ra).toBe(true);
    expect(resolved.length).toBe(before);
  });

  it('resolves the apex itself, in any case', async () => {
    const response = await queryUdp(udp(), query('MIMI.arpa.', 'SOA'));
    expect(response.rcode).toBe('NOERROR');
    expect(resolved.at(-1)).toEqual(['mimi.arpa', 'SOA']);
  });

  it('refuses class CH and zone transfers, and does not implement ANY', async () => {
    const ch = query(SECURE, 'TXT');
    const chaos = await queryUdp(udp(), {
      ...ch,
      questions: [{ name: 'version.bind', type: 'TXT', class: 'CH' }],
    });
    expect(chaos.rcode).toBe('REFUSED');
    const tcp = server.dns?.tcp;
    if (tcp === undefined) throw new Error('no TCP listener');
    expect((await queryTcp(tcp, query(ZONE, 'AXFR'))).rcode).toBe('REFUSED');
    expect((await queryUdp(udp(), query(SECURE, 'ANY'))).rcode).toBe('NOTIMP');
  });

  it('answers SERVFAIL when the resolver fails, logging the name without the client', async () => {
    const response = await queryUdp(udp(), query(FAULT, 'MAP'));
    expect(response.rcode).toBe('SERVFAIL');
    const line = logs.find((l) => l.includes('"event":"resolve-failed"'));
    expect(line).toContain(FAULT);
    expect(line).not.toContain('127.0.0.1');
  });
});

describe('stale answers', () => {
  it('carry Extended DNS Error 3 (Stale Answer)', async () => {
    const response = await queryUdp(udp(), query(STALE, 'MAP'));
    expect(response.rcode).toBe('NOERROR');
    expect(edeCodes(response)).toEqual([3]);
  });
});

describe('the answer cache', () => {
  it('answers a question asked again without resolving it, over each transport', async () => {
    const calls = (): number => resolved.filter(([name]) => name === CACHED).length;
    const first = await queryUdp(udp(), query(CACHED, 'MAP', { do: true }));
    const again = await queryUdp(udp(), query(CACHED, 'MAP', { do: true }));
    expect(calls()).toBe(1);
    expect(again.answers).toEqual(first.answers);
    expect(again.flags.ad).toBe(true);
    // Another transport, or other flags, is another question for the cache.
    await queryTcp(udp(), query(CACHED, 'MAP', { do: true }));
    await queryTcp(udp(), query(CACHED, 'MAP', { do: true }));
    expect(calls()).toBe(2);
    await queryUdp(udp(), query(CACHED, 'MAP', { do: false }));
    expect(calls()).toBe(3);
    // Failures are never reused.
    const faults = (): number => resolved.filter(([name]) => name === FAULT).length;
    const before = faults();
    await queryUdp(udp(), query(FAULT, 'MAP'));
    await queryUdp(udp(), query(FAULT, 'MAP'));
    expect(faults() - before).toBe(2);
  });

  it('gives an answer again with its TTLs as they were, only while the resolver says it may', async () => {
    const first = await queryUdp(udp(), query(CACHED, 'MAP', { do: true }));
    const again = await queryUdp(udp(), query(CACHED, 'MAP', { do: true }));
    expect(again.answers.map((rr) => rr.ttl)).toEqual(first.answers.map((rr) => rr.ttl));
    expect(again.answers[0]?.ttl).toBe(60);
    const calls = (): number => resolved.filter(([name]) => name === ONCE).length;
    await queryUdp(udp(), query(ONCE, 'MAP', { do: true }));
    await queryUdp(udp(), query(ONCE, 'MAP', { do: true }));
    expect(calls()).toBe(2);
  });
});

describe('flushCache', () => {
  it('flushes the resolver and the answer cache: a question asked again is resolved again', async () => {
    const calls = (): number => resolved.filter(([name]) => name === CACHED).length;
    await queryUdp(udp(), query(CACHED, 'MAP', { do: true, ad: true }));
    await queryUdp(udp(), query(CACHED, 'MAP', { do: true, ad: true }));
    const before = calls();
    const flushed = flushes;
    server.flushCache();
    expect(flushes).toBe(flushed + 1);
    await queryUdp(udp(), query(CACHED, 'MAP', { do: true, ad: true }));
    expect(calls()).toBe(before + 1);
  });
});

describe('DoH and TCP', () => {
  it.each(['GET', 'POST'] as const)('answers over DoH %s as over UDP', async (method) => {
    const url = server.dns?.doh?.url;
    if (url === undefined) throw new Error('no DoH listener');
    const response = await doh.query(url, query(SECURE, 'MAP', { do: true }), { method });
    expect(response.flags.ad).toBe(true);
    expect(types(response.answers)).toEqual(['MAP', 'RRSIG']);
    const bogus = await doh.query(url, query(BOGUS, 'MAP'), { method });
    expect(bogus.rcode).toBe('SERVFAIL');
    const refused = await doh.query(url, query('example.com', 'A'), { method });
    expect(refused.rcode).toBe('REFUSED');
  });

  it('answers over TCP', async () => {
    const tcp = server.dns?.tcp;
    if (tcp === undefined) throw new Error('no TCP listener');
    const response = await queryTcp(tcp, query(SECURE, 'MAP', { ad: true }));
    expect(response.flags.ad).toBe(true);
  });
});

describe('the admin port', () => {
  const admin = (): string => {
    const url = server.admin?.url;
    if (url === undefined) throw new Error('no admin listener');
    return url;
  };

  it('reports health with the cache size', async () => {
    const response = await fetch(`${admin()}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: 'ok',
      detail: { apex: 'mimi.arpa', cacheBytes: 4096, upstreamQueries: 17 },
    });
  });

  it("serves metrics, the core's counts copied at scrape time", async () => {
    await queryUdp(udp(), query(SECURE, 'MAP'));
    const text = await (await fetch(`${admin()}/metrics`)).text();
    // Hits and misses as counters by cache (the hit-ratio gauge is gone: take a rate ratio).
    expect(text).not.toContain('resolver_cache_hit_ratio');
    expect(text).toContain('resolver_cache_hits_total{cache="answer"} 2\n');
    expect(text).toContain('resolver_cache_hits_total{cache="discovery"} 1\n');
    expect(text).toContain('resolver_cache_misses_total{cache="answer"} 1\n');
    expect(text).toContain('resolver_upstream_rtt_seconds_count{upstream="127.0.0.1:53"} 2\n');
    expect(text).toContain(
      'resolver_upstream_errors_total{upstream="127.0.0.1:53",kind="timeout"} 1\n',
    );
    expect(text).toContain('resolver_trust_anchor_keys{state="addpend"} 1\n');
    expect(text).toContain('resolver_trust_anchor_keys{state="valid"} 1\n');
    expect(text).toContain('resolver_authkey_refetches_total{outcome="allowed"} 4\n');
    expect(text).toContain('resolver_authkey_refetches_total{outcome="refused"} 6\n');
    expect(text).toContain('resolver_cache_bytes 4096\n');
    expect(text).toContain('resolver_upstream_queries_total 17\n');
    expect(text).toContain('resolver_validation_failures_total{reason="bogus-signature"} 2\n');
    expect(text).toContain('resolver_validation_failures_total{reason="no-ds-match"} 1\n');
    expect(text).toContain('resolver_signature_verifications_total 5\n');
    expect(text).toContain('resolver_failure_cache_hits_total 2\n');
    expect(text).toMatch(/^resolver_queries_total\{transport="udp",rcode="NOERROR"\} [1-9]\d*$/m);
    expect(text).toMatch(/^resolver_queries_total\{transport="udp",rcode="REFUSED"\} [1-9]\d*$/m);
    expect(text).toMatch(/^resolver_queries_total\{transport="doh",rcode="SERVFAIL"\} [1-9]\d*$/m);
    expect(text).toMatch(/^resolver_resolution_duration_seconds_count\{kind="dns"\} [1-9]\d*$/m);
    expect(text).toMatch(/^resolver_answer_cache_hits_total [1-9]\d*$/m);
    // A second scrape sets the counters again rather than adding to them.
    const again = await (await fetch(`${admin()}/metrics`)).text();
    expect(again).toContain('resolver_upstream_queries_total 17\n');
    expect(again).toContain('resolver_signature_verifications_total 5\n');
  });

  it('serves the JSON API beside the DNS listeners', () => {
    expect(server.api?.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });
});

describe('startResolverServer', () => {
  // Settings built in code are held to the rules of a config file (`resolverConfigSchema`).
  it('refuses DoH or the JSON API without TLS, and no listener at all', async () => {
    const error = await startResolverServer({ listen: { api: 0 } }, resolver).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MimiError);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('ERR_CONFIG_INVALID');
    expect((error as ConfigError).message).toBe(
      'tls: required when listen.doh or listen.api is set',
    );
    const none = await startResolverServer({ listen: { admin: 0 } }, resolver).catch(
      (e: unknown) => e,
    );
    expect((none as ConfigError).code).toBe('ERR_CONFIG_INVALID');
    expect((none as ConfigError).message).toBe(
      'listen: set at least one of udp, tcp, doh and api: the resolver would serve no one',
    );
  });

  it('gives each listener the limits of its settings', async () => {
    const limited = await startResolverServer(
      {
        listen: { tcp: 0, api: 0 },
        limits: { tcp: { connectionsPerClient: 2 }, api: { connectionsPerClient: 1 } },
        tls: { cert: tlsLeaf.certPem, key: tlsLeaf.keyPem },
      },
      resolver,
      { log: createLogger('t', { level: 'silent' }) },
    );
    const sockets: Socket[] = [];
    try {
      const port = {
        tcp: limited.dns?.tcp?.port ?? 0,
        api: limited.api?.port ?? 0,
      };
      for (const [listener, count] of [
        ['tcp', 3],
        ['api', 2],
      ] as const) {
        for (let i = 0; i < count; i++) {
          const socket = connectTcp({ host: '127.0.0.1', port: port[listener] });
          socket.on('error', () => undefined);
          sockets.push(socket);
        }
      }
      const refused = (): number[] => [
        limited.dns?.tcp?.connectionStats().refused.client_limit ?? 0,
        limited.api?.connectionStats().refused.client_limit ?? 0,
      ];
      for (let i = 0; i < 500 && refused().join() !== '1,1'; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(refused()).toEqual([1, 1]);
    } finally {
      for (const socket of sockets) socket.destroy();
      await limited.close();
    }
  });

  it('closes what it started when a listener cannot bind', async () => {
    const taken = udp().port;
    const error = await startResolverServer({ listen: { tcp: 0, udp: taken } }, resolver, {
      log: createLogger('t', { level: 'silent' }),
    }).catch((e: unknown) => e);
    expect((error as MimiError).code).toBe('ERR_TRANSPORT_LISTEN');
  });
});
