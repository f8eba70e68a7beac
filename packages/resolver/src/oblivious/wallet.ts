import { createHash } from 'node:crypto';
import { DiscoveryClientError } from '../discovery-client-base.js';
import {
  authorizationHeader,
  createTokenRequest,
  retryAfterOf,
  type ParsedChallenge,
} from '@mimi-discovery/common';
import { jsonOf, refusalOf, type HttpTransport } from './transport.js';

/**
 * The client's tokens (RFC 9576 §3, RFC 9577, RFC 9578 token type 2): fetched from the issuer
 * a challenge names when the gateway asks for one, kept per challenge and token key, one spent
 * per inner request.
 *
 * Worked example: the gateway answers an inner request with 401 and `www-authenticate:
 * PrivateToken challenge="AAIA…", token-key="MIIB…"`. The wallet reads the challenge's
 * issuer_name (`issuer.example:8446`), fetches
 * `https://issuer.example:8446/.well-known/private-token-issuer-directory`, checks that the
 * challenge's token key is listed there with token type 2 and not expired, then sends
 * `tokensPerFetch` token requests to the directory's `issuer-request-uri`, each one blinded
 * token (RFC 9578 §6.1) with `authorization: Bearer <credential>`, and keeps the finalized
 * tokens under that challenge and key. Every inner request after takes one.
 *
 * Bounds: at most `tokensPerFetch` ({@link DEFAULT_TOKENS_PER_FETCH}, at most
 * {@link MAX_TOKENS_PER_FETCH}) requests per fetch, {@link TOKEN_REQUESTS_IN_FLIGHT} of them at
 * a time, one fetch per challenge at a time shared by
 * concurrent callers, at most {@link MAX_TOKENS_HELD} tokens held; tokens under a challenge the
 * gateway no longer offers are dropped. An issuer that answers 429 (`ERR_TOKEN_QUOTA`) is not
 * asked again before its `retry-after` ({@link DEFAULT_QUOTA_RETRY_SECONDS} without one): a
 * request that finds no token meanwhile fails with `ERR_TOKENS_EXHAUSTED`.
 */

/** Tokens requested per fetch unless the client says otherwise. */
export const DEFAULT_TOKENS_PER_FETCH = 10;
/** Most tokens requested per fetch, whatever the client says. */
export const MAX_TOKENS_PER_FETCH = 100;
/** Most tokens the wallet holds. */
export const MAX_TOKENS_HELD = MAX_TOKENS_PER_FETCH;
/** Largest issuer directory read, in octets. */
export const MAX_ISSUER_DIRECTORY_OCTETS = 64 * 1024;
/** Most token keys of a directory looked at. */
export const MAX_DIRECTORY_TOKEN_KEYS = 64;
/** Largest token response read, in octets (a type 2 TokenResponse is 256). */
export const MAX_TOKEN_RESPONSE_OCTETS = 1024;
/** Seconds an issuer's quota refusal holds when it gives no `retry-after`. */
export const DEFAULT_QUOTA_RETRY_SECONDS = 60;
/**
 * Token requests of one fetch in flight at a time: the issuer answers each after a flush of its
 * counts, and concurrent requests share flushes, so a fetch of {@link MAX_TOKENS_PER_FETCH} takes
 * a few flushes' time instead of a hundred; few enough to stay within an issuer's concurrency
 * limits for one user.
 */
export const TOKEN_REQUESTS_IN_FLIGHT = 8;
/** Fetches a single `take` may wait for before it gives up (others may take what came). */
export const MAX_FETCHES_PER_TAKE = 3;

/**
 * The tokens requested per fetch for what the client asked: a whole number from 1 to
 * {@link MAX_TOKENS_PER_FETCH}, {@link DEFAULT_TOKENS_PER_FETCH} when it did not say.
 */
export function tokensPerFetchWithin(value: number | undefined): number {
  if (value === undefined || !Number.isFinite(value)) return DEFAULT_TOKENS_PER_FETCH;
  return Math.max(1, Math.min(MAX_TOKENS_PER_FETCH, Math.floor(value)));
}

/** The issuer directory route (RFC 9578 §4). */
export const ISSUER_DIRECTORY_PATH = '/.well-known/private-token-issuer-directory';
const DIRECTORY_TYPE = 'application/private-token-issuer-directory';
const REQUEST_TYPE = 'application/private-token-request';
const RESPONSE_TYPE = 'application/private-token-response';

/** One token taken for one inner request. */
export interface Redemption {
  /** The `authorization` value that redeems it. */
  readonly header: string;
  /** The challenge and key it was issued under. */
  readonly slot: string;
  readonly token: Uint8Array;
}

