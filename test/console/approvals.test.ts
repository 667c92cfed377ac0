import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plainAwsAt, repoRoot } from '../e2e/harness.js';
import { haveChromium, launchChromium, signIn, startConsoleStack } from './browser.js';

// The approver's side of the console in real Chromium against the whole system: the requester is the built CLI
// (`guard-aws --wait … s3api delete-bucket …`) waiting on a real broker, the approver a person in a browser who
// signed in through the embedded IdP's login page. One stack for the file.
let s: Awaited<ReturnType<typeof startConsoleStack>>;
let browser: Browser;
const t: Record<string, string> = {};
// GUARD_AWS_CONSOLE_SCREENSHOTS=1 writes the README's screenshots (docs/console/*.png).
const SHOTS = process.env.GUARD_AWS_CONSOLE_SCREENSHOTS === '1' ? join(repoRoot, 'docs', 'console') : undefined;
const PHONE = { width: 390, height: 844 };

beforeAll(async () => {
  if (!haveChromium) throw new Error('chromium is missing: run scripts/setup-system.sh (apt-get install chromium)');
  s = await startConsoleStack();
  browser = await launchChromium();
  for (const u of ['alice', 'dave']) t[u] = await s.token(u);
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await s?.close();
});

interface Waiting {
  id: string;
  url: string;
  done: Promise<{ status: number | null; stderr: string; stdout: string; at: number }>;
  stderr(): string;
  /** Resolves when stderr matches. */
  seen(re: RegExp): Promise<number>;
}

/** A CLI call that needs approval, waiting for it (`--wait`), as a person at a terminal would run it. */
async function waitingCall(user: string, bucket: string, reason: string): Promise<Waiting> {
  expect(plainAwsAt(s, ['s3api', 'create-bucket', '--bucket', bucket]).status).toBe(0);
  const child = s.spawn(['--wait', '90', '--reason', reason, 's3api', 'delete-bucket', '--bucket', bucket], { token: t[user] });
  let err = '';
  let out = '';
  const watchers: { re: RegExp; resolve: (at: number) => void }[] = [];
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString('utf8');
    for (const w of watchers.splice(0)) {
      if (w.re.test(err)) w.resolve(Date.now());
      else watchers.push(w);
    }
  });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stdin!.end();
  const done = new Promise<{ status: number | null; stderr: string; stdout: string; at: number }>((r) => child.on('close', (status) => r({ status, stderr: err, stdout: out, at: Date.now() })));
  const seen = (re: RegExp) =>
    re.test(err) ? Promise.resolve(Date.now()) : Promise.race([new Promise<number>((resolve) => watchers.push({ re, resolve })), done.then((d) => Promise.reject(new Error(`CLI ended (${d.status}) before ${re}: ${d.stderr}`)))]);
  await seen(/console: +http/);
  const m = /console: +(http\S+\/ui\/approvals\/(apr_[a-z2-7]+))/.exec(err)!;
  return { id: m[2]!, url: m[1]!, done, stderr: () => err, seen };
}

async function decide(page: Page, verb: 'approve' | 'deny', comment: string): Promise<number> {
  await page.fill('#comment', comment);
  await page.click(`button[name=verb][value=${verb}]`);
  await page.waitForSelector('form.confirm');
  const at = Date.now();
  await Promise.all([page.waitForURL(/\?done=/), page.click('#confirm')]);
  return at;
}

describe('console: sign-in', () => {
  it('signs in through the IdP with authorization code + PKCE; the session cookie is HttpOnly and SameSite=Strict; sign-out ends it', async () => {
    const { context, page } = await signIn(browser, s.ui, 'erin');
    expect(await page.textContent('#whoami')).toBe('erin');
    const cookie = (await context.cookies()).find((c) => c.name === 'guard-aws-console')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    // Not an auditor: no audit link, and the log itself is refused.
    expect(await page.$('a[href="/ui/audit"]')).toBeNull();
    const audit = await page.goto(`${s.ui}audit`);
    expect(audit!.status()).toBe(403);
    await page.goto(s.ui);
    await Promise.all([page.waitForURL(/signed-out/), page.click('form.who button')]);
    // The old cookie opens nothing any more, even when replayed by hand.
    const replay = await fetch(s.ui, { headers: { Cookie: `guard-aws-console=${cookie.value}` }, redirect: 'manual' });
    expect(replay.status).toBe(303);
    expect(replay.headers.get('location')).toMatch(/^\/ui\/login/);
    await context.close();
  });

  it('every page carries a strict Content-Security-Policy and loads nothing from elsewhere', async () => {
    const { context, page } = await signIn(browser, s.ui, 'bob');
    const external: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(new URL(s.ui).origin)) external.push(r.url());
    });
    const res = await page.goto(s.ui);
    const csp = res!.headers()['content-security-policy']!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(await page.$$eval('script:not([src]):not([type="application/json"])', (els) => els.length)).toBe(0);
    expect(external).toEqual([]);
    await context.close();
  });
});

