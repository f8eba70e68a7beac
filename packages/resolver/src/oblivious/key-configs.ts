import { canonicalName, type ResourceRecord } from '@mimi-discovery/common';
import { DiscoveryClientError } from '../discovery-client-base.js';
import type { Resolver } from '../types.js';
import {
  OHTTP_KEYS_TYPE,
  decodeKeyConfigs,
  encodeKeyConfig,
  type KeyconfData,
  type OhttpKeyConfig,
} from '@mimi-discovery/common';
import type { HttpTransport } from './transport.js';

/**
 * The gateway's key configuration, as the client learns and checks it:
 *
 * 1. fetched through the relay (a GET on the relay resource, which the relay forwards to the
 *    gateway's `/.well-known/ohttp-gateway`, RFC 9540 §4): an `application/ohttp-keys` list,
 *    newest first;
 * 2. each configuration kept only with the contract's suite (DHKEM(X25519, HKDF-SHA256),
 *    HKDF-SHA256, AES-128-GCM);
 * 3. with a key check, kept only when it is byte-equal to the `cfg` of a KEYCONF `ohttp` entry
 *    at the key name, from an answer the resolver validated as `secure`, with notBefore ≤ now <
 *    notAfter. RFC 9458 §7 leaves key consistency to the deployment: a relay (or a gateway)
 *    that hands one client a key of its own could link that client's requests; the tree, signed
 *    by DNSSEC, is what every client sees alike.
 *
 * The first that remains is used (the newest usable one). It is kept for the `max-age` of the
 * list (at most {@link MAX_KEY_CONFIG_CACHE_SECONDS}) and fetched and checked again after, or
 * when the gateway says it does not know its key id.
 */

/** Largest `application/ohttp-keys` body read from the relay, in octets. */
export const MAX_KEY_CONFIGS_OCTETS = 16 * 1024;
/** Longest a key configuration is used before it is fetched and checked again, in seconds. */
export const MAX_KEY_CONFIG_CACHE_SECONDS = 3600;
/** Used when the list carries no `max-age`, in seconds. */
export const DEFAULT_KEY_CONFIG_CACHE_SECONDS = 300;

/** Where to check a key configuration: a resolver and the owner of the gateway's KEYCONF. */
export interface KeyCheck {
  readonly resolver: Pick<Resolver, 'resolve'>;
  /** The owner of the gateway's KEYCONF RRset, `resolver.chat.example.email.mimi.arpa`. */
  readonly keyName: string;
}

/** The key configuration in use, fetched and checked on demand. */
export interface KeyConfigSource {
  /** The configuration to encapsulate with, fetched and checked when none is current. */
  current(): Promise<OhttpKeyConfig>;
  /** Forgets the configuration in use (the gateway does not know its key id). */
  invalidate(config: OhttpKeyConfig): void;
}

interface Current {
  readonly config: OhttpKeyConfig;
  readonly until: number;
}

