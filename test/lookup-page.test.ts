import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SITE_HEADERS,
  StaticSiteError,
  createLogger,
  generateAudienceKey,
  parseCsi,
  sealMsps,
  silentLogger,
} from '@mimi-discovery/common';
import {
  LOOKUP_PAGE_DIR,
  LOOKUP_PAGE_PATH,
  createResolver,
  lookupPageFor,
  startResolverServer,
  type DiscoveryResult,
  type Resolver,
  type RunningResolverServer,
} from '@mimi-discovery/resolver';
import { BROWSER_STEP_MS, chromiumPath, launchChromium } from './helpers/browser.js';
import { ALICE, CSIS, buildHierarchy, type Hierarchy } from './helpers/hierarchy.js';

// The lookup page (issue 17): the resolver serves it on its JSON API's port at /lookup/, and an
// MSP's support staff look a contact up through it. A real root and +44 DP (the hierarchy
// fixture) and our resolver, started as `resolver serve` starts it; Chromium (Debian's, through
// playwright-core) drives the page as a person would. The found CSI's mapping carries a free tag
// that is markup: the page must show it as text, and no element or script may come of it.

/** A free tag that would be an element (and run its handler, CSP aside) if parsed as HTML. */
const MARKUP_TAG = '<img src=x onerror="window.pwned=1">';
/** Its words, as they must appear on the page. */
const FOUND = parseCsi('+44 20 7946 0031');
const SEALED_PROVIDER = 'hidden.example';
/** Where screenshots go: the docs when asked for, else a temporary directory. */
const UPDATE_SCREENSHOTS = process.env['MIMI_UPDATE_SCREENSHOTS'] === '1';
const REPO = join(import.meta.dirname, '..');

let h: Hierarchy;
let resolver: Resolver;
let server: RunningResolverServer;
let apiUrl: string;
let agent: Agent;
let audienceKid: string;
let expected: DiscoveryResult;
let shotDir: string;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function send(url: string, method: 'GET' | 'HEAD' | 'POST' = 'GET'): Promise<Reply> {
  const response = await request(url, { method, dispatcher: agent });
  return {
    status: response.statusCode,
    headers: response.headers,
    body: await response.body.text(),
  };
}

beforeAll(async () => {
  h = await buildHierarchy();
  agent = new Agent({ connect: { ca: h.caPem } });
  const audience = await generateAudienceKey();
  audienceKid = Buffer.from(audience.kid).toString('base64url');
  const box = await sealMsps(
    FOUND,
    ALICE.publicKey,
    [{ provider: SEALED_PROVIDER, tags: [] }],
    audience,
  );
  await h.publish(FOUND, ALICE, {
    nbf: Math.floor(Date.now() / 1000) - 3600,
    msps: [
      {
        provider: 'chat.example',
        tags: ['personal', 'pref:1', MARKUP_TAG],
        uri: 'https://chat.example/u/alice',
      },
      { provider: 'work.example', tags: ['business', 'pref:2'] },
    ],
    sealed: [box],
  });
  resolver = createResolver(h.resolverConfig(), { log: silentLogger });
  server = await startResolverServer(
    { listen: { api: 0 }, tls: h.tls, lookupPage: true },
    resolver,
    { log: silentLogger },
  );
  apiUrl = server.api?.url ?? '';
  expected = await resolver.discover(FOUND);
  shotDir = UPDATE_SCREENSHOTS
    ? join(REPO, 'docs', 'images')
    : mkdtempSync(join(tmpdir(), 'mimi-lookup-shots-'));
}, 120_000);

afterAll(async () => {
  await server?.close();
  await resolver?.close();
  await agent?.close();
  await h?.close();
  if (!UPDATE_SCREENSHOTS && shotDir !== undefined)
    rmSync(shotDir, { recursive: true, force: true });
});

