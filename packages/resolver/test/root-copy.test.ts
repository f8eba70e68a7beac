import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  computeDs,
  createZoneKey,
  decodeMessage,
  encodeMessage,
  record,
  signRRset,
  type Message,
  type RecordOf,
  type ResourceRecord,
} from '@mimi-discovery/common';
import { zoneRecordsAt } from '@mimi-discovery/authoritative';
import {
  ROOT_COPY_EXPIRY_MARGIN_SECONDS,
  ROOT_COPY_MIN_RETRY_SECONDS,
  ROOT_COPY_VERIFICATIONS_PER_RRSET,
  checkRootCopy,
  createResolver,
  createResolverMetrics,
  nextRefreshAt,
  serialGreater,
  type Resolver,
  type ResolverConfig,
} from '../src/index.js';
import {
  CSIS,
  buildHierarchy,
  publishCases,
  type Hierarchy,
} from '../../../test/helpers/hierarchy.js';
import { APEX, PHONE_ZONE } from '../../../test/helpers/network.js';

/**
 * The local root copy (RFC 8806 spirit, `root-copy.ts`): transferred from the fixture's root by
 * AXFR, checked against the trust anchor, every signature and the ZONEMD, and used so that a
 * lookup under a delegated range asks the root nothing; hostile transfers are refused whole.
 */

let net: Hierarchy;
const opened: Resolver[] = [];
const servers: Server[] = [];

beforeAll(async () => {
  net = await buildHierarchy();
  await publishCases(net);
});

afterAll(async () => {
  await Promise.allSettled(opened.map((r) => r.close()));
  for (const server of servers) server.close();
  await net?.close();
});

function resolverWith(
  extra: Partial<ResolverConfig> = {},
  clock: { now: number } = { now: Date.now() / 1000 },
): Resolver {
  const resolver = createResolver(
    net.resolverConfig({ rootServers: net.rootCopyServers, ...extra }),
    { now: () => clock.now },
  );
  opened.push(resolver);
  return resolver;
}

/** The root's zone as its server transfers it now (SOA first). */
const rootZone = (): ResourceRecord[] => zoneRecordsAt(net.root.store, APEX, Date.now() / 1000);

const checkInit = () => ({
  apex: APEX,
  ds: net.resolverConfig().trustAnchor.ds,
  transport: 'doh' as const,
  dnsPort: 53,
});

/** How a fake root server sends the zone. */
type Mode = 'honest' | 'drip' | 'endless';

/**
 * A TCP server that answers AXFR with `zone()` in messages of 50 records (or, `drip`, one octet
 * every 20 ms; or, `endless`, the SOA then NS records without end), and SOA questions with the
 * zone's SOA.
 */
