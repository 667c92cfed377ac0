import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Middleware, Provider } from 'oidc-provider';
import { errorPage, loginPage } from './pages.js';
import type { IdpUser } from './users.js';

/**
 * The interaction step oidc-provider hands to the application: the login form (username and password) and the
 * implied consent for guard-aws's own first-party clients. Served under /interaction/<uid>.
 */

/** Constant-time password check: compares digests so length differences leak nothing either. */
function passwordMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

async function readForm(req: IncomingMessage, limit = 16 * 1024): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error('form too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export function interactionsMiddleware(provider: Provider, o: { usersByName: ReadonlyMap<string, IdpUser>; log: (line: string) => void }): Middleware {
  const { usersByName, log } = o;
  return async (ctx, next) => {
    const m = /^\/interaction\/([A-Za-z0-9_-]+)(\/login|\/abort)?$/.exec(ctx.path);
    if (!m) return next();
    ctx.set('cache-control', 'no-store');
    let details;
    try {
      details = await provider.interactionDetails(ctx.req, ctx.res);
    } catch {
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = errorPage('invalid_request', 'this sign-in has expired; run `guard-aws login` again');
      return;
    }
    if (details.uid !== m[1]) {
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = errorPage('invalid_request', 'interaction mismatch');
      return;
    }
    const finish = async (result: Record<string, unknown>) => {
      const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
      ctx.redirect(to);
      ctx.status = 303;
    };

    if (ctx.method === 'GET' && !m[2]) {
      if (details.prompt.name === 'login') {
        ctx.type = 'html';
        ctx.body = loginPage(details.uid);
        return;
      }
      if (details.prompt.name === 'consent') {
        // guard-aws's own clients are first-party: consent is implied by logging in, so the grant is recorded
        // without a second page (the pattern oidc-provider documents for first-party clients).
        const accountId = details.session?.accountId;
        const cid = String(details.params.client_id);
        if (!accountId) throw new Error('consent without a session');
        const grant = details.grantId ? ((await provider.Grant.find(details.grantId)) ?? new provider.Grant({ accountId, clientId: cid })) : new provider.Grant({ accountId, clientId: cid });
        const d = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
        if (d.missingOIDCScope?.length) grant.addOIDCScope(d.missingOIDCScope.join(' '));
        if (d.missingOIDCClaims?.length) grant.addOIDCClaims(d.missingOIDCClaims);
        for (const [resource, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(resource, scopes.join(' '));
        const grantId = await grant.save();
        await finish({ consent: { grantId } });
        return;
      }
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = errorPage('invalid_request', `unsupported prompt ${details.prompt.name}`);
      return;
    }

    if (ctx.method === 'POST' && m[2] === '/abort') {
      await finish({ error: 'access_denied', error_description: 'End-User aborted the sign-in' });
      return;
    }

    if (ctx.method === 'POST' && m[2] === '/login' && details.prompt.name === 'login') {
      let form: URLSearchParams;
      try {
        form = await readForm(ctx.req);
      } catch {
        ctx.status = 413;
        return;
      }
      const username = form.get('username') ?? '';
      const user = usersByName.get(username);
      // Always run the comparison so an unknown user costs the same as a wrong password.
      const ok = passwordMatches(form.get('password') ?? '', user?.password ?? randomBytes(16).toString('hex')) && !!user;
      if (!ok) {
        log(`idp: failed login for ${JSON.stringify(username.slice(0, 64))}`);
        ctx.status = 401;
        ctx.type = 'html';
        ctx.body = loginPage(details.uid, 'Wrong username or password.', username);
        return;
      }
      log(`idp: ${user!.username} logged in`);
      await finish({ login: { accountId: user!.username } });
      return;
    }
    ctx.status = 405;
  };
}
