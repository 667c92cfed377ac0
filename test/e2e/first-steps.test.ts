import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeDeviceLogin } from '../helpers/device-login.js';
import { repoRoot } from './harness.js';

/**
 * The README's "First steps", as a newcomer types them: `guard-aws dev` running (what `npm run dev` starts after
 * its install and build), then the README's first code block run line by line, verbatim, in a fresh bash whose
 * PATH does not have guard-aws on it — only the README's own `export PATH=…` line puts it there. The login is
 * completed the way a person would, through the login form over HTTP, as alice.
 *
 * The README names fixed ports (8740, 8741); `guard-aws dev` uses them by default. If something else holds them,
 * this test fails saying so (dev's own message names the port and the option).
 */
const dir = mkdtempSync(join(tmpdir(), 'guard-aws-first-steps-'));
let dev: ChildProcess | undefined;
let banner = '';

function readmeBlock(): string[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## First steps'));
  const lines = section.split('\n');
  const start = lines.findIndex((l) => l.startsWith('    '));
  const block: string[] = [];
  for (const l of lines.slice(start)) {
    if (l.startsWith('    ')) block.push(l.slice(4));
    else if (l.trim() === '') block.push('');
    else break;
  }
  return block.filter((l) => l.trim() !== '');
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

beforeAll(async () => {
  for (const p of [8740, 8741]) if (!(await portFree(p))) throw new Error(`port ${p} is taken; the README's walkthrough needs it (stop the other guard-aws dev)`);
  dev = spawn(process.execPath, [join(repoRoot, 'bin', 'guard-aws.js'), 'dev', '--start-moto'], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: join(dir, 'dev-home') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    dev!.stderr!.on('data', (b: Buffer) => {
      banner += b.toString();
      if (banner.includes('In another terminal:') && banner.includes('denied (exit 77)')) resolve();
    });
    dev!.on('close', (code) => reject(new Error(`guard-aws dev exited ${code}: ${banner}`)));
  });
}, 60_000);

afterAll(async () => {
  if (dev && dev.exitCode === null) {
    const closed = new Promise((r) => dev!.on('close', r));
    dev.kill('SIGTERM');
    await closed;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("README's First steps, verbatim", () => {
  it('runs in a fresh shell with only the README PATH line', async () => {
    const block = readmeBlock();
    expect(block[0]).toBe('export PATH="$PWD/bin:$PATH"                 # guard-aws (optionally: guard-aws shim install, see below)');
    expect(block.some((l) => l.startsWith('guard-aws login'))).toBe(true);

    // A shell without guard-aws: the inherited PATH minus any directory that has it.
    const path = (process.env.PATH ?? '')
      .split(delimiter)
      .filter((p) => spawnSync('test', ['-x', join(p, 'guard-aws')]).status !== 0)
      .join(delimiter);
    const env = { PATH: path, HOME: join(dir, 'home'), LANG: 'C.UTF-8' };
    expect(spawnSync('bash', ['-c', 'command -v guard-aws'], { env, cwd: repoRoot }).status).not.toBe(0);

    // Each README line verbatim, followed by a marker carrying its exit status.
    const script = join(dir, 'first-steps.sh');
    writeFileSync(script, block.map((l, i) => `${l}\necho "@@ ${i} rc=$?" >&2\n`).join(''));
    const shell = spawn('bash', [script], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    shell.stdout.on('data', (b: Buffer) => (out += b));
    let loggingIn: Promise<unknown> | undefined;
    shell.stderr.on('data', (b: Buffer) => {
      err += b.toString();
      const m = /open: (\S+)\s+code: (\S+)/.exec(err);
      if (m && !loggingIn) {
        loggingIn = completeDeviceLogin({ verificationUri: m[1]!, userCode: m[2]!, username: 'alice', password: 'alice-password' });
      }
    });
    const status = await new Promise<number | null>((r) => shell.on('close', r));
    expect(status).toBe(0);
    expect(loggingIn, err).toBeDefined();

    const rc = (prefix: string) => {
      const i = block.findIndex((l) => l.startsWith(prefix));
      const m = new RegExp(`@@ ${i} rc=(\\d+)`).exec(err);
      return m ? Number(m[1]) : undefined;
    };
    expect(err).not.toContain('command not found');
    expect(rc('guard-aws login'), err).toBe(0);
    expect(err).toContain('as alice');
    expect(rc('guard-aws sts get-caller-identity'), err).toBe(0);
    expect(out).toContain('assumed-role/guard-aws-dev/');
    expect(rc('guard-aws s3 ls'), err).toBe(0);
    expect(rc('guard-aws iam create-user'), err).toBe(77);
    expect(err).toContain('deny-iam-writes');
    expect(rc('guard-aws explain'), err).toBe(0);
    expect(out).toMatch(/s3:DeleteBucket/);
  }, 120_000);

  it('guard-aws help s3 ls shows aws\'s own help through the guard (the default policy allows help)', () => {
    // Same shell state as above: the README's PATH line and alice's login in this HOME.
    const r = spawnSync('bash', ['-c', 'export PATH="$PWD/bin:$PATH"; export GUARD_AWS_BROKER=http://127.0.0.1:8740; guard-aws help s3 ls'], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, HOME: join(dir, 'home') },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("aws s3 ls s3://arn:aws:s3:us-west-2:123456789012:accesspoint/myaccesspoint/");
  });
});
