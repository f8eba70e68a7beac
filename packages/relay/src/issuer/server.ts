import {
  TokenError,
  blindedMessageInRange,
  connectionLimitsFor,
  issueToken,
  jsonErrorBody,
  readBody,
  sendBody,
  sendJson,
  silentLogger,
  startAdminServer,
  startHttpServer,
  systemClock,
  tokenRequestKeyId,
  type AdminServer,
  type Clock,
  type ConnectionScheduler,
  type HttpRequest,
  type HttpResponse,
  type HttpServer,
  type Logger,
  type RawErrorKind,
} from '@mimi-discovery/common';
import { DEFAULT_ISSUER_CONNECTIONS_PER_CLIENT, type IssuerConfig } from './config.js';
import { authenticate, userTable } from './credentials.js';
import { IssuerError, type IssuerErrorCode } from './issuer-error.js';
import { openKeyRing, type IssuerTokenKey, type KeyRing } from './key-ring.js';
import { createIssuerMetrics, type IssuerMetrics, type TokenRequestOutcome } from './metrics.js';
import { openTokenQuota, type TokenQuota } from './quota.js';

/**
 * The Privacy Pass issuer (RFC 9576 §3: it authenticates its users and caps their tokens; RFC
 * 9578 §6: it signs blinded token requests of type 2). HTTPS, HTTP/1.1:
 *
 * | route                                              | answer                                  |
 * | -------------------------------------------------- | --------------------------------------- |
 * | `GET /.well-known/private-token-issuer-directory`  | 200 `application/private-token-issuer-directory` |
 * | `POST /token-request`                              | 200 `application/private-token-response` |
 *
 * The directory (RFC 9578 §4) lists the keys valid now, newest (the signing key) first:
 * `{"issuer-request-uri": "/token-request", "token-keys": [{"token-type": 2, "token-key":
 * <base64url SPKI, padded as RFC 9578 §4 asks>, "not-before", "not-after"}]}`, with
 * `cache-control: max-age` up to the next rotation (at most {@link DIRECTORY_MAX_AGE_SECONDS}).
 * A key announced for a later takeover is in the public-key file, not in the directory, so a
 * client that takes the first key gets the signing key.
 *
 * A token request is checked in this order, each refusal a JSON error
 * `{"error": {"code", "message"}}` that changes nothing stored: route (404), method (405),
 * credential (401 `ERR_UNAUTHENTICATED`), content type (415), size (413 past
 * {@link MAX_TOKEN_REQUEST_BODY_OCTETS}), the TokenRequest itself (400 `ERR_BAD_TOKEN_REQUEST`:
 * size, type, a blinded message not below the modulus), its truncated key id (422
 * `ERR_TOKEN_KEY_UNKNOWN` unless the signing key's), the signing queue (503 `ERR_BUSY`), then
 * the user's count for the period (429 `ERR_TOKEN_QUOTA` with `retry-after` to the next
 * period). The count is flushed to disk before the token is signed and sent, so neither a
 * crash nor a restart nor concurrent requests give a user more than `tokensPerPeriod`.
 *
 * Logs name the outcome, never a credential; the user id only on a quota refusal.
 */

/** The issuer directory's path (RFC 9578 §4, a well-known URI). */
export const ISSUER_DIRECTORY_PATH = '/.well-known/private-token-issuer-directory';
/** The token request path, given in the directory as `issuer-request-uri`. */
export const TOKEN_REQUEST_PATH = '/token-request';
/** Media types of RFC 9578 §4, §5.1, §5.2. */
export const ISSUER_DIRECTORY_TYPE = 'application/private-token-issuer-directory';
export const TOKEN_REQUEST_TYPE = 'application/private-token-request';
export const TOKEN_RESPONSE_TYPE = 'application/private-token-response';
/** Longest the directory may be cached (RFC 9578 §4 leaves it to the rotation schedule). */
export const DIRECTORY_MAX_AGE_SECONDS = 3600;
/**
 * Largest token request body read: a TokenRequest of type 2 is {@link TOKEN_REQUEST_OCTETS}
 * octets; a little more is read so that a wrong size is a 400 rather than a 413.
 */
export const MAX_TOKEN_REQUEST_BODY_OCTETS = 1024;
/** Largest request header section of the token API. */
export const MAX_ISSUER_HEADER_OCTETS = 8 * 1024;
/** How often keys are checked for rotation besides at each request. */
export const KEY_ROTATION_CHECK_MS = 60_000;
/** `retry-after` of a 503 `ERR_BUSY`. */
const BUSY_RETRY_SECONDS = 1;

