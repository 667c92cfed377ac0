import { describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';

// The keychain backend against a REAL Secret Service: gnome-keyring in a private D-Bus session (started by
// this file, so the caller's keyring is never touched). Needs the built dist/ (npm test builds first) and the system packages
// installed by scripts/setup-system.sh; skipped, with the reason, only when those packages are absent.
const repo = resolve(import.meta.dirname, '../..');
const which = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const hasKeytar = (() => {
  try {
    createRequire(import.meta.url).resolve('keytar');
    return true;
  } catch {
    return false;
  }
})();
const missing = [
  !which('dbus-run-session') && 'dbus-run-session (apt: dbus)',
  !which('gnome-keyring-daemon') && 'gnome-keyring-daemon (apt: gnome-keyring)',
  !hasKeytar && 'keytar (optional npm dependency; needs libsecret-1-dev to build)',
].filter(Boolean);

describe('keychain token store', () => {
  // Skipped only when the machine lacks a Secret Service to test against (dbus, gnome-keyring) or keytar could not
  // be built; scripts/setup-system.sh installs them, so CI runs it. The name says what was missing.
  test.skipIf(missing.length > 0)(`round-trips through a real Secret Service${missing.length ? ` — skipped: missing ${missing.join(', ')}` : ''}`, async () => {
    const built = join(repo, 'dist/auth/token-store.js');
    expect(existsSync(built), 'dist/ is not built: run `npm run build`').toBe(true);
    const dir = await mkdtemp(join(tmpdir(), 'guard-aws-kc-'));
    try {
      const child = join(repo, 'test/auth/fixtures/keychain-child.mjs');
      // Arguments reach the inner command as positional parameters, never spliced into the shell text.
      const r = spawnSync(
        'dbus-run-session',
        ['--', 'sh', '-c', 'printf pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; exec node "$0" "$1" "$2"', child, built, dir],
        { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH, HOME: dir } },
      );
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
      expect(out).toEqual({
        kind: 'keychain',
        describe: 'OS keychain (service "guard-aws")',
        got: '{"accessToken":"kc-secret"}',
        afterDelete: null,
      });
      // The secret went to the keychain, not to a file.
      expect(existsSync(join(dir, 'tokens'))).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
