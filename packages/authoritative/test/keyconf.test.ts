import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildQuery,
  decodeMessage,
  encodeMessage,
  record,
  verifyRRset,
  type KeyconfData,
  type Message,
  type RecordOf,
  type ResourceRecord,
  type RRType,
} from '@mimi-discovery/common';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createAnswerer,
  createMemoryStore,
  DEFAULT_KEYCONF_TTL,
  KeyconfError,
  keyconfChanges,
  listKeys,
  openLmdbStore,
  publishKeys,
  type DiscoveryStore,
  type KeyconfErrorCode,
} from '../src/index.js';
import {
  CHILD,
  ORIGIN,
  PROVER_SEED,
  T0,
  delegation,
  expectStoreError,
  fakeClock,
  zoneInit,
  type FakeClock,
} from './store-battery.js';

const root = mkdtempSync(join(tmpdir(), 'mimi-keyconf-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

/** The gateway's service name in the DP's zone (an owner below the apex). */
const SERVICE = `resolver.${ORIGIN}`;
const DOH = 'https://resolver.example.net:8447/dns-query';

const key = (n: number, overrides: Partial<KeyconfData> = {}): KeyconfData => ({
  kind: 'ohttp',
  config: Uint8Array.of(n, 0, 0x20, ...new Uint8Array(32).fill(n), 0, 4, 0, 1, 0, 1),
  notBefore: T0 - 3600,
  notAfter: T0 + 86_400,
  ...overrides,
});

function keyconfError(fn: () => unknown): KeyconfError {
  try {
    fn();
  } catch (error) {
    if (error instanceof KeyconfError) return error;
    throw error;
  }
  throw new Error('no error thrown');
}

async function rejection(promise: Promise<unknown>): Promise<KeyconfError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof KeyconfError) return error;
    throw error;
  }
  throw new Error('no error thrown');
}

const openLmdb = (now: () => number, dir: string): Promise<DiscoveryStore> =>
  openLmdbStore({ dataDir: dir, now, proverSeed: PROVER_SEED });

/** Each store: its name, how to open it, and how to open it again on the same data. */
const stores: Array<
  [
    string,
    (now: () => number, dir: string) => Promise<DiscoveryStore>,
    ((now: () => number, dir: string) => Promise<DiscoveryStore>) | undefined,
  ]
> = [
  ['memory store', async (now) => createMemoryStore({ now, proverSeed: PROVER_SEED }), undefined],
  ['LMDB store', openLmdb, openLmdb],
];

