import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  audienceKeyId,
  buildQuery,
  csiToName,
  decodeMapping,
  formatAudienceKey,
  generateAudienceKey,
  parseCsi,
  queryUdp,
  type Mapping,
} from '@mimi-discovery/common';
import { createDiscoveryClient, type DiscoveryClient } from '@mimi-discovery/resolver';
import {
  BROWSER_STEP_MS,
  chromiumPath,
  launchChromium,
  recordRequests,
  type SeenRequest,
} from './helpers/browser.js';
import {
  DEMO_PORTS,
  DEMO_READY_MS,
  startDemo,
  stopDemo,
  waitReady,
  type Demo,
  type NetworkFile,
  type NetworkServer,
} from './helpers/demo.js';
import { freePortBlock } from './helpers/ports.js';
import { outboxCode } from './helpers/registration.js';

// The recipient page as a person uses it: `mimi-discovery demo` runs as a child process, and
// headless Chromium opens the page of the +44 DP on its registration API port, proves a +44
// number the demo has not registered with the code from the DP's outbox, publishes apps (one
// sealed to an audience key in the desktop run), is found through the demo resolver, opts out
// (the DP serves an empty mapping) and removes (the DP serves no MAP any more: asked directly,
// as the resolver may still hold its cached answer). Once at the default viewport with
// WebCrypto Ed25519, once at 390 × 844 on the portable path (an init script makes WebCrypto
// refuse Ed25519). Every request the browser makes is recorded and searched for the secret key.

const CHROMIUM = chromiumPath();
const UPDATE_SCREENSHOTS = process.env['MIMI_UPDATE_SCREENSHOTS'] === '1';
const IMAGES = join(import.meta.dirname, '..', 'docs', 'images');

let dir: string;
let demo: Demo | undefined;
let net: NetworkFile;
let dp: NetworkServer & { api: string; udp: { host: string; port: number } };
let outbox: string;
let resolver: DiscoveryClient;
let browser: Browser | undefined;
let shots: string;

beforeAll(async () => {
  if (CHROMIUM === undefined) return;
  dir = mkdtempSync(join(tmpdir(), 'mimi-page-'));
  shots = UPDATE_SCREENSHOTS ? IMAGES : join(dir, 'screenshots');
  mkdirSync(shots, { recursive: true });
  const portBase = await freePortBlock(DEMO_PORTS);
  demo = startDemo(['--dir', join(dir, 'net'), '--port-base', String(portBase)]);
  await waitReady(demo);
  net = JSON.parse(readFileSync(join(dir, 'net', 'network.json'), 'utf8')) as NetworkFile;
  const found = net.servers.find((s) => s.role === 'dp' && s.ranges.includes('+44'));
  if (found?.api == null || found.udp === null) throw new Error('the demo has no +44 DP');
  dp = { ...found, api: found.api, udp: found.udp };
  const config = JSON.parse(readFileSync(dp.config, 'utf8')) as {
    registration: { channels: { outbox: { path: string } } };
  };
  outbox = config.registration.channels.outbox.path;
  resolver = createDiscoveryClient({ url: net.resolver.api, ca: readFileSync(net.ca, 'utf8') });
  browser = await launchChromium(CHROMIUM);
}, DEMO_READY_MS + 30_000);

