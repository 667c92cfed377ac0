import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, generateKeyPair, exportJWK, decodeJwt, type JWK } from 'jose';
import { plainAwsAt, startStack, type Stack } from './harness.js';

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

describe('allowed call', () => {
  it('prints exactly what plain aws prints, in every output format', async () => {
    for (const output of ['json', 'text', 'table']) {
      const args = ['s3api', 'list-objects-v2', '--bucket', 'e2e-data', '--output', output];
      const guarded = await s.run(args, { token: alice });
      const plain = plainAwsAt(s, args);
      expect(guarded.stderr).toBe('');
      expect(guarded.status).toBe(0);
      expect(plain.status).toBe(0);
      expect(guarded.stdout).toBe(plain.stdout);
    }
  });

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
    const db = readdirSync(s.dir)
      .filter((f) => f.startsWith('broker.sqlite'))
      .map((f) => readFileSync(`${s.dir}/${f}`).toString('latin1'))
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
