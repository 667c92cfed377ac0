import { spawnSync as nodeSpawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { GuardError } from '../errors.js';
import { type CliRelease, type TableVersions, cliRelease } from '../invocation/cli-release.js';
import type { AwsBinary } from './find-aws.js';
import { cacheDir } from '../config/paths.js';
import { LookupCache } from './lookup-cache.js';

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

export function installedCliVersion(aws: AwsBinary, o: CliVersionOptions): string {
  const st = statSync(aws.path);
  const key = `${aws.path}@${st.size}@${st.mtimeMs}`;
  const cache = new LookupCache(o.cacheDir ?? cacheDir(o.env), 'aws-version.json', 16);
  const hit = cache.get(key);
  if (hit) return hit;
  const run = o.spawnSync ?? nodeSpawnSync;
  // A minimal environment: no caller configuration can change what --version prints.
  const r = run(aws.path, ['--version'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent', LANG: 'C.UTF-8' }, timeout: 30_000 });
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
