import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, generateKeyPair, exportJWK, decodeJwt, type JWK } from 'jose';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plainAwsAt, startStack, type Stack } from './harness.js';
import { testClis } from '../helpers/aws.js';
import { settledRequestCount } from '../runner/helpers.js';

/**
 * Issue 3, end to end on real parts: the built CLI, the real aws, moto as AWS, the embedded oidc-provider, the
 * assembled broker over HTTP with its SQLite file.
 */
let s: Stack;
let alice: string;

beforeAll(async () => {
  s = await startStack();
  alice = await s.token('alice');
  // Fixtures made with plain aws straight at moto (not through the guard).
  expect(plainAwsAt(s, ['s3api', 'create-bucket', '--bucket', 'e2e-data']).status).toBe(0);
  expect(plainAwsAt(s, ['s3api', 'put-object', '--bucket', 'e2e-data', '--key', 'hello.txt', '--body', '/etc/hostname']).status).toBe(0);
}, 120_000);
afterAll(async () => s?.close());

describe.each(testClis())('on AWS CLI $name', (cli) => {
  // The CLI the guard runs (GUARD_AWS_AWS_BIN); the client tells the broker its release, both read the argv
  // with that release's table.
  const env = { GUARD_AWS_AWS_BIN: cli.path };
  const formats = cli.major === 2 ? ['json', 'text', 'table', 'yaml'] : ['json', 'text', 'table'];

  it('an allowed call prints exactly what plain aws prints, in every output format', async () => {
    for (const output of formats) {
      const args = ['s3api', 'list-objects-v2', '--bucket', 'e2e-data', '--output', output];
      const guarded = await s.run(args, { token: alice, env });
      const plain = plainAwsAt(s, args, cli.path);
      expect(guarded.stderr, output).toBe('');
      expect(guarded.status).toBe(0);
      expect(plain.status).toBe(0);
      expect(guarded.stdout, output).toBe(plain.stdout);
    }
  });

  it('a denied call exits 77 and AWS receives nothing; so do bypass options', async () => {
    // moto logs asynchronously: the previous test's requests must have arrived before counting.
    const before = await settledRequestCount(s.moto);
    const denied = await s.run(['iam', 'create-user', '--user-name', `mallory-${cli.name}`], { token: alice, env });
    expect(denied.status, denied.stderr).toBe(77);
    for (const args of [
      ['--endpoint-url', 'http://127.0.0.1:9', 's3', 'ls'],
      ['s3', 'ls', '--endp', 'http://127.0.0.1:9'],
      ['--no-sign-request', 's3', 'ls'],
    ]) {
      const r = await s.run(args, { token: alice, env });
      expect(r.status, args.join(' ')).toBe(77);
    }
    expect(await settledRequestCount(s.moto)).toBe(before);
  });
});

