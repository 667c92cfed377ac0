import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawn } from 'node:child_process';
import { startMoto, type Moto } from '../helpers/moto.js';
import { assertRunnableArgv, commandWords } from '../../src/runner/index.js';
import { isGuardError } from '../../src/errors.js';
import { run, settledRequestCount } from './helpers.js';

function codeOf(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (e) {
    return isGuardError(e) ? e.code : 'not-a-guard-error';
  }
}

describe('argv the runner refuses on its own (defence in depth)', () => {
  const refused: [string, string[], string][] = [
    ['--endpoint-url', ['--endpoint-url', 'http://evil', 's3', 'ls'], 'denied'],
    ['--endpoint-url=', ['s3', 'ls', '--endpoint-url=http://evil'], 'denied'],
    ['--endp (abbreviation)', ['sts', 'get-caller-identity', '--endp', 'http://evil'], 'denied'],
    ['--e (abbreviation)', ['sts', 'get-caller-identity', '--e', 'http://evil'], 'denied'],
    ['--profile', ['--profile', 'admin', 'sts', 'get-caller-identity'], 'denied'],
    ['--prof', ['sts', '--prof', 'admin', 'get-caller-identity'], 'denied'],
    ['--p after the operation', ['sts', 'get-caller-identity', '--p', 'admin'], 'denied'],
    ['--no-sign-request', ['s3', 'cp', 'x', 's3://b/x', '--no-sign-request'], 'denied'],
    ['--no-sign', ['s3', 'ls', '--no-sign'], 'denied'],
    ['--debug', ['--debug', 'sts', 'get-caller-identity'], 'denied'],
    ['--deb', ['sts', 'get-caller-identity', '--deb'], 'denied'],
    ['--ca-bundle', ['s3', 'ls', '--ca-bundle', '/tmp/evil.pem'], 'denied'],
    ['--ca', ['s3', 'ls', '--ca', '/tmp/evil.pem'], 'denied'],
    ['--no-verify-ssl', ['s3', 'ls', '--no-verify-ssl'], 'denied'],
    ['--no-v', ['s3', 'ls', '--no-v'], 'denied'],
    ['--no (ambiguous prefix)', ['s3', 'ls', '--no'], 'denied'],
    ['-- separator', ['s3', 'ls', '--', '--endpoint-url'], 'parse'],
    ['configure set', ['configure', 'set', 'region', 'x'], 'denied'],
    ['configure after a global', ['--region', 'us-east-1', 'configure', 'list'], 'denied'],
    ['history', ['history', 'show'], 'denied'],
  ];
  test.each(refused)('%s', (_n, argv, code) => {
    expect(codeOf(() => assertRunnableArgv(argv))).toBe(code);
  });

  test('ordinary invocations pass, including option values that merely start like a forbidden name', () => {
    for (const argv of [
      ['sts', 'get-caller-identity'],
      ['--region', 'eu-west-1', 's3api', 'list-buckets', '--output', 'table', '--no-paginate'],
      ['iam', 'create-policy', '--policy-name', 'p', '--policy-document', '{}'],
      ['secretsmanager', 'create-secret', '--name', 'x', '--description', '--profile is a word here', '--secret-string=--debug'],
      ['ec2', 'describe-instances', '--dry-run', '--no-dry-run'],
      ['s3', 'cp', '-', 's3://b/k'],
    ]) {
      expect(codeOf(() => assertRunnableArgv(argv))).toBeNull();
    }
  });

  test('command words skip global options wherever they stand', () => {
    expect(commandWords(['--region', 'x', '--output=json', 'ecr', '--no-paginate', 'get-login-password'])).toEqual({ service: 'ecr', operation: 'get-login-password' });
    expect(commandWords(['s3', '--query', 'x', 'ls'])).toEqual({ service: 's3', operation: 'ls' });
  });
});

describe('refused argv never starts aws and never reaches AWS', () => {
  let moto: Moto;
  beforeAll(async () => {
    moto = await startMoto();
  });
  afterAll(async () => {
    await moto.stop();
  });

  test.each([
    [['sts', 'get-caller-identity', '--endp', 'http://127.0.0.1:9']],
    [['sts', 'get-caller-identity', '--p', 'default']],
    [['--no-sign-request', 's3', 'ls']],
    [['--debug', 'sts', 'get-caller-identity']],
    [['--ca-bundle', '/etc/hostname', 'sts', 'get-caller-identity']],
    [['--no-verify-ssl', 'sts', 'get-caller-identity']],
    [['configure', 'list']],
  ])('%j', async (argv) => {
    let spawned = 0;
    const spy = ((...a: Parameters<typeof spawn>) => {
      spawned++;
      return spawn(...a);
    }) as typeof spawn;
    const before = await settledRequestCount(moto);
    const err = await run({
      argv,
      credentials: { accessKeyId: 'ASIAEXAMPLEEXAMPLE01', secretAccessKey: 'x'.repeat(40), sessionToken: 'tok' },
      endpoint: moto.endpoint,
      spawn: spy,
    }).catch((e: unknown) => e);
    expect(isGuardError(err) && err.code).toBe('denied');
    expect(spawned).toBe(0);
    expect(await settledRequestCount(moto)).toBe(before);
  });
});
