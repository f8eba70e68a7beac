import { execFile } from 'node:child_process';
import { Buffer } from 'node:buffer';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createTsigKey,
  createTsigKeyring,
  decodeMessage,
  encodeMessage,
  respondError,
  signMessage,
  systemClock,
  verifyRequest,
  type Message,
  type Rcode,
} from '@mimi-discovery/common';
import {
  OPCODE_NOTIFY,
  createMemoryStore,
  openLmdbStore,
  startNotifySender,
  type DiscoveryStore,
  type NotifyOutcome,
  type NotifySender,
} from '../src/index.js';

// The NOTIFY sender (RFC 1996, `notify.ts`) against a secondary played by a UDP socket of the
// test: what it sends, retransmissions and their bound, bursts, TSIG, a change made by another
// process on the same store.

const ZONE = 'notify.example';
const KEY = createTsigKey('notify-key.example', 'hmac-sha256', Buffer.alloc(32, 0x21));
const text = (value: string): Uint8Array => new TextEncoder().encode(value);

/** A secondary: records each NOTIFY, and answers as `answer` says (undefined: silence). */
interface FakeSecondary {
  readonly port: number;
  readonly received: Message[];
  answer: (query: Message, raw: Uint8Array) => Uint8Array | undefined;
  close(): Promise<void>;
}

