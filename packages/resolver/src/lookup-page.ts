import { fileURLToPath } from 'node:url';
import { siteForSetting, type Logger, type StaticSite } from '@mimi-discovery/common';

/**
 * The lookup page (`web/` of this package, built by `npm run build` into `dist/web/`): a page
 * for an MSP's support staff, served by the JSON API on its own port at {@link LOOKUP_PAGE_PATH}.
 * A person types a phone number or an email address, and the page shows the verified result of
 * `GET /v1/discover` on the same origin — the status in words, the ranked MSPs, and where each
 * mapping came from (zone, server, prover, key, seq, dates, the "new" bit, sealed boxes by key
 * id, never opened). It adds no route and no data: everything it shows is what the API answers
 * any client, and every limit of the API applies to its requests.
 *
 * Config key `lookupPage` of a resolver: absent, the page is served when it is built (a resolver
 * installed without its pages logs `lookup-page-unavailable` once and serves the API alone);
 * `true`, it must be built or the resolver refuses to start; `false`, it is not served.
 */

/** The URL path the page is served at, on the JSON API's port. */
export const LOOKUP_PAGE_PATH = '/lookup/';

/**
 * The directory of the built page: `dist/web/` of this package. This module sits one level
 * below the package root both as source (`src/`) and built (`dist/`), so the path is the same.
 */
export const LOOKUP_PAGE_DIR = fileURLToPath(new URL('../dist/web/', import.meta.url));

/**
 * The lookup page to mount on the JSON API, as `setting` (config `lookupPage`) asks: `false`,
 * none; `true`, the page in `dir`, or the {@link StaticSiteError} saying why it cannot be read;
 * absent, the page when it can be read, else none, with one warning on `log`.
 */
export function lookupPageFor(
  setting: boolean | undefined,
  log: Logger,
  dir: string = LOOKUP_PAGE_DIR,
): StaticSite | undefined {
  return siteForSetting(setting, dir, LOOKUP_PAGE_PATH, log, 'lookup-page-unavailable');
}