async function fakeRoot(zone: () => ResourceRecord[], mode: Mode = 'honest'): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.once('data', (chunk: Buffer) => {
      const query = decodeMessage(chunk.subarray(2, 2 + chunk.readUInt16BE(0)));
      const records = zone();
      const soa = records[0] as ResourceRecord;
      const reply = (answers: ResourceRecord[], first: boolean): Buffer => {
        const wire = encodeMessage({
          ...query,
          flags: { ...query.flags, qr: true, aa: true },
          questions: first ? query.questions : [],
          answers,
          authorities: [],
          additionals: [],
        } satisfies Message);
        const frame = Buffer.alloc(2 + wire.length);
        frame.writeUInt16BE(wire.length, 0);
        frame.set(wire, 2);
        return frame;
      };
      if (query.questions[0]?.type !== 'AXFR') {
        socket.end(reply([soa], true));
        return;
      }
      if (mode === 'endless') {
        let i = 0;
        const more = (): void => {
          while (!socket.destroyed && socket.write(reply(i === 0 ? [soa] : fill(i), i === 0))) i++;
          if (!socket.destroyed) socket.once('drain', more);
        };
        more();
        return;
      }
      const all = [...records, soa];
      const frames: Buffer[] = [];
      for (let i = 0; i < all.length; i += 50) frames.push(reply(all.slice(i, i + 50), i === 0));
      const bytes = Buffer.concat(frames);
      if (mode === 'honest') {
        socket.write(bytes);
        return;
      }
      let at = 0;
      const timer = setInterval(() => {
        if (socket.destroyed || at >= bytes.length) return clearInterval(timer);
        socket.write(bytes.subarray(at, ++at));
      }, 20);
    });
  });
  servers.push(server);
  server.on('close', () => {
    for (const socket of sockets) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

/** Ten NS records of an endless transfer. */
function fill(i: number): ResourceRecord[] {
  return Array.from({ length: 10 }, (_, j) =>
    record(`z${i}-${j}.e164.${APEX}`, 'NS', `ns.z${i}.e164.${APEX}`, 3600),
  );
}

const hints = (port: number): ResolverConfig['rootServers'] => [
  { name: net.root.nameserver, addresses: ['127.0.0.1'], port, doh: net.root.dohUrl },
];

describe('a resolver with a root copy', () => {
  it('resolves a CSI under a delegated range without asking the root anything', async () => {
    const resolver = resolverWith();
    const status = await resolver.refreshRootCopy();
    expect(status).toMatchObject({ state: 'valid', transfersOk: 1, transfersFailed: 0 });
    expect(status.delegations).toBeGreaterThanOrEqual(3);
    const before = net.root.queries();
    const result = await resolver.discover(CSIS.found);
    expect(result.status, JSON.stringify(result.error)).toBe('found');
    expect(result.mappings[0]?.zone).toBe(PHONE_ZONE);
    expect(net.root.queries()).toBe(before);
    // The root's keys come from the copy too.
    const keys = await resolver.resolve(APEX, 'DNSKEY');
    expect(keys.status).toBe('secure');
    expect(net.root.queries()).toBe(before);
  });

  it('asks the root one label below the closest name its copy holds, for a name under no delegation', async () => {
    const resolver = resolverWith();
    await resolver.refreshRootCopy();
    const seen = net.root.seen.length;
    const result = await resolver.discover('someone@unpublished.example');
    expect(result.status).not.toBe('found');
    const asked = net.root.seen.slice(seen);
    // `example.email.mimi.arpa` exists in the copy: an empty non-terminal above the MSP's zone
    // `chat.example.email.mimi.arpa`. The root is asked one label below it, first.
    expect(asked[0]).toBe(`unpublished.example.email.${APEX}/NS`);
    expect(asked).not.toContain(`${APEX}/DNSKEY`);
  });

  it('without the copy, asks the root as before', async () => {
    for (const extra of [{ rootCopy: false as const }, { rootServers: net.rootServers }]) {
      const resolver = resolverWith(extra);
      expect((await resolver.refreshRootCopy()).state).toBe('off');
      const before = net.root.queries();
      expect((await resolver.discover(CSIS.found)).status).toBe('found');
      expect(net.root.queries()).toBeGreaterThan(before);
    }
    const resolver = resolverWith({ rootServers: net.rootServers });
    const seen = net.root.seen.length;
    await resolver.discover('someone@unpublished.example');
    expect(net.root.seen.slice(seen)).toContain(`email.${APEX}/NS`);
  });

  it('picks up a new delegation once the serial moves, and only then transfers again', async () => {
    const resolver = resolverWith();
    const first = await resolver.refreshRootCopy();
    const again = await resolver.refreshRootCopy();
    expect(again).toMatchObject({ serial: first.serial, transfersOk: first.transfersOk });
    const added = await net.addServer({ zone: `9.e164.${APEX}` });
    const refreshed = await resolver.refreshRootCopy();
    expect(refreshed.serial).toBeGreaterThan(first.serial ?? 0);
    expect(refreshed.transfersOk).toBe(first.transfersOk + 1);
    expect(refreshed.delegations).toBe((first.delegations ?? 0) + 1);
    const before = net.root.queries();
    const answer = await resolver.resolve(`9.e164.${APEX}`, 'SOA');
    expect(answer.status).toBe('secure');
    expect(added.queries()).toBeGreaterThan(0);
    expect(net.root.queries()).toBe(before);
  });

  it('refreshes on its own at refreshSeconds', async () => {
    const resolver = resolverWith({ rootCopy: { refreshSeconds: 1 } });
    const first = await resolver.refreshRootCopy();
    await net.addServer({ zone: `8.e164.${APEX}` });
    await vi.waitFor(
      () => expect(resolver.stats().rootCopy.serial).toBeGreaterThan(first.serial ?? 0),
      { timeout: 5000, interval: 100 },
    );
  });

  it('drops a copy whose signatures expired, and asks the root again', async () => {
    const clock = { now: Date.now() / 1000 };
    const resolver = resolverWith({}, clock);
    const status = await resolver.refreshRootCopy();
    expect(status.state).toBe('valid');
    clock.now = (status.expiresAt ?? 0) + 1;
    expect(resolver.stats().rootCopy.state).toBe('empty');
    resolver.flushCache();
    const before = net.root.queries();
    await resolver.resolve(`4.4.e164.${APEX}`, 'SOA');
    expect(net.root.queries()).toBeGreaterThan(before);
  });

  it('reports the copy in its metrics', async () => {
    const resolver = resolverWith();
    const status = await resolver.refreshRootCopy();
    const text = await createResolverMetrics(resolver).registry.registry.metrics();
    expect(text).toContain('resolver_root_copy_valid 1');
    expect(text).toContain(`resolver_root_copy_serial ${status.serial}`);
    expect(text).toContain('resolver_root_copy_transfers_total{outcome="ok"} 1');
    expect(text).toMatch(/resolver_root_copy_age_seconds \d/);
  });
});

describe('a hostile or broken transfer', () => {
  const glue = `ns1.${PHONE_ZONE}`;

  it('is rejected when a glue address changed: the ZONEMD no longer matches', async () => {
    const zone = rootZone().map((rr) =>
      rr.type === 'A' && rr.name === glue ? record(rr.name, 'A', '192.0.2.66', rr.ttl) : rr,
    );
    expect(await checkRootCopy(zone, checkInit(), Date.now() / 1000)).toMatchObject({
      kind: 'rejected',
      reason: 'zonemd-digest-mismatch',
    });
  });

  it('is rejected when a delegation was added', async () => {
    const zone = [
      ...rootZone(),
      record(`3.3.e164.${APEX}`, 'NS', `ns1.3.3.e164.${APEX}`, 3600),
      record(`ns1.3.3.e164.${APEX}`, 'A', '192.0.2.33', 3600),
    ];
    expect(await checkRootCopy(zone, checkInit(), Date.now() / 1000)).toMatchObject({
      reason: 'zonemd-digest-mismatch',
    });
  });

  it('is rejected for a bad RRSIG, before its digest is even computed', async () => {
    const zone = rootZone().map((rr) => {
      if (rr.type !== 'RRSIG' || rr.data.typeCovered !== 'DS') return rr;
      const signature = Uint8Array.from(rr.data.signature);
      signature[0] = (signature[0] ?? 0) ^ 1;
      return { ...rr, data: { ...rr.data, signature } } as RecordOf<'RRSIG'>;
    });
    expect(await checkRootCopy(zone, checkInit(), Date.now() / 1000)).toMatchObject({
      reason: 'bogus-signature',
    });
  });

  it('is rejected when its ZONEMD is unsigned, or missing', async () => {
    const unsigned = rootZone().filter(
      (rr) => !(rr.type === 'RRSIG' && rr.data.typeCovered === 'ZONEMD'),
    );
    expect(await checkRootCopy(unsigned, checkInit(), Date.now() / 1000)).toMatchObject({
      reason: 'missing-signature',
    });
    const key = net.root.store.zoneKey(APEX);
    if (key === undefined) throw new Error('no root key');
    const none = rootZone().filter(
      (rr) => rr.type !== 'ZONEMD' && !(rr.type === 'RRSIG' && rr.data.typeCovered === 'ZONEMD'),
    );
    expect(await checkRootCopy(none, checkInit(), Date.now() / 1000)).toMatchObject({
      reason: 'zonemd-no-zonemd',
    });
  });

  it('is rejected when its DNSKEY is not the trust anchor', async () => {
    const other = createZoneKey(APEX, { seed: new Uint8Array(32).fill(0x66) });
    const now = Math.floor(Date.now() / 1000);
    const validity = { inception: now - 60, expiration: now + 3600 };
    const zone = rootZone().flatMap((rr): ResourceRecord[] => {
      if (rr.type === 'RRSIG') return [];
      return [rr.type === 'DNSKEY' ? { ...rr, data: other.dnskey } : rr];
    });
    // Signed throughout by the other key: every signature is good, only the key is wrong.
    const sets = new Map<string, ResourceRecord[]>();
    for (const rr of zone)
      sets.set(`${rr.name}|${rr.type}`, [...(sets.get(`${rr.name}|${rr.type}`) ?? []), rr]);
    const resigned = [
      ...zone,
      ...[...sets.values()].map((rrset) => signRRset(rrset, other, validity)),
    ];
    expect(await checkRootCopy(resigned, checkInit(), now)).toMatchObject({
      reason: 'no-ds-match',
    });
    expect(computeDs(APEX, other.dnskey)).not.toEqual(checkInit().ds[0]);
  });

  it('leaves the resolver without a copy, asking the root, and tries the next server', async () => {
    const tampered = await fakeRoot(() =>
      rootZone().map((rr) =>
        rr.type === 'A' && rr.name === glue ? record(rr.name, 'A', '192.0.2.66', rr.ttl) : rr,
      ),
    );
    const resolver = resolverWith({ rootServers: hints(tampered) });
    const status = await resolver.refreshRootCopy();
    expect(status).toMatchObject({ state: 'empty', transfersOk: 0, transfersFailed: 1 });
    const before = net.root.queries();
    expect((await resolver.discover(CSIS.found)).status).toBe('found');
    expect(net.root.queries()).toBeGreaterThan(before);

    const both = resolverWith({ rootServers: [...hints(tampered), ...net.rootCopyServers] });
    expect(await both.refreshRootCopy()).toMatchObject({
      state: 'valid',
      transfersOk: 1,
      transfersFailed: 1,
    });
  });

  it(`is rejected past ${ROOT_COPY_VERIFICATIONS_PER_RRSET} verifications per signed RRset (KeyTrap)`, async () => {
    // Two signatures that fail before the good one, on every RRset: three verifications each.
    const zone = rootZone().flatMap((rr): ResourceRecord[] => {
      if (rr.type !== 'RRSIG') return [rr];
      const bad = (byte: number): RecordOf<'RRSIG'> => {
        const signature = Uint8Array.from(rr.data.signature);
        signature[1] = (signature[1] ?? 0) ^ byte;
        return { ...rr, data: { ...rr.data, signature } };
      };
      return [bad(1), bad(2), rr];
    });
    expect(await checkRootCopy(zone, checkInit(), Date.now() / 1000)).toMatchObject({
      reason: 'limit-verifications',
    });
    // One bad signature per RRset still fits the budget: every RRset verifies, and only the
    // ZONEMD, over a zone with records added, says no.
    const once = rootZone().flatMap((rr): ResourceRecord[] => {
      if (rr.type !== 'RRSIG') return [rr];
      const signature = Uint8Array.from(rr.data.signature);
      signature[1] = (signature[1] ?? 0) ^ 1;
      return [{ ...rr, data: { ...rr.data, signature } }, rr];
    });
    expect(await checkRootCopy(once, checkInit(), Date.now() / 1000)).toMatchObject({
      reason: 'zonemd-digest-mismatch',
    });
  });

  it('is cut off when the server drip-feeds it', async () => {
    const port = await fakeRoot(rootZone, 'drip');
    const resolver = resolverWith({
      rootServers: hints(port),
      rootCopy: { transferTimeoutMs: 500 },
    });
    const started = Date.now();
    expect(await resolver.refreshRootCopy()).toMatchObject({ state: 'empty', transfersFailed: 1 });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('is cut off at the record and octet bounds when the server sends without end', async () => {
    const port = await fakeRoot(rootZone, 'endless');
    const byRecords = resolverWith({ rootServers: hints(port), rootCopy: { maxRecords: 1000 } });
    expect(await byRecords.refreshRootCopy()).toMatchObject({ state: 'empty', transfersFailed: 1 });
    const byOctets = resolverWith({ rootServers: hints(port), rootCopy: { maxOctets: 100_000 } });
    expect(await byOctets.refreshRootCopy()).toMatchObject({ state: 'empty', transfersFailed: 1 });
  });
});

describe('the refresh schedule', () => {
  const soa = (refresh: number, retry: number) =>
    record(
      APEX,
      'SOA',
      { mname: 'a', rname: 'b', serial: 1, refresh, retry, expire: 1, minimum: 1 },
      60,
    );
  const now = 1_000_000;

  it.each([
    [
      'the SOA refresh',
      { soa: soa(3600, 600), expiresAt: now + 86_400 },
      true,
      undefined,
      now + 3600,
    ],
    [
      'refreshSeconds over the SOA',
      { soa: soa(3600, 600), expiresAt: now + 86_400 },
      true,
      5,
      now + 5,
    ],
    [
      'the margin before the earliest expiry',
      { soa: soa(86_400, 600), expiresAt: now + 10_000 },
      true,
      undefined,
      now + 10_000 - ROOT_COPY_EXPIRY_MARGIN_SECONDS,
    ],
    [
      'no sooner than a retry near expiry',
      { soa: soa(3600, 600), expiresAt: now + 3000 },
      true,
      undefined,
      now + 600,
    ],
    [
      'the SOA retry after a failure',
      { soa: soa(3600, 600), expiresAt: now + 86_400 },
      false,
      undefined,
      now + 600,
    ],
    [
      'the least retry without a copy',
      undefined,
      false,
      undefined,
      now + ROOT_COPY_MIN_RETRY_SECONDS,
    ],
  ] as const)('waits for %s', (_what, copy, ok, refreshSeconds, expected) => {
    expect(nextRefreshAt(copy, now, ok, refreshSeconds)).toBe(expected);
  });

  it('compares serials as RFC 1982 does', () => {
    expect(serialGreater(2, 1)).toBe(true);
    expect(serialGreater(1, 1)).toBe(false);
    expect(serialGreater(1, 2)).toBe(false);
    expect(serialGreater(0, 0xffffffff)).toBe(true);
    expect(serialGreater(0xffffffff, 0)).toBe(false);
  });
});
