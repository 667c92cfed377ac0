import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createHmac } from 'node:crypto';
import { SignJWT, decodeJwt, exportSPKI, importJWK, type JWK } from 'jose';
import { createTokenVerifier } from '../../src/auth/verify.js';
import { generateSigningKey, type SigningJwk } from '../../src/idp/keys.js';
import { startIdp, userToken, workloadToken, type StartedIdp } from '../helpers/idp.js';
import { rejection } from '../helpers/rejection.js';

// Tokens come from the real embedded IdP (oidc-provider over HTTP) wherever it can produce them. Where a test needs a
// token the IdP would never issue (nbf in the future, string groups), it is signed with that same IdP's private key,
// so only the one property under test differs.

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');

describe('createTokenVerifier against the embedded IdP', () => {
  let key: SigningJwk;
  let idp: StartedIdp;
  let alice: string;
  beforeAll(async () => {
    key = await generateSigningKey('RS256');
    idp = await startIdp({ signingKeys: [key] });
    alice = (await userToken(idp, 'alice')).accessToken;
  });
  afterAll(() => idp.close());

  const verifier = (extra: Partial<Parameters<typeof createTokenVerifier>[0]> = {}) =>
    createTokenVerifier({ issuer: idp.issuer, audience: idp.audience, ...extra });

  const signWithIdpKey = async (claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'at+jwt', ...header })
      .sign(await importJWK(key as JWK, 'RS256'));

  test('a valid user token is accepted; subject, groups and name are mapped (JWKS found by discovery)', async () => {
    const caller = await verifier()(alice);
    expect(caller).toMatchObject({ subject: 'alice', groups: ['developers'], name: 'Alice Developer', clientId: idp.clientId });
    expect(caller.expiresAt!.getTime()).toBeGreaterThan(Date.now());
  });

  test('a valid workload token is accepted', async () => {
    const caller = await verifier({ jwksUri: idp.jwksUri })(await workloadToken(idp));
    expect(caller).toMatchObject({ subject: 'guard-aws-ci', groups: ['ci'] });
  });

  // A multi-tenant issuer (GitHub Actions) signs tokens for anyone: requiredClaims keeps other tenants out.
  test('requiredClaims: only tokens whose claims match the allowed values get in', async () => {
    const now = Math.floor(Date.now() / 1000);
    const gh = (claims: Record<string, unknown>) =>
      signWithIdpKey({ iss: idp.issuer, aud: idp.audience, iat: now, exp: now + 300, ...claims }, { typ: 'JWT' });
    const v = verifier({ jwksUri: idp.jwksUri, requiredClaims: { repository_owner: ['acme'], sub: ['repo:acme/*'] } });
    await expect(v(await gh({ sub: 'repo:acme/app:ref:refs/heads/main', repository_owner: 'acme' }))).resolves.toMatchObject({
      subject: 'repo:acme/app:ref:refs/heads/main',
    });
    for (const claims of [
      { sub: 'repo:evil/app:ref:refs/heads/main', repository_owner: 'evil' },
      { sub: 'repo:acme/app:ref:refs/heads/main', repository_owner: 'evil' }, // one claim right is not enough
      { sub: 'repo:acme/app:ref:refs/heads/main' }, // a missing claim is a mismatch
      { sub: 'repo:acme/app', repository_owner: ['acme'] }, // not a string
    ]) {
      const e = await rejection(v(await gh(claims)));
      expect(e.code).toBe('auth_rejected');
      expect(e.message).toMatch(/claim (repository_owner|sub) is not one the broker accepts/);
    }
    // Without the option, such a token is accepted as any other (hence: configure it for a shared issuer).
    await expect(verifier({ jwksUri: idp.jwksUri })(await gh({ sub: 'repo:evil/x', repository_owner: 'evil' }))).resolves.toBeDefined();
  });

  test('a forged payload with the original signature is rejected', async () => {
    const [h, , s] = alice.split('.');
    const forged = `${h}.${b64(JSON.stringify({ ...decodeJwt(alice), sub: 'bob', groups: ['approvers'] }))}.${s}`;
    const e = await rejection(verifier()(forged));
    expect(e.code).toBe('auth_rejected');
    expect(e.message).toBe('token rejected: signature does not verify');
    expect(e.message).not.toContain(s!);
  });

  test('a token from another issuer is rejected, even one signed with the same key', async () => {
    const other = await startIdp({ signingKeys: [key] });
    try {
      const t = (await userToken(other, 'alice')).accessToken;
      const e = await rejection(verifier({ jwksUri: idp.jwksUri })(t));
      expect(e.message).toBe(`token rejected: issuer is not ${idp.issuer}`);
    } finally {
      await other.close();
    }
  });

  test('a token for another audience is rejected', async () => {
    const e = await rejection(createTokenVerifier({ issuer: idp.issuer, audience: 'urn:another:service' })(alice));
    expect(e.code).toBe('auth_rejected');
    expect(e.message).toBe('token rejected: audience is not urn:another:service');
  });

  test('expiry is enforced with the configured clock tolerance', async () => {
    const exp = decodeJwt(alice).exp! * 1000;
    await expect(verifier({ currentDate: () => new Date(exp + 20_000) })(alice)).resolves.toMatchObject({ subject: 'alice' });
    const e = await rejection(verifier({ currentDate: () => new Date(exp + 40_000) })(alice));
    expect(e.message).toBe('token rejected: token expired');
    const strict = await rejection(verifier({ clockToleranceSec: 0, currentDate: () => new Date(exp + 1_000) })(alice));
    expect(strict.message).toBe('token rejected: token expired');
  });

  test('a not-yet-valid token is rejected', async () => {
    const now = Math.floor(Date.now() / 1000);
    const t = await signWithIdpKey({ iss: idp.issuer, aud: idp.audience, sub: 'alice', exp: now + 3600, nbf: now + 600 });
    const e = await rejection(verifier()(t));
    expect(e.message).toBe('token rejected: token not yet valid');
    // ...and accepted once its time has come.
    await expect(verifier({ currentDate: () => new Date((now + 601) * 1000) })(t)).resolves.toMatchObject({ subject: 'alice' });
  });

  // issue 12 item 8: jose checks iat only when maxTokenAge is set, so a token "issued" a day ahead was accepted.
  test('a token issued in the future (beyond the clock skew) is rejected; within the skew it is accepted', async () => {
    const now = Math.floor(Date.now() / 1000);
    const ahead = await signWithIdpKey({ iss: idp.issuer, aud: idp.audience, sub: 'alice', iat: now + 86_400, exp: now + 90_000 });
    const e = await rejection(verifier({ jwksUri: idp.jwksUri })(ahead));
    expect(e.code).toBe('auth_rejected');
    expect(e.message).toBe('token rejected: token issued in the future');
    const skewed = await signWithIdpKey({ iss: idp.issuer, aud: idp.audience, sub: 'alice', iat: now + 20, exp: now + 3600 });
    await expect(verifier({ jwksUri: idp.jwksUri })(skewed)).resolves.toMatchObject({ subject: 'alice' });
    const bad = await signWithIdpKey({ iss: idp.issuer, aud: idp.audience, sub: 'alice', iat: 'yesterday', exp: now + 3600 });
    expect((await rejection(verifier({ jwksUri: idp.jwksUri })(bad))).code).toBe('auth_rejected');
  });

  test('alg "none" is rejected', async () => {
    const payload = b64(JSON.stringify(decodeJwt(alice)));
    for (const alg of ['none', 'None', 'NONE']) {
      const unsigned = `${b64(JSON.stringify({ alg, typ: 'JWT' }))}.${payload}.`;
      const e = await rejection(verifier()(unsigned));
      expect(e.code).toBe('auth_rejected');
    }
  });

  test('HS256 signed with the public key as the HMAC secret is rejected (algorithm confusion)', async () => {
    const publicPem = await exportSPKI((await importJWK({ kty: key.kty, n: key.n, e: key.e } as JWK, 'RS256', { extractable: true })) as CryptoKey);
    const header = b64(JSON.stringify({ alg: 'HS256', kid: key.kid, typ: 'at+jwt' }));
    const payload = b64(JSON.stringify({ ...decodeJwt(alice), sub: 'bob', groups: ['approvers'] }));
    for (const secret of [publicPem, JSON.stringify({ kty: key.kty, n: key.n, e: key.e }), key.n!]) {
      const sig = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
      const e = await rejection(verifier()(`${header}.${payload}.${sig}`));
      expect(e.message).toBe('token rejected: signing algorithm not allowed');
    }
  });

  test('an algorithm outside a narrower allow-list is rejected', async () => {
    const e = await rejection(verifier({ algorithms: ['ES256'] })(alice));
    expect(e.message).toBe('token rejected: signing algorithm not allowed');
  });

  test('none and HS* can never be configured', () => {
    for (const alg of ['none', 'HS256', 'HS512']) {
      expect(() => verifier({ algorithms: ['RS256', alg] })).toThrow(/never allowed/);
    }
  });

  test('a required typ is enforced (RFC 9068 at+jwt)', async () => {
    await expect(verifier({ requiredTyp: 'at+jwt' })(alice)).resolves.toMatchObject({ subject: 'alice' });
    const e = await rejection(verifier({ requiredTyp: 'secevent+jwt' })(alice));
    expect(e.code).toBe('auth_rejected');
  });

  test('groups from a configurable claim, as a list, a space/comma string or a nested path', async () => {
    const now = Math.floor(Date.now() / 1000);
    const base = { iss: idp.issuer, aud: idp.audience, sub: 'svc', exp: now + 600 };
    const s = await signWithIdpKey({ ...base, roles: 'ops, approvers  readers' });
    expect((await verifier({ groupsClaim: 'roles' })(s)).groups).toEqual(['ops', 'approvers', 'readers']);
    const n = await signWithIdpKey({ ...base, realm_access: { roles: ['a', 'b'] } });
    expect((await verifier({ groupsClaim: 'realm_access.roles' })(n)).groups).toEqual(['a', 'b']);
    const none = await signWithIdpKey(base);
    expect((await verifier()(none)).groups).toEqual([]);
    const bad = await signWithIdpKey({ ...base, groups: [1, 2] });
    expect((await rejection(verifier()(bad))).code).toBe('auth_rejected');
  });

  test('a token without a subject or an expiry is rejected', async () => {
    const now = Math.floor(Date.now() / 1000);
    const noSub = await signWithIdpKey({ iss: idp.issuer, aud: idp.audience, exp: now + 600 });
    expect((await rejection(verifier()(noSub))).code).toBe('auth_rejected');
    const noExp = await signWithIdpKey({ iss: idp.issuer, aud: idp.audience, sub: 'alice' });
    expect((await rejection(verifier()(noExp))).code).toBe('auth_rejected');
  });

  test('garbage is rejected without echoing it', async () => {
    for (const t of ['', 'abc', 'a.b', 'x'.repeat(20_000), `${alice} `, 'Bearer ' + alice]) {
      const e = await rejection(verifier()(t));
      expect(e.code).toBe('auth_rejected');
      expect(e.message).not.toContain(alice.slice(0, 20));
    }
  });
});

