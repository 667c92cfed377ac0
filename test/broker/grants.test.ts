import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorResponse, GrantResponse } from '../../src/api/types.js';
import { buildSessionPolicy } from '../../src/broker/session-policy.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import { withFaults } from './helpers/fake-core.js';
import { ACCOUNT, ROLE_ARN, TRANSCRIPT_KEY, startBrokerEnv, type BrokerEnvironment } from './helpers/broker-env.js';

// Real HTTP (hono on @hono/node-server), real moto_server as STS, real SQLite, real jose-signed tokens over a
// JWKS served on loopback. Only parseInvocation/decide are hand-built stand-ins (see helpers/fake-core.ts).
let env: BrokerEnvironment;
const assumeCalls = async () => (await env.moto.recorded()).filter((p) => p.get('Action') === 'AssumeRole');

beforeAll(async () => {
  // The real parser, plus two injected faults: `huge …` (a session policy that cannot fit) and `boom` (a crash).
  env = await startBrokerEnv({ parse: withFaults(parseInvocation) });
});
afterAll(async () => {
  await env?.stop();
});

describe('POST /v1/grants — allowed', () => {
  let grant: GrantResponse;
  let res: Response;
  beforeAll(async () => {
    res = await env.post('/v1/grants', { argv: ['dynamodb', 'describe-table', '--table-name', 'Orders'], transcriptKey: TRANSCRIPT_KEY });
    grant = (await res.json()) as GrantResponse;
  });

  it('answers 200 with working credentials for the target role', async () => {
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(grant.grantId).toMatch(/^grt_[A-Za-z0-9_-]{22}$/);
    expect(grant).toMatchObject({ target: 'dev', region: 'us-east-1', decision: 'allow', rule: 'default-allow', endpoint: env.moto.endpoint });
    expect(grant.argv).toEqual(['dynamodb', 'describe-table', '--table-name', 'Orders']);
    expect(grant.caller).toEqual({ subject: 'alice@example.com', groups: ['developers'] });
    const sts = new STSClient({
      region: 'us-east-1',
      endpoint: env.moto.endpoint,
      credentials: {
        accessKeyId: grant.credentials.accessKeyId,
        secretAccessKey: grant.credentials.secretAccessKey,
        sessionToken: grant.credentials.sessionToken,
      },
    });
    const who = await sts.send(new GetCallerIdentityCommand({}));
    sts.destroy();
    expect(who.Account).toBe(ACCOUNT);
    expect(who.Arn).toBe(`arn:aws:sts::${ACCOUNT}:assumed-role/guard-dev/alice@example.com.${grant.grantId}`);
  });

  it('sent STS exactly the session policy it built, 900 s, caller-derived names and the grant tag', async () => {
    const calls = await assumeCalls();
    const call = calls.find((p) => p.get('Tags.member.1.Value') === grant.grantId)!;
    expect(call).toBeDefined();
    const invocation = parseInvocation(grant.argv, { account: ACCOUNT, region: 'us-east-1' });
    const expected = buildSessionPolicy(invocation.permissions, { resourceAccounts: [ACCOUNT], invocation });
    expect(call.get('Policy')).toBe(expected);
    expect(grant.sessionPolicy).toBe(expected);
    expect(JSON.parse(expected)).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: 'dynamodb:DescribeTable',
          Resource: `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/Orders`,
          // Held to the decided region (issue 7): credentials from this grant do nothing in another region.
          Condition: { StringEquals: { 'aws:RequestedRegion': 'us-east-1' } },
        },
      ],
    });
    expect(call.get('RoleArn')).toBe(ROLE_ARN);
    expect(call.get('DurationSeconds')).toBe('900');
    expect(call.get('RoleSessionName')).toBe(`alice@example.com.${grant.grantId}`);
    expect(call.get('SourceIdentity')).toBe('alice@example.com');
    expect(call.get('Tags.member.1.Key')).toBe('guard-aws:grant');
    expect(call.get('ExternalId')).toBeNull();
  });

  it('records the grant with the transcript key, and never the credentials or the token', async () => {
    const rec = await env.broker.broker.ctx.store.getGrant(grant.grantId);
    expect(rec).toMatchObject({
      id: grant.grantId,
      subject: 'alice@example.com',
      groups: ['developers'],
      name: 'Alice',
      target: 'dev',
      account: ACCOUNT,
      decision: 'allow',
      rule: 'default-allow',
      transcriptKey: TRANSCRIPT_KEY,
      sessionPolicy: grant.sessionPolicy,
      expiresAt: grant.credentials.expiration,
      actions: ['dynamodb:DescribeTable'],
    });
    expect(JSON.stringify(rec)).not.toContain(grant.credentials.secretAccessKey);
  });
});

