import { readFile } from 'node:fs/promises';
import {
  MimiError,
  canonicalName,
  namesEqual,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type ResourceRecord,
} from '@mimi-discovery/common';
import type { Resolver } from '../types.js';
import {
  TokenError,
  challengeHeader,
  parseAuthorizationHeader,
  parsePublicKeyFile,
  tokenChallenge,
  tokenKeyFromSpki,
  verifyToken,
  type KeyconfData,
  type TokenKey,
} from '@mimi-discovery/common';
import type { SpentTokenStore } from './spent-tokens.js';

/**
 * Token redemption at the gateway (RFC 9577 §2, RFC 9578 §6; the gateway is the *origin* of
 * RFC 9576 §2): the challenges it sends, the issuer keys it accepts, and the redemption of one
 * token per inner request.
 *
 * Challenges: one TokenChallenge per configured issuer — token type 2, the issuer's name, an
 * empty redemption context (tokens can be fetched ahead, RFC 9577 §2.1.1), origin_info the
 * gateway's `originName` — sent as one `WWW-Authenticate: PrivateToken challenge=…,
 * token-key=…` per issuer key valid now.
 *
 * Issuer keys come from the tree: the KEYCONF RRset at the issuer's `keyName`, resolved through
 * the resolver's own `resolve()`, so validated from the trust anchor; only a `secure` answer
 * gives keys (anything else, no keys: tokens are refused rather than checked against keys an
 * attacker could have put there). Entries of kind `private-token` are kept; the set is resolved
 * again at its TTL (between {@link ISSUER_KEYS_MIN_REFRESH_SECONDS} and
 * {@link ISSUER_KEYS_MAX_REFRESH_SECONDS}); a failed resolution is retried after
 * {@link ISSUER_KEYS_RETRY_SECONDS}. For tests and closed deployments an issuer may name a
 * `keysFile` instead (the public-key file the issuer writes), read again at the same bound.
 *
 * Redemption of a token: `authorization: PrivateToken token="…"` parsed, verified against each
 * issuer's challenge and keys (its key id names the key: not-before ≤ now < not-after), then
 * recorded in the spent-token store — flushed before the caller computes any answer. Refusals:
 * `ERR_TOKEN_REQUIRED` (no header), `ERR_TOKEN_INVALID` (malformed, unknown key, wrong
 * challenge, bad signature), `ERR_TOKEN_KEY_EXPIRED` (its key is outside its validity),
 * `ERR_TOKEN_SPENT` (seen before). A store that cannot be written is a fault, not a refusal:
 * nothing is answered for the token.
 */

/** Default most CSIs one token covers (one DNS message counts as one request). */
export const DEFAULT_CSIS_PER_TOKEN = 100;
/** Shortest time between two resolutions of an issuer's KEYCONF set, whatever its TTL. */
export const ISSUER_KEYS_MIN_REFRESH_SECONDS = 30;
/** Longest time an issuer's keys are used before they are resolved (or read) again. */
export const ISSUER_KEYS_MAX_REFRESH_SECONDS = 3600;
/** Wait after a resolution of an issuer's keys that gave no secure answer. */
export const ISSUER_KEYS_RETRY_SECONDS = 30;
/** Most token keys kept per issuer (a KEYCONF set of more is cut, newest kept). */
export const MAX_ISSUER_KEYS = 16;

/** Why a token was refused; the inner 401's `error.code`. */
export type TokenRefusalCode =
  'ERR_TOKEN_REQUIRED' | 'ERR_TOKEN_INVALID' | 'ERR_TOKEN_SPENT' | 'ERR_TOKEN_KEY_EXPIRED';

/** Every outcome of a redemption, as `resolver_gateway_tokens_total{outcome}` counts them. */
export const TOKEN_OUTCOMES = Object.freeze([
  'redeemed',
  'required',
  'invalid',
  'spent',
  'key_expired',
] as const);

/** A label of {@link TOKEN_OUTCOMES}. */
export type TokenOutcome = (typeof TOKEN_OUTCOMES)[number];

/** What a redemption gave. */
export type Redemption =
  | { readonly kind: 'redeemed' }
  | { readonly kind: 'refused'; readonly code: TokenRefusalCode; readonly message: string };

