import { isUndiciTimeout, readBoundedBody } from '@mimi-discovery/common';
import { Agent, request } from 'undici';

/**
 * Forwarding to gateways and ODoH targets: one pooled undici `Agent` for every origin, trusting
 * the config's CA (a local CA in the demo) or the system's roots, with bounds on each forward:
 *
 * - the TCP connection and TLS handshake within `connectTimeoutMs`;
 * - the whole exchange, request sent to response read, within `timeoutMs` of its start (fixed
 *   then: a gateway that answers one octet at a time cannot push it back), undici's own header
 *   and body deadlines besides, which fail sooner on a silent connection;
 * - a response body of at most `maxResponseOctets`, refused on `content-length` before any of it
 *   is read, else as soon as it grows past the bound;
 * - at most `connections` connections per origin; a forward waits for one within its timeout.
 *
 * The request carries exactly the headers it is given (the relay's own, fixed: `content-type`,
 * `accept`) and what HTTP/1.1 framing needs (`host`, `content-length`, `connection`); undici's
 * `request` adds no `user-agent`. Redirects are not followed: a 3xx goes back to the client as
 * any other status.
 *
 * Outcomes are a union, never an exception: a forward that fails tells why, for the status the
 * client gets (504, 502) and for the metrics.
 */

/** What the forwarder is bounded by. */
export interface ForwarderOptions {
  /** PEM CA certificates trusted for the gateways instead of the system's roots. */
  readonly ca?: string | Uint8Array | undefined;
  readonly connectTimeoutMs: number;
  readonly timeoutMs: number;
  readonly maxResponseOctets: number;
  /** Most connections per origin. */
  readonly connections: number;
  /** The local address connections leave from; absent: the system chooses. */
  readonly localAddress?: string | undefined;
}

/** One request to a gateway or target. */
export interface ForwardRequest {
  readonly url: URL;
  readonly method: 'GET' | 'POST';
  /** Every header sent, besides framing. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
}

/** What a forward came to. */
export type ForwardOutcome =
  | {
      readonly kind: 'response';
      readonly status: number;
      readonly contentType: string | undefined;
      readonly cacheControl: string | undefined;
      readonly body: Uint8Array;
    }
  /** No whole response within the deadlines. */
  | { readonly kind: 'timeout' }
  /** No response: refused, reset, TLS failed (an untrusted certificate). */
  | { readonly kind: 'unreachable'; readonly code: string | undefined }
  /** A response body over `maxResponseOctets`. */
  | { readonly kind: 'too-large' };

/** A pool of connections to gateways. */
export interface Forwarder {
  forward(request: ForwardRequest): Promise<ForwardOutcome>;
  /** Closes every connection; forwards under way fail. */
  close(): Promise<void>;
}

/** A forwarder over a new undici `Agent`. */
export function createForwarder(options: ForwarderOptions): Forwarder {
  const { ca, timeoutMs, maxResponseOctets, localAddress } = options;
  const agent = new Agent({
    connectTimeout: options.connectTimeoutMs,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connections: options.connections,
    ...(localAddress === undefined ? {} : { localAddress }),
    ...(ca === undefined ? {} : { connect: { ca: typeof ca === 'string' ? ca : Buffer.from(ca) } }),
  });

  const forward = async (req: ForwardRequest): Promise<ForwardOutcome> => {
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeoutMs);
    try {
      const response = await request(req.url, {
        dispatcher: agent,
        method: req.method,
        headers: { ...req.headers },
        signal: deadline.signal,
        ...(req.body === undefined ? {} : { body: req.body }),
      });
      const body = await readBoundedBody(response, maxResponseOctets);
      if (body === undefined) return { kind: 'too-large' };
      return {
        kind: 'response',
        status: response.statusCode,
        contentType: single(response.headers['content-type']),
        cacheControl: single(response.headers['cache-control']),
        body,
      };
    } catch (error) {
      if (deadline.signal.aborted || isUndiciTimeout(error)) return { kind: 'timeout' };
      const code = (error as { code?: unknown } | null)?.code;
      return { kind: 'unreachable', code: typeof code === 'string' ? code : undefined };
    } finally {
      clearTimeout(timer);
    }
  };

  return { forward, close: () => agent.destroy() };
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