describe.each(stores)('KEYCONF in the %s', (_name, openStore, reopen) => {
  interface Setup {
    store: DiscoveryStore;
    clock: FakeClock;
    dir: string;
    ask(name: string, type: RRType): Message;
    verifies(section: readonly ResourceRecord[], name: string, covered: RRType): boolean;
  }

  const setup = async (): Promise<Setup> => {
    const clock = fakeClock();
    const dir = join(root, `store-${++counter}`);
    const store = await openStore(clock.now, dir);
    await store.addZone(zoneInit());
    const answerer = createAnswerer(store, { now: clock.now });
    return {
      store,
      clock,
      dir,
      // Every response must survive the wire, where a KEYCONF is decoded strictly.
      ask: (name, type) =>
        decodeMessage(
          encodeMessage(
            answerer(buildQuery(name, type, { dnssecOk: true }), {
              transport: 'udp',
              remoteAddress: '127.0.0.1',
            }),
          ),
        ),
      verifies: (section, name, covered) => {
        const rrset = section.filter((rr) => rr.type === covered && rr.name === name);
        const rrsig = section.find(
          (rr): rr is RecordOf<'RRSIG'> =>
            rr.type === 'RRSIG' && rr.name === name && rr.data.typeCovered === covered,
        );
        if (rrset.length === 0 || rrsig === undefined) return false;
        const dnskeys = store.readRRset(ORIGIN, ORIGIN, 'DNSKEY');
        return verifyRRset(rrset, rrsig, dnskeys, clock.now()).kind === 'verified';
      },
    };
  };

  it('serves a published KEYCONF RRset below the apex, signed, and the _dns SVCB with ohttp', async () => {
    const { store, ask, verifies } = await setup();
    const published = await publishKeys(store, SERVICE, [key(1), key(2, { kind: 'odoh' })], {
      now: T0,
      doh: DOH,
    });
    expect(published).toMatchObject({ origin: ORIGIN, name: SERVICE, serial: 2 });

    const answer = ask(SERVICE, 'KEYCONF');
    expect(answer.rcode).toBe('NOERROR');
    expect(answer.flags.aa).toBe(true);
    const keys = answer.answers.flatMap((rr) => (rr.type === 'KEYCONF' ? [rr.data] : []));
    expect(keys).toHaveLength(2);
    expect(keys).toEqual(expect.arrayContaining([key(1), key(2, { kind: 'odoh' })]));
    expect(answer.answers.every((rr) => rr.ttl === DEFAULT_KEYCONF_TTL)).toBe(true);
    expect(verifies(answer.answers, SERVICE, 'KEYCONF')).toBe(true);

    const svcb = ask(`_dns.${SERVICE}`, 'SVCB');
    expect(svcb.answers.find((rr) => rr.type === 'SVCB')?.data).toEqual({
      priority: 1,
      target: 'resolver.example.net',
      params: { alpn: ['h2', 'http/1.1'], port: 8447, dohpath: '/dns-query{?dns}', ohttp: true },
    });
    expect(verifies(svcb.answers, `_dns.${SERVICE}`, 'SVCB')).toBe(true);
    await store.close();
  });

  it('lists KEYCONF in the type bitmap of the signed denial at its owner', async () => {
    const { store, ask, verifies } = await setup();
    await publishKeys(store, SERVICE, [key(1)], { now: T0 });
    const nodata = ask(SERVICE, 'A');
    expect(nodata.rcode).toBe('NOERROR');
    expect(nodata.answers).toEqual([]);
    const nsec = nodata.authorities.find((rr) => rr.type === 'NSEC');
    expect(nsec?.type === 'NSEC' && nsec.data.types).toContain('KEYCONF');
    expect(nsec?.type === 'NSEC' && nsec.data.types).not.toContain('A');
    expect(verifies(nodata.authorities, SERVICE, 'NSEC')).toBe(true);
    await store.close();
  });

  it('replaces the RRset whole, leaves expired keys out, and keeps it across a reopen', async () => {
    const { store, clock, dir } = await setup();
    await publishKeys(store, SERVICE, [key(1), key(2)], { now: T0 });
    clock.advance(60);
    const expired = key(3, { notBefore: T0 - 7200, notAfter: T0 });
    const result = await publishKeys(store, SERVICE, [expired, key(4)], { now: clock.now() });
    expect(result.keys).toEqual([key(4)]);
    expect(listKeys(store, SERVICE).keys).toEqual([key(4)]);
    await store.close();
    if (reopen === undefined) return;
    const again = await reopen(clock.now, dir);
    expect(listKeys(again, SERVICE)).toMatchObject({ keys: [key(4)], ttl: DEFAULT_KEYCONF_TTL });
    await again.close();
  });

  it('loses no publication of concurrent writers at different owners', async () => {
    const { store } = await setup();
    const owners = Array.from({ length: 8 }, (_, i) => `svc${i}.${ORIGIN}`);
    const results = await Promise.all(
      owners.map((owner, i) => publishKeys(store, owner, [key(i + 1)], { now: T0 })),
    );
    // Concurrent writes share a group commit's serial step; each reports the serial that
    // serves it, none above the zone's.
    const served = store.zoneInfo(ORIGIN)!.serial;
    for (const r of results) expect(r.serial).toBeLessThanOrEqual(served);
    expect(Math.max(...results.map((r) => r.serial))).toBe(served);
    owners.forEach((owner, i) => expect(listKeys(store, owner).keys).toEqual([key(i + 1)]));
    await store.close();
  });

  it.each<[string, string, KeyconfData[], { doh?: string }, KeyconfErrorCode]>([
    ['an owner outside every zone', 'resolver.example.com', [key(1)], {}, 'ERR_KEYCONF_NO_ZONE'],
    ['an owner below a delegation', `resolver.${CHILD}`, [key(1)], {}, 'ERR_KEYCONF_BELOW_CUT'],
    ['an owner at a delegation', CHILD, [key(1)], {}, 'ERR_KEYCONF_BELOW_CUT'],
    ['no key', SERVICE, [], {}, 'ERR_KEYCONF_NO_KEYS'],
    [
      'only expired keys',
      SERVICE,
      [key(1, { notBefore: T0 - 10, notAfter: T0 })],
      {},
      'ERR_KEYCONF_NO_KEYS',
    ],
    [
      'a DoH URL over http',
      SERVICE,
      [key(1)],
      { doh: 'http://r.example/dns-query' },
      'ERR_KEYCONF_DOH_URL',
    ],
    ['a DoH URL with a query', SERVICE, [key(1)], { doh: `${DOH}?dns=x` }, 'ERR_KEYCONF_DOH_URL'],
    [
      'a DoH URL that is no URL',
      SERVICE,
      [key(1)],
      { doh: 'resolver:8447' },
      'ERR_KEYCONF_DOH_URL',
    ],
    ['--doh at a nameserver', `ns1.${ORIGIN}`, [key(1)], { doh: DOH }, 'ERR_KEYCONF_NAMESERVER'],
  ])('refuses %s and changes nothing', async (_what, owner, keys, options, code) => {
    const { store } = await setup();
    await store.apply(ORIGIN, delegation(CHILD));
    const before = store.readZone(ORIGIN);
    const err = await rejection(publishKeys(store, owner, keys, { now: T0, ...options }));
    expect(err.code).toBe(code);
    expect(store.readZone(ORIGIN)).toEqual(before);
    await store.close();
  });

  it('refuses a KEYCONF record that does not encode, through apply', async () => {
    const { store } = await setup();
    const bad = record(SERVICE, 'KEYCONF', key(1, { notBefore: T0 + 10, notAfter: T0 }), 60);
    await expectStoreError(
      store.apply(ORIGIN, [{ op: 'put', name: SERVICE, type: 'KEYCONF', records: [bad] }]),
      'ERR_STORE_BAD_CHANGE',
    );
    expect(listKeys(store, SERVICE).keys).toEqual([]);
    await store.close();
  });
});