async function fakeSecondary(): Promise<FakeSecondary> {
  const socket: Socket = createSocket('udp4');
  const secondary: FakeSecondary = {
    port: 0,
    received: [],
    answer: (query) => encodeMessage(reply(query, 'NOERROR')),
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (datagram, from) => {
    const raw = new Uint8Array(datagram);
    const verified = verifyRequest(raw, createTsigKeyring([KEY]), systemClock());
    const query = decodeMessage(verified.kind === 'verified' ? verified.unsigned : raw);
    secondary.received.push(query);
    const out = secondary.answer(query, raw);
    if (out !== undefined) socket.send(out, from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return Object.assign(secondary, { port: socket.address().port });
}

function reply(query: Message, rcode: Rcode): Message {
  const response = respondError(query, rcode);
  response.flags.aa = true;
  return response;
}

async function zoneStore(store: DiscoveryStore = createMemoryStore()): Promise<DiscoveryStore> {
  if (store.zoneInfo(ZONE) === undefined) {
    await store.addZone({
      origin: ZONE,
      nameservers: [`ns1.${ZONE}`],
      mname: `ns1.${ZONE}`,
      rname: `hostmaster.${ZONE}`,
    });
  }
  return store;
}

async function publish(store: DiscoveryStore, label: string): Promise<number> {
  const name = `${label}.${ZONE}`;
  const result = await store.apply(ZONE, [
    {
      op: 'put',
      name,
      type: 'TXT',
      records: [{ name, type: 'TXT', class: 'IN', ttl: 60, data: [text(label)] }],
    },
  ]);
  return result.serial;
}

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function start(
  store: DiscoveryStore,
  secondary: FakeSecondary,
  options: { retries?: number; timeoutMs?: number; key?: boolean; checkIntervalMs?: number } = {},
): Promise<{ sender: NotifySender; outcomes: NotifyOutcome[]; sent: () => number }> {
  const outcomes: NotifyOutcome[] = [];
  let sent = 0;
  const sender = await startNotifySender(
    store,
    {
      zones: [ZONE],
      targets: [
        {
          address: '127.0.0.1',
          port: secondary.port,
          ...(options.key === true ? { key: KEY } : {}),
        },
      ],
      retries: options.retries ?? 3,
      timeoutMs: options.timeoutMs ?? 40,
      checkIntervalMs: options.checkIntervalMs ?? 20,
    },
    { onOutcome: (o) => outcomes.push(o), onSent: () => sent++ },
  );
  cleanup.push(() => sender.close());
  return { sender, outcomes, sent: () => sent };
}

describe('NOTIFY to a secondary (RFC 1996)', () => {
  it('announces the current serial at start, as opcode NOTIFY, AA, the question and the SOA', async () => {
    const store = await zoneStore();
    const secondary = await fakeSecondary();
    cleanup.push(() => secondary.close());
    const { outcomes } = await start(store, secondary);
    await vi.waitFor(() => expect(outcomes).toEqual(['acknowledged']));
    const [notify] = secondary.received;
    expect(notify?.flags).toMatchObject({ opcode: OPCODE_NOTIFY, aa: true, qr: false });
    expect(notify?.questions).toEqual([{ name: ZONE, type: 'SOA', class: 'IN' }]);
    const soa = notify?.answers[0];
    expect(soa?.type === 'SOA' && soa.data.serial).toBe(store.zoneInfo(ZONE)?.serial);
  });

  it('announces each change of serial, with the new serial', async () => {
    const store = await zoneStore();
    const secondary = await fakeSecondary();
    cleanup.push(() => secondary.close());
    const { outcomes } = await start(store, secondary);
    await vi.waitFor(() => expect(outcomes).toHaveLength(1));
    const serial = await publish(store, 'a');
    await vi.waitFor(() => expect(outcomes).toHaveLength(2));
    const soa = secondary.received.at(-1)?.answers[0];
    expect(soa?.type === 'SOA' && soa.data.serial).toBe(serial);
  });

  it('sends again when no answer comes, then gives up after the retransmissions', async () => {
    const store = await zoneStore();
    const secondary = await fakeSecondary();
    cleanup.push(() => secondary.close());
    secondary.answer = () => undefined;
    const { outcomes, sent } = await start(store, secondary, { retries: 2, timeoutMs: 20 });
    await vi.waitFor(() => expect(outcomes).toEqual(['timeout']), { timeout: 2000 });
    expect(sent()).toBe(3);
    expect(secondary.received).toHaveLength(3);
    // Each try is a message of its own (a new id), for the same serial.
    expect(new Set(secondary.received.map((m) => m.id)).size).toBeGreaterThan(1);
  });

  it('stops at the first answer, after a lost one', async () => {
    const store = await zoneStore();
    const secondary = await fakeSecondary();
    cleanup.push(() => secondary.close());
    let calls = 0;
    secondary.answer = (query) =>
      ++calls < 3 ? undefined : encodeMessage(reply(query, 'NOERROR'));
    const { outcomes, sent } = await start(store, secondary, { retries: 5, timeoutMs: 20 });
    await vi.waitFor(() => expect(outcomes).toEqual(['acknowledged']), { timeout: 2000 });
    expect(sent()).toBe(3);
  });

  it('keeps a retransmission that already carries the newest serial', async () => {
    const store = await zoneStore();
    const secondary = await fakeSecondary();
    cleanup.push(() => secondary.close());
    let calls = 0;
    secondary.answer = (query) =>
      ++calls < 3 ? undefined : encodeMessage(reply(query, 'NOERROR'));
    // Checks only when asked: the publish lands between two retransmissions.
    const { sender, outcomes } = await start(store, secondary, {
      timeoutMs: 100,
      checkIntervalMs: 60_000,
    });
    const serial = await publish(store, 'between');
    await vi.waitFor(() => expect(secondary.received).toHaveLength(2));
    const second = secondary.received[1]?.answers[0];
    expect(second?.type === 'SOA' && second.data.serial).toBe(serial);
    sender.check();
    await vi.waitFor(() => expect(outcomes).toEqual(['acknowledged']), { timeout: 2000 });
  });

  it('does not retry a secondary that refuses', async () => {
    const store = await zoneStore();
    const secondary = await fakeSecondary();
    cleanup.push(() => secondary.close());
    secondary.answer = (query) => encodeMessage(reply(query, 'REFUSED'));
    const { outcomes, sent } = await start(store, secondary, { retries: 5, timeoutMs: 20 });
    await vi.waitFor(() => expect(outcomes).toEqual(['refused']));
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(sent()).toBe(1);
  });

  it('ignores an answer with another id or from another port', async () => {
    const store = await zoneStore();
    const secondary = await fakeSecondary();
    cleanup.push(() => secondary.close());
    secondary.answer = (query) =>
      encodeMessage({ ...reply(query, 'NOERROR'), id: (query.id + 1) % 0x10000 });
    const { outcomes } = await start(store, secondary, { retries: 1, timeoutMs: 20 });
    await vi.waitFor(() => expect(outcomes).toEqual(['timeout']), { timeout: 2000 });
  });

  it('makes one NOTIFY of a burst of changes, then one for what came during it', async () => {
    const store = await zoneStore();
    const secondary = await fakeSecondary();
    cleanup.push(() => secondary.close());
    const { outcomes } = await start(store, secondary, { checkIntervalMs: 100 });
    await vi.waitFor(() => expect(outcomes).toHaveLength(1));
    let last = 0;
    for (let i = 0; i < 30; i++) last = await publish(store, `burst${i}`);
    await vi.waitFor(() => {
      const soa = secondary.received.at(-1)?.answers[0];
      expect(soa?.type === 'SOA' && soa.data.serial).toBe(last);
    });
    // 30 changes, announced by far fewer NOTIFYs (one per check while the burst ran).
    expect(secondary.received.length - 1).toBeLessThanOrEqual(5);
  });

  it('signs with the secondary key, and takes only an answer signed back', async () => {
    const store = await zoneStore();
    const secondary = await fakeSecondary();
    cleanup.push(() => secondary.close());
    let forged = 0;
    secondary.answer = (query, raw) => {
      const verified = verifyRequest(raw, createTsigKeyring([KEY]), systemClock());
      if (verified.kind !== 'verified') return encodeMessage(reply(query, 'REFUSED'));
      // The first answer is unsigned (forged): it must be ignored, and NOTIFY sent again.
      if (forged++ === 0) return encodeMessage(reply(query, 'NOERROR'));
      return signMessage(encodeMessage(reply(query, 'NOERROR')), KEY, {
        now: systemClock(),
        requestMac: verified.tsig.mac,
      }).wire;
    };
    const { outcomes, sent } = await start(store, secondary, { key: true, timeoutMs: 30 });
    await vi.waitFor(() => expect(outcomes).toEqual(['acknowledged']), { timeout: 2000 });
    expect(sent()).toBe(2);
  });

  it('announces a change made by another process on the same LMDB store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimi-notify-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const store = await zoneStore(await openLmdbStore({ dataDir: dir }));
    cleanup.push(() => store.close());
    const secondary = await fakeSecondary();
    cleanup.push(() => secondary.close());
    const { outcomes } = await start(store, secondary);
    await vi.waitFor(() => expect(outcomes).toHaveLength(1));
    const before = store.zoneInfo(ZONE)?.serial ?? 0;
    // Another process (as the CLI would) writes to the same data directory.
    const script = `
      const { openLmdbStore } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
      const store = await openLmdbStore({ dataDir: ${JSON.stringify(dir)} });
      const name = 'other.${ZONE}';
      await store.apply('${ZONE}', [{ op: 'put', name, type: 'TXT', records: [{ name, type: 'TXT', class: 'IN', ttl: 60, data: [new TextEncoder().encode('x')] }] }]);
      await store.close();`;
    await new Promise<void>((resolve, reject) =>
      execFile(process.execPath, ['--input-type=module', '-e', script], (error) =>
        error === null ? resolve() : reject(error),
      ),
    );
    await vi.waitFor(() => {
      const soa = secondary.received.at(-1)?.answers[0];
      expect(soa?.type === 'SOA' && soa.data.serial).toBe(before + 1);
    });
    expect(outcomes).toEqual(['acknowledged', 'acknowledged']);
  });
});
