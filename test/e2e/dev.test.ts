import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
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

  it('says moto keeps its data in memory only', () => {
    // The banner of the run above is not kept; describeEmbedded is what prints it.
    return import('../../src/dev/embedded.js').then(({ describeEmbedded }) => {
      const text = describeEmbedded(
        {
          brokerUrl: 'http://127.0.0.1:8740',
          issuer: 'http://127.0.0.1:8741',
          verificationUri: 'http://127.0.0.1:8741/device',
          awsEndpoint: 'http://127.0.0.1:5000',
          motoStarted: true,
          users: [],
          workload: { clientId: 'ci', clientSecret: 's', secretFile: '/x', tokenEndpoint: 'http://127.0.0.1:8741/token', audience: 'a' },
          close: async () => undefined,
        },
        { roleArn: 'arn:aws:iam::123456789012:role/r', region: 'us-east-1', policies: ['p.yaml'], dataDir: '/d' },
      );
      expect(text).toContain('moto keeps its data in memory');
      expect(text).toContain('export PATH="$PWD/bin:$PATH"');
    });
  });

  it('a port already in use is named with the option that changes it (exit 78), not an internal error', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const env = { PATH: process.env.PATH, HOME: join(dir, 'home'), CI: 'true' };
      const broker = await run(['dev', '--port', String(port), '--idp-port', '0', '--data-dir', join(dir, 'data-busy')], env);
      expect(broker.status, broker.stderr).toBe(78);
      expect(broker.stderr.trim()).toBe(
        `guard-aws: port ${port} on 127.0.0.1 is already in use (is another \`guard-aws dev\` running?); stop it, or pick another port with --port N (0 = any free port)`,
      );
      const idp = await run(['dev', '--port', '0', '--idp-port', String(port), '--data-dir', join(dir, 'data-busy')], env);
      expect(idp.status, idp.stderr).toBe(78);
      expect(idp.stderr).toContain('pick another port with --idp-port N');
      const bad = await run(['dev', '--port', 'abc'], env);
      expect(bad.status).toBe(64);
      expect(bad.stderr.trim()).toBe('guard-aws: --port: "abc" is not a port number (0–65535)');
    } finally {
      blocker.close();
    }
  }, 60_000);
});