describe('keyconfChanges', () => {
  it('describes a DoH URL on an IP address with the service name as target and a hint', () => {
    const changes = keyconfChanges(SERVICE, [key(1)], {
      now: T0,
      doh: 'https://[::1]:8447/',
      ttl: 60,
    });
    expect(changes[1]).toEqual({
      op: 'put',
      name: `_dns.${SERVICE}`,
      type: 'SVCB',
      records: [
        record(
          `_dns.${SERVICE}`,
          'SVCB',
          {
            priority: 1,
            target: SERVICE,
            params: {
              alpn: ['h2', 'http/1.1'],
              port: 8447,
              ipv6hint: ['::1'],
              dohpath: '/dns-query{?dns}',
              ohttp: true,
            },
          },
          60,
        ),
      ],
    });
    const v4 = keyconfChanges(SERVICE, [key(1)], { now: T0, doh: 'https://127.0.0.1/q' });
    const svcb = v4[1]?.op === 'put' ? v4[1].records[0] : undefined;
    expect(svcb?.type === 'SVCB' && svcb.data.params).toEqual({
      alpn: ['h2', 'http/1.1'],
      ipv4hint: ['127.0.0.1'],
      dohpath: '/q{?dns}',
      ohttp: true,
    });
  });

  it('says whether the keys were none or all expired', () => {
    expect(keyconfError(() => keyconfChanges(SERVICE, [], { now: T0 })).message).toContain('empty');
    const expired = [key(1, { notBefore: 1, notAfter: T0 })];
    expect(keyconfError(() => keyconfChanges(SERVICE, expired, { now: T0 })).message).toContain(
      'all 1 have expired',
    );
  });
});