describe('POST /v1/grants — scoped sessions', () => {
  it('permissionless calls get a deny-all session policy', async () => {
    // `help` makes no AWS call: the parser derives no permission.
    const res = await env.post('/v1/grants', { argv: ['sts', 'get-caller-identity', 'help'], transcriptKey: TRANSCRIPT_KEY });
    expect(res.status).toBe(200);
    const g = (await res.json()) as GrantResponse;
    expect(JSON.parse(g.sessionPolicy)).toEqual({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: '*', Resource: '*' }] });
  });

  it('account-less S3 ARNs carry an aws:ResourceAccount condition', async () => {
    const res = await env.post('/v1/grants', { argv: ['s3api', 'get-object', '--bucket', 'data', '--key', 'a.txt', 'a.txt'], transcriptKey: TRANSCRIPT_KEY });
    const g = (await res.json()) as GrantResponse;
    expect(JSON.parse(g.sessionPolicy).Statement).toEqual([
      { Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::data/a.txt', Condition: { StringEquals: { 'aws:RequestedRegion': 'us-east-1', 'aws:ResourceAccount': ACCOUNT } } },
    ]);
  });

  it('a named target uses its own role, region and external id', async () => {
    const res = await env.post('/v1/grants', { argv: ['ec2', 'describe-instances'], target: 'partner', transcriptKey: TRANSCRIPT_KEY });
    expect(res.status).toBe(200);
    const g = (await res.json()) as GrantResponse;
    expect(g).toMatchObject({ target: 'partner', region: 'eu-west-1' });
    const call = (await assumeCalls()).find((p) => p.get('Tags.member.1.Value') === g.grantId)!;
    expect(call.get('RoleArn')).toBe('arn:aws:iam::210987654321:role/guard-partner');
    expect(call.get('ExternalId')).toBe('ext-123');
    expect(JSON.parse(call.get('Policy')!).Statement).toEqual([
      { Effect: 'Allow', Action: 'ec2:DescribeInstances', Resource: '*', Condition: { StringEquals: { 'aws:RequestedRegion': 'eu-west-1' } } },
    ]);
  });
});