/** The wallet of one client. */
export interface TokenWallet {
  /** A token for one of `challenges` (the gateway's latest), fetching some when none is held. */
  take(challenges: readonly ParsedChallenge[]): Promise<Redemption>;
  /** Puts back a token the gateway did not spend (a 413 refusal). */
  giveBack(redemption: Redemption): void;
  /** Drops every token under the key of `redemption` (the gateway no longer accepts it). */
  dropKey(redemption: Redemption): void;
  /** Tokens held now. */
  held(): number;
}

/** What {@link createTokenWallet} needs. */
export interface TokenWalletInit {
  readonly transport: HttpTransport;
  readonly credential: string | undefined;
  readonly tokensPerFetch: number;
  /** Issuer names (`host:port`) the client may use; undefined: whichever the gateway names. */
  readonly issuers: readonly string[] | undefined;
  /** Seconds since the epoch. */
  readonly now: () => number;
}

interface DirectoryKey {
  readonly notBefore: number | undefined;
  readonly notAfter: number | undefined;
}

/** A wallet that fetches through `init.transport`. */
export function createTokenWallet(init: TokenWalletInit): TokenWallet {
  const slots = new Map<string, Uint8Array[]>();
  const fetches = new Map<string, Promise<void>>();
  /** Issuer name → seconds since the epoch before which it is not asked again. */
  const exhaustedUntil = new Map<string, number>();
  const allowed =
    init.issuers === undefined ? undefined : new Set(init.issuers.map((i) => i.toLowerCase()));

  const held = (): number => {
    let n = 0;
    for (const tokens of slots.values()) n += tokens.length;
    return n;
  };

  /** Tokens of challenges the gateway no longer offers are of no use: drop them. */
  const retain = (challenges: readonly ParsedChallenge[]): void => {
    const offered = new Set(challenges.map(slotOf));
    for (const slot of slots.keys()) if (!offered.has(slot)) slots.delete(slot);
  };

  const pop = (challenges: readonly ParsedChallenge[]): Redemption | undefined => {
    for (const challenge of challenges) {
      const slot = slotOf(challenge);
      const token = slots.get(slot)?.shift();
      if (token !== undefined) return { header: authorizationHeader(token), slot, token };
    }
    return undefined;
  };

  const fetchTokens = async (challenge: ParsedChallenge): Promise<void> => {
    const issuer = challenge.issuerName;
    const directoryUrl = issuerUrl(issuer, ISSUER_DIRECTORY_PATH);
    const { requestUrl, key } = await readDirectory(init.transport, directoryUrl, challenge);
    const now = init.now();
    if (
      (key.notBefore !== undefined && now < key.notBefore) ||
      (key.notAfter !== undefined && now >= key.notAfter)
    ) {
      throw new DiscoveryClientError(
        'ERR_ISSUER_KEY',
        `the token key of the challenge is outside its validity at ${issuer}`,
        { url: urlOf(directoryUrl) },
      );
    }
    const slot = slotOf(challenge);
    const tokens = slots.get(slot) ?? [];
    slots.set(slot, tokens);
    const wanted = Math.min(init.tokensPerFetch, MAX_TOKENS_HELD - held());
    // Up to TOKEN_REQUESTS_IN_FLIGHT requests at a time: the issuer flushes its counts to disk
    // before it signs, and concurrent requests share those flushes. The first refusal stops
    // new requests; those in flight finish, and their tokens are kept.
    let next = 0;
    let stop: { kind: 'quota' } | { kind: 'error'; error: DiscoveryClientError } | undefined;
    const one = async (): Promise<void> => {
      const pending = await createTokenRequest(challenge.challenge, challenge.tokenKey);
      const reply = await init.transport.send({
        url: requestUrl,
        method: 'POST',
        headers: {
          'content-type': REQUEST_TYPE,
          accept: RESPONSE_TYPE,
          authorization: `Bearer ${init.credential ?? ''}`,
        },
        body: pending.request,
        maxOctets: MAX_TOKEN_RESPONSE_OCTETS,
      });
      if (reply.status === 429) {
        exhaustedUntil.set(
          issuer,
          init.now() + (retryAfterOf(reply.headers) ?? DEFAULT_QUOTA_RETRY_SECONDS),
        );
        stop ??= { kind: 'quota' };
        return;
      }
      if (reply.status !== 200) {
        const refusal = refusalOf(jsonOf(reply.body));
        stop ??= {
          kind: 'error',
          error: new DiscoveryClientError(
            'ERR_ISSUER_REFUSED',
            `the issuer ${issuer} refused the token request: HTTP ${reply.status}${refusal === undefined ? '' : ` ${refusal.code}: ${refusal.message}`}`,
            {
              url: urlOf(requestUrl),
              status: reply.status,
              ...(refusal === undefined ? {} : { detail: refusal.code }),
            },
          ),
        };
        return;
      }
      if (reply.contentType !== RESPONSE_TYPE) {
        throw new DiscoveryClientError(
          'ERR_API_RESPONSE',
          `the issuer ${issuer} answered ${reply.contentType || 'no content type'}, not ${RESPONSE_TYPE}`,
          { url: urlOf(requestUrl), status: reply.status },
        );
      }
      try {
        tokens.push(await pending.finalize(reply.body));
      } catch (cause) {
        throw new DiscoveryClientError(
          'ERR_API_RESPONSE',
          `the issuer ${issuer} answered a token response that does not verify under its key`,
          { url: urlOf(requestUrl), status: reply.status, cause },
        );
      }
    };
    let fault: unknown;
    const worker = async (): Promise<void> => {
      while (stop === undefined && fault === undefined && next < wanted) {
        next++;
        try {
          await one();
        } catch (error) {
          fault ??= error;
        }
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(TOKEN_REQUESTS_IN_FLIGHT, wanted) }, () => worker()),
    );
    // A bad answer (not a token response, or one that does not verify) is the issuer's fault
    // and is reported; tokens that did verify stay usable.
    if (fault !== undefined) throw fault;
    // Tokens already obtained stay usable; a refusal is for the next fetch to report.
    if (stop?.kind === 'error' && tokens.length === 0) throw stop.error;
  };

  const exhausted = (issuer: string): DiscoveryClientError | undefined => {
    const until = exhaustedUntil.get(issuer);
    if (until === undefined) return undefined;
    const left = Math.ceil(until - init.now());
    if (left <= 0) {
      exhaustedUntil.delete(issuer);
      return undefined;
    }
    return new DiscoveryClientError(
      'ERR_TOKENS_EXHAUSTED',
      `no token left, and the issuer ${issuer} gives no more for ${left} s (ERR_TOKEN_QUOTA)`,
      { url: urlOf(issuerUrl(issuer, '/')), status: 429, retryAfter: left },
    );
  };

  return {
    async take(challenges) {
      retain(challenges);
      const usable = challenges.filter(
        (c) => allowed === undefined || allowed.has(c.issuerName.toLowerCase()),
      );
      if (usable.length === 0) {
        throw new DiscoveryClientError(
          'ERR_TOKEN_CHALLENGE',
          `the gateway's challenges name no issuer this client may use (${challenges.map((c) => c.issuerName).join(', ') || 'none'})`,
          { url: '' },
        );
      }
      let lastError: unknown;
      for (let round = 0; round < MAX_FETCHES_PER_TAKE; round++) {
        const ready = pop(usable);
        if (ready !== undefined) return ready;
        if (init.credential === undefined) {
          throw new DiscoveryClientError(
            'ERR_CREDENTIAL_REQUIRED',
            `the gateway asks for tokens from ${usable[0]?.issuerName ?? 'an issuer'}, and no credential was given`,
            { url: '' },
          );
        }
        let fetched = false;
        for (const challenge of usable) {
          const stop = exhausted(challenge.issuerName);
          if (stop !== undefined) {
            lastError = stop;
            continue;
          }
          const slot = slotOf(challenge);
          let fetch = fetches.get(slot);
          if (fetch === undefined) {
            fetch = fetchTokens(challenge).finally(() => fetches.delete(slot));
            fetches.set(slot, fetch);
          }
          try {
            await fetch;
            fetched = true;
            break;
          } catch (error) {
            // A key this issuer does not list: another challenge (issuer, key) may do.
            if (error instanceof DiscoveryClientError && error.code === 'ERR_ISSUER_KEY') {
              lastError = error;
              continue;
            }
            throw error;
          }
        }
        if (!fetched) break;
      }
      const ready = pop(usable);
      if (ready !== undefined) return ready;
      for (const challenge of usable) {
        const stop = exhausted(challenge.issuerName);
        if (stop !== undefined) throw stop;
      }
      throw lastError instanceof Error
        ? lastError
        : new DiscoveryClientError(
            'ERR_ISSUER_REFUSED',
            `no token obtained from ${usable.map((c) => c.issuerName).join(', ')}`,
            { url: '' },
          );
    },
    giveBack(redemption) {
      if (held() >= MAX_TOKENS_HELD) return;
      const tokens = slots.get(redemption.slot) ?? [];
      tokens.unshift(redemption.token);
      slots.set(redemption.slot, tokens);
    },
    dropKey(redemption) {
      const key = redemption.slot.split(':')[1];
      for (const slot of [...slots.keys()]) if (slot.split(':')[1] === key) slots.delete(slot);
    },
    held,
  };
}

