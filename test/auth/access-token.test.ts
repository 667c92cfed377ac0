import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { getAccessToken } from '../../src/auth/access-token.js';
import { fetchBrokerConfig } from '../../src/auth/broker-config.js';
import { FileTokenStore } from '../../src/auth/token-store.js';
import { startIdp, userToken, workloadToken, type StartedIdp } from '../helpers/idp.js';
import { toStoredLogin } from '../../src/auth/login.js';
import { systemClock } from '../../src/auth/clock.js';
import { decodeJwt } from 'jose';
import { brokerConfigFor, startConfigServer, type FakeBroker } from './config-server.js';
import { rejection } from '../helpers/rejection.js';

const unsigned = async (claims: Record<string, unknown>) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('x'.repeat(32)));

describe('getAccessToken sources (never prompting)', () => {
  let idp: StartedIdp;
  let broker: FakeBroker;
  let dir: string;
  let store: FileTokenStore;
  let ci: string;
  beforeAll(async () => {
    idp = await startIdp();
    broker = await startConfigServer(brokerConfigFor(idp));
    dir = await mkdtemp(join(tmpdir(), 'guard-aws-at-'));
    store = new FileTokenStore(join(dir, 'tokens'));
    ci = await workloadToken(idp);
  });
  afterAll(async () => {
    await broker.close();
    await idp.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('GUARD_AWS_TOKEN comes first', async () => {
    const file = join(dir, 'tok');
    await writeFile(file, 'ignored');
    const t = await getAccessToken({ env: { GUARD_AWS_TOKEN: ci, GUARD_AWS_TOKEN_FILE: file }, brokerUrl: broker.url, store });
    expect(t).toMatchObject({ token: ci, source: 'GUARD_AWS_TOKEN', subject: 'guard-aws-ci', groups: ['ci'] });
  });

  test('GUARD_AWS_TOKEN_FILE is read (trimmed) each time; a missing or empty file is a clear error', async () => {
    const file = join(dir, 'token-file');
    await writeFile(file, `${ci}\n`);
    expect(await getAccessToken({ env: { GUARD_AWS_TOKEN_FILE: file }, store })).toMatchObject({ token: ci, source: 'GUARD_AWS_TOKEN_FILE' });
    const rotated = await workloadToken(idp);
    await writeFile(file, rotated);
    expect((await getAccessToken({ env: { GUARD_AWS_TOKEN_FILE: file }, store })).token).toBe(rotated);
    const missing = await rejection(getAccessToken({ env: { GUARD_AWS_TOKEN_FILE: join(dir, 'nope') }, store }));
    expect(missing).toMatchObject({ code: 'auth_required' });
    expect(missing.message).toBe(`GUARD_AWS_TOKEN_FILE=${join(dir, 'nope')}: cannot read it (ENOENT)`);
    await writeFile(file, ' \n');
    expect((await rejection(getAccessToken({ env: { GUARD_AWS_TOKEN_FILE: file }, store }))).message).toContain('empty');
  });

  test('an expired workload token fails early with auth_expired and without echoing it', async () => {
    const old = await unsigned({ sub: 'ci', exp: Math.floor(Date.now() / 1000) - 10 });
    const e = await rejection(getAccessToken({ env: { GUARD_AWS_TOKEN: old }, store }));
    expect(e.code).toBe('auth_expired');
    expect(e.message).not.toContain(old.split('.')[1]!);
  });

  // A small real HTTP server that behaves like the GitHub Actions runner's ID-token endpoint as documented
  // (GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=…, bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN, answers {"value": JWT}).
  // The real endpoint only exists inside a GitHub-hosted job.
  test('GitHub Actions: asks the runner endpoint for a token with the broker audience', async () => {
    const seen: { auth: string | undefined; audience: string | null; apiVersion: string | null }[] = [];
    const gh = createServer((req, res) => {
      const u = new URL(req.url!, 'http://x');
      seen.push({ auth: req.headers.authorization, audience: u.searchParams.get('audience'), apiVersion: u.searchParams.get('api-version') });
      if (req.headers.authorization !== 'Bearer runner-request-token') {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ value: ci }));
    });
    await new Promise<void>((r) => gh.listen(0, '127.0.0.1', r));
    const ghUrl = `http://127.0.0.1:${(gh.address() as AddressInfo).port}/_apis/token?api-version=2.0`;
    try {
      const env = { ACTIONS_ID_TOKEN_REQUEST_URL: ghUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'runner-request-token' };
      const t = await getAccessToken({ env, brokerUrl: broker.url, store });
      expect(t).toMatchObject({ token: ci, source: 'github-actions', subject: 'guard-aws-ci' });
      expect(seen).toEqual([{ auth: 'Bearer runner-request-token', audience: idp.audience, apiVersion: '2.0' }]);

      const denied = await rejection(getAccessToken({ env: { ...env, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'wrong' }, brokerUrl: broker.url, store }));
      expect(denied.code).toBe('auth_required');
      expect(denied.message).toContain('id-token: write');
      expect(denied.message).not.toContain('wrong');

      const noBroker = await rejection(getAccessToken({ env, store }));
      expect(noBroker.message).toContain('GUARD_AWS_BROKER');
    } finally {
      gh.close();
      gh.closeAllConnections();
    }
  });

  test('no stored login → auth_required telling how to log in', async () => {
    const e = await rejection(getAccessToken({ env: {}, brokerUrl: broker.url, store }));
    expect(e.code).toBe('auth_required');
    expect(e.exitCode).toBe(67);
    expect(e.message).toBe(`not logged in to ${broker.url}; run \`guard-aws login --broker ${broker.url}\``);
    // No broker at all: the one "no broker" error every command gives (64), with the literal placeholder.
    const none = await rejection(getAccessToken({ env: {}, store }));
    expect([none.code, none.exitCode]).toEqual(['usage', 64]);
    expect(none.message).toContain('guard-aws login --broker URL');
  });
});