describe('POST /v1/grants — refusals', () => {
  it('denied → 403 with rule and reason, and no STS call', async () => {
    const before = (await assumeCalls()).length;
    const res = await env.post('/v1/grants', { argv: ['s3api', 'delete-bucket', '--bucket', 'prod'], transcriptKey: TRANSCRIPT_KEY });
    expect(res.status).toBe(403);
    const body = (await res.json()) as ErrorResponse;
    expect(body.error).toMatchObject({ code: 'denied', rule: 'no-bucket-deletion', reason: 'buckets are never deleted through the guard' });
    expect((await assumeCalls()).length).toBe(before);
    const refusals = await env.broker.broker.ctx.store.listRefusals({ subject: 'alice@example.com' });
    expect(refusals.find((r) => r.code === 'denied')).toMatchObject({ rule: 'no-bucket-deletion', decision: 'deny', target: 'dev' });
  });

  it('the caller\'s groups are those of the verified token', async () => {
    const token = await env.idp.sign({ sub: 'rita', groups: ['readonly'] });
    const res = await env.post('/v1/grants', { argv: ['s3api', 'get-object', '--bucket', 'data', '--key', 'a.txt', 'a.txt'], transcriptKey: TRANSCRIPT_KEY }, token);
    expect(res.status).toBe(403);
    expect(((await res.json()) as ErrorResponse).error.rule).toBe('readonly-no-data');
  });

  it('approval needed → 403 approval_required naming the approvers, no STS call', async () => {
    const before = (await assumeCalls()).length;
    const res = await env.post('/v1/grants', { argv: ['iam', 'delete-role', '--role-name', 'x'], transcriptKey: TRANSCRIPT_KEY });
    expect(res.status).toBe(403);
    expect(((await res.json()) as ErrorResponse).error).toMatchObject({
      code: 'approval_required',
      rule: 'iam-needs-approval',
      approvers: { groups: ['approvers'], count: 1 },
    });
    expect((await assumeCalls()).length).toBe(before);
  });

  it('unparseable argv → 400 unparseable', async () => {
    const res = await env.post('/v1/grants', { argv: ['frobnicate', 'now'], transcriptKey: TRANSCRIPT_KEY });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorResponse).error).toMatchObject({ code: 'unparseable', message: expect.stringContaining('frobnicate') });
  });

  it('unknown target → 400 naming the field', async () => {
    const res = await env.post('/v1/grants', { argv: ['sts', 'get-caller-identity'], target: 'nope', transcriptKey: TRANSCRIPT_KEY });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorResponse).error).toMatchObject({ code: 'unknown_target', field: 'target' });
  });

  it('a session policy that cannot fit is refused (403 policy_too_large), never widened, and STS is not called', async () => {
    const before = (await assumeCalls()).length;
    const res = await env.post('/v1/grants', { argv: ['huge', 'x'], transcriptKey: TRANSCRIPT_KEY });
    expect(res.status).toBe(403);
    expect(((await res.json()) as ErrorResponse).error.code).toBe('policy_too_large');
    expect((await assumeCalls()).length).toBe(before);
  });

  it('STS failure → 502 sts_failed without internals', async () => {
    const res = await env.post('/v1/grants', { argv: ['sts', 'get-caller-identity'], target: 'broken', transcriptKey: TRANSCRIPT_KEY });
    expect(res.status).toBe(502);
    const text = await res.text();
    expect(JSON.parse(text).error.code).toBe('sts_failed');
    expect(text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1:9|stack/);
  });

  it('a bug → 500 with only the request id; details only in the broker log', async () => {
    const res = await env.post('/v1/grants', { argv: ['boom'], transcriptKey: TRANSCRIPT_KEY });
    expect(res.status).toBe(500);
    const text = await res.text();
    const id = res.headers.get('x-request-id')!;
    expect(id).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(JSON.parse(text)).toEqual({ error: { code: 'internal', message: expect.stringContaining(id) } });
    expect(text).not.toContain('secret internals');
    expect(text).not.toContain('parse.ts');
    const logged = env.logs.find((l) => l.requestId === id && l.level === 'error')!;
    expect(String(logged.error)).toContain('secret internals');
  });
});

describe('request validation happens before the handler', () => {
  const cases: [string, unknown, string][] = [
    ['missing argv', { transcriptKey: TRANSCRIPT_KEY }, 'argv'],
    ['argv not strings', { argv: ['sts', 42], transcriptKey: TRANSCRIPT_KEY }, 'argv[1]'],
    ['empty argv', { argv: [], transcriptKey: TRANSCRIPT_KEY }, 'argv'],
    ['bad transcript key', { argv: ['sts', 'get-caller-identity'], transcriptKey: 'abc' }, 'transcriptKey'],
    ['unknown field', { argv: ['sts', 'get-caller-identity'], transcriptKey: TRANSCRIPT_KEY, endpoint: 'http://evil' }, 'endpoint'],
    ['files not strings', { argv: ['sts', 'get-caller-identity'], transcriptKey: TRANSCRIPT_KEY, files: { '/x': 1 } }, 'files./x'],
    ['body is an array', [], '(body)'],
  ];
  it.each(cases)('%s → 400 naming %s', async (_name, body, field) => {
    const before = (await assumeCalls()).length;
    const res = await env.post('/v1/grants', body);
    expect(res.status).toBe(400);
    const e = ((await res.json()) as ErrorResponse).error;
    expect(e.code).toBe('bad_request');
    expect(e.field).toBe(field);
    expect(e.message).toContain(field);
    expect((await assumeCalls()).length).toBe(before);
  });

  it('not JSON → 400', async () => {
    const res = await env.post('/v1/grants', '{"argv": [');
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorResponse).error.code).toBe('bad_request');
  });

  it('wrong content type → 400', async () => {
    const res = await env.post('/v1/grants', JSON.stringify({ argv: ['sts', 'get-caller-identity'], transcriptKey: TRANSCRIPT_KEY }), undefined, {
      'content-type': 'text/plain',
    });
    expect(res.status).toBe(400);
  });
});

