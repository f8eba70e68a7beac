import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildQuery,
  computeDs,
  createZoneKey,
  verifyZonemd,
  type Message,
  type QueryContext,
  type RecordOf,
  type ResourceRecord,
} from '@mimi-discovery/common';
import {
  createMemoryStore,
  createTransferHandler,
  delegate,
  dropZoneDigest,
  keepZoneDigest,
  openLmdbStore,
  TRANSFERS_PER_CLIENT,
  isAddressRange,
  addressRanges,
  type DiscoveryStore,
} from '../src/index.js';
import { PROVER_SEED, fakeClock, zoneInit } from './store-battery.js';

const APEX = 'mimi.arpa';
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function rootStore(kind: 'memory' | 'lmdb'): Promise<DiscoveryStore> {
  const clock = fakeClock();
  let store: DiscoveryStore;
  if (kind === 'memory') {
    store = createMemoryStore({ proverSeed: PROVER_SEED, now: clock.now });
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'mimi-zone-digest-'));
    dirs.push(dir);
    store = await openLmdbStore({ dataDir: dir, proverSeed: PROVER_SEED, now: clock.now });
  }
  await store.addZone(zoneInit(APEX));
  return store;
}

async function delegateRange(
  store: DiscoveryStore,
  zone: string,
  address = '192.0.2.1',
): Promise<void> {
  const key = createZoneKey(zone, { seed: new Uint8Array(32).fill(9) });
  await delegate(store, APEX, {
    zone,
    nameservers: [{ name: `ns1.${zone}`, addresses: [address] }],
    ds: [computeDs(zone, key.dnskey)],
  });
}

const serialOf = (records: readonly ResourceRecord[]): number =>
  (records.find((rr) => rr.type === 'SOA') as RecordOf<'SOA'>).data.serial;

