import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ChannelError,
  createOutboxChannel,
  createSmtpChannel,
  createWebhookChannel,
  selectChannel,
  type CodeChannel,
} from '../src/registration/channels.js';

const MESSAGE = { csi: 'mailto:alice@example.com', code: '042042', expiresAt: 1_767_226_200 };
const PHONE_MESSAGE = { csi: 'tel:+442079460018', code: '123456', expiresAt: 1_767_226_200 };

const stub = (name: string): CodeChannel => ({ name, send: async () => undefined });

async function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function close(server: Server | ReturnType<typeof createHttpServer>): Promise<void> {
  if (!server.listening) return;
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe('selectChannel', () => {
  const tel = stub('webhook');
  const mailto = stub('smtp');
  const fallback = stub('outbox');

  it('sends tel: to the tel channel and mailto: to the mailto channel', () => {
    expect(selectChannel({ tel, mailto, fallback }, PHONE_MESSAGE.csi)).toBe(tel);
    expect(selectChannel({ tel, mailto, fallback }, MESSAGE.csi)).toBe(mailto);
  });

  it('falls back to the fallback channel for a kind without its own', () => {
    expect(selectChannel({ mailto, fallback }, PHONE_MESSAGE.csi)).toBe(fallback);
    expect(selectChannel({ tel, fallback }, MESSAGE.csi)).toBe(fallback);
  });

  it('finds none when neither is configured', () => {
    expect(selectChannel({ mailto }, PHONE_MESSAGE.csi)).toBeUndefined();
    expect(selectChannel({}, MESSAGE.csi)).toBeUndefined();
  });
});

describe('outbox channel', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mimi-outbox-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('appends one JSON line per code, readable by its owner only', async () => {
    const path = join(dir, 'outbox.jsonl');
    const outbox = createOutboxChannel(path);
    expect(outbox.name).toBe('outbox');
    await Promise.all([outbox.send(MESSAGE), outbox.send(PHONE_MESSAGE)]);
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines).toEqual([JSON.stringify(MESSAGE), JSON.stringify(PHONE_MESSAGE), '']);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('fails with ERR_CHANNEL_FAILED when the file cannot be written', async () => {
    const outbox = createOutboxChannel(join(dir, 'missing', 'outbox.jsonl'));
    const error = await outbox.send(MESSAGE).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChannelError);
    expect(error).toMatchObject({ code: 'ERR_CHANNEL_FAILED', channel: 'outbox' });
    // A failure does not block later sends.
    const good = createOutboxChannel(join(dir, 'outbox.jsonl'));
    await good.send(MESSAGE);
  });
});

interface SmtpTranscript {
  auth: string[];
  from: string[];
  to: string[];
  data: string[];
}

/**
 * A fake SMTP server (RFC 5321) that speaks just enough for nodemailer: EHLO, AUTH PLAIN,
 * MAIL, RCPT, DATA, QUIT. It offers no STARTTLS. `rejectRecipients` answers RCPT with 550.
 */
function fakeSmtpServer(transcript: SmtpTranscript, rejectRecipients = false): Server {
  return createTcpServer((socket) => {
    let buffer = '';
    let inData = false;
    let message = '';
    const reply = (line: string): void => {
      socket.write(`${line}\r\n`);
    };
    reply('220 fake.smtp ESMTP');
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      for (let i = buffer.indexOf('\r\n'); i >= 0; i = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            transcript.data.push(message);
            message = '';
            reply('250 2.0.0 queued');
          } else {
            message += `${line.startsWith('..') ? line.slice(1) : line}\n`;
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') {
          reply('250-fake.smtp');
          reply('250-AUTH PLAIN');
          reply('250 8BITMIME');
        } else if (verb === 'HELO') reply('250 fake.smtp');
        else if (verb === 'AUTH') {
          transcript.auth.push(Buffer.from(line.split(' ')[2] ?? '', 'base64').toString('utf8'));
          reply('235 2.7.0 accepted');
        } else if (verb === 'MAIL') {
          transcript.from.push(line);
          reply('250 2.1.0 ok');
        } else if (verb === 'RCPT') {
          transcript.to.push(line);
          reply(rejectRecipients ? '550 5.1.1 no such user' : '250 2.1.5 ok');
        } else if (verb === 'DATA') {
          inData = true;
          reply('354 go ahead');
        } else if (verb === 'RSET') reply('250 ok');
        else if (verb === 'QUIT') {
          reply('221 bye');
          socket.end();
        } else reply('502 5.5.2 not implemented');
      }
    });
  });
}

