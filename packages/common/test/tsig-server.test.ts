import { execFile, spawnSync } from 'node:child_process';
import { Buffer } from 'node:buffer';
import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AnswerCache,
  buildQuery,
  createTsigKey,
  createTsigKeyring,
  createTsigResponseVerifier,
  decodeMessage,
  encodeMessage,
  queryUdp,
  respondError,
  signMessage,
  splitTsig,
  startDnsServer,
  transferZone,
  type DnsServer,
  type Message,
  type QueryHandler,
  type TransferHandler,
  type TsigKey,
} from '../src/index.js';

// The TSIG step every listener runs (RFC 8945; `respond.ts`): stock clients sign queries to a
// real server and check its signatures (kdig and dig, skipped when missing), a transfer of many
// messages is signed message by message, and each refusal is answered as §5.2 says.

function installed(program: string, versionFlag: string): boolean {
  return spawnSync(program, [versionFlag], { stdio: 'ignore' }).error === undefined;
}
const HAVE_DIG = installed('dig', '-v');
const HAVE_KDIG = installed('kdig', '--version');
if (!HAVE_DIG) console.warn('dig not installed (Debian package bind9-dnsutils): skipping');
if (!HAVE_KDIG) console.warn('kdig not installed (Debian package knot-dnsutils): skipping');

const ZONE = 'xfr.example';
const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const SECRET = Buffer.alloc(32, 0x5a);
const KEY = createTsigKey('secondary.xfr.example', 'hmac-sha256', SECRET);
const KEY512 = createTsigKey('other.xfr.example', 'hmac-sha512', Buffer.alloc(64, 0x33));
const soa = {
  name: ZONE,
  type: 'SOA' as const,
  class: 'IN' as const,
  ttl: 3600,
  data: {
    mname: `ns1.${ZONE}`,
    rname: `hostmaster.${ZONE}`,
    serial: 7,
    refresh: 3600,
    retry: 600,
    expire: 86_400,
    minimum: 300,
  },
};

/** Answers every question with the SOA, or with `big` TXT records under `big.<zone>`. */
const handler: QueryHandler = (query) => {
  const response = respondError(query, 'NOERROR');
  response.flags.aa = true;
  const name = query.questions[0]?.name ?? ZONE;
  response.answers = name.startsWith('big.')
    ? Array.from({ length: 40 }, (_, i) => ({
        name,
        type: 'TXT' as const,
        class: 'IN' as const,
        ttl: 60,
        data: [text(`${i} ${'x'.repeat(100)}`)],
      }))
    : [soa];
  return response;
};

/** Three messages: SOA and 300 TXT records, split, then the SOA again. */
const seenKeys: (string | undefined)[] = [];
const transfer: TransferHandler = (query, context) => {
  seenKeys.push(context.tsig?.key.name);
  return (async function* () {
    for (let part = 0; part < 3; part++) {
      const message = respondError(query, 'NOERROR');
      message.flags.aa = true;
      if (part > 0) message.questions = [];
      message.answers = [
        ...(part === 0 ? [soa] : []),
        ...Array.from({ length: 100 }, (_, i) => ({
          name: `r${part * 100 + i}.${ZONE}`,
          type: 'TXT' as const,
          class: 'IN' as const,
          ttl: 60,
          data: [text('some text')],
        })),
        ...(part === 2 ? [soa] : []),
      ];
      yield message;
    }
  })();
};

let clock = 1_767_225_600;
const now = (): number => clock;
const refused: string[] = [];
let server: DnsServer;
let keyless: DnsServer;
let cached: DnsServer;
let cache: AnswerCache;

beforeAll(async () => {
  clock = Math.floor(Date.now() / 1000);
  const tsig = {
    keys: createTsigKeyring([KEY, KEY512]),
    now,
    onRefused: (e: string) => refused.push(e),
  };
  server = await startDnsServer({ udp: { port: 0 }, tcp: { port: 0, transfer } }, handler, {
    tsig,
  });
  keyless = await startDnsServer({ udp: { port: 0 }, tcp: { port: 0, transfer } }, handler);
  cache = new AnswerCache({ maxOctets: 1 << 20, generation: () => 1 });
  cached = await startDnsServer({ udp: { port: 0 } }, handler, { tsig, cache });
});

afterAll(async () => {
  await server.close();
  await keyless.close();
  await cached.close();
});