describe('silent refresh', () => {
  test('parallel callers with an expired login refresh once and all get a working token (no refresh-token reuse)', async () => {
    const idp = await startIdp();
    const dir = await mkdtemp(join(tmpdir(), 'guard-aws-par-'));
    try {
      const env = { GUARD_AWS_CONFIG_DIR: dir };
      const store = new FileTokenStore(join(dir, 'tokens'));
      const t = await userToken(idp, 'alice');
      const brokerUrl = 'http://127.0.0.1:1';
      const stored = toStoredLogin(brokerUrl, idp.issuer, idp.clientId, idp.audience, 'groups', { access_token: t.accessToken, ...(t.refreshToken ? { refresh_token: t.refreshToken } : {}), expires_in: 0 }, systemClock);
      await store.set(brokerUrl, JSON.stringify(stored));
      const results = await Promise.all(Array.from({ length: 5 }, () => getAccessToken({ env, brokerUrl, store })));
      const tokens = new Set(results.map((r) => r.token));
      expect(tokens.size).toBe(1);
      expect(results[0]!.token).not.toBe(t.accessToken);
      expect(decodeJwt(results[0]!.token)).toMatchObject({ sub: 'alice' });
      // The rotated refresh token still works afterwards: the IdP saw no reuse and did not revoke the grant.
      const later = { now: () => Date.now() + 3600_000, sleep: async () => {} };
      await expect(getAccessToken({ env, brokerUrl, store, clock: later })).resolves.toMatchObject({ source: 'login', subject: 'alice' });
    } finally {
      await idp.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('fetchBrokerConfig', () => {
  test('reads /v1/config; HTTP errors, bad bodies and a dead broker are distinct errors', async () => {
    const good = await startConfigServer({ issuer: 'https://idp', clientId: 'c', audience: 'urn:a', targets: [], version: '1' });
    expect(await fetchBrokerConfig(`${good.url}/`)).toMatchObject({ issuer: 'https://idp', clientId: 'c', audience: 'urn:a' });
    expect(good.requests[0]).toMatchObject({ method: 'GET', url: '/v1/config' });
    await good.close();
    const dead = await rejection(fetchBrokerConfig(good.url));
    expect(dead).toMatchObject({ code: 'broker_unreachable' });
    expect(dead.exitCode).toBe(69);

    const failing = await startConfigServer(() => ({ status: 503, body: '{}' }));
    expect((await rejection(fetchBrokerConfig(failing.url))).message).toContain('HTTP 503');
    await failing.close();
    const odd = await startConfigServer(() => ({ status: 200, body: '{"issuer": 1}' }));
    const e = await rejection(fetchBrokerConfig(odd.url));
    expect(e.code).toBe('config_invalid');
    expect(e.message).toContain('field issuer');
    await odd.close();
  });
});
