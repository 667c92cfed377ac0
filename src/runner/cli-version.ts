import { spawnSync as nodeSpawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { GuardError } from '../errors.js';
import { type CliRelease, type TableVersions, cliRelease } from '../invocation/cli-release.js';
import type { AwsBinary } from './find-aws.js';
import { cacheDir } from '../config/paths.js';
import { LookupCache, acquireLock } from './lookup-cache.js';

/**
 * The parser's tables describe one AWS CLI release per major version (data/aws-model/index.json, data/aws-model-v2/index.json `cliVersion`).
 * Another release may have other operations, arguments or abbreviations — a parser differential between what the
 * broker decides and what aws does. Which releases are read with which table, and which are refused, is the rule
 * in src/invocation/cli-release.ts (docs/aws-cli-parsing.md §6.3). `aws --version` costs a Python start, so its
 * answer is cached per binary (path, size, mtime).
 */
export interface CliVersionOptions {
  env: NodeJS.ProcessEnv;
  cacheDir?: string;
  spawnSync?: typeof nodeSpawnSync;
  /** The releases the tables were generated from, by major; default: the committed tables'. */
  tables?: TableVersions;
}

/** `aws-cli/1.45.11 Python/3.11.7 …` → `1.45.11`. */
export function parseCliVersion(text: string): string | undefined {
  return /aws-cli\/(\d+\.\d+\.\d+)/.exec(text)?.[1];
}

/** How long `aws --version` may take (a cold Python start on a loaded machine is seconds, not tens of them). */
export const VERSION_TIMEOUT_MS = 30_000;

export function installedCliVersion(aws: AwsBinary, o: CliVersionOptions): string {
  const st = statSync(aws.path);
  const key = `${aws.path}@${st.size}@${st.mtimeMs}`;
  const cache = new LookupCache(o.cacheDir ?? cacheDir(o.env), 'aws-version.json', 16);
  const hit = cache.get(key);
  if (hit) return hit;
  // Parallel calls with a cold cache (an agent starting 20 at once) would each start Python for the same answer
  // and, on a small machine, all time out together. One process asks; the others wait for its cached answer.
  const dir = o.cacheDir ?? cacheDir(o.env);
  const lock = acquireLock(join(dir, 'aws-version.lock'), VERSION_TIMEOUT_MS + 5_000, () => new LookupCache(dir, 'aws-version.json', 16).get(key));
  if (typeof lock === 'string') return lock;
  try {
    const again = new LookupCache(dir, 'aws-version.json', 16).get(key);
    if (again) return again;
    return askVersion(aws, o, cache, key);
  } finally {
    lock?.();
  }
}

function askVersion(aws: AwsBinary, o: CliVersionOptions, cache: LookupCache, key: string): string {
  const run = o.spawnSync ?? nodeSpawnSync;
  // A minimal environment: no caller configuration can change what --version prints.
  const r = run(aws.path, ['--version'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent', LANG: 'C.UTF-8' }, timeout: VERSION_TIMEOUT_MS });
  // spawnSync reports its own time-out as error ETIMEDOUT (the child is killed): say so, rather than that aws
  // printed nothing useful — under load a cold Python start can take that long.
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT') {
    throw new GuardError('aws_not_found', `\`${aws.path} --version\` timed out after ${VERSION_TIMEOUT_MS / 1000} s (the machine may be overloaded; the answer is cached once it comes)`);
  }
  if (r.error) throw new GuardError('aws_not_found', `cannot run \`${aws.path} --version\`: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`);
  const version = parseCliVersion(`${r.stdout ?? ''} ${r.stderr ?? ''}`);
  if (!version) throw new GuardError('aws_not_found', `${aws.path} did not say which AWS CLI it is (\`aws --version\`)`);
  cache.set(key, version);
  return version;
}

/**
 * The release of `aws` and the table that reads argvs for it; throws GuardError('config_invalid', exit 78) when
 * guard-aws cannot read argvs for that release safely. `aws.major` is set from the release (a v2 installed from
 * a distribution's package is a Python script, like v1).
 */
export function resolveCliRelease(aws: AwsBinary, o: CliVersionOptions): CliRelease {
  const installed = installedCliVersion(aws, o);
  let release: CliRelease;
  try {
    release = cliRelease(installed, o.tables);
  } catch (e) {
    if (e instanceof GuardError) throw new GuardError(e.code, `${aws.path}: ${e.message}`);
    throw e;
  }
  aws.major = release.table === 'v1' ? 1 : 2;
  return release;
}
