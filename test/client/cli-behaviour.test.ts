import { spawn, spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The built CLI as a user runs it (needs `npm run build`).
const cli = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'bin', 'guard-aws.js');
const env = { PATH: process.env.PATH, HOME: '/nonexistent', GUARD_AWS_NO_POLICY_CACHE: '1', CI: 'true' };
const explain = (args: string[]) => {
  const r = spawnSync(process.execPath, [cli, 'explain', '--json', '--', ...args], { encoding: 'utf8', env });
  return { status: r.status, json: r.status === 0 ? (JSON.parse(r.stdout) as Record<string, unknown>) : null, stderr: r.stderr };
};

describe('explain reads --profile as the run path does', () => {
  it('an exact --profile NAME picks the target and is not an override', () => {
    const r = explain(['s3', 'ls', '--profile', 'prod']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ decision: 'allow' });
    expect(JSON.stringify(r.json)).toContain('"prod"');
    expect(r.json!.risks).not.toContain('credential_override');
  });
  it('an abbreviation of --profile stays in the argv and is denied as a credential override', () => {
    const r = explain(['s3', 'ls', '--prof', 'prod']);
    expect(r.json).toMatchObject({ decision: 'deny' });
    expect(r.json!.risks).toContain('credential_override');
  });
  it('--target and a different --profile conflict (64)', () => {
    const r = spawnSync(process.execPath, [cli, 'explain', '--target', 'dev', '--', 's3', 'ls', '--profile', 'prod'], { encoding: 'utf8', env });
    expect(r.status).toBe(64);
  });
});

describe('a reader that stops early', () => {
  it('ends guard-aws quietly (141, no stack trace)', async () => {
    const child = spawn(process.execPath, [cli, 'explain', '--', 's3', 'ls'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // the reader is gone before anything is written
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b));
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    expect(code).toBe(141);
    expect(err).not.toMatch(/EPIPE|at .*\.js/);
  });
});