const RAW_ERROR_CODES: Readonly<Record<RawErrorKind, IssuerErrorCode>> = Object.freeze({
  timeout: 'ERR_TIMEOUT',
  'headers-too-large': 'ERR_HEADERS_TOO_LARGE',
  'bad-request': 'ERR_BAD_REQUEST',
});
const RESPONSE_HEADERS = Object.freeze({ 'cache-control': 'no-store' });

/** What the issuer uses besides its config. */
export interface IssuerComponents {
  readonly log?: Logger;
  /** Unix seconds; default the system clock. Key validity and quota periods follow it. */
  readonly clock?: Clock;
  /** Timers of the connection and body deadlines; default `setTimeout`, unreferenced. */
  readonly schedule?: ConnectionScheduler;
}

/** A running issuer. */
export interface RunningIssuer {
  /** The token API: `https://127.0.0.1:<port>`. */
  readonly api: { readonly host: string; readonly port: number; readonly url: string };
  readonly admin: AdminServer | undefined;
  /** Brings the keys up to the clock's now (as the periodic check does). */
  rotateKeys(): Promise<void>;
  /** New TLS handshakes of the token API use this certificate and key; open connections keep theirs. */
  setTls(tls: { cert: string | Uint8Array; key: string | Uint8Array }): void;
  /** Stops listening, closes connections, waits for pending counts, closes the store. */
  close(): Promise<void>;
}

/** The state a request is handled with. */
interface IssuerState {
  readonly config: IssuerConfig;
  readonly keys: KeyRing;
  readonly quota: TokenQuota;
  readonly users: ReturnType<typeof userTable>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: IssuerMetrics;
  readonly schedule: ConnectionScheduler | undefined;
  pendingSignings: number;
}

/**
 * Starts the issuer from its config: opens the counters (`dataDir`) and the keys (`keyDir`,
 * rotated at once), then the token API and the admin port. Throws {@link IssuerError}
 * `ERR_ISSUER_LISTEN` when a port cannot be bound, `ERR_ISSUER_KEYS` for a bad key file.
 */
export async function startIssuer(
  config: IssuerConfig,
  components: IssuerComponents = {},
): Promise<RunningIssuer> {
  const log = components.log ?? silentLogger;
  const clock = components.clock ?? systemClock;
  const keys = await openKeyRing(
    {
      keyDir: config.keyDir,
      lifetimeSeconds: config.keyLifetimeSeconds,
      overlapSeconds: config.keyOverlapSeconds,
      prepublishSeconds: config.keyPrepublishSeconds,
    },
    log,
  );
  await keys.rotate(clock());
  const quota = openTokenQuota(config);
  const metrics = createIssuerMetrics(() => {
    const now = clock();
    const active = keys.activeKeys(now).length;
    return { active, announced: keys.publishedKeys(now).length - active };
  });
  const state: IssuerState = {
    config,
    keys,
    quota,
    users: userTable(config.users),
    clock,
    log,
    metrics,
    schedule: components.schedule,
    pendingSignings: 0,
  };
  const started: { close(): Promise<void> }[] = [];
  let timer: ReturnType<typeof setInterval> | undefined;
  try {
    const api = await startApi(state);
    started.push(api);
    metrics.watchConnections('api', api);
    let admin: AdminServer | undefined;
    if (config.listen.admin !== null) {
      admin = await startAdminServer(
        { host: config.listen.host, port: config.listen.admin },
        {
          registry: metrics.metrics,
          health: () => {
            const signing = keys.signingKey(clock());
            return {
              ok: signing !== undefined,
              detail: { keys: keys.publishedKeys(clock()).length, users: config.users.length },
            };
          },
          log: log.child('admin'),
        },
      );
      started.push(admin);
      metrics.watchConnections('admin', admin);
    }
    timer = setInterval(() => {
      keys.rotate(clock()).catch((error: unknown) => log.error('key-rotation-failed', { error }));
    }, KEY_ROTATION_CHECK_MS);
    timer.unref();
    log.info('started', { api: api.url, admin: admin?.url, users: config.users.length });
    let closing: Promise<void> | undefined;
    return {
      api: { host: api.host, port: api.port, url: api.url },
      setTls: api.setTls,
      admin,
      rotateKeys: () => keys.rotate(clock()),
      close() {
        closing ??= (async () => {
          clearInterval(timer);
          await Promise.allSettled(started.map((s) => s.close()));
          await quota.close();
        })();
        return closing;
      },
    };
  } catch (error) {
    clearInterval(timer);
    await Promise.allSettled(started.map((s) => s.close()));
    await quota.close();
    throw error;
  }
}

