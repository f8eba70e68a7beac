import { readFile } from 'node:fs/promises';
import { Agent, request } from 'undici';
import { failure, usageError } from './errors.js';

/**
 * A client of a DP's registration API (design §8; routes in packages/authoritative's
 * registration-api.ts): JSON `POST`s over HTTPS, byte strings in base64url. `--ca FILE` adds a
 * local CA to the roots the connection trusts (undici `Agent({ connect: { ca } })`).
 *
 * A refusal is the server's `{"error": {"code", "message"}}`; it becomes a `CliError` with the
 * server's code and message (exit 2), so the user reads exactly what the DP said.
 */

/** Time allowed for the response headers, and then for the body, in milliseconds. */
export const API_TIMEOUT_MS = 15_000;

/** A connection to one registration API. */
export interface RegistrationClient {
  /** Posts `body` to `path` (`/v1/prove`) and returns the JSON object of a 2xx response. */
  post(path: string, body: Readonly<Record<string, string>>): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/**
 * A client of the API at `api` (`https://dp.example:8445`, or with a path prefix). Throws a
 * usage error (exit 1) for a URL that is not http or https, or a `--ca` file that cannot be read.
 */
export async function createRegistrationClient(
  api: string,
  caFile: string | undefined,
): Promise<RegistrationClient> {
  let base: URL;
  try {
    base = new URL(api);
  } catch {
    throw usageError('ERR_USAGE', `--api ${JSON.stringify(api)}: not a URL`);
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw usageError('ERR_USAGE', `--api ${JSON.stringify(api)}: expected an https URL`);
  }
  let ca: Buffer | undefined;
  if (caFile !== undefined) {
    try {
      ca = await readFile(caFile);
    } catch (error) {
      throw usageError('ERR_USAGE', `--ca ${caFile}: cannot read it`, error);
    }
  }
  const agent = new Agent({
    headersTimeout: API_TIMEOUT_MS,
    bodyTimeout: API_TIMEOUT_MS,
    connectTimeout: API_TIMEOUT_MS,
    ...(ca !== undefined ? { connect: { ca } } : {}),
  });
  const prefix = base.href.endsWith('/') ? base.href : `${base.href}/`;
  return {
    async post(path, body) {
      const url = new URL(path.replace(/^\//, ''), prefix);
      let status: number;
      let text: string;
      let retryAfter: string | undefined;
      try {
        const response = await request(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify(body),
          dispatcher: agent,
        });
        status = response.statusCode;
        const header = response.headers['retry-after'];
        retryAfter = Array.isArray(header) ? header[0] : header;
        text = await response.body.text();
      } catch (error) {
        throw failure('ERR_CLI_API_UNREACHABLE', `cannot reach ${url.origin}`, error);
      }
      const json = parseObject(text);
      if (status >= 200 && status <= 299) {
        if (json === undefined) {
          throw failure(
            'ERR_CLI_API_RESPONSE',
            `${url.href} answered HTTP ${status} without a JSON object`,
          );
        }
        return json;
      }
      const error = json?.['error'];
      if (typeof error === 'object' && error !== null) {
        const { code, message } = error as Record<string, unknown>;
        if (typeof code === 'string' && typeof message === 'string') {
          const wait = retryAfter !== undefined ? `; retry after ${retryAfter} s` : '';
          throw failure(code, `${message}${wait}`);
        }
      }
      throw failure('ERR_CLI_API_RESPONSE', `${url.href} answered HTTP ${status}`);
    },
    close: () => agent.close(),
  };
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
