import { spawnSync as nodeSpawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GuardError } from '../errors.js';
import { cacheDir } from '../config/paths.js';
import { LookupCache, acquireLock } from './lookup-cache.js';

/**
 * Finding the real `aws` without ever finding guard-aws itself.
 *
 * Three independent guards against a loop: the shim guard-aws installs carries SHIM_MARKER in its text (any
 * `aws` containing it is skipped, wherever it is installed); a candidate that resolves into this
 * installation's own `bin/` is skipped; and every aws guard-aws starts gets GUARD_AWS_ACTIVE=1, so if a
 * guard-aws still ends up started by its own runner it refuses (assertNotNested) instead of recursing.
 */
export const SHIM_MARKER = 'guard-aws-shim:v1';
export const ACTIVE_ENV = 'GUARD_AWS_ACTIVE';

export interface AwsBinary {
  /** Absolute path of the program to execute (a pyenv shim already resolved to the real script). */
  path: string;
  /** 1 or 2: a first guess from the file (v1 is a Python script, the official v2 a bundled binary), corrected from
   * `aws --version` by resolveCliRelease (Debian's v2 is a Python script too). */
  major: 1 | 2;
}

export interface FindAwsOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where the pyenv resolution is cached; default `$XDG_CACHE_HOME/guard-aws` or `~/.cache/guard-aws`. */
  cacheDir?: string;
  /** Injected for tests; used only to ask pyenv which script its shim runs. */
  spawnSync?: typeof nodeSpawnSync;
  /** This installation's root (its `bin/` is never a valid aws). Default: derived from this module. */
  packageRoot?: string;
}

/** The root of this installation: this file is <root>/src/runner/ or <root>/dist/runner/. */
export function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** Refuses to run when guard-aws was itself started by guard-aws's runner (a loop through a shim). */
export function assertNotNested(env: NodeJS.ProcessEnv): void {
  if (env[ACTIVE_ENV]) {
    throw new GuardError(
      'aws_not_found',
      `guard-aws was started by its own aws runner (${ACTIVE_ENV} is set): the aws it found is a guard-aws shim; set GUARD_AWS_AWS_BIN to the real aws`,
    );
  }
}

function head(path: string, bytes = 4096): string {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(bytes);
    const n = readSync(fd, b, 0, bytes, 0);
    return b.subarray(0, n).toString('latin1');
  } finally {
    closeSync(fd);
  }
}

/** A regular file this process may execute (symlinks followed). */
export function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function insideDir(file: string, dir: string): boolean {
  return file === dir || file.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

function ownBinDir(root: string): string {
  try {
    return realpathSync(join(root, 'bin'));
  } catch {
    return join(root, 'bin');
  }
}

/** Why a candidate is not the real aws, or null when it is acceptable. */
function rejectReason(path: string, ownBin: string): string | null {
  if (!isExecutableFile(path)) return 'not an executable file';
  let text: string;
  try {
    text = head(path);
  } catch {
    return 'unreadable';
  }
  if (text.includes(SHIM_MARKER)) return "guard-aws's own shim";
  let real = path;
  try {
    real = realpathSync(path);
  } catch {
    /* keep path */
  }
  if (insideDir(real, ownBin)) return "guard-aws's own program";
  return null;
}

const PYENV_SHIM = /exec\s+"([^"]+\/libexec\/pyenv)"\s+exec\s+"\$program"/;
const PYENV_ROOT_LINE = /export\s+PYENV_ROOT="([^"]+)"/;

function nearestVersionFile(cwd: string): string {
  for (let d = resolve(cwd); ; d = dirname(d)) {
    const f = join(d, '.python-version');
    try {
      return `${f}@${statSync(f).mtimeMs}`;
    } catch {
      /* keep walking up */
    }
    if (dirname(d) === d) return '';
  }
}

function mtime(p: string): string {
  try {
    return String(statSync(p).mtimeMs);
  } catch {
    return '';
  }
}

/**
 * A pyenv shim is a bash script that asks pyenv which interpreter's `aws` to run (about 50 ms per call, and it
 * needs pyenv's variables). It is resolved once with `pyenv which aws` and cached, keyed by everything pyenv
 * decides on: the shim and its mtime, PYENV_VERSION, the nearest .python-version and the global version file.
 */
