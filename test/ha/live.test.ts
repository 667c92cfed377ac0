import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForApproval } from '../../src/approvals/client.js';
import { assembleBroker } from '../../src/broker/assemble.js';
import { brokerConfigFrom } from '../../src/broker/config.js';
import { silentLog, type BrokerLog } from '../../src/broker/log.js';
import { startBroker, type RunningBroker } from '../../src/broker/server.js';
import { isGuardError } from '../../src/errors.js';
import { openPostgresDb, openSqliteDb, type Db } from '../../src/store/db.js';
import { createTranscriptKey } from '../../src/transcript/sign.js';
import { E2E_USERS, fixtures } from '../e2e/harness.js';
import { startIdp, userToken, type StartedIdp } from '../helpers/idp.js';
import { freePort } from '../helpers/ports.js';
import { HAVE_POSTGRES, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { haveChromium, launchChromium, signIn as browserSignIn } from '../console/browser.js';

// Approval changes reach every broker's live listeners: two complete brokers (assembled in this process, each with
// its own HTTP server, pool and LISTEN connection) on one real PostgreSQL schema, the real embedded IdP for tokens
// and console sign-in. A change made on broker B must reach the console's event stream and a held long poll on
// broker A within a couple of seconds (before the change feed, A heard nothing until its long poll timed out or
// the page was reloaded), once, only for viewers who may see it, and again after PostgreSQL restarts.
// The browser test drives real Chromium on the console's built script (needs `npm run build`). Needs PostgreSQL
// and Chromium (CI installs both); each part is skipped only where its program is not installed.

const FRANK = { username: 'frank', password: 'frank-password', groups: ['dba-approvers'] };
let dir: string;
let pg: TestPostgres;
let idp: StartedIdp;
let a: RunningBroker;
let b: RunningBroker;
let ui: string;
const tokens: Record<string, string> = {};
const DB_PASSWORD = 'live-db-pw-4f1c';
let dbUrl: string;
/** Broker A's log, one JSON line per entry. */
const logA: string[] = [];

// Skips only where PostgreSQL 15 is not installed (a developer machine); .ci/run installs it, so CI always runs these.
describe.skipIf(!HAVE_POSTGRES)('approval changes across brokers on PostgreSQL', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'guard-live-'));
    pg = await startPostgres();
    // A password in the URL (trust authentication ignores it) that must never reach a log line.
    const url = (await pg.freshUrl()).replace('postgres://guard@', `postgres://guard:${DB_PASSWORD}@`);
    dbUrl = url;
    const [portA, portB] = [await freePort(), await freePort()];
    // Both brokers serve the console under one public name (as behind a load balancer): sessions live in the
    // database, so a browser signed in through A is known to B as well.
    const publicUrl = `http://127.0.0.1:${portA}`;
    ui = `${publicUrl}/ui/`;
    idp = await startIdp({ users: [...E2E_USERS, FRANK], consoleRedirectUris: [`${publicUrl}/ui/callback`] });
    const start = async (port: number, log: BrokerLog) => {
      const config = brokerConfigFrom(
        {
          listen: { host: '127.0.0.1', port },
          issuer: idp.issuer,
          audience: idp.audience,
          clientId: idp.clientId,
          jwksUri: idp.jwksUri,
          policies: [join(fixtures, 'e2e-policy.yaml')],
          storage: { postgres: { poolSize: 4, connectTimeoutMs: 1000 }, auditKeyFile: join(dir, 'audit-key.pem') },
          transcripts: { store: { type: 'file', dir: join(dir, 'bodies') } },
          execution: { people: 'local', workloads: 'local' },
          targets: [{ name: 'dev', roleArn: 'arn:aws:iam::123456789012:role/dev', region: 'us-east-1', default: true }],
          console: { publicUrl },
        },
        dir,
      );
      return startBroker(config, await assembleBroker(config, { env: { GUARD_AWS_STORE_URL: url }, overrides: { log } }));
    };
    a = await start(portA, (e) => logA.push(JSON.stringify(e)));
    b = await start(portB, silentLog);
    for (const u of ['alice', 'bob']) tokens[u] = (await userToken(idp, u)).accessToken;
  }, 60_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await idp?.close();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Opens an approval request on `on` (alice deletes a bucket: one approver of `approvers` needed); its id. */
  async function request(on: RunningBroker, bucket: string): Promise<string> {
    const res = await fetch(`${on.url}/v1/grants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ argv: ['s3api', 'delete-bucket', '--bucket', bucket], transcriptKey: createTranscriptKey().publicKey, reason: 'live test' }),
    });
    const j = (await res.json()) as { error: { approval?: { id: string } } };
    expect(res.status, JSON.stringify(j)).toBe(403);
    return j.error.approval!.id;
  }
  const approve = async (on: RunningBroker, id: string) => {
    const res = await fetch(`${on.url}/v1/approvals/${id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${tokens.bob}`, 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(200);
  };

  /** The console's event stream on `on` for `user` (signed in through the IdP's pages), read as text. */
  async function events(on: RunningBroker, user: string) {
    const cookie = await signIn(user);
    const ctl = new AbortController();
    const res = await fetch(`${on.url}/ui/events`, { headers: { Cookie: cookie }, signal: ctl.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const decoder = new TextDecoder();
    let pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
    /** Reads until `re` matches the text so far or `ms` pass; the text, or undefined. */
    const until = async (re: RegExp, ms: number): Promise<string | undefined> => {
      const deadline = Date.now() + ms;
      while (!re.test(text)) {
        const left = deadline - Date.now();
        if (left <= 0) return undefined;
        pending ??= reader.read();
        const chunk = await Promise.race([pending, new Promise<undefined>((r) => setTimeout(() => r(undefined), left))]);
        if (!chunk) continue;
        pending = undefined;
        if (chunk.done) return re.test(text) ? text : undefined;
        text += decoder.decode(chunk.value, { stream: true });
      }
      return text;
    };
    expect(await until(/event: ready/, 5000)).toBeDefined();
    return { until, text: () => text, close: () => ctl.abort() };
  }

  /** Signs `user` in to the console through the IdP's login form; the session cookie header. */
  async function signIn(user: string): Promise<string> {
    const cookies = new Map<string, string>();
    const header = () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    // One jar for both origins is enough here: the IdP's and the console's cookie names differ.
    const go = async (url: string, init: RequestInit = {}) => {
      const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), Cookie: header() } });
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(';');
        const i = pair!.indexOf('=');
        cookies.set(pair!.slice(0, i), pair!.slice(i + 1));
      }
      return res;
    };
    let url = (await go(`${ui}login`)).headers.get('location')!;
    for (let i = 0; i < 20 && !url.startsWith(`${ui}callback`); i++) {
      const res = await go(url);
      if (res.status >= 300 && res.status < 400) {
        url = new URL(res.headers.get('location')!, url).href;
        continue;
      }
      const action = /<form id="login" method="post" action="([^"]+)"/.exec(await res.text())?.[1];
      if (!action) throw new Error(`unexpected page at ${url}: ${res.status}`);
      const posted = await go(new URL(action, url).href, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: user, password: `${user}-password` }).toString(),
      });
      url = new URL(posted.headers.get('location')!, url).href;
    }
    expect((await go(url)).status).toBe(200);
    const session = cookies.get('guard-aws-console');
    expect(session).toBeTruthy();
    return `guard-aws-console=${session}`;
  }

  const longPoll = (on: RunningBroker, id: string, seen: string) =>
    fetch(`${on.url}/v1/approvals/${id}?wait=20&seen=${seen}`, { headers: { authorization: `Bearer ${tokens.alice}` } }).then(async (r) => ({
      at: Date.now(),
      body: (await r.json()) as { status: string },
    }));

  it('a console stream on A hears of a request opened and approved on B at once, once, and only viewers who may see it do', async () => {
    const bob = await events(a, 'bob');
    const frank = await events(a, 'frank');
    // carol audits: she may see every request, so her stream shows what frank's would if filtering were missing.
    const carol = await events(a, 'carol');
    try {
      const id = await request(b, 'live-across');
      expect(await bob.until(new RegExp(`event: approval\\ndata: \\{"id":"${id}","kind":"opened","status":"pending"\\}`), 3000)).toBeDefined();
      const t0 = Date.now();
      await approve(b, id);
      expect(await bob.until(new RegExp(`"id":"${id}","kind":"approved","status":"approved"`), 3000)).toBeDefined();
      expect(Date.now() - t0).toBeLessThan(3000);
      // A change made on A itself: told once (in-process), not a second time through the database.
      const own = await request(a, 'live-own');
      expect(await bob.until(new RegExp(`"id":"${own}","kind":"opened"`), 3000)).toBeDefined();
      // Read on for half a second: a second copy, through the database, would have arrived by then.
      expect(await bob.until(/(?!)/, 500)).toBeUndefined();
      expect(bob.text().split(`"id":"${own}"`).length - 1).toBe(1);
      expect(bob.text().split(`"id":"${id}"`).length - 1).toBe(2);
      // frank approves for another group: he may not see alice's bucket deletion, so he hears of none of it.
      expect(await carol.until(new RegExp(`"id":"${id}","kind":"approved"`), 3000)).toBeDefined();
      expect(await frank.until(/event: approval/, 300)).toBeUndefined();
      expect(frank.text()).not.toContain(id);
    } finally {
      bob.close();
      frank.close();
      carol.close();
    }
  });

  it('whatever a database session announces, a stream shows only the request as re-read and only to who may see it', async () => {
    const id = await request(b, 'live-forged');
    const bob = await events(a, 'bob');
    const frank = await events(a, 'frank');
    const raw = await openPostgresDb({ url: dbUrl, poolSize: 1 });
    try {
      // Garbage, an id that does not exist, and a claim that a pending request was approved.
      for (const p of ['not json', '{"id":"apr_nope","kind":"approved","from":"x"}', '{"id":"../../x","kind":"approved","from":"x"}', JSON.stringify({ id, kind: 'approved', from: 'forger' })]) {
        await raw.notify('guard_aws_approvals', p);
      }
      // The state shown is the database's (still pending), not the announcement's.
      expect(await bob.until(new RegExp(`"id":"${id}","kind":"approved","status":"pending"`), 3000)).toBeDefined();
      expect(await bob.until(/(?!)/, 300)).toBeUndefined();
      expect(bob.text().match(/event: approval/g)).toHaveLength(1);
      expect(await frank.until(/event: approval/, 300)).toBeUndefined();
    } finally {
      await raw.close();
      bob.close();
      frank.close();
    }
  });

  it('a client waiting on A for a decision proceeds as soon as B approves, not when its long poll runs out', async () => {
    const id = await request(b, 'live-wait');
    // The CLI's own wait (src/approvals/client.ts): one read, then long polls of up to 20 s on broker A.
    let seenPending = false;
    const waited = waitForApproval({ brokerUrl: a.url, token: tokens.alice!, id, waitMs: 60_000, onStatus: (s) => (seenPending ||= s.status === 'pending') }).then((r) => ({ at: Date.now(), r }));
    await new Promise((r) => setTimeout(r, 800));
    expect(seenPending).toBe(true);
    const decided = Date.now();
    await approve(b, id);
    const { at, r } = await waited;
    expect(r.outcome).toBe('approved');
    expect(at - decided).toBeLessThan(2000);
  });

  // Skips only without Debian's chromium (installed by .ci/run's setup, so CI runs it).
  it.skipIf(!haveChromium)('in real Chromium, pages on A follow changes made on B, and re-fetch after the database restarts', async () => {
    const browser = await launchChromium();
    try {
      const { page } = await browserSignIn(browser, ui, 'bob');
      await page.waitForFunction(() => document.getElementById('live-status')?.textContent?.startsWith('Live'), undefined, { timeout: 5000 });
      const id = await request(b, 'live-browser');
      // The home page's list fetches itself again when the event arrives: the new request appears without a reload.
      await page.waitForSelector(`a[href="/ui/approvals/${id}"]`, { timeout: 3000 });
      const listed = await page.evaluate(() => document.body.dataset.updated);
      expect(listed).toBeTruthy();
      await pg.restart();
      // No approval changed, but the broker may have missed some: the list is fetched again (the `refresh` event).
      await page.waitForFunction((before) => document.body.dataset.updated !== before, listed, { timeout: 10_000 });
      // A request's own page reloads when it is decided elsewhere.
      const stream = page.waitForResponse((r) => r.url().endsWith('/ui/events'), { timeout: 5000 });
      await page.goto(`${ui}approvals/${id}`);
      expect(await page.textContent('.status-line')).toContain('pending');
      await stream;
      await approve(b, id);
      await page.waitForFunction(() => document.querySelector('.status-line')?.textContent?.includes('approved'), undefined, { timeout: 3000 });
    } finally {
      await browser.close();
    }
  }, 40_000);

  it('after PostgreSQL restarts, the listener reconnects, tells streams and long polls to re-read, and later changes arrive again', async () => {
    const bob = await events(a, 'bob');
    try {
      const id = await request(b, 'live-restart');
      expect(await bob.until(new RegExp(`"id":"${id}","kind":"opened"`), 3000)).toBeDefined();
      const held = longPoll(a, id, 'pending/0');
      await new Promise((r) => setTimeout(r, 300));
      await pg.restart();
      // The stream is told to re-read (what changed while the listener was away is unknown), and so is the poll.
      expect(await bob.until(/event: refresh\ndata: \{\}/, 10_000)).toBeDefined();
      expect((await held).body.status).toBe('pending');
      const t0 = Date.now();
      await approve(b, id);
      expect(await bob.until(new RegExp(`"id":"${id}","kind":"approved"`), 3000)).toBeDefined();
      expect(Date.now() - t0).toBeLessThan(3000);
      // The outage is logged once and the recovery once (per restart; the browser test may restart it too), and
      // the database password never.
      const lost = logA.filter((l) => l.includes("not listening for other brokers' changes"));
      const back = logA.filter((l) => l.includes("listening for other brokers' changes again"));
      expect(lost.length).toBeGreaterThanOrEqual(1);
      expect(back.length).toBe(lost.length);
      expect(lost[0]).toContain('"level":"warn"');
      expect(logA.join('\n')).not.toContain(DB_PASSWORD);
    } finally {
      bob.close();
    }
  }, 30_000);
});

// As above: skipped only without PostgreSQL; CI runs it.
describe.skipIf(!HAVE_POSTGRES)('the store port: notify and listen', () => {
  let server: TestPostgres;
  let url: string;
  const open: Db[] = [];
  beforeAll(async () => {
    server = await startPostgres();
    url = await server.freshUrl();
  });
  afterAll(async () => {
    for (const d of open) await d.close().catch(() => {});
    await server?.stop();
  });
  const db = async () => {
    const d = await openPostgresDb({ url, poolSize: 2 });
    open.push(d);
    return d;
  };

  it('delivers a notification made in a transaction only when it commits', async () => {
    const [x, y] = [await db(), await db()];
    const got: string[] = [];
    const l = await y.listen('guard_test', { message: (p) => got.push(p), resync: () => got.push('resync') });
    await expect(
      x.transaction(async (tx) => {
        await tx.notify('guard_test', 'rolled-back');
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    await x.transaction((tx) => tx.notify('guard_test', 'committed'));
    const t0 = Date.now();
    while (!got.length && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toEqual(['committed']);
    await l.close();
  });

  it('keeps listening through a database outage: reports it without the password, reconnects, says to resync, hears again', async () => {
    const secretUrl = (await server.freshUrl()).replace('postgres://guard@', 'postgres://guard:pg-secret-pw@');
    const x = await openPostgresDb({ url: secretUrl, poolSize: 2, connectTimeoutMs: 500 });
    open.push(x);
    const got: string[] = [];
    const errors: string[] = [];
    const l = await x.listen('guard_outage', { message: (p) => got.push(p), resync: () => got.push('resync'), error: (e) => errors.push(`${e.code}: ${e.message}`) }, { minDelayMs: 50, maxDelayMs: 200 });
    await server.halt();
    // Down long enough for several failed reconnects.
    await new Promise((r) => setTimeout(r, 1000));
    await server.start();
    const t0 = Date.now();
    while (!got.includes('resync') && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual(['resync']);
    expect(errors.length).toBeGreaterThan(1);
    expect(errors.every((e) => e.startsWith('store_unavailable: ') && !e.includes('pg-secret-pw'))).toBe(true);
    await x.transaction((tx) => tx.notify('guard_outage', 'after'));
    while (got.length < 2 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual(['resync', 'after']);
    await l.close();
  });

  it('refuses a channel that is not a plain identifier and a payload over 7999 bytes, naming which', async () => {
    const x = await db();
    const err = async (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);
    const bad = await err(x.notify('bad channel"; DROP TABLE x; --', '{}'));
    expect(isGuardError(bad) && bad.code).toBe('internal');
    expect((bad as Error).message).toMatch(/channel/);
    const big = await err(x.notify('guard_test', 'x'.repeat(8000)));
    expect(isGuardError(big) && big.code).toBe('internal');
    expect((big as Error).message).toMatch(/payload/);
    const listenBad = await err(x.listen('Bad-Channel', { message: () => {}, resync: () => {} }));
    expect((listenBad as Error).message).toMatch(/channel/);
  });

  it('on SQLite notify does nothing and listen hears nothing (one broker: changes are told in-process)', async () => {
    const s = openSqliteDb(':memory:');
    const got: string[] = [];
    const l = await s.listen('guard_test', { message: (p) => got.push(p), resync: () => got.push('resync') });
    await s.transaction((tx) => tx.notify('guard_test', 'x'));
    await l.close();
    await s.close();
    expect(got).toEqual([]);
  });
});
