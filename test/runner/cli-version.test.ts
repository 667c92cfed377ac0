import { spawn, spawnSync as realSpawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { installedCliVersion, parseCliVersion, resolveCliRelease } from '../../src/runner/cli-version.js';
import { cliRelease } from '../../src/invocation/cli-release.js';
import { GuardError } from '../../src/errors.js';
import { modelIndex } from '../../src/invocation/model.js';
import { realAwsPath } from '../helpers/aws.js';

const dir = mkdtempSync(join(tmpdir(), 'guard-cli-version-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in aws that only answers --version (a real binary of another release cannot be installed here). */
function fakeAws(version: string): string {
  const p = join(dir, `aws-${version}`);
  writeFileSync(p, `#!/bin/sh\necho "aws-cli/${version} Python/3.11.7 Linux/6 botocore/1.0.0"\n`);
  chmodSync(p, 0o755);
  return p;
}

describe('the aws that runs picks the table; releases the tables cannot read safely are refused', () => {
  it('the real installed v1 and v2 are read with their own tables, without skew', () => {
    const env = { HOME: dir, XDG_CACHE_HOME: join(dir, 'cache-real') };
    expect(installedCliVersion({ path: realAwsPath(), major: 1 }, { env })).toBe(modelIndex('v1').cliVersion);
    expect(resolveCliRelease({ path: realAwsPath(), major: 1 }, { env })).toMatchObject({ table: 'v1', exactOptionNames: false });
    if (existsSync('/usr/bin/aws')) {
      // Debian's v2 is a Python script: the major comes from --version, not from the file.
      const aws = { path: '/usr/bin/aws', major: 1 as 1 | 2 };
      expect(resolveCliRelease(aws, { env })).toMatchObject({ table: 'v2', tableVersion: modelIndex('v2').cliVersion, exactOptionNames: false });
      expect(aws.major).toBe(2);
    }
  });

  it('same minor: as is; newer minor: exact option names; older minor or another major: refused with what to do (78)', () => {
    const env = { HOME: dir, XDG_CACHE_HOME: join(dir, 'cache') };
    const tables = { '1': '1.45.11', '2': '2.9.19' };
    expect(resolveCliRelease({ path: fakeAws('1.45.30'), major: 1 }, { env, tables })).toMatchObject({ table: 'v1', exactOptionNames: false });
    expect(resolveCliRelease({ path: fakeAws('2.31.4'), major: 1 }, { env, tables })).toMatchObject({ table: 'v2', exactOptionNames: true, tableVersion: '2.9.19' });
    expect(resolveCliRelease({ path: fakeAws('1.46.0'), major: 1 }, { env, tables })).toMatchObject({ table: 'v1', exactOptionNames: true });
    for (const [v, hint] of [['1.44.99', 'older'], ['2.8.0', 'older'], ['3.0.0', 'v1 and v2 only']] as const) {
      let err: unknown;
      try {
        resolveCliRelease({ path: fakeAws(v), major: 1 }, { env, tables });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(GuardError);
      expect((err as GuardError).exitCode).toBe(78);
      expect((err as GuardError).message).toContain(hint);
    }
    expect(() => cliRelease('2.9', tables)).toThrow(/not an AWS CLI version/);
  });

  it('asks the binary once, then answers from the cache until the binary changes', () => {
    const env = { HOME: dir, XDG_CACHE_HOME: join(dir, 'cache-count') };
    const path = fakeAws('1.45.2');
    let calls = 0;
    const spawnSync = ((...a: Parameters<typeof import('node:child_process').spawnSync>) => {
      calls++;
      return require('node:child_process').spawnSync(...a);
    }) as typeof import('node:child_process').spawnSync;
    installedCliVersion({ path, major: 1 }, { env, spawnSync });
    installedCliVersion({ path, major: 1 }, { env, spawnSync });
    expect(calls).toBe(1);
    writeFileSync(path, `#!/bin/sh\necho "aws-cli/1.47.0 Python/3"\n`);
    expect(installedCliVersion({ path, major: 1 }, { env, spawnSync })).toBe('1.47.0');
    expect(calls).toBe(2);
  });

  // issue 12 item 2: a time-out was reported as "did not say which AWS CLI it is".
  it('a --version that times out is named a time-out (the real spawnSync time-out, shortened)', () => {
    const slow = join(dir, 'aws-slow');
    writeFileSync(slow, '#!/bin/sh\nsleep 5\n');
    chmodSync(slow, 0o755);
    const env = { HOME: dir, XDG_CACHE_HOME: join(dir, 'cache-slow') };
    const spawnSync = ((cmd: string, args: string[], o: object) =>
      // The real spawnSync, with the limit cut to 200 ms so the test is quick.
      realSpawnSync(cmd, args, { ...o, timeout: 200 })) as unknown as typeof realSpawnSync;
    let e: unknown;
    try {
      installedCliVersion({ path: slow, major: 1 }, { env, spawnSync });
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(GuardError);
    expect((e as GuardError).code).toBe('aws_not_found');
    expect((e as GuardError).message).toMatch(/--version` timed out after 30 s/);
  });

  // issue 12 item 2: 20 cold-cache calls at once each started Python for the same answer and timed out together.
  it('parallel processes with a cold cache ask the binary once; the others wait for the cached answer (needs a build)', async () => {
    const counter = join(dir, 'asked');
    const slow = join(dir, 'aws-counting');
    writeFileSync(slow, `#!/bin/sh\necho x >> ${counter}\nsleep 0.5\necho "aws-cli/1.45.11 Python/3.11.7"\n`);
    chmodSync(slow, 0o755);
    const mod = join(__dirname, '../../dist/runner/cli-version.js');
    const script = `import(${JSON.stringify(mod)}).then((m) => process.stdout.write(m.installedCliVersion({ path: ${JSON.stringify(slow)}, major: 1 }, { env: { HOME: ${JSON.stringify(dir)}, XDG_CACHE_HOME: ${JSON.stringify(join(dir, 'cache-par'))} } })))`;
    const outs = await Promise.all(
      Array.from({ length: 8 }, () => new Promise<string>((res) => {
        const c = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        c.stdout.on('data', (b: Buffer) => (out += b));
        c.on('close', () => res(out));
      })),
    );
    expect(outs).toEqual(Array(8).fill('1.45.11'));
    expect(readFileSync(counter, 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('parses the version line', () => {
    expect(parseCliVersion('aws-cli/1.45.11 Python/3.11.7 Linux/6.18 botocore/1.43.11')).toBe('1.45.11');
    expect(parseCliVersion('something else')).toBeUndefined();
  });
});