async function startApi(state: IssuerState): Promise<HttpServer> {
  const { config } = state;
  const timeout = config.limits.requestTimeoutMs;
  const schedule = state.schedule === undefined ? {} : { schedule: state.schedule };
  return startHttpServer(
    {
      listener: 'api',
      label: 'issuer API',
      listenError: (message, cause) => new IssuerError('ERR_ISSUER_LISTEN', message, { cause }),
      host: config.listen.host,
      port: config.listen.api,
      tls: config.tls,
      connections: connectionLimitsFor(config.limits, {
        maxConnections: config.limits.maxConnections,
        connectionsPerClient: DEFAULT_ISSUER_CONNECTIONS_PER_CLIENT,
        idleTimeoutMs: config.limits.idleTimeoutMs,
      }),
      deadlines: {
        handshakeMs: timeout,
        // Node's own bounds stay as a backstop behind the headers and body deadlines.
        headersMs: timeout + 1000,
        requestMs: 2 * timeout + 5000,
      },
      maxHeaderOctets: MAX_ISSUER_HEADER_OCTETS,
      rawErrors: {
        headersTimeoutMs: timeout,
        errorFor: (kind) => new IssuerError(RAW_ERROR_CODES[kind]),
        headers: RESPONSE_HEADERS,
      },
    },
    { kind: 'request', request: (req, res) => void handle(state, req, res) },
    { log: state.log.child('api'), ...schedule },
  );
}

async function handle(state: IssuerState, req: HttpRequest, res: HttpResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  let outcome: TokenRequestOutcome | undefined;
  try {
    if (path === ISSUER_DIRECTORY_PATH) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        throw new IssuerError('ERR_METHOD_NOT_ALLOWED', `${path} accepts GET and HEAD`);
      }
      await state.keys.rotate(state.clock());
      sendDirectory(state, req, res);
      return;
    }
    if (path !== TOKEN_REQUEST_PATH) throw new IssuerError('ERR_NOT_FOUND');
    if (req.method !== 'POST') {
      throw new IssuerError('ERR_METHOD_NOT_ALLOWED', `${path} accepts POST only`);
    }
    const response = await tokenRequest(state, req);
    outcome = 'issued';
    sendBody(
      req,
      res,
      { status: 200, contentType: TOKEN_RESPONSE_TYPE, body: response },
      { headers: RESPONSE_HEADERS },
    );
  } catch (error) {
    const e = error instanceof IssuerError ? error : internal(state, error);
    if (path === TOKEN_REQUEST_PATH) outcome = outcomeOf(e.code);
    const headers: Record<string, string> = {};
    if (e.retryAfter !== undefined) headers['retry-after'] = String(e.retryAfter);
    if (e.code === 'ERR_METHOD_NOT_ALLOWED') {
      headers['allow'] = path === ISSUER_DIRECTORY_PATH ? 'GET, HEAD' : 'POST';
    }
    if (e.code === 'ERR_UNAUTHENTICATED') headers['www-authenticate'] = 'Bearer';
    sendJson(
      req,
      res,
      { status: e.status, body: { value: jsonErrorBody(e) }, headers },
      { headers: RESPONSE_HEADERS },
    );
  } finally {
    if (outcome !== undefined) {
      state.metrics.requests.inc({ outcome });
      state.log.debug('token-request', { outcome });
    }
  }
}

function internal(state: IssuerState, error: unknown): IssuerError {
  state.log.error('request-failed', { error });
  return new IssuerError('ERR_INTERNAL', undefined, { cause: error });
}

function outcomeOf(code: IssuerErrorCode): TokenRequestOutcome {
  switch (code) {
    case 'ERR_UNAUTHENTICATED':
      return 'unauthenticated';
    case 'ERR_TOKEN_QUOTA':
      return 'quota';
    case 'ERR_TOKEN_KEY_UNKNOWN':
      return 'key_unknown';
    case 'ERR_BUSY':
      return 'busy';
    case 'ERR_INTERNAL':
      return 'error';
    default:
      return 'bad_request';
  }
}