describe('AWS CLI v2 specifics, end to end', () => {
  const v2 = testClis().find((c) => c.major === 2);
  const env = () => ({ GUARD_AWS_AWS_BIN: v2!.path });
  it.runIf(v2)('--no-cli-pager and --cli-binary-format run; --cli-auto-prompt is refused (64) before the broker', async () => {
    const ok = await s.run(['--no-cli-pager', '--cli-binary-format', 'raw-in-base64-out', 'sts', 'get-caller-identity'], { token: alice, env: env() });
    expect(ok.status, ok.stderr).toBe(0);
    const before = await settledRequestCount(s.moto);
    const prompt = await s.run(['--cli-auto-prompt', 'sts', 'get-caller-identity'], { token: alice, env: env() });
    expect(prompt.status).toBe(64);
    expect(prompt.stderr).toMatch(/interactive/);
    expect(await settledRequestCount(s.moto)).toBe(before);
  });

  it.runIf(v2)('a v2-only command (ddb select) is read with the v2 table and runs', async () => {
    expect(plainAwsAt(s, ['dynamodb', 'create-table', '--table-name', 'e2e-t', '--attribute-definitions', 'AttributeName=k,AttributeType=S', '--key-schema', 'AttributeName=k,KeyType=HASH', '--billing-mode', 'PAY_PER_REQUEST']).status).toBe(0);
    const r = await s.run(['ddb', 'select', 'e2e-t'], { token: alice, env: env() });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(plainAwsAt(s, ['ddb', 'select', 'e2e-t'], v2!.path).stdout);
    // On v1 the same argv is refused as v2-only.
    const v1 = await s.run(['ddb', 'select', 'e2e-t'], { token: alice });
    expect(v1.status).toBe(64);
    expect(v1.stderr).toMatch(/only in AWS CLI v2/);
  });

  it.runIf(v2)('version skew: a newer 2.x runs full option names and refuses abbreviations; an unknown major is refused (78)', async () => {
    // A real v2 that reports another release: what a user with aws-cli/2.31 (or a future 3.0) gets.
    const dir = mkdtempSync(join(tmpdir(), 'guard-aws-skew-'));
    const wrapper = (version: string) => {
      const p = join(dir, `aws-${version}`);
      writeFileSync(p, `#!/bin/sh
if [ "$1" = --version ]; then echo "aws-cli/${version} Python/3.11 Linux/6 exe/x86_64"; exit 0; fi
exec ${v2!.path} "$@"
`);
      chmodSync(p, 0o755);
      return p;
    };
    const newer = { GUARD_AWS_AWS_BIN: wrapper('2.31.4') };
    const full = await s.run(['s3api', 'list-objects-v2', '--bucket', 'e2e-data', '--output', 'text'], { token: alice, env: newer });
    expect(full.status, full.stderr).toBe(0);
    expect(full.stdout).toBe(plainAwsAt(s, ['s3api', 'list-objects-v2', '--bucket', 'e2e-data', '--output', 'text'], v2!.path).stdout);
    const abbreviated = await s.run(['s3api', 'list-objects-v2', '--buck', 'e2e-data'], { token: alice, env: newer });
    expect(abbreviated.status).toBe(64);
    expect(abbreviated.stderr).toMatch(/--buck is an abbreviation.*write the option in full/);
    const future = await s.run(['sts', 'get-caller-identity'], { token: alice, env: { GUARD_AWS_AWS_BIN: wrapper('3.0.0') } });
    expect(future.status).toBe(78);
    expect(future.stderr).toMatch(/v1 and v2 only/);
    const older = await s.run(['sts', 'get-caller-identity'], { token: alice, env: { GUARD_AWS_AWS_BIN: wrapper('2.8.0') } });
    expect(older.status).toBe(78);
    expect(older.stderr).toMatch(/older than/);
  });

  it('the broker reads the argv with the table of the release the client names, and refuses one it has none for', async () => {
    const { BrokerClient } = await import('../../src/api/broker-client.js');
    const { createTranscriptKey } = await import('../../src/transcript/sign.js');
    const client = new BrokerClient(s.broker.url);
    const ask = (argv: string[], cliVersion?: string) =>
      client.grant(alice, { argv, transcriptKey: createTranscriptKey().publicKey, ...(cliVersion ? { cliVersion } : {}) });
    const v2Grant = await ask(['ddb', 'select', 'e2e-t'], '2.9.19');
    expect(v2Grant.kind).toBe('granted');
    if (v2Grant.kind === 'granted') expect(v2Grant.grant.cliTable).toMatch(/^2\./);
    // The same argv for v1 (named, or by an older client naming none) is not a command there.
    await expect(ask(['ddb', 'select', 'e2e-t'], '1.45.11')).rejects.toMatchObject({ code: 'parse' });
    await expect(ask(['ddb', 'select', 'e2e-t'])).rejects.toMatchObject({ code: 'parse' });
    // A newer 2.x release: abbreviations refused at the broker too, whatever the client did.
    await expect(ask(['s3api', 'list-objects-v2', '--buck', 'e2e-data'], '2.31.4')).rejects.toMatchObject({ code: 'parse' });
    await expect(ask(['sts', 'get-caller-identity'], '3.0.0')).rejects.toThrow(/v1 and v2 only/);
  });
});

