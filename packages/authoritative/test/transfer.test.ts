import { Buffer } from 'node:buffer';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildQuery,
  createTsigKey,
  decodeMessage,
  encodeMessage,
  encodeRecord,
  formatTsigKeyFile,
  parseConfig,
  queryTcp,
  queryUdp,
  signMessage,
  splitTsig,
  systemClock,
  transferZone,
  transferZoneChanges,
  ZoneTransferError,
  type Message,
  type QueryContext,
  type ResourceRecord,
  type TsigKey,
  type ZoneDelta,
} from '@mimi-discovery/common';
import {
  createMemoryStore,
  createTransferHandler,
  dpConfigSchema,
  startDp,
  MAX_TRANSFERS,
  type RunningDp,
} from '../src/index.js';
import { journalingStore, type JournalingStore } from '../../../test/helpers/journal-double.js';

// Outgoing transfers of a DP to its secondaries (`transfer.ts`, `transfer-setup.ts`): a real DP
// (memory store under a double of the store's journal and NSEC3 chain) asked by the transfer
// client of common, signed with TSIG, and by hostile clients.

const ZONE = 'xfr.example';
const SECRET = Buffer.alloc(32, 0x42);
const KEY = createTsigKey('secondary.xfr.example', 'hmac-sha256', SECRET);
const OTHER = createTsigKey('other.xfr.example', 'hmac-sha512', Buffer.alloc(64, 0x17));
const dir = mkdtempSync(join(tmpdir(), 'mimi-transfer-'));
const text = (value: string): Uint8Array => new TextEncoder().encode(value);

let store: JournalingStore;
let dp: RunningDp;
let port: number;
let udpPort: number;

function txt(name: string, value: string): ResourceRecord {
  return { name, type: 'TXT', class: 'IN', ttl: 300, data: [text(value)] };
}

async function publish(label: string, value: string): Promise<number> {
  const name = `${label}.${ZONE}`;
  const { serial } = await store.apply(ZONE, [
    { op: 'put', name, type: 'TXT', records: [txt(name, value)] },
  ]);
  return serial;
}

async function remove(label: string): Promise<number> {
  const { serial } = await store.apply(ZONE, [
    { op: 'delete', name: `${label}.${ZONE}`, type: 'TXT' },
  ]);
  return serial;
}

function serial(): number {
  return store.zoneInfo(ZONE)?.serial ?? 0;
}

/** The records as a multiset of wire forms, for comparing zones. */
function wireSet(records: readonly ResourceRecord[]): string[] {
  return records
    .map((rr) => Buffer.from(encodeRecord(rr, { canonical: true })).toString('hex'))
    .sort();
}

/** `zone` after `deltas` (RFC 1995 §4: deletions, then additions, SOAs included). */
function applyDeltas(zone: readonly ResourceRecord[], deltas: readonly ZoneDelta[]): string[] {
  const records = wireSet(zone);
  for (const delta of deltas) {
    for (const id of wireSet(delta.deleted)) {
      const at = records.indexOf(id);
      if (at < 0) throw new Error(`a deletion of a record the zone does not hold: ${id}`);
      records.splice(at, 1);
    }
    records.push(...wireSet(delta.added));
  }
  return records.sort();
}

const address = (): { host: string; port: number } => ({ host: '127.0.0.1', port });

/** Sends `wire` on a new TCP connection; the messages received until it closes or `count`. */
function exchangeTcp(wire: Uint8Array, count = 1): Promise<Uint8Array[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let pending = Buffer.alloc(0);
    const out: Uint8Array[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(out);
    }, 3000);
    socket.on('connect', () => {
      const frame = Buffer.alloc(2 + wire.length);
      frame.writeUInt16BE(wire.length, 0);
      frame.set(wire, 2);
      socket.write(frame);
    });
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const length = pending.readUInt16BE(0);
        out.push(new Uint8Array(pending.subarray(2, 2 + length)));
        pending = pending.subarray(2 + length);
        if (out.length >= count) {
          clearTimeout(timer);
          socket.destroy();
          resolve(out);
          return;
        }
      }
    });
    socket.on('error', reject);
  });
}

/** The decoded message of a signed answer (its TSIG taken off). */
function unsigned(wire: Uint8Array | undefined): Message {
  if (wire === undefined) throw new Error('no answer');
  const split = splitTsig(wire);
  return decodeMessage(split.kind === 'signed' ? split.unsigned : wire);
}

