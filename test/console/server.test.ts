import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleBroker } from '../../src/broker/assemble.js';
import { brokerConfigFrom } from '../../src/broker/config.js';
import { silentLog } from '../../src/broker/log.js';
import { startBroker, type RunningBroker } from '../../src/broker/server.js';
import { isGuardError } from '../../src/errors.js';
import { E2E_USERS, fixtures } from '../e2e/harness.js';
import { startIdp, userToken, type StartedIdp } from '../helpers/idp.js';
import { freePort } from '../helpers/ports.js';

// The console's sign-in and session rules over plain HTTP (no browser needed to try to break them): the real
// embedded IdP and the assembled broker. What a browser adds (SameSite, CSP enforcement, rendering) is in the
// Chromium tests next to this file.
let idp: StartedIdp;
let broker: RunningBroker;
let ui: string;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'guard-aws-console-'));
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  ui = `${publicUrl}/ui/`;
  idp = await startIdp({ users: E2E_USERS, consoleRedirectUris: [`${publicUrl}/ui/callback`] });
  const config = brokerConfigFrom(
    {
      listen: { host: '127.0.0.1', port },
      issuer: idp.issuer,
      audience: idp.audience,
      clientId: idp.clientId,
      jwksUri: idp.jwksUri,
      policies: [join(fixtures, 'e2e-policy.yaml')],
      storage: { sqlite: join(dir, 'broker.sqlite') },
      targets: [{ name: 'dev', roleArn: 'arn:aws:iam::123456789012:role/dev', region: 'us-east-1', default: true }],
      console: { publicUrl },
    },
    dir,
  );
  broker = await startBroker(config, await assembleBroker(config, { overrides: { log: silentLog } }));
});
afterAll(async () => {
  await broker?.close();
  await idp?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A tiny cookie jar per origin, enough for the IdP's interaction cookies and the console's. */
class Jar {
  private readonly byOrigin = new Map<string, Map<string, string>>();
  store(url: string, res: Response): void {
    const o = new URL(url).origin;
    const m = this.byOrigin.get(o) ?? new Map<string, string>();
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i);
      const value = pair!.slice(i + 1);
      if (/max-age=0|expires=Thu, 01 Jan 1970/i.test(c) || value === '') m.delete(name);
      else m.set(name, value);
    }
    this.byOrigin.set(o, m);
  }
  header(url: string): string {
    return [...(this.byOrigin.get(new URL(url).origin) ?? new Map()).entries()].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  get(url: string, name: string): string | undefined {
    return this.byOrigin.get(new URL(url).origin)?.get(name);
  }
}

async function go(jar: Jar, url: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), Cookie: jar.header(url) } });
  jar.store(url, res);
  return res;
}

/** Follows redirects (and the IdP's login form) until the console's callback URL; returns it without calling it. */
async function toCallback(jar: Jar, start: string, user: string): Promise<string> {
  let url = start;
  for (let i = 0; i < 20; i++) {
    if (url.startsWith(`${ui}callback`)) return url;
    const res = await go(jar, url);
    if (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get('location')!, url).href;
      continue;
    }
    const body = await res.text();
    const action = /<form id="login" method="post" action="([^"]+)"/.exec(body)?.[1];
    if (!action) throw new Error(`unexpected page at ${url}: ${res.status} ${body.slice(0, 200)}`);
    const posted = await go(jar, new URL(action, url).href, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: user, password: `${user}-password` }).toString(),
    });
    url = new URL(posted.headers.get('location')!, url).href;
  }
  throw new Error('too many redirects');
}

async function signIn(user: string): Promise<{ jar: Jar; cookie: string }> {
  const jar = new Jar();
  const login = await go(jar, `${ui}login`);
  const cb = await toCallback(jar, login.headers.get('location')!, user);
  const res = await go(jar, cb);
  expect(res.status).toBe(200);
  return { jar, cookie: jar.get(ui, 'guard-aws-console')! };
}

