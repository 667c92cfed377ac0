import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMoto, type Moto } from '../helpers/moto.js';
import { plainAws } from '../helpers/aws.js';
import { MASK } from '../../src/masking/index.js';
import { run, scopedCredentials } from './helpers.js';
import type { ScopedCredentials } from '../../src/runner/index.js';

/**
 * Secrets the service models know about (data/sensitive-outputs.json), end to end: the real AWS CLI v1 against
 * real moto, json, text and table. Masked by their path in the response, so generic names elsewhere (`Value`,
 * `value`, `Variables`) and enum constants under secret names (`TokenValidityUnits.AccessToken: "hours"`) stay
 * as plain aws prints them. test/masking/sensitive-outputs.test.ts covers every operation on parsed responses.
 */

let moto: Moto;
let creds: ScopedCredentials;
let dir: string;
let poolId: string;
let clientId: string;
let clientSecret: string;
let templateId: string;
let instanceId: string;
const ENV_SECRET = 'Lambda-Env-Secret-For-Masking-11';
/** Not a secret, but which variables hold secrets is not known: every value is masked. */
const ENV_PLAIN = 'stage-name-dev-13';
const USER_DATA = Buffer.from('#!/bin/sh\nexport DB_PASSWORD=UserData-Secret-12\n').toString('base64');
const FORMATS = ['json', 'text', 'table'] as const;
const plain = (args: string[]) => plainAws(args, moto.endpoint);

function setup(args: string[]): string {
  const r = plain([...args, '--output', 'json']);
  if (r.status !== 0) throw new Error(`setup ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  moto = await startMoto();
  creds = scopedCredentials(moto.endpoint);
  dir = mkdtempSync(join(tmpdir(), 'guard-aws-models-e2e-'));
  // The smallest valid zip archive (an empty end-of-central-directory record): moto stores, never runs, it.
  writeFileSync(join(dir, 'fn.zip'), Buffer.concat([Buffer.from('PK\x05\x06', 'latin1'), Buffer.alloc(18)]));
  setup(['iam', 'create-role', '--role-name', 'fn-role', '--assume-role-policy-document', '{"Version":"2012-10-17","Statement":[]}']);
  setup([
    'lambda', 'create-function', '--function-name', 'billing', '--runtime', 'python3.12', '--handler', 'app.handler',
    '--role', 'arn:aws:iam::123456789012:role/fn-role', '--zip-file', `fileb://${join(dir, 'fn.zip')}`,
    '--environment', JSON.stringify({ Variables: { DB_PASSWORD: ENV_SECRET, STAGE: ENV_PLAIN } }),
  ]);
  poolId = JSON.parse(setup(['cognito-idp', 'create-user-pool', '--pool-name', 'users'])).UserPool.Id;
  const client = JSON.parse(
    setup([
      'cognito-idp', 'create-user-pool-client', '--user-pool-id', poolId, '--client-name', 'web', '--generate-secret',
      '--token-validity-units', 'AccessToken=hours,IdToken=minutes,RefreshToken=days',
    ]),
  ).UserPoolClient;
  clientId = client.ClientId;
  clientSecret = client.ClientSecret;
  templateId = JSON.parse(
    setup(['ec2', 'create-launch-template', '--launch-template-name', 'web', '--launch-template-data', JSON.stringify({ InstanceType: 't3.micro', UserData: USER_DATA })]),
  ).LaunchTemplate.LaunchTemplateId;
  const image = JSON.parse(setup(['ec2', 'describe-images', '--owners', 'amazon', '--max-items', '1'])).Images[0].ImageId;
  instanceId = JSON.parse(
    setup(['ec2', 'run-instances', '--image-id', image, '--instance-type', 't3.micro', '--user-data', Buffer.from(USER_DATA, 'base64').toString()]),
  ).Instances[0].InstanceId;
});

afterAll(async () => {
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function guarded(argv: string[]) {
  const r = await run({ argv, credentials: creds, endpoint: moto.endpoint });
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  expect(r.recorded.stdout).toBe(r.stdout);
  return r.stdout;
}

/** Guarded output: the secret gone, the mask there, and (json, text) exactly plain aws's output with the secret masked. */
async function expectMasked(argv: string[], secret: string, output: (typeof FORMATS)[number], alsoMasked: string[] = []) {
  const full = [...argv, '--output', output];
  const p = plain(full).stdout;
  expect(p).toContain(secret);
  const out = await guarded(full);
  expect(out).not.toContain(secret);
  expect(out).toContain(MASK);
  // Table columns are sized from the (masked) values, so only json and text compare byte for byte.
  if (output !== 'table') expect(out).toBe([secret, ...alsoMasked].reduce((text, s) => text.split(s).join(MASK), p));
  return out;
}

describe('lambda get-function-configuration: environment variables', () => {
  test.each(FORMATS)('--output %s', async (output) => {
    const out = await expectMasked(['lambda', 'get-function-configuration', '--function-name', 'billing'], ENV_SECRET, output, [ENV_PLAIN]);
    // Every value is masked, the names stay (text output prints a map's values only).
    if (output !== 'text') expect(out).toContain('DB_PASSWORD');
    expect(out).not.toContain(ENV_PLAIN);
  });
  test('list-functions too', async () => {
    await expectMasked(['lambda', 'list-functions'], ENV_SECRET, 'text', [ENV_PLAIN]);
  });
});

describe('cognito-idp describe-user-pool-client: ClientSecret', () => {
  test.each(FORMATS)('--output %s', async (output) => {
    const out = await expectMasked(['cognito-idp', 'describe-user-pool-client', '--user-pool-id', poolId, '--client-id', clientId], clientSecret, output);
    // The client id is an identifier (botocore marks it sensitive, guard-aws keeps it); the token validity
    // units are enum constants under secret-sounding names.
    expect(out).toContain(clientId);
    expect(out).toContain('hours');
    expect(out).toContain('minutes');
    expect(out).toContain('days');
    if (output === 'json') {
      const c = JSON.parse(out).UserPoolClient;
      expect(c.TokenValidityUnits).toEqual({ AccessToken: 'hours', IdToken: 'minutes', RefreshToken: 'days' });
      expect(c.ClientSecret).toBe(MASK);
    }
  });
});

describe('ec2 describe-launch-template-versions: UserData', () => {
  test.each(FORMATS)('--output %s', async (output) => {
    const out = await expectMasked(['ec2', 'describe-launch-template-versions', '--launch-template-id', templateId], USER_DATA, output);
    expect(out).toContain('t3.micro');
  });
});

describe('ec2 describe-instance-attribute --attribute userData: UserData.Value (curated: the model does not mark it)', () => {
  test.each(FORMATS)('--output %s', async (output) => {
    const out = await expectMasked(['ec2', 'describe-instance-attribute', '--instance-id', instanceId, '--attribute', 'userData'], USER_DATA, output);
    expect(out).toContain(instanceId);
  });
  test('another attribute\'s Value is left alone', async () => {
    const argv = ['ec2', 'describe-instance-attribute', '--instance-id', instanceId, '--attribute', 'instanceType', '--output', 'json'];
    const out = await guarded(argv);
    expect(JSON.parse(out).InstanceType.Value).toBe('t3.micro');
    expect(out).toBe(plain(argv).stdout);
  });
});
