import type { IncomingHttpHeaders } from 'node:http';
import { isUndiciTimeout, readBoundedBody } from '@mimi-discovery/common';
import { Agent, request } from 'undici';
import { DiscoveryClientError } from '../discovery-client-base.js';

/**
 * The HTTP exchanges of the oblivious client, with the relay (key configurations, encapsulated
 * requests) and with issuers (directory, token requests): binary bodies, each read within a size
 * bound, each exchange within a deadline fixed when it starts (headers within `timeoutMs` of the
 * call, then the whole body within `timeoutMs` of the headers), as `createApiClient` reads JSON.
 * A fault is a `DiscoveryClientError` with `ERR_API_UNREACHABLE`, `ERR_API_TIMEOUT` or
 * `ERR_API_RESPONSE` (a body over its bound); every status comes back to the caller.
 */

/** One exchange. */
export interface HttpExchange {
  readonly url: URL;
  readonly method: 'GET' | 'POST';
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  /** Largest body read; a larger one is an `ERR_API_RESPONSE`. */
  readonly maxOctets: number;
}

/** What came back. */
export interface HttpReply {
  readonly status: number;
  /** The media type of `content-type`, lowercase, without parameters ('' when absent). */
  readonly contentType: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Uint8Array;
}

/** A connection pool for the exchanges of one client. */
export interface HttpTransport {
  send(exchange: HttpExchange): Promise<HttpReply>;
  close(): Promise<void>;
}

/** What {@link createHttpTransport} needs. */
export interface HttpTransportOptions {
  readonly ca?: string | Uint8Array;
  readonly connectTimeoutMs: number;
  readonly timeoutMs: number;
  readonly connections: number;
}

/** A pool over HTTP/2 or HTTP/1.1 that trusts `options.ca` instead of the system's roots. */
export function createHttpTransport(options: HttpTransportOptions): HttpTransport {
  const agent = new Agent({
    connectTimeout: options.connectTimeoutMs,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    allowH2: true,
    connections: options.connections,
    ...(options.ca === undefined
      ? {}
      : { connect: { ca: typeof options.ca === 'string' ? options.ca : Buffer.from(options.ca) } }),
  });

  const send = async (exchange: HttpExchange): Promise<HttpReply> => {
    // Messages name the origin and path, never a query.
    const url = `${exchange.url.origin}${exchange.url.pathname}`;
    const deadline = new AbortController();
    const timedOut = new Error(`no whole response within ${options.timeoutMs} ms`);
    let timer = setTimeout(() => deadline.abort(timedOut), options.timeoutMs);
    const failed = (error: unknown): DiscoveryClientError =>
      deadline.signal.aborted || isUndiciTimeout(error)
        ? new DiscoveryClientError('ERR_API_TIMEOUT', `${url}: ${timedOut.message}`, {
            url,
            cause: error,
          })
        : new DiscoveryClientError(
            'ERR_API_UNREACHABLE',
            `cannot reach ${exchange.url.origin}: ${error instanceof Error ? error.message : String(error)}`,
            { url, cause: error },
          );
    try {
      let response: Awaited<ReturnType<typeof request>>;
      try {
        response = await request(exchange.url, {
          dispatcher: agent,
          method: exchange.method,
          signal: deadline.signal,
          headers: { ...exchange.headers },
          ...(exchange.body === undefined ? {} : { body: Buffer.from(exchange.body) }),
        });
      } catch (error) {
        throw failed(error);
      }
      clearTimeout(timer);
      timer = setTimeout(() => deadline.abort(timedOut), options.timeoutMs);
      const status = response.statusCode;
      let body: Buffer | undefined;
      try {
        body = await readBoundedBody(response, exchange.maxOctets);
      } catch (error) {
        throw failed(error);
      }
      if (body === undefined) {
        throw new DiscoveryClientError(
          'ERR_API_RESPONSE',
          `${url} answered more than ${exchange.maxOctets} octets`,
          { url, status },
        );
      }
      const type = response.headers['content-type'];
      return {
        status,
        contentType: (Array.isArray(type) ? (type[0] ?? '') : (type ?? ''))
          .split(';')[0]!
          .trim()
          .toLowerCase(),
        headers: response.headers,
        body: new Uint8Array(body),
      };
    } finally {
      clearTimeout(timer);
    }
  };

  return { send, close: () => agent.close() };
}

/** The JSON of a body, or undefined when it is not JSON. */
export function jsonOf(body: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body)) as unknown;
  } catch {
    return undefined;
  }
}

/** The `{"error": {"code", "message", "detail"?}}` of a refusal, or undefined. */
export function refusalOf(
  value: unknown,
): { code: string; message: string; detail: unknown } | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const error = (value as Record<string, unknown>)['error'];
  if (typeof error !== 'object' || error === null || Array.isArray(error)) return undefined;
  const { code, message, detail } = error as Record<string, unknown>;
  if (typeof code !== 'string' || typeof message !== 'string') return undefined;
  return { code, message, detail };
}
