import { writeFileSync } from 'node:fs';
import { TokenChallenge, publicVerif } from '@cloudflare/privacypass-ts';
import { request, type Agent } from 'undici';
import {
  OHTTP_REQUEST_TYPE,
  OHTTP_RESPONSE_TYPE,
  decapsulateResponse,
  decodeBhttpResponse,
  decodeKeyConfigs,
  encapsulateRequest,
  encodeBhttpRequest,
  encodePublicKeyFile,
  type BhttpRequest,
  type BhttpResponse,
  type OhttpKeyConfig,
} from '@mimi-discovery/common';

/**
 * What the gateway's tests play besides the gateway: a Privacy Pass issuer (token type 2, with
 * `@cloudflare/privacypass-ts`, the library the issuer uses) and the client side of Oblivious
 * HTTP, sending straight to the gateway as a relay would.
 */

/** A type-2 issuer key and the tokens it signs. */
export interface TestIssuer {
  readonly name: string;
  /** The token key's SPKI (RFC 9578 §6.5). */
  readonly spki: Uint8Array;
  /** A token for `challenge` (the TokenChallenge octets of a `www-authenticate`). */
  issue(challenge: Uint8Array): Promise<Uint8Array>;
}

/** A new issuer key (RSA-PSS 2048, RSABSSA-SHA384-PSS-Deterministic) of issuer `name`. */
export async function createTestIssuer(name: string): Promise<TestIssuer> {
  const { BlindRSAMode, Client, Issuer, getPublicKeyBytes } = publicVerif;
  const pair = await Issuer.generateKey(BlindRSAMode.PSS, {
    modulusLength: 2048,
    publicExponent: Uint8Array.of(1, 0, 1),
  });
  const issuer = new Issuer(BlindRSAMode.PSS, name, pair.privateKey, pair.publicKey);
  const spki = await getPublicKeyBytes(pair.publicKey);
  return {
    name,
    spki,
    async issue(challenge) {
      const client = new Client(BlindRSAMode.PSS);
      const tokenRequest = await client.createTokenRequest(
        TokenChallenge.deserialize(challenge),
        spki,
      );
      const response = await issuer.issue(tokenRequest);
      return (await client.finalize(response)).serialize();
    },
  };
}

/** Writes the public-key file of `issuers`' keys, each valid from `notBefore` to `notAfter`. */
export function writeIssuerKeysFile(
  path: string,
  keys: ReadonlyArray<{ spki: Uint8Array; notBefore: number; notAfter: number }>,
): void {
  writeFileSync(
    path,
    encodePublicKeyFile(
      keys.map((k) => ({
        kind: 'private-token' as const,
        config: k.spki,
        notBefore: k.notBefore,
        notAfter: k.notAfter,
      })),
    ),
  );
}

/** The gateway's key configs, from `GET /.well-known/ohttp-gateway`. */
export async function fetchKeyConfigs(
  apiUrl: string,
  dispatcher: Agent,
): Promise<OhttpKeyConfig[]> {
  const response = await request(`${apiUrl}/.well-known/ohttp-gateway`, { dispatcher });
  if (response.statusCode !== 200) throw new Error(`key fetch: ${response.statusCode}`);
  return decodeKeyConfigs(new Uint8Array(await response.body.arrayBuffer()));
}

/** What the gateway answered to one encapsulated request. */
export type OhttpReply =
  | { readonly kind: 'inner'; readonly response: BhttpResponse }
  | {
      readonly kind: 'outer';
      readonly status: number;
      readonly contentType: string;
      readonly body: string;
    };

/** Sends `inner` encapsulated to `config`, and opens the answer. */
export async function sendOhttp(
  apiUrl: string,
  dispatcher: Agent,
  config: OhttpKeyConfig,
  inner: BhttpRequest,
): Promise<OhttpReply> {
  const { message, context } = await encapsulateRequest(config, encodeBhttpRequest(inner));
  const response = await request(`${apiUrl}/.well-known/ohttp-gateway`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': OHTTP_REQUEST_TYPE },
    body: Buffer.from(message),
  });
  const contentType = String(response.headers['content-type'] ?? '');
  const body = new Uint8Array(await response.body.arrayBuffer());
  if (response.statusCode !== 200 || contentType !== OHTTP_RESPONSE_TYPE) {
    return {
      kind: 'outer',
      status: response.statusCode,
      contentType,
      body: Buffer.from(body).toString('utf8'),
    };
  }
  return { kind: 'inner', response: decodeBhttpResponse(await decapsulateResponse(context, body)) };
}

/** An inner request to the gateway's authority. */
export function innerRequest(
  method: string,
  path: string,
  headers: [string, string][] = [],
  body: Uint8Array = new Uint8Array(),
): BhttpRequest {
  return { method, scheme: 'https', authority: 'resolver.test', path, headers, body };
}

/** The values of header `name` of an inner response. */
export function headerValues(response: BhttpResponse, name: string): string[] {
  return response.headers.filter(([n]) => n === name).map(([, v]) => v);
}

/** The body of an inner response as text. */
export function bodyText(response: BhttpResponse): string {
  return Buffer.from(response.body).toString('utf8');
}