beforeAll(async () => {
  store = journalingStore(createMemoryStore(), { now: systemClock });
  await store.addZone({
    origin: ZONE,
    nameservers: [`ns1.${ZONE}`],
    mname: `ns1.${ZONE}`,
    rname: `hostmaster.${ZONE}`,
  });
  for (let i = 0; i < 20; i++) await publish(`host${i}.sub`, `value ${i}`);
  const keyFile = join(dir, 'other.key');
  writeFileSync(keyFile, formatTsigKeyFile(OTHER), { mode: 0o600 });
  const config = parseConfig(dpConfigSchema, {
    role: 'dp',
    dataDir: dir,
    listen: { udp: 0, tcp: 0, admin: 0 },
    log: { level: 'error' },
    transfer: {
      keys: [
        { name: KEY.name, secret: SECRET.toString('base64') },
        { name: OTHER.name, algorithm: 'hmac-sha512', secretFile: keyFile },
      ],
    },
  });
  dp = await startDp(config, { store });
  port = dp.dns?.tcp?.port ?? 0;
  udpPort = dp.dns?.udp?.port ?? 0;
});

afterAll(async () => {
  await dp?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('AXFR of a DP zone (RFC 5936)', () => {
  it('sends the zone as stored, with the NSEC3 chain the DP turned on at start, to a signed request', async () => {
    const result = await transferZone(address(), ZONE, { tsig: KEY });
    expect(wireSet(result.records)).toEqual(wireSet(store.readZone(ZONE)));
    expect(result.records[0]?.type).toBe('SOA');
    expect(result.records.some((rr) => rr.type === 'NSEC3PARAM')).toBe(true);
    expect(result.records.filter((rr) => rr.type === 'NSEC3').length).toBeGreaterThan(20);
    // A key read from its file (hmac-sha512) works as well.
    const other = await transferZone(address(), ZONE, { tsig: OTHER });
    expect(other.soa.data.serial).toBe(result.soa.data.serial);
  });

  it('cuts a large zone into messages that each fit 64 KiB with their TSIG record', async () => {
    const names = Array.from({ length: 700 }, (_, i) => `bulk${i}.${ZONE}`);
    await store.apply(
      ZONE,
      names.map((name) => ({
        op: 'put' as const,
        name,
        type: 'TXT' as const,
        records: [txt(name, 'x'.repeat(200))],
      })),
    );
    for (const key of [KEY, OTHER]) {
      const result = await transferZone(address(), ZONE, { tsig: key });
      expect(result.messages).toBeGreaterThan(2);
      expect(wireSet(result.records)).toEqual(wireSet(store.readZone(ZONE)));
    }
    await store.apply(
      ZONE,
      names.map((name) => ({ op: 'delete' as const, name, type: 'TXT' as const })),
    );
  });

  it('hands the records to a client that takes them as they come, keeping none', async () => {
    const taken: ResourceRecord[] = [];
    const result = await transferZone(address(), ZONE, {
      tsig: KEY,
      onRecord: (rr) => taken.push(rr),
    });
    expect(result.records).toEqual([]);
    expect(taken[0]?.type).toBe('SOA');
    expect(wireSet(taken)).toEqual(wireSet(store.readZone(ZONE)));
  });

  it('streams the zone: the transfer never reads it whole (readZone)', async () => {
    const before = store.readZoneCalls;
    await transferZone(address(), ZONE, { tsig: KEY });
    expect(store.readZoneCalls).toBe(before);
  });

  it('is refused unsigned (REFUSED), with an unknown key or secret (NOTAUTH)', async () => {
    await expect(transferZone(address(), ZONE)).rejects.toMatchObject({
      code: 'ERR_TRANSFER_REFUSED',
      message: expect.stringContaining('REFUSED') as unknown,
    });
    const stranger = createTsigKey('stranger.example', 'hmac-sha256', SECRET);
    await expect(transferZone(address(), ZONE, { tsig: stranger })).rejects.toMatchObject({
      code: 'ERR_TRANSFER_REFUSED',
      message: expect.stringMatching(/NOTAUTH.*BADKEY/) as unknown,
    });
    const wrong = createTsigKey(KEY.name, 'hmac-sha256', Buffer.alloc(32, 1));
    await expect(transferZone(address(), ZONE, { tsig: wrong })).rejects.toMatchObject({
      code: 'ERR_TRANSFER_REFUSED',
      message: expect.stringMatching(/NOTAUTH.*BADSIG/) as unknown,
    });
  });

  it('refuses a request signed outside the time window (a replay of an old one): BADTIME', async () => {
    const late = (): number => systemClock() - 400;
    await expect(transferZone(address(), ZONE, { tsig: KEY, now: late })).rejects.toMatchObject({
      code: 'ERR_TRANSFER_REFUSED',
      message: expect.stringMatching(/NOTAUTH.*BADTIME/) as unknown,
    });
  });

  it('refuses a request replayed within the window: the same MAC twice', async () => {
    const query = buildQuery(ZONE, 'AXFR', { id: 0x4242 });
    const signed = signMessage(encodeMessage(query), KEY, { now: systemClock() });
    const first = await exchangeTcp(signed.wire);
    expect(unsigned(first[0]).rcode).toBe('NOERROR');
    const again = await exchangeTcp(signed.wire);
    expect(unsigned(again[0]).rcode).toBe('REFUSED');
  });

  it('refuses another zone, or a name below the apex', async () => {
    await expect(transferZone(address(), `host1.sub.${ZONE}`, { tsig: KEY })).rejects.toMatchObject(
      { code: 'ERR_TRANSFER_REFUSED' },
    );
    await expect(transferZone(address(), 'example.org', { tsig: KEY })).rejects.toBeInstanceOf(
      ZoneTransferError,
    );
  });
});

describe('IXFR of a DP zone (RFC 1995)', () => {
  it('sends a publish and a removal as changes that turn the old zone into the new', async () => {
    const before = await transferZone(address(), ZONE, { tsig: KEY });
    const from = before.soa.data.serial;
    await publish('new', 'published');
    await remove('host3.sub');
    const result = await transferZoneChanges(address(), ZONE, from, { tsig: KEY });
    expect(result.kind).toBe('incremental');
    if (result.kind !== 'incremental') return;
    expect(result.deltas.map((d) => [d.from, d.to])).toEqual([
      [from, from + 1],
      [from + 1, from + 2],
    ]);
    const after = await transferZone(address(), ZONE, { tsig: KEY });
    expect(applyDeltas(before.records, result.deltas)).toEqual(wireSet(after.records));
    // Each change carries its NSEC3 records: the new name's chain entries came and went.
    expect(result.deltas[0]?.added.some((rr) => rr.type === 'NSEC3')).toBe(true);
    expect(result.deltas[1]?.deleted.some((rr) => rr.type === 'NSEC3')).toBe(true);
  });

  it('answers the SOA alone to a client as new as the zone, or newer (a huge serial)', async () => {
    const now = serial();
    for (const from of [now, now + 1, (now + 2 ** 30) >>> 0]) {
      const result = await transferZoneChanges(address(), ZONE, from, { tsig: KEY });
      expect(result.kind).toBe('current');
      expect(result.soa.data.serial).toBe(now);
    }
  });

  it('sends the whole zone for a serial the journal does not hold (or cannot compare)', async () => {
    const now = serial();
    for (const from of [now - 1000, (now + 2 ** 31) >>> 0, 0]) {
      const result = await transferZoneChanges(address(), ZONE, from, { tsig: KEY });
      expect(result.kind).toBe('full');
      if (result.kind === 'full') {
        expect(wireSet(result.records)).toEqual(wireSet(store.readZone(ZONE)));
      }
    }
  });

  it('answers FORMERR to an IXFR without the SOA of the client in its authority section', async () => {
    const query = buildQuery(ZONE, 'IXFR', { id: 7 });
    const signed = signMessage(encodeMessage(query), KEY, { now: systemClock() });
    const [answer] = await exchangeTcp(signed.wire);
    expect(unsigned(answer).rcode).toBe('FORMERR');
  });

  it('answers IXFR over UDP with the SOA alone, signed (RFC 1995 §2)', async () => {
    const query = buildQuery(ZONE, 'IXFR', { id: 8 });
    query.authorities = [
      {
        ...store.readRRset(ZONE, ZONE, 'SOA')[0],
        data: { ...soaData(), serial: 1 },
      } as ResourceRecord,
    ];
    const signed = signMessage(encodeMessage(query), KEY, { now: systemClock() });
    const answer = await new Promise<Uint8Array>((resolve, reject) => {
      const socket = createSocket('udp4');
      socket.on('message', (datagram) => {
        socket.close();
        resolve(new Uint8Array(datagram));
      });
      socket.on('error', reject);
      socket.send(signed.wire, udpPort, '127.0.0.1');
    });
    const message = unsigned(answer);
    expect(message.rcode).toBe('NOERROR');
    expect(message.answers.map((rr) => rr.type)).toEqual(['SOA']);
    expect(splitTsig(answer).kind).toBe('signed');
    // Unsigned, refused as over TCP.
    const bare = await queryUdp({ host: '127.0.0.1', port: udpPort }, query, {
      tcpFallback: false,
    });
    expect(bare.rcode).toBe('REFUSED');
  });

  it('counts each kind of transfer in the metrics', async () => {
    const metrics = await (await fetch(`${dp.admin?.url ?? ''}/metrics`)).text();
    for (const type of ['axfr', 'ixfr', 'ixfr-full', 'ixfr-current']) {
      expect(metrics).toMatch(
        new RegExp(`authoritative_transfers_total\\{type="${type}",outcome="ok"\\} [1-9]`),
      );
    }
    expect(metrics).toMatch(/authoritative_tsig_refused_total\{error="BADSIG"\} [1-9]/);
    expect(metrics).toMatch(/authoritative_tsig_refused_total\{error="BADTIME"\} [1-9]/);
  });
});

describe('what a DP answers besides transfers', () => {
  it('answers a NOTIFY sent to it NOTIMP: it is a primary', async () => {
    const notify = buildQuery(ZONE, 'SOA', { id: 9 });
    notify.flags.opcode = 4;
    const answer = await queryTcp(address(), notify);
    expect(answer.rcode).toBe('NOTIMP');
  });

  it('answers a signed SOA query with a signed answer (what a secondary asks first)', async () => {
    const query = encodeMessage(buildQuery(ZONE, 'SOA', { id: 10 }));
    const signed = signMessage(query, KEY, { now: systemClock() });
    const [answer] = await exchangeTcp(signed.wire);
    expect(splitTsig(answer ?? new Uint8Array()).kind).toBe('signed');
    expect(unsigned(answer).answers[0]?.type).toBe('SOA');
  });
});

describe('transfers at once (the handler)', () => {
  // Each request its own MAC: the handler refuses a MAC it has seen (a replay), so random bytes
  // would now and then make two requests one.
  let macs = 0;
  const nextMac = (): Uint8Array => {
    const mac = new Uint8Array(32);
    new DataView(mac.buffer).setUint32(0, ++macs);
    return mac;
  };
  const context = (remoteAddress: string, key?: TsigKey): QueryContext => ({
    transport: 'tcp',
    remoteAddress,
    ...(key === undefined ? {} : { tsig: { key, mac: nextMac() } }),
  });

  it(`holds ${MAX_TRANSFERS} at once in all by default, and a configured number per server`, async () => {
    const handler = createTransferHandler(store, {
      zones: [ZONE],
      keys: [KEY.name],
      transfersPerClient: 100,
      maxTransfers: 3,
    });
    const open: AsyncIterator<Message>[] = [];
    for (let i = 0; i < 3; i++) {
      const response = handler(buildQuery(ZONE, 'AXFR'), context(`192.0.2.${i}`, KEY));
      if (!(Symbol.asyncIterator in response)) throw new Error('refused');
      const iterator = response[Symbol.asyncIterator]();
      await iterator.next();
      open.push(iterator);
    }
    const fourth = handler(buildQuery(ZONE, 'AXFR'), context('192.0.2.9', KEY));
    expect(Symbol.asyncIterator in fourth ? 'stream' : fourth.rcode).toBe('REFUSED');
    await open[0]?.return?.();
    const fifth = handler(buildQuery(ZONE, 'AXFR'), context('192.0.2.9', KEY));
    expect(Symbol.asyncIterator in fifth).toBe(true);
    if (Symbol.asyncIterator in fifth) await fifth[Symbol.asyncIterator]().return?.();
    for (const iterator of open.slice(1)) await iterator.return?.();
  });

  it('holds one per client by default, IXFR and AXFR alike', async () => {
    const handler = createTransferHandler(store, { zones: [ZONE], keys: [KEY.name] });
    const first = handler(buildQuery(ZONE, 'AXFR'), context('2001:db8::1', KEY));
    if (!(Symbol.asyncIterator in first)) throw new Error('refused');
    const iterator = first[Symbol.asyncIterator]();
    await iterator.next();
    const ixfr = buildQuery(ZONE, 'IXFR');
    ixfr.authorities = [{ ...store.readRRset(ZONE, ZONE, 'SOA')[0] } as ResourceRecord];
    const second = handler(ixfr, context('2001:db8::2', KEY));
    expect(Symbol.asyncIterator in second ? 'stream' : second.rcode).toBe('REFUSED');
    await iterator.return?.();
    const third = handler(ixfr, context('2001:db8::3', KEY));
    expect(Symbol.asyncIterator in third).toBe(true);
  });
});

describe('the transfer config of a DP', () => {
  const parse = (transfer: unknown): unknown =>
    parseConfig(dpConfigSchema, { role: 'dp', dataDir: dir, transfer });

  it.each([
    [{}, /transfer\.keys: a DP offers its zones by transfer only to secondaries with a TSIG key/],
    [
      { keys: [{ name: 'k' }] },
      /transfer\.keys\[0\]\.secret: give exactly one of secret and secretFile/,
    ],
    [
      { keys: [{ name: 'k', secret: 'c2hvcnQ=' }] },
      /transfer\.keys\[0\]\.secret: the secret of key k has 5 octets/,
    ],
    [
      { keys: [{ name: 'k', secret: '%%%' }] },
      /transfer\.keys\[0\]\.secret: the secret is not base64/,
    ],
    [
      { keys: [{ name: 'k', algorithm: 'hmac-md5', secret: SECRET.toString('base64') }] },
      /transfer\.keys\[0\]\.algorithm/,
    ],
    [
      {
        keys: [
          { name: 'k', secret: SECRET.toString('base64') },
          { name: 'K.', secret: SECRET.toString('base64') },
        ],
      },
      /transfer\.keys\[1\]\.name: key k is listed twice/,
    ],
    [
      {
        keys: [{ name: 'k', secret: SECRET.toString('base64') }],
        notify: [{ address: '192.0.2.1', key: 'j' }],
      },
      /transfer\.notify\[0\]\.key: no key j in transfer\.keys/,
    ],
    [
      { keys: [{ name: 'k', secret: SECRET.toString('base64') }], notify: [{ address: 'ns1' }] },
      /transfer\.notify\[0\]\.address: expected an IP address/,
    ],
  ])('refuses %j', (transfer, message) => {
    expect(() => parse(transfer)).toThrow(message);
  });

  it('fills in the defaults', () => {
    const config = parse({ keys: [{ name: 'k', secret: SECRET.toString('base64') }] }) as {
      transfer: Record<string, unknown>;
    };
    expect(config.transfer).toMatchObject({
      transfersPerClient: 1,
      maxTransfers: MAX_TRANSFERS,
      notify: [],
      notifyRetries: 5,
      notifyTimeoutMs: 2000,
      notifyCheckIntervalMs: 200,
    });
  });

  it('refuses to start with a key file that holds another key', async () => {
    const file = join(dir, 'mismatch.key');
    writeFileSync(file, formatTsigKeyFile(KEY), { mode: 0o600 });
    const config = parseConfig(dpConfigSchema, {
      role: 'dp',
      dataDir: dir,
      listen: { udp: 0, tcp: 0 },
      log: { level: 'error' },
      transfer: { keys: [{ name: 'another.example', secretFile: file }] },
    });
    const other = createMemoryStore();
    await expect(startDp(config, { store: other })).rejects.toThrow(
      /transfer\.keys\[0\]\.secretFile: the file holds key secondary\.xfr\.example/,
    );
  });
});

function soaData(): Extract<ResourceRecord, { type: 'SOA' }>['data'] {
  const soa = store.readRRset(ZONE, ZONE, 'SOA')[0];
  if (soa?.type !== 'SOA') throw new Error('no SOA');
  return soa.data;
}