describe('console sign-in (authorization code + PKCE)', () => {
  it('asks the IdP for a code with an S256 PKCE challenge, state and the broker as resource; the session cookie is HttpOnly, SameSite=Strict', async () => {
    const jar = new Jar();
    const first = await go(jar, ui);
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/ui/login?next=%2Fui%2F');
    const login = await go(jar, `${ui}login`);
    const auth = new URL(login.headers.get('location')!);
    expect(auth.origin).toBe(idp.issuer);
    expect(auth.searchParams.get('response_type')).toBe('code');
    expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
    expect(auth.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(auth.searchParams.get('state')).toBeTruthy();
    expect(auth.searchParams.get('resource')).toBe(idp.audience);
    expect(auth.searchParams.get('redirect_uri')).toBe(`${ui}callback`);
    const cb = await toCallback(jar, auth.href, 'bob');
    const res = await fetch(cb, { redirect: 'manual', headers: { Cookie: jar.header(cb) } });
    const set = res.headers.getSetCookie().find((c) => c.startsWith('guard-aws-console='))!;
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Strict/);
    expect(set).toMatch(/Path=\//);
    expect(set).not.toMatch(/Domain=/i);
    // Plain http on loopback: no Secure (browsers would drop it); https deployments get __Host- and Secure.
    expect(set).not.toMatch(/Secure/);
  });

  it('"sign in again" after signing out asks the IdP for the password again (prompt=login)', async () => {
    const jar = new Jar();
    const fresh = new URL((await go(jar, `${ui}login?fresh=1`)).headers.get('location')!);
    expect(fresh.searchParams.get('prompt')).toBe('login');
    const usual = new URL((await go(jar, `${ui}login`)).headers.get('location')!);
    expect(usual.searchParams.get('prompt')).toBeNull();
    expect(await (await fetch(`${ui}signed-out`)).text()).toContain('href="/ui/login?fresh=1"');
  });

  it('after sign-in goes back only to a console page (no open redirect)', async () => {
    for (const [next, to] of [
      ['/ui/audit?user=x', '/ui/audit?user=x'],
      ['https://evil.example/', '/ui/'],
      ['//evil.example/ui/', '/ui/'],
      ['/ui//evil.example', '/ui/'],
      ['/ui/"><script>', '/ui/'],
    ]) {
      const jar = new Jar();
      const auth = (await go(jar, `${ui}login?next=${encodeURIComponent(next!)}`)).headers.get('location')!;
      const page = await (await go(jar, await toCallback(jar, auth, 'carol'))).text();
      expect(page, next).toContain(`content="0;url=${to!.replace(/&/g, '&#38;')}"`);
    }
  });

  it('the IdP refuses a console authorization request without PKCE', async () => {
    const jar = new Jar();
    const auth = new URL((await go(jar, `${ui}login`)).headers.get('location')!);
    auth.searchParams.delete('code_challenge');
    auth.searchParams.delete('code_challenge_method');
    const res = await go(jar, auth.href);
    const where = res.headers.get('location') ?? '';
    const body = res.status === 200 || res.status === 400 ? await res.text() : '';
    expect(`${where} ${body}`).toMatch(/invalid_request|PKCE|code_challenge/);
    expect(where.startsWith(`${ui}callback`) ? new URL(where).searchParams.get('code') : null).toBeNull();
  });

  it('a wrong state, a missing login cookie or a replayed code opens no session', async () => {
    const jar = new Jar();
    const auth = (await go(jar, `${ui}login`)).headers.get('location')!;
    const cb = new URL(await toCallback(jar, auth, 'bob'));
    const forged = new URL(cb);
    forged.searchParams.set('state', 'not-the-state');
    const r1 = await fetch(forged, { redirect: 'manual', headers: { Cookie: jar.header(cb.href) } });
    expect(r1.status).toBe(401);
    expect(r1.headers.getSetCookie().some((c) => c.startsWith('guard-aws-console='))).toBe(false);
    const r2 = await fetch(cb, { redirect: 'manual' });
    expect(r2.status).toBe(401);
    expect(await r2.text()).toContain('not started in this browser');
    // The code itself was not spent by the refusals above; once used, it is gone (RFC 6749 §4.1.2).
    const ok = await fetch(cb, { redirect: 'manual', headers: { Cookie: jar.header(cb.href) } });
    expect(ok.status).toBe(200);
    const again = await fetch(cb, { redirect: 'manual', headers: { Cookie: jar.header(cb.href) } });
    expect(again.status).toBe(401);
  });

  it('keeps only a hash of the session id in the database, and an expired session sends the browser to sign in', async () => {
    const { jar, cookie } = await signIn('carol');
    const db = new Database(join(dir, 'broker.sqlite'), { readonly: false });
    try {
      const hashes = (db.prepare('SELECT id_hash FROM console_sessions').all() as { id_hash: string }[]).map((r) => r.id_hash);
      expect(hashes).toContain(createHash('sha256').update(cookie).digest('hex'));
      expect(JSON.stringify(db.prepare('SELECT * FROM console_sessions').all())).not.toContain(cookie);
      expect((await go(jar, `${ui}audit`)).status).toBe(200);
      db.prepare('UPDATE console_sessions SET expires_at = 0 WHERE id_hash = ?').run(createHash('sha256').update(cookie).digest('hex'));
    } finally {
      db.close();
    }
    const after = await go(jar, `${ui}audit`);
    expect(after.status).toBe(303);
    expect(after.headers.get('location')).toBe('/ui/login?next=%2Fui%2Faudit');
  });

  it('sign-out needs the CSRF token and the console origin', async () => {
    const { jar } = await signIn('erin');
    const page = await (await go(jar, ui)).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)![1]!;
    const post = (headers: Record<string, string>, body: Record<string, string>) =>
      go(jar, `${ui}logout`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body).toString() });
    const origin = new URL(ui).origin;
    expect((await post({ Origin: origin }, {})).status).toBe(403);
    expect((await post({ Origin: 'http://127.0.0.1:1' }, { csrf })).status).toBe(403);
    expect((await post({}, { csrf })).status).toBe(403);
    expect((await post({ 'Sec-Fetch-Site': 'cross-site' }, { csrf })).status).toBe(403);
    expect((await go(jar, ui)).status).toBe(200);
    const out = await post({ Origin: origin }, { csrf });
    expect(out.status).toBe(303);
    expect((await go(jar, ui)).status).toBe(303);
  });
});

