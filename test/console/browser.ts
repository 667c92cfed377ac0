import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { freePort } from '../helpers/ports.js';
import { startStack, type Stack } from '../e2e/harness.js';

/**
 * Real Chromium (Debian's `chromium` package, installed by scripts/setup-system.sh) driven by playwright-core,
 * against a whole stack on real parts: moto_server, the embedded IdP with the console registered as an
 * authorization-code + PKCE client, the broker with its console, and the built CLI. playwright starts the
 * browser with a fresh temporary profile; each person gets their own context (cookies, storage).
 */
export const CHROMIUM = process.env.GUARD_AWS_TEST_CHROMIUM ?? '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export async function startConsoleStack(extra: Parameters<typeof startStack>[0] = {}): Promise<Stack & { ui: string }> {
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const s = await startStack({
    ...extra,
    brokerPort: port,
    idp: { consoleRedirectUris: [`${publicUrl}/ui/callback`] },
    config: { console: { publicUrl } },
  });
  return Object.assign(s, { ui: `${publicUrl}/ui/` });
}

/** Signs `user` in through the IdP's own login page, as a person would; returns the page on the console. */
export async function signIn(browser: Browser, ui: string, user: string, o: { viewport?: { width: number; height: number } } = {}): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext(o.viewport ? { viewport: o.viewport } : {});
  const page = await context.newPage();
  await page.goto(ui);
  // Redirected to the identity provider's login form.
  await page.waitForSelector('form#login');
  await page.fill('#username', user);
  await page.fill('#password', `${user}-password`);
  await Promise.all([page.waitForURL((u) => u.href.startsWith(ui)), page.click('form#login button[type=submit]')]);
  await page.waitForSelector('#whoami');
  return { context, page };
}
