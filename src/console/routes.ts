import type { Context, Env, Hono, MiddlewareHandler } from 'hono';
import { getCookie, setCookie, deleteCookie } from 'hono/cookie';
import { streamSSE } from 'hono/streaming';
import type { ApprovalSummary } from '../api/types.js';
import type { ApprovalNotification, ApprovalService } from '../approvals/service.js';
import { verifyChainAsync } from '../audit/chain.js';
import type { BodyStore } from '../audit/bodies/store.js';
import { bodyFrames } from '../audit/replay.js';
import type { AuditService } from '../audit/service.js';
import { findUnreported, summarize, type AuditSummary } from '../audit/summary.js';
import { isGuardError } from '../errors.js';
import type { Caller } from '../policy/types.js';
import { consoleAssets, type Assets } from './assets.js';
import { consoleRedirectUri, type ConsoleConfig } from './config.js';
import { escapeHtml, type Html } from './html.js';
import { consoleLogin, type ConsoleLogin } from './login.js';
import * as pages from './pages.js';
import { SessionStore, sameToken, type ConsoleSession } from './sessions.js';
import type { Db } from '../store/db.js';

/**
 * The web console under /ui/: approvals for approvers (live over server-sent events) and the audit log for
 * auditors, signed in through the broker's own identity provider. It is a module the broker mounts
 * (src/broker/assemble.ts); it speaks to the same ApprovalService and audit log as /v1, so every rule — who may
 * see, who may decide, no self-approval — is the service's and holds here exactly as in the API.
 */
export interface ConsoleOptions {
  config: ConsoleConfig;
  issuer: string;
  audience: string;
  /** The broker's token verifier (the same one /v1 uses). */
  verify: (token: string) => Promise<Caller>;
  approvals: ApprovalService;
  /** The audit service, once the audit module is mounted. */
  audit: () => AuditService | undefined;
  /** The transcript body store (src/audit/bodies/), once mounted: a v2 transcript's output is read from it. */
  bodies?: () => Pick<BodyStore, 'get'> | undefined;
  auditorGroups: readonly string[];
  targets: pages.TargetFacts[];
  db: Db;
  /**
   * Registers a listener for committed approval changes (and, optionally, for "changes may have been missed":
   * the broker's change feed reconnected); returns the unsubscribe.
   */
  subscribe: (fn: (n: ApprovalNotification) => void, onResync?: () => void) => () => void;
  now?: () => number;
  fetch?: typeof fetch;
  env?: NodeJS.ProcessEnv;
  log?: (entry: { level: 'info' | 'warn' | 'error'; msg: string; [k: string]: unknown }) => void;
  /** Directory of the built assets (tests). */
  assetsDir?: string;
  /** SSE keep-alive comment interval. Default 25 s (below common proxy idle timeouts). */
  keepAliveMs?: number;
}

type CEnv = Env & { Variables: { session?: ConsoleSession; sessionId?: string } };
type C = Context<CEnv>;

const ID = /^[A-Za-z0-9_-]{1,128}$/;
const RECORD_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const AUDIT_SCAN = 2000;
const MAX_STREAMS = 500;

