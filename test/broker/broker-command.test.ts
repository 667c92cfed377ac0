import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorResponse, GrantResponse } from '../../src/api/types.js';
import { startMoto, type Moto } from '../helpers/moto.js';
import { startTestIdp, type TestIdp } from './helpers/idp.js';

// End to end through the built CLI: `node bin/guard-aws.js broker --config FILE` with the real parser, the shipped
// policies/default.yaml, the real token verifier, the default STS client (broker credentials from its environment)
// against moto_server, and SQLite. Needs dist/ (npm test builds it).
const repo = resolve(__dirname, '../..');
const bin = join(repo, 'bin/guard-aws.js');
const ACCOUNT = '123456789012';
const KEY = Buffer.alloc(32, 9).toString('base64url');

let moto: Moto;
let idp: TestIdp;
let dir: string;
let child: ChildProcess;
let url: string;
let stderr = '';

function writeConfig(extra = ''): string {
  const file = join(dir, 'broker.yaml');
  writeFileSync(
    file,
    `listen: { host: 127.0.0.1, port: 0 }
issuer: ${idp.issuer}
audience: ${idp.audience}
clientId: guard-aws-cli
jwksUri: ${idp.jwksUri}
algorithms: [ES256]
policies: [${join(repo, 'policies/default.yaml')}]
storage: { sqlite: state/broker.db }
execution: { people: local, workloads: local }   # these tests are about grants handed to the caller
targets:
  - name: dev
    roleArn: arn:aws:iam::${ACCOUNT}:role/guard-dev
    region: us-east-1
    endpoint: ${moto.endpoint}
${extra}`,
  );
  return file;
}

const env = () => ({
  PATH: process.env.PATH,
  HOME: dir,
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_CONFIG_FILE: '/dev/null',
  AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  AWS_EC2_METADATA_DISABLED: 'true',
});

beforeAll(async () => {
  if (!existsSync(join(repo, 'dist/broker/run.js'))) throw new Error('dist/ is not built: run `npm run build` first');
  dir = mkdtempSync(join(tmpdir(), 'guard-broker-cmd-'));
  moto = await startMoto();
  idp = await startTestIdp();
  child = spawn(process.execPath, [bin, 'broker', '--config', writeConfig()], { env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
  url = await new Promise<string>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`broker did not start: ${stderr}`)), 30_000);
    child.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString();
      const m = /guard-aws broker listening on (http:\/\/\S+)/.exec(stderr);
      if (m) {
        clearTimeout(t);
        res(m[1]!);
      }
    });
    child.once('exit', (code) => rej(new Error(`broker exited ${code}: ${stderr}`)));
  });
});

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await idp?.close();
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function grant(argv: string[]): Promise<Response> {
  const token = await idp.sign({ sub: 'dana@example.com', groups: ['developers'] });
  return fetch(`${url}/v1/grants`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ argv, transcriptKey: KEY }),
  });
}

describe('guard-aws broker --config FILE', () => {
  it('serves /v1/config and /healthz', async () => {
    const cfg = await (await fetch(`${url}/v1/config`)).json();
    expect(cfg).toMatchObject({ issuer: idp.issuer, clientId: 'guard-aws-cli', targets: [{ name: 'dev', account: ACCOUNT, default: true }] });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('grants a read with the real parser and default policy; the credentials work and are scoped', async () => {
    const res = await grant(['dynamodb', 'describe-table', '--table-name', 'Orders']);
    expect(res.status).toBe(200);
    const g = (await res.json()) as GrantResponse;
    expect(g.rule).toBe('allow-reads');
    expect(JSON.parse(g.sessionPolicy)).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: 'dynamodb:DescribeTable',
          Resource: `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/Orders`,
          Condition: { StringEquals: { 'aws:RequestedRegion': 'us-east-1' } },
        },
      ],
    });
    const sts = new STSClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: g.credentials.accessKeyId, secretAccessKey: g.credentials.secretAccessKey, sessionToken: g.credentials.sessionToken } });
    const who = await sts.send(new GetCallerIdentityCommand({}));
    sts.destroy();
    expect(who.Arn).toBe(`arn:aws:sts::${ACCOUNT}:assumed-role/guard-dev/dana@example.com.${g.grantId}`);
  });

  it('denies what the default policy denies, with its rule', async () => {
    const res = await grant(['iam', 'create-access-key', '--user-name', 'bob']);
    expect(res.status).toBe(403);
    const e = ((await res.json()) as ErrorResponse).error;
    expect(e.code).toBe('denied');
    expect(e.rule).toMatch(/^deny-/);
    const ep = await grant(['ec2', 'describe-instances', '--endpoint-url', 'http://evil.example']);
    expect(ep.status).toBe(403);
  });

  it('refuses what needs an approval (until the approval flow is mounted)', async () => {
    const res = await grant(['s3api', 'delete-bucket', '--bucket', 'x']);
    expect(res.status).toBe(403);
    expect(((await res.json()) as ErrorResponse).error.code).toBe('approval_required');
  });

  it('unparseable → 400', async () => {
    const res = await grant(['s3api', 'no-such-operation']);
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorResponse).error.code).toBe('unparseable');
  });

  it('SIGTERM closes it gracefully (exit 0) and the log holds no credentials', async () => {
    const res = await grant(['sts', 'get-caller-identity']);
    const g = (await res.json()) as GrantResponse;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain('shutting down');
    expect(stderr).toContain('"msg":"grant issued"');
    expect(stderr).not.toContain(g.credentials.secretAccessKey);
    expect(stderr).not.toContain(g.credentials.sessionToken);
  });

  it('a bad config file exits 78 with file:line:col', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'issuer: https://x\naudience: a\nclientId: c\npolicies: [p]\nstorage: { sqlite: s }\ntargets:\n  - name: t\n    roleArn: nope\n    region: us-east-1\n');
    const r = spawnSync(process.execPath, [bin, 'broker', '--config', file], { env: env(), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(78);
    expect(r.stderr.trim()).toBe(`guard-aws: ${file}:8:14: targets[0].roleArn: must be an IAM role ARN (arn:aws:iam::123456789012:role/NAME)`);
  });

  it('a missing --config is a usage error (64)', () => {
    const r = spawnSync(process.execPath, [bin, 'broker'], { env: env(), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(64);
  });
});
