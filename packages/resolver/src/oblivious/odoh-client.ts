import {
  EDE_PROHIBITED,
  EDNS_UDP_PAYLOAD_OCTETS,
  MAX_MESSAGE_OCTETS,
  MAX_ODOH_MESSAGE_OCTETS,
  ODOH_CONTENT_TYPE,
  PRIVATE_TOKEN_EDNS_OPTION,
  decodeMessage,
  decodeOdohConfigs,
  decryptOdohResponse,
  encodeMessage,
  encodeOdohConfig,
  encryptOdohQuery,
  extendedDnsErrors,
  type Message,
  type OdohConfig,
} from '@mimi-discovery/common';
import { DiscoveryClientError } from '../discovery-client-base.js';
import { ODOH_CONFIGS_PATH, ODOH_TARGET_PATH } from '../gateway/gateway.js';
import { OBLIVIOUS_CLIENT_ERRORS, type ObliviousClientErrorCode } from './errors.js';
import {
  DEFAULT_KEY_CONFIG_CACHE_SECONDS,
  MAX_KEY_CONFIGS_OCTETS,
  MAX_KEY_CONFIG_CACHE_SECONDS,
  maxAgeOf,
  publishedConfigs,
  type KeyCheck,
} from './key-configs.js';
import { jsonOf, refusalOf, type HttpTransport } from './transport.js';
import type { Redemption } from './wallet.js';

/**
 * Oblivious DoH (RFC 9230) from the oblivious client: one DNS query, encrypted to the gateway
 * (the ODoH target), sent through the relay's ODoH proxy, with a Privacy Pass token inside it.
 *
 * Worked example, with the relay `https://relay.example:15329/ohttp/resolver` and the target
 * `resolver.example:15330`:
 *
 * 1. `GET https://relay.example:15329/proxy?targethost=resolver.example%3A15330&targetpath=
 *    %2F.well-known%2Fodohconfigs` (RFC 9230 §4.1) gives the target's ObliviousDoHConfigs
 *    (§6.1). The first config of the suite this project speaks is used — with a key check, the
 *    first that is byte-equal to the `cfg` of a KEYCONF `odoh` entry at the key name, valid now,
 *    in a secure answer, checked by the same function as the OHTTP key configuration
 *    (`key-configs.ts`), else `ERR_KEY_INCONSISTENT` and nothing is sent. It is kept for the
 *    `max-age` of the answer, at most {@link MAX_KEY_CONFIG_CACHE_SECONDS}.
 * 2. A token comes from the client's wallet, under the challenges the gateway gave the client's
 *    OHTTP probe (a client that has made no OHTTP request probes first: no DNS message is ever
 *    sent without a token when the gateway asks for one).
 * 3. The token rides in the query as EDNS(0) option {@link PRIVATE_TOKEN_EDNS_OPTION} (65001,
 *    RFC 6891 §9 local/experimental range), data = the raw token; the query's other options
 *    stay, a token option it carried is replaced, and a query without OPT gets one (RFC 6891
 *    §6.1.1, payload size {@link EDNS_UDP_PAYLOAD_OCTETS}). Encrypted (§6.4), padded to the
 *    RFC 8467 query block by the codec.
 * 4. `POST /proxy?targethost=…&targetpath=%2Fdns-query` (`application/oblivious-dns-message`);
 *    the answer is decrypted (§6.5) and returned as DNS wire octets.
 *
 * The gateway refuses a token inside the encrypted answer: REFUSED with Extended DNS Error 18
 * (RFC 8914 §4.19) whose EXTRA-TEXT is the token code (`ERR_TOKEN_SPENT`, …). Such an answer is
 * asked once more with a fresh token (after the probe has learned the gateway's current
 * challenges, unless the token was only spent), then is a `DiscoveryClientError` with that code
 * — as on the OHTTP path. A target that no longer knows the key id (HTTP 401
 * `ERR_ODOH_KEY_UNKNOWN`, RFC 9230 §4.3) gets the configs fetched and checked again, once.
 *
 * Bounds: the configs within {@link MAX_KEY_CONFIGS_OCTETS}, the encrypted answer within
 * `MAX_ODOH_MESSAGE_OCTETS` (RFC 9230 §6.3 framing), each exchange within the transport's
 * deadline, `maxAttempts` queries per call, and one config fetch at a time shared by callers.
 */

