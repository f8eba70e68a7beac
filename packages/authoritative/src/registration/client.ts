import { REGISTRATION_ROUTES } from './routes.js';
import {
  ApiClientError,
  attestsCsi,
  createApiClient,
  CREDENTIAL_FORMATS,
  decodeAttestation,
  encodeCredentialRequest,
  encodeMapping,
  encodeMaprefRequest,
  encodeRemoval,
  encodeRevocation,
  isJsonObject,
  parseCsi,
  type ApiAnswer,
  type ApiEndpointOptions,
  type Attestation,
  type CredentialFormat,
  type CredentialRequest,
  type Csi,
  type Mapping,
  type MaprefRequest,
  type Removal,
  type Revocation,
} from '@mimi-discovery/common';
import { REGISTRATION_ERRORS, type RegistrationErrorCode } from './registration-error.js';
import type {
  ConfirmResult,
  CredentialResult,
  ProveResult,
  PublishResult,
  RevokeResult,
} from './registration.js';

/**
 * A client of a DP's registration API (design §8; the routes are in registration-api.ts): the
 * recipient's side of proving a CSI and publishing, withdrawing or removing what it signed, and a
 * CSIP's revocation. What the CLI's `recipient` commands, the examples and the tests call.
 *
 * Each method sends one request and resolves with the HTTP status and the route's result, typed
 * as the `Registrar`'s own results (so an app can swap the in-process registrar for the
 * API). Signed objects go as given — a `Mapping`, `MaprefRequest`, `Removal` or `Revocation`
 * is encoded first, bytes are sent as they are — so keys never reach this module.
 *
 * A refusal rejects with a {@link RegistrationClientError} carrying the API's stable code
 * (`ERR_STALE_SEQ`, `ERR_RATE_LIMITED` with `retryAfter`, …; registration-error.ts), its HTTP
 * status and `detail`; an exchange that fails, with `ERR_API_UNREACHABLE`, `ERR_API_TIMEOUT` or
 * `ERR_API_RESPONSE` (a response that is not the API's: too large, not JSON, the wrong shape).
 *
 * ```ts
 * const api = createRegistrationClient({ url: 'https://dp.example:8445', ca: caPem });
 * await api.prove('+44 20 7946 0018'); // { status: 202, result: { csi, expiresAt, channel } }
 * const { result } = await api.confirm({ csi, code, key: keyPair.publicKey });
 * const mapping = createMapping({ csi, …, att: result.attestation }, keyPair.secretKey);
 * await api.publishMapping({ csi, mapping });
 * await api.close();
 * ```
 */

/**
 * Time allowed to connect, then for the response headers, then for the body, in milliseconds.
 * A registration is answered once it is durable (design §8), which takes milliseconds.
 */
export const REGISTRATION_CLIENT_TIMEOUT_MS = 15_000;
/**
 * Largest response body read, in octets. The largest answer is an attestation of a few hundred
 * octets; a refusal is a code and a sentence.
 */
export const MAX_REGISTRATION_RESPONSE_OCTETS = 64 * 1024;

/**
 * Connections a client opens to the API at once; further requests wait in the client. A quarter
 * of the API's share per client (`API_CONNECTIONS_PER_CLIENT`, 64), so a client sending many
 * requests at once never meets that bound, and each connection carries one request.
 */
export const REGISTRATION_CLIENT_CONNECTIONS = 16;

const CODES: ReadonlySet<string> = new Set(Object.keys(REGISTRATION_ERRORS));

/**
 * A refusal of the registration API (`code` one of `REGISTRATION_ERRORS`), or a fault of the
 * exchange (`ERR_API_UNREACHABLE`, `ERR_API_TIMEOUT`, `ERR_API_RESPONSE`).
 */
export class RegistrationClientError extends ApiClientError<RegistrationErrorCode> {}

/**
 * Where the API is and how to reach it. Defaults: {@link REGISTRATION_CLIENT_TIMEOUT_MS},
 * {@link MAX_REGISTRATION_RESPONSE_OCTETS}, {@link REGISTRATION_CLIENT_CONNECTIONS}.
 */
export type RegistrationClientOptions = ApiEndpointOptions;

