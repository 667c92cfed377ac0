import { beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../helpers/ports.js';
import { realAwsPath } from '../helpers/aws.js';
import { SHIM_MARKER, findAws } from '../../src/runner/index.js';
import { EXIT } from '../../src/exit-codes.js';

/** End to end through the built CLI (dist/): `guard-aws shim install`, then `aws …` typed with the shim first on PATH. */

const repo = resolve(__dirname, '..', '..');
const bin = join(repo, 'bin', 'guard-aws.js');
const REAL_DIR = join(realAwsPath(), '..');
const GUARD_CODES: number[] = Object.values(EXIT).filter((c) => c !== 0);

beforeAll(() => {
  // Build what the CLI runs; other modules' type errors do not stop tsc from emitting.
  spawnSync(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repo, 'tsconfig.json')], { cwd: repo });
}, 120_000);

function tmp(name: string): string {
  return mkdtempSync(join(tmpdir(), `guard-aws-${name}-`));
}

function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const home = tmp('home');
  return {
    HOME: home,
    XDG_DATA_HOME: join(home, 'data'),
    XDG_CONFIG_HOME: join(home, 'config'),
    XDG_CACHE_HOME: join(home, 'cache'),
    PATH: `${REAL_DIR}:/usr/bin:/bin`,
    CI: '1',
    ...extra,
  };
}

describe('guard-aws shim install', () => {
  test('writes an executable aws carrying the marker and prints the PATH line', () => {
    const dir = join(tmp('shim'), 'nested', 'bin');
    const r = spawnSync(process.execPath, [bin, 'shim', 'install', '--dir', dir], { env: cleanEnv(), encoding: 'utf8' });
    expect(r.stderr).toContain(join(dir, 'aws'));
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(`export PATH='${dir}':"$PATH"`);
    const st = statSync(join(dir, 'aws'));
    expect(st.mode & 0o777).toBe(0o755);
    const text = readFileSync(join(dir, 'aws'), 'utf8');
    expect(text).toContain(SHIM_MARKER);
    expect(text).toContain(`'${process.execPath}' '${bin}' -- "$@"`);
    // Re-installing replaces the file atomically and leaves no temporary files behind.
    expect(spawnSync(process.execPath, [bin, 'shim', 'install', '--dir', dir], { env: cleanEnv() }).status).toBe(0);
    expect(readdirSync(dir)).toEqual(['aws']);
    // --json for agents: the same facts as one object.
    const j = spawnSync(process.execPath, [bin, 'shim', 'install', '--dir', dir, '--json'], { env: cleanEnv(), encoding: 'utf8' });
    expect(JSON.parse(j.stdout)).toEqual({ path: join(dir, 'aws'), pathLine: `export PATH='${dir}':"$PATH"` });
  });

  test('defaults to $XDG_DATA_HOME/guard-aws/bin', () => {
    const env = cleanEnv();
    const r = spawnSync(process.execPath, [bin, 'shim', 'install'], { env, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(statSync(join(env.XDG_DATA_HOME!, 'guard-aws', 'bin', 'aws')).isFile()).toBe(true);
  });
});

describe('aws typed with the shim first on PATH', () => {
  test('reaches guard-aws (a guard-aws exit code, not aws\'s), and guard-aws then finds the real aws, not the shim', async () => {
    const dir = tmp('shim');
    expect(spawnSync(process.execPath, [bin, 'shim', 'install', '--dir', dir], { env: cleanEnv() }).status).toBe(0);
    const closedPort = await freePort();
    const env = cleanEnv({ PATH: `${dir}:${REAL_DIR}:/usr/bin:/bin`, GUARD_AWS_BROKER: `http://127.0.0.1:${closedPort}` });
    // Resolved through PATH exactly as a shell or an agent's subprocess call would.
    const r = spawnSync('aws', ['sts', 'get-caller-identity'], { env, encoding: 'utf8', timeout: 60_000 });
    // Plain aws without credentials would exit 253/255 with "Unable to locate credentials".
    const p = spawnSync(realAwsPath(), ['sts', 'get-caller-identity'], { env: cleanEnv(), encoding: 'utf8' });
    expect(p.status).not.toBe(0);
    expect(GUARD_CODES).toContain(r.status);
    expect(r.stderr).not.toContain('Unable to locate credentials');
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    // What guard-aws's runner would execute from this PATH: the real aws, never the shim.
    expect(findAws({ env, cacheDir: tmp('cache') }).path).toBe(realAwsPath());
  }, 90_000);

  test('the shim refuses to start guard-aws from inside guard-aws\'s own aws call (no loop)', () => {
    const dir = tmp('shim');
    spawnSync(process.execPath, [bin, 'shim', 'install', '--dir', dir], { env: cleanEnv() });
    const t0 = Date.now();
    const r = spawnSync(join(dir, 'aws'), ['sts', 'get-caller-identity'], { env: cleanEnv({ GUARD_AWS_ACTIVE: '1' }), encoding: 'utf8' });
    expect(r.status).toBe(EXIT.UNAVAILABLE);
    expect(r.stderr).toMatch(/loop/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
