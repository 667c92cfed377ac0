import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from './harness.js';

/**
 * `guard-aws dev --start-moto` as a newcomer runs it (the README's first command, minus the install): one process
 * with the identity provider, the broker, SQLite and a moto_server child. A CI-style client gets a workload
 * token with the printed client secret file and makes an allowed and a denied call; SIGTERM stops everything.
 */
const dir = mkdtempSync(join(tmpdir(), 'guard-aws-dev-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [cli, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (b: Buffer) => (out += b));
    c.stderr.on('data', (b: Buffer) => (err += b));
    c.on('close', (status) => resolve({ status, stdout: out, stderr: err }));
  });
}

describe('guard-aws dev', () => {
  it('starts everything, serves a CI client, and stops on SIGTERM', async () => {
    const env = { PATH: process.env.PATH, HOME: join(dir, 'home'), CI: 'true' };
    const dev = spawn(process.execPath, [cli, 'dev', '--start-moto', '--port', '0', '--idp-port', '0', '--data-dir', join(dir, 'data')], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    const ready = new Promise<string>((resolve, reject) => {
      dev.stderr.on('data', (b: Buffer) => {
        err += b.toString();
        if (/export GUARD_AWS_BROKER=\S+/.test(err) && /secret in \S+/.test(err)) resolve(err);
      });
      dev.on('close', (code) => reject(new Error(`dev exited ${code}: ${err}`)));
    });
    const text = await ready;
    const broker = /export GUARD_AWS_BROKER=(\S+)/.exec(text)![1]!;
    const secretFile = /secret in (\S+)/.exec(text)![1]!;
    const tokenEndpoint = /-d resource=\S+ (\S+)/.exec(text)![1]!;
    expect(statSync(secretFile).mode & 0o777).toBe(0o600);
    // The demo passwords are printed on purpose; the client secret is not.
    const secret = readFileSync(secretFile, 'utf8').trim();
    expect(text).not.toContain(secret);

    const res = await fetch(tokenEndpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`guard-aws-ci:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&resource=urn%3Aguard-aws%3Abroker',
    });
    const { access_token: token } = (await res.json()) as { access_token: string };
    expect(token).toBeTruthy();

    const clientEnv = { ...env, GUARD_AWS_BROKER: broker, GUARD_AWS_TOKEN: token, XDG_STATE_HOME: join(dir, 'state'), XDG_CACHE_HOME: join(dir, 'cache') };
    const ok = await run(['sts', 'get-caller-identity', '--query', 'Arn', '--output', 'text'], clientEnv);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/assumed-role\/guard-aws-dev\//);
    const denied = await run(['iam', 'create-user', '--user-name', 'x'], clientEnv);
    expect(denied.status).toBe(77);

    const exited = new Promise<number | null>((r) => dev.on('close', (c) => r(c)));
    dev.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 120_000);
});
