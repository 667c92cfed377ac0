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

/** Runs plain aws against an endpoint with fixed test credentials (the baseline the guard is compared to). */
export function plainAws(args: string[], endpoint: string, extraEnv: Record<string, string> = {}) {
  return spawnSync(realAwsPath(), ['--endpoint-url', endpoint, ...args], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      HOME: '/nonexistent',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      ...extraEnv,
    },
  });
}
