import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/**
 * guard-aws's per-user directories, resolved here and nowhere else, following the XDG Base Directory
 * Specification (https://specifications.freedesktop.org/basedir-spec/latest/): each is the guard-aws override
 * (tests, unusual setups) if set, else `$XDG_…_HOME/guard-aws`, else the spec's default under the home
 * directory. One validity rule for all of them: the spec says a relative `$XDG_…_HOME` "is invalid and should be
 * ignored"; the overrides and HOME are treated the same way, so no directory ever depends on the current one.
 *
 * | directory | override                | XDG variable     | default                    | holds                       |
 * |-----------|-------------------------|------------------|----------------------------|-----------------------------|
 * | configDir | GUARD_AWS_CONFIG_DIR    | XDG_CONFIG_HOME  | ~/.config/guard-aws        | config.json, file logins    |
 * | stateDir  | GUARD_AWS_STATE_DIR     | XDG_STATE_HOME   | ~/.local/state/guard-aws   | the transcript spool        |
 * | cacheDir  | GUARD_AWS_CACHE_DIR     | XDG_CACHE_HOME   | ~/.cache/guard-aws         | policy and lookup caches    |
 * | dataDir   | —                       | XDG_DATA_HOME    | ~/.local/share/guard-aws   | the `aws` shim, `dev` data  |
 */

type Env = NodeJS.ProcessEnv;

function absolute(value: string | undefined): string | undefined {
  return value && isAbsolute(value) ? value : undefined;
}

/** HOME when it is an absolute path, else the account's home directory from the system. */
export function homeDir(env: Env = process.env): string {
  return absolute(env.HOME) ?? homedir();
}

function resolveDir(env: Env, override: string | undefined, xdgVariable: string, defaultUnderHome: string[]): string {
  const explicit = override === undefined ? undefined : absolute(env[override]);
  if (explicit) return explicit;
  const xdg = absolute(env[xdgVariable]);
  if (xdg) return join(xdg, 'guard-aws');
  return join(homeDir(env), ...defaultUnderHome, 'guard-aws');
}

/** Configuration: the client settings file and, without a keychain, stored logins. */
export function configDir(env: Env = process.env): string {
  return resolveDir(env, 'GUARD_AWS_CONFIG_DIR', 'XDG_CONFIG_HOME', ['.config']);
}

/** State that must survive a run ("state data that should persist between restarts"): the transcript spool. */
export function stateDir(env: Env = process.env): string {
  return resolveDir(env, 'GUARD_AWS_STATE_DIR', 'XDG_STATE_HOME', ['.local', 'state']);
}

/** Caches that only cost time when lost: validated policy files, which aws a shim runs, aws's release. */
export function cacheDir(env: Env = process.env): string {
  return resolveDir(env, 'GUARD_AWS_CACHE_DIR', 'XDG_CACHE_HOME', ['.cache']);
}

/** User data: the `aws` shim (`bin/`), `guard-aws dev`'s database and keys (`dev/`). */
export function dataDir(env: Env = process.env): string {
  return resolveDir(env, undefined, 'XDG_DATA_HOME', ['.local', 'share']);
}

/** The client settings file (the broker URL chosen at login). */
export function clientConfigPath(env: Env = process.env): string {
  return join(configDir(env), 'config.json');
}

/** Where the file token store keeps logins when no OS keychain is usable. */
export function tokenCacheDir(env: Env = process.env): string {
  return join(configDir(env), 'tokens');
}

/** The transcript spool (see src/transcript/spool.ts). */
export function spoolDir(env: Env = process.env): string {
  return join(stateDir(env), 'spool');
}