describe('console: approvals', () => {
  it('a waiting CLI call appears live for the approver, who approves it in the browser; the CLI goes on within a second', async () => {
    const { context, page } = await signIn(browser, s.ui, 'bob');
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 1));
    await page.waitForSelector('#live-status:has-text("Live")');
    const call = await waitingCall('alice', 'e2e-console-approve', 'clean up the old logs bucket');
    // Server-sent event → the list refreshes in place (no reload: the marker survives).
    const link = await page.waitForSelector(`#waiting a[href="/ui/approvals/${call.id}"]`, { timeout: 10_000 });
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(1);
    await link.click();
    await page.waitForSelector('#argv');
    // Everything the approver needs on one page.
    expect(await page.textContent('#argv')).toBe('aws s3api delete-bucket --bucket e2e-console-approve');
    const text = (await page.textContent('main'))!;
    for (const want of ['s3:DeleteBucket', 'arn:aws:s3:::e2e-console-approve', 'approve-bucket-delete', 'deleting a bucket needs an approver', 'alice', 'clean up the old logs bucket', 'target dev', 'account 123456789012', 'us-east-1', '1 from approvers']) {
      expect(text, want).toContain(want);
    }
    expect(await page.textContent('time.countdown')).toMatch(/^in \d+m \d\ds$/);
    expect(await page.$('label[for=comment]')).not.toBeNull();
    if (SHOTS) {
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: join(SHOTS, 'approval-desktop.png'), fullPage: true });
      await page.goBack();
      await page.waitForSelector(`#waiting a[href="/ui/approvals/${call.id}"]`);
      await page.screenshot({ path: join(SHOTS, 'home-desktop.png'), fullPage: true });
      const phone = await signIn(browser, s.ui, 'bob', { viewport: PHONE });
      await phone.page.screenshot({ path: join(SHOTS, 'home-phone.png'), fullPage: true });
      await phone.page.goto(call.url);
      await phone.page.screenshot({ path: join(SHOTS, 'approval-phone.png'), fullPage: true });
      expect(await phone.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
      await phone.context.close();
      await page.goForward();
      await page.waitForSelector('#argv');
    }

    // Another approver has the same request open: their page follows the decision by itself.
    const other = await signIn(browser, s.ui, 'dave');
    await other.page.goto(call.url);
    await other.page.waitForSelector('button[value=approve]');
    const clicked = await decide(page, 'approve', 'fine, it is empty');
    expect(await page.textContent('.notice')).toContain('approval was recorded');
    const heard = await call.seen(/approved by bob: fine, it is empty/);
    // The long poll answers the moment the decision commits (the CLI's own poll interval is 2 s).
    expect(heard - clicked).toBeLessThan(1000);
    const r = await call.done;
    expect(r.status, r.stderr).toBe(0);
    expect(plainAwsAt(s, ['s3api', 'head-bucket', '--bucket', 'e2e-console-approve']).status).not.toBe(0);
    await other.page.waitForSelector('.status-line .badge:text-matches("approved|used")', { timeout: 5000 });
    expect(await other.page.$('button[value=approve]')).toBeNull();
    await other.context.close();
    await context.close();
  });

  it('a denial with a comment reaches the waiting CLI (exit 77, the comment on stderr)', async () => {
    const call = await waitingCall('alice', 'e2e-console-deny', 'please');
    const { context, page } = await signIn(browser, s.ui, 'bob');
    await page.goto(call.url);
    // Keyboard only: type the comment, Tab to Deny, Enter; on the confirmation page Tab to its button, Enter.
    await page.focus('#comment');
    await page.keyboard.type('not on a Friday');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Deny…');
    await Promise.all([page.waitForSelector('form.confirm'), page.keyboard.press('Enter')]);
    await page.focus('#confirm');
    await Promise.all([page.waitForURL(/done=deny/), page.keyboard.press('Enter')]);
    const r = await call.done;
    expect(r.status).toBe(77);
    expect(r.stderr).toContain('not on a Friday');
    expect(plainAwsAt(s, ['s3api', 'head-bucket', '--bucket', 'e2e-console-deny']).status).toBe(0);
    await page.goto(call.url);
    expect(await page.textContent('.status-line')).toContain('denied');
    expect(await page.textContent('.votes')).toContain('denied by bob');
    await context.close();
  });

  it('self-approval is impossible: no button for it, and a forged form post is refused by the service', async () => {
    const call = await waitingCall('dave', 'e2e-console-self', 'my own');
    const { context, page } = await signIn(browser, s.ui, 'dave');
    await page.goto(call.url);
    expect(await page.$('button[value=approve]')).toBeNull();
    expect(await page.textContent('main')).toContain('You cannot approve your own request');
    // Forge the confirm step with the page's own CSRF token (same origin, valid session): the service refuses.
    const csrf = await page.getAttribute('form.who input[name=csrf]', 'value');
    const res = await page.evaluate(async ({ id, csrf }) => {
      const r = await fetch(`/ui/approvals/${id}/approve`, { method: 'POST', body: new URLSearchParams({ csrf: csrf!, confirm: 'yes', comment: 'me' }) });
      return { status: r.status, text: await r.text() };
    }, { id: call.id, csrf });
    expect(res.status).toBe(403);
    expect(res.text).toContain('self_approval');
    // Still pending: withdraw it from the page (the requester may), which ends the CLI's wait.
    await page.goto(call.url);
    expect(await page.textContent('.status-line')).toContain('pending');
    await page.click('button[value=withdraw]');
    await Promise.all([page.waitForURL(/done=withdraw/), page.click('#confirm')]);
    expect((await call.done).status).toBe(77);
    await context.close();
  });

  it('a cross-site POST is refused (Origin check and CSRF token), and so is a same-origin one without the token', async () => {
    const call = await waitingCall('alice', 'e2e-console-csrf', 'csrf test');
    const { context, page } = await signIn(browser, s.ui, 'bob');
    await page.goto(call.url);
    const csrf = (await page.getAttribute('form.who input[name=csrf]', 'value'))!;
    // An attacker's page on another origin (same site: 127.0.0.1, another port, so the SameSite=Strict cookie IS
    // sent and the Origin check alone must stop it) auto-submits a confirm form — even with a leaked token.
    const evil: Server = createServer((_req, res) => {
      res.setHeader('Content-Type', 'text/html');
      res.end(`<form id=f method=post action="${s.ui}approvals/${call.id}/approve"><input name=confirm value=yes><input name=csrf value="${csrf}"><input name=comment value=pwned></form><script>document.getElementById('f').submit()</script>`);
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    const evilPage = await context.newPage();
    const answer = page.context().waitForEvent('response', (r) => r.url().includes(`/approvals/${call.id}/approve`));
    await evilPage.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
    expect((await answer).status()).toBe(403);
    expect(await evilPage.textContent('main')).toContain('cross-site request or missing token');
    evil.close();
    // Same origin, no token.
    const noToken = await page.evaluate(async (id) => (await fetch(`/ui/approvals/${id}/approve`, { method: 'POST', body: new URLSearchParams({ confirm: 'yes' }) })).status, call.id);
    expect(noToken).toBe(403);
    await page.goto(call.url);
    expect(await page.textContent('.status-line')).toContain('pending');
    expect(await page.textContent('main')).not.toContain('pwned');
    await decide(page, 'deny', 'cleanup after the csrf test');
    expect((await call.done).status).toBe(77);
    await context.close();
  });

  it('an argv with <script> and terminal escapes, and such a reason, render inert on every page', async () => {
    // Straight to the API (as any client could), so nothing on the CLI side cleans the argv first.
    // Terminal escapes ride in a value that names no resource (a JMESPath literal in --query): a resource name or
    // an account id with a control character is refused outright (src/invocation/parse.ts, arns.ts).
    const hostile = 'e2e-x<script>document.title="pwned"</script><img src=x onerror="document.body.dataset.xss=1">';
    const escapes = "'\u001b]0;pwned\u0007\u001b[2J'";
    const res = await fetch(`${new URL(s.ui).origin}/v1/grants`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${t.alice}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ argv: ['s3api', 'delete-bucket', '--bucket', hostile, '--query', escapes], transcriptKey: 'A'.repeat(43), reason: '<b>bold</b>\u001b[31m red \u202e' }),
    });
    const body = (await res.json()) as { error: { code: string; approval?: { id: string; url?: string } } };
    expect(body.error.code, JSON.stringify(body)).toBe('approval_required');
    const id = body.error.approval!.id;
    expect(body.error.approval!.url).toBe(`${s.ui}approvals/${id}`);
    const { context, page } = await signIn(browser, s.ui, 'bob');
    const dialogs: string[] = [];
    page.on('dialog', (d) => void (dialogs.push(d.message()), d.dismiss()));
    const inert = async () => {
      expect(await page.title()).not.toContain('pwned');
      expect(await page.evaluate(() => document.body.dataset.xss)).toBeUndefined();
      expect(await page.$$eval('img', (els) => els.length)).toBe(0);
      expect(await page.$$eval('b', (els) => els.length)).toBe(0);
      const text = (await page.textContent('main'))!;
      expect(text).toContain('<script>document.title="pwned"</script>');
      expect(text).toContain('\\x1b]0;pwned\\x07\\x1b[2J');
      expect(text).not.toMatch(/[\u001b\u0007\u202e]/);
    };
    await page.goto(s.ui);
    await page.waitForSelector(`a[href="/ui/approvals/${id}"]`);
    await inert();
    await page.goto(`${s.ui}approvals/${id}`);
    await inert();
    expect(await page.textContent('#req-reason')).toContain('<b>bold</b>\\x1b[31m red \\u{202e}');
    await page.click('button[value=deny]');
    await page.waitForSelector('form.confirm');
    await inert();
    await Promise.all([page.waitForURL(/done=deny/), page.click('#confirm')]);
    await inert();
    expect(dialogs).toEqual([]);
    await context.close();
  });
});