describe('console live updates (server-sent events)', () => {
  it('tell approvers of a new request at once, and tell nobody who may not see it', async () => {
    const bob = await signIn('bob');
    const erin = await signIn('erin');
    const listen = async (jar: Jar) => {
      const ctl = new AbortController();
      const res = await fetch(`${ui}events`, { headers: { Cookie: jar.header(ui) }, signal: ctl.signal });
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const reader = res.body!.getReader();
      let text = '';
      const until = async (re: RegExp, ms: number): Promise<string | undefined> => {
        const deadline = Date.now() + ms;
        while (!re.test(text)) {
          const left = deadline - Date.now();
          if (left <= 0) return undefined;
          const chunk = await Promise.race([reader.read(), new Promise<undefined>((r) => setTimeout(() => r(undefined), left))]);
          if (!chunk || chunk.done) return re.test(text) ? text : undefined;
          text += new TextDecoder().decode(chunk.value);
        }
        return text;
      };
      expect(await until(/event: ready/, 5000)).toBeDefined();
      return { until, close: () => ctl.abort() };
    };
    const b = await listen(bob.jar);
    const e = await listen(erin.jar);
    const alice = (await userToken(idp, 'alice')).accessToken;
    const res = await fetch(`${new URL(ui).origin}/v1/runs`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${alice}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ argv: ['s3api', 'delete-bucket', '--bucket', 'e2e-sse'], transcriptKey: 'A'.repeat(43) }),
    });
    const id = ((await res.json()) as { error: { approval: { id: string } } }).error.approval.id;
    const got = await b.until(new RegExp(`event: approval\\ndata: .*${id}`), 3000);
    expect(got).toBeDefined();
    expect(await e.until(/event: approval/, 500)).toBeUndefined();
    b.close();
    e.close();
  });

  it('without a session the stream and the fragments answer 401 (no redirect loops for scripts)', async () => {
    expect((await fetch(`${ui}events`, { redirect: 'manual' })).status).toBe(401);
    expect((await fetch(`${ui}fragments/approvals`, { redirect: 'manual' })).status).toBe(401);
  });
});