describe('body size limit', () => {
  const big = () => ({ argv: ['sts', 'get-caller-identity'], transcriptKey: TRANSCRIPT_KEY, files: { '/f': 'x'.repeat(300 * 1024) } });
  it('oversized body with Content-Length → 413', async () => {
    const res = await env.post('/v1/grants', big());
    expect(res.status).toBe(413);
    expect(((await res.json()) as ErrorResponse).error.code).toBe('payload_too_large');
  });
  it('oversized chunked body (no Content-Length) → 413', async () => {
    const data = new TextEncoder().encode(JSON.stringify(big()));
    const stream = new ReadableStream<Uint8Array>({
      start(ctrl) {
        for (let i = 0; i < data.length; i += 16 * 1024) ctrl.enqueue(data.slice(i, i + 16 * 1024));
        ctrl.close();
      },
    });
    const res = await fetch(`${env.broker.url}/v1/grants`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await env.token()}` },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
  });
  it('the limit applies before authentication (no token needed to be refused)', async () => {
    const res = await env.post('/v1/grants', big(), null);
    expect(res.status).toBe(413);
  });
});

describe('bearer authentication', () => {
  const body = { argv: ['sts', 'get-caller-identity'], transcriptKey: TRANSCRIPT_KEY };
  it('no token → 401 with a bare challenge (RFC 6750 §3.1)', async () => {
    const res = await env.post('/v1/grants', body, null);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="guard-aws"');
  });
  it('malformed Authorization → 400 invalid_request', async () => {
    const res = await env.post('/v1/grants', body, null, { authorization: 'Basic YWxpY2U6cHc=' });
    expect(res.status).toBe(400);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_request"');
  });
  const bad: [string, () => Promise<string>][] = [
    ['forged (signed by another key)', () => env.idp.sign({ sub: 'mallory', groups: ['admins'] }, { key: 'rogue' })],
    ['expired', () => env.idp.sign({ sub: 'alice', groups: [] }, { expiresIn: Math.floor(Date.now() / 1000) - 3600 })],
    ['not yet valid', () => env.idp.sign({ sub: 'alice', groups: [] }, { notBefore: Math.floor(Date.now() / 1000) + 3600 })],
    ['wrong audience', () => env.idp.sign({ sub: 'alice', groups: [] }, { audience: 'someone-else' })],
    ['wrong issuer', () => env.idp.sign({ sub: 'alice', groups: [] }, { issuer: 'https://evil.example' })],
    ['alg none', async () => {
      const { unsignedToken } = await import('./helpers/idp.js');
      return unsignedToken({ sub: 'mallory', groups: ['admins'], iss: env.idp.issuer, aud: env.idp.audience, exp: Math.floor(Date.now() / 1000) + 300 });
    }],
    ['garbage', async () => 'not-a-jwt'],
  ];
  it.each(bad)('%s token → 401 invalid_token, token never echoed or logged', async (_n, make) => {
    const before = (await assumeCalls()).length;
    const token = await make();
    const res = await env.post('/v1/grants', body, token);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="guard-aws", error="invalid_token"/);
    const text = await res.text();
    expect(['invalid_token', 'token_expired']).toContain(JSON.parse(text).error.code);
    expect(text).not.toContain(token);
    expect(env.logText()).not.toContain(token);
    expect((await assumeCalls()).length).toBe(before);
  });
});

describe('public routes', () => {
  it('GET /v1/config needs no token', async () => {
    const res = await fetch(`${env.broker.url}/v1/config`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      issuer: env.idp.issuer,
      clientId: 'guard-aws-cli',
      audience: 'guard-aws',
      targets: [
        { name: 'dev', account: ACCOUNT, region: 'us-east-1', default: true },
        { name: 'partner', account: '210987654321', region: 'eu-west-1', default: false },
        { name: 'broken', account: ACCOUNT, region: 'us-east-1', default: false },
      ],
      version: expect.any(String),
    });
  });
  it('GET /healthz', async () => {
    const res = await fetch(`${env.broker.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });
  it('unknown path → 404 JSON (after auth for /v1)', async () => {
    const res = await fetch(`${env.broker.url}/nope`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as ErrorResponse).error.code).toBe('not_found');
    expect((await fetch(`${env.broker.url}/v1/nope`)).status).toBe(401);
    const authed = await fetch(`${env.broker.url}/v1/nope`, { headers: { authorization: `Bearer ${await env.token()}` } });
    expect(authed.status).toBe(404);
  });
  it('GET /v1/grants (wrong method) → 404', async () => {
    const res = await fetch(`${env.broker.url}/v1/grants`, { headers: { authorization: `Bearer ${await env.token()}` } });
    expect(res.status).toBe(404);
  });
});

