import { readFileSync } from 'node:fs';
import { request, type Dispatcher } from 'undici';
import {
  createAttestation,
  createMapping,
  createRemoval,
  createRevocation,
  decodeAttestation,
  encodeMapping,
  encodeRemoval,
  encodeRevocation,
  type Attestation,
  type Ed25519KeyPair,
  type MspEntry,
} from '@mimi-discovery/common';

/**
 * A recipient's side of the registration API (design §8) as the tests drive it over HTTPS:
 * prove a CSI, read the code from the DP's outbox file, confirm it with a key, and publish,
 * remove or revoke signed objects. Byte strings travel as base64url without padding.
 */

/** An HTTP response of the API: its status and its parsed JSON body. */
export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
}

/** Where a DP's API is and how to reach it. */
export interface ApiTarget {
  readonly apiUrl: string | undefined;
  readonly outbox: string | undefined;
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

/** The current time in whole seconds. */
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** POSTs `body` (a JSON value, or raw text sent as is) to `route` of the API. */
export async function post(
  target: ApiTarget,
  dispatcher: Dispatcher,
  route: string,
  body: unknown,
  contentType = 'application/json',
): Promise<ApiResponse> {
  if (target.apiUrl === undefined) throw new Error('this server has no registration API');
  const response = await request(`${target.apiUrl}${route}`, {
    dispatcher,
    method: 'POST',
    headers: { 'content-type': contentType },
    body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
  const text = await response.body.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: kept as text, and the test asserting on it says so.
  }
  return { status: response.statusCode, body: parsed };
}

/** The stable error code of an API error body, or undefined. */
export function errorCode(response: ApiResponse): string | undefined {
  const body = response.body as { error?: { code?: unknown } } | undefined;
  const code = body?.error?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The last code the DP wrote to its outbox for `csi`. */
export function lastCode(outbox: string, csi: string): string {
  const lines = readFileSync(outbox, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as { csi: string; code: string });
  const line = lines.filter((l) => l.csi === csi).at(-1);
  if (line === undefined) throw new Error(`no code for ${csi} in ${outbox}`);
  return line.code;
}

/**
 * Proves control of `csi` and binds `recipient`'s key to it: `POST /v1/prove`, the code from the
 * outbox, `POST /v1/confirm`. Returns the DP's attestation.
 */
export async function attest(
  target: ApiTarget,
  dispatcher: Dispatcher,
  csi: string,
  recipient: Ed25519KeyPair,
): Promise<Attestation> {
  if (target.outbox === undefined) throw new Error('this server has no outbox');
  const proved = await post(target, dispatcher, '/v1/prove', { csi });
  if (proved.status !== 202) throw new Error(`prove ${csi}: ${JSON.stringify(proved)}`);
  const code = lastCode(target.outbox, csi);
  const confirmed = await post(target, dispatcher, '/v1/confirm', {
    csi,
    code,
    key: b64(recipient.publicKey),
  });
  if (confirmed.status !== 200) throw new Error(`confirm ${csi}: ${JSON.stringify(confirmed)}`);
  const encoded = (confirmed.body as { attestation: string }).attestation;
  return decodeAttestation(new Uint8Array(Buffer.from(encoded, 'base64url')));
}

/** An attestation signed by any key, as an independent prover (or an impostor) makes one. */
export function attestAs(
  prover: Ed25519KeyPair,
  csi: string,
  recipient: Ed25519KeyPair,
  nbf = nowSeconds(),
): Attestation {
  return createAttestation(
    { csi, key: recipient.publicKey, nbf, exp: nbf + 365 * 86_400 },
    prover.secretKey,
  );
}

/** What a mapping says besides its attestation. */
export interface MappingContent {
  readonly msps?: readonly MspEntry[];
  readonly seq?: number;
  readonly new?: boolean;
}

/** The encoded Mapping of `att.csi` to `content.msps` (default one MSP), signed by `recipient`. */
export function mappingBytes(
  att: Attestation,
  recipient: Ed25519KeyPair,
  content: MappingContent = {},
): Uint8Array {
  const iat = nowSeconds();
  return encodeMapping(
    createMapping(
      {
        csi: att.csi,
        msps: content.msps ?? [{ provider: 'chat.example', tags: ['mls'] }],
        seq: content.seq ?? 1,
        iat,
        exp: iat + 30 * 86_400,
        new: content.new ?? false,
        att,
      },
      recipient.secretKey,
    ),
  );
}

/** `POST /v1/mappings`. */
export function publishMapping(
  target: ApiTarget,
  dispatcher: Dispatcher,
  mapping: Uint8Array,
): Promise<ApiResponse> {
  return post(target, dispatcher, '/v1/mappings', { mapping: b64(mapping) });
}

/** `POST /v1/maprefs` with an encoded MapRef request as given. */
export function postMapref(
  target: ApiTarget,
  dispatcher: Dispatcher,
  request: Uint8Array,
): Promise<ApiResponse> {
  return post(target, dispatcher, '/v1/maprefs', { request: b64(request) });
}

/** `POST /v1/removals` with a Removal of `csi` up to `seq`, signed by `signer`. */
export function removeMapping(
  target: ApiTarget,
  dispatcher: Dispatcher,
  csi: string,
  signer: Ed25519KeyPair,
  seq: number,
): Promise<ApiResponse> {
  const removal = createRemoval({ csi, seq, iat: nowSeconds() }, signer.secretKey);
  return postRemoval(target, dispatcher, encodeRemoval(removal));
}

/** `POST /v1/removals` with an encoded Removal as given. */
export function postRemoval(
  target: ApiTarget,
  dispatcher: Dispatcher,
  removal: Uint8Array,
): Promise<ApiResponse> {
  return post(target, dispatcher, '/v1/removals', { removal: b64(removal) });
}

/** `POST /v1/revocations` with a Revocation of `csi` before `before`, signed by `csip`. */
export function revoke(
  target: ApiTarget,
  dispatcher: Dispatcher,
  csi: string,
  csip: Ed25519KeyPair,
  before: number,
): Promise<ApiResponse> {
  const revocation = createRevocation({ csi, before, iat: nowSeconds() }, csip.secretKey);
  return post(target, dispatcher, '/v1/revocations', {
    revocation: b64(encodeRevocation(revocation)),
  });
}