afterAll(async () => {
  await browser?.close();
  await resolver?.close();
  await stopDemo(demo);
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** What the page stored in IndexedDB for `csi`, as plain values. */
interface StoredKey {
  backend: string;
  publicKeyHex: string;
  privateKey: { isCryptoKey: boolean; extractable: boolean; type: string } | null;
  seedHex: string | null;
  seq: number;
  hasAttestation: boolean;
}

/**
 * Reads the page's IndexedDB record of `csi` in the page (as browser source: the tests are
 * type-checked without the DOM library).
 */
function storedKey(page: Page, csi: string): Promise<StoredKey | null> {
  return page.evaluate(`new Promise((resolve, reject) => {
    const hex = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
    const open = indexedDB.open('mimi-recipient');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const get = open.result.transaction('recipients').objectStore('recipients').get(${JSON.stringify(csi)});
      get.onerror = () => reject(get.error);
      get.onsuccess = () => {
        const r = get.result;
        open.result.close();
        if (r === undefined) return resolve(null);
        resolve({
          backend: r.backend,
          publicKeyHex: hex(r.publicKey),
          privateKey: r.privateKey === undefined ? null : {
            isCryptoKey: r.privateKey instanceof CryptoKey,
            extractable: r.privateKey.extractable,
            type: r.privateKey.type,
          },
          seedHex: r.seed === undefined ? null : hex(r.seed),
          seq: r.seq,
          hasAttestation: r.attestation instanceof Uint8Array,
        });
      };
    };
  })`);
}

/** Every spelling of `secret` a careless page could send: hex, base64 and base64url. */
function spellings(secret: Buffer): string[] {
  const b64 = secret.toString('base64');
  return [
    secret.toString('hex'),
    secret.toString('hex').toUpperCase(),
    b64,
    b64.replace(/=+$/, ''),
    secret.toString('base64url'),
    encodeURIComponent(b64),
  ];
}

/** Fails when any request's URL or body holds any spelling of `secret`. */
function expectNotSent(seen: readonly SeenRequest[], secret: Buffer): void {
  expect(secret.length).toBe(32);
  for (const request of seen) {
    for (const spelling of spellings(secret)) {
      expect(request.url).not.toContain(spelling);
      expect(request.body).not.toContain(spelling);
    }
  }
}

/** No horizontal scrolling: the document is no wider than the window. */
async function expectNoHorizontalScroll(page: Page): Promise<void> {
  const { scroll, width } = await page.evaluate<{ scroll: number; width: number }>(
    '({ scroll: document.documentElement.scrollWidth, width: window.innerWidth })',
  );
  expect(scroll).toBeLessThanOrEqual(width);
}

/** The id of the focused element. */
const focused = (page: Page): Promise<string> =>
  page.evaluate<string>("document.activeElement ? document.activeElement.id : ''");

/** The MAP RRset the DP itself serves for `csi`, decoded. */
async function mappingsAtDp(csi: string): Promise<Mapping[]> {
  const answer = await queryUdp(dp.udp, buildQuery(csiToName(parseCsi(csi), net.apex), 'MAP'));
  return answer.answers.flatMap((rr) => (rr.type === 'MAP' ? [decodeMapping(rr.data)] : []));
}

interface Run {
  readonly typed: string;
  readonly csi: string;
  readonly viewport?: { width: number; height: number };
  readonly portable: boolean;
  readonly screenshot: string;
  readonly audience: boolean;
}

async function journey(run: Run): Promise<void> {
  if (browser === undefined) throw new Error('no browser');
  const context: BrowserContext = await browser.newContext({
    ignoreHTTPSErrors: true,
    ...(run.viewport === undefined ? {} : { viewport: run.viewport }),
  });
  context.setDefaultTimeout(BROWSER_STEP_MS);
  const seen = recordRequests(context);
  if (run.portable) {
    // WebCrypto refuses Ed25519, as in a browser without it: the page takes the portable path.
    await context.addInitScript(`{
      const subtle = crypto.subtle;
      const generateKey = subtle.generateKey.bind(subtle);
      subtle.generateKey = (algorithm, ...rest) => {
        const name = typeof algorithm === 'string' ? algorithm : algorithm.name;
        if (String(name).toLowerCase() === 'ed25519') {
          return Promise.reject(new DOMException('Ed25519 refused', 'NotSupportedError'));
        }
        return generateKey(algorithm, ...rest);
      };
    }`);
  }
  const page = await context.newPage();
  const scriptErrors: string[] = [];
  page.on('pageerror', (error) => scriptErrors.push(error.message));
  page.on('console', (m) => {
    if (m.type() === 'error') scriptErrors.push(m.text());
  });
  try {
    // `/` of the API port redirects to the page.
    await page.goto(`${dp.api}/`);
    expect(new URL(page.url()).pathname).toBe('/recipient/');
    await page.waitForSelector('body[data-ready="true"]');
    await expectNoHorizontalScroll(page);

    // Step 1, with a mistake first: the API's code in plain words.
    const csiField = page.getByLabel('Phone number or email address', { exact: true });
    await csiField.fill('12345');
    await page.getByRole('button', { name: 'Send me a code' }).click();
    await expect.poll(() => page.locator('#error').textContent()).toContain('ERR_CSI_INVALID');
    expect(await page.locator('#error').textContent()).toContain(
      'start with + and the country code',
    );
    await csiField.fill(run.typed);
    await csiField.press('Enter'); // by keyboard: the form submits
    await page.locator('#step-code').waitFor({ state: 'visible' });
    expect(await focused(page)).toBe('h-code');
    expect(await page.locator('#step-number').isHidden()).toBe(true);
    expect(await page.getByRole('status').textContent()).toContain('Code sent');
    expect(await page.locator('#error').isHidden()).toBe(true);
    expect(await page.locator('#code-sent').textContent()).toContain(run.csi.slice(4));
    await expectNoHorizontalScroll(page);

    // Step 2: a wrong code, then the code from the DP's outbox.
    const code = await outboxCode(outbox, run.csi);
    const codeField = page.getByLabel('The code we sent you', { exact: true });
    await codeField.fill(code === '000000' ? '111111' : '000000');
    await codeField.press('Enter');
    await expect.poll(() => page.locator('#error').textContent()).toContain('ERR_CODE_INVALID');
    await codeField.fill(code);
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.locator('#step-apps').waitFor({ state: 'visible' });
    expect(await focused(page)).toBe('h-apps');
    await expectNoHorizontalScroll(page);

    // The key: kept in this browser, as the run asks.
    const stored = await storedKey(page, run.csi);
    expect(stored?.hasAttestation).toBe(true);
    if (run.portable) {
      expect(stored?.backend).toBe('portable');
      expect(stored?.seedHex).toMatch(/^[0-9a-f]{64}$/);
    } else {
      expect(stored?.backend).toBe('webcrypto');
      expect(stored?.privateKey).toEqual({
        isCryptoKey: true,
        extractable: false,
        type: 'private',
      });
      expect(stored?.seedHex).toBeNull();
    }
    const publicKey = Buffer.from(stored?.publicKeyHex ?? '', 'hex');

    // Step 3: two apps, with tags; in the desktop run the second is for an audience only.
    await page.locator('#app-0-provider').fill('chat.example');
    await page.locator('#app-0-uri').fill('im:page@chat.example');
    await page.locator('#app-0-who-personal').check();
    await page.locator('#app-0-order').selectOption('1');
    await page.locator('#app-0-tags').fill('mls');
    await page.getByRole('button', { name: 'Add another app' }).click();
    expect(await focused(page)).toBe('app-1-provider');
    await page.locator('#app-1-provider').fill('wire.example');
    await page.locator('#app-1-who-group').check();
    await page.locator('#app-1-group').fill('Soccer!');
    await page.locator('#app-1-same-msp').check();
    // A bad group name is refused by the page, with the focus on the field to fix.
    await page.getByRole('button', { name: 'Publish' }).click();
    await expect.poll(() => page.locator('#error').textContent()).toContain('group name');
    expect(await focused(page)).toBe('app-1-group');
    await page.locator('#app-1-group').fill('soccer');
    expect(await page.locator('#error').isHidden()).toBe(true);
    const audience = await generateAudienceKey();
    if (run.audience) {
      await page.locator('#audience-box summary').click();
      await page
        .getByLabel('Audience keys, one per line', { exact: true })
        .fill(formatAudienceKey(audience));
      await page.locator('#app-1-audience').selectOption('0');
    }
    await expectNoHorizontalScroll(page);
    // The desktop image shows the whole form; the phone's, what a phone shows at the top.
    await page.evaluate('window.scrollTo(0, 0)');
    await page.screenshot({
      path: join(shots, run.screenshot),
      fullPage: run.viewport === undefined,
    });
    await page.getByRole('button', { name: 'Publish' }).click();
    await expect.poll(() => page.locator('#h-done').textContent()).toBe('You are findable');
    expect(await focused(page)).toBe('h-done');
    // The live region says so too, for a screen reader.
    const status = page.getByRole('status');
    expect(await status.getAttribute('aria-live')).toBe('polite');
    expect(await status.textContent()).toContain('You are findable');
    await expectNoHorizontalScroll(page);

    // Found through the resolver, with this browser's key.
    const found = await resolver.discover(run.csi);
    expect(found.status).toBe('found');
    const ours = found.mappings.filter((m) => m.key === publicKey.toString('base64url'));
    expect(ours).toHaveLength(1);
    const published = ours[0]?.msps.map((m) => ({ provider: m.provider, tags: [...m.tags] }));
    expect(published).toContainEqual({
      provider: 'chat.example',
      tags: ['personal', 'pref:1', 'mls'],
    });
    // The DP serves it signed by this key, with the audience's box when there is one.
    const atDp = await mappingsAtDp(run.csi);
    expect(atDp).toHaveLength(1);
    expect(Buffer.from(atDp[0]?.key ?? []).equals(publicKey)).toBe(true);
    if (run.audience) {
      expect(atDp[0]?.msps.map((m) => m.provider)).toEqual(['chat.example']);
      expect(atDp[0]?.sealed?.map((b) => Buffer.from(b.kid).toString('hex'))).toEqual([
        Buffer.from(audienceKeyId(audience.publicKey)).toString('hex'),
      ]);
    } else {
      expect(atDp[0]?.msps.map((m) => m.provider)).toEqual(['chat.example', 'wire.example']);
      expect(atDp[0]?.msps[1]?.tags).toEqual(['ctx:soccer', 'same-msp']);
    }

    // Stop being findable: the DP serves an empty mapping of this key.
    await page.getByRole('button', { name: 'Stop being findable' }).click();
    await expect.poll(() => page.locator('#h-done').textContent()).toBe('You are not findable');
    const empty = await mappingsAtDp(run.csi);
    expect(empty).toHaveLength(1);
    expect(empty[0]?.msps).toEqual([]);
    expect(empty[0]?.sealed).toBeUndefined();
    expect(empty[0]?.seq).toBeGreaterThan(atDp[0]?.seq ?? Infinity);

    // Remove everything: the DP serves no MAP for the CSI.
    await page.getByRole('button', { name: 'Remove everything' }).click();
    await expect.poll(() => page.locator('#h-done').textContent()).toBe('Removed');
    expect(await mappingsAtDp(run.csi)).toEqual([]);
    await expectNoHorizontalScroll(page);

    // Coming back: the browser still holds the key and its attestation, so the person goes on
    // without a new code, and publishes again with a seq above the removal's.
    const removedUpTo = (await storedKey(page, run.csi))?.seq ?? Infinity;
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await page.getByRole('button', { name: `Continue with ${run.csi.slice(4)}` }).click();
    await page.locator('#step-apps').waitFor({ state: 'visible' });
    await page.locator('#app-0-provider').fill('chat.example');
    await page.locator('#app-0-provider').press('Enter');
    await expect.poll(() => page.locator('#h-done').textContent()).toBe('You are findable');
    const again = await mappingsAtDp(run.csi);
    expect(again.map((m) => m.msps.map((e) => e.provider))).toEqual([['chat.example']]);
    expect(again[0]?.seq).toBeGreaterThan(removedUpTo);

    // What left the browser: the DP's origin only, the API's four routes, and never the key.
    const origin = new URL(dp.api).origin;
    for (const r of seen) expect(new URL(r.url).origin).toBe(origin);
    const posts = seen.filter((r) => r.method === 'POST').map((r) => new URL(r.url).pathname);
    expect(posts).toEqual([
      '/v1/prove', // 12345: refused
      '/v1/prove',
      '/v1/confirm', // the wrong code
      '/v1/confirm',
      '/v1/mappings',
      '/v1/mappings',
      '/v1/removals',
      '/v1/mappings', // after the reload
    ]);
    // The public key went out (the recording sees bodies); the secret never did.
    const confirm = seen.filter((r) => r.url.endsWith('/v1/confirm')).at(-1);
    expect(confirm?.body).toContain(publicKey.toString('base64url'));
    if (run.portable) {
      const seed = Buffer.from((await storedKey(page, run.csi))?.seedHex ?? '', 'hex');
      expectNotSent(seen, seed);
    } else {
      const after = await storedKey(page, run.csi);
      expect(after?.privateKey?.extractable).toBe(false);
    }
    if (run.audience) expectNotSent(seen, Buffer.from(audience.secretKey));
    expect(scriptErrors.filter((e) => !/status of (4\d\d)/.test(e))).toEqual([]);
  } finally {
    await context.close();
  }
}

describe.skipIf(CHROMIUM === undefined)('the recipient page in Chromium, against the demo', () => {
  it('at the default viewport, with WebCrypto Ed25519 and an audience', async () => {
    await journey({
      typed: '+44 20 7946 0123',
      csi: 'tel:+442079460123',
      portable: false,
      screenshot: 'recipient-page.png',
      audience: true,
    });
  }, 180_000);

  it('at 390 × 844, on the portable path, never sending the seed', async () => {
    await journey({
      typed: '+44 20 7946 0124',
      csi: 'tel:+442079460124',
      viewport: { width: 390, height: 844 },
      portable: true,
      screenshot: 'recipient-page-phone.png',
      audience: false,
    });
  }, 180_000);
});