export function mountConsole(app: Hono<any>, o: ConsoleOptions): { close(): void } {
  const ui = app as unknown as Hono<CEnv>;
  const now = o.now ?? Date.now;
  const log = o.log ?? (() => {});
  const publicUrl = o.config.publicUrl.replace(/\/+$/, '');
  const origin = new URL(publicUrl).origin;
  const secure = publicUrl.startsWith('https:');
  // RFC 6265bis §4.1.3.2: a `__Host-` cookie must be Secure, Path=/ and have no Domain — it cannot be set or
  // overwritten by a sibling subdomain. Plain http (loopback development) cannot use the prefix.
  const COOKIE = secure ? '__Host-guard-aws-console' : 'guard-aws-console';
  const LOGIN_COOKIE = secure ? '__Host-guard-aws-login' : 'guard-aws-login';
  const sessions = new SessionStore(o.db, now);
  const login: ConsoleLogin = consoleLogin({
    issuer: o.issuer,
    clientId: o.config.clientId,
    redirectUri: consoleRedirectUri(publicUrl),
    audience: o.audience,
    ...(o.fetch ? { fetch: o.fetch } : {}),
    ...(o.env ? { env: o.env } : {}),
  });
  let assetCache: Assets | undefined;
  const assets = () => (assetCache ??= consoleAssets(o.assetsDir));
  const isAuditor = (c: Caller) => c.groups.some((g) => o.auditorGroups.includes(g));
  const streams = new Set<() => void>();
  let draining = false;

  // Strict CSP: scripts and styles only from this origin (no inline code at all), nothing from anywhere else,
  // no framing (clickjacking on the approve button), forms only back to the console.
  const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
  const headers: MiddlewareHandler<CEnv> = async (c, next) => {
    await next();
    c.header('Content-Security-Policy', CSP);
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('X-Frame-Options', 'DENY');
    // `same-origin`, not `no-referrer`: under no-referrer browsers send `Origin: null` on form posts, and the CSRF
    // check needs the real origin. Other sites still learn nothing (no Referer leaves the console).
    c.header('Referrer-Policy', 'same-origin');
    c.header('Cross-Origin-Opener-Policy', 'same-origin');
    c.header('Cross-Origin-Resource-Policy', 'same-origin');
    if (!c.res.headers.get('Cache-Control')) c.header('Cache-Control', 'no-store');
  };
  ui.use('/ui', headers);
  ui.use('/ui/*', headers);

  const page = (c: C, title: string, name: string, body: Html, status = 200) => {
    const s = c.get('session');
    const a = assets();
    return c.html(
      pages.layout({ title, page: name, caller: s?.caller, csrf: s?.csrf, isAuditor: s ? isAuditor(s.caller) : false, assets: { js: a.js.href, css: a.css.href } }, body).text,
      status as 200,
    );
  };
  const fail = (c: C, status: number, title: string, text: string) => page(c, title, 'message', pages.messagePage(title, text, { href: '/ui/', label: 'Back to approvals' }), status);

  // Session: every /ui page but the sign-in steps and the assets needs one.
  const open = new Set(['/ui/login', '/ui/callback', '/ui/signed-out']);
  ui.use('/ui/*', async (c, next) => {
    if (open.has(c.req.path) || c.req.path.startsWith('/ui/assets/')) return next();
    const id = getCookie(c, COOKIE);
    const s = await sessions.get(id);
    if (!s) {
      if (c.req.method === 'GET' && !c.req.path.startsWith('/ui/fragments/') && c.req.path !== '/ui/events') {
        const u = new URL(c.req.url);
        return c.redirect(`/ui/login?next=${encodeURIComponent(u.pathname + u.search)}`, 303);
      }
      return c.text('sign in again', 401);
    }
    c.set('session', s);
    c.set('sessionId', id!);
    // CSRF (OWASP cheat sheet): every state change must come from this origin — the Origin header (Fetch
    // standard; sent on every POST by current browsers) or, without it, Sec-Fetch-Site — and carry the
    // session's synchronizer token. SameSite=Strict on the cookie is a third, independent layer.
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      const from = c.req.header('Origin');
      const site = c.req.header('Sec-Fetch-Site');
      const sameOrigin = from !== undefined ? from === origin : site === 'same-origin';
      const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
      const token = typeof form.csrf === 'string' ? form.csrf : undefined;
      if (!sameOrigin || !sameToken(token, s.csrf)) {
        log({ level: 'warn', msg: 'console: refused a cross-site or token-less POST', path: c.req.path, subject: s.caller.subject });
        return fail(c, 403, 'Refused', 'This request did not come from a console page (cross-site request or missing token). Nothing was changed.');
      }
    }
    return next();
  });

  // --- assets ---
  ui.get('/ui/assets/:name', (c) => {
    const a = assets();
    const asset = c.req.param('name') === 'console.js' ? a.js : c.req.param('name') === 'console.css' ? a.css : undefined;
    if (!asset) return c.text('not found', 404);
    const immutable = c.req.query('v') === asset.hash;
    return c.body(new Uint8Array(asset.body), 200, {
      'Content-Type': asset.type,
      'Cache-Control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      ETag: `"${asset.hash}"`,
    });
  });

  // --- sign-in ---
  ui.get('/ui/login', async (c) => {
    try {
      const start = await login.start({ next: c.req.query('next') ?? '/ui/', forceLogin: c.req.query('fresh') === '1' });
      // SameSite=Lax, not Strict: the callback is a top-level navigation coming back from the identity provider
      // (another site), and the state/verifier must travel with it. It opens nothing by itself.
      setCookie(c, LOGIN_COOKIE, start.cookie, { httpOnly: true, secure, sameSite: 'Lax', path: '/', maxAge: 600 });
      return c.redirect(start.url, 303);
    } catch (e) {
      log({ level: 'error', msg: 'console: cannot start sign-in', error: isGuardError(e) ? e.message : (e as Error)?.name });
      return fail(c, 503, 'Sign-in unavailable', 'The identity provider cannot be reached. Try again in a moment.');
    }
  });

  ui.get('/ui/callback', async (c) => {
    const saved = getCookie(c, LOGIN_COOKIE);
    deleteCookie(c, LOGIN_COOKIE, { path: '/', secure });
    let caller: Caller;
    let next: string;
    try {
      const r = await login.finish(new URL(c.req.url.replace(/^[a-z]+:\/\/[^/]+/, publicUrl)), saved);
      caller = await o.verify(r.accessToken);
      next = r.next;
    } catch (e) {
      log({ level: 'info', msg: 'console: sign-in failed', reason: isGuardError(e) ? e.message : (e as Error)?.name });
      return page(c, 'Sign-in failed', 'message', pages.messagePage('Sign-in failed', isGuardError(e) ? e.message : 'The sign-in could not be completed.', { href: '/ui/login', label: 'Try again' }), 401);
    }
    const { id } = await sessions.create(caller, o.config.sessionTtlSec * 1000);
    setCookie(c, COOKIE, id, { httpOnly: true, secure, sameSite: 'Strict', path: '/', maxAge: o.config.sessionTtlSec });
    log({ level: 'info', msg: 'console: signed in', subject: caller.subject });
    // A SameSite=Strict cookie is not sent on a redirect chain that started at another site, so a 303 to the
    // console would arrive without it. A page from this origin that moves on by itself makes the next request
    // same-site.
    const to = escapeHtml(next);
    return c.html(
      `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${to}"><title>Signed in</title></head><body><p>Signed in. <a href="${to}">Continue</a></p></body></html>`,
    );
  });

  ui.post('/ui/logout', async (c) => {
    await sessions.delete(c.get('sessionId'));
    deleteCookie(c, COOKIE, { path: '/', secure });
    return c.redirect('/ui/signed-out', 303);
  });
  ui.get('/ui/signed-out', (c) =>
    page(c, 'Signed out', 'message', pages.messagePage('Signed out', 'You are signed out of the console.', { href: '/ui/login?fresh=1', label: 'Sign in again' })),
  );

  // --- approvals ---
  const lists = async (who: Caller) => {
    const waiting = await o.approvals.list({ status: 'pending', forApprover: who, limit: 100 });
    const mine = await o.approvals.list({ requester: who.subject, limit: 20 });
    const seen = new Set([...waiting, ...mine].map((a) => a.id));
    const others = (await o.approvals.list({ visibleTo: who, limit: 20 })).filter((a) => !seen.has(a.id));
    return pages.approvalLists({ waiting, mine, others });
  };
  ui.get('/ui', (c) => c.redirect('/ui/', 301));
  ui.get('/ui/', async (c) => page(c, 'Approvals', 'home', pages.homePage(await lists(c.get('session')!.caller))));
  ui.get('/ui/fragments/approvals', async (c) => c.html((await lists(c.get('session')!.caller)).text));

  const findVisible = async (c: C): Promise<ApprovalSummary | Response> => {
    const id = c.req.param('id') ?? '';
    const who = c.get('session')!.caller;
    const a = ID.test(id) ? await o.approvals.get(id) : undefined;
    if (!a || !o.approvals.canView(a, who)) return fail(c, 404, 'Not found', 'There is no approval request with this id that you may see.');
    return a;
  };
  const detail = (c: C, a: ApprovalSummary, extra: { notice?: string; error?: string } = {}, status = 200) => {
    const s = c.get('session')!;
    const target = o.targets.find((t) => t.name === a.target);
    return page(c, `Approval ${a.id}`, 'approval', pages.approvalPage(a, { caller: s.caller, canDecide: o.approvals.canDecide(a, s.caller), csrf: s.csrf, target, ...extra }), status);
  };
  ui.get('/ui/approvals/:id', async (c) => {
    const a = await findVisible(c);
    if (a instanceof Response) return a;
    const done = c.req.query('done');
    return detail(c, a, done === 'approve' ? { notice: 'Your approval was recorded.' } : done === 'deny' ? { notice: 'Your denial was recorded.' } : done === 'withdraw' ? { notice: 'The request was withdrawn.' } : {});
  });
  const VERBS = new Set(['approve', 'deny', 'withdraw']);
  ui.post('/ui/approvals/:id/decide', async (c) => {
    const a = await findVisible(c);
    if (a instanceof Response) return a;
    const form = await c.req.parseBody();
    const verb = String(form.verb ?? '');
    if (!VERBS.has(verb)) return fail(c, 400, 'Bad request', 'Choose approve, deny or withdraw.');
    const s = c.get('session')!;
    return page(c, 'Confirm', 'confirm', pages.confirmPage(a, verb as 'approve', String(form.comment ?? '').slice(0, 1000), s.csrf));
  });
  for (const verb of ['approve', 'deny', 'withdraw'] as const) {
    ui.post(`/ui/approvals/:id/${verb}`, async (c) => {
      const a = await findVisible(c);
      if (a instanceof Response) return a;
      const form = await c.req.parseBody();
      if (form.confirm !== 'yes') return fail(c, 400, 'Not confirmed', 'Decisions need the confirmation step.');
      const who = c.get('session')!.caller;
      const comment = typeof form.comment === 'string' && form.comment.trim() ? form.comment.trim() : undefined;
      try {
        // The service decides who may: approver groups, quorum, state, and never the requester (self_approval).
        if (verb === 'approve') await o.approvals.approve(a.id, who, comment);
        else if (verb === 'deny') await o.approvals.deny(a.id, who, comment);
        else await o.approvals.withdraw(a.id, who, comment);
      } catch (e) {
        if (!isGuardError(e)) throw e;
        log({ level: 'info', msg: 'console: decision refused', approvalId: a.id, subject: who.subject, code: e.code });
        return detail(c, (await o.approvals.get(a.id)) ?? a, { error: `Refused (${e.code}): ${e.message}` }, e.code === 'approval_not_found' ? 404 : e.code.startsWith('approval_') ? 409 : 403);
      }
      log({ level: 'info', msg: `console: ${verb}`, approvalId: a.id, subject: who.subject });
      return c.redirect(`/ui/approvals/${a.id}?done=${verb}`, 303);
    });
  }

  // Live updates: one long-lived response per open page, written to only when an approval the viewer may see
  // changes (server-sent events, WHATWG HTML §9.2) — no polling. Expiries need no event: the page counts down.
  ui.get('/ui/events', (c) => {
    const s = c.get('session')!;
    if (draining) return c.text('the broker is shutting down', 503);
    if (streams.size >= MAX_STREAMS) return c.text('too many live connections', 503);
    return streamSSE(c, async (stream) => {
      let done!: () => void;
      const finished = new Promise<void>((r) => (done = r));
      const stop = () => done();
      streams.add(stop);
      const unsubscribe = o.subscribe((n) => {
        if (!o.approvals.canView(n.approval, s.caller)) return;
        void stream.writeSSE({ event: 'approval', data: JSON.stringify({ id: n.approval.id, kind: n.kind, status: n.approval.status }) }).catch(stop);
      }, () => {
        // Changes may have been missed (which, and whether this viewer may see them, is unknown): the page re-fetches
        // what it shows, through the same visibility checks. Names nothing, so it tells nobody anything.
        void stream.writeSSE({ event: 'refresh', data: '{}' }).catch(stop);
      });
      const keepAlive = setInterval(() => void stream.write(': keep-alive\n\n').catch(stop), o.keepAliveMs ?? 25_000);
      // The stream ends with the session: a signed-out or expired browser stops hearing about approvals.
      const expiry = setTimeout(stop, Math.max(0, s.expiresAt - now()));
      stream.onAbort(stop);
      await stream.writeSSE({ event: 'ready', data: '{}', retry: 3000 });
      await finished;
      clearInterval(keepAlive);
      clearTimeout(expiry);
      unsubscribe();
      streams.delete(stop);
    });
  });

  // --- audit ---
  const auditOnly: MiddlewareHandler<CEnv> = async (c, next) => {
    const s = c.get('session');
    if (!s || !isAuditor(s.caller)) return fail(c, 403, 'Auditors only', `The audit log is for members of the ${o.auditorGroups.join(' or ')} group.`);
    if (!o.audit()) return fail(c, 503, 'Audit log unavailable', 'The audit log is not mounted on this broker.');
    return next();
  };
  ui.use('/ui/audit', auditOnly);
  ui.use('/ui/audit/*', auditOnly);

  // The aws command word of a canonical argv (global options come first there; these take a value).
  const VALUE_GLOBALS = new Set(['--region', '--output', '--query', '--color', '--cli-read-timeout', '--cli-connect-timeout', '--cli-binary-format', '--cli-error-format', '--profile', '--endpoint-url', '--ca-bundle']);
  const serviceOf = (argv: readonly string[] | undefined) => {
    for (let i = 0; argv && i < argv.length; i++) {
      const a = argv[i]!;
      if (!a.startsWith('-')) return a;
      if (VALUE_GLOBALS.has(a)) i++;
    }
    return undefined;
  };
  // `s3` finds both `aws s3 …` and `aws s3api …` (one IAM service, two command sets).
  const serviceMatches = (argv: readonly string[] | undefined, want: string) => {
    const got = serviceOf(argv);
    return got === want || got === `${want}api`;
  };
  const utc = (s: string | undefined) => {
    if (!s) return undefined;
    // <input type="datetime-local"> sends 2026-11-30T14:05 (no zone): the console reads it as UTC, as labelled.
    const t = Date.parse(/Z$|[+-]\d\d:\d\d$/.test(s) ? s : `${s}Z`);
    return Number.isFinite(t) ? t : undefined;
  };
  ui.get('/ui/audit', async (c) => {
    const svc = o.audit()!;
    const q = c.req.query();
    const f: pages.AuditFilters = {};
    for (const k of ['user', 'since', 'until', 'decision', 'target', 'service'] as const) {
      const val = q[k]?.trim();
      if (val) f[k] = val.slice(0, 256);
    }
    const since = utc(f.since);
    const until = utc(f.until);
    const raw = await svc.log.list({ subject: f.user, since: since !== undefined ? new Date(since).toISOString() : undefined, limit: AUDIT_SCAN });
    const records = raw.map(summarize).filter(
      (r: AuditSummary) =>
        (until === undefined || Date.parse(r.at) <= until) &&
        (!f.decision || r.decision === f.decision) &&
        (!f.target || r.target === f.target) &&
        (!f.service || serviceMatches(r.argv, f.service)),
    );
    return page(c, 'Audit log', 'audit', pages.auditPage(records.slice(0, 500), f, { targets: o.targets.map((t) => t.name), scanned: raw.length, limit: AUDIT_SCAN }));
  });
  ui.get('/ui/audit/records/:id', async (c) => {
    const svc = o.audit()!;
    const id = c.req.param('id');
    const rec = RECORD_ID.test(id) ? ((await svc.log.get(id)) ?? (await svc.log.getByGrant(id, 'transcript'))) : undefined;
    if (!rec) return fail(c, 404, 'Not found', 'No audit record with this id.');
    let body: unknown = rec.body;
    let replay: pages.ReplayData | undefined;
    try {
      body = JSON.parse(rec.body);
      const t = (body as { envelope?: { transcript?: { chunks?: pages.ReplayData['chunks']; body?: { sha256?: string; outputBytes?: number } } } }).envelope?.transcript;
      const chunks = t?.chunks;
      if (t?.body?.sha256) replay = await bodyReplay(o.bodies?.(), t.body.sha256, Number(t.body.outputBytes) || 0);
      else if (Array.isArray(chunks)) replay = { chunks: chunks.map((ch) => ({ t: Number(ch.t) || 0, s: ch.s === 'e' ? 'e' : 'o', d: String(ch.d) })) };
    } catch {
      // Shown raw; `audit verify` says what is wrong with it.
    }
    return page(c, `Record ${rec.seq}`, 'record', pages.recordPage(summarize(rec), { body, replay, hash: rec.hash, prevHash: rec.prevHash }));
  });
  ui.get('/ui/audit/verify', async (c) => {
    const svc = o.audit()!;
    const head = await svc.log.head();
    const result = await verifyChainAsync(svc.log.scan({ upToSeq: head?.seq ?? 0 }), svc.publicKeys, { head });
    return page(c, 'Chain verification', 'verify', pages.verifyPage({ ...result, kid: svc.key.kid }));
  });
  ui.get('/ui/audit/unreported', async (c) => {
    const svc = o.audit()!;
    const grants = await svc.listGrants({ limit: 10_000 });
    return page(c, 'Grants without a transcript', 'unreported', pages.unreportedPage((await findUnreported(grants, svc.log, svc.clock())).slice(0, 500)));
  });

  // Anything else under /ui/: a page, not the API's JSON 404.
  ui.get('/ui/*', (c) => fail(c, 404, 'Not found', 'There is no such page in the console.'));

  return {
    close() {
      draining = true;
      for (const stop of [...streams]) stop();
    },
  };
}


/** Output a record page carries for its in-page replay; the whole of a larger body is `guard-aws audit replay`'s. */
export const PAGE_REPLAY_BYTES = 2 * 1024 * 1024;

/** The first PAGE_REPLAY_BYTES of a body's output, as the page's replay data (streamed from the store, then stopped). */
async function bodyReplay(store: Pick<BodyStore, 'get'> | undefined, sha256: string, outputBytes: number): Promise<pages.ReplayData | undefined> {
  const stream = store ? await store.get(sha256) : undefined;
  if (!stream) return undefined;
  const chunks: pages.ReplayData['chunks'] = [];
  let n = 0;
  try {
    for await (const f of bodyFrames(stream)) {
      if (f.type === 'g') continue;
      const part = f.data.subarray(0, PAGE_REPLAY_BYTES - n);
      chunks.push({ t: f.t, s: f.type, d: part.toString('base64') });
      n += part.length;
      if (n >= PAGE_REPLAY_BYTES) break;
    }
  } finally {
    stream.destroy();
  }
  return { chunks, ...(outputBytes > n ? { cut: { shown: n, total: outputBytes } } : {}) };
}