/** A challenge and its token key: tokens of one slot redeem for that challenge only. */
/**
 * The slot of a challenge's tokens: the challenge and the token key id, SHA-256 of the key's
 * SPKI (RFC 9578 §6.5). The key itself is checked where a token is requested under it; here it
 * is only hashed, as every inner request looks its slot up.
 */
function slotOf(challenge: ParsedChallenge): string {
  const keyId = createHash('sha256').update(challenge.tokenKey).digest('hex');
  return `${Buffer.from(challenge.challenge).toString('hex')}:${keyId}`;
}

/** `https://<issuer name><path>` (RFC 9578 §4: the issuer name is its URL authority). */
function issuerUrl(issuerName: string, path: string): URL {
  let url: URL;
  try {
    url = new URL(`https://${issuerName}${path}`);
  } catch {
    throw new DiscoveryClientError(
      'ERR_TOKEN_CHALLENGE',
      `the challenge names an issuer that is not a host: ${JSON.stringify(issuerName)}`,
      { url: '' },
    );
  }
  if (url.host !== issuerName.toLowerCase() || url.username !== '' || url.pathname !== path) {
    throw new DiscoveryClientError(
      'ERR_TOKEN_CHALLENGE',
      `the challenge names an issuer that is not a host: ${JSON.stringify(issuerName)}`,
      { url: '' },
    );
  }
  return url;
}

