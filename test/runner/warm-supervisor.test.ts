import { spawnSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { testClis } from '../helpers/aws.js';

/**
 * The warm pool's Python supervisor has its own tests (test/runner/warm/supervisor_test.py, standard-library
 * unittest, no new Python dependency): run here with each CLI's own interpreter, the one the pool starts it with.
 */
function interpreterOf(awsPath: string): string {
  const m = /^#!\s*(\S+)/.exec(readFileSync(realpathSync(awsPath), 'latin1'));
  return m![1]!;
}

describe('warm supervisor (python unittest)', () => {
  test.each(testClis())('$name', (cli) => {
    const r = spawnSync(interpreterOf(cli.path), ['-W', 'ignore', join(__dirname, 'warm', 'supervisor_test.py')], {
      encoding: 'utf8',
      env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', PYTHONDONTWRITEBYTECODE: '1' },
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^OK$/m);
  }, 130_000);
});
