import { chmodSync, mkdirSync, renameSync, writeFileSync, rmSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { dataDir } from '../config/paths.js';
import { ERRORS, GuardError } from '../errors.js';
import { ACTIVE_ENV, SHIM_MARKER, packageRoot } from './find-aws.js';

export interface InstallShimOptions {
  /** Directory to write `aws` into; default defaultShimDir(env). Created (0755) if missing. */
  dir?: string | undefined;
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Absolute path of the node that runs guard-aws; default process.execPath. */
  nodePath?: string;
  /** Absolute path of bin/guard-aws.js; default this installation's. */
  entry?: string;
}

export interface InstalledShim {
  path: string;
  dir: string;
  /** The line to add to a shell profile so `aws` resolves to the shim first. */
  pathLine: string;
}

/** `bin/` in guard-aws's data directory: `$XDG_DATA_HOME/guard-aws/bin`, else `~/.local/share/guard-aws/bin`. */
export function defaultShimDir(env: NodeJS.ProcessEnv): string {
  return join(dataDir(env), 'bin');
}

/** POSIX single-quoting: the only character needing care inside '…' is ' itself. */
function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function shimScript(nodePath: string, entry: string): string {
  return [
    '#!/bin/sh',
    `# ${SHIM_MARKER} — written by \`guard-aws shim install\`: every \`aws …\` typed with this directory first on`,
    '# PATH runs through guard-aws. guard-aws never runs a file carrying this marker as the real aws.',
    `if [ -n "\${${ACTIVE_ENV}:-}" ]; then`,
    `  echo "guard-aws: refusing to run the guard-aws shim from inside guard-aws's own aws call (a loop); set GUARD_AWS_AWS_BIN to the real aws" >&2`,
    `  exit ${ERRORS.aws_not_found.exit}`,
    'fi',
    `exec ${shQuote(nodePath)} ${shQuote(entry)} -- "$@"`,
    '',
  ].join('\n');
}

/** Writes DIR/aws (0755, atomically: temp file + rename) that execs guard-aws with `--` and the original args. */
export function installShim(o: InstallShimOptions): InstalledShim {
  const dir = resolve(o.cwd ?? process.cwd(), o.dir ?? defaultShimDir(o.env));
  const nodePath = o.nodePath ?? process.execPath;
  const entry = o.entry ?? join(packageRoot(), 'bin', 'guard-aws.js');
  if (!isAbsolute(nodePath) || !isAbsolute(entry)) throw new GuardError('internal', 'the shim needs absolute paths to node and guard-aws');
  if (/[\n\r\0]/.test(nodePath + entry + dir)) throw new GuardError('usage', 'paths with newlines cannot be written into the shim');
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch (e) {
    throw new GuardError('usage', `cannot create ${dir}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { cause: e });
  }
  const path = join(dir, 'aws');
  const tmp = join(dir, `.aws.${process.pid}.${Date.now()}.tmp`);
  try {
    writeFileSync(tmp, shimScript(nodePath, entry), { mode: 0o755 });
    chmodSync(tmp, 0o755);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new GuardError('usage', `cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { cause: e });
  }
  return { path, dir, pathLine: `export PATH=${shQuote(dir)}:"$PATH"` };
}
