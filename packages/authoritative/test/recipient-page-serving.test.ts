import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  StaticSiteError,
  parseConfigText,
  type LogFields,
  type Logger,
} from '@mimi-discovery/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dpConfigSchema } from '../src/config.js';
import { createOutboxChannel } from '../src/registration/channels.js';
import { RECIPIENT_PAGE_MOUNT, loadRecipientPage } from '../src/registration/recipient-page.js';
import {
  startRegistrationApi,
  type RegistrationApi,
} from '../src/registration/registration-api.js';
import { createRegistrar } from '../src/registration/registration.js';
import { PHONE, createFixture, lastCode, type Fixture } from './registration-fixture.js';

// The DP's recipient page on its registration API port: the page's files from memory with the
// site's security headers, `/` redirecting to it, the POST routes unchanged beside it, and the
// config setting `registration.page` (on, off, or when built).

const INDEX = '<!doctype html><title>page</title><script type="module" src="main.js"></script>';

/** A logger that keeps its warnings. */
function keepingLogger(): Logger & { readonly warnings: Array<[string, LogFields | undefined]> } {
  const warnings: Array<[string, LogFields | undefined]> = [];
  const logger = {
    namespace: 'test',
    warnings,
    debug: () => {},
    info: () => {},
    warn: (event: string, fields?: LogFields) => void warnings.push([event, fields]),
    error: () => {},
    child: (): Logger => logger,
  };
  return logger;
}

let dir: string;
let built: string;
let fixture: Fixture;
let api: RegistrationApi | undefined;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mimi-page-serving-'));
  built = join(dir, 'web');
  mkdirSync(built);
  writeFileSync(join(built, 'index.html'), INDEX);
  writeFileSync(join(built, 'main.js'), 'export {};\n');
  fixture = await createFixture();
});

afterEach(async () => {
  await api?.close();
  api = undefined;
  await fixture.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function startWith(page: ReturnType<typeof loadRecipientPage>): Promise<RegistrationApi> {
  const registrar = createRegistrar({
    store: fixture.store,
    channels: { fallback: createOutboxChannel(fixture.outbox) },
    now: () => fixture.clock.now,
  });
  api = await startRegistrationApi({ port: 0 }, registrar, page === undefined ? {} : { page });
  return api;
}

describe('loadRecipientPage (config registration.page)', () => {
  it('loads the built page when on or unset', () => {
    const log = keepingLogger();
    expect(loadRecipientPage(true, log, built)?.files).toEqual(['index.html', 'main.js']);
    expect(loadRecipientPage(undefined, log, built)?.mount).toBe(RECIPIENT_PAGE_MOUNT);
    expect(log.warnings).toEqual([]);
  });

  it('serves nothing when off, even when built', () => {
    expect(loadRecipientPage(false, keepingLogger(), built)).toBeUndefined();
  });

  it('unset and not built: a warning, and the API alone', () => {
    const log = keepingLogger();
    expect(loadRecipientPage(undefined, log, join(dir, 'missing'))).toBeUndefined();
    expect(log.warnings.map(([event]) => event)).toEqual(['recipient-page-missing']);
  });

  it('on and not built: the DP does not start', () => {
    expect(() => loadRecipientPage(true, keepingLogger(), join(dir, 'missing'))).toThrow(
      StaticSiteError,
    );
    // A directory without index.html is not a page either.
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    expect(() => loadRecipientPage(true, keepingLogger(), empty)).toThrow(/index\.html/);
  });
});

describe('config registration.page', () => {
  const dp = (registration: string): string =>
    `{ "role": "dp", "dataDir": "/var/lib/dp", "registration": ${registration} }`;

  it('is a boolean, absent by default', () => {
    expect(parseConfigText(dp('{}'), dpConfigSchema).registration?.page).toBeUndefined();
    expect(parseConfigText(dp('{ "page": false }'), dpConfigSchema).registration?.page).toBe(false);
    expect(parseConfigText(dp('{ "page": true }'), dpConfigSchema).registration?.page).toBe(true);
  });

  it('refuses anything else, naming the key', () => {
    for (const value of ['"yes"', '1', 'null', '"/recipient/"']) {
      expect(() => parseConfigText(dp(`{ "page": ${value} }`), dpConfigSchema)).toThrow(
        ConfigError,
      );
      expect(() => parseConfigText(dp(`{ "page": ${value} }`), dpConfigSchema)).toThrow(
        /registration\.page/,
      );
    }
  });
});

describe('the registration API with the recipient page', () => {
  it('serves the page under /recipient/ with the site headers, and / redirects there', async () => {
    const { url } = await startWith(loadRecipientPage(true, keepingLogger(), built));
    const page = await fetch(`${url}/recipient/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(await page.text()).toBe(INDEX);
    const script = await fetch(`${url}/recipient/main.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const root = await fetch(`${url}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/recipient/');
    const head = await fetch(`${url}/recipient/`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('answers a path of no file, a path outside the table and another method as it should', async () => {
    const { url } = await startWith(loadRecipientPage(true, keepingLogger(), built));
    expect((await fetch(`${url}/recipient/nothing.js`)).status).toBe(404);
    expect((await fetch(`${url}/recipient/..%2Fpackage.json`)).status).toBe(404);
    const post = await fetch(`${url}/recipient/`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('keeps the POST routes, and their refusals, beside the page', async () => {
    const { url } = await startWith(loadRecipientPage(true, keepingLogger(), built));
    const proved = await fetch(`${url}/v1/prove`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ csi: '+44 20 7946 0018' }),
    });
    expect(proved.status).toBe(202);
    expect(((await proved.json()) as { csi: string }).csi).toBe(PHONE);
    expect(lastCode(fixture.outbox, PHONE)).toMatch(/^\d+$/);
    // A GET of a route is still the API's 405, not the page's.
    const get = await fetch(`${url}/v1/prove`);
    expect(get.status).toBe(405);
    expect(((await get.json()) as { error: { code: string } }).error.code).toBe(
      'ERR_METHOD_NOT_ALLOWED',
    );
    expect(
      ((await (await fetch(`${url}/v1/nothing`)).json()) as { error: { code: string } }).error.code,
    ).toBe('ERR_ROUTE_NOT_FOUND');
  });

  it('without the page, / and /recipient/ are unknown routes', async () => {
    const { url } = await startWith(loadRecipientPage(false, keepingLogger(), built));
    for (const path of ['/', '/recipient/']) {
      const response = await fetch(`${url}${path}`);
      expect(response.status).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
        'ERR_ROUTE_NOT_FOUND',
      );
    }
  });
});
