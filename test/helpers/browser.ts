import { chromium, type Browser, type BrowserContext, type Request } from 'playwright-core';
import { onPath } from './tools.js';

/**
 * Headless Chromium for the tests that drive the browser pages (the DP's recipient page, the
 * resolver's lookup page) as a person would: Debian's `chromium` (installed by `.ci/run`),
 * driven by `playwright-core` through `executablePath`, never a browser downloaded at run time.
 */

/** The Debian package of the browser. */
export const CHROMIUM_PACKAGE = 'chromium';
/** How long a page step (a click that waits for the server, a navigation) may take. */
export const BROWSER_STEP_MS = 30_000;

/** The browser's executable, or undefined (announced once) when it is not installed. */
export function chromiumPath(): string | undefined {
  for (const name of ['chromium', 'chromium-browser']) {
    if (onPath(name))
      return name === 'chromium' ? '/usr/bin/chromium' : '/usr/bin/chromium-browser';
  }
  console.warn(
    `chromium not installed (Debian package ${CHROMIUM_PACKAGE}): skipping the browser tests`,
  );
  return undefined;
}

/** Starts headless Chromium. Root (as in CI containers) needs `--no-sandbox`. */
export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({
    executablePath,
    headless: true,
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
}

/** A request the page made, as the test saw it: for checks of what left the browser. */
export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  /** The request body as text (empty when none). */
  readonly body: string;
}

/**
 * Records every request any page of `context` makes (documents, scripts, fetches), with its
 * body, so a test can check what left the browser.
 */
export function recordRequests(context: BrowserContext): SeenRequest[] {
  const seen: SeenRequest[] = [];
  context.on('request', (request: Request) => {
    seen.push({ method: request.method(), url: request.url(), body: request.postData() ?? '' });
  });
  return seen;
}
