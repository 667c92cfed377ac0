import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/**
 * guard-aws's per-user configuration directory, following the XDG Base Directory spec:
 * GUARD_AWS_CONFIG_DIR (tests, unusual setups) > $XDG_CONFIG_HOME/guard-aws > ~/.config/guard-aws.
 * The spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
 */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.GUARD_AWS_CONFIG_DIR;
  if (explicit && isAbsolute(explicit)) return explicit;
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'guard-aws');
  const home = env.HOME && isAbsolute(env.HOME) ? env.HOME : homedir();
  return join(home, '.config', 'guard-aws');
}

/** The client settings file (the broker URL chosen at login). */
export function clientConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'config.json');
}

/** Where the file token store keeps logins when no OS keychain is usable. */
export function tokenCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'tokens');
}
