import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as client from 'openid-client';
import { decodeJwt } from 'jose';
import { pollDeviceToken, type DeviceAuthorization } from '../../src/auth/device-flow.js';
import { openIdpClient } from '../../src/auth/oidc.js';
import { login } from '../../src/auth/login.js';
import { getAccessToken } from '../../src/auth/access-token.js';
import { logout } from '../../src/auth/logout.js';
import { whoami } from '../../src/auth/whoami.js';
import { FileTokenStore } from '../../src/auth/token-store.js';
import { readClientConfig, resolveBrokerUrl } from '../../src/config/client-config.js';
import type { Clock } from '../../src/auth/clock.js';
import { RecordingHost } from '../helpers/recording-host.js';
import { startIdp, type StartedIdp } from '../helpers/idp.js';
import { completeDeviceLogin } from '../helpers/device-login.js';
import { brokerConfigFor, startConfigServer, type FakeBroker } from './config-server.js';
import { rejection } from '../helpers/rejection.js';

// The device flow runs against the real embedded IdP (oidc-provider) over HTTP. The clock is faked where a test
// needs to observe or skip waits; the IdP itself always runs on real time.

/** A clock whose sleeps return at once, advance fake time, and let a test act at the n-th wait. */
function fakeClock(onSleep: (n: number, ms: number) => Promise<void> | void = () => {}, start = Date.now()) {
  const sleeps: number[] = [];
  let now = start;
  const clock: Clock = {
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
      await onSleep(sleeps.length, ms);
    },
  };
  return { clock, sleeps, advance: (ms: number) => (now += ms) };
}

describe('RFC 8628 polling against the real IdP', () => {
  let idp: StartedIdp;
  let config: client.Configuration;
  beforeAll(async () => {
    idp = await startIdp();
    config = await openIdpClient(idp.issuer, idp.clientId, fetch, {});
  });
  afterAll(() => idp.close());

  const start = async () =>
    (await client.initiateDeviceAuthorization(config, { scope: 'openid offline_access', resource: idp.audience })) as DeviceAuthorization;

  test('waits `interval` before every poll and adds 5 s on each slow_down', async () => {
    const da = await start();
    expect(da.interval).toBe(5);
    const { clock, sleeps } = fakeClock(async (n) => {
      // Polls 1 and 2 come (in real time) back to back: pending, then slow_down from the IdP. Before poll 3 the
      // user completes the login in the browser.
      if (n === 3) await completeDeviceLogin({ verificationUri: da.verification_uri, userCode: da.user_code, username: 'alice', password: 'alice-password' });
    });
    const tokens = await pollDeviceToken(config, da, { clock, parameters: { resource: idp.audience } });
    expect(sleeps).toEqual([5000, 5000, 10000]);
    expect(decodeJwt(tokens.access_token)).toMatchObject({ sub: 'alice', aud: idp.audience });
  });

  test('stops on access_denied with a clear message', async () => {
    const da = await start();
    const { clock, sleeps } = fakeClock(async (n) => {
      if (n === 1) await completeDeviceLogin({ verificationUri: da.verification_uri, userCode: da.user_code, username: 'alice', password: 'x', abort: true });
    });
    const e = await rejection(pollDeviceToken(config, da, { clock, parameters: { resource: idp.audience } }));
    expect(e.code).toBe('auth_rejected');
    expect(e.message).toMatch(/denied/);
    expect(sleeps).toHaveLength(1);
  });

  test('stops when the code expires locally, without another poll', async () => {
    const da = await start();
    const polls: string[] = [];
    const counting = await openIdpClient(idp.issuer, idp.clientId, async (u, i) => {
      polls.push(String(u));
      return fetch(u, i);
    }, {});
    const { clock } = fakeClock();
    const e = await rejection(pollDeviceToken(counting, { ...da, expires_in: 12 }, { clock, parameters: { resource: idp.audience } }));
    expect(e.code).toBe('auth_expired');
    // Sleeps of 5 s, 5 s (+slow_down → 10 s): two polls fit in 12 s, the third wait crosses the deadline.
    expect(polls.filter((u) => u.endsWith('/token'))).toHaveLength(2);
  });
});

describe('expired_token from the IdP', () => {
  test('stops on expired_token', async () => {
    const idp = await startIdp({ deviceCodeTtlSec: 1, pollIntervalSec: 1 });
    try {
      const config = await openIdpClient(idp.issuer, idp.clientId, fetch, {});
      const da = (await client.initiateDeviceAuthorization(config, { scope: 'openid', resource: idp.audience })) as DeviceAuthorization;
      // Local time frozen (so the local deadline never fires); the real wait lets the IdP's code expire.
      const clock: Clock = { now: () => 0, sleep: (ms) => new Promise((r) => setTimeout(r, ms + 200)) };
      const e = await rejection(pollDeviceToken(config, { ...da, expires_in: 3600 }, { clock }));
      expect(e.code).toBe('auth_expired');
      expect(e.message).toContain('expired_token');
    } finally {
      await idp.close();
    }
  });
});