/** A success of the API: the HTTP status (202 Accepted, 201 Created, 200) and the result. */
export interface RegistrationResponse<T> {
  readonly status: number;
  readonly result: T;
}

/** The registration API of one DP. */
export interface RegistrationClient {
  /** `POST /v1/prove`: the DP sends a one-time code to the CSI (given as typed). */
  prove(csi: string): Promise<RegistrationResponse<ProveResult>>;
  /**
   * `POST /v1/confirm`: the code and the public key get an attestation. The attestation is
   * decoded and checked to be for this key and, by its signature, this CSI before it is
   * returned (whatever the local clock says: its times are the DP's).
   */
  confirm(input: {
    readonly csi: string;
    readonly code: string;
    readonly key: Uint8Array;
  }): Promise<RegistrationResponse<ConfirmResult>>;
  /**
   * `POST /v1/mappings`: publishes a signed mapping of `csi`. A Mapping does not carry its CSI
   * (docs/protocol.md §4), so the request names it; the DP verifies the mapping for it.
   */
  publishMapping(input: {
    readonly csi: string;
    readonly mapping: Mapping | Uint8Array;
  }): Promise<RegistrationResponse<PublishResult>>;
  /**
   * `POST /v1/maprefs`: adds the MAPREF a signed request names (`target`), or withdraws the
   * CSI's MAPREF records (`target: null`).
   */
  publishMapref(request: MaprefRequest | Uint8Array): Promise<RegistrationResponse<PublishResult>>;
  /** `POST /v1/removals`: removes the signer's mappings up to the removal's `seq`. */
  remove(removal: Removal | Uint8Array): Promise<RegistrationResponse<PublishResult>>;
  /** `POST /v1/revocations`: a CSIP's revocation of the CSI's attestations before `before`. */
  revoke(revocation: Revocation | Uint8Array): Promise<RegistrationResponse<RevokeResult>>;
  /**
   * `POST /v1/credentials`: the DP's prover gives the attestation of a signed credential request
   * back as an X.509 certificate (with the prover certificate) or an SD-JWT. The response is
   * checked for shape only: check the credential itself with `verifyCredential`.
   */
  credential(input: {
    readonly csi: string;
    readonly request: CredentialRequest | Uint8Array;
  }): Promise<RegistrationResponse<CredentialResult>>;
  /** Closes the client's connections. */
  close(): Promise<void>;
}

/**
 * A client of the registration API at `options.url`. Throws a `TypeError` for a URL that is not
 * http or https.
 */
