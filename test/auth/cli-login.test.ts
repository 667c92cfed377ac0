import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startIdp, type StartedIdp } from '../helpers/idp.js';
import { completeDeviceLogin } from '../helpers/device-login.js';
import { brokerConfigFor, startConfigServer, type FakeBroker } from './config-server.js';

// End to end through the built CLI (`node bin/guard-aws.js`, needs dist/): device-flow login against the real
// embedded IdP, completed concurrently through its HTML form over HTTP. The broker is not part of this test: a
// minimal real HTTP server serves only GET /v1/config, which is all login, whoami and logout need from it.
const repo = resolve(import.meta.dirname, '../..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv, onStderr?: (all: string) => void): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [join(repo, 'bin/guard-aws.js'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr);
    });
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

describe('guard-aws login / whoami / logout (built CLI)', () => {
  let idp: StartedIdp;
  let broker: FakeBroker;
  let home: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    expect(existsSync(join(repo, 'dist/cli/main.js')), 'dist/ is not built: run `npm run build`').toBe(true);
    idp = await startIdp({ pollIntervalSec: 1 });
    broker = await startConfigServer(brokerConfigFor(idp));
    home = await mkdtemp(join(tmpdir(), 'guard-aws-cli-'));
    // Built from scratch: no D-Bus session, so the token store falls back to the file store by itself.
    env = { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), CI: 'true' };
  });
  afterAll(async () => {
    await broker.close();
    await idp.close();
    await rm(home, { recursive: true, force: true });
  });

  test('login via the device flow, whoami shows the identity, logout forgets it', async () => {
    let started = false;
    let completion: Promise<unknown> | undefined;
    const login = await cli(['login', '--broker', broker.url, '--no-browser'], env, (err) => {
      const url = /open: (\S+)/.exec(err)?.[1];
      const code = /code: (\S+)/.exec(err)?.[1];
      if (!started && url && code) {
        started = true;
        completion = completeDeviceLogin({ verificationUri: url, userCode: code, username: 'alice', password: 'alice-password' });
      }
    });
    expect(await completion).toMatchObject({ ok: true });
    expect(login.code, login.stderr).toBe(0);
    expect(login.stderr).toContain(`open: ${idp.verificationUri}`);
    expect(login.stderr).toMatch(/code: [A-Z]{4}-[A-Z]{4}/);
    expect(login.stderr).toContain(`Logged in to ${broker.url} as alice (groups: developers)`);
    expect(login.stdout).toBe('');

    // The token went to a 0600 file under the XDG config dir (no keychain here), and nothing printed it.
    const tokenDir = join(home, '.config', 'guard-aws', 'tokens');
    expect(await readdir(tokenDir)).toHaveLength(1);
    expect(login.stderr).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}/);

    // whoami needs no flag: the broker was remembered at login.
    const who = await cli(['whoami', '--json'], env);
    expect(who.code, who.stderr).toBe(0);
    const info = JSON.parse(who.stdout);
    expect(info).toMatchObject({ subject: 'alice', groups: ['developers'], broker: broker.url, source: 'login' });
    expect(info.keptIn).toBe(`file ${tokenDir}`);
    expect(Date.parse(info.expiresAt)).toBeGreaterThan(Date.now());

    const text = await cli(['whoami'], env);
    expect(text.stdout).toContain('subject:  alice');
    expect(text.stdout).toContain('groups:   developers');

    const out = await cli(['logout'], env);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toContain('revoked at the identity provider');
    expect(await readdir(tokenDir)).toHaveLength(0);

    // --json for scripts and agents: a second logout has nothing left to forget.
    const again = await cli(['logout', '--json'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ forgotten: false, revoked: false });

    const after = await cli(['whoami'], env);
    expect(after.code).toBe(67);
    expect(after.stderr.trim().split('\n')).toHaveLength(1);
    // The hint names the broker it knows, so it can be copied as is.
    expect(after.stderr).toMatch(/run `guard-aws login --broker http:\/\/127\.0\.0\.1:\d+`/);
  });

  test('a workload token from the environment needs no login', async () => {
    const { workloadToken } = await import('../helpers/idp.js');
    const who = await cli(['whoami', '--json'], { ...env, GUARD_AWS_TOKEN: await workloadToken(idp) });
    expect(who.code, who.stderr).toBe(0);
    expect(JSON.parse(who.stdout)).toMatchObject({ subject: 'guard-aws-ci', groups: ['ci'], source: 'GUARD_AWS_TOKEN', keptIn: 'environment variable GUARD_AWS_TOKEN' });
  });

  test('login with the broker down exits 69; without any broker exits 64', async () => {
    const deadBroker = await startConfigServer(brokerConfigFor(idp));
    const url = deadBroker.url;
    await deadBroker.close();
    const r = await cli(['login', '--broker', url], { ...env, XDG_CONFIG_HOME: join(home, 'other') });
    expect(r.code).toBe(69);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const none = await cli(['login'], { ...env, XDG_CONFIG_HOME: join(home, 'other') });
    expect(none.code).toBe(64);
  });
});
