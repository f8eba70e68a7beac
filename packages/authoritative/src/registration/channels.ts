import { open, readFile } from 'node:fs/promises';
import { MimiError } from '@mimi-discovery/common';
import { createTransport } from 'nodemailer';
import { request } from 'undici';

/**
 * Channels that deliver one-time codes to the owner of a CSI (design §8.1): a file outbox for
 * development and tests, SMTP for email addresses, and an HTTP webhook for an SMS gateway.
 *
 * Which channel serves a CSI ({@link selectChannel}): `tel:` CSIs go to the `tel` channel
 * (usually the webhook), `mailto:` CSIs to the `mailto` channel (usually SMTP); a kind without
 * its own channel uses the `fallback` channel (usually the outbox) when one is configured.
 * A channel that fails is not replaced by the fallback: the request fails, so a code meant for
 * a phone never lands in a development outbox by accident.
 */

/** One code to deliver. */
export interface CodeMessage {
  /** The canonical CSI the code proves. */
  readonly csi: string;
  readonly code: string;
  /** When the code expires, seconds since the epoch. */
  readonly expiresAt: number;
}

/** A way to deliver codes. `send` resolves once the message is handed over. */
export interface CodeChannel {
  /** Short name reported to the client (`outbox`, `smtp`, `webhook`). */
  readonly name: string;
  send(message: CodeMessage): Promise<void>;
}

/** The channels of a registrar, by CSI kind. */
export interface CodeChannels {
  readonly tel?: CodeChannel;
  readonly mailto?: CodeChannel;
  /** Serves a kind that has no channel of its own (development: the outbox). */
  readonly fallback?: CodeChannel;
}

/** A channel could not deliver a code. */
export class ChannelError extends MimiError<'ERR_CHANNEL_FAILED'> {
  /** The channel's name. */
  readonly channel: string;

  constructor(channel: string, message: string, options?: { cause?: unknown }) {
    super('ERR_CHANNEL_FAILED', `${channel}: ${message}`, options);
    this.channel = channel;
  }
}

/** Time allowed for a delivery over the network (SMTP and webhook), in milliseconds. */
export const CHANNEL_TIMEOUT_MS = 10_000;

/** The channel for `csi`, or undefined when none is configured for its kind. */
export function selectChannel(channels: CodeChannels, csi: string): CodeChannel | undefined {
  const own = csi.startsWith('tel:')
    ? channels.tel
    : csi.startsWith('mailto:')
      ? channels.mailto
      : undefined;
  return own ?? channels.fallback;
}

/**
 * A file outbox for development and tests: each code is appended as one JSON line
 * `{"csi":…,"code":…,"expiresAt":…}`, and `send` resolves after the line is flushed to disk
 * (fsync). The file is created readable by its owner only: it holds live codes.
 */
export function createOutboxChannel(path: string): CodeChannel {
  // Sends are chained so that lines never interleave.
  let tail: Promise<void> = Promise.resolve();
  const append = async (line: string): Promise<void> => {
    const handle = await open(path, 'a', 0o600);
    try {
      await handle.write(line);
      await handle.sync();
    } finally {
      await handle.close();
    }
  };
  return {
    name: 'outbox',
    send(message) {
      const line = `${JSON.stringify({ csi: message.csi, code: message.code, expiresAt: message.expiresAt })}\n`;
      const sent = tail.then(() => append(line));
      tail = sent.catch(() => undefined);
      return sent.catch((error: unknown) => {
        throw new ChannelError('outbox', `cannot append to ${path}`, { cause: error });
      });
    },
  };
}

/**
 * The code the outbox file at `path` last received for `csi` (canonical), or undefined when it
 * holds none: how a development app, the `demo` command and the tests read what
 * {@link createOutboxChannel} wrote. Lines that are not a code's JSON are skipped. A file that
 * cannot be read rejects with the file system's error.
 */