function resolvePyenvShim(shim: string, text: string, o: FindAwsOptions): string {
  const m = PYENV_SHIM.exec(text);
  if (!m) return shim;
  const pyenv = m[1]!;
  const root = PYENV_ROOT_LINE.exec(text)?.[1] ?? o.env.PYENV_ROOT ?? dirname(dirname(pyenv));
  const cwd = o.cwd ?? process.cwd();
  const key = JSON.stringify([shim, mtime(shim), o.env.PYENV_VERSION ?? '', nearestVersionFile(cwd), mtime(join(root, 'version'))]);
  const dir = o.cacheDir ?? cacheDir(o.env);
  const usable = (p: string | undefined) => (p && isAbsolute(p) && isExecutableFile(p) ? p : undefined);
  const cache = new LookupCache(dir, 'aws-path.json', 32);
  const hit = usable(cache.get(key));
  if (hit) return hit;
  // Many calls at once with a cold cache: one asks pyenv, the others wait for its cached answer.
  const lock = acquireLock(join(dir, 'aws-path.lock'), PYENV_TIMEOUT_MS + 5_000, () => usable(new LookupCache(dir, 'aws-path.json', 32).get(key)));
  if (typeof lock === 'string') return lock;
  try {
    const again = usable(new LookupCache(dir, 'aws-path.json', 32).get(key));
    return again ?? askPyenv(shim, pyenv, root, cwd, key, cache, o);
  } finally {
    lock?.();
  }
}

/** How long `pyenv which aws` may take. */
const PYENV_TIMEOUT_MS = 10_000;

function askPyenv(shim: string, pyenv: string, root: string, cwd: string, key: string, cache: LookupCache, o: FindAwsOptions): string {
  const env: NodeJS.ProcessEnv = { PATH: o.env.PATH ?? '/usr/bin:/bin', HOME: o.env.HOME ?? homedir(), PYENV_ROOT: root };
  if (o.env.PYENV_VERSION) env.PYENV_VERSION = o.env.PYENV_VERSION;
  const r = (o.spawnSync ?? nodeSpawnSync)(pyenv, ['which', 'aws'], { cwd, env, encoding: 'utf8', timeout: PYENV_TIMEOUT_MS });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT') {
    throw new GuardError('aws_not_found', `${shim} is a pyenv shim and \`pyenv which aws\` timed out after ${PYENV_TIMEOUT_MS / 1000} s; set GUARD_AWS_AWS_BIN`);
  }
  const out = typeof r.stdout === 'string' ? r.stdout.trim() : '';
  if (r.status !== 0 || !isAbsolute(out) || !isExecutableFile(out)) {
    throw new GuardError('aws_not_found', `${shim} is a pyenv shim and \`pyenv which aws\` did not name the real aws; set GUARD_AWS_AWS_BIN`);
  }
  cache.set(key, out);
  return out;
}

function describe(path: string, o: FindAwsOptions, ownBin: string): AwsBinary | string {
  const why = rejectReason(path, ownBin);
  if (why) return why;
  const resolved = resolvePyenvShim(path, head(path), o);
  if (resolved !== path) {
    const why2 = rejectReason(resolved, ownBin);
    if (why2) return why2;
  }
  // v1 is a Python script ("#!…python"); v2 is a compiled executable.
  const major = head(resolved, 256).startsWith('#!') ? 1 : 2;
  return { path: resolved, major };
}

/**
 * The real aws: GUARD_AWS_AWS_BIN if set (must be absolute), else the first `aws` on PATH that is not
 * guard-aws. Throws GuardError('aws_not_found') (exit 69) when there is none.
 */
export function findAws(o: FindAwsOptions): AwsBinary {
  assertNotNested(o.env);
  const ownBin = ownBinDir(o.packageRoot ?? packageRoot());
  const explicit = o.env.GUARD_AWS_AWS_BIN;
  if (explicit !== undefined && explicit !== '') {
    if (!isAbsolute(explicit)) throw new GuardError('aws_not_found', `GUARD_AWS_AWS_BIN must be an absolute path (got ${JSON.stringify(explicit)})`);
    const r = describe(explicit, o, ownBin);
    if (typeof r === 'string') throw new GuardError('aws_not_found', `GUARD_AWS_AWS_BIN=${explicit} cannot be used: ${r}`);
    return r;
  }
  const skipped: string[] = [];
  for (const dir of (o.env.PATH ?? '').split(':')) {
    // Relative PATH entries would make the choice depend on the current directory: never used.
    if (!dir || !isAbsolute(dir)) continue;
    const candidate = join(dir, 'aws');
    let exists = false;
    try {
      statSync(candidate);
      exists = true;
    } catch {
      /* not here */
    }
    if (!exists) continue;
    const r = describe(candidate, o, ownBin);
    if (typeof r !== 'string') return r;
    skipped.push(`${candidate} (${r})`);
  }
  throw new GuardError(
    'aws_not_found',
    `no real aws on PATH${skipped.length ? `; skipped ${skipped.join(', ')}` : ''}; install the AWS CLI or set GUARD_AWS_AWS_BIN`,
  );
}
