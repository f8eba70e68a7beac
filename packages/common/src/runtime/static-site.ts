import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { Logger } from './log.js';
import {
  sendBody,
  type HttpRequest,
  type HttpResponse,
  type ResponseOptions,
} from './http-server.js';

/**
 * A small static web site served from memory: the browser pages a server ships (the DP's
 * recipient page, the resolver's lookup page), built into `dist/web/` of their package by
 * `npm run build` (`packages/common/scripts/build-web.mjs`).
 *
 * The files are read once, when the server starts, and never again: a request names a file of
 * that table or gets nothing, so no request path ever reaches the file system (no `..`, no
 * symbolic link, no file added later is served). Each file is sent whole with its length, a
 * strong ETag and the security headers of {@link SITE_HEADERS}; `If-None-Match` gets a 304.
 *
 * Bounds: at most {@link MAX_SITE_FILES} files of at most {@link MAX_SITE_FILE_OCTETS} each; a
 * directory over either bound is refused at start (it is the operator's build, not a client's).
 */

/** Files one site may hold. */
export const MAX_SITE_FILES = 64;
/** Octets of the largest file of a site. */
export const MAX_SITE_FILE_OCTETS = 4 * 1024 * 1024;

/** Content types by file extension; a file of any other extension is not served. */
export const SITE_CONTENT_TYPES: Readonly<Record<string, string>> = Object.freeze({
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
});

/**
 * Headers of every file: scripts, styles and connections from the page's own origin only, no
 * inline script, no framing (clickjacking), no referrer (a page URL never leaks to another
 * site), no MIME sniffing. The pages are built to need nothing more.
 */
export const SITE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
  // Revalidated on every load (the ETag makes that cheap), so a new build is seen at once.
  'cache-control': 'no-cache',
});

/** One file of a site. */
interface SiteFile {
  readonly body: Uint8Array;
  readonly contentType: string;
  readonly etag: string;
}

/** A site loaded into memory. */
export interface StaticSite {
  /** The directory it was read from. */
  readonly dir: string;
  /** The URL path it is mounted at, ending in `/` (e.g. `/recipient/`). */
  readonly mount: string;
  /** The file names served, sorted. */
  readonly files: readonly string[];
  /**
   * Answers a GET or HEAD of a path under the mount (`/mount` redirects to `/mount/`, the mount
   * itself is `index.html`): true when it sent a response, false when the path is not the
   * site's (the caller answers it). Other methods on a site path get a 405.
   */
  handle(req: HttpRequest, res: HttpResponse, options?: ResponseOptions): boolean;
}

/** Why a site could not be loaded. */
export class StaticSiteError extends Error {}

/**
 * Reads the site in `dir` (the files directly in it; subdirectories are ignored) to serve at
 * `mount`. Throws {@link StaticSiteError} when the directory is missing, holds no `index.html`,
 * or passes a bound.
 */
export function loadStaticSite(dir: string, mount: string): StaticSite {
  if (!mount.startsWith('/') || !mount.endsWith('/')) {
    throw new StaticSiteError(`a site's mount starts and ends with "/", not ${mount}`);
  }
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (error) {
    throw new StaticSiteError(
      `the web pages are not built (${dir}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}); run "npm run build"`,
    );
  }
  const table = new Map<string, SiteFile>();
  for (const name of names) {
    const contentType = SITE_CONTENT_TYPES[extname(name).toLowerCase()];
    const path = join(dir, name);
    if (contentType === undefined || !statSync(path).isFile()) continue;
    if (table.size >= MAX_SITE_FILES) {
      throw new StaticSiteError(`${dir} holds more than ${MAX_SITE_FILES} files`);
    }
    if (statSync(path).size > MAX_SITE_FILE_OCTETS) {
      throw new StaticSiteError(`${path} is larger than ${MAX_SITE_FILE_OCTETS} octets`);
    }
    const body = new Uint8Array(readFileSync(path));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    table.set(name, { body, contentType, etag });
  }
  if (!table.has('index.html')) {
    throw new StaticSiteError(`${dir} has no index.html; run "npm run build"`);
  }
  const bare = mount.slice(0, -1);
  return {
    dir,
    mount,
    files: [...table.keys()],
    handle(req, res, options = {}) {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (path !== bare && !path.startsWith(mount)) return false;
      const method = req.method ?? 'GET';
      const headers = { ...SITE_HEADERS, allow: 'GET, HEAD' };
      if (method !== 'GET' && method !== 'HEAD') {
        sendBody(
          req,
          res,
          {
            status: 405,
            contentType: 'text/plain; charset=utf-8',
            body: 'method not allowed\n',
            headers,
          },
          options,
        );
        return true;
      }
      if (path === bare) {
        sendBody(
          req,
          res,
          {
            status: 308,
            contentType: 'text/plain; charset=utf-8',
            body: `${mount}\n`,
            headers: { ...headers, location: mount },
          },
          options,
        );
        return true;
      }
      const name = path === mount ? 'index.html' : path.slice(mount.length);
      const file = table.get(name);
      if (file === undefined) {
        sendBody(
          req,
          res,
          { status: 404, contentType: 'text/plain; charset=utf-8', body: 'not found\n', headers },
          options,
        );
        return true;
      }
      if (req.headers['if-none-match'] === file.etag) {
        sendBody(
          req,
          res,
          {
            status: 304,
            contentType: file.contentType,
            body: new Uint8Array(0),
            headers: { ...headers, etag: file.etag },
          },
          options,
        );
        return true;
      }
      sendBody(
        req,
        res,
        {
          status: 200,
          contentType: file.contentType,
          // For HEAD, node sends the headers (the length of the file) and no body.
          body: file.body,
          headers: { ...headers, etag: file.etag },
        },
        options,
      );
      return true;
    },
  };
}

/**
 * The site a server mounts as its config setting asks (the DP's `registration.page`, the
 * resolver's `lookupPage`): `false`, none; `true`, the site in `dir`, or the
 * {@link StaticSiteError} saying why it cannot be read (the server does not start); absent, the
 * site when it can be read, else none, with one warning `event` on `log` (a server installed
 * without its pages serves its API alone).
 */
export function siteForSetting(
  setting: boolean | undefined,
  dir: string,
  mount: string,
  log: Logger,
  event: string,
): StaticSite | undefined {
  if (setting === false) return undefined;
  try {
    return loadStaticSite(dir, mount);
  } catch (error) {
    if (setting === true || !(error instanceof StaticSiteError)) throw error;
    log.warn(event, { dir, reason: error.message });
    return undefined;
  }
}
