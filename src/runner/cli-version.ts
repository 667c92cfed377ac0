import { spawnSync as nodeSpawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { GuardError } from '../errors.js';
import { modelIndex } from '../invocation/model.js';
import type { AwsBinary } from './find-aws.js';
import { cacheDir } from '../config/paths.js';
import { LookupCache } from './lookup-cache.js';

/**
 * The parser's tables describe one AWS CLI release (data/aws-model/index.json `cliVersion`). Another release may
 * have other operations, arguments or abbreviations — a parser differential between what the broker decides and
 * what aws does. So the aws that runs must be the same major.minor release (patch releases only update service
 * models' documentation and endpoints); anything else is refused until the tables are regenerated
 * (`npm run gen:aws-model`; docs/aws-cli-parsing.md §6.2). `aws --version` costs a Python start, so its answer
 * is cached per binary (path, size, mtime).
 */
export interface CliVersionOptions {
  env: NodeJS.ProcessEnv;
  cacheDir?: string;
  spawnSync?: typeof nodeSpawnSync;
  /** The release the tables were generated from; default: the committed model's. */
  modelVersion?: string;
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