describe('metrics and storage after the run', () => {
  it('GET /metrics counts grants, denials, approvals and latency', async () => {
    const text = await (await fetch(`${env.broker.url}/metrics`)).text();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    expect(value(/^guard_aws_grants_total\{target="dev"\} (\d+)/m)).toBeGreaterThanOrEqual(3);
    expect(value(/^guard_aws_grants_total\{target="partner"\} (\d+)/m)).toBe(1);
    expect(value(/^guard_aws_denials_total\{target="dev",code="denied"\} (\d+)/m)).toBe(2);
    expect(value(/^guard_aws_denials_total\{target="dev",code="policy_too_large"\} (\d+)/m)).toBe(1);
    expect(value(/^guard_aws_approvals_required_total\{target="dev"\} (\d+)/m)).toBe(1);
    expect(text).toMatch(/^guard_aws_http_request_duration_seconds_count\{method="POST",route="\/v1\/grants",status="200"\} \d+/m);
    expect(text).not.toMatch(/route="\/nope"/);
    // A client-chosen target name never becomes a label.
    expect(text).not.toMatch(/target="nope"/);
    expect(value(/^guard_aws_denials_total\{target="unknown",code="unknown_target"\} (\d+)/m)).toBe(1);
  });

  it('the SQLite files hold no secret key, session token or bearer token', async () => {
    const token = await env.token();
    const res = await env.post('/v1/grants', { argv: ['sts', 'get-caller-identity'], transcriptKey: TRANSCRIPT_KEY }, token);
    const g = (await res.json()) as GrantResponse;
    expect(await env.broker.broker.ctx.store.getGrant(g.grantId)).toBeDefined();
    // The database, its WAL and shared-memory files: whatever SQLite has written so far.
    const bytes = Buffer.concat(readdirSync(env.dir).filter((f) => f.startsWith('broker.db')).map((f) => readFileSync(join(env.dir, f))));
    expect(bytes.length).toBeGreaterThan(0);
    expect(bytes.includes(Buffer.from(g.grantId))).toBe(true); // the search itself works
    expect(bytes.includes(Buffer.from(g.credentials.secretAccessKey))).toBe(false);
    expect(bytes.includes(Buffer.from(g.credentials.sessionToken))).toBe(false);
    expect(bytes.includes(Buffer.from(token))).toBe(false);
    expect(env.logText()).not.toContain(g.credentials.secretAccessKey);
    expect(env.logText()).not.toContain(g.credentials.sessionToken);
  });
});
