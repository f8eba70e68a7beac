import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AnswerCache,
  DNS_MESSAGE_MEDIA_TYPE,
  EDE_PROHIBITED,
  buildQuery,
  createLocalCa,
  createResponseRateLimiter,
  decodeMessage,
  edeOption,
  encodeMessage,
  extendedDnsErrors,
  issueServerCertificate,
  queryTcp,
  queryUdp,
  record,
  respondError,
  startDnsServer,
  type DnsServer,
  type GateDecision,
  type Message,
  type QueryGate,
  type QueryHandler,
} from '../src/index.js';

// The hooks of the per-client limits in the real listeners (`query-gate.ts`, `rrl.ts`): a gate
// asked before the answer cache on UDP, TCP and DoH, and Response Rate Limiting of what UDP
// sends. The gate here refuses whatever the test says; the servers' own limits build on it.

const NAME = '8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa';

let handled = 0;
const handler: QueryHandler = (query) => {
  handled++;
  const base = respondError(query, 'NOERROR');
  return {
    ...base,
    flags: { ...base.flags, aa: true },
    answers: [record(query.questions[0]?.name ?? NAME, 'MAP', Uint8Array.of(0xa0), 300)],
  };
};

let refuseFrom: string | undefined;
const gated: Array<{ transport: string; address: string }> = [];
const gate: QueryGate = (_bytes, context): GateDecision => {
  gated.push({ transport: context.transport, address: context.remoteAddress });
  if (context.remoteAddress !== refuseFrom) return { kind: 'pass' };
  return {
    kind: 'refuse',
    retryAfter: 42,
    respond: (query) => {
      const refused = respondError(query, 'REFUSED');
      return refused.edns === undefined
        ? refused
        : {
            ...refused,
            edns: { ...refused.edns, options: [edeOption(EDE_PROHIBITED, 'retry in 42 s')] },
          };
    },
  };
};

let server: DnsServer;
let agent: Agent;

beforeAll(async () => {
  const ca = await createLocalCa();
  const leaf = await issueServerCertificate(ca, { hostnames: [], ipAddresses: ['127.0.0.1'] });
  server = await startDnsServer(
    {
      udp: { port: 0 },
      tcp: { port: 0 },
      doh: { port: 0, cert: leaf.certPem, key: leaf.keyPem },
    },
    handler,
    { cache: new AnswerCache(), gate },
  );
  agent = new Agent({ connect: { ca: ca.certPem } });
});

afterAll(async () => {
  await agent?.close();
  await server?.close();
});

function udpAddress(): { host: string; port: number } {
  if (server.udp === undefined) throw new Error('no UDP listener');
  return server.udp;
}

async function dohPost(query: Message): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
}> {
  const response = await request(server.doh?.url ?? '', {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': DNS_MESSAGE_MEDIA_TYPE },
    body: encodeMessage(query),
  });
  return {
    status: response.statusCode,
    headers: response.headers,
    body: new Uint8Array(await response.body.arrayBuffer()),
  };
}