describe('allowed call', () => {
  it('runs with scoped session credentials from the target role, not the caller’s', async () => {
    const r = await s.run(['sts', 'get-caller-identity'], { token: alice, env: { AWS_ACCESS_KEY_ID: 'AKIACALLEREXAMPLE001', AWS_SECRET_ACCESS_KEY: 'x' } });
    expect(r.status).toBe(0);
    const id = JSON.parse(r.stdout) as { Arn: string };
    expect(id.Arn).toMatch(/assumed-role\/dev\//);
  });

  it('records the grant with a session policy that allows exactly the call', async () => {
    const r = await s.run(['s3api', 'get-object', '--bucket', 'e2e-data', '--key', 'hello.txt', '/dev/null'], { token: alice });
    expect(r.status, r.stderr).toBe(0);
    const grants = await s.broker.broker.ctx.store.listGrants({ limit: 50 });
    const g = grants.find((x) => x.argv.includes('get-object'));
    expect(g).toBeDefined();
    const policy = JSON.parse(g!.sessionPolicy) as { Statement: { Effect: string; Action: string | string[]; Resource: string | string[] }[] };
    const allows = policy.Statement.filter((st) => st.Effect === 'Allow');
    const actions = allows.flatMap((st) => [st.Action].flat());
    const resources = allows.flatMap((st) => [st.Resource].flat());
    expect(actions).toEqual(['s3:GetObject']);
    expect(resources).toEqual(['arn:aws:s3:::e2e-data/hello.txt']);
    // Never the credentials.
    expect(JSON.stringify(g)).not.toMatch(/secretAccessKey|sessionToken/i);
  });
});

describe('files read by parameters', () => {
  it('aws sends exactly the file content the broker decided on (pinned), from the caller’s ~', async () => {
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const home = `${s.dir}/home`;
    mkdirSync(home, { recursive: true });
    // --cli-input-json hides the parameters: the broker must see the bucket and key, and aws must read the same.
    writeFileSync(`${home}/input.json`, JSON.stringify({ Bucket: 'e2e-data', Key: 'hello.txt' }));
    const r = await s.run(['s3api', 'head-object', '--cli-input-json', 'file://~/input.json'], { token: alice });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveProperty('ContentLength');
    const grants = await s.broker.broker.ctx.store.listGrants({ limit: 50 });
    const g = grants.find((x) => x.argv.includes('head-object'))!;
    expect(g.sessionPolicy).toContain('arn:aws:s3:::e2e-data/hello.txt');
  });
});

describe('denied call', () => {
  it('exits 77 with the rule, and AWS receives nothing', async () => {
    const before = s.moto.requests().length;
    const r = await s.run(['iam', 'create-user', '--user-name', 'mallory'], { token: alice });
    expect(r.status, r.stderr).toBe(77);
    expect(r.stderr).toMatch(/deny-iam-writes/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(s.moto.requests().slice(before)).toEqual([]);
  });

  it('an endpoint override is refused before anything runs', async () => {
    const before = s.moto.requests().length;
    for (const args of [
      ['--endpoint-url', 'http://127.0.0.1:9', 's3', 'ls'],
      ['s3', 'ls', '--endp', 'http://127.0.0.1:9'],
      ['--no-sign-request', 's3', 'ls'],
    ]) {
      const r = await s.run(args, { token: alice });
      expect(r.status, args.join(' ')).toBe(77);
    }
    expect(s.moto.requests().slice(before)).toEqual([]);
  });

  it('an unparseable invocation exits 64 naming the token', async () => {
    const r = await s.run(['s3api', 'list-objects-v2', '--bucket', 'e2e-data', '--no-such-option', 'x'], { token: alice });
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/--no-such-option/);
  });
});

describe('tokens', () => {
  async function forged(claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    void publicKey;
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'forged', ...header }).sign(privateKey);
  }

  it('forged, expired, wrong-audience and alg:none tokens are rejected with 67', async () => {
    const real = decodeJwt(alice);
    const now = Math.floor(Date.now() / 1000);
    const noneToken = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(
      JSON.stringify({ ...real, exp: now + 600 }),
    ).toString('base64url')}.`;
    const tokens = {
      forged: await forged({ ...real, exp: now + 600 }),
      expired: await forged({ ...real, iat: now - 7200, exp: now - 3600 }),
      wrongAudience: await forged({ ...real, aud: 'someone-else', exp: now + 600 }),
      none: noneToken,
      garbage: 'not-a-jwt',
    };
    const before = s.moto.requests().length;
    for (const [name, token] of Object.entries(tokens)) {
      const r = await s.run(['sts', 'get-caller-identity'], { token });
      expect(r.status, name + r.stderr).toBe(67);
      expect(r.stderr, name).not.toContain(token.slice(0, 40));
    }
    expect(s.moto.requests().slice(before)).toEqual([]);
  });

  it('no login at all → 67 with how to log in', async () => {
    const r = await s.run(['sts', 'get-caller-identity']);
    expect(r.status).toBe(67);
    expect(r.stderr).toMatch(/guard-aws login/);
  });
});

describe('secrets stay out of logs and records', () => {
  it('the broker never logs or stores the bearer token or the credentials it issued', async () => {
    // Ask for a grant directly (as a client would) to learn the issued credentials, then look for them.
    const { BrokerClient } = await import('../../src/api/broker-client.js');
    const { createTranscriptKey } = await import('../../src/transcript/sign.js');
    const answer = await new BrokerClient(s.broker.url).grant(alice, {
      argv: ['sts', 'get-caller-identity'],
      transcriptKey: createTranscriptKey().publicKey,
    });
    expect(answer.kind).toBe('granted');
    if (answer.kind !== 'granted') return;
    const { secretAccessKey, sessionToken } = answer.grant.credentials;
    const logs = s.logLines.join('\n');
    expect(logs).toContain(answer.grant.grantId); // the grant was logged…
    for (const secret of [alice, alice.split('.')[2]!, secretAccessKey, sessionToken]) expect(logs).not.toContain(secret); // …without secrets
    const { readFileSync, readdirSync } = await import('node:fs');
    // The database files and the transcript bodies beside them (broker.sqlite.bodies/).
    const db = readdirSync(s.dir, { recursive: true, withFileTypes: true })
      .filter((f) => f.isFile() && `${f.parentPath}/${f.name}`.slice(s.dir.length + 1).startsWith('broker.sqlite'))
      .map((f) => readFileSync(`${f.parentPath}/${f.name}`).toString('latin1'))
      .join('');
    expect(db).toContain(answer.grant.grantId);
    for (const secret of [secretAccessKey, sessionToken, alice.split('.')[2]!]) expect(db).not.toContain(secret);
  });
});

describe('broker unreachable', () => {
  it('exits 69 and nothing runs', async () => {
    const before = s.moto.requests().length;
    const r = await s.run(['sts', 'get-caller-identity'], { token: alice, env: { GUARD_AWS_BROKER: 'http://127.0.0.1:9' } });
    expect(r.status).toBe(69);
    expect(r.stdout).toBe('');
    expect(s.moto.requests().slice(before)).toEqual([]);
  });
});

export type { JWK };
void exportJWK;