/** The ODoH proxy path on the relay's origin (RFC 9230 §4.1 leaves it to the proxy). */
export const ODOH_PROXY_PATH = '/proxy';

/** The gateway's token refusals, as the EXTRA-TEXT of an ODoH answer's Extended DNS Error. */
export type OdohTokenRefusal = Extract<
  ObliviousClientErrorCode,
  'ERR_TOKEN_REQUIRED' | 'ERR_TOKEN_INVALID' | 'ERR_TOKEN_SPENT' | 'ERR_TOKEN_KEY_EXPIRED'
>;

const TOKEN_REFUSALS: ReadonlySet<string> = new Set<OdohTokenRefusal>([
  'ERR_TOKEN_REQUIRED',
  'ERR_TOKEN_INVALID',
  'ERR_TOKEN_SPENT',
  'ERR_TOKEN_KEY_EXPIRED',
]);

/** RCODE 5 (RFC 1035 §4.1.1), read from the header without decoding the message. */
const RCODE_REFUSED = 5;

/** The tokens of the oblivious client, as the ODoH path uses them. */
export interface OdohTokens {
  /**
   * A token for the next query (the client's probe made first when it has none), or undefined
   * when the gateway asks for none.
   */
  take(): Promise<Redemption | undefined>;
  /** The gateway refused `redemption` with `code`: learn what it accepts now. */
  refused(redemption: Redemption | undefined, code: OdohTokenRefusal): Promise<void>;
}

/** What {@link createOdohClient} needs. */
export interface OdohClientInit {
  /** The client's relay URL: the proxy is `<its origin>/proxy`. */
  readonly relay: URL;
  /** The target's authority, `host:port`. */
  readonly target: string;
  readonly transport: HttpTransport;
  readonly keyCheck: KeyCheck | undefined;
  readonly tokens: OdohTokens;
  /** Queries sent for one call: with a token, then with a fresh one. */
  readonly maxAttempts: number;
  /** Seconds since the epoch. */
  readonly now: () => number;
}

/** The ODoH side of one oblivious client. */
export interface OdohClient {
  /** Sends `wire` (one DNS query) to the target through the proxy; the answer's wire. */
  query(wire: Uint8Array): Promise<Uint8Array>;
}

interface CurrentConfig {
  readonly config: OdohConfig;
  readonly until: number;
}

/**
 * An ODoH client of `init.target` through the relay's proxy. Throws a `TypeError` for a target
 * that is not `host:port`.
 */
