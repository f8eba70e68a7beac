import { fromBase64url as decodeBase64url, toBase64url } from '../src/protocol/bytes.js';

/**
 * The JSON APIs as a browser page calls them (the DP's registration API, the resolver's
 * discovery API), on the page's own origin: JSON in, JSON out, and every refusal as the
 * `{"error": {"code", "message", "detail"?}}` body the servers send (registration-api.ts,
 * json-api.ts), turned into an {@link ApiError} the page can show in plain words.
 */

/** Octets of the largest response a page reads; the servers' responses are far smaller. */
export const MAX_RESPONSE_OCTETS = 1024 * 1024;
/** How long a page waits for an answer before telling the person it failed. */
export const REQUEST_TIMEOUT_MS = 20_000;

/** A refusal from the server, or a failure to reach it (`code` `ERR_NETWORK`, `ERR_TIMEOUT`). */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** POSTs `body` as JSON to `path` and returns the parsed JSON answer. */
export function postJson(path: string, body: unknown): Promise<unknown> {
  return call(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** GETs `path` and returns the parsed JSON answer. */
export function getJson(path: string): Promise<unknown> {
  return call(path, { method: 'GET', headers: { accept: 'application/json' } });
}

async function call(path: string, init: RequestInit): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(path, {
      ...init,
      credentials: 'omit',
      cache: 'no-store',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'TimeoutError') {
      throw new ApiError('ERR_TIMEOUT', 'The server did not answer in time.', 0);
    }
    throw new ApiError('ERR_NETWORK', 'The server could not be reached.', 0);
  }
  const text = await response.text();
  if (text.length > MAX_RESPONSE_OCTETS) {
    throw new ApiError(
      'ERR_RESPONSE_TOO_LARGE',
      'The server sent an answer too large to read.',
      response.status,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(
      'ERR_BAD_RESPONSE',
      'The server sent an answer that is not JSON.',
      response.status,
    );
  }
  if (response.ok) return value;
  const error = isObject(value) && isObject(value['error']) ? value['error'] : {};
  const code = typeof error['code'] === 'string' ? error['code'] : `HTTP_${response.status}`;
  const message = typeof error['message'] === 'string' ? error['message'] : response.statusText;
  const detail = typeof error['detail'] === 'string' ? error['detail'] : undefined;
  throw new ApiError(code, message, response.status, detail);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Bytes as base64url without padding (RFC 4648 §5), as the APIs carry them. */
export { toBase64url };

/** Canonical unpadded base64url back to bytes; throws on anything else. */
export function fromBase64url(text: string): Uint8Array {
  const bytes = decodeBase64url(text);
  if (bytes === undefined) throw new Error('not canonical unpadded base64url');
  return bytes;
}