describe('a query gate', () => {
  it('is asked before the answer cache: a cached answer is refused too, on every transport', async () => {
    refuseFrom = undefined;
    const first = await queryUdp(udpAddress(), buildQuery(NAME, 'MAP'));
    expect(first.rcode).toBe('NOERROR');
    const before = handled;
    // Cached now: the same question again is answered without the handler.
    expect((await queryUdp(udpAddress(), buildQuery(NAME, 'MAP'))).rcode).toBe('NOERROR');
    expect(handled).toBe(before);

    refuseFrom = '127.0.0.1';
    const udp = await queryUdp(udpAddress(), buildQuery(NAME, 'MAP'));
    expect(udp.rcode).toBe('REFUSED');
    expect(extendedDnsErrors(udp.edns?.options ?? [])).toEqual([
      { infoCode: EDE_PROHIBITED, text: 'retry in 42 s' },
    ]);
    const tcp = await queryTcp(server.tcp ?? { host: '', port: 0 }, buildQuery(NAME, 'MAP'));
    expect(tcp.rcode).toBe('REFUSED');
    const doh = await dohPost(buildQuery(NAME, 'MAP'));
    expect(doh.status).toBe(429);
    expect(doh.headers['retry-after']).toBe('42');
    expect(doh.headers['cache-control']).toBe('no-store');
    expect(new TextDecoder().decode(doh.body)).toBe('429 Too Many Requests\n');
    expect(handled).toBe(before);
    expect(gated.slice(-3).map((g) => g.transport)).toEqual(['udp', 'tcp', 'doh']);
    refuseFrom = undefined;
    expect((await dohPost(buildQuery(NAME, 'MAP'))).status).toBe(200);
  });

  it('refuses only the client it refuses: another address is answered', async () => {
    refuseFrom = '127.0.0.1';
    const socket = createSocket('udp4');
    try {
      await new Promise<void>((resolve) => socket.bind({ address: '127.0.0.2' }, resolve));
      const answer = await exchange(socket, buildQuery(`1.${NAME}`, 'MAP'));
      expect(answer.rcode).toBe('NOERROR');
      expect(gated.at(-1)).toEqual({ transport: 'udp', address: '127.0.0.2' });
    } finally {
      socket.close();
      refuseFrom = undefined;
    }
  });
});

/** Sends `query` from `socket` to the server's UDP port and waits for its response. */
function exchange(socket: UdpSocket, query: Message): Promise<Message> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no response')), 5000);
    socket.once('message', (datagram) => {
      clearTimeout(timer);
      resolve(decodeMessage(datagram));
    });
    const { host, port } = udpAddress();
    socket.send(encodeMessage(query), port, host);
  });
}

describe('Response Rate Limiting in the UDP listener', () => {
  it('drops and slips a UDP flood, and leaves TCP alone', async () => {
    let t = 1_767_225_600;
    const rrl = createResponseRateLimiter(
      { responsesPerSecond: 4, burstSeconds: 1, slip: 2 },
      { now: () => t },
    );
    const limited = await startDnsServer({ udp: { port: 0 }, tcp: { port: 0 } }, handler, {
      rrl,
    });
    const socket = createSocket('udp4');
    try {
      const received: Message[] = [];
      socket.on('message', (datagram) => received.push(decodeMessage(datagram)));
      await new Promise<void>((resolve) => socket.bind({ address: '127.0.0.1' }, resolve));
      const { host, port } = limited.udp ?? { host: '', port: 0 };
      for (let i = 0; i < 24; i++) {
        socket.send(encodeMessage(buildQuery(NAME, 'MAP', { id: i })), port, host);
      }
      // 4 answered; of the 20 limited, every 2nd slipped: 10 slips, 10 dropped.
      await until(() => rrl.stats().dropped + rrl.stats().slipped === 20 && received.length === 14);
      expect(rrl.stats()).toMatchObject({ slipped: 10, dropped: 10 });
      expect(received.filter((m) => !m.flags.tc && m.answers.length === 1)).toHaveLength(4);
      const slips = received.filter((m) => m.flags.tc);
      expect(slips).toHaveLength(10);
      expect(slips.every((m) => m.answers.length === 0 && m.questions[0]?.name === NAME)).toBe(
        true,
      );
      // TCP is not limited by RRL: every answer arrives whole.
      for (let i = 0; i < 10; i++) {
        const answer = await queryTcp(
          limited.tcp ?? { host: '', port: 0 },
          buildQuery(NAME, 'MAP'),
        );
        expect(answer.answers).toHaveLength(1);
      }
      // A second later the stream has earned 4 responses again.
      t += 1;
      expect(
        (await queryUdp(limited.udp ?? { host: '', port: 0 }, buildQuery(NAME, 'MAP'))).answers,
      ).toHaveLength(1);
    } finally {
      socket.close();
      await limited.close();
    }
  });
});

async function until(condition: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