describe.each(['memory', 'lmdb'] as const)('a zone that keeps its ZONEMD (%s store)', (kind) => {
  it('computes the ZONEMD and the NSEC3 chain once turned on, and at every write after', async () => {
    const store = await rootStore(kind);
    try {
      expect(verifyZonemd(APEX, store.readZone(APEX))).toMatchObject({ reason: 'no-zonemd' });
      expect(await keepZoneDigest(store, APEX)).toBe(true);
      expect(await keepZoneDigest(store, APEX)).toBe(false);
      let zone = store.readZone(APEX);
      expect(verifyZonemd(APEX, zone)).toMatchObject({ kind: 'verified' });
      expect(zone.some((rr) => rr.type === 'NSEC3PARAM')).toBe(true);
      const serial = serialOf(zone);

      await delegateRange(store, `4.4.e164.${APEX}`);
      zone = store.readZone(APEX);
      const verified = verifyZonemd(APEX, zone);
      expect(verified.kind).toBe('verified');
      expect(serialOf(zone)).toBe(serial + 1);
      if (verified.kind === 'verified') expect(verified.zonemd.data.serial).toBe(serial + 1);
      // The chain covers the new delegation and its empty non-terminal (e164).
      expect(zone.filter((rr) => rr.type === 'NSEC3')).toHaveLength(4);
      expect(zone.some((rr) => rr.type === 'RRSIG' && rr.data.typeCovered === 'ZONEMD')).toBe(true);

      // Re-signing bumps the serial: the ZONEMD follows.
      expect(await store.resign(Number.MAX_SAFE_INTEGER)).toBeGreaterThan(0);
      zone = store.readZone(APEX);
      expect(verifyZonemd(APEX, zone).kind).toBe('verified');
      expect(serialOf(zone)).toBe(serial + 2);

      // Turned off: the ZONEMD and the chain go.
      expect(await dropZoneDigest(store, APEX)).toBe(true);
      zone = store.readZone(APEX);
      expect(
        zone.some((rr) => rr.type === 'ZONEMD' || rr.type === 'NSEC3' || rr.type === 'NSEC3PARAM'),
      ).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('keeps the chain exact when a delegation goes away', async () => {
    const store = await rootStore(kind);
    try {
      await keepZoneDigest(store, APEX);
      await delegateRange(store, `4.4.e164.${APEX}`);
      await delegateRange(store, `example.com.email.${APEX}`);
      const before = store.readZone(APEX).filter((rr) => rr.type === 'NSEC3').length;
      await store.apply(APEX, [
        { op: 'delete', name: `example.com.email.${APEX}`, type: 'DS' },
        { op: 'delete', name: `example.com.email.${APEX}`, type: 'NS' },
        { op: 'delete', name: `ns1.example.com.email.${APEX}`, type: 'A' },
      ]);
      const zone = store.readZone(APEX);
      // example.com.email, com.email and email left the chain.
      expect(zone.filter((rr) => rr.type === 'NSEC3')).toHaveLength(before - 3);
      expect(verifyZonemd(APEX, zone).kind).toBe('verified');
    } finally {
      await store.close();
    }
  });
});

describe('a ZONEMD change', () => {
  it('is refused below the apex', async () => {
    const store = await rootStore('memory');
    await expect(
      store.apply(APEX, [
        {
          op: 'put',
          name: `x.${APEX}`,
          type: 'ZONEMD',
          records: [
            {
              name: `x.${APEX}`,
              type: 'ZONEMD',
              class: 'IN',
              ttl: 60,
              data: { serial: 1, scheme: 1, hashAlgorithm: 1, digest: new Uint8Array(48) },
            },
          ],
        },
      ]),
    ).rejects.toThrow(/ZONEMD belongs at the zone apex/);
  });
});

describe('the transfer handler (RFC 5936)', () => {
  const context = (remoteAddress: string): QueryContext => ({ transport: 'tcp', remoteAddress });
  const axfr = (name = APEX): Message => buildQuery(name, 'AXFR');

  async function drain(
    response: ReturnType<ReturnType<typeof createTransferHandler>>,
  ): Promise<Message[]> {
    if (!(Symbol.asyncIterator in response)) return [response];
    const out: Message[] = [];
    for await (const message of response) out.push(message);
    return out;
  }

  it('sends the zone SOA first and last, AA set, the question in the first message only', async () => {
    const store = await rootStore('memory');
    await keepZoneDigest(store, APEX);
    await delegateRange(store, `4.4.e164.${APEX}`);
    const messages = await drain(
      createTransferHandler(store, { zones: [APEX] })(axfr(), context('192.0.2.7')),
    );
    const records = messages.flatMap((m) => m.answers);
    expect(records[0]?.type).toBe('SOA');
    expect(records.at(-1)).toEqual(records[0]);
    expect(messages.every((m) => m.flags.aa && m.rcode === 'NOERROR')).toBe(true);
    expect(messages[0]?.questions).toHaveLength(1);
    expect(messages.slice(1).every((m) => m.questions.length === 0)).toBe(true);
    expect(verifyZonemd(APEX, records.slice(0, -1)).kind).toBe('verified');
  });

  it('cuts a large zone into messages that each fit 64 KiB', async () => {
    const store = await rootStore('memory');
    await keepZoneDigest(store, APEX);
    const changes = [];
    for (let i = 0; i < 300; i++) {
      const zone = `${i}.e164.${APEX}`;
      const key = createZoneKey(zone, { seed: new Uint8Array(32).fill(i % 200) });
      const ns = `ns-with-a-long-name-to-fill-messages-${i}.${zone}`;
      changes.push(
        {
          op: 'put' as const,
          name: zone,
          type: 'NS' as const,
          records: [{ name: zone, type: 'NS' as const, class: 'IN' as const, ttl: 3600, data: ns }],
        },
        {
          op: 'put' as const,
          name: zone,
          type: 'DS' as const,
          records: [
            {
              name: zone,
              type: 'DS' as const,
              class: 'IN' as const,
              ttl: 3600,
              data: computeDs(zone, key.dnskey),
            },
          ],
        },
        {
          op: 'put' as const,
          name: ns,
          type: 'A' as const,
          records: [
            { name: ns, type: 'A' as const, class: 'IN' as const, ttl: 3600, data: '192.0.2.1' },
          ],
        },
      );
    }
    await store.apply(APEX, changes);
    const messages = await drain(
      createTransferHandler(store, { zones: [APEX] })(axfr(), context('192.0.2.7')),
    );
    expect(messages.length).toBeGreaterThan(1);
    const { encodeMessage } = await import('@mimi-discovery/common');
    for (const message of messages)
      expect(encodeMessage(message).length).toBeLessThanOrEqual(65535);
    expect(verifyZonemd(APEX, messages.flatMap((m) => m.answers).slice(0, -1)).kind).toBe(
      'verified',
    );
  });

  it('refuses a zone it does not offer, a name that is not an apex, and a client out of range', async () => {
    const store = await rootStore('memory');
    await store.addZone(zoneInit(`4.4.e164.${APEX}`));
    const handler = createTransferHandler(store, {
      zones: [APEX],
      allow: ['192.0.2.0/24', '2001:db8::/32'],
    });
    const refused = async (query: Message, from: string): Promise<boolean> => {
      const [message] = await drain(handler(query, context(from)));
      return message?.rcode === 'REFUSED' && message.answers.length === 0;
    };
    expect(await refused(axfr(`4.4.e164.${APEX}`), '192.0.2.7')).toBe(true);
    expect(await refused(axfr(`ns1.${APEX}`), '192.0.2.7')).toBe(true);
    expect(await refused(axfr(), '198.51.100.7')).toBe(true);
    expect(await refused(axfr(), '::ffff:198.51.100.7')).toBe(true);
    expect(await refused(axfr(), '2001:db9::1')).toBe(true);
    expect(await refused(axfr(), '192.0.2.7')).toBe(false);
    expect(await refused(axfr(), '::ffff:192.0.2.7')).toBe(false);
    expect(await refused(axfr(), '2001:db8:1::1')).toBe(false);
    const nobody = createTransferHandler(store, { zones: [APEX], allow: [] });
    const [message] = await drain(nobody(axfr(), context('192.0.2.7')));
    expect(message?.rcode).toBe('REFUSED');
  });

  it(`runs at most ${TRANSFERS_PER_CLIENT} transfer at once per client (an IPv6 /64 is one client)`, async () => {
    const store = await rootStore('memory');
    const outcomes: string[] = [];
    const handler = createTransferHandler(
      store,
      { zones: [APEX] },
      { onTransfer: (o) => outcomes.push(o) },
    );
    const first = handler(axfr(), context('2001:db8::1'));
    if (!(Symbol.asyncIterator in first)) throw new Error('the first transfer was refused');
    const iterator = first[Symbol.asyncIterator]();
    await iterator.next();
    const [second] = await drain(handler(axfr(), context('2001:db8::2')));
    expect(second?.rcode).toBe('REFUSED');
    const [other] = await drain(handler(axfr(), context('192.0.2.9')));
    expect(other?.rcode).toBe('NOERROR');
    // Cut off midway: the client's slot is free again.
    await iterator.return?.();
    const [third] = await drain(handler(axfr(), context('2001:db8::3')));
    expect(third?.rcode).toBe('NOERROR');
    expect(outcomes).toEqual(['refused', 'ok', 'aborted', 'ok']);
  });

  it('reads address ranges as CIDR, and nothing else', () => {
    expect(
      ['192.0.2.0/24', '2001:db8::/32', '127.0.0.1', '::1/128', '0.0.0.0/0'].every(isAddressRange),
    ).toBe(true);
    expect(
      ['192.0.2.0/33', '192.0.2.0/', 'example.com', '10.0.0.0/8/8', '::1/129', '1.2.3.4/08'].some(
        isAddressRange,
      ),
    ).toBe(false);
    expect(() => addressRanges(['10.0.0.0/8', 'nope'])).toThrow(/"nope" is not an address range/);
  });
});
