import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * scripts/setup.mjs (`npm run setup`, the first half of `npm run dev` and `npm run test:all`) on a throw-away
 * tree. `npm` is a stand-in script on PATH that records what it was asked to do: running the real install here
 * would rewrite the node_modules this test suite itself runs from. What matters is what the script decides:
 * install on a fresh clone, nothing on a second start, build only after a source changed, and an update in place
 * (never `npm ci`, which deletes node_modules under a running guard-aws) when the lock file changed.
 */
const script = resolve(__dirname, '..', '..', 'scripts', 'setup.mjs');
const dir = mkdtempSync(join(tmpdir(), 'guard-aws-setup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tree = join(dir, 'clone');
const bin = join(dir, 'bin');
const log = join(dir, 'npm.log');
mkdirSync(join(tree, 'src'), { recursive: true });
mkdirSync(join(tree, 'scripts'), { recursive: true });
mkdirSync(bin);
writeFileSync(join(tree, 'package.json'), '{"name":"clone"}\n');
writeFileSync(join(tree, 'package-lock.json'), '{"lockfileVersion":3}\n');
writeFileSync(join(tree, 'src', 'a.ts'), 'export {};\n');
writeFileSync(join(tree, 'tsconfig.json'), '{}\n');
writeFileSync(join(tree, 'scripts', 'bundle.mjs'), '\n');
writeFileSync(
  join(bin, 'npm'),
  `#!/bin/sh
echo "$*" >> '${log}'
case "$1" in
  ci|install) mkdir -p node_modules ;;
  run) mkdir -p dist/app && echo built > dist/app/main.js ;;
esac
`,
);
chmodSync(join(bin, 'npm'), 0o755);

function setup(): { calls: string[]; stderr: string; status: number | null } {
  rmSync(log, { force: true });
  const r = spawnSync(process.execPath, [script], { cwd: tree, encoding: 'utf8', env: { PATH: `${bin}:${process.env.PATH}`, HOME: dir } });
  const calls = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : [];
  return { calls, stderr: r.stderr, status: r.status };
}

describe('npm run setup', () => {
  it('installs and builds a fresh clone, then does nothing on the next start', () => {
    const first = setup();
    expect(first.status, first.stderr).toBe(0);
    expect(first.calls).toEqual(['ci --no-audit --no-fund', 'run build']);
    const second = setup();
    expect(second.status).toBe(0);
    expect(second.calls).toEqual([]);
    expect(second.stderr).toContain('npm packages up to date');
    expect(second.stderr).toContain('build up to date');
  });

  it('rebuilds (only) after a source file changed', () => {
    // Touching without changing is not a change; changing is.
    const later = new Date(Date.now() + 5_000);
    utimesSync(join(tree, 'src', 'a.ts'), later, later);
    expect(setup().calls).toEqual([]);
    writeFileSync(join(tree, 'src', 'a.ts'), 'export const a = 1;\n');
    expect(setup().calls).toEqual(['run build']);
    expect(setup().calls).toEqual([]);
  });

  it('updates packages in place when the lock file changed: node_modules is never deleted', () => {
    writeFileSync(join(tree, 'node_modules', 'in-use'), 'a running guard-aws loads from here\n');
    writeFileSync(join(tree, 'package-lock.json'), '{"lockfileVersion":3,"packages":{}}\n');
    const r = setup();
    // The lock file is a build input too (dependencies' types), so the build follows the install.
    expect(r.calls).toEqual(['install --no-audit --no-fund', 'run build']);
    expect(r.calls).not.toContain('ci --no-audit --no-fund');
    expect(existsSync(join(tree, 'node_modules', 'in-use'))).toBe(true);
    expect(setup().calls).toEqual([]);
  });
});