/** An issuer whose tokens the gateway accepts (`gateway.issuers[]`). */
export interface IssuerSettings {
  /** The issuer's name: its URL authority, `host:port` (the challenge's issuer_name). */
  readonly name: string;
  /** Owner of the issuer's KEYCONF RRset in the tree. */
  readonly keyName?: string;
  /** Instead of `keyName`: the issuer's public-key file. */
  readonly keysFile?: string;
}

/** A configuration error in the issuers. */
export class TokenSettingsError extends MimiError<'ERR_GATEWAY_ISSUER'> {}

/** What the redeemer uses. */
export interface TokenRedeemerComponents {
  /** Resolves issuers' KEYCONF sets (validated). */
  readonly resolver: Pick<Resolver, 'resolve'>;
  readonly store: SpentTokenStore;
  /** Whole seconds since the epoch; default `systemClock`. */
  readonly now?: Clock;
  readonly log?: Logger;
  /** Counts each redemption's outcome. */
  readonly count?: (outcome: TokenOutcome) => void;
}

/** Token redemption for one gateway. */
export interface TokenRedeemer {
  /** One `WWW-Authenticate` value per issuer key valid now. */
  challenges(): Promise<string[]>;
  /**
   * Redeems the token of an `authorization` header (`undefined`: none), recording it as spent
   * before it resolves `redeemed`; or the refusal. Throws only for a store that cannot be
   * written.
   */
  redeem(authorization: string | undefined): Promise<Redemption>;
  /** Redeems raw token octets (ODoH carries them in an EDNS option). */
  redeemToken(token: Uint8Array | undefined): Promise<Redemption>;
}

/** The issuer keys of one issuer, refreshed when due. */
interface IssuerKeys {
  readonly name: string;
  readonly challenge: Uint8Array;
  keys(): Promise<readonly TokenKey[]>;
}

/**
 * The redeemer of a gateway whose challenges name `originName`, accepting the tokens of
 * `issuers`. Throws {@link TokenSettingsError} for an issuer with both or neither of `keyName`
 * and `keysFile`.
 */
export function createTokenRedeemer(
  settings: { readonly originName: string; readonly issuers: readonly IssuerSettings[] },
  components: TokenRedeemerComponents,
): TokenRedeemer {
  const now = components.now ?? systemClock;
  const log = components.log ?? silentLogger;
  const count = components.count ?? (() => undefined);
  const issuers = settings.issuers.map((issuer) =>
    issuerKeys(issuer, settings.originName, components.resolver, now, log),
  );

  const refuse = (code: TokenRefusalCode, message: string, outcome: TokenOutcome): Redemption => {
    count(outcome);
    return { kind: 'refused', code, message };
  };

  const redeemToken = async (token: Uint8Array | undefined): Promise<Redemption> => {
    if (token === undefined) {
      return refuse('ERR_TOKEN_REQUIRED', 'this request needs a Privacy Pass token', 'required');
    }
    const at = now();
    let verified: { spentId: Uint8Array; until: number } | undefined;
    let expired = false;
    for (const issuer of issuers) {
      const keys = await issuer.keys();
      try {
        const { keyId, spentId } = await verifyToken(token, issuer.challenge, keys, at);
        const key = keys.find((k) => Buffer.from(k.id).equals(keyId));
        verified = { spentId, until: key?.notAfter ?? at };
        break;
      } catch (error) {
        if (!(error instanceof TokenError)) throw error;
        if (error.code === 'ERR_TOKEN_KEY_EXPIRED') expired = true;
        // Another issuer's key or challenge may be the token's: try them all.
      }
    }
    if (verified === undefined) {
      return expired
        ? refuse('ERR_TOKEN_KEY_EXPIRED', 'the token’s issuer key has expired', 'key_expired')
        : refuse(
            'ERR_TOKEN_INVALID',
            'the token does not verify with any accepted issuer key',
            'invalid',
          );
    }
    const outcome = await components.store.spend(verified.spentId, verified.until);
    if (outcome === 'spent') {
      return refuse('ERR_TOKEN_SPENT', 'this token has been redeemed before', 'spent');
    }
    count('redeemed');
    return { kind: 'redeemed' };
  };

  return {
    async challenges() {
      const at = now();
      const headers: string[] = [];
      for (const issuer of issuers) {
        for (const key of await issuer.keys()) {
          if (key.notBefore <= at && at < key.notAfter) {
            headers.push(challengeHeader(issuer.challenge, key));
          }
        }
      }
      return headers;
    },
    async redeem(authorization) {
      if (authorization === undefined) return redeemToken(undefined);
      let token: Uint8Array;
      try {
        token = parseAuthorizationHeader(authorization);
      } catch (error) {
        if (!(error instanceof TokenError)) throw error;
        return refuse('ERR_TOKEN_INVALID', error.message, 'invalid');
      }
      return redeemToken(token);
    },
    redeemToken,
  };
}