export function createOdohClient(init: OdohClientInit): OdohClient {
  const target = odohTargetOf(init.target);
  const proxyName = `${init.relay.origin}${ODOH_PROXY_PATH}`;
  const url = `${proxyName} (target ${target})`;
  const proxyUrl = (path: string): URL => {
    const out = new URL(ODOH_PROXY_PATH, init.relay.origin);
    out.searchParams.set('targethost', target);
    out.searchParams.set('targetpath', path);
    return out;
  };
  let current: CurrentConfig | undefined;
  let fetching: Promise<CurrentConfig> | undefined;

  const fault = (message: string, status?: number, cause?: unknown): DiscoveryClientError =>
    new DiscoveryClientError('ERR_API_RESPONSE', `${url}: ${message}`, {
      url: proxyName,
      ...(status === undefined ? {} : { status }),
      ...(cause === undefined ? {} : { cause }),
    });

  const refusedBy = (status: number, body: Uint8Array, what: string): DiscoveryClientError => {
    const refusal = refusalOf(jsonOf(body));
    return new DiscoveryClientError(
      'ERR_RELAY_REFUSED',
      `${url} answered HTTP ${status} to ${what}${refusal === undefined ? '' : ` ${refusal.code}: ${refusal.message}`}`,
      { url: proxyName, status, ...(refusal === undefined ? {} : { detail: refusal.code }) },
    );
  };

  const fetchChecked = async (): Promise<CurrentConfig> => {
    const reply = await init.transport.send({
      url: proxyUrl(ODOH_CONFIGS_PATH),
      method: 'GET',
      headers: {},
      maxOctets: MAX_KEY_CONFIGS_OCTETS,
    });
    if (reply.status !== 200) throw refusedBy(reply.status, reply.body, 'the ODoH configs request');
    let configs: OdohConfig[];
    try {
      configs = decodeOdohConfigs(reply.body);
    } catch (error) {
      throw fault('the ODoH configs do not decode (RFC 9230 §6.1)', reply.status, error);
    }
    let chosen = configs[0];
    if (chosen === undefined) {
      throw new DiscoveryClientError(
        'ERR_KEY_CONFIG_UNUSABLE',
        `${url} lists no ODoH config with X25519, HKDF-SHA256 and AES-128-GCM`,
        { url: proxyName, status: reply.status },
      );
    }
    if (init.keyCheck !== undefined) {
      const published = await publishedConfigs(init.keyCheck, init.now(), url, 'odoh');
      chosen = configs.find((c) => published.has(Buffer.from(encodeOdohConfig(c)).toString('hex')));
      if (chosen === undefined) {
        throw new DiscoveryClientError(
          'ERR_KEY_INCONSISTENT',
          `the ODoH config served through ${url} is not published at ${init.keyCheck.keyName} (KEYCONF odoh, valid now); nothing was sent`,
          { url: proxyName },
        );
      }
    }
    const seconds = Math.min(
      maxAgeOf(reply.headers['cache-control']) ?? DEFAULT_KEY_CONFIG_CACHE_SECONDS,
      MAX_KEY_CONFIG_CACHE_SECONDS,
    );
    return { config: chosen, until: init.now() + seconds };
  };

  const config = async (): Promise<OdohConfig> => {
    if (current !== undefined && init.now() < current.until) return current.config;
    // One fetch at a time: concurrent callers share it.
    fetching ??= fetchChecked().finally(() => {
      fetching = undefined;
    });
    current = await fetching;
    return current.config;
  };

  /** One encrypted exchange: the target's DNS answer to `plain`, decrypted. */
  const exchange = async (plain: Uint8Array): Promise<Uint8Array> => {
    for (let fresh = 0; ; fresh++) {
      const used = await config();
      const { message, context } = await encryptOdohQuery(used, plain);
      const reply = await init.transport.send({
        url: proxyUrl(ODOH_TARGET_PATH),
        method: 'POST',
        headers: { 'content-type': ODOH_CONTENT_TYPE, accept: ODOH_CONTENT_TYPE },
        body: message,
        maxOctets: MAX_ODOH_MESSAGE_OCTETS,
      });
      if (reply.status !== 200) {
        // RFC 9230 §4.3: the target no longer holds the key: fetch the configs again, once.
        // The token inside was not seen (the query did not decrypt), so it is sent again.
        if (
          reply.status === 401 &&
          fresh === 0 &&
          refusalOf(jsonOf(reply.body))?.code === 'ERR_ODOH_KEY_UNKNOWN'
        ) {
          if (current?.config === used) current = undefined;
          continue;
        }
        throw refusedBy(reply.status, reply.body, 'the ODoH query');
      }
      if (reply.contentType !== ODOH_CONTENT_TYPE) {
        throw fault(
          `answered ${reply.contentType || 'no content type'}, not ${ODOH_CONTENT_TYPE}`,
          reply.status,
        );
      }
      try {
        return await decryptOdohResponse(context, reply.body);
      } catch (error) {
        throw fault('the ODoH response does not decrypt (RFC 9230 §6.5)', reply.status, error);
      }
    }
  };

  return {
    async query(wire) {
      const query = queryOf(wire, url, proxyName);
      // The configuration first: a config the tree does not publish stops everything, the probe
      // and the token included.
      await config();
      for (let attempt = 1; ; attempt++) {
        const redemption = await init.tokens.take();
        const plain = withToken(query, redemption?.token, url, proxyName);
        const answer = await exchange(plain);
        checkAnswer(answer, wire, fault);
        const code = tokenRefusalOf(answer);
        if (code === undefined) return answer;
        await init.tokens.refused(redemption, code);
        if (attempt >= init.maxAttempts) {
          throw new DiscoveryClientError(
            code,
            `${url}: ${OBLIVIOUS_CLIENT_ERRORS[code]} (${code}, in the ODoH answer's Extended DNS Error)`,
            { url: proxyName, detail: code },
          );
        }
      }
    },
  };
}