function urlOf(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/**
 * The issuer's directory (RFC 9578 §4): the request URL (relative to the directory, and on the
 * issuer's own origin: the credential goes nowhere else) and the entry of the challenge's key.
 */
async function readDirectory(
  transport: HttpTransport,
  directoryUrl: URL,
  challenge: ParsedChallenge,
): Promise<{ requestUrl: URL; key: DirectoryKey }> {
  const url = urlOf(directoryUrl);
  const reply = await transport.send({
    url: directoryUrl,
    method: 'GET',
    headers: { accept: DIRECTORY_TYPE },
    maxOctets: MAX_ISSUER_DIRECTORY_OCTETS,
  });
  const bad = (why: string): DiscoveryClientError =>
    new DiscoveryClientError('ERR_API_RESPONSE', `${url}: ${why}`, { url, status: reply.status });
  if (reply.status !== 200) {
    const refusal = refusalOf(jsonOf(reply.body));
    throw new DiscoveryClientError(
      'ERR_ISSUER_REFUSED',
      `${url} answered HTTP ${reply.status}${refusal === undefined ? '' : ` ${refusal.code}`}`,
      { url, status: reply.status, ...(refusal === undefined ? {} : { detail: refusal.code }) },
    );
  }
  const value = jsonOf(reply.body);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad('the directory is not a JSON object');
  }
  const uri = (value as Record<string, unknown>)['issuer-request-uri'];
  const keys = (value as Record<string, unknown>)['token-keys'];
  if (typeof uri !== 'string' || !Array.isArray(keys)) {
    throw bad('the directory lacks issuer-request-uri or token-keys');
  }
  let requestUrl: URL;
  try {
    requestUrl = new URL(uri, directoryUrl);
  } catch {
    throw bad('issuer-request-uri is not a URL');
  }
  if (requestUrl.origin !== directoryUrl.origin) {
    throw bad('issuer-request-uri is on another origin');
  }
  const wanted = Buffer.from(challenge.tokenKey);
  for (const entry of keys.slice(0, MAX_DIRECTORY_TOKEN_KEYS) as unknown[]) {
    if (typeof entry !== 'object' || entry === null) continue;
    const e = entry as Record<string, unknown>;
    const key = e['token-key'];
    if (e['token-type'] !== 2 || typeof key !== 'string') continue;
    if (!/^[A-Za-z0-9_-]+={0,2}$/.test(key)) continue;
    if (!Buffer.from(key.replace(/=+$/, ''), 'base64url').equals(wanted)) continue;
    const notBefore = e['not-before'];
    const notAfter = e['not-after'];
    return {
      requestUrl,
      key: {
        notBefore: typeof notBefore === 'number' ? notBefore : undefined,
        notAfter: typeof notAfter === 'number' ? notAfter : undefined,
      },
    };
  }
  throw new DiscoveryClientError(
    'ERR_ISSUER_KEY',
    `the challenge's token key is not listed in ${url}`,
    { url, status: reply.status },
  );
}
