import { RELAY_MAX_TARGET_PATH_LENGTH } from './limits.js';

/**
 * The relay's resources, and the one place a request target is read:
 *
 * | request                                                          | forwarded to                         |
 * | ---------------------------------------------------------------- | ------------------------------------ |
 * | `POST /ohttp/<name>` (`message/ohttp-req`)                       | `POST` the gateway URL of `<name>`   |
 * | `GET /ohttp/<name>`                                              | `GET` the gateway URL (its key configs, RFC 9540 §4) |
 * | `POST /proxy?targethost=H&targetpath=P` (`application/oblivious-dns-message`) | `POST https://H P` (RFC 9230 §4.1) |
 * | `GET /proxy?targethost=H&targetpath=/.well-known/odohconfigs`     | `GET https://H/.well-known/odohconfigs` |
 *
 * `H` must be on the allow list (`odohTargets`), compared as `host:port` after the same
 * normalisation as the list's entries ({@link targetAuthority}: lowercase, port 443 when none
 * is given, IPv6 in brackets): `Target.Example` and `target.example:443` are one target.
 *
 * Worked example: `/proxy?targethost=127.0.0.1%3A8453&targetpath=%2Fdns-query` with
 * `odohTargets: ["127.0.0.1:8453"]` is `{ kind: 'odoh', authority: '127.0.0.1:8453', path:
 * '/dns-query', url: https://127.0.0.1:8453/dns-query }`.
 */

/** The path prefix of the OHTTP relay resources: `/ohttp/<gateway name>`. */
export const OHTTP_RELAY_PATH_PREFIX = '/ohttp/';
/** The path of the ODoH proxy (RFC 9230 §4.1 leaves it to the proxy; `/proxy` as its examples). */
export const ODOH_PROXY_PATH = '/proxy';
/** The only `targetpath` a GET through the ODoH proxy may ask for (RFC 9230 §6.1). */
export const ODOH_CONFIGS_PATH = '/.well-known/odohconfigs';
/** A gateway's name in the relay's config and URL: one lowercase DNS-label-like path segment. */
export const GATEWAY_NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Where a request goes, or why it goes nowhere. */
export type RelayTarget =
  | { readonly kind: 'ohttp'; readonly gateway: string; readonly url: URL }
  | {
      readonly kind: 'odoh';
      /** `host:port`, normalised: the allow list's entry. */
      readonly authority: string;
      readonly path: string;
      readonly url: URL;
    }
  /** No such resource: 404. */
  | { readonly kind: 'not-found'; readonly path: string }
  /** A proxy request without a usable `targethost`/`targetpath`: 400, with the reason. */
  | { readonly kind: 'bad-request'; readonly reason: string }
  /** A proxy target not on the allow list: 403, nothing forwarded. */
  | { readonly kind: 'not-allowed'; readonly authority: string };

/** The relay's routing table: gateway URLs by name, the ODoH allow list normalised. */
export interface RelayRoutes {
  readonly gateways: ReadonlyMap<string, URL>;
  /** Entries as {@link targetAuthority} gives them. */
  readonly odohTargets: ReadonlySet<string>;
}

/**
 * `host:port` for a target host as written (`Example.COM`, `example.com:8443`, `[::1]:443`,
 * `127.0.0.1`): lowercase, IPv6 in brackets, port 443 (HTTPS) when none is given. Undefined for
 * anything else: a path, credentials, a query, an empty host, a port out of range.
 */
export function targetAuthority(text: string): string | undefined {
  if (text === '' || /[/?#@\\\s]/.test(text)) return undefined;
  let url: URL;
  try {
    url = new URL(`https://${text}`);
  } catch {
    return undefined;
  }
  if (url.hostname === '' || url.pathname !== '/' || url.username !== '') return undefined;
  // The WHATWG URL parser drops the scheme's default port: put it back, so that both spellings
  // meet in one entry.
  return `${url.hostname}:${url.port === '' ? '443' : url.port}`;
}

/** The routing table of a config: gateway URLs parsed, the allow list normalised. */
export function createRelayRoutes(
  gateways: Readonly<Record<string, string>>,
  odohTargets: readonly string[],
): RelayRoutes {
  const table = new Map<string, URL>();
  for (const [name, url] of Object.entries(gateways)) {
    if (!GATEWAY_NAME_PATTERN.test(name)) {
      throw new RangeError(`gateway name ${JSON.stringify(name)} is not a lowercase label`);
    }
    table.set(name, new URL(url));
  }
  const allowed = new Set<string>();
  for (const target of odohTargets) {
    const authority = targetAuthority(target);
    if (authority === undefined) {
      throw new RangeError(`ODoH target ${JSON.stringify(target)} is not host:port`);
    }
    allowed.add(authority);
  }
  return { gateways: table, odohTargets: allowed };
}

/** Where the request target `target` (path and query, as on the request line) goes. */
export function routeRequest(routes: RelayRoutes, target: string): RelayTarget {
  const at = target.indexOf('?');
  const path = at < 0 ? target : target.slice(0, at);
  const query = at < 0 ? '' : target.slice(at + 1);
  if (path.startsWith(OHTTP_RELAY_PATH_PREFIX)) {
    const name = path.slice(OHTTP_RELAY_PATH_PREFIX.length);
    const url = routes.gateways.get(name);
    // A query on a relay resource means nothing to the gateway and is not forwarded: no route.
    if (url === undefined || query !== '') return { kind: 'not-found', path };
    return { kind: 'ohttp', gateway: name, url };
  }
  if (path !== ODOH_PROXY_PATH) return { kind: 'not-found', path };
  return proxyTarget(routes, query);
}

/** The target of an ODoH proxy request (RFC 9230 §4.1: `targethost`, `targetpath`). */
function proxyTarget(routes: RelayRoutes, query: string): RelayTarget {
  const params = new URLSearchParams(query);
  for (const name of params.keys()) {
    if (name !== 'targethost' && name !== 'targetpath') {
      return { kind: 'bad-request', reason: `unknown query parameter ${JSON.stringify(name)}` };
    }
  }
  const hosts = params.getAll('targethost');
  const paths = params.getAll('targetpath');
  const [host] = hosts;
  const [path] = paths;
  if (host === undefined || path === undefined || hosts.length > 1 || paths.length > 1) {
    return { kind: 'bad-request', reason: 'give targethost and targetpath once each' };
  }
  const authority = targetAuthority(host);
  if (authority === undefined) {
    return { kind: 'bad-request', reason: 'targethost is not a host or host:port' };
  }
  if (!isTargetPath(path)) {
    return {
      kind: 'bad-request',
      reason: `targetpath must be an absolute path of at most ${RELAY_MAX_TARGET_PATH_LENGTH} characters, without a query`,
    };
  }
  if (!routes.odohTargets.has(authority)) return { kind: 'not-allowed', authority };
  return { kind: 'odoh', authority, path, url: new URL(`https://${authority}${path}`) };
}

/**
 * An absolute path (`/dns-query`) and nothing else: a `//` start would name another host, and a
 * query, a fragment, spaces or control characters have no place in a target path.
 */
function isTargetPath(path: string): boolean {
  if (path.length > RELAY_MAX_TARGET_PATH_LENGTH) return false;
  if (!path.startsWith('/') || path.startsWith('//')) return false;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    // Controls (C0, DEL), space, `#`, `?`, `\`.
    if (c <= 0x20 || c === 0x7f || c === 0x23 || c === 0x3f || c === 0x5c) return false;
  }
  return true;
}