describe('key rotation', () => {
  test('an unknown kid refetches the JWKS; a retired key no longer verifies', async () => {
    const k1 = await generateSigningKey('RS256');
    const k2 = await generateSigningKey('ES256');
    const first = await startIdp({ signingKeys: [k1] });
    const { port, issuer, audience } = first;
    let jwksFetches = 0;
    const countingFetch: typeof fetch = async (input, init) => {
      if (String(input).endsWith('/jwks')) jwksFetches++;
      return fetch(input, init);
    };
    const verify = createTokenVerifier({ issuer, audience, fetch: countingFetch, jwksCooldownMs: 0 });
    const old = (await userToken(first, 'alice')).accessToken;
    await expect(verify(old)).resolves.toMatchObject({ subject: 'alice' });
    expect(jwksFetches).toBe(1);
    await first.close();

    // The IdP restarts on the same issuer with a new key (ES256) and the old one retired.
    const second = await startIdp({ port, signingKeys: [k2] });
    try {
      const fresh = (await userToken(second, 'bob')).accessToken;
      await expect(verify(fresh)).resolves.toMatchObject({ subject: 'bob', groups: ['approvers'] });
      expect(jwksFetches).toBe(2);
      const e = await rejection(verify(old));
      expect(e.message).toBe("token rejected: no matching key in the issuer's key set");
    } finally {
      await second.close();
    }
  });

  test('refetches on unknown kids are limited by the cooldown', async () => {
    const k = await generateSigningKey('RS256');
    const idp = await startIdp({ signingKeys: [k] });
    try {
      let jwksFetches = 0;
      const countingFetch: typeof fetch = async (input, init) => {
        if (String(input).endsWith('/jwks')) jwksFetches++;
        return fetch(input, init);
      };
      const verify = createTokenVerifier({ issuer: idp.issuer, audience: idp.audience, fetch: countingFetch });
      const good = (await userToken(idp, 'alice')).accessToken;
      await verify(good);
      const stranger = await generateSigningKey('RS256');
      for (let i = 0; i < 5; i++) {
        const t = await new SignJWT({ iss: idp.issuer, aud: idp.audience, sub: 'x', exp: Math.floor(Date.now() / 1000) + 60 })
          .setProtectedHeader({ alg: 'RS256', kid: `${stranger.kid}-${i}` })
          .sign(await importJWK(stranger as JWK, 'RS256'));
        expect((await rejection(verify(t))).code).toBe('auth_rejected');
      }
      expect(jwksFetches).toBe(1);
    } finally {
      await idp.close();
    }
  });

  test('an unreachable issuer is reported as such, not as a bad token', async () => {
    const idp = await startIdp();
    const { issuer, audience } = idp;
    const t = (await userToken(idp, 'alice')).accessToken;
    await idp.close();
    const e = await rejection(createTokenVerifier({ issuer, audience })(t));
    expect(e.code).toBe('idp_unreachable');
  });
});
