import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestCli } from './aws.js';
import { repoRoot } from './corpus.js';

/**
 * The generated corpus (test/invocation/cli-corpus.py): one argv per API operation of every service of the installed
 * AWS CLI, each run through that CLI's own parser and botocore's parameter validation (stopped before anything is
 * signed or sent). Generating it takes minutes (every operation of every service, ~18,000 for v1), so the result is
 * cached under node_modules/.cache, keyed on the script, the CLI's and botocore's versions and the SAR data the
 * example ARNs come from; it is made at test time and never committed.
 */
export interface CliCorpusRow {
  cli: 'v1' | 'v2';
  command: string;
  operation: string;
  /** botocore service name. */
  service: string;
  /** API operation name. */
  api: string;
  argv: string[] | null;
  /** The real CLI accepted the argv and would have sent the request. */
  ok: boolean;
  /** The API parameters the CLI would have sent (when ok). */
  params?: Record<string, unknown>;
  /** Why the CLI rejected the argv (when not ok). */
  reason?: string;
}

/** The Python the CLI runs on (pyenv's for v1; Debian's package is a Python script too). */
export function cliPython(cli: TestCli): string {
  const first = readFileSync(cli.path, 'utf8').split('\n')[0]!;
  return first.startsWith('#!') ? first.slice(2).trim() : 'python3';
}

const script = join(repoRoot, 'test/invocation/cli-corpus.py');

/** A plain environment: fake credentials, no config, no metadata service, no pager. */
function cliEnv(home: string): Record<string, string> {
  return {
    PATH: '/usr/bin:/bin',
    HOME: home,
    AWS_ACCESS_KEY_ID: 'AKIACORPUSEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'corpus',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: join(home, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
    PAGER: 'cat',
  };
}

/**
 * The corpus for one CLI, optionally restricted to some service commands (`['s3api', 'ec2']`). Generated once per
 * key, then read from the cache.
 */
export function cliCorpus(cli: TestCli, commands: string[] = []): CliCorpusRow[] {
  const python = cliPython(cli);
  const versions = spawnSync(python, ['-c', 'import awscli, botocore; print(awscli.__version__, botocore.__version__)'], { encoding: 'utf8' });
  if (versions.status !== 0) throw new Error(`${cli.name}: cannot import awscli with ${python}: ${versions.stderr}`);
  const key = createHash('sha256')
    .update(readFileSync(script))
    .update(versions.stdout)
    .update(readFileSync(join(repoRoot, 'data/iam/index.json')))
    .update(commands.join(','))
    .digest('hex')
    .slice(0, 16);
  const dir = join(repoRoot, 'node_modules/.cache/guard-aws-cli-corpus');
  const file = join(dir, `${cli.name}-${key}.jsonl`);
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    const work = mkdtempSync(join(tmpdir(), 'guard-cli-corpus-'));
    try {
      const partial = `${file}.${process.pid}.partial`;
      const r = spawnSync(python, [script, partial, ...commands], { cwd: work, env: cliEnv(work), encoding: 'utf8', maxBuffer: 1 << 26 });
      if (r.status !== 0) throw new Error(`cli-corpus.py (${cli.name}) failed: ${r.stderr.slice(-2000)}`);
      // Written whole or not at all: a run stopped halfway leaves no cache entry.
      renameSync(partial, file);
    } finally {
      rmSync(work, { recursive: true, force: true });
      rmSync(`${file}.${process.pid}.partial`, { force: true });
    }
  }
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as CliCorpusRow);
}