/** `host:port` of the target as given, or a `TypeError`. */
function odohTargetOf(value: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(`https://${value}`);
  } catch {
    parsed = undefined;
  }
  if (
    parsed === undefined ||
    parsed.port === '' ||
    parsed.host !== value.toLowerCase() ||
    parsed.username !== '' ||
    parsed.pathname !== '/' ||
    value.includes('/')
  ) {
    throw new TypeError(`the ODoH target ${JSON.stringify(value)} is not host:port`);
  }
  return parsed.host;
}

/** The query a caller gave, decoded: one question, not a response. */
function queryOf(wire: Uint8Array, url: string, proxyName: string): Message {
  const bad = (why: string, cause?: unknown): DiscoveryClientError =>
    new DiscoveryClientError('ERR_BAD_REQUEST', `${url}: ${why}; nothing was sent`, {
      url: proxyName,
      ...(cause === undefined ? {} : { cause }),
    });
  if (wire.length > MAX_MESSAGE_OCTETS) throw bad(`the query is over ${MAX_MESSAGE_OCTETS} octets`);
  let query: Message;
  try {
    query = decodeMessage(wire);
  } catch (error) {
    throw bad('the query is not a DNS message', error);
  }
  if (query.flags.qr || query.questions.length !== 1) {
    throw bad('an ODoH query is a DNS query with one question');
  }
  return query;
}

/**
 * `query` with `token` as its one {@link PRIVATE_TOKEN_EDNS_OPTION} (or none), its other EDNS
 * options kept in order; an OPT record added when it had none and a token is to be carried.
 */
function withToken(
  query: Message,
  token: Uint8Array | undefined,
  url: string,
  proxyName: string,
): Uint8Array {
  const options = (query.edns?.options ?? []).filter((o) => o.code !== PRIVATE_TOKEN_EDNS_OPTION);
  const message: Message =
    token === undefined && query.edns === undefined
      ? query
      : {
          ...query,
          edns: {
            ...(query.edns ?? {
              udpPayloadSize: EDNS_UDP_PAYLOAD_OCTETS,
              extendedRcode: 0,
              version: 0,
              dnssecOk: false,
            }),
            options: [
              ...options,
              ...(token === undefined ? [] : [{ code: PRIVATE_TOKEN_EDNS_OPTION, data: token }]),
            ],
          },
        };
  const wire = encodeMessage(message);
  if (wire.length > MAX_MESSAGE_OCTETS) {
    throw new DiscoveryClientError(
      'ERR_BAD_REQUEST',
      `${url}: the query with its token is over ${MAX_MESSAGE_OCTETS} octets; nothing was sent`,
      { url: proxyName },
    );
  }
  return wire;
}

/** An answer must be a response to the query: the same ID, QR set (RFC 1035 §4.1.1). */
function checkAnswer(
  answer: Uint8Array,
  query: Uint8Array,
  fault: (message: string) => DiscoveryClientError,
): void {
  if (answer.length < 12) throw fault('the ODoH answer is shorter than a DNS header');
  if (answer[0] !== query[0] || answer[1] !== query[1] || ((answer[2] ?? 0) & 0x80) === 0) {
    throw fault('the ODoH answer is not a response to the query');
  }
}

/** The token code of a REFUSED answer with Extended DNS Error 18, or undefined. */
function tokenRefusalOf(answer: Uint8Array): OdohTokenRefusal | undefined {
  if (((answer[3] ?? 0) & 0x0f) !== RCODE_REFUSED) return undefined;
  let message: Message;
  try {
    message = decodeMessage(answer);
  } catch {
    return undefined;
  }
  const ede = extendedDnsErrors(message.edns?.options ?? []).find(
    (e) => e.infoCode === EDE_PROHIBITED && TOKEN_REFUSALS.has(e.text),
  );
  return ede?.text as OdohTokenRefusal | undefined;
}
