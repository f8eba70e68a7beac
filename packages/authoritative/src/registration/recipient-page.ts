import { join } from 'node:path';
import {
  sendBody,
  siteForSetting,
  type HttpRequest,
  type HttpResponse,
  type Logger,
  type ResponseOptions,
  type StaticSite,
} from '@mimi-discovery/common';

/**
 * The recipient page (docs/recipients.md, "The recipient page"): the static page a DP serves on
 * its registration API port, in which a person proves their phone number or email address,
 * publishes the apps where they can be reached, opts out and removes, with a key made and kept
 * in their browser. The page is built from `packages/authoritative/web/` into `dist/web/` by
 * `npm run build`; it calls the API of its own origin only (`/v1/prove`, `/v1/confirm`,
 * `/v1/mappings`, `/v1/removals`), so it needs nothing from the server beyond its files.
 *
 * The files are read once at start (`loadStaticSite` of `@mimi-discovery/common`); a request
 * names a file of that table or is answered by the API's routes.
 */

/** Where the page is mounted on the registration API port. */
export const RECIPIENT_PAGE_MOUNT = '/recipient/';

/**
 * The built page: `dist/web/` of this package. Both this module's source
 * (`src/registration/`) and its build (`dist/registration/`) sit two folders below the package.
 */
export const RECIPIENT_PAGE_DIR = join(import.meta.dirname, '..', '..', 'dist', 'web');

/**
 * Whether the DP serves the page (config `registration.page`): `true` requires it (a DP whose
 * page is not built does not start), `false` turns it off, `undefined` serves it when it is
 * built and otherwise logs `recipient-page-missing` once and serves the API alone.
 */
export type RecipientPageSetting = boolean | undefined;

/**
 * The page to serve for `setting`, or undefined when it is off or (with `undefined`) not built.
 * Throws {@link StaticSiteError} when `setting` is `true` and the page cannot be loaded.
 */
export function loadRecipientPage(
  setting: RecipientPageSetting,
  log: Logger,
  dir: string = RECIPIENT_PAGE_DIR,
): StaticSite | undefined {
  return siteForSetting(setting, dir, RECIPIENT_PAGE_MOUNT, log, 'recipient-page-missing');
}

/**
 * Answers a GET or HEAD of the page or of `/` (a redirect to the page); true when it answered.
 * Anything else (the POST routes, unknown paths) is left to the API.
 */
export function servePage(
  site: StaticSite,
  req: HttpRequest,
  res: HttpResponse,
  options: ResponseOptions,
): boolean {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  if (path === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
    sendBody(
      req,
      res,
      {
        status: 302,
        contentType: 'text/plain; charset=utf-8',
        body: `see ${RECIPIENT_PAGE_MOUNT}\n`,
        headers: { location: RECIPIENT_PAGE_MOUNT },
      },
      options,
    );
    return true;
  }
  return site.handle(req, res, options);
}