/** A source of key configurations through `relay`. `now` is in seconds. */
export function createKeyConfigSource(init: {
  readonly relay: URL;
  readonly transport: HttpTransport;
  readonly keyCheck: KeyCheck | undefined;
  readonly now: () => number;
}): KeyConfigSource {
  let current: Current | undefined;
  let fetching: Promise<Current> | undefined;

  const fetchChecked = async (): Promise<Current> => {
    const url = `${init.relay.origin}${init.relay.pathname}`;
    const reply = await init.transport.send({
      url: init.relay,
      method: 'GET',
      headers: { accept: OHTTP_KEYS_TYPE },
      maxOctets: MAX_KEY_CONFIGS_OCTETS,
    });
    if (reply.status !== 200) {
      throw new DiscoveryClientError(
        'ERR_RELAY_REFUSED',
        `${url} answered HTTP ${reply.status} to the key configuration request`,
        { url, status: reply.status },
      );
    }
    if (reply.contentType !== OHTTP_KEYS_TYPE) {
      throw new DiscoveryClientError(
        'ERR_API_RESPONSE',
        `${url} answered ${reply.contentType || 'no content type'}, not ${OHTTP_KEYS_TYPE}`,
        { url, status: reply.status },
      );
    }
    let configs: OhttpKeyConfig[];
    try {
      configs = decodeKeyConfigs(reply.body);
    } catch (error) {
      throw new DiscoveryClientError(
        'ERR_API_RESPONSE',
        `${url} answered key configurations that do not decode`,
        { url, status: reply.status, cause: error },
      );
    }
    const usable = configs.filter(hasSuite);
    if (usable.length === 0) {
      throw new DiscoveryClientError(
        'ERR_KEY_CONFIG_UNUSABLE',
        `${url} lists no key configuration with X25519, HKDF-SHA256 and AES-128-GCM`,
        { url, status: reply.status },
      );
    }
    let chosen = usable[0] as OhttpKeyConfig;
    if (init.keyCheck !== undefined) {
      const published = await publishedConfigs(init.keyCheck, init.now(), url);
      const consistent = usable.find((c) => published.has(hex(encodeKeyConfig(c))));
      if (consistent === undefined) {
        throw new DiscoveryClientError(
          'ERR_KEY_INCONSISTENT',
          `the key configuration served through ${url} is not published at ${init.keyCheck.keyName} (KEYCONF ohttp, valid now); nothing was sent`,
          { url },
        );
      }
      chosen = consistent;
    }
    const maxAge = maxAgeOf(reply.headers['cache-control']);
    const seconds = Math.min(
      maxAge ?? DEFAULT_KEY_CONFIG_CACHE_SECONDS,
      MAX_KEY_CONFIG_CACHE_SECONDS,
    );
    return { config: chosen, until: init.now() + seconds };
  };

  return {
    async current() {
      if (current !== undefined && init.now() < current.until) return current.config;
      // One fetch at a time: concurrent callers share it.
      fetching ??= fetchChecked().finally(() => {
        fetching = undefined;
      });
      current = await fetching;
      return current.config;
    },
    invalidate(config) {
      if (current?.config === config) current = undefined;
    },
  };
}

function hasSuite(config: OhttpKeyConfig): boolean {
  return (
    config.kemId === 0x0020 && config.suites.some((s) => s.kdfId === 0x0001 && s.aeadId === 0x0001)
  );
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/**
 * The key configurations of `kind` (default `ohttp`; the ODoH client asks for `odoh`) published
 * at the key name and valid at `nowS` (hex), from a secure answer only; anything else is an
 * `ERR_KEY_INCONSISTENT`.
 */
export async function publishedConfigs(
  check: KeyCheck,
  nowS: number,
  url: string,
  kind: KeyconfData['kind'] = 'ohttp',
): Promise<Set<string>> {
  const inconsistent = (why: string, cause?: unknown): DiscoveryClientError =>
    new DiscoveryClientError(
      'ERR_KEY_INCONSISTENT',
      `cannot check the key configuration of ${url} at ${check.keyName}: ${why}; nothing was sent`,
      { url, ...(cause === undefined ? {} : { cause }) },
    );
  let answer: Awaited<ReturnType<Resolver['resolve']>>;
  try {
    answer = await check.resolver.resolve(check.keyName, 'KEYCONF');
  } catch (error) {
    throw inconsistent('the KEYCONF lookup failed', error);
  }
  if (answer.status !== 'secure') {
    throw inconsistent(`the KEYCONF answer is ${answer.status}, not secure`);
  }
  const owner = canonicalName(check.keyName);
  const out = new Set<string>();
  for (const record of answer.answers) {
    if (canonicalName(record.name) !== owner) continue;
    const data = keyconfOf(record);
    if (data === undefined || data.kind !== kind) continue;
    if (data.notBefore <= nowS && nowS < data.notAfter) out.add(hex(data.config));
  }
  return out;
}

/** The KEYCONF data of a record, or undefined for a record of another type. */
function keyconfOf(record: ResourceRecord): KeyconfData | undefined {
  return record.type === 'KEYCONF' ? record.data : undefined;
}

/** `max-age` of a `cache-control` header (RFC 9111 §5.2.2.1), or undefined. */
export function maxAgeOf(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header.join(',') : (header ?? '');
  const m = /(?:^|[,\s])max-age=(\d{1,9})(?:$|[,\s])/i.exec(value);
  return m === null ? undefined : Number(m[1]);
}
