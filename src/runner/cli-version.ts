import { spawnSync as nodeSpawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { GuardError } from '../errors.js';
import { modelIndex } from '../invocation/model.js';
import type { AwsBinary } from './find-aws.js';

/**
 * The parser's tables describe one AWS CLI release (data/aws-model/index.json `cliVersion`). Another release may
 * have other operations, arguments or abbreviations — a parser differential between what the broker decides and
 * what aws does. So the aws that runs must be the same major.minor release (patch releases only update service
 * models' documentation and endpoints); anything else is refused until the tables are regenerated
 * (`npm run gen:aws-model`). Reference: aws-cli-parsing.md §5.2 ("pin the CLI binary … refuse to run if it
 * changed"). `aws --version` costs a Python start, so its answer is cached per binary (path, size, mtime).
 */
export interface CliVersionOptions {
  env: NodeJS.ProcessEnv;
  cacheDir?: string;
  spawnSync?: typeof nodeSpawnSync;
  /** The release the tables were generated from; default: the committed model's. */
  modelVersion?: string;
}

function cacheDirOf(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(env.HOME || homedir(), '.cache');
  return join(base, 'guard-aws');
}

/** `aws-cli/1.45.11 Python/3.11.7 …` → `1.45.11`. */
export function parseCliVersion(text: string): string | undefined {
  return /aws-cli\/(\d+\.\d+\.\d+)/.exec(text)?.[1];
}

export function installedCliVersion(aws: AwsBinary, o: CliVersionOptions): string {
  const st = statSync(aws.path);
  const key = `${aws.path}@${st.size}@${st.mtimeMs}`;
  const dir = o.cacheDir ?? cacheDirOf(o.env);
  const file = join(dir, 'aws-version.json');
  let cache: Record<string, string> = {};
  try {
    cache = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  } catch {
    cache = {};
  }
  if (cache[key]) return cache[key]!;
  const run = o.spawnSync ?? nodeSpawnSync;
  // A minimal environment: no caller configuration can change what --version prints.
  const r = run(aws.path, ['--version'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent', LANG: 'C.UTF-8' }, timeout: 30_000 });
  const version = parseCliVersion(`${r.stdout ?? ''} ${r.stderr ?? ''}`);
  if (!version) throw new GuardError('aws_not_found', `${aws.path} did not say which AWS CLI it is (\`aws --version\`)`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const entries = Object.entries(cache).filter(([k]) => k !== key).slice(-15);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(Object.fromEntries([...entries, [key, version]])), { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    // A cache that cannot be written only costs time.
  }
  return version;
}

const majorMinor = (v: string) => v.split('.').slice(0, 2).join('.');

export function assertCliMatchesModel(aws: AwsBinary, o: CliVersionOptions): void {
  const model = o.modelVersion ?? modelIndex().cliVersion;
  const installed = installedCliVersion(aws, o);
  if (majorMinor(installed) !== majorMinor(model)) {
    throw new GuardError(
      'config_invalid',
      `${aws.path} is aws-cli/${installed}, but guard-aws's command tables describe aws-cli/${model}; run \`npm run gen:aws-model\` with that CLI installed, or point GUARD_AWS_AWS_BIN at aws-cli ${majorMinor(model)}.x`,
    );
  }
}
