import { mkdirSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plainAwsAt, repoRoot } from '../e2e/harness.js';
import { haveChromium, launchChromium, signIn, startConsoleStack } from './browser.js';

// The auditor's side of the console in real Chromium: the log with filters, a record page that replays the
// transcript the CLI uploaded (with hostile terminal output in it), the chain's verification status and grants
// whose transcript never arrived. Also: the screenshots in docs/console/ are taken here (desktop and phone).
let s: Awaited<ReturnType<typeof startConsoleStack>>;
let browser: Browser;
const t: Record<string, string> = {};
const SHOTS = process.env.GUARD_AWS_CONSOLE_SCREENSHOTS === '1' ? join(repoRoot, 'docs', 'console') : undefined;
const PHONE = { width: 390, height: 844 };
// An S3 key carrying a title-setting OSC sequence, markup, a colour and a bell: what a hostile object name puts in
// a transcript when someone lists the bucket with `--output text`.
const HOSTILE_KEY = 'x\u001b]0;pwned\u0007<script>document.title="pwned"</script>\u001b[31mred\u001b[0m-end';
// And an argv with markup and an escape in it (a read, so allowed), to see the log pages keep it inert too.
const HOSTILE_PREFIX = '<img src=x onerror="document.body.dataset.xss=1">\u001b[2J';

beforeAll(async () => {
  if (!haveChromium) throw new Error('chromium is missing: run scripts/setup-system.sh (apt-get install chromium)');
  s = await startConsoleStack();
  browser = await launchChromium();
  for (const u of ['alice', 'erin', 'bob']) t[u] = await s.token(u);
  expect(plainAwsAt(s, ['s3api', 'create-bucket', '--bucket', 'e2e-audit']).status).toBe(0);
  expect(plainAwsAt(s, ['s3api', 'put-object', '--bucket', 'e2e-audit', '--key', HOSTILE_KEY]).status).toBe(0);
  // One after another: runs from one HOME share its transcript spool.
  for (const [who, argv] of [
    ['alice', ['s3api', 'list-objects-v2', '--bucket', 'e2e-audit', '--query', 'Contents[].Key', '--output', 'text']],
    ['erin', ['s3api', 'list-buckets', '--query', 'Buckets[].Name', '--output', 'text']],
    ['erin', ['--profile', 'prod', 'sts', 'get-caller-identity']],
    ['alice', ['s3api', 'list-objects-v2', '--bucket', 'e2e-audit', '--prefix', HOSTILE_PREFIX]],
  ] as const) {
    const r = await s.run([...argv], { token: t[who] });
    expect(r.status, r.stderr).toBe(0);
  }
  // A grant whose transcript never came (the run was killed before it could upload), issued an hour ago: recorded
  // through the broker's own store, since waiting out a real session expiry is not possible in a test.
  const hour = 3_600_000;
  await s.broker.broker.ctx.store.recordGrant({
    id: 'grt_lostlostlostlostlost01',
    createdAt: new Date(Date.now() - hour).toISOString(),
    expiresAt: new Date(Date.now() - hour + 900_000).toISOString(),
    subject: 'erin',
    groups: ['developers'],
    argv: ['s3api', 'list-buckets'],
    target: 'dev',
    account: '123456789012',
    region: 'us-east-1',
    decision: 'allow',
    rule: 'allow-reads',
    reason: 'reads and lists are allowed',
    actions: ['s3:ListAllMyBuckets'],
    sessionPolicy: '{}',
    roleSessionName: 'erin',
    sourceIdentity: 'erin',
    transcriptKey: 'A'.repeat(43),
  });
}, 180_000);
afterAll(async () => {
  await browser?.close();
  await s?.close();
});

