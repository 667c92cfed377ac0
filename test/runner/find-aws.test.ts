import { describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { findAws, assertNotNested, packageRoot, SHIM_MARKER } from '../../src/runner/index.js';
import { installShim } from '../../src/runner/shim.js';
import { isGuardError } from '../../src/errors.js';
import { realAwsPath } from '../helpers/aws.js';

const REAL = realAwsPath();
const PYENV_SHIMS = spawnSync('sh', ['-c', 'command -v aws'], { encoding: 'utf8' }).stdout.trim();

function tmp(name: string): string {
  return mkdtempSync(join(tmpdir(), `guard-aws-${name}-`));
}

function codeOf(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (e) {
    return isGuardError(e) ? e.code : String(e);
  }
}

describe('finding the real aws', () => {
  test('a pyenv shim on PATH is resolved to the real script, and the answer is cached', () => {
    expect(readFileSync(PYENV_SHIMS, 'utf8')).toContain('pyenv');
    const cacheDir = tmp('cache');
    const env = { PATH: `${join(PYENV_SHIMS, '..')}:/usr/bin:/bin`, HOME: process.env.HOME };
    let calls = 0;
    const counting = ((...a: Parameters<typeof spawnSync>) => {
      calls++;
      return spawnSync(...a);
    }) as typeof spawnSync;
    expect(findAws({ env, cacheDir, spawnSync: counting })).toEqual({ path: REAL, major: 1 });
    expect(findAws({ env, cacheDir, spawnSync: counting })).toEqual({ path: REAL, major: 1 });
    expect(calls).toBe(1);
    // A different PYENV_VERSION is a different answer: asked again.
    findAws({ env: { ...env, PYENV_VERSION: '3.11.7' }, cacheDir, spawnSync: counting });
    expect(calls).toBe(2);
  });

  test("guard-aws's shim is skipped by its marker, wherever it is installed", () => {
    const dir = tmp('shimdir');
    installShim({ dir, env: {} });
    expect(readFileSync(join(dir, 'aws'), 'utf8')).toContain(SHIM_MARKER);
    const env = { PATH: `${dir}:${join(REAL, '..')}:/usr/bin:/bin` };
    expect(findAws({ env, cacheDir: tmp('cache') }).path).toBe(REAL);
    // Only the shim on PATH: not found (69), never the shim itself. (Not /usr/bin: Debian's awscli, the v2 the
    // tests also use, lives there.)
    expect(codeOf(() => findAws({ env: { PATH: dir }, cacheDir: tmp('cache') }))).toBe('aws_not_found');
  });

  test("an aws that resolves into guard-aws's own bin/ is skipped, even without the marker", () => {
    const dir = tmp('link');
    symlinkSync(join(packageRoot(), 'bin', 'guard-aws.js'), join(dir, 'aws'));
    const env = { PATH: `${dir}:${join(REAL, '..')}` };
    expect(findAws({ env, cacheDir: tmp('cache') }).path).toBe(REAL);
  });

  test('GUARD_AWS_AWS_BIN wins, must be absolute and must not be the shim', () => {
    expect(findAws({ env: { GUARD_AWS_AWS_BIN: REAL, PATH: '' }, cacheDir: tmp('cache') }).path).toBe(REAL);
    expect(codeOf(() => findAws({ env: { GUARD_AWS_AWS_BIN: 'aws' }, cacheDir: tmp('cache') }))).toBe('aws_not_found');
    const dir = tmp('shimdir');
    const shim = installShim({ dir, env: {} });
    expect(codeOf(() => findAws({ env: { GUARD_AWS_AWS_BIN: shim.path }, cacheDir: tmp('cache') }))).toBe('aws_not_found');
  });

  test('relative PATH entries and non-executables are ignored; nothing found is exit 69', () => {
    const dir = tmp('noexec');
    writeFileSync(join(dir, 'aws'), '#!/bin/sh\necho hi\n', { mode: 0o644 });
    const exe = tmp('relexec');
    writeFileSync(join(exe, 'aws'), `#!/bin/sh\nexec ${REAL} "$@"\n`, { mode: 0o755 });
    const err = (() => {
      try {
        findAws({ env: { PATH: `${relative(process.cwd(), exe)}:${dir}` }, cacheDir: tmp('cache') });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(isGuardError(err) && err.exitCode).toBe(69);
  });

  test('inside a run started by guard-aws (GUARD_AWS_ACTIVE), guard-aws refuses instead of recursing', () => {
    expect(codeOf(() => assertNotNested({ GUARD_AWS_ACTIVE: '1' }))).toBe('aws_not_found');
    expect(codeOf(() => findAws({ env: { GUARD_AWS_ACTIVE: '1', PATH: join(REAL, '..') } }))).toBe('aws_not_found');
    expect(codeOf(() => assertNotNested({}))).toBeNull();
  });
});