describe('long poll for the waiting CLI (GET /v1/approvals/:id?wait&seen)', () => {
  it('holds the answer until the request changes, then answers at once; a different `seen` answers at once', async () => {
    const origin = new URL(ui).origin;
    const [alice, bob] = [(await userToken(idp, 'alice')).accessToken, (await userToken(idp, 'bob')).accessToken];
    const res = await fetch(`${origin}/v1/runs`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${alice}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ argv: ['s3api', 'delete-bucket', '--bucket', 'e2e-long-poll'], transcriptKey: 'A'.repeat(43) }),
    });
    const id = ((await res.json()) as { error: { approval: { id: string } } }).error.approval.id;
    const get = (q: string) => fetch(`${origin}/v1/approvals/${id}${q}`, { headers: { Authorization: `Bearer ${alice}` } });
    let t0 = Date.now();
    expect(((await (await get('?wait=20&seen=pending/1')).json()) as { status: string }).status).toBe('pending');
    expect(Date.now() - t0).toBeLessThan(1000);
    t0 = Date.now();
    const held = get('?wait=20&seen=pending/0').then(async (r) => ({ at: Date.now(), body: (await r.json()) as { status: string } }));
    await new Promise((r) => setTimeout(r, 700));
    const decided = Date.now();
    const ok = await fetch(`${origin}/v1/approvals/${id}/approve`, { method: 'POST', headers: { Authorization: `Bearer ${bob}`, 'Content-Type': 'application/json' }, body: '{}' });
    expect(ok.status).toBe(200);
    const { at, body } = await held;
    expect(body.status).toBe('approved');
    expect(at - t0).toBeGreaterThanOrEqual(700);
    expect(at - decided).toBeLessThan(500);
  });
});

describe('console config', () => {
  it('refuses a publicUrl with a path, naming the key', () => {
    try {
      brokerConfigFrom({
        issuer: 'https://idp.example.com',
        audience: 'a',
        clientId: 'c',
        policies: ['p.yaml'],
        storage: { sqlite: ':memory:' },
        targets: [{ name: 'dev', roleArn: 'arn:aws:iam::123456789012:role/dev', region: 'us-east-1' }],
        console: { publicUrl: 'https://guard.example.com/broker' },
      });
      expect.unreachable();
    } catch (e) {
      expect(isGuardError(e) && e.code).toBe('config_invalid');
      expect((e as Error).message).toBe('broker config: console.publicUrl: must be an origin such as https://guard.example.com (no path)');
    }
  });

  it('the assets are served with their hash for long caching, under the same CSP', async () => {
    const page = await (await fetch(`${ui}signed-out`)).text();
    const js = /<script src="([^"]+)"/.exec(page)![1]!;
    const res = await fetch(new URL(js, ui));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(res.headers.get('cache-control')).toContain('immutable');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect((await fetch(`${ui}assets/other.js`)).status).toBe(404);
    const { jar } = await signIn('erin');
    const missing = await go(jar, `${ui}no-such-page`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^text\/html/);
  });
});

describe('shutdown', () => {
  it('an open live-update stream and a held long poll do not keep the broker from closing', async () => {
    const { jar } = await signIn('bob');
    const events = await fetch(`${ui}events`, { headers: { Cookie: jar.header(ui) } });
    const reader = events.body!.getReader();
    await reader.read();
    const origin = new URL(ui).origin;
    const alice = (await userToken(idp, 'alice')).accessToken;
    const res = await fetch(`${origin}/v1/runs`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${alice}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ argv: ['s3api', 'delete-bucket', '--bucket', 'e2e-shutdown'], transcriptKey: 'A'.repeat(43) }),
    });
    const id = ((await res.json()) as { error: { approval: { id: string } } }).error.approval.id;
    const held = fetch(`${origin}/v1/approvals/${id}?wait=20&seen=pending/0`, { headers: { Authorization: `Bearer ${alice}` } });
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await broker.close();
    expect(Date.now() - t0).toBeLessThan(3000);
    expect((await held).status).toBe(200);
    // The stream ended (a browser's EventSource would reconnect to the next broker).
    for (let r = await reader.read(); !r.done; r = await reader.read());
  });
});
