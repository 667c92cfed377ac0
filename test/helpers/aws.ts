import { spawnSync } from 'node:child_process';

/**
 * The real AWS CLI's Python entry point. `aws` on PATH is a pyenv shim (a bash script); resolving the real
 * script once keeps test runs fast and is what guard-aws's runner does too.
 */
export function realAwsPath(): string {
  const r = spawnSync('pyenv', ['which', 'aws'], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  return 'aws';
}

/**
 * The AWS CLIs the end-to-end tests run against: v1 (first on PATH, pyenv) and v2 (Debian's `awscli` package,
 * installed by scripts/setup-system.sh; GUARD_AWS_TEST_V2_BIN names another). GUARD_AWS_TEST_CLIS=v1 (or v2)
 * restricts a run to one of them; by default both are required, so a missing v2 fails loudly instead of
 * skipping.
 */
export interface TestCli {
  name: 'v1' | 'v2';
  path: string;
  major: 1 | 2;
}
export function testClis(): TestCli[] {
  const only = (process.env.GUARD_AWS_TEST_CLIS ?? 'v1,v2').split(',');
  const all: TestCli[] = [
    { name: 'v1', path: realAwsPath(), major: 1 },
    { name: 'v2', path: process.env.GUARD_AWS_TEST_V2_BIN ?? '/usr/bin/aws', major: 2 },
  ];
  return all.filter((cli) => only.includes(cli.name));
}
export const V1: TestCli = { name: 'v1', path: realAwsPath(), major: 1 };

/** Runs plain aws against an endpoint with fixed test credentials (the baseline the guard is compared to). */
export function plainAws(args: string[], endpoint: string, extraEnv: Record<string, string> = {}, cli: TestCli = V1) {
  return spawnSync(cli.path, ['--endpoint-url', endpoint, ...args], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      HOME: '/nonexistent',
      // v2 pages output through `less` by default; plain output is the baseline.
      AWS_PAGER: '',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      ...extraEnv,
    },
  });
}
