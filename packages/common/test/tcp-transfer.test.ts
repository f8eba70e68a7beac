import { connect } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import {
  buildQuery,
  encodeMessage,
  queryTcp,
  queryUdp,
  record,
  respondError,
  startDnsServer,
  transferZone,
  type Message,
  type QueryHandler,
  type TransferHandler,
} from '../src/index.js';
import { soaRecord } from '../../../test/helpers/records.js';

/**
 * A TCP listener with a transfer handler (RFC 5936): AXFR is answered with the handler's stream
 * of messages, written as the client reads them; a client that stops reading is cut off and the
 * handler learns the transfer ended; every other question, and AXFR over UDP, goes to the query
 * handler.
 */

const ZONE = 'example.test';
const soa = soaRecord(
  ZONE,
  { mname: `ns.${ZONE}`, rname: `admin.${ZONE}`, serial: 7, expire: 86400 },
  3600,
);

const handler: QueryHandler = (query) => respondError(query, 'REFUSED');

/** A message of `count` TXT records of 200 octets each. */
function bulk(query: Message, count: number, first: boolean): Message {
  const answers = Array.from({ length: count }, (_, i) =>
    record(`r${i}.${ZONE}`, 'TXT', [new Uint8Array(200).fill(0x61)], 60),
  );
  return {
    ...respondError(query, 'NOERROR'),
    questions: first ? query.questions : [],
    answers: first ? [soa, ...answers] : answers,
  };
}

describe('a TCP listener with a transfer handler', () => {
  it('sends every message of a transfer in order, then answers the next query', async () => {
    const transfer: TransferHandler = (query) =>
      (async function* () {
        yield bulk(query, 200, true);
        yield bulk(query, 200, false);
        yield { ...respondError(query, 'NOERROR'), questions: [], answers: [soa] };
      })();
    const server = await startDnsServer({ tcp: { port: 0, transfer } }, handler);
    try {
      const address = { host: '127.0.0.1', port: server.tcp?.port ?? 0 };
      const result = await transferZone(address, ZONE);
      expect(result.messages).toBe(3);
      expect(result.records).toHaveLength(401);
      const other = await queryTcp(address, buildQuery(ZONE, 'SOA'));
      expect(other.rcode).toBe('REFUSED');
    } finally {
      await server.close();
    }
  });

  it('cuts off a client that stops reading, and ends the transfer', async () => {
    let sent = 0;
    let ended = false;
    const transfer: TransferHandler = (query) =>
      (async function* () {
        try {
          for (;;) {
            sent++;
            yield bulk(query, 250, sent === 1);
          }
        } finally {
          ended = true;
        }
      })();
    const server = await startDnsServer(
      { tcp: { port: 0, transfer, messageTimeoutMs: 300 } },
      handler,
    );
    try {
      const socket = connect({ host: '127.0.0.1', port: server.tcp?.port ?? 0 });
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.on('connect', () => resolve()));
      const wire = encodeMessage(buildQuery(ZONE, 'AXFR'));
      const frame = Buffer.alloc(2 + wire.length);
      frame.writeUInt16BE(wire.length, 0);
      frame.set(wire, 2);
      socket.write(frame);
      socket.pause();
      await vi.waitFor(() => expect(ended).toBe(true), { timeout: 10_000, interval: 50 });
      expect(server.tcp?.connectionStats().closed.message_timeout).toBe(1);
      // Bounded by what fits unread: the socket buffers and TCP_MAX_UNSENT_OCTETS, not the stream.
      expect(sent).toBeLessThan(1000);
      socket.destroy();
    } finally {
      await server.close();
    }
  });

  it('leaves AXFR over UDP to the query handler, and gives it IXFR over TCP', async () => {
    const transfer = vi.fn<TransferHandler>((query) => respondError(query, 'NOTIMP'));
    const server = await startDnsServer({ udp: { port: 0 }, tcp: { port: 0, transfer } }, handler);
    try {
      const udp = await queryUdp(
        { host: '127.0.0.1', port: server.udp?.port ?? 0 },
        buildQuery(ZONE, 'AXFR'),
        { tcpFallback: false },
      );
      expect(udp.rcode).toBe('REFUSED');
      expect(transfer).not.toHaveBeenCalled();
      const ixfr = await queryTcp(
        { host: '127.0.0.1', port: server.tcp?.port ?? 0 },
        buildQuery(ZONE, 'IXFR'),
      );
      expect(ixfr.rcode).toBe('NOTIMP');
      expect(transfer).toHaveBeenCalledTimes(1);
    } finally {
      await server.close();
    }
  });

  it('gives IXFR over UDP to the transfer handler of the UDP listener, which answers one message', async () => {
    const transfer = vi.fn<TransferHandler>((query) => respondError(query, 'NOTIMP'));
    const streaming = vi.fn<TransferHandler>((query) =>
      (async function* () {
        yield respondError(query, 'NOERROR');
      })(),
    );
    const one = await startDnsServer({ udp: { port: 0, transfer } }, handler);
    const many = await startDnsServer({ udp: { port: 0, transfer: streaming } }, handler);
    try {
      const ixfr = await queryUdp(
        { host: '127.0.0.1', port: one.udp?.port ?? 0 },
        buildQuery(ZONE, 'IXFR'),
        { tcpFallback: false },
      );
      expect(ixfr.rcode).toBe('NOTIMP');
      const axfr = await queryUdp(
        { host: '127.0.0.1', port: one.udp?.port ?? 0 },
        buildQuery(ZONE, 'AXFR'),
        { tcpFallback: false },
      );
      expect(axfr.rcode).toBe('REFUSED');
      expect(transfer).toHaveBeenCalledTimes(1);
      // A stream cannot go over UDP: the handler's fault, answered SERVFAIL.
      const stream = await queryUdp(
        { host: '127.0.0.1', port: many.udp?.port ?? 0 },
        buildQuery(ZONE, 'IXFR'),
        { tcpFallback: false },
      );
      expect(stream.rcode).toBe('SERVFAIL');
    } finally {
      await one.close();
      await many.close();
    }
  });
});
