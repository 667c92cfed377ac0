import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { BrokerEnv } from '../../../src/broker/env.js';
import type { BrokerLogEntry } from '../../../src/broker/log.js';
import { bearerAuth } from '../../../src/broker/middleware/bearer-auth.js';
import { errorHandler } from '../../../src/broker/middleware/error-handler.js';
import { GuardError } from '../../../src/errors.js';

// The verifier here is a plain function: this test is about the middleware's HTTP behaviour (RFC 6750 §3).
// Real token verification over real HTTP is exercised in test/broker/grants.test.ts.
function setup() {
  const logs: BrokerLogEntry[] = [];
  const seen: string[] = [];
  const app = new Hono<BrokerEnv>();
  app.onError(errorHandler((e) => logs.push(e)));
  app.use(
    '/v1/*',
    bearerAuth({
      isPublic: (p) => p === '/v1/public',
      log: (e) => logs.push(e),
      verify: async (t) => {
        seen.push(t);
        if (t === 'good.token.sig') return { subject: 'alice', groups: ['dev'] };
        if (t === 'expired.token.sig') throw new GuardError('auth_expired', 'token expired at 2026-01-01');
        if (t === 'idp.down.sig') throw new GuardError('idp_unreachable', 'JWKS fetch failed');
        throw new GuardError('auth_rejected', 'signature invalid');
      },
    }),
  );
  app.get('/v1/me', (c) => c.json(c.get('caller')));
  app.get('/v1/public', (c) => c.text('hi'));
  return { app, logs, seen };
}

describe('bearerAuth middleware', () => {
  it('passes a verified caller to the handler', async () => {
    const { app } = setup();
    const r = await app.request('/v1/me', { headers: { Authorization: 'bearer good.token.sig' } });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ subject: 'alice', groups: ['dev'] });
  });
  it('public paths need no token', async () => {
    const { app, seen } = setup();
    expect((await app.request('/v1/public')).status).toBe(200);
    expect(seen).toEqual([]);
  });
  it('no credentials → 401 with a challenge and no error code', async () => {
    const { app } = setup();
    const r = await app.request('/v1/me');
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="guard-aws"');
  });
  it.each(['Basic abc', 'Bearer', 'Bearer a b', 'Bearer tok\u00e9n', 'Bearertoken'])('malformed %j → 400 bad_request (RFC 6750 invalid_request in the challenge), verifier not called', async (h) => {
    const { app, seen } = setup();
    const r = await app.request('/v1/me', { headers: { Authorization: h } });
    expect(r.status).toBe(400);
    expect((await r.json()).error.code).toBe('bad_request');
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="guard-aws", error="invalid_request"');
    expect(seen).toEqual([]);
  });
  it('rejected token → 401 invalid_token; the token is neither echoed nor logged', async () => {
    const { app, logs } = setup();
    const r = await app.request('/v1/me', { headers: { Authorization: 'Bearer forged.token.sig' } });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="guard-aws", error="invalid_token", error_description="The access token is invalid"');
    const text = await r.text();
    expect(JSON.parse(text).error.code).toBe('invalid_token');
    expect(text).not.toContain('forged');
    expect(JSON.stringify(logs)).not.toContain('forged');
    expect(JSON.stringify(logs)).toContain('signature invalid');
  });
  it('a token in the query string or a cookie is not accepted (header only; RFC 6750 §2.3 leaks tokens into logs)', async () => {
    const { app, seen } = setup();
    expect((await app.request('/v1/me?access_token=good.token.sig')).status).toBe(401);
    expect((await app.request('/v1/me', { headers: { Cookie: 'access_token=good.token.sig' } })).status).toBe(401);
    expect(seen).toEqual([]);
  });
  it('expired token → 401 token_expired', async () => {
    const { app } = setup();
    const r = await app.request('/v1/me', { headers: { Authorization: 'Bearer expired.token.sig' } });
    expect(r.status).toBe(401);
    expect((await r.json()).error.code).toBe('token_expired');
  });
  it('identity provider unreachable → 503, nothing granted', async () => {
    const { app } = setup();
    const r = await app.request('/v1/me', { headers: { Authorization: 'Bearer idp.down.sig' } });
    expect(r.status).toBe(503);
    expect((await r.json()).error.code).toBe('idp_unreachable');
  });
});