describe('SMTP channel', () => {
  let transcript: SmtpTranscript;
  let server: Server;

  beforeEach(() => {
    transcript = { auth: [], from: [], to: [], data: [] };
  });

  afterEach(async () => {
    await close(server);
  });

  it('mails the code to the address of a mailto: CSI', async () => {
    server = fakeSmtpServer(transcript);
    const port = await listen(server);
    const smtp = createSmtpChannel({
      host: '127.0.0.1',
      port,
      requireTls: false,
      from: 'DP <no-reply@dp.example>',
      user: 'dp',
      password: 'secret',
    });
    expect(smtp.name).toBe('smtp');
    await smtp.send(MESSAGE);
    expect(transcript.auth).toEqual(['\u0000dp\u0000secret']);
    expect(transcript.from).toEqual(['MAIL FROM:<no-reply@dp.example>']);
    expect(transcript.to).toEqual(['RCPT TO:<alice@example.com>']);
    expect(transcript.data[0]).toContain('Your verification code is 042042.');
    expect(transcript.data[0]).toContain('2026-01-01T00:10:00.000Z');
  });

  it('refuses to send in clear text unless told to', async () => {
    server = fakeSmtpServer(transcript);
    const port = await listen(server);
    const smtp = createSmtpChannel({ host: '127.0.0.1', port, from: 'no-reply@dp.example' });
    const error = await smtp.send(MESSAGE).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_CHANNEL_FAILED', channel: 'smtp' });
    expect(transcript.data).toEqual([]);
  });

  it('fails with ERR_CHANNEL_FAILED when the server refuses the recipient', async () => {
    server = fakeSmtpServer(transcript, true);
    const port = await listen(server);
    const smtp = createSmtpChannel({
      host: '127.0.0.1',
      port,
      requireTls: false,
      from: 'no-reply@dp.example',
    });
    await expect(smtp.send(MESSAGE)).rejects.toBeInstanceOf(ChannelError);
  });

  it('refuses a CSI that is not an email address', async () => {
    server = fakeSmtpServer(transcript);
    const port = await listen(server);
    const smtp = createSmtpChannel({ host: '127.0.0.1', port, from: 'no-reply@dp.example' });
    await expect(smtp.send(PHONE_MESSAGE)).rejects.toBeInstanceOf(ChannelError);
    expect(transcript.from).toEqual([]);
  });
});

describe('webhook channel', () => {
  let received: { headers: IncomingHttpHeaders; body: string; method: string; url: string }[];
  let status: number;
  let server: ReturnType<typeof createHttpServer>;
  let url: string;

  beforeEach(async () => {
    received = [];
    status = 204;
    server = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          method: req.method ?? '',
          url: req.url ?? '',
        });
        res.writeHead(status).end();
      });
    });
    url = `http://127.0.0.1:${await listen(server)}/sms`;
  });

  afterEach(async () => {
    await close(server);
  });

  it('posts the code as JSON with the configured headers', async () => {
    const webhook = createWebhookChannel({ url, headers: { authorization: 'Bearer t0k3n' } });
    expect(webhook.name).toBe('webhook');
    await webhook.send(PHONE_MESSAGE);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ method: 'POST', url: '/sms' });
    expect(received[0]?.headers['content-type']).toBe('application/json');
    expect(received[0]?.headers['authorization']).toBe('Bearer t0k3n');
    expect(JSON.parse(received[0]?.body ?? '')).toEqual({
      csi: 'tel:+442079460018',
      to: '+442079460018',
      code: '123456',
      expiresAt: PHONE_MESSAGE.expiresAt,
    });
  });

  it('fails with ERR_CHANNEL_FAILED on a status other than 2xx', async () => {
    status = 503;
    const error = await createWebhookChannel({ url })
      .send(PHONE_MESSAGE)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_CHANNEL_FAILED', channel: 'webhook' });
    expect((error as Error).message).toContain('503');
  });

  it('fails with ERR_CHANNEL_FAILED when the gateway cannot be reached', async () => {
    await close(server);
    // Nothing listens at `url` any more; afterEach closes this idle replacement.
    server = createHttpServer();
    const error = await createWebhookChannel({ url })
      .send(PHONE_MESSAGE)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChannelError);
  });
});
