import { homedir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { cacheDir, configDir, dataDir, stateDir } from '../../src/config/paths.js';
import { policyCacheDir } from '../../src/policy/load-cached.js';
import { defaultShimDir } from '../../src/runner/shim.js';
import { defaultSpoolDir } from '../../src/transcript/spool-dir.js';

const dirs = [
  { name: 'configDir', f: configDir, override: 'GUARD_AWS_CONFIG_DIR', xdg: 'XDG_CONFIG_HOME', fallback: '/h/.config/guard-aws' },
  { name: 'stateDir', f: stateDir, override: 'GUARD_AWS_STATE_DIR', xdg: 'XDG_STATE_HOME', fallback: '/h/.local/state/guard-aws' },
  { name: 'cacheDir', f: cacheDir, override: 'GUARD_AWS_CACHE_DIR', xdg: 'XDG_CACHE_HOME', fallback: '/h/.cache/guard-aws' },
  { name: 'dataDir', f: dataDir, override: undefined, xdg: 'XDG_DATA_HOME', fallback: '/h/.local/share/guard-aws' },
] as const;

describe('per-user directories (XDG Base Directory spec), one rule for all', () => {
  for (const d of dirs) {
    it(`${d.name}: override > $${d.xdg}/guard-aws > default under HOME; relative values are ignored`, () => {
      if (d.override) expect(d.f({ [d.override]: '/o', [d.xdg]: '/x', HOME: '/h' })).toBe('/o');
      if (d.override) expect(d.f({ [d.override]: 'o', [d.xdg]: '/x', HOME: '/h' })).toBe('/x/guard-aws');
      expect(d.f({ [d.xdg]: '/x', HOME: '/h' })).toBe('/x/guard-aws');
      expect(d.f({ [d.xdg]: 'x', HOME: '/h' })).toBe(d.fallback);
      expect(d.f({ [d.xdg]: '', HOME: '/h' })).toBe(d.fallback);
      expect(d.f({ HOME: '/h' })).toBe(d.fallback);
      // A relative HOME is ignored too: the account's home directory from the system is used instead.
      expect(d.f({ HOME: 'h' }).startsWith(homedir())).toBe(true);
    });
  }

  it('every consumer goes through the same resolvers', () => {
    const env = { HOME: '/h', XDG_STATE_HOME: 'rel', XDG_DATA_HOME: 'rel', XDG_CACHE_HOME: 'rel' };
    expect(defaultSpoolDir(env)).toBe('/h/.local/state/guard-aws/spool');
    expect(defaultShimDir(env)).toBe('/h/.local/share/guard-aws/bin');
    expect(policyCacheDir(env)).toBe('/h/.cache/guard-aws/policies');
    expect(policyCacheDir({ GUARD_AWS_CACHE_DIR: '/c' })).toBe('/c/policies');
    expect(policyCacheDir({})).toBe(false);
    expect(policyCacheDir({ HOME: '/h', GUARD_AWS_NO_POLICY_CACHE: '1' })).toBe(false);
  });
});
