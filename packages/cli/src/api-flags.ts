import { readFile } from 'node:fs/promises';
import { ApiClientError } from '@mimi-discovery/common';
import { failure, usageError, type CliErrorCode } from './errors.js';

/**
 * The flags that name a JSON API (`recipient --api`, `lookup --resolver`) and its CA (`--ca`),
 * and what the command makes of its clients' errors (`createRegistrationClient` of
 * @mimi-discovery/authoritative, `createDiscoveryClient` of @mimi-discovery/resolver):
 *
 * - the API's refusal keeps the API's code and message (exit 2), with `; retry after N s` when
 *   the API said when to retry, so the user reads exactly what the server said;
 * - no response, or none in time: `cannot reach <origin>: <why>` with the command's code for it;
 * - a response that is not the API's: the client's sentence with the command's code for it.
 */

/** The command's codes for the faults of one API's exchanges. */
export interface ApiFaultCodes {
  readonly unreachable: CliErrorCode;
  readonly response: CliErrorCode;
}

/** The base URL given to `flag`: a usage error (exit 1) unless it is an http or https URL. */
export function apiUrl(flag: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError('ERR_USAGE', `${flag} ${JSON.stringify(value)}: not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw usageError('ERR_USAGE', `${flag} ${JSON.stringify(value)}: expected an https URL`);
  }
  return url;
}

/**
 * The PEM of `--ca FILE` (`file` resolved by the caller), trusted instead of the system's roots;
 * a usage error (exit 1) when it cannot be read.
 */
export async function readCaFile(flag: string, given: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw usageError('ERR_USAGE', `${flag} ${given}: cannot read it`, error);
  }
}

/** `error` of a client of the API at `url` as the command reports it (see the module comment). */
export function apiFailure(error: unknown, url: URL, codes: ApiFaultCodes): unknown {
  if (!(error instanceof ApiClientError)) return error;
  switch (error.code) {
    case 'ERR_API_UNREACHABLE':
    case 'ERR_API_TIMEOUT':
      return failure(codes.unreachable, `cannot reach ${url.origin}`, error.cause);
    case 'ERR_API_RESPONSE':
      return failure(codes.response, error.message);
    default: {
      const wait = error.retryAfter === undefined ? '' : `; retry after ${error.retryAfter} s`;
      return failure(error.code, `${error.message}${wait}`);
    }
  }
}