function issuerKeys(
  issuer: IssuerSettings,
  originName: string,
  resolver: Pick<Resolver, 'resolve'>,
  now: Clock,
  log: Logger,
): IssuerKeys {
  if ((issuer.keyName === undefined) === (issuer.keysFile === undefined)) {
    throw new TokenSettingsError(
      'ERR_GATEWAY_ISSUER',
      `issuer ${issuer.name}: give exactly one of keyName and keysFile`,
    );
  }
  let keys: readonly TokenKey[] = [];
  let refreshAt = 0;
  let loading: Promise<void> | undefined;

  const load = async (): Promise<void> => {
    const at = now();
    try {
      const found =
        issuer.keyName !== undefined
          ? await keysFromTree(resolver, issuer.keyName)
          : { entries: await keysFromFile(issuer.keysFile as string), ttl: Infinity };
      if (found === undefined) {
        keys = [];
        refreshAt = at + ISSUER_KEYS_RETRY_SECONDS;
        log.warn('issuer-keys-insecure', { issuer: issuer.name });
        return;
      }
      keys = found.entries
        .filter((e) => e.kind === 'private-token')
        .sort((a, b) => b.notBefore - a.notBefore)
        .slice(0, MAX_ISSUER_KEYS)
        .map((e) => tokenKeyFromSpki(e.config, e.notBefore, e.notAfter));
      const ttl = Math.min(
        ISSUER_KEYS_MAX_REFRESH_SECONDS,
        Math.max(ISSUER_KEYS_MIN_REFRESH_SECONDS, found.ttl),
      );
      refreshAt = at + ttl;
    } catch (error) {
      keys = [];
      refreshAt = at + ISSUER_KEYS_RETRY_SECONDS;
      log.warn('issuer-keys-failed', { issuer: issuer.name, error });
    }
  };

  return {
    name: issuer.name,
    challenge: tokenChallenge(issuer.name, originName),
    async keys() {
      if (now() >= refreshAt) {
        loading ??= load().finally(() => {
          loading = undefined;
        });
        await loading;
      }
      return keys;
    },
  };
}

/**
 * The KEYCONF entries at `keyName` and their TTL, from a `secure` answer; `undefined` for
 * any other (design §5: only what validates is trusted).
 */
async function keysFromTree(
  resolver: Pick<Resolver, 'resolve'>,
  keyName: string,
): Promise<{ entries: KeyconfData[]; ttl: number } | undefined> {
  const name = canonicalName(keyName);
  const answer = await resolver.resolve(name, 'KEYCONF');
  if (answer.status !== 'secure' || answer.rcode !== 'NOERROR') return undefined;
  const records = answer.answers.filter((rr) => rr.type === 'KEYCONF' && namesEqual(rr.name, name));
  const entries: KeyconfData[] = [];
  for (const rr of records) {
    const data = keyconfOf(rr);
    if (data !== undefined) entries.push(data);
  }
  const ttl = records.reduce((min, rr) => Math.min(min, rr.ttl), ISSUER_KEYS_MAX_REFRESH_SECONDS);
  return { entries, ttl };
}

async function keysFromFile(path: string): Promise<KeyconfData[]> {
  return parsePublicKeyFile(await readFile(path, 'utf8'));
}

/** The data of a KEYCONF record (the codec has checked it, `records.ts`), or undefined. */
function keyconfOf(rr: ResourceRecord): KeyconfData | undefined {
  return rr.type === 'KEYCONF' ? rr.data : undefined;
}