export function createRegistrationClient(options: RegistrationClientOptions): RegistrationClient {
  const timeoutMs = options.timeoutMs ?? REGISTRATION_CLIENT_TIMEOUT_MS;
  const api = createApiClient({
    url: options.url,
    ...(options.ca === undefined ? {} : { ca: options.ca }),
    connectTimeoutMs: timeoutMs,
    timeoutMs,
    maxResponseOctets: options.maxResponseOctets ?? MAX_REGISTRATION_RESPONSE_OCTETS,
    connections: options.connections ?? REGISTRATION_CLIENT_CONNECTIONS,
    codes: CODES,
    error: RegistrationClientError,
    ...(options.onResponse === undefined ? {} : { onResponse: options.onResponse }),
  });

  /** Posts `body` to `route`; a 2xx must be a JSON object, which `parse` checks further. */
  const post = async <T>(
    route: keyof typeof REGISTRATION_ROUTES,
    body: Readonly<Record<string, string>>,
    parse: (value: Record<string, unknown>, bad: (what: string) => never) => T,
  ): Promise<RegistrationResponse<T>> => {
    const answer = await api.send({ method: 'POST', path: REGISTRATION_ROUTES[route].path, body });
    if (answer.status < 200 || answer.status > 299) {
      throw fault(answer, `${answer.url} answered HTTP ${answer.status}`);
    }
    if (!isJsonObject(answer.value)) {
      throw fault(answer, `${answer.url} answered HTTP ${answer.status} without a JSON object`);
    }
    const bad = (what: string): never => {
      throw fault(answer, what);
    };
    return { status: answer.status, result: parse(answer.value, bad) };
  };

  return {
    prove: (csi) =>
      post('prove', { csi }, (value, bad) => ({
        csi: canonical(value['csi']) ?? bad("the DP's response has no canonical csi"),
        expiresAt: whole(value['expiresAt']) ?? bad("the DP's response has no expiresAt"),
        channel: text(value['channel']) ?? bad("the DP's response has no channel"),
      })),
    confirm: (input) =>
      post('confirm', { csi: input.csi, code: input.code, key: b64(input.key) }, (value, bad) => {
        const encoded =
          bytes(value['attestation']) ?? bad("the DP's response has no base64url attestation");
        const attestation =
          decodes(encoded) ?? bad('the DP returned an attestation that does not decode');
        const csi = parsed(input.csi);
        if (
          csi === undefined ||
          !Buffer.from(attestation.key).equals(Buffer.from(input.key)) ||
          !attestsCsi(attestation, csi)
        ) {
          bad('the DP returned an attestation for another CSI or key');
        }
        return {
          attestation,
          encoded,
          prover: attestation.prover,
          nbf: attestation.nbf,
          exp: attestation.exp,
        };
      }),
    publishMapping: (input) =>
      post(
        'mappings',
        { csi: input.csi, mapping: b64(encoded(input.mapping, encodeMapping)) },
        placed,
      ),
    publishMapref: (request) =>
      post('maprefs', { request: b64(encoded(request, encodeMaprefRequest)) }, placed),
    remove: (removal) =>
      post('removals', { removal: b64(encoded(removal, encodeRemoval)) }, placed),
    revoke: (revocation) =>
      post('revocations', { revocation: b64(encoded(revocation, encodeRevocation)) }, (v, bad) => ({
        ...placed(v, bad),
        removed: whole(v['removed']) ?? bad("the DP's response has no count of removed records"),
      })),
    credential: (input) =>
      post(
        'credentials',
        { csi: input.csi, request: b64(encoded(input.request, encodeCredentialRequest)) },
        (value, bad) => {
          const format = text(value['format']);
          if (!(CREDENTIAL_FORMATS as readonly (string | undefined)[]).includes(format)) {
            bad("the DP's response has no known credential format");
          }
          const credential =
            text(value['credential']) ?? bad("the DP's response has no credential");
          const issuer = text(value['issuer']);
          if (format === 'x509' && issuer === undefined) {
            bad("the DP's X.509 response has no issuer certificate");
          }
          return {
            format: format as CredentialFormat,
            credential,
            ...(issuer === undefined ? {} : { issuer }),
          };
        },
      ),
    close: () => api.close(),
  };
}

function fault(answer: ApiAnswer, message: string): RegistrationClientError {
  return new RegistrationClientError('ERR_API_RESPONSE', message, {
    url: answer.url,
    status: answer.status,
  });
}

/** Where a change was written: `{zone, name, serial}`. */
function placed(value: Record<string, unknown>, bad: (what: string) => never): PublishResult {
  return {
    zone: text(value['zone']) ?? bad("the DP's response has no zone"),
    name: text(value['name']) ?? bad("the DP's response has no name"),
    serial: whole(value['serial']) ?? bad("the DP's response has no serial"),
  };
}

function encoded<T>(value: T | Uint8Array, encode: (value: T) => Uint8Array): Uint8Array {
  return value instanceof Uint8Array ? value : encode(value);
}

function b64(value: Uint8Array): string {
  return Buffer.from(value).toString('base64url');
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** A whole number of JSON (seconds, a serial, a count). */
function whole(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** Strict base64url without padding, non-empty, as the API writes byte strings. */
function bytes(value: unknown): Uint8Array | undefined {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]+$/.test(value)) return undefined;
  return new Uint8Array(Buffer.from(value, 'base64url'));
}

/** `value` when it is a CSI in its canonical spelling; undefined otherwise. */
function canonical(value: unknown): Csi | undefined {
  return typeof value === 'string' && parsed(value) === value ? (value as Csi) : undefined;
}

/** The canonical CSI of `input`, or undefined when it is not a CSI. */
function parsed(input: string): Csi | undefined {
  try {
    return parseCsi(input);
  } catch {
    return undefined;
  }
}

function decodes(encoded: Uint8Array): Attestation | undefined {
  try {
    return decodeAttestation(encoded);
  } catch {
    return undefined;
  }
}