const rows = (page: Page) => page.$$eval('#records tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent!.trim())));

describe('console: audit log', () => {
  it('is for auditors only: a developer and an approver are refused, and see no link to it', async () => {
    for (const who of ['erin', 'bob']) {
      const { context, page } = await signIn(browser, s.ui, who);
      expect(await page.$('a[href="/ui/audit"]')).toBeNull();
      for (const path of ['audit', 'audit/verify', 'audit/unreported', 'audit/records/1']) {
        const res = await page.goto(`${s.ui}${path}`);
        expect(res!.status(), `${who} ${path}`).toBe(403);
        expect(await page.textContent('main')).toContain('Auditors only');
      }
      await context.close();
    }
  });

  it('lists every run and filters by person, decision, target, service and time', async () => {
    const { context, page } = await signIn(browser, s.ui, 'carol');
    await page.click('a[href="/ui/audit"]');
    await page.waitForSelector('#records');
    expect((await rows(page)).length).toBe(4);
    await page.fill('#f-user', 'erin');
    await Promise.all([page.waitForURL(/user=erin/), page.click('form.filters button[type=submit]')]);
    expect((await rows(page)).map((r) => r[2])).toEqual(['erin', 'erin']);
    await page.selectOption('#f-target', 'prod');
    await Promise.all([page.waitForURL(/target=prod/), page.click('form.filters button[type=submit]')]);
    expect((await rows(page)).map((r) => r[3])).toEqual(['aws sts get-caller-identity']);
    await page.goto(`${s.ui}audit?service=s3api&decision=allow`);
    expect((await rows(page)).length).toBe(3);
    await page.goto(`${s.ui}audit?service=s3`);
    expect((await rows(page)).length).toBe(3);
    await page.goto(`${s.ui}audit?service=sts&user=erin`);
    expect((await rows(page)).length).toBe(1);
    await page.goto(`${s.ui}audit?service=ec2`);
    expect(await rows(page)).toEqual([]);
    expect(await page.textContent('#result-count')).toBe('0 records');
    // Time: nothing before the stack started, nothing after now.
    await page.goto(`${s.ui}audit?until=2000-01-01T00:00`);
    expect(await rows(page)).toEqual([]);
    await page.goto(`${s.ui}audit?since=2000-01-01T00:00&user=alice`);
    expect((await rows(page)).length).toBe(2);
    await context.close();
  });

  it('an argv with markup and escapes stays text on the log and record pages', async () => {
    const { context, page } = await signIn(browser, s.ui, 'carol');
    const inert = async () => {
      expect(await page.evaluate(() => document.body.dataset.xss)).toBeUndefined();
      expect(await page.$$eval('main img', (els) => els.length)).toBe(0);
      expect(await page.textContent('main')).toContain('<img src=x onerror="document.body.dataset.xss=1">\\x1b[2J');
    };
    await page.goto(`${s.ui}audit?user=alice`);
    await inert();
    await Promise.all([page.waitForURL(/\/audit\/records\//), page.click('#records tbody tr:has-text("--prefix") a >> nth=1')]);
    await inert();
    await context.close();
  });

  it('replays a transcript in the page with timing and speed, its escape sequences inert', async () => {
    const { context, page } = await signIn(browser, s.ui, 'carol');
    const dialogs: string[] = [];
    page.on('dialog', (d) => void (dialogs.push(d.message()), d.dismiss()));
    await page.goto(`${s.ui}audit?user=alice`);
    await Promise.all([page.waitForURL(/\/audit\/records\//), page.click('#records tbody tr:has-text("Contents[].Key") a >> nth=1')]);
    await page.waitForSelector('#terminal[data-state=done]');
    const shown = (await page.textContent('#terminal'))!;
    // Shown as text: the OSC's ESC and the bell as \x1b and \x07, the markup literally; the SGR colour interpreted.
    expect(shown).toContain('x\\x1b]0;pwned\\x07<script>document.title="pwned"</script>red-end');
    expect(await page.$$eval('#terminal .fg-red', (els) => els.map((e) => e.textContent))).toEqual(['red']);
    expect(await page.$$eval('#terminal *', (els) => els.every((e) => e.tagName === 'SPAN'))).toBe(true);
    expect(await page.title()).not.toContain('pwned');
    // Play again at 20× speed: the terminal empties and fills again; the clock shows the recorded time.
    await page.selectOption('#replay-speed', '20');
    await page.click('#replay-play');
    await page.waitForSelector('#terminal[data-state=done]', { timeout: 10_000 });
    expect(await page.textContent('#terminal')).toBe(shown);
    expect(await page.textContent('#replay-clock')).toMatch(/^\d+\.\d s$/);
    // The record's own facts and hashes.
    const main = (await page.textContent('main'))!;
    expect(main).toContain("aws --query 'Contents[].Key' --output text s3api list-objects-v2 --bucket e2e-audit");
    expect(main).toMatch(/Hash[0-9a-f]{64}/);
    expect(dialogs).toEqual([]);
    if (SHOTS) {
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: join(SHOTS, 'replay-desktop.png'), fullPage: true });
    }
    await context.close();
  });

  it('shows the chain verification status and the grants whose transcript never arrived', async () => {
    const { context, page } = await signIn(browser, s.ui, 'carol', { viewport: PHONE });
    await page.goto(`${s.ui}audit/verify`);
    expect(await page.textContent('#chain-status')).toMatch(/The chain verifies: 4 records/);
    await page.goto(`${s.ui}audit/unreported`);
    const text = (await page.textContent('#unreported'))!;
    expect(text).toContain('grt_lostlostlostlostlost01');
    expect(text).toContain('erin');
    // Someone with write access to the database edits a record (dropping the append-only trigger first): the
    // page says the chain is broken, and where.
    const db = new Database(s.config.storage.sqlite);
    try {
      db.exec('DROP TRIGGER audit_log_no_update');
      db.prepare("UPDATE audit_log SET body = replace(body, 'list-buckets', 'list-bucketz') WHERE seq = 2").run();
    } finally {
      db.close();
    }
    await page.goto(`${s.ui}audit/verify`);
    expect(await page.textContent('#chain-status')).toMatch(/The chain is BROKEN at record 2: .+\(1 record verified before it\)/);
    if (SHOTS) {
      await page.goto(`${s.ui}audit`);
      await page.screenshot({ path: join(SHOTS, 'audit-phone.png'), fullPage: true });
      await page.goto(`${s.ui}audit?user=alice`);
      await Promise.all([page.waitForURL(/\/audit\/records\//), page.click('#records tbody tr:has-text("Contents[].Key") a >> nth=1')]);
      await page.waitForSelector('#terminal[data-state=done]');
      await page.screenshot({ path: join(SHOTS, 'replay-phone.png'), fullPage: true });
    }
    await context.close();
  });

  it('pages fit a phone: nothing wider than the screen, every form control labelled, keyboard reaches the actions', async () => {
    const { context, page } = await signIn(browser, s.ui, 'carol', { viewport: PHONE });
    for (const path of ['', 'audit', 'audit/verify']) {
      await page.goto(`${s.ui}${path}`);
      expect(await page.evaluate(() => document.documentElement.scrollWidth), path).toBeLessThanOrEqual(PHONE.width);
      const unlabelled = await page.$$eval('input:not([type=hidden]), select, textarea', (els) =>
        els.filter((e) => !(e.id && document.querySelector(`label[for="${e.id}"]`)) && !e.getAttribute('aria-label')).map((e) => e.outerHTML),
      );
      expect(unlabelled, path).toEqual([]);
    }
    // Keyboard: the first Tab reaches the skip link, and following it moves focus to the content.
    await page.goto(`${s.ui}audit`);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await context.close();
  });
});