function run(tool: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(tool, args, { timeout: 20_000 }, (_error, stdout, stderr) =>
      resolve(`${stdout}${stderr}`),
    );
  });
}

const yFlag = (key: TsigKey, secret = Buffer.from(key.secret)): string =>
  `${key.algorithm}:${key.name}:${secret.toString('base64')}`;

/** Sends `wire` over UDP to `port` and returns the first datagram back. */
function exchange(port: number, wire: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error('no answer'));
    }, 5000);
    socket.on('message', (datagram) => {
      clearTimeout(timer);
      socket.close();
      resolve(new Uint8Array(datagram));
    });
    socket.send(wire, port, '127.0.0.1');
  });
}

describe('signed queries to a server with keys', () => {
  it.skipIf(!HAVE_KDIG)('answers kdig -y with a response kdig verifies', async () => {
    for (const key of [KEY, KEY512]) {
      const out = await run('kdig', [
        '-y',
        yFlag(key),
        '-p',
        String(server.udp?.port),
        '@127.0.0.1',
        ZONE,
        'SOA',
      ]);
      expect(out).toContain('status: NOERROR');
      expect(out).toMatch(
        new RegExp(
          `TSIG\\s+${key.algorithm}\\. \\d+ 300 ${key.algorithm === 'hmac-sha256' ? 32 : 64} `,
        ),
      );
      expect(out).not.toMatch(/failed|BADSIG|TSIG error/i);
    }
  });

  it.skipIf(!HAVE_DIG)(
    'answers dig -y with a response dig verifies, over UDP and TCP',
    async () => {
      for (const tcp of ['+notcp', '+tcp']) {
        const out = await run('dig', [
          '-y',
          yFlag(KEY),
          tcp,
          '-p',
          String(server.udp?.port),
          '@127.0.0.1',
          ZONE,
          'SOA',
        ]);
        expect(out).toContain('status: NOERROR');
        expect(out).toMatch(/TSIG PSEUDOSECTION/);
        expect(out).not.toMatch(/Couldn't verify|tsig verify failure|expected a TSIG/i);
      }
    },
  );

  it.skipIf(!HAVE_KDIG)(
    'answers a wrong secret NOTAUTH with BADSIG, an unknown key BADKEY',
    async () => {
      const wrong = await run('kdig', [
        '-y',
        yFlag(KEY, Buffer.alloc(32, 1)),
        '-p',
        String(server.udp?.port),
        '@127.0.0.1',
        ZONE,
        'SOA',
      ]);
      // kdig shows the TSIG error as the status of a NOTAUTH answer.
      expect(wrong).toMatch(/status: (NOTAUTH|BADSIG)/);
      expect(wrong).toMatch(/TSIG\s+hmac-sha256\. \d+ 300 0 \d+ BADSIG/);
      const unknown = createTsigKey('nobody.xfr.example', 'hmac-sha256', SECRET);
      const out = await run('kdig', [
        '-y',
        yFlag(unknown),
        '-p',
        String(server.udp?.port),
        '@127.0.0.1',
        ZONE,
        'SOA',
      ]);
      expect(out).toMatch(/status: (NOTAUTH|BADKEY)/);
      expect(out).toMatch(/TSIG\s+hmac-sha256\. \d+ 300 0 \d+ BADKEY/);
      expect(refused).toEqual(expect.arrayContaining(['BADSIG', 'BADKEY']));
    },
  );

  it('answers a query signed too long ago NOTAUTH, signed, with BADTIME and the server time', async () => {
    const query = encodeMessage(buildQuery(ZONE, 'SOA', { id: 99 }));
    const signed = signMessage(query, KEY, { now: clock - 301 });
    const answer = await exchange(server.udp?.port ?? 0, signed.wire);
    const split = splitTsig(answer);
    expect(split.kind).toBe('signed');
    if (split.kind !== 'signed') return;
    expect(decodeMessage(split.unsigned).rcode).toBe('NOTAUTH');
    expect(split.tsig.error).toBe(18);
    expect(split.tsig.timeSigned).toBe(clock - 301);
    expect(Buffer.from(split.tsig.otherData).readUIntBE(0, 6)).toBe(clock);
    expect(split.tsig.mac).toHaveLength(32);
    // Signed with the key (the client learns the clocks differ, not that the key is wrong).
    const verifier = createTsigResponseVerifier(KEY, signed.mac);
    expect(verifier.verify(answer, clock - 301)).toMatchObject({
      kind: 'failed',
      reason: 'the server answered TSIG error BADTIME',
    });
  });

  it('answers a TSIG that is not the last record FORMERR', async () => {
    const signed = signMessage(encodeMessage(buildQuery(ZONE, 'SOA', { id: 7 })), KEY, {
      now: clock,
    });
    // The query had an OPT: move it after the TSIG.
    const message = decodeMessage(signed.wire);
    expect(message.edns).toBeDefined();
    const bytes = Buffer.from(signed.wire);
    const opt = Buffer.of(0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0);
    const withoutOpt = removeOpt(bytes);
    const moved = Buffer.concat([withoutOpt, opt]);
    moved.writeUInt16BE(moved.readUInt16BE(10) + 1, 10);
    const answer = decodeMessage(await exchange(server.udp?.port ?? 0, moved));
    expect(answer.rcode).toBe('FORMERR');
  });

  it('signs every message of a transfer, and the handler sees the key', async () => {
    const result = await transferZone({ host: '127.0.0.1', port: server.tcp?.port ?? 0 }, ZONE, {
      tsig: KEY,
      now,
    });
    expect(result.messages).toBe(3);
    expect(result.records).toHaveLength(301);
    expect(seenKeys.at(-1)).toBe(KEY.name);
    // Unsigned, the same handler is asked too, without a key.
    await transferZone({ host: '127.0.0.1', port: server.tcp?.port ?? 0 }, ZONE);
    expect(seenKeys.at(-1)).toBeUndefined();
  });

  it('truncates a signed UDP answer that does not fit, then signs it', async () => {
    const query = encodeMessage(buildQuery(`big.${ZONE}`, 'TXT', { id: 5 }));
    const signed = signMessage(query, KEY, { now: clock });
    const answer = await exchange(server.udp?.port ?? 0, signed.wire);
    expect(answer.length).toBeLessThanOrEqual(1232);
    const verifier = createTsigResponseVerifier(KEY, signed.mac);
    const check = verifier.verify(answer, clock);
    expect(check.kind).toBe('verified');
    if (check.kind !== 'verified') return;
    const message = decodeMessage(check.unsigned);
    expect(message.flags.tc).toBe(true);
    expect(message.answers).toEqual([]);
  });
});

describe('signed queries elsewhere', () => {
  it('are answered BADKEY by a server without keys', async () => {
    const signed = signMessage(encodeMessage(buildQuery(ZONE, 'SOA', { id: 3 })), KEY, {
      now: Math.floor(Date.now() / 1000),
    });
    const answer = await exchange(keyless.udp?.port ?? 0, signed.wire);
    const split = splitTsig(answer);
    expect(split).toMatchObject({ kind: 'signed', tsig: { error: 17 } });
    if (split.kind === 'signed') expect(decodeMessage(split.unsigned).rcode).toBe('NOTAUTH');
  });

  it('are never answered from the answer cache, and never put in it', async () => {
    const port = cached.udp?.port ?? 0;
    const plain = await queryUdp({ host: '127.0.0.1', port }, buildQuery(ZONE, 'SOA', { id: 11 }));
    expect(plain.rcode).toBe('NOERROR');
    expect(cache.stats.entries).toBe(1);
    const signed = signMessage(encodeMessage(buildQuery(ZONE, 'SOA', { id: 11 })), KEY, {
      now: clock,
    });
    // The same signed bytes twice: each answered afresh, signed over their MAC.
    for (let i = 0; i < 2; i++) {
      const answer = await exchange(port, signed.wire);
      const verifier = createTsigResponseVerifier(KEY, signed.mac);
      expect(verifier.verify(answer, clock).kind).toBe('verified');
    }
    expect(cache.stats).toMatchObject({ entries: 1, hits: 0 });
  });
});

/** `wire` without its OPT record (the last record before the TSIG), ARCOUNT one less. */
function removeOpt(wire: Buffer): Buffer {
  const split = splitTsig(wire);
  if (split.kind !== 'signed') throw new Error('not signed');
  const message = decodeMessage(split.unsigned) as Message;
  delete message.edns;
  const resigned = signMessage(encodeMessage(message), KEY, { now: clock });
  return Buffer.from(resigned.wire);
}
