import {
  API_CLIENT_FAULT_CODES,
  createAttestation,
  createMapping,
  createRemoval,
  createRevocation,
  encodeMapping,
  type Attestation,
  type Ed25519KeyPair,
  type MspEntry,
} from '@mimi-discovery/common';
import {
  RegistrationClientError,
  lastOutboxCode,
  type RegistrationClient,
  type RegistrationResponse,
} from '@mimi-discovery/authoritative';

/**
 * A recipient's side of the registration API (design §8) as the tests drive it, through the
 * API's client (`createRegistrationClient` of @mimi-discovery/authoritative): prove a CSI, read
 * the code from the DP's outbox, confirm it with a key, and sign mappings, removals and
 * revocations to send. {@link answerOf} turns a client call into the status and body the API
 * answered, so that a test asserts on a refusal as on a success.
 */

/** A DP's registration API as the fixtures give it: its URL, its outbox and a client of it. */
export interface RegistrationEndpoint {
  readonly url: string;
  /** The file the DP writes one-time codes to; undefined when it has no outbox channel. */
  readonly outbox: string | undefined;
  readonly client: RegistrationClient;
}

/**
 * What the API answered to a client call: the HTTP status, and the result of a success or the
 * body of a refusal (`{error: {code, message, detail?}}`).
 */
export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
}

/** The current time in whole seconds. */
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/**
 * The API's answer to `call`, a success or a refusal; a fault of the exchange (no response, or
 * not the API's) rejects.
 */
export async function answerOf(call: Promise<RegistrationResponse<unknown>>): Promise<ApiResponse> {
  try {
    const { status, result } = await call;
    return { status, body: result };
  } catch (error) {
    if (!(error instanceof RegistrationClientError) || error.status === undefined) throw error;
    const { code, message, detail, status } = error;
    if ((API_CLIENT_FAULT_CODES as readonly string[]).includes(code)) throw error;
    return {
      status,
      body: { error: { code, message, ...(detail === undefined ? {} : { detail }) } },
    };
  }
}

/** The stable error code of an API error body, or undefined. */
export function errorCode(response: ApiResponse): string | undefined {
  const body = response.body as { error?: { code?: unknown } } | undefined;
  const code = body?.error?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The DP's API of a fixture server; throws when it serves none. */
export function apiOf(server: {
  readonly api: RegistrationEndpoint | undefined;
  readonly zone: string;
}): RegistrationEndpoint {
  if (server.api === undefined) throw new Error(`the server of ${server.zone} has no API`);
  return server.api;
}

/** The code the DP last wrote to its outbox file for `csi` (canonical); throws when none. */
export async function outboxCode(outbox: string, csi: string): Promise<string> {
  const code = await lastOutboxCode(outbox, csi);
  if (code === undefined) throw new Error(`no code for ${csi} in ${outbox}`);
  return code;
}

/**
 * An attestation and the CSI it attests, as its holder keeps them (the CLI's key file does the
 * same): an attestation does not carry its CSI (docs/protocol.md §4). The extra `csi` property
 * is ignored wherever the attestation is encoded or embedded.
 */
export type HeldAttestation = Attestation & { readonly csi: string };

/**
 * Proves control of `csi` and binds `recipient`'s key to it: `prove`, the code from the outbox,
 * `confirm`. Returns the DP's attestation, held with the canonical CSI.
 */
export async function attest(
  api: RegistrationEndpoint,
  csi: string,
  recipient: Ed25519KeyPair,
): Promise<HeldAttestation> {
  if (api.outbox === undefined) throw new Error('this server has no outbox');
  const proved = await api.client.prove(csi);
  const code = await outboxCode(api.outbox, proved.result.csi);
  const confirmed = await api.client.confirm({ csi, code, key: recipient.publicKey });
  return { ...confirmed.result.attestation, csi: proved.result.csi };
}

/** An attestation signed by any key, as an independent prover (or an impostor) makes one. */
export function attestAs(
  prover: Ed25519KeyPair,
  csi: string,
  recipient: Ed25519KeyPair,
  nbf = nowSeconds(),
): HeldAttestation {
  const attestation = createAttestation(
    { csi, key: recipient.publicKey, nbf, exp: nbf + 365 * 86_400 },
    prover.secretKey,
  );
  return { ...attestation, csi };
}

/** What a mapping says besides its attestation. */
export interface MappingContent {
  readonly msps?: readonly MspEntry[];
  readonly seq?: number;
  readonly new?: boolean;
}

/** The encoded Mapping of `att.csi` to `content.msps` (default one MSP), signed by `recipient`. */
export function mappingBytes(
  att: HeldAttestation,
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

/**
 * A publication request for the registration API: the encoded Mapping of `att.csi` (as
 * {@link mappingBytes}) and that CSI, which the mapping does not carry.
 */
export function mappingOf(
  att: HeldAttestation,
  recipient: Ed25519KeyPair,
  content: MappingContent = {},
): { readonly csi: string; readonly mapping: Uint8Array } {
  return { csi: att.csi, mapping: mappingBytes(att, recipient, content) };
}

/**
 * Binds `recipient`'s key to `csi` ({@link attest}) and publishes a mapping of it
 * ({@link mappingBytes}) through `api`: what the API answered, and the encoded mapping sent.
 */
export async function attestAndPublish(
  api: RegistrationEndpoint,
  csi: string,
  recipient: Ed25519KeyPair,
  content: MappingContent = {},
): Promise<{ readonly response: ApiResponse; readonly mapping: Uint8Array }> {
  const att = await attest(api, csi, recipient);
  const mapping = mappingBytes(att, recipient, content);
  const response = await answerOf(api.client.publishMapping({ csi: att.csi, mapping }));
  return { response, mapping };
}

/** Removes the mappings of `csi` by `signer` up to `seq`: a Removal signed now. */
export function removeMapping(
  client: RegistrationClient,
  csi: string,
  signer: Ed25519KeyPair,
  seq: number,
): Promise<ApiResponse> {
  return answerOf(client.remove(createRemoval({ csi, seq, iat: nowSeconds() }, signer.secretKey)));
}

/** Revokes the attestations of `csi` before `before`: a Revocation signed now by `csip`. */
export function revoke(
  client: RegistrationClient,
  csi: string,
  csip: Ed25519KeyPair,
  before: number,
): Promise<ApiResponse> {
  return answerOf(
    client.revoke(createRevocation({ csi, before, iat: nowSeconds() }, csip.secretKey)),
  );
}
