import type { IncomingHttpHeaders } from 'node:http';

/**
 * Reading an HTTP response got with undici's `request`, as every HTTP client of the project
 * does (the JSON API client, the oblivious client's transport, the relay's forwarder): the body
 * within a size bound, undici's own deadlines told apart from other failures, and `Retry-After`.
 */

/** What {@link readBoundedBody} reads: the headers and the body of undici's `request`. */
export interface BoundedResponse {
  readonly headers: IncomingHttpHeaders;
  readonly body: AsyncIterable<Uint8Array> & { destroy(): unknown };
}

/**
 * The whole body, or undefined (the body destroyed) once it passes `max` octets: from
 * `content-length` before reading, else while reading. A hostile or broken server cannot make
 * the client hold an unbounded body. A failure while reading is thrown as it is.
 */
export async function readBoundedBody(
  response: BoundedResponse,
  max: number,
): Promise<Buffer | undefined> {
  const declared = Number(response.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    response.body.destroy();
    return undefined;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.length;
    if (size > max) {
      response.body.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** Undici's own deadlines: connect, headers, body (`UND_ERR_…_TIMEOUT`). */
export function isUndiciTimeout(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  );
}

/**
 * `Retry-After` in whole seconds (our APIs send delta-seconds, RFC 9110 §10.2.3); undefined for
 * an HTTP-date or none.
 */
export function retryAfterOf(headers: IncomingHttpHeaders): number | undefined {
  const header = headers['retry-after'];
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && /^\d{1,9}$/.test(value) ? Number(value) : undefined;
}