/** The directory of RFC 9578 §4, with the keys valid now. */
function sendDirectory(state: IssuerState, req: HttpRequest, res: HttpResponse): void {
  const now = state.clock();
  const active = state.keys.activeKeys(now);
  const signing = active[0];
  const untilRotation =
    signing === undefined
      ? 0
      : Math.max(0, signing.notBefore + state.config.keyLifetimeSeconds - now);
  const body = {
    'issuer-request-uri': TOKEN_REQUEST_PATH,
    'token-keys': active.map((k: IssuerTokenKey) => ({
      'token-type': 2,
      // RFC 9578 §4: "the base64url encoding of the Public Key ..., including padding".
      'token-key': Buffer.from(k.key.spki)
        .toString('base64url')
        .padEnd(Math.ceil(k.key.spki.length / 3) * 4, '='),
      'not-before': k.notBefore,
      'not-after': k.notAfter,
    })),
  };
  const text = `${JSON.stringify(body)}\n`;
  sendBody(req, res, {
    status: 200,
    contentType: ISSUER_DIRECTORY_TYPE,
    body: req.method === 'HEAD' ? '' : text,
    headers: {
      'cache-control': `max-age=${Math.min(DIRECTORY_MAX_AGE_SECONDS, untilRotation)}`,
      ...(req.method === 'HEAD' ? { 'content-length': String(Buffer.byteLength(text)) } : {}),
    },
  });
}

/** A token request, from the credential to the signed response (see the module comment). */
async function tokenRequest(state: IssuerState, req: HttpRequest): Promise<Uint8Array> {
  const header = req.headers['authorization'];
  const user = authenticate(typeof header === 'string' ? header : undefined, state.users);
  if (user === undefined) throw new IssuerError('ERR_UNAUTHENTICATED');
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== TOKEN_REQUEST_TYPE) throw new IssuerError('ERR_UNSUPPORTED_MEDIA_TYPE');
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > MAX_TOKEN_REQUEST_BODY_OCTETS) {
    throw new IssuerError('ERR_BODY_TOO_LARGE');
  }
  const body = await readBody(req, MAX_TOKEN_REQUEST_BODY_OCTETS, {
    timeoutMs: state.config.limits.requestTimeoutMs,
    ...(state.schedule === undefined ? {} : { schedule: state.schedule }),
  });
  if (body === 'too-large') throw new IssuerError('ERR_BODY_TOO_LARGE');
  if (body === 'timeout') throw new IssuerError('ERR_TIMEOUT');
  if (body === 'aborted')
    throw new IssuerError('ERR_BAD_REQUEST', 'the body was not received whole');

  const now = state.clock();
  await state.keys.rotate(now);
  const signing = state.keys.signingKey(now);
  if (signing === undefined) throw new IssuerError('ERR_INTERNAL', 'no signing key');
  let truncated: number;
  try {
    truncated = tokenRequestKeyId(body);
  } catch (error) {
    throw badRequest(error);
  }
  if (truncated !== signing.key.id[signing.key.id.length - 1]) {
    throw new IssuerError('ERR_TOKEN_KEY_UNKNOWN');
  }
  if (!(await blindedMessageInRange(body, signing.key))) {
    throw new IssuerError('ERR_BAD_TOKEN_REQUEST', 'the blinded message is not below the modulus');
  }
  if (state.pendingSignings >= state.config.limits.maxPendingSignings) {
    throw new IssuerError('ERR_BUSY', undefined, { retryAfter: BUSY_RETRY_SECONDS });
  }
  state.pendingSignings += 1;
  try {
    // Counted and flushed before signing: what is sent has been paid for.
    const charge = await state.quota.charge(user, now);
    if (charge.kind === 'exhausted') {
      state.log.info('token-quota', { user });
      throw new IssuerError('ERR_TOKEN_QUOTA', undefined, { retryAfter: charge.retryAfter });
    }
    const stop = state.metrics.signing.startTimer();
    try {
      return await issueToken(body, signing.key);
    } catch (error) {
      throw error instanceof TokenError ? badRequest(error) : error;
    } finally {
      stop();
    }
  } finally {
    state.pendingSignings -= 1;
  }
}

function badRequest(error: unknown): IssuerError {
  const message = error instanceof Error ? error.message : String(error);
  return new IssuerError('ERR_BAD_TOKEN_REQUEST', message, { cause: error });
}
