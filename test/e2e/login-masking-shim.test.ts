import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeDeviceLogin } from '../helpers/device-login.js';
import { cli, plainAwsAt, startStack, type Stack } from './harness.js';
import { testClis } from '../helpers/aws.js';

/**
 * Issue 3, the rest of the end-to-end list: a device-flow login through the real broker and the HTML login form,
 * secrets masked in every output format (Secrets Manager, SSM SecureString, STS credentials), and the `aws` shim.
 */
let s: Stack;
let alice: string;

const SECRET = 'hunter2-e2e-correct-horse-battery';
const PARAM = 'ssm-e2e-value-7f3a9c1d';

beforeAll(async () => {
  s = await startStack();
  alice = await s.token('alice');
  expect(plainAwsAt(s, ['secretsmanager', 'create-secret', '--name', 'e2e/db', '--secret-string', SECRET]).status).toBe(0);
  expect(plainAwsAt(s, ['ssm', 'put-parameter', '--name', '/e2e/key', '--type', 'SecureString', '--value', PARAM]).status).toBe(0);
}, 120_000);
afterAll(async () => s?.close());

describe('login', () => {
  it('logs in with the device flow through the login form, then calls AWS with the stored login', async () => {
    const child = s.spawn(['login', '--no-browser'], {});
    let err = '';
    const codes = new Promise<{ uri: string; code: string }>((resolve) => {
      child.stderr!.on('data', (b: Buffer) => {
        err += b.toString();
        const uri = /open:\s+(\S+)/.exec(err)?.[1];
        const code = /code:\s+([A-Z0-9-]+)/.exec(err)?.[1];
        if (uri && code) resolve({ uri, code });
      });
    });
    const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    const { uri, code } = await codes;
    const done = await completeDeviceLogin({ verificationUri: uri, userCode: code, username: 'alice', password: 'alice-password' });
    expect(done.ok).toBe(true);
    expect(await exited, err).toBe(0);

    const who = await s.run(['whoami', '--json']);
    expect(who.status, who.stderr).toBe(0);
    expect(JSON.parse(who.stdout)).toMatchObject({ subject: 'alice', groups: ['developers'] });

    // No GUARD_AWS_TOKEN: the stored login is used.
    const r = await s.run(['sts', 'get-caller-identity', '--query', 'Arn', '--output', 'text']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/assumed-role\/dev\//);

    expect((await s.run(['logout'])).status).toBe(0);
    expect((await s.run(['sts', 'get-caller-identity'])).status).toBe(67);
  });
});

describe('masking', () => {
  const formats = ['json', 'text', 'table'];

  it('Secrets Manager secret values are masked in every output format; the rest is untouched', async () => {
    for (const output of formats) {
      const r = await s.run(['secretsmanager', 'get-secret-value', '--secret-id', 'e2e/db', '--output', output], { token: alice });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).not.toContain(SECRET);
      expect(r.stdout).toContain('e2e/db');
    }
  });

  it('decrypted SSM SecureString values are masked in every output format', async () => {
    for (const output of formats) {
      const r = await s.run(['ssm', 'get-parameter', '--name', '/e2e/key', '--with-decryption', '--output', output], { token: alice });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).not.toContain(PARAM);
      expect(r.stdout).toContain('/e2e/key');
    }
  });

  it('STS credentials are masked in every output format, and so are the guard’s own', async () => {
    for (const output of formats) {
      const r = await s.run(
        ['sts', 'assume-role', '--role-arn', 'arn:aws:iam::123456789012:role/other', '--role-session-name', 'e2e-session', '--output', output],
        { token: alice },
      );
      expect(r.status, r.stderr + r.stdout).toBe(0);
      // moto's secret keys are 40 characters of base64; session tokens are long. Neither may appear.
      expect(r.stdout).not.toMatch(/[A-Za-z0-9/+]{40}/);
      expect(r.stdout).toMatch(/ASIA|AKIA|AccessKeyId/);
    }
  });

  it('on AWS CLI v2 as well, including yaml: the in-CLI plugin loads for a v2 that is a Python script', async () => {
    // Debian's v2 starts with "#!…python": only `aws --version` tells it is v2, and only then does the sealed
    // config point v2's cli_legacy_plugin_path at the plugin. The SSM value is masked by that plugin alone.
    const v2 = testClis().find((c) => c.major === 2);
    if (!v2) return;
    for (const output of ['json', 'text', 'table', 'yaml']) {
      for (const [args, secret] of [
        [['secretsmanager', 'get-secret-value', '--secret-id', 'e2e/db'], SECRET],
        [['ssm', 'get-parameter', '--name', '/e2e/key', '--with-decryption'], PARAM],
      ] as const) {
        const r = await s.run([...args, '--output', output], { token: alice, env: { GUARD_AWS_AWS_BIN: v2.path } });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout, output).not.toContain(secret);
        expect(r.stdout, output).toContain('<masked>');
      }
    }
  });

  it('masking rules from the broker’s policy files apply too', async () => {
    expect(
      plainAwsAt(s, ['secretsmanager', 'create-secret', '--name', 'e2e/note', '--description', 'e2e-token-0a1b2c3d', '--secret-string', 'x']).status,
    ).toBe(0);
    const r = await s.run(['secretsmanager', 'describe-secret', '--secret-id', 'e2e/note'], { token: alice });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('e2e-token-0a1b2c3d');
  });
});

describe('shim', () => {
  it('with the shim first on PATH, typing `aws` goes through the guard (and never loops)', async () => {
    const dir = join(s.dir, 'shim-bin');
    const inst = await s.run(['shim', 'install', '--dir', dir]);
    expect(inst.status, inst.stderr).toBe(0);
    const shim = join(dir, 'aws');
    expect(readFileSync(shim, 'utf8')).toContain(cli);
    const path = `${dir}:${process.env.PATH}`;
    const { spawn } = await import('node:child_process');
    const runShim = (args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const c = spawn('aws', args, { env: { ...s.env(alice), PATH: path }, cwd: s.dir });
        let out = '';
        let err = '';
        c.stdout.on('data', (b: Buffer) => (out += b));
        c.stderr.on('data', (b: Buffer) => (err += b));
        c.on('close', (status) => resolve({ status, stdout: out, stderr: err }));
      });
    // Allowed through the guard: the identity is the broker's scoped session, not any local credentials.
    const ok = await runShim(['sts', 'get-caller-identity', '--query', 'Arn', '--output', 'text']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/assumed-role\/dev\//);
    // Denied through the guard.
    const denied = await runShim(['iam', 'create-user', '--user-name', 'x']);
    expect(denied.status).toBe(77);
  });

  it('refuses to start when its own runner started it (a shim found as the real aws)', async () => {
    const dir = join(s.dir, 'loop-bin');
    mkdirSync(dir, { recursive: true });
    // Pretend to be the real aws, but call guard-aws again: the runner must stop the loop.
    writeFileSync(join(dir, 'aws'), `#!/bin/sh\nexec "${process.execPath}" "${cli}" -- "$@"\n`);
    chmodSync(join(dir, 'aws'), 0o755);
    const r = await s.run(['sts', 'get-caller-identity'], { token: alice, env: { GUARD_AWS_AWS_BIN: join(dir, 'aws') } });
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
  });
});