export async function lastOutboxCode(path: string, csi: string): Promise<string | undefined> {
  let code: string | undefined;
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    if (line.trim() === '') continue;
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    const { csi: to, code: sent } = (entry ?? {}) as { csi?: unknown; code?: unknown };
    if (to === csi && typeof sent === 'string') code = sent;
  }
  return code;
}

/** Settings of {@link createSmtpChannel}. */
export interface SmtpChannelOptions {
  readonly host: string;
  readonly port: number;
  /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
  readonly secure?: boolean;
  /**
   * Refuse to send without TLS (STARTTLS required when `secure` is false). Default true, since
   * a code in clear text can be read on the way (design R7); turn off only for a local relay.
   */
  readonly requireTls?: boolean;
  /** The sender address (`From:`). */
  readonly from: string;
  readonly user?: string;
  readonly password?: string;
  readonly subject?: string;
  /** Connection, greeting and socket timeouts; default {@link CHANNEL_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
}

/**
 * Sends codes by email through an SMTP server (nodemailer), to the address of a `mailto:` CSI.
 * One connection per message: codes are few, and nothing stays open between them.
 */
export function createSmtpChannel(options: SmtpChannelOptions): CodeChannel {
  const timeout = options.timeoutMs ?? CHANNEL_TIMEOUT_MS;
  const secure = options.secure ?? false;
  const transport = createTransport({
    host: options.host,
    port: options.port,
    secure,
    requireTLS: !secure && (options.requireTls ?? true),
    ...(options.user === undefined
      ? {}
      : { auth: { user: options.user, pass: options.password ?? '' } }),
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
  });
  const subject = options.subject ?? 'Your verification code';
  return {
    name: 'smtp',
    async send(message) {
      if (!message.csi.startsWith('mailto:')) {
        throw new ChannelError('smtp', 'only mailto: CSIs have an email address');
      }
      const to = message.csi.slice('mailto:'.length);
      const expires = new Date(message.expiresAt * 1000).toISOString();
      try {
        await transport.sendMail({
          from: options.from,
          to,
          subject,
          text: `Your verification code is ${message.code}.\nIt expires at ${expires}.\nIf you did not ask for it, ignore this message.\n`,
        });
      } catch (error) {
        throw new ChannelError('smtp', 'the SMTP server did not accept the message', {
          cause: error,
        });
      }
    },
  };
}

/** Settings of {@link createWebhookChannel}. */
export interface WebhookChannelOptions {
  /** The gateway's endpoint; `https:` outside development. */
  readonly url: string;
  /** Extra request headers, e.g. the gateway's `authorization`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Time allowed for the response headers and body; default {@link CHANNEL_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
}

/**
 * Hands codes to an HTTP gateway (an SMS gateway for `tel:` CSIs): `POST url` with the JSON
 * body `{"csi","to","code","expiresAt"}`, where `to` is the E.164 number (`+442079460018`) or
 * the email address. Any 2xx status is success.
 */
export function createWebhookChannel(options: WebhookChannelOptions): CodeChannel {
  const timeout = options.timeoutMs ?? CHANNEL_TIMEOUT_MS;
  return {
    name: 'webhook',
    async send(message) {
      const to = message.csi.slice(message.csi.indexOf(':') + 1);
      let status: number;
      try {
        const response = await request(options.url, {
          method: 'POST',
          headers: { ...options.headers, 'content-type': 'application/json' },
          body: JSON.stringify({
            csi: message.csi,
            to,
            code: message.code,
            expiresAt: message.expiresAt,
          }),
          headersTimeout: timeout,
          bodyTimeout: timeout,
        });
        status = response.statusCode;
        await response.body.dump();
      } catch (error) {
        throw new ChannelError('webhook', 'the gateway could not be reached', { cause: error });
      }
      if (status < 200 || status > 299) {
        throw new ChannelError('webhook', `the gateway answered HTTP ${status}`);
      }
    },
  };
}