describe('login, stored token, refresh, logout (in process)', () => {
  let idp: StartedIdp;
  let broker: FakeBroker;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    idp = await startIdp({ pollIntervalSec: 1, accessTokenTtlSec: 300 });
    broker = await startConfigServer(brokerConfigFor(idp));
    dir = await mkdtemp(join(tmpdir(), 'guard-aws-auth-'));
    env = { GUARD_AWS_CONFIG_DIR: dir };
  });
  afterAll(async () => {
    await broker.close();
    await idp.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the whole lifecycle', async () => {
    const host = new RecordingHost(false);
    const store = new FileTokenStore(join(dir, 'tokens'));
    let opened = 0;
    const loggingIn = login({ brokerUrl: broker.url, host, env, store, openBrowser: async () => void opened++ });
    // Act as the person: read the URL and code from what guard-aws printed, then use the browser form.
    const printed = async () => {
      for (;;) {
        const text = host.stderr.join('\n');
        const code = /code: (\S+)/.exec(text)?.[1];
        const url = /open: (\S+)/.exec(text)?.[1];
        if (code && url) return { code, url };
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const { code, url } = await printed();
    expect(url).toBe(idp.verificationUri);
    const done = await completeDeviceLogin({ verificationUri: url, userCode: code, username: 'bob', password: 'bob-password' });
    expect(done.ok).toBe(true);
    const stored = await loggingIn;
    expect(stored).toMatchObject({ subject: 'bob', groups: ['approvers'], broker: broker.url, issuer: idp.issuer });
    // Not interactive: no browser was offered or opened.
    expect(opened).toBe(0);
    // The broker URL is remembered for later commands.
    expect(await readClientConfig(env)).toEqual({ broker: broker.url });
    expect(await resolveBrokerUrl(undefined, env)).toBe(broker.url);
    // Nothing secret reached the output.
    const out = [...host.stdout, ...host.stderr].join('\n');
    expect(out).not.toContain(stored.accessToken.slice(-20));
    expect(out).not.toContain(stored.refreshToken!.slice(-10));

    // The stored token is used as is while fresh…
    const t1 = await getAccessToken({ env, brokerUrl: broker.url, store });
    expect(t1).toMatchObject({ token: stored.accessToken, source: 'login', subject: 'bob' });
    const info = await whoami({ env, brokerUrl: broker.url, store });
    expect(info).toMatchObject({ subject: 'bob', groups: ['approvers'], broker: broker.url, source: 'login' });
    expect(info.keptIn).toContain(join(dir, 'tokens'));

    // …and refreshed silently once expired (clock moved past expiry).
    const later: Clock = { now: () => Date.now() + 10 * 60_000, sleep: async () => {} };
    const t2 = await getAccessToken({ env, brokerUrl: broker.url, store, clock: later });
    expect(t2.token).not.toBe(stored.accessToken);
    expect(decodeJwt(t2.token)).toMatchObject({ sub: 'bob', aud: idp.audience, groups: ['approvers'] });
    const t3 = await getAccessToken({ env, brokerUrl: broker.url, store });
    expect(t3.token).toBe(t2.token);

    // Logout revokes at the IdP and forgets.
    const out1 = await logout({ brokerUrl: broker.url, store, env, host });
    expect(out1).toMatchObject({ forgotten: true, revoked: true, subject: 'bob' });
    expect(await store.get(broker.url)).toBeUndefined();
    const e = await rejection(getAccessToken({ env, brokerUrl: broker.url, store }));
    expect(e.code).toBe('auth_required');
    expect(e.message).toContain(`guard-aws login --broker ${broker.url}`);
  });

  test('a revoked refresh token makes an expired login say how to log in again', async () => {
    const host = new RecordingHost(false);
    const store = new FileTokenStore(join(dir, 'tokens2'));
    const loggingIn = login({ brokerUrl: broker.url, host, env, store });
    for (;;) {
      const text = host.stderr.join('\n');
      const code = /code: (\S+)/.exec(text)?.[1];
      if (code) {
        await completeDeviceLogin({ verificationUri: idp.verificationUri, userCode: code, username: 'alice', password: 'alice-password' });
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const stored = await loggingIn;
    // Revoke behind guard-aws's back (as an admin would).
    const rev = await fetch(`${idp.issuer}/token/revocation`, { method: 'POST', body: new URLSearchParams({ client_id: idp.clientId, token: stored.refreshToken! }) });
    expect(rev.status).toBe(200);
    const later: Clock = { now: () => Date.now() + 10 * 60_000, sleep: async () => {} };
    const e = await rejection(getAccessToken({ env, brokerUrl: broker.url, store, clock: later }));
    expect(e.code).toBe('auth_required');
    expect(e.message).toMatch(/expired .*guard-aws login/);
    expect(await store.get(broker.url)).toBeUndefined();
  });

  test('on an interactive terminal the browser is offered, and opened on yes', async () => {
    const host = new RecordingHost(true);
    const asked: string[] = [];
    let codeSeen = '';
    (host as unknown as { prompt: (q: string) => Promise<string> }).prompt = async (q) => {
      asked.push(q);
      codeSeen = /code: (\S+)/.exec(host.stderr.join('\n'))?.[1] ?? '';
      return '';
    };
    const opened: string[] = [];
    const store = new FileTokenStore(join(dir, 'tokens3'));
    const p = login({
      brokerUrl: broker.url,
      host,
      env,
      store,
      openBrowser: async (u) => {
        opened.push(u);
        // The "browser": completes the login from the complete URL it was given.
        await completeDeviceLogin({ verificationUri: u, userCode: codeSeen, username: 'carol', password: 'carol-password' });
      },
    });
    await expect(p).resolves.toMatchObject({ subject: 'carol' });
    expect(asked).toHaveLength(1);
    expect(opened[0]).toMatch(/\/device\?user_code=/);
  });

  test('never offers a browser on CI or with --no-browser', async () => {
    for (const [e, noBrowser] of [[{ ...env, CI: 'true' }, false], [env, true]] as const) {
      const host = new RecordingHost(true);
      let asked = 0;
      (host as unknown as { prompt: () => Promise<string> }).prompt = async () => {
        asked++;
        return 'y';
      };
      const store = new FileTokenStore(join(dir, 'tokens4'));
      const p = login({ brokerUrl: broker.url, host, env: e, store, noBrowser, openBrowser: async () => { throw new Error('must not open'); } });
      for (;;) {
        const code = /code: (\S+)/.exec(host.stderr.join('\n'))?.[1];
        if (code) {
          await completeDeviceLogin({ verificationUri: idp.verificationUri, userCode: code, username: 'alice', password: 'alice-password' });
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      await p;
      expect(asked).toBe(0);
    }
  });
});

describe('login failures', () => {
  test('broker unreachable → broker_unreachable; IdP unreachable → idp_unreachable', async () => {
    const host = new RecordingHost(false);
    const store = new FileTokenStore(join(tmpdir(), 'never-used'));
    const idp = await startIdp();
    const broker = await startConfigServer(brokerConfigFor(idp));
    const brokerUrl = broker.url;
    await broker.close();
    expect((await rejection(login({ brokerUrl, host, env: {}, store }))).code).toBe('broker_unreachable');

    const broker2 = await startConfigServer(brokerConfigFor(idp));
    await idp.close();
    try {
      expect((await rejection(login({ brokerUrl: broker2.url, host, env: {}, store }))).code).toBe('idp_unreachable');
    } finally {
      await broker2.close();
    }
  });

  test('a non-loopback plain-http issuer is refused before any request', async () => {
    let requests = 0;
    const broker = await startConfigServer({ issuer: 'http://idp.example.test', clientId: 'c', audience: 'urn:x', targets: [], version: 't' });
    try {
      const e = await rejection(
        login({ brokerUrl: broker.url, host: new RecordingHost(false), env: {}, store: new FileTokenStore('/nonexistent'), fetch: async (u, i) => {
          if (!String(u).includes('127.0.0.1')) requests++;
          return fetch(u, i);
        } }),
      );
      expect(e.code).toBe('config_invalid');
      expect(e.message).toContain('must use https');
      expect(requests).toBe(0);
    } finally {
      await broker.close();
    }
  });
});

describe('other signing algorithms', () => {
  test('login works against an IdP signing with ES256 (ID token alg taken from the IdP metadata)', async () => {
    const { generateSigningKey } = await import('../../src/idp/keys.js');
    const idp = await startIdp({ signingKeys: [await generateSigningKey('ES256')] });
    try {
      const config = await openIdpClient(idp.issuer, idp.clientId, fetch, {});
      const da = (await client.initiateDeviceAuthorization(config, { scope: 'openid offline_access', resource: idp.audience })) as DeviceAuthorization;
      const { clock } = fakeClock(async (n) => {
        if (n === 1) await completeDeviceLogin({ verificationUri: da.verification_uri, userCode: da.user_code, username: 'carol', password: 'carol-password' });
      });
      const tokens = await pollDeviceToken(config, da, { clock, parameters: { resource: idp.audience } });
      expect(tokens.id_token).toBeTruthy();
      expect(decodeJwt(tokens.access_token)).toMatchObject({ sub: 'carol' });
    } finally {
      await idp.close();
    }
  });
});
