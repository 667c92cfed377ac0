import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { startIdp, DEFAULT_USERS, userToken, workloadToken, type StartedIdp } from '../helpers/idp.js';
import { completeDeviceLogin } from '../helpers/device-login.js';

// Everything here runs against the real oidc-provider on a loopback port, over real HTTP.
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

async function deviceAuth(idp: StartedIdp, extra: Record<string, string> = {}) {
  const res = await fetch(idp.deviceAuthorizationEndpoint, {
    method: 'POST',
    body: new URLSearchParams({ client_id: idp.clientId, scope: 'openid offline_access', resource: idp.audience, ...extra }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function token(idp: StartedIdp, params: Record<string, string>) {
  const res = await fetch(idp.tokenEndpoint, { method: 'POST', body: new URLSearchParams({ client_id: idp.clientId, ...params }) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

describe('embedded identity provider', () => {
  let idp: StartedIdp;
  const logs: string[] = [];
  beforeAll(async () => {
    idp = await startIdp({ log: (l) => logs.push(l) });
  });
  afterAll(() => idp.close());

  test('defaults include a developer, an approver and an auditor', () => {
    const byGroup = (g: string) => DEFAULT_USERS.filter((u) => u.groups.includes(g)).map((u) => u.username);
    expect(byGroup('developers')).toEqual(['alice']);
    expect(byGroup('approvers')).toEqual(['bob']);
    expect(byGroup('auditors')).toEqual(['carol']);
  });

  test('discovery advertises the device flow and revocation on loopback', async () => {
    expect(idp.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const d = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, any>;
    expect(d.issuer).toBe(idp.issuer);
    expect(d.device_authorization_endpoint).toBe(idp.deviceAuthorizationEndpoint);
    expect(d.revocation_endpoint).toBeTruthy();
    expect(d.grant_types_supported).toEqual(expect.arrayContaining([DEVICE_GRANT, 'refresh_token', 'client_credentials']));
  });

  test('device login through the HTML form yields a JWT for the broker audience with sub and groups', async () => {
    const t = await userToken(idp, 'bob');
    expect(decodeProtectedHeader(t.accessToken)).toMatchObject({ alg: 'RS256', typ: 'at+jwt' });
    const claims = decodeJwt(t.accessToken);
    expect(claims).toMatchObject({ iss: idp.issuer, aud: idp.audience, sub: 'bob', groups: ['approvers'], name: 'Bob Approver' });
    expect(t.refreshToken).toBeTruthy();
  });

  test('the device authorization response announces a polling interval (RFC 8628 §3.2)', async () => {
    const { body } = await deviceAuth(idp);
    expect(body.interval).toBe(5);
    expect(body.verification_uri).toBe(idp.verificationUri);
  });

  test('a wrong password does not log in and the device stays pending', async () => {
    const { body: da } = await deviceAuth(idp);
    const done = await completeDeviceLogin({ verificationUri: da.verification_uri, userCode: da.user_code, username: 'alice', password: 'not-her-password' });
    expect(done.ok).toBe(false);
    expect(done.html).toContain('Wrong username or password');
    const t = await token(idp, { grant_type: DEVICE_GRANT, device_code: da.device_code });
    expect(t.body.error).toBe('authorization_pending');
    // Failed logins are logged by username only; no password in any log line.
    expect(logs.join('\n')).not.toContain('not-her-password');
  });

  test('an unknown user cannot log in', async () => {
    const { body: da } = await deviceAuth(idp);
    const done = await completeDeviceLogin({ verificationUri: da.verification_uri, userCode: da.user_code, username: 'mallory', password: 'alice-password' });
    expect(done.ok).toBe(false);
  });

  test('aborting on the confirmation page denies the device (access_denied)', async () => {
    const { body: da } = await deviceAuth(idp);
    await completeDeviceLogin({ verificationUri: da.verification_uri, userCode: da.user_code, username: 'alice', password: 'alice-password', abort: true });
    const t = await token(idp, { grant_type: DEVICE_GRANT, device_code: da.device_code });
    expect(t.body.error).toBe('access_denied');
  });

  test('verification_uri_complete works too', async () => {
    const { body: da } = await deviceAuth(idp);
    const done = await completeDeviceLogin({ verificationUri: da.verification_uri_complete, userCode: da.user_code, username: 'carol', password: 'carol-password' });
    expect(done.ok).toBe(true);
    const t = await token(idp, { grant_type: DEVICE_GRANT, device_code: da.device_code });
    expect(decodeJwt(t.body.access_token)).toMatchObject({ sub: 'carol', groups: ['auditors'] });
  });

  test('polling faster than the interval gets slow_down and the interval grows by 5 s (RFC 8628 §3.5)', async () => {
    const { body: da } = await deviceAuth(idp);
    const first = await token(idp, { grant_type: DEVICE_GRANT, device_code: da.device_code });
    expect(first.body.error).toBe('authorization_pending');
    const second = await token(idp, { grant_type: DEVICE_GRANT, device_code: da.device_code });
    expect(second.body.error).toBe('slow_down');
    expect(second.body.error_description).toContain('10 s');
  });

  test('tokens are only minted for the broker audience (RFC 8707 invalid_target)', async () => {
    const { body } = await deviceAuth(idp, { resource: 'urn:someone:else' });
    expect(body.error).toBe('invalid_target');
  });

  test('refresh works, and a revoked refresh token stops working (RFC 7009)', async () => {
    const t = await userToken(idp, 'alice');
    const r = await token(idp, { grant_type: 'refresh_token', refresh_token: t.refreshToken!, resource: idp.audience });
    expect(r.status).toBe(200);
    expect(decodeJwt(r.body.access_token)).toMatchObject({ sub: 'alice', aud: idp.audience, groups: ['developers'] });
    const current = r.body.refresh_token ?? t.refreshToken!;
    const rev = await fetch(`${idp.issuer}/token/revocation`, {
      method: 'POST',
      body: new URLSearchParams({ client_id: idp.clientId, token: current, token_type_hint: 'refresh_token' }),
    });
    expect(rev.status).toBe(200);
    const again = await token(idp, { grant_type: 'refresh_token', refresh_token: current, resource: idp.audience });
    expect(again.body.error).toBe('invalid_grant');
  });

  test('a workload obtains a JWT for the broker audience with its groups; a wrong secret is refused', async () => {
    const jwt = await workloadToken(idp);
    expect(decodeJwt(jwt)).toMatchObject({ iss: idp.issuer, aud: idp.audience, sub: 'guard-aws-ci', groups: ['ci'] });
    const w = idp.workloads[0]!;
    const res = await fetch(idp.tokenEndpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${w.clientId}:wrong`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: idp.audience }),
    });
    expect(res.status).toBe(401);
  });

  test('the public CLI client cannot use client credentials', async () => {
    const t = await token(idp, { grant_type: 'client_credentials', resource: idp.audience });
    expect(t.status).toBe(400);
    expect(t.body.access_token).toBeUndefined();
    expect(t.body.error).toBeTruthy();
  });
});

describe('embedded identity provider options', () => {
  test('users, groups claim, audience and workloads are configurable', async () => {
    const idp = await startIdp({
      audience: 'https://broker.example.test',
      groupsClaim: 'roles',
      users: [{ username: 'dora', password: 'pw-dora', groups: ['sre', 'approvers'] }],
      workloads: [{ clientId: 'agent-1', clientSecret: 's3cret-agent', groups: ['agents'] }],
    });
    try {
      const t = await userToken(idp, 'dora');
      expect(decodeJwt(t.accessToken)).toMatchObject({ sub: 'dora', roles: ['sre', 'approvers'], aud: 'https://broker.example.test' });
      expect(decodeJwt(t.accessToken).groups).toBeUndefined();
      expect(decodeJwt(await workloadToken(idp, 'agent-1'))).toMatchObject({ sub: 'agent-1', roles: ['agents'] });
      await expect(userToken(idp, 'alice', 'alice-password')).rejects.toThrow();
    } finally {
      await idp.close();
    }
  });
});

describe('embedded identity provider: more', () => {
  test('a wrong user code is refused on the form and no device gets a token', async () => {
    const idp = await startIdp();
    try {
      const page = await fetch(idp.verificationUri);
      const cookie = page.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
      const xsrf = /name="xsrf" value="([^"]+)"/.exec(await page.text())![1]!;
      const res = await fetch(idp.verificationUri, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ xsrf, user_code: 'BCDF-GHJK' }).toString(),
        redirect: 'manual',
      });
      const html = await res.text();
      expect(html).toContain('That code is not valid or has expired');
      expect(html).not.toContain('id="login"');
    } finally {
      await idp.close();
    }
  });

  test('a form post without the xsrf value is refused', async () => {
    const idp = await startIdp();
    try {
      const { body: da } = await deviceAuth(idp);
      const res = await fetch(idp.verificationUri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ user_code: da.user_code, confirm: 'yes' }).toString(),
        redirect: 'manual',
      });
      expect(res.status).toBeGreaterThanOrEqual(400);
      const t = await token(idp, { grant_type: DEVICE_GRANT, device_code: da.device_code });
      expect(t.body.error).toBe('authorization_pending');
    } finally {
      await idp.close();
    }
  });

  test('an issuer override and a wildcard listen address give a usable issuer', async () => {
    const idp = await startIdp({ host: '0.0.0.0', issuer: 'http://localhost:{port}' });
    try {
      expect(idp.issuer).toBe(`http://localhost:${idp.port}`);
      const d = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as { issuer: string };
      expect(d.issuer).toBe(idp.issuer);
    } finally {
      await idp.close();
    }
    await expect(startIdp({ issuer: 'http://localhost:{port}/prefix' })).rejects.toThrow(/origin/);
  });

  test('bad users and workloads fail at start, naming the entry', async () => {
    await expect(startIdp({ users: [{ username: 'a', password: 'p', groups: [] }, { username: 'a', password: 'q', groups: [] }] })).rejects.toThrow(/users\[1\]\.username a is listed twice/);
    await expect(startIdp({ users: [{ username: 'a', password: '', groups: [] }] })).rejects.toThrow(/users\[0\]\.password/);
    await expect(startIdp({ workloads: [{ clientId: 'guard-aws-cli', clientSecret: 'long-enough', groups: [] }] })).rejects.toThrow(/workloads\[0\]\.clientId/);
  });
});

describe('embedded identity provider pages and restarts', () => {
  test('the success page says who signed in; stacked forms keep their buttons apart', async () => {
    const idp = await startIdp();
    try {
      const { body: da } = await deviceAuth(idp);
      const done = await completeDeviceLogin({ verificationUri: da.verification_uri, userCode: da.user_code, username: 'bob', password: 'bob-password' });
      expect(done.ok).toBe(true);
      expect(done.html).toMatch(/You are signed in as <strong id="who">Bob Approver \(bob\)<\/strong>/);
      // The confirm page has two forms one above the other ("Yes, it matches" / "No, abort"): forms get a margin.
      expect(done.html).toMatch(/form\{margin:0 0 1rem\}/);
    } finally {
      await idp.close();
    }
  });

  test('with a store file, a login survives a restart (same key, same port); without one it does not', async () => {
    const { mkdtempSync, rmSync, statSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { generateSigningKey } = await import('../../src/idp/keys.js');
    const dir = mkdtempSync(join(tmpdir(), 'guard-aws-idp-store-'));
    const storeFile = join(dir, 'logins.json');
    const signingKeys = [await generateSigningKey('RS256')];
    try {
      const first = await startIdp({ storeFile, signingKeys });
      const t = await userToken(first, 'alice');
      await first.close();
      expect(statSync(storeFile).mode & 0o777).toBe(0o600);

      const second = await startIdp({ storeFile, signingKeys, port: first.port });
      const r = await token(second, { grant_type: 'refresh_token', refresh_token: t.refreshToken!, resource: second.audience });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(decodeJwt(r.body.access_token)).toMatchObject({ sub: 'alice', groups: ['developers'] });
      // A revocation is kept too (RFC 7009): the revoked token must not come back from the file after a restart.
      const current = r.body.refresh_token ?? t.refreshToken!;
      const rev = await fetch(`${second.issuer}/token/revocation`, {
        method: 'POST',
        body: new URLSearchParams({ client_id: second.clientId, token: current, token_type_hint: 'refresh_token' }),
      });
      expect(rev.status).toBe(200);
      await second.close();
      const third = await startIdp({ storeFile, signingKeys, port: first.port });
      const revoked = await token(third, { grant_type: 'refresh_token', refresh_token: current, resource: third.audience });
      expect(revoked.body.error).toBe('invalid_grant');
      const older = await token(third, { grant_type: 'refresh_token', refresh_token: t.refreshToken!, resource: third.audience });
      expect(older.body.error).toBe('invalid_grant');
      await third.close();

      const forgetful = await startIdp({ signingKeys, port: first.port });
      const lost = await token(forgetful, { grant_type: 'refresh_token', refresh_token: t.refreshToken!, resource: forgetful.audience });
      expect(lost.body.error).toBe('invalid_grant');
      await forgetful.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