describe('the lookup page on the JSON API port', () => {
  it('serves the page at /lookup/ with the site headers, beside /v1/discover', async () => {
    expect(expected.status).toBe('found');
    const page = await send(`${apiUrl}${LOOKUP_PAGE_PATH}`);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(SITE_HEADERS['content-security-policy']);
    expect(page.body).toContain('<script type="module" src="main.js"></script>');
    const script = await send(`${apiUrl}${LOOKUP_PAGE_PATH}main.js`);
    expect(script.status).toBe(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    // The page asks the API of its own origin, which still answers as before.
    const discover = await send(`${apiUrl}/v1/discover?csi=${encodeURIComponent(FOUND)}`);
    expect(discover.status).toBe(200);
    expect((JSON.parse(discover.body) as { status: string }).status).toBe('found');
  });

  it('redirects /lookup to /lookup/, refuses other methods, and serves no other file', async () => {
    const bare = await send(`${apiUrl}/lookup`);
    expect(bare.status).toBe(308);
    expect(bare.headers['location']).toBe(LOOKUP_PAGE_PATH);
    expect((await send(`${apiUrl}${LOOKUP_PAGE_PATH}`, 'POST')).status).toBe(405);
    expect((await send(`${apiUrl}${LOOKUP_PAGE_PATH}main.ts`)).status).toBe(404);
    expect((await send(`${apiUrl}${LOOKUP_PAGE_PATH}..%2F..%2Fpackage.json`)).status).toBe(404);
    const other = await send(`${apiUrl}/elsewhere`);
    expect(other.status).toBe(404);
    expect(other.body).toContain('ERR_NOT_FOUND');
    expect(other.body).toContain(LOOKUP_PAGE_PATH);
  });

  it('is not served with lookupPage false: /lookup/ is the API 404', async () => {
    const off = await startResolverServer(
      { listen: { api: 0 }, tls: h.tls, lookupPage: false },
      resolver,
      { log: silentLogger },
    );
    try {
      const reply = await send(`${off.api?.url ?? ''}${LOOKUP_PAGE_PATH}`);
      expect(reply.status).toBe(404);
      expect(JSON.parse(reply.body)).toMatchObject({ error: { code: 'ERR_NOT_FOUND' } });
      expect(reply.body).not.toContain(`and the page ${LOOKUP_PAGE_PATH}`);
    } finally {
      await off.close();
    }
  });

  it('refuses to start when the page is required and not built; absent, it warns and goes on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimi-no-page-'));
    const missing = join(dir, 'web');
    try {
      expect(() => lookupPageFor(true, silentLogger, missing)).toThrow(StaticSiteError);
      mkdirSync(missing);
      // A directory without index.html is no page either.
      expect(() => lookupPageFor(true, silentLogger, missing)).toThrow(/index\.html/);
      const lines: string[] = [];
      const log = createLogger('resolver', { level: 'warn', write: (line) => lines.push(line) });
      expect(lookupPageFor(undefined, log, missing)).toBeUndefined();
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('lookup-page-unavailable');
      expect(lookupPageFor(false, log, LOOKUP_PAGE_DIR)).toBeUndefined();
      expect(lookupPageFor(undefined, log, LOOKUP_PAGE_DIR)?.files).toContain('index.html');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const chromium = chromiumPath();

describe.skipIf(chromium === undefined)('the lookup page in Chromium', () => {
  let browser: Browser;
  let context: BrowserContext;
  /** Console errors and script errors of each page: a page that runs as built has none. */
  const problemsOf = new WeakMap<Page, string[]>();
  const problems = (page: Page): string[] => problemsOf.get(page) ?? [];

  beforeAll(async () => {
    browser = await launchChromium(chromium ?? '');
    context = await browser.newContext({ ignoreHTTPSErrors: true });
    context.setDefaultTimeout(BROWSER_STEP_MS);
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
  });

  async function openPage(viewport?: { width: number; height: number }): Promise<Page> {
    const page = await context.newPage();
    const problems: string[] = [];
    problemsOf.set(page, problems);
    if (viewport !== undefined) await page.setViewportSize(viewport);
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    await page.goto(`${apiUrl}${LOOKUP_PAGE_PATH}`);
    return page;
  }

  async function lookUp(page: Page, csi: string, context = ''): Promise<void> {
    await page.getByLabel('Phone number or email address').fill(csi);
    await page.getByLabel('Context (optional)').fill(context);
    await page.getByRole('button', { name: 'Look up' }).click();
    await waitForResult(page);
  }

  /** Waits for the request out to be answered: the section filled, its heading focused. */
  async function waitForResult(page: Page): Promise<void> {
    // The page's own state, read by CSS: the tests compile without the DOM's types.
    await page.waitForSelector('#result[aria-busy="false"]:not([hidden]) #result-heading:focus', {
      timeout: BROWSER_STEP_MS,
    });
  }

  it('shows a found CSI: its apps in order, and the zone, server and prover of its mapping', async () => {
    const page = await openPage();
    await lookUp(page, '+44 20 7946 0031');
    const section = page.locator('#result');
    await expect.poll(() => section.getAttribute('class')).toBe('result found');
    const text = (await section.innerText()).replace(/\s+/g, ' ');
    expect(text).toContain('Found: this person can be reached');
    const mapping = expected.mappings[0];
    if (mapping === undefined) throw new Error('no mapping resolved');
    expect(mapping.zone).toBe(h.phone.zone);
    expect(text).toContain(mapping.zone);
    expect(text).toContain(mapping.server);
    expect(text).toContain(mapping.prover);
    expect(text).toContain(mapping.key);
    // The ranked apps, in the recipient's order (pref:1 before pref:2).
    const apps = await page.locator('ol.msps > li h4').allTextContents();
    expect(apps).toEqual(['chat.example', 'work.example']);
    // The sealed box: counted, its key id shown, never opened.
    expect(text).toContain('1 box, not opened here');
    expect(text).toContain(audienceKid);
    expect(text).not.toContain(SEALED_PROVIDER);
    // Dates in words, and the new bit.
    expect(text).toContain(`${new Date(mapping.iat * 1000).toISOString().slice(0, 10)}`);
    expect(text).toMatch(/New key no/);
    expect(problems(page)).toEqual([]);
    await page.close();
  });

  it('shows markup in a free tag as text: no element is made of it and no script runs', async () => {
    const page = await openPage();
    const violations: string[] = [];
    await page.exposeFunction('reportViolation', (v: string) => violations.push(v));
    await page.evaluate(
      "document.addEventListener('securitypolicyviolation', (e) => void reportViolation(e.violatedDirective))",
    );
    await lookUp(page, FOUND);
    const tags = await page.locator('ol.msps ul.tags > li').allTextContents();
    expect(tags).toContain(MARKUP_TAG);
    // Had the tag been parsed as HTML, an <img> would be in the result (and its inline handler
    // would be refused by the CSP, a violation event).
    expect(await page.locator('#result img').count()).toBe(0);
    expect(await page.evaluate('typeof window.pwned')).toBe('undefined');
    expect(violations).toEqual([]);
    expect(problems(page)).toEqual([]);
    await page.close();
  });

  it('says "not registered" in words for an unknown CSI', async () => {
    const page = await openPage();
    await lookUp(page, CSIS.none);
    const section = page.locator('#result');
    expect(await section.getAttribute('class')).toBe('result none');
    const text = await section.innerText();
    expect(text).toContain('Not registered (none)');
    expect(text).toContain('No one has published a mapping');
    expect(await page.locator('#status').textContent()).toBe('Not registered (none)');
    await page.close();
  });

  it("shows the API's error for input that is not a CSI, and for a bad context", async () => {
    const page = await openPage();
    await lookUp(page, 'not a phone number');
    let text = await page.locator('#result').innerText();
    expect(text).toContain('The resolver refused the request');
    expect(text).toContain('ERR_CSI_INVALID');
    await lookUp(page, FOUND, 'Not A Context');
    text = await page.locator('#result').innerText();
    expect(text).toContain('ERR_BAD_REQUEST');
    expect(text).toContain('context');
    // An empty field is caught on the page, and the field says it is invalid.
    await page.getByLabel('Phone number or email address').fill('   ');
    await page.getByRole('button', { name: 'Look up' }).click();
    expect(await page.locator('#status').textContent()).toContain('Type a phone number');
    expect(
      await page.getByLabel('Phone number or email address').getAttribute('aria-invalid'),
    ).toBe('true');
    await page.close();
  });

  it('filters by context as a sender in that context sees it', async () => {
    const page = await openPage();
    await lookUp(page, FOUND, 'business');
    const apps = await page.locator('ol.msps > li h4').allTextContents();
    expect(apps).toEqual(['work.example']);
    await page.close();
  });

  it('fits a 390-pixel-wide screen without horizontal scrolling, by keyboard', async () => {
    const page = await openPage({ width: 390, height: 844 });
    // By keyboard alone: the field has the first tab stop, Enter submits.
    await page.keyboard.press('Tab');
    expect(await page.locator('#csi:focus').count()).toBe(1);
    await page.keyboard.type(FOUND);
    await page.keyboard.press('Enter');
    await waitForResult(page);
    expect(await page.locator('#result-heading').textContent()).toBe(
      'Found: this person can be reached',
    );
    const widths = (await page.evaluate(
      '({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth })',
    )) as { scroll: number; client: number };
    expect(widths.scroll).toBeLessThanOrEqual(widths.client);
    await page.screenshot({ path: join(shotDir, 'lookup-page.png'), fullPage: true });
    expect(problems(page)).toEqual([]);
    await page.close();
  });
});
